/* supervisor: command line. The configuration modes (--check, --print-spec, --list-keys)
 * live here; running services is supervisor_run() (daemon.c). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <nss.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "own_process.h"
#include "export.h"
#include "images.h"
#include "log.h"
#include "config/config.h"
#include "ctl_proto.h"
#include "net/host.h"
#include "pid1/pid1.h"
#include "run_net.h"
#include "policy/syscall_filter.h"

#define DEFAULT_CONFIG CR_DEFAULT_CONFIG

static void usage(FILE *out)
{
    fprintf(out,
            "usage: supervisor [-c FILE] [run NAME [-- CMD ARGS...]]\n"
            "       supervisor -c FILE --check [--syntax-only]\n"
            "       supervisor -c FILE --print-spec NAME\n"
            "       supervisor -c FILE images|volumes [--prune]\n"
            "       supervisor -c FILE export oci NAME DIR[:TAG] | export bundle NAME DIR |\n"
            "                          export kube [--deployment] [NAME...]\n"
            "       supervisor --list-keys[=man]\n"
            "       supervisor --print-seccomp\n"
            "\n"
            "  -c, --config FILE     services file (default " DEFAULT_CONFIG ")\n"
            "      --pid1            run as the machine's init (the default as pid 1 of the\n"
            "                        initial pid namespace; as a container's pid 1: with --pid1):\n"
            "                        mount /proc, /sys, /dev, /run, /tmp, cgroup2; hostname; lo;\n"
            "                        the kernel command line's corral.conf=PATH overrides -c\n"
            "      --resume FD       (svctl reexec's) take over the services and running\n"
            "                        containers that the state memfd FD describes\n"
            "  -n, --check           validate FILE, print every error, exit 0 (valid) or 1\n"
            "      --syntax-only     with --check: the file alone, not the checks that look at\n"
            "                        this machine (commands, users, rootfs, cgroups): for a\n"
            "                        file meant for another machine or image\n"
            "      --print-spec NAME print the spec init receives for service NAME\n"
            "      --list-keys[=man] print every configuration key as a markdown table\n"
            "                        (=man: as roff, for services.ini(5))\n"
            "      --print-seccomp   print the default seccomp profile as Docker/OCI JSON\n"
            "  images [--prune]      the images of FILE's services, the store's layers with\n"
            "                        their sizes and users; --prune removes unused layers\n"
            "  volumes [--prune]     the named volumes, their sizes and users; --prune\n"
            "                        removes those no service of FILE names\n"
            "  export oci NAME DIR[:TAG]  NAME's image with its command, environment, user\n"
            "                        as an OCI image layout (TAG: NAME by default)\n"
            "  export bundle NAME DIR  NAME's container as an OCI runtime bundle (config.json\n"
            "                        and corral's init) that crun or runc runs\n"
            "  export kube [--deployment] [NAME...]  a Kubernetes Pod (or Deployment) per\n"
            "                        service with those joining its network (default:\n"
            "                        those with an image) on stdout\n"
            "  -h, --help            this text\n"
            "  -V, --version         print the version\n"
            "\n"
            "Exit status: 0 success, 1 invalid configuration or failure, 2 usage error.\n");
}

static void print_messages(const struct cr_config *cfg)
{
    for (size_t i = 0; i < cfg->notices.n; i++)
        fprintf(stderr, "notice: %s\n", cfg->notices.v[i]);
    for (size_t i = 0; i < cfg->errors.n; i++)
        fprintf(stderr, "%s\n", cfg->errors.v[i]);
}

/* "; uid_map = C H N" for each line of a map (/proc/PID/uid_map's text). */
static void print_map(const char *name, const char *text)
{
    for (const char *p = text; p && *p;) {
        size_t n = strcspn(p, "\n");
        printf("; %s = %.*s\n", name, (int)n, p);
        p += n + (p[n] == '\n');
    }
}

/* The network as comments (the supervisor sets it up, init never sees it), and the spec as
 * init gets it: a bridge service's /etc/hosts and /etc/resolv.conf binds included. */
