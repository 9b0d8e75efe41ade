/* workload: the one fake workload every corral test runs.
 *
 * The command line is a sequence of steps separated by "--", run in order:
 *
 *     workload trap USR1,TERM report=/tmp/x -- sleep 5 -- exit 3
 *
 * Everything this program opens is close-on-exec, so an exec'd program (the `exec` step) and
 * the `info` step see only what the program was started with. Reporting steps (trap, mark,
 * info, env, orphans' pidfile lines...) write whole lines with one write(2), unbuffered, so a
 * test can poll a file while the workload runs. Statically linked with musl: no glibc-only
 * calls. Exit status 100 means the command line was wrong. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define USAGE_EXIT 100

static const char usage[] =
"usage: workload STEP [ARGS] [-- STEP [ARGS]]...\n"
"Destinations (DEST): a file path (appended), fd:N, '-' (stdout) or 'err' (stderr).\n"
"  out DEST                       later reports (trap, mark, info, env) go to DEST\n"
"  mark TEXT...                   write TEXT as one line to the current out\n"
"  stamp                          write CLOCK_MONOTONIC now, in seconds, as a line to the out\n"
"  pidfile PATH                   append our pid to PATH\n"
"  exit CODES [state=PATH] [after=SECS]\n"
"                                 exit; CODES is N or a signal name (die by it), or a list\n"
"                                 'a,b,c' picked by run number counted in PATH (last repeats)\n"
"  sleep SECS                     sleep (fractions allowed), resumed after handled signals\n"
"  pause [SECS]                   like sleep, default 3600\n"
"  ignore SIGS                    set SIGS (comma list) to SIG_IGN\n"
"  block SIGS                     add SIGS to the signal mask\n"
"  untrap SIGS                    set SIGS back to SIG_DFL\n"
"  trap SIGS [report=DEST] [exit=N]\n"
"                                 catch SIGS; write each one's name as a line to the out;\n"
"                                 with exit=N, _exit(N) after reporting\n"
"  waitsig SIG [SECS]             wait until SIG (trapped) arrived once more than already\n"
"                                 waited for (default 60 s, else exit 101)\n"
"  orphans N SECS [pidfile=PATH] [exit=CODE|SIG]\n"
"                                 double-fork N orphans that sleep SECS then exit\n"
"  storm N [pidfile=PATH]         N orphans that all exit when released (release step or\n"
"                                 our exit)\n"
"  release                        release the storm\n"
"  linger SECS [pidfile=PATH]     a grandchild in its own session (setsid) that sleeps SECS\n"
"  children N [sleep=SECS] [exit=CODE]  fork N children (default sleep 3600)\n"
"  reap                           wait for all our children\n"
"  spew N [fd=1|2] [bytes=LEN]    write N lines (of LEN bytes with bytes=) to fd\n"
"  alloc SIZE                     allocate and touch SIZE bytes (K/M/G suffixes)\n"
"  info                           pid ppid pgid sid sigmask sigign fds tty fg lines to the out\n"
"  env                            the environment, one variable a line, to the out\n"
"  notify [TEXT]                  send TEXT (default READY=1) to $NOTIFY_SOCKET\n"
"  notify-fd N                    write a newline to fd N and close it\n"
"  die SIG                        kill ourselves with SIG (default disposition, no core)\n"
"  raise SIG                      send ourselves SIG without touching its disposition\n"
"  exec CMD [ARGS...]             exec CMD with all the remaining arguments (last step)\n";

static void die_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("workload: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\n", stderr);
    va_end(ap);
    fputs(usage, stderr);
    exit(USAGE_EXIT);
}

/* ---- signals by name ------------------------------------------------------------------- */
static const struct { const char *name; int sig; } sigtab[] = {
    {"HUP", SIGHUP}, {"INT", SIGINT}, {"QUIT", SIGQUIT}, {"ILL", SIGILL}, {"TRAP", SIGTRAP},
    {"ABRT", SIGABRT}, {"BUS", SIGBUS}, {"FPE", SIGFPE}, {"KILL", SIGKILL}, {"USR1", SIGUSR1},
    {"SEGV", SIGSEGV}, {"USR2", SIGUSR2}, {"PIPE", SIGPIPE}, {"ALRM", SIGALRM},
    {"TERM", SIGTERM}, {"STKFLT", SIGSTKFLT}, {"CHLD", SIGCHLD}, {"CONT", SIGCONT},
    {"STOP", SIGSTOP}, {"TSTP", SIGTSTP}, {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU},
    {"URG", SIGURG}, {"XCPU", SIGXCPU}, {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM},
    {"PROF", SIGPROF}, {"WINCH", SIGWINCH}, {"IO", SIGIO}, {"PWR", SIGPWR}, {"SYS", SIGSYS},
};

