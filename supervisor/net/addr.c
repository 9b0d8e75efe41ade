/* Pure address arithmetic and names; see addr.h. */
#include "net/addr.h"
#include "text.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int bad(char *err, size_t errlen, const char *fmt, const char *s, int a, int b)
{
    snprintf(err, errlen, fmt, s, a, b);
    return -EINVAL;
}

/* Splits "ADDR/N" into a copy of ADDR and N in [lo, hi]. */
static int split_cidr(const char *s, char *addr, size_t alen, int lo, int hi, int *prefix,
                      char *err, size_t errlen)
{
    const char *slash = strchr(s, '/');
    if (!slash || (size_t)(slash - s) >= alen)
        return bad(err, errlen, "'%s' is not ADDRESS/PREFIX", s, 0, 0);
    memcpy(addr, s, (size_t)(slash - s));
    addr[slash - s] = '\0';
    char *end;
    long n = strtol(slash + 1, &end, 10);
    if (!slash[1] || *end || !isdigit((unsigned char)slash[1]) || n < lo || n > hi)
        return bad(err, errlen, "'%s': the prefix length must be %d to %d", s, lo, hi);
    *prefix = (int)n;
    return 0;
}

int cr_cidr4_parse(const char *s, struct cr_cidr4 *out, char *err, size_t errlen)
{
    char a[INET_ADDRSTRLEN + 1];
    struct in_addr in;
    int p;
    if (split_cidr(s, a, sizeof a, 8, 30, &p, err, errlen))
        return -EINVAL;
    if (inet_pton(AF_INET, a, &in) != 1)
        return bad(err, errlen, "'%s' is not an IPv4 subnet (e.g. 10.89.0.0/24)", s, 0, 0);
    uint32_t v = ntohl(in.s_addr);
    if (v & ~cr_mask4(p))
        return bad(err, errlen, "'%s' has host bits set (the subnet starts at a multiple of "
                   "2^%d)", s, 32 - p, 0);
    out->addr = v;
    out->prefix = p;
    return 0;
}

int cr_cidr6_parse(const char *s, struct cr_cidr6 *out, char *err, size_t errlen)
{
    char a[INET6_ADDRSTRLEN + 1];
    int p;
    if (split_cidr(s, a, sizeof a, 16, 120, &p, err, errlen))
        return -EINVAL;
    if (inet_pton(AF_INET6, a, out->addr) != 1)
        return bad(err, errlen, "'%s' is not an IPv6 subnet (e.g. fd00:89::/64)", s, 0, 0);
    for (int bit = p; bit < 128; bit++)
        if (out->addr[bit / 8] & (0x80 >> (bit % 8)))
            return bad(err, errlen, "'%s' has host bits set", s, 0, 0);
    out->prefix = p;
    return 0;
}

bool cr_cidr4_overlap(const struct cr_cidr4 *a, const struct cr_cidr4 *b)
{
    uint32_t m = cr_mask4(a->prefix < b->prefix ? a->prefix : b->prefix);
    return (a->addr & m) == (b->addr & m);
}

bool cr_cidr6_overlap(const struct cr_cidr6 *a, const struct cr_cidr6 *b)
{
    int p = a->prefix < b->prefix ? a->prefix : b->prefix;
    for (int bit = 0; bit < p; bit++) {
        uint8_t m = (uint8_t)(0x80 >> (bit % 8));
        if ((a->addr[bit / 8] & m) != (b->addr[bit / 8] & m))
            return false;
    }
    return true;
}

void cr_ip4_format(uint32_t addr, char *buf, size_t len)
{
    snprintf(buf, len, "%u.%u.%u.%u", addr >> 24, (addr >> 16) & 255, (addr >> 8) & 255,
             addr & 255);
}

void cr_cidr4_format(const struct cr_cidr4 *c, char *buf, size_t len)
{
    char a[16];
    cr_ip4_format(c->addr, a, sizeof a);
    snprintf(buf, len, "%s/%d", a, c->prefix);
}

uint32_t cr_net_hash(const char *s)
{
    return cr_fnv1a(s, strlen(s));
}

int cr_net_pick4(const struct cr_cidr4 *net, const char *name,
                 bool (*taken)(uint32_t addr, void *arg), void *arg, uint32_t *out)
{
    /* Host numbers 2 .. size-2: 0 is the network, 1 the gateway, size-1 the broadcast. */
    uint32_t size = net->prefix >= 32 ? 1 : (uint32_t)1 << (32 - net->prefix);
    if (size < 4)
        return -ENOSPC;
    uint32_t slots = size - 3, start = cr_net_hash(name) % slots;
    for (uint32_t i = 0; i < slots; i++) {
        uint32_t a = net->addr + 2 + (start + i) % slots;
        if (!taken || !taken(a, arg)) {
            *out = a;
            return 0;
        }
    }
    return -ENOSPC;
}

int cr_net_pick6(const struct cr_cidr6 *net, const char *name,
                 bool (*taken)(const uint8_t addr[16], void *arg), void *arg, uint8_t out[16])
{
    int host_bits = 128 - net->prefix;
    uint32_t slots = host_bits >= 32 ? 0x7FFFFFFFu : ((uint32_t)1 << host_bits) - 2;
    uint32_t start = cr_net_hash(name) % slots;
    /* Probing at most 65536 slots: a bigger subnet is never that full. */
    for (uint32_t i = 0; i < slots && i < 65536; i++) {
        uint32_t h = 2 + (start + i) % slots;
        memcpy(out, net->addr, 16);
        for (int b = 0; b < 4; b++)
            out[15 - b] |= (uint8_t)(h >> (8 * b));
        if (!taken || !taken(out, arg))
            return 0;
    }
    return -ENOSPC;
}

