/* supervisord's XML-RPC API (rpc.h): the requests read by xmlrpc.c, served by http.c. */
#include "api/rpc.h"

#include <errno.h>
#include <fcntl.h>
#include <nettle/base64.h>
#include <nettle/sha1.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/http.h"
#include "api/webui.h"
#include "api/xmlrpc.h"
#include "io/logs.h"
#include "log.h"
#include "net/unixsock.h"
#include "service/history.h"
#include "units.h"

/* supervisord's fault codes (supervisor/xmlrpc.py's Faults) */
enum {
    F_UNKNOWN_METHOD = 1, F_INCORRECT_PARAMETERS = 2, F_BAD_ARGUMENTS = 3,
    F_SHUTDOWN_STATE = 6, F_BAD_NAME = 10, F_BAD_SIGNAL = 11, F_NO_FILE = 20, F_FAILED = 30,
    F_ABNORMAL_TERMINATION = 40, F_SPAWN_ERROR = 50, F_ALREADY_STARTED = 60,
    F_NOT_RUNNING = 70, F_SUCCESS = 80, F_ALREADY_ADDED = 90, F_STILL_RUNNING = 91,
    F_CANT_REREAD = 92,
};

static const char *fault_name(int code)
{
    switch (code) {
    case F_UNKNOWN_METHOD: return "UNKNOWN_METHOD";
    case F_INCORRECT_PARAMETERS: return "INCORRECT_PARAMETERS";
    case F_BAD_ARGUMENTS: return "BAD_ARGUMENTS";
    case F_SHUTDOWN_STATE: return "SHUTDOWN_STATE";
    case F_BAD_NAME: return "BAD_NAME";
    case F_BAD_SIGNAL: return "BAD_SIGNAL";
    case F_NO_FILE: return "NO_FILE";
    case F_FAILED: return "FAILED";
    case F_ABNORMAL_TERMINATION: return "ABNORMAL_TERMINATION";
    case F_SPAWN_ERROR: return "SPAWN_ERROR";
    case F_ALREADY_STARTED: return "ALREADY_STARTED";
    case F_NOT_RUNNING: return "NOT_RUNNING";
    case F_SUCCESS: return "SUCCESS";
    case F_ALREADY_ADDED: return "ALREADY_ADDED";
    case F_STILL_RUNNING: return "STILL_RUNNING";
    case F_CANT_REREAD: return "CANT_REREAD";
    default: return "FAILED";
    }
}

/* supervisord's process state codes, in enum cr_state's order */
static const int state_code[CR_NSTATES] = {0, 10, 20, 30, 40, 100, 200};

struct srv {
    struct cr_rpc *r;
    struct cr_http *http;
    char *user, *pass;           /* NULL: no authentication */
};

/* A call whose answer waits for services: start (up) or stop, of one process or several. */
struct wait {
    struct srv *srv;
    struct cr_http_conn *conn;
    bool up, multi;              /* multi: an array of results (group, all) */
    size_t n;
    struct {
        char *name, *group;
        int result;              /* 0: not yet; F_SUCCESS, or a fault code */
    } *v;
    struct wait *next;
};

/* A log followed for supervisorctl's tail -f (GET /logtail/NAME[/stderr], /mainlogtail): its
 * file is polled (uv_fs_poll: a rotated or truncated file is read from its start) while the
 * client reads; nothing polls when nobody follows. */
struct follow {
    struct cr_rpc *r;
    struct cr_http_conn *conn;
    uv_fs_poll_t poll;
    char *path;
    int64_t off;
    struct follow *next;
};

struct cr_rpc {
    const struct cr_api_host *host;
    struct cr_webui ui;
    struct srv unix_srv, inet_srv;
    char *identity, *logfile;
    struct wait *waits;
    struct follow *follows;
    /* what the last applied reload added and changed, which supervisorctl's `update` then
     * asks to add (addProcessGroup) one group at a time */
    char **added;
    size_t nadded;
};

/* ---- services by supervisorctl's names -------------------------------------------------- */

static const char *group_of(const struct cr_svc *s)
{
    const struct cr_service *c = cr_svc_conf(s);
    return c && c->sd_group ? c->sd_group : cr_svc_name(s);
}

static size_t all(struct cr_rpc *r, struct cr_svc *const **v)
{
    return r->host->services(r->host->rt, v);
}

/* "GROUP:NAME", or NAME (its group's or its own): the process, or NULL. */
static struct cr_svc *find(struct cr_rpc *r, const char *spec)
{
    struct cr_svc *const *v;
    size_t n = all(r, &v);
    const char *colon = strchr(spec, ':');
    for (size_t i = 0; i < n; i++) {
        const char *name = cr_svc_name(v[i]);
        if (!colon) {
            if (!strcmp(name, spec))
                return v[i];
            continue;
        }
        const char *g = group_of(v[i]);
        if (strlen(g) == (size_t)(colon - spec) && !strncmp(g, spec, (size_t)(colon - spec)) &&
            !strcmp(name, colon + 1))
            return v[i];
    }
    return NULL;
}

static bool group_exists(struct cr_rpc *r, const char *group)
{
    struct cr_svc *const *v;
    size_t n = all(r, &v);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(group_of(v[i]), group))
            return true;
    return false;
}

/* ---- process info --------------------------------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void member_int(struct cr_xw *w, const char *name, int64_t i)
{
    cr_xw_member(w, name);
    cr_xw_int(w, i);
    cr_xw_member_end(w);
}

static void member_str(struct cr_xw *w, const char *name, const char *s)
{
    cr_xw_member(w, name);
    cr_xw_str(w, s ? s : "");
    cr_xw_member_end(w);
}

static void member_bool(struct cr_xw *w, const char *name, bool b)
{
    cr_xw_member(w, name);
    cr_xw_bool(w, b);
    cr_xw_member_end(w);
}

/* Its container could not be set up (supervisord's spawn error), as opposed to a workload
 * that ran and exited. */
static bool setup_failed(const struct cr_svc_view *v)
{
    return (v->state == CR_ST_FATAL || v->state == CR_ST_BACKOFF) && v->reason && *v->reason &&
           v->last_exit && v->last_exit->setup_failed;
}

