/* One service: its state machine (a table), its containers, its timer. */
#include "service/service.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "service/history.h"
#include "io/logs.h"
#include "policy/syscall_filter.h"
#include "spawn/spawn.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

static const char *const state_names[CR_NSTATES] = {
    [CR_ST_STOPPED] = "STOPPED", [CR_ST_STARTING] = "STARTING", [CR_ST_RUNNING] = "RUNNING",
    [CR_ST_BACKOFF] = "BACKOFF", [CR_ST_STOPPING] = "STOPPING", [CR_ST_EXITED] = "EXITED",
    [CR_ST_FATAL] = "FATAL",
};

const char *cr_state_name(enum cr_state s)
{
    return (unsigned)s < CR_NSTATES ? state_names[s] : "?";
}

/* ---- small helpers ------------------------------------------------------------------------ */

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

int64_t cr_jitter_ms(struct cr_runtime *rt, int64_t d)
{
    if (!rt->rnd)
        cr_runtime_seed(rt);
    /* xorshift64*, as init's: jitter needs spread, not secrecy. */
    rt->rnd ^= rt->rnd >> 12;
    rt->rnd ^= rt->rnd << 25;
    rt->rnd ^= rt->rnd >> 27;
    uint64_t r = rt->rnd * 0x2545F4914F6CDD1DULL;
    return d - (int64_t)(r % 1000) * (d / 5) / 1000;
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
    svc->state = s;
    /* RUNNING is ready: after startsecs, or when init saw the `ready` key's signal. */
    svc->ready = s == CR_ST_RUNNING;
    if (svc->ready && svc->rt->on_ready)
        svc->rt->on_ready(svc->rt, svc);
}

static void settle(struct cr_svc *svc, enum cr_state s)
{
    disarm(svc);
    set_state(svc, s);
    if (svc->rt->on_settled)
        svc->rt->on_settled(svc->rt, svc);
}

void cr_svc_limits(const struct cr_service *c, struct cr_cg_limits *lim)
{
    cr_cg_limits_init(lim);
    if (!c)
        return;
    lim->memory_max = c->memory_max;
    lim->memory_high = c->memory_high;
    lim->memory_swap_max = c->memory_swap_max;
    if (c->cpu_max.quota_us != -1) {
        lim->cpu_quota_us = c->cpu_max.quota_us;
        lim->cpu_period_us = c->cpu_max.period_us;
    }
    lim->cpu_weight = c->cpu_weight;
    lim->pids_max = c->pids_max;
    lim->io_weight = c->io_weight;
    lim->confine_devices = true;
    lim->devices = c->dev_rules;
    lim->ndevices = c->ndev_rules;
}

/* ---- the container ------------------------------------------------------------------------- */

static void ct_handle_closed(uv_handle_t *h)
{
    struct cr_container *ct = h->data;
    if (--ct->open_handles == 0) {
        free(ct->evpart);
        free(ct);
    }
}

static void ct_release(struct cr_container *ct)
{
    ct->svc = NULL;
    uv_poll_stop(&ct->pid_poll);
    uv_poll_stop(&ct->ev_poll);
    uv_close((uv_handle_t *)&ct->pid_poll, ct_handle_closed);
    uv_close((uv_handle_t *)&ct->ev_poll, ct_handle_closed);
    close(ct->pidfd);
    close(ct->ev_fd);
}

static void check_oom(struct cr_svc *svc, struct cr_container *ct)
{
    int64_t oom = cr_cg_oom_kills(ct->cg);
    if (oom > ct->oom_seen) {
        svc->last_oom = true;
        ct->oom_seen = oom;
    }
}

