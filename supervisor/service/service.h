/* One state machine per service, written as a table (STYLE.md §1): fsm.c; its container:
 * container.c; its life (creation, config, logs, freeing): service.c.
 *
 * States are supervisord's: STOPPED, STARTING, RUNNING, BACKOFF, STOPPING, EXITED, FATAL.
 * Events come from the user (start, stop), from init's events pipe (started, exited,
 * restarting, gave-up, setup-failed), from init's pidfd (init-exited: the container is gone)
 * and from the service's one timer (its current deadline: startsecs in STARTING, the restart
 * delay in BACKOFF, stopwaitsecs in STOPPING). Each cell of the table is a small named
 * function; impossible pairs are the named no-op.
 *
 * Restarts happen at two levels: init restarts the workload inside the container (its
 * `restarting` events show here as BACKOFF, its `started` as STARTING → RUNNING), and the
 * supervisor starts a new container when init itself exits, per the same policy
 * (shared/restart.h: the delay doubling from restart_delay, or its 100 ms floor, up to
 * restart_delay_max, reset after a container ran restart_reset_after, shortened by a random
 * 0-20 %; max_restarts within restart_window), unless init gave up (FATAL) or the service
 * was stopped. */
#ifndef CORRAL_SERVICE_H
#define CORRAL_SERVICE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <uv.h>

#include "config/config.h"
#include "events.h"
#include "io/output.h"
#include "net/host.h"

enum cr_state {
    CR_ST_STOPPED, CR_ST_STARTING, CR_ST_RUNNING, CR_ST_BACKOFF, CR_ST_STOPPING, CR_ST_EXITED,
    CR_ST_FATAL, CR_NSTATES
};

enum cr_svc_event {
    CR_EV_START,        /* start requested (autostart, reload) */
    CR_EV_STOP,         /* stop requested (shutdown, reload, run mode's signal) */
    CR_EV_STARTED,      /* init: the workload was exec'd */
    CR_EV_EXITED,       /* init: the workload exited */
    CR_EV_RESTARTING,   /* init: it will start it again after a delay */
    CR_EV_GAVE_UP,      /* init: restart limit reached, init exits */
    CR_EV_SETUP_FAILED, /* init: the container (or the exec) could not be set up */
    CR_EV_INIT_EXITED,  /* the pidfd: init is gone, and with it the container */
    CR_EV_TIMER,        /* the current deadline passed */
    CR_EV_READY,        /* init: the workload is ready (its `ready` key; none: startsecs) */
    CR_NEVENTS
};

const char *cr_state_name(enum cr_state s);

struct cr_svc;
struct cr_hist;
struct cr_cg;
struct cr_cg_root;
struct cr_cg_limits;

/* How a container reports an event to the service that owns it (cr_svc_event). */
typedef void (*cr_container_report)(struct cr_svc *svc, enum cr_svc_event ev);

/* What every service shares: the loop, the cgroup root, init, the console. */
struct cr_runtime {
    uv_loop_t *loop;
    struct cr_cg_root *cgroot;
    struct cr_net *net;          /* the host side of the bridge networks; NULL in run mode */
    char *run_dir;               /* [supervisor] run_dir, as the supervisor started */
    char *cgroup_root;           /* [supervisor] cgroup_root, likewise */
    int init_fd;                 /* the sealed init memfd */
    int devnull;
    bool run_mode;               /* `supervisor run`: one service, once, on the terminal */
    bool quiet;                  /* log only problems (run mode) */
    bool stopping_all;           /* SIGTERM/SIGINT: a container that exits is not replaced */
    struct cr_console console;
    struct rlimit nofile;        /* RLIMIT_NOFILE as the supervisor was started with */
    uint64_t rnd;                /* xorshift state for the restart jitter; seed with
                                    cr_runtime_seed() */
    /* Called when a service settles in STOPPED, EXITED or FATAL (no container, no timer). */
    void (*on_settled)(struct cr_runtime *rt, struct cr_svc *svc);
    /* Called when a service becomes ready (enters RUNNING): its dependents may start. */
    void (*on_ready)(struct cr_runtime *rt, struct cr_svc *svc);
    /* The service of that name, or NULL (network = service:OTHER finds OTHER's container). */
    struct cr_svc *(*find)(struct cr_runtime *rt, const char *name);
};

