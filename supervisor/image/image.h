/* Images: an OCI image layout or a docker-archive tarball → digest-checked layers, unpacked
 * once each into a content-addressed store, stacked as a container's overlay lower dirs.
 *
 *   image = oci:PATH[:TAG]            an OCI image layout (skopeo copy … oci:PATH:TAG, umoci)
 *   image = docker-archive:FILE[:REF] a `docker save` / `podman save` / skopeo tarball
 * As skopeo's references: the first ':' ends the path.
 *
 * The store ([supervisor] image_store):
 *   STORE/layers/sha256/HEX/          one unpacked layer; HEX is the sha256 of its blob, checked
 *                                     while unpacking (an OCI layer: the manifest's digest; a
 *                                     docker-archive layer: its diff_id)
 *   STORE/layers/sha256/.tmp-HEX-…    a layer being unpacked (renamed into place when whole)
 *   STORE/containers/NAME/{upper,work,root}   a container's overlay upper, work dir, mount point
 *   STORE/volumes/NAME                a named volume (volume.c)
 *
 * Nothing here knows services, configs or the event loop: cr_image_open() reads and checks the
 * small blobs (index, manifest, config); cr_image_unpack() is a blocking call meant for a
 * worker thread (it never changes the working directory or any process-wide state). Every
 * function returns 0 or a negative errno and fills err with a message naming the blob. */
#ifndef CORRAL_IMAGE_H
#define CORRAL_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CR_IMAGE_STORE_DEFAULT "/var/lib/corral"
#define CR_IMAGE_MAX_LAYERS 64
#define CR_IMAGE_DIGEST_LEN 72           /* "sha256:" + 64 hex + NUL, rounded */

enum cr_image_kind { CR_IMAGE_OCI, CR_IMAGE_DOCKER_ARCHIVE };

struct cr_image_layer {
    char digest[CR_IMAGE_DIGEST_LEN];   /* "sha256:HEX" of the blob's bytes */
    char *blob;                          /* OCI: the blob's path; docker-archive: its member */
    int64_t size;                        /* bytes of the blob; -1: not known */
};

struct cr_image {
    enum cr_image_kind kind;
    char *path;                          /* the layout directory or the archive */
    char *tag;                           /* NULL: the only image there */
    char config_digest[CR_IMAGE_DIGEST_LEN];
    struct cr_image_layer *layers;       /* bottom first */
    size_t nlayers;
    /* From the image's config (each NULL / 0 when absent). */
    char **entrypoint, **cmd, **env;     /* NULL-terminated */
    size_t nentrypoint, ncmd, nenv;
    char *workdir, *user, *stopsignal;
    char *config_doc;                    /* the whole config document (JSON), for export */
};

/* Splits "oci:PATH[:TAG]" or "docker-archive:FILE[:REF]". -EINVAL with err otherwise. */
int cr_image_ref_parse(const char *ref, enum cr_image_kind *kind, char **path, char **tag,
                       char *err, size_t errlen);
/* Reads the image ref names: its index (or manifest.json), manifest and config, each checked
 * against its digest. */
int cr_image_open(const char *ref, struct cr_image *img, char *err, size_t errlen);
void cr_image_free(struct cr_image *img);

/* A small file of the image's root (path relative, e.g. "etc/passwd": at most 4 MB) into
 * *buf (NUL-terminated), read from the topmost layer that has it: from the store where the
 * layer is unpacked, else from its blob (streamed, not unpacked). A whiteout or an opaque
 * directory above hides it. -ENOENT when no layer has it. For the config's user lookups. */
int cr_image_read_file(const struct cr_image *img, const char *store, const char *path,
                       char **buf, size_t *len);

/* STORE/layers/sha256/HEX of a layer (-ENAMETOOLONG when it does not fit). */
int cr_image_layer_dir(const char *store, const struct cr_image_layer *l, char *out,
                       size_t len);
bool cr_image_layer_present(const char *store, const struct cr_image_layer *l);
/* Unpacks layer i of img into the store unless it is there. Blocking: run it off the loop.
 * The blob's digest is checked on the bytes unpacked; a mismatch, a corrupt or truncated
 * blob, a path escaping the root, a full disk: nothing is left of it, err names the blob. */
int cr_image_unpack(const char *store, const struct cr_image *img, size_t i, char *err,
                    size_t errlen);

/* The unpacked layers (directories, top first, as a spec's) merged by a read-only overlay
 * in a child's own mount namespace and copied into dst (made if missing) as one plain tree:
 * owners, modes, times, xattrs, devices and symlinks as they are, whiteouts applied. For a
 * runtime bundle's root (export bundle). Blocking. Returns 0 or a negative errno with err. */
