/* libFuzzer target: the config loader, includes and all, as --check runs it
 * (no_machine_checks: the fuzzer's files name no real rootfs).
 *
 * The input is up to four files cut at lines "#---": main.ini, then inc1.ini... inc3.ini, all
 * in one private directory, so "[include] files = inc*.ini" reaches the others. */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup/probe.h"
#include "config/config.h"

static char dir[64];
static const char *names[] = {"main.ini", "inc1.ini", "inc2.ini", "inc3.ini"};

/* The private directory goes when the process ends normally (a replay, a -runs= run). */
static void remove_dir(void)
{
    char path[128];
    for (size_t i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

static void write_file(const char *name, const uint8_t *p, size_t n)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        abort();
    if (n && fwrite(p, 1, n, f) != n)
        abort();
    fclose(f);
}

static void spec_round_trip(const struct cr_spec *sp)
{
    static char buf[CR_SPEC_MAX + 1];
    ssize_t n = cr_spec_write(sp, buf, sizeof buf);
    if (n < 0)
        abort();             /* the loader accepted a service it cannot hand to init */
    struct cr_spec back;
    struct cr_errlist errors = {0};
    if (cr_spec_parse(buf, (size_t)n, "spec", &back, &errors) != 0) {
        for (size_t i = 0; i < errors.n; i++)
            fprintf(stderr, "%s\n", errors.v[i]);
        abort();             /* ... or one that init would refuse */
    }
    cr_spec_free(&back);
    cr_errlist_free(&errors);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct cr_cgroup_caps caps = {
        .version = 2, .memory = true, .memory_high = true, .memory_swap = true,
        .cpu_max = true, .cpu_weight = true, .pids = true, .io_weight = true,
        .io_weight_file = "io.weight",
    };
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/fuzz_config.%d", (int)getpid());
        mkdir(dir, 0700);
        atexit(remove_dir);
    }
    const uint8_t *p = data, *end = data + size;
    for (size_t i = 0; i < 4; i++) {
        const uint8_t *cut = NULL;
        for (const uint8_t *q = p; i < 3 && q + 5 <= end; q++)
            if ((q == data || q[-1] == '\n') && !memcmp(q, "#---\n", 5)) {
                cut = q;
                break;
            }
        write_file(names[i], p, (size_t)((cut ? cut : end) - p));
        p = cut ? cut + 5 : end;
    }
    char path[128];
    snprintf(path, sizeof path, "%s/main.ini", dir);
    struct cr_config cfg;
    struct cr_config_opts opts = {.caps = &caps, .no_machine_checks = true};
    /* A config --check accepts must give specs init accepts (it once did not: 4096-byte
     * paths, wrapped ids and durations). */
    if (cr_config_load(path, &opts, &cfg) == 0)
        for (size_t i = 0; i < cfg.nservices; i++)
            spec_round_trip(&cfg.services[i].spec);
    cr_config_free(&cfg);
    return 0;
}
