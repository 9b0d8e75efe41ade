/* The reload plan (diff.h). */
#include "config/diff.h"

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

bool cr_plan_differs(const struct cr_service *a, const struct cr_service *b)
{
    if (!a || !b)
        return a != b;
    for (int k = 0; k < CR_NKEYS; k++)
        if ((cr_keys[k].sections & CR_SEC_SERVICE) && cr_service_key_differs(a, b, k))
            return true;
    return false;
}

void cr_plan_add(struct cr_plan *p, const char *name, enum cr_plan_action a,
                 const struct cr_service *a_conf, const struct cr_service *b_conf)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        struct cr_plan_item *v = realloc(p->v, cap * sizeof *v);
        if (!v)
            return;
        p->v = v;
        p->cap = cap;
    }
    struct cr_plan_item *it = &p->v[p->n];
    memset(it, 0, sizeof *it);
    it->name = strdup(name);
    if (!it->name)
        return;
    it->action = a;
    if (a_conf && b_conf) {
        size_t len = 0;
        for (int k = 0; k < CR_NKEYS; k++) {
            if (!(cr_keys[k].sections & CR_SEC_SERVICE) ||
                !cr_service_key_differs(a_conf, b_conf, k))
                continue;
            size_t kl = strlen(cr_keys[k].name);
            if (len + kl + 5 >= sizeof it->keys) {
                snprintf(it->keys + len, sizeof it->keys - len, "%s...", len ? "," : "");
                break;
            }
            len += (size_t)snprintf(it->keys + len, sizeof it->keys - len, "%s%s",
                                    len ? "," : "", cr_keys[k].name);
        }
    }
    p->n++;
}

void cr_plan_free(struct cr_plan *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->v[i].name);
    free(p->v);
    cr_errlist_free(&p->errors);
    cr_errlist_free(&p->notices);
    memset(p, 0, sizeof *p);
}
