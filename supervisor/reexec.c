/* Live re-exec (daemon_int.h): `svctl reexec [PATH]` replaces the supervisor's program in the
 * same process, so its pid, its children (the containers' inits) and its cgroup leaf stay.
 * What the new program needs goes through execve as open fds (their close-on-exec flag
 * cleared only for the call) and one memfd of text naming them: a line per service
 * (service.h's cr_svc_handover) and the control socket's listening fd. The new program is
 * `PATH -c CONFIG [--pid1] --resume FD`; daemon.c reads the state back (sv_resume_read) and
 * gives each service its line. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon_int.h"
#include "log.h"
#include "notify.h"
#include "api/control.h"
#include "cgroup/cgroup.h"
#include "io/logs.h"
#include "io/output.h"

extern char **environ;

#define STATE_MAGIC "corral-state 1\n"
#define CG_HOME_MAX 512           /* a cgroup-home line: 3 numbers and a path */
#define REEXEC_LOG_WAIT_MS 2000   /* for log files and the console, before the execve */

static int resolve(const char *path, char *out, size_t len, char *why, size_t whylen)
{
    if (!path) {
        ssize_t n = readlink("/proc/self/exe", out, len - 1);
        if (n < 0) {
            snprintf(why, whylen, "/proc/self/exe: %s", strerror(errno));
            return -errno;
        }
        out[n] = 0;
        /* The binary may have been replaced on disk (an upgrade): the new one is meant. */
        char *del = strstr(out, " (deleted)");
        if (del && !del[10])
            *del = 0;
    } else if (snprintf(out, len, "%s", path) >= (int)len) {
        snprintf(why, whylen, "path too long");
        return -ENAMETOOLONG;
    }
    if (out[0] != '/') {
        snprintf(why, whylen, "%s: not an absolute path", out);
        return -EINVAL;
    }
    if (access(out, X_OK) < 0) {
        int e = errno;
        snprintf(why, whylen, "%s: %s", out, strerror(e));
        return -e;
    }
    return 0;
}

/* The new program runs once with --version before anything is handed over, and must say it
 * is a supervisor: a broken binary (truncated, another architecture, a missing library, a
 * script that fails) is refused while this one still runs, since after the execve nothing
 * would be left to go back to (as PID 1: a kernel panic). The check runs beside the loop
 * (its exit watched through a pidfd, the limit on a timer): the services are served
 * meanwhile, and a binary that starts slowly on a loaded machine (an ASan build in an
 * emulated VM took more than 5 s) has PREFLIGHT_MS, within svctl's 60 s for an answer. */
#define PREFLIGHT_MS 30000

struct preflight {
    struct sv *sv;
    uv_poll_t poll;              /* the child's pidfd: readable once it ended */
    uv_timer_t timer;            /* PREFLIGHT_MS */
    pid_t pid;
    int pidfd, out;              /* out: the read end of its stdout and stderr */
    int open;                    /* handles not closed yet */
    bool late;
    char path[sizeof ((struct sv *)0)->reexec_path];
    void (*done)(void *arg, int r, const char *said);
    void *arg;
};

/* What the check's outcome means: 0 (said: the program), or -errno with why. */
static int judge(const char *path, bool late, const siginfo_t *si, char *out, char *why,
                 size_t whylen)
{
    out[strcspn(out, "\n")] = 0;
    if (late) {
        snprintf(why, whylen, "%s --version did not end within %d ms: not re-executing", path,
                 PREFLIGHT_MS);
        return -ETIMEDOUT;
    }
    if (si->si_code != CLD_EXITED || si->si_status != 0) {
        char how[48];
        if (si->si_code == CLD_EXITED)
            snprintf(how, sizeof how, "exit %d", si->si_status);
        else
            snprintf(how, sizeof how, "killed by SIG%s", sigabbrev_np(si->si_status));
        snprintf(why, whylen, "%s --version: %s%s%s: a broken binary, not re-executing", path,
                 how, out[0] ? ": " : "", out);
        return -ENOEXEC;
    }
    if (strncmp(out, "supervisor (corral) ", 20)) {
        snprintf(why, whylen, "%s --version says '%s': not corral's supervisor, not "
                 "re-executing", path, out);
        return -ENOEXEC;
    }
    snprintf(why, whylen, "%s", path);
    return 0;
}

