/* cgroups: the part both backends share — file helpers, argument checks, the leftover sweep
 * of cr_cg_root_open, and dispatch to cgroup_v1.c / cgroup_v2.c. */
#include "cgroup/internal.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers -------------------------------------------------------------------------------- */

int cg_err(char *err, size_t errlen, int r, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return r;
}

int cg_write(const char *path, const char *val, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return cg_err(err, errlen, -errno, "%s: %s", path, strerror(errno));
    size_t n = strlen(val);
    ssize_t w = write(fd, val, n);
    int e = w < 0 ? errno : 0;
    close(fd);
    if (w < 0)
        return cg_err(err, errlen, -e, "%s: writing '%s': %s", path, val, strerror(e));
    if ((size_t)w != n)
        return cg_err(err, errlen, -EIO, "%s: short write of '%s'", path, val);
    return 0;
}

int cg_read(const char *path, char *buf, size_t len)
{
    if (len)
        buf[0] = '\0';                  /* a string on every path, failures included */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t got = 0;
    while (got + 1 < len) {
        ssize_t n = read(fd, buf + got, len - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            return -e;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    return 0;
}

int cg_read_i64(const char *path, int64_t *v)
{
    char buf[64];
    int r = cg_read(path, buf, sizeof buf);
    if (r < 0)
        return r;
    if (!strncmp(buf, "max", 3)) {
        *v = INT64_MAX;
        return 0;
    }
    char *end;
    errno = 0;
    long long x = strtoll(buf, &end, 10);
    if (end == buf || errno)
        return -EINVAL;
    *v = x;
    return 0;
}

int cg_read_key(const char *path, const char *key, int64_t *v)
{
    char buf[4096];
    int r = cg_read(path, buf, sizeof buf);
    if (r < 0)
        return r;
    size_t kl = strlen(key);
    for (char *line = buf; line && *line; ) {
        char *nl = strchr(line, '\n');
        if (!strncmp(line, key, kl) && line[kl] == ' ') {
            *v = strtoll(line + kl + 1, NULL, 10);
            return 0;
        }
        line = nl ? nl + 1 : NULL;
    }
    return -ENOENT;
}

int cg_read_pids(const char *procs_path, pid_t **pids, size_t *n)
{
    *pids = NULL;
    *n = 0;
    int fd = open(procs_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    /* cgroup.procs can be long: read it whole into a growing buffer. */
    size_t cap = 4096, got = 0;
    char *buf = malloc(cap);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    for (;;) {
        if (got + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                close(fd);
                return -ENOMEM;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + got, cap - 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            free(buf);
            close(fd);
            return -e;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    buf[got] = '\0';
    size_t count = 0;                   /* lines, a last one without '\n' included */
    for (size_t i = 0; i < got; i++)
        count += buf[i] == '\n';
    if (got && buf[got - 1] != '\n')
        count++;
    pid_t *out = count ? calloc(count + 1, sizeof *out) : NULL;
    if (count && !out) {
        free(buf);
        return -ENOMEM;
    }
    size_t k = 0;
    for (char *p = buf; *p && k < count; ) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p)
            break;
        if (v > 0)
            out[k++] = (pid_t)v;
        p = end;
        while (*p == '\n' || *p == ' ')
            p++;
    }
    free(buf);
    *pids = out;
    *n = k;
    return 0;
}

int64_t cg_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void cg_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

int cg_kill_loop(const char *procs_path, int wait_ms, char *err, size_t errlen)
{
    int64_t deadline = cg_now_ms() + wait_ms;
    for (int round = 0;; round++) {
        pid_t *pids;
        size_t n;
        int r = cg_read_pids(procs_path, &pids, &n);
        if (r == -ENOENT)
            return 0;
        if (r < 0)
            return cg_err(err, errlen, r, "%s: %s", procs_path, strerror(-r));
        for (size_t i = 0; i < n; i++)
            kill(pids[i], SIGKILL);
        free(pids);
        if (n == 0)
            return 0;
        if (cg_now_ms() >= deadline)
            return cg_err(err, errlen, -EBUSY, "%s: %zu process(es) still there after %d ms "
                          "of SIGKILL", procs_path, n, wait_ms);
        /* Killed processes leave cgroup.procs as they exit: poll fast, then slower. */
        cg_sleep_ms(round < 20 ? 1 : 5);
    }
}

int cg_kill_remove_tree(const char *dir, int wait_ms, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : cg_err(err, errlen, -errno, "%s: %s", dir, strerror(errno));
    int ret = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_type != DT_DIR || e->d_name[0] == '.')
            continue;
        char sub[PATH_MAX];
        if (snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name) >= (int)sizeof sub)
            continue;
        int r = cg_kill_remove_tree(sub, wait_ms, err, errlen);
        if (r < 0 && !ret)
            ret = r;
    }
    closedir(d);
    if (ret < 0)
        return ret;
    char procs[PATH_MAX];
    snprintf(procs, sizeof procs, "%s/cgroup.procs", dir);
    int r = cg_kill_loop(procs, wait_ms, err, errlen);
    if (r < 0)
        return r;
    int64_t deadline = cg_now_ms() + wait_ms;
    while (rmdir(dir) < 0) {
        if (errno == ENOENT)
            return 0;
        if (errno != EBUSY || cg_now_ms() >= deadline)
            return cg_err(err, errlen, -errno, "%s: rmdir: %s", dir, strerror(errno));
        cg_sleep_ms(1);
    }
    return 0;
}

