/* A service's container: spawns it (its cgroup, then init), reads init's events and its
 * pidfd, and reports what happened to the state machine (fsm.c) through the function it was
 * given; collects init, drains the output, removes the cgroup. The only file of service/
 * that touches cgroup/ and spawn/. */
#include "service/container.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "cgroup/cgroup.h"
#include "io/handed.h"
#include "policy/syscall_filter.h"
#include "service/fcgi.h"
#include "service/history.h"
#include "image/image.h"
#include "spawn/spawn.h"
#include "net/cni.h"

/* Connecting a bridge service's container while init waits for its go-ahead: prepared in
 * the loop, the veth pairs made on libuv's thread pool (milliseconds of the kernel's time
 * each), finished in the loop, which then lets init go (or closes the go-ahead: the child
 * exits 127 without running anything, reported as any container exit). */
struct net_work {
    uv_work_t req;
    struct cr_runtime *rt;
    struct cr_net_job *job;
    int go_fd;
    char name[64];
};

static void net_work_run(uv_work_t *req)
{
    cr_net_job_run(((struct net_work *)req)->job);
}

/* Lets init go (its network is ready): one byte on the go-ahead, which is closed. */
static void go(int go_fd)
{
    ssize_t n;
    while ((n = write(go_fd, "g", 1)) < 0 && errno == EINTR)
        ;
    close(go_fd);
}

static void net_work_done(uv_work_t *req, int status)
{
    struct net_work *w = (struct net_work *)req;
    char err[512];
    int r = cr_net_finish(w->rt->net, w->job, err, sizeof err);
    if (r == 0 && status == 0) {
        go(w->go_fd);
        free(w);
        return;
    }
    if (r != -ESRCH) {
        cr_log(w->name, "cannot connect its container to its networks: %s",
               r < 0 ? err : "cancelled");
    }
    close(w->go_fd);
    free(w);
}

static int net_connect(struct cr_svc *svc, pid_t pid, int go_fd)
{
    const struct cr_service *conf = svc->conf;
    struct cr_runtime *rt = svc->rt;
    char err[512] = "";
    /* A run: the supervisor of its root connects it, if there is one that will (if not, it
     * is done here, without a word: an older supervisor, another network) */
    int k = rt->run_mode && !rt->net && rt->keeper_connect
                ? rt->keeper_connect(rt, svc, pid, err, sizeof err) : -EAGAIN;
    if (k == 0) {
        go(go_fd);
        return 0;
    }
    if (k != -EAGAIN) {
        cr_log(svc->name, "cannot connect its container to its networks: %s", err);
        close(go_fd);
        return k;
    }
    if (rt->run_mode && !rt->net && rt->net_open && rt->net_open(rt, err, sizeof err) < 0) {
        cr_log(svc->name, "cannot connect its container to its networks: %s", err);
        close(go_fd);
        return -ENODEV;
    }
    if (!rt->net) {
        cr_log(svc->name, "cannot connect its container to its networks: no networking");
        close(go_fd);
        return -ENODEV;
    }
    struct cr_net_def defs[8];
    size_t nd = conf->nnets < 8 ? conf->nnets : 8;
    for (size_t i = 0; i < nd; i++)
        cr_network_def(conf->nets[i], &defs[i]);
    struct net_work *w = calloc(1, sizeof *w);
    /* `supervisor run` publishes no ports (the service may run beside it, holding them) */
    size_t nport = rt->run_mode ? 0 : conf->nport;
    int r = w ? cr_net_prepare(rt->net, svc->name, defs, nd, conf->port, nport, pid,
                               &w->job, err, sizeof err)
              : -ENOMEM;
    if (r == 0) {
        w->rt = rt;
        w->go_fd = go_fd;
        snprintf(w->name, sizeof w->name, "%s", svc->name);
        /* A `run` has nothing else to do meanwhile: here, without starting the thread pool's
         * four threads for one job (that cost more than the job) */
        r = rt->run_mode ? -1 : uv_queue_work(rt->loop, &w->req, net_work_run, net_work_done);
        if (r == 0)
            return 0;
        cr_net_job_run(w->job);             /* no thread pool: here, then */
        net_work_done(&w->req, 0);
        return 0;
    }
    cr_log(svc->name, "cannot connect its container to its networks: %s",
           r == -ENOMEM ? "out of memory" : err);
    free(w);
    close(go_fd);
    return r;
}

/* A bridge service's spec as init gets it (net/host.h cr_net_bind_files); a run's hosts
 * file is its own (SVC.run-PID). *copy borrows everything of spec but its binds array. */
static int net_spec(const struct cr_svc *svc, const struct cr_spec *spec, struct cr_spec *copy,
                    char paths[2][4200])
{
    /* a run's files are SVC.run-PID's whoever connects it (net/host.h, run_net.h) */
    bool run = svc->rt->run_mode;
    const char *only = !run && svc->conf->nnets == 1 ? svc->conf->nets[0]->name : NULL;
    char files[128];
    if (run)
        cr_net_run_key(svc->name, getpid(), files, sizeof files);
    else
        cr_net_files_name(svc->rt->net, svc->name, files, sizeof files);
    int r = cr_net_bind_files(svc->rt->run_dir, svc->rt->cgroup_root, files, only, spec, copy,
                              paths);
    if (r == 0 && copy->binds != spec->binds) {
        cr_net_hosts_ensure(paths[0]);
        /* a run alone writes the shared resolv.conf only when it connects its container,
         * after init's binds (a supervisor of the root wrote it at its start) */
        if (run)
            cr_net_hosts_ensure(paths[1]);
    }
    return r;
}

