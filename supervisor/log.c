/* The supervisor's own log (log.h). */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "text.h"

static void (*log_sink)(const char *line, size_t n);

void cr_log_set_sink(void (*sink)(const char *line, size_t n))
{
    log_sink = sink;
}

/* ---- stderr without blocking ---------------------------------------------------------------- */

/* Until cr_log_nonblocking(), lines are written to fd 2 as they come (start-up, before the
 * loop runs, and the one-shot commands). After it, fd is our own non-blocking description of
 * stderr, and what it cannot take at once waits in q; a line that does not fit in q is
 * dropped and counted, and the count is written once q has drained. */
static struct {
    int fd;                      /* -1: fd 2 as it is (blocking); -2: nowhere (/dev/null) */
    bool is_socket;
    bool waiting;                /* want_write(fd, true) was called */
    void (*want_write)(int fd, bool on);
    char q[CR_LOG_QUEUE];
    size_t qlen;
    unsigned long long dropped, lost_total;
} out = {.fd = -1};

static ssize_t out_write(const char *p, size_t n)
{
    ssize_t w;
    do
        w = out.is_socket ? send(out.fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL)
                          : write(out.fd, p, n);
    while (w < 0 && errno == EINTR);
    return w;
}

static void out_wait(bool on)
{
    if (out.waiting == on || !out.want_write)
        return;
    out.waiting = on;
    out.want_write(out.fd, on);
}

/* Writes from q what the fd takes now. True when q is empty. */
static bool out_drain(void)
{
    size_t off = 0;
    while (off < out.qlen) {
        ssize_t w = out_write(out.q + off, out.qlen - off);
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (w <= 0) {            /* EPIPE, EIO: nobody will read it; lose it quietly */
            off = out.qlen;
            break;
        }
        off += (size_t)w;
    }
    memmove(out.q, out.q + off, out.qlen - off);
    out.qlen -= off;
    return out.qlen == 0;
}

static void out_queue(const char *p, size_t n)
{
    if (out.qlen + n > sizeof out.q) {
        out.dropped++;
        out.lost_total++;
        return;
    }
    memcpy(out.q + out.qlen, p, n);
    out.qlen += n;
}

static void out_line(const char *p, size_t n)
{
    if (out.fd == -2)
        return;
    if (out.fd == -1) {
        ssize_t w;
        do
            w = write(STDERR_FILENO, p, n);
        while (w < 0 && errno == EINTR);
        return;
    }
    if (out.qlen == 0) {
        ssize_t w = out_write(p, n);
        if (w == (ssize_t)n)
            return;
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return;              /* gone: nothing will read it */
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        }
        /* the rest of the line goes first, whatever the room: lines stay whole */
        if (n <= sizeof out.q) {
            memcpy(out.q, p, n);
            out.qlen = n;
        }
    } else {
        out_queue(p, n);
    }
    out_wait(true);
}

int cr_log_nonblocking(void (*want_write)(int fd, bool on))
{
    struct stat st;
    out.want_write = want_write;
    if (fstat(STDERR_FILENO, &st) < 0) {
        out.fd = -2;
        return -2;
    }
    if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3)) {
        out.fd = -2;
        return -2;
    }
    if (S_ISSOCK(st.st_mode)) {
        out.fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
        out.is_socket = true;
    } else if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode)) {
        /* A description of our own, so O_NONBLOCK does not surprise whoever shares it. */
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", STDERR_FILENO);
        out.fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    } else {
        out.fd = -1;             /* a regular file: written as it comes */
    }
    if (out.fd < 0)
        out.fd = -1;
    return out.fd;
}

void cr_log_flush(void)
{
    if (out.fd < 0 || !out_drain())
        return;
    if (out.dropped) {
        char msg[128];
        int n = snprintf(msg, sizeof msg, "supervisor: stderr too slow: %llu line%s of the "
                         "supervisor's log dropped\n", out.dropped, out.dropped == 1 ? "" : "s");
        out.dropped = 0;
        out_queue(msg, (size_t)n);
        if (!out_drain())
            return;
    }
    out_wait(false);
}

unsigned long long cr_log_dropped(void)
{
    return out.lost_total;
}

void cr_log_unwatch(void)
{
    out.want_write = NULL;
    out.waiting = false;
}

void cr_log_blocking(void)
{
    cr_log_unwatch();
    if (out.fd >= 0) {
        out_drain();             /* last chance, still without blocking */
        close(out.fd);
    }
    out.fd = -1;
    out.qlen = 0;
    out.want_write = NULL;
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
    out_line(buf, (size_t)n);
    /* [supervisor] logfile gets the line without "supervisor: " (and with a timestamp) */
    size_t skip = sizeof "supervisor: " - 1;
    if (log_sink)
        log_sink(buf + skip, (size_t)n - skip);
}
