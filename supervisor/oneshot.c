/* `supervisor run NAME [-- CMD ARGS...]`: one service, once, on the terminal. Its command may
 * be replaced, it is never restarted, its output is the supervisor's own stdout and stderr,
 * signals go to it, and the supervisor exits with its status. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "daemon_int.h"

static void usage_run(void)
{
    fprintf(stderr, "usage: supervisor [-c FILE] [run NAME [-- CMD ARGS...]]\n");
}

/* An image service's container dir in run mode: containers/run-NAME-PID, beside the running
 * supervisor's containers/NAME, whose upper it must not share. */
static int run_dir(char **path, const char *name)
{
    char key[128], *p = *path, *at, *out;
    snprintf(key, sizeof key, "/containers/%s/", name);
    if (!p || !(at = strstr(p, key)))
        return 0;
    if (asprintf(&out, "%.*s/containers/run-%s-%d/%s", (int)(at - p), p, name, (int)getpid(),
                 at + strlen(key)) < 0)
        return -ENOMEM;
    free(p);
    *path = out;
    return 0;
}

/* The caller's terminal as it was: init makes it raw while the container's pty is in use
 * and gives it back, and so does our exit, should init have been killed first. */
static struct termios run_tty;

static void run_tty_restore(void)
{
    tcsetattr(STDIN_FILENO, TCSADRAIN, &run_tty);
}

static void run_console(struct cr_spec *s)
{
    if (tcgetattr(STDIN_FILENO, &run_tty) < 0)
        return;
    s->console = true;
    atexit(run_tty_restore);
}

/* `run NAME -- CMD ARGS`: the service's spec with another command, and no restarts. */
static int run_override(struct cr_service *svc, char **cmd, int ncmd)
{
    struct cr_spec *s = &svc->spec;
    s->autorestart = CR_RESTART_NEVER;
    s->max_restarts = 0;
    if (s->nlayers && (run_dir(&s->rootfs, svc->name) || run_dir(&s->upper, svc->name) ||
                       run_dir(&s->work, svc->name)))
        return -ENOMEM;
    /* On a terminal, the container gets the caller's TERM unless the file sets one (as
     * `docker run -t` gives TERM): clear, top and vi need it. */
    const char *term = getenv("TERM");
    if (term && *term && (isatty(STDIN_FILENO) || isatty(STDOUT_FILENO)) &&
        !cr_spec_get_env(s, "TERM") && cr_spec_set_env(s, "TERM", term) < 0)
        return -ENOMEM;
    /* On a terminal (stdin), a pty of the container's own: `tty` names it, it is
     * /dev/console, its size follows the caller's (init copies between the two). */
    if (isatty(STDIN_FILENO) && s->rootfs)
        run_console(s);
    if (ncmd <= 0)
        return 0;
    for (size_t i = 0; i < s->argc; i++)
        free(s->argv[i]);
    free(s->argv);
    s->argv = NULL;
    s->argc = 0;
    free(s->exec);
    s->exec = NULL;
    for (int i = 0; i < ncmd; i++)
        if (cr_spec_add_arg(s, cmd[i]) < 0)
            return -ENOMEM;
    return 0;
}

int sv_oneshot_args(struct cr_config *cfg, int argc, char **argv, struct cr_service **conf)
{
    *conf = NULL;
    if (argc == 0)
        return 0;
    if (strcmp(argv[0], "run") || argc < 2) {
        fprintf(stderr, "supervisor: unexpected argument '%s'\n", argv[0]);
        usage_run();
        return 2;
    }
    const char *name = argv[1];
    if (argc > 2 && strcmp(argv[2], "--")) {
        fprintf(stderr, "supervisor: run %s: expected '--' before the command, got '%s'\n",
                name, argv[2]);
        usage_run();
        return 2;
    }
    struct cr_service *c = NULL;
    for (size_t i = 0; i < cfg->nservices; i++)
        if (!strcmp(cfg->services[i].name, name))
            c = &cfg->services[i];
    if (!c) {
        fprintf(stderr, "supervisor: %s: no service '%s'\n", cfg->path, name);
        return 1;
    }
    if (run_override(c, argv + 3, argc > 3 ? argc - 3 : 0) < 0) {
        fprintf(stderr, "supervisor: out of memory\n");
        return 1;
    }
    *conf = c;
    return 0;
}

int sv_oneshot_start(struct sv *sv, struct cr_service *conf)
{
    if (cr_svcs_add(&sv->all, &sv->rt, conf, &sv->run_svc) < 0)
        return -1;
    /* The only service here: nothing it depends on is in the list, so it starts now. */
    cr_svc_request(sv->run_svc, CR_REQ_START);
    cr_order_start_pending(&sv->all);
    return 0;
}

void sv_oneshot_signal(struct sv *sv, int signum)
{
    /* TERM and INT stop the service (stopsignal, then the kill after stopwaitsecs); anything
     * else goes to init as it is. */
    struct cr_svc *s = sv->run_svc;
    if (!s)
        return;
    if (signum == SIGTERM || signum == SIGINT) {
        if (cr_svc_state(s) == CR_ST_STOPPING)
            cr_svc_signal(s, signum);
        else
            cr_svc_request(s, CR_REQ_STOP);
    } else {
        cr_svc_signal(s, signum);
    }
}
