/* The running supervisor: one libuv loop, the services, signals, start-up and shutdown. The
 * order of starts and stops is service/order.c's, reload is reload.c's, `run` oneshot.c's. */
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <uv.h>

#include "daemon.h"
#include "daemon_int.h"
#include "fd_budget.h"
#include "log.h"
#include "own_process.h"
#include "cgroup/cgroup.h"
#include "config/config.h"
#include "api/control.h"
#include "io/logs.h"
#include "io/watch.h"
#include "net/cni.h"
#include "api/metrics.h"
#include "api/rpc.h"
#include "service/fcgi.h"
#include "service/order.h"
#include "service/service.h"
#include "listeners.h"
#include "notify.h"
#include "orphans.h"
#include "run_net.h"
#include "policy/syscall_filter.h"
#include "spawn/spawn.h"

/* Starts what waits for a start and may start now (service/order.c). Runs whenever a
 * service becomes ready or settles. */
static void schedule_starts(struct sv *sv)
{
    if (sv->shutting_down || sv->finished || sv->rt.run_mode)
        return;
    cr_order_start_pending(&sv->all);
}

static void on_starts_timer(uv_timer_t *t)
{
    schedule_starts(t->data);
}

/* More starts wait (service/order.h): after the loop has polled for what came meanwhile. */
static void starts_again(void *arg)
{
    struct sv *sv = arg;
    if (!sv->starts_timer_init) {
        uv_timer_init(sv->rt.loop, &sv->starts_timer);
        sv->starts_timer.data = sv;
        sv->starts_timer_init = true;
    }
    /* 1 ms, not 0: libuv (1.44) runs a timer armed for 0 from a timer callback in the same
     * pass, before any polling, and the slices would run back to back */
    uv_timer_start(&sv->starts_timer, on_starts_timer, 1, 0);
}

static struct cr_svc *find_svc(struct cr_runtime *rt, const char *name)
{
    return cr_svcs_find(&sv_of(rt)->all, name);
}

/* A request (api/host.h): a start waits for its dependencies, as at start-up. */
static void api_request(struct cr_runtime *rt, struct cr_svc *svc, enum cr_svc_req req)
{
    cr_svc_request(svc, req);
    schedule_starts(sv_of(rt));
}

static void on_ready(struct cr_runtime *rt, struct cr_svc *svc)
{
    (void)svc;
    schedule_starts(sv_of(rt));
}

/* systemd (notify.h): READY=1 once start-up is over (every autostart service RUNNING, or
 * failed: BACKOFF, EXITED, FATAL; none still starting or waiting for a dependency), then a
 * STATUS= line whenever the counts change. */
static void notify_status(struct sv *sv)
{
    if (!sv->notify || sv->shutting_down || sv->finished || sv->rt.run_mode)
        return;
    size_t up = 0, failed = 0, down = 0, busy = 0;
    for (size_t i = 0; i < sv->all.n; i++) {
        struct cr_svc_view v;
        cr_svc_view(sv->all.v[i], &v);
        if (v.start_pending && !v.start_blocked)
            busy++;
        else if (v.state == CR_ST_RUNNING)
            up++;
        else if (v.state == CR_ST_STARTING || v.state == CR_ST_STOPPING)
            busy++;
        else if (v.state == CR_ST_BACKOFF || v.state == CR_ST_FATAL || v.start_blocked ||
                 (v.state == CR_ST_EXITED && v.exit_status != 0))
            failed++;
        else
            down++;
    }
    char status[160];
    snprintf(status, sizeof status, "%zu running, %zu failed, %zu starting or stopping, "
             "%zu stopped", up, failed, busy, down);
    if (!sv->notified_ready && busy)
        return;
    if (!sv->notified_ready) {
        sv->notified_ready = true;
        sv_notify("READY=1\nSTATUS=%s", status);
    } else if (strcmp(status, sv->notified_status)) {
        sv_notify("STATUS=%s", status);
    }
    snprintf(sv->notified_status, sizeof sv->notified_status, "%s", status);
}

/* Any change of state: an svctl start/stop/restart may be waiting for it; systemd may want
 * to know. */
static void on_change(struct cr_runtime *rt, struct cr_svc *svc)
{
    sv_evl_changed(sv_of(rt)->evl, svc);
    cr_control_changed(sv_of(rt)->ctl);
    cr_rpc_changed(sv_of(rt)->rpc);
    notify_status(sv_of(rt));
}

