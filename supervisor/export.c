/* The way out (issue 9): a service handed to another engine in that engine's own format.
 *
 * `export oci NAME DIR[:TAG]` writes the service's image, with the service's process (argv,
 * environment, directory, user, stop signal) as the image's config, as an OCI image layout
 * (image/export.c): `skopeo copy oci:DIR:TAG containers-storage:...`, `podman run`, `umoci
 * unpack` take it. TAG defaults to the service's name.
 *
 * `export kube [NAME...]` prints Kubernetes YAML, one Pod per service (every service with an
 * image when no NAME is given): the command and environment as the spec has them, the
 * restart policy, resource limits, the user and capabilities as a securityContext,
 * readiness and liveness probes from `ready` and `health_cmd`, ports, and each named volume
 * as a persistentVolumeClaim of its name. The image is named localhost/NAME:latest, where
 * `export oci` + skopeo put it. */
#include "export.h"

#include "bundle.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image/image.h"
#include "net/addr.h"

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

static void sh_probe(FILE *f, const char *what, const char *cmd, int64_t interval_ms,
                     int64_t timeout_ms, int64_t retries)
{
    fprintf(f, "      %s:\n        exec:\n          command: [\"/bin/sh\", \"-c\", ", what);
    yq(f, cmd);
    fprintf(f, "]\n");
    if (interval_ms > 0)
        fprintf(f, "        periodSeconds: %lld\n", (long long)((interval_ms + 999) / 1000));
    if (timeout_ms > 0)
        fprintf(f, "        timeoutSeconds: %lld\n", (long long)((timeout_ms + 999) / 1000));
    if (retries > 0)
        fprintf(f, "        failureThreshold: %lld\n", (long long)retries);
}

