/* cgroup v2: one unified hierarchy at MOUNT. A child only gets a controller that its parent
 * lists in cgroup.subtree_control, and a cgroup that enables controllers for its children may
 * hold no process itself (the "no internal processes" rule; the hierarchy root is exempt):
 * that is why the supervisor lives in the leaf <root>/supervisor and services beside it. */
#include "cgroup/internal.h"

#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const wanted[] = {"memory", "cpu", "pids", "io"};



/* Enables in dir's cgroup.subtree_control each wanted controller that dir has (its
 * cgroup.controllers) and has not enabled yet. Writes nothing when all are on already.
 * *added (may be NULL) gets a bit per wanted[] index this call turned on. */
static int enable_controllers(const char *dir, unsigned *added, char *err, size_t errlen)
{
    char path[PATH_MAX + 32], have[512], on[512];
    snprintf(path, sizeof path, "%s/cgroup.controllers", dir);
    int rc = cg_read(path, have, sizeof have);
    if (rc < 0)
        return cg_err(err, errlen, rc, "%s: %s", path, strerror(-rc));
    snprintf(path, sizeof path, "%s/cgroup.subtree_control", dir);
    rc = cg_read(path, on, sizeof on);
    if (rc < 0)
        return cg_err(err, errlen, rc, "%s: %s", path, strerror(-rc));
    for (size_t i = 0; i < sizeof wanted / sizeof wanted[0]; i++) {
        if (!cr_cgroup_list_has(have, wanted[i]) || cr_cgroup_list_has(on, wanted[i]))
            continue;
        char v[32];
        snprintf(v, sizeof v, "+%s", wanted[i]);
        rc = cg_write(path, v, err, errlen);
        if (rc == -EBUSY)
            return cg_err(err, errlen, rc, "%s: writing '%s': the cgroup holds processes of "
                          "its own (cgroup v2 allows controllers for children only in a "
                          "cgroup without processes)", path, v);
        if (rc < 0)
            return rc;
        if (added)
            *added |= 1u << i;
    }
    return 0;
}

/* Turns off in dir's cgroup.subtree_control the wanted[] controllers of mask; best effort
 * (a child still using one refuses with EBUSY, and then the caller cannot move up anyway). */
static void disable_controllers(const char *dir, unsigned mask)
{
    char path[PATH_MAX + 32], v[32];
    snprintf(path, sizeof path, "%s/cgroup.subtree_control", dir);
    for (size_t i = 0; i < sizeof wanted / sizeof wanted[0]; i++)
        if (mask & (1u << i)) {
            snprintf(v, sizeof v, "-%s", wanted[i]);
            cg_write(path, v, NULL, 0);
        }
}

static int cg2_kill(struct cr_cg *cg, char *err, size_t errlen);

/* The caller lives in a level above <root>: at a private cgroup namespace's root (podman's
 * and Kubernetes' default on v2), or in its own cgroup as systemd delegated it (<root> below
 * it, daemon.c). v2 lets a cgroup pass controllers to its children only while it holds no
 * process, so the caller first makes <root> and its leaf and moves there; the controllers
 * are enabled after. */
static int move_early(struct cr_cg_root *r, char *err, size_t errlen)
{
    char self[PATH_MAX], dir[PATH_MAX], path[PATH_MAX + 32], pid[24];
    if (r->resumed || !r->leaf || cr_cg_self_path(self, sizeof self) < 0)
        return 0;
    size_t n = strlen(self);      /* "" at the root, else "system.slice/corral.service" */
    if (n && (strncmp(r->root, self, n) || r->root[n] != '/'))
        return 0;
    r->self_len = n;
    size_t len = strlen(r->root);
    for (size_t end = 1; end <= len; end++) {
        if (r->root[end] != '/' && r->root[end] != '\0')
            continue;
        int rc = cg_make_root_level(r, r->mount, end, NULL, dir, sizeof dir, err, errlen);
        if (rc < 0)
            return rc;
    }
    if (cg_dir(&r->h[0], r->root, "supervisor", dir, sizeof dir) < 0)
        return cg_err(err, errlen, -ENAMETOOLONG, "%s: path too long", r->mount);
    bool created;
    int rc = cg_make_dir(dir, &created, err, errlen);
    if (rc < 0)
        return rc;
    snprintf(path, sizeof path, "%s/cgroup.procs", dir);
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    rc = cg_write(path, pid, err, errlen);
    if (rc == 0)
        r->early = true;
    return rc;
}

