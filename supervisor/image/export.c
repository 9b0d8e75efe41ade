/* `supervisor -c FILE export oci NAME DIR[:TAG]` (image.h): a service's image and its settings
 * as an OCI image layout that skopeo, umoci and podman read.
 *
 *   DIR/oci-layout                 {"imageLayoutVersion": "1.0.0"}
 *   DIR/blobs/sha256/HEX           the layers, the new config, the new manifest
 *   DIR/index.json                 the manifest, under org.opencontainers.image.ref.name TAG
 *
 * A layer keeps its bytes, so its digest: an OCI layer is its blob as it is (gzip, zstd or
 * tar: the media type is told by its first bytes), a docker-archive layer is its member (a
 * tar; its digest is its diff_id). One layer follows them: corral's init alone (x->init,
 * at x->init_at), an uncompressed tar libarchive writes. The config is the image's own with
 * the process fields (Entrypoint, Cmd, Env, WorkingDir, User, StopSignal) replaced by the
 * service's, and the init layer's diff_id (and history entry) added: the image still runs
 * the service's process; export kube names init where it needs it. */
#include "image/image.h"

#include <archive.h>
#include <archive_entry.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MT_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_CONFIG "application/vnd.oci.image.config.v1+json"
#define MT_TAR "application/vnd.oci.image.layer.v1.tar"

struct sink {
    int fd;
    char tmp[4400];
    struct sha256_ctx sha;
    int64_t size;
    unsigned char head[4];
};

