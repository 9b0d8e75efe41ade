/* The control socket: accept, check the peer, read request lines with bounds and a deadline,
 * answer from the runtime's state, never wait for a client. Protocol: shared/ctl_proto.h. */
#include "api/control.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include "log.h"
#include "api/host.h"
#include "api/http.h"
#include "cgroup/cgroup.h"
#include "ctl_proto.h"
#include "service/history.h"
#include "io/logs.h"
#include "net/unixsock.h"
#include "service/service.h"
#include "units.h"

/* ---- the server and its clients ----------------------------------------------------------- */

struct cr_control {
    const struct cr_api_host *host;
    struct cr_runtime *rt;
    uv_pipe_t server;
    char *path;
    dev_t dev;
    ino_t ino;
    bool bound;
    int refs;                    /* the server handle + every client */
    struct client *clients;
    size_t nclients;
    bool closing;
};

struct client {
    struct cr_control *ctl;
    uv_pipe_t pipe;
    uv_timer_t timer;
    int open_handles;
    bool closing;
    bool linger;                 /* close once the queued response is written */
    int writes;                  /* uv_write requests not yet called back */
    struct cr_ctl_lines lb;
    char line[CR_CTL_LINE_MAX];
    char rbuf[4096];
    /* start/stop/restart with wait=MS: what it waits for (input is ignored meanwhile) */
    struct waiter *wait;
    /* logs -f: the followed service's history */
    struct cr_hist *follow;
    struct cr_hist_listener listener;
    uint64_t dropped;
    /* A request answered later, once a writer thread has done its disk work (a log's tail, a
     * rotation): no further line is read until then (answers keep their order), and what
     * was read past its line waits in rbuf. */
    bool paused;
    bool in_feed;                /* on_line() is running for this client */
    int async;                   /* such answers under way: freed only after them */
    char *rest;
    size_t rest_len;
    uint64_t deadline_at;        /* uv_now when the deadline timer is due */
    struct client *next, **pprev;
};

/* A response being built: grows on the heap; out of memory makes it an `error failed`. */
struct obuf {
    char *p;
    size_t len, cap;
    bool oom;
};

/* Room for n bytes in all. */
static void ob_reserve(struct obuf *o, size_t n)
{
    if (o->oom || o->cap >= n)
        return;
    char *p = realloc(o->p, n);
    if (!p) {
        o->oom = true;
        return;
    }
    o->p = p;
    o->cap = n;
}

static void ob_put(struct obuf *o, const char *s, size_t n)
{
    if (o->len + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 1024;
        while (cap < o->len + n + 1)
            cap *= 2;
        ob_reserve(o, cap);
    }
    if (o->oom)
        return;
    memcpy(o->p + o->len, s, n);
    o->len += n;
    o->p[o->len] = 0;
}

