/* Log files written by the writer threads (supervisor/io/logs.c), with a real libuv loop and real
 * files in a temporary directory. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "tmpdir.h"
#include "io/logs.h"
#include "log.h"

static int rotated_calls;

static void on_rotated(void *arg, int n)
{
    (void)arg;
    (void)n;
    rotated_calls++;
}

static void on_timeout(uv_timer_t *t)
{
    uv_stop(t->loop);
}

static size_t count(const char *path, const char *needle)
{
    char buf[65536];
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[n > 0 ? n : 0] = 0;
    size_t k = 0;
    for (const char *p = buf; (p = strstr(p, needle)); p += strlen(needle))
        k++;
    return k;
}

/* Two rotations asked while the supervisor's own log is being written end in one job; each
 * says "rotated" into that same log, the first handing it over again, the second queued behind
 * that job. It was handed over twice, its second job's buffer overwrote the first's, and the
 * loop then went round its done list for ever (a SIGTERM never answered): alarm() fails it. */
static void test_own_log_rotated_twice_while_busy(void **state)
{
    (void)state;
    alarm(20);
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(cr_logs_set_dir(dir), 0);
    assert_int_equal(cr_logs_set_loop(&loop), 0);
    cr_log_set_sink(cr_logs_own_write);
    cr_logs_own_open("AUTO", 0, 3);

    uv_timer_t t;
    uv_timer_init(&loop, &t);
    cr_log(NULL, "first line");           /* opened and written: the file is not empty */
    uv_timer_start(&t, on_timeout, 500, 0);
    uv_run(&loop, UV_RUN_DEFAULT);

    cr_logs_hold(true);                   /* the next job waits: rotations come while busy */
    cr_log(NULL, "second line");
    assert_int_equal(cr_logs_rotate_all(on_rotated, NULL), 1);
    assert_int_equal(cr_logs_rotate_all(on_rotated, NULL), 1);
    cr_logs_hold(false);

    uv_timer_start(&t, on_timeout, 1500, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&t, NULL);
    assert_int_equal(rotated_calls, 2);

    cr_log(NULL, "last line");
    cr_logs_own_open("NONE", 0, 0);
    cr_logs_finish(5000);
    cr_log_set_sink(NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&loop), 0);
    alarm(0);

    char path[PATH_MAX];
    size_t rot = 0, last = 0, first = 0, second = 0;
    for (int i = 0; i <= 3; i++) {
        if (i)
            snprintf(path, sizeof path, "%s/supervisor.log.%d", dir, i);
        else
            snprintf(path, sizeof path, "%s/supervisor.log", dir);
        rot += count(path, "rotated 1 log file\n");
        last += count(path, "last line\n");
        first += count(path, "first line\n");
        second += count(path, "second line\n");
    }
    /* every line once, none lost to the overwritten buffer */
    assert_int_equal(first, 1);
    assert_int_equal(second, 1);
    assert_int_equal(rot, 2);
    assert_int_equal(last, 1);
}

static int setup(void **state)
{
    (void)state;
    return tmpdir_make("corral-test-logs");
}

static int teardown(void **state)
{
    (void)state;
    return tmpdir_remove();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_own_log_rotated_twice_while_busy),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
