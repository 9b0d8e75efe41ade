/* logbench: log throughput. One service writes BYTES of 64-byte lines to its stdout as fast
 * as it can (64 KiB writes); we time how long until every byte has landed in the log
 * directory's (rotated) files, for our supervisor and the anchors in the same run, taking
 * turns:
 *   ours         build/supervisor, the writer in a container, stdout_logfile rotated at 64 MiB
 *   supervisord  Debian's supervisor 4.2, stdout_logfile_maxbytes = 64MB
 *   s6-log       writer | s6-log n20 s67108864 DIR (Debian's s6)
 *   svlogd       writer | svlogd DIR, config s67108864 n20 (Debian's runit)
 * The clock starts when the writer, already running, is released (a FIFO), so start-up costs
 * nothing; it stops when the files hold every byte. Afterwards the lines are counted: a
 * system that lost or split any gets no figure.
 *
 * usage: logbench --ours PATH --init PATH [--bytes N[M|G]] [--rounds N] [--quick] [--keep]
 *                 [--supervisord P] [--s6-log P] [--svlogd P] [--log FILE]
 * Internal: --role-writer BYTES GOFIFO. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LINE 64
#define ROTATE (64LL << 20)
#define NSYS 5

enum { S_OURS, S_OURS_TS, S_SUPD, S_S6, S_SVLOGD };
static const char *const sys_name[NSYS] = {"ours", "ours+ts", "supervisord", "s6-log", "svlogd"};

struct opts {
	const char *bin[NSYS];
	const char *init;
	char self[4096];
	char tmp[256];
	long long bytes;
	int rounds;
	bool keep;
	int log_fd;
};

static pid_t tracked[8];
static char cg_name[64];
static char tmp_root[256];

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void track(pid_t p)
{
	for (int i = 0; i < 8; i++)
		if (!tracked[i]) {
			tracked[i] = p;
			return;
		}
}

static void untrack(pid_t p)
{
	for (int i = 0; i < 8; i++)
		if (tracked[i] == p)
			tracked[i] = 0;
}

static int rm_rf(const char *path)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return 0;
	if (S_ISDIR(st.st_mode)) {
		DIR *d = opendir(path);
		if (d) {
			struct dirent *e;
			while ((e = readdir(d))) {
				if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
					continue;
				char sub[4096];
				snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
				rm_rf(sub);
			}
			closedir(d);
		}
		return rmdir(path);
	}
	return unlink(path);
}

/* Removes a cgroup directory and everything below it, deepest first (processes in it are
 * killed first; only ever our own root). */
static void cg_remove(const char *path)
{
	DIR *d = opendir(path);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_type != DT_DIR || e->d_name[0] == '.')
			continue;
		char sub[1024];
		snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
		cg_remove(sub);
	}
	closedir(d);
	char procs[1100];
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", path);
	FILE *f = fopen(procs, "r");
	int pid;
	while (f && fscanf(f, "%d", &pid) == 1)
		kill(pid, SIGKILL);
	if (f)
		fclose(f);
	for (int i = 0; i < 100 && rmdir(path) < 0 && errno == EBUSY; i++)
		usleep(10000);
}

/* Stops what we started (a supervisor gets SIGTERM and a moment to clean up its cgroups),
 * removes what is left of our cgroup root and the temp dir. */
static void cleanup(void)
{
	for (int i = 0; i < 8; i++)
		if (tracked[i] > 0) {
			kill(tracked[i], SIGTERM);
			for (int k = 0; k < 500 && waitpid(tracked[i], NULL, WNOHANG) == 0; k++)
				usleep(10000);
			kill(tracked[i], SIGKILL);
			waitpid(tracked[i], NULL, 0);
			tracked[i] = 0;
		}
	if (cg_name[0]) {
		DIR *d = opendir("/sys/fs/cgroup");
		struct dirent *e;
		char p[512];
		snprintf(p, sizeof(p), "/sys/fs/cgroup/%s", cg_name);
		cg_remove(p);
		while (d && (e = readdir(d))) {
			if (e->d_name[0] == '.')
				continue;
			snprintf(p, sizeof(p), "/sys/fs/cgroup/%s/%s", e->d_name, cg_name);
			cg_remove(p);
		}
		if (d)
			closedir(d);
	}
	if (tmp_root[0])
		rm_rf(tmp_root);
}

