/* Unit tests for supervisor/service/state_line.c: a service's state line across a re-exec,
 * written without printf and read back through one index. The text must be what the earlier
 * printf-made line was (a program of either kind reads the other's), so the writer is
 * checked against snprintf over the edge values, and the reader against lines as the earlier
 * program wrote them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <inttypes.h>
#include <string.h>

#include <cmocka.h>

#include "service/state_line.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void test_numbers_as_printf_writes_them(void **state)
{
    (void)state;
    static const int64_t v[] = {0, 1, -1, 9, 10, -10, 123456789, INT32_MAX, INT32_MIN,
                                INT64_MAX, INT64_MIN, INT64_MIN + 1};
    for (size_t i = 0; i < N(v); i++) {
        char buf[64], want[64];
        struct cr_sl_out o = {buf, sizeof buf, 0, false};
        cr_sl_key(&o, "k");
        cr_sl_i64(&o, v[i]);
        cr_sl_raw(&o, ",", 1);
        cr_sl_u64(&o, (uint64_t)v[i]);
        snprintf(want, sizeof want, " k=%" PRId64 ",%" PRIu64, v[i], (uint64_t)v[i]);
        assert_string_equal(buf, want);
        assert_int_equal(cr_sl_end(&o), (int)strlen(want));
    }
}

static void test_hex_both_ways(void **state)
{
    (void)state;
    char bytes[256], buf[600], want[600], back[256];
    for (int i = 0; i < 256; i++)
        bytes[i] = (char)i;
    struct cr_sl_out o = {buf, sizeof buf, 0, false};
    cr_sl_hex(&o, bytes, sizeof bytes);
    for (int i = 0; i < 256; i++)
        sprintf(want + 2 * i, "%02x", i);
    assert_string_equal(buf, want);
    assert_int_equal(cr_sl_unhex(buf, strlen(buf), back, sizeof back), 256);
    assert_memory_equal(back, bytes, 256);
    /* upper case too; stops at a non-hex pair, at an odd end and at the room given */
    assert_int_equal(cr_sl_unhex("4A4b", 4, back, sizeof back), 2);
    assert_memory_equal(back, "JK", 2);
    assert_int_equal(cr_sl_unhex("41zz42", 6, back, sizeof back), 1);
    assert_int_equal(cr_sl_unhex("41424", 5, back, sizeof back), 2);
    assert_int_equal(cr_sl_unhex("414243", 6, back, 2), 2);
    assert_int_equal(cr_sl_unhex("-", 1, back, sizeof back), 0);
}

static void test_a_full_buffer_says_so_and_ends_at_a_whole_call(void **state)
{
    (void)state;
    char buf[12];
    struct cr_sl_out o = {buf, sizeof buf, 0, false};
    cr_sl_str(&o, "svc a");      /* 5 */
    cr_sl_key(&o, "pid");        /* 10 */
    cr_sl_u64(&o, 12345);        /* would be 15: does not fit */
    cr_sl_raw(&o, "x", 1);       /* would fit, but the line is broken already */
    assert_true(o.full);
    assert_int_equal(cr_sl_end(&o), -1);
    assert_string_equal(buf, "svc a pid=");
    /* exactly the room less the NUL fits */
    char b2[4];
    struct cr_sl_out o2 = {b2, sizeof b2, 0, false};
    cr_sl_str(&o2, "abc");
    assert_int_equal(cr_sl_end(&o2), 3);
    cr_sl_hex(&o2, "a", 1);
    assert_int_equal(cr_sl_end(&o2), -1);
}

/* Rewound (a crash history that did not fit is dropped): what was there before stays, and
 * the line goes on; a separator is taken only when it is there. */
static void test_rewind_and_separators(void **state)
{
    (void)state;
    char buf[16];
    struct cr_sl_out o = {buf, sizeof buf, 0, false};
    cr_sl_field(&o, "a", 1);
    size_t before = o.n;
    cr_sl_str(&o, "a text that does not fit");
    assert_int_equal(cr_sl_end(&o), -1);
    cr_sl_rewind(&o, before);
    cr_sl_raw(&o, "\n", 1);
    assert_int_equal(cr_sl_end(&o), 5);
    assert_string_equal(buf, " a=1\n");
    static const char v[] = "1:2";
    const char *p = v, *end = v + 3;
    assert_false(cr_sl_skip(&p, end, ','));
    assert_ptr_equal(p, v);
    int64_t x;
    assert_true(cr_sl_num(&p, end, &x) && cr_sl_skip(&p, end, ':') && cr_sl_num(&p, end, &x));
    assert_int_equal(x, 2);
    assert_false(cr_sl_skip(&p, end, ':'));   /* at the end */
}

/* A line as the earlier program's snprintf wrote it */
static const char line[] =
    "svc web-1 RUNNING pid=4242 pidfd=17 ev=18 out=19,20 err=-1,-1 up=1 ready=0 "
    "started=123456789012 spawned=99 status=-1 oom=3 in=21 cni=22:corral-web-1 "
    "outpart=68656c6c6f errpart=- attempt=2 failed=1 healthy=-1 hstop=0 lastoom=0 "
    "ran=5000 gaveup=0 rwin=3:2:-5,100,2000000000000 stext=7374617475732c206f6b "
    "restarts=2 ooms=0 nexits=1 reason= exits=1:2:3:0:9:1:-1:6869:\n"
    "svc next STOPPED pid=0\n";

