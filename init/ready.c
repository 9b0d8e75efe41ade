/* Readiness: init watches, from inside the container, for the moment the workload is ready,
 * and reports it as the `ready` event (the supervisor starts dependents then).
 *
 *   notify    systemd's sd_notify: init binds a datagram socket at /dev/.corral/notify on
 *             its own /dev tmpfs (only this container's mount namespace sees it; without a
 *             mount namespace, an abstract socket "@corral-notify-…" of the container's
 *             network namespace) and sets NOTIFY_SOCKET. Supported: READY=1 (ready),
 *             STATUS=text (the `status` event, any time). Every datagram must carry the
 *             sender's credentials (SO_PASSCRED) with a pid inside init's pid namespace:
 *             from anywhere else the kernel shows pid 0 and the datagram is dropped.
 *             Accepted and ignored: MAINPID= (the main process is the one init started
 *             and watches), WATCHDOG= (no watchdog interval exists; health_cmd is the
 *             liveness check), STOPPING=1, RELOADING=1, ERRNO=, anything else.
 *   fd:N      s6's notification-fd: the workload gets the write end of a pipe as fd N; a
 *             newline on it means ready (EOF without one: never ready).
 *   exec:CMD  a probe (health.c) run every 100 ms after the last one ended until it exits 0;
 *             each one bounded by 5 s (and by what is left of ready_timeout).
 *   tcp:PORT  a non-blocking connect to 127.0.0.1:PORT in the container's network namespace,
 *             every 100 ms until one succeeds.
 *
 * ready_timeout (0: none) bounds the wait: when it passes, the event `ready-timeout`, and the
 * workload is stopped as a failed start (pid1.c restarts it as one, or gives up after
 * startretries). Detection starts again with each start of the workload. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "events.h"
#include "init.h"
#include "spec.h"

#define RETRY_MS 100
#define EXEC_PROBE_MAX_MS 5000
#define TCP_ATTEMPT_MS 1000

static struct {
    const struct init_opts *o;
    pid1_stop_fn stop;
    bool active;                /* the workload runs and is not ready yet */
    bool ready;
    int64_t deadline_ms;        /* ready_timeout; -1: none */
    int64_t next_ms;            /* tcp, exec: the next attempt; -1: none pending */
    int nsock;                  /* notify: the socket, for init's whole life */
    int pipe_r, pipe_w;         /* fd:N */
    int tcp;                    /* a connect in progress */
    int64_t tcp_deadline_ms;
    struct init_probe probe;
} R = {.nsock = -1, .pipe_r = -1, .pipe_w = -1, .tcp = -1, .probe = {.out = -1}};

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static const char *kind_name(void)
{
    static char buf[32];
    cr_ready_format(R.o->ready, R.o->ready_arg, buf, sizeof buf);
    return buf;
}

static void became_ready(int64_t now)
{
    if (!R.active)
        return;
    R.active = false;
    R.ready = true;
    R.next_ms = -1;
    close_fd(&R.pipe_r);
    close_fd(&R.tcp);
    probe_cancel(&R.probe);
    cr_event(R.o->events_fd, CR_EVT_READY, "kind=%s", kind_name());
    health_begin(R.o, now, R.stop);
}

/* ---- set-up ---------------------------------------------------------------------------------- */

static int bind_notify(const struct init_opts *o, char *env, size_t envlen)
{
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    socklen_t len;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0)
        goto fail;
    if (o->notify_dir) {
        if (mkdir(o->notify_dir, 0755) < 0 && errno != EEXIST)
            goto fail;
        snprintf(sun.sun_path, sizeof sun.sun_path, "%s/notify", o->notify_dir);
        unlink(sun.sun_path);
        len = (socklen_t)sizeof sun;
        snprintf(env, envlen, "%s", sun.sun_path);
    } else {
        /* abstract: "\0corral-notify-<pid>-<ns pid>" in the network namespace */
        int n = snprintf(sun.sun_path + 1, sizeof sun.sun_path - 1, "corral-notify-%d-%lld",
                         (int)getpid(), (long long)now_ms());
        len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
        snprintf(env, envlen, "@%s", sun.sun_path + 1);
    }
    if (bind(fd, (struct sockaddr *)&sun, len) < 0)
        goto fail;
    /* Any user of the container may notify (the workload may not run as root). */
    if (o->notify_dir && chmod(sun.sun_path, 0666) < 0)
        goto fail;
    return fd;
fail:;
    int e = errno;
    close(fd);
    return -e;
}

