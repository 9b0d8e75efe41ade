/* The reload plan (config/diff.c) without root and without a supervisor: real configs loaded
 * from files over a small temporary rootfs, compared with a plain list of service states.
 * Every key of the table is changed on its own and its action checked against what this test
 * expects of it (a new key without an entry here fails: its reload behaviour is a decision),
 * then ordering, states, removals, the resolved spec, errors, and many random config pairs. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <nettle/sha2.h>

#include "tmpdir.h"

#include "cgroup/probe.h"
#include "config/config.h"
#include "config/diff.h"

static const struct cr_cgroup_caps caps = {
    .version = 2, .memory = true, .memory_high = true, .memory_swap = true, .cpu_max = true,
    .cpu_weight = true, .pids = true, .io_weight = true, .io_weight_file = "io.weight",
};

static void mkroot(const char *name)
{
    char p[PATH_MAX];
    mk(name);
    static const char *const dirs[] = {"bin", "etc", "data"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", name, dirs[i]);
        mk(p);
    }
    snprintf(p, sizeof p, "%s/bin/sleep", name);
    put(p, "#!/bin/true\n", 0755);
    snprintf(p, sizeof p, "%s/etc/passwd", name);
    put(p, "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/var/www:/bin/sh\n", 0644);
    snprintf(p, sizeof p, "%s/etc/group", name);
    put(p, "root:x:0:\nwww:x:33:\nstaff:x:50:\n", 0644);
}

/* A file of the OCI layout img/ named by its content's sha256; its digest into out. */
static void put_blob(const char *content, char out[72])
{
    struct sha256_ctx c;
    uint8_t d[SHA256_DIGEST_SIZE];
    sha256_init(&c);
    sha256_update(&c, strlen(content), (const uint8_t *)content);
    sha256_digest(&c, sizeof d, d);
    int n = snprintf(out, 72, "sha256:");
    for (size_t i = 0; i < sizeof d; i++)
        n += snprintf(out + n, 72 - (size_t)n, "%02x", d[i]);
    char p[PATH_MAX];
    snprintf(p, sizeof p, "img/blobs/sha256/%s", out + 7);
    put(p, content, 0644);
}

/* A one-layer OCI image layout, tagged v1 (its layer is never unpacked here). */
static void mkimage(void)
{
    char layer[72], config[72], manifest[72], text[1024];
    mk("img");
    mk("img/blobs");
    mk("img/blobs/sha256");
    put("img/oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}", 0644);
    put_blob("not unpacked in this test", layer);
    snprintf(text, sizeof text, "{\"config\":{\"Cmd\":[\"sleep\",\"1\"]},\"rootfs\":"
             "{\"type\":\"layers\",\"diff_ids\":[\"%s\"]}}", layer);
    put_blob(text, config);
    snprintf(text, sizeof text, "{\"schemaVersion\":2,\"config\":{\"digest\":\"%s\"},"
             "\"layers\":[{\"digest\":\"%s\"}]}", config, layer);
    put_blob(text, manifest);
    snprintf(text, sizeof text, "{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"%s\","
             "\"annotations\":{\"org.opencontainers.image.ref.name\":\"v1\"}}]}",
             manifest);
    put("img/index.json", text, 0644);
}

static int setup(void **state)
{
    (void)state;
    if (tmpdir_make("test_plan") < 0)
        return -1;
    mkroot("rootfs");
    mkroot("rootfs2");
    mk("data");
    put("env.list", "FROM_FILE=1\n", 0644);
    mkimage();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return tmpdir_remove();
}

/* Loads text as the file main.ini of the test dir ("%(here)s" is that dir). */
static int load(const char *text, struct cr_config *cfg)
{
    put("main.ini", text, 0644);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/main.ini", dir);
    struct cr_config_opts opts = {.caps = &caps};
    return cr_config_load(path, &opts, cfg);
}

static void load_ok(const char *text, struct cr_config *cfg)
{
    int r = load(text, cfg);
    for (size_t i = 0; r && i < cfg->errors.n; i++)
        print_error("  %s\n", cfg->errors.v[i]);
    assert_int_equal(r, 0);
}

/* The services of old as they exist, every one in state st. */
static struct cr_plan_svc *all_in(const struct cr_config *old, enum cr_plan_state st)
{
    struct cr_plan_svc *v = calloc(old->nservices + 1, sizeof *v);
    assert_non_null(v);
    for (size_t i = 0; i < old->nservices; i++)
        v[i] = (struct cr_plan_svc){old->services[i].name, st};
    return v;
}

static const struct cr_plan_item *item(const struct cr_plan *p, const char *name)
{
    const struct cr_plan_item *found = NULL;
    for (size_t i = 0; i < p->n; i++)
        if (!strcmp(p->v[i].name, name)) {
            assert_null(found);   /* one item per name */
            found = &p->v[i];
        }
    return found;
}

#define BASE "[service:t]\nrootfs = %(here)s/rootfs\ncommand = sleep 1\n"
#define OTHER "[service:other]\nrootfs = %(here)s/rootfs\ncommand = sleep 1\n"

/* ---- every key of the table ---------------------------------------------------------------- */

/* What this test expects a change of each key to do: R restart, L live (written to the
 * cgroup), N nothing but taking the new value. from: the value before (NULL: not set);
 * with: lines both configs need for the key to be valid. */
