/* The networking keys: a service's `network` and `ports`, the [network:NAME] sections, and
 * the checks across them (unknown networks, service: cycles, overlapping subnets, a subnet on
 * a host route, port clashes). Nothing here touches the network: the host side is net/.
 *
 * `network` and `namespaces` say one thing together: `host` is "no net namespace" (net is
 * taken out of the default namespaces; an explicit namespaces with net is a conflict), every
 * other mode needs net in namespaces, and a namespaces without net means host when network
 * is not given. [program:] sections (supervisord's files) keep what they always had: a net
 * namespace with lo only (none); [service:] gets the default bridge. */
#include "config/config.h"
#include "config/values.h"
#include "net/host.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const mode_names[] = {
    [CR_NETMODE_HOST] = "host", [CR_NETMODE_NONE] = "none", [CR_NETMODE_BRIDGE] = "bridge",
    [CR_NETMODE_SERVICE] = "service", [CR_NETMODE_CNI] = "cni",
};

void cr_network_free(struct cr_network *n)
{
    for (int i = 0; i < CR_NKEYS; i++)
        if (cr_keys[i].sections & CR_SEC_NETWORK)
            cr_cfg_free_field(&cr_keys[i], (char *)n + cr_keys[i].off);
    free(n->name);
}

const struct cr_network *cr_config_network(const struct cr_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nnetworks; i++)
        if (!strcmp(cfg->networks[i].name, name))
            return &cfg->networks[i];
    return NULL;
}

void cr_network_def(const struct cr_network *nw, struct cr_net_def *out)
{
    *out = (struct cr_net_def){.name = nw->name, .bridge = nw->bridge, .net4 = nw->net4,
                               .net6 = nw->net6, .internal = nw->internal};
}

/* One item of `network`: its mode; *arg what follows the colon (NULL for a bare word). */
static int net_item(const char *v, const char **arg)
{
    static const struct { const char *word; int mode; bool arg; } forms[] = {
        {"bridge", CR_NETMODE_BRIDGE, false}, {"bridge:", CR_NETMODE_BRIDGE, true},
        {"none", CR_NETMODE_NONE, false}, {"host", CR_NETMODE_HOST, false},
        {"service:", CR_NETMODE_SERVICE, true}, {"cni:", CR_NETMODE_CNI, true},
    };
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        size_t n = strlen(forms[i].word);
        if (forms[i].arg ? !strncmp(v, forms[i].word, n) && v[n] : !strcmp(v, forms[i].word)) {
            *arg = forms[i].arg ? v + n : NULL;
            return forms[i].mode;
        }
    }
    return -1;
}

void cr_network_service_check(struct cr_service *svc, bool program, struct cr_errlist *errors)
{
    bool ns_given = svc->key_line[CR_K_NAMESPACES] != 0;
    bool has_net = svc->namespaces & CR_NS_NET;
    int mode = -1;
    for (size_t i = 0; i < svc->network.n; i++) {
        const char *v = svc->network.v[i], *arg;
        int line = svc->network.line[i];
        int m = net_item(v, &arg);
        if (m < 0) {
            cr_errlist_add(errors, "%s:%d: network: '%s' is not bridge, bridge:NAME, none, host, "
                           "service:NAME or cni:NAME", svc->file, line, v);
            continue;
        }
        if (mode >= 0 && (m != CR_NETMODE_BRIDGE || mode != CR_NETMODE_BRIDGE)) {
            cr_errlist_add(errors, "%s:%d: network: '%s' cannot be combined with %s (only "
                           "bridge networks make a list)", svc->file, line, v, mode_names[mode]);
            continue;
        }
        mode = m;
        if (m == CR_NETMODE_SERVICE || m == CR_NETMODE_CNI) {
            if (m == CR_NETMODE_SERVICE && !strcmp(arg, svc->name))
                cr_errlist_add(errors, "%s:%d: network: a service cannot join its own network "
                               "namespace", svc->file, line);
            free(svc->join);
            if (!(svc->join = strdup(arg)))
                errors->oom = true;
        }
    }
    if (mode < 0 && svc->network.n)
        return;                          /* reported */
    if (mode < 0)
        mode = !has_net ? CR_NETMODE_HOST              /* a [program:]'s default too */
             : program ? CR_NETMODE_NONE : CR_NETMODE_BRIDGE;
    svc->net_mode = mode;
    if (mode == CR_NETMODE_HOST) {
        if (ns_given && has_net)
            cr_service_error(errors, svc, CR_K_NETWORK, "host means no net namespace, but "
                             "namespaces has net (take net out of namespaces, or drop "
                             "network = host)");
        svc->namespaces &= ~(unsigned)CR_NS_NET;
    } else if (!has_net && svc->network.n) {
        cr_service_error(errors, svc, CR_K_NETWORK, "%s needs the net namespace (add net to "
                         "namespaces)", mode_names[mode]);
    }

    for (size_t i = 0; i < svc->ports.n; i++) {
        struct cr_port p;
        char err[256];
        int line = svc->ports.line[i];
        if (cr_port_parse(svc->ports.v[i], &p, err, sizeof err)) {
            cr_errlist_add(errors, "%s:%d: ports: %s", svc->file, line, err);
            continue;
        }
        if (mode != CR_NETMODE_BRIDGE && mode != CR_NETMODE_CNI) {
            cr_errlist_add(errors, "%s:%d: ports: needs a bridge or cni network (network = %s%s)",
                           svc->file, line, mode_names[mode],
                           mode == CR_NETMODE_SERVICE ? ": publish them on the service whose "
                           "namespace this one joins" : "");
            continue;
        }
        struct cr_port *np = realloc(svc->port, (svc->nport + 1) * sizeof *np);
        if (!np) {
            errors->oom = true;
            return;
        }
        svc->port = np;
        np[svc->nport++] = p;
    }
}

