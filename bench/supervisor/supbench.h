/* supbench: our supervisor against crun and runc (one container, start to exit) and against
 * s6, runit and supervisord (many sleeping services: start, memory, idle, restart, stop), each
 * measured the same way in the same run. The harness binary also plays the run script of the
 * s6 and runit service directories (see role_run in util.c). */
#ifndef BENCH_SUPERVISOR_H
#define BENCH_SUPERVISOR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "../common/common.h"   /* bc_now_ns, bc_pct, bc_cell, bc_read_small, ... */

#define SB_PREFIX "crbench-sup"   /* every cgroup and temp dir we make starts with PREFIX-PID */

struct sb_opts {
	const char *ours;          /* build/supervisor */
	const char *init;          /* build/init (CORRAL_INIT) */
	const char *rootfs;        /* build/rootfs, absolute */
	const char *crun, *runc, *s6svscan, *runsvdir, *supervisord;
	char self[4096];           /* this binary: the run script of s6/runit services */
	char tmp[256];             /* /tmp/crbench-sup-PID */
	char cgprefix[64];         /* crbench-sup-PID */
	char magic[32];            /* last argument of every sleeping workload: finds them in /proc */
	int containers;            /* starts per runtime, sequential and concurrent */
	int nsizes, sizes[4];      /* service counts */
	int idle_s;                /* idle window */
	int kills;                 /* restart measurements per system and size */
	int podman_runs;           /* 1c: podman's starts per network mode (ours: containers) */
	int log_fd;
	bool run_containers, run_bridge, run_services, pid_only, bare, userns;
};

/* util.c: time, processes, /proc */
void sb_sleep_ms(double ms);
/* Spawns argv (PATH not searched) with stdin /dev/null, stdout/stderr to out/err (-1: /dev/null),
 * in cwd (NULL: ours), environment env (NULL: ours). Returns the pid or -1. */
pid_t sb_spawn(char *const argv[], char *const env[], int out, int err, const char *cwd);
/* Waits for pid up to timeout_ms (<0: forever); 1 = reaped (status in *st), 0 = still running. */
int sb_wait(pid_t pid, int timeout_ms, int *st);
/* SIGKILLs pid (our child) and reaps it. */
void sb_kill_reap(pid_t pid);
/* Children we started and have not reaped: killed by sb_cleanup(). */
void sb_track(pid_t pid);
void sb_untrack(pid_t pid);
/* 1: /proc/PID/cmdline's last argument is magic; 0: it is not; -1: no such process. */
int sb_is_workload(pid_t pid, const char *magic);
/* Every live workload (full /proc scan); returns the count, fills up to max pids. */
int sb_scan_workloads(const char *magic, pid_t *out, int max);
/* Exec events: a socket (-1: not available here), and the number of workloads (cmdline
 * ending in magic) that exec'd since the last call, waiting up to wait_ms for the first
 * event; -1 when events were lost. */
int sb_execwatch_open(void);
int sb_execwatch_read(int fd, const char *magic, int wait_ms);
/* 2a/2b's floors (barefloor.c): ms for the harness itself to start n sleeping containers,
 * minimal ones or (same) the containers ours makes by default; -1 when it could not. print
 * (plen bytes) gets one container's print (sb_container_print). */
double sb_bare_services(const struct sb_opts *o, int n, bool same, char *print, size_t plen);
/* The bare floors' container side (util.c): returns only on failure, the step that failed.
 * same: with the rest of ours' default container (devices, /sys, masks, privileges). */
int sb_bare_enter(const char *rootfs, char *const argv[], bool same);
/* What a container's process pid has, seen from the host: its mounts, capabilities,
 * no_new_privs, seccomp filters and the v1 hierarchies it has a cgroup of its own in, as
 * text (util.c). 0, or -1 when pid is gone. */
int sb_container_print(pid_t pid, char *buf, size_t len);
/* One step of waiting for n workloads to exec (util.c); 1 with *at_ms when all run. */
int sb_started_step(int *ew, const char *magic, int n, int *seen, int64_t t0, double *at_ms);
/* The supervision tree: root and every descendant that is not a workload (nor below one). */
int sb_tree(pid_t root, const char *magic, pid_t *out, int max);
long sb_pss_kb(pid_t pid);             /* smaps_rollup Pss, -1 if gone */
long sb_cpu_ns(pid_t pid);             /* schedstat run time summed over threads, -1 if gone */
long sb_ctxt(pid_t pid, bool voluntary); /* summed over its threads, -1 if gone */
pid_t sb_ppid(pid_t pid);               /* -1 if gone */
int sb_children(pid_t pid, pid_t *out, int max);  /* /proc/PID/task/ * /children; -1 if gone */
int sb_write_file(const char *path, const char *text);
int sb_rm_rf(const char *path);
/* Removes every cgroup named prefix* at the top of every v1/v2 hierarchy (killing what is
 * still inside them first); returns how many directories were removed. */
int sb_cgroup_sweep(const char *prefix);
void sb_cleanup(void);                 /* tracked children, workloads, cgroups, temp dir */
void sb_cleanup_register(const struct sb_opts *o);
int role_run(void);                    /* the s6/runit run "script": exec busybox sleep MAGIC */

/* table.c */
#define SB_MAXCOL 8
enum sb_target {
	T_NONE,
	T_LE_FRAC,      /* ours <= frac * v[col] */
	T_LT,           /* ours < v[col] */
	T_LE_ABS,       /* ours <= abs */
};
struct sb_row {
	const char *label;
	double v[SB_MAXCOL];    /* NaN = n/a */
	enum sb_target target;
	int col;                /* reference column of T_LE_FRAC/T_LT */
	double frac_or_abs;
	int decimals;
	int judge;              /* the column the target judges (0: ours) */
};
struct sb_table {
	const char *title;
	int ncol, nours;        /* columns 0..nours-1 are ours (targets judge column 0), the rest anchors */
	const char *cols[SB_MAXCOL];
	struct sb_row rows[16];
	int nrows;
};
void sb_table_print(const struct sb_table *t, int *pass, int *miss);

/* containers.c, services.c */
int bench_containers(const struct sb_opts *o, struct sb_table *seq, struct sb_table *conc);
int bench_services(const struct sb_opts *o, int n, struct sb_table *t);
/* bridge.c: 1c, a container on a bridge network against podman's */
int bench_bridge(const struct sb_opts *o, struct sb_table *t);

#endif
