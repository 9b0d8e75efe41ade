/* services.ini: every key type, every error message (FILE:LINE: key: text), includes, long
 * lines, duplicates, expansions, and the checks that look at a real (temporary) rootfs. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "tmpdir.h"

#include "cgroup/probe.h"
#include "config/config.h"

static struct cr_cgroup_caps caps_all = {
    .version = 2, .memory = true, .memory_high = true, .memory_swap = true, .cpu_max = true,
    .cpu_weight = true, .pids = true, .io_weight = true, .io_weight_file = "io.weight",
};
static const struct cr_cgroup_caps *caps = &caps_all;

static int setup(void **state)
{
    (void)state;
    if (tmpdir_make("test_config") < 0)
        return -1;
    mk("rootfs");
    mk("rootfs/bin");
    mk("rootfs/etc");
    mk("rootfs/usr");
    mk("rootfs/usr/bin");
    mk("rootfs/bin/adir");
    put("rootfs/bin/busybox", "#!/bin/true\n", 0755);
    put("rootfs/bin/noexec", "data\n", 0644);
    ln("/bin/busybox", "rootfs/bin/sh");           /* absolute: must resolve in the rootfs */
    ln("busybox", "rootfs/bin/sleep");
    ln("../../bin/busybox", "rootfs/usr/bin/env");
    ln("/usr/bin/python3", "rootfs/bin/hostonly");  /* exists on the host only */
    ln("/bin/gone", "rootfs/bin/dangling");
    put("rootfs/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"
                             "www:x:33:33:www:/var/www:/bin/sh\n"
                             "bad:x:notanumber:1::/:/bin/sh\n"
                             "huge:x:4294967296:1::/:/bin/sh\n"
                             "big:x:77:4294967296::/:/bin/sh\n"
                             "member:x:78:78::/:/bin/sh\n", 0644);
    put("rootfs/etc/group", "root:x:0:\nwww:x:33:\nlog:x:4:www,other\nstaff:x:50:\n"
                            "hugegrp:x:4294967296:member\n", 0644);
    put("notadir", "", 0644);
    mk("data");
    mk("conf.d");
    put("env.list", "# comment\nexport FROM_FILE=1\nQUOTED=\"a b\"\n\nSHARED=file\n", 0644);
    put("env.bad", "GOOD=1\nnot valid\n", 0644);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return tmpdir_remove();
}

/* "$" in s becomes dir. */
static char *subst(const char *s)
{
    static char out[8][24576];
    static int slot;
    char *o = out[slot++ % 8], *w = o;
    for (; *s && w < o + 24000; s++) {
        if (*s == '$') {
            w += sprintf(w, "%s", dir);
        } else {
            *w++ = *s;
        }
    }
    *w = '\0';
    return o;
}

static bool no_machine;      /* what --check does without the machine's checks (fast) */

static int load(const char *text, struct cr_config *cfg)
{
    put("main.ini", subst(text), 0644);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/main.ini", dir);
    struct cr_config_opts opts = {.caps = caps, .no_machine_checks = no_machine};
    return cr_config_load(path, &opts, cfg);
}

static void dump(const struct cr_errlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        print_error("  got: %s\n", l->v[i]);
}

/* Loads text and checks the errors are exactly the given ones ("$" = the test dir). */
static void expect_errors(const char *text, ...)
{
    struct cr_config cfg;
    int r = load(text, &cfg);
    va_list ap;
    va_start(ap, text);
    size_t n = 0;
    for (const char *want; (want = va_arg(ap, const char *)); n++) {
        const char *w = subst(want);
        bool found = false;
        for (size_t i = 0; i < cfg.errors.n; i++)
            found |= !strcmp(cfg.errors.v[i], w);
        if (!found) {
            print_error("missing: %s\n", w);
            dump(&cfg.errors);
            fail();
        }
    }
    va_end(ap);
    if (cfg.errors.n != n)
        dump(&cfg.errors);
    assert_int_equal(cfg.errors.n, n);
    assert_int_equal(r, n ? -EINVAL : 0);
    cr_config_free(&cfg);
}

#define SVC "[service:t]\nrootfs = %(here)s/rootfs\ncommand = sleep 1\n"

/* Loads text expecting no error; the caller frees cfg. */
static const struct cr_service *load_ok(const char *text, struct cr_config *cfg)
{
    int r = load(text, cfg);
    if (r)
        dump(&cfg->errors);
    assert_int_equal(r, 0);
    assert_true(cfg->nservices > 0);
    return &cfg->services[0];
}

/* ---- valid files and defaults ------------------------------------------------------------- */

static void test_defaults(void **state)
{
    (void)state;
    struct cr_config cfg;
    const struct cr_service *s = load_ok(SVC, &cfg);
    assert_int_equal(cfg.nservices, 1);
    assert_string_equal(s->name, "t");
    assert_string_equal(s->program, "t");
    assert_string_equal(s->section, "service:t");
    assert_int_equal(s->line, 1);
    assert_int_equal(s->key_line[CR_K_COMMAND], 3);
    assert_int_equal(s->key_line[CR_K_AUTOSTART], 0);
    assert_true(s->autostart);
    assert_int_equal(s->priority, 999);
    assert_int_equal(s->autorestart, CR_RESTART_UNEXPECTED);
    assert_true(cr_codeset_has(&s->exitcodes, 0));
    assert_false(cr_codeset_has(&s->exitcodes, 2));
    assert_int_equal(s->startsecs, 1000);
    assert_int_equal(s->startretries, 3);
    assert_int_equal(s->stopsignal, 15);
    assert_int_equal(s->stopwaitsecs, 10000);
    assert_int_equal(s->restart_delay, 0);
    assert_int_equal(s->restart_delay_max, 30000);
    assert_int_equal(s->restart_reset_after, 10000);
    assert_int_equal(s->max_restarts, 0);
    assert_int_equal(s->restart_window, 60000);
    assert_int_equal(s->numprocs, 1);
    assert_int_equal(s->umask, -1);
    assert_false(s->redirect_stderr);
    assert_string_equal(s->stdout_logfile, "AUTO");
    assert_string_equal(s->stderr_logfile, "AUTO");
    assert_int_equal(s->stdout_logfile_maxbytes, 50 << 20);
    assert_int_equal(s->stdout_logfile_backups, 10);
    assert_int_equal(s->namespaces, CR_NS_DEFAULT);
    assert_int_equal(s->memory_max, -1);
    assert_int_equal(s->cpu_max.quota_us, -1);
    assert_int_equal(s->pids_max, 2048);      /* podman's: a fork bomb stays inside */
    assert_false(s->read_only);
    /* security defaults: podman's 11 capabilities, no_new_privs, the default filter, the
     * OCI masked and read-only paths */
    assert_int_equal(s->spec.caps, 0x800405fbULL);
    assert_int_equal(s->spec.ambient, 0);
    assert_true(s->spec.no_new_privs);
    assert_int_equal(s->spec.seccomp_fd, 6);
    assert_int_equal(s->spec.nmasked, 12);
    assert_string_equal(s->spec.masked[3], "/proc/kcore");
    assert_int_equal(s->spec.nreadonly, 5);
    assert_string_equal(s->spec.readonly[3], "/proc/sys");
    /* global defaults */
    assert_string_equal(cfg.global.cgroup_root, "corral");
    assert_string_equal(cfg.global.control_socket, "/run/corral/control.sock");
    assert_string_equal(cfg.global.log_dir, "/var/log/corral");
    assert_string_equal(cfg.global.logfile, "NONE");
    /* the spec */
    const struct cr_spec *sp = &s->spec;
    assert_string_equal(sp->name, "t");
    assert_string_equal(sp->hostname, "t");
    assert_string_equal(sp->rootfs, subst("$/rootfs"));
    assert_false(sp->read_only);
    assert_string_equal(sp->exec, "/bin/sleep");
    assert_int_equal(sp->argc, 2);
    assert_string_equal(sp->argv[0], "sleep");
    assert_string_equal(sp->argv[1], "1");
    assert_int_equal(sp->uid, 0);
    assert_int_equal(sp->gid, 0);
    assert_int_equal(sp->ngroups, 1);
    assert_string_equal(cr_spec_get_env(sp, "HOME"), "/root");
    assert_non_null(cr_spec_get_env(sp, "PATH"));
    assert_int_equal(sp->nenv, 2);
    cr_config_free(&cfg);
}

static void test_host_root_default(void **state)
{
    (void)state;
    struct cr_config cfg;
    const struct cr_service *s = load_ok("[service:h]\ncommand = /bin/true\n", &cfg);
    assert_string_equal(s->section, "service:h");
    assert_string_equal(s->spec.rootfs, "/");
    assert_true(s->spec.read_only);             /* the host's / is bound read-only */
    assert_string_equal(s->spec.exec, "/bin/true");
    assert_int_equal(s->namespaces, CR_NS_DEFAULT);
    cr_config_free(&cfg);
    /* [program:x] means what it means to supervisord: the host as it is, the supervisor's
     * environment, stdin a pipe, no seccomp filter, every capability, every device */
    setenv("SXD_FROM_HOST", "yes", 1);
    s = load_ok("[supervisord]\nenvironment = SXD_GLOBAL=\"g 1\",SXD_FROM_HOST=over\n"
                "[program:h]\ncommand = /bin/true\nenvironment = SXD_OWN=o\n", &cfg);
    unsetenv("SXD_FROM_HOST");
    assert_null(s->spec.rootfs);
    assert_false(s->spec.read_only);
    assert_int_equal(s->spec.namespaces, 0);
    assert_null(s->spec.hostname);
    assert_string_equal(s->stdin_mode, "pipe");
    assert_true(s->inherit_environment);
    assert_false(s->confine_devices);
    assert_false(s->no_new_privileges);
    assert_string_equal(s->seccomp, "unconfined");
    assert_string_equal(cr_spec_get_env(&s->spec, "SXD_GLOBAL"), "g 1");
    assert_string_equal(cr_spec_get_env(&s->spec, "SXD_FROM_HOST"), "over");
    assert_string_equal(cr_spec_get_env(&s->spec, "SXD_OWN"), "o");
    assert_string_equal(cr_spec_get_env(&s->spec, "SUPERVISOR_ENABLED"), "1");
    assert_string_equal(cr_spec_get_env(&s->spec, "SUPERVISOR_PROCESS_NAME"), "h");
    assert_string_equal(cr_spec_get_env(&s->spec, "SUPERVISOR_GROUP_NAME"), "h");
    assert_string_equal(cr_spec_get_env(&s->spec, "PATH"), getenv("PATH"));
    assert_null(cr_spec_get_env(&s->spec, "SUPERVISOR_SERVER_URL"));   /* no server */
    cr_config_free(&cfg);
    /* SUPERVISOR_SERVER_URL: serverurl, else the unix socket, else the inet address */
    s = load_ok("[inet_http_server]\nport = *:9001\n[program:h]\ncommand = /bin/true\n", &cfg);
    assert_string_equal(cr_spec_get_env(&s->spec, "SUPERVISOR_SERVER_URL"),
                        "http://localhost:9001");
    cr_config_free(&cfg);
    s = load_ok("[inet_http_server]\nport = 127.0.0.1:9001\n[unix_http_server]\n"
                "file = /tmp/sxev.sock\n[program:h]\ncommand = /bin/true\n", &cfg);
    assert_string_equal(cr_spec_get_env(&s->spec, "SUPERVISOR_SERVER_URL"),
                        "unix:///tmp/sxev.sock");
    cr_config_free(&cfg);
    s = load_ok("[unix_http_server]\nfile = /tmp/sxev.sock\n[program:h]\ncommand = /bin/true\n"
                "serverurl = http://127.0.0.1:9002\n", &cfg);
    assert_string_equal(cr_spec_get_env(&s->spec, "SUPERVISOR_SERVER_URL"),
                        "http://127.0.0.1:9002");
    cr_config_free(&cfg);
    /* [service:x] starts clean and keeps every default confinement */
    s = load_ok("[supervisord]\nenvironment = SXD_GLOBAL=g\n[service:h]\ncommand = /bin/true\n",
                &cfg);
    assert_null(cr_spec_get_env(&s->spec, "SXD_GLOBAL"));
    assert_null(cr_spec_get_env(&s->spec, "SUPERVISOR_ENABLED"));
    assert_string_equal(s->stdin_mode, "null");
    assert_true(s->confine_devices);
    assert_true(s->no_new_privileges);
    assert_string_equal(s->seccomp, "default");
    cr_config_free(&cfg);
    /* a [program:x] that asks for a container is a [service:x] */
    s = load_ok("[program:h]\ncommand = /bin/true\nread_only = false\n", &cfg);
    assert_string_equal(s->spec.rootfs, "/");
    assert_int_equal(s->namespaces, CR_NS_DEFAULT);
    assert_string_equal(s->seccomp, "default");
    assert_string_equal(s->stdin_mode, "null");
    cr_config_free(&cfg);
    s = load_ok("[program:h]\ncommand = true\nnamespaces = pid,net\n", &cfg);
    assert_null(s->spec.rootfs);                 /* no mount namespace: no filesystem setup */
    assert_null(s->spec.hostname);
    assert_int_equal(s->spec.namespaces, CR_NS_PID | CR_NS_NET);
    cr_config_free(&cfg);
}


