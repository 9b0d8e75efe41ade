/* Live re-exec, the service's part (service.h): its state as one line of text across execve,
 * and the fds that line names kept open through it. The daemon collects the lines into the
 * state memfd; the supervisor after the execve gives each line back to the service of that
 * name, which adopts its pipes and its running container instead of starting one. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "net/cni.h"
#include "cgroup/cgroup.h"
#include "service/container.h"
#include "service/history.h"
#include "service/internal.h"
#include "service/state_line.h"
#include "spawn/spawn.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

bool cr_svc_handover_ok(const struct cr_svc *svc, char *why, size_t whylen)
{
    const char *no = NULL;
    if (svc->pending)
        no = "waits to start";
    else if (uv_is_active((const uv_handle_t *)&svc->timer))
        no = "has a deadline pending";
    else if (svc->ct && (svc->state != CR_ST_RUNNING || !svc->wl.up))
        no = "is between states";
    else if (svc->ct && svc->ct->evlen)
        no = "has half an event line from its init";
    else if (!svc->ct && !cr_svc_settled(svc))
        no = "is between states";
    if (!no && svc->conf && svc->conf->fcgi && svc->ct) {
        snprintf(why, whylen, "%s is a FastCGI program, whose socket a re-exec does not hand "
                 "over yet: stop it first", svc->name);
        return false;
    }
    if (no) {
        snprintf(why, whylen, "%s is %s and %s: try again when it settles", svc->name,
                 cr_state_name(svc->state), no);
        return false;
    }
    return true;
}

/* The fds handed over (pipes, pidfd, events pipe, a CNI container's namespace for its DEL)
 * were made without close-on-exec (io/handed.h): the execve keeps them as they are. Every
 * one is in the watch set when the new program takes it (io/watch.h): a stream held for its
 * log file is read again first. */
static void registered_all(struct cr_svc *svc)
{
    if (svc->out_open)
        cr_out_unwait(&svc->out);
    if (svc->err_open)
        cr_out_unwait(&svc->err);
}

/* " key=HEX" of a stream's partial line ("-" for none). */
static void put_partial(struct cr_sl_out *o, const char *key, bool open,
                        const struct cr_out_stream *s)
{
    const char *p = NULL;
    size_t k = open ? cr_out_partial(s, &p) : 0;
    cr_sl_key(o, key);
    if (k)
        cr_sl_hex(o, p, k);
    else
        cr_sl_raw(o, "-", 1);
}

_Static_assert(CR_SVC_STATE_MAX >= 4 * CR_OUT_PART_MAX + CR_HIST_STATE_MAX + 2048,
               "a service's state line holds its partial lines and its crash history");

/* The restart counters and window, health and STATUS= as " key=value". */
static void put_counters(const struct cr_svc *svc, struct cr_sl_out *o)
{
    unsigned max = svc->conf && svc->restarts && svc->conf->max_restarts > 0
                       ? (unsigned)svc->conf->max_restarts : 0;
    cr_sl_ufield(o, "attempt", svc->attempt);
    cr_sl_ufield(o, "failed", svc->failed_starts);
    cr_sl_field(o, "healthy", svc->healthy);
    cr_sl_field(o, "hstop", svc->health_stop);
    cr_sl_field(o, "lastoom", svc->last_oom);
    cr_sl_ufield(o, "ran", svc->ran_ms);
    cr_sl_field(o, "gaveup", svc->gave_up);
    cr_sl_ufield(o, "rwin", max);
    cr_sl_raw(o, ":", 1);
    cr_sl_u64(o, svc->nrestarts);
    cr_sl_raw(o, ":", 1);
    for (unsigned i = 0; i < max; i++) {
        if (i)
            cr_sl_raw(o, ",", 1);
        cr_sl_i64(o, svc->restarts[i]);
    }
    cr_sl_key(o, "stext");
    cr_sl_hex(o, svc->status_text, strlen(svc->status_text));
}

