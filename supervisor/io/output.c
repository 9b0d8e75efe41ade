/* Workload output → log files and `NAME | line` on the supervisor's stdout, never blocking. */
#include "io/output.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "io/handed.h"
#include "io/logs.h"
#include "io/watch.h"

/* Stamped lines are gathered here before one write: the longest line a chunk can hold, with
 * its stamp, always fits. */
#define SBUF_SIZE (CR_OUT_PART_MAX + CR_OUT_CHUNK + CR_LOG_STAMP_MAX + 1)

/* ---- the console --------------------------------------------------------------------------- */

/* The buffers (~800 KiB) are made when first needed: the queue with the first line, the
 * read and stamp buffers with the first stream (cr_out_adopt). A `supervisor run` gives its
 * container its own stdout and stderr and needs none of them. */
static int console_stream_bufs(struct cr_console *c)
{
    /* +1: a line cut at the end of the data gets its newline in place (stream_cut) */
    if (!c->rbuf && !(c->rbuf = malloc(CR_OUT_PART_MAX + CR_OUT_CHUNK + 1)))
        return -ENOMEM;
    if (!c->sbuf && !(c->sbuf = malloc(SBUF_SIZE)))
        return -ENOMEM;
    return 0;
}

/* The queue, for n more bytes: false (the line dropped and counted) when it has no room. */
static bool console_room(struct cr_console *c, size_t n)
{
    if (!c->q && !(c->q = malloc(CR_CONSOLE_QUEUE))) {
        c->dropped++;
        return false;
    }
    if (c->qlen + n > CR_CONSOLE_QUEUE) {
        if (!c->polling)
            cr_console_flush(c);
        if (c->qlen + n > CR_CONSOLE_QUEUE) {
            c->dropped++;
            return false;
        }
    }
    return true;
}

int cr_console_open(struct cr_console *c, uv_loop_t *loop, int fd)
{
    memset(c, 0, sizeof *c);
    c->loop = loop;
    c->fd = -1;
    struct stat st;
    if (fstat(fd, &st) < 0)
        return 0;   /* closed stdout: everything is dropped silently */
    if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3))
        return 0;   /* /dev/null: do not even format the lines */
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
        c->color = isatty(fd) && !getenv("NO_COLOR");
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
    size_t off = 0;
    while (off < c->qlen) {
        ssize_t w = console_write(c, c->q + off, c->qlen - off);
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            memmove(c->q, c->q + off, c->qlen - off);
            c->qlen -= off;
            console_wait(c, true);
            return;
        }
        if (w <= 0) {   /* EPIPE, EIO...: the console is gone; count what we lose */
            c->dropped++;
            break;
        }
        off += (size_t)w;
    }
    c->qlen = 0;
    console_wait(c, false);
    if (c->dropped != c->dropped_reported) {
        cr_log(NULL, "console too slow: %llu line%s of output dropped",
               (unsigned long long)(c->dropped - c->dropped_reported),
               c->dropped - c->dropped_reported == 1 ? "" : "s");
        c->dropped_reported = c->dropped;
    }
}

void cr_console_flush_wait(struct cr_console *c, unsigned ms)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        cr_console_flush(c);
        if (!c->qlen || !c->pollable)
            return;
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        long spent = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
        if (spent >= (long)ms)
            return;
        struct pollfd pfd = {.fd = c->fd, .events = POLLOUT};
        poll(&pfd, 1, (int)(ms - spent));
    }
}

static void on_console_writable(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    cr_console_flush(h->data);
}

/* A colour per name, the same on every run. */
static const char *name_color(const char *name)
{
    static const char *const palette[] = {"36", "33", "32", "35", "34", "96", "93", "92", "95",
                                          "94"};
    unsigned h = 5381;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = h * 33 + *p;
    return palette[h % (sizeof palette / sizeof palette[0])];
}

