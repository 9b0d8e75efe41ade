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
 * once it stops. A file that cannot be opened is retried at most once a second. */
#ifndef CORRAL_LOGS_H
#define CORRAL_LOGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cr_out_stream;

enum cr_log_stream { CR_LOG_STDOUT = 1, CR_LOG_STDERR = 2 };

/* One open log file, shared by every stream writing to its path (a registry in logs.c). */
struct cr_logfile {
    struct cr_logfile *next;
    int refs;
    char *path;
    char *who;                   /* the first service that opened it, for messages */
    int fd;                      /* -1: could not be opened (retried) */
    bool regular;                /* a regular file: rotated (a FIFO or a terminal is not) */
    uint64_t size;               /* bytes in the current file */
    int64_t maxbytes;            /* 0: never rotate */
    int64_t backups;
    int err;                     /* errno of the failure we are dropping lines for; 0: none */
    uint64_t dropped;            /* lines dropped since err was set */
    uint64_t dropped_total;
    uint64_t retry_ms;           /* CLOCK_MONOTONIC ms of the next open attempt */
};

/* The directory of AUTO files ([supervisor] log_dir); copied. Call before cr_logs_attach(). */
int cr_logs_set_dir(const char *dir);
/* (Re)applies one stream's log keys: opens, switches or closes its file (spec: AUTO, NONE or a
 * path; AUTO is <log_dir>/<who>.<kind>.log), takes new maxbytes, backups and timestamps.
 * Called when a service is created and on reload (the log keys apply live). Never fails: a
 * file it cannot open is retried, and said so (as who's). */
void cr_logs_attach(struct cr_out_stream *s, const char *who, const char *spec,
                    const char *kind, int64_t maxbytes, int64_t backups, bool stamps);
/* Rotates every open, non-empty log file now. Returns how many were rotated. */
int cr_logs_rotate_all(void);
/* The supervisor's own log ([supervisor] logfile): AUTO is <log_dir>/supervisor.log (call
 * cr_logs_set_dir() first), a path is used as it is, NONE or NULL closes it. The file is one
 * of the registry's, so it rotates by size like a service's and with cr_logs_rotate_all().
 * Calling it again applies new maxbytes/backups (or switches files). */
void cr_logs_own_open(const char *spec, int64_t maxbytes, int64_t backups);
/* Appends one of cr_log's lines (msg[n-1] == '\n'), prefixed with an RFC 3339 timestamp.
 * Never blocks for long (a write to a regular file), never fails: a line the file cannot take
 * is dropped and counted. Does nothing when no own log is open, or from within itself (a
 * message about the file's own troubles goes to stderr only). */
void cr_logs_own_write(const char *msg, size_t n);
/* The last n lines of the file at path (and of path.1 when path has fewer), oldest first, in
 * *out (malloc'ed, *len bytes, NUL-terminated). Returns 0 or a negative errno. */
int cr_logs_tail(const char *path, size_t n, char **out, size_t *len);

/* For output.c: */
/* Takes a reference to the file at path, opening it (O_APPEND) when nobody has it open. */
struct cr_logfile *cr_logfile_get(const char *path, const char *who, int64_t maxbytes,
                                  int64_t backups);
void cr_logfile_release(struct cr_logfile *f);
/* Appends n bytes of whole lines (p[n-1] == '\n'), rotating between lines as needed.
 * Returns how many lines were dropped (0 unless a write failed). */
uint64_t cr_logfile_write(struct cr_logfile *f, const char *p, size_t n);
/* Rotates now (even when empty). Returns 0 or a negative errno. */
int cr_logfile_rotate(struct cr_logfile *f);
/* Writes the time as "2024-05-01T12:34:56.123456+02:00 " into buf (CR_LOG_STAMP_MAX bytes);
 * returns its length. */
#define CR_LOG_STAMP_MAX 40
size_t cr_log_stamp(char *buf);

#endif
