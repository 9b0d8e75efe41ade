/* CNI plugins, executed as the CNI spec says; see cni.h. */
#include "net/cni.h"
#include "net/netlink.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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

/* One plugin's network config: the plugin's object with the list's name and cniVersion, and
 * prevResult when there is one. Returns malloc'd text. */
static char *plugin_conf(struct json_object *list, struct json_object *plugin, const char *prev)
{
    struct json_object *o = json_tokener_parse(json_object_to_json_string(plugin));
    if (!o)
        return NULL;
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
        char *conf = type ? plugin_conf(list, p, result) : NULL, *out = NULL, e[512];
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
        char *conf = plugin_conf(list, p, prev), *out = NULL;
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
