/* The opaque service: the rest of the supervisor asks (cr_svc_request) and reads
 * (cr_svc_view); its fields are service/internal.h's. One state machine per service, written
 * as a table (STYLE.md §1): fsm.c; its container: container.c; its life (creation, config,
 * logs, freeing, its view): service.c; the order of starts and stops: order.c.
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
#include "service/runtime.h"

enum cr_state {
    CR_ST_STOPPED, CR_ST_STARTING, CR_ST_RUNNING, CR_ST_BACKOFF, CR_ST_STOPPING, CR_ST_EXITED,
    CR_ST_FATAL, CR_NSTATES
};

const char *cr_state_name(enum cr_state s);

struct cr_svc;
struct cr_hist;
struct cr_exit;
struct cr_cg_limits;
struct cr_cg_root;
struct cr_cg_stats;

/* ---- asking: the one way to start and stop a service ---------------------------------------- */

enum cr_svc_req {
    /* A start that honours depends_on: a settled (or stopping) service is marked to start;
     * cr_order_start_pending() starts it once it is down and every dependency is ready, and
     * until then its view says why it waits. A service that is up is left alone. */
    CR_REQ_START,
    /* Cancels a pending start, and stops it if it is up. */
    CR_REQ_STOP,
    /* CR_REQ_STOP, then CR_REQ_START: exactly `svctl stop` then `svctl start`. */
    CR_REQ_RESTART,
};
void cr_svc_request(struct cr_svc *svc, enum cr_svc_req req);

/* ---- reading: everything the API shows, computed in one place -------------------------------- */

struct cr_svc_view {
    const char *name;
    enum cr_state state;
    enum cr_state from_state;    /* the state before the last change */
    unsigned tries;              /* supervisord's backoff count (its STARTING and BACKOFF
                                    events' tries) */
    bool giving_up;              /* BACKOFF on the way to FATAL (within one change): a
                                    failed start's outcome is FATAL */
    bool removed;                /* a reload took it out of the config (it stops, then goes) */
    pid_t pid;                   /* init's pid on the host; 0: no container */
    pid_t last_pid;              /* the last container's init, also once it is gone */
    bool ready;                  /* RUNNING, or its workload said it is ready (`ready` key) */
    int healthy;                 /* -1 not known (no checks, or none done yet), 0, 1 */
    int64_t uptime_ms;           /* how long the current workload has run; -1: none runs */
    int64_t next_try_ms;         /* BACKOFF: time to the next start; -1: none due */
    uint64_t restarts;           /* workload or container restarts, in the supervisor's life */
    uint64_t exits;              /* exits recorded (its workload's, or its container's) */
    uint64_t oom_kills;
    const struct cr_exit *last_exit;   /* NULL: none yet */
    int exit_status;             /* init's last: its code, or 128 + signal; -1 none */
    const char *why;             /* why a pending start waits or cannot happen, or "" */
    bool start_pending;          /* a start was asked for and waits (order.c takes it) */
    bool start_blocked;          /* ... and cannot happen: a dependency is FATAL */
    const char *status_text;     /* the last STATUS= it sent (sd_notify), or "" */
    const char *reason;          /* the setup failure that keeps it down (its container's
                                    setup failed, or it is FATAL), or NULL */
    uint64_t log_dropped;        /* output lines its log files could not take (disk full) */
    int64_t window_ms;           /* the window of its crash-loop summary (restart_window) */
    struct cr_hist *hist;        /* its exits and recent output (history.h), to read or to
                                    follow; NULL when there was no memory for it */
};
/* Fills v; the strings and pointers live until the service next changes. */
void cr_svc_view(const struct cr_svc *svc, struct cr_svc_view *v);
/* Its cgroup's figures (cgroup.h); every field -1 without a container. */
void cr_svc_stats(const struct cr_svc *svc, struct cr_cg_stats *st);
/* Its container's network (a bridge service's): its addresses ("10.89.0.2 fd00::2", and
 * per network with several) into addr, its received and sent bytes. 0, or -ENOENT: no
 * container or no network of the supervisor's making. */
int cr_svc_net(const struct cr_svc *svc, char *addr, size_t len, uint64_t *rx, uint64_t *tx);
const char *cr_svc_name(const struct cr_svc *svc);
enum cr_state cr_svc_state(const struct cr_svc *svc);
/* The config it runs with; NULL once a reload removed it. */
const struct cr_service *cr_svc_conf(const struct cr_svc *svc);
/* Settled: no container, no pending deadline (STOPPED, EXITED or FATAL). */
bool cr_svc_settled(const struct cr_svc *svc);

