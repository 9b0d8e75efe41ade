/* Spawning a container: sealed init memfd, clone3 + pidfd, the child's short path. */
#include "spawn/spawn.h"
#include "policy/syscall_filter.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"

#ifndef F_SEAL_SEAL
#define F_SEAL_SEAL 0x0001
#define F_SEAL_SHRINK 0x0002
#define F_SEAL_GROW 0x0004
#define F_SEAL_WRITE 0x0008
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

/* The child's functions run on vfork_stack, beside a suspended supervisor: not instrumented
 * by ASan (whose stack bookkeeping would take that stack for a corrupted one). */
#define CHILD_SIDE __attribute__((no_sanitize_address))

/* fds in the child (the contract's numbering) */
enum { CHILD_SPEC_FD = 3, CHILD_EVENTS_FD = 4, CHILD_INIT_FD = 5, CHILD_SECCOMP_FD = CR_SECCOMP_CHILD_FD,
       CHILD_NFDS = 7, CHILD_MAXFDS = CR_IDMAP_CHILD_FD + CR_IDMAP_MAX };
_Static_assert(CR_IDMAP_CHILD_FD == CHILD_NFDS, "the idmapped mounts follow the seccomp fd");

/* True when path is corral's init (it has corral's ELF note: shared/spec.h): next to an
 * installed supervisor, "init" may well be the system's own init, which must never become a
 * container's PID 1 by accident. A few small reads of the headers; no scan of the file. */
static bool is_corral_init(const char *path)
{
    CR_AUTOFD int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ElfW(Ehdr) eh;
    ElfW(Phdr) ph[32];
    if (pread(fd, &eh, sizeof eh, 0) != (ssize_t)sizeof eh ||
        memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_phentsize != sizeof ph[0] ||
        eh.e_phnum == 0 || eh.e_phnum > sizeof ph / sizeof ph[0])
        return false;
    size_t phlen = eh.e_phnum * sizeof ph[0];
    if (pread(fd, ph, phlen, (off_t)eh.e_phoff) != (ssize_t)phlen)
        return false;
    static const char owner[] = CR_INIT_NOTE_NAME;
    for (size_t i = 0; i < eh.e_phnum; i++) {
        char buf[1024];
        if (ph[i].p_type != PT_NOTE || ph[i].p_filesz > sizeof buf)
            continue;
        size_t len = ph[i].p_filesz;
        if (pread(fd, buf, len, (off_t)ph[i].p_offset) != (ssize_t)len)
            continue;
        /* notes one after another: three 32-bit words, the owner, the description, each
         * padded to 4 bytes */
        for (size_t off = 0; off + 12 <= len;) {
            uint32_t w[3];
            memcpy(w, buf + off, sizeof w);
            size_t name = off + 12, desc = name + (((size_t)w[0] + 3) & ~(size_t)3);
            size_t next = desc + (((size_t)w[1] + 3) & ~(size_t)3);
            if (desc > len || next > len || next <= off)
                break;
            if (w[2] == CR_INIT_NOTE_TYPE && w[0] == sizeof owner &&
                !memcmp(buf + name, owner, sizeof owner))
                return true;
            off = next;
        }
    }
    return false;
}

/* $CORRAL_INIT, else <dir of the supervisor>/../libexec/corral/init (make install), else
 * <dir of the supervisor>/init (the build tree) when it is corral's init. */
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
    snprintf(buf, len, "%s/../libexec/corral/init", self);
    if (access(buf, X_OK) == 0 && is_corral_init(buf))
        return 0;
    snprintf(buf, len, "%s/init", self);
    return access(buf, X_OK) == 0 && is_corral_init(buf) ? 0 : -ENOENT;
}

