/* Prometheus metrics over a tiny HTTP/1.0 server (see metrics.h). */
#include "api/metrics.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgroup/cgroup.h"
#include "api/host.h"
#include "api/http.h"
#include "service/history.h"
#include "service/service.h"

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
    struct cr_svc_view v;
    cr_svc_view(svc, &v);
    struct cr_cg_stats st = {-1, -1, -1, -1, -1};
    if (metric >= MEM && metric <= PIDS)
        cr_svc_stats(svc, &st);
    const char *n = M[metric].name;
    switch (metric) {
    case UP:
        tprintf(t, "%s{service=\"%s\"} %d\n", n, lname, v.state == CR_ST_RUNNING);
        break;
    case STATE:
        for (int s = 0; s < CR_NSTATES; s++)
            tprintf(t, "%s{service=\"%s\",state=\"%s\"} %d\n", n, lname,
                    cr_state_name((enum cr_state)s), v.state == (enum cr_state)s);
        break;
    case READY:
        tprintf(t, "%s{service=\"%s\"} %d\n", n, lname, v.ready);
        break;
    case HEALTHY:
        tprintf(t, "%s{service=\"%s\"} %d\n", n, lname, v.healthy == 1);
        break;
    case RESTARTS:
        tprintf(t, "%s{service=\"%s\"} %llu\n", n, lname,
                (unsigned long long)v.restarts);
        break;
    case EXITS:
        tprintf(t, "%s{service=\"%s\"} %llu\n", n, lname,
                (unsigned long long)v.exits);
        break;
    case LAST_EXIT: {
        const struct cr_exit *e = v.last_exit;
        if (e)
            tprintf(t, "%s{service=\"%s\"} %d\n", n, lname, e->sig ? 128 + e->sig : e->code);
        break;
    }
    case UPTIME:
        if (v.uptime_ms >= 0)
            tprintf(t, "%s{service=\"%s\"} %.3f\n", n, lname, (double)v.uptime_ms / 1000);
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
        char addr[256];
        if (cr_svc_net(svc, addr, sizeof addr, &rx, &tx) == 0)
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
                (unsigned long long)v.oom_kills);
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
            render_one(&t, m, v[i], label(cr_svc_name(v[i]), lname, sizeof lname));
        }
    }
    if (t.oom) {
        free(t.p);
        return NULL;
    }
    *len = t.len;
    return t.p;
}

/* ---- HTTP (api/http.c serves it) --------------------------------------------------------- */

struct cr_metrics {
    const struct cr_api_host *api;
    struct cr_http *http;
};

static char *dup_text(const char *msg, size_t *len)
{
    char *p = strdup(msg);
    *len = p ? strlen(p) : 0;
    return p;
}

static void on_request(void *arg, const struct cr_http_req *req, struct cr_http_answer *a)
{
    struct cr_metrics *m = arg;
    const char *method = req->method, *target = req->target;
    a->ctype = "text/plain; charset=utf-8";
    if (strcmp(method, "GET")) {
        *a = (struct cr_http_answer){405, "Method Not Allowed", a->ctype, NULL, 0, NULL, NULL};
        a->body = dup_text("only GET\n", &a->blen);
        return;
    }
    size_t tl = strcspn(target, "?");
    if (tl != 8 || strncmp(target, "/metrics", 8)) {
        *a = (struct cr_http_answer){404, "Not Found", a->ctype, NULL, 0, NULL, NULL};
        a->body = dup_text("try /metrics\n", &a->blen);
        return;
    }
    size_t len = 0;
    char *body = cr_metrics_render(m->api, &len);
    if (!body) {
        *a = (struct cr_http_answer){500, "Internal Server Error", a->ctype, NULL, 0, NULL, NULL};
        a->body = dup_text("out of memory\n", &a->blen);
        return;
    }
    /* The server's own defence at work: connections it closed to make room, or refused. */
    struct cr_http_stats st;
    cr_http_stats(m->http, &st);
    struct text t = {body, len, len, false};
    tprintf(&t, "# HELP corral_http_evicted_total connections closed to make room for newer ones\n"
                "# TYPE corral_http_evicted_total counter\ncorral_http_evicted_total %llu\n"
                "# HELP corral_http_refused_total connections refused (every slot answering)\n"
                "# TYPE corral_http_refused_total counter\ncorral_http_refused_total %llu\n"
                "# HELP corral_http_timed_out_total connections closed at a deadline\n"
                "# TYPE corral_http_timed_out_total counter\ncorral_http_timed_out_total %llu\n",
            st.evicted, st.refused, st.timed_out);
    if (t.oom) {
        free(t.p);
        *a = (struct cr_http_answer){500, "Internal Server Error", a->ctype, NULL, 0, NULL, NULL};
        a->body = dup_text("out of memory\n", &a->blen);
        return;
    }
    *a = (struct cr_http_answer){200, "OK", "text/plain; version=0.0.4; charset=utf-8", t.p,
                                 t.len, NULL, NULL};
}

int cr_metrics_open(const struct cr_api_host *api, const char *listen, struct cr_metrics **out,
                    char *err, size_t errlen)
{
    *out = NULL;
    struct cr_metrics *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    m->api = api;
    struct cr_http_opts o = {.handler = on_request, .arg = m};
    int r = cr_http_open(api->rt->loop, listen, &o, &m->http, err, errlen);
    if (r < 0) {
        free(m);
        return r;
    }
    *out = m;
    return 0;
}

void cr_metrics_close(struct cr_metrics *m)
{
    if (!m)
        return;
    cr_http_close(m->http);   /* no request reaches on_request after this */
    free(m);
}
