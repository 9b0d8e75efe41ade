/* A service's image (image/image.h) → its spec: the command Docker's way, the unset keys the
 * image's config fills, and the overlay root.
 *
 * argv = entrypoint (the key, else the image's Entrypoint) + command (the key; else, unless
 * the entrypoint key is set, the image's Cmd), as `docker run --entrypoint` does. The image's
 * Env goes under environment (build_env in machine.c); WorkingDir, User ("user[:group]") and
 * StopSignal fill directory, user, group and stopsignal where the file leaves them unset. */
#include "config/config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image/image.h"

/* Appends the words of key's command text to the spec's argv. */
static void add_words(struct cr_service *svc, int key, const char *text,
                      struct cr_errlist *errors)
{
    char **argv;
    size_t argc;
    const char *err;
    if (cr_split_command(text, &argv, &argc, &err) < 0) {
        cr_service_error(errors, svc, key, "%s", err);
        return;
    }
    for (size_t i = 0; i < argc; i++) {
        if (cr_spec_add_arg(&svc->spec, argv[i]))
            errors->oom = true;
        free(argv[i]);
    }
    free(argv);
}

static void add_argv(struct cr_service *svc, char *const *v, struct cr_errlist *errors)
{
    for (size_t i = 0; v && v[i]; i++)
        if (cr_spec_add_arg(&svc->spec, v[i]))
            errors->oom = true;
}

/* A field the image fills: a copy of value into *field unless the key was given. */
static void fill(struct cr_service *svc, int key, char **field, const char *value,
                 struct cr_errlist *errors)
{
    if (svc->key_line[key] || !value || *field)
        return;
    if (!(*field = strdup(value)))
        errors->oom = true;
}

void cr_service_image(struct cr_service *svc, const struct cr_global *g,
                      struct cr_errlist *errors)
{
    svc->image_store = g->image_store;
    if (!svc->image && !svc->entrypoint)
        return;
    const struct cr_image *img = NULL;
    if (svc->image) {
        struct cr_image *im = calloc(1, sizeof *im);
        char err[1024];
        if (!im) {
            errors->oom = true;
            return;
        }
        int r = cr_image_open(svc->image, im, err, sizeof err);
        if (r < 0) {
            cr_service_error(errors, svc, CR_K_IMAGE, "%s", err);
            free(im);
        } else {
            svc->img = im;
            img = im;
        }
        if (svc->rootfs)
            cr_service_error(errors, svc, CR_K_ROOTFS, "not with image (line %d): the image "
                             "is the root", svc->key_line[CR_K_IMAGE]);
        if (!(svc->namespaces & CR_NS_MOUNT))
            cr_service_error(errors, svc, CR_K_IMAGE, "needs mount in namespaces");
        if (!g->image_store || strpbrk(g->image_store, ":,"))
            cr_service_error(errors, svc, CR_K_IMAGE, "image_store '%s' cannot hold ':' or ','",
                             g->image_store ? g->image_store : "");
    }
    if (svc->entrypoint)
        add_words(svc, CR_K_ENTRYPOINT, svc->entrypoint, errors);
    else if (img)
        add_argv(svc, img->entrypoint, errors);
    if (svc->command)
        add_words(svc, CR_K_COMMAND, svc->command, errors);
    else if (img && !svc->key_line[CR_K_ENTRYPOINT])
        add_argv(svc, img->cmd, errors);
    if (!img)
        return;
    fill(svc, CR_K_DIRECTORY, &svc->directory, img->workdir, errors);
    if (img->user && !svc->key_line[CR_K_USER] && !svc->user) {
        char *u = strdup(img->user), *colon = u ? strchr(u, ':') : NULL;
        if (!u) {
            errors->oom = true;
            return;
        }
        if (colon) {
            *colon = 0;
            fill(svc, CR_K_GROUP, &svc->group, colon + 1, errors);
        }
        if (*u)
            svc->user = u;
        else
            free(u);
    }
    if (img->stopsignal && !svc->key_line[CR_K_STOPSIGNAL]) {
        int sig = cr_parse_signal(img->stopsignal);
        if (sig > 0)
            svc->stopsignal = sig;
        else
            cr_service_error(errors, svc, CR_K_IMAGE, "the image's StopSignal '%s' is not a "
                             "signal", img->stopsignal);
    }
}