int cr_init_memfd(const char *path, char *err, size_t errlen)
{
    CR_AUTOFD int src = open(path, O_RDONLY | O_CLOEXEC);
    if (src < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    CR_AUTOFD int fd = memfd_create("corral-init", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "memfd_create: %s", strerror(e));
        return -e;
    }
    /* In the kernel, page cache to memfd: no pass through a buffer of ours. */
    ssize_t sent;
    while ((sent = sendfile(fd, src, NULL, 1 << 30)) > 0 || (sent < 0 && errno == EINTR))
        ;
    if (sent == 0)
        goto sealed;
    if (errno != EINVAL && errno != ENOSYS) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    /* Where sendfile cannot (and then nothing was sent): read and write. */
    char buf[65536];
    for (;;) {
        ssize_t n = read(src, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            snprintf(err, errlen, "%s: %s", path, strerror(e));
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
                return -e;
            }
            off += w;
        }
    }
sealed:
    if (fchmod(fd, 0555) < 0 ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
        int e = errno;
        snprintf(err, errlen, "sealing the copy of %s: %s", path, strerror(e));
        return -e;
    }
    return cr_steal_fd(&fd);
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
    CR_AUTOFD int fd = memfd_create("corral-spec", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "memfd_create: %s", strerror(e));
        return -e;
    }
    int r = cr_spec_write_fd(spec, fd);
    if (r < 0) {
        snprintf(err, errlen, "writing the spec: %s", strerror(-r));
        return r;
    }
    if (lseek(fd, 0, SEEK_SET) < 0) {
        int e = errno;
        snprintf(err, errlen, "lseek: %s", strerror(e));
        return -e;
    }
    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
    return cr_steal_fd(&fd);
}

/* ---- the child ------------------------------------------------------------------------------
 * Runs between clone and exec on a copy of the parent's stack. Only raw syscalls and
 * async-signal-safe calls; every failure is reported on the events pipe (the supervisor's
 * normal channel for "this container could not be set up") and ends in _exit. */
static void child_report(int fd, const char *what, int e) __attribute__((noreturn));
CHILD_SIDE static void child_report(int fd, const char *what, int e)
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
 * then into place; fds[i] < 0 leaves fd i closed. dup2 clears close-on-exec on the copies. */
CHILD_SIDE static int child_place_fds(const int *fds, int n)
{
    int tmp[CHILD_MAXFDS];
    for (int i = 0; i < n; i++) {
        tmp[i] = fds[i] < 0 ? -1 : (int)syscall(SYS_fcntl, fds[i], F_DUPFD_CLOEXEC, 64);
        if (tmp[i] < 0 && fds[i] >= 0)
            return -1;
    }
    for (int i = 0; i < n; i++)
        if (tmp[i] < 0 ? syscall(SYS_close, i) < 0 && errno != EBADF
                       : syscall(SYS_dup2, tmp[i], i) < 0)
            return -1;
    return 0;
}

/* The go-ahead byte with the idmapped mounts (SCM_RIGHTS) into fds[0..n-1]; returns the byte
 * count (1) or -1. */
CHILD_SIDE static ssize_t child_recv_fds(int sock, int *fds, int n)
{
    char go;
    struct iovec iov = {.iov_base = &go, .iov_len = 1};
    union {
        char buf[CMSG_SPACE(sizeof(int) * CR_IDMAP_MAX)];
        struct cmsghdr align;
    } u;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                        .msg_controllen = sizeof u.buf};
    ssize_t r;
    do
        r = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
    while (r < 0 && errno == EINTR);
    struct cmsghdr *c = r == 1 ? CMSG_FIRSTHDR(&mh) : NULL;
    if (!c || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(int) * (size_t)n))
        return -1;
    memcpy(fds, CMSG_DATA(c), sizeof(int) * (size_t)n);
    return r;
}

/* The kernel's struct sigaction: libc's sigaction() refuses the signals libc keeps for
 * itself (32, 33), which a parent may still have left ignored. */
struct ksigaction {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)(void);
    uint64_t mask;
};

