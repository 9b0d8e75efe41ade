/* init: the container side of corral. PID 1 of a service's namespaces, or a standalone
 * PID 1 / subreaper for any container (the way tini is used with `docker run --init`). */
#ifndef CORRAL_INIT_H
#define CORRAL_INIT_H

#include <stdbool.h>
#include <stdint.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "units.h"

enum init_restart { RESTART_NO, RESTART_ON_FAILURE, RESTART_ALWAYS };

struct init_opts {
    bool group;                 /* forward to the workload's process group */
    int verbose;                /* >0: log every reaped orphan */
    unsigned char rewrite[_NSIG]; /* received signal → forwarded signal (0: itself) */
    cr_codeset remap_exit;      /* final exit codes reported as 0 */
    int64_t grace_ms;           /* TERM → KILL for leftovers */
    int pdeathsig;
    enum init_restart restart;
    cr_codeset exit_codes;      /* "expected" codes for on-failure */
    int64_t restart_delay_ms, restart_delay_max_ms, restart_reset_after_ms, restart_window_ms;
    unsigned max_restarts;      /* 0: no limit */
    int events_fd;              /* -1: none */
    int spec_fd;                /* -1: standalone; else spec mode (the supervisor's) */
    int go_fd;                  /* spec mode: one byte here before the workload runs (its
                                   network is being set up meanwhile); EOF: exit 127; -1 */
    char **argv;                /* the workload */
    int64_t startsecs_ms;       /* a run shorter than this is a failed start */
    unsigned startretries;      /* give up after more failed starts in a row than this (0:
                                   at the first, as supervisord); UINT_MAX: never */
    int stop_signal;            /* besides TERM and INT, the signal that means "stop" */

    /* Spec mode (set by init_spec_setup): who and where the workload runs. */
    const char *exec_path;      /* execv() this; NULL: search argv[0] in PATH */
    bool set_ids;
    bool empty_mask;            /* spec mode: the supervisor starts us with every signal
                                   blocked; the workload gets an empty mask, not that one */
    uid_t uid;
    gid_t gid;
    const gid_t *groups;
    size_t ngroups;
    int umask;                  /* -1: inherited */
    const char *directory;      /* NULL: stay in / */

    /* Readiness and health checks (spec mode; ready.c, health.c). */
    int ready;                  /* enum cr_ready (shared/spec.h); 0: none */
    int ready_arg;              /* fd:N → N, tcp:PORT → PORT */
    char **ready_argv;          /* exec: the probe */
    int64_t ready_timeout_ms;   /* 0: no limit */
    char **health_argv;         /* NULL: no health checks */
    int64_t health_interval_ms, health_timeout_ms, health_start_period_ms;
    unsigned health_retries;
    int health_action;          /* enum cr_health_action */
    const char *notify_dir;     /* a directory only this container sees (on init's /dev
                                   tmpfs) for the NOTIFY_SOCKET; NULL: an abstract socket */

    /* Confinement of every child (spec mode; confine.c). */
    bool confine;               /* the spec's [security] applies */
    uint64_t caps, ambient;     /* bounding/permitted set (CR_CAPS_ALL: unchanged); ambient */
    bool no_new_privs;
    const void *seccomp;        /* struct sock_fprog, NULL: no filter */
};

/* confine.c. confine_paths: masked and read-only paths, inside the new root. confine_self:
 * init's own bounding set, capabilities and non-dumpable state, and o's confinement from
 * the spec (reads the seccomp program). Both return 0, or -1 with a reason in err. */
struct cr_spec;
int confine_paths(const struct cr_spec *s, char *err, size_t len);
int confine_self(const struct cr_spec *s, struct init_opts *o, char *err, size_t len);
/* In a child before exec: groups, gid, uid (when o->set_ids), then capabilities, ambient
 * capabilities, no_new_privs and the seccomp filter. Returns 0, or the stage that failed
 * (errno set). */
enum { CONFINE_GROUPS = 1, CONFINE_GID, CONFINE_UID, CONFINE_CAPS, CONFINE_NNP,
       CONFINE_SECCOMP };
int confine_child(const struct init_opts *o);
const char *confine_stage_name(int stage);

/* Spec mode: reads the spec from spec_fd, builds the container (mounts, pivot_root,
 * hostname, loopback) and fills o from it. Returns 0, or 125 after reporting setup-failed. */
