/* Tests of supervisor/cgroup/ against the real cgroups of the machine it runs on: v1 here,
 * v2 in the VM (tests/vm/run-in-vm -- build/test/unit/test_cgroup). The backend is probed;
 * every case runs on both, checking the backend's own files. Everything is made under one
 * root, crtest-<pid>, which each test's teardown kills and removes even after a failure.
 * The test process is a child subreaper, so every orphan a test makes is reaped here. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <linux/sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cgroup/cgroup.h"

#define MNT CR_CGROUP_MOUNT
static char root[64];                /* crtest-<pid> */
static struct cr_cgroup_caps caps;   /* of this machine */
static char err[1024];

/* ---- helpers ---------------------------------------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The v1 hierarchy a file lives in (by its prefix); v2: none. */
static const char *ctrl_of(const char *file)
{
    static const char *const c[] = {"memory", "cpuacct", "cpuset", "cpu", "pids", "blkio",
                                    "freezer"};
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++)
        if (!strncmp(file, c[i], strlen(c[i])) && file[strlen(c[i])] == '.')
            return c[i];
    return "memory"; /* cgroup.* files: any hierarchy */
}

/* MNT[/ctrl]/root[/leaf][/file] */
static const char *cgpath(const char *leaf, const char *file)
{
    static char buf[8][512];
    static int k;
    char *b = buf[k++ % 8];
    int n = caps.version == 2 ? snprintf(b, 512, "%s/%s", MNT, root)
                              : snprintf(b, 512, "%s/%s/%s", MNT, file ? ctrl_of(file)
                                                                       : "memory", root);
    if (leaf)
        n += snprintf(b + n, 512 - (size_t)n, "/%s", leaf);
    if (file)
        snprintf(b + n, 512 - (size_t)n, "/%s", file);
    return b;
}

static char *slurp(const char *path)
{
    static char buf[8][4096];
    static int k;
    char *b = buf[k++ % 8];
    b[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    ssize_t n = read(fd, b, 4095);
    close(fd);
    b[n > 0 ? n : 0] = '\0';
    if (n > 0 && b[n - 1] == '\n')
        b[n - 1] = '\0';
    return b;
}

static void expect_file(const char *leaf, const char *file, const char *want)
{
    const char *p = cgpath(leaf, file);
    const char *got = slurp(p);
    if (!got || strcmp(got, want))
        fail_msg("%s: '%s', want '%s'", p, got ? got : "(unreadable)", want);
}

static bool exists(const char *path)
{
    return access(path, F_OK) == 0;
}

/* Every hierarchy directory the test root can be in (v1: each controller we use, cpuset and
 * name=systemd included; v2: one). */
static const char *const v1_ctrls[] = {"memory", "cpu", "cpuacct", "pids", "blkio", "freezer",
                                        "devices", "cpuset", "systemd"};

static int hierarchies(char out[][256], int max)
{
    if (caps.version == 2) {
        snprintf(out[0], 256, "%s", MNT);
        return 1;
    }
    int n = 0;
    for (size_t i = 0; i < sizeof v1_ctrls / sizeof v1_ctrls[0] && n < max; i++) {
        snprintf(out[n], 256, "%s/%s", MNT, v1_ctrls[i]);
        if (exists(out[n]))
            n++;
    }
    return n;
}

static bool in_all_hierarchies(const char *leaf, bool want)
{
    char h[12][256];
    int n = hierarchies(h, 12);
    for (int i = 0; i < n; i++) {
        char p[600];
        snprintf(p, sizeof p, "%s/%s%s%s", h[i], root, leaf ? "/" : "", leaf ? leaf : "");
        if (exists(p) != want) {
            print_error("%s: %s\n", p, want ? "missing" : "still there");
            return false;
        }
    }
    return true;
}

/* v1: leaf is made exactly where it is needed: always memory, cpuacct, pids and freezer;
 * cpu only when cpu (or when cpu is co-mounted with cpuacct), blkio only when blkio; cpuset
 * only for a service's container (confine_devices: not these cgroups). The parent of leaf
 * (the test root) is in every hierarchy. v2: the one hierarchy. */
static bool placed(const char *leaf, bool cpu, bool blkio)
{
    if (caps.version == 2)
        return in_all_hierarchies(leaf, true);
    char acct[PATH_MAX] = "", cpuh[PATH_MAX] = "";
    if (!realpath(MNT "/cpuacct", acct) || !realpath(MNT "/cpu", cpuh))
        acct[0] = cpuh[0] = '\0';
    bool comount = acct[0] && !strcmp(acct, cpuh);
    static const char *const c[] = {"memory", "cpu", "cpuacct", "pids", "blkio", "freezer",
                                    "cpuset"};
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        char h[256], p[600];
        snprintf(h, sizeof h, "%s/%s", MNT, c[i]);
        if (!exists(h))
            continue;
        bool want = !strcmp(c[i], "cpu") ? cpu || comount
                    : !strcmp(c[i], "blkio") ? blkio
                    : strcmp(c[i], "cpuset") != 0 || strstr(leaf, "supervisor");
        snprintf(p, sizeof p, "%s/%s/%s", h, root, leaf);
        if (exists(p) != want) {
            print_error("%s: %s\n", p, want ? "missing" : "there, but not needed");
            return false;
        }
        snprintf(p, sizeof p, "%s/%s", h, root);
        if (!exists(p)) {               /* <root> is in every hierarchy, cpuset too */
            print_error("%s: root missing\n", p);
            return false;
        }
    }
    return true;
}

/* The test's own cleanup, independent of the code under test: thaw, kill, rmdir, deepest
 * first. */
