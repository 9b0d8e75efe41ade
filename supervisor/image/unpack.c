/* Unpacking one layer into the store (image.h), off the event loop: a worker thread calls it.
 *
 * The blob is read once: its bytes are hashed as libarchive takes them (gzip, zstd or a plain
 * tar), and what is left after the tar's end is hashed too, so the digest covers the whole
 * blob. Everything goes to STORE/layers/sha256/.tmp-HEX-TID; only a layer whose digest
 * matched and whose every entry was written is renamed to STORE/layers/sha256/HEX. Any error
 * removes the tmp dir.
 *
 * Paths: a leading '/' or "./" is dropped, a ".." component is an error (the entry escapes
 * the root), and libarchive's SECURE_SYMLINKS refuses to write through a symlink the layer
 * made (an absolute symlink to /etc, then etc/x/passwd). A hard link's target must resolve
 * below the layer without any symlink. OCI whiteouts become overlayfs ones: .wh.NAME a 0:0
 * character device NAME, .wh..wh..opq the trusted.overlay.opaque xattr on its directory; a
 * layer's own trusted.* xattrs are dropped (they would be overlayfs' instructions).
 * libarchive's warnings count as errors: a failed write(2) (ENOSPC) is only ARCHIVE_WARN to
 * it, and a layer missing a file, an owner or a mode is not the image. */
#include "image/image.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

struct src {
    int fd;                      /* the blob file (OCI), or -1 */
    struct archive *outer;       /* docker-archive: positioned at the layer's member */
    struct sha256_ctx sha;
    int64_t bytes;
    uint8_t buf[65536];
};

static la_ssize_t src_read(struct archive *a, void *arg, const void **out)
{
    struct src *s = arg;
    ssize_t n;
    if (s->outer) {
        n = archive_read_data(s->outer, s->buf, sizeof s->buf);
        if (n < 0) {
            archive_set_error(a, EIO, "%s", archive_error_string(s->outer));
            return -1;
        }
    } else {
        while ((n = read(s->fd, s->buf, sizeof s->buf)) < 0 && errno == EINTR)
            ;
        if (n < 0) {
            archive_set_error(a, errno, "read: %s", strerror(errno));
            return -1;
        }
    }
    sha256_update(&s->sha, (size_t)n, s->buf);
    s->bytes += n;
    *out = s->buf;
    return n;
}

/* The rest of the blob after the tar's end (padding), hashed. */
static int src_drain(struct src *s)
{
    const void *p;
    la_ssize_t n;
    struct archive *dummy = archive_read_new();
    if (!dummy)
        return -ENOMEM;
    while ((n = src_read(dummy, s, &p)) > 0)
        ;
    archive_read_free(dummy);
    return n < 0 ? -EIO : 0;
}

/* name without leading '/' and "./", checked: -EINVAL when a component is "..". */
static int clean_path(const char *name, const char **out)
{
    while (*name == '/' || (name[0] == '.' && name[1] == '/'))
        name += name[0] == '/' ? 1 : 2;
    for (const char *p = name; *p;) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return -EINVAL;
        p += n;
        while (*p == '/')
            p++;
    }
    *out = name;
    return 0;
}

/* The directory rel (below the root fd), created where missing, never through a symlink. */
static int open_dir_beneath(int root, const char *rel)
{
    struct open_how how = {.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
                                      RESOLVE_NO_MAGICLINKS};
    int fd = (int)syscall(SYS_openat2, root, *rel ? rel : ".", &how, sizeof how);
    if (fd >= 0 || errno != ENOENT)
        return fd < 0 ? -errno : fd;
    /* Create it one component at a time, each checked the same way. */
    char *copy = strdup(rel);
    if (!copy)
        return -ENOMEM;
    int cur = dup(root);
    char *save = NULL;
    for (char *c = strtok_r(copy, "/", &save); c && cur >= 0; c = strtok_r(NULL, "/", &save)) {
        if (mkdirat(cur, c, 0755) < 0 && errno != EEXIST) {
            close(cur);
            cur = -1;
            break;
        }
        int next = (int)syscall(SYS_openat2, cur, c, &how, sizeof how);
        close(cur);
        cur = next;
    }
    int e = errno;
    free(copy);
    return cur >= 0 ? cur : -e;
}

