/* The floors under 2a/2b: the harness itself starts n sleeping containers and supervises
 * nothing: a loop of clone, each child joining its cgroups, unsharing the other namespaces
 * and mounting in parallel with the next clone, then exec'ing `busybox sleep MAGIC` as the
 * container's PID 1 (no init). Timed like the systems of 2a/2b: start -> every workload
 * exec'd; everything it made is removed before it returns.
 *   minimal: pid, mount, uts, ipc, net and cgroup namespaces, a cgroup in four v1 hierarchies
 *     (freezer, memory, pids, cpuacct), the busybox rootfs by pivot_root, /proc, an empty /dev
 *     tmpfs, hostname: what isolation alone costs;
 *   same: the containers ours makes by default (the floor, "the harness cloning the
 *     same containers itself"): the cgroups of every v1 hierarchy ours uses (also devices with
 *     ours' device rules, cpuset, name=systemd; pids.max 2048), lo up, /dev's nodes, devpts
 *     and shm, a read-only /sys, the masked and read-only paths, the default capabilities, no_new_privs
 *     and ours' default seccomp filter (sb_bare_enter). What supervision adds is then ours'
 *     start less this one; the two containers' prints (mounts, capabilities, filters, cgroups)
 *     are compared in the table's title. */
#include "supbench.h"
#include "cgroup/devices.h"      /* ours' default device rules */

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

static const char *const floor_ctrls[] = { "freezer", "memory", "pids", "cpuacct", "devices", "cpuset", "systemd" };
#define NMINIMAL 4
#define NCTRLS (int)(sizeof(floor_ctrls) / sizeof(floor_ctrls[0]))

struct floor {
	const struct sb_opts *o;
	bool same;
	int nctrl;
	const char *ctrl[NCTRLS];
};

static void leaf_dir(char *buf, size_t len, const struct floor *f, int c, int id)
{
	const char *tag = f->same ? "floor-same" : "floor";
	if (id < 0)
		snprintf(buf, len, "/sys/fs/cgroup/%s/%s-%s", f->ctrl[c], f->o->cgprefix, tag);
	else
		snprintf(buf, len, "/sys/fs/cgroup/%s/%s-%s/c%d", f->ctrl[c], f->o->cgprefix, tag, id);
}

static int write_in(const char *dir, const char *file, const char *const *texts, size_t n)
{
	char p[700];
	snprintf(p, sizeof(p), "%s/%s", dir, file);
	int fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int bad = 0;
	for (size_t i = 0; i < n; i++)
		bad |= write(fd, texts[i], strlen(texts[i])) != (ssize_t)strlen(texts[i]);
	close(fd);
	return bad ? -1 : 0;
}

/* A same-container's limits and device rules, written by the harness before the clone as
 * ours' supervisor does (the device rules by ours' own code, cgroup/devices.c). */
static int floor_limits(const struct floor *f, int id)
{
	char d[600], err[256];
	static const char *const pids[] = { "2048" };
	for (int c = 0; c < f->nctrl; c++) {
		leaf_dir(d, sizeof(d), f, c, id);
		if (!strcmp(f->ctrl[c], "pids") && write_in(d, "pids.max", pids, 1) < 0)
			return -1;
		if (!strcmp(f->ctrl[c], "devices")) {
			int dirfd = open(d, O_PATH | O_DIRECTORY | O_CLOEXEC);
			int r = dirfd < 0 ? -1 : cr_cg_devices_v1(dirfd, NULL, 0, err, sizeof(err));
			if (dirfd >= 0)
				close(dirfd);
			if (r < 0)
				return -1;
		}
	}
	return 0;
}