int cr_service_image_root(struct cr_service *svc, struct cr_errlist *errors)
{
    struct cr_spec *sp = &svc->spec;
    const struct cr_image *img = svc->img;
    const char *store = svc->image_store;
    char p[4400];
    snprintf(p, sizeof p, "%s/containers/%s/root", store, svc->name);
    sp->rootfs = strdup(p);
    sp->read_only = svc->read_only;
    if (!sp->rootfs) {
        errors->oom = true;
        return -1;
    }
    /* Under a user namespace the supervisor makes the overlay, of idmapped layers (their
     * owners as the image gives them, inside), and init stages it (spawn/idmap.c). */
    sp->rootfs_idmap = (svc->namespaces & CR_NS_USER) != 0;
    if (!img)
        return -1;
    for (size_t i = img->nlayers; i-- > 0;) {
        if (cr_image_layer_dir(store, &img->layers[i], p, sizeof p) < 0 ||
            cr_spec_add_layer(sp, p) < 0) {
            cr_service_error(errors, svc, CR_K_IMAGE, "layer dir %s: too long, or holds ':' "
                             "or ','", p);
            return -1;
        }
    }
    if (!svc->read_only) {
        snprintf(p, sizeof p, "%s/containers/%s/upper", store, svc->name);
        sp->upper = strdup(p);
        snprintf(p, sizeof p, "%s/containers/%s/work", store, svc->name);
        sp->work = strdup(p);
        if (!sp->upper || !sp->work)
            errors->oom = true;
    }
    return -1;
}

void cr_volume_name(const char *item, char *out, size_t len)
{
    size_t n = strcspn(item, ":");
    snprintf(out, len, "%.*s", (int)(n < len ? n : len - 1), item);
}

static bool volume_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64 || s[0] == '.' || s[0] == '-')
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '.' || *s == '-'))
            return false;
    return true;
}

void cr_service_volumes(struct cr_service *svc, struct cr_errlist *errors)
{
    for (size_t i = 0; i < svc->volume.n; i++) {
        const char *item = svc->volume.v[i];
        int line = svc->volume.line[i];
        char name[128], dst[4096], src[4400];
        cr_volume_name(item, name, sizeof name);
        const char *rest = item + strlen(name);
        rest += *rest == ':';
        const char *colon = strchr(rest, ':');
        snprintf(dst, sizeof dst, "%.*s", (int)(colon ? (size_t)(colon - rest) : strlen(rest)),
                 rest);
        bool ro = colon && !strcmp(colon + 1, "ro");
        if (!volume_name_ok(name) || dst[0] != '/' || (colon && !ro && strcmp(colon + 1, "rw"))) {
            cr_errlist_add(errors, "%s:%d: volume: '%s' is not NAME:/path[:ro] (NAME: 1 to 64 of "
                           "A-Z a-z 0-9 _ . -, not starting with . or -)", svc->file, line, item);
            continue;
        }
        if (!svc->image_store || strpbrk(svc->image_store, ":,")) {
            cr_errlist_add(errors, "%s:%d: volume: image_store '%s' cannot hold ':' or ','",
                           svc->file, line, svc->image_store ? svc->image_store : "");
            continue;
        }
        for (size_t k = 0; k < i; k++) {
            char other[128];
            cr_volume_name(svc->volume.v[k], other, sizeof other);
            if (!strcmp(other, name))
                cr_errlist_add(errors, "%s:%d: volume: '%s' twice (line %d)", svc->file, line,
                               name, svc->volume.line[k]);
        }
        snprintf(src, sizeof src, "%s/volumes/%s", svc->image_store, name);
        if (cr_spec_add_bind(&svc->spec, src, dst, ro))
            errors->oom = true;
        else   /* the store is root's alone: init gets the volume as a mount (spawn/idmap.c) */
            svc->spec.binds[svc->spec.nbinds - 1].clone = (svc->namespaces & CR_NS_USER) != 0;
    }
}
