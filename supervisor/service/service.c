/* A service's life: created with its output pipes, its log files and its timer; a new
 * config on reload; freed once settled and closed. Its state machine is fsm.c, its
 * container container.c. */
#include "service/service.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "io/logs.h"
#include "service/container.h"
#include "service/history.h"

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
    svc->restarts = conf->max_restarts > 0 ? calloc((size_t)conf->max_restarts, sizeof(int64_t))
                                           : NULL;
    svc->nrestarts = 0;
    logs_attach(svc);   /* the log keys apply live (a no-op until the pipes exist) */
}

int cr_svc_open_output(struct cr_svc *svc)
{
    struct cr_runtime *rt = svc->rt;
    int r = 0;
    if (rt->run_mode || !svc->conf)
        return 0;
    if (!svc->out_open) {
        r = cr_out_open(&svc->out, rt->loop, &rt->console, svc->name);
        svc->out_open = r == 0;
    }
    if (r == 0 && !svc->err_open && !svc->conf->redirect_stderr) {
        r = cr_out_open(&svc->err, rt->loop, &rt->console, svc->name);
        svc->err_open = r == 0;
    }
    svc->out.tap = svc->err.tap = cr_hist_line;
    svc->out.tap_arg = svc->err.tap_arg = svc;
    logs_attach(svc);
    return r;
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
        int r = cr_svc_open_output(svc);
        if (r < 0)
            cr_log(svc->name, "output pipe: %s (tried again at its start)", strerror(-r));
    }
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
    cr_container_discard(svc);
    svc->closing = 1 + svc->out_open + svc->err_open;
    uv_timer_stop(&svc->timer);
    uv_close((uv_handle_t *)&svc->timer, on_timer_closed);
    if (svc->out_open)
        cr_out_close(&svc->out, svc_part_closed, svc);
    if (svc->err_open)
        cr_out_close(&svc->err, svc_part_closed, svc);
}