/* put_counters() read back; a line without them leaves the service as made. */
static void take_counters(struct cr_svc *svc, struct cr_sl_in *in)
{
    int64_t v;
    if (!cr_sl_int(in, "attempt", &v))
        return;
    svc->attempt = (unsigned)v;
    if (cr_sl_int(in, "failed", &v))
        svc->failed_starts = (unsigned)v;
    if (cr_sl_int(in, "healthy", &v))
        svc->healthy = (int)v;
    if (cr_sl_int(in, "hstop", &v))
        svc->health_stop = (int)v;
    if (cr_sl_int(in, "lastoom", &v))
        svc->last_oom = (int)v;
    if (cr_sl_int(in, "ran", &v))
        svc->ran_ms = (uint64_t)v;
    if (cr_sl_int(in, "gaveup", &v))
        svc->gave_up = (int)v;
    /* The window goes on only with the same max_restarts (a reload starts it anew too). */
    size_t len;
    const char *p = cr_sl_get(in, "rwin", &len), *end = p ? p + len : NULL;
    int64_t max, count;
    if (p && cr_sl_num(&p, end, &max) && cr_sl_skip(&p, end, ':') &&
        cr_sl_num(&p, end, &count) && cr_sl_skip(&p, end, ':') && svc->conf && svc->restarts &&
        max >= 0 && max == svc->conf->max_restarts) {
        for (int64_t i = 0; i < max; i++) {
            int64_t t = 0;
            cr_sl_num(&p, end, &t);
            svc->restarts[i] = t;
            cr_sl_skip(&p, end, ',');
        }
        svc->nrestarts = (unsigned)count;
    }
    if ((p = cr_sl_get(in, "stext", &len))) {
        size_t k = cr_sl_unhex(p, len, svc->status_text, sizeof svc->status_text - 1);
        svc->status_text[k] = 0;
    }
}

int cr_svc_handover(struct cr_svc *svc, char *buf, size_t len)
{
    /* Nothing more is read from the output pipes (the loop does not run again before the
     * execve): the bytes in them are the next program's to read, in order. */
    const struct cr_container *ct = svc->ct;
    struct cr_sl_out o = {buf, len, 0, false};
    cr_sl_str(&o, "svc ");
    cr_sl_str(&o, svc->name);
    cr_sl_raw(&o, " ", 1);
    cr_sl_str(&o, cr_state_name(svc->state));
    cr_sl_field(&o, "pid", ct ? ct->pid : 0);
    cr_sl_field(&o, "pidfd", ct ? ct->pidfd : -1);
    cr_sl_field(&o, "ev", ct ? ct->ev_fd : -1);
    cr_sl_field(&o, "out", svc->out_open ? svc->out.rfd : -1);
    cr_sl_raw(&o, ",", 1);
    cr_sl_i64(&o, svc->out_open ? svc->out.wfd : -1);
    cr_sl_field(&o, "err", svc->err_open ? svc->err.rfd : -1);
    cr_sl_raw(&o, ",", 1);
    cr_sl_i64(&o, svc->err_open ? svc->err.wfd : -1);
    cr_sl_field(&o, "up", svc->wl.up);
    cr_sl_field(&o, "ready", svc->wl.ready);
    cr_sl_ufield(&o, "started", svc->wl.started_mono);
    cr_sl_ufield(&o, "spawned", ct ? ct->spawned_ms : 0);
    cr_sl_field(&o, "status", svc->exit_status);
    /* The OOM kills already counted: one during the gap is then still reported, and the
     * next program reads no memory.events to resume. */
    if (ct)
        cr_sl_field(&o, "oom", ct->oom_seen);
    /* stdin = pipe: its write end (an event listener's events come there) */
    if (ct && ct->stdin_wfd >= 0)
        cr_sl_field(&o, "in", ct->stdin_wfd);
    /* network = cni:NAME: its namespace's fd and its CNI id; the list and the ADD result
     * are in the DEL record (net/cni.h), which the next program reads back */
    if (ct && svc->cni_id) {
        cr_sl_field(&o, "cni", svc->cni_nsfd);
        cr_sl_raw(&o, ":", 1);
        cr_sl_str(&o, svc->cni_id);
    }
    put_partial(&o, "outpart", svc->out_open, &svc->out);
    put_partial(&o, "errpart", svc->err_open, &svc->err);
    if (o.full)
        return -ENOSPC;
    /* What makes its next restart decision and its status: counted on, not from zero */
    size_t before = o.n;
    put_counters(svc, &o);
    cr_hist_put(svc->hist, &o);
    if (o.full) {
        cr_log(svc->name, "reexec: its crash history does not fit in the state: it starts "
               "anew");
        cr_sl_rewind(&o, before);
    }
    cr_sl_raw(&o, "\n", 1);
    int n = cr_sl_end(&o);
    if (n < 0)
        return -ENOSPC;
    registered_all(svc);
    return n;
}

