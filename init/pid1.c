/* The PID-1 loop: start the workload, forward signals, reap, restart per policy, and make
 * sure nothing it started outlives it.
 *
 * Reaping strategy. Orphans are reparented to us; a classic init reaps each one with
 * waitpid(): one wake-up and one syscall per orphan, and a storm of exits leaves thousands of
 * zombies waiting in line. Instead, while the workload runs we set SA_NOCLDWAIT on SIGCHLD:
 * the kernel releases our children the moment they exit, with no zombie and no work for us.
 * The workload's own status then comes from its pidfd: since Linux 6.15 the kernel keeps the
 * exit status of a task whose pidfd is open and hands it out with PIDFD_GET_INFO
 * (PIDFD_INFO_EXIT), even after the task was released.
 * Where that is missing (older kernels), and whenever we must see every exit (-v logs each
 * orphan; the final "wait until all are gone" phase), we reap classically. */
#include <dirent.h>
#include <sched.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "events.h"
#include "init.h"
#include "restart.h"
#include "spec.h"

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef __WALL
#define __WALL 0x40000000
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef PR_SET_CHILD_SUBREAPER
#define PR_SET_CHILD_SUBREAPER 36
#endif

struct clone3_args {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
};

/* linux/pidfd.h of Linux 6.15 (not in older headers, nor in musl's). */
struct pidfd_info {
    uint64_t mask, cgroupid;
    uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
    int32_t exit_code;
};
#define PIDFD_INFO_EXIT (1ULL << 3)
#define PIDFD_GET_INFO _IOWR(0xFF, 11, struct pidfd_info)

enum phase { RUNNING, DRAINING };

static struct {
    const struct init_opts *o;
    uint64_t orig_mask;     /* the kernel's view of a signal mask: one bit per signal */
    struct sigaction orig_chld;
    int sfd;
    bool pid1;
    bool pidfd_ok;          /* clone3/clone with CLONE_PIDFD works here */
    bool exit_info;         /* the kernel keeps exit status in pidfds (6.15+) */
    bool autoreap;          /* SA_NOCLDWAIT currently set */
    bool tty_fg;            /* init was in the terminal's foreground when it started */
    pid_t self;
    pid_t parent;           /* spec mode without a pid namespace: the supervisor; else 0 */

    enum phase phase;
    pid_t wpid;             /* the workload, 0 when none */
    int wpidfd;
    int64_t wstart_ms;

    unsigned attempt;       /* consecutive restarts since the last long run */
    unsigned restarts;      /* restarts in total */
    unsigned failed_starts; /* runs in a row shorter than startsecs */
    int64_t *history;       /* ring of restart times, for max_restarts/window */
    struct cr_restart_policy policy;   /* the options' restart keys (shared/restart.h) */
    bool stopping;          /* a stop signal came: never start the workload again */
    bool restart_pending;
    int64_t next_start_ms;
    int64_t kill_deadline_ms; /* DRAINING: when TERMed leftovers get KILL; -1: done */
    int64_t term_deadline_ms; /* RUNNING: init stopped the workload (readiness, health);
                                 KILL at this time; -1: not stopping it */
    bool ready_failed;      /* it was stopped as a failed start (ready_timeout) */
    bool force_restart;     /* it was stopped to be restarted (unhealthy) */
    int status;             /* the last workload status as an exit code */
    uint64_t rnd;
} S;

static void pid1_stop_workload(enum pid1_stop_why why);

/* Probes (readiness exec, health checks) are init's children whose status matters: with
 * any configured, init reaps classically instead of letting the kernel autoreap. */
static bool probes_used(const struct init_opts *o)
{
    return o->health_argv || o->ready == CR_READY_EXEC;
}

static uint64_t next_random(void)
{
    return cr_restart_random(&S.rnd);
}

static const char *signame(int sig)
{
    static char buf[16];
    return cr_signal_name(sig, buf, sizeof buf);
}

/* SIGCHLD's disposition decides who reaps: the kernel (autoreap) or us. */
static void set_autoreap(bool on)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sa.sa_flags = on ? SA_NOCLDWAIT : 0;
    sigaction(SIGCHLD, &sa, NULL);
    S.autoreap = on;
}

/* ---- starting the workload ------------------------------------------------------------- */