/* supervisord's getProcessInfo struct, and its description ("pid N, uptime H:MM:SS"). */
static void process_info(struct cr_xw *w, const struct cr_svc *s)
{
    struct cr_svc_view v;
    cr_svc_view(s, &v);
    int64_t now = now_ms();
    int64_t start = 0, stop = 0;
    if (v.uptime_ms >= 0)
        start = (now - v.uptime_ms) / 1000;
    if (v.last_exit) {
        stop = v.last_exit->when_ms / 1000;
        if (!start && v.last_exit->runtime_ms >= 0)
            start = (v.last_exit->when_ms - v.last_exit->runtime_ms) / 1000;
    }
    char desc[256];
    if (v.state == CR_ST_RUNNING) {
        int64_t up = v.uptime_ms >= 0 ? v.uptime_ms / 1000 : 0;
        int64_t days = up / 86400;
        char d[32] = "";
        if (days)
            snprintf(d, sizeof d, "%lld day%s, ", (long long)days, days == 1 ? "" : "s");
        snprintf(desc, sizeof desc, "pid %d, uptime %s%lld:%02lld:%02lld", (int)v.pid, d,
                 (long long)(up % 86400 / 3600), (long long)(up % 3600 / 60),
                 (long long)(up % 60));
    } else if (v.state == CR_ST_FATAL || v.state == CR_ST_BACKOFF) {
        /* supervisord's spawnerr: why it could not start; a workload that exited too
         * soon has none, and says so */
        if (setup_failed(&v))
            snprintf(desc, sizeof desc, "%s", v.reason);
        else
            snprintf(desc, sizeof desc, "Exited too quickly (process log may have details)");
    } else if (v.state == CR_ST_STOPPED || v.state == CR_ST_EXITED) {
        if (stop) {
            time_t t = (time_t)stop;
            struct tm tm;
            localtime_r(&t, &tm);
            strftime(desc, sizeof desc, "%b %d %I:%M %p", &tm);
        } else {
            snprintf(desc, sizeof desc, "Not started");
        }
    } else {
        desc[0] = 0;
    }
    const char *out = cr_svc_log_path(s, CR_LOG_STDOUT);
    const char *err = cr_svc_log_path(s, CR_LOG_STDERR);
    const struct cr_service *c = cr_svc_conf(s);
    if (c && c->redirect_stderr)
        err = NULL;
    cr_xw_struct_begin(w);
    member_str(w, "name", v.name);
    member_str(w, "group", group_of(s));
    member_int(w, "start", start);
    member_int(w, "stop", stop);
    member_int(w, "now", now / 1000);
    member_int(w, "state", state_code[v.state]);
    member_str(w, "statename", cr_state_name(v.state));
    member_str(w, "spawnerr", v.state == CR_ST_FATAL || v.state == CR_ST_BACKOFF ? desc : "");
    member_int(w, "exitstatus", v.last_exit ? (v.last_exit->sig ? 128 + v.last_exit->sig
                                                                : v.last_exit->code)
                                            : 0);
    member_str(w, "logfile", out);
    member_str(w, "stdout_logfile", out);
    member_str(w, "stderr_logfile", err);
    member_int(w, "pid", v.pid);
    member_str(w, "description", desc);
    cr_xw_struct_end(w);
}

/* ---- the methods ----------------------------------------------------------------------- */

/* One call: its params, where its answer goes, and whether it may wait. */
struct call {
    struct srv *srv;
    const struct cr_xv *params;
    struct cr_xw *w;             /* the value (or a fault: then fault is set) */
    int fault;
    char fmsg[256];
    bool may_wait;
    struct wait *wait;           /* set by a method that waits */
};

