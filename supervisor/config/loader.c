/* services.ini → validated services. Reading happens in two passes: inih (through the
 * line-counting reader) collects each section's raw values with their lines; then every
 * service (and each numprocs copy) is built from the table in keys.c: defaults, %(...)s
 * expansion, typed parsing, cross-key checks, and the machine checks in machine.c. */
#include "config/config.h"
#include "config/values.h"
#include "image/image.h"
#include "text.h"

#include <ctype.h>
#include <errno.h>
#include <glob.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/utsname.h>

/* ---- raw sections, as read ------------------------------------------------------------- */

enum sec_kind { SEC_GLOBAL, SEC_SERVICE, SEC_INCLUDE, SEC_NETWORK, SEC_GROUP, SEC_UNIX_HTTP,
                SEC_INET_HTTP, SEC_IGNORED, SEC_BAD };

struct raw_val {
    int key;
    int line;
    const char *file;            /* its file (a merged [supervisord] spans two) */
    char *value;
};

struct raw_sec {
    enum sec_kind kind;
    char *header;                /* as written, e.g. "program:web" */
    char *name;                  /* the service (or network) NAME */
    const char *file;            /* one of cfg->files */
    char *here;                  /* its directory, for %(here)s and relative paths */
    int line;
    bool listener;               /* [eventlistener:NAME] */
    bool fcgi;                   /* [fcgi-program:NAME] */
    bool lenient;                /* supervisord's own section ([program:x], [supervisord]):
                                    an unknown key that is no typo is a notice, as supervisord
                                    ignores it */
    struct raw_val *v;
    size_t n;
    int seen[CR_NKEYS];
    /* a service section listed by a [group:G] */
    const struct raw_sec *group;
    int64_t group_priority;
};

/* Names to the index of what holds them (a section, a service), for "defined twice" and
 * "already used" in one pass: comparing each with every earlier one was a quarter of loading
 * a file of 1,000 services. Open addressing over cr_fnv1a (text.h); slots hold index + 1
 * (0: free). */
struct name_index {
    size_t cap, n;               /* cap: a power of two, or 0 */
    size_t *slot;
};

/* The index stored under name (the name of index i is name_of(ctx, i)), or -1 once i is
 * added under it; -2: out of memory. */
static long name_index_add(struct name_index *x, const char *name, size_t i,
                           const char *(*name_of)(const void *ctx, size_t i), const void *ctx)
{
    if (2 * (x->n + 1) > x->cap) {
        size_t cap = x->cap ? 2 * x->cap : 64;
        size_t *v = calloc(cap, sizeof *v);
        if (!v)
            return -2;
        for (size_t k = 0; k < x->cap; k++)
            if (x->slot[k]) {
                const char *old = name_of(ctx, x->slot[k] - 1);
                size_t j = cr_fnv1a(old, strlen(old)) & (cap - 1);
                while (v[j])
                    j = (j + 1) & (cap - 1);
                v[j] = x->slot[k];
            }
        free(x->slot);
        x->slot = v;
        x->cap = cap;
    }
    size_t j = cr_fnv1a(name, strlen(name)) & (x->cap - 1);
    for (; x->slot[j]; j = (j + 1) & (x->cap - 1))
        if (!strcmp(name_of(ctx, x->slot[j] - 1), name))
            return (long)(x->slot[j] - 1);
    x->slot[j] = i + 1;
    x->n++;
    return -1;
}

static void name_index_free(struct name_index *x)
{
    free(x->slot);
    *x = (struct name_index){0};
}

struct loader {
    struct cr_config *cfg;
    struct raw_sec *secs;
    size_t nsecs;
    long cur;                    /* index of the section being read, -1 before any */
    bool included;               /* reading an included file */
    bool last_rejected;          /* the last key line was refused: skip its continuations */
    bool oom;
    struct cr_roots *roots;      /* the machine facts services share (NULL: not kept) */
    size_t cap;                  /* of secs */
    char *here_file, *here_dir;  /* a file and its directory (its sections share it) */
    struct name_index names[3];  /* the sections of services, networks and groups by name */
};

static const char *sec_name(const void *secs, size_t i)
{
    return ((const struct raw_sec *)secs)[i].name;
}

static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > CR_NAME_MAX)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '.' && *s != '-')
            return false;
    return true;
}

/* The key sections a service section takes: every service key, and its own kind's. */
static unsigned sec_bits(const struct raw_sec *rs)
{
    return CR_SEC_SERVICE | (rs->listener ? CR_SEC_LISTENER : 0) | (rs->fcgi ? CR_SEC_FCGI : 0);
}

static struct raw_sec *cur_sec(struct loader *L)
{
    return L->cur >= 0 ? &L->secs[L->cur] : NULL;
}

/* Sections of supervisord's files that corral reads past, each with what it does instead. */
static const struct { const char *name; const char *notice; } ignored_sections[] = {
    {"supervisorctl", "supervisorctl's settings; svctl reads this file's control_socket"},
    {"rpcinterface:", "corral's XML-RPC API ([unix_http_server], [inet_http_server]) is "
                      "supervisord's supervisor namespace, always on"},
};

/* "did you mean" for a section header: the closest known name (or prefix, for NAME:x). */
static const char *suggest_section(const char *header)
{
    static const char *const known[] = {
        "supervisor", "supervisord", "include", "service:", "program:", "supervisorctl",
        "unix_http_server", "inet_http_server", "rpcinterface:", "group:", "eventlistener:",
        "fcgi-program:",
    };
    char head[64];
    size_t n = strcspn(header, ":");
    if (n >= sizeof head - 1)
        return NULL;
    memcpy(head, header, n);
    head[n] = header[n] == ':' ? ':' : '\0';
    head[n + 1] = '\0';
    const char *best = NULL;
    int bestd = n <= 4 ? 2 : 3;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        int d = cr_edit_distance(head, known[i]);
        if (d < bestd) {
            bestd = d;
            best = known[i];
        }
    }
    return best;
}

