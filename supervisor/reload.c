/* Reload (SIGHUP, svctl reload) and its dry run (svctl check): the new config against the
 * running services gives a plan (config/diff.c decides, without side effects); a reload then
 * walks exactly that plan, one service operation per item, and decides nothing itself. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon_int.h"
#include "fd_budget.h"
#include "listeners.h"
#include "log.h"
#include "notify.h"
#include "io/logs.h"
#include "net/host.h"
#include "service/fcgi.h"

/* ---- the networks' kept addresses ------------------------------------------------------------ */

static bool lease_wanted(const char *svc, const char *net, void *arg)
{
    const struct cr_service *c = cr_config_find(arg, svc);
    for (size_t i = 0; c && c->net_mode == CR_NETMODE_BRIDGE && i < c->nnets; i++)
        if (!strcmp(c->nets[i]->name, net))
            return true;
    return false;
}

void sv_net_reclaim(struct sv *sv)
{
    if (!sv->rt.run_mode)
        cr_net_reclaim(sv->rt.net, lease_wanted, sv->cfg);
}

/* ---- what the plan needs to know of the services ------------------------------------------- */

static struct cr_plan_svc *plan_input(const struct cr_svcs *all)
{
    struct cr_plan_svc *v = calloc(all->n + 1, sizeof *v);
    for (size_t i = 0; v && i < all->n; i++) {
        const struct cr_svc *s = all->v[i];
        v[i].name = cr_svc_name(s);
        v[i].state = !cr_svc_settled(s) ? CR_PLAN_ACTIVE
                     : cr_svc_state(s) == CR_ST_STOPPED ? CR_PLAN_STOPPED
                                                 : CR_PLAN_DOWN;
    }
    return v;
}

/* ---- the service operations a plan item maps to -------------------------------------------- */

/* Gone from the config: stops, and is dropped once settled. */
static void svc_remove(struct sv *sv, struct cr_svc *s)
{
    cr_svc_set_removed(s);
    if (cr_svc_settled(s))
        cr_svcs_remove(&sv->all, s);
    else
        cr_svc_request(s, CR_REQ_STOP);
}

/* Takes the new config (every service that stays: its old config is freed after the walk). */
static void svc_take(struct cr_svc *s, const struct cr_service *nc)
{
    cr_svc_set_conf(s, nc);   /* also one removed earlier, still stopping, put back */
}

static void svc_restart(struct cr_svc *s, const struct cr_service *nc)
{
    svc_take(s, nc);
    cr_svc_request(s, CR_REQ_RESTART);   /* starts again once down, as depends_on allows */
}

static void svc_start(struct cr_svc *s, const struct cr_service *nc)
{
    svc_take(s, nc);
    cr_svc_request(s, CR_REQ_START);   /* as depends_on allows, after the walk */
}

static void svc_live(struct cr_svc *s, const struct cr_service *nc, bool limits)
{
    svc_take(s, nc);
    if (limits)
        cr_svc_apply_limits(s);
}

static void svc_create(struct sv *sv, const struct cr_service *nc, bool start)
{
    struct cr_svc *s;
    if (cr_svcs_add(&sv->all, &sv->rt, nc, &s) < 0) {
        cr_log(nc->name, "out of memory");
        return;
    }
    if (start)
        cr_svc_request(s, CR_REQ_START);
}

/* ---- the walk ------------------------------------------------------------------------------ */

struct counts {
    size_t added, removed, restarted, kept;
};

static void walk_global(struct sv *sv, const struct cr_plan_item *it, struct cr_config *ncfg)
{
    cr_config_keep_running_globals(ncfg, sv->cfg);
    if (it->action == CR_PLAN_LIVE)
        cr_logs_own_open(ncfg->global.logfile, ncfg->global.logfile_maxbytes,
                         ncfg->global.logfile_backups);
}