static const struct change {
    const char *key, *from, *to, *with;
    char expect;
} changes[] = {
    /* [supervisor] (R: read when the supervisor starts) */
    {"cgroup_root", NULL, "sxr-plan/x", NULL, 'R'},
    {"control_socket", NULL, "/tmp/sxr-plan.sock", NULL, 'R'},
    {"log_dir", NULL, "%(here)s/data", NULL, 'R'},
    {"run_dir", NULL, "%(here)s/data", NULL, 'R'},
    {"cni_config_dir", NULL, "%(here)s/data", NULL, 'R'},
    {"cni_plugin_dir", NULL, "%(here)s/data", NULL, 'R'},
    /* [network:n], service t on it: its services restart */
    {"subnet", NULL, "10.201.7.0/24", NULL, 'R'},
    {"subnet6", NULL, "fd00:201:7::/64", NULL, 'R'},
    {"internal", NULL, "true", NULL, 'R'},
    {"bridge", NULL, "sxrplanbr0", NULL, 'R'},
    {"logfile", NULL, "AUTO", NULL, 'R'},
    {"logfile_maxbytes", NULL, "1MB", NULL, 'L'},
    {"logfile_backups", NULL, "2", NULL, 'L'},
    {"metrics_listen", NULL, "127.0.0.1:9100", NULL, 'R'},
    /* (N: used by the next user_namespace = auto assignment, which the load makes) */
    {"subid_user", NULL, "nobody", NULL, 'N'},
    {"subuid_file", NULL, "%(here)s/subuid", NULL, 'N'},
    {"subgid_file", NULL, "%(here)s/subgid", NULL, 'N'},
    {"userns_state", NULL, "%(here)s/userns", NULL, 'N'},
    /* the machine's hostname as its PID 1 (a service's hostname is its container's) */
    {"global:hostname", NULL, "box1", NULL, 'R'},
    /* [supervisord]'s keys ("global:" where a service key has the same name) */
    {"global:environment", NULL, "A=1", NULL, 'R'},
    {"global:umask", NULL, "077", NULL, 'R'},
    {"minfds", NULL, "4096", NULL, 'R'},
    {"minprocs", NULL, "400", NULL, 'R'},
    {"nodaemon", NULL, "false", NULL, 'N'},
    {"identity", NULL, "other", NULL, 'R'},
    /* [unix_http_server] and [inet_http_server] (R: opened when the supervisor starts) */
    {"unix:file", "/tmp/sxr-plan-a.sock", "/tmp/sxr-plan-b.sock", NULL, 'R'},
    {"unix:chmod", NULL, "0770", NULL, 'R'},
    {"unix:chown", NULL, "nobody", NULL, 'R'},
    {"unix:username", "u", "v", NULL, 'R'},
    {"unix:password", "p", "q", NULL, 'R'},
    {"inet:port", "127.0.0.1:19690", "127.0.0.1:19691", NULL, 'R'},
    {"inet:username", "u", "v", NULL, 'R'},
    {"inet:password", "p", "q", NULL, 'R'},
    {"pidfile", NULL, "/run/sxr-plan.pid", NULL, 'R'},
    {"loglevel", NULL, "debug", NULL, 'N'},
    {"global:user", NULL, "nobody", NULL, 'N'},
    {"global:directory", NULL, "/tmp", NULL, 'N'},
    {"strip_ansi", NULL, "true", NULL, 'N'},
    {"nocleanup", NULL, "true", NULL, 'N'},
    {"silent", NULL, "true", NULL, 'N'},
    {"image_store", NULL, "%(here)s/store", NULL, 'R'},
    /* services */
    {"command", "sleep 1", "sleep 2", NULL, 'R'},
    {"process_name", NULL, "u", NULL, 'R'},   /* a rename: stop t, start u */
    {"numprocs", NULL, "2", "process_name = t%(process_num)d\n", 'R'},
    {"numprocs_start", NULL, "5", "process_name = t\n", 'R'},
    {"directory", NULL, "/data", NULL, 'R'},
    {"user", NULL, "www", NULL, 'R'},
    {"group", NULL, "www", NULL, 'R'},
    {"groups", NULL, "staff", NULL, 'R'},
    {"umask", NULL, "077", NULL, 'R'},
    {"environment", NULL, "A=1", NULL, 'R'},
    {"environment_file", NULL, "env.list", NULL, 'R'},
    {"inherit_environment", NULL, "true", NULL, 'R'},
    {"stdin", NULL, "pipe", NULL, 'R'},
    {"autostart", NULL, "false", NULL, 'N'},
    {"priority", NULL, "5", NULL, 'N'},
    {"autorestart", NULL, "true", NULL, 'R'},
    {"exitcodes", NULL, "0,2", NULL, 'R'},
    {"startsecs", NULL, "3", NULL, 'R'},
    {"startretries", NULL, "5", NULL, 'R'},
    {"restart_delay", NULL, "1s", NULL, 'R'},
    {"restart_delay_max", NULL, "60s", NULL, 'R'},
    {"restart_reset_after", NULL, "20s", NULL, 'R'},
    {"max_restarts", NULL, "5", NULL, 'R'},
    {"restart_window", NULL, "30s", NULL, 'R'},
    {"stopsignal", NULL, "INT", NULL, 'N'},
    {"stopwaitsecs", NULL, "3", NULL, 'N'},
    {"stopasgroup", NULL, "true", NULL, 'N'},
    {"killasgroup", NULL, "true", NULL, 'N'},
    {"depends_on", NULL, "other", NULL, 'N'},
    {"ready", NULL, "notify", NULL, 'R'},
    {"ready_timeout", NULL, "10s", NULL, 'R'},
    {"health_cmd", NULL, "sleep 0", NULL, 'R'},
    {"health_interval", NULL, "10s", NULL, 'R'},
    {"health_timeout", NULL, "10s", NULL, 'R'},
    {"health_retries", NULL, "5", NULL, 'R'},
    {"health_start_period", NULL, "5s", NULL, 'R'},
    {"health_action", NULL, "stop", NULL, 'R'},
    {"redirect_stderr", NULL, "true", NULL, 'R'},
    {"stdout_logfile", NULL, "NONE", NULL, 'N'},
    {"stdout_logfile_maxbytes", NULL, "1MB", NULL, 'N'},
    {"stdout_logfile_backups", NULL, "2", NULL, 'N'},
    {"stderr_logfile", NULL, "NONE", NULL, 'N'},
    {"stderr_logfile_maxbytes", NULL, "1MB", NULL, 'N'},
    {"stderr_logfile_backups", NULL, "2", NULL, 'N'},
    {"log_timestamps", NULL, "true", NULL, 'N'},
    {"stdout_capture_maxbytes", NULL, "1MB", NULL, 'N'},
    {"stderr_capture_maxbytes", NULL, "1MB", NULL, 'N'},
    {"stdout_events_enabled", NULL, "true", NULL, 'N'},
    {"stderr_events_enabled", NULL, "true", NULL, 'N'},
    {"stdout_syslog", NULL, "true", NULL, 'N'},
    {"stderr_syslog", NULL, "true", NULL, 'N'},
    {"serverurl", NULL, "AUTO", NULL, 'R'},
    {"rootfs", "%(here)s/rootfs", "%(here)s/rootfs2", NULL, 'R'},
    {"hostname", NULL, "h1", NULL, 'R'},
    {"reexec_signal", NULL, "QUIT", NULL, 'R'},
    {"namespaces", NULL, "pid,mount,uts,ipc,net", NULL, 'R'},
    {"user_namespace", NULL, "none", NULL, 'R'},
    {"uid_map", "0:100000:65536", "0:200000:65536",
     "namespaces = pid,mount,uts,ipc,net,cgroup,user\ngid_map = 0:100000:65536\n", 'R'},
    {"gid_map", "0:100000:65536", "0:200000:65536",
     "namespaces = pid,mount,uts,ipc,net,cgroup,user\nuid_map = 0:100000:65536\n", 'R'},
    {"bind", NULL, "%(here)s/data:/data", NULL, 'R'},
    {"tmpfs", NULL, "/tmp", NULL, 'R'},
    {"read_only", NULL, "true", NULL, 'R'},
    {"image", NULL, "oci:%(here)s/img:v1", NULL, 'R'},
    {"entrypoint", NULL, "sleep", NULL, 'R'},
    {"rootfs_persist", NULL, "true", NULL, 'R'},
    {"volume", NULL, "data:/data", NULL, 'R'},
    {"cap_add", NULL, "NET_RAW", NULL, 'R'},
    {"cap_drop", NULL, "KILL", NULL, 'R'},
    {"ambient_capabilities", NULL, "NET_BIND_SERVICE", "user = www\n", 'R'},
    {"no_new_privileges", NULL, "false", NULL, 'R'},
    {"seccomp", NULL, "unconfined", NULL, 'R'},
    {"masked_paths", NULL, "/secret", NULL, 'R'},
    {"readonly_paths", NULL, "/data", NULL, 'R'},
    {"unmask", NULL, "/proc/kcore", NULL, 'R'},
    {"device", NULL, "/dev/zero:/dev/z", NULL, 'R'},
    {"network", NULL, "none", NULL, 'R'},
    {"ports", NULL, "18080:80", NULL, 'R'},
    {"confine_devices", NULL, "false", NULL, 'R'},
    {"memory_max", NULL, "64M", NULL, 'L'},
    {"memory_high", NULL, "32M", NULL, 'L'},
    {"memory_swap_max", NULL, "16M", NULL, 'L'},
    {"cpu_max", NULL, "50%", NULL, 'L'},
    {"cpu_weight", NULL, "200", NULL, 'L'},
    {"pids_max", NULL, "100", NULL, 'L'},
    {"io_weight", NULL, "200", NULL, 'L'},
    /* [eventlistener:t] */
    {"events", "TICK_5", "TICK_60", NULL, 'R'},
    {"buffer_size", NULL, "20", NULL, 'N'},
    {"socket", "unix:///tmp/sxr-plan-a.sock", "unix:///tmp/sxr-plan-b.sock", NULL, 'R'},
    {"socket_backlog", NULL, "16", NULL, 'R'},
    {"socket_owner", NULL, "root", NULL, 'R'},
    {"socket_mode", NULL, "0770", NULL, 'R'},
};