static void fault(struct call *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fault(struct call *c, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char m[200];
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    c->fault = code;
    if (*m)
        snprintf(c->fmsg, sizeof c->fmsg, "%s: %s", fault_name(code), m);
    else
        snprintf(c->fmsg, sizeof c->fmsg, "%s", fault_name(code));
}

/* The params, as types: 's' string, 'i' int, 'b' bool; optional ones after '|'. */
static bool args(struct call *c, const char *types)
{
    size_t need = strcspn(types, "|"), most = strlen(types) - (types[need] == '|');
    const struct cr_xv *p = c->params;
    if (p->n < need || p->n > most) {
        fault(c, F_INCORRECT_PARAMETERS, "%zu parameters given, %zu%s expected", p->n, need,
              most > need ? " or more" : "");
        return false;
    }
    for (size_t i = 0, k = 0; i < p->n; i++, k++) {
        if (types[k] == '|')
            k++;
        enum cr_xv_type want = types[k] == 's' ? CR_XV_STRING
                             : types[k] == 'i' ? CR_XV_INT : CR_XV_BOOL;
        bool ok = p->v[i]->t == want || (want == CR_XV_BOOL && p->v[i]->t == CR_XV_INT);
        if (!ok) {
            fault(c, F_INCORRECT_PARAMETERS, "parameter %zu has the wrong type", i + 1);
            return false;
        }
    }
    return true;
}

static const char *arg_s(struct call *c, size_t i)
{
    return c->params->v[i]->s ? c->params->v[i]->s : "";
}
static int64_t arg_i(struct call *c, size_t i) { return c->params->v[i]->i; }
static bool arg_b(struct call *c, size_t i, bool def)
{
    return i < c->params->n ? c->params->v[i]->i != 0 : def;
}

static void m_api_version(struct call *c)
{
    if (args(c, ""))
        cr_xw_str(c->w, "3.0");
}

static void m_version(struct call *c)
{
    if (args(c, ""))
        cr_xw_str(c->w, CORRAL_VERSION);
}

static void m_identification(struct call *c)
{
    if (args(c, ""))
        cr_xw_str(c->w, c->srv->r->identity);
}

static void m_state(struct call *c)
{
    if (!args(c, ""))
        return;
    bool down = c->srv->r->host->shutting_down(c->srv->r->host->rt);
    cr_xw_struct_begin(c->w);
    member_int(c->w, "statecode", down ? -1 : 1);
    member_str(c->w, "statename", down ? "SHUTDOWN" : "RUNNING");
    cr_xw_struct_end(c->w);
}

static void m_pid(struct call *c)
{
    if (args(c, ""))
        cr_xw_int(c->w, getpid());
}

static int cmp_lexical(const void *a, const void *b)
{
    const struct cr_svc *x = *(struct cr_svc *const *)a, *y = *(struct cr_svc *const *)b;
    int r = strcmp(group_of(x), group_of(y));
    return r ? r : strcmp(cr_svc_name(x), cr_svc_name(y));
}

/* As supervisord lists them: by group, then name. */
static void m_all_info(struct call *c)
{
    if (!args(c, ""))
        return;
    struct cr_svc *const *v;
    size_t n = all(c->srv->r, &v);
    struct cr_svc **sorted = malloc((n ? n : 1) * sizeof *sorted);
    if (!sorted) {
        fault(c, F_FAILED, "out of memory");
        return;
    }
    memcpy(sorted, v, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_lexical);
    cr_xw_array_begin(c->w);
    for (size_t i = 0; i < n; i++)
        process_info(c->w, sorted[i]);
    cr_xw_array_end(c->w);
    free(sorted);
}

static void m_info(struct call *c)
{
    if (!args(c, "s"))
        return;
    struct cr_svc *s = find(c->srv->r, arg_s(c, 0));
    if (!s) {
        fault(c, F_BAD_NAME, "%s", arg_s(c, 0));
        return;
    }
    process_info(c->w, s);
}

static bool running_state(enum cr_state st)
{
    return st == CR_ST_RUNNING || st == CR_ST_BACKOFF || st == CR_ST_STARTING;
}

/* 1: where it was sent (RUNNING, or settled); a fault code: it cannot get there; 0: not yet. */
static int judge(struct cr_rpc *r, const char *name, bool up)
{
    struct cr_svc *s = find(r, name);
    if (!s)
        return up ? F_BAD_NAME : F_SUCCESS;
    if (!up)
        return cr_svc_settled(s) ? F_SUCCESS : 0;
    struct cr_svc_view v;
    cr_svc_view(s, &v);
    if (v.start_blocked)
        return F_ABNORMAL_TERMINATION;
    if (v.start_pending)
        return 0;
    if (v.state == CR_ST_RUNNING)
        return F_SUCCESS;
    if (v.state == CR_ST_STARTING)
        return 0;
    /* supervisord sets spawnerr on a failed start, an exit before startsecs included */
    return v.state == CR_ST_BACKOFF || v.state == CR_ST_FATAL ? F_SPAWN_ERROR
                                                               : F_ABNORMAL_TERMINATION;
}

static void wait_free(struct wait *wt)
{
    for (size_t i = 0; i < wt->n; i++) {
        free(wt->v[i].name);
        free(wt->v[i].group);
    }
    free(wt->v);
    free(wt);
}

/* One result of a group call: {name, group, status, description}. */
static void status_struct(struct cr_xw *w, const char *name, const char *group, int code)
{
    cr_xw_struct_begin(w);
    member_str(w, "name", name);
    member_str(w, "group", group);
    member_int(w, "status", code);
    member_str(w, "description", code == F_SUCCESS ? "OK" : fault_name(code));
    cr_xw_struct_end(w);
}

static void answer_xml(struct cr_http_answer *a, struct cr_xw *w);

/* Writes a finished wait's answer. */
static void wait_answer(struct wait *wt, struct cr_xw *w)
{
    if (!wt->multi) {
        int code = wt->v[0].result;
        if (code == F_SUCCESS) {
            cr_xw_begin(w);
            cr_xw_bool(w, true);
            cr_xw_end(w);
        } else {
            cr_xw_fault(w, code, "%s: %s", fault_name(code), wt->v[0].name);
        }
        return;
    }
    cr_xw_begin(w);
    cr_xw_array_begin(w);
    for (size_t i = 0; i < wt->n; i++)
        status_struct(w, wt->v[i].name, wt->v[i].group, wt->v[i].result);
    cr_xw_array_end(w);
    cr_xw_end(w);
}

/* Decides what it can; true when every one is decided. */
static bool wait_check(struct cr_rpc *r, struct wait *wt)
{
    bool done = true;
    for (size_t i = 0; i < wt->n; i++) {
        if (!wt->v[i].result) {
            wt->v[i].result = judge(r, wt->v[i].name, wt->up);
            /* supervisord's group and all starts say abnormal termination for both */
            if (wt->multi && wt->v[i].result == F_SPAWN_ERROR)
                wt->v[i].result = F_ABNORMAL_TERMINATION;
        }
        done &= wt->v[i].result != 0;
    }
    return done;
}

/* Asks services to start or stop; with wait, the call's answer waits for them. names: the
 * processes (full "GROUP:NAME" not needed: a service's name is unique). */
static void act(struct call *c, struct cr_svc **svcs, size_t n, bool up, bool multi, bool wait)
{
    struct cr_rpc *r = c->srv->r;
    struct wait *wt = calloc(1, sizeof *wt);
    if (!wt || !(wt->v = calloc(n ? n : 1, sizeof *wt->v))) {
        free(wt);
        fault(c, F_FAILED, "out of memory");
        return;
    }
    wt->up = up;
    wt->multi = multi;
    wt->srv = c->srv;
    for (size_t i = 0; i < n; i++) {
        wt->v[i].name = strdup(cr_svc_name(svcs[i]));
        wt->v[i].group = strdup(group_of(svcs[i]));
        wt->n++;
        if (!wt->v[i].name || !wt->v[i].group) {
            wait_free(wt);
            fault(c, F_FAILED, "out of memory");
            return;
        }
    }
    for (size_t i = 0; i < n; i++) {
        cr_log(cr_svc_name(svcs[i]), "XML-RPC %s", up ? "start" : "stop");
        r->host->request(r->host->rt, svcs[i], up ? CR_REQ_START : CR_REQ_STOP);
    }
    if (!wait || !c->may_wait) {
        /* answered now: each request was taken */
        for (size_t i = 0; i < wt->n; i++)
            wt->v[i].result = F_SUCCESS;
    }
    if (wait && c->may_wait && !wait_check(r, wt)) {
        c->wait = wt;
        return;
    }
    /* decided at once */
    if (!multi) {
        if (wt->v[0].result == F_SUCCESS)
            cr_xw_bool(c->w, true);
        else
            fault(c, wt->v[0].result, "%s", wt->v[0].name);
    } else {
        cr_xw_array_begin(c->w);
        for (size_t i = 0; i < wt->n; i++)
            status_struct(c->w, wt->v[i].name, wt->v[i].group, wt->v[i].result);
        cr_xw_array_end(c->w);
    }
    wait_free(wt);
}

static bool refuse_shutdown(struct call *c)
{
    if (!c->srv->r->host->shutting_down(c->srv->r->host->rt))
        return false;
    fault(c, F_SHUTDOWN_STATE, "the supervisor is shutting down");
    return true;
}

/* The processes of a group (group NULL: all), in the supervisor's order; those that want
 * the action (not already where they are sent). */
static size_t select_group(struct cr_rpc *r, const char *group, bool up, struct cr_svc ***out)
{
    struct cr_svc *const *v;
    size_t n = all(r, &v), k = 0;
    *out = calloc(n ? n : 1, sizeof **out);
    if (!*out)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (group && strcmp(group_of(v[i]), group))
            continue;
        enum cr_state st = cr_svc_state(v[i]);
        if (up ? running_state(st) || !cr_svc_conf(v[i])
               : !running_state(st))
            continue;
        (*out)[k++] = v[i];
    }
    return k;
}

static void group_action(struct call *c, const char *group, bool up)
{
    if (up && refuse_shutdown(c))
        return;
    if (group && !group_exists(c->srv->r, group)) {
        fault(c, F_BAD_NAME, "%s", group);
        return;
    }
    struct cr_svc **sel;
    size_t n = select_group(c->srv->r, group, up, &sel);
    act(c, sel, n, up, true, arg_b(c, group ? 1 : 0, true));
    free(sel);
}

static void m_start(struct call *c)
{
    if (!args(c, "s|b") || refuse_shutdown(c))
        return;
    const char *name = arg_s(c, 0);
    size_t nl = strlen(name);
    if (nl > 2 && !strcmp(name + nl - 2, ":*")) {
        char g[256];
        snprintf(g, sizeof g, "%.*s", (int)(nl - 2), name);
        group_action(c, g, true);
        return;
    }
    struct cr_svc *s = find(c->srv->r, name);
    if (!s) {
        fault(c, F_BAD_NAME, "%s", name);
        return;
    }
    if (running_state(cr_svc_state(s))) {
        fault(c, F_ALREADY_STARTED, "%s", name);
        return;
    }
    if (!cr_svc_conf(s)) {
        fault(c, F_BAD_NAME, "%s was removed from the configuration", name);
        return;
    }
    act(c, &s, 1, true, false, arg_b(c, 1, true));
}