/* network and namespaces say one thing; [program:] keeps its net namespace with lo only. */
static void test_network_modes(void **state)
{
    (void)state;
    struct cr_config cfg;
    const struct cr_service *s = load_ok(SVC, &cfg);
    assert_int_equal(s->net_mode, CR_NETMODE_BRIDGE);
    assert_int_equal(s->nnets, 1);
    assert_string_equal(s->nets[0]->name, "default");
    assert_null(s->nets[0]->file);               /* implicit */
    assert_int_equal(s->nets[0]->net4.prefix, -1);  /* chosen when first set up */
    assert_true(s->namespaces & CR_NS_NET);
    assert_false(s->spec.namespaces & CR_NS_NET);   /* the supervisor makes it, not init */
    cr_config_free(&cfg);
    s = load_ok("[program:t]\nrootfs = %(here)s/rootfs\ncommand = sleep 1\n", &cfg);
    assert_int_equal(s->net_mode, CR_NETMODE_NONE);
    assert_true(s->spec.namespaces & CR_NS_NET);
    cr_config_free(&cfg);
    s = load_ok(SVC "namespaces = pid,mount\n", &cfg);
    assert_int_equal(s->net_mode, CR_NETMODE_HOST);
    assert_false(s->spec.namespaces & CR_NS_NET);
    cr_config_free(&cfg);
    s = load_ok(SVC "network = host\n", &cfg);
    assert_int_equal(s->net_mode, CR_NETMODE_HOST);
    assert_false(s->spec.namespaces & CR_NS_NET);
    assert_true(s->spec.namespaces & CR_NS_MOUNT);
    cr_config_free(&cfg);
    s = load_ok("[network:front]\nsubnet = 10.201.1.0/24\nsubnet6 = fd00:201:1::/64\n"
                "[network:back]\ninternal = yes\nbridge = sxn-back\n"
                SVC "network = bridge:front, bridge:back\nports = 18080:80, 127.0.0.1:15353:53/udp\n"
                "[service:u]\nrootfs = %(here)s/rootfs\ncommand = sleep 1\nnetwork = service:t\n"
                "[service:c]\nrootfs = %(here)s/rootfs\ncommand = sleep 1\nnetwork = cni:mynet\n",
                &cfg);
    assert_int_equal(s->nnets, 2);
    assert_string_equal(s->nets[0]->name, "front");
    assert_int_equal(s->nets[0]->net4.addr, 0x0AC90100u);
    assert_int_equal(s->nets[0]->net6.prefix, 64);
    assert_string_equal(s->nets[1]->name, "back");
    assert_true(s->nets[1]->internal);
    assert_string_equal(s->nets[1]->bridge, "sxn-back");
    assert_int_equal(s->nport, 2);
    assert_int_equal(s->port[1].proto, CR_PROTO_UDP);
    assert_int_equal(s->port[1].ip, 0x7F000001u);
    assert_int_equal(cfg.nnetworks, 3);          /* front, back, the implicit default */
    const struct cr_service *u = cr_config_find(&cfg, "u");
    assert_int_equal(u->net_mode, CR_NETMODE_SERVICE);
    assert_string_equal(u->join, "t");
    assert_int_equal(u->depends_on.n, 1);                 /* implicit: t first */
    assert_string_equal(u->depends_on.v[0], "t");
    assert_false(u->spec.namespaces & CR_NS_NET);         /* joins, creates none */
    const struct cr_service *c = cr_config_find(&cfg, "c");
    assert_int_equal(c->net_mode, CR_NETMODE_CNI);
    assert_string_equal(c->join, "mynet");
    cr_config_free(&cfg);
    /* [network:default] replaces the implicit one */
    s = load_ok("[network:default]\nsubnet = 10.201.2.0/24\n" SVC, &cfg);
    assert_int_equal(cfg.nnetworks, 1);
    assert_int_equal(s->nets[0]->net4.addr, 0x0AC90200u);
    cr_config_free(&cfg);
}

static void test_network_errors(void **state)
{
    (void)state;
    expect_errors(SVC "network = bridge:nope\n",
                  "$/main.ini:4: network: no network 'nope' (add a [network:nope] section)", NULL);
    expect_errors(SVC "network = bridged\n",
                  "$/main.ini:4: network: 'bridged' is not bridge, bridge:NAME, none, host, "
                  "service:NAME or cni:NAME", NULL);
    expect_errors(SVC "network = host, bridge\n",
                  "$/main.ini:4: network: 'bridge' cannot be combined with host (only bridge "
                  "networks make a list)", NULL);
    expect_errors(SVC "network = bridge, bridge:default\n",
                  "$/main.ini:4: network: 'default' is given twice", NULL);
    expect_errors(SVC "namespaces = pid,mount,net\nnetwork = host\n",
                  "$/main.ini:5: network: host means no net namespace, but namespaces has net "
                  "(take net out of namespaces, or drop network = host)", NULL);
    expect_errors(SVC "namespaces = pid,mount\nnetwork = bridge\n",
                  "$/main.ini:5: network: bridge needs the net namespace (add net to "
                  "namespaces)", NULL);
    expect_errors(SVC "network = service:t\n",
                  "$/main.ini:4: network: a service cannot join its own network namespace", NULL);
    expect_errors(SVC "network = service:nobody\n",
                  "$/main.ini:4: network: service:nobody: no service 'nobody'", NULL);
    expect_errors(SVC "network = service:u\n"
                  "[service:u]\nrootfs = %(here)s/rootfs\ncommand = sleep 1\nnetwork = service:t\n",
                  "$/main.ini:4: network: service:u: a cycle of service: networks (t joins u, "
                  "which leads back)",
                  "$/main.ini:8: network: service:t: a cycle of service: networks (u joins t, "
                  "which leads back)", NULL);
    expect_errors(SVC "network = service:u\nnamespaces = pid,mount,net,user\n"
                  "uid_map = 0:100000:65536\ngid_map = 0:100000:65536\n"
                  "[service:u]\nrootfs = %(here)s/rootfs\ncommand = sleep 1\n",
                  "$/main.ini:4: network: service:u: not with a user namespace of its own (it "
                  "could not enter u's network namespace)", NULL);
    expect_errors(SVC "network = service:u\n"
                  "[service:u]\nrootfs = %(here)s/rootfs\ncommand = sleep 1\nnetwork = host\n",
                  "$/main.ini:4: network: service:u: u has no net namespace of its own (network "
                  "= host)", NULL);
    expect_errors("[network:a]\nsubnet = 10.201.0.0/16\n[network:b]\nsubnet = 10.201.3.0/24\n"
                  "subnet6 = fd00::/64\nbridge = a/b\n[network:c]\nsubnet = 10.201.3.4/24\n"
                  "subnet6 = fd00:0:0:0:1::/80\n[network:d]\nsubnet6 = fd00::/8\n",
                  "$/main.ini:4: subnet: overlaps the subnet of [network:a] at $/main.ini:1",
                  "$/main.ini:6: bridge: 'a/b' is not an interface name (1 to 15 characters, no "
                  "'/', ':' or blank)",
                  "$/main.ini:8: subnet: '10.201.3.4/24' has host bits set (the subnet starts "
                  "at a multiple of 2^8)",
                  "$/main.ini:9: subnet6: overlaps the subnet6 of [network:b] at $/main.ini:3",
                  "$/main.ini:11: subnet6: 'fd00::/8': the prefix length must be 16 to 120",
                  NULL);
    expect_errors("[network:a]\nbridge = sxnbr\n[network:b]\nbridge = sxnbr\n",
                  "$/main.ini:4: bridge: 'sxnbr' is the bridge of [network:a] too", NULL);
    expect_errors("[network:a]\n[network:a]\n",
                  "$/main.ini:2: [network:a]: defined twice (first at $/main.ini:1)", NULL);
    expect_errors("[network:a]\ncommand = x\n",
                  "$/main.ini:2: command: not allowed in [network:a]", NULL);
    /* ports */
    expect_errors(SVC "ports = 8080\n",
                  "$/main.ini:4: ports: '8080' is not [IP:]HOST:CONTAINER[/tcp|/udp] (e.g. "
                  "8080:80, 127.0.0.1:5353:53/udp)", NULL);
    expect_errors(SVC "network = none\nports = 8080:80\n",
                  "$/main.ini:5: ports: needs a bridge or cni network (network = none)", NULL);
    expect_errors("[network:i]\ninternal = true\n" SVC "network = bridge:i\nports = 8080:80\n",
                  "$/main.ini:7: ports: its networks are all internal: nothing can reach a "
                  "published port", NULL);
    expect_errors(SVC "ports = 8080:80\nports = 127.0.0.1:8080:81\n"
                  "[service:u]\nrootfs = %(here)s/rootfs\ncommand = sleep 1\nports = 8080:82/udp,"
                  " 8080:83\n",
                  "$/main.ini:5: ports: '127.0.0.1:8080:81' clashes with 8080->80/tcp of t (the "
                  "same service)",
                  "$/main.ini:9: ports: '8080:83' clashes with 8080->80/tcp of t", NULL);
    expect_errors("[service:w]\nrootfs = %(here)s/rootfs\ncommand = sleep 1\nnumprocs = 2\n"
                  "process_name = w%(process_num)d\nports = 8080:80\n",
                  "$/main.ini:6: ports: '8080:80' clashes with 8080->80/tcp of w0 (another copy "
                  "of numprocs: publish one port per copy, e.g. 808%(process_num)d:80)", NULL);
    expect_errors("[service:w]\nrootfs = %(here)s/rootfs\ncommand = sleep 1\nnumprocs = 2\n"
                  "process_name = w%(process_num)d\nports = 808%(process_num)d:80\n", NULL);
    /* more services on a network than it has addresses: refused, not left failing at start */
    expect_errors("[network:s]\nsubnet = 10.201.4.0/29\n[service:w]\nrootfs = %(here)s/rootfs\n"
                  "command = sleep 1\nnumprocs = 6\nprocess_name = w%(process_num)d\n"
                  "network = bridge:s\n",
                  "$/main.ini:2: subnet: 6 services are on it, its subnet has 5 addresses (a /29)",
                  NULL);
    expect_errors("[network:s]\nsubnet = 10.201.4.0/29\n[service:w]\nrootfs = %(here)s/rootfs\n"
                  "command = sleep 1\nnumprocs = 5\nprocess_name = w%(process_num)d\n"
                  "network = bridge:s\n", NULL);
    expect_errors("[service:w]\nrootfs = %(here)s/rootfs\ncommand = sleep 1\nnumprocs = 254\n"
                  "process_name = w%(process_num)d\n",
                  "$/main.ini: the default network: 254 services are on it, its subnet has 253 "
                  "addresses (a /24); set a larger subnet in [network:default]", NULL);
    expect_errors("[service:w]\nrootfs = %(here)s/rootfs\ncommand = sleep 1\nnumprocs = 254\n"
                  "process_name = w%(process_num)d\nnetwork = none\n", NULL);
}

static void test_network_host_route(void **state)
{
    (void)state;
    /* A route of the host (one that exists here: each line of /proc/net/route with a mask)
     * makes an error of a subnet on it; with --check's quick mode nothing is looked at. */
    FILE *f = fopen("/proc/net/route", "r");
    assert_non_null(f);
    char line[512], dev[64];
    unsigned dst = 0, mask = 0;
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = sscanf(line, "%63s %x %*x %*x %*d %*d %*d %x", dev, &dst, &mask) == 3 && mask &&
                __builtin_popcount(mask) >= 8 && __builtin_popcount(mask) <= 30;
    fclose(f);
    if (!found)
        skip();
    uint32_t a = __builtin_bswap32(dst);
    char text[512], want[512];
    snprintf(text, sizeof text, "[network:n]\nsubnet = %u.%u.%u.%u/%d\n", a >> 24,
             (a >> 16) & 255, (a >> 8) & 255, a & 255, __builtin_popcount(mask));
    snprintf(want, sizeof want, "$/main.ini:2: subnet: collides with the host's route to "
             "%u.%u.%u.%u/%d on %s (choose another subnet)", a >> 24, (a >> 16) & 255,
             (a >> 8) & 255, a & 255, __builtin_popcount(mask), dev);
    expect_errors(text, want, NULL);
    no_machine = true;
    expect_errors(text, NULL);
    no_machine = false;
}

static void test_every_type(void **state)
{
    (void)state;
    struct cr_config cfg;
    const struct cr_service *s = load_ok(
        "[supervisor]\ncgroup_root = apps/corral-2\nlogfile = auto\nlogfile_maxbytes = 1KB\n"
        "[service:all]\n"
        "Command = \"/bin/busybox\" 'a b' c\\ d \"e\\\"f\"\n"
        "rootfs = %(here)s/rootfs\n"
        "autostart = no\n"                          /* bool */
        "startsecs = 1.5s\n"                        /* duration */
        "stopwaitsecs = 2m\n"
        "restart_delay = 250ms\n"
        "restart_delay_max = 1h\n"
        "memory_max = 100MB\n"                      /* size */
        "memory_high = 512K\n"
        "memory_swap_max = max\n"
        "stopsignal = SIGINT\n"                     /* signal */
        "exitcodes = 0, 2,143\n"                    /* codes */
        "priority = -5\n"                           /* int */
        "pids_max = max\n"
        "cpu_weight = 10000\n"
        "io_weight = 1\n"
        "restart = always\n"                        /* restart policy, by its alias */
        "groups = log, staff\n"                     /* list */
        "  root\n"
        "bind = %(here)s/data:/data:ro\n"           /* items */
        "bind = %(here)s/data:/rw\n"
        "tmpfs = /tmp:64M\n"
        "  /run\n"
        "environment = A=\"1, 2\",B='x=y',C=plain  ,  D=\"q\\\"uote\"\n"   /* env */
        "   E=5\n"
        "environment = F=6\n"
        "namespaces = pid, mount,uts,ipc,net,cgroup,user\n"   /* namespaces */
        "uid_map = 0:100000:65536\n"                /* id maps (items) */
        "  70000:300000:10\n"
        "gid_map = 0:100000:65536\n"
        "umask = 027\n"                             /* octal */
        "cpu_max = 150%\n"                          /* cpu quota */
        "stdout_logfile = none\n"                   /* log file */
        "stderr_logfile = /var/log/x.err\n"
        "user = www\n"
        "group = staff\n"
        "directory = /srv\n"
        "hostname = box\n"
        "read_only = on\n",
        &cfg);
    assert_string_equal(cfg.global.cgroup_root, "apps/corral-2");
    assert_string_equal(cfg.global.logfile, "AUTO");
    assert_int_equal(cfg.global.logfile_maxbytes, 1024);
    assert_int_equal(s->spec.argc, 4);
    assert_string_equal(s->spec.argv[0], "/bin/busybox");
    assert_string_equal(s->spec.argv[1], "a b");
    assert_string_equal(s->spec.argv[2], "c d");
    assert_string_equal(s->spec.argv[3], "e\"f");
    assert_false(s->autostart);
    assert_int_equal(s->startsecs, 1500);
    assert_int_equal(s->stopwaitsecs, 120000);
    assert_int_equal(s->restart_delay, 250);
    assert_int_equal(s->restart_delay_max, 3600000);
    assert_int_equal(s->memory_max, 100 << 20);
    assert_int_equal(s->memory_high, 512 << 10);
    assert_int_equal(s->memory_swap_max, INT64_MAX);
    assert_int_equal(s->stopsignal, 2);
    assert_true(cr_codeset_has(&s->exitcodes, 143));
    assert_true(cr_codeset_has(&s->exitcodes, 2));
    assert_false(cr_codeset_has(&s->exitcodes, 1));
    assert_int_equal(s->priority, -5);
    assert_int_equal(s->pids_max, INT64_MAX);
    assert_int_equal(s->cpu_weight, 10000);
    assert_int_equal(s->io_weight, 1);
    assert_int_equal(s->autorestart, CR_RESTART_ALWAYS);
    assert_int_equal(s->groups.n, 3);
    assert_string_equal(s->groups.v[2], "root");
    assert_int_equal(s->groups.line[2], 24);
    assert_int_equal(s->bind.n, 2);
    assert_int_equal(s->tmpfs.n, 2);
    assert_int_equal(s->environment.n, 6);
    assert_string_equal(s->environment.v[0], "A=1, 2");
    assert_string_equal(s->environment.v[1], "B=x=y");
    assert_string_equal(s->environment.v[2], "C=plain");
    assert_string_equal(s->environment.v[3], "D=q\"uote");
    assert_string_equal(s->environment.v[4], "E=5");
    assert_string_equal(s->environment.v[5], "F=6");
    assert_int_equal(s->namespaces, CR_NS_DEFAULT | CR_NS_USER);
    assert_string_equal(s->uid_map_text, "0 100000 65536\n70000 300000 10\n");
    assert_string_equal(s->gid_map_text, "0 100000 65536\n");
    assert_int_equal(s->umask, 027);
    assert_int_equal(s->cpu_max.quota_us, 150000);
    assert_int_equal(s->cpu_max.period_us, 100000);
    assert_string_equal(s->stdout_logfile, "NONE");
    assert_string_equal(s->stderr_logfile, "/var/log/x.err");
    /* and the spec */
    const struct cr_spec *sp = &s->spec;
    assert_string_equal(sp->exec, "/bin/busybox");
    assert_int_equal(sp->uid, 33);
    assert_int_equal(sp->gid, 50);
    assert_int_equal(sp->ngroups, 3);
    assert_int_equal(sp->groups[0], 4);
    assert_int_equal(sp->groups[1], 50);
    assert_int_equal(sp->groups[2], 0);
    assert_string_equal(cr_spec_get_env(sp, "HOME"), "/var/www");
    assert_string_equal(cr_spec_get_env(sp, "A"), "1, 2");
    assert_string_equal(sp->directory, "/srv");
    assert_string_equal(sp->hostname, "box");
    assert_true(sp->read_only);
    assert_int_equal(sp->umask, 027);
    assert_int_equal(sp->nbinds, 2);
    assert_string_equal(sp->binds[0].src, subst("$/data"));
    assert_string_equal(sp->binds[0].dst, "/data");
    assert_true(sp->binds[0].ro);
    assert_false(sp->binds[1].ro);
    assert_int_equal(sp->ntmpfs, 2);
    assert_int_equal(sp->tmpfs[0].size, 64 << 20);
    assert_int_equal(sp->tmpfs[1].size, 0);
    assert_int_equal(sp->autorestart, CR_RESTART_ALWAYS);
    assert_int_equal(sp->startsecs_ms, 1500);
    assert_int_equal(sp->stopsignal, 2);
    cr_config_free(&cfg);
}