static int sink_open(struct sink *k, const char *dir, char *err, size_t errlen)
{
    static unsigned long seq;
    memset(k, 0, sizeof *k);
    snprintf(k->tmp, sizeof k->tmp, "%s/blobs/sha256/.tmp-%d-%lu", dir, (int)getpid(), ++seq);
    k->fd = open(k->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (k->fd < 0) {
        snprintf(err, errlen, "%s: %s", k->tmp, strerror(errno));
        return -errno;
    }
    sha256_init(&k->sha);
    return 0;
}

static int sink_write(struct sink *k, const void *p, size_t n, char *err, size_t errlen)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n && k->size + (int64_t)i < 4; i++)
        k->head[k->size + (int64_t)i] = b[i];
    sha256_update(&k->sha, n, b);
    k->size += (int64_t)n;
    while (n) {
        ssize_t w = write(k->fd, b, n);
        if (w < 0) {
            snprintf(err, errlen, "%s: %s", k->tmp, strerror(errno));
            return -errno;
        }
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Drops a blob half written (an error on the way). */
static void sink_abort(struct sink *k)
{
    close(k->fd);
    unlink(k->tmp);
}

/* Closes the blob; its name is its digest (want, when given, must be it). */
static int sink_close(struct sink *k, const char *dir, const char *want,
                      char digest[CR_IMAGE_DIGEST_LEN], char *err, size_t errlen)
{
    uint8_t d[SHA256_DIGEST_SIZE];
    sha256_digest(&k->sha, sizeof d, d);
    int n = snprintf(digest, CR_IMAGE_DIGEST_LEN, "sha256:");
    for (size_t i = 0; i < sizeof d; i++)
        n += snprintf(digest + n, CR_IMAGE_DIGEST_LEN - (size_t)n, "%02x", d[i]);
    int r = close(k->fd) < 0 ? -errno : 0;
    if (r < 0)
        snprintf(err, errlen, "%s: %s", k->tmp, strerror(-r));
    else if (want && strcmp(want, digest)) {
        snprintf(err, errlen, "layer %s: digest mismatch (its bytes' is %s)", want, digest);
        r = -EINVAL;
    }
    char path[4400];
    snprintf(path, sizeof path, "%s/blobs/sha256/%s", dir, digest + 7);
    if (!r && rename(k->tmp, path) < 0) {
        r = -errno;
        snprintf(err, errlen, "%s: %s", path, strerror(-r));
    }
    if (r)
        unlink(k->tmp);
    return r;
}

static int put_text(const char *dir, const char *text, char digest[CR_IMAGE_DIGEST_LEN],
                    int64_t *size, char *err, size_t errlen)
{
    struct sink k;
    int r = sink_open(&k, dir, err, errlen);
    if (!r && (r = sink_write(&k, text, strlen(text), err, errlen)) < 0) {
        sink_abort(&k);
        return r;
    }
    *size = k.size;
    return r ? r : sink_close(&k, dir, NULL, digest, err, errlen);
}

/* Layer i's bytes into a blob; *mt its media type. */
static int put_layer(const struct cr_image *img, size_t i, const char *dir, const char **mt,
                     int64_t *size, char *err, size_t errlen)
{
    const struct cr_image_layer *l = &img->layers[i];
    enum { BUFSZ = 1 << 16 };
    struct sink k;
    char got[CR_IMAGE_DIGEST_LEN];
    char *buf = malloc(BUFSZ);      /* not per thread: a thread's TLS comes out of its stack */
    int r = buf ? sink_open(&k, dir, err, errlen) : -ENOMEM;
    if (r) {
        if (!buf)
            snprintf(err, errlen, "out of memory");
        free(buf);
        return r;
    }
    if (img->kind == CR_IMAGE_OCI) {
        int fd = open(l->blob, O_RDONLY | O_CLOEXEC);
        ssize_t n = 0;
        if (fd < 0)
            r = -errno;
        while (!r && (n = read(fd, buf, BUFSZ)) > 0)
            r = sink_write(&k, buf, (size_t)n, err, errlen);
        if (!r && n < 0)
            r = -errno;
        if (fd >= 0)
            close(fd);
        if (r && !err[0])
            snprintf(err, errlen, "%s: %s", l->blob, strerror(-r));
    } else {
        struct archive *a = archive_read_new();
        struct archive_entry *e;
        r = -ENOENT;
        archive_read_support_format_tar(a);
        if (archive_read_open_filename(a, img->path, 65536) == ARCHIVE_OK)
            while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
                const char *name = archive_entry_pathname(e);
                if (strcmp(name + (strncmp(name, "./", 2) ? 0 : 2), l->blob))
                    continue;
                la_ssize_t n;
                r = 0;
                while (!r && (n = archive_read_data(a, buf, BUFSZ)) > 0)
                    r = sink_write(&k, buf, (size_t)n, err, errlen);
                if (!r && n < 0)
                    r = -EIO;
                break;
            }
        if (r && !err[0])
            snprintf(err, errlen, "%s: layer member %s: %s", img->path, l->blob,
                     r == -ENOENT ? "not found" : archive_error_string(a));
        archive_read_free(a);
    }
    free(buf);
    if (r) {
        sink_abort(&k);
        return r;
    }
    *size = k.size;
    *mt = k.head[0] == 0x1f && k.head[1] == 0x8b ? "application/vnd.oci.image.layer.v1.tar+gzip"
          : k.head[0] == 0x28 && k.head[1] == 0xb5 && k.head[2] == 0x2f && k.head[3] == 0xfd
              ? "application/vnd.oci.image.layer.v1.tar+zstd"
              : MT_TAR;
    return sink_close(&k, dir, l->digest, got, err, errlen);
}

/* True when the ELF file at fd asks for a program interpreter (it is dynamically linked). */
static bool needs_interpreter(int fd)
{
    Elf64_Ehdr eh;
    if (pread(fd, &eh, sizeof eh, 0) != (ssize_t)sizeof eh ||
        memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
        eh.e_phentsize != sizeof(Elf64_Phdr))
        return true;   /* not a program this check can vouch for */
    for (size_t i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        if (pread(fd, &ph, sizeof ph, (off_t)(eh.e_phoff + i * sizeof ph)) != (ssize_t)sizeof ph ||
            ph.p_type == PT_INTERP)
            return true;
    }
    return false;
}

struct tar_out {
    struct sink *k;
    char *err;
    size_t errlen;
};

