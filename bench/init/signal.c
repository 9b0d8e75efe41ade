/* Signal forwarding latency: kill(init, SIGUSR1) until the workload's handler has written its
 * reply byte to our pipe. Every init and a bare PID-1 replier run side by side and take turns,
 * one signal each per round. SIGUSR1 is forwarded by all four (dumb-init sends it to the
 * workload's group, which is just the workload here). The signals are sent in BLOCKS, each
 * with freshly started instances, so no configuration keeps a lucky or unlucky CPU placement
 * for the whole run. */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WARMUP 50
#define BLOCKS 4
#define REPLY_TIMEOUT_MS 2000

/* One byte from fd within the timeout; 1 on success. */
static int read_byte(int fd, char *c)
{
	struct pollfd p = { fd, POLLIN, 0 };
	int n;
	while ((n = poll(&p, 1, REPLY_TIMEOUT_MS)) < 0 && errno == EINTR)
		;
	if (n != 1)
		return 0;
	return read(fd, c, 1) == 1;
}

enum { N = NCFG + 1 };  /* the last slot is the bare replier */

struct sig_run {
	pid_t pid[N];
	int rfd[N];
	bool dropped[N];
	double *t[N];
	int cnt[N];
	double hwm[N];
};

static const char *name_of(const struct bench_opts *o, int c)
{
	return c < NCFG ? o->cfg[c].name : "bare";
}

/* Ends instance c; with drop, also forgets its figures for good. */
static void end(struct sig_run *s, int c, bool drop)
{
	if (s->pid[c] > 0) {
		/* A bare PID 1 ignores SIGTERM without a handler for it: kill it. */
		if (c == NCFG)
			kill(s->pid[c], SIGKILL);
		bench_stop(s->pid[c], 2000);
		s->pid[c] = 0;
	}
	if (s->rfd[c] >= 0)
		close(s->rfd[c]);
	s->rfd[c] = -1;
	if (drop) {
		s->dropped[c] = true;
		s->cnt[c] = 0;
	}
}

/* One block: start every instance, send nsig signals to each in turns, stop them. */
static int block(const struct bench_opts *o, struct sig_run *s, int nsig, int devnull)
{
	char *cmd[] = { (char *)o->self, "--role-sigreply", NULL };
	int ret = 0;

	for (int c = 0; c < N; c++) {
		if (s->dropped[c])
			continue;
		int p[2];
		if (pipe2(p, O_CLOEXEC) < 0)
			return -1;
		char *argv[16];
		bench_argv(c < NCFG ? &o->cfg[c] : NULL, cmd, argv);
		struct spawn_fds fds = { devnull, p[1], o->log_fd, -1 };
		s->pid[c] = bench_spawn_pid1(argv, &fds);
		close(p[1]);
		s->rfd[c] = p[0];
		char ch;
		if (s->pid[c] < 0 || !read_byte(s->rfd[c], &ch) || ch != 'R') {
			fprintf(stderr, "initbench: signal: %s did not start its workload:"
				" column dropped\n", name_of(o, c));
			end(s, c, true);
			ret = -1;
		}
	}
	for (int i = 0; i < WARMUP + nsig; i++) {
		for (int k = 0; k < N; k++) {
			int c = (i + k) % N;
			if (s->rfd[c] < 0)
				continue;
			char ch;
			int64_t t0 = bc_now_ns();
			kill(s->pid[c], SIGUSR1);
			if (!read_byte(s->rfd[c], &ch)) {
				fprintf(stderr, "initbench: signal: no reply through %s within %d ms:"
					" column dropped\n", name_of(o, c), REPLY_TIMEOUT_MS);
				end(s, c, true);
				ret = -1;
				continue;
			}
			int64_t t1 = bc_now_ns();
			if (i >= WARMUP)
				s->t[c][s->cnt[c]++] = (double)(t1 - t0) / 1e3;
		}
	}
	for (int c = 0; c < N; c++) {
		/* Peak RSS at the end of a run, while the init is still there to ask. */
		long hwm = s->pid[c] > 0 ? bench_vm_hwm_kb(s->pid[c]) : -1;
		if (hwm > s->hwm[c])
			s->hwm[c] = (double)hwm;
		end(s, c, false);
	}
	return ret;
}

int bench_signal(const struct bench_opts *o, struct results *r)
{
	struct sig_run s;
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	int ret = 0, per_block = (o->signals + BLOCKS - 1) / BLOCKS;

	memset(&s, 0, sizeof(s));
	for (int c = 0; c < N; c++) {
		s.rfd[c] = -1;
		s.hwm[c] = -1;
		s.dropped[c] = c < NCFG && !o->cfg[c].present;
		s.t[c] = calloc((size_t)(per_block * BLOCKS), sizeof(double));
	}
	for (int b = 0; b < BLOCKS; b++)
		if (block(o, &s, per_block, devnull) < 0)
			ret = -1;
	r->bare_sig_p50_us = s.cnt[NCFG] ? bc_pct(s.t[NCFG], s.cnt[NCFG], 50) : NAN;
	r->bare_sig_p99_us = s.cnt[NCFG] ? bc_pct(s.t[NCFG], s.cnt[NCFG], 99) : NAN;
	for (int c = 0; c < NCFG; c++) {
		r->sig_p50_us[c] = s.cnt[c] ? bc_pct(s.t[c], s.cnt[c], 50) : NAN;
		r->sig_p99_us[c] = s.cnt[c] ? bc_pct(s.t[c], s.cnt[c], 99) : NAN;
		r->rss_kb[c] = s.cnt[c] && s.hwm[c] >= 0 ? s.hwm[c] : NAN;
	}
	for (int c = 0; c < N; c++)
		free(s.t[c]);
	close(devnull);
	return ret;
}
