/* The security keys → the spec's [security] section.
 *
 * Defaults, each relaxable per service (the README's Security section has the table):
 *   capabilities   podman's 11 (CR_CAPS_DEFAULT); cap_add / cap_drop (names as compose
 *                  writes them: NET_RAW or CAP_NET_RAW, any case; ALL), ambient_capabilities
 *   no_new_privileges = true
 *   seccomp        = default (syscall_filter.c), unconfined, or a profile file
 *   masked/read-only paths: the OCI/Docker lists below; masked_paths / readonly_paths add,
 *                  unmask (podman's meaning) takes paths, or ALL, off both lists
 * With the host's / as the root (no rootfs), the supervisor's own control socket directory
 * and log directory are masked too: nothing of the supervisor is reachable from inside. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "config/config.h"
#include "policy/caps.h"
#include "policy/syscall_filter.h"

/* CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE SYS_CHROOT
 * SETFCAP: podman's default set. */
#define CR_CAPS_DEFAULT ((1ULL << 0) | (1ULL << 1) | (1ULL << 3) | (1ULL << 4) | (1ULL << 5) | \
                         (1ULL << 6) | (1ULL << 7) | (1ULL << 8) | (1ULL << 10) |           \
                         (1ULL << 18) | (1ULL << 31))

static const char *const default_masked[] = {
    "/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys",
    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
    "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
};
static const char *const default_readonly[] = {
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
};
#define DEFAULTS_MAX 16
_Static_assert(sizeof default_masked / sizeof *default_masked <= DEFAULTS_MAX &&
               sizeof default_readonly / sizeof *default_readonly <= DEFAULTS_MAX,
               "add_defaults' keep[]");

/* The names of key into a mask; *all when ALL is among them. Unknown names are errors. */
static uint64_t cap_list(struct cr_service *svc, int key, const struct cr_strv *v, bool *all,
                         struct cr_errlist *errors)
{
    uint64_t m = 0;
    *all = false;
    for (size_t i = 0; i < v->n; i++) {
        int c = cr_cap_number(v->v[i]);
        if (c == -2)
            *all = true;
        else if (c >= 0)
            m |= 1ULL << c;
        else
            cr_errlist_add(errors, "%s:%d: %s: '%s' is not a capability (e.g. NET_RAW, "
                           "CAP_SYS_TIME, ALL)", svc->file, v->line[i] ? v->line[i] :
                           svc->key_line[key], cr_keys[key].name, v->v[i]);
    }
    return m;
}

static void resolve_caps(struct cr_service *svc, struct cr_errlist *errors)
{
    struct cr_spec *sp = &svc->spec;
    bool add_all, drop_all, amb_all;
    uint64_t add = cap_list(svc, CR_K_CAP_ADD, &svc->cap_add, &add_all, errors);
    uint64_t drop = cap_list(svc, CR_K_CAP_DROP, &svc->cap_drop, &drop_all, errors);
    uint64_t amb = cap_list(svc, CR_K_AMBIENT_CAPABILITIES, &svc->ambient_capabilities,
                            &amb_all, errors);
    if (add & drop)
        cr_service_error(errors, svc, CR_K_CAP_DROP, "a capability is both added and dropped");
    /* compose's order: ALL first, then the single names. */
    uint64_t caps = add_all ? cr_caps_all() : CR_CAPS_DEFAULT;
    if (drop_all)
        caps = 0;
    caps = (caps | add) & ~drop;
    if (amb_all)
        amb = caps;
    if (amb & ~caps)
        cr_service_error(errors, svc, CR_K_AMBIENT_CAPABILITIES, "holds capabilities the "
                         "service does not have (add them with cap_add)");
    sp->caps = caps;
    sp->ambient = amb;
}

static bool listed(const struct cr_strv *v, const char *path)
{
    for (size_t i = 0; i < v->n; i++)
        if (!strcmp(v->v[i], path) || !strcasecmp(v->v[i], "ALL"))
            return true;
    return false;
}

static void add_paths(struct cr_service *svc, int key, const struct cr_strv *v,
                      int (*add)(struct cr_spec *, const char *), struct cr_errlist *errors)
{
    for (size_t i = 0; i < v->n; i++) {
        if (v->v[i][0] != '/' || strlen(v->v[i]) >= CR_SPEC_MAX_ITEM)
            cr_errlist_add(errors, "%s:%d: %s: '%s' is not an absolute path", svc->file,
                           v->line[i] ? v->line[i] : svc->key_line[key], cr_keys[key].name,
                           v->v[i]);
        else if (add(&svc->spec, v->v[i]))
            errors->oom = true;
    }
}

/* A list's defaults but those unmasked, first, without searching among them (each searched
 * for among the others was ~4 % of a load's instructions). */
static void add_defaults(struct cr_service *svc, const char *const *defs, size_t n,
                         bool readonly, struct cr_errlist *errors)
{
    const char *keep[DEFAULTS_MAX];
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!listed(&svc->unmask, defs[i]))
            keep[k++] = defs[i];
    if (cr_spec_add_new_paths(&svc->spec, readonly, keep, k))
        errors->oom = true;
}