static void on_signal(int sig)
{
	cleanup();
	_exit(128 + sig);
}

/* ---- the writer ------------------------------------------------------------------------- */

static int role_writer(long long bytes, const char *go)
{
	static char block[65536];
	for (size_t i = 0; i < sizeof(block); i += LINE) {
		memset(block + i, 'x', LINE - 1);
		int n = snprintf(block + i, LINE, "line %06zu ", i / LINE);
		block[i + (size_t)n] = 'x';
		block[i + LINE - 1] = '\n';
	}
	int fd = open(go, O_RDONLY);
	char c;
	if (fd < 0 || read(fd, &c, 1) != 1)
		return 111;
	close(fd);
	while (bytes > 0) {
		size_t n = bytes < (long long)sizeof(block) ? (size_t)bytes : sizeof(block);
		for (size_t off = 0; off < n;) {
			ssize_t w = write(1, block + off, n - off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				return 111;
			off += (size_t)w;
		}
		bytes -= (long long)n;
	}
	return 0;
}

/* ---- one measurement -------------------------------------------------------------------- */

/* The log files of a system: w.log* (ours, supervisord), current and @* (s6-log, svlogd). */
static bool is_log(const char *n)
{
	return !strncmp(n, "w.log", 5) || !strcmp(n, "current") || n[0] == '@';
}

static long long landed(const char *dir, long long *lines)
{
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	long long total = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!is_log(e->d_name))
			continue;
		char p[4096];
		struct stat st;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		if (stat(p, &st) == 0)
			total += st.st_size;
		if (lines) {
			int fd = open(p, O_RDONLY);
			static char buf[1 << 20];
			ssize_t n;
			while (fd >= 0 && (n = read(fd, buf, sizeof(buf))) > 0)
				for (char *q = buf; (q = memchr(q, '\n', (size_t)(buf + n - q))); q++)
					(*lines)++;
			if (fd >= 0)
				close(fd);
		}
	}
	closedir(d);
	return total;
}

static pid_t spawn(char *const argv[], int in, int out, int err)
{
	pid_t p = fork();
	if (p == 0) {
		if (in >= 0)
			dup2(in, 0);
		dup2(out, 1);
		dup2(err, 2);
		for (int fd = 3; fd < 64; fd++)
			close(fd);
		execv(argv[0], argv);
		_exit(127);
	}
	if (p > 0)
		track(p);
	return p;
}

static int wait_for(pid_t p, int timeout_ms)
{
	int st;
	for (int i = 0; i < timeout_ms / 5; i++) {
		pid_t r = waitpid(p, &st, WNOHANG);
		if (r == p) {
			untrack(p);
			return st;
		}
		usleep(5000);
	}
	kill(p, SIGKILL);
	waitpid(p, &st, 0);
	untrack(p);
	return -1;
}

static int write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f);
}

/* ours+ts: "2024-05-01T12:34:56.123456Z " or with "+02:00" instead of "Z". */
static int stamp_len(void)
{
	time_t t = time(NULL);
	struct tm tm;
	localtime_r(&t, &tm);
	return tm.tm_gmtoff == 0 ? 28 : 33;
}

