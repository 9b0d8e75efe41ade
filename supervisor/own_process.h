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

/* Writes the pid to path (replaced atomically); a failure is logged, not fatal (as
 * supervisord). */
void cr_own_pidfile_write(const char *path);
/* Removes it again at exit (only if it still holds our pid). */
void cr_own_pidfile_remove(const char *path);

#endif
