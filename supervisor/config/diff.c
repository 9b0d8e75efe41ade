/* The reload plan (diff.h): a pure function of two configs and the services' states. */
#include "config/diff.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *cr_plan_action_name(enum cr_plan_action a)
{
    static const char *const names[] = {
        [CR_PLAN_KEEP] = "keep", [CR_PLAN_START] = "start", [CR_PLAN_ADD] = "add",
        [CR_PLAN_STOP] = "stop", [CR_PLAN_RESTART] = "restart", [CR_PLAN_LIVE] = "live",
        [CR_PLAN_UPDATE] = "update",
    };
    return (unsigned)a < sizeof names / sizeof names[0] ? names[a] : "?";
}

/* ---- comparing values through the key table ------------------------------------------------ */

static bool str_differs(const char *a, const char *b)
{
    return (a == NULL) != (b == NULL) || (a && strcmp(a, b));
}

/* True when key k's values at fa and fb differ (as parsed values). */
static bool field_differs(const struct cr_key *k, const void *fa, const void *fb)
{
    switch (k->type) {
    case CR_T_STRING: case CR_T_COMMAND: case CR_T_PATH: case CR_T_LOGFILE: case CR_T_CGPATH:
        return str_differs(*(char *const *)fa, *(char *const *)fb);
    case CR_T_BOOL: case CR_T_NOOP:
        return *(const bool *)fa != *(const bool *)fb;
    case CR_T_DURATION: case CR_T_SIZE: case CR_T_INT:
        return *(const int64_t *)fa != *(const int64_t *)fb;
    case CR_T_SIGNAL: case CR_T_RESTART: case CR_T_UMASK:
        return *(const int *)fa != *(const int *)fb;
    case CR_T_NAMESPACES:
        return *(const unsigned *)fa != *(const unsigned *)fb;
    case CR_T_CODES:
        return memcmp(fa, fb, sizeof(cr_codeset)) != 0;
    case CR_T_CPU_MAX:
        return memcmp(fa, fb, sizeof(struct cr_cpu_max)) != 0;
    case CR_T_LIST: case CR_T_ITEMS: case CR_T_ENV: {
        const struct cr_strv *x = fa, *y = fb;
        if (x->n != y->n)
            return true;
        for (size_t i = 0; i < x->n; i++)
            if (strcmp(x->v[i], y->v[i]))
                return true;
        return false;
    }
    }
    return true;
}

/* The size of a field of type t (what field_differs compares). */
static size_t field_size(enum cr_key_type t)
{
    switch (t) {
    case CR_T_STRING: case CR_T_COMMAND: case CR_T_PATH: case CR_T_LOGFILE: case CR_T_CGPATH:
        return sizeof(char *);
    case CR_T_BOOL: case CR_T_NOOP:
        return sizeof(bool);
    case CR_T_DURATION: case CR_T_SIZE: case CR_T_INT:
        return sizeof(int64_t);
    case CR_T_SIGNAL: case CR_T_RESTART: case CR_T_UMASK:
        return sizeof(int);
    case CR_T_NAMESPACES:
        return sizeof(unsigned);
    case CR_T_CODES:
        return sizeof(cr_codeset);
    case CR_T_CPU_MAX:
        return sizeof(struct cr_cpu_max);
    case CR_T_LIST: case CR_T_ITEMS: case CR_T_ENV:
        return sizeof(struct cr_strv);
    }
    return 0;
}

bool cr_service_key_differs(const struct cr_service *a, const struct cr_service *b, int key)
{
    const struct cr_key *k = &cr_keys[key];
    if (k->sections & CR_SEC_NETWORK) {
        /* The networks themselves differ: `network` says so */
        if (a->nnets != b->nnets)
            return false;
        for (size_t i = 0; i < a->nnets; i++)
            if (field_differs(k, (const char *)a->nets[i] + k->off,
                              (const char *)b->nets[i] + k->off))
                return true;
        return false;
    }
    if (!(k->sections & CR_SEC_SERVICES))
        return false;
    return field_differs(k, (const char *)a + k->off, (const char *)b + k->off);
}

static bool global_key_differs(const struct cr_global *a, const struct cr_global *b, int key)
{
    const struct cr_key *k = &cr_keys[key];
    if (!(k->sections & CR_SEC_GLOBALS))
        return false;
    return field_differs(k, (const char *)a + k->off, (const char *)b + k->off);
}

/* The spec also holds what was resolved on the machine (ids from the rootfs's /etc/passwd,
 * the command's path, environment_file's contents): a change there restarts too. The stop
 * settings in it are the supervisor's, taken as it runs. buf: 2 * (CR_SPEC_MAX + 1) bytes. */
