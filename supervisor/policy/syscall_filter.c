/* seccomp profiles → BPF programs in sealed memfds (see syscall_filter.h). */
#include "policy/syscall_filter.h"
#include "policy/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef F_SEAL_SEAL
#define F_SEAL_SEAL 0x0001
#define F_SEAL_SHRINK 0x0002
#define F_SEAL_GROW 0x0004
#define F_SEAL_WRITE 0x0008
#endif
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

/* The default profile denies (EPERM) at least what Docker's default profile denies: kernel
 * keyrings, BPF and perf, file handles (the "shocker" escape), modules and kexec, clock
 * setting, every mount and namespace call, io_uring, userfaultfd, reboot, swap, the kernel
 * log, process accounting, raw port I/O, quotas, and the obsolete calls. Everything else is
 * allowed: a capability check still guards most of it (the default set holds 11). */
static const char *const denied[] = {
    "acct", "add_key", "bpf", "clock_adjtime", "clock_settime", "create_module",
    "delete_module", "fanotify_init", "finit_module", "fsconfig", "fsmount", "fsopen",
    "fspick", "get_kernel_syms", "init_module", "io_uring_enter", "io_uring_register",
    "io_uring_setup", "ioperm", "iopl", "kexec_file_load", "kexec_load", "keyctl",
    "lookup_dcookie", "mount", "mount_setattr", "move_mount", "name_to_handle_at",
    "nfsservctl", "open_by_handle_at", "open_tree", "perf_event_open", "pivot_root",
    "query_module", "quotactl", "quotactl_fd", "reboot", "request_key", "setns",
    "settimeofday", "stime", "swapoff", "swapon", "_sysctl", "sysfs", "syslog", "umount",
    "umount2", "unshare", "uselib", "userfaultfd", "ustat", "vhangup", "vm86", "vm86old",
    /* never implemented on x86, named so that a kernel that gains one does not open it */
    "afs_syscall", "getpmsg", "putpmsg", "security", "tuxcall", "vserver",
};

/* Calls Docker allows only with a capability: reaching into other processes without ptrace
 * (a debugger needs them along with ptrace: CAP_SYS_PTRACE), and NUMA memory placement
 * (CAP_SYS_NICE). Denied unless the service holds the capability. */
static const struct {
    int cap;
    const char *capname;
    const char *const names[8];
} by_cap[] = {
    {CAP_SYS_PTRACE, "CAP_SYS_PTRACE",
     {"kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev"}},
    {CAP_SYS_NICE, "CAP_SYS_NICE",
     {"get_mempolicy", "mbind", "migrate_pages", "move_pages", "set_mempolicy",
      "set_mempolicy_home_node"}},
};

unsigned cr_seccomp_variant(uint64_t caps)
{
    unsigned v = 0;
    for (size_t i = 0; i < sizeof by_cap / sizeof *by_cap; i++)
        if (caps & (1ULL << by_cap[i].cap))
            v |= 1u << i;
    return v;
}

uint64_t cr_seccomp_variant_caps(unsigned variant)
{
    uint64_t caps = 0;
    for (size_t i = 0; i < sizeof by_cap / sizeof *by_cap; i++)
        if (variant & (1u << i))
            caps |= 1ULL << by_cap[i].cap;
    return caps;
}

_Static_assert(1u << (sizeof by_cap / sizeof *by_cap) == CR_SECCOMP_VARIANTS,
               "one precompiled default program per subset of by_cap");

/* Sockets of the host-guest transport (AF_VSOCK), as Docker. */
#define CR_AF_VSOCK 40

/* personality(2): only the plain personalities Docker allows (0, PER_LINUX32, UNAME26, both,
 * and 0xffffffff, the query), so nothing can turn off address-space randomisation
 * (ADDR_NO_RANDOMIZE) or make data executable (READ_IMPLIES_EXEC) for what it execs. Written
 * as one-comparison rules, which is all libseccomp allows per argument: with bit 31 clear any
 * bit but 3 and 17 is denied; with bit 31 set any clear bit is (only 0xffffffff is left). */
