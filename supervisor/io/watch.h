/* The fds of the services on the loop: each container's pidfd and events pipe, each output
 * pipe. They sit in one epoll set of their own, which is a single uv_poll on the loop, instead
 * of a uv_poll each: registering an fd is one epoll_ctl (libuv spends five system calls on a
 * uv_poll's init and start), and the set survives a live re-exec with its registrations, so
 * the new program takes 400 fds back with one system call each instead of six.
 *
 * A watch is level-triggered, like a uv_poll. Its callback gets UV_READABLE / UV_WRITABLE as
 * a uv_poll's would (a hang-up or an error wakes what the watch waits for). One set per
 * process, on the loop of its first watch; it goes off the loop (and its epoll fd is closed)
 * once every watch it had is closed (cr_watch_close), so a loop can be closed after them. */
#ifndef CORRAL_IO_WATCH_H
#define CORRAL_IO_WATCH_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct cr_watch;
typedef void (*cr_watch_fn)(struct cr_watch *w, int events);

struct cr_watch {
    int fd;                      /* -1: not watching */
    int want;                    /* UV_READABLE | UV_WRITABLE */
    uint64_t born;               /* the dispatch round it started in (its events come after) */
    cr_watch_fn fn;
    void *data;                  /* the caller's */
    bool counted;                /* started once and not closed: keeps the set on the loop */
    void (*closed)(struct cr_watch *w);
    struct cr_watch *next_closing;
};

/* Starts (or changes) w on fd. adopted: a re-exec's, whose fd the set may hold already
 * (cr_watch_take_set). Returns 0 or a negative errno. */
int cr_watch_start(uv_loop_t *loop, struct cr_watch *w, int fd, int events, cr_watch_fn fn,
                   void *data, bool adopted);
/* Stops w now (no callback for it after this returns, even from the current round); it may
 * start again. */
void cr_watch_stop(struct cr_watch *w);
/* Stops w and calls closed(w) from the loop's next round, as uv_close would: the owner may
 * be inside w's own callback. */
void cr_watch_close(struct cr_watch *w, void (*closed)(struct cr_watch *w));

/* Live re-exec. The set's epoll fd (-1: none) to hand over (made without close-on-exec:
 * io/handed.h). Every fd handed over must be watched for reading then (a stopped watch
 * started again): the new program takes the registrations as they are. */
int cr_watch_handover(void);
/* The new program: takes the set the old one handed over (fd from its state) before any
 * watch is adopted. */
void cr_watch_take_set(uv_loop_t *loop, int fd);

#endif