static void resolve_paths(struct cr_service *svc, const struct cr_global *g,
                          struct cr_errlist *errors)
{
    struct cr_spec *sp = &svc->spec;
    if (!(sp->namespaces & CR_NS_MOUNT) || !sp->rootfs)
        return;
    add_defaults(svc, default_masked, sizeof default_masked / sizeof *default_masked, false,
                 errors);
    add_defaults(svc, default_readonly, sizeof default_readonly / sizeof *default_readonly,
                 true, errors);
    for (size_t i = 0; i < svc->unmask.n; i++)
        if (strcasecmp(svc->unmask.v[i], "ALL") && svc->unmask.v[i][0] != '/')
            cr_errlist_add(errors, "%s:%d: unmask: '%s' is neither ALL nor an absolute path",
                           svc->file, svc->unmask.line[i] ? svc->unmask.line[i] :
                           svc->key_line[CR_K_UNMASK], svc->unmask.v[i]);
    add_paths(svc, CR_K_MASKED_PATHS, &svc->masked_paths, cr_spec_add_masked, errors);
    add_paths(svc, CR_K_READONLY_PATHS, &svc->readonly_paths, cr_spec_add_readonly, errors);

    /* The host's own tree: hide the supervisor's socket and logs (not unmaskable). */
    if (strcmp(sp->rootfs, "/"))
        return;
    char dir[4096];
    if (g->control_socket && g->control_socket[0] == '/') {
        snprintf(dir, sizeof dir, "%s", g->control_socket);
        char *slash = strrchr(dir, '/');
        if (slash && slash != dir) {
            *slash = '\0';
            if (cr_spec_add_masked(sp, dir))
                errors->oom = true;
        }
    }
    if (g->log_dir && g->log_dir[0] == '/' && strcmp(g->log_dir, "/") &&
        cr_spec_add_masked(sp, g->log_dir))
        errors->oom = true;
}

/* device = HOST[:CONTAINER][:rwm]: the host's node gives its type and numbers. */
static void resolve_devices(struct cr_service *svc, struct cr_errlist *errors)
{
    if (!svc->device.n)
        return;
    if (svc->device.n > CR_DEVICES_MAX) {
        cr_service_error(errors, svc, CR_K_DEVICE, "more than %d devices", CR_DEVICES_MAX);
        return;
    }
    if (!(svc->spec.namespaces & CR_NS_MOUNT) || !svc->spec.rootfs) {
        cr_service_error(errors, svc, CR_K_DEVICE, "needs the mount namespace");
        return;
    }
    svc->dev_rules = calloc(svc->device.n, sizeof *svc->dev_rules);
    if (!svc->dev_rules) {
        errors->oom = true;
        return;
    }
    for (size_t i = 0; i < svc->device.n; i++) {
        const char *item = svc->device.v[i];
        int line = svc->device.line[i] ? svc->device.line[i] : svc->key_line[CR_K_DEVICE];
        char host[4096], dst[4096];
        const char *acc = NULL;
        /* Split on ':' from the left: HOST, then CONTAINER if it starts with '/', then rwm. */
        const char *c1 = strchr(item, ':');
        size_t hn = c1 ? (size_t)(c1 - item) : strlen(item);
        snprintf(host, sizeof host, "%.*s", (int)hn, item);
        snprintf(dst, sizeof dst, "%s", host);
        if (c1 && c1[1] == '/') {
            const char *c2 = strchr(c1 + 1, ':');
            size_t dn = c2 ? (size_t)(c2 - c1 - 1) : strlen(c1 + 1);
            snprintf(dst, sizeof dst, "%.*s", (int)dn, c1 + 1);
            acc = c2 ? c2 + 1 : NULL;
        } else if (c1) {
            acc = c1 + 1;
        }
        struct cr_device *d = &svc->dev_rules[svc->ndev_rules];
        char spec_form[8200], path[4096];
        snprintf(spec_form, sizeof spec_form, "%s%s%s", dst, acc ? ":" : "", acc ? acc : "");
        struct stat st;
        if (cr_device_parse(spec_form, d, path, sizeof path) < 0 || host[0] != '/') {
            cr_errlist_add(errors, "%s:%d: device: '%s' is not HOST[:CONTAINER][:rwm] (absolute "
                           "paths, access of r, w, m)", svc->file, line, item);
            continue;
        }
        if (stat(host, &st) < 0) {
            cr_errlist_add(errors, "%s:%d: device: %s: %s", svc->file, line, host,
                           strerror(errno));
            continue;
        }
        if (!S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode)) {
            cr_errlist_add(errors, "%s:%d: device: %s: not a device node", svc->file, line, host);
            continue;
        }
        if (strncmp(dst, "/dev/", 5) || strstr(dst, "/..")) {
            cr_errlist_add(errors, "%s:%d: device: %s: the container's path must be below /dev",
                           svc->file, line, dst);
            continue;
        }
        d->type = S_ISBLK(st.st_mode) ? 'b' : 'c';
        d->major = (int)major(st.st_rdev);
        d->minor = (int)minor(st.st_rdev);
        struct cr_devnode node = {host, dst, d->type, (unsigned)d->major, (unsigned)d->minor,
                                  st.st_mode & 0777};
        if (cr_spec_add_device(&svc->spec, &node))
            errors->oom = true;
        svc->ndev_rules++;
    }
}

void cr_security_resolve(struct cr_service *svc, const struct cr_global *g,
                         struct cr_errlist *errors)
{
    struct cr_spec *sp = &svc->spec;
    resolve_caps(svc, errors);
    sp->no_new_privs = svc->no_new_privileges;
    char err[512];
    int r = cr_seccomp_check(svc->seccomp, sp->caps, err, sizeof err);
    if (r < 0)
        cr_service_error(errors, svc, CR_K_SECCOMP, "%s", err);
    sp->seccomp_fd = r > 0 ? CR_SECCOMP_CHILD_FD : -1;
    resolve_paths(svc, g, errors);
    resolve_devices(svc, errors);
}
