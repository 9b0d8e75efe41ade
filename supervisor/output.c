/* Workload output → `NAME | line` on the supervisor's stdout, never blocking. */
#include "output.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the console --------------------------------------------------------------------------- */

int cr_console_open(struct cr_console *c, uv_loop_t *loop, int fd)
{
    memset(c, 0, sizeof *c);
    c->loop = loop;
    c->fd = -1;
    c->q = malloc(CR_CONSOLE_QUEUE);
    if (!c->q)
        return -ENOMEM;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        c->fd = -1;   /* closed stdout: everything is dropped silently */
        return 0;
    }
    if (S_ISSOCK(st.st_mode)) {
        c->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        c->is_socket = c->pollable = true;
    } else if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode)) {
        /* A new open file description of the same pipe or terminal, so O_NONBLOCK is ours
         * alone and does not surprise whoever shares our stdout. */
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        c->fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        if (c->fd < 0)
            c->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);   /* blocking, the best we can do */
        c->pollable = true;
    } else {
        c->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);       /* a regular file never blocks long */
    }
    return 0;
}

static ssize_t console_write(struct cr_console *c, const char *p, size_t n)
{
    ssize_t w;
    do
        w = c->is_socket ? send(c->fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL) : write(c->fd, p, n);
    while (w < 0 && errno == EINTR);
    return w;
}

static void on_console_writable(uv_poll_t *h, int status, int events);

static void console_wait(struct cr_console *c, bool on)
{
    if (!c->pollable || c->polling == on)
        return;
    if (!c->poll_init) {
        if (uv_poll_init(c->loop, &c->poll, c->fd) < 0) {
            c->pollable = false;
            return;
        }
        c->poll.data = c;
        c->poll_init = true;
    }
    if (on)
        uv_poll_start(&c->poll, UV_WRITABLE, on_console_writable);
    else
        uv_poll_stop(&c->poll);
    c->polling = on;
}

void cr_console_flush(struct cr_console *c)
{
    while (c->qlen) {
        ssize_t w = console_write(c, c->q, c->qlen);
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            console_wait(c, true);
            return;
        }
        if (w <= 0) {   /* EPIPE, EIO...: the console is gone; count what we lose */
            c->dropped++;
            c->qlen = 0;
            break;
        }
        memmove(c->q, c->q + w, c->qlen - (size_t)w);
        c->qlen -= (size_t)w;
    }
    console_wait(c, false);
    if (c->dropped != c->dropped_reported) {
        fprintf(stderr, "supervisor: console too slow: %llu line%s of output dropped\n",
                (unsigned long long)(c->dropped - c->dropped_reported),
                c->dropped - c->dropped_reported == 1 ? "" : "s");
        c->dropped_reported = c->dropped;
    }
}

static void on_console_writable(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    cr_console_flush(h->data);
}

void cr_console_line(struct cr_console *c, const char *name, const char *text, size_t len)
{
    if (c->fd < 0)
        return;
    size_t nl = strlen(name), need = nl + 3 + len + 1;
    if (c->qlen + need > CR_CONSOLE_QUEUE) {
        cr_console_flush(c);
        if (c->qlen + need > CR_CONSOLE_QUEUE) {
            c->dropped++;
            return;
        }
    }
    char *p = c->q + c->qlen;
    memcpy(p, name, nl);
    memcpy(p + nl, " | ", 3);
    memcpy(p + nl + 3, text, len);
    p[need - 1] = '\n';
    c->qlen += need;
    if (!c->polling)
        cr_console_flush(c);
}

