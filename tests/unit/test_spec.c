/* The spec: write → read round trips, and every way a spec can be malformed. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "spec.h"

static char text[CR_SPEC_MAX + 1];

/* A spec with every field set, and values that inih would mangle if written raw. */
static void full_spec(struct cr_spec *s)
{
    cr_spec_init(s);
    s->name = strdup("web");
    s->hostname = strdup("web-host");
    s->rootfs = strdup("/srv/root fs");
    s->namespaces = CR_NS_DEFAULT | CR_NS_USER;
    s->read_only = true;
    cr_spec_add_bind(s, "/host:with:colons", "/data", true);
    cr_spec_add_bind(s, "/a b", "/c%d", false);
    cr_spec_add_bind(s, "/owned", "/o", true);
    s->binds[2].idmap = true;
    cr_spec_add_bind(s, "/owned2", "/o2", false);
    s->binds[3].idmap = true;
    cr_spec_add_bind(s, "/store/volumes/v", "/v", false);
    s->binds[4].clone = true;
    cr_spec_add_bind(s, "/store/volumes/w", "/w", true);
    s->binds[5].clone = true;
    s->rootfs_idmap = true;
    cr_spec_add_tmpfs(s, "/tmp", 64 << 20);
    cr_spec_add_tmpfs(s, "/run", 0);
    struct cr_devnode fuse = {"/dev/fuse", "/dev/fuse", 'c', 10, 229, 0666};
    struct cr_devnode disk = {"/dev/disk:odd", "/dev/xvdc", 'b', 254, 16, 0660};
    cr_spec_add_device(s, &fuse);
    cr_spec_add_device(s, &disk);
    s->exec = strdup("/bin/busybox");
    cr_spec_add_arg(s, "sh");
    cr_spec_add_arg(s, "-c");
    cr_spec_add_arg(s, "echo a ; echo b # not a comment; 100% \t tab\nnewline");
    cr_spec_add_arg(s, "  leading and trailing  ");
    cr_spec_add_arg(s, "");
    cr_spec_add_arg(s, "#hash");
    cr_spec_add_arg(s, "[bracket]");
    cr_spec_add_arg(s, "key = value : x");
    cr_spec_add_arg(s, "héllo wörld");
    char big[3000];
    for (size_t i = 0; i < sizeof big - 1; i++)
        big[i] = " a;%"[i % 4];
    big[sizeof big - 1] = '\0';
    cr_spec_add_arg(s, big);
    s->directory = strdup("/work dir");
    s->uid = 1000;
    s->gid = 1001;
    cr_spec_add_group(s, 4);
    cr_spec_add_group(s, 27);
    s->umask = 027;
    s->console = true;
    cr_spec_set_env(s, "PATH", "/usr/bin:/bin");
    cr_spec_set_env(s, "HOME", "/home/u");
    cr_spec_set_env(s, "WEIRD", " =;%#\"' ");
    cr_spec_set_env(s, "EMPTY", "");
    s->autorestart = CR_RESTART_ALWAYS;
    memset(&s->exitcodes, 0, sizeof s->exitcodes);
    cr_codeset_add(&s->exitcodes, 0);
    cr_codeset_add(&s->exitcodes, 2);
    cr_codeset_add(&s->exitcodes, 255);
    s->startsecs_ms = 1500;
    s->startretries = 7;
    s->restart_delay_ms = 250;
    s->restart_delay_max_ms = 60000;
    s->restart_reset_after_ms = 5000;
    s->max_restarts = 9;
    s->restart_window_ms = 120000;
    s->stopsignal = 2;
    s->stopwait_ms = 3500;
    s->ready = CR_READY_EXEC;
    cr_spec_add_ready_arg(s, "/bin/sh");
    cr_spec_add_ready_arg(s, "-c");
    cr_spec_add_ready_arg(s, "test -e /tmp/up; echo 100% # ok");
    s->ready_timeout_ms = 4500;
    cr_spec_add_health_arg(s, "wget");
    cr_spec_add_health_arg(s, " -q ");
    s->health_interval_ms = 700;
    s->health_timeout_ms = 300;
    s->health_retries = 5;
    s->health_start_period_ms = 2000;
    s->health_action = CR_HEALTH_STOP;
    s->caps = 0x800405fbULL;
    s->ambient = 1ULL << 10;
    s->no_new_privs = true;
    s->seccomp_fd = 6;
    cr_spec_add_masked(s, "/proc/kcore");
    cr_spec_add_masked(s, "/odd path;%");
    cr_spec_add_masked(s, "/proc/kcore");            /* a repeat is kept once */
    cr_spec_add_readonly(s, "/proc/sys");
}

static void assert_str_or_null(const char *a, const char *b)
{
    if (a || b) {
        assert_non_null(a);
        assert_non_null(b);
        assert_string_equal(a, b);
    }
}

