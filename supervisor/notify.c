/* sd_notify by hand (notify.h): one SOCK_DGRAM send per message to $NOTIFY_SOCKET (a path,
 * or "@name" in the abstract namespace), and the watchdog's keep-alive from the loop. */
#include "notify.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static int fd = -1;
static struct sockaddr_un addr;
static socklen_t addrlen;
static uv_timer_t watchdog;
static bool watchdog_on;
static char env_socket[sizeof addr.sun_path + 1];   /* as $NOTIFY_SOCKET said, for a re-exec */
static uint64_t env_usec;                            /* our WATCHDOG_USEC, or 0 */

static uint64_t watchdog_every, watchdog_last;   /* ms; uv_now() of the last ping */

/* What systemd's queue did not take when sent (full: it had not read for a while; a unix
 * datagram queue holds net.unix.max_dgram_qlen messages, 10 by default), in order, sent again
 * on a timer: READY=1, RELOADING=1 and STOPPING=1 are never lost, and never overtaken. A ping
 * (WATCHDOG=1) is not kept: the next comes anyway. A STATUS= alone replaces one queued last.
 * Before a re-exec's execve and the exit, which end the queue, what waits is sent blocking, for
 * up to DRAIN_MS (drain). */
#define MSG_MAX 512
#define PENDING_MAX 16
#define RETRY_MS 20
static char pending[PENDING_MAX][MSG_MAX];
static size_t pending_len[PENDING_MAX];
static unsigned pending_head, pending_n;
static bool pending_dropped;   /* said once */
static uv_timer_t retry;
static bool retry_on;
/* Pings go out once READY=1 has: systemd arms a unit's watchdog at its first WATCHDOG=1 even
 * while it starts, and a start-up of many services (each start a clone, a cgroup and
 * an init, seconds under emulation) is TimeoutStartSec's to judge, as systemd.service(5)
 * says: "the watchdog is activated when the start-up is completed". */
static bool watchdog_armed;

/* The keep-alive; one that comes late says how long the loop was kept from running (systemd
 * kills us once that reaches the whole period). */
static void on_watchdog(uv_timer_t *t)
{
    uint64_t now = uv_now(t->loop);
    if (!watchdog_armed) {
        watchdog_last = now;
        return;
    }
    if (now - watchdog_last > watchdog_every * 3 / 2)
        cr_log(NULL, "systemd watchdog: a ping %llu ms late (the loop was busy)",
               (unsigned long long)(now - watchdog_last - watchdog_every));
    watchdog_last = now;
    sv_notify("WATCHDOG=1");
}

bool sv_notify_open(uv_loop_t *loop, bool running)
{
    watchdog_armed = running;
    const char *path = getenv("NOTIFY_SOCKET");
    const char *usec = getenv("WATCHDOG_USEC"), *wpid = getenv("WATCHDOG_PID");
    bool ours = !wpid || strtol(wpid, NULL, 10) == (long)getpid();
    uint64_t period = usec && ours ? strtoull(usec, NULL, 10) : 0;
    size_t n = path ? strlen(path) : 0;
    if (!path || n < 2 || n >= sizeof addr.sun_path || (path[0] != '/' && path[0] != '@')) {
        unsetenv("NOTIFY_SOCKET");
        return false;
    }
    addr.sun_family = AF_UNIX;
    memcpy(addr.sun_path, path, n);
    if (path[0] == '@')
        addr.sun_path[0] = 0;   /* abstract */
    addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (path[0] == '/'));
    memcpy(env_socket, path, n + 1);
    env_usec = period;
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        cr_log(NULL, "NOTIFY_SOCKET: socket: %s", strerror(errno));
        return false;
    }
    if (uv_timer_init(loop, &retry) == 0) {
        retry_on = true;
        uv_unref((uv_handle_t *)&retry);   /* never what keeps the loop going */
    }
    if (period >= 2000 && uv_timer_init(loop, &watchdog) == 0) {
        watchdog_on = true;
        uint64_t every = watchdog_every = period / 2000;   /* half the period, in ms */
        watchdog_last = uv_now(loop);
        uv_timer_start(&watchdog, on_watchdog, every, every);
        uv_unref((uv_handle_t *)&watchdog);
        cr_log(NULL, "systemd watchdog: WATCHDOG=1 every %llu ms",
               (unsigned long long)every);
    }
    return true;
}

/* 0 sent, -EAGAIN not taken now (systemd's queue is full), else dropped (said). */
static int send_one(const char *msg, size_t n)
{
    if (sendto(fd, msg, n, MSG_NOSIGNAL, (struct sockaddr *)&addr, addrlen) < 0) {
        int e = errno;
        if (e != EAGAIN && e != EINTR)
            cr_log(NULL, "NOTIFY_SOCKET: %s", strerror(e));
        return -e;
    }
    bool ready = n >= 7 && !memcmp(msg, "READY=1", 7) && (n == 7 || msg[7] == '\n');
    if (ready)
        watchdog_armed = true;
    return 0;
}

