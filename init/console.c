/* The container's own terminal (spec key console, `supervisor run` on a terminal): a pty from
 * the container's devpts, so that `tty` names it and /dev/console is it, with init between it
 * and the caller's terminal (init's stdin and stdout). The caller's terminal is raw while the
 * container runs: its keys (^C, ^Z included) go to the pty, whose line discipline turns them
 * into the workload's signals; its window size is copied to the pty at the start and at every
 * SIGWINCH. Neither direction waits for the other: output the caller's terminal does not take
 * yet waits in init (and the pty, then the workload, wait behind it) while keys still go in,
 * so that a ^C reaches a workload whose output nobody reads. */
#include "init.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <termios.h>
#include <unistd.h>

static struct {
    int master, slave;          /* -1: no console */
    bool raw;                   /* the caller's terminal was made raw: saved holds it */
    struct termios saved;
    bool in_open;               /* stdin is still read */
    char buf[4096];             /* read from stdin, not yet written to the pty */
    size_t len, off;
    int out;                    /* the caller's terminal opened again, non-blocking: a file
                                   description of init's own (the caller's stays as it is);
                                   -1: stdout, blocking (it could not be opened) */
    char obuf[4096];            /* read from the pty, not yet written to the caller */
    size_t olen, ooff;
} C = {.master = -1, .slave = -1, .out = -1};

int console_open(const char *dev, uid_t uid, gid_t gid, char *err, size_t errlen)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/pts/ptmx", dev);
    int m = open(p, O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
    int unlock = 0, n = -1;
    if (m < 0 || ioctl(m, TIOCSPTLCK, &unlock) < 0 || ioctl(m, TIOCGPTN, &n) < 0) {
        snprintf(err, errlen, "console: %s: %s", p, strerror(errno));
        if (m >= 0)
            close(m);
        return -1;
    }
    snprintf(p, sizeof p, "%s/pts/%d", dev, n);
    int s = open(p, O_RDWR | O_NOCTTY | O_CLOEXEC);
    char con[4200];
    snprintf(con, sizeof con, "%s/console", dev);
    int cf = s < 0 ? -1 : open(con, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    /* The workload's user may open it again (its own /dev/console, `tty` after a su). */
    if (cf < 0 || mount(p, con, NULL, MS_BIND, NULL) < 0 ||
        (uid != 0 && fchown(s, uid, gid) < 0)) {
        snprintf(err, errlen, "console: %s: %s", cf < 0 && s >= 0 ? con : p, strerror(errno));
        if (cf >= 0)
            close(cf);
        if (s >= 0)
            close(s);
        close(m);
        return -1;
    }
    close(cf);
    C.master = m;
    C.slave = s;
    return 0;
}

bool console_on(void)
{
    return C.master >= 0;
}

void console_resize(void)
{
    struct winsize ws;
    if (C.master >= 0 && ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0)
        ioctl(C.master, TIOCSWINSZ, &ws);
}

void console_start(void)
{
    if (C.master < 0)
        return;
    C.in_open = true;
    C.out = open("/proc/self/fd/1", O_WRONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    console_resize();
    struct termios t;
    if (tcgetattr(STDIN_FILENO, &C.saved) == 0) {
        t = C.saved;
        cfmakeraw(&t);
        C.raw = tcsetattr(STDIN_FILENO, TCSADRAIN, &t) == 0;
    }
}

void console_in_child(void)
{
    if (C.slave < 0)
        return;
    setsid();
    ioctl(C.slave, TIOCSCTTY, 0);
    for (int fd = 0; fd < 3; fd++)
        dup2(C.slave, fd);
}

/* The pending output, to the caller's terminal, as far as it takes it now (or, without a
 * non-blocking one, all of it). A failed write drops the rest: nobody reads. */
static int out_fd(void)
{
    return C.out >= 0 ? C.out : STDOUT_FILENO;
}

static void to_caller(void)
{
    while (C.ooff < C.olen) {
        ssize_t w = write(out_fd(), C.obuf + C.ooff, C.olen - C.ooff);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN)
            return;              /* full: POLLOUT says when to go on */
        if (w <= 0)
            break;
        C.ooff += (size_t)w;
    }
    C.ooff = C.olen = 0;
}

/* What the pty has for the caller, while the caller takes it (the master is non-blocking). */
static void from_pty(void)
{
    ssize_t n;
    while (C.olen == 0 && (n = read(C.master, C.obuf, sizeof C.obuf)) > 0) {
        C.olen = (size_t)n;
        C.ooff = 0;
        to_caller();
    }
}

static void to_pty(void)
{
    while (C.off < C.len) {
        ssize_t w = write(C.master, C.buf + C.off, C.len - C.off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN)
            return;              /* the pty is full: POLLOUT says when to go on */
        if (w < 0) {
            C.off = C.len;       /* gone: drop it */
            break;
        }
        C.off += (size_t)w;
    }
    C.off = C.len = 0;
}

int console_pollfds(struct pollfd *p, int max)
{
    if (C.master < 0 || max < 3)
        return 0;
    int n = 0;
    short ev = (short)((C.olen ? 0 : POLLIN) | (C.len ? POLLOUT : 0));
    if (ev)
        p[n++] = (struct pollfd){C.master, ev, 0};
    if (C.in_open && !C.len)
        p[n++] = (struct pollfd){STDIN_FILENO, POLLIN, 0};
    if (C.olen)
        p[n++] = (struct pollfd){out_fd(), POLLOUT, 0};
    return n;
}

void console_on_poll(const struct pollfd *p, int n)
{
    for (int i = 0; i < n; i++) {
        if (p[i].fd == C.master) {
            if (p[i].revents & POLLIN)
                from_pty();
            if (p[i].revents & POLLOUT)
                to_pty();
        } else if (p[i].fd == out_fd() && p[i].events == POLLOUT && p[i].revents) {
            to_caller();
            from_pty();          /* what the pty held back meanwhile */
        } else if (p[i].fd == STDIN_FILENO && p[i].revents) {
            ssize_t r = read(STDIN_FILENO, C.buf, sizeof C.buf);
            if (r > 0) {
                C.len = (size_t)r;
                C.off = 0;
                to_pty();
            } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
                C.in_open = false;   /* the caller's end is gone */
            }
        }
    }
}

void console_end(void)
{
    if (C.master < 0)
        return;
    /* the workload's last words: what the caller's terminal takes of them now */
    to_caller();
    from_pty();
    if (C.out >= 0)
        close(C.out);
    C.out = -1;
    if (C.raw)
        tcsetattr(STDIN_FILENO, TCSADRAIN, &C.saved);
    C.raw = false;
}
