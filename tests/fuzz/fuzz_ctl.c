/* libFuzzer target: the control protocol (shared/ctl_proto.c) on both ends. The first byte
 * picks the side: even, the supervisor's (request lines cut by cr_ctl_lines_feed with the
 * control socket's CR_CTL_LINE_MAX buffer, fed in chunks as reads arrive); odd, svctl's
 * (response lines, then %-decoding of every value). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_proto.h"

static int on_request(void *arg, char *line, size_t len)
{
    (void)arg;
    struct cr_ctl_req rq;
    const char *why = NULL;
    int e = cr_ctl_parse_request(line, len, &rq, &why);
    if (e && !why)
        abort();             /* an error without its explanation */
    if (!e)
        for (int i = 0; i < rq.argc; i++)
            if (!rq.argv[i])
                abort();
    return 0;
}

static void requests(const uint8_t *data, size_t size)
{
    char buf[CR_CTL_LINE_MAX];
    struct cr_ctl_lines lb = {.buf = buf, .cap = sizeof buf};
    size_t chunk = size ? (size_t)data[0] % 64 + 1 : 1, used;
    for (size_t off = 1; off < size; off += chunk) {
        size_t n = size - off < chunk ? size - off : chunk;
        cr_ctl_lines_feed(&lb, (const char *)data + off, n, on_request, NULL, &used);
    }
}

static void responses(const uint8_t *data, size_t size)
{
    char *copy = malloc(size + 1);
    if (!copy)
        return;
    memcpy(copy, data, size);
    copy[size] = 0;
    for (char *line = copy, *nl; line; line = nl) {
        if ((nl = strchr(line, '\n')))
            *nl++ = 0;
        struct cr_ctl_resp r;
        if (cr_ctl_parse_response(line, &r) < 0)
            continue;
        if (r.nkv < 0 || r.nkv > CR_CTL_KV_MAX)
            abort();
        for (int i = 0; i < r.nkv; i++)
            cr_ctl_decode((char *)r.kv[i].value);
        char enc[256];
        if (r.text) {
            size_t n = cr_ctl_encode(enc, sizeof enc, r.text, strlen(r.text));
            if (n >= sizeof enc || enc[n])
                abort();
        }
    }
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size && data[0] & 1)
        responses(data + 1, size - 1);
    else
        requests(data, size);
    return 0;
}
