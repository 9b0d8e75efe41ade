/* probe: the escape suite's attacker. Run as the workload of a real container, it tries one
 * thing an attacker would and prints one line:
 *   BLOCKED <detail>   the container stopped it
 *   EXPOSED <detail>   it worked (or got past every protection to the kernel's own checks)
 *   ABSENT <detail>    this kernel does not have it (no verdict possible)
 * Every probe is non-destructive: files are opened for writing but never written, time and
 * module calls carry arguments the kernel rejects only after its permission checks, a
 * namespace made or a mount made is the probe's own (inside the container) and undone.
 *
 * usage: probe NAME [ARG]        probe list   prints the names */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static int verdict(const char *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int verdict(const char *v, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    printf("%s %s\n", v, buf);
    fflush(stdout);
    return 0;
}

/* A call that fails with EPERM/EACCES was stopped; ENOSYS from a kernel without the call is
 * ABSENT unless seccomp is what said it (seccomp_enosys: the filter answers ENOSYS). */
static int judge(const char *what, long r, int e)
{
    if (r >= 0)
        return verdict("EXPOSED", "%s succeeded", what);
    if (e == EPERM || e == EACCES)
        return verdict("BLOCKED", "%s: %s", what, strerror(e));
    if (e == ENOSYS)
        return verdict("ABSENT", "%s: %s", what, strerror(e));
    return verdict("EXPOSED", "%s reached the kernel's own checks: %s", what, strerror(e));
}

static uint64_t status_hex(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    uint64_t v = 0;
    size_t n = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, n) && line[n] == ':')
            v = strtoull(line + n + 1, NULL, 16);
    if (f)
        fclose(f);
    return v;
}

/* ---- capabilities and privileges ------------------------------------------------------------ */

static int p_caps(const char *arg)
{
    /* SYS_ADMIN 21, SYS_MODULE 16, SYS_RAWIO 17, DAC_READ_SEARCH 2, SYS_TIME 25, BPF 39,
     * SYS_PTRACE 19, NET_ADMIN 12, MKNOD 27 */
    static const int bad[] = {21, 16, 17, 2, 25, 39, 19, 12, 27};
    uint64_t bnd = status_hex("CapBnd"), eff = status_hex("CapEff");
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if ((bnd | eff) & (1ULL << bad[i]))
            return verdict("EXPOSED", "capability %d in CapBnd %016llx / CapEff %016llx", bad[i],
                           (unsigned long long)bnd, (unsigned long long)eff);
    return verdict("BLOCKED", "CapBnd %016llx CapEff %016llx", (unsigned long long)bnd,
                   (unsigned long long)eff);
}

/* Executes ARG, a setuid-root copy of this probe, which reports its effective uid. */
static int p_setuid(const char *arg)
{
    if (getuid() == 0)
        return verdict("ABSENT", "runs as root: nothing to gain");
    char *argv[] = {(char *)arg, "euid", NULL};
    execv(arg, argv);
    return verdict("ABSENT", "exec %s: %s", arg, strerror(errno));
}

static int p_euid(const char *arg)
{
    return geteuid() == 0 ? verdict("EXPOSED", "setuid binary ran with euid 0")
                          : verdict("BLOCKED", "setuid binary ran with euid %d", (int)geteuid());
}

/* ---- system calls ----------------------------------------------------------------------------- */

static int p_keyctl(const char *arg)
{
    long r = syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -4 /* user keyring */, 0);
    return judge("keyctl(GET_KEYRING_ID, user)", r, errno);
}

static int p_bpf(const char *arg)
{
    uint32_t attr[32] = {2 /* BPF_MAP_TYPE_ARRAY */, 4, 4, 1};
    long r = syscall(SYS_bpf, 0 /* BPF_MAP_CREATE */, attr, sizeof attr);
    int e = errno;
    if (r >= 0)
        close((int)r);
    return judge("bpf(MAP_CREATE)", r, e);
}

