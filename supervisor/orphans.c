/* Orphans: as PID 1 (a container's, or the machine's in appliance mode), or as a subreaper
 * without cgroups (none.c), processes the services' inits leave behind, and as the machine's
 * PID 1 every orphan of the machine, are re-parented to the supervisor. This file is the one
 * reaper while services run (pid1/power.c collects with waitpid(-1) only on the way down,
 * once no container is held any more). Each SIGCHLD, every
 * child that is not a running container's init is reaped (never waitpid(-1): an init is
 * waited for through its pidfd by service/container.c, which needs its status). Without
 * cgroups such a child is what a container killed with SIGKILL left (init, its subreaper,
 * could not clean up): it is killed first, so nothing a service started outlives its stop.
 * Re-parenting sends no signal: sv_orphans_sweep() runs when a container is gone too. */
#include "orphans.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon_int.h"
#include "log.h"

static uv_signal_t chld;
static struct sv *owner;
static bool kill_orphans;

static bool is_init(struct sv *sv, pid_t pid)
{
    for (size_t i = 0; i < sv->all.n; i++) {
        struct cr_svc_view v;
        cr_svc_view(sv->all.v[i], &v);
        if (v.pid == pid)
            return true;
    }
    return false;
}

/* Our children, from /proc/self/task/TID/children (every thread's: a child belongs to the
 * thread that made it). */
static void reap_orphans(struct sv *sv)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[64];
        snprintf(path, sizeof path, "/proc/self/task/%.20s/children", e->d_name);
        FILE *f = fopen(path, "re");
        if (!f)
            continue;
        long pid;
        while (fscanf(f, "%ld", &pid) == 1) {   /* any number of them: an orphan storm */
            int st;
            if (pid <= 0 || is_init(sv, (pid_t)pid) || sv_reexec_child(sv, (pid_t)pid))
                continue;
            if (kill_orphans && waitpid((pid_t)pid, &st, WNOHANG | __WALL) == 0) {
                kill((pid_t)pid, SIGKILL);   /* its own children come to us in turn */
                cr_log(NULL, "killed pid %ld, left by a container that is gone", pid);
            }
            waitpid((pid_t)pid, &st, WNOHANG | __WALL);
        }
        fclose(f);
    }
    closedir(d);
}

static void on_sigchld(uv_signal_t *h, int signum)
{
    (void)h;
    (void)signum;
    if (owner)
        reap_orphans(owner);
}

bool sv_orphans_start(struct sv *sv, bool subreaper, bool resuming)
{
    if (getpid() != 1) {
        if (!subreaper || prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
            return false;
    }
    if (uv_signal_init(sv->rt.loop, &chld) < 0)
        return false;
    owner = sv;
    kill_orphans = subreaper;
    if (uv_signal_start(&chld, on_sigchld, SIGCHLD) < 0) {
        uv_close((uv_handle_t *)&chld, NULL);
        owner = NULL;
        return false;
    }
    uv_unref((uv_handle_t *)&chld);   /* it never keeps the loop alive by itself */
    if (!resuming)
        reap_orphans(sv);
    return true;
}

void sv_orphans_sweep(void)
{
    if (owner)
        reap_orphans(owner);
}

void sv_orphans_stop(void)
{
    if (!owner)
        return;
    owner = NULL;
    uv_close((uv_handle_t *)&chld, NULL);
}