static int print_spec(const struct cr_config *cfg, const struct cr_service *svc)
{
    const struct cr_global *g = &cfg->global;
    char a[64];
    switch (svc->net_mode) {
    case CR_NETMODE_HOST:
        printf("; network = host: no network namespace\n");
        break;
    case CR_NETMODE_NONE:
        printf("; network = none: a network namespace with lo only\n");
        break;
    case CR_NETMODE_SERVICE:
        printf("; network = service:%s: %s's network namespace, joined before init runs\n",
               svc->join, svc->join);
        break;
    case CR_NETMODE_CNI:
        printf("; network = cni:%s: the plugins of conflist %s, ADD before init runs\n",
               svc->join, svc->join);
        break;
    case CR_NETMODE_BRIDGE:
        printf("; network: a namespace the supervisor makes and connects before init runs\n");
        for (size_t i = 0; i < svc->nnets; i++) {
            const struct cr_network *nw = svc->nets[i];
            char br[CR_IFNAME_MAX + 1];
            if (nw->bridge)
                snprintf(br, sizeof br, "%s", nw->bridge);
            else
                cr_net_ifname(g->cgroup_root, 'b', cr_net_hash(nw->name), br);
            if (nw->net4.prefix >= 0)
                cr_cidr4_format(&nw->net4, a, sizeof a);
            else
                snprintf(a, sizeof a, "a /24 of 10.89.0.0/16, chosen and kept");
            printf("; eth%zu: network %s, bridge %s, subnet %s%s%s%s\n", i, nw->name, br, a,
                   nw->subnet6 ? ", subnet6 " : "", nw->subnet6 ? nw->subnet6 : "",
                   nw->internal ? ", internal" : "");
        }
        for (size_t i = 0; i < svc->nport; i++) {
            cr_port_format(&svc->port[i], a, sizeof a);
            printf("; ports = %s\n", a);
        }
        break;
    }
    print_map("uid_map", svc->uid_map_text);
    print_map("gid_map", svc->gid_map_text);
    fflush(stdout);
    struct cr_spec spec = svc->spec;
    char paths[2][4200];
    if (svc->net_mode == CR_NETMODE_BRIDGE &&
        cr_net_bind_files(g->run_dir, g->cgroup_root, svc->name,
                          svc->nnets == 1 ? svc->nets[0]->name : NULL, &svc->spec, &spec,
                          paths) < 0)
        return -ENOMEM;
    int r = cr_spec_write_fd(&spec, STDOUT_FILENO);
    if (spec.binds != svc->spec.binds)
        free(spec.binds);
    return r;
}