/* stdout_events_enabled: supervisord's PROCESS_LOG events. */
static void on_output(struct cr_runtime *rt, struct cr_svc *svc, int stream, const char *lines,
                      size_t len)
{
    sv_evl_output(sv_of(rt)->evl, svc, stream == CR_LOG_STDERR ? "stderr" : "stdout", lines,
                  len);
}

/* ---- our own stderr, never blocking the loop (log.h) ---------------------------------------- */

static uv_loop_t *log_loop;
static uv_poll_t log_poll;
static bool log_poll_init;

static void on_log_writable(uv_poll_t *h, int status, int events)
{
    (void)h;
    (void)status;
    (void)events;
    cr_log_flush();
}

static void log_want_write(int fd, bool on)
{
    if (!log_poll_init) {
        if (!on || uv_poll_init(log_loop, &log_poll, fd) < 0)
            return;
        log_poll_init = true;
    }
    if (on)
        uv_poll_start(&log_poll, UV_WRITABLE, on_log_writable);
    else
        uv_poll_stop(&log_poll);
}

static void log_unwatch(void)
{
    cr_log_unwatch();
    if (log_poll_init) {
        uv_poll_stop(&log_poll);
        uv_close((uv_handle_t *)&log_poll, NULL);
        log_poll_init = false;
    }
}

/* ---- the end ------------------------------------------------------------------------------- */

static void close_handle_cb(uv_handle_t *h)
{
    (void)h;
}

/* Everything is down: close every handle so the loop ends. */
static void finish(struct sv *sv, int status)
{
    if (sv->finished)
        return;
    sv->finished = true;
    sv->exit_status = status;
    sv_orphans_stop();
    sv_notify_close();
    sv_reexec_cancel(sv);   /* a client waiting for its check hears why, before it goes */
    cr_control_close(sv->ctl);
    sv->ctl = NULL;
    cr_metrics_close(sv->metrics);
    sv->metrics = NULL;
    cr_rpc_close(sv->rpc);
    sv->rpc = NULL;
    sv_evl_close(sv->evl);
    sv->evl = NULL;
    for (size_t i = 0; i < sv->all.n; i++)
        cr_svc_free(sv->all.v[i]);
    sv->all.n = 0;
    if (sv->reexec_timer_init)
        uv_close((uv_handle_t *)&sv->reexec_timer, close_handle_cb);
    sv->reexec_timer_init = false;
    sv->all.again = NULL;
    if (sv->starts_timer_init)
        uv_close((uv_handle_t *)&sv->starts_timer, close_handle_cb);
    sv->starts_timer_init = false;
    for (int i = 0; i < sv->nsigs; i++)
        uv_close((uv_handle_t *)&sv->sigs[i], close_handle_cb);
    sv->nsigs = 0;
    cr_console_close(&sv->rt.console);
    cr_console_close(&sv->rt.console_err);
    log_unwatch();
}

/* Stops the services one step at a time (service/order.c); the last one down ends it. A
 * step that settles a service asks for the next step from within: it runs after this one. */
static void shutdown_step(struct sv *sv)
{
    if (sv->stepping) {
        sv->step_again = true;
        return;
    }
    sv->stepping = true;
    do {
        sv->step_again = false;
        if (!cr_order_stop_next(&sv->all)) {
            sv->stepping = false;
            cr_log(NULL, "all services stopped");
            finish(sv, 0);
            return;
        }
    } while (sv->step_again && !sv->finished);
    sv->stepping = false;
}

static void on_settled(struct cr_runtime *rt, struct cr_svc *svc)
{
    struct sv *sv = sv_of(rt);
    if (sv->finished)
        return;
    sv_orphans_sweep();
    struct cr_svc_view v;
    cr_svc_view(svc, &v);
    if (rt->run_mode) {
        finish(sv, v.exit_status >= 0 ? v.exit_status : 125);
        return;
    }
    if (v.removed) {
        cr_svcs_remove(&sv->all, svc);
        if (!sv->shutting_down) {
            cr_control_changed(sv->ctl);
            cr_rpc_changed(sv->rpc);
            return;
        }
    }
    if (sv->shutting_down)
        shutdown_step(sv);
    else
        schedule_starts(sv);
    /* A pending start may have become impossible (a dependency FATAL), a service gone. */
    cr_control_changed(sv->ctl);
    cr_rpc_changed(sv->rpc);
    notify_status(sv);
}

/* ---- signals ------------------------------------------------------------------------------- */

static void api_shutdown(struct cr_runtime *rt, const char *why);
static int api_power(struct cr_runtime *rt, const char *action, const char *why, bool check);

