#include "units.h"

#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The largest whole part whose value scaled by 1000, plus a fraction up to .999, fits. */
#define CR_MILLI_WHOLE_MAX ((INT64_MAX - 999) / 1000)

/* Reads "123" or "1.5" into an integer scaled by 1000, so "1.5s" stays exact. A whole part
 * beyond CR_MILLI_WHOLE_MAX is -ERANGE, checked before each step so nothing ever wraps. */
static int parse_decimal_milli(const char *s, const char **end, int64_t *milli)
{
    int64_t whole = 0, frac = 0, scale = 1000;
    const char *p = s;
    if (!isdigit((unsigned char)*p))
        return -EINVAL;
    for (; isdigit((unsigned char)*p); p++) {
        int d = *p - '0';
        if (whole > (CR_MILLI_WHOLE_MAX - d) / 10)
            return -ERANGE;
        whole = whole * 10 + d;
    }
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            return -EINVAL;
        for (; isdigit((unsigned char)*p); p++) {
            if (scale > 1) {
                scale /= 10;
                frac += (*p - '0') * scale;
            }
        }
    }
    *end = p;
    *milli = whole * 1000 + frac;
    return 0;
}

int cr_parse_duration_ms(const char *s, int64_t *out_ms)
{
    static const struct { const char *unit; int64_t ms; } units[] = {
        {"ms", 1}, {"msec", 1}, {"s", 1000}, {"sec", 1000}, {"m", 60000}, {"min", 60000},
        {"h", 3600000}, {"hr", 3600000}, {"", 1000},
    };
    const char *end;
    int64_t milli;
    if (!s)
        return -EINVAL;
    while (isspace((unsigned char)*s))
        s++;
    int r = parse_decimal_milli(s, &end, &milli);
    if (r)
        return r;
    size_t n = strlen(end);
    while (n && isspace((unsigned char)end[n - 1]))
        n--;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strlen(units[i].unit) == n && strncasecmp(end, units[i].unit, n) == 0) {
            if (milli > INT64_MAX / units[i].ms)
                return -ERANGE;
            *out_ms = milli * units[i].ms / 1000;
            return 0;
        }
    }
    return -EINVAL;
}

int cr_parse_size(const char *s, int64_t *out)
{
    const char *end;
    int64_t milli;
    if (!s)
        return -EINVAL;
    while (isspace((unsigned char)*s))
        s++;
    if (!strcasecmp(s, "max") || !strcasecmp(s, "infinity")) {
        *out = INT64_MAX;
        return 0;
    }
    int r = parse_decimal_milli(s, &end, &milli);
    if (r)
        return r;
    int shift = 0;
    switch (toupper((unsigned char)*end)) {
    case '\0': break;
    case 'B': shift = 0; end++; goto tail_done;
    case 'K': shift = 10; break;
    case 'M': shift = 20; break;
    case 'G': shift = 30; break;
    case 'T': shift = 40; break;
    default: return -EINVAL;
    }
    if (*end) {
        end++;
        if (toupper((unsigned char)*end) == 'I')
            end++;
        if (toupper((unsigned char)*end) == 'B')
            end++;
    }
tail_done:
    while (isspace((unsigned char)*end))
        end++;
    if (*end)
        return -EINVAL;
    if (milli > (INT64_MAX >> shift) / 1)
        return -ERANGE;
    int64_t v = milli << shift;
    *out = v / 1000;
    return 0;
}

static const struct { const char *name; int sig; } sigtab[] = {
    {"HUP", SIGHUP}, {"INT", SIGINT}, {"QUIT", SIGQUIT}, {"ILL", SIGILL}, {"TRAP", SIGTRAP},
    {"ABRT", SIGABRT}, {"IOT", SIGIOT}, {"BUS", SIGBUS}, {"FPE", SIGFPE}, {"KILL", SIGKILL},
    {"USR1", SIGUSR1}, {"SEGV", SIGSEGV}, {"USR2", SIGUSR2}, {"PIPE", SIGPIPE},
    {"ALRM", SIGALRM}, {"TERM", SIGTERM}, {"STKFLT", SIGSTKFLT}, {"CHLD", SIGCHLD},
    {"CONT", SIGCONT}, {"STOP", SIGSTOP}, {"TSTP", SIGTSTP}, {"TTIN", SIGTTIN},
    {"TTOU", SIGTTOU}, {"URG", SIGURG}, {"XCPU", SIGXCPU}, {"XFSZ", SIGXFSZ},
    {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH}, {"IO", SIGIO},
    {"POLL", SIGPOLL}, {"PWR", SIGPWR}, {"SYS", SIGSYS},
};