static int sig_parse(const char *s)
{
    if (!strncasecmp(s, "SIG", 3))
        s += 3;
    for (size_t i = 0; i < sizeof sigtab / sizeof sigtab[0]; i++)
        if (!strcasecmp(s, sigtab[i].name))
            return sigtab[i].sig;
    char *end;
    long n = strtol(s, &end, 10);
    if (*s && !*end && n > 0 && n < 65)
        return (int)n;
    return -1;
}

static const char *sig_name(int sig, char *buf, size_t len)
{
    for (size_t i = 0; i < sizeof sigtab / sizeof sigtab[0]; i++)
        if (sigtab[i].sig == sig)
            return sigtab[i].name;
    snprintf(buf, len, "%d", sig);
    return buf;
}

/* "TERM,USR1" → a bit set of signal numbers. */
static unsigned long long sig_list(const char *s)
{
    unsigned long long set = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int sig = sig_parse(t);
        if (sig < 0)
            die_usage("unknown signal '%s'", t);
        set |= 1ULL << (sig - 1);
    }
    return set;
}

/* ---- output ------------------------------------------------------------------------------- */
static int out_fd = 1;
/* fds this program opened itself: left out of `info`'s fd list. */
static unsigned char own_fd[1024];

static void own(int fd)
{
    if (fd >= 0 && fd < (int)sizeof own_fd)
        own_fd[fd] = 1;
}

static int open_dest(const char *dest)
{
    if (!strcmp(dest, "-"))
        return 1;
    if (!strcmp(dest, "err"))
        return 2;
    if (!strncmp(dest, "fd:", 3))
        return atoi(dest + 3);
    int fd = open(dest, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, "workload: %s: %s\n", dest, strerror(errno));
        exit(USAGE_EXIT);
    }
    own(fd);
    return fd;
}

/* One write per line, so lines from several processes never interleave. */
static void put(int fd, const char *fmt, ...)
{
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof buf - 1)
        n = (int)sizeof buf - 1;
    for (int off = 0; off < n;) {
        ssize_t w = write(fd, buf + off, (size_t)(n - off));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        off += (int)w;
    }
}

static void append_pid(const char *path, pid_t pid)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
        put(fd, "%d\n", (int)pid);
        close(fd);
    }
}

/* ---- time --------------------------------------------------------------------------------- */
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double parse_secs(const char *s)
{
    char *end;
    double d = strtod(s, &end);
    if (end == s || d < 0)
        die_usage("bad duration '%s'", s);
    if (!strcmp(end, "ms"))
        d /= 1000;
    else if (*end && strcmp(end, "s"))
        die_usage("bad duration '%s'", s);
    return d;
}

/* Sleeps the whole time even when handled signals interrupt it. */
static void sleep_secs(double secs)
{
    double end = now() + secs;
    for (double left; (left = end - now()) > 0;) {
        struct timespec ts = {(time_t)left, (long)((left - (double)(time_t)left) * 1e9)};
        nanosleep(&ts, NULL);
    }
}

/* ---- traps -------------------------------------------------------------------------------- */
static volatile sig_atomic_t got[65]; /* how many of each arrived and were not waited for */
static int trap_fd[65];
static int trap_exit[65]; /* -1: keep running */

static void on_signal(int sig)
{
    int saved = errno;
    char num[16];
    char line[32];
    const char *name = sig_name(sig, num, sizeof num);
    size_t n = strlen(name);
    memcpy(line, name, n);
    line[n++] = '\n';
    if (write(trap_fd[sig], line, n) < 0) {
        /* nothing to do: the test will see the line missing */
    }
    got[sig]++;
    if (trap_exit[sig] >= 0)
        _exit(trap_exit[sig]);
    errno = saved;
}