int ready_init(const struct init_opts *o, pid1_stop_fn stop)
{
    R.o = o;
    R.stop = stop;
    if (o->ready != CR_READY_NOTIFY)
        return 0;
    char path[128];
    int fd = bind_notify(o, path, sizeof path);
    if (fd < 0) {
        fprintf(stderr, "init: notify socket: %s\n", strerror(-fd));
        cr_event(o->events_fd, CR_EVT_SETUP_FAILED, "reason=ready = notify: cannot bind the notify "
                 "socket: %s", strerror(-fd));
        return 125;
    }
    R.nsock = fd;
    setenv("NOTIFY_SOCKET", path, 1);
    return 0;
}

int ready_before_fork(void)
{
    if (!R.o || R.o->ready != CR_READY_FD)
        return 0;
    int p[2];
    close_fd(&R.pipe_r);
    close_fd(&R.pipe_w);
    if (pipe2(p, O_CLOEXEC) < 0)
        return -errno;
    R.pipe_r = p[0];
    R.pipe_w = p[1];
    fcntl(R.pipe_r, F_SETFL, O_NONBLOCK);
    return 0;
}

void ready_in_child(void)
{
    if (!R.o || R.o->ready != CR_READY_FD || R.pipe_w < 0)
        return;
    int n = R.o->ready_arg;
    if (R.pipe_w == n)
        fcntl(n, F_SETFD, 0);
    else
        dup2(R.pipe_w, n);      /* the copy is not close-on-exec */
}

void ready_started(int64_t now)
{
    const struct init_opts *o = R.o;
    R.ready = false;
    R.active = false;
    close_fd(&R.pipe_w);        /* the workload holds it now: EOF means it gave up */
    if (!o)
        return;
    if (o->ready == CR_READY_NONE) {
        R.ready = true;
        health_begin(o, now, R.stop);
        return;
    }
    R.active = true;
    R.deadline_ms = o->ready_timeout_ms > 0 ? now + o->ready_timeout_ms : -1;
    R.next_ms = (o->ready == CR_READY_TCP || o->ready == CR_READY_EXEC) ? now : -1;
}

void ready_stopped(void)
{
    R.active = false;
    R.ready = false;
    R.next_ms = -1;
    R.deadline_ms = -1;
    close_fd(&R.pipe_r);
    close_fd(&R.pipe_w);
    close_fd(&R.tcp);
    probe_cancel(&R.probe);
}

bool ready_is_ready(void)
{
    return R.ready;
}

/* ---- the notify socket ---------------------------------------------------------------------- */

static void on_notify(int64_t now)
{
    for (int i = 0; i < 64; i++) {
        char buf[4096];
        union {
            struct cmsghdr h;
            char space[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(16 * sizeof(int))];
        } cm;
        struct iovec iov = {buf, sizeof buf - 1};
        struct msghdr mh;
        memset(&mh, 0, sizeof mh);
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        mh.msg_control = &cm;
        mh.msg_controllen = sizeof cm;
        ssize_t n = recvmsg(R.nsock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0)
            return;
        buf[n] = 0;
        const struct ucred *cred = NULL;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
            if (c->cmsg_level != SOL_SOCKET)
                continue;
            if (c->cmsg_type == SCM_CREDENTIALS) {
                cred = (const struct ucred *)CMSG_DATA(c);
            } else if (c->cmsg_type == SCM_RIGHTS) {
                /* BARRIER=1 (systemd-notify, sd_notify_barrier) sends a pipe's end and
                 * waits for us to close it: closing is the acknowledgement. */
                size_t nfds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t k = 0; k < nfds; k++) {
                    int fd;
                    memcpy(&fd, CMSG_DATA(c) + k * sizeof(int), sizeof fd);
                    close(fd);
                }
            }
        }
        if (!cred || cred->pid <= 0) {
            fprintf(stderr, "init: notify: dropped a message from outside the container\n");
            continue;
        }
        for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save)) {
            if (!strcmp(line, "READY=1"))
                became_ready(now);
            else if (!strncmp(line, "STATUS=", 7))
                cr_event(R.o->events_fd, CR_EVT_STATUS, "pid=%d reason=%s", (int)cred->pid,
                         line + 7);
        }
    }
}

/* ---- attempts: tcp and exec --------------------------------------------------------------- */

static void retry_later(int64_t now)
{
    R.next_ms = now + RETRY_MS;
}

