/* A service's output: its two pipes' streams (io/output.c), their taps (the crash history,
 * supervisord's PROCESS_LOG events) and their log files (io/logs.c takes the streams). */
#include <stdio.h>
#include <string.h>

#include "io/logs.h"
#include "service/history.h"
#include "service/internal.h"

/* supervisord's stdout_logfile = /dev/stdout (or /dev/stderr): the supervisor's own
 * stdout or stderr, written once, as the lines are; not a file opened again. */
static struct cr_console *own_stdio(struct cr_runtime *rt, const char *path)
{
    static const char *const out[] = {"/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"};
    static const char *const err[] = {"/dev/stderr", "/dev/fd/2", "/proc/self/fd/2"};
    for (size_t i = 0; path && i < 3; i++) {
        if (!strcmp(path, out[i]))
            return &rt->console;
        if (!strcmp(path, err[i]))
            return &rt->console_err;
    }
    return NULL;
}

static void logs_attach_one(struct cr_svc *svc, struct cr_out_stream *s, const char *spec,
                            const char *kind, int64_t maxbytes, int64_t backups)
{
    s->direct = own_stdio(svc->rt, spec);
    cr_out_attach_log(s, svc->name, s->direct ? "NONE" : spec, kind, maxbytes, backups,
                   svc->conf->log_timestamps);
}

void cr_svc_logs_attach(struct cr_svc *svc)
{
    const struct cr_service *c = svc->conf;
    if (!c)
        return;   /* removed by a reload: keeps its files until it is freed */
    if (svc->out_open)
        logs_attach_one(svc, &svc->out, c->stdout_logfile, "out", c->stdout_logfile_maxbytes,
                        c->stdout_logfile_backups);
    if (svc->err_open)
        logs_attach_one(svc, &svc->err, c->stderr_logfile, "err", c->stderr_logfile_maxbytes,
                        c->stderr_logfile_backups);
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

/* Its output: to the crash history's ring, and to the owner's on_output when the config
 * asks for supervisord's PROCESS_LOG events (an event listener's own stdout is its protocol). */
static void out_tap(void *arg, const char *lines, size_t len)
{
    struct cr_svc *svc = arg;
    cr_hist_line(svc, lines, len);
    if (svc->rt->on_output && svc->conf && svc->conf->stdout_events_enabled &&
        !svc->conf->listener)
        svc->rt->on_output(svc->rt, svc, CR_LOG_STDOUT, lines, len);
}

static void err_tap(void *arg, const char *lines, size_t len)
{
    struct cr_svc *svc = arg;
    cr_hist_line(svc, lines, len);
    if (svc->rt->on_output && svc->conf && svc->conf->stderr_events_enabled)
        svc->rt->on_output(svc->rt, svc, CR_LOG_STDERR, lines, len);
}

/* Its output streams' taps (out_tap, err_tap). */
void cr_svc_taps(struct cr_svc *svc)
{
    svc->out.tap = out_tap;
    svc->err.tap = err_tap;
    svc->out.tap_arg = svc->err.tap_arg = svc;
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
    cr_svc_taps(svc);
    svc->out.raw = svc->out_raw;
    svc->out.raw_arg = svc->out_raw_arg;
    cr_svc_logs_attach(svc);
    return r;
}

void cr_svc_set_stdout_raw(struct cr_svc *svc, void (*fn)(void *arg, const char *data,
                                                         size_t len), void *arg)
{
    svc->out_raw = svc->out.raw = fn;
    svc->out_raw_arg = svc->out.raw_arg = arg;
}
