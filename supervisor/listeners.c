/* supervisord's event listeners: pools, their buffers, the protocol (listeners.h). */
#include "listeners.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "log.h"

#define EVL_ENVELOPE_MAX 512     /* the header line */

/* One event, shared by the pools that take it. */
struct evl_event {
    unsigned refs;
    uint64_t serial;
    char name[48];
    size_t len;
    char payload[];
};

struct evl_item {
    struct evl_event *ev;
    uint64_t poolserial;
};

struct evl_pool {
    char *name;                  /* the section's NAME */
    struct cr_strv subs;         /* its events = ..., copied */
    size_t cap;                  /* buffer_size */
    struct evl_item *q;          /* oldest first */
    size_t n;
    uint64_t next_serial;
    bool live;                   /* in the current config */
};

enum evl_state { EVL_ACKNOWLEDGED, EVL_READY, EVL_BUSY, EVL_UNKNOWN };

/* One listener process (a service of an [eventlistener:x] section). */
struct evl_member {
    struct sv_evl *e;
    char *name;                  /* the service */
    char *pool;                  /* its pool's name */
    enum evl_state st;
    char *buf;                   /* bytes read and not yet understood */
    size_t len;
    long resultlen;              /* -1: the RESULT line has not come yet */
    bool held;                   /* BUSY with inflight */
    struct evl_item inflight;
};

struct sv_evl {
    struct cr_runtime *rt;
    struct evl_pool *pools;
    size_t npools;
    struct evl_member **members;
    size_t nmembers;
    uint64_t next_serial;
    uv_timer_t tick;
    bool tick_init, ticking;
    int64_t last_tick[3];
};

static const int tick_periods[3] = {5, 60, 3600};

static void ev_put(struct evl_event *ev)
{
    if (ev && --ev->refs == 0)
        free(ev);
}

static struct evl_pool *pool_find(struct sv_evl *e, const char *name)
{
    for (size_t i = 0; i < e->npools; i++)
        if (!strcmp(e->pools[i].name, name))
            return &e->pools[i];
    return NULL;
}

/* Into the pool's buffer (at its head: an event given back); the oldest goes when full. */
static void pool_accept(struct evl_pool *p, struct evl_event *ev, uint64_t poolserial,
                        bool head)
{
    if (!p->q && !(p->q = calloc(p->cap + 1, sizeof *p->q)))
        return;
    if (p->n >= p->cap) {
        struct evl_item *old = &p->q[0];
        cr_log(NULL, "event listener pool %s: buffer full (buffer_size %zu), dropping event "
               "%llu (%s)", p->name, p->cap, (unsigned long long)old->ev->serial,
               old->ev->name);
        ev_put(old->ev);
        memmove(p->q, p->q + 1, --p->n * sizeof *p->q);
    }
    if (head) {
        memmove(p->q + 1, p->q, p->n * sizeof *p->q);
        p->q[0] = (struct evl_item){ev, poolserial};
    } else {
        p->q[p->n] = (struct evl_item){ev, poolserial};
    }
    p->n++;
    ev->refs++;
}

static void member_reset(struct evl_member *m, enum evl_state st);
static void member_drop(struct evl_member *m, enum evl_state st);

/* Sends the oldest events of the pool to its RUNNING listeners that are READY. */
static void pool_dispatch(struct sv_evl *e, struct evl_pool *p)
{
    while (p->n) {
        struct evl_member *to = NULL;
        struct cr_svc *svc = NULL;
        for (size_t i = 0; i < e->nmembers && !to; i++) {
            struct evl_member *m = e->members[i];
            if (m->st != EVL_READY || strcmp(m->pool, p->name))
                continue;
            svc = e->rt->find(e->rt, m->name);
            if (svc && cr_svc_state(svc) == CR_ST_RUNNING)
                to = m;
        }
        if (!to)
            return;
        struct evl_item it = p->q[0];
        char head[EVL_ENVELOPE_MAX + 1];
        int hl = snprintf(head, sizeof head, "ver:3.0 server:supervisor serial:%llu pool:%s "
                          "poolserial:%llu eventname:%s len:%zu\n",
                          (unsigned long long)it.ev->serial, p->name,
                          (unsigned long long)it.poolserial, it.ev->name, it.ev->len);
        size_t total = (size_t)hl + it.ev->len;
        char *msg = malloc(total);
        if (!msg)
            return;
        memcpy(msg, head, (size_t)hl);
        memcpy(msg + hl, it.ev->payload, it.ev->len);
        int w = cr_svc_write_stdin(svc, msg, total);
        free(msg);
        if (w < 0) {
            /* its stdin is gone: another listener may take it */
            cr_log(to->name, "event listener: cannot send event %llu: %s",
                   (unsigned long long)it.ev->serial, strerror(-w));
            member_reset(to, EVL_UNKNOWN);
            continue;
        }
        if ((size_t)w < total)   /* READY, yet not reading: it waits for the rest in vain */
            cr_log(to->name, "event listener: its stdin pipe is full; event %llu cut short",
                   (unsigned long long)it.ev->serial);
        memmove(p->q, p->q + 1, --p->n * sizeof *p->q);
        to->st = EVL_BUSY;
        to->held = true;
        to->inflight = it;
        to->resultlen = -1;
    }
}