/* The key of a change: "global:NAME" is NAME's [supervisor] row, "unix:NAME" and
 * "inet:NAME" [unix_http_server]'s and [inet_http_server]'s. */
static const struct cr_key *key_of(const struct change *c)
{
    if (!strncmp(c->key, "unix:", 5))
        return cr_key_find(c->key + 5, CR_SEC_UNIX_HTTP);
    if (!strncmp(c->key, "inet:", 5))
        return cr_key_find(c->key + 5, CR_SEC_INET_HTTP);
    bool global = !strncmp(c->key, "global:", 7);
    return cr_key_find(c->key + (global ? 7 : 0), global ? CR_SEC_GLOBAL : CR_SEC_SERVICE);
}

static const struct change *change_of(const struct cr_key *k)
{
    for (size_t i = 0; i < sizeof changes / sizeof changes[0]; i++)
        if (key_of(&changes[i]) == k)
            return &changes[i];
    return NULL;
}

/* The config with key set to value (NULL: left out), as [supervisor] or service t. */
static void write_conf(char *buf, size_t len, const struct cr_key *k, const struct change *c,
                       const char *value)
{
    char line[512] = "";
    if (value)
        snprintf(line, sizeof line, "%s = %s\n", k->name, value);
    const char *with = c->with ? c->with : "";
    if (k->sections & (CR_SEC_UNIX_HTTP | CR_SEC_INET_HTTP)) {
        /* the section's other keys, so that it is valid */
        bool unix_sec = k->sections & CR_SEC_UNIX_HTTP;
        const char *name = k->name;
        snprintf(buf, len, "[%s]\n%s%s%s%s\n%s%s", unix_sec ? "unix_http_server"
                                                        : "inet_http_server", line,
                 !strcmp(name, unix_sec ? "file" : "port") ? ""
                 : unix_sec ? "file = /tmp/sxr-plan.sock\n" : "port = 127.0.0.1:19692\n",
                 !strcmp(name, "username") ? "password = p\n" : "",
                 !strcmp(name, "password") ? "username = u\n" : "", BASE, OTHER);
    } else if (k->sections & CR_SEC_GLOBAL)
        snprintf(buf, len, "[supervisor]\n%s\n%s%s", line, BASE, OTHER);
    else if (k->sections == CR_SEC_FCGI)
        snprintf(buf, len, "[fcgi-program:t]\ncommand = /bin/cat\n%s%s%s\n%s",
                 strcmp(k->name, "socket") ? "socket = unix:///tmp/sxr-plan.sock\n" : "", with,
                 line, OTHER);
    else if (k->sections == CR_SEC_LISTENER)
        snprintf(buf, len, "[eventlistener:t]\ncommand = /bin/cat\n%s%s%s\n%s",
                 strcmp(k->name, "events") ? "events = TICK_5\n" : "", with, line, OTHER);
    else if (k->sections & CR_SEC_NETWORK)
        snprintf(buf, len, "%snetwork = bridge:n\n%s\n[network:n]\n%s", BASE, OTHER, line);
    else if (!strcmp(k->name, "image"))      /* an image is the root: no rootfs */
        snprintf(buf, len, "[service:t]\ncommand = sleep 1\n%s%s\n%s", with, line, OTHER);
    else if (!strcmp(k->name, "rootfs") || !strcmp(k->name, "command"))
        snprintf(buf, len, "[service:t]\n%s%s%s\n%s",
                 !strcmp(k->name, "rootfs") ? "command = sleep 1\n"
                                            : "rootfs = %(here)s/rootfs\n", with, line, OTHER);
    else
        snprintf(buf, len, "%s%s%s\n%s", BASE, with, line, OTHER);
}