/* reexec_signal's check ended: the re-exec goes on, or the log says why not. */
static void on_reexec_checked(void *arg, int r, const char *said)
{
    struct sv *sv = arg;
    char why[512], name[32];
    int sig = sv->reexec_signal;
    snprintf(name, sizeof name, "SIG%s", sig > 0 && sigabbrev_np(sig) ? sigabbrev_np(sig) : "?");
    if (r < 0)
        cr_log(NULL, "%s (reexec_signal): not re-executing: %s", name, said);
    else if (sv_reexec(&sv->rt, said, why, sizeof why) < 0)
        cr_log(NULL, "%s (reexec_signal): not re-executing: %s", name, why);
    else
        cr_log(NULL, "%s (reexec_signal): re-executing %s", name, sv->reexec_path);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct sv *sv = h->data;
    if (sv->finished)
        return;
    if (sv->rt.run_mode) {
        sv_oneshot_signal(sv, signum);
        return;
    }
    if (signum == sv->reexec_signal) {
        /* an appliance's upgrade: as `svctl reexec` with no path (the binary on disk) */
        char why[512];
        if (sv_reexec_check(&sv->rt, NULL, on_reexec_checked, sv, why, sizeof why) < 0)
            on_reexec_checked(sv, -1, why);
        return;
    }
    if (signum == SIGHUP) {
        if (!sv->shutting_down)
            sv_reload(sv, "SIGHUP", true, NULL);
        return;
    }
    if (sv->pid1) {
        /* s6-linux-init's meanings: ctrl-alt-del (INT), USR1/USR2, a UPS daemon (PWR) */
        char why[32];
        snprintf(why, sizeof why, "SIG%s", sigabbrev_np(signum));
        enum cr_power p = cr_power_of_signal(signum);
        if (p == CR_POWER_NONE)
            cr_log(NULL, "%s ignored: PID 1 powers off on SIGUSR1 or SIGPWR, halts on SIGUSR2, "
                         "reboots on SIGINT (or svctl poweroff|halt|reboot)", why);
        else
            api_power(&sv->rt, cr_power_name(p), why, false);
        return;
    }
    if (signum == SIGUSR2) {
        cr_logs_rotate_all(NULL, NULL);
        return;
    }
    api_shutdown(&sv->rt, signum == SIGINT ? "SIGINT" : "SIGTERM");
}

/* ---- what the control socket and the metrics act on (api/host.h) -------------------------- */

static size_t api_services(struct cr_runtime *rt, struct cr_svc *const **v)
{
    struct sv *sv = sv_of(rt);
    *v = sv->all.v;
    return sv->all.n;
}

static int api_reload(struct cr_runtime *rt, bool apply, struct cr_plan *plan)
{
    struct sv *sv = sv_of(rt);
    if (sv->shutting_down || sv->finished)
        return -ESHUTDOWN;
    return sv_reload(sv, "svctl reload", apply, plan);
}

static void api_shutdown(struct cr_runtime *rt, const char *why)
{
    struct sv *sv = sv_of(rt);
    if (sv->finished)
        return;
    if (sv->shutting_down) {
        cr_log(NULL, "%s: already stopping", why);
        return;
    }
    if (sv->pid1 && sv->power == CR_POWER_NONE)
        sv->power = CR_POWER_POWEROFF;   /* PID 1 cannot just exit */
    if (sv->pid1)
        cr_log(NULL, "%s: stopping all services, then %s", why, cr_power_name(sv->power));
    else
        cr_log(NULL, "%s: stopping all services", why);
    sv_notify("STOPPING=1\nSTATUS=stopping every service (%s)", why);
    sv->shutting_down = true;
    sv->rt.stopping_all = true;
    sv_evl_supervisor(sv->evl, "STOPPING");
    shutdown_step(sv);
}

static const char *api_missing(struct cr_runtime *rt)
{
    struct sv *sv = sv_of(rt);
    return sv->missing[0] ? sv->missing : NULL;
}

static int api_power(struct cr_runtime *rt, const char *action, const char *why, bool check)
{
    struct sv *sv = sv_of(rt);
    enum cr_power p = cr_power_parse(action);
    if (!sv->pid1 || p == CR_POWER_NONE)
        return -EPERM;
    if (sv->shutting_down || sv->finished) {
        if (!check)
            cr_log(NULL, "%s: already stopping (then %s)", why, cr_power_name(sv->power));
        return -ESHUTDOWN;
    }
    if (check)
        return 0;
    sv->power = p;
    api_shutdown(rt, why);
    return 0;
}

