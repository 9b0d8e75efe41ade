/* libFuzzer target: an XML-RPC request as the supervisor's /RPC2 reads it (api/xmlrpc.c, over
 * expat). A request it takes is written back (each param as a value, as system.multicall
 * echoes them) and must read again to the same shape: the writer never emits what the reader
 * refuses, whatever bytes a string held. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/xmlrpc.h"

static void same_shape(const struct cr_xv *a, const struct cr_xv *b)
{
    if (a->n != b->n || a->t != b->t)
        abort();
    for (size_t i = 0; i < a->n; i++)
        same_shape(a->v[i], b->v[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *method = NULL, err[256];
    struct cr_xv *params = NULL;
    int r = cr_xmlrpc_parse((const char *)data, size, &method, &params, err, sizeof err);
    if (r < 0) {
        if (!*err || method || params)
            abort();          /* an error says why, and leaves nothing behind */
        return 0;
    }
    struct cr_xw w = {0};
    cr_xw_raw(&w, "<methodCall><methodName>m</methodName><params>");
    for (size_t i = 0; i < params->n; i++) {
        cr_xw_raw(&w, "<param>");
        cr_xw_value(&w, params->v[i]);
        cr_xw_raw(&w, "</param>");
    }
    cr_xw_raw(&w, "</params></methodCall>");
    if (!w.oom) {
        char *m2 = NULL;
        struct cr_xv *p2 = NULL;
        if (cr_xmlrpc_parse(w.p, w.len, &m2, &p2, err, sizeof err) < 0) {
            fprintf(stderr, "written back, refused: %s\n%s\n", err, w.p);
            abort();
        }
        same_shape(params, p2);
        free(m2);
        cr_xv_free(p2);
    }
    free(w.p);
    free(method);
    cr_xv_free(params);
    return 0;
}
