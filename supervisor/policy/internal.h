/* Internal to the seccomp and capability code (syscall_filter.c, seccomp_profile.c, caps.c,
 * config_security.c). */
#ifndef CORRAL_SYSCALL_FILTER_INT_H
#define CORRAL_SYSCALL_FILTER_INT_H

#include <seccomp.h>
#include <stddef.h>
#include <stdint.h>

/* A Docker/OCI JSON profile (text of tlen bytes, named file in messages) → a libseccomp
 * filter for a service holding capability set caps. 0, or -EINVAL with the reason in err. */
int cr_seccomp_json(const char *file, const char *text, size_t tlen, uint64_t caps,
                    scmp_filter_ctx *out, char *err, size_t len);

/* caps.c: "NET_RAW", "cap_net_raw", "CAP_NET_RAW" → its number; -1 if unknown here; -2 for
 * ALL. */
int cr_cap_number(const char *name);
/* Every capability this kernel knows. */
uint64_t cr_caps_all(void);

#endif
