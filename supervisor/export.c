/* The way out (issue 9): a service handed to another engine in that engine's own format.
 *
 * `export oci NAME DIR[:TAG]` writes the service's image, with the service's process (argv,
 * environment, directory, user, stop signal) as the image's config, as an OCI image layout
 * (image/export.c): `skopeo copy oci:DIR:TAG containers-storage:...`, `podman run`, `umoci
 * unpack` take it. TAG defaults to the service's name. One layer is added to every image:
 * corral's (static) init at /.corral/init, about 130 KB, so that any Pod export kube writes
 * for the service can use it; the image's entrypoint stays the service's process.
 *
 * `export kube [NAME...]` prints Kubernetes YAML, one Pod per service (every service with an
 * image when no NAME is given): the command and environment as the spec has them, the
 * restart policy, resource limits, the user and capabilities as a securityContext,
 * readiness and liveness probes from `ready` and `health_cmd`, ports, and each named volume
 * as a persistentVolumeClaim of its name. The image is named localhost/NAME:latest, where
 * `export oci` + skopeo put it. Kubernetes has one restartPolicy per Pod (a Deployment:
 * Always): a container whose service's policy it cannot say runs its command under
 * /.corral/init with that policy (kube_pod). */
#include "export.h"

#include "bundle.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image/image.h"
#include "init_policy.h"
#include "net/addr.h"
#include "spawn/spawn.h"

