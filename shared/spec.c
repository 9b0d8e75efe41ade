#include "spec.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* ---- small helpers --------------------------------------------------------------------- */

static const struct { const char *name; unsigned bit; } ns_names[] = {
    {"pid", CR_NS_PID}, {"mount", CR_NS_MOUNT}, {"uts", CR_NS_UTS}, {"ipc", CR_NS_IPC},
    {"net", CR_NS_NET}, {"cgroup", CR_NS_CGROUP}, {"user", CR_NS_USER},
    {"mnt", CR_NS_MOUNT}, {"network", CR_NS_NET},
};

int cr_ns_parse(const char *s, unsigned *out, const char **bad)
{
    static char word[32];
    unsigned ns = 0;
    *bad = NULL;
    while (*s) {
        while (*s == ' ' || *s == '\t' || *s == ',')
            s++;
        size_t n = strcspn(s, ", \t");
        if (n == 0)
            break;
        size_t i;
        for (i = 0; i < sizeof ns_names / sizeof ns_names[0]; i++)
            if (strlen(ns_names[i].name) == n && !strncasecmp(s, ns_names[i].name, n))
                break;
        if (i == sizeof ns_names / sizeof ns_names[0]) {
            snprintf(word, sizeof word, "%.*s", (int)(n < 31 ? n : 31), s);
            *bad = word;
            return -EINVAL;
        }
        ns |= ns_names[i].bit;
        s += n;
    }
    *out = ns;
    return 0;
}

void cr_ns_format(unsigned ns, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < 7; i++) {
        if (!(ns & ns_names[i].bit))
            continue;
        const char *name = ns_names[i].name;
        size_t n = strlen(name);
        if (used + (used ? 1 : 0) + n >= len)
            return;              /* the names so far, whole */
        if (used)
            buf[used++] = ',';
        memcpy(buf + used, name, n + 1);
        used += n;
    }
}

int cr_restart_parse(const char *s)
{
    static const struct { const char *name; int v; } tab[] = {
        {"false", CR_RESTART_NEVER}, {"no", CR_RESTART_NEVER}, {"never", CR_RESTART_NEVER},
        {"unexpected", CR_RESTART_UNEXPECTED}, {"on-failure", CR_RESTART_UNEXPECTED},
        {"true", CR_RESTART_ALWAYS}, {"always", CR_RESTART_ALWAYS},
    };
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (!strcasecmp(s, tab[i].name))
            return tab[i].v;
    return -EINVAL;
}

const char *cr_restart_name(int r)
{
    return r == CR_RESTART_ALWAYS ? "true" : r == CR_RESTART_UNEXPECTED ? "unexpected" : "false";
}

int cr_ready_parse(const char *s, int *arg, const char **cmd)
{
    unsigned u;
    *arg = 0;
    *cmd = NULL;
    if (!strcasecmp(s, "none"))
        return CR_READY_NONE;
    if (!strcasecmp(s, "notify"))
        return CR_READY_NOTIFY;
    if (!strcasecmp(s, "exec"))
        return CR_READY_EXEC;
    if (!strncasecmp(s, "exec:", 5)) {
        *cmd = s + 5;
        return CR_READY_EXEC;
    }
    if (!strncasecmp(s, "fd:", 3) && !cr_parse_uint(s + 3, 1023, &u) && u >= 3) {
        *arg = (int)u;
        return CR_READY_FD;
    }
    if (!strncasecmp(s, "tcp:", 4) && !cr_parse_uint(s + 4, 65535, &u) && u >= 1) {
        *arg = (int)u;
        return CR_READY_TCP;
    }
    return -EINVAL;
}

void cr_ready_format(int kind, int arg, char *buf, size_t len)
{
    switch (kind) {
    case CR_READY_NOTIFY:
        snprintf(buf, len, "notify");
        break;
    case CR_READY_FD:
        snprintf(buf, len, "fd:%d", arg);
        break;
    case CR_READY_TCP:
        snprintf(buf, len, "tcp:%d", arg);
        break;
    case CR_READY_EXEC:
        snprintf(buf, len, "exec");
        break;
    default:
        snprintf(buf, len, "none");
        break;
    }
}

int cr_health_action_parse(const char *s)
{
    if (!strcasecmp(s, "restart"))
        return CR_HEALTH_RESTART;
    if (!strcasecmp(s, "stop"))
        return CR_HEALTH_STOP;
    if (!strcasecmp(s, "none"))
        return CR_HEALTH_NONE;
    return -EINVAL;
}

const char *cr_health_action_name(int a)
{
    return a == CR_HEALTH_STOP ? "stop" : a == CR_HEALTH_NONE ? "none" : "restart";
}

void cr_spec_init(struct cr_spec *s)
{
    memset(s, 0, sizeof *s);
    s->namespaces = CR_NS_DEFAULT;
    s->umask = -1;
    s->autorestart = CR_RESTART_UNEXPECTED;
    cr_codeset_add(&s->exitcodes, 0);
    s->startsecs_ms = 1000;
    s->startretries = 3;
    s->restart_delay_max_ms = 30000;
    s->restart_reset_after_ms = 10000;
    s->restart_window_ms = 60000;
    s->stopsignal = 15;
    s->stopwait_ms = 10000;
    s->ready_timeout_ms = 90000;
    s->health_interval_ms = 30000;
    s->health_timeout_ms = 30000;
    s->health_retries = 3;
    s->caps = CR_CAPS_ALL;
    s->seccomp_fd = -1;
}

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void cr_spec_free(struct cr_spec *s)
{
    free(s->name);
    free(s->hostname);
    free(s->rootfs);
    for (size_t i = 0; i < s->nbinds; i++) {
        free(s->binds[i].src);
        free(s->binds[i].dst);
    }
    free(s->binds);
    for (size_t i = 0; i < s->ntmpfs; i++)
        free(s->tmpfs[i].dst);
    free(s->tmpfs);
    free_strv(s->layers, s->nlayers);
    free(s->upper);
    free(s->work);
    for (size_t i = 0; i < s->ndevices; i++) {
        free(s->devices[i].host);
        free(s->devices[i].dst);
    }
    free(s->devices);
    free(s->exec);
    free_strv(s->argv, s->argc);
    free(s->directory);
    free(s->groups);
    free_strv(s->env, s->nenv);
    free_strv(s->ready_argv, s->ready_argc);
    free_strv(s->health_argv, s->health_argc);
    free_strv(s->masked, s->nmasked);
    free_strv(s->readonly, s->nreadonly);
    cr_spec_init(s);
}