/* Returns MiB/s (of the writer's bytes), or NAN when the system could not be measured. */
static double measure(struct opts *o, int sys, int round)
{
	char dir[512], go[600], conf[600], text[16384], bytes[32];
	snprintf(dir, sizeof(dir), "%s/%s-%d", o->tmp, sys_name[sys], round);
	snprintf(go, sizeof(go), "%s/go", dir);
	snprintf(bytes, sizeof(bytes), "%lld", o->bytes);
	if (mkdir(dir, 0755) < 0 || mkfifo(go, 0600) < 0) {
		fprintf(stderr, "logbench: %s: %s\n", dir, strerror(errno));
		return NAN;
	}
	sync();   /* everyone starts with no dirty pages of the one before */
	int devnull = open("/dev/null", O_RDWR);
	pid_t sup = -1, writer = -1;
	int pfd[2] = {-1, -1};
	switch (sys) {
	case S_OURS:
	case S_OURS_TS:
		snprintf(cg_name, sizeof(cg_name), "crbench-logs-%d", (int)getpid());
		snprintf(conf, sizeof(conf), "%s/services.ini", dir);
		snprintf(text, sizeof(text),
			 "[supervisor]\ncgroup_root = %s\nlog_dir = %s\ncontrol_socket = %s/ctl.sock\n\n"
			 "[service:w]\ncommand = %s --role-writer %s %s\nbind = %s:%s\n"
			 "stdout_logfile = %s/w.log\nstdout_logfile_maxbytes = %lld\n"
			 "stdout_logfile_backups = 40\nstderr_logfile = NONE\nlog_timestamps = %s\n"
			 "autorestart = false\nstartsecs = 0\n",
			 cg_name, dir, dir, o->self, bytes, go, dir, dir, dir, ROTATE,
			 sys == S_OURS_TS ? "true" : "false");
		if (write_file(conf, text) < 0)
			return NAN;
		{
			char *argv[] = {(char *)o->bin[sys], "-c", conf, NULL};
			setenv("CORRAL_INIT", o->init, 1);
			sup = spawn(argv, devnull, devnull, o->log_fd);
		}
		break;
	case S_SUPD:
		snprintf(conf, sizeof(conf), "%s/supervisord.conf", dir);
		snprintf(text, sizeof(text),
			 "[supervisord]\nnodaemon = true\nlogfile = %s/supervisord.log\n"
			 "pidfile = %s/supervisord.pid\nchildlogdir = %s\nloglevel = warn\n\n"
			 "[program:w]\ncommand = %s --role-writer %s %s\nstdout_logfile = %s/w.log\n"
			 "stdout_logfile_maxbytes = %lld\nstdout_logfile_backups = 40\n"
			 "stderr_logfile = NONE\nautorestart = false\nstartsecs = 0\n",
			 dir, dir, dir, o->self, bytes, go, dir, ROTATE);
		if (write_file(conf, text) < 0)
			return NAN;
		{
			char *argv[] = {(char *)o->bin[sys], "-n", "-c", conf, NULL};
			sup = spawn(argv, devnull, devnull, o->log_fd);
		}
		break;
	case S_S6:
	case S_SVLOGD: {
		if (pipe(pfd) < 0)
			return NAN;
		char *wargv[] = {o->self, "--role-writer", bytes, go, NULL};
		writer = spawn(wargv, devnull, pfd[1], o->log_fd);
		char size[32];
		snprintf(size, sizeof(size), "s%lld", ROTATE);
		if (sys == S_S6) {
			char *argv[] = {(char *)o->bin[sys], "n40", size, dir, NULL};
			sup = spawn(argv, pfd[0], devnull, o->log_fd);
		} else {
			snprintf(conf, sizeof(conf), "%s/config", dir);
			snprintf(text, sizeof(text), "%s\nn40\n", size);
			write_file(conf, text);
			char *argv[] = {(char *)o->bin[sys], dir, NULL};
			sup = spawn(argv, pfd[0], devnull, o->log_fd);
		}
		close(pfd[0]);
		close(pfd[1]);
		break;
	}
	}
	close(devnull);
	if (sup < 0)
		return NAN;
	/* The writer is ready once it opens the FIFO; then the clock starts. */
	alarm(30);
	int gofd = open(go, O_WRONLY);
	alarm(0);
	if (gofd < 0) {
		fprintf(stderr, "logbench: %s: the writer never started\n", sys_name[sys]);
		wait_for(sup, 10);
		return NAN;
	}
	int64_t t0 = now_ns();
	if (write(gofd, "g", 1) != 1)
		return NAN;
	close(gofd);
	long long expect = o->bytes;
	if (sys == S_OURS_TS)
		expect += o->bytes / LINE * stamp_len();
	int64_t limit = t0 + (60 + (int64_t)(o->bytes / (20 << 20))) * 1000000000;   /* 20 MiB/s */
	int64_t t1 = 0;
	while (now_ns() < limit) {
		long long got = landed(dir, NULL);
		if (got == expect && landed(dir, NULL) == expect) {
			t1 = now_ns();
			break;
		}
		usleep(2000);
	}
	/* Stop: the loggers end at EOF; the supervisors on SIGTERM. */
	if (writer > 0)
		wait_for(writer, 10000);
	if (sys != S_S6 && sys != S_SVLOGD)
		kill(sup, SIGTERM);
	if (wait_for(sup, 20000) == -1)
		fprintf(stderr, "logbench: %s did not stop; killed\n", sys_name[sys]);
	long long lines = 0, total = landed(dir, &lines);
	double mibs = NAN;
	if (!t1)
		fprintf(stderr, "logbench: %s: only %lld of %lld bytes landed\n", sys_name[sys], total,
			expect);
	else if (lines != o->bytes / LINE)
		fprintf(stderr, "logbench: %s: %lld lines, not %lld\n", sys_name[sys], lines,
			o->bytes / LINE);
	else
		mibs = (double)o->bytes / (1 << 20) / ((double)(t1 - t0) / 1e9);
	if (!o->keep)
		rm_rf(dir);
	return mibs;
}

