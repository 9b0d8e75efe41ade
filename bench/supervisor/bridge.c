/* 1c. A container on a bridge network, start to exit: ours (`supervisor -c FILE run c`,
 * network = bridge, beside a supervisor of the same root that keeps the network's bridge up, as
 * on a host running services) against `podman run --network NET` (a bridge network of the
 * bench's own, made with `podman network create`; runc, cgroupfs), and each with network =
 * none in the same run, taking turns, so that what the bridge adds shows for both. Ours' CPU
 * (user + sys of the run and its container, from wait4) is shown too, with the keeper's
 * added (a run's container is connected by that supervisor: run_net.h; its cgroup's CPU,
 * as a mean over the runs); podman's is not comparable
 * (conmon leaves the process tree), so its column says n/a there. */
#include "supbench.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

enum { B_OURS, B_OURS_NONE, B_PODMAN, B_PODMAN_NONE, NB };
static const char *b_name[NB] = { "ours bridge", "ours none", "podman bridge", "podman none" };

/* Subnets of the bench's own (not 10.89/16, where running supervisors pick theirs). */
#define OURS_SUBNET "10.239.240.0/24"
#define PODMAN_SUBNET "10.239.241.0/24"

struct bctx {
	const struct sb_opts *o;
	char ini[2][512], net[96], sock[512];
	const char *podman;
	pid_t keeper;
	double keeper_ms[NB];        /* the keeper's CPU during each kind's runs, summed */
};

/* The keeper's CPU so far, ms: its cgroup's (the supervisor keeps itself in ROOT/supervisor,
 * alone), in ns from cpuacct.usage (v1) or usage_usec (v2); else its threads' user + sys
 * from /proc, in clock ticks (a mean over many runs is then as near as it gets). */
static double keeper_cpu_ms(const struct bctx *c)
{
	char path[600], buf[4096], *p;
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)c->keeper);
	if (c->keeper > 0 && bc_read_small(path, buf, sizeof(buf)) > 0) {
		static const char *const v1[] = { "/sys/fs/cgroup/cpuacct", "/sys/fs/cgroup/cpu,cpuacct" };
		char cg[400];
		for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
			char text[256];
			if (sscanf(line, "%*d:%*[^:]:%399s", cg) != 1)
				continue;
			bool acct = strstr(line, "cpuacct") != NULL, unified = !strncmp(line, "0::", 3);
			for (int i = 0; acct && i < 2; i++) {
				snprintf(path, sizeof(path), "%s%s/cpuacct.usage", v1[i], cg);
				if (bc_read_small(path, text, sizeof(text)) > 0)
					return strtoull(text, NULL, 10) / 1e6;
			}
			for (int i = 0; unified && i < 2; i++) {
				snprintf(path, sizeof(path), "/sys/fs/cgroup%s%s/cpu.stat",
					 i ? "/unified" : "", cg);
				if (bc_read_small(path, text, sizeof(text)) > 0 &&
				    (p = strstr(text, "usage_usec ")))
					return strtoull(p + 11, NULL, 10) / 1e3;
			}
		}
	}
	char dir[64];
	snprintf(dir, sizeof(dir), "/proc/%d/task", (int)c->keeper);
	DIR *d = c->keeper > 0 ? opendir(dir) : NULL;
	struct dirent *e;
	unsigned long long ticks = 0;
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s/stat", dir, e->d_name);
		unsigned long long u, s;
		if (bc_read_small(path, buf, sizeof(buf)) > 0 && (p = strrchr(buf, ')')) &&
		    sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &u,
			   &s) == 2)
			ticks += u + s;
	}
	if (d)
		closedir(d);
	return ticks * 1000.0 / (double)sysconf(_SC_CLK_TCK);
}

static int write_inis(struct bctx *c)
{
	const struct sb_opts *o = c->o;
	static const char *const mode[2] = { "bridge", "none" };
	for (int i = 0; i < 2; i++) {
		char text[2048];
		snprintf(c->ini[i], sizeof(c->ini[i]), "%s/net-%s.ini", o->tmp, mode[i]);
		snprintf(text, sizeof(text),
			 "; 1c: the container of 1a on a network (`run c`), and a sleeping service\n"
			 "; that keeps the bridge up while the runs come and go\n"
			 "[supervisor]\ncgroup_root = %s-net\nlog_dir = %s\nrun_dir = %s/net-run\n"
			 "control_socket = %s\n\n"
			 "[network:default]\nsubnet = %s\n\n"
			 "[service:c]\ncommand = /bin/true\nrootfs = %s\nhostname = c\n"
			 "namespaces = pid,mount,uts,ipc,net\nnetwork = %s\nmemory_max = 100M\n"
			 "autostart = false\nautorestart = false\nstartsecs = 0\n\n"
			 "[service:keep]\ncommand = /bin/sleep %s\nrootfs = %s\nnetwork = bridge\n",
			 o->cgprefix, o->tmp, o->tmp, c->sock, OURS_SUBNET, o->rootfs, mode[i],
			 o->magic, o->rootfs);
		if (sb_write_file(c->ini[i], text) < 0)
			return -1;
	}
	return 0;
}