/* What failed in the child, sent back over the close-on-exec pipe. */
struct child_err {
    int err;
    int stage;   /* enum child_stage */
};
/* ST_EXEC, ST_CHDIR, then confine_child()'s stages (CONFINE_GROUPS...) from 2 on. */
enum child_stage { ST_EXEC, ST_CHDIR, ST_CONFINE };
static const char *stage_name(int stage)
{
    return stage == ST_EXEC ? "exec" : stage == ST_CHDIR ? "chdir"
                                     : confine_stage_name(stage - ST_CONFINE + 1);
}

static void child_fail(int errpipe, int stage) __attribute__((noreturn));
static void child_fail(int errpipe, int stage)
{
    struct child_err ce = {errno, stage};
    ssize_t w = write(errpipe, &ce, sizeof ce);
    (void)w;
    _exit(stage == ST_EXEC && ce.err == ENOENT ? 127 : 126);
}

/* The child's path: restore what init changed for itself, drop identity in the safe order
 * (groups, gid, uid), then exec. Any failure goes back over the close-on-exec pipe; EOF on
 * it means exec happened. */
static void child_exec(int errpipe) __attribute__((noreturn));
static void child_exec(int errpipe)
{
    const struct init_opts *o = S.o;
    pid_t me = (pid_t)syscall(SYS_getpid);
    if (console_on()) {
        console_in_child();            /* its own session, the container's pty */
    } else {
        setpgid(0, 0);
        if (S.tty_fg)
            tcsetpgrp(STDIN_FILENO, me);   /* SIGTTOU is still blocked here, so this works */
    }
    if (o->umask >= 0)
        umask((mode_t)o->umask);
    if (o->directory && chdir(o->directory) < 0)
        child_fail(errpipe, ST_CHDIR);
    int stage = confine_child(o);
    if (stage)
        child_fail(errpipe, ST_CONFINE + stage - 1);
    sigaction(SIGCHLD, &S.orig_chld, NULL);
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &S.orig_mask, NULL, sizeof S.orig_mask);
    ready_in_child();
    if (o->exec_path)
        execv(o->exec_path, o->argv);
    else
        execvp(o->argv[0], o->argv);
    child_fail(errpipe, ST_EXEC);
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SPAWN_VFORK 0   /* a sanitizer's interceptors must not run on a child sharing our memory */
#else
#define SPAWN_VFORK 1
#endif

#if SPAWN_VFORK
/* posix_spawn's way: the child shares our memory (CLONE_VM) and we wait until it exec'd or
 * failed (CLONE_VFORK), so nothing of init is copied or made copy-on-write; its stack is this
 * buffer. Safe here: init has no signal handlers (signals come through the signalfd, and
 * stay blocked in the child until just before exec), and the child writes no memory of ours
 * but errno. */
static char spawn_stack[64 * 1024] __attribute__((aligned(4096)));

static int child_vfork_main(void *arg)
{
    child_exec((int)(intptr_t)arg);
}
#endif

/* clone (CLONE_VM|CLONE_VFORK|CLONE_PIDFD) where allowed, clone3 (CLONE_PIDFD), legacy clone
 * with CLONE_PIDFD, then fork. */
static pid_t spawn_child(int *pidfd, int errpipe)
{
    pid_t pid = -1;
    *pidfd = -1;
#if SPAWN_VFORK
    if (S.pidfd_ok) {
        pid = clone(child_vfork_main, spawn_stack + sizeof spawn_stack,
                    CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD, (void *)(intptr_t)errpipe,
                    pidfd);
        /* The child has exec'd or exited: the pages its frames dirtied go back (init lives
         * as long as the container, and there is one per service). Page-aligned: nothing
         * else shares them. */
        madvise(spawn_stack, sizeof spawn_stack, MADV_DONTNEED);
        if (pid >= 0)
            return pid;
    }
#endif
    if (S.pidfd_ok) {
        struct clone3_args ca;
        memset(&ca, 0, sizeof ca);
        ca.flags = CLONE_PIDFD;
        ca.pidfd = (uint64_t)(uintptr_t)pidfd;
        ca.exit_signal = SIGCHLD;
        pid = (pid_t)syscall(SYS_clone3, &ca, sizeof ca);
        if (pid < 0 && (errno == ENOSYS || errno == E2BIG || errno == EINVAL))
            pid = (pid_t)syscall(SYS_clone, CLONE_PIDFD | SIGCHLD, NULL, pidfd, NULL, NULL);
        if (pid < 0 && (errno == ENOSYS || errno == EINVAL)) {
            S.pidfd_ok = false;
            set_autoreap(false);
        }
    }
    if (!S.pidfd_ok)
        pid = fork();
    if (pid == 0)
        child_exec(errpipe);
    return pid;
}