bool cr_svc_state_name(const char *line, char *name, size_t len)
{
    struct cr_sl_in in;
    if (!cr_sl_index(&in, line) || in.name_len >= len || in.name_len > 127)
        return false;
    memcpy(name, in.name, in.name_len);
    name[in.name_len] = 0;
    return true;
}

/* " cni=FD:ID" of a state line: the fd (-1 when absent) and the id into id. */
static int state_cni(struct cr_sl_in *in, char *id, size_t len)
{
    size_t n;
    const char *p = cr_sl_get(in, "cni", &n), *end = p ? p + n : NULL;
    int64_t fd;
    if (!p || !cr_sl_num(&p, end, &fd) || !cr_sl_skip(&p, end, ':') || p == end ||
        (size_t)(end - p) >= len || (size_t)(end - p) >= 320 || fd < 0 || fd > INT32_MAX)
        return -1;
    memcpy(id, p, (size_t)(end - p));
    id[end - p] = 0;
    return (int)fd;
}

bool cr_svc_state_cni(const char *line, char *id, size_t len)
{
    struct cr_sl_in in;
    return cr_sl_index(&in, line) && state_cni(&in, id, len) >= 0;
}

/* The CNI attachment a resumed container had: its DEL stays this program's to run. */
static void take_cni(struct cr_svc *svc, struct cr_sl_in *in)
{
    char id[320], dir[4200];
    int fd = state_cni(in, id, sizeof id);
    if (fd < 0)
        return;
    cr_cni_state_dir(svc->rt->run_dir, svc->rt->cgroup_root, dir, sizeof dir);
    int r = cr_cni_recall(dir, id, &svc->cni_list, &svc->cni_result, svc->cni_addrs,
                          sizeof svc->cni_addrs);
    if (r < 0 || !(svc->cni_id = strdup(id))) {
        cr_log(svc->name, "resume: its CNI record %s/%s.json: %s (its DEL is left undone)",
               dir, id, strerror(r < 0 ? -r : ENOMEM));
        free(svc->cni_list);
        free(svc->cni_result);
        svc->cni_list = svc->cni_result = NULL;
        svc->cni_addrs[0] = '\0';
        close(fd);
        return;
    }
    svc->cni_nsfd = fd;
}

struct saved {
    char name[128];
    int pid, pidfd, ev, outr, outw, errr, errw, up, ready, status, in;
    uint64_t started, spawned;
    enum cr_state state;
};

/* "A,B" at key's value */
static bool int_pair(struct cr_sl_in *in, const char *key, int *a, int *b)
{
    size_t n;
    const char *p = cr_sl_get(in, key, &n), *end = p ? p + n : NULL;
    int64_t x, y;
    if (!p || !cr_sl_num(&p, end, &x) || !cr_sl_skip(&p, end, ',') || !cr_sl_num(&p, end, &y))
        return false;
    *a = (int)x;
    *b = (int)y;
    return true;
}

