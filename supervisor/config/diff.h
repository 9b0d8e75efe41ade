/* The reload plan: what a new configuration changes, service by service, and the keys that
 * differ (compared through the key table). */
#ifndef CORRAL_CONFIG_DIFF_H
#define CORRAL_CONFIG_DIFF_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"

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

#endif
