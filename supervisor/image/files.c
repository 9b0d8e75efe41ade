/* A file of an image's root without unpacking it (image.h): the config's user and group
 * lookups read /etc/passwd and /etc/group this way before the first start unpacks anything. */
#include "image/image.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define FILE_MAX (4 * 1024 * 1024)

enum { FOUND, HIDDEN, ABSENT };

/* path's directory and base name ("etc/passwd" → "etc", "passwd"). */
static void split(const char *path, char *dir, size_t dlen, const char **base)
{
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 0;
    if (n >= dlen)
        n = dlen - 1;
    memcpy(dir, path, n);
    dir[n] = 0;
    *base = slash ? slash + 1 : path;
}

static int read_fd(int fd, char **buf, size_t *len)
{
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > FILE_MAX)
        return -EINVAL;
    char *b = malloc((size_t)st.st_size + 1);
    size_t got = 0;
    ssize_t n = 1;
    while (b && got < (size_t)st.st_size && (n = read(fd, b + got, (size_t)st.st_size - got)) > 0)
        got += (size_t)n;
    if (!b || n <= 0) {
        free(b);
        return b ? -EIO : -ENOMEM;
    }
    b[got] = 0;
    *buf = b;
    *len = got;
    return 0;
}

/* An unpacked layer: the file (FOUND), its overlayfs whiteout or an opaque dir (HIDDEN). */
static int from_dir(const char *layer, const char *path, char **buf, size_t *len)
{
    int root = open(layer, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root < 0)
        return ABSENT;
    struct open_how how = {.flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC,
                           .resolve = RESOLVE_IN_ROOT};
    int r = ABSENT;
    int fd = (int)syscall(SYS_openat2, root, path, &how, sizeof how);
    struct stat st;
    if (fd >= 0) {
        r = read_fd(fd, buf, len) == 0 ? FOUND : ABSENT;
        close(fd);
    } else if (fstatat(root, path, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISCHR(st.st_mode) &&
               st.st_rdev == makedev(0, 0)) {
        r = HIDDEN;
    } else {
        char dir[4096], val[2];
        const char *base;
        split(path, dir, sizeof dir, &base);
        how.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC;
        int dfd = *dir ? (int)syscall(SYS_openat2, root, dir, &how, sizeof how) : -1;
        if (dfd >= 0) {
            if (fgetxattr(dfd, "trusted.overlay.opaque", val, sizeof val) == 1 && val[0] == 'y')
                r = HIDDEN;
            close(dfd);
        }
    }
    close(root);
    return r;
}

/* The inner archive's bytes: the outer archive's current member, through a buffer of its own
 * (not a thread-local one: 64 KiB of TLS is zeroed in every thread the process starts). */
struct outer {
    struct archive *a;
    char b[65536];
};

static la_ssize_t outer_read(struct archive *a, void *arg, const void **out)
{
    struct outer *o = arg;
    la_ssize_t n = archive_read_data(o->a, o->b, sizeof o->b);
    if (n < 0)
        archive_set_error(a, EIO, "%s", archive_error_string(o->a));
    *out = o->b;
    return n;
}

/* A layer blob, streamed: the same answers as from_dir, from the tar's entries. */
static int from_blob(const struct cr_image *img, const struct cr_image_layer *l,
                     const char *path, char **buf, size_t *len)
{
    struct archive *outer = NULL, *a = archive_read_new();
    struct outer *ob = NULL;
    if (!a)
        return ABSENT;
    archive_read_support_filter_gzip(a);
    archive_read_support_filter_zstd(a);
    archive_read_support_format_tar(a);
    int ok;
    if (img->kind == CR_IMAGE_OCI) {
        ok = archive_read_open_filename(a, l->blob, 65536) == ARCHIVE_OK;
    } else {
        /* docker-archive: find the member, read it through the outer archive */
        outer = archive_read_new();
        ok = outer != NULL;
        if (ok) {
            archive_read_support_format_tar(outer);
            ok = archive_read_open_filename(outer, img->path, 65536) == ARCHIVE_OK;
        }
        struct archive_entry *e;
        bool at = false;
        while (ok && !at && archive_read_next_header(outer, &e) == ARCHIVE_OK) {
            const char *n = archive_entry_pathname(e);
            at = !strcmp(n + (strncmp(n, "./", 2) ? 0 : 2), l->blob) &&
                 archive_entry_filetype(e) == AE_IFREG;
        }
        ok = ok && at && (ob = malloc(sizeof *ob)) != NULL;
        if (ok) {
            ob->a = outer;
            ok = archive_read_open(a, ob, NULL, outer_read, NULL) == ARCHIVE_OK;
        }
    }
    char dir[4096], wh[4200], opq[4200];
    const char *base;
    split(path, dir, sizeof dir, &base);
    snprintf(wh, sizeof wh, "%s%s.wh.%s", dir, *dir ? "/" : "", base);
    snprintf(opq, sizeof opq, "%s/.wh..wh..opq", dir);
    int r = ABSENT;
    struct archive_entry *e;
    while (ok && r == ABSENT && archive_read_next_header(a, &e) == ARCHIVE_OK) {
        const char *n = archive_entry_pathname(e);
        while (*n == '/' || (n[0] == '.' && n[1] == '/'))
            n += n[0] == '/' ? 1 : 2;
        if (!strcmp(n, path) && archive_entry_filetype(e) == AE_IFREG) {
            int64_t size = archive_entry_size(e);
            char *b = size >= 0 && size <= FILE_MAX ? malloc((size_t)size + 1) : NULL;
            if (b && archive_read_data(a, b, (size_t)size) == size) {
                b[size] = 0;
                *buf = b;
                *len = (size_t)size;
                r = FOUND;
            } else {
                free(b);
                break;
            }
        } else if (!strcmp(n, wh) || (*dir && !strcmp(n, opq))) {
            r = HIDDEN;
        }
    }
    archive_read_free(a);
    free(ob);
    if (outer)
        archive_read_free(outer);
    return r;
}

int cr_image_read_file(const struct cr_image *img, const char *store, const char *path,
                       char **buf, size_t *len)
{
    char dir[4096];
    for (size_t i = img->nlayers; i-- > 0;) {
        const struct cr_image_layer *l = &img->layers[i];
        int r = cr_image_layer_dir(store, l, dir, sizeof dir) == 0 &&
                        cr_image_layer_present(store, l)
                    ? from_dir(dir, path, buf, len)
                    : from_blob(img, l, path, buf, len);
        if (r == FOUND)
            return 0;
        if (r == HIDDEN)
            return -ENOENT;
    }
    return -ENOENT;
}
