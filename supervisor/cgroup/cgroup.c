/* cgroups: what both backends share above the files — argument checks, the leftover sweep of
 * cr_cg_root_open, the retries — and dispatch through the backend's table (v1.c, v2.c). */
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

int cr_cg_self_path(char *buf, size_t len)
{
    char all[8192];
    if (cg_read("/proc/self/cgroup", all, sizeof all) < 0)
        return -ENOENT;
    for (char *line = all, *nl; line && *line; line = nl ? nl + 1 : NULL) {
        nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        if (strncmp(line, "0::/", 4))
            continue;
        const char *p = line + 4;
        size_t n = strlen(p);
        while (n && p[n - 1] == '/')
            n--;
        if (n >= len)
            return -ENAMETOOLONG;
        memcpy(buf, p, n);
        buf[n] = '\0';
        return 0;
    }
    return -ENOENT;
}

/* Some process in <root>/leaf; with but_me, other than the caller (the caller may have moved
 * into its own leaf early: v2.c's move_early). */
static bool has_procs(const struct cg_hier *h, const char *root, const char *leaf, bool but_me)
{
    char dir[PATH_MAX], procs[PATH_MAX + 16];
    if (cg_dir(h, root, leaf, dir, sizeof dir) < 0)
        return false;
    snprintf(procs, sizeof procs, "%s/cgroup.procs", dir);
    pid_t *pids;
    size_t n;
    if (cg_read_pids(procs, &pids, &n) < 0)
        return false;
    bool any = false;
    for (size_t i = 0; i < n; i++)
        any |= !but_me || pids[i] != getpid();
    free(pids);
    return any;
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
    if (cg->nh)
        cg_dir(&cg->h[0], cg->root, cg->leaf, cg->path, cg->pathlen);
    else
        snprintf(cg->path, cg->pathlen, "none");   /* no cgroups: a process group */
    cg->dirfd = -1;
    cg->rp = r->reaper;
    cg->rhooks = r->hooks;
}

/* v1: the hierarchies a cgroup with limits lim is made in (r's policy: lean for `run`, whose
 * leaf's name is its own, so it has no leftover to look for in the others). */
static void cg_pick(struct cr_cg *cg, const struct cr_cg_root *r, const struct cr_cg_limits *lim)
{
    if (cg->version != 1)
        return;
    cg_ops(1)->select(cg, cg_ops(1)->needs(lim, r->lean));
    if (r->lean)
        cg->nu = 0;
}

/* A cgroup named leaf under r, with room for its path in any of r's hierarchies; NULL
 * without memory. */
struct cr_cg *cg_new(const struct cr_cg_root *r, const char *leaf)
{
    size_t dir = 0;
    for (int i = 0; i < r->nh; i++)
        if (strlen(r->h[i].dir) > dir)
            dir = strlen(r->h[i].dir);
    const char *root = cg_intern(r->root);
    size_t pathlen = dir + strlen(r->root) + strlen(leaf) + 8;
    struct cr_cg *cg = root ? malloc(sizeof *cg + pathlen) : NULL;
    if (!cg)
        return NULL;
    cg->pathlen = pathlen;
    cg->root = root;
    cg_from_root(cg, r, leaf);
    return cg;
}

/* What an earlier supervisor left under <root>. The supervisor leaf is never touched. A live
 * supervisor is one with a process in that leaf: then its svc-* cgroups are its running
 * services and stay (this is how `supervisor run`, which opens the same root, leaves a
 * running supervisor alone; and a supervisor that opens its root a second time, being in
 * the leaf itself, does not sweep its own services). run-NAME-PID cgroups belong to `supervisor run`
 * instances: kept while they hold a process or their PID lives. Everything else is killed
 * and removed: an empty one is simply removed; the others are killed as one batch (v1:
 * every one frozen before any is thawed), then removed as each empties. */
