/* Live re-exec, the service's part (service.h): its state as one line of text across execve,
 * and the fds that line names kept open through it. The daemon collects the lines into the
 * state memfd; the supervisor after the execve gives each line back to the service of that
 * name, which adopts its pipes and its running container instead of starting one. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
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

/* " key=HEX" of a stream's partial line ("-" for none) at buf[n...]; the new length. */
static int put_partial(char *buf, size_t len, int n, const char *key, bool open,
                       const struct cr_out_stream *s)
{
    const char *p = NULL;
    size_t k = open ? cr_out_partial(s, &p) : 0;
    if (n < 0 || (size_t)n + strlen(key) + 3 + 2 * k >= len)
        return -1;
    n += sprintf(buf + n, " %s=%s", key, k ? "" : "-");
    for (size_t i = 0; i < k; i++)
        n += sprintf(buf + n, "%02x", (unsigned char)p[i]);
    return n;
}

_Static_assert(CR_SVC_STATE_MAX >= 4 * CR_OUT_PART_MAX + CR_HIST_STATE_MAX + 2048,
               "a service's state line holds its partial lines and its crash history");

/* The restart counters and window, health and STATUS= as " key=value" at buf+n; the new
 * length, or -1 (no room). */
static int put_counters(const struct cr_svc *svc, char *buf, size_t len, int n)
{
    unsigned max = svc->conf && svc->restarts && svc->conf->max_restarts > 0
                       ? (unsigned)svc->conf->max_restarts : 0;
    if ((size_t)n + 200 + 21 * (size_t)max + 2 * strlen(svc->status_text) >= len)
        return -1;
    n += sprintf(buf + n, " attempt=%u failed=%u healthy=%d hstop=%d lastoom=%d ran=%" PRIu64
                 " gaveup=%d rwin=%u:%u:", svc->attempt, svc->failed_starts, svc->healthy,
                 svc->health_stop, svc->last_oom, svc->ran_ms, svc->gave_up, max,
                 svc->nrestarts);
    for (unsigned i = 0; i < max; i++)
        n += sprintf(buf + n, "%s%" PRId64, i ? "," : "", svc->restarts[i]);
    n += sprintf(buf + n, " stext=");
    for (const char *p = svc->status_text; *p; p++)
        n += sprintf(buf + n, "%02x", (unsigned char)*p);
    return n;
}

/* put_counters() read back; a line without them leaves the service as made. */
static void take_counters(struct cr_svc *svc, const char *line)
{
    const char *p = strstr(line, " attempt=");
    if (!p)
        return;
    svc->attempt = (unsigned)strtoul(p + 9, NULL, 10);
    if ((p = strstr(line, " failed=")))
        svc->failed_starts = (unsigned)strtoul(p + 8, NULL, 10);
    if ((p = strstr(line, " healthy=")))
        svc->healthy = atoi(p + 9);
    if ((p = strstr(line, " hstop=")))
        svc->health_stop = atoi(p + 7);
    if ((p = strstr(line, " lastoom=")))
        svc->last_oom = atoi(p + 9);
    if ((p = strstr(line, " ran=")))
        svc->ran_ms = strtoull(p + 5, NULL, 10);
    if ((p = strstr(line, " gaveup=")))
        svc->gave_up = atoi(p + 8);
    unsigned max, count;
    int used = 0;
    /* The window goes on only with the same max_restarts (a reload starts it anew too). */
    if ((p = strstr(line, " rwin=")) && sscanf(p + 6, "%u:%u:%n", &max, &count, &used) == 2 &&
        used && svc->conf && svc->restarts && max == (unsigned)svc->conf->max_restarts) {
        p += 6 + used;
        for (unsigned i = 0; i < max; i++) {
            char *end;
            svc->restarts[i] = strtoll(p, &end, 10);
            p = *end == ',' ? end + 1 : end;
        }
        svc->nrestarts = count;
    }
    if ((p = strstr(line, " stext="))) {
        p += 7;
        size_t i = 0;
        for (; i + 1 < sizeof svc->status_text && isxdigit((unsigned char)p[0]) &&
               isxdigit((unsigned char)p[1]); p += 2) {
            unsigned v;
            sscanf(p, "%2x", &v);
            svc->status_text[i++] = (char)v;
        }
        svc->status_text[i] = 0;
    }
}