static void tcp_try(int64_t now)
{
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)R.o->ready_arg);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    R.tcp = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (R.tcp < 0) {
        retry_later(now);
        return;
    }
    if (connect(R.tcp, (struct sockaddr *)&sin, sizeof sin) == 0) {
        became_ready(now);
        return;
    }
    if (errno == EINPROGRESS) {
        R.tcp_deadline_ms = now + TCP_ATTEMPT_MS;
        R.next_ms = -1;
        return;
    }
    close_fd(&R.tcp);
    retry_later(now);
}

static void tcp_done(int64_t now)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(R.tcp, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) {
        became_ready(now);
        return;
    }
    close_fd(&R.tcp);
    retry_later(now);
}

static void exec_try(int64_t now)
{
    int64_t t = EXEC_PROBE_MAX_MS;
    if (R.deadline_ms >= 0 && R.deadline_ms - now < t)
        t = R.deadline_ms - now > 0 ? R.deadline_ms - now : 1;
    R.next_ms = -1;
    int r = probe_start(&R.probe, R.o, R.o->ready_argv, t, now);
    if (r < 0) {
        fprintf(stderr, "init: readiness probe: %s\n", strerror(-r));
        retry_later(now);
    }
}

bool ready_reaped(pid_t pid, int st, int64_t now)
{
    bool ok;
    char why[256];
    if (!probe_reaped(&R.probe, pid, st, &ok, why, sizeof why))
        return false;
    if (!R.active)
        return true;
    if (ok)
        became_ready(now);
    else
        retry_later(now);
    return true;
}

/* ---- the loop's side ------------------------------------------------------------------------ */

int ready_pollfds(struct pollfd *p, int max)
{
    int n = 0;
    if (R.nsock >= 0 && n < max)
        p[n++] = (struct pollfd){R.nsock, POLLIN, 0};
    if (R.active && R.pipe_r >= 0 && n < max)
        p[n++] = (struct pollfd){R.pipe_r, POLLIN, 0};
    if (R.active && R.tcp >= 0 && n < max)
        p[n++] = (struct pollfd){R.tcp, POLLOUT, 0};
    return n;
}

void ready_on_poll(const struct pollfd *p, int n, int64_t now)
{
    for (int i = 0; i < n; i++) {
        if (!p[i].revents)
            continue;
        if (p[i].fd == R.nsock) {
            on_notify(now);
        } else if (p[i].fd == R.pipe_r && R.active) {
            char buf[256];
            ssize_t r = read(R.pipe_r, buf, sizeof buf);
            if (r > 0 && memchr(buf, '\n', (size_t)r))
                became_ready(now);
            else if (r == 0)
                close_fd(&R.pipe_r);   /* closed without a newline: it will never say */
        } else if (p[i].fd == R.tcp && R.active) {
            tcp_done(now);
        }
    }
}

int64_t ready_deadline(void)
{
    if (!R.active)
        return -1;
    int64_t d = R.deadline_ms;
    int64_t more[3] = {R.next_ms, R.tcp >= 0 ? R.tcp_deadline_ms : -1,
                       R.probe.pid && !R.probe.timed_out ? R.probe.deadline_ms : -1};
    for (int i = 0; i < 3; i++)
        if (more[i] >= 0 && (d < 0 || more[i] < d))
            d = more[i];
    return d;
}

void ready_tick(int64_t now)
{
    if (!R.active)
        return;
    if (R.deadline_ms >= 0 && now >= R.deadline_ms) {
        R.active = false;
        R.next_ms = -1;
        close_fd(&R.tcp);
        close_fd(&R.pipe_r);
        probe_cancel(&R.probe);
        cr_event(R.o->events_fd, CR_EVT_READY_TIMEOUT, "timeout_ms=%lld kind=%s",
                 (long long)R.o->ready_timeout_ms, kind_name());
        fprintf(stderr, "init: not ready within %lld ms (ready = %s): a failed start\n",
                (long long)R.o->ready_timeout_ms, kind_name());
        R.stop(PID1_FAILED_START);
        return;
    }
    if (R.probe.pid && now >= R.probe.deadline_ms)
        probe_expire(&R.probe);
    if (R.tcp >= 0 && now >= R.tcp_deadline_ms) {
        close_fd(&R.tcp);
        retry_later(now);
    }
    if (R.next_ms >= 0 && now >= R.next_ms) {
        if (R.o->ready == CR_READY_TCP)
            tcp_try(now);
        else if (R.o->ready == CR_READY_EXEC && !R.probe.pid)
            exec_try(now);
    }
}
