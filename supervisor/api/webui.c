/* The web UI (webui.h): one HTML page of every service and a form per action, on the HTTP
 * server of [inet_http_server] / [unix_http_server], as supervisord's. */
#include "api/webui.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <uv.h>

#include "api/xmlrpc.h"
#include "cgroup/cgroup.h"
#include "service/history.h"
#include "service/service.h"

/* Pages are written into xmlrpc.c's growable text (struct cr_xw). */
static void put(struct cr_xw *b, const char *s, size_t n)
{
    cr_xw_rawn(b, s, n);
}

static void add(struct cr_xw *b, const char *s)
{
    cr_xw_raw(b, s);
}

static void __attribute__((format(printf, 2, 3))) putf(struct cr_xw *b, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* s as HTML text or attribute value: a workload's STATUS= or a service name never becomes
 * markup. Control bytes but the newline are dropped. */
static void put_esc(struct cr_xw *b, const char *s)
{
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        switch (c) {
        case '&': add(b, "&amp;"); break;
        case '<': add(b, "&lt;"); break;
        case '>': add(b, "&gt;"); break;
        case '"': add(b, "&quot;"); break;
        case '\'': add(b, "&#39;"); break;
        default:
            if ((c >= 0x20 && c != 0x7f) || c == '\n')
                put(b, (const char *)&c, 1);
        }
    }
}

/* ---- memory and CPU over the last hour --------------------------------------------------- */

#define SAMPLES 60

struct series {
    char name[128];
    uint64_t t_ms[SAMPLES];
    int64_t mem[SAMPLES], cpu_us[SAMPLES];
    unsigned head, count;        /* head: the next slot */
    bool seen;
};