static void console_piece(struct cr_console *c, const char *name, size_t nl, const char *text,
                          size_t len)
{
    const char *col = c->color ? name_color(name) : NULL;
    /* "\e[36m" name " |\e[0m " text "\n": the colour adds "\e[" col "m" (3 + its length)
     * and "\e[0m" (4). Counting more queued stale bytes after every line. */
    size_t need = nl + 3 + len + 1 + (col ? 3 + strlen(col) + 4 : 0);
    if (!console_room(c, need))
        return;
    char *p = c->q + c->qlen;
    if (col) {
        size_t cl = strlen(col);
        memcpy(p, "\033[", 2);
        memcpy(p + 2, col, cl);
        p[2 + cl] = 'm';
        p += 3 + cl;
    }
    memcpy(p, name, nl);
    p += nl;
    if (col) {
        memcpy(p, " |\033[0m ", 7);
        p += 7;
    } else {
        memcpy(p, " | ", 3);
        p += 3;
    }
    memcpy(p, text, len);
    p[len] = '\n';
    c->qlen += need;
}

void cr_console_line(struct cr_console *c, const char *name, const char *text, size_t len)
{
    if (c->fd < 0)
        return;
    size_t nl = strlen(name);
    do {
        size_t n = len > CR_OUT_LINE_MAX ? CR_OUT_LINE_MAX : len;
        console_piece(c, name, nl, text, n);
        text += n;
        len -= n;
    } while (len);
}

void cr_console_raw(struct cr_console *c, const char *text, size_t len)
{
    if (c->fd < 0 || !console_room(c, len + 1))
        return;
    memcpy(c->q + c->qlen, text, len);
    c->q[c->qlen + len] = '\n';
    c->qlen += len + 1;
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
            cr_log(NULL, "console blocked at exit: %zu bytes of output lost", c->qlen);
            c->qlen = 0;
        }
        close(c->fd);
        c->fd = -1;
    }
    free(c->q);
    free(c->rbuf);
    free(c->sbuf);
    c->q = c->rbuf = c->sbuf = NULL;
}

/* ---- one stream ---------------------------------------------------------------------------- */

/* Whole lines p[0..n) with a stamp each, gathered into writes as large as the chunk. */
static void stream_stamped(struct cr_out_stream *s, const char *p, size_t n)
{
    char stamp[CR_LOG_STAMP_MAX], *b = s->console->sbuf;
    size_t sl = cr_log_stamp(stamp), bl = 0;
    const char *e = p + n;
    while (p < e) {
        const char *nl = memchr(p, '\n', (size_t)(e - p));
        size_t len = (size_t)(nl - p) + 1;
        if (bl + sl + len > SBUF_SIZE) {
            cr_logfile_write(s->file, b, bl);
            bl = 0;
        }
        memcpy(b + bl, stamp, sl);
        memcpy(b + bl + sl, p, len);
        bl += sl + len;
        p = nl + 1;
    }
    if (bl)
        cr_logfile_write(s->file, b, bl);
}

/* Whole lines p[0..n) (n == 0 or p[n-1] == '\n') → the file (one write) and the console. */
static void stream_lines(struct cr_out_stream *s, const char *p, size_t n)
{
    if (!n)
        return;
    if (s->tap)
        s->tap(s->tap_arg, p, n);
    if (s->direct) {
        for (const char *e = p + n; p < e;) {
            const char *nl = memchr(p, '\n', (size_t)(e - p));
            size_t len = (size_t)(nl - p);
            /* a line longer than the whole queue could never go: cut as the console does */
            size_t off = 0;
            do {
                size_t k = len - off > CR_OUT_LINE_MAX ? CR_OUT_LINE_MAX : len - off;
                cr_console_raw(s->direct, p + off, k);
                off += k;
            } while (off < len);
            p = nl + 1;
        }
        if (!s->direct->polling)
            cr_console_flush(s->direct);
        return;
    }
    if (s->file) {
        if (s->timestamps)
            stream_stamped(s, p, n);
        else
            cr_logfile_write(s->file, p, n);
    }
    struct cr_console *c = s->console;
    if (c->fd < 0 || s->raw)
        return;
    for (const char *e = p + n; p < e;) {
        const char *nl = memchr(p, '\n', (size_t)(e - p));
        size_t len = (size_t)(nl - p);
        if (len && p[len - 1] == '\r')
            len--;
        cr_console_line(c, s->name, p, len);
        p = nl + 1;
    }
}

/* A line without its end (too long, or the container is gone): p[0..n) as a whole line, its
 * newline put in place for the moment (p[n] is inside the buffer: see cr_console_open). */
static void stream_cut(struct cr_out_stream *s, char *p, size_t n)
{
    char save = p[n];
    p[n] = '\n';
    stream_lines(s, p, n + 1);
    p[n] = save;
}

