/* Reading an image: the reference, then the chain of small blobs down to the layers, each one
 * checked against the digest that names it (image.h).
 *
 * OCI layout: index.json names manifests (the tag is the org.opencontainers.image.ref.name
 * annotation); a manifest names the config and the layers by digest; blobs are
 * blobs/sha256/HEX. docker-archive: manifest.json lists images (RepoTags, Config, Layers);
 * the config member is named by its own digest and its rootfs.diff_ids are the digests of
 * the (uncompressed) layer members. */
#include "image/image.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SMALL_BLOB_MAX (4 * 1024 * 1024)   /* index, manifest, config */

static void hex_digest(struct sha256_ctx *c, char out[CR_IMAGE_DIGEST_LEN])
{
    uint8_t d[SHA256_DIGEST_SIZE];
    sha256_digest(c, sizeof d, d);
    int n = snprintf(out, CR_IMAGE_DIGEST_LEN, "sha256:");
    for (size_t i = 0; i < sizeof d; i++)
        n += snprintf(out + n, CR_IMAGE_DIGEST_LEN - (size_t)n, "%02x", d[i]);
}

static void mem_digest(const void *p, size_t n, char out[CR_IMAGE_DIGEST_LEN])
{
    struct sha256_ctx c;
    sha256_init(&c);
    sha256_update(&c, n, p);
    hex_digest(&c, out);
}

int cr_image_file_digest(const char *path, char out[CR_IMAGE_DIGEST_LEN])
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct sha256_ctx c;
    sha256_init(&c);
    uint8_t buf[65536];   /* on the stack: TLS this big is zeroed in every new thread */
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        sha256_update(&c, (size_t)n, buf);
    int e = n < 0 ? errno : 0;
    close(fd);
    if (e)
        return -e;
    hex_digest(&c, out);
    return 0;
}

