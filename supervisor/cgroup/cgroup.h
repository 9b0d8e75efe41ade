/* cgroups: create, limit, watch, kill, remove — one interface, two backends (v2 unified;
 * v1 per-controller hierarchies), chosen by cr_cgroup_probe() at start-up.
 *
 * Without a usable hierarchy (cr_cgroup_caps.version 0) the same calls work without cgroups
 * (none.c).
 *
 * Layout under the hierarchy root (v2: /sys/fs/cgroup; v1: each /sys/fs/cgroup/<ctrl>):
 *     <cgroup_root>/                 e.g. "corral" or "apps/corral-2" ([supervisor] cgroup_root)
 *     <cgroup_root>/supervisor/      the supervisor's own leaf (it moves itself there)
 *     <cgroup_root>/svc-<name>/      one per running container
 *     <cgroup_root>/run-<name>-<pid>/  `supervisor run NAME` (one-shot, never touched by others)
 * The supervisor never touches a cgroup outside its cgroup_root.
 *
 * Every function returns 0 or a negative errno and, on error, fills err with a message that
 * names the file (e.g. "/sys/fs/cgroup/memory/corral/svc-web/memory.limit_in_bytes: Invalid
 * argument"). None blocks for long: kill and remove are bounded (v1 freeze waits at most
 * 100 ms, emptying at most ~1 s, both polling in 1 ms steps; normally a few ms in all). */
#ifndef CORRAL_CGROUP_H
#define CORRAL_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cgroup/devices.h"
#include "cgroup/probe.h"

struct cr_cg_limits {
    int64_t memory_max, memory_high, memory_swap_max;  /* bytes; -1 unset; INT64_MAX "max" */
    /* memory_swap_max is swap alone (systemd's MemorySwapMax); v1 writes memsw =
     * memory_max + memory_swap_max, so there it needs memory_max (else -EINVAL). v1's
     * memory_high is memory.soft_limit_in_bytes. */
    int64_t cpu_quota_us, cpu_period_us;  /* quota -1: unset, INT64_MAX: max; period -1: 100 ms */
    int64_t cpu_weight;                                 /* 1..10000; -1 unset */
    int64_t pids_max;                                   /* -1 unset; INT64_MAX "max" */
    int64_t io_weight;                                  /* 1..10000; -1 unset */
    /* Device access (devices.c): when confine_devices, every device but the usual
     * nodes and these is refused (v1: the devices controller; v2: a BPF device program).
     * Applied when the cgroup is made; a reload does not change it. */
    bool confine_devices;
    const struct cr_device *devices;
    size_t ndevices;
};
void cr_cg_limits_init(struct cr_cg_limits *l);        /* all unset */

struct cr_cg_stats {
    int64_t memory_current, memory_peak;  /* bytes; -1 unknown */
    int64_t cpu_usage_us;                 /* total CPU time; -1 unknown */
    int64_t pids_current;                 /* -1 unknown */
    int64_t oom_kills;                    /* OOM kills in this cgroup so far; -1 unknown */
};

struct cr_cg_root;   /* the supervisor's root: backend, paths, caps */
struct cr_cg;        /* one container's cgroup */

/* Probes the hierarchy, creates <root> (and parents) in every needed hierarchy, enables
 * controllers in subtree_control on v2, moves the calling process into <root>/supervisor
 * (when move_self), and first kills and removes whatever is left under <root> from an
 * earlier supervisor that died (except run-* cgroups of live `supervisor run`s, and the
 * supervisor leaf). mount: normally CR_CGROUP_MOUNT (tests may pass another); NULL means
 * CR_CGROUP_MOUNT.
 * Leftovers: a supervisor is "alive" when <root>/supervisor holds a process (the caller
 * included: a second open by a supervisor already in its leaf sweeps nothing); then svc-*
 * (and any other non-run-*) cgroups are its services and are left alone — so `supervisor
 * run` (move_self false) may call this while a supervisor runs. run-NAME-PID
 * cgroups are kept while they hold a process or PID is alive; the rest are killed (freezer
 * on v1, cgroup.kill on v2) and removed, child cgroups included. v1 uses the memory, cpu,
 * cpuacct, pids, blkio and freezer hierarchies that exist (never cpuset or devices): <root>
 * and the supervisor leaf in each; a service only where it needs to be (cr_cg_create). */