static void preflight_closed(uv_handle_t *h)
{
    struct preflight *pf = h->data;
    if (--pf->open == 0)
        free(pf);
}

/* The child ended (or was killed at the limit, or the supervisor stops): its output and
 * status read, the answer given, the handles closed. */
static void preflight_end(struct preflight *pf, bool cancel)
{
    struct sv *sv = pf->sv;
    char out[256], why[sizeof pf->path + 600];
    size_t n = 0;
    ssize_t k;
    while (n < sizeof out - 1 &&
           ((k = read(pf->out, out + n, sizeof out - 1 - n)) > 0 || (k < 0 && errno == EINTR)))
        n += k > 0 ? (size_t)k : 0;
    out[n] = 0;
    siginfo_t si = {0};
    if (cancel)
        syscall(SYS_pidfd_send_signal, pf->pidfd, SIGKILL, NULL, 0);
    /* the pidfd is non-blocking (libuv's poll made it so): clear that to collect the child */
    int fl = fcntl(pf->pidfd, F_GETFL);
    if (fl >= 0)
        fcntl(pf->pidfd, F_SETFL, fl & ~O_NONBLOCK);
    while (waitid((idtype_t)P_PIDFD, (id_t)pf->pidfd, &si, WEXITED) < 0 && errno == EINTR)
        ;
    int r = cancel ? -ESHUTDOWN : judge(pf->path, pf->late, &si, out, why, sizeof why);
    if (cancel)
        snprintf(why, sizeof why, "the supervisor is stopping");
    sv->preflight = NULL;
    uv_close((uv_handle_t *)&pf->poll, preflight_closed);
    uv_close((uv_handle_t *)&pf->timer, preflight_closed);
    close(pf->out);
    close(pf->pidfd);
    pf->done(pf->arg, r, why);
}

static void on_preflight_exit(uv_poll_t *p, int status, int events)
{
    (void)status;
    (void)events;
    preflight_end(p->data, false);
}

static void on_preflight_limit(uv_timer_t *t)
{
    struct preflight *pf = t->data;
    pf->late = true;
    syscall(SYS_pidfd_send_signal, pf->pidfd, SIGKILL, NULL, 0);   /* the poll then ends it */
}

/* Starts path --version with its output on a pipe; 0, or -errno with why. */
static int preflight_start(struct sv *sv, const char *path, struct preflight *pf, char *why,
                           size_t whylen)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
        int e = errno;
        snprintf(why, whylen, "pipe: %s", strerror(e));
        return -e;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    posix_spawn_file_actions_adddup2(&fa, p[1], 2);
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);   /* the services' fds: io/handed.h */
    char *argv[] = {(char *)path, "--version", NULL};
    int r = posix_spawn(&pf->pid, path, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    if (r != 0) {
        close(p[0]);
        snprintf(why, whylen, "%s: %s", path, strerror(r));
        return -r;
    }
    pf->out = p[0];
    pf->pidfd = (int)syscall(SYS_pidfd_open, pf->pid, 0);
    int e = pf->pidfd < 0 ? errno : 0;
    if (!e)
        fcntl(pf->out, F_SETFL, O_NONBLOCK);   /* read once it ended: never waits */
    if (e || uv_poll_init(sv->rt.loop, &pf->poll, pf->pidfd) < 0) {
        e = e ? e : EIO;
        kill(pf->pid, SIGKILL);
        while (waitpid(pf->pid, NULL, 0) < 0 && errno == EINTR)
            ;
        if (pf->pidfd >= 0)
            close(pf->pidfd);
        close(pf->out);
        snprintf(why, whylen, "watching %s --version: %s", path, strerror(e));
        return -e;
    }
    uv_timer_init(sv->rt.loop, &pf->timer);
    pf->poll.data = pf->timer.data = pf;
    pf->open = 2;
    uv_poll_start(&pf->poll, UV_READABLE, on_preflight_exit);
    uv_timer_start(&pf->timer, on_preflight_limit, PREFLIGHT_MS, 0);
    return 0;
}