static void walk(struct sv *sv, const struct cr_plan_item *it, struct cr_config *ncfg,
                 struct counts *c)
{
    if (it->action != CR_PLAN_KEEP) {
        char line[512];
        cr_plan_item_format(it, line, sizeof line);
        cr_log(NULL, "reload: %s", line);
    }
    if (it->global) {
        walk_global(sv, it, ncfg);
        return;
    }
    /* Every item but a stop has its new config (diff.h). */
    const struct cr_service *nc = it->conf >= 0 ? &ncfg->services[it->conf] : NULL;
    if (it->create) {
        if (nc)
            svc_create(sv, nc, it->action == CR_PLAN_START);
        c->added++;
        return;
    }
    struct cr_svc *s = cr_svcs_find(&sv->all, it->name);
    if (!s)
        return;   /* cannot happen: the plan was made from sv->all a moment ago */
    switch (it->action) {
    case CR_PLAN_STOP: svc_remove(sv, s); c->removed++; break;
    case CR_PLAN_RESTART: svc_restart(s, nc); c->restarted++; break;
    case CR_PLAN_START: svc_start(s, nc); c->restarted++; break;
    case CR_PLAN_LIVE: svc_live(s, nc, it->limits); c->kept++; break;
    case CR_PLAN_ADD: /* only for a new service */
    case CR_PLAN_UPDATE:
    case CR_PLAN_KEEP: svc_take(s, nc); c->kept++; break;
    }
}

/* `svctl check` is the same without apply. */
int sv_reload(struct sv *sv, const char *why, bool apply, struct cr_plan *plan)
{
    struct cr_plan own = {0};
    if (!plan)
        plan = &own;
    if (apply) {
        cr_log(NULL, "%s: reloading %s", why, sv->cfg->path);
        sv_notify_reloading("reloading");
    }
    struct cr_config *ncfg = calloc(1, sizeof *ncfg);
    struct cr_plan_svc *in = plan_input(&sv->all);
    int r = -ENOMEM;
    if (ncfg && in) {
        struct cr_config_opts opts = {.userns_persist = apply};
        r = cr_config_load(sv->cfg->path, &opts, ncfg);
        if (r != -ENOMEM)
            r = cr_plan_compute(sv->cfg, ncfg, in, sv->all.n, plan);
        /* A file too large for our fd limit is refused whole, as a start-up would be. */
        char fdmsg[256];
        if (r == 0 && cr_fd_budget(ncfg, sv->fd_inherited, fdmsg, sizeof fdmsg) < 0) {
            cr_errlist_add(&plan->errors, "%s", fdmsg);
            r = -EINVAL;
        }
    }
    free(in);
    if (apply && r == -EINVAL) {
        for (size_t i = 0; i < plan->errors.n; i++)
            cr_log(NULL, "reload: %s", plan->errors.v[i]);
        cr_log(NULL, "reload: %zu error%s; nothing changed", plan->errors.n,
               plan->errors.n == 1 ? "" : "s");
    } else if (apply && r < 0) {
        cr_log(NULL, "reload: %s; nothing changed", strerror(-r));
    }
    if (apply && r < 0)
        sv_notify("READY=1\nSTATUS=reload failed, nothing changed; %s", sv->notified_status);
    if (r < 0 || !apply) {
        if (ncfg)
            cr_config_free(ncfg);
        free(ncfg);
        cr_plan_free(&own);
        return r;
    }

    for (size_t i = 0; i < plan->notices.n; i++)
        cr_log(NULL, "reload: notice: %s", plan->notices.v[i]);
    for (size_t i = 0; i < plan->nrenet; i++) {
        char err[512];
        if (sv->rt.net && cr_net_forget(sv->rt.net, plan->renet[i], err, sizeof err) < 0)
            cr_log(NULL, "reload: %s", err);
    }
    struct counts c = {0};
    for (size_t i = 0; i < plan->n; i++)
        walk(sv, &plan->v[i], ncfg, &c);
    /* Every service points into ncfg now (removed ones point nowhere). */
    cr_config_free(sv->cfg);
    if (sv->cfg_heap)
        free(sv->cfg);
    sv->cfg = ncfg;
    sv->cfg_heap = true;
    sv_evl_config(sv->evl, ncfg, sv->all.v, sv->all.n);
    sv_net_reclaim(sv);
    size_t nfcgi = cr_fcgi_keep_only(ncfg->services, ncfg->nservices);
    if (nfcgi)
        cr_log(NULL, "reload: %zu FastCGI socket%s closed (program removed or socket changed)",
               nfcgi, nfcgi == 1 ? "" : "s");
    cr_log(NULL, "reloaded: %zu added, %zu removed, %zu restarted, %zu unchanged", c.added,
           c.removed, c.restarted, c.kept);
    cr_plan_free(&own);
    cr_order_start_pending(&sv->all);   /* new and stopped services start as depends_on allows */
    sv_notify("READY=1\nSTATUS=reloaded; %s", sv->notified_status);
    return 0;
}
