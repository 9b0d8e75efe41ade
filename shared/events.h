/* The events line protocol: init → supervisor (or any reader of --events-fd).
 *
 * One event per line, at most CR_EVENT_MAX bytes including the newline:
 *
 *     <event> key=value key=value ... [reason=free text to the end of the line]
 *
 * Values contain no spaces, except `reason`, which is always last and runs to the end of
 * the line. Keys a reader does not know must be ignored (new keys may be added; the event
 * names and the keys below are version 1 and will not change meaning).
 *
 *   started     pid=PID                       the workload was exec'd (pid as init sees it)
 *   exited      pid=PID code=N runtime_ms=MS  it exited with status N
 *   exited      pid=PID signal=NAME runtime_ms=MS [core=1]   it was killed by a signal
 *   restarting  delay_ms=MS attempt=N         init will start it again after MS
 *   gave-up     code=N restarts=N             restart limit reached; init exits with code N
 *   ready       kind=KIND                     the workload is ready, as its spec's [readiness]
 *                                             kind (notify, fd:N, exec, tcp:PORT) detected;
 *                                             again after each start (never for kind none)
 *   ready-timeout timeout_ms=MS kind=KIND     not ready in time: init stops it (stop signal,
 *                                             then KILL after the grace) as a failed start
 *   status      pid=PID reason=TEXT           STATUS=TEXT sent on the notify socket
 *   healthy                                   a health check passed (the first, or the first
 *                                             after the workload was unhealthy)
 *   unhealthy   failures=N action=ACTION reason=TEXT
 *                                             N checks failed in a row (the last one's reason:
 *                                             "exit 1: <its last output line>", "timed out
 *                                             after MS ms"); ACTION (restart, stop, none) follows
 *   setup-failed reason=TEXT                  the container (or the exec) could not be set up
 *   exec-failed  errno=N reason=TEXT          the command could not be executed
 *
 * init never blocks on the events fd: it is made non-blocking, and a line that does not fit
 * in the pipe is dropped. */
#ifndef CORRAL_EVENTS_H
#define CORRAL_EVENTS_H

#include <stddef.h>

#define CR_EVENT_MAX 512
#define CR_EVENTS_VERSION 1

/* The events, in the order of the list above; their names and keys are cr_event_defs[],
 * the one place both ends take them from (events.c). */
enum cr_event_kind {
    CR_EVT_STARTED, CR_EVT_EXITED, CR_EVT_RESTARTING, CR_EVT_GAVE_UP, CR_EVT_READY,
    CR_EVT_READY_TIMEOUT, CR_EVT_STATUS, CR_EVT_HEALTHY, CR_EVT_UNHEALTHY, CR_EVT_SETUP_FAILED,
    CR_EVT_EXEC_FAILED, CR_EVT_N
};
struct cr_event_def {
    const char *name;            /* on the wire */
    const char *keys;            /* the keys it may carry, space-separated ("reason" last) */
};
extern const struct cr_event_def cr_event_defs[CR_EVT_N];
/* The kind called name, or -1 (an event this version does not know: ignore it). */
int cr_event_kind(const char *name);

/* Writes one event line to fd (if fd >= 0). fmt holds the part after the event name, e.g.
 * cr_event(fd, CR_EVT_EXITED, "pid=%d code=%d", ...). Never blocks, never raises SIGPIPE
 * for the caller to see (the caller must ignore SIGPIPE it raised itself), never fails
 * loudly. */
void cr_event(int fd, enum cr_event_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A parsed line. Pointers point into the caller's buffer, which is modified. */
struct cr_event_line {
    int kind;                    /* enum cr_event_kind, or -1: not one this version knows */
    const char *event;
    const char *reason;          /* NULL when absent */
    int nkeys;
    struct { const char *key, *value; } kv[16];
};
/* Parses one line (without its newline). Returns 0 or -EINVAL for an empty/garbled line. */
int cr_event_parse(char *line, struct cr_event_line *out);
/* The value of key in a parsed line, or NULL. */
const char *cr_event_get(const struct cr_event_line *ev, const char *key);

#endif