/* An event listener lets go of what it holds (given back to its pool's head) and of what it
 * said; st is its new protocol state. */
static void member_reset(struct evl_member *m, enum evl_state st)
{
    member_drop(m, st);
    m->len = 0;
}

/* The same, keeping what it said after (a READY may follow a RESULT in one read). */
static void member_drop(struct evl_member *m, enum evl_state st)
{
    if (m->held) {
        struct evl_pool *p = pool_find(m->e, m->pool);
        if (p)
            pool_accept(p, m->inflight.ev, m->inflight.poolserial, true);
        ev_put(m->inflight.ev);
        m->held = false;
    }
    m->st = st;
    m->resultlen = -1;
}

static void consume(struct evl_member *m, size_t n)
{
    memmove(m->buf, m->buf + n, m->len - n);
    m->len -= n;
}

/* What the listener said: supervisord's dispatcher, byte for byte. */
static void member_parse(struct evl_member *m)
{
    static const char ready[] = "READY\n", result[] = "RESULT ";
    while (m->len) {
        if (m->st == EVL_UNKNOWN) {
            m->len = 0;
            return;
        }
        if (m->st == EVL_ACKNOWLEDGED) {
            if (m->len < sizeof ready - 1)
                return;
            if (memcmp(m->buf, ready, sizeof ready - 1)) {
                cr_log(m->name, "event listener: expected READY, got other output; it gets "
                       "no events until it restarts");
                member_reset(m, EVL_UNKNOWN);
                return;
            }
            consume(m, sizeof ready - 1);
            m->st = EVL_READY;
            struct evl_pool *p = pool_find(m->e, m->pool);
            if (p)
                pool_dispatch(m->e, p);
            continue;
        }
        if (m->st == EVL_READY) {
            cr_log(m->name, "event listener: output while READY; it gets no events until it "
                   "restarts");
            member_reset(m, EVL_UNKNOWN);
            return;
        }
        /* BUSY: "RESULT N\n" then N bytes */
        if (m->resultlen < 0) {
            char *nl = memchr(m->buf, '\n', m->len);
            if (!nl)
                return;
            size_t ll = (size_t)(nl - m->buf);
            char *end = NULL;
            long v = -1;
            if (ll > sizeof result - 1 && !memcmp(m->buf, result, sizeof result - 1)) {
                *nl = '\0';
                errno = 0;
                v = strtol(m->buf + sizeof result - 1, &end, 10);
                if (errno || *end || v < 0)
                    v = -1;
            }
            if (v < 0) {
                cr_log(m->name, "event listener: bad result line; it gets no events until it "
                       "restarts");
                member_reset(m, EVL_UNKNOWN);
                return;
            }
            consume(m, ll + 1);
            m->resultlen = v;
        }
        if (m->len < (size_t)m->resultlen)
            return;
        bool ok = m->resultlen == 2 && !memcmp(m->buf, "OK", 2);
        consume(m, (size_t)m->resultlen);
        m->resultlen = -1;
        if (!ok)
            cr_log(m->name, "event listener: event %llu rejected; sent again",
                   (unsigned long long)m->inflight.ev->serial);
        if (ok && m->held) {
            ev_put(m->inflight.ev);
            m->held = false;
        }
        member_drop(m, EVL_ACKNOWLEDGED);   /* a rejected one goes back to the head */
    }
}

