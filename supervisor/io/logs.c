/* Service logs: files per stream, size rotation, disk-full tolerance, the tail for svctl. */
#include "io/logs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "io/output.h"

/* Every open log file, so streams naming the same path share it and SIGUSR2 finds them. */
static struct cr_logfile *files;
static char *log_dir;

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int cr_logs_set_dir(const char *dir)
{
    char *d = dir ? strdup(dir) : NULL;
    if (dir && !d)
        return -ENOMEM;
    free(log_dir);
    log_dir = d;
    return 0;
}

/* mkdir -p of path's parent directory. */
static void make_parents(const char *path)
{
    char d[PATH_MAX];
    size_t n = strlen(path);
    if (n >= sizeof d)
        return;
    memcpy(d, path, n + 1);
    for (char *p = d + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        mkdir(d, 0755);
        *p = '/';
    }
}

static size_t count_lines(const char *p, size_t n)
{
    size_t k = 0;
    for (const char *e = p + n; (p = memchr(p, '\n', (size_t)(e - p))); p++)
        k++;
    return k;
}

/* Lines p[0..n) are lost: count them, and say so when this starts a run of losses. */
static uint64_t drop(struct cr_logfile *f, const char *p, size_t n, int err)
{
    uint64_t k = count_lines(p, n);
    if (!f->err) {
        f->err = err ? err : EIO;
        cr_log(f->who, "log %s: %s: dropping lines until it can be written", f->path,
               strerror(f->err));
    }
    f->dropped += k;
    f->dropped_total += k;
    return k;
}

static void resumed(struct cr_logfile *f)
{
    cr_log(f->who, "log %s: writing again; %llu line%s dropped", f->path,
           (unsigned long long)f->dropped, f->dropped == 1 ? "" : "s");
    f->err = 0;
    f->dropped = 0;
}