static void test_cpu_max_forms(void **state)
{
    (void)state;
    struct cr_config cfg;
    const struct cr_service *s = load_ok(SVC "cpu_max = 50000 200000\n", &cfg);
    assert_int_equal(s->cpu_max.quota_us, 50000);
    assert_int_equal(s->cpu_max.period_us, 200000);
    cr_config_free(&cfg);
    s = load_ok(SVC "cpu_max = max\n", &cfg);
    assert_int_equal(s->cpu_max.quota_us, CR_CPU_UNLIMITED);
    cr_config_free(&cfg);
    s = load_ok(SVC "cpu_max = 12.5%\n", &cfg);
    assert_int_equal(s->cpu_max.quota_us, 12500);
    cr_config_free(&cfg);
    expect_errors(SVC "cpu_max = lots\n",
                  "$/main.ini:4: cpu_max: 'lots' is not 150%, QUOTA PERIOD (microseconds) or max",
                  NULL);
    expect_errors(SVC "cpu_max = 50000 10\n",
                  "$/main.ini:4: cpu_max: period '10' is not 1000 to 1000000 microseconds", NULL);
    expect_errors(SVC "cpu_max = 0.5%\n",
                  "$/main.ini:4: cpu_max: '0.5%' gives a quota under 1000 microseconds", NULL);
    expect_errors(SVC "cpu_max = 50% 100000\n",
                  "$/main.ini:4: cpu_max: '50% 100000' is not a percentage of one CPU (150%)",
                  NULL);
    expect_errors(SVC "cpu_max = 1 2 3\n",
                  "$/main.ini:4: cpu_max: '1 2 3' is not 150%, QUOTA PERIOD (microseconds) or max",
                  NULL);
}

/* ---- every value error ---------------------------------------------------------------------- */

static void test_value_errors(void **state)
{
    (void)state;
    expect_errors(SVC "autostart = maybe\n",
                  "$/main.ini:4: autostart: 'maybe' is not true/yes/on/1 or false/no/off/0", NULL);
    expect_errors(SVC "startsecs = soon\n",
                  "$/main.ini:4: startsecs: 'soon' is not a duration (500ms, 10s, 2m, 1h)", NULL);
    expect_errors(SVC "memory_max = 12Q\n",
                  "$/main.ini:4: memory_max: '12Q' is not a size (512K, 100MB, 2G, max)", NULL);
    expect_errors(SVC "stopsignal = SIGNOPE\n",
                  "$/main.ini:4: stopsignal: 'SIGNOPE' is not a signal (TERM, SIGINT, 9)", NULL);
    expect_errors(SVC "exitcodes = 0,256\n",
                  "$/main.ini:4: exitcodes: '0,256' is not a list of exit codes 0-255", NULL);
    expect_errors(SVC "priority = 1e3\n",
                  "$/main.ini:4: priority: '1e3' is not an integer from -100000 to 100000", NULL);
    expect_errors(SVC "pids_max = 0\n",
                  "$/main.ini:4: pids_max: '0' is not an integer from 1 to 4194304 or max", NULL);
    expect_errors(SVC "cpu_weight = 10001\n",
                  "$/main.ini:4: cpu_weight: '10001' is not an integer from 1 to 10000", NULL);
    expect_errors(SVC "autorestart = sometimes\n",
                  "$/main.ini:4: autorestart: 'sometimes' is not false, unexpected or true (no, "
                  "on-failure, always)", NULL);
    expect_errors(SVC "environment = 1A=x\n",
                  "$/main.ini:4: environment: expected NAME=value at '1A=x'", NULL);
    expect_errors(SVC "environment = A=\"open\n",
                  "$/main.ini:4: environment: A: unterminated \" quote", NULL);
    expect_errors(SVC "environment = A=\"x\"y\n",
                  "$/main.ini:4: environment: A: expected ',' after the quoted value", NULL);
    expect_errors(SVC "namespaces = pid,time\n",
                  "$/main.ini:4: namespaces: unknown namespace 'time' (pid, mount, uts, ipc, net, "
                  "cgroup, user)", NULL);
    expect_errors(SVC "umask = 8\n", "$/main.ini:4: umask: '8' is not an octal umask (022)", NULL);
    expect_errors(SVC "stdout_logfile = out.log\n",
                  "$/main.ini:4: stdout_logfile: 'out.log' is not AUTO, NONE or an absolute path",
                  NULL);
    expect_errors(SVC "directory = srv\n",
                  "$/main.ini:4: directory: 'srv' is not an absolute path", NULL);
    expect_errors(SVC "user =\n", "$/main.ini:4: user: empty value", NULL);
    expect_errors(SVC "bind =\n", "$/main.ini:4: bind: empty value", NULL);
    expect_errors("[supervisor]\ncgroup_root = /abs\n" SVC,
                  "$/main.ini:2: cgroup_root: '/abs' is not a relative cgroup path (words of A-Z "
                  "a-z 0-9 _ . - joined by /)", NULL);
    expect_errors("[supervisor]\ncgroup_root = a/../b\n" SVC,
                  "$/main.ini:2: cgroup_root: 'a/../b' is not a relative cgroup path (words of A-Z "
                  "a-z 0-9 _ . - joined by /)", NULL);
    expect_errors("[supervisor]\nlogfile_backups = -1\n" SVC,
                  "$/main.ini:2: logfile_backups: '-1' is not an integer from 0 to 1000", NULL);
    expect_errors(SVC "stopasgroup = perhaps\n",
                  "$/main.ini:4: stopasgroup: 'perhaps' is not true/yes/on/1 or false/no/off/0",
                  NULL);
    expect_errors(SVC "numprocs = 0\n",
                  "$/main.ini:4: numprocs: '0' is not an integer from 1 to 1000", NULL);
}

static void test_command_errors(void **state)
{
    (void)state;
    expect_errors("[service:t]\nrootfs = %(here)s/rootfs\n",
                  "$/main.ini:1: [service:t]: command is missing", NULL);
    expect_errors("[service:t]\nrootfs = %(here)s/rootfs\ncommand = sh -c 'oops\n",
                  "$/main.ini:3: command: unterminated ' quote", NULL);
    expect_errors("[service:t]\nrootfs = %(here)s/rootfs\ncommand = nothere -x\n",
                  "$/main.ini:3: command: 'nothere' not found in PATH (/usr/local/sbin:"
                  "/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin) inside $/rootfs", NULL);
    expect_errors("[service:t]\nrootfs = %(here)s/rootfs\ncommand = /bin/noexec\n",
                  "$/main.ini:3: command: /bin/noexec: is not executable (inside $/rootfs)", NULL);
    expect_errors("[service:t]\nrootfs = %(here)s/rootfs\ncommand = /bin/adir\n",
                  "$/main.ini:3: command: /bin/adir: is a directory (inside $/rootfs)", NULL);
    expect_errors("[service:t]\nrootfs = %(here)s/rootfs\ncommand = /bin/dangling\n",
                  "$/main.ini:3: command: /bin/dangling: No such file or directory (inside "
                  "$/rootfs)", NULL);
    /* an absolute symlink resolves inside the rootfs, never on the host */
    expect_errors("[service:t]\nrootfs = %(here)s/rootfs\ncommand = hostonly\n",
                  "$/main.ini:3: command: 'hostonly' not found in PATH (/usr/local/sbin:"
                  "/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin) inside $/rootfs", NULL);
    /* PATH comes from the service's environment */
    expect_errors("[service:t]\nrootfs = %(here)s/rootfs\ncommand = env\nenvironment = PATH=/nope\n",
                  "$/main.ini:3: command: 'env' not found in PATH (/nope) inside $/rootfs", NULL);
    struct cr_config cfg;
    const struct cr_service *s =
        load_ok("[service:t]\nrootfs = %(here)s/rootfs\ncommand = sh -c true\n", &cfg);
    assert_string_equal(s->spec.exec, "/bin/sh");
    cr_config_free(&cfg);
    s = load_ok("[service:t]\nrootfs = %(here)s/rootfs\ncommand = env\n", &cfg);
    assert_string_equal(s->spec.exec, "/usr/bin/env");
    cr_config_free(&cfg);
    /* relative to directory */
    s = load_ok("[service:t]\nrootfs = %(here)s/rootfs\ndirectory = /bin\ncommand = ./sleep 1\n",
                &cfg);
    assert_string_equal(s->spec.exec, "/bin/./sleep");
    cr_config_free(&cfg);
    /* a command that a bind mount provides */
    s = load_ok("[service:t]\nrootfs = %(here)s/rootfs\nbind = %(here)s/rootfs/bin:/opt/tools\n"
                "command = /opt/tools/busybox\n", &cfg);
    assert_string_equal(s->spec.exec, "/opt/tools/busybox");
    cr_config_free(&cfg);
}

static void test_split_command(void **state)
{
    (void)state;
    char **argv;
    size_t argc;
    const char *err;
    assert_int_equal(cr_split_command("  a  'b c'\"d\"\\ e '' \"x\\$y\\n\"", &argv, &argc, &err),
                     0);
    assert_int_equal(argc, 4);
    assert_string_equal(argv[0], "a");
    assert_string_equal(argv[1], "b cd e");
    assert_string_equal(argv[2], "");
    assert_string_equal(argv[3], "x$y\\n");
    assert_null(argv[4]);
    for (size_t i = 0; i < argc; i++)
        free(argv[i]);
    free(argv);
    assert_int_equal(cr_split_command("   ", &argv, &argc, &err), -EINVAL);
    assert_string_equal(err, "empty command");
    assert_int_equal(cr_split_command("a \"b", &argv, &argc, &err), -EINVAL);
    assert_string_equal(err, "unterminated \" quote");
    assert_int_equal(cr_split_command("a \\", &argv, &argc, &err), -EINVAL);
    assert_string_equal(err, "a backslash at the end");
}

/* ---- structure: sections, keys, lines -------------------------------------------------------- */

