/* cgroup v1: one hierarchy per controller at MOUNT/<name> (cpu and cpuacct may share one,
 * as cpu,cpuacct with symlinks). A cgroup is the same relative directory made in each
 * hierarchy it needs (CG1_BASE, plus cpu or blkio only when a limit there is set; a
 * service's container also devices, cpuset and name=systemd, so that its cgroup namespace's
 * root is its own cgroup there); a process is attached by writing its pid into every one of
 * them. The hybrid cgroup2 at MOUNT/unified is not used. */
#include "cgroup/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#ifndef CGROUP_SUPER_MAGIC
#define CGROUP_SUPER_MAGIC 0x27e0eb
#endif

static const struct { const char *name; unsigned bit; } ctrls[] = {
    {"memory", CG1_MEMORY}, {"cpu", CG1_CPU}, {"cpuacct", CG1_CPUACCT}, {"pids", CG1_PIDS},
    {"blkio", CG1_BLKIO}, {"freezer", CG1_FREEZER}, {"devices", CG1_DEVICES},
    {"cpuset", CG1_CPUSET}, {"systemd", CG1_NAMED},
};

/* A new cpuset cgroup starts with no CPUs and no memory nodes (nothing could run in it):
 * it gets its parent's. Done for the directories we make; below a <root> this open made,
 * the kernel does it (its cgroup.clone_children is set: see cg1_root_prepare). The
 * hierarchy's root is never ours to set. `fresh`: just made, so nothing is set yet. */
