/* Time, child processes, /proc readers and the cleanup of everything the harness made. */
#include "supbench.h"
#include "loopback.h"             /* shared/: lo up, as init does it */
#include "policy/internal.h"      /* cr_seccomp_builtin: ours' default filter */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

void sb_sleep_ms(double ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)((ms - (time_t)(ms / 1000) * 1000) * 1e6) };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

pid_t sb_spawn(char *const argv[], char *const env[], int out, int err, const char *cwd)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none;
	pid_t pid;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	if (out >= 0)
		posix_spawn_file_actions_adddup2(&fa, out, 1);
	else
		posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	if (err >= 0)
		posix_spawn_file_actions_adddup2(&fa, err, 2);
	else
		posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	if (cwd)
		posix_spawn_file_actions_addchdir_np(&fa, cwd);
	posix_spawnattr_init(&at);
	sigemptyset(&none);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_USEVFORK);
	sigset_t def;
	sigfillset(&def);
	posix_spawnattr_setsigdefault(&at, &def);
	int r = posix_spawn(&pid, argv[0], &fa, &at, argv, env ? env : environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (r != 0) {
		fprintf(stderr, "supbench: %s: %s\n", argv[0], strerror(r));
		return -1;
	}
	sb_track(pid);
	return pid;
}

int sb_wait(pid_t pid, int timeout_ms, int *st)
{
	if (timeout_ms >= 0) {
		int fd = (int)syscall(SYS_pidfd_open, pid, 0);
		if (fd >= 0) {
			struct pollfd p = { fd, POLLIN, 0 };
			int r;
			while ((r = poll(&p, 1, timeout_ms)) < 0 && errno == EINTR)
				;
			close(fd);
			if (r == 0)
				return 0;
		}
	}
	for (;;) {
		pid_t r = waitpid(pid, st, 0);
		if (r == pid) {
			sb_untrack(pid);
			return 1;
		}
		if (r < 0 && errno != EINTR)
			return -1;
	}
}

void sb_kill_reap(pid_t pid)
{
	int st;
	kill(pid, SIGKILL);
	sb_wait(pid, -1, &st);
}

/* ---- tracked children (async-signal-safe to kill) ---- */
#define MAXTRACK 64
static volatile pid_t tracked[MAXTRACK];

void sb_track(pid_t pid)
{
	for (int i = 0; i < MAXTRACK; i++)
		if (tracked[i] == 0) {
			tracked[i] = pid;
			return;
		}
}

void sb_untrack(pid_t pid)
{
	for (int i = 0; i < MAXTRACK; i++)
		if (tracked[i] == pid)
			tracked[i] = 0;
}

/* ---- /proc ---- */
int sb_is_workload(pid_t pid, const char *magic)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	ssize_t n = bc_read_small(path, buf, sizeof(buf));
	if (n < 0)
		return -1;
	if (n < 2 || buf[n - 1] != '\0')
		return 0;
	/* the last NUL-terminated argument */
	ssize_t i = n - 2;
	while (i > 0 && buf[i - 1] != '\0')
		i--;
	return strcmp(buf + i, magic) == 0;
}

static bool is_pid_name(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

int sb_scan_workloads(const char *magic, pid_t *out, int max)
{
	DIR *d = opendir("/proc");
	if (!d)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!is_pid_name(e->d_name))
			continue;
		pid_t pid = atoi(e->d_name);
		if (sb_is_workload(pid, magic) == 1) {
			if (out && n < max)
				out[n] = pid;
			n++;
		}
	}
	closedir(d);
	return n;
}

pid_t sb_ppid(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (bc_read_small(path, buf, sizeof(buf)) < 0)
		return -1;
	char *p = strrchr(buf, ')');
	if (!p)
		return -1;
	char state;
	int ppid;
	if (sscanf(p + 1, " %c %d", &state, &ppid) != 2)
		return -1;
	return ppid;
}

