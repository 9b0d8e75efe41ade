#include "events.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void cr_event(int fd, const char *event, const char *fmt, ...)
{
    char buf[CR_EVENT_MAX];
    if (fd < 0)
        return;
    int n = snprintf(buf, sizeof buf, "%s", event);
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
    char *p = line;
    while (*p == ' ')
        p++;
    if (!*p)
        return -EINVAL;
    out->event = p;
    p += strcspn(p, " ");
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
