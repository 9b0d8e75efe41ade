/* Named volumes (image.h): STORE/volumes/NAME, made once, seeded then from the image's
 * content at the volume's path (Docker's behaviour), kept until pruned.
 *
 * The image's view at that path is a detached, read-only overlay of its layers (fsopen,
 * fsconfig, fsmount: never attached anywhere, gone when its fd is closed), so whiteouts and
 * opaque dirs count as in the container; the copy keeps owners, modes, symlinks and device
 * nodes (not hard links, nor xattrs). As for layers: a .tmp dir, renamed into place whole. */
#include "image/image.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_fsopen
#define SYS_fsopen 430
#define SYS_fsconfig 431
#define SYS_fsmount 432
#endif
#define FSOPEN_CLOEXEC_ 1
#define FSCONFIG_SET_STRING_ 1
#define FSCONFIG_CMD_CREATE_ 6
#define FSMOUNT_CLOEXEC_ 1
#define MOUNT_ATTR_RDONLY_ 1

int cr_image_volume_dir(const char *store, const char *name, char *out, size_t len)
{
    return (size_t)snprintf(out, len, "%s/volumes/%s", store, name) >= len ? -ENAMETOOLONG : 0;
}

bool cr_image_volume_present(const char *store, const char *name)
{
    char dir[4400];
    struct stat st;
    return cr_image_volume_dir(store, name, dir, sizeof dir) == 0 && stat(dir, &st) == 0 &&
           S_ISDIR(st.st_mode);
}

/* The image's root, read-only: a layer dir (one layer) or a detached overlay; -errno. */
static int image_view(const char *store, const struct cr_image *img, char *err, size_t errlen)
{
    char dir[4400];
    if (img->nlayers == 1) {
        cr_image_layer_dir(store, &img->layers[0], dir, sizeof dir);
        int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
            snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return fd < 0 ? -errno : fd;
    }
    /* fsconfig takes strings of at most 256 bytes: each layer is named by an fd of ours,
     * /proc/self/fd/N, all in one "lowerdir" where that fits, else one "lowerdir+" each
     * (Linux 6.8 and later). */
    int fds[CR_IMAGE_MAX_LAYERS];
    size_t nfd = 0;
    char opt[256], one[32];
    size_t n = 0;
    int r = 0;
    for (size_t i = img->nlayers; i-- > 0 && !r;) {
        cr_image_layer_dir(store, &img->layers[i], dir, sizeof dir);
        int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
            r = -errno;
            snprintf(err, errlen, "%s: %s", dir, strerror(-r));
            break;
        }
        fds[nfd++] = fd;
        n += (size_t)snprintf(opt + n, n < sizeof opt ? sizeof opt - n : 0, "%s/proc/self/fd/%d",
                              n ? ":" : "", fd);
    }
    int fs = r ? -1 : (int)syscall(SYS_fsopen, "overlay", FSOPEN_CLOEXEC_), mnt = -1;
    bool set = fs >= 0 && n < sizeof opt &&
               syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING_, "lowerdir", opt, 0) == 0;
    for (size_t i = 0; fs >= 0 && n >= sizeof opt && i < nfd; i++) {
        snprintf(one, sizeof one, "/proc/self/fd/%d", fds[i]);
        set = syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING_, "lowerdir+", one, 0) == 0;
        if (!set)
            break;
    }
    if (set && syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE_, NULL, NULL, 0) == 0)
        mnt = (int)syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC_, MOUNT_ATTR_RDONLY_);
    int e = errno;
    if (fs >= 0)
        close(fs);
    for (size_t i = 0; i < nfd; i++)
        close(fds[i]);
    if (r)
        return r;
    if (mnt < 0)
        snprintf(err, errlen, "overlay of the image's %zu layers: %s", img->nlayers,
                 strerror(e));
    return mnt < 0 ? -e : mnt;
}

static __thread size_t copy_from_len;
static __thread const char *copy_to;
static __thread char *copy_err;
static __thread size_t copy_errlen;

static int copy_fail(const char *what, const char *path)
{
    int e = errno;
    snprintf(copy_err, copy_errlen, "%s %s: %s", what, path, strerror(e));
    return -1;
}