static int deny_personalities(scmp_filter_ctx ctx)
{
    const uint64_t allowed = 0x0008 | 0x20000, top = 0x80000000UL;
    for (int b = 0; b < 31; b++) {
        uint64_t bit = 1ULL << b;
        int r = 0;
        if (!(bit & allowed))
            r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(personality), 1,
                                 SCMP_A0(SCMP_CMP_MASKED_EQ, bit | top, bit));
        if (r == 0)
            r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(personality), 1,
                                 SCMP_A0(SCMP_CMP_MASKED_EQ, bit | top, top));
        if (r < 0)
            return r;
    }
    return 0;
}

/* clone with any of these makes a namespace: denied, as unshare is. */
static const unsigned long ns_flags[] = {
    CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET,
    CLONE_NEWCGROUP,
};

static int deny_names(scmp_filter_ctx ctx, const char *const *names, size_t n, char *err,
                      size_t len)
{
    for (size_t i = 0; i < n; i++) {
        int nr = seccomp_syscall_resolve_name(names[i]);
        if (nr == __NR_SCMP_ERROR)
            continue;            /* unknown to this libseccomp on every architecture */
        int r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
        if (r < 0 && r != -EDOM) {
            snprintf(err, len, "seccomp rule for %s: %s", names[i], strerror(-r));
            return r;
        }
    }
    return 0;
}

static int build_default(scmp_filter_ctx ctx, uint64_t caps, char *err, size_t len)
{
    int r = deny_names(ctx, denied, sizeof denied / sizeof *denied, err, len);
    for (size_t i = 0; r == 0 && i < sizeof by_cap / sizeof *by_cap; i++) {
        size_t n = 0;
        while (n < 8 && by_cap[i].names[n])
            n++;
        if (!(caps & (1ULL << by_cap[i].cap)))
            r = deny_names(ctx, by_cap[i].names, n, err, len);
    }
    if (r < 0)
        return r;
    r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(socket), 1,
                         SCMP_A0(SCMP_CMP_EQ, CR_AF_VSOCK, 0));
    if (r < 0) {
        snprintf(err, len, "seccomp rule for socket: %s", strerror(-r));
        return r;
    }
    r = deny_personalities(ctx);
    if (r < 0) {
        snprintf(err, len, "seccomp rule for personality: %s", strerror(-r));
        return r;
    }
    for (size_t i = 0; i < sizeof ns_flags / sizeof *ns_flags; i++) {
        r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                             SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]));
        if (r < 0) {
            snprintf(err, len, "seccomp rule for clone: %s", strerror(-r));
            return r;
        }
    }
    /* clone3 passes its flags in memory, out of a filter's reach: ENOSYS makes libc fall
     * back to clone (Docker's answer too). */
    r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    if (r < 0) {
        snprintf(err, len, "seccomp rule for clone3: %s", strerror(-r));
        return r;
    }
    return 0;
}

#define CR_PROFILE_MAX (1024 * 1024)

/* A profile file's version: device, inode, size, mtime (a changed file is compiled anew). */
static void file_id(const struct stat *st, char *id, size_t idlen)
{
    snprintf(id, idlen, "%llx:%llx:%lld:%lld.%ld", (unsigned long long)st->st_dev,
             (unsigned long long)st->st_ino, (long long)st->st_size,
             (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec);
}

/* A profile file's text and version (file_id). */
static int read_profile(const char *path, char **text, size_t *tlen, char *id, size_t idlen,
                        char *err, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        int e = errno;
        snprintf(err, len, "%s: %s", path, strerror(e));
        if (fd >= 0)
            close(fd);
        return -e;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > CR_PROFILE_MAX) {
        snprintf(err, len, "%s: not a regular file of at most 1 MiB", path);
        close(fd);
        return -EINVAL;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    ssize_t n = buf ? read(fd, buf, (size_t)st.st_size) : -1;
    int e = errno;
    close(fd);
    if (n != st.st_size) {
        free(buf);
        snprintf(err, len, "%s: %s", path, n < 0 ? strerror(e) : "short read");
        return -EIO;
    }
    buf[n] = '\0';
    *text = buf;
    *tlen = (size_t)n;
    file_id(&st, id, idlen);
    return 0;
}

static int kind_of(const char *profile, char *err, size_t len)
{
    if (!profile || !strcmp(profile, "unconfined"))
        return 0;
    if (!strcmp(profile, "default") || profile[0] == '/')
        return 1;
    snprintf(err, len, "'%s' is not default, unconfined or the absolute path of a profile",
             profile);
    return -EINVAL;
}

/* The filter of profile, built (default) or read and compiled (a file); *id names the file's
 * version ("" for default). */
static int build(const char *profile, uint64_t caps, scmp_filter_ctx *out, char *id,
                 size_t idlen, char *err, size_t len)
{
    *out = NULL;
    id[0] = '\0';
    if (profile[0] == '/') {
        char *text = NULL;
        size_t tlen = 0;
        int r = read_profile(profile, &text, &tlen, id, idlen, err, len);
        if (r < 0)
            return r;
        r = cr_seccomp_json(profile, text, tlen, caps, out, err, len);
        free(text);
        return r;
    }
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx) {
        snprintf(err, len, "seccomp_init failed");
        return -ENOMEM;
    }
    cr_seccomp_tree(ctx);
    /* 32-bit and x32 programs get the same rules (otherwise they would be killed at their
     * first call, the filter's default for a foreign architecture). */
    seccomp_arch_add(ctx, SCMP_ARCH_X86);
    seccomp_arch_add(ctx, SCMP_ARCH_X32);
    int r = build_default(ctx, caps, err, len);
    if (r < 0) {
        seccomp_release(ctx);
        return r;
    }
    *out = ctx;
    return 0;
}

