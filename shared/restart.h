/* The restart policy, one for both levels: init restarting the workload inside its container,
 * and the supervisor starting a new container when init itself is gone.
 *
 *   delay    restart number `attempt` (1 = the first since a start or a reset) waits
 *            delay_ms; each later one doubles from max(delay_ms, CR_RESTART_FLOOR_MS), up to
 *            delay_max_ms, so a workload that keeps dying is never restarted in a tight
 *            loop, even with delay_ms = 0;
 *   jitter   the delay is shortened by a random 0-20 %, so services that die together
 *            spread out, and a delay never exceeds what was configured;
 *   reset    a run of reset_after_ms or longer starts the count again at attempt 1;
 *   window   max_restarts restarts (0: no limit) within window_ms give up; window_ms = 0
 *            counts every restart (max_restarts in all).
 * Pure functions: no clock, no state of their own (libc-neutral: init is built with musl). */
#ifndef CORRAL_RESTART_H
#define CORRAL_RESTART_H

#include <stdbool.h>
#include <stdint.h>

#define CR_RESTART_FLOOR_MS 100

struct cr_restart_policy {
    int64_t delay_ms, delay_max_ms, reset_after_ms, window_ms;
    unsigned max_restarts;
};

/* The delay before restart number attempt (>= 1), before jitter. */
int64_t cr_restart_backoff(const struct cr_restart_policy *p, unsigned attempt);
/* d shortened by a random 0-20 % (rnd: any random number, see cr_restart_random). */
int64_t cr_restart_jitter(int64_t d, uint64_t rnd);
/* The next attempt number after a run of ran_ms (1 again after reset_after_ms). */
unsigned cr_restart_next_attempt(const struct cr_restart_policy *p, unsigned attempt,
                                 int64_t ran_ms);
/* times: the last restarts' times (ms, any monotonic clock) in a ring of max_restarts,
 * count: restarts so far (times[(count - 1) % max_restarts] is the latest). True when one
 * more restart at now would break the limit. */
bool cr_restart_limit_reached(const struct cr_restart_policy *p, const int64_t *times,
                              unsigned count, int64_t now);
/* Records a restart at now in the ring (when there is one) and counts it. */
void cr_restart_record(const struct cr_restart_policy *p, int64_t *times, unsigned *count,
                       int64_t now);
/* xorshift64* over *state (never 0): jitter needs spread, not secrecy. */
uint64_t cr_restart_random(uint64_t *state);

#endif