/* ---- network = cni:NAME: the plugins' ADD while init waits, their DEL once it is gone, both
 * on libuv's thread pool (a plugin may take seconds) ---- */
struct cni_work {
    uv_work_t req;
    struct cr_runtime *rt;
    char name[64];               /* the service's: found again when the work is done */
    pid_t pid;                   /* its container's init */
    int go_fd;                   /* ADD: the go-ahead; DEL: -1 */
    bool del;
    char conf_dir[4096], plugin_dir[4096], list[256], id[320], netns[64];
    char *result;                /* ADD's (out), DEL's prevResult (in) */
    int nsfd;                    /* the container's network namespace, held from ADD to DEL:
                                    the plugins' DEL needs it (the bridge plugin takes its
                                    masquerade rules out only there), after init is gone */
    char addrs[128];
    int r;
    char err[512];
    char state[4200];            /* STATE/cni: what a DEL needs after a kill -9 (cr_cni_record) */
    char rec_err[512];           /* why it could not be recorded ("": it was) */
    struct cr_port ports[64];    /* runtimeConfig.portMappings */
    size_t nports;
};

static struct cr_cni cni_of(struct cni_work *w)
{
    return (struct cr_cni){.conf_dir = w->conf_dir, .plugin_dir = w->plugin_dir, .name = w->list,
                           .container_id = w->id, .netns = w->netns, .ifname = "eth0",
                           .ports = w->ports, .nports = w->nports};
}

static void cni_run(uv_work_t *req)
{
    struct cni_work *w = (struct cni_work *)req;
    struct cr_cni c = cni_of(w);
    w->r = w->del ? cr_cni_del(&c, w->result, w->err, sizeof w->err)
                  : cr_cni_add(&c, &w->result, w->addrs, sizeof w->addrs, w->err, sizeof w->err);
    if (w->del)
        cr_cni_forget(w->state, w->id);
    else if (w->r == 0)
        cr_cni_record(w->state, &c, w->result, w->nsfd, w->rec_err, sizeof w->rec_err);
}

static void cni_queue(struct cni_work *w);

static void cni_done(uv_work_t *req, int status)
{
    struct cni_work *w = (struct cni_work *)req;
    if (w->del) {
        if (w->r < 0)
            cr_log(w->name, "%s", w->err);
        if (w->nsfd >= 0)
            close(w->nsfd);
        free(w->result);
        free(w);
        return;
    }
    if (w->rec_err[0])
        cr_log(w->name, "cni:%s: %s (a kill -9 of the supervisor would leave its DEL undone)",
               w->list, w->rec_err);
    w->rec_err[0] = '\0';
    struct cr_svc *svc = w->rt->find ? w->rt->find(w->rt, w->name) : NULL;
    bool here = svc && svc->ct && svc->ct->pid == w->pid && !svc->ct->exited;
    if (w->r == 0 && status == 0 && here) {
        free(svc->cni_id);
        free(svc->cni_result);
        free(svc->cni_list);
        svc->cni_list = strdup(w->list);
        svc->cni_id = strdup(w->id);
        svc->cni_nsfd = w->nsfd;
        svc->cni_result = w->result;
        snprintf(svc->cni_addrs, sizeof svc->cni_addrs, "%s", w->addrs);
        ssize_t n;
        while ((n = write(w->go_fd, "g", 1)) < 0 && errno == EINTR)
            ;
        close(w->go_fd);
        free(w);
        return;
    }
    if (w->r < 0)
        cr_log(w->name, "cannot connect its container to its network: %s", w->err);
    close(w->go_fd);   /* the child exits without running anything */
    if (w->r == 0) {
        w->del = true;   /* added for a container gone meanwhile: taken back */
        snprintf(w->netns, sizeof w->netns, "/proc/%d/fd/%d", (int)getpid(), w->nsfd);
        cni_queue(w);
        return;
    }
    if (w->nsfd >= 0)
        close(w->nsfd);
    free(w->result);
    free(w);
}

static void cni_queue(struct cni_work *w)
{
    if (uv_queue_work(w->rt->loop, &w->req, cni_run, cni_done) < 0) {
        cni_run(&w->req);   /* no thread pool: here, then */
        cni_done(&w->req, 0);
    }
}

