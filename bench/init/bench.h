/* initbench: our init against tini, dumb-init and catatonit, each run as PID 1 of a fresh PID
 * namespace by this harness and measured the same way in the same run. The harness binary
 * also plays the workloads (signal replier, orphan-storm maker) so nothing outside bench/ and
 * Debian's packages is needed. */
#ifndef BENCH_INIT_H
#define BENCH_INIT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "../common/common.h"   /* bc_now_ns, bc_pct, bc_cell, ... */

/* Columns of every table, in this order. */
enum { C_OURS, C_TINI, C_DUMB, C_CATA, NCFG };

struct init_cfg {
	const char *name;      /* column title */
	const char *path;      /* binary */
	const char *pre[3];    /* arguments between the binary and CMD, NULL-terminated */
	bool present;          /* binary exists and is executable */
};

struct bench_opts {
	struct init_cfg cfg[NCFG];
	char self[4096];       /* this binary, absolute: exec'd as the workload */
	int start_iters;       /* starts per configuration */
	int signals;           /* measured signals per configuration */
	int storm_n;           /* orphans per storm */
	int storm_rounds;      /* timed storms per init; medians are reported */
	int zombie_rounds;     /* zombie-counting storms per init */
	int log_fd;            /* stderr of every init and workload */
	bool run_start, run_signal, run_storm;
};

/* What the benchmarks found, per column; bare is the init-less baseline. NaN = not measured. */
struct results {
	double start_p50_ms[NCFG], start_p90_ms[NCFG], bare_p50_ms, bare_p90_ms;
	double sig_p50_us[NCFG], sig_p99_us[NCFG], bare_sig_p50_us, bare_sig_p99_us;
	double storm_ms[NCFG], storm_tail_ms[NCFG], storm_zombies[NCFG], storm_cpu_ms[NCFG];
	double rss_kb[NCFG], rss_storm_kb[NCFG], size_kb[NCFG];
	int failures;
};

/* spawn.c */
struct spawn_fds { int in, out, err, cgroup_procs; };  /* cgroup_procs < 0: stay put */
pid_t bench_spawn_pid1(char *const argv[], const struct spawn_fds *fds);
/* argv for cfg (NULL: bare) running cmd; returns the count. out must hold 16 entries. */
int bench_argv(const struct init_cfg *cfg, char *const cmd[], char *out[16]);
/* Ends pid (SIGTERM, then SIGKILL after grace_ms) and reaps it; returns its wait status. */
int bench_stop(pid_t pid, int grace_ms);
/* Reaps pid if it has exited within timeout_ms; returns 1 (status in *st), 0 still running. */
int bench_wait_ms(pid_t pid, int timeout_ms, int *st);
long bench_vm_hwm_kb(pid_t pid);
int64_t bench_cpu_ns(pid_t pid);
void bench_sleep_us(long us);
/* Every PID-1 process the harness has running, so an interrupted run kills them all. */
void bench_track(pid_t pid);
void bench_untrack(pid_t pid);
void bench_kill_tracked(void);

/* stats.c */
enum target { T_NONE, T_LE_BEST, T_LE_BEST_10, T_LE_HALF_CATA };
struct row {
	const char *label;
	const double *v;       /* NCFG values, NaN = n/a */
	enum target target;
	int decimals;
};
/* Prints one table; returns the number of MISS rows (PASS/MISS are counted by the caller). */
int bench_table(const char *title, const struct init_cfg *cfg, const struct row *rows, int n,
		int *pass, int *miss);

/* start.c, signal.c, storm.c */
int bench_start(const struct bench_opts *o, struct results *r);
int bench_signal(const struct bench_opts *o, struct results *r);
int bench_storm(const struct bench_opts *o, struct results *r);
void bench_storm_cleanup(void);  /* async-signal-safe */

/* roles.c: the workload side, entered from main when argv[1] names a role. */
int role_sigreply(void);
int role_storm(int n, const char *shm_path);

/* Shared between the storm maker's processes and the harness (a file in /dev/shm). */
struct storm_shm {
	int ready;     /* orphans blocked (about to block) on the release pipe */
	int exited;    /* orphans that saw EOF and are calling _exit */
	int made;      /* the maker finished forking */
	int failed;    /* fork errno, if one failed */
};

#endif