static long long parse_size(const char *s)
{
	char *end;
	double v = strtod(s, &end);
	switch (*end) {
	case 'k': case 'K': v *= 1024; break;
	case 'm': case 'M': v *= 1024 * 1024; break;
	case 'g': case 'G': v *= 1024.0 * 1024 * 1024; break;
	}
	long long b = (long long)v;
	return b - b % LINE;
}

static const char *find_bin(const char *const *cands)
{
	for (; *cands; cands++)
		if (access(*cands, X_OK) == 0)
			return *cands;
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "--role-writer"))
		return role_writer(atoll(argv[2]), argv[3]);
	struct opts o = {.bytes = 1LL << 30, .rounds = 2, .log_fd = -1};
	static const char *const supd[] = {"/usr/bin/supervisord", NULL};
	static const char *const s6[] = {"/usr/bin/s6-log", "/bin/s6-log", NULL};
	static const char *const svl[] = {"/usr/bin/svlogd", "/usr/sbin/svlogd", NULL};
	o.bin[S_SUPD] = find_bin(supd);
	o.bin[S_S6] = find_bin(s6);
	o.bin[S_SVLOGD] = find_bin(svl);
	const char *logpath = "/dev/null";
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--quick")) {
			o.bytes = 256LL << 20;
			o.rounds = 1;
			continue;
		}
		if (!strcmp(a, "--keep")) {
			o.keep = true;
			continue;
		}
		if (!v) {
			fprintf(stderr, "logbench: %s needs a value\n", a);
			return 2;
		}
		i++;
		if (!strcmp(a, "--ours"))
			o.bin[S_OURS] = o.bin[S_OURS_TS] = v;
		else if (!strcmp(a, "--init"))
			o.init = v;
		else if (!strcmp(a, "--bytes"))
			o.bytes = parse_size(v);
		else if (!strcmp(a, "--rounds"))
			o.rounds = atoi(v) > 0 ? atoi(v) : 1;
		else if (!strcmp(a, "--supervisord"))
			o.bin[S_SUPD] = v;
		else if (!strcmp(a, "--s6-log"))
			o.bin[S_S6] = v;
		else if (!strcmp(a, "--svlogd"))
			o.bin[S_SVLOGD] = v;
		else if (!strcmp(a, "--log"))
			logpath = v;
		else {
			fprintf(stderr, "usage: logbench --ours PATH --init PATH [--bytes N[M|G]] "
					"[--rounds N] [--quick] [--keep] [--supervisord P] [--s6-log P] "
					"[--svlogd P] [--log FILE]\n");
			return 2;
		}
	}
	for (int s = S_SUPD; s < NSYS; s++)
		if (o.bin[s] && access(o.bin[s], X_OK) < 0) {
			fprintf(stderr, "logbench: %s: %s: skipped\n", sys_name[s], strerror(errno));
			o.bin[s] = NULL;
		}
	if (!o.bin[S_OURS] || !o.init) {
		fprintf(stderr, "logbench: --ours and --init are required\n");
		return 2;
	}
	ssize_t n = readlink("/proc/self/exe", o.self, sizeof(o.self) - 1);
	if (n <= 0)
		return 1;
	o.self[n] = 0;
	o.log_fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (o.log_fd < 0)
		o.log_fd = open("/dev/null", O_WRONLY);
	/* Beside the build, not in /tmp: a tmpfs /tmp would measure memory, not the disk. */
	snprintf(o.tmp, sizeof(o.tmp), "%s/crbench-logs-%d", getenv("LOGBENCH_DIR") ?: "/var/tmp",
		 (int)getpid());
	if (mkdir(o.tmp, 0755) < 0) {
		perror(o.tmp);
		return 1;
	}
	snprintf(tmp_root, sizeof(tmp_root), "%s", o.tmp);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGALRM, on_signal);

	double best[NSYS];
	for (int s = 0; s < NSYS; s++)
		best[s] = NAN;
	int failed = 0;
	for (int r = 0; r < o.rounds; r++) {
		for (int k = 0; k < NSYS; k++) {
			int s = (r % 2) ? NSYS - 1 - k : k;   /* take turns: reverse every other round */
			if (!o.bin[s])
				continue;
			double v = measure(&o, s, r);
			if (isnan(v))
				failed++;
			if (!isnan(v) && (isnan(best[s]) || v > best[s]))
				best[s] = v;
			fprintf(stderr, "logbench: round %d %-11s %8.1f MiB/s\n", r + 1, sys_name[s], v);
		}
	}
	cleanup();

	double anchor = NAN;
	for (int s = S_SUPD; s < NSYS; s++)
		if (!isnan(best[s]) && (isnan(anchor) || best[s] > anchor))
			anchor = best[s];
	printf("\nlog throughput: 1 service, %lld MiB of %d-byte lines to stdout, rotated at %lld MiB "
	       "(MiB/s, best of %d; higher is better)\n", o.bytes >> 20, LINE, ROTATE >> 20, o.rounds);
	printf("%-22s %10s %12s %10s %10s %12s %10s %-14s %s\n", "metric", "ours", "supervisord",
	       "s6-log", "svlogd", "best anchor", "ours/best", "target", "result");
	printf("%-22s", "throughput MiB/s");
	int cols[] = {S_OURS, S_SUPD, S_S6, S_SVLOGD};
	int widths[] = {10, 12, 10, 10};
	for (int i = 0; i < 4; i++) {
		if (isnan(best[cols[i]]))
			printf(" %*s", widths[i], "n/a");
		else
			printf(" %*.1f", widths[i], best[cols[i]]);
	}
	double ratio = best[S_OURS] / anchor;
	bool pass = !isnan(ratio) && ratio > 1.0;
	printf(" %12.1f %10.2f %-14s %s\n", anchor, ratio, "> best anchor",
	       isnan(ratio) ? "n/a" : pass ? "PASS" : "MISS");
	if (!isnan(best[S_OURS_TS]))
		printf("%-22s %10.1f %12s %10s %10s %12s %10s %-14s\n", "  with log_timestamps",
		       best[S_OURS_TS], "", "", "", "", "", "-");
	printf("anchors in the issue (this machine): supervisord ~630, s6-log ~175, svlogd ~44 MiB/s\n");
	fflush(stdout);
	return failed ? 1 : 0;
}
