/* The store's paths and trees (image.h): where a layer lives, a container's overlay dirs,
 * removing and measuring trees. */
#include "image/image.h"

#include <errno.h>
#include <stdbool.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int cr_image_layer_dir(const char *store, const struct cr_image_layer *l, char *out,
                       size_t len)
{
    if ((size_t)snprintf(out, len, "%s/layers/sha256/%s", store, l->digest + 7) >= len)
        return -ENAMETOOLONG;
    return 0;
}

bool cr_image_layer_present(const char *store, const struct cr_image_layer *l)
{
    char dir[4096];
    struct stat st;
    return cr_image_layer_dir(store, l, dir, sizeof dir) == 0 && stat(dir, &st) == 0 &&
           S_ISDIR(st.st_mode);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP)
        return rmdir(path) < 0 && errno != ENOENT ? -1 : 0;
    return unlink(path) < 0 && errno != ENOENT ? -1 : 0;
}

int cr_image_rmtree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISDIR(st.st_mode))
        return unlink(path) < 0 ? -errno : 0;
    /* FTW_MOUNT: never into another filesystem mounted below (a leftover overlay). */
    return nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) < 0 ? -errno : 0;
}

static __thread int64_t tree_bytes;
static int add_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)path;
    (void)ftw;
    if (flag == FTW_F || flag == FTW_SL)
        tree_bytes += (int64_t)st->st_blocks * 512;
    return 0;
}

int64_t cr_image_tree_size(const char *path)
{
    tree_bytes = 0;
    if (nftw(path, add_one, 16, FTW_PHYS | FTW_MOUNT) < 0)
        return -1;
    return tree_bytes;
}

static int mkdir_p2(const char *a, const char *b, mode_t mode, char *err, size_t errlen)
{
    char p[4200];
    snprintf(p, sizeof p, "%s%s", a, b);
    if (mkdir(p, mode) < 0 && errno != EEXIST) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", p, strerror(e));
        return -e;
    }
    return 0;
}

static long map_lookup(const char *map, long id, bool to_host)
{
    for (const char *l = map; l && *l;) {
        long c, h, n;
        if (sscanf(l, "%ld %ld %ld", &c, &h, &n) == 3) {
            long from = to_host ? c : h, to = to_host ? h : c;
            if (id >= from && id - from < n)
                return to + (id - from);
        }
        l = strchr(l, '\n');
        l = l ? l + 1 : NULL;
    }
    return -1;
}

long cr_image_map_id(const char *map, long id)
{
    return map_lookup(map, id, true);
}

long cr_image_unmap_id(const char *map, long host)
{
    return map_lookup(map, host, false);
}

int cr_image_container_dirs(const char *ctdir, bool fresh, long root_uid, long root_gid,
                            char *err, size_t errlen)
{
    char p[4300];
    size_t n = strlen(ctdir);
    if (n == 0 || n >= 4096) {
        snprintf(err, errlen, "%s: bad container dir", ctdir);
        return -EINVAL;
    }
    /* The folders above it (the store, containers/), 0700: only root goes through. */
    snprintf(p, sizeof p, "%s", ctdir);
    for (char *s = p + 1; (s = strchr(s, '/')); s++) {
        *s = 0;
        int r = mkdir_p2(p, "", 0700, err, errlen);
        *s = '/';
        if (r)
            return r;
    }
    int r = mkdir_p2(ctdir, "", 0700, err, errlen);
    if (!r && fresh) {
        static const char *const sub[] = {"/upper", "/work"};
        for (size_t i = 0; i < 2 && !r; i++) {
            snprintf(p, sizeof p, "%s%s", ctdir, sub[i]);
            if ((r = cr_image_rmtree(p)) < 0)
                snprintf(err, errlen, "%s: removing: %s", p, strerror(-r));
        }
    }
    static const char *const all[] = {"/upper", "/work", "/root"};
    for (size_t i = 0; i < 3 && !r; i++)
        r = mkdir_p2(ctdir, all[i], i == 1 ? 0700 : 0755, err, errlen);
    /* The upper dir's mode and owner are the container's / (overlayfs takes the upper
     * root's). */
    snprintf(p, sizeof p, "%s/upper", ctdir);
    if (!r && root_uid >= 0 && chown(p, (uid_t)root_uid, (gid_t)root_gid) < 0) {
        r = -errno;
        snprintf(err, errlen, "%s: chown to %ld:%ld: %s", p, root_uid, root_gid, strerror(-r));
    }
    return r;
}

int cr_image_container_remove(const char *ctdir, char *err, size_t errlen)
{
    int r = cr_image_rmtree(ctdir);
    if (r < 0)
        snprintf(err, errlen, "%s: removing: %s", ctdir, strerror(-r));
    return r;
}

int cr_image_container_retire(const char *ctdir, char *gone, size_t gonelen, char *err,
                              size_t errlen)
{
    static unsigned long seq;
    const char *slash = strrchr(ctdir, '/');
    if (!slash || (size_t)snprintf(gone, gonelen, "%.*s/.gone-%s-%d-%lu", (int)(slash - ctdir),
                                   ctdir, slash + 1, (int)getpid(), ++seq) >= gonelen) {
        snprintf(err, errlen, "%s: bad container dir", ctdir);
        return -EINVAL;
    }
    if (rename(ctdir, gone) < 0) {
        int e = errno;
        if (e != ENOENT)
            snprintf(err, errlen, "%s: renaming to %s: %s", ctdir, gone, strerror(e));
        return -e;
    }
    return 0;
}
