/* `supervisor -c FILE export bundle NAME DIR`: an OCI runtime bundle (bundle.h). */
#include "bundle.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup/devices.h"
#include "image/image.h"
#include "init_policy.h"
#include "policy/caps.h"
#include "policy/syscall_filter.h"
#include "spawn/spawn.h"

/* Where the bundle's container sees corral's init: inside the /dev tmpfs the runtime makes,
 * so nothing is created in the service's root. */
#define INIT_AT "/dev/.corral-init"

typedef struct json_object jo;

static jo *str(const char *s)
{
    return json_object_new_string(s ? s : "");
}

static jo *strv(char *const *v, size_t n)
{
    jo *a = json_object_new_array();
    for (size_t i = 0; v && i < n && v[i]; i++)
        json_object_array_add(a, str(v[i]));
    return a;
}

static void add(jo *o, const char *key, jo *v)
{
    json_object_object_add(o, key, v);
}

static void add_arg(void *args, const char *arg)
{
    json_object_array_add(args, str(arg));
}

static jo *mount(const char *dst, const char *type, const char *src, const char *opts)
{
    jo *m = json_object_new_object();
    add(m, "destination", str(dst));
    add(m, "type", str(type));
    add(m, "source", str(src));
    jo *o = json_object_new_array();
    char buf[256];
    snprintf(buf, sizeof buf, "%s", opts);
    for (char *save, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
        json_object_array_add(o, str(t));
    add(m, "options", o);
    return m;
}

static jo *caps(uint64_t set)
{
    jo *a = json_object_new_array();
    char name[64];
    for (int i = 0; i < 64; i++)
        if ((set >> i & 1) && cr_cap_name(i, name, sizeof name) == 0)
            json_object_array_add(a, str(name));
    return a;
}

/* "C H N" lines (the uid_map text) as OCI idMappings. */
static jo *id_map(const char *text)
{
    jo *a = json_object_new_array();
    unsigned long c, h, n;
    int used;
    while (text && sscanf(text, "%lu %lu %lu%n", &c, &h, &n, &used) == 3) {
        jo *m = json_object_new_object();
        add(m, "containerID", json_object_new_int64((int64_t)c));
        add(m, "hostID", json_object_new_int64((int64_t)h));
        add(m, "size", json_object_new_int64((int64_t)n));
        json_object_array_add(a, m);
        text += used;
    }
    return a;
}

static jo *device(bool allow, char type, int major, int minor, int access)
{
    jo *d = json_object_new_object();
    char t[2] = {type, 0}, acc[4];
    size_t n = 0;
    if (access & CR_DEV_READ)
        acc[n++] = 'r';
    if (access & CR_DEV_WRITE)
        acc[n++] = 'w';
    if (access & CR_DEV_MKNOD)
        acc[n++] = 'm';
    acc[n] = 0;
    add(d, "allow", json_object_new_boolean(allow));
    add(d, "type", str(t));
    if (major >= 0)
        add(d, "major", json_object_new_int64(major));
    if (minor >= 0)
        add(d, "minor", json_object_new_int64(minor));
    add(d, "access", str(acc));
    return d;
}

static jo *resources(const struct cr_service *s)
{
    jo *r = json_object_new_object(), *m = json_object_new_object();
    if (s->memory_max > 0 && s->memory_max != INT64_MAX)
        add(m, "limit", json_object_new_int64(s->memory_max));
    if (s->memory_high > 0 && s->memory_high != INT64_MAX)
        add(m, "reservation", json_object_new_int64(s->memory_high));
    if (s->memory_swap_max >= 0 && s->memory_swap_max != INT64_MAX && s->memory_max > 0 &&
        s->memory_max != INT64_MAX)   /* OCI's swap is memory + swap, as v1's memsw */
        add(m, "swap", json_object_new_int64(s->memory_max + s->memory_swap_max));
    add(r, "memory", m);
    jo *c = json_object_new_object();
    if (s->cpu_max.quota_us > 0) {
        add(c, "quota", json_object_new_int64(s->cpu_max.quota_us));
        add(c, "period", json_object_new_int64(s->cpu_max.period_us));
    }
    if (s->cpu_weight > 0)   /* v2's weight 1-10000 as v1's shares, as crun converts back */
        add(c, "shares", json_object_new_int64(2 + (s->cpu_weight - 1) * 262142 / 9999));
    add(r, "cpu", c);
    if (s->pids_max > 0 && s->pids_max != INT64_MAX) {
        jo *p = json_object_new_object();
        add(p, "limit", json_object_new_int64(s->pids_max));
        add(r, "pids", p);
    }
    if (s->confine_devices) {
        jo *d = json_object_new_array();
        json_object_array_add(d, device(false, 'a', -1, -1, CR_DEV_RWM));
        const struct cr_device *def;
        size_t n = cr_cg_devices_defaults(&def);
        for (size_t i = 0; i < n; i++)
            json_object_array_add(d, device(true, def[i].type, def[i].major, def[i].minor,
                                            def[i].access));
        for (size_t i = 0; i < s->ndev_rules; i++)
            json_object_array_add(d, device(true, s->dev_rules[i].type, s->dev_rules[i].major,
                                            s->dev_rules[i].minor, s->dev_rules[i].access));
        add(r, "devices", d);
    }
    return r;
}

/* The service's seccomp profile as OCI JSON (the default one as `--print-seccomp` prints
 * it, a file as it is), or NULL for unconfined. */
static int seccomp(const struct cr_service *s, jo **out, char *err, size_t errlen)
{
    *out = NULL;
    const char *p = s->seccomp ? s->seccomp : "default";
    if (!strcmp(p, "unconfined"))
        return 0;
    if (!strcmp(p, "default")) {
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f)
            return -ENOMEM;
        cr_seccomp_print_default(f);
        fclose(f);
        *out = json_tokener_parse(text);
        free(text);
    } else {
        *out = json_object_from_file(p);
    }
    if (!*out) {
        snprintf(err, errlen, "seccomp profile %s: not JSON json-c can read", p);
        return -EINVAL;
    }
    return 0;
}

