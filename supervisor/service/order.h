/* The order of starts and stops across services: depends_on, then priority.
 *
 * A start asked for with cr_svc_request(CR_REQ_START) is pending until the service is
 * settled and every service it depends on is ready (RUNNING, or EXITED with an expected
 * code: a one-shot job); one whose dependency is FATAL is not started; either way its view's
 * why says so. A shutdown stops a service only once everything depending on it is down,
 * highest priority first. */
#ifndef CORRAL_SERVICE_ORDER_H
#define CORRAL_SERVICE_ORDER_H

#include <stdbool.h>
#include <stddef.h>

#include "service/list.h"
#include "service/service.h"

/* These read the list's v and n afresh at every step: a start or a stop may change them. */

/* Starts every settled service whose start is pending and whose dependencies are met; the
 * others keep waiting, and say why once (in the log and their view's why). With s->again
 * set, it stops after CR_ORDER_SLICE_MS of starts (each start is tens of ms of clone, cgroup
 * and network work on the loop: 200 at once held svctl for half a minute) and calls
 * s->again to be called back for the rest. */
#define CR_ORDER_SLICE_MS 20
void cr_order_start_pending(struct cr_svcs *s);
/* One step of a shutdown: no start waits any more, and the services that may stop now are
 * sent CR_EV_STOP. False when every service is down. */
bool cr_order_stop_next(struct cr_svcs *s);
/* cfg's services in priority order (lower first), file order among equals; NULL-terminated,
 * malloc'd; NULL without memory. */
const struct cr_service **cr_order_by_priority(const struct cr_config *cfg);

#endif