static void on_section(struct cr_ini *ini, const char *header)
{
    struct loader *L = ini->user;
    bool broken = !header;       /* a broken header (reported): its keys are ignored */
    if (broken)
        header = "";
    /* doubling: one more each time copied the array whole for every section */
    if (L->nsecs == L->cap) {
        size_t cap = L->cap ? 2 * L->cap : 16;
        struct raw_sec *ns = realloc(L->secs, cap * sizeof *ns);
        if (!ns) {
            L->oom = true;
            L->cur = -1;
            return;
        }
        L->secs = ns;
        L->cap = cap;
    }
    struct raw_sec *s = &L->secs[L->nsecs];
    memset(s, 0, sizeof *s);
    s->file = ini->file;
    s->line = ini->lineno;
    s->header = strdup(header);
    /* %(here)s and relative paths: the file's directory, absolute (realpath once a file) */
    if (!L->here_dir || strcmp(L->here_file, ini->file)) {
        char *dir = strdup(ini->file), real[PATH_MAX];
        free(L->here_dir);
        free(L->here_file);
        L->here_dir = dir ? strdup(realpath(dirname(dir), real) ? real : ".") : NULL;
        L->here_file = strdup(ini->file);
        if (!L->here_file) {
            free(L->here_dir);
            L->here_dir = NULL;
        }
        free(dir);
    }
    s->here = L->here_dir ? strdup(L->here_dir) : NULL;
    L->cur = (long)L->nsecs++;
    if (!s->header || !s->here) {
        L->oom = true;
        s->kind = SEC_BAD;
        return;
    }

    s->kind = SEC_BAD;
    if (broken)
        return;
    if (!strcmp(header, "supervisor") || !strcmp(header, "supervisord")) {
        s->kind = SEC_GLOBAL;
        s->lenient = header[10] == 'd';
    } else if (!strcmp(header, "unix_http_server") || !strcmp(header, "inet_http_server")) {
        s->kind = header[0] == 'u' ? SEC_UNIX_HTTP : SEC_INET_HTTP;
        s->lenient = true;
    } else if (!strcmp(header, "include")) {
        if (L->included)
            cr_ini_error(ini, "[include]: included files cannot include further");
        else
            s->kind = SEC_INCLUDE;
    } else if (!strncmp(header, "group:", 6)) {
        if (!valid_name(header + 6))
            cr_ini_error(ini, "[%s]: the name must be 1 to %d of A-Z a-z 0-9 _ . -", header,
                         CR_NAME_MAX);
        else if (!(s->name = strdup(header + 6)))
            L->oom = true;
        else
            s->kind = SEC_GROUP;
        s->lenient = true;
    } else if (!strncmp(header, "service:", 8) || !strncmp(header, "program:", 8) ||
               !strncmp(header, "eventlistener:", 14) || !strncmp(header, "fcgi-program:", 13)) {
        /* an event listener is a program whose stdin and stdout carry the events */
        const char *name = strchr(header, ':') + 1;
        if (!valid_name(name))
            cr_ini_error(ini, "[%s]: the name must be 1 to %d of A-Z a-z 0-9 _ . -", header,
                         CR_NAME_MAX);
        else if (!(s->name = strdup(name)))
            L->oom = true;
        else
            s->kind = SEC_SERVICE;
        s->lenient = header[0] != 's';
        s->listener = header[0] == 'e';
        s->fcgi = header[0] == 'f';   /* a program whose stdin is a listening socket */
    } else if (!strncmp(header, "network:", 8)) {
        if (!valid_name(header + 8))
            cr_ini_error(ini, "[%s]: the name must be 1 to %d of A-Z a-z 0-9 _ . -", header,
                         CR_NAME_MAX);
        else if (!(s->name = strdup(header + 8)))
            L->oom = true;
        else
            s->kind = SEC_NETWORK;
    } else {
        for (size_t i = 0; i < sizeof ignored_sections / sizeof ignored_sections[0]; i++) {
            const char *n = ignored_sections[i].name;
            size_t len = strlen(n);
            if (n[len - 1] == ':' ? strncmp(header, n, len) : strcmp(header, n))
                continue;
            s->kind = SEC_IGNORED;
            cr_errlist_add(&L->cfg->notices, "%s:%d: [%s]: supervisord's section, accepted and "
                           "ignored: %s", ini->file, ini->lineno, header,
                           ignored_sections[i].notice);
            return;
        }
        const char *hint = suggest_section(header);
        if (hint)
            cr_ini_error(ini, "[%s]: unknown section (did you mean [%s%s]?)", header, hint,
                         hint[strlen(hint) - 1] == ':' ? "NAME" : "");
        else
            cr_ini_error(ini, "[%s]: unknown section", header);
        return;
    }
    if (s->kind == SEC_BAD)
        return;
    /* One [supervisor] (or [supervisord]), one [include], one section per service name. */
    int named = s->kind == SEC_SERVICE ? 0 : s->kind == SEC_NETWORK ? 1
              : s->kind == SEC_GROUP ? 2 : -1;
    long first = -1;
    if (named >= 0) {
        first = name_index_add(&L->names[named], s->name, (size_t)L->cur, sec_name, L->secs);
        if (first == -2) {
            L->oom = true;
            s->kind = SEC_BAD;
            return;
        }
    }
    for (size_t i = named >= 0 ? (first < 0 ? L->nsecs : (size_t)first) : 0; i + 1 < L->nsecs;
         i++) {
        struct raw_sec *o = &L->secs[i];
        if (o->kind != s->kind)
            continue;
        if (s->kind == SEC_GLOBAL && (s->lenient || o->lenient)) {
            /* supervisord reads its files into one parser: a second [supervisord] (often
             * in an included file) adds to the first, the last value of a key counting */
            cr_errlist_add(&L->cfg->notices, "%s:%d: [%s]: given again (first at %s:%d); its "
                           "keys join the first", ini->file, ini->lineno, header, o->file,
                           o->line);
            free(s->header);
            free(s->here);
            L->nsecs--;
            L->cur = (long)i;
            return;
        }
        cr_ini_error(ini, "[%s]: defined twice (first at %s:%d)", header, o->file, o->line);
        s->kind = SEC_BAD;
        return;
    }
}

static bool is_list(enum cr_key_type t)
{
    return t == CR_T_LIST || t == CR_T_ITEMS || t == CR_T_ENV;
}

static const char *kind_name(const struct raw_sec *s)
{
    return s->header;
}

static void on_value(struct cr_ini *ini, const char *key, const char *value)
{
    struct loader *L = ini->user;
    struct raw_sec *s = cur_sec(L);
    if (ini->cont && L->last_rejected)
        return;
    L->last_rejected = true;
    if (!s) {
        cr_ini_error(ini, "%s: outside of any section", key);
        return;
    }
    if (s->kind == SEC_BAD || s->kind == SEC_IGNORED)
        return;
    unsigned bit = s->kind == SEC_GLOBAL ? CR_SEC_GLOBAL
                 : s->kind == SEC_INCLUDE ? CR_SEC_INCLUDE
                 : s->kind == SEC_NETWORK ? CR_SEC_NETWORK
                 : s->kind == SEC_GROUP ? CR_SEC_GROUP
                 : s->kind == SEC_UNIX_HTTP ? CR_SEC_UNIX_HTTP
                 : s->kind == SEC_INET_HTTP ? CR_SEC_INET_HTTP
                 : sec_bits(s);
    const struct cr_key *k = cr_key_find(key, bit);
    if (!k || !(k->sections & bit)) {
        const char *hint = k ? NULL : cr_key_suggest(key);
        if (ini->cont)
            return;
        if (hint)
            cr_ini_error(ini, "%s: unknown key (did you mean %s?)", key, hint);
        else if (s->lenient && k)
            cr_errlist_add(&L->cfg->notices, "%s:%d: %s: not a key of [%s]; ignored",
                           ini->file, ini->lineno, k->name, kind_name(s));
        else if (s->lenient)
            cr_errlist_add(&L->cfg->notices, "%s:%d: %s: unknown key; ignored (as supervisord "
                           "ignores it)", ini->file, ini->lineno, key);
        else if (k)
            cr_ini_error(ini, "%s: not allowed in [%s]", k->name, kind_name(s));
        else
            cr_ini_error(ini, "%s: unknown key", key);
        return;
    }
    int id = cr_key_id(k);
    if (ini->cont) {
        /* inih hands an indented line over under the previous key's name */
        struct raw_val *last = s->n ? &s->v[s->n - 1] : NULL;
        if (!last || last->key != id)
            return;
        if (k->type == CR_T_COMMAND || id == CR_K_FILES) {
            size_t a = strlen(last->value), b = strlen(value);
            char *nv = realloc(last->value, a + b + 2);
            if (!nv) {
                L->oom = true;
                return;
            }
            nv[a] = ' ';
            memcpy(nv + a + 1, value, b + 1);
            last->value = nv;
            L->last_rejected = false;
            return;
        }
        if (!is_list(k->type)) {
            cr_ini_error(ini, "%s: takes one value (indented lines continue only lists and "
                         "command)", k->name);
            return;
        }
    } else if (s->seen[id] && !is_list(k->type)) {
        /* supervisord (Python's configparser, strict=False) keeps the last value */
        cr_errlist_add(&L->cfg->notices, "%s:%d: %s: given twice in [%s] (first on line %d); "
                       "the last value counts", ini->file, ini->lineno, k->name, kind_name(s),
                       s->seen[id]);
        size_t kept = 0;
        for (size_t j = 0; j < s->n; j++) {
            if (s->v[j].key == id)
                free(s->v[j].value);
            else
                s->v[kept++] = s->v[j];
        }
        s->n = kept;
    }
    s->seen[id] = ini->lineno;
    struct raw_val *nv = realloc(s->v, (s->n + 1) * sizeof *nv);
    if (!nv) {
        L->oom = true;
        return;
    }
    s->v = nv;
    nv[s->n].key = id;
    nv[s->n].line = ini->lineno;
    nv[s->n].file = ini->file;
    nv[s->n].value = strdup(value);
    if (!nv[s->n].value) {
        L->oom = true;
        return;
    }
    s->n++;
    L->last_rejected = false;
    if (k->notice && !ini->cont)
        cr_errlist_add(&L->cfg->notices, "%s:%d: %s: %s", ini->file, ini->lineno, k->name,
                       k->notice);
}

/* ---- files and includes ------------------------------------------------------------------ */

static const char *keep_file(struct loader *L, const char *path)
{
    struct cr_config *cfg = L->cfg;
    char **nf = realloc(cfg->files, (cfg->nfiles + 1) * sizeof *nf);
    if (!nf)
        return NULL;
    cfg->files = nf;
    if (!(nf[cfg->nfiles] = strdup(path)))
        return NULL;
    return nf[cfg->nfiles++];
}

