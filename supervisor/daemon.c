/* The running supervisor: one libuv loop, the services, signals, reload, `run`. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <uv.h>

#include "daemon.h"
#include "log.h"
#include "cgroup/cgroup.h"
#include "config/config.h"
#include "config/diff.h"
#include "api/control.h"
#include "io/logs.h"
#include "api/metrics.h"
#include "service/service.h"
#include "policy/syscall_filter.h"
#include "spawn/spawn.h"


struct sv {
    struct cr_runtime rt;
    struct cr_config *cfg;
    bool cfg_heap;               /* cfg was allocated here (after a reload) */
    struct cr_svc **svcs;
    size_t n, cap;
    uv_signal_t sigs[8];
    int nsigs;
    bool shutting_down, finished;
    bool stepping, step_again;
    int exit_status;
    struct cr_svc *run_svc;
    struct cr_control *ctl;      /* the control socket (control.h); NULL when not open */
    struct cr_metrics *metrics;  /* metrics_listen's HTTP server (metrics.h); NULL: off */
    struct cr_api_host api;      /* what both act on (api/host.h) */
};

static struct sv *sv_of(struct cr_runtime *rt)
{
    return (struct sv *)rt;   /* rt is the first member */
}

static int64_t svc_priority(const struct cr_svc *svc)
{
    return svc->conf ? svc->conf->priority : 0;
}

static int add_svc(struct sv *sv, const struct cr_service *conf, struct cr_svc **out)
{
    if (sv->n == sv->cap) {
        size_t cap = sv->cap ? sv->cap * 2 : 16;
        struct cr_svc **v = realloc(sv->svcs, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        sv->svcs = v;
        sv->cap = cap;
    }
    int r = cr_svc_new(&sv->rt, conf, out);
    if (r < 0)
        return r;
    sv->svcs[sv->n++] = *out;
    return 0;
}

static struct cr_svc *find_svc(struct sv *sv, const char *name)
{
    for (size_t i = 0; i < sv->n; i++)
        if (!strcmp(sv->svcs[i]->name, name))
            return sv->svcs[i];
    return NULL;
}

/* ---- dependencies ---------------------------------------------------------------------------- */

/* a depends on b (a service removed by a reload has no config: matched by its name). */
static bool svc_depends_on(const struct cr_svc *a, const struct cr_svc *b)
{
    if (!a->conf || a == b)
        return false;
    for (size_t k = 0; k < a->conf->depends_on.n; k++) {
        const char *name = a->conf->depends_on.v[k];
        if (b->conf ? cr_service_matches(b->conf, name) : !strcmp(b->name, name))
            return true;
    }
    return false;
}

/* A dependency is met by a service that is ready (RUNNING), or that ran and exited with an
 * expected code (a one-shot job: a migration, a fetch). */
static bool dep_met(const struct cr_svc *d)
{
    if (d->state == CR_ST_RUNNING)
        return true;
    int st = d->exit_status;
    return d->state == CR_ST_EXITED && d->conf && st >= 0 && st < 128 &&
           cr_codeset_has(&d->conf->exitcodes, st);
}

/* 1: every dependency is met; 0: waiting (why says for what); -1: one is FATAL. */
static int deps_state(struct sv *sv, const struct cr_svc *s, char *why, size_t len)
{
    int r = 1;
    why[0] = 0;
    if (!s->conf || s->conf->depends_on.n == 0)
        return 1;          /* O(1) for the common case: a start pass stays O(n), not O(n^2) */
    for (size_t i = 0; i < sv->n; i++) {
        const struct cr_svc *d = sv->svcs[i];
        if (!svc_depends_on(s, d) || dep_met(d))
            continue;
        if (d->state == CR_ST_FATAL) {
            snprintf(why, len, "not started: its dependency %s is FATAL", d->name);
            return -1;
        }
        if (r == 1)
            snprintf(why, len, "waiting for %s to be ready (%s)", d->name,
                     cr_state_name(d->state));
        r = 0;
    }
    return r;
}

/* Starts every service whose start waits (start_pending) and whose dependencies are met;
 * the others keep waiting, and say why once. Runs whenever a service becomes ready or
 * settles. */
static void schedule_starts(struct sv *sv)
{
    if (sv->shutting_down || sv->finished || sv->rt.run_mode)
        return;
    /* First every start that may happen, then the reasons of those that wait (so they name
     * the state their dependencies are in after this round). */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < sv->n && !sv->finished; i++) {
            struct cr_svc *s = sv->svcs[i];
            if (!s->start_pending)
                continue;
            if (!s->conf) {
                s->start_pending = false;
                continue;
            }
            char why[sizeof s->why];
            int r = deps_state(sv, s, why, sizeof why);
            if (r > 0 && pass == 0) {
                s->start_pending = false;
                s->why[0] = 0;
                cr_svc_event(s, CR_EV_START);
            } else if (r <= 0 && pass == 1 && strcmp(why, s->why)) {
                snprintf(s->why, sizeof s->why, "%s", why);
                cr_log(s->name, "%s", why);
            }
        }
    }
}

