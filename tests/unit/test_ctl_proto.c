/* Unit tests for the control protocol (shared/ctl_proto.c) — including a fuzz run of random
 * and mutated input through the line splitter and both parsers, under ASan/UBSan — and for
 * the crash history's line ring and summary (supervisor/service/history.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "ctl_proto.h"
#include "service/history.h"
#include "service/internal.h"
#include "service/service.h"

/* ---- requests ------------------------------------------------------------------------------- */

static int parse(const char *text, struct cr_ctl_req *rq, char *buf, size_t cap)
{
    size_t n = strlen(text);
    assert_true(n < cap);
    memcpy(buf, text, n + 1);
    const char *why = NULL;
    int r = cr_ctl_parse_request(buf, n, rq, &why);
    if (r)
        assert_non_null(why);
    return r;
}

static void test_request_valid(void **state)
{
    (void)state;
    char buf[CR_CTL_LINE_MAX];
    struct cr_ctl_req rq;
    assert_int_equal(parse("status", &rq, buf, sizeof buf), 0);
    assert_int_equal(rq.verb, CR_CTL_STATUS);
    assert_int_equal(rq.argc, 0);
    assert_int_equal(parse("  status\tweb   db  ", &rq, buf, sizeof buf), 0);
    assert_int_equal(rq.argc, 2);
    assert_string_equal(rq.argv[0], "web");
    assert_string_equal(rq.argv[1], "db");
    assert_int_equal(parse("signal HUP web\r", &rq, buf, sizeof buf), 0);   /* CRLF client */
    assert_int_equal(rq.verb, CR_CTL_SIGNAL);
    assert_string_equal(rq.argv[1], "web");
    assert_int_equal(parse("logs web 20 follow", &rq, buf, sizeof buf), 0);
    assert_int_equal(rq.argc, 3);
    assert_int_equal(parse("hello 1", &rq, buf, sizeof buf), 0);
    assert_int_equal(parse("shutdown", &rq, buf, sizeof buf), 0);
    assert_int_equal(rq.verb, CR_CTL_SHUTDOWN);
    assert_int_equal(parse("net-connect web 10 11 corral default front", &rq, buf, sizeof buf),
                     0);
    assert_int_equal(rq.verb, CR_CTL_NET_CONNECT);
    assert_int_equal(rq.argc, 6);
    for (int v = 0; v < CR_CTL_NVERBS; v++)
        assert_string_not_equal(cr_ctl_verb_name((enum cr_ctl_verb)v), "?");
}

static void test_request_invalid(void **state)
{
    (void)state;
    char buf[CR_CTL_LINE_MAX];
    struct cr_ctl_req rq;
    static const char *const bad[] = {
        "", "   ", "bogus", "STATUS", "start", "stop", "signal HUP", "history", "history a b",
        "logs", "logs a 1 follow extra", "reload now", "shutdown please", "hello", "net-connect web 10 11 corral",
        "status w\x01", "status w\x7f", "status caf\xc3\xa9", "status a\vb",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int r = parse(bad[i], &rq, buf, sizeof buf);
        if (r != CR_CTL_E_USAGE)
            fail_msg("'%s': %d, want usage", bad[i], r);
    }
    /* 65 names: one too many. */
    char line[CR_CTL_LINE_MAX] = "status";
    for (int i = 0; i < CR_CTL_ARGS_MAX + 1; i++)
        strcat(line, " a");
    assert_int_equal(parse(line, &rq, buf, sizeof buf), CR_CTL_E_USAGE);
    line[strlen(line) - 2] = 0;
    assert_int_equal(parse(line, &rq, buf, sizeof buf), 0);
    assert_int_equal(rq.argc, CR_CTL_ARGS_MAX);
}

static void test_errors_and_exit_codes(void **state)
{
    (void)state;
    for (int e = 0; e < CR_CTL_NERRS; e++)
        assert_int_equal(cr_ctl_err_parse(cr_ctl_err_name((enum cr_ctl_err)e)), e);
    assert_int_equal(cr_ctl_err_parse("nonsense"), -1);
    assert_int_equal(cr_ctl_err_exit(CR_CTL_E_NOSUCH), CR_CTL_EXIT_NOSUCH);
    assert_int_equal(cr_ctl_err_exit(CR_CTL_E_USAGE), CR_CTL_EXIT_USAGE);
    assert_int_equal(cr_ctl_err_exit(CR_CTL_E_CONFIG), CR_CTL_EXIT_CONFIG);
    assert_int_equal(cr_ctl_err_exit(-1), CR_CTL_EXIT_FAILED);
    assert_int_equal(cr_ctl_err_exit(1000), CR_CTL_EXIT_FAILED);
}

