/* Idmapped mounts for a container's user namespace (bind = SRC:DST:idmap, the rootfs of
 * user_namespace = auto, and an image's layers under a user namespace).
 *
 * Only the supervisor can make them: mount_setattr(MOUNT_ATTR_IDMAP) wants CAP_SYS_ADMIN over
 * the filesystem (the host's user namespace), and a mount never yet attached anywhere. So for
 * each source it clones the tree (open_tree OPEN_TREE_CLONE: a detached copy no one sees),
 * idmaps the copy with the container's user namespace (open once its maps are written), and
 * hands the fd to init, which attaches it with move_mount inside its own mount namespace.
 * Through such a mount, host id H appears as whatever the namespace maps H to (host root's
 * files are root's inside), and a file root creates inside is host root's on disk. */
#include "spawn/spawn.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef SYS_fsopen
#define SYS_fsopen 430
#endif
#ifndef SYS_fsconfig
#define SYS_fsconfig 431
#endif
#ifndef SYS_fsmount
#define SYS_fsmount 432
#endif
#define OPEN_TREE_CLONE_ 1
#define FSOPEN_CLOEXEC_ 1
#define FSMOUNT_CLOEXEC_ 1
#define FSCONFIG_SET_STRING_ 1
#define FSCONFIG_SET_FD_ 5
#define FSCONFIG_CMD_CREATE_ 6
#define AT_RECURSIVE_ 0x8000
#define MOUNT_ATTR_IDMAP_ 0x00100000

#define CR_IMAGE_MAX_LAYERS_SPAWN 128

struct mount_attr_ {
    uint64_t attr_set, attr_clr, propagation, userns_fd;
};

/* A detached, idmapped clone of src's tree (recursive, as a bind's MS_REC; userns -1: a plain
 * clone, for a bind with the spec's clone option), or -errno. With
 * *plain (the rootfs), a filesystem without idmapped mounts gives the clone as it is, and
 * *plain says so: the root then works as without idmapping (its owners unmapped inside). */
static int idmapped_clone(const char *what, const char *src, int userns, bool *plain,
                          char *err, size_t errlen)
{
    int fd = (int)syscall(SYS_open_tree, AT_FDCWD, src,
                          OPEN_TREE_CLONE_ | AT_RECURSIVE_ | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s %s: open_tree: %s", what, src, strerror(e));
        return -e;
    }
    struct mount_attr_ a = {.attr_set = MOUNT_ATTR_IDMAP_, .userns_fd = (uint64_t)userns};
    if (userns >= 0 &&
        syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE_, &a, sizeof a) < 0) {
        int e = errno;
        if (plain && (e == EINVAL || e == ENOSYS)) {
            *plain = true;
            return fd;
        }
        if (e == EINVAL || e == ENOSYS)
            snprintf(err, errlen, "%s %s: cannot be idmapped: its filesystem (or one mounted "
                     "below it) does not support idmapped mounts (%s)", what, src,
                     strerror(e));
        else
            snprintf(err, errlen, "%s %s: idmapping: %s", what, src, strerror(e));
        close(fd);
        return -e;
    }
    return fd;
}

/* The kernel's own words on a failed overlay (fsopen's log: "e overlayfs: ..."), appended. */
static void fs_log(int fsfd, char *err, size_t errlen)
{
    char line[512];
    ssize_t n;
    size_t at = strlen(err);
    while ((n = read(fsfd, line, sizeof line - 1)) > 0 && at + 4 < errlen) {
        line[n] = 0;
        if (n > 2 && line[1] == ' ')
            at += (size_t)snprintf(err + at, errlen - at, " [%s]", line + 2);
    }
}

/* An image's root under a user namespace: an overlay whose lower layers are idmapped clones
 * of the store's (so a file the image gives uid 1000 is uid 1000 inside, root's is root's),
 * with the container's upper and work dirs as they are (the upper's root belongs to the
 * container's root: container.c), made here as a detached mount, since only the host's root
 * can idmap the layers. Layers go to overlayfs by fd (lowerdir+, Linux 6.13), else by their
 * /proc/self/fd path (6.8); a single layer without an upper is its idmapped clone. */