static void assert_same(const struct cr_spec *a, const struct cr_spec *b)
{
    assert_string_equal(a->name, b->name);
    assert_str_or_null(a->hostname, b->hostname);
    assert_str_or_null(a->rootfs, b->rootfs);
    assert_int_equal(a->namespaces, b->namespaces);
    assert_int_equal(a->read_only, b->read_only);
    assert_int_equal(a->rootfs_idmap, b->rootfs_idmap);
    assert_int_equal(a->nbinds, b->nbinds);
    for (size_t i = 0; i < a->nbinds; i++) {
        assert_string_equal(a->binds[i].src, b->binds[i].src);
        assert_string_equal(a->binds[i].dst, b->binds[i].dst);
        assert_int_equal(a->binds[i].ro, b->binds[i].ro);
        assert_int_equal(a->binds[i].idmap, b->binds[i].idmap);
        assert_int_equal(a->binds[i].clone, b->binds[i].clone);
    }
    assert_int_equal(a->ndevices, b->ndevices);
    for (size_t i = 0; i < a->ndevices; i++) {
        assert_string_equal(a->devices[i].host, b->devices[i].host);
        assert_string_equal(a->devices[i].dst, b->devices[i].dst);
        assert_int_equal(a->devices[i].type, b->devices[i].type);
        assert_int_equal(a->devices[i].major, b->devices[i].major);
        assert_int_equal(a->devices[i].minor, b->devices[i].minor);
        assert_int_equal(a->devices[i].mode, b->devices[i].mode);
    }
    assert_int_equal(a->ntmpfs, b->ntmpfs);
    for (size_t i = 0; i < a->ntmpfs; i++) {
        assert_string_equal(a->tmpfs[i].dst, b->tmpfs[i].dst);
        assert_int_equal(a->tmpfs[i].size, b->tmpfs[i].size);
    }
    assert_str_or_null(a->exec, b->exec);
    assert_int_equal(a->argc, b->argc);
    for (size_t i = 0; i < a->argc; i++)
        assert_string_equal(a->argv[i], b->argv[i]);
    assert_null(b->argv[b->argc]);
    assert_str_or_null(a->directory, b->directory);
    assert_int_equal(a->uid, b->uid);
    assert_int_equal(a->gid, b->gid);
    assert_int_equal(a->ngroups, b->ngroups);
    for (size_t i = 0; i < a->ngroups; i++)
        assert_int_equal(a->groups[i], b->groups[i]);
    assert_int_equal(a->umask, b->umask);
    assert_int_equal(a->console, b->console);
    assert_int_equal(a->nenv, b->nenv);
    for (size_t i = 0; i < a->nenv; i++)
        assert_string_equal(a->env[i], b->env[i]);
    if (b->env)
        assert_null(b->env[b->nenv]);
    assert_int_equal(a->autorestart, b->autorestart);
    assert_memory_equal(&a->exitcodes, &b->exitcodes, sizeof a->exitcodes);
    assert_int_equal(a->startsecs_ms, b->startsecs_ms);
    assert_int_equal(a->startretries, b->startretries);
    assert_int_equal(a->restart_delay_ms, b->restart_delay_ms);
    assert_int_equal(a->restart_delay_max_ms, b->restart_delay_max_ms);
    assert_int_equal(a->restart_reset_after_ms, b->restart_reset_after_ms);
    assert_int_equal(a->max_restarts, b->max_restarts);
    assert_int_equal(a->restart_window_ms, b->restart_window_ms);
    assert_int_equal(a->stopsignal, b->stopsignal);
    assert_int_equal(a->stopwait_ms, b->stopwait_ms);
    assert_int_equal(a->caps, b->caps);
    assert_int_equal(a->ambient, b->ambient);
    assert_int_equal(a->no_new_privs, b->no_new_privs);
    assert_int_equal(a->seccomp_fd, b->seccomp_fd);
    assert_int_equal(a->nmasked, b->nmasked);
    for (size_t i = 0; i < a->nmasked; i++)
        assert_string_equal(a->masked[i], b->masked[i]);
    assert_int_equal(a->nreadonly, b->nreadonly);
    for (size_t i = 0; i < a->nreadonly; i++)
        assert_string_equal(a->readonly[i], b->readonly[i]);
    assert_int_equal(a->ready, b->ready);
    assert_int_equal(a->ready_arg, b->ready_arg);
    assert_int_equal(a->ready_argc, b->ready_argc);
    for (size_t i = 0; i < a->ready_argc; i++)
        assert_string_equal(a->ready_argv[i], b->ready_argv[i]);
    if (b->ready_argv)
        assert_null(b->ready_argv[b->ready_argc]);
    assert_int_equal(a->ready_timeout_ms, b->ready_timeout_ms);
    assert_int_equal(a->health_argc, b->health_argc);
    for (size_t i = 0; i < a->health_argc; i++)
        assert_string_equal(a->health_argv[i], b->health_argv[i]);
    if (b->health_argv)
        assert_null(b->health_argv[b->health_argc]);
    assert_int_equal(a->health_interval_ms, b->health_interval_ms);
    assert_int_equal(a->health_timeout_ms, b->health_timeout_ms);
    assert_int_equal(a->health_retries, b->health_retries);
    assert_int_equal(a->health_start_period_ms, b->health_start_period_ms);
    assert_int_equal(a->health_action, b->health_action);
}