/* ---- the cache: one sealed memfd per profile, capability set and file version ---------------- */

static struct cached {
    char *profile;
    uint64_t caps;
    char id[96];
    int fd;
} *cache;
static size_t ncache;

static int cache_lookup(const char *profile, uint64_t caps, const char *id)
{
    for (size_t i = 0; i < ncache; i++)
        if (!strcmp(cache[i].profile, profile) && cache[i].caps == caps &&
            !strcmp(cache[i].id, id))
            return cache[i].fd;
    return -1;
}

/* Writes the program (ctx exported, or the precompiled image) into a new sealed memfd and
 * caches it. Returns the fd or -errno. */
static int cache_add(const char *profile, uint64_t caps, const char *id, scmp_filter_ctx ctx,
                     const struct cr_bpf_image *image, char *err, size_t len)
{
    int fd = memfd_create("corral-seccomp", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) {
        int e = errno;
        snprintf(err, len, "memfd_create: %s", strerror(e));
        return -e;
    }
    int r = 0;
    if (ctx)
        r = seccomp_export_bpf(ctx, fd);
    else if (write(fd, image->code, image->len) != (ssize_t)image->len)
        r = -(errno ? errno : EIO);
    if (r < 0)
        snprintf(err, len, "exporting the seccomp program: %s", strerror(-r));
    else if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
        r = -errno, snprintf(err, len, "sealing the seccomp program: %s", strerror(errno));
    struct cached *nc = r == 0 ? realloc(cache, (ncache + 1) * sizeof *nc) : NULL;
    if (nc)
        cache = nc;
    char *name = nc ? strdup(profile) : NULL;
    if (r == 0 && !name) {
        r = -ENOMEM;
        snprintf(err, len, "out of memory");
    }
    if (r < 0) {
        free(name);
        close(fd);
        return r;
    }
    cache[ncache].profile = name;
    cache[ncache].caps = caps;
    snprintf(cache[ncache].id, sizeof cache[ncache].id, "%s", id);
    cache[ncache++].fd = fd;
    return fd;
}

/* Compiles into the cache unless the same profile, caps and file version is there. */
static int compile_cached(const char *profile, uint64_t caps, char *err, size_t len)
{
    char id[96] = "";
    struct stat st;
    if (profile[0] == '/' && stat(profile, &st) == 0)
        file_id(&st, id, sizeof id);
    int fd = cache_lookup(profile, caps, id);
    if (fd >= 0)
        return fd;
    const struct cr_bpf_image *image = &cr_seccomp_builtin[cr_seccomp_variant(caps)];
    if (!strcmp(profile, "default") && image->len)
        return cache_add(profile, caps, id, NULL, image, err, len);
    scmp_filter_ctx ctx;
    int r = build(profile, caps, &ctx, id, sizeof id, err, len);
    if (r < 0)
        return r;
    fd = cache_lookup(profile, caps, id);
    if (fd < 0)
        fd = cache_add(profile, caps, id, ctx, NULL, err, len);
    seccomp_release(ctx);
    return fd;
}