/* .wh.NAME or .wh..wh..opq at path rel (already cleaned). */
static int whiteout(int root, const char *rel, const char *base)
{
    char dir[4096];
    size_t dl = (size_t)(base - rel);
    if (dl >= sizeof dir)
        return -ENAMETOOLONG;
    memcpy(dir, rel, dl);
    dir[dl] = 0;
    int dfd = open_dir_beneath(root, dir);
    if (dfd < 0)
        return dfd;
    int r = 0;
    if (!strcmp(base, ".wh..wh..opq")) {
        char self[64];
        snprintf(self, sizeof self, "/proc/self/fd/%d", dfd);
        if (setxattr(self, "trusted.overlay.opaque", "y", 1, 0) < 0)
            r = -errno;
    } else {
        const char *name = base + 4;
        if (!*name || !strcmp(name, ".") || !strcmp(name, ".."))
            r = -EINVAL;
        else if (mknodat(dfd, name, S_IFCHR | 0, makedev(0, 0)) < 0 && errno != EEXIST)
            r = -errno;
    }
    close(dfd);
    return r;
}

/* Drops the entry's xattrs outside user.* and security.capability (trusted.overlay.* would
 * steer overlayfs; the rest is not the image's to set). */
static void filter_xattrs(struct archive_entry *e)
{
    if (archive_entry_xattr_reset(e) == 0)
        return;
    struct { char *name; void *val; size_t len; } keep[32];
    size_t nk = 0;
    const char *name;
    const void *val;
    size_t len;
    while (archive_entry_xattr_next(e, &name, &val, &len) == ARCHIVE_OK && nk < 32) {
        if (strncmp(name, "user.", 5) && strcmp(name, "security.capability"))
            continue;
        keep[nk].name = strdup(name);
        keep[nk].val = malloc(len ? len : 1);
        if (!keep[nk].name || !keep[nk].val) {
            free(keep[nk].name);
            free(keep[nk].val);
            continue;
        }
        memcpy(keep[nk].val, val, len);
        keep[nk].len = len;
        nk++;
    }
    archive_entry_xattr_clear(e);
    for (size_t i = 0; i < nk; i++) {
        archive_entry_xattr_add_entry(e, keep[i].name, keep[i].val, keep[i].len);
        free(keep[i].name);
        free(keep[i].val);
    }
}

/* "BLOB: entry 'NAME': what libarchive said (the errno's text, which it leaves out)";
 * returns the negative errno. */
static int write_failed(struct archive *w, const char *blob, const char *name, char *err,
                        size_t errlen)
{
    int en = archive_errno(w);
    const char *msg = archive_error_string(w);
    const char *sys = en > 0 ? strerror(en) : NULL;
    snprintf(err, errlen, "%s: entry '%s': %s%s%s%s", blob, name, msg ? msg : "failed",
             sys && (!msg || !strstr(msg, sys)) ? " (" : "",
             sys && (!msg || !strstr(msg, sys)) ? sys : "",
             sys && (!msg || !strstr(msg, sys)) ? ")" : "");
    return en > 0 ? -en : -EIO;
}