static int p_perf(const char *arg)
{
    uint32_t attr[32] = {0};
    attr[0] = 1;                          /* PERF_TYPE_SOFTWARE */
    attr[1] = 128;                        /* size */
    /* config (u64 at offset 8) = 0: PERF_COUNT_SW_CPU_CLOCK; disabled | exclude_kernel |
     * exclude_hv (flags u64 at offset 40): bits 0, 5, 6 */
    attr[10] = 1u | (1u << 5) | (1u << 6);
    long r = syscall(SYS_perf_event_open, attr, 0, -1, -1, 0);
    int e = errno;
    if (r >= 0)
        close((int)r);
    return judge("perf_event_open(sw cpu-clock, self)", r, e);
}

/* "shocker": a handle to inode 2 (the root of an ext4 filesystem) opened against the
 * container's root. Past the permission check it either opens the host filesystem's root or
 * fails with ESTALE: either way the call was reachable. */
static int p_open_by_handle(const char *arg)
{
    struct {
        unsigned int bytes;
        int type;
        uint32_t ino, gen;
    } h = {8, 1 /* FILEID_INO32_GEN */, 2, 0};
    int root = open("/", O_RDONLY | O_DIRECTORY);
    long r = syscall(SYS_open_by_handle_at, root, &h, O_RDONLY);
    int e = errno;
    if (r >= 0) {
        struct stat a, b;
        fstat((int)r, &a);
        fstat(root, &b);
        close((int)r);
        close(root);
        return verdict("EXPOSED", "open_by_handle_at opened inode 2 (%s the container's root)",
                       a.st_ino == b.st_ino && a.st_dev == b.st_dev ? "which is" : "not");
    }
    close(root);
    return judge("open_by_handle_at(ino 2)", r, e);
}

static int p_init_module(const char *arg)
{
    long r = syscall(SYS_init_module, NULL, 0, "");
    return judge("init_module(empty)", r, errno);
}

static int p_kexec(const char *arg)
{
    long r = syscall(SYS_kexec_load, 0, 0, NULL, 0xffff0000UL);
    return judge("kexec_load(bad flags)", r, errno);
}

/* ADJ_TICK with tick 0: refused as invalid only after the CAP_SYS_TIME check. */
static int p_clock(const char *arg)
{
    long tx[26] = {0};
    unsigned *modes = (unsigned *)tx;
    *modes = 0x4000;                      /* ADJ_TICK; tick (a long at index 13) stays 0 */
    long r = syscall(SYS_clock_adjtime, 0 /* CLOCK_REALTIME */, tx);
    return judge("clock_adjtime(ADJ_TICK 0)", r, errno);
}

static int p_reboot(const char *arg)
{
    long r = syscall(SYS_reboot, 0xfee1dead, 1, 0 /* bad magic2 */, NULL);
    return judge("reboot(bad magic)", r, errno);
}

static int p_swapon(const char *arg)
{
    long r = syscall(SYS_swapon, "/nonexistent-corral-probe", 0);
    return judge("swapon(missing file)", r, errno);
}

static int p_syslog(const char *arg)
{
    long r = syscall(SYS_syslog, 10 /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0);
    return judge("syslog(SIZE_BUFFER)", r, errno);
}

static int p_acct(const char *arg)
{
    long r = syscall(SYS_acct, "/nonexistent-corral-probe");
    return judge("acct(missing file)", r, errno);
}

static int p_ioperm(const char *arg)
{
    long r = syscall(SYS_ioperm, 0x80, 1, 1);
    int e = errno;
    if (r == 0)
        syscall(SYS_ioperm, 0x80, 1, 0);
    return judge("ioperm(0x80)", r, e);
}

static int p_io_uring(const char *arg)
{
    uint32_t params[30] = {0};
    long r = syscall(SYS_io_uring_setup, 1, params);
    int e = errno;
    if (r >= 0)
        close((int)r);
    return judge("io_uring_setup", r, e);
}

static int p_userfaultfd(const char *arg)
{
    long r = syscall(SYS_userfaultfd, O_CLOEXEC | 1 /* UFFD_USER_MODE_ONLY */);
    int e = errno;
    if (r >= 0)
        close((int)r);
    return judge("userfaultfd", r, e);
}

/* ---- mounts and namespaces ------------------------------------------------------------------ */

