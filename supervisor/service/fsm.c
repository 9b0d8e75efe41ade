/* A service's state machine: the table of states × events (STYLE.md §1), a small named
 * function per cell, and the one timer that carries its current deadline. What it does to a
 * container goes through the service's function table (svc->ops: container.c's, or a unit
 * test's fake); it never touches cgroup/ or spawn/ itself. Starts come from a request's
 * pending start (order.c), never from here: a stop always ends in a settled state. */
#include "service/internal.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "restart.h"
#include "service/history.h"

static const char *const state_names[CR_NSTATES] = {
    [CR_ST_STOPPED] = "STOPPED", [CR_ST_STARTING] = "STARTING", [CR_ST_RUNNING] = "RUNNING",
    [CR_ST_BACKOFF] = "BACKOFF", [CR_ST_STOPPING] = "STOPPING", [CR_ST_EXITED] = "EXITED",
    [CR_ST_FATAL] = "FATAL",
};

const char *cr_state_name(enum cr_state s)
{
    return (unsigned)s < CR_NSTATES ? state_names[s] : "?";
}

static const char *const event_names[CR_NEVENTS] = {
    [CR_EV_START] = "start", [CR_EV_STOP] = "stop", [CR_EV_STARTED] = "started",
    [CR_EV_EXITED] = "exited", [CR_EV_RESTARTING] = "restarting", [CR_EV_GAVE_UP] = "gave-up",
    [CR_EV_SETUP_FAILED] = "setup-failed", [CR_EV_INIT_EXITED] = "init-exited",
    [CR_EV_TIMER] = "timer", [CR_EV_READY] = "ready",
};

const char *cr_svc_event_name(enum cr_svc_event ev)
{
    return (unsigned)ev < CR_NEVENTS ? event_names[ev] : "?";
}

void cr_runtime_seed(struct cr_runtime *rt)
{
    if (getrandom(&rt->rnd, sizeof rt->rnd, GRND_NONBLOCK) != (ssize_t)sizeof rt->rnd) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        rt->rnd = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^
                  ((uint64_t)getpid() << 40);
    }
    rt->rnd |= 1;   /* xorshift never leaves 0 */
}

static uint64_t now_ms(const struct cr_svc *svc)
{
    return uv_now(svc->rt->loop);
}

static void on_timer(uv_timer_t *t)
{
    cr_svc_event(t->data, CR_EV_TIMER);
}

static void arm(struct cr_svc *svc, int64_t ms)
{
    uv_timer_start(&svc->timer, on_timer, ms < 0 ? 0 : (uint64_t)ms, 0);
}

static void disarm(struct cr_svc *svc)
{
    uv_timer_stop(&svc->timer);
}

static void set_state(struct cr_svc *svc, enum cr_state s)
{
    if (svc->state == s)
        return;
    if (!svc->rt->quiet)
        cr_log(svc->name, "%s -> %s", cr_state_name(svc->state), cr_state_name(s));
    svc->from_state = svc->state;
    svc->state = s;
    if (svc->ct)
        svc->last_pid = svc->ct->pid;
    if (s == CR_ST_BACKOFF)
        svc->tries++;
    else if (s == CR_ST_RUNNING || s == CR_ST_FATAL || s == CR_ST_EXITED)
        svc->tries = 0;
    /* RUNNING is ready: after startsecs, or when init saw the `ready` key's signal. */
    if (s == CR_ST_RUNNING && svc->rt->on_ready)
        svc->rt->on_ready(svc->rt, svc);
    if (svc->rt->on_change)
        svc->rt->on_change(svc->rt, svc);
}

static void settle(struct cr_svc *svc, enum cr_state s)
{
    disarm(svc);
    set_state(svc, s);
    if (svc->rt->on_settled)
        svc->rt->on_settled(svc->rt, svc);
}

/* ---- the actions: one per cell of the table ------------------------------------------------ */

static void container_gone(struct cr_svc *svc);

/* Nothing to do: the pair cannot happen, or changes nothing. */
static void ignore(struct cr_svc *svc)
{
    (void)svc;
}

static void schedule_restart(struct cr_svc *svc, uint64_t ran_ms);

/* No fd for its container (EMFILE: ours; ENFILE: the system's): the service did nothing
 * wrong, so this is not a failed start that counts towards FATAL; it is tried again with the
 * usual backoff, and starts once fds are free again. */
static void out_of_fds(struct cr_svc *svc, int err)
{
    struct rlimit rl;
    if (err == -EMFILE && getrlimit(RLIMIT_NOFILE, &rl) == 0)
        cr_log(svc->name, "cannot start: the supervisor is out of file descriptors (limit %llu;"
               " raise LimitNOFILE / ulimit -n): trying again", (unsigned long long)rl.rlim_cur);
    else
        cr_log(svc->name, "cannot start: %s: trying again", strerror(-err));
    schedule_restart(svc, 0);
}

