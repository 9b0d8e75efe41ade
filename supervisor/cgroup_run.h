/* `supervisor run`'s way into the cgroup root: like cr_cg_root_open(), but it never sweeps
 * leftovers and never moves the caller, so it cannot disturb a running supervisor's services
 * (nor a dead one's, which the next supervisor cleans up). It creates <root> where missing. */
#ifndef CORRAL_CGROUP_RUN_H
#define CORRAL_CGROUP_RUN_H

#include <stddef.h>

#include "cgroup.h"

int cr_cg_root_open_shared(const char *mount, const char *root, struct cr_cg_root **out,
                           char *err, size_t errlen);

#endif
