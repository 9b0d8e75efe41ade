/* applwatch: the in-guest half of bench/appliance/applbench.py (issue 11's boot comparison).
 *
 * Started by the boot script just before it execs the init under test (so its parent becomes
 * PID 1), it polls every --interval ms until every service is ready:
 *   --port P     127.0.0.1:P accepts a TCP connection (a busybox httpd is listening)
 *   --proc CMD   a process whose whole command line (spaces for NULs) is CMD exists
 *                (the sleep of a sleep loop is running)
 * Then it measures memory (RSS and PSS of PID 1 and of every other process that is not a
 * workload, i.e. whose executable is not --workload-exe: the supervision tree; from
 * smaps_rollup, which walks the page tables: this kernel's VmRSS in /proc/PID/status is a
 * per-task cached counter that a process with few page faults, like busybox init, may
 * not have synced at all),
 * writes key=value lines to --result, and asks PID 1 for a poweroff the way the init under
 * test documents it (--request corral|runit|busybox).
 *
 * The moments that matter go to the kernel log at KERN_EMERG ("applbench: ready",
 * "applbench: request"): the console shows them with the kernel's timestamp, on the same
 * clock as its own "reboot: Power down", whatever the host's TCG noise. Times written to
 * --result are CLOCK_BOOTTIME (/proc/uptime's) for a cross-check.
 *
 * Not all ready within --timeout: the result says which are missing (error=...), and the
 * poweroff is asked for anyway so that the VM ends. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_SVC 64

struct svc {
    int port;           /* > 0: a TCP port; else proc */
    const char *proc;   /* the command line to find */
    double ready_at;    /* CLOCK_BOOTTIME seconds; 0: not yet */
};

static struct svc svcs[MAX_SVC];
static int nsvc;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_BOOTTIME, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A KERN_EMERG line: shown on the console even with loglevel=1, with the kernel's time. */
static void kmsg(const char *fmt, ...)
{
    char buf[256];
    int n = snprintf(buf, sizeof buf, "<0>applbench: ");
    va_list ap;
    va_start(ap, fmt);
    n += vsnprintf(buf + n, sizeof buf - n, fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof buf)
        n = sizeof buf - 1;
    int fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (write(fd, buf, n) < 0)
            perror("applwatch: /dev/kmsg");
        close(fd);
    }
}