struct cr_webui_sampler {
    uv_timer_t timer;
    const struct cr_api_host *host;
    struct series *v;
    size_t n;
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static struct series *series_of(struct cr_webui_sampler *m, const char *name, bool make)
{
    for (size_t i = 0; i < m->n; i++)
        if (!strcmp(m->v[i].name, name))
            return &m->v[i];
    if (!make)
        return NULL;
    struct series *v = realloc(m->v, (m->n + 1) * sizeof *v);
    if (!v)
        return NULL;
    m->v = v;
    memset(&v[m->n], 0, sizeof *v);
    snprintf(v[m->n].name, sizeof v[m->n].name, "%s", name);
    return &v[m->n++];
}

static void on_sample(uv_timer_t *t)
{
    struct cr_webui_sampler *m = t->data;
    struct cr_svc *const *v;
    size_t n = m->host->services(m->host->rt, &v);
    for (size_t i = 0; i < m->n; i++)
        m->v[i].seen = false;
    uint64_t now = now_ms();
    for (size_t i = 0; i < n; i++) {
        struct series *s = series_of(m, cr_svc_name(v[i]), true);
        if (!s)
            continue;
        struct cr_cg_stats st;
        cr_svc_stats(v[i], &st);
        s->seen = true;
        s->t_ms[s->head] = now;
        s->mem[s->head] = st.memory_current;
        s->cpu_us[s->head] = st.cpu_usage_us;
        s->head = (s->head + 1) % SAMPLES;
        if (s->count < SAMPLES)
            s->count++;
    }
    for (size_t i = 0; i < m->n;)   /* services a reload took away */
        if (!m->v[i].seen)
            m->v[i] = m->v[--m->n];
        else
            i++;
}

static void on_sampler_closed(uv_handle_t *h)
{
    struct cr_webui_sampler *m = h->data;
    free(m->v);
    free(m);
}

void cr_webui_close(struct cr_webui *w)
{
    if (!w->smp)
        return;
    uv_timer_stop(&w->smp->timer);
    uv_close((uv_handle_t *)&w->smp->timer, on_sampler_closed);
    w->smp = NULL;
}

/* Sample k of s, oldest first. */
static unsigned at(const struct series *s, unsigned k)
{
    return (s->head + SAMPLES - s->count + k) % SAMPLES;
}

/* One small line chart (inline SVG: no script) of n values over their times. */
static void chart(struct cr_xw *b, const char *id, const char *title, const char *unit,
                  const double *val, const uint64_t *t, unsigned n)
{
    double max = 0;
    for (unsigned i = 0; i < n; i++)
        if (val[i] > max)
            max = val[i];
    double top = max > 0 ? max * 1.1 : 1, span = n > 1 && t[n - 1] > t[0]
                                                    ? (double)(t[n - 1] - t[0]) : 1;
    putf(b, "<figure><figcaption>%s, last %.0f min (max %.1f %s)</figcaption>"
            "<svg id=\"%s\" width=\"360\" height=\"80\" viewBox=\"0 0 360 80\" "
            "role=\"img\"><rect width=\"360\" height=\"80\" fill=\"#f8f8f8\"/>"
            "<polyline fill=\"none\" stroke=\"#36c\" stroke-width=\"1.5\" points=\"",
         title, span / 60000.0, max, unit, id);
    for (unsigned i = 0; i < n; i++)
        putf(b, "%s%.1f,%.1f", i ? " " : "", 360.0 * (double)(t[i] - t[0]) / span,
             78.0 - 76.0 * val[i] / top);
    add(b, "\"/></svg></figure>\n");
}

static void charts(struct cr_xw *b, const struct cr_webui *w, const char *name)
{
    const struct series *s = w->smp ? series_of(w->smp, name, false) : NULL;
    if (!s || s->count < 2) {
        add(b, "<p>Charts: memory and CPU are read once a minute; they show from the second "
               "reading on.</p>\n");
        return;
    }
    double mem[SAMPLES], cpu[SAMPLES];
    uint64_t t[SAMPLES];
    unsigned n = 0;
    for (unsigned k = 0; k < s->count; k++) {
        unsigned i = at(s, k);
        if (s->mem[i] < 0)
            continue;
        t[n] = s->t_ms[i];
        mem[n] = (double)s->mem[i] / (1 << 20);
        /* CPU between this reading and the one before, in % of one CPU */
        unsigned p = k ? at(s, k - 1) : i;
        double dt = (double)(s->t_ms[i] - s->t_ms[p]) * 1000.0;
        cpu[n] = k && dt > 0 && s->cpu_us[i] >= s->cpu_us[p] && s->cpu_us[p] >= 0
                     ? 100.0 * (double)(s->cpu_us[i] - s->cpu_us[p]) / dt : 0;
        n++;
    }
    if (n < 2)
        return;
    chart(b, "mem-chart", "Memory", "MiB", mem, t, n);
    chart(b, "cpu-chart", "CPU", "% of one CPU", cpu, t, n);
}

int cr_webui_init(struct cr_webui *w, const struct cr_api_host *host)
{
    unsigned char r[16];
    size_t got = 0;
    while (got < sizeof r) {
        ssize_t n = getrandom(r + got, sizeof r - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        got += (size_t)n;
    }
    for (size_t i = 0; i < sizeof r; i++)
        snprintf(w->token + 2 * i, 3, "%02x", r[i]);
    const char *env = getenv("CORRAL_WEBUI_SAMPLE_MS");
    long every = env ? strtol(env, NULL, 10) : 60000;
    if (every < 10 || every > 3600000)
        every = 60000;
    struct cr_webui_sampler *m = calloc(1, sizeof *m);
    if (!m)
        return -ENOMEM;
    m->host = host;
    uv_timer_init(host->rt->loop, &m->timer);
    m->timer.data = m;
    uv_unref((uv_handle_t *)&m->timer);   /* it never keeps the supervisor up */
    uv_timer_start(&m->timer, on_sample, 0, (uint64_t)every);
    w->smp = m;
    return 0;
}

/* The page written into b, or NULL (b freed) when memory ran out. */
static char *done(struct cr_xw *b, size_t *len)
{
    if (b->oom) {
        free(b->p);
        return NULL;
    }
    *len = b->len;
    return b->p;
}

static bool is_up(enum cr_state st)
{
    return st == CR_ST_RUNNING || st == CR_ST_STARTING || st == CR_ST_BACKOFF;
}

static struct cr_svc *find_svc(const struct cr_api_host *host, const char *name)
{
    struct cr_svc *const *v;
    size_t n = host->services(host->rt, &v);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(cr_svc_name(v[i]), name))
            return v[i];
    return NULL;
}

static const char *state_class(enum cr_state s)
{
    switch (s) {
    case CR_ST_RUNNING: return "running";
    case CR_ST_STARTING: case CR_ST_STOPPING: return "moving";
    case CR_ST_BACKOFF: case CR_ST_FATAL: return "failed";
    default: return "stopped";
    }
}

/* supervisord's description column: "pid N, uptime H:MM:SS", or why it is not running. */
static void describe(struct cr_xw *b, const struct cr_svc_view *v)
{
    if (v->pid > 0 && v->uptime_ms >= 0) {
        int64_t s = v->uptime_ms / 1000;
        putf(b, "pid %d, uptime %lld:%02lld:%02lld", (int)v->pid, (long long)(s / 3600),
             (long long)(s / 60 % 60), (long long)(s % 60));
    } else if (v->reason) {
        put_esc(b, v->reason);
    } else if (v->why && *v->why) {
        put_esc(b, v->why);
    } else if ((v->state == CR_ST_FATAL || v->state == CR_ST_EXITED ||
                v->state == CR_ST_BACKOFF) && v->last_exit) {
        if (v->state != CR_ST_EXITED)
            add(b, "Exited too quickly (process log may have details); ");
        if (v->last_exit->sig)
            putf(b, "killed by signal %d%s", v->last_exit->sig,
                 v->last_exit->oom ? " (out of memory)" : "");
        else
            putf(b, "exit status %d", v->last_exit->code);
    } else {
        add(b, "not running");
    }
    if (v->status_text && *v->status_text) {
        add(b, " &mdash; ");
        put_esc(b, v->status_text);
    }
}

static void action_form(struct cr_xw *b, const struct cr_webui *w, const char *name,
                        const char *what)
{
    add(b, "<form method=\"post\" action=\"/action\"><input type=\"hidden\" name=\"token\" "
           "value=\"");
    put(b, w->token, strlen(w->token));
    add(b, "\"><input type=\"hidden\" name=\"name\" value=\"");
    put_esc(b, name);
    putf(b, "\"><button type=\"submit\" name=\"do\" value=\"%s\" id=\"%s-", what, what);
    put_esc(b, name);
    putf(b, "\">%s</button></form>", what);
}

static char *page(const struct cr_api_host *host, const struct cr_webui *w, const char *identity,
                  size_t *len)
{
    struct cr_xw b = {0};
    add(&b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>");
    put_esc(&b, identity);
    add(&b, " &mdash; corral</title><style>"
            "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{padding:.3em .8em;border-bottom:1px solid #ddd;text-align:left}"
            ".running{color:#080}.moving{color:#a60}.failed{color:#c00}.stopped{color:#666}"
            "form{display:inline}</style></head><body>\n<h1>");
    put_esc(&b, identity);
    add(&b, "</h1>\n<p><a href=\"/\">Refresh</a></p>\n<table id=\"services\">\n"
            "<tr><th>State</th><th>Description</th><th>Name</th><th>Health</th>"
            "<th>Restarts</th><th>Action</th></tr>\n");
    struct cr_svc *const *v;
    size_t n = host->services(host->rt, &v);
    for (size_t i = 0; i < n; i++) {
        struct cr_svc_view sv;
        cr_svc_view(v[i], &sv);
        add(&b, "<tr id=\"svc-");
        put_esc(&b, sv.name);
        putf(&b, "\"><td class=\"state %s\">%s</td><td class=\"desc\">",
             state_class(sv.state), cr_state_name(sv.state));
        describe(&b, &sv);
        add(&b, "</td><td class=\"name\"><a href=\"/service/");
        put_esc(&b, sv.name);
        add(&b, "\">");
        put_esc(&b, sv.name);
        add(&b, "</a> <a class=\"tail\" href=\"/logtail/");
        put_esc(&b, sv.name);
        putf(&b, "\">tail -f</a></td><td>%s</td><td>%llu</td><td>",
             sv.healthy < 0 ? "" : sv.healthy ? "healthy" : "unhealthy",
             (unsigned long long)sv.restarts);
        if (is_up(sv.state)) {
            action_form(&b, w, sv.name, "restart");
            action_form(&b, w, sv.name, "stop");
        } else {
            action_form(&b, w, sv.name, "start");
        }
        add(&b, "</td></tr>\n");
    }
    add(&b, "</table>\n</body></html>\n");
    return done(&b, len);
}

static void tail_line(void *arg, const char *line)
{
    struct cr_xw *b = arg;
    put_esc(b, line);
    add(b, "\n");
}

static void figure(struct cr_xw *b, const char *what, int64_t v, const char *unit, int64_t div)
{
    if (v < 0)
        return;
    putf(b, "<tr><th>%s</th><td>%.1f %s</td></tr>", what, (double)v / (double)div, unit);
}

/* GET /service/NAME: what `svctl status NAME` and `svctl history NAME` say, as a page. */
static char *service_page(const struct cr_webui *w, struct cr_svc *svc, size_t *len)
{
    struct cr_xw b = {0};
    struct cr_svc_view v;
    cr_svc_view(svc, &v);
    add(&b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>");
    put_esc(&b, v.name);
    add(&b, " &mdash; corral</title><style>body{font-family:sans-serif;margin:2em}"
            "table{border-collapse:collapse}td,th{padding:.3em .8em;border-bottom:1px solid "
            "#ddd;text-align:left}pre{background:#f4f4f4;padding:.5em}form{display:inline}"
            "</style></head><body>\n<p><a href=\"/\">All services</a></p>\n<h1>");
    put_esc(&b, v.name);
    putf(&b, "</h1>\n<table id=\"facts\"><tr><th>State</th><td id=\"state\">%s</td></tr>"
             "<tr><th>Description</th><td>", cr_state_name(v.state));
    describe(&b, &v);
    putf(&b, "</td></tr><tr><th>Restarts</th><td>%llu</td></tr><tr><th>Exits</th><td>%llu"
             "</td></tr><tr><th>OOM kills</th><td>%llu</td></tr>",
         (unsigned long long)v.restarts, (unsigned long long)v.exits,
         (unsigned long long)v.oom_kills);
    struct cr_cg_stats st;
    cr_svc_stats(svc, &st);
    figure(&b, "Memory", st.memory_current, "MiB", 1 << 20);
    figure(&b, "Memory peak", st.memory_peak, "MiB", 1 << 20);
    figure(&b, "CPU time", st.cpu_usage_us, "s", 1000000);
    if (st.pids_current >= 0)
        putf(&b, "<tr><th>Processes</th><td>%lld</td></tr>", (long long)st.pids_current);
    add(&b, "</table>\n");
    charts(&b, w, v.name);
    add(&b, "<p>");
    bool up = is_up(v.state);
    action_form(&b, w, v.name, up ? "restart" : "start");
    if (up)
        action_form(&b, w, v.name, "stop");
    add(&b, " <a href=\"/logtail/");
    put_esc(&b, v.name);
    add(&b, "\">tail -f</a></p>\n<h2>Crash history</h2>\n");
    char line[512];
    if (v.hist) {
        cr_hist_summary(v.hist, v.window_ms, v.next_try_ms, line, sizeof line);
        if (*line) {
            add(&b, "<p id=\"summary\">");
            put_esc(&b, line);
            add(&b, "</p>\n");
        }
    }
    size_t n = v.hist ? cr_hist_count(v.hist) : 0;
    add(&b, "<table id=\"exits\"><tr><th>When</th><th>Exit</th><th>Ran</th>"
            "<th>Last lines</th></tr>\n");
    for (size_t i = n; i-- > 0;) {   /* newest first */
        const struct cr_exit *e = cr_hist_at(v.hist, i);
        char when[64] = "", what[128];
        time_t t = (time_t)(e->when_ms / 1000);
        struct tm tm;
        if (localtime_r(&t, &tm))
            strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
        cr_exit_describe(e, what, sizeof what);
        putf(&b, "<tr class=\"exit\"><td>%s</td><td>", when);
        put_esc(&b, what);
        if (e->reason) {
            add(&b, ": ");
            put_esc(&b, e->reason);
        }
        if (e->runtime_ms >= 0)
            putf(&b, "</td><td>%.1f s</td><td><pre>", (double)e->runtime_ms / 1000);
        else
            add(&b, "</td><td></td><td><pre>");
        put_esc(&b, e->lines ? e->lines : "");
        add(&b, "</pre></td></tr>\n");
    }
    add(&b, "</table>\n<h2>Recent output</h2>\n<pre id=\"output\">");
    if (v.hist)
        cr_hist_tail(v.hist, 50, tail_line, &b);
    /* Live: a frame that reloads itself every 2 s (no script, no connection held open) */
    add(&b, "</pre>\n<h2>Live output</h2>\n<iframe id=\"live\" title=\"live output\" "
            "width=\"100%\" height=\"240\" src=\"/service/");
    put_esc(&b, v.name);
    add(&b, "/live\"></iframe>\n</body></html>\n");
    return done(&b, len);
}

/* GET /service/NAME/live: its last 100 output lines, newest at the bottom, reloaded by the
 * browser every 2 s (the service page shows it in a frame). */
static char *live_page(struct cr_svc *svc, size_t *len)
{
    struct cr_xw b = {0};
    struct cr_svc_view v;
    cr_svc_view(svc, &v);
    add(&b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
            "<meta http-equiv=\"refresh\" content=\"2\"><style>body{margin:0}"
            "pre{margin:0;padding:.5em;font-size:85%}</style></head><body><pre id=\"lines\">");
    if (v.hist)
        cr_hist_tail(v.hist, 100, tail_line, &b);
    add(&b, "</pre></body></html>\n");
    return done(&b, len);
}

/* The value of key in an application/x-www-form-urlencoded body, decoded into out. */
static bool form_value(const char *body, const char *key, char *out, size_t len)
{
    size_t kl = strlen(key);
    for (const char *p = body; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
        if (strncmp(p, key, kl) || p[kl] != '=')
            continue;
        size_t o = 0;
        for (p += kl + 1; *p && *p != '&'; p++) {
            char c = *p;
            if (c == '+') {
                c = ' ';
            } else if (c == '%') {
                unsigned v;
                if (sscanf(p + 1, "%2x", &v) != 1)
                    return false;
                c = (char)v;
                p += 2;
            }
            if (o + 1 >= len)
                return false;
            out[o++] = c;
        }
        out[o] = 0;
        return true;
    }
    return false;
}

static void text(struct cr_http_answer *a, int code, const char *reason, const char *msg)
{
    char *b = strdup(msg);
    *a = (struct cr_http_answer){code, reason, "text/plain; charset=utf-8", b,
                                 b ? strlen(b) : 0, NULL, NULL};
}

/* Equal without telling by its time how much of it was. */
static bool same_token(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char d = la != lb;
    for (size_t i = 0; i < la && i < lb; i++)
        d |= (unsigned char)(a[i] ^ b[i]);
    return d == 0;
}

static void action(const struct cr_api_host *host, const struct cr_webui *w,
                   const struct cr_http_req *req, struct cr_http_answer *a)
{
    char token[64], name[256], what[16];
    if (!form_value(req->body, "token", token, sizeof token) || !same_token(token, w->token)) {
        /* a page of another site posting with the browser's credentials */
        text(a, 403, "Forbidden", "missing or wrong form token: reload the page\n");
        return;
    }
    if (!form_value(req->body, "name", name, sizeof name) ||
        !form_value(req->body, "do", what, sizeof what)) {
        text(a, 400, "Bad Request", "the form needs name and do\n");
        return;
    }
    enum cr_svc_req r;
    if (!strcmp(what, "start"))
        r = CR_REQ_START;
    else if (!strcmp(what, "stop"))
        r = CR_REQ_STOP;
    else if (!strcmp(what, "restart"))
        r = CR_REQ_RESTART;
    else {
        text(a, 400, "Bad Request", "do is start, stop or restart\n");
        return;
    }
    struct cr_svc *svc = find_svc(host, name);
    if (!svc) {
        text(a, 404, "Not Found", "no such service\n");
        return;
    }
    host->request(host->rt, svc, r);
    /* Post/redirect/get: a reload of the page does not post again */
    *a = (struct cr_http_answer){303, "See Other", "text/plain; charset=utf-8", strdup(""), 0,
                                 "Location: /\r\n", NULL};
}

/* No caching, no scripts; frames and form targets of this server only. */
#define HTML_HEADERS                                                                        \
    "Cache-Control: no-store\r\n"                                                           \
    "Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; "              \
    "form-action 'self'; frame-src 'self'; frame-ancestors 'self'\r\n"                       \
    "X-Frame-Options: SAMEORIGIN\r\n"

bool cr_webui_route(const struct cr_api_host *host, const struct cr_webui *w,
                    const char *identity, const struct cr_http_req *req,
                    struct cr_http_answer *a)
{
    size_t tl = strcspn(req->target, "?");
    bool root = (tl == 1 && req->target[0] == '/') ||
                (tl == 11 && !strncmp(req->target, "/index.html", 11));
    if (root && (!strcmp(req->method, "GET") || !strcmp(req->method, "HEAD"))) {
        size_t len = 0;
        char *body = page(host, w, identity, &len);
        if (!body) {
            text(a, 503, "Service Unavailable", "out of memory\n");
            return true;
        }
        *a = (struct cr_http_answer){200, "OK", "text/html; charset=utf-8", body, len,
                                     HTML_HEADERS, NULL};
        return true;
    }
    if (tl > 9 && !strncmp(req->target, "/service/", 9) &&
        (!strcmp(req->method, "GET") || !strcmp(req->method, "HEAD"))) {
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(tl - 9), req->target + 9);
        char *slash = strchr(name, '/');
        bool live = slash && !strcmp(slash, "/live");
        if (live)
            *slash = 0;
        struct cr_svc *svc = find_svc(host, name);
        size_t len = 0;
        char *body = !svc ? NULL : live ? live_page(svc, &len) : service_page(w, svc, &len);
        if (!svc)
            text(a, 404, "Not Found", "no such service\n");
        else if (!body)
            text(a, 503, "Service Unavailable", "out of memory\n");
        else
            *a = (struct cr_http_answer){200, "OK", "text/html; charset=utf-8", body, len,
                                         HTML_HEADERS, NULL};
        return true;
    }
    if (tl == 7 && !strncmp(req->target, "/action", 7)) {
        if (strcmp(req->method, "POST"))
            *a = (struct cr_http_answer){405, "Method Not Allowed", "text/plain", strdup(""),
                                         0, "Allow: POST\r\n", NULL};
        else
            action(host, w, req, a);
        return true;
    }
    return false;
}
