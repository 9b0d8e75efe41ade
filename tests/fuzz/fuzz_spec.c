/* libFuzzer target: the spec reader, as init runs it on what arrives on its spec fd, and
 * (when the input parses) the writer: what was read must write and read back the same. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > CR_SPEC_MAX)
        return 0;            /* cr_spec_read_fd never hands more to the parser */
    struct cr_spec s;
    struct cr_errlist errors = {0};
    if (cr_spec_parse((const char *)data, size, "fuzz", &s, &errors) == 0) {
        static char buf[CR_SPEC_MAX];
        ssize_t n = cr_spec_write(&s, buf, sizeof buf);
        if (n >= 0) {
            struct cr_spec again;
            struct cr_errlist e2 = {0};
            if (cr_spec_parse(buf, (size_t)n, "again", &again, &e2) != 0)
                abort();     /* the writer produced what the reader refuses */
            static char buf2[CR_SPEC_MAX];
            ssize_t n2 = cr_spec_write(&again, buf2, sizeof buf2);
            if (n2 != n || memcmp(buf, buf2, (size_t)n))
                abort();     /* not a fixed point: a value changed on the way */
            cr_spec_free(&again);
            cr_errlist_free(&e2);
        }
        cr_spec_free(&s);
    }
    cr_errlist_free(&errors);
    return 0;
}