static void test_the_index_finds_every_field_of_an_earlier_line(void **state)
{
    (void)state;
    struct cr_sl_in in;
    assert_true(cr_sl_index(&in, line));
    assert_int_equal(in.name_len, 5);
    assert_memory_equal(in.name, "web-1", 5);
    assert_int_equal(in.state_len, 7);
    assert_memory_equal(in.state, "RUNNING", 7);
    int64_t v = 7;
    assert_true(cr_sl_int(&in, "pid", &v));
    assert_int_equal(v, 4242);
    assert_true(cr_sl_int(&in, "status", &v));
    assert_int_equal(v, -1);
    assert_true(cr_sl_int(&in, "started", &v));
    assert_int_equal(v, 123456789012);
    size_t len;
    const char *p = cr_sl_get(&in, "out", &len);
    assert_non_null(p);
    assert_int_equal(len, 5);
    assert_memory_equal(p, "19,20", 5);
    p = cr_sl_get(&in, "reason", &len);   /* present and empty */
    assert_non_null(p);
    assert_int_equal(len, 0);
    assert_false(cr_sl_int(&in, "reason", &v));
    p = cr_sl_get(&in, "exits", &len);    /* the line's last field ends at its '\n' */
    assert_int_equal(len, strlen("1:2:3:0:9:1:-1:6869:"));
    /* a key is a whole key: "pid" is not "pidfd", and the next line is not read */
    assert_true(cr_sl_int(&in, "pidfd", &v));
    assert_int_equal(v, 17);
    assert_null(cr_sl_get(&in, "next", NULL));
    assert_null(cr_sl_get(&in, "STOPPED", NULL));
    assert_null(cr_sl_get(&in, "nosuch", NULL));
    v = 7;
    assert_false(cr_sl_int(&in, "nosuch", &v));
    assert_int_equal(v, 7);
    assert_false(cr_sl_int(&in, "cni", &v) && v != 22);   /* "22:corral..." starts with 22 */
}

static void test_numbers_in_turns(void **state)
{
    (void)state;
    static const char v[] = "3:-2:-5,100,2000000000000x";
    const char *p = v, *end = v + strlen(v);
    int64_t a = 0, b = 0, c[3] = {0};
    assert_true(cr_sl_num(&p, end, &a) && *p++ == ':' && cr_sl_num(&p, end, &b) && *p++ == ':');
    assert_int_equal(a, 3);
    assert_int_equal(b, -2);
    for (int i = 0; i < 3; i++) {
        assert_true(cr_sl_num(&p, end, &c[i]));
        if (*p == ',')
            p++;
    }
    assert_int_equal(c[0], -5);
    assert_int_equal(c[2], 2000000000000);
    const char *at = p;   /* "x": no number, nothing moved; nor past end, nor a lone '-' */
    assert_false(cr_sl_num(&p, end, &a));
    assert_ptr_equal(p, at);
    p = v;
    assert_false(cr_sl_num(&p, v, &a));
    static const char minus[] = "-";
    p = minus;
    assert_false(cr_sl_num(&p, minus + 1, &a));
    assert_ptr_equal(p, minus);
}

static void test_what_is_not_a_state_line(void **state)
{
    (void)state;
    struct cr_sl_in in;
    static const char *bad[] = {"", "svc", "svc name", "svc  ", "svcx a RUNNING",
                                "control 3", "watchset 5"};
    for (size_t i = 0; i < N(bad); i++)
        assert_false(cr_sl_index(&in, bad[i]));
    assert_true(cr_sl_index(&in, "svc a STOPPED"));
    assert_int_equal(in.n, 0);
    /* a token without '=' is passed over; so are fields past the index's room */
    assert_true(cr_sl_index(&in, "svc a STOPPED junk pid=1"));
    assert_int_equal(in.n, 1);
    char many[CR_SL_FIELDS * 8 + 64] = "svc a RUNNING";
    for (int i = 0; i < CR_SL_FIELDS + 5; i++)
        sprintf(many + strlen(many), " k%d=%d", i, i);
    assert_true(cr_sl_index(&in, many));
    assert_int_equal(in.n, CR_SL_FIELDS);
    int64_t v;
    assert_true(cr_sl_int(&in, "k0", &v));
    assert_false(cr_sl_int(&in, "k70", &v));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbers_as_printf_writes_them),
        cmocka_unit_test(test_hex_both_ways),
        cmocka_unit_test(test_a_full_buffer_says_so_and_ends_at_a_whole_call),
        cmocka_unit_test(test_the_index_finds_every_field_of_an_earlier_line),
        cmocka_unit_test(test_rewind_and_separators),
        cmocka_unit_test(test_numbers_in_turns),
        cmocka_unit_test(test_what_is_not_a_state_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
