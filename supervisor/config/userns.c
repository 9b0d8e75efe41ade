/* user_namespace = auto: a user namespace without bookkeeping by hand.
 *
 * Each such service gets a range of 65536 host ids for its container ids 0-65535, carved from
 * the subordinate ids /etc/subuid and /etc/subgid give [supervisor] subid_user (shadow's
 * NAME_OR_UID:START:COUNT lines, as usermod --add-subuids writes them). Which range a name has
 * is kept in userns_state ("NAME UID GID" lines), so a name gets the same range after a
 * restart, a reload, a new supervisor or a reboot, and no two names ever share one: a range
 * is never handed to another name, even once its service is gone (its files on a volume would
 * become the new service's); the lines of services no longer used are removed by hand.
 *
 * The file is read, extended and replaced (written beside it, then renamed over it) under an
 * exclusive lock on STATE.lock, so a `supervisor run` beside a running supervisor cannot hand
 * out one range twice. Without persist (--check, --print-spec, svctl check) new names are
 * given the ranges they would get, and nothing is written. */
#include "config/config.h"
#include "config/values.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"

#define SLOT 65536ULL
#define STATE_MAX_BYTES (4 << 20)

struct range {
    unsigned long long start, count;
};

struct ranges {
    struct range *v;
    size_t n;
};

struct entry {
    char *name;
    unsigned long long uid, gid;
    int line;                    /* in the state file; 0: given now */
};

struct table {
    struct entry *v;
    size_t n;
};

struct ctx {
    struct cr_config *cfg;
    const struct cr_global *g;
    bool oom;
};

static void global_error(struct ctx *c, int key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void global_error(struct ctx *c, int key, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c->g->key_line[key])
        cr_errlist_add(&c->cfg->errors, "%s:%d: %s: %s", c->g->file, c->g->key_line[key],
                       cr_keys[key].name, msg);
    else
        cr_errlist_add(&c->cfg->errors, "%s: %s: %s", c->g->file, cr_keys[key].name, msg);
}

/* The uid of user in the host's /etc/passwd as text (or, for a numeric user, the name of
 * that uid): the other spelling subid lines may use. Empty when there is none. */
static void other_spelling(const char *user, char *out, size_t len)
{
    out[0] = '\0';
    FILE *f = fopen("/etc/passwd", "re");
    if (!f)
        return;
    bool numeric = user[0] && strspn(user, "0123456789") == strlen(user);
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        char *name = line, *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        char *c3 = c2 ? strchr(c2 + 1, ':') : NULL;
        if (!c3)
            continue;
        *c1 = *c3 = '\0';
        const char *uid = c2 + 1;
        const char *other = !numeric && !strcmp(name, user) ? uid
                          : numeric && !strcmp(uid, user) ? name : NULL;
        if (other && strlen(other) < len) {
            memcpy(out, other, strlen(other) + 1);
            break;
        }
    }
    fclose(f);
}

/* path's text into *buf (malloc'd); false (nothing to free) when the file is missing or
 * cannot be read, the latter reported under key. */
static bool load(struct ctx *c, int key, const char *path, char **buf)
{
    size_t len;
    struct cr_errlist errs = {0};
    if (access(path, F_OK) < 0 && errno == ENOENT)
        return false;
    if (cr_ini_load(path, STATE_MAX_BYTES, buf, &len, &errs) < 0) {
        for (size_t i = 0; i < errs.n; i++)
            global_error(c, key, "%s", errs.v[i]);
        cr_errlist_free(&errs);
        return false;
    }
    return true;
}