static void set_disposition(unsigned long long set, void (*handler)(int))
{
    for (int sig = 1; sig < 65; sig++) {
        if (!(set >> (sig - 1) & 1))
            continue;
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = handler;
        sa.sa_flags = SA_RESTART;
        sigfillset(&sa.sa_mask);
        if (sigaction(sig, &sa, NULL) < 0)
            fprintf(stderr, "workload: sigaction(%d): %s\n", sig, strerror(errno));
    }
}

/* ---- step helpers ------------------------------------------------------------------------- */
/* key=value options after a step's positional arguments. */
static const char *opt(char **args, int n, const char *key)
{
    size_t k = strlen(key);
    for (int i = 0; i < n; i++)
        if (!strncmp(args[i], key, k) && args[i][k] == '=')
            return args[i] + k + 1;
    return NULL;
}

static long num(const char *s)
{
    char *end;
    long v = strtol(s, &end, 0);
    if (!*s || *end)
        die_usage("bad number '%s'", s);
    return v;
}

static void die_by(int sig)
{
    struct rlimit nocore = {0, 0};
    setrlimit(RLIMIT_CORE, &nocore);
    signal(sig, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    kill(getpid(), sig);
    /* A stop signal returns here after SIGCONT; anything else that did not kill us is an
     * error the test should see. */
    if (sig != SIGSTOP && sig != SIGTSTP && sig != SIGTTIN && sig != SIGTTOU) {
        sleep_secs(0.5);
        _exit(102);
    }
}

/* "3", "TERM" or "KILL": exit or die. */
static void exit_with(const char *code)
{
    if (!isdigit((unsigned char)code[0])) {
        int sig = sig_parse(code);
        if (sig < 0)
            die_usage("bad exit code or signal '%s'", code);
        die_by(sig);
    }
    exit((int)num(code));
}

static pid_t xfork(void)
{
    for (int tries = 0;; tries++) {
        pid_t pid = fork();
        if (pid >= 0 || errno != EAGAIN || tries > 200)
            return pid;
        sleep_secs(0.01);
    }
}

/* ---- steps -------------------------------------------------------------------------------- */
typedef void step_fn(char **args, int n);

static int storm_wfd = -1;

static void st_out(char **a, int n)
{
    if (n < 1)
        die_usage("out DEST");
    out_fd = open_dest(a[0]);
}

static void st_mark(char **a, int n)
{
    char buf[1024] = "";
    for (int i = 0; i < n; i++) {
        strncat(buf, a[i], sizeof buf - strlen(buf) - 2);
        if (i + 1 < n)
            strncat(buf, " ", sizeof buf - strlen(buf) - 2);
    }
    put(out_fd, "%s\n", buf);
}

static void st_stamp(char **a, int n)
{
    (void)a;
    if (n)
        die_usage("stamp takes no argument");
    put(out_fd, "%.6f\n", now());
}

static void st_pidfile(char **a, int n)
{
    if (n < 1)
        die_usage("pidfile PATH");
    append_pid(a[0], getpid());
}

static void st_exit(char **a, int n)
{
    if (n < 1)
        die_usage("exit CODES");
    const char *state = opt(a, n, "state"), *after = opt(a, n, "after");
    if (after)
        sleep_secs(parse_secs(after));
    char list[256];
    snprintf(list, sizeof list, "%s", a[0]);
    int run = 0;
    if (state) {
        /* The run number is the number of lines in the state file, which grows by one line
         * per run. */
        int fd = open(state, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd < 0)
            die_usage("%s: %s", state, strerror(errno));
        char c;
        while (read(fd, &c, 1) == 1)
            run += c == '\n';
        put(fd, "%d\n", (int)getpid());
        close(fd);
    }
    char *save = NULL, *code = strtok_r(list, ",", &save), *next;
    for (int i = 0; i < run && (next = strtok_r(NULL, ",", &save)); i++)
        code = next;
    exit_with(code);
}

static void st_sleep(char **a, int n)
{
    sleep_secs(n > 0 ? parse_secs(a[0]) : 3600);
}

static void st_ignore(char **a, int n)
{
    if (n < 1)
        die_usage("ignore SIGS");
    set_disposition(sig_list(a[0]), SIG_IGN);
}

static void st_untrap(char **a, int n)
{
    if (n < 1)
        die_usage("untrap SIGS");
    set_disposition(sig_list(a[0]), SIG_DFL);
}

static void st_block(char **a, int n)
{
    if (n < 1)
        die_usage("block SIGS");
    unsigned long long set = sig_list(a[0]);
    sigset_t ss;
    sigemptyset(&ss);
    for (int sig = 1; sig < 65; sig++)
        if (set >> (sig - 1) & 1)
            sigaddset(&ss, sig);
    sigprocmask(SIG_BLOCK, &ss, NULL);
}

static void st_trap(char **a, int n)
{
    if (n < 1)
        die_usage("trap SIGS [report=DEST] [exit=N]");
    const char *report = opt(a + 1, n - 1, "report"), *ex = opt(a + 1, n - 1, "exit");
    if (report)
        out_fd = open_dest(report);
    unsigned long long set = sig_list(a[0]);
    for (int sig = 1; sig < 65; sig++) {
        if (set >> (sig - 1) & 1) {
            trap_fd[sig] = out_fd;
            trap_exit[sig] = ex ? (int)num(ex) : -1;
        }
    }
    set_disposition(set, on_signal);
}

static void st_waitsig(char **a, int n)
{
    if (n < 1)
        die_usage("waitsig SIG [SECS]");
    int sig = sig_parse(a[0]);
    if (sig < 0)
        die_usage("unknown signal '%s'", a[0]);
    double end = now() + (n > 1 ? parse_secs(a[1]) : 60);
    while (!got[sig]) {
        if (now() > end) {
            fprintf(stderr, "workload: no %s within the time\n", a[0]);
            exit(101);
        }
        sleep_secs(0.005);
    }
    /* Consume one arrival; the handler must not run in the middle of the decrement. */
    sigset_t one, old;
    sigemptyset(&one);
    sigaddset(&one, sig);
    sigprocmask(SIG_BLOCK, &one, &old);
    got[sig]--;
    sigprocmask(SIG_SETMASK, &old, NULL);
}

/* Forks N processes from a short-lived middle child, so init (or the nearest subreaper)
 * inherits them at once. Each runs body(arg). */
static void orphan_batch(long count, const char *pidfile, void (*body)(const void *), const void *arg)
{
    pid_t mid = xfork();
    if (mid < 0) {
        perror("workload: fork");
        exit(103);
    }
    if (mid == 0) {
        for (long i = 0; i < count; i++) {
            pid_t pid = xfork();
            if (pid < 0) {
                perror("workload: fork");
                _exit(103);
            }
            if (pid == 0)
                body(arg);
            if (pidfile)
                append_pid(pidfile, pid);
        }
        _exit(0);
    }
    int st;
    while (waitpid(mid, &st, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "workload: could not fork all orphans\n");
        exit(103);
    }
}

struct orphan_arg { double secs; const char *exit; };

static void orphan_body(const void *p)
{
    const struct orphan_arg *o = p;
    sleep_secs(o->secs);
    exit_with(o->exit ? o->exit : "0");
    _exit(0);
}

static void st_orphans(char **a, int n)
{
    if (n < 2)
        die_usage("orphans N SECS [pidfile=PATH] [exit=CODE|SIG]");
    struct orphan_arg o = {parse_secs(a[1]), opt(a + 2, n - 2, "exit")};
    orphan_batch(num(a[0]), opt(a + 2, n - 2, "pidfile"), orphan_body, &o);
}

static void storm_body(const void *p)
{
    int rfd = *(const int *)p;
    close(storm_wfd);
    char c;
    while (read(rfd, &c, 1) < 0 && errno == EINTR)
        ;
    _exit(0);
}

static void st_storm(char **a, int n)
{
    if (n < 1)
        die_usage("storm N [pidfile=PATH]");
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
        perror("workload: pipe");
        exit(103);
    }
    storm_wfd = p[1];
    own(p[1]);
    orphan_batch(num(a[0]), opt(a + 1, n - 1, "pidfile"), storm_body, &p[0]);
    close(p[0]);
}