static int cg2_root_prepare(struct cr_cg_root *r, char *err, size_t errlen)
{
    r->nh = 1;
    if (!(r->h[0].dir = cg_intern(r->mount)))
        return cg_err(err, errlen, -ENOMEM, "out of memory");
    r->h[0].ctrls = 0;
    int erc = move_early(r, err, errlen);
    if (erc < 0)
        return erc;
    /* For every level of <root> ("apps/corral-2" has two), its parent must pass the
     * controllers down. This is the only change made to cgroups we did not create — the
     * hierarchy root and pre-existing levels above <root> — and cannot be avoided: without
     * it no limit can be set below them. Nothing else of theirs is touched. */
    char parent[PATH_MAX], dir[PATH_MAX];
    snprintf(parent, sizeof parent, "%s", r->mount);
    size_t len = strlen(r->root);
    /* Moved early, the levels above the caller's own cgroup are not ours (systemd's slices):
     * systemd's Delegate=yes has passed the controllers down to it already. */
    size_t from = r->early ? r->self_len : 0;
    if (from && snprintf(parent, sizeof parent, "%s/%.*s", r->mount, (int)from, r->root) >=
                    (int)sizeof parent)
        return cg_err(err, errlen, -ENAMETOOLONG, "%s: path too long", r->mount);
    bool first = true;    /* parent is the caller's own cgroup (or the hierarchy's root) */
    for (size_t end = from; end <= len; end++) {
        if (r->root[end] != '/' && r->root[end] != '\0')
            continue;
        int rc = enable_controllers(parent, first && r->early ? &r->early_added : NULL, err,
                                    errlen);
        first = false;
        if (rc < 0)
            return rc;
        rc = cg_make_root_level(r, r->mount, end, NULL, dir, sizeof dir, err, errlen);
        if (rc < 0)
            return rc;
        snprintf(parent, sizeof parent, "%s", dir);
    }
    if (!r->leaf)
        return 0;
    if (cg_dir(&r->h[0], r->root, "supervisor", dir, sizeof dir) < 0)
        return cg_err(err, errlen, -ENAMETOOLONG, "%s: path too long", r->mount);
    bool created;
    return cg_make_dir(dir, &created, err, errlen);
}

/* Undoes what cg2_root_prepare/enter turned on after an early move, deepest level first, so
 * that the caller may go back to its own cgroup (which then holds no controllers for
 * children again, so it may hold a process): in <root> and the levels it made below the
 * caller's cgroup every controller, in the caller's cgroup those this open added. */
static void cg2_root_unwind(struct cr_cg_root *r)
{
    char dir[PATH_MAX];
    unsigned all = (1u << (sizeof wanted / sizeof wanted[0])) - 1;
    for (size_t end = strlen(r->root); end > r->self_len; end--) {
        if (r->root[end] != '/' && r->root[end] != '\0')
            continue;
        if (snprintf(dir, sizeof dir, "%s/%.*s", r->mount, (int)end, r->root) < (int)sizeof dir)
            disable_controllers(dir, all);
    }
    if (snprintf(dir, sizeof dir, "%s/%.*s", r->mount, (int)r->self_len, r->root) <
        (int)sizeof dir)
        disable_controllers(dir, r->early_added);
}

