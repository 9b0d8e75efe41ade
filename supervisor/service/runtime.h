/* What every service of one supervisor shares (struct cr_runtime): the loop, the cgroup
 * root, init, the console, and the owner's callbacks. Below the service's own files, so that
 * its container (container.c) and its output (streams.c) reach it without the service. */
#ifndef CORRAL_SERVICE_RUNTIME_H
#define CORRAL_SERVICE_RUNTIME_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <uv.h>

#include "io/output.h"

struct cr_svc;
struct cr_cg_root;
struct cr_net;

/* What every service shares: the loop, the cgroup root, init, the console. */
struct cr_runtime {
    uv_loop_t *loop;
    struct cr_cg_root *cgroot;
    struct cr_net *net;          /* the host side of the bridge networks; in run mode NULL
                                    until a container is connected here (net_open) */
    char *run_dir;               /* [supervisor] run_dir, as the supervisor started */
    char *cgroup_root;           /* [supervisor] cgroup_root, likewise */
    char *cni_config_dir, *cni_plugin_dir;   /* [supervisor]'s, likewise */
    int init_fd;                 /* the sealed init memfd */
    int devnull;
    bool run_mode;               /* `supervisor run`: one service, once, on the terminal */
    bool quiet;                  /* log only problems (run mode) */
    bool stopping_all;           /* SIGTERM/SIGINT: a container that exits is not replaced */
    bool resuming;               /* live re-exec: cr_svc_new() makes no output pipes (the
                                    earlier supervisor's come with cr_svc_resume()) */
    struct cr_console console;
    struct cr_console console_err;   /* the supervisor's stderr, for stderr_logfile=/dev/stderr */
    struct rlimit nofile;        /* RLIMIT_NOFILE as the supervisor was started with */
    uint64_t rnd;                /* xorshift state for the restart jitter; seed with
                                    cr_runtime_seed() */
    /* Called when a service settles in STOPPED, EXITED or FATAL (no container, no timer). */
    void (*on_settled)(struct cr_runtime *rt, struct cr_svc *svc);
    /* Called when a service becomes ready (enters RUNNING): its dependents may start. */
    void (*on_ready)(struct cr_runtime *rt, struct cr_svc *svc);
    /* The service of that name, or NULL (network = service:OTHER finds OTHER's container). */
    struct cr_svc *(*find)(struct cr_runtime *rt, const char *name);
    /* Called after every change of state (after on_ready; before on_settled). */
    void (*on_change)(struct cr_runtime *rt, struct cr_svc *svc);
    /* Whole lines of its output (stream: CR_LOG_STDOUT or CR_LOG_STDERR, io/logs.h), for a
     * service whose stdout_events_enabled (stderr_events_enabled) is set. */
    void (*on_output)(struct cr_runtime *rt, struct cr_svc *svc, int stream, const char *lines,
                      size_t len);
    /* Run mode, a container on a bridge network (supervisor/run_net.h): asks the supervisor
     * of the root to connect it (0: done; -EAGAIN: do it here, why says why when there was
     * one to ask; else the start fails), and makes net when it is done here. */
    int (*keeper_connect)(struct cr_runtime *rt, struct cr_svc *svc, pid_t pid, char *why,
                          size_t whylen);
    /* Run mode, before the clone of a container with a network namespace of its own (bridge
     * or none, no user namespace): moves the run into the namespace it made ahead; false
     * when it did not (the clone, or init, makes one). */
    bool (*netns_settle)(struct cr_runtime *rt, bool bridge);
    bool netns_inherited;        /* run mode: the container's network namespace is the one
                                    the run made and moved into (its clone makes none) */
    int (*net_open)(struct cr_runtime *rt, char *err, size_t errlen);
};

/* Seeds rt->rnd (getrandom, else the clock and the pid). */
void cr_runtime_seed(struct cr_runtime *rt);

#endif