/* A running container: init, its pidfd, its events pipe, its cgroup. */
struct cr_container {
    struct cr_svc *svc;
    cr_container_report report;
    pid_t pid;
    int pidfd;
    uv_poll_t pid_poll;
    int ev_fd;
    uv_poll_t ev_poll;
    int open_handles;
    char *evpart;                /* the start of an event line whose end has not come yet
                                    (malloc'd while there is one: most reads end in '\n') */
    size_t evlen;
    struct cr_cg *cg;
    uint64_t spawned_ms;
    int64_t oom_seen;            /* OOM kills counted in the cgroup so far */
    bool exited;                 /* init reaped */
};

struct cr_svc {
    struct cr_runtime *rt;
    char *name;
    const struct cr_service *conf;   /* the current config's; NULL once removed from it */
    enum cr_state state;
    uv_timer_t timer;
    struct cr_out_stream out, err;   /* err unused with redirect_stderr or in run mode */
    bool out_open, err_open;
    struct cr_container *ct;         /* NULL when no container exists */

    /* Copies of the lifecycle keys, so a service removed by a reload can still be stopped. */
    int stopsignal;
    int64_t stopwait_ms;

    unsigned attempt;                /* container restarts since a start or a long run */
    unsigned failed_starts;          /* containers in a row that never reached RUNNING */
    int64_t *restarts;               /* ring of container restart times (max_restarts) */
    unsigned nrestarts;
    bool reached_running;            /* this container's workload reached RUNNING */
    bool stop_requested, gave_up, setup_failed;
    bool want_start;                 /* start again once stopped (reload restart) */
    bool removed;                    /* drop once settled (reload removed it) */
    int closing;                     /* handles being closed; freed when the last is */
    uint64_t ran_ms;                 /* how long the last container lived */
    int exit_status;                 /* init's last status: code, or 128+signal; -1 none */
    bool last_oom;
    struct cr_hist *hist;            /* exits and recent output (history.h); may be NULL */

    /* Dependencies, readiness, health (order.c orders starts and stops by depends_on). */
    bool start_pending;              /* start once every dependency is ready */
    char why[160];                   /* why a pending start waits or cannot happen; "" */
    bool ready;                      /* RUNNING: ready (its `ready` key), or up startsecs */
    int healthy;                     /* -1 not known (no checks, or none done yet), 0, 1 */
    bool health_stop;                /* init stopped it (health_action = stop): stays down */
    char status_text[128];           /* the last STATUS= it sent (sd_notify), or "" */
};

/* Seeds rt->rnd (getrandom, else the clock and the pid). */
void cr_runtime_seed(struct cr_runtime *rt);

/* Creates the service (pipes for its output, its timer) in STOPPED. */
int cr_svc_new(struct cr_runtime *rt, const struct cr_service *conf, struct cr_svc **out);
/* Frees a settled service once its handles are closed. */
void cr_svc_free(struct cr_svc *svc);
/* Feeds one event to the state machine. */
void cr_svc_event(struct cr_svc *svc, enum cr_svc_event ev);
/* A new config for the same service (reload): future starts use it. */
void cr_svc_set_conf(struct cr_svc *svc, const struct cr_service *conf);
/* Settled: no container, no pending deadline. */
bool cr_svc_settled(const struct cr_svc *svc);
/* The limits the config asks for. */
void cr_svc_limits(const struct cr_service *conf, struct cr_cg_limits *lim);
/* Writes the config's limits to the running container's cgroup (reload, live keys). */
int cr_svc_apply_limits(struct cr_svc *svc);
/* Sends sig to init, if a container runs. */
int cr_svc_signal(struct cr_svc *svc, int sig);
/* Lines of its output its log files could not take (disk full...), since it was created. */
uint64_t cr_svc_log_dropped(const struct cr_svc *svc);
/* The current file of one of its streams (CR_LOG_STDOUT, CR_LOG_STDERR), or NULL (NONE, or
 * run mode). With redirect_stderr both answer stdout's file. The string lives until the next
 * reload. */
const char *cr_svc_log_path(const struct cr_svc *svc, int stream);

#endif
