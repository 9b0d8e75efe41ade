/* init's command line and environment. Everything here runs before the workload exists, so
 * every error is fatal and explained (exit 2). */
#include <errno.h>
#include <limits.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#include "init.h"
#include "spec.h"

extern char **environ;

static const char usage_text[] =
"usage: init [OPTIONS] [--] CMD [ARGS...]\n"
"Runs CMD as the child of a minimal PID 1: reaps zombies, forwards signals, restarts on demand.\n"
"\n"
"  -g, --group                forward signals to CMD's process group\n"
"  -s, --subreaper            accepted for tini compatibility (always on when not PID 1)\n"
"  -r, --rewrite FROM:TO      forward signal FROM as TO (repeatable), e.g. TERM:QUIT\n"
"  -e, --remap-exit CODE      report exit status CODE as 0 (repeatable), e.g. 143\n"
"      --grace DURATION       leftover processes get TERM, then KILL after this (5s)\n"
"  -p, --pdeathsig SIG        receive SIG (and forward it) when init's parent dies\n"
"  -v, --verbose              log every orphan init reaps\n"
"  -w, --warn-on-reap         the same (tini's spelling)\n"
"      --restart POLICY       no | on-failure | always  (false | unexpected | true)\n"
"      --exit-codes LIST      expected exit codes for on-failure (0)\n"
"      --restart-delay D      first restart delay (100ms)\n"
"      --restart-delay-max D  backoff cap (30s)\n"
"      --restart-reset-after D  reset the backoff after this long up (10s)\n"
"      --max-restarts N       give up after N restarts within --restart-window\n"
"      --restart-window D     window for --max-restarts (forever)\n"
"      --startsecs D          a run shorter than this is a failed start (0)\n"
"      --startretries N       give up after more than N failed starts in a row (never)\n"
"      --events-fd N          write one event line per start/exit/restart to fd N\n"
"      --spec-fd N            container mode: read the service spec from fd N, set up\n"
"                             the container it describes, then run its command\n"
"      --go-fd N              with --spec-fd: after the set-up, wait for one byte on fd N\n"
"                             before the command runs (EOF: exit 127, nothing run)\n"
"  -h, --help                 this text\n"
"  -V, --version              print the version\n"
"  -l, --license              print the version and license\n"
"\n"
"Each option can also be given as an environment variable: --restart-delay as\n"
"INIT_RESTART_DELAY, -g as INIT_GROUP=1, repeatable ones as comma lists\n"
"(INIT_REWRITE=TERM:QUIT,INT:QUIT). The command line wins; the variables are removed\n"
"from CMD's environment. tini's variables work too: TINI_SUBREAPER (accepted),\n"
"TINI_KILL_PROCESS_GROUP (as -g), TINI_VERBOSITY=N (2 and up: as -v).\n"
"Exit status: CMD's, 128+N if it was killed by signal N,\n"
"127 if CMD was not found, 126 if it could not be executed, 2 for a usage error.\n";

enum {
    OPT_GRACE = 256, OPT_RESTART, OPT_EXIT_CODES, OPT_DELAY, OPT_DELAY_MAX, OPT_RESET_AFTER,
    OPT_MAX_RESTARTS, OPT_WINDOW, OPT_STARTSECS, OPT_STARTRETRIES, OPT_EVENTS_FD, OPT_SPEC_FD,
    OPT_GO_FD,
};

static const struct option longopts[] = {
    {"group", no_argument, 0, 'g'},
    {"subreaper", no_argument, 0, 's'},
    {"rewrite", required_argument, 0, 'r'},
    {"remap-exit", required_argument, 0, 'e'},
    {"grace", required_argument, 0, OPT_GRACE},
    {"pdeathsig", required_argument, 0, 'p'},
    {"verbose", no_argument, 0, 'v'},
    {"warn-on-reap", no_argument, 0, 'w'},
    {"restart", required_argument, 0, OPT_RESTART},
    {"exit-codes", required_argument, 0, OPT_EXIT_CODES},
    {"restart-delay", required_argument, 0, OPT_DELAY},
    {"restart-delay-max", required_argument, 0, OPT_DELAY_MAX},
    {"restart-reset-after", required_argument, 0, OPT_RESET_AFTER},
    {"max-restarts", required_argument, 0, OPT_MAX_RESTARTS},
    {"restart-window", required_argument, 0, OPT_WINDOW},
    {"startsecs", required_argument, 0, OPT_STARTSECS},
    {"startretries", required_argument, 0, OPT_STARTRETRIES},
    {"events-fd", required_argument, 0, OPT_EVENTS_FD},
    {"spec-fd", required_argument, 0, OPT_SPEC_FD},
    {"go-fd", required_argument, 0, OPT_GO_FD},
    {"help", no_argument, 0, 'h'},
    {"version", no_argument, 0, 'V'},
    {"license", no_argument, 0, 'l'},
    {0, 0, 0, 0},
};