static void test_round_trip(void **state)
{
    (void)state;
    struct cr_spec a, b;
    struct cr_errlist errs = {0};
    full_spec(&a);
    ssize_t n = cr_spec_write(&a, text, sizeof text);
    assert_true(n > 0);
    assert_int_equal((size_t)n, strlen(text));
    /* every physical line fits inih r55's buffer */
    for (char *line = text; *line;) {
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        assert_true(nl - line <= CR_INI_LINE_MAX);
        line = nl + 1;
    }
    int r = cr_spec_parse(text, (size_t)n, "spec", &b, &errs);
    for (size_t i = 0; i < errs.n; i++)
        print_error("%s\n", errs.v[i]);
    assert_int_equal(r, 0);
    assert_int_equal(errs.n, 0);
    assert_same(&a, &b);
    /* and written again, it is the same text */
    static char again[CR_SPEC_MAX + 1];
    assert_int_equal(cr_spec_write(&b, again, sizeof again), n);
    assert_string_equal(text, again);
    cr_spec_free(&a);
    cr_spec_free(&b);
}

/* Random values (blanks, '#', '%', ';', control bytes, at every place and around the
 * CHUNK-sized pieces' edges) come back from the text as they went in. */
static void test_round_trip_random(void **state)
{
    (void)state;
    static const char pool[] = " \t#%;:ab/=\x01\xc3";
    static const size_t lens[] = {0, 1, 2, 3, 119, 120, 121, 122, 239, 240, 241, 360, 4096};
    unsigned long long x = 42;
    for (int round = 0; round < 3000; round++) {
        struct cr_spec a, b;
        struct cr_errlist errs = {0};
        cr_spec_init(&a);
        a.name = strdup("t");
        size_t nargs = 1 + round % 4;
        for (size_t i = 0; i < nargs; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            size_t n = lens[x % (sizeof lens / sizeof lens[0])];
            char v[4097];
            for (size_t k = 0; k < n; k++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                /* mostly plain letters, so the plain path runs too */
                v[k] = x % 3 ? "abcdefgh/.-"[x % 11] : pool[(x >> 8) % (sizeof pool - 1)];
            }
            v[n] = '\0';
            assert_int_equal(cr_spec_add_arg(&a, v), 0);
        }
        ssize_t n = cr_spec_write(&a, text, sizeof text);
        assert_true(n > 0);
        assert_int_equal(cr_spec_parse(text, (size_t)n, "spec", &b, &errs), 0);
        assert_int_equal(b.argc, a.argc);
        for (size_t i = 0; i < a.argc; i++)
            assert_string_equal(b.argv[i], a.argv[i]);
        cr_spec_free(&a);
        cr_spec_free(&b);
    }
}

static void test_round_trip_minimal(void **state)
{
    (void)state;
    struct cr_spec a, b;
    struct cr_errlist errs = {0};
    cr_spec_init(&a);
    a.name = strdup("x");
    a.namespaces = CR_NS_PID;
    cr_spec_add_arg(&a, "true");
    ssize_t n = cr_spec_write(&a, text, sizeof text);
    assert_true(n > 0);
    assert_null(strstr(text, "rootfs"));
    assert_null(strstr(text, "umask"));
    assert_null(strstr(text, "console"));   /* written only when set */
    assert_int_equal(cr_spec_parse(text, (size_t)n, "spec", &b, &errs), 0);
    assert_same(&a, &b);
    assert_null(b.rootfs);
    assert_null(b.exec);
    assert_int_equal(b.umask, -1);
    cr_spec_free(&a);
    cr_spec_free(&b);
}