static void m_stop(struct call *c)
{
    if (!args(c, "s|b"))
        return;
    const char *name = arg_s(c, 0);
    size_t nl = strlen(name);
    if (nl > 2 && !strcmp(name + nl - 2, ":*")) {
        char g[256];
        snprintf(g, sizeof g, "%.*s", (int)(nl - 2), name);
        group_action(c, g, false);
        return;
    }
    struct cr_svc *s = find(c->srv->r, name);
    if (!s) {
        fault(c, F_BAD_NAME, "%s", name);
        return;
    }
    if (!running_state(cr_svc_state(s))) {
        fault(c, F_NOT_RUNNING, "%s", name);
        return;
    }
    act(c, &s, 1, false, false, arg_b(c, 1, true));
}

static void m_start_group(struct call *c)
{
    if (args(c, "s|b"))
        group_action(c, arg_s(c, 0), true);
}

static void m_stop_group(struct call *c)
{
    if (args(c, "s|b"))
        group_action(c, arg_s(c, 0), false);
}

static void m_start_all(struct call *c)
{
    if (args(c, "|b"))
        group_action(c, NULL, true);
}

static void m_stop_all(struct call *c)
{
    if (args(c, "|b"))
        group_action(c, NULL, false);
}

/* The signal by name ("HUP", "SIGHUP") or number, or 0. */
static int signal_of(struct call *c, size_t i)
{
    const struct cr_xv *v = c->params->v[i];
    int sig = v->t == CR_XV_INT ? (int)v->i : cr_parse_signal(v->s ? v->s : "");
    return sig > 0 && sig < 65 ? sig : 0;
}

static void signal_list(struct call *c, struct cr_svc **sel, size_t n, int sig)
{
    cr_xw_array_begin(c->w);
    for (size_t i = 0; i < n; i++) {
        enum cr_state st = cr_svc_state(sel[i]);
        int code = F_SUCCESS;
        if (st != CR_ST_RUNNING && st != CR_ST_STARTING && st != CR_ST_STOPPING)
            code = F_NOT_RUNNING;
        else if (cr_svc_signal(sel[i], sig) < 0)
            code = F_FAILED;
        status_struct(c->w, cr_svc_name(sel[i]), group_of(sel[i]), code);
    }
    cr_xw_array_end(c->w);
}

static void m_signal(struct call *c)
{
    if (c->params->n != 2 || c->params->v[0]->t != CR_XV_STRING) {
        fault(c, F_INCORRECT_PARAMETERS, "expected a name and a signal");
        return;
    }
    const char *name = arg_s(c, 0);
    int sig = signal_of(c, 1);
    if (!sig) {
        fault(c, F_BAD_SIGNAL, "%s", name);
        return;
    }
    struct cr_svc *s = find(c->srv->r, name);
    if (!s) {
        fault(c, F_BAD_NAME, "%s", name);
        return;
    }
    enum cr_state st = cr_svc_state(s);
    if (st != CR_ST_RUNNING && st != CR_ST_STARTING && st != CR_ST_STOPPING) {
        fault(c, F_NOT_RUNNING, "%s", name);
        return;
    }
    cr_log(cr_svc_name(s), "XML-RPC signal %s", sigabbrev_np(sig) ? sigabbrev_np(sig) : "?");
    if (cr_svc_signal(s, sig) < 0) {
        fault(c, F_FAILED, "%s", name);
        return;
    }
    cr_xw_bool(c->w, true);
}

