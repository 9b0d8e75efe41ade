/* A `supervisor run` on a bridge network beside a supervisor of its cgroup root: the run
 * asks that supervisor (its control socket, net-connect in ctl_proto.h) to connect its
 * container, which it does on its thread pool with the netlink and state it holds anyway;
 * the run then loads no netlink library, takes no state-file lock and leaves no mark. When
 * there is no such supervisor, or it says no, the run connects its container itself (a
 * guest's cr_net, net/host.h), as before. Both sides are here. */
#ifndef CORRAL_RUN_NET_H
#define CORRAL_RUN_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct cr_runtime;
struct cr_service;
struct cr_svc;
struct sv;

/* The supervisor's side: the api host's net_connect (api/host.h). The address and files are
 * the run's (SVC.run-PID, net/host.h) until the run's pid ends, watched by its pidfd. */
int sv_net_connect(struct cr_runtime *rt, const char *name, pid_t run, pid_t init,
                   const char *root, char *const *nets, size_t nnets,
                   void (*done)(void *arg, int r, const char *text), void *arg, char *why,
                   size_t whylen);
/* After a re-exec, once the loop is made: watches again the runs the old program had
 * connected (cr_net_resume took their attachments back). */
void sv_run_nets_resume(struct sv *sv);
/* At the supervisor's end (before cr_net_close): stops watching the runs it connected. */
void sv_run_nets_close(struct sv *sv);

/* The run's side. At its start (main.c, for `run`): a thread of the run makes a network
 * namespace for its container while the run reads its config; nothing else changes. */
void sv_netns_ahead(void);
/* A run on a bridge network, when a supervisor may listen at the config's control socket:
 * the thread asks it from that namespace to connect it, while the run goes on (not in a
 * user namespace, whose container's network namespace must be its own). */
void sv_keeper_early(struct sv *sv, const struct cr_service *conf);
/* (rt->netns_settle, service/runtime.h) Before the clone: waits for the namespace; true when
 * the run has moved into it (the container inherits it; on a bridge the run can go back);
 * false: the clone, or init, must make one, and a bridge's question is asked after it. */
bool sv_netns_settle(struct cr_runtime *rt, bool bridge);
/* (rt->keeper_connect, service/runtime.h): the answer to the early question (connected: the
 * run stays in the container's namespace; else back in its own); or, without one, asks the
 * supervisor at the config's control socket to connect the container whose init is pid,
 * and waits for the answer. 0: connected;
 * -EAGAIN: no such supervisor, or it said no (why says, "" when there is none): connect it
 * here; another negative errno: it may or may not have (no answer): the start fails. */
int sv_keeper_connect(struct cr_runtime *rt, struct cr_svc *svc, pid_t pid, char *why,
                      size_t whylen);
/* The run's side when connecting it here (rt->net_open): its guest cr_net, made now. */
int sv_run_net_open(struct cr_runtime *rt, char *err, size_t errlen);

#endif
