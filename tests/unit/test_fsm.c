/* Unit tests for supervisor/service/fsm.c: the lifecycle table, cell by cell. Each row puts a
 * service in a state (with or without a container, a few flags), feeds it one event, and
 * checks the state it ends in and what it asked of its container: spawn, the stop signal, the
 * kill, its timer (a real libuv timer on a loop that never runs: due times are exact) and
 * the owner's callbacks. The container is a fake that records the calls (svc->ops): fsm.c
 * reaches cgroups and processes only through that table, and this test links no cgroup/ or
 * spawn/ code at all (Makefile: UNIT_LINK_test_fsm). Every state × event pair has a row,
 * impossible pairs included: those must change nothing. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "log.h"
#include "service/internal.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- the fake container ------------------------------------------------------------------- */

enum { O_SPAWN = 1, O_SIGNAL = 2, O_KILL = 4 };

static struct {
    unsigned ops;                /* O_* seen */
    int spawn_result;            /* what spawn returns (0: a container exists after it) */
    int sig;                     /* the signal stop_signal was given */
    unsigned settled, ready;     /* on_settled, on_ready calls */
} F;
static struct cr_container fake_ct;

static int fake_spawn(struct cr_svc *svc, cr_container_report report)
{
    assert_ptr_equal(report, cr_svc_event);   /* its events come back to the table */
    F.ops |= O_SPAWN;
    if (F.spawn_result < 0)
        return F.spawn_result;
    svc->ct = &fake_ct;
    return 0;
}

static int fake_stop_signal(struct cr_svc *svc, int sig)
{
    assert_non_null(svc->ct);
    F.ops |= O_SIGNAL;
    F.sig = sig;
    return 0;
}

static void fake_kill(struct cr_svc *svc)
{
    assert_non_null(svc->ct);
    F.ops |= O_KILL;
}

static const struct cr_container_ops fake_ops = {fake_spawn, fake_stop_signal, fake_kill};

static void on_settled(struct cr_runtime *rt, struct cr_svc *svc)
{
    (void)rt;
    (void)svc;
    F.settled++;
}

static void on_ready(struct cr_runtime *rt, struct cr_svc *svc)
{
    (void)rt;
    (void)svc;
    F.ready++;
}

/* ---- the table of cases ------------------------------------------------------------------- */

/* Preconditions (a row's pre). A container exists by default in STARTING, RUNNING, BACKOFF
 * (init's own backoff) and STOPPING, never for INIT_EXITED (container.c drops it before it
 * reports) nor in STOPPED, EXITED, FATAL. A deadline is armed by default in STARTING
 * (startsecs) and STOPPING (stopwaitsecs): the sentinel below. */
enum {
    P_NO_CT = 1 << 0,            /* no container (BACKOFF: the supervisor's own backoff) */
    P_DEADLINE = 1 << 1,         /* the sentinel deadline is armed where it is not by default */
    P_REACHED = 1 << 2,          /* this container's workload reached RUNNING */
    P_GAVE_UP = 1 << 3,          /* init said gave-up */
    P_RETRIES_USED = 1 << 4,     /* startretries failed starts in a row already */
    P_EXIT_OK = 1 << 5,          /* init exited 0 (an expected code) */
    P_HEALTH_STOP = 1 << 6,      /* init stopped it for being unhealthy */
    P_STOPPING_ALL = 1 << 7,     /* the supervisor is shutting down */
    P_WINDOW_FULL = 1 << 8,      /* max_restarts = 1 and one restart just happened */
    P_SPAWN_FAILS = 1 << 9,      /* spawn returns -EAGAIN */
    P_NO_CONF = 1 << 10,         /* a reload removed it */
    P_READY_KEY = 1 << 11,       /* ready = notify: RUNNING when init says ready */
    P_STARTSECS_0 = 1 << 12,     /* startsecs = 0 */
    P_RUN_MODE = 1 << 13,        /* `supervisor run` */
    P_SPAWN_EMFILE = 1 << 14,    /* spawn returns -EMFILE: not the service's failure */
};