static void kube_pod(FILE *f, const struct cr_service *s)
{
    const struct cr_spec *sp = &s->spec;
    char name[64];
    dns_name(s->name, name, sizeof name);
    fprintf(f, "---\n# corral service %s", s->name);
    if (s->image)
        fprintf(f, ", image %s (export oci %s DIR, then skopeo copy oci:DIR:%s "
                   "containers-storage:localhost/%s:latest)", s->image, s->name, s->name, name);
    fprintf(f, "\napiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\n  labels:\n"
               "    app.kubernetes.io/managed-by: corral\nspec:\n", name);
    fprintf(f, "  restartPolicy: %s\n", s->autorestart == CR_RESTART_ALWAYS ? "Always"
                                        : s->autorestart == CR_RESTART_UNEXPECTED ? "OnFailure"
                                                                                  : "Never");
    if (s->stopwaitsecs > 0)
        fprintf(f, "  terminationGracePeriodSeconds: %lld\n",
                (long long)((s->stopwaitsecs + 999) / 1000));
    if (sp->hostname)
        fprintf(f, "  hostname: %s\n", sp->hostname);
    fprintf(f, "  containers:\n    - name: %s\n      image: localhost/%s:latest\n", name, name);
    if (sp->argv) {
        fprintf(f, "      command:\n");
        list(f, "        ", sp->argv);
    }
    if (sp->directory)
        fprintf(f, "      workingDir: %s\n", sp->directory);
    if (sp->env) {
        fprintf(f, "      env:\n");
        for (size_t i = 0; sp->env[i]; i++) {
            const char *eq = strchr(sp->env[i], '=');
            if (!eq)
                continue;
            fprintf(f, "        - name: %.*s\n          value: ", (int)(eq - sp->env[i]),
                    sp->env[i]);
            yq(f, eq + 1);
            fputc('\n', f);
        }
    }
    for (size_t i = 0; i < s->nport; i++) {
        if (!i)
            fprintf(f, "      ports:\n");
        fprintf(f, "        - containerPort: %u\n          hostPort: %u\n          protocol: %s\n",
                s->port[i].container, s->port[i].host, s->port[i].proto == CR_PROTO_UDP ? "UDP"
                                                                                     : "TCP");
    }
    bool mem = s->memory_max > 0 && s->memory_max != INT64_MAX;
    bool cpu = s->cpu_max.quota_us > 0 && s->cpu_max.period_us > 0;
    if (mem || cpu) {
        fprintf(f, "      resources:\n        limits:\n");
        if (mem)
            fprintf(f, "          memory: \"%lld\"\n", (long long)s->memory_max);
        if (cpu)
            fprintf(f, "          cpu: %lldm\n",
                    (long long)(s->cpu_max.quota_us * 1000 / s->cpu_max.period_us));
    }
    fprintf(f, "      securityContext:\n        runAsUser: %u\n        runAsGroup: %u\n",
            (unsigned)sp->uid, (unsigned)sp->gid);
    if (s->read_only)
        fprintf(f, "        readOnlyRootFilesystem: true\n");
    if (s->no_new_privileges)
        fprintf(f, "        allowPrivilegeEscalation: false\n");
    if (s->cap_add.n || s->cap_drop.n) {
        fprintf(f, "        capabilities:\n");
        if (s->cap_add.n) {
            fprintf(f, "          add:\n");
            list(f, "            ", s->cap_add.v);
        }
        if (s->cap_drop.n) {
            fprintf(f, "          drop:\n");
            list(f, "            ", s->cap_drop.v);
        }
    }
    if (s->seccomp && !strcmp(s->seccomp, "unconfined"))
        fprintf(f, "        seccompProfile:\n          type: Unconfined\n");
    else
        fprintf(f, "        seccompProfile:\n          type: RuntimeDefault\n");
    if (s->ready && !strncmp(s->ready, "tcp:", 4))
        fprintf(f, "      readinessProbe:\n        tcpSocket:\n          port: %s\n",
                s->ready + 4);
    else if (s->ready && !strncmp(s->ready, "exec:", 5))
        sh_probe(f, "readinessProbe", s->ready + 5, 0, 0, 0);
    if (s->health_cmd)
        sh_probe(f, "livenessProbe", s->health_cmd, s->health_interval, s->health_timeout,
                 s->health_retries);
    if (s->volume.n) {
        fprintf(f, "      volumeMounts:\n");
        for (size_t i = 0; i < s->volume.n; i++) {
            char vn[128], dn[64], at[4096];
            cr_volume_name(s->volume.v[i], vn, sizeof vn);
            dns_name(vn, dn, sizeof dn);
            const char *rest = s->volume.v[i] + strlen(vn) + 1;
            snprintf(at, sizeof at, "%.*s", (int)strcspn(rest, ":"), rest);
            fprintf(f, "        - name: %s\n          mountPath: ", dn);
            yq(f, at);
            fprintf(f, "\n%s", strstr(rest, ":ro") ? "          readOnly: true\n" : "");
        }
        fprintf(f, "  volumes:\n");
        for (size_t i = 0; i < s->volume.n; i++) {
            char vn[128], dn[64];
            cr_volume_name(s->volume.v[i], vn, sizeof vn);
            dns_name(vn, dn, sizeof dn);
            fprintf(f, "    - name: %s\n      persistentVolumeClaim:\n        claimName: %s\n",
                    dn, dn);
        }
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
    struct cr_image_export x = {.argv = s->spec.argv, .env = s->spec.env,
                                .workdir = s->spec.directory, .user = user, .stopsignal = sig,
                                .source = s->image};
    if (cr_image_export_oci(s->img, &x, dir, tag, err, sizeof err) < 0) {
        fprintf(stderr, "supervisor: export oci %s: %s\n", name, err);
        return 1;
    }
    printf("%s: oci:%s:%s (%zu layer%s)\n", name, dir, tag, s->img->nlayers,
           s->img->nlayers == 1 ? "" : "s");
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
                        "kube [NAME...]\n");
        return 2;
    }
    for (int i = 1; i < argc; i++)
        if (!cr_config_find(cfg, argv[i])) {
            fprintf(stderr, "supervisor: export kube: no service '%s'\n", argv[i]);
            return 1;
        }
    size_t n = 0;
    for (size_t i = 0; i < cfg->nservices; i++) {
        const struct cr_service *s = &cfg->services[i];
        bool named = argc == 1 && s->image;
        for (int k = 1; k < argc && !named; k++)
            named = !strcmp(argv[k], s->name);
        if (!named)
            continue;
        kube_pod(stdout, s);
        n++;
    }
    if (!n) {
        fprintf(stderr, "supervisor: export kube: no service with an image (name them)\n");
        return 1;
    }
    return 0;
}