static bool sweep_wanted(struct cr_cg_root *r, const char *name, bool live_sup)
{
    if (name[0] == '.' || !strcmp(name, "supervisor") ||
        strlen(name) >= sizeof ((struct cr_cg *)0)->leaf)
        return false;
    if (strncmp(name, "run-", 4))
        return !live_sup;
    for (int j = 0; j < r->nh; j++)
        if (has_procs(&r->h[j], r->root, name, false))
            return false;
    return !cg_run_leaf_alive(name);
}

/* Every leftover to sweep, once each (a cgroup is listed in every hierarchy it is in). */
static int sweep_list(struct cr_cg_root *r, bool live_sup, struct cr_cg ***out, size_t *nout)
{
    struct cr_cg **v = NULL;
    size_t n = 0, cap = 0;
    for (int i = 0; i < r->nh; i++) {
        char dir[PATH_MAX];
        /* A live supervisor's leftovers can only be run-NAME-PID cgroups, which v1 makes in
         * the freezer hierarchy always (cg1_needs): the one listing read (a re-exec's). */
        if (live_sup && r->version == 1 && !(r->h[i].ctrls & CG1_FREEZER))
            continue;
        if (cg_dir(&r->h[i], r->root, NULL, dir, sizeof dir) < 0)
            continue;
        DIR *d = opendir(dir);
        if (!d)
            continue;
        struct dirent *e;
        size_t before = n;   /* names seen in earlier hierarchies: v[0..before) */
        while ((e = readdir(d))) {
            if (e->d_type != DT_DIR || !sweep_wanted(r, e->d_name, live_sup))
                continue;
            bool dup = false;
            for (size_t k = 0; k < before && !dup; k++)
                dup = !strcmp(v[k]->leaf, e->d_name);
            if (dup)
                continue;
            if (n == cap) {
                size_t ncap = cap ? 2 * cap : 64;
                struct cr_cg **nv = realloc(v, ncap * sizeof *nv);
                if (!nv)
                    break;
                v = nv;
                cap = ncap;
            }
            if (!(v[n] = cg_new(r, e->d_name)))
                break;
            n++;
        }
        closedir(d);
    }
    *out = v;
    *nout = n;
    return 0;
}

static int signal_procs(const struct cr_cg *cg, int sig);

/* The sweep's SIGKILL, before the freeze and once frozen: v1 reads one hierarchy's list
 * (the freezer's: what forks meanwhile is in it), not all seven. A process moved into
 * another hierarchy's copy only, or into a cgroup below, is killed when the copy is removed
 * (EBUSY: the subtree is killed) or by the full pass the wait makes every 8th round. */
static int first_pass(struct cr_cg *cg)
{
    int n = cg->version == 1 ? signal_procs(cg, SIGKILL) : -1;
    return n >= 0 ? n : cg_ops(cg->version)->kill_pass(cg);
}

/* Removed as each empties: the kills run in parallel in the kernel. Frees v. */
static int sweep_wait(struct cr_cg_root *r, struct cr_cg **v, size_t n, char *err,
                      size_t errlen)
{
    const struct cg_ops *ops = cg_ops(r->version);
    int ret = 0;
    size_t left = n;
    int64_t deadline = cg_now_ms() + CG_KILL_WAIT_MS;
    for (int round = 0; left; round++) {
        bool last = cg_now_ms() >= deadline;
        for (size_t i = 0; i < n; i++) {
            if (!v[i])
                continue;
            /* Killed, frozen and thawed: nothing in it can fork now, so one file says when
             * it is empty; the full pass again now and then, and at the end. */
            bool busy_now = round % 8 == 7 || last ? ops->kill_pass(v[i]) > 0
                                                   : !cr_cg_is_empty(v[i]);
            int rc = busy_now ? -EBUSY : ops->remove(v[i], 0, err, errlen);
            if ((rc == -EBUSY || rc == -ENOTEMPTY) && !last)
                continue;
            if (rc < 0) {
                if (rc == -EBUSY)
                    cg_err(err, errlen, rc, "%s: still populated %d ms after SIGKILL",
                           v[i]->path, CG_KILL_WAIT_MS);
                if (!ret)
                    ret = rc;
                r->swept.failed++;
            }
            free(v[i]);
            v[i] = NULL;
            left--;
        }
        if (left)
            cg_sleep_ms(round < 20 ? 1 : 5);
    }
    free(v);
    return ret;
}

