/* seccomp profiles, compiled by the supervisor with libseccomp into a BPF program that init
 * installs with seccomp(2) right before exec (init stays free of libseccomp).
 *
 * A profile is "default" (corral's own: the calls Docker's default profile denies, with
 * EPERM), "unconfined" (no filter), or the absolute path of a profile in the Docker/OCI JSON
 * format (seccomp_profile.c). Each profile is compiled
 * once per supervisor into a sealed memfd, shared by every container that uses it: the child
 * finds it on fd CR_SECCOMP_CHILD_FD, the spec says so (seccomp_fd). */
#ifndef CORRAL_SYSCALL_FILTER_H
#define CORRAL_SYSCALL_FILTER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CR_SECCOMP_CHILD_FD 6

/* A profile file's rules can depend on the service's capabilities (Docker's includes.caps):
 * caps is that set, the spec's bounding set. */

/* Checks a profile's value: 1 when it means a filter, 0 for unconfined (or NULL), or a
 * negative errno with the reason in err ("FILE:LINE:COLUMN: ..." for a profile file's syntax).
 * A profile file is compiled to check it, and that program is cached for the first start. */
int cr_seccomp_check(const char *profile, uint64_t caps, char *err, size_t len);

/* The sealed memfd holding the compiled program (compiled on first use, then cached per
 * profile, capability set and file version; the fd belongs to the cache), or a negative
 * errno with the reason in err. */
int cr_seccomp_fd(const char *profile, uint64_t caps, char *err, size_t len);

/* Writes the compiled program to fd (the cache's compiler, for tests and tools). Returns 0
 * or a negative errno with the reason in err. */
int cr_seccomp_export(const char *profile, uint64_t caps, int fd, char *err, size_t len);

/* Prints the default profile in the Docker/OCI JSON format (a start for a profile of one's
 * own; `seccomp = FILE` of that output behaves as `seccomp = default`). */
void cr_seccomp_print_default(FILE *out);

/* Closes the cached memfds. */
void cr_seccomp_cache_free(void);

#endif
