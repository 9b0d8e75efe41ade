/* The prefixed console (supervisor/io/output.c): the exact bytes written for each line, with and
 * without colour. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "io/output.h"

/* Writes lines through a console on a pipe and returns what came out of the pipe. */
static size_t through_console(bool color, char *out, size_t cap)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct cr_console c;
    assert_int_equal(cr_console_open(&c, &loop, p[1]), 0);
    c.color = color;             /* a pipe is no terminal: force what a terminal gets */
    cr_console_line(&c, "web", "first", 5);
    cr_console_line(&c, "db", "second line", 11);
    cr_console_line(&c, "web", "", 0);
    cr_console_flush(&c);
    cr_console_close(&c);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&loop), 0);
    close(p[1]);
    size_t n = 0;
    ssize_t r;
    while ((r = read(p[0], out + n, cap - n)) > 0)
        n += (size_t)r;
    close(p[0]);
    return n;
}

static void test_console_plain(void **state)
{
    (void)state;
    char out[4096];
    size_t n = through_console(false, out, sizeof out);
    const char want[] = "web | first\ndb | second line\nweb | \n";
    assert_int_equal(n, sizeof want - 1);
    assert_memory_equal(out, want, n);
}

/* Finding of the fuzzing review: the colour's length was counted 2 bytes long, so 2 stale
 * bytes of the queue (earlier output of any service) followed every coloured line. */
static void test_console_colour_exact_bytes(void **state)
{
    (void)state;
    char out[4096];
    size_t n = through_console(true, out, sizeof out);
    /* compare with the colour codes cut out: everything else must match exactly */
    char plain[4096];
    size_t pn = 0;
    for (size_t i = 0; i < n; i++) {
        if (out[i] == '\033') {
            while (i < n && out[i] != 'm')
                i++;
            continue;
        }
        plain[pn++] = out[i];
    }
    const char want_plain[] = "web | first\ndb | second line\nweb | \n";
    if (pn != sizeof want_plain - 1 || memcmp(plain, want_plain, pn)) {
        print_error("got %zu bytes: ", n);
        for (size_t i = 0; i < n; i++)
            print_error(out[i] >= 32 && out[i] < 127 ? "%c" : "\\x%02x", (unsigned char)out[i]);
        print_error("\n");
        fail();
    }
    /* each line: ESC [ NN m name " |" ESC [0m " " text "\n" */
    assert_int_equal(n, sizeof want_plain - 1 + 3 * (5 + 4));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_console_plain),
        cmocka_unit_test(test_console_colour_exact_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