int cg_sweep_finish(struct cr_cg_root *r, char *err, size_t errlen)
{
    struct cr_cg **v = r->left;
    size_t n = r->nleft;
    r->left = NULL;
    r->nleft = 0;
    return v ? sweep_wait(r, v, n, err, errlen) : 0;
}

static int sweep_leftovers(struct cr_cg_root *r, char *err, size_t errlen)
{
    int64_t t0 = cg_now_ms();
    cg_sweep_finish(r, NULL, 0);   /* an earlier try's (root_open retries) */
    memset(&r->swept, 0, sizeof r->swept);
    /* v1: only where every service has its own cgroup; in cpu or blkio, a service without
     * such a limit stays in the supervisor leaf it was forked from, after its end too. */
    bool live_sup = false;
    for (int i = 0; i < r->nh && !live_sup; i++)
        if (r->version == 2 || (r->h[i].ctrls & CG1_BASE))
            /* Moved early, this open put the caller there: it does not count. Resumed
             * after a re-exec, it is the live supervisor whose services these are. */
            live_sup = has_procs(&r->h[i], r->root, "supervisor", r->early && !r->resumed);
    struct cr_cg **v;
    size_t n;
    sweep_list(r, live_sup, &v, &n);
    if (!n) {
        free(v);
        return 0;
    }
    const struct cg_ops *ops = cg_ops(r->version);
    /* SIGKILL to what is there and a freeze, for every busy one; then, once they are frozen
     * (bounded), what forked meanwhile is killed too and all are thawed. */
    bool *busy = calloc(n, sizeof *busy);
    int procs = 0;
    size_t nbusy = 0;
    for (size_t i = 0; i < n; i++) {
        int k = first_pass(v[i]);
        if (k > 0 && busy) {
            procs += k;
            busy[i] = true;
            nbusy++;
            ops->freeze(v[i], true);
        }
    }
    if (nbusy) {
        for (size_t i = 0; i < n; i++)
            while (busy[i] && !ops->frozen(v[i]) && cg_now_ms() - t0 < CG_FREEZE_WAIT_MS)
                cg_sleep_ms(1);
        for (size_t i = 0; i < n; i++)
            if (busy[i])
                first_pass(v[i]);
        for (size_t i = 0; i < n; i++)
            if (busy[i])
                ops->freeze(v[i], false);
    }
    free(busy);
    r->swept.cgroups = (int)n;
    r->swept.procs = procs;
    int ret = 0;
    if (r->defer) {
        /* The supervisor's reaper removes them as they empty, between the first starts (a
         * new cgroup of the same name takes its leftover over first: the claim hook). */
        r->left = v;
        r->nleft = n;
    } else {
        ret = sweep_wait(r, v, n, err, errlen);
    }
    r->swept.ms = cg_now_ms() - t0;
    return ret;
}

const struct cr_cg_sweep *cr_cg_root_swept(const struct cr_cg_root *r)
{
    return &r->swept;
}

int cr_cg_root_handover(const struct cr_cg_root *r, char *buf, size_t len)
{
    if (!r || r->version != 2 || !r->moved || !r->origin[0][0])
        return 0;
    int n = snprintf(buf, len, "cgroup-home %d %zu %u %s\n", r->early ? 1 : 0, r->self_len,
                     r->early_added, r->origin[0]);
    return n > 0 && (size_t)n < len ? n : 0;
}


/* Where the caller is now, per hierarchy, from /proc/self/cgroup ("0::/path" on v2;
 * "N:cpu,cpuacct:/path" on v1): cr_cg_root_leave() moves it back there. */
