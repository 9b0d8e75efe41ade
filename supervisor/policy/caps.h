/* Capability names and this kernel's set (caps.c): what config/ reads cap_add, cap_drop and
 * ambient_capabilities with, and what seccomp profiles' includes.caps are matched against. */
#ifndef CORRAL_POLICY_CAPS_H
#define CORRAL_POLICY_CAPS_H

#include <stddef.h>
#include <stdint.h>

/* "NET_RAW", "cap_net_raw", "CAP_NET_RAW" → its number; -1 if unknown here; -2 for ALL. */
int cr_cap_number(const char *name);
/* Capability n's name as OCI and Docker write it ("CAP_NET_RAW"); -1 if unknown. */
int cr_cap_name(int n, char *buf, size_t len);
/* Every capability this kernel knows. */
uint64_t cr_caps_all(void);

#endif
