/* Prometheus metrics over a tiny HTTP/1.0 server (see metrics.h). */
#include "api/metrics.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "cgroup/cgroup.h"
#include "api/host.h"
#include "service/history.h"
#include "service/service.h"

struct cr_metrics {
    const struct cr_api_host *api;
    uv_tcp_t server;
    int refs;
    int nclients;
    bool closing;
    struct mclient *clients;
};

struct mclient {
    struct cr_metrics *m;
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wreq;
    int open_handles;
    bool closing, answered;
    char *resp;
    size_t len;
    char head[CR_METRICS_HEAD_MAX];
    struct mclient *next, **pprev;
};

/* ---- the text ------------------------------------------------------------------------------ */

struct text {
    char *p;
    size_t len, cap;
    bool oom;
};

static void tprintf(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tprintf(struct text *t, const char *fmt, ...)
{
    if (t->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->oom = true;
            return;
        }
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap * 2 + (size_t)n + 1;
        char *p = realloc(t->p, cap);
        if (!p) {
            t->oom = true;
            return;
        }
        t->p = p;
        t->cap = cap;
    }
}

/* A label value: \, " and newline escaped as the format asks. */
static const char *label(const char *s, char *buf, size_t len)
{
    size_t o = 0;
    for (; *s && o + 3 < len; s++) {
        if (*s == '\\' || *s == '"') {
            buf[o++] = '\\';
            buf[o++] = *s;
        } else if (*s == '\n') {
            buf[o++] = '\\';
            buf[o++] = 'n';
        } else {
            buf[o++] = *s;
        }
    }
    buf[o] = 0;
    return buf;
}

enum mtype { GAUGE, COUNTER };
struct metric {
    const char *name, *help;
    enum mtype type;
};

static const struct metric M[] = {
    {"corral_service_up", "1 when the service is RUNNING", GAUGE},
    {"corral_service_state", "1 for the service's current state", GAUGE},
    {"corral_service_ready", "1 when the service is ready (RUNNING, or it said READY)", GAUGE},
    {"corral_service_healthy", "1 when its health check passes (0 when failing or not known yet)",
     GAUGE},
    {"corral_service_restarts_total", "restarts of the workload or its container", COUNTER},
    {"corral_service_exits_total", "exits of the workload (or its container)", COUNTER},
    {"corral_service_last_exit_code", "last exit status: the code, or 128 + the signal",
     GAUGE},
    {"corral_service_uptime_seconds", "how long the current workload has run", GAUGE},
    {"corral_service_memory_bytes", "memory in use by the service's cgroup", GAUGE},
    {"corral_service_memory_peak_bytes", "most memory its cgroup has used", GAUGE},
    {"corral_service_cpu_seconds_total", "CPU time of the service's current cgroup", COUNTER},
    {"corral_service_pids", "processes and threads in the service's cgroup", GAUGE},
    {"corral_service_oom_kills_total", "OOM kills in the service's cgroups", COUNTER},
    {"corral_service_network_receive_bytes_total",
     "bytes its container received over its bridge networks (its current container)", COUNTER},
    {"corral_service_network_transmit_bytes_total",
     "bytes its container sent over its bridge networks (its current container)", COUNTER},
};
enum { UP, STATE, READY, HEALTHY, RESTARTS, EXITS, LAST_EXIT, UPTIME, MEM, MEM_PEAK, CPU, PIDS,
       OOM, NET_RX, NET_TX, NMETRICS };

