/* The supervisor's file descriptor budget: what a configuration needs, against
 * RLIMIT_NOFILE. Checked at start-up and on reload, so that a file too large for the limit
 * is refused whole, with the numbers, instead of half its services failing to start.
 *
 * Each service holds its output pipes (both ends: the read end for the supervisor, the write
 * end for every container it will have), its log files, and while a container runs, init's
 * pidfd, its events pipe and (cgroup v2) its cgroup's directory. Besides those: what was
 * inherited, the loop's own fds, init's memfd, spawn's low slots, the fds of one spawn in
 * progress, a log rotation; and a reserve that stays free for the control socket's clients
 * (so svctl always gets in) and the HTTP server's connections (bounded: api/http.h). */
#ifndef CORRAL_FD_BUDGET_H
#define CORRAL_FD_BUDGET_H

#include <stddef.h>
#include <sys/resource.h>

#include "config/config.h"

#define CR_FD_FIXED 48            /* the loop, memfds, slots, a spawn and a rotation at work */
#define CR_FD_CONTROL_RESERVE 32  /* svctl clients at once, always served */

/* fds open in this process now (what it inherited, before it opens its own). */
unsigned long cr_fd_count_open(void);
/* What one service holds. */
unsigned long cr_fd_service_cost(const struct cr_service *c);
/* What cfg needs in all, given the fds inherited. */
unsigned long cr_fd_need(const struct cr_config *cfg, unsigned long inherited);
/* Raises the soft limit to the hard one if need calls for it (never lowers it); 0 when need
 * fits, else -EMFILE with msg saying the numbers and what to raise. */
int cr_fd_budget(const struct cr_config *cfg, unsigned long inherited, char *msg, size_t len);

#endif