#define SENTINEL 777777          /* a deadline no cell computes */
#define STARTSECS 1500
#define STOPWAIT 5000
#define DELAY 1000               /* restart_delay: the first new container waits 800-1000 ms */

enum timer { T_SAME, T_OFF, T_ARMED };

struct cell {
    enum cr_state from;
    enum cr_svc_event ev;
    unsigned pre;
    enum cr_state to;
    unsigned ops;                /* O_*: exactly these container calls */
    enum timer timer;            /* T_SAME: as it was (armed with the sentinel, or not) */
    int64_t lo, hi;              /* T_ARMED: due in [lo, hi] ms */
    unsigned settled, ready;     /* calls of on_settled, on_ready */
};

#define SAME T_SAME, 0, 0
#define OFF T_OFF, 0, 0
#define ARMED(a, b) T_ARMED, a, b
#define BACKOFF_DELAY ARMED(DELAY * 8 / 10, DELAY)
#define NOP(st, ev) {st, ev, 0, st, 0, SAME, 0, 0}

static const struct cell cells[] = {
    /* STOPPED: only a start does anything */
    {CR_ST_STOPPED, CR_EV_START, 0, CR_ST_STARTING, O_SPAWN, SAME, 0, 0},
    {CR_ST_STOPPED, CR_EV_START, P_SPAWN_FAILS, CR_ST_BACKOFF, O_SPAWN, BACKOFF_DELAY, 0, 0},
    {CR_ST_STOPPED, CR_EV_START, P_NO_CONF, CR_ST_EXITED, 0, OFF, 1, 0},
    NOP(CR_ST_STOPPED, CR_EV_STOP),          NOP(CR_ST_STOPPED, CR_EV_STARTED),
    NOP(CR_ST_STOPPED, CR_EV_EXITED),        NOP(CR_ST_STOPPED, CR_EV_RESTARTING),
    NOP(CR_ST_STOPPED, CR_EV_GAVE_UP),       NOP(CR_ST_STOPPED, CR_EV_SETUP_FAILED),
    NOP(CR_ST_STOPPED, CR_EV_INIT_EXITED),   NOP(CR_ST_STOPPED, CR_EV_TIMER),
    NOP(CR_ST_STOPPED, CR_EV_READY),

    /* STARTING: the container runs, its workload not yet counted as up */
    NOP(CR_ST_STARTING, CR_EV_START),
    {CR_ST_STARTING, CR_EV_STOP, 0, CR_ST_STOPPING, O_SIGNAL, ARMED(STOPWAIT, STOPWAIT), 0, 0},
    {CR_ST_STARTING, CR_EV_STARTED, 0, CR_ST_STARTING, 0, ARMED(STARTSECS, STARTSECS), 0, 0},
    {CR_ST_STARTING, CR_EV_STARTED, P_READY_KEY, CR_ST_STARTING, 0, OFF, 0, 0},
    {CR_ST_STARTING, CR_EV_STARTED, P_STARTSECS_0, CR_ST_RUNNING, 0, OFF, 0, 1},
    {CR_ST_STARTING, CR_EV_STARTED, P_RUN_MODE, CR_ST_RUNNING, 0, OFF, 0, 1},
    {CR_ST_STARTING, CR_EV_EXITED, 0, CR_ST_STARTING, 0, OFF, 0, 0},
    {CR_ST_STARTING, CR_EV_RESTARTING, 0, CR_ST_BACKOFF, 0, OFF, 0, 0},
    {CR_ST_STARTING, CR_EV_GAVE_UP, 0, CR_ST_STARTING, 0, SAME, 0, 0},
    {CR_ST_STARTING, CR_EV_SETUP_FAILED, 0, CR_ST_STARTING, 0, SAME, 0, 0},
    {CR_ST_STARTING, CR_EV_INIT_EXITED, 0, CR_ST_BACKOFF, 0, BACKOFF_DELAY, 0, 0},
    {CR_ST_STARTING, CR_EV_INIT_EXITED, P_RETRIES_USED, CR_ST_FATAL, 0, OFF, 1, 0},
    {CR_ST_STARTING, CR_EV_INIT_EXITED, P_GAVE_UP, CR_ST_FATAL, 0, OFF, 1, 0},
    {CR_ST_STARTING, CR_EV_INIT_EXITED, P_RUN_MODE, CR_ST_EXITED, 0, OFF, 1, 0},
    {CR_ST_STARTING, CR_EV_INIT_EXITED, P_NO_CONF, CR_ST_EXITED, 0, OFF, 1, 0},
    {CR_ST_STARTING, CR_EV_TIMER, 0, CR_ST_RUNNING, 0, SAME, 0, 1},
    {CR_ST_STARTING, CR_EV_READY, 0, CR_ST_RUNNING, 0, OFF, 0, 1},

    /* RUNNING */
    NOP(CR_ST_RUNNING, CR_EV_START),
    {CR_ST_RUNNING, CR_EV_STOP, 0, CR_ST_STOPPING, O_SIGNAL, ARMED(STOPWAIT, STOPWAIT), 0, 0},
    {CR_ST_RUNNING, CR_EV_STARTED, 0, CR_ST_STARTING, 0, ARMED(STARTSECS, STARTSECS), 0, 0},
    {CR_ST_RUNNING, CR_EV_EXITED, 0, CR_ST_RUNNING, 0, SAME, 0, 0},
    {CR_ST_RUNNING, CR_EV_RESTARTING, 0, CR_ST_BACKOFF, 0, SAME, 0, 0},
    {CR_ST_RUNNING, CR_EV_GAVE_UP, 0, CR_ST_RUNNING, 0, SAME, 0, 0},
    {CR_ST_RUNNING, CR_EV_SETUP_FAILED, 0, CR_ST_RUNNING, 0, SAME, 0, 0},
    {CR_ST_RUNNING, CR_EV_INIT_EXITED, P_REACHED, CR_ST_BACKOFF, 0, BACKOFF_DELAY, 0, 0},
    {CR_ST_RUNNING, CR_EV_INIT_EXITED, P_REACHED | P_EXIT_OK, CR_ST_EXITED, 0, OFF, 1, 0},
    {CR_ST_RUNNING, CR_EV_INIT_EXITED, P_REACHED | P_GAVE_UP, CR_ST_FATAL, 0, OFF, 1, 0},
    {CR_ST_RUNNING, CR_EV_INIT_EXITED, P_REACHED | P_WINDOW_FULL, CR_ST_FATAL, 0, OFF, 1, 0},
    {CR_ST_RUNNING, CR_EV_INIT_EXITED, P_REACHED | P_HEALTH_STOP, CR_ST_EXITED, 0, OFF, 1, 0},
    {CR_ST_RUNNING, CR_EV_INIT_EXITED, P_REACHED | P_STOPPING_ALL, CR_ST_STOPPED, 0, OFF, 1, 0},
    NOP(CR_ST_RUNNING, CR_EV_TIMER),         NOP(CR_ST_RUNNING, CR_EV_READY),

    /* BACKOFF: init's (a container exists, init keeps the time) or the supervisor's (none) */
    NOP(CR_ST_BACKOFF, CR_EV_START),
    {CR_ST_BACKOFF, CR_EV_STOP, 0, CR_ST_STOPPING, O_SIGNAL, ARMED(STOPWAIT, STOPWAIT), 0, 0},
    {CR_ST_BACKOFF, CR_EV_STOP, P_NO_CT | P_DEADLINE, CR_ST_STOPPED, 0, OFF, 1, 0},
    {CR_ST_BACKOFF, CR_EV_STARTED, 0, CR_ST_STARTING, 0, ARMED(STARTSECS, STARTSECS), 0, 0},
    {CR_ST_BACKOFF, CR_EV_EXITED, 0, CR_ST_BACKOFF, 0, SAME, 0, 0},
    {CR_ST_BACKOFF, CR_EV_RESTARTING, 0, CR_ST_BACKOFF, 0, SAME, 0, 0},
    {CR_ST_BACKOFF, CR_EV_GAVE_UP, 0, CR_ST_BACKOFF, 0, SAME, 0, 0},
    {CR_ST_BACKOFF, CR_EV_SETUP_FAILED, 0, CR_ST_BACKOFF, 0, SAME, 0, 0},
    {CR_ST_BACKOFF, CR_EV_INIT_EXITED, P_REACHED, CR_ST_BACKOFF, 0, BACKOFF_DELAY, 0, 0},
    {CR_ST_BACKOFF, CR_EV_TIMER, 0, CR_ST_BACKOFF, 0, SAME, 0, 0},
    {CR_ST_BACKOFF, CR_EV_TIMER, P_NO_CT, CR_ST_STARTING, O_SPAWN, SAME, 0, 0},
    {CR_ST_BACKOFF, CR_EV_TIMER, P_NO_CT | P_SPAWN_FAILS, CR_ST_BACKOFF, O_SPAWN,
     BACKOFF_DELAY, 0, 0},
    /* with startretries used up, a failed spawn is FATAL; running out of fds is not */
    {CR_ST_BACKOFF, CR_EV_TIMER, P_NO_CT | P_SPAWN_FAILS | P_RETRIES_USED, CR_ST_FATAL,
     O_SPAWN, OFF, 1, 0},
    {CR_ST_BACKOFF, CR_EV_TIMER, P_NO_CT | P_SPAWN_EMFILE | P_RETRIES_USED, CR_ST_BACKOFF,
     O_SPAWN, BACKOFF_DELAY, 0, 0},
    NOP(CR_ST_BACKOFF, CR_EV_READY),

    /* STOPPING: only init's end and the stop deadline count; a start waits as a request's
     * pending start (service.c, order.c), never here */
    NOP(CR_ST_STOPPING, CR_EV_START),        NOP(CR_ST_STOPPING, CR_EV_STOP),
    NOP(CR_ST_STOPPING, CR_EV_STARTED),      NOP(CR_ST_STOPPING, CR_EV_EXITED),
    NOP(CR_ST_STOPPING, CR_EV_RESTARTING),   NOP(CR_ST_STOPPING, CR_EV_GAVE_UP),
    NOP(CR_ST_STOPPING, CR_EV_SETUP_FAILED),
    {CR_ST_STOPPING, CR_EV_INIT_EXITED, 0, CR_ST_STOPPED, 0, OFF, 1, 0},
    {CR_ST_STOPPING, CR_EV_TIMER, 0, CR_ST_STOPPING, O_KILL, SAME, 0, 0},
    {CR_ST_STOPPING, CR_EV_TIMER, P_NO_CT, CR_ST_STOPPING, 0, SAME, 0, 0},
    NOP(CR_ST_STOPPING, CR_EV_READY),

    /* EXITED and FATAL: down; a start is a fresh one, a stop makes it STOPPED */
    {CR_ST_EXITED, CR_EV_START, 0, CR_ST_STARTING, O_SPAWN, SAME, 0, 0},
    {CR_ST_EXITED, CR_EV_STOP, 0, CR_ST_STOPPED, 0, OFF, 1, 0},
    NOP(CR_ST_EXITED, CR_EV_STARTED),        NOP(CR_ST_EXITED, CR_EV_EXITED),
    NOP(CR_ST_EXITED, CR_EV_RESTARTING),     NOP(CR_ST_EXITED, CR_EV_GAVE_UP),
    NOP(CR_ST_EXITED, CR_EV_SETUP_FAILED),   NOP(CR_ST_EXITED, CR_EV_INIT_EXITED),
    NOP(CR_ST_EXITED, CR_EV_TIMER),          NOP(CR_ST_EXITED, CR_EV_READY),
    {CR_ST_FATAL, CR_EV_START, 0, CR_ST_STARTING, O_SPAWN, SAME, 0, 0},
    {CR_ST_FATAL, CR_EV_START, P_RETRIES_USED, CR_ST_STARTING, O_SPAWN, SAME, 0, 0},
    {CR_ST_FATAL, CR_EV_STOP, 0, CR_ST_STOPPED, 0, OFF, 1, 0},
    NOP(CR_ST_FATAL, CR_EV_STARTED),         NOP(CR_ST_FATAL, CR_EV_EXITED),
    NOP(CR_ST_FATAL, CR_EV_RESTARTING),      NOP(CR_ST_FATAL, CR_EV_GAVE_UP),
    NOP(CR_ST_FATAL, CR_EV_SETUP_FAILED),    NOP(CR_ST_FATAL, CR_EV_INIT_EXITED),
    NOP(CR_ST_FATAL, CR_EV_TIMER),           NOP(CR_ST_FATAL, CR_EV_READY),
};

