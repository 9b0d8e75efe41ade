/* Inside the running supervisor: what daemon.c (the loop, signals, start-up, shutdown),
 * reload.c and oneshot.c share. */
#ifndef CORRAL_DAEMON_INT_H
#define CORRAL_DAEMON_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "api/host.h"
#include "config/config.h"
#include "config/diff.h"
#include "pid1/pid1.h"
#include "service/order.h"
#include "service/service.h"

struct cr_control;
struct cr_metrics;
struct cr_rpc;
struct sv_evl;
struct sv_run_net;

struct sv {
    struct cr_runtime rt;
    struct cr_config *cfg;
    bool cfg_heap;               /* cfg was allocated here (after a reload) */
    struct cr_svcs all;          /* the services (service/order.h) */
    uv_signal_t sigs[10];
    int nsigs;
    bool shutting_down, finished;
    bool stepping, step_again;
    int exit_status;
    struct cr_svc *run_svc;
    struct cr_control *ctl;      /* the control socket (control.h); NULL when not open */
    struct cr_metrics *metrics;  /* metrics_listen's HTTP server (metrics.h); NULL: off */
    struct cr_rpc *rpc;          /* supervisord's XML-RPC servers (rpc.h); NULL: none */
    struct sv_evl *evl;          /* supervisord's event listeners (listeners.h) */
    struct sv_run_net *run_nets; /* the runs whose containers it connected (run_net.h) */
    struct cr_api_host api;      /* what both act on (api/host.h) */
    unsigned long fd_inherited;  /* fds open when it started (fd_budget.h) */
    char *pidfile;               /* [supervisord] pidfile as written at start (a reload does
                                    not move it), removed at exit; NULL: none */
    bool notify;                 /* systemd listens (sv_notify_open): else no status is
                                    counted (a walk of every service at each change) */
    bool notified_ready;         /* READY=1 went to systemd (notify.h) */
    char notified_status[160];   /* the last STATUS= sent */
    char missing[384];           /* the guarantees this place lacks (no cgroups), or "" */
    bool pid1;                   /* the machine's PID 1 (pid1/pid1.h) */
    enum cr_power power;         /* as PID 1: what follows the stop of every service */
    /* Live re-exec (reexec.c): the program asked for, and the timer that runs the execve
     * once the reply to svctl is sent. */
    const char *config_path;
    char reexec_path[4096];
    uv_timer_t reexec_timer;
    bool reexec_timer_init;
    uint64_t reexec_since_us;    /* CLOCK_MONOTONIC when the handover began (the gap's start) */
    uint64_t reexec_cpu_us;      /* and the process's CPU time then */
    unsigned long reexec_faults; /* and its page faults */
    uint64_t reexec_asked_ms;    /* uv_now when it was asked (the writer threads then end) */
    int reexec_signal;           /* [supervisor] reexec_signal as watched since the start; -1 */
    struct preflight *preflight; /* the new program's --version check under way, or NULL */
    uv_timer_t starts_timer;     /* the next slice of starts (service/order.h) */
    bool starts_timer_init;
    void (*log_want_write)(int fd, bool on);   /* daemon.c's, for cr_log_nonblocking() */
    int leftovers, leftovers_failed;   /* the sweep's, still being removed by the reaper */
    uint64_t leftovers_since;          /* uv_now() when the reaper took them */
};

/* reexec.c: the api host's reexec and reexec_check (api/host.h). */
int sv_reexec(struct cr_runtime *rt, const char *path, char *why, size_t whylen);
int sv_reexec_check(struct cr_runtime *rt, const char *path,
                    void (*done)(void *arg, int r, const char *said), void *arg, char *why,
                    size_t whylen);
/* reexec.c: whether pid is the --version check's child (the orphans' reaper leaves it); the
 * check under way ended (its done told -ESHUTDOWN) as the supervisor stops. */
bool sv_reexec_child(const struct sv *sv, pid_t pid);
void sv_reexec_cancel(struct sv *sv);
/* reexec.c: when the old program's handover began (the state's "since" line; 0: none), and
 * the log line saying how long no event was handled since, called just before the new
 * program's loop runs. */
struct sv_gap {
    uint64_t since_us, cpu_us;   /* CLOCK_MONOTONIC, CLOCK_PROCESS_CPUTIME_ID */
    unsigned long faults;        /* the process's page faults (getrusage) */
};
struct sv_gap sv_resume_since(const char *state);
void sv_resume_gap(struct sv_gap since);
/* reexec.c: the fds the first supervisor inherited (fd_budget.h), from the state. */
unsigned long sv_resume_inherited(const char *state);
/* reexec.c: the fd of the set of watched fds handed over (io/watch.h), or -1. */
int sv_resume_watchset(const char *state);

static inline struct sv *sv_of(struct cr_runtime *rt)
{
    return (struct sv *)rt;   /* rt is the first member */
}

/* reload.c: reads the config again and works out the plan (into plan, when given); with
 * apply, acts on it. 0, -EINVAL (the new config has errors: nothing changes), -ENOMEM. */
int sv_reload(struct sv *sv, const char *why, bool apply, struct cr_plan *plan);

/* reload.c: the networks' kept addresses of services gone from sv->cfg (or from one of their
 * networks) given back (at start-up and after a reload). */
void sv_net_reclaim(struct sv *sv);

/* oneshot.c: `supervisor run NAME [-- CMD ARGS...]` (its signals are watched by daemon.c).
 * sv_oneshot_args() reads what follows the options (nothing: *conf NULL, not this mode)
 * and gives the service to run, its command replaced and its restarts off; returns 0, 2
 * (usage, said) or 1 (failure, said). */
int sv_oneshot_args(struct cr_config *cfg, int argc, char **argv, struct cr_service **conf);
/* Adds the service and starts it. 0 or -1. */
int sv_oneshot_start(struct sv *sv, struct cr_service *conf);
/* A signal to the supervisor in this mode: TERM and INT stop the service, others go to it. */
void sv_oneshot_signal(struct sv *sv, int signum);

#endif
