/* Inside service/: the service's fields, its state machine's events, its container, and
 * what the state machine asks of a container. Only the files of service/ include this (and unit
 * tests); every other layer sees the opaque struct cr_svc of service.h and reads it through
 * cr_svc_view(). `make check-layers` refuses another folder's internal.h. */
#ifndef CORRAL_SERVICE_INTERNAL_H
#define CORRAL_SERVICE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "config/config.h"
#include "io/output.h"
#include "io/watch.h"
#include "service/service.h"

enum cr_svc_event {
    CR_EV_START,        /* start (a request's pending start whose time came: order.c) */
    CR_EV_STOP,         /* stop requested (svctl, shutdown, reload, run mode's signal) */
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

const char *cr_svc_event_name(enum cr_svc_event ev);

/* streams.c: its log files as its config says (again after a reload), its taps. */
void cr_svc_logs_attach(struct cr_svc *svc);
void cr_svc_taps(struct cr_svc *svc);

/* How a container reports an event to the service that owns it (cr_svc_event). */
typedef void (*cr_container_report)(struct cr_svc *svc, enum cr_svc_event ev);

/* What the state machine does to a container: container.c's cr_container_ops_real, or a
 * unit test's fake that records the calls. spawn sets svc->ct on success. */
struct cr_container_ops {
    int (*spawn)(struct cr_svc *svc, cr_container_report report);
    int (*stop_signal)(struct cr_svc *svc, int sig);   /* 0 or a negative errno */
    void (*kill)(struct cr_svc *svc);                  /* everything in its cgroup */
};
extern const struct cr_container_ops cr_container_ops_real;

/* A running container: init, its pidfd, its events pipe, its cgroup. */
struct cr_container {
    struct cr_svc *svc;
    cr_container_report report;
    pid_t pid;
    int pidfd;
    struct cr_watch pid_watch;   /* io/watch.h */
    int ev_fd;
    int stdin_wfd;               /* stdin = pipe: the write end of its stdin, else -1 */
    struct cr_watch ev_watch;
    int open_handles;            /* watches not closed yet */
    char *evpart;                /* the start of an event line whose end has not come yet
                                    (malloc'd while there is one: most reads end in '\n') */
    size_t evlen;
    struct cr_cg *cg;
    uint64_t spawned_ms;
    int64_t oom_seen;            /* OOM kills counted in the cgroup so far */
    bool exited;                 /* init reaped */
};

/* The workload inside the current container, as init reports it (container.c keeps it). */
struct cr_workload {
    bool up;                     /* a `started` not yet matched by an `exited` */
    bool ready;                  /* init said it is ready (its `ready` key) */
    uint64_t started_mono;       /* CLOCK_MONOTONIC ms of its start; 0 none */
    uint64_t next_start_mono;    /* init's restart of it is due then (BACKOFF); 0 none */
};

struct cr_svc {
    struct cr_runtime *rt;
    const struct cr_container_ops *ops;
    char *name;
    const struct cr_service *conf;   /* the current config's; NULL once removed from it */
    enum cr_state state;
    enum cr_state from_state;        /* the state before the last change */
    pid_t last_pid;                  /* the last container's init (kept at each change) */
    bool giving_up;                  /* in the BACKOFF that FATAL follows at once */
    unsigned tries;                  /* supervisord's backoff count: BACKOFFs since it last
                                        ran, gave up or exited */
    uv_timer_t timer;
    /* its stdout's bytes as read, for an event listener (cr_svc_set_stdout_raw) */
    void (*out_raw)(void *arg, const char *data, size_t len);
    void *out_raw_arg;
    struct cr_out_stream out, err;   /* err unused with redirect_stderr or in run mode */
    bool out_open, err_open;
    struct cr_container *ct;         /* NULL when no container exists */
    struct cr_workload wl;

    /* Copies of the lifecycle keys, so a service removed by a reload can still be stopped. */
    int stopsignal;
    int64_t stopwait_ms;

    unsigned attempt;                /* container restarts since a start or a long run */
    unsigned failed_starts;          /* containers in a row that never reached RUNNING */
    int64_t *restarts;               /* ring of container restart times (max_restarts) */
    unsigned nrestarts;
    bool reached_running;            /* this container's workload reached RUNNING */
    bool stop_requested, gave_up, setup_failed;
    bool removed;                    /* drop once settled (reload removed it) */
    int closing;                     /* handles being closed; freed when the last is */
    uint64_t ran_ms;                 /* how long the last container lived */
    int exit_status;                 /* init's last status: code, or 128+signal; -1 none */
    bool last_oom;
    /* network = cni:NAME: the container's CNI id and its ADD result (for the DEL when it is
     * gone), and the result's addresses; NULL / "" when none */
    char *cni_id, *cni_result, *cni_list;
    int cni_nsfd;                    /* its namespace, held until the DEL; -1 */
    char cni_addrs[128];
    bool said_rootfs_plain;          /* logged that its rootfs could not be idmapped */
    struct cr_hist *hist;            /* exits and recent output (history.h); may be NULL */

    /* A requested start (cr_svc_request), taken by order.c once the service is settled and
     * every dependency is ready; why says what it waits for, or why it cannot happen. */
    bool pending;
    bool blocked;                    /* pending, but a dependency is FATAL: it cannot happen */
    char why[160];
    int healthy;                     /* -1 not known (no checks, or none done yet), 0, 1 */
    bool health_stop;                /* init stopped it (health_action = stop): stays down */
    char status_text[128];           /* the last STATUS= it sent (sd_notify), or "" */
    /* Its image (image.c): the unpack under way, whether one ended since the last start
     * looked, and how (an error: its container is not started). */
    struct cr_image_job *image_job;
    bool image_tried;
    uint64_t image_t0;
    char image_err[1200];
};

/* Feeds one event to the state machine (fsm.c). */
void cr_svc_event(struct cr_svc *svc, enum cr_svc_event ev);

#endif