/* A YAML double-quoted scalar (JSON's escapes are YAML's). */
static void yq(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c == '\t')
            fputs("\\t", f);
        else if (c < 0x20 || c == 0x7f)
            fprintf(f, "\\x%02x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* A DNS-1123 label of s: lower case, [a-z0-9-], 63 at most, no '-' at either end. */
static void dns_name(const char *s, char *out, size_t len)
{
    size_t n = 0;
    for (; *s && n + 1 < len && n < 63; s++) {
        char c = *s >= 'A' && *s <= 'Z' ? (char)(*s - 'A' + 'a') : *s;
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
            c = '-';
        if (c == '-' && (n == 0 || out[n - 1] == '-'))
            continue;
        out[n++] = c;
    }
    while (n && out[n - 1] == '-')
        n--;
    out[n] = 0;
    if (!n)
        snprintf(out, len, "service");
}

static void list(FILE *f, const char *indent, char *const *v)
{
    for (size_t i = 0; v && v[i]; i++) {
        fprintf(f, "%s- ", indent);
        yq(f, v[i]);
        fputc('\n', f);
    }
}

static void sh_probe(FILE *f, const char *ind, const char *what, const char *cmd,
                     int64_t interval_ms, int64_t timeout_ms, int64_t retries)
{
    fprintf(f, "%s  %s:\n%s    exec:\n%s      command: [\"/bin/sh\", \"-c\", ", ind, what, ind,
            ind);
    yq(f, cmd);
    fprintf(f, "]\n");
    if (interval_ms > 0)
        fprintf(f, "%s    periodSeconds: %lld\n", ind, (long long)((interval_ms + 999) / 1000));
    if (timeout_ms > 0)
        fprintf(f, "%s    timeoutSeconds: %lld\n", ind, (long long)((timeout_ms + 999) / 1000));
    if (retries > 0)
        fprintf(f, "%s    failureThreshold: %lld\n", ind, (long long)retries);
}

struct item_out {
    FILE *f;
    const char *indent;
};

static void item(void *ctx, const char *arg)
{
    struct item_out *o = ctx;
    fprintf(o->f, "%s- ", o->indent);
    yq(o->f, arg);
    fputc('\n', o->f);
}

/* One container of a Pod: the service's process (under corral's init, carrying the service's
 * restart policy, with init_policy), image, limits, security, probes. */
static void kube_container(FILE *f, const struct cr_service *s, const char *ind,
                           bool init_policy)
{
    const struct cr_spec *sp = &s->spec;
    char name[64];
    dns_name(s->name, name, sizeof name);
    fprintf(f, "%s- name: %s\n%s  image: localhost/%s:latest\n", ind, name, ind, name);
#define P(...) (fputs(ind, f), fprintf(f, __VA_ARGS__))
    char deeper[32];
    snprintf(deeper, sizeof deeper, "%s    ", ind);
    if (init_policy) {
        struct item_out o = {f, deeper};
        P("  command:\n");
        item(&o, SV_INIT_IN_IMAGE);
        sv_init_policy_args(sp, item, &o);
        item(&o, "--");
        list(f, deeper, sp->argv);
    } else if (sp->argv) {
        P("  command:\n");
        list(f, deeper, sp->argv);
    }
    if (sp->directory)
        P("  workingDir: %s\n", sp->directory);
    if (sp->env) {
        P("  env:\n");
        for (size_t i = 0; sp->env[i]; i++) {
            const char *eq = strchr(sp->env[i], '=');
            if (!eq)
                continue;
            P("    - name: %.*s\n", (int)(eq - sp->env[i]), sp->env[i]);
            P("      value: ");
            yq(f, eq + 1);
            fputc('\n', f);
        }
    }
    for (size_t i = 0; i < s->nport; i++) {
        if (!i)
            P("  ports:\n");
        P("    - containerPort: %u\n", s->port[i].container);
        P("      hostPort: %u\n", s->port[i].host);
        P("      protocol: %s\n", s->port[i].proto == CR_PROTO_UDP ? "UDP" : "TCP");
    }
    bool mem = s->memory_max > 0 && s->memory_max != INT64_MAX;
    bool cpu = s->cpu_max.quota_us > 0 && s->cpu_max.period_us > 0;
    if (mem || cpu) {
        P("  resources:\n");
        P("    limits:\n");
        if (mem)
            P("      memory: \"%lld\"\n", (long long)s->memory_max);
        if (cpu)
            P("      cpu: %lldm\n", (long long)(s->cpu_max.quota_us * 1000 / s->cpu_max.period_us));
    }
    P("  securityContext:\n");
    P("    runAsUser: %u\n", (unsigned)sp->uid);
    P("    runAsGroup: %u\n", (unsigned)sp->gid);
    if (s->read_only)
        P("    readOnlyRootFilesystem: true\n");
    if (s->no_new_privileges)
        P("    allowPrivilegeEscalation: false\n");
    if (s->cap_add.n || s->cap_drop.n) {
        snprintf(deeper, sizeof deeper, "%s        ", ind);
        P("    capabilities:\n");
        if (s->cap_add.n) {
            P("      add:\n");
            list(f, deeper, s->cap_add.v);
        }
        if (s->cap_drop.n) {
            P("      drop:\n");
            list(f, deeper, s->cap_drop.v);
        }
    }
    P("    seccompProfile:\n");
    P("      type: %s\n", s->seccomp && !strcmp(s->seccomp, "unconfined") ? "Unconfined"
                                                                          : "RuntimeDefault");
    if (s->ready && !strncmp(s->ready, "tcp:", 4)) {
        P("  readinessProbe:\n");
        P("    tcpSocket:\n");
        P("      port: %s\n", s->ready + 4);
    } else if (s->ready && !strncmp(s->ready, "exec:", 5)) {
        sh_probe(f, ind, "readinessProbe", s->ready + 5, 0, 0, 0);
    }
    if (s->health_cmd)
        sh_probe(f, ind, "livenessProbe", s->health_cmd, s->health_interval, s->health_timeout,
                 s->health_retries);
    for (size_t i = 0; i < s->volume.n; i++) {
        char vn[128], dn[64], at[4096];
        cr_volume_name(s->volume.v[i], vn, sizeof vn);
        dns_name(vn, dn, sizeof dn);
        const char *rest = s->volume.v[i] + strlen(vn) + 1;
        snprintf(at, sizeof at, "%.*s", (int)strcspn(rest, ":"), rest);
        if (!i)
            P("  volumeMounts:\n");
        P("    - name: %s\n", dn);
        P("      mountPath: ");
        yq(f, at);
        fputc('\n', f);
        if (strstr(rest, ":ro"))
            P("      readOnly: true\n");
    }
#undef P
}

/* The services that share s's network namespace (`network = service:S`): the containers of
 * its Pod, s first. Returns how many (at most max). */
static size_t pod_members(const struct cr_config *cfg, const struct cr_service *s,
                          const struct cr_service **out, size_t max)
{
    size_t n = 0;
    out[n++] = s;
    for (size_t i = 0; i < cfg->nservices && n < max; i++) {
        const struct cr_service *o = &cfg->services[i];
        if (o != s && o->net_mode == CR_NETMODE_SERVICE && o->join && !strcmp(o->join, s->name))
            out[n++] = o;
    }
    return n;
}

/* The restartPolicy that says what s's own policy says, or NULL where Kubernetes has none:
 * its OnFailure restarts on any exit but 0 (exitcodes must be just 0), and it never gives
 * up (max_restarts). startsecs, startretries and the delays are left to Kubernetes' own
 * start check and backoff where the policy itself matches. */
static const char *kube_policy(const struct cr_service *s)
{
    const struct cr_spec *sp = &s->spec;
    if (sp->autorestart == CR_RESTART_NEVER)
        return "Never";
    if (sp->max_restarts)
        return NULL;
    if (sp->autorestart == CR_RESTART_ALWAYS)
        return "Always";
    cr_codeset zero = {{0}};
    cr_codeset_add(&zero, 0);
    return memcmp(&zero, &sp->exitcodes, sizeof zero) ? NULL : "OnFailure";
}

/* A Pod (or a Deployment of one replica whose template it is) for s and the services that
 * join its network namespace. Its restartPolicy is its members' own when they all have the
 * same one Kubernetes can say (a Deployment: Always); else Never (a Deployment: Always, its
 * only one), and each member whose policy that is not runs under corral's init, which
 * restarts its process as the service says. */
static void kube_pod(FILE *f, const struct cr_config *cfg, const struct cr_service *s,
                     bool deployment)
{
    const struct cr_service *m[64];
    size_t nm = pod_members(cfg, s, m, 64);
    const struct cr_spec *sp = &s->spec;
    char name[64];
    dns_name(s->name, name, sizeof name);
    fprintf(f, "---\n# corral service %s", s->name);
    for (size_t i = 1; i < nm; i++)
        fprintf(f, "%s%s", i == 1 ? " with " : ", ", m[i]->name);
    for (size_t i = 0; i < nm; i++)
        if (m[i]->image) {
            char n2[64];
            dns_name(m[i]->name, n2, sizeof n2);
            fprintf(f, "\n# %s: image %s (export oci %s DIR, then skopeo copy oci:DIR:%s "
                       "containers-storage:localhost/%s:latest)", m[i]->name, m[i]->image,
                    m[i]->name, m[i]->name, n2);
        }
    const char *restart = kube_policy(m[0]);
    for (size_t i = 1; i < nm && restart; i++)
        if (!kube_policy(m[i]) || strcmp(kube_policy(m[i]), restart))
            restart = NULL;
    if (deployment)
        restart = "Always";
    else if (!restart)
        restart = "Never";
    bool wrap[64], any_wrap = false;
    for (size_t i = 0; i < nm; i++) {
        const char *own = kube_policy(m[i]);
        wrap[i] = !own || strcmp(own, restart);
        any_wrap = any_wrap || wrap[i];
    }
    for (size_t i = 0; i < nm; i++)
        if (wrap[i]) {
            const struct cr_spec *ms = &m[i]->spec;
            fprintf(f, "\n# %s: autorestart %s", m[i]->name, cr_restart_name(ms->autorestart));
            if (ms->autorestart == CR_RESTART_UNEXPECTED) {
                fputs(" (exitcodes", f);
                for (int c = 0, n = 0; c < 256; c++)
                    if (cr_codeset_has(&ms->exitcodes, c))
                        fprintf(f, "%c%d", n++ ? ',' : ' ', c);
                fputc(')', f);
            }
            if (ms->max_restarts && ms->autorestart != CR_RESTART_NEVER)
                fprintf(f, ", max_restarts %u", ms->max_restarts);
            fprintf(f, ": restartPolicy %s does not say it; its command runs under corral's "
                       "init (%s, in the image export oci writes), which restarts it as "
                       "corral would", restart, SV_INIT_IN_IMAGE);
        }
    if (any_wrap)
        fprintf(f, deployment ? "\n# when such a process ends for good (init does not restart "
                                "it, or gives up), init exits with its status and the "
                                "Deployment starts the container again (restartPolicy Always, "
                                "the only one a Deployment has)"
                              : "\n# when such a process ends for good (init does not restart "
                                "it, or gives up), init exits with its status and the "
                                "container stays exited (restartPolicy Never), as the service "
                                "would stay EXITED or FATAL");
    const char *ind = "";
    if (deployment) {
        fprintf(f, "\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: %s\n"
                   "  labels:\n    app.kubernetes.io/managed-by: corral\nspec:\n  replicas: 1\n"
                   "  selector:\n    matchLabels:\n      app: %s\n  template:\n    metadata:\n"
                   "      labels:\n        app: %s\n    spec:\n", name, name, name);
        ind = "      ";
    } else {
        fprintf(f, "\napiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\n  labels:\n"
                   "    app.kubernetes.io/managed-by: corral\nspec:\n", name);
        ind = "  ";
    }
    fprintf(f, "%srestartPolicy: %s\n", ind, restart);
    if (s->stopwaitsecs > 0)
        fprintf(f, "%sterminationGracePeriodSeconds: %lld\n", ind,
                (long long)((s->stopwaitsecs + 999) / 1000));
    if (sp->hostname)
        fprintf(f, "%shostname: %s\n", ind, sp->hostname);
    fprintf(f, "%scontainers:\n", ind);
    char cind[16];
    snprintf(cind, sizeof cind, "%s  ", ind);
    for (size_t i = 0; i < nm; i++)
        kube_container(f, m[i], cind, wrap[i]);
    /* the claims of every member, each once */
    bool any = false;
    for (size_t i = 0; i < nm; i++)
        for (size_t k = 0; k < m[i]->volume.n; k++) {
            char vn[128], dn[64];
            cr_volume_name(m[i]->volume.v[k], vn, sizeof vn);
            bool seen = false;
            for (size_t j = 0; j <= i && !seen; j++)
                for (size_t l = 0; l < (j < i ? m[j]->volume.n : k) && !seen; l++) {
                    char v2[128];
                    cr_volume_name(m[j]->volume.v[l], v2, sizeof v2);
                    seen = !strcmp(v2, vn);
                }
            if (seen)
                continue;
            dns_name(vn, dn, sizeof dn);
            if (!any)
                fprintf(f, "%svolumes:\n", ind);
            any = true;
            fprintf(f, "%s  - name: %s\n%s    persistentVolumeClaim:\n%s      claimName: %s\n",
                    ind, dn, ind, ind, dn);
        }
}

static int export_oci(const struct cr_config *cfg, const char *name, const char *target)
{
    const struct cr_service *s = cr_config_find(cfg, name);
    if (!s) {
        fprintf(stderr, "supervisor: export oci: no service '%s'\n", name);
        return 1;
    }
    if (!s->img) {
        fprintf(stderr, "supervisor: export oci: %s: has no image (image = oci:... or "
                        "docker-archive:...)\n", name);
        return 1;
    }
    char dir[4096], tag[256], user[64], sig[48], err[4400];
    const char *colon = strrchr(target, ':');
    snprintf(dir, sizeof dir, "%.*s", (int)(colon ? (size_t)(colon - target) : strlen(target)),
             target);
    snprintf(tag, sizeof tag, "%s", colon ? colon + 1 : name);
    if (!dir[0] || !tag[0]) {
        fprintf(stderr, "supervisor: export oci: '%s' is not DIR[:TAG]\n", target);
        return 2;
    }
    snprintf(user, sizeof user, "%u:%u", (unsigned)s->spec.uid, (unsigned)s->spec.gid);
    char sname[32];
    snprintf(sig, sizeof sig, "SIG%s",
             cr_signal_name(s->spec.stopsignal ? s->spec.stopsignal : 15, sname, sizeof sname));
    char init[4096];
    if (cr_init_find(init, sizeof init) < 0) {
        fprintf(stderr, "supervisor: export oci %s: cannot find init (next to the supervisor, "
                        "or set CORRAL_INIT)\n", name);
        return 1;
    }
    struct cr_image_export x = {.argv = s->spec.argv, .env = s->spec.env,
                                .workdir = s->spec.directory, .user = user, .stopsignal = sig,
                                .source = s->image, .init = init, .init_at = SV_INIT_IN_IMAGE};
    if (cr_image_export_oci(s->img, &x, dir, tag, err, sizeof err) < 0) {
        fprintf(stderr, "supervisor: export oci %s: %s\n", name, err);
        return 1;
    }
    printf("%s: oci:%s:%s (%zu layer%s, and corral's init at %s)\n", name, dir, tag,
           s->img->nlayers, s->img->nlayers == 1 ? "" : "s", SV_INIT_IN_IMAGE);
    return 0;
}

int sv_export(const struct cr_config *cfg, int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[0], "oci"))
        return export_oci(cfg, argv[1], argv[2]);
    if (argc == 3 && !strcmp(argv[0], "bundle"))
        return sv_export_bundle(cfg, argv[1], argv[2]);
    if (argc < 1 || strcmp(argv[0], "kube")) {
        fprintf(stderr, "supervisor: export: expected oci NAME DIR[:TAG], bundle NAME DIR or "
                        "kube [--deployment] [NAME...]\n");
        return 2;
    }
    bool deployment = argc > 1 && !strcmp(argv[1], "--deployment");
    int first = deployment ? 2 : 1;
    for (int i = first; i < argc; i++)
        if (!cr_config_find(cfg, argv[i])) {
            fprintf(stderr, "supervisor: export kube: no service '%s'\n", argv[i]);
            return 1;
        }
    /* A service that joins another's network namespace is a container of that one's Pod:
     * naming it names its Pod. */
    size_t n = 0;
    for (size_t i = 0; i < cfg->nservices; i++) {
        const struct cr_service *s = &cfg->services[i];
        if (s->net_mode == CR_NETMODE_SERVICE && s->join && cr_config_find(cfg, s->join))
            continue;
        const struct cr_service *m[64];
        size_t nm = pod_members(cfg, s, m, 64);
        bool named = false;
        for (size_t k = 0; k < nm && !named; k++) {
            named = argc == first && m[k]->image;
            for (int a = first; a < argc && !named; a++)
                named = !strcmp(argv[a], m[k]->name);
        }
        if (!named)
            continue;
        kube_pod(stdout, cfg, s, deployment);
        n++;
    }
    if (!n) {
        fprintf(stderr, "supervisor: export kube: no service with an image (name them)\n");
        return 1;
    }
    return 0;
}