static void st_release(char **a, int n)
{
    if (storm_wfd < 0)
        return;
    close(storm_wfd);
    if (storm_wfd < (int)sizeof own_fd)
        own_fd[storm_wfd] = 0;
    storm_wfd = -1;
}

static void st_linger(char **a, int n)
{
    if (n < 1)
        die_usage("linger SECS [pidfile=PATH]");
    double secs = parse_secs(a[0]);
    const char *pidfile = opt(a + 1, n - 1, "pidfile");
    pid_t mid = xfork();
    if (mid == 0) {
        int ready[2];
        if (pipe(ready) < 0)
            _exit(1);
        pid_t pid = xfork();
        if (pid == 0) {
            close(ready[0]);
            setsid();
            if (pidfile)
                append_pid(pidfile, getpid());
            close(ready[1]);
            sleep_secs(secs);
            _exit(0);
        }
        /* Leave only once the grandchild is in its session and its pid is written (it closes
         * the pipe then), so tests need not poll, however slow the machine. */
        close(ready[1]);
        char c;
        while (read(ready[0], &c, 1) < 0 && errno == EINTR)
            ;
        _exit(pid < 0);
    }
    int st;
    while (waitpid(mid, &st, 0) < 0 && errno == EINTR)
        ;
}

static void st_children(char **a, int n)
{
    if (n < 1)
        die_usage("children N [sleep=SECS] [exit=CODE]");
    const char *s = opt(a + 1, n - 1, "sleep"), *ex = opt(a + 1, n - 1, "exit");
    for (long i = num(a[0]); i > 0; i--) {
        pid_t pid = xfork();
        if (pid == 0) {
            sleep_secs(s ? parse_secs(s) : 3600);
            exit_with(ex ? ex : "0");
        }
    }
}