static void remember_origin(struct cr_cg_root *r)
{
    char buf[8192];
    r->inside = 0;
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
        /* Already in our own leaf (a supervisor after a live re-exec): where it was before
         * is not known, so leaving goes to the hierarchy's root. */
        size_t rl = strlen(r->root);
        if (path[0] == '/' && !strncmp(path + 1, r->root, rl) &&
            !strcmp(path + 1 + rl, "/supervisor")) {
            if (r->version == 1)
                r->inside |= cg_ops(1)->ctrl_bits(c1 + 1, (size_t)(c2 - c1 - 1));
            continue;
        }
        if (r->version == 2) {
            if (c2 == c1 + 1 && !strncmp(line, "0:", 2))
                snprintf(r->origin[0], sizeof r->origin[0], "%s", path);
            continue;
        }
        unsigned bits = cg_ops(1)->ctrl_bits(c1 + 1, (size_t)(c2 - c1 - 1));
        for (int i = 0; i < r->nh; i++)
            if (r->h[i].ctrls & bits)
                snprintf(r->origin[i], sizeof r->origin[i], "%s", path);
    }
}

/* The "cgroup-home" line of a re-exec's state (cr_cg_root_handover), if any: where the old
 * program came from and what it turned on there. true when r took it. */
static bool resume_home(struct cr_cg_root *r, const char *state)
{
    const char *p = state ? strstr(state, "\ncgroup-home ") : NULL;
    if (r->version != 2 || !p)
        return false;
    int early, used = 0;
    size_t self_len;
    unsigned added;
    if (sscanf(p + 13, "%d %zu %u %n", &early, &self_len, &added, &used) != 3 || !used)
        return false;
    const char *o = p + 13 + used, *end = strchr(o, '\n');
    size_t olen = end ? (size_t)(end - o) : strlen(o);
    if (o[0] != '/' || olen >= sizeof r->origin[0] || self_len > strlen(r->root))
        return false;
    memcpy(r->origin[0], o, olen);
    r->origin[0][olen] = '\0';
    r->early = early != 0;
    r->self_len = self_len;
    r->early_added = added;
    r->resumed = true;
    return true;
}

static int root_prepare(struct cr_cg_root *r, char *err, size_t errlen)
{
    return cg_ops(r->version)->root_prepare(r, err, errlen);
}

static int root_enter(struct cr_cg_root *r, bool move_self, char *err, size_t errlen)
{
    return cg_ops(r->version)->root_enter(r, move_self, err, errlen);
}

/* The one way in: shared (`supervisor run`) makes no leaf, sweeps nothing, moves nothing. */
static int root_open(const char *mount, const char *root, bool move_self, bool shared,
                     bool defer, const struct cr_cg_limits *lim, const char *state,
                     struct cr_cg_root **out, char *err, size_t errlen)
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
    r->keep_root = shared;
    r->only = lim && r->version ? cg_ops(r->version)->needs(lim, r->lean) : 0;
    r->made_from = SIZE_MAX;
    r->defer = defer;
    snprintf(r->root, sizeof r->root, "%s", root);
    snprintf(r->mount, sizeof r->mount, "%s", mount);
    /* A supervisor or `run` that exits removes <root> when it is empty (cr_cg_root_leave):
     * if that happens between our mkdir and our use of it, the next step sees ENOENT, and
     * doing it all again is enough. */
    int rc;
    /* Where the caller is now, before any move (v2 may move it early, in root_prepare:
     * move_early; v1 knows its hierarchies only after root_prepare). */
    if (move_self && r->version == 2 && !resume_home(r, state))
        remember_origin(r);
    for (int tries = 0;; tries++) {
        rc = root_prepare(r, err, errlen);
        if (rc == 0 && !shared)
            rc = sweep_leftovers(r, err, errlen);
        if (rc == 0 && move_self && r->version != 2)
            remember_origin(r);
        if (rc == 0)
            rc = root_enter(r, move_self, err, errlen);
        if (rc != -ENOENT || tries == 2 || r->version == 0)
            break;
    }
    if (rc < 0) {
        cg_sweep_finish(r, NULL, 0);
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
    return root_open(mount, root, move_self, false, false, NULL, NULL, out, err, errlen);
}