/* b[0..len): the whole lines go out, a tail of CR_OUT_PART_MAX is cut; what is left of a
 * line moves to the front. Returns its length. */
static size_t stream_chunk(struct cr_out_stream *s, char *b, size_t len)
{
    const char *nl = memrchr(b, '\n', len);
    size_t whole = nl ? (size_t)(nl - b) + 1 : 0;
    stream_lines(s, b, whole);
    char *t = b + whole;
    size_t rest = len - whole;
    while (rest >= CR_OUT_PART_MAX) {
        stream_cut(s, t, CR_OUT_PART_MAX);
        t += CR_OUT_PART_MAX;
        rest -= CR_OUT_PART_MAX;
    }
    memmove(b, t, rest);
    return rest;
}

bool cr_keep_partial(char **slot, size_t cap, const char *buf, size_t len)
{
    if (!len) {
        free(*slot);
        *slot = NULL;
        return true;
    }
    if (!*slot && !(*slot = malloc(cap)))
        return false;
    memcpy(*slot, buf, len);
    return true;
}

static void on_stream_readable(struct cr_watch *w, int events);

static void on_file_drained(struct cr_log_waiter *w)
{
    struct cr_out_stream *s = (struct cr_out_stream *)((char *)w - offsetof(struct cr_out_stream,
                                                                             waiter));
    s->waiting = false;
    if (s->poll_init)
        cr_watch_start(s->loop, &s->watch, s->rfd, UV_READABLE, on_stream_readable, s, false);
}

void cr_out_unwait(struct cr_out_stream *s)
{
    if (!s->waiting)
        return;
    cr_logfile_unwait(s->file, &s->waiter);
    on_file_drained(&s->waiter);
}

/* The log file's writer is behind: leave the lines in the pipe (the workload waits, as it
 * would writing to a slow file itself) until its queue drains. */
static bool stream_hold(struct cr_out_stream *s)
{
    if (!s->file || !s->poll_init || !cr_logfile_congested(s->file))
        return false;
    cr_watch_stop(&s->watch);
    s->waiter.wake = on_file_drained;
    cr_logfile_wait(s->file, &s->waiter);
    s->waiting = true;
    return true;
}

/* Reads at most a few chunks per call, so one chatty service cannot starve the loop. With
 * flush_tail (the container is gone), a line without its newline goes out too, and the pipe
 * is read however long the log file's queue is. */