int sb_tree(pid_t root, const char *magic, pid_t *out, int max)
{
	/* pid -> ppid for every process, then a breadth-first walk from root. */
	int cap = 65536, np = 0;
	pid_t *pids = malloc(sizeof(pid_t) * cap), *ppids = malloc(sizeof(pid_t) * cap);
	if (!pids || !ppids) {
		free(pids);
		free(ppids);
		return -1;
	}
	DIR *d = opendir("/proc");
	struct dirent *e;
	while (d && (e = readdir(d)) && np < cap) {
		if (!is_pid_name(e->d_name))
			continue;
		pids[np] = atoi(e->d_name);
		ppids[np] = sb_ppid(pids[np]);
		if (ppids[np] >= 0)
			np++;
	}
	if (d)
		closedir(d);
	int n = 0;
	if (max > 0)
		out[n++] = root;
	for (int head = 0; head < n; head++)
		for (int i = 0; i < np; i++)
			if (ppids[i] == out[head] && n < max && sb_is_workload(pids[i], magic) == 0)
				out[n++] = pids[i];
	free(pids);
	free(ppids);
	return n;
}

static long field_kb(const char *path, const char *key)
{
	char buf[8192];
	if (bc_read_small(path, buf, sizeof(buf)) < 0)
		return -1;
	char *p = strstr(buf, key);
	if (!p)
		return -1;
	return strtol(p + strlen(key), NULL, 10);
}

long sb_pss_kb(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
	return field_kb(path, "\nPss:");
}

/* Calls fn(path of FILE of the thread, ctx) for every thread of pid; -1 if pid is gone. */
static int each_thread(pid_t pid, const char *file, void (*fn)(const char *path, void *ctx),
		       void *ctx)
{
	char path[320];
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	if (!d)
		return -1;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!is_pid_name(e->d_name))
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/%s", (int)pid, e->d_name, file);
		fn(path, ctx);
	}
	closedir(d);
	return 0;
}

static void add_schedstat(const char *path, void *ctx)
{
	char buf[256];
	if (bc_read_small(path, buf, sizeof(buf)) > 0)
		*(long *)ctx += strtol(buf, NULL, 10);
}

/* Sum over its threads of the first field of schedstat: time on a CPU, in ns. */
long sb_cpu_ns(pid_t pid)
{
	long sum = 0;
	return each_thread(pid, "schedstat", add_schedstat, &sum) < 0 ? -1 : sum;
}

struct ctxt_sum { const char *key; long sum; };

static void add_ctxt(const char *path, void *ctx)
{
	struct ctxt_sum *c = ctx;
	long v = field_kb(path, c->key);
	if (v > 0)
		c->sum += v;
}

long sb_ctxt(pid_t pid, bool voluntary)
{
	struct ctxt_sum c = { voluntary ? "\nvoluntary_ctxt_switches:" : "\nnonvoluntary_ctxt_switches:", 0 };
	return each_thread(pid, "status", add_ctxt, &c) < 0 ? -1 : c.sum;
}

struct child_list { pid_t *out; int n, max; };

static void add_children(const char *path, void *ctx)
{
	struct child_list *l = ctx;
	FILE *f = fopen(path, "re");
	int c;
	while (f && l->n < l->max && fscanf(f, "%d", &c) == 1)
		l->out[l->n++] = c;
	if (f)
		fclose(f);
}

int sb_children(pid_t pid, pid_t *out, int max)
{
	struct child_list l = { out, 0, max };
	return each_thread(pid, "children", add_children, &l) < 0 ? -1 : l.n;
}

int sb_write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	if (fd < 0) {
		fprintf(stderr, "supbench: %s: %s\n", path, strerror(errno));
		return -1;
	}
	size_t len = strlen(text);
	ssize_t w = write(fd, text, len);
	close(fd);
	return w == (ssize_t)len ? 0 : -1;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