/* Appends p to a NULL-terminated vector. The array doubles when its n + 1 slots (the NULL)
 * reach a power of two: growing it by one slot each time made a realloc of every push (a
 * service's masked paths were a tenth of loading a file). Only pushes grow these arrays. */
static int strv_push(char ***v, size_t *n, char *p)
{
    char **nv = *v;
    if (!nv || ((*n + 1) & *n) == 0) {
        nv = realloc(*v, 2 * (*n + 1) * sizeof *nv);
        if (!nv)
            return -ENOMEM;
    }
    nv[*n] = p;
    nv[++*n] = NULL;
    *v = nv;
    return 0;
}

/* Appends a copy of str. */
static int strv_push_copy(char ***v, size_t *n, const char *str)
{
    char *p = strdup(str);
    if (!p || strv_push(v, n, p)) {
        free(p);
        return -ENOMEM;
    }
    return 0;
}

int cr_spec_add_arg(struct cr_spec *s, const char *arg)
{
    return strv_push_copy(&s->argv, &s->argc, arg);
}

int cr_spec_add_ready_arg(struct cr_spec *s, const char *arg)
{
    return strv_push_copy(&s->ready_argv, &s->ready_argc, arg);
}

int cr_spec_add_health_arg(struct cr_spec *s, const char *arg)
{
    return strv_push_copy(&s->health_argv, &s->health_argc, arg);
}

/* Appends a path once (a repeat is a no-op). */
static int path_push(char ***v, size_t *n, const char *path)
{
    for (size_t i = 0; i < *n; i++)
        if (!strcmp((*v)[i], path))
            return 0;
    return strv_push_copy(v, n, path);
}

int cr_spec_add_layer(struct cr_spec *s, const char *path)
{
    if (path[0] != '/' || strpbrk(path, ":,"))
        return -EINVAL;
    return strv_push_copy(&s->layers, &s->nlayers, path);
}

int cr_spec_add_new_paths(struct cr_spec *s, bool readonly, const char *const *paths, size_t k)
{
    char ***v = readonly ? &s->readonly : &s->masked;
    size_t *n = readonly ? &s->nreadonly : &s->nmasked;
    bool search = *n > 0;        /* the first ones are new by the caller's word */
    for (size_t i = 0; i < k; i++)
        if ((search ? path_push(v, n, paths[i]) : strv_push_copy(v, n, paths[i])) < 0)
            return -ENOMEM;
    return 0;
}

int cr_spec_add_masked(struct cr_spec *s, const char *path)
{
    return path_push(&s->masked, &s->nmasked, path);
}

int cr_spec_add_readonly(struct cr_spec *s, const char *path)
{
    return path_push(&s->readonly, &s->nreadonly, path);
}

static int env_find(const struct cr_spec *s, const char *name, size_t nlen)
{
    for (size_t i = 0; i < s->nenv; i++)
        if (!strncmp(s->env[i], name, nlen) && s->env[i][nlen] == '=')
            return (int)i;
    return -1;
}

int cr_spec_set_env(struct cr_spec *s, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value);
    char *p = malloc(nl + vl + 2);   /* "NAME=VALUE": every service sets a few at its load */
    if (!p)
        return -ENOMEM;
    memcpy(p, name, nl);
    p[nl] = '=';
    memcpy(p + nl + 1, value, vl + 1);
    int i = env_find(s, name, nl);
    if (i >= 0) {
        free(s->env[i]);
        s->env[i] = p;
        return 0;
    }
    if (strv_push(&s->env, &s->nenv, p)) {
        free(p);
        return -ENOMEM;
    }
    return 0;
}

const char *cr_spec_get_env(const struct cr_spec *s, const char *name)
{
    size_t n = strlen(name);
    int i = env_find(s, name, n);
    return i >= 0 ? s->env[i] + n + 1 : NULL;
}

int cr_bind_opts_parse(const char *s, bool *ro, bool *idmap)
{
    bool seen_mode = false;
    *ro = *idmap = false;
    if (!*s)
        return -EINVAL;
    while (*s) {
        size_t n = strcspn(s, ",");
        if (n == 2 && !strncmp(s, "ro", 2) && !seen_mode)
            *ro = seen_mode = true;
        else if (n == 2 && !strncmp(s, "rw", 2) && !seen_mode)
            seen_mode = true;
        else if (n == 5 && !strncmp(s, "idmap", 5) && !*idmap)
            *idmap = true;
        else
            return -EINVAL;
        s += n;
        if (*s == ',' && *++s == '\0')
            return -EINVAL;
    }
    return 0;
}

/* A spec's bind options: cr_bind_opts_parse's, then optionally "clone" (last, or alone). */
static int spec_bind_opts(const char *s, bool *ro, bool *idmap, bool *clone)
{
    char buf[64];
    size_t n = strlen(s);
    *ro = *idmap = *clone = false;
    if (!strcmp(s, "clone")) {
        *clone = true;
        return 0;
    }
    if (n > 6 && n < sizeof buf && !strcmp(s + n - 6, ",clone")) {
        memcpy(buf, s, n - 6);
        buf[n - 6] = 0;
        *clone = true;
        s = buf;
    }
    return cr_bind_opts_parse(s, ro, idmap);
}

size_t cr_spec_nidmap(const struct cr_spec *s)
{
    size_t n = s->rootfs_idmap ? 1 : 0;
    for (size_t i = 0; i < s->nbinds; i++)
        n += s->binds[i].idmap || s->binds[i].clone;
    return n;
}

int cr_spec_add_bind(struct cr_spec *s, const char *src, const char *dst, bool ro)
{
    struct cr_bind *nb = realloc(s->binds, (s->nbinds + 1) * sizeof *nb);
    if (!nb)
        return -ENOMEM;
    s->binds = nb;
    nb[s->nbinds].src = strdup(src);
    nb[s->nbinds].dst = strdup(dst);
    nb[s->nbinds].ro = ro;
    nb[s->nbinds].idmap = nb[s->nbinds].clone = false;
    s->nbinds++;
    return nb[s->nbinds - 1].src && nb[s->nbinds - 1].dst ? 0 : -ENOMEM;
}

int cr_spec_add_tmpfs(struct cr_spec *s, const char *dst, int64_t size)
{
    struct cr_tmpfs *nt = realloc(s->tmpfs, (s->ntmpfs + 1) * sizeof *nt);
    if (!nt)
        return -ENOMEM;
    s->tmpfs = nt;
    nt[s->ntmpfs].dst = strdup(dst);
    nt[s->ntmpfs].size = size;
    s->ntmpfs++;
    return nt[s->ntmpfs - 1].dst ? 0 : -ENOMEM;
}