static int p_mount(const char *arg)
{
    long r = mount("corral-probe", "/mnt", "tmpfs", MS_RDONLY, "size=4k");
    int e = errno;
    if (r == 0)
        umount2("/mnt", MNT_DETACH);
    return judge("mount tmpfs on /mnt", r, e);
}

/* umount of something that is not a mount point: EINVAL, but only once permitted. */
static int p_umount(const char *arg)
{
    long r = umount2("/bin", 0);
    return judge("umount2(/bin)", r, errno);
}

static int p_sys_remount(const char *arg)
{
    long r = mount(NULL, "/sys", NULL, MS_REMOUNT | MS_BIND, NULL);
    int e = errno;
    if (r == 0) {
        mount(NULL, "/sys", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL);
        return verdict("EXPOSED", "/sys remounted read-write");
    }
    return judge("remount /sys read-write", r, e);
}

static int p_pivot_root(const char *arg)
{
    long r = syscall(SYS_pivot_root, "/nonexistent-corral-a", "/nonexistent-corral-b");
    return judge("pivot_root(missing)", r, errno);
}

static int p_unshare(const char *arg)
{
    long r = unshare(CLONE_NEWUTS);
    return judge("unshare(CLONE_NEWUTS)", r, errno);
}

static int p_setns(const char *arg)
{
    int fd = open("/proc/self/ns/uts", O_RDONLY);
    long r = syscall(SYS_setns, fd, CLONE_NEWUTS);
    int e = errno;
    close(fd);
    return judge("setns(own uts)", r, e);
}

static int p_clone_ns(const char *arg)
{
    long r = syscall(SYS_clone, CLONE_NEWNS | SIGCHLD, NULL, NULL, NULL, NULL);
    int e = errno;
    if (r == 0)
        _exit(0);
    if (r > 0)
        waitpid((pid_t)r, NULL, 0);
    return judge("clone(CLONE_NEWNS)", r, e);
}

static int p_clone3_ns(const char *arg)
{
    uint64_t ca[11] = {CLONE_NEWNS, 0, 0, 0, SIGCHLD};
    long r = syscall(SYS_clone3, ca, sizeof ca);
    int e = errno;
    if (r == 0)
        _exit(0);
    if (r > 0)
        waitpid((pid_t)r, NULL, 0);
    /* The filter answers ENOSYS (libc then falls back to clone, which it can check). */
    if (r < 0 && e == ENOSYS)
        return verdict("BLOCKED", "clone3: %s", strerror(e));
    return judge("clone3(CLONE_NEWNS)", r, e);
}

/* mount cgroupfs, then open a limit at its root for writing (the container's own limit in a
 * hierarchy it joined; the host's root where it did not). */
static int p_cgroup_mount(const char *arg)
{
    const char *fs = arg && *arg ? arg : "pids";
    long r = !strcmp(fs, "cgroup2") ? mount("corral-probe", "/mnt", "cgroup2", 0, NULL)
                                     : mount("corral-probe", "/mnt", "cgroup", 0, fs);
    if (r < 0)
        return judge("mount cgroupfs", r, errno);
    int fd = open("/mnt/release_agent", O_WRONLY);
    if (fd < 0)
        fd = open("/mnt/pids.max", O_WRONLY);
    int e = errno;
    if (fd >= 0)
        close(fd);
    umount2("/mnt", MNT_DETACH);
    return fd >= 0 ? verdict("EXPOSED", "cgroupfs mounted, a root file opened for writing")
                   : verdict("EXPOSED", "cgroupfs mounted (root files: %s)", strerror(e));
}

/* Opens a cgroup control file for writing (not written). */
static int p_cgroup_write(const char *arg)
{
    int fd = open(arg, O_WRONLY);
    int e = errno;
    if (fd >= 0) {
        close(fd);
        return verdict("EXPOSED", "%s open for writing", arg);
    }
    if (e == ENOENT)
        return verdict("BLOCKED", "%s: not visible", arg);
    return judge(arg, fd, e);
}

/* ---- files ----------------------------------------------------------------------------------- */