/* Returns 0 when the workload runs, or an exit status when it could not be started. */
static int start_workload(void)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
        fprintf(stderr, "init: pipe: %s\n", strerror(errno));
        return 1;
    }
    int rfe = ready_before_fork();
    if (rfe < 0) {
        close(p[0]);
        close(p[1]);
        fprintf(stderr, "init: ready = fd: pipe: %s\n", strerror(-rfe));
        return 1;
    }
    if (S.pidfd_ok && S.exit_info && !S.o->verbose && !probes_used(S.o))
        set_autoreap(true);
    int pidfd;
    pid_t pid = spawn_child(&pidfd, p[1]);
    close(p[1]);
    if (pid < 0) {
        int e = errno;
        close(p[0]);
        fprintf(stderr, "init: cannot start '%s': %s\n", S.o->argv[0], strerror(e));
        cr_event(S.o->events_fd, CR_EVT_EXEC_FAILED, "errno=%d reason=fork: %s", e, strerror(e));
        return 1;
    }
    /* Also in the parent, so -g works before the child ran; not with a console: the child
     * makes a session of its own, which a group leader cannot (a signal to the group before
     * it ran reaches the child alone: on_signal's fallback). */
    if (!console_on())
        setpgid(pid, pid);
    struct child_err ce;
    ssize_t n;
    do
        n = read(p[0], &ce, sizeof ce);
    while (n < 0 && errno == EINTR);
    close(p[0]);
    if (n == (ssize_t)sizeof ce) {
        /* The child failed before exec and exits on its own; collect it (no zombie). */
        waitpid(pid, NULL, __WALL);
        if (pidfd >= 0)
            close(pidfd);
        const char *what = S.o->exec_path ? S.o->exec_path : S.o->argv[0];
        if (ce.stage == ST_EXEC) {
            fprintf(stderr, "init: cannot run '%s': %s\n", what, strerror(ce.err));
            cr_event(S.o->events_fd, CR_EVT_EXEC_FAILED, "errno=%d reason=%s: %s", ce.err, what,
                     strerror(ce.err));
        } else {
            fprintf(stderr, "init: cannot start '%s': %s: %s\n", what, stage_name(ce.stage),
                    strerror(ce.err));
            cr_event(S.o->events_fd, CR_EVT_EXEC_FAILED, "errno=%d reason=%s: %s", ce.err,
                     stage_name(ce.stage), strerror(ce.err));
        }
        return ce.stage == ST_EXEC && ce.err == ENOENT ? 127 : 126;
    }
    S.wpid = pid;
    S.wpidfd = pidfd;
    S.wstart_ms = now_ms();
    S.phase = RUNNING;
    S.term_deadline_ms = -1;
    S.ready_failed = S.force_restart = false;
    cr_event(S.o->events_fd, CR_EVT_STARTED, "pid=%d", (int)pid);
    ready_started(S.wstart_ms);
    return 0;
}

/* ---- ending everything else ------------------------------------------------------------ */

/* (pid, ppid) of one process, from /proc/PID/stat. */
struct proc_link {
    pid_t pid, ppid;
    signed char desc;       /* 1: a descendant of ours, 0: not, -1: not known yet */
};

static int by_pid(const void *a, const void *b)
{
    pid_t x = ((const struct proc_link *)a)->pid, y = ((const struct proc_link *)b)->pid;
    return (x > y) - (x < y);
}

static struct proc_link *find_pid(struct proc_link *t, size_t n, pid_t pid)
{
    struct proc_link key = {.pid = pid};
    return bsearch(&key, t, n, sizeof *t, by_pid);
}