/* The plan of changing key alone, with every service in state st. */
static void plan_key(int key, enum cr_plan_state st, struct cr_config *a, struct cr_config *b,
                     struct cr_plan *p)
{
    const struct cr_key *k = &cr_keys[key];
    const struct change *c = change_of(k);
    char text[4096];
    write_conf(text, sizeof text, k, c, c->from);
    load_ok(text, a);
    write_conf(text, sizeof text, k, c, c->to);
    load_ok(text, b);
    struct cr_plan_svc *in = all_in(a, st);
    memset(p, 0, sizeof *p);
    /* A network's definition changing under a running container: refused, naming it (its
     * bridge cannot change under it); else the bridge is made again at its next use. */
    bool refused = (k->sections & CR_SEC_NETWORK) && st == CR_PLAN_ACTIVE;
    assert_int_equal(cr_plan_compute(a, b, in, a->nservices, p), refused ? -EINVAL : 0);
    if (k->sections & CR_SEC_NETWORK) {
        assert_int_equal(p->nrenet, refused ? 0 : 1);
        if (refused) {
            assert_int_equal(p->errors.n, 1);
            if (!strstr(p->errors.v[0], "[network:n]") ||
                !strstr(p->errors.v[0], "the containers of t use it"))
                fail_msg("key %s: %s", k->name, p->errors.v[0]);
        } else {
            assert_string_equal(p->renet[0], "n");
        }
    }
    free(in);
}

