/* Starting a command as PID 1 of a new PID namespace, and the /proc readings of it. */
#include "bench.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char *const bench_env[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", NULL };

void bench_sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* A raw clone without a new stack behaves like fork; the harness is single-threaded, and the
 * child only makes system calls before execve, so glibc's fork bookkeeping is not needed. */
pid_t bench_spawn_pid1(char *const argv[], const struct spawn_fds *fds)
{
	pid_t pid = (pid_t)syscall(SYS_clone, (unsigned long)(CLONE_NEWPID | SIGCHLD), NULL, NULL,
				   NULL, 0UL);
	if (pid != 0) {
		if (pid > 0)
			bench_track(pid);
		return pid;
	}
	if (fds->cgroup_procs >= 0 && write(fds->cgroup_procs, "0", 1) != 1)
		_exit(125);
	if (dup2(fds->in, 0) < 0 || dup2(fds->out, 1) < 0 || dup2(fds->err, 2) < 0)
		_exit(125);
	execve(argv[0], argv, bench_env);
	_exit(127);
}

int bench_argv(const struct init_cfg *cfg, char *const cmd[], char *out[16])
{
	int n = 0;
	if (cfg) {
		out[n++] = (char *)cfg->path;
		for (int i = 0; cfg->pre[i]; i++)
			out[n++] = (char *)cfg->pre[i];
	}
	for (int i = 0; cmd[i] && n < 15; i++)
		out[n++] = cmd[i];
	out[n] = NULL;
	return n;
}

int bench_wait_ms(pid_t pid, int timeout_ms, int *st)
{
	int64_t end = bc_now_ns() + (int64_t)timeout_ms * 1000000;
	for (;;) {
		pid_t r = waitpid(pid, st, WNOHANG);
		if (r == pid || (r < 0 && errno == ECHILD)) {
			bench_untrack(pid);
			return 1;
		}
		if (bc_now_ns() >= end)
			return 0;
		bench_sleep_us(1000);
	}
}

int bench_stop(pid_t pid, int grace_ms)
{
	int st = 0;
	kill(pid, SIGTERM);
	if (!bench_wait_ms(pid, grace_ms, &st)) {
		kill(pid, SIGKILL);
		bench_wait_ms(pid, 10000, &st);
	}
	return st;
}

static int read_proc(pid_t pid, const char *file, char *buf, size_t len)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	return bc_read_small(path, buf, len) < 0 ? -1 : 0;
}

long bench_vm_hwm_kb(pid_t pid)
{
	char buf[4096];
	if (read_proc(pid, "status", buf, sizeof(buf)) < 0)
		return -1;
	const char *p = strstr(buf, "\nVmHWM:");
	return p ? strtol(p + 7, NULL, 10) : -1;
}

/* First field of schedstat: time spent on a CPU, in ns. */
int64_t bench_cpu_ns(pid_t pid)
{
	char buf[128];
	if (read_proc(pid, "schedstat", buf, sizeof(buf)) < 0)
		return -1;
	return strtoll(buf, NULL, 10);
}

static pid_t tracked[16];

void bench_track(pid_t pid)
{
	for (int i = 0; i < 16; i++)
		if (!tracked[i]) {
			tracked[i] = pid;
			return;
		}
}

void bench_untrack(pid_t pid)
{
	for (int i = 0; i < 16; i++)
		if (tracked[i] == pid)
			tracked[i] = 0;
}

/* Killing PID 1 of a namespace kills everything in it. */
void bench_kill_tracked(void)
{
	for (int i = 0; i < 16; i++)
		if (tracked[i]) {
			kill(tracked[i], SIGKILL);
			waitpid(tracked[i], NULL, 0);
			tracked[i] = 0;
		}
}