static bool api_shutting_down(struct cr_runtime *rt)
{
    struct sv *sv = sv_of(rt);
    return sv->shutting_down || sv->finished;
}

static int watch_signals(struct sv *sv, const int *sigs, int n)
{
    for (int i = 0; i < n && sv->nsigs < (int)(sizeof sv->sigs / sizeof sv->sigs[0]); i++) {
        uv_signal_t *h = &sv->sigs[sv->nsigs];
        int r = uv_signal_init(sv->rt.loop, h);
        if (r < 0)
            return r;
        h->data = sv;
        sv->nsigs++;
        r = uv_signal_start(h, on_signal, sigs[i]);
        if (r < 0)
            return r;
    }
    return 0;
}

/* ---- start-up ------------------------------------------------------------------------------ */

/* Started by systemd (INVOCATION_ID) on cgroup v2, the supervisor may manage only the subtree
 * its unit's Delegate=yes gives it: cgroup_root goes below its own cgroup
 * ("system.slice/corral.service/corral"). Elsewhere (cgroup v1, a shell, a container whose
 * cgroup namespace makes its cgroup the root) cgroup_root is below the hierarchy's root. */
static const char *cgroup_root_below_self(const struct cr_config *cfg)
{
    static char buf[512];
    const char *root = cfg->global.cgroup_root;
    struct cr_cgroup_caps caps;
    char self[300];
    if (!getenv("INVOCATION_ID"))
        return root;
    cr_cgroup_probe_last(CR_CGROUP_MOUNT, &caps);
    if (caps.version != 2 || cr_cg_self_path(self, sizeof self) < 0 || !self[0])
        return root;
    /* Re-executed (svctl reexec), it is in its leaf already: "<unit>/<root>/supervisor" */
    size_t n = strlen(self), rl = strlen(root), tail = rl + sizeof "//supervisor" - 1;
    if (n > tail && self[n - tail] == '/' && !strncmp(self + n - tail + 1, root, rl) &&
        !strcmp(self + n - tail + 1 + rl, "/supervisor"))
        self[n - tail] = '\0';
    for (const char *p = self; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("_.-/", *p)) {
            fprintf(stderr, "supervisor: own cgroup /%s: a name cgroup_root cannot take; "
                    "services go below /%s instead\n", self, root);
            return root;
        }
    snprintf(buf, sizeof buf, "%s/%s", self, root);
    return buf;
}

/* The reaper removed one of the sweep's leftovers (or gave up on it). */
static void on_leftover_removed(void *arg, int rc, const char *err)
{
    struct sv *sv = arg;
    if (rc < 0) {
        sv->leftovers_failed++;
        cr_log(NULL, "a leftover cgroup could not be removed: %s", err ? err : strerror(-rc));
    }
    if (--sv->leftovers == 0)
        cr_log(NULL, "leftover cgroups removed in %llu ms%s",
               (unsigned long long)(uv_now(sv->rt.loop) - sv->leftovers_since),
               sv->leftovers_failed ? " (some could not be)" : "");
}

static int make_devnull(void)
{
    return open("/dev/null", O_RDWR | O_CLOEXEC);
}

/* A re-exec's CNI containers whose service is still in the file: their DEL records are
 * their services' (cr_svc_state_cni), not a killed supervisor's leftovers. */
struct cni_keep {
    const char *state;
    const struct cr_config *cfg;
};

static bool cni_handed_over(const char *id, void *arg)
{
    const struct cni_keep *k = arg;
    char name[128], cid[320];
    for (const char *line = k->state; line && *line; line = strchr(line, '\n')) {
        line += *line == '\n';
        if (cr_svc_state_name(line, name, sizeof name) &&
            cr_svc_state_cni(line, cid, sizeof cid) && !strcmp(cid, id))
            return cr_config_find(k->cfg, name) != NULL;
    }
    return false;
}

