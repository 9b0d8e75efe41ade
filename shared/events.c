/* The events line protocol (events.h): its table, the writer, the parser. */
#include "events.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

const struct cr_event_def cr_event_defs[CR_EVT_N] = {
    [CR_EVT_STARTED] = {"started", "pid"},
    [CR_EVT_EXITED] = {"exited", "pid code signal runtime_ms core"},
    [CR_EVT_RESTARTING] = {"restarting", "delay_ms attempt"},
    [CR_EVT_GAVE_UP] = {"gave-up", "code restarts reason"},
    [CR_EVT_READY] = {"ready", "kind"},
    [CR_EVT_READY_TIMEOUT] = {"ready-timeout", "timeout_ms kind"},
    [CR_EVT_STATUS] = {"status", "pid reason"},
    [CR_EVT_HEALTHY] = {"healthy", ""},
    [CR_EVT_UNHEALTHY] = {"unhealthy", "failures action reason"},
    [CR_EVT_SETUP_FAILED] = {"setup-failed", "reason"},
    [CR_EVT_EXEC_FAILED] = {"exec-failed", "errno reason"},
};

int cr_event_kind(const char *name)
{
    for (int k = 0; k < CR_EVT_N; k++)
        if (!strcmp(name, cr_event_defs[k].name))
            return k;
    return -1;
}

void cr_event(int fd, enum cr_event_kind kind, const char *fmt, ...)
{
    char buf[CR_EVENT_MAX];
    if (fd < 0 || (unsigned)kind >= CR_EVT_N)
        return;
    int n = snprintf(buf, sizeof buf, "%s", cr_event_defs[kind].name);
    if (fmt && *fmt) {
        va_list ap;
        va_start(ap, fmt);
        buf[n++] = ' ';
        n += vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
        va_end(ap);
    }
    if (n > (int)sizeof buf - 2)
        n = (int)sizeof buf - 2;
    /* A reason may carry a newline from strerror text or a path: keep one event a line. */
    for (int i = 0; i < n; i++)
        if (buf[i] == '\n' || buf[i] == '\r')
            buf[i] = ' ';
    buf[n++] = '\n';
    /* Pipe writes up to PIPE_BUF are atomic: the line arrives whole or not at all. */
    ssize_t w;
    do
        w = write(fd, buf, (size_t)n);
    while (w < 0 && errno == EINTR);
}

int cr_event_parse(char *line, struct cr_event_line *out)
{
    memset(out, 0, sizeof *out);
    out->kind = -1;
    char *p = line;
    while (*p == ' ')
        p++;
    if (!*p)
        return -EINVAL;
    out->event = p;
    p += strcspn(p, " ");
    char end = *p;
    *p = 0;
    out->kind = cr_event_kind(out->event);
    *p = end;
    while (*p) {
        *p++ = 0;
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        char *eq = strchr(p, '=');
        char *sp = strchr(p, ' ');
        if (!eq || (sp && sp < eq))
            return -EINVAL;
        *eq = 0;
        if (!strcmp(p, "reason")) {
            out->reason = eq + 1;
            return 0;
        }
        if (out->nkeys == (int)(sizeof out->kv / sizeof out->kv[0]))
            return -EINVAL;
        out->kv[out->nkeys].key = p;
        out->kv[out->nkeys].value = eq + 1;
        out->nkeys++;
        p = eq + 1 + strcspn(eq + 1, " ");
    }
    return 0;
}

const char *cr_event_get(const struct cr_event_line *ev, const char *key)
{
    for (int i = 0; i < ev->nkeys; i++)
        if (!strcmp(ev->kv[i].key, key))
            return ev->kv[i].value;
    return NULL;
}