int sb_rm_rf(const char *path)
{
	return nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

/* Depth first; a cgroup that will not go is emptied (its processes were started under a cgroup
 * we created) and retried. */
static int cg_remove(const char *dir)
{
	int removed = 0;
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	struct dirent *e;
	char sub[1024];
	while ((e = readdir(d))) {
		if (e->d_type != DT_DIR || e->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name);
		removed += cg_remove(sub);
	}
	closedir(d);
	for (int tries = 0; tries < 50; tries++) {
		if (rmdir(dir) == 0)
			return removed + 1;
		if (errno != EBUSY)
			break;
		snprintf(sub, sizeof(sub), "%s/cgroup.procs", dir);
		FILE *f = fopen(sub, "re");
		int pid;
		while (f && fscanf(f, "%d", &pid) == 1)
			kill(pid, SIGKILL);
		if (f)
			fclose(f);
		sb_sleep_ms(20);
	}
	fprintf(stderr, "supbench: cannot remove cgroup %s: %s\n", dir, strerror(errno));
	return removed;
}

int sb_cgroup_sweep(const char *prefix)
{
	int removed = 0;
	size_t plen = strlen(prefix);
	DIR *top = opendir("/sys/fs/cgroup");
	if (!top)
		return 0;
	struct dirent *h;
	char path[512];
	/* The root itself (cgroup v2) and every hierarchy below it (v1). */
	for (int pass = 0; pass < 2; pass++) {
		rewinddir(top);
		while ((h = readdir(top))) {
			const char *base;
			if (pass == 0) {
				if (strncmp(h->d_name, prefix, plen))
					continue;
				snprintf(path, sizeof(path), "/sys/fs/cgroup/%s", h->d_name);
				removed += cg_remove(path);
				continue;
			}
			if (h->d_name[0] == '.' || h->d_type != DT_DIR || !strncmp(h->d_name, prefix, plen))
				continue;
			snprintf(path, sizeof(path), "/sys/fs/cgroup/%s", h->d_name);
			base = path;
			/* only cgroup file systems: crun also writes into the tmpfs that covers the
			 * cgroup2 mount in our namespace, which goes away with the namespace */
			struct statfs sf;
			if (statfs(base, &sf) < 0 || (sf.f_type != 0x27e0eb && sf.f_type != 0x63677270))
				continue;
			DIR *d = opendir(base);
			struct dirent *e;
			while (d && (e = readdir(d))) {
				if (e->d_type != DT_DIR || strncmp(e->d_name, prefix, plen))
					continue;
				char sub[1024];
				snprintf(sub, sizeof(sub), "%s/%s", base, e->d_name);
				removed += cg_remove(sub);
			}
			if (d)
				closedir(d);
		}
	}
	closedir(top);
	return removed;
}

static const struct sb_opts *cleanup_opts;

void sb_cleanup_register(const struct sb_opts *o)
{
	cleanup_opts = o;
}

void sb_cleanup(void)
{
	for (int i = 0; i < MAXTRACK; i++)
		if (tracked[i] > 0) {
			pid_t p = tracked[i];
			kill(p, SIGKILL);
			waitpid(p, NULL, 0);
			tracked[i] = 0;
		}
	if (!cleanup_opts)
		return;
	/* Supervision processes orphaned by the kill come to us (we are a child subreaper): kill
	 * our children until none is left, and the workloads they left behind: only processes whose
	 * command line ends in this run's magic number. */
	static pid_t left[8192];
	for (int round = 0; round < 20; round++) {
		int nk = sb_children(getpid(), left, 8192);
		for (int i = 0; i < nk; i++)
			kill(left[i], SIGKILL);
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		int nw = sb_scan_workloads(cleanup_opts->magic, left, 8192);
		for (int i = 0; i < nw && i < 8192; i++)
			if (sb_is_workload(left[i], cleanup_opts->magic) == 1)
				kill(left[i], SIGKILL);
		if (nk <= 0 && nw <= 0)
			break;
		sb_sleep_ms(50);
	}
	sb_cgroup_sweep(cleanup_opts->cgprefix);
	if (cleanup_opts->tmp[0])
		sb_rm_rf(cleanup_opts->tmp);
}

/* The `run` file of an s6 or runit service directory is a symlink to this binary: one exec,
 * like our init exec'ing the workload (a shell script would add a shell's start-up). */
int role_run(void)
{
	const char *magic = getenv("SUPBENCH_MAGIC");
	if (!magic)
		return 111;
	char *argv[] = { "sleep", (char *)magic, NULL };
	execv("/bin/busybox", argv);
	return 111;
}

/* ---- exec events (the kernel's proc connector) ----
 * Counting started workloads by scanning all of /proc every millisecond burns most of a CPU
 * once there are thousands of processes, on a 2-CPU machine: the measurement slowed what it
 * measured. The proc connector instead sends one message per exec; only that process's
 * cmdline is read. Lost messages (ENOBUFS) make the caller fall back to scanning. */
#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/netlink.h>
#include <sys/socket.h>

int sb_execwatch_open(void)
{
	int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_CONNECTOR);
	if (fd < 0)
		return -1;
	int big = 16 << 20;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = CN_IDX_PROC, .nl_pid = 0 };
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	struct {
		struct nlmsghdr nl;
		struct cn_msg cn;
		enum proc_cn_mcast_op op;
	} __attribute__((packed)) req;
	memset(&req, 0, sizeof(req));
	req.nl.nlmsg_len = sizeof(req);
	req.nl.nlmsg_type = NLMSG_DONE;
	req.nl.nlmsg_pid = (unsigned)getpid();
	req.cn.id.idx = CN_IDX_PROC;
	req.cn.id.val = CN_VAL_PROC;
	req.cn.len = sizeof(req.op);
	req.op = PROC_CN_MCAST_LISTEN;
	if (send(fd, &req, sizeof(req), 0) != (ssize_t)sizeof(req)) {
		close(fd);
		return -1;
	}
	return fd;
}