int cr_spec_add_device(struct cr_spec *s, const struct cr_devnode *d)
{
    struct cr_devnode *nd = realloc(s->devices, (s->ndevices + 1) * sizeof *nd);
    if (!nd)
        return -ENOMEM;
    s->devices = nd;
    nd[s->ndevices] = *d;
    nd[s->ndevices].host = strdup(d->host);
    nd[s->ndevices].dst = strdup(d->dst);
    s->ndevices++;
    return nd[s->ndevices - 1].host && nd[s->ndevices - 1].dst ? 0 : -ENOMEM;
}

int cr_spec_add_group(struct cr_spec *s, gid_t gid)
{
    for (size_t i = 0; i < s->ngroups; i++)
        if (s->groups[i] == gid)
            return 0;
    gid_t *ng = realloc(s->groups, (s->ngroups + 1) * sizeof *ng);
    if (!ng)
        return -ENOMEM;
    ng[s->ngroups++] = gid;
    s->groups = ng;
    return 0;
}

/* ---- writing ---------------------------------------------------------------------------- */

struct out {
    char *buf;
    size_t len, used;
    bool full;
};

static void out_mem(struct out *o, const char *p, size_t n)
{
    if (o->full || o->used + n >= o->len) {
        o->full = true;
        return;
    }
    memcpy(o->buf + o->used, p, n);
    o->used += n;
    o->buf[o->used] = '\0';
}

static void out_str(struct out *o, const char *s)
{
    out_mem(o, s, strlen(s));
}

/* The writer formats numbers itself: vsnprintf per line was a third of a spec's writing,
 * which every start and every service's check at load pay. */
static void out_u64(struct out *o, uint64_t v)
{
    char b[24], *e = b + sizeof b, *p = e;
    do
        *--p = (char)('0' + v % 10);
    while ((v /= 10));
    out_mem(o, p, (size_t)(e - p));
}

static void out_i64(struct out *o, int64_t v)
{
    if (v < 0)
        out_mem(o, "-", 1);
    out_u64(o, v < 0 ? -(uint64_t)v : (uint64_t)v);
}

/* value in octal, at least 4 digits (a mode, a umask) */
static void out_oct4(struct out *o, unsigned v)
{
    char b[12], *e = b + sizeof b, *p = e;
    do
        *--p = (char)('0' + (v & 7));
    while ((v >>= 3));
    while (e - p < 4)
        *--p = '0';
    out_mem(o, p, (size_t)(e - p));
}

static void out_key(struct out *o, const char *key)
{
    out_str(o, key);
    out_mem(o, " = ", 3);
}

/* "key = text\n" */
static void out_kv(struct out *o, const char *key, const char *text)
{
    out_key(o, key);
    out_str(o, text);
    out_mem(o, "\n", 1);
}

/* "key = N\n" */
static void out_kn(struct out *o, const char *key, int64_t n)
{
    out_key(o, key);
    out_i64(o, n);
    out_mem(o, "\n", 1);
}

static const char hex[] = "0123456789ABCDEF";

/* "key = 0x" and 16 lowercase hex digits */
static void out_mask(struct out *o, const char *key, uint64_t v)
{
    static const char lower[] = "0123456789abcdef";
    char b[19] = "0x";
    for (int i = 0; i < 16; i++)
        b[2 + i] = lower[(v >> (60 - 4 * i)) & 15];
    b[18] = '\n';
    out_key(o, key);
    out_mem(o, b, sizeof b);
}

#define CHUNK 120                /* encoded bytes per physical line, far below 197 */

/* A byte written %XX wherever it is in a value (control bytes, '%', and ';' which starts a
 * comment). */
static bool escaped(unsigned char c)
{
    return c < 0x20 || c == 0x7f || c == '%' || c == ';';
}

/* Appends the encoding of s to dst (which has room for 3*strlen(s)+1). extra: more bytes to
 * escape. The blank-at-the-edges rule is applied later, per chunk. Returns the length
 * written (without the '\0'). */
static size_t encode(char *dst, const char *s, const char *extra)
{
    char *const start = dst;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (escaped(c) || (extra && strchr(extra, c))) {
            *dst++ = '%';
            *dst++ = hex[c >> 4];
            *dst++ = hex[c & 15];
        } else {
            *dst++ = (char)c;
        }
    }
    *dst = '\0';
    return (size_t)(dst - start);
}

/* One token of a piece (an encoded byte: 1 character, or 3 for %XX) at a piece's edge: a
 * blank there is escaped (inih strips blanks at a line's edges), and so is a '#' that
 * starts it (a comment). */
static void out_edge(struct out *o, const char *tok, size_t tl, bool first)
{
    char esc[3] = {'%', hex[(unsigned char)*tok >> 4], hex[*tok & 15]};
    if (tl == 1 && (*tok == ' ' || *tok == '\t' || (first && *tok == '#')))
        out_mem(o, esc, 3);
    else
        out_mem(o, tok, tl);
}

/* "key = v" with v split into CHUNK-sized pieces on indented continuation lines. A piece
 * never starts or ends with a blank (inih strips those) nor starts with '#'. */
static void out_value(struct out *o, const char *key, const char *enc, size_t n)
{
    out_str(o, key);
    out_str(o, " =");
    size_t i = 0;
    bool first = true;
    if (n == 0) {
        out_str(o, "\n");
        return;
    }
    while (i < n) {
        out_str(o, first ? " " : "\n  ");
        /* the piece: whole tokens while fewer than CHUNK bytes are used */
        size_t start = i, used = 0, last = i;
        while (i < n && used < CHUNK) {
            size_t tl = enc[i] == '%' ? 3 : 1;
            last = i;
            used += tl;
            i += tl;
        }
        /* its first and last tokens are its edges; those between go out as they are */
        size_t tl0 = enc[start] == '%' ? 3 : 1;
        out_edge(o, enc + start, tl0, true);
        if (last > start) {
            out_mem(o, enc + start + tl0, last - start - tl0);
            out_edge(o, enc + last, i - last, false);
        }
        first = false;
    }
    out_str(o, "\n");
}

/* A value that goes out as it is: one piece (at most CHUNK bytes), nothing to escape, no
 * blank at its edges, no '#' first. Most are (paths, argv words, NAME=value). */