static void m_signal_group(struct call *c)
{
    if (c->params->n != 2 || c->params->v[0]->t != CR_XV_STRING) {
        fault(c, F_INCORRECT_PARAMETERS, "expected a group and a signal");
        return;
    }
    int sig = signal_of(c, 1);
    if (!sig) {
        fault(c, F_BAD_SIGNAL, "%s", arg_s(c, 0));
        return;
    }
    if (!group_exists(c->srv->r, arg_s(c, 0))) {
        fault(c, F_BAD_NAME, "%s", arg_s(c, 0));
        return;
    }
    struct cr_svc *const *v;
    size_t n = all(c->srv->r, &v), k = 0;
    struct cr_svc **sel = calloc(n ? n : 1, sizeof *sel);
    if (!sel) {
        fault(c, F_FAILED, "out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (!strcmp(group_of(v[i]), arg_s(c, 0)))
            sel[k++] = v[i];
    signal_list(c, sel, k, sig);
    free(sel);
}

static void m_signal_all(struct call *c)
{
    if (c->params->n != 1) {
        fault(c, F_INCORRECT_PARAMETERS, "expected a signal");
        return;
    }
    int sig = signal_of(c, 0);
    if (!sig) {
        fault(c, F_BAD_SIGNAL, "signal");
        return;
    }
    struct cr_svc *const *v;
    size_t n = all(c->srv->r, &v), k = 0;
    struct cr_svc **sel = calloc(n ? n : 1, sizeof *sel);
    if (!sel) {
        fault(c, F_FAILED, "out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        enum cr_state st = cr_svc_state(v[i]);
        if (st == CR_ST_RUNNING || st == CR_ST_STARTING || st == CR_ST_STOPPING)
            sel[k++] = v[i];
    }
    signal_list(c, sel, k, sig);
    free(sel);
}

/* ---- logs ------------------------------------------------------------------------------- */

/* Bytes [from, from+len) of path (len 0: to its end), at most CR_RPC_READ_MAX. */
static char *read_range(const char *path, int64_t from, int64_t len, int64_t *size,
                        size_t *got)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return NULL;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        errno = EINVAL;
        return NULL;
    }
    *size = st.st_size;
    if (from > st.st_size)
        from = st.st_size;
    int64_t want = len ? len : st.st_size - from;
    if (from + want > st.st_size)
        want = st.st_size - from;
    if (want > CR_RPC_READ_MAX) {
        from += want - CR_RPC_READ_MAX;   /* the newest bytes */
        want = CR_RPC_READ_MAX;
    }
    char *buf = malloc((size_t)want + 1);
    ssize_t n = buf ? pread(fd, buf, (size_t)want, from) : -1;
    close(fd);
    if (n < 0) {
        free(buf);
        return NULL;
    }
    *got = (size_t)n;
    return buf;
}

static const char *log_of(struct call *c, int stream)
{
    const char *name = arg_s(c, 0);
    struct cr_svc *s = find(c->srv->r, name);
    if (!s) {
        fault(c, F_BAD_NAME, "%s", name);
        return NULL;
    }
    const char *p = cr_svc_log_path(s, stream);
    if (!p)
        fault(c, F_NO_FILE, "%s", name);
    return p;
}

/* readProcessStdoutLog(name, offset, length): supervisord's readFile: a negative offset
 * reads the last -offset bytes (length 0). */
static void read_log(struct call *c, const char *path)
{
    int64_t off = arg_i(c, c->params->n - 2), len = arg_i(c, c->params->n - 1);
    if (len < 0 || (off < 0 && len)) {
        fault(c, F_BAD_ARGUMENTS, "offset %lld, length %lld", (long long)off,
              (long long)len);
        return;
    }
    int64_t size = 0;
    size_t got = 0;
    char *buf;
    if (off < 0) {
        struct stat st;
        if (stat(path, &st) < 0) {
            fault(c, F_NO_FILE, "%s", path);
            return;
        }
        int64_t from = st.st_size + off;
        buf = read_range(path, from < 0 ? 0 : from, 0, &size, &got);
    } else {
        buf = read_range(path, off, len, &size, &got);
    }
    if (!buf) {
        fault(c, errno == ENOENT ? F_NO_FILE : F_FAILED, "%s", path);
        return;
    }
    cr_xw_strn(c->w, buf, got);
    free(buf);
}

static void m_read_out(struct call *c)
{
    if (!args(c, "sii"))
        return;
    const char *p = log_of(c, CR_LOG_STDOUT);
    if (p)
        read_log(c, p);
}

static void m_read_err(struct call *c)
{
    if (!args(c, "sii"))
        return;
    const char *p = log_of(c, CR_LOG_STDERR);
    if (p)
        read_log(c, p);
}

static void m_read_main(struct call *c)
{
    if (!args(c, "ii"))
        return;
    if (!c->srv->r->logfile) {
        fault(c, F_NO_FILE, "the supervisor has no log file (logfile = NONE)");
        return;
    }
    read_log(c, c->srv->r->logfile);
}

/* tailProcessStdoutLog(name, offset, length) → [bytes, offset, overflow]: at most length
 * bytes from offset to the end; overflow when more were there. */
static void tail_log(struct call *c, int stream)
{
    if (!args(c, "sii"))
        return;
    const char *p = log_of(c, stream);
    if (!p)
        return;
    int64_t off = arg_i(c, 1), len = arg_i(c, 2);
    if (off < 0 || len < 0) {
        fault(c, F_BAD_ARGUMENTS, "offset %lld, length %lld", (long long)off,
              (long long)len);
        return;
    }
    struct stat st;
    if (stat(p, &st) < 0) {
        /* supervisord answers an empty tail when the file is not there yet */
        cr_xw_array_begin(c->w);
        cr_xw_str(c->w, "");
        cr_xw_int(c->w, 0);
        cr_xw_bool(c->w, false);
        cr_xw_array_end(c->w);
        return;
    }
    bool overflow = false;
    if (st.st_size > off + len) {
        overflow = true;
        off = st.st_size - len;
    }
    int64_t size = 0;
    size_t got = 0;
    char *buf = read_range(p, off, 0, &size, &got);
    if (!buf) {
        fault(c, F_FAILED, "%s", p);
        return;
    }
    cr_xw_array_begin(c->w);
    cr_xw_strn(c->w, buf, got);
    cr_xw_int(c->w, size);
    cr_xw_bool(c->w, overflow);
    cr_xw_array_end(c->w);
    free(buf);
}

static void m_tail_out(struct call *c) { tail_log(c, CR_LOG_STDOUT); }
static void m_tail_err(struct call *c) { tail_log(c, CR_LOG_STDERR); }

static void m_clear_logs(struct call *c)
{
    if (!args(c, "s"))
        return;
    struct cr_svc *s = find(c->srv->r, arg_s(c, 0));
    if (!s) {
        fault(c, F_BAD_NAME, "%s", arg_s(c, 0));
        return;
    }
    for (int stream = CR_LOG_STDOUT; stream <= CR_LOG_STDERR; stream++) {
        const char *p = cr_svc_log_path(s, stream);
        if (p && truncate(p, 0) < 0 && errno != ENOENT) {
            fault(c, F_FAILED, "%s: %s", p, strerror(errno));
            return;
        }
    }
    cr_xw_bool(c->w, true);
}

/* ---- reload: supervisorctl's reread and update ------------------------------------------- */

/* What a plan item is to supervisorctl: 0 added, 1 changed, 2 removed, -1 nothing. */
static int item_kind(const struct cr_plan_item *it)
{
    if (it->global)
        return -1;
    if (it->action == CR_PLAN_STOP)
        return 2;
    if (it->create)
        return 0;
    if (it->action == CR_PLAN_KEEP || (it->action == CR_PLAN_UPDATE && !*it->keys))
        return -1;
    return 1;
}

/* The groups of one kind, each once. */
static void name_list(struct cr_xw *w, const struct cr_plan *p, int which)
{
    cr_xw_array_begin(w);
    for (size_t i = 0; i < p->n; i++) {
        if (item_kind(&p->v[i]) != which)
            continue;
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = item_kind(&p->v[j]) == which && !strcmp(p->v[j].group, p->v[i].group);
        if (!seen)
            cr_xw_str(w, p->v[i].group);
    }
    cr_xw_array_end(w);
}

static void handled_clear(struct cr_rpc *r)
{
    for (size_t i = 0; i < r->nadded; i++)
        free(r->added[i]);
    r->nadded = 0;
}

static bool handled(struct cr_rpc *r, const char *group, bool take)
{
    for (size_t i = 0; i < r->nadded; i++)
        if (!strcmp(r->added[i], group)) {
            if (take) {
                free(r->added[i]);
                r->added[i] = r->added[--r->nadded];
            }
            return true;
        }
    return false;
}

/* reloadConfig → [[added, changed, removed]], by group; nothing changes yet. */
static void m_reload(struct call *c)
{
    if (!args(c, ""))
        return;
    struct cr_rpc *r = c->srv->r;
    handled_clear(r);
    struct cr_plan plan = {0};
    int rc = r->host->reload(r->host->rt, false, &plan);
    if (rc < 0) {
        char first[200] = "";
        if (plan.errors.n)
            snprintf(first, sizeof first, "%s", plan.errors.v[0]);
        fault(c, F_CANT_REREAD, "%s", rc == -EINVAL ? first : strerror(-rc));
        cr_plan_free(&plan);
        return;
    }
    cr_xw_array_begin(c->w);
    cr_xw_array_begin(c->w);
    for (int k = 0; k < 3; k++)
        name_list(c->w, &plan, k);
    cr_xw_array_end(c->w);
    cr_xw_array_end(c->w);
    cr_plan_free(&plan);
}

/* supervisorctl's update removes, then adds, one group at a time; corral's reload changes
 * everything at once. The first add or remove applies it, and the groups it changed are
 * remembered: each later add or remove of one of them is already done. */
static int apply_reload(struct cr_rpc *r)
{
    struct cr_plan plan = {0};
    int rc = r->host->reload(r->host->rt, false, &plan);
    if (rc == 0) {
        for (size_t i = 0; i < plan.n; i++) {
            if (item_kind(&plan.v[i]) < 0 || handled(r, plan.v[i].group, false))
                continue;
            char **nv = realloc(r->added, (r->nadded + 1) * sizeof *nv);
            if (!nv)
                break;
            r->added = nv;
            if (!(nv[r->nadded] = strdup(plan.v[i].group)))
                break;
            r->nadded++;
        }
        rc = r->host->reload(r->host->rt, true, NULL);
    }
    cr_plan_free(&plan);
    return rc;
}

/* supervisord starts an added group's autostart processes: a changed one that `update`
 * stopped (the reload left it stopped, with its new config) starts again. */
static void start_added(struct cr_rpc *r, const char *group)
{
    struct cr_svc *const *v;
    size_t n = all(r, &v);
    for (size_t i = 0; i < n; i++) {
        const struct cr_service *conf = cr_svc_conf(v[i]);
        if (conf && conf->autostart && !strcmp(group_of(v[i]), group) &&
            cr_svc_state(v[i]) == CR_ST_STOPPED)
            r->host->request(r->host->rt, v[i], CR_REQ_START);
    }
}

static void m_add_group(struct call *c)
{
    if (!args(c, "s") || refuse_shutdown(c))
        return;
    struct cr_rpc *r = c->srv->r;
    const char *name = arg_s(c, 0);
    if (!handled(r, name, true)) {
        if (group_exists(r, name)) {
            fault(c, F_ALREADY_ADDED, "%s", name);
            return;
        }
        int rc = apply_reload(r);
        if (rc < 0) {
            fault(c, F_CANT_REREAD, "%s", strerror(-rc));
            return;
        }
        if (!handled(r, name, true) && !group_exists(r, name)) {
            fault(c, F_BAD_NAME, "%s", name);
            return;
        }
    }
    start_added(r, name);
    cr_xw_bool(c->w, true);
}

static void m_remove_group(struct call *c)
{
    if (!args(c, "s"))
        return;
    struct cr_rpc *r = c->srv->r;
    const char *name = arg_s(c, 0);
    if (handled(r, name, false)) {
        cr_xw_bool(c->w, true);
        return;
    }
    struct cr_svc *const *v;
    size_t n = all(r, &v);
    bool found = false;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(group_of(v[i]), name))
            continue;
        found = true;
        if (!cr_svc_settled(v[i])) {
            fault(c, F_STILL_RUNNING, "%s", name);
            return;
        }
    }
    if (!found) {
        fault(c, F_BAD_NAME, "%s", name);
        return;
    }
    int rc = apply_reload(r);
    if (rc < 0)
        fault(c, F_FAILED, "%s", strerror(-rc));
    else
        cr_xw_bool(c->w, true);
}

