/* cpu_weight and io_weight (cgroup v2's 1-10000) in v1's units. */
#include "cgroup/internal.h"

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* systemd's mapping: proportional around the defaults (100 ↔ 1024), so the ratio between two
 * services' weights is kept; clamped to what cpu.shares takes. 1 → 10, 10000 → 102400. */
int64_t cr_cg_weight_to_shares(int64_t weight)
{
    return clamp64(weight * 1024 / 100, 2, 262144);
}

/* BFQ's v1 blkio.bfq.weight has the same default (100) and range 1..1000: the weight as is,
 * clamped. The old CFQ blkio.weight (default 500, 10..1000): systemd's ×5, clamped. */
int64_t cr_cg_weight_to_blkio(int64_t weight, bool bfq)
{
    return bfq ? clamp64(weight, 1, 1000) : clamp64(weight * 500 / 100, 10, 1000);
}
