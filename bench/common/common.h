/* Helpers both harnesses (initbench, supbench) compile in: time, percentiles, table cells,
 * small /proc reads and the start-up chores of main. */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

int64_t bc_now_ns(void);                       /* CLOCK_MONOTONIC */
double bc_pct(double *v, int n, double p);     /* sorts v; p in [0,100]; NaN if n <= 0 */
void bc_cell(double v, int decimals, int width);  /* " %*.*f", or n/a for NaN */
/* Reads up to len-1 bytes of path, NUL-terminated; returns the count or -1. */
ssize_t bc_read_small(const char *path, char *buf, size_t len);
/* Absolute path of this binary into buf; on failure perror("PROG: /proc/self/exe"), -1. */
int bc_self_exe(char *buf, size_t len, const char *prog);
/* fn handles SIGINT, SIGTERM and SIGHUP (no SA_RESTART, nothing blocked). */
void bc_on_stop_signals(void (*fn)(int));

#endif
