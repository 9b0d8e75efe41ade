/* Unit tests for shared/restart.c: the one restart policy of init and the supervisor (the
 * delay with its floor, the doubling and its cap, jitter, the reset, the window). Each test is
 * a table: one row per case, its inputs and what must come out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "restart.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void test_backoff(void **state)
{
    (void)state;
    static const struct {
        int64_t delay, max;
        unsigned attempt;
        int64_t want;
    } rows[] = {
        /* restart_delay 0 (the default): at once, then the 100 ms floor, doubling */
        {0, 30000, 1, 0},       {0, 30000, 2, 200},     {0, 30000, 3, 400},
        {0, 30000, 4, 800},     {0, 30000, 10, 30000},  {0, 30000, 1000, 30000},
        /* under the floor: the floor wins from the second restart on */
        {50, 30000, 1, 50},     {50, 30000, 2, 200},
        /* above it: the configured delay, doubling */
        {1000, 30000, 1, 1000}, {1000, 30000, 2, 2000}, {1000, 30000, 3, 4000},
        {1000, 30000, 6, 30000},
        /* the cap, also when it is below the floor's doubling */
        {200, 300, 2, 300},     {0, 150, 2, 150},       {0, 0, 5, 0},
        /* attempt 0 is taken as the first */
        {700, 30000, 0, 700},
    };
    for (size_t i = 0; i < N(rows); i++) {
        struct cr_restart_policy p = {.delay_ms = rows[i].delay, .delay_max_ms = rows[i].max};
        int64_t got = cr_restart_backoff(&p, rows[i].attempt);
        if (got != rows[i].want)
            fail_msg("row %zu: delay %lld max %lld attempt %u: %lld, want %lld", i,
                     (long long)rows[i].delay, (long long)rows[i].max, rows[i].attempt,
                     (long long)got, (long long)rows[i].want);
    }
}

static void test_jitter(void **state)
{
    (void)state;
    static const struct {
        int64_t d;
        uint64_t rnd;
        int64_t want;
    } rows[] = {
        {1000, 0, 1000}, {1000, 999, 801}, {1000, 500, 900}, {1000, 1999, 801},
        {0, 123, 0},     {4, 999, 4},      {100, 999, 81},   {30000, 250, 28500},
    };
    for (size_t i = 0; i < N(rows); i++) {
        int64_t got = cr_restart_jitter(rows[i].d, rows[i].rnd);
        if (got != rows[i].want)
            fail_msg("row %zu: jitter(%lld, %llu) = %lld, want %lld", i, (long long)rows[i].d,
                     (unsigned long long)rows[i].rnd, (long long)got, (long long)rows[i].want);
    }
    /* Never longer than configured, never shorter than 80 % of it. */
    uint64_t st = 1;
    for (int i = 0; i < 10000; i++) {
        int64_t d = cr_restart_jitter(5000, cr_restart_random(&st));
        assert_true(d <= 5000 && d >= 4000);
    }
}

static void test_next_attempt(void **state)
{
    (void)state;
    static const struct {
        unsigned attempt;
        int64_t ran, reset_after;
        unsigned want;
    } rows[] = {
        {0, 0, 10000, 1},     {1, 50, 10000, 2},     {5, 9999, 10000, 6},
        {5, 10000, 10000, 1}, {9, 60000, 10000, 1},  {3, 0, 0, 1},
    };
    for (size_t i = 0; i < N(rows); i++) {
        struct cr_restart_policy p = {.reset_after_ms = rows[i].reset_after};
        unsigned got = cr_restart_next_attempt(&p, rows[i].attempt, rows[i].ran);
        if (got != rows[i].want)
            fail_msg("row %zu: attempt %u after %lld ms (reset %lld): %u, want %u", i,
                     rows[i].attempt, (long long)rows[i].ran, (long long)rows[i].reset_after,
                     got, rows[i].want);
    }
}

/* Restarts at the given times, then: may one more come at `now`? */
static void test_window(void **state)
{
    (void)state;
    static const struct {
        unsigned max;
        int64_t window;
        int64_t at[6];
        unsigned n;
        int64_t now;
        bool want;
    } rows[] = {
        {0, 60000, {0, 1, 2, 3, 4, 5}, 6, 6, false},          /* 0: no limit */
        {3, 60000, {0, 10}, 2, 20, false},                   /* fewer than max so far */
        {3, 60000, {0, 10, 20}, 3, 30, true},                /* max within the window */
        {3, 60000, {0, 10, 20}, 3, 60000, false},            /* the oldest left it */
        {3, 60000, {0, 10, 20}, 3, 59999, true},
        {3, 60000, {0, 10, 20, 70000}, 4, 70010, false},     /* the ring forgets the oldest */
        {3, 60000, {0, 10, 20, 70000, 70005, 70010}, 6, 70020, true},
        {2, 0, {0, 100000}, 2, 900000, true},                /* window 0: max in all */
        {2, 0, {0}, 1, 900000, false},
        {1, 1000, {0}, 1, 999, true},                        {1, 1000, {0}, 1, 1000, false},
    };
    for (size_t i = 0; i < N(rows); i++) {
        struct cr_restart_policy p = {.max_restarts = rows[i].max, .window_ms = rows[i].window};
        int64_t ring[6] = {0};
        unsigned count = 0;
        for (unsigned k = 0; k < rows[i].n; k++)
            cr_restart_record(&p, rows[i].max ? ring : NULL, &count, rows[i].at[k]);
        assert_int_equal(count, rows[i].n);
        bool got = cr_restart_limit_reached(&p, rows[i].max ? ring : NULL, count, rows[i].now);
        if (got != rows[i].want)
            fail_msg("row %zu: max %u window %lld, %u restarts, at %lld: %d, want %d", i,
                     rows[i].max, (long long)rows[i].window, rows[i].n, (long long)rows[i].now,
                     got, rows[i].want);
    }
}

static void test_random_spreads(void **state)
{
    (void)state;
    uint64_t st = 1, seen[16] = {0};
    for (int i = 0; i < 16000; i++)
        seen[cr_restart_random(&st) % 16]++;
    for (int b = 0; b < 16; b++)
        assert_true(seen[b] > 800 && seen[b] < 1200);
    assert_true(st != 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_jitter),
        cmocka_unit_test(test_next_attempt),
        cmocka_unit_test(test_window),
        cmocka_unit_test(test_random_spreads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
