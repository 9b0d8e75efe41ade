/* Parsing of the value types every corral input shares: durations, sizes, signals,
 * booleans, exit-code lists. Used by init (command line, environment, spec) and the
 * supervisor (services.ini), so both sides accept exactly the same spellings. */
#ifndef CORRAL_UNITS_H
#define CORRAL_UNITS_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

/* Durations are kept in milliseconds. Accepted: "250ms", "10s", "2m", "1h", "1.5s", and a
 * bare number meaning seconds (supervisord's startsecs=10). Returns 0, or -EINVAL/-ERANGE. */
int cr_parse_duration_ms(const char *s, int64_t *out_ms);

/* Sizes in bytes: bare bytes, K/M/G/T (also KB/MB/GB/TB, KiB/MiB/GiB, case-insensitive),
 * all powers of 1024 as supervisord and systemd do. "max"/"infinity" give INT64_MAX. */
int cr_parse_size(const char *s, int64_t *out_bytes);

/* A signal by name ("TERM", "SIGTERM", "sigterm", "RTMIN+3") or number. Returns the
 * signal number or -EINVAL. */
int cr_parse_signal(const char *s);
/* "TERM" for 15, "RTMIN+3", or a number as text in buf. Never NULL. */
const char *cr_signal_name(int sig, char *buf, size_t len);

/* true/yes/on/1 and false/no/off/0, case-insensitive (supervisord's spellings). */
int cr_parse_bool(const char *s, bool *out);

/* A non-negative integer that fits in an int; no sign, no junk. */
int cr_parse_uint(const char *s, unsigned max, unsigned *out);

/* A set of exit codes 0..255 written "0,2,143" (spaces allowed). Bit i of set[i/64]. */
typedef struct { uint64_t bits[4]; } cr_codeset;
int cr_parse_codes(const char *s, cr_codeset *set);
static inline bool cr_codeset_has(const cr_codeset *c, int code)
{
    return code >= 0 && code < 256 && (c->bits[code / 64] >> (code % 64)) & 1;
}
static inline void cr_codeset_add(cr_codeset *c, int code)
{
    if (code >= 0 && code < 256)
        c->bits[code / 64] |= (uint64_t)1 << (code % 64);
}

#endif