struct child_args {
    const struct cr_spawn_req *req;
    int spec_fd, sync_fd;
    int cg_fds[8];               /* v1: the cgroup's `tasks` files, to join by writing "0" */
    int ncg;
    bool vforked;                /* CLONE_VM|CLONE_VFORK: the supervisor waits for our exec */
    int sync_wr;                 /* the write end of the sync pipe (our copy, vforked) */
    int fd[CHILD_NFDS];          /* stdio, spec, events, init, seccomp: as the child finds
                                    them */
    int nfd;                     /* 6, or 7 with a seccomp program */
    int nidmap;                  /* idmapped mounts, sent with the go-ahead byte */
    bool go_in_init;             /* defer_go's byte read by init after its exec (--go-fd),
                                    not here: the child can then be vforked */
    unsigned unshare_cut;        /* CLONE_FILES: keep only fds below this one (0: no) */
    uint64_t ignored;            /* signals (bit s-1) the supervisor ignores */
};

static void child_main(const struct child_args *a) __attribute__((noreturn));
CHILD_SIDE static void child_main(const struct child_args *a)
{
    const struct cr_spawn_req *req = a->req;
    int evfd = a->fd[4];
    int fds[CHILD_MAXFDS], nfd = a->nfd;
    memcpy(fds, a->fd, sizeof a->fd);

    /* Sharing the supervisor's fd table (CLONE_FILES): first a table of our own holding
     * only the low fds we need, instead of a copy of thousands to close again. */
    if (a->unshare_cut &&
        syscall(SYS_close_range, a->unshare_cut, ~0U, CLOSE_RANGE_UNSHARE) < 0 &&
        syscall(SYS_unshare, CLONE_FILES) < 0)
        child_report(evfd, "unshare(CLONE_FILES)", errno);

    /* Every signal stays blocked until exec, which resets the supervisor's handlers (no
     * handler of the supervisor ever runs here); init then takes the mask over, and gives
     * its workload an empty one. An ignored signal would stay ignored across exec: those
     * (SIGPIPE, and whatever the supervisor was started with ignored, as under nohup) go
     * back to the default. (Resetting all 64 dispositions cost ~60 syscalls per start, with
     * the supervisor suspended.) */
    struct ksigaction dfl = {.handler = SIG_DFL};
    for (int s = 1; s < 65; s++)
        if (a->ignored & (1ULL << (s - 1)))
            syscall(SYS_rt_sigaction, s, &dfl, NULL, sizeof dfl.mask);

    /* Die with the supervisor. Set before the sync read: if the supervisor died before this
     * call, the read below sees EOF instead of its go-ahead byte. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
        child_report(evfd, "prctl(PR_SET_PDEATHSIG)", errno);
    if (req->own_pgrp && setpgid(0, 0) < 0)
        child_report(evfd, "setpgid", errno);
    /* Our copy of the sync channel's write end: without it, the supervisor closing its own
     * (it gave up on us, or died) is EOF here rather than a wait forever. */
    syscall(SYS_close, a->sync_wr);
    if (a->vforked) {
        /* The supervisor is suspended until we exec (there is no go-ahead byte): if it died
         * before the prctl above, no write end of the sync pipe is left once ours is closed,
         * and poll sees the hang-up. */
        struct pollfd pfd = {.fd = a->sync_fd, .events = POLLIN};
        if (poll(&pfd, 1, 0) != 0)
            _exit(127);
    } else if (a->nidmap) {
        if (child_recv_fds(a->sync_fd, fds + CHILD_NFDS, a->nidmap) != 1)
            _exit(127);
        if (nfd == CHILD_NFDS - 1)
            fds[nfd++] = -1;     /* no seccomp program: fd 6 stays closed */
        nfd += a->nidmap;
    }
    if (!a->vforked && !a->go_in_init && (!a->nidmap || req->defer_go)) {
        /* The go-ahead (after the idmapped mounts, defer_go's own byte). */
        char go = 0;
        ssize_t n;
        do
            n = read(a->sync_fd, &go, 1);
        while (n < 0 && errno == EINTR);
        if (n != 1)
            _exit(127);   /* the supervisor died or gave up on us: nobody to report to */
    }
    if (req->join_netns_fd >= 0 && syscall(SYS_setns, req->join_netns_fd, CLONE_NEWNET) < 0)
        child_report(evfd, "joining the network namespace of network = service:", errno);
    /* In a user namespace (its maps written now): become its root, whose host uid is the
     * map's, so that exec keeps init's capabilities there. A change of ids clears the
     * parent-death signal: set again (if the supervisor dies in between, the next one
     * clears its cgroups, as after any crash). */
    if (req->spec->namespaces & CR_NS_USER) {
        if (syscall(SYS_setresgid, 0, 0, 0) < 0 || syscall(SYS_setgroups, 0, NULL) < 0 ||
            syscall(SYS_setresuid, 0, 0, 0) < 0)
            child_report(evfd, "becoming root of its user namespace", errno);
        if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
            child_report(evfd, "prctl(PR_SET_PDEATHSIG)", errno);
    }
    /* v1: join the cgroup ourselves, while single-threaded (see cr_cg_self_attach_open). */
    for (int i = 0; i < a->ncg; i++)
        if (syscall(SYS_write, a->cg_fds[i], "0", 1) != 1)
            child_report(evfd, "joining its cgroup", errno);

    if (a->go_in_init) {   /* the go-ahead's read end, for init: fd 7 (no idmaps here) */
        if (nfd == CHILD_NFDS - 1)
            fds[nfd++] = -1;
        fds[nfd++] = a->sync_fd;
    }
    if (child_place_fds(fds, nfd) < 0)
        child_report(evfd, "arranging fds", errno);
    evfd = CHILD_EVENTS_FD;
    /* init is executed through fd 5, which must not survive into init itself. */
    if (syscall(SYS_fcntl, CHILD_INIT_FD, F_SETFD, FD_CLOEXEC) < 0)
        child_report(evfd, "fcntl", errno);
    if (syscall(SYS_close_range, (unsigned)nfd, ~0U, 0) < 0) {
        for (int fd = nfd; fd < 1024; fd++)
            syscall(SYS_close, fd);
    }
    /* The limit the supervisor was started with, for init and the workload: only now that
     * the fds are in place, as the supervisor's own table may hold fds above it (a copy of
     * it could not be arranged under the lower limit). */
    if (req->nofile)
        setrlimit(RLIMIT_NOFILE, req->nofile);
    _Static_assert(CHILD_NFDS == 7, "init's --go-fd below");
    char *argv[] = {"init", "--spec-fd", "3", "--events-fd", "4", a->go_in_init ? "--go-fd" : NULL,
                    "7", NULL};
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

#ifndef CLOSE_RANGE_UNSHARE
#define CLOSE_RANGE_UNSHARE (1U << 1)
#endif

/* Low fd numbers held (on /dev/null) for a vforked child's fds, so that it can take a new fd
 * table of only those (CLOSE_RANGE_UNSHARE) rather than copy and close every pipe of every
 * service: that cost grew with the number of services. */
#define NSLOTS 16
static int slot_fd[NSLOTS], slot_ph = -1, nslots;

void cr_spawn_reserve_fds(void)
{
    if (nslots)
        return;
    slot_ph = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (slot_ph < 0)
        return;
    for (int i = 0; i < NSLOTS; i++) {
        slot_fd[i] = fcntl(slot_ph, F_DUPFD_CLOEXEC, 3);
        if (slot_fd[i] < 0) {
            while (i--)
                close(slot_fd[i]);
            close(slot_ph);
            slot_ph = -1;
            return;
        }
    }
    nslots = NSLOTS;
}

/* Moves every fd the child uses that is not below the slots into a slot; returns the cut (1 +
 * the highest slot) or 0 when not worth it (a small table: the plain copy is cheap). */
static unsigned use_slots(struct child_args *a, int *used)
{
    int *v[CHILD_NFDS + 2 + 8];
    int n = 0, top = 0, cut = 0;
    for (int i = 0; i < a->nfd; i++)
        v[n++] = &a->fd[i];
    v[n++] = &a->sync_fd;
    v[n++] = &a->sync_wr;
    for (int i = 0; i < a->ncg; i++)
        v[n++] = &a->cg_fds[i];
    for (int i = 0; i < n; i++)
        top = *v[i] > top ? *v[i] : top;
    for (int i = 0; i < nslots; i++)
        cut = slot_fd[i] >= cut ? slot_fd[i] + 1 : cut;
    *used = 0;
    if (!nslots || top < 64 || n > nslots)
        return 0;
    for (int i = 0; i < n; i++) {
        if (*v[i] < cut)
            continue;
        if (dup3(*v[i], slot_fd[*used], O_CLOEXEC) < 0)
            return 0;           /* the fds are unchanged: the plain copy */
        *v[i] = slot_fd[(*used)++];
    }
    return (unsigned)cut;
}

/* The slots back on /dev/null (not holding a pipe end open). */
static void free_slots(int used)
{
    for (int i = 0; i < used; i++)
        dup3(slot_ph, slot_fd[i], O_CLOEXEC);
}

/* The vforked child's stack (one spawn at a time: the loop is single-threaded, and the
 * supervisor waits in clone until the child has exec'd or exited). */
static char vfork_stack[256 * 1024] __attribute__((aligned(64)));

CHILD_SIDE static int child_vfork_main(void *arg)
{
    child_main(arg);
}

/* posix_spawn's way (CLONE_VM|CLONE_VFORK): nothing of the supervisor's memory is copied or
 * made copy-on-write, which a fork pays per page of the supervisor (tens of MB with 1,000
 * services: fork time grew with their number). */
static pid_t vfork_child(struct child_args *a, uint64_t ns, int *pidfd)
{
    int used;
    a->unshare_cut = use_slots(a, &used);
    pid_t pid = clone(child_vfork_main, vfork_stack + sizeof vfork_stack,
                      CLONE_VM | CLONE_VFORK | CLONE_PIDFD | (a->unshare_cut ? CLONE_FILES : 0) |
                      (int)ns | SIGCHLD, a, pidfd);
    int e = errno;
    free_slots(used);
    errno = e;
    return pid;
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

static int write_proc(pid_t pid, const char *file, const char *text, char *err, size_t errlen)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, file);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    ssize_t n = -1;
    if (fd >= 0) {
        n = write(fd, text, strlen(text));
        int e = errno;
        close(fd);
        errno = e;
    }
    if (n == (ssize_t)strlen(text))
        return 0;
    int e = errno ? errno : EIO;
    snprintf(err, errlen, "writing %s: %s", file, strerror(e));
    return -e;
}