static void stream_read(struct cr_out_stream *s, int rounds, bool flush_tail)
{
    struct cr_console *c = s->console;
    char *b = c->rbuf;
    size_t len = s->len;
    if (len)
        memcpy(b, s->part, len);
    while (rounds > 0) {
        if (!flush_tail && stream_hold(s))
            break;
        ssize_t n = read(s->rfd, b + len, CR_OUT_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        rounds--;
        if (s->raw)
            s->raw(s->raw_arg, b + len, (size_t)n);
        len = stream_chunk(s, b, len + (size_t)n);
        if ((size_t)n < CR_OUT_CHUNK / 2)
            break;   /* the pipe is (nearly) empty: poll says when there is more */
    }
    /* Without memory to keep a partial line in, out it goes, as a line. */
    if ((flush_tail && len) || !cr_keep_partial(&s->part, CR_OUT_PART_MAX, b, len)) {
        stream_cut(s, b, len);
        len = 0;
        cr_keep_partial(&s->part, CR_OUT_PART_MAX, b, 0);
    }
    s->len = len;
    if (c->qlen && !c->polling)
        cr_console_flush(c);
}

static void on_stream_readable(struct cr_watch *w, int events)
{
    (void)events;
    stream_read(w->data, 16, false);
}

/* adopted: a re-exec's pipe, watched by the set the old program handed over (watch.h). */
static int stream_start(struct cr_out_stream *s, uv_loop_t *loop, struct cr_console *c,
                        const char *name, int rfd, int wfd, bool adopted)
{
    memset(s, 0, sizeof *s);
    s->console = c;
    s->name = name;
    s->rfd = s->wfd = -1;
    if (console_stream_bufs(c) < 0)
        return -ENOMEM;
    int r = cr_watch_start(loop, &s->watch, rfd, UV_READABLE, on_stream_readable, s, adopted);
    if (r < 0)
        return r;
    s->loop = loop;
    s->rfd = rfd;
    s->wfd = wfd;
    s->poll_init = true;
    return 0;
}

int cr_out_adopt(struct cr_out_stream *s, uv_loop_t *loop, struct cr_console *c,
                 const char *name, int rfd, int wfd)
{
    /* O_NONBLOCK, a file status flag, went through the execve with the pipe */
    return stream_start(s, loop, c, name, rfd, wfd, true);
}

int cr_out_open(struct cr_out_stream *s, uv_loop_t *loop, struct cr_console *c,
                const char *name)
{
    int p[2];
    /* Without close-on-exec: the pipe outlives a re-exec as it is (CR_HANDED_FD) */
    if (pipe2(p, CR_HANDED_FD) < 0)
        return -errno;
    /* A larger pipe lets a burst through while we write; it costs pages only while full.
     * Unprivileged, it would count against the user's pipe quota, so only root asks. */
    if (geteuid() == 0)
        fcntl(p[0], F_SETPIPE_SZ, CR_OUT_PIPE_SIZE);
    /* Only our end is non-blocking: the write end is the workload's, and it must block as
     * usual when the pipe is full (we drain it promptly). */
    int r = fcntl(p[0], F_SETFL, O_NONBLOCK) < 0 ? -errno
                                                  : stream_start(s, loop, c, name, p[0], p[1],
                                                                 false);
    if (r < 0) {
        close(p[0]);
        close(p[1]);
    }
    return r;
}

size_t cr_out_partial(const struct cr_out_stream *s, const char **p)
{
    *p = s->part;
    return s->part ? s->len : 0;
}

int cr_out_set_partial(struct cr_out_stream *s, const char *p, size_t n)
{
    if (n >= CR_OUT_PART_MAX || !cr_keep_partial(&s->part, CR_OUT_PART_MAX, p, n))
        return -ENOMEM;
    s->len = n;
    return 0;
}

void cr_out_drain(struct cr_out_stream *s)
{
    if (s->rfd < 0)
        return;
    stream_read(s, 64, true);
}

struct close_ctx {
    void (*done)(void *);
    void *arg;
};

static void on_stream_closed(struct cr_watch *w)
{
    struct close_ctx *cc = w->data;
    if (cc) {
        if (cc->done)
            cc->done(cc->arg);
        free(cc);
    }
}

uint64_t cr_out_log_dropped(const struct cr_out_stream *s)
{
    return s->log_dropped + (s->file ? s->file->dropped_total - s->file_dropped0 : 0);
}

void cr_out_attach_log(struct cr_out_stream *s, const char *who, const char *spec,
                       const char *kind, int64_t maxbytes, int64_t backups, bool stamps)
{
    char *path = cr_logs_path(who, spec, kind);
    s->timestamps = stamps;
    if (s->file && path && !strcmp(s->file->path, path)) {
        s->file->maxbytes = maxbytes;
        s->file->backups = backups;
        free(path);
        return;
    }
    cr_out_unwait(s);
    s->log_dropped = cr_out_log_dropped(s);
    cr_logfile_release(s->file);
    s->file = path ? cr_logfile_get(path, who, maxbytes, backups) : NULL;
    s->file_dropped0 = s->file ? s->file->dropped_total : 0;
    free(path);
}

void cr_out_close(struct cr_out_stream *s, void (*done)(void *arg), void *arg)
{
    cr_out_drain(s);
    cr_out_unwait(s);
    if (s->file) {
        s->log_dropped = cr_out_log_dropped(s);
        cr_logfile_release(s->file);
        s->file = NULL;
    }
    if (s->wfd >= 0)
        close(s->wfd);
    s->wfd = -1;
    if (s->poll_init) {
        struct close_ctx *cc = malloc(sizeof *cc);
        if (cc) {
            cc->done = done;
            cc->arg = arg;
        }
        s->watch.data = cc;
        cr_watch_close(&s->watch, on_stream_closed);
        s->poll_init = false;
        if (!cc && done)
            done(arg);
    } else if (done) {
        done(arg);
    }
    if (s->rfd >= 0)
        close(s->rfd);
    s->rfd = -1;
    free(s->part);
    s->part = NULL;
    s->len = 0;
}
