/* The supervisor's own log: "supervisor: NAME: text" lines on stderr.
 *
 * Every layer may log; this file depends on nothing else of the supervisor (shared/text.h
 * writes the message's control bytes as \xHH). The daemon hands it a second sink
 * ([supervisor] logfile, io/logs.c) with cr_log_set_sink(); the sink gets each line without
 * its "supervisor: " prefix, newline included.
 *
 * Once the loop runs, stderr never blocks it (cr_log_nonblocking): a pipe or terminal is
 * written without blocking, what it cannot take waits in a bounded queue (CR_LOG_QUEUE) until
 * the loop sees it writable (cr_log_flush), and a line that finds the queue full is dropped
 * and counted; the count is logged once the queue drains. */
#ifndef CORRAL_LOG_H
#define CORRAL_LOG_H

#include <stdbool.h>
#include <stddef.h>

#define CR_LOG_QUEUE (64 * 1024)

void cr_log(const char *name, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Also write every line to sink (NULL: stderr only). */
void cr_log_set_sink(void (*sink)(const char *line, size_t n));
/* From now on, stderr is written without blocking. want_write(fd, true) asks the caller to
 * call cr_log_flush() when fd becomes writable, want_write(fd, false) to stop. Returns that
 * fd, or a negative number when stderr needs no waiting (a regular file, /dev/null). */
int cr_log_nonblocking(void (*want_write)(int fd, bool on));
/* Writes what waits, as far as stderr takes it now; then the count of dropped lines. */
void cr_log_flush(void);
/* Lines dropped since the start (stderr too slow). */
unsigned long long cr_log_dropped(void);
/* No more want_write() calls (the loop is closing its handles); lines still queue. */
void cr_log_unwatch(void);
/* Back to plain writes to fd 2 (at exit): what is still queued is tried once more without
 * blocking, then lost. */
void cr_log_blocking(void);

#endif