static bool plain(const char *v, size_t n)
{
    if (n == 0 || n > CHUNK || v[0] == ' ' || v[0] == '\t' || v[0] == '#' ||
        v[n - 1] == ' ' || v[n - 1] == '\t')
        return false;
    for (size_t i = 0; i < n; i++)
        if (escaped((unsigned char)v[i]))
            return false;
    return true;
}

static int out_item(struct out *o, const char *key, const char *value, const char *extra)
{
    size_t n = strlen(value);
    if (n > CR_SPEC_MAX_ITEM)
        return -EINVAL;
    if (!extra && plain(value, n)) {
        out_key(o, key);
        out_mem(o, value, n);
        out_mem(o, "\n", 1);
        return 0;
    }
    char enc[3 * CR_SPEC_MAX_ITEM + 1];
    out_value(o, key, enc, encode(enc, value, extra));
    return 0;
}

/* A bind or tmpfs item: fields encoded with ':' escaped, joined by raw ':'. */
static int out_fields(struct out *o, const char *key, const char *const *f, size_t nf)
{
    static char enc[3 * (3 * CR_SPEC_MAX_ITEM + 1) + 4];
    size_t n = 0;
    for (size_t i = 0; i < nf; i++) {
        if (strlen(f[i]) > CR_SPEC_MAX_ITEM)
            return -EINVAL;
        if (i)
            enc[n++] = ':';
        n += encode(enc + n, f[i], ":");
    }
    enc[n] = '\0';
    out_value(o, key, enc, n);
    return 0;
}

static void out_ms(struct out *o, const char *key, int64_t ms)
{
    out_key(o, key);
    out_i64(o, ms);
    out_mem(o, "ms\n", 3);
}

ssize_t cr_spec_write(const struct cr_spec *s, char *buf, size_t len)
{
    struct out o = {.buf = buf, .len = len < CR_SPEC_MAX + 1 ? len : CR_SPEC_MAX + 1};
    char tmp[64];
    int r = 0;
    if (!s->name || s->argc == 0 || (s->ready == CR_READY_EXEC) != (s->ready_argc > 0))
        return -EINVAL;
    if (len)
        buf[0] = '\0';
    out_str(&o, "; corral spec, written by the supervisor for init\n[spec]\n");
    out_kn(&o, "version", CR_SPEC_VERSION);
    r |= out_item(&o, "name", s->name, NULL);

    out_str(&o, "\n[container]\n");
    if (s->hostname)
        r |= out_item(&o, "hostname", s->hostname, NULL);
    if (s->rootfs)
        r |= out_item(&o, "rootfs", s->rootfs, NULL);
    cr_ns_format(s->namespaces, tmp, sizeof tmp);
    out_kv(&o, "namespaces", tmp);
    out_kv(&o, "read_only", s->read_only ? "true" : "false");
    if (s->rootfs_idmap)
        out_str(&o, "rootfs_idmap = true\n");
    for (size_t i = 0; i < s->nlayers; i++)
        r |= out_item(&o, "layer", s->layers[i], NULL);
    if (s->upper)
        r |= out_item(&o, "upper", s->upper, NULL);
    if (s->work)
        r |= out_item(&o, "work", s->work, NULL);
    for (size_t i = 0; i < s->nbinds; i++) {
        const struct cr_bind *b = &s->binds[i];
        char opts[32];
        snprintf(opts, sizeof opts, "%s%s%s%s%s", b->ro ? "ro" : "",
                 b->ro && b->idmap ? "," : "", b->idmap ? "idmap" : "",
                 (b->ro || b->idmap) && b->clone ? "," : "", b->clone ? "clone" : "");
        const char *f[3] = {b->src, b->dst, opts};
        r |= out_fields(&o, "bind", f, opts[0] ? 3 : 2);
    }
    for (size_t i = 0; i < s->ntmpfs; i++) {
        char size[32];
        snprintf(size, sizeof size, "%lld", (long long)s->tmpfs[i].size);
        const char *f[2] = {s->tmpfs[i].dst, size};
        r |= out_fields(&o, "tmpfs", f, s->tmpfs[i].size ? 2 : 1);
    }
    for (size_t i = 0; i < s->ndevices; i++) {
        const struct cr_devnode *d = &s->devices[i];
        char type[2] = {d->type, 0}, maj[16], min[16], mode[16];
        snprintf(maj, sizeof maj, "%u", d->major);
        snprintf(min, sizeof min, "%u", d->minor);
        snprintf(mode, sizeof mode, "%04o", d->mode);
        const char *f[6] = {d->host, d->dst, type, maj, min, mode};
        r |= out_fields(&o, "device", f, 6);
    }

    out_str(&o, "\n[process]\n");
    if (s->exec)
        r |= out_item(&o, "exec", s->exec, NULL);
    for (size_t i = 0; i < s->argc; i++)
        r |= out_item(&o, "argv", s->argv[i], NULL);
    if (s->directory)
        r |= out_item(&o, "directory", s->directory, NULL);
    out_kn(&o, "uid", (unsigned)s->uid);
    out_kn(&o, "gid", (unsigned)s->gid);
    out_str(&o, "groups =");
    for (size_t i = 0; i < s->ngroups; i++) {
        out_mem(&o, i ? "," : " ", 1);
        out_u64(&o, (unsigned)s->groups[i]);
    }
    out_str(&o, "\n");
    if (s->umask >= 0) {
        out_key(&o, "umask");
        out_oct4(&o, (unsigned)s->umask);
        out_mem(&o, "\n", 1);
    }
    if (s->console)
        out_str(&o, "console = true\n");
    for (size_t i = 0; i < s->nenv; i++)
        r |= out_item(&o, "env", s->env[i], NULL);

    out_str(&o, "\n[lifecycle]\n");
    out_kv(&o, "autorestart", cr_restart_name(s->autorestart));
    out_str(&o, "exitcodes =");
    bool any = false;
    for (int c = 0; c < 256; c++) {
        if (cr_codeset_has(&s->exitcodes, c)) {
            out_mem(&o, any ? "," : " ", 1);
            out_u64(&o, (unsigned)c);
            any = true;
        }
    }
    out_str(&o, "\n");
    out_ms(&o, "startsecs", s->startsecs_ms);
    out_kn(&o, "startretries", s->startretries);
    out_ms(&o, "restart_delay", s->restart_delay_ms);
    out_ms(&o, "restart_delay_max", s->restart_delay_max_ms);
    out_ms(&o, "restart_reset_after", s->restart_reset_after_ms);
    out_kn(&o, "max_restarts", s->max_restarts);
    out_ms(&o, "restart_window", s->restart_window_ms);
    out_kv(&o, "stopsignal", cr_signal_name(s->stopsignal, tmp, sizeof tmp));
    out_ms(&o, "stopwaitsecs", s->stopwait_ms);

    out_str(&o, "\n[readiness]\n");
    cr_ready_format(s->ready, s->ready_arg, tmp, sizeof tmp);
    out_kv(&o, "kind", tmp);
    for (size_t i = 0; i < s->ready_argc; i++)
        r |= out_item(&o, "argv", s->ready_argv[i], NULL);
    out_ms(&o, "timeout", s->ready_timeout_ms);

    out_str(&o, "\n[health]\n");
    for (size_t i = 0; i < s->health_argc; i++)
        r |= out_item(&o, "argv", s->health_argv[i], NULL);
    out_ms(&o, "interval", s->health_interval_ms);
    out_ms(&o, "timeout", s->health_timeout_ms);
    out_kn(&o, "retries", s->health_retries);
    out_ms(&o, "start_period", s->health_start_period_ms);
    out_kv(&o, "action", cr_health_action_name(s->health_action));

    out_str(&o, "\n[security]\n");
    out_mask(&o, "capabilities", s->caps);
    out_mask(&o, "ambient", s->ambient);
    out_kv(&o, "no_new_privs", s->no_new_privs ? "true" : "false");
    if (s->seccomp_fd >= 0)
        out_kn(&o, "seccomp_fd", s->seccomp_fd);
    for (size_t i = 0; i < s->nmasked; i++)
        r |= out_item(&o, "masked", s->masked[i], NULL);
    for (size_t i = 0; i < s->nreadonly; i++)
        r |= out_item(&o, "readonly", s->readonly[i], NULL);
    if (r)
        return -EINVAL;
    return o.full ? -ENOSPC : (ssize_t)o.used;
}