static void on_listener_output(void *arg, const char *data, size_t len)
{
    struct evl_member *m = arg;
    if (m->st == EVL_UNKNOWN)
        return;
    char *nb = realloc(m->buf, m->len + len);
    if (!nb) {
        member_reset(m, EVL_UNKNOWN);
        return;
    }
    m->buf = nb;
    memcpy(m->buf + m->len, data, len);
    m->len += len;
    member_parse(m);
}

static struct evl_member *member_of(struct sv_evl *e, const char *name)
{
    for (size_t i = 0; i < e->nmembers; i++)
        if (!strcmp(e->members[i]->name, name))
            return e->members[i];
    return NULL;
}

/* The listener service svc's member (made, and its stdout watched, the first time). */
static struct evl_member *member_attach(struct sv_evl *e, struct cr_svc *svc,
                                        const struct cr_service *c)
{
    struct evl_member *m = member_of(e, c->name);
    if (!m) {
        struct evl_member **nv = realloc(e->members, (e->nmembers + 1) * sizeof *nv);
        if (!nv)
            return NULL;
        e->members = nv;
        if (!(m = calloc(1, sizeof *m)) || !(m->name = strdup(c->name))) {
            free(m);
            return NULL;
        }
        m->e = e;
        m->resultlen = -1;
        e->members[e->nmembers++] = m;
    }
    if (!m->pool || strcmp(m->pool, c->program)) {
        char *p = strdup(c->program);
        if (!p)
            return NULL;
        free(m->pool);
        m->pool = p;
    }
    cr_svc_set_stdout_raw(svc, on_listener_output, m);
    return m;
}

/* ---- making events ---------------------------------------------------------------------------- */

/* Into every pool that takes it. */
static void emit(struct sv_evl *e, const char *name, const char *payload, size_t len)
{
    struct evl_event *ev = NULL;
    for (size_t i = 0; i < e->npools; i++) {
        struct evl_pool *p = &e->pools[i];
        bool wants = false;
        for (size_t k = 0; p->live && k < p->subs.n && !wants; k++)
            wants = cr_evtype_matches(p->subs.v[k], name);
        if (!wants)
            continue;
        if (!ev) {
            if (!(ev = malloc(sizeof *ev + len + 1)))
                return;
            ev->refs = 1;   /* ours, until the pools have it */
            ev->serial = e->next_serial++;
            snprintf(ev->name, sizeof ev->name, "%s", name);
            ev->len = len;
            memcpy(ev->payload, payload, len);
            ev->payload[len] = '\0';
        }
        pool_accept(p, ev, p->next_serial++, false);
        pool_dispatch(e, p);
    }
    ev_put(ev);
}

void sv_evl_changed(struct sv_evl *e, struct cr_svc *svc)
{
    if (!e)
        return;
    const struct cr_service *c = cr_svc_conf(svc);
    struct cr_svc_view v;
    cr_svc_view(svc, &v);
    struct evl_member *m = c && c->listener ? member_attach(e, svc, c)
                                            : member_of(e, cr_svc_name(svc));
    /* a new process (STARTING) starts unacknowledged; one that is gone gives back what it
     * held (as supervisord: a listener STOPPING may still answer) */
    if (m && v.state == CR_ST_STARTING)
        member_reset(m, EVL_ACKNOWLEDGED);
    else if (m && v.state != CR_ST_RUNNING && v.state != CR_ST_STOPPING && m->held)
        member_reset(m, m->st == EVL_BUSY ? EVL_ACKNOWLEDGED : m->st);

    char payload[512];
    int n = snprintf(payload, sizeof payload, "processname:%s groupname:%s from_state:%s",
                     v.name, c && c->sd_group ? c->sd_group : v.name,
                     cr_state_name(v.from_state));
    int pid = v.pid > 0 ? (int)v.pid : (int)v.last_pid;
    switch (v.state) {
    case CR_ST_STARTING:
    case CR_ST_BACKOFF:
        n += snprintf(payload + n, sizeof payload - (size_t)n, " tries:%u", v.tries);
        break;
    case CR_ST_EXITED: {
        bool expected = c && v.exit_status >= 0 && v.exit_status < 128 &&
                        cr_codeset_has(&c->exitcodes, v.exit_status);
        n += snprintf(payload + n, sizeof payload - (size_t)n, " expected:%d pid:%d",
                      expected, pid);
        break;
    }
    case CR_ST_RUNNING:
    case CR_ST_STOPPING:
    case CR_ST_STOPPED:
        n += snprintf(payload + n, sizeof payload - (size_t)n, " pid:%d", pid);
        break;
    default:
        break;
    }
    char name[48];
    snprintf(name, sizeof name, "PROCESS_STATE_%s", cr_state_name(v.state));
    emit(e, name, payload, (size_t)n < sizeof payload ? (size_t)n : sizeof payload - 1);
    if (m && v.state == CR_ST_RUNNING) {
        struct evl_pool *p = pool_find(e, m->pool);
        if (p)
            pool_dispatch(e, p);
    }
}