/* ---- the line splitter ----------------------------------------------------------------------- */

struct collected {
    char lines[16][64];
    int n;
    int stop_after;
};

static int collect(void *arg, char *line, size_t len)
{
    struct collected *c = arg;
    assert_int_equal(strlen(line), len);
    if (c->n < 16)
        snprintf(c->lines[c->n], 64, "%s", line);
    c->n++;
    return c->stop_after && c->n >= c->stop_after;
}

static void test_lines_feed(void **state)
{
    (void)state;
    char buf[16];
    struct cr_ctl_lines lb = {buf, sizeof buf, 0};
    struct collected c = {0};
    size_t used;
    /* Split anywhere, byte by byte. */
    const char *in = "status\nstart web\n\nst";
    for (const char *p = in; *p; p++)
        assert_int_equal(cr_ctl_lines_feed(&lb, p, 1, collect, &c, &used), 0);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.lines[0], "status");
    assert_string_equal(c.lines[1], "start web");
    assert_string_equal(c.lines[2], "");
    assert_int_equal(lb.len, 2);
    assert_int_equal(cr_ctl_lines_feed(&lb, "op x\n", 5, collect, &c, &used), 0);
    assert_string_equal(c.lines[3], "stop x");
    /* 15 bytes + newline fits exactly (cap 16 holds 15 and the NUL); 16 does not. */
    assert_int_equal(cr_ctl_lines_feed(&lb, "123456789012345\n", 16, collect, &c, &used), 0);
    assert_string_equal(c.lines[4], "123456789012345");
    assert_int_equal(cr_ctl_lines_feed(&lb, "1234567890123456\n", 17, collect, &c, &used),
                     -E2BIG);
    assert_int_equal(lb.len, 0);
    /* A callback that stops leaves the rest unread. */
    struct collected d = {.stop_after = 1};
    assert_int_equal(cr_ctl_lines_feed(&lb, "a\nb\n", 4, collect, &d, &used), 1);
    assert_int_equal(used, 2);
    assert_int_equal(d.n, 1);
}

/* ---- encoding and responses ------------------------------------------------------------------- */

static void test_encode_decode(void **state)
{
    (void)state;
    char enc[64], dec[64];
    cr_ctl_encode(enc, sizeof enc, "a b=c%d\n\xff", 9);
    assert_string_equal(enc, "a%20b%3Dc%25d%0A%FF");
    strcpy(dec, enc);
    assert_int_equal(cr_ctl_decode(dec), 9);
    assert_memory_equal(dec, "a b=c%d\n\xff", 9);
    /* Truncation keeps whole escapes. */
    char small[5];
    assert_int_equal(cr_ctl_encode(small, sizeof small, "ab cd", 5), 2);
    assert_string_equal(small, "ab");
    strcpy(dec, "bad%2");
    assert_int_equal(cr_ctl_decode(dec), -1);
    strcpy(dec, "bad%zz");
    assert_int_equal(cr_ctl_decode(dec), -1);
    strcpy(dec, "%");
    assert_int_equal(cr_ctl_decode(dec), -1);
}

static void test_responses(void **state)
{
    (void)state;
    struct cr_ctl_resp r;
    char l1[] = "rec name=web state=RUNNING summary=2%20exits";
    assert_int_equal(cr_ctl_parse_response(l1, &r), 0);
    assert_int_equal(r.kind, CR_CTL_R_REC);
    assert_string_equal(cr_ctl_get(&r, "name"), "web");
    assert_string_equal(cr_ctl_get(&r, "summary"), "2 exits");
    assert_null(cr_ctl_get(&r, "pid"));
    char l2[] = "error nosuch no such service: x";
    assert_int_equal(cr_ctl_parse_response(l2, &r), 0);
    assert_int_equal(r.kind, CR_CTL_R_ERROR);
    assert_int_equal(r.err, CR_CTL_E_NOSUCH);
    assert_string_equal(r.text, "no such service: x");
    char l3[] = "ok";
    assert_int_equal(cr_ctl_parse_response(l3, &r), 0);
    assert_int_equal(r.kind, CR_CTL_R_OK);
    assert_string_equal(r.text, "");
    char l4[] = "line  two spaces";
    assert_int_equal(cr_ctl_parse_response(l4, &r), 0);
    assert_string_equal(r.text, " two spaces");
    char l5[] = "future thing";
    assert_int_equal(cr_ctl_parse_response(l5, &r), 0);
    assert_int_equal(r.kind, CR_CTL_R_OTHER);
    char bad1[] = "rec novalue", bad2[] = "rec =x", bad3[] = "rec a=%g0", bad4[] = "error";
    assert_int_equal(cr_ctl_parse_response(bad1, &r), -1);
    assert_int_equal(cr_ctl_parse_response(bad2, &r), -1);
    assert_int_equal(cr_ctl_parse_response(bad3, &r), -1);
    assert_int_equal(cr_ctl_parse_response(bad4, &r), -1);
}

