/* Service logs: files per stream, size rotation, disk-full tolerance, the tail for svctl. */
#include "io/logs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <search.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* Every open log file, so streams naming the same path share it and SIGUSR2 finds them; and
 * the same files in a tree by path (tsearch), so that finding one is not a scan of all (a
 * start of 1,000 services opens 2,000). */
static struct cr_logfile *files;
static void *by_path;
static char *log_dir;

static int path_order(const void *a, const void *b)
{
    return strcmp(((const struct cr_logfile *)a)->path, ((const struct cr_logfile *)b)->path);
}

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

/* What happened to a file while it was written, said by the loop afterwards (a writer
 * thread never logs: cr_log belongs to the loop). */
static void note(struct cr_logfile *f, enum cr_log_note kind, int err, uint64_t n)
{
    if (f->nnotes < CR_LOG_NOTES)
        f->notes[f->nnotes++] = (struct cr_log_noted){kind, err, n};
}

static void say_notes(struct cr_logfile *f)
{
    for (int i = 0; i < f->nnotes; i++) {
        const struct cr_log_noted *x = &f->notes[i];
        switch (x->kind) {
        case CR_NOTE_DROPPING:
            cr_log(f->who, "log %s: %s: dropping lines until it can be written", f->path,
                   strerror(x->err));
            break;
        case CR_NOTE_RESUMED:
            cr_log(f->who, "log %s: writing again; %llu line%s dropped", f->path,
                   (unsigned long long)x->n, x->n == 1 ? "" : "s");
            break;
        case CR_NOTE_NO_OPEN:
            cr_log(f->who, "log %s: cannot open: %s; retrying every second", f->path,
                   strerror(x->err));
            break;
        case CR_NOTE_NO_ROTATE:
            cr_log(f->who, "log %s: cannot rotate: %s", f->path, strerror(x->err));
            break;
        }
    }
    f->nnotes = 0;
}

/* Lines p[0..n) are lost: count them, and say so when this starts a run of losses. */
static uint64_t drop(struct cr_logfile *f, const char *p, size_t n, int err)
{
    uint64_t k = count_lines(p, n);
    if (!f->err) {
        f->err = err ? err : EIO;
        note(f, CR_NOTE_DROPPING, f->err, 0);
    }
    f->dropped += k;
    return k;
}

