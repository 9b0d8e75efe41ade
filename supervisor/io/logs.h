/* Service logs: every service's stdout and stderr in files, rotated by size.
 *
 * stdout_logfile / stderr_logfile: AUTO is <log_dir>/<name>.out.log and <name>.err.log, a
 * path is used as it is, NONE logs nowhere (the console still shows the lines). With
 * redirect_stderr both streams share the stdout pipe and its file. Streams that name the same
 * path share one open file, and since files only ever receive whole lines, no line is split
 * by another writer.
 *
 * Rotation follows supervisord: when the next lines would take name.log past maxbytes, name.log
 * becomes name.log.1, .1 becomes .2 ... up to .backups (the oldest is dropped), and a new
 * name.log starts; with backups = 0 the file is truncated instead; maxbytes = 0 never rotates.
 * A file grows past maxbytes only by a single line longer than maxbytes. SIGUSR2 to the
 * supervisor (or cr_logs_rotate_all()) rotates every non-empty file at once.
 *
 * A failed write (ENOSPC, EDQUOT, EIO...) must not hurt the service: the file is cut back to
 * its last whole line, the chunk's lines are dropped and counted (per stream, see
 * cr_logs_dropped()), and every later chunk tries again, so writing resumes by itself when
 * space returns; the supervisor's log says when dropping starts and how many lines were lost
 * once it stops. A file that cannot be opened is retried at most once a second.
 *
 * Files are opened, written and rotated by size on writer threads (cr_logs_set_loop), never
 * on the loop: a log on a disk that stalls (a hung NFS or FUSE mount, a FIFO nobody reads)
 * holds one thread, never the supervisor nor the other services' logs. Each file has a
 * bounded queue. Past 1 MiB its readers stop reading their pipes until it drains, so a
 * workload faster than the disk waits, as a program writing to a file would, and loses
 * nothing; but once a write has been stuck for 2 s they read on, and what the queue cannot
 * take (past 4 MiB, or 64 MiB for all files together) is dropped and counted as for a full
 * disk. */
#ifndef CORRAL_LOGS_H
#define CORRAL_LOGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* A reader that stopped reading its pipe until a log file's queue drains (cr_logfile_wait):
 * output.c's streams. */
struct cr_log_waiter {
    struct cr_log_waiter *next;
    void (*wake)(struct cr_log_waiter *w);
};

enum cr_log_note { CR_NOTE_DROPPING = 1, CR_NOTE_RESUMED, CR_NOTE_NO_OPEN, CR_NOTE_NO_ROTATE };
struct cr_log_noted {
    enum cr_log_note kind;
    int err;
    uint64_t n;
};
#define CR_LOG_NOTES 8

enum cr_log_stream { CR_LOG_STDOUT = 1, CR_LOG_STDERR = 2 };

/* One open log file, shared by every stream writing to its path (a registry in logs.c).
 * While busy, a writer thread owns the fields from fd to the notes (and jbuf); the loop
 * touches only the queue and the fields above fd. */
struct cr_logfile {
    struct cr_logfile *next;
    int refs;                    /* 0: closed, freed once its last lines are written */
    char *path;
    char *who;                   /* the first service that opened it, for messages */
    int64_t maxbytes;            /* 0: never rotate */
    int64_t backups;
    uint64_t dropped_total;      /* every line lost: full disk, full queue */
    char *q;                     /* lines waiting for the writer: qlen of qcap bytes */
    size_t qlen, qcap;
    uint64_t qdropped;           /* lines lost to a full queue since it last took some */
    bool busy;                   /* handed to a writer thread */
    bool rotate_req;             /* rotate before the queued lines */
    bool jnonempty;              /* at hand-over: not open, or not empty */
    uint64_t jstart_ms;          /* when the thread got it (CLOCK_MONOTONIC) */
    struct cr_log_waiter *waiters;
    struct cr_log_rot_ref *rot_req;   /* rotations asked for, done at the next hand-over */
    struct cr_log_rot_ref *rot_job;   /* rotations the hand-over in progress does */
    struct cr_logfile *jnext;    /* in the writers' lists */
    /* the hand-over: what to write and how (set by the loop before, read back after) */
    char *jbuf;
    size_t jlen, jcap;
    bool jrotate, jrotated;
    int64_t jmax, jbackups;
    uint64_t jdropped;
    /* the writer's side */
    int fd;                      /* -1: could not be opened (retried) */
    bool regular;                /* a regular file: rotated (a FIFO or a terminal is not) */
    uint64_t size;               /* bytes in the current file */
    int err;                     /* errno of the failure we are dropping lines for; 0: none */
    uint64_t dropped;            /* lines dropped since err was set */
    uint64_t retry_ms;           /* CLOCK_MONOTONIC ms of the next open attempt */
    struct cr_log_noted notes[CR_LOG_NOTES];   /* said by the loop once the thread is done */
    int nnotes;
};

/* From now on files are written by writer threads, their results taken on loop; the first
 * thread is made with the first write or tail (none when nothing is ever logged to a file).
 * Without it (or, job by job, when no thread can be made: said once) writes happen in the
 * caller. Returns 0, or -1 when the loop's handles could not be made. */
int cr_logs_set_loop(uv_loop_t *loop);
/* After the loop's last run: waits (running the loop) up to deadline_ms for what the threads
 * still write, says which files could not be written in time, and goes back to writing in
 * the caller. Then the loop can be closed. */
