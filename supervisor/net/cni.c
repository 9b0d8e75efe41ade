/* CNI plugins, executed as the CNI spec says; see cni.h. */
#include "net/cni.h"
#include "net/netlink.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"

#define OUT_MAX (1 << 20)        /* a plugin's result: far more than any real one */

/* The conflist: {"cniVersion", "name", "plugins": [...]}. */
static struct json_object *load_list(const struct cr_cni *c, char *err, size_t errlen)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s.conflist", c->conf_dir, c->name);
    struct json_object *l = json_object_from_file(path);
    struct json_object *p;
    if (!l) {
        snprintf(err, errlen, "cni:%s: cannot read %s: %s", c->name, path,
                 json_util_get_last_err() ? json_util_get_last_err() : "not JSON");
        return NULL;
    }
    if (!json_object_object_get_ex(l, "plugins", &p) || !json_object_is_type(p, json_type_array) ||
        !json_object_array_length(p)) {
        snprintf(err, errlen, "cni:%s: %s has no \"plugins\" list", c->name, path);
        json_object_put(l);
        return NULL;
    }
    return l;
}

static const char *str_of(struct json_object *o, const char *key)
{
    struct json_object *v;
    return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v)
               : NULL;
}

/* [{"hostPort", "containerPort", "protocol", "hostIP"}...]: the CNI convention's portMappings. */
static struct json_object *port_mappings(const struct cr_port *p, size_t n)
{
    struct json_object *a = json_object_new_array();
    for (size_t i = 0; a && i < n; i++) {
        struct json_object *m = json_object_new_object();
        json_object_object_add(m, "hostPort", json_object_new_int(p[i].host));
        json_object_object_add(m, "containerPort", json_object_new_int(p[i].container));
        json_object_object_add(m, "protocol",
                               json_object_new_string(p[i].proto == CR_PROTO_UDP ? "udp" : "tcp"));
        if (p[i].ip) {
            char ip[16];
            cr_ip4_format(p[i].ip, ip, sizeof ip);
            json_object_object_add(m, "hostIP", json_object_new_string(ip));
        }
        json_object_array_add(a, m);
    }
    return a;
}

/* Whether the plugin's "capabilities" ask for key. */
static bool wants(struct json_object *plugin, const char *key)
{
    struct json_object *caps, *v;
    return json_object_object_get_ex(plugin, "capabilities", &caps) &&
           json_object_object_get_ex(caps, key, &v) && json_object_get_boolean(v);
}

/* One plugin's network config: the plugin's object with the list's name and cniVersion,
 * runtimeConfig.portMappings when it asks for them, and prevResult when there is one.
 * Returns malloc'd text. */
static char *plugin_conf(const struct cr_cni *c, struct json_object *list,
                         struct json_object *plugin, const char *prev)
{
    struct json_object *o = json_tokener_parse(json_object_to_json_string(plugin));
    if (!o)
        return NULL;
    if (c->nports && wants(plugin, "portMappings")) {
        struct json_object *rc = json_object_new_object();
        json_object_object_add(rc, "portMappings", port_mappings(c->ports, c->nports));
        json_object_object_add(o, "runtimeConfig", rc);
    }
    const char *name = str_of(list, "name"), *ver = str_of(list, "cniVersion");
    json_object_object_add(o, "name", json_object_new_string(name ? name : ""));
    json_object_object_add(o, "cniVersion", json_object_new_string(ver ? ver : "0.4.0"));
    struct json_object *pr = prev ? json_tokener_parse(prev) : NULL;
    if (pr)
        json_object_object_add(o, "prevResult", pr);
    char *text = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return text;
}