/* Every process of /proc with its parent; *n entries, sorted by pid. NULL: none readable. */
static struct proc_link *read_proc_links(size_t *n)
{
    *n = 0;
    DIR *d = opendir("/proc");
    if (!d)
        return NULL;
    size_t cap = 512;
    struct proc_link *tab = malloc(cap * sizeof *tab);
    struct dirent *de;
    while (tab && (de = readdir(d))) {
        char path[300], buf[512];
        if (de->d_name[0] < '1' || de->d_name[0] > '9')
            continue;
        snprintf(path, sizeof path, "/proc/%s/stat", de->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t len = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (len <= 0)
            continue;
        buf[len] = 0;
        char *rp = strrchr(buf, ')');
        int ppid;
        char state;
        if (!rp || sscanf(rp + 1, " %c %d", &state, &ppid) != 2)
            continue;
        if (*n == cap) {
            void *t = realloc(tab, 2 * cap * sizeof *tab);
            if (!t)
                break;
            tab = t;
            cap *= 2;
        }
        tab[*n] = (struct proc_link){(pid_t)atoi(de->d_name), (pid_t)ppid, -1};
        (*n)++;
    }
    closedir(d);
    if (tab)
        qsort(tab, *n, sizeof *tab, by_pid);
    return tab;
}

/* Whether e descends from us: up its chain of parents until we, a known answer or the top
 * (each answer found is kept, so the whole table costs about one pass). */
static bool descends(struct proc_link *t, size_t n, struct proc_link *e)
{
    struct proc_link *chain[64];
    int depth = 0;
    signed char answer = 0;
    while (e && depth < 64) {
        if (e->desc >= 0) {
            answer = e->desc;
            break;
        }
        chain[depth++] = e;
        if (e->ppid == S.self) {
            answer = 1;
            break;
        }
        if (e->ppid <= 1)
            break;
        e = find_pid(t, n, e->ppid);
    }
    while (depth)
        chain[--depth]->desc = answer;
    return answer == 1;
}

/* Appends the children of every thread of pid (/proc/PID/task/TID/children) to *v. -1 when
 * the kernel has no such files (CONFIG_PROC_CHILDREN). */
static int add_children(pid_t pid, pid_t **v, size_t *n, size_t *cap)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return 0;   /* gone */
    struct dirent *de;
    int r = 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char cpath[300], buf[4096];
        snprintf(cpath, sizeof cpath, "/proc/%d/task/%s/children", (int)pid, de->d_name);
        int fd = open(cpath, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            if (errno == ENOENT && !S.pid1) {
                struct stat st;
                snprintf(cpath, sizeof cpath, "/proc/%d/task/%s", (int)pid, de->d_name);
                if (stat(cpath, &st) == 0)
                    r = -1;   /* the thread is there, its children file is not */
            }
            continue;
        }
        ssize_t len;
        size_t have = 0;
        while ((len = read(fd, buf + have, sizeof buf - 1 - have)) > 0) {
            have += (size_t)len;
            buf[have] = 0;
            char *p = buf, *end;
            for (long c; (c = strtol(p, &end, 10)) > 0 && (*end == ' ' || *end == '\n');
                 p = end + 1) {
                if (*n == *cap) {
                    size_t ncap = *cap ? 2 * *cap : 64;
                    pid_t *t = realloc(*v, ncap * sizeof *t);
                    if (!t)
                        break;
                    *v = t;
                    *cap = ncap;
                }
                (*v)[(*n)++] = (pid_t)c;
            }
            have = strlen(p);   /* a number cut by the buffer's end waits for the rest */
            memmove(buf, p, have);
        }
        close(fd);
    }
    closedir(d);
    return r;
}

/* Our tree, top down, through the children files: costs what the tree holds, not what the
 * host runs. A process is signalled before its children are looked up (with SIGKILL, a dead
 * parent forks no more; what it forked meanwhile is reparented to us and found next time).
 * -1: no children files here. */
static int signal_tree(int sig)
{
    pid_t *v = NULL;
    size_t n = 0, cap = 0;
    int r = add_children(S.self, &v, &n, &cap);
    for (size_t i = 0; r == 0 && i < n; i++) {
        kill(v[i], sig);
        if (add_children(v[i], &v, &n, &cap) < 0)
            r = -1;
    }
    free(v);
    return r;
}

/* As PID 1, kill(-1) reaches every other process of the namespace. As a subreaper it would
 * reach the whole host, so we walk our own tree instead (or, without children files, all of
 * /proc for our descendants). */
static void signal_descendants(int sig)
{
    if (S.pid1) {
        kill(-1, sig);
        return;
    }
    if (signal_tree(sig) == 0)
        return;
    size_t n;
    struct proc_link *tab = read_proc_links(&n);
    for (size_t i = 0; tab && i < n; i++)
        if (tab[i].pid != S.self && descends(tab, n, &tab[i]))
            kill(tab[i].pid, sig);
    free(tab);
}

static bool have_children(void)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    return waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT | __WALL) == 0;
}