/* ---- across the config ------------------------------------------------------------------- */

static void net_error(struct cr_config *cfg, const struct cr_network *n, int key, const char *fmt,
                      const char *a, const char *b)
{
    char text[512];
    snprintf(text, sizeof text, fmt, a, b);
    if (!n->file)
        cr_errlist_add(&cfg->errors, "%s: the default network: %s", cfg->path, text);
    else if (key >= 0 && n->key_line[key])
        cr_errlist_add(&cfg->errors, "%s:%d: %s: %s", n->file, n->key_line[key],
                       cr_keys[key].name, text);
    else
        cr_errlist_add(&cfg->errors, "%s:%d: [network:%s]: %s", n->file, n->line, n->name, text);
}

/* The host's IPv4 routes (the main table) that are not on this supervisor's own bridges,
 * checked against net's subnet. A default route (prefix 0) collides with nothing. */
static void check_host_routes4(struct cr_config *cfg, const struct cr_network *n)
{
    FILE *f = fopen("/proc/net/route", "re");
    if (!f)
        return;
    char prefix[CR_IFNAME_MAX + 1], line[512];
    cr_net_ifprefix(cfg->global.cgroup_root ? cfg->global.cgroup_root : "corral", prefix);
    while (fgets(line, sizeof line, f)) {
        char dev[64];
        unsigned dst, gw, flags, mask;
        if (sscanf(line, "%63s %x %x %x %*d %*d %*d %x", dev, &dst, &gw, &flags, &mask) != 5)
            continue;                    /* the header */
        if (!mask || !strncmp(dev, prefix, strlen(prefix)))
            continue;
        bool own = false;
        for (size_t i = 0; i < cfg->nnetworks; i++)
            own |= cfg->networks[i].bridge && !strcmp(cfg->networks[i].bridge, dev);
        if (own)
            continue;
        /* /proc/net/route prints the kernel's big-endian words as host integers */
        struct cr_cidr4 r = {.addr = __builtin_bswap32(dst), .prefix = __builtin_popcount(mask)};
        if (cr_cidr4_overlap(&r, &n->net4)) {
            char a[32], b[96];
            cr_cidr4_format(&r, a, sizeof a);
            snprintf(b, sizeof b, "%s", dev);
            net_error(cfg, n, CR_K_SUBNET, "collides with the host's route to %s on %s "
                      "(choose another subnet)", a, b);
            break;
        }
    }
    fclose(f);
}