static void render_one(struct text *t, int metric, struct cr_svc *svc, const char *lname)
{
    struct cr_hist *h = svc->hist;
    struct cr_cg_stats st = {-1, -1, -1, -1, -1};
    if (svc->ct && svc->ct->cg && metric >= MEM && metric <= PIDS)
        cr_cg_stats(svc->ct->cg, &st);
    const char *n = M[metric].name;
    switch (metric) {
    case UP:
        tprintf(t, "%s{service=\"%s\"} %d\n", n, lname, svc->state == CR_ST_RUNNING);
        break;
    case STATE:
        for (int s = 0; s < CR_NSTATES; s++)
            tprintf(t, "%s{service=\"%s\",state=\"%s\"} %d\n", n, lname,
                    cr_state_name((enum cr_state)s), svc->state == (enum cr_state)s);
        break;
    case READY:
        tprintf(t, "%s{service=\"%s\"} %d\n", n, lname,
                svc->state == CR_ST_RUNNING || svc->ready || (h && h->ready && svc->ct));
        break;
    case HEALTHY:
        tprintf(t, "%s{service=\"%s\"} %d\n", n, lname, svc->healthy == 1);
        break;
    case RESTARTS:
        tprintf(t, "%s{service=\"%s\"} %llu\n", n, lname,
                (unsigned long long)(h ? h->restarts : 0));
        break;
    case EXITS:
        tprintf(t, "%s{service=\"%s\"} %llu\n", n, lname,
                (unsigned long long)(h ? h->nexits : 0));
        break;
    case LAST_EXIT: {
        const struct cr_exit *e = cr_hist_last(h);
        if (e)
            tprintf(t, "%s{service=\"%s\"} %d\n", n, lname, e->sig ? 128 + e->sig : e->code);
        break;
    }
    case UPTIME:
        if (h && h->workload_up && h->started_mono)
            tprintf(t, "%s{service=\"%s\"} %.3f\n", n, lname,
                    (double)(cr_hist_now_mono() - h->started_mono) / 1000);
        break;
    case MEM:
        if (st.memory_current >= 0)
            tprintf(t, "%s{service=\"%s\"} %lld\n", n, lname, (long long)st.memory_current);
        break;
    case MEM_PEAK:
        if (st.memory_peak >= 0)
            tprintf(t, "%s{service=\"%s\"} %lld\n", n, lname, (long long)st.memory_peak);
        break;
    case CPU:
        if (st.cpu_usage_us >= 0)
            tprintf(t, "%s{service=\"%s\"} %.6f\n", n, lname, (double)st.cpu_usage_us / 1e6);
        break;
    case NET_RX:
    case NET_TX: {
        uint64_t rx, tx;
        if (svc->ct && cr_net_traffic(svc->rt->net, svc->name, &rx, &tx) == 0)
            tprintf(t, "%s{service=\"%s\"} %llu\n", n, lname,
                    (unsigned long long)(metric == NET_RX ? rx : tx));
        break;
    }
    case PIDS:
        if (st.pids_current >= 0)
            tprintf(t, "%s{service=\"%s\"} %lld\n", n, lname, (long long)st.pids_current);
        break;
    case OOM:
        tprintf(t, "%s{service=\"%s\"} %llu\n", n, lname,
                (unsigned long long)(h ? h->oom_kills : 0));
        break;
    }
}

char *cr_metrics_render(const struct cr_api_host *api, size_t *len)
{
    struct text t = {malloc(4096), 0, 4096, false};
    if (!t.p)
        return NULL;
    t.p[0] = 0;
    struct cr_svc *const *v;
    size_t n = api->services(api->rt, &v);
    tprintf(&t, "# HELP corral_supervisor_info the running supervisor\n"
                "# TYPE corral_supervisor_info gauge\n"
                "corral_supervisor_info{version=\"%s\"} 1\n"
                "# HELP corral_services services in the configuration\n"
                "# TYPE corral_services gauge\ncorral_services %zu\n",
            CORRAL_VERSION, n);
    /* Grouped by metric, as the format wants: one HELP/TYPE, then every service. */
    for (int m = 0; m < NMETRICS; m++) {
        tprintf(&t, "# HELP %s %s\n# TYPE %s %s\n", M[m].name, M[m].help, M[m].name,
                M[m].type == GAUGE ? "gauge" : "counter");
        for (size_t i = 0; i < n; i++) {
            char lname[3 * CR_NAME_MAX + 16];
            render_one(&t, m, v[i], label(v[i]->name, lname, sizeof lname));
        }
    }
    if (t.oom) {
        free(t.p);
        return NULL;
    }
    *len = t.len;
    return t.p;
}

