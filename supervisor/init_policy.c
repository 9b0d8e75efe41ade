/* A spec's restart policy as init's command-line options (init_policy.h). */
#include "init_policy.h"

#include <stdio.h>

/* "2s" where whole seconds, else "1500ms": as init reads them. */
static void duration(char *buf, size_t len, int64_t ms)
{
    if (ms % 1000 == 0)
        snprintf(buf, len, "%llds", (long long)(ms / 1000));
    else
        snprintf(buf, len, "%lldms", (long long)ms);
}

static void add_duration(void (*add)(void *, const char *), void *ctx, const char *opt,
                         int64_t ms)
{
    char v[32];
    duration(v, sizeof v, ms);
    add(ctx, opt);
    add(ctx, v);
}

void sv_init_policy_args(const struct cr_spec *sp, void (*add)(void *ctx, const char *arg),
                         void *ctx)
{
    static const char *const name[] = {"no", "on-failure", "always"};
    int policy = sp->autorestart >= CR_RESTART_NEVER && sp->autorestart <= CR_RESTART_ALWAYS
                     ? sp->autorestart : CR_RESTART_NEVER;
    char v[256 * 4 + 1];   /* every exit code: "0,1,...,255" */
    add(ctx, "--restart");
    add(ctx, name[policy]);
    if (policy == CR_RESTART_NEVER)
        return;
    /* what differs from init's defaults (init/main.c): exit codes 0, delays 100ms, 30s and
     * 10s, no start check, no limit */
    size_t n = 0;
    bool only_zero = true;
    for (int c = 0; c < 256; c++)
        if (cr_codeset_has(&sp->exitcodes, c)) {
            n += (size_t)snprintf(v + n, sizeof v - n, "%s%d", n ? "," : "", c);
            only_zero = only_zero && c == 0;
        }
    if (policy == CR_RESTART_UNEXPECTED && n && !only_zero) {
        add(ctx, "--exit-codes");
        add(ctx, v);
    }
    if (sp->restart_delay_ms != 100)
        add_duration(add, ctx, "--restart-delay", sp->restart_delay_ms);
    if (sp->restart_delay_max_ms != 30000)
        add_duration(add, ctx, "--restart-delay-max", sp->restart_delay_max_ms);
    if (sp->restart_reset_after_ms != 10000)
        add_duration(add, ctx, "--restart-reset-after", sp->restart_reset_after_ms);
    if (sp->max_restarts) {
        snprintf(v, sizeof v, "%u", sp->max_restarts);
        add(ctx, "--max-restarts");
        add(ctx, v);
        add_duration(add, ctx, "--restart-window", sp->restart_window_ms);
    }
    if (sp->startsecs_ms > 0) {
        add_duration(add, ctx, "--startsecs", sp->startsecs_ms);
        snprintf(v, sizeof v, "%u", sp->startretries);
        add(ctx, "--startretries");
        add(ctx, v);
    }
}