/* The keeper supervisor, up once its state names the bridge; 0 or -1. */
static int keeper_start(struct bctx *c)
{
	char *argv[] = { (char *)c->o->ours, "-c", c->ini[0], NULL };
	c->keeper = sb_spawn(argv, NULL, c->o->log_fd, c->o->log_fd, NULL);
	if (c->keeper < 0)
		return -1;
	char path[600], text[4096];
	snprintf(path, sizeof(path), "%s/net-run/%s-net/state", c->o->tmp, c->o->cgprefix);
	int64_t end = bc_now_ns() + 20 * 1000000000LL;
	while (bc_now_ns() < end) {
		int st;
		if (sb_wait(c->keeper, 0, &st) == 1) {
			c->keeper = -1;
			return -1;
		}
		if (bc_read_small(path, text, sizeof(text)) > 0 && strstr(text, "\nbridge "))
			return 0;
		sb_sleep_ms(10);
	}
	return -1;
}

static void keeper_stop(struct bctx *c)
{
	if (c->keeper <= 0)
		return;
	kill(c->keeper, SIGTERM);
	int st;
	if (sb_wait(c->keeper, 30000, &st) != 1)
		sb_kill_reap(c->keeper);
	c->keeper = -1;
}

/* podman ARGS (at most 14), waited for; 0 when it exits 0. */
static int podman(struct bctx *c, char *const args[])
{
	char *argv[16] = { (char *)c->podman };
	for (int i = 0; i < 14 && args[i]; i++)
		argv[i + 1] = args[i];
	pid_t pid = sb_spawn(argv, NULL, c->o->log_fd, c->o->log_fd, NULL);
	int st;
	return pid > 0 && sb_wait(pid, 60000, &st) == 1 && WIFEXITED(st) && !WEXITSTATUS(st) ? 0
												   : -1;
}

/* One start to exit: ms (NaN on failure), *cpu_ms from wait4 (ours' tree; podman's leaves it). */
static double run_one(struct bctx *c, int k, double *cpu_ms)
{
	const struct sb_opts *o = c->o;
	char parent[128];
	snprintf(parent, sizeof(parent), "%s-podman", o->cgprefix);
	char *ours[] = { (char *)o->ours, "-c", c->ini[k == B_OURS ? 0 : 1], "run", "c", NULL };
	char *pm[] = { (char *)c->podman, "run", "--rm", "--runtime", "runc", "--cgroup-manager",
		       "cgroupfs", "--cgroup-parent", parent, "--ulimit", "nofile=4096:4096",
		       "--ulimit", "nproc=8192:8192", "--network",
		       k == B_PODMAN ? c->net : "none", "--rootfs", (char *)o->rootfs, "/bin/true",
		       NULL };
	double keeper0 = k <= B_OURS_NONE ? keeper_cpu_ms(c) : 0;
	int64_t t0 = bc_now_ns();
	pid_t pid = sb_spawn(k <= B_OURS_NONE ? ours : pm, NULL, o->log_fd, o->log_fd, NULL);
	if (pid < 0)
		return NAN;
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	struct pollfd p = { fd, POLLIN, 0 };
	int r = 1;
	while (fd >= 0 && (r = poll(&p, 1, 60000)) < 0 && errno == EINTR)
		;
	if (fd >= 0)
		close(fd);
	if (r == 0) {
		sb_kill_reap(pid);
		return NAN;
	}
	int st;
	struct rusage ru;
	while (wait4(pid, &st, 0, &ru) < 0 && errno == EINTR)
		;
	double ms = (bc_now_ns() - t0) / 1e6;
	sb_untrack(pid);
	*cpu_ms = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
		  (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
	if (k <= B_OURS_NONE) {
		sb_sleep_ms(20);   /* the keeper's part after the run's end (its lease given back) */
		c->keeper_ms[k] += keeper_cpu_ms(c) - keeper0;
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st)) {
		fprintf(stderr, "supbench: 1c %s: container failed (status 0x%x), see the log\n",
			b_name[k], st);
		return NAN;
	}
	return ms;
}