void cr_seccomp_print_default(FILE *out)
{
    /* "architectures" (OCI's spelling, which Docker reads too): the same text serves as an
     * OCI config's linux.seccomp (the benchmark gives it to crun). */
    fprintf(out, "{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\",\n"
                 "  \"architectures\": [\"SCMP_ARCH_X86_64\", \"SCMP_ARCH_X86\", "
                 "\"SCMP_ARCH_X32\"],\n  \"syscalls\": [\n    {\"names\": [");
    for (size_t i = 0; i < sizeof denied / sizeof *denied; i++)
        fprintf(out, "%s\"%s\"", i ? ", " : "", denied[i]);
    fprintf(out, "],\n     \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": %d},\n", EPERM);
    for (size_t i = 0; i < sizeof by_cap / sizeof *by_cap; i++) {
        fprintf(out, "    {\"names\": [");
        for (size_t n = 0; n < 8 && by_cap[i].names[n]; n++)
            fprintf(out, "%s\"%s\"", n ? ", " : "", by_cap[i].names[n]);
        fprintf(out, "], \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": %d,\n"
                     "     \"excludes\": {\"caps\": [\"%s\"]}},\n", EPERM, by_cap[i].capname);
    }
    fprintf(out, "    {\"names\": [\"socket\"], \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": %d, "
                 "\"args\": [{\"index\": 0, \"value\": %d, \"op\": \"SCMP_CMP_EQ\"}]},\n",
            EPERM, CR_AF_VSOCK);
    /* The personality rules of deny_personalities(), one entry each. */
    const unsigned long allowed = 0x0008 | 0x20000, top = 0x80000000UL;
    for (int b = 0; b < 31; b++) {
        unsigned long bit = 1UL << b;
        for (int set = 0; set < 2; set++)
            if (set || !(bit & allowed))
                fprintf(out, "    {\"names\": [\"personality\"], \"action\": \"SCMP_ACT_ERRNO\", "
                             "\"errnoRet\": %d, \"args\": [{\"index\": 0, \"value\": %lu, "
                             "\"valueTwo\": %lu, \"op\": \"SCMP_CMP_MASKED_EQ\"}]},\n",
                        EPERM, bit | top, set ? top : bit);
    }
    for (size_t i = 0; i < sizeof ns_flags / sizeof *ns_flags; i++)
        fprintf(out, "    {\"names\": [\"clone\"], \"action\": \"SCMP_ACT_ERRNO\", "
                     "\"errnoRet\": %d, \"args\": [{\"index\": 0, \"value\": %lu, "
                     "\"valueTwo\": %lu, \"op\": \"SCMP_CMP_MASKED_EQ\"}]},\n",
                EPERM, ns_flags[i], ns_flags[i]);
    fprintf(out, "    {\"names\": [\"clone3\"], \"action\": \"SCMP_ACT_ERRNO\", "
                 "\"errnoRet\": %d}\n  ]\n}\n", ENOSYS);
}

int cr_seccomp_check(const char *profile, uint64_t caps, char *err, size_t len)
{
    int k = kind_of(profile, err, len);
    if (k <= 0 || profile[0] != '/')
        return k;
    int r = compile_cached(profile, caps, err, len);
    return r < 0 ? r : 1;
}

/* 0 when profile means a filter, else -EINVAL with the reason in err. */
static int need_filter(const char *profile, char *err, size_t len)
{
    int k = kind_of(profile, err, len);
    if (k == 0)
        snprintf(err, len, "profile %s has no filter", profile ? profile : "(none)");
    return k > 0 ? 0 : -EINVAL;
}

int cr_seccomp_fd(const char *profile, uint64_t caps, char *err, size_t len)
{
    int r = need_filter(profile, err, len);
    return r < 0 ? r : compile_cached(profile, caps, err, len);
}

int cr_seccomp_export(const char *profile, uint64_t caps, int fd, char *err, size_t len)
{
    scmp_filter_ctx ctx;
    char id[96];
    int r = need_filter(profile, err, len);
    if (r == 0)
        r = build(profile, caps, &ctx, id, sizeof id, err, len);
    if (r < 0)
        return r;
    r = seccomp_export_bpf(ctx, fd);
    if (r < 0)
        snprintf(err, len, "exporting the seccomp program: %s", strerror(-r));
    seccomp_release(ctx);
    return r;
}

void cr_seccomp_cache_free(void)
{
    for (size_t i = 0; i < ncache; i++) {
        free(cache[i].profile);
        close(cache[i].fd);
    }
    free(cache);
    cache = NULL;
    ncache = 0;
}