int cr_cg_root_open(const char *mount, const char *root, bool move_self,
                    struct cr_cg_root **out, char *err, size_t errlen);
/* `supervisor run`'s way in: creates <root> where missing (and on v2 passes the controllers
 * down to it), but makes no supervisor leaf, never sweeps leftovers and never moves the
 * caller, so it cannot disturb a running supervisor's services (nor a dead one's, which the
 * next supervisor cleans up). With lim, v1 makes <root> only in the hierarchies a cgroup
 * with those limits is made in (a `run` of one service: each mkdir and rmdir of a v1 cgroup
 * costs 20-60 us); NULL: in all of them. */
int cr_cg_root_open_shared(const char *mount, const char *root, const struct cr_cg_limits *lim,
                           struct cr_cg_root **out, char *err, size_t errlen);
/* Undoes the open on a clean exit, once every cgroup made with cr_cg_create() is destroyed:
 * moves the caller back to the cgroups it was in before the open (read from
 * /proc/self/cgroup then; the hierarchy's root if that one is gone), removes
 * <root>/supervisor (if this open made it), then <root>, then the levels above <root> that
 * this open created — each only when empty: one still in use (another supervisor, a `run`,
 * a service) stays, and that is no error. Kills nothing. 0 or the first real error. */
int cr_cg_root_leave(struct cr_cg_root *r, char *err, size_t errlen);
void cr_cg_root_close(struct cr_cg_root *r);   /* frees; removes nothing */
const struct cr_cgroup_caps *cr_cg_root_caps(const struct cr_cg_root *r);
/* The caller's cgroup on v2, relative to the hierarchy's root as this process sees it (""
 * at the root, e.g. a private cgroup namespace's; "system.slice/corral.service" under
 * systemd), from /proc/self/cgroup's "0::" line. 0, or -ENOENT (no v2 line) / -ENAMETOOLONG. */
int cr_cg_self_path(char *buf, size_t len);
/* Without cgroups (no usable hierarchy: read-only, absent, not ours), why; else NULL. Then
 * every cgroup is the process group of the service's init (none.c): no limits, no
 * statistics, no device rules, and kills reach init's group (and, with a pid namespace,
 * everything in it). */
const char *cr_cg_root_none(const struct cr_cg_root *r);

/* Creates <root>/<leaf> (leaf like "svc-web") and writes the limits. v1: in the freezer,
 * memory, pids and cpuacct hierarchies; in cpu only with cpu_max/cpu_weight, in blkio only
 * with io_weight.
 * If it already exists (a leftover), it is emptied and re-used. If <root> itself is gone
 * (removed by an exiting supervisor or `run` that found it empty), it is made again. */
int cr_cg_create(struct cr_cg_root *r, const char *leaf, const struct cr_cg_limits *lim,
                 struct cr_cg **out, char *err, size_t errlen);
/* Live re-exec: the existing <root>/<leaf> of a running container, taken as it is (nothing
 * created, emptied or written; the limits are the ones it runs with). -ENOENT when it is not
 * there. Without cgroups (cr_cg_root_none) it is init's process group: init_pid's. */
int cr_cg_adopt(struct cr_cg_root *r, const char *leaf, const struct cr_cg_limits *lim,
                pid_t init_pid, struct cr_cg **out, char *err, size_t errlen);
/* Writes the limits again (live reload of limits); an unset limit goes back to the kernel's
 * default (max, weight 100), so dropping a key from the config lifts its limit. v1: a cpu
 * or io limit on a cgroup made without that hierarchy makes it there, then moves the
 * cgroup's processes in (each pid of the freezer's cgroup.procs, until none is missing). */