static int cg2_root_enter(struct cr_cg_root *r, bool move_self, char *err, size_t errlen)
{
    char dir[PATH_MAX], path[PATH_MAX + 32];
    if (move_self) {
        char pid[24];
        snprintf(pid, sizeof pid, "%d", (int)getpid());
        cg_dir(&r->h[0], r->root, "supervisor", dir, sizeof dir);
        snprintf(path, sizeof path, "%s/cgroup.procs", dir);
        int rc = cg_write(path, pid, err, errlen);
        if (rc < 0)
            return rc;
    }
    /* Now that <root> holds no process (we are in its leaf), pass the controllers on to
     * the services. */
    cg_dir(&r->h[0], r->root, NULL, dir, sizeof dir);
    int rc = enable_controllers(dir, NULL, err, errlen);
    if (rc < 0)
        return rc;
    /* What the services really get is what <root> passes down, which may be less than
     * the hierarchy root has: report that. */
    char on[512];
    snprintf(path, sizeof path, "%s/cgroup.subtree_control", dir);
    if (cg_read(path, on, sizeof on) == 0) {
        struct cr_cgroup_caps *c = &r->caps;
        c->memory = c->memory_high = c->memory_swap = cr_cgroup_list_has(on, "memory");
        c->cpu_max = c->cpu_weight = cr_cgroup_list_has(on, "cpu");
        c->pids = cr_cgroup_list_has(on, "pids");
        c->io_weight = cr_cgroup_list_has(on, "io");
        if (!c->io_weight)
            c->io_weight_file[0] = '\0';
    }
    return 0;
}

static int cg2_create(struct cr_cg *cg, char *err, size_t errlen)
{
    cg->fresh = true;
    if (mkdir(cg->path, 0755) < 0) {
        if (errno != EEXIST)
            return cg_err(err, errlen, -errno, "%s: mkdir: %s", cg->path, strerror(errno));
        cg->fresh = false;
    }
    /* For clone3(CLONE_INTO_CGROUP): an O_PATH fd is not accepted, a read-only one is. */
    cg->dirfd = open(cg->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cg->dirfd < 0)
        return cg_err(err, errlen, -errno, "%s: open: %s", cg->path, strerror(errno));
    return cg->fresh || cg_ops(2)->kill_pass(cg) == 0 ? 0 : cg2_kill(cg, err, errlen);
}

static int write_file(const struct cr_cg *cg, const char *file, const char *val, char *err,
                      size_t errlen)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", cg->path, file);
    return cg_write(path, val, err, errlen);
}

static bool file_exists(const struct cr_cg *cg, const char *file)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", cg->path, file);
    return access(path, F_OK) == 0;
}

static void fmt_max(char *buf, size_t len, int64_t v)
{
    if (v == INT64_MAX || v < 0)
        snprintf(buf, len, "max");
    else
        snprintf(buf, len, "%lld", (long long)v);
}