static void check_networks(struct cr_config *cfg, bool machine)
{
    char err[256];
    for (size_t i = 0; i < cfg->nnetworks; i++) {
        struct cr_network *n = &cfg->networks[i];
        if (n->subnet && cr_cidr4_parse(n->subnet, &n->net4, err, sizeof err)) {
            net_error(cfg, n, CR_K_SUBNET, "%s", err, NULL);
            n->net4.prefix = -1;
        }
        if (n->subnet6 && cr_cidr6_parse(n->subnet6, &n->net6, err, sizeof err)) {
            net_error(cfg, n, CR_K_SUBNET6, "%s", err, NULL);
            n->net6.prefix = -1;
        }
        if (n->bridge && !cr_ifname_valid(n->bridge))
            net_error(cfg, n, CR_K_BRIDGE, "'%s' is not an interface name (1 to 15 "
                      "characters, no '/', ':' or blank)", n->bridge, NULL);
        for (size_t j = 0; j < i; j++) {
            const struct cr_network *o = &cfg->networks[j];
            char where[300];
            snprintf(where, sizeof where, "%s:%d", o->file ? o->file : cfg->path, o->line);
            if (n->net4.prefix >= 0 && o->net4.prefix >= 0 &&
                cr_cidr4_overlap(&n->net4, &o->net4))
                net_error(cfg, n, CR_K_SUBNET, "overlaps the subnet of [network:%s] at %s",
                          o->name, where);
            if (n->net6.prefix >= 0 && o->net6.prefix >= 0 &&
                cr_cidr6_overlap(&n->net6, &o->net6))
                net_error(cfg, n, CR_K_SUBNET6, "overlaps the subnet6 of [network:%s] at %s",
                          o->name, where);
            if (n->bridge && o->bridge && !strcmp(n->bridge, o->bridge))
                net_error(cfg, n, CR_K_BRIDGE, "'%s' is the bridge of [network:%s] too",
                          n->bridge, o->name);
        }
        if (machine && n->net4.prefix >= 0)
            check_host_routes4(cfg, n);
    }
}

static const struct cr_service *find_service(const struct cr_config *cfg, const char *name)
{
    return cr_config_find(cfg, name);
}

/* bridge:NAME → indices of networks; service:X → X exists, is not host, no cycle. */
static void check_service_refs(struct cr_config *cfg, struct cr_service *svc)
{
    if (svc->net_mode == CR_NETMODE_BRIDGE) {
        size_t cap = svc->network.n ? svc->network.n : 1;
        free(svc->nets);
        svc->nnets = 0;
        if (!(svc->nets = calloc(cap, sizeof *svc->nets))) {
            cfg->errors.oom = true;
            return;
        }
        for (size_t i = 0; i < svc->network.n || (i == 0 && !svc->network.n); i++) {
            const char *v = svc->network.n ? svc->network.v[i] : "bridge";
            const char *name = strncmp(v, "bridge:", 7) ? "default" : v + 7;
            const struct cr_network *n = cr_config_network(cfg, name);
            int line = svc->network.n ? svc->network.line[i] : 0;
            if (!n) {
                cr_errlist_add(&cfg->errors, "%s:%d: network: no network '%s' (add a "
                               "[network:%s] section)", svc->file, line, name, name);
                continue;
            }
            bool dup = false;
            for (size_t k = 0; k < svc->nnets; k++)
                dup |= svc->nets[k] == n;
            if (dup) {
                cr_errlist_add(&cfg->errors, "%s:%d: network: '%s' is given twice", svc->file,
                               line, name);
                continue;
            }
            svc->nets[svc->nnets++] = n;
        }
        bool outside = false;
        for (size_t k = 0; k < svc->nnets; k++)
            outside |= !svc->nets[k]->internal;
        if (svc->nport && !outside && svc->nnets)
            cr_service_error(&cfg->errors, svc, CR_K_PORTS, "its networks are all internal: "
                             "nothing can reach a published port");
    } else if (svc->net_mode == CR_NETMODE_SERVICE && svc->join &&
               strcmp(svc->join, svc->name)) {       /* joining itself: reported */
        const struct cr_service *o = find_service(cfg, svc->join);
        if (!o) {
            cr_service_error(&cfg->errors, svc, CR_K_NETWORK, "service:%s: no service '%s'",
                             svc->join, svc->join);
            return;
        }
        /* Follow the chain: it must end in a service with a namespace of its own. */
        const struct cr_service *p = o;
        for (size_t steps = 0; p && p->net_mode == CR_NETMODE_SERVICE; steps++) {
            if (p == svc || steps > cfg->nservices) {
                cr_service_error(&cfg->errors, svc, CR_K_NETWORK, "service:%s: a cycle of "
                                 "service: networks (%s joins %s, which leads back)", svc->join,
                                 svc->name, svc->join);
                return;
            }
            p = p->join ? find_service(cfg, p->join) : NULL;
        }
        if (p && p->net_mode == CR_NETMODE_HOST)
            cr_service_error(&cfg->errors, svc, CR_K_NETWORK, "service:%s: %s has no net "
                             "namespace of its own (network = host)", svc->join, p->name);
        if (svc->namespaces & CR_NS_USER)
            cr_service_error(&cfg->errors, svc, CR_K_NETWORK, "service:%s: not with a user "
                             "namespace of its own (it could not enter %s's network namespace)",
                             svc->join, svc->join);
        /* Implicit: OTHER starts (and is ready) first, and stops after it. */
        bool listed = false;
        for (size_t k = 0; k < svc->depends_on.n; k++)
            listed |= cr_service_matches(o, svc->depends_on.v[k]);
        if (!listed) {
            char **v = realloc(svc->depends_on.v, (svc->depends_on.n + 1) * sizeof *v);
            int *l = v ? realloc(svc->depends_on.line, (svc->depends_on.n + 1) * sizeof *l)
                       : NULL;
            if (v)
                svc->depends_on.v = v;
            if (l)
                svc->depends_on.line = l;
            if (!v || !l || !(v[svc->depends_on.n] = strdup(o->name))) {
                cfg->errors.oom = true;
                return;
            }
            l[svc->depends_on.n++] = svc->key_line[CR_K_NETWORK];
        }
    }
}