static jo *config(const struct cr_service *s, const char *root, const char *init, jo *sc)
{
    const struct cr_spec *sp = &s->spec;
    jo *c = json_object_new_object();
    add(c, "ociVersion", str("1.0.2"));

    /* corral's init as PID 1 (tini's way: `init -- CMD`), with the service's restart policy */
    jo *proc = json_object_new_object(), *args = json_object_new_array();
    json_object_array_add(args, str(INIT_AT));
    sv_init_policy_args(sp, add_arg, args);
    json_object_array_add(args, str("--"));
    for (size_t i = 0; i < sp->argc; i++)
        json_object_array_add(args, str(i == 0 && sp->exec ? sp->exec : sp->argv[i]));
    add(proc, "terminal", json_object_new_boolean(false));
    jo *user = json_object_new_object();
    add(user, "uid", json_object_new_int64(sp->uid));
    add(user, "gid", json_object_new_int64(sp->gid));
    if (sp->ngroups) {
        jo *g = json_object_new_array();
        for (size_t i = 0; i < sp->ngroups; i++)
            json_object_array_add(g, json_object_new_int64(sp->groups[i]));
        add(user, "additionalGids", g);
    }
    add(proc, "user", user);
    add(proc, "args", args);
    add(proc, "env", strv(sp->env, sp->nenv));
    add(proc, "cwd", str(sp->directory ? sp->directory : "/"));
    /* as init would leave them here: a capability this process lacks cannot be given (its
     * own bounding set may be short of the kernel's, inside a container or a sandbox) */
    uint64_t own = 0;
    for (int i = 0; i < 64; i++)
        if ((cr_caps_all() >> i & 1) && prctl(PR_CAPBSET_READ, i, 0, 0, 0) == 1)
            own |= 1ULL << i;
    uint64_t bnd = (sp->caps == CR_CAPS_ALL ? cr_caps_all() : sp->caps) & own;
    uint64_t eff = sp->uid == 0 ? bnd : sp->ambient & bnd;
    jo *cp = json_object_new_object();
    add(cp, "bounding", caps(bnd));
    add(cp, "effective", caps(eff));
    add(cp, "permitted", caps(eff));
    add(cp, "inheritable", caps(sp->uid == 0 ? 0 : eff));
    add(cp, "ambient", caps(sp->uid == 0 ? 0 : eff));
    add(proc, "capabilities", cp);
    add(proc, "noNewPrivileges", json_object_new_boolean(sp->no_new_privs));
    add(c, "process", proc);

    jo *r = json_object_new_object();
    add(r, "path", str(root));
    add(r, "readonly", json_object_new_boolean(sp->read_only || !strcmp(root, "/")));
    add(c, "root", r);
    if (sp->namespaces & CR_NS_UTS)
        add(c, "hostname", str(sp->hostname ? sp->hostname : s->name));

    jo *m = json_object_new_array();
    json_object_array_add(m, mount("/proc", "proc", "proc", "nosuid,noexec,nodev"));
    json_object_array_add(m, mount("/dev", "tmpfs", "tmpfs", "nosuid,strictatime,mode=755,size=65536k"));
    json_object_array_add(m, mount("/dev/pts", "devpts", "devpts",
                                   "nosuid,noexec,newinstance,ptmxmode=0666,mode=0620"));
    json_object_array_add(m, mount("/dev/shm", "tmpfs", "shm", "nosuid,noexec,nodev,mode=1777"));
    json_object_array_add(m, mount("/dev/mqueue", "mqueue", "mqueue", "nosuid,noexec,nodev"));
    json_object_array_add(m, mount("/sys", "sysfs", "sysfs", "nosuid,noexec,nodev,ro"));
    if (sp->namespaces & CR_NS_CGROUP)
        json_object_array_add(m, mount("/sys/fs/cgroup", "cgroup", "cgroup",
                                       "nosuid,noexec,nodev,relatime,ro"));
    json_object_array_add(m, mount(INIT_AT, "bind", init, "bind,ro"));
    for (size_t i = 0; i < sp->nbinds; i++)
        json_object_array_add(m, mount(sp->binds[i].dst, "bind", sp->binds[i].src,
                                       sp->binds[i].ro ? "rbind,ro" : "rbind"));
    for (size_t i = 0; i < sp->ntmpfs; i++) {
        char o[64] = "nosuid,nodev";
        if (sp->tmpfs[i].size > 0)
            snprintf(o, sizeof o, "nosuid,nodev,size=%lld", (long long)sp->tmpfs[i].size);
        json_object_array_add(m, mount(sp->tmpfs[i].dst, "tmpfs", "tmpfs", o));
    }
    add(c, "mounts", m);

    jo *lx = json_object_new_object(), *ns = json_object_new_array();
    static const struct { unsigned bit; const char *type; } kinds[] = {
        {CR_NS_PID, "pid"}, {CR_NS_MOUNT, "mount"}, {CR_NS_UTS, "uts"}, {CR_NS_IPC, "ipc"},
        {CR_NS_NET, "network"}, {CR_NS_CGROUP, "cgroup"}, {CR_NS_USER, "user"},
    };
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
        if (sp->namespaces & kinds[i].bit) {
            jo *n = json_object_new_object();
            add(n, "type", str(kinds[i].type));
            json_object_array_add(ns, n);
        }
    add(lx, "namespaces", ns);
    if (sp->namespaces & CR_NS_USER) {
        add(lx, "uidMappings", id_map(s->uid_map_text));
        add(lx, "gidMappings", id_map(s->gid_map_text));
    }
    add(lx, "resources", resources(s));
    add(lx, "maskedPaths", strv(sp->masked, sp->nmasked));
    add(lx, "readonlyPaths", strv(sp->readonly, sp->nreadonly));
    if (sc)
        add(lx, "seccomp", sc);
    add(c, "linux", lx);
    return c;
}

