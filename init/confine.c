/* Confinement: what stands between a root workload and the host once the container is built.
 *
 * init applies, from the spec's [security] section:
 *   - masked and read-only paths, right after pivot_root (confine_paths);
 *   - for itself, once setup is done (confine_self): the capability bounding set reduced to
 *     the service's, its own capabilities reduced to what the PID-1 loop still needs, and
 *     "not dumpable", so the workload (same uid, no CAP_SYS_PTRACE) can neither ptrace it
 *     nor open anything through /proc/1 (its events pipe above all);
 *   - in each child it starts, workload or probe, between the id change and exec
 *     (confine_child): capabilities, ambient capabilities, no_new_privs, and the seccomp
 *     program the supervisor compiled (init never links libseccomp: it only installs the BPF).
 * The order in the child follows runc's: with no_new_privs the filter goes in last, right
 * before exec; without it, the kernel wants CAP_SYS_ADMIN for seccomp(2), so the filter goes in
 * first, while the child still has it (the filters we ship allow every call made after it). */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "init.h"
#include "spec.h"

#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_RAISE 2
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif
#ifndef SYS_seccomp
#define SYS_seccomp 317
#endif
#define SECCOMP_SET_MODE_FILTER_ 1
#define CAP_VERSION_3_ 0x20080522
#define BPF_MAXINSNS_ 4096

enum { CAP_KILL_ = 5, CAP_SETGID_ = 6, CAP_SETUID_ = 7, CAP_SYS_ADMIN_ = 21 };

struct cap_header_ {
    uint32_t version;
    int pid;
};
struct cap_data_ {
    uint32_t effective, permitted, inheritable;
};
struct sock_fprog_ {
    unsigned short len;
    const void *filter;
};

static int capset64(uint64_t eff, uint64_t perm, uint64_t inh)
{
    struct cap_header_ h = {CAP_VERSION_3_, 0};
    struct cap_data_ d[2] = {
        {(uint32_t)eff, (uint32_t)perm, (uint32_t)inh},
        {(uint32_t)(eff >> 32), (uint32_t)(perm >> 32), (uint32_t)(inh >> 32)},
    };
    return (int)syscall(SYS_capset, &h, d);
}

/* init's own permitted set: what it can hand on at most (a supervisor run without some
 * capability cannot give it: "ALL" means all of those it has). */
static uint64_t own_permitted(void)
{
    struct cap_header_ h = {CAP_VERSION_3_, 0};
    struct cap_data_ d[2];
    if (syscall(SYS_capget, &h, d) < 0)
        return 0;
    return (uint64_t)d[0].permitted | (uint64_t)d[1].permitted << 32;
}

static uint64_t cap_bit(int c)
{
    return 1ULL << c;
}

/* ---- paths ----------------------------------------------------------------------------------- */

/* Hides path: a directory under an empty read-only tmpfs, anything else under /dev/null (as
 * runc does). A path that does not exist in this container needs no hiding, nor one its root
 * cannot reach (EACCES: in a user namespace, below a directory of an unmapped owner, such as
 * the supervisor's log_dir under a 0700 directory of host root's). */
static int mask_one(const char *path, char *err, size_t len)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        int e = errno;
        if (e == ENOENT || e == ENOTDIR || e == EACCES)
            return 0;
        snprintf(err, len, "masked %s: %s", path, strerror(e));
        return -e;
    }
    int r = S_ISDIR(st.st_mode)
                ? mount("corral-masked", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                        "size=0,nr_inodes=1,mode=555")
                : mount("/dev/null", path, NULL, MS_BIND, NULL);
    if (r < 0) {
        int e = errno;
        snprintf(err, len, "masked %s: %s", path, strerror(e));
        return -e;
    }
    return 0;
}

/* Binds path onto itself and makes that bind read-only (its submounts too). */
static int readonly_one(const char *path, char *err, size_t len)
{
    if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0;
        int e = errno;
        snprintf(err, len, "readonly %s: %s", path, strerror(e));
        return -e;
    }
    if (mount(NULL, path, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV,
              NULL) < 0 &&
        mount(NULL, path, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) < 0) {
        int e = errno;
        snprintf(err, len, "readonly %s: %s", path, strerror(e));
        return -e;
    }
    return 0;
}

int confine_paths(const struct cr_spec *s, char *err, size_t len)
{
    for (size_t i = 0; i < s->nreadonly; i++)
        if (readonly_one(s->readonly[i], err, len) < 0)
            return -1;
    for (size_t i = 0; i < s->nmasked; i++)
        if (mask_one(s->masked[i], err, len) < 0)
            return -1;
    return 0;
}