/* Each readiness kind survives the trip; the defaults are what the header says. */
static void test_round_trip_readiness(void **state)
{
    (void)state;
    static const struct { int kind, arg; const char *text; } kinds[] = {
        {CR_READY_NONE, 0, "kind = none\n"}, {CR_READY_NOTIFY, 0, "kind = notify\n"},
        {CR_READY_FD, 3, "kind = fd:3\n"}, {CR_READY_FD, 1023, "kind = fd:1023\n"},
        {CR_READY_TCP, 8080, "kind = tcp:8080\n"},
    };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        struct cr_spec a, b;
        struct cr_errlist errs = {0};
        cr_spec_init(&a);
        assert_int_equal(a.ready_timeout_ms, 90000);
        assert_int_equal(a.health_interval_ms, 30000);
        assert_int_equal(a.health_timeout_ms, 30000);
        assert_int_equal(a.health_retries, 3);
        assert_int_equal(a.health_start_period_ms, 0);
        assert_int_equal(a.health_action, CR_HEALTH_RESTART);
        a.name = strdup("r");
        cr_spec_add_arg(&a, "true");
        a.ready = kinds[i].kind;
        a.ready_arg = kinds[i].arg;
        a.ready_timeout_ms = 0;
        ssize_t n = cr_spec_write(&a, text, sizeof text);
        assert_true(n > 0);
        assert_non_null(strstr(text, kinds[i].text));
        assert_int_equal(cr_spec_parse(text, (size_t)n, "spec", &b, &errs), 0);
        assert_same(&a, &b);
        assert_null(b.health_argv);
        cr_spec_free(&a);
        cr_spec_free(&b);
    }
    /* exec without its probe cannot be written (it could not be read back) */
    struct cr_spec a;
    cr_spec_init(&a);
    a.name = strdup("r");
    cr_spec_add_arg(&a, "true");
    a.ready = CR_READY_EXEC;
    assert_int_equal(cr_spec_write(&a, text, sizeof text), -EINVAL);
    cr_spec_free(&a);
}

static void test_fd_round_trip(void **state)
{
    (void)state;
    struct cr_spec a, b;
    struct cr_errlist errs = {0};
    full_spec(&a);
    char path[] = "/tmp/test_spec.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    assert_int_equal(cr_spec_write_fd(&a, fd), 0);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    assert_int_equal(cr_spec_read_fd(fd, "fd 3", &b, &errs), 0);
    close(fd);
    assert_same(&a, &b);
    cr_spec_free(&a);
    cr_spec_free(&b);
}

static void test_write_limits(void **state)
{
    (void)state;
    struct cr_spec a;
    char small[100];
    full_spec(&a);
    assert_int_equal(cr_spec_write(&a, small, sizeof small), -ENOSPC);
    /* more than CR_SPEC_MAX in total */
    char *item = malloc(4000);
    memset(item, 'x', 3999);
    item[3999] = '\0';
    for (int i = 0; i < 20; i++)
        cr_spec_add_arg(&a, item);
    assert_int_equal(cr_spec_write(&a, text, sizeof text), -ENOSPC);
    cr_spec_free(&a);
    /* an item longer than CR_SPEC_MAX_ITEM, and no argv at all */
    full_spec(&a);
    char *huge = malloc(CR_SPEC_MAX_ITEM + 2);
    memset(huge, 'y', CR_SPEC_MAX_ITEM + 1);
    huge[CR_SPEC_MAX_ITEM + 1] = '\0';
    cr_spec_add_arg(&a, huge);
    assert_int_equal(cr_spec_write(&a, text, sizeof text), -EINVAL);
    cr_spec_free(&a);
    cr_spec_init(&a);
    a.name = strdup("x");
    assert_int_equal(cr_spec_write(&a, text, sizeof text), -EINVAL);
    cr_spec_free(&a);
    free(item);
    free(huge);
}

/* cr_spec_size_bound: never below what cr_spec_write writes (the load skips the write when
 * the bound fits), with every field filled, every exit code, every capability, and items
 * of nothing but escaped bytes (the longest encoding), blanks at every chunk's edges. */
static void test_size_bound(void **state)
{
    (void)state;
    struct cr_spec a;
    full_spec(&a);
    for (int c = 0; c < 256; c++)
        cr_codeset_add(&a.exitcodes, c);
    a.caps = a.ambient = ~0ULL;
    static char big[CR_SPEC_MAX + 1];
    ssize_t n = cr_spec_write(&a, big, sizeof big);
    assert_true(n > 0);
    assert_true(cr_spec_size_bound(&a) >= (size_t)n);
    /* then items of nothing but escaped bytes, 2,000 each, each kind in turn, to the limit:
     * the bound keeps above (one of two bytes per byte fails: tried) */
    static const char *const worst[] = {"%", ";", "\x01", "\x7f"};
    char v[2001];
    for (int round = 0;; round++) {
        memset(v, worst[round % 4][0], 2000);
        v[2000] = '\0';
        if (round % 4 == 0)
            cr_spec_add_arg(&a, v);
        else if (round % 4 == 1)
            cr_spec_set_env(&a, round % 8 == 1 ? "A" : "B", v);
        else if (round % 4 == 2)
            cr_spec_add_masked(&a, v);
        else
            cr_spec_add_bind(&a, v, v, true);
        n = cr_spec_write(&a, big, sizeof big);
        if (n == -ENOSPC)
            break;
        assert_true(n > 0);
        assert_true(cr_spec_size_bound(&a) >= (size_t)n);
    }
    assert_true(cr_spec_size_bound(&a) > CR_SPEC_MAX);
    cr_spec_free(&a);
}

