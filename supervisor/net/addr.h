/* Addresses, subnets, published ports and interface names: the pure part of networking (no
 * syscalls), shared by config/ (checks) and the host side in net/ (allocation, names). */
#ifndef CORRAL_NET_ADDR_H
#define CORRAL_NET_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CR_IFNAME_MAX 15         /* IFNAMSIZ - 1 */

struct cr_cidr4 {
    uint32_t addr;               /* host byte order, host bits zero */
    int prefix;                  /* 0-32; -1: not set */
};

struct cr_cidr6 {
    uint8_t addr[16];            /* host bits zero */
    int prefix;                  /* 0-128; -1: not set */
};

/* "10.89.0.0/24" (prefix 8 to 30: a gateway and at least one address for a service). Host
 * bits set are an error, as in Docker. Returns 0 or -EINVAL with a reason in err. */
int cr_cidr4_parse(const char *s, struct cr_cidr4 *out, char *err, size_t errlen);
/* "fd00:89::/64" (prefix 16 to 120). */
int cr_cidr6_parse(const char *s, struct cr_cidr6 *out, char *err, size_t errlen);
bool cr_cidr4_overlap(const struct cr_cidr4 *a, const struct cr_cidr4 *b);
bool cr_cidr6_overlap(const struct cr_cidr6 *a, const struct cr_cidr6 *b);
/* "10.89.0.0/24" */
void cr_cidr4_format(const struct cr_cidr4 *c, char *buf, size_t len);
void cr_ip4_format(uint32_t addr, char *buf, size_t len);
/* The netmask of a prefix, host byte order. */
static inline uint32_t cr_mask4(int prefix)
{
    return prefix <= 0 ? 0 : prefix >= 32 ? 0xFFFFFFFFu : ~((1u << (32 - prefix)) - 1);
}
/* The gateway (the bridge's own address): the subnet's first address. */
static inline uint32_t cr_gateway4(const struct cr_cidr4 *c) { return c->addr + 1; }

/* FNV-1a of s (32 bits): names → stable numbers (addresses, interface names). */
uint32_t cr_net_hash(const char *s);

/* The address of name in net: a host number derived from the name's hash, then the next free
 * one (taken() says which are) in order, wrapping; never the network, the gateway (.1) or the
 * broadcast address. Returns 0 with *out, or -ENOSPC when every address is taken. */
int cr_net_pick4(const struct cr_cidr4 *net, const char *name,
                 bool (*taken)(uint32_t addr, void *arg), void *arg, uint32_t *out);
/* The same for IPv6: the hash in the low 32 bits of the host part (wrapping in 2^31 slots
 * below a /96, in the host part's size above it). */
int cr_net_pick6(const struct cr_cidr6 *net, const char *name,
                 bool (*taken)(const uint8_t addr[16], void *arg), void *arg, uint8_t out[16]);

enum cr_proto { CR_PROTO_TCP = 6, CR_PROTO_UDP = 17 };

/* A published port: [IP:]HOST:CONTAINER[/tcp|/udp]. */
struct cr_port {
    uint32_t ip;                 /* host byte order; 0: every address of the host */
    uint16_t host, container;
    uint8_t proto;               /* enum cr_proto */
};
int cr_port_parse(const char *s, struct cr_port *out, char *err, size_t errlen);
/* Two ports that cannot both be published: same protocol and host port, addresses equal or
 * one of them every address. */
bool cr_port_clash(const struct cr_port *a, const struct cr_port *b);
/* "127.0.0.1:8080->80/tcp" */
void cr_port_format(const struct cr_port *p, char *buf, size_t len);

/* Interface names of one supervisor: PREFIX (up to the first 6 letters and digits of the
 * cgroup root's last component, lower case: "corral", "crtest") + 4 base-36 digits of the
 * root's hash + a kind letter ('b' bridge, 'v' veth) + 4 base-36 digits of item's hash. 15
 * characters at most, so every name of one root starts with the same 10 (cr_net_ifprefix),
 * which is how a supervisor finds its own leftovers. */
void cr_net_ifprefix(const char *cgroup_root, char out[CR_IFNAME_MAX + 1]);
void cr_net_ifname(const char *cgroup_root, char kind, uint32_t item,
                   char out[CR_IFNAME_MAX + 1]);
/* The runtime folder of one supervisor: RUN_DIR/ROOT with '/' in ROOT written '_'. A
 * service's files (hosts, resolv.conf) are in its folder SVC below it. */
void cr_net_state_dir(const char *run_dir, const char *cgroup_root, const char *svc, char *buf,
                      size_t len);
/* A service's /etc/hosts on the host: the file every service of only network only_net shares
 * (STATE/hosts.NET), else its own (STATE/SVC/hosts). Its /etc/resolv.conf: one for all
 * (STATE/resolv.conf). */
void cr_net_hosts_file(const char *run_dir, const char *cgroup_root, const char *svc,
                       const char *only_net, char *buf, size_t len);
void cr_net_resolv_file(const char *run_dir, const char *cgroup_root, char *buf, size_t len);
/* The nftables table of one supervisor: "corral-ROOT" ('/' written '-'), family inet. */
void cr_net_table(const char *cgroup_root, char *buf, size_t len);
/* A name the kernel takes for an interface: 1-15 bytes, no '/', ':', blank or control. */
bool cr_ifname_valid(const char *s);

#endif
