/* Kill and remove without blocking the loop (cgroup.h, "without blocking"): one timer per
 * root drives every job; each check is a few file reads, never a wait. */
#include "cgroup/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

enum { R_NEW, R_FREEZING, R_THAW, R_DRAIN, R_REMOVE, R_DONE };

struct cr_cg_reaper {
    uv_timer_t timer;
    bool closing;
    int n;
    struct cr_cg *head;
};

/* The next check of a job: 1, 2, 4 ... ms after the last, at most 50. */
static void later(struct cr_cg *cg, int64_t now)
{
    int d = cg->rchecks < 6 ? 1 << cg->rchecks : 50;
    cg->rchecks++;
    cg->rnext_ms = now + (d > 50 ? 50 : d);
}

static void finish_job(struct cr_cg *cg, int rc, const char *err)
{
    cr_cg_reap_done done = cg->rdone;
    void *arg = cg->rarg;
    cg->rqueued = false;
    cg->rdone = NULL;
    if (cg->rremove) {
        if (cg->dirfd >= 0)
            close(cg->dirfd);
        free(cg);
    }
    if (done)
        done(arg, rc, err);
}

/* One step of one job; true when it is finished. */
static bool step(struct cr_cg *cg, int64_t now, int *rc, char *err, size_t errlen)
{
    const struct cg_ops *ops = cg_ops(cg->version);
    switch (cg->rstate) {
    case R_NEW: {
        int n = ops->kill_pass(cg);
        if (n <= 0) {                          /* empty (or gone): nothing to kill */
            cg->rstate = cg->rremove ? R_REMOVE : R_DONE;
            return step(cg, now, rc, err, errlen);
        }
        cg->rprocs = n;
        /* v1: the freeze keeps what forks between the pass and the thaw from escaping; the
         * pass above already sent SIGKILL to all it saw (delivered once thawed). */
        cg->rstate = ops->freeze(cg, true) == 0 ? R_FREEZING : R_DRAIN;
        later(cg, now);
        return false;
    }
    case R_FREEZING:
        if (!ops->frozen(cg) && now - cg->rstart < CG_FREEZE_WAIT_MS) {
            later(cg, now);
            return false;
        }
        ops->kill_pass(cg);
        cg->rstate = R_THAW;                   /* thawed after this round's freezes */
        cg->rnext_ms = now;
        return false;
    case R_THAW:
        ops->freeze(cg, false);
        cg->rstate = R_DRAIN;
        cg->rchecks = 0;
        later(cg, now);
        return false;
    case R_DRAIN:
        if (ops->kill_pass(cg) > 0) {
            if (now - cg->rstart >= CG_REAP_WAIT_MS) {
                *rc = cg_err(err, errlen, -EBUSY, "%s: still populated %d ms after SIGKILL",
                             cg->path, CG_REAP_WAIT_MS);
                return true;
            }
            later(cg, now);
            return false;
        }
        cg->rstate = cg->rremove ? R_REMOVE : R_DONE;
        return step(cg, now, rc, err, errlen);
    case R_REMOVE:
        *rc = ops->remove(cg, 0, err, errlen);
        if (*rc == -EBUSY || *rc == -ENOTEMPTY) {
            if (now - cg->rstart < CG_REAP_WAIT_MS) {
                later(cg, now);
                return false;
            }
        }
        return true;
    default:
        *rc = 0;
        return true;
    }
}

static void arm(struct cr_cg_reaper *rp, int64_t now);

/* Every job that is due, in phases, so that within one tick every freeze comes before any
 * thaw: the kernel's freezer key is switched on once for the batch, not once per cgroup. */
static void on_tick(uv_timer_t *t)
{
    struct cr_cg_reaper *rp = t->data;
    int64_t now = cg_now_ms();
    static const int phases[] = {R_NEW, R_FREEZING, R_THAW, R_DRAIN, R_REMOVE, R_DONE};
    for (size_t ph = 0; ph < sizeof phases / sizeof phases[0]; ph++) {
        for (struct cr_cg **pp = &rp->head; *pp;) {
            struct cr_cg *cg = *pp;
            /* Checks and removals (a v1 rmdir is ~0.1 ms a hierarchy) a slice at a time:
             * the rest are still due, so the timer fires again on the loop's next turn,
             * after what else is ready (a thousand leftovers do not hold up the starts). */
            if (phases[ph] >= R_DRAIN && cg_now_ms() - now >= CG_REAP_SLICE_MS)
                break;
            if (cg->rstate != phases[ph] || cg->rnext_ms > now) {
                pp = &cg->rnext;
                continue;
            }
            char err[512] = "";
            int rc = 0;
            if (!step(cg, now, &rc, err, sizeof err)) {
                pp = &cg->rnext;
                continue;
            }
            *pp = cg->rnext;
            rp->n--;
            finish_job(cg, rc, rc < 0 ? err : NULL);
        }
    }
    arm(rp, cg_now_ms());
}

static void on_closed(uv_handle_t *h)
{
    free(h->data);
}

static void arm(struct cr_cg_reaper *rp, int64_t now)
{
    if (!rp->head) {
        uv_timer_stop(&rp->timer);
        return;
    }
    int64_t next = INT64_MAX;
    for (struct cr_cg *cg = rp->head; cg; cg = cg->rnext)
        if (cg->rnext_ms < next)
            next = cg->rnext_ms;
    uv_timer_start(&rp->timer, on_tick, next > now ? (uint64_t)(next - now) : 0, 0);
}