static void ob_printf(struct obuf *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ob_printf(struct obuf *o, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    ob_put(o, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

/* " key=value" with value %-encoded. */
static void ob_kv(struct obuf *o, const char *key, const char *value)
{
    char enc[3 * CR_HIST_LINE_MAX * 2];
    size_t n = strlen(value);
    ob_printf(o, " %s=", key);
    /* Long values (joined log lines) are encoded piecewise. */
    while (n) {
        size_t take = n < CR_HIST_LINE_MAX ? n : CR_HIST_LINE_MAX;
        size_t e = cr_ctl_encode(enc, sizeof enc, value, take);
        ob_put(o, enc, e);
        value += take;
        n -= take;
    }
}

static void ob_kvi(struct obuf *o, const char *key, int64_t v)
{
    ob_printf(o, " %s=%lld", key, (long long)v);
}

/* "line TEXT\n"; TEXT has no newline (a '\r' or other control byte stays as it is). */
static void ob_line(struct obuf *o, const char *s, size_t n)
{
    ob_put(o, "line ", 5);
    ob_put(o, s, n);
    ob_put(o, "\n", 1);
}

static void ob_error(struct obuf *o, enum cr_ctl_err e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void ob_error(struct obuf *o, enum cr_ctl_err e, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    for (char *p = buf; *p; p++)
        if (*p == '\n')
            *p = ' ';
    ob_printf(o, "error %s %s\n", cr_ctl_err_name(e), buf);
}

static void client_close(struct client *c);
static void waiter_free(struct client *c);
static void arm_deadline(struct client *c);

static void ctl_unref(struct cr_control *ctl)
{
    if (--ctl->refs == 0) {
        free(ctl->path);
        free(ctl);
    }
}

static void client_free_if_done(struct client *c)
{
    if (c->open_handles || c->async)
        return;
    struct cr_control *ctl = c->ctl;
    free(c);
    ctl_unref(ctl);
}

static void on_client_closed(uv_handle_t *h)
{
    struct client *c = h->data;
    --c->open_handles;
    client_free_if_done(c);
}

static void client_unfollow(struct client *c)
{
    if (c->follow) {
        cr_hist_unlisten(c->follow, &c->listener);
        c->follow = NULL;
    }
}

static void client_close(struct client *c)
{
    if (c->closing)
        return;
    c->closing = true;
    client_unfollow(c);
    waiter_free(c);
    *c->pprev = c->next;
    if (c->next)
        c->next->pprev = c->pprev;
    c->ctl->nclients--;
    uv_close((uv_handle_t *)&c->pipe, on_client_closed);
    uv_close((uv_handle_t *)&c->timer, on_client_closed);
}

struct wreq {
    uv_write_t req;
    struct client *c;
    char data[];
};

static void on_written(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    struct client *c = w->c;
    free(w);
    c->writes--;
    if (c->closing)
        return;
    if (status < 0 || (c->linger && c->writes == 0))
        client_close(c);
}

/* Queues bytes for the client, unless more than limit would wait: then -ENOBUFS (a client
 * that does not read what it asked for is dropped, a follower loses lines). One answer is
 * always taken when nothing waits, however long: a follower's chunk of lines is often
 * larger than its limit (256 KiB of lines, plus "line " on each). */
static int client_send(struct client *c, const char *p, size_t n, size_t limit)
{
    if (c->closing || !n)
        return 0;
    size_t queued = uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe);
    if (queued && queued + n > limit)
        return -ENOBUFS;
    struct wreq *w = malloc(sizeof *w + n);
    if (!w)
        return -ENOMEM;
    memcpy(w->data, p, n);
    w->c = c;
    uv_buf_t b = uv_buf_init(w->data, (unsigned)n);
    int r = uv_write(&w->req, (uv_stream_t *)&c->pipe, &b, 1, on_written);
    if (r < 0) {
        free(w);
        return r;
    }
    c->writes++;
    return 0;
}

static void client_send_ob(struct client *c, struct obuf *o)
{
    if (o->oom) {
        static const char msg[] = "error failed out of memory\n";
        client_send(c, msg, sizeof msg - 1, CR_CTL_OUTQ_MAX);
    } else if (client_send(c, o->p, o->len, CR_CTL_OUTQ_MAX) == -ENOBUFS) {
        client_close(c);   /* it does not read its answers */
    }
    free(o->p);
    memset(o, 0, sizeof *o);
}

/* Sends what is queued, then closes. */
static void client_linger(struct client *c)
{
    if (c->closing)
        return;
    c->linger = true;
    uv_read_stop((uv_stream_t *)&c->pipe);
    client_unfollow(c);
    if (c->writes == 0)
        client_close(c);
}

static void arm_deadline(struct client *c);

/* ---- requests ------------------------------------------------------------------------------- */

static struct cr_svc *find(struct cr_control *ctl, const char *name)
{
    struct cr_svc *const *v;
    size_t n = ctl->host->services(ctl->rt, &v);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(cr_svc_name(v[i]), name))
            return v[i];
    return NULL;
}

/* Every name exists, or `error nosuch` is in o and false returned. */
static bool check_names(struct cr_control *ctl, char **names, int n, struct obuf *o)
{
    for (int i = 0; i < n; i++) {
        if (!find(ctl, names[i])) {
            ob_error(o, CR_CTL_E_NOSUCH, "no such service: %s", names[i]);
            return false;
        }
    }
    return true;
}

/* One exit's fields, as status (prefix "last_") and history ("") both show them. */
static void exit_kv(struct obuf *o, const struct cr_exit *e, const char *prefix)
{
    char what[64], sname[32], key[32];
#define KEY(k) (snprintf(key, sizeof key, "%s%s", prefix, k), key)
    cr_exit_describe(e, what, sizeof what);
    ob_kv(o, KEY("exit"), what);
    if (e->sig)
        ob_kv(o, KEY("signal"), cr_signal_name(e->sig, sname, sizeof sname));
    else
        ob_kvi(o, KEY("code"), e->code);
    ob_kvi(o, KEY("oom"), e->oom);
    ob_kvi(o, KEY("runtime_ms"), e->runtime_ms);
    ob_kvi(o, KEY("time_ms"), e->when_ms);
#undef KEY
}

static void status_rec(struct obuf *o, struct cr_svc *svc)
{
    struct cr_svc_view v;
    cr_svc_view(svc, &v);
    ob_put(o, "rec", 3);
    ob_kv(o, "name", v.name);
    ob_kv(o, "state", cr_state_name(v.state));
    if (v.pid)
        ob_kvi(o, "pid", v.pid);
    if (v.uptime_ms >= 0)
        ob_kvi(o, "uptime_ms", v.uptime_ms);
    ob_kvi(o, "restarts", (int64_t)v.restarts);
    ob_kvi(o, "exits", (int64_t)v.exits);
    if (v.last_exit)
        exit_kv(o, v.last_exit, "last_");
    if (v.next_try_ms >= 0)
        ob_kvi(o, "next_try_ms", v.next_try_ms);
    ob_kvi(o, "ready", v.ready);
    if (v.healthy >= 0)
        ob_kvi(o, "healthy", v.healthy);
    if (v.why[0])
        ob_kv(o, "why", v.why);
    if (v.status_text[0])
        ob_kv(o, "status", v.status_text);
    if (v.pid) {
        struct cr_cg_stats st;
        cr_svc_stats(svc, &st);
        if (st.memory_current >= 0)
            ob_kvi(o, "mem", st.memory_current);
        if (st.memory_peak >= 0)
            ob_kvi(o, "mem_peak", st.memory_peak);
        if (st.cpu_usage_us >= 0)
            ob_kvi(o, "cpu_us", st.cpu_usage_us);
        if (st.pids_current >= 0)
            ob_kvi(o, "pids", st.pids_current);
    }
    ob_kvi(o, "oom_kills", (int64_t)v.oom_kills);
    char addr[256];
    uint64_t rx, tx;
    if (cr_svc_net(svc, addr, sizeof addr, &rx, &tx) == 0) {
        ob_kv(o, "addr", addr);
        ob_kvi(o, "net_rx_bytes", (int64_t)rx);
        ob_kvi(o, "net_tx_bytes", (int64_t)tx);
    }
    if (v.log_dropped)
        ob_kvi(o, "log_dropped", (int64_t)v.log_dropped);
    if (v.reason)
        ob_kv(o, "reason", v.reason);
    char sum[256];
    cr_hist_summary(v.hist, v.window_ms, v.next_try_ms, sum, sizeof sum);
    if (*sum)
        ob_kv(o, "summary", sum);
    if (v.removed)
        ob_kvi(o, "removed", 1);
    ob_put(o, "\n", 1);
}

/* The names of a request with supervisorctl's group forms expanded: G:* is every process of
 * group G ([group:G], or a program's own numprocs copies), G:NAME one of them. Other names
 * pass as they are (an unknown one is reported by check_names). */
struct names {
    int argc;
    char **argv;
};

static void names_free(struct names *nm)
{
    for (int i = 0; i < nm->argc; i++)
        free(nm->argv[i]);
    free(nm->argv);
    nm->argv = NULL;
    nm->argc = 0;
}

static int names_add(struct names *nm, const char *name)
{
    for (int i = 0; i < nm->argc; i++)
        if (!strcmp(nm->argv[i], name))
            return 0;
    char **v = realloc(nm->argv, (size_t)(nm->argc + 1) * sizeof *v);
    if (!v)
        return -ENOMEM;
    nm->argv = v;
    if (!(v[nm->argc] = strdup(name)))
        return -ENOMEM;
    nm->argc++;
    return 0;
}

static int names_expand(struct cr_control *ctl, char **argv, int argc, struct names *nm)
{
    struct cr_svc *const *v;
    size_t n = ctl->host->services(ctl->rt, &v);
    for (int i = 0; i < argc; i++) {
        const char *colon = strchr(argv[i], ':');
        bool matched = false;
        for (size_t j = 0; colon && j < n; j++) {
            const struct cr_service *conf = cr_svc_conf(v[j]);
            const char *group = conf && conf->sd_group ? conf->sd_group : NULL;
            if (!group || strlen(group) != (size_t)(colon - argv[i]) ||
                strncmp(group, argv[i], (size_t)(colon - argv[i])))
                continue;
            if (strcmp(colon + 1, "*") && strcmp(colon + 1, cr_svc_name(v[j])))
                continue;
            matched = true;
            if (names_add(nm, cr_svc_name(v[j])) < 0)
                return -ENOMEM;
        }
        if (!matched && names_add(nm, argv[i]) < 0)
            return -ENOMEM;
    }
    return 0;
}

static void do_status(struct client *c, struct cr_ctl_req *rq, struct names *nm,
                      struct obuf *o)
{
    struct cr_control *ctl = c->ctl;
    if (!check_names(ctl, nm->argv, nm->argc, o))
        return;
    if (nm->argc) {
        for (int i = 0; i < nm->argc; i++)
            status_rec(o, find(ctl, nm->argv[i]));
    } else {
        struct cr_svc *const *v;
        size_t n = ctl->host->services(ctl->rt, &v);
        for (size_t i = 0; i < n; i++)
            status_rec(o, v[i]);
    }
    const char *missing = ctl->host->missing ? ctl->host->missing(ctl->rt) : NULL;
    if (missing)
        ob_printf(o, "ok degraded: %s\n", missing);
    else
        ob_put(o, "ok\n", 3);
}

/* ---- waiting: start/stop/restart wait=MS ---------------------------------------------------- */

/* What one connection waits for: each named service RUNNING (start, restart) or settled
 * (stop). A name's result is decided once, when it first gets there or fails (a start that
 * fell into BACKOFF failed, even if a later try succeeds), and its record is made then, so
 * the answer shows the moment it was decided. */
struct waiter {
    bool up;
    int n, left;
    uint64_t t0;                 /* uv_now when it began */
    struct {
        char *name;
        int result;              /* 0 undecided, 1 got there, -1 failed */
        char *rec;               /* the record line, once decided */
    } v[];
};

static void waiter_free(struct client *c)
{
    struct waiter *w = c->wait;
    if (!w)
        return;
    for (int i = 0; i < w->n; i++) {
        free(w->v[i].name);
        free(w->v[i].rec);
    }
    free(w);
    c->wait = NULL;
}

/* 1: the service got where it was sent; -1: it cannot (now); 0: not yet. */
static int wait_judge(struct cr_control *ctl, const char *name, bool up)
{
    struct cr_svc *s = find(ctl, name);
    if (!s)
        return up ? -1 : 1;            /* a reload removed it meanwhile */
    if (!up)
        return cr_svc_settled(s) ? 1 : 0;
    struct cr_svc_view v;
    cr_svc_view(s, &v);
    if (v.start_blocked)
        return -1;
    if (v.start_pending)
        return 0;                      /* still stopping, or waiting for a dependency */
    if (v.giving_up)
        return 0;                      /* FATAL follows at once: that is the outcome */
    switch (v.state) {
    case CR_ST_RUNNING: return 1;
    case CR_ST_STARTING: return 0;
    default: return -1;                /* BACKOFF, EXITED, FATAL; stopped by someone else */
    }
}

static void wait_record(struct client *c, int i, const char *result)
{
    struct waiter *w = c->wait;
    struct obuf o = {0};
    struct cr_svc *s = find(c->ctl, w->v[i].name);
    ob_put(&o, "rec", 3);
    ob_kv(&o, "name", w->v[i].name);
    ob_kv(&o, "state", s ? cr_state_name(cr_svc_state(s)) : "REMOVED");
    ob_kv(&o, "result", result);
    ob_kvi(&o, "elapsed_ms", (int64_t)(uv_now(c->ctl->rt->loop) - w->t0));
    if (s && strcmp(result, "done")) {
        struct cr_svc_view v;
        cr_svc_view(s, &v);
        if (v.last_exit) {
            char what[64];
            cr_exit_describe(v.last_exit, what, sizeof what);
            ob_kv(&o, "exit", what);
            ob_kvi(&o, "runtime_ms", v.last_exit->runtime_ms);
        }
        if (v.reason)
            ob_kv(&o, "reason", v.reason);
        if (v.why[0])
            ob_kv(&o, "why", v.why);
    }
    ob_put(&o, "\n", 1);
    w->v[i].rec = o.oom ? NULL : o.p;
    if (o.oom)
        free(o.p);
}

/* Sends the answer (those still undecided ran out of time), ends the wait
 * and goes back to reading requests. */
static void wait_finish(struct client *c)
{
    struct waiter *w = c->wait;
    struct obuf o = {0};
    int failed = 0, late = 0;
    const char *first = NULL;
    for (int i = 0; i < w->n; i++) {
        if (w->v[i].result == 0) {
            wait_record(c, i, "timeout");
            late++;
            first = first ? first : w->v[i].name;
        } else if (w->v[i].result < 0) {
            failed++;
        }
        if (w->v[i].rec)
            ob_put(&o, w->v[i].rec, strlen(w->v[i].rec));
    }
    if (failed) {
        for (int i = 0; i < w->n && !first; i++)
            if (w->v[i].result < 0)
                first = w->v[i].name;
        ob_error(&o, CR_CTL_E_FAILED, "%d of %d did not %s (%s first)", failed, w->n,
                 w->up ? "start" : "stop", first);
    } else if (late) {
        ob_error(&o, CR_CTL_E_TIMEOUT, "%d of %d not %s after %llu ms (%s first)", late, w->n,
                 w->up ? "ready" : "stopped",
                 (unsigned long long)(uv_now(c->ctl->rt->loop) - w->t0), first);
    } else {
        ob_put(&o, "ok\n", 3);
    }
    waiter_free(c);
    client_send_ob(c, &o);
    if (!c->closing)
        arm_deadline(c);
}

/* Decides what can be decided; the last decision sends the answer. */
static void wait_check(struct client *c)
{
    struct waiter *w = c->wait;
    for (int i = 0; i < w->n && w->left; i++) {
        if (w->v[i].result)
            continue;
        int r = wait_judge(c->ctl, w->v[i].name, w->up);
        if (!r)
            continue;
        w->v[i].result = r;
        wait_record(c, i, r > 0 ? "done" : "failed");
        w->left--;
    }
    if (!w->left)
        wait_finish(c);
}

static void on_wait_timeout(uv_timer_t *t)
{
    struct client *c = t->data;
    if (c->wait)
        wait_finish(c);
}

static void waiter_start(struct client *c, enum cr_ctl_verb verb, int argc, char **argv,
                         int64_t ms, struct obuf *o)
{
    struct waiter *w = calloc(1, sizeof *w + (size_t)argc * sizeof w->v[0]);
    if (!w) {
        ob_error(o, CR_CTL_E_FAILED, "out of memory");
        return;
    }
    w->up = verb != CR_CTL_STOP;
    w->n = w->left = argc;
    w->t0 = uv_now(c->ctl->rt->loop);
    for (int i = 0; i < argc; i++) {
        if (!(w->v[i].name = strdup(argv[i]))) {
            for (int k = 0; k < i; k++)
                free(w->v[k].name);
            free(w);
            ob_error(o, CR_CTL_E_FAILED, "out of memory");
            return;
        }
    }
    c->wait = w;
    /* The per-request deadline becomes the wait's. */
    uv_timer_stop(&c->timer);
    if (ms > 0)
        uv_timer_start(&c->timer, on_wait_timeout, (uint64_t)ms, 0);
    wait_check(c);
}

void cr_control_changed(struct cr_control *ctl)
{
    if (!ctl || ctl->closing)
        return;
    for (struct client *c = ctl->clients, *next; c; c = next) {
        next = c->next;
        if (c->wait && !c->closing)
            wait_check(c);
    }
}

static void do_lifecycle(struct client *c, struct cr_ctl_req *rq, struct names *nm,
                      struct obuf *o)
{
    struct cr_control *ctl = c->ctl;
    int64_t wait_ms = -1;
    if (nm->argc && !strncmp(nm->argv[0], "wait=", 5)) {
        /* wait=MS (0: no bound): answer once every service got where it was sent */
        unsigned v;
        if (cr_parse_uint(nm->argv[0] + 5, UINT32_MAX, &v) < 0) {
            ob_error(o, CR_CTL_E_USAGE, "bad wait (milliseconds): %s", nm->argv[0] + 5);
            return;
        }
        wait_ms = v;
        free(nm->argv[0]);
        nm->argc--;
        memmove(nm->argv, nm->argv + 1, (size_t)nm->argc * sizeof *nm->argv);
        if (!nm->argc) {
            ob_error(o, CR_CTL_E_USAGE, "%s: no service named", rq->name);
            return;
        }
    }
    if (!check_names(ctl, nm->argv, nm->argc, o))
        return;
    if (rq->verb != CR_CTL_STOP && ctl->host->shutting_down(ctl->rt)) {
        ob_error(o, CR_CTL_E_BUSY, "the supervisor is shutting down");
        return;
    }
    for (int i = 0; i < nm->argc; i++) {
        struct cr_svc *s = find(ctl, nm->argv[i]);
        if (rq->verb != CR_CTL_STOP && !cr_svc_conf(s)) {
            ob_error(o, CR_CTL_E_FAILED, "%s was removed from the configuration",
                     cr_svc_name(s));
            return;
        }
    }
    for (int i = 0; i < nm->argc; i++) {
        struct cr_svc *s = find(ctl, nm->argv[i]);
        if (!s)
            continue;   /* a stop settled and removed it */
        cr_log(cr_svc_name(s), "svctl %s", rq->name);
        /* A start waits for its dependencies, like start-up; a restart is a stop, then
         * that start. */
        ctl->host->request(ctl->rt, s, rq->verb == CR_CTL_START  ? CR_REQ_START
                                       : rq->verb == CR_CTL_STOP ? CR_REQ_STOP
                                                                 : CR_REQ_RESTART);
    }
    if (wait_ms >= 0) {
        waiter_start(c, rq->verb, nm->argc, nm->argv, wait_ms, o);   /* it copies the names */
        return;
    }
    for (int i = 0; i < nm->argc; i++) {
        struct cr_svc *s = find(ctl, nm->argv[i]);
        ob_put(o, "rec", 3);
        ob_kv(o, "name", nm->argv[i]);
        ob_kv(o, "state", s ? cr_state_name(cr_svc_state(s)) : "REMOVED");
        ob_put(o, "\n", 1);
    }
    ob_put(o, "ok\n", 3);
}

static void do_signal(struct client *c, struct cr_ctl_req *rq, struct names *nm,
                      struct obuf *o)
{
    struct cr_control *ctl = c->ctl;
    int sig = cr_parse_signal(nm->argv[0]);
    if (sig <= 0 || sig >= 65) {
        ob_error(o, CR_CTL_E_USAGE, "bad signal: %s", nm->argv[0]);
        return;
    }
    if (!check_names(ctl, nm->argv + 1, nm->argc - 1, o))
        return;
    int failed = 0;
    char first[128] = "";
    for (int i = 1; i < nm->argc; i++) {
        struct cr_svc *s = find(ctl, nm->argv[i]);
        int r = cr_svc_signal(s, sig);
        ob_put(o, "rec", 3);
        ob_kv(o, "name", cr_svc_name(s));
        ob_kv(o, "result", r == 0 ? "sent" : r == -ESRCH ? "not running" : strerror(-r));
        ob_put(o, "\n", 1);
        if (r < 0 && !failed++)
            snprintf(first, sizeof first, "%s: %s", cr_svc_name(s),
                     r == -ESRCH ? "not running" : strerror(-r));
    }
    if (failed)
        ob_error(o, CR_CTL_E_FAILED, "%s", first);
    else
        ob_put(o, "ok\n", 3);
}

static void tail_line(void *arg, const char *line)
{
    ob_line(arg, line, strlen(line));
}

/* A chunk of the followed service's output (whole lines), or NULL: the service is gone. */
static void on_follow(void *arg, const char *data, size_t len)
{
    struct client *c = arg;
    if (!data) {
        static const char msg[] = "ok the service was removed\n";
        c->follow = NULL;   /* the history is going away: nothing to unlisten */
        client_send(c, msg, sizeof msg - 1, CR_CTL_OUTQ_MAX + CR_CTL_FOLLOW_MAX);
        client_linger(c);
        return;
    }
    /* A follower that has not read what it has is not sent more: counting the loss costs
     * nothing, formatting every chunk for it only to throw it away cost the loop dearly. */
    if (uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe) >= CR_CTL_FOLLOW_MAX) {
        c->dropped++;
        return;
    }
    struct obuf o = {0};
    ob_reserve(&o, len + len / 8 + 64);   /* "line " per line: one allocation, mostly */
    if (c->dropped) {
        ob_printf(&o, "rec dropped=%llu\n", (unsigned long long)c->dropped);
    }
    const char *end = data + len;
    while (data < end) {
        const char *nl = memchr(data, '\n', (size_t)(end - data));
        size_t n = nl ? (size_t)(nl - data) : (size_t)(end - data);
        ob_line(&o, data, n);
        data += n + (nl ? 1 : 0);
    }
    if (o.oom) {
        c->dropped++;
    } else if (client_send(c, o.p, o.len, CR_CTL_FOLLOW_MAX) < 0) {
        c->dropped++;   /* a slow reader loses lines, never holds the supervisor up */
    } else {
        c->dropped = 0;
    }
    free(o.p);
}

/* The service called name with its view, or NULL with an error answer. */
static struct cr_svc *view_named(struct client *c, const char *name, struct obuf *o,
                                 struct cr_svc_view *v)
{
    struct cr_svc *s = find(c->ctl, name);
    if (!s)
        ob_error(o, CR_CTL_E_NOSUCH, "no such service: %s", name);
    else
        cr_svc_view(s, v);
    return s;
}

/* ---- answers that come later ------------------------------------------------------------ */

static void feed(struct client *c, char *data, size_t n);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void defer_begin(struct client *c)
{
    c->paused = true;
    c->async++;
    uv_timer_stop(&c->timer);   /* a stalled disk is no client's idleness */
}

/* The answer is not deferred after all (refused at once): read on as before defer_begin. */
static void defer_cancel(struct client *c)
{
    c->paused = false;
    c->async--;
}

/* The deferred answer is ready: false when the client is gone meanwhile (then freed). */
static bool defer_end(struct client *c)
{
    c->async--;
    if (c->closing) {
        client_free_if_done(c);
        return false;
    }
    return true;
}

/* After the deferred answer was sent: reads on, the lines already read first. */
static void client_resume(struct client *c)
{
    c->paused = false;
    if (c->in_feed || c->closing || c->linger)
        return;   /* in_feed: answered at once, within its own line: the feed goes on */
    if (!c->follow && !c->wait)
        arm_deadline(c);
    char *rest = c->rest;
    size_t n = c->rest_len;
    c->rest = NULL;
    c->rest_len = 0;
    if (n)
        feed(c, rest, n);
    if (!c->paused && !c->closing && !c->linger &&
        uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read) < 0)
        client_close(c);
}

