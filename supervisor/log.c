/* The supervisor's own log (log.h). */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "text.h"

static void (*log_sink)(const char *line, size_t n);

void cr_log_set_sink(void (*sink)(const char *line, size_t n))
{
    log_sink = sink;
}

void cr_log(const char *name, const char *fmt, ...)
{
    /* The message often carries a container's words (STATUS=, a failure reason): formatted
     * first, then written with its control bytes as \xHH (shared/text.h), so no escape
     * sequence from a workload reaches the terminal or the log file. */
    char msg[1024], buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int n = snprintf(buf, sizeof buf, "supervisor: %s%s", name ? name : "", name ? ": " : "");
    if (n > (int)sizeof buf - 2)
        n = (int)sizeof buf - 2;
    n += (int)cr_text_escape(buf + n, sizeof buf - (size_t)n - 1, msg, false);
    buf[n++] = '\n';
    ssize_t w;
    do
        w = write(STDERR_FILENO, buf, (size_t)n);
    while (w < 0 && errno == EINTR);
    /* [supervisor] logfile gets the line without "supervisor: " (and with a timestamp) */
    size_t skip = sizeof "supervisor: " - 1;
    if (log_sink)
        log_sink(buf + skip, (size_t)n - skip);
}
