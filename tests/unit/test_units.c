/* Unit tests for shared/units.c (durations, sizes, signals, booleans, integers, exit-code
 * sets) and shared/events.c (writing and parsing event lines). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "events.h"
#include "text.h"
#include "units.h"

/* ---- durations ---------------------------------------------------------------------------- */
static void duration_ok(const char *s, int64_t want)
{
    int64_t ms = -1;
    int r = cr_parse_duration_ms(s, &ms);
    if (r != 0 || ms != want)
        fail_msg("'%s': r=%d ms=%lld, want %lld", s, r, (long long)ms, (long long)want);
}

static void duration_bad(const char *s, int want_err)
{
    int64_t ms = 12345;
    int r = cr_parse_duration_ms(s, &ms);
    if (r != want_err)
        fail_msg("'%s': r=%d, want %d", s ? s : "(null)", r, want_err);
    assert_int_equal(ms, 12345); /* untouched on error */
}

static void test_duration_units(void **state)
{
    (void)state;
    duration_ok("250ms", 250);
    duration_ok("10s", 10000);
    duration_ok("2m", 120000);
    duration_ok("1h", 3600000);
    duration_ok("0", 0);
    duration_ok("0ms", 0);
    duration_ok("5", 5000); /* bare number: seconds */
    duration_ok("1.5s", 1500);
    duration_ok("0.001", 1);
    duration_ok("1.25m", 75000);
    duration_ok("10MS", 10);
    duration_ok("3sec", 3000);
    duration_ok("2min", 120000);
    duration_ok("1hr", 3600000);
    duration_ok("5msec", 5);
    duration_ok("  7s  ", 7000);
}

static void test_duration_rejects(void **state)
{
    (void)state;
    duration_bad(NULL, -EINVAL);
    duration_bad("", -EINVAL);
    duration_bad("s", -EINVAL);
    duration_bad("-1s", -EINVAL);
    duration_bad("1.s", -EINVAL);
    duration_bad(".5s", -EINVAL);
    duration_bad("10x", -EINVAL);
    duration_bad("10 s x", -EINVAL);
    duration_bad("1d", -EINVAL);
    duration_bad("ms", -EINVAL);
    duration_bad("99999999999999999999h", -ERANGE);
    duration_bad("9999999999999999h", -ERANGE);
}

/* ---- sizes ---------------------------------------------------------------------------------- */
static void size_ok(const char *s, int64_t want)
{
    int64_t v = -1;
    int r = cr_parse_size(s, &v);
    if (r != 0 || v != want)
        fail_msg("'%s': r=%d v=%lld, want %lld", s, r, (long long)v, (long long)want);
}

static void test_sizes(void **state)
{
    (void)state;
    size_ok("0", 0);
    size_ok("4096", 4096);
    size_ok("1K", 1024);
    size_ok("1k", 1024);
    size_ok("1KB", 1024);
    size_ok("1KiB", 1024);
    size_ok("64M", 64LL << 20);
    size_ok("64mb", 64LL << 20);
    size_ok("2G", 2LL << 30);
    size_ok("2GiB", 2LL << 30);
    size_ok("1T", 1LL << 40);
    size_ok("1.5K", 1536);
    size_ok("512B", 512);
    size_ok("max", INT64_MAX);
    size_ok("infinity", INT64_MAX);
    size_ok("MAX", INT64_MAX);
}

static void test_size_rejects(void **state)
{
    (void)state;
    const char *bad[] = {"", "K", "-1", "1X", "1KX", "1 K B", "1.K", "abc", "1KiBB"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t v;
        if (cr_parse_size(bad[i], &v) == 0)
            fail_msg("'%s' accepted as %lld", bad[i], (long long)v);
    }
    int64_t v;
    assert_int_equal(cr_parse_size(NULL, &v), -EINVAL);
    assert_int_not_equal(cr_parse_size("99999999999T", &v), 0);
}

/* 16 digits: the whole part scaled by 1000 once wrapped (signed overflow), so
 * 9223372036854776 s became 192 ms. The largest whole part that fits is 9223372036854774. */