static bool spec_differs(const struct cr_service *a, const struct cr_service *b, char *buf)
{
    struct cr_spec sa = a->spec, sb = b->spec;
    sb.stopsignal = sa.stopsignal;
    sb.stopwait_ms = sa.stopwait_ms;
    char *ta = buf, *tb = buf + CR_SPEC_MAX + 1;
    ssize_t na = cr_spec_write(&sa, ta, CR_SPEC_MAX + 1);
    ssize_t nb = cr_spec_write(&sb, tb, CR_SPEC_MAX + 1);
    return na < 0 || nb < 0 || na != nb || memcmp(ta, tb, (size_t)na);
}

/* Which classes of keys (1 << enum cr_key_reload) differ between a and b. */
static unsigned service_changes(const struct cr_service *a, const struct cr_service *b)
{
    unsigned m = 0;
    for (int k = 0; k < CR_NKEYS; k++)
        if (cr_service_key_differs(a, b, k))
            m |= 1u << cr_keys[k].reload;
    return m;
}

bool cr_service_needs_restart(const struct cr_service *a, const struct cr_service *b)
{
    if (service_changes(a, b) & 1u << CR_RELOAD_RESTART)
        return true;
    char *buf = malloc(2 * (CR_SPEC_MAX + 1));
    bool differs = !buf || spec_differs(a, b, buf);
    free(buf);
    return differs;
}

/* ---- the plan ------------------------------------------------------------------------------ */

/* Appends one key name to an item's list (cut with "..." when full). */
static void keys_add(struct cr_plan_item *it, const char *name)
{
    size_t len = strlen(it->keys), kl = strlen(name);
    if (len >= 3 && !strcmp(it->keys + len - 3, "..."))
        return;
    if (len + kl + 5 >= sizeof it->keys) {
        snprintf(it->keys + len, sizeof it->keys - len, "%s...", len ? "," : "");
        return;
    }
    snprintf(it->keys + len, sizeof it->keys - len, "%s%s", len ? "," : "", name);
}

static struct cr_plan_item *item_add(struct cr_plan *p, const char *name,
                                     enum cr_plan_action a, ssize_t conf)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        struct cr_plan_item *v = realloc(p->v, cap * sizeof *v);
        if (!v)
            return NULL;
        p->v = v;
        p->cap = cap;
    }
    struct cr_plan_item *it = &p->v[p->n];
    memset(it, 0, sizeof *it);
    it->name = strdup(name);
    if (!it->name)
        return NULL;
    it->action = a;
    it->conf = conf;
    p->n++;
    return it;
}

/* supervisord's group of the item's service (its own name when it has none). */
static void group_set(struct cr_plan_item *it, const struct cr_service *c)
{
    snprintf(it->group, sizeof it->group, "%s", c && c->sd_group ? c->sd_group : it->name);
}

/* Names, sorted, to find things by name in O(log n) (configs may hold thousands). */
struct named {
    const char *name;
    size_t i;
};

static int cmp_named(const void *a, const void *b)
{
    return strcmp(((const struct named *)a)->name, ((const struct named *)b)->name);
}

static struct named *index_of_svcs(const struct cr_plan_svc *s, size_t n)
{
    struct named *v = calloc(n + 1, sizeof *v);
    for (size_t i = 0; v && i < n; i++)
        v[i] = (struct named){s[i].name, i};
    if (v)
        qsort(v, n, sizeof *v, cmp_named);
    return v;
}

static struct named *index_of_config(const struct cr_config *c)
{
    struct named *v = calloc(c->nservices + 1, sizeof *v);
    for (size_t i = 0; v && i < c->nservices; i++)
        v[i] = (struct named){c->services[i].name, i};
    if (v)
        qsort(v, c->nservices, sizeof *v, cmp_named);
    return v;
}

static ssize_t find(const struct named *v, size_t n, const char *name)
{
    struct named key = {name, 0};
    const struct named *f = bsearch(&key, v, n, sizeof *v, cmp_named);
    return f ? (ssize_t)f->i : -1;
}

/* Priority order: lower first, file order among equals (as the supervisor starts them). */
struct ranked {
    int64_t priority;
    size_t i;
};