/* cr_spec_add_new_paths: a list's defaults in one go, then (the list not empty) each searched
 * for; the array stays NULL-terminated and grows on as strv_push's doubling expects. */
static void test_add_new_paths(void **state)
{
    (void)state;
    struct cr_spec a;
    cr_spec_init(&a);
    static const char *const defs[] = {"/a", "/b", "/c", "/d", "/e"};
    assert_int_equal(cr_spec_add_new_paths(&a, false, defs, 5), 0);
    assert_int_equal(a.nmasked, 5);
    assert_null(a.masked[5]);
    static const char *const more[] = {"/c", "/f"};
    assert_int_equal(cr_spec_add_new_paths(&a, false, more, 2), 0);
    assert_int_equal(a.nmasked, 6);
    assert_string_equal(a.masked[5], "/f");
    for (int i = 0; i < 20; i++) {
        char p[16];
        snprintf(p, sizeof p, "/x%d", i);
        assert_int_equal(cr_spec_add_masked(&a, p), 0);
    }
    assert_int_equal(a.nmasked, 26);
    assert_null(a.masked[26]);
    assert_string_equal(a.masked[25], "/x19");
    assert_int_equal(cr_spec_add_new_paths(&a, true, defs, 0), 0);
    assert_int_equal(a.nreadonly, 0);
    assert_int_equal(cr_spec_add_new_paths(&a, true, defs, 1), 0);
    assert_int_equal(a.nreadonly, 1);
    assert_null(a.readonly[1]);
    cr_spec_free(&a);
}

/* ---- malformed specs ---------------------------------------------------------------------- */

#define HEAD "[spec]\nversion = 1\nname = t\n[process]\nargv = true\n"

/* Parses t and checks that the errors are exactly the expected ones (NULL-terminated). */
static void expect_errors(const char *t, ...)
{
    struct cr_spec s;
    struct cr_errlist errs = {0};
    int r = cr_spec_parse(t, strlen(t), "spec", &s, &errs);
    va_list ap;
    va_start(ap, t);
    size_t n = 0;
    for (const char *want; (want = va_arg(ap, const char *)); n++) {
        bool found = false;
        for (size_t i = 0; i < errs.n; i++)
            found |= !strcmp(errs.v[i], want);
        if (!found) {
            print_error("missing error: %s\ngot:\n", want);
            for (size_t i = 0; i < errs.n; i++)
                print_error("  %s\n", errs.v[i]);
            fail();
        }
    }
    va_end(ap);
    if (errs.n != n) {
        for (size_t i = 0; i < errs.n; i++)
            print_error("  %s\n", errs.v[i]);
    }
    assert_int_equal(errs.n, n);
    assert_int_equal(r, n ? -EINVAL : 0);
    if (!r)
        cr_spec_free(&s);
    cr_errlist_free(&errs);
}

static void test_valid_minimal(void **state)
{
    (void)state;
    expect_errors(HEAD, NULL);
}

static void test_version(void **state)
{
    (void)state;
    expect_errors("[spec]\nname = t\n[process]\nargv = x\n", "spec: [spec] version is missing",
                  NULL);
    expect_errors("[spec]\nversion = 2\nname = t\n[process]\nargv = x\n",
                  "spec:2: version: '2' is not supported (this init reads 1)", NULL);
    expect_errors("", "spec: [spec] version is missing", NULL);
}

static void test_structure(void **state)
{
    (void)state;
    expect_errors("x = 1\n" HEAD, "spec:1: x: key outside of any section", NULL);
    expect_errors(HEAD "[bogus]\nk = v\n", "spec:6: [bogus]: unknown section", NULL);
    expect_errors(HEAD "bogus = 1\n", "spec:6: bogus: unknown key in [process]", NULL);
    expect_errors(HEAD "[spec]\nhostname = h\n", "spec:7: hostname: unknown key in [spec]", NULL);
    expect_errors(HEAD "uid = 1\nuid = 2\n", "spec:7: uid: given twice (first on line 6)", NULL);
    expect_errors(HEAD "no equals sign\n", "spec:6: expected 'key = value', got 'no equals sign'",
                  NULL);
    expect_errors(HEAD "[container\n", "spec:6: [container: section header without ']'", NULL);
    expect_errors(HEAD "[container\nuid = 1\n", "spec:6: [container: section header without ']'",
                  NULL);
    expect_errors("[spec]\nversion = 1\n[process]\nargv = x\n", "spec: [spec] name is missing",
                  NULL);
    expect_errors("[spec]\nversion = 1\nname = t\n", "spec: [process] argv is missing", NULL);
}

