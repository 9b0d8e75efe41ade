/* The reload plan: what a new configuration changes, service by service, worked out without
 * side effects from the running config, the new one and a plain list of the services that
 * exist (config/ is below service/: the caller says what it needs to know of them).
 *
 * The key table decides (keys.h, enum cr_key_reload): a changed restart key restarts a
 * running service, a changed live key is written to its cgroup, any other change is taken
 * as it runs. `svctl check` prints the plan; a reload walks exactly it (reload.c), one
 * service operation per item. */
#ifndef CORRAL_CONFIG_DIFF_H
#define CORRAL_CONFIG_DIFF_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "config/config.h"

enum cr_plan_action {
    CR_PLAN_KEEP,      /* unchanged */
    CR_PLAN_START,     /* new (or stopped, with a changed config) and autostart: starts */
    CR_PLAN_ADD,       /* new, autostart=false: added, not started */
    CR_PLAN_STOP,      /* gone from the config: stops and is removed */
    CR_PLAN_RESTART,   /* a key that needs a restart changed, and it runs: restarts */
    CR_PLAN_LIVE,      /* only other keys changed, and it runs: its limits are written to its
                          cgroup (when .limits), the rest it takes as it runs; [supervisor]:
                          the supervisor's log limits are applied */
    CR_PLAN_UPDATE,    /* changed, not running: the new config is used at its next start;
                          [supervisor]: keys read when the supervisor starts */
};

/* A service as it is now (filled in by the caller, from the services that exist). */
enum cr_plan_state {
    CR_PLAN_ACTIVE,    /* not settled: a container runs, starts, stops, or waits to restart */
    CR_PLAN_STOPPED,   /* settled in STOPPED */
    CR_PLAN_DOWN,      /* settled in EXITED or FATAL */
};
struct cr_plan_svc {
    const char *name;
    enum cr_plan_state state;
};

#define CR_PLAN_GLOBAL "[supervisor]"   /* the item of the [supervisor] keys (no service has
                                           this name) */

struct cr_plan_item {
    char *name;                  /* a service, or CR_PLAN_GLOBAL */
    char group[CR_NAME_MAX + 1]; /* its supervisord group ([group:G], else its program) */
    enum cr_plan_action action;
    bool create;                 /* no such service yet: made from the new config */
    bool limits;                 /* LIVE: a limit changed, written to the running cgroup */
    bool global;                 /* the [supervisor] section */
    ssize_t conf;                /* its index in the new config's services; -1: none */
    char keys[256];              /* the changed keys, comma-separated (cut with "..."); "spec"
                                    when only what was resolved on the machine changed */
};
struct cr_plan {
    struct cr_plan_item *v;
    size_t n, cap;
    struct cr_errlist errors;    /* the new config's errors (then nothing is applied) */
    struct cr_errlist notices;
    /* [network:] sections whose subnet, subnet6, internal or bridge changed and that no
     * running container uses: their bridges are removed before the items are walked, and
     * made again from the new definition at their next use. One that a running container
     * uses is an error naming the services (a bridge cannot change under them). */
    char **renet;
    size_t nrenet;
};

/* The plan from the config in use (old), the new one and the services that exist (svcs,
 * in any order; a service removed from old and still stopping is among them, not in old).
 * Items: stops of services gone from new (highest old priority first), then every service
 * of new in priority order (lower first, file order among equals), then the [supervisor]
 * item when one of its keys changed. A new config with errors gives them in plan->errors
 * and no item. Returns 0, -EINVAL (new has errors) or -ENOMEM (plan is then partial). */
int cr_plan_compute(const struct cr_config *old, const struct cr_config *new,
                    const struct cr_plan_svc *svcs, size_t nsvcs, struct cr_plan *plan);
void cr_plan_free(struct cr_plan *p);

const char *cr_plan_action_name(enum cr_plan_action a);
/* The item as one line, "NAME: ACTION" and " (keys: K1,K2)" when keys are known: what the
 * supervisor logs as it walks it. */
void cr_plan_item_format(const struct cr_plan_item *it, char *buf, size_t len);

/* The [supervisor] keys whose row says restart are read when the supervisor starts: after a
 * reload the new config keeps the values in use (taken from old), so the next plan still
 * shows them as changed. */
void cr_config_keep_running_globals(struct cr_config *new, struct cr_config *old);

#endif