static void st_reap(char **a, int n)
{
    while (wait(NULL) > 0 || errno == EINTR)
        ;
}

static void st_spew(char **a, int n)
{
    if (n < 1)
        die_usage("spew N [fd=1|2] [bytes=LEN]");
    const char *f = opt(a + 1, n - 1, "fd"), *b = opt(a + 1, n - 1, "bytes");
    int fd = f ? (int)num(f) : 1;
    long len = b ? num(b) : 0;
    char *line = malloc((size_t)len + 32);
    if (!line)
        exit(103);
    if (len > 0) {
        memset(line, 'x', (size_t)len);
        line[len - 1] = '\n';
    }
    for (long i = 0, count = num(a[0]); i < count; i++) {
        if (len > 0)
            put(fd, "%.*s", (int)len, line);
        else
            put(fd, "line %ld\n", i);
    }
    free(line);
}

static void st_alloc(char **a, int n)
{
    if (n < 1)
        die_usage("alloc SIZE");
    char *end;
    double v = strtod(a[0], &end);
    switch (*end) {
    case 'k': case 'K': v *= 1024; break;
    case 'm': case 'M': v *= 1024 * 1024; break;
    case 'g': case 'G': v *= 1024.0 * 1024 * 1024; break;
    }
    size_t size = (size_t)v;
    char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("workload: mmap");
        exit(103);
    }
    for (size_t off = 0; off < size; off += 4096)
        p[off] = 1;
}

/* The kernel's view, not libc's: musl hides its internal signals from sigprocmask. */
struct k_sigaction { void *handler; unsigned long flags; void *restorer; unsigned long mask; };