/* The user namespace's maps, by us (root outside it), while the child waits for its byte. */
static int write_id_maps(pid_t pid, const struct cr_spawn_req *req, char *err, size_t errlen)
{
    if (!req->uid_map || !req->gid_map) {
        snprintf(err, errlen, "user namespace without uid_map and gid_map");
        return -EINVAL;
    }
    int r = write_proc(pid, "uid_map", req->uid_map, err, errlen);
    return r < 0 ? r : write_proc(pid, "gid_map", req->gid_map, err, errlen);
}

/* The go-ahead byte with the idmapped mounts, made now that the user namespace has its maps
 * (idmap.c). */
static int send_idmapped(pid_t pid, const struct cr_spec *spec, int sock, bool *root_plain,
                         char *err, size_t errlen)
{
    int fds[CR_IDMAP_MAX];
    int n = cr_idmap_mounts(pid, spec, fds, root_plain, err, errlen);
    if (n < 0)
        return n;
    union {
        char buf[CMSG_SPACE(sizeof(int) * CR_IDMAP_MAX)];
        struct cmsghdr align;
    } u;
    memset(&u, 0, sizeof u);
    struct iovec iov = {.iov_base = "g", .iov_len = 1};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                        .msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)n)};
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)n);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)n);
    ssize_t w;
    while ((w = sendmsg(sock, &mh, MSG_NOSIGNAL)) < 0 && errno == EINTR)
        ;
    int e = errno;
    for (int i = 0; i < n; i++)
        close(fds[i]);
    if (w == 1)
        return 0;
    snprintf(err, errlen, "passing the idmapped mounts: %s", strerror(e));
    return -e;
}