int cr_cg_root_reopen(const char *mount, const char *root, const char *state,
                      struct cr_cg_root **out, char *err, size_t errlen)
{
    return root_open(mount, root, true, false, true, NULL, state, out, err, errlen);
}

int cr_cg_root_open_shared(const char *mount, const char *root, const struct cr_cg_limits *lim,
                           struct cr_cg_root **out, char *err, size_t errlen)
{
    return root_open(mount, root, false, true, false, lim, NULL, out, err, errlen);
}

/* rmdir that counts "not there" as done; -errno otherwise. */
static int rmdir_gone(const char *dir)
{
    return rmdir(dir) == 0 || errno == ENOENT ? 0 : -errno;
}

int cr_cg_root_leave(struct cr_cg_root *r, char *err, size_t errlen)
{
    cg_sweep_finish(r, NULL, 0);   /* no reaper took them: <root> is removed only empty */
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
            int rc = cg_write(procs, pid, NULL, 0);
            /* EBUSY: it passes controllers down now (we turned them on, after an early
             * move): turn them off again first. */
            if (rc == -EBUSY && r->early && cg_ops(r->version)->root_unwind) {
                cg_ops(r->version)->root_unwind(r);
                rc = cg_write(procs, pid, NULL, 0);
            }
            if (rc < 0 && !ret)
                cg_err(err, errlen, rc, "%s: %s", procs, strerror(-rc));
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
        for (size_t end = strlen(r->root); !r->keep_root && rc == 0 && end > 0; end--) {
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
    if (r)
        cg_sweep_finish(r, NULL, 0);
    free(r);
}

const struct cr_cgroup_caps *cr_cg_root_caps(const struct cr_cg_root *r)
{
    return &r->caps;
}

const char *cr_cg_root_none(const struct cr_cg_root *r)
{
    return r->version == 0 ? r->caps.none_why : NULL;
}

/* ---- one cgroup ------------------------------------------------------------------------------ */

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
    /* The reaper may still be removing an earlier cgroup of this name: that is done now. */
    if (r->reaper)
        r->hooks->claim(r->reaper, leaf);
    struct cr_cg *cg = cg_new(r, leaf);
    if (!cg)
        return cg_err(err, errlen, -ENOMEM, "out of memory");
    cg_pick(cg, r, lim);
    rc = cg_ops(cg->version)->create(cg, err, errlen);
    if (rc == -ENOENT) {
        /* <root> was removed under us (an exiting supervisor or `run` saw it empty): make
         * it again, once. */
        cg_ops(cg->version)->remove(cg, 0, NULL, 0);
        if (cg->dirfd >= 0)
            close(cg->dirfd);
        cg_from_root(cg, r, leaf);
        cg_pick(cg, r, lim);
        rc = root_prepare(r, err, errlen);
        if (rc == 0)
            rc = root_enter(r, false, err, errlen);
        if (rc == 0)
            rc = cg_ops(cg->version)->create(cg, err, errlen);
    }
    if (rc == 0)
        /* A re-used leftover may carry old limits: then every limit is written. */
        rc = cg_ops(cg->version)->set_limits(cg, lim, !cg->fresh, err, errlen);
    if (rc == 0 && lim->confine_devices)
        rc = cg_ops(cg->version)->devices(cg, lim, err, errlen);
    if (rc < 0) {
        cg_ops(cg->version)->remove(cg, CG_KILL_WAIT_MS, NULL, 0);
        if (cg->dirfd >= 0)
            close(cg->dirfd);
        free(cg);
        return rc;
    }
    *out = cg;
    return 0;
}

