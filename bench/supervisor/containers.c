/* 1. Container start-to-exit: `supervisor -c FILE run c` against `crun run` and `runc run` of an
 * OCI bundle for the same container (pid, mount, uts, ipc and net namespaces, pivot_root into
 * the busybox rootfs, /proc, /dev, /sys, hostname, memory limit 100 MB, /bin/true; the same
 * hardening: 11 capabilities, no_new_privs, masked and read-only paths, pids 2048, our seccomp
 * filter), the same container with user_namespace = auto (and with an idmap bind), and a bare
 * floor: a forked copy of this harness doing the same namespaces, cgroups and pivot_root with
 * raw syscalls. Each start is timed from spawn to reaped, the runtime's own clean-up included. */
#include "supbench.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

enum { R_OURS, R_USERNS, R_IDMAP, R_CRUN, R_RUNC, R_BARE, NRT };
static const char *rt_name[NRT] = { "ours", "ours userns", "ours idmap", "crun", "runc", "bare" };

struct ctx {
	const struct sb_opts *o;
	/* ini[R_OURS]: the container of the bundles; ini[R_USERNS]: the same with
	 * user_namespace = auto (an idmapped rootfs); ini[R_IDMAP]: and an idmap bind */
	char ini[3][512], bundle[2][512], crun_root[512], runc_root[512];
	bool present[NRT];
	int seq_id;
};

/* Our default seccomp profile as OCI JSON (`supervisor --print-seccomp`), so crun and runc
 * install the same filter as ours: like-for-like hardening. */
static const char *default_seccomp(const struct sb_opts *o)
{
	static char text[8192];
	if (text[0])
		return text;
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "%s --print-seccomp", o->ours);
	FILE *p = popen(cmd, "r");
	size_t n = p ? fread(text, 1, sizeof(text) - 1, p) : 0;
	if (p)
		pclose(p);
	text[n] = '\0';
	if (n == 0 || n == sizeof(text) - 1)
		snprintf(text, sizeof(text), "null");
	return text;
}

/* The hardening ours applies by default, in OCI terms: podman's 11 capabilities,
 * no_new_privs, the OCI masked and read-only paths, pids 2048, our seccomp filter. */
#define OCI_CAPS "[\"CAP_CHOWN\", \"CAP_DAC_OVERRIDE\", \"CAP_FOWNER\", \"CAP_FSETID\", " \
	"\"CAP_KILL\", \"CAP_SETGID\", \"CAP_SETUID\", \"CAP_SETPCAP\", \"CAP_NET_BIND_SERVICE\", " \
	"\"CAP_SYS_CHROOT\", \"CAP_SETFCAP\"]"

