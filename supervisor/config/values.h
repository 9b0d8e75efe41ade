/* Internal to supervisor/config*.c: %(...)s expansion and the typed value parsers the key
 * table (keys.c) names. */
#ifndef CORRAL_CONFIG_VALUES_H
#define CORRAL_CONFIG_VALUES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/keys.h"

/* What %(...)s expands to in one section (and one numprocs copy). */
struct cr_xctx {
    const char *program, *here, *host;
    int64_t process_num, numprocs;
};

/* Returns the expanded heap string, or NULL with a message in err. */
char *cr_cfg_expand(const char *in, const struct cr_xctx *x, char *err, size_t errlen);
/* Parses v into key k's field at base (a cr_service or cr_global); lists append. Returns 0,
 * or -EINVAL with a message (without the key name) in err. */
int cr_cfg_parse_value(const struct cr_key *k, const char *v, void *base, int line, char *err,
                       size_t errlen);
/* Sets k's field to "not set" (-1, NULL, empty). */
void cr_cfg_set_unset(const struct cr_key *k, void *base);
/* The bytes of a field of type t that holds its value itself (a number, a flag, a signal, exit
 * codes: parsing the same text always writes the same bytes); 0 for a field that points at
 * what it holds (text, lists) or is more than one value (cpu_max). */
size_t cr_cfg_value_width(enum cr_key_type t);
/* Frees what k's field holds. */
void cr_cfg_free_field(const struct cr_key *k, void *field);
/* A decimal id of 32 bits at *p (1 to 10 plain digits, at most 2^32 - 1: no sign, blank or
 * overflowing value gets through), ending at one of stops ("" : the string's end); *p is
 * left on the stop. */
bool cr_cfg_id32(const char **p, const char *stops, unsigned long long *out);

#endif
