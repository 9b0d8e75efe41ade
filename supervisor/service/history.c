/* Crash history and the per-service ring of recent output lines. */
#include "service/history.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "service/internal.h"
#include "service/state_line.h"
#include "units.h"

static uint64_t clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t cr_hist_now_mono(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

struct cr_hist *cr_hist_new(void)
{
    return calloc(1, sizeof(struct cr_hist));
}

static void exit_clear(struct cr_exit *e)
{
    free(e->reason);
    free(e->lines);
    memset(e, 0, sizeof *e);
}

void cr_hist_free(struct cr_hist *h)
{
    if (!h)
        return;
    /* A listener may unlisten (and free itself) from its callback. */
    while (h->listeners) {
        struct cr_hist_listener *l = h->listeners;
        h->listeners = l->next;
        l->next = NULL;
        l->fn(l->arg, NULL, 0);
    }
    for (size_t i = 0; h->exits && i < CR_HIST_EXITS; i++)
        exit_clear(&h->exits[i]);
    free(h->exits);
    for (size_t i = 0; i < CR_HIST_LINES; i++)
        free(h->lines[i]);
    free(h->reason);
    free(h);
}

/* ---- output lines ------------------------------------------------------------------------- */

static void keep_line(struct cr_hist *h, const char *line, size_t len)
{
    if (len && line[len - 1] == '\r')
        len--;
    size_t keep = len < CR_HIST_LINE_MAX ? len : CR_HIST_LINE_MAX;
    char *copy = malloc(keep + 1);
    if (!copy)
        return;
    memcpy(copy, line, keep);
    copy[keep] = 0;
    size_t slot = h->nlines % CR_HIST_LINES;
    free(h->lines[slot]);
    h->lines[slot] = copy;
    h->nlines++;
}

/* Only the last CR_HIST_LINES lines of a chunk are copied: the cost per chunk is bounded, so
 * a service writing millions of short lines pays nothing per line here. */
void cr_hist_line(void *arg, const char *data, size_t len)
{
    struct cr_svc *svc = arg;
    struct cr_hist *h = svc ? svc->hist : NULL;
    if (!h || !len)
        return;
    size_t end = len, start = len, found = 0;
    if (data[end - 1] == '\n')
        end--;
    /* Walk back over at most CR_HIST_LINES line starts. */
    size_t i = end;
    while (found < CR_HIST_LINES) {
        while (i > 0 && data[i - 1] != '\n')
            i--;
        start = i;
        found++;
        if (i == 0)
            break;
        i--;
    }
    for (size_t p = start; p <= end;) {
        const char *nl = memchr(data + p, '\n', end - p);
        size_t e = nl ? (size_t)(nl - data) : end;
        keep_line(h, data + p, e - p);
        p = e + 1;
    }
    for (struct cr_hist_listener *l = h->listeners, *next; l; l = next) {
        next = l->next;
        l->fn(l->arg, data, len);
    }
}

void cr_hist_tail(const struct cr_hist *h, size_t n, void (*fn)(void *arg, const char *line),
                  void *arg)
{
    if (!h)
        return;
    size_t have = h->nlines < CR_HIST_LINES ? h->nlines : CR_HIST_LINES;
    if (n > have)
        n = have;
    for (size_t i = h->nlines - n; i < h->nlines; i++)
        fn(arg, h->lines[i % CR_HIST_LINES] ? h->lines[i % CR_HIST_LINES] : "");
}

static void join_line(void *arg, const char *line)
{
    char **acc = arg;
    if (!*acc)
        return;
    size_t a = strlen(*acc), b = strlen(line);
    char *p = realloc(*acc, a + b + 2);
    if (!p) {
        free(*acc);
        *acc = NULL;
        return;
    }
    memcpy(p + a, line, b);
    p[a + b] = '\n';
    p[a + b + 1] = 0;
    *acc = p;
}

/* ---- exits -------------------------------------------------------------------------------- */

static struct cr_exit *new_exit(struct cr_svc *svc)
{
    struct cr_hist *h = svc->hist;
    static struct cr_exit scratch;   /* no memory for the ring: filled, and kept nowhere */
    if (!h->exits)
        h->exits = calloc(CR_HIST_EXITS, sizeof *h->exits);
    struct cr_exit *e = h->exits ? &h->exits[h->nexits % CR_HIST_EXITS] : &scratch;
    exit_clear(e);
    if (h->exits)
        h->nexits++;
    e->when_ms = (int64_t)clock_ms(CLOCK_REALTIME);
    e->mono_ms = clock_ms(CLOCK_MONOTONIC);
    e->runtime_ms = -1;
    e->code = -1;
    e->mem_peak = -1;
    e->stopped = svc->stop_requested;
    /* Its own lines only: those since the previous exit was recorded. */
    char *acc = calloc(1, 1);
    cr_hist_tail(h, h->nlines - h->lines_mark, join_line, &acc);
    h->lines_mark = h->nlines;
    if (acc && !*acc) {
        free(acc);
        acc = NULL;
    }
    e->lines = acc;
    return e;
}

void cr_hist_exited(struct cr_svc *svc, const char *code, const char *sig, const char *runtime,
                    int64_t mem_peak)
{
    struct cr_hist *h = svc->hist;
    if (!h)
        return;
    /* What it wrote just before it died may still be in the pipes. */
    if (svc->out_open)
        cr_out_drain(&svc->out);
    if (svc->err_open)
        cr_out_drain(&svc->err);
    uint64_t started = svc->wl.started_mono;
    struct cr_exit *e = new_exit(svc);
    if (code)
        e->code = atoi(code);
    if (sig) {
        e->sig = cr_parse_signal(sig);
        if (e->sig < 0)
            e->sig = 0;
    }
    if (runtime)
        e->runtime_ms = strtoll(runtime, NULL, 10);
    else if (started)
        e->runtime_ms = (int64_t)(e->mono_ms - started);
    e->oom = svc->last_oom;
    if (e->oom)
        h->oom_kills++;
    e->mem_peak = mem_peak;
}

void cr_hist_restart(struct cr_svc *svc)
{
    if (svc->hist)
        svc->hist->restarts++;
}

void cr_hist_setup_failed(struct cr_svc *svc, const char *reason)
{
    struct cr_hist *h = svc->hist;
    if (!h)
        return;
    free(h->reason);
    h->reason = strdup(reason ? reason : "(no reason given)");
}

void cr_hist_container_exit(struct cr_svc *svc, int64_t mem_peak, int wait_code, int wait_status,
                            uint64_t ran_ms, bool oom)
{
    struct cr_hist *h = svc->hist;
    if (!h)
        return;
    /* A workload exit was already recorded for this container unless the workload was up
     * when init went, or the container never got as far as a workload. */
    bool record = svc->wl.up || svc->setup_failed;
    if (!record) {
        /* An OOM kill seen only now still belongs to the last exit. */
        if (oom && h->nexits) {
            struct cr_exit *last = &h->exits[(h->nexits - 1) % CR_HIST_EXITS];
            if (!last->oom) {
                last->oom = true;
                h->oom_kills++;
            }
        }
        return;
    }
    uint64_t started = svc->wl.started_mono;
    struct cr_exit *e = new_exit(svc);
    e->container = true;
    if (wait_code == CLD_EXITED)
        e->code = wait_status;
    else
        e->sig = wait_status;
    e->runtime_ms = started ? (int64_t)(e->mono_ms - started) : (int64_t)ran_ms;
    e->oom = oom;
    if (oom)
        h->oom_kills++;
    if (svc->setup_failed) {
        e->setup_failed = true;
        e->reason = h->reason ? strdup(h->reason) : NULL;
    }
    e->mem_peak = mem_peak;
}

size_t cr_hist_count(const struct cr_hist *h)
{
    if (!h)
        return 0;
    return h->nexits < CR_HIST_EXITS ? h->nexits : CR_HIST_EXITS;
}

const struct cr_exit *cr_hist_at(const struct cr_hist *h, size_t i)
{
    size_t n = cr_hist_count(h);
    if (i >= n)
        return NULL;
    return &h->exits[(h->nexits - n + i) % CR_HIST_EXITS];
}

const struct cr_exit *cr_hist_last(const struct cr_hist *h)
{
    size_t n = cr_hist_count(h);
    return n ? cr_hist_at(h, n - 1) : NULL;
}

void cr_exit_describe(const struct cr_exit *e, char *buf, size_t len)
{
    char sname[32];
    if (e->setup_failed)
        snprintf(buf, len, "setup failed");
    else if (e->sig)
        snprintf(buf, len, "signal %s%s", cr_signal_name(e->sig, sname, sizeof sname),
                 e->oom ? " (OOM)" : "");
    else
        snprintf(buf, len, "exit %d%s", e->code, e->oom ? " (OOM)" : "");
}

/* 0.4 s, 12 s, 3 min, 2 h */
static void human_ms(int64_t ms, char *buf, size_t len)
{
    if (ms < 0)
        snprintf(buf, len, "?");
    else if (ms < 10000)
        snprintf(buf, len, "%.1f s", (double)ms / 1000);
    else if (ms < 120000)
        snprintf(buf, len, "%lld s", (long long)(ms / 1000));
    else if (ms < 7200000)
        snprintf(buf, len, "%lld min", (long long)(ms / 60000));
    else
        snprintf(buf, len, "%lld h", (long long)(ms / 3600000));
}

void cr_hist_summary(const struct cr_hist *h, int64_t window_ms, int64_t next_ms, char *buf,
                     size_t len)
{
    buf[0] = 0;
    size_t n = cr_hist_count(h);
    if (n < 2)
        return;
    uint64_t now = cr_hist_now_mono();
    size_t recent = 0;
    uint64_t first = now;
    for (size_t i = 0; i < n; i++) {
        const struct cr_exit *e = cr_hist_at(h, i);
        if (e->stopped || now - e->mono_ms > (uint64_t)window_ms)
            continue;
        recent++;
        if (e->mono_ms < first)
            first = e->mono_ms;
    }
    if (recent < 2)
        return;
    const struct cr_exit *last = cr_hist_last(h);
    char what[64], span[32], ran[32], next[48] = "";
    cr_exit_describe(last, what, sizeof what);
    human_ms((int64_t)(now - first), span, sizeof span);
    human_ms(last->runtime_ms, ran, sizeof ran);
    if (next_ms >= 0) {
        char t[32];
        human_ms(next_ms, t, sizeof t);
        snprintf(next, sizeof next, ", next try in %s", t);
    }
    snprintf(buf, len, "%s%zu exits in %s, last: %s after %s%s",
             recent == CR_HIST_EXITS ? ">=" : "", recent, span, what, ran, next);
}

int cr_hist_listen(struct cr_hist *h, struct cr_hist_listener *l)
{
    if (!h)
        return -ENOENT;
    l->next = h->listeners;
    h->listeners = l;
    return 0;
}

void cr_hist_unlisten(struct cr_hist *h, struct cr_hist_listener *l)
{
    if (!h)
        return;
    for (struct cr_hist_listener **p = &h->listeners; *p; p = &(*p)->next) {
        if (*p == l) {
            *p = l->next;
            l->next = NULL;
            return;
        }
    }
}

/* ---- across a re-exec --------------------------------------------------------------------- */

/* The last max bytes of text (NULL: none) as hex ("" for none). */
static void put_hex(struct cr_sl_out *o, const char *text, size_t max)
{
    size_t k = text ? strlen(text) : 0;
    if (k)
        cr_sl_hex(o, text + (k > max ? k - max : 0), k > max ? max : k);
}

/* Hex at *pp (up to end) up to the first non-hex pair, decoded into a malloc'd string
 * (NULL: empty); *pp moves past it. */
static char *get_hex(const char **pp, const char *end)
{
    size_t room = (size_t)(end - *pp) / 2, k = 0;
    char *out = malloc(room + 1);
    if (out)
        out[k = cr_sl_unhex(*pp, (size_t)(end - *pp), out, room)] = 0;
    *pp += 2 * k;
    if (!k) {
        free(out);
        out = NULL;
    }
    return out;
}

void cr_hist_put(const struct cr_hist *h, struct cr_sl_out *o)
{
    if (!h)
        return;
    cr_sl_ufield(o, "restarts", h->restarts);
    cr_sl_ufield(o, "ooms", h->oom_kills);
    cr_sl_ufield(o, "nexits", h->nexits);
    cr_sl_key(o, "reason");
    put_hex(o, h->reason, CR_HIST_STATE_LINES);
    cr_sl_key(o, "exits");
    for (size_t i = 0; i < cr_hist_count(h); i++) {
        const struct cr_exit *e = cr_hist_at(h, i);
        if (i)
            cr_sl_raw(o, ";", 1);
        const int64_t f[] = {e->when_ms, (int64_t)e->mono_ms, e->runtime_ms, e->code, e->sig,
                             e->oom | e->container << 1 | e->stopped << 2 | e->setup_failed << 3,
                             e->mem_peak};
        for (size_t k = 0; k < sizeof f / sizeof *f; k++) {
            cr_sl_i64(o, f[k]);
            cr_sl_raw(o, ":", 1);
        }
        put_hex(o, e->reason, CR_HIST_STATE_LINES);
        cr_sl_raw(o, ":", 1);
        put_hex(o, e->lines, CR_HIST_STATE_LINES);
    }
}

void cr_hist_take(struct cr_hist *h, struct cr_sl_in *in)
{
    int64_t v;
    if (!h || !cr_sl_int(in, "nexits", &v) || v < 0)
        return;
    size_t nexits = (size_t)v, len;
    if (cr_sl_int(in, "restarts", &v))
        h->restarts = (uint64_t)v;
    if (cr_sl_int(in, "ooms", &v))
        h->oom_kills = (uint64_t)v;
    const char *p = cr_sl_get(in, "reason", &len);
    if (p) {
        free(h->reason);
        h->reason = get_hex(&p, p + len);
    }
    if (!(p = cr_sl_get(in, "exits", &len)) || !nexits)
        return;
    const char *end = p + len;
    size_t count = nexits < CR_HIST_EXITS ? nexits : CR_HIST_EXITS;
    if (!h->exits && !(h->exits = calloc(CR_HIST_EXITS, sizeof *h->exits)))
        return;
    /* Where the earlier program had them, so that cr_hist_at() finds them in order. */
    h->nexits = nexits;
    for (size_t i = 0; i < count; i++) {
        struct cr_exit *e = &h->exits[(nexits - count + i) % CR_HIST_EXITS];
        exit_clear(e);
        int flags = 0, used = 0;
        if (p >= end ||
            sscanf(p, "%" SCNd64 ":%" SCNu64 ":%" SCNd64 ":%d:%d:%d:%" SCNd64 ":%n",
                   &e->when_ms, &e->mono_ms, &e->runtime_ms, &e->code, &e->sig, &flags,
                   &e->mem_peak, &used) < 7 || !used || p + used > end) {
            h->nexits = nexits - count + i;   /* the rest unreadable: kept out */
            return;
        }
        e->oom = flags & 1;
        e->container = flags & 2;
        e->stopped = flags & 4;
        e->setup_failed = flags & 8;
        p += used;
        e->reason = get_hex(&p, end);
        if (p < end && *p == ':')
            p++;
        e->lines = get_hex(&p, end);
        if (p < end && *p == ';')
            p++;
    }
}
