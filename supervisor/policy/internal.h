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

/* The default profile's programs, one per variant of the capabilities it depends on
 * (CAP_SYS_PTRACE, CAP_SYS_NICE), compiled at build time by policy/gen/seccomp_gen.c from this
 * layer's own rules (build/gen/seccomp_default.c): a `supervisor run` then spends no time in
 * libseccomp. The generator's own build has none (every len 0) and compiles them. */
#define CR_SECCOMP_VARIANTS 4
struct cr_bpf_image {
    const unsigned char *code;
    size_t len;
};
extern const struct cr_bpf_image cr_seccomp_builtin[CR_SECCOMP_VARIANTS];

/* ctx's program laid out as a binary search over the syscall numbers (libseccomp's
 * optimization level 2), not a chain of comparisons: the kernel, which runs a new filter
 * once per syscall number at load to find the ones it always allows, loads it in ~220 us
 * instead of ~370 (x86-64 default profile, on this project's test machine) — once per
 * container start. */
static inline void cr_seccomp_tree(scmp_filter_ctx ctx)
{
    seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
}

/* The variant of capability set caps, and the capability set a variant stands for. */
unsigned cr_seccomp_variant(uint64_t caps);
uint64_t cr_seccomp_variant_caps(unsigned variant);

#endif