static void test_structure_errors(void **state)
{
    (void)state;
    expect_errors("command = x\n" SVC, "$/main.ini:1: command: outside of any section", NULL);
    expect_errors(SVC "bogus = 1\n", "$/main.ini:4: bogus: unknown key", NULL);
    expect_errors(SVC "cgroup_root = x\n", "$/main.ini:4: cgroup_root: not allowed in [service:t]",
                  NULL);
    expect_errors("[supervisor]\ncommand = x\n" SVC,
                  "$/main.ini:2: command: not allowed in [supervisor]", NULL);
    expect_errors(SVC "[servce:x]\ncommand = y\n", "$/main.ini:4: [servce:x]: unknown section "
                  "(did you mean [service:NAME]?)", NULL);
    expect_errors(SVC "[supervisorr]\n", "$/main.ini:4: [supervisorr]: unknown section (did you "
                  "mean [supervisor]?)", NULL);
    expect_errors(SVC "[wat]\n", "$/main.ini:4: [wat]: unknown section", NULL);
    /* typos are errors everywhere, with the key meant */
    expect_errors(SVC "comand = x\n", "$/main.ini:4: comand: unknown key (did you mean command?)",
                  NULL);
    expect_errors("[program:t]\nrootfs = %(here)s/rootfs\ncommand = sleep 1\nautorestrat = 1\n",
                  "$/main.ini:4: autorestrat: unknown key (did you mean autorestart?)", NULL);
    expect_errors("[supervisord]\nnodaemonn = true\n" SVC,
                  "$/main.ini:2: nodaemonn: unknown key (did you mean nodaemon?)", NULL);
    expect_errors(SVC "[service:bad name]\ncommand = y\n",
                  "$/main.ini:4: [service:bad name]: the name must be 1 to 40 of A-Z a-z 0-9 _ . -",
                  NULL);
    expect_errors(SVC "[service:]\ncommand = y\n",
                  "$/main.ini:4: [service:]: the name must be 1 to 40 of A-Z a-z 0-9 _ . -", NULL);
    expect_errors(SVC "[service:a234567890123456789012345678901234567890x]\n",
                  "$/main.ini:4: [service:a234567890123456789012345678901234567890x]: the name "
                  "must be 1 to 40 of A-Z a-z 0-9 _ . -", NULL);
    expect_errors(SVC "[program:t]\ncommand = x\n",
                  "$/main.ini:4: [program:t]: defined twice (first at $/main.ini:1)", NULL);
    expect_errors("[supervisor]\n[supervisor]\n" SVC,
                  "$/main.ini:2: [supervisor]: defined twice (first at $/main.ini:1)", NULL);
    expect_errors(SVC "priority = 1\n  2\n",
                  "$/main.ini:5: priority: takes one value (indented lines continue only lists "
                  "and command)", NULL);
    expect_errors(SVC "just words\n", "$/main.ini:4: expected 'key = value', got 'just words'",
                  NULL);
    expect_errors(SVC "= 5\n", "$/main.ini:4: missing key name before '='", NULL);
    expect_errors(SVC "[service:x\n", "$/main.ini:4: [service:x: section header without ']'",
                  NULL);
    /* the keys after a broken header belong to no section: no follow-up errors */
    expect_errors(SVC "[service:x\ncommand = y\npriority = 1\n",
                  "$/main.ini:4: [service:x: section header without ']'", NULL);
    /* the continuation lines of a refused line go with it */
    expect_errors(SVC "bad line\n  x = y\n  more\npriority = z\n",
                  "$/main.ini:4: expected 'key = value', got 'bad line'",
                  "$/main.ini:7: priority: 'z' is not an integer from -100000 to 100000", NULL);
}

/* [eventlistener:x]: what supervisord refuses there is an error naming file, line and key;
 * its keys belong to it alone. */
static void test_eventlistener_errors(void **state)
{
    (void)state;
    expect_errors("[eventlistener:e]\ncommand = /bin/cat\n",
                  "$/main.ini:1: [eventlistener:e]: events is missing (the event types its "
                  "listener takes, e.g. events = PROCESS_STATE)", NULL);
    expect_errors("[eventlistener:e]\ncommand = /bin/cat\nevents = PROCESS_STATE,PROCES_STATE_FATAL"
                  "\nredirect_stderr = true\nresult_handler = mod:fn\nstdin = null\n"
                  "buffer_size = 0\n",
                  "$/main.ini:7: buffer_size: '0' is not an integer from 1 to 1000000",
                  "$/main.ini:3: events: 'PROCES_STATE_FATAL' is not an event type (did you "
                  "mean PROCESS_STATE_FATAL?)",
                  "$/main.ini:4: redirect_stderr: must be false in an event listener (its "
                  "stdout carries the protocol)",
                  "$/main.ini:5: result_handler: 'mod:fn': corral has supervisord's default "
                  "handler only (OK acknowledges, anything else sends again); leave it unset",
                  "$/main.ini:6: stdin: must be pipe in an event listener (events come on "
                  "stdin)", NULL);
    expect_errors(SVC "events = TICK_5\n", "$/main.ini:4: events: not allowed in [service:t]",
                  NULL);
    struct cr_config cfg;
    load_ok("[program:t]\ncommand = /bin/cat\nbuffer_size = 3\n", &cfg);
    assert_int_equal(cfg.notices.n, 1);
    assert_string_equal(cfg.notices.v[0], subst("$/main.ini:3: buffer_size: not a key of "
                                                "[program:t]; ignored"));
    cr_config_free(&cfg);
    /* the hierarchy of event types, as supervisord subscribes */
    assert_true(cr_evtype_matches("EVENT", "TICK_5"));
    assert_true(cr_evtype_matches("PROCESS_STATE", "PROCESS_STATE_RUNNING"));
    assert_true(cr_evtype_matches("PROCESS_STATE_RUNNING", "PROCESS_STATE_RUNNING"));
    assert_false(cr_evtype_matches("PROCESS_STATE_RUNNING", "PROCESS_STATE_FATAL"));
    assert_false(cr_evtype_matches("PROCESS_STATE", "PROCESS_LOG_STDOUT"));
    assert_true(cr_evtype_matches("TICK", "TICK_60"));
}

static void test_supervisord_sections_ignored(void **state)
{
    (void)state;
    struct cr_config cfg;
    load_ok("[supervisord]\nnodaemon = true\n[unix_http_server]\nfile = /tmp/s\n"
            "[rpcinterface:supervisor]\nx = y\n" SVC "stopasgroup = true\nkillasgroup = true\n"
            "[group:g]\nprograms = t\n[eventlistener:e]\ncommand = /bin/cat\nevents = TICK_5\n"
            "[fcgi-program:f]\ncommand = /usr/sbin/fcgiwrap\nsocket = unix:///tmp/f.sock\n",
            &cfg);
    static const char *const want[] = {
        "$/main.ini:2: nodaemon: accepted: the supervisor always runs in the foreground",
        "$/main.ini:5: [rpcinterface:supervisor]: supervisord's section, accepted and ignored: "
        "corral's XML-RPC API ([unix_http_server], [inet_http_server]) is supervisord's "
        "supervisor namespace, always on",
        "$/main.ini:10: stopasgroup: accepted and ignored: a stop always reaches every process "
        "in the service's cgroup",
        "$/main.ini:11: killasgroup: accepted and ignored: a stop always reaches every process "
        "in the service's cgroup",
    };
    assert_int_equal(cfg.notices.n, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < cfg.notices.n; i++)
        assert_string_equal(cfg.notices.v[i], subst(want[i]));
    /* [eventlistener:e] is a program whose stdin is a pipe, started first (priority -1) */
    const struct cr_service *e = cr_config_find(&cfg, "e");
    assert_non_null(e);
    assert_true(e->listener);
    assert_int_equal(e->events.n, 1);
    assert_string_equal(e->events.v[0], "TICK_5");
    assert_int_equal(e->buffer_size, 10);
    assert_int_equal(e->priority, -1);
    /* [fcgi-program:f] is a program whose stdin is its socket (not a pipe) */
    const struct cr_service *f = cr_config_find(&cfg, "f");
    assert_non_null(f);
    assert_true(f->fcgi);
    assert_string_equal(f->socket, "unix:///tmp/f.sock");
    assert_null(f->stdin_mode);
    assert_int_equal(f->socket_mode, 0700);
    assert_int_equal(f->socket_backlog, 4096);
    assert_string_equal(e->stdin_mode, "pipe");
    assert_false(cr_config_find(&cfg, "t")->listener);
    /* [unix_http_server] is served (api/rpc.h) */
    assert_string_equal(cfg.global.rpc_unix_file, "/tmp/s");
    assert_int_equal(cfg.global.rpc_unix_chmod, 0700);
    assert_null(cfg.global.rpc_inet_port);
    cr_config_free(&cfg);

    /* supervisord ignores keys it does not know: in its own sections so does corral, with a
     * notice; a key of another section too. [service:x] stays strict. */
    load_ok("[supervisord]\nuser = root\ncommand = x\n[program:t]\nrootfs = %(here)s/rootfs\n"
            "command = sleep 1\npidfile = /run/x.pid\nstdout_events_enabled = true\n"
            "stderr_capture_maxbytes = 1MB\nserverurl = AUTO\n", &cfg);
    static const char *const want2[] = {
        "$/main.ini:2: user: accepted and ignored: the supervisor stays the user who started it "
        "(it needs root for cgroups and namespaces)",
        "$/main.ini:3: command: not a key of [supervisord]; ignored",
        "$/main.ini:7: pidfile: not a key of [program:t]; ignored",
        "$/main.ini:9: stderr_capture_maxbytes: accepted and ignored: corral has no capture "
        "mode (no PROCESS_COMMUNICATION events)",
    };
    assert_int_equal(cfg.notices.n, sizeof want2 / sizeof want2[0]);
    for (size_t i = 0; i < cfg.notices.n; i++)
        assert_string_equal(cfg.notices.v[i], subst(want2[i]));
    cr_config_free(&cfg);
    load_ok("[program:t]\nrootfs = %(here)s/rootfs\ncommand = sleep 1\nfrobnicate_level = 3\n",
            &cfg);
    assert_int_equal(cfg.notices.n, 1);
    assert_string_equal(cfg.notices.v[0], subst("$/main.ini:4: frobnicate_level: unknown key; "
                                                "ignored (as supervisord ignores it)"));
    cr_config_free(&cfg);
    expect_errors(SVC "frobnicate_level = 3\n", "$/main.ini:4: frobnicate_level: unknown key",
                  NULL);
    expect_errors(SVC "pidfile = /x\n", "$/main.ini:4: pidfile: not allowed in [service:t]", NULL);
    /* still checked: the value of a noticed key */
    expect_errors("[program:t]\nrootfs = %(here)s/rootfs\ncommand = sleep 1\n"
                  "stdout_capture_maxbytes = lots\n", "$/main.ini:4: stdout_capture_maxbytes: "
                  "'lots' is not a size (512K, 100MB, 2G, max)", NULL);
}

/* Loads text as it is (no "$" substitution: the text may be longer than subst's buffer). */
static int load_raw(const char *text, struct cr_config *cfg)
{
    put("main.ini", text, 0644);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/main.ini", dir);
    struct cr_config_opts opts = {.caps = caps, .no_machine_checks = no_machine};
    return cr_config_load(path, &opts, cfg);
}

static void test_groups(void **state)
{
    (void)state;
    struct cr_config cfg;
    /* [group:G]: its programs learn G (svctl's G:*), and its priority where they set none;
     * a program in no group is its own group, as in supervisord */
    load_ok("[group:web]\nprograms = a, b\npriority = 5\n"
            "[program:a]\nrootfs = %(here)s/rootfs\ncommand = sleep 1\n"
            "[program:b]\nrootfs = %(here)s/rootfs\ncommand = sleep 1\nnumprocs = 2\n"
            "process_name = b%(process_num)d\npriority = 7\n"
            "[program:c]\nrootfs = %(here)s/rootfs\ncommand = sleep 1\n", &cfg);
    assert_int_equal(cfg.nservices, 4);
    assert_string_equal(cfg.services[0].sd_group, "web");
    assert_int_equal(cfg.services[0].priority, 5);
    assert_string_equal(cfg.services[1].sd_group, "web");
    assert_string_equal(cfg.services[2].name, "b1");
    assert_int_equal(cfg.services[2].priority, 7);
    assert_string_equal(cfg.services[3].sd_group, "c");
    assert_int_equal(cfg.notices.n, 0);
    cr_config_free(&cfg);
    expect_errors("[group:web]\nprograms = a,nope\npriority = soon\n"
                  "[program:a]\nrootfs = %(here)s/rootfs\ncommand = sleep 1\n"
                  "[group:api]\nprograms = a\n[group:empty]\nprogramz = a\n",
                  "$/main.ini:3: priority: 'soon' is not an integer from -100000 to 100000",
                  "$/main.ini:2: programs: no [program:nope]",
                  "$/main.ini:8: programs: a is in [group:web] already ($/main.ini:1)",
                  "$/main.ini:10: programz: unknown key (did you mean programs?)",
                  "$/main.ini:9: [group:empty]: programs is missing", NULL);
}

static void test_long_lines(void **state)
{
    (void)state;
    /* supervisord has no line limit: 64 KiB lines are read whole (inih's buffer is sized for
     * them), a longer one is one error and later lines keep their numbers */
    static const char head[] = "[program:t]\nrootfs = %(here)s/rootfs\ncommand = sleep 1\n";
    size_t max = CR_CONFIG_MAX_LINE, cap = sizeof head + max + 64;
    char *text = malloc(cap);
    assert_non_null(text);
    for (size_t len = max - 1; len <= max + 1; len++) {
        int n = snprintf(text, cap, "%sserverurl = http://", head);
        size_t fill = len - strlen("serverurl = http://");
        memset(text + n, 'x', fill);
        snprintf(text + n + fill, cap - n - fill, "\npriority = nope\n");
        struct cr_config cfg;
        assert_int_equal(load_raw(text, &cfg), -EINVAL);
        if (len <= max) {
            assert_int_equal(cfg.errors.n, 1);
            assert_int_equal(strlen(cfg.services[0].serverurl), len - strlen("serverurl = "));
        } else {
            assert_int_equal(cfg.errors.n, 2);
            char want[256];
            snprintf(want, sizeof want, "$/main.ini:4: line is %zu bytes, longer than %zu "
                     "(continue it on indented lines)", len, max);
            assert_string_equal(cfg.errors.v[0], subst(want));
        }
        assert_string_equal(cfg.errors.v[cfg.errors.n - 1], subst(
            "$/main.ini:5: priority: 'nope' is not an integer from -100000 to 100000"));
        cr_config_free(&cfg);
    }
    free(text);
    /* a long command continues on indented lines, joined with a space */
    struct cr_config cfg;
    const struct cr_service *s = load_ok(
        "[service:t]\nrootfs = %(here)s/rootfs\ncommand = sleep\n    100\n\n  200 ; comment\n"
        "\tthree # comment\n", &cfg);
    assert_string_equal(s->command, "sleep 100 200 three");
    assert_int_equal(s->spec.argc, 4);
    cr_config_free(&cfg);
}

/* What supervisord's parser (Python's configparser: inline_comment_prefixes ; and #,
 * strict=False) makes of a file, corral makes too. */
