/* Values: %(...)s expansion, one parser per key type, and shell-like command splitting. */
#include "config/values.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/config.h"

/* ---- %(...)s expansion ---------------------------------------------------------------------- */

/* A growing heap string. */
struct sbuf {
    char *p;
    size_t n, cap;
    bool oom;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (!b->p || b->n + n + 1 > b->cap) {
        size_t cap = (b->n + n + 1) * 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static char *expand_fail(struct sbuf *b)
{
    free(b->p);
    return NULL;
}

/* supervisord's expansions: %(program_name)s, %(process_num)d (also 02d and the like),
 * %(numprocs)d, %(group_name)s, %(host_node_name)s, %(here)s, %(ENV_NAME)s and %%. A '%' not
 * followed by '(' or '%' stays as it is (cpu_max = 150%). */
char *cr_cfg_expand(const char *in, const struct cr_xctx *x, char *err, size_t errlen)
{
    struct sbuf b = {0};
    size_t inlen = strlen(in);
    if (!memchr(in, '%', inlen)) {   /* most values: as they are */
        char *copy = strdup(in);
        if (!copy)
            snprintf(err, errlen, "out of memory");
        return copy;
    }
    if ((b.p = malloc(inlen + 16)))   /* room for the value as it is */
        b.cap = inlen + 16;
    sb_add(&b, "", 0);
    for (const char *p = in; *p;) {
        size_t run = strcspn(p, "%");   /* the text up to the next '%', in one go */
        if (run) {
            sb_add(&b, p, run);
            p += run;
            continue;
        }
        if (p[1] != '(' && p[1] != '%') {
            sb_add(&b, p++, 1);
            continue;
        }
        if (p[1] == '%') {
            sb_add(&b, "%", 1);
            p += 2;
            continue;
        }
        const char *close = strchr(p + 2, ')');
        if (!close) {
            snprintf(err, errlen, "'%s': unterminated %%(", p);
            return expand_fail(&b);
        }
        char name[64];
        size_t nl = (size_t)(close - p - 2);
        snprintf(name, sizeof name, "%.*s", (int)(nl < 63 ? nl : 63), p + 2);
        const char *f = close + 1;
        bool zero = *f == '0';
        int width = 0;
        while (isdigit((unsigned char)*f) && width < 100)
            width = width * 10 + (*f++ - '0');
        char conv = *f;
        if (conv != 's' && conv != 'd') {
            snprintf(err, errlen, "%%(%s) must be followed by s or d", name);
            return expand_fail(&b);
        }
        char num[32];
        const char *sv = NULL;
        bool numeric = false;
        if (!strcmp(name, "process_num") || !strcmp(name, "numprocs")) {
            snprintf(num, sizeof num, "%lld", (long long)(name[0] == 'p' ? x->process_num
                                                                          : x->numprocs));
            sv = num;
            numeric = true;
        } else if (!strcmp(name, "program_name") || !strcmp(name, "group_name")) {
            sv = x->program;
        } else if (!strcmp(name, "here")) {
            sv = x->here;
        } else if (!strcmp(name, "host_node_name")) {
            sv = x->host;
        } else if (!strncmp(name, "ENV_", 4)) {
            if (!(sv = getenv(name + 4))) {
                snprintf(err, errlen, "%%(%s)s: %s is not set in the supervisor's environment",
                         name, name + 4);
                return expand_fail(&b);
            }
        } else {
            snprintf(err, errlen, "%%(%s)%c: unknown expansion (program_name, process_num, "
                     "numprocs, group_name, host_node_name, here, ENV_NAME)", name, conv);
            return expand_fail(&b);
        }
        if (conv == 'd' && !numeric) {
            snprintf(err, errlen, "%%(%s)d: not a number", name);
            return expand_fail(&b);
        }
        size_t len = strlen(sv);
        for (size_t pad = len; pad < (size_t)width; pad++)
            sb_add(&b, numeric && zero ? "0" : " ", 1);
        sb_add(&b, sv, len);
        p = f + 1;
    }
    if (b.oom) {
        snprintf(err, errlen, "out of memory");
        return expand_fail(&b);
    }
    return b.p;
}

/* ---- typed values ---------------------------------------------------------------------------- */

static int strv_add(struct cr_strv *l, const char *s, size_t n, int line)
{
    char **nv = realloc(l->v, (l->n + 2) * sizeof *nv);
    if (!nv)
        return -ENOMEM;
    l->v = nv;
    int *nl = realloc(l->line, (l->n + 1) * sizeof *nl);
    if (!nl)
        return -ENOMEM;
    l->line = nl;
    if (!(nv[l->n] = strndup(s, n)))
        return -ENOMEM;
    nl[l->n] = line;
    nv[++l->n] = NULL;
    return 0;
}

static void strv_free(struct cr_strv *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    free(l->line);
    memset(l, 0, sizeof *l);
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

static bool env_name_ok(const char *s, size_t n)
{
    if (!n || isdigit((unsigned char)s[0]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_')
            return false;
    return true;
}

/* NAME="value",NAME2='v',NAME3=plain: supervisord's syntax. */
static int parse_env(const char *v, struct cr_strv *out, int line, char *err, size_t errlen)
{
    const char *p = v;
    for (;;) {
        while (isspace((unsigned char)*p) || *p == ',')
            p++;
        if (!*p)
            return 0;
        const char *eq = strchr(p, '=');
        size_t kn = eq ? (size_t)(eq - p) : 0;
        while (kn && isspace((unsigned char)p[kn - 1]))
            kn--;
        if (!eq || !env_name_ok(p, kn)) {
            snprintf(err, errlen, "expected NAME=value at '%s'", p);
            return -EINVAL;
        }
        struct sbuf b = {0};
        sb_add(&b, p, kn);
        sb_add(&b, "=", 1);
        p = eq + 1;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '"' || *p == '\'') {
            char q = *p++;
            while (*p && *p != q) {
                if (q == '"' && *p == '\\' && (p[1] == '"' || p[1] == '\\'))
                    p++;
                sb_add(&b, p++, 1);
            }
            if (*p != q) {
                snprintf(err, errlen, "%.*s: unterminated %c quote", (int)kn, b.p ? b.p : "", q);
                free(b.p);
                return -EINVAL;
            }
            p++;
            while (*p == ' ' || *p == '\t')
                p++;
            if (*p && *p != ',') {
                snprintf(err, errlen, "%.*s: expected ',' after the quoted value", (int)kn,
                         b.p ? b.p : "");
                free(b.p);
                return -EINVAL;
            }
        } else {
            size_t n = strcspn(p, ",");
            size_t m = n;
            while (m && isspace((unsigned char)p[m - 1]))
                m--;
            sb_add(&b, p, m);
            p += n;
        }
        int r = b.oom ? -ENOMEM : strv_add(out, b.p, b.n, line);
        free(b.p);
        if (r)
            return r;
    }
}

/* 150% (of one CPU), "QUOTA PERIOD" in microseconds, "QUOTA" (period 100000), max. */
static int parse_cpu_max(const char *v, struct cr_cpu_max *out, char *err, size_t errlen)
{
    char q[64] = "", per[64] = "", extra[8] = "";
    int64_t period = 100000;
    int n = sscanf(v, "%63s %63s %7s", q, per, extra);
    if (n < 1 || n > 2) {
        snprintf(err, errlen, "'%s' is not 150%%, QUOTA PERIOD (microseconds) or max", v);
        return -EINVAL;
    }
    char *end;
    if (n == 2) {
        long long p = strtoll(per, &end, 10);
        if (*end || !isdigit((unsigned char)per[0]) || p < 1000 || p > 1000000) {
            snprintf(err, errlen, "period '%s' is not 1000 to 1000000 microseconds", per);
            return -EINVAL;
        }
        period = p;
    }
    size_t len = strlen(q);
    if (!strcasecmp(q, "max")) {
        out->quota_us = CR_CPU_UNLIMITED;
    } else if (len > 1 && q[len - 1] == '%') {
        q[len - 1] = '\0';
        double pc = strtod(q, &end);
        if (n == 2 || *end || !isdigit((unsigned char)q[0]) || pc <= 0 || pc > 100000) {
            snprintf(err, errlen, "'%s' is not a percentage of one CPU (150%%)", v);
            return -EINVAL;
        }
        out->quota_us = (int64_t)(pc * (double)period / 100.0 + 0.5);
    } else {
        long long x = strtoll(q, &end, 10);
        if (*end || !isdigit((unsigned char)q[0])) {
            snprintf(err, errlen, "'%s' is not 150%%, QUOTA PERIOD (microseconds) or max", v);
            return -EINVAL;
        }
        out->quota_us = x;
    }
    if (out->quota_us < 1000) {
        snprintf(err, errlen, "'%s' gives a quota under 1000 microseconds", v);
        return -EINVAL;
    }
    out->period_us = period;
    return 0;
}

static bool cgpath_ok(const char *s)
{
    if (!*s || *s == '/' || strlen(s) > 200)
        return false;
    for (const char *p = s; *p;) {
        size_t n = strcspn(p, "/");
        if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && !strncmp(p, "..", 2)))
            return false;
        for (size_t i = 0; i < n; i++)
            if (!isalnum((unsigned char)p[i]) && !strchr("_.-", p[i]))
                return false;
        p += n;
        if (*p == '/')
            p++;
    }
    return true;
}

static int bad(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

/* Parses v into the field of key k at base (a cr_service or cr_global). Lists append.
 * Returns 0, or -EINVAL with a message (without the key name) in err. */
int cr_cfg_parse_value(const struct cr_key *k, const char *v, void *base, int line, char *err,
                       size_t errlen)
{
    void *field = (char *)base + k->off;
    char *copy = strdup(v);
    if (!copy)
        return bad(err, errlen, "out of memory");
    const char *t = trim(copy);
    int r = 0, x;
    int64_t i64;
    bool b;
    switch (k->type) {
    case CR_T_STRING: case CR_T_COMMAND: case CR_T_PATH: case CR_T_LOGFILE: case CR_T_CGPATH:
        if (!*t) {
            r = bad(err, errlen, "empty value");
            break;
        }
        if (k->type == CR_T_PATH && t[0] != '/') {
            r = bad(err, errlen, "'%s' is not an absolute path", t);
            break;
        }
        if (k->type == CR_T_LOGFILE) {
            if (!strcasecmp(t, "AUTO"))
                t = "AUTO";
            else if (!strcasecmp(t, "NONE"))
                t = "NONE";
            else if (t[0] != '/') {
                r = bad(err, errlen, "'%s' is not AUTO, NONE or an absolute path", t);
                break;
            }
        }
        if (k->type == CR_T_CGPATH && !cgpath_ok(t)) {
            r = bad(err, errlen, "'%s' is not a relative cgroup path (words of A-Z a-z 0-9 _ . "
                    "- joined by /)", t);
            break;
        }
        free(*(char **)field);
        if (!(*(char **)field = strdup(t)))
            r = bad(err, errlen, "out of memory");
        break;
    case CR_T_BOOL: case CR_T_NOOP:
        if (cr_parse_bool(t, &b))
            r = bad(err, errlen, "'%s' is not true/yes/on/1 or false/no/off/0", t);
        else
            *(bool *)field = b;
        break;
    case CR_T_DURATION:
        if ((x = cr_parse_duration_ms(t, &i64)) == -ERANGE)
            r = bad(err, errlen, "'%s' is too large a duration", t);
        else if (x)
            r = bad(err, errlen, "'%s' is not a duration (500ms, 10s, 2m, 1h)", t);
        else
            *(int64_t *)field = i64;
        break;
    case CR_T_SIZE:
        if ((x = cr_parse_size(t, &i64)) == -ERANGE)
            r = bad(err, errlen, "'%s' is too large a size (largest: max)", t);
        else if (x)
            r = bad(err, errlen, "'%s' is not a size (512K, 100MB, 2G, max)", t);
        else
            *(int64_t *)field = i64;
        break;
    case CR_T_SIGNAL:
        if ((x = cr_parse_signal(t)) < 0)
            r = bad(err, errlen, "'%s' is not a signal (TERM, SIGINT, 9)", t);
        else
            *(int *)field = x;
        break;
    case CR_T_CODES:
        if (cr_parse_codes(t, field))
            r = bad(err, errlen, "'%s' is not a list of exit codes 0-255", t);
        break;
    case CR_T_INT: {
        if (k->max_word && !strcasecmp(t, "max")) {
            *(int64_t *)field = INT64_MAX;
            break;
        }
        char *end;
        errno = 0;
        long long ll = strtoll(t, &end, 10);
        if (!*t || *end || errno || ll < k->min || ll > k->max)
            r = bad(err, errlen, "'%s' is not an integer from %lld to %lld%s", t,
                    (long long)k->min, (long long)k->max, k->max_word ? " or max" : "");
        else
            *(int64_t *)field = ll;
        break;
    }
    case CR_T_RESTART:
        if ((x = cr_restart_parse(t)) < 0)
            r = bad(err, errlen, "'%s' is not false, unexpected or true (no, on-failure, "
                    "always)", t);
        else
            *(int *)field = x;
        break;
    case CR_T_LIST:
        for (const char *p = t; *p;) {
            p += strspn(p, ", \t");
            size_t n = strcspn(p, ", \t");
            if (n && strv_add(field, p, n, line))
                r = bad(err, errlen, "out of memory");
            p += n;
        }
        break;
    case CR_T_ITEMS:
        if (!*t)
            r = bad(err, errlen, "empty value");
        else if (strv_add(field, t, strlen(t), line))
            r = bad(err, errlen, "out of memory");
        break;
    case CR_T_ENV:
        if (parse_env(t, field, line, err, errlen))
            r = -EINVAL;
        break;
    case CR_T_NAMESPACES: {
        const char *word;
        unsigned ns;
        if (!strcasecmp(t, "none"))
            *(unsigned *)field = 0;
        else if (cr_ns_parse(t, &ns, &word))
            r = bad(err, errlen, "unknown namespace '%s' (pid, mount, uts, ipc, net, cgroup, "
                    "user)", word);
        else
            *(unsigned *)field = ns;
        break;
    }
    case CR_T_UMASK: {
        char *end;
        long m = strtol(t, &end, 8);
        if (!*t || *end || m < 0 || m > 0777)
            r = bad(err, errlen, "'%s' is not an octal umask (022)", t);
        else
            *(int *)field = (int)m;
        break;
    }
    case CR_T_CPU_MAX:
        r = parse_cpu_max(t, field, err, errlen);
        break;
    }
    free(copy);
    return r;
}

/* The value a field has before its default or the file sets it. */
void cr_cfg_set_unset(const struct cr_key *k, void *base)
{
    void *field = (char *)base + k->off;
    switch (k->type) {
    case CR_T_DURATION: case CR_T_SIZE: case CR_T_INT:
        *(int64_t *)field = -1;
        break;
    case CR_T_SIGNAL: case CR_T_RESTART: case CR_T_UMASK:
        *(int *)field = -1;
        break;
    case CR_T_CPU_MAX:
        ((struct cr_cpu_max *)field)->quota_us = -1;
        ((struct cr_cpu_max *)field)->period_us = -1;
        break;
    default:
        break;                   /* zeroed: NULL, false, empty */
    }
}

size_t cr_cfg_value_width(enum cr_key_type t)
{
    switch (t) {
    case CR_T_BOOL: case CR_T_NOOP: return sizeof(bool);
    case CR_T_DURATION: case CR_T_SIZE: case CR_T_INT: return sizeof(int64_t);
    case CR_T_SIGNAL: case CR_T_RESTART: case CR_T_UMASK: return sizeof(int);
    case CR_T_NAMESPACES: return sizeof(unsigned);
    case CR_T_CODES: return sizeof(cr_codeset);
    default: return 0;
    }
}

void cr_cfg_free_field(const struct cr_key *k, void *field)
{
    switch (k->type) {
    case CR_T_STRING: case CR_T_COMMAND: case CR_T_PATH: case CR_T_LOGFILE: case CR_T_CGPATH:
        free(*(char **)field);
        break;
    case CR_T_LIST: case CR_T_ITEMS: case CR_T_ENV:
        strv_free(field);
        break;
    default:
        break;
    }
}

/* ---- command splitting ------------------------------------------------------------------------ */

static void split_free(char **argv, size_t argc)
{
    for (size_t i = 0; i < argc; i++)
        free(argv[i]);
    free(argv);
}

int cr_split_command(const char *s, char ***argvp, size_t *argcp, const char **err)
{
    char **argv = NULL;
    size_t argc = 0;
    struct sbuf w = {0};
    bool in_word = false;
    *err = NULL;
    for (const char *p = s;; p++) {
        char c = *p;
        if (c == '\0' || c == ' ' || c == '\t' || c == '\n') {
            if (in_word) {
                char **nv = realloc(argv, (argc + 2) * sizeof *nv);
                if (nv)
                    argv = nv;
                if (!nv || w.oom) {
                    *err = "out of memory";
                    break;
                }
                argv = nv;
                argv[argc++] = w.p;
                argv[argc] = NULL;
                memset(&w, 0, sizeof w);
                in_word = false;
            }
            if (c == '\0')
                break;
            continue;
        }
        if (!in_word)
            sb_add(&w, "", 0);   /* a word exists even if it is '' */
        in_word = true;
        if (c == '\'') {
            const char *q = strchr(p + 1, '\'');
            if (!q) {
                *err = "unterminated ' quote";
                break;
            }
            sb_add(&w, p + 1, (size_t)(q - p - 1));
            p = q;
        } else if (c == '"') {
            p++;
            while (*p && *p != '"') {
                if (*p == '\\' && p[1] && strchr("\"\\$`", p[1]))
                    p++;
                sb_add(&w, p++, 1);
            }
            if (*p != '"') {
                *err = "unterminated \" quote";
                break;
            }
        } else if (c == '\\') {
            if (!p[1]) {
                *err = "a backslash at the end";
                break;
            }
            sb_add(&w, ++p, 1);
        } else {
            /* plain characters up to the next space, quote or backslash, in one go */
            size_t m = strcspn(p, " \t\n'\"\\");
            sb_add(&w, p, m);
            p += m - 1;
        }
    }
    if (!*err && argc == 0)
        *err = "empty command";
    if (*err) {
        free(w.p);
        split_free(argv, argc);
        return -EINVAL;
    }
    *argvp = argv;
    *argcp = argc;
    return 0;
}

bool cr_cfg_id32(const char **p, const char *stops, unsigned long long *out)
{
    unsigned long long v = 0;
    const char *s = *p;
    size_t n = 0;
    for (; s[n] >= '0' && s[n] <= '9'; n++) {
        if (n == 10)
            return false;
        v = v * 10 + (unsigned)(s[n] - '0');
    }
    bool at_stop = stops[0] ? s[n] && strchr(stops, s[n]) : !s[n];
    if (n == 0 || v > 0xFFFFFFFFULL || !at_stop)
        return false;
    *out = v;
    *p = s + n;
    return true;
}
