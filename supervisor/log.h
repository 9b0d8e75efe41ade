/* The supervisor's own log: "supervisor: NAME: text" lines on stderr.
 *
 * Every layer may log; this file depends on nothing else of the supervisor (shared/text.h
 * writes the message's control bytes as \xHH). The daemon hands it a second sink
 * ([supervisor] logfile, io/logs.c) with cr_log_set_sink(); the sink gets each line without
 * its "supervisor: " prefix, newline included. */
#ifndef CORRAL_LOG_H
#define CORRAL_LOG_H

#include <stddef.h>

void cr_log(const char *name, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Also write every line to sink (NULL: stderr only). */
void cr_log_set_sink(void (*sink)(const char *line, size_t n));

#endif
