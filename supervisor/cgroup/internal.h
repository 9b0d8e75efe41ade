/* Internal to the cgroup module (cgroup.c, fs.c, v1.c, v2.c): the shapes of a root and a
 * cgroup, the file helpers both backends use (fs.c), and the table each backend fills. */
#ifndef CORRAL_CGROUP_INT_H
#define CORRAL_CGROUP_INT_H

#include <limits.h>
#include <stdarg.h>

#include "cgroup/cgroup.h"

/* The v1 controllers we use, each a bit. A hierarchy may carry several (cpu,cpuacct). */
enum {
    CG1_MEMORY = 1 << 0, CG1_CPU = 1 << 1, CG1_CPUACCT = 1 << 2, CG1_PIDS = 1 << 3,
    CG1_BLKIO = 1 << 4, CG1_FREEZER = 1 << 5, CG1_DEVICES = 1 << 6, CG1_CPUSET = 1 << 7,
    CG1_NAMED = 1 << 8,             /* name=systemd, mounted at MOUNT/systemd */
};
/* What every v1 service cgroup is made in: freezer (kill), memory (stats, OOM), pids and
 * cpuacct (stats). cpu only with cpu_max/cpu_weight, blkio only with io_weight (cg1_needs);
 * a service's container (confine_devices) also devices (its device rules), cpuset and
 * name=systemd. <root> and the supervisor leaf are made in all of these. */
#define CG1_BASE (CG1_FREEZER | CG1_MEMORY | CG1_PIDS | CG1_CPUACCT)
#define CG1_MAXH 9
/* Bound for a mount path, a cgroup_root, a leaf: their sum stays far below PATH_MAX. */
#define CG_NAMELEN 256

struct cg_hier {
    const char *dir;        /* the hierarchy's mount, e.g. /sys/fs/cgroup/memory (v2: MOUNT):
                               cg_intern()'s copy, so that a cgroup's copy of its hierarchies
                               costs 16 bytes each, not CG_NAMELEN */
    unsigned ctrls;         /* CG1_* it carries (v2: unused) */
    bool cloned;            /* v1 cpuset: <root> has cgroup.clone_children set, so a cgroup
                               made under it starts with its CPUs and memory nodes */
};

struct cr_cg_root {
    int version;
    struct cr_cgroup_caps caps;
    char mount[CG_NAMELEN]; /* where the probe looked, e.g. /sys/fs/cgroup */
    char root[CG_NAMELEN];  /* relative, e.g. "corral" */
    int nh;
    struct cg_hier h[CG1_MAXH];
    /* What cr_cg_root_leave() undoes. */
    bool leaf;              /* this open made (or re-used) <root>/supervisor */
    unsigned only;          /* v1: CG1_* hierarchies to make <root> in; 0: all of them */
    bool lean;              /* v1: cgroups only where their limits need them (`run`) */
    bool keep_root;         /* `run`'s: <root> stays when it ends, made by it or not (as
                               crun, runc and Docker leave their parent cgroups): making it
                               again was a tenth of a v1 `run` (a cpuset cgroup below a
                               hierarchy's root takes ~2 ms to make) */
    bool moved;             /* the caller moved itself into the leaf */
    bool early;             /* v2: it did so before passing controllers down, from a level
                               above <root> (v2.c's move_early) */
    size_t self_len;        /* v2, early: length of the caller's own cgroup, a prefix of
                               <root> ("" at a cgroup namespace's root: 0) */
    unsigned early_added;   /* v2, early: wanted[] controllers turned on in that cgroup */
    bool resumed;           /* v2: the above came from a re-exec's state (the caller is in
                               its leaf already: nothing to move early) */
    size_t made_from;       /* length of the shortest level of <root> this open created
                               ("apps" of "apps/corral-2": 4); SIZE_MAX when none */
    struct cr_cg_reaper *reaper;        /* reap.c's, once started; NULL: kills wait */
    const struct cg_reap_hooks *hooks;  /* the reaper's, for cgroup.c (which calls down only) */
    struct cr_cg_sweep swept;           /* what root_open's sweep found */
    bool defer;                         /* the sweep leaves the removals to the reaper */
    struct cr_cg **left;                /* so: killed leftovers the reaper is to remove */
    size_t nleft;
    char origin[CG1_MAXH][CG_NAMELEN];  /* per hierarchy, the caller's cgroup before the
                                           move (from /proc/self/cgroup); "" unknown */
    unsigned inside;        /* v1: CG1_* hierarchies where the caller is in <root>/supervisor
                               already (a live re-exec): nothing to write there */
};