static void test_supervisord_parsing(void **state)
{
    (void)state;
    struct cr_config cfg;
    /* " ;" and " #" start a comment, quotes or not; "a#b" and "a;b" do not */
    const struct cr_service *s = load_ok(
        "[program:t]\nrootfs = %(here)s/rootfs\ncommand = sleep hello # note\n"
        "directory = /tmp  # dir\nenvironment = A=1,B=c#d ;x\n", &cfg);
    assert_string_equal(s->command, "sleep hello");
    assert_string_equal(s->directory, "/tmp");
    assert_int_equal(s->environment.n, 2);
    assert_string_equal(s->environment.v[1], "B=c#d");
    cr_config_free(&cfg);
    expect_errors("[program:t]\nrootfs = %(here)s/rootfs\ncommand = sleep 1\n"
                  "environment = A=\"x ; y\"\n", "$/main.ini:4: environment: A: unterminated \" "
                  "quote", NULL);
    s = load_ok("[program:t]\nrootfs = %(here)s/rootfs\ncommand = sleep a#b a;b\n", &cfg);
    assert_string_equal(s->command, "sleep a#b a;b");
    cr_config_free(&cfg);
    /* a key given twice: the last counts, with a notice (aliases are the same key) */
    s = load_ok("[program:t]\nrootfs = %(here)s/rootfs\ncommand = sleep 1\npriority = 1\n"
                "command = sleep\n  2\npriority = 7\nautorestart = true\nrestart = no\n", &cfg);
    assert_int_equal(s->priority, 7);
    assert_string_equal(s->command, "sleep 2");
    assert_int_equal(s->key_line[CR_K_PRIORITY], 7);
    assert_int_equal(s->autorestart, CR_RESTART_NEVER);
    assert_int_equal(cfg.notices.n, 3);
    assert_string_equal(cfg.notices.v[0], subst("$/main.ini:5: command: given twice in "
                                                "[program:t] (first on line 3); the last value "
                                                "counts"));
    assert_string_equal(cfg.notices.v[2], subst("$/main.ini:9: autorestart: given twice in "
                                                "[program:t] (first on line 8); the last value "
                                                "counts"));
    cr_config_free(&cfg);
    /* %(ENV_X)s everywhere, numprocs and numprocs_start included */
    setenv("SXD_WORKERS", "3", 1);
    setenv("SXD_FIRST", "5", 1);
    load_ok("[program:w]\nrootfs = %(here)s/rootfs\ncommand = sleep %(ENV_SXD_WORKERS)s\n"
            "numprocs = %(ENV_SXD_WORKERS)s\nnumprocs_start = %(ENV_SXD_FIRST)s\n"
            "process_name = w_%(process_num)d\n", &cfg);
    assert_int_equal(cfg.nservices, 3);
    assert_string_equal(cfg.services[0].name, "w_5");
    assert_string_equal(cfg.services[2].name, "w_7");
    assert_string_equal(cfg.services[2].command, "sleep 3");
    cr_config_free(&cfg);
    expect_errors("[program:w]\nrootfs = %(here)s/rootfs\ncommand = sleep 1\n"
                  "numprocs = %(ENV_SXD_UNSET_X)s\n", "$/main.ini:4: numprocs: %(ENV_SXD_UNSET_X)s: "
                  "SXD_UNSET_X is not set in the supervisor's environment", NULL);
    /* a second [supervisord] (an included file's, as in Supervisor's own fixtures) joins the
     * first; errors name the file and line of the key */
    mk("sd.d");
    put("sd.d/more.conf", "[supervisord]\nminfds = lots\numask = 022\n", 0644);
    expect_errors("[supervisord]\numask = 077\n[include]\nfiles = sd.d/*.conf\n" SVC,
                  "$/sd.d/more.conf:2: minfds: 'lots' is not an integer from 0 to 1073741824",
                  NULL);
    put("sd.d/more.conf", "[supervisord]\numask = 022\n", 0644);
    load_ok("[supervisord]\numask = 077\n[include]\nfiles = sd.d/*.conf\n" SVC, &cfg);
    assert_int_equal(cfg.global.umask, 022);
    cr_config_free(&cfg);
    /* [include] files too */
    mk("env.d");
    put("env.d/a.conf", "[program:a]\nrootfs = %(here)s/../rootfs\ncommand = sleep 1\n", 0644);
    setenv("SXD_CONFD", "env.d", 1);
    load_ok("[include]\nfiles = %(here)s/%(ENV_SXD_CONFD)s/*.conf\n", &cfg);
    assert_int_equal(cfg.nservices, 1);
    assert_string_equal(cfg.services[0].name, "a");
    cr_config_free(&cfg);
    unsetenv("SXD_WORKERS");
    unsetenv("SXD_FIRST");
    unsetenv("SXD_CONFD");
}

static void test_nul_and_crlf(void **state)
{
    (void)state;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/nul.ini", dir);
    static const char t[] = "[service:t]\r\nrootfs = %(here)s/rootfs\r\ncommand = sleep\0 1\r\n"
                            "priority = x\r\n";
    FILE *f = fopen(path, "w");
    fwrite(t, 1, sizeof t - 1, f);
    fclose(f);
    struct cr_config cfg;
    struct cr_config_opts opts = {.caps = caps};
    assert_int_equal(cr_config_load(path, &opts, &cfg), -EINVAL);
    assert_int_equal(cfg.errors.n, 3);
    assert_string_equal(cfg.errors.v[0], subst("$/nul.ini:3: line holds a NUL byte"));
    assert_string_equal(cfg.errors.v[1], subst("$/nul.ini:4: priority: 'x' is not an integer from "
                                               "-100000 to 100000"));
    assert_string_equal(cfg.errors.v[2], subst("$/nul.ini:1: [service:t]: command is missing"));
    cr_config_free(&cfg);
}

static void test_file_errors(void **state)
{
    (void)state;
    struct cr_config cfg;
    struct cr_config_opts opts = {.caps = caps};
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/missing.ini", dir);
    assert_int_equal(cr_config_load(path, &opts, &cfg), -EINVAL);
    assert_int_equal(cfg.errors.n, 1);
    assert_string_equal(cfg.errors.v[0], subst("$/missing.ini: No such file or directory"));
    cr_config_free(&cfg);
    snprintf(path, sizeof path, "%s/big.ini", dir);
    FILE *f = fopen(path, "w");
    for (int i = 0; i < 40000; i++)
        fputs("; a comment line to make the file big\n", f);
    fclose(f);
    assert_int_equal(cr_config_load(path, &opts, &cfg), -EINVAL);
    assert_int_equal(cfg.errors.n, 1);
    assert_string_equal(cfg.errors.v[0], subst("$/big.ini: larger than 1048576 bytes"));
    cr_config_free(&cfg);
}

static void test_all_errors_reported(void **state)
{
    (void)state;
    expect_errors("[supervisor]\nbogus = 1\n"
                  "[service:a]\nrootfs = %(here)s/rootfs\ncommand = sleep 1\npriority = x\n"
                  "[service:b]\nrootfs = %(here)s/rootfs\ncommand = nope\nmemory_max = lots\n"
                  "[service:a]\n",
                  "$/main.ini:2: bogus: unknown key",
                  "$/main.ini:6: priority: 'x' is not an integer from -100000 to 100000",
                  "$/main.ini:10: memory_max: 'lots' is not a size (512K, 100MB, 2G, max)",
                  "$/main.ini:9: command: 'nope' not found in PATH (/usr/local/sbin:/usr/local/bin:"
                  "/usr/sbin:/usr/bin:/sbin:/bin) inside $/rootfs",
                  "$/main.ini:11: [service:a]: defined twice (first at $/main.ini:3)", NULL);
}

/* Names are checked through an index (loader.c name_index) that grows past 64 entries:
 * many sections, a name given three times (each later one points at the first), a network
 * and a group twice, and a process name that repeats a section's name. */
static void test_duplicates_among_many(void **state)
{
    (void)state;
    size_t cap = 64 * 1024, len = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    for (int i = 0; i < 200; i++)
        len += (size_t)snprintf(text + len, cap - len, "[service:s%d]\nrootfs = %%(here)s/rootfs\n"
                                "command = sleep 1\n", i);
    len += (size_t)snprintf(text + len, cap - len,
                            "[service:s7]\n"                                 /* line 601 */
                            "[network:n]\n[network:n]\n"                     /* 602, 603 */
                            "[group:g]\nprograms = s1\n[group:g]\n"          /* 604, 606 */
                            "[program:s7]\n"                                 /* 607 */
                            "[service:x]\nrootfs = %%(here)s/rootfs\ncommand = sleep 1\n"
                            "process_name = s150\n");                        /* 608 */
    assert_true(len < cap);
    expect_errors(text,
                  "$/main.ini:601: [service:s7]: defined twice (first at $/main.ini:22)",
                  "$/main.ini:603: [network:n]: defined twice (first at $/main.ini:602)",
                  "$/main.ini:606: [group:g]: defined twice (first at $/main.ini:604)",
                  "$/main.ini:607: [program:s7]: defined twice (first at $/main.ini:22)",
                  "$/main.ini:608: [service:x]: process name 's150' is already used by "
                  "[service:s150] at $/main.ini:451", NULL);
    free(text);
}

/* ---- includes ------------------------------------------------------------------------------- */

static void test_includes(void **state)
{
    (void)state;
    put("conf.d/20-b.ini", "[service:b]\nrootfs = %(here)s/../rootfs\ncommand = sleep 2\n", 0644);
    put("conf.d/10-a.ini", "[program:a]\nrootfs = %(here)s/../rootfs\ncommand = sleep 1\n", 0644);
    put("conf.d/skip.txt", "garbage", 0644);
    struct cr_config cfg;
    load_ok(SVC "[include]\nfiles = conf.d/*.ini\n  nomatch/*.ini\n", &cfg);
    assert_int_equal(cfg.nservices, 3);
    assert_string_equal(cfg.services[0].name, "t");
    assert_string_equal(cfg.services[1].name, "a");    /* sorted: 10-a before 20-b */
    assert_string_equal(cfg.services[2].name, "b");
    assert_string_equal(cfg.services[1].file, subst("$/conf.d/10-a.ini"));
    assert_int_equal(cfg.nfiles, 3);
    cr_config_free(&cfg);

    expect_errors(SVC "[include]\nfiles = conf.d/*.ini absent.ini\n",
                  "$/main.ini:5: files: $/absent.ini: No such file or directory", NULL);
    expect_errors(SVC "[include]\n", "$/main.ini:4: [include]: files is missing", NULL);
    expect_errors("[include]\nfiles = conf.d/*.ini\n[service:a]\nrootfs = %(here)s/rootfs\n"
                  "command = sleep 1\n",
                  "$/conf.d/10-a.ini:1: [program:a]: defined twice (first at $/main.ini:3)", NULL);
    put("conf.d/30-nest.ini", "[include]\nfiles = x.ini\n", 0644);
    expect_errors(SVC "[include]\nfiles = conf.d/*.ini\n",
                  "$/conf.d/30-nest.ini:1: [include]: included files cannot include further",
                  NULL);
    unlink(subst("$/conf.d/30-nest.ini"));
    put("conf.d/40-bad.ini", "[service:c]\nrootfs = %(here)s/../rootfs\ncommand = sleep 1\n"
                             "bogus = 1\n", 0644);
    expect_errors(SVC "[include]\nfiles = conf.d/*.ini\n", "$/conf.d/40-bad.ini:4: bogus: unknown key",
                  NULL);
    unlink(subst("$/conf.d/40-bad.ini"));
    /* including the main file again, or a file twice, reads it once */
    load_ok(SVC "[include]\nfiles = main.ini conf.d/10-a.ini conf.d/*.ini\n", &cfg);
    assert_int_equal(cfg.nservices, 3);
    cr_config_free(&cfg);
    unlink(subst("$/conf.d/10-a.ini"));
    unlink(subst("$/conf.d/20-b.ini"));
}

/* ---- expansions and numprocs ------------------------------------------------------------------ */

static void test_expansions(void **state)
{
    (void)state;
    setenv("CORRAL_TEST_VAR", "fromenv", 1);
    struct cr_config cfg;
    const struct cr_service *s = load_ok(
        "[service:x]\nrootfs = %(here)s/rootfs\n"
        "command = sleep %(program_name)s %(here)s %(ENV_CORRAL_TEST_VAR)s 100%% %(numprocs)d\n"
        "  %(process_num)03d %(group_name)5s\n", &cfg);
    assert_int_equal(s->spec.argc, 8);
    assert_string_equal(s->spec.argv[1], "x");
    assert_string_equal(s->spec.argv[2], dir);
    assert_string_equal(s->spec.argv[3], "fromenv");
    assert_string_equal(s->spec.argv[4], "100%");
    assert_string_equal(s->spec.argv[5], "1");
    assert_string_equal(s->spec.argv[6], "000");
    assert_string_equal(s->spec.argv[7], "x");          /* "    x", split at blanks */
    cr_config_free(&cfg);
    unsetenv("CORRAL_TEST_VAR");
    expect_errors(SVC "directory = /%(nope)s\n",
                  "$/main.ini:4: directory: %(nope)s: unknown expansion (program_name, process_num, "
                  "numprocs, group_name, host_node_name, here, ENV_NAME)", NULL);
    expect_errors(SVC "directory = /%(ENV_CORRAL_TEST_VAR)s\n",
                  "$/main.ini:4: directory: %(ENV_CORRAL_TEST_VAR)s: CORRAL_TEST_VAR is not set in "
                  "the supervisor's environment", NULL);
    expect_errors(SVC "directory = /%(here)x\n",
                  "$/main.ini:4: directory: %(here) must be followed by s or d", NULL);
    expect_errors(SVC "directory = /%(here)d\n",
                  "$/main.ini:4: directory: %(here)d: not a number", NULL);
    expect_errors(SVC "directory = /%(here\n",
                  "$/main.ini:4: directory: '%(here': unterminated %(", NULL);
}

static void test_numprocs(void **state)
{
    (void)state;
    struct cr_config cfg;
    load_ok("[program:w]\nrootfs = %(here)s/rootfs\ncommand = sleep %(process_num)d\n"
            "numprocs = 3\nnumprocs_start = 7\n", &cfg);
    assert_int_equal(cfg.nservices, 3);
    assert_string_equal(cfg.services[0].name, "w_7");
    assert_string_equal(cfg.services[2].name, "w_9");
    assert_string_equal(cfg.services[2].spec.argv[1], "9");
    assert_string_equal(cfg.services[2].spec.hostname, "w_9");
    assert_int_equal(cfg.services[1].process_num, 8);
    cr_config_free(&cfg);
    load_ok("[program:w]\nrootfs = %(here)s/rootfs\ncommand = sleep 1\nnumprocs = 2\n"
            "process_name = web-%(process_num)02d\n", &cfg);
    assert_string_equal(cfg.services[1].name, "web-01");
    cr_config_free(&cfg);
    expect_errors("[program:w]\nrootfs = %(here)s/rootfs\ncommand = sleep 1\nnumprocs = 2\n"
                  "process_name = same\n",
                  "$/main.ini:5: process_name: must contain %(process_num)d when numprocs > 1",
                  "$/main.ini:1: [program:w]: process name 'same' is already used by [program:w] "
                  "at $/main.ini:1", NULL);
    expect_errors(SVC "[service:u]\nrootfs = %(here)s/rootfs\ncommand = sleep 1\n"
                  "process_name = t\n",
                  "$/main.ini:4: [service:u]: process name 't' is already used by [service:t] at "
                  "$/main.ini:1", NULL);
    expect_errors(SVC "process_name = bad/name\n",
                  "$/main.ini:4: process_name: 'bad/name' is not 1 to 40 of A-Z a-z 0-9 _ . -",
                  NULL);
}