static void read_file(struct loader *L, const char *path)
{
    char *buf;
    size_t len;
    const char *file = keep_file(L, path);
    if (!file) {
        L->oom = true;
        return;
    }
    if (cr_ini_load(file, CR_CONFIG_MAX_BYTES, &buf, &len, &L->cfg->errors) < 0)
        return;
    struct cr_ini ini = {
        .file = file, .buf = buf, .len = len, .on_section = on_section, .on_value = on_value,
        .errors = &L->cfg->errors, .user = L, .max_line = CR_CONFIG_MAX_LINE,
        .comment_chars = ";#",   /* supervisord's inline comments: " ;" and " #" */
    };
    L->cur = -1;
    L->last_rejected = false;
    if (cr_ini_parse(&ini) < 0)
        L->oom = true;
    free(buf);
}

static bool has_glob_magic(const char *s)
{
    return strpbrk(s, "*?[") != NULL;
}

/* Adds the words of an [include] files value, made absolute against here. */
static void add_patterns(struct loader *L, char *value, int line, const char *here,
                         char ***patterns, int **lines, size_t *np)
{
    char *save = NULL;
    for (char *w = strtok_r(value, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
        char *p;
        if (asprintf(&p, "%s%s%s", w[0] == '/' ? "" : here, w[0] == '/' ? "" : "/", w) < 0) {
            L->oom = true;
            continue;
        }
        char **np2 = realloc(*patterns, (*np + 1) * sizeof *np2);
        if (np2)
            *patterns = np2;
        int *nl = realloc(*lines, (*np + 1) * sizeof *nl);
        if (nl)
            *lines = nl;
        if (!np2 || !nl) {
            free(p);
            L->oom = true;
            continue;
        }
        (*patterns)[*np] = p;
        (*lines)[(*np)++] = line;
    }
}

static bool already_read(struct loader *L, const char *path)
{
    char real[PATH_MAX], other[PATH_MAX];
    if (!realpath(path, real))
        return false;
    for (size_t f = 0; f < L->cfg->nfiles; f++)
        if (realpath(L->cfg->files[f], other) && !strcmp(other, real))
            return true;
    return false;
}

/* [include] files = a.ini conf.d/x*.ini: relative to the including file, each glob's matches
 * in sorted order, each file once; included files cannot include further. */
static void read_includes(struct loader *L, size_t main_secs)
{
    char **patterns = NULL;
    int *lines = NULL;
    size_t np = 0;
    const char *file = NULL;
    /* L->secs moves while included files are read: collect the patterns first */
    for (size_t i = 0; i < main_secs; i++) {
        struct raw_sec *s = &L->secs[i];
        if (s->kind != SEC_INCLUDE)
            continue;
        file = s->file;
        if (s->n == 0)
            cr_errlist_add(&L->cfg->errors, "%s:%d: [include]: files is missing", s->file,
                           s->line);
        for (size_t j = 0; j < s->n; j++) {
            /* %(here)s and %(ENV_X)s work here too, as in supervisord */
            char err[512];
            struct cr_xctx x = {.program = "include", .here = s->here, .host = "", .numprocs = 1};
            char *v = cr_cfg_expand(s->v[j].value, &x, err, sizeof err);
            if (!v) {
                cr_errlist_add(&L->cfg->errors, "%s:%d: files: %s", s->file, s->v[j].line, err);
                continue;
            }
            add_patterns(L, v, s->v[j].line, s->here, &patterns, &lines, &np);
            free(v);
        }
    }
    for (size_t j = 0; j < np; j++) {
        glob_t g;
        int r = glob(patterns[j], 0, NULL, &g);
        if (r == GLOB_NOMATCH) {
            if (!has_glob_magic(patterns[j]))
                cr_errlist_add(&L->cfg->errors, "%s:%d: files: %s: No such file or directory",
                               file, lines[j], patterns[j]);
        } else if (r != 0) {
            cr_errlist_add(&L->cfg->errors, "%s:%d: files: %s: cannot be read", file, lines[j],
                           patterns[j]);
        } else {
            for (size_t m = 0; m < g.gl_pathc; m++) {
                if (already_read(L, g.gl_pathv[m]))
                    continue;
                if (L->cfg->nfiles >= CR_CONFIG_MAX_FILES) {
                    cr_errlist_add(&L->cfg->errors, "%s:%d: files: more than %d files", file,
                                   lines[j], CR_CONFIG_MAX_FILES);
                    break;
                }
                L->included = true;
                read_file(L, g.gl_pathv[m]);
                L->included = false;
            }
        }
        if (r == 0 || r == GLOB_NOMATCH)
            globfree(&g);
        free(patterns[j]);
    }
    free(patterns);
    free(lines);
}

/* ---- building services ------------------------------------------------------------------------ */

static void free_service(struct cr_service *svc)
{
    for (int i = 0; i < CR_NKEYS; i++)
        if (cr_keys[i].sections & CR_SEC_SERVICES)
            cr_cfg_free_field(&cr_keys[i], (char *)svc + cr_keys[i].off);
    free(svc->name);
    free(svc->program);
    free(svc->section);
    free(svc->sd_group);
    free(svc->uid_map_text);
    free(svc->gid_map_text);
    free(svc->dev_rules);
    free(svc->nets);
    free(svc->join);
    free(svc->port);
    if (svc->img) {
        cr_image_free(svc->img);
        free(svc->img);
    }
    cr_spec_free(&svc->spec);
}

/* ready, ready_timeout and the health_* keys → the spec's [readiness] and [health]. */
static void check_readiness(struct cr_service *svc, struct cr_errlist *errors)
{
    struct cr_spec *sp = &svc->spec;
    char **argv;
    size_t argc;
    const char *err, *cmd = NULL;
    int arg = 0;                        /* what cr_ready_parse gives "none" */
    int kind = svc->ready ? cr_ready_parse(svc->ready, &arg, &cmd) : CR_READY_NONE;
    if (kind < 0) {
        cr_service_error(errors, svc, CR_K_READY, "'%s' is not none, notify, fd:N (N from 3 "
                         "to 1023), exec:CMD or tcp:PORT", svc->ready);
    } else if (kind == CR_READY_EXEC && (!cmd || cr_split_command(cmd, &argv, &argc, &err) < 0)) {
        cr_service_error(errors, svc, CR_K_READY, "exec:CMD: %s", cmd ? err : "no command");
    } else {
        sp->ready = kind;
        sp->ready_arg = arg;
        for (size_t i = 0; kind == CR_READY_EXEC && i < argc; i++) {
            if (cr_spec_add_ready_arg(sp, argv[i]))
                errors->oom = true;
            free(argv[i]);
        }
        if (kind == CR_READY_EXEC)
            free(argv);
    }
    if (svc->ready_timeout >= 0)
        sp->ready_timeout_ms = svc->ready_timeout;
    if (svc->health_cmd) {
        if (cr_split_command(svc->health_cmd, &argv, &argc, &err) < 0) {
            cr_service_error(errors, svc, CR_K_HEALTH_CMD, "%s", err);
        } else {
            for (size_t i = 0; i < argc; i++) {
                if (cr_spec_add_health_arg(sp, argv[i]))
                    errors->oom = true;
                free(argv[i]);
            }
            free(argv);
        }
    }
    static const int positive[] = {CR_K_HEALTH_INTERVAL, CR_K_HEALTH_TIMEOUT};
    for (size_t i = 0; i < 2; i++)
        if (*(int64_t *)((char *)svc + cr_keys[positive[i]].off) == 0)
            cr_service_error(errors, svc, positive[i], "must be longer than 0");
    sp->health_interval_ms = svc->health_interval;
    sp->health_timeout_ms = svc->health_timeout;
    sp->health_start_period_ms = svc->health_start_period;
    sp->health_retries = svc->health_retries > 0 ? (unsigned)svc->health_retries : 3;
    int action = svc->health_action ? cr_health_action_parse(svc->health_action)
                                    : CR_HEALTH_RESTART;
    if (action < 0)
        cr_service_error(errors, svc, CR_K_HEALTH_ACTION, "'%s' is not restart, stop or none",
                         svc->health_action);
    else
        sp->health_action = action;
}

/* One id of a map line, then sep ('\0': the end). */
static bool id_map_number(const char **p, char sep, unsigned long long *out)
{
    if (!cr_cfg_id32(p, sep ? (char[]){sep, '\0'} : "", out))
        return false;
    *p += sep ? 1 : 0;
    return true;
}

/* "C:H:N" with ids of 32 bits, N >= 1 and neither range reaching id 2^32 - 1 ((uid_t)-1 is
 * no id; the kernel refuses a range whose end wraps a u32). All in 64-bit values below 2^33,
 * so nothing here can wrap. */
static bool id_map_range(const char *item, unsigned long long r[3])
{
    const char *p = item;
    if (!id_map_number(&p, ':', &r[0]) || !id_map_number(&p, ':', &r[1]) ||
        !id_map_number(&p, '\0', &r[2]))
        return false;
    return r[2] >= 1 && r[0] + r[2] <= 0xFFFFFFFFULL && r[1] + r[2] <= 0xFFFFFFFFULL;
}

/* uid_map / gid_map: "C:H:N" lines, each a range of container ids C..C+N-1 seen as host ids
 * H..H+N-1; ranges may not overlap on either side (the kernel refuses that), and container id
 * 0 must be mapped (init runs as root inside, and keeps its capabilities only then). Returns
 * the text /proc/PID/uid_map takes, or NULL after reporting what is wrong. */
static char *id_map_text(struct cr_service *svc, int key, const struct cr_strv *v,
                         struct cr_errlist *errors)
{
    enum { MAXR = 340 };         /* the kernel's limit of lines */
    unsigned long long r[MAXR][3];
    size_t n = 0;
    bool bad = false, zero = false;
    const char *what = key == CR_K_UID_MAP ? "uid" : "gid";
    for (size_t i = 0; i < v->n; i++) {
        const char *item = v->v[i];
        if (n == MAXR) {
            cr_errlist_add(errors, "%s:%d: %s: more than %d ranges", svc->file, v->line[i],
                           cr_keys[key].name, MAXR);
            bad = true;
            break;
        }
        if (!id_map_range(item, r[n])) {
            cr_errlist_add(errors, "%s:%d: %s: '%s' is not CONTAINER:HOST:COUNT (e.g. "
                           "0:100000:65536)", svc->file, v->line[i], cr_keys[key].name, item);
            bad = true;
            continue;
        }
        unsigned long long c = r[n][0], h = r[n][1], cnt = r[n][2];
        for (size_t j = 0; j < n; j++)
            if ((c < r[j][0] + r[j][2] && r[j][0] < c + cnt) ||
                (h < r[j][1] + r[j][2] && r[j][1] < h + cnt)) {
                cr_errlist_add(errors, "%s:%d: %s: '%s' overlaps an earlier range", svc->file,
                               v->line[i], cr_keys[key].name, item);
                bad = true;
            }
        zero |= c == 0;
        n++;
    }
    if (bad)
        return NULL;
    if (!zero) {
        cr_service_error(errors, svc, key, "container %s 0 is not mapped (init runs as root "
                         "inside the user namespace)", what);
        return NULL;
    }
    size_t len = 0, cap = n * 36 + 1;
    char *text = malloc(cap);
    if (!text) {
        errors->oom = true;
        return NULL;
    }
    text[0] = '\0';
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(text + len, cap - len, "%llu %llu %llu\n", r[i][0], r[i][1],
                                r[i][2]);
    return text;
}

/* Checks between keys, needing nothing but the service itself. */
/* [eventlistener:x]: what supervisord refuses there, and stdin is the events' pipe. */
static void check_listener(struct cr_service *svc, struct cr_errlist *errors)
{
    if (!svc->events.n)
        cr_service_error(errors, svc, -1, "events is missing (the event types its listener "
                         "takes, e.g. events = PROCESS_STATE)");
    for (size_t i = 0; i < svc->events.n; i++) {
        const char *hint;
        if (!cr_evtype_check(svc->events.v[i], &hint))
            cr_service_error(errors, svc, CR_K_EVENTS, "'%s' is not an event type%s%s%s",
                             svc->events.v[i], hint ? " (did you mean " : "", hint ? hint : "",
                             hint ? "?)" : "");
    }
    if (svc->redirect_stderr)
        cr_service_error(errors, svc, CR_K_REDIRECT_STDERR, "must be false in an event "
                         "listener (its stdout carries the protocol)");
    if (svc->result_handler && strcmp(svc->result_handler,
                                      cr_keys[CR_K_RESULT_HANDLER].def))
        cr_service_error(errors, svc, CR_K_RESULT_HANDLER, "'%s': corral has supervisord's "
                         "default handler only (OK acknowledges, anything else sends again); "
                         "leave it unset", svc->result_handler);
    if (svc->key_line[CR_K_STDIN] && svc->stdin_mode && strcmp(svc->stdin_mode, "pipe"))
        cr_service_error(errors, svc, CR_K_STDIN, "must be pipe in an event listener (events "
                         "come on stdin)");
    free(svc->stdin_mode);
    svc->stdin_mode = strdup("pipe");
    if (!svc->stdin_mode)
        errors->oom = true;
}

/* [fcgi-program:x]: a socket supervisord would take; stdin is that socket. */
static void check_fcgi(struct cr_service *svc, struct cr_errlist *errors)
{
    const char *s = svc->socket;
    if (!s) {
        if (!svc->key_line[CR_K_SOCKET])
            cr_service_error(errors, svc, -1, "socket is missing (tcp://HOST:PORT or "
                             "unix:///PATH, the listening socket its processes share)");
    } else if (!strncmp(s, "unix://", 7)) {
        if (s[7] != '/' || strlen(s + 7) >= sizeof ((struct sockaddr_un *)0)->sun_path)
            cr_service_error(errors, svc, CR_K_SOCKET, "'%s': unix:// takes an absolute path "
                             "of at most %zu bytes", s,
                             sizeof ((struct sockaddr_un *)0)->sun_path - 1);
    } else if (!strncmp(s, "tcp://", 6)) {
        const char *colon = strrchr(s + 6, ':');
        char *end;
        long port = colon ? strtol(colon + 1, &end, 10) : 0;
        if (!colon || colon == s + 6 || !colon[1] || *end || port < 1 || port > 65535)
            cr_service_error(errors, svc, CR_K_SOCKET, "'%s': tcp:// takes HOST:PORT", s);
    } else {
        cr_service_error(errors, svc, CR_K_SOCKET, "'%s' is not tcp://HOST:PORT or "
                         "unix:///PATH", s);
    }
    if (svc->socket_owner && s && strncmp(s, "unix://", 7))
        cr_service_error(errors, svc, CR_K_SOCKET_OWNER, "only for a unix:// socket");
    if (svc->key_line[CR_K_STDIN] && svc->stdin_mode && !strcmp(svc->stdin_mode, "pipe"))
        cr_service_error(errors, svc, CR_K_STDIN, "cannot be pipe in a FastCGI program (its "
                         "stdin is the socket)");
    free(svc->stdin_mode);           /* a program's default (pipe) does not apply */
    svc->stdin_mode = NULL;
}

static void check_service(struct cr_service *svc, struct cr_errlist *errors)
{
    if (svc->image || svc->entrypoint) {
        if (!svc->spec.argc && !(svc->image && !svc->img) &&
            !(svc->key_line[CR_K_COMMAND] && !svc->command) &&
            !(svc->key_line[CR_K_ENTRYPOINT] && !svc->entrypoint))
            cr_service_error(errors, svc, -1, "command is missing (neither command, entrypoint "
                             "nor the image's Entrypoint or Cmd)");
    } else if (!svc->command) {
        if (!svc->key_line[CR_K_COMMAND])        /* else its bad value was reported */
            cr_service_error(errors, svc, -1, "command is missing");
    } else {
        char **argv;
        size_t argc;
        const char *err;
        if (cr_split_command(svc->command, &argv, &argc, &err) < 0) {
            cr_service_error(errors, svc, CR_K_COMMAND, "%s", err);
        } else {
            for (size_t i = 0; i < argc; i++) {
                if (cr_spec_add_arg(&svc->spec, argv[i]))
                    errors->oom = true;
                free(argv[i]);
            }
            free(argv);
        }
    }
    if (svc->stdin_mode && strcmp(svc->stdin_mode, "null") && strcmp(svc->stdin_mode, "pipe"))
        cr_service_error(errors, svc, CR_K_STDIN, "'%s' is not null or pipe", svc->stdin_mode);
    if (svc->listener)
        check_listener(svc, errors);
    if (svc->fcgi)
        check_fcgi(svc, errors);
    if (svc->user_namespace && !strcmp(svc->user_namespace, "auto")) {
        svc->userns_auto = true;
        svc->namespaces |= CR_NS_USER;
        static const int manual[] = {CR_K_UID_MAP, CR_K_GID_MAP};
        for (size_t i = 0; i < 2; i++)
            if (svc->key_line[manual[i]])
                cr_service_error(errors, svc, manual[i], "not with user_namespace = auto (line "
                                 "%d), which computes the maps", svc->key_line[CR_K_USER_NAMESPACE]);
    } else if (svc->user_namespace && !strcmp(svc->user_namespace, "none")) {
        if (svc->namespaces & CR_NS_USER)
            cr_service_error(errors, svc, CR_K_USER_NAMESPACE, "none, but namespaces has user "
                             "(line %d)", svc->key_line[CR_K_NAMESPACES]);
    } else if (svc->user_namespace) {
        cr_service_error(errors, svc, CR_K_USER_NAMESPACE, "'%s' is not auto or none",
                         svc->user_namespace);
    }
    unsigned ns = svc->namespaces;
    if (svc->userns_auto) {
        /* ids 0-65535 inside; their host ids are given once every service is known */
    } else if (ns & CR_NS_USER) {
        if (!svc->uid_map.n || !svc->gid_map.n) {
            cr_service_error(errors, svc, CR_K_NAMESPACES, "the user namespace needs uid_map "
                             "and gid_map (e.g. uid_map = 0:100000:65536)");
        } else {
            svc->uid_map_text = id_map_text(svc, CR_K_UID_MAP, &svc->uid_map, errors);
            svc->gid_map_text = id_map_text(svc, CR_K_GID_MAP, &svc->gid_map, errors);
        }
    } else {
        static const int need_user[] = {CR_K_UID_MAP, CR_K_GID_MAP};
        for (size_t i = 0; i < 2; i++)
            if (svc->key_line[need_user[i]])
                cr_service_error(errors, svc, need_user[i], "needs the user namespace (add user "
                                 "to namespaces)");
    }
    static const int need_mount[] = {CR_K_ROOTFS, CR_K_BIND, CR_K_TMPFS, CR_K_READ_ONLY};
    for (size_t i = 0; i < sizeof need_mount / sizeof need_mount[0]; i++) {
        int k = need_mount[i];
        bool used = svc->key_line[k] && (k != CR_K_READ_ONLY || svc->read_only);
        if (used && !(ns & CR_NS_MOUNT))
            cr_service_error(errors, svc, k, "needs the mount namespace (add mount to "
                             "namespaces)");
    }
    if (svc->hostname) {
        if (!(ns & CR_NS_UTS))
            cr_service_error(errors, svc, CR_K_HOSTNAME, "needs the uts namespace (add uts to "
                             "namespaces)");
        bool ok = strlen(svc->hostname) <= 64;
        for (const char *p = svc->hostname; *p; p++)
            if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.' && *p != '_')
                ok = false;
        if (!ok)
            cr_service_error(errors, svc, CR_K_HOSTNAME, "'%s' is not a hostname (at most 64 of "
                             "A-Z a-z 0-9 - . _)", svc->hostname);
    }
    if (svc->restart_delay_max < svc->restart_delay)
        cr_service_error(errors, svc, CR_K_RESTART_DELAY_MAX, "shorter than restart_delay");
    if (svc->memory_high > 0 && svc->memory_max > 0 && svc->memory_high != INT64_MAX &&
        svc->memory_high > svc->memory_max)
        cr_service_error(errors, svc, CR_K_MEMORY_HIGH, "above memory_max");
    check_readiness(svc, errors);
}

/* ---- depends_on: the graph ------------------------------------------------------------------ */

struct dep_walk {
    struct cr_config *cfg;
    char *color;                 /* 0 not seen, 1 on the path, 2 done */
    bool *in_cycle;              /* already named in a reported cycle */
    size_t *path;
    size_t depth;
    struct { const char *file; int line; } said[8];   /* depends_on lines already reported */
    size_t nsaid;
};

/* Reports the cycle path[from..] -> j once: every service on it is marked, and a later edge
 * back to a marked service is the same knot again; so is another cycle closed by a
 * depends_on line already reported (numprocs copies of one section share their lines, and
 * copies that depend on their own program close N^2 / 2 back edges: each reported, that was
 * seconds of errors). At most 8 lines are remembered: past that each is said once per
 * service, which is still linear. */
static void dep_report_cycle(struct dep_walk *w, const struct cr_service *svc, size_t k,
                             size_t j)
{
    if (w->in_cycle[j])
        return;
    int line = svc->depends_on.line[k];
    for (size_t s = 0; s < w->nsaid; s++)
        if (w->said[s].file == svc->file && w->said[s].line == line)
            return;
    if (w->nsaid < sizeof w->said / sizeof w->said[0]) {
        w->said[w->nsaid].file = svc->file;
        w->said[w->nsaid++].line = line;
    }
    char text[1024];
    size_t from = 0, used = 0;
    while (w->path[from] != j)
        from++;
    for (size_t p = from; p < w->depth; p++) {
        w->in_cycle[w->path[p]] = true;
        if (used < sizeof text - 64)
            used += (size_t)snprintf(text + used, sizeof text - used, "%s -> ",
                                     w->cfg->services[w->path[p]].name);
    }
    snprintf(text + used, sizeof text - used, "%s", w->cfg->services[j].name);
    cr_errlist_add(&w->cfg->errors, "%s:%d: depends_on: dependency cycle: %s", svc->file,
                   svc->depends_on.line[k], text);
}

static void dep_visit(struct dep_walk *w, size_t i)
{
    struct cr_service *svc = &w->cfg->services[i];
    w->color[i] = 1;
    w->path[w->depth++] = i;
    for (size_t k = 0; k < svc->depends_on.n; k++) {
        for (size_t j = 0; j < w->cfg->nservices; j++) {
            if (!cr_service_matches(&w->cfg->services[j], svc->depends_on.v[k]))
                continue;
            if (w->color[j] == 0) {
                dep_visit(w, j);
                continue;
            }
            if (w->color[j] == 1)   /* j is on the path: path[from..] -> j closes a cycle */
                dep_report_cycle(w, svc, k, j);
        }
    }
    w->depth--;
    w->color[i] = 2;
}

/* Every name must be a service; the graph must have no cycle. */
static void check_dependencies(struct cr_config *cfg)
{
    size_t n = cfg->nservices;
    for (size_t i = 0; i < n; i++) {
        struct cr_service *svc = &cfg->services[i];
        for (size_t k = 0; k < svc->depends_on.n; k++) {
            bool found = false;
            for (size_t j = 0; j < n && !found; j++)
                found = cr_service_matches(&cfg->services[j], svc->depends_on.v[k]);
            if (!found)
                cr_errlist_add(&cfg->errors, "%s:%d: depends_on: no service '%s'", svc->file,
                               svc->depends_on.line[k], svc->depends_on.v[k]);
        }
    }
    struct dep_walk w = {.cfg = cfg, .color = calloc(n + 1, 1),
                         .in_cycle = calloc(n + 1, sizeof(bool)),
                         .path = calloc(n + 1, sizeof(size_t))};
    if (!w.color || !w.path || !w.in_cycle)
        cfg->errors.oom = true;
    for (size_t i = 0; w.color && w.path && w.in_cycle && i < n; i++)
        if (!w.color[i])
            dep_visit(&w, i);
    free(w.color);
    free(w.in_cycle);
    free(w.path);
}

/* [group:G] programs = a,b and priority: each listed section learns its group. */
static void read_groups(struct loader *L)
{
    struct cr_config *cfg = L->cfg;
    for (size_t i = 0; i < L->nsecs; i++) {
        struct raw_sec *g = &L->secs[i];
        if (g->kind != SEC_GROUP)
            continue;
        int64_t prio = 999;
        bool listed = false;
        for (size_t j = 0; j < g->n; j++) {
            const struct raw_val *rv = &g->v[j];
            if (rv->key != CR_K_GROUP_PRIORITY)
                continue;
            char *end;
            long long v = strtoll(rv->value, &end, 10);
            while (*end == ' ' || *end == '\t')
                end++;
            if (end == rv->value || *end || v < -100000 || v > 100000)
                cr_errlist_add(&cfg->errors, "%s:%d: priority: '%s' is not an integer from "
                               "-100000 to 100000", g->file, rv->line, rv->value);
            else
                prio = v;
        }
        for (size_t j = 0; j < g->n; j++) {
            const struct raw_val *rv = &g->v[j];
            if (rv->key != CR_K_GROUP_PROGRAMS)
                continue;
            char *list = strdup(rv->value), *save = NULL;
            if (!list) {
                L->oom = true;
                return;
            }
            for (char *w = strtok_r(list, ", \t", &save); w; w = strtok_r(NULL, ", \t", &save)) {
                struct raw_sec *p = NULL;
                listed = true;
                for (size_t k = 0; k < L->nsecs && !p; k++)
                    if (L->secs[k].kind == SEC_SERVICE && !strcmp(L->secs[k].name, w))
                        p = &L->secs[k];
                if (!p)
                    cr_errlist_add(&cfg->errors, "%s:%d: programs: no [program:%s]", g->file,
                                   rv->line, w);
                else if (p->group && p->group != g)
                    cr_errlist_add(&cfg->errors, "%s:%d: programs: %s is in [%s] already "
                                   "(%s:%d)", g->file, rv->line, w, p->group->header,
                                   p->group->file, p->group->line);
                else {
                    p->group = g;
                    p->group_priority = prio;
                }
            }
            free(list);
        }
        if (!listed)
            cr_errlist_add(&cfg->errors, "%s:%d: [%s]: programs is missing", g->file, g->line,
                           g->header);
    }
}

/* A [program:x] section keeps supervisord's meaning (the defaults of def_program: no
 * namespaces, the host as it is) unless it asks for a container with one of these keys; then
 * it is a [service:x]. */
static bool supervisord_meaning(const struct raw_sec *rs)
{
    static const int container_keys[] = {
        CR_K_ROOTFS, CR_K_NAMESPACES, CR_K_BIND, CR_K_TMPFS, CR_K_READ_ONLY, CR_K_HOSTNAME,
        CR_K_USER_NAMESPACE, CR_K_UID_MAP, CR_K_GID_MAP,
    };
    if (strncmp(rs->header, "program:", 8) && !rs->listener && !rs->fcgi)
        return false;
    for (size_t i = 0; i < sizeof container_keys / sizeof container_keys[0]; i++)
        if (rs->seen[container_keys[i]])
            return false;
    return true;
}

/* The parsed defaults of fixed-size kinds (a number, a duration, a flag, a signal, exit
 * codes), kept once parsed: the same text always gives the same bytes, and parsing some fifty
 * defaults for every service was a fifth of loading a file of many services. Texts with a
 * %(...)s expansion differ per service and are parsed each time. Loads run on one thread. */
static struct {
    const char *def;             /* the text these bytes are of (a key's def or def_program) */
    unsigned char v[sizeof(cr_codeset)];
} def_cache[CR_NKEYS];

static bool default_cached(int i, const char *def, struct cr_service *svc)
{
    size_t w = cr_cfg_value_width(cr_keys[i].type);
    if (!w || def_cache[i].def != def)
        return false;
    memcpy((char *)svc + cr_keys[i].off, def_cache[i].v, w);
    return true;
}

static void default_cache(int i, const char *def, const struct cr_service *svc)
{
    size_t w = cr_cfg_value_width(cr_keys[i].type);
    if (w && !strchr(def, '%')) {
        memcpy(def_cache[i].v, (const char *)svc + cr_keys[i].off, w);
        def_cache[i].def = def;
    }
}

static void build_instance(struct cr_config *cfg, size_t *cap, const struct raw_sec *rs,
                           int64_t num, int64_t numprocs, const struct cr_config_opts *opts,
                           const char *host, struct cr_roots *roots)
{
    /* Made for one service per section at first (cr_config_load), doubled when full (by
     * numprocs): growing it by one each time copied it whole for every service (seconds for
     * 4096 services under ASan), and doubling from one copied and faulted it in seven times
     * over for 100 services (~7% of a load). */
    size_t n = cfg->nservices;
    struct cr_service *ns = cfg->services;
    if (n == *cap) {
        ns = realloc(cfg->services, (n ? 2 * n : 16) * sizeof *ns);
        if (!ns) {
            cfg->errors.oom = true;
            return;
        }
        cfg->services = ns;
        *cap = n ? 2 * n : 16;
    }
    struct cr_service *svc = &ns[cfg->nservices++];
    memset(svc, 0, sizeof *svc);
    cr_spec_init(&svc->spec);
    svc->program = strdup(rs->name);
    svc->section = strdup(rs->header);
    svc->file = rs->file;
    svc->line = rs->line;
    svc->process_num = (int)num;
    struct cr_xctx x = {.program = rs->name, .here = rs->here, .host = host, .process_num = num,
                     .numprocs = numprocs};
    char err[1024];
    bool program = supervisord_meaning(rs);
    bool listener = svc->listener = rs->listener;
    svc->fcgi = rs->fcgi;

    for (int i = 0; i < CR_NKEYS; i++) {
        const struct cr_key *k = &cr_keys[i];
        if (!(k->sections & sec_bits(rs)))
            continue;
        cr_cfg_set_unset(k, svc);
        const char *def = k->def;
        if (program && k->def_program)
            def = k->def_program;
        if (i == CR_K_PROCESS_NAME && numprocs > 1)
            def = "%(program_name)s_%(process_num)d";
        /* defaults first, even for keys the file sets: a value that fails to parse leaves
         * the default in place, so later checks do not trip over an empty field */
        if (!def || default_cached(i, def, svc))
            continue;
        char *v = cr_cfg_expand(def, &x, err, sizeof err);
        if (!v || cr_cfg_parse_value(k, v, svc, rs->line, err, sizeof err))
            cr_service_error(&cfg->errors, svc, i, "bad default: %s", err);
        else
            default_cache(i, def, svc);
        free(v);
    }
    for (size_t j = 0; j < rs->n; j++) {
        const struct raw_val *rv = &rs->v[j];
        const struct cr_key *k = &cr_keys[rv->key];
        if (!svc->key_line[rv->key])
            svc->key_line[rv->key] = rv->line;
        char *v = cr_cfg_expand(rv->value, &x, err, sizeof err);
        if (!v || cr_cfg_parse_value(k, v, svc, rv->line, err, sizeof err))
            cr_errlist_add(&cfg->errors, "%s:%d: %s: %s", rs->file, rv->line, k->name, err);
        free(v);
    }
    svc->name = strdup(svc->process_name ? svc->process_name : rs->name);
    svc->sd_group = strdup(rs->group ? rs->group->name : rs->name);
    if (rs->group && !rs->seen[CR_K_PRIORITY])
        svc->priority = rs->group_priority;
    /* supervisord's listeners start first and stop last (their pools' priority is -1) */
    if (listener && !rs->seen[CR_K_PRIORITY])
        svc->priority = -1;
    if (!svc->program || !svc->section || !svc->name || !svc->sd_group) {
        cfg->errors.oom = true;
        return;
    }
    if (!valid_name(svc->name))
        cr_service_error(&cfg->errors, svc, CR_K_PROCESS_NAME, "'%s' is not 1 to %d of A-Z a-z "
                         "0-9 _ . -", svc->name, CR_NAME_MAX);
    cr_service_image(svc, &cfg->global, &cfg->errors);
    check_service(svc, &cfg->errors);
    cr_network_service_check(svc, !strncmp(rs->header, "program:", 8) || listener || rs->fcgi,
                             &cfg->errors);
    cr_service_resolve(svc, rs->here, opts, opts->caps, &cfg->global, roots, &cfg->errors);
    cr_security_resolve(svc, &cfg->global, &cfg->errors);
    cr_network_spec(svc, &cfg->global, &cfg->errors);
}

static void build_section(struct cr_config *cfg, size_t *cap, const struct raw_sec *rs,
                          const struct cr_config_opts *opts, const char *host,
                          struct cr_roots *roots)
{
    struct cr_service tmp;
    tmp.numprocs = 1;
    tmp.numprocs_start = 0;
    /* numprocs and numprocs_start decide how many copies there are: read them first. */
    for (size_t j = 0; j < rs->n; j++) {
        const struct raw_val *rv = &rs->v[j];
        if (rv->key != CR_K_NUMPROCS && rv->key != CR_K_NUMPROCS_START)
            continue;
        char err[256];
        struct cr_xctx x = {.program = rs->name, .here = rs->here, .host = host, .numprocs = 1};
        char *v = cr_cfg_expand(rv->value, &x, err, sizeof err);
        int r = v ? cr_cfg_parse_value(&cr_keys[rv->key], v, &tmp, rv->line, err, sizeof err)
                  : -EINVAL;
        free(v);
        if (r) {
            cr_errlist_add(&cfg->errors, "%s:%d: %s: %s", rs->file, rv->line,
                           cr_keys[rv->key].name, err);
            return;
        }
    }
    for (size_t j = 0; j < rs->n; j++)
        if (tmp.numprocs > 1 && rs->v[j].key == CR_K_PROCESS_NAME &&
            !strstr(rs->v[j].value, "%(process_num)"))
            cr_errlist_add(&cfg->errors, "%s:%d: process_name: must contain %%(process_num)d "
                           "when numprocs > 1", rs->file, rs->v[j].line);
    if (cfg->nservices + (size_t)tmp.numprocs > CR_SERVICES_MAX) {
        /* Checked before building: 10 sections of numprocs = 1000 took seconds to load. */
        int line = rs->line;
        char what[300];
        snprintf(what, sizeof what, "[%s]", rs->header);
        for (size_t j = 0; j < rs->n; j++)
            if (rs->v[j].key == CR_K_NUMPROCS) {
                line = rs->v[j].line;
                snprintf(what, sizeof what, "numprocs");
            }
        cr_errlist_add(&cfg->errors, "%s:%d: %s: more than %d services in all (%zu before "
                       "this section, %lld in it)", rs->file, line, what, CR_SERVICES_MAX,
                       cfg->nservices, (long long)tmp.numprocs);
        return;
    }
    for (int64_t i = 0; i < tmp.numprocs; i++)
        build_instance(cfg, cap, rs, tmp.numprocs_start + i, tmp.numprocs, opts, host, roots);
}

/* The values of one section whose keys are struct cr_global's. */
static void global_values(struct cr_config *cfg, const struct raw_sec *rs)
{
    struct cr_global *g = &cfg->global;
    char err[1024];
    struct cr_xctx x = {.program = "supervisor", .here = rs->here, .host = ""};
    for (size_t j = 0; j < rs->n; j++) {
        const struct raw_val *rv = &rs->v[j];
        const struct cr_key *k = &cr_keys[rv->key];
        g->key_line[rv->key] = rv->line;
        char *v = cr_cfg_expand(rv->value, &x, err, sizeof err);
        if (!v || cr_cfg_parse_value(k, v, g, rv->line, err, sizeof err))
            cr_errlist_add(&cfg->errors, "%s:%d: %s: %s", rv->file, rv->line, k->name, err);
        else if (rv->key == CR_K_REEXEC_SIGNAL && cr_reexec_signal_taken(g->reexec_signal))
            cr_errlist_add(&cfg->errors, "%s:%d: %s: '%s': the supervisor uses SIG%s already "
                           "(%s)", rv->file, rv->line, k->name, v,
                           sigabbrev_np(g->reexec_signal) ? sigabbrev_np(g->reexec_signal)
                                                          : "?",
                           cr_reexec_signal_taken(g->reexec_signal));
        free(v);
    }
}

/* [supervisor] (rs), then [unix_http_server] and [inet_http_server] (among secs). */
static void build_global(struct cr_config *cfg, const struct raw_sec *rs,
                         const struct raw_sec *secs, size_t nsecs)
{
    struct cr_global *g = &cfg->global;
    char err[1024];
    g->file = rs ? rs->file : cfg->path;
    for (int i = 0; i < CR_NKEYS; i++) {
        const struct cr_key *k = &cr_keys[i];
        if (!(k->sections & CR_SEC_GLOBALS))
            continue;
        cr_cfg_set_unset(k, g);
        if (k->def && !(rs && rs->seen[i]) && cr_cfg_parse_value(k, k->def, g, 0, err, sizeof err))
            cr_errlist_add(&cfg->errors, "%s: bad default: %s", k->name, err);
    }
    if (rs)
        global_values(cfg, rs);
    for (size_t i = 0; i < nsecs; i++) {
        const struct raw_sec *h = &secs[i];
        if (h->kind != SEC_UNIX_HTTP && h->kind != SEC_INET_HTTP)
            continue;
        global_values(cfg, h);
        bool unix_sec = h->kind == SEC_UNIX_HTTP;
        *(unix_sec ? &g->rpc_unix_line : &g->rpc_inet_line) = h->line;
        *(unix_sec ? &g->rpc_unix_file_of : &g->rpc_inet_file_of) = h->file;
        if (unix_sec ? !g->rpc_unix_file : !g->rpc_inet_port)
            cr_errlist_add(&cfg->errors, "%s:%d: [%s]: %s is missing (supervisord requires "
                           "it too)", h->file, h->line, h->header, unix_sec ? "file" : "port");
        if ((unix_sec ? !g->rpc_unix_user : !g->rpc_inet_user) !=
            (unix_sec ? !g->rpc_unix_pass : !g->rpc_inet_pass))
            cr_errlist_add(&cfg->errors, "%s:%d: [%s]: username and password go together",
                           h->file, h->line, h->header);
        if (!unix_sec && g->rpc_inet_port) {
            const char *colon = strrchr(g->rpc_inet_port, ':');
            const char *num = colon ? colon + 1 : g->rpc_inet_port;
            char *e;
            long port = strtol(num, &e, 10);
            if (!*num || *e || port < 1 || port > 65535)
                cr_errlist_add(&cfg->errors, "%s:%d: port: '%s' is not [HOST:]PORT (a port "
                               "of 1 to 65535)", h->file, g->key_line[CR_K_INET_PORT],
                               g->rpc_inet_port);
        }
    }
}

const char *cr_reexec_signal_taken(int sig)
{
    switch (sig) {
    case SIGTERM: case SIGINT: return "to stop every service";
    case SIGHUP: return "to reload";
    case SIGUSR2: return "to rotate log files; as PID 1, to power off";
    case SIGUSR1: return "as PID 1, to halt";
    case SIGPWR: return "as PID 1, to power off";
    case SIGCHLD: return "to collect orphans";
    case SIGKILL: case SIGSTOP: return "it cannot be caught";
    case SIGPIPE: return "it is ignored";
    case SIGSEGV: case SIGBUS: case SIGFPE: case SIGILL: case SIGABRT: case SIGTRAP:
    case SIGSYS: return "a fault signal";
    default: return NULL;
    }
}

static void build_network(struct cr_config *cfg, const struct raw_sec *rs)
{
    struct cr_network *nv = realloc(cfg->networks, (cfg->nnetworks + 1) * sizeof *nv);
    if (!nv) {
        cfg->errors.oom = true;
        return;
    }
    cfg->networks = nv;
    struct cr_network *n = &nv[cfg->nnetworks++];
    memset(n, 0, sizeof *n);
    n->name = strdup(rs ? rs->name : "default");
    n->file = rs ? rs->file : NULL;
    n->line = rs ? rs->line : 0;
    n->net4.prefix = n->net6.prefix = -1;
    if (!n->name)
        cfg->errors.oom = true;
    char err[1024];
    for (int i = 0; i < CR_NKEYS; i++) {
        const struct cr_key *k = &cr_keys[i];
        if (!(k->sections & CR_SEC_NETWORK))
            continue;
        cr_cfg_set_unset(k, n);
        if (k->def && cr_cfg_parse_value(k, k->def, n, 0, err, sizeof err))
            cr_errlist_add(&cfg->errors, "%s: bad default: %s", k->name, err);
    }
    if (!rs)
        return;
    struct cr_xctx x = {.program = rs->name, .here = rs->here, .host = ""};
    for (size_t j = 0; j < rs->n; j++) {
        const struct raw_val *rv = &rs->v[j];
        const struct cr_key *k = &cr_keys[rv->key];
        n->key_line[rv->key] = rv->line;
        char *v = cr_cfg_expand(rv->value, &x, err, sizeof err);
        if (!v || cr_cfg_parse_value(k, v, n, rv->line, err, sizeof err))
            cr_errlist_add(&cfg->errors, "%s:%d: %s: %s", rs->file, rv->line, k->name, err);
        free(v);
    }
}

static const char *svc_name(const void *services, size_t i)
{
    return ((const struct cr_service *)services)[i].name;
}

int cr_config_load(const char *path, const struct cr_config_opts *opts_in,
                   struct cr_config *cfg)
{
    struct cr_config_opts opts = opts_in ? *opts_in : (struct cr_config_opts){0};
    struct cr_cgroup_caps probed;
    memset(cfg, 0, sizeof *cfg);
    if (!(cfg->path = strdup(path)))
        return -ENOMEM;
    if (!opts.caps) {
        cr_cgroup_probe(CR_CGROUP_MOUNT, &probed);
        opts.caps = &probed;
    }
    struct loader L = {.cfg = cfg, .cur = -1};
    read_file(&L, path);
    read_includes(&L, L.nsecs);

    struct utsname u;
    const char *host = uname(&u) == 0 ? u.nodename : "localhost";
    const struct raw_sec *global = NULL;
    for (size_t i = 0; i < L.nsecs; i++)
        if (L.secs[i].kind == SEC_GLOBAL)
            global = &L.secs[i];
    build_global(cfg, global, L.secs, L.nsecs);
    /* Networks before services: a service's `network` names them. */
    bool have_default = false;
    for (size_t i = 0; i < L.nsecs; i++)
        if (L.secs[i].kind == SEC_NETWORK) {
            build_network(cfg, &L.secs[i]);
            have_default |= !strcmp(L.secs[i].name, "default");
        }
    if (!have_default)
        build_network(cfg, NULL);
    read_groups(&L);
    L.roots = cr_roots_new();
    size_t cap = 0;
    for (size_t i = 0; i < L.nsecs; i++)
        cap += L.secs[i].kind == SEC_SERVICE;
    if (cap && !cfg->nservices && !(cfg->services = malloc(cap * sizeof *cfg->services))) {
        cfg->errors.oom = true;
        cap = 0;
    }
    for (size_t i = 0; i < L.nsecs; i++)
        if (L.secs[i].kind == SEC_SERVICE)
            build_section(cfg, &cap, &L.secs[i], &opts, host, L.roots);
    cr_roots_free(L.roots);

    /* Process names are the services' identity: unique across all sections. */
    struct name_index procs = {0};
    for (size_t i = 0; i < cfg->nservices; i++) {
        struct cr_service *a = &cfg->services[i];
        long j = a->name ? name_index_add(&procs, a->name, i, svc_name, cfg->services) : -1;
        if (j == -2)
            cfg->errors.oom = true;
        if (j < 0)
            continue;
        const struct cr_service *b = &cfg->services[j];
        cr_service_error(&cfg->errors, a, -1, "process name '%s' is already used by [%s] at "
                         "%s:%d", a->name, b->section, b->file, b->line);
    }
    name_index_free(&procs);
    check_dependencies(cfg);
    cr_network_config_check(cfg, !opts.no_machine_checks);
    /* The ranges of user_namespace = auto, once the services are known to be valid. */
    if (!opts.no_machine_checks && !cfg->errors.n)
        cr_userns_assign(cfg, opts.userns_persist);
    for (size_t i = 0; i < L.nsecs; i++) {
        for (size_t j = 0; j < L.secs[i].n; j++)
            free(L.secs[i].v[j].value);
        free(L.secs[i].v);
        free(L.secs[i].header);
        free(L.secs[i].name);
        free(L.secs[i].here);
    }
    free(L.secs);
    for (int i = 0; i < 3; i++)
        name_index_free(&L.names[i]);
    free(L.here_dir);
    free(L.here_file);
    if (L.oom || cfg->errors.oom)
        return -ENOMEM;
    return cfg->errors.n ? -EINVAL : 0;
}

void cr_config_free(struct cr_config *cfg)
{
    for (size_t i = 0; i < cfg->nservices; i++)
        free_service(&cfg->services[i]);
    free(cfg->services);
    for (size_t i = 0; i < cfg->nnetworks; i++)
        cr_network_free(&cfg->networks[i]);
    free(cfg->networks);
    for (int i = 0; i < CR_NKEYS; i++)
        if (cr_keys[i].sections & CR_SEC_GLOBALS)
            cr_cfg_free_field(&cr_keys[i], (char *)&cfg->global + cr_keys[i].off);
    for (size_t i = 0; i < cfg->nfiles; i++)
        free(cfg->files[i]);
    free(cfg->files);
    free(cfg->path);
    cr_errlist_free(&cfg->errors);
    cr_errlist_free(&cfg->notices);
    memset(cfg, 0, sizeof *cfg);
}

/* ---- docs ----------------------------------------------------------------------------------- */

void cr_keys_print_markdown(FILE *out)
{
    static const struct { unsigned sec; const char *title; } groups[] = {
        {CR_SEC_GLOBAL, "`[supervisor]`"},
        {CR_SEC_SERVICE, "`[service:NAME]` (or `[program:NAME]`)"},
        {CR_SEC_NETWORK, "`[network:NAME]`"},
        {CR_SEC_INCLUDE, "`[include]`"},
        {CR_SEC_GROUP, "`[group:NAME]`"},
        {CR_SEC_LISTENER, "`[eventlistener:NAME]` (besides every `[program:NAME]` key)"},
        {CR_SEC_FCGI, "`[fcgi-program:NAME]` (besides every `[program:NAME]` key)"},
        {CR_SEC_UNIX_HTTP, "`[unix_http_server]`"},
        {CR_SEC_INET_HTTP, "`[inet_http_server]`"},
    };
    for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++) {
        fprintf(out, "### %s\n\n| key | type | default | on reload | meaning |\n"
                     "|---|---|---|---|---|\n", groups[g].title);
        for (int i = 0; i < CR_NKEYS; i++) {
            const struct cr_key *k = &cr_keys[i];
            if (!(k->sections & groups[g].sec))
                continue;
            fprintf(out, "| `%s`", k->name);
            if (k->aliases)
                fprintf(out, " (also `%s`)", k->aliases);
            char prog[96] = "";
            if (k->def_program)
                snprintf(prog, sizeof prog, " (`[program:]`: `%s`)", k->def_program);
            fprintf(out, " | %s | %s%s%s%s | %s | %s |\n", cr_key_type_name(k->type),
                    k->def ? "`" : "", k->def ? k->def : "—", k->def ? "`" : "", prog,
                    k->sections == CR_SEC_INCLUDE       ? "read again"
                    : k->reload == CR_RELOAD_RESTART ? "restart"
                                                     : "live", k->doc);
        }
        fprintf(out, "\n");
    }
}