/* For cr_spec_size_bound: a value's bytes are at most three each once encoded (%XX), plus the
 * continuation lines and blanks escaped at their edges (~6 %): four each; its key, " = ",
 * the newline and a bind's options under ITEM_EXTRA; the section headers and every scalar
 * (all 256 exit codes, the two masks, the numbers) under FIXED_MAX. */
#define ITEM_EXTRA 64
#define FIXED_MAX (8 * 1024)

static size_t bound_str(const char *v)
{
    return v ? 4 * strlen(v) + ITEM_EXTRA : 0;
}

static size_t bound_strv(char *const *v, size_t n)
{
    size_t t = 0;
    for (size_t i = 0; i < n; i++)
        t += bound_str(v[i]);
    return t;
}

size_t cr_spec_size_bound(const struct cr_spec *s)
{
    size_t t = FIXED_MAX + bound_str(s->name) + bound_str(s->hostname) + bound_str(s->rootfs) +
               bound_strv(s->layers, s->nlayers) + bound_str(s->upper) + bound_str(s->work) +
               bound_str(s->exec) + bound_strv(s->argv, s->argc) + bound_str(s->directory) +
               16 * s->ngroups + bound_strv(s->env, s->nenv) +
               bound_strv(s->ready_argv, s->ready_argc) +
               bound_strv(s->health_argv, s->health_argc) + bound_strv(s->masked, s->nmasked) +
               bound_strv(s->readonly, s->nreadonly);
    for (size_t i = 0; i < s->nbinds; i++)
        t += bound_str(s->binds[i].src) + bound_str(s->binds[i].dst);
    for (size_t i = 0; i < s->ntmpfs; i++)
        t += bound_str(s->tmpfs[i].dst) + 32;
    for (size_t i = 0; i < s->ndevices; i++)
        t += bound_str(s->devices[i].host) + bound_str(s->devices[i].dst) + 48;
    return t;
}

int cr_spec_write_fd(const struct cr_spec *s, int fd)
{
    char *buf = malloc(CR_SPEC_MAX + 1);
    if (!buf)
        return -ENOMEM;
    ssize_t n = cr_spec_write(s, buf, CR_SPEC_MAX + 1);
    if (n < 0) {
        free(buf);
        return (int)n;
    }
    size_t done = 0;
    while (done < (size_t)n) {
        ssize_t w = write(fd, buf + done, (size_t)n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            int e = errno;
            free(buf);
            return -e;
        }
        done += (size_t)w;
    }
    free(buf);
    return 0;
}

/* ---- reading ---------------------------------------------------------------------------- */

enum vt {
    V_VERSION, V_STR, V_PATH, V_HOST, V_NS, V_BOOL, V_BIND, V_TMPFS, V_ARG, V_ENV, V_ID,
    V_GROUPS, V_UMASK, V_RESTART, V_CODES, V_MS, V_UINT, V_SIG, V_READY, V_RARG, V_HARG,
    V_ACTION, V_HEX, V_FD, V_MASKED, V_READONLY, V_DEVICE, V_LAYER,
};