/* ---- the supervisor's death ---------------------------------------------------------------
 * In spec mode init's parent is the supervisor, and its containers die with it. In a pid
 * namespace the kernel does that: spawn gave init a parent-death SIGKILL, and PID 1's death
 * ends the namespace. Without one (namespaces without pid) init's death alone would leave
 * the workload running, reparented to the host. So there init trades the SIGKILL for a
 * signal it reads (at once after exec: until then no workload exists, and the SIGKILL still
 * covers that time) and, when its parent is gone, kills every descendant itself: as a
 * subreaper it inherits every orphan of the tree, so no children left means no descendants
 * left. Then it exits. */
#define PDEATH_SIG 64   /* SIGRTMAX, by the kernel's numbering */

static void end_with_parent(void) __attribute__((noreturn));
static void end_with_parent(void)
{
    for (;;) {
        signal_descendants(SIGKILL);
        while (waitpid(-1, NULL, WNOHANG | __WALL) > 0)
            ;
        if (!have_children())
            break;
        /* Something is still dying (or was forked just before its parent's end): look again
         * at the next exit (SIGCHLD on the signalfd), or after a little while. */
        struct pollfd p = {S.sfd, POLLIN, 0};
        if (poll(&p, 1, 20) > 0) {
            struct signalfd_siginfo si[16];
            ssize_t r = read(S.sfd, si, sizeof si);
            (void)r;
        }
    }
    _exit(128 + SIGKILL);
}

/* Spec mode without a pid namespace: the parent-death signal above; false when the parent
 * is gone already. */
static bool watch_parent(void)
{
    S.parent = getppid();
    prctl(PR_SET_PDEATHSIG, PDEATH_SIG, 0, 0, 0);
    return getppid() == S.parent;
}

/* Start the end-of-run phase: TERM (and CONT, for stopped ones) to whatever is left. */
static void begin_drain(void)
{
    S.phase = DRAINING;
    set_autoreap(false);   /* from now on we want to see every exit */
    S.kill_deadline_ms = -1;
    if (have_children()) {
        signal_descendants(SIGTERM);
        signal_descendants(SIGCONT);
        S.kill_deadline_ms = now_ms() + S.o->grace_ms;
    }
}

/* ---- the workload's end and the restart decision ---------------------------------------- */

static int status_to_code(int st)
{
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return 1;
}

static bool wants_restart(int st)
{
    if (S.stopping)
        return false;
    if (S.ready_failed || S.force_restart)
        return true;            /* a failed start is retried; unhealthy means restart */
    switch (S.o->restart) {
    case RESTART_NO:
        return false;
    case RESTART_ALWAYS:
        return true;
    case RESTART_ON_FAILURE:
        return !WIFEXITED(st) || !cr_codeset_has(&S.o->exit_codes, WEXITSTATUS(st));
    }
    return false;
}

/* max_restarts within restart_window: the ring holds the last max_restarts restart times. */
static bool restart_limit_reached(int64_t now)
{
    return cr_restart_limit_reached(&S.policy, S.history, S.restarts, now);
}

static void workload_ended(int st)
{
    int64_t now = now_ms();
    int64_t runtime = now - S.wstart_ms;
    if (WIFSIGNALED(st))
        cr_event(S.o->events_fd, CR_EVT_EXITED, "pid=%d signal=%s runtime_ms=%lld%s", (int)S.wpid,
                 signame(WTERMSIG(st)), (long long)runtime, WCOREDUMP(st) ? " core=1" : "");
    else
        cr_event(S.o->events_fd, CR_EVT_EXITED, "pid=%d code=%d runtime_ms=%lld", (int)S.wpid,
                 WEXITSTATUS(st), (long long)runtime);
    if (S.wpidfd >= 0)
        close(S.wpidfd);
    S.wpid = 0;
    S.wpidfd = -1;
    S.status = status_to_code(st);
    S.term_deadline_ms = -1;
    /* With a readiness check, a start failed when the workload was never ready; without,
     * when it ran less than startsecs. */
    bool failed = S.o->ready != CR_READY_NONE ? !ready_is_ready() || S.ready_failed
                                              : runtime < S.o->startsecs_ms;
    ready_stopped();
    health_stopped();

    S.restart_pending = false;
    if (failed)
        S.failed_starts++;
    else
        S.failed_starts = 0;
    if (wants_restart(st)) {
        if (S.failed_starts > S.o->startretries) {
            cr_event(S.o->events_fd, CR_EVT_GAVE_UP, "code=%d restarts=%u reason=exited too "
                     "quickly %u times in a row", S.status, S.restarts, S.failed_starts);
            fprintf(stderr, "init: giving up: exited too quickly %u times in a row\n",
                    S.failed_starts);
        } else if (restart_limit_reached(now)) {
            cr_event(S.o->events_fd, CR_EVT_GAVE_UP, "code=%d restarts=%u", S.status, S.restarts);
            fprintf(stderr, "init: giving up after %u restarts\n", S.restarts);
        } else {
            S.attempt = cr_restart_next_attempt(&S.policy, S.attempt, runtime);
            int64_t delay = cr_restart_jitter(cr_restart_backoff(&S.policy, S.attempt),
                                              next_random());
            S.restart_pending = true;
            S.next_start_ms = now + delay;
            cr_event(S.o->events_fd, CR_EVT_RESTARTING, "delay_ms=%lld attempt=%u",
                     (long long)delay, S.attempt);
        }
    }
    begin_drain();
}