int cg_make_dir(const char *dir, bool *created, char *err, size_t errlen)
{
    *created = false;
    if (mkdir(dir, 0755) == 0) {
        *created = true;
        return 0;
    }
    if (errno == EEXIST)
        return 0;
    return cg_err(err, errlen, -errno, "%s: mkdir: %s", dir, strerror(errno));
}

int cg_make_root_level(struct cr_cg_root *r, const char *base, size_t end, char *dir,
                       size_t dirlen, char *err, size_t errlen)
{
    if (snprintf(dir, dirlen, "%s/%.*s", base, (int)end, r->root) >= (int)dirlen)
        return cg_err(err, errlen, -ENAMETOOLONG, "%s/%s: path too long", base, r->root);
    bool created;
    int rc = cg_make_dir(dir, &created, err, errlen);
    if (created && end < r->made_from)
        r->made_from = end;
    return rc;
}

bool cg_run_leaf_alive(const char *name)
{
    const char *dash = strrchr(name, '-');
    if (!dash || !dash[1])
        return false;
    char *end;
    long pid = strtol(dash + 1, &end, 10);
    if (*end || pid <= 0)
        return false;
    return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

const char *cg_intern(const char *s)
{
    static char **tab;
    static size_t n, cap;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(tab[i], s))
            return tab[i];
    if (n == cap) {
        size_t ncap = cap ? 2 * cap : 8;
        char **t = realloc(tab, ncap * sizeof *t);
        if (!t)
            return NULL;
        tab = t;
        cap = ncap;
    }
    char *c = strdup(s);
    if (c)
        tab[n++] = c;
    return c;
}

int cg_dir(const struct cg_hier *h, const char *root, const char *leaf, char *buf, size_t len)
{
    const char *part[3] = {h->dir, root, leaf};
    size_t at = 0;
    for (int i = 0; i < 3 && part[i]; i++) {
        size_t n = strlen(part[i]);
        if (at + (i > 0) + n + 1 > len)
            return -ENAMETOOLONG;
        if (i > 0)
            buf[at++] = '/';
        memcpy(buf + at, part[i], n);
        at += n;
    }
    buf[at] = '\0';
    return 0;
}

/* ---- weights ------------------------------------------------------------------------------- */

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* systemd's mapping: proportional around the defaults (100 ↔ 1024), so the ratio between two
 * services' weights is kept; clamped to what cpu.shares takes. 1 → 10, 10000 → 102400. */
int64_t cr_cg_weight_to_shares(int64_t weight)
{
    return clamp64(weight * 1024 / 100, 2, 262144);
}

/* BFQ's v1 blkio.bfq.weight has the same default (100) and range 1..1000: the weight as is,
 * clamped. The old CFQ blkio.weight (default 500, 10..1000): systemd's ×5, clamped. */
int64_t cr_cg_weight_to_blkio(int64_t weight, bool bfq)
{
    return bfq ? clamp64(weight, 1, 1000) : clamp64(weight * 500 / 100, 10, 1000);
}

/* ---- arguments ------------------------------------------------------------------------------- */

