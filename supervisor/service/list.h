/* The services of one supervisor, in its order: created into it, found by name, removed. */
#ifndef CORRAL_SERVICE_LIST_H
#define CORRAL_SERVICE_LIST_H

#include <stddef.h>

#include "service/service.h"

struct cr_svcs {
    struct cr_svc **v;
    size_t n, cap;
    /* When set, cr_order_start_pending() starts for a slice of time at most and asks for
     * the rest through again(again_arg) (the daemon: a timer, so that the loop handles what
     * came in between); unset, it starts everything at once. */
    void (*again)(void *arg);
    void *again_arg;
};

/* A new service for conf (in STOPPED), appended. 0 or -ENOMEM. */
int cr_svcs_add(struct cr_svcs *s, struct cr_runtime *rt, const struct cr_service *conf,
                struct cr_svc **out);
struct cr_svc *cr_svcs_find(const struct cr_svcs *s, const char *name);
/* Takes a settled service out and frees it (said in the log). */
void cr_svcs_remove(struct cr_svcs *s, struct cr_svc *svc);

#endif