/* The workload was released by the kernel (autoreap): its status is kept in its pidfd.
 * SIGCHLD comes before the release is complete (the exit info is stored just before the
 * task is unhashed, which is when the pidfd reports POLLHUP), so wait for that, briefly. */
static bool read_exit_info(int *st)
{
    for (int i = 0; i < 400; i++) {
        struct pidfd_info info;
        memset(&info, 0, sizeof info);
        info.mask = PIDFD_INFO_EXIT;
        if (ioctl(S.wpidfd, PIDFD_GET_INFO, &info) == 0 && (info.mask & PIDFD_INFO_EXIT)) {
            *st = info.exit_code;
            return true;
        }
        if (errno == ENOTTY || errno == EINVAL)
            return false;
        struct pollfd p = {S.wpidfd, POLLHUP, 0};
        poll(&p, 1, 5);
    }
    errno = ETIMEDOUT;
    return false;
}

/* Checks the workload alone: stopped (job control) or gone. Called on SIGCHLD. */
static void check_workload(void)
{
    int st;
    if (!S.wpid)
        return;
    pid_t r = waitpid(S.wpid, &st, WNOHANG | WUNTRACED | __WALL);
    if (r == S.wpid && WIFSTOPPED(st)) {
        /* ^Z: when a shell runs us, stop too so the shell sees its job stopped and takes the
         * terminal back; SIGCONT (fg) later resumes both. PID 1 cannot be stopped. */
        int sig = WSTOPSIG(st);
        if (!S.pid1 && (sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU))
            kill(S.self, SIGSTOP);
        return;
    }
    if (r == S.wpid) {
        workload_ended(st);
        return;
    }
    if (r < 0 && errno == ECHILD && S.autoreap && S.wpidfd >= 0) {
        if (read_exit_info(&st)) {
            workload_ended(st);
        } else {
            /* The kernel said it keeps exit status and did not: never rely on it again. */
            fprintf(stderr, "init: the workload's exit status is lost (%s)\n", strerror(errno));
            S.exit_info = false;
            workload_ended(255 << 8);
        }
    }
}

/* Collects exited children one by one (classic mode, -v, and the final phase). */
static void reap_all(void)
{
    int st;
    pid_t pid;
    while ((pid = waitpid(-1, &st, WNOHANG | __WALL)) > 0) {
        if (pid == S.wpid) {
            workload_ended(st);
            continue;
        }
        if (ready_reaped(pid, st, now_ms()) || health_reaped(pid, st, now_ms()))
            continue;
        if (S.o->verbose) {
            if (WIFSIGNALED(st))
                fprintf(stderr, "init: reaped orphan %d (signal %s)\n", (int)pid,
                        signame(WTERMSIG(st)));
            else
                fprintf(stderr, "init: reaped orphan %d (exit %d)\n", (int)pid,
                        WEXITSTATUS(st));
        }
    }
}

/* ---- signals ------------------------------------------------------------------------------ */

static bool is_fault(int sig)
{
    return sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE || sig == SIGILL ||
           sig == SIGTRAP || sig == SIGSYS || sig == SIGABRT;
}

