/* The running supervisor: the loop, signals, start-up and shutdown (daemon.c). */
#ifndef CORRAL_DAEMON_H
#define CORRAL_DAEMON_H

#include <stdbool.h>
#include <stddef.h>

#include "pid1/pid1.h"

struct cr_config;

/* How the supervisor runs: as the machine's PID 1 (appliance mode: its signals mean power
 * actions, it collects orphans, `svctl poweroff` works), and, out, the power action that
 * ended it (CR_POWER_NONE: none was asked for). */
struct sv_mode {
    bool pid1;
    enum cr_power power;
    int resume_fd;               /* live re-exec: the state memfd (--resume FD); -1: none */
    char *state;                 /* what it held (sv_resume_read); supervisor_run frees it */
    const char *config_path;     /* what a re-exec passes on as -c */
};

/* reexec.c: the state a --resume FD gives, read into a malloc'd string (NULL: unreadable,
 * said on stderr); the fd is closed. */
char *sv_resume_read(int fd);
/* reexec.c: how many services a state hands over. */
size_t sv_resume_services(const char *state);

/* Runs the services of cfg (valid: no errors) until they are stopped. argc/argv are what is
 * left after the options (e.g. "run NAME -- CMD ARGS"). Takes cfg: it cr_config_free()s it.
 * Returns the process exit status. */
int supervisor_run(struct cr_config *cfg, int argc, char **argv, struct sv_mode *mode);

#endif
