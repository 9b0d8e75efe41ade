/* Reaping storm: the workload double-forks N orphans that block on our release pipe; closing it
 * makes them all exit together, and the init, as PID 1, must reap them.
 *
 * Counting without scanning /proc (20,000 entries take longer to read than the storm lasts):
 * the init runs in a pids cgroup of our own. Its pids.current drops only when a task is
 * released (reaped, or autoreaped), while its cgroup.procs stops listing a task at
 * cgroup_exit(), just before the exit notification that makes it a zombie. So
 *     zombies = pids.current - lines of cgroup.procs
 * and all reaped = pids.current is 2 (init and the storm maker). */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SAMPLE_US 200
#define ZSAMPLE_MIN_NS 10000000
#define SETUP_TIMEOUT_S 120
#define STORM_TIMEOUT_S 60

static char cg_dir[128], shm_path[128];

struct storm_env {
	int procs_fd, cur_fd, devnull;
	char procs_path[192];
	struct storm_shm *shm;
};

struct storm_run { double ms, tail_ms, zombies, cpu_ms, hwm_kb; };

static long pids_current(int fd)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return strtol(buf, NULL, 10);
}

/* Tasks listed in cgroup.procs. v1 caches the list per open file, so open it anew. */
static long procs_count(const char *path)
{
	static char buf[1 << 18];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	long lines = 0;
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		for (ssize_t i = 0; i < n; i++)
			lines += buf[i] == '\n';
	close(fd);
	return n < 0 ? -1 : lines;
}

/* Zombies now: pids.current read on both sides of the list, as reaps go on meanwhile. */
static long zombies(const struct storm_env *e, long *cur)
{
	long before = pids_current(e->cur_fd);
	long live = procs_count(e->procs_path);
	*cur = pids_current(e->cur_fd);
	return (before + *cur) / 2 - live;
}