static void handle_event_line(struct cr_svc *svc, char *line)
{
    struct cr_event_line ev;
    if (cr_event_parse(line, &ev) < 0)
        return;
    const char *n = svc->name;
    bool quiet = svc->rt->quiet;
    if (!strcmp(ev.event, "started")) {
        if (!quiet)
            cr_log(n, "started (pid %s in the container)", cr_event_get(&ev, "pid") ?: "?");
        svc->healthy = -1;      /* a new workload: not checked yet */
        cr_hist_started(svc);
        cr_svc_event(svc, CR_EV_STARTED);
    } else if (!strcmp(ev.event, "exited")) {
        const char *code = cr_event_get(&ev, "code"), *sig = cr_event_get(&ev, "signal");
        const char *rt = cr_event_get(&ev, "runtime_ms");
        svc->last_oom = false;
        if (svc->ct)
            check_oom(svc, svc->ct);
        if (!quiet || svc->last_oom)
            cr_log(n, "exited (%s %s%s, after %s ms)", code ? "code" : "signal",
                   code ? code : sig ? sig : "?", svc->last_oom ? ", OOM killed" : "",
                   rt ? rt : "?");
        cr_hist_exited(svc, code, sig, rt);
        cr_svc_event(svc, CR_EV_EXITED);
    } else if (!strcmp(ev.event, "restarting")) {
        if (!quiet)
            cr_log(n, "restarting in %s ms (attempt %s)", cr_event_get(&ev, "delay_ms") ?: "?",
                   cr_event_get(&ev, "attempt") ?: "?");
        cr_hist_restart(svc, atoll(cr_event_get(&ev, "delay_ms") ?: "0"));
        cr_svc_event(svc, CR_EV_RESTARTING);
    } else if (!strcmp(ev.event, "gave-up")) {
        cr_log(n, "gave up after %s restarts (code %s)", cr_event_get(&ev, "restarts") ?: "?",
               cr_event_get(&ev, "code") ?: "?");
        cr_svc_event(svc, CR_EV_GAVE_UP);
    } else if (!strcmp(ev.event, "setup-failed")) {
        cr_log(n, "setup failed: %s", ev.reason ? ev.reason : "(no reason given)");
        cr_hist_setup_failed(svc, ev.reason);
        cr_svc_event(svc, CR_EV_SETUP_FAILED);
    } else if (!strcmp(ev.event, "exec-failed")) {
        cr_log(n, "exec failed: %s", ev.reason ? ev.reason : "(no reason given)");
        cr_hist_setup_failed(svc, ev.reason);
        cr_svc_event(svc, CR_EV_SETUP_FAILED);
    } else if (!strcmp(ev.event, "ready")) {
        if (!quiet)
            cr_log(n, "ready (%s)", cr_event_get(&ev, "kind") ?: "?");
        cr_hist_ready(svc);
        cr_svc_event(svc, CR_EV_READY);
    } else if (!strcmp(ev.event, "ready-timeout")) {
        cr_log(n, "not ready within %s ms (ready = %s): a failed start",
               cr_event_get(&ev, "timeout_ms") ?: "?", cr_event_get(&ev, "kind") ?: "?");
    } else if (!strcmp(ev.event, "status")) {
        snprintf(svc->status_text, sizeof svc->status_text, "%s", ev.reason ? ev.reason : "");
        if (!quiet)
            cr_log(n, "status: %s", svc->status_text);
    } else if (!strcmp(ev.event, "healthy")) {
        svc->healthy = 1;
        cr_log(n, "healthy");
    } else if (!strcmp(ev.event, "unhealthy")) {
        const char *action = cr_event_get(&ev, "action") ?: "none";
        svc->healthy = 0;
        svc->health_stop = !strcmp(action, "stop");
        cr_log(n, "unhealthy after %s failed checks (%s); health_action = %s",
               cr_event_get(&ev, "failures") ?: "?", ev.reason ? ev.reason : "no reason given",
               action);
    }
}

/* Reads init's events; each whole line drives the state machine. */
/* Returns true at end of file (init and everything that held the pipe are gone). */
static bool ct_read_events(struct cr_container *ct)
{
    char buf[2 * CR_EVENT_MAX];
    size_t len = ct->evlen;
    bool eof = false;
    if (len)
        memcpy(buf, ct->evpart, len);
    for (;;) {
        if (len == sizeof buf)
            len = 0;   /* an over-long line: garbage, drop it */
        ssize_t r = read(ct->ev_fd, buf + len, sizeof buf - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            eof = r == 0;
            break;
        }
        len += (size_t)r;
        size_t start = 0;
        for (size_t i = 0; i < len; i++) {
            if (buf[i] != '\n')
                continue;
            buf[i] = 0;
            if (ct->svc)
                handle_event_line(ct->svc, buf + start);
            start = i + 1;
        }
        memmove(buf, buf + start, len - start);
        len -= start;
    }
    if (!cr_keep_partial(&ct->evpart, sizeof buf, buf, len))
        len = 0;       /* no memory to keep half a line in: it is lost */
    ct->evlen = len;
    return eof;
}