/* The kernel's own list: SigIgn in /proc/self/status, bit s-1 for signal s. One read where
 * asking each of 64 signals took 64 syscalls (~80 us for a `run`, which starts one
 * container). false without /proc: the caller asks each. */
static bool sig_ign_of_status(uint64_t *mask)
{
    char buf[4096];
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
    if (fd >= 0)
        close(fd);
    if (n <= 0)
        return false;
    buf[n] = 0;
    const char *p = strstr(buf, "\nSigIgn:");
    char *end;
    if (!p)
        return false;
    errno = 0;
    unsigned long long v = strtoull(p + 8, &end, 16);
    if (errno || end == p + 8 || *end != '\n')
        return false;
    *mask = v;
    return true;
}

/* The signals (bit s-1) ignored in the supervisor, looked up at its first start of a
 * container: SIGPIPE, and those it inherited ignored. Nothing here ignores one later. */
static uint64_t ignored_signals(void)
{
    static uint64_t mask;
    static bool known;
    if (!known && !(known = sig_ign_of_status(&mask))) {
        for (int s = 1; s < 65; s++) {
            struct ksigaction cur;
            if (syscall(SYS_rt_sigaction, s, NULL, &cur, sizeof cur.mask) == 0 &&
                cur.handler == SIG_IGN)
                mask |= 1ULL << (s - 1);
        }
        known = true;
    }
    return mask;
}