static la_ssize_t tar_write(struct archive *a, void *data, const void *buf, size_t n)
{
    struct tar_out *t = data;
    if (sink_write(t->k, buf, n, t->err, t->errlen) < 0) {
        archive_set_error(a, EIO, "%s", t->err);
        return -1;
    }
    return (la_ssize_t)n;
}

/* x->init, opened and checked before anything is written: a regular file that runs in any
 * root (no program interpreter). Its fd in *fd. */
static int open_init(const struct cr_image_export *x, int *fd, struct stat *st, char *err,
                     size_t errlen)
{
    const char *at = x->init_at;
    while (at && *at == '/')
        at++;
    if (!at || !*at || strstr(at, "..")) {
        snprintf(err, errlen, "init: '%s' is not a path in the image", x->init_at);
        return -EINVAL;
    }
    *fd = open(x->init, O_RDONLY | O_CLOEXEC);
    int r = *fd < 0 || fstat(*fd, st) < 0 ? -errno : !S_ISREG(st->st_mode) ? -EINVAL : 0;
    if (r)
        snprintf(err, errlen, "init %s: %s", x->init, r == -EINVAL ? "not a file" : strerror(-r));
    else if (needs_interpreter(*fd)) {
        snprintf(err, errlen, "init %s is not a static program (an image has no loader of "
                              "ours): point CORRAL_INIT at the static build", x->init);
        r = -ENOEXEC;
    }
    if (r && *fd >= 0) {
        close(*fd);
        *fd = -1;
    }
    return r;
}

/* x->init (fd) as a layer of its own: an uncompressed tar (so its digest is its diff_id) with
 * the folders of x->init_at and the file, written by libarchive. Owner 0, times 0: a given
 * init makes the same blob in every export. */
static int put_init_layer(const struct cr_image_export *x, int fd, const struct stat *st,
                          const char *dir, char digest[CR_IMAGE_DIGEST_LEN], int64_t *size,
                          char *err, size_t errlen)
{
    const char *at = x->init_at;
    while (*at == '/')
        at++;
    struct sink k;
    int r = sink_open(&k, dir, err, errlen);
    if (r)
        return r;
    struct tar_out t = {&k, err, errlen};
    struct archive *a = archive_write_new();
    struct archive_entry *e = archive_entry_new();
    char path[4096], buf[1 << 14];
    r = !a || !e || archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
                archive_write_add_filter_none(a) != ARCHIVE_OK ||
                archive_write_open2(a, &t, NULL, tar_write, NULL, NULL) != ARCHIVE_OK
            ? -EIO : 0;
    /* each folder above the file, then the file */
    ssize_t n = 0;
    for (const char *p = at; !r; p++) {
        bool end = !*p;
        if (*p && *p != '/')
            continue;
        snprintf(path, sizeof path, "%.*s", (int)(p - at), at);
        archive_entry_clear(e);
        archive_entry_set_pathname(e, path);
        archive_entry_set_uid(e, 0);
        archive_entry_set_gid(e, 0);
        archive_entry_set_mtime(e, 0, 0);
        archive_entry_set_filetype(e, end ? AE_IFREG : AE_IFDIR);
        archive_entry_set_perm(e, 0755);
        if (end)
            archive_entry_set_size(e, st->st_size);
        if (archive_write_header(a, e) != ARCHIVE_OK) {
            r = -EIO;
            break;
        }
        if (!end)
            continue;
        while ((n = read(fd, buf, sizeof buf)) > 0)
            if (archive_write_data(a, buf, (size_t)n) != n) {
                r = -EIO;
                break;
            }
        if (n < 0) {
            r = -errno;
            snprintf(err, errlen, "init %s: %s", x->init, strerror(errno));
        }
        break;
    }
    if (!r && archive_write_close(a) != ARCHIVE_OK)
        r = -EIO;
    if (r == -EIO && !err[0])
        snprintf(err, errlen, "init layer: %s", a ? archive_error_string(a) : "out of memory");
    archive_entry_free(e);
    archive_write_free(a);
    if (r) {
        sink_abort(&k);
        return r;
    }
    *size = k.size;
    return sink_close(&k, dir, NULL, digest, err, errlen);
}