static void test_duration_overflow(void **state)
{
    (void)state;
    duration_bad("9223372036854776", -ERANGE);
    duration_bad("9223372036854775", -ERANGE);
    duration_bad("9223372036854775.999ms", -ERANGE);
    duration_bad("9999999999999999.9", -ERANGE);
    duration_ok("9223372036854774ms", 9223372036854774);
    duration_ok("9223372036854774.999ms", 9223372036854774);
    duration_ok("9223372036854s", 9223372036854000);
    duration_bad("9223372036855s", -ERANGE);       /* the unit's product overflows */
    duration_bad("153722867280913m", -ERANGE);
    duration_ok("153722867280m", 153722867280 * 60000LL);
    duration_bad("2562047788016h", -ERANGE);
    int64_t v = 7;
    assert_int_equal(cr_parse_size("9223372036854776", &v), -ERANGE);
    assert_int_equal(cr_parse_size("9223372036854774T", &v), -ERANGE);
    assert_int_equal(cr_parse_size("8389T", &v), -ERANGE);
    assert_int_equal(v, 7);
    size_ok("8388T", 8388LL << 40);
}

/* shared/text.c: what svctl and the supervisor's log show of a container's words. */
static void test_text_escape(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(cr_text_escape(out, sizeof out, "a\033]0;t\007\033[2Jb", false), 21);
    assert_string_equal(out, "a\\x1b]0;t\\x07\\x1b[2Jb");
    cr_text_escape(out, sizeof out, "x\ny\tz\177", false);
    assert_string_equal(out, "x\\x0ay\\x09z\\x7f");
    cr_text_escape(out, sizeof out, "x\ny\r", true);
    assert_string_equal(out, "x\ny\\x0d");
    cr_text_escape(out, sizeof out, "caf\xc3\xa9", false);      /* UTF-8 passes */
    assert_string_equal(out, "caf\xc3\xa9");
    /* cut only at a whole escape, always terminated */
    assert_int_equal(cr_text_escape(out, 7, "ab\033cd", false), 6);
    assert_string_equal(out, "ab\\x1b");
    assert_int_equal(cr_text_escape(out, 6, "ab\033cd", false), 2);
    assert_string_equal(out, "ab");
    assert_true(cr_text_needs_escape("\033", false));
    assert_false(cr_text_needs_escape("a\nb", true));
    assert_true(cr_text_needs_escape("a\nb", false));
}

/* ---- signals -------------------------------------------------------------------------------- */
static void test_signal_names(void **state)
{
    (void)state;
    assert_int_equal(cr_parse_signal("TERM"), SIGTERM);
    assert_int_equal(cr_parse_signal("SIGTERM"), SIGTERM);
    assert_int_equal(cr_parse_signal("sigterm"), SIGTERM);
    assert_int_equal(cr_parse_signal("term"), SIGTERM);
    assert_int_equal(cr_parse_signal("KILL"), SIGKILL);
    assert_int_equal(cr_parse_signal("HUP"), SIGHUP);
    assert_int_equal(cr_parse_signal("USR1"), SIGUSR1);
    assert_int_equal(cr_parse_signal("WINCH"), SIGWINCH);
    assert_int_equal(cr_parse_signal("PWR"), SIGPWR);
    assert_int_equal(cr_parse_signal("15"), 15);
    assert_int_equal(cr_parse_signal("9"), 9);
    assert_int_equal(cr_parse_signal("RTMIN"), SIGRTMIN);
    assert_int_equal(cr_parse_signal("RTMIN+3"), SIGRTMIN + 3);
    assert_int_equal(cr_parse_signal("SIGRTMAX"), SIGRTMAX);
    assert_int_equal(cr_parse_signal("RTMAX-2"), SIGRTMAX - 2);
}