static int cmp_ranked(const void *a, const void *b)
{
    const struct ranked *x = a, *y = b;
    if (x->priority != y->priority)
        return x->priority < y->priority ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

/* The item of a service that exists (oc: its config in use; NULL when it was removed and
 * still stops) and is in the new config (nc, index ni). */
static int plan_existing(struct cr_plan *p, const struct cr_service *oc,
                         const struct cr_service *nc, ssize_t ni, enum cr_plan_state st,
                         char *specbuf)
{
    unsigned changes = oc ? service_changes(oc, nc) : 1u << CR_RELOAD_RESTART;
    bool spec = oc && !(changes & 1u << CR_RELOAD_RESTART) && spec_differs(oc, nc, specbuf);
    bool restart = (changes & 1u << CR_RELOAD_RESTART) || spec;
    enum cr_plan_action a = CR_PLAN_KEEP;
    if (restart)
        a = st == CR_PLAN_ACTIVE ? CR_PLAN_RESTART
            : st == CR_PLAN_STOPPED && nc->autostart ? CR_PLAN_START
                                                     : CR_PLAN_UPDATE;
    else if (changes)
        a = st == CR_PLAN_ACTIVE ? CR_PLAN_LIVE : CR_PLAN_UPDATE;
    struct cr_plan_item *it = item_add(p, nc->name, a, ni);
    if (!it)
        return -ENOMEM;
    group_set(it, nc);
    it->limits = a == CR_PLAN_LIVE && (changes & 1u << CR_RELOAD_LIVE);
    for (int k = 0; oc && k < CR_NKEYS; k++)
        if (cr_service_key_differs(oc, nc, k))
            keys_add(it, cr_keys[k].name);
    if (spec)
        keys_add(it, "spec");
    return 0;
}

static int plan_global(struct cr_plan *p, const struct cr_global *a, const struct cr_global *b)
{
    unsigned changes = 0;
    for (int k = 0; k < CR_NKEYS; k++)
        if (global_key_differs(a, b, k))
            changes |= 1u << cr_keys[k].reload;
    if (!changes)
        return 0;
    struct cr_plan_item *it = item_add(p, CR_PLAN_GLOBAL, changes & 1u << CR_RELOAD_LIVE
                                                              ? CR_PLAN_LIVE : CR_PLAN_UPDATE, -1);
    if (!it)
        return -ENOMEM;
    it->global = true;
    for (int k = 0; k < CR_NKEYS; k++)
        if (global_key_differs(a, b, k))
            keys_add(it, cr_keys[k].name);
    return 0;
}

static bool net_def_differs(const struct cr_network *a, const struct cr_network *b)
{
    return a->net4.prefix != b->net4.prefix || (a->net4.prefix >= 0 && a->net4.addr != b->net4.addr) ||
           a->net6.prefix != b->net6.prefix ||
           (a->net6.prefix >= 0 && memcmp(a->net6.addr, b->net6.addr, 16)) ||
           a->internal != b->internal || str_differs(a->bridge, b->bridge);
}

static bool uses_net(const struct cr_service *s, const struct cr_network *n)
{
    for (size_t i = 0; s->net_mode == CR_NETMODE_BRIDGE && i < s->nnets; i++)
        if (s->nets[i] == n)
            return true;
    return false;
}

/* The networks whose definition changed: plan->renet, or an error naming the services whose
 * containers use them now. 0, -EINVAL or -ENOMEM. */
static int plan_networks(struct cr_plan *p, const struct cr_config *old,
                         const struct cr_config *new, const struct cr_plan_svc *svcs,
                         size_t nsvcs)
{
    int r = 0;
    for (size_t i = 0; i < new->nnetworks; i++) {
        const struct cr_network *nn = &new->networks[i], *on = NULL;
        for (size_t k = 0; k < old->nnetworks && !on; k++)
            if (!strcmp(old->networks[k].name, nn->name))
                on = &old->networks[k];
        if (!on || !net_def_differs(on, nn))
            continue;
        char what[256], users[512] = "";
        snprintf(what, sizeof what, "subnet %s -> %s%s%s%s", on->subnet ? on->subnet : "(auto)",
                 nn->subnet ? nn->subnet : "(auto)",
                 str_differs(on->subnet6, nn->subnet6) ? ", subnet6 changed" : "",
                 on->internal != nn->internal ? ", internal changed" : "",
                 str_differs(on->bridge, nn->bridge) ? ", bridge changed" : "");
        size_t ul = 0;
        for (size_t k = 0; k < old->nservices; k++) {
            const struct cr_service *s = &old->services[k];
            if (!uses_net(s, on))
                continue;
            for (size_t j = 0; j < nsvcs; j++)
                if (!strcmp(svcs[j].name, s->name) && svcs[j].state == CR_PLAN_ACTIVE &&
                    ul < sizeof users)
                    ul += (size_t)snprintf(users + ul, sizeof users - ul, "%s%s", ul ? ", " : "",
                                           s->name);
        }
        const char *where = nn->file ? nn->file : new->path;
        if (ul) {
            cr_errlist_add(&p->errors, "%s:%d: [network:%s]: %s needs its bridge made again, "
                           "and the containers of %s use it: stop them, reload, then start "
                           "them (or restart the supervisor)", where, nn->line, nn->name, what,
                           users);
            r = -EINVAL;
            continue;
        }
        char **v = realloc(p->renet, (p->nrenet + 1) * sizeof *v);
        if (!v)
            return -ENOMEM;
        p->renet = v;
        if (!(v[p->nrenet] = strdup(nn->name)))
            return -ENOMEM;
        p->nrenet++;
        cr_errlist_add(&p->notices, "[network:%s]: %s: no container uses it; its bridge is "
                       "removed now and made again at its next use", nn->name, what);
    }
    return r;
}

int cr_plan_compute(const struct cr_config *old, const struct cr_config *new,
                    const struct cr_plan_svc *svcs, size_t nsvcs, struct cr_plan *plan)
{
    if (new->errors.n) {
        for (size_t i = 0; i < new->errors.n; i++)
            cr_errlist_add(&plan->errors, "%s", new->errors.v[i]);
        return -EINVAL;
    }
    for (size_t i = 0; i < new->notices.n; i++)
        cr_errlist_add(&plan->notices, "%s", new->notices.v[i]);

    int r = -ENOMEM;
    struct named *by_svc = index_of_svcs(svcs, nsvcs);
    struct named *by_old = index_of_config(old), *by_new = index_of_config(new);
    size_t nrank = nsvcs > new->nservices ? nsvcs : new->nservices;
    struct ranked *rank = calloc(nrank + 1, sizeof *rank);
    char *specbuf = malloc(2 * (CR_SPEC_MAX + 1));
    if (!by_svc || !by_old || !by_new || !rank || !specbuf)
        goto out;

    /* Services gone from the new config stop, highest priority first (one removed earlier
     * and still stopping has none: it comes first). */
    size_t n = 0;
    for (size_t i = 0; i < nsvcs; i++) {
        if (find(by_new, new->nservices, svcs[i].name) >= 0)
            continue;
        ssize_t o = find(by_old, old->nservices, svcs[i].name);
        rank[n++] = (struct ranked){o >= 0 ? -old->services[o].priority : INT64_MIN, i};
    }
    qsort(rank, n, sizeof *rank, cmp_ranked);
    for (size_t i = 0; i < n; i++) {
        struct cr_plan_item *it = item_add(plan, svcs[rank[i].i].name, CR_PLAN_STOP, -1);
        if (!it)
            goto out;
        ssize_t o = find(by_old, old->nservices, it->name);
        group_set(it, o >= 0 ? &old->services[o] : NULL);
    }

    /* Every service of the new config, in the order they start. */
    for (size_t i = 0; i < new->nservices; i++)
        rank[i] = (struct ranked){new->services[i].priority, i};
    qsort(rank, new->nservices, sizeof *rank, cmp_ranked);
    for (size_t i = 0; i < new->nservices; i++) {
        const struct cr_service *nc = &new->services[rank[i].i];
        ssize_t s = find(by_svc, nsvcs, nc->name);
        if (s < 0) {
            struct cr_plan_item *it = item_add(plan, nc->name, nc->autostart ? CR_PLAN_START
                                                                          : CR_PLAN_ADD,
                                               (ssize_t)rank[i].i);
            if (!it)
                goto out;
            group_set(it, nc);
            it->create = true;
            continue;
        }
        ssize_t o = find(by_old, old->nservices, nc->name);
        if (plan_existing(plan, o >= 0 ? &old->services[o] : NULL, nc, (ssize_t)rank[i].i,
                          svcs[s].state, specbuf) < 0)
            goto out;
    }
    r = plan_global(plan, &old->global, &new->global);
    if (r == 0)
        r = plan_networks(plan, old, new, svcs, nsvcs);
out:
    free(by_svc);
    free(by_old);
    free(by_new);
    free(rank);
    free(specbuf);
    return r;
}

void cr_plan_item_format(const struct cr_plan_item *it, char *buf, size_t len)
{
    snprintf(buf, len, "%s: %s%s%s%s", it->name, cr_plan_action_name(it->action),
             it->keys[0] ? " (keys: " : "", it->keys, it->keys[0] ? ")" : "");
}

void cr_plan_free(struct cr_plan *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->v[i].name);
    free(p->v);
    cr_errlist_free(&p->errors);
    cr_errlist_free(&p->notices);
    for (size_t i = 0; i < p->nrenet; i++)
        free(p->renet[i]);
    free(p->renet);
    memset(p, 0, sizeof *p);
}

void cr_config_keep_running_globals(struct cr_config *new, struct cr_config *old)
{
    for (int k = 0; k < CR_NKEYS; k++) {
        const struct cr_key *key = &cr_keys[k];
        if (!(key->sections & CR_SEC_GLOBALS) || key->reload != CR_RELOAD_RESTART)
            continue;
        /* Swapped: old is freed next, and with it the value that is not in use. */
        char tmp[64];
        size_t sz = field_size(key->type);
        char *a = (char *)&new->global + key->off, *b = (char *)&old->global + key->off;
        if (sz > sizeof tmp)
            continue;
        memcpy(tmp, a, sz);
        memcpy(a, b, sz);
        memcpy(b, tmp, sz);
        new->global.key_line[k] = old->global.key_line[k];
    }
}