#define EVL_LOG_MAX 8192         /* of output per PROCESS_LOG event: an envelope never fills
                                    the listener's stdin pipe (64 KiB) */

void sv_evl_output(struct sv_evl *e, struct cr_svc *svc, const char *channel, const char *data,
                   size_t len)
{
    if (!e || !e->npools || !len)
        return;
    const struct cr_service *c = cr_svc_conf(svc);
    struct cr_svc_view v;
    cr_svc_view(svc, &v);
    char name[32];
    snprintf(name, sizeof name, "PROCESS_LOG_%s", !strcmp(channel, "stderr") ? "STDERR"
                                                                             : "STDOUT");
    char *buf = malloc(512 + EVL_LOG_MAX);
    if (!buf)
        return;
    while (len) {
        size_t n = len;
        if (n > EVL_LOG_MAX) {   /* at a line's end when one is in reach */
            const char *nl = memrchr(data, '\n', EVL_LOG_MAX);
            n = nl ? (size_t)(nl - data) + 1 : EVL_LOG_MAX;
        }
        int h = snprintf(buf, 512, "processname:%s groupname:%s pid:%d channel:%s\n", v.name,
                         c && c->sd_group ? c->sd_group : v.name,
                         (int)(v.pid > 0 ? v.pid : v.last_pid), channel);
        if (h < 0 || h >= 512)
            break;
        memcpy(buf + h, data, n);
        emit(e, name, buf, (size_t)h + n);
        data += n;
        len -= n;
    }
    free(buf);
}

void sv_evl_supervisor(struct sv_evl *e, const char *state)
{
    if (!e)
        return;
    char name[48];
    snprintf(name, sizeof name, "SUPERVISOR_STATE_CHANGE_%s", state);
    emit(e, name, "", 0);
}

/* supervisord's ticks: an event when the wall clock enters a new 5 s (60 s, 3600 s) slice;
 * `when` is the slice's start. The timer wakes at the next 5 s boundary. */