/* ---- its life ---------------------------------------------------------------------------------- */

/* Creates the service (pipes for its output, its timer) in STOPPED. */
int cr_svc_new(struct cr_runtime *rt, const struct cr_service *conf, struct cr_svc **out);
/* Opens the output pipes it lacks (they could not be made at its creation: out of fds, say);
 * 0 or -errno. A container starts only with them. */
int cr_svc_open_output(struct cr_svc *svc);
/* Frees a settled service once its handles are closed. */
void cr_svc_free(struct cr_svc *svc);
/* A new config for the same service (reload): future starts use it (one removed while it
 * stops is put back). */
void cr_svc_set_conf(struct cr_svc *svc, const struct cr_service *conf);
/* A reload removed it from the config: no start waits any more; stopped (CR_REQ_STOP), it
 * is dropped once settled (the owner's on_settled sees view.removed). */
void cr_svc_set_removed(struct cr_svc *svc);
/* The limits the config asks for. */
void cr_svc_limits(const struct cr_service *conf, struct cr_cg_limits *lim);
/* Writes the config's limits to the running container's cgroup (reload, live keys). 0 (also:
 * no container) or a negative errno. */
int cr_svc_apply_limits(struct cr_svc *svc);
/* Sends sig to init, if a container runs; -ESRCH if none. */
int cr_svc_signal(struct cr_svc *svc, int sig);
/* The current file of one of its streams (CR_LOG_STDOUT, CR_LOG_STDERR), or NULL (NONE, or
 * run mode). With redirect_stderr both answer stdout's file. The string lives until the next
 * reload. */
const char *cr_svc_log_path(const struct cr_svc *svc, int stream);

/* An event listener's side ([eventlistener:x]): fn sees its stdout's bytes as they are
 * read (they are logged too); NULL stops it. */
void cr_svc_set_stdout_raw(struct cr_svc *svc, void (*fn)(void *arg, const char *data,
                                                         size_t len), void *arg);
/* Writes to its stdin pipe (stdin = pipe, without blocking): the bytes written (fewer when
 * the pipe is full), -EPIPE without a container or a pipe, or a negative errno. */
int cr_svc_write_stdin(struct cr_svc *svc, const char *data, size_t len);

/* ---- live re-exec: a service's state across execve ---------------------------------------- */

/* Whether the service can be handed over now: settled, or RUNNING with its workload up and no
 * deadline pending, and its container on no bridge or CNI network (their host side is not
 * handed over). False with why set (a sentence) otherwise. */
bool cr_svc_handover_ok(const struct cr_svc *svc, char *why, size_t whylen);
/* Writes its state as one line (ending in '\n', at most CR_SVC_STATE_MAX bytes) into buf. The
 * fds the line names (its output pipes, its container's pidfd and events pipe) have no
 * close-on-exec (io/handed.h): the execve keeps them. The output pipes are not read any
 * more: what is in them stays for the next program, and the start of a line already read
 * goes in the line (hex). Returns the length, or -ENOSPC. */
#define CR_SVC_STATE_MAX (4 * 16384 + 32768)  /* two partial lines (io/output.h) in hex, the
                                                crash history (history.h) */
int cr_svc_handover(struct cr_svc *svc, char *buf, size_t len);
/* The name a state line is for (copied into name), or false for a line that is not one. */
bool cr_svc_state_name(const char *line, char *name, size_t len);
/* The CNI container id a state line hands over (its DEL record is kept from the sweep); the
 * line may go on with others after its '\n'. */
bool cr_svc_state_cni(const char *line, char *id, size_t len);
/* Takes the state a line gives (made by cr_svc_handover() in the supervisor before the
 * execve) for a service just made with rt->resuming: its output pipes, its running
 * container (adopted, not restarted), its crash history, restart counters and window (when
 * max_restarts is unchanged) and health. 0 or a negative errno (said in the log; the fds
 * the line names are closed, and its container, if any, is killed). */
int cr_svc_resume(struct cr_svc *svc, const char *line);
/* A state line no service takes (the configuration read after the execve lacks it): its
 * container is killed and collected, its cgroup removed, the fds the line names closed. */
void cr_svc_state_discard(struct cr_runtime *rt, const char *line);

#endif
