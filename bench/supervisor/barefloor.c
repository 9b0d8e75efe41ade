/* The floor under 2a/2b: the harness itself starts n sleeping containers with the isolation
 * of ours' default (pid, mount, uts, ipc, net and cgroup namespaces, a cgroup in the four v1
 * hierarchies ours uses: freezer, memory, pids, cpuacct; the busybox rootfs by pivot_root,
 * /proc, a /dev tmpfs, hostname) and no supervision at all: a loop of clone, each child
 * joining its cgroups, unsharing the other namespaces and mounting in parallel with the next
 * clone, then exec'ing `busybox sleep MAGIC` as the container's PID 1. Timed like the
 * systems of 2a/2b: start -> every workload exec'd. What no runtime can go below on this
 * machine; everything it made is removed before it returns. */
#include "supbench.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *floor_ctrls[] = { "freezer", "memory", "pids", "cpuacct" };
#define NFLOOR (int)(sizeof(floor_ctrls) / sizeof(floor_ctrls[0]))

static void leaf_dir(char *buf, size_t len, const struct sb_opts *o, int c, int id)
{
	if (id < 0)
		snprintf(buf, len, "/sys/fs/cgroup/%s/%s-floor", floor_ctrls[c], o->cgprefix);
	else
		snprintf(buf, len, "/sys/fs/cgroup/%s/%s-floor/c%d", floor_ctrls[c], o->cgprefix, id);
}

/* The container's side: between clone and exec, on a copy of the harness (async-signal-safe
 * calls only). */
static void floor_child(const struct sb_opts *o, const int *tasks)
{
	for (int c = 0; c < NFLOOR; c++)
		if (write(tasks[c], "0", 1) != 1)
			_exit(120);
	if (unshare(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWCGROUP) < 0)
		_exit(121);
	char *argv[] = { "/bin/busybox", "sleep", (char *)o->magic, NULL };
	_exit(121 + sb_bare_enter(o->rootfs, argv));
}

double sb_bare_services(const struct sb_opts *o, int n)
{
	char d[600], t[640];
	pid_t *pids = calloc((size_t)n, sizeof(*pids));
	if (!pids)
		return -1;
	for (int c = 0; c < NFLOOR; c++) {
		leaf_dir(d, sizeof(d), o, c, -1);
		if (mkdir(d, 0755) < 0 && errno != EEXIST) {
			free(pids);
			return -1;
		}
	}
	int ew = sb_execwatch_open();
	int started = 0, seen = 0;
	double ms = -1;
	int64_t t0 = bc_now_ns();
	for (int i = 0; i < n; i++) {
		int tasks[NFLOOR], ok = 1;
		for (int c = 0; c < NFLOOR; c++) {
			leaf_dir(d, sizeof(d), o, c, i);
			snprintf(t, sizeof(t), "%s/tasks", d);
			tasks[c] = mkdir(d, 0755) == 0 ? open(t, O_WRONLY | O_CLOEXEC) : -1;
			ok &= tasks[c] >= 0;
		}
		pid_t pid = ok ? (pid_t)syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, NULL, NULL, NULL, 0) : -1;
		if (pid == 0)
			floor_child(o, tasks);
		for (int c = 0; c < NFLOOR; c++)
			if (tasks[c] >= 0)
				close(tasks[c]);
		if (pid < 0)
			break;
		pids[started++] = pid;
		if (ew >= 0) {
			int got = sb_execwatch_read(ew, o->magic, 0);
			if (got < 0) {
				close(ew);
				ew = -1;
			} else {
				seen += got;
			}
		}
	}
	while (started == n) {
		if (sb_started_step(&ew, o->magic, n, &seen, t0, &ms))
			break;
		int st;
		if (waitpid(-1, &st, WNOHANG) > 0) {
			fprintf(stderr, "supbench: bare floor: a container exited while starting (status 0x%x)\n", st);
			break;
		}
		if (bc_now_ns() - t0 > 60000000000LL)
			break;
	}
	if (ew >= 0)
		close(ew);
	/* Each container's PID 1 is its workload: killing it ends the container. */
	for (int i = 0; i < started; i++)
		kill(pids[i], SIGKILL);
	for (int i = 0; i < started; i++)
		while (waitpid(pids[i], NULL, 0) < 0 && errno == EINTR)
			;
	for (int i = 0; i < n; i++)
		for (int c = 0; c < NFLOOR; c++) {
			leaf_dir(d, sizeof(d), o, c, i);
			for (int tries = 0; rmdir(d) < 0 && errno == EBUSY && tries < 1000; tries++)
				sb_sleep_ms(1);
		}
	for (int c = 0; c < NFLOOR; c++) {
		leaf_dir(d, sizeof(d), o, c, -1);
		rmdir(d);
	}
	free(pids);
	return ms;
}