static void on_signal(const struct signalfd_siginfo *si)
{
    int sig = (int)si->ssi_signo;
    if (sig == PDEATH_SIG && S.parent && getppid() != S.parent)
        end_with_parent();
    if (sig == SIGWINCH && console_on()) {
        console_resize();   /* the pty tells its foreground group itself */
        return;
    }
    if (sig == SIGCHLD) {
        check_workload();
        if (S.phase == DRAINING || !S.autoreap)
            reap_all();
        return;
    }
    /* What we caused ourselves (SIGPIPE from a closed events pipe, the SIGSTOP above) and
     * faults the kernel raised are ours, not the workload's. */
    if ((pid_t)si->ssi_pid == S.self && (int)si->ssi_code == SI_USER)
        return;
    if (is_fault(sig) && (int)si->ssi_code > 0)
        return;
    if (sig == SIGTERM || sig == SIGINT || (S.o->stop_signal && sig == S.o->stop_signal))
        S.stopping = true;
    if (!S.wpid) {
        /* No workload (restart wait or final phase): a stop signal cancels the restart. */
        if (S.stopping)
            S.restart_pending = false;
        return;
    }
    if (sig == SIGCONT && S.tty_fg && tcgetpgrp(STDIN_FILENO) == getpgrp())
        tcsetpgrp(STDIN_FILENO, S.wpid);   /* fg after ^Z: the terminal goes back to it */
    int to = S.o->rewrite[sig] ? S.o->rewrite[sig] : sig;
    if (kill(S.o->group ? -S.wpid : S.wpid, to) < 0 && errno == ESRCH && S.o->group)
        kill(S.wpid, to);
}

/* One read: blocks until at least one signal is queued, returns all that are (up to 16). */
static void read_signals(void)
{
    struct signalfd_siginfo si[16];
    ssize_t n = read(S.sfd, si, sizeof si);
    for (ssize_t i = 0; n > 0 && i < n / (ssize_t)sizeof si[0]; i++)
        on_signal(&si[i]);
}

/* ---- setup and the loop -------------------------------------------------------------------- */

/* PIDFD_INFO_EXIT came with Linux 6.15. A probe would cost a fork; the version is free, and
 * check_workload() falls back for good if a kernel claims it and does not deliver. */
static bool kernel_keeps_exit_info(void)
{
    struct utsname u;
    unsigned major = 0, minor = 0;
    if (uname(&u) < 0 || sscanf(u.release, "%u.%u", &major, &minor) != 2)
        return false;
    return major > 6 || (major == 6 && minor >= 15);
}

static int setup(const struct init_opts *o)
{
    /* Every signal, by the kernel's numbering: libc's sigfillset leaves out the ones libc
     * keeps for itself (32-34), and an unblocked one of those would kill us by default. */
    uint64_t all = ~0ULL;
    S.o = o;
    S.self = getpid();
    S.pid1 = S.self == 1;
    S.wpidfd = -1;
    S.kill_deadline_ms = -1;
    S.term_deadline_ms = -1;
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, &S.orig_mask, sizeof all);
    if (o->empty_mask)
        S.orig_mask = 0;
    sigaction(SIGCHLD, NULL, &S.orig_chld);
    S.sfd = (int)syscall(SYS_signalfd4, -1, &all, sizeof all, SFD_CLOEXEC);
    if (S.sfd < 0) {
        fprintf(stderr, "init: signalfd: %s\n", strerror(errno));
        return 1;
    }
    if (!S.pid1)
        prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    if (o->spec_fd >= 0 && !S.pid1) {
        if (!watch_parent())
            return 1;   /* the supervisor died while we were setting up: nothing ran */
    } else if (o->pdeathsig) {
        pid_t parent = getppid();
        prctl(PR_SET_PDEATHSIG, o->pdeathsig, 0, 0, 0);
        if (parent > 1 && getppid() != parent)   /* it died before prctl took effect */
            kill(S.self, o->pdeathsig);
    }
    if (o->events_fd >= 0) {
        int fl = fcntl(o->events_fd, F_GETFL);
        if (fl < 0) {
            fprintf(stderr, "init: --events-fd %d: %s\n", o->events_fd, strerror(errno));
            return 2;
        }
        fcntl(o->events_fd, F_SETFL, fl | O_NONBLOCK);
        fcntl(o->events_fd, F_SETFD, FD_CLOEXEC);
    }
    S.policy = (struct cr_restart_policy){
        .delay_ms = o->restart_delay_ms, .delay_max_ms = o->restart_delay_max_ms,
        .reset_after_ms = o->restart_reset_after_ms, .window_ms = o->restart_window_ms,
        .max_restarts = o->max_restarts,
    };
    if (o->max_restarts) {
        S.history = calloc(o->max_restarts, sizeof *S.history);
        if (!S.history) {
            fprintf(stderr, "init: out of memory\n");
            return 1;
        }
    }
    /* With a console of its own the workload's terminal is the pty: the caller's stays
     * init's, raw, and only copied to and from. */
    S.tty_fg = !console_on() && isatty(STDIN_FILENO) && tcgetpgrp(STDIN_FILENO) == getpgrp();
    console_start();
    if (getrandom(&S.rnd, sizeof S.rnd, GRND_NONBLOCK) != (ssize_t)sizeof S.rnd)
        S.rnd = (uint64_t)now_ms() ^ ((uint64_t)S.self << 32);
    S.rnd |= 1;
    S.pidfd_ok = true;
    S.exit_info = kernel_keeps_exit_info();
    return ready_init(o, pid1_stop_workload);
}