/* One row per limit: its value, the controller it needs, and the file. */
static int cg2_set_limits(struct cr_cg *cg, const struct cr_cg_limits *l, bool all, char *err,
                   size_t errlen)
{
    const struct cr_cgroup_caps *c = &cg->caps;
    const struct { const char *key, *file; int64_t v; bool cap; } rows[] = {
        {"memory_max", "memory.max", l->memory_max, c->memory},
        {"memory_high", "memory.high", l->memory_high, c->memory_high},
        {"memory_swap_max", "memory.swap.max", l->memory_swap_max, c->memory_swap},
        {"pids_max", "pids.max", l->pids_max, c->pids},
    };
    char v[64];
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        bool set = rows[i].v != -1;
        if (!set && !all)
            continue;
        if (!rows[i].cap) {
            if (set)
                return cg_err(err, errlen, -EOPNOTSUPP, "%s: its controller is not enabled "
                              "for %s", rows[i].key, cg->path);
            continue;
        }
        /* Resetting to the default: skip a file this kernel lacks (memory.swap.max without
         * swap support). A limit that is set is written, and fails naming the file. */
        if (!set && !file_exists(cg, rows[i].file))
            continue;
        fmt_max(v, sizeof v, rows[i].v);
        int rc = write_file(cg, rows[i].file, v, err, errlen);
        if (rc < 0)
            return rc;
    }
    bool quota = l->cpu_quota_us != -1, weight = l->cpu_weight != -1;
    if ((quota || weight) && !c->cpu_max)
        return cg_err(err, errlen, -EOPNOTSUPP, "%s: the cpu controller is not enabled in %s",
                      quota ? "cpu_max" : "cpu_weight", cg->path);
    if (c->cpu_max && (all || quota)) {
        char q[32];
        fmt_max(q, sizeof q, l->cpu_quota_us);
        snprintf(v, sizeof v, "%s %lld", q,
                 (long long)(l->cpu_period_us > 0 ? l->cpu_period_us : 100000));
        int rc = write_file(cg, "cpu.max", v, err, errlen);
        if (rc < 0)
            return rc;
    }
    if (c->cpu_weight && (all || weight)) {
        snprintf(v, sizeof v, "%lld", (long long)(weight ? l->cpu_weight : 100));
        int rc = write_file(cg, "cpu.weight", v, err, errlen);
        if (rc < 0)
            return rc;
    }
    bool io = l->io_weight != -1;
    if (all || io) {
        int64_t w = io ? l->io_weight : 100;
        /* io.weight needs the iocost controller; BFQ has its own file with range 1..1000. */
        if (c->io_weight && file_exists(cg, "io.weight")) {
            snprintf(v, sizeof v, "default %lld", (long long)w);
            return write_file(cg, "io.weight", v, err, errlen);
        }
        if (c->io_weight && file_exists(cg, "io.bfq.weight")) {
            snprintf(v, sizeof v, "%lld", (long long)cr_cg_weight_to_blkio(w, true));
            return write_file(cg, "io.bfq.weight", v, err, errlen);
        }
        if (io)
            return cg_err(err, errlen, -EOPNOTSUPP, "io_weight: %s has neither io.weight nor "
                          "io.bfq.weight", cg->path);
    }
    return 0;
}

static int cg2_attach(struct cr_cg *cg, pid_t pid, char *err, size_t errlen)
{
    char v[24];
    snprintf(v, sizeof v, "%d", (int)pid);
    return write_file(cg, "cgroup.procs", v, err, errlen);
}

static int cg2_procs_path(const struct cr_cg *cg, char *buf, size_t len)
{
    return snprintf(buf, len, "%s/cgroup.procs", cg->path) >= (int)len ? -ENAMETOOLONG : 0;
}

/* cgroup.kill (5.14+) kills the whole subtree at once, racing no fork. Then wait, polling,
 * until cgroup.events says nothing is left. Older kernels: a kill loop over cgroup.procs. */
static int cg2_kill(struct cr_cg *cg, char *err, size_t errlen)
{
    int rc = write_file(cg, "cgroup.kill", "1", NULL, 0);
    if (rc == -ENOENT && access(cg->path, F_OK) < 0)
        return 0; /* no such cgroup: nothing to kill */
    if (rc < 0) {
        char procs[PATH_MAX + 16];
        snprintf(procs, sizeof procs, "%s/cgroup.procs", cg->path);
        return cg_kill_loop(procs, CG_KILL_WAIT_MS, err, errlen);
    }
    char events[PATH_MAX + 16];
    snprintf(events, sizeof events, "%s/cgroup.events", cg->path);
    int64_t deadline = cg_now_ms() + CG_KILL_WAIT_MS;
    for (int round = 0;; round++) {
        int64_t pop = 0;
        if (cg_read_key(events, "populated", &pop) < 0 || pop == 0)
            return 0;
        if (cg_now_ms() >= deadline)
            return cg_err(err, errlen, -EBUSY, "%s: still populated %d ms after cgroup.kill",
                          events, CG_KILL_WAIT_MS);
        cg_sleep_ms(round < 20 ? 1 : 5);
    }
}

static int64_t cg2_read(const struct cr_cg *cg, const char *file, const char *key)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", cg->path, file);
    int64_t v;
    int rc = key ? cg_read_key(path, key, &v) : cg_read_i64(path, &v);
    return rc < 0 ? -1 : v;
}