int cr_cg_adopt(struct cr_cg_root *r, const char *leaf, const struct cr_cg_limits *lim,
                pid_t init_pid, struct cr_cg **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!leaf || !valid_rel_path(leaf, false) || strlen(leaf) >= sizeof ((struct cr_cg *)0)->leaf)
        return cg_err(err, errlen, -EINVAL, "cgroup name '%s' is not valid", leaf ? leaf : "");
    struct cr_cg_limits none;
    if (!lim) {
        cr_cg_limits_init(&none);
        lim = &none;
    }
    struct cr_cg *cg = cg_new(r, leaf);
    if (!cg)
        return cg_err(err, errlen, -ENOMEM, "out of memory");
    cg_pick(cg, r, lim);
    if (cg->version == 0) {       /* no cgroups: nothing to open, init's group is the cgroup */
        int rc = cg_ops(0)->attach(cg, init_pid, err, errlen);
        if (rc < 0) {
            free(cg);
            return rc;
        }
        *out = cg;
        return 0;
    }
    /* v2: the same read-only directory fd cr_cg_create() keeps; v1: its first directory,
     * which only has to be there (one system call, not an open and a close). */
    int fd = cg->version == 2 ? open(cg->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (cg->version == 2 ? fd < 0 : access(cg->path, F_OK) < 0) {
        int e = errno;
        cg_err(err, errlen, -e, "%s: %s", cg->path, strerror(e));
        free(cg);
        return -e;
    }
    if (cg->version == 2)
        cg->dirfd = fd;
    *out = cg;
    return 0;
}

int cr_cg_set_limits(struct cr_cg *cg, const struct cr_cg_limits *lim, char *err, size_t errlen)
{
    int rc = check_limits(lim, err, errlen);
    if (rc < 0)
        return rc;
    return cg_ops(cg->version)->set_limits(cg, lim, true, err, errlen);
}

int cr_cg_dirfd(const struct cr_cg *cg)
{
    return cg->version == 2 ? cg->dirfd : -1;
}

int cr_cg_attach(struct cr_cg *cg, pid_t pid, char *err, size_t errlen)
{
    return cg_ops(cg->version)->attach(cg, pid, err, errlen);
}

int cr_cg_self_attach_open(const struct cr_cg *cg, int *fds, int max, char *err, size_t errlen)
{
    return cg_ops(cg->version)->self_attach_open(cg, fds, max, err, errlen);
}

int cr_cg_kill(struct cr_cg *cg, char *err, size_t errlen)
{
    return cg_ops(cg->version)->kill(cg, err, errlen);
}

static int procs_path(const struct cr_cg *cg, char *buf, size_t len)
{
    return cg_ops(cg->version)->procs_path(cg, buf, len);
}

/* sig to every process of cg's list (v1: the freezer hierarchy's); how many, or -errno. */
static int signal_procs(const struct cr_cg *cg, int sig)
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
    return (int)n;
}

int cr_cg_signal(struct cr_cg *cg, int sig)
{
    int n = signal_procs(cg, sig);
    return n < 0 ? n : 0;
}

bool cr_cg_is_empty(struct cr_cg *cg)
{
    if (cg->version == 0)
        return cg0_ops.remove(cg, 0, NULL, 0) == 0;
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
    cg_ops(cg->version)->stats(cg, st);
}

int64_t cr_cg_oom_kills(struct cr_cg *cg)
{
    return cg_ops(cg->version)->oom_kills(cg);
}

int64_t cr_cg_memory_peak(struct cr_cg *cg)
{
    return cg_ops(cg->version)->memory_peak(cg);
}

bool cr_cg_is_fresh(const struct cr_cg *cg)
{
    return cg->fresh;
}

int cr_cg_destroy(struct cr_cg *cg, char *err, size_t errlen)
{
    if (!cg)
        return 0;
    if (cg->rp)
        cg->rhooks->unlink(cg);
    int rc = 0;
    if (!cr_cg_is_empty(cg))
        rc = cg_ops(cg->version)->kill(cg, err, errlen);
    /* When the kill already waited in vain, removing does not wait again. */
    int r = cg_ops(cg->version)->remove(cg, rc < 0 ? 0 : CG_KILL_WAIT_MS, rc < 0 ? NULL : err, errlen);
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
