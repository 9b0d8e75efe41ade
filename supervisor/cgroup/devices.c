/* Device access of a service's cgroup: deny by default, allow the few nodes every container
 * needs (/dev/null, zero, full, random, urandom, tty, ptmx and the pts), making any node with
 * mknod (opening it is what is refused), plus what the service's `device` keys pass in.
 *
 * cgroup v1: the devices controller's devices.deny / devices.allow files.
 * cgroup v2: a BPF_PROG_TYPE_CGROUP_DEVICE program attached to the service's cgroup, built
 * from raw instructions (as crun and runc do: no libbpf needed for twenty instructions). */
#include "cgroup/devices.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static const struct cr_device defaults[] = {
    {'c', -1, -1, CR_DEV_MKNOD}, {'b', -1, -1, CR_DEV_MKNOD},
    {'c', 1, 3, CR_DEV_RWM}, {'c', 1, 5, CR_DEV_RWM}, {'c', 1, 7, CR_DEV_RWM},
    {'c', 1, 8, CR_DEV_RWM}, {'c', 1, 9, CR_DEV_RWM}, {'c', 5, 0, CR_DEV_RWM},
    {'c', 5, 2, CR_DEV_RWM}, {'c', 136, -1, CR_DEV_RWM},
};
#define NDEFAULTS (sizeof defaults / sizeof *defaults)

size_t cr_cg_devices_defaults(const struct cr_device **out)
{
    *out = defaults;
    return NDEFAULTS;
}

/* "c 1:3 rwm", "b *:* m" */
static void rule_text(const struct cr_device *d, char *buf, size_t len)
{
    char maj[16] = "*", min[16] = "*", acc[4];
    size_t n = 0;
    if (d->major >= 0)
        snprintf(maj, sizeof maj, "%d", d->major);
    if (d->minor >= 0)
        snprintf(min, sizeof min, "%d", d->minor);
    if (d->access & CR_DEV_READ)
        acc[n++] = 'r';
    if (d->access & CR_DEV_WRITE)
        acc[n++] = 'w';
    if (d->access & CR_DEV_MKNOD)
        acc[n++] = 'm';
    acc[n] = '\0';
    snprintf(buf, len, "%c %s:%s %s", d->type, maj, min, acc);
}

/* Each write to an open devices.allow is one rule: the file is opened once for all of them
 * (opening a cgroup file costs a path walk; twelve of them did, on every start). */
static int write_rule(int fd, const char *file, const char *text, char *err, size_t len)
{
    if (fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text))
        return 0;
    int e = errno;
    snprintf(err, len, "%s '%s': %s", file, text, strerror(e));
    return -e;
}

int cr_cg_devices_v1(int dirfd, const struct cr_device *extra, size_t nextra, char *err,
                     size_t len)
{
    char rule[64];
    int deny = openat(dirfd, "devices.deny", O_WRONLY | O_CLOEXEC);
    int r = write_rule(deny, "devices.deny", "a", err, len);
    if (deny >= 0)
        close(deny);
    int allow = r == 0 ? openat(dirfd, "devices.allow", O_WRONLY | O_CLOEXEC) : -1;
    for (size_t i = 0; r == 0 && i < NDEFAULTS + nextra; i++) {
        rule_text(i < NDEFAULTS ? &defaults[i] : &extra[i - NDEFAULTS], rule, sizeof rule);
        r = write_rule(allow, "devices.allow", rule, err, len);
    }
    if (allow >= 0)
        close(allow);
    return r;
}

/* ---- cgroup v2: the BPF program ---------------------------------------------------------------- */

struct insn {
    uint8_t code;
    uint8_t regs;                /* dst in the low nibble, src in the high one */
    int16_t off;
    int32_t imm;
};

#define LDX_W(dst, src, o) ((struct insn){0x61, (uint8_t)((dst) | (src) << 4), (o), 0})
#define AND32_K(dst, k) ((struct insn){0x54, (dst), 0, (k)})
#define RSH32_K(dst, k) ((struct insn){0x74, (dst), 0, (k)})
#define MOV32_X(dst, src) ((struct insn){0xbc, (uint8_t)((dst) | (src) << 4), 0, 0})
#define JNE_K(dst, k, o) ((struct insn){0x55, (dst), (o), (k)})
#define MOV64_K(dst, k) ((struct insn){0xb7, (dst), 0, (k)})
#define EXIT() ((struct insn){0x95, 0, 0, 0})

/* bpf_cgroup_dev_ctx: access_type = (access << 16) | type; major; minor. Types: block 1,
 * char 2. Access: mknod 1, read 2, write 4 (the same bits as CR_DEV_*). */
enum { R0, R1, R2, R3, R4, R5, R6 };