/* The control socket through the execve (or not again: it failed). The services' fds and
 * their watch set have no close-on-exec from the start (io/handed.h). */
static void keep_all(struct sv *sv, bool keep)
{
    int fd = cr_control_fd(sv->ctl);
    if (fd >= 0)
        fcntl(fd, F_SETFD, keep ? 0 : FD_CLOEXEC);
}

/* The state memfd (without close-on-exec), or -1 (said in the log, nothing kept open). */
static int write_state(struct sv *sv)
{
    int mfd = memfd_create("corral-state", 0);
    if (mfd < 0) {
        cr_log(NULL, "reexec: memfd_create: %s", strerror(errno));
        return -1;
    }
    FILE *f = fdopen(dup(mfd), "w");
    if (!f) {
        close(mfd);
        cr_log(NULL, "reexec: out of memory");
        return -1;
    }
    fputs(STATE_MAGIC, f);
    fprintf(f, "since %llu\n", (unsigned long long)sv->reexec_since_us);
    fprintf(f, "since_cpu %llu\n", (unsigned long long)sv->reexec_cpu_us);
    fprintf(f, "since_faults %lu\n", sv->reexec_faults);
    fprintf(f, "fds_inherited %lu\n", sv->fd_inherited);
    int cfd = cr_control_fd(sv->ctl);
    if (cfd >= 0)
        fprintf(f, "control %d\n", cfd);
    int wfd = cr_watch_handover();
    if (wfd >= 0)
        fprintf(f, "watchset %d\n", wfd);
    char home[CG_HOME_MAX];
    if (cr_cg_root_handover(sv->rt.cgroot, home, sizeof home) > 0)
        fputs(home, f);
    if (cr_net_handover(sv->rt.net, f) < 0) {
        fclose(f);
        close(mfd);
        cr_log(NULL, "reexec: cannot write the network state");
        return -1;
    }
    char *line = malloc(CR_SVC_STATE_MAX);
    for (size_t i = 0; line && i < sv->all.n; i++) {
        int n = cr_svc_handover(sv->all.v[i], line, CR_SVC_STATE_MAX);
        if (n > 0)
            fwrite(line, 1, (size_t)n, f);
    }
    if (!line) {
        fclose(f);
        close(mfd);
        cr_log(NULL, "reexec: out of memory");
        return -1;
    }
    free(line);
    keep_all(sv, true);
    if (fclose(f) != 0) {
        keep_all(sv, false);
        close(mfd);
        cr_log(NULL, "reexec: cannot write the state: %s", strerror(errno));
        return -1;
    }
    lseek(mfd, 0, SEEK_SET);
    return mfd;
}

static int reexec_ok(struct sv *sv, const char *path, char *resolved, size_t len, char *why,
                     size_t whylen);

/* The process's page faults so far (they go on across the execve, as its CPU time does):
 * on a machine whose page tables are shadowed a fault costs 10-20 us, so the gap's report
 * says how many it took. */
static unsigned long faults(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? (unsigned long)(ru.ru_minflt + ru.ru_majflt) : 0;
}