static void st_info(char **a, int n)
{
    unsigned long long blk = 0, ign = 0;
    syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, &blk, 8);
    for (int sig = 1; sig < 65; sig++) {
        struct k_sigaction ka;
        if (syscall(SYS_rt_sigaction, sig, NULL, &ka, 8) == 0 && ka.handler == (void *)SIG_IGN)
            ign |= 1ULL << (sig - 1);
    }
    char fds[2048] = "";
    struct rlimit rl;
    long maxfd = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536 ? (long)rl.rlim_cur : 65536;
    for (int fd = 0; fd < maxfd; fd++) {
        if (fd < (int)sizeof own_fd && own_fd[fd])
            continue;
        if (fcntl(fd, F_GETFD) >= 0 && strlen(fds) < sizeof fds - 16)
            snprintf(fds + strlen(fds), sizeof fds - strlen(fds), "%s%d", *fds ? "," : "", fd);
    }
    int tty = isatty(0);
    pid_t fg = tty ? tcgetpgrp(0) : -1;
    put(out_fd,
        "pid=%d\nppid=%d\npgid=%d\nsid=%d\nsigmask=%016llx\nsigign=%016llx\nfds=%s\ntty=%d\nfg=%d\n",
        (int)getpid(), (int)getppid(), (int)getpgrp(), (int)getsid(0), blk, ign, fds, tty,
        tty && fg == getpgrp());
}

extern char **environ;

static void st_env(char **a, int n)
{
    for (char **e = environ; *e; e++)
        put(out_fd, "%s\n", *e);
}

static void st_notify(char **a, int n)
{
    const char *path = getenv("NOTIFY_SOCKET");
    const char *text = n > 0 ? a[0] : "READY=1";
    if (!path || !*path) {
        fprintf(stderr, "workload: NOTIFY_SOCKET is not set\n");
        exit(104);
    }
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    size_t len = strlen(path);
    if (len >= sizeof sun.sun_path)
        exit(104);
    memcpy(sun.sun_path, path, len);
    if (path[0] == '@')
        sun.sun_path[0] = 0; /* abstract socket */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || sendto(fd, text, strlen(text), MSG_NOSIGNAL, (struct sockaddr *)&sun,
                         (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0) {
        fprintf(stderr, "workload: notify %s: %s\n", path, strerror(errno));
        exit(104);
    }
    close(fd);
}

static void st_notify_fd(char **a, int n)
{
    if (n < 1)
        die_usage("notify-fd N");
    int fd = (int)num(a[0]);
    if (write(fd, "\n", 1) != 1) {
        fprintf(stderr, "workload: notify-fd %d: %s\n", fd, strerror(errno));
        exit(104);
    }
    close(fd);
}

static void st_die(char **a, int n)
{
    if (n < 1 || sig_parse(a[0]) < 0)
        die_usage("die SIG");
    die_by(sig_parse(a[0]));
}

static void st_raise(char **a, int n)
{
    if (n < 1 || sig_parse(a[0]) < 0)
        die_usage("raise SIG");
    kill(getpid(), sig_parse(a[0]));
}

static const struct { const char *name; step_fn *fn; } steps[] = {
    {"out", st_out}, {"mark", st_mark}, {"stamp", st_stamp}, {"pidfile", st_pidfile}, {"exit", st_exit},
    {"sleep", st_sleep}, {"pause", st_sleep}, {"ignore", st_ignore}, {"untrap", st_untrap},
    {"block", st_block}, {"trap", st_trap}, {"waitsig", st_waitsig}, {"orphans", st_orphans},
    {"storm", st_storm}, {"release", st_release}, {"linger", st_linger},
    {"children", st_children}, {"reap", st_reap}, {"spew", st_spew}, {"alloc", st_alloc},
    {"info", st_info}, {"env", st_env}, {"notify", st_notify}, {"notify-fd", st_notify_fd},
    {"die", st_die}, {"raise", st_raise},
};

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? USAGE_EXIT : 0;
    }
    for (int i = 1; i < argc;) {
        const char *name = argv[i];
        if (!strcmp(name, "exec")) {
            if (i + 1 >= argc)
                die_usage("exec CMD [ARGS...]");
            execvp(argv[i + 1], argv + i + 1);
            fprintf(stderr, "workload: exec %s: %s\n", argv[i + 1], strerror(errno));
            return 127;
        }
        int end = i + 1;
        while (end < argc && strcmp(argv[end], "--"))
            end++;
        size_t k = 0;
        while (k < sizeof steps / sizeof steps[0] && strcmp(steps[k].name, name))
            k++;
        if (k == sizeof steps / sizeof steps[0])
            die_usage("unknown step '%s'", name);
        steps[k].fn(argv + i + 1, end - i - 1);
        i = end + 1;
    }
    return 0;
}