/* The ranges path gives user (by name or uid). A missing file gives none. */
static void read_subids(struct ctx *c, int key, const char *path, const char *user,
                        const char *alt, struct ranges *out)
{
    char *buf;
    if (!load(c, key, path, &buf))
        return;
    int lineno = 0;
    for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        char *colon = strchr(line, ':');
        if (!colon || line[0] == '#')
            continue;
        *colon = '\0';
        if (strcmp(line, user) && (!alt[0] || strcmp(line, alt)))
            continue;
        const char *p = colon + 1;
        struct range r;
        if (!cr_cfg_id32(&p, ":", &r.start) || (p++, !cr_cfg_id32(&p, "", &r.count)) ||
            r.start + r.count > 0xFFFFFFFFULL) {
            global_error(c, key, "%s:%d: '%s:%s' is not NAME:START:COUNT", path, lineno, line,
                         colon + 1);
            continue;
        }
        struct range *nv = realloc(out->v, (out->n + 1) * sizeof *nv);
        if (!nv) {
            c->oom = true;
            break;
        }
        out->v = nv;
        out->v[out->n++] = r;
    }
    free(buf);
}

/* The i-th 65536-id slot of rs (in file order), or false past the last. */
static bool slot(const struct ranges *rs, size_t i, unsigned long long *start)
{
    for (size_t k = 0; k < rs->n; k++) {
        unsigned long long n = rs->v[k].count / SLOT;
        if (i < n) {
            *start = rs->v[k].start + i * SLOT;
            return true;
        }
        i -= n;
    }
    return false;
}

static bool within(const struct ranges *rs, unsigned long long start)
{
    for (size_t k = 0; k < rs->n; k++)
        if (start >= rs->v[k].start && start + SLOT <= rs->v[k].start + rs->v[k].count)
            return true;
    return false;
}

static bool overlaps(unsigned long long a, unsigned long long b)
{
    return a < b + SLOT && b < a + SLOT;
}

static struct entry *table_find(struct table *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(t->v[i].name, name))
            return &t->v[i];
    return NULL;
}

static bool table_add(struct table *t, const char *name, unsigned long long uid,
                      unsigned long long gid, int line)
{
    struct entry *nv = realloc(t->v, (t->n + 1) * sizeof *nv);
    if (!nv)
        return false;
    t->v = nv;
    if (!(nv[t->n].name = strdup(name)))
        return false;
    nv[t->n].uid = uid;
    nv[t->n].gid = gid;
    nv[t->n].line = line;
    t->n++;
    return true;
}

static void table_free(struct table *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->v[i].name);
    free(t->v);
}

static void ranges_free(struct ranges *r)
{
    free(r->v);
}

/* The state file's ranges; a missing file is an empty table. */
static void read_state(struct ctx *c, const char *path, struct table *t)
{
    char *buf;
    if (!load(c, CR_K_USERNS_STATE, path, &buf))
        return;
    int lineno = 0;
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        if (line[0] == '#' || !line[strspn(line, " \t")])
            continue;
        char name[CR_NAME_MAX + 2];
        size_t n = strcspn(line, " ");
        const char *p = line + n + 1;
        unsigned long long uid, gid;
        if (n == 0 || n > CR_NAME_MAX || line[n] != ' ' || !cr_cfg_id32(&p, " ", &uid) ||
            (p++, !cr_cfg_id32(&p, "", &gid))) {
            global_error(c, CR_K_USERNS_STATE, "%s:%d: '%s' is not NAME UID GID", path, lineno,
                         line);
            continue;
        }
        memcpy(name, line, n);
        name[n] = '\0';
        bool bad = false;
        for (size_t i = 0; i < t->n && !bad; i++) {
            const struct entry *e = &t->v[i];
            if (!strcmp(e->name, name) || overlaps(e->uid, uid) || overlaps(e->gid, gid)) {
                global_error(c, CR_K_USERNS_STATE, "%s:%d: '%s' %s line %d", path, lineno, line,
                             strcmp(e->name, name) ? "overlaps the range of" : "repeats",
                             e->line);
                bad = true;
            }
        }
        if (!bad && !table_add(t, name, uid, gid, lineno))
            c->oom = true;
    }
    free(buf);
}

static int mkdir_parents(const char *path)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    return 0;
}