void cr_console_close(struct cr_console *c)
{
    if (c->poll_init) {
        uv_poll_stop(&c->poll);
        uv_close((uv_handle_t *)&c->poll, NULL);
        c->poll_init = false;
    }
    if (c->fd >= 0) {
        /* Last chance for queued lines, still without blocking: a console nobody reads
         * must not keep the supervisor from exiting. What it cannot take is lost. */
        c->polling = false;
        c->pollable = false;
        cr_console_flush(c);
        if (c->qlen) {
            fprintf(stderr, "supervisor: console blocked at exit: %zu bytes of output lost\n",
                    c->qlen);
            c->qlen = 0;
        }
        close(c->fd);
        c->fd = -1;
    }
    free(c->q);
    c->q = NULL;
}

/* ---- one stream ---------------------------------------------------------------------------- */

static void stream_emit(struct cr_out_stream *s, const char *p, size_t n)
{
    if (n && p[n - 1] == '\r')
        n--;
    cr_console_line(s->console, s->name, p, n);
}

/* Cuts s->buf into lines; keeps a partial tail unless it fills the buffer. */
static void stream_lines(struct cr_out_stream *s)
{
    size_t start = 0;
    for (size_t i = 0; i < s->len; i++) {
        if (s->buf[i] == '\n') {
            stream_emit(s, s->buf + start, i - start);
            start = i + 1;
        }
    }
    if (start == 0 && s->len == sizeof s->buf) {
        stream_emit(s, s->buf, s->len);   /* 4 KiB without a newline: flush it as a line */
        start = s->len;
    }
    memmove(s->buf, s->buf + start, s->len - start);
    s->len -= start;
}

/* Reads at most a few buffers per call, so one chatty service cannot starve the loop. */
static void stream_read(struct cr_out_stream *s, int rounds)
{
    while (rounds-- > 0) {
        ssize_t n = read(s->rfd, s->buf + s->len, sizeof s->buf - s->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        s->len += (size_t)n;
        stream_lines(s);
    }
}

static void on_stream_readable(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    stream_read(h->data, 16);
}

int cr_out_open(struct cr_out_stream *s, uv_loop_t *loop, struct cr_console *c,
                const char *name)
{
    memset(s, 0, sizeof *s);
    s->console = c;
    s->name = name;
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return -errno;
    s->rfd = p[0];
    s->wfd = p[1];
    /* Only our end is non-blocking: the write end is the workload's, and it must block as
     * usual when the pipe is full (we drain it promptly). */
    fcntl(s->rfd, F_SETFL, fcntl(s->rfd, F_GETFL) | O_NONBLOCK);
    int r = uv_poll_init(loop, &s->poll, s->rfd);
    if (r < 0) {
        close(p[0]);
        close(p[1]);
        s->rfd = s->wfd = -1;
        return r;
    }
    s->poll.data = s;
    s->poll_init = true;
    uv_poll_start(&s->poll, UV_READABLE, on_stream_readable);
    return 0;
}

void cr_out_drain(struct cr_out_stream *s)
{
    if (s->rfd < 0)
        return;
    stream_read(s, 64);
    if (s->len) {
        stream_emit(s, s->buf, s->len);
        s->len = 0;
    }
}

struct close_ctx {
    void (*done)(void *);
    void *arg;
};

static void on_stream_closed(uv_handle_t *h)
{
    struct close_ctx *cc = h->data;
    if (cc) {
        if (cc->done)
            cc->done(cc->arg);
        free(cc);
    }
}

void cr_out_close(struct cr_out_stream *s, void (*done)(void *arg), void *arg)
{
    cr_out_drain(s);
    if (s->wfd >= 0)
        close(s->wfd);
    s->wfd = -1;
    if (s->poll_init) {
        struct close_ctx *cc = malloc(sizeof *cc);
        if (cc) {
            cc->done = done;
            cc->arg = arg;
        }
        s->poll.data = cc;
        uv_poll_stop(&s->poll);
        uv_close((uv_handle_t *)&s->poll, on_stream_closed);
        s->poll_init = false;
        if (!cc && done)
            done(arg);
    } else if (done) {
        done(arg);
    }
    if (s->rfd >= 0)
        close(s->rfd);
    s->rfd = -1;
}