/* Sends what waits, oldest first, until systemd's queue is full again (or, blocking in
 * drain, a signal came). What is sent, or dropped (said), leaves the queue. */
static void flush(void)
{
    while (pending_n) {
        int r = send_one(pending[pending_head], pending_len[pending_head]);
        if (r == -EAGAIN || r == -EINTR)
            break;
        pending_head = (pending_head + 1) % PENDING_MAX;
        pending_n--;
    }
    if (!pending_n && retry_on)
        uv_timer_stop(&retry);
}

static void on_retry(uv_timer_t *t)
{
    flush();
}

/* Sends what waits, oldest first, waiting up to DRAIN_MS in all for systemd's queue to take
 * it: before the execve of a re-exec or the exit, which end this queue. What is not taken by
 * then is said and dropped (a systemd that reads nothing for that long). */
#define DRAIN_MS 2000
static void drain(const char *before)
{
    flush();
    if (!pending_n)
        return;
    cr_log(NULL, "NOTIFY_SOCKET: systemd's queue is full; up to %d ms for it to take %u "
           "message%s before %s", DRAIN_MS, pending_n, pending_n == 1 ? "" : "s", before);
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0 && fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) == 0) {
        struct timespec t0, now;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (;;) {   /* flush, now blocking up to the time left for each message */
            clock_gettime(CLOCK_MONOTONIC, &now);
            long long left = DRAIN_MS * 1000LL - ((now.tv_sec - t0.tv_sec) * 1000000LL +
                                                  (now.tv_nsec - t0.tv_nsec) / 1000);
            struct timeval tv = {.tv_sec = left / 1000000, .tv_usec = left % 1000000};
            if (!pending_n || left <= 0 ||
                setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0)
                break;
            flush();
        }
        struct timeval zero = {0};
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &zero, sizeof zero);
        fcntl(fd, F_SETFL, fl);
    }
    if (pending_n)
        cr_log(NULL, "NOTIFY_SOCKET: systemd took no message for %d ms; %u not sent", DRAIN_MS,
               pending_n);
    pending_n = 0;
    if (retry_on)
        uv_timer_stop(&retry);
}

static void keep(const char *msg, size_t n)
{
    bool status_only = !strncmp(msg, "STATUS=", 7);
    unsigned last = (pending_head + pending_n - 1) % PENDING_MAX;
    if (status_only && pending_n && !strncmp(pending[last], "STATUS=", 7)) {
        memcpy(pending[last], msg, n);
        pending_len[last] = n;
        return;
    }
    if (pending_n == PENDING_MAX) {   /* systemd has not read for long: the oldest goes */
        if (!pending_dropped)
            cr_log(NULL, "NOTIFY_SOCKET: systemd reads no messages; the oldest are dropped");
        pending_dropped = true;
        pending_head = (pending_head + 1) % PENDING_MAX;
        pending_n--;
    }
    unsigned at = (pending_head + pending_n) % PENDING_MAX;
    memcpy(pending[at], msg, n);
    pending_len[at] = n;
    pending_n++;
    if (retry_on && !uv_is_active((uv_handle_t *)&retry))
        uv_timer_start(&retry, on_retry, RETRY_MS, RETRY_MS);
}

void sv_notify(const char *fmt, ...)
{
    if (fd < 0)
        return;
    char msg[MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof msg)
        n = sizeof msg - 1;
    bool ping = !strcmp(msg, "WATCHDOG=1");
    if (pending_n) {   /* after what waits, never before it */
        if (!ping)
            keep(msg, (size_t)n);
        flush();
    } else if (send_one(msg, (size_t)n) == -EAGAIN && !ping) {
        keep(msg, (size_t)n);
    }
}

void sv_notify_reloading(const char *status)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    sv_notify("RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=%s",
              (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000,
              status);
}

void sv_notify_pass_on(bool on)
{
    if (fd < 0)
        return;
    if (!on) {
        unsetenv("NOTIFY_SOCKET");
        unsetenv("WATCHDOG_USEC");
        unsetenv("WATCHDOG_PID");
        return;
    }
    drain("the re-exec");
    setenv("NOTIFY_SOCKET", env_socket, 1);
    if (env_usec) {
        char v[32];
        snprintf(v, sizeof v, "%llu", (unsigned long long)env_usec);
        setenv("WATCHDOG_USEC", v, 1);
        snprintf(v, sizeof v, "%d", (int)getpid());
        setenv("WATCHDOG_PID", v, 1);
    }
}

void sv_notify_close(void)
{
    drain("the exit");
    if (retry_on) {
        uv_timer_stop(&retry);
        uv_close((uv_handle_t *)&retry, NULL);
        retry_on = false;
    }
    if (watchdog_on) {
        uv_timer_stop(&watchdog);
        uv_close((uv_handle_t *)&watchdog, NULL);
        watchdog_on = false;
    }
    if (fd >= 0)
        close(fd);
    fd = -1;
}
