/* initbench [OPTIONS]: runs the init benchmarks and prints one table per benchmark.
 *   --ours PATH --tini PATH --dumb-init PATH --catatonit PATH   the binaries
 *   --starts N (300)  --signals N (1000)  --storm N (20000)
 *   --rounds N (timed storms, 5)  --zombie-rounds N (zombie-counting storms, 3); at most 16
 *   --only LIST   any of start,signal,storm (default all)
 *   --log FILE    stderr of the inits and workloads (default /dev/null)
 * Internal: --role-sigreply, --role-storm N SHMPATH (the workloads). */
#include "bench.h"

#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

static void on_signal(int sig)
{
	bench_kill_tracked();
	bench_storm_cleanup();
	_exit(128 + sig);
}

static void on_alarm(int sig)
{
	(void)sig;
}

static void usage(void)
{
	fprintf(stderr, "usage: initbench [--ours P] [--tini P] [--dumb-init P] [--catatonit P]\n"
			"       [--starts N] [--signals N] [--storm N] [--rounds N] [--zombie-rounds N]\n"
			"       [--only start,signal,storm] [--log FILE]\n");
	exit(2);
}

static int num(const char *s, long min)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || v < min || v > 1000000)
		usage();
	return (int)v;
}

static void parse(int argc, char **argv, struct bench_opts *o, const char **log)
{
	static const struct init_cfg defaults[NCFG] = {
		[C_OURS] = { "ours", "build/init", { "--", NULL }, false },
		[C_TINI] = { "tini", "/usr/bin/tini", { "--", NULL }, false },
		[C_DUMB] = { "dumb-init", "/usr/bin/dumb-init", { NULL }, false },
		[C_CATA] = { "catatonit", "/usr/bin/catatonit", { "--", NULL }, false },
	};
	memcpy(o->cfg, defaults, sizeof(defaults));
	o->start_iters = 300;
	o->signals = 1000;
	o->storm_n = 20000;
	o->storm_rounds = 5;
	o->zombie_rounds = 3;
	o->run_start = o->run_signal = o->run_storm = true;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v)
			usage();
		i++;
		if (!strcmp(a, "--ours"))
			o->cfg[C_OURS].path = v;
		else if (!strcmp(a, "--tini"))
			o->cfg[C_TINI].path = v;
		else if (!strcmp(a, "--dumb-init"))
			o->cfg[C_DUMB].path = v;
		else if (!strcmp(a, "--catatonit"))
			o->cfg[C_CATA].path = v;
		else if (!strcmp(a, "--starts"))
			o->start_iters = num(v, 1);
		else if (!strcmp(a, "--signals"))
			o->signals = num(v, 1);
		else if (!strcmp(a, "--storm"))
			o->storm_n = num(v, 1);
		else if (!strcmp(a, "--rounds"))
			o->storm_rounds = num(v, 1);
		else if (!strcmp(a, "--zombie-rounds"))
			o->zombie_rounds = num(v, 0);
		else if (!strcmp(a, "--log"))
			*log = v;
		else if (!strcmp(a, "--only")) {
			o->run_start = strstr(v, "start") != NULL;
			o->run_signal = strstr(v, "signal") != NULL;
			o->run_storm = strstr(v, "storm") != NULL;
		} else
			usage();
	}
}