static void new_container(struct cr_svc *svc)
{
    svc->health_stop = false;
    svc->healthy = -1;
    svc->setup_failed = false;
    svc->gave_up = false;
    svc->reached_running = false;
    svc->last_oom = false;
    svc->ran_ms = 0;
    int r = svc->conf ? svc->ops->spawn(svc, cr_svc_event) : -EINVAL;
    if (r == -EMFILE || r == -ENFILE) {
        out_of_fds(svc, r);
        return;
    }
    if (r < 0) {
        container_gone(svc);   /* a failed start, like a container that died at once */
        return;
    }
    set_state(svc, CR_ST_STARTING);
}

/* STOPPED, EXITED, FATAL + start: a fresh start, counters reset. */
static void start(struct cr_svc *svc)
{
    svc->stop_requested = false;
    svc->failed_starts = 0;
    svc->nrestarts = 0;
    svc->attempt = 0;
    svc->exit_status = -1;
    new_container(svc);
}

/* The workload runs: it counts as started after startsecs. */
static void workload_started(struct cr_svc *svc)
{
    set_state(svc, CR_ST_STARTING);
    int64_t secs = svc->conf ? svc->conf->startsecs : 0;
    if (svc->conf && svc->conf->spec.ready != CR_READY_NONE && !svc->rt->run_mode) {
        disarm(svc);            /* RUNNING when init reports it ready (or ready-timeout) */
        return;
    }
    if (secs <= 0 || svc->rt->run_mode) {
        disarm(svc);
        svc->reached_running = true;
        svc->failed_starts = 0;
        set_state(svc, CR_ST_RUNNING);
        return;
    }
    arm(svc, secs);
}

/* STARTING + ready: init saw it ready (ready = notify, fd:N, exec:CMD, tcp:PORT). */
static void workload_ready(struct cr_svc *svc)
{
    disarm(svc);
    svc->reached_running = true;
    svc->failed_starts = 0;
    set_state(svc, CR_ST_RUNNING);
}

/* STARTING + timer: it stayed up for startsecs. */
static void workload_up(struct cr_svc *svc)
{
    svc->reached_running = true;
    svc->failed_starts = 0;
    set_state(svc, CR_ST_RUNNING);
}

/* The workload exited; init decides what comes next (restarting, gave-up, or it exits). */
static void workload_exited(struct cr_svc *svc)
{
    disarm(svc);
}

/* init waits before starting the workload again: shown as BACKOFF, init keeps the time. */
static void workload_restarting(struct cr_svc *svc)
{
    disarm(svc);
    set_state(svc, CR_ST_BACKOFF);
}

static void init_gave_up(struct cr_svc *svc)
{
    svc->gave_up = true;
}

static void container_setup_failed(struct cr_svc *svc)
{
    svc->setup_failed = true;
}

/* The service's restart keys as the shared policy (init reads the same keys from its spec). */
static struct cr_restart_policy policy_of(const struct cr_service *c)
{
    return (struct cr_restart_policy){
        .delay_ms = c->restart_delay, .delay_max_ms = c->restart_delay_max,
        .reset_after_ms = c->restart_reset_after, .window_ms = c->restart_window,
        .max_restarts = c->max_restarts > 0 ? (unsigned)c->max_restarts : 0,
    };
}

/* max_restarts within restart_window reached; else this restart is counted. */
static bool restart_window_full(struct cr_svc *svc)
{
    const struct cr_restart_policy p = policy_of(svc->conf);
    int64_t now = (int64_t)now_ms(svc);
    if (cr_restart_limit_reached(&p, svc->restarts, svc->nrestarts, now))
        return true;
    cr_restart_record(&p, svc->restarts, &svc->nrestarts, now);
    return false;
}

/* BACKOFF for the next container, the delay growing as init's does (shared/restart.h). */
static void schedule_restart(struct cr_svc *svc, uint64_t ran_ms)
{
    const struct cr_restart_policy p = policy_of(svc->conf);
    if (!svc->rt->rnd)
        cr_runtime_seed(svc->rt);
    svc->attempt = cr_restart_next_attempt(&p, svc->attempt, (int64_t)ran_ms);
    int64_t base = cr_restart_backoff(&p, svc->attempt);
    int64_t delay = cr_restart_jitter(base, cr_restart_random(&svc->rt->rnd));
    cr_hist_restart(svc);
    if (!svc->rt->quiet)
        cr_log(svc->name, "new container in %lld ms (backoff %lld ms less jitter)",
               (long long)delay, (long long)base);
    set_state(svc, CR_ST_BACKOFF);
    arm(svc, delay);
}

static bool exit_expected(const struct cr_svc *svc)
{
    int st = svc->exit_status;
    return st >= 0 && st < 128 && svc->conf && cr_codeset_has(&svc->conf->exitcodes, st);
}

/* Gives up: FATAL. A start that failed passes through BACKOFF first, as supervisord's does
 * (an exit before startsecs is BACKOFF, then the retries are over): its event listeners
 * and supervisorctl see the same states. */
static void give_up(struct cr_svc *svc)
{
    if (svc->state == CR_ST_STARTING) {
        svc->giving_up = true;
        set_state(svc, CR_ST_BACKOFF);
        svc->giving_up = false;
    }
    settle(svc, CR_ST_FATAL);
}

