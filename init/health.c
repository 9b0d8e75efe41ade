/* Health checks, and the exec probes they (and `ready = exec:CMD`) run.
 *
 * A probe is a child of init in the container's namespaces, in a process group of its own,
 * as the workload's user, with the workload's environment and directory. Its stdout and
 * stderr go to a pipe that is read once it is done: the last line it wrote explains a
 * failure ("exit 1: connection refused"). A probe that outlives its timeout loses its whole
 * process group to SIGKILL. init reaps probes itself (pid1.c turns autoreap off when probes
 * are configured), so their status is never lost.
 *
 * The check runs every health_interval from the moment the workload is ready (for
 * `ready = none`: from its start), the next one an interval after the last one ended.
 * Failures of checks that started within health_start_period do not count (Docker's start
 * period); health_retries failures in a row make the workload unhealthy, once: the event
 * `unhealthy`, then health_action — restart (stop signal, grace, start again: a restart
 * like any other), stop (init stops it and exits with its status), or none. A success after
 * that (or the first one) is the event `healthy`. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "events.h"
#include "init.h"
#include "spec.h"

/* ---- probes ---------------------------------------------------------------------------- */

static void probe_child(const struct init_opts *o, char *const *argv, int out)
    __attribute__((noreturn));
static void probe_child(const struct init_opts *o, char *const *argv, int out)
{
    uint64_t none = 0;
    setpgid(0, 0);
    dup2(out, STDOUT_FILENO);
    dup2(out, STDERR_FILENO);
    if (o->umask >= 0)
        umask((mode_t)o->umask);
    if (o->directory && chdir(o->directory) < 0) {
        dprintf(STDERR_FILENO, "chdir %s: %s\n", o->directory, strerror(errno));
        _exit(126);
    }
    int stage = confine_child(o);
    if (stage) {
        dprintf(STDERR_FILENO, "cannot take the service's user: %s: %s\n",
                confine_stage_name(stage), strerror(errno));
        _exit(126);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigaction(SIGCHLD, &sa, NULL);
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, sizeof none);
    execvp(argv[0], argv);
    dprintf(STDERR_FILENO, "cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(errno == ENOENT ? 127 : 126);
}

int probe_start(struct init_probe *p, const struct init_opts *o, char *const *argv,
                int64_t timeout_ms, int64_t now)
{
    int pp[2];
    if (pipe2(pp, O_CLOEXEC) < 0)
        return -errno;
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(pp[0]);
        close(pp[1]);
        return -e;
    }
    if (pid == 0)
        probe_child(o, argv, pp[1]);
    close(pp[1]);
    setpgid(pid, pid);
    fcntl(pp[0], F_SETFL, O_NONBLOCK);
    p->pid = pid;
    p->out = pp[0];
    p->started_ms = now;
    p->deadline_ms = now + timeout_ms;
    p->timed_out = false;
    return 0;
}

void probe_expire(struct init_probe *p)
{
    if (!p->pid || p->timed_out)
        return;
    p->timed_out = true;
    kill(-p->pid, SIGKILL);
    kill(p->pid, SIGKILL);
}

void probe_cancel(struct init_probe *p)
{
    if (p->pid) {
        kill(-p->pid, SIGKILL);
        kill(p->pid, SIGKILL);
    }
    if (p->out >= 0)
        close(p->out);
    p->pid = 0;
    p->out = -1;
}

/* The last non-empty line of what the probe wrote (what fits in the pipe). */
static void last_line(int fd, char *buf, size_t len)
{
    char data[4096];
    ssize_t n = read(fd, data, sizeof data - 1);
    buf[0] = 0;
    if (n <= 0)
        return;
    while (n > 0 && (data[n - 1] == '\n' || data[n - 1] == '\r' || data[n - 1] == ' '))
        n--;
    data[n] = 0;
    char *start = strrchr(data, '\n');
    start = start ? start + 1 : data;
    size_t n2 = strlen(start);
    if (n2 >= len)
        n2 = len - 1;
    memcpy(buf, start, n2);
    buf[n2] = 0;
}