static int copy_init(const char *dir, char *err, size_t errlen)
{
    char from[4096], to[4200];
    if (cr_init_find(from, sizeof from) < 0) {
        snprintf(err, errlen, "cannot find init (next to the supervisor, or set CORRAL_INIT)");
        return -ENOENT;
    }
    snprintf(to, sizeof to, "%s/init", dir);
    int in = open(from, O_RDONLY | O_CLOEXEC);
    int out = in < 0 ? -1 : open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
    struct stat st;
    int r = in >= 0 && out >= 0 && fstat(in, &st) == 0 &&
                    sendfile(out, in, NULL, (size_t)st.st_size) == st.st_size
                ? 0
                : -errno;
    if (in >= 0)
        close(in);
    if (out >= 0 && close(out) < 0 && r == 0)
        r = -errno;
    if (r < 0)
        snprintf(err, errlen, "copying init to %s: %s", to, strerror(-r));
    return r;
}

/* An image service's root: its layers (unpacked first where they are not yet) merged into
 * DIR/rootfs, a plain directory a runtime can pivot into. */
static int image_root(const struct cr_service *s, const char *dir, char *root, size_t len)
{
    char err[4600];
    if (!s->img) {
        fprintf(stderr, "supervisor: export bundle: %s: its image could not be read\n", s->name);
        return -1;
    }
    for (size_t i = 0; i < s->img->nlayers; i++)
        if (!cr_image_layer_present(s->image_store, &s->img->layers[i]) &&
            cr_image_unpack(s->image_store, s->img, i, err, sizeof err) < 0) {
            fprintf(stderr, "supervisor: export bundle: %s: %s\n", s->name, err);
            return -1;
        }
    snprintf(root, len, "%s/rootfs", dir);
    struct stat st;
    if (lstat(root, &st) == 0) {
        fprintf(stderr, "supervisor: export bundle: %s exists: remove it first (a bundle's root "
                        "is made whole, never merged into)\n", root);
        return -1;
    }
    if (cr_image_flatten(s->spec.layers, s->spec.nlayers, root, err, sizeof err) < 0) {
        fprintf(stderr, "supervisor: export bundle: %s: %s\n", s->name, err);
        return -1;
    }
    char real[PATH_MAX];
    if (!realpath(root, real))
        return -1;
    snprintf(root, len, "%s", real);
    return 0;
}