void cr_cg_limits_init(struct cr_cg_limits *l)
{
    l->memory_max = l->memory_high = l->memory_swap_max = -1;
    l->cpu_quota_us = -1;
    l->cpu_period_us = -1;
    l->cpu_weight = -1;
    l->pids_max = -1;
    l->io_weight = -1;
    l->confine_devices = false;
    l->devices = NULL;
    l->ndevices = 0;
}

/* A cgroup_root: relative, '/'-separated words of [A-Za-z0-9_.-], no "." or "..". */
static bool valid_rel_path(const char *p, bool allow_slash)
{
    if (!*p || *p == '/' || strlen(p) > 200)
        return false;
    const char *word = p;
    for (const char *c = p;; c++) {
        if (*c == '/' || *c == '\0') {
            size_t n = (size_t)(c - word);
            if (n == 0 || (n == 1 && word[0] == '.') || (n == 2 && !strncmp(word, "..", 2)))
                return false;
            if (*c == '\0')
                return true;
            if (!allow_slash)
                return false;
            word = c + 1;
        } else if (!isalnum((unsigned char)*c) && !strchr("_.-", *c)) {
            return false;
        }
    }
}

static int check_limits(const struct cr_cg_limits *l, char *err, size_t errlen)
{
    const struct { const char *name; int64_t v, lo, hi; } rows[] = {
        {"memory_max", l->memory_max, 0, INT64_MAX},
        {"memory_high", l->memory_high, 0, INT64_MAX},
        {"memory_swap_max", l->memory_swap_max, 0, INT64_MAX},
        {"cpu_max quota", l->cpu_quota_us, 1000, INT64_MAX},
        {"cpu_max period", l->cpu_period_us, 1000, 1000000},
        {"cpu_weight", l->cpu_weight, 1, 10000},
        {"pids_max", l->pids_max, 0, INT64_MAX},
        {"io_weight", l->io_weight, 1, 10000},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if (rows[i].v != -1 && (rows[i].v < rows[i].lo || rows[i].v > rows[i].hi))
            return cg_err(err, errlen, -EINVAL, "%s: %lld is out of range", rows[i].name,
                          (long long)rows[i].v);
    return 0;
}

/* ---- root ------------------------------------------------------------------------------------ */

static bool has_procs(const struct cg_hier *h, const char *root, const char *leaf)
{
    char dir[PATH_MAX], procs[PATH_MAX + 16];
    if (cg_dir(h, root, leaf, dir, sizeof dir) < 0)
        return false;
    snprintf(procs, sizeof procs, "%s/cgroup.procs", dir);
    pid_t *pids;
    size_t n;
    if (cg_read_pids(procs, &pids, &n) < 0)
        return false;
    free(pids);
    return n > 0;
}

/* (Re)fills a cgroup made by cg_new() from its root. */
static void cg_from_root(struct cr_cg *cg, const struct cr_cg_root *r, const char *leaf)
{
    size_t pathlen = cg->pathlen;
    const char *root = cg->root;
    memset(cg, 0, sizeof *cg);
    cg->pathlen = pathlen;
    cg->root = root;
    cg->version = r->version;
    cg->caps = r->caps;
    cg->nh = r->nh;
    memcpy(cg->h, r->h, sizeof r->h);
    snprintf(cg->leaf, sizeof cg->leaf, "%s", leaf);
    cg_dir(&cg->h[0], cg->root, cg->leaf, cg->path, cg->pathlen);
    cg->dirfd = -1;
}

/* v1: the hierarchies a cgroup with limits lim is made in (r's policy: lean for `run`, whose
 * leaf's name is its own, so it has no leftover to look for in the others). */
static void cg_pick(struct cr_cg *cg, const struct cr_cg_root *r, const struct cr_cg_limits *lim)
{
    if (cg->version != 1)
        return;
    cg1_select(cg, cg1_needs(lim, r->lean));
    if (r->lean)
        cg->nu = 0;
}

/* A cgroup named leaf under r, with room for its path in any of r's hierarchies; NULL
 * without memory. */
static struct cr_cg *cg_new(const struct cr_cg_root *r, const char *leaf)
{
    size_t dir = 0;
    for (int i = 0; i < r->nh; i++)
        if (strlen(r->h[i].dir) > dir)
            dir = strlen(r->h[i].dir);
    const char *root = cg_intern(r->root);
    size_t pathlen = dir + strlen(r->root) + strlen(leaf) + 3;
    struct cr_cg *cg = root ? malloc(sizeof *cg + pathlen) : NULL;
    if (!cg)
        return NULL;
    cg->pathlen = pathlen;
    cg->root = root;
    cg_from_root(cg, r, leaf);
    return cg;
}

static int backend_kill(struct cr_cg *cg, char *err, size_t errlen)
{
    return cg->version == 2 ? cg2_kill(cg, err, errlen) : cg1_kill(cg, err, errlen);
}

/* wait_ms bounds the wait for a cgroup that will not empty (a task stuck in the kernel). */
static int backend_remove(struct cr_cg *cg, int wait_ms, char *err, size_t errlen)
{
    return cg->version == 2 ? cg2_remove(cg, wait_ms, err, errlen)
                            : cg1_remove(cg, wait_ms, err, errlen);
}

/* What an earlier supervisor left under <root>. The supervisor leaf is never touched. A live
 * supervisor is one with a process in that leaf: then its svc-* cgroups are its running
 * services and stay (this is how `supervisor run`, which opens the same root, leaves a
 * running supervisor alone; and a supervisor that opens its root a second time, being in
 * the leaf itself, does not sweep its own services). run-NAME-PID cgroups belong to `supervisor run`
 * instances: kept while they hold a process or their PID lives. Everything else is killed
 * and removed. */
static int sweep_leftovers(struct cr_cg_root *r, char *err, size_t errlen)
{
    /* v1: only where every service has its own cgroup; in cpu or blkio, a service without
     * such a limit stays in the supervisor leaf it was forked from, after its end too. */
    bool live_sup = false;
    for (int i = 0; i < r->nh; i++)
        if (r->version == 2 || (r->h[i].ctrls & CG1_BASE))
            live_sup |= has_procs(&r->h[i], r->root, "supervisor");
    int ret = 0;
    for (int i = 0; i < r->nh; i++) {
        char dir[PATH_MAX];
        if (cg_dir(&r->h[i], r->root, NULL, dir, sizeof dir) < 0)
            continue;
        DIR *d = opendir(dir);
        if (!d)
            continue;
        struct dirent *e;
        while ((e = readdir(d))) {
            const char *name = e->d_name;
            if (e->d_type != DT_DIR || name[0] == '.' || !strcmp(name, "supervisor") ||
                strlen(name) >= sizeof ((struct cr_cg *)0)->leaf)
                continue;
            bool run = !strncmp(name, "run-", 4);
            if (run) {
                bool busy = false;
                for (int j = 0; j < r->nh; j++)
                    busy |= has_procs(&r->h[j], r->root, name);
                if (busy || cg_run_leaf_alive(name))
                    continue;
            } else if (live_sup) {
                continue;
            }
            struct cr_cg *cg = cg_new(r, name);
            if (!cg) {
                ret = -ENOMEM;
                break;
            }
            /* The leftover is removed from every hierarchy at once, so later hierarchies
             * simply no longer list it. */
            int k = backend_kill(cg, err, errlen);
            int m = backend_remove(cg, k < 0 ? 0 : CG_KILL_WAIT_MS, err, errlen);
            if ((k < 0 || m < 0) && !ret)
                ret = k < 0 ? k : m;
            free(cg);
        }
        closedir(d);
    }
    return ret;
}

/* Where the caller is now, per hierarchy, from /proc/self/cgroup ("0::/path" on v2;
 * "N:cpu,cpuacct:/path" on v1): cr_cg_root_leave() moves it back there. */
static void remember_origin(struct cr_cg_root *r)
{
    char buf[8192];
    if (cg_read("/proc/self/cgroup", buf, sizeof buf) < 0)
        return;
    for (char *line = buf, *nl; line && *line; line = nl ? nl + 1 : NULL) {
        nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2 || c2[1] != '/' || strlen(c2 + 1) >= sizeof r->origin[0])
            continue;
        const char *path = c2 + 1;
        if (r->version == 2) {
            if (c2 == c1 + 1 && !strncmp(line, "0:", 2))
                snprintf(r->origin[0], sizeof r->origin[0], "%s", path);
            continue;
        }
        unsigned bits = cg1_ctrl_bits(c1 + 1, (size_t)(c2 - c1 - 1));
        for (int i = 0; i < r->nh; i++)
            if (r->h[i].ctrls & bits)
                snprintf(r->origin[i], sizeof r->origin[i], "%s", path);
    }
}

