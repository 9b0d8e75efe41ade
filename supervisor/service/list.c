/* The services of one supervisor (list.h). */
#include "service/list.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "service/internal.h"

int cr_svcs_add(struct cr_svcs *s, struct cr_runtime *rt, const struct cr_service *conf,
                struct cr_svc **out)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        struct cr_svc **v = realloc(s->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        s->v = v;
        s->cap = cap;
    }
    int r = cr_svc_new(rt, conf, out);
    if (r < 0)
        return r;
    s->v[s->n++] = *out;
    return 0;
}

struct cr_svc *cr_svcs_find(const struct cr_svcs *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->v[i]->name, name))
            return s->v[i];
    return NULL;
}

void cr_svcs_remove(struct cr_svcs *s, struct cr_svc *svc)
{
    for (size_t i = 0; i < s->n; i++) {
        if (s->v[i] == svc) {
            memmove(&s->v[i], &s->v[i + 1], (s->n - i - 1) * sizeof *s->v);
            s->n--;
            break;
        }
    }
    cr_log(svc->name, "removed");
    cr_svc_free(svc);
}