/* Asks for a start that honours depends_on. */
static void want_start(struct sv *sv, struct cr_svc *s)
{
    s->start_pending = true;
    s->why[0] = 0;
    (void)sv;
}

static void request_start(struct cr_runtime *rt, struct cr_svc *svc)
{
    struct sv *sv = sv_of(rt);
    if (!cr_svc_settled(svc)) {
        cr_svc_event(svc, CR_EV_START);   /* STOPPING: again once down; else a no-op */
        return;
    }
    want_start(sv, svc);
    schedule_starts(sv);
}

static void on_ready(struct cr_runtime *rt, struct cr_svc *svc)
{
    (void)svc;
    schedule_starts(sv_of(rt));
}

/* Services of cfg in priority order (lower first), file order among equals. */
static int cmp_prio(const void *a, const void *b)
{
    const struct cr_service *x = *(const struct cr_service *const *)a;
    const struct cr_service *y = *(const struct cr_service *const *)b;
    if (x->priority != y->priority)
        return x->priority < y->priority ? -1 : 1;
    return x < y ? -1 : x > y;
}

static const struct cr_service **by_priority(const struct cr_config *cfg)
{
    const struct cr_service **v = calloc(cfg->nservices + 1, sizeof *v);
    if (!v)
        return NULL;
    for (size_t i = 0; i < cfg->nservices; i++)
        v[i] = &cfg->services[i];
    qsort(v, cfg->nservices, sizeof *v, cmp_prio);
    return v;
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
    cr_control_close(sv->ctl);
    sv->ctl = NULL;
    cr_metrics_close(sv->metrics);
    sv->metrics = NULL;
    for (size_t i = 0; i < sv->n; i++)
        cr_svc_free(sv->svcs[i]);
    sv->n = 0;
    for (int i = 0; i < sv->nsigs; i++)
        uv_close((uv_handle_t *)&sv->sigs[i], close_handle_cb);
    sv->nsigs = 0;
    cr_console_close(&sv->rt.console);
}

/* True when a service that depends on s is still up: s must wait for it to stop. */
/* True when some service (with a config) has depends_on: else no scan is needed. */
static bool any_depends(const struct sv *sv)
{
    for (size_t i = 0; i < sv->n; i++)
        if (sv->svcs[i]->conf && sv->svcs[i]->conf->depends_on.n)
            return true;
    return false;
}

static bool has_active_dependent(struct sv *sv, const struct cr_svc *s)
{
    for (size_t i = 0; i < sv->n; i++)
        if (!cr_svc_settled(sv->svcs[i]) && svc_depends_on(sv->svcs[i], s))
            return true;
    return false;
}

/* Stops the services in reverse dependency order, then reverse priority order: a service
 * stops only once every service depending on it is down; among those that may stop, the
 * highest priority still up is stopped first, and the next lower one only once every
 * service of that priority is down. */
static void shutdown_step(struct sv *sv)
{
    if (sv->stepping) {
        sv->step_again = true;
        return;
    }
    sv->stepping = true;
    do {
        sv->step_again = false;
        bool any = false, up = false;
        int64_t top = 0;
        /* Without depends_on a step is O(n), not O(n^2) (n steps in a shutdown). */
        bool deps = any_depends(sv);
        for (size_t i = 0; i < sv->n; i++) {
            struct cr_svc *s = sv->svcs[i];
            s->start_pending = false;     /* nothing starts any more */
            if (cr_svc_settled(s))
                continue;
            up = true;
            if (deps && has_active_dependent(sv, s))
                continue;
            if (!any || svc_priority(s) > top)
                top = svc_priority(s);
            any = true;
        }
        if (!up) {
            sv->stepping = false;
            cr_log(NULL, "all services stopped");
            finish(sv, 0);
            return;
        }
        for (size_t i = 0; i < sv->n; i++) {
            struct cr_svc *s = sv->svcs[i];
            s->want_start = false;
            if (!cr_svc_settled(s) && any && svc_priority(s) == top &&
                s->state != CR_ST_STOPPING && !(deps && has_active_dependent(sv, s)))
                cr_svc_event(s, CR_EV_STOP);
        }
    } while (sv->step_again && !sv->finished);
    sv->stepping = false;
}

