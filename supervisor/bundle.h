/* `supervisor -c FILE export bundle NAME DIR` (bundle.c): an OCI runtime bundle of one
 * service — DIR/config.json and DIR/init — that crun or runc runs as the same container
 * corral would: its root (the service's rootfs directory, not copied), namespaces, mounts
 * and binds, user and groups, capability sets, no_new_privileges, seccomp profile (as OCI
 * JSON), masked and read-only paths, device rules, limits and user mapping, with corral's
 * init as PID 1 (`init -- CMD`, the service's restart policy on its command line). */
#ifndef CORRAL_BUNDLE_H
#define CORRAL_BUNDLE_H

#include "config/config.h"

/* Returns the exit status. */
int sv_export_bundle(const struct cr_config *cfg, const char *name, const char *dir);

#endif