static void remove_tree(const char *dir)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/freezer.state", dir);
    if (exists(p)) {
        int fd = open(p, O_WRONLY);
        if (fd >= 0) {
            if (write(fd, "THAWED", 6) < 0) { /* best effort */ }
            close(fd);
        }
    }
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_type == DT_DIR && e->d_name[0] != '.') {
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            remove_tree(p);
        }
    closedir(d);
    snprintf(p, sizeof p, "%s/cgroup.procs", dir);
    for (int64_t end = now_ms() + 3000; now_ms() < end;) {
        FILE *f = fopen(p, "r");
        int pid, n = 0;
        while (f && fscanf(f, "%d", &pid) == 1) {
            kill(pid, SIGKILL);
            n++;
        }
        if (f)
            fclose(f);
        while (waitpid(-1, NULL, WNOHANG) > 0)
            ;
        if (rmdir(dir) == 0 || errno == ENOENT)
            return;
        usleep(2000);
    }
    print_error("teardown could not remove %s: %s\n", dir, strerror(errno));
}

static void reap_all(void)
{
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
}

/* Children of the test, killed in teardown if a test failed before it did. */
static pid_t kids[64];
static int nkids;

static void track(pid_t pid)
{
    if (nkids < 64)
        kids[nkids++] = pid;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < nkids; i++)
        if (kids[i] > 0)
            kill(kids[i], SIGKILL);
    nkids = 0;
    char h[12][256];
    int n = hierarchies(h, 12);
    for (int i = 0; i < n; i++) {
        char p[600];
        snprintf(p, sizeof p, "%s/%s", h[i], root);
        remove_tree(p);
    }
    /* Give killed children a moment, then reap whatever is ours. */
    for (int i = 0; i < 50; i++) {
        pid_t p = waitpid(-1, NULL, WNOHANG);
        if (p < 0 && errno == ECHILD)
            break;
        if (p == 0)
            usleep(2000);
    }
    return 0;
}

static int setup(void **state)
{
    (void)state;
    if (caps.version == 0)
        skip();
    nkids = 0;
    return 0;
}

/* A child that waits until released (after the parent attached it), then runs fn. */
struct kid {
    pid_t pid;
    int go;     /* write a byte to release it */
    int back;   /* it may report on this */
};

static struct kid spawn_kid(void (*fn)(int report_fd, void *arg), void *arg)
{
    int go[2], back[2];
    assert_int_equal(pipe2(go, O_CLOEXEC), 0);
    assert_int_equal(pipe2(back, O_CLOEXEC), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(go[1]);
        close(back[0]);
        char c;
        if (read(go[0], &c, 1) != 1)
            _exit(99);
        fn(back[1], arg);
        _exit(0);
    }
    close(go[0]);
    close(back[1]);
    track(pid);
    return (struct kid){pid, go[1], back[0]};
}

static void release(struct kid *k)
{
    assert_int_equal(write(k->go, "x", 1), 1);
    close(k->go);
    k->go = -1;
}

/* Reads one line (a number) the kid reported; -1 at EOF or after 10 s of silence. */
static long kid_report(struct kid *k)
{
    char buf[64];
    size_t n = 0;
    while (n < sizeof buf - 1) {
        struct pollfd pfd = {k->back, POLLIN, 0};
        if (poll(&pfd, 1, 10000) != 1) {
            print_error("kid %d: no report within 10 s\n", (int)k->pid);
            break;
        }
        ssize_t r = read(k->back, buf + n, 1);
        if (r <= 0)
            break;
        if (buf[n] == '\n')
            break;
        n++;
    }
    buf[n] = '\0';
    return n ? strtol(buf, NULL, 10) : -1;
}

static void report(int fd, long v)
{
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%ld\n", v);
    if (write(fd, buf, (size_t)n) < 0)
        _exit(98);
}

static int wait_status(pid_t pid, int timeout_ms)
{
    int st;
    for (int64_t end = now_ms() + timeout_ms; now_ms() < end;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return st;
        if (r < 0)
            return -1;
        usleep(1000);
    }
    return -2;
}

static void k_pause(int fd, void *arg)
{
    (void)arg;
    report(fd, getpid());
    for (;;)
        pause();
}

static struct cr_cg_root *open_root(void)
{
    struct cr_cg_root *r = NULL;
    int rc = cr_cg_root_open(MNT, root, false, &r, err, sizeof err);
    if (rc != 0)
        fail_msg("cr_cg_root_open: %d %s", rc, err);
    return r;
}

static struct cr_cg *create(struct cr_cg_root *r, const char *leaf,
                            const struct cr_cg_limits *lim)
{
    struct cr_cg *cg = NULL;
    int rc = cr_cg_create(r, leaf, lim, &cg, err, sizeof err);
    if (rc != 0)
        fail_msg("cr_cg_create %s: %d %s", leaf, rc, err);
    return cg;
}

