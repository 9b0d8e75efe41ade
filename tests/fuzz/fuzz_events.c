/* libFuzzer target: init's event lines as the supervisor takes them
 * (supervisor/service/container.c, ct_read_events and handle_event_line): a byte stream from a
 * pipe the workload may reach, cut at newlines, each line parsed and every key the supervisor
 * asks for looked up. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"

static const char *keys[] = {"pid", "code", "signal", "runtime_ms", "delay_ms", "attempt",
                             "restarts", "kind", "timeout_ms", "action", "failures"};

static void one_line(char *line)
{
    struct cr_event_line ev;
    if (cr_event_parse(line, &ev) < 0)
        return;
    if (!ev.event || ev.nkeys < 0 || ev.nkeys > 16)
        abort();
    volatile size_t sum = strlen(ev.event) + (ev.reason ? strlen(ev.reason) : 0);
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *v = cr_event_get(&ev, keys[i]);
        if (v)
            sum += strlen(v);
    }
    (void)sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The supervisor's buffer holds 2 * CR_EVENT_MAX bytes; a longer line is dropped. */
    char buf[2 * CR_EVENT_MAX + 1];
    size_t start = 0;
    for (size_t i = 0; i <= size; i++) {
        if (i < size && data[i] != '\n')
            continue;
        size_t n = i - start;
        if (i < size && n < sizeof buf) {      /* a line without its newline waits: skip */
            memcpy(buf, data + start, n);
            buf[n] = 0;
            one_line(buf);
        }
        start = i + 1;
    }
    return 0;
}
