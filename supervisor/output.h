/* Workload output → the supervisor's own stdout, one `NAME | line` per line.
 *
 * Each service has a stdout pipe and a stderr pipe (or one, with redirect_stderr) whose read
 * ends the supervisor holds for the service's whole life, so a restart loses nothing. Lines
 * are assembled per stream; a partial line is flushed at CR_OUT_LINE_MAX bytes and when the
 * container exits. The supervisor never blocks on its console: writes are non-blocking, a
 * bounded queue absorbs bursts, and when that is full whole lines are dropped and counted
 * (reported once the console drains). The workload therefore never waits for a slow console
 * beyond the pipe's own buffer, and never gets SIGPIPE: the read ends stay open. */
#ifndef CORRAL_OUTPUT_H
#define CORRAL_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define CR_OUT_LINE_MAX 4096
#define CR_CONSOLE_QUEUE (256 * 1024)

/* The supervisor's stdout. */
struct cr_console {
    uv_loop_t *loop;
    int fd;                      /* non-blocking where the kind of file allows it */
    bool is_socket;              /* written with send(MSG_DONTWAIT) */
    bool pollable;               /* pipe, tty, socket: wait for POLLOUT when full */
    bool polling;
    uv_poll_t poll;
    bool poll_init;
    char *q;                     /* bytes not yet written */
    size_t qlen;
    uint64_t dropped, dropped_reported;
};

int cr_console_open(struct cr_console *c, uv_loop_t *loop, int fd);
/* Writes "name | text\n" (text without its newline), or drops it and counts. */
void cr_console_line(struct cr_console *c, const char *name, const char *text, size_t len);
/* Tries once more to write what is queued (without blocking). */
void cr_console_flush(struct cr_console *c);
void cr_console_close(struct cr_console *c);

/* One pipe from the containers of one service. */
struct cr_out_stream {
    struct cr_console *console;
    const char *name;            /* the prefix; owned by the caller, must outlive the stream */
    int rfd, wfd;                /* rfd non-blocking; wfd is what the container gets */
    uv_poll_t poll;
    bool poll_init;
    char buf[CR_OUT_LINE_MAX];
    size_t len;
};

/* Creates the pipe and starts reading it. Returns 0 or a negative errno. */
int cr_out_open(struct cr_out_stream *s, uv_loop_t *loop, struct cr_console *c,
                const char *name);
/* Reads what is in the pipe now, then writes a partial line if one is buffered (a container
 * exited: its last line may have no newline). */
void cr_out_drain(struct cr_out_stream *s);
/* Closes both ends; the uv handle is closed asynchronously (done(arg) once it is). */
void cr_out_close(struct cr_out_stream *s, void (*done)(void *arg), void *arg);

#endif