/* ---- HTTP ---------------------------------------------------------------------------------- */

static void m_unref(struct cr_metrics *m)
{
    if (--m->refs == 0)
        free(m);
}

static void on_mclient_closed(uv_handle_t *h)
{
    struct mclient *c = h->data;
    if (--c->open_handles)
        return;
    struct cr_metrics *m = c->m;
    free(c->resp);
    free(c);
    m_unref(m);
}

static void mclient_close(struct mclient *c)
{
    if (c->closing)
        return;
    c->closing = true;
    *c->pprev = c->next;
    if (c->next)
        c->next->pprev = c->pprev;
    c->m->nclients--;
    uv_close((uv_handle_t *)&c->tcp, on_mclient_closed);
    uv_close((uv_handle_t *)&c->timer, on_mclient_closed);
}

static void on_mwritten(uv_write_t *req, int status)
{
    (void)status;
    struct mclient *c = req->data;
    if (!c->closing)
        mclient_close(c);
}

static void respond(struct mclient *c, int code, const char *reason, const char *ctype,
                    char *body, size_t blen)
{
    c->answered = true;
    uv_read_stop((uv_stream_t *)&c->tcp);
    char head[256];
    int hl = snprintf(head, sizeof head,
                      "HTTP/1.0 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                      "Connection: close\r\n\r\n",
                      code, reason, ctype, blen);
    c->resp = malloc((size_t)hl + blen);
    if (!c->resp) {
        free(body);
        mclient_close(c);
        return;
    }
    memcpy(c->resp, head, (size_t)hl);
    if (blen)                           /* body is NULL when strdup failed */
        memcpy(c->resp + hl, body, blen);
    free(body);
    c->len = (size_t)hl + blen;
    uv_buf_t b = uv_buf_init(c->resp, (unsigned)c->len);
    c->wreq.data = c;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_mwritten) < 0)
        mclient_close(c);
}

static void respond_text(struct mclient *c, int code, const char *reason, const char *msg)
{
    char *body = strdup(msg);
    respond(c, code, reason, "text/plain; charset=utf-8", body, body ? strlen(body) : 0);
}

static void handle_request(struct mclient *c)
{
    /* "METHOD SP TARGET SP VERSION" on the first line; headers are not needed. */
    char *line = c->head;
    char *eol = strpbrk(line, "\r\n");
    if (eol)
        *eol = 0;
    char *sp1 = strchr(line, ' ');
    char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (!sp1 || !sp2 || strncmp(sp2 + 1, "HTTP/", 5)) {
        respond_text(c, 400, "Bad Request", "bad request\n");
        return;
    }
    *sp1 = *sp2 = 0;
    const char *target = sp1 + 1;
    if (strcmp(line, "GET")) {
        respond_text(c, 405, "Method Not Allowed", "only GET\n");
        return;
    }
    size_t tl = strcspn(target, "?");
    if (tl != 8 || strncmp(target, "/metrics", 8)) {
        respond_text(c, 404, "Not Found", "try /metrics\n");
        return;
    }
    size_t len = 0;
    char *body = cr_metrics_render(c->m->api, &len);
    if (!body) {
        respond_text(c, 500, "Internal Server Error", "out of memory\n");
        return;
    }
    respond(c, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", body, len);
}

static size_t head_len(const struct mclient *c)
{
    return strnlen(c->head, sizeof c->head);
}

static void on_malloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct mclient *c = h->data;
    size_t used = head_len(c);
    /* Leave room for the terminating NUL; a full buffer reads 0 bytes (then: 431). */
    *buf = uv_buf_init(c->head + used, (unsigned)(sizeof c->head - 1 - used));
}