int cr_spawn(const struct cr_spawn_req *req, struct cr_spawned *out, char *err, size_t errlen)
{
    CR_AUTOFD int spec_fd = spec_memfd(req->spec, err, errlen);
    if (spec_fd < 0)
        return spec_fd;
    /* The child waits for a byte on sync[0]; with idmapped mounts they come with it, so then
     * the channel is a socket (SCM_RIGHTS). */
    int nidmap = (int)cr_spec_nidmap(req->spec), sync[2];
    if (nidmap > CR_IDMAP_MAX || (nidmap && !(req->spec->namespaces & CR_NS_USER))) {
        snprintf(err, errlen, "idmapped mounts need a user namespace (and at most %d)",
                 CR_IDMAP_MAX);
        return -EINVAL;
    }
    if (nidmap ? socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sync) < 0
               : pipe2(sync, O_CLOEXEC) < 0) {
        int e = errno;
        snprintf(err, errlen, "pipe: %s", strerror(e));
        return -e;
    }
    CR_AUTOFD int sync_rd = sync[0];   /* the child's end */
    CR_AUTOFD int sync_wr = sync[1];
    struct child_args a = {.req = req, .spec_fd = spec_fd, .sync_fd = sync_rd,
                           .fd = {req->stdio[0], req->stdio[1], req->stdio[2], spec_fd,
                                  req->events_fd, req->init_fd, req->seccomp_fd},
                           .nfd = req->seccomp_fd >= 0 ? CHILD_NFDS : CHILD_NFDS - 1,
                           .nidmap = nidmap};
    a.ncg = cr_cg_self_attach_open(req->cg, a.cg_fds, 8, err, errlen);
    if (a.ncg < 0)
        return a.ncg;
    CR_AUTOFD int pidfd = -1;
    bool into = false;
    out->rootfs_plain = false;
    /* Only the pid (and user) namespace here: init creates the others itself (init/setup.c),
     * in parallel with our next start rather than inside our clone. */
    uint64_t ns = req->spec->namespaces & (uint64_t)(CR_NS_PID | CR_NS_USER);
    if (req->new_netns)
        ns |= CR_NS_NET;          /* the caller sets it up (defer_go) */
    /* v1 (the child joins its cgroup itself): no need to wait for the child's clone. A user
     * namespace's maps are written while the child waits (before its exec, so that init keeps
     * its capabilities in the namespace): no vfork then. */
    /* defer_go without a user namespace or idmapped mounts: init waits for the go-ahead
     * itself (--go-fd), after its exec, so the child need not wait as a copy of us. */
    a.go_in_init = req->defer_go && !(ns & CR_NS_USER) && !nidmap;
    a.vforked = a.ncg > 0 && cr_cg_dirfd(req->cg) < 0 && !(ns & CR_NS_USER) &&
                (!req->defer_go || a.go_in_init) && req->join_netns_fd < 0;
    a.sync_wr = sync_wr;
    a.ignored = ignored_signals();
    int cg_fds[8];
    memcpy(cg_fds, a.cg_fds, sizeof cg_fds);   /* vfork_child may point a's at the slots */
    /* Every signal (by the kernel's numbering: libc's sigfillset leaves out its own) stays
     * blocked from here until the child's exec: no handler of the supervisor runs on the
     * child's side. */
    uint64_t all = ~0ULL, old;
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, &old, sizeof all);
    pid_t pid = a.vforked ? vfork_child(&a, ns, &pidfd)
                          : clone_child(ns, cr_cg_dirfd(req->cg), &pidfd, &into);
    if (pid == 0)
        child_main(&a);
    int e = errno;
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &old, NULL, sizeof old);
    cr_closep(&sync_rd);   /* now: the child's EOF must not wait for our return */
    for (int i = 0; i < a.ncg; i++)
        close(cg_fds[i]);
    if (pid < 0 && e == EPERM && (ns & (CR_NS_PID | CR_NS_USER))) {
        /* An unprivileged container (Docker's default): say what is missing. */
        snprintf(err, errlen, "creating its %s namespace was refused (EPERM): the supervisor "
                 "lacks CAP_SYS_ADMIN here (in a container: --privileged, or --cap-add "
                 "SYS_ADMIN with a seccomp profile that allows it); or leave %s out of "
                 "namespaces", ns & CR_NS_USER ? "user" : "pid", ns & CR_NS_USER ? "user"
                                                                             : "pid");
        close(sync[1]);
        return -e;
    }
    if (pid < 0) {
        snprintf(err, errlen, "%s: %s", a.vforked ? "clone" : "clone3", strerror(e));
        return -e;
    }
    /* Not born in the cgroup and not joining it itself (v2 without CLONE_INTO_CGROUP): move
     * it there before it may exec (it waits for our byte). Then a user namespace's maps. */
    if (!a.vforked) {
        char cgerr[256];
        int r = !into && a.ncg == 0 ? cr_cg_attach(req->cg, pid, cgerr, sizeof cgerr) : 0;
        if (r == 0 && (ns & CR_NS_USER))
            r = write_id_maps(pid, req, cgerr, sizeof cgerr);
        if (r == 0 && nidmap)
            r = send_idmapped(pid, req->spec, sync_wr, &out->rootfs_plain, cgerr, sizeof cgerr);
        if (r < 0) {
            snprintf(err, errlen, "%s", cgerr);
            cr_closep(&sync_wr);   /* EOF: the child exits without running anything */
            siginfo_t si;
            /* It exits at once (it only waited for us); collect it so no zombie stays. */
            while (waitid((idtype_t)P_PIDFD, (id_t)pidfd, &si, WEXITED) < 0 && errno == EINTR)
                ;
            return r;
        }
    }
    /* The go-ahead: one byte now (with idmapped mounts, send_idmapped sent it with them),
     * or, with defer_go, the write end for the caller (a second byte after the idmapped
     * mounts' one). */
    out->go_fd = -1;
    if (req->defer_go && (!a.vforked || a.go_in_init)) {
        out->go_fd = cr_steal_fd(&sync_wr);
    } else {
        ssize_t w = 0;
        while (!a.vforked && !nidmap && (w = write(sync_wr, "g", 1)) < 0 && errno == EINTR)
            ;
        (void)w;
    }
    out->pid = pid;
    out->pidfd = cr_steal_fd(&pidfd);
    out->into_cgroup = into;
    return 0;
}
