/* The order of starts and stops across services (order.h). */
#include "service/order.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "service/image.h"
#include "service/internal.h"

static int64_t svc_priority(const struct cr_svc *svc)
{
    return svc->conf ? svc->conf->priority : 0;
}

/* a depends on b (a service removed by a reload has no config: matched by its name). */
static bool svc_depends_on(const struct cr_svc *a, const struct cr_svc *b)
{
    if (!a->conf || a == b)
        return false;
    for (size_t k = 0; k < a->conf->depends_on.n; k++) {
        const char *name = a->conf->depends_on.v[k];
        if (b->conf ? cr_service_matches(b->conf, name) : !strcmp(b->name, name))
            return true;
    }
    return false;
}

/* A dependency is met by a service that is ready (RUNNING), or that ran and exited with an
 * expected code (a one-shot job: a migration, a fetch). */
static bool dep_met(const struct cr_svc *d)
{
    if (d->state == CR_ST_RUNNING)
        return true;
    int st = d->exit_status;
    return d->state == CR_ST_EXITED && d->conf && st >= 0 && st < 128 &&
           cr_codeset_has(&d->conf->exitcodes, st);
}

/* 1: every dependency is met; 0: waiting (why says for what); -1: one is FATAL. */
static int deps_state(const struct cr_svcs *all, const struct cr_svc *s, char *why, size_t len)
{
    int r = 1;
    why[0] = 0;
    if (!s->conf || s->conf->depends_on.n == 0)
        return 1;          /* O(1) for the common case: a start pass stays O(n), not O(n^2) */
    for (size_t i = 0; i < all->n; i++) {
        const struct cr_svc *d = all->v[i];
        if (!svc_depends_on(s, d) || dep_met(d))
            continue;
        if (d->state == CR_ST_FATAL) {
            snprintf(why, len, "not started: its dependency %s is FATAL", d->name);
            return -1;
        }
        if (r == 1)
            snprintf(why, len, "waiting for %s to be ready (%s)", d->name,
                     cr_state_name(d->state));
        r = 0;
    }
    return r;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void cr_order_start_pending(struct cr_svcs *all)
{
    /* First every start that may happen, then the reasons of those that wait (so they name
     * the state their dependencies are in after this round). */
    uint64_t t0 = all->again ? mono_ms() : 0;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < all->n; i++) {
            struct cr_svc *s = all->v[i];
            if (!s->pending || !cr_svc_settled(s))
                continue;    /* one still stopping starts once down (its on_settled) */
            if (pass == 0 && t0 && mono_ms() - t0 >= CR_ORDER_SLICE_MS) {
                all->again(all->again_arg);   /* the rest (and the reasons) in a moment */
                return;
            }
            if (!s->conf) {
                s->pending = false;
                continue;
            }
            char why[sizeof s->why];
            int r = deps_state(all, s, why, sizeof why);
            if (pass == 1)
                s->blocked = r < 0;
            if (r > 0 && pass == 0 && cr_svc_image_wait(all, s, cr_order_start_pending))
                continue;            /* its layers are being unpacked: why says so */
            if (r > 0 && pass == 0) {
                s->pending = false;
                s->blocked = false;
                s->why[0] = 0;
                cr_svc_event(s, CR_EV_START);
            } else if (r <= 0 && pass == 1 && strcmp(why, s->why)) {
                snprintf(s->why, sizeof s->why, "%s", why);
                cr_log(s->name, "%s", why);
            }
        }
    }
}

/* True when some service (with a config) has depends_on: else no scan is needed. */
static bool any_depends(const struct cr_svcs *all)
{
    for (size_t i = 0; i < all->n; i++)
        if (all->v[i]->conf && all->v[i]->conf->depends_on.n)
            return true;
    return false;
}

/* True when a service that depends on s is still up: s must wait for it to stop. */
static bool has_active_dependent(const struct cr_svcs *all, const struct cr_svc *s)
{
    for (size_t i = 0; i < all->n; i++)
        if (!cr_svc_settled(all->v[i]) && svc_depends_on(all->v[i], s))
            return true;
    return false;
}

/* Stops the services in reverse dependency order, then reverse priority order: a service
 * stops only once every service depending on it is down; among those that may stop, the
 * highest priority still up is stopped first, and the next lower one only once every
 * service of that priority is down. */
bool cr_order_stop_next(struct cr_svcs *all)
{
    bool any = false, up = false;
    int64_t top = 0;
    /* Without depends_on a step is O(n), not O(n^2) (n steps in a shutdown). */
    bool deps = any_depends(all);
    for (size_t i = 0; i < all->n; i++) {
        struct cr_svc *s = all->v[i];
        s->pending = false;           /* nothing starts any more */
        s->blocked = false;
        s->why[0] = 0;
        if (cr_svc_settled(s))
            continue;
        up = true;
        if (deps && has_active_dependent(all, s))
            continue;
        if (!any || svc_priority(s) > top)
            top = svc_priority(s);
        any = true;
    }
    if (!up)
        return false;
    for (size_t i = 0; i < all->n; i++) {
        struct cr_svc *s = all->v[i];
        if (!cr_svc_settled(s) && any && svc_priority(s) == top &&
            s->state != CR_ST_STOPPING && !(deps && has_active_dependent(all, s)))
            cr_svc_event(s, CR_EV_STOP);
    }
    return true;
}

/* Lower priority first, file order among equals. */
static int cmp_prio(const void *a, const void *b)
{
    const struct cr_service *x = *(const struct cr_service *const *)a;
    const struct cr_service *y = *(const struct cr_service *const *)b;
    if (x->priority != y->priority)
        return x->priority < y->priority ? -1 : 1;
    return x < y ? -1 : x > y;
}

const struct cr_service **cr_order_by_priority(const struct cr_config *cfg)
{
    const struct cr_service **v = calloc(cfg->nservices + 1, sizeof *v);
    if (!v)
        return NULL;
    for (size_t i = 0; i < cfg->nservices; i++)
        v[i] = &cfg->services[i];
    qsort(v, cfg->nservices, sizeof *v, cmp_prio);
    return v;
}
