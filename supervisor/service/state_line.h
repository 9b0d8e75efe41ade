/* A service's state line across a re-exec (handover.c, history.c): "svc NAME STATE" and then
 * " key=value" fields, none of which holds a space. Written without printf and read back
 * through one index of the line: the re-exec gap (issue 11's <= 10 ms with 100 services)
 * formatted and scanned every line with *printf and a strstr per key, a third of the new
 * program's work after its config. The text is the same as before, so a program of either
 * kind reads the other's line. */
#ifndef CORRAL_SERVICE_STATE_LINE_H
#define CORRAL_SERVICE_STATE_LINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- writing: each call appends while it fits; once one did not, full stays set --------- */
struct cr_sl_out {
    char *buf;
    size_t cap, n;
    bool full;
};

void cr_sl_raw(struct cr_sl_out *o, const char *s, size_t n);
void cr_sl_str(struct cr_sl_out *o, const char *s);
void cr_sl_key(struct cr_sl_out *o, const char *key);   /* " key=" */
void cr_sl_u64(struct cr_sl_out *o, uint64_t v);
void cr_sl_i64(struct cr_sl_out *o, int64_t v);
void cr_sl_hex(struct cr_sl_out *o, const char *bytes, size_t n);   /* two digits a byte */
/* " key=V" */
void cr_sl_field(struct cr_sl_out *o, const char *key, int64_t v);
void cr_sl_ufield(struct cr_sl_out *o, const char *key, uint64_t v);
/* Its length, or -1 when something did not fit (the buffer then ends at a whole call). */
int cr_sl_end(struct cr_sl_out *o);
/* Back to length n (n <= o->n), full or not: what was appended since is dropped. */
void cr_sl_rewind(struct cr_sl_out *o, size_t n);

/* ---- reading ------------------------------------------------------------------------------ */
#define CR_SL_FIELDS 64

struct cr_sl_in {
    const char *name, *state;   /* not terminated: their lengths */
    size_t name_len, state_len;
    int n, next;   /* next: where a look-up starts (the fields are read in the order written) */
    struct {
        const char *key, *val;
        size_t key_len, val_len;
    } f[CR_SL_FIELDS];
};

/* Indexes line up to its end or its first '\n'; false when it is not "svc NAME STATE ...". */
bool cr_sl_index(struct cr_sl_in *in, const char *line);
/* The value of key (up to the next space), or NULL when the line has no such field. */
const char *cr_sl_get(struct cr_sl_in *in, const char *key, size_t *len);
/* The number at the start of key's value; false (v untouched) when absent or not a number. */
bool cr_sl_int(struct cr_sl_in *in, const char *key, int64_t *v);
/* The number (an optional '-', then digits) at *pp, before end; *pp moves past it. False,
 * and nothing moved, when there is none: "3:4,5" is read in turns. */
bool cr_sl_num(const char **pp, const char *end, int64_t *v);
/* The separator c at *pp, before end: true and *pp past it; false and nothing moved. */
bool cr_sl_skip(const char **pp, const char *end, char c);
/* Decodes n bytes of hex at p into out (a byte per two digits, up to the first non-hex
 * pair); the bytes decoded. */
size_t cr_sl_unhex(const char *p, size_t n, char *out, size_t cap);

#endif
