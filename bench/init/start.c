/* Start overhead: INIT -- /bin/true against a bare /bin/true, each as PID 1 of a new PID
 * namespace, timed from clone to the harness reaping it. Configurations take turns, so slow
 * spells of a noisy machine hit all of them alike. */
#include "bench.h"

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define WARMUP 20
#define HANG_S 5

int bench_start(const struct bench_opts *o, struct results *r)
{
	int iters = o->start_iters;
	double *t[NCFG + 1];
	int cnt[NCFG + 1] = { 0 };
	char *cmd[] = { "/bin/true", NULL };
	char *argv[NCFG + 1][16];
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	struct spawn_fds fds = { devnull, devnull, o->log_fd, -1 };
	bool dropped[NCFG + 1] = { false };
	int ret = 0;

	for (int c = 0; c <= NCFG; c++) {
		t[c] = calloc((size_t)iters, sizeof(double));
		bench_argv(c < NCFG ? &o->cfg[c] : NULL, cmd, argv[c]);
		dropped[c] = c < NCFG && !o->cfg[c].present;
	}
	for (int i = 0; i < WARMUP + iters; i++) {
		for (int k = 0; k <= NCFG; k++) {
			int c = (i + k) % (NCFG + 1);  /* rotate who goes first */
			const char *name = c < NCFG ? o->cfg[c].name : "bare";
			if (dropped[c])
				continue;
			int64_t t0 = bc_now_ns();
			pid_t pid = bench_spawn_pid1(argv[c], &fds);
			if (pid < 0) {
				perror("initbench: start: clone");
				ret = -1;
				goto out;
			}
			/* A hung init must not hang the benchmark: SIGALRM interrupts waitpid. */
			alarm(HANG_S);
			int st;
			pid_t w = waitpid(pid, &st, 0);
			alarm(0);
			int64_t t1 = bc_now_ns();
			if (w != pid) {
				fprintf(stderr, "initbench: start: %s -- /bin/true still running after"
					" %d s: killed, column dropped\n", name, HANG_S);
				kill(pid, SIGKILL);
				waitpid(pid, NULL, 0);
				st = -1;
			}
			bench_untrack(pid);
			if (st != 0) {
				if (w == pid)
					fprintf(stderr, "initbench: start: %s -- /bin/true: wait status"
						" 0x%x, column dropped\n", name, st);
				dropped[c] = true;
				ret = -1;
				continue;
			}
			if (i >= WARMUP)
				t[c][cnt[c]++] = (double)(t1 - t0) / 1e6;
		}
	}
	r->bare_p50_ms = cnt[NCFG] ? bc_pct(t[NCFG], cnt[NCFG], 50) : NAN;
	r->bare_p90_ms = cnt[NCFG] ? bc_pct(t[NCFG], cnt[NCFG], 90) : NAN;
	for (int c = 0; c < NCFG; c++) {
		r->start_p50_ms[c] = cnt[c] ? bc_pct(t[c], cnt[c], 50) : NAN;
		r->start_p90_ms[c] = cnt[c] ? bc_pct(t[c], cnt[c], 90) : NAN;
	}
out:
	for (int c = 0; c <= NCFG; c++)
		free(t[c]);
	close(devnull);
	return ret;
}