/* Self-contained (copies what it needs from the root), so the root may be closed first. */
struct cr_cg {
    int version;
    struct cr_cgroup_caps caps;
    int nh;
    struct cg_hier h[CG1_MAXH];
    char leaf[128];
    const char *root;       /* cg_intern()'s copy of the root's name */
    int nu;                 /* v1: the root's hierarchies this cgroup is not made in (yet): */
    struct cg_hier unused[CG1_MAXH];  /* a reload that sets a cpu/io limit makes it there */
    int dirfd;              /* v2 only */
    pid_t pgid;             /* no cgroups (none.c): init's process group; 0 none or gone */
    bool fresh;             /* mkdir created it now (no old limits to reset) */
    /* While the reaper (reap.c) kills or removes it: */
    struct cr_cg_reaper *rp;        /* the reaper of its root, if it has one */
    const struct cg_reap_hooks *rhooks;   /* and its hooks */
    struct cr_cg *rnext;            /* in rp's list */
    bool rqueued, rremove;          /* queued; removed (and freed) when empty */
    int rstate;
    int rprocs;                     /* processes it held when killed */
    int64_t rstart, rnext_ms;       /* when the job began; its next check */
    int rchecks;
    cr_cg_reap_done rdone;
    void *rarg;
    size_t pathlen;         /* room in path: one per service, so not PATH_MAX */
    char path[];            /* its directory in the first hierarchy (v2: the only one) */
};