static void cg2_stats(struct cr_cg *cg, struct cr_cg_stats *st)
{
    st->memory_current = cg2_read(cg, "memory.current", NULL);
    st->memory_peak = cg2_read(cg, "memory.peak", NULL); /* 5.19+ */
    st->oom_kills = cg2_read(cg, "memory.events", "oom_kill");
    st->cpu_usage_us = cg2_read(cg, "cpu.stat", "usage_usec"); /* there without cpu too */
    st->pids_current = cg2_read(cg, "pids.current", NULL);
}

static int cg2_remove(struct cr_cg *cg, int wait_ms, char *err, size_t errlen)
{
    if (rmdir(cg->path) == 0 || errno == ENOENT)
        return 0;
    if (errno == EBUSY || errno == ENOTEMPTY)
        return cg_kill_remove_tree(cg->path, wait_ms, err, errlen);
    return cg_err(err, errlen, -errno, "%s: rmdir: %s", cg->path, strerror(errno));
}

/* What only v1 has. */
static unsigned cg2_needs(const struct cr_cg_limits *lim, bool lean)
{
    return 0;
}

static void cg2_select(struct cr_cg *cg, unsigned want)
{
}

static unsigned cg2_ctrl_bits(const char *list, size_t len)
{
    return 0;
}

static int cg2_self_attach_open(const struct cr_cg *cg, int *fds, int max, char *err,
                                size_t errlen)
{
    return 0;   /* none needed: the child is born there (CLONE_INTO_CGROUP) or attached by pid */
}

static int64_t cg2_oom_kills(struct cr_cg *cg)
{
    return cg2_read(cg, "memory.events", "oom_kill");
}

static int64_t cg2_memory_peak(struct cr_cg *cg)
{
    return cg2_read(cg, "memory.peak", NULL);
}

/* The device rules, before anything runs in the cgroup: a BPF device program. */
static int cg2_devices(struct cr_cg *cg, const struct cr_cg_limits *lim, char *err,
                       size_t errlen)
{
    char why[256];
    int rc = cr_cg_devices_v2(cg->dirfd, lim->devices, lim->ndevices, why, sizeof why);
    return rc < 0 ? cg_err(err, errlen, rc, "%s: %s", cg->path, why) : 0;
}

static int cg2_freeze(struct cr_cg *cg, bool on)
{
    return -ENOTSUP;   /* cgroup.kill races no fork: nothing to freeze */
}

static int cg2_frozen(struct cr_cg *cg)
{
    return 1;
}

static int cg2_kill_pass(struct cr_cg *cg)
{
    char path[PATH_MAX + 16];
    int64_t pop;
    snprintf(path, sizeof path, "%s/cgroup.events", cg->path);
    if (cg_read_key(path, "populated", &pop) < 0)
        return access(cg->path, F_OK) < 0 ? -ENOENT : 0;
    if (!pop)
        return 0;
    snprintf(path, sizeof path, "%s/cgroup.procs", cg->path);
    pid_t *pids = NULL;
    size_t n = 0;
    cg_read_pids(path, &pids, &n);
    if (write_file(cg, "cgroup.kill", "1", NULL, 0) < 0)
        for (size_t k = 0; k < n; k++)
            kill(pids[k], SIGKILL);
    free(pids);
    return n ? (int)n : 1;   /* populated below it (a child cgroup): counts as one */
}

const struct cg_ops cg2_ops = {
    .freeze = cg2_freeze,
    .frozen = cg2_frozen,
    .kill_pass = cg2_kill_pass,
    .root_prepare = cg2_root_prepare,
    .root_enter = cg2_root_enter,
    .root_unwind = cg2_root_unwind,
    .needs = cg2_needs,
    .select = cg2_select,
    .ctrl_bits = cg2_ctrl_bits,
    .create = cg2_create,
    .set_limits = cg2_set_limits,
    .devices = cg2_devices,
    .attach = cg2_attach,
    .self_attach_open = cg2_self_attach_open,
    .kill = cg2_kill,
    .procs_path = cg2_procs_path,
    .stats = cg2_stats,
    .oom_kills = cg2_oom_kills,
    .memory_peak = cg2_memory_peak,
    .remove = cg2_remove,
};
