/* corral's init as another engine's entrypoint (`init [OPTIONS] -- CMD`, tini's way): the
 * options that give it a service's restart policy (init_policy.c). export bundle puts them on
 * its process's args, export kube on a container's command where Kubernetes' restartPolicy
 * cannot say what the service's policy says. */
#ifndef CORRAL_INIT_POLICY_H
#define CORRAL_INIT_POLICY_H

#include "spec.h"

/* Where export oci puts init in an image, and export kube runs it from. */
#define SV_INIT_IN_IMAGE "/.corral/init"

/* Calls add() with each option and value, in order: --restart always; the rest only where
 * the spec's value is not init's own default (and only what a restart policy uses). */
void sv_init_policy_args(const struct cr_spec *sp, void (*add)(void *ctx, const char *arg),
                         void *ctx);

#endif
