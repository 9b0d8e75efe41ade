/* Spawning a container: sealed init memfd, clone3 + pidfd, the child's short path. */
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef F_SEAL_SEAL
#define F_SEAL_SEAL 0x0001
#define F_SEAL_SHRINK 0x0002
#define F_SEAL_GROW 0x0004
#define F_SEAL_WRITE 0x0008
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

/* fds in the child (the contract's numbering) */
enum { CHILD_SPEC_FD = 3, CHILD_EVENTS_FD = 4, CHILD_INIT_FD = 5, CHILD_FIRST_FREE = 6 };

int cr_init_find(char *buf, size_t len)
{
    const char *env = getenv("CORRAL_INIT");
    if (env && *env) {
        snprintf(buf, len, "%s", env);
        return 0;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return -ENOENT;
    self[n] = 0;
    char *slash = strrchr(self, '/');
    if (!slash)
        return -ENOENT;
    *slash = 0;
    snprintf(buf, len, "%s/init", self);
    return access(buf, X_OK) == 0 ? 0 : -ENOENT;
}

int cr_init_memfd(const char *path, char *err, size_t errlen)
{
    int src = open(path, O_RDONLY | O_CLOEXEC);
    if (src < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    int fd = memfd_create("corral-init", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "memfd_create: %s", strerror(e));
        close(src);
        return -e;
    }
    char buf[65536];
    for (;;) {
        ssize_t n = read(src, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            snprintf(err, errlen, "%s: %s", path, strerror(e));
            close(src);
            close(fd);
            return -e;
        }
        if (n == 0)
            break;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(fd, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                int e = errno;
                snprintf(err, errlen, "memfd: %s", strerror(e));
                close(src);
                close(fd);
                return -e;
            }
            off += w;
        }
    }
    close(src);
    if (fchmod(fd, 0555) < 0 ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
        int e = errno;
        snprintf(err, errlen, "sealing the copy of %s: %s", path, strerror(e));
        close(fd);
        return -e;
    }
    return fd;
}

int cr_pidfd_signal(int pidfd, int sig)
{
    if (syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0)
        return -errno;
    return 0;
}

/* The spec, as text, in its own sealed memfd: init reads it from fd 3. */
static int spec_memfd(const struct cr_spec *spec, char *err, size_t errlen)
{
    int fd = memfd_create("corral-spec", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "memfd_create: %s", strerror(e));
        return -e;
    }
    int r = cr_spec_write_fd(spec, fd);
    if (r < 0) {
        snprintf(err, errlen, "writing the spec: %s", strerror(-r));
        close(fd);
        return r;
    }
    if (lseek(fd, 0, SEEK_SET) < 0) {
        int e = errno;
        snprintf(err, errlen, "lseek: %s", strerror(e));
        close(fd);
        return -e;
    }
    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
    return fd;
}

/* ---- the child ------------------------------------------------------------------------------
 * Runs between clone and exec on a copy of the parent's stack. Only raw syscalls and
 * async-signal-safe calls; every failure is reported on the events pipe (the supervisor's
 * normal channel for "this container could not be set up") and ends in _exit. */
static void child_report(int fd, const char *what, int e) __attribute__((noreturn));
static void child_report(int fd, const char *what, int e)
{
    char line[160];
    size_t n = 0;
    const char *head = "setup-failed reason=";
    for (const char *p = head; *p && n < sizeof line - 40; p++)
        line[n++] = *p;
    for (const char *p = what; *p && n < sizeof line - 40; p++)
        line[n++] = *p;
    const char *mid = ": errno ";
    for (const char *p = mid; *p; p++)
        line[n++] = *p;
    char digits[12];
    int nd = 0;
    unsigned u = (unsigned)e;
    do
        digits[nd++] = (char)('0' + u % 10);
    while ((u /= 10) && nd < 11);
    while (nd)
        line[n++] = digits[--nd];
    line[n++] = '\n';
    ssize_t w = write(fd, line, n);
    (void)w;
    _exit(127);
}

/* Moves fds[i] to fd i for every i (any overlap allowed): first everything above the targets,
 * then into place. dup2 clears close-on-exec on the copies. */
static int child_place_fds(const int *fds, int n)
{
    int tmp[8];
    for (int i = 0; i < n; i++) {
        tmp[i] = (int)syscall(SYS_fcntl, fds[i], F_DUPFD_CLOEXEC, 16);
        if (tmp[i] < 0)
            return -1;
    }
    for (int i = 0; i < n; i++)
        if (syscall(SYS_dup2, tmp[i], i) < 0)
            return -1;
    return 0;
}

struct child_args {
    const struct cr_spawn_req *req;
    int spec_fd, sync_fd;
};