static void on_events(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    struct cr_container *ct = h->data;
    /* At end of file the pipe stays readable: stop watching it, or the loop would spin
     * until the pidfd says init is gone (its namespaces' teardown comes first). */
    if (ct_read_events(ct))
        uv_poll_stop(h);
}

/* init is gone: collect it, read what it said last, record why, remove its cgroup. */
static void ct_exited(struct cr_container *ct)
{
    struct cr_svc *svc = ct->svc;
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid((idtype_t)P_PIDFD, (id_t)ct->pidfd, &si, WEXITED | WNOHANG) < 0 ||
        si.si_pid == 0)
        return;   /* not yet (spurious wakeup) */
    ct->exited = true;
    ct_read_events(ct);
    if (svc->out_open)
        cr_out_drain(&svc->out);
    if (svc->err_open)
        cr_out_drain(&svc->err);
    bool oom_before = svc->last_oom;
    svc->last_oom = false;
    check_oom(svc, ct);
    bool oom = svc->last_oom || oom_before;
    cr_hist_container_exit(svc, ct->cg, si.si_code, si.si_status,
                           now_ms(svc) - ct->spawned_ms, oom);
    char err[256];
    /* With a PID namespace nothing is left once init is gone; without one, orphans may be.
     * An empty cgroup is not frozen and thawed for nothing (on v1 a freeze flips a kernel
     * static key: text patching and IPIs on every CPU). */
    if (!cr_cg_is_empty(ct->cg) && cr_cg_kill(ct->cg, err, sizeof err) < 0)
        cr_log(svc->name, "%s", err);
    if (cr_cg_destroy(ct->cg, err, sizeof err) < 0)
        cr_log(svc->name, "%s", err);
    ct->cg = NULL;
    char sname[32];
    if (si.si_code == CLD_EXITED) {
        svc->exit_status = si.si_status;
        if (!svc->rt->quiet || oom)
            cr_log(svc->name, "container exited (code %d%s)", si.si_status,
                   oom ? ", OOM kill in the container" : "");
    } else {
        svc->exit_status = 128 + si.si_status;
        cr_log(svc->name, "container killed (signal %s%s)",
               cr_signal_name(si.si_status, sname, sizeof sname), oom ? ", OOM kill" : "");
    }
    svc->last_oom = oom;
    svc->ran_ms = now_ms(svc) - ct->spawned_ms;
    svc->ct = NULL;
    ct_release(ct);
    cr_svc_event(svc, CR_EV_INIT_EXITED);
}

static void on_pidfd(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    struct cr_container *ct = h->data;
    if (ct->svc && !ct->exited)
        ct_exited(ct);
}

