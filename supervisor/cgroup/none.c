/* The backend for no cgroups at all: a container (Docker's default on many hosts) whose
 * /sys/fs/cgroup is read-only or absent. Nothing is created or limited; a "cgroup" is the
 * process group of the service's init (spawn.c gives init its own group and attaches its pid
 * here), so a kill reaches init and every descendant that kept its group. With a pid
 * namespace init is its PID 1 and its death ends everything inside; without one, init is a
 * subreaper that kills its tree when it ends, and what a SIGKILL to init orphans is reaped by
 * the supervisor (PID 1 or a subreaper itself). The missing guarantees are the caller's to
 * report (cr_cgroup_caps.none_why); limits here are --check errors (config/machine.c). */
#include "cgroup/internal.h"

#include <errno.h>
#include <signal.h>
#include <string.h>

static int cg0_root_prepare(struct cr_cg_root *r, char *err, size_t errlen)
{
    (void)r;
    (void)err;
    (void)errlen;
    return 0;
}

static int cg0_root_enter(struct cr_cg_root *r, bool move_self, char *err, size_t errlen)
{
    (void)r;
    (void)move_self;
    (void)err;
    (void)errlen;
    return 0;
}

static unsigned cg0_needs(const struct cr_cg_limits *lim, bool lean)
{
    (void)lim;
    (void)lean;
    return 0;
}

static void cg0_select(struct cr_cg *cg, unsigned want)
{
    (void)cg;
    (void)want;
}

static unsigned cg0_ctrl_bits(const char *list, size_t len)
{
    (void)list;
    (void)len;
    return 0;
}

static int cg0_create(struct cr_cg *cg, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    cg->fresh = true;
    cg->pgid = 0;
    return 0;
}

/* Unset limits (a reload writes them all) are fine; a set one cannot be kept. */
static int cg0_set_limits(struct cr_cg *cg, const struct cr_cg_limits *lim, bool all,
                          char *err, size_t errlen)
{
    (void)cg;
    (void)all;
    const struct { const char *name; int64_t v; } rows[] = {
        {"memory_max", lim->memory_max}, {"memory_high", lim->memory_high},
        {"memory_swap_max", lim->memory_swap_max}, {"cpu_max", lim->cpu_quota_us},
        {"cpu_weight", lim->cpu_weight}, {"pids_max", lim->pids_max},
        {"io_weight", lim->io_weight},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if (rows[i].v != -1)
            return cg_err(err, errlen, -EOPNOTSUPP, "%s: no cgroups here to enforce it",
                          rows[i].name);
    return 0;
}

static int cg0_devices(struct cr_cg *cg, const struct cr_cg_limits *lim, char *err,
                       size_t errlen)
{
    (void)cg;
    (void)lim;
    (void)err;
    (void)errlen;
    return 0;   /* no device rules: said as a missing guarantee */
}

static int cg0_attach(struct cr_cg *cg, pid_t pid, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    cg->pgid = pid;
    return 0;
}

static int cg0_self_attach_open(const struct cr_cg *cg, int *fds, int max, char *err,
                                size_t errlen)
{
    (void)cg;
    (void)fds;
    (void)max;
    (void)err;
    (void)errlen;
    return 0;
}

/* SIGKILL to the group: 1 while it has members (a leader not yet reaped counts), 0 once
 * empty. An empty group's number is never signalled again: the pid may be reused. */
static int cg0_kill_pass(struct cr_cg *cg)
{
    if (cg->pgid <= 0)
        return 0;
    if (kill(-cg->pgid, SIGKILL) == 0)
        return 1;
    cg->pgid = 0;
    return 0;
}

static int cg0_kill(struct cr_cg *cg, char *err, size_t errlen)
{
    int64_t t0 = cg_now_ms();
    while (cg0_kill_pass(cg) > 0) {
        if (cg_now_ms() - t0 >= CG_KILL_WAIT_MS)
            return cg_err(err, errlen, -EBUSY, "process group %d: still there %d ms after "
                          "SIGKILL", (int)cg->pgid, CG_KILL_WAIT_MS);
        cg_sleep_ms(1);
    }
    return 0;
}

static int cg0_procs_path(const struct cr_cg *cg, char *buf, size_t len)
{
    (void)cg;
    (void)buf;
    (void)len;
    return -ENOTSUP;
}

static void cg0_stats(struct cr_cg *cg, struct cr_cg_stats *st)
{
    (void)cg;
    (void)st;   /* nothing measured: every field stays -1 */
}

static int64_t cg0_unknown(struct cr_cg *cg)
{
    (void)cg;
    return -1;
}

static int cg0_remove(struct cr_cg *cg, int wait_ms, char *err, size_t errlen)
{
    (void)wait_ms;
    (void)err;
    (void)errlen;
    return cg->pgid > 0 && kill(-cg->pgid, 0) == 0 ? -EBUSY : 0;
}

static int cg0_freeze(struct cr_cg *cg, bool on)
{
    (void)cg;
    (void)on;
    return -ENOTSUP;
}

static int cg0_frozen(struct cr_cg *cg)
{
    (void)cg;
    return 1;
}

const struct cg_ops cg0_ops = {
    .freeze = cg0_freeze,
    .frozen = cg0_frozen,
    .kill_pass = cg0_kill_pass,
    .root_prepare = cg0_root_prepare,
    .root_enter = cg0_root_enter,
    .needs = cg0_needs,
    .select = cg0_select,
    .ctrl_bits = cg0_ctrl_bits,
    .create = cg0_create,
    .set_limits = cg0_set_limits,
    .devices = cg0_devices,
    .attach = cg0_attach,
    .self_attach_open = cg0_self_attach_open,
    .kill = cg0_kill,
    .procs_path = cg0_procs_path,
    .stats = cg0_stats,
    .oom_kills = cg0_unknown,
    .memory_peak = cg0_unknown,
    .remove = cg0_remove,
};