static void remove_svc(struct sv *sv, struct cr_svc *svc)
{
    for (size_t i = 0; i < sv->n; i++) {
        if (sv->svcs[i] == svc) {
            memmove(&sv->svcs[i], &sv->svcs[i + 1], (sv->n - i - 1) * sizeof *sv->svcs);
            sv->n--;
            break;
        }
    }
    cr_log(svc->name, "removed");
    cr_svc_free(svc);
}

static void on_settled(struct cr_runtime *rt, struct cr_svc *svc)
{
    struct sv *sv = sv_of(rt);
    if (sv->finished)
        return;
    if (rt->run_mode) {
        int st = svc->exit_status;
        finish(sv, st >= 0 ? st : 125);
        return;
    }
    if (svc->removed && !svc->want_start) {
        remove_svc(sv, svc);
        if (!sv->shutting_down)
            return;
    }
    if (sv->shutting_down)
        shutdown_step(sv);
    else
        schedule_starts(sv);
}

/* ---- reload -------------------------------------------------------------------------------- */

static bool limits_differ(const struct cr_service *a, const struct cr_service *b)
{
    static const int keys[] = {CR_K_MEMORY_MAX, CR_K_MEMORY_HIGH, CR_K_MEMORY_SWAP_MAX,
                               CR_K_CPU_MAX, CR_K_CPU_WEIGHT, CR_K_PIDS_MAX, CR_K_IO_WEIGHT};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (cr_service_key_differs(a, b, keys[i]))
            return true;
    return false;
}

static bool svc_active(const struct cr_svc *svc)
{
    return !cr_svc_settled(svc);
}

/* Reads the config again and works out the plan (into plan, when given); with apply, acts
 * on it. `svctl check` is the same without apply. */