/* Every entry of the tar in a into tmp (whose fd is root). */
static int unpack_entries(struct archive *a, const char *tmp, int root, const char *blob,
                          char *err, size_t errlen)
{
    struct archive *w = archive_write_disk_new();
    if (!w)
        return -ENOMEM;
    archive_write_disk_set_options(w, ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_PERM |
                                          ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_XATTR |
                                          ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                                          ARCHIVE_EXTRACT_SECURE_NODOTDOT);
    struct archive_entry *e;
    char full[8192];
    int r = 0, ar;
    while ((ar = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
        const char *name, *link = archive_entry_hardlink(e);
        if (clean_path(archive_entry_pathname(e), &name) < 0 ||
            (link && clean_path(link, &link) < 0)) {
            snprintf(err, errlen, "%s: entry '%s': escapes the root (a '..' component)", blob,
                     archive_entry_pathname(e));
            r = -EINVAL;
            break;
        }
        if (!*name || !strcmp(name, ".") || !strcmp(name, "./"))
            continue;                    /* the root itself: ours */
        /* Our own copy: the entry's pathname is rewritten below (and its buffer with it). */
        char rel[4096];
        if ((size_t)snprintf(rel, sizeof rel, "%s", name) >= sizeof rel) {
            snprintf(err, errlen, "%s: entry '%.200s...': path too long", blob, name);
            r = -ENAMETOOLONG;
            break;
        }
        name = rel;
        const char *slash = strrchr(name, '/');
        const char *base = slash && slash[1] ? slash + 1 : name;
        if (!strncmp(base, ".wh.", 4)) {
            r = whiteout(root, name, base);
            if (r < 0) {
                snprintf(err, errlen, "%s: whiteout '%s': %s", blob, name,
                         r == -ELOOP || r == -EXDEV ? "its directory is behind a symlink"
                                                    : strerror(-r));
                break;
            }
            continue;
        }
        if (link) {
            struct open_how how = {.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC,
                                   .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS};
            int fd = (int)syscall(SYS_openat2, root, link, &how, sizeof how);
            if (fd < 0) {
                snprintf(err, errlen, "%s: hard link '%s' to '%s': %s", blob, name, link,
                         errno == ENOENT ? "no such entry before it"
                                         : "its target is behind a symlink");
                r = -EINVAL;
                break;
            }
            close(fd);
            snprintf(full, sizeof full, "%s/%s", tmp, link);
            archive_entry_copy_hardlink(e, full);
        }
        if ((size_t)snprintf(full, sizeof full, "%s/%s", tmp, name) >= sizeof full) {
            snprintf(err, errlen, "%s: entry '%.200s...': path too long", blob, name);
            r = -ENAMETOOLONG;
            break;
        }
        archive_entry_copy_pathname(e, full);
        filter_xattrs(e);
        if (archive_write_header(w, e) != ARCHIVE_OK) {
            r = write_failed(w, blob, name, err, errlen);
            break;
        }
        const void *p;
        size_t n;
        la_int64_t off;
        int dr;
        while ((dr = archive_read_data_block(a, &p, &n, &off)) == ARCHIVE_OK) {
            if (archive_write_data_block(w, p, n, off) != ARCHIVE_OK) {
                dr = ARCHIVE_FATAL;
                r = write_failed(w, blob, name, err, errlen);
                break;
            }
        }
        if (!r && dr != ARCHIVE_EOF) {
            snprintf(err, errlen, "%s: entry '%s': %s (truncated or corrupt blob)", blob, name,
                     archive_error_string(a));
            r = -EIO;
        }
        if (!r && archive_write_finish_entry(w) != ARCHIVE_OK)
            r = write_failed(w, blob, name, err, errlen);
        if (r)
            break;
    }
    if (!r && ar != ARCHIVE_EOF) {
        snprintf(err, errlen, "%s: %s (truncated or corrupt blob)", blob,
                 archive_error_string(a));
        r = -EIO;
    }
    /* Closing sets the deferred directory modes and times; a failure there counts too. */
    if (archive_write_close(w) != ARCHIVE_OK && !r)
        r = write_failed(w, blob, "(directory modes and times)", err, errlen);
    archive_write_free(w);
    return r;
}

/* docker-archive: *outer (a new reader) positioned at member, or an error. docker save's
 * ID/layer.tar may be a symlink to ../HEX.tar: followed, once, to a member at the top. */
static int seek_member(struct archive **outer, const char *path, const char *member,
                       bool follow, char *err, size_t errlen)
{
    if (!(*outer = archive_read_new()))
        return -ENOMEM;
    archive_read_support_format_tar(*outer);
    if (archive_read_open_filename(*outer, path, 65536) != ARCHIVE_OK) {
        snprintf(err, errlen, "%s: %s", path, archive_error_string(*outer));
        return -EIO;
    }
    struct archive_entry *e;
    int ar;
    while ((ar = archive_read_next_header(*outer, &e)) == ARCHIVE_OK) {
        const char *name = archive_entry_pathname(e);
        if (!strncmp(name, "./", 2))
            name += 2;
        if (strcmp(name, member))
            continue;
        if (archive_entry_filetype(e) != AE_IFLNK)
            return 0;
        const char *to = archive_entry_symlink(e);
        const char *base = to && !strncmp(to, "../", 3) ? to + 3 : NULL;
        if (follow || !base || !*base || strchr(base, '/') || strchr(member, '/') !=
                                                             strrchr(member, '/')) {
            snprintf(err, errlen, "%s: layer %s: a symlink to '%s' (only ../FILE is followed)",
                     path, member, to ? to : "");
            return -EINVAL;
        }
        char target[256];
        snprintf(target, sizeof target, "%s", base);
        archive_read_free(*outer);
        return seek_member(outer, path, target, true, err, errlen);
    }
    snprintf(err, errlen, "%s: layer %s: %s", path, member,
             ar == ARCHIVE_EOF ? "no such member" : archive_error_string(*outer));
    return ar == ARCHIVE_EOF ? -ENOENT : -EIO;
}

int cr_image_unpack(const char *store, const struct cr_image *img, size_t i, char *err,
                    size_t errlen)
{
    const struct cr_image_layer *l = &img->layers[i];
    char dir[4096], tmp[4200], blob[4400];
    int r = cr_image_layer_dir(store, l, dir, sizeof dir);
    if (r < 0) {
        snprintf(err, errlen, "%s: image_store path too long", store);
        return r;
    }
    if (access(dir, F_OK) == 0)
        return 0;
    if (img->kind == CR_IMAGE_OCI)
        snprintf(blob, sizeof blob, "layer blob %s", l->blob);
    else
        snprintf(blob, sizeof blob, "%s: layer %s (%s)", img->path, l->blob, l->digest);
    /* STORE/layers/sha256 itself, then a fresh tmp dir, named by its real path: libarchive
     * refuses an entry path holding ".." or a symlink, the store's own part included. */
    char parent[4200], real[4096];
    snprintf(parent, sizeof parent, "%s/layers", store);
    mkdir(store, 0700);
    mkdir(parent, 0700);
    snprintf(parent, sizeof parent, "%s/layers/sha256", store);
    mkdir(parent, 0700);
    if (!realpath(parent, real)) {
        r = -errno;
        snprintf(err, errlen, "%s: %s", parent, strerror(-r));
        return r;
    }
    snprintf(tmp, sizeof tmp, "%s/.tmp-%s-%ld", real, l->digest + 7,
             (long)syscall(SYS_gettid));
    cr_image_rmtree(tmp);
    if (mkdir(tmp, 0755) < 0) {
        r = -errno;
        snprintf(err, errlen, "%s: %s", tmp, strerror(-r));
        return r;
    }
    int root = open(tmp, O_PATH | O_DIRECTORY | O_CLOEXEC);
    struct src *s = calloc(1, sizeof *s);
    struct archive *a = archive_read_new();
    r = root < 0 ? -errno : (!s || !a) ? -ENOMEM : 0;
    if (r < 0) {
        snprintf(err, errlen, "%s: %s", blob, strerror(-r));
        goto out;
    }
    s->fd = -1;
    sha256_init(&s->sha);
    if (img->kind == CR_IMAGE_OCI) {
        s->fd = open(l->blob, O_RDONLY | O_CLOEXEC);
        if (s->fd < 0) {
            r = -errno;
            snprintf(err, errlen, "%s: %s", blob, strerror(-r));
            goto out;
        }
    } else {
        r = seek_member(&s->outer, img->path, l->blob, false, err, errlen);
        if (r < 0)
            goto out;
    }
    archive_read_support_filter_gzip(a);
    archive_read_support_filter_zstd(a);
    archive_read_support_format_tar(a);
    if (archive_read_open(a, s, NULL, src_read, NULL) != ARCHIVE_OK) {
        snprintf(err, errlen, "%s: %s (truncated or corrupt blob)", blob,
                 archive_error_string(a));
        r = -EIO;
        goto out;
    }
    r = unpack_entries(a, tmp, root, blob, err, errlen);
    if (r == 0 && src_drain(s) < 0) {
        snprintf(err, errlen, "%s: read error after the archive's end", blob);
        r = -EIO;
    }
    if (r == 0) {
        char got[CR_IMAGE_DIGEST_LEN];
        struct sha256_ctx c = s->sha;
        uint8_t d[SHA256_DIGEST_SIZE];
        sha256_digest(&c, sizeof d, d);
        int n = snprintf(got, sizeof got, "sha256:");
        for (size_t k = 0; k < sizeof d; k++)
            n += snprintf(got + n, sizeof got - (size_t)n, "%02x", d[k]);
        if (strcmp(got, l->digest) || (l->size >= 0 && s->bytes != l->size)) {
            snprintf(err, errlen, "%s: digest mismatch: expected %s, its %lld bytes are %s",
                     blob, l->digest, (long long)s->bytes, got);
            r = -EINVAL;
        }
    }
    if (r == 0 && rename(tmp, dir) < 0) {
        r = -errno;
        /* Another thread or supervisor made it meanwhile: the same content. */
        if (r == -ENOTEMPTY || r == -EEXIST)
            r = 0;
        else
            snprintf(err, errlen, "%s: %s", dir, strerror(-r));
    }
out:
    if (a)
        archive_read_free(a);
    if (s && s->outer)
        archive_read_free(s->outer);
    if (s && s->fd >= 0)
        close(s->fd);
    free(s);
    if (root >= 0)
        close(root);
    if (access(tmp, F_OK) == 0)
        cr_image_rmtree(tmp);
    return r;
}
