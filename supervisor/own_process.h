/* The supervisor's own process, as [supervisord] describes it: umask, the minfds and minprocs
 * resource limits, and the pidfile. supervisord applies them to itself at start-up, and its
 * programs inherit them; so does the supervisor here. */
#ifndef CORRAL_OWN_PROCESS_H
#define CORRAL_OWN_PROCESS_H

#include <stddef.h>
#include <sys/resource.h>

#include "config/config.h"

/* Sets the umask (when [supervisord] umask is given) and raises RLIMIT_NOFILE to minfds and
 * RLIMIT_NPROC to minprocs where they are lower (the hard limits too, when allowed, as
 * supervisord does as root). nofile is the limit the containers get: raised to minfds too.
 * Returns 0, or -1 with a message naming the key in err (supervisord then refuses to start). */
int cr_own_process_apply(const struct cr_global *g, struct rlimit *nofile, char *err,
                         size_t len);

/* A supervisor of many services (64 or more: a re-exec knows before it reads the file, a
 * start once it has) puts the rest of its heap on a transparent huge page. A first
 * touch of a 4 KiB page is dear where the supervisor runs in a VM with shadow page tables
 * (10-16 µs each on the machine this was measured on, ~0.5 ms a re-exec of 100 services
 * spent on its heap alone), one 2 MiB page ~0.2 ms. The program break is moved to the next
 * 2 MiB boundary (the address space skipped is never touched: it costs no memory), the next
 * 2 MiB are marked MADV_HUGEPAGE, and allocations then come from there; the large ones too
 * (mmap threshold 8 MiB). Costs 2 MiB resident. Nothing changes where THP is off, where no
 * huge page can be had (the kernel falls back to 4 KiB pages), or under a sanitizer's
 * allocator. */
void cr_own_heap_huge(size_t services);

/* Writes the pid to path (replaced atomically); a failure is logged, not fatal (as
 * supervisord). */
void cr_own_pidfile_write(const char *path);
/* Removes it again at exit (only if it still holds our pid). */
void cr_own_pidfile_remove(const char *path);

#endif
