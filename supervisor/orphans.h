/* Reaping processes re-parented to the supervisor (orphans.c). */
#ifndef CORRAL_ORPHANS_H
#define CORRAL_ORPHANS_H

#include <stdbool.h>

struct sv;
/* As PID 1 always; otherwise only with subreaper (it becomes a child subreaper, and kills
 * the orphans it gets: no cgroups). True when it reaps orphans. A first sweep follows at
 * once unless resuming (live re-exec: the inits it would take for orphans are not adopted
 * yet; the caller sweeps once they are). */
bool sv_orphans_start(struct sv *sv, bool subreaper, bool resuming);
/* A container is gone: what it left may be ours now. */
void sv_orphans_sweep(void);
void sv_orphans_stop(void);

#endif
