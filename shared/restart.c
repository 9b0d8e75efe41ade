/* The restart policy (restart.h). */
#include "restart.h"

int64_t cr_restart_backoff(const struct cr_restart_policy *p, unsigned attempt)
{
    if (attempt <= 1)
        return p->delay_ms;
    int64_t d = p->delay_ms > CR_RESTART_FLOOR_MS ? p->delay_ms : CR_RESTART_FLOOR_MS;
    for (unsigned i = 1; i < attempt && d < p->delay_max_ms; i++)
        d *= 2;
    return d > p->delay_max_ms ? p->delay_max_ms : d;
}

int64_t cr_restart_jitter(int64_t d, uint64_t rnd)
{
    return d - (int64_t)(rnd % 1000) * (d / 5) / 1000;
}

unsigned cr_restart_next_attempt(const struct cr_restart_policy *p, unsigned attempt,
                                 int64_t ran_ms)
{
    return ran_ms >= p->reset_after_ms ? 1 : attempt + 1;
}

bool cr_restart_limit_reached(const struct cr_restart_policy *p, const int64_t *times,
                              unsigned count, int64_t now)
{
    unsigned n = p->max_restarts;
    if (!n || count < n || !times)
        return false;
    int64_t oldest = times[count % n];   /* the ring's next slot holds the oldest of n */
    return p->window_ms == 0 || now - oldest < p->window_ms;
}

void cr_restart_record(const struct cr_restart_policy *p, int64_t *times, unsigned *count,
                       int64_t now)
{
    if (times && p->max_restarts)
        times[*count % p->max_restarts] = now;
    (*count)++;
}

uint64_t cr_restart_random(uint64_t *state)
{
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * 0x2545F4914F6CDD1DULL;
}