/* Opened for writing, never written. */
static int p_write_open(const char *path)
{
    int fd = open(path, O_WRONLY);
    int e = errno;
    if (fd >= 0) {
        close(fd);
        return verdict("EXPOSED", "%s open for writing", path);
    }
    if (e == ENOENT && !strncmp(path, "/proc/", 6))
        return verdict("ABSENT", "%s: not on this kernel", path);
    if (e == EROFS || e == EPERM || e == EACCES || e == ENOENT)
        return verdict("BLOCKED", "%s: %s", path, strerror(e));
    return verdict("EXPOSED", "%s: %s", path, strerror(e));
}

static int p_core_pattern(const char *arg)
{
    return p_write_open("/proc/sys/kernel/core_pattern");
}

static int p_sysrq(const char *arg)
{
    return p_write_open("/proc/sysrq-trigger");
}

/* Reads a byte: data means exposed; masked files read empty. */
static int p_read(const char *path)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT && access("/proc/self", F_OK) == 0 && !strncmp(path, "/proc/", 6))
            return verdict("ABSENT", "%s: not on this kernel", path);
        return verdict("BLOCKED", "%s: %s", path, strerror(errno));
    }
    static char buf[8192];       /* /dev/kmsg wants room for a whole record */
    ssize_t n = read(fd, buf, sizeof buf);
    int e = errno;
    close(fd);
    if (n > 0 || (n < 0 && e == EAGAIN))
        return verdict("EXPOSED", "%s readable", path);
    return verdict("BLOCKED", "%s: %s", path, n == 0 ? "empty" : strerror(e));
}

static int p_kcore(const char *a) { return p_read("/proc/kcore"); }
static int p_keys(const char *a) { return p_read("/proc/keys"); }
static int p_timer_list(const char *a) { return p_read("/proc/timer_list"); }
/* /dev/kmsg: the container's /dev has none, so an attacker makes one. */
static int p_mknod(const char *arg);
static int p_kmsg(const char *a)
{
    return access("/dev/kmsg", F_OK) == 0 ? p_read("/dev/kmsg") : p_mknod("c:1:11");
    /* (p_mknod with an argument opens read-only: reading the log is what this probe tries) */
}

/* mknod a device node, then open it (never read or written): ARG "c:MAJ:MIN" or "b:MAJ:MIN",
 * by default /dev/kmsg (c 1:11) opened write-only (which needs no CAP_SYSLOG), a node no
 * container gets unless given it. */
static int p_mknod(const char *arg)
{
    unsigned maj = 1, min = 11;
    int mode = arg && *arg ? O_RDONLY : O_WRONLY;
    mode_t type = S_IFCHR;
    char t = 'c';
    if (arg && *arg && sscanf(arg, "%c:%u:%u", &t, &maj, &min) == 3)
        type = t == 'c' ? S_IFCHR : S_IFBLK;
    const char *node = "/dev/corral-probe-node";
    unlink(node);
    if (mknod(node, type | 0600, makedev(maj, min)) < 0)
        return judge("mknod", -1, errno);
    int fd = open(node, mode | O_NONBLOCK);
    int e = errno;
    unlink(node);
    /* No driver behind the number (ENODEV, ENXIO): the open got past every permission check. */
    if (fd < 0 && (e == ENODEV || e == ENXIO))
        return verdict("EXPOSED", "mknod %c %u:%u, and open reached the driver: %s",
                       type == S_IFBLK ? 'b' : 'c', maj, min, strerror(e));
    if (fd < 0)
        return verdict("BLOCKED", "mknod %c %u:%u worked, open: %s", type == S_IFBLK ? 'b' : 'c',
                       maj, min, strerror(e));
    close(fd);
    return verdict("EXPOSED", "mknod %c %u:%u and open", type == S_IFBLK ? 'b' : 'c', maj, min);
}

/* ---- other processes' memory, kernel pointers, address-space layout ---------------------- */

/* quotactl(Q_SYNC, NULL) needs no privilege of its own: only the filter stops it. */
static int p_quotactl(const char *arg)
{
    long r = syscall(SYS_quotactl, 0x800001 /* QCMD(Q_SYNC, USRQUOTA) */, NULL, 0, NULL);
    return judge("quotactl(Q_SYNC)", r, errno);
}