#define F(m) offsetof(struct cr_spec, m)
static const struct skey {
    const char *section, *name;
    enum vt type;
    bool list;                   /* may repeat: each line is one more item */
    size_t off;
} skeys[] = {
    {"spec", "version", V_VERSION, false, 0},
    {"spec", "name", V_STR, false, F(name)},
    {"container", "hostname", V_HOST, false, F(hostname)},
    {"container", "rootfs", V_PATH, false, F(rootfs)},
    {"container", "namespaces", V_NS, false, F(namespaces)},
    {"container", "read_only", V_BOOL, false, F(read_only)},
    {"container", "rootfs_idmap", V_BOOL, false, F(rootfs_idmap)},
    {"container", "layer", V_LAYER, true, 0},
    {"container", "upper", V_PATH, false, F(upper)},
    {"container", "work", V_PATH, false, F(work)},
    {"container", "bind", V_BIND, true, 0},
    {"container", "tmpfs", V_TMPFS, true, 0},
    {"container", "device", V_DEVICE, true, 0},
    {"process", "exec", V_PATH, false, F(exec)},
    {"process", "argv", V_ARG, true, 0},
    {"process", "directory", V_PATH, false, F(directory)},
    {"process", "uid", V_ID, false, F(uid)},
    {"process", "gid", V_ID, false, F(gid)},
    {"process", "groups", V_GROUPS, false, 0},
    {"process", "umask", V_UMASK, false, F(umask)},
    {"process", "console", V_BOOL, false, F(console)},
    {"process", "env", V_ENV, true, 0},
    {"lifecycle", "autorestart", V_RESTART, false, F(autorestart)},
    {"lifecycle", "exitcodes", V_CODES, false, F(exitcodes)},
    {"lifecycle", "startsecs", V_MS, false, F(startsecs_ms)},
    {"lifecycle", "startretries", V_UINT, false, F(startretries)},
    {"lifecycle", "restart_delay", V_MS, false, F(restart_delay_ms)},
    {"lifecycle", "restart_delay_max", V_MS, false, F(restart_delay_max_ms)},
    {"lifecycle", "restart_reset_after", V_MS, false, F(restart_reset_after_ms)},
    {"lifecycle", "max_restarts", V_UINT, false, F(max_restarts)},
    {"lifecycle", "restart_window", V_MS, false, F(restart_window_ms)},
    {"lifecycle", "stopsignal", V_SIG, false, F(stopsignal)},
    {"lifecycle", "stopwaitsecs", V_MS, false, F(stopwait_ms)},
    {"readiness", "kind", V_READY, false, F(ready)},
    {"readiness", "argv", V_RARG, true, 0},
    {"readiness", "timeout", V_MS, false, F(ready_timeout_ms)},
    {"health", "argv", V_HARG, true, 0},
    {"health", "interval", V_MS, false, F(health_interval_ms)},
    {"health", "timeout", V_MS, false, F(health_timeout_ms)},
    {"health", "retries", V_UINT, false, F(health_retries)},
    {"health", "start_period", V_MS, false, F(health_start_period_ms)},
    {"health", "action", V_ACTION, false, F(health_action)},
    {"security", "capabilities", V_HEX, false, F(caps)},
    {"security", "ambient", V_HEX, false, F(ambient)},
    {"security", "no_new_privs", V_BOOL, false, F(no_new_privs)},
    {"security", "seccomp_fd", V_FD, false, F(seccomp_fd)},
    {"security", "masked", V_MASKED, true, 0},
    {"security", "readonly", V_READONLY, true, 0},
};
#undef F
#define NSKEYS (sizeof skeys / sizeof skeys[0])

struct entry {
    int key;
    int line;
    char *val;                   /* raw (still encoded), continuation lines appended */
};

struct reader {
    const char *section;         /* known section name, or NULL */
    bool section_bad;
    struct entry *e;
    size_t n, cap;
    int seen[NSKEYS];            /* line of a non-list key, 0 = not yet */
    bool oom;
    struct cr_ini *ini;
};

static void on_section(struct cr_ini *ini, const char *name)
{
    static const char *const known[] = {"spec", "container", "process", "lifecycle",
                                        "readiness", "health", "security"};
    struct reader *rd = ini->user;
    rd->section = NULL;
    rd->section_bad = false;
    if (!name) {
        rd->section_bad = true;  /* a broken header, already reported */
        return;
    }
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (!strcmp(name, known[i]))
            rd->section = known[i];
    if (!rd->section) {
        cr_ini_error(ini, "[%s]: unknown section", name);
        rd->section_bad = true;
    }
}

static void on_value(struct cr_ini *ini, const char *key, const char *value)
{
    struct reader *rd = ini->user;
    if (rd->section_bad)
        return;                  /* reported once, at the header */
    if (!rd->section) {
        cr_ini_error(ini, "%s: key outside of any section", key);
        return;
    }
    size_t k;
    for (k = 0; k < NSKEYS; k++)
        if (!strcmp(skeys[k].section, rd->section) && !strcmp(skeys[k].name, key))
            break;
    if (k == NSKEYS) {
        cr_ini_error(ini, "%s: unknown key in [%s]", key, rd->section);
        return;
    }
    if (ini->cont) {
        /* inih passes the continuation under the previous key; append to its last value */
        if (!rd->n || rd->e[rd->n - 1].key != (int)k)
            return;
        struct entry *last = &rd->e[rd->n - 1];
        if (!last->val)
            return;
        size_t a = strlen(last->val), b = strlen(value);
        char *nv = realloc(last->val, a + b + 1);
        if (!nv) {
            rd->oom = true;
            return;
        }
        memcpy(nv + a, value, b + 1);
        last->val = nv;
        return;
    }
    if (!skeys[k].list) {
        if (rd->seen[k]) {
            cr_ini_error(ini, "%s: given twice (first on line %d)", key, rd->seen[k]);
            return;
        }
        rd->seen[k] = ini->lineno;
    }
    /* Doubling: grown by one entry each time, a spec of ~50 keys made ~50 reallocs through
     * as many of musl's size classes in init, each class's first group a page of its own
     * (four of init's page faults per start) */
    struct entry *ne = rd->e;
    if (rd->n == rd->cap) {
        size_t cap = rd->cap ? 2 * rd->cap : 64;
        if (!(ne = realloc(rd->e, cap * sizeof *ne))) {
            rd->oom = true;
            return;
        }
        rd->e = ne;
        rd->cap = cap;
    }
    ne[rd->n].key = (int)k;
    ne[rd->n].line = ini->lineno;
    ne[rd->n].val = strdup(value);
    if (!ne[rd->n].val)
        rd->oom = true;
    rd->n++;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)toupper((unsigned char)c);
    return c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Decodes %XX in place, up to the raw byte stop (':' in bind/tmpfs items) or the end.
 * Returns s, with *next pointing after the stop byte (NULL when the end was reached), or
 * NULL with a message in *err. */
static char *decode(char *s, char stop, char **next, const char **err)
{
    char *w = s, *r = s;
    while (*r && *r != stop) {
        if (*r == '%') {
            int h = hexval(r[1]), l = h >= 0 ? hexval(r[2]) : -1;
            if (h < 0 || l < 0) {
                *err = "bad %-escape (expected %XX)";
                return NULL;
            }
            if (h == 0 && l == 0) {
                *err = "%00 (a NUL byte) is not allowed";
                return NULL;
            }
            *w++ = (char)(h * 16 + l);
            r += 3;
        } else {
            *w++ = *r++;
        }
    }
    *next = *r ? r + 1 : NULL;
    *w = '\0';
    return s;
}

static bool abs_path(const char *p)
{
    return p && p[0] == '/' && strlen(p) < 4096;
}

#define SERR(fmt, ...) cr_errlist_add(errors, "%s:%d: %s: " fmt, origin, e->line, k->name, __VA_ARGS__)

