/* What the daemon lets the API (control socket, metrics) act on. The daemon fills one of
 * these; the API reaches the daemon only through it, never by name, and changes a service
 * only by asking. */
#ifndef CORRAL_API_HOST_H
#define CORRAL_API_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "config/diff.h"
#include "service/service.h"

struct cr_runtime;
struct cr_svc;

struct cr_api_host {
    struct cr_runtime *rt;
    /* The services, in the daemon's order. */
    size_t (*services)(struct cr_runtime *rt, struct cr_svc *const **v);
    /* Reloads the config file: computes the plan into *plan (may be NULL) and, when apply,
     * acts on it. 0, -EINVAL when the new config has errors (nothing changes), -ENOMEM,
     * -ESHUTDOWN. */
    int (*reload)(struct cr_runtime *rt, bool apply, struct cr_plan *plan);
    /* Stops every service (reverse priority), then the supervisor exits: SIGTERM's path. */
    void (*shutdown)(struct cr_runtime *rt, const char *why);
    bool (*shutting_down)(struct cr_runtime *rt);
    /* As the machine's PID 1: stops every service, then every process, and powers the machine
     * off, reboots or halts it (action: "poweroff", "reboot", "halt"). With check, only says
     * whether it would: 0, -EPERM (not the machine's PID 1), -ESHUTDOWN (already stopping). */
    int (*power)(struct cr_runtime *rt, const char *action, const char *why, bool check);
    /* Live re-exec: replaces the supervisor's program with path (NULL: its own) in the same
     * process, the running containers kept: it happens once this turn of the loop is over
     * (a failed execve is logged, and the supervisor goes on); 0, or a negative errno with
     * why (a sentence) when it cannot now. */
    int (*reexec)(struct cr_runtime *rt, const char *path, char *why, size_t whylen);
    /* Whether it can: path is run once with --version and must answer as a supervisor. 0:
     * under way, and done(arg, 0, the program checked: the path to give reexec) or
     * done(arg, -errno, why) follows, from the loop (-EBUSY while another check runs,
     * -ESHUTDOWN when the supervisor stops first); or a negative errno with why at once. */
    int (*reexec_check)(struct cr_runtime *rt, const char *path,
                        void (*done)(void *arg, int r, const char *said), void *arg, char *why,
                        size_t whylen);
    /* Asks a service to start, stop or restart (cr_svc_request, service.h): a start waits
     * for its dependencies as at start-up and says what it waits for; a stop cancels it. */
    void (*request)(struct cr_runtime *rt, struct cr_svc *svc, enum cr_svc_req req);
    /* net-connect (ctl_proto.h): connects the network namespace of init (run's container's
     * init, or run itself) of `supervisor run` run's service name (of cgroup root root) to
     * the networks nets (this supervisor's). 0: under way, and done(arg, 0, its addresses)
     * or done(arg, -errno, why) follows (later, or within the call when the thread pool
     * cannot take the job); or a negative errno with why filled: refused, nothing done. */
    int (*net_connect)(struct cr_runtime *rt, const char *name, pid_t run, pid_t init,
                       const char *root, char *const *nets, size_t nnets,
                       void (*done)(void *arg, int r, const char *text), void *arg,
                       char *why, size_t whylen);
    /* The guarantees the supervisor cannot give where it runs, and why (no cgroups in a
     * container with a read-only /sys/fs/cgroup), or NULL: every one holds. */
    const char *(*missing)(struct cr_runtime *rt);
};

#endif