int cr_cg_set_limits(struct cr_cg *cg, const struct cr_cg_limits *lim, char *err, size_t errlen);
/* v2: an O_DIRECTORY fd for clone3's CLONE_INTO_CGROUP (owned by cg; do not close). v1: -1. */
int cr_cg_dirfd(const struct cr_cg *cg);
/* Moves pid into the cgroup (every hierarchy). Used on v1, and on v2 when clone3 lacks
 * CLONE_INTO_CGROUP. */
int cr_cg_attach(struct cr_cg *cg, pid_t pid, char *err, size_t errlen);
/* v1: opens (O_WRONLY|O_CLOEXEC) the `tasks` file of cg in every hierarchy it uses, into
 * fds[0..n-1]; returns n (0 on v2, where clone3 places the child), or -errno. A child that
 * is still single-threaded joins the cgroup by writing "0" to each (spawn.c): unlike a pid
 * written to cgroup.procs, that takes no global threadgroup lock, whose first use costs an
 * RCU grace period (measured here: 4-13 ms per container). The caller closes the fds. */
int cr_cg_self_attach_open(const struct cr_cg *cg, int *fds, int max, char *err, size_t errlen);
/* Kills every process in the cgroup with SIGKILL: v2 cgroup.kill (or a loop over
 * cgroup.procs on kernels without it); v1 freezer: freeze, kill all, thaw; without a freezer
 * a kill loop until empty. Returns when the cgroup is empty: it polls (1 ms steps) for at
 * most ~1 s in all, then fails with -EBUSY (a task stuck in the kernel). Measured here:
 * 2-6 ms for a small tree on v1 (freeze + exit of the tasks), a few ms in the v2 VM. */
int cr_cg_kill(struct cr_cg *cg, char *err, size_t errlen);
/* Signals every process in the cgroup with sig (not frozen; for stop signals to a tree).
 * 0, or -errno when cgroup.procs cannot be read (-ENOENT: no such cgroup). */
int cr_cg_signal(struct cr_cg *cg, int sig);
bool cr_cg_is_empty(struct cr_cg *cg);
/* Reads current figures; fields it cannot read are -1. Read OOM kills before removing. */
void cr_cg_stats(struct cr_cg *cg, struct cr_cg_stats *st);
/* cr_cg_stats()'s oom_kills alone (one file read instead of five); -1 unknown. */
int64_t cr_cg_oom_kills(struct cr_cg *cg);
/* cr_cg_stats()'s memory_peak alone (what an exit's record keeps); -1 unknown. */
int64_t cr_cg_memory_peak(struct cr_cg *cg);
/* True when cr_cg_create() made the cgroup now (not a re-used leftover): nothing counted yet. */
bool cr_cg_is_fresh(const struct cr_cg *cg);
/* Removes the (empty) cgroup from every hierarchy and frees cg. If it is not empty, kills
 * first. Child cgroups made inside it (by the container) are removed too. cg is freed even
 * on error. A cg is self-contained: it may outlive its root's cr_cg_root_close(). */
int cr_cg_destroy(struct cr_cg *cg, char *err, size_t errlen);
/* The path of the cgroup in the first hierarchy (v2: the only one), for messages. */
const char *cr_cg_path(const struct cr_cg *cg);

/* ---- without blocking: kill and remove on the loop's timer (reap.c) ----
 * A reaper belongs to a root and drives every kill and removal handed to it from one timer:
 * a cgroup is killed (v2: cgroup.kill; v1: frozen, killed, thawed), checked again with a
 * growing delay (1, 2, 4 ... 50 ms) until empty, killing what is left each time, then
 * removed. Jobs handed over in one turn of the loop are one batch: on v1 all of them are
 * frozen before any is thawed (each freeze flips a kernel static key, text patching and
 * IPIs on every CPU, only when the first cgroup freezes and the last thaws). A job gives up
 * after CG_REAP_WAIT_MS (a task stuck in the kernel) with -EBUSY. Without a reaper (none
 * started, or a `run`), the same calls do the work at once and wait, as cr_cg_kill and
 * cr_cg_destroy. */