/* STARTING, RUNNING, BACKOFF + init exited (also: a container that could not be started). */
static void container_gone(struct cr_svc *svc)
{
    disarm(svc);
    const struct cr_service *c = svc->conf;
    if (svc->rt->run_mode || !c) {
        settle(svc, CR_ST_EXITED);
        return;
    }
    if (svc->rt->stopping_all) {
        /* Its turn to be stopped may not have come yet, but it is down: it stays down. */
        settle(svc, CR_ST_STOPPED);
        return;
    }
    if (svc->health_stop) {
        cr_log(svc->name, "stopped for being unhealthy (health_action = stop): not restarted");
        settle(svc, CR_ST_EXITED);
        return;
    }
    if (svc->gave_up) {
        give_up(svc);
        return;
    }
    if (!svc->reached_running) {
        svc->failed_starts++;
        if (svc->failed_starts > (unsigned)c->startretries) {
            cr_log(svc->name, "%u failed start%s in a row: giving up", svc->failed_starts,
                   svc->failed_starts == 1 ? "" : "s");
            give_up(svc);
            return;
        }
        schedule_restart(svc, svc->ran_ms);
        return;
    }
    bool restart = c->autorestart == CR_RESTART_ALWAYS ||
                   (c->autorestart == CR_RESTART_UNEXPECTED && !exit_expected(svc));
    if (!restart) {
        settle(svc, CR_ST_EXITED);
        return;
    }
    if (restart_window_full(svc)) {
        cr_log(svc->name, "%lld restarts within %lld ms: giving up", (long long)c->max_restarts,
               (long long)c->restart_window);
        settle(svc, CR_ST_FATAL);
        return;
    }
    schedule_restart(svc, svc->ran_ms);
}

/* BACKOFF + timer: the delay before a new container is over (if init's own backoff is what
 * BACKOFF shows, the container still exists and init keeps the time). */
static void backoff_over(struct cr_svc *svc)
{
    if (!svc->ct)
        new_container(svc);
}

/* STARTING, RUNNING, BACKOFF + stop. */
static void stop(struct cr_svc *svc)
{
    svc->stop_requested = true;
    disarm(svc);
    if (!svc->ct) {
        settle(svc, CR_ST_STOPPED);
        return;
    }
    char sname[32];
    int r = svc->ops->stop_signal(svc, svc->stopsignal);
    if (!svc->rt->quiet || r < 0)
        cr_log(svc->name, "stopping (SIG%s to init%s%s)",
               cr_signal_name(svc->stopsignal, sname, sizeof sname), r < 0 ? ": " : "",
               r < 0 ? strerror(-r) : "");
    set_state(svc, CR_ST_STOPPING);
    arm(svc, svc->stopwait_ms);
}

/* STOPPING + timer: stopwaitsecs passed; kill everything in the cgroup. */
static void stop_timeout(struct cr_svc *svc)
{
    if (!svc->ct)
        return;
    cr_log(svc->name, "still running %lld ms after the stop signal: killing its cgroup",
           (long long)svc->stopwait_ms);
    svc->ops->kill(svc);
}

/* STOPPING + init exited: down. A start asked for meanwhile is pending (cr_svc_request):
 * the owner's on_settled hands it to order.c, which honours depends_on. */
static void stopped(struct cr_svc *svc)
{
    settle(svc, CR_ST_STOPPED);
}

/* EXITED, FATAL + stop: nothing runs; it is now simply stopped. */
static void forget(struct cr_svc *svc)
{
    settle(svc, CR_ST_STOPPED);
}

typedef void (*cr_svc_action)(struct cr_svc *svc);

#define X ignore
static const cr_svc_action table[CR_NSTATES][CR_NEVENTS] = {
    /*                START  STOP  STARTED  EXITED  RESTARTING  GAVE_UP  SETUP_FAILED  INIT_EXITED  TIMER
     *                READY */
    [CR_ST_STOPPED]  = {start, X, X, X, X, X, X, X, X, X},
    [CR_ST_STARTING] = {X, stop, workload_started, workload_exited, workload_restarting,
                        init_gave_up, container_setup_failed, container_gone, workload_up,
                        workload_ready},
    [CR_ST_RUNNING]  = {X, stop, workload_started, workload_exited, workload_restarting,
                        init_gave_up, container_setup_failed, container_gone, X, X},
    [CR_ST_BACKOFF]  = {X, stop, workload_started, workload_exited, workload_restarting,
                        init_gave_up, container_setup_failed, container_gone, backoff_over, X},
    [CR_ST_STOPPING] = {X, X, X, X, X, X, X, stopped, stop_timeout, X},
    [CR_ST_EXITED]   = {start, forget, X, X, X, X, X, X, X, X},
    [CR_ST_FATAL]    = {start, forget, X, X, X, X, X, X, X, X},
};
#undef X

void cr_svc_event(struct cr_svc *svc, enum cr_svc_event ev)
{
    if ((unsigned)ev < CR_NEVENTS && (unsigned)svc->state < CR_NSTATES)
        table[svc->state][ev](svc);
}