/* `logs NAME N [follow]` from log files: each file's tail read by a writer thread. */
struct logs_job {
    struct client *c;
    char *name;
    char *files[2];
    int i;
    unsigned n;
    bool follow;
    struct obuf o;
};

static void logs_job_free(struct logs_job *j)
{
    free(j->name);
    free(j->files[0]);
    free(j->files[1]);
    free(j->o.p);
    free(j);
}

static void logs_finish(struct logs_job *j)
{
    struct client *c = j->c;
    if (!defer_end(c)) {
        logs_job_free(j);
        return;
    }
    struct cr_svc_view v;
    struct cr_svc *s = j->follow ? view_named(c, j->name, &j->o, &v) : NULL;
    if (!j->follow) {
        ob_put(&j->o, "ok\n", 3);
    } else if (s && !v.hist) {
        ob_error(&j->o, CR_CTL_E_FAILED, "out of memory");
    } else if (s) {
        /* the service may have gone while its files were read: looked up again */
        c->follow = v.hist;
        c->listener.fn = on_follow;
        c->listener.arg = c;
        cr_hist_listen(v.hist, &c->listener);
    }
    client_send_ob(c, &j->o);
    logs_job_free(j);
    client_resume(c);
}

static void logs_next(struct logs_job *j);

static void on_tail(void *arg, int err, char *text, size_t tl)
{
    struct logs_job *j = arg;
    if (err == 0) {
        for (char *p = text, *e = text + tl; p < e;) {
            char *nl = memchr(p, '\n', (size_t)(e - p));
            size_t ll = nl ? (size_t)(nl - p) : (size_t)(e - p);
            ob_line(&j->o, p, ll);
            p += ll + 1;
        }
    }
    free(text);
    j->i++;
    logs_next(j);
}