static void cg_reap_claim(struct cr_cg_reaper *rp, const char *leaf);
static void cg_reap_unlink(struct cr_cg *cg);
static const struct cg_reap_hooks hooks = {cg_reap_claim, cg_reap_unlink};

static void enqueue(struct cr_cg *cg, bool remove, cr_cg_reap_done done, void *arg);

int cr_cg_reaper_start(struct cr_cg_root *r, struct uv_loop_s *loop,
                       cr_cg_reap_done leftover_done, void *arg)
{
    struct cr_cg_reaper *rp = calloc(1, sizeof *rp);
    int rc = rp ? uv_timer_init(loop, &rp->timer) : -ENOMEM;
    if (rc < 0) {
        free(rp);
        char err[512];
        cg_sweep_finish(r, err, sizeof err);   /* the sweep's leftovers: waited for now */
        return rc;
    }
    rp->timer.data = rp;
    r->hooks = &hooks;
    r->reaper = rp;
    /* The sweep's leftovers: killed and thawed already, removed as they empty. */
    for (size_t i = 0; i < r->nleft; i++) {
        struct cr_cg *cg = r->left[i];
        cg->rp = rp;
        cg->rhooks = &hooks;
        enqueue(cg, true, leftover_done, arg);
        cg->rstate = R_REMOVE;
    }
    free(r->left);
    r->left = NULL;
    r->nleft = 0;
    return 0;
}

void cr_cg_reaper_stop(struct cr_cg_root *r)
{
    struct cr_cg_reaper *rp = r->reaper;
    if (!rp)
        return;
    r->reaper = NULL;
    rp->closing = true;
    while (rp->head)
        cg_reap_claim(rp, rp->head->leaf);   /* normally none: the loop ran them out */
    uv_timer_stop(&rp->timer);
    uv_close((uv_handle_t *)&rp->timer, on_closed);
}

int cr_cg_reaper_pending(const struct cr_cg_root *r)
{
    return r->reaper ? r->reaper->n : 0;
}

static void enqueue(struct cr_cg *cg, bool remove, cr_cg_reap_done done, void *arg)
{
    struct cr_cg_reaper *rp = cg->rp;
    cg->rdone = done;
    cg->rarg = arg;
    cg->rremove |= remove;
    if (cg->rqueued) {
        if (remove && cg->rstate == R_DONE)
            cg->rstate = R_REMOVE;
        return;
    }
    int64_t now = cg_now_ms();
    cg->rqueued = true;
    cg->rstate = R_NEW;
    cg->rstart = now;
    cg->rnext_ms = now;
    cg->rchecks = 0;
    cg->rprocs = 0;
    cg->rnext = rp->head;
    rp->head = cg;
    if (rp->n++ == 0)
        uv_timer_start(&rp->timer, on_tick, 0, 0);   /* next turn: this turn's jobs batch */
}

void cr_cg_kill_async(struct cr_cg *cg, cr_cg_reap_done done, void *arg)
{
    if (!cg->rp || cg->rp->closing) {
        char err[512];
        int rc = cr_cg_kill(cg, err, sizeof err);
        if (done)
            done(arg, rc, rc < 0 ? err : NULL);
        return;
    }
    enqueue(cg, false, done, arg);
}

void cr_cg_destroy_async(struct cr_cg *cg, cr_cg_reap_done done, void *arg)
{
    if (!cg->rp || cg->rp->closing) {
        char err[512];
        int rc = cr_cg_destroy(cg, err, sizeof err);
        if (done)
            done(arg, rc, rc < 0 ? err : NULL);
        return;
    }
    enqueue(cg, true, done, arg);
}

static void cg_reap_claim(struct cr_cg_reaper *rp, const char *leaf)
{
    if (!rp)
        return;
    for (struct cr_cg **pp = &rp->head; *pp; pp = &(*pp)->rnext) {
        struct cr_cg *cg = *pp;
        if (strcmp(cg->leaf, leaf))
            continue;
        *pp = cg->rnext;
        rp->n--;
        /* The old one is killed and removed now, as cr_cg_destroy does; a kill-only job's
         * cgroup is still its owner's: only killed. */
        char err[512];
        if (cg->rstate == R_THAW || cg->rstate == R_FREEZING)
            cg_ops(cg->version)->freeze(cg, false);
        /* Killed already and empty (the sweep's leftovers, mostly): removed at once. */
        int rc = cg->rstate == R_REMOVE && cr_cg_is_empty(cg) ? 0
                                                              : cr_cg_kill(cg, err, sizeof err);
        if (cg->rremove) {
            int r = cg_ops(cg->version)->remove(cg, rc < 0 ? 0 : CG_KILL_WAIT_MS,
                                                rc < 0 ? NULL : err, sizeof err);
            if (rc == 0)
                rc = r;
        }
        finish_job(cg, rc, rc < 0 ? err : NULL);
        if (!rp->head)
            uv_timer_stop(&rp->timer);
        return;
    }
}

static void cg_reap_unlink(struct cr_cg *cg)
{
    struct cr_cg_reaper *rp = cg->rp;
    if (!cg->rqueued || !rp)
        return;
    for (struct cr_cg **pp = &rp->head; *pp; pp = &(*pp)->rnext) {
        if (*pp != cg)
            continue;
        *pp = cg->rnext;
        rp->n--;
        break;
    }
    if (cg->rstate == R_THAW || cg->rstate == R_FREEZING)
        cg_ops(cg->version)->freeze(cg, false);
    cg->rqueued = false;
    if (!rp->head)
        uv_timer_stop(&rp->timer);
}
