/* The running supervisor: the loop, signals, start-up and shutdown (daemon.c). */
#ifndef CORRAL_DAEMON_H
#define CORRAL_DAEMON_H

struct cr_config;

/* Runs the services of cfg (valid: no errors) until they are stopped. argc/argv are what is
 * left after the options (e.g. "run NAME -- CMD ARGS"). Takes cfg: it cr_config_free()s it.
 * Returns the process exit status. */
int supervisor_run(struct cr_config *cfg, int argc, char **argv);

#endif