/* ADDR_NO_RANDOMIZE turns off ASLR for what this process execs next (Docker allows only the
 * plain personalities). The probe is a child of its own: nothing to restore. */
static int p_personality(const char *arg)
{
    long r = syscall(SYS_personality, 0x0040000 /* ADDR_NO_RANDOMIZE */);
    int e = errno;
    if (r >= 0 && (syscall(SYS_personality, 0xffffffffUL) & 0x0040000) == 0)
        return verdict("BLOCKED", "personality(ADDR_NO_RANDOMIZE) returned but did not stick");
    return judge("personality(ADDR_NO_RANDOMIZE)", r, e);
}

/* Reading another process's memory without ptrace: a child of ours, same uid. */
static int p_process_vm(const char *arg)
{
    static char secret[16] = "secret";
    int pfd[2];
    if (pipe(pfd) < 0)
        return verdict("ERROR", "pipe: %s", strerror(errno));
    pid_t c = fork();
    if (c == 0) {
        close(pfd[1]);
        char x;
        (void)!read(pfd[0], &x, 1);
        _exit(0);
    }
    char buf[16] = "";
    struct iovec l = {buf, sizeof buf}, rm = {(void *)secret, sizeof buf};
    long r = syscall(SYS_process_vm_readv, c, &l, 1, &rm, 1, 0);
    int e = errno;
    close(pfd[1]);
    close(pfd[0]);
    waitpid(c, NULL, 0);
    if (r > 0 && strcmp(buf, "secret"))
        return verdict("BLOCKED", "process_vm_readv read something else");
    return judge("process_vm_readv(child)", r, e);
}

/* kcmp orders kernel objects by address: a pointer leak (and checkpoint/restore's tool). */
static int p_kcmp(const char *arg)
{
    long r = syscall(SYS_kcmp, getpid(), getpid(), 0 /* KCMP_FILE */, 1, 1);
    return judge("kcmp(self, FILE)", r, errno);
}

/* NUMA placement calls: Docker allows them only with CAP_SYS_NICE. */
static int p_mempolicy(const char *arg)
{
    int mode = 0;
    long r = syscall(SYS_get_mempolicy, &mode, NULL, 0, NULL, 0);
    return judge("get_mempolicy", r, errno);
}

/* ---- init -------------------------------------------------------------------------------------- */

static int p_ptrace_init(const char *arg)
{
    long r = syscall(SYS_ptrace, 0x4206 /* PTRACE_SEIZE */, 1, NULL, NULL);
    int e = errno;
    if (r == 0)
        syscall(SYS_ptrace, 17 /* PTRACE_DETACH */, 1, NULL, NULL);
    return judge("ptrace(SEIZE, 1)", r, e);
}