/* podman (cgroupfs manager) puts conmon under a libpod_parent cgroup per hierarchy and leaves
 * it. Those it made during the bench (not there before: bit i of made) are removed once empty,
 * depth first; a busy one is left as it is. */
static const char *lp_ctrls[] = { "cpu", "cpuacct", "cpu,cpuacct", "memory", "pids", "blkio",
				  "devices", "freezer", "cpuset", "net_cls", "net_prio",
				  "net_cls,net_prio", "perf_event", "hugetlb", "rdma", "misc",
				  "systemd", "unified", "" };
#define NLP (sizeof(lp_ctrls) / sizeof(lp_ctrls[0]))

static unsigned lp_present(void)
{
	unsigned m = 0;
	char p[256];
	struct stat st;
	for (unsigned i = 0; i < NLP; i++) {
		snprintf(p, sizeof(p), "/sys/fs/cgroup/%s%slibpod_parent", lp_ctrls[i],
			 *lp_ctrls[i] ? "/" : "");
		if (stat(p, &st) == 0 && S_ISDIR(st.st_mode))
			m |= 1u << i;
	}
	return m;
}

static void lp_rmdir(const char *dir, int depth)
{
	DIR *d = depth < 8 ? opendir(dir) : NULL;
	struct dirent *e;
	char sub[512];
	while (d && (e = readdir(d))) {
		if (e->d_type != DT_DIR || e->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name);
		lp_rmdir(sub, depth + 1);
	}
	if (d)
		closedir(d);
	rmdir(dir);
}

static void lp_remove_new(unsigned before)
{
	unsigned made = lp_present() & ~before;
	char p[256];
	for (unsigned i = 0; i < NLP; i++)
		if (made & 1u << i) {
			snprintf(p, sizeof(p), "/sys/fs/cgroup/%s%slibpod_parent", lp_ctrls[i],
				 *lp_ctrls[i] ? "/" : "");
			lp_rmdir(p, 0);
		}
}