int sv_export_bundle(const struct cr_config *cfg, const char *name, const char *dir)
{
    const struct cr_service *s = cr_config_find(cfg, name);
    char err[4600], root[PATH_MAX], path[PATH_MAX];
    if (!s) {
        fprintf(stderr, "supervisor: export bundle: no service '%s'\n", name);
        return 1;
    }
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        fprintf(stderr, "supervisor: export bundle: %s: %s\n", dir, strerror(errno));
        return 1;
    }
    if (s->image && image_root(s, dir, root, sizeof root) < 0)
        return 1;
    if (!s->image && !realpath(s->spec.rootfs ? s->spec.rootfs : "/", root)) {
        fprintf(stderr, "supervisor: export bundle: %s: rootfs %s: %s\n", name,
                s->spec.rootfs, strerror(errno));
        return 1;
    }
    jo *sc;
    if (seccomp(s, &sc, err, sizeof err) < 0 || copy_init(dir, err, sizeof err) < 0) {
        fprintf(stderr, "supervisor: export bundle %s: %s\n", name, err);
        return 1;
    }
    char init[sizeof path + 8];
    if (!realpath(dir, path)) {
        fprintf(stderr, "supervisor: export bundle: %s: %s\n", dir, strerror(errno));
        json_object_put(sc);
        return 1;
    }
    snprintf(init, sizeof init, "%s/init", path);
    jo *c = config(s, root, init, sc);
    snprintf(path, sizeof path, "%s/config.json", dir);
    int r = json_object_to_file_ext(path, c, JSON_C_TO_STRING_PRETTY |
                                                 JSON_C_TO_STRING_NOSLASHESCAPE);
    json_object_put(c);
    if (r < 0) {
        fprintf(stderr, "supervisor: export bundle: %s: %s\n", path, json_util_get_last_err());
        return 1;
    }
    printf("%s: %s (root %s; run it with: crun run --bundle %s ID)\n", name, path, root, dir);
    return 0;
}