static bool port_accepts(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

/* /proc/PID/NAME into buf (NUL-terminated, NULs inside turned to spaces, trailing ones cut). */
static ssize_t read_proc(const char *pid, const char *name, char *buf, size_t size)
{
    char path[300];
    snprintf(path, sizeof path, "/proc/%s/%s", pid, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, size - 1);
    close(fd);
    if (n < 0)
        return -1;
    while (n > 0 && buf[n - 1] == '\0')
        n--;
    for (ssize_t i = 0; i < n; i++)
        if (buf[i] == '\0')
            buf[i] = ' ';
    buf[n] = '\0';
    return n;
}

static bool is_pid(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

/* One pass over /proc for the proc services not ready yet. */
static void scan_procs(double t)
{
    DIR *d = opendir("/proc");
    if (!d)
        return;
    struct dirent *e;
    char cmd[512];
    while ((e = readdir(d))) {
        if (!is_pid(e->d_name) || read_proc(e->d_name, "cmdline", cmd, sizeof cmd) <= 0)
            continue;
        for (int i = 0; i < nsvc; i++)
            if (!svcs[i].port && !svcs[i].ready_at && strcmp(cmd, svcs[i].proc) == 0)
                svcs[i].ready_at = t;
    }
    closedir(d);
}

/* "Key:   N kB" from a /proc status-like text; -1 when absent. */
static long field_kb(const char *text, const char *key)
{
    const char *p = text;
    size_t k = strlen(key);
    while (p && *p) {
        if (strncmp(p, key, k) == 0 && p[k] == ':')
            return strtol(p + k + 1, NULL, 10);
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return -1;
}

/* The supervision tree: every user process but this one and the workloads. */
static void memory(FILE *out, const char *workload_exe)
{
    static char text[8192];
    char exe[512], comm[64];
    long rss_sum = 0, pss_sum = 0, pid1_rss = -1;
    int n = 0;
    pid_t self = getpid();
    DIR *d = opendir("/proc");
    if (!d)
        return;
    fprintf(out, "procs=");
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!is_pid(e->d_name) || atoi(e->d_name) == self)
            continue;
        char path[300];
        snprintf(path, sizeof path, "/proc/%s/exe", e->d_name);
        ssize_t l = readlink(path, exe, sizeof exe - 1);
        if (l <= 0)
            continue;   /* a kernel thread */
        exe[l] = '\0';
        if (strcmp(e->d_name, "1") != 0 && strcmp(exe, workload_exe) == 0)
            continue;
        if (read_proc(e->d_name, "smaps_rollup", text, sizeof text) <= 0)
            continue;
        long rss = field_kb(text, "Rss"), pss = field_kb(text, "Pss");
        if (rss < 0 || pss < 0)
            continue;
        if (read_proc(e->d_name, "comm", comm, sizeof comm) <= 0)
            strcpy(comm, "?");
        comm[strcspn(comm, "\n ")] = '\0';
        fprintf(out, "%s%s:%s:%ld:%ld", n ? "," : "", comm, e->d_name, rss, pss);
        if (strcmp(e->d_name, "1") == 0)
            pid1_rss = rss;
        rss_sum += rss;
        pss_sum += pss;
        n++;
    }
    closedir(d);
    fprintf(out, "\nsup_procs=%d\nsup_rss_kb=%ld\nsup_pss_kb=%ld\npid1_rss_kb=%ld\n", n, rss_sum,
            pss_sum, pid1_rss);
}

static int request(const char *how)
{
    if (strcmp(how, "corral") == 0)
        return kill(1, SIGUSR1);            /* s6-linux-init's meaning, as svctl poweroff */
    if (strcmp(how, "busybox") == 0)
        return kill(1, SIGUSR2);            /* what busybox's own `poweroff` sends */
    if (strcmp(how, "runit") == 0) {
        /* what Debian's runit-init 0 does (its runit-init package would replace this host's
         * init, so it is done here): stop flag on, reboot flag off, then wake runit */
        if (chmod("/run/runit.stopit", 0100) < 0 || chmod("/run/runit.reboot", 0) < 0)
            return -1;
        return kill(1, SIGCONT);
    }
    errno = EINVAL;
    return -1;
}

static void usage(void)
{
    fprintf(stderr, "usage: applwatch --result FILE --request corral|runit|busybox "
                    "--workload-exe PATH [--port P]... [--proc CMDLINE]... [--timeout S] "
                    "[--interval MS]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *result = NULL, *how = NULL, *workload_exe = NULL;
    double timeout = 120, interval_ms = 10;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            usage();
        if (nsvc == MAX_SVC && (!strcmp(a, "--port") || !strcmp(a, "--proc"))) {
            fprintf(stderr, "applwatch: more than %d services\n", MAX_SVC);
            return 2;
        }
        if (!strcmp(a, "--result"))
            result = v;
        else if (!strcmp(a, "--request"))
            how = v;
        else if (!strcmp(a, "--workload-exe"))
            workload_exe = v;
        else if (!strcmp(a, "--port"))
            svcs[nsvc++].port = atoi(v);
        else if (!strcmp(a, "--proc"))
            svcs[nsvc++].proc = v;
        else if (!strcmp(a, "--timeout"))
            timeout = atof(v);
        else if (!strcmp(a, "--interval"))
            interval_ms = atof(v);
        else
            usage();
        i++;
    }
    if (!result || !how || !workload_exe || !nsvc)
        usage();

    double start = now(), t = start;
    int missing = nsvc;
    struct timespec tick = {.tv_sec = 0, .tv_nsec = (long)(interval_ms * 1e6)};
    while (missing && t - start < timeout) {
        t = now();
        bool procs = false;
        for (int i = 0; i < nsvc; i++) {
            if (svcs[i].ready_at)
                continue;
            if (svcs[i].port && port_accepts(svcs[i].port))
                svcs[i].ready_at = t;
            else if (!svcs[i].port)
                procs = true;
        }
        if (procs)
            scan_procs(t);
        missing = 0;
        for (int i = 0; i < nsvc; i++)
            missing += !svcs[i].ready_at;
        if (missing)
            nanosleep(&tick, NULL);
    }
    if (!missing)
        kmsg("ready: all %d services\n", nsvc);
    else
        kmsg("NOT ready: %d of %d services after %.0f s\n", missing, nsvc, timeout);

    FILE *out = fopen(result, "w");
    if (!out) {
        perror(result);
        out = stderr;
    }
    fprintf(out, "watch_start=%.3f\nready=%.3f\n", start, missing ? 0.0 : t);
    if (missing) {
        fprintf(out, "error=not ready:");
        for (int i = 0; i < nsvc; i++)
            if (!svcs[i].ready_at) {
                if (svcs[i].port)
                    fprintf(out, " port %d", svcs[i].port);
                else
                    fprintf(out, " '%s'", svcs[i].proc);
            }
        fprintf(out, "\n");
    }
    for (int i = 0; i < nsvc; i++)
        if (svcs[i].ready_at) {
            if (svcs[i].port)
                fprintf(out, "ready_port_%d=%.3f\n", svcs[i].port, svcs[i].ready_at);
            else
                fprintf(out, "ready_proc_%d=%.3f\n", i, svcs[i].ready_at);
        }
    memory(out, workload_exe);
    fprintf(out, "request=%.3f\n", now());
    fflush(out);
    fsync(fileno(out));
    if (out != stderr)
        fclose(out);

    kmsg("request: poweroff (%s)\n", how);
    if (request(how) < 0) {
        kmsg("request failed: %s\n", strerror(errno));
        return 1;
    }
    return 0;
}
