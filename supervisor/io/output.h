/* Workload output → log files (logs.h) and the supervisor's own stdout, one `NAME | line` per
 * line (in colour on a terminal).
 *
 * Each service has a stdout pipe and a stderr pipe (or one, with redirect_stderr) whose read
 * ends the supervisor holds for the service's whole life, so a restart loses nothing. Reads
 * are large (CR_OUT_CHUNK) from a pipe enlarged to CR_OUT_PIPE_SIZE; each chunk's whole lines
 * go to the log file in one write (stamped with log_timestamps) and to the console queue, so
 * nothing costs a syscall or an allocation per line. A partial line waits for its end in the
 * stream; one longer than CR_OUT_PART_MAX is cut there, and the rest of a line is flushed
 * when the container exits. Files receive whole lines only, so two streams (or services)
 * sharing a file never split each other's lines.
 *
 * The supervisor never blocks on its console: writes are non-blocking, a bounded queue
 * absorbs bursts, and when that is full whole lines are dropped and counted (reported once
 * the console drains). A console that is /dev/null costs nothing. The workload therefore
 * never waits for the supervisor beyond the pipe's own buffer, and never gets SIGPIPE: the
 * read ends stay open. */
#ifndef CORRAL_OUTPUT_H
#define CORRAL_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "io/watch.h"

#include "io/logs.h"   /* struct cr_logfile, struct cr_log_waiter */

#define CR_OUT_LINE_MAX 4096                 /* console lines are cut at this length */
#define CR_OUT_PART_MAX (16 * 1024)          /* log lines are cut at this length */
#define CR_OUT_CHUNK (256 * 1024)            /* one read */
#define CR_OUT_PIPE_SIZE (1024 * 1024)       /* asked for with F_SETPIPE_SZ */
#define CR_CONSOLE_QUEUE (256 * 1024)

/* The supervisor's stdout, and the scratch buffers every stream shares (one loop, one
 * thread: a stream uses them only within one callback). */
struct cr_console {
    uv_loop_t *loop;
    int fd;                      /* non-blocking where the kind of file allows it; -1: none */
    bool is_socket;              /* written with send(MSG_DONTWAIT) */
    bool pollable;               /* pipe, tty, socket: wait for POLLOUT when full */
    bool polling;
    bool color;                  /* a terminal, and NO_COLOR unset */
    uv_poll_t poll;
    bool poll_init;
    char *q;                     /* bytes not yet written */
    size_t qlen;
    uint64_t dropped, dropped_reported;
    char *rbuf;                  /* a partial line + one read: CR_OUT_PART_MAX + CR_OUT_CHUNK */
    char *sbuf;                  /* stamped lines for a file: see output.c */
};

int cr_console_open(struct cr_console *c, uv_loop_t *loop, int fd);
/* Queues "name | text\n" (text without its newline; cut into CR_OUT_LINE_MAX pieces), or
 * drops it and counts. Written by cr_console_flush() (or when the queue fills). */
void cr_console_line(struct cr_console *c, const char *name, const char *text, size_t len);
/* Queues text and a newline as they are (no name): a stream whose log file is the
 * supervisor's own stdout or stderr (supervisord's stdout_logfile=/dev/stdout). */
void cr_console_raw(struct cr_console *c, const char *text, size_t len);
/* Writes what is queued, as far as the console takes it without blocking. */
void cr_console_flush(struct cr_console *c);
void cr_console_close(struct cr_console *c);
/* Live re-exec: writes what is queued, waiting up to ms for a console that is full. */
void cr_console_flush_wait(struct cr_console *c, unsigned ms);