static void on_tick(uv_timer_t *t)
{
    struct sv_evl *e = t->data;
    time_t now = time(NULL);
    for (int i = 0; i < 3; i++) {
        int64_t slice = (int64_t)now - (int64_t)now % tick_periods[i];
        if (slice == e->last_tick[i])
            continue;
        e->last_tick[i] = slice;
        char name[16], payload[32];
        snprintf(name, sizeof name, "TICK_%d", tick_periods[i]);
        int n = snprintf(payload, sizeof payload, "when:%lld", (long long)slice);
        emit(e, name, payload, (size_t)n);
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t ms = (int64_t)(ts.tv_sec % 5) * 1000 + ts.tv_nsec / 1000000;
    uv_timer_start(&e->tick, on_tick, (uint64_t)(5000 - ms + 1), 0);
}

static void tick_start(struct sv_evl *e)
{
    bool want = false;
    for (size_t i = 0; i < e->npools; i++)
        for (size_t k = 0; e->pools[i].live && k < e->pools[i].subs.n; k++)
            for (int t = 0; t < 3; t++) {
                char name[16];
                snprintf(name, sizeof name, "TICK_%d", tick_periods[t]);
                want |= cr_evtype_matches(e->pools[i].subs.v[k], name);
            }
    if (!want || e->ticking)
        return;
    if (!e->tick_init) {
        uv_timer_init(e->rt->loop, &e->tick);
        e->tick.data = e;
        e->tick_init = true;
    }
    time_t now = time(NULL);
    for (int i = 0; i < 3; i++)
        e->last_tick[i] = (int64_t)now - (int64_t)now % tick_periods[i];
    e->ticking = true;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t ms = (int64_t)(ts.tv_sec % 5) * 1000 + ts.tv_nsec / 1000000;
    uv_timer_start(&e->tick, on_tick, (uint64_t)(5000 - ms + 1), 0);
}

/* ---- pools ------------------------------------------------------------------------------------- */

static void pool_free(struct evl_pool *p)
{
    for (size_t i = 0; i < p->n; i++)
        ev_put(p->q[i].ev);
    free(p->q);
    free(p->name);
    for (size_t i = 0; i < p->subs.n; i++)
        free(p->subs.v[i]);
    free(p->subs.v);
}

static int pool_set(struct evl_pool *p, const struct cr_service *c)
{
    char **v = calloc(c->events.n + 1, sizeof *v);
    if (!v)
        return -ENOMEM;
    for (size_t i = 0; i < c->events.n; i++)
        if (!(v[i] = strdup(c->events.v[i]))) {
            for (size_t k = 0; k < i; k++)
                free(v[k]);
            free(v);
            return -ENOMEM;
        }
    for (size_t i = 0; i < p->subs.n; i++)
        free(p->subs.v[i]);
    free(p->subs.v);
    p->subs.v = v;
    p->subs.n = c->events.n;
    size_t cap = c->buffer_size > 0 ? (size_t)c->buffer_size : 10;
    if (cap != p->cap) {
        while (p->n > cap) {   /* the oldest go */
            ev_put(p->q[0].ev);
            memmove(p->q, p->q + 1, --p->n * sizeof *p->q);
        }
        struct evl_item *q = realloc(p->q, (cap + 1) * sizeof *q);
        if (!q)
            return -ENOMEM;
        p->q = q;
        p->cap = cap;
    }
    p->live = true;
    return 0;
}

void sv_evl_config(struct sv_evl *e, const struct cr_config *cfg, struct cr_svc *const *svcs,
                   size_t n)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->npools; i++)
        e->pools[i].live = false;
    for (size_t i = 0; i < cfg->nservices; i++) {
        const struct cr_service *c = &cfg->services[i];
        if (!c->listener)
            continue;
        struct evl_pool *p = pool_find(e, c->program);
        if (!p) {
            struct evl_pool *np = realloc(e->pools, (e->npools + 1) * sizeof *np);
            if (!np)
                continue;
            e->pools = np;
            p = &np[e->npools];
            memset(p, 0, sizeof *p);
            if (!(p->name = strdup(c->program)))
                continue;
            e->npools++;
        }
        if (pool_set(p, c) < 0)
            cr_log(NULL, "event listener pool %s: out of memory", c->program);
    }
    for (size_t i = 0; i < n; i++) {
        const struct cr_service *c = cr_svc_conf(svcs[i]);
        if (c && c->listener)
            member_attach(e, svcs[i], c);
    }
    tick_start(e);
}

struct sv_evl *sv_evl_open(struct cr_runtime *rt, const struct cr_config *cfg,
                           struct cr_svc *const *svcs, size_t n)
{
    bool any = false;
    for (size_t i = 0; i < cfg->nservices && !any; i++)
        any = cfg->services[i].listener;
    struct sv_evl *e = calloc(1, sizeof *e);
    if (!e) {
        cr_log(NULL, "event listeners: out of memory");
        return NULL;
    }
    e->rt = rt;
    if (any)
        sv_evl_config(e, cfg, svcs, n);
    /* After a re-exec a listener that runs on said READY to the program before: it is
     * taken as READY (one that was busy then answers, and is told off as UNKNOWN). */
    for (size_t i = 0; i < e->nmembers; i++) {
        struct cr_svc *svc = rt->find(rt, e->members[i]->name);
        if (svc && cr_svc_state(svc) == CR_ST_RUNNING)
            e->members[i]->st = EVL_READY;
    }
    return e;
}

static void tick_closed(uv_handle_t *h)
{
    free(h->data);
}

void sv_evl_close(struct sv_evl *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->nmembers; i++) {
        struct evl_member *m = e->members[i];
        struct cr_svc *svc = e->rt->find(e->rt, m->name);
        if (svc)
            cr_svc_set_stdout_raw(svc, NULL, NULL);
        if (m->held)
            ev_put(m->inflight.ev);
        free(m->buf);
        free(m->name);
        free(m->pool);
        free(m);
    }
    free(e->members);
    for (size_t i = 0; i < e->npools; i++)
        pool_free(&e->pools[i]);
    free(e->pools);
    if (e->tick_init)
        uv_close((uv_handle_t *)&e->tick, tick_closed);
    else
        free(e);
}