static void attach(struct cr_cg *cg, pid_t pid)
{
    int rc = cr_cg_attach(cg, pid, err, sizeof err);
    if (rc != 0)
        fail_msg("cr_cg_attach %d: %d %s", (int)pid, rc, err);
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_weights(void **state)
{
    (void)state;
    assert_int_equal(cr_cg_weight_to_shares(100), 1024);
    assert_int_equal(cr_cg_weight_to_shares(200), 2048);
    assert_int_equal(cr_cg_weight_to_shares(1), 10);
    assert_int_equal(cr_cg_weight_to_shares(10000), 102400);
    assert_int_equal(cr_cg_weight_to_blkio(100, true), 100);
    assert_int_equal(cr_cg_weight_to_blkio(5000, true), 1000);
    assert_int_equal(cr_cg_weight_to_blkio(1, true), 1);
    assert_int_equal(cr_cg_weight_to_blkio(100, false), 500);
    assert_int_equal(cr_cg_weight_to_blkio(1, false), 10);
    assert_int_equal(cr_cg_weight_to_blkio(10000, false), 1000);
}

static void test_bad_names(void **state)
{
    (void)state;
    struct cr_cg_root *r = NULL;
    const char *bad[] = {"", "/abs", "../up", "a//b", "a/./b", "a/..", "sp ace", "a/"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_equal(cr_cg_root_open(MNT, bad[i], false, &r, err, sizeof err), -EINVAL);
        assert_null(r);
        assert_non_null(strstr(err, "cgroup root"));
    }
    r = open_root();
    struct cr_cg *cg = NULL;
    const char *badleaf[] = {"a/b", "..", "supervisor", ""};
    for (size_t i = 0; i < sizeof badleaf / sizeof badleaf[0]; i++)
        assert_int_equal(cr_cg_create(r, badleaf[i], NULL, &cg, err, sizeof err), -EINVAL);
    struct cr_cg_limits l;
    cr_cg_limits_init(&l);
    l.cpu_weight = 0;
    assert_int_equal(cr_cg_create(r, "svc-x", &l, &cg, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "cpu_weight"));
    assert_false(exists(cgpath("svc-x", NULL)));
    cr_cg_root_close(r);
}

static void test_root_layout(void **state)
{
    (void)state;
    struct cr_cg_root *r = open_root();
    const struct cr_cgroup_caps *c = cr_cg_root_caps(r);
    assert_int_equal(c->version, caps.version);
    assert_true(in_all_hierarchies(NULL, true));
    assert_true(placed("supervisor", true, true));
    if (caps.version == 2) {
        const char *on = slurp(cgpath(NULL, "cgroup.subtree_control"));
        assert_non_null(on);
        if (caps.memory)
            assert_non_null(strstr(on, "memory"));
        if (caps.pids)
            assert_non_null(strstr(on, "pids"));
        assert_true(c->memory == (strstr(on, "memory") != NULL));
    }
    /* Opening again is idempotent. */
    cr_cg_root_close(r);
    r = open_root();
    cr_cg_root_close(r);
}

static void test_limits_readback(void **state)
{
    (void)state;
    struct cr_cg_root *r = open_root();
    struct cr_cg_limits l;
    cr_cg_limits_init(&l);
    l.memory_max = 64 << 20;
    l.memory_high = 32 << 20;
    if (caps.memory_swap)
        l.memory_swap_max = 16 << 20;
    l.cpu_quota_us = 50000;
    l.cpu_period_us = 100000;
    l.cpu_weight = 200;
    l.pids_max = 42;
    if (caps.io_weight)
        l.io_weight = 300;
    struct cr_cg *cg = create(r, "svc-lim", &l);
    assert_true(placed("svc-lim", true, caps.io_weight));
    assert_string_equal(cr_cg_path(cg), cgpath("svc-lim", NULL));
    if (caps.version == 1) {
        assert_int_equal(cr_cg_dirfd(cg), -1);
        expect_file("svc-lim", "memory.limit_in_bytes", "67108864");
        expect_file("svc-lim", "memory.soft_limit_in_bytes", "33554432");
        if (caps.memory_swap)
            expect_file("svc-lim", "memory.memsw.limit_in_bytes", "83886080");
        expect_file("svc-lim", "cpu.cfs_quota_us", "50000");
        expect_file("svc-lim", "cpu.cfs_period_us", "100000");
        expect_file("svc-lim", "cpu.shares", "2048");
        expect_file("svc-lim", "pids.max", "42");
        if (caps.io_weight)
            expect_file("svc-lim", caps.io_weight_file, "300");
    } else {
        assert_true(cr_cg_dirfd(cg) >= 0);
        expect_file("svc-lim", "memory.max", "67108864");
        expect_file("svc-lim", "memory.high", "33554432");
        if (exists(cgpath("svc-lim", "memory.swap.max")))
            expect_file("svc-lim", "memory.swap.max", "16777216");
        expect_file("svc-lim", "cpu.max", "50000 100000");
        expect_file("svc-lim", "cpu.weight", "200");
        expect_file("svc-lim", "pids.max", "42");
        const char *io = exists(cgpath("svc-lim", "io.weight")) ? "io.weight" : "io.bfq.weight";
        if (caps.io_weight && exists(cgpath("svc-lim", io)))
            assert_non_null(strstr(slurp(cgpath("svc-lim", io)), "300"));
    }

    /* Live change, then everything unset: back to the kernel's defaults. */
    l.memory_max = 128 << 20;
    l.pids_max = INT64_MAX;
    l.cpu_quota_us = 150000;
    assert_int_equal(cr_cg_set_limits(cg, &l, err, sizeof err), 0);
    if (caps.version == 1) {
        expect_file("svc-lim", "memory.limit_in_bytes", "134217728");
        if (caps.memory_swap)
            expect_file("svc-lim", "memory.memsw.limit_in_bytes", "150994944");
        expect_file("svc-lim", "pids.max", "max");
        expect_file("svc-lim", "cpu.cfs_quota_us", "150000");
    } else {
        expect_file("svc-lim", "memory.max", "134217728");
        expect_file("svc-lim", "pids.max", "max");
        expect_file("svc-lim", "cpu.max", "150000 100000");
    }
    cr_cg_limits_init(&l);
    assert_int_equal(cr_cg_set_limits(cg, &l, err, sizeof err), 0);
    if (caps.version == 1) {
        expect_file("svc-lim", "memory.limit_in_bytes", "9223372036854771712");
        expect_file("svc-lim", "cpu.cfs_quota_us", "-1");
        expect_file("svc-lim", "cpu.shares", "1024");
        expect_file("svc-lim", "pids.max", "max");
        if (caps.io_weight)
            expect_file("svc-lim", caps.io_weight_file,
                        strcmp(caps.io_weight_file, "blkio.weight") ? "100" : "500");
    } else {
        expect_file("svc-lim", "memory.max", "max");
        expect_file("svc-lim", "memory.high", "max");
        expect_file("svc-lim", "cpu.max", "max 100000");
        expect_file("svc-lim", "cpu.weight", "100");
        expect_file("svc-lim", "pids.max", "max");
    }

    /* v1 cannot limit swap alone (memsw is memory + swap). */
    if (caps.version == 1 && caps.memory_swap) {
        l.memory_swap_max = 1 << 20;
        assert_int_equal(cr_cg_set_limits(cg, &l, err, sizeof err), -EINVAL);
        assert_non_null(strstr(err, "memory_swap_max"));
        cr_cg_limits_init(&l);
    }

    /* Errors name the file: remove the cgroup behind the module's back. */
    assert_int_equal(cr_cg_destroy(cg, err, sizeof err), 0);
    assert_true(in_all_hierarchies("svc-lim", false));
    cg = create(r, "svc-lim", NULL);
    assert_true(placed("svc-lim", false, false));
    char dirs[12][256];
    int n = hierarchies(dirs, 12);
    for (int i = 0; i < n; i++) {
        char p[600];
        snprintf(p, sizeof p, "%s/%s/svc-lim", dirs[i], root);
        assert_true(rmdir(p) == 0 || errno == ENOENT);
    }
    l.memory_max = 1 << 30;
    int rc = cr_cg_set_limits(cg, &l, err, sizeof err);
    assert_int_equal(rc, -ENOENT);
    assert_non_null(strstr(err, caps.version == 1 ? "/svc-lim/memory." : "/svc-lim/memory.max"));
    assert_non_null(strstr(err, "No such file"));
    assert_int_equal(cr_cg_destroy(cg, err, sizeof err), 0); /* gone already: fine */
    cr_cg_root_close(r);
}

/* Touches 24 MiB and burns ~150 ms of CPU, reports, then waits. */
static void k_work(int fd, void *arg)
{
    (void)arg;
    size_t sz = 24 << 20;
    char *p = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        _exit(97);
    for (size_t i = 0; i < sz; i += 4096)
        p[i] = 1;
    struct timespec a, b;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
    volatile unsigned long x = 0;
    do {
        for (int i = 0; i < 100000; i++)
            x += (unsigned long)i;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
    } while ((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000 < 150);
    report(fd, 1);
    for (;;)
        pause();
}

static void test_attach_stats_kill(void **state)
{
    (void)state;
    struct cr_cg_root *r = open_root();
    struct cr_cg *cg = create(r, "svc-stats", NULL);
    assert_true(cr_cg_is_empty(cg));
    struct kid k = spawn_kid(k_work, NULL);
    attach(cg, k.pid);
    release(&k);
    assert_int_equal(kid_report(&k), 1);
    assert_false(cr_cg_is_empty(cg));
    /* The kernel's own view of where the process is. */
    char p[64], want[128];
    snprintf(p, sizeof p, "/proc/%d/cgroup", (int)k.pid);
    snprintf(want, sizeof want, "/%s/svc-stats", root);
    const char *self = slurp(p);
    assert_non_null(strstr(self, want));
    if (caps.version == 1)
        assert_non_null(strstr(self, ":memory:/crtest"));
    struct cr_cg_stats st;
    cr_cg_stats(cg, &st);
    print_message("stats: memory %lld peak %lld cpu %lld us pids %lld oom %lld\n",
                  (long long)st.memory_current, (long long)st.memory_peak,
                  (long long)st.cpu_usage_us, (long long)st.pids_current,
                  (long long)st.oom_kills);
    assert_true(st.memory_current >= 24 << 20);
    if (st.memory_peak != -1 || caps.version == 1)
        assert_true(st.memory_peak >= st.memory_current);
    assert_true(st.cpu_usage_us >= 100000);
    assert_int_equal(st.pids_current, 1);
    assert_int_equal(st.oom_kills, 0);

    int64_t t0 = now_ms();
    assert_int_equal(cr_cg_kill(cg, err, sizeof err), 0);
    print_message("kill took %lld ms\n", (long long)(now_ms() - t0));
    assert_true(cr_cg_is_empty(cg));
    int s = wait_status(k.pid, 2000);
    assert_true(WIFSIGNALED(s) && WTERMSIG(s) == SIGKILL);
    if (caps.version == 1 && exists(MNT "/freezer"))
        expect_file("svc-stats", "freezer.state", "THAWED");
    assert_int_equal(cr_cg_destroy(cg, err, sizeof err), 0);
    assert_true(in_all_hierarchies("svc-stats", false));
    cr_cg_root_close(r);
}

static void k_hog(int fd, void *arg)
{
    (void)fd;
    (void)arg;
    size_t sz = 256 << 20;
    char *p = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        _exit(97);
    for (size_t i = 0; i < sz; i += 4096)
        p[i] = 1;
    _exit(0); /* should never get here */
}

static void test_oom_counted(void **state)
{
    (void)state;
    if (!caps.memory)
        skip();
    struct cr_cg_root *r = open_root();
    struct cr_cg_limits l;
    cr_cg_limits_init(&l);
    l.memory_max = 32 << 20;
    if (caps.memory_swap)
        l.memory_swap_max = 0;
    struct cr_cg *cg = create(r, "svc-oom", &l);
    struct kid k = spawn_kid(k_hog, NULL);
    attach(cg, k.pid);
    release(&k);
    int s = wait_status(k.pid, 10000);
    assert_true(WIFSIGNALED(s));
    assert_int_equal(WTERMSIG(s), SIGKILL);
    struct cr_cg_stats st;
    cr_cg_stats(cg, &st);
    print_message("oom_kills %lld, peak %lld\n", (long long)st.oom_kills,
                  (long long)st.memory_peak);
    assert_true(st.oom_kills >= 1);
    assert_int_equal(cr_cg_destroy(cg, err, sizeof err), 0);
    cr_cg_root_close(r);
}

/* Forks a grandchild that leaves our session (setsid) and a child that ignores TERM; reports
 * their pids, then waits. */
static void k_tree(int fd, void *arg)
{
    (void)arg;
    pid_t g = fork();
    if (g == 0) {
        setsid();
        pid_t gg = fork(); /* and a great-grandchild, orphaned */
        if (gg == 0) {
            for (;;)
                pause();
        }
        report(fd, gg);
        for (;;)
            pause();
    }
    report(fd, g);
    signal(SIGTERM, SIG_IGN); /* before the fork: no window where t still dies of TERM */
    pid_t t = fork();
    if (t == 0) {
        for (;;)
            pause();
    }
    signal(SIGTERM, SIG_DFL);
    report(fd, -t); /* negative: the one that ignores TERM */
    for (;;)
        pause();
}

static void test_kill_tree(void **state)
{
    (void)state;
    struct cr_cg_root *r = open_root();
    struct cr_cg *cg = create(r, "svc-tree", NULL);
    struct kid k = spawn_kid(k_tree, NULL);
    attach(cg, k.pid);
    release(&k);
    /* pids: the kid, its setsid'd child, that one's orphaned child, and (last) the child
     * that ignores TERM, reported negated. */
    pid_t pids[4] = {k.pid, 0, 0, 0};
    for (int i = 0, j = 1; i < 3; i++) {
        pid_t p = (pid_t)kid_report(&k);
        assert_true(p != 0 && p != -1);
        if (p < 0)
            pids[3] = -p;
        else if (j < 3)
            pids[j++] = p;
        track(p < 0 ? -p : p);
    }
    assert_true(pids[1] > 0 && pids[2] > 0 && pids[3] > 0);
    struct cr_cg_stats st;
    cr_cg_stats(cg, &st);
    assert_int_equal(st.pids_current, caps.pids ? 4 : -1);

    /* A stop signal reaches all, but TERM is ignored by one: it stays. */
    assert_int_equal(cr_cg_signal(cg, SIGTERM), 0);
    usleep(50000);
    assert_false(cr_cg_is_empty(cg));
    assert_int_equal(kill(pids[3], 0), 0);

    int64_t t0 = now_ms();
    assert_int_equal(cr_cg_kill(cg, err, sizeof err), 0);
    print_message("kill of a 4-process tree took %lld ms\n", (long long)(now_ms() - t0));
    if (!cr_cg_is_empty(cg)) {
        char dirs[12][256];
        int n = hierarchies(dirs, 12);
        for (int i = 0; i < n; i++) {
            char p[600];
            snprintf(p, sizeof p, "%s/%s/svc-tree/cgroup.procs", dirs[i], root);
            print_error("%s: [%s]\n", p, slurp(p));
        }
        for (int i = 0; i < 4; i++) {
            char p[64];
            snprintf(p, sizeof p, "/proc/%d/stat", (int)pids[i]);
            print_error("%s\n", slurp(p) ? slurp(p) : "gone");
        }
        fail_msg("not empty after kill");
    }
    for (int i = 0; i < 4; i++) {
        /* We are their subreaper: each is ours to reap, killed (or by TERM before). */
        int s = wait_status(pids[i], 2000);
        if (!WIFSIGNALED(s))
            fail_msg("pid %d (#%d): status %#x", (int)pids[i], i, s);
    }
    assert_int_equal(cr_cg_destroy(cg, err, sizeof err), 0);
    cr_cg_root_close(r);
}

static void test_destroy_nonempty_and_reuse(void **state)
{
    (void)state;
    struct cr_cg_root *r = open_root();
    struct cr_cg_limits l;
    cr_cg_limits_init(&l);
    l.pids_max = 7;
    struct cr_cg *cg = create(r, "svc-a", &l);
    struct kid k = spawn_kid(k_pause, NULL);
    attach(cg, k.pid);
    release(&k);
    assert_int_equal(kid_report(&k), k.pid);

    /* The same name again (a leftover): emptied, and its old limit reset. */
    struct cr_cg *again = create(r, "svc-a", NULL);
    int s = wait_status(k.pid, 2000);
    assert_true(WIFSIGNALED(s) && WTERMSIG(s) == SIGKILL);
    if (caps.pids)
        expect_file("svc-a", "pids.max", "max");
    cr_cg_destroy(cg, err, sizeof err); /* frees; the directory may be gone or not */
    assert_true(in_all_hierarchies("svc-a", false));
    cr_cg_destroy(again, err, sizeof err);

    /* Destroy kills what is inside. */
    cg = create(r, "svc-b", NULL);
    k = spawn_kid(k_pause, NULL);
    attach(cg, k.pid);
    release(&k);
    assert_int_equal(kid_report(&k), k.pid);
    assert_int_equal(cr_cg_destroy(cg, err, sizeof err), 0);
    s = wait_status(k.pid, 2000);
    assert_true(WIFSIGNALED(s) && WTERMSIG(s) == SIGKILL);
    assert_true(in_all_hierarchies("svc-b", false));
    cr_cg_root_close(r);
}

/* v1: a reload that sets a cpu (and io) limit on a cgroup made without one makes the
 * directory in that hierarchy and moves the cgroup's processes there; destroy removes it. */
static void test_reload_adds_hierarchy(void **state)
{
    (void)state;
    struct cr_cg_root *r = open_root();
    struct cr_cg *cg = create(r, "svc-rl", NULL);
    assert_true(placed("svc-rl", false, false));
    struct kid k = spawn_kid(k_pause, NULL);
    attach(cg, k.pid);
    release(&k);
    assert_int_equal(kid_report(&k), k.pid);
    struct cr_cg_limits l;
    cr_cg_limits_init(&l);
    l.cpu_weight = 200;
    if (caps.io_weight)
        l.io_weight = 300;
    assert_int_equal(cr_cg_set_limits(cg, &l, err, sizeof err), 0);
    assert_true(placed("svc-rl", true, caps.io_weight));
    if (caps.version == 1) {
        char p[600], me[32];
        snprintf(me, sizeof me, "%d", (int)k.pid);
        expect_file("svc-rl", "cpu.shares", "2048");
        snprintf(p, sizeof p, "%s/cpu/%s/svc-rl/cgroup.procs", MNT, root);
        assert_string_equal(slurp(p), me);
        if (caps.io_weight) {
            snprintf(p, sizeof p, "%s/blkio/%s/svc-rl/cgroup.procs", MNT, root);
            assert_string_equal(slurp(p), me);
        }
        /* Stats still read, and kill reaches it. */
        struct cr_cg_stats st;
        cr_cg_stats(cg, &st);
        assert_true(st.pids_current == 1 && st.memory_current >= 0 && st.cpu_usage_us >= 0);
    }
    /* Lifting the limit keeps the directory (defaults written), and adds nothing. */
    cr_cg_limits_init(&l);
    assert_int_equal(cr_cg_set_limits(cg, &l, err, sizeof err), 0);
    if (caps.version == 1)
        expect_file("svc-rl", "cpu.shares", "1024");
    assert_int_equal(cr_cg_destroy(cg, err, sizeof err), 0);
    int s = wait_status(k.pid, 2000);
    assert_true(WIFSIGNALED(s) && WTERMSIG(s) == SIGKILL);
    assert_true(in_all_hierarchies("svc-rl", false));

    /* A leftover of the same name made with a cpu limit, re-used without one: destroy
     * removes its cpu directory as well. */
    l.cpu_quota_us = 50000;
    cg = create(r, "svc-rl", &l);
    struct cr_cg *again = create(r, "svc-rl", NULL);
    assert_true(placed("svc-rl", true, false));
    cr_cg_destroy(cg, err, sizeof err); /* frees; the directory may be gone or not */
    assert_int_equal(cr_cg_destroy(again, err, sizeof err), 0);
    assert_true(in_all_hierarchies("svc-rl", false));
    cr_cg_root_close(r);
}

/* Forks until it fails; reports how many forks succeeded and whether the failure was
 * EAGAIN; the children wait. */
static void k_forker(int fd, void *arg)
{
    (void)arg;
    int ok = 0, e = 0;
    for (int i = 0; i < 20; i++) {
        pid_t p = fork();
        if (p == 0) {
            for (;;)
                pause();
        }
        if (p < 0) {
            e = errno;
            break;
        }
        ok++;
    }
    report(fd, ok);
    report(fd, e);
    for (;;)
        pause();
}

static void test_pids_max(void **state)
{
    (void)state;
    if (!caps.pids)
        skip();
    struct cr_cg_root *r = open_root();
    struct cr_cg_limits l;
    cr_cg_limits_init(&l);
    l.pids_max = 5;
    struct cr_cg *cg = create(r, "svc-forks", &l);
    struct kid k = spawn_kid(k_forker, NULL);
    attach(cg, k.pid);
    release(&k);
    long ok = kid_report(&k), e = kid_report(&k);
    assert_int_equal(ok, 4);          /* itself + 4 = 5 */
    assert_int_equal(e, EAGAIN);
    struct cr_cg_stats st;
    cr_cg_stats(cg, &st);
    assert_int_equal(st.pids_current, 5);
    assert_int_equal(cr_cg_kill(cg, err, sizeof err), 0);
    assert_int_equal(cr_cg_destroy(cg, err, sizeof err), 0);
    reap_all();
    cr_cg_root_close(r);
}

/* Spins for 400 ms of wall time. */
static void k_spin(int fd, void *arg)
{
    (void)arg;
    int64_t end = now_ms() + 400;
    volatile unsigned long x = 0;
    while (now_ms() < end)
        x++;
    report(fd, 1);
    for (;;)
        pause();
}

static void test_cpu_max_throttles(void **state)
{
    (void)state;
    if (!caps.cpu_max)
        skip();
    struct cr_cg_root *r = open_root();
    struct cr_cg_limits l;
    cr_cg_limits_init(&l);
    l.cpu_quota_us = 10000; /* 20% of one CPU */
    l.cpu_period_us = 50000;
    struct cr_cg *cg = create(r, "svc-cpu", &l);
    struct kid k = spawn_kid(k_spin, NULL);
    attach(cg, k.pid);
    release(&k);
    assert_int_equal(kid_report(&k), 1);
    struct cr_cg_stats st;
    cr_cg_stats(cg, &st);
    print_message("400 ms of spinning at 20%%: %lld us of CPU\n", (long long)st.cpu_usage_us);
    assert_true(st.cpu_usage_us > 20000);
    assert_true(st.cpu_usage_us < 160000); /* unthrottled it would be ~400000 */
    assert_int_equal(cr_cg_destroy(cg, err, sizeof err), 0);
    cr_cg_root_close(r);
}

/* The "earlier supervisor" of the leftover test, in its own process: opens the root moving
 * itself into the supervisor leaf, creates cgroups with processes in them, then reports and
 * either dies (a crashed supervisor) or stays (a live one). Uses _exit: what it allocated
 * dies with it, as with a crash. With extra, it also leaves child cgroups inside its
 * service, an empty svc-b, a dead `run` (run-x-DEADPID), one whose PID lives (run-y-1) and
 * one whose PID is dead but holds a process (run-z-999999999). */
struct sup_arg { bool stay, extra; const char *leaf; pid_t dead_pid; };

static pid_t sup_leaf_with_process(struct cr_cg_root *r, const char *leaf)
{
    struct cr_cg *cg;
    char e[512];
    if (cr_cg_create(r, leaf, NULL, &cg, e, sizeof e) < 0) {
        fprintf(stderr, "k_supervisor: %s\n", e);
        _exit(91);
    }
    pid_t p = fork();
    if (p == 0) {
        setsid();
        close_range(3, ~0U, 0); /* not the report pipe: its EOF tells the test we died */
        for (;;)
            pause();
    }
    if (p < 0) {
        fprintf(stderr, "k_supervisor: fork: %s\n", strerror(errno));
        _exit(95);
    }
    if (cr_cg_attach(cg, p, e, sizeof e) < 0) {
        fprintf(stderr, "k_supervisor: %s\n", e);
        _exit(92);
    }
    return p;
}

static void k_supervisor(int fd, void *arg)
{
    const struct sup_arg *a = arg;
    struct cr_cg_root *r;
    struct cr_cg *cg;
    char e[512];
    if (cr_cg_root_open(MNT, root, true, &r, e, sizeof e) < 0) {
        fprintf(stderr, "k_supervisor: %s\n", e);
        _exit(90);
    }
    report(fd, sup_leaf_with_process(r, a->leaf));
    if (a->extra) {
        char dirs[12][256], name[64];
        int n = hierarchies(dirs, 12);
        for (int i = 0; i < n; i++) {
            char p[600];
            snprintf(p, sizeof p, "%s/%s/%s/inner", dirs[i], root, a->leaf);
            if (mkdir(p, 0755) < 0 && errno != ENOENT) /* ENOENT: leaf not made there */
                _exit(93);
        }
        snprintf(name, sizeof name, "run-x-%d", (int)a->dead_pid);
        if (cr_cg_create(r, "svc-b", NULL, &cg, e, sizeof e) < 0 ||
            cr_cg_create(r, name, NULL, &cg, e, sizeof e) < 0 ||
            cr_cg_create(r, "run-y-1", NULL, &cg, e, sizeof e) < 0) {
            fprintf(stderr, "k_supervisor: %s\n", e);
            _exit(94);
        }
        report(fd, sup_leaf_with_process(r, "run-z-999999999"));
    }
    if (a->stay)
        for (;;)
            pause();
    _exit(0);
}

static void test_root_open_sweeps_leftovers(void **state)
{
    (void)state;
    pid_t dead_pid = fork();
    if (dead_pid == 0)
        _exit(0);
    waitpid(dead_pid, NULL, 0);
    char run_dead[64];
    snprintf(run_dead, sizeof run_dead, "run-x-%d", (int)dead_pid);

    /* A supervisor that ran svc-a and svc-b then died. */
    struct sup_arg dead = {false, true, "svc-a", dead_pid};
    struct kid sup = spawn_kid(k_supervisor, &dead);
    release(&sup);
    pid_t svc_a = (pid_t)kid_report(&sup);
    pid_t busy = (pid_t)kid_report(&sup);
    assert_true(svc_a > 0 && busy > 0);
    track(svc_a);
    track(busy);
    int s = wait_status(sup.pid, 5000);
    assert_true(WIFEXITED(s) && WEXITSTATUS(s) == 0);
    close(sup.back);
    assert_true(placed("svc-a/inner", false, false));
    assert_true(placed(run_dead, false, false));

    int64_t t0 = now_ms();
    struct cr_cg_root *r = open_root();
    print_message("sweep took %lld ms\n", (long long)(now_ms() - t0));
    s = wait_status(svc_a, 2000);
    assert_true(WIFSIGNALED(s) && WTERMSIG(s) == SIGKILL);
    assert_true(in_all_hierarchies("svc-a", false));
    assert_true(in_all_hierarchies("svc-b", false));
    assert_true(in_all_hierarchies(run_dead, false));
    assert_true(placed("run-y-1", false, false));
    assert_true(placed("run-z-999999999", false, false));
    assert_int_equal(kill(busy, 0), 0);
    assert_true(placed("supervisor", true, true));
    cr_cg_root_close(r);

    /* A live supervisor: its services stay when someone else (a `supervisor run`) opens
     * the root; once it is gone, the next open removes them. */
    struct sup_arg live = {true, false, "svc-c", 0};
    sup = spawn_kid(k_supervisor, &live);
    release(&sup);
    pid_t svc_c = (pid_t)kid_report(&sup);
    assert_true(svc_c > 0);
    track(svc_c);
    r = open_root();
    assert_true(placed("svc-c", false, false));
    assert_int_equal(kill(svc_c, 0), 0);
    cr_cg_root_close(r);
    kill(sup.pid, SIGKILL);
    s = wait_status(sup.pid, 2000);
    assert_true(WIFSIGNALED(s));
    r = open_root();
    s = wait_status(svc_c, 2000);
    assert_true(WIFSIGNALED(s) && WTERMSIG(s) == SIGKILL);
    assert_true(in_all_hierarchies("svc-c", false));
    cr_cg_root_close(r);
    kill(busy, SIGKILL);
    wait_status(busy, 2000);
}

static void k_move_self(int fd, void *arg)
{
    (void)arg;
    struct cr_cg_root *r;
    char e[512];
    if (cr_cg_root_open(MNT, root, true, &r, e, sizeof e) < 0) {
        fprintf(stderr, "k_move_self: %s\n", e);
        _exit(90);
    }
    char want[128];
    snprintf(want, sizeof want, "/%s/supervisor\n", root);
    const char *self = slurp("/proc/self/cgroup");
    /* Every hierarchy line (v2: the one "0::" line) names the leaf. */
    int lines = 0, hits = 0;
    char copy[4096];
    snprintf(copy, sizeof copy, "%s\n", self);
    for (char *l = strtok(copy, "\n"); l; l = strtok(NULL, "\n")) {
        bool used = caps.version == 2 ? !strncmp(strchr(l, ':'), "::", 2)
                                      : (strstr(l, ":memory:") || strstr(l, ":pids:") ||
                                         strstr(l, ":freezer:") || strstr(l, ":cpu:"));
        if (!used)
            continue;
        lines++;
        char tail[200];
        snprintf(tail, sizeof tail, "%s", want);
        tail[strlen(tail) - 1] = '\0';
        hits += strstr(l, tail) != NULL;
    }
    /* Opening the root again from inside the leaf (a supervisor re-reading its config)
     * must not sweep its own running service. */
    struct cr_cg *cg;
    if (cr_cg_create(r, "svc-m", NULL, &cg, e, sizeof e) < 0)
        _exit(91);
    pid_t p = fork();
    if (p == 0) {
        for (;;)
            pause();
    }
    if (cr_cg_attach(cg, p, e, sizeof e) < 0)
        _exit(92);
    struct cr_cg_root *again;
    if (cr_cg_root_open(MNT, root, true, &again, e, sizeof e) < 0)
        _exit(93);
    usleep(20000);
    bool kept = kill(p, 0) == 0 && !cr_cg_is_empty(cg);
    report(fd, lines > 0 && hits == lines && kept);
    _exit(0);
}

static void test_move_self(void **state)
{
    (void)state;
    struct kid k = spawn_kid(k_move_self, NULL);
    release(&k);
    assert_int_equal(kid_report(&k), 1);
    int s = wait_status(k.pid, 5000);
    assert_true(WIFEXITED(s) && WEXITSTATUS(s) == 0);
}

/* A cgroup_root of several levels ("apps/corral-2"): every level is made (on v2 with the
 * controllers enabled), and a service below it can take a process. */
static void test_nested_root(void **state)
{
    (void)state;
    char nested[128];
    snprintf(nested, sizeof nested, "%s/apps/c2", root);
    struct cr_cg_root *r = NULL;
    int rc = cr_cg_root_open(MNT, nested, false, &r, err, sizeof err);
    if (rc != 0)
        fail_msg("cr_cg_root_open %s: %d %s", nested, rc, err);
    struct cr_cg_limits l;
    cr_cg_limits_init(&l);
    l.memory_max = 64 << 20;
    l.pids_max = 10;
    struct cr_cg *cg = create(r, "svc-deep", &l);
    if (caps.version == 2) {
        const char *on = slurp(cgpath("apps", "cgroup.subtree_control"));
        assert_non_null(on);
        assert_non_null(strstr(on, "memory"));
        expect_file("apps/c2/svc-deep", "memory.max", "67108864");
    } else {
        expect_file("apps/c2/svc-deep", "memory.limit_in_bytes", "67108864");
        /* <root> is in cpuset too (a service's container joins it), with its parent's CPUs
         * and memory nodes at every level this open made. */
        char cs[600];
        snprintf(cs, sizeof cs, "%s/cpuset/%s/apps/c2/cpuset.cpus", MNT, root);
        const char *cpus = slurp(cs);
        assert_non_null(cpus);
        assert_true(cpus[0] >= '0' && cpus[0] <= '9');
    }
    struct kid k = spawn_kid(k_pause, NULL);
    attach(cg, k.pid);
    release(&k);
    assert_int_equal(kid_report(&k), k.pid);
    char p[64], want[160];
    snprintf(p, sizeof p, "/proc/%d/cgroup", (int)k.pid);
    snprintf(want, sizeof want, "/%s/svc-deep", nested);
    assert_non_null(strstr(slurp(p), want));
    assert_int_equal(cr_cg_destroy(cg, err, sizeof err), 0);
    int s = wait_status(k.pid, 2000);
    assert_true(WIFSIGNALED(s) && WTERMSIG(s) == SIGKILL);
    assert_true(in_all_hierarchies("apps/c2/svc-deep", false));
    assert_true(placed("apps/c2/supervisor", true, true));
    cr_cg_root_close(r);
}

/* clone3 with CLONE_INTO_CGROUP: the child is born in the cgroup (v2 only). */
static void test_dirfd_clone_into_cgroup(void **state)
{
    (void)state;
    struct cr_cg_root *r = open_root();
    struct cr_cg *cg = create(r, "svc-born", NULL);
    if (caps.version != 2) {
        assert_int_equal(cr_cg_dirfd(cg), -1);
        cr_cg_destroy(cg, err, sizeof err);
        cr_cg_root_close(r);
        return;
    }
    int fd = cr_cg_dirfd(cg);
    assert_true(fd >= 0);
    struct clone_args ca;
    memset(&ca, 0, sizeof ca);
    ca.flags = CLONE_INTO_CGROUP;
    ca.exit_signal = SIGCHLD;
    ca.cgroup = (unsigned)fd;
    long pid = syscall(SYS_clone3, &ca, sizeof ca);
    if (pid == 0) {
        pause();
        _exit(0);
    }
    assert_true(pid > 0);
    track((pid_t)pid);
    char p[64], want[128];
    snprintf(p, sizeof p, "/proc/%ld/cgroup", pid);
    snprintf(want, sizeof want, "0::/%s/svc-born", root);
    assert_non_null(strstr(slurp(p), want));
    assert_int_equal(cr_cg_destroy(cg, err, sizeof err), 0);
    int s = wait_status((pid_t)pid, 2000);
    assert_true(WIFSIGNALED(s));
    cr_cg_root_close(r);
}

int main(void)
{
    if (geteuid() != 0) {
        print_message("test_cgroup: needs root (real cgroups)\n");
        return 0;
    }
    snprintf(root, sizeof root, "crtest-%d", (int)getpid());
    cr_cgroup_probe(MNT, &caps);
    print_message("cgroup v%d at %s (memory %d swap %d cpu %d pids %d io %d %s), root %s\n",
                  caps.version, MNT, caps.memory, caps.memory_swap, caps.cpu_max, caps.pids,
                  caps.io_weight, caps.io_weight_file, root);
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    if (getenv("CRTEST_FILTER")) /* e.g. CRTEST_FILTER='test_kill*' */
        cmocka_set_test_filter(getenv("CRTEST_FILTER"));
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_weights),
        T(test_bad_names),
        T(test_root_layout),
        T(test_limits_readback),
        T(test_attach_stats_kill),
        T(test_oom_counted),
        T(test_kill_tree),
        T(test_destroy_nonempty_and_reuse),
        T(test_reload_adds_hierarchy),
        T(test_pids_max),
        T(test_cpu_max_throttles),
        T(test_root_open_sweeps_leftovers),
        T(test_move_self),
        T(test_nested_root),
        T(test_dirfd_clone_into_cgroup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
