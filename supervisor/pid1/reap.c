/* Orphans: every process whose parent dies is handed to PID 1, which must collect it (pid1.h).
 *
 * The supervisor's own children — the containers' inits — are held by pidfds and collected by
 * service/ through them (waitid P_PIDFD); a waitpid(-1) here would steal their exit status.
 * So only zombies no pidfd of ours names are collected: the children come from
 * /proc/self/task/T/children, the pids we hold from /proc/self/fdinfo (a pidfd's "Pid:" line),
 * read only when some child is a zombie. */
#include "pid1/pid1.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"

static ssize_t read_small(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, len - 1);
    close(fd);
    if (n >= 0)
        buf[n] = 0;
    return n;
}

/* A zombie: the state after the command's closing parenthesis in /proc/PID/stat. */
static bool is_zombie(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if (read_small(path, buf, sizeof buf) <= 0)
        return false;
    const char *p = strrchr(buf, ')');
    return p && p[1] == ' ' && p[2] == 'Z';
}

struct pids {
    pid_t *v;
    size_t n, cap;
};

static int pids_add(struct pids *s, pid_t p)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        pid_t *v = realloc(s->v, cap * sizeof *v);
        if (!v)
            return -1;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = p;
    return 0;
}

static bool pids_has(const struct pids *s, pid_t p)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i] == p)
            return true;
    return false;
}

/* Our children, from every thread's children file (a child belongs to the thread that made
 * it; orphans come to the thread group). */
static int children(struct pids *out)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return -1;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[300];
        snprintf(path, sizeof path, "/proc/self/task/%s/children", e->d_name);
        FILE *f = fopen(path, "re");
        if (!f)
            continue;
        int p;
        while (fscanf(f, "%d", &p) == 1)
            pids_add(out, p);
        fclose(f);
    }
    closedir(d);
    return 0;
}

/* The pids our pidfds name. */
static void held(struct pids *out)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], link[64];
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(path, link, sizeof link - 1);
        if (n <= 0)
            continue;
        link[n] = 0;
        if (strcmp(link, "anon_inode:[pidfd]"))
            continue;
        char info[512];
        snprintf(path, sizeof path, "/proc/self/fdinfo/%s", e->d_name);
        if (read_small(path, info, sizeof info) <= 0)
            continue;
        const char *p = strstr(info, "\nPid:");
        if (p)
            pids_add(out, (pid_t)atoi(p + 5));
    }
    closedir(d);
}

int cr_pid1_reap_orphans(void)
{
    struct pids kids = {0}, mine = {0};
    int n = 0;
    if (children(&kids) < 0) {
        free(kids.v);
        return 0;
    }
    bool looked = false;
    for (size_t i = 0; i < kids.n; i++) {
        pid_t p = kids.v[i];
        if (!is_zombie(p))
            continue;
        if (!looked) {
            held(&mine);
            looked = true;
        }
        if (pids_has(&mine, p))
            continue;
        if (waitpid(p, NULL, WNOHANG | __WALL) == p)
            n++;
    }
    free(kids.v);
    free(mine.v);
    return n;
}