static int write_bundle(const struct ctx *c, int w)
{
	char path[600], json[16384];
	if (mkdir(c->bundle[w], 0755) < 0 && errno != EEXIST)
		return -1;
	snprintf(json, sizeof(json),
		 "{\n"
		 " \"ociVersion\": \"1.0.2\",\n"
		 " \"process\": {\"terminal\": false, \"user\": {\"uid\": 0, \"gid\": 0},\n"
		 "   \"args\": [\"/bin/true\"], \"env\": [\"PATH=/usr/sbin:/usr/bin:/sbin:/bin\", \"HOME=/root\"],\n"
		 "   \"cwd\": \"/\", \"noNewPrivileges\": true,\n"
		 "   \"capabilities\": {\"bounding\": " OCI_CAPS ", \"effective\": " OCI_CAPS ",\n"
		 "    \"permitted\": " OCI_CAPS "}},\n"
		 " \"root\": {\"path\": \"%s\", \"readonly\": false},\n"
		 " \"hostname\": \"c\",\n"
		 " \"mounts\": [\n"
		 "  {\"destination\": \"/proc\", \"type\": \"proc\", \"source\": \"proc\"},\n"
		 "  {\"destination\": \"/dev\", \"type\": \"tmpfs\", \"source\": \"tmpfs\","
		 " \"options\": [\"nosuid\", \"strictatime\", \"mode=755\", \"size=65536k\"]},\n"
		 "  {\"destination\": \"/dev/pts\", \"type\": \"devpts\", \"source\": \"devpts\","
		 " \"options\": [\"nosuid\", \"noexec\", \"newinstance\", \"ptmxmode=0666\", \"mode=0620\"]},\n"
		 "  {\"destination\": \"/dev/shm\", \"type\": \"tmpfs\", \"source\": \"shm\","
		 " \"options\": [\"nosuid\", \"noexec\", \"nodev\", \"mode=1777\", \"size=65536k\"]},\n"
		 "  {\"destination\": \"/sys\", \"type\": \"sysfs\", \"source\": \"sysfs\","
		 " \"options\": [\"nosuid\", \"noexec\", \"nodev\", \"ro\"]}\n"
		 " ],\n"
		 " \"linux\": {\n"
		 "  \"namespaces\": [{\"type\": \"pid\"}, {\"type\": \"mount\"}, {\"type\": \"uts\"},"
		 " {\"type\": \"ipc\"}, {\"type\": \"network\"}],\n"
		 "  \"resources\": {\"memory\": {\"limit\": 104857600}, \"pids\": {\"limit\": 2048}},\n"
		 "  \"maskedPaths\": [\"/proc/acpi\", \"/proc/asound\", \"/proc/interrupts\",\n"
		 "   \"/proc/kcore\", \"/proc/keys\", \"/proc/latency_stats\", \"/proc/timer_list\",\n"
		 "   \"/proc/timer_stats\", \"/proc/sched_debug\", \"/proc/scsi\", \"/sys/firmware\",\n"
		 "   \"/sys/devices/virtual/powercap\"],\n"
		 "  \"readonlyPaths\": [\"/proc/bus\", \"/proc/fs\", \"/proc/irq\", \"/proc/sys\",\n"
		 "   \"/proc/sysrq-trigger\"],\n"
		 "  \"seccomp\": %s,\n"
		 "  \"cgroupsPath\": \"/%s-oci/w%d\"\n"
		 " }\n"
		 "}\n",
		 c->o->rootfs, default_seccomp(c->o), c->o->cgprefix, w);
	snprintf(path, sizeof(path), "%s/config.json", c->bundle[w]);
	return sb_write_file(path, json);
}

