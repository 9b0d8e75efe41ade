/* The set of watched fds (supervisor/io/watch.c) on a real libuv loop with real pipes: what a
 * uv_poll promised its callers (level-triggered readiness, a hang-up waking the reader, no
 * callback after a stop, closed callbacks on the next round, the loop closable afterwards),
 * and what a set adds: a watch started during a round never gets an event taken before it. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "io/watch.h"

struct side {
    int p[2];
    struct cr_watch w;
    int calls, last;
};

static void pipe_nb(int p[2])
{
    assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
}

static void on_read(struct cr_watch *w, int events);

/* A new loop, and a's pipe watched for reading on it. */
static void watched_pipe(uv_loop_t *loop, struct side *a)
{
    assert_int_equal(uv_loop_init(loop), 0);
    pipe_nb(a->p);
    assert_int_equal(cr_watch_start(loop, &a->w, a->p[0], UV_READABLE, on_read, a, false), 0);
}

static void on_read(struct cr_watch *w, int events)
{
    struct side *s = w->data;
    s->calls++;
    s->last = events;
    char b[64];
    while (read(s->p[0], b, sizeof b) > 0)
        ;
}

static void done(uv_loop_t *loop)
{
    for (int i = 0; i < 4; i++)
        uv_run(loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(loop), 0);   /* the set went off the loop */
}

static int closed_calls;
static void on_closed(struct cr_watch *w)
{
    (void)w;
    closed_calls++;
}

static void test_readable_then_quiet(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct side a = {0};
    watched_pipe(&loop, &a);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(a.calls, 0);                 /* nothing written: no call */
    assert_int_equal(write(a.p[1], "x", 1), 1);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.last, UV_READABLE);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(a.calls, 1);                 /* drained: quiet again */
    assert_int_equal(write(a.p[1], "y", 1), 1);   /* level-triggered: unread data calls again */
    close(a.p[1]);                                /* and a hang-up wakes the reader */
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(a.calls, 2);
    char b;
    assert_int_equal(read(a.p[0], &b, 1), 0);     /* its EOF */
    closed_calls = 0;
    cr_watch_close(&a.w, on_closed);
    assert_int_equal(closed_calls, 0);            /* on the next round, as uv_close */
    close(a.p[0]);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(closed_calls, 1);
    done(&loop);
}

static void test_stopped_never_called(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct side a = {0};
    watched_pipe(&loop, &a);
    assert_int_equal(write(a.p[1], "x", 1), 1);
    cr_watch_stop(&a.w);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(a.calls, 0);
    /* started again, it is called for what waits */
    assert_int_equal(cr_watch_start(&loop, &a.w, a.p[0], UV_READABLE, on_read, &a, false), 0);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(a.calls, 1);
    cr_watch_close(&a.w, NULL);
    close(a.p[0]);
    close(a.p[1]);
    done(&loop);
}

/* Two readable pipes, each callback the other's undoing: whichever runs first stops the
 * other, closes its pipe and starts a third watch on an empty pipe that took the other's fd
 * number. The other's event, taken in the same round, must reach neither. */
static struct side sides[3];

static void on_switch(struct cr_watch *w, int events)
{
    struct side *s = w->data, *o = s == &sides[0] ? &sides[1] : &sides[0], *c = &sides[2];
    s->calls++;
    s->last = events;
    if (c->p[0])
        return;
    int fd = o->p[0];
    cr_watch_stop(&o->w);
    close(o->p[0]);
    close(o->p[1]);
    pipe_nb(c->p);
    if (c->p[0] != fd) {   /* the lowest free number is fd's, unless a third took it */
        assert_int_equal(dup3(c->p[0], fd, O_CLOEXEC), fd);
        close(c->p[0]);
        c->p[0] = fd;
    }
    assert_int_equal(cr_watch_start(uv_default_loop(), &c->w, fd, UV_READABLE, on_read, c,
                                    false), 0);
}

static void test_started_in_a_round_gets_no_older_event(void **state)
{
    (void)state;
    uv_loop_t *loop = uv_default_loop();
    memset(sides, 0, sizeof sides);
    for (int i = 0; i < 2; i++) {
        pipe_nb(sides[i].p);
        assert_int_equal(write(sides[i].p[1], "x", 1), 1);
        assert_int_equal(cr_watch_start(loop, &sides[i].w, sides[i].p[0], UV_READABLE,
                                        on_switch, &sides[i], false), 0);
    }
    uv_run(loop, UV_RUN_NOWAIT);
    assert_int_equal(sides[0].calls + sides[1].calls, 1);   /* the stopped one: never */
    assert_int_equal(sides[2].calls, 0);                     /* nor the newcomer */
    uv_run(loop, UV_RUN_NOWAIT);
    assert_int_equal(sides[2].calls, 0);                     /* its pipe is empty */
    assert_int_equal(write(sides[2].p[1], "z", 1), 1);
    uv_run(loop, UV_RUN_NOWAIT);
    assert_int_equal(sides[2].calls, 1);
    struct side *first = sides[0].calls ? &sides[0] : &sides[1];
    for (int i = 0; i < 3; i++)   /* the stopped one too: a watch started once is closed */
        cr_watch_close(&sides[i].w, NULL);
    close(first->p[0]);
    close(first->p[1]);
    close(sides[2].p[0]);
    close(sides[2].p[1]);
    done(loop);
}

static void test_one_loop_at_a_time(void **state)
{
    (void)state;
    uv_loop_t l1, l2;
    assert_int_equal(uv_loop_init(&l1), 0);
    assert_int_equal(uv_loop_init(&l2), 0);
    struct side a = {0}, b = {0};
    pipe_nb(a.p);
    pipe_nb(b.p);
    assert_int_equal(cr_watch_start(&l1, &a.w, a.p[0], UV_READABLE, on_read, &a, false), 0);
    assert_int_equal(cr_watch_start(&l2, &b.w, b.p[0], UV_READABLE, on_read, &b, false), -EBUSY);
    /* the same fd twice: refused, not taken from its watch */
    assert_int_equal(cr_watch_start(&l1, &b.w, a.p[0], UV_READABLE, on_read, &b, false), -EEXIST);
    cr_watch_close(&a.w, NULL);
    done(&l1);
    /* once the first loop's watches are closed, another loop may have the set */
    assert_int_equal(cr_watch_start(&l2, &b.w, b.p[0], UV_READABLE, on_read, &b, false), 0);
    int fd = cr_watch_handover();
    assert_int_equal(fd >= 0, 1);
    assert_int_equal(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);   /* kept across an execve as made */
    cr_watch_close(&b.w, NULL);
    done(&l2);
    assert_int_equal(cr_watch_handover(), -1);              /* no set, nothing to hand over */
    for (int i = 0; i < 2; i++) {
        close(a.p[i]);
        close(b.p[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_readable_then_quiet),
        cmocka_unit_test(test_stopped_never_called),
        cmocka_unit_test(test_started_in_a_round_gets_no_older_event),
        cmocka_unit_test(test_one_loop_at_a_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