static void on_mread(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct mclient *c = s->data;
    if (c->closing || c->answered)
        return;
    if (nread < 0) {
        mclient_close(c);
        return;
    }
    if (nread == 0) {
        if (buf->len == 0)
            respond_text(c, 431, "Request Header Fields Too Large", "request too large\n");
        return;
    }
    /* A NUL byte would end the head early: make it a space. */
    for (ssize_t i = 0; i < nread; i++)
        if (!buf->base[i])
            buf->base[i] = ' ';
    buf->base[nread] = 0;
    if (strstr(c->head, "\r\n\r\n") || strstr(c->head, "\n\n"))
        handle_request(c);
    else if (head_len(c) >= sizeof c->head - 1)
        respond_text(c, 431, "Request Header Fields Too Large", "request too large\n");
}

static void on_mtimeout(uv_timer_t *t)
{
    mclient_close(t->data);
}

static void on_rejected_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_mconnection(uv_stream_t *server, int status)
{
    struct cr_metrics *m = server->data;
    if (status < 0 || m->closing)
        return;
    struct mclient *c = calloc(1, sizeof *c);
    uv_tcp_t tmp;
    memset(&tmp, 0, sizeof tmp);
    uv_tcp_t *tcp = c ? &c->tcp : &tmp;
    uv_tcp_init(server->loop, tcp);
    if (uv_accept(server, (uv_stream_t *)tcp) < 0 || !c || m->nclients >= CR_METRICS_CLIENTS_MAX) {
        /* No room: closing it at once is the answer (the scraper retries). */
        tcp->data = c;
        uv_close((uv_handle_t *)tcp, c ? on_rejected_closed : NULL);
        return;
    }
    c->m = m;
    m->refs++;
    m->nclients++;
    c->next = m->clients;
    if (c->next)
        c->next->pprev = &c->next;
    c->pprev = &m->clients;
    m->clients = c;
    uv_timer_init(server->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->open_handles = 2;
    uv_timer_start(&c->timer, on_mtimeout, CR_METRICS_TIMEOUT_MS, 0);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_malloc, on_mread) < 0)
        mclient_close(c);
}

static void on_mserver_closed(uv_handle_t *h)
{
    m_unref(h->data);
}

int cr_metrics_open(const struct cr_api_host *api, const char *listen, struct cr_metrics **out,
                    char *err, size_t errlen)
{
    *out = NULL;
    char host[128];
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen || !colon[1]) {
        snprintf(err, errlen, "expected ADDRESS:PORT");
        return -EINVAL;
    }
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535) {
        snprintf(err, errlen, "bad port '%s'", colon + 1);
        return -EINVAL;
    }
    size_t hl = (size_t)(colon - listen);
    if (hl >= sizeof host) {
        snprintf(err, errlen, "address too long");
        return -EINVAL;
    }
    memcpy(host, listen, hl);
    host[hl] = 0;
    struct sockaddr_storage ss;
    int r;
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
        host[hl - 1] = 0;
        r = uv_ip6_addr(host + 1, (int)port, (struct sockaddr_in6 *)&ss);
    } else {
        r = uv_ip4_addr(host, (int)port, (struct sockaddr_in *)&ss);
    }
    if (r < 0) {
        snprintf(err, errlen, "bad address '%s' (an IPv4 address, or [IPv6])", host);
        return -EINVAL;
    }
    struct cr_metrics *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    m->api = api;
    m->refs = 1;
    uv_tcp_init(api->rt->loop, &m->server);
    m->server.data = m;
    r = uv_tcp_bind(&m->server, (struct sockaddr *)&ss, 0);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&m->server, 64, on_mconnection);
    if (r < 0) {
        snprintf(err, errlen, "%s", uv_strerror(r));
        cr_metrics_close(m);
        return r;
    }
    *out = m;
    return 0;
}

void cr_metrics_close(struct cr_metrics *m)
{
    if (!m || m->closing)
        return;
    m->closing = true;
    while (m->clients)
        mclient_close(m->clients);
    uv_close((uv_handle_t *)&m->server, on_mserver_closed);
}
