/* Idmapped mounts for a container's user namespace (bind = SRC:DST:idmap, and the rootfs of
 * user_namespace = auto).
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
#define OPEN_TREE_CLONE_ 1
#define AT_RECURSIVE_ 0x8000
#define MOUNT_ATTR_IDMAP_ 0x00100000

struct mount_attr_ {
    uint64_t attr_set, attr_clr, propagation, userns_fd;
};

/* A detached, idmapped clone of src's tree (recursive, as a bind's MS_REC), or -errno. With
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
    if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE_, &a, sizeof a) < 0) {
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
    if (spec->rootfs_idmap) {
        r = idmapped_clone("rootfs", spec->rootfs, userns, root_plain, err, errlen);
        if (r >= 0)
            fds[n++] = r;
    }
    for (size_t i = 0; r >= 0 && i < spec->nbinds; i++) {
        if (!spec->binds[i].idmap)
            continue;
        r = idmapped_clone("bind", spec->binds[i].src, userns, NULL, err, errlen);
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