static void test_long_line_and_nul(void **state)
{
    (void)state;
    char t[1024];
    char v[300];
    memset(v, 'a', sizeof v - 1);
    v[sizeof v - 1] = '\0';
    snprintf(t, sizeof t, HEAD "env = A=%s\numask = 022\n", v);
    /* the long line is an error and the lines after it keep their numbers */
    expect_errors(t, "spec:6: line is 307 bytes, longer than 197 (continue it on indented lines)",
                  NULL);
    snprintf(t, sizeof t, HEAD "env = A=%s\numask = 99\n", v);
    expect_errors(t, "spec:6: line is 307 bytes, longer than 197 (continue it on indented lines)",
                  "spec:7: umask: '99' is not an octal umask", NULL);
    static const char with_nul[] = HEAD "env = A=1\0x\ngid = 1\n";
    struct cr_spec s;
    struct cr_errlist errs = {0};
    assert_int_equal(cr_spec_parse(with_nul, sizeof with_nul - 1, "spec", &s, &errs), -EINVAL);
    assert_int_equal(errs.n, 1);
    assert_string_equal(errs.v[0], "spec:6: line holds a NUL byte");
    cr_errlist_free(&errs);
    /* too big */
    char *big = malloc(CR_SPEC_MAX + 10);
    memset(big, '\n', CR_SPEC_MAX + 10);
    assert_int_equal(cr_spec_parse(big, CR_SPEC_MAX + 10, "spec", &s, &errs), -EINVAL);
    assert_string_equal(errs.v[0], "spec: larger than 65536 bytes");
    cr_errlist_free(&errs);
    free(big);
}