/* Writes n bytes of s as roff text: backslashes and minus signs escaped, a leading . or '
 * made literal. */
static void roff_putn(FILE *out, const char *s, size_t n)
{
    if (n && (*s == '.' || *s == '\''))
        fputs("\\&", out);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\')
            fputs("\\e", out);
        else if (s[i] == '-')
            fputs("\\-", out);
        else
            fputc(s[i], out);
    }
}

static void roff_puts(FILE *out, const char *s) { roff_putn(out, s, strlen(s)); }

/* The same table as roff for services.ini(5)'s KEYS section (supervisor --list-keys=man). */
void cr_keys_print_man(FILE *out)
{
    static const struct { unsigned sec; const char *title; } groups[] = {
        {CR_SEC_GLOBAL, "[supervisor]"},
        {CR_SEC_SERVICE, "[service:NAME] and [program:NAME]"},
        {CR_SEC_NETWORK, "[network:NAME]"},
        {CR_SEC_INCLUDE, "[include]"},
        {CR_SEC_GROUP, "[group:NAME]"},
        {CR_SEC_LISTENER, "[eventlistener:NAME] (besides every [program:NAME] key)"},
        {CR_SEC_FCGI, "[fcgi\\-program:NAME] (besides every [program:NAME] key)"},
        {CR_SEC_UNIX_HTTP, "[unix_http_server]"},
        {CR_SEC_INET_HTTP, "[inet_http_server]"},
    };
    for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++) {
        fprintf(out, ".SS %s\n", groups[g].title);
        for (int i = 0; i < CR_NKEYS; i++) {
            const struct cr_key *k = &cr_keys[i];
            if (!(k->sections & groups[g].sec))
                continue;
            fputs(".TP\n\\fB", out);
            roff_puts(out, k->name);
            fputs("\\fR = \\fI", out);
            roff_puts(out, cr_key_type_name(k->type));
            fputs("\\fR", out);
            if (k->aliases) {
                fputs(" (also ", out);
                for (const char *a = k->aliases; *a;) {
                    size_t len = strcspn(a, " ");
                    fprintf(out, "%s\\fB", a == k->aliases ? "" : ", ");
                    roff_putn(out, a, len);
                    fputs("\\fR", out);
                    a += len;
                    while (*a == ' ')
                        a++;
                }
                fputs(")", out);
            }
            fputs("\n", out);
            roff_puts(out, k->doc);
            fputs(".\n.br\n", out);
            if (k->def) {
                fputs("Default: \\fB", out);
                roff_puts(out, k->def);
                fputs("\\fR", out);
                if (k->def_program) {
                    fputs(" (in [program:NAME]: \\fB", out);
                    roff_puts(out, k->def_program);
                    fputs("\\fR)", out);
                }
                fputs(". ", out);
            }
            bool restart = k->reload == CR_RELOAD_RESTART;
            if (k->sections == CR_SEC_INCLUDE)   /* a reload reads every file again */
                fputs("On reload: read again.\n", out);
            else
                fprintf(out, "On reload: \\fB%s\\fR%s.\n", restart ? "restart" : "live",
                        !restart ? "" : k->sections & CR_SEC_SERVICES
                                               ? " (the service restarts)"
                                               : k->sections & CR_SEC_NETWORK
                                               ? " (its services restart)"
                                               : " (read when the supervisor starts)");
        }
    }
}
