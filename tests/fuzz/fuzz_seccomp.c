/* libFuzzer target: a seccomp profile in the Docker/OCI JSON format (`seccomp = FILE`), as
 * the supervisor compiles it (seccomp_profile.c): the JSON reader, the rules' meaning, and
 * libseccomp's rule building, for the default capability set and for all capabilities (the
 * includes/excludes.caps branches). A profile that compiles is exported to BPF as well. */
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include "policy/internal.h"

static void one(const uint8_t *data, size_t size, uint64_t caps)
{
    scmp_filter_ctx ctx;
    char err[512];
    if (cr_seccomp_json("fuzz.json", (const char *)data, size, caps, &ctx, err, sizeof err) < 0)
        return;
    FILE *devnull = fopen("/dev/null", "we");
    if (devnull) {
        seccomp_export_bpf(ctx, fileno(devnull));
        fclose(devnull);
    }
    seccomp_release(ctx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    one(data, size, 0x800405fbULL);
    one(data, size, UINT64_MAX >> 23);
    return 0;
}
