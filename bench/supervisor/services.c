/* 2. Many sleeping services: ours against s6 (s6-svscan + s6-supervise), runit (runsvdir +
 * runsv) and supervisord. Each service's workload is `busybox sleep MAGIC`; MAGIC (unique to
 * this run) finds the workloads in /proc and tells them from the supervision tree.
 *   start:   spawn of the tree's root -> every workload exists (exec'd)
 *   memory:  PSS (smaps_rollup) of the root and every descendant that is not a workload
 *   idle:    CPU ticks and context switches of that tree over a window, after a settle time
 *   restart: SIGKILL one workload -> a new child of its parent runs the workload
 *   stop:    the root's stop signal -> the root is reaped and no workload is left */
#include "supbench.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

enum { S_OURS, S_OURS_NOHARD, S_OURS_PID, S_OURS_PLAIN, S_S6, S_RUNIT, S_SUPD, NSYS };
static const char *sys_name[NSYS] = { "ours", "ours-nohard", "ours-pid", "ours-plain", "s6", "runit", "supervisord" };

/* Each of our columns' own keys (beside rootfs and network = none for the first two). */
static const char *const ours_keys[S_OURS_PLAIN + 1] = {
	[S_OURS] = "",
	/* the bare floor's containers: the hardening off */
	[S_OURS_NOHARD] = "seccomp = unconfined\nunmask = ALL\nconfine_devices = false\n"
			  "cap_add = ALL\nno_new_privileges = false\n",
	[S_OURS_PID] = "namespaces = pid\n",
	/* plain processes, each in its own cgroup: the work s6 does */
	[S_OURS_PLAIN] = "namespaces =\n",
};

/* The columns --no-pid-only leaves out. */
static bool optional(int sys)
{
	return sys > S_OURS && sys <= S_OURS_PLAIN;
}

struct sys_result {
	double start_ms, pss_kb, cpu_ms, vcs, nvcs, restart_p50, restart_max, restart_missed, stop_ms, tree_n;
	char print[300];           /* one workload's container (sb_container_print), ours only */
};

#define SETTLE_MS 2000
#define FLOOR_ROUNDS 3
#define MAXPIDS 8192

struct run {
	const struct sb_opts *o;
	int sys, n;
	char dir[512], conf[800];
	char *argv[8];
	char **env;
	int stop_sig;
};

static FILE *open_conf(struct run *r, const char *name)
{
	snprintf(r->conf, sizeof(r->conf), "%s/%s", r->dir, name);
	FILE *f = fopen(r->conf, "we");
	if (!f)
		fprintf(stderr, "supbench: %s: %s\n", r->conf, strerror(errno));
	return f;
}

/* A scan directory of n services whose run file is a symlink to this binary (role_run). */
static int make_svdir(struct run *r, const char *sub)
{
	char p[600], q[700];
	snprintf(p, sizeof(p), "%s/%s", r->dir, sub);
	if (mkdir(p, 0755) < 0)
		return -1;
	for (int i = 0; i < r->n; i++) {
		snprintf(q, sizeof(q), "%s/s%04d", p, i);
		if (mkdir(q, 0755) < 0)
			return -1;
		snprintf(q, sizeof(q), "%s/s%04d/run", p, i);
		if (symlink(r->o->self, q) < 0)
			return -1;
	}
	/* runsvdir waits for the next second when the directory changed in the current one: date it
	 * (and s6's) back a minute, as a scan directory made in advance would be. */
	struct timespec ts[2];
	clock_gettime(CLOCK_REALTIME, &ts[0]);
	ts[0].tv_sec -= 60;
	ts[1] = ts[0];
	utimensat(AT_FDCWD, p, ts, 0);
	snprintf(r->conf, sizeof(r->conf), "%s", p);
	return 0;
}