static struct cni_work *cni_work_new(struct cr_svc *svc, pid_t pid)
{
    struct cni_work *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->rt = svc->rt;
    w->pid = pid;
    w->go_fd = -1;
    w->nsfd = -1;
    snprintf(w->name, sizeof w->name, "%s", svc->name);
    snprintf(w->conf_dir, sizeof w->conf_dir, "%s", svc->rt->cni_config_dir);
    snprintf(w->plugin_dir, sizeof w->plugin_dir, "%s", svc->rt->cni_plugin_dir);
    cr_cni_state_dir(svc->rt->run_dir, svc->rt->cgroup_root, w->state, sizeof w->state);
    w->nports = svc->conf->nport < 64 ? svc->conf->nport : 64;
    if (w->nports)
        memcpy(w->ports, svc->conf->port, w->nports * sizeof *w->ports);
    return w;
}

static int cni_connect(struct cr_svc *svc, pid_t pid, int go_fd)
{
    struct cni_work *w = cni_work_new(svc, pid);
    if (!w) {
        cr_log(svc->name, "out of memory");
        close(go_fd);
        return -ENOMEM;
    }
    w->go_fd = go_fd;
    snprintf(w->list, sizeof w->list, "%s", svc->conf->join);
    snprintf(w->netns, sizeof w->netns, "/proc/%d/ns/net", (int)pid);
    w->nsfd = open(w->netns, O_RDONLY | CR_HANDED_FD);   /* kept until the DEL */
    /* unique per container (host-local keeps its leases by it), CNI's characters only */
    int n = snprintf(w->id, sizeof w->id, "corral-%s-%s-%d", svc->rt->cgroup_root, svc->name,
                     (int)pid);
    for (int i = 0; i < n && i < (int)sizeof w->id; i++)
        if (!(isalnum((unsigned char)w->id[i]) || strchr("_.-", w->id[i])))
            w->id[i] = '-';
    cni_queue(w);
    return 0;
}

/* Its container is gone: the plugins' DEL. */
static void cni_detach(struct cr_svc *svc)
{
    if (!svc->cni_id)
        return;
    struct cni_work *w = cni_work_new(svc, 0);
    if (w) {
        w->del = true;
        snprintf(w->list, sizeof w->list, "%s", svc->cni_list ? svc->cni_list : "");
        snprintf(w->id, sizeof w->id, "%s", svc->cni_id);
        w->result = svc->cni_result;
        svc->cni_result = NULL;
        w->nsfd = svc->cni_nsfd;   /* the namespace outlives init until the DEL */
        svc->cni_nsfd = -1;
        snprintf(w->netns, sizeof w->netns, "/proc/%d/fd/%d", (int)getpid(), w->nsfd);
        if (*w->list)
            cni_queue(w);
        else
            cni_done(&w->req, 0);
    }
    free(svc->cni_id);
    free(svc->cni_result);
    free(svc->cni_list);
    svc->cni_id = svc->cni_result = svc->cni_list = NULL;
    svc->cni_addrs[0] = '\0';
}

/* Its veth pairs' host ends, removed on the thread pool (cr_net_links_del: each removal
 * waits for the kernel's RCU, ~20 ms, which the loop must not). */
struct veths_del {
    uv_work_t req;
    size_t n;
    char name[8][CR_IFNAME_MAX + 1];
};

static void veths_del_run(uv_work_t *req)
{
    struct veths_del *d = (struct veths_del *)req;
    cr_net_links_del(d->name, d->n);
}

static void veths_del_done(uv_work_t *req, int status)
{
    (void)status;
    free(req);
}

static void net_detach(struct cr_svc *svc)
{
    cni_detach(svc);
    /* also when a reload removed it (no conf any more): a no-op unless attached */
    if (!svc->rt->net)
        return;
    struct veths_del *d = calloc(1, sizeof *d);
    if (d)
        d->n = cr_net_veths(svc->rt->net, svc->name, d->name, sizeof d->name / sizeof *d->name);
    cr_net_detach(svc->rt->net, svc->name);
    if (d && d->n && uv_queue_work(svc->rt->loop, &d->req, veths_del_run, veths_del_done) == 0)
        return;
    free(d);   /* none, or no pool: they go with the namespace */
}

const struct cr_container_ops cr_container_ops_real = {
    .spawn = cr_container_spawn,
    .stop_signal = cr_container_stop_signal,
    .kill = cr_container_kill,
};

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

/* The container's dir of an image service: the parent of its spec's rootfs. */
/* A gone container's dir, removed on the thread pool (a big upper dir takes a while). */
struct rm_work {
    uv_work_t req;
    char name[64];
    char dir[4400];
    char err[4600];
    int rc;
};

static void rm_work_run(uv_work_t *req)
{
    struct rm_work *w = req->data;
    w->rc = cr_image_container_remove(w->dir, w->err, sizeof w->err);
}

static void rm_work_done(uv_work_t *req, int status)
{
    struct rm_work *w = req->data;
    if (status == 0 && w->rc < 0)
        cr_log(w->name, "%s", w->err);
    free(w);
}

/* Renames the dir out of the way now (a next container may start at once), removes it off
 * the loop (inline where the thread pool cannot take it). */