static int state_of(const char *name, size_t len)
{
    for (int s = 0; s < CR_NSTATES; s++) {
        const char *n = cr_state_name((enum cr_state)s);
        if (strlen(n) == len && !memcmp(name, n, len))
            return s;
    }
    return -1;
}

/* The fields every line has (an earlier program's too), read in the order they are
 * written; in=, absent, is -1. */
static int parse(struct cr_sl_in *in, struct saved *s)
{
    int64_t pid, pidfd, ev, up, ready, started, spawned, status, fd;
    if (in->name_len >= sizeof s->name || in->state_len > 15)
        return -EINVAL;
    memcpy(s->name, in->name, in->name_len);
    s->name[in->name_len] = 0;
    int st = state_of(in->state, in->state_len);
    s->state = st < 0 ? CR_ST_STOPPED : (enum cr_state)st;
    if (!cr_sl_int(in, "pid", &pid) || !cr_sl_int(in, "pidfd", &pidfd) ||
        !cr_sl_int(in, "ev", &ev) || !int_pair(in, "out", &s->outr, &s->outw) ||
        !int_pair(in, "err", &s->errr, &s->errw) || !cr_sl_int(in, "up", &up) ||
        !cr_sl_int(in, "ready", &ready) || !cr_sl_int(in, "started", &started) ||
        !cr_sl_int(in, "spawned", &spawned) || !cr_sl_int(in, "status", &status))
        return -EINVAL;
    s->pid = (int)pid;
    s->pidfd = (int)pidfd;
    s->ev = (int)ev;
    s->up = (int)up;
    s->ready = (int)ready;
    s->started = (uint64_t)started;
    s->spawned = (uint64_t)spawned;
    s->status = (int)status;
    s->in = cr_sl_int(in, "in", &fd) ? (int)fd : -1;   /* absent: no stdin pipe */
    return 0;
}

/* The stream takes back the start of its line (cr_out_partial in the earlier program). */
static void adopt_partial(struct cr_svc *svc, struct cr_out_stream *s,
                          struct cr_sl_in *in, const char *key)
{
    size_t len;
    const char *p = cr_sl_get(in, key, &len);
    if (!p || len < 2)
        return;   /* "-" or an older program's line without it */
    char *b = malloc(CR_OUT_PART_MAX);
    size_t n = b ? cr_sl_unhex(p, len, b, CR_OUT_PART_MAX - 1) : 0;
    if (n && cr_out_set_partial(s, b, n) < 0)
        cr_log(svc->name, "resume: out of memory: %zu bytes of a line lost", n);
    free(b);
}

static void close_fd(int fd)
{
    if (fd >= 0)
        close(fd);
}

/* SIGKILL, then collect it. The pidfd is non-blocking (libuv's poll made it so): waitid
 * would say EAGAIN instead of waiting. */
static void kill_and_collect(int pidfd)
{
    cr_pidfd_signal(pidfd, SIGKILL);
    fcntl(pidfd, F_SETFL, fcntl(pidfd, F_GETFL) & ~O_NONBLOCK);
    siginfo_t si;
    while (waitid((idtype_t)P_PIDFD, (id_t)pidfd, &si, WEXITED) < 0 && errno == EINTR)
        ;
}

static int resume(struct cr_svc *svc, struct cr_sl_in *in, const struct saved *sp);

int cr_svc_resume(struct cr_svc *svc, const char *line)
{
    struct saved s;
    struct cr_sl_in in;
    if (!cr_sl_index(&in, line) || parse(&in, &s) < 0) {
        cr_log(svc->name, "resume: cannot read its state: %s", line);
        return -EINVAL;
    }
    return resume(svc, &in, &s);
}