/* The environment variable of each option: INIT_ + the long name in upper snake case. */
static void env_name(const char *longname, char *buf, size_t len)
{
    size_t i = 0;
    i += (size_t)snprintf(buf, len, "INIT_");
    for (const char *p = longname; *p && i + 1 < len; p++)
        buf[i++] = *p == '-' ? '_' : (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
    buf[i] = 0;
}

static int bad(const char *what, const char *opt, const char *val)
{
    fprintf(stderr, "init: %s: invalid %s '%s'\n", opt, what, val);
    return 2;
}

static int set_rewrite(struct init_opts *o, const char *opt, const char *val)
{
    char from[32];
    const char *colon = strchr(val, ':');
    if (!colon || (size_t)(colon - val) >= sizeof from)
        return bad("signal mapping (want FROM:TO)", opt, val);
    memcpy(from, val, (size_t)(colon - val));
    from[colon - val] = 0;
    int a = cr_parse_signal(from), b = cr_parse_signal(colon + 1);
    if (a <= 0 || b <= 0 || a == SIGKILL || a == SIGSTOP || a == SIGCHLD)
        return bad("signal mapping (want FROM:TO)", opt, val);
    o->rewrite[a] = (unsigned char)b;
    return 0;
}

/* Applies one option value; `opt` names its origin for messages (--x or INIT_X). */
static int apply(struct init_opts *o, int id, const char *opt, const char *val)
{
    unsigned u;
    int sig;
    switch (id) {
    case 'g':
    case 's':
    case 'v':
    case 'w': {
        bool on = true;
        if (val && cr_parse_bool(val, &on))
            return bad("boolean", opt, val);
        if (id == 'g')
            o->group = on;
        else if (id == 'v' || id == 'w')
            o->verbose = on ? o->verbose + 1 : 0;
        return 0;
    }
    case 'r':
        return set_rewrite(o, opt, val);
    case 'e': {
        cr_codeset c;
        if (cr_parse_codes(val, &c))
            return bad("exit code list", opt, val);
        for (int i = 0; i < 4; i++)
            o->remap_exit.bits[i] |= c.bits[i];
        return 0;
    }
    case 'p':
        sig = cr_parse_signal(val);
        if (sig <= 0)
            return bad("signal", opt, val);
        o->pdeathsig = sig;
        return 0;
    case OPT_RESTART:
        if (!strcasecmp(val, "no") || !strcasecmp(val, "false"))
            o->restart = RESTART_NO;
        else if (!strcasecmp(val, "on-failure") || !strcasecmp(val, "unexpected"))
            o->restart = RESTART_ON_FAILURE;
        else if (!strcasecmp(val, "always") || !strcasecmp(val, "true"))
            o->restart = RESTART_ALWAYS;
        else
            return bad("restart policy (no, on-failure, always)", opt, val);
        return 0;
    case OPT_EXIT_CODES:
        if (cr_parse_codes(val, &o->exit_codes))
            return bad("exit code list", opt, val);
        return 0;
    case OPT_GRACE:
    case OPT_DELAY:
    case OPT_DELAY_MAX:
    case OPT_RESET_AFTER:
    case OPT_WINDOW:
    case OPT_STARTSECS: {
        int64_t ms;
        if (cr_parse_duration_ms(val, &ms))
            return bad("duration", opt, val);
        *(id == OPT_GRACE ? &o->grace_ms : id == OPT_DELAY ? &o->restart_delay_ms
          : id == OPT_DELAY_MAX ? &o->restart_delay_max_ms
          : id == OPT_RESET_AFTER ? &o->restart_reset_after_ms
          : id == OPT_WINDOW ? &o->restart_window_ms : &o->startsecs_ms) = ms;
        return 0;
    }
    case OPT_MAX_RESTARTS:
    case OPT_STARTRETRIES:
        if (cr_parse_uint(val, 1000000, &u))
            return bad("number", opt, val);
        *(id == OPT_MAX_RESTARTS ? &o->max_restarts : &o->startretries) = u;
        return 0;
    case OPT_EVENTS_FD:
    case OPT_SPEC_FD:
    case OPT_GO_FD:
        if (cr_parse_uint(val, 1u << 20, &u))
            return bad("file descriptor", opt, val);
        *(id == OPT_EVENTS_FD ? &o->events_fd : id == OPT_SPEC_FD ? &o->spec_fd : &o->go_fd) =
            (int)u;
        return 0;
    }
    return 2;
}

/* Repeatable options come from the environment as comma lists. */
static int apply_env_list(struct init_opts *o, int id, const char *name, const char *val)
{
    char item[64];
    while (*val) {
        size_t n = strcspn(val, ",");
        if (n >= sizeof item)
            return bad("value", name, val);
        memcpy(item, val, n);
        item[n] = 0;
        int r = apply(o, id, name, item);
        if (r)
            return r;
        val += n;
        if (*val == ',')
            val++;
    }
    return 0;
}

static void defaults(struct init_opts *o)
{
    memset(o, 0, sizeof *o);
    o->startretries = UINT_MAX;
    o->grace_ms = 5000;
    o->restart = RESTART_NO;
    cr_codeset_add(&o->exit_codes, 0);
    o->restart_delay_ms = 100;
    o->restart_delay_max_ms = 30000;
    o->restart_reset_after_ms = 10000;
    o->restart_window_ms = 0;
    o->events_fd = -1;
    o->spec_fd = -1;
    o->go_fd = -1;
    o->umask = -1;
}

int init_parse_args(int argc, char **argv, struct init_opts *o, bool *done)
{
    char name[48];
    int r;
    bool cli_rewrite = false, cli_remap = false;

    *done = false;
    defaults(o);
    /* tini's variables, with tini's meaning (set to anything; left in CMD's environment, as
     * tini leaves them): read first, so INIT_* and the command line win */
    if (getenv("TINI_KILL_PROCESS_GROUP"))
        o->group = true;
    const char *tv = getenv("TINI_VERBOSITY");
    if (tv) {
        unsigned level;
        if (cr_parse_uint(tv, 3, &level))
            return bad("verbosity (0 to 3)", "TINI_VERBOSITY", tv);
        o->verbose = level >= 2 ? (int)level - 1 : 0;
    }
    /* TINI_SUBREAPER: init is a subreaper whenever it is not PID 1 */
    for (const struct option *lo = longopts; lo->name; lo++) {
        if (lo->val == 'h' || lo->val == 'V' || lo->val == 'l' || lo->val == 'w' ||
            lo->val == OPT_SPEC_FD || lo->val == OPT_GO_FD)
            continue;
        env_name(lo->name, name, sizeof name);
        const char *val = getenv(name);
        if (!val)
            continue;
        r = (lo->val == 'r' || lo->val == 'e') ? apply_env_list(o, lo->val, name, val)
                                               : apply(o, lo->val, name, val);
        if (r)
            return r;
        unsetenv(name);
    }

    opterr = 0;
    int c;
    if (argc <= 1) {
        /* as tini: no arguments at all is a usage error that shows the usage */
        fputs(usage_text, stderr);
        return 2;
    }
    while ((c = getopt_long(argc, argv, "+gsr:e:p:vwhVl", longopts, NULL)) != -1) {
        char optname[40];
        const char *shown = argv[optind - 1];
        snprintf(optname, sizeof optname, "%s", shown && shown[0] == '-' ? shown : "option");
        char *eq = strchr(optname, '=');
        if (eq)
            *eq = 0;
        switch (c) {
        case 'h':
            fputs(usage_text, stdout);
            *done = true;
            return 0;
        case 'V':
            printf("init (corral) %s\n", CORRAL_VERSION);
            *done = true;
            return 0;
        case 'l':
            printf("init (corral) %s\nPart of corral; distributed under the terms of the "
                   "license in its sources.\n", CORRAL_VERSION);
            *done = true;
            return 0;
        case '?':
        case ':':
            if (optopt)
                fprintf(stderr, "init: option -%c: %s\n", optopt,
                        c == ':' ? "needs a value" : "unknown option");
            else
                fprintf(stderr, "init: %s: unknown option or missing value\n", argv[optind - 1]);
            fprintf(stderr, "Try 'init --help'.\n");
            return 2;
        case 'r':
            if (!cli_rewrite)
                memset(o->rewrite, 0, sizeof o->rewrite);
            cli_rewrite = true;
            break;
        case 'e':
            if (!cli_remap)
                memset(&o->remap_exit, 0, sizeof o->remap_exit);
            cli_remap = true;
            break;
        }
        r = apply(o, c, optname, optarg);
        if (r)
            return r;
    }
    if (o->go_fd >= 0 && (o->spec_fd < 0 || o->go_fd <= 2)) {
        fprintf(stderr, "init: --go-fd %d: only with --spec-fd, and not a stdio fd\n", o->go_fd);
        return 2;
    }
    if (o->spec_fd >= 0) {
        if (optind < argc) {
            fprintf(stderr, "init: --spec-fd: the command comes from the spec\n");
            return 2;
        }
        return 0;
    }
    if (optind >= argc) {
        fprintf(stderr, "init: no command given\nTry 'init --help'.\n");
        return 2;
    }
    if (o->restart_delay_max_ms < o->restart_delay_ms)
        o->restart_delay_max_ms = o->restart_delay_ms;
    if (o->events_fd >= 0 && o->events_fd <= 2) {
        fprintf(stderr, "init: --events-fd %d: would mix events into stdio\n", o->events_fd);
        return 2;
    }
    o->argv = argv + optind;
    return 0;
}

/* The note the supervisor looks for (shared/spec.h): allocated, so it is in a PT_NOTE
 * segment found from the program headers; kept by --gc-sections as every note is. */
__asm__(".pushsection .note.corral,\"a\",@note\n"
        ".balign 4\n"
        ".long 7\n"                                /* namesz: the owner and its NUL */
        ".long 5\n"                                /* descsz: "init" and its NUL */
        ".long 1\n"                                /* CR_INIT_NOTE_TYPE */
        ".asciz \"" CR_INIT_NOTE_NAME "\"\n"
        ".balign 4\n"
        ".asciz \"init\"\n"
        ".balign 4\n"
        ".popsection\n");
_Static_assert(sizeof CR_INIT_NOTE_NAME == 7 && CR_INIT_NOTE_TYPE == 1,
               "the note above spells out the owner's size and the type");

/* The container's setup runs deep, with path buffers of 4 KiB on the stack: ~24 KiB of stack
 * pages stay dirty for as long as init lives (and there is one init per service). Once it is
 * done, those dead frames below us are handed back; the loop's own frames (well under the
 * margin kept) fault in fresh pages if they ever reach further. */
static void __attribute__((noinline)) drop_dead_stack(void)
{
    char here;
    /* keep: one page below this frame, for madvise's own call (well under a page deep). */
    const uintptr_t page = 4096, keep = 4096, span = 256 * 1024;
    uintptr_t top = (((uintptr_t)&here) & ~(page - 1)) - keep;
    /* Below the stack's lowest page nothing is mapped: madvise says ENOMEM for that part
     * and still drops the rest. */
    madvise((void *)(top - span), span, MADV_DONTNEED);
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23   /* Linux 5.14 */
#endif

/* The same ~24 KiB, made in one call before the setup runs through them: page by page, each
 * first touch was a fault of its own (six per start, ~10-20 us each on a virtual machine
 * whose faults trap to the host). Older kernels say EINVAL: then they fault in as before. */
static void __attribute__((noinline)) make_setup_stack(void)
{
    char here;
    const uintptr_t page = 4096, span = 28 * 1024;
    uintptr_t top = ((uintptr_t)&here) & ~(page - 1);
    madvise((void *)(top - span), span, MADV_POPULATE_WRITE);
}

int main(int argc, char **argv)
{
    struct init_opts o;
    bool done;
    int r = init_parse_args(argc, argv, &o, &done);
    if (r || done)
        return r;
    if (o.spec_fd >= 0) {
        make_setup_stack();
        r = init_spec_setup(o.spec_fd, &o);
        if (r)
            return r;
        if (o.go_fd >= 0) {
            /* The supervisor connects our network meanwhile: it could start us with a vfork
             * (nothing of it copied) and need not wait for this set-up */
            char go = 0;
            ssize_t n;
            while ((n = read(o.go_fd, &go, 1)) < 0 && errno == EINTR)
                ;
            close(o.go_fd);
            if (n != 1)
                return 127;   /* it gave up on us (or died): nothing runs */
        }
        drop_dead_stack();
    }
    return pid1_run(&o);
}