static void logs_next(struct logs_job *j)
{
    while (j->i < 2 && !j->files[j->i])
        j->i++;
    if (j->i == 2 || j->c->closing) {
        logs_finish(j);
        return;
    }
    ob_put(&j->o, "rec", 3);
    ob_kv(&j->o, "file", j->files[j->i]);
    ob_put(&j->o, "\n", 1);
    if (cr_logs_tail_async(j->files[j->i], j->n, on_tail, j) < 0)
        on_tail(j, -ENOMEM, NULL, 0);
}

static void on_rotated(void *arg, int n)
{
    struct client *c = arg;
    if (!defer_end(c))
        return;
    char msg[64];
    int len = snprintf(msg, sizeof msg, "ok rotated %d file%s\n", n, n == 1 ? "" : "s");
    client_send(c, msg, (size_t)len, CR_CTL_OUTQ_MAX);
    client_resume(c);
}

/* net-connect: the answer comes from on_connected(). The peer must be the run itself, as
 * root (the host's net_connect checks the rest). */
static void on_connected(void *arg, int r, const char *text)
{
    struct client *c = arg;
    if (!defer_end(c))
        return;
    struct obuf o = {0};
    if (r < 0)
        ob_error(&o, CR_CTL_E_FAILED, "net-connect: %s", text);
    else
        ob_printf(&o, "ok %s\n", text);
    client_send_ob(c, &o);
    client_resume(c);
}