/* Parsed defaults of fixed size are kept across services and loads (loader.c def_cache):
 * each service still gets the default, never another service's value, and a [program:x]
 * its own default where it differs. */
static void test_defaults_are_each_services_own(void **state)
{
    (void)state;
    struct cr_config cfg;
    for (int round = 0; round < 2; round++) {
        load_ok("[service:a]\nrootfs = %(here)s/rootfs\ncommand = sleep 1\nexitcodes = 2\n"
                "startsecs = 5\nnamespaces = pid,mount\nstopsignal = INT\nautorestart = false\n"
                "[service:b]\nrootfs = %(here)s/rootfs\ncommand = sleep 1\n"
                "[program:c]\ncommand = sleep 1\n"
                "[service:d]\nrootfs = %(here)s/rootfs\ncommand = sleep 1\nexitcodes = 3\n",
                &cfg);
        assert_int_equal(cfg.nservices, 4);
        const struct cr_service *a = &cfg.services[0], *b = &cfg.services[1],
                                *c = &cfg.services[2], *d = &cfg.services[3];
        assert_true(cr_codeset_has(&a->exitcodes, 2) && !cr_codeset_has(&a->exitcodes, 0));
        assert_true(cr_codeset_has(&b->exitcodes, 0) && !cr_codeset_has(&b->exitcodes, 2));
        assert_true(cr_codeset_has(&c->exitcodes, 0) && !cr_codeset_has(&c->exitcodes, 2));
        assert_true(cr_codeset_has(&d->exitcodes, 3) && !cr_codeset_has(&d->exitcodes, 0));
        assert_int_equal(a->startsecs, 5000);
        assert_int_equal(b->startsecs, 1000);
        assert_int_equal(a->namespaces, CR_NS_PID | CR_NS_MOUNT);
        assert_int_equal(b->namespaces, CR_NS_PID | CR_NS_MOUNT | CR_NS_UTS | CR_NS_IPC |
                                            CR_NS_NET | CR_NS_CGROUP);
        assert_int_equal(c->namespaces, 0);        /* supervisord's meaning: the host */
        assert_int_equal(a->stopsignal, SIGINT);
        assert_int_equal(b->stopsignal, SIGTERM);
        assert_int_equal(a->autorestart, CR_RESTART_NEVER);
        assert_int_equal(b->autorestart, CR_RESTART_UNEXPECTED);
        cr_config_free(&cfg);
    }
}

/* Finding of the fuzzing review: the ranges were checked in wrapping 64-bit arithmetic, so
 * huge ids passed and the map text (36 bytes a line) overran its buffer. */
static void test_id_map_ranges(void **state)
{
    (void)state;
#define USERNS SVC "namespaces = pid,mount,user\ngid_map = 0:100000:65536\n"
#define HUGE "18446744073709551615:18446744073709551615:4294967297"
#define HUGE_ERR(line) "$/main.ini:" line ": uid_map: '" HUGE "' is not CONTAINER:HOST:COUNT " \
                       "(e.g. 0:100000:65536)"
    /* six such lines (53 bytes of text each) after a valid one overran the text's
     * 7 * 36 + 1 bytes (ASan: heap-buffer-overflow in snprintf) */
    expect_errors(USERNS "uid_map = 0:100000:65536\n  " HUGE "\n  " HUGE "\n  " HUGE "\n  "
                  HUGE "\n  " HUGE "\n  " HUGE "\n", HUGE_ERR("7"), HUGE_ERR("8"), HUGE_ERR("9"),
                  HUGE_ERR("10"), HUGE_ERR("11"), HUGE_ERR("12"), NULL);
#undef HUGE_ERR
#undef HUGE
    const char *bad[] = {"0:4294967296:1", "4294967296:0:1", "0:0:4294967296", "0:0:0",
                         "0:4294967295:1", "0:1:4294967295", "0:00000000001:1", "0: 1:1",
                         "+0:1:1", "0:1:1 ", "0:1:1:", "0::1", "4294967294:0:2"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[512], want[512];
        snprintf(text, sizeof text, "%s%s\n", USERNS "uid_map = 0:100000:65536\n  ", bad[i]);
        snprintf(want, sizeof want, "$/main.ini:7: uid_map: '%s' is not CONTAINER:HOST:COUNT "
                 "(e.g. 0:100000:65536)", bad[i]);
        if (!strcmp(bad[i], "0:1:1 "))       /* inih trims the blank */
            continue;
        expect_errors(text, want, NULL);
    }
    /* the largest ranges the kernel takes: up to id 4294967294 on both sides */
    struct cr_config cfg;
    const struct cr_service *s = load_ok(USERNS "uid_map = 0:1:4294967294\n", &cfg);
    assert_string_equal(s->uid_map_text, "0 1 4294967294\n");
    cr_config_free(&cfg);
    s = load_ok(USERNS "uid_map = 0:4294967293:1\n  4294967293:0:1\n", &cfg);
    assert_string_equal(s->uid_map_text, "0 4294967293 1\n4294967293 0 1\n");
    cr_config_free(&cfg);
#undef USERNS
}