static void test_every_key(void **state)
{
    (void)state;
    static const enum cr_plan_state states[] = {CR_PLAN_ACTIVE, CR_PLAN_STOPPED, CR_PLAN_DOWN};
    for (int key = 0; key < CR_NKEYS; key++) {
        const struct cr_key *k = &cr_keys[key];
        if (k->sections == CR_SEC_INCLUDE || k->sections == CR_SEC_GROUP ||
            key == CR_K_RESULT_HANDLER)
            continue;   /* result_handler: one value only (supervisord's default) */   /* read by the loader itself, as [include]: a [group:]'s priority
                           becomes its programs' own (compared as theirs) */   /* [include] files: a reload reads them all again (test_include) */
        const struct change *c = change_of(k);
        if (!c)
            fail_msg("key %s: add it to changes[] with what a reload should do", k->name);
        char want_class = k->reload == CR_RELOAD_RESTART ? 'R'
                          : k->reload == CR_RELOAD_LIVE  ? 'L'
                                                         : 'N';
        if (want_class != c->expect)
            fail_msg("key %s: the table says %c, this test %c", k->name, want_class, c->expect);
        for (size_t s = 0; s < sizeof states / sizeof states[0]; s++) {
            struct cr_config a, b;
            struct cr_plan p;
            plan_key(key, states[s], &a, &b, &p);
            if ((k->sections & CR_SEC_NETWORK) && states[s] == CR_PLAN_ACTIVE) {
                /* refused (plan_key): the items are there, nothing is walked */
            } else if (k->sections & CR_SEC_GLOBALS) {
                const struct cr_plan_item *g = item(&p, CR_PLAN_GLOBAL);
                assert_non_null(g);
                assert_true(g->global);
                assert_int_equal(g->conf, -1);
                assert_string_equal(g->keys, k->name);
                assert_int_equal(g->action, c->expect == 'L' ? CR_PLAN_LIVE : CR_PLAN_UPDATE);
                for (size_t i = 0; i < p.n; i++)   /* the services are untouched */
                    assert_true(p.v[i].global || p.v[i].action == CR_PLAN_KEEP);
                assert_int_equal(p.n, 3);
            } else if (key == CR_K_PROCESS_NAME) {
                assert_int_equal(p.n, 3);
                assert_int_equal(item(&p, "t")->action, CR_PLAN_STOP);
                assert_int_equal(item(&p, "u")->action, CR_PLAN_START);
                assert_true(item(&p, "u")->create);
            } else {
                /* t (t0 with numprocs) is the first service of b */
                const char *name = b.services[0].name;
                const struct cr_plan_item *it = item(&p, name);
                assert_non_null(it);
                if (strcmp(it->keys, k->name))
                    fail_msg("key %s: keys '%s'", k->name, it->keys);
                enum cr_plan_action want;
                bool autostart = b.services[0].autostart;
                if (c->expect == 'R')
                    want = states[s] == CR_PLAN_ACTIVE                 ? CR_PLAN_RESTART
                           : states[s] == CR_PLAN_STOPPED && autostart ? CR_PLAN_START
                                                                       : CR_PLAN_UPDATE;
                else
                    want = states[s] == CR_PLAN_ACTIVE ? CR_PLAN_LIVE : CR_PLAN_UPDATE;
                if (it->action != want)
                    fail_msg("key %s in state %zu: %s, not %s", k->name, s,
                             cr_plan_action_name(it->action), cr_plan_action_name(want));
                assert_int_equal(it->limits, want == CR_PLAN_LIVE && c->expect == 'L');
                assert_false(it->create);
                assert_false(it->global);
                assert_string_equal(b.services[it->conf].name, name);
                assert_null(item(&p, CR_PLAN_GLOBAL));
                const struct cr_plan_item *o = item(&p, "other");
                assert_non_null(o);
                assert_int_equal(o->action, CR_PLAN_KEEP);
                assert_string_equal(o->keys, "");
                /* numprocs = 2 adds t1, started */
                assert_int_equal(p.n, b.nservices);
            }
            cr_plan_free(&p);
            cr_config_free(&a);
            cr_config_free(&b);
        }
    }
    /* and every entry here is a key */
    for (size_t i = 0; i < sizeof changes / sizeof changes[0]; i++)
        assert_non_null(key_of(&changes[i]));
}

/* ---- the rest ------------------------------------------------------------------------------ */

static void plan_of(const char *old, const char *new, const struct cr_plan_svc *in, size_t n,
                    struct cr_plan *p)
{
    struct cr_config a, b;
    load_ok(old, &a);
    load_ok(new, &b);
    memset(p, 0, sizeof *p);
    assert_int_equal(cr_plan_compute(&a, &b, in, n, p), 0);
    cr_config_free(&a);
    cr_config_free(&b);
}

#define SVC(name, prio, extra) "[service:" name "]\nrootfs = %(here)s/rootfs\n" \
    "command = sleep 1\npriority = " #prio "\n" extra

static void test_order(void **state)
{
    (void)state;
    const char *old = SVC("a", 10, "") SVC("b", 30, "") SVC("c", 20, "") SVC("d", 5, "");
    const char *new = SVC("n2", 50, "") SVC("d", 5, "memory_max = 1G\n") SVC("n1", 1,
        "autostart = false\n") SVC("n3", 50, "");
    struct cr_plan_svc in[] = {{"a", CR_PLAN_ACTIVE}, {"b", CR_PLAN_DOWN},
                               {"c", CR_PLAN_STOPPED}, {"d", CR_PLAN_ACTIVE},
                               {"gone-earlier", CR_PLAN_ACTIVE}};
    struct cr_plan p;
    plan_of(old, new, in, 5, &p);
    /* stops first: the one without a config, then highest priority first; then the new
     * config by priority, file order among equals */
    static const struct { const char *name; enum cr_plan_action a; bool create; } want[] = {
        {"gone-earlier", CR_PLAN_STOP, false}, {"b", CR_PLAN_STOP, false},
        {"c", CR_PLAN_STOP, false}, {"a", CR_PLAN_STOP, false},
        {"n1", CR_PLAN_ADD, true}, {"d", CR_PLAN_LIVE, false},
        {"n2", CR_PLAN_START, true}, {"n3", CR_PLAN_START, true},
    };
    assert_int_equal(p.n, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < p.n; i++) {
        assert_string_equal(p.v[i].name, want[i].name);
        assert_int_equal(p.v[i].action, want[i].a);
        assert_int_equal(p.v[i].create, want[i].create);
        assert_int_equal(p.v[i].conf < 0, p.v[i].action == CR_PLAN_STOP);
    }
    assert_true(p.v[5].limits);
    assert_string_equal(p.v[5].keys, "memory_max");
    cr_plan_free(&p);
}