static json_object *strv_json(char *const *v)
{
    json_object *a = json_object_new_array();
    for (size_t i = 0; a && v && v[i]; i++)
        json_object_array_add(a, json_object_new_string(v[i]));
    return a;
}

static int write_file(const char *dir, const char *name, const char *text, char *err,
                      size_t errlen)
{
    char path[4400], tmp[4500];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "we");
    int ok = f && fputs(text, f) >= 0;
    ok = f && !fclose(f) && ok && rename(tmp, path) == 0;
    if (!ok) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        unlink(tmp);
        return -EIO;
    }
    return 0;
}

static json_object *descriptor(const char *mt, const char *digest, int64_t size)
{
    json_object *d = json_object_new_object();
    json_object_object_add(d, "mediaType", json_object_new_string(mt));
    json_object_object_add(d, "digest", json_object_new_string(digest));
    json_object_object_add(d, "size", json_object_new_int64(size));
    return d;
}

/* The init layer in the config: its diff_id (the tar's own digest) after the image's, and a
 * history entry for it where the image keeps a history (one per layer). */
static void add_init_config(json_object *cfg, const char *digest, const char *at)
{
    json_object *rootfs, *ids, *history;
    if (!json_object_object_get_ex(cfg, "rootfs", &rootfs) ||
        !json_object_is_type(rootfs, json_type_object)) {
        rootfs = json_object_new_object();
        json_object_object_add(rootfs, "type", json_object_new_string("layers"));
        json_object_object_add(cfg, "rootfs", rootfs);
    }
    if (!json_object_object_get_ex(rootfs, "diff_ids", &ids) ||
        !json_object_is_type(ids, json_type_array)) {
        ids = json_object_new_array();
        json_object_object_add(rootfs, "diff_ids", ids);
    }
    json_object_array_add(ids, json_object_new_string(digest));
    if (json_object_object_get_ex(cfg, "history", &history) &&
        json_object_is_type(history, json_type_array)) {
        char what[4200];
        snprintf(what, sizeof what, "corral export oci: corral's init at %s", at);
        json_object *h = json_object_new_object();
        json_object_object_add(h, "created_by", json_object_new_string(what));
        json_object_object_add(h, "comment", json_object_new_string(
            "the entrypoint export kube gives a container whose restart policy Kubernetes "
            "cannot express"));
        json_object_array_add(history, h);
    }
}