static void ct_dir_remove(const char *name, uv_loop_t *loop, const char *dir)
{
    struct rm_work *w = calloc(1, sizeof *w);
    char err[4600];
    if (!w) {
        if (cr_image_container_remove(dir, err, sizeof err) < 0)
            cr_log(name, "%s", err);
        return;
    }
    snprintf(w->name, sizeof w->name, "%s", name);
    int r = cr_image_container_retire(dir, w->dir, sizeof w->dir, w->err, sizeof w->err);
    if (r < 0) {
        if (r != -ENOENT)
            cr_log(name, "%s", w->err);
        free(w);
        return;
    }
    w->req.data = w;
    if (uv_queue_work(loop, &w->req, rm_work_run,
                      rm_work_done) < 0) {
        rm_work_run(&w->req);
        rm_work_done(&w->req, 0);
    }
}

static void ct_dir(const struct cr_service *conf, char *out, size_t len)
{
    snprintf(out, len, "%s", conf->spec.rootfs);
    char *slash = strrchr(out, '/');
    if (slash && slash != out)
        *slash = 0;
}

static uint64_t now_ms(const struct cr_svc *svc)
{
    return uv_now(svc->rt->loop);
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
    lim->confine_devices = c->confine_devices;
    lim->devices = c->dev_rules;
    lim->ndevices = c->ndev_rules;
}

static void ct_watch_closed(struct cr_watch *w)
{
    struct cr_container *ct = w->data;
    if (--ct->open_handles == 0) {
        free(ct->evpart);
        free(ct);
    }
}

void cr_container_release(struct cr_container *ct)
{
    ct->svc = NULL;
    int pidfd = ct->pidfd, ev_fd = ct->ev_fd, in = ct->stdin_wfd;
    ct->pid_watch.data = ct->ev_watch.data = ct;   /* a watch that never started, too */
    cr_watch_close(&ct->pid_watch, ct_watch_closed);   /* ct may be gone after these */
    cr_watch_close(&ct->ev_watch, ct_watch_closed);
    close(pidfd);
    close(ev_fd);
    if (in >= 0)
        close(in);
}

static void check_oom(struct cr_svc *svc, struct cr_container *ct)
{
    int64_t oom = cr_cg_oom_kills(ct->cg);
    if (oom > ct->oom_seen) {
        svc->last_oom = true;
        ct->oom_seen = oom;
    }
}

/* ---- init's events: one handler per kind of shared/events.h ---------------------------------- */

typedef void (*event_fn)(struct cr_container *ct, const struct cr_event_line *ev);

static const char *get(const struct cr_event_line *ev, const char *key)
{
    return cr_event_get(ev, key) ?: "?";
}

static void ev_started(struct cr_container *ct, const struct cr_event_line *ev)
{
    struct cr_svc *svc = ct->svc;
    if (!svc->rt->quiet)
        cr_log(svc->name, "started (pid %s in the container)", get(ev, "pid"));
    svc->healthy = -1;      /* a new workload: not checked yet */
    svc->wl = (struct cr_workload){.up = true, .started_mono = cr_hist_now_mono()};
    ct->report(svc, CR_EV_STARTED);
}

static void ev_exited(struct cr_container *ct, const struct cr_event_line *ev)
{
    struct cr_svc *svc = ct->svc;
    const char *code = cr_event_get(ev, "code"), *sig = cr_event_get(ev, "signal");
    const char *rt = cr_event_get(ev, "runtime_ms");
    svc->last_oom = false;
    if (svc->ct)
        check_oom(svc, svc->ct);
    if (!svc->rt->quiet || svc->last_oom)
        cr_log(svc->name, "exited (%s %s%s, after %s ms)", code ? "code" : "signal",
               code ? code : sig ? sig : "?", svc->last_oom ? ", OOM killed" : "",
               rt ? rt : "?");
    cr_hist_exited(svc, code, sig, rt, svc->ct ? cr_cg_memory_peak(svc->ct->cg) : -1);
    svc->wl = (struct cr_workload){0};
    svc->healthy = -1;      /* no workload, no health: not the last check's verdict */
    ct->report(svc, CR_EV_EXITED);
}

static void ev_restarting(struct cr_container *ct, const struct cr_event_line *ev)
{
    struct cr_svc *svc = ct->svc;
    if (!svc->rt->quiet)
        cr_log(svc->name, "restarting in %s ms (attempt %s)", get(ev, "delay_ms"),
               get(ev, "attempt"));
    long long delay = atoll(cr_event_get(ev, "delay_ms") ?: "0");
    svc->wl.next_start_mono = cr_hist_now_mono() + (uint64_t)(delay > 0 ? delay : 0);
    cr_hist_restart(svc);
    ct->report(svc, CR_EV_RESTARTING);
}

static void ev_gave_up(struct cr_container *ct, const struct cr_event_line *ev)
{
    struct cr_svc *svc = ct->svc;
    cr_log(svc->name, "gave up after %s restarts (code %s)", get(ev, "restarts"),
           get(ev, "code"));
    ct->report(svc, CR_EV_GAVE_UP);
}