static void test_signal_rejects(void **state)
{
    (void)state;
    const char *bad[] = {"", "NOPE", "SIG", "0", "65", "-1", "15x", "RTMIN-1", "RTMAX+1",
                         "RTMIN+", "RTMIN+99", "TERMX", " TERM"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (cr_parse_signal(bad[i]) >= 0)
            fail_msg("'%s' accepted as %d", bad[i], cr_parse_signal(bad[i]));
    assert_int_equal(cr_parse_signal(NULL), -EINVAL);
}

static void test_signal_name_roundtrip(void **state)
{
    (void)state;
    char buf[32];
    assert_string_equal(cr_signal_name(SIGTERM, buf, sizeof buf), "TERM");
    assert_string_equal(cr_signal_name(SIGKILL, buf, sizeof buf), "KILL");
    assert_string_equal(cr_signal_name(SIGRTMIN, buf, sizeof buf), "RTMIN");
    assert_string_equal(cr_signal_name(SIGRTMIN + 2, buf, sizeof buf), "RTMIN+2");
    assert_string_equal(cr_signal_name(0, buf, sizeof buf), "0");
    assert_string_equal(cr_signal_name(200, buf, sizeof buf), "200");
    for (int sig = 1; sig < SIGRTMIN; sig++) {
        const char *n = cr_signal_name(sig, buf, sizeof buf);
        assert_non_null(n);
        if (n[0] >= '0' && n[0] <= '9')
            continue; /* a number the table does not name */
        /* SIGIOT and SIGPOLL alias other signals: any name must map back to the number. */
        assert_int_equal(cr_parse_signal(n), sig);
    }
    for (int sig = SIGRTMIN; sig <= SIGRTMAX; sig++)
        assert_int_equal(cr_parse_signal(cr_signal_name(sig, buf, sizeof buf)), sig);
}

/* ---- booleans, integers, exit codes ------------------------------------------------------------ */
static void test_bool(void **state)
{
    (void)state;
    const char *yes[] = {"true", "TRUE", "yes", "On", "1"}, *no[] = {"false", "No", "OFF", "0"};
    for (size_t i = 0; i < 5; i++) {
        bool b = false;
        assert_int_equal(cr_parse_bool(yes[i], &b), 0);
        assert_true(b);
    }
    for (size_t i = 0; i < 4; i++) {
        bool b = true;
        assert_int_equal(cr_parse_bool(no[i], &b), 0);
        assert_false(b);
    }
    bool b;
    assert_int_equal(cr_parse_bool("", &b), -EINVAL);
    assert_int_equal(cr_parse_bool("2", &b), -EINVAL);
    assert_int_equal(cr_parse_bool("truee", &b), -EINVAL);
    assert_int_equal(cr_parse_bool(NULL, &b), -EINVAL);
}

static void test_uint(void **state)
{
    (void)state;
    unsigned v = 99;
    assert_int_equal(cr_parse_uint("0", 10, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(cr_parse_uint("10", 10, &v), 0);
    assert_int_equal(v, 10);
    assert_int_equal(cr_parse_uint("4294967295", UINT_MAX, &v), 0);
    assert_int_equal(v, UINT_MAX);
    assert_int_equal(cr_parse_uint("11", 10, &v), -ERANGE);
    assert_int_equal(cr_parse_uint("99999999999999999999", UINT_MAX, &v), -ERANGE);
    assert_int_equal(cr_parse_uint("", 10, &v), -EINVAL);
    assert_int_equal(cr_parse_uint("-1", 10, &v), -EINVAL);
    assert_int_equal(cr_parse_uint("+1", 10, &v), -EINVAL);
    assert_int_equal(cr_parse_uint("1 ", 10, &v), -EINVAL);
    assert_int_equal(cr_parse_uint("1a", 10, &v), -EINVAL);
    assert_int_equal(cr_parse_uint(NULL, 10, &v), -EINVAL);
}

static void test_codes(void **state)
{
    (void)state;
    cr_codeset c;
    assert_int_equal(cr_parse_codes("0,2,143", &c), 0);
    for (int i = 0; i < 256; i++)
        assert_int_equal(cr_codeset_has(&c, i), i == 0 || i == 2 || i == 143);
    assert_int_equal(cr_parse_codes(" 255 , 64,63 ", &c), 0);
    assert_true(cr_codeset_has(&c, 255));
    assert_true(cr_codeset_has(&c, 64));
    assert_true(cr_codeset_has(&c, 63));
    assert_false(cr_codeset_has(&c, 0));
    assert_false(cr_codeset_has(&c, -1));
    assert_false(cr_codeset_has(&c, 256));
    assert_int_equal(cr_parse_codes("7", &c), 0);
    assert_true(cr_codeset_has(&c, 7));
    const char *bad[] = {"", ",", "1,", ",1", "1,,2", "256", "-1", "a", "1;2", "1 2"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (cr_parse_codes(bad[i], &c) == 0)
            fail_msg("'%s' accepted", bad[i]);
    assert_int_equal(cr_parse_codes(NULL, &c), -EINVAL);
    cr_codeset_add(&c, 300); /* out of range: ignored, no overflow */
    cr_codeset_add(&c, -5);
}

/* ---- events: writing -------------------------------------------------------------------------- */
static int read_all(int fd, char *buf, size_t len)
{
    ssize_t n = read(fd, buf, len - 1);
    buf[n > 0 ? n : 0] = 0;
    return (int)n;
}

static void test_event_write(void **state)
{
    (void)state;
    int p[2];
    char buf[2 * CR_EVENT_MAX];
    assert_int_equal(pipe(p), 0);
    cr_event(p[1], CR_EVT_EXITED, "pid=%d code=%d runtime_ms=%lld", 42, 3, 1500LL);
    read_all(p[0], buf, sizeof buf);
    assert_string_equal(buf, "exited pid=42 code=3 runtime_ms=1500\n");
    cr_event(p[1], CR_EVT_READY, NULL);
    read_all(p[0], buf, sizeof buf);
    assert_string_equal(buf, "ready\n");
    /* A newline inside a reason must not split the event. */
    cr_event(p[1], CR_EVT_SETUP_FAILED, "reason=%s", "bad\nthing\rhere");
    read_all(p[0], buf, sizeof buf);
    assert_string_equal(buf, "setup-failed reason=bad thing here\n");
    cr_event(-1, CR_EVT_STARTED, "pid=%d", 1); /* no fd: nothing, no crash */
    close(p[0]);
    close(p[1]);
}

static void test_event_truncated_to_one_line(void **state)
{
    (void)state;
    int p[2];
    char big[3 * CR_EVENT_MAX], buf[4 * CR_EVENT_MAX];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    assert_int_equal(pipe(p), 0);
    cr_event(p[1], CR_EVT_SETUP_FAILED, "reason=%s", big);
    int n = read_all(p[0], buf, sizeof buf);
    assert_true(n > 0 && n <= CR_EVENT_MAX);
    assert_int_equal(buf[n - 1], '\n');
    assert_ptr_equal(strchr(buf, '\n'), buf + n - 1);
    assert_memory_equal(buf, "setup-failed reason=xxx", 23);
    close(p[0]);
    close(p[1]);
}

static void test_event_never_blocks(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe2(p, O_NONBLOCK), 0);
    /* Fill the pipe, then write more: lines are dropped, the call returns. */
    signal(SIGPIPE, SIG_IGN);
    for (int i = 0; i < 100000; i++)
        cr_event(p[1], CR_EVT_STARTED, "pid=%d", i);
    close(p[0]);
    cr_event(p[1], CR_EVT_STARTED, "pid=%d", 1); /* reader gone: EPIPE, no death */
    close(p[1]);
    signal(SIGPIPE, SIG_DFL);
}

/* ---- events: parsing ---------------------------------------------------------------------------- */
static void test_event_parse(void **state)
{
    (void)state;
    struct cr_event_line ev;
    char l1[] = "exited pid=7 signal=TERM runtime_ms=12 core=1";
    assert_int_equal(cr_event_parse(l1, &ev), 0);
    assert_string_equal(ev.event, "exited");
    assert_int_equal(ev.nkeys, 4);
    assert_string_equal(cr_event_get(&ev, "pid"), "7");
    assert_string_equal(cr_event_get(&ev, "signal"), "TERM");
    assert_string_equal(cr_event_get(&ev, "runtime_ms"), "12");
    assert_string_equal(cr_event_get(&ev, "core"), "1");
    assert_null(cr_event_get(&ev, "code"));
    assert_null(ev.reason);

    char l2[] = "setup-failed step=mount reason=mount /data: No such file or directory";
    assert_int_equal(cr_event_parse(l2, &ev), 0);
    assert_string_equal(ev.event, "setup-failed");
    assert_string_equal(cr_event_get(&ev, "step"), "mount");
    assert_string_equal(ev.reason, "mount /data: No such file or directory");

    char l3[] = "ready";
    assert_int_equal(cr_event_parse(l3, &ev), 0);
    assert_string_equal(ev.event, "ready");
    assert_int_equal(ev.nkeys, 0);

    char l4[] = "  started   pid=3  ";
    assert_int_equal(cr_event_parse(l4, &ev), 0);
    assert_string_equal(ev.event, "started");
    assert_string_equal(cr_event_get(&ev, "pid"), "3");

    char l5[] = "exec-failed errno=2 reason=";
    assert_int_equal(cr_event_parse(l5, &ev), 0);
    assert_string_equal(ev.reason, "");

    char l6[] = "x a=b=c";
    assert_int_equal(cr_event_parse(l6, &ev), 0);
    assert_string_equal(cr_event_get(&ev, "a"), "b=c");
}

static void test_event_parse_rejects(void **state)
{
    (void)state;
    struct cr_event_line ev;
    char e1[] = "", e2[] = "   ", e3[] = "exited pid", e4[] = "exited novalue pid=3";
    assert_int_equal(cr_event_parse(e1, &ev), -EINVAL);
    assert_int_equal(cr_event_parse(e2, &ev), -EINVAL);
    assert_int_equal(cr_event_parse(e3, &ev), -EINVAL);
    assert_int_equal(cr_event_parse(e4, &ev), -EINVAL);
    /* More keys than the structure holds. */
    char many[512] = "e";
    for (int i = 0; i < 17; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), " k%d=v", i);
    assert_int_equal(cr_event_parse(many, &ev), -EINVAL);
}

static void test_event_roundtrip(void **state)
{
    (void)state;
    int p[2];
    char buf[CR_EVENT_MAX + 1];
    struct cr_event_line ev;
    assert_int_equal(pipe(p), 0);
    cr_event(p[1], CR_EVT_RESTARTING, "delay_ms=%d attempt=%d", 800, 3);
    int n = read_all(p[0], buf, sizeof buf);
    buf[n - 1] = 0; /* the newline */
    assert_int_equal(cr_event_parse(buf, &ev), 0);
    assert_string_equal(ev.event, "restarting");
    assert_string_equal(cr_event_get(&ev, "delay_ms"), "800");
    assert_string_equal(cr_event_get(&ev, "attempt"), "3");
    close(p[0]);
    close(p[1]);
}

/* Every event of the table: written by init's writer, read back as the same kind by the
 * supervisor's parser; an unknown name reads as -1 (ignored), never as a known kind. */
static void test_event_table_roundtrip(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    for (int k = 0; k < CR_EVT_N; k++) {
        assert_non_null(cr_event_defs[k].name);
        assert_int_equal(cr_event_kind(cr_event_defs[k].name), k);
        cr_event(p[1], (enum cr_event_kind)k, "pid=%d reason=r %d", 7, k);
        char buf[CR_EVENT_MAX + 1];
        ssize_t n = read(p[0], buf, sizeof buf - 1);
        assert_true(n > 0 && buf[n - 1] == '\n');
        buf[n - 1] = 0;
        struct cr_event_line ev;
        assert_int_equal(cr_event_parse(buf, &ev), 0);
        assert_int_equal(ev.kind, k);
        assert_string_equal(ev.event, cr_event_defs[k].name);
        assert_string_equal(cr_event_get(&ev, "pid"), "7");
        for (int j = 0; j < k; j++)
            assert_true(strcmp(cr_event_defs[j].name, cr_event_defs[k].name) != 0);
    }
    char line[] = "restarted-twice pid=1";
    struct cr_event_line ev;
    assert_int_equal(cr_event_parse(line, &ev), 0);
    assert_int_equal(ev.kind, -1);
    assert_int_equal(cr_event_kind("ready-"), -1);
    close(p[0]);
    close(p[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration_units),
        cmocka_unit_test(test_duration_rejects),
        cmocka_unit_test(test_duration_overflow),
        cmocka_unit_test(test_text_escape),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_size_rejects),
        cmocka_unit_test(test_signal_names),
        cmocka_unit_test(test_signal_rejects),
        cmocka_unit_test(test_signal_name_roundtrip),
        cmocka_unit_test(test_bool),
        cmocka_unit_test(test_uint),
        cmocka_unit_test(test_codes),
        cmocka_unit_test(test_event_write),
        cmocka_unit_test(test_event_truncated_to_one_line),
        cmocka_unit_test(test_event_never_blocks),
        cmocka_unit_test(test_event_parse),
        cmocka_unit_test(test_event_parse_rejects),
        cmocka_unit_test(test_event_roundtrip),
        cmocka_unit_test(test_event_table_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