int cr_image_flatten(char *const *layers, size_t n, const char *dst, char *err, size_t errlen);

/* A container's dir (STORE/containers/NAME: the parent of its spec's rootfs) and its upper,
 * work and root, made if missing (with the folders above it); with fresh, the upper and work
 * dirs are emptied first (a new container of a service without rootfs_persist). A user
 * namespace's container: root_uid/root_gid (the host ids of its root; -1: none) own the
 * upper's root, the container's / (what its root makes there is then its own, on disk the
 * namespace's host ids). */
int cr_image_container_dirs(const char *ctdir, bool fresh, long root_uid, long root_gid,
                            char *err, size_t errlen);

/* The host id that a user namespace's map ("C H N" lines, as /proc/PID/uid_map) gives
 * container id id; -1 when it maps none (or map is NULL). */
long cr_image_map_id(const char *map, long id);
/* The container id of host id host under map; -1 when outside it. */
long cr_image_unmap_id(const char *map, long host);
/* Removes a container's dir (its container is gone, and rootfs_persist is not set). */
int cr_image_container_remove(const char *ctdir, char *err, size_t errlen);
/* The quick half of a removal, for the loop: renames the container's dir to a fresh
 * STORE/containers/.gone-NAME-PID-N (its path in gone), so a next container of the name
 * starts clean at once; the tree is then removed with cr_image_container_remove(gone) off
 * the loop. -ENOENT when there is no dir. */
int cr_image_container_retire(const char *ctdir, char *gone, size_t gonelen, char *err,
                              size_t errlen);

/* Named volumes: STORE/volumes/NAME. _make creates it unless it is there, seeded with a copy
 * of the image's directory at path (img may be NULL: empty). Blocking: run it off the loop. */
int cr_image_volume_dir(const char *store, const char *name, char *out, size_t len);
bool cr_image_volume_present(const char *store, const char *name);
int cr_image_volume_make(const char *store, const char *name, const struct cr_image *img,
                         const char *path, char *err, size_t errlen);

/* A volume for a user namespace's container: _owned says whether its files have the ids of
 * the namespace whose root is uid:gid on the host (a missing volume counts as owned); _own
 * shifts the owners of every file once, from the ids it had (the host's own, as copied from
 * the image, or another namespace's range of 65536, as STORE/volumes/.NAME.ids records) to
 * the map's ("C H N" lines): files seeded from the image show inside with the image's
 * owners, whatever root inside makes is the namespace's. Blocking: run it off the loop. */
bool cr_image_volume_owned(const char *store, const char *name, long uid, long gid);
int cr_image_volume_own(const char *store, const char *name, const char *uidmap,
                        const char *gidmap, char *err, size_t errlen);

/* `export oci`: the image as an OCI image layout at dir (made if missing; an existing layout
 * gains a tag), tagged tag: the same layers (OCI: the blobs copied; docker-archive: the layer
 * members, uncompressed tars), then x->init's layer, a config whose process fields are the
 * service's (the rest of the image's config kept; the init layer's diff_id and history entry
 * added), a manifest, index.json. x->init must need no program interpreter (a dynamically
 * linked one would not run in another root): -ENOEXEC otherwise. Every blob is written
 * under a temporary name, checked against its digest, then renamed. Blocking. */
struct cr_image_export {
    char *const *argv;                   /* Entrypoint (Cmd is dropped) */
    char *const *env;                    /* NAME=VALUE */
    const char *workdir;                 /* NULL: kept */
    const char *user;                    /* "UID:GID"; NULL: kept */
    const char *stopsignal;              /* "SIGTERM"...; NULL: kept */
    const char *source;                  /* an annotation: what it came from */
    const char *init;                    /* a static program (corral's init) added as one more
                                            layer, an uncompressed tar holding it alone at
                                            init_at (e.g. "/.corral/init", mode 0755, owner
                                            0, time 0: the same file, the same digest);
                                            NULL: none */
    const char *init_at;
};
int cr_image_export_oci(const struct cr_image *img, const struct cr_image_export *x,
                        const char *dir, const char *tag, char *err, size_t errlen);

/* Removes a directory tree without following symlinks or crossing mount points; -errno. */
int cr_image_rmtree(const char *path);
/* Bytes in a directory tree (not following symlinks). */
int64_t cr_image_tree_size(const char *path);

/* sha256 of a whole file as "sha256:HEX". */
int cr_image_file_digest(const char *path, char out[CR_IMAGE_DIGEST_LEN]);

#endif