/* "sha256:" and 64 lowercase hex digits: the only digests accepted (they name files). */
static bool digest_ok(const char *d)
{
    if (!d || strncmp(d, "sha256:", 7) || strlen(d) != 71)
        return false;
    for (const char *p = d + 7; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

int cr_image_ref_parse(const char *ref, enum cr_image_kind *kind, char **path, char **tag,
                       char *err, size_t errlen)
{
    const char *rest;
    *path = *tag = NULL;
    if (!strncmp(ref, "oci:", 4)) {
        *kind = CR_IMAGE_OCI;
        rest = ref + 4;
    } else if (!strncmp(ref, "docker-archive:", 15)) {
        *kind = CR_IMAGE_DOCKER_ARCHIVE;
        rest = ref + 15;
    } else {
        snprintf(err, errlen, "%s: expected oci:PATH[:TAG] or docker-archive:FILE[:REF] "
                 "(pull with skopeo copy docker://... oci:PATH:TAG)", ref);
        return -EINVAL;
    }
    const char *colon = strchr(rest, ':');
    size_t plen = colon ? (size_t)(colon - rest) : strlen(rest);
    if (plen == 0 || (colon && !colon[1])) {
        snprintf(err, errlen, "%s: empty %s", ref, plen == 0 ? "path" : "tag");
        return -EINVAL;
    }
    *path = strndup(rest, plen);
    *tag = colon ? strdup(colon + 1) : NULL;
    if (!*path || (colon && !*tag)) {
        free(*path);
        *path = NULL;
        return -ENOMEM;
    }
    return 0;
}

/* The whole file path (at most SMALL_BLOB_MAX bytes) into *buf, NUL-terminated. */
static int read_small(const char *path, char **buf, size_t *len, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        if (fd >= 0)
            close(fd);
        return -e;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > SMALL_BLOB_MAX) {
        snprintf(err, errlen, "%s: %s", path, S_ISREG(st.st_mode) ? "larger than 4 MB" :
                 "not a regular file");
        close(fd);
        return -EINVAL;
    }
    char *b = malloc((size_t)st.st_size + 1);
    size_t got = 0;
    ssize_t n = 0;
    while (b && got < (size_t)st.st_size &&
           (n = read(fd, b + got, (size_t)st.st_size - got)) > 0)
        got += (size_t)n;
    int e = !b ? ENOMEM : n < 0 ? errno : 0;
    close(fd);
    if (e || got != (size_t)st.st_size) {
        snprintf(err, errlen, "%s: %s", path, e ? strerror(e) : "short read");
        free(b);
        return e ? -e : -EIO;
    }
    b[got] = 0;
    *buf = b;
    *len = got;
    return 0;
}

/* A member of a tar archive (at most SMALL_BLOB_MAX bytes) into *buf, NUL-terminated. */
static int read_member(const char *archive, const char *member, char **buf, size_t *len,
                       char *err, size_t errlen)
{
    struct archive *a = archive_read_new();
    if (!a)
        return -ENOMEM;
    archive_read_support_format_tar(a);
    int r = -ENOENT;
    *buf = NULL;
    if (archive_read_open_filename(a, archive, 65536) != ARCHIVE_OK) {
        snprintf(err, errlen, "%s: %s", archive, archive_error_string(a));
        archive_read_free(a);
        return -EINVAL;
    }
    struct archive_entry *e;
    int ar;
    while ((ar = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
        const char *name = archive_entry_pathname(e);
        if (!strncmp(name, "./", 2))
            name += 2;
        if (strcmp(name, member))
            continue;
        int64_t size = archive_entry_size(e);
        if (size < 0 || size > SMALL_BLOB_MAX) {
            snprintf(err, errlen, "%s: %s: larger than 4 MB", archive, member);
            r = -EINVAL;
            break;
        }
        char *b = malloc((size_t)size + 1);
        if (!b) {
            r = -ENOMEM;
            break;
        }
        la_ssize_t n = archive_read_data(a, b, (size_t)size);
        if (n != size) {
            snprintf(err, errlen, "%s: %s: %s", archive, member,
                     n < 0 ? archive_error_string(a) : "truncated");
            free(b);
            r = -EIO;
            break;
        }
        b[size] = 0;
        *buf = b;
        *len = (size_t)size;
        r = 0;
        break;
    }
    if (r == -ENOENT) {
        if (ar == ARCHIVE_EOF)
            snprintf(err, errlen, "%s: no member %s", archive, member);
        else
            snprintf(err, errlen, "%s: %s", archive, archive_error_string(a));
        r = ar == ARCHIVE_EOF ? -ENOENT : -EIO;
    }
    archive_read_free(a);
    return r;
}

/* PATH/blobs/sha256/HEX, read and checked against digest (and size, when >= 0). */
static int oci_blob(const struct cr_image *img, const char *what, const char *digest,
                    int64_t size, char **buf, size_t *len, char *err, size_t errlen)
{
    if (!digest_ok(digest)) {
        snprintf(err, errlen, "%s: %s: unsupported digest '%s' (sha256 only)", img->path,
                 what, digest ? digest : "(none)");
        return -EINVAL;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/blobs/sha256/%s", img->path, digest + 7);
    int r = read_small(path, buf, len, err, errlen);
    if (r < 0)
        return r;
    char got[CR_IMAGE_DIGEST_LEN];
    mem_digest(*buf, *len, got);
    if (strcmp(got, digest) || (size >= 0 && (int64_t)*len != size)) {
        snprintf(err, errlen, "%s: %s blob %s: digest mismatch (the file's is %s, %zu bytes)",
                 img->path, what, digest, got, *len);
        free(*buf);
        *buf = NULL;
        return -EINVAL;
    }
    return 0;
}

static const char *jstr(json_object *o, const char *key)
{
    json_object *v;
    if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static json_object *jget(json_object *o, const char *key, json_type t)
{
    json_object *v;
    if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, t))
        return NULL;
    return v;
}

/* A JSON array of strings → a NULL-terminated copy (NULL and 0 for absent or null). */
static int strv_of(json_object *arr, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!arr || !json_object_is_type(arr, json_type_array))
        return 0;
    size_t len = json_object_array_length(arr);
    char **v = calloc(len + 1, sizeof *v);
    if (!v)
        return -ENOMEM;
    for (size_t i = 0; i < len; i++) {
        json_object *it = json_object_array_get_idx(arr, i);
        v[i] = strdup(json_object_is_type(it, json_type_string) ?
                      json_object_get_string(it) : "");
        if (!v[i]) {
            for (size_t k = 0; k < i; k++)
                free(v[k]);
            free(v);
            return -ENOMEM;
        }
    }
    *out = v;
    *n = len;
    return 0;
}

/* The image config's fields (Entrypoint, Cmd, Env, WorkingDir, User, StopSignal). */
static int take_config(struct cr_image *img, json_object *cfgdoc)
{
    json_object *c = jget(cfgdoc, "config", json_type_object);
    if (!c)
        return 0;
    int r = strv_of(jget(c, "Entrypoint", json_type_array), &img->entrypoint, &img->nentrypoint);
    if (!r)
        r = strv_of(jget(c, "Cmd", json_type_array), &img->cmd, &img->ncmd);
    if (!r)
        r = strv_of(jget(c, "Env", json_type_array), &img->env, &img->nenv);
    const char *s;
    if (!r && (s = jstr(c, "WorkingDir")) && *s && !(img->workdir = strdup(s)))
        r = -ENOMEM;
    if (!r && (s = jstr(c, "User")) && *s && !(img->user = strdup(s)))
        r = -ENOMEM;
    if (!r && (s = jstr(c, "StopSignal")) && *s && !(img->stopsignal = strdup(s)))
        r = -ENOMEM;
    return r;
}

static json_object *parse_json(const char *buf, size_t len, const char *what, char *err,
                               size_t errlen)
{
    json_tokener *t = json_tokener_new();
    json_object *o = t ? json_tokener_parse_ex(t, buf, (int)len) : NULL;
    if (!o || json_tokener_get_error(t) != json_tokener_success)
        snprintf(err, errlen, "%s: not valid JSON%s%s", what, t ? ": " : "",
                 t ? json_tokener_error_desc(json_tokener_get_error(t)) : "");
    if (o && json_tokener_get_error(t) != json_tokener_success) {
        json_object_put(o);
        o = NULL;
    }
    if (t)
        json_tokener_free(t);
    if (o && !json_object_is_type(o, json_type_object) && !json_object_is_type(o, json_type_array)) {
        snprintf(err, errlen, "%s: not a JSON object", what);
        json_object_put(o);
        o = NULL;
    }
    return o;
}

static int add_layer(struct cr_image *img, const char *digest, const char *blob, int64_t size)
{
    if (img->nlayers >= CR_IMAGE_MAX_LAYERS)
        return -E2BIG;
    struct cr_image_layer *l = &img->layers[img->nlayers];
    snprintf(l->digest, sizeof l->digest, "%s", digest);
    l->blob = strdup(blob);
    l->size = size;
    if (!l->blob)
        return -ENOMEM;
    img->nlayers++;
    return 0;
}

/* OCI: index.json → the manifest tagged img->tag (or the only one) → config and layers. */
static int open_oci(struct cr_image *img, char *err, size_t errlen)
{
    char path[4096], *buf = NULL;
    size_t len = 0;
    snprintf(path, sizeof path, "%s/index.json", img->path);
    int r = read_small(path, &buf, &len, err, errlen);
    if (r < 0)
        return r;
    json_object *index = parse_json(buf, len, path, err, errlen), *manifest = NULL,
                *config = NULL;
    free(buf);
    buf = NULL;
    if (!index)
        return -EINVAL;
    json_object *mans = jget(index, "manifests", json_type_array), *pick = NULL;
    size_t n = mans ? json_object_array_length(mans) : 0;
    for (size_t i = 0; i < n; i++) {
        json_object *m = json_object_array_get_idx(mans, i);
        const char *name = jstr(jget(m, "annotations", json_type_object),
                                "org.opencontainers.image.ref.name");
        if (img->tag ? name && !strcmp(name, img->tag) : n == 1)
            pick = m;
    }
    r = -EINVAL;
    if (!pick) {
        if (img->tag)
            snprintf(err, errlen, "%s: no image tagged '%s' in its index.json", img->path,
                     img->tag);
        else
            snprintf(err, errlen, "%s: %zu images in its index.json: name one (oci:%s:TAG)",
                     img->path, n, img->path);
        goto out;
    }
    const char *mt = jstr(pick, "mediaType");
    if (mt && strstr(mt, "index")) {
        snprintf(err, errlen, "%s: '%s' is an image index (several platforms): copy one "
                 "platform with skopeo copy --override-arch", img->path,
                 img->tag ? img->tag : "");
        goto out;
    }
    json_object *sz = jget(pick, "size", json_type_int);
    r = oci_blob(img, "manifest", jstr(pick, "digest"), sz ? json_object_get_int64(sz) : -1,
                 &buf, &len, err, errlen);
    if (r < 0)
        goto out;
    r = -EINVAL;
    if (!(manifest = parse_json(buf, len, "manifest", err, errlen)))
        goto out;
    free(buf);
    buf = NULL;
    json_object *cd = jget(manifest, "config", json_type_object);
    sz = jget(cd, "size", json_type_int);
    r = oci_blob(img, "config", jstr(cd, "digest"), sz ? json_object_get_int64(sz) : -1, &buf,
                 &len, err, errlen);
    if (r < 0)
        goto out;
    snprintf(img->config_digest, sizeof img->config_digest, "%s", jstr(cd, "digest"));
    r = -EINVAL;
    if (!(config = parse_json(buf, len, "config", err, errlen)))
        goto out;
    json_object *layers = jget(manifest, "layers", json_type_array);
    n = layers ? json_object_array_length(layers) : 0;
    if (n == 0 || n > CR_IMAGE_MAX_LAYERS) {
        snprintf(err, errlen, "%s: manifest with %zu layers (1 to %d)", img->path, n,
                 CR_IMAGE_MAX_LAYERS);
        goto out;
    }
    img->layers = calloc(n, sizeof *img->layers);
    r = img->layers ? 0 : -ENOMEM;
    for (size_t i = 0; i < n && !r; i++) {
        json_object *l = json_object_array_get_idx(layers, i);
        const char *d = jstr(l, "digest");
        if (!digest_ok(d)) {
            snprintf(err, errlen, "%s: layer %zu: unsupported digest '%s' (sha256 only)",
                     img->path, i, d ? d : "(none)");
            r = -EINVAL;
            break;
        }
        snprintf(path, sizeof path, "%s/blobs/sha256/%s", img->path, d + 7);
        sz = jget(l, "size", json_type_int);
        r = add_layer(img, d, path, sz ? json_object_get_int64(sz) : -1);
    }
    if (!r)
        r = take_config(img, config);
out:
    free(buf);
    json_object_put(index);
    if (manifest)
        json_object_put(manifest);
    if (config)
        json_object_put(config);
    return r;
}

/* True when tags (RepoTags) holds want as written, or as docker normalizes it (docker.io/,
 * docker.io/library/ in front; :latest when it has no tag). */
static bool has_tag(json_object *tags, const char *want)
{
    static const char *const prefix[] = {"", "docker.io/", "docker.io/library/"};
    const char *slash = strrchr(want, '/');
    bool tagged = strchr(slash ? slash : want, ':') != NULL;
    size_t n = tags ? json_object_array_length(tags) : 0;
    for (size_t i = 0; i < n; i++) {
        json_object *t = json_object_array_get_idx(tags, i);
        const char *s = json_object_is_type(t, json_type_string) ? json_object_get_string(t) : "";
        for (size_t p = 0; p < 3; p++) {
            char full[1024];
            snprintf(full, sizeof full, "%s%s%s", prefix[p], want, tagged ? "" : ":latest");
            if (!strcmp(s, full))
                return true;
        }
    }
    return false;
}

/* The 64 hex digits in a member name (HEX.json, blobs/sha256/HEX), or NULL. */
static const char *hex_in(const char *name)
{
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    for (size_t i = 0; i < 64; i++)
        if (!((base[i] >= '0' && base[i] <= '9') || (base[i] >= 'a' && base[i] <= 'f')))
            return NULL;
    return base[64] == 0 || base[64] == '.' ? base : NULL;
}

/* docker-archive: manifest.json → the entry tagged img->tag (or the only one) → its config,
 * whose diff_ids name the layer members' digests. */
static int open_docker_archive(struct cr_image *img, char *err, size_t errlen)
{
    char *buf = NULL, what[4200];
    size_t len = 0;
    int r = read_member(img->path, "manifest.json", &buf, &len, err, errlen);
    if (r < 0)
        return r;
    snprintf(what, sizeof what, "%s: manifest.json", img->path);
    json_object *man = parse_json(buf, len, what, err, errlen), *config = NULL;
    free(buf);
    buf = NULL;
    if (!man)
        return -EINVAL;
    size_t n = json_object_is_type(man, json_type_array) ? json_object_array_length(man) : 0;
    json_object *pick = NULL;
    for (size_t i = 0; i < n; i++) {
        json_object *m = json_object_array_get_idx(man, i);
        if (img->tag ? has_tag(jget(m, "RepoTags", json_type_array), img->tag) : n == 1)
            pick = m;
    }
    r = -EINVAL;
    if (!pick) {
        if (img->tag)
            snprintf(err, errlen, "%s: no image tagged '%s' in its manifest.json", img->path,
                     img->tag);
        else
            snprintf(err, errlen, "%s: %zu images in its manifest.json: name one "
                     "(docker-archive:%s:REF)", img->path, n, img->path);
        goto out;
    }
    const char *cfgname = jstr(pick, "Config");
    if (!cfgname) {
        snprintf(err, errlen, "%s: manifest.json: no Config", img->path);
        goto out;
    }
    r = read_member(img->path, cfgname, &buf, &len, err, errlen);
    if (r < 0)
        goto out;
    r = -EINVAL;
    mem_digest(buf, len, img->config_digest);
    const char *hex = hex_in(cfgname);
    if (hex && strncmp(hex, img->config_digest + 7, 64)) {
        snprintf(err, errlen, "%s: config blob %s: digest mismatch (its content's is %s)",
                 img->path, cfgname, img->config_digest);
        goto out;
    }
    snprintf(what, sizeof what, "%s: %s", img->path, cfgname);
    if (!(config = parse_json(buf, len, what, err, errlen)))
        goto out;
    json_object *layers = jget(pick, "Layers", json_type_array);
    json_object *diffs = jget(jget(config, "rootfs", json_type_object), "diff_ids",
                              json_type_array);
    n = layers ? json_object_array_length(layers) : 0;
    if (n == 0 || n > CR_IMAGE_MAX_LAYERS || !diffs || json_object_array_length(diffs) != n) {
        snprintf(err, errlen, "%s: %zu layers, %zu diff_ids in the config (1 to %d, as many)",
                 img->path, n, diffs ? json_object_array_length(diffs) : 0,
                 CR_IMAGE_MAX_LAYERS);
        goto out;
    }
    img->layers = calloc(n, sizeof *img->layers);
    r = img->layers ? 0 : -ENOMEM;
    for (size_t i = 0; i < n && !r; i++) {
        json_object *l = json_object_array_get_idx(layers, i);
        json_object *d = json_object_array_get_idx(diffs, i);
        const char *member = json_object_is_type(l, json_type_string) ?
                             json_object_get_string(l) : NULL;
        const char *digest = json_object_is_type(d, json_type_string) ?
                             json_object_get_string(d) : NULL;
        if (!member || !digest_ok(digest)) {
            snprintf(err, errlen, "%s: layer %zu: bad member or diff_id", img->path, i);
            r = -EINVAL;
            break;
        }
        r = add_layer(img, digest, member, -1);
    }
    if (!r)
        r = take_config(img, config);
out:
    free(buf);
    json_object_put(man);
    if (config)
        json_object_put(config);
    return r;
}

int cr_image_open(const char *ref, struct cr_image *img, char *err, size_t errlen)
{
    memset(img, 0, sizeof *img);
    int r = cr_image_ref_parse(ref, &img->kind, &img->path, &img->tag, err, errlen);
    if (r < 0)
        return r;
    r = img->kind == CR_IMAGE_OCI ? open_oci(img, err, errlen)
                                  : open_docker_archive(img, err, errlen);
    if (r == -ENOMEM)
        snprintf(err, errlen, "%s: out of memory", ref);
    if (r < 0)
        cr_image_free(img);
    return r;
}

static void strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

void cr_image_free(struct cr_image *img)
{
    for (size_t i = 0; i < img->nlayers; i++)
        free(img->layers[i].blob);
    free(img->layers);
    strv_free(img->entrypoint);
    strv_free(img->cmd);
    strv_free(img->env);
    free(img->workdir);
    free(img->user);
    free(img->stopsignal);
    free(img->path);
    free(img->tag);
    memset(img, 0, sizeof *img);
}