static void resumed(struct cr_logfile *f)
{
    note(f, CR_NOTE_RESUMED, 0, f->dropped);
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
            note(f, CR_NOTE_NO_OPEN, e, 0);
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

/* ---- writing (a writer thread's side, or the caller's without a loop) ---------------------- */

/* Rotates now (even when empty). Returns 0 or a negative errno. */
static int rotate_now(struct cr_logfile *f)
{
    if (f->fd >= 0 && !f->regular)
        return 0;   /* a FIFO, a terminal, /dev/stdout: nothing to rotate */
    if (f->jbackups <= 0) {
        if (f->fd >= 0 && ftruncate(f->fd, 0) < 0)
            return -errno;
        f->size = 0;
        return 0;
    }
    size_t n = strlen(f->path);
    if (n + 24 > PATH_MAX)
        return -ENAMETOOLONG;
    char from[PATH_MAX], to[PATH_MAX];
    for (int64_t i = f->jbackups - 1; i >= 1; i--) {
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

/* Appends n bytes of whole lines, rotating between lines as needed (by f->jmax and
 * f->jbackups). Returns how many lines were dropped. Touches only the file and its notes: no
 * allocation, no cr_log, so a writer thread can run it. */
static uint64_t file_write(struct cr_logfile *f, const char *p, size_t n)
{
    uint64_t dropped = 0;
    while (n) {
        if (f->fd < 0 && (mono_ms() < f->retry_ms || open_file(f) < 0))
            return dropped + drop(f, p, n, f->err);
        size_t take = n;
        uint64_t max = f->jmax > 0 ? (uint64_t)f->jmax : 0;
        if (max && f->regular && f->size + n > max) {
            /* Up to the last whole line that fits; rotate when not even one does. */
            uint64_t room = f->size < max ? max - f->size : 0;
            const char *nl = room ? memrchr(p, '\n', room < n ? room : n) : NULL;
            if (nl) {
                take = (size_t)(nl - p) + 1;
            } else if (f->size > 0) {
                int r = rotate_now(f);
                if (r < 0) {
                    note(f, CR_NOTE_NO_ROTATE, -r, 0);
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

/* One hand-over: rotate first when asked, then write the queue taken at hand-over. */
static void run_job(struct cr_logfile *f)
{
    f->jrotated = false;
    if (f->jrotate && !(f->fd >= 0 && f->regular && f->size == 0)) {
        int r = rotate_now(f);
        if (r < 0)
            note(f, CR_NOTE_NO_ROTATE, -r, 0);
        f->jrotated = r == 0;
    }
    if (f->jlen)
        f->jdropped = file_write(f, f->jbuf, f->jlen);
    else if (f->fd < 0 && mono_ms() >= f->retry_ms)
        open_file(f);   /* a new file: open it now, as the caller would have */
}

/* ---- writer threads -------------------------------------------------------------------------- */

/* With a loop (cr_logs_set_loop), the loop only appends to a file's queue; a writer thread
 * takes the whole queue when nobody is writing that file, and hands the file back through an
 * async handle. A file is written by one thread at a time, in order; a file whose disk stalls
 * holds one thread while the others go on, and threads are made as needed, up to
 * WRITERS_MAX. Without a loop (start-up, exit, unit tests) files are written by the caller. */
#define WRITERS_MAX 8
#define FILE_QUEUE_MAX (4u << 20)       /* bytes waiting for one file */
#define ALL_QUEUES_MAX (64u << 20)      /* bytes waiting or being written, all files */
#define WRITER_STACK (256u << 10)
#define FILE_QUEUE_HIGH (1u << 20)      /* readers wait past this */
#define REUSE_MIN (64u << 10)         /* a hand-over this big keeps its buffer for the next */
#define STALL_MS 2000                   /* a write stuck this long: readers read (and drop) */

/* A tail read (cr_logs_tail_async), done by a writer thread. */
struct tail_job {
    struct tail_job *next;
    char *path;
    size_t n;
    int err;
    char *text;
    size_t len;
    cr_logs_tail_fn fn;
    void *arg;
};

static struct {
    uv_loop_t *loop;
    uv_async_t async;
    uv_timer_t deadline;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_cond_t done_cv;                 /* a job was done: cr_logs_quiesce() waits on it */
    struct cr_logfile *todo, **todo_tail;   /* handed over, waiting for a thread (mu) */
    struct cr_logfile *done;                /* written, waiting for the loop (mu) */
    struct tail_job *tails, **tails_tail;   /* tail reads waiting for a thread (mu) */
    struct tail_job *tails_done;            /* read, waiting for the loop (mu) */
    int ntodo, threads, idle;               /* (mu) */
    bool abandoned;                         /* (mu) at exit, past the deadline */
    bool held;                              /* (mu) cr_logs_hold(): no thread woken */
    bool retire;                            /* (mu) cr_logs_retire(): idle threads end */
    int busy;                               /* files handed over (loop) */
    int waiting;                            /* files with waiters (loop) */
    uv_timer_t tick;                        /* while waiting: looks for stalled writes */
    size_t queued;                          /* bytes queued or being written (loop) */
} wr = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER,
        .done_cv = PTHREAD_COND_INITIALIZER, .todo_tail = &wr.todo, .tails_tail = &wr.tails};

static void *writer(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&wr.mu);
    for (;;) {
        while (!wr.todo && !wr.tails) {
            if (wr.retire) {
                wr.threads--;
                pthread_mutex_unlock(&wr.mu);
                return NULL;
            }
            wr.idle++;
            pthread_cond_wait(&wr.cv, &wr.mu);
            wr.idle--;
        }
        if (wr.tails) {
            struct tail_job *t = wr.tails;
            if (!(wr.tails = t->next))
                wr.tails_tail = &wr.tails;
            wr.ntodo--;
            pthread_mutex_unlock(&wr.mu);
            t->err = cr_logs_tail(t->path, t->n, &t->text, &t->len);
            pthread_mutex_lock(&wr.mu);
            if (wr.abandoned)
                continue;   /* the loop is gone */
            t->next = wr.tails_done;
            wr.tails_done = t;
            uv_async_send(&wr.async);
            continue;
        }
        struct cr_logfile *f = wr.todo;
        wr.todo = f->jnext;
        if (!wr.todo)
            wr.todo_tail = &wr.todo;
        wr.ntodo--;
        pthread_mutex_unlock(&wr.mu);
        run_job(f);
        pthread_mutex_lock(&wr.mu);
        if (wr.abandoned)
            continue;   /* the loop is gone: the file is left as it is */
        f->jnext = wr.done;
        wr.done = f;
        uv_async_send(&wr.async);
        pthread_cond_broadcast(&wr.done_cv);
    }
    return NULL;
}

/* The writer threads made and not joined yet (mu): joinable, so that a re-exec knows when
 * every one is gone from the kernel too (cr_logs_alone). */
static pthread_t writer_tid[WRITERS_MAX];
static bool writer_made[WRITERS_MAX];

/* Called with mu held: joins the writers that have ended; how many are left. */
static int join_ended(void)
{
    int left = 0;
    for (int i = 0; i < WRITERS_MAX; i++) {
        if (!writer_made[i])
            continue;
        if (pthread_tryjoin_np(writer_tid[i], NULL) == 0)
            writer_made[i] = false;
        else
            left++;
    }
    return left;
}

/* Called with mu held. Signals stay with the loop's thread. */
static int spawn_writer(void)
{
    int slot = 0;
    join_ended();   /* ones a failed re-exec retired */
    while (slot < WRITERS_MAX && writer_made[slot])
        slot++;
    pthread_attr_t a;
    sigset_t all, old;
    if (slot == WRITERS_MAX || pthread_attr_init(&a))
        return -1;
    pthread_attr_setstacksize(&a, WRITER_STACK);
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int r = pthread_create(&writer_tid[slot], &a, writer, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&a);
    if (r)
        return -1;
    writer_made[slot] = true;
    wr.threads++;
    return 0;
}

/* Called with mu held, a job just queued: a thread for it if every one is busy (the first
 * is made here too, so a `supervisor run` whose output goes nowhere but its terminal makes
 * none). False when no thread is there to take it: the caller does the job itself. */
static bool writer_for_job(void)
{
    if (wr.retire)
        return false;     /* the caller writes until the execve */
    if (wr.ntodo > wr.idle && wr.threads < WRITERS_MAX)
        spawn_writer();   /* failing that, the threads there are take it in turn */
    return wr.threads > 0;
}

/* After a job done by the loop for want of a thread, mu released: said once. */
static void say_no_writer(void)
{
    static bool said;
    if (!said && !wr.retire) {
        said = true;
        cr_log(NULL, "log files: no writer thread; writing them from the loop");
    }
}

/* No writer thread at all: the queued file jobs are written here, on the loop, and handed
 * back as a thread would hand them. mu released. */
static void run_here(void)
{
    for (;;) {
        pthread_mutex_lock(&wr.mu);
        struct cr_logfile *f = wr.todo;
        if (f) {
            wr.todo = f->jnext;
            if (!wr.todo)
                wr.todo_tail = &wr.todo;
            wr.ntodo--;
        }
        pthread_mutex_unlock(&wr.mu);
        if (!f)
            break;
        run_job(f);
        pthread_mutex_lock(&wr.mu);
        f->jnext = wr.done;
        wr.done = f;
        pthread_mutex_unlock(&wr.mu);
    }
    uv_async_send(&wr.async);
    say_no_writer();
}

/* ---- rotation batches: one cr_logs_rotate_all() call, done when each of its files is ---- */

struct rot_batch {
    int pending, n;
    cr_logs_rotated_fn fn;
    void *arg;
};

struct cr_log_rot_ref {
    struct rot_batch *b;
    struct cr_log_rot_ref *next;
};

static void batch_done(struct rot_batch *b)
{
    if (--b->pending > 0)
        return;
    cr_log(NULL, "rotated %d log file%s", b->n, b->n == 1 ? "" : "s");
    if (b->fn)
        b->fn(b->arg, b->n);
    free(b);
}

/* The rotations f's finished hand-over did (or did not: an empty file is left alone). */
static void rotations_done(struct cr_logfile *f)
{
    struct cr_log_rot_ref *r = f->rot_job;
    f->rot_job = NULL;
    while (r) {
        struct cr_log_rot_ref *next = r->next;
        r->b->n += f->jrotated;
        batch_done(r->b);
        free(r);
        r = next;
    }
    f->jrotated = false;
}

/* Hands f's queue (and any rotation asked) to a writer. Only an idle file is handed over: a
 * busy one takes its next lines when its job is done (job_done). */
static void submit(struct cr_logfile *f)
{
    if (f->busy)
        return;
    f->jbuf = f->q;
    f->jlen = f->qlen;
    f->jcap = f->qcap;
    f->q = NULL;
    f->qlen = f->qcap = 0;
    f->jrotate = f->rotate_req;
    f->rotate_req = false;
    f->rot_job = f->rot_req;   /* job_done() found rot_job empty */
    f->rot_req = NULL;
    f->jmax = f->maxbytes;
    f->jbackups = f->backups;
    f->jnonempty = f->fd < 0 || f->size > 0;   /* the thread owns both from here */
    f->jstart_ms = mono_ms();
    f->busy = true;
    wr.busy++;
    pthread_mutex_lock(&wr.mu);
    f->jnext = NULL;
    *wr.todo_tail = f;
    wr.todo_tail = &f->jnext;
    wr.ntodo++;
    if (wr.held) {
        pthread_mutex_unlock(&wr.mu);
        return;
    }
    if (!writer_for_job()) {
        pthread_mutex_unlock(&wr.mu);
        run_here();
        return;
    }
    pthread_cond_signal(&wr.cv);
    pthread_mutex_unlock(&wr.mu);
}

void cr_logs_hold(bool hold)
{
    if (!wr.loop)
        return;
    pthread_mutex_lock(&wr.mu);
    wr.held = hold;
    while (!hold && wr.ntodo > wr.idle && wr.threads < WRITERS_MAX && spawn_writer() == 0)
        ;
    if (!hold)
        pthread_cond_broadcast(&wr.cv);
    bool stranded = !hold && wr.threads == 0 && wr.todo;
    pthread_mutex_unlock(&wr.mu);
    if (stranded)
        run_here();
}

static void file_free(struct cr_logfile *f)
{
    tdelete(f, &by_path, path_order);
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
    free(f->q);
    free(f->path);
    free(f->who);
    free(f);
}

static void wake_all(struct cr_logfile *f)
{
    struct cr_log_waiter *w = f->waiters;
    if (!w)
        return;
    f->waiters = NULL;
    if (--wr.waiting == 0)
        uv_timer_stop(&wr.tick);
    while (w) {
        struct cr_log_waiter *next = w->next;
        w->next = NULL;
        w->wake(w);
        w = next;
    }
}

static bool stalled(const struct cr_logfile *f)
{
    return f->busy && mono_ms() - f->jstart_ms >= STALL_MS;
}

bool cr_logfile_congested(const struct cr_logfile *f)
{
    return wr.loop && f->qlen >= FILE_QUEUE_HIGH && !stalled(f);
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
    for (struct cr_logfile *f = files; f; f = f->next)
        if (f->waiters && stalled(f))
            wake_all(f);   /* the rest is dropped and counted by cr_logfile_write() */
}

void cr_logfile_wait(struct cr_logfile *f, struct cr_log_waiter *w)
{
    if (!f->waiters && wr.waiting++ == 0)
        uv_timer_start(&wr.tick, on_tick, STALL_MS / 4, STALL_MS / 4);
    w->next = f->waiters;
    f->waiters = w;
}

void cr_logfile_unwait(struct cr_logfile *f, struct cr_log_waiter *w)
{
    for (struct cr_log_waiter **pp = &f->waiters; *pp; pp = &(*pp)->next) {
        if (*pp == w) {
            *pp = w->next;
            w->next = NULL;
            if (!f->waiters && --wr.waiting == 0)
                uv_timer_stop(&wr.tick);
            return;
        }
    }
}

/* f's job is done. f stays busy until the end: a line said here about it (it may be the
 * supervisor's own log) is queued, not handed over, so that no writer touches f's job fields
 * (notes, jrotated) while they are read, and f is handed over once, with all of it. */
static void job_done(struct cr_logfile *f)
{
    wr.queued -= f->jlen;
    if (!f->q && f->jlen >= REUSE_MIN) {
        /* A busy stream: its buffer takes the next lines (no allocation, no page faults) */
        f->q = f->jbuf;
        f->qcap = f->jcap;
    } else {
        free(f->jbuf);   /* a quiet one keeps no memory */
    }
    f->jbuf = NULL;
    f->jlen = f->jcap = 0;
    f->dropped_total += f->jdropped;
    f->jdropped = 0;
    say_notes(f);
    rotations_done(f);
    if (f->qdropped && !f->qlen) {
        /* drained after drops: said now, not only when a next line comes (there may be none) */
        cr_log(f->who, "log %s: writing again; %llu line%s dropped", f->path,
               (unsigned long long)f->qdropped, f->qdropped == 1 ? "" : "s");
        f->qdropped = 0;
    }
    f->busy = false;
    wr.busy--;
    if (f->qlen || f->rotate_req)
        submit(f);   /* takes the whole queue: its readers may read again */
    wake_all(f);
    if (!f->busy && f->refs == 0)
        file_free(f);
}

static void take_done(void)
{
    pthread_mutex_lock(&wr.mu);
    struct cr_logfile *f = wr.done;
    wr.done = NULL;
    struct tail_job *t = wr.tails_done;
    wr.tails_done = NULL;
    pthread_mutex_unlock(&wr.mu);
    while (t) {
        struct tail_job *next = t->next;
        t->fn(t->arg, t->err, t->text, t->len);
        free(t->path);
        free(t);
        t = next;
    }
    while (f) {
        struct cr_logfile *next = f->jnext;
        job_done(f);
        f = next;
    }
}

static void on_written(uv_async_t *h)
{
    (void)h;
    take_done();
    if (wr.busy == 0 && uv_is_active((uv_handle_t *)&wr.deadline)) {
        uv_timer_stop(&wr.deadline);   /* cr_logs_finish(): everything is written */
        uv_unref((uv_handle_t *)&wr.async);
    }
}

int cr_logs_set_loop(uv_loop_t *loop)
{
    if (wr.loop || uv_async_init(loop, &wr.async, on_written) < 0)
        return wr.loop ? 0 : -1;
    uv_timer_init(loop, &wr.deadline);
    uv_timer_init(loop, &wr.tick);
    uv_unref((uv_handle_t *)&wr.tick);
    /* Neither keeps the loop alive: the loop ends when the services are done, and
     * cr_logs_finish() waits for what is still being written. */
    uv_unref((uv_handle_t *)&wr.async);
    uv_unref((uv_handle_t *)&wr.deadline);
    /* The first writer thread is made with the first job (writer_for_job). */
    wr.loop = loop;
    return 0;
}

static void on_deadline(uv_timer_t *t)
{
    (void)t;
    pthread_mutex_lock(&wr.mu);
    wr.abandoned = true;
    pthread_mutex_unlock(&wr.mu);
    for (struct cr_logfile *f = files; f; f = f->next)
        if (f->busy)
            cr_log(f->who, "log %s: still not written at exit: %zu bytes lost", f->path,
                   f->jlen + f->qlen);
    uv_unref((uv_handle_t *)&wr.async);
}

void cr_logs_finish(unsigned deadline_ms)
{
    if (!wr.loop)
        return;
    if (wr.busy) {
        uv_ref((uv_handle_t *)&wr.async);
        uv_timer_start(&wr.deadline, on_deadline, deadline_ms, 0);
        uv_run(wr.loop, UV_RUN_DEFAULT);
    }
    uv_timer_stop(&wr.deadline);
    uv_close((uv_handle_t *)&wr.async, NULL);
    uv_close((uv_handle_t *)&wr.deadline, NULL);
    uv_close((uv_handle_t *)&wr.tick, NULL);
    uv_run(wr.loop, UV_RUN_NOWAIT);
    wr.loop = NULL;
    /* From here on the caller writes; a file a thread still holds takes nothing more. */
}

int cr_logs_quiesce(unsigned deadline_ms, char *why, size_t whylen)
{
    if (!wr.loop)
        return 0;   /* written inline: nothing is queued */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);   /* pthread_cond_timedwait's clock */
    until.tv_sec += deadline_ms / 1000;
    until.tv_nsec += (long)(deadline_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    for (;;) {
        take_done();   /* a file done with more queued is handed over again (job_done) */
        if (wr.busy == 0)
            return 0;
        pthread_mutex_lock(&wr.mu);
        int r = wr.done ? 0 : pthread_cond_timedwait(&wr.done_cv, &wr.mu, &until);
        pthread_mutex_unlock(&wr.mu);
        if (r == ETIMEDOUT) {
            take_done();
            if (wr.busy == 0)
                return 0;
            for (struct cr_logfile *f = files; f; f = f->next)
                if (f->busy) {
                    snprintf(why, whylen, "log %s: %zu bytes not written after %u ms", f->path,
                             f->jlen + f->qlen, deadline_ms);
                    break;
                }
            return -ETIMEDOUT;
        }
    }
}

void cr_logs_retire(bool retire)
{
    pthread_mutex_lock(&wr.mu);
    wr.retire = retire;
    if (retire)
        pthread_cond_broadcast(&wr.cv);
    pthread_mutex_unlock(&wr.mu);
}

bool cr_logs_alone(void)
{
    pthread_mutex_lock(&wr.mu);
    bool alone = wr.threads == 0 && join_ended() == 0;
    pthread_mutex_unlock(&wr.mu);
    return alone;
}

/* ---- the loop's side ----------------------------------------------------------------------- */

struct cr_logfile *cr_logfile_get(const char *path, const char *who, int64_t maxbytes,
                                  int64_t backups)
{
    struct cr_logfile key = {.path = (char *)path};
    void *hit = tfind(&key, &by_path, path_order);
    if (hit) {
        struct cr_logfile *f = *(struct cr_logfile **)hit;
        f->refs++;   /* also one being closed whose last lines are still written */
        f->maxbytes = maxbytes;
        f->backups = backups;
        return f;
    }
    struct cr_logfile *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->path = strdup(path);
    f->who = strdup(who);
    if (!f->path || !f->who || !tsearch(f, &by_path, path_order)) {
        free(f->path);
        free(f->who);
        free(f);
        return NULL;
    }
    f->refs = 1;
    f->fd = -1;
    f->maxbytes = maxbytes;
    f->backups = backups;
    f->next = files;
    files = f;
    if (wr.loop) {
        submit(f);   /* a writer opens it: opening may stall as much as writing */
    } else {
        open_file(f);
        say_notes(f);
    }
    return f;
}

void cr_logfile_release(struct cr_logfile *f)
{
    if (!f || --f->refs > 0)
        return;
    if (!f->busy)
        file_free(f);
    /* else job_done() frees it once its last lines are written */
}

static bool queue_room(struct cr_logfile *f, size_t n)
{
    if (f->qlen + n > FILE_QUEUE_MAX || wr.queued + n > ALL_QUEUES_MAX)
        return false;
    if (f->qlen + n <= f->qcap)
        return true;
    size_t cap = f->qcap ? f->qcap : 65536;
    while (cap < f->qlen + n)
        cap *= 2;
    char *q = realloc(f->q, cap);
    if (!q)
        return false;
    f->q = q;
    f->qcap = cap;
    return true;
}

void cr_logfile_write(struct cr_logfile *f, const char *p, size_t n)
{
    if (!n)
        return;
    if (!wr.loop) {
        if (f->busy) {   /* a thread abandoned at exit still holds it */
            f->dropped_total += count_lines(p, n);
            return;
        }
        f->jmax = f->maxbytes;
        f->jbackups = f->backups;
        f->dropped_total += file_write(f, p, n);
        say_notes(f);
        return;
    }
    if (!queue_room(f, n)) {
        uint64_t k = count_lines(p, n);
        if (!f->qdropped)
            cr_log(f->who, "log %s: writes are not keeping up: dropping lines until they do",
                   f->path);
        f->qdropped += k;
        f->dropped_total += k;
        return;
    }
    if (f->qdropped) {
        cr_log(f->who, "log %s: writing again; %llu line%s dropped", f->path,
               (unsigned long long)f->qdropped, f->qdropped == 1 ? "" : "s");
        f->qdropped = 0;
    }
    memcpy(f->q + f->qlen, p, n);
    f->qlen += n;
    wr.queued += n;
    if (!f->busy)
        submit(f);
}

int cr_logs_rotate_all(cr_logs_rotated_fn done, void *arg)
{
    struct rot_batch *b = calloc(1, sizeof *b);
    if (!b) {
        cr_log(NULL, "rotating log files: out of memory");
        if (done)
            done(arg, 0);
        return 0;
    }
    b->fn = done;
    b->arg = arg;
    b->pending = 1;   /* this call's own, so that it cannot end before every file is asked */
    int asked = 0;
    for (struct cr_logfile *f = files; f; f = f->next) {
        if (f->refs == 0)
            continue;   /* being closed */
        if (!wr.loop) {
            if (f->busy || (f->fd >= 0 && f->regular && f->size == 0))
                continue;   /* abandoned by a thread at exit; or empty */
            f->jbackups = f->backups;
            int r = rotate_now(f);
            say_notes(f);
            if (r < 0)
                cr_log(f->who, "log %s: cannot rotate: %s", f->path, strerror(-r));
            else
                b->n++;
            asked++;
            continue;
        }
        /* A busy one is rotated before its next lines (queued now) unless it is empty; an
         * idle empty one is left alone; the rest go to a writer now. */
        if (f->busy ? !(f->jlen || f->qlen || f->jnonempty)
                    : f->fd >= 0 && f->regular && f->size == 0)
            continue;
        struct cr_log_rot_ref *r = malloc(sizeof *r);
        if (!r) {
            cr_log(f->who, "log %s: cannot rotate: out of memory", f->path);
            continue;
        }
        r->b = b;
        r->next = f->rot_req;
        f->rot_req = r;
        f->rotate_req = true;
        b->pending++;
        asked++;
        if (!f->busy)
            submit(f);
    }
    batch_done(b);
    return asked;
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

char *cr_logs_path(const char *who, const char *spec, const char *kind)
{
    char *path = NULL;
    if (!spec || !strcmp(spec, "NONE"))
        return NULL;
    if (strcmp(spec, "AUTO"))
        path = strdup(spec);
    else if (log_dir) {
        /* "DIR/WHO.KIND.log", for every service at each start and re-exec: no printf */
        size_t d = strlen(log_dir), w = strlen(who), k = strlen(kind);
        if ((path = malloc(d + w + k + 7))) {
            memcpy(path, log_dir, d);
            path[d] = '/';
            memcpy(path + d + 1, who, w);
            path[d + 1 + w] = '.';
            memcpy(path + d + 2 + w, kind, k);
            memcpy(path + d + 2 + w + k, ".log", 5);
        }
    }
    if (!path)
        cr_log(who, "%s log: %s", kind,
               strcmp(spec, "AUTO") || log_dir ? "out of memory" : "no log_dir");
    return path;
}

/* ---- tail ----------------------------------------------------------------------------------- */

#define TAIL_MAX_BYTES (64u << 20)

/* The last n lines of path, put before the *len bytes *out holds; *got: how many. */
static int tail_one(const char *path, size_t n, char **out, size_t *len, size_t *got)
{
    *got = 0;
    /* O_NONBLOCK: a FIFO as a log file must not hold the loop until a writer comes */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return -EINVAL;
    }
    off_t end = st.st_size, pos = end, start = 0;
    size_t nls = 0;
    enum { BLK = 65536 };
    char *blk = malloc(BLK);   /* not on a writer thread's small stack */
    if (!blk) {
        close(fd);
        return -ENOMEM;
    }
    bool found = false;
    while (pos > 0 && !found && end - pos < (off_t)TAIL_MAX_BYTES) {
        size_t k = pos > (off_t)BLK ? BLK : (size_t)pos;
        pos -= (off_t)k;
        if (pread(fd, blk, k, pos) != (ssize_t)k) {
            free(blk);
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
    free(blk);
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

int cr_logs_tail_async(const char *path, size_t n, cr_logs_tail_fn fn, void *arg)
{
    if (!wr.loop) {
        char *text;
        size_t len;
        int r = cr_logs_tail(path, n, &text, &len);
        fn(arg, r, text, r < 0 ? 0 : len);
        return 0;
    }
    struct tail_job *t = calloc(1, sizeof *t);
    if (!t || !(t->path = strdup(path))) {
        free(t);
        return -ENOMEM;
    }
    t->n = n;
    t->fn = fn;
    t->arg = arg;
    pthread_mutex_lock(&wr.mu);
    *wr.tails_tail = t;
    wr.tails_tail = &t->next;
    wr.ntodo++;
    if (!writer_for_job()) {
        /* No thread at all (so t is the only tail queued): read here, answered at once as
         * without a loop. */
        wr.tails = NULL;
        wr.tails_tail = &wr.tails;
        wr.ntodo--;
        pthread_mutex_unlock(&wr.mu);
        char *text;
        size_t len;
        int r = cr_logs_tail(path, n, &text, &len);
        free(t->path);
        free(t);
        say_no_writer();
        fn(arg, r, text, r < 0 ? 0 : len);
        return 0;
    }
    pthread_cond_signal(&wr.cv);
    pthread_mutex_unlock(&wr.mu);
    return 0;
}