static void test_states_and_mixes(void **state)
{
    (void)state;
    const char *old = SVC("a", 1, "") SVC("b", 1, "autostart = false\n") SVC("c", 1, "")
        SVC("d", 1, "");
    /* a: restart key and live key; b: restart key, autostart false; c: a none key and a live
     * key; d: none key only */
    const char *new = SVC("a", 1, "hostname = h2\nmemory_max = 1G\n")
        SVC("b", 1, "autostart = false\nhostname = h2\n")
        SVC("c", 1, "stopsignal = INT\npids_max = 10\n") SVC("d", 1, "stopwaitsecs = 1\n");
    struct cr_plan_svc in[] = {{"a", CR_PLAN_ACTIVE}, {"b", CR_PLAN_STOPPED},
                               {"c", CR_PLAN_ACTIVE}, {"d", CR_PLAN_ACTIVE}};
    struct cr_plan p;
    plan_of(old, new, in, 4, &p);
    assert_int_equal(item(&p, "a")->action, CR_PLAN_RESTART);
    assert_false(item(&p, "a")->limits);
    assert_string_equal(item(&p, "a")->keys, "hostname,memory_max");
    assert_int_equal(item(&p, "b")->action, CR_PLAN_UPDATE);
    assert_int_equal(item(&p, "c")->action, CR_PLAN_LIVE);
    assert_true(item(&p, "c")->limits);
    assert_string_equal(item(&p, "c")->keys, "stopsignal,pids_max");
    assert_int_equal(item(&p, "d")->action, CR_PLAN_LIVE);
    assert_false(item(&p, "d")->limits);
    cr_plan_free(&p);

    /* a service removed by an earlier reload and still stopping, in the config again:
     * restarts (it is active), with no keys to compare */
    struct cr_plan_svc back[] = {{"a", CR_PLAN_ACTIVE}, {"z", CR_PLAN_ACTIVE}};
    plan_of(SVC("a", 1, ""), SVC("a", 1, "") SVC("z", 1, ""), back, 2, &p);
    assert_int_equal(item(&p, "z")->action, CR_PLAN_RESTART);
    assert_false(item(&p, "z")->create);
    assert_string_equal(item(&p, "z")->keys, "");
    assert_int_equal(item(&p, "a")->action, CR_PLAN_KEEP);
    cr_plan_free(&p);
    /* the same settled in STOPPED: it starts again */
    back[1].state = CR_PLAN_STOPPED;
    plan_of(SVC("a", 1, ""), SVC("a", 1, "") SVC("z", 1, ""), back, 2, &p);
    assert_int_equal(item(&p, "z")->action, CR_PLAN_START);
    assert_false(item(&p, "z")->create);
    cr_plan_free(&p);
}

/* What was resolved on the machine changed, no key did: a restart, said as "spec". */
static void test_spec_only(void **state)
{
    (void)state;
    const char *conf = SVC("a", 1, "environment_file = env.list\n");
    struct cr_config a, b;
    load_ok(conf, &a);
    put("env.list", "FROM_FILE=2\n", 0644);
    load_ok(conf, &b);
    put("env.list", "FROM_FILE=1\n", 0644);
    struct cr_plan_svc in[] = {{"a", CR_PLAN_ACTIVE}};
    struct cr_plan p = {0};
    assert_int_equal(cr_plan_compute(&a, &b, in, 1, &p), 0);
    assert_int_equal(p.n, 1);
    assert_int_equal(p.v[0].action, CR_PLAN_RESTART);
    assert_string_equal(p.v[0].keys, "spec");
    assert_true(cr_service_needs_restart(&a.services[0], &b.services[0]));
    char line[512];
    cr_plan_item_format(&p.v[0], line, sizeof line);
    assert_string_equal(line, "a: restart (keys: spec)");
    cr_plan_free(&p);
    cr_config_free(&a);
    cr_config_free(&b);
}

static void test_errors_notices_and_nothing(void **state)
{
    (void)state;
    struct cr_config a, b;
    load_ok(SVC("a", 1, ""), &a);
    assert_int_equal(load(SVC("a", 1, "bogus_key = 1\nmemory_max = lots\n"), &b), -EINVAL);
    struct cr_plan_svc in[] = {{"a", CR_PLAN_ACTIVE}};
    struct cr_plan p = {0};
    assert_int_equal(cr_plan_compute(&a, &b, in, 1, &p), -EINVAL);
    assert_int_equal(p.n, 0);
    assert_int_equal(p.errors.n, 2);
    assert_non_null(strstr(p.errors.v[0], "main.ini:5: bogus_key"));
    assert_non_null(strstr(p.errors.v[1], "main.ini:6: memory_max"));
    cr_plan_free(&p);
    cr_config_free(&b);

    load_ok(SVC("a", 1, "stopasgroup = true\n"), &b);   /* accepted and ignored: a notice */
    assert_int_equal(cr_plan_compute(&a, &b, in, 1, &p), 0);
    assert_true(p.notices.n >= 1);
    assert_non_null(strstr(p.notices.v[0], "stopasgroup"));
    cr_plan_free(&p);
    cr_config_free(&b);

    /* the same config: every service kept, nothing to say */
    load_ok(SVC("a", 1, ""), &b);
    assert_int_equal(cr_plan_compute(&a, &b, in, 1, &p), 0);
    assert_int_equal(p.n, 1);
    assert_int_equal(p.v[0].action, CR_PLAN_KEEP);
    assert_string_equal(p.v[0].keys, "");
    char line[512];
    cr_plan_item_format(&p.v[0], line, sizeof line);
    assert_string_equal(line, "a: keep");
    cr_plan_free(&p);
    cr_config_free(&b);
    cr_config_free(&a);
}