void cr_logs_finish(unsigned deadline_ms);
/* Live re-exec: writes everything queued for every file now, on the writer threads, waiting
 * for them (without running the loop) up to deadline_ms, so that nothing queued is lost with
 * the threads at the execve. 0, or -ETIMEDOUT with why set (a file whose disk stalls: its
 * lines are still queued and go on being written). */
int cr_logs_quiesce(unsigned deadline_ms, char *why, size_t whylen);
/* Live re-exec: the writer threads end once idle, before the execve rather than in it
 * (which kills and waits for each: on a virtual machine a thread on another CPU can take
 * milliseconds to be woken, all of it in the re-exec's gap); what is queued from here on is
 * written by the caller. cr_logs_retire(false) undoes it (the re-exec did not happen):
 * threads are made again as jobs come. */
void cr_logs_retire(bool retire);
/* True once no writer thread is left, in the kernel too (each joined). */
bool cr_logs_alone(void);

/* Live re-exec: while held, files handed to the writers (opened, written) wait for them
 * without waking or starting one, so that the threads do not take the CPU from the loop's
 * thread while it resumes every service; the release starts what is needed. Nothing is
 * lost or reordered: each file's lines stay in its queue. */
void cr_logs_hold(bool hold);
/* The directory of AUTO files ([supervisor] log_dir); copied. Call before cr_logs_path(). */
int cr_logs_set_dir(const char *dir);
/* The file of a log spec (AUTO, NONE or a path; AUTO is <log_dir>/<who>.<kind>.log), malloc'd;
 * NULL for NONE, or when it cannot be made (said so, as who's). */
char *cr_logs_path(const char *who, const char *spec, const char *kind);
/* Rotates every open, non-empty log file now, each by its writer thread (renames and an open
 * may stall on a slow disk as writes do), before the lines that come after. Once all are
 * done, logs "rotated N log files" and calls done(arg, N) (when given) with how many were
 * rotated, on the loop; without a loop everything happens in the caller, done included.
 * Returns how many files were asked to rotate. */
struct cr_log_rot_ref;
typedef void (*cr_logs_rotated_fn)(void *arg, int n);
int cr_logs_rotate_all(cr_logs_rotated_fn done, void *arg);
/* The supervisor's own log ([supervisor] logfile): AUTO is <log_dir>/supervisor.log (call
 * cr_logs_set_dir() first), a path is used as it is, NONE or NULL closes it. The file is one
 * of the registry's, so it rotates by size like a service's and with cr_logs_rotate_all().
 * Calling it again applies new maxbytes/backups (or switches files). */
void cr_logs_own_open(const char *spec, int64_t maxbytes, int64_t backups);
/* Appends one of cr_log's lines (msg[n-1] == '\n'), prefixed with an RFC 3339 timestamp.
 * Never blocks (queued for a writer thread), never fails: a line the file cannot take is
 * dropped and counted. Does nothing when no own log is open, or from within itself (a
 * message about the file's own troubles goes to stderr only). */
void cr_logs_own_write(const char *msg, size_t n);
/* The last n lines of the file at path (and of path.1 when path has fewer), oldest first, in
 * *out (malloc'ed, *len bytes, NUL-terminated). Returns 0 or a negative errno. Reads the
 * disk, which may stall: call it off the loop (the control socket uses the thread pool).
 * Touches nothing shared, so any thread can. */
int cr_logs_tail(const char *path, size_t n, char **out, size_t *len);
/* cr_logs_tail() on a writer thread: fn(arg, 0 or -errno, text, len) is called on the loop
 * once read (text is fn's to free). A log on a disk that stalls holds that thread, never the
 * loop. Without a loop it reads in the caller and calls fn before returning. Returns 0, or
 * -ENOMEM (fn is not called). */
typedef void (*cr_logs_tail_fn)(void *arg, int err, char *text, size_t len);
int cr_logs_tail_async(const char *path, size_t n, cr_logs_tail_fn fn, void *arg);

/* For output.c: */
/* Takes a reference to the file at path, opening it (O_APPEND) when nobody has it open. */
struct cr_logfile *cr_logfile_get(const char *path, const char *who, int64_t maxbytes,
                                  int64_t backups);
void cr_logfile_release(struct cr_logfile *f);
/* Appends n bytes of whole lines (p[n-1] == '\n'), rotating between lines as needed: queues
 * them for a writer thread, or writes them now without a loop. Lines lost (a full disk, a
 * full queue) are counted in f->dropped_total. */
void cr_logfile_write(struct cr_logfile *f, const char *p, size_t n);
/* True when a reader should stop reading for f: its queue is long and its writer is not
 * stuck. Then cr_logfile_wait() calls w->wake() once the queue drained or the writer stalls. */
bool cr_logfile_congested(const struct cr_logfile *f);
void cr_logfile_wait(struct cr_logfile *f, struct cr_log_waiter *w);
void cr_logfile_unwait(struct cr_logfile *f, struct cr_log_waiter *w);
/* Writes the time as "2024-05-01T12:34:56.123456+02:00 " into buf (CR_LOG_STAMP_MAX bytes);
 * returns its length. */
#define CR_LOG_STAMP_MAX 40
size_t cr_log_stamp(char *buf);

#endif