/* Writes t into path: a file beside it, synced, renamed over it. */
static int write_state(const char *path, const struct table *t)
{
    char tmp[PATH_MAX + 32];
    snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid());
    FILE *f = fopen(tmp, "we");
    if (!f)
        return -errno;
    fprintf(f, "# corral: the host ids of each user_namespace = auto service: NAME UID GID\n"
               "# (65536 from each). A name keeps its range; remove the line of a service no\n"
               "# longer used to free its range.\n");
    for (size_t i = 0; i < t->n; i++)
        fprintf(f, "%s %llu %llu\n", t->v[i].name, t->v[i].uid, t->v[i].gid);
    int e = fflush(f) || fsync(fileno(f)) ? errno : 0;
    if (fclose(f) && !e)
        e = errno;
    if (!e && rename(tmp, path) < 0)
        e = errno;
    if (e)
        unlink(tmp);
    return -e;
}

static char *map_text(unsigned long long host)
{
    char *s;
    return asprintf(&s, "0 %llu %llu\n", host, SLOT) < 0 ? NULL : s;
}

/* A free slot of rs: one no range of the table (nor an explicit map of this config) holds. */
static bool free_slot(const struct ranges *rs, const struct table *t, bool gid,
                      const struct ranges *taken, unsigned long long *out)
{
    unsigned long long s;
    for (size_t i = 0; slot(rs, i, &s); i++) {
        bool used = false;
        for (size_t k = 0; k < t->n && !used; k++)
            used = overlaps(s, gid ? t->v[k].gid : t->v[k].uid);
        for (size_t k = 0; k < taken->n && !used; k++)
            used = s < taken->v[k].start + taken->v[k].count && taken->v[k].start < s + SLOT;
        if (!used) {
            *out = s;
            return true;
        }
    }
    return false;
}

/* The host ranges the explicit maps (uid_map, gid_map) of this config use: auto stays off
 * them. */
static void explicit_ranges(struct ctx *c, bool gid, struct ranges *out)
{
    for (size_t i = 0; i < c->cfg->nservices; i++) {
        const char *text = gid ? c->cfg->services[i].gid_map_text
                               : c->cfg->services[i].uid_map_text;
        if (c->cfg->services[i].userns_auto || !text)
            continue;
        unsigned long long cid, h, n;
        int used;
        for (const char *p = text; sscanf(p, "%llu %llu %llu\n%n", &cid, &h, &n, &used) == 3;
             p += used) {
            struct range *nv = realloc(out->v, (out->n + 1) * sizeof *nv);
            if (!nv) {
                c->oom = true;
                return;
            }
            out->v = nv;
            out->v[out->n++] = (struct range){h, n};
        }
    }
}