int cr_port_parse(const char *s, struct cr_port *out, char *err, size_t errlen)
{
    static const char *form = "'%s' is not [IP:]HOST:CONTAINER[/tcp|/udp] (e.g. 8080:80, "
                              "127.0.0.1:5353:53/udp)";
    char buf[64];
    if (strlen(s) >= sizeof buf)
        return bad(err, errlen, form, s, 0, 0);
    strcpy(buf, s);
    memset(out, 0, sizeof *out);
    out->proto = CR_PROTO_TCP;
    char *slash = strchr(buf, '/');
    if (slash) {
        *slash = '\0';
        if (!strcasecmp(slash + 1, "udp"))
            out->proto = CR_PROTO_UDP;
        else if (strcasecmp(slash + 1, "tcp"))
            return bad(err, errlen, form, s, 0, 0);
    }
    char *f[3];
    int n = 0;
    for (char *p = buf; n < 3; n++) {
        f[n] = p;
        char *c = strchr(p, ':');
        if (!c) {
            n++;
            break;
        }
        *c = '\0';
        p = c + 1;
        if (n == 2)
            return bad(err, errlen, form, s, 0, 0);
    }
    if (n < 2)
        return bad(err, errlen, form, s, 0, 0);
    if (n == 3) {
        struct in_addr in;
        if (inet_pton(AF_INET, f[0], &in) != 1)
            return bad(err, errlen, "'%s': the address must be an IPv4 address of the host", s,
                       0, 0);
        out->ip = ntohl(in.s_addr);
    }
    for (int i = n - 2; i < n; i++) {
        char *end;
        long v = strtol(f[i], &end, 10);
        if (!isdigit((unsigned char)*f[i]) || *end || v < 1 || v > 65535)
            return bad(err, errlen, "'%s': ports are 1 to 65535", s, 0, 0);
        if (i == n - 2)
            out->host = (uint16_t)v;
        else
            out->container = (uint16_t)v;
    }
    return 0;
}

bool cr_port_clash(const struct cr_port *a, const struct cr_port *b)
{
    return a->proto == b->proto && a->host == b->host && (!a->ip || !b->ip || a->ip == b->ip);
}

void cr_port_format(const struct cr_port *p, char *buf, size_t len)
{
    char ip[16] = "";
    if (p->ip)
        cr_ip4_format(p->ip, ip, sizeof ip);
    snprintf(buf, len, "%s%s%u->%u/%s", ip, p->ip ? ":" : "", p->host, p->container,
             p->proto == CR_PROTO_UDP ? "udp" : "tcp");
}

static void base36(uint32_t v, int digits, char *out)
{
    static const char d[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    for (int i = digits - 1; i >= 0; i--) {
        out[i] = d[v % 36];
        v /= 36;
    }
}

void cr_net_ifprefix(const char *cgroup_root, char out[CR_IFNAME_MAX + 1])
{
    const char *last = strrchr(cgroup_root, '/');
    last = last ? last + 1 : cgroup_root;
    int n = 0;
    for (const char *p = last; *p && n < 6; p++)
        if (isalnum((unsigned char)*p))
            out[n++] = (char)tolower((unsigned char)*p);
    if (n == 0)
        out[n++] = 'c';
    /* 36^4 = 1679616 values of the root's hash */
    base36(cr_net_hash(cgroup_root) % 1679616u, 4, out + n);
    out[n + 4] = '\0';
}

void cr_net_ifname(const char *cgroup_root, char kind, uint32_t item,
                   char out[CR_IFNAME_MAX + 1])
{
    cr_net_ifprefix(cgroup_root, out);
    size_t n = strlen(out);
    out[n] = kind;
    base36(item % 1679616u, 4, out + n + 1);
    out[n + 5] = '\0';
}

bool cr_ifname_valid(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > CR_IFNAME_MAX || !strcmp(s, ".") || !strcmp(s, ".."))
        return false;
    for (; *s; s++)
        if (*s == '/' || *s == ':' || isspace((unsigned char)*s) || iscntrl((unsigned char)*s))
            return false;
    return true;
}

static void root_name(const char *root, char sep, char *out, size_t len)
{
    size_t n = 0;
    for (; *root && n + 1 < len; root++)
        out[n++] = *root == '/' ? sep : *root;
    out[n] = '\0';
}

void cr_net_state_dir(const char *run_dir, const char *cgroup_root, const char *svc, char *buf,
                      size_t len)
{
    char r[256];
    root_name(cgroup_root, '_', r, sizeof r);
    snprintf(buf, len, "%s/%s%s%s", run_dir, r, svc ? "/" : "", svc ? svc : "");
}

void cr_net_table(const char *cgroup_root, char *buf, size_t len)
{
    char r[200];
    root_name(cgroup_root, '-', r, sizeof r);
    snprintf(buf, len, "corral-%s", r);
}

void cr_net_hosts_file(const char *run_dir, const char *cgroup_root, const char *svc,
                       const char *only_net, char *buf, size_t len)
{
    char dir[4096];
    cr_net_state_dir(run_dir, cgroup_root, NULL, dir, sizeof dir);
    if (only_net)
        snprintf(buf, len, "%s/hosts.%s", dir, only_net);
    else
        snprintf(buf, len, "%s/%s/hosts", dir, svc);
}

void cr_net_resolv_file(const char *run_dir, const char *cgroup_root, char *buf, size_t len)
{
    char dir[4096];
    cr_net_state_dir(run_dir, cgroup_root, NULL, dir, sizeof dir);
    snprintf(buf, len, "%s/resolv.conf", dir);
}