static void m_config_info(struct call *c)
{
    if (!args(c, ""))
        return;
    struct cr_svc *const *v;
    size_t n = all(c->srv->r, &v);
    cr_xw_array_begin(c->w);
    for (size_t i = 0; i < n; i++) {
        const struct cr_service *conf = cr_svc_conf(v[i]);
        if (!conf)
            continue;
        cr_xw_struct_begin(c->w);
        member_str(c->w, "name", cr_svc_name(v[i]));
        member_str(c->w, "group", group_of(v[i]));
        member_bool(c->w, "inuse", true);
        member_bool(c->w, "autostart", conf->autostart);
        member_int(c->w, "process_prio", conf->priority);
        member_int(c->w, "group_prio", conf->priority);
        member_str(c->w, "command", conf->command);
        cr_xw_struct_end(c->w);
    }
    cr_xw_array_end(c->w);
}

static void m_shutdown(struct call *c)
{
    if (!args(c, "") || refuse_shutdown(c))
        return;
    c->srv->r->host->shutdown(c->srv->r->host->rt, "supervisorctl shutdown");
    cr_xw_bool(c->w, true);
}

static void m_list_methods(struct call *c);
static void m_multicall(struct call *c);

static const struct method {
    const char *name;
    void (*fn)(struct call *c);
} methods[] = {
    {"supervisor.getAPIVersion", m_api_version},
    {"supervisor.getVersion", m_api_version},
    {"supervisor.getSupervisorVersion", m_version},
    {"supervisor.getIdentification", m_identification},
    {"supervisor.getState", m_state},
    {"supervisor.getPID", m_pid},
    {"supervisor.getAllProcessInfo", m_all_info},
    {"supervisor.getProcessInfo", m_info},
    {"supervisor.getAllConfigInfo", m_config_info},
    {"supervisor.startProcess", m_start},
    {"supervisor.stopProcess", m_stop},
    {"supervisor.startProcessGroup", m_start_group},
    {"supervisor.stopProcessGroup", m_stop_group},
    {"supervisor.startAllProcesses", m_start_all},
    {"supervisor.stopAllProcesses", m_stop_all},
    {"supervisor.signalProcess", m_signal},
    {"supervisor.signalProcessGroup", m_signal_group},
    {"supervisor.signalAllProcesses", m_signal_all},
    {"supervisor.readLog", m_read_main},
    {"supervisor.readMainLog", m_read_main},
    {"supervisor.readProcessLog", m_read_out},
    {"supervisor.readProcessStdoutLog", m_read_out},
    {"supervisor.readProcessStderrLog", m_read_err},
    {"supervisor.tailProcessLog", m_tail_out},
    {"supervisor.tailProcessStdoutLog", m_tail_out},
    {"supervisor.tailProcessStderrLog", m_tail_err},
    {"supervisor.clearProcessLog", m_clear_logs},
    {"supervisor.clearProcessLogs", m_clear_logs},
    {"supervisor.reloadConfig", m_reload},
    {"supervisor.addProcessGroup", m_add_group},
    {"supervisor.removeProcessGroup", m_remove_group},
    {"supervisor.shutdown", m_shutdown},
    {"system.listMethods", m_list_methods},
    {"system.multicall", m_multicall},
};

static void m_list_methods(struct call *c)
{
    if (!args(c, ""))
        return;
    cr_xw_array_begin(c->w);
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        cr_xw_str(c->w, methods[i].name);
    cr_xw_array_end(c->w);
}

/* Runs one method into c (its value, or c->fault). */
static void run(struct call *c, const char *name)
{
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (!strcmp(methods[i].name, name)) {
            methods[i].fn(c);
            return;
        }
    fault(c, F_UNKNOWN_METHOD, "%s", name);
}

/* system.multicall([{methodName, params}, ...]): each result as [value], or a fault struct;
 * none of them waits. */
static void m_multicall(struct call *c)
{
    if (c->params->n != 1 || c->params->v[0]->t != CR_XV_ARRAY) {
        fault(c, F_INCORRECT_PARAMETERS, "expected an array of calls");
        return;
    }
    const struct cr_xv *calls = c->params->v[0];
    cr_xw_array_begin(c->w);
    for (size_t i = 0; i < calls->n; i++) {
        const struct cr_xv *m = cr_xv_member(calls->v[i], "methodName");
        const struct cr_xv *p = cr_xv_member(calls->v[i], "params");
        struct cr_xw sub = {0};
        struct call one = {.srv = c->srv, .params = p, .w = &sub};
        if (!m || m->t != CR_XV_STRING || !p || p->t != CR_XV_ARRAY)
            fault(&one, F_INCORRECT_PARAMETERS, "each call is {methodName, params}");
        else if (!strcmp(m->s, "system.multicall"))
            fault(&one, F_INCORRECT_PARAMETERS, "system.multicall cannot be nested");
        else
            run(&one, m->s);
        if (one.fault) {
            cr_xw_struct_begin(c->w);
            member_int(c->w, "faultCode", one.fault);
            member_str(c->w, "faultString", one.fmsg);
            cr_xw_struct_end(c->w);
        } else {
            cr_xw_array_begin(c->w);
            cr_xw_raw(c->w, sub.p ? sub.p : "");
            cr_xw_array_end(c->w);
        }
        c->w->oom |= sub.oom;
        free(sub.p);
    }
    cr_xw_array_end(c->w);
}

/* ---- HTTP ------------------------------------------------------------------------------- */

static void answer_xml(struct cr_http_answer *a, struct cr_xw *w)
{
    if (w->oom) {
        free(w->p);
        *a = (struct cr_http_answer){500, "Internal Server Error", "text/plain", NULL, 0, NULL,
                                     NULL};
        return;
    }
    *a = (struct cr_http_answer){200, "OK", "text/xml", w->p, w->len, NULL, NULL};
}

