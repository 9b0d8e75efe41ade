/* Log files written by the writer threads (supervisor/io/logs.c), with a real libuv loop and real
 * files in a temporary directory. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
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

/* The writers on a loop of the test's, the supervisor's own log in dir (alarm: a hang fails) */
static void open_logs(uv_loop_t *loop)
{
    alarm(20);
    assert_int_equal(uv_loop_init(loop), 0);
    assert_int_equal(cr_logs_set_dir(dir), 0);
    assert_int_equal(cr_logs_set_loop(loop), 0);
    cr_log_set_sink(cr_logs_own_write);
    cr_logs_own_open("AUTO", 0, 3);
}

static void close_logs(uv_loop_t *loop)
{
    cr_logs_own_open("NONE", 0, 0);
    cr_logs_finish(5000);
    cr_log_set_sink(NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(loop), 0);
    alarm(0);
}

/* Two rotations asked while the supervisor's own log is being written end in one job; each
 * says "rotated" into that same log, the first handing it over again, the second queued behind
 * that job. It was handed over twice, its second job's buffer overwrote the first's, and the
 * loop then went round its done list for ever (a SIGTERM never answered): alarm() fails it. */
static void test_own_log_rotated_twice_while_busy(void **state)
{
    (void)state;
    uv_loop_t loop;
    open_logs(&loop);

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
    close_logs(&loop);

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

static int threads(void)
{
    FILE *f = fopen("/proc/self/status", "re");
    char line[256];
    int n = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "Threads:", 8))
            n = atoi(line + 8);
    if (f)
        fclose(f);
    return n;
}

static void run_for(uv_loop_t *loop, unsigned ms)
{
    uv_timer_t t;
    uv_timer_init(loop, &t);
    uv_timer_start(&t, on_timeout, ms, 0);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

/* A live re-exec retires the writer threads and waits, the loop running, until none is left
 * in the kernel either (cr_logs_alone): an execve kills and waits for every other thread, and
 * on a virtual machine waking one on another CPU took milliseconds of the gap. Meanwhile
 * lines are written by the caller; once the re-exec is off, threads are made again. */
static void test_retired_writers_end_and_come_back(void **state)
{
    (void)state;
    uv_loop_t loop;
    open_logs(&loop);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/supervisor.log", dir);

    cr_log(NULL, "by a thread");
    run_for(&loop, 300);
    assert_int_equal(count(path, "by a thread\n"), 1);
    assert_true(threads() > 1);
    assert_false(cr_logs_alone());

    cr_logs_retire(true);
    for (int i = 0; i < 2000 && !cr_logs_alone(); i++)
        run_for(&loop, 1);
    assert_true(cr_logs_alone());
    /* joined, each is past its last step but one: gone from the thread count at once */
    int n = threads();
    for (int i = 0; i < 3 && n != 1; i++) {
        usleep(200);
        n = threads();
    }
    assert_int_equal(n, 1);
    cr_log(NULL, "by the caller");   /* written before cr_log returns */
    assert_int_equal(count(path, "by the caller\n"), 1);
    assert_int_equal(threads(), 1);

    cr_logs_retire(false);           /* the re-exec did not happen */
    cr_log(NULL, "by a thread again");
    run_for(&loop, 300);
    assert_int_equal(count(path, "by a thread again\n"), 1);
    assert_true(threads() > 1);
    assert_false(cr_logs_alone());

    close_logs(&loop);
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
        cmocka_unit_test(test_retired_writers_end_and_come_back),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