int bench_bridge(const struct sb_opts *o, struct sb_table *t)
{
	struct bctx c;
	memset(&c, 0, sizeof(c));
	c.o = o;
	c.keeper = -1;
	c.podman = "/usr/bin/podman";
	unsigned lp_before = lp_present();
	snprintf(c.sock, sizeof(c.sock), "%s/net.sock", o->tmp);
	snprintf(c.net, sizeof(c.net), "%s", o->cgprefix);
	int failed = 0;
	bool have[NB] = { true, true, access(c.podman, X_OK) == 0, false };
	if (write_inis(&c) < 0 || keeper_start(&c) < 0) {
		fprintf(stderr, "supbench: 1c: the supervisor keeping the bridge did not come up\n");
		have[B_OURS] = have[B_OURS_NONE] = false;
		failed = 1;
	}
	if (have[B_PODMAN]) {
		char *create[] = { "network", "create", "--subnet", PODMAN_SUBNET, c.net, NULL };
		have[B_PODMAN] = podman(&c, create) == 0;
		if (!have[B_PODMAN])
			fprintf(stderr, "supbench: 1c: podman network create failed: its columns are n/a\n");
	} else {
		fprintf(stderr, "supbench: 1c: podman is missing (apt-get install podman): n/a\n");
	}
	have[B_PODMAN_NONE] = have[B_PODMAN];
	int n[NB] = { o->containers, o->containers, o->podman_runs, o->podman_runs };
	double *ms[NB], *cpu[NB];
	int cnt[NB] = { 0 };
	for (int k = 0; k < NB; k++) {
		ms[k] = calloc((size_t)n[k] + 1, sizeof(double));
		cpu[k] = calloc((size_t)n[k] + 1, sizeof(double));
	}
	/* A warm-up each, then turns: ours' two kinds in pairs, bridge-none then none-bridge
	 * (the turn's first kind alternating too), 5 runs of each; then podman's two kinds, 5
	 * each. Ours' kinds alternate run by run because what podman leaves behind (its network
	 * namespaces and cgroups going away in the kernel's workers) slows the runs right after
	 * it: with ours' kinds in blocks of 5, the bridge's block always came first and took
	 * all of that (its added time read 1.6 ms where paired runs gave 0.7). */
	for (int k = 0; k < NB; k++) {
		double x;
		if (have[k])
			run_one(&c, k, &x);
	}
	static const int ours_order[2][10] = {
		{ B_OURS, B_OURS_NONE, B_OURS_NONE, B_OURS, B_OURS, B_OURS_NONE, B_OURS_NONE, B_OURS,
		  B_OURS, B_OURS_NONE },
		{ B_OURS_NONE, B_OURS, B_OURS, B_OURS_NONE, B_OURS_NONE, B_OURS, B_OURS, B_OURS_NONE,
		  B_OURS_NONE, B_OURS },
	};
	for (int turn = 0, more = 1; more; turn++) {
		more = 0;
		int order[20], len = 0;
		for (int i = 0; i < 10; i++)
			order[len++] = ours_order[turn % 2][i];
		for (int k = B_PODMAN; k < NB; k++)
			for (int i = 0; i < 5; i++)
				order[len++] = k;
		for (int j = 0; j < len; j++) {
			int k = order[j];
			if (!have[k] || cnt[k] >= n[k])
				continue;
			double x, v = run_one(&c, k, &x);
			if (isnan(v)) {
				have[k] = false;
				failed = 1;
				continue;
			}
			cpu[k][cnt[k]] = x;
			ms[k][cnt[k]++] = v;
			more |= cnt[k] < n[k];
		}
	}
	keeper_stop(&c);
	if (access(c.podman, X_OK) == 0) {
		char *rm[] = { "network", "rm", "-f", c.net, NULL };
		podman(&c, rm);
	}
	lp_remove_new(lp_before);
	double p50[NB], c50[NB], kept[NB];
	for (int k = 0; k < NB; k++) {
		bool ok = have[k] && cnt[k] == n[k];
		p50[k] = ok ? bc_pct(ms[k], cnt[k], 50) : NAN;
		/* the warm-up's share left out: the mean over the counted runs, as near as ticks go */
		kept[k] = ok && k <= B_OURS_NONE ? c.keeper_ms[k] / (cnt[k] + 1) : 0;
		c50[k] = ok ? bc_pct(cpu[k], cnt[k], 50) + kept[k] : NAN;
		free(ms[k]);
		free(cpu[k]);
	}
	static char title[1024];
	snprintf(title, sizeof(title),
		 "== 1c. Container on a bridge network, start to exit: %d runs of ours, %d of podman, each"
		 " also with network = none, in turns ==\n"
		 "   ours: the container of 1a with network = bridge (a veth pair, an address, the default"
		 " route, hosts),\n"
		 "   `supervisor -c FILE run c` beside a supervisor of the same root holding the bridge up;"
		 " podman %s:\n"
		 "   `podman run --rm --runtime runc --network NET --rootfs ROOTFS /bin/true` on a"
		 " `podman network create` bridge.\n"
		 "   ours' CPU: user+sys of the run and its container (wait4), plus the keeper's per run"
		 " (it connects the container; its cgroup's CPU, a mean: %.2f ms bridge, %.2f none);\n"
		 "   podman's conmon leaves its tree: n/a.",
		 o->containers, o->podman_runs, "(CNI or netavark, as installed)", kept[B_OURS],
		 kept[B_OURS_NONE]);
	*t = (struct sb_table){ .title = title, .ncol = 2, .nours = 1, .cols = { "ours", "podman" } };
	struct sb_row *row = t->rows;
	*row++ = (struct sb_row){ "bridge: start to exit, p50 ms", { p50[B_OURS], p50[B_PODMAN] },
				  T_LE_FRAC, 1, 0.5, 2, 0 };
	*row++ = (struct sb_row){ "none: start to exit, p50 ms",
				  { p50[B_OURS_NONE], p50[B_PODMAN_NONE] }, T_NONE, 0, 0, 2, 0 };
	/* the figure: the start cost a bridge adds, at most 1 ms (podman's: tens) */
	*row++ = (struct sb_row){ "added by the bridge, p50 ms",
				  { p50[B_OURS] - p50[B_OURS_NONE], p50[B_PODMAN] - p50[B_PODMAN_NONE] },
				  T_LE_ABS, 0, 1, 2, 0 };
	*row++ = (struct sb_row){ "bridge: CPU, p50 ms", { c50[B_OURS], NAN }, T_NONE, 0, 0, 2, 0 };
	*row++ = (struct sb_row){ "none: CPU, p50 ms", { c50[B_OURS_NONE], NAN }, T_NONE, 0, 0, 2, 0 };
	*row++ = (struct sb_row){ "CPU added by the bridge, ms", { c50[B_OURS] - c50[B_OURS_NONE], NAN },
				  T_LE_ABS, 0, 1, 2, 0 };
	t->nrows = (int)(row - t->rows);
	return failed ? -1 : 0;
}
