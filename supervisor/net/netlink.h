/* rtnetlink through libmnl: links (bridges, veth pairs), addresses, routes. One request at a
 * time on a socket, each acknowledged (NLM_F_ACK) before the next (cr_nl_configure: several
 * in one message). Errors: negative errno and a message naming the operation. Internal to
 * net/. */
#ifndef CORRAL_NET_NETLINK_H
#define CORRAL_NET_NETLINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cr_nl {
    int fd;      /* -1: none (yet) */
    uint32_t seq, portid;
    bool lazy;   /* of the caller's namespace: made (libmnl loaded) by the first request */
};

/* A socket of the caller's network namespace, made with its first request (a supervisor
 * resumed by a re-exec, or one whose services need no bridge, loads no libmnl: a failure
 * to is that request's); or (netns_fd >= 0) of that namespace, opened now: the calling
 * thread enters it for the socket() and comes back (a netlink socket stays in the namespace
 * it was made in); the thread's namespace is the same before and after. */
int cr_nl_open(struct cr_nl *nl, int netns_fd, char *err, size_t errlen);
void cr_nl_close(struct cr_nl *nl);

/* The index of a link, 0 when there is none. */
int cr_nl_ifindex(struct cr_nl *nl, const char *name);
/* A bridge, up. -EEXIST when it exists. */
int cr_nl_bridge_add(struct cr_nl *nl, const char *name, char *err, size_t errlen);
/* A veth pair: host end `host` (enslaved to master, up) and its peer `peer` moved into the
 * network namespace netns_fd. */
int cr_nl_veth_add(struct cr_nl *nl, const char *host, int master, const char *peer,
                   int netns_fd, char *err, size_t errlen);
int cr_nl_link_del(struct cr_nl *nl, const char *name, char *err, size_t errlen);
int cr_nl_link_up(struct cr_nl *nl, int ifindex, char *err, size_t errlen);
/* family AF_INET (addr: 4 bytes, network order) or AF_INET6 (16 bytes). */
int cr_nl_addr_add(struct cr_nl *nl, int ifindex, int family, const void *addr, int prefix,
                   char *err, size_t errlen);
/* An address of a link: family AF_INET (addr's first 4 bytes, network order) or AF_INET6. */
struct cr_nl_addr {
    int ifindex, family, prefix;
    uint8_t addr[16];
};
#define CR_NL_ADDRS_MAX 16
struct cr_nl_setup {
    const struct cr_nl_addr *addr;   /* at most CR_NL_ADDRS_MAX */
    size_t naddr;
    const int *up;                   /* links to set up, by index (at most CR_NL_ADDRS_MAX) */
    size_t nup;
    const int *no_ll6;               /* of those, without an IPv6 link-local address */
    size_t nno_ll6;
    const void *gw4, *gw6;           /* default routes through them (NULL: none) */
};
/* The addresses, then the links up, then the default routes, sent as one message: the kernel
 * answers each request in turn. An address already there is no failure. */
int cr_nl_configure(struct cr_nl *nl, const struct cr_nl_setup *c, char *err, size_t errlen);
/* Calls fn for every link whose name starts with prefix. */
int cr_nl_links(struct cr_nl *nl, const char *prefix, void (*fn)(const char *name, void *arg),
                void *arg);
/* rx and tx bytes of a link (IFLA_STATS64). */
int cr_nl_link_stats(struct cr_nl *nl, const char *name, uint64_t *rx, uint64_t *tx);

#endif