int cr_parse_signal(const char *s)
{
    unsigned n;
    if (!s || !*s)
        return -EINVAL;
    if (isdigit((unsigned char)*s))
        return cr_parse_uint(s, _NSIG - 1, &n) == 0 && n > 0 ? (int)n : -EINVAL;
    if (!strncasecmp(s, "SIG", 3))
        s += 3;
    for (size_t i = 0; i < sizeof sigtab / sizeof sigtab[0]; i++)
        if (!strcasecmp(s, sigtab[i].name))
            return sigtab[i].sig;
    /* RTMIN, RTMIN+n, RTMAX, RTMAX-n: the numbers libc reserves differ, so use its own. */
    int base, dir;
    if (!strncasecmp(s, "RTMIN", 5))
        base = SIGRTMIN, dir = 1;
    else if (!strncasecmp(s, "RTMAX", 5))
        base = SIGRTMAX, dir = -1;
    else
        return -EINVAL;
    s += 5;
    if (!*s)
        return base;
    if ((dir > 0 && *s != '+') || (dir < 0 && *s != '-'))
        return -EINVAL;
    if (cr_parse_uint(s + 1, 64, &n))
        return -EINVAL;
    int sig = base + dir * (int)n;
    return sig >= SIGRTMIN && sig <= SIGRTMAX ? sig : -EINVAL;
}

const char *cr_signal_name(int sig, char *buf, size_t len)
{
    for (size_t i = 0; i < sizeof sigtab / sizeof sigtab[0]; i++)
        if (sigtab[i].sig == sig)
            return sigtab[i].name;
    if (sig >= SIGRTMIN && sig <= SIGRTMAX) {
        if (sig == SIGRTMIN)
            snprintf(buf, len, "RTMIN");
        else
            snprintf(buf, len, "RTMIN+%d", sig - SIGRTMIN);
    } else {
        snprintf(buf, len, "%d", sig);
    }
    return buf;
}

int cr_parse_bool(const char *s, bool *out)
{
    static const char *yes[] = {"true", "yes", "on", "1"}, *no[] = {"false", "no", "off", "0"};
    if (!s)
        return -EINVAL;
    for (int i = 0; i < 4; i++) {
        if (!strcasecmp(s, yes[i])) { *out = true; return 0; }
        if (!strcasecmp(s, no[i])) { *out = false; return 0; }
    }
    return -EINVAL;
}

int cr_parse_uint(const char *s, unsigned max, unsigned *out)
{
    unsigned long v = 0;
    if (!s || !isdigit((unsigned char)*s))
        return -EINVAL;
    for (; isdigit((unsigned char)*s); s++) {
        v = v * 10 + (unsigned)(*s - '0');
        if (v > max)
            return -ERANGE;
    }
    if (*s)
        return -EINVAL;
    *out = (unsigned)v;
    return 0;
}

int cr_parse_codes(const char *s, cr_codeset *set)
{
    char item[16];
    memset(set, 0, sizeof *set);
    if (!s)
        return -EINVAL;
    for (;;) {
        while (isspace((unsigned char)*s))
            s++;
        size_t n = strcspn(s, ", \t");
        if (n == 0 || n >= sizeof item)
            return -EINVAL;
        memcpy(item, s, n);
        item[n] = 0;
        unsigned code;
        if (cr_parse_uint(item, 255, &code))
            return -EINVAL;
        cr_codeset_add(set, (int)code);
        s += n;
        while (isspace((unsigned char)*s))
            s++;
        if (!*s)
            return 0;
        if (*s != ',')
            return -EINVAL;
        s++;
    }
}