static int svc_spawn(struct cr_svc *svc)
{
    struct cr_runtime *rt = svc->rt;
    const struct cr_service *conf = svc->conf;
    char err[512], leaf[96];
    if (rt->run_mode)
        snprintf(leaf, sizeof leaf, "run-%s-%d", svc->name, (int)getpid());
    else
        snprintf(leaf, sizeof leaf, "svc-%s", svc->name);
    struct cr_cg_limits lim;
    cr_svc_limits(conf, &lim);
    struct cr_cg *cg = NULL;
    int r = cr_cg_create(rt->cgroot, leaf, &lim, &cg, err, sizeof err);
    if (r < 0) {
        cr_log(svc->name, "cannot create its cgroup: %s", err);
        return r;
    }
    int ev[2];
    if (pipe2(ev, O_CLOEXEC) < 0) {
        r = -errno;
        cr_log(svc->name, "pipe: %s", strerror(-r));
        cr_cg_destroy(cg, err, sizeof err);
        return r;
    }
    fcntl(ev[0], F_SETFL, fcntl(ev[0], F_GETFL) | O_NONBLOCK);
    struct cr_spawn_req req = {
        .spec = &conf->spec,
        .init_fd = rt->init_fd,
        .cg = cg,
        .events_fd = ev[1],
        .nofile = &rt->nofile,
        .own_pgrp = !rt->run_mode,
        .uid_map = conf->uid_map_text,
        .gid_map = conf->gid_map_text,
        .seccomp_fd = -1,
    };
    if (conf->spec.seccomp_fd >= 0) {
        req.seccomp_fd = cr_seccomp_fd(conf->seccomp, conf->spec.caps, err, sizeof err);
        if (req.seccomp_fd < 0) {
            r = req.seccomp_fd;
            cr_log(svc->name, "cannot start its container: %s", err);
            close(ev[0]);
            close(ev[1]);
            cr_cg_destroy(cg, err, sizeof err);
            return r;
        }
    }
    if (rt->run_mode) {
        req.stdio[0] = STDIN_FILENO;
        req.stdio[1] = STDOUT_FILENO;
        req.stdio[2] = STDERR_FILENO;
    } else {
        req.stdio[0] = rt->devnull;
        req.stdio[1] = svc->out.wfd;
        req.stdio[2] = svc->err_open ? svc->err.wfd : svc->out.wfd;
    }
    struct cr_spawned sp;
    r = cr_spawn(&req, &sp, err, sizeof err);
    close(ev[1]);
    if (r < 0) {
        cr_log(svc->name, "cannot start its container: %s", err);
        close(ev[0]);
        cr_cg_destroy(cg, err, sizeof err);
        return r;
    }
    struct cr_container *ct = calloc(1, sizeof *ct);
    if (!ct) {
        /* Without memory we cannot watch it: take it down again. */
        cr_pidfd_signal(sp.pidfd, SIGKILL);
        siginfo_t si;
        waitid((idtype_t)P_PIDFD, (id_t)sp.pidfd, &si, WEXITED);
        close(sp.pidfd);
        close(ev[0]);
        cr_cg_destroy(cg, err, sizeof err);
        cr_log(svc->name, "out of memory");
        return -ENOMEM;
    }
    ct->svc = svc;
    ct->pid = sp.pid;
    ct->pidfd = sp.pidfd;
    ct->ev_fd = ev[0];
    ct->cg = cg;
    ct->spawned_ms = now_ms(svc);
    /* A cgroup made now has counted nothing; a re-used leftover may have. */
    int64_t oom = cr_cg_is_fresh(cg) ? 0 : cr_cg_oom_kills(cg);
    ct->oom_seen = oom > 0 ? oom : 0;
    uv_poll_init(rt->loop, &ct->pid_poll, ct->pidfd);
    uv_poll_init(rt->loop, &ct->ev_poll, ct->ev_fd);
    ct->pid_poll.data = ct->ev_poll.data = ct;
    ct->open_handles = 2;
    uv_poll_start(&ct->ev_poll, UV_READABLE, on_events);
    uv_poll_start(&ct->pid_poll, UV_READABLE, on_pidfd);
    svc->ct = ct;
    if (!rt->quiet)
        cr_log(svc->name, "container started (init pid %d, cgroup %s%s)", (int)sp.pid,
               cr_cg_path(cg), sp.into_cgroup ? ", born in it" : "");
    return 0;
}

/* ---- the actions: one per cell of the table ------------------------------------------------ */

static void container_gone(struct cr_svc *svc);