int probe_reaped(struct init_probe *p, pid_t pid, int st, bool *ok, char *why, size_t len)
{
    if (!p->pid || pid != p->pid)
        return 0;
    char line[160], sig[16];
    last_line(p->out, line, sizeof line);
    *ok = !p->timed_out && WIFEXITED(st) && WEXITSTATUS(st) == 0;
    if (p->timed_out)
        snprintf(why, len, "timed out after %lld ms",
                 (long long)(p->deadline_ms - p->started_ms));
    else if (WIFEXITED(st))
        snprintf(why, len, "exit %d%s%s", WEXITSTATUS(st), line[0] ? ": " : "", line);
    else
        snprintf(why, len, "killed by SIG%s%s%s",
                 cr_signal_name(WTERMSIG(st), sig, sizeof sig), line[0] ? ": " : "", line);
    close(p->out);
    p->out = -1;
    p->pid = 0;
    return 1;
}

/* ---- health checks ------------------------------------------------------------------------ */

static struct {
    const struct init_opts *o;
    pid1_stop_fn stop;
    bool on;                    /* the workload is ready: checks are scheduled */
    int64_t begin_ms;           /* when checks began (start period counts from here) */
    int64_t next_ms;            /* the next check; -1 while one runs */
    unsigned failures;          /* in a row */
    int healthy;                /* -1 not known yet, 0 unhealthy, 1 healthy */
    struct init_probe probe;
} H = {.probe = {.out = -1}};

void health_begin(const struct init_opts *o, int64_t now, pid1_stop_fn stop)
{
    H.o = o;
    H.stop = stop;
    if (!o->health_argv || H.on)
        return;
    H.on = true;
    H.begin_ms = now;
    H.next_ms = now + o->health_interval_ms;
    H.failures = 0;
    H.healthy = -1;
}

void health_stopped(void)
{
    probe_cancel(&H.probe);
    H.on = false;
    H.healthy = -1;
}

int64_t health_deadline(void)
{
    if (!H.on)
        return -1;
    if (H.probe.pid)
        return H.probe.timed_out ? -1 : H.probe.deadline_ms;
    return H.next_ms;
}

void health_tick(int64_t now)
{
    if (!H.on)
        return;
    if (H.probe.pid) {
        if (now >= H.probe.deadline_ms)
            probe_expire(&H.probe);
        return;
    }
    if (now < H.next_ms)
        return;
    int r = probe_start(&H.probe, H.o, H.o->health_argv, H.o->health_timeout_ms, now);
    if (r < 0) {
        /* Not the workload's fault (no memory, no pids left): try again next interval. */
        fprintf(stderr, "init: health check: %s\n", strerror(-r));
        H.next_ms = now + H.o->health_interval_ms;
    }
}

bool health_reaped(pid_t pid, int st, int64_t now)
{
    bool ok;
    char why[256];
    int64_t started = H.probe.started_ms;
    if (!probe_reaped(&H.probe, pid, st, &ok, why, sizeof why))
        return false;
    if (!H.on)
        return true;
    const struct init_opts *o = H.o;
    H.next_ms = now + o->health_interval_ms;
    if (ok) {
        H.failures = 0;
        if (H.healthy != 1)
            cr_event(o->events_fd, CR_EVT_HEALTHY, NULL);
        H.healthy = 1;
        return true;
    }
    if (started < H.begin_ms + o->health_start_period_ms)
        return true;            /* still starting up: does not count */
    H.failures++;
    unsigned retries = o->health_retries ? o->health_retries : 1;
    if (H.failures < retries || H.healthy == 0)
        return true;
    H.healthy = 0;
    cr_event(o->events_fd, CR_EVT_UNHEALTHY, "failures=%u action=%s reason=%s", H.failures,
             cr_health_action_name(o->health_action), why);
    fprintf(stderr, "init: unhealthy after %u failed checks (%s)%s\n", H.failures, why,
            o->health_action == CR_HEALTH_RESTART ? ": restarting it"
            : o->health_action == CR_HEALTH_STOP ? ": stopping it" : "");
    if (o->health_action == CR_HEALTH_RESTART)
        H.stop(PID1_RESTART);
    else if (o->health_action == CR_HEALTH_STOP)
        H.stop(PID1_STOP);
    return true;
}