static void do_reexec(uv_timer_t *t)
{
    struct sv *sv = t->data;
    char why[512];
    /* From here no event is handled until the new program's loop runs (sv_resume_gap). */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    sv->reexec_since_us = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);   /* goes on across the execve */
    sv->reexec_cpu_us = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
    sv->reexec_faults = faults();
    /* Checked again: the services may have moved since the reply. */
    char resolved[sizeof sv->reexec_path];
    if (reexec_ok(sv, sv->reexec_path, resolved, sizeof resolved, why, sizeof why) < 0) {
        cr_log(NULL, "reexec: not now: %s", why);
        cr_logs_retire(false);
        return;
    }
    cr_log(NULL, "reexec: %s (%zu service%s handed over)", sv->reexec_path, sv->all.n,
           sv->all.n == 1 ? "" : "s");
    /* Every line read so far is written before the execve ends the console's queue (and a
     * writer thread still there): the next program starts with the bytes still in the
     * pipes. */
    if (cr_logs_quiesce(REEXEC_LOG_WAIT_MS, why, sizeof why) < 0) {
        cr_log(NULL, "reexec: not now: %s (its lines would be lost)", why);
        cr_logs_retire(false);
        return;
    }
    int mfd = write_state(sv);
    if (mfd < 0) {
        cr_logs_retire(false);
        return;
    }
    char fdarg[16];
    snprintf(fdarg, sizeof fdarg, "%d", mfd);
    char *argv[8];
    int n = 0;
    argv[n++] = sv->reexec_path;
    argv[n++] = "-c";
    argv[n++] = (char *)sv->config_path;
    if (sv->pid1)
        argv[n++] = "--pid1";
    argv[n++] = "--resume";
    argv[n++] = fdarg;
    argv[n] = NULL;
    cr_control_reexec_notice(sv->ctl);
    cr_console_flush_wait(&sv->rt.console, REEXEC_LOG_WAIT_MS);
    cr_console_flush_wait(&sv->rt.console_err, REEXEC_LOG_WAIT_MS);
    /* Under systemd: reloading until the new program's READY=1, and its NOTIFY_SOCKET (the
     * watchdog's too) so that it goes on telling systemd. */
    sv_notify_reloading("re-executing");
    sv_notify_pass_on(true);
    cr_log_blocking();   /* every line queued so far is written before the execve */
    execv(sv->reexec_path, argv);
    int e = errno;
    sv_notify_pass_on(false);
    sv_notify("READY=1\nSTATUS=%s", sv->notified_status);   /* the old program goes on */
    keep_all(sv, false);
    close(mfd);
    cr_logs_retire(false);
    cr_log_nonblocking(sv->log_want_write);
    cr_log(NULL, "reexec: %s: %s; this supervisor goes on", sv->reexec_path, strerror(e));
}

/* Whether a re-exec to path can happen now; resolved is the program. */
static int reexec_ok(struct sv *sv, const char *path, char *resolved, size_t len, char *why,
                     size_t whylen)
{
    if (sv->shutting_down || sv->finished) {
        snprintf(why, whylen, "the supervisor is stopping");
        return -ESHUTDOWN;
    }
    if (sv->rt.run_mode) {
        snprintf(why, whylen, "not in `supervisor run`");
        return -EPERM;
    }
    int r = resolve(path, resolved, len, why, whylen);
    if (r < 0)
        return r;
    for (size_t i = 0; i < sv->all.n; i++)
        if (!cr_svc_handover_ok(sv->all.v[i], why, whylen))
            return -EBUSY;
    return cr_net_handover_ok(sv->rt.net, why, whylen);
}

/* Every millisecond until the writer threads are gone (a writer held up by its disk: after
 * REEXEC_LOG_WAIT_MS the re-exec goes on, and cr_logs_quiesce() says whether it can). */
static void when_alone(uv_timer_t *t)
{
    struct sv *sv = t->data;
    if (!cr_logs_alone() && uv_now(sv->rt.loop) - sv->reexec_asked_ms < REEXEC_LOG_WAIT_MS)
        return;
    uv_timer_stop(t);
    do_reexec(t);
}