/* Many changed keys: the list is cut with "...", never overflows. */
static void test_long_key_list(void **state)
{
    (void)state;
    char text[8192];
    int n = snprintf(text, sizeof text, "%s", BASE);
    for (size_t i = 0; i < sizeof changes / sizeof changes[0]; i++) {
        const struct change *c = &changes[i];
        const struct cr_key *k = key_of(c);
        if (!(k->sections & CR_SEC_SERVICE) || c->with || c->from || k->type == CR_T_NOOP ||
            !strcmp(c->key, "depends_on") || !strcmp(c->key, "ambient_capabilities") ||
            !strcmp(c->key, "process_name") || !strcmp(c->key, "ports") ||
            !strcmp(c->key, "image"))
            continue;
        n += snprintf(text + n, sizeof text - (size_t)n, "%s = %s\n", c->key, c->to);
    }
    struct cr_config a, b;
    load_ok(BASE, &a);
    load_ok(text, &b);
    struct cr_plan_svc in[] = {{"t", CR_PLAN_ACTIVE}};
    struct cr_plan p = {0};
    assert_int_equal(cr_plan_compute(&a, &b, in, 1, &p), 0);
    assert_int_equal(p.n, 1);
    size_t len = strlen(p.v[0].keys);
    assert_true(len < sizeof p.v[0].keys && len > 200);
    assert_string_equal(p.v[0].keys + len - 3, "...");
    assert_int_equal(strncmp(p.v[0].keys, "directory,user,group,", 21), 0);
    cr_plan_free(&p);
    cr_config_free(&a);
    cr_config_free(&b);
}

/* After a reload the [supervisor] keys read at start-up keep their running values, so the
 * next plan still names them; the live ones are taken. */
static void test_running_globals(void **state)
{
    (void)state;
    struct cr_config a, b, c;
    load_ok("[supervisor]\ncgroup_root = sxr-a\n" SVC("x", 1, ""), &a);
    load_ok("[supervisor]\ncgroup_root = sxr-b\nlogfile_backups = 3\n" SVC("x", 1, ""), &b);
    load_ok("[supervisor]\ncgroup_root = sxr-b\nlogfile_backups = 3\n" SVC("x", 1, ""), &c);
    cr_config_keep_running_globals(&b, &a);   /* b is now in use */
    assert_string_equal(b.global.cgroup_root, "sxr-a");
    assert_string_equal(a.global.cgroup_root, "sxr-b");
    assert_int_equal(b.global.logfile_backups, 3);
    struct cr_plan_svc in[] = {{"x", CR_PLAN_ACTIVE}};
    struct cr_plan p = {0};
    assert_int_equal(cr_plan_compute(&b, &c, in, 1, &p), 0);
    const struct cr_plan_item *g = item(&p, CR_PLAN_GLOBAL);
    assert_non_null(g);
    assert_int_equal(g->action, CR_PLAN_UPDATE);
    assert_string_equal(g->keys, "cgroup_root");
    cr_plan_free(&p);
    cr_config_free(&a);
    cr_config_free(&b);
    cr_config_free(&c);
}

/* [include] files are read again: services they add or drop come and go like any. */
static void test_include(void **state)
{
    (void)state;
    mk("conf.d");
    char inc[PATH_MAX + 64];
    snprintf(inc, sizeof inc, "[service:inc]\nrootfs = %s/rootfs\ncommand = sleep 1\n", dir);
    put("conf.d/x.ini", inc, 0644);
    struct cr_config a, b;
    load_ok(SVC("a", 1, ""), &a);
    load_ok(SVC("a", 1, "") "[include]\nfiles = conf.d/*.ini\n", &b);
    struct cr_plan_svc *in = all_in(&a, CR_PLAN_ACTIVE);
    struct cr_plan p = {0};
    assert_int_equal(cr_plan_compute(&a, &b, in, a.nservices, &p), 0);
    assert_int_equal(p.n, 2);
    assert_int_equal(item(&p, "inc")->action, CR_PLAN_START);
    assert_int_equal(item(&p, "a")->action, CR_PLAN_KEEP);
    cr_plan_free(&p);
    free(in);
    cr_config_free(&a);
    cr_config_free(&b);
}

/* ---- many random pairs ---------------------------------------------------------------------- */

static uint64_t rnd = 0x9e3779b97f4a7c15ull;

static unsigned next(unsigned n)
{
    rnd ^= rnd << 13;
    rnd ^= rnd >> 7;
    rnd ^= rnd << 17;
    return (unsigned)(rnd % n);
}

