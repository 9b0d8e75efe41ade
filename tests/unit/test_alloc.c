/* init/alloc.c, init's malloc in the static musl build, under names of its own (t_malloc...)
 * so that this test's own allocator (glibc's, under ASan) stays in place: classes, reuse,
 * realloc, calloc of a reused block, blocks too big for a class, and the arena used up. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#define CR_INIT_ALLOC
#define CR_ALLOC(name) t_##name
#include "alloc.c"

static bool in_arena(const void *p)
{
    return (const unsigned char *)p >= arena && (const unsigned char *)p < arena + ARENA_SIZE;
}

static void test_classes_and_alignment(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 1, 15, 16, 17, 100, 1000, 4096, 4097, 65536};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        unsigned char *p = t_malloc(sizes[i]);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 16, 0);
        assert_true(in_arena(p));
        size_t room_ = t_malloc_usable_size(p);
        assert_true(room_ >= sizes[i] && room_ >= 16);
        assert_true(room_ < 2 * sizes[i] || room_ == 16);   /* the next power of two */
        memset(p, 0xab, room_);                              /* all of it is the block's */
        t_free(p);
    }
    t_free(NULL);
}

static void test_a_freed_block_is_taken_again_by_its_class(void **state)
{
    (void)state;
    void *a = t_malloc(40), *b = t_malloc(40);
    assert_ptr_not_equal(a, b);
    t_free(a);
    void *c = t_malloc(300);                 /* another class: not a's block */
    assert_ptr_not_equal(c, a);
    assert_ptr_equal(t_malloc(33), a);       /* 33..64: a's class */
    t_free(b);
    t_free(c);
}

static void test_realloc_keeps_the_contents(void **state)
{
    (void)state;
    char *p = t_realloc(NULL, 10);
    memcpy(p, "0123456789", 10);
    assert_ptr_equal(t_realloc(p, 16), p);   /* still fits: the same block */
    char *q = t_realloc(p, 5000);
    assert_ptr_not_equal(q, p);
    assert_memory_equal(q, "0123456789", 10);
    assert_ptr_equal(t_malloc(12), p);       /* the old block was freed */
    char *r = t_realloc(q, 200000);          /* bigger than any class: mapped on its own */
    assert_false(in_arena(r));
    assert_memory_equal(r, "0123456789", 10);
    memset(r, 1, 200000);
    assert_true(t_malloc_usable_size(r) >= 200000);
    t_free(r);
    t_free(p);
}

static void test_calloc_zeroes_a_reused_block(void **state)
{
    (void)state;
    unsigned char *p = t_malloc(100);
    memset(p, 0xff, 100);
    t_free(p);
    unsigned char *z = t_calloc(10, 10);
    assert_ptr_equal(z, p);
    for (int i = 0; i < 100; i++)
        assert_int_equal(z[i], 0);
    t_free(z);
    assert_null(t_calloc(SIZE_MAX / 2, 4));  /* overflow */
    assert_int_equal(errno, ENOMEM);
}

static void test_an_arena_used_up_maps_blocks_of_their_own(void **state)
{
    (void)state;
    void *v[16];
    size_t outside = 0;
    for (int i = 0; i < 16; i++) {            /* 16 x 64 KiB: more than the arena's 256 KiB */
        v[i] = t_malloc(60000);
        assert_non_null(v[i]);
        memset(v[i], i, 60000);
        outside += !in_arena(v[i]);
    }
    assert_true(outside >= 16 - ARENA_SIZE / 65536);
    for (int i = 0; i < 16; i++) {
        assert_int_equal(((unsigned char *)v[i])[59999], i);
        t_free(v[i]);
    }
    /* the arena's blocks of that class are taken again, the mapped ones are gone */
    void *again = t_malloc(60000);
    assert_true(in_arena(again));
    t_free(again);
    assert_null(t_malloc(SIZE_MAX - 100));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classes_and_alignment),
        cmocka_unit_test(test_a_freed_block_is_taken_again_by_its_class),
        cmocka_unit_test(test_realloc_keeps_the_contents),
        cmocka_unit_test(test_calloc_zeroes_a_reused_block),
        cmocka_unit_test(test_an_arena_used_up_maps_blocks_of_their_own),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
