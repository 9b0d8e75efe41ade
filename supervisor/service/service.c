/* A service's life: created with its output pipes, its log files and its timer; a new
 * config on reload; freed once settled and closed. What others may ask of it (requests) and
 * read (its view). Its state machine is fsm.c, its container container.c. */
#include "service/service.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "io/logs.h"
#include "service/container.h"
#include "service/history.h"
#include "service/image.h"
#include "service/internal.h"

/* ---- requests ------------------------------------------------------------------------------ */

static void cancel_pending(struct cr_svc *svc)
{
    svc->pending = false;
    svc->blocked = false;
    svc->why[0] = 0;
}

void cr_svc_request(struct cr_svc *svc, enum cr_svc_req req)
{
    switch (req) {
    case CR_REQ_START:
        /* Up already: nothing to do. Down or going down: order.c starts it once it is
         * settled and its dependencies are ready. */
        if (svc->conf && !svc->removed &&
            (cr_svc_settled(svc) || svc->state == CR_ST_STOPPING) && !svc->pending) {
            svc->pending = true;
            svc->why[0] = 0;
        }
        break;
    case CR_REQ_STOP:
        cancel_pending(svc);
        cr_svc_event(svc, CR_EV_STOP);
        break;
    case CR_REQ_RESTART:
        cr_svc_request(svc, CR_REQ_STOP);
        cr_svc_request(svc, CR_REQ_START);
        break;
    }
}

/* ---- the view -------------------------------------------------------------------------------- */

/* BACKOFF: when the next start comes (the service's timer before a new container; init's
 * own restart of the workload otherwise). -1: none due. */
static int64_t next_try_ms(const struct cr_svc *svc)
{
    if (svc->state != CR_ST_BACKOFF)
        return -1;
    if (!svc->ct)
        return (int64_t)uv_timer_get_due_in(&svc->timer);
    if (!svc->wl.next_start_mono)
        return -1;
    uint64_t now = cr_hist_now_mono();
    return svc->wl.next_start_mono > now ? (int64_t)(svc->wl.next_start_mono - now) : 0;
}

void cr_svc_view(const struct cr_svc *svc, struct cr_svc_view *v)
{
    const struct cr_hist *h = svc->hist;
    *v = (struct cr_svc_view){
        .name = svc->name,
        .state = svc->state,
        .from_state = svc->from_state,
        .tries = svc->tries,
        .giving_up = svc->giving_up,
        .removed = svc->removed || !svc->conf,
        .pid = svc->ct ? svc->ct->pid : 0,
        .last_pid = svc->ct ? svc->ct->pid : svc->last_pid,
        .ready = svc->state == CR_ST_RUNNING || (svc->wl.ready && svc->ct),
        .healthy = svc->healthy,
        .uptime_ms = -1,
        .next_try_ms = next_try_ms(svc),
        .restarts = h ? h->restarts : 0,
        .exits = h ? h->nexits : 0,
        .oom_kills = h ? h->oom_kills : 0,
        .last_exit = cr_hist_last(h),
        .exit_status = svc->exit_status,
        .why = svc->pending ? svc->why : "",
        .start_pending = svc->pending,
        .start_blocked = svc->pending && svc->blocked,
        .status_text = svc->status_text,
        .log_dropped = (svc->out_open ? cr_out_log_dropped(&svc->out) : 0) +
                       (svc->err_open && !(svc->out_open && svc->err.file &&
                                           svc->err.file == svc->out.file)
                            ? cr_out_log_dropped(&svc->err)
                            : 0),
        .window_ms = svc->conf && svc->conf->restart_window > 0 ? svc->conf->restart_window
                                                                  : 60000,
        .hist = svc->hist,
    };
    if (svc->wl.up && svc->wl.started_mono)
        v->uptime_ms = (int64_t)(cr_hist_now_mono() - svc->wl.started_mono);
    if (h && h->reason && (svc->setup_failed || svc->state == CR_ST_FATAL))
        v->reason = h->reason;
}

int cr_svc_net(const struct cr_svc *svc, char *addr, size_t len, uint64_t *rx, uint64_t *tx)
{
    if (svc->ct && *svc->cni_addrs) {
        snprintf(addr, len, "%s", svc->cni_addrs);   /* the plugins' (no traffic figures) */
        *rx = *tx = 0;
        return 0;
    }
    if (!svc->ct || cr_net_traffic(svc->rt->net, svc->name, rx, tx) < 0)
        return -ENOENT;
    cr_net_addresses(svc->rt->net, svc->name, addr, len);
    return 0;
}

const char *cr_svc_name(const struct cr_svc *svc)
{
    return svc->name;
}

enum cr_state cr_svc_state(const struct cr_svc *svc)
{
    return svc->state;
}

const struct cr_service *cr_svc_conf(const struct cr_svc *svc)
{
    return svc->conf;
}

/* ---- life of a service -------------------------------------------------------------------- */

void cr_svc_set_conf(struct cr_svc *svc, const struct cr_service *conf)
{
    svc->conf = conf;
    svc->removed = !conf;   /* one removed while it stops may be put back by the next reload */
    if (!conf)
        return;
    svc->stopsignal = conf->stopsignal > 0 ? conf->stopsignal : SIGTERM;
    svc->stopwait_ms = conf->stopwaitsecs;
    free(svc->restarts);
    svc->restarts = conf->max_restarts > 0 ? calloc((size_t)conf->max_restarts, sizeof(int64_t))
                                           : NULL;
    svc->nrestarts = 0;
    cr_svc_logs_attach(svc);   /* the log keys apply live (a no-op until the pipes exist) */
}


int cr_svc_write_stdin(struct cr_svc *svc, const char *data, size_t len)
{
    if (!svc->ct || svc->ct->stdin_wfd < 0)
        return -EPIPE;
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(svc->ct->stdin_wfd, data + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return done ? (int)done : -errno;
        done += (size_t)n;
    }
    return (int)done;
}

void cr_svc_set_removed(struct cr_svc *svc)
{
    cancel_pending(svc);
    cr_svc_set_conf(svc, NULL);
}

int cr_svc_new(struct cr_runtime *rt, const struct cr_service *conf, struct cr_svc **out)
{
    struct cr_svc *svc = calloc(1, sizeof *svc);
    if (!svc)
        return -ENOMEM;
    svc->rt = rt;
    svc->ops = &cr_container_ops_real;
    svc->name = strdup(conf->name);
    svc->exit_status = -1;
    svc->cni_nsfd = -1;
    svc->healthy = -1;
    if (!svc->name) {
        free(svc);
        return -ENOMEM;
    }
    cr_svc_set_conf(svc, conf);
    uv_timer_init(rt->loop, &svc->timer);
    svc->timer.data = svc;
    if (!rt->run_mode && !rt->resuming) {
        int r = cr_svc_open_output(svc);
        if (r < 0)
            cr_log(svc->name, "output pipe: %s (tried again at its start)", strerror(-r));
    }
    svc->hist = cr_hist_new();
    cr_svc_taps(svc);
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
    cr_container_discard(svc);
    cr_svc_image_forget(svc);
    svc->closing = 1 + svc->out_open + svc->err_open;
    uv_timer_stop(&svc->timer);
    uv_close((uv_handle_t *)&svc->timer, on_timer_closed);
    if (svc->out_open)
        cr_out_close(&svc->out, svc_part_closed, svc);
    if (svc->err_open)
        cr_out_close(&svc->err, svc_part_closed, svc);
}
