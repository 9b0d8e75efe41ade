/* XML-RPC's data: a request read with expat (a methodCall into a tree of values), and the
 * response written (a methodResponse or a fault). The XML parsing is expat's; this file only
 * checks the element structure XML-RPC allows and builds the values.
 *
 * A request is bounded: at most CR_XV_DEPTH nested values and CR_XV_NODES values in all; a
 * DOCTYPE (entity definitions) is refused outright. */
#ifndef CORRAL_XMLRPC_H
#define CORRAL_XMLRPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CR_XV_DEPTH 32
#define CR_XV_NODES 100000

enum cr_xv_type {
    CR_XV_STRING, CR_XV_INT, CR_XV_BOOL, CR_XV_DOUBLE, CR_XV_DATETIME, CR_XV_BASE64,
    CR_XV_NIL, CR_XV_ARRAY, CR_XV_STRUCT,
};

struct cr_xv {
    enum cr_xv_type t;
    int64_t i;                   /* INT, BOOL */
    double d;                    /* DOUBLE */
    char *s;                     /* STRING, DATETIME, BASE64 (as written) */
    struct cr_xv **v;            /* ARRAY items, STRUCT member values */
    char **names;                /* STRUCT member names */
    size_t n;
    char *pending;               /* while parsing a STRUCT: the member's name */
};

void cr_xv_free(struct cr_xv *v);
/* A STRUCT's member called name, or NULL. */
const struct cr_xv *cr_xv_member(const struct cr_xv *v, const char *name);

/* Reads a methodCall: its method name (heap) and its params as one ARRAY. 0, or -EINVAL with
 * err saying what is wrong (line and column of the XML), -ENOMEM. */
int cr_xmlrpc_parse(const char *body, size_t len, char **method, struct cr_xv **params,
                    char *err, size_t errlen);

/* ---- writing ---------------------------------------------------------------------------- */

struct cr_xw {
    char *p;
    size_t len, cap;
    bool oom;
};

void cr_xw_begin(struct cr_xw *w);           /* <methodResponse><params><param> */
void cr_xw_end(struct cr_xw *w);             /* </param></params></methodResponse> */
/* A whole fault response (w empty before). */
void cr_xw_fault(struct cr_xw *w, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void cr_xw_int(struct cr_xw *w, int64_t i);
void cr_xw_bool(struct cr_xw *w, bool b);
void cr_xw_str(struct cr_xw *w, const char *s);
void cr_xw_strn(struct cr_xw *w, const char *s, size_t n);
void cr_xw_array_begin(struct cr_xw *w);
void cr_xw_array_end(struct cr_xw *w);
void cr_xw_struct_begin(struct cr_xw *w);
void cr_xw_struct_end(struct cr_xw *w);
/* A member's name; its value follows (any cr_xw_ value). */
void cr_xw_member(struct cr_xw *w, const char *name);
void cr_xw_member_end(struct cr_xw *w);
/* Copies a value read from a request (system.multicall's echo of its arguments). */
void cr_xw_value(struct cr_xw *w, const struct cr_xv *v);
/* Raw text, appended as is (also the web UI's page writer: webui.c). */
void cr_xw_raw(struct cr_xw *w, const char *s);
void cr_xw_rawn(struct cr_xw *w, const char *s, size_t n);

#endif