static int ld(int *p)
{
	return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

/* One storm through cfg. Listing the cgroup's tasks to count zombies takes the cgroup lock
 * that every exit and every release take too; measured, it slowed the storms and changed the
 * inits' CPU time (an autoreaping init's most). So a storm either counts zombies (zmode) or is
 * timed, never both. */
static int storm_once(const struct bench_opts *o, const struct storm_env *e,
		      const struct init_cfg *cfg, bool zmode, struct storm_run *out)
{
	int n = o->storm_n, ret = -1, rel[2], st;
	char nbuf[16];
	snprintf(nbuf, sizeof(nbuf), "%d", n);
	char *cmd[] = { (char *)o->self, "--role-storm", nbuf, shm_path, NULL };
	char *argv[16];
	bench_argv(cfg, cmd, argv);
	memset(e->shm, 0, sizeof(*e->shm));
	if (pipe2(rel, O_CLOEXEC) < 0)
		return -1;
	struct spawn_fds fds = { rel[0], e->devnull, o->log_fd, e->procs_fd };
	pid_t pid = bench_spawn_pid1(argv, &fds);
	close(rel[0]);
	if (pid < 0) {
		close(rel[1]);
		return -1;
	}

	/* Ready: all orphans made and counted, the middle processes reaped by the maker. */
	int64_t deadline = bc_now_ns() + (int64_t)SETUP_TIMEOUT_S * 1000000000;
	for (;;) {
		if (ld(&e->shm->failed)) {
			fprintf(stderr, "initbench: storm via %s: fork: %s\n", cfg->name,
				strerror(ld(&e->shm->failed)));
			if (ld(&e->shm->failed) == EAGAIN)
				ret = -EAGAIN;
			goto out;
		}
		if (ld(&e->shm->made) && ld(&e->shm->ready) == n && pids_current(e->cur_fd) == n + 2)
			break;
		if (bench_wait_ms(pid, 0, &st)) {
			fprintf(stderr, "initbench: storm via %s: init exited early (0x%x)\n",
				cfg->name, st);
			pid = -1;
			goto out;
		}
		if (bc_now_ns() > deadline) {
			fprintf(stderr, "initbench: storm via %s: setup timed out (%d of %d ready)\n",
				cfg->name, ld(&e->shm->ready), n);
			goto out;
		}
		bench_sleep_us(2000);
	}
	/* "ready" is counted just before poll(): give the last ones time to block in it. */
	bench_sleep_us(100000);

	/* 20,000 runnable orphans would starve a normal-priority sampler (fair share 1/20,000):
	 * sample at real-time priority, and sleep long enough between samples to take at most
	 * a small share of one CPU. RESET_ON_FORK keeps it from leaking into later inits. */
	struct sched_param rt = { .sched_priority = 1 }, normal = { .sched_priority = 0 };
	bool is_rt = sched_setscheduler(0, SCHED_FIFO | SCHED_RESET_ON_FORK, &rt) == 0;
	int rt_err = is_rt ? 0 : errno;
	int64_t cpu0 = bench_cpu_ns(pid);
	long peak = 0, cur = 0;
	int64_t t0 = bc_now_ns(), t1, t_exited = 0;
	int samples = 0;
	close(rel[1]);
	rel[1] = -1;
	int64_t next_zsample = t0;
	for (;;) {
		int exited = ld(&e->shm->exited);
		t1 = bc_now_ns();
		if (zmode && t1 >= next_zsample) {
			/* Listing 20,000 tasks takes a few ms and contends with the exits and reaps
			 * for the cgroup locks: space these samples out (<= ~10 % of the time). */
			long z = zombies(e, &cur);
			int64_t cost = bc_now_ns() - t1;
			next_zsample = t1 + (10 * cost > ZSAMPLE_MIN_NS ? 10 * cost : ZSAMPLE_MIN_NS);
			samples++;
			if (z > peak)
				peak = z;
		} else
			cur = pids_current(e->cur_fd);
		if (exited == n && !t_exited)
			t_exited = t1;
		if (cur <= 2 && exited == n)
			break;
		if (t1 - t0 > (int64_t)STORM_TIMEOUT_S * 1000000000) {
			fprintf(stderr, "initbench: storm via %s: %ld tasks left after %d s\n",
				cfg->name, cur, STORM_TIMEOUT_S);
			if (is_rt)
				sched_setscheduler(0, SCHED_OTHER, &normal);
			goto out;
		}
		bench_sleep_us(SAMPLE_US);
	}
	if (is_rt)
		sched_setscheduler(0, SCHED_OTHER, &normal);
	int64_t cpu1 = bench_cpu_ns(pid);
	if (!is_rt)
		fprintf(stderr, "initbench: storm: no real-time priority for the sampler (%s):"
			" zombie counts are rough\n", strerror(rt_err));
	if (getenv("INITBENCH_DEBUG"))
		fprintf(stderr, "storm %s%s: all exited at %.1f ms, all reaped at %.1f ms, %d samples,"
			" peak %ld, init CPU %.1f ms\n", cfg->name, zmode ? " (zombies)" : "",
			(t_exited - t0) / 1e6, (t1 - t0) / 1e6, samples, peak, (cpu1 - cpu0) / 1e6);
	out->ms = (double)(t1 - t0) / 1e6;
	out->tail_ms = (double)(t1 - t_exited) / 1e6;
	out->zombies = (double)peak;
	out->cpu_ms = (double)(cpu1 - cpu0) / 1e6;
	out->hwm_kb = (double)bench_vm_hwm_kb(pid);
	ret = 0;
out:
	if (rel[1] >= 0)
		close(rel[1]);
	if (pid > 0)
		bench_stop(pid, 5000);
	return ret;
}

/* The cgroup may still list the last tasks for a moment after init was reaped. */
static void cg_remove(void)
{
	for (int i = 0; i < 200 && rmdir(cg_dir) < 0 && errno == EBUSY; i++)
		bench_sleep_us(10000);
}

void bench_storm_cleanup(void)
{
	if (cg_dir[0])
		cg_remove();
	if (shm_path[0])
		unlink(shm_path);
}

int bench_storm(const struct bench_opts *o, struct results *r)
{
	struct storm_env e = { -1, -1, -1, "", NULL };
	int rounds = o->storm_rounds, zrounds = o->zombie_rounds, ret = -1;
	double ms[NCFG][16], tail[NCFG][16], zb[NCFG][16], cpu[NCFG][16], hwm[NCFG];
	int cnt[NCFG] = { 0 }, zcnt[NCFG] = { 0 };

	if (rounds > 16)
		rounds = 16;
	if (zrounds > 16)
		zrounds = 16;
	snprintf(cg_dir, sizeof(cg_dir), "/sys/fs/cgroup/pids/crbench-%d", (int)getpid());
	snprintf(shm_path, sizeof(shm_path), "/dev/shm/crbench-%d", (int)getpid());
	if (mkdir(cg_dir, 0755) < 0) {
		fprintf(stderr, "initbench: mkdir %s: %s\n", cg_dir, strerror(errno));
		cg_dir[0] = '\0';
		goto out;
	}
	char path[192];
	snprintf(e.procs_path, sizeof(e.procs_path), "%s/cgroup.procs", cg_dir);
	e.procs_fd = open(e.procs_path, O_WRONLY | O_CLOEXEC);
	snprintf(path, sizeof(path), "%s/pids.current", cg_dir);
	e.cur_fd = open(path, O_RDONLY | O_CLOEXEC);
	e.devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	int sfd = open(shm_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (e.procs_fd < 0 || e.cur_fd < 0 || sfd < 0 || ftruncate(sfd, 4096) < 0) {
		fprintf(stderr, "initbench: storm setup: %s\n", strerror(errno));
		if (sfd < 0)
			shm_path[0] = '\0';
		else
			close(sfd);
		goto out;
	}
	e.shm = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, sfd, 0);
	close(sfd);
	if (e.shm == MAP_FAILED) {
		e.shm = NULL;
		goto out;
	}

	for (int c = 0; c < NCFG; c++)
		hwm[c] = NAN;
	/* Timed and zombie-counting storms alternate: T Z T Z T Z T T ... */
	for (int i = 0, tdone = 0, zdone = 0; i < rounds + zrounds; i++) {
		bool zmode = (i % 2 == 1 && zdone < zrounds) || tdone >= rounds;
		if (zmode)
			zdone++;
		else
			tdone++;
		for (int k = 0; k < NCFG; k++) {
			int c = (i + k) % NCFG;
			struct storm_run run;
			if (!o->cfg[c].present)
				continue;
			int rc = storm_once(o, &e, &o->cfg[c], zmode, &run);
			/* Someone else may hold many PIDs for a moment: wait, try again. */
			for (int retry = 0; rc == -EAGAIN && retry < 3; retry++) {
				bench_sleep_us(3000000);
				rc = storm_once(o, &e, &o->cfg[c], zmode, &run);
			}
			if (rc < 0) {
				r->failures++;
				continue;
			}
			if (zmode) {
				zb[c][zcnt[c]++] = run.zombies;
			} else {
				ms[c][cnt[c]] = run.ms;
				tail[c][cnt[c]] = run.tail_ms;
				cpu[c][cnt[c]] = run.cpu_ms;
				cnt[c]++;
			}
			if (isnan(hwm[c]) || run.hwm_kb > hwm[c])
				hwm[c] = run.hwm_kb;
		}
	}
	for (int c = 0; c < NCFG; c++) {
		r->storm_ms[c] = cnt[c] ? bc_pct(ms[c], cnt[c], 50) : NAN;
		r->storm_tail_ms[c] = cnt[c] ? bc_pct(tail[c], cnt[c], 50) : NAN;
		r->storm_cpu_ms[c] = cnt[c] ? bc_pct(cpu[c], cnt[c], 50) : NAN;
		r->storm_zombies[c] = zcnt[c] ? bc_pct(zb[c], zcnt[c], 50) : NAN;
		r->rss_storm_kb[c] = hwm[c];
	}
	ret = 0;
out:
	if (e.shm)
		munmap(e.shm, 4096);
	if (e.procs_fd >= 0)
		close(e.procs_fd);
	if (e.cur_fd >= 0)
		close(e.cur_fd);
	if (e.devnull >= 0)
		close(e.devnull);
	bench_storm_cleanup();
	cg_dir[0] = shm_path[0] = '\0';
	return ret;
}