static void test_bad_values(void **state)
{
    (void)state;
    expect_errors(HEAD "uid = x\n", "spec:6: uid: 'x' is not a numeric id", NULL);
    expect_errors(HEAD "gid = 4294967296\n", "spec:6: gid: '4294967296' is not a numeric id",
                  NULL);
    expect_errors(HEAD "groups = 1,x\n", "spec:6: groups: 'x' is not a numeric id", NULL);
    expect_errors(HEAD "env = NOEQ\n", "spec:6: env: 'NOEQ' is not NAME=VALUE", NULL);
    expect_errors(HEAD "env = A=1\nenv = A=2\n", "spec:7: env: A set twice", NULL);
    expect_errors(HEAD "umask = 0888\n", "spec:6: umask: '0888' is not an octal umask", NULL);
    expect_errors(HEAD "directory = rel\n", "spec:6: directory: 'rel' is not an absolute path",
                  NULL);
    expect_errors(HEAD "exec = bin/x\n", "spec:6: exec: 'bin/x' is not an absolute path", NULL);
    expect_errors(HEAD "argv = 100%zz\n", "spec:6: argv: bad %-escape (expected %XX)", NULL);
    expect_errors(HEAD "argv = a%00b\n", "spec:6: argv: %00 (a NUL byte) is not allowed", NULL);
    expect_errors(HEAD "[container]\nnamespaces = pid,bogus\n",
                  "spec:7: namespaces: unknown namespace 'bogus'", NULL);
    expect_errors(HEAD "[container]\nread_only = maybe\n",
                  "spec:7: read_only: 'maybe' is not a boolean", NULL);
    expect_errors(HEAD "[container]\nhostname = " "0123456789012345678901234567890123456789"
                  "01234567890123456789012345\n",
                  "spec:7: hostname: '0123456789012345678901234567890123456789"
                  "01234567890123456789012345' is not a hostname of 1 to 64 bytes", NULL);
    expect_errors(HEAD "[container]\nrootfs = relative\n",
                  "spec:7: rootfs: 'relative' is not an absolute path", NULL);
    expect_errors(HEAD "[container]\nbind = /a\n",
                  "spec:7: bind: expected SRC:DST[:ro|rw|idmap|ro,idmap][,clone]", NULL);
    expect_errors(HEAD "[container]\nbind = /a:/b:clone,ro\n",
                  "spec:7: bind: expected SRC:DST[:ro|rw|idmap|ro,idmap][,clone]", NULL);
    /* idmap only with a user namespace (the supervisor passes its mounts then) */
    expect_errors(HEAD "[container]\nbind = /a:/b:idmap\n",
                  "spec: [container]: idmap binds and rootfs_idmap need the user namespace", NULL);
    expect_errors(HEAD "[container]\nrootfs_idmap = true\n",
                  "spec: [container]: idmap binds and rootfs_idmap need the user namespace", NULL);
    static const char *const bad_opts[] = {"rx", "ro,ro", "ro,rw", "idmap,idmap", "ro,", ",ro",
                                           "idmap,", "ro,,idmap"};
    for (size_t i = 0; i < sizeof bad_opts / sizeof bad_opts[0]; i++) {
        char t[256], want[128];
        snprintf(t, sizeof t, HEAD "[container]\nbind = /a:/b:%s\n", bad_opts[i]);
        snprintf(want, sizeof want,
                 "spec:7: bind: expected SRC:DST[:ro|rw|idmap|ro,idmap][,clone]");
        expect_errors(t, want, NULL);
    }
    expect_errors(HEAD "[container]\ndevice = /dev/fuse:/dev/fuse:c:10:229\n",
                  "spec:7: device: expected HOST:DST:c|b:MAJOR:MINOR:MODE", NULL);
    expect_errors(HEAD "[container]\ndevice = /dev/fuse:/etc/fuse:c:10:229:0666\n",
                  "spec:7: device: HOST must be an absolute path, DST a path below /dev", NULL);
    expect_errors(HEAD "[container]\ndevice = /dev/fuse:/dev/fuse:c:10:229:0999\n",
                  "spec:7: device: '0999' is not an octal mode", NULL);
    expect_errors(HEAD "[security]\ncapabilities = 12\n",
                  "spec:7: capabilities: '12' is not a 64-bit hex mask (0x...)", NULL);
    expect_errors(HEAD "[security]\nambient = 0x1ffffffffffffffff\n",
                  "spec:7: ambient: '0x1ffffffffffffffff' is not a 64-bit hex mask (0x...)", NULL);
    expect_errors(HEAD "[security]\nseccomp_fd = 2\n",
                  "spec:7: seccomp_fd: '2' is not a file descriptor from 3 to 1023", NULL);
    expect_errors(HEAD "[security]\nmasked = proc\n",
                  "spec:7: masked: 'proc' is not an absolute path", NULL);
    expect_errors(HEAD "[security]\ncapabilities = 0x1\nambient = 0x2\n",
                  "spec: [security]: ambient holds capabilities outside capabilities", NULL);
    expect_errors(HEAD "[container]\nbind = /a:/b:rx\n",
                  "spec:7: bind: expected SRC:DST[:ro|rw|idmap|ro,idmap][,clone]", NULL);
    expect_errors(HEAD "[container]\nbind = /a:/b:clone,ro\n",
                  "spec:7: bind: expected SRC:DST[:ro|rw|idmap|ro,idmap][,clone]", NULL);
    expect_errors(HEAD "[container]\nbind = /a:/b:ro:x\n", "spec:7: bind: too many ':' fields",
                  NULL);
    expect_errors(HEAD "[container]\nbind = a:/b\n",
                  "spec:7: bind: source and destination must be absolute paths", NULL);
    expect_errors(HEAD "[container]\ntmpfs = /t:lots\n", "spec:7: tmpfs: expected DST[:SIZE]",
                  NULL);
    expect_errors(HEAD "[container]\ntmpfs = t\n",
                  "spec:7: tmpfs: destination must be an absolute path", NULL);
    expect_errors(HEAD "[lifecycle]\nautorestart = maybe\n",
                  "spec:7: autorestart: 'maybe' is not false, unexpected or true", NULL);
    expect_errors(HEAD "[lifecycle]\nexitcodes = 0,300\n",
                  "spec:7: exitcodes: '0,300' is not a list of exit codes 0-255", NULL);
    expect_errors(HEAD "[lifecycle]\nstartsecs = soon\n",
                  "spec:7: startsecs: 'soon' is not a duration", NULL);
    expect_errors(HEAD "[lifecycle]\nstartretries = -1\n",
                  "spec:7: startretries: '-1' is not a number from 0 to 1000000", NULL);
    expect_errors(HEAD "[lifecycle]\nstopsignal = SIGFOO\n",
                  "spec:7: stopsignal: 'SIGFOO' is not a signal", NULL);
    expect_errors(HEAD "[readiness]\nkind = fd:2\n",
                  "spec:7: kind: 'fd:2' is not none, notify, fd:N, tcp:PORT or exec", NULL);
    expect_errors(HEAD "[readiness]\nkind = tcp:65536\n",
                  "spec:7: kind: 'tcp:65536' is not none, notify, fd:N, tcp:PORT or exec", NULL);
    expect_errors(HEAD "[readiness]\nkind = exec:true\n",
                  "spec:7: kind: 'exec:true' is not none, notify, fd:N, tcp:PORT or exec", NULL);
    expect_errors(HEAD "[readiness]\nkind = exec\n",
                  "spec: [readiness]: argv goes with kind = exec, and only with it", NULL);
    expect_errors(HEAD "[readiness]\nargv = x\n",
                  "spec: [readiness]: argv goes with kind = exec, and only with it", NULL);
    expect_errors(HEAD "[readiness]\ntimeout = never\n",
                  "spec:7: timeout: 'never' is not a duration", NULL);
    expect_errors(HEAD "[health]\naction = reboot\n",
                  "spec:7: action: 'reboot' is not restart, stop or none", NULL);
    expect_errors(HEAD "[health]\nretries = x\n",
                  "spec:7: retries: 'x' is not a number from 0 to 1000000", NULL);
    expect_errors(HEAD "[health]\nkind = notify\n", "spec:7: kind: unknown key in [health]",
                  NULL);
    expect_errors(HEAD "[container]\nnamespaces = pid\nbind = /a:/b\n",
                  "spec: [container]: rootfs, bind, tmpfs, device and read_only need the mount "
                  "namespace",
                  NULL);
}

