/* Unit tests for the default seccomp programs compiled at build time (policy/, build/gen/
 * seccomp_default.c): for every capability set that matters, the program the supervisor hands
 * to init must be byte for byte what libseccomp compiles now from the same rules, and a set
 * with other capabilities beside the ones the profile depends on picks the right variant. */
#include <errno.h>
#include <linux/capability.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "policy/internal.h"
#include "policy/syscall_filter.h"

/* Everything written to fd, from its start (len bytes, malloc'ed). */
static unsigned char *slurp(int fd, size_t *len)
{
    off_t n = lseek(fd, 0, SEEK_END);
    assert_true(n > 0);
    unsigned char *buf = malloc((size_t)n);
    assert_non_null(buf);
    assert_int_equal(pread(fd, buf, (size_t)n, 0), n);
    *len = (size_t)n;
    return buf;
}

static unsigned char *compiled_now(uint64_t caps, size_t *len)
{
    char err[256] = "";
    int fd = memfd_create("test-seccomp", 0);
    assert_true(fd >= 0);
    assert_int_equal(cr_seccomp_export("default", caps, fd, err, sizeof err), 0);
    unsigned char *buf = slurp(fd, len);
    close(fd);
    return buf;
}

static void test_builtin_equals_fresh_compile(void **state)
{
    (void)state;
    /* The default set (no CAP_SYS_PTRACE, no CAP_SYS_NICE), each one alone, both, and each
     * with unrelated capabilities besides. */
    const uint64_t other = 1ULL << CAP_CHOWN | 1ULL << CAP_NET_BIND_SERVICE | 1ULL << CAP_KILL;
    const uint64_t sets[] = {
        0,
        other,
        1ULL << CAP_SYS_PTRACE,
        other | 1ULL << CAP_SYS_NICE,
        1ULL << CAP_SYS_PTRACE | 1ULL << CAP_SYS_NICE,
        ~0ULL,
    };
    for (size_t i = 0; i < sizeof sets / sizeof *sets; i++) {
        unsigned v = cr_seccomp_variant(sets[i]);
        assert_true(cr_seccomp_builtin[v].len > 0);
        char err[256] = "";
        int fd = cr_seccomp_fd("default", sets[i], err, sizeof err);
        assert_true(fd >= 0);
        size_t got_len, want_len;
        unsigned char *got = slurp(fd, &got_len);
        unsigned char *want = compiled_now(sets[i], &want_len);
        assert_int_equal(got_len, want_len);
        assert_memory_equal(got, want, want_len);
        free(got);
        free(want);
    }
    cr_seccomp_cache_free();
}

static void test_variants_differ(void **state)
{
    (void)state;
    /* Each capability the profile depends on changes the program: the variants are not one
     * program four times (which would hide a variant mix-up from the test above). */
    for (unsigned a = 0; a < CR_SECCOMP_VARIANTS; a++) {
        assert_int_equal(cr_seccomp_variant(cr_seccomp_variant_caps(a)), a);
        for (unsigned b = a + 1; b < CR_SECCOMP_VARIANTS; b++)
            assert_false(cr_seccomp_builtin[a].len == cr_seccomp_builtin[b].len &&
                         !memcmp(cr_seccomp_builtin[a].code, cr_seccomp_builtin[b].code,
                                 cr_seccomp_builtin[a].len));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtin_equals_fresh_compile),
        cmocka_unit_test(test_variants_differ),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