static void check_ports(struct cr_config *cfg)
{
    for (size_t i = 0; i < cfg->nservices; i++) {
        struct cr_service *a = &cfg->services[i];
        for (size_t pa = 0; pa < a->nport; pa++)
            for (size_t j = 0; j <= i; j++) {
                const struct cr_service *b = &cfg->services[j];
                size_t end = j == i ? pa : b->nport;
                for (size_t pb = 0; pb < end; pb++) {
                    if (!cr_port_clash(&a->port[pa], &b->port[pb]))
                        continue;
                    char t[64];
                    cr_port_format(&b->port[pb], t, sizeof t);
                    int line = a->ports.line[pa];
                    /* ports.line lines up with port[] only when every item parsed */
                    if (a->ports.n != a->nport)
                        line = a->key_line[CR_K_PORTS];
                    cr_errlist_add(&cfg->errors, "%s:%d: ports: '%s' clashes with %s of "
                                   "%s%s", a->file, line, a->ports.v[pa < a->ports.n ? pa : 0],
                                   t, b->name, a == b ? " (the same service)" :
                                   a->program && b->program && !strcmp(a->program, b->program)
                                   ? " (another copy of numprocs: publish one port per copy, "
                                   "e.g. 808%(process_num)d:80)" : "");
                    goto next;
                }
            }
    next:;
    }
}

/* A service on a bridge network takes one of its IPv4 addresses (host numbers 2 .. size-2,
 * net/addr.c); more services than addresses would leave the rest failing at start, so the
 * file is refused. A subnet left unset is a /24, chosen when the network is first set up. */
static void check_room(struct cr_config *cfg)
{
    for (size_t i = 0; i < cfg->nnetworks; i++) {
        const struct cr_network *n = &cfg->networks[i];
        int prefix = n->subnet ? n->net4.prefix : 24;
        if (prefix < 0 || prefix > 30)
            continue;                    /* reported already */
        unsigned long room = (1ul << (32 - prefix)) - 3, users = 0;
        for (size_t k = 0; k < cfg->nservices; k++) {
            const struct cr_service *svc = &cfg->services[k];
            for (size_t j = 0; svc->net_mode == CR_NETMODE_BRIDGE && j < svc->nnets; j++)
                users += svc->nets[j] == n;
        }
        if (users <= room)
            continue;
        char a[32], b[96];
        snprintf(a, sizeof a, "%lu", users);
        snprintf(b, sizeof b, "%lu addresses (a /%d)%s", room, prefix,
                 n->subnet ? "" : "; set a larger subnet in [network:default]");
        net_error(cfg, n, CR_K_SUBNET, "%s services are on it, its subnet has %s", a, b);
    }
}

void cr_network_config_check(struct cr_config *cfg, bool machine_checks)
{
    check_networks(cfg, machine_checks);
    for (size_t i = 0; i < cfg->nservices; i++)
        check_service_refs(cfg, &cfg->services[i]);
    check_room(cfg);
    check_ports(cfg);
}

void cr_network_spec(struct cr_service *svc, const struct cr_global *g, struct cr_errlist *errors)
{
    (void)g;
    (void)errors;
    /* /etc/hosts and /etc/resolv.conf are bound at each start (service/container.c), from
     * the run_dir the supervisor started with: a reload that changes run_dir (read only at
     * start-up) leaves the services alone. */
    if (svc->net_mode == CR_NETMODE_BRIDGE || svc->net_mode == CR_NETMODE_SERVICE ||
        svc->net_mode == CR_NETMODE_CNI)   /* the supervisor's (cloned, or joined) */
        svc->spec.namespaces &= ~(unsigned)CR_NS_NET;
}