static void do_net_connect(struct client *c, struct cr_ctl_req *rq, struct obuf *o)
{
    unsigned run, init;
    uv_os_fd_t fd;
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (cr_parse_uint(rq->argv[1], INT32_MAX, &run) < 0 || run < 1 ||
        cr_parse_uint(rq->argv[2], INT32_MAX, &init) < 0 || init < 1) {
        ob_error(o, CR_CTL_E_USAGE, "net-connect: bad pid: %s %s", rq->argv[1], rq->argv[2]);
        return;
    }
    if (uv_fileno((uv_handle_t *)&c->pipe, &fd) < 0 ||
        getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || len != sizeof cred ||
        cred.uid != 0 || cred.pid != (pid_t)run) {
        ob_error(o, CR_CTL_E_DENIED, "net-connect: only the run itself (pid %u, as root) may ask",
                 run);
        return;
    }
    char why[256];
    defer_begin(c);
    int r = c->ctl->host->net_connect(c->ctl->rt, rq->argv[0], (pid_t)run, (pid_t)init,
                                      rq->argv[3], rq->argv + 4, (size_t)rq->argc - 4,
                                      on_connected, c, why, sizeof why);
    if (r < 0) {
        defer_cancel(c);
        ob_error(o, CR_CTL_E_FAILED, "net-connect: %s", why);
    }
}

/* reexec: its check runs beside the loop (the answer comes from on_reexec_checked), and
 * says which program it checked (said); the re-exec of that one follows. */
static void on_reexec_checked(void *arg, int r, const char *said)
{
    struct client *c = arg;
    char why[512];
    if (!defer_end(c))
        return;   /* the client went: no re-exec it can no longer hear of */
    /* asked for before the answer (the execve waits for a later turn of the loop): what
     * became impossible during the check (a stop began, a service left its state) is said */
    if (r == 0 && (r = c->ctl->host->reexec(c->ctl->rt, said, why, sizeof why)) < 0)
        said = why;
    struct obuf o = {0};
    if (r < 0)
        ob_error(&o, r == -ESHUTDOWN || r == -EBUSY ? CR_CTL_E_BUSY : CR_CTL_E_FAILED,
                 "reexec: %s", said);
    else
        ob_printf(&o, "ok re-executing %s\n", said);
    client_send_ob(c, &o);
    client_resume(c);
}