static void ev_setup_failed(struct cr_container *ct, const struct cr_event_line *ev)
{
    struct cr_svc *svc = ct->svc;
    cr_log(svc->name, "%s failed: %s", ev->kind == CR_EVT_EXEC_FAILED ? "exec" : "setup",
           ev->reason ? ev->reason : "(no reason given)");
    cr_hist_setup_failed(svc, ev->reason);
    ct->report(svc, CR_EV_SETUP_FAILED);
}

static void ev_ready(struct cr_container *ct, const struct cr_event_line *ev)
{
    struct cr_svc *svc = ct->svc;
    if (!svc->rt->quiet)
        cr_log(svc->name, "ready (%s)", get(ev, "kind"));
    svc->wl.ready = true;
    ct->report(svc, CR_EV_READY);
}

static void ev_ready_timeout(struct cr_container *ct, const struct cr_event_line *ev)
{
    struct cr_svc *svc = ct->svc;
    cr_log(svc->name, "not ready within %s ms (ready = %s): a failed start",
           get(ev, "timeout_ms"), get(ev, "kind"));
}

static void ev_status(struct cr_container *ct, const struct cr_event_line *ev)
{
    struct cr_svc *svc = ct->svc;
    snprintf(svc->status_text, sizeof svc->status_text, "%s", ev->reason ? ev->reason : "");
    if (!svc->rt->quiet)
        cr_log(svc->name, "status: %s", svc->status_text);
}

static void ev_healthy(struct cr_container *ct, const struct cr_event_line *ev)
{
    struct cr_svc *svc = ct->svc;
    svc->healthy = 1;
    cr_log(svc->name, "healthy");
}

static void ev_unhealthy(struct cr_container *ct, const struct cr_event_line *ev)
{
    struct cr_svc *svc = ct->svc;
    const char *action = cr_event_get(ev, "action") ?: "none";
    svc->healthy = 0;
    svc->health_stop = !strcmp(action, "stop");
    cr_log(svc->name, "unhealthy after %s failed checks (%s); health_action = %s",
           get(ev, "failures"), ev->reason ? ev->reason : "no reason given", action);
}

static const event_fn on_event[CR_EVT_N] = {
    [CR_EVT_STARTED] = ev_started,           [CR_EVT_EXITED] = ev_exited,
    [CR_EVT_RESTARTING] = ev_restarting,     [CR_EVT_GAVE_UP] = ev_gave_up,
    [CR_EVT_READY] = ev_ready,               [CR_EVT_READY_TIMEOUT] = ev_ready_timeout,
    [CR_EVT_STATUS] = ev_status,             [CR_EVT_HEALTHY] = ev_healthy,
    [CR_EVT_UNHEALTHY] = ev_unhealthy,       [CR_EVT_SETUP_FAILED] = ev_setup_failed,
    [CR_EVT_EXEC_FAILED] = ev_setup_failed,
};

