/* supervisord's event listeners ([eventlistener:NAME]): each section is a pool of listener
 * processes (numprocs copies), started like a [program:]; events go to a listener's stdin
 * and its answers come on its stdout, in supervisord's protocol:
 *
 *   listener: READY\n
 *   supervisor: ver:3.0 server:supervisor serial:N pool:NAME poolserial:N eventname:E len:L\n
 *               and L bytes of payload
 *   listener: RESULT 2\nOK   (acknowledged), or any other result (the event is sent again)
 *
 * An event goes to every pool whose `events` take it, into its buffer (buffer_size; when full
 * the oldest is dropped and logged), and from there to one RUNNING listener of the pool that
 * said READY. A listener that exits while it holds an event gives it back to the head of the
 * buffer. Events: PROCESS_STATE_* on every change of a service's state
 * (payloads as supervisord writes them), PROCESS_LOG_STDOUT/STDERR of the services with
 * stdout_events_enabled (stderr_events_enabled), TICK_5/60/3600, SUPERVISOR_STATE_CHANGE_RUNNING and
 * _STOPPING. */
#ifndef CORRAL_LISTENERS_H
#define CORRAL_LISTENERS_H

#include <stddef.h>

#include "config/config.h"
#include "service/service.h"

struct sv_evl;

/* Its pools from cfg (none: nothing is done at all), its listeners among svcs. NULL without
 * memory (said). */
struct sv_evl *sv_evl_open(struct cr_runtime *rt, const struct cr_config *cfg,
                           struct cr_svc *const *svcs, size_t n);
/* After a reload: the pools of the new config (a kept pool keeps its buffer). */
void sv_evl_config(struct sv_evl *e, const struct cr_config *cfg, struct cr_svc *const *svcs,
                   size_t n);
/* A service changed state (the runtime's on_change). */
void sv_evl_changed(struct sv_evl *e, struct cr_svc *svc);
/* PROCESS_LOG_STDOUT or _STDERR (channel "stdout", "stderr"): whole lines of its output, in
 * events of at most EVL_LOG_MAX bytes of them. */
void sv_evl_output(struct sv_evl *e, struct cr_svc *svc, const char *channel, const char *data,
                   size_t len);
/* SUPERVISOR_STATE_CHANGE_<state>: "RUNNING" or "STOPPING". */
void sv_evl_supervisor(struct sv_evl *e, const char *state);
/* Before the services are freed: stops the timer, lets go of every listener. */
void sv_evl_close(struct sv_evl *e);

#endif
