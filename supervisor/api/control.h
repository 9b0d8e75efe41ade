/* The control socket: svctl's way in (protocol: shared/ctl_proto.h, svctl(8)).
 *
 * A unix stream socket served on the supervisor's libuv loop. It is created mode 0600 (its
 * directory 0700 when we create it), and every peer's credentials are checked with
 * SO_PEERCRED: only root (or the supervisor's own uid) is served, anyone else gets
 * `error denied` and is disconnected. Each client has a bounded line buffer, a deadline to
 * send a whole request (CR_CTL_TIMEOUT_MS, not reset by single bytes), and a bounded queue
 * of unsent responses; a client that exceeds any of them is dropped. There are at most
 * CR_CTL_CLIENTS_MAX clients at once; more are told `error busy` and closed.
 *
 * The daemon gives this module what it acts on through a struct cr_api_host (api/host.h);
 * the reload plan comes back from it as a struct cr_plan (config/diff.h). */
#ifndef CORRAL_CONTROL_H
#define CORRAL_CONTROL_H

#include <stdbool.h>
#include <stddef.h>

#include "api/host.h"

#define CR_CTL_CLIENTS_MAX 512
#define CR_CTL_OUTQ_MAX (1024 * 1024)      /* unsent response bytes before a client is dropped */
#define CR_CTL_FOLLOW_MAX (256 * 1024)     /* unsent `logs -f` bytes before lines are dropped */

/* ---- the server ----------------------------------------------------------------------------- */
struct cr_control;
/* Creates the socket at path and serves it on host->rt's loop; host must outlive it. A path
 * where a live supervisor already answers is left alone (-EADDRINUSE); a stale socket is
 * replaced. */
int cr_control_open(const struct cr_api_host *host, const char *path, struct cr_control **out,
                    char *err, size_t errlen);
/* A service changed (its state, a pending start): answers the start/stop/restart requests
 * that waited for it (wait=MS). */
void cr_control_changed(struct cr_control *c);
/* Live re-exec: serves the listening socket fd (bound at path) that the supervisor before
 * the execve made; 0 or a negative errno (fd left to the caller). */
int cr_control_adopt(const struct cr_api_host *host, const char *path, int fd,
                     struct cr_control **out, char *err, size_t errlen);
/* The listening socket's fd, to pass on through an execve; -1 when none. */
int cr_control_fd(const struct cr_control *c);
/* Closes every client and the socket, and removes the socket file (if still ours). */
void cr_control_close(struct cr_control *c);
/* Live re-exec, just before the execve: each `logs -f` follower is told that its following
 * ends here (its connection goes with the old program; a new one follows the new program). */
void cr_control_reexec_notice(struct cr_control *c);

#endif
