/* init: the container side of corral. PID 1 of a service's namespaces, or a standalone
 * PID 1 / subreaper for any container (the way tini is used with `docker run --init`). */
#ifndef CORRAL_INIT_H
#define CORRAL_INIT_H

#include <stdbool.h>
#include <stdint.h>
#include <signal.h>
#include <stddef.h>
#include <sys/types.h>

#include "units.h"

enum init_restart { RESTART_NO, RESTART_ON_FAILURE, RESTART_ALWAYS };

struct init_opts {
    bool group;                 /* forward to the workload's process group */
    int verbose;                /* >0: log every reaped orphan */
    unsigned char rewrite[_NSIG]; /* received signal → forwarded signal (0: itself) */
    cr_codeset remap_exit;      /* final exit codes reported as 0 */
    int64_t grace_ms;           /* TERM → KILL for leftovers */
    int pdeathsig;
    enum init_restart restart;
    cr_codeset exit_codes;      /* "expected" codes for on-failure */
    int64_t restart_delay_ms, restart_delay_max_ms, restart_reset_after_ms, restart_window_ms;
    unsigned max_restarts;      /* 0: no limit */
    int events_fd;              /* -1: none */
    int spec_fd;                /* -1: standalone; else spec mode (the supervisor's) */
    char **argv;                /* the workload */
    int64_t startsecs_ms;       /* a run shorter than this is a failed start */
    unsigned startretries;      /* give up after this many failed starts in a row; 0: never */
    int stop_signal;            /* besides TERM and INT, the signal that means "stop" */

    /* Spec mode (set by init_spec_setup): who and where the workload runs. */
    const char *exec_path;      /* execv() this; NULL: search argv[0] in PATH */
    bool set_ids;
    uid_t uid;
    gid_t gid;
    const gid_t *groups;
    size_t ngroups;
    int umask;                  /* -1: inherited */
    const char *directory;      /* NULL: stay in / */
};

/* Spec mode: reads the spec from spec_fd, builds the container (mounts, pivot_root,
 * hostname, loopback) and fills o from it. Returns 0, or 125 after reporting setup-failed. */
int init_spec_setup(int spec_fd, struct init_opts *o);

/* Parses argv and the INIT_* environment into o (removing those variables from environ).
 * Returns 0, or an exit status (2 for usage errors, 0 after --help/--version) with a
 * message already printed. */
int init_parse_args(int argc, char **argv, struct init_opts *o, bool *done);

/* The PID-1 loop: runs the workload per policy, reaps, forwards. Returns init's exit status. */
int pid1_run(const struct init_opts *o);

/* Durations/back-off policy, kept apart from the loop so the rules are readable in one place. */
int64_t init_backoff_ms(const struct init_opts *o, unsigned attempt, uint64_t rnd);

#endif