/* One rule: its checks jump past its end when they fail; inside, "allow". */
static size_t emit_rule(struct insn *p, const struct cr_device *d)
{
    struct insn body[8];
    size_t n = 0;
    if (d->type == 'b' || d->type == 'c')
        body[n++] = JNE_K(R2, d->type == 'b' ? 1 : 2, 0);
    if ((d->access & CR_DEV_RWM) != CR_DEV_RWM) {
        /* asked & ~allowed must be 0 */
        body[n++] = MOV32_X(R6, R3);
        body[n++] = AND32_K(R6, (int32_t)(~(unsigned)d->access & CR_DEV_RWM));
        body[n++] = JNE_K(R6, 0, 0);
    }
    if (d->major >= 0)
        body[n++] = JNE_K(R4, d->major, 0);
    if (d->minor >= 0)
        body[n++] = JNE_K(R5, d->minor, 0);
    body[n++] = MOV64_K(R0, 1);
    body[n++] = EXIT();
    /* Each jump lands just after this rule's exit. */
    for (size_t i = 0; i < n; i++) {
        if (body[i].code == 0x55)
            body[i].off = (int16_t)(n - i - 1);
        p[i] = body[i];
    }
    return n;
}

int cr_cg_devices_v2(int cgfd, const struct cr_device *extra, size_t nextra, char *err,
                     size_t len)
{
    struct insn prog[8 + 8 * (NDEFAULTS + CR_DEVICES_MAX)];
    size_t n = 0;
    if (nextra > CR_DEVICES_MAX) {
        snprintf(err, len, "more than %d devices", CR_DEVICES_MAX);
        return -E2BIG;
    }
    prog[n++] = LDX_W(R2, R1, 0);
    prog[n++] = AND32_K(R2, 0xffff);
    prog[n++] = LDX_W(R3, R1, 0);
    prog[n++] = RSH32_K(R3, 16);
    prog[n++] = LDX_W(R4, R1, 4);
    prog[n++] = LDX_W(R5, R1, 8);
    for (size_t i = 0; i < NDEFAULTS + nextra; i++)
        n += emit_rule(prog + n, i < NDEFAULTS ? &defaults[i] : &extra[i - NDEFAULTS]);
    prog[n++] = MOV64_K(R0, 0);
    prog[n++] = EXIT();

    union {
        struct {
            uint32_t prog_type, insn_cnt;
            uint64_t insns, license;
            uint32_t log_level, log_size;
            uint64_t log_buf;
            uint32_t kern_version, prog_flags;
            char prog_name[16];
        } load;
        struct {
            uint32_t target_fd, attach_bpf_fd, attach_type, attach_flags;
        } attach;
        char pad[128];
    } attr;
    memset(&attr, 0, sizeof attr);
    attr.load.prog_type = 15;                     /* BPF_PROG_TYPE_CGROUP_DEVICE */
    attr.load.insn_cnt = (uint32_t)n;
    attr.load.insns = (uint64_t)(uintptr_t)prog;
    attr.load.license = (uint64_t)(uintptr_t)"Apache";
    snprintf(attr.load.prog_name, sizeof attr.load.prog_name, "corral_dev");
    int pfd = (int)syscall(SYS_bpf, 5 /* BPF_PROG_LOAD */, &attr, sizeof attr);
    if (pfd < 0) {
        int e = errno;
        snprintf(err, len, "loading the device program: %s", strerror(e));
        return -e;
    }
    memset(&attr, 0, sizeof attr);
    attr.attach.target_fd = (uint32_t)cgfd;
    attr.attach.attach_bpf_fd = (uint32_t)pfd;
    attr.attach.attach_type = 6;                  /* BPF_CGROUP_DEVICE */
    int r = (int)syscall(SYS_bpf, 8 /* BPF_PROG_ATTACH */, &attr, sizeof attr);
    int e = errno;
    close(pfd);                  /* the attachment holds the program */
    if (r < 0) {
        snprintf(err, len, "attaching the device program: %s", strerror(e));
        return -e;
    }
    return 0;
}

int cr_device_parse(const char *s, struct cr_device *out, char *path, size_t plen)
{
    /* PATH[:rwm] → the node's type and numbers, from the host's node. */
    const char *colon = strrchr(s, ':');
    size_t n = colon ? (size_t)(colon - s) : strlen(s);
    if (n == 0 || n >= plen || s[0] != '/')
        return -EINVAL;
    memcpy(path, s, n);
    path[n] = '\0';
    out->access = colon ? 0 : CR_DEV_RWM;
    for (const char *a = colon ? colon + 1 : ""; *a; a++) {
        int bit = *a == 'r' ? CR_DEV_READ : *a == 'w' ? CR_DEV_WRITE : *a == 'm' ? CR_DEV_MKNOD : 0;
        if (!bit)
            return -EINVAL;
        out->access |= bit;
    }
    if (colon && !out->access)
        return -EINVAL;
    return 0;
}
