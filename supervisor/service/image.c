/* A service's image layers, made ready before its first container (order.c asks): layers
 * missing from the store are unpacked on libuv's thread pool, so the loop, and every other
 * service, goes on meanwhile. One job per service at a time; its result is kept for the start
 * that follows (the container's spawn refuses an image whose unpack failed, and the service
 * then goes the way of any failed start). */
#include "service/image.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "image/image.h"
#include "log.h"
#include "service/internal.h"
#include "service/list.h"
#include "service/order.h"

struct cr_image_job {
    uv_work_t work;
    struct cr_svcs *all;
    struct cr_svc *svc;          /* NULL once the service is freed */
    char *ref, *store;
    size_t unpacked;
    int64_t bytes;               /* of the blobs unpacked */
    int rc;
    char err[1024];
};

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The thread: the image read again (the config's copy may go with a reload meanwhile), each
 * missing layer unpacked. */
static void job_run(uv_work_t *w)
{
    struct cr_image_job *j = w->data;
    struct cr_image img;
    j->rc = cr_image_open(j->ref, &img, j->err, sizeof j->err);
    if (j->rc < 0)
        return;
    for (size_t i = 0; i < img.nlayers && j->rc == 0; i++) {
        if (cr_image_layer_present(j->store, &img.layers[i]))
            continue;
        j->rc = cr_image_unpack(j->store, &img, i, j->err, sizeof j->err);
        j->unpacked++;
        if (img.layers[i].size > 0)
            j->bytes += img.layers[i].size;
    }
    cr_image_free(&img);
}

static void job_done(uv_work_t *w, int status)
{
    struct cr_image_job *j = w->data;
    struct cr_svc *svc = j->svc;
    if (svc) {
        svc->image_job = NULL;
        svc->image_tried = true;
        if (status < 0 && !j->rc) {
            j->rc = status;
            snprintf(j->err, sizeof j->err, "%s: unpack cancelled", j->ref);
        }
        snprintf(svc->image_err, sizeof svc->image_err, "%s", j->rc < 0 ? j->err : "");
        if (j->rc < 0)
            cr_log(svc->name, "image %s: %s", j->ref, j->err);
        else
            cr_log(svc->name, "image %s: %zu layer%s unpacked (%lld KB) in %llu ms", j->ref,
                   j->unpacked, j->unpacked == 1 ? "" : "s", (long long)(j->bytes / 1024),
                   (unsigned long long)(mono_ms() - svc->image_t0));
        svc->why[0] = 0;
        cr_order_start_pending(j->all);
    }
    free(j->ref);
    free(j->store);
    free(j);
}

bool cr_svc_image_wait(struct cr_svcs *all, struct cr_svc *svc)
{
    const struct cr_service *c = svc->conf;
    if (!c || !c->image || !c->img)
        return false;
    if (svc->image_job)
        return true;
    if (svc->image_tried) {
        svc->image_tried = false;    /* this start takes the result; the next looks again */
        return false;
    }
    /* Another service unpacking the same image: wait for it (its end runs the start pass
     * again), rather than unpack the same layers twice side by side. */
    for (size_t i = 0; i < all->n; i++) {
        const struct cr_svc *o = all->v[i];
        if (o != svc && o->image_job && !strcmp(o->image_job->ref, c->image)) {
            snprintf(svc->why, sizeof svc->why, "waiting for %s, unpacking the same image",
                     o->name);
            return true;
        }
    }
    svc->image_err[0] = 0;
    size_t missing = 0;
    int64_t bytes = 0;
    for (size_t i = 0; i < c->img->nlayers; i++)
        if (!cr_image_layer_present(c->image_store, &c->img->layers[i])) {
            missing++;
            bytes += c->img->layers[i].size > 0 ? c->img->layers[i].size : 0;
        }
    if (!missing)
        return false;
    struct cr_image_job *j = calloc(1, sizeof *j);
    if (j) {
        j->ref = strdup(c->image);
        j->store = strdup(c->image_store);
    }
    if (!j || !j->ref || !j->store) {
        if (j) {
            free(j->ref);
            free(j->store);
            free(j);
        }
        snprintf(svc->image_err, sizeof svc->image_err, "%s: out of memory", c->image);
        return false;
    }
    j->all = all;
    j->svc = svc;
    j->work.data = j;
    if (uv_queue_work(svc->rt->loop, &j->work, job_run, job_done) < 0) {
        free(j->ref);
        free(j->store);
        free(j);
        snprintf(svc->image_err, sizeof svc->image_err, "%s: cannot queue the unpack",
                 c->image);
        return false;
    }
    svc->image_job = j;
    svc->image_t0 = mono_ms();
    snprintf(svc->why, sizeof svc->why, "unpacking its image (%zu of %zu layers)", missing,
             c->img->nlayers);
    cr_log(svc->name, "image %s: unpacking %zu of its %zu layers (%lld KB)", c->image, missing,
           c->img->nlayers, (long long)(bytes / 1024));
    return true;
}

void cr_svc_image_forget(struct cr_svc *svc)
{
    if (svc->image_job)
        svc->image_job->svc = NULL;
    svc->image_job = NULL;
}