/* ---- fuzz ------------------------------------------------------------------------------------ */

static uint64_t rnd_state;
static uint64_t rnd(void)
{
    rnd_state ^= rnd_state >> 12;
    rnd_state ^= rnd_state << 25;
    rnd_state ^= rnd_state >> 27;
    return rnd_state * 0x2545F4914F6CDD1DULL;
}

struct fuzz_ctx {
    size_t lines, ok;
};

static int fuzz_line(void *arg, char *line, size_t len)
{
    struct fuzz_ctx *f = arg;
    f->lines++;
    assert_true(len < CR_CTL_LINE_MAX);
    struct cr_ctl_req rq;
    const char *why = NULL;
    int r = cr_ctl_parse_request(line, len, &rq, &why);
    if (r == 0) {
        f->ok++;
        assert_true(rq.verb < CR_CTL_NVERBS);
        assert_true(rq.argc >= 0 && rq.argc <= CR_CTL_ARGS_MAX);
        for (int i = 0; i < rq.argc; i++) {
            /* Every word lies inside the line, is non-empty and printable. */
            assert_true(rq.argv[i] >= line && rq.argv[i] < line + len);
            assert_true(strlen(rq.argv[i]) > 0);
            for (const char *p = rq.argv[i]; *p; p++)
                assert_true(*p > 0x20 && *p < 0x7f);
        }
    } else {
        assert_true(r > 0 && r < CR_CTL_NERRS);
        assert_non_null(why);
    }
    /* The same bytes as a response line must not hurt the client's parser either. */
    char copy[CR_CTL_LINE_MAX];
    memcpy(copy, line, len + 1);
    struct cr_ctl_resp resp;
    if (cr_ctl_parse_response(copy, &resp) == 0 && resp.kind == CR_CTL_R_REC)
        assert_true(resp.nkv <= CR_CTL_KV_MAX);
    return 0;
}

static const char *const seeds[] = {
    "status web db\n", "signal TERM web\n", "logs web 20 follow\n", "hello 1\n", "reload\n",
    "rec name=a%20b state=RUNNING\n", "error nosuch x\n", "history web\n", "start a b c\n",
};

static void test_fuzz(void **state)
{
    (void)state;
    rnd_state = (uint64_t)time(NULL) | 1;
    const char *env = getenv("CTL_FUZZ_SEED");
    if (env)
        rnd_state = strtoull(env, NULL, 0) | 1;
    uint64_t seed = rnd_state;
    const int rounds = getenv("CTL_FUZZ_ROUNDS") ? atoi(getenv("CTL_FUZZ_ROUNDS")) : 1000000;
    char *buf = malloc(CR_CTL_LINE_MAX);
    assert_non_null(buf);
    struct cr_ctl_lines lb = {buf, CR_CTL_LINE_MAX, 0};
    struct fuzz_ctx f = {0};
    size_t toolong = 0;
    for (int i = 0; i < rounds; i++) {
        /* Exactly-sized heap input: ASan sees any read past its end. */
        size_t n;
        char *in;
        int kind = (int)(rnd() % 4);
        if (kind == 0) {
            n = (size_t)(rnd() % 64);
            in = malloc(n ? n : 1);
            for (size_t k = 0; k < n; k++)
                in[k] = (char)rnd();
        } else if (kind == 1) {
            /* A valid seed, mutated. */
            const char *s = seeds[rnd() % (sizeof seeds / sizeof seeds[0])];
            n = strlen(s);
            in = malloc(n);
            memcpy(in, s, n);
            for (int m = (int)(rnd() % 4); m > 0; m--)
                in[rnd() % n] = (char)(rnd() % 3 ? (int)(rnd() % 128) : (int)rnd());
        } else if (kind == 2) {
            /* Words and separators from the protocol's own alphabet. */
            static const char *const parts[] = {"status", "signal", "logs", "follow", " ",
                                                "\t", "\n", "\r", "%", "=", "%41", "web",
                                                "999999999999", "-1", "ok", "error", "rec"};
            n = 0;
            in = malloc(512);
            for (int w = (int)(rnd() % 40); w > 0; w--) {
                const char *p = parts[rnd() % (sizeof parts / sizeof parts[0])];
                size_t pl = strlen(p);
                if (n + pl > 512)
                    break;
                memcpy(in + n, p, pl);
                n += pl;
            }
        } else {
            /* Long runs: lines near and over the limit. */
            n = CR_CTL_LINE_MAX - 8 + (size_t)(rnd() % 16);
            in = malloc(n);
            memset(in, rnd() % 2 ? 'a' : ' ', n);
            if (rnd() % 2)
                in[n - 1] = '\n';
        }
        /* Fed in random pieces, as a socket would deliver it. */
        size_t off = 0;
        while (off < n) {
            size_t piece = 1 + (size_t)(rnd() % (n - off));
            size_t used;
            int r = cr_ctl_lines_feed(&lb, in + off, piece, fuzz_line, &f, &used);
            assert_true(used <= piece);
            if (r == -E2BIG)
                toolong++;
            else
                assert_int_equal(r, 0);
            off += piece;
            assert_true(lb.len < lb.cap);
        }
        free(in);
    }
    free(buf);
    print_message("fuzz: seed %#llx, %d inputs, %zu lines, %zu valid requests, %zu too long\n",
                  (unsigned long long)seed, rounds, f.lines, f.ok, toolong);
    assert_true(f.lines > 1000);
    assert_true(f.ok > 100);
    assert_true(toolong > 0);
}