static int root_prepare(struct cr_cg_root *r, char *err, size_t errlen)
{
    if (r->version == 2)
        return cg2_root_prepare(r, err, errlen);
    if (r->version == 1)
        return cg1_root_prepare(r, err, errlen);
    return cg_err(err, errlen, -ENOENT, "%s: no cgroup hierarchy found (neither cgroup2 nor "
                  "v1 controllers)", r->mount);
}

static int root_enter(struct cr_cg_root *r, bool move_self, char *err, size_t errlen)
{
    return r->version == 2 ? cg2_root_enter(r, move_self, err, errlen)
                           : cg1_root_enter(r, move_self, err, errlen);
}

/* The one way in: shared (`supervisor run`) makes no leaf, sweeps nothing, moves nothing. */
static int root_open(const char *mount, const char *root, bool move_self, bool shared,
                     const struct cr_cg_limits *lim, struct cr_cg_root **out, char *err,
                     size_t errlen)
{
    *out = NULL;
    if (!mount)
        mount = CR_CGROUP_MOUNT;
    if (!root || !valid_rel_path(root, true))
        return cg_err(err, errlen, -EINVAL, "cgroup root '%s' is not a relative path of "
                      "A-Z a-z 0-9 _ . - words", root ? root : "(null)");
    struct cr_cg_root *r = calloc(1, sizeof *r);
    if (!r)
        return cg_err(err, errlen, -ENOMEM, "out of memory");
    cr_cgroup_probe_last(mount, &r->caps);
    r->version = r->caps.version;
    r->leaf = !shared;
    r->lean = shared;
    r->only = lim && r->version == 1 ? cg1_needs(lim, r->lean) : 0;
    r->made_from = SIZE_MAX;
    snprintf(r->root, sizeof r->root, "%s", root);
    snprintf(r->mount, sizeof r->mount, "%s", mount);
    /* A supervisor or `run` that exits removes <root> when it is empty (cr_cg_root_leave):
     * if that happens between our mkdir and our use of it, the next step sees ENOENT, and
     * doing it all again is enough. */
    int rc;
    for (int tries = 0;; tries++) {
        rc = root_prepare(r, err, errlen);
        if (rc == 0 && !shared)
            rc = sweep_leftovers(r, err, errlen);
        if (rc == 0 && move_self)
            remember_origin(r);
        if (rc == 0)
            rc = root_enter(r, move_self, err, errlen);
        if (rc != -ENOENT || tries == 2 || r->version == 0)
            break;
    }
    if (rc < 0) {
        free(r);
        return rc;
    }
    r->moved = move_self;
    *out = r;
    return 0;
}