int sv_reexec_check(struct cr_runtime *rt, const char *path,
                    void (*done)(void *arg, int r, const char *said), void *arg, char *why,
                    size_t whylen)
{
    struct sv *sv = sv_of(rt);
    if (sv->preflight) {
        snprintf(why, whylen, "a re-exec is being checked already");
        return -EBUSY;
    }
    struct preflight *pf = calloc(1, sizeof *pf);
    if (!pf) {
        snprintf(why, whylen, "out of memory");
        return -ENOMEM;
    }
    int r = reexec_ok(sv, path, pf->path, sizeof pf->path, why, whylen);
    if (r == 0)
        r = preflight_start(sv, pf->path, pf, why, whylen);
    if (r < 0) {
        free(pf);
        return r;
    }
    pf->sv = sv;
    pf->done = done;
    pf->arg = arg;
    sv->preflight = pf;
    return 0;
}

bool sv_reexec_child(const struct sv *sv, pid_t pid)
{
    return sv->preflight && sv->preflight->pid == pid;
}

void sv_reexec_cancel(struct sv *sv)
{
    if (sv->preflight)
        preflight_end(sv->preflight, true);
}

int sv_reexec(struct cr_runtime *rt, const char *path, char *why, size_t whylen)
{
    struct sv *sv = sv_of(rt);
    char resolved[sizeof sv->reexec_path];
    int r = reexec_ok(sv, path, resolved, sizeof resolved, why, whylen);
    if (r < 0)
        return r;
    memcpy(sv->reexec_path, resolved, sizeof resolved);
    if (!sv->reexec_timer_init) {
        uv_timer_init(rt->loop, &sv->reexec_timer);
        sv->reexec_timer.data = sv;
        sv->reexec_timer_init = true;
    }
    /* The log writer threads end first, the loop running meanwhile (cr_logs_retire): the
     * gap starts when this process is its only thread. */
    cr_logs_retire(true);
    sv->reexec_asked_ms = uv_now(rt->loop);
    uv_timer_start(&sv->reexec_timer, when_alone, 0, 1);
    return 0;
}

size_t sv_resume_services(const char *state)
{
    size_t n = 0;
    for (const char *p = state; p && (p = strstr(p, "\nsvc ")); p++)
        n++;
    return n;
}

struct sv_gap sv_resume_since(const char *state)
{
    const char *p = strstr(state, "\nsince ");
    const char *c = strstr(state, "\nsince_cpu ");
    const char *f = strstr(state, "\nsince_faults ");
    return (struct sv_gap){p ? strtoull(p + 7, NULL, 10) : 0, c ? strtoull(c + 11, NULL, 10) : 0,
                           f ? strtoul(f + 14, NULL, 10) : 0};
}

int sv_resume_watchset(const char *state)
{
    const char *p = strstr(state, "\nwatchset ");
    return p ? atoi(p + 10) : -1;
}

unsigned long sv_resume_inherited(const char *state)
{
    const char *p = strstr(state, "\nfds_inherited ");
    return p ? strtoul(p + 15, NULL, 10) : 3;
}

static uint64_t clock_us(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* The gap in wall time, and the CPU time the process spent in it (the first says as much
 * about the machine's load as about the supervisor; the second does not). */
void sv_resume_gap(struct sv_gap since)
{
    if (!since.since_us)
        return;
    uint64_t now = clock_us(CLOCK_MONOTONIC), cpu = clock_us(CLOCK_PROCESS_CPUTIME_ID);
    char used[96] = "";
    unsigned long flt = faults();
    if (since.cpu_us && cpu >= since.cpu_us)
        snprintf(used, sizeof used, "; %.2f ms of CPU, %lu page faults",
                 (double)(cpu - since.cpu_us) / 1000.0,
                 since.faults && flt >= since.faults ? flt - since.faults : 0);
    cr_log(NULL, "reexec: no event handled for %.2f ms (from the old program's last to the "
           "new one's loop%s)", (double)(now - since.since_us) / 1000.0, used);
}

char *sv_resume_read(int fd)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf)
            break;
        if (len + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    if (!buf || strncmp(buf, STATE_MAGIC, strlen(STATE_MAGIC))) {
        fprintf(stderr, "supervisor: --resume: not a state this supervisor reads\n");
        free(buf);
        return NULL;
    }
    buf[len] = 0;
    return buf;
}
