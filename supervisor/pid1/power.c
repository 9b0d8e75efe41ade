/* The machine's way down, and the fatal path (pid1.h). By the time cr_pid1_power() runs, the
 * services are stopped and the loop is closed: this code may block, and collects every child
 * with waitpid(-1) (no pidfd is left to steal from). */
#include "pid1/pid1.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static const char *const names[] = {
    [CR_POWER_NONE] = "none", [CR_POWER_HALT] = "halt", [CR_POWER_POWEROFF] = "poweroff",
    [CR_POWER_REBOOT] = "reboot",
};

const char *cr_power_name(enum cr_power p)
{
    return (unsigned)p < sizeof names / sizeof names[0] ? names[p] : "?";
}

enum cr_power cr_power_parse(const char *name)
{
    for (size_t i = 1; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(name, names[i]))
            return (enum cr_power)i;
    return CR_POWER_NONE;
}

/* s6-linux-init's meanings (the .s6-svscan/SIG* scripts its maker writes): INT reboots, USR1
 * and PWR power off, USR2 halts; TERM means nothing to PID 1 (a stray `kill -TERM 1` must not
 * take the machine down). busybox's halt/poweroff send USR1/USR2 the other way round and its
 * reboot sends TERM: the README says so. */
enum cr_power cr_power_of_signal(int signum)
{
    switch (signum) {
    case SIGINT: return CR_POWER_REBOOT;
    case SIGUSR1:
    case SIGPWR: return CR_POWER_POWEROFF;
    case SIGUSR2: return CR_POWER_HALT;
    default: return CR_POWER_NONE;
    }
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Collects children until none is left (true) or ms have passed (false); until (pid > 0)
 * also returns once that one is collected. SIGCHLD is blocked and waited for, so nothing
 * spins. */
static bool reap_for(int ms, pid_t until)
{
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    long long deadline = now_ms() + ms;
    for (;;) {
        pid_t p;
        while ((p = waitpid(-1, NULL, WNOHANG | __WALL)) > 0)
            if (p == until)
                return true;
        if (p < 0 && errno == ECHILD)
            return true;
        long long left = deadline - now_ms();
        if (left <= 0)
            return false;
        if (left > 200)
            left = 200;
        struct timespec ts = {0, (long)left * 1000000};
        sigtimedwait(&chld, NULL, &ts);
    }
}

/* Mount points, from /proc/self/mountinfo's fifth field (octal escapes undone), in mount
 * order. Returns how many, *v malloc'd (each string too). */
static size_t mount_points(char ***v)
{
    *v = NULL;
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return 0;
    size_t n = 0, cap = 0;
    char *line = NULL;
    size_t ll = 0;
    while (getline(&line, &ll, f) > 0) {
        char *save, *tok = strtok_r(line, " ", &save);
        for (int i = 1; tok && i < 5; i++)
            tok = strtok_r(NULL, " ", &save);
        if (!tok)
            continue;
        char *o = tok;
        for (const char *s = tok; *s; s++) {
            if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] && s[3]) {
                *o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
                s += 3;
            } else {
                *o++ = *s;
            }
        }
        *o = 0;
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            char **nv = realloc(*v, cap * sizeof *nv);
            if (!nv)
                break;
            *v = nv;
        }
        if (((*v)[n] = strdup(tok)))
            n++;
    }
    free(line);
    fclose(f);
    return n;
}

/* Newest first; what cannot be unmounted (busy: the console's /dev, the root) is remounted
 * read-only, so every write has reached its device. */
static void unmount_all(void)
{
    char **v;
    size_t n = mount_points(&v);
    int gone = 0, ro = 0, busy = 0;
    for (size_t i = n; i-- > 0;) {
        if (strcmp(v[i], "/") && umount2(v[i], UMOUNT_NOFOLLOW) == 0)
            gone++;
        else if (mount(NULL, v[i], NULL, MS_REMOUNT | MS_RDONLY, NULL) == 0)
            ro++;
        else
            busy++;
        free(v[i]);
    }
    free(v);
    cr_log(NULL, "file systems: %d unmounted, %d remounted read-only, %d left as they were",
           gone, ro, busy);
}

void cr_pid1_power(enum cr_power p, int grace_ms)
{
    if (p == CR_POWER_NONE)
        p = CR_POWER_REBOOT;
    long long t0 = now_ms();
    cr_log(NULL, "%s: sending SIGTERM to every process", cr_power_name(p));
    kill(-1, SIGTERM);
    kill(-1, SIGCONT);
    if (!reap_for(grace_ms, 0)) {
        cr_log(NULL, "%s: sending SIGKILL to every process still there after %d ms",
               cr_power_name(p), grace_ms);
        kill(-1, SIGKILL);
        if (!reap_for(5000, 0))
            cr_log(NULL, "%s: some processes outlived SIGKILL (in uninterruptible sleep)",
                   cr_power_name(p));
    }
    cr_log(NULL, "%s: every process is gone (%lld ms); syncing", cr_power_name(p),
           now_ms() - t0);
    sync();
    unmount_all();
    sync();
    static const int cmd[] = {
        [CR_POWER_HALT] = RB_HALT_SYSTEM, [CR_POWER_POWEROFF] = RB_POWER_OFF,
        [CR_POWER_REBOOT] = RB_AUTOBOOT,
    };
    cr_log(NULL, "%s: %s now", cr_power_name(p),
           p == CR_POWER_HALT ? "halting" : p == CR_POWER_POWEROFF ? "powering off" : "rebooting");
    if (reboot(cmd[p]) < 0)
        cr_log(NULL, "reboot(2): %s", strerror(errno));
    /* Halted, or reboot(2) refused: PID 1 must not exit (the kernel would panic). */
    for (;;)
        reap_for(60000, 0);
}

/* The emergency shell: on the console, a session of its own, default signals. Returns when
 * it exits; false when there is none. */
static bool emergency_shell(void)
{
    static const char sh[] = "/bin/sh";
    if (access(sh, X_OK) < 0)
        return false;
    cr_log(NULL, "starting an emergency shell (%s) on the console; the machine reboots when "
                 "it exits", sh);
    pid_t pid = fork();
    if (pid < 0) {
        cr_log(NULL, "emergency shell: fork: %s", strerror(errno));
        return false;
    }
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        for (int s = 1; s < NSIG; s++)
            signal(s, SIG_DFL);
        setsid();
        ioctl(STDIN_FILENO, TIOCSCTTY, 1);
        close_range(3, ~0U, 0);   /* the services' fds (io/handed.h) are not the shell's */
        execl(sh, "sh", (char *)NULL);
        _exit(127);
    }
    while (!reap_for(60000, pid))
        ;
    return true;
}

void cr_pid1_fatal(const char *why, int delay_s)
{
    cr_log(NULL, "fatal: %s", why);
    if (!emergency_shell()) {
        cr_log(NULL, "no emergency shell; rebooting in %d s", delay_s);
        long long until = now_ms() + delay_s * 1000LL;
        for (long long left; (left = until - now_ms()) > 0;)
            if (reap_for((int)left, 0))
                usleep(left > 200 ? 200000 : (useconds_t)left * 1000);
    }
    cr_pid1_power(CR_POWER_REBOOT, 2000);
}