int cr_svc_handover(struct cr_svc *svc, char *buf, size_t len)
{
    /* Nothing more is read from the output pipes (the loop does not run again before the
     * execve): the bytes in them are the next program's to read, in order. */
    const struct cr_container *ct = svc->ct;
    int n = snprintf(buf, len,
                     "svc %s %s pid=%d pidfd=%d ev=%d out=%d,%d err=%d,%d up=%d ready=%d "
                     "started=%" PRIu64 " spawned=%" PRIu64 " status=%d",
                     svc->name, cr_state_name(svc->state), ct ? (int)ct->pid : 0,
                     ct ? ct->pidfd : -1, ct ? ct->ev_fd : -1,
                     svc->out_open ? svc->out.rfd : -1, svc->out_open ? svc->out.wfd : -1,
                     svc->err_open ? svc->err.rfd : -1, svc->err_open ? svc->err.wfd : -1,
                     svc->wl.up, svc->wl.ready, svc->wl.started_mono,
                     ct ? ct->spawned_ms : (uint64_t)0, svc->exit_status);
    /* The OOM kills already counted: one during the gap is then still reported, and the
     * next program reads no memory.events to resume. */
    if (n >= 0 && (size_t)n < len && ct)
        n += snprintf(buf + n, len - (size_t)n, " oom=%" PRId64, ct->oom_seen);
    if (n < 0 || (size_t)n >= len)
        return -ENOSPC;
    /* stdin = pipe: its write end (an event listener's events come there) */
    if (n >= 0 && ct && ct->stdin_wfd >= 0)
        n += snprintf(buf + n, len - (size_t)n, " in=%d", ct->stdin_wfd);
    /* network = cni:NAME: its namespace's fd and its CNI id; the list and the ADD result
     * are in the DEL record (net/cni.h), which the next program reads back */
    if (n >= 0 && (size_t)n < len && ct && svc->cni_id)
        n += snprintf(buf + n, len - (size_t)n, " cni=%d:%s", svc->cni_nsfd, svc->cni_id);
    if (n < 0 || (size_t)n >= len)
        return -ENOSPC;
    n = put_partial(buf, len, n, "outpart", svc->out_open, &svc->out);
    n = put_partial(buf, len, n, "errpart", svc->err_open, &svc->err);
    if (n < 0)
        return -ENOSPC;
    /* What makes its next restart decision and its status: counted on, not from zero */
    int k = put_counters(svc, buf, len, n);
    k = k < 0 ? -1 : cr_hist_put(svc->hist, buf, len, k);
    if (k < 0)
        cr_log(svc->name, "reexec: its crash history does not fit in the state: it starts "
               "anew");
    n = k < 0 ? n : k;
    buf[n] = 0;
    if ((size_t)n + 2 > len)
        return -ENOSPC;
    buf[n++] = '\n';
    buf[n] = 0;
    registered_all(svc);
    return n;
}

bool cr_svc_state_name(const char *line, char *name, size_t len)
{
    return sscanf(line, "svc %127s", name) == 1 && strlen(name) < len;
}

/* " cni=FD:ID" of a state line (up to its end: the next line is not looked at): the fd (-1
 * when absent) and the id into id. */
static int state_cni(const char *line, char *id, size_t len)
{
    const char *end = strchr(line, '\n');
    const char *p = memmem(line, end ? (size_t)(end - line) : strlen(line), " cni=", 5);
    char buf[320];
    int fd;
    if (!p || sscanf(p + 5, "%d:%319s", &fd, buf) != 2 || strlen(buf) >= len)
        return -1;
    memcpy(id, buf, strlen(buf) + 1);
    return fd;
}

bool cr_svc_state_cni(const char *line, char *id, size_t len)
{
    return state_cni(line, id, len) >= 0;
}

/* The CNI attachment a resumed container had: its DEL stays this program's to run. */
static void take_cni(struct cr_svc *svc, const char *line)
{
    char id[320], dir[4200];
    int fd = state_cni(line, id, sizeof id);
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
    char name[128], state[16];
    int pid, pidfd, ev, outr, outw, errr, errw, up, ready, status, in;
    uint64_t started, spawned;
};