static void do_reexec(struct client *c, struct cr_ctl_req *rq, struct obuf *o)
{
    char why[512];
    defer_begin(c);
    int r = c->ctl->host->reexec_check(c->ctl->rt, rq->argc ? rq->argv[0] : NULL,
                                       on_reexec_checked, c, why, sizeof why);
    if (r < 0) {
        defer_cancel(c);
        ob_error(o, r == -ESHUTDOWN || r == -EBUSY ? CR_CTL_E_BUSY : CR_CTL_E_FAILED,
                 "reexec: %s", why);
    }
}

static void do_logs(struct client *c, struct cr_ctl_req *rq, struct obuf *o)
{
    struct cr_svc_view v;
    struct cr_svc *s = view_named(c, rq->argv[0], o, &v);
    if (!s)
        return;
    struct cr_hist *hist = v.hist;
    unsigned n = 10;
    bool follow = false;
    for (int i = 1; i < rq->argc; i++) {
        if (!strcmp(rq->argv[i], "follow"))
            follow = true;
        else if (cr_parse_uint(rq->argv[i], 10000, &n) < 0) {
            ob_error(o, CR_CTL_E_USAGE, "bad line count (0-10000): %s", rq->argv[i]);
            return;
        }
    }
    /* From the log files when it has them (each announced by a `rec file=`), else from the
     * ring of recent lines kept in memory. */
    const char *files[2] = {cr_svc_log_path(s, CR_LOG_STDOUT), cr_svc_log_path(s, CR_LOG_STDERR)};
    if (files[1] && files[0] && !strcmp(files[0], files[1]))
        files[1] = NULL;
    if (files[0] || files[1]) {
        struct logs_job *j = calloc(1, sizeof *j);
        if (!j || !(j->name = strdup(rq->argv[0])) ||
            (files[0] && !(j->files[0] = strdup(files[0]))) ||
            (files[1] && !(j->files[1] = strdup(files[1])))) {
            if (j)
                logs_job_free(j);
            ob_error(o, CR_CTL_E_FAILED, "out of memory");
            return;
        }
        j->c = c;
        j->n = n;
        j->follow = follow;
        defer_begin(c);
        logs_next(j);   /* the answer comes from logs_finish() */
        return;
    } else {
        cr_hist_tail(hist, n, tail_line, o);
    }
    if (!follow) {
        ob_put(o, "ok\n", 3);
        return;
    }
    if (!hist) {
        ob_error(o, CR_CTL_E_FAILED, "out of memory");
        return;
    }
    client_unfollow(c);
    c->follow = hist;
    c->listener.fn = on_follow;
    c->listener.arg = c;
    cr_hist_listen(hist, &c->listener);
    uv_timer_stop(&c->timer);   /* a follower may stay as long as it likes */
}

static void do_reload(struct client *c, struct cr_ctl_req *rq, struct obuf *o)
{
    struct cr_plan plan;
    memset(&plan, 0, sizeof plan);
    bool apply = rq->verb == CR_CTL_RELOAD;
    int r = c->ctl->host->reload(c->ctl->rt, apply, &plan);
    if (r == -ESHUTDOWN) {
        ob_error(o, CR_CTL_E_BUSY, "the supervisor is shutting down");
    } else if (r == -EINVAL) {
        for (size_t i = 0; i < plan.errors.n; i++)
            ob_line(o, plan.errors.v[i], strlen(plan.errors.v[i]));
        ob_error(o, CR_CTL_E_CONFIG, "%zu error%s in the configuration; nothing %s",
                 plan.errors.n, plan.errors.n == 1 ? "" : "s", apply ? "changed" : "would change");
    } else if (r < 0) {
        ob_error(o, CR_CTL_E_FAILED, "%s", strerror(-r));
    } else {
        for (size_t i = 0; i < plan.notices.n; i++) {
            ob_put(o, "rec", 3);
            ob_kv(o, "notice", plan.notices.v[i]);
            ob_put(o, "\n", 1);
        }
        for (size_t i = 0; i < plan.n; i++) {
            ob_put(o, "rec", 3);
            ob_kv(o, "name", plan.v[i].name);
            ob_kv(o, "action", cr_plan_action_name(plan.v[i].action));
            if (plan.v[i].keys[0])
                ob_kv(o, "keys", plan.v[i].keys);
            ob_put(o, "\n", 1);
        }
        ob_printf(o, "ok %s\n", apply ? "applied" : "not applied");
    }
    cr_plan_free(&plan);
}

static void do_history(struct client *c, struct cr_ctl_req *rq, struct obuf *o)
{
    struct cr_svc_view v;
    struct cr_svc *s = view_named(c, rq->argv[0], o, &v);
    if (!s)
        return;
    for (size_t i = 0; i < cr_hist_count(v.hist); i++) {
        const struct cr_exit *e = cr_hist_at(v.hist, i);
        ob_put(o, "rec", 3);
        exit_kv(o, e, "");
        ob_kvi(o, "container", e->container);
        ob_kvi(o, "stopped", e->stopped);
        if (e->mem_peak >= 0)
            ob_kvi(o, "mem_peak", e->mem_peak);
        if (e->reason)
            ob_kv(o, "reason", e->reason);
        if (e->lines)
            ob_kv(o, "lines", e->lines);
        ob_put(o, "\n", 1);
    }
    char sum[256];
    cr_hist_summary(v.hist, v.window_ms, v.next_try_ms, sum, sizeof sum);
    ob_printf(o, "ok %s\n", sum);
}

static void do_hello(struct client *c, struct cr_ctl_req *rq, struct obuf *o)
{
    (void)c;
    unsigned v;
    if (cr_parse_uint(rq->argv[0], 1000000, &v) < 0 || v < 1) {
        ob_error(o, CR_CTL_E_VERSION, "protocol version %s not supported (this is %d)",
                 rq->argv[0], CR_CTL_PROTO_VERSION);
        return;
    }
    /* A newer client speaks our version, if it can; it sees ours here. */
    ob_printf(o, "rec proto=%d version=%s pid=%d\nok\n", CR_CTL_PROTO_VERSION, CORRAL_VERSION,
              (int)getpid());
}