int main(int argc, char **argv)
{
    enum { OPT_PRINT_SPEC = 256, OPT_LIST_KEYS, OPT_PRINT_SECCOMP, OPT_SYNTAX_ONLY, OPT_PID1,
           OPT_RESUME };
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check", no_argument, NULL, 'n'},
        {"syntax-only", no_argument, NULL, OPT_SYNTAX_ONLY},
        {"print-spec", required_argument, NULL, OPT_PRINT_SPEC},
        {"list-keys", optional_argument, NULL, OPT_LIST_KEYS},
        {"print-seccomp", no_argument, NULL, OPT_PRINT_SECCOMP},
        {"pid1", no_argument, NULL, OPT_PID1},
        {"resume", required_argument, NULL, OPT_RESUME},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    /* Names of users, groups, hosts and services from the files (and DNS) only, never through
     * a module named in /etc/nsswitch.conf: the static glibc would dlopen it with a C library
     * of its own, and a lookup it did not find in the files (an owner `nosuchuser` with
     * "passwd: files systemd") crashed there. Containers' users never come from here (their
     * own /etc/passwd: config/machine.c). */
    static const char *const nss[][2] = {{"passwd", "files"}, {"group", "files"},
                                         {"shadow", "files"}, {"hosts", "files dns"},
                                         {"services", "files"}, {"netgroup", "files"}};
    for (size_t i = 0; i < sizeof nss / sizeof nss[0]; i++)
        __nss_configure_lookup(nss[i][0], nss[i][1]);
    const char *path = DEFAULT_CONFIG, *spec_name = NULL;
    bool check = false, syntax_only = false, pid1_opt = false;
    int resume_fd = -1;
    int c;
    while ((c = getopt_long(argc, argv, "+c:nhV", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 'n':
            check = true;
            break;
        case OPT_PRINT_SPEC:
            spec_name = optarg;
            break;
        case OPT_SYNTAX_ONLY:
            syntax_only = true;
            break;
        case OPT_LIST_KEYS:
            if (!optarg || !strcmp(optarg, "markdown"))
                cr_keys_print_markdown(stdout);
            else if (!strcmp(optarg, "man"))
                cr_keys_print_man(stdout);
            else {
                fprintf(stderr, "supervisor: --list-keys: unknown format '%s' "
                                "(markdown, man)\n", optarg);
                return 2;
            }
            return 0;
        case OPT_PRINT_SECCOMP:
            cr_seccomp_print_default(stdout);
            return 0;
        case OPT_PID1:
            pid1_opt = true;
            break;
        case OPT_RESUME: {
            /* svctl reexec's: the state memfd the supervisor before the execve left open */
            char *e;
            long v = strtol(optarg, &e, 10);
            if (*e || v < 3 || v > 1 << 20 || fcntl((int)v, F_GETFD) < 0) {
                fprintf(stderr, "supervisor: --resume: '%s' is not an open fd\n", optarg);
                return 2;
            }
            /* The fds handed over keep no close-on-exec (io/handed.h); this one is read
             * and closed before anything is spawned. */
            resume_fd = (int)v;
            break;
        }
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("supervisor (corral) %s\n", CORRAL_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (syntax_only && !check) {
        fprintf(stderr, "supervisor: --syntax-only goes with --check\n");
        usage(stderr);
        return 2;
    }
    if ((check || spec_name) && optind < argc) {
        fprintf(stderr, "supervisor: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }

    bool images = optind < argc && (!strcmp(argv[optind], "images") ||
                                    !strcmp(argv[optind], "volumes"));
    bool prune = images && optind + 1 < argc && !strcmp(argv[optind + 1], "--prune");
    if (images && optind + 1 + prune < argc) {
        fprintf(stderr, "supervisor: %s: unexpected argument '%s'\n", argv[optind],
                argv[optind + 1 + prune]);
        usage(stderr);
        return 2;
    }
    bool export = !images && optind < argc && !strcmp(argv[optind], "export");
    if (images || export)
        check = true;            /* read-only, as --check: nothing is persisted */

    /* The machine's init: never exits (pid1_main). */
    struct sv_mode mode = {.pid1 = !check && !spec_name &&
                                   (pid1_opt || (getpid() == 1 && cr_pid1_is_machine())),
                           .resume_fd = resume_fd};
    if (mode.pid1 && getpid() != 1) {
        fprintf(stderr, "supervisor: --pid1: this is pid %d, not the machine's PID 1 (it would "
                        "stop every process of the machine on its way down)\n", (int)getpid());
        return 2;
    }
    char cmdline_conf[4096];
    if (mode.pid1 && resume_fd < 0) {
        char err[512];
        if (cr_pid1_setup(err, sizeof err) < 0)
            cr_pid1_fatal(err, 10);
        if (cr_pid1_cmdline_conf(cmdline_conf, sizeof cmdline_conf))
            path = cmdline_conf;
        cr_log(NULL, "configuration %s", path);
    }

    /* A re-exec's state before the file: as many services as it hands over, the heap is
     * set up for them before the file is read (own_process.h). */
    if (resume_fd >= 0 && !check && !spec_name) {
        mode.state = sv_resume_read(resume_fd);
        cr_own_heap_huge(sv_resume_services(mode.state));
    }
    /* `run`: its container's network namespace is made while the file is read (run_net.h) */
    if (!check && !spec_name && !mode.pid1 && resume_fd < 0 && optind < argc &&
        !strcmp(argv[optind], "run"))
        sv_netns_ahead();
    struct cr_config cfg;
    /* Running (or `run`) keeps the id ranges given to new user_namespace = auto names. */
    struct cr_config_opts opts = {.userns_persist = !check && !spec_name,
                                  .no_machine_checks = syntax_only};
    int r = cr_config_load(path, &opts, &cfg);
    if (r < 0)
        free(mode.state);   /* nothing resumes */
    if (r == -ENOMEM) {
        fprintf(stderr, "supervisor: out of memory\n");
        cr_config_free(&cfg);
        if (mode.pid1)
            cr_pid1_fatal("out of memory reading the configuration", 10);
        return 1;
    }
    print_messages(&cfg);
    if (r < 0) {
        fprintf(stderr, "supervisor: %s: %zu error%s\n", path, cfg.errors.n,
                cfg.errors.n == 1 ? "" : "s");
        if (mode.pid1) {
            char why[4200];
            snprintf(why, sizeof why, "%s: %zu error%s in the configuration (above); nothing "
                     "started", path, cfg.errors.n, cfg.errors.n == 1 ? "" : "s");
            cr_config_free(&cfg);
            cr_pid1_fatal(why, 10);
        }
        cr_config_free(&cfg);
        return 1;
    }
    if (images) {
        r = strcmp(argv[optind], "images") ? sv_volumes(&cfg, prune) : sv_images(&cfg, prune);
        cr_config_free(&cfg);
        return r;
    }
    if (export) {
        r = sv_export(&cfg, argc - optind - 1, argv + optind + 1);
        cr_config_free(&cfg);
        return r;
    }
    if (check) {
        printf("%s: OK, %zu service%s\n", path, cfg.nservices, cfg.nservices == 1 ? "" : "s");
        cr_config_free(&cfg);
        return 0;
    }
    if (spec_name) {
        const struct cr_service *svc = cr_config_find(&cfg, spec_name);
        if (!svc) {
            fprintf(stderr, "supervisor: %s: no service '%s'", path, spec_name);
            for (size_t i = 0; i < cfg.nservices; i++)
                fprintf(stderr, "%s%s", i ? ", " : " (services: ", cfg.services[i].name);
            fprintf(stderr, "%s\n", cfg.nservices ? ")" : "");
            cr_config_free(&cfg);
            return 1;
        }
        /* The user namespace's maps and the network are the supervisor's to set up, not
         * init's: shown as comments, which the spec's reader skips. */
        r = print_spec(&cfg, svc);
        if (r < 0)
            fprintf(stderr, "supervisor: %s: cannot write the spec: %s\n", spec_name,
                    strerror(-r));
        cr_config_free(&cfg);
        return r < 0 ? 1 : 0;
    }
    if (mode.pid1 && resume_fd < 0)
        cr_pid1_machine(cfg.global.hostname);
    mode.config_path = path;
    if (resume_fd < 0)
        cr_own_heap_huge(cfg.nservices);   /* for the services' own state, on top of the file's */
    int status = supervisor_run(&cfg, argc - optind, argv + optind, &mode);
    if (!mode.pid1)
        return status;
    if (mode.power == CR_POWER_NONE) {
        char why[64];
        snprintf(why, sizeof why, "the supervisor stopped (status %d)", status);
        cr_pid1_fatal(why, 10);
    }
    cr_pid1_power(mode.power, 5000);
}