/* ---- running one cell ----------------------------------------------------------------------- */

static bool has_ct(const struct cell *c)
{
    if (c->ev == CR_EV_INIT_EXITED || (c->pre & P_NO_CT))
        return false;
    return c->from == CR_ST_STARTING || c->from == CR_ST_RUNNING ||
           c->from == CR_ST_BACKOFF || c->from == CR_ST_STOPPING;
}

static bool has_deadline(const struct cell *c)
{
    return (c->pre & P_DEADLINE) || c->from == CR_ST_STARTING || c->from == CR_ST_STOPPING;
}

static void on_sentinel(uv_timer_t *t)
{
    (void)t;
    fail_msg("the loop never runs here");
}

static void run_cell(uv_loop_t *loop, const struct cell *c, size_t row)
{
    char what[160];
    snprintf(what, sizeof what, "row %zu: %s + %s (pre 0x%x)", row, cr_state_name(c->from),
             cr_svc_event_name(c->ev), c->pre);
    print_message("%s\n", what);

    struct cr_runtime rt = {
        .loop = loop, .quiet = true, .on_settled = on_settled, .on_ready = on_ready,
        .run_mode = (c->pre & P_RUN_MODE) != 0, .stopping_all = (c->pre & P_STOPPING_ALL) != 0,
        .rnd = 0x9e3779b97f4a7c15ull,
    };
    struct cr_service conf;
    memset(&conf, 0, sizeof conf);
    conf.name = "t";
    conf.autorestart = CR_RESTART_UNEXPECTED;
    cr_codeset_add(&conf.exitcodes, 0);
    conf.startsecs = (c->pre & P_STARTSECS_0) ? 0 : STARTSECS;
    conf.startretries = 3;
    conf.restart_delay = DELAY;
    conf.restart_delay_max = 30000;
    conf.restart_reset_after = 10000;
    conf.restart_window = 60000;
    conf.stopsignal = SIGTERM;
    conf.stopwaitsecs = STOPWAIT;
    conf.spec.ready = (c->pre & P_READY_KEY) ? CR_READY_NOTIFY : CR_READY_NONE;
    int64_t ring[1] = {0};

    struct cr_svc svc;
    memset(&svc, 0, sizeof svc);
    svc.rt = &rt;
    svc.ops = &fake_ops;
    svc.name = "t";
    svc.conf = (c->pre & P_NO_CONF) ? NULL : &conf;
    svc.state = c->from;
    svc.stopsignal = SIGTERM;
    svc.stopwait_ms = STOPWAIT;
    svc.exit_status = (c->pre & P_EXIT_OK) ? 0 : (c->ev == CR_EV_INIT_EXITED ? 1 : -1);
    svc.healthy = -1;
    svc.reached_running = (c->pre & P_REACHED) != 0;
    svc.gave_up = (c->pre & P_GAVE_UP) != 0;
    svc.failed_starts = (c->pre & P_RETRIES_USED) ? 3 : 0;
    svc.health_stop = (c->pre & P_HEALTH_STOP) != 0;
    if (c->pre & P_WINDOW_FULL) {
        conf.max_restarts = 1;
        ring[0] = (int64_t)uv_now(loop);
        svc.restarts = ring;
        svc.nrestarts = 1;
    }
    svc.ct = has_ct(c) ? &fake_ct : NULL;
    assert_int_equal(uv_timer_init(loop, &svc.timer), 0);
    svc.timer.data = &svc;
    if (has_deadline(c))
        uv_timer_start(&svc.timer, on_sentinel, SENTINEL, 0);
    /* A deadline that passed is one libuv no longer holds (a one-shot timer). */
    if (c->ev == CR_EV_TIMER)
        uv_timer_stop(&svc.timer);
    bool armed_before = uv_is_active((uv_handle_t *)&svc.timer);
    uint64_t due_before = uv_timer_get_due_in(&svc.timer);

    memset(&F, 0, sizeof F);
    F.spawn_result = (c->pre & P_SPAWN_FAILS)    ? -EAGAIN
                     : (c->pre & P_SPAWN_EMFILE) ? -EMFILE
                                                 : 0;
    cr_svc_event(&svc, c->ev);

    if (svc.state != c->to)
        fail_msg("%s: ends in %s, not %s", what, cr_state_name(svc.state), cr_state_name(c->to));
    if (F.ops != c->ops)
        fail_msg("%s: container calls 0x%x, not 0x%x", what, F.ops, c->ops);
    if (c->ops & O_SIGNAL)
        assert_int_equal(F.sig, SIGTERM);
    if (F.settled != c->settled || F.ready != c->ready)
        fail_msg("%s: on_settled %u on_ready %u, not %u %u", what, F.settled, F.ready,
                 c->settled, c->ready);
    bool armed = uv_is_active((uv_handle_t *)&svc.timer);
    int64_t due = (int64_t)uv_timer_get_due_in(&svc.timer);
    switch (c->timer) {
    case T_SAME:
        if (armed != armed_before || (armed && (uint64_t)due != due_before))
            fail_msg("%s: the timer changed (armed %d due %lld)", what, armed, (long long)due);
        break;
    case T_OFF:
        if (armed)
            fail_msg("%s: the timer is still armed (due %lld)", what, (long long)due);
        break;
    case T_ARMED:
        if (!armed || due < c->lo || due > c->hi)
            fail_msg("%s: timer armed %d due %lld, not in [%lld, %lld]", what, armed,
                     (long long)due, (long long)c->lo, (long long)c->hi);
        break;
    }
    /* A settled service holds no container and no deadline (what on_settled promises). */
    if (F.settled)
        assert_true(!svc.ct && !armed);
    uv_close((uv_handle_t *)&svc.timer, NULL);
    uv_run(loop, UV_RUN_NOWAIT);   /* the close callback: nothing else is pending */
}