static int copy_file(const char *src, const char *dst, const struct stat *st)
{
    int in = open(src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (in < 0)
        return copy_fail("reading", src);
    int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out < 0) {
        close(in);
        return copy_fail("creating", dst);
    }
    char buf[65536];   /* on the stack: TLS this big is zeroed in every new thread */
    ssize_t n;
    int r = 0;
    while ((n = read(in, buf, sizeof buf)) > 0)
        if (write(out, buf, (size_t)n) != n) {
            r = copy_fail("writing", dst);
            break;
        }
    if (!r && n < 0)
        r = copy_fail("reading", src);
    if (!r && (fchown(out, st->st_uid, st->st_gid) < 0 || fchmod(out, st->st_mode & 07777) < 0))
        r = copy_fail("owner or mode of", dst);
    close(in);
    if (close(out) < 0 && !r)
        r = copy_fail("writing", dst);
    return r;
}

static int copy_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)ftw;
    char dst[PATH_MAX];
    if ((size_t)snprintf(dst, sizeof dst, "%s%s", copy_to, path + copy_from_len) >= sizeof dst) {
        errno = ENAMETOOLONG;
        return copy_fail("copying", path);
    }
    if (flag == FTW_D) {
        if (path[copy_from_len] && mkdir(dst, 0700) < 0)
            return copy_fail("creating", dst);
        if (lchown(dst, st->st_uid, st->st_gid) < 0 || chmod(dst, st->st_mode & 07777) < 0)
            return copy_fail("owner or mode of", dst);
        return 0;
    }
    if (flag == FTW_SL) {
        char to[PATH_MAX];
        ssize_t n = readlink(path, to, sizeof to - 1);
        if (n < 0)
            return copy_fail("reading", path);
        to[n] = 0;
        if (symlink(to, dst) < 0 || lchown(dst, st->st_uid, st->st_gid) < 0)
            return copy_fail("creating", dst);
        return 0;
    }
    if (flag != FTW_F)
        return copy_fail("reading", path);
    if (S_ISREG(st->st_mode))
        return copy_file(path, dst, st);
    if (mknod(dst, st->st_mode, st->st_rdev) < 0 || lchown(dst, st->st_uid, st->st_gid) < 0)
        return copy_fail("creating", dst);
    return 0;
}

int cr_image_volume_make(const char *store, const char *name, const struct cr_image *img,
                         const char *path, char *err, size_t errlen)
{
    char dir[4400], tmp[4500], parent[4400];
    if (cr_image_volume_dir(store, name, dir, sizeof dir) < 0) {
        snprintf(err, errlen, "volume %s: path too long", name);
        return -ENAMETOOLONG;
    }
    if (access(dir, F_OK) == 0)
        return 0;
    snprintf(parent, sizeof parent, "%s/volumes", store);
    mkdir(store, 0700);
    mkdir(parent, 0700);
    snprintf(tmp, sizeof tmp, "%s/.tmp-%s-%ld", parent, name, (long)syscall(SYS_gettid));
    cr_image_rmtree(tmp);
    int r = 0;
    int view = img ? image_view(store, img, err, errlen) : -ENOENT;
    struct stat st;
    char src[PATH_MAX];
    while (*path == '/')
        path++;
    if (view >= 0)
        snprintf(src, sizeof src, "/proc/self/fd/%d/%s", view, path);
    if (img && view < 0) {
        r = view;
    } else if (view >= 0 && lstat(src, &st) == 0 && S_ISDIR(st.st_mode)) {
        /* seeded: a copy of the image's directory at path */
        if (mkdir(tmp, 0700) < 0) {
            r = -errno;
            snprintf(err, errlen, "%s: %s", tmp, strerror(-r));
        } else {
            copy_from_len = strlen(src);
            copy_to = tmp;
            copy_err = err;
            copy_errlen = errlen;
            if (nftw(src, copy_one, 16, FTW_PHYS) != 0)
                r = errno ? -errno : -EIO;
            copy_to = NULL;
        }
    } else if (mkdir(tmp, 0755) < 0) {
        r = -errno;
        snprintf(err, errlen, "%s: %s", tmp, strerror(-r));
    }
    if (view >= 0)
        close(view);
    if (!r && rename(tmp, dir) < 0 && errno != ENOTEMPTY && errno != EEXIST) {
        r = -errno;
        snprintf(err, errlen, "%s: %s", dir, strerror(-r));
    }
    if (access(tmp, F_OK) == 0)
        cr_image_rmtree(tmp);
    if (r && strncmp(err, "volume", 6)) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", err);
        snprintf(err, errlen, "volume %s: %s", name, msg);
    }
    return r;
}