static int idmapped_overlay(const struct cr_spec *spec, int userns, char *err, size_t errlen)
{
    int lower[CR_IMAGE_MAX_LAYERS_SPAWN], n = 0, fsfd = -1, mnt = -1, r = 0;
    if (spec->nlayers > CR_IMAGE_MAX_LAYERS_SPAWN) {
        snprintf(err, errlen, "overlay: %zu layers, at most %d", spec->nlayers,
                 CR_IMAGE_MAX_LAYERS_SPAWN);
        return -E2BIG;
    }
    for (size_t i = 0; i < spec->nlayers && r >= 0; i++)
        if ((r = idmapped_clone("image layer", spec->layers[i], userns, NULL, err, errlen)) >= 0)
            lower[n++] = r;
    if (r < 0)
        goto out;
    if (n == 1 && !spec->upper) {
        mnt = lower[0];
        n = 0;
        goto out;
    }
    fsfd = (int)syscall(SYS_fsopen, "overlay", FSOPEN_CLOEXEC_);
    if (fsfd < 0) {
        r = -errno;
        snprintf(err, errlen, "overlay: fsopen: %s", strerror(-r));
        goto out;
    }
    bool by_fd = true;
    for (int i = 0; i < n && r >= 0; i++) {
        r = (int)syscall(SYS_fsconfig, fsfd, FSCONFIG_SET_FD_, "lowerdir+", NULL, lower[i]);
        if (r < 0 && i == 0 && errno == EINVAL)
            by_fd = false;     /* before 6.13: by path */
        if (!by_fd) {
            char p[64];
            snprintf(p, sizeof p, "/proc/self/fd/%d", lower[i]);
            r = (int)syscall(SYS_fsconfig, fsfd, FSCONFIG_SET_STRING_, "lowerdir+", p, 0);
        }
    }
    if (r >= 0 && spec->upper)
        r = (int)syscall(SYS_fsconfig, fsfd, FSCONFIG_SET_STRING_, "upperdir", spec->upper, 0);
    if (r >= 0 && spec->upper)
        r = (int)syscall(SYS_fsconfig, fsfd, FSCONFIG_SET_STRING_, "workdir", spec->work, 0);
    if (r >= 0)
        r = (int)syscall(SYS_fsconfig, fsfd, FSCONFIG_CMD_CREATE_, NULL, NULL, 0);
    if (r >= 0 && (mnt = (int)syscall(SYS_fsmount, fsfd, FSMOUNT_CLOEXEC_, 0)) < 0)
        r = -1;
    if (r < 0) {
        r = -errno;
        snprintf(err, errlen, "overlay of %zu idmapped image layers: %s", spec->nlayers,
                 strerror(-r));
        fs_log(fsfd, err, errlen);
    }
out:
    while (n)
        close(lower[--n]);
    if (fsfd >= 0)
        close(fsfd);
    return r < 0 ? r : mnt;
}

int cr_idmap_mounts(pid_t pid, const struct cr_spec *spec, int *fds, bool *root_plain, char *err,
                    size_t errlen)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/ns/user", (int)pid);
    int userns = open(path, O_RDONLY | O_CLOEXEC);
    if (userns < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    int n = 0, r = 0;
    if (spec->rootfs_idmap && spec->nlayers) {
        r = idmapped_overlay(spec, userns, err, errlen);
        if (r >= 0)
            fds[n++] = r;
    } else if (spec->rootfs_idmap) {
        r = idmapped_clone("rootfs", spec->rootfs, userns, root_plain, err, errlen);
        if (r >= 0)
            fds[n++] = r;
    }
    for (size_t i = 0; r >= 0 && i < spec->nbinds; i++) {
        if (!spec->binds[i].idmap && !spec->binds[i].clone)
            continue;
        r = idmapped_clone("bind", spec->binds[i].src, spec->binds[i].idmap ? userns : -1,
                           NULL, err, errlen);
        if (r >= 0)
            fds[n++] = r;
    }
    close(userns);
    if (r < 0) {
        while (n)
            close(fds[--n]);
        return r;
    }
    return n;
}