static void test_every_cell(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    for (size_t i = 0; i < N(cells); i++)
        run_cell(&loop, &cells[i], i);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* The table above names every state × event pair at least once. */
static void test_the_table_is_complete(void **state)
{
    (void)state;
    bool seen[CR_NSTATES][CR_NEVENTS] = {{false}};
    for (size_t i = 0; i < N(cells); i++)
        seen[cells[i].from][cells[i].ev] = true;
    for (int s = 0; s < CR_NSTATES; s++)
        for (int e = 0; e < CR_NEVENTS; e++)
            if (!seen[s][e])
                fail_msg("no row for %s + %s", cr_state_name((enum cr_state)s),
                         cr_svc_event_name((enum cr_svc_event)e));
}

/* Out-of-range input is ignored, not a crash (the table is indexed by both). */
static void test_out_of_range(void **state)
{
    (void)state;
    struct cr_svc svc;
    memset(&svc, 0, sizeof svc);
    svc.ops = &fake_ops;
    svc.state = CR_ST_RUNNING;
    memset(&F, 0, sizeof F);
    cr_svc_event(&svc, CR_NEVENTS);
    cr_svc_event(&svc, (enum cr_svc_event)-1);
    svc.state = CR_NSTATES;
    cr_svc_event(&svc, CR_EV_START);
    assert_int_equal(F.ops, 0);
    assert_string_equal(cr_state_name(CR_NSTATES), "?");
    assert_string_equal(cr_svc_event_name(CR_NEVENTS), "?");
}

static void quiet_sink(const char *line, size_t n)
{
    (void)line;
    (void)n;
}

int main(void)
{
    cr_log_set_sink(quiet_sink);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_table_is_complete),
        cmocka_unit_test(test_every_cell),
        cmocka_unit_test(test_out_of_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
