/* A service's image layers and named volumes, made ready before its container starts
 * (order.c asks): layers missing from the store are unpacked, and volumes missing are made
 * (seeded from the image), on libuv's thread pool, so the loop, and every other service, goes
 * on meanwhile. One job per service at a time; its result is kept for the start that follows
 * (the container's spawn refuses an image whose unpack failed, and the service then goes the
 * way of any failed start). */
#include "service/image.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "image/image.h"
#include "log.h"
#include "service/internal.h"
#include "service/list.h"

struct cr_image_job {
    uv_work_t work;
    struct cr_svcs *all;
    void (*ended)(struct cr_svcs *all);   /* the start pass to run again (order.c's) */
    struct cr_svc *svc;          /* NULL once the service is freed */
    char *ref, *store;           /* ref: NULL without an image */
    char **volumes;              /* "NAME:/path[:ro]" items, NULL-terminated */
    char *uidmap, *gidmap;       /* a user namespace's maps: its volumes are owned to fit */
    size_t unpacked, made;
    int64_t bytes;               /* of the blobs unpacked */
    int rc;
    char err[1024];
    /* A line per layer as its unpack begins ("unpacking layer N/M ..."), logged by the loop:
     * the thread fills lines[nposted++] under mu and wakes the loop through async. */
    uv_async_t async;
    pthread_mutex_t mu;
    char lines[CR_IMAGE_MAX_LAYERS][160];
    size_t nposted, nlogged;
};

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void job_free(struct cr_image_job *j)
{
    pthread_mutex_destroy(&j->mu);
    for (size_t i = 0; j->volumes && j->volumes[i]; i++)
        free(j->volumes[i]);
    free(j->volumes);
    free(j->uidmap);
    free(j->gidmap);
    free(j->ref);
    free(j->store);
    free(j);
}

/* The thread: the image read again (the config's copy may go with a reload meanwhile), each
 * missing layer unpacked, then each missing volume made. */
static void job_run(uv_work_t *w)
{
    struct cr_image_job *j = w->data;
    struct cr_image img;
    bool have = false;
    if (j->ref) {
        j->rc = cr_image_open(j->ref, &img, j->err, sizeof j->err);
        if (j->rc < 0)
            return;
        have = true;
        for (size_t i = 0; i < img.nlayers && j->rc == 0; i++) {
            if (cr_image_layer_present(j->store, &img.layers[i]))
                continue;
            pthread_mutex_lock(&j->mu);
            if (j->nposted < CR_IMAGE_MAX_LAYERS) {
                const struct cr_image_layer *l = &img.layers[i];
                char size[32] = "size unknown";
                if (l->size >= 0)
                    snprintf(size, sizeof size, "%.1f MB", (double)l->size / (1024 * 1024));
                snprintf(j->lines[j->nposted++], sizeof j->lines[0],
                         "unpacking layer %zu/%zu %.19s… (%s)", i + 1, img.nlayers, l->digest,
                         size);
            }
            pthread_mutex_unlock(&j->mu);
            uv_async_send(&j->async);
            j->rc = cr_image_unpack(j->store, &img, i, j->err, sizeof j->err);
            j->unpacked++;
            if (img.layers[i].size > 0)
                j->bytes += img.layers[i].size;
        }
    }
    for (size_t i = 0; j->volumes && j->volumes[i] && j->rc == 0; i++) {
        char name[128];
        const char *v = j->volumes[i], *path = strchr(v, ':');
        snprintf(name, sizeof name, "%.*s", (int)(path ? (size_t)(path - v) : strlen(v)), v);
        char dst[4096];
        snprintf(dst, sizeof dst, "%.*s", (int)strcspn(path ? path + 1 : "/", ":"),
                 path ? path + 1 : "/");
        if (!cr_image_volume_present(j->store, name)) {
            j->rc = cr_image_volume_make(j->store, name, have ? &img : NULL, dst, j->err,
                                         sizeof j->err);
            j->made++;
        }
        if (j->rc == 0 && j->uidmap)
            j->rc = cr_image_volume_own(j->store, name, j->uidmap, j->gidmap, j->err,
                                        sizeof j->err);
    }
    if (have)
        cr_image_free(&img);
}

/* The loop's side of the progress lines. */
static void job_progress(uv_async_t *a)
{
    struct cr_image_job *j = a->data;
    for (;;) {
        char line[sizeof j->lines[0]];
        pthread_mutex_lock(&j->mu);
        bool more = j->nlogged < j->nposted;
        if (more)
            memcpy(line, j->lines[j->nlogged++], sizeof line);
        pthread_mutex_unlock(&j->mu);
        if (!more)
            break;
        if (j->svc)
            cr_log(j->svc->name, "image %s: %s", j->ref, line);
    }
}

static void job_closed(uv_handle_t *h)
{
    job_free(h->data);
}