static void print_tables(const struct bench_opts *o, struct results *r)
{
	int pass = 0, miss = 0;
	char title[512];
	double v[4][NCFG];

	if (o->run_start) {
		for (int c = 0; c < NCFG; c++) {
			v[0][c] = r->start_p50_ms[c];
			v[1][c] = r->start_p50_ms[c] - r->bare_p50_ms;
			v[2][c] = r->start_p90_ms[c] - r->bare_p90_ms;
		}
		struct row rows[] = {
			{ "start, p50 (ms)", v[0], T_NONE, 3 },
			{ "overhead, p50 (ms)", v[1], T_LE_BEST, 3 },
			{ "overhead, p90 (ms)", v[2], T_NONE, 3 },
		};
		snprintf(title, sizeof(title),
			 "== 1. Start: INIT -- /bin/true as PID 1 of a new PID namespace, %d starts each ==\n"
			 "   bare /bin/true as PID 1: p50 %.3f ms, p90 %.3f ms; overhead = INIT - bare."
			 " Issue's anchors: 0.85-1.05 ms.",
			 o->start_iters, r->bare_p50_ms, r->bare_p90_ms);
		bench_table(title, o->cfg, rows, 3, &pass, &miss);
	}
	if (o->run_signal) {
		for (int c = 0; c < NCFG; c++)
			v[3][c] = r->sig_p50_us[c] / r->bare_sig_p50_us;
		struct row rows[] = {
			{ "latency, p50 (us)", r->sig_p50_us, T_LE_BEST, 1 },
			{ "latency, p99 (us)", r->sig_p99_us, T_NONE, 1 },
			{ "p50 / bare p50", v[3], T_NONE, 2 },
		};
		snprintf(title, sizeof(title),
			 "== 2. Signal forwarding: kill(init, SIGUSR1) -> workload's handler replies, %d signals each ==\n"
			 "   bare PID-1 workload signalled directly: p50 %.1f us, p99 %.1f us."
			 " Issue's anchors: p50 17-29 us, 1.55-2.5x bare.",
			 o->signals, r->bare_sig_p50_us, r->bare_sig_p99_us);
		bench_table(title, o->cfg, rows, 3, &pass, &miss);
	}
	if (o->run_storm) {
		char label[64];
		snprintf(label, sizeof(label), "reap %d orphans (ms)", o->storm_n);
		struct row rows[] = {
			{ label, r->storm_ms, T_LE_BEST, 1 },
			{ "  after last _exit call", r->storm_tail_ms, T_NONE, 1 },
			{ "peak zombies", r->storm_zombies, T_LE_BEST_10, 0 },
			{ "init CPU in storm (ms)", r->storm_cpu_ms, T_LE_BEST_10, 1 },
		};
		snprintf(title, sizeof(title),
			 "== 3. Reaping: %d double-forked orphans exit together; medians of %d timed and"
			 " %d zombie-counting storms ==\n"
			 "   time: release -> all reaped (2nd row: the part after the last orphan's _exit call);"
			 " init CPU: schedstat.\n"
			 "   zombies: pids.current - cgroup.procs of a pids cgroup holding the namespace,"
			 " sampled throughout.\n"
			 "   Issue's anchors (20,000): 308-407 ms, ~19,000 zombies, 64-89 ms CPU.",
			 o->storm_n, o->storm_rounds, o->zombie_rounds);
		bench_table(title, o->cfg, rows, 4, &pass, &miss);
	}
	for (int c = 0; c < NCFG; c++) {
		struct stat st;
		r->size_kb[c] = o->cfg[c].present && stat(o->cfg[c].path, &st) == 0 ? st.st_size / 1024.0 : NAN;
	}
	struct row rows[3];
	int nrows = 0;
	if (o->run_signal)
		rows[nrows++] = (struct row){ "peak RSS, VmHWM (kB)", r->rss_kb, T_LE_HALF_CATA, 0 };
	if (o->run_storm)
		rows[nrows++] = (struct row){ "VmHWM after storm (kB)", r->rss_storm_kb, T_NONE, 0 };
	rows[nrows++] = (struct row){ "binary on disk (kB)", r->size_kb, T_NONE, 1 };
	bench_table("== 4. Memory: VmHWM of the init at the end of the signal run; size of the binary ==\n"
		    "   (tini and dumb-init are dynamic: + libc.) Issue's anchors: 0.70 MB (catatonit)"
		    " to 1.29 MB (tini).",
		    o->cfg, rows, nrows, &pass, &miss);
	printf("\ninitbench: %d PASS, %d MISS%s\n", pass, miss,
	       r->failures ? " (some measurements FAILED, see above)" : "");
}

static void nan_fill(double *v, int n)
{
	for (int i = 0; i < n; i++)
		v[i] = NAN;
}

static void results_init(struct results *r)
{
	memset(r, 0, sizeof(*r));
	double *arrays[] = { r->start_p50_ms, r->start_p90_ms, r->sig_p50_us, r->sig_p99_us,
			     r->storm_ms, r->storm_tail_ms, r->storm_zombies, r->storm_cpu_ms, r->rss_kb,
			     r->rss_storm_kb, r->size_kb };
	for (size_t i = 0; i < sizeof(arrays) / sizeof(arrays[0]); i++)
		nan_fill(arrays[i], NCFG);
	r->bare_p50_ms = r->bare_p90_ms = r->bare_sig_p50_us = r->bare_sig_p99_us = NAN;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "--role-sigreply"))
		return role_sigreply();
	if (argc >= 4 && !strcmp(argv[1], "--role-storm"))
		return role_storm(atoi(argv[2]), argv[3]);

	struct bench_opts o;
	struct results r;
	const char *log = "/dev/null";
	memset(&o, 0, sizeof(o));
	parse(argc, argv, &o, &log);
	results_init(&r);

	if (bc_self_exe(o.self, sizeof(o.self), "initbench") < 0)
		return 1;
	o.log_fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (o.log_fd < 0) {
		perror(log);
		return 1;
	}
	for (int c = 0; c < NCFG; c++) {
		o.cfg[c].present = access(o.cfg[c].path, X_OK) == 0;
		if (!o.cfg[c].present)
			fprintf(stderr, "initbench: %s (%s) is missing: its column is n/a\n",
				o.cfg[c].name, o.cfg[c].path);
	}
	bc_on_stop_signals(on_signal);
	/* Only interrupts a blocking wait (no SA_RESTART); see start.c. */
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);
	/* Replies and releases go through pipes; a dead reader must not kill the harness. */
	signal(SIGPIPE, SIG_IGN);

	struct utsname u;
	uname(&u);
	printf("initbench: kernel %s, %ld CPUs; ours = %s; stderr of inits -> %s\n", u.release,
	       sysconf(_SC_NPROCESSORS_ONLN), o.cfg[C_OURS].path, log);
	fflush(stdout);
	if (o.run_start && bench_start(&o, &r) < 0)
		r.failures++;
	if (o.run_signal && bench_signal(&o, &r) < 0)
		r.failures++;
	if (o.run_storm && bench_storm(&o, &r) < 0)
		r.failures++;
	print_tables(&o, &r);
	bench_kill_tracked();
	return r.failures ? 1 : 0;
}