static void child_main(const struct child_args *a) __attribute__((noreturn));
static void child_main(const struct child_args *a)
{
    const struct cr_spawn_req *req = a->req;
    int evfd = req->events_fd;

    /* Dispositions the supervisor set (SIGPIPE ignored, libuv's handlers) and the mask must
     * not reach init: ignored signals stay ignored across exec. */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < 65; s++)
        if (s != SIGKILL && s != SIGSTOP)
            sigaction(s, &dfl, NULL);
    uint64_t none = 0;
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, sizeof none);

    /* Die with the supervisor. Set before the sync read: if the supervisor died before this
     * call, the read below sees EOF instead of its go-ahead byte. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
        child_report(evfd, "prctl(PR_SET_PDEATHSIG)", errno);
    if (req->own_pgrp && setpgid(0, 0) < 0)
        child_report(evfd, "setpgid", errno);
    char go = 0;
    ssize_t n;
    do
        n = read(a->sync_fd, &go, 1);
    while (n < 0 && errno == EINTR);
    if (n != 1)
        _exit(127);   /* the supervisor died or gave up on us: nobody to report to */

    if (req->nofile)
        setrlimit(RLIMIT_NOFILE, req->nofile);
    int fds[6] = {req->stdio[0], req->stdio[1], req->stdio[2], a->spec_fd, evfd, req->init_fd};
    if (child_place_fds(fds, 6) < 0)
        child_report(evfd, "arranging fds", errno);
    evfd = CHILD_EVENTS_FD;
    /* init is executed through fd 5, which must not survive into init itself. */
    if (syscall(SYS_fcntl, CHILD_INIT_FD, F_SETFD, FD_CLOEXEC) < 0)
        child_report(evfd, "fcntl", errno);
    if (syscall(SYS_close_range, CHILD_FIRST_FREE, ~0U, 0) < 0) {
        for (int fd = CHILD_FIRST_FREE; fd < 1024; fd++)
            syscall(SYS_close, fd);
    }
    char *argv[] = {"init", "--spec-fd", "3", "--events-fd", "4", NULL};
    /* init gets no environment from the supervisor (the spec carries the workload's), except
     * the sanitizer settings of a test build. */
    char *envp[4];
    int ne = 0;
    static const char *keep[] = {"ASAN_OPTIONS=", "UBSAN_OPTIONS=", "LSAN_OPTIONS="};
    for (char **e = environ; *e && ne < 3; e++)
        for (size_t k = 0; k < sizeof keep / sizeof keep[0]; k++)
            if (!strncmp(*e, keep[k], strlen(keep[k])))
                envp[ne++] = *e;
    envp[ne] = NULL;
    syscall(SYS_execveat, CHILD_INIT_FD, "", argv, envp, AT_EMPTY_PATH);
    child_report(evfd, "exec init", errno);
}

/* clone3 with CLONE_PIDFD (+ CLONE_INTO_CGROUP when cgfd >= 0); falls back to clone3 without
 * INTO_CGROUP (kernels before 5.7), then to legacy clone with CLONE_PIDFD (before 5.3 clone3
 * did not exist). Returns the pid like fork (0 in the child). */
static pid_t clone_child(uint64_t ns, int cgfd, int *pidfd, bool *into)
{
    struct clone_args ca;
    memset(&ca, 0, sizeof ca);
    ca.flags = CLONE_PIDFD | ns;
    ca.pidfd = (uint64_t)(uintptr_t)pidfd;
    ca.exit_signal = SIGCHLD;
    *into = false;
    if (cgfd >= 0) {
        ca.flags |= CLONE_INTO_CGROUP;
        ca.cgroup = (uint64_t)cgfd;
        pid_t pid = (pid_t)syscall(SYS_clone3, &ca, sizeof ca);
        if (pid >= 0) {
            *into = true;
            return pid;
        }
        if (errno != ENOSYS && errno != E2BIG && errno != EINVAL)
            return -1;
        ca.flags &= ~(uint64_t)CLONE_INTO_CGROUP;
        ca.cgroup = 0;
    }
    pid_t pid = (pid_t)syscall(SYS_clone3, &ca, sizeof ca);
    if (pid >= 0 || errno != ENOSYS)
        return pid;
    return (pid_t)syscall(SYS_clone, (unsigned long)(CLONE_PIDFD | ns | SIGCHLD), NULL, pidfd,
                          NULL, NULL);
}

int cr_spawn(const struct cr_spawn_req *req, struct cr_spawned *out, char *err, size_t errlen)
{
    int spec_fd = spec_memfd(req->spec, err, errlen);
    if (spec_fd < 0)
        return spec_fd;
    int sync[2];
    if (pipe2(sync, O_CLOEXEC) < 0) {
        int e = errno;
        snprintf(err, errlen, "pipe: %s", strerror(e));
        close(spec_fd);
        return -e;
    }
    struct child_args a = {req, spec_fd, sync[0]};
    int pidfd = -1;
    bool into = false;
    pid_t pid = clone_child(req->spec->namespaces, cr_cg_dirfd(req->cg), &pidfd, &into);
    if (pid == 0)
        child_main(&a);
    int e = errno;
    close(sync[0]);
    close(spec_fd);
    if (pid < 0) {
        snprintf(err, errlen, "clone3: %s", strerror(e));
        close(sync[1]);
        return -e;
    }
    /* Not born in the cgroup: move it there before it may exec (it waits for our byte). */
    if (!into) {
        char cgerr[256];
        int r = cr_cg_attach(req->cg, pid, cgerr, sizeof cgerr);
        if (r < 0) {
            snprintf(err, errlen, "%s", cgerr);
            close(sync[1]);   /* EOF: the child exits without running anything */
            siginfo_t si;
            /* It exits at once (it only waited for us); collect it so no zombie stays. */
            while (waitid((idtype_t)P_PIDFD, (id_t)pidfd, &si, WEXITED) < 0 && errno == EINTR)
                ;
            close(pidfd);
            return r;
        }
    }
    ssize_t w;
    do
        w = write(sync[1], "g", 1);
    while (w < 0 && errno == EINTR);
    close(sync[1]);
    out->pid = pid;
    out->pidfd = pidfd;
    out->into_cgroup = into;
    return 0;
}
