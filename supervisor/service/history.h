/* Crash history: per service, a bounded ring of its last exits, and a small ring of the last
 * lines it wrote (fed by the output streams), copied into each exit record.
 *
 * Exits come from two places: init's `exited` events (the workload ended; init may restart
 * it inside the same container) and the container's end (init itself died, was killed, or
 * the setup failed) when no workload exit was reported for it. Memory use is bounded:
 * CR_HIST_EXITS records of at most CR_HIST_LINES lines of at most CR_HIST_LINE_MAX bytes.
 * Every function accepts a NULL history (allocation failed) and then does nothing. */
#ifndef CORRAL_HISTORY_H
#define CORRAL_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>

struct cr_svc;

#define CR_HIST_EXITS 10
#define CR_HIST_LINES 20
#define CR_HIST_LINE_MAX 512

struct cr_exit {
    int64_t when_ms;             /* wall clock (CLOCK_REALTIME) of the exit */
    uint64_t mono_ms;            /* CLOCK_MONOTONIC of the exit */
    int64_t runtime_ms;          /* how long it ran; -1 unknown */
    int code;                    /* exit code, or -1 */
    int sig;                     /* killing signal, or 0 */
    bool oom;                    /* an OOM kill happened in its cgroup */
    bool container;              /* init/the container ended, not a reported workload exit */
    bool stopped;                /* after a stop request */
    bool setup_failed;
    int64_t mem_peak;            /* bytes; -1 unknown */
    char *reason;                /* setup failure text, or NULL */
    char *lines;                 /* its last output lines, '\n'-separated, or NULL */
};

/* Someone following the service's output (svctl logs -f). line NULL: the service is gone. */
struct cr_hist_listener {
    void (*fn)(void *arg, const char *line, size_t len);
    void *arg;
    struct cr_hist_listener *next;
};

struct cr_hist {
    struct cr_exit *exits;       /* CR_HIST_EXITS, allocated at the first exit (most services
                                    of a large set never exit) */
    size_t nexits;               /* total recorded (the ring holds the last CR_HIST_EXITS) */
    char *lines[CR_HIST_LINES];  /* ring of output lines */
    size_t nlines;               /* total seen */
    size_t lines_mark;           /* nlines when the last exit was recorded */
    uint64_t restarts;           /* workload or container restarts, in the supervisor's life */
    uint64_t oom_kills;          /* OOM kills seen in its cgroups, summed over containers */
    char *reason;                /* last setup failure */
    struct cr_hist_listener *listeners;
};

struct cr_hist *cr_hist_new(void);
/* Tells every listener the service is gone (line NULL), then frees. */
void cr_hist_free(struct cr_hist *h);

uint64_t cr_hist_now_mono(void);

/* The output tap (struct cr_out_stream.tap): one line of the service's output. */
void cr_hist_line(void *svc, const char *line, size_t len);
/* init said `exited` (of the workload the service's struct cr_workload says is up): code
 * (or -1), signal name (or NULL), runtime_ms (or NULL); the cgroup's memory peak in bytes
 * (-1 unknown). */
void cr_hist_exited(struct cr_svc *svc, const char *code, const char *sig, const char *runtime,
                    int64_t mem_peak);
/* A restart is scheduled (init's or the supervisor's): counted. */
void cr_hist_restart(struct cr_svc *svc);
void cr_hist_setup_failed(struct cr_svc *svc, const char *reason);
/* init is gone (wait_code: CLD_EXITED or not; wait_status: the code or signal; mem_peak:
 * its cgroup's, read before the cgroup is removed, -1 unknown). */
void cr_hist_container_exit(struct cr_svc *svc, int64_t mem_peak, int wait_code, int wait_status,
                            uint64_t ran_ms, bool oom);

/* The ring in order, oldest first: n records at *first (through cr_hist_at). */
size_t cr_hist_count(const struct cr_hist *h);
const struct cr_exit *cr_hist_at(const struct cr_hist *h, size_t i);   /* 0: oldest kept */
const struct cr_exit *cr_hist_last(const struct cr_hist *h);
/* "exit 1", "signal KILL", "signal KILL (OOM)", "setup failed" */
void cr_exit_describe(const struct cr_exit *e, char *buf, size_t len);
/* The one-line crash-loop explanation ("5 exits in 30 s, last: exit 1 after 0.4 s, next try in
 * 16 s"), when the service exited at least twice within window_ms; else buf = "". next_ms < 0:
 * no retry pending. */
void cr_hist_summary(const struct cr_hist *h, int64_t window_ms, int64_t next_ms, char *buf,
                     size_t len);
/* The last n output lines, oldest first, through fn. */
void cr_hist_tail(const struct cr_hist *h, size_t n, void (*fn)(void *arg, const char *line),
                  void *arg);

/* Live re-exec: the counters, the last setup failure and the exit records (each one's output
 * lines cut to their last CR_HIST_STATE_LINES bytes) as " key=value" fields of a service's
 * state line (service/state_line.h), appended to o (full set when they did not fit). The
 * ring of recent output lines is not carried (the next exit's lines start after the re-exec).
 * cr_hist_take() reads them back into an empty history; a line without them leaves it so. */
#define CR_HIST_STATE_LINES 384
#define CR_HIST_STATE_MAX (CR_HIST_EXITS * (4 * CR_HIST_STATE_LINES + 200) + 1024)
struct cr_sl_out;
struct cr_sl_in;
void cr_hist_put(const struct cr_hist *h, struct cr_sl_out *o);
void cr_hist_take(struct cr_hist *h, struct cr_sl_in *in);

int cr_hist_listen(struct cr_hist *h, struct cr_hist_listener *l);
void cr_hist_unlisten(struct cr_hist *h, struct cr_hist_listener *l);

#endif