static void pid1_stop_workload(enum pid1_stop_why why)
{
    if (!S.wpid || S.phase != RUNNING)
        return;
    if (why == PID1_STOP)
        S.stopping = true;
    else if (why == PID1_RESTART)
        S.force_restart = true;
    else
        S.ready_failed = true;
    if (S.term_deadline_ms >= 0)
        return;                 /* already on its way out */
    int sig = S.o->stop_signal > 0 ? S.o->stop_signal : SIGTERM;
    if (kill(S.o->group ? -S.wpid : S.wpid, sig) < 0 && S.o->group)
        kill(S.wpid, sig);
    S.term_deadline_ms = now_ms() + S.o->grace_ms;
}

int pid1_run(const struct init_opts *o)
{
    int r = setup(o);
    if (r)
        return r;
    r = start_workload();
    if (r)
        return r;

    /* From here on init never exits because of an error of its own: the workload's life
     * (and, as PID 1, the whole namespace's) depends on it. */
    for (;;) {
        if (S.phase == DRAINING && !have_children()) {
            if (!S.restart_pending)
                break;
            if (now_ms() >= S.next_start_ms) {
                cr_restart_record(&S.policy, S.history, &S.restarts, now_ms());
                int e = start_workload();
                if (e) {
                    S.status = e;
                    break;
                }
                continue;
            }
        }
        int64_t now = now_ms(), deadline = -1;
        if (S.phase == RUNNING) {
            /* Readiness and health act on their deadlines (they may stop the workload) */
            ready_tick(now);
            health_tick(now);
            int64_t d[2] = {ready_deadline(), health_deadline()};
            for (int i = 0; i < 2; i++)
                if (d[i] >= 0 && (deadline < 0 || d[i] < deadline))
                    deadline = d[i];
        }
        if (S.phase == RUNNING && S.term_deadline_ms >= 0) {
            if (now >= S.term_deadline_ms) {
                kill(-S.wpid, SIGKILL);
                kill(S.wpid, SIGKILL);
                S.term_deadline_ms = -1;
            } else if (deadline < 0 || S.term_deadline_ms < deadline) {
                deadline = S.term_deadline_ms;
            }
        }
        if (S.phase == DRAINING && S.kill_deadline_ms >= 0) {
            if (now >= S.kill_deadline_ms) {
                signal_descendants(SIGKILL);
                S.kill_deadline_ms = -1;
            } else {
                deadline = S.kill_deadline_ms;
            }
        }
        if (S.phase == DRAINING && S.restart_pending &&
            (deadline < 0 || S.next_start_ms < deadline))
            deadline = S.next_start_ms;

        /* Everything arrives as a signal (SIGCHLD included), so the loop is one blocking read
         * of the signalfd: the shortest path from a signal to its forwarding. Only with a
         * deadline pending, or a readiness fd to watch (notify socket, notification pipe, a
         * connect), does it poll first, with a timeout. */
        struct pollfd pfd[7] = {{S.sfd, POLLIN, 0}};
        int nready = ready_pollfds(pfd + 1, 3);
        int ncon = console_pollfds(pfd + 1 + nready, 3);
        int nfd = 1 + nready + ncon;
        if (deadline >= 0 || nfd > 1) {
            int timeout = deadline < 0 ? -1 : deadline > now ? (int)(deadline - now) : 0;
            if (poll(pfd, (nfds_t)nfd, timeout) > 0) {
                ready_on_poll(pfd + 1, nready, now_ms());
                console_on_poll(pfd + 1 + nready, ncon);
                if (pfd[0].revents & POLLIN)
                    read_signals();
            }
        } else {
            read_signals();
        }
        if (S.phase == DRAINING)
            reap_all();
    }
    console_end();
    if (cr_codeset_has(&o->remap_exit, S.status))
        return 0;
    return S.status;
}
