/* The services' fds in one epoll set (watch.h). */
#include "io/watch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "io/handed.h"

#define ROUND_MAX 64             /* events taken per wake-up; the rest come next round */

static struct {
    uv_loop_t *loop;
    int epfd;                    /* -1: none */
    uv_poll_t *poll;             /* the set on the loop; NULL: off it */
    uv_idle_t *idle;             /* runs the closed callbacks */
    struct cr_watch **byfd;      /* the watch of each fd, NULL: none */
    size_t cap, n;               /* byfd's length; watches started and not closed yet */
    size_t on;                   /* watches started and not stopped: the set is active (keeps
                                    the loop running) while there are some, as a uv_poll is */
    uint64_t round;
    struct cr_watch *closing;
    bool handed;                 /* a re-exec's set: every fd adopted is registered already */
} set = {.epfd = -1};

static void free_handle(uv_handle_t *h)
{
    free(h);
}

/* Off the loop once nothing is watched and nothing waits for its closed callback. */
static void maybe_off(void)
{
    if (set.n || set.closing || !set.poll)
        return;
    uv_close((uv_handle_t *)set.poll, free_handle);
    uv_close((uv_handle_t *)set.idle, free_handle);
    set.poll = NULL;
    set.idle = NULL;
    close(set.epfd);
    set.epfd = -1;
    set.loop = NULL;
    set.handed = false;
}

static void on_set(uv_poll_t *h, int status, int events)
{
    struct epoll_event ev[ROUND_MAX];
    int n = epoll_wait(set.epfd, ev, ROUND_MAX, 0);
    uint64_t round = ++set.round;
    for (int i = 0; i < n; i++) {
        int fd = (int)ev[i].data.u64;
        struct cr_watch *w = fd >= 0 && (size_t)fd < set.cap ? set.byfd[fd] : NULL;
        if (!w) {
            /* stopped earlier in this round (then gone already), or a registration no watch
             * owns (a re-exec's, for an fd nobody adopted): never again */
            if (set.epfd >= 0)
                epoll_ctl(set.epfd, EPOLL_CTL_DEL, fd, NULL);
            continue;
        }
        if (w->born == round)
            continue;   /* started in this round: the event was its fd's before it */
        int e = (ev[i].events & EPOLLIN ? UV_READABLE : 0) |
                (ev[i].events & EPOLLOUT ? UV_WRITABLE : 0);
        if (ev[i].events & (EPOLLERR | EPOLLHUP))
            e |= w->want;   /* as libuv: the reader sees its EOF, the writer its EPIPE */
        if ((e &= w->want))
            w->fn(w, e);
    }
}

static void on_idle(uv_idle_t *h)
{
    struct cr_watch *list = set.closing;
    set.closing = NULL;
    uv_idle_stop(h);
    while (list) {
        struct cr_watch *w = list;
        list = w->next_closing;
        w->next_closing = NULL;
        if (w->closed)
            w->closed(w);
    }
    maybe_off();
}

static int set_on(uv_loop_t *loop)
{
    if (set.poll)
        return set.loop == loop ? 0 : -EBUSY;
    if (set.epfd < 0 && (set.epfd = epoll_create1(CR_HANDED_FD)) < 0) {
        int e = -errno;
        set.epfd = -1;
        return e;
    }
    set.poll = malloc(sizeof *set.poll);
    set.idle = malloc(sizeof *set.idle);
    if (!set.poll || !set.idle || uv_poll_init(loop, set.poll, set.epfd) < 0) {
        free(set.poll);
        free(set.idle);
        set.poll = NULL;
        set.idle = NULL;
        return -ENOMEM;
    }
    uv_idle_init(loop, set.idle);
    set.loop = loop;
    return 0;
}

static int grow(int fd)
{
    if ((size_t)fd < set.cap)
        return 0;
    size_t cap = set.cap ? set.cap : 256;
    while (cap <= (size_t)fd)
        cap *= 2;
    struct cr_watch **b = realloc(set.byfd, cap * sizeof *b);
    if (!b)
        return -ENOMEM;
    for (size_t i = set.cap; i < cap; i++)
        b[i] = NULL;
    set.byfd = b;
    set.cap = cap;
    return 0;
}

int cr_watch_start(uv_loop_t *loop, struct cr_watch *w, int fd, int events, cr_watch_fn fn,
                   void *data, bool adopted)
{
    if (fd < 0)
        return -EBADF;
    bool on = w->fn && w->fd == fd && (size_t)fd < set.cap && set.byfd[fd] == w;
    if (!on && w->fn && w->fd >= 0 && (size_t)w->fd < set.cap && set.byfd[w->fd] == w)
        cr_watch_stop(w);   /* it moves to another fd */
    int r = set_on(loop);
    if (r < 0 || (r = grow(fd)) < 0) {
        maybe_off();
        return r;
    }
    if (set.byfd[fd] && set.byfd[fd] != w) {
        maybe_off();
        return -EEXIST;
    }
    struct epoll_event ev = {.events = (events & UV_READABLE ? EPOLLIN : 0u) |
                                       (events & UV_WRITABLE ? EPOLLOUT : 0u),
                             .data.u64 = (uint64_t)fd};
    /* A re-exec's fd is in the set it handed over, registered for reading (cr_watch_handover):
     * nothing to do. Else one system call: an fd number seen before may be in the set too, if
     * its file outlived its close somewhere else. */
    int op = on || adopted ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    r = adopted && set.handed && !on && events == UV_READABLE ? 0
                                                              : epoll_ctl(set.epfd, op, fd, &ev);
    if (r < 0 && errno == (op == EPOLL_CTL_MOD ? ENOENT : EEXIST))
        r = epoll_ctl(set.epfd, op == EPOLL_CTL_MOD ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &ev);
    if (r < 0) {
        r = -errno;
        maybe_off();
        return r;
    }
    if (!w->counted)
        set.n++;
    if (!on && set.on++ == 0)
        uv_poll_start(set.poll, UV_READABLE, on_set);
    *w = (struct cr_watch){.fd = fd, .want = events, .born = set.round, .fn = fn, .data = data,
                           .counted = true};
    set.byfd[fd] = w;
    return 0;
}

static bool stop_quietly(struct cr_watch *w)
{
    if (!w->fn || w->fd < 0 || (size_t)w->fd >= set.cap || set.byfd[w->fd] != w)
        return false;
    epoll_ctl(set.epfd, EPOLL_CTL_DEL, w->fd, NULL);
    set.byfd[w->fd] = NULL;
    w->fd = -1;
    if (--set.on == 0)
        uv_poll_stop(set.poll);
    return true;
}

void cr_watch_stop(struct cr_watch *w)
{
    stop_quietly(w);
}

void cr_watch_close(struct cr_watch *w, void (*closed)(struct cr_watch *w))
{
    stop_quietly(w);
    if (w->counted)
        set.n--;   /* the set stays on the loop until closed() has run */
    w->counted = false;
    w->closed = closed;
    if (!set.poll) {   /* nothing of the set is on the loop: no round to wait for */
        if (closed)
            closed(w);
        return;
    }
    w->next_closing = set.closing;
    set.closing = w;
    uv_idle_start(set.idle, on_idle);
}

int cr_watch_handover(void)
{
    if (set.epfd < 0)
        return -1;
    return set.epfd;
}

void cr_watch_take_set(uv_loop_t *loop, int fd)
{
    if (fd < 0 || set.epfd >= 0 || set.poll)
        return;
    set.epfd = fd;
    set.handed = true;
    (void)loop;   /* on the loop with the first watch adopted (set_on) */
}