static void answer_text(struct cr_http_answer *a, int code, const char *reason,
                        const char *msg, const char *headers)
{
    char *b = strdup(msg);
    *a = (struct cr_http_answer){code, reason, "text/plain; charset=utf-8", b,
                                 b ? strlen(b) : 0, headers, NULL};
}

/* Basic authentication as the section sets it; true when none is asked for. */
static bool authorized(const struct srv *sv, const struct cr_http_req *req)
{
    if (!sv->user)
        return true;
    char h[512];
    if (!cr_http_header(req, "Authorization", h, sizeof h) || strncasecmp(h, "Basic ", 6))
        return false;
    struct base64_decode_ctx ctx;
    base64_decode_init(&ctx);
    uint8_t dec[400];
    size_t dl = sizeof dec - 1;
    const char *b64 = h + 6;
    while (*b64 == ' ')
        b64++;
    if (!base64_decode_update(&ctx, &dl, dec, strlen(b64), b64) || !base64_decode_final(&ctx))
        return false;
    dec[dl] = 0;
    char *colon = strchr((char *)dec, ':');
    if (!colon)
        return false;
    *colon = 0;
    const char *pw = colon + 1;
    if (strcmp((char *)dec, sv->user))
        return false;
    if (!strncmp(sv->pass, "{SHA}", 5)) {
        /* supervisord's form: the SHA-1 of the password, in hex */
        struct sha1_ctx s;
        uint8_t d[SHA1_DIGEST_SIZE];
        char hex[2 * SHA1_DIGEST_SIZE + 1];
        sha1_init(&s);
        sha1_update(&s, strlen(pw), (const uint8_t *)pw);
        sha1_digest(&s, sizeof d, d);
        for (size_t i = 0; i < sizeof d; i++)
            snprintf(hex + 2 * i, 3, "%02x", d[i]);
        return !strcasecmp(hex, sv->pass + 5);
    }
    return !strcmp(pw, sv->pass);
}

/* ---- tail -f ------------------------------------------------------------------------------ */

#define FOLLOW_POLL_MS 250
#define FOLLOW_FIRST 1024        /* bytes of the log the tail starts with, as supervisord */

static void follow_closed(uv_handle_t *h)
{
    struct follow *f = h->data;
    free(f->path);
    free(f);
}

static void follow_drop(struct follow *f)
{
    for (struct follow **p = &f->r->follows; *p; p = &(*p)->next)
        if (*p == f) {
            *p = f->next;
            break;
        }
    uv_fs_poll_stop(&f->poll);
    uv_close((uv_handle_t *)&f->poll, follow_closed);
}

static void on_log_changed(uv_fs_poll_t *h, int status, const uv_stat_t *prev,
                           const uv_stat_t *curr)
{
    struct follow *f = h->data;
    if (status < 0)
        return;                  /* not there (yet): wait for it */
    if ((int64_t)curr->st_size < f->off || (prev && curr->st_ino != prev->st_ino))
        f->off = 0;              /* truncated, or rotated: a new file */
    while (f->off < (int64_t)curr->st_size) {
        int64_t size = 0;
        size_t got = 0;
        int64_t want = (int64_t)curr->st_size - f->off;
        char *buf = read_range(f->path, f->off, want > 65536 ? 65536 : want, &size, &got);
        if (!buf || !got) {
            free(buf);
            return;
        }
        f->off += (int64_t)got;
        int r = cr_http_stream_write(f->conn, buf, got);
        free(buf);
        if (r < 0)
            return;              /* the connection is gone: aborted() dropped f */
    }
}

/* GET /logtail/NAME[/stdout|/stderr] or /mainlogtail: the answer follows the file. */
static void tail_follow(struct srv *sv, const struct cr_http_req *req, struct cr_http_answer *a)
{
    struct cr_rpc *r = sv->r;
    char target[512];
    snprintf(target, sizeof target, "%.*s", (int)strcspn(req->target, "?"), req->target);
    const char *path = NULL;
    if (!strcmp(target, "/mainlogtail")) {
        path = r->logfile;
    } else {
        char *name = target + strlen("/logtail/");
        char *slash = strchr(name, '/');
        int stream = CR_LOG_STDOUT;
        if (slash) {
            *slash = 0;
            if (!strcmp(slash + 1, "stderr"))
                stream = CR_LOG_STDERR;
            else if (strcmp(slash + 1, "stdout")) {
                answer_text(a, 404, "Not Found", "no such channel\n", NULL);
                return;
            }
        }
        struct cr_svc *s = find(r, name);
        if (!s) {
            answer_text(a, 404, "Not Found", "no such process\n", NULL);
            return;
        }
        path = cr_svc_log_path(s, stream);
    }
    if (!path) {
        answer_text(a, 410, "Gone", "no log file\n", NULL);
        return;
    }
    struct follow *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        answer_text(a, 503, "Service Unavailable", "out of memory\n", NULL);
        return;
    }
    f->r = r;
    f->conn = req->conn;
    struct stat st;
    int64_t size = 0;
    size_t got = 0;
    char *first = NULL;
    if (stat(path, &st) == 0) {
        f->off = st.st_size > FOLLOW_FIRST ? st.st_size - FOLLOW_FIRST : 0;
        first = read_range(path, f->off, st.st_size - f->off, &size, &got);
        f->off += (int64_t)got;
    }
    uv_fs_poll_init(r->host->rt->loop, &f->poll);
    f->poll.data = f;
    uv_fs_poll_start(&f->poll, on_log_changed, f->path, FOLLOW_POLL_MS);
    f->next = r->follows;
    r->follows = f;
    *a = (struct cr_http_answer){0, NULL, NULL, first, got, NULL, "text/plain;charset=utf-8"};
}

static void on_request(void *arg, const struct cr_http_req *req, struct cr_http_answer *a)
{
    struct srv *sv = arg;
    if (!authorized(sv, req)) {
        answer_text(a, 401, "Unauthorized", "authentication required\n",
                    "WWW-Authenticate: Basic realm=\"corral\"\r\n");
        return;
    }
    if (!strcmp(req->method, "GET") && (!strncmp(req->target, "/logtail/", 9) ||
                                         !strncmp(req->target, "/mainlogtail", 12))) {
        tail_follow(sv, req, a);
        return;
    }
    if (cr_webui_route(sv->r->host, &sv->r->ui, sv->r->identity, req, a))
        return;
    size_t tl = strcspn(req->target, "?");
    if (tl != 5 || strncmp(req->target, "/RPC2", 5)) {
        answer_text(a, 404, "Not Found", "XML-RPC is at /RPC2, the web UI at /\n", NULL);
        return;
    }
    if (strcmp(req->method, "POST")) {
        answer_text(a, 405, "Method Not Allowed", "XML-RPC takes POST\n",
                    "Allow: POST\r\n");
        return;
    }
    char *method = NULL, err[256];
    struct cr_xv *params = NULL;
    int rc = cr_xmlrpc_parse(req->body, req->blen, &method, &params, err, sizeof err);
    if (rc < 0) {
        char msg[300];
        snprintf(msg, sizeof msg, "not an XML-RPC request: %s\n", err);
        answer_text(a, rc == -ENOMEM ? 503 : 400,
                    rc == -ENOMEM ? "Service Unavailable" : "Bad Request", msg, NULL);
        return;
    }
    struct cr_xw val = {0}, w = {0};
    struct call c = {.srv = sv, .params = params, .w = &val, .may_wait = true};
    run(&c, method);
    if (c.wait) {
        c.wait->conn = req->conn;
        c.wait->next = sv->r->waits;
        sv->r->waits = c.wait;
        a->code = 0;             /* answered by cr_rpc_changed() */
    } else if (c.fault) {
        cr_xw_fault(&w, c.fault, "%s", c.fmsg);
        w.oom |= val.oom;
        answer_xml(a, &w);
    } else {
        cr_xw_begin(&w);
        cr_xw_raw(&w, val.p ? val.p : "");
        cr_xw_end(&w);
        w.oom |= val.oom;
        answer_xml(a, &w);
    }
    free(val.p);
    free(method);
    cr_xv_free(params);
}