static int write_ini(struct ctx *c)
{
	static const char *const extra[3] = {
		"",
		"user_namespace = auto\n",
		"user_namespace = auto\nbind = %s/idmap-data:/data:idmap\n",
	};
	static const char *const file[3] = { "run.ini", "run-userns.ini", "run-idmap.ini" };
	char text[4096], keys[1024], path[600];
	const char *t = c->o->tmp;
	/* user_namespace = auto: subordinate ids of a name of the bench's own, in its tmp */
	snprintf(path, sizeof(path), "%s/subuid", t);
	if (sb_write_file(path, "crbench:2000000000:655360\n") < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/subgid", t);
	if (sb_write_file(path, "crbench:2000000000:655360\n") < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/idmap-data", t);
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return -1;
	for (int v = 0; v < 3; v++) {
		snprintf(c->ini[v], sizeof(c->ini[v]), "%s/%s", t, file[v]);
		snprintf(keys, sizeof(keys), extra[v], t);
		snprintf(text, sizeof(text),
			 "; the container of the crun/runc bundles, for `supervisor -c FILE run c`\n"
			 "[supervisor]\ncgroup_root = %s-run\nlog_dir = %s\n"
			 "subid_user = crbench\nsubuid_file = %s/subuid\nsubgid_file = %s/subgid\n"
			 "userns_state = %s/userns\n\n"
			 "[service:c]\ncommand = /bin/true\nrootfs = %s\nhostname = c\n"
			 "namespaces = pid,mount,uts,ipc,net\nnetwork = none\nmemory_max = 100M\n"
			 "autorestart = false\n"
			 "startsecs = 0\n%s",
			 c->o->cgprefix, t, t, t, t, c->o->rootfs, keys);
		if (sb_write_file(c->ini[v], text) < 0)
			return -1;
	}
	return 0;
}

/* ---- the bare floor: what any runtime has to do, with nothing else ---- */
static const char *bare_ctrls[] = { "cpu", "cpuacct", "cpuset", "memory", "blkio", "pids", "freezer" };
#define NBARE (int)(sizeof(bare_ctrls) / sizeof(bare_ctrls[0]))

static int copy_file(const char *from, const char *to)
{
	char buf[256];
	int fd = open(from, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n <= 0)
		return -1;
	fd = open(to, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = write(fd, buf, (size_t)n);
	close(fd);
	return n > 0 ? 0 : -1;
}

static int bare_prepare(const struct sb_opts *o)
{
	char p[512], q[512];
	for (int i = 0; i < NBARE; i++) {
		snprintf(p, sizeof(p), "/sys/fs/cgroup/%s/%s-bare", bare_ctrls[i], o->cgprefix);
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			return -1;
	}
	for (int i = 0; i < 2; i++) {
		const char *f = i ? "cpuset.mems" : "cpuset.cpus";
		snprintf(p, sizeof(p), "/sys/fs/cgroup/cpuset/%s", f);
		snprintf(q, sizeof(q), "/sys/fs/cgroup/cpuset/%s-bare/%s", o->cgprefix, f);
		if (copy_file(p, q) < 0)
			return -1;
	}
	snprintf(q, sizeof(q), "/sys/fs/cgroup/cpuset/%s-bare/cgroup.clone_children", o->cgprefix);
	return sb_write_file(q, "1");
}

static int wr(const char *dir, const char *file, const char *val)
{
	char p[600];
	snprintf(p, sizeof(p), "%s/%s", dir, file);
	int fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, val, strlen(val));
	close(fd);
	return n < 0 ? -1 : 0;
}

/* Runs in a forked copy of the harness: its exit status is the container's. */
static int bare_container(const struct sb_opts *o, int id)
{
	char dirs[NBARE][512], pidtxt[32];
	int sync[2];
	for (int i = 0; i < NBARE; i++) {
		snprintf(dirs[i], sizeof(dirs[i]), "/sys/fs/cgroup/%s/%s-bare/c%d", bare_ctrls[i], o->cgprefix, id);
		if (mkdir(dirs[i], 0755) < 0)
			return 120;
	}
	if (wr(dirs[3], "memory.limit_in_bytes", "104857600") < 0 || pipe2(sync, O_CLOEXEC) < 0)
		return 121;
	pid_t pid = (pid_t)syscall(SYS_clone, CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC |
				   CLONE_NEWNET | SIGCHLD, NULL, NULL, NULL, 0);
	if (pid == 0) {
		char c;
		close(sync[1]);
		if (read(sync[0], &c, 1) != 1)
			_exit(122);
		char *argv[] = { "/bin/true", NULL };
		_exit(122 + sb_bare_enter(o->rootfs, argv, false));
	}
	close(sync[0]);
	if (pid < 0)
		return 129;
	snprintf(pidtxt, sizeof(pidtxt), "%d", (int)pid);
	int bad = 0;
	for (int i = 0; i < NBARE; i++)
		bad |= wr(dirs[i], "cgroup.procs", pidtxt);
	if (write(sync[1], "x", 1) != 1)
		bad = 1;
	close(sync[1]);
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	for (int i = 0; i < NBARE; i++)
		if (rmdir(dirs[i]) < 0)
			bad = 1;
	if (bad)
		return 130;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 131;
}

static pid_t start_one(struct ctx *c, int rt, int w)
{
	const struct sb_opts *o = c->o;
	char id[96];
	int n = c->seq_id++;
	snprintf(id, sizeof(id), "%s-w%d-%d", o->cgprefix, w, n);
	switch (rt) {
	case R_OURS:
	case R_USERNS:
	case R_IDMAP: {
		char *argv[] = { (char *)o->ours, "-c", c->ini[rt], "run", "c", NULL };
		return sb_spawn(argv, NULL, o->log_fd, o->log_fd, NULL);
	}
	case R_CRUN: {
		char *argv[] = { (char *)o->crun, "--root", c->crun_root, "run", "--bundle", c->bundle[w], id, NULL };
		return sb_spawn(argv, NULL, o->log_fd, o->log_fd, NULL);
	}
	case R_RUNC: {
		char *argv[] = { (char *)o->runc, "--root", c->runc_root, "run", "--bundle", c->bundle[w], id, NULL };
		return sb_spawn(argv, NULL, o->log_fd, o->log_fd, NULL);
	}
	default: {
		pid_t pid = fork();
		if (pid == 0) {
			dup2(o->log_fd, 2);
			_exit(bare_container(o, n));
		}
		if (pid > 0)
			sb_track(pid);
		return pid;
	}
	}
}

static int failures;

static double check(int rt, int st, double ms)
{
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return ms;
	if (failures++ < 5)
		fprintf(stderr, "supbench: %s: container failed (status 0x%x), see the log\n", rt_name[rt], st);
	return NAN;
}

/* One sequential start; returns ms or NaN. */
static double run_seq(struct ctx *c, int rt)
{
	int64_t t0 = bc_now_ns();
	pid_t pid = start_one(c, rt, 0);
	if (pid < 0)
		return NAN;
	int st;
	if (sb_wait(pid, 30000, &st) != 1) {
		sb_kill_reap(pid);
		return check(rt, -1, NAN);
	}
	return check(rt, st, (bc_now_ns() - t0) / 1e6);
}

/* n starts, two at a time: the next starts as soon as one of the two exits. */
static int run_conc(struct ctx *c, int rt, int n, double *lat, double *wall_ms)
{
	pid_t slot[2] = { -1, -1 };
	int64_t t0[2], start = bc_now_ns();
	int started = 0, done = 0, ok = 0;
	for (int s = 0; s < 2 && started < n; s++, started++) {
		t0[s] = bc_now_ns();
		slot[s] = start_one(c, rt, s);
	}
	while (done < started) {
		int st;
		pid_t pid = waitpid(-1, &st, 0);
		if (pid < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		int64_t t = bc_now_ns();
		int s = pid == slot[0] ? 0 : pid == slot[1] ? 1 : -1;
		if (s < 0)
			continue;
		sb_untrack(pid);
		double ms = check(rt, st, (t - t0[s]) / 1e6);
		if (!isnan(ms))
			lat[ok++] = ms;
		done++;
		slot[s] = -1;
		if (started < n) {
			t0[s] = bc_now_ns();
			slot[s] = start_one(c, rt, s);
			started++;
		}
	}
	*wall_ms = (bc_now_ns() - start) / 1e6;
	return ok;
}

/* proto with its columns (ours, ours userns, ours idmap, crun, runc) filled from v[R_*] / div. */
static struct sb_row table_row(struct sb_row proto, const double v[NRT], double div)
{
	static const int cols[5] = { R_OURS, R_USERNS, R_IDMAP, R_CRUN, R_RUNC };
	for (int i = 0; i < 5; i++)
		proto.v[i] = v[cols[i]] / div;
	return proto;
}

int bench_containers(const struct sb_opts *o, struct sb_table *seq, struct sb_table *conc)
{
	struct ctx c;
	memset(&c, 0, sizeof(c));
	c.o = o;
	snprintf(c.crun_root, sizeof(c.crun_root), "%s/crun-state", o->tmp);
	snprintf(c.runc_root, sizeof(c.runc_root), "%s/runc-state", o->tmp);
	for (int w = 0; w < 2; w++) {
		snprintf(c.bundle[w], sizeof(c.bundle[w]), "%s/bundle-w%d", o->tmp, w);
		if (write_bundle(&c, w) < 0)
			return -1;
	}
	if (write_ini(&c) < 0)
		return -1;
	c.present[R_OURS] = access(o->ours, X_OK) == 0;
	c.present[R_USERNS] = c.present[R_IDMAP] = c.present[R_OURS] && o->userns;
	c.present[R_CRUN] = access(o->crun, X_OK) == 0;
	c.present[R_RUNC] = access(o->runc, X_OK) == 0;
	c.present[R_BARE] = o->bare && bare_prepare(o) == 0;
	if (o->bare && !c.present[R_BARE])
		fprintf(stderr, "supbench: bare floor: cannot prepare its cgroups\n");
	for (int r = 0; r < NRT; r++)
		if (!c.present[r] && (r != R_BARE || o->bare))
			fprintf(stderr, "supbench: %s is missing: its column is n/a\n", rt_name[r]);

	int n = o->containers;
	double *lat[NRT], wall[NRT];
	int cnt[NRT] = { 0 };
	for (int r = 0; r < NRT; r++) {
		lat[r] = calloc((size_t)n, sizeof(double));
		wall[r] = NAN;
	}
	/* Warm-up (page cache, first cgroups), then sequential starts taking turns in blocks of 10
	 * so that the machine's noise hits every runtime alike. */
	for (int r = 0; r < NRT; r++)
		for (int i = 0; i < 3 && c.present[r]; i++)
			run_seq(&c, r);
	for (int done = 0; done < n; done += 10)
		for (int r = 0; r < NRT; r++)
			for (int i = done; i < done + 10 && i < n && c.present[r]; i++) {
				double ms = run_seq(&c, r);
				if (!isnan(ms))
					lat[r][cnt[r]++] = ms;
			}
	double sp50[NRT], sp90[NRT], smean[NRT], cp50[NRT], cp90[NRT], cwall[NRT];
	for (int r = 0; r < NRT; r++) {
		double sum = 0;
		for (int i = 0; i < cnt[r]; i++)
			sum += lat[r][i];
		smean[r] = cnt[r] ? sum / cnt[r] : NAN;
		sp50[r] = cnt[r] == n ? bc_pct(lat[r], cnt[r], 50) : NAN;
		sp90[r] = cnt[r] == n ? bc_pct(lat[r], cnt[r], 90) : NAN;
		if (cnt[r] != n)
			smean[r] = NAN;
	}
	for (int r = 0; r < NRT; r++) {
		cp50[r] = cp90[r] = cwall[r] = NAN;
		if (!c.present[r])
			continue;
		int k = run_conc(&c, r, n, lat[r], &wall[r]);
		if (k == n) {
			cp50[r] = bc_pct(lat[r], k, 50);
			cp90[r] = bc_pct(lat[r], k, 90);
			cwall[r] = wall[r] / n;
		}
	}
	for (int r = 0; r < NRT; r++)
		free(lat[r]);
	sb_cgroup_sweep(o->cgprefix);   /* crun/runc/ours leave their parents (PREFIX-oci, -run) */

	static char t1[1024], t2[512];
	double bare = sp50[R_BARE];
	snprintf(t1, sizeof(t1),
		 "== 1a. Container start to exit, %d sequential: pid+mount+uts+ipc+net namespaces, busybox rootfs"
		 " (pivot_root), /proc, hostname, memory limit 100M, /bin/true ==\n"
		 "   ours: supervisor -c FILE run c; crun/runc: run --bundle (OCI) in a private mount namespace"
		 " without the cgroup2 mount.\n"
		 "   bare floor (a fork of the harness: same clone flags, 7 v1 cgroups, /proc, /dev, pivot_root,"
		 " hostname): p50 %.2f ms.\n"
		 "   Issue's anchors: crun ~8 ms, runc ~2.1x crun, bare ~0.27x crun.\n"
		 "   ours userns: the same with user_namespace = auto (its rootfs idmapped); ours idmap: and"
		 " one idmap bind.",
		 n, bare);
	*seq = (struct sb_table){ .title = t1, .ncol = 5, .nours = 3,
				  .cols = { "ours", "ours userns", "ours idmap", "crun", "runc" } };
	struct sb_row *row = seq->rows;
	*row++ = table_row((struct sb_row){ "start to exit, p50 (ms)", {0}, T_LE_FRAC, 3, 0.5, 2, 0 }, sp50, 1);
	*row++ = table_row((struct sb_row){ "start to exit, p90 (ms)", {0}, T_NONE, 0, 0, 2, 0 }, sp90, 1);
	*row++ = table_row((struct sb_row){ "start to exit, mean (ms)", {0}, T_NONE, 0, 0, 2, 0 }, smean, 1);
	*row++ = table_row((struct sb_row){ "p50 / bare floor p50 (stretch)", {0}, T_LE_ABS, 0, 1.5, 2, 0 },
			   sp50, bare);
	seq->nrows = (int)(row - seq->rows);

	snprintf(t2, sizeof(t2),
		 "== 1b. Container start to exit, %d starts two at a time (the next starts when one exits) ==\n"
		 "   bare floor: p50 %.2f ms, wall/container %.2f ms. 'wall / container' = total wall time / %d.",
		 n, cp50[R_BARE], cwall[R_BARE], n);
	*conc = (struct sb_table){ .title = t2, .ncol = 5, .nours = 3,
				   .cols = { "ours", "ours userns", "ours idmap", "crun", "runc" } };
	row = conc->rows;
	*row++ = table_row((struct sb_row){ "start to exit, p50 (ms)", {0}, T_LE_FRAC, 3, 0.5, 2, 0 }, cp50, 1);
	*row++ = table_row((struct sb_row){ "start to exit, p90 (ms)", {0}, T_NONE, 0, 0, 2, 0 }, cp90, 1);
	*row++ = table_row((struct sb_row){ "wall / container (ms)", {0}, T_LE_FRAC, 3, 0.5, 2, 0 }, cwall, 1);
	conc->nrows = (int)(row - conc->rows);
	return failures ? -1 : 0;
}