/* HOST:DST:TYPE:MAJOR:MINOR:MODE, DST below /dev. */
static void convert_device(struct cr_spec *s, char **f, int nf, const struct entry *e,
                           const char *origin, struct cr_errlist *errors)
{
    const struct skey *k = &skeys[e->key];
    unsigned maj, min, mode = 0;
    char *end = NULL;
    if (nf != 6 || (strcmp(f[2], "c") && strcmp(f[2], "b")) ||
        cr_parse_uint(f[3], 4095, &maj) || cr_parse_uint(f[4], 1048575, &min)) {
        SERR("%s", "expected HOST:DST:c|b:MAJOR:MINOR:MODE");
        return;
    }
    errno = 0;
    mode = (unsigned)strtoul(f[5], &end, 8);
    if (!*f[5] || *end || mode > 0777 || errno) {
        SERR("'%s' is not an octal mode", f[5]);
        return;
    }
    if (!abs_path(f[0]) || strncmp(f[1], "/dev/", 5) || !abs_path(f[1]) || strstr(f[1], "/..")) {
        SERR("%s", "HOST must be an absolute path, DST a path below /dev");
        return;
    }
    struct cr_devnode d = {f[0], f[1], f[2][0], maj, min, mode};
    if (cr_spec_add_device(s, &d))
        SERR("%s", "out of memory");
}

static void convert(struct cr_spec *s, struct entry *e, const char *origin,
                    struct cr_errlist *errors)
{
    const struct skey *k = &skeys[e->key];
    char *raw = e->val, *end = NULL;
    const char *err = NULL;
    void *field = (char *)s + k->off;

    if (k->type == V_BIND || k->type == V_TMPFS || k->type == V_DEVICE) {
        char *f[6] = {0};
        int nf = 0, maxf = k->type == V_DEVICE ? 6 : 3;
        char *p = raw;
        while (p) {
            if (nf == maxf) {
                SERR("%s", "too many ':' fields");
                return;
            }
            f[nf++] = p;
            if (!decode(p, ':', &p, &err)) {
                SERR("%s", err);
                return;
            }
        }
        if (k->type == V_DEVICE) {
            convert_device(s, f, nf, e, origin, errors);
            return;
        }
        if (k->type == V_BIND) {
            bool ro = false, idmap = false, clone = false;
            if (nf < 2 || (nf == 3 && spec_bind_opts(f[2], &ro, &idmap, &clone) < 0)) {
                SERR("%s", "expected SRC:DST[:ro|rw|idmap|ro,idmap][,clone]");
                return;
            }
            if (!abs_path(f[0]) || !abs_path(f[1])) {
                SERR("%s", "source and destination must be absolute paths");
                return;
            }
            if (cr_spec_add_bind(s, f[0], f[1], ro))
                SERR("%s", "out of memory");
            else {
                s->binds[s->nbinds - 1].idmap = idmap;
                s->binds[s->nbinds - 1].clone = clone;
            }
        } else {
            int64_t size = 0;
            if (nf > 2 || (nf == 2 && cr_parse_size(f[1], &size)) || size == INT64_MAX) {
                SERR("%s", "expected DST[:SIZE]");
                return;
            }
            if (!abs_path(f[0])) {
                SERR("%s", "destination must be an absolute path");
                return;
            }
            if (cr_spec_add_tmpfs(s, f[0], size))
                SERR("%s", "out of memory");
        }
        return;
    }

    if (!decode(raw, 0, &end, &err)) {
        (void)end;
        SERR("%s", err);
        return;
    }
    unsigned u;
    int64_t ms;
    switch (k->type) {
    case V_VERSION:
        break;                   /* checked before anything else */
    case V_STR:
    case V_HOST:
    case V_PATH:
        if (k->type == V_PATH && !abs_path(raw)) {
            SERR("'%s' is not an absolute path", raw);
            return;
        }
        if (k->type == V_HOST && (!*raw || strlen(raw) > 64)) {
            SERR("'%s' is not a hostname of 1 to 64 bytes", raw);
            return;
        }
        if (k->type == V_STR && !*raw) {
            SERR("%s", "empty");
            return;
        }
        free(*(char **)field);
        *(char **)field = strdup(raw);
        break;
    case V_NS: {
        const char *bad;
        if (cr_ns_parse(raw, field, &bad))
            SERR("unknown namespace '%s'", bad);
        break;
    }
    case V_BOOL:
        if (cr_parse_bool(raw, field))
            SERR("'%s' is not a boolean", raw);
        break;
    case V_ARG:
        if (cr_spec_add_arg(s, raw))
            SERR("%s", "out of memory");
        break;
    case V_ENV: {
        char *eq = strchr(raw, '=');
        if (!eq || eq == raw) {
            SERR("'%s' is not NAME=VALUE", raw);
            return;
        }
        *eq = '\0';
        if (cr_spec_get_env(s, raw)) {
            SERR("%s set twice", raw);
            return;
        }
        if (cr_spec_set_env(s, raw, eq + 1))
            SERR("%s", "out of memory");
        break;
    }
    case V_ID:
        if (cr_parse_uint(raw, 0xFFFFFFFEu, &u))
            SERR("'%s' is not a numeric id", raw);
        else
            *(uid_t *)field = u;
        break;
    case V_GROUPS: {
        char *p = raw;
        while (*p) {
            size_t n = strcspn(p, ",");
            char item[16];
            if (n == 0 || n >= sizeof item) {
                SERR("'%s' is not a list of numeric ids", raw);
                return;
            }
            memcpy(item, p, n);
            item[n] = '\0';
            if (cr_parse_uint(item, 0xFFFFFFFEu, &u)) {
                SERR("'%s' is not a numeric id", item);
                return;
            }
            cr_spec_add_group(s, u);
            p += n + (p[n] == ',');
        }
        break;
    }
    case V_UMASK: {
        char *ep;
        long v = strtol(raw, &ep, 8);
        if (!*raw || *ep || v < 0 || v > 0777)
            SERR("'%s' is not an octal umask", raw);
        else
            *(int *)field = (int)v;
        break;
    }
    case V_RESTART: {
        int r = cr_restart_parse(raw);
        if (r < 0)
            SERR("'%s' is not false, unexpected or true", raw);
        else
            *(int *)field = r;
        break;
    }
    case V_CODES:
        if (cr_parse_codes(raw, field))
            SERR("'%s' is not a list of exit codes 0-255", raw);
        break;
    case V_MS:
        if (cr_parse_duration_ms(raw, &ms))
            SERR("'%s' is not a duration", raw);
        else
            *(int64_t *)field = ms;
        break;
    case V_UINT:
        if (cr_parse_uint(raw, 1000000, &u))
            SERR("'%s' is not a number from 0 to 1000000", raw);
        else
            *(unsigned *)field = u;
        break;
    case V_SIG: {
        int sig = cr_parse_signal(raw);
        if (sig < 0)
            SERR("'%s' is not a signal", raw);
        else
            *(int *)field = sig;
        break;
    }
    case V_READY: {
        const char *cmd;
        int arg, kind = cr_ready_parse(raw, &arg, &cmd);
        if (kind < 0 || cmd)
            SERR("'%s' is not none, notify, fd:N, tcp:PORT or exec", raw);
        else {
            s->ready = kind;
            s->ready_arg = arg;
        }
        break;
    }
    case V_RARG:
    case V_HARG:
        if ((k->type == V_RARG ? cr_spec_add_ready_arg : cr_spec_add_health_arg)(s, raw))
            SERR("%s", "out of memory");
        break;
    case V_ACTION: {
        int a = cr_health_action_parse(raw);
        if (a < 0)
            SERR("'%s' is not restart, stop or none", raw);
        else
            s->health_action = a;
        break;
    }
    case V_HEX: {
        char *ep;
        errno = 0;
        unsigned long long v = strtoull(raw, &ep, 16);
        if (strncmp(raw, "0x", 2) || !raw[2] || *ep || errno)
            SERR("'%s' is not a 64-bit hex mask (0x...)", raw);
        else
            *(uint64_t *)field = v;
        break;
    }
    case V_FD:
        if (cr_parse_uint(raw, 1023, &u) || u < 3)
            SERR("'%s' is not a file descriptor from 3 to 1023", raw);
        else
            *(int *)field = (int)u;
        break;
    case V_MASKED:
    case V_READONLY:
        if (!abs_path(raw))
            SERR("'%s' is not an absolute path", raw);
        else if ((k->type == V_MASKED ? cr_spec_add_masked : cr_spec_add_readonly)(s, raw))
            SERR("%s", "out of memory");
        break;
    case V_LAYER: {
        int lr = cr_spec_add_layer(s, raw);
        if (lr == -EINVAL)
            SERR("'%s' is not an absolute path without ':' and ','", raw);
        else if (lr)
            SERR("%s", "out of memory");
        break;
    }
    case V_BIND:
    case V_TMPFS:
    case V_DEVICE:
        break;
    }
}
#undef SERR