/* One line from init: a kind this version does not know is ignored (events.h). */
static void handle_event_line(struct cr_container *ct, char *line)
{
    struct cr_event_line ev;
    if (cr_event_parse(line, &ev) < 0 || ev.kind < 0 || !on_event[ev.kind])
        return;
    on_event[ev.kind](ct, &ev);
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
                handle_event_line(ct, buf + start);
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

static void on_events(struct cr_watch *w, int events)
{
    (void)events;
    struct cr_container *ct = w->data;
    /* At end of file the pipe stays readable: stop watching it, or the loop would spin
     * until the pidfd says init is gone (its namespaces' teardown comes first). */
    if (ct_read_events(ct))
        cr_watch_stop(w);
}

/* The reaper removed a container's cgroup (arg: the service's name, malloc'd). */
static void on_cgroup_gone(void *arg, int rc, const char *err)
{
    if (rc < 0)
        cr_log(arg, "%s", err ? err : strerror(-rc));
    free(arg);
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
    cr_hist_container_exit(svc, cr_cg_memory_peak(ct->cg), si.si_code, si.si_status,
                           now_ms(svc) - ct->spawned_ms, oom);
    svc->wl = (struct cr_workload){0};   /* no container, no workload */
    svc->healthy = -1;                   /* ... and no health */
    /* With a PID namespace nothing is left once init is gone; without one, orphans may be.
     * Whatever is left is killed and the cgroup removed on the reaper's timer (cgroup.h):
     * the loop goes on meanwhile, and many containers gone at once are one batch. */
    cr_cg_destroy_async(ct->cg, on_cgroup_gone, strdup(svc->name));
    ct->cg = NULL;
    net_detach(svc);
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
    /* What the container wrote goes with it, unless rootfs_persist (not for `run`: its
     * containers/run-NAME-PID is never used again). */
    if (svc->conf && svc->conf->image && (!svc->conf->rootfs_persist || svc->rt->run_mode)) {
        char dir[4096];
        ct_dir(svc->conf, dir, sizeof dir);
        ct_dir_remove(svc->name, svc->rt->loop, dir);
    }
    cr_container_report report = ct->report;
    cr_container_release(ct);
    report(svc, CR_EV_INIT_EXITED);
}

static void on_pidfd(struct cr_watch *w, int events)
{
    (void)events;
    struct cr_container *ct = w->data;
    if (ct->svc && !ct->exited)
        ct_exited(ct);
}

/* An image service's root: every layer there (unpacked before the start: image.c), a fresh
 * upper dir unless rootfs_persist; its volumes there (made then too). */
static int image_root(struct cr_svc *svc)
{
    const struct cr_service *conf = svc->conf;
    char err[1200], dir[4096];
    if (svc->image_err[0]) {
        cr_log(svc->name, "cannot start its container: %s%s", conf->image ? "image " : "",
               svc->image_err);
        return -EIO;
    }
    for (size_t i = 0; conf->img && i < conf->img->nlayers; i++)
        if (!cr_image_layer_present(conf->image_store, &conf->img->layers[i])) {
            cr_log(svc->name, "cannot start its container: image %s: layer %s is not in %s "
                   "(removed since?); a new start unpacks it", conf->image,
                   conf->img->layers[i].digest, conf->image_store);
            return -ENOENT;
        }
    for (size_t i = 0; i < conf->volume.n; i++) {
        char name[128];
        cr_volume_name(conf->volume.v[i], name, sizeof name);
        if (!cr_image_volume_present(conf->image_store, name)) {
            cr_log(svc->name, "cannot start its container: volume %s is not in %s (removed "
                   "since?); a new start makes it", name, conf->image_store);
            return -ENOENT;
        }
    }
    if (!conf->image)
        return 0;
    ct_dir(conf, dir, sizeof dir);
    bool userns = conf->namespaces & CR_NS_USER;
    int r = cr_image_container_dirs(dir, !conf->rootfs_persist,
                                    userns ? cr_image_map_id(conf->uid_map_text, 0) : -1,
                                    userns ? cr_image_map_id(conf->gid_map_text, 0) : -1, err,
                                    sizeof err);
    if (r < 0)
        cr_log(svc->name, "cannot start its container: %s", err);
    return r;
}

/* The container's two fds on the loop: its init's exit (pidfd) and its events. */
static void watch(struct cr_runtime *rt, struct cr_svc *svc, struct cr_container *ct,
                  bool adopted)
{
    ct->open_handles = 2;
    int r = cr_watch_start(rt->loop, &ct->ev_watch, ct->ev_fd, UV_READABLE, on_events, ct,
                           adopted);
    if (r == 0)
        r = cr_watch_start(rt->loop, &ct->pid_watch, ct->pidfd, UV_READABLE, on_pidfd, ct,
                           adopted);
    if (r < 0)   /* its exit goes unseen until the loop can watch it: said, not hidden */
        cr_log(svc->name, "cannot watch its container's init (pid %d): %s", (int)ct->pid,
               strerror(-r));
    svc->ct = ct;
}

int cr_container_spawn(struct cr_svc *svc, cr_container_report report)
{
    struct cr_runtime *rt = svc->rt;
    const struct cr_service *conf = svc->conf;
    char err[512], leaf[96];
    if (rt->run_mode)
        snprintf(leaf, sizeof leaf, "run-%s-%d", svc->name, (int)getpid());
    else
        snprintf(leaf, sizeof leaf, "svc-%s", svc->name);
    /* Its output pipes, if they could not be made before (out of fds): no container
     * without them. */
    int r = cr_svc_open_output(svc);
    if (r < 0) {
        cr_log(svc->name, "cannot start its container: output pipe: %s", strerror(-r));
        return r;
    }
    if ((conf->image || conf->volume.n) && (r = image_root(svc)) < 0)
        return r;
    /* FastCGI: the program's listener, made at the first start (kept: not ours to close) */
    int fcgi_fd = conf->fcgi ? cr_fcgi_socket(conf, err, sizeof err) : -1;
    if (conf->fcgi && fcgi_fd < 0) {
        cr_log(svc->name, "cannot start: %s", err);
        return fcgi_fd;
    }
    struct cr_cg_limits lim;
    cr_svc_limits(conf, &lim);
    struct cr_cg *cg = NULL;
    r = cr_cg_create(rt->cgroot, leaf, &lim, &cg, err, sizeof err);
    if (r < 0) {
        cr_log(svc->name, "cannot create its cgroup: %s", err);
        return r;
    }
    int ev[2], in[2] = {-1, -1};
    if (pipe2(ev, CR_HANDED_FD) < 0) {   /* ev[0] outlives a re-exec */
        r = -errno;
        cr_log(svc->name, "pipe: %s", strerror(-r));
        cr_cg_destroy(cg, err, sizeof err);
        return r;
    }
    fcntl(ev[0], F_SETFL, fcntl(ev[0], F_GETFL) | O_NONBLOCK);
    struct cr_spec netspec;
    char netpaths[2][4200];
    bool bridge = conf->net_mode == CR_NETMODE_BRIDGE, cni = conf->net_mode == CR_NETMODE_CNI;
    if (bridge && net_spec(svc, &conf->spec, &netspec, netpaths) < 0) {
        cr_log(svc->name, "out of memory");
        close(ev[0]);
        close(ev[1]);
        cr_cg_destroy(cg, err, sizeof err);
        return -ENOMEM;
    }
    /* network = service:OTHER: OTHER's namespace, from its running container's init */
    int join_fd = -1;
    if (conf->net_mode == CR_NETMODE_SERVICE) {
        struct cr_svc *o = rt->find ? rt->find(rt, conf->join) : NULL;
        char path[64];
        if (o && o->ct && !o->ct->exited) {
            snprintf(path, sizeof path, "/proc/%d/ns/net", (int)o->ct->pid);
            join_fd = open(path, O_RDONLY | O_CLOEXEC);
        }
        if (join_fd < 0) {
            cr_log(svc->name, "cannot start its container: network = service:%s: %s has no "
                   "container running", conf->join, conf->join);
            close(ev[0]);
            close(ev[1]);
            cr_cg_destroy(cg, err, sizeof err);
            return -ESRCH;
        }
    }
    /* A run: its container's namespace is the one the run made ahead (run_net.h), without
     * a user namespace (which must own it) */
    bool none = conf->net_mode == CR_NETMODE_NONE && conf->spec.namespaces & CR_NS_NET;
    struct cr_spec nonespec;
    rt->netns_inherited = rt->run_mode && (bridge || none) && rt->netns_settle &&
                          !(conf->spec.namespaces & CR_NS_USER) && rt->netns_settle(rt, bridge);
    if (none && rt->netns_inherited) {
        nonespec = conf->spec;
        nonespec.namespaces &= ~(unsigned)CR_NS_NET;   /* init makes none of its own */
    }
    struct cr_spawn_req req = {
        .join_netns_fd = join_fd,
        .spec = bridge ? &netspec : none && rt->netns_inherited ? &nonespec : &conf->spec,
        .init_fd = rt->init_fd,
        .cg = cg,
        .events_fd = ev[1],
        .nofile = &rt->nofile,
        .own_pgrp = !rt->run_mode,
        .uid_map = conf->uid_map_text,
        .gid_map = conf->gid_map_text,
        .seccomp_fd = -1,
        .new_netns = (bridge && !rt->netns_inherited) || cni,
        .defer_go = bridge || cni,
    };
    if (conf->spec.seccomp_fd >= 0) {
        req.seccomp_fd = cr_seccomp_fd(conf->seccomp, conf->spec.caps, err, sizeof err);
        if (req.seccomp_fd < 0) {
            r = req.seccomp_fd;
            cr_log(svc->name, "cannot start its container: %s", err);
            if (bridge && netspec.binds != conf->spec.binds)
                free(netspec.binds);
            if (join_fd >= 0)
                close(join_fd);
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
        /* stdin = pipe: as supervisord, a pipe whose write end the supervisor holds (a
         * program reading stdin waits instead of seeing EOF) */
        req.stdio[0] = rt->devnull;
        if (conf->stdin_mode && !strcmp(conf->stdin_mode, "pipe")) {
            if (pipe2(in, CR_HANDED_FD) < 0) {   /* in[1] outlives a re-exec */
                r = -errno;
                cr_log(svc->name, "pipe: %s", strerror(-r));
                close(ev[0]);
                close(ev[1]);
                cr_cg_destroy(cg, err, sizeof err);
                return r;
            }
            req.stdio[0] = in[0];
            /* our end never blocks the loop (an event listener's events are written there) */
            fcntl(in[1], F_SETFL, O_NONBLOCK);
        }
        req.stdio[1] = svc->out.wfd;
        req.stdio[2] = svc->err_open ? svc->err.wfd : svc->out.wfd;
    }
    if (fcgi_fd >= 0)
        req.stdio[0] = fcgi_fd;   /* supervisord's FastCGI: stdin is the shared listener */
    struct cr_spawned sp;
    r = cr_spawn(&req, &sp, err, sizeof err);
    close(ev[1]);
    if (join_fd >= 0)
        close(join_fd);
    if (bridge && netspec.binds != conf->spec.binds)
        free(netspec.binds);
    if (in[0] >= 0)
        close(in[0]);
    if (r < 0) {
        cr_log(svc->name, "cannot start its container: %s", err);
        if (in[1] >= 0)
            close(in[1]);
        close(ev[0]);
        cr_cg_destroy(cg, err, sizeof err);
        return r;
    }
    if (sp.rootfs_plain && !svc->said_rootfs_plain) {
        cr_log(svc->name, "rootfs %s: not idmapped (its filesystem has no idmapped mounts): "
               "host root's files are nobody's inside", conf->spec.rootfs);
        svc->said_rootfs_plain = true;
    }
    struct cr_container *ct = calloc(1, sizeof *ct);
    if (!ct) {
        /* Without memory we cannot watch it: take it down again. */
        cr_pidfd_signal(sp.pidfd, SIGKILL);
        if (sp.go_fd >= 0)
            close(sp.go_fd);
        if (in[1] >= 0)
            close(in[1]);
        siginfo_t si;
        waitid((idtype_t)P_PIDFD, (id_t)sp.pidfd, &si, WEXITED);
        close(sp.pidfd);
        close(ev[0]);
        cr_cg_destroy(cg, err, sizeof err);
        cr_log(svc->name, "out of memory");
        return -ENOMEM;
    }
    fcntl(sp.pidfd, F_SETFD, 0);   /* the kernel makes it close-on-exec: CR_HANDED_FD */
    ct->svc = svc;
    ct->report = report;
    ct->pid = sp.pid;
    ct->pidfd = sp.pidfd;
    ct->ev_fd = ev[0];
    ct->stdin_wfd = in[1];
    ct->cg = cg;
    ct->spawned_ms = now_ms(svc);
    /* A cgroup made now has counted nothing; a re-used leftover may have. */
    int64_t oom = cr_cg_is_fresh(cg) ? 0 : cr_cg_oom_kills(cg);
    ct->oom_seen = oom > 0 ? oom : 0;
    watch(rt, svc, ct, false);
    /* A failure here closes the go-ahead: the child exits, seen as the container's exit. */
    if (sp.go_fd >= 0 && cni)
        cni_connect(svc, sp.pid, sp.go_fd);
    else if (sp.go_fd >= 0)
        net_connect(svc, sp.pid, sp.go_fd);
    if (!rt->quiet)
        cr_log(svc->name, "container started (init pid %d, cgroup %s%s)", (int)sp.pid,
               cr_cg_path(cg), sp.into_cgroup ? ", born in it" : "");
    return 0;
}

int cr_container_adopt(struct cr_svc *svc, cr_container_report report, pid_t pid, int pidfd,
                       int ev_fd, int64_t oom_seen)
{
    struct cr_runtime *rt = svc->rt;
    char err[512], leaf[96];
    snprintf(leaf, sizeof leaf, "svc-%s", svc->name);
    struct cr_cg_limits lim;
    cr_svc_limits(svc->conf, &lim);
    struct cr_cg *cg = NULL;
    int r = cr_cg_adopt(rt->cgroot, leaf, &lim, pid, &cg, err, sizeof err);
    if (r < 0) {
        cr_log(svc->name, "cannot adopt its container's cgroup: %s", err);
        return r;
    }
    struct cr_container *ct = calloc(1, sizeof *ct);
    if (!ct) {
        cr_cg_destroy(cg, err, sizeof err);
        return -ENOMEM;
    }
    /* O_NONBLOCK (a file status flag) went through the execve; no close-on-exec, as when
     * they were made (io/handed.h) */
    ct->svc = svc;
    ct->report = report;
    ct->pid = pid;
    ct->pidfd = pidfd;
    ct->ev_fd = ev_fd;
    ct->stdin_wfd = -1;   /* resume: cr_svc_resume() gives the one handed over */
    ct->cg = cg;
    ct->spawned_ms = now_ms(svc);
    int64_t oom = oom_seen >= 0 ? oom_seen : cr_cg_oom_kills(cg);
    ct->oom_seen = oom > 0 ? oom : 0;
    /* What init said while no supervisor listened waits in the pipe: read on the first turn
     * of the loop, like any event. */
    watch(rt, svc, ct, true);
    return 0;
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

void cr_svc_stats(const struct cr_svc *svc, struct cr_cg_stats *st)
{
    *st = (struct cr_cg_stats){-1, -1, -1, -1, -1};
    if (svc->ct && svc->ct->cg)
        cr_cg_stats(svc->ct->cg, st);
}

int cr_svc_signal(struct cr_svc *svc, int sig)
{
    if (!svc->ct)
        return -ESRCH;
    return cr_pidfd_signal(svc->ct->pidfd, sig);
}

void cr_container_discard(struct cr_svc *svc)
{
    struct cr_container *ct = svc->ct;
    if (!ct)
        return;
    char err[256];
    cr_pidfd_signal(ct->pidfd, SIGKILL);
    /* libuv's poll made the pidfd non-blocking: waitid would not wait for the exit. */
    fcntl(ct->pidfd, F_SETFL, fcntl(ct->pidfd, F_GETFL) & ~O_NONBLOCK);
    siginfo_t si;
    waitid((idtype_t)P_PIDFD, (id_t)ct->pidfd, &si, WEXITED);
    if (ct->cg)
        cr_cg_destroy(ct->cg, err, sizeof err);
    net_detach(svc);
    svc->ct = NULL;
    cr_container_release(ct);
}

int cr_container_stop_signal(struct cr_svc *svc, int sig)
{
    return cr_pidfd_signal(svc->ct->pidfd, sig);
}

/* The stop timeout's kill is over (the cgroup is empty, or the reaper gave up). arg: the
 * container, alive until its cgroup is handed to cr_cg_destroy_async(), which takes the job
 * over (then this is not called). */
static void on_killed(void *arg, int rc, const char *err)
{
    struct cr_container *ct = arg;
    if (rc < 0 && ct->svc) {
        cr_log(ct->svc->name, "%s", err ? err : strerror(-rc));
        cr_pidfd_signal(ct->pidfd, SIGKILL);
    }
}

void cr_container_kill(struct cr_svc *svc)
{
    /* On the reaper's timer: every service whose stopwaitsecs ends in this turn of the loop
     * is killed in the same batch, none waits for another. */
    cr_cg_kill_async(svc->ct->cg, on_killed, svc->ct);
}
