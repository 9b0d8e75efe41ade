/* A service's container (container.c): the only part of service/ that touches cgroup/ and
 * spawn/. The state machine (fsm.c) asks through the function table it holds
 * (cr_container_ops_real, service/internal.h); the container reports back through the
 * function it was spawned with. */
#ifndef CORRAL_SERVICE_CONTAINER_H
#define CORRAL_SERVICE_CONTAINER_H

#include "service/internal.h"

/* Makes the cgroup, spawns init in it and watches its events and pidfd; every event (the
 * workload's, and CR_EV_INIT_EXITED once init is gone and collected) goes to report.
 * Returns 0 (svc->ct set) or a negative errno (said in the log; nothing is left over). */
int cr_container_spawn(struct cr_svc *svc, cr_container_report report);
/* Live re-exec: takes over a running container from the supervisor that ran before this
 * one in the same process (its init pid, pidfd and events pipe; its cgroup svc-NAME as it
 * is) and watches it as cr_container_spawn() does; oom_seen: the OOM kills the earlier
 * program had counted in its cgroup (-1: unknown, read from the cgroup). 0 (svc->ct set) or
 * a negative errno (the fds are left to the caller). */
int cr_container_adopt(struct cr_svc *svc, cr_container_report report, pid_t pid, int pidfd,
                       int ev_fd, int64_t oom_seen);
/* Sends sig to init (the stop signal); 0 or a negative errno. */
int cr_container_stop_signal(struct cr_svc *svc, int sig);
/* stopwaitsecs passed: kills everything in the cgroup (init by SIGKILL if that fails). */
void cr_container_kill(struct cr_svc *svc);
/* A container still there when its service is freed: killed, collected, removed. */
void cr_container_discard(struct cr_svc *svc);
/* Stops watching and closes its fds; freed once its handles are closed. */
void cr_container_release(struct cr_container *ct);

#endif