int cr_image_export_oci(const struct cr_image *img, const struct cr_image_export *x,
                        const char *dir, const char *tag, char *err, size_t errlen)
{
    char p[4400], digest[CR_IMAGE_DIGEST_LEN];
    int64_t size;
    int r = 0;
    err[0] = 0;
    static const char *const sub[] = {"", "/blobs", "/blobs/sha256"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", dir, sub[i]);
        if (mkdir(p, 0755) < 0 && errno != EEXIST) {
            snprintf(err, errlen, "%s: %s", p, strerror(errno));
            return -errno;
        }
    }
    json_object *manifest = json_object_new_object(), *layers = json_object_new_array();
    json_object *cfg = img->config_doc ? json_tokener_parse(img->config_doc) : NULL;
    json_object *index = NULL;
    int init_fd = -1;
    struct stat init_st;
    if (!cfg)
        cfg = json_object_new_object();
    if (x->init)
        r = open_init(x, &init_fd, &init_st, err, errlen);
    for (size_t i = 0; i < img->nlayers && !r; i++) {
        const char *mt;
        if ((r = put_layer(img, i, dir, &mt, &size, err, errlen)) == 0)
            json_object_array_add(layers, descriptor(mt, img->layers[i].digest, size));
    }
    if (!r && x->init &&
        (r = put_init_layer(x, init_fd, &init_st, dir, digest, &size, err, errlen)) == 0) {
        json_object_array_add(layers, descriptor(MT_TAR, digest, size));
        add_init_config(cfg, digest, x->init_at);
    }
    if (r)
        goto out;
    /* The config: the service's process. */
    json_object *c;
    if (!json_object_object_get_ex(cfg, "config", &c) ||
        !json_object_is_type(c, json_type_object)) {
        c = json_object_new_object();
        json_object_object_add(cfg, "config", c);
    }
    json_object_object_add(c, "Entrypoint", strv_json(x->argv));
    json_object_object_del(c, "Cmd");
    json_object_object_add(c, "Env", strv_json(x->env));
    if (x->workdir)
        json_object_object_add(c, "WorkingDir", json_object_new_string(x->workdir));
    if (x->user)
        json_object_object_add(c, "User", json_object_new_string(x->user));
    if (x->stopsignal)
        json_object_object_add(c, "StopSignal", json_object_new_string(x->stopsignal));
    if (!json_object_object_get_ex(cfg, "architecture", NULL))
        json_object_object_add(cfg, "architecture", json_object_new_string("amd64"));
    if (!json_object_object_get_ex(cfg, "os", NULL))
        json_object_object_add(cfg, "os", json_object_new_string("linux"));
    r = put_text(dir, json_object_to_json_string_ext(cfg, JSON_C_TO_STRING_PLAIN), digest,
                 &size, err, errlen);
    if (r)
        goto out;
    json_object_object_add(manifest, "schemaVersion", json_object_new_int(2));
    json_object_object_add(manifest, "mediaType", json_object_new_string(MT_MANIFEST));
    json_object_object_add(manifest, "config", descriptor(MT_CONFIG, digest, size));
    json_object_object_add(manifest, "layers", json_object_get(layers));
    if (x->source) {
        json_object *an = json_object_new_object();
        json_object_object_add(an, "org.opencontainers.image.base.name",
                               json_object_new_string(x->source));
        json_object_object_add(manifest, "annotations", an);
    }
    r = put_text(dir, json_object_to_json_string_ext(manifest, JSON_C_TO_STRING_PLAIN), digest,
                 &size, err, errlen);
    if (r)
        goto out;
    /* index.json: the layout's, less any other manifest of this tag, plus this one. */
    snprintf(p, sizeof p, "%s/index.json", dir);
    index = json_object_from_file(p);
    json_object *ms = NULL, *keep = json_object_new_array();
    if (!index || !json_object_is_type(index, json_type_object)) {
        if (index)
            json_object_put(index);
        index = json_object_new_object();
    }
    if (json_object_object_get_ex(index, "manifests", &ms) &&
        json_object_is_type(ms, json_type_array))
        for (size_t i = 0; i < json_object_array_length(ms); i++) {
            json_object *m = json_object_array_get_idx(ms, i), *an, *name;
            if (json_object_object_get_ex(m, "annotations", &an) &&
                json_object_object_get_ex(an, "org.opencontainers.image.ref.name", &name) &&
                !strcmp(json_object_get_string(name), tag))
                continue;
            json_object_array_add(keep, json_object_get(m));
        }
    json_object *d = descriptor(MT_MANIFEST, digest, size), *an = json_object_new_object();
    json_object_object_add(an, "org.opencontainers.image.ref.name", json_object_new_string(tag));
    json_object_object_add(d, "annotations", an);
    json_object_array_add(keep, d);
    json_object_object_add(index, "schemaVersion", json_object_new_int(2));
    json_object_object_add(index, "manifests", keep);
    r = write_file(dir, "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}", err, errlen);
    if (!r)
        r = write_file(dir, "index.json",
                       json_object_to_json_string_ext(index, JSON_C_TO_STRING_PLAIN), err,
                       errlen);
out:
    if (init_fd >= 0)
        close(init_fd);
    json_object_put(layers);
    json_object_put(manifest);
    json_object_put(cfg);
    if (index)
        json_object_put(index);
    return r;
}