static int open_file(struct cr_logfile *f)
{
    int fd = open(f->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
    if (fd < 0 && errno == ENOENT) {
        make_parents(f->path);
        fd = open(f->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
    }
    if (fd < 0) {
        int e = errno;
        if (f->err != e)
            cr_log(f->who, "log %s: cannot open: %s; retrying every second", f->path,
                   strerror(e));
        f->err = e;
        f->retry_ms = mono_ms() + 1000;
        return -e;
    }
    struct stat st;
    f->regular = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    f->size = f->regular ? (uint64_t)st.st_size : 0;
    f->fd = fd;
    return 0;
}

struct cr_logfile *cr_logfile_get(const char *path, const char *who, int64_t maxbytes,
                                  int64_t backups)
{
    for (struct cr_logfile *f = files; f; f = f->next) {
        if (!strcmp(f->path, path)) {
            f->refs++;
            f->maxbytes = maxbytes;
            f->backups = backups;
            return f;
        }
    }
    struct cr_logfile *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->path = strdup(path);
    f->who = strdup(who);
    if (!f->path || !f->who) {
        free(f->path);
        free(f->who);
        free(f);
        return NULL;
    }
    f->refs = 1;
    f->fd = -1;
    f->maxbytes = maxbytes;
    f->backups = backups;
    open_file(f);
    f->next = files;
    files = f;
    return f;
}

void cr_logfile_release(struct cr_logfile *f)
{
    if (!f || --f->refs > 0)
        return;
    for (struct cr_logfile **pp = &files; *pp; pp = &(*pp)->next) {
        if (*pp == f) {
            *pp = f->next;
            break;
        }
    }
    if (f->err && f->dropped)
        cr_log(f->who, "log %s: closed; %llu line%s dropped", f->path,
               (unsigned long long)f->dropped, f->dropped == 1 ? "" : "s");
    if (f->fd >= 0)
        close(f->fd);
    free(f->path);
    free(f->who);
    free(f);
}

int cr_logfile_rotate(struct cr_logfile *f)
{
    if (f->fd >= 0 && !f->regular)
        return 0;   /* a FIFO, a terminal, /dev/stdout: nothing to rotate */
    if (f->backups <= 0) {
        if (f->fd >= 0 && ftruncate(f->fd, 0) < 0)
            return -errno;
        f->size = 0;
        return 0;
    }
    size_t n = strlen(f->path);
    if (n + 24 > PATH_MAX)
        return -ENAMETOOLONG;
    char from[PATH_MAX], to[PATH_MAX];
    for (int64_t i = f->backups - 1; i >= 1; i--) {
        snprintf(from, sizeof from, "%s.%lld", f->path, (long long)i);
        snprintf(to, sizeof to, "%s.%lld", f->path, (long long)i + 1);
        rename(from, to);   /* ENOENT: fewer backups so far */
    }
    snprintf(to, sizeof to, "%s.1", f->path);
    if (rename(f->path, to) < 0 && errno != ENOENT)
        return -errno;
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
    f->size = 0;
    open_file(f);
    return 0;
}

/* write() until done or an error; returns the bytes written. */
static size_t write_all(int fd, const char *p, size_t n, int *err)
{
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(fd, p + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            *err = w < 0 ? errno : ENOSPC;
            break;
        }
        off += (size_t)w;
    }
    return off;
}

uint64_t cr_logfile_write(struct cr_logfile *f, const char *p, size_t n)
{
    uint64_t dropped = 0;
    while (n) {
        if (f->fd < 0 && (mono_ms() < f->retry_ms || open_file(f) < 0))
            return dropped + drop(f, p, n, f->err);
        size_t take = n;
        uint64_t max = f->maxbytes > 0 ? (uint64_t)f->maxbytes : 0;
        if (max && f->regular && f->size + n > max) {
            /* Up to the last whole line that fits; rotate when not even one does. */
            uint64_t room = f->size < max ? max - f->size : 0;
            const char *nl = room ? memrchr(p, '\n', room < n ? room : n) : NULL;
            if (nl) {
                take = (size_t)(nl - p) + 1;
            } else if (f->size > 0) {
                int r = cr_logfile_rotate(f);
                if (r < 0) {
                    cr_log(f->who, "log %s: cannot rotate: %s", f->path, strerror(-r));
                    return dropped + drop(f, p, n, -r);
                }
                continue;
            } else {
                take = (size_t)((const char *)memchr(p, '\n', n) - p) + 1;   /* one huge line */
            }
        }
        int err = 0;
        size_t w = write_all(f->fd, p, take, &err);
        if (w < take) {
            /* Disk full (or worse): cut the file back to its last whole line, so what is
             * there stays readable, and lose the rest of this chunk. */
            size_t keep = 0;
            if (w) {
                const char *nl = memrchr(p, '\n', w);
                keep = nl ? (size_t)(nl - p) + 1 : 0;
                if (keep < w && ftruncate(f->fd, (off_t)(f->size + keep)) < 0)
                    keep = w;   /* cannot cut: the partial line stays */
            }
            f->size += keep;
            return dropped + drop(f, p + keep, n - keep, err);
        }
        if (f->err)
            resumed(f);
        f->size += take;
        p += take;
        n -= take;
    }
    return dropped;
}

int cr_logs_rotate_all(void)
{
    int n = 0;
    for (struct cr_logfile *f = files; f; f = f->next) {
        if (f->fd >= 0 && f->regular && f->size == 0)
            continue;
        int r = cr_logfile_rotate(f);
        if (r < 0)
            cr_log(f->who, "log %s: cannot rotate: %s", f->path, strerror(-r));
        else
            n++;
    }
    cr_log(NULL, "rotated %d log file%s", n, n == 1 ? "" : "s");
    return n;
}

size_t cr_log_stamp(char *buf)
{
    /* localtime_r and strftime once a second; a chunk of lines shares one stamp. */
    static time_t sec = (time_t)-1;
    static char base[32], zone[8];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != sec) {
        struct tm tm;
        localtime_r(&ts.tv_sec, &tm);
        strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
        long off = tm.tm_gmtoff;
        if (off == 0)
            snprintf(zone, sizeof zone, "Z");
        else
            snprintf(zone, sizeof zone, "%c%02ld:%02ld", off < 0 ? '-' : '+',
                     labs(off) / 3600 % 100, labs(off) / 60 % 60);
        sec = ts.tv_sec;
    }
    int n = snprintf(buf, CR_LOG_STAMP_MAX, "%s.%06ld%s ", base, ts.tv_nsec / 1000, zone);
    return n > 0 && n < CR_LOG_STAMP_MAX ? (size_t)n : 0;
}

/* ---- the supervisor's own log --------------------------------------------------------------- */

static struct cr_logfile *own;
static bool own_busy;   /* cr_logfile_write() may cr_log() about its file: no recursion */