int sb_execwatch_read(int fd, const char *magic, int wait_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	if (poll(&p, 1, wait_ms) <= 0)
		return 0;
	int found = 0;
	char buf[8192] __attribute__((aligned(8)));
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? found : -1;
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
		     h = NLMSG_NEXT(h, n)) {
			struct cn_msg *cn = NLMSG_DATA(h);
			struct proc_event *ev = (struct proc_event *)cn->data;
			if (ev->what == PROC_EVENT_EXEC &&
			    ev->event_data.exec.process_pid == ev->event_data.exec.process_tgid &&
			    sb_is_workload(ev->event_data.exec.process_pid, magic) == 1)
				found++;
		}
	}
}

/* ---- the bare floors' container side ----
 * In a new mount namespace: the rootfs bound and pivot_root'ed into, /proc, a /dev tmpfs,
 * hostname "c", then exec argv. With same, the rest of what ours' default container has
 * (init/setup.c, supervisor/config/security.c): lo up, /dev's nodes and links, devpts, /dev/shm, a
 * read-only /sys, the masked and read-only paths, the default capabilities (bounding set
 * too), no_new_privs and the default seccomp filter. Only returns on failure: the step that
 * failed (1..). */
static const struct { const char *name; unsigned major, minor; } floor_nodes[] = {
	{ "null", 1, 3 }, { "zero", 1, 5 }, { "full", 1, 7 }, { "random", 1, 8 }, { "urandom", 1, 9 }, { "tty", 5, 0 },
};
static const char *const floor_links[][2] = {
	{ "/proc/self/fd", "fd" }, { "/proc/self/fd/0", "stdin" }, { "/proc/self/fd/1", "stdout" },
	{ "/proc/self/fd/2", "stderr" }, { "pts/ptmx", "ptmx" },
};
static const char *const floor_masked[] = {
	"/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
	"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
	"/sys/devices/virtual/powercap",
};
static const char *const floor_readonly[] = { "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger" };
/* ours' default: CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE
 * SYS_CHROOT SETFCAP */
#define FLOOR_CAPS ((1ULL << 0) | (1ULL << 1) | (1ULL << 3) | (1ULL << 4) | (1ULL << 5) | (1ULL << 6) | \
		    (1ULL << 7) | (1ULL << 8) | (1ULL << 10) | (1ULL << 18) | (1ULL << 31))