/* ---- history --------------------------------------------------------------------------------- */

static void collect_tail(void *arg, const char *line)
{
    struct collected *c = arg;
    if (c->n < 16)
        snprintf(c->lines[c->n], 64, "%s", line);
    c->n++;
}

/* What container.c does when init says `started`. */
static void workload_started(struct cr_svc *svc)
{
    svc->wl = (struct cr_workload){.up = true, .started_mono = cr_hist_now_mono()};
}

static void test_history_lines_and_summary(void **state)
{
    (void)state;
    struct cr_svc *svc = calloc(1, sizeof *svc);
    assert_non_null(svc);
    svc->hist = cr_hist_new();
    assert_non_null(svc->hist);
    /* One chunk of 30 lines: only the last 20 are kept. */
    char chunk[400] = "";
    for (int i = 0; i < 30; i++)
        sprintf(chunk + strlen(chunk), "l%d\n", i);
    cr_hist_line(svc, chunk, strlen(chunk));
    assert_int_equal(svc->hist->nlines, CR_HIST_LINES);
    cr_hist_line(svc, "partial", 7);   /* no newline: still a line */
    cr_hist_line(svc, "crlf\r\n", 6);
    struct collected c = {0};
    cr_hist_tail(svc->hist, 3, collect_tail, &c);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.lines[0], "l29");
    assert_string_equal(c.lines[1], "partial");
    assert_string_equal(c.lines[2], "crlf");

    /* Three quick exits: a crash loop, explained in one line. */
    workload_started(svc);
    cr_hist_exited(svc, "1", NULL, "400", -1);
    workload_started(svc);
    cr_hist_line(svc, "dying\n", 6);
    cr_hist_exited(svc, NULL, "KILL", "1200", -1);
    const struct cr_exit *e = cr_hist_last(svc->hist);
    assert_non_null(e);
    assert_int_equal(e->sig, 9);
    assert_string_equal(e->lines, "dying\n");   /* only what it wrote since the last exit */
    workload_started(svc);
    cr_hist_exited(svc, "1", NULL, "400", -1);
    assert_null(cr_hist_last(svc->hist)->lines);
    char sum[256];
    cr_hist_summary(svc->hist, 60000, 16000, sum, sizeof sum);
    assert_non_null(strstr(sum, "3 exits in "));
    assert_non_null(strstr(sum, "last: exit 1 after 0.4 s, next try in 16 s"));
    cr_hist_summary(svc->hist, 60000, -1, sum, sizeof sum);
    assert_null(strstr(sum, "next try"));
    char what[64];
    cr_exit_describe(cr_hist_at(svc->hist, 1), what, sizeof what);
    assert_string_equal(what, "signal KILL");
    /* The ring keeps the last CR_HIST_EXITS. */
    for (int i = 0; i < 25; i++)
        cr_hist_exited(svc, "2", NULL, "5", -1);
    assert_int_equal(cr_hist_count(svc->hist), CR_HIST_EXITS);
    assert_int_equal(svc->hist->nexits, 28);
    cr_hist_free(svc->hist);
    free(svc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_valid),
        cmocka_unit_test(test_request_invalid),
        cmocka_unit_test(test_errors_and_exit_codes),
        cmocka_unit_test(test_lines_feed),
        cmocka_unit_test(test_encode_decode),
        cmocka_unit_test(test_responses),
        cmocka_unit_test(test_fuzz),
        cmocka_unit_test(test_history_lines_and_summary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