static int prepare(struct run *r)
{
	const struct sb_opts *o = r->o;
	snprintf(r->dir, sizeof(r->dir), "%s/%s-%d", o->tmp, sys_name[r->sys], r->n);
	if (mkdir(r->dir, 0755) < 0) {
		fprintf(stderr, "supbench: %s: %s\n", r->dir, strerror(errno));
		return -1;
	}
	r->env = NULL;
	r->stop_sig = SIGTERM;
	FILE *f;
	switch (r->sys) {
	case S_OURS:
	case S_OURS_NOHARD:
	case S_OURS_PID:
	case S_OURS_PLAIN:
		if (!(f = open_conf(r, "services.ini")))
			return -1;
		fprintf(f, "[supervisor]\ncgroup_root = %s-%s-%d\nlog_dir = %s\ncontrol_socket = %s/control.sock\n",
			o->cgprefix, sys_name[r->sys], r->n, r->dir, r->dir);
		for (int i = 0; i < r->n; i++) {
			fprintf(f, "\n[service:s%04d]\ncommand = /bin/busybox sleep %s\nautorestart = true\n"
				"restart_delay = 0\n", i, o->magic);
			if (r->sys == S_OURS || r->sys == S_OURS_NOHARD)   /* a net namespace with lo only */
				fprintf(f, "rootfs = %s\nnetwork = none\n", o->rootfs);
			fputs(ours_keys[r->sys], f);
		}
		if (fclose(f) != 0)
			return -1;
		r->argv[0] = (char *)o->ours;
		r->argv[1] = "-c";
		r->argv[2] = r->conf;
		r->argv[3] = NULL;
		return 0;
	case S_S6:
		if (make_svdir(r, "scan") < 0)
			return -1;
		r->argv[0] = (char *)o->s6svscan;
		r->argv[1] = "-c";
		r->argv[2] = "4000";
		r->argv[3] = r->conf;
		r->argv[4] = NULL;
		return 0;
	case S_RUNIT:
		if (make_svdir(r, "sv") < 0)
			return -1;
		r->argv[0] = (char *)o->runsvdir;
		r->argv[1] = r->conf;
		r->argv[2] = NULL;
		r->stop_sig = SIGHUP;   /* runsvdir: TERM to every runsv, then exit */
		return 0;
	case S_SUPD:
		if (!(f = open_conf(r, "supervisord.conf")))
			return -1;
		fprintf(f, "[supervisord]\nnodaemon = true\nlogfile = %s/supervisord.log\npidfile = %s/supervisord.pid\n"
			"childlogdir = %s\nminfds = 16384\nloglevel = warn\n",
			r->dir, r->dir, r->dir);
		for (int i = 0; i < r->n; i++)
			fprintf(f, "\n[program:s%04d]\ncommand = /bin/busybox sleep %s\nautorestart = true\n"
				"stdout_logfile = NONE\nstderr_logfile = NONE\n", i, o->magic);
		if (fclose(f) != 0)
			return -1;
		r->argv[0] = (char *)o->supervisord;
		r->argv[1] = "-n";
		r->argv[2] = "-c";
		r->argv[3] = r->conf;
		r->argv[4] = NULL;
		return 0;
	}
	return -1;
}

static long starttime(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	unsigned long long st;
	/* field 22; after the comm: fields 3..21 are 19 fields */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
			 &st) != 1)
		return -1;
	return (long)st;
}

/* Alive (not a zombie) and the same process as when start time st0 was read. */
static bool alive_same(pid_t pid, long st0)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	return p && p[2] != 'Z' && p[2] != 'X' && starttime(pid) == st0;
}

static void reap_orphans(void)
{
	/* The harness is a child subreaper: whatever a stopped tree orphaned ends up here. */
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

static int cmp_pid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
	return (x > y) - (x < y);
}

/* SIGKILL victim; returns ms until a new child of its parent (init, s6-supervise, runsv,
 * supervisord) runs the workload. */