static void test_all_errors_reported(void **state)
{
    (void)state;
    expect_errors(HEAD "uid = x\ngid = y\n[lifecycle]\nstopsignal = NOPE\n[nope]\n",
                  "spec:6: uid: 'x' is not a numeric id", "spec:7: gid: 'y' is not a numeric id",
                  "spec:9: stopsignal: 'NOPE' is not a signal", "spec:10: [nope]: unknown section",
                  NULL);
}

static void test_continuation(void **state)
{
    (void)state;
    struct cr_spec s;
    struct cr_errlist errs = {0};
    const char *t = HEAD "argv = abc\n  def%20\n  ghi\nenv = A=1\n  23\n";
    assert_int_equal(cr_spec_parse(t, strlen(t), "spec", &s, &errs), 0);
    assert_int_equal(s.argc, 2);
    assert_string_equal(s.argv[1], "abcdef ghi");
    assert_string_equal(s.env[0], "A=123");
    cr_spec_free(&s);
}

static void test_helpers(void **state)
{
    (void)state;
    unsigned ns;
    const char *bad;
    char buf[128];
    assert_int_equal(cr_ns_parse("pid, mnt,network user", &ns, &bad), 0);
    assert_int_equal(ns, CR_NS_PID | CR_NS_MOUNT | CR_NS_NET | CR_NS_USER);
    cr_ns_format(ns, buf, sizeof buf);
    assert_string_equal(buf, "pid,mount,net,user");
    assert_int_equal(cr_ns_parse("pid,time", &ns, &bad), -EINVAL);
    assert_string_equal(bad, "time");
    assert_int_equal(cr_restart_parse("on-failure"), CR_RESTART_UNEXPECTED);
    assert_int_equal(cr_restart_parse("ALWAYS"), CR_RESTART_ALWAYS);
    assert_int_equal(cr_restart_parse("no"), CR_RESTART_NEVER);
    assert_int_equal(cr_restart_parse("sometimes"), -EINVAL);
    int arg;
    const char *cmd;
    assert_int_equal(cr_ready_parse("NOTIFY", &arg, &cmd), CR_READY_NOTIFY);
    assert_int_equal(cr_ready_parse("fd:7", &arg, &cmd), CR_READY_FD);
    assert_int_equal(arg, 7);
    assert_int_equal(cr_ready_parse("tcp:1", &arg, &cmd), CR_READY_TCP);
    assert_int_equal(arg, 1);
    assert_int_equal(cr_ready_parse("exec:pg_isready -q", &arg, &cmd), CR_READY_EXEC);
    assert_string_equal(cmd, "pg_isready -q");
    assert_int_equal(cr_ready_parse("fd:x", &arg, &cmd), -EINVAL);
    assert_int_equal(cr_ready_parse("tcp:0", &arg, &cmd), -EINVAL);
    assert_int_equal(cr_ready_parse("socket", &arg, &cmd), -EINVAL);
    cr_ready_format(CR_READY_TCP, 443, buf, sizeof buf);
    assert_string_equal(buf, "tcp:443");
    assert_int_equal(cr_health_action_parse("Stop"), CR_HEALTH_STOP);
    assert_int_equal(cr_health_action_parse("kill"), -EINVAL);
    assert_string_equal(cr_health_action_name(CR_HEALTH_NONE), "none");
    struct cr_spec s;
    cr_spec_init(&s);
    cr_spec_set_env(&s, "A", "1");
    cr_spec_set_env(&s, "B", "2");
    cr_spec_set_env(&s, "A", "3");
    assert_int_equal(s.nenv, 2);
    assert_string_equal(cr_spec_get_env(&s, "A"), "3");
    assert_null(cr_spec_get_env(&s, "AB"));
    cr_spec_add_group(&s, 5);
    cr_spec_add_group(&s, 5);
    assert_int_equal(s.ngroups, 1);
    cr_spec_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_round_trip_minimal),
        cmocka_unit_test(test_round_trip_random),
        cmocka_unit_test(test_round_trip_readiness),
        cmocka_unit_test(test_fd_round_trip),
        cmocka_unit_test(test_write_limits),
        cmocka_unit_test(test_size_bound),
        cmocka_unit_test(test_add_new_paths),
        cmocka_unit_test(test_valid_minimal),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_structure),
        cmocka_unit_test(test_long_line_and_nul),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_all_errors_reported),
        cmocka_unit_test(test_continuation),
        cmocka_unit_test(test_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