int supervisor_run(struct cr_config *cfg, int argc, char **argv, struct sv_mode *mode)
{
    struct sv *sv = calloc(1, sizeof *sv);
    if (!sv) {
        cr_config_free(cfg);
        fprintf(stderr, "supervisor: out of memory\n");
        return 1;
    }
    sv->cfg = cfg;
    sv->pid1 = mode->pid1;
    sv->rt.init_fd = sv->rt.devnull = -1;
    sv->reexec_signal = -1;
    sv->rt.console.fd = -1;
    sv->rt.on_settled = on_settled;
    sv->rt.on_ready = on_ready;
    sv->rt.find = find_svc;
    sv->rt.on_change = on_change;
    sv->rt.on_output = on_output;
    sv->api = (struct cr_api_host){
        .rt = &sv->rt, .services = api_services, .reload = api_reload,
        .shutdown = api_shutdown, .shutting_down = api_shutting_down,
        .request = api_request, .missing = api_missing, .power = api_power,
        .reexec = sv_reexec, .reexec_check = sv_reexec_check, .net_connect = sv_net_connect,
    };
    sv->config_path = mode->config_path ? mode->config_path : cfg->path;
    sv->log_want_write = log_want_write;
    cr_runtime_seed(&sv->rt);
    cr_log_set_sink(cr_logs_own_write);
    char err[512];
    char *state = mode->state;   /* a re-exec's (main.c read it): before the cgroup root */
    mode->state = NULL;
    struct cr_service *run_conf = NULL;
    int status = sv_oneshot_args(cfg, argc, argv, &run_conf);
    if (status != 0)
        goto out;
    status = 1;
    const char *run_name = run_conf ? run_conf->name : NULL;
    sv->rt.run_mode = sv->rt.quiet = run_conf != NULL;
    if (run_conf && sv->pid1) {
        fprintf(stderr, "supervisor: `run` is not for the machine's PID 1\n");
        goto out;
    }
    /* a run on a bridge: the supervisor of its root connects its container meanwhile */
    if (run_conf && run_conf->net_mode == CR_NETMODE_BRIDGE)
        sv_keeper_early(sv, run_conf);

    signal(SIGPIPE, SIG_IGN);
    /* Every service holds a few pipes and a pidfd: take the hard limit for ourselves; each
     * container gets the limit we were started with back. A file that needs more than that
     * is refused before anything is made (fd_budget.h). */
    if (run_name) {
        free(state);
        state = NULL;
    }
    /* After a re-exec, what the first supervisor inherited (the rest is the services'). */
    sv->fd_inherited = state ? sv_resume_inherited(state) : cr_fd_count_open();
    if (getrlimit(RLIMIT_NOFILE, &sv->rt.nofile) < 0)
        sv->rt.nofile = (struct rlimit){1024, 1024};
    /* [supervisord] umask, minfds, minprocs: for us and (inherited) the containers */
    if (cr_own_process_apply(&cfg->global, &sv->rt.nofile, err, sizeof err) < 0) {
        fprintf(stderr, "supervisor: %s: %s; nothing started\n", cfg->path, err);
        goto out;
    }
    if (sv->rt.nofile.rlim_cur < sv->rt.nofile.rlim_max) {
        struct rlimit raised = {sv->rt.nofile.rlim_max, sv->rt.nofile.rlim_max};
        setrlimit(RLIMIT_NOFILE, &raised);
    }
    if (!run_name && cr_fd_budget(cfg, sv->fd_inherited, err, sizeof err) < 0) {
        fprintf(stderr, "supervisor: %s: %s; nothing started\n", cfg->path, err);
        goto out;
    }
    char init_path[4096];
    if (cr_init_find(init_path, sizeof init_path) < 0) {
        fprintf(stderr, "supervisor: cannot find init (next to the supervisor, or set "
                        "CORRAL_INIT)\n");
        goto out;
    }
    sv->rt.init_fd = cr_init_memfd(init_path, err, sizeof err);
    if (sv->rt.init_fd < 0) {
        fprintf(stderr, "supervisor: init: %s\n", err);
        goto out;
    }
    sv->rt.devnull = make_devnull();
    if (!run_name)
        cr_spawn_reserve_fds();   /* for thousands of fds; `run` has a handful */
    struct cr_cg_limits run_lim;
    cr_cg_limits_init(&run_lim);
    if (run_conf)
        cr_svc_limits(run_conf, &run_lim);
    const char *cgroot = run_name ? cfg->global.cgroup_root : cgroup_root_below_self(cfg);
    int r = run_name ? cr_cg_root_open_shared(CR_CGROUP_MOUNT, cfg->global.cgroup_root,
                                              &run_lim, &sv->rt.cgroot, err, sizeof err)
                     : cr_cg_root_reopen(CR_CGROUP_MOUNT, cgroot, state, &sv->rt.cgroot, err,
                                         sizeof err);
    if (r < 0) {
        fprintf(stderr, "supervisor: cgroup root '%s': %s\n", cfg->global.cgroup_root, err);
        goto out;
    }
    sv->rt.run_dir = strdup(cfg->global.run_dir);
    sv->rt.cgroup_root = strdup(cfg->global.cgroup_root);
    sv->rt.cni_config_dir = strdup(cfg->global.cni_config_dir);
    sv->rt.cni_plugin_dir = strdup(cfg->global.cni_plugin_dir);
    if (!sv->rt.run_dir || !sv->rt.cgroup_root || !sv->rt.cni_config_dir ||
        !sv->rt.cni_plugin_dir) {
        fprintf(stderr, "supervisor: out of memory\n");
        goto out;
    }
    /* The networks' host side (and a sweep of what a killed supervisor left). `run` shares
     * its root with the supervisor and other runs: the supervisor of the root connects its
     * container, or the run does as a guest (net/host.h), made when its container is
     * (run_net.h). */
    sv->rt.keeper_connect = sv_keeper_connect;
    sv->rt.netns_settle = sv_netns_settle;
    sv->rt.net_open = sv_run_net_open;
    if (!run_name &&
        (state ? cr_net_resume(cfg->global.cgroup_root, cfg->global.run_dir, state, &sv->rt.net,
                               err, sizeof err)
               : cr_net_open(cfg->global.cgroup_root, cfg->global.run_dir, &sv->rt.net, err,
                             sizeof err)) < 0) {
        /* A supervisor runs what needs no bridge (inside a container without
         * CAP_NET_ADMIN, say), and each bridge service's start fails saying "no
         * networking". */
        bool needed = false;
        for (size_t i = 0; i < cfg->nservices; i++)
            needed |= cfg->services[i].net_mode == CR_NETMODE_BRIDGE;
        fprintf(stderr, "supervisor: networking: %s%s\n", err,
                needed ? " (services on a bridge network cannot start)" : "");
    }
    sv_net_reclaim(sv);   /* the addresses of services gone from the file meanwhile */
    if (!run_name) {
        /* the CNI containers of a killed supervisor: their plugins' DEL, with the namespace
         * and result it kept */
        char cni_dir[4200];
        cr_cni_state_dir(cfg->global.run_dir, cfg->global.cgroup_root, cni_dir, sizeof cni_dir);
        struct cni_keep k = {state, cfg};
        cr_cni_sweep(cni_dir, cfg->global.cni_config_dir, cfg->global.cni_plugin_dir,
                     state ? cni_handed_over : NULL, &k);
    }
    const char *none = cr_cg_root_none(sv->rt.cgroot);
    if (none && !run_name)
        snprintf(sv->missing, sizeof sv->missing, "no cgroups (%s): no limits, no memory/CPU "
                 "figures, no device rules, no OOM reports; a stop reaches each container's "
                 "pid namespace and process group", none);
    sv->rt.loop = malloc(sizeof *sv->rt.loop);
    if (!sv->rt.loop || uv_loop_init(sv->rt.loop) < 0) {
        free(sv->rt.loop);
        sv->rt.loop = NULL;
        fprintf(stderr, "supervisor: cannot create the event loop\n");
        goto out;
    }
    log_loop = sv->rt.loop;
    if (state) {   /* before any service takes its fds back */
        cr_watch_take_set(sv->rt.loop, sv_resume_watchset(state));
        sv_run_nets_resume(sv);
    }
    cr_log_nonblocking(log_want_write);
    cr_logs_set_loop(sv->rt.loop);   /* log files on writer threads from here on */
    if (!run_name) {
        sv->notify = sv_notify_open(sv->rt.loop, mode->resume_fd >= 0);
        /* PID 1 (of a machine or a container) reaps what is re-parented to it; without
         * cgroups the supervisor is a subreaper too, so nothing a container leaves escapes
         * it. orphans.c is the one reaper: its first sweep takes what whoever ran before us
         * left (after a re-exec, once the inits are adopted). */
        sv_orphans_start(sv, none != NULL, mode->resume_fd >= 0);
        sv->leftovers = cr_cg_root_swept(sv->rt.cgroot)->cgroups;
        sv->leftovers_since = uv_now(sv->rt.loop);
        if (cr_cg_reaper_start(sv->rt.cgroot, sv->rt.loop, on_leftover_removed, sv) < 0)
            cr_log(NULL, "no cgroup reaper: kills and removals will wait");
    }
    if (cr_console_open(&sv->rt.console, sv->rt.loop, STDOUT_FILENO) < 0 ||
        cr_console_open(&sv->rt.console_err, sv->rt.loop, STDERR_FILENO) < 0) {
        fprintf(stderr, "supervisor: out of memory\n");
        goto out_loop;
    }

    if (run_name) {
        static const int run_sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
        if (watch_signals(sv, run_sigs, 6) < 0 || sv_oneshot_start(sv, run_conf) < 0) {
            fprintf(stderr, "supervisor: cannot set up\n");
            finish(sv, 1);
        }
    } else {
        static const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR2};
        static const int pid1_sigs[] = {SIGUSR1, SIGPWR};
        int rsig = sv->reexec_signal = cfg->global.reexec_signal;   /* a reload keeps it */
        if (watch_signals(sv, sigs, 4) < 0 || (sv->pid1 && watch_signals(sv, pid1_sigs, 2) < 0) ||
            (rsig > 0 && watch_signals(sv, &rsig, 1) < 0)) {
            fprintf(stderr, "supervisor: cannot watch signals\n");
            finish(sv, 1);
        } else {
            /* Resuming, the log files' writers start once every service is back (run:) */
            if (mode->resume_fd >= 0)
                cr_logs_hold(true);
            cr_logs_set_dir(cfg->global.log_dir);
            cr_logs_own_open(cfg->global.logfile, cfg->global.logfile_maxbytes,
                             cfg->global.logfile_backups);
            if (mode->resume_fd >= 0 && !state) {
                /* Starting anew would re-use (so empty) the cgroups of containers that run */
                cr_log(NULL, "cannot resume: the state is not one this supervisor reads");
                finish(sv, 1);
                goto run;
            }
            cr_log(NULL, "%s (pid %d%s, %zu service%s, cgroup root %s)",
                   state ? "resumed after reexec" : "started", (int)getpid(),
                   sv->pid1 ? ", the machine's init" : "", cfg->nservices,
                   cfg->nservices == 1 ? "" : "s", cgroot);
            if (cfg->global.pidfile && (sv->pidfile = strdup(cfg->global.pidfile)))
                cr_own_pidfile_write(sv->pidfile);
            if (sv->missing[0])
                cr_log(NULL, "%s", sv->missing);
            const struct cr_cg_sweep *sw = cr_cg_root_swept(sv->rt.cgroot);
            if (sw->cgroups)
                cr_log(NULL, "swept %d leftover cgroup%s (%d process%s) in %lld ms%s",
                       sw->cgroups, sw->cgroups == 1 ? "" : "s", sw->procs,
                       sw->procs == 1 ? "" : "es", (long long)sw->ms,
                       sw->failed ? " (some could not be removed)" : "");
            /* Neither is needed to run services: a failure is reported, not fatal. */
            const char *ctl_line = state ? strstr(state, "\ncontrol ") : NULL;
            struct sv_gap since = state ? sv_resume_since(state) : (struct sv_gap){0};
            int r2 = ctl_line ? cr_control_adopt(&sv->api, cfg->global.control_socket,
                                                 atoi(ctl_line + 9), &sv->ctl, err, sizeof err)
                              : cr_control_open(&sv->api, cfg->global.control_socket,
                                                &sv->ctl, err, sizeof err);
            if (r2 < 0)
                cr_log(NULL, "control socket %s: %s (svctl cannot reach this supervisor)",
                       cfg->global.control_socket, err);
            if (cfg->global.metrics_listen &&
                cr_metrics_open(&sv->api, cfg->global.metrics_listen, &sv->metrics, err,
                                sizeof err) < 0)
                cr_log(NULL, "metrics_listen %s: %s", cfg->global.metrics_listen, err);
            if (cr_rpc_open(&sv->api, &cfg->global, &sv->rpc, err, sizeof err) < 0)
                cr_log(NULL, "%s:%d: %s (supervisorctl cannot reach this supervisor)",
                       cfg->global.rpc_unix_line ? cfg->global.rpc_unix_file_of
                                                 : cfg->global.rpc_inet_file_of,
                       cfg->global.rpc_unix_line ? cfg->global.rpc_unix_line
                                                 : cfg->global.rpc_inet_line, err);
            const struct cr_service **order = cr_order_by_priority(cfg);
            sv->rt.resuming = state != NULL;
            for (size_t i = 0; order && i < cfg->nservices && !sv->finished; i++) {
                struct cr_svc *s;
                if (cr_svcs_add(&sv->all, &sv->rt, order[i], &s) < 0) {
                    cr_log(order[i]->name, "out of memory");
                    continue;
                }
            }
            sv->rt.resuming = false;
            /* After a re-exec, each service takes its state line: its container runs on. */
            bool *resumed = calloc(sv->all.n + 1, sizeof *resumed);
            size_t adopted = 0;
            for (char *line = state, *next; line && *line; line = next) {
                next = strchr(line, '\n');
                if (next)
                    *next++ = 0;
                else
                    next = line + strlen(line);
                char name[128];
                if (!cr_svc_state_name(line, name, sizeof name))
                    continue;
                struct cr_svc *s = cr_svcs_find(&sv->all, name);
                size_t k = 0;
                while (s && k < sv->all.n && sv->all.v[k] != s)
                    k++;
                if (!s || !resumed || resumed[k]) {
                    cr_svc_state_discard(&sv->rt, line);
                    if (sv->rt.net && !s)
                        cr_net_detach(sv->rt.net, name);   /* its container is gone */
                    continue;
                }
                resumed[k] = true;
                struct cr_svc_view v;
                if (cr_svc_resume(s, line) == 0 && (cr_svc_view(s, &v), v.pid > 0))
                    adopted++;
            }
            if (state) {
                cr_log(NULL, "took over %zu running container%s", adopted,
                       adopted == 1 ? "" : "s");
                sv_orphans_sweep();   /* now that the inits are known (orphans.h) */
            }
            /* supervisord's event listeners hear of every start (and of this one) */
            sv->evl = sv_evl_open(&sv->rt, cfg, sv->all.v, sv->all.n);
            sv_evl_supervisor(sv->evl, "RUNNING");
            /* Start after every service exists, lower priority first, each once its
             * dependencies are ready; after a re-exec only those that had no state. */
            for (size_t i = 0; i < sv->all.n && !sv->finished; i++) {
                if (state && resumed && resumed[i])
                    continue;
                if (state)
                    cr_svc_open_output(sv->all.v[i]);
                if (cr_svc_conf(sv->all.v[i])->autostart)
                    cr_svc_request(sv->all.v[i], CR_REQ_START);
            }
            free(resumed);
            if (!sv->rt.run_mode) {
                sv->all.again = starts_again;
                sv->all.again_arg = sv;
            }
            schedule_starts(sv);
            free(order);
            notify_status(sv);   /* nothing to start: ready at once */
            free(state);
            state = NULL;
            if (since.since_us)
                sv_resume_gap(since);
        }
    }