static int cpuset_inherit(const char *dir, bool fresh, char *err, size_t errlen)
{
    static const char *const files[] = {"cpuset.cpus", "cpuset.mems"};
    for (size_t i = 0; i < 2; i++) {
        char path[PATH_MAX + 32], parent[PATH_MAX + 32], val[1024];
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        snprintf(parent, sizeof parent, "%s", dir);
        char *slash = strrchr(parent, '/');
        if (!slash)
            return cg_err(err, errlen, -EINVAL, "%s: no parent", dir);
        snprintf(slash, sizeof parent - (size_t)(slash - parent), "/%s", files[i]);
        if (!fresh && cg_read(path, val, sizeof val) == 0 && val[0] != '\n' && val[0])
            continue;            /* set already (a directory we did not just make) */
        int rc = cg_read(parent, val, sizeof val);
        if (rc < 0)
            return cg_err(err, errlen, rc, "%s: %s", parent, strerror(-rc));
        rc = cg_write(path, val, err, errlen);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* <root> in the cpuset hierarchy, made by this open: its children copy its CPUs and memory
 * nodes when they are made (one write here instead of four reads and two writes for every
 * service). A <root> made earlier is only read: it has the flag if we set it then. */
static void cpuset_clone_children(struct cg_hier *h, const char *dir, bool made)
{
    char path[PATH_MAX + 32], val[8];
    snprintf(path, sizeof path, "%s/cgroup.clone_children", dir);
    char err[8];
    if (made)
        (void)cg_write(path, "1", err, sizeof err);
    h->cloned = cg_read(path, val, sizeof val) == 0 && val[0] == '1';
}

/* A directory made (or found) in hierarchy h: a cpuset one gets its CPUs and memory nodes,
 * unless the kernel gave them (made just now below a <root> with clone_children). */
static int cpuset_fill(const struct cg_hier *h, const char *dir, bool made, char *err,
                       size_t errlen)
{
    if (!(h->ctrls & CG1_CPUSET) || (made && h->cloned))
        return 0;
    return cpuset_inherit(dir, made, err, errlen);
}

static int missing(char *err, size_t errlen, const char *key, const char *what);

static const struct cg_hier *hier(const struct cr_cg *cg, unsigned bit)
{
    for (int i = 0; i < cg->nh; i++)
        if (cg->h[i].ctrls & bit)
            return &cg->h[i];
    return NULL;
}

/* Finds the hierarchies: each MOUNT/<controller> that is a v1 cgroup mount, de-duplicated by
 * its device (so cpu and cpuacct co-mounted count once, under the first name seen). Two
 * syscalls per controller; realpath took five. */
static int discover(struct cr_cg_root *r, const char *mount, char *err, size_t errlen)
{
    r->nh = 0;
    dev_t dev[CG1_MAXH] = {0};
    for (size_t i = 0; i < sizeof ctrls / sizeof ctrls[0]; i++) {
        char path[PATH_MAX];
        struct statfs sfs;
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", mount, ctrls[i].name);
        if (strlen(path) >= CG_NAMELEN || statfs(path, &sfs) < 0 ||
            sfs.f_type != CGROUP_SUPER_MAGIC || stat(path, &st) < 0)
            continue;
        int k;
        for (k = 0; k < r->nh; k++)
            if (dev[k] == st.st_dev)
                break;
        if (k == r->nh) {
            if (r->nh == CG1_MAXH)
                continue;
            if (!(r->h[k].dir = cg_intern(path)))
                return cg_err(err, errlen, -ENOMEM, "out of memory");
            dev[k] = st.st_dev;
            r->h[k].ctrls = 0;
            r->nh++;
        }
        r->h[k].ctrls |= ctrls[i].bit;
    }
    if (r->nh == 0)
        return cg_err(err, errlen, -ENOENT, "%s: no cgroup v1 controller hierarchy found",
                      mount);
    return 0;
}

static int cg1_kill(struct cr_cg *cg, char *err, size_t errlen);
static int cg1_procs_path(const struct cr_cg *cg, char *buf, size_t len);

static unsigned cg1_ctrl_bits(const char *list, size_t len)
{
    unsigned bits = 0;
    for (size_t start = 0; start < len;) {
        size_t n = 0;
        while (start + n < len && list[start + n] != ',')
            n++;
        for (size_t i = 0; i < sizeof ctrls / sizeof ctrls[0]; i++)
            if (strlen(ctrls[i].name) == n && !strncmp(list + start, ctrls[i].name, n))
                bits |= ctrls[i].bit;
        if (n == 12 && !strncmp(list + start, "name=systemd", 12))
            bits |= CG1_NAMED;
        start += n + 1;
    }
    return bits;
}

static int cg1_root_prepare(struct cr_cg_root *r, char *err, size_t errlen)
{
    int rc = discover(r, r->mount, err, errlen);
    if (rc < 0)
        return rc;
    for (int i = 0; i < r->nh; i++) {
        struct cg_hier *h = &r->h[i];
        char dir[PATH_MAX];
        h->cloned = false;
        if (r->only && !(h->ctrls & r->only))
            continue;
        /* Each level of <root> ("apps/corral-2" has two), then the supervisor leaf. */
        size_t len = strlen(r->root);
        for (size_t end = 0; end <= len; end++) {
            if (r->root[end] != '/' && r->root[end] != '\0')
                continue;
            bool made;
            rc = cg_make_root_level(r, h->dir, end, &made, dir, sizeof dir, err, errlen);
            if (rc == 0)
                rc = cpuset_fill(h, dir, made, err, errlen);
            if (rc < 0)
                return rc;
            if ((h->ctrls & CG1_CPUSET) && end == len)
                cpuset_clone_children(h, dir, made);
        }
        if (!r->leaf)
            continue;
        bool created;
        if (cg_dir(h, r->root, "supervisor", dir, sizeof dir) < 0)
            return cg_err(err, errlen, -ENAMETOOLONG, "%s: path too long", h->dir);
        rc = cg_make_dir(dir, &created, err, errlen);
        if (rc == 0)
            rc = cpuset_fill(h, dir, created, err, errlen);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int cg1_root_enter(struct cr_cg_root *r, bool move_self, char *err, size_t errlen)
{
    if (!move_self)
        return 0;
    char pid[24];
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    for (int i = 0; i < r->nh; i++) {
        char dir[PATH_MAX], procs[PATH_MAX + 16];
        if (r->h[i].ctrls & r->inside)
            continue;   /* there already (remember_origin): a write would only cost */
        cg_dir(&r->h[i], r->root, "supervisor", dir, sizeof dir);
        snprintf(procs, sizeof procs, "%s/cgroup.procs", dir);
        int rc = cg_write(procs, pid, err, errlen);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static unsigned cg1_needs(const struct cr_cg_limits *lim, bool lean)
{
    unsigned want = CG1_BASE;
    if (lean) {
        /* Only what enforces its limits, and freezer (to kill everything). */
        want = CG1_FREEZER;
        if (lim->memory_max != -1 || lim->memory_high != -1 || lim->memory_swap_max != -1)
            want |= CG1_MEMORY;
        if (lim->pids_max != -1)
            want |= CG1_PIDS;
    }
    if (lim->cpu_quota_us != -1 || lim->cpu_weight != -1)
        want |= CG1_CPU;
    if (lim->io_weight != -1)
        want |= CG1_BLKIO;
    /* A service's container: in its own cgroup in every hierarchy (its cgroup namespace's
     * root is then its own cgroup everywhere, not the host's), with its device rules. */
    if (lim->confine_devices)
        want |= CG1_DEVICES | CG1_CPUSET | CG1_NAMED;
    return want;
}

static int cg1_devices(struct cr_cg *cg, const struct cr_cg_limits *l, char *err, size_t errlen)
{
    const struct cg_hier *h = hier(cg, CG1_DEVICES);
    char dir[PATH_MAX];
    if (!h)
        return missing(err, errlen, "device confinement", "devices controller");
    if (cg_dir(h, cg->root, cg->leaf, dir, sizeof dir) < 0)
        return cg_err(err, errlen, -ENAMETOOLONG, "%s: path too long", h->dir);
    int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return cg_err(err, errlen, -errno, "%s: %s", dir, strerror(errno));
    char why[256];
    int rc = cr_cg_devices_v1(fd, l->devices, l->ndevices, why, sizeof why);
    close(fd);
    return rc < 0 ? cg_err(err, errlen, rc, "%s: %s", dir, why) : 0;
}

static void cg1_select(struct cr_cg *cg, unsigned want)
{
    int n = 0;
    cg->nu = 0;
    for (int i = 0; i < cg->nh; i++) {
        if (cg->h[i].ctrls & want)
            cg->h[n++] = cg->h[i];
        else
            cg->unused[cg->nu++] = cg->h[i];
    }
    cg->nh = n;
    if (n > 0)
        cg_dir(&cg->h[0], cg->root, cg->leaf, cg->path, cg->pathlen);
}

static int cg1_create(struct cr_cg *cg, char *err, size_t errlen)
{
    cg->fresh = true;
    for (int i = 0; i < cg->nh; i++) {
        char dir[PATH_MAX];
        bool created;
        if (cg_dir(&cg->h[i], cg->root, cg->leaf, dir, sizeof dir) < 0)
            return cg_err(err, errlen, -ENAMETOOLONG, "%s: path too long", cg->h[i].dir);
        int rc = cg_make_dir(dir, &created, err, errlen);
        if (rc == 0)
            rc = cpuset_fill(&cg->h[i], dir, created, err, errlen);
        if (rc < 0)
            return rc;
        cg->fresh &= created;
    }
    /* A leftover of the same name: empty it (if anything is in it: an empty one is not
     * frozen and thawed for nothing); its limits are rewritten by the caller. */
    return cg->fresh || cg_ops(1)->kill_pass(cg) == 0 ? 0 : cg1_kill(cg, err, errlen);
}

static int write_at(const struct cr_cg *cg, const struct cg_hier *h, const char *file,
                    const char *val, char *err, size_t errlen)
{
    char dir[PATH_MAX], path[PATH_MAX + 64];
    cg_dir(h, cg->root, cg->leaf, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/%s", dir, file);
    return cg_write(path, val, err, errlen);
}

static void fmt_or(char *buf, size_t len, int64_t v, const char *unlimited)
{
    if (v == INT64_MAX || v < 0)
        snprintf(buf, len, "%s", unlimited);
    else
        snprintf(buf, len, "%lld", (long long)v);
}

static int missing(char *err, size_t errlen, const char *key, const char *what)
{
    return cg_err(err, errlen, -EOPNOTSUPP, "%s: this machine's cgroup v1 has no %s", key,
                  what);
}

static int set_memory(struct cr_cg *cg, const struct cr_cg_limits *l, bool all, char *err,
                      size_t errlen)
{
    const struct cg_hier *h = hier(cg, CG1_MEMORY);
    bool max = l->memory_max != -1, high = l->memory_high != -1, swap = l->memory_swap_max != -1;
    if (!h || !cg->caps.memory)
        return max || high || swap ? missing(err, errlen, "memory_max", "memory controller") : 0;
    if (swap && !cg->caps.memory_swap)
        return missing(err, errlen, "memory_swap_max", "swap accounting (memory.memsw.*)");
    /* memsw (memory + swap) may never be below limit_in_bytes: open it up first, set the
     * memory limit, then narrow memsw to memory_max + memory_swap_max. */
    int64_t memsw = -1;
    if (swap && l->memory_swap_max != INT64_MAX) {
        if (!max || l->memory_max == INT64_MAX)
            return cg_err(err, errlen, -EINVAL, "memory_swap_max: cgroup v1 can only limit "
                          "swap together with memory_max (memory.memsw.limit_in_bytes is "
                          "memory + swap)");
        if (l->memory_max > INT64_MAX - l->memory_swap_max)
            memsw = -1;
        else
            memsw = l->memory_max + l->memory_swap_max;
    }
    char v[32];
    int rc = 0;
    if (cg->caps.memory_swap && (all || max || swap))
        rc = write_at(cg, h, "memory.memsw.limit_in_bytes", "-1", err, errlen);
    if (rc == 0 && (all || max)) {
        fmt_or(v, sizeof v, l->memory_max, "-1");
        rc = write_at(cg, h, "memory.limit_in_bytes", v, err, errlen);
    }
    if (rc == 0 && memsw != -1) {
        fmt_or(v, sizeof v, memsw, "-1");
        rc = write_at(cg, h, "memory.memsw.limit_in_bytes", v, err, errlen);
    }
    if (rc == 0 && (all || high)) {
        if (high && !cg->caps.memory_high)
            return missing(err, errlen, "memory_high", "memory.soft_limit_in_bytes");
        if (cg->caps.memory_high) {
            fmt_or(v, sizeof v, l->memory_high, "-1");
            rc = write_at(cg, h, "memory.soft_limit_in_bytes", v, err, errlen);
        }
    }
    return rc;
}

static int set_cpu(struct cr_cg *cg, const struct cr_cg_limits *l, bool all, char *err,
                   size_t errlen)
{
    const struct cg_hier *h = hier(cg, CG1_CPU);
    bool quota = l->cpu_quota_us != -1, weight = l->cpu_weight != -1;
    if ((quota && (!h || !cg->caps.cpu_max)) || (weight && (!h || !cg->caps.cpu_weight)))
        return missing(err, errlen, quota ? "cpu_max" : "cpu_weight", "cpu controller");
    char v[32];
    int rc = 0;
    if (h && cg->caps.cpu_max && (all || quota)) {
        /* Lift the quota first so that no intermediate quota/period pair is refused. */
        rc = write_at(cg, h, "cpu.cfs_quota_us", "-1", err, errlen);
        if (rc == 0) {
            snprintf(v, sizeof v, "%lld",
                     (long long)(l->cpu_period_us > 0 ? l->cpu_period_us : 100000));
            rc = write_at(cg, h, "cpu.cfs_period_us", v, err, errlen);
        }
        if (rc == 0 && quota && l->cpu_quota_us != INT64_MAX) {
            snprintf(v, sizeof v, "%lld", (long long)l->cpu_quota_us);
            rc = write_at(cg, h, "cpu.cfs_quota_us", v, err, errlen);
        }
    }
    if (rc == 0 && h && cg->caps.cpu_weight && (all || weight)) {
        snprintf(v, sizeof v, "%lld",
                 (long long)cr_cg_weight_to_shares(weight ? l->cpu_weight : 100));
        rc = write_at(cg, h, "cpu.shares", v, err, errlen);
    }
    return rc;
}

/* A reload that sets a cpu or io limit on a cgroup made without that hierarchy: make the
 * directory there (at the end of cg->h); its limits are then written by the caller and
 * move_in() brings the processes in. 0 when there is nothing to add (or no such hierarchy:
 * the limit then reports the missing controller). */
static int add_hier(struct cr_cg *cg, unsigned bit, bool *added, char *err, size_t errlen)
{
    if (hier(cg, bit))
        return 0;
    for (int i = 0; i < cg->nu; i++) {
        if (!(cg->unused[i].ctrls & bit))
            continue;
        char dir[PATH_MAX];
        bool created;
        if (cg_dir(&cg->unused[i], cg->root, cg->leaf, dir, sizeof dir) < 0)
            return cg_err(err, errlen, -ENAMETOOLONG, "%s: path too long", cg->unused[i].dir);
        int rc = cg_make_dir(dir, &created, err, errlen);
        if (rc < 0)
            return rc;
        cg->h[cg->nh++] = cg->unused[i];
        cg->unused[i] = cg->unused[--cg->nu];
        *added = true;
        return 0;
    }
    return 0;
}

static bool has_pid(const pid_t *pids, size_t n, pid_t p)
{
    for (size_t i = 0; i < n; i++)
        if (pids[i] == p)
            return true;
    return false;
}

/* Writes each process of the cgroup (the freezer's cgroup.procs, else the first
 * hierarchy's) into its directory in hierarchy h, again until a pass finds them all there
 * (a fork meanwhile leaves the child behind). A process that exits meanwhile is no error. */
static int move_in(struct cr_cg *cg, const struct cg_hier *h, char *err, size_t errlen)
{
    char from[PATH_MAX + 16], dir[PATH_MAX], to[PATH_MAX + 16];
    int rc = cg1_procs_path(cg, from, sizeof from);
    if (rc < 0)
        return cg_err(err, errlen, rc, "%s: path too long", cg->path);
    cg_dir(h, cg->root, cg->leaf, dir, sizeof dir);
    snprintf(to, sizeof to, "%s/cgroup.procs", dir);
    for (int pass = 0; pass < 10; pass++) {
        pid_t *src = NULL, *dst = NULL;
        size_t ns = 0, nd = 0;
        rc = cg_read_pids(from, &src, &ns);
        if (rc < 0)
            return cg_err(err, errlen, rc, "%s: %s", from, strerror(-rc));
        if (cg_read_pids(to, &dst, &nd) < 0)
            nd = 0;
        bool moved = false;
        for (size_t k = 0; k < ns && rc == 0; k++) {
            if (has_pid(dst, nd, src[k]))
                continue;
            char v[24];
            snprintf(v, sizeof v, "%d", (int)src[k]);
            rc = cg_write(to, v, err, errlen);
            if (rc == -ESRCH)
                rc = 0;
            moved = true;
        }
        free(src);
        free(dst);
        if (rc < 0 || !moved)
            return rc;
    }
    return cg_err(err, errlen, -EAGAIN, "%s: processes keep forking while moved", to);
}

static int set_limits(struct cr_cg *cg, const struct cr_cg_limits *l, bool all, char *err,
                      size_t errlen)
{
    int rc = set_memory(cg, l, all, err, errlen);
    if (rc == 0)
        rc = set_cpu(cg, l, all, err, errlen);
    char v[32];
    if (rc == 0 && (all || l->pids_max != -1)) {
        const struct cg_hier *h = hier(cg, CG1_PIDS);
        if (!h || !cg->caps.pids) {
            if (l->pids_max != -1)
                return missing(err, errlen, "pids_max", "pids controller");
        } else {
            fmt_or(v, sizeof v, l->pids_max, "max");
            rc = write_at(cg, h, "pids.max", v, err, errlen);
        }
    }
    if (rc == 0 && (all || l->io_weight != -1)) {
        const struct cg_hier *h = hier(cg, CG1_BLKIO);
        if (!h || !cg->caps.io_weight) {
            if (l->io_weight != -1)
                return missing(err, errlen, "io_weight", "blkio.weight or blkio.bfq.weight");
        } else {
            bool bfq = !strcmp(cg->caps.io_weight_file, "blkio.bfq.weight");
            snprintf(v, sizeof v, "%lld", (long long)cr_cg_weight_to_blkio(
                         l->io_weight != -1 ? l->io_weight : 100, bfq));
            rc = write_at(cg, h, cg->caps.io_weight_file, v, err, errlen);
        }
    }
    return rc;
}

static int cg1_set_limits(struct cr_cg *cg, const struct cr_cg_limits *l, bool all, char *err,
                   size_t errlen)
{
    /* Where the cgroup's processes must follow (a reload adding a cpu or io limit). */
    bool add_cpu = false, add_io = false;
    unsigned want = cg1_needs(l, false);   /* for its cpu and blkio bits */
    int rc = 0;
    if (want & CG1_CPU)
        rc = add_hier(cg, CG1_CPU, &add_cpu, err, errlen);
    if (rc == 0 && (want & CG1_BLKIO))
        rc = add_hier(cg, CG1_BLKIO, &add_io, err, errlen);
    if (rc == 0)
        rc = set_limits(cg, l, all, err, errlen);
    if (rc == 0 && add_cpu)
        rc = move_in(cg, hier(cg, CG1_CPU), err, errlen);
    if (rc == 0 && add_io)
        rc = move_in(cg, hier(cg, CG1_BLKIO), err, errlen);
    return rc;
}

static int cg1_attach(struct cr_cg *cg, pid_t pid, char *err, size_t errlen)
{
    char v[24];
    snprintf(v, sizeof v, "%d", (int)pid);
    for (int i = 0; i < cg->nh; i++) {
        int rc = write_at(cg, &cg->h[i], "cgroup.procs", v, err, errlen);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int cg1_self_attach_open(const struct cr_cg *cg, int *fds, int max, char *err, size_t errlen)
{
    if (cg->nh > max)
        return cg_err(err, errlen, -E2BIG, "%s: too many hierarchies", cg->path);
    for (int i = 0; i < cg->nh; i++) {
        char dir[PATH_MAX], path[PATH_MAX + 16];
        cg_dir(&cg->h[i], cg->root, cg->leaf, dir, sizeof dir);
        snprintf(path, sizeof path, "%s/tasks", dir);
        fds[i] = open(path, O_WRONLY | O_CLOEXEC);
        if (fds[i] < 0) {
            int e = errno;
            while (i--)
                close(fds[i]);
            return cg_err(err, errlen, -e, "%s: %s", path, strerror(e));
        }
    }
    return cg->nh;
}

static int cg1_procs_path(const struct cr_cg *cg, char *buf, size_t len)
{
    const struct cg_hier *h = hier(cg, CG1_FREEZER);
    char dir[PATH_MAX];
    int rc = cg_dir(h ? h : &cg->h[0], cg->root, cg->leaf, dir, sizeof dir);
    if (rc < 0)
        return rc;
    return snprintf(buf, len, "%s/cgroup.procs", dir) >= (int)len ? -ENAMETOOLONG : 0;
}

static int cg1_kill_pass(struct cr_cg *cg);

/* Freeze, so that nothing forks or escapes while we read the list; SIGKILL everything in
 * every hierarchy's copy of the cgroup (a process could have been moved in one only); thaw
 * so the kills are delivered (a v1-frozen task does not die until thawed); then wait,
 * polling, for the cgroup to empty. Without a freezer (or when freezing does not finish in
 * time: a task in uninterruptible sleep), the kill loop catches what forks meanwhile. */
static int cg1_kill(struct cr_cg *cg, char *err, size_t errlen)
{
    int64_t start = cg_now_ms();
    const struct cg_hier *fz = hier(cg, CG1_FREEZER);
    char state[PATH_MAX + 32];
    if (fz) {
        char dir[PATH_MAX];
        cg_dir(fz, cg->root, cg->leaf, dir, sizeof dir);
        snprintf(state, sizeof state, "%s/freezer.state", dir);
        int rc = cg_write(state, "FROZEN", NULL, 0);
        if (rc == -ENOENT)
            fz = NULL; /* gone (or never made) */
        /* FREEZING until every task reached the refrigerator; a bounded wait, as a task in
         * uninterruptible sleep can hold it up — the kill loop below copes either way. */
        while (fz && rc == 0) {
            char s[32];
            if (cg_read(state, s, sizeof s) < 0 || !strncmp(s, "FROZEN", 6) ||
                cg_now_ms() - start >= CG_FREEZE_WAIT_MS)
                break;
            cg_sleep_ms(1);
        }
    }
    cg1_kill_pass(cg);
    if (fz)
        cg_write(state, "THAWED", NULL, 0);
    int rc = 0;
    for (int i = 0; i < cg->nh && rc == 0; i++) {
        char dir[PATH_MAX], procs[PATH_MAX + 16];
        cg_dir(&cg->h[i], cg->root, cg->leaf, dir, sizeof dir);
        snprintf(procs, sizeof procs, "%s/cgroup.procs", dir);
        int left = CG_KILL_WAIT_MS - (int)(cg_now_ms() - start);
        rc = cg_kill_loop(procs, left > 10 ? left : 10, err, errlen);
    }
    return rc;
}

static int64_t read_at(const struct cr_cg *cg, unsigned bit, const char *file, const char *key)
{
    const struct cg_hier *h = hier(cg, bit);
    if (!h)
        return -1;
    char dir[PATH_MAX], path[PATH_MAX + 64];
    cg_dir(h, cg->root, cg->leaf, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/%s", dir, file);
    int64_t v;
    int rc = key ? cg_read_key(path, key, &v) : cg_read_i64(path, &v);
    return rc < 0 ? -1 : v;
}

static int64_t cg1_oom_kills(struct cr_cg *cg)
{
    return read_at(cg, CG1_MEMORY, "memory.oom_control", "oom_kill");
}

static int64_t cg1_memory_peak(struct cr_cg *cg)
{
    return read_at(cg, CG1_MEMORY, "memory.max_usage_in_bytes", NULL);
}

static void cg1_stats(struct cr_cg *cg, struct cr_cg_stats *st)
{
    st->memory_current = read_at(cg, CG1_MEMORY, "memory.usage_in_bytes", NULL);
    st->memory_peak = read_at(cg, CG1_MEMORY, "memory.max_usage_in_bytes", NULL);
    /* The v1 oom_kill counter counts this cgroup only (no roll-up to the parent). */
    st->oom_kills = read_at(cg, CG1_MEMORY, "memory.oom_control", "oom_kill");
    int64_t ns = read_at(cg, CG1_CPUACCT, "cpuacct.usage", NULL);
    st->cpu_usage_us = ns < 0 ? -1 : ns / 1000;
    st->pids_current = read_at(cg, CG1_PIDS, "pids.current", NULL);
}

static int cg1_remove(struct cr_cg *cg, int wait_ms, char *err, size_t errlen)
{
    int ret = 0;
    /* The hierarchies it is not made in too: a leftover of an earlier cgroup of the same
     * name (made with a cpu or io limit) is removed with it (normally ENOENT, cheap). */
    for (int i = 0; i < cg->nh + cg->nu; i++) {
        const struct cg_hier *h = i < cg->nh ? &cg->h[i] : &cg->unused[i - cg->nh];
        char dir[PATH_MAX];
        cg_dir(h, cg->root, cg->leaf, dir, sizeof dir);
        int rc = 0;
        if (rmdir(dir) < 0 && errno != ENOENT) {
            /* EBUSY: a process still leaving, or child cgroups made from inside: kill and
             * remove the subtree, retrying for a bounded time. */
            if (errno == EBUSY || errno == ENOTEMPTY)
                rc = cg_kill_remove_tree(dir, wait_ms, err, errlen);
            else
                rc = cg_err(err, errlen, -errno, "%s: rmdir: %s", dir, strerror(errno));
        }
        if (rc < 0 && !ret) {
            ret = rc;
            err = NULL;  /* keep the first message */
            wait_ms = 0; /* and do not wait again in every other hierarchy */
        }
    }
    return ret;
}

static int freezer_state_path(const struct cr_cg *cg, char *buf, size_t len)
{
    const struct cg_hier *fz = hier(cg, CG1_FREEZER);
    char dir[PATH_MAX];
    if (!fz || cg_dir(fz, cg->root, cg->leaf, dir, sizeof dir) < 0)
        return -ENOTSUP;
    return snprintf(buf, len, "%s/freezer.state", dir) >= (int)len ? -ENAMETOOLONG : 0;
}

static int cg1_freeze(struct cr_cg *cg, bool on)
{
    char state[PATH_MAX + 32];
    int rc = freezer_state_path(cg, state, sizeof state);
    return rc < 0 ? rc : cg_write(state, on ? "FROZEN" : "THAWED", NULL, 0);
}

static int cg1_frozen(struct cr_cg *cg)
{
    char state[PATH_MAX + 32], s[32];
    if (freezer_state_path(cg, state, sizeof state) < 0 || cg_read(state, s, sizeof s) < 0)
        return 1;
    return !strncmp(s, "FROZEN", 6);
}

/* Every hierarchy's copy: a process could have been moved in one only. Returns the largest
 * count of one hierarchy. */
static int cg1_kill_pass(struct cr_cg *cg)
{
    int total = 0;
    bool any = false;
    for (int i = 0; i < cg->nh; i++) {
        char dir[PATH_MAX], procs[PATH_MAX + 16];
        cg_dir(&cg->h[i], cg->root, cg->leaf, dir, sizeof dir);
        snprintf(procs, sizeof procs, "%s/cgroup.procs", dir);
        pid_t *pids;
        size_t n;
        if (cg_read_pids(procs, &pids, &n) < 0)
            continue;
        any = true;
        for (size_t k = 0; k < n; k++)
            kill(pids[k], SIGKILL);
        free(pids);
        if ((int)n > total)
            total = (int)n;   /* the same processes in each: counted once */
    }
    return any ? total : -ENOENT;
}

const struct cg_ops cg1_ops = {
    .freeze = cg1_freeze,
    .frozen = cg1_frozen,
    .kill_pass = cg1_kill_pass,
    .root_prepare = cg1_root_prepare,
    .root_enter = cg1_root_enter,
    .needs = cg1_needs,
    .select = cg1_select,
    .ctrl_bits = cg1_ctrl_bits,
    .create = cg1_create,
    .set_limits = cg1_set_limits,
    .devices = cg1_devices,
    .attach = cg1_attach,
    .self_attach_open = cg1_self_attach_open,
    .kill = cg1_kill,
    .procs_path = cg1_procs_path,
    .stats = cg1_stats,
    .oom_kills = cg1_oom_kills,
    .memory_peak = cg1_memory_peak,
    .remove = cg1_remove,
};