/* ---- init itself ----------------------------------------------------------------------------- */

/* The seccomp program, read once from the supervisor's fd (a sealed memfd it shares between
 * the containers of one profile). */
static struct sock_fprog_ filter;

static int load_filter(int fd, char *err, size_t len)
{
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_size <= 0 || st.st_size % 8 ||
        st.st_size > BPF_MAXINSNS_ * 8) {
        snprintf(err, len, "seccomp_fd %d: not a BPF program", fd);
        return -1;
    }
    void *prog = malloc((size_t)st.st_size);
    ssize_t n = prog ? pread(fd, prog, (size_t)st.st_size, 0) : -1;
    if (n != st.st_size) {
        snprintf(err, len, "seccomp_fd %d: %s", fd, n < 0 ? strerror(errno) : "short read");
        free(prog);
        return -1;
    }
    close(fd);
    filter.len = (unsigned short)(st.st_size / 8);
    filter.filter = prog;
    return 0;
}

int confine_self(const struct cr_spec *s, struct init_opts *o, char *err, size_t len)
{
    uint64_t own = own_permitted();
    o->confine = true;
    o->caps = s->caps == CR_CAPS_ALL ? s->caps : s->caps & own;
    o->ambient = s->ambient & o->caps;
    o->no_new_privs = s->no_new_privs;
    if (s->seccomp_fd >= 0 && load_filter(s->seccomp_fd, err, len) < 0)
        return -1;
    o->seccomp = filter.len ? &filter : NULL;
    if (s->caps != CR_CAPS_ALL) {
        /* The bounding set limits what any exec below us can gain; init's own permitted set
         * keeps what the loop needs: ids for probes, kill across uids, the service's own
         * capabilities to hand on, and CAP_SYS_ADMIN only where a filter goes in without
         * no_new_privs. An unknown capability number ends the loop (EINVAL). */
        for (int c = 0; c < 64; c++) {
            if (s->caps & cap_bit(c))
                continue;
            if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0) {
                if (errno == EINVAL)
                    break;
                snprintf(err, len, "dropping capability %d: %s", c, strerror(errno));
                return -1;
            }
        }
        uint64_t keep = o->caps | cap_bit(CAP_KILL_) | cap_bit(CAP_SETUID_) | cap_bit(CAP_SETGID_);
        if (o->seccomp && !s->no_new_privs)
            keep |= cap_bit(CAP_SYS_ADMIN_);
        keep &= own;
        if (capset64(keep, keep, 0) < 0) {
            snprintf(err, len, "capabilities: %s", strerror(errno));
            return -1;
        }
    }
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
        snprintf(err, len, "prctl(PR_SET_DUMPABLE): %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- each child -------------------------------------------------------------------------- */

static int install_filter(const struct init_opts *o)
{
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER_, 0, o->seccomp);
}

int confine_child(const struct init_opts *o)
{
    if (!o->set_ids)
        return 0;
    bool early_filter = o->confine && o->seccomp && !o->no_new_privs;
    if (early_filter && install_filter(o) < 0)
        return CONFINE_SECCOMP;
    bool drop_caps = o->confine && o->caps != CR_CAPS_ALL;
    if (drop_caps && o->uid != 0 && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
        return CONFINE_CAPS;
    if (setgroups(o->ngroups, o->groups) < 0)
        return CONFINE_GROUPS;
    if (setgid(o->gid) < 0)
        return CONFINE_GID;
    if (setuid(o->uid) < 0)
        return CONFINE_UID;
    if (!o->confine)
        return 0;
    if (drop_caps) {
        if (capset64(o->caps, o->caps, o->ambient) < 0)
            return CONFINE_CAPS;
        for (int c = 0; c < 64; c++)
            if ((o->ambient & cap_bit(c)) &&
                prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0)
                return CONFINE_CAPS;
    }
    if (o->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return CONFINE_NNP;
    if (o->seccomp && !early_filter && install_filter(o) < 0)
        return CONFINE_SECCOMP;
    return 0;
}

const char *confine_stage_name(int stage)
{
    static const char *const names[] = {
        [CONFINE_GROUPS] = "setgroups", [CONFINE_GID] = "setgid", [CONFINE_UID] = "setuid",
        [CONFINE_CAPS] = "capabilities", [CONFINE_NNP] = "no_new_privs",
        [CONFINE_SECCOMP] = "seccomp",
    };
    return stage > 0 && stage <= CONFINE_SECCOMP ? names[stage] : "?";
}