/* Finding of the fuzzing review: 16-digit values wrapped in the decimal reader. */
static void test_too_large_values(void **state)
{
    (void)state;
    expect_errors(SVC "stopwaitsecs = 9223372036854776\n",
                  "$/main.ini:4: stopwaitsecs: '9223372036854776' is too large a duration", NULL);
    expect_errors(SVC "startsecs = 9999999999999999\n",
                  "$/main.ini:4: startsecs: '9999999999999999' is too large a duration", NULL);
    expect_errors(SVC "restart_delay = 2562047788016h\n",
                  "$/main.ini:4: restart_delay: '2562047788016h' is too large a duration", NULL);
    expect_errors(SVC "memory_max = 9223372036854776\n",
                  "$/main.ini:4: memory_max: '9223372036854776' is too large a size (largest: max)",
                  NULL);
    struct cr_config cfg;
    const struct cr_service *s = load_ok(SVC "stopwaitsecs = 9223372036854s\n", &cfg);
    assert_int_equal(s->spec.stopwait_ms, 9223372036854000LL);
    cr_config_free(&cfg);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Finding of the fuzzing review: numprocs copies that depend on their own program close
 * ~N^2 / 2 back edges, each reported (and compared with every earlier message): N = 300 took
 * 6.6 s, N = 1000 over a minute. Now one depends_on line reports one cycle. */
static void test_dependency_cycle_numprocs(void **state)
{
    (void)state;
    struct cr_config cfg;
    no_machine = true;
    double t0 = now_s();
    int r = load("[program:w]\ncommand = sleep 1\nnumprocs = 500\n"
                 "process_name = w_%(process_num)d\ndepends_on = w\n", &cfg);
    double took = now_s() - t0;
    assert_int_equal(r, -EINVAL);
    if (cfg.errors.n != 1)
        fail_msg("%zu errors for one depends_on line", cfg.errors.n);
    assert_string_equal(cfg.errors.v[0], subst("$/main.ini:5: depends_on: dependency cycle: "
                                               "w_0 -> w_0"));
    cr_config_free(&cfg);
    /* the old code took minutes here under the sanitizers; this is generous for a busy box */
    if (took > 15.0)
        fail_msg("loading took %.1f s", took);
    /* a plain cycle is still named in full, once */
    expect_errors(SVC "depends_on = u\n[service:u]\ncommand = sleep 1\n"
                  "rootfs = %(here)s/rootfs\ndepends_on = v\n[service:v]\ncommand = sleep 1\n"
                  "rootfs = %(here)s/rootfs\ndepends_on = t, u\n",
                  "$/main.ini:12: depends_on: dependency cycle: t -> u -> v -> t", NULL);
    no_machine = false;
}

/* ... and numprocs had no total: ten sections of 1000 made 10,000 services from 490 bytes. */
static void test_services_cap(void **state)
{
    (void)state;
    char text[4096] = "";
    no_machine = true;
    for (int i = 0; i < 5; i++)
        snprintf(text + strlen(text), sizeof text - strlen(text),
                 "[program:p%d]\ncommand = sleep 1\nnumprocs = 1000\n"
                 "process_name = p%d_%%(process_num)d\n", i, i);
    expect_errors(text, "$/main.ini:19: numprocs: more than 4096 services in all (4000 before "
                  "this section, 1000 in it)", NULL);
    snprintf(text + strlen(text), sizeof text - strlen(text), "[service:last]\ncommand = sleep 1\n");
    expect_errors(text, "$/main.ini:19: numprocs: more than 4096 services in all (4000 before "
                  "this section, 1000 in it)", NULL);
    /* exactly 4096 is fine */
    snprintf(text, sizeof text, "[program:p]\ncommand = sleep 1\nnumprocs = 1000\n"
             "process_name = p_%%(process_num)d\n[program:q]\ncommand = sleep 1\n"
             "numprocs = 1000\nprocess_name = q_%%(process_num)d\n[program:r]\n"
             "command = sleep 1\nnumprocs = 1000\nprocess_name = r_%%(process_num)d\n"
             "[program:s]\ncommand = sleep 1\nnumprocs = 1000\n"
             "process_name = s_%%(process_num)d\n[program:t]\ncommand = sleep 1\n"
             "numprocs = 96\nprocess_name = t_%%(process_num)d\n[service:one]\ncommand = sleep 1\n");
    expect_errors(text, "$/main.ini:21: [service:one]: more than 4096 services in all (4096 "
                  "before this section, 1 in it)", NULL);
    no_machine = false;
}

/* Finding of the fuzzing review: --check accepted what init refuses or silently wraps.
 * Numeric ids were cast from strtoul (group = 4294967296 became gid 0, root's group); ids in
 * the rootfs's passwd and group too; and a path init refuses (PATH_MAX bytes) passed. */
static void test_values_init_refuses(void **state)
{
    (void)state;
    expect_errors(SVC "group = 4294967296\n",
                  "$/main.ini:4: group: '4294967296' is too large a gid (at most 4294967294)", NULL);
    expect_errors(SVC "group = 4294967295\n",
                  "$/main.ini:4: group: '4294967295' is too large a gid (at most 4294967294)", NULL);
    expect_errors(SVC "groups = 10,\n  18446744073709551616\n",
                  "$/main.ini:5: groups: '18446744073709551616' is too large a gid (at most "
                  "4294967294)", NULL);
    expect_errors(SVC "user = 4294967295\n",
                  "$/main.ini:4: user: '4294967295' is too large a uid (at most 4294967294)", NULL);
    expect_errors(SVC "user = huge\n",
                  "$/main.ini:4: user: user 'huge' in $/rootfs/etc/passwd has uid 4294967296 and "
                  "gid 1: above 4294967294", NULL);
    expect_errors(SVC "user = big\n",
                  "$/main.ini:4: user: user 'big' in $/rootfs/etc/passwd has uid 77 and gid "
                  "4294967296: above 4294967294", NULL);
    expect_errors(SVC "group = hugegrp\n",
                  "$/main.ini:4: group: group 'hugegrp' in $/rootfs/etc/group has gid 4294967296, "
                  "above 4294967294", NULL);
    expect_errors(SVC "user = member\n",
                  "$/main.ini:4: user: a group of 'member' in $/rootfs/etc/group has gid "
                  "4294967296, above 4294967294", NULL);
    struct cr_config cfg;
    const struct cr_service *s = load_ok(SVC "group = 4294967294\ngroups = 0,4294967294\n", &cfg);
    assert_int_equal(s->spec.gid, 4294967294u);
    assert_int_equal(s->spec.ngroups, 2);
    assert_int_equal(s->spec.groups[1], 4294967294u);
    cr_config_free(&cfg);

    /* 4096 bytes: one more than a path init takes (a line has at most 197 bytes, an
     * expansion has none) */
    static char text[3 * 8192], longp[8192];
    memset(longp, 'a', 4096);
    longp[0] = '/';
    longp[4096] = '\0';
    setenv("CR_TEST_PATH", longp, 1);
    expect_errors(SVC "directory = %(ENV_CR_TEST_PATH)s\n",
                  "$/main.ini:4: directory: a path of 4096 bytes: init takes at most 4095", NULL);
    expect_errors(SVC "tmpfs = %(ENV_CR_TEST_PATH)s:1M\n",
                  "$/main.ini:4: tmpfs: a path longer than 4095 bytes", NULL);
    expect_errors(SVC "bind = /tmp:%(ENV_CR_TEST_PATH)s\n",
                  "$/main.ini:4: bind: a path longer than 4095 bytes", NULL);
    longp[4095] = '\0';
    setenv("CR_TEST_PATH", longp, 1);
    load_ok(SVC "directory = %(ENV_CR_TEST_PATH)s\n", &cfg);
    cr_config_free(&cfg);
    unsetenv("CR_TEST_PATH");
    /* an argument or variable over CR_SPEC_MAX_ITEM (4096) bytes: via %(ENV_X)s, which
     * expands to one word of any length */
    char big[4098];
    memset(big, 'x', 4097);
    big[4097] = '\0';
    setenv("CR_TEST_BIG", big, 1);
    expect_errors(SVC "environment = A=%(ENV_CR_TEST_BIG)s\n",
                  "$/main.ini:4: environment: a value of 4099 bytes: init takes at most 4096", NULL);
    expect_errors("[service:t]\nrootfs = %(here)s/rootfs\ncommand = sleep %(ENV_CR_TEST_BIG)s\n",
                  "$/main.ini:3: command: a value of 4097 bytes: init takes at most 4096", NULL);
    big[4096] = '\0';
    setenv("CR_TEST_BIG", big, 1);
    load_ok("[service:t]\nrootfs = %(here)s/rootfs\ncommand = sleep %(ENV_CR_TEST_BIG)s\n",
            &cfg);
    cr_config_free(&cfg);
    unsetenv("CR_TEST_BIG");
    /* the whole spec over CR_SPEC_MAX (64 KiB): 20 variables of 4000 bytes */
    put("big.env", "", 0644);
    {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/big.env", dir);
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        memset(big, 'y', 4000);
        big[4000] = '\0';
        for (int i = 0; i < 20; i++)
            fprintf(f, "E%d=%s\n", i, big);
        fclose(f);
    }
    snprintf(text, sizeof text, "%senvironment_file = big.env\n", SVC);
    expect_errors(text, "$/main.ini:1: [service:t]: the spec init receives would be larger than "
                  "65536 bytes (environment, binds, command)", NULL);
}

/* ---- checks between keys, and on the machine ------------------------------------------------- */

static void test_cross_key(void **state)
{
    (void)state;
    expect_errors(SVC "namespaces = pid,uts\nbind = /tmp:/x\ntmpfs = /t\nread_only = true\n",
                  "$/main.ini:2: rootfs: needs the mount namespace (add mount to namespaces)",
                  "$/main.ini:5: bind: needs the mount namespace (add mount to namespaces)",
                  "$/main.ini:6: tmpfs: needs the mount namespace (add mount to namespaces)",
                  "$/main.ini:7: read_only: needs the mount namespace (add mount to namespaces)",
                  NULL);
    expect_errors(SVC "namespaces = pid,mount\nhostname = h\n",
                  "$/main.ini:5: hostname: needs the uts namespace (add uts to namespaces)", NULL);
    expect_errors(SVC "hostname = bad/host\n",
                  "$/main.ini:4: hostname: 'bad/host' is not a hostname (at most 64 of A-Z a-z 0-9 "
                  "- . _)", NULL);
    expect_errors(SVC "restart_delay = 10s\nrestart_delay_max = 1s\n",
                  "$/main.ini:5: restart_delay_max: shorter than restart_delay", NULL);
    expect_errors(SVC "restart_delay = 1m\n",
                  "$/main.ini:1: [service:t]: restart_delay_max (default): shorter than "
                  "restart_delay", NULL);
    expect_errors(SVC "memory_max = 10M\nmemory_high = 20M\n",
                  "$/main.ini:5: memory_high: above memory_max", NULL);
    /* user_namespace = auto computes the maps: explicit ones are a contradiction */
    expect_errors(SVC "user_namespace = auto\nuid_map = 0:100000:65536\ngid_map = 0:1:1\n",
                  "$/main.ini:5: uid_map: not with user_namespace = auto (line 4), which "
                  "computes the maps",
                  "$/main.ini:6: gid_map: not with user_namespace = auto (line 4), which "
                  "computes the maps", NULL);
    expect_errors(SVC "namespaces = pid,mount,user\nuser_namespace = none\n",
                  "$/main.ini:5: user_namespace: none, but namespaces has user (line 4)",
                  "$/main.ini:4: namespaces: the user namespace needs uid_map and gid_map (e.g. "
                  "uid_map = 0:100000:65536)", NULL);
    expect_errors(SVC "user_namespace = keep-id\n",
                  "$/main.ini:4: user_namespace: 'keep-id' is not auto or none", NULL);
}

static void test_machine_errors(void **state)
{
    (void)state;
    expect_errors("[service:t]\nrootfs = %(here)s/none\ncommand = sleep 1\n",
                  "$/main.ini:2: rootfs: $/none: No such file or directory", NULL);
    expect_errors("[service:t]\nrootfs = %(here)s/notadir\ncommand = sleep 1\n",
                  "$/main.ini:2: rootfs: $/notadir: not a directory", NULL);
    expect_errors("[service:t]\nrootfs = rel\ncommand = sleep 1\n",
                  "$/main.ini:2: rootfs: 'rel' is not an absolute path", NULL);
    expect_errors(SVC "user = nobody\n",
                  "$/main.ini:4: user: no user 'nobody' in $/rootfs/etc/passwd", NULL);
    expect_errors(SVC "user = bad\n", "$/main.ini:4: user: no user 'bad' in $/rootfs/etc/passwd",
                  NULL);
    expect_errors(SVC "group = wheel\n",
                  "$/main.ini:4: group: no group 'wheel' in $/rootfs/etc/group", NULL);
    expect_errors(SVC "groups = log,\n  wheel\n",
                  "$/main.ini:5: groups: no group 'wheel' in $/rootfs/etc/group", NULL);
    expect_errors(SVC "bind = %(here)s/nodata:/data\n",
                  "$/main.ini:4: bind: $/nodata: No such file or directory", NULL);
#define OPTS " is not SRC:DST[:OPTS] (OPTS: ro, rw, idmap, ro,idmap)"
    expect_errors(SVC "bind = /tmp\n", "$/main.ini:4: bind: '/tmp'" OPTS, NULL);
    expect_errors(SVC "bind = /tmp:/x:rx\n", "$/main.ini:4: bind: '/tmp:/x:rx'" OPTS, NULL);
    expect_errors(SVC "bind = /tmp:/x:idmap,rw,ro\n", "$/main.ini:4: bind: '/tmp:/x:idmap,rw,ro'"
                  OPTS, NULL);
    expect_errors(SVC "bind = /tmp:/x:ro,idmap\n", "$/main.ini:4: bind: idmap needs a user "
                  "namespace (user_namespace = auto, or user in namespaces)", NULL);
#undef OPTS
    expect_errors(SVC "bind = /tmp:x\n",
                  "$/main.ini:4: bind: destination 'x' is not an absolute path", NULL);
    expect_errors(SVC "tmpfs = tmp\n", "$/main.ini:4: tmpfs: 'tmp' is not an absolute path", NULL);
    expect_errors(SVC "tmpfs = /tmp:huge\n", "$/main.ini:4: tmpfs: size 'huge' is not a size (64M)",
                  NULL);
    expect_errors(SVC "environment_file = nofile\n",
                  "$/main.ini:4: environment_file: $/nofile: No such file or directory", NULL);
    expect_errors(SVC "environment_file = env.bad\n",
                  "$/main.ini:4: environment_file: $/env.bad:2: expected NAME=value", NULL);

    /* numeric user without a passwd entry: its own number as group, HOME=/ */
    struct cr_config cfg;
    const struct cr_service *s = load_ok(SVC "user = 4242\n", &cfg);
    assert_int_equal(s->spec.uid, 4242);
    assert_int_equal(s->spec.gid, 4242);
    assert_string_equal(cr_spec_get_env(&s->spec, "HOME"), "/");
    cr_config_free(&cfg);
    /* environment: file first, then environment; PATH and HOME can be overridden */
    s = load_ok(SVC "environment_file = env.list\nenvironment = SHARED=key,HOME=/h\n", &cfg);
    assert_string_equal(cr_spec_get_env(&s->spec, "FROM_FILE"), "1");
    assert_string_equal(cr_spec_get_env(&s->spec, "QUOTED"), "a b");
    assert_string_equal(cr_spec_get_env(&s->spec, "SHARED"), "key");
    assert_string_equal(cr_spec_get_env(&s->spec, "HOME"), "/h");
    assert_int_equal(s->spec.nenv, 5);
    cr_config_free(&cfg);
    /* explicit empty groups: none */
    s = load_ok(SVC "user = www\ngroups =\n", &cfg);
    assert_int_equal(s->spec.ngroups, 0);
    cr_config_free(&cfg);
}

static void test_no_machine_checks(void **state)
{
    (void)state;
    struct cr_config cfg;
    struct cr_config_opts opts = {.caps = caps, .no_machine_checks = true};
    char path[PATH_MAX];
    put("nm.ini", "[service:t]\nrootfs = /does/not/exist\ncommand = nothere\nuser = ghost\n"
                  "priority = x\n", 0644);
    snprintf(path, sizeof path, "%s/nm.ini", dir);
    /* only what the file alone says is checked */
    assert_int_equal(cr_config_load(path, &opts, &cfg), -EINVAL);
    assert_int_equal(cfg.errors.n, 1);
    assert_string_equal(cfg.errors.v[0], subst("$/nm.ini:5: priority: 'x' is not an integer from "
                                               "-100000 to 100000"));
    assert_null(cfg.services[0].spec.exec);
    cr_config_free(&cfg);
}

static void test_cgroup_errors(void **state)
{
    (void)state;
    struct cr_cgroup_caps v1 = {.version = 1, .memory = true, .memory_high = true, .cpu_max = true,
                                .cpu_weight = true, .pids = true};
    struct cr_cgroup_caps none = {0};
    struct cr_cgroup_caps v2 = {.version = 2, .memory = true, .memory_high = true,
                                .memory_swap = true};
    const char *limits = SVC "memory_max = 1G\nmemory_swap_max = 1G\nio_weight = 100\n"
                         "pids_max = 10\ncpu_max = 50%\n";
    caps = &v1;
    expect_errors(limits,
                  "$/main.ini:5: memory_swap_max: this machine's memory controller (cgroup v1) has "
                  "no swap accounting (no memory.memsw.*; boot with swapaccount=1)",
                  "$/main.ini:6: io_weight: cgroup v1 here has neither blkio.weight nor "
                  "blkio.bfq.weight (the BFQ scheduler)", NULL);
    caps = &v2;
    expect_errors(limits,
                  "$/main.ini:6: io_weight: the io controller is not available on this machine "
                  "(cgroup v2)",
                  "$/main.ini:7: pids_max: the pids controller is not available on this machine "
                  "(cgroup v2)",
                  "$/main.ini:8: cpu_max: the cpu controller is not available on this machine "
                  "(cgroup v2)", NULL);
    caps = &none;
    expect_errors(SVC "memory_max = 1G\n",
                  "$/main.ini:4: memory_max: no cgroups to enforce it: no cgroup hierarchy at "
                  "/sys/fs/cgroup (in a container, give it a writable /sys/fs/cgroup of its own: "
                  "--cgroupns=private on cgroup v2, podman's and Kubernetes' default; or drop the "
                  "key)", NULL);
    caps = &caps_all;
}

static void test_probe(void **state)
{
    (void)state;
    char root[PATH_MAX];
    struct cr_cgroup_caps c;
    /* a v1 layout */
    mk("cg1");
    mk("cg1/memory");
    mk("cg1/cpu");
    mk("cg1/pids");
    mk("cg1/blkio");
    put("cg1/memory/memory.limit_in_bytes", "", 0644);
    put("cg1/cpu/cpu.cfs_quota_us", "", 0644);
    put("cg1/cpu/cpu.cfs_period_us", "", 0644);
    put("cg1/pids/cgroup.procs", "", 0644);
    put("cg1/blkio/blkio.bfq.io_service_bytes", "", 0644);
    snprintf(root, sizeof root, "%s/cg1", dir);
    cr_cgroup_probe(root, &c);
    assert_int_equal(c.version, 1);
    assert_true(c.memory);
    assert_false(c.memory_high);
    assert_false(c.memory_swap);
    assert_true(c.cpu_max);
    assert_false(c.cpu_weight);
    assert_true(c.pids);
    assert_true(c.io_weight);
    assert_string_equal(c.io_weight_file, "blkio.bfq.weight");
    /* a v2 root */
    mk("cg2");
    put("cg2/cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n", 0644);
    snprintf(root, sizeof root, "%s/cg2", dir);
    cr_cgroup_probe(root, &c);
    assert_int_equal(c.version, 2);
    assert_true(c.memory && c.memory_swap && c.cpu_max && c.cpu_weight && c.pids && c.io_weight);
    put("cg2/cgroup.controllers", "cpuset hugetlb\n", 0644);
    cr_cgroup_probe(root, &c);
    assert_int_equal(c.version, 2);
    assert_false(c.memory || c.cpu_max || c.pids || c.io_weight);
    /* nothing */
    snprintf(root, sizeof root, "%s/data", dir);
    cr_cgroup_probe(root, &c);
    assert_int_equal(c.version, 0);
    /* this machine: whatever it has, the probe does not crash and agrees with itself */
    cr_cgroup_probe(CR_CGROUP_MOUNT, &c);
    struct cr_cgroup_caps again;
    cr_cgroup_probe(CR_CGROUP_MOUNT, &again);
    assert_memory_equal(&c, &again, sizeof c);
}

/* ---- the spec a service produces, and the reload diff -------------------------------------- */

static void test_spec_round_trip(void **state)
{
    (void)state;
    struct cr_config cfg;
    const struct cr_service *s = load_ok(
        SVC "user = www\nenvironment = X=\"a;b c\",Y=100%%\nbind = %(here)s/data:/d:ro\n"
        "tmpfs = /run:1M\nautorestart = false\nexitcodes = 0,3\nstopsignal = INT\numask = 002\n",
        &cfg);
    static char text[CR_SPEC_MAX + 1];
    ssize_t n = cr_spec_write(&s->spec, text, sizeof text);
    assert_true(n > 0);
    struct cr_spec back;
    struct cr_errlist errs = {0};
    assert_int_equal(cr_spec_parse(text, (size_t)n, "spec", &back, &errs), 0);
    assert_string_equal(cr_spec_get_env(&back, "X"), "a;b c");
    assert_string_equal(cr_spec_get_env(&back, "Y"), "100%");
    assert_int_equal(back.uid, 33);
    assert_int_equal(back.autorestart, CR_RESTART_NEVER);
    assert_true(cr_codeset_has(&back.exitcodes, 3));
    assert_int_equal(back.stopsignal, 2);
    assert_int_equal(back.umask, 2);
    assert_int_equal(back.tmpfs[0].size, 1 << 20);
    assert_true(back.binds[0].ro);
    static char again[CR_SPEC_MAX + 1];
    assert_int_equal(cr_spec_write(&back, again, sizeof again), n);
    assert_string_equal(text, again);
    cr_spec_free(&back);
    cr_config_free(&cfg);
}

static void test_reload_diff(void **state)
{
    (void)state;
    struct cr_config a, b;
    load_ok(SVC "memory_max = 10M\npriority = 1\n", &a);
    load_ok(SVC "memory_max = 20M\npriority = 2\nstopsignal = INT\n", &b);
    assert_true(cr_service_key_differs(&a.services[0], &b.services[0], CR_K_MEMORY_MAX));
    assert_false(cr_service_key_differs(&a.services[0], &b.services[0], CR_K_COMMAND));
    assert_false(cr_service_needs_restart(&a.services[0], &b.services[0]));   /* all live */
    cr_config_free(&b);
    load_ok("[service:t]\nrootfs = %(here)s/rootfs\ncommand = sleep 2\nmemory_max = 10M\n"
            "priority = 1\n", &b);
    assert_true(cr_service_needs_restart(&a.services[0], &b.services[0]));
    cr_config_free(&b);
    load_ok(SVC "memory_max = 10M\npriority = 1\nenvironment = A=1\n", &b);
    assert_true(cr_service_needs_restart(&a.services[0], &b.services[0]));
    cr_config_free(&b);
    cr_config_free(&a);
}

static void test_key_table(void **state)
{
    (void)state;
    /* every row is complete, names and aliases are unique, defaults parse (checked by loading
     * an empty service above), and --list-keys shows every key */
    for (int i = 0; i < CR_NKEYS; i++) {
        assert_non_null(cr_keys[i].name);
        assert_non_null(cr_keys[i].doc);
        assert_true(cr_keys[i].sections != 0);
        assert_ptr_equal(cr_key_find(cr_keys[i].name, cr_keys[i].sections), &cr_keys[i]);
    }
    assert_ptr_equal(cr_key_find("restart", CR_SEC_SERVICE), &cr_keys[CR_K_AUTORESTART]);
    assert_ptr_equal(cr_key_find("COMMAND", CR_SEC_SERVICE), &cr_keys[CR_K_COMMAND]);
    assert_ptr_equal(cr_key_find("stop_grace_period", CR_SEC_SERVICE),
                     &cr_keys[CR_K_STOPWAITSECS]);
    assert_null(cr_key_find("nope", CR_SEC_SERVICE));
    /* one name, two rows: the section decides; else any row, for "not allowed in" */
    assert_ptr_equal(cr_key_find("environment", CR_SEC_GLOBAL), &cr_keys[CR_K_SUP_ENVIRONMENT]);
    assert_ptr_equal(cr_key_find("environment", CR_SEC_SERVICE), &cr_keys[CR_K_ENVIRONMENT]);
    assert_ptr_equal(cr_key_find("command", CR_SEC_GLOBAL), &cr_keys[CR_K_COMMAND]);
    /* the machine's hostname and a container's */
    assert_ptr_equal(cr_key_find("hostname", CR_SEC_GLOBAL), &cr_keys[CR_K_MACHINE_HOSTNAME]);
    assert_ptr_equal(cr_key_find("hostname", CR_SEC_SERVICE), &cr_keys[CR_K_HOSTNAME]);
    /* allowed in neither: the first row of the name, for "not allowed in [include]" */
    assert_ptr_equal(cr_key_find("hostname", CR_SEC_INCLUDE), &cr_keys[CR_K_MACHINE_HOSTNAME]);
    /* typos: one edit up to 4 bytes, two beyond; a swap is one */
    assert_string_equal(cr_key_suggest("comand"), "command");
    assert_string_equal(cr_key_suggest("autorestrat"), "autorestart");
    assert_string_equal(cr_key_suggest("Stopwaitsec"), "stopwaitsecs");
    assert_null(cr_key_suggest("bogus"));
    assert_null(cr_key_suggest("xsr"));
    assert_int_equal(cr_edit_distance("ab", "ba"), 1);
    assert_int_equal(cr_edit_distance("", "abc"), 3);
    /* every supervisord key of [program:x] and [supervisord] is a row */
    static const char *const sd_program[] = {
        "command", "process_name", "numprocs", "numprocs_start", "priority", "autostart",
        "startsecs", "startretries", "autorestart", "exitcodes", "stopsignal", "stopwaitsecs",
        "stopasgroup", "killasgroup", "user", "redirect_stderr", "stdout_logfile",
        "stdout_logfile_maxbytes", "stdout_logfile_backups", "stdout_capture_maxbytes",
        "stdout_events_enabled", "stdout_syslog", "stderr_logfile", "stderr_logfile_maxbytes",
        "stderr_logfile_backups", "stderr_capture_maxbytes", "stderr_events_enabled",
        "stderr_syslog", "environment", "directory", "umask", "serverurl",
    };
    static const char *const sd_global[] = {
        "logfile", "logfile_maxbytes", "logfile_backups", "loglevel", "pidfile", "umask",
        "nodaemon", "silent", "minfds", "minprocs", "nocleanup", "childlogdir", "user",
        "directory", "strip_ansi", "environment", "identity",
    };
    for (size_t i = 0; i < sizeof sd_program / sizeof sd_program[0]; i++)
        assert_true(cr_key_find(sd_program[i], CR_SEC_SERVICE)->sections & CR_SEC_SERVICE);
    for (size_t i = 0; i < sizeof sd_global / sizeof sd_global[0]; i++)
        assert_true(cr_key_find(sd_global[i], CR_SEC_GLOBAL)->sections & CR_SEC_GLOBAL);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_keys_print_markdown(f);
    fclose(f);
    for (int i = 0; i < CR_NKEYS; i++) {
        char want[64];
        snprintf(want, sizeof want, "| `%s`", cr_keys[i].name);
        assert_non_null(strstr(buf, want));
    }
    free(buf);
}

/* The security keys: capability names in every spelling, ALL, the order of add and drop,
 * ambient within the set, the filter's name, extra and unmasked paths. */
static void test_security_keys(void **state)
{
    struct cr_config cfg;
    const struct cr_service *s = load_ok(SVC "cap_add = net_raw, CAP_SYS_TIME\n"
                                         "cap_drop = chown,SETFCAP\n"
                                         "ambient_capabilities = NET_BIND_SERVICE\n"
                                         "no_new_privileges = false\nseccomp = unconfined\n"
                                         "masked_paths = /etc/secret\nreadonly_paths = /data\n"
                                         "unmask = /proc/sys, /proc/kcore\n", &cfg);
    uint64_t want = (0x800405fbULL | (1ULL << 13) | (1ULL << 25)) & ~(1ULL | (1ULL << 31));
    assert_int_equal(s->spec.caps, want);
    assert_int_equal(s->spec.ambient, 1ULL << 10);
    assert_false(s->spec.no_new_privs);
    assert_int_equal(s->spec.seccomp_fd, -1);
    assert_int_equal(s->spec.nmasked, 12);          /* 12 - kcore + /etc/secret */
    assert_string_equal(s->spec.masked[11], "/etc/secret");
    assert_int_equal(s->spec.nreadonly, 5);         /* 5 - /proc/sys + /data */
    for (size_t i = 0; i < s->spec.nmasked; i++)
        assert_string_not_equal(s->spec.masked[i], "/proc/kcore");
    cr_config_free(&cfg);

    s = load_ok(SVC "cap_add = ALL\n", &cfg);
    assert_true((s->spec.caps & (1ULL << 21)) && (s->spec.caps & (1ULL << 38)));
    cr_config_free(&cfg);
    s = load_ok(SVC "cap_drop = all\ncap_add = KILL\nunmask = ALL\n", &cfg);
    assert_int_equal(s->spec.caps, 1ULL << 5);
    assert_int_equal(s->spec.nmasked, 0);
    assert_int_equal(s->spec.nreadonly, 0);
    cr_config_free(&cfg);

    expect_errors(SVC "cap_add = NET_RAW,CAP_FLY\n",
                  "$/main.ini:4: cap_add: 'CAP_FLY' is not a capability (e.g. NET_RAW, "
                  "CAP_SYS_TIME, ALL)", NULL);
    expect_errors(SVC "cap_add = NET_RAW\ncap_drop = net_raw\n",
                  "$/main.ini:5: cap_drop: a capability is both added and dropped", NULL);
    expect_errors(SVC "ambient_capabilities = NET_ADMIN\n",
                  "$/main.ini:4: ambient_capabilities: holds capabilities the service does "
                  "not have (add them with cap_add)", NULL);
    expect_errors(SVC "seccomp = strict\n",
                  "$/main.ini:4: seccomp: 'strict' is not default, unconfined or the absolute path of a "
                  "profile", NULL);
    expect_errors(SVC "masked_paths = relative\nunmask = proc\n",
                  "$/main.ini:5: unmask: 'proc' is neither ALL nor an absolute path",
                  "$/main.ini:4: masked_paths: 'relative' is not an absolute path", NULL);
}

/* With the host's / as the root, the supervisor's socket and log directories are hidden. */
static void test_security_host_root(void **state)
{
    struct cr_config cfg;
    const struct cr_service *s = load_ok("[supervisor]\ncontrol_socket = /run/x/ctl.sock\n"
                                         "log_dir = /var/log/x\n"
                                         "[service:t]\ncommand = /bin/true\n", &cfg);
    bool sock = false, logs = false;
    for (size_t i = 0; i < s->spec.nmasked; i++) {
        sock |= !strcmp(s->spec.masked[i], "/run/x");
        logs |= !strcmp(s->spec.masked[i], "/var/log/x");
    }
    assert_true(sock && logs);
    cr_config_free(&cfg);
}

/* seccomp = PATH: a Docker/OCI JSON profile, compiled at load; its errors name the profile's
 * line and column (syntax) or JSON path (meaning) behind the key's own file:line. */
static void test_seccomp_profile_file(void **state)
{
    struct cr_config cfg;
    put("ok.json", "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [\n"
        "  {\"names\": [\"uname\", \"no_such_call\"], \"action\": \"SCMP_ACT_ERRNO\","
        " \"errnoRet\": 13},\n"
        "  {\"names\": [\"socket\"], \"action\": \"SCMP_ACT_ERRNO\", \"args\": [\n"
        "    {\"index\": 0, \"value\": 40, \"op\": \"SCMP_CMP_EQ\"}]}]}\n", 0644);
    const struct cr_service *s = load_ok(SVC "seccomp = $/ok.json\n", &cfg);
    assert_int_equal(s->spec.seccomp_fd, 6);
    cr_config_free(&cfg);

    put("bad.json", "{\n \"defaultAction\": \"SCMP_ACT_ALLOW\",\n \"syscalls\": [ {\"names\": "
        "[\"x\"] \"action\": 1}]}", 0644);
    expect_errors(SVC "seccomp = $/bad.json\n",
                  "$/main.ini:4: seccomp: $/bad.json:3:32: object value separator ',' expected",
                  NULL);
    put("bad.json", "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": "
        "[\"x\"], \"action\": \"SCMP_ACT_NOPE\"}]}", 0644);
    expect_errors(SVC "seccomp = $/bad.json\n",
                  "$/main.ini:4: seccomp: $/bad.json: syscalls[0].action: 'SCMP_ACT_NOPE' is "
                  "not a supported SCMP_ACT_* action", NULL);
    put("bad.json", "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": "
        "[\"uname\"], \"action\": \"SCMP_ACT_ERRNO\", \"args\": [{\"index\": 9, "
        "\"op\": \"SCMP_CMP_EQ\"}]}]}", 0644);
    expect_errors(SVC "seccomp = $/bad.json\n",
                  "$/main.ini:4: seccomp: $/bad.json: syscalls[0].args[0].index: not from 0 to 5",
                  NULL);
    put("bad.json", "[1, 2]", 0644);
    expect_errors(SVC "seccomp = $/bad.json\n", "$/main.ini:4: seccomp: $/bad.json: not a JSON "
                  "object", NULL);
    expect_errors(SVC "seccomp = $/missing.json\n",
                  "$/main.ini:4: seccomp: $/missing.json: No such file or directory", NULL);
}

/* device = HOST[:CONTAINER][:rwm]: the node's numbers from the host, a cgroup rule each. */
static void test_device_key(void **state)
{
    struct cr_config cfg;
    const struct cr_service *s = load_ok(SVC "device = /dev/null\n"
                                         "device = /dev/zero:/dev/sub/z:r\n", &cfg);
    assert_int_equal(s->spec.ndevices, 2);
    assert_string_equal(s->spec.devices[1].dst, "/dev/sub/z");
    assert_int_equal(s->spec.devices[1].major, 1);
    assert_int_equal(s->spec.devices[1].minor, 5);
    assert_int_equal(s->ndev_rules, 2);
    assert_int_equal(s->dev_rules[0].access, CR_DEV_RWM);
    assert_int_equal(s->dev_rules[1].access, CR_DEV_READ);
    assert_int_equal(s->dev_rules[1].type, 'c');
    cr_config_free(&cfg);
    expect_errors(SVC "device = /etc/passwd\ndevice = /dev/nope-corral\n"
                  "device = /dev/null:/etc/null\ndevice = /dev/null:rwx\n",
                  "$/main.ini:4: device: /etc/passwd: not a device node",
                  "$/main.ini:5: device: /dev/nope-corral: No such file or directory",
                  "$/main.ini:6: device: /etc/null: the container's path must be below /dev",
                  "$/main.ini:7: device: '/dev/null:rwx' is not HOST[:CONTAINER][:rwm] "
                  "(absolute paths, access of r, w, m)", NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_security_keys),
        cmocka_unit_test(test_security_host_root),
        cmocka_unit_test(test_seccomp_profile_file),
        cmocka_unit_test(test_device_key),
        cmocka_unit_test(test_host_root_default),
        cmocka_unit_test(test_network_modes),
        cmocka_unit_test(test_network_errors),
        cmocka_unit_test(test_network_host_route),
        cmocka_unit_test(test_every_type),
        cmocka_unit_test(test_cpu_max_forms),
        cmocka_unit_test(test_value_errors),
        cmocka_unit_test(test_command_errors),
        cmocka_unit_test(test_split_command),
        cmocka_unit_test(test_structure_errors),
        cmocka_unit_test(test_supervisord_sections_ignored),
        cmocka_unit_test(test_eventlistener_errors),
        cmocka_unit_test(test_groups),
        cmocka_unit_test(test_long_lines),
        cmocka_unit_test(test_supervisord_parsing),
        cmocka_unit_test(test_nul_and_crlf),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_all_errors_reported),
        cmocka_unit_test(test_duplicates_among_many),
        cmocka_unit_test(test_includes),
        cmocka_unit_test(test_expansions),
        cmocka_unit_test(test_numprocs),
        cmocka_unit_test(test_defaults_are_each_services_own),
        cmocka_unit_test(test_id_map_ranges),
        cmocka_unit_test(test_too_large_values),
        cmocka_unit_test(test_dependency_cycle_numprocs),
        cmocka_unit_test(test_services_cap),
        cmocka_unit_test(test_values_init_refuses),
        cmocka_unit_test(test_cross_key),
        cmocka_unit_test(test_machine_errors),
        cmocka_unit_test(test_no_machine_checks),
        cmocka_unit_test(test_cgroup_errors),
        cmocka_unit_test(test_probe),
        cmocka_unit_test(test_spec_round_trip),
        cmocka_unit_test(test_reload_diff),
        cmocka_unit_test(test_key_table),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