static void job_done(uv_work_t *w, int status)
{
    struct cr_image_job *j = w->data;
    job_progress(&j->async);     /* the lines not logged yet come before the outcome */
    struct cr_svc *svc = j->svc;
    if (svc) {
        const char *what = j->ref ? j->ref : "volumes";
        svc->image_job = NULL;
        svc->image_tried = true;
        if (status < 0 && !j->rc) {
            j->rc = status;
            snprintf(j->err, sizeof j->err, "cancelled");
        }
        snprintf(svc->image_err, sizeof svc->image_err, "%s%s%s", j->rc < 0 ? what : "",
                 j->rc < 0 ? ": " : "", j->rc < 0 ? j->err : "");
        if (j->rc < 0)
            cr_log(svc->name, "image %s: %s", what, j->err);
        else if (j->ref)
            cr_log(svc->name, "image %s: %zu layer%s unpacked (%lld KB)%s in %llu ms", j->ref,
                   j->unpacked, j->unpacked == 1 ? "" : "s", (long long)(j->bytes / 1024),
                   j->made ? ", volumes made" : "",
                   (unsigned long long)(mono_ms() - svc->image_t0));
        else
            cr_log(svc->name, "%zu volume%s made%s", j->made, j->made == 1 ? "" : "s",
                   j->uidmap ? ", owned for its user namespace" : "");
        svc->why[0] = 0;
        j->ended(j->all);
    }
    uv_close((uv_handle_t *)&j->async, job_closed);
}

/* Layers and volumes of c not in the store yet (bytes: of the missing blobs). */
static size_t missing_parts(const struct cr_service *c, size_t *layers, int64_t *bytes)
{
    size_t n = 0;
    *layers = 0;
    *bytes = 0;
    for (size_t i = 0; c->img && i < c->img->nlayers; i++)
        if (!cr_image_layer_present(c->image_store, &c->img->layers[i])) {
            (*layers)++;
            *bytes += c->img->layers[i].size > 0 ? c->img->layers[i].size : 0;
        }
    n += *layers;
    bool userns = c->namespaces & CR_NS_USER;
    long ru = userns ? cr_image_map_id(c->uid_map_text, 0) : -1,
         rg = userns ? cr_image_map_id(c->gid_map_text, 0) : -1;
    for (size_t i = 0; i < c->volume.n; i++) {
        char name[128];
        cr_volume_name(c->volume.v[i], name, sizeof name);
        if (!cr_image_volume_present(c->image_store, name) ||
            (userns && !cr_image_volume_owned(c->image_store, name, ru, rg)))
            n++;
    }
    return n;
}

bool cr_svc_image_wait(struct cr_svcs *all, struct cr_svc *svc,
                       void (*ended)(struct cr_svcs *all))
{
    const struct cr_service *c = svc->conf;
    if (!c || ((!c->image || !c->img) && !c->volume.n))
        return false;
    if (svc->image_job)
        return true;
    if (svc->image_tried) {
        svc->image_tried = false;    /* this start takes the result; the next looks again */
        return false;
    }
    /* Another service unpacking the same image: wait for it (its end runs the start pass
     * again), rather than unpack the same layers twice side by side. */
    for (size_t i = 0; c->image && i < all->n; i++) {
        const struct cr_svc *o = all->v[i];
        if (o != svc && o->image_job && o->image_job->ref &&
            !strcmp(o->image_job->ref, c->image)) {
            snprintf(svc->why, sizeof svc->why, "waiting for %s, unpacking the same image",
                     o->name);
            return true;
        }
    }
    svc->image_err[0] = 0;
    size_t layers;
    int64_t bytes;
    if (!missing_parts(c, &layers, &bytes))
        return false;
    struct cr_image_job *j = calloc(1, sizeof *j);
    bool oom = !j;
    if (j && pthread_mutex_init(&j->mu, NULL) != 0) {
        free(j);
        j = NULL;
        oom = true;
    }
    if (j) {
        j->ref = c->image && c->img ? strdup(c->image) : NULL;
        j->store = strdup(c->image_store);
        j->volumes = calloc(c->volume.n + 1, sizeof *j->volumes);
        oom = (c->image && c->img && !j->ref) || !j->store || !j->volumes;
        if (!oom && c->namespaces & CR_NS_USER && c->uid_map_text && c->gid_map_text) {
            j->uidmap = strdup(c->uid_map_text);
            j->gidmap = strdup(c->gid_map_text);
            oom = !j->uidmap || !j->gidmap;
        }
        for (size_t i = 0; !oom && i < c->volume.n; i++)
            oom = !(j->volumes[i] = strdup(c->volume.v[i]));
        j->all = all;
        j->ended = ended;
        j->svc = svc;
        j->work.data = j;
    }
    bool async = !oom && uv_async_init(svc->rt->loop, &j->async, job_progress) == 0;
    if (async)
        j->async.data = j;
    if (oom || !async || uv_queue_work(svc->rt->loop, &j->work, job_run, job_done) < 0) {
        if (async)
            uv_close((uv_handle_t *)&j->async, job_closed);
        else if (j)
            job_free(j);
        snprintf(svc->image_err, sizeof svc->image_err, "%s: %s",
                 c->image ? c->image : "volumes", oom ? "out of memory" : "cannot queue");
        return false;
    }
    svc->image_job = j;
    svc->image_t0 = mono_ms();
    if (layers && c->img) {
        snprintf(svc->why, sizeof svc->why, "unpacking its image (%zu of %zu layers)", layers,
                 c->img->nlayers);
        cr_log(svc->name, "image %s: unpacking %zu of its %zu layers (%lld KB)", c->image,
               layers, c->img->nlayers, (long long)(bytes / 1024));
    } else {
        snprintf(svc->why, sizeof svc->why, "making its volumes");
    }
    return true;
}

void cr_svc_image_forget(struct cr_svc *svc)
{
    if (svc->image_job)
        svc->image_job->svc = NULL;
    svc->image_job = NULL;
}
