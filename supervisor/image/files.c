/* A file of an image's root without unpacking it (image.h): the config's user and group
 * lookups read /etc/passwd and /etc/group this way before the first start unpacks anything. */
#include "image/image.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <pthread.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define FILE_MAX (4 * 1024 * 1024)

enum { FOUND, HIDDEN, ABSENT, UNREAD };   /* UNREAD: ABSENT as far as a broken read got */

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

/* The inner archive's bytes: the outer archive's current member. */
struct outer {
    struct archive *a;
    char buf[65536];
};

static la_ssize_t outer_read(struct archive *a, void *arg, const void **out)
{
    struct outer *o = arg;
    la_ssize_t n = archive_read_data(o->a, o->buf, sizeof o->buf);
    if (n < 0)
        archive_set_error(a, EIO, "%s", archive_error_string(o->a));
    *out = o->buf;
    return n;
}

/* A layer blob, streamed: the same answers as from_dir, from the tar's entries. */
static int read_blob(const struct cr_image *img, const struct cr_image_layer *l,
                     const char *path, char **buf, size_t *len)
{
    struct archive *outer = NULL, *a = archive_read_new();
    struct outer *o = NULL;
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
        ok = ok && at && (o = malloc(sizeof *o)) != NULL;
        if (ok) {
            o->a = outer;
            ok = archive_read_open(a, o, NULL, outer_read, NULL) == ARCHIVE_OK;
        }
    }
    char dir[4096], wh[4200], opq[4200];
    const char *base;
    split(path, dir, sizeof dir, &base);
    snprintf(wh, sizeof wh, "%s%s.wh.%s", dir, *dir ? "/" : "", base);
    snprintf(opq, sizeof opq, "%s/.wh..wh..opq", dir);
    int r = ABSENT, h = ARCHIVE_FATAL;
    struct archive_entry *e;
    while (ok && r == ABSENT && (h = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
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
                r = UNREAD;
                break;
            }
        } else if (!strcmp(n, wh) || (*dir && !strcmp(n, opq))) {
            r = HIDDEN;
        }
    }
    if (r == ABSENT && h != ARCHIVE_EOF)
        r = UNREAD;
    archive_read_free(a);
    if (outer)
        archive_read_free(outer);
    free(o);
    return r;
}

/* A blob is named by its digest, so what it says of a path never changes: the answers are
 * kept for the process's life. A reload reads the same users again, and on the loop; streaming
 * a layer took ~0.15 s for 100 MB. At most CACHE_MAX answers, CACHE_BYTES of files in all,
 * the oldest dropped first; a read that broke off is not kept. */
#define CACHE_MAX 64
#define CACHE_BYTES (1024 * 1024)

struct answer {
    char digest[CR_IMAGE_DIGEST_LEN];
    char *path;
    int r;
    char *buf;                   /* FOUND: the file */
    size_t len;
};

static struct answer cache[CACHE_MAX];   /* [0] the newest */
static size_t ncache, cache_bytes;
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;

static void answer_drop(size_t i)
{
    cache_bytes -= cache[i].len;
    free(cache[i].path);
    free(cache[i].buf);
    memmove(&cache[i], &cache[i + 1], (--ncache - i) * sizeof cache[0]);
}

/* The answer kept for (l, path), with a copy of its file in *buf and *len; -1: none kept. */
static int cached(const struct cr_image_layer *l, const char *path, char **buf, size_t *len)
{
    int r = -1;
    pthread_mutex_lock(&cache_lock);
    for (size_t i = 0; i < ncache; i++) {
        const struct answer *c = &cache[i];
        if (strcmp(c->digest, l->digest) || strcmp(c->path, path))
            continue;
        r = c->r;
        if (r == FOUND && !(*buf = malloc(c->len + 1)))
            r = UNREAD;
        else if (r == FOUND) {
            memcpy(*buf, c->buf, c->len + 1);
            *len = c->len;
        }
        break;
    }
    pthread_mutex_unlock(&cache_lock);
    return r;
}

static void keep(const struct cr_image_layer *l, const char *path, int r, const char *buf,
                 size_t len)
{
    if (r == UNREAD || (r == FOUND && len > CACHE_BYTES))
        return;
    struct answer a = {.r = r, .len = r == FOUND ? len : 0};
    snprintf(a.digest, sizeof a.digest, "%s", l->digest);
    a.path = strdup(path);
    a.buf = r == FOUND ? malloc(len + 1) : NULL;
    if (!a.path || (r == FOUND && !a.buf)) {
        free(a.path);
        free(a.buf);
        return;
    }
    if (a.buf)
        memcpy(a.buf, buf, len + 1);
    pthread_mutex_lock(&cache_lock);
    while (ncache && (ncache == CACHE_MAX || cache_bytes + a.len > CACHE_BYTES))
        answer_drop(ncache - 1);
    memmove(&cache[1], &cache[0], ncache * sizeof cache[0]);
    cache[0] = a;
    ncache++;
    cache_bytes += a.len;
    pthread_mutex_unlock(&cache_lock);
}

static int from_blob(const struct cr_image *img, const struct cr_image_layer *l,
                     const char *path, char **buf, size_t *len)
{
    int r = cached(l, path, buf, len);
    if (r >= 0)
        return r;
    r = read_blob(img, l, path, buf, len);
    keep(l, path, r, r == FOUND ? *buf : NULL, r == FOUND ? *len : 0);
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