static double restart_once(const struct sb_opts *o, pid_t victim)
{
	static pid_t before[MAXPIDS], now[MAXPIDS];
	pid_t parent = sb_ppid(victim);
	int nb = parent > 1 ? sb_children(parent, before, MAXPIDS) : -1;
	if (nb < 0)
		return NAN;
	qsort(before, (size_t)nb, sizeof(pid_t), cmp_pid);
	int64_t t0 = bc_now_ns();
	if (kill(victim, SIGKILL) < 0)
		return NAN;
	while (bc_now_ns() - t0 < 5000000000LL) {
		int nn = sb_children(parent, now, MAXPIDS);
		if (nn < 0)
			return NAN;   /* the parent itself went away */
		for (int i = 0; i < nn; i++)
			if (!bsearch(&now[i], before, (size_t)nb, sizeof(pid_t), cmp_pid) &&
			    sb_is_workload(now[i], o->magic) == 1)
				return (bc_now_ns() - t0) / 1e6;
		sb_sleep_ms(0.05);
	}
	return NAN;
}

/* The running tree's figures (memory, idle, restarts) into *x; returns the tree's size, its
 * pids in pids and their start times in st0 (for the stop). */
static int measure_running(const struct sb_opts *o, int sys, pid_t root, pid_t *pids, pid_t *work, long *st0,
			   struct sys_result *res)
{
	struct sys_result x = *res;
	/* memory and the idle window */
	int nt = sb_tree(root, o->magic, pids, MAXPIDS);
	double pss = 0;
	for (int i = 0; i < nt; i++) {
		long v = sb_pss_kb(pids[i]);
		if (v > 0)
			pss += (double)v;
	}
	x.pss_kb = pss;
	x.tree_n = nt;
	long cpu0 = 0, v0 = 0, nv0 = 0, cpu1 = 0, v1 = 0, nv1 = 0;
	for (int i = 0; i < nt; i++) {
		cpu0 += sb_cpu_ns(pids[i]);
		v0 += sb_ctxt(pids[i], true);
		nv0 += sb_ctxt(pids[i], false);
		st0[i] = starttime(pids[i]);
	}
	sb_sleep_ms(o->idle_s * 1000.0);
	int gone = 0;
	for (int i = 0; i < nt; i++) {
		long c = sb_cpu_ns(pids[i]);
		if (c < 0) {
			gone++;
			continue;
		}
		cpu1 += c;
		v1 += sb_ctxt(pids[i], true);
		nv1 += sb_ctxt(pids[i], false);
	}
	if (gone)
		fprintf(stderr, "supbench: %s: %d tree processes exited during the idle window\n", sys_name[sys], gone);
	x.cpu_ms = (double)(cpu1 - cpu0) / 1e6;
	x.vcs = (double)(v1 - v0);
	x.nvcs = (double)(nv1 - nv0);

	/* restarts: distinct services, each killed once */
	int nw = sb_scan_workloads(o->magic, work, MAXPIDS);
	double lat[32];
	int nl = 0;
	for (int k = 0; k < o->kills && k < nw && k < 32; k++) {
		double ms = restart_once(o, work[k]);
		if (isnan(ms))
			fprintf(stderr, "supbench: %s: killed workload %d not restarted within 5 s\n", sys_name[sys],
				(int)work[k]);
		else
			lat[nl++] = ms;
		sb_sleep_ms(200);
	}
	if (nl > 0) {
		x.restart_max = bc_pct(lat, nl, 100);
		x.restart_p50 = bc_pct(lat, nl, 50);
	}
	x.restart_missed = o->kills - nl;
	/* the tree again: restarts may have changed it (e.g. a new container) */
	nt = sb_tree(root, o->magic, pids, MAXPIDS);
	for (int i = 0; i < nt; i++)
		st0[i] = starttime(pids[i]);
	*res = x;
	return nt;
}

