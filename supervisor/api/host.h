/* What the daemon lets the API (control socket, metrics) act on. The daemon fills one of
 * these; the API reaches the daemon only through it, never by name, and changes a service
 * only by asking. */
#ifndef CORRAL_API_HOST_H
#define CORRAL_API_HOST_H

#include <stdbool.h>
#include <stddef.h>

#include "config/diff.h"

struct cr_runtime;
struct cr_svc;

struct cr_api_host {
    struct cr_runtime *rt;
    /* The services, in the daemon's order. */
    size_t (*services)(struct cr_runtime *rt, struct cr_svc *const **v);
    /* Reloads the config file: computes the plan into *plan (may be NULL) and, when apply,
     * acts on it. 0, -EINVAL when the new config has errors (nothing changes), -ENOMEM,
     * -ESHUTDOWN. */
    int (*reload)(struct cr_runtime *rt, bool apply, struct cr_plan *plan);
    /* Stops every service (reverse priority), then the supervisor exits: SIGTERM's path. */
    void (*shutdown)(struct cr_runtime *rt, const char *why);
    bool (*shutting_down)(struct cr_runtime *rt);
    /* A start that honours depends_on: a settled service starts once its dependencies are
     * ready, and says what it waits for. */
    void (*request_start)(struct cr_runtime *rt, struct cr_svc *svc);
    /* A stop that also cancels a start asked for after it (a reload's restart). */
    void (*request_stop)(struct cr_runtime *rt, struct cr_svc *svc);
};

#endif