static int parse(const char *line, struct saved *s)
{
    int n = sscanf(line,
                   "svc %127s %15s pid=%d pidfd=%d ev=%d out=%d,%d err=%d,%d up=%d ready=%d "
                   "started=%" SCNu64 " spawned=%" SCNu64 " status=%d",
                   s->name, s->state, &s->pid, &s->pidfd, &s->ev, &s->outr, &s->outw, &s->errr,
                   &s->errw, &s->up, &s->ready, &s->started, &s->spawned, &s->status);
    if (n != 14)
        return -EINVAL;
    const char *in = strstr(line, " in=");   /* absent: no stdin pipe (or an older line) */
    s->in = in ? atoi(in + 4) : -1;
    return 0;
}

/* The partial line after " key=" in line, decoded into out (CR_OUT_PART_MAX bytes); its
 * length, 0 for none ("-", or an older program's line without it). */
static size_t get_partial(const char *line, const char *key, char *out)
{
    char pat[16];
    snprintf(pat, sizeof pat, " %s=", key);
    const char *p = strstr(line, pat);
    size_t n = 0;
    if (!p)
        return 0;
    for (p += strlen(pat); n + 1 < CR_OUT_PART_MAX && isxdigit((unsigned char)p[0]) &&
                           isxdigit((unsigned char)p[1]); p += 2) {
        unsigned v;
        sscanf(p, "%2x", &v);
        out[n++] = (char)v;
    }
    return n;
}

/* The stream takes back the start of its line (cr_out_partial in the earlier program). */
static void adopt_partial(struct cr_svc *svc, struct cr_out_stream *s, const char *line,
                          const char *key)
{
    char *b = malloc(CR_OUT_PART_MAX);
    size_t n = b ? get_partial(line, key, b) : 0;
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

static int state_of(const char *name)
{
    for (int s = 0; s < CR_NSTATES; s++)
        if (!strcmp(name, cr_state_name((enum cr_state)s)))
            return s;
    return -1;
}

int cr_svc_resume(struct cr_svc *svc, const char *line)
{
    struct saved s;
    if (parse(line, &s) < 0) {
        cr_log(svc->name, "resume: cannot read its state: %s", line);
        return -EINVAL;
    }
    int st = state_of(s.state);
    int r = 0;
    if (s.outr >= 0 && s.outw >= 0) {
        r = cr_out_adopt(&svc->out, svc->rt->loop, &svc->rt->console, svc->name, s.outr, s.outw);
        svc->out_open = r == 0;
        if (r == 0)
            adopt_partial(svc, &svc->out, line, "outpart");
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
            adopt_partial(svc, &svc->err, line, "errpart");
        if (e < 0) {
            close_fd(s.errr);
            close_fd(s.errw);
        }
    }
    cr_svc_open_output(svc);   /* what was not passed on, and the taps and log files */
    svc->exit_status = s.status;
    take_counters(svc, line);
    cr_hist_take(svc->hist, line);
    if (s.pidfd < 0) {
        svc->state = st == CR_ST_EXITED || st == CR_ST_FATAL ? (enum cr_state)st : CR_ST_STOPPED;
        return 0;
    }
    if (st != CR_ST_RUNNING || !svc->conf) {
        r = -EINVAL;
    } else {
        const char *oom = strstr(line, " oom=");   /* absent from an older program's line */
        r = cr_container_adopt(svc, cr_svc_event, s.pid, s.pidfd, s.ev,
                               oom ? strtoll(oom + 5, NULL, 10) : -1);
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
        close_fd(state_cni(line, id, sizeof id));   /* its record: the next start's sweep */
        return r;
    }
    svc->ct->stdin_wfd = s.in;
    svc->ct->spawned_ms = s.spawned;
    take_cni(svc, line);
    svc->state = CR_ST_RUNNING;
    svc->reached_running = true;
    svc->wl = (struct cr_workload){.up = s.up, .ready = s.ready, .started_mono = s.started};
    return 0;
}

void cr_svc_state_discard(struct cr_runtime *rt, const char *line)
{
    struct saved s;
    if (parse(line, &s) < 0)
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
    close_fd(state_cni(line, id, sizeof id));   /* its DEL: the sweep's (not kept) */
    close_fd(s.outr);
    close_fd(s.outw);
    close_fd(s.errr);
    close_fd(s.errw);
}