int cr_cg_root_open(const char *mount, const char *root, bool move_self,
                    struct cr_cg_root **out, char *err, size_t errlen)
{
    return root_open(mount, root, move_self, false, NULL, out, err, errlen);
}

int cr_cg_root_open_shared(const char *mount, const char *root, const struct cr_cg_limits *lim,
                           struct cr_cg_root **out, char *err, size_t errlen)
{
    return root_open(mount, root, false, true, lim, out, err, errlen);
}

/* rmdir that counts "not there" as done; -errno otherwise. */
static int rmdir_gone(const char *dir)
{
    return rmdir(dir) == 0 || errno == ENOENT ? 0 : -errno;
}

int cr_cg_root_leave(struct cr_cg_root *r, char *err, size_t errlen)
{
    int ret = 0;
    char pid[24];
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    for (int i = 0; i < r->nh; i++) {
        const struct cg_hier *h = &r->h[i];
        char dir[PATH_MAX], procs[PATH_MAX + 16];
        if (r->only && !(h->ctrls & r->only))
            continue;             /* not made there by this open */
        if (r->moved) {
            /* Back where we came from; if that is gone (or refuses us), the hierarchy's
             * root, which always takes a process. */
            const char *o = r->origin[i][0] ? r->origin[i] : "/";
            snprintf(procs, sizeof procs, "%s%s%scgroup.procs", h->dir, o,
                     o[strlen(o) - 1] == '/' ? "" : "/");
            int rc = cg_write(procs, pid, ret ? NULL : err, errlen);
            if (rc < 0) {
                snprintf(procs, sizeof procs, "%s/cgroup.procs", h->dir);
                if (cg_write(procs, pid, NULL, 0) == 0)
                    rc = 0;
            }
            if (rc < 0 && !ret)
                ret = rc;
        }
        /* EBUSY or ENOTEMPTY: still in use (a process, a service, a `run`): it stays. */
        int rc = 0;
        if (r->leaf && cg_dir(h, r->root, "supervisor", dir, sizeof dir) == 0) {
            rc = rmdir_gone(dir);
            if (rc < 0 && rc != -EBUSY && rc != -ENOTEMPTY && !ret)
                ret = cg_err(err, errlen, rc, "%s: rmdir: %s", dir, strerror(-rc));
        }
        /* <root> itself, then each level above it that this open created. */
        for (size_t end = strlen(r->root); rc == 0 && end > 0; end--) {
            if (r->root[end] != '/' && r->root[end] != '\0')
                continue;
            if (end < strlen(r->root) && end < r->made_from)
                break;
            if (snprintf(dir, sizeof dir, "%s/%.*s", h->dir, (int)end, r->root) >=
                (int)sizeof dir)
                break;
            rc = rmdir_gone(dir);
            if (rc < 0 && rc != -EBUSY && rc != -ENOTEMPTY && !ret)
                ret = cg_err(err, errlen, rc, "%s: rmdir: %s", dir, strerror(-rc));
        }
    }
    r->moved = false;
    return ret;
}