int init_spec_setup(int spec_fd, struct init_opts *o);

/* Parses argv and the INIT_* environment into o (removing those variables from environ).
 * Returns 0, or an exit status (2 for usage errors, 0 after --help/--version) with a
 * message already printed. */
int init_parse_args(int argc, char **argv, struct init_opts *o, bool *done);

/* The PID-1 loop: runs the workload per policy, reaps, forwards. Returns init's exit status. */
int pid1_run(const struct init_opts *o);

/* What ready.c and health.c ask of pid1.c, the workload's host: send the stop signal to the
 * workload (then KILL after the grace), and decide what its exit means: a failed start
 * (restarted as one), a restart, or the end (init exits). Handed down (ready_init,
 * health_begin): calls point one way, from pid1.c to ready.c to health.c. */
enum pid1_stop_why { PID1_FAILED_START, PID1_RESTART, PID1_STOP };
typedef void (*pid1_stop_fn)(enum pid1_stop_why why);

/* An exec probe: a child in its own process group, as the workload's user, its output
 * captured (the last line explains a failure). */
struct init_probe {
    pid_t pid;                  /* 0: none running */
    int out;                    /* read end of its stdout+stderr, -1 */
    int64_t started_ms, deadline_ms;
    bool timed_out;
};
/* Starts argv (searched in PATH) bounded by timeout_ms. 0, or a negative errno. */
int probe_start(struct init_probe *p, const struct init_opts *o, char *const *argv,
                int64_t timeout_ms, int64_t now);
/* KILLs its process group at the deadline; call when now >= p->deadline_ms. */
void probe_expire(struct init_probe *p);
/* If pid is p's: collects the result (true: success; else why holds the reason), resets p,
 * returns 1; else 0. */
int probe_reaped(struct init_probe *p, pid_t pid, int st, bool *ok, char *why, size_t len);
/* Kills it and forgets it (its zombie is reaped as any orphan). */
void probe_cancel(struct init_probe *p);

/* CLOCK_MONOTONIC in ms, for every file of init (inline here: pid1.c and ready.c both read
 * the clock, and neither owns it). The system call, not musl's vDSO path: its first use looks
 * the symbol up in the vDSO (three page faults, ~15 us each on a virtual machine, at every
 * container's start); init reads the clock a few times per event. */
static inline int64_t now_ms(void)
{
    struct timespec ts;
    syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ready.c: readiness detection. ready_init binds the notify socket (before any workload;
 * 0 or an exit status after reporting setup-failed). The rest follow the workload's life. */
int ready_init(const struct init_opts *o, pid1_stop_fn stop);
int ready_before_fork(void);              /* fd:N: the pipe; 0 or -errno */
void ready_in_child(void);                /* the workload's side, before exec */
void ready_started(int64_t now);          /* the workload runs: start detecting */
void ready_stopped(void);                 /* it ended: stop everything */
bool ready_is_ready(void);
int ready_pollfds(struct pollfd *p, int max);
void ready_on_poll(const struct pollfd *p, int n, int64_t now);
int64_t ready_deadline(void);             /* -1: none */
void ready_tick(int64_t now);
bool ready_reaped(pid_t pid, int st, int64_t now);

/* console.c: the container's own terminal (spec key console). console_open, from the
 * set-up: a pty of the container's devpts (dev: its /dev, before pivot_root), bound on
 * /dev/console, owned by the workload's user; 0, or -1 with err. The rest: the caller's
 * terminal made raw and the window size copied (start), the workload's side (in_child: a
 * session of its own with the pty as its controlling terminal and stdio), the copying both
 * ways from init's loop (pollfds, on_poll), SIGWINCH (resize), and the end (end: the last
 * output, the caller's terminal as it was). */
struct pollfd;
int console_open(const char *dev, uid_t uid, gid_t gid, char *err, size_t errlen);
bool console_on(void);
void console_start(void);
void console_in_child(void);
int console_pollfds(struct pollfd *p, int max);
void console_on_poll(const struct pollfd *p, int n);
void console_resize(void);
void console_end(void);

/* health.c: health checks, from readiness on. */
void health_begin(const struct init_opts *o, int64_t now, pid1_stop_fn stop);
void health_stopped(void);
int64_t health_deadline(void);
void health_tick(int64_t now);
bool health_reaped(pid_t pid, int st, int64_t now);

#endif