/* ---- helpers (fs.c) ---- */
int cg_err(char *err, size_t errlen, int r, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Writes val to path (one write, as the kernel wants); -errno and "path: reason". */
int cg_write(const char *path, const char *val, char *err, size_t errlen);
/* Reads a small file, NUL-terminated, trailing newline kept; -errno. */
int cg_read(const char *path, char *buf, size_t len);
/* Reads one integer (first token); -errno or -EINVAL. "max" reads as INT64_MAX. */
int cg_read_i64(const char *path, int64_t *v);
/* Value of "key N" in a flat keyed file (memory.events, cpu.stat, memory.oom_control). */
int cg_read_key(const char *path, const char *key, int64_t *v);
/* Every pid in a cgroup.procs file into *pids (malloc'd, may be NULL when empty). */
int cg_read_pids(const char *procs_path, pid_t **pids, size_t *n);
/* Milliseconds on CLOCK_MONOTONIC. */
int64_t cg_now_ms(void);
void cg_sleep_ms(int ms);
/* Kills every process under dir (recursively, by cgroup.procs; no freezer), then removes
 * the directories depth-first, waiting up to wait_ms for them to empty. Used for leftovers
 * and as the last resort. ENOENT is success. */
int cg_kill_remove_tree(const char *dir, int wait_ms, char *err, size_t errlen);
/* Kill loop over one cgroup's cgroup.procs until it reads empty or wait_ms passed. */
int cg_kill_loop(const char *procs_path, int wait_ms, char *err, size_t errlen);
/* True when a process named by the "-PID" suffix of a run-NAME-PID leaf is alive. */
bool cg_run_leaf_alive(const char *name);

/* mkdir dir; *created tells whether this call made it (false: it was there). */
int cg_make_dir(const char *dir, bool *created, char *err, size_t errlen);
/* Makes the level of <root> that ends at root[end] (e.g. "apps" of "apps/corral-2") under
 * base, its path left in dir, and notes in r->made_from when this call created it. */
int cg_make_root_level(struct cr_cg_root *r, const char *base, size_t end, bool *created, char *dir,
                       size_t dirlen, char *err, size_t errlen);

/* ---- backends: each fills one table (v1.c, v2.c); cgroup.c knows only the tables ---- */
struct cg_ops {
    /* root_prepare creates <root> (and on v2 enables controllers in the levels above) and,
     * when r->leaf, <root>/supervisor; root_enter moves the caller into the leaf and, on v2,
     * enables controllers for <root>'s children. Leftovers are removed between the two
     * (cgroup.c). */
    int (*root_prepare)(struct cr_cg_root *r, char *err, size_t errlen);
    int (*root_enter)(struct cr_cg_root *r, bool move_self, char *err, size_t errlen);
    /* v2 after an early move: turns off what root_prepare/enter turned on in the caller's
     * own cgroup and below, so that cr_cg_root_leave() can move it back there. v1: NULL. */
    void (*root_unwind)(struct cr_cg_root *r);
    /* v1: the CG1_* hierarchies a cgroup with these limits needs (CG1_BASE and more). lean
     * (`run`, whose statistics nobody reads): freezer and the hierarchies of its limits
     * only. v2: 0. */
    unsigned (*needs)(const struct cr_cg_limits *lim, bool lean);
    /* v1: keeps in cg->h only the hierarchies carrying a controller of want; the rest go to
     * unused. v2: nothing. */
    void (*select)(struct cr_cg *cg, unsigned want);
    /* v1: the CG1_* bits of a /proc/PID/cgroup controller list ("cpu,cpuacct"); 0 for none
     * we use. v2: 0. */
    unsigned (*ctrl_bits)(const char *list, size_t len);
    int (*create)(struct cr_cg *cg, char *err, size_t errlen);
    int (*set_limits)(struct cr_cg *cg, const struct cr_cg_limits *lim, bool all, char *err,
                      size_t errlen);
    /* The device rules of a new cgroup (lim->confine_devices): v1 in its devices hierarchy,
     * v2 a BPF device program on its directory. */
    int (*devices)(struct cr_cg *cg, const struct cr_cg_limits *lim, char *err, size_t errlen);
    int (*attach)(struct cr_cg *cg, pid_t pid, char *err, size_t errlen);
    /* v1: the cgroup.procs fds a child writes itself into; v2: none (0). */
    int (*self_attach_open)(const struct cr_cg *cg, int *fds, int max, char *err,
                            size_t errlen);
    int (*kill)(struct cr_cg *cg, char *err, size_t errlen);
    int (*procs_path)(const struct cr_cg *cg, char *buf, size_t len);
    void (*stats)(struct cr_cg *cg, struct cr_cg_stats *st);
    int64_t (*oom_kills)(struct cr_cg *cg);
    int64_t (*memory_peak)(struct cr_cg *cg);
    /* wait_ms bounds the wait for a cgroup that will not empty (a task stuck in the
     * kernel). */
    int (*remove)(struct cr_cg *cg, int wait_ms, char *err, size_t errlen);
    /* Without waiting, for the batched kills (reap.c, the sweep): freeze (on) or thaw the
     * cgroup: 0, -ENOTSUP (v2, or no freezer: kill_pass alone), -ENOENT (gone); frozen: 1
     * when frozen (or it cannot tell), 0 while freezing; kill_pass: SIGKILL to every
     * process in it now (v2: cgroup.kill), returning how many there were (0: empty;
     * -ENOENT: gone). */
    int (*freeze)(struct cr_cg *cg, bool on);
    int (*frozen)(struct cr_cg *cg);
    int (*kill_pass)(struct cr_cg *cg);
};
extern const struct cg_ops cg0_ops, cg1_ops, cg2_ops;

/* 0: no cgroups (none.c: a container whose /sys/fs/cgroup is read-only or absent). */
static inline const struct cg_ops *cg_ops(int version)
{
    return version == 2 ? &cg2_ops : version == 1 ? &cg1_ops : &cg0_ops;
}

/* What cgroup.c asks of the reaper (reap.c, the layer above, fills them in when it starts:
 * calls point one way). claim: a queued job for <root>/leaf is finished now, synchronously (a
 * new cgroup of the same name is about to be made). unlink: cg leaves its reaper's list (it is
 * destroyed now, by the caller); done is not called. */
struct cg_reap_hooks {
    void (*claim)(struct cr_cg_reaper *rp, const char *leaf);
    void (*unlink)(struct cr_cg *cg);
};
/* Waits for the sweep's killed leftovers still held in r->left to empty, and removes them
 * (cgroup.c): what a root whose reaper never started does with them. */
int cg_sweep_finish(struct cr_cg_root *r, char *err, size_t errlen);
/* A cgroup named leaf under r (cgroup.c); NULL without memory. */
struct cr_cg *cg_new(const struct cr_cg_root *r, const char *leaf);

/* The directory of cg (or of the root when leaf is NULL) in hierarchy i. */
int cg_dir(const struct cg_hier *h, const char *root, const char *leaf, char *buf, size_t len);
/* A copy of s kept for the life of the process (one per hierarchy mount seen: a handful),
 * the same pointer for the same text; NULL without memory. */
const char *cg_intern(const char *s);

/* How long kill waits, in total, for a cgroup to empty; the v1 freeze bound. */
#define CG_KILL_WAIT_MS 1000
#define CG_FREEZE_WAIT_MS 100
/* The reaper's checks and removals, at most this long in one turn of the loop. */
#define CG_REAP_SLICE_MS 4

#endif