void cr_cg_root_close(struct cr_cg_root *r)
{
    free(r);
}

const struct cr_cgroup_caps *cr_cg_root_caps(const struct cr_cg_root *r)
{
    return &r->caps;
}

/* ---- one cgroup ------------------------------------------------------------------------------ */

/* The device rules, before anything runs in the cgroup. */
static int cg_devices(struct cr_cg *cg, const struct cr_cg_limits *lim, char *err, size_t errlen)
{
    if (cg->version == 1)
        return cg1_devices(cg, lim, err, errlen);
    char why[256];
    int rc = cr_cg_devices_v2(cg->dirfd, lim->devices, lim->ndevices, why, sizeof why);
    return rc < 0 ? cg_err(err, errlen, rc, "%s: %s", cg->path, why) : 0;
}

int cr_cg_create(struct cr_cg_root *r, const char *leaf, const struct cr_cg_limits *lim,
                 struct cr_cg **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!leaf || !valid_rel_path(leaf, false) || !strcmp(leaf, "supervisor") ||
        strlen(leaf) >= sizeof ((struct cr_cg *)0)->leaf)
        return cg_err(err, errlen, -EINVAL, "cgroup name '%s' is not a word of A-Z a-z 0-9 "
                      "_ . - (or is reserved)", leaf ? leaf : "(null)");
    struct cr_cg_limits none;
    if (!lim) {
        cr_cg_limits_init(&none);
        lim = &none;
    }
    int rc = check_limits(lim, err, errlen);
    if (rc < 0)
        return rc;
    struct cr_cg *cg = cg_new(r, leaf);
    if (!cg)
        return cg_err(err, errlen, -ENOMEM, "out of memory");
    cg_pick(cg, r, lim);
    rc = cg->version == 2 ? cg2_create(cg, err, errlen) : cg1_create(cg, err, errlen);
    if (rc == -ENOENT) {
        /* <root> was removed under us (an exiting supervisor or `run` saw it empty): make
         * it again, once. */
        backend_remove(cg, 0, NULL, 0);
        if (cg->dirfd >= 0)
            close(cg->dirfd);
        cg_from_root(cg, r, leaf);
        cg_pick(cg, r, lim);
        rc = root_prepare(r, err, errlen);
        if (rc == 0)
            rc = root_enter(r, false, err, errlen);
        if (rc == 0)
            rc = cg->version == 2 ? cg2_create(cg, err, errlen) : cg1_create(cg, err, errlen);
    }
    if (rc == 0)
        /* A re-used leftover may carry old limits: then every limit is written. */
        rc = cg->version == 2 ? cg2_set_limits(cg, lim, !cg->fresh, err, errlen)
                              : cg1_set_limits(cg, lim, !cg->fresh, err, errlen);
    if (rc == 0 && lim->confine_devices)
        rc = cg_devices(cg, lim, err, errlen);
    if (rc < 0) {
        backend_remove(cg, CG_KILL_WAIT_MS, NULL, 0);
        if (cg->dirfd >= 0)
            close(cg->dirfd);
        free(cg);
        return rc;
    }
    *out = cg;
    return 0;
}