/* Up to 8 services s0..s7, each present or not, with a random priority and one of a few
 * variants (command, memory_max, stopsignal, autostart). */
struct shape {
    bool present[8];
    int prio[8], variant[8];
};

static const char *const variants[] = {
    "", "hostname = h2\n", "memory_max = 1G\n", "stopsignal = INT\n",
    "autostart = false\n", "hostname = h2\nmemory_max = 1G\n",
    "stopsignal = INT\npids_max = 5\n",
};
#define NVARIANTS (sizeof variants / sizeof variants[0])
/* Which restart keys and which live keys each variant sets (same number: same values). */
static const int restart_key[NVARIANTS] = {0, 1, 0, 0, 0, 1, 0};
static const int live_set[NVARIANTS] = {0, 0, 1, 0, 0, 1, 2};

static void shape_random(struct shape *s)
{
    for (int i = 0; i < 8; i++) {
        s->present[i] = next(4) != 0;
        s->prio[i] = (int)next(4);
        s->variant[i] = (int)next(NVARIANTS);
    }
}

static void shape_text(const struct shape *s, char *buf, size_t len)
{
    size_t n = 0;
    for (int i = 0; i < 8; i++)
        if (s->present[i])
            n += (size_t)snprintf(buf + n, len - n, "[service:s%d]\nrootfs = %%(here)s/rootfs\n"
                                  "command = sleep 1\npriority = %d\n%s", i, s->prio[i],
                                  variants[s->variant[i]]);
    if (!n)
        snprintf(buf, len, "[supervisor]\n");
}

/* What the plan must say, worked out here from the shapes alone. */
static enum cr_plan_action expected(const struct shape *o, const struct shape *n, int i,
                                    enum cr_plan_state st)
{
    if (!n->present[i])
        return CR_PLAN_STOP;
    bool autostart = n->variant[i] != 4;
    if (!o->present[i] && st == (enum cr_plan_state)-1)
        return autostart ? CR_PLAN_START : CR_PLAN_ADD;
    bool restart = !o->present[i] || restart_key[o->variant[i]] != restart_key[n->variant[i]];
    bool other = o->present[i] && (o->variant[i] != n->variant[i] || o->prio[i] != n->prio[i]);
    if (restart)
        return st == CR_PLAN_ACTIVE ? CR_PLAN_RESTART
               : st == CR_PLAN_STOPPED && autostart ? CR_PLAN_START : CR_PLAN_UPDATE;
    if (other)
        return st == CR_PLAN_ACTIVE ? CR_PLAN_LIVE : CR_PLAN_UPDATE;
    return CR_PLAN_KEEP;
}

static void test_random_pairs(void **state)
{
    (void)state;
    for (int round = 0; round < 150; round++) {
        struct shape o, n;
        shape_random(&o);
        shape_random(&n);
        char text[8192];
        struct cr_config a, b;
        shape_text(&o, text, sizeof text);
        load_ok(text, &a);
        shape_text(&n, text, sizeof text);
        load_ok(text, &b);
        /* The services that exist: those of o, and now and then one removed earlier and
         * still stopping (in neither config's old side). */
        struct cr_plan_svc in[8];
        enum cr_plan_state st[8];
        static const char *const names[] = {"s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7"};
        size_t nin = 0;
        for (int i = 0; i < 8; i++) {
            st[i] = (enum cr_plan_state)-1;
            if (o.present[i] || next(8) == 0) {
                st[i] = (enum cr_plan_state)next(3);
                in[nin++] = (struct cr_plan_svc){names[i], st[i]};
            }
        }
        struct cr_plan p = {0};
        assert_int_equal(cr_plan_compute(&a, &b, in, nin, &p), 0);
        size_t want_n = 0;
        for (int i = 0; i < 8; i++) {
            const struct cr_plan_item *it = item(&p, names[i]);
            bool exists = st[i] != (enum cr_plan_state)-1;
            if (!exists && !n.present[i]) {
                assert_null(it);
                continue;
            }
            want_n++;
            assert_non_null(it);
            enum cr_plan_action want = expected(&o, &n, i, st[i]);
            if (it->action != want)
                fail_msg("round %d s%d: %s, not %s", round, i,
                         cr_plan_action_name(it->action), cr_plan_action_name(want));
            assert_int_equal(it->create, !exists);
            assert_int_equal(it->limits, want == CR_PLAN_LIVE &&
                                         live_set[o.variant[i]] != live_set[n.variant[i]]);
        }
        assert_int_equal(p.n, want_n);
        /* stops come first, then the new config in priority order */
        size_t i = 0;
        while (i < p.n && p.v[i].action == CR_PLAN_STOP)
            i++;
        for (size_t j = i; j < p.n; j++) {
            assert_int_not_equal(p.v[j].action, CR_PLAN_STOP);
            if (j > i)
                assert_true(b.services[p.v[j - 1].conf].priority <=
                            b.services[p.v[j].conf].priority);
        }
        cr_plan_free(&p);
        cr_config_free(&a);
        cr_config_free(&b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_key),
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_states_and_mixes),
        cmocka_unit_test(test_spec_only),
        cmocka_unit_test(test_errors_notices_and_nothing),
        cmocka_unit_test(test_long_key_list),
        cmocka_unit_test(test_running_globals),
        cmocka_unit_test(test_include),
        cmocka_unit_test(test_random_pairs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
