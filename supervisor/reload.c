/* Reload (SIGHUP, svctl reload) and its dry run (svctl check): the new config against the
 * running services, as a plan (config/diff.h), and, when applying, what the plan says. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon_int.h"
#include "log.h"
#include "config/keys.h"
#include "io/logs.h"

static bool limits_differ(const struct cr_service *a, const struct cr_service *b)
{
    static const int keys[] = {CR_K_MEMORY_MAX, CR_K_MEMORY_HIGH, CR_K_MEMORY_SWAP_MAX,
                               CR_K_CPU_MAX, CR_K_CPU_WEIGHT, CR_K_PIDS_MAX, CR_K_IO_WEIGHT};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (cr_service_key_differs(a, b, keys[i]))
            return true;
    return false;
}

static bool svc_active(const struct cr_svc *svc)
{
    return !cr_svc_settled(svc);
}

/* `svctl check` is the same without apply. */
int sv_reload(struct sv *sv, const char *why, bool apply, struct cr_plan *plan)
{
    if (apply)
        cr_log(NULL, "%s: reloading %s", why, sv->cfg->path);
    struct cr_config *ncfg = calloc(1, sizeof *ncfg);
    if (!ncfg) {
        cr_log(NULL, "reload: out of memory; nothing changed");
        return -ENOMEM;
    }
    struct cr_config_opts opts = {.userns_persist = apply};
    int r = cr_config_load(sv->cfg->path, &opts, ncfg);
    if (r < 0) {
        for (size_t i = 0; i < ncfg->errors.n; i++) {
            if (apply)
                cr_log(NULL, "reload: %s", ncfg->errors.v[i]);
            if (plan)
                cr_errlist_add(&plan->errors, "%s", ncfg->errors.v[i]);
        }
        if (apply)
            cr_log(NULL, "reload: %zu error%s; nothing changed", ncfg->errors.n,
                   ncfg->errors.n == 1 ? "" : "s");
        cr_config_free(ncfg);
        free(ncfg);
        return r == -ENOMEM ? -ENOMEM : -EINVAL;
    }
    for (size_t i = 0; i < ncfg->notices.n; i++) {
        if (apply)
            cr_log(NULL, "reload: notice: %s", ncfg->notices.v[i]);
        if (plan)
            cr_errlist_add(&plan->notices, "%s", ncfg->notices.v[i]);
    }
    size_t kept = 0, restarted = 0, added = 0, removed = 0;

    /* Removed services stop (in reverse priority order); the others get their new config. */
    struct cr_svc **old = calloc(sv->all.n + 1, sizeof *old);
    size_t nold = sv->all.n;
    if (!old) {
        cr_config_free(ncfg);
        free(ncfg);
        cr_log(NULL, "reload: out of memory; nothing changed");
        return -ENOMEM;
    }
    memcpy(old, sv->all.v, sv->all.n * sizeof *old);
    for (size_t i = 0; i < nold; i++) {
        struct cr_svc *s = old[i];
        const struct cr_service *nc = cr_config_find(ncfg, s->name);
        if (!nc) {
            removed++;
            if (plan)
                cr_plan_add(plan, s->name, CR_PLAN_STOP, s->conf, NULL);
            if (!apply)
                continue;
            s->removed = true;
            s->want_start = false;
            cr_svc_set_conf(s, NULL);
            cr_log(s->name, "removed from the configuration: stopping");
            if (cr_svc_settled(s))
                cr_svcs_remove(&sv->all, s);
            else
                cr_svc_event(s, CR_EV_STOP);
            continue;
        }
        const struct cr_service *oc = s->conf;
        bool restart = !oc || cr_service_needs_restart(oc, nc);
        bool limits = oc && limits_differ(oc, nc);
        if (plan) {
            enum cr_plan_action a = CR_PLAN_KEEP;
            if (restart)
                a = svc_active(s) ? CR_PLAN_RESTART
                    : nc->autostart && s->state == CR_ST_STOPPED ? CR_PLAN_START
                                                                 : CR_PLAN_UPDATE;
            else if (cr_plan_differs(oc, nc))
                a = svc_active(s) ? CR_PLAN_LIVE : CR_PLAN_UPDATE;
            cr_plan_add(plan, s->name, a, oc, nc);
        }
        if (!apply)
            continue;
        cr_svc_set_conf(s, nc);
        if (restart) {
            if (svc_active(s)) {
                restarted++;
                cr_log(s->name, "configuration changed: restarting");
                cr_svc_event(s, CR_EV_STOP);
                cr_svc_event(s, CR_EV_START);   /* STOPPING: start again once down */
            } else if (nc->autostart && s->state == CR_ST_STOPPED) {
                restarted++;
                cr_order_want_start(s);
            } else {
                kept++;
            }
        } else {
            kept++;
            if (limits && s->ct) {
                cr_log(s->name, "applying new limits");
                cr_svc_apply_limits(s);
            }
        }
    }
    free(old);

    /* New services start in priority order. */
    const struct cr_service **order = cr_order_by_priority(ncfg);
    for (size_t i = 0; order && i < ncfg->nservices; i++) {
        const struct cr_service *c = order[i];
        if (cr_svcs_find(&sv->all, c->name))
            continue;
        if (plan)
            cr_plan_add(plan, c->name, c->autostart ? CR_PLAN_START : CR_PLAN_ADD, NULL, c);
        if (!apply)
            continue;
        struct cr_svc *s;
        if (cr_svcs_add(&sv->all, &sv->rt, c, &s) < 0) {
            cr_log(c->name, "out of memory");
            continue;
        }
        added++;
        cr_log(s->name, "added");
        if (c->autostart)
            cr_order_want_start(s);
    }
    free(order);
    if (!apply) {
        cr_config_free(ncfg);
        free(ncfg);
        return 0;
    }

    /* logfile itself needs a restart (as log_dir does); its limits apply now. */
    cr_logs_own_open(sv->cfg->global.logfile, ncfg->global.logfile_maxbytes,
                     ncfg->global.logfile_backups);
    /* Every service points into ncfg now (removed ones point nowhere). */
    cr_config_free(sv->cfg);
    if (sv->cfg_heap)
        free(sv->cfg);
    sv->cfg = ncfg;
    sv->cfg_heap = true;
    cr_log(NULL, "reloaded: %zu added, %zu removed, %zu restarted, %zu unchanged", added, removed,
           restarted, kept);
    cr_order_start_pending(&sv->all);   /* new and stopped services start as depends_on allows */
    return 0;
}