static int one_system(const struct sb_opts *o, int sys, int n, bool start_only, struct sys_result *res)
{
	struct run r = { .o = o, .sys = sys, .n = n };
	struct sys_result x = { NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, "" };
	*res = x;
	if (prepare(&r) < 0)
		return -1;
	pid_t *pids = calloc(MAXPIDS, sizeof(pid_t)), *work = calloc(MAXPIDS, sizeof(pid_t));
	long *st0 = calloc(MAXPIDS, sizeof(long));
	int rc = -1, st;
	char **env = environ;
	char envmagic[64];
	snprintf(envmagic, sizeof(envmagic), "SUPBENCH_MAGIC=%s", o->magic);
	char **env2 = NULL;
	if (sys == S_S6 || sys == S_RUNIT) {
		int ne = 0;
		while (env[ne])
			ne++;
		env2 = calloc((size_t)ne + 2, sizeof(char *));
		memcpy(env2, env, (size_t)ne * sizeof(char *));
		env2[ne] = envmagic;
		env = env2;
	}

	/* start: counted from exec events where the kernel has them (see sb_execwatch_read),
	 * confirmed by one full scan; by scanning /proc every millisecond otherwise. */
	int ew = sb_execwatch_open();
	int seen = 0;
	int64_t t0 = bc_now_ns();
	pid_t root = sb_spawn(r.argv, env, o->log_fd, o->log_fd, r.dir);
	if (root < 0) {
		if (ew >= 0)
			close(ew);
		goto out;
	}
	for (;;) {
		if (sb_started_step(&ew, o->magic, n, &seen, t0, &x.start_ms))
			break;
		int k = seen;
		if (sb_wait(root, 0, &st) == 1) {
			fprintf(stderr, "supbench: %s: exited while starting (status 0x%x), %d of %d running; see the log\n",
				sys_name[sys], st, k, n);
			root = -1;
			if (ew >= 0)
				close(ew);
			goto out;
		}
		if (bc_now_ns() - t0 > 180000000000LL) {
			fprintf(stderr, "supbench: %s: only %d of %d services running after 180 s\n", sys_name[sys], k, n);
			if (ew >= 0)
				close(ew);
			goto out;
		}
	}
	if (ew >= 0)
		close(ew);
	if (sys == S_OURS && sb_scan_workloads(o->magic, work, 1) > 0)
		sb_container_print(work[0], x.print, sizeof(x.print));
	int nt;
	if (start_only) {       /* the floors' pairing: the start alone, then the stop */
		nt = sb_tree(root, o->magic, pids, MAXPIDS);
		for (int i = 0; i < nt; i++)
			st0[i] = starttime(pids[i]);
	} else {
		sb_sleep_ms(SETTLE_MS);
		nt = measure_running(o, sys, root, pids, work, st0, &x);
	}

	/* stop */
	t0 = bc_now_ns();
	kill(root, r.stop_sig);
	bool reaped = false;
	int k = 0, alive = 0;
	for (;;) {
		pid_t p;
		while ((p = waitpid(-1, &st, WNOHANG)) > 0)
			if (p == root) {
				reaped = true;
				sb_untrack(root);
			}
		k = sb_scan_workloads(o->magic, NULL, 0);
		alive = 0;
		for (int i = 1; i < nt; i++)
			alive += st0[i] >= 0 && alive_same(pids[i], st0[i]);
		if (reaped && k == 0 && alive == 0) {
			x.stop_ms = (bc_now_ns() - t0) / 1e6;
			break;
		}
		if (bc_now_ns() - t0 > 60000000000LL) {
			fprintf(stderr, "supbench: %s: not stopped after 60 s (%s, %d supervision processes and %d workloads"
				" left: killed)\n", sys_name[sys], reaped ? "root exited" : "root running", alive, k);
			break;
		}
		sb_sleep_ms(1);
	}
	if (reaped)
		root = -1;
	rc = isnan(x.stop_ms) ? -1 : 0;
	for (int i = 1; i < nt && alive; i++)
		if (st0[i] >= 0 && alive_same(pids[i], st0[i]))
			kill(pids[i], SIGKILL);
out:
	if (root > 0)
		sb_kill_reap(root);
	sb_sleep_ms(50);
	reap_orphans();
	if (sb_scan_workloads(o->magic, work, MAXPIDS) > 0) {
		fprintf(stderr, "supbench: %s: workloads left after the stop; killing them\n", sys_name[sys]);
		int left = sb_scan_workloads(o->magic, work, MAXPIDS);
		for (int i = 0; i < left && i < MAXPIDS; i++)
			if (sb_is_workload(work[i], o->magic) == 1)
				kill(work[i], SIGKILL);
		sb_sleep_ms(50);
		reap_orphans();
	}
	sb_cgroup_sweep(o->cgprefix);
	sb_rm_rf(r.dir);
	free(pids);
	free(work);
	free(st0);
	free(env2);
	*res = x;
	return rc;
}