#define CG_REAP_WAIT_MS 10000
typedef void (*cr_cg_reap_done)(void *arg, int rc, const char *err);
struct uv_loop_s;
/* It takes over what the sweep of cr_cg_root_reopen() killed and left to it: each is
 * removed once empty, then leftover_done(arg, rc, err) (may be NULL). */
int cr_cg_reaper_start(struct cr_cg_root *r, struct uv_loop_s *loop,
                       cr_cg_reap_done leftover_done, void *arg);
/* After the loop ran out (its timer keeps the loop alive while a job is queued): finishes
 * what is still queued by waiting, and closes the timer's handle (run the loop once more for
 * its close callback). Call it once every cgroup made under r is destroyed. */
void cr_cg_reaper_stop(struct cr_cg_root *r);
/* Kills everything in cg; done(arg, rc, err) once it is empty (rc 0) or the reaper gave up.
 * cg stays the caller's; a later cr_cg_destroy_async() takes the job over (done is then not
 * called). */
void cr_cg_kill_async(struct cr_cg *cg, cr_cg_reap_done done, void *arg);
/* Takes cg: kills what is left in it, removes it and frees it; then done(arg, rc, err)
 * (done may be NULL). */
void cr_cg_destroy_async(struct cr_cg *cg, cr_cg_reap_done done, void *arg);
/* Jobs queued now. */
int cr_cg_reaper_pending(const struct cr_cg_root *r);

/* What cr_cg_root_open() swept: leftover cgroups removed (empty ones included; after a
 * reopen: handed to the reaper to remove), the processes killed in them, how long it took,
 * and how many could not be removed. */
struct cr_cg_sweep {
    int cgroups, procs, failed;
    int64_t ms;
};
const struct cr_cg_sweep *cr_cg_root_swept(const struct cr_cg_root *r);

/* Across a live re-exec the new program finds itself in its leaf already, so it cannot tell
 * where it came from or which controllers it turned on there (v2, moved early: a cgroup
 * namespace's root, systemd's unit) — what cr_cg_root_leave() needs to move back and remove
 * <root>. The old program writes them as one line of text ("cgroup-home ...\n", into buf,
 * its length or 0 when there is nothing to say); the new one reads that line back from the
 * whole state text before it opens the root (cr_cg_root_reopen). */
int cr_cg_root_handover(const struct cr_cg_root *r, char *buf, size_t len);
/* cr_cg_root_open(mount, root, true, ...) for the supervisor (and the program a re-exec
 * starts, with the old one's state text: its cgroup-home line, if any, stands for what a
 * fresh open would find out). Its sweep kills the leftovers and leaves their removal to the
 * reaper (cr_cg_reaper_start); without one, cr_cg_root_leave or _close waits for them. */
int cr_cg_root_reopen(const char *mount, const char *root, const char *state,
                      struct cr_cg_root **out, char *err, size_t errlen);

/* v1 conversions of the systemd-style weights (1..10000, default 100), systemd's own:
 * proportional, so the ratio of two services' weights is kept. cpu.shares = weight*1024/100
 * clamped to 2..262144 (100 → 1024, 1 → 10, 10000 → 102400). blkio.bfq.weight (BFQ, and
 * v2's io.bfq.weight: default 100, range 1..1000) = weight clamped to 1..1000; the old CFQ
 * blkio.weight (default 500, 10..1000) = weight*5 clamped. */
int64_t cr_cg_weight_to_shares(int64_t weight);
int64_t cr_cg_weight_to_blkio(int64_t weight, bool bfq);

#endif