/* One request line. Returns non-zero to stop reading this client's buffer. */
static int on_line(void *arg, char *line, size_t len)
{
    struct client *c = arg;
    if (c->closing || c->linger)
        return 1;
    if (c->follow || c->wait)
        return 0;   /* a follower's (a waiter's) input is ignored; closing the connection ends it */
    struct cr_ctl_req rq;
    const char *why = NULL;
    struct obuf o = {0};
    int e = cr_ctl_parse_request(line, len, &rq, &why);
    if (e) {
        ob_error(&o, (enum cr_ctl_err)e, "%s", why);
    } else {
        switch (rq.verb) {
        case CR_CTL_HELLO: do_hello(c, &rq, &o); break;
        case CR_CTL_STATUS:
        case CR_CTL_START:
        case CR_CTL_STOP:
        case CR_CTL_RESTART:
        case CR_CTL_SIGNAL: {
            /* the signal's name stays first, as does a start/stop/restart's wait=MS */
            bool lifecycle = rq.verb == CR_CTL_START || rq.verb == CR_CTL_STOP ||
                             rq.verb == CR_CTL_RESTART;
            int skip = rq.argc > 0 && (rq.verb == CR_CTL_SIGNAL ||
                                       (lifecycle && !strncmp(rq.argv[0], "wait=", 5))) ? 1 : 0;
            struct names nm = {0};
            if ((skip && names_add(&nm, rq.argv[0]) < 0) ||
                names_expand(c->ctl, rq.argv + skip, rq.argc - skip, &nm) < 0)
                ob_error(&o, CR_CTL_E_FAILED, "out of memory");
            else if (rq.verb == CR_CTL_STATUS)
                do_status(c, &rq, &nm, &o);
            else if (rq.verb == CR_CTL_SIGNAL)
                do_signal(c, &rq, &nm, &o);
            else
                do_lifecycle(c, &rq, &nm, &o);
            names_free(&nm);
            break;
        }
        case CR_CTL_LOGS: do_logs(c, &rq, &o); break;
        case CR_CTL_RELOAD:
        case CR_CTL_CHECK: do_reload(c, &rq, &o); break;
        case CR_CTL_HISTORY: do_history(c, &rq, &o); break;
        case CR_CTL_SHUTDOWN:
            ob_printf(&o, "ok stopping every service\n");
            break;
        case CR_CTL_POWEROFF:
        case CR_CTL_REBOOT:
        case CR_CTL_HALT: {
            int r = c->ctl->host->power(c->ctl->rt, rq.name, NULL, true);
            if (r == -EPERM)
                ob_error(&o, CR_CTL_E_FAILED, "%s: the supervisor is not the machine's PID 1",
                         rq.name);
            else if (r < 0)
                ob_error(&o, CR_CTL_E_BUSY, "%s: already stopping", rq.name);
            else
                ob_printf(&o, "ok %s: stopping every service\n", rq.name);
            if (r < 0)
                e = -1;   /* not acted on below */
            break;
        }
        case CR_CTL_REEXEC: do_reexec(c, &rq, &o); break;
        case CR_CTL_NET_CONNECT: do_net_connect(c, &rq, &o); break;
        case CR_CTL_ROTATE:
            defer_begin(c);
            cr_logs_rotate_all(on_rotated, c);   /* the answer comes from on_rotated() */
            break;
        default: ob_error(&o, CR_CTL_E_USAGE, "unknown command"); break;
        }
    }
    if (c->closing)
        return 1;
    if (c->paused) {
        free(o.p);
        return 1;   /* answered later; the lines after this one wait */
    }
    client_send_ob(c, &o);
    if (c->closing)
        return 1;
    if (!e && rq.verb == CR_CTL_SHUTDOWN) {
        c->ctl->host->shutdown(c->ctl->rt, "svctl shutdown");
        return c->closing;
    }
    if (!e && (rq.verb == CR_CTL_POWEROFF || rq.verb == CR_CTL_REBOOT || rq.verb == CR_CTL_HALT)) {
        char what[32];
        snprintf(what, sizeof what, "svctl %s", rq.name);
        c->ctl->host->power(c->ctl->rt, rq.name, what, false);
        return c->closing;
    }
    if (!c->follow && !c->wait)
        arm_deadline(c);
    return 0;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct client *c = h->data;
    *buf = uv_buf_init(c->rbuf, sizeof c->rbuf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct client *c = s->data;
    if (nread < 0) {
        client_close(c);   /* EOF or error: whatever is queued for it is dropped */
        return;
    }
    if (nread == 0 || c->closing || c->linger)
        return;
    feed(c, buf->base, (size_t)nread);
}

static void feed(struct client *c, char *data, size_t n)
{
    size_t used;
    c->in_feed = true;
    int r = cr_ctl_lines_feed(&c->lb, data, n, on_line, c, &used);
    c->in_feed = false;
    if (r == -E2BIG && !c->closing) {
        char msg[96];
        int k = snprintf(msg, sizeof msg, "error %s request line longer than %d bytes\n",
                         cr_ctl_err_name(CR_CTL_E_TOOLONG), CR_CTL_LINE_MAX);
        client_send(c, msg, (size_t)k, CR_CTL_OUTQ_MAX);
        client_linger(c);
    }
    if (c->paused && !c->closing && !c->linger) {
        /* an answer comes later: the rest stays in rbuf, which nothing reads into now */
        c->rest = data + used;
        c->rest_len = n - used;
        uv_read_stop((uv_stream_t *)&c->pipe);
    }
    /* Bytes after a line that stopped the reading (linger, follow) are dropped. */
}

static void on_deadline(uv_timer_t *t)
{
    struct client *c = t->data;
    if (!c->linger && uv_now(t->loop) >= c->deadline_at + 1000) {
        /* The loop itself was a second late (a slow machine, a long stretch of work): the
         * line may be waiting unread, as libuv runs timers before it polls. Not the
         * client's fault: it gets its time again. A client cannot make the loop late. */
        arm_deadline(c);
        return;
    }
    if (c->linger) {
        client_close(c);   /* it does not read even the last answer */
        return;
    }
    static const char msg[] = "error usage timed out waiting for a request\n";
    client_send(c, msg, sizeof msg - 1, CR_CTL_OUTQ_MAX);
    client_linger(c);
    /* Give the goodbye a moment, but no more. */
    if (!c->closing)
        uv_timer_start(&c->timer, on_deadline, 1000, 0);
}

static void arm_deadline(struct client *c)
{
    c->deadline_at = uv_now(c->timer.loop) + CR_CTL_TIMEOUT_MS;
    uv_timer_start(&c->timer, on_deadline, CR_CTL_TIMEOUT_MS, 0);
}

static bool peer_allowed(uv_pipe_t *p, uid_t *uid)
{
    uv_os_fd_t fd;
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (uv_fileno((uv_handle_t *)p, &fd) < 0 ||
        getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || len != sizeof cred) {
        *uid = (uid_t)-1;
        return false;
    }
    *uid = cred.uid;
    return cred.uid == 0 || cred.uid == geteuid();
}

static void on_connection(uv_stream_t *server, int status)
{
    struct cr_control *ctl = server->data;
    if (status < 0 || ctl->closing)
        return;
    struct client *c = calloc(1, sizeof *c);
    if (!c) {
        /* Accept and drop it, or it stays in the backlog and wakes us again and again. */
        uv_pipe_t tmp;
        if (uv_pipe_init(server->loop, &tmp, 0) == 0) {
            uv_accept(server, (uv_stream_t *)&tmp);
            uv_close((uv_handle_t *)&tmp, NULL);
        }
        return;
    }
    c->ctl = ctl;
    c->lb.buf = c->line;
    c->lb.cap = sizeof c->line;
    uv_pipe_init(server->loop, &c->pipe, 0);
    uv_timer_init(server->loop, &c->timer);
    c->pipe.data = c->timer.data = c;
    c->open_handles = 2;
    ctl->refs++;
    c->next = ctl->clients;
    if (c->next)
        c->next->pprev = &c->next;
    c->pprev = &ctl->clients;
    ctl->clients = c;
    ctl->nclients++;
    if (uv_accept(server, (uv_stream_t *)&c->pipe) < 0) {
        client_close(c);
        return;
    }
    uid_t uid;
    if (!peer_allowed(&c->pipe, &uid)) {
        cr_log(NULL, "control socket: refused a client with uid %d", (int)uid);
        static const char msg[] = "error denied only root may use the control socket\n";
        client_send(c, msg, sizeof msg - 1, CR_CTL_OUTQ_MAX);
        client_linger(c);
        return;
    }
    if (ctl->nclients > CR_CTL_CLIENTS_MAX) {
        static const char msg[] = "error busy too many clients\n";
        client_send(c, msg, sizeof msg - 1, CR_CTL_OUTQ_MAX);
        client_linger(c);
        return;
    }
    arm_deadline(c);
    if (uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read) < 0)
        client_close(c);
}