/* The ranges of every auto service (cr_userns_assign); c->oom when memory ran out. */
static void assign(struct ctx *c, struct cr_service *first, bool persist)
{
    struct cr_config *cfg = c->cfg;
    const struct cr_global *g = c->g;
    char alt[256];
    other_spelling(g->subid_user, alt, sizeof alt);
    CR_CLEANUP(ranges_free) struct ranges uids = {0}, gids = {0}, xu = {0}, xg = {0};
    CR_CLEANUP(table_free) struct table t = {0};
    CR_AUTOFD int lock = -1;   /* held (flock) while the state file is read and replaced */
    size_t before = cfg->errors.n, added = 0;
    read_subids(c, CR_K_SUBUID_FILE, g->subuid_file, g->subid_user, alt, &uids);
    read_subids(c, CR_K_SUBGID_FILE, g->subgid_file, g->subid_user, alt, &gids);
    if (cfg->errors.n != before)
        return;
    if (!uids.n || !gids.n) {
        bool nouser = !alt[0] && strspn(g->subid_user, "0123456789") != strlen(g->subid_user);
        char files[2 * PATH_MAX + 8];
        snprintf(files, sizeof files, "%s%s%s", uids.n ? "" : g->subuid_file,
                 !uids.n && !gids.n ? " and " : "", gids.n ? "" : g->subgid_file);
        const char *add = !uids.n && !gids.n ? "--add-subuids 1000000-1655359 --add-subgids "
                                               "1000000-1655359"
                        : !uids.n ? "--add-subuids 1000000-1655359"
                                  : "--add-subgids 1000000-1655359";
        cr_service_error(&cfg->errors, first, CR_K_USER_NAMESPACE, "auto needs %s entries for "
                         "'%s' (subid_user): e.g. `%s%s%susermod %s %s`", files, g->subid_user,
                         nouser ? "useradd --system --no-create-home " : "",
                         nouser ? g->subid_user : "", nouser ? "; " : "", add, g->subid_user);
        return;
    }
    if (persist) {
        int r = mkdir_parents(g->userns_state);
        char lockpath[PATH_MAX + 8];
        snprintf(lockpath, sizeof lockpath, "%s.lock", g->userns_state);
        if (r == 0) {
            lock = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
            r = lock < 0 || flock(lock, LOCK_EX) < 0 ? -errno : 0;
        }
        if (r < 0) {
            global_error(c, CR_K_USERNS_STATE, "%s: %s", lockpath, strerror(-r));
            return;
        }
    }
    read_state(c, g->userns_state, &t);
    explicit_ranges(c, false, &xu);
    explicit_ranges(c, true, &xg);
    if (cfg->errors.n != before || c->oom)
        return;
    for (size_t i = 0; i < cfg->nservices; i++) {
        struct cr_service *svc = &cfg->services[i];
        if (!svc->userns_auto || !svc->name)
            continue;
        const struct entry *e = table_find(&t, svc->name);
        unsigned long long u, gg;
        if (e) {
            if (!within(&uids, e->uid) || !within(&gids, e->gid)) {
                cr_service_error(&cfg->errors, svc, CR_K_USER_NAMESPACE, "the range %s:%d gives "
                                 "'%s' (uid %llu, gid %llu) is no longer among the ids of '%s' "
                                 "in %s and %s; remove that line to give it a new one",
                                 g->userns_state, e->line, svc->name, e->uid, e->gid,
                                 g->subid_user, g->subuid_file, g->subgid_file);
                continue;
            }
            u = e->uid;
            gg = e->gid;
        } else if (!free_slot(&uids, &t, false, &xu, &u) ||
                   !free_slot(&gids, &t, true, &xg, &gg)) {
            cr_service_error(&cfg->errors, svc, CR_K_USER_NAMESPACE, "no free range of 65536 "
                             "ids left for '%s' in %s and %s of '%s' (%zu ranges given, in "
                             "%s): add ids with usermod --add-subuids/--add-subgids, or remove "
                             "the lines of services no longer used from %s", svc->name,
                             g->subuid_file,
                             g->subgid_file, g->subid_user, t.n, g->userns_state,
                             g->userns_state);
            continue;
        } else if (!table_add(&t, svc->name, u, gg, 0)) {
            c->oom = true;
            break;
        } else {
            added++;
        }
        free(svc->uid_map_text);
        free(svc->gid_map_text);
        svc->uid_map_text = map_text(u);
        svc->gid_map_text = map_text(gg);
        if (!svc->uid_map_text || !svc->gid_map_text)
            c->oom = true;
    }
    if (persist && added && cfg->errors.n == before && !c->oom) {
        int r = write_state(g->userns_state, &t);
        if (r < 0)
            global_error(c, CR_K_USERNS_STATE, "cannot write %s: %s", g->userns_state,
                         strerror(-r));
        else
            cr_errlist_add(&cfg->notices, "user_namespace: %zu new range%s of host ids kept in "
                           "%s", added, added == 1 ? "" : "s", g->userns_state);
    }
}

void cr_userns_assign(struct cr_config *cfg, bool persist)
{
    struct ctx c = {.cfg = cfg, .g = &cfg->global};
    const struct cr_global *g = &cfg->global;
    struct cr_service *first = NULL;
    size_t nauto = 0;
    for (size_t i = 0; i < cfg->nservices; i++)
        if (cfg->services[i].userns_auto && cfg->services[i].name) {
            first = first ? first : &cfg->services[i];
            nauto++;
        }
    if (!nauto || !g->subid_user || !g->subuid_file || !g->subgid_file || !g->userns_state)
        return;
    assign(&c, first, persist);
    if (c.oom)
        cfg->errors.oom = true;
}