static int resume(struct cr_svc *svc, struct cr_sl_in *in, const struct saved *sp)
{
    const struct saved s = *sp;
    enum cr_state st = s.state;
    int r = 0;
    if (s.outr >= 0 && s.outw >= 0) {
        r = cr_out_adopt(&svc->out, svc->rt->loop, &svc->rt->console, svc->name, s.outr, s.outw);
        svc->out_open = r == 0;
        if (r == 0)
            adopt_partial(svc, &svc->out, in, "outpart");
        if (r < 0) {
            close_fd(s.outr);
            close_fd(s.outw);
        }
    }
    if (s.errr >= 0 && s.errw >= 0) {
        int e = cr_out_adopt(&svc->err, svc->rt->loop, &svc->rt->console, svc->name, s.errr,
                             s.errw);
        svc->err_open = e == 0;
        if (e == 0)
            adopt_partial(svc, &svc->err, in, "errpart");
        if (e < 0) {
            close_fd(s.errr);
            close_fd(s.errw);
        }
    }
    cr_svc_open_output(svc);   /* what was not passed on, and the taps and log files */
    svc->exit_status = s.status;
    take_counters(svc, in);
    cr_hist_take(svc->hist, in);
    if (s.pidfd < 0) {
        svc->state = st == CR_ST_EXITED || st == CR_ST_FATAL ? st : CR_ST_STOPPED;
        return 0;
    }
    if (st != CR_ST_RUNNING || !svc->conf) {
        r = -EINVAL;
    } else {
        int64_t oom = -1;   /* absent from an older program's line */
        cr_sl_int(in, "oom", &oom);
        r = cr_container_adopt(svc, cr_svc_event, s.pid, s.pidfd, s.ev, oom);
    }
    if (r < 0) {
        /* A container we cannot watch is one we cannot stop: it goes now. */
        cr_log(svc->name, "resume: cannot take over its container (init pid %d): killing it",
               s.pid);
        kill_and_collect(s.pidfd);
        close_fd(s.pidfd);
        close_fd(s.ev);
        close_fd(s.in);
        char id[320];
        close_fd(state_cni(in, id, sizeof id));   /* its record: the next start's sweep */
        return r;
    }
    svc->ct->stdin_wfd = s.in;
    svc->ct->spawned_ms = s.spawned;
    take_cni(svc, in);
    svc->state = CR_ST_RUNNING;
    svc->reached_running = true;
    svc->wl = (struct cr_workload){.up = s.up, .ready = s.ready, .started_mono = s.started};
    return 0;
}

void cr_svc_state_discard(struct cr_runtime *rt, const char *line)
{
    struct saved s;
    struct cr_sl_in in;
    if (!cr_sl_index(&in, line) || parse(&in, &s) < 0)
        return;
    if (s.pidfd >= 0) {
        cr_log(s.name, "not in the configuration any more: killing its container (init pid %d)",
               s.pid);
        kill_and_collect(s.pidfd);
        char leaf[160], err[256];
        snprintf(leaf, sizeof leaf, "svc-%s", s.name);
        /* Limits unknown (its config is gone): on v1, look in every hierarchy a service
         * may be made in, cpu and blkio included. */
        struct cr_cg_limits any;
        cr_cg_limits_init(&any);
        any.cpu_weight = any.io_weight = 100;
        struct cr_cg *cg;
        if (cr_cg_adopt(rt->cgroot, leaf, &any, s.pid, &cg, err, sizeof err) == 0 &&
            cr_cg_destroy(cg, err, sizeof err) < 0)
            cr_log(s.name, "%s", err);
    }
    close_fd(s.pidfd);
    close_fd(s.ev);
    close_fd(s.in);
    char id[320];
    close_fd(state_cni(&in, id, sizeof id));   /* its DEL: the sweep's (not kept) */
    close_fd(s.outr);
    close_fd(s.outw);
    close_fd(s.errr);
    close_fd(s.errw);
}
