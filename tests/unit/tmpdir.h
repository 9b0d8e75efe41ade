/* A temporary directory for a unit test's whole run (made by the group's setup, removed by its
 * teardown), and files in it: put(), mk() and ln() take paths relative to it and fail the test
 * when they cannot. Include after <cmocka.h>. */
#ifndef CORRAL_TEST_TMPDIR_H
#define CORRAL_TEST_TMPDIR_H

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[256];

/* /tmp/NAME.XXXXXX. Returns 0 or -1. */
static __attribute__((unused)) int tmpdir_make(const char *name)
{
    snprintf(dir, sizeof dir, "/tmp/%s.XXXXXX", name);
    return mkdtemp(dir) ? 0 : -1;
}

/* Removes it and all that setup and the tests made in it. Returns 0 or -1. */
static __attribute__((unused)) int tmpdir_remove(void)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static __attribute__((unused)) void put(const char *rel, const char *content, mode_t mode)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

static __attribute__((unused)) void mk(const char *rel)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    assert_int_equal(mkdir(path, 0755), 0);
}

static __attribute__((unused)) void ln(const char *target, const char *rel)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    assert_int_equal(symlink(target, path), 0);
}

#endif