static int p_init_fds(const char *arg)
{
    int fd = open("/proc/1/fd", O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return judge("open /proc/1/fd", -1, errno);
    char buf[512];
    long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
    int e = errno;
    close(fd);
    if (n < 0)
        return judge("list /proc/1/fd", n, e);
    /* Listing shows numbers only (the directory belongs to root, as the workload is); what
     * matters is reopening one: the events pipe, to forge init's reports. */
    int w = open("/proc/1/fd/4", O_WRONLY);
    e = errno;
    if (w >= 0) {
        close(w);
        return verdict("EXPOSED", "init's fd 4 (events) reopened for writing");
    }
    return judge("reopen /proc/1/fd/4", -1, e);
}

/* ---- the supervisor, and limits ----------------------------------------------------------- */

static int p_control_socket(const char *arg)
{
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", arg ? arg : "/run/corral/control.sock");
    int r = connect(s, (struct sockaddr *)&a, sizeof a);
    int e = errno;
    close(s);
    if (r == 0)
        return verdict("EXPOSED", "connected to %s", a.sun_path);
    return verdict("BLOCKED", "%s: %s", a.sun_path, strerror(e));
}

/* Forks sleepers until refused or ARG (default 3000) exist, then ends them all. */
static int p_fork_bomb(const char *arg)
{
    int limit = arg && *arg ? atoi(arg) : 3000;
    pid_t *kids = calloc((size_t)limit, sizeof *kids);
    int n = 0, e = 0;
    while (kids && n < limit) {
        pid_t p = fork();
        if (p == 0) {
            pause();
            _exit(0);
        }
        if (p < 0) {
            e = errno;
            break;
        }
        kids[n++] = p;
    }
    for (int i = 0; i < n; i++)
        kill(kids[i], SIGKILL);
    for (int i = 0; i < n; i++)
        waitpid(kids[i], NULL, 0);
    free(kids);
    if (n >= limit)
        return verdict("EXPOSED", "%d processes forked, no limit reached", n);
    return verdict("BLOCKED", "fork refused after %d: %s", n, strerror(e));
}

static const struct probe {
    const char *name;
    int (*fn)(const char *);
} probes[] = {
    {"caps", p_caps}, {"setuid", p_setuid}, {"euid", p_euid},
    {"keyctl", p_keyctl}, {"bpf", p_bpf}, {"perf_event_open", p_perf},
    {"open_by_handle_at", p_open_by_handle}, {"init_module", p_init_module},
    {"kexec_load", p_kexec}, {"clock", p_clock}, {"reboot", p_reboot}, {"swapon", p_swapon},
    {"syslog", p_syslog}, {"acct", p_acct}, {"ioperm", p_ioperm}, {"io_uring", p_io_uring},
    {"userfaultfd", p_userfaultfd}, {"mount", p_mount}, {"umount", p_umount},
    {"sys_remount", p_sys_remount}, {"pivot_root", p_pivot_root}, {"unshare", p_unshare},
    {"setns", p_setns}, {"clone_ns", p_clone_ns}, {"clone3_ns", p_clone3_ns},
    {"cgroup_mount", p_cgroup_mount}, {"cgroup_write", p_cgroup_write},
    {"core_pattern", p_core_pattern}, {"sysrq", p_sysrq}, {"kcore", p_kcore},
    {"keys", p_keys}, {"timer_list", p_timer_list}, {"kmsg", p_kmsg}, {"mknod", p_mknod},
    {"quotactl", p_quotactl}, {"personality", p_personality},
    {"process_vm", p_process_vm}, {"kcmp", p_kcmp}, {"mempolicy", p_mempolicy},
    {"ptrace_init", p_ptrace_init}, {"init_fds", p_init_fds},
    {"control_socket", p_control_socket}, {"fork_bomb", p_fork_bomb},
};

/* Every probe that takes no argument, each in a child of its own (a probe may change its own
 * process: a namespace, a seccomp denial, a crash), as "NAME: VERDICT detail" lines. */
static int run_all(void)
{
    static const char *const skip[] = {"setuid", "euid", "cgroup_write", "control_socket",
                                       "fork_bomb"};
    for (size_t i = 0; i < sizeof probes / sizeof *probes; i++) {
        bool skipped = false;
        for (size_t j = 0; j < sizeof skip / sizeof *skip; j++)
            skipped |= !strcmp(probes[i].name, skip[j]);
        if (skipped)
            continue;
        printf("%s: ", probes[i].name);
        fflush(stdout);
        pid_t p = fork();
        if (p == 0)
            _exit(probes[i].fn(NULL));
        int st = 0;
        waitpid(p, &st, 0);
        if (!WIFEXITED(st))
            printf("EXPOSED the probe died of signal %d\n", WTERMSIG(st));
        fflush(stdout);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "all"))
        return run_all();
    if (argc < 2) {
        fprintf(stderr, "usage: probe NAME [ARG] | probe list\n");
        return 2;
    }
    for (size_t i = 0; i < sizeof probes / sizeof *probes; i++) {
        if (!strcmp(argv[1], "list"))
            printf("%s\n", probes[i].name);
        else if (!strcmp(argv[1], probes[i].name))
            return probes[i].fn(argc > 2 ? argv[2] : NULL);
    }
    if (strcmp(argv[1], "list")) {
        fprintf(stderr, "probe: unknown probe %s\n", argv[1]);
        return 2;
    }
    return 0;
}