void cr_logs_own_open(const char *spec, int64_t maxbytes, int64_t backups)
{
    char *path = NULL;
    if (spec && strcmp(spec, "NONE")) {
        if (strcmp(spec, "AUTO"))
            path = strdup(spec);
        else if (log_dir && asprintf(&path, "%s/supervisor.log", log_dir) < 0)
            path = NULL;
        if (!path)
            cr_log(NULL, "logfile %s: %s", spec,
                   strcmp(spec, "AUTO") || log_dir ? "out of memory" : "no log_dir");
    }
    if (own && path && !strcmp(own->path, path)) {
        own->maxbytes = maxbytes;
        own->backups = backups;
        free(path);
        return;
    }
    struct cr_logfile *old = own;
    own = NULL;
    cr_logfile_release(old);
    if (path)
        own = cr_logfile_get(path, "logfile", maxbytes, backups);
    free(path);
}

void cr_logs_own_write(const char *msg, size_t n)
{
    if (!own || own_busy || !n)
        return;
    char buf[CR_LOG_STAMP_MAX + 2048];
    size_t k = cr_log_stamp(buf);
    if (n > sizeof buf - k)
        n = sizeof buf - k;
    memcpy(buf + k, msg, n);
    buf[k + n - 1] = '\n';   /* whole lines only, even when cut */
    own_busy = true;
    cr_logfile_write(own, buf, k + n);
    own_busy = false;
}

/* ---- per stream ----------------------------------------------------------------------------- */

void cr_logs_attach(struct cr_out_stream *s, const char *who, const char *spec,
                    const char *kind, int64_t maxbytes, int64_t backups, bool stamps)
{
    char *path = NULL;
    if (spec && strcmp(spec, "NONE")) {
        if (strcmp(spec, "AUTO"))
            path = strdup(spec);
        else if (log_dir && asprintf(&path, "%s/%s.%s.log", log_dir, who, kind) < 0)
            path = NULL;
        if (!path)
            cr_log(who, "%s log: %s", kind,
                   strcmp(spec, "AUTO") || log_dir ? "out of memory" : "no log_dir");
    }
    s->timestamps = stamps;
    if (s->file && path && !strcmp(s->file->path, path)) {
        s->file->maxbytes = maxbytes;
        s->file->backups = backups;
        free(path);
        return;
    }
    cr_logfile_release(s->file);
    s->file = path ? cr_logfile_get(path, who, maxbytes, backups) : NULL;
    free(path);
}

/* ---- tail ----------------------------------------------------------------------------------- */

#define TAIL_MAX_BYTES (64u << 20)

/* The last n lines of path, put before the *len bytes *out holds; *got: how many. */
static int tail_one(const char *path, size_t n, char **out, size_t *len, size_t *got)
{
    *got = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return -EINVAL;
    }
    off_t end = st.st_size, pos = end, start = 0;
    size_t nls = 0;
    char blk[65536];
    bool found = false;
    while (pos > 0 && !found && end - pos < (off_t)TAIL_MAX_BYTES) {
        size_t k = pos > (off_t)sizeof blk ? sizeof blk : (size_t)pos;
        pos -= (off_t)k;
        if (pread(fd, blk, k, pos) != (ssize_t)k) {
            close(fd);
            return -EIO;
        }
        for (size_t i = k; i-- > 0;) {
            if (blk[i] != '\n' || pos + (off_t)i == end - 1)
                continue;   /* the file's last newline ends a line, it does not start one */
            if (++nls == n) {
                start = pos + (off_t)i + 1;
                found = true;
                break;
            }
        }
    }
    if (!found)
        start = pos;
    size_t add = (size_t)(end - start);
    char *buf = malloc(add + *len + 2);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    if (pread(fd, buf, add, start) != (ssize_t)add) {
        free(buf);
        close(fd);
        return -EIO;
    }
    close(fd);
    if (add && buf[add - 1] != '\n' && *len)
        buf[add++] = '\n';   /* an older file's unfinished line */
    if (*len)
        memcpy(buf + add, *out, *len);
    free(*out);
    *out = buf;
    *len += add;
    buf[*len] = 0;
    *got = found ? n : nls + (end > 0);
    return 0;
}

int cr_logs_tail(const char *path, size_t n, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (n == 0) {
        *out = calloc(1, 1);
        return *out ? 0 : -ENOMEM;
    }
    size_t got = 0;
    int r = tail_one(path, n, out, len, &got);
    if (r < 0 && r != -ENOENT)
        return r;
    if (got < n) {
        char older[PATH_MAX];
        if (snprintf(older, sizeof older, "%s.1", path) < (int)sizeof older) {
            size_t more;
            int r1 = tail_one(older, n - got, out, len, &more);
            if (r1 < 0 && r1 != -ENOENT)
                return r1;
            if (r < 0 && r1 < 0)
                return r;
        }
    }
    if (!*out && !(*out = calloc(1, 1)))
        return -ENOMEM;
    return 0;
}