static int reload(struct sv *sv, const char *why, bool apply, struct cr_plan *plan)
{
    if (apply)
        cr_log(NULL, "%s: reloading %s", why, sv->cfg->path);
    struct cr_config *ncfg = calloc(1, sizeof *ncfg);
    if (!ncfg) {
        cr_log(NULL, "reload: out of memory; nothing changed");
        return -ENOMEM;
    }
    int r = cr_config_load(sv->cfg->path, NULL, ncfg);
    if (r < 0) {
        for (size_t i = 0; i < ncfg->errors.n; i++) {
            if (apply)
                cr_log(NULL, "reload: %s", ncfg->errors.v[i]);
            if (plan)
                cr_errlist_add(&plan->errors, "%s", ncfg->errors.v[i]);
        }
        if (apply)
            cr_log(NULL, "reload: %zu error%s; nothing changed", ncfg->errors.n,
                   ncfg->errors.n == 1 ? "" : "s");
        cr_config_free(ncfg);
        free(ncfg);
        return r == -ENOMEM ? -ENOMEM : -EINVAL;
    }
    for (size_t i = 0; i < ncfg->notices.n; i++) {
        if (apply)
            cr_log(NULL, "reload: notice: %s", ncfg->notices.v[i]);
        if (plan)
            cr_errlist_add(&plan->notices, "%s", ncfg->notices.v[i]);
    }
    size_t kept = 0, restarted = 0, added = 0, removed = 0;

    /* Removed services stop (in reverse priority order); the others get their new config. */
    struct cr_svc **old = calloc(sv->n + 1, sizeof *old);
    size_t nold = sv->n;
    if (!old) {
        cr_config_free(ncfg);
        free(ncfg);
        cr_log(NULL, "reload: out of memory; nothing changed");
        return -ENOMEM;
    }
    memcpy(old, sv->svcs, sv->n * sizeof *old);
    for (size_t i = 0; i < nold; i++) {
        struct cr_svc *s = old[i];
        const struct cr_service *nc = cr_config_find(ncfg, s->name);
        if (!nc) {
            removed++;
            if (plan)
                cr_plan_add(plan, s->name, CR_PLAN_STOP, s->conf, NULL);
            if (!apply)
                continue;
            s->removed = true;
            s->want_start = false;
            cr_svc_set_conf(s, NULL);
            cr_log(s->name, "removed from the configuration: stopping");
            if (cr_svc_settled(s))
                remove_svc(sv, s);
            else
                cr_svc_event(s, CR_EV_STOP);
            continue;
        }
        const struct cr_service *oc = s->conf;
        bool restart = !oc || cr_service_needs_restart(oc, nc);
        bool limits = oc && limits_differ(oc, nc);
        if (plan) {
            enum cr_plan_action a = CR_PLAN_KEEP;
            if (restart)
                a = svc_active(s) ? CR_PLAN_RESTART
                    : nc->autostart && s->state == CR_ST_STOPPED ? CR_PLAN_START
                                                                 : CR_PLAN_UPDATE;
            else if (cr_plan_differs(oc, nc))
                a = svc_active(s) ? CR_PLAN_LIVE : CR_PLAN_UPDATE;
            cr_plan_add(plan, s->name, a, oc, nc);
        }
        if (!apply)
            continue;
        cr_svc_set_conf(s, nc);
        if (restart) {
            if (svc_active(s)) {
                restarted++;
                cr_log(s->name, "configuration changed: restarting");
                cr_svc_event(s, CR_EV_STOP);
                cr_svc_event(s, CR_EV_START);   /* STOPPING: start again once down */
            } else if (nc->autostart && s->state == CR_ST_STOPPED) {
                restarted++;
                want_start(sv, s);
            } else {
                kept++;
            }
        } else {
            kept++;
            if (limits && s->ct) {
                cr_log(s->name, "applying new limits");
                cr_svc_apply_limits(s);
            }
        }
    }
    free(old);

    /* New services start in priority order. */
    const struct cr_service **order = by_priority(ncfg);
    for (size_t i = 0; order && i < ncfg->nservices; i++) {
        const struct cr_service *c = order[i];
        if (find_svc(sv, c->name))
            continue;
        if (plan)
            cr_plan_add(plan, c->name, c->autostart ? CR_PLAN_START : CR_PLAN_ADD, NULL, c);
        if (!apply)
            continue;
        struct cr_svc *s;
        if (add_svc(sv, c, &s) < 0) {
            cr_log(c->name, "out of memory");
            continue;
        }
        added++;
        cr_log(s->name, "added");
        if (c->autostart)
            want_start(sv, s);
    }
    free(order);
    if (!apply) {
        cr_config_free(ncfg);
        free(ncfg);
        return 0;
    }

    /* logfile itself needs a restart (as log_dir does); its limits apply now. */
    cr_logs_own_open(sv->cfg->global.logfile, ncfg->global.logfile_maxbytes,
                     ncfg->global.logfile_backups);
    /* Every service points into ncfg now (removed ones point nowhere). */
    cr_config_free(sv->cfg);
    if (sv->cfg_heap)
        free(sv->cfg);
    sv->cfg = ncfg;
    sv->cfg_heap = true;
    cr_log(NULL, "reloaded: %zu added, %zu removed, %zu restarted, %zu unchanged", added, removed,
           restarted, kept);
    schedule_starts(sv);          /* new and stopped services start as depends_on allows */
    return 0;
}

/* ---- signals ------------------------------------------------------------------------------- */

static void api_shutdown(struct cr_runtime *rt, const char *why);

static void on_signal(uv_signal_t *h, int signum)
{
    struct sv *sv = h->data;
    if (sv->finished)
        return;
    if (sv->rt.run_mode) {
        /* run: TERM and INT stop the service (stopsignal, then the kill after
         * stopwaitsecs); anything else goes to init as it is. */
        struct cr_svc *s = sv->run_svc;
        if (!s)
            return;
        if (signum == SIGTERM || signum == SIGINT) {
            if (s->state == CR_ST_STOPPING)
                cr_svc_signal(s, signum);
            else
                cr_svc_event(s, CR_EV_STOP);
        } else {
            cr_svc_signal(s, signum);
        }
        return;
    }
    if (signum == SIGUSR2) {
        cr_logs_rotate_all();
        return;
    }
    if (signum == SIGHUP) {
        if (!sv->shutting_down)
            reload(sv, "SIGHUP", true, NULL);
        return;
    }
    api_shutdown(&sv->rt, signum == SIGINT ? "SIGINT" : "SIGTERM");
}

/* ---- what the control socket and the metrics act on (api/host.h) --------------------------------------------- */

static size_t api_services(struct cr_runtime *rt, struct cr_svc *const **v)
{
    struct sv *sv = sv_of(rt);
    *v = sv->svcs;
    return sv->n;
}

