/* The cgroup filesystem, for both backends: small reads and writes, the pids of a cgroup, the
 * kill loop, making and removing directories, and the names kept for the process's life. */
#include "cgroup/internal.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers -------------------------------------------------------------------------------- */

int cg_err(char *err, size_t errlen, int r, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return r;
}

int cg_write(const char *path, const char *val, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return cg_err(err, errlen, -errno, "%s: %s", path, strerror(errno));
    size_t n = strlen(val);
    ssize_t w = write(fd, val, n);
    int e = w < 0 ? errno : 0;
    close(fd);
    if (w < 0)
        return cg_err(err, errlen, -e, "%s: writing '%s': %s", path, val, strerror(e));
    if ((size_t)w != n)
        return cg_err(err, errlen, -EIO, "%s: short write of '%s'", path, val);
    return 0;
}

int cg_read(const char *path, char *buf, size_t len)
{
    if (len)
        buf[0] = '\0';                  /* a string on every path, failures included */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t got = 0;
    while (got + 1 < len) {
        ssize_t n = read(fd, buf + got, len - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            return -e;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    return 0;
}

int cg_read_i64(const char *path, int64_t *v)
{
    char buf[64];
    int r = cg_read(path, buf, sizeof buf);
    if (r < 0)
        return r;
    if (!strncmp(buf, "max", 3)) {
        *v = INT64_MAX;
        return 0;
    }
    char *end;
    errno = 0;
    long long x = strtoll(buf, &end, 10);
    if (end == buf || errno)
        return -EINVAL;
    *v = x;
    return 0;
}

int cg_read_key(const char *path, const char *key, int64_t *v)
{
    char buf[4096];
    int r = cg_read(path, buf, sizeof buf);
    if (r < 0)
        return r;
    size_t kl = strlen(key);
    for (char *line = buf; line && *line; ) {
        char *nl = strchr(line, '\n');
        if (!strncmp(line, key, kl) && line[kl] == ' ') {
            *v = strtoll(line + kl + 1, NULL, 10);
            return 0;
        }
        line = nl ? nl + 1 : NULL;
    }
    return -ENOENT;
}

int cg_read_pids(const char *procs_path, pid_t **pids, size_t *n)
{
    *pids = NULL;
    *n = 0;
    int fd = open(procs_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    /* cgroup.procs can be long: read it whole into a growing buffer. */
    size_t cap = 4096, got = 0;
    char *buf = malloc(cap);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    for (;;) {
        if (got + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                close(fd);
                return -ENOMEM;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + got, cap - 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            free(buf);
            close(fd);
            return -e;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    buf[got] = '\0';
    size_t count = 0;                   /* lines, a last one without '\n' included */
    for (size_t i = 0; i < got; i++)
        count += buf[i] == '\n';
    if (got && buf[got - 1] != '\n')
        count++;
    pid_t *out = count ? calloc(count + 1, sizeof *out) : NULL;
    if (count && !out) {
        free(buf);
        return -ENOMEM;
    }
    size_t k = 0;
    for (char *p = buf; *p && k < count; ) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p)
            break;
        if (v > 0)
            out[k++] = (pid_t)v;
        p = end;
        while (*p == '\n' || *p == ' ')
            p++;
    }
    free(buf);
    *pids = out;
    *n = k;
    return 0;
}

int64_t cg_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void cg_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

int cg_kill_loop(const char *procs_path, int wait_ms, char *err, size_t errlen)
{
    int64_t deadline = cg_now_ms() + wait_ms;
    for (int round = 0;; round++) {
        pid_t *pids;
        size_t n;
        int r = cg_read_pids(procs_path, &pids, &n);
        if (r == -ENOENT)
            return 0;
        if (r < 0)
            return cg_err(err, errlen, r, "%s: %s", procs_path, strerror(-r));
        for (size_t i = 0; i < n; i++)
            kill(pids[i], SIGKILL);
        free(pids);
        if (n == 0)
            return 0;
        if (cg_now_ms() >= deadline)
            return cg_err(err, errlen, -EBUSY, "%s: %zu process(es) still there after %d ms "
                          "of SIGKILL", procs_path, n, wait_ms);
        /* Killed processes leave cgroup.procs as they exit: poll fast, then slower. */
        cg_sleep_ms(round < 20 ? 1 : 5);
    }
}

int cg_kill_remove_tree(const char *dir, int wait_ms, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : cg_err(err, errlen, -errno, "%s: %s", dir, strerror(errno));
    int ret = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_type != DT_DIR || e->d_name[0] == '.')
            continue;
        char sub[PATH_MAX];
        if (snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name) >= (int)sizeof sub)
            continue;
        int r = cg_kill_remove_tree(sub, wait_ms, err, errlen);
        if (r < 0 && !ret)
            ret = r;
    }
    closedir(d);
    if (ret < 0)
        return ret;
    char procs[PATH_MAX];
    snprintf(procs, sizeof procs, "%s/cgroup.procs", dir);
    int r = cg_kill_loop(procs, wait_ms, err, errlen);
    if (r < 0)
        return r;
    int64_t deadline = cg_now_ms() + wait_ms;
    while (rmdir(dir) < 0) {
        if (errno == ENOENT)
            return 0;
        if (errno != EBUSY || cg_now_ms() >= deadline)
            return cg_err(err, errlen, -errno, "%s: rmdir: %s", dir, strerror(errno));
        cg_sleep_ms(1);
    }
    return 0;
}

int cg_make_dir(const char *dir, bool *created, char *err, size_t errlen)
{
    *created = false;
    if (mkdir(dir, 0755) == 0) {
        *created = true;
        return 0;
    }
    if (errno == EEXIST)
        return 0;
    return cg_err(err, errlen, -errno, "%s: mkdir: %s", dir, strerror(errno));
}

int cg_make_root_level(struct cr_cg_root *r, const char *base, size_t end, bool *created, char *dir,
                       size_t dirlen, char *err, size_t errlen)
{
    bool made = false;
    if (created)
        *created = false;
    if (snprintf(dir, dirlen, "%s/%.*s", base, (int)end, r->root) >= (int)dirlen)
        return cg_err(err, errlen, -ENAMETOOLONG, "%s/%s: path too long", base, r->root);
    int rc = cg_make_dir(dir, &made, err, errlen);
    if (made && end < r->made_from)
        r->made_from = end;
    if (created)
        *created = made;
    return rc;
}

bool cg_run_leaf_alive(const char *name)
{
    const char *dash = strrchr(name, '-');
    if (!dash || !dash[1])
        return false;
    char *end;
    long pid = strtol(dash + 1, &end, 10);
    if (*end || pid <= 0)
        return false;
    return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

const char *cg_intern(const char *s)
{
    static char **tab;
    static size_t n, cap;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(tab[i], s))
            return tab[i];
    if (n == cap) {
        size_t ncap = cap ? 2 * cap : 8;
        char **t = realloc(tab, ncap * sizeof *t);
        if (!t)
            return NULL;
        tab = t;
        cap = ncap;
    }
    char *c = strdup(s);
    if (c)
        tab[n++] = c;
    return c;
}

int cg_dir(const struct cg_hier *h, const char *root, const char *leaf, char *buf, size_t len)
{
    const char *part[3] = {h->dir, root, leaf};
    size_t at = 0;
    for (int i = 0; i < 3 && part[i]; i++) {
        size_t n = strlen(part[i]);
        if (at + (i > 0) + n + 1 > len)
            return -ENAMETOOLONG;
        if (i > 0)
            buf[at++] = '/';
        memcpy(buf + at, part[i], n);
        at += n;
    }
    buf[at] = '\0';
    return 0;
}