int cr_spec_parse(const char *text, size_t len, const char *origin, struct cr_spec *out,
                  struct cr_errlist *errors)
{
    struct reader rd = {0};
    struct cr_ini ini = {
        .file = origin, .buf = text, .len = len, .on_section = on_section,
        .on_value = on_value, .errors = errors, .user = &rd,
    };
    size_t before = errors->n;
    cr_spec_init(out);
    if (len > CR_SPEC_MAX)
        cr_errlist_add(errors, "%s: larger than %d bytes", origin, CR_SPEC_MAX);
    else if (cr_ini_parse(&ini) < 0)
        rd.oom = true;

    /* The version comes first: a spec from another version is not read any further. */
    bool version_ok = false;
    for (size_t i = 0; i < rd.n; i++) {
        if (skeys[rd.e[i].key].type != V_VERSION)
            continue;
        unsigned v;
        if (rd.e[i].val && !cr_parse_uint(rd.e[i].val, 1000, &v) && v == CR_SPEC_VERSION)
            version_ok = true;
        else
            cr_errlist_add(errors, "%s:%d: version: '%s' is not supported (this init reads %d)",
                           origin, rd.e[i].line, rd.e[i].val ? rd.e[i].val : "",
                           CR_SPEC_VERSION);
    }
    if (!version_ok && errors->n == before)
        cr_errlist_add(errors, "%s: [spec] version is missing", origin);
    if (version_ok) {
        for (size_t i = 0; i < rd.n; i++)
            if (rd.e[i].val)
                convert(out, &rd.e[i], origin, errors);
        if (!out->name)
            cr_errlist_add(errors, "%s: [spec] name is missing", origin);
        if (!out->argc)
            cr_errlist_add(errors, "%s: [process] argv is missing", origin);
        if ((out->ready == CR_READY_EXEC) != (out->ready_argc > 0))
            cr_errlist_add(errors, "%s: [readiness]: argv goes with kind = exec, and only "
                           "with it", origin);
        if (!(out->namespaces & CR_NS_MOUNT) && (out->rootfs || out->nbinds || out->ntmpfs ||
                                                  out->read_only || out->ndevices))
            cr_errlist_add(errors, "%s: [container]: rootfs, bind, tmpfs, device and read_only "
                           "need the mount namespace", origin);
        if ((out->nlayers || out->upper || out->work) && !out->rootfs)
            cr_errlist_add(errors, "%s: [container]: layer, upper and work need rootfs (the "
                           "overlay's mount point)", origin);
        if (!out->upper != !out->work || (out->upper && !out->nlayers))
            cr_errlist_add(errors, "%s: [container]: upper and work go together, with at "
                           "least one layer", origin);
        if ((out->upper && strpbrk(out->upper, ":,")) || (out->work && strpbrk(out->work, ":,")))
            cr_errlist_add(errors, "%s: [container]: upper and work cannot hold ':' or ','",
                           origin);
        if (cr_spec_nidmap(out) && !(out->namespaces & CR_NS_USER))
            cr_errlist_add(errors, "%s: [container]: idmap binds and rootfs_idmap need the "
                           "user namespace", origin);
        if (cr_spec_nidmap(out) > CR_IDMAP_MAX)
            cr_errlist_add(errors, "%s: [container]: more than %d idmapped mounts", origin,
                           CR_IDMAP_MAX);
        if (out->ambient & ~out->caps)
            cr_errlist_add(errors, "%s: [security]: ambient holds capabilities outside "
                           "capabilities", origin);
    }
    for (size_t i = 0; i < rd.n; i++)
        free(rd.e[i].val);
    free(rd.e);
    if (rd.oom)
        cr_errlist_add(errors, "%s: out of memory", origin);
    if (errors->n != before) {
        cr_spec_free(out);
        return -EINVAL;
    }
    return 0;
}

int cr_spec_read_fd(int fd, const char *origin, struct cr_spec *out, struct cr_errlist *errors)
{
    char *buf;
    size_t len;
    cr_spec_init(out);
    int r = cr_ini_load_fd(fd, origin, CR_SPEC_MAX, &buf, &len, errors);
    if (r < 0)
        return r;
    r = cr_spec_parse(buf, len, origin, out, errors);
    free(buf);
    return r;
}