int bench_services(const struct sb_opts *o, int n, struct sb_table *t)
{
	struct sys_result res[NSYS];
	const char *bins[NSYS] = { o->ours, o->ours, o->ours, o->ours, o->s6svscan, o->runsvdir, o->supervisord };
	int failed = 0;
	for (int s = 0; s < NSYS; s++) {
		struct sys_result none = { NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, "" };
		res[s] = none;
		if (optional(s) && !o->pid_only)
			continue;
		if (access(bins[s], X_OK) != 0) {
			fprintf(stderr, "supbench: %s (%s) is missing: its column is n/a\n", sys_name[s], bins[s]);
			continue;
		}
		if (getenv("SUPBENCH_DEBUG"))
			fprintf(stderr, "supbench: %s, %d services\n", sys_name[s], n);
		if (one_system(o, s, n, false, &res[s]) < 0)
			failed++;
	}

	/* The floors, each in FLOOR_ROUNDS rounds alternating with a start (and stop) of ours alone:
	 * the ratio is of medians measured side by side (this machine's speed drifts by the
	 * minute, and a single start of 1,000 swings by a quarter). */
	double floor_ms = -1, min_ms = -1, paired_ms = -1;
	char floor_print[300] = "", min_print[300] = "";
	if (o->bare) {
		double fs[FLOOR_ROUNDS], fm[FLOOR_ROUNDS], os[FLOOR_ROUNDS];
		int nfs = 0, nfm = 0, nos = 0;
		for (int k = 0; k < FLOOR_ROUNDS; k++) {
			if (getenv("SUPBENCH_DEBUG"))
				fprintf(stderr, "supbench: floors and ours' start, %d containers, round %d\n", n, k + 1);
			double v = sb_bare_services(o, n, true, k ? NULL : floor_print, sizeof(floor_print));
			if (v >= 0)
				fs[nfs++] = v;
			struct sys_result r1;
			if (one_system(o, S_OURS, n, true, &r1) == 0 && !isnan(r1.start_ms))
				os[nos++] = r1.start_ms;
			v = sb_bare_services(o, n, false, k ? NULL : min_print, sizeof(min_print));
			if (v >= 0)
				fm[nfm++] = v;
		}
		if (nfs)
			floor_ms = bc_pct(fs, nfs, 50);
		else
			fprintf(stderr, "supbench: same-container floor for %d services: could not be measured\n", n);
		if (nfm)
			min_ms = bc_pct(fm, nfm, 50);
		else
			fprintf(stderr, "supbench: minimal floor for %d services: could not be measured\n", n);
		if (nos)
			paired_ms = bc_pct(os, nos, 50);
	}

	/* columns: ours [, ours-nohard, ours-pid, ours-plain], s6, runit, supervisord */
	int map[NSYS], nc = 0, c_plain = -1, c_nohard = -1;
	t->nours = 0;
	for (int s = 0; s < NSYS; s++) {
		if (optional(s) && !o->pid_only)
			continue;
		if (s == S_OURS_PLAIN)
			c_plain = nc;
		if (s == S_OURS_NOHARD)
			c_nohard = nc;
		map[nc] = s;
		t->cols[nc++] = sys_name[s];
		if (s <= S_OURS_PLAIN)
			t->nours++;
	}
	t->ncol = nc;
	int c_s6 = t->nours, c_runit = c_s6 + 1, c_supd = c_s6 + 2;
	static char titles[2][4000];
	char *title = titles[n >= 1000 ? 1 : 0];
	char floor_txt[1800] = "";
	if (floor_ms >= 0 || min_ms >= 0) {
		const char *ours_print = res[S_OURS].print;
		bool alike = *ours_print && !strcmp(ours_print, floor_print);
		snprintf(floor_txt, sizeof(floor_txt),
			 "\n   bare floor: the harness itself starts the %d containers ours makes by default, with no"
			 " supervision and no init\n   (barefloor.c: same namespaces, lo up, cgroups, device rules, pids.max, /dev, /sys,"
			 " masked and read-only paths,\n   capabilities, no_new_privs, seccomp filter; the workload is PID 1):"
			 " %.0f ms, %.2f ms per container, median of %d rounds,\n   each followed by a start (and stop) of ours"
			 " alone: median %.0f ms, the \"start / bare floor\" row's numerator;\n   %s: floor's %s%s%s.\n"
			 "   minimal floor (namespaces, 4 v1 cgroups, pivot_root, /proc, empty /dev, hostname; no hardening),"
			 " in the same rounds: %.0f ms, %.2f ms per container.",
			 n, floor_ms, floor_ms / n, FLOOR_ROUNDS, paired_ms,
			 alike ? "its containers are ours' (seen from the host)" : "ITS CONTAINERS DIFFER FROM OURS",
			 *floor_print ? floor_print : "(none)", alike ? "" : "; ours': ",
			 alike ? "" : (*ours_print ? ours_print : "(none)"), min_ms, min_ms / n);
	}
	snprintf(title, 4000,
		 "== 2%s. %d sleeping services (busybox sleep), each under its own supervision ==\n"
		 "   ours: supervisor -c FILE, default isolation (pid,mount,uts,ipc,net,cgroup namespaces + own cgroup"
		 " in each v1 hierarchy),\n"
		 "   rootfs = busybox rootfs%s; s6: s6-svscan + s6-supervise, runit: runsvdir + runsv (run = one"
		 " exec into the workload),\n"
		 "   supervisord 4.2: one python process. Memory: PSS of the tree without workloads. Idle: %d s after a"
		 " %d s settle;\n"
		 "   wakeups = voluntary context switches of the tree. Restart: SIGKILL of one workload -> new one"
		 " exec'd, %d kills.\n"
		 "   Issue's anchors (%s): start s6 %s, runit %s, supervisord %s; per service s6 ~135 KiB, runit ~100,"
		 " supervisord %s;\n"
		 "   restart s6/supervisord ~1 s, runit ~4 ms; supervisord wakes 1/s idle, s6 never.%s",
		 n >= 1000 ? "b" : "a", n, o->pid_only ? ";\n   ours-nohard: the same containers with the hardening off (seccomp = unconfined, unmask = ALL,"
		 " confine_devices = false, cap_add = ALL, no_new_privileges = false): the minimal floor's kind;\n"
		 "   ours-pid: namespaces = pid only, no rootfs (host's /); ours-plain: namespaces = (none: plain"
		 " processes, each in its own cgroup)" : "",
		 o->idle_s, SETTLE_MS / 1000, o->kills, n >= 1000 ? "1,000" : "100", n >= 1000 ? "~3.3 s" : "~370 ms",
		 n >= 1000 ? "~5.1 s" : "~350 ms", n >= 1000 ? "~4.3 s" : "~1.5 s", n >= 1000 ? "~37 KiB" : "~280 KiB",
		 floor_txt);
	t->title = title;
	struct sb_row *row = t->rows;
#define FILL(field, scale) for (int c = 0; c < nc; c++) row->v[c] = res[map[c]].field * (scale)
	static char lab_start[2][64], lab_cpu[2][64], lab_wake[2][64];
	snprintf(lab_start[n >= 1000], 64, "start all %d (ms)", n);
	*row = (struct sb_row){ lab_start[n >= 1000], {0}, T_LE_FRAC, c_s6, 0.5, 0, 0 };
	FILL(start_ms, 1);
	row++;
	if (c_plain >= 0) {     /* the issue's: plain processes start faster than s6's */
		*row = (struct sb_row){ "  same, ours-plain", {0}, T_LT, c_s6, 0, 0, c_plain };
		FILL(start_ms, 1);
		row++;
	}
	if (floor_ms > 0 && paired_ms > 0) {   /* the issue's: the default isolation within 1.25x the bare floor */
		*row = (struct sb_row){ "  start / bare floor", {0}, T_LE_ABS, 0, 1.25, 2, 0 };
		row->v[0] = paired_ms / floor_ms;
		for (int c = 1; c < nc; c++)
			row->v[c] = NAN;       /* only the default isolation starts the floor's containers */
		row++;
	}
	if (min_ms > 0) {       /* what the hardening and the rest cost on top of bare isolation */
		*row = (struct sb_row){ "  start / minimal floor", {0}, T_NONE, 0, 0, 2, 0 };
		row->v[0] = (paired_ms > 0 ? paired_ms : res[S_OURS].start_ms) / min_ms;
		for (int c = 1; c < nc; c++)
			row->v[c] = NAN;
		if (c_nohard >= 0)     /* its containers are the closest to the minimal floor's */
			row->v[c_nohard] = res[S_OURS_NOHARD].start_ms / min_ms;
		row++;
	}
	*row = (struct sb_row){ "tree PSS (MiB)", {0}, T_NONE, 0, 0, 2, 0 };
	FILL(pss_kb, 1.0 / 1024);
	row++;
	*row = (struct sb_row){ "tree PSS / service (KiB)", {0}, T_LT, c_runit, 0, 1, 0 };
	FILL(pss_kb, 1.0 / n);
	row++;
	if (n >= 1000) {
		*row = (struct sb_row){ "  same, stretch", {0}, T_LT, c_supd, 0, 1, 0 };
		FILL(pss_kb, 1.0 / n);
		row++;
	}
	*row = (struct sb_row){ "tree processes", {0}, T_NONE, 0, 0, 0, 0 };
	FILL(tree_n, 1);
	row++;
	snprintf(lab_cpu[n >= 1000], 64, "idle CPU in %d s (ms)", o->idle_s);
	*row = (struct sb_row){ lab_cpu[n >= 1000], {0}, T_NONE, 0, 0, 2, 0 };
	FILL(cpu_ms, 1);
	row++;
	snprintf(lab_wake[n >= 1000], 64, "idle wakeups in %d s", o->idle_s);
	*row = (struct sb_row){ lab_wake[n >= 1000], {0}, T_LE_ABS, 0, 0, 0, 0 };
	FILL(vcs, 1);
	row++;
	*row = (struct sb_row){ "  involuntary switches", {0}, T_NONE, 0, 0, 0, 0 };
	FILL(nvcs, 1);
	row++;
	*row = (struct sb_row){ "restart after SIGKILL p50 (ms)", {0}, T_LE_ABS, 0, 2, 2, 0 };
	FILL(restart_p50, 1);
	row++;
	*row = (struct sb_row){ "restart after SIGKILL max (ms)", {0}, T_NONE, 0, 0, 2, 0 };
	FILL(restart_max, 1);
	row++;
	*row = (struct sb_row){ "  kills not restarted in 5 s", {0}, T_NONE, 0, 0, 0, 0 };
	FILL(restart_missed, 1);
	row++;
	*row = (struct sb_row){ "stop all (ms)", {0}, T_NONE, 0, 0, 0, 0 };
	FILL(stop_ms, 1);
	row++;
#undef FILL
	t->nrows = (int)(row - t->rows);
	return failed ? -1 : 0;
}
