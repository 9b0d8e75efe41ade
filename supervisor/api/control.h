/* The control socket: svctl's way in (protocol: shared/ctl_proto.h, svctl(8)).
 *
 * A unix stream socket served on the supervisor's libuv loop. It is created mode 0600 (its
 * directory 0700 when we create it), and every peer's credentials are checked with
 * SO_PEERCRED: only root (or the supervisor's own uid) is served, anyone else gets
 * `error denied` and is disconnected. Each client has a bounded line buffer, a deadline to
 * send a whole request (CR_CTL_TIMEOUT_MS, not reset by single bytes), and a bounded queue
 * of unsent responses; a client that exceeds any of them is dropped. There are at most
 * CR_CTL_CLIENTS_MAX clients at once; more are told `error busy` and closed.
 *
 * The runtime (runtime.c) gives this module what it acts on through the cr_rt_* functions
 * below; the reload plan is computed there and returned here as a struct cr_plan. */
#ifndef CORRAL_CONTROL_H
#define CORRAL_CONTROL_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "ini_reader.h"

struct cr_runtime;
struct cr_svc;

#define CR_CTL_CLIENTS_MAX 512
#define CR_CTL_OUTQ_MAX (1024 * 1024)      /* unsent response bytes before a client is dropped */
#define CR_CTL_FOLLOW_MAX (256 * 1024)     /* unsent `logs -f` bytes before lines are dropped */

/* ---- the reload plan ---------------------------------------------------------------------- */
enum cr_plan_action {
    CR_PLAN_KEEP,      /* unchanged */
    CR_PLAN_START,     /* new (or stopped, with a changed config) and autostart: starts */
    CR_PLAN_ADD,       /* new, autostart=false: added, not started */
    CR_PLAN_STOP,      /* gone from the config: stops and is removed */
    CR_PLAN_RESTART,   /* a key that needs a restart changed, and it runs: restarts */
    CR_PLAN_LIVE,      /* only live keys changed (limits, stop settings...): applied as it runs */
    CR_PLAN_UPDATE,    /* changed, not running: the new config is used at its next start */
};
struct cr_plan_item {
    char *name;
    enum cr_plan_action action;
    char keys[256];              /* the changed keys, comma-separated (cut with "...") */
};
struct cr_plan {
    struct cr_plan_item *v;
    size_t n, cap;
    struct cr_errlist errors;    /* the new config's errors (then nothing is applied) */
    struct cr_errlist notices;
};
const char *cr_plan_action_name(enum cr_plan_action a);
/* Adds an item; keys lists what differs between a and b (either may be NULL). */
void cr_plan_add(struct cr_plan *p, const char *name, enum cr_plan_action a,
                 const struct cr_service *a_conf, const struct cr_service *b_conf);
void cr_plan_free(struct cr_plan *p);
/* True when any key differs between a and b (as parsed values). */
bool cr_plan_differs(const struct cr_service *a, const struct cr_service *b);

/* ---- what the runtime provides (runtime.c) ------------------------------------------------ */
/* The services, in the runtime's order. */
size_t cr_rt_services(struct cr_runtime *rt, struct cr_svc *const **v);
/* Reloads the config file: computes the plan into *plan (may be NULL) and, when apply, acts
 * on it. 0, -EINVAL when the new config has errors (nothing changes), -ENOMEM. */
int cr_rt_reload(struct cr_runtime *rt, bool apply, struct cr_plan *plan);
/* Stops every service (reverse priority), then the supervisor exits: SIGTERM's path. */
void cr_rt_shutdown(struct cr_runtime *rt, const char *why);
bool cr_rt_shutting_down(struct cr_runtime *rt);


/* ---- the server ----------------------------------------------------------------------------- */
struct cr_control;
/* Creates the socket at path and serves it on rt->loop. A path where a live supervisor
 * already answers is left alone (-EADDRINUSE); a stale socket is replaced. */
int cr_control_open(struct cr_runtime *rt, const char *path, struct cr_control **out, char *err,
                    size_t errlen);
/* Closes every client and the socket, and removes the socket file (if still ours). */
void cr_control_close(struct cr_control *c);

#endif
