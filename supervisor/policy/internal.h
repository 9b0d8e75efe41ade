/* Internal to policy/ (syscall_filter.c, seccomp_profile.c); other layers include
 * syscall_filter.h and caps.h. */
#ifndef CORRAL_SYSCALL_FILTER_INT_H
#define CORRAL_SYSCALL_FILTER_INT_H

#include <seccomp.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/caps.h"

/* A Docker/OCI JSON profile (text of tlen bytes, named file in messages) → a libseccomp
 * filter for a service holding capability set caps. 0, or -EINVAL with the reason in err. */
int cr_seccomp_json(const char *file, const char *text, size_t tlen, uint64_t caps,
                    scmp_filter_ctx *out, char *err, size_t len);

#endif