static int api_reload(struct cr_runtime *rt, bool apply, struct cr_plan *plan)
{
    struct sv *sv = sv_of(rt);
    if (sv->shutting_down || sv->finished)
        return -ESHUTDOWN;
    return reload(sv, "svctl reload", apply, plan);
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
    cr_log(NULL, "%s: stopping all services", why);
    sv->shutting_down = true;
    sv->rt.stopping_all = true;
    shutdown_step(sv);
}

static bool api_shutting_down(struct cr_runtime *rt)
{
    struct sv *sv = sv_of(rt);
    return sv->shutting_down || sv->finished;
}

static void api_request_stop(struct cr_runtime *rt, struct cr_svc *svc)
{
    (void)rt;
    svc->want_start = false;
    cr_svc_event(svc, CR_EV_STOP);
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

/* `run NAME -- CMD ARGS`: the service's spec with another command, and no restarts. */
static int run_override(struct cr_service *svc, char **cmd, int ncmd)
{
    struct cr_spec *s = &svc->spec;
    s->autorestart = CR_RESTART_NEVER;
    s->max_restarts = 0;
    if (ncmd <= 0)
        return 0;
    for (size_t i = 0; i < s->argc; i++)
        free(s->argv[i]);
    free(s->argv);
    s->argv = NULL;
    s->argc = 0;
    free(s->exec);
    s->exec = NULL;
    for (int i = 0; i < ncmd; i++)
        if (cr_spec_add_arg(s, cmd[i]) < 0)
            return -ENOMEM;
    return 0;
}

static void usage_run(void)
{
    fprintf(stderr, "usage: supervisor [-c FILE] [run NAME [-- CMD ARGS...]]\n");
}

static int make_devnull(void)
{
    return open("/dev/null", O_RDWR | O_CLOEXEC);
}

int supervisor_run(struct cr_config *cfg, int argc, char **argv)
{
    struct sv *sv = calloc(1, sizeof *sv);
    if (!sv) {
        cr_config_free(cfg);
        fprintf(stderr, "supervisor: out of memory\n");
        return 1;
    }
    sv->cfg = cfg;
    sv->rt.init_fd = sv->rt.devnull = -1;
    sv->rt.console.fd = -1;
    sv->rt.on_settled = on_settled;
    sv->rt.on_ready = on_ready;
    sv->api = (struct cr_api_host){
        .rt = &sv->rt, .services = api_services, .reload = api_reload,
        .shutdown = api_shutdown, .shutting_down = api_shutting_down,
        .request_start = request_start, .request_stop = api_request_stop,
    };
    cr_runtime_seed(&sv->rt);
    cr_log_set_sink(cr_logs_own_write);
    int status = 1;
    char err[512];
    const char *run_name = NULL;
    if (argc > 0) {
        if (strcmp(argv[0], "run") || argc < 2) {
            fprintf(stderr, "supervisor: unexpected argument '%s'\n", argv[0]);
            usage_run();
            status = 2;
            goto out;
        }
        run_name = argv[1];
        if (argc > 2 && strcmp(argv[2], "--")) {
            fprintf(stderr, "supervisor: run %s: expected '--' before the command, got '%s'\n",
                    run_name, argv[2]);
            usage_run();
            status = 2;
            goto out;
        }
        sv->rt.run_mode = sv->rt.quiet = true;
    }
    struct cr_service *run_conf = NULL;
    if (run_name) {
        for (size_t i = 0; i < cfg->nservices; i++)
            if (!strcmp(cfg->services[i].name, run_name))
                run_conf = &cfg->services[i];
        if (!run_conf) {
            fprintf(stderr, "supervisor: %s: no service '%s'\n", cfg->path, run_name);
            goto out;
        }
        if (run_override(run_conf, argv + 3, argc > 3 ? argc - 3 : 0) < 0) {
            fprintf(stderr, "supervisor: out of memory\n");
            goto out;
        }
    }

    signal(SIGPIPE, SIG_IGN);
    /* Every service holds a few pipes and a pidfd: take the hard limit for ourselves; each
     * container gets the limit we were started with back. */
    if (getrlimit(RLIMIT_NOFILE, &sv->rt.nofile) == 0 &&
        sv->rt.nofile.rlim_cur < sv->rt.nofile.rlim_max) {
        struct rlimit raised = {sv->rt.nofile.rlim_max, sv->rt.nofile.rlim_max};
        setrlimit(RLIMIT_NOFILE, &raised);
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
    int r = run_name ? cr_cg_root_open_shared(CR_CGROUP_MOUNT, cfg->global.cgroup_root,
                                              &run_lim, &sv->rt.cgroot, err, sizeof err)
                     : cr_cg_root_open(CR_CGROUP_MOUNT, cfg->global.cgroup_root, true,
                                       &sv->rt.cgroot, err, sizeof err);
    if (r < 0) {
        fprintf(stderr, "supervisor: cgroup root '%s': %s\n", cfg->global.cgroup_root, err);
        goto out;
    }
    sv->rt.loop = malloc(sizeof *sv->rt.loop);
    if (!sv->rt.loop || uv_loop_init(sv->rt.loop) < 0) {
        free(sv->rt.loop);
        sv->rt.loop = NULL;
        fprintf(stderr, "supervisor: cannot create the event loop\n");
        goto out;
    }
    if (cr_console_open(&sv->rt.console, sv->rt.loop, STDOUT_FILENO) < 0) {
        fprintf(stderr, "supervisor: out of memory\n");
        goto out_loop;
    }

    if (run_name) {
        static const int run_sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
        if (watch_signals(sv, run_sigs, 6) < 0 || add_svc(sv, run_conf, &sv->run_svc) < 0) {
            fprintf(stderr, "supervisor: cannot set up\n");
            finish(sv, 1);
        } else {
            cr_svc_event(sv->run_svc, CR_EV_START);
        }
    } else {
        static const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR2};
        if (watch_signals(sv, sigs, 4) < 0) {
            fprintf(stderr, "supervisor: cannot watch signals\n");
            finish(sv, 1);
        } else {
            cr_logs_set_dir(cfg->global.log_dir);
            cr_logs_own_open(cfg->global.logfile, cfg->global.logfile_maxbytes,
                             cfg->global.logfile_backups);
            cr_log(NULL, "started (pid %d, %zu service%s, cgroup root %s)", (int)getpid(),
                   cfg->nservices, cfg->nservices == 1 ? "" : "s", cfg->global.cgroup_root);
            /* Neither is needed to run services: a failure is reported, not fatal. */
            if (cr_control_open(&sv->api, cfg->global.control_socket, &sv->ctl, err,
                                sizeof err) < 0)
                cr_log(NULL, "control socket %s: %s (svctl cannot reach this supervisor)",
                       cfg->global.control_socket, err);
            if (cfg->global.metrics_listen &&
                cr_metrics_open(&sv->api, cfg->global.metrics_listen, &sv->metrics, err,
                                sizeof err) < 0)
                cr_log(NULL, "metrics_listen %s: %s", cfg->global.metrics_listen, err);
            const struct cr_service **order = by_priority(cfg);
            for (size_t i = 0; order && i < cfg->nservices && !sv->finished; i++) {
                struct cr_svc *s;
                if (add_svc(sv, order[i], &s) < 0) {
                    cr_log(order[i]->name, "out of memory");
                    continue;
                }
            }
            /* Start after every service exists, lower priority first, each once its
             * dependencies are ready. */
            for (size_t i = 0; i < sv->n && !sv->finished; i++)
                if (sv->svcs[i]->conf->autostart)
                    want_start(sv, sv->svcs[i]);
            schedule_starts(sv);
            free(order);
        }
    }
    uv_run(sv->rt.loop, UV_RUN_DEFAULT);
    status = sv->exit_status;

out_loop:
    if (!sv->finished)
        finish(sv, status);
    uv_run(sv->rt.loop, UV_RUN_DEFAULT);   /* the close callbacks */
    if (uv_loop_close(sv->rt.loop) != 0)
        fprintf(stderr, "supervisor: warning: handles left open at exit\n");
    free(sv->rt.loop);
out:
    if (sv->rt.cgroot) {
        /* Every service's cgroup is gone by now (each container's on its exit, the rest in
         * finish()): remove what is left of ours — the leaf we live in, and <root> — so a
         * clean exit leaves no cgroup behind. */
        if (cr_cg_root_leave(sv->rt.cgroot, err, sizeof err) < 0)
            fprintf(stderr, "supervisor: leaving the cgroup root: %s\n", err);
        cr_cg_root_close(sv->rt.cgroot);
    }
    cr_logs_own_open(NULL, 0, 0);   /* after the last cr_log */
    if (sv->rt.init_fd >= 0)
        close(sv->rt.init_fd);
    cr_seccomp_cache_free();
    if (sv->rt.devnull >= 0)
        close(sv->rt.devnull);
    free(sv->svcs);
    cr_config_free(sv->cfg);
    if (sv->cfg_heap)
        free(sv->cfg);
    free(sv);
    return status;
}