static int floor_dev(const char *dev)
{
	char p[700];
	mode_t old = umask(0);
	for (size_t i = 0; i < sizeof(floor_nodes) / sizeof(*floor_nodes); i++) {
		snprintf(p, sizeof(p), "%s/%s", dev, floor_nodes[i].name);
		if (mknod(p, S_IFCHR | 0666, makedev(floor_nodes[i].major, floor_nodes[i].minor)) < 0)
			return 1;
	}
	umask(old);
	for (size_t i = 0; i < sizeof(floor_links) / sizeof(*floor_links); i++) {
		snprintf(p, sizeof(p), "%s/%s", dev, floor_links[i][1]);
		if (symlink(floor_links[i][0], p) < 0)
			return 1;
	}
	snprintf(p, sizeof(p), "%s/pts", dev);
	if (mkdir(p, 0755) < 0 ||
	    mount("devpts", p, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=620") < 0)
		return 2;
	snprintf(p, sizeof(p), "%s/shm", dev);
	if (mkdir(p, 01777) < 0 || mount("shm", p, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=65536k") < 0)
		return 3;
	return 0;
}

/* After pivot_root: what ours masks and makes read-only (what this kernel has of it). */
static int floor_paths(void)
{
	for (size_t i = 0; i < sizeof(floor_readonly) / sizeof(*floor_readonly); i++)
		if (mount(floor_readonly[i], floor_readonly[i], NULL, MS_BIND | MS_REC, NULL) == 0 &&
		    mount(NULL, floor_readonly[i], NULL, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_REMOUNT | MS_BIND, NULL) < 0)
			return 1;
	for (size_t i = 0; i < sizeof(floor_masked) / sizeof(*floor_masked); i++) {
		struct stat st;
		if (stat(floor_masked[i], &st) < 0)
			continue;
		if (S_ISDIR(st.st_mode) ? mount("corral-masked", floor_masked[i], "tmpfs",
						MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
						"size=0,nr_inodes=1,mode=555") < 0
					: mount("/dev/null", floor_masked[i], NULL, MS_BIND, NULL) < 0)
			return 2;
	}
	return 0;
}

static int floor_privileges(void)
{
	for (int c = 0; c < 64; c++)
		if (!(FLOOR_CAPS & (1ULL << c)) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno == EINVAL)
			break;                 /* past the kernel's last capability */
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2] = {
		{ (uint32_t)FLOOR_CAPS, (uint32_t)FLOOR_CAPS, 0 },
		{ (uint32_t)(FLOOR_CAPS >> 32), (uint32_t)(FLOOR_CAPS >> 32), 0 },
	};
	if (syscall(SYS_capset, &h, d) < 0)
		return 1;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return 2;
	/* ours' default filter for the default capabilities, as compiled at build time */
	const struct cr_bpf_image *img = &cr_seccomp_builtin[0];
	struct sock_fprog prog = { (unsigned short)(img->len / sizeof(struct sock_filter)),
				   (struct sock_filter *)(uintptr_t)img->code };
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
		return 3;
	return 0;
}

int sb_bare_enter(const char *rootfs, char *const argv[], bool same)
{
	char p[600];
	if (same && cr_loopback_up() < 0)   /* as ours' init */
		return 11;
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
		return 1;
	snprintf(p, sizeof(p), "%s/dev", rootfs);
	if (mount("tmpfs", p, "tmpfs", same ? MS_NOSUID | MS_NOEXEC : MS_NOSUID, "mode=755,size=64k") < 0)
		return 3;
	if (same && floor_dev(p) != 0)
		return 7;
	snprintf(p, sizeof(p), "%s/proc", rootfs);
	if (mount("proc", p, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		return 2;
	snprintf(p, sizeof(p), "%s/sys", rootfs);
	if (same && mount("sysfs", p, "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		return 8;
	if (chdir(rootfs) < 0 || syscall(SYS_pivot_root, ".", ".") < 0 ||
	    umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
		return 4;
	if (same && floor_paths() != 0)
		return 9;
	if (sethostname("c", 1) < 0)
		return 5;
	if (same && floor_privileges() != 0)
		return 10;
	char *envp[] = { NULL };
	execve(argv[0], argv, envp);
	return 6;
}

/* The value of "Key:" in /proc/PID/status (its first word), or "?". */
static void status_field(const char *status, const char *key, char *out, size_t len)
{
	const char *p = strstr(status, key);
	snprintf(out, len, "?");
	if (p) {
		p += strlen(key);
		p += strspn(p, " \t");
		snprintf(out, len, "%.*s", (int)strcspn(p, " \t\n"), p);
	}
}

/* The cgroup of each v1 hierarchy in /proc/PID/cgroup (host view: we are in the host's
 * cgroup namespace) that is the container's own: not the harness's, nor a supervisor's own
 * (ours' containers stay in the supervisor's cgroup of the hierarchies it sets no limit in). */
static int own_cgroups(pid_t pid)
{
	char path[64], mine[4096], theirs[4096];
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	if (bc_read_small("/proc/self/cgroup", mine, sizeof(mine)) < 0 || bc_read_small(path, theirs, sizeof(theirs)) < 0)
		return -1;
	int n = 0;
	for (char *line = theirs, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (!strncmp(line, "0::", 3))
			continue;      /* cgroup2's: not a v1 hierarchy */
		const char *leaf = strrchr(line, '/');
		size_t ll = strlen(line);
		bool harness = false;      /* the same line in ours: a whole line of /proc/self/cgroup */
		for (const char *m = strstr(mine, line); m && !harness; m = strstr(m + 1, line))
			harness = (m == mine || m[-1] == '\n') && (m[ll] == '\n' || m[ll] == '\0');
		if (!harness && !(leaf && !strcmp(leaf, "/supervisor")))
			n++;
	}
	return n;
}

int sb_container_print(pid_t pid, char *buf, size_t len)
{
	char path[64], status[8192], bnd[32], eff[32], nnp[8], filters[8];
	static char mounts[1 << 16];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (bc_read_small(path, status, sizeof(status)) < 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/mountinfo", (int)pid);
	ssize_t k = bc_read_small(path, mounts, sizeof(mounts));
	if (k < 0)
		return -1;
	int nm = 0;
	for (ssize_t i = 0; i < k; i++)
		nm += mounts[i] == '\n';
	/* lo is up when the local table has 127.0.0.1 */
	snprintf(path, sizeof(path), "/proc/%d/net/fib_trie", (int)pid);
	bool lo = bc_read_small(path, mounts, sizeof(mounts)) > 0 && strstr(mounts, "127.0.0.1");
	status_field(status, "CapBnd:", bnd, sizeof(bnd));
	status_field(status, "CapEff:", eff, sizeof(eff));
	status_field(status, "NoNewPrivs:", nnp, sizeof(nnp));
	status_field(status, "Seccomp_filters:", filters, sizeof(filters));
	snprintf(buf, len, "%d mounts, lo %s, CapBnd %s, CapEff %s, no_new_privs %s, %s seccomp filter(s),"
		 " own cgroups in %d v1 hierarchies", nm, lo ? "up" : "down", bnd, eff, nnp, filters, own_cgroups(pid));
	return 0;
}

/* One step of waiting for n workloads to exec: reads exec events (ew; on lost events it
 * closes it and sets it to -1, then full scans are used), and when n are counted confirms
 * them with a full scan. Returns 1 with *at_ms (since t0) when all n run, else 0. */
int sb_started_step(int *ew, const char *magic, int n, int *seen, int64_t t0, double *at_ms)
{
	int k;
	if (*ew >= 0) {
		int got = sb_execwatch_read(*ew, magic, 2);
		if (got < 0) {
			close(*ew);
			*ew = -1;
			return 0;
		}
		k = *seen += got;
	} else {
		k = sb_scan_workloads(magic, NULL, 0);
		sb_sleep_ms(1);
	}
	if (k < n)
		return 0;
	double at = (bc_now_ns() - t0) / 1e6;
	int really = *ew >= 0 ? sb_scan_workloads(magic, NULL, 0) : k;
	if (really < n) {
		*seen = really;
		return 0;
	}
	*at_ms = at;
	return 1;
}