static void unlink_wait(struct cr_rpc *r, struct wait *wt)
{
    for (struct wait **p = &r->waits; *p; p = &(*p)->next)
        if (*p == wt) {
            *p = wt->next;
            return;
        }
}

static void on_aborted(void *arg, struct cr_http_conn *conn)
{
    struct srv *sv = arg;
    for (struct follow *f = sv->r->follows; f; f = f->next)
        if (f->conn == conn) {
            follow_drop(f);
            return;
        }
    for (struct wait *wt = sv->r->waits; wt; wt = wt->next)
        if (wt->conn == conn) {
            unlink_wait(sv->r, wt);
            wait_free(wt);
            return;
        }
}

void cr_rpc_changed(struct cr_rpc *r)
{
    if (!r)
        return;
    struct wait *wt = r->waits;
    while (wt) {
        struct wait *next = wt->next;
        if (wait_check(r, wt)) {
            unlink_wait(r, wt);
            struct cr_xw w = {0};
            wait_answer(wt, &w);
            struct cr_http_answer a;
            answer_xml(&a, &w);
            cr_http_reply(wt->conn, &a);
            wait_free(wt);
        }
        wt = next;
    }
}

/* ---- opening ---------------------------------------------------------------------------- */

static int srv_auth(struct srv *sv, const char *user, const char *pass)
{
    if (!user)
        return 0;
    sv->user = strdup(user);
    sv->pass = strdup(pass ? pass : "");
    return sv->user && sv->pass ? 0 : -ENOMEM;
}

/* "user" or "user:group" → ids (none: both -1). */
static int owner_of(const char *chown_to, uid_t *uid, gid_t *gid, char *err, size_t errlen)
{
    *uid = (uid_t)-1;
    *gid = (gid_t)-1;
    char why[300];
    if (!chown_to || cr_owner_parse(chown_to, uid, gid, why, sizeof why) == 0)
        return 0;
    snprintf(err, errlen, "chown: %s", why);
    return -EINVAL;
}

/* supervisord's port: "HOST:PORT", ":PORT", "*:PORT" or "PORT" (every address). */
static void listen_of(const char *port, char *out, size_t len)
{
    const char *colon = strrchr(port, ':');
    if (!colon)
        snprintf(out, len, "0.0.0.0:%s", port);
    else if (colon == port || (colon == port + 1 && port[0] == '*'))
        snprintf(out, len, "0.0.0.0%s", colon);
    else
        snprintf(out, len, "%s", port);
}

int cr_rpc_open(const struct cr_api_host *host, const struct cr_global *g, struct cr_rpc **out,
                char *err, size_t errlen)
{
    *out = NULL;
    if (!g->rpc_unix_file && !g->rpc_inet_port)
        return 0;
    struct cr_rpc *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    r->host = host;
    r->unix_srv.r = r->inet_srv.r = r;
    r->identity = strdup(g->identity ? g->identity : "supervisor");
    if (g->logfile && strcmp(g->logfile, "NONE")) {
        if (!strcmp(g->logfile, "AUTO")) {
            size_t n = strlen(g->log_dir) + 32;
            if ((r->logfile = malloc(n)))
                snprintf(r->logfile, n, "%s/supervisor.log", g->log_dir);
        } else {
            r->logfile = strdup(g->logfile);
        }
    }
    int rc = 0;
    if (!r->identity) {
        snprintf(err, errlen, "out of memory");
        rc = -ENOMEM;
    } else if ((rc = cr_webui_init(&r->ui, host)) < 0) {
        snprintf(err, errlen, "the web UI's token: %s", strerror(-rc));
    }
    if (!rc && g->rpc_unix_file) {
        uid_t uid;
        gid_t gid;
        struct cr_http_opts o = {on_request, on_aborted, &r->unix_srv, CR_RPC_BODY_MAX};
        rc = srv_auth(&r->unix_srv, g->rpc_unix_user, g->rpc_unix_pass);
        if (!rc)
            rc = owner_of(g->rpc_unix_chown, &uid, &gid, err, errlen);
        if (!rc) {
            char e[200];
            rc = cr_http_open_unix(host->rt->loop, g->rpc_unix_file,
                                   g->rpc_unix_chmod >= 0 ? (unsigned)g->rpc_unix_chmod : 0700,
                                   uid, gid, &o, &r->unix_srv.http, e, sizeof e);
            if (rc < 0)
                snprintf(err, errlen, "[unix_http_server] file %s: %s", g->rpc_unix_file, e);
        }
    }
    if (!rc && g->rpc_inet_port) {
        char listen[300], e[200];
        listen_of(g->rpc_inet_port, listen, sizeof listen);
        struct cr_http_opts o = {on_request, on_aborted, &r->inet_srv, CR_RPC_BODY_MAX};
        rc = srv_auth(&r->inet_srv, g->rpc_inet_user, g->rpc_inet_pass);
        if (!rc) {
            rc = cr_http_open(host->rt->loop, listen, &o, &r->inet_srv.http, e, sizeof e);
            if (rc < 0)
                snprintf(err, errlen, "[inet_http_server] port %s: %s", g->rpc_inet_port, e);
        }
    }
    if (rc < 0) {
        cr_rpc_close(r);
        return rc;
    }
    *out = r;
    return 0;
}

void cr_rpc_close(struct cr_rpc *r)
{
    if (!r)
        return;
    /* closing a server aborts its waiting calls (on_aborted frees them) */
    cr_http_close(r->unix_srv.http);
    cr_http_close(r->inet_srv.http);
    while (r->follows)
        follow_drop(r->follows);
    while (r->waits) {
        struct wait *wt = r->waits;
        r->waits = wt->next;
        wait_free(wt);
    }
    struct srv *sv[] = {&r->unix_srv, &r->inet_srv};
    for (size_t i = 0; i < 2; i++) {
        free(sv[i]->user);
        free(sv[i]->pass);
    }
    for (size_t i = 0; i < r->nadded; i++)
        free(r->added[i]);
    free(r->added);
    cr_webui_close(&r->ui);
    free(r->identity);
    free(r->logfile);
    free(r);
}