/* Nothing to do: the pair cannot happen, or changes nothing. */
static void ignore(struct cr_svc *svc)
{
    (void)svc;
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
    if (!svc->conf || svc_spawn(svc) < 0) {
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
    svc->delay_ms = svc->conf ? svc->conf->restart_delay : 0;
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

static bool restart_window_full(struct cr_svc *svc)
{
    const struct cr_service *c = svc->conf;
    if (!c || c->max_restarts <= 0 || !svc->restarts)
        return false;
    size_t max = (size_t)c->max_restarts;
    uint64_t now = now_ms(svc);
    size_t recent = 0;
    for (size_t i = 0; i < svc->nrestarts && i < max; i++)
        if (now - svc->restarts[i] < (uint64_t)c->restart_window)
            recent++;
    if (recent >= max)
        return true;
    svc->restarts[svc->nrestarts % max] = now;
    svc->nrestarts++;
    return false;
}

/* BACKOFF for the next container, with the delay doubling up to restart_delay_max. */
static void schedule_restart(struct cr_svc *svc, uint64_t ran_ms)
{
    const struct cr_service *c = svc->conf;
    if (ran_ms >= (uint64_t)c->restart_reset_after)
        svc->delay_ms = c->restart_delay;
    int64_t base = svc->delay_ms;
    int64_t next = base * 2;
    svc->delay_ms = next > c->restart_delay_max ? c->restart_delay_max : next;
    int64_t delay = cr_jitter_ms(svc->rt, base);
    cr_hist_restart(svc, delay);
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
        settle(svc, CR_ST_FATAL);
        return;
    }
    if (!svc->reached_running) {
        svc->failed_starts++;
        if (svc->failed_starts > (unsigned)c->startretries) {
            cr_log(svc->name, "%u failed start%s in a row: giving up", svc->failed_starts,
                   svc->failed_starts == 1 ? "" : "s");
            settle(svc, CR_ST_FATAL);
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
    int r = cr_pidfd_signal(svc->ct->pidfd, svc->stopsignal);
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
    char err[256];
    if (cr_cg_kill(svc->ct->cg, err, sizeof err) < 0) {
        cr_log(svc->name, "%s", err);
        cr_pidfd_signal(svc->ct->pidfd, SIGKILL);
    }
}

/* STOPPING + init exited. */
static void stopped(struct cr_svc *svc)
{
    disarm(svc);
    if (svc->want_start && svc->conf && !svc->removed) {
        svc->want_start = false;
        set_state(svc, CR_ST_STOPPED);
        start(svc);
        return;
    }
    settle(svc, CR_ST_STOPPED);
}

/* STOPPING + start: start again once it is down (a reload restart). */
static void start_after_stop(struct cr_svc *svc)
{
    svc->want_start = true;
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
    [CR_ST_STOPPING] = {start_after_stop, X, X, X, X, X, X, stopped, stop_timeout, X},
    [CR_ST_EXITED]   = {start, forget, X, X, X, X, X, X, X, X},
    [CR_ST_FATAL]    = {start, forget, X, X, X, X, X, X, X, X},
};
#undef X

void cr_svc_event(struct cr_svc *svc, enum cr_svc_event ev)
{
    if ((unsigned)ev < CR_NEVENTS && (unsigned)svc->state < CR_NSTATES)
        table[svc->state][ev](svc);
}

/* ---- its log files (io/logs.c takes the streams) ------------------------------------------- */

static void logs_attach(struct cr_svc *svc)
{
    const struct cr_service *c = svc->conf;
    if (!c)
        return;   /* removed by a reload: keeps its files until it is freed */
    if (svc->out_open)
        cr_logs_attach(&svc->out, svc->name, c->stdout_logfile, "out",
                       c->stdout_logfile_maxbytes, c->stdout_logfile_backups, c->log_timestamps);
    if (svc->err_open)
        cr_logs_attach(&svc->err, svc->name, c->stderr_logfile, "err",
                       c->stderr_logfile_maxbytes, c->stderr_logfile_backups, c->log_timestamps);
}

uint64_t cr_svc_log_dropped(const struct cr_svc *svc)
{
    return (svc->out_open ? svc->out.log_dropped : 0) + (svc->err_open ? svc->err.log_dropped : 0);
}

const char *cr_svc_log_path(const struct cr_svc *svc, int stream)
{
    /* Without its own pipe, stderr goes where stdout goes (redirect_stderr). */
    const struct cr_out_stream *s = stream == CR_LOG_STDERR && svc->err_open ? &svc->err
                                                                             : &svc->out;
    if (!svc->out_open || !s->file)
        return NULL;
    return s->file->path;
}

/* ---- life of a service -------------------------------------------------------------------- */

void cr_svc_set_conf(struct cr_svc *svc, const struct cr_service *conf)
{
    svc->conf = conf;
    if (!conf)
        return;
    svc->stopsignal = conf->stopsignal > 0 ? conf->stopsignal : SIGTERM;
    svc->stopwait_ms = conf->stopwaitsecs;
    free(svc->restarts);
    svc->restarts = conf->max_restarts > 0 ? calloc((size_t)conf->max_restarts, sizeof(uint64_t))
                                           : NULL;
    svc->nrestarts = 0;
    logs_attach(svc);   /* the log keys apply live (a no-op until the pipes exist) */
}

int cr_svc_new(struct cr_runtime *rt, const struct cr_service *conf, struct cr_svc **out)
{
    struct cr_svc *svc = calloc(1, sizeof *svc);
    if (!svc)
        return -ENOMEM;
    svc->rt = rt;
    svc->name = strdup(conf->name);
    svc->exit_status = -1;
    svc->healthy = -1;
    if (!svc->name) {
        free(svc);
        return -ENOMEM;
    }
    cr_svc_set_conf(svc, conf);
    uv_timer_init(rt->loop, &svc->timer);
    svc->timer.data = svc;
    if (!rt->run_mode) {
        int r = cr_out_open(&svc->out, rt->loop, &rt->console, svc->name);
        if (r < 0) {
            cr_log(svc->name, "output pipe: %s", strerror(-r));
        } else {
            svc->out_open = true;
        }
        if (r == 0 && !conf->redirect_stderr) {
            r = cr_out_open(&svc->err, rt->loop, &rt->console, svc->name);
            if (r < 0)
                cr_log(svc->name, "output pipe: %s", strerror(-r));
            else
                svc->err_open = true;
        }
    }
    logs_attach(svc);
    svc->hist = cr_hist_new();
    svc->out.tap = svc->err.tap = cr_hist_line;
    svc->out.tap_arg = svc->err.tap_arg = svc;
    svc->state = CR_ST_STOPPED;
    *out = svc;
    return 0;
}

bool cr_svc_settled(const struct cr_svc *svc)
{
    return !svc->ct && (svc->state == CR_ST_STOPPED || svc->state == CR_ST_EXITED ||
                        svc->state == CR_ST_FATAL);
}

/* Freed once the timer and both streams are closed. */
static void svc_part_closed(void *arg)
{
    struct cr_svc *svc = arg;
    if (--svc->closing == 0) {
        cr_hist_free(svc->hist);
        free(svc->restarts);
        free(svc->name);
        free(svc);
    }
}

static void on_timer_closed(uv_handle_t *h)
{
    svc_part_closed(h->data);
}

void cr_svc_free(struct cr_svc *svc)
{
    /* A service is freed settled; a container that is somehow still there is killed. */
    if (svc->ct) {
        struct cr_container *ct = svc->ct;
        char err[256];
        cr_pidfd_signal(ct->pidfd, SIGKILL);
        siginfo_t si;
        waitid((idtype_t)P_PIDFD, (id_t)ct->pidfd, &si, WEXITED);
        if (ct->cg)
            cr_cg_destroy(ct->cg, err, sizeof err);
        svc->ct = NULL;
        ct_release(ct);
    }
    svc->closing = 1 + svc->out_open + svc->err_open;
    disarm(svc);
    uv_close((uv_handle_t *)&svc->timer, on_timer_closed);
    if (svc->out_open)
        cr_out_close(&svc->out, svc_part_closed, svc);
    if (svc->err_open)
        cr_out_close(&svc->err, svc_part_closed, svc);
}

int cr_svc_apply_limits(struct cr_svc *svc)
{
    if (!svc->ct || !svc->ct->cg)
        return 0;
    struct cr_cg_limits lim;
    cr_svc_limits(svc->conf, &lim);
    char err[256];
    int r = cr_cg_set_limits(svc->ct->cg, &lim, err, sizeof err);
    if (r < 0)
        cr_log(svc->name, "cannot apply the new limits: %s", err);
    return r;
}

int cr_svc_signal(struct cr_svc *svc, int sig)
{
    if (!svc->ct)
        return -ESRCH;
    return cr_pidfd_signal(svc->ct->pidfd, sig);
}