/* cpuset's root: the machine's cpus and mems, inherited by each container's (as ours). */
static int floor_cpuset(const struct floor *f)
{
	char d[600], p[700], buf[256];
	for (int c = 0; c < f->nctrl; c++) {
		if (strcmp(f->ctrl[c], "cpuset"))
			continue;
		leaf_dir(d, sizeof(d), f, c, -1);
		static const char *const files[] = { "cpuset.cpus", "cpuset.mems" };
		for (int i = 0; i < 2; i++) {
			snprintf(p, sizeof(p), "/sys/fs/cgroup/cpuset/%s", files[i]);
			ssize_t k = bc_read_small(p, buf, sizeof(buf));
			const char *text[] = { buf };
			if (k <= 0 || write_in(d, files[i], text, 1) < 0)
				return -1;
		}
		static const char *const one[] = { "1" };
		return write_in(d, "cgroup.clone_children", one, 1);
	}
	return 0;
}

/* The container's side: between clone and exec, on a copy of the harness (async-signal-safe
 * calls only). */
static void floor_child(const struct floor *f, const int *tasks)
{
	for (int c = 0; c < f->nctrl; c++)
		if (write(tasks[c], "0", 1) != 1)
			_exit(120);
	if (unshare(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWCGROUP) < 0)
		_exit(121);
	char *argv[] = { "/bin/busybox", "sleep", (char *)f->o->magic, NULL };
	_exit(121 + sb_bare_enter(f->o->rootfs, argv, f->same));
}

double sb_bare_services(const struct sb_opts *o, int n, bool same, char *print, size_t plen)
{
	char d[600], t[640];
	struct floor fl = { .o = o, .same = same }, *f = &fl;
	for (int c = 0; c < (same ? NCTRLS : NMINIMAL); c++) {
		snprintf(d, sizeof(d), "/sys/fs/cgroup/%s", floor_ctrls[c]);
		if (!same || access(d, F_OK) == 0)
			f->ctrl[f->nctrl++] = floor_ctrls[c];
	}
	if (print && plen)
		*print = '\0';
	pid_t *pids = calloc((size_t)n, sizeof(*pids));
	if (!pids)
		return -1;
	for (int c = 0; c < f->nctrl; c++) {
		leaf_dir(d, sizeof(d), f, c, -1);
		if (mkdir(d, 0755) < 0 && errno != EEXIST) {
			free(pids);
			return -1;
		}
	}
	if (floor_cpuset(f) < 0) {
		fprintf(stderr, "supbench: same-container floor: cannot set up its cpuset\n");
		n = 0;
	}
	int ew = sb_execwatch_open();
	int started = 0, seen = 0;
	double ms = -1;
	int64_t t0 = bc_now_ns();
	for (int i = 0; i < n; i++) {
		int tasks[NCTRLS], ok = 1;
		for (int c = 0; c < f->nctrl; c++) {
			leaf_dir(d, sizeof(d), f, c, i);
			snprintf(t, sizeof(t), "%s/tasks", d);
			tasks[c] = mkdir(d, 0755) == 0 ? open(t, O_WRONLY | O_CLOEXEC) : -1;
			ok &= tasks[c] >= 0;
		}
		if (ok && same)
			ok = floor_limits(f, i) == 0;
		pid_t pid = ok ? (pid_t)syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, NULL, NULL, NULL, 0) : -1;
		if (pid == 0)
			floor_child(f, tasks);
		for (int c = 0; c < f->nctrl; c++)
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
	while (started == n && n > 0) {
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
	if (ms >= 0 && print)
		sb_container_print(pids[0], print, plen);
	/* Each container's PID 1 is its workload: killing it ends the container. */
	for (int i = 0; i < started; i++)
		kill(pids[i], SIGKILL);
	for (int i = 0; i < started; i++)
		while (waitpid(pids[i], NULL, 0) < 0 && errno == EINTR)
			;
	for (int i = 0; i < n; i++)         /* made before a failed clone too */
		for (int c = 0; c < f->nctrl; c++) {
			leaf_dir(d, sizeof(d), f, c, i);
			for (int tries = 0; rmdir(d) < 0 && errno == EBUSY && tries < 1000; tries++)
				sb_sleep_ms(1);
		}
	for (int c = 0; c < f->nctrl; c++) {
		leaf_dir(d, sizeof(d), f, c, -1);
		rmdir(d);
	}
	free(pids);
	return ms;
}