static int write_all(int fd, const char *s, size_t n)
{
    while (n) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Executes plugin `type` for cmd with conf on its stdin; its stdout into *out (malloc'd).
 * A failure: its error's msg (and details) in err. */
static int run_plugin(const struct cr_cni *c, const char *cmd, const char *type, const char *conf,
                      char **out, char *err, size_t errlen)
{
    char path[PATH_MAX], e_cmd[32], e_cid[300], e_ns[PATH_MAX + 16], e_if[64],
        e_path[PATH_MAX + 16];
    *out = NULL;
    if (strchr(type, '/')) {
        snprintf(err, errlen, "cni:%s: plugin type '%s' is not a name", c->name, type);
        return -EINVAL;
    }
    snprintf(path, sizeof path, "%s/%s", c->plugin_dir, type);
    snprintf(e_cmd, sizeof e_cmd, "CNI_COMMAND=%s", cmd);
    snprintf(e_cid, sizeof e_cid, "CNI_CONTAINERID=%s", c->container_id);
    snprintf(e_ns, sizeof e_ns, "CNI_NETNS=%s", c->netns ? c->netns : "");
    snprintf(e_if, sizeof e_if, "CNI_IFNAME=%s", c->ifname);
    snprintf(e_path, sizeof e_path, "CNI_PATH=%s", c->plugin_dir);
    char *envp[] = {e_cmd, e_cid, e_ns, e_if, e_path, "CNI_ARGS=",
                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", NULL};
    char *argv[] = {(char *)type, NULL};
    int in[2], op[2];
    if (pipe2(in, O_CLOEXEC) < 0)
        return -errno;
    if (pipe2(op, O_CLOEXEC) < 0) {
        int e = errno;
        close(in[0]);
        close(in[1]);
        return -e;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, op[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);   /* the services' fds: io/handed.h */
    pid_t pid;
    int r = posix_spawn(&pid, path, &fa, NULL, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(op[1]);
    if (r != 0) {
        snprintf(err, errlen, "cni:%s: %s: %s", c->name, path, strerror(r));
        close(in[1]);
        close(op[0]);
        return -r;
    }
    write_all(in[1], conf, strlen(conf));   /* a plugin that stops reading fails below */
    close(in[1]);
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    ssize_t n = 0;
    while (buf && len < OUT_MAX) {
        if (len + 1 >= cap) {
            char *b = realloc(buf, cap *= 2);
            if (!b)
                break;
            buf = b;
        }
        n = read(op[0], buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(op[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (!buf)
        return -ENOMEM;
    buf[len] = '\0';
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        *out = buf;
        return 0;
    }
    /* The spec's error: {"code", "msg", "details"} on stdout. */
    struct json_object *e = json_tokener_parse(buf);
    const char *msg = e ? str_of(e, "msg") : NULL, *det = e ? str_of(e, "details") : NULL;
    snprintf(err, errlen, "cni:%s: %s %s: %s%s%s%s", c->name, type, cmd,
             msg ? msg : (WIFEXITED(st) ? "failed" : "killed"), det && *det ? " (" : "",
             det && *det ? det : "", det && *det ? ")" : "");
    if (e)
        json_object_put(e);
    free(buf);
    return -EIO;
}

/* DEL for plugins [0, upto) in reverse order. */
static int del_upto(const struct cr_cni *c, struct json_object *list, size_t upto,
                    const char *result, char *err, size_t errlen)
{
    struct json_object *plugins;
    json_object_object_get_ex(list, "plugins", &plugins);
    int first = 0;
    for (size_t i = upto; i-- > 0;) {
        struct json_object *p = json_object_array_get_idx(plugins, i);
        const char *type = str_of(p, "type");
        char *conf = type ? plugin_conf(c, list, p, result) : NULL, *out = NULL, e[512];
        int r = conf ? run_plugin(c, "DEL", type, conf, &out, e, sizeof e) : -EINVAL;
        if (r < 0 && !first) {
            first = r;
            snprintf(err, errlen, "%s", conf ? e : "a plugin without a type");
        }
        free(conf);
        free(out);
    }
    return first;
}

/* "A/P A/P" of a result's ips. */
static void result_addrs(const char *result, char *addrs, size_t alen)
{
    size_t used = 0;
    addrs[0] = '\0';
    struct json_object *r = json_tokener_parse(result), *ips;
    if (r && json_object_object_get_ex(r, "ips", &ips) && json_object_is_type(ips, json_type_array))
        for (size_t i = 0; i < json_object_array_length(ips) && used < alen; i++) {
            const char *a = str_of(json_object_array_get_idx(ips, i), "address");
            if (a)
                used += (size_t)snprintf(addrs + used, alen - used, "%s%s", used ? " " : "", a);
        }
    if (r)
        json_object_put(r);
}

int cr_cni_add(const struct cr_cni *c, char **result, char *addrs, size_t alen, char *err,
               size_t errlen)
{
    *result = NULL;
    /* lo: the runtime's, not a plugin's (as podman and containerd do it) */
    int nsfd = open(c->netns, O_RDONLY | O_CLOEXEC);
    struct cr_nl nl;
    int lr = nsfd < 0 ? -errno : cr_nl_open(&nl, nsfd, err, errlen);
    if (nsfd >= 0)
        close(nsfd);
    if (lr == 0) {
        lr = cr_nl_link_up(&nl, 1, err, errlen);
        cr_nl_close(&nl);
    }
    if (lr < 0) {
        snprintf(err, errlen, "cni:%s: lo of %s: %s", c->name, c->netns, strerror(-lr));
        return lr;
    }
    struct json_object *list = load_list(c, err, errlen), *plugins;
    if (!list)
        return -ENOENT;
    json_object_object_get_ex(list, "plugins", &plugins);
    size_t n = json_object_array_length(plugins), done = 0;
    char *prev = NULL;
    int r = 0;
    for (; done < n; done++) {
        struct json_object *p = json_object_array_get_idx(plugins, done);
        const char *type = str_of(p, "type");
        if (!type) {
            snprintf(err, errlen, "cni:%s: plugin %zu has no \"type\"", c->name, done + 1);
            r = -EINVAL;
            break;
        }
        char *conf = plugin_conf(c, list, p, prev), *out = NULL;
        r = conf ? run_plugin(c, "ADD", type, conf, &out, err, errlen) : -ENOMEM;
        free(conf);
        if (r < 0)
            break;
        free(prev);
        prev = out;
    }
    if (r < 0) {
        char e2[256];
        del_upto(c, list, done, prev, e2, sizeof e2);   /* the ones added: taken back */
        free(prev);
    } else {
        result_addrs(prev ? prev : "", addrs, alen);
        *result = prev;
    }
    json_object_put(list);
    return r;
}

int cr_cni_del(const struct cr_cni *c, const char *result, char *err, size_t errlen)
{
    struct json_object *list = load_list(c, err, errlen), *plugins;
    if (!list)
        return -ENOENT;
    json_object_object_get_ex(list, "plugins", &plugins);
    int r = del_upto(c, list, json_object_array_length(plugins), result, err, errlen);
    json_object_put(list);
    return r;
}

/* ---- what a DEL needs after a kill -9 ------------------------------------------------------ */

static void rec_path(const char *dir, const char *id, const char *ext, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s.%s", dir, id, ext);
}

void cr_cni_state_dir(const char *run_dir, const char *cgroup_root, char *buf, size_t len)
{
    char d[PATH_MAX];
    cr_net_state_dir(run_dir, cgroup_root, NULL, d, sizeof d);
    snprintf(buf, len, "%s/cni", d);
}

int cr_cni_record(const char *dir, const struct cr_cni *c, const char *result, int nsfd,
                  char *err, size_t errlen)
{
    char json[PATH_MAX + 300], tmp[PATH_MAX + 310], ns[PATH_MAX + 300], src[64];
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return -errno;
    }
    rec_path(dir, c->container_id, "netns", ns, sizeof ns);
    snprintf(src, sizeof src, "/proc/self/fd/%d", nsfd);
    int fd = open(ns, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || (close(fd), mount(src, ns, NULL, MS_BIND, NULL)) < 0) {
        int e = errno;
        snprintf(err, errlen, "keeping its network namespace at %s: %s", ns, strerror(e));
        unlink(ns);
        return -e;
    }
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "list", json_object_new_string(c->name));
    json_object_object_add(o, "ifname", json_object_new_string(c->ifname));
    json_object_object_add(o, "result", result ? json_tokener_parse(result) : NULL);
    json_object_object_add(o, "portMappings", port_mappings(c->ports, c->nports));
    rec_path(dir, c->container_id, "json", json, sizeof json);
    snprintf(tmp, sizeof tmp, "%s.new", json);
    int r = json_object_to_file_ext(tmp, o, JSON_C_TO_STRING_PLAIN) < 0 || rename(tmp, json) < 0
                ? -EIO
                : 0;
    json_object_put(o);
    if (r < 0) {
        snprintf(err, errlen, "writing %s", json);
        cr_cni_forget(dir, c->container_id);
    }
    return r;
}

void cr_cni_forget(const char *dir, const char *container_id)
{
    char p[PATH_MAX + 300];
    rec_path(dir, container_id, "json", p, sizeof p);
    unlink(p);
    rec_path(dir, container_id, "netns", p, sizeof p);
    umount2(p, MNT_DETACH);
    unlink(p);
}

int cr_cni_recall(const char *dir, const char *container_id, char **list, char **result,
                  char *addrs, size_t alen)
{
    char path[PATH_MAX + 300];
    rec_path(dir, container_id, "json", path, sizeof path);
    struct json_object *o = json_object_from_file(path), *res = NULL;
    const char *l = o ? str_of(o, "list") : NULL;
    if (!l) {
        if (o)
            json_object_put(o);
        return -ENOENT;
    }
    const char *r = json_object_object_get_ex(o, "result", &res) && res
                        ? json_object_to_json_string_ext(res, JSON_C_TO_STRING_PLAIN) : NULL;
    *list = strdup(l);
    *result = r ? strdup(r) : NULL;
    result_addrs(r ? r : "", addrs, alen);
    json_object_put(o);
    if (!*list || (r && !*result)) {
        free(*list);
        free(*result);
        *list = *result = NULL;
        return -ENOMEM;
    }
    return 0;
}

int cr_cni_sweep(const char *dir, const char *conf_dir, const char *plugin_dir,
                 bool (*keep)(const char *container_id, void *arg), void *arg)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l <= 5 || strcmp(e->d_name + l - 5, ".json"))
            continue;
        char id[256], path[PATH_MAX + 300], ns[PATH_MAX + 300], err[512];
        snprintf(id, sizeof id, "%.*s", (int)(l - 5), e->d_name);
        if (keep && keep(id, arg))
            continue;   /* a container handed over by a re-exec: its service's */
        rec_path(dir, id, "json", path, sizeof path);
        rec_path(dir, id, "netns", ns, sizeof ns);
        struct json_object *o = json_object_from_file(path), *res = NULL, *pm = NULL;
        const char *list = o ? str_of(o, "list") : NULL, *ifname = o ? str_of(o, "ifname") : NULL;
        struct cr_port ports[64];
        size_t np = 0;
        if (o && json_object_object_get_ex(o, "portMappings", &pm) &&
            json_object_is_type(pm, json_type_array))
            for (size_t i = 0; i < json_object_array_length(pm) && np < 64; i++) {
                struct json_object *m = json_object_array_get_idx(pm, i), *v;
                const char *proto = str_of(m, "protocol"), *ip = str_of(m, "hostIP");
                struct cr_port p = {0};
                if (json_object_object_get_ex(m, "hostPort", &v))
                    p.host = (uint16_t)json_object_get_int(v);
                if (json_object_object_get_ex(m, "containerPort", &v))
                    p.container = (uint16_t)json_object_get_int(v);
                p.proto = proto && !strcmp(proto, "udp") ? CR_PROTO_UDP : CR_PROTO_TCP;
                struct in_addr in;
                if (ip && inet_pton(AF_INET, ip, &in) == 1)
                    p.ip = ntohl(in.s_addr);
                ports[np++] = p;
            }
        if (o)
            json_object_object_get_ex(o, "result", &res);
        struct stat st;
        struct cr_cni c = {.conf_dir = conf_dir, .plugin_dir = plugin_dir, .name = list,
                           .container_id = id, .netns = stat(ns, &st) == 0 ? ns : NULL,
                           .ifname = ifname ? ifname : "eth0", .ports = ports, .nports = np};
        if (!list) {
            cr_log(NULL, "cni: %s: not a record of a container (removed)", path);
        } else if (cr_cni_del(&c, res ? json_object_to_json_string(res) : NULL, err,
                              sizeof err) < 0) {
            cr_log(NULL, "cni:%s: DEL of %s, left by an earlier supervisor: %s", list, id, err);
        } else {
            cr_log(NULL, "cni:%s: DEL of %s, left by an earlier supervisor", list, id);
        }
        if (o)
            json_object_put(o);
        cr_cni_forget(dir, id);
        n++;
    }
    if (d)
        closedir(d);
    return n;
}