run:
    cr_logs_hold(false);
    uv_run(sv->rt.loop, UV_RUN_DEFAULT);
    status = sv->exit_status;

out_loop:
    if (!sv->finished)
        finish(sv, status);
    uv_run(sv->rt.loop, UV_RUN_DEFAULT);   /* the reaper's last jobs, the close callbacks */
    cr_cg_reaper_stop(sv->rt.cgroot);
    uv_run(sv->rt.loop, UV_RUN_DEFAULT);
    cr_logs_finish(2000);   /* the log lines still being written, then back to writing inline */
    if (uv_loop_close(sv->rt.loop) != 0)
        fprintf(stderr, "supervisor: warning: handles left open at exit\n");
    free(sv->rt.loop);
out:
    free(state);
    sv_run_nets_close(sv);
    cr_net_close(sv->rt.net);   /* every container is gone: the bridges and the table */
    cr_fcgi_close_all();        /* and FastCGI programs' sockets */
    free(sv->rt.run_dir);
    free(sv->rt.cgroup_root);
    free(sv->rt.cni_config_dir);
    free(sv->rt.cni_plugin_dir);
    if (sv->rt.cgroot) {
        /* Every service's cgroup is gone by now (each container's on its exit, the rest in
         * finish()): remove what is left of ours — the leaf we live in, and <root> — so a
         * clean exit leaves no cgroup behind. */
        if (cr_cg_root_leave(sv->rt.cgroot, err, sizeof err) < 0)
            fprintf(stderr, "supervisor: leaving the cgroup root: %s\n", err);
        cr_cg_root_close(sv->rt.cgroot);
    }
    if (sv->pidfile)
        cr_own_pidfile_remove(sv->pidfile);
    free(sv->pidfile);
    cr_logs_own_open(NULL, 0, 0);   /* after the last cr_log */
    cr_log_blocking();
    if (sv->rt.init_fd >= 0)
        close(sv->rt.init_fd);
    cr_seccomp_cache_free();
    if (sv->rt.devnull >= 0)
        close(sv->rt.devnull);
    free(sv->all.v);
    cr_config_free(sv->cfg);
    if (sv->cfg_heap)
        free(sv->cfg);
    mode->power = sv->power;
    free(sv);
    return status;
}