/* ---- the socket file ------------------------------------------------------------------------- */

/* mkdir -p of path's directory; directories made here are 0700. */
static int make_dirs(const char *path, char *err, size_t errlen)
{
    char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = 0;
    for (char *p = dir + 1;; p++) {
        if (*p && *p != '/')
            continue;
        char save = *p;
        *p = 0;
        if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
            int e = errno;
            snprintf(err, errlen, "mkdir %s: %s", dir, strerror(e));
            return -e;
        }
        *p = save;
        if (!save)
            break;
    }
    return 0;
}

/* Is a server answering at path? (A leftover socket file of a dead supervisor is not.) */
static void on_server_closed(uv_handle_t *h)
{
    ctl_unref(h->data);
}

int cr_control_open(const struct cr_api_host *host, const char *path, struct cr_control **out,
                    char *err, size_t errlen)
{
    struct cr_runtime *rt = host->rt;
    *out = NULL;
    struct sockaddr_un sa;
    if (!path || !*path) {
        snprintf(err, errlen, "no path");
        return -EINVAL;
    }
    if (strlen(path) >= sizeof sa.sun_path) {
        snprintf(err, errlen, "path longer than %zu bytes", sizeof sa.sun_path - 1);
        return -ENAMETOOLONG;
    }
    int r = make_dirs(path, err, errlen);
    if (r < 0)
        return r;
    r = cr_unix_path_claim(path, "supervisor", err, errlen);
    if (r < 0)
        return r;
    struct cr_control *ctl = calloc(1, sizeof *ctl);
    if (!ctl || !(ctl->path = strdup(path))) {
        free(ctl);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    ctl->host = host;
    ctl->rt = rt;
    ctl->refs = 1;
    uv_pipe_init(rt->loop, &ctl->server, 0);
    ctl->server.data = ctl;
    /* Born 0600 (no moment when another user could connect), there only once it listens
     * (svctl is never refused by a supervisor still starting: unixsock.h). */
    int fd = cr_unix_listen(path, 0600, (uid_t)-1, (gid_t)-1, 128, &ctl->dev, &ctl->ino, err,
                            errlen);
    if (fd < 0) {
        cr_control_close(ctl);
        return fd;
    }
    ctl->bound = true;
    r = uv_pipe_open(&ctl->server, fd);
    if (r < 0)
        close(fd);   /* not the handle's */
    else
        r = uv_listen((uv_stream_t *)&ctl->server, 128, on_connection);
    if (r < 0) {
        snprintf(err, errlen, "%s", uv_strerror(r));
        cr_control_close(ctl);
        return r;
    }
    *out = ctl;
    return 0;
}

int cr_control_adopt(const struct cr_api_host *host, const char *path, int fd,
                     struct cr_control **out, char *err, size_t errlen)
{
    struct cr_runtime *rt = host->rt;
    *out = NULL;
    struct cr_control *ctl = calloc(1, sizeof *ctl);
    if (!ctl || !(ctl->path = strdup(path))) {
        free(ctl);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    ctl->host = host;
    ctl->rt = rt;
    ctl->refs = 1;
    uv_pipe_init(rt->loop, &ctl->server, 0);
    ctl->server.data = ctl;
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    int r = uv_pipe_open(&ctl->server, fd);
    struct stat st;
    if (r == 0) {
        ctl->bound = true;
        if (stat(path, &st) == 0) {
            ctl->dev = st.st_dev;
            ctl->ino = st.st_ino;
        }
        r = uv_listen((uv_stream_t *)&ctl->server, 128, on_connection);
    }
    if (r < 0) {
        snprintf(err, errlen, "%s", uv_strerror(r));
        cr_control_close(ctl);
        return r;
    }
    *out = ctl;
    return 0;
}

int cr_control_fd(const struct cr_control *ctl)
{
    uv_os_fd_t fd;
    if (!ctl || ctl->closing || uv_fileno((const uv_handle_t *)&ctl->server, &fd) < 0)
        return -1;
    return fd;
}

void cr_control_reexec_notice(struct cr_control *ctl)
{
    static const char msg[] = "error busy the supervisor re-executed itself: follow again\n";
    for (struct client *c = ctl ? ctl->clients : NULL; c; c = c->next) {
        if (!c->follow)
            continue;
        uv_buf_t b = uv_buf_init((char *)msg, sizeof msg - 1);
        uv_try_write((uv_stream_t *)&c->pipe, &b, 1);   /* after what it was sent, or lost */
    }
}

void cr_control_close(struct cr_control *ctl)
{
    if (!ctl || ctl->closing)
        return;
    ctl->closing = true;
    while (ctl->clients)
        client_close(ctl->clients);
    struct stat st;
    if (ctl->bound && stat(ctl->path, &st) == 0 && st.st_dev == ctl->dev &&
        st.st_ino == ctl->ino)
        unlink(ctl->path);
    uv_close((uv_handle_t *)&ctl->server, on_server_closed);
}