/* One pipe from the containers of one service. */
struct cr_out_stream {
    struct cr_console *console;
    const char *name;            /* the prefix; owned by the caller, must outlive the stream */
    int rfd, wfd;                /* rfd non-blocking; wfd is what the container gets */
    uv_loop_t *loop;
    struct cr_watch watch;       /* rfd's (io/watch.h) */
    bool poll_init;
    struct cr_logfile *file;     /* NULL: not logged to a file (logs.c attaches it) */
    struct cr_console *direct;   /* set: each line goes there as it is, once, instead of to a
                                    file and the NAME | console (stdout_logfile=/dev/stdout) */
    bool timestamps;             /* prefix each logged line with its RFC 3339 time */
    uint64_t log_dropped;        /* lines earlier files could not take: cr_out_log_dropped() */
    uint64_t file_dropped0;      /* file->dropped_total when it was attached */
    struct cr_log_waiter waiter; /* the pipe is not read until the file's queue drains */
    bool waiting;
    size_t len;                  /* bytes in part */
    char *part;                  /* the start of a line whose end has not come yet: malloc'd
                                    (CR_OUT_PART_MAX) while there is one, NULL otherwise, so
                                    an idle service costs no 16 KiB per stream */
    /* Also sees the output (the crash history's ring, `svctl logs -f`): called with whole
     * lines, many at once, each ending in '\n' (a cut or final partial line may lack it).
     * Set after cr_out_open(); NULL: none. */
    void (*tap)(void *arg, const char *lines, size_t len);
    void *tap_arg;
    /* Sees every byte as it is read, before lines are made of them (an event listener's
     * protocol: its tokens need not end in '\n'); the lines then go to the file only, not
     * to the console (as supervisord keeps a listener's stdout out of its own output). Set
     * after cr_out_open(); NULL: none. */
    void (*raw)(void *arg, const char *data, size_t len);
    void *raw_arg;
};

/* Keeps buf's len bytes (the start of a line whose end has not come yet) in *slot, a
 * cap-byte buffer malloc'd only while it holds something (len 0 frees it). False when there
 * was no memory to keep them. */
bool cr_keep_partial(char **slot, size_t cap, const char *buf, size_t len);

/* Stops waiting for the log file (it is being switched or closed) and reads again. */
void cr_out_unwait(struct cr_out_stream *s);
/* Lines this stream's log files could not take (a full disk, a stalled one), all told. */
uint64_t cr_out_log_dropped(const struct cr_out_stream *s);
/* (Re)applies one stream's log keys: opens, switches or closes its file (spec: AUTO, NONE or a
 * path: cr_logs_path()), takes new maxbytes, backups and timestamps. Called when a service is
 * created and on reload (the log keys apply live). Never fails: a file it cannot open is
 * retried, and said so (as who's). */
void cr_out_attach_log(struct cr_out_stream *s, const char *who, const char *spec,
                       const char *kind, int64_t maxbytes, int64_t backups, bool stamps);
/* Creates the pipe and starts reading it. Returns 0 or a negative errno. */
int cr_out_open(struct cr_out_stream *s, uv_loop_t *loop, struct cr_console *c,
                const char *name);
/* Live re-exec: the same, with the pipe (rfd, wfd) an earlier supervisor made and passed on;
 * on failure the fds are left to the caller. */
int cr_out_adopt(struct cr_out_stream *s, uv_loop_t *loop, struct cr_console *c,
                 const char *name, int rfd, int wfd);
/* Live re-exec: the start of a line whose end has not come yet (read from the pipe, so kept
 * by the caller across the execve), and the adopting side's way to take it back (n below
 * CR_OUT_PART_MAX; 0 or -ENOMEM). What is still in the pipe stays there for the next reader. */
size_t cr_out_partial(const struct cr_out_stream *s, const char **p);
int cr_out_set_partial(struct cr_out_stream *s, const char *p, size_t n);
/* Reads what is in the pipe now, then writes a partial line if one is buffered (a container
 * exited: its last line may have no newline). */
void cr_out_drain(struct cr_out_stream *s);
/* Closes both ends and lets go of its log file; the uv handle is closed asynchronously
 * (done(arg) once it is). */
void cr_out_close(struct cr_out_stream *s, void (*done)(void *arg), void *arg);

#endif