int cr_cg_set_limits(struct cr_cg *cg, const struct cr_cg_limits *lim, char *err, size_t errlen)
{
    int rc = check_limits(lim, err, errlen);
    if (rc < 0)
        return rc;
    return cg->version == 2 ? cg2_set_limits(cg, lim, true, err, errlen)
                            : cg1_set_limits(cg, lim, true, err, errlen);
}

int cr_cg_dirfd(const struct cr_cg *cg)
{
    return cg->version == 2 ? cg->dirfd : -1;
}

int cr_cg_attach(struct cr_cg *cg, pid_t pid, char *err, size_t errlen)
{
    return cg->version == 2 ? cg2_attach(cg, pid, err, errlen)
                            : cg1_attach(cg, pid, err, errlen);
}

int cr_cg_self_attach_open(const struct cr_cg *cg, int *fds, int max, char *err, size_t errlen)
{
    return cg->version == 2 ? 0 : cg1_self_attach_open(cg, fds, max, err, errlen);
}

int cr_cg_kill(struct cr_cg *cg, char *err, size_t errlen)
{
    return backend_kill(cg, err, errlen);
}

static int procs_path(const struct cr_cg *cg, char *buf, size_t len)
{
    return cg->version == 2 ? cg2_procs_path(cg, buf, len) : cg1_procs_path(cg, buf, len);
}

int cr_cg_signal(struct cr_cg *cg, int sig)
{
    char procs[PATH_MAX];
    int r = procs_path(cg, procs, sizeof procs);
    if (r < 0)
        return r;
    pid_t *pids;
    size_t n;
    r = cg_read_pids(procs, &pids, &n);
    if (r < 0)
        return r;
    for (size_t i = 0; i < n; i++)
        kill(pids[i], sig);
    free(pids);
    return 0;
}

bool cr_cg_is_empty(struct cr_cg *cg)
{
    if (cg->version == 2) {
        char path[PATH_MAX + 16];
        int64_t pop;
        snprintf(path, sizeof path, "%s/cgroup.events", cg->path);
        if (cg_read_key(path, "populated", &pop) == 0)
            return pop == 0;
    }
    char procs[PATH_MAX];
    if (procs_path(cg, procs, sizeof procs) < 0)
        return true;
    pid_t *pids;
    size_t n;
    if (cg_read_pids(procs, &pids, &n) < 0)
        return true; /* gone */
    free(pids);
    return n == 0;
}

void cr_cg_stats(struct cr_cg *cg, struct cr_cg_stats *st)
{
    st->memory_current = st->memory_peak = st->cpu_usage_us = -1;
    st->pids_current = st->oom_kills = -1;
    if (cg->version == 2)
        cg2_stats(cg, st);
    else
        cg1_stats(cg, st);
}

int64_t cr_cg_oom_kills(struct cr_cg *cg)
{
    return cg->version == 2 ? cg2_read(cg, "memory.events", "oom_kill") : cg1_oom_kills(cg);
}

int64_t cr_cg_memory_peak(struct cr_cg *cg)
{
    return cg->version == 2 ? cg2_read(cg, "memory.peak", NULL) : cg1_memory_peak(cg);
}

bool cr_cg_is_fresh(const struct cr_cg *cg)
{
    return cg->fresh;
}

int cr_cg_destroy(struct cr_cg *cg, char *err, size_t errlen)
{
    if (!cg)
        return 0;
    int rc = 0;
    if (!cr_cg_is_empty(cg))
        rc = backend_kill(cg, err, errlen);
    /* When the kill already waited in vain, removing does not wait again. */
    int r = backend_remove(cg, rc < 0 ? 0 : CG_KILL_WAIT_MS, rc < 0 ? NULL : err, errlen);
    if (rc == 0)
        rc = r;
    if (cg->dirfd >= 0)
        close(cg->dirfd);
    free(cg);
    return rc;
}

const char *cr_cg_path(const struct cr_cg *cg)
{
    return cg->path;
}
