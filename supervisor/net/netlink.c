/* rtnetlink with libmnl; see netlink.h. */
#include "net/netlink.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* libmnl is dlopen'ed with the first socket, as libnftables is (nft.c): the supervisor then
 * links glibc alone, and every start of it (a `supervisor run`, a re-exec) has one shared
 * object less to map and relocate; a supervisor whose services need no bridge never loads
 * it. Each function of it used here is called through this table, by its own name. */
#define MNL_FUNCS(X)                                                                          \
    X(socket_open2) X(socket_bind) X(socket_close) X(socket_get_portid) X(socket_sendto)      \
    X(socket_recvfrom) X(cb_run) X(nlmsg_put_header) X(nlmsg_put_extra_header)                \
    X(nlmsg_get_payload) X(nlmsg_get_payload_offset) X(nlmsg_get_payload_tail) X(attr_put)    \
    X(attr_put_u32) X(attr_put_strz) X(attr_nest_start) X(attr_nest_end) X(attr_get_type)     \
    X(attr_get_str) X(attr_get_payload) X(attr_get_payload_len) X(attr_ok) X(attr_next)
#define MNL_FIELD(f) __typeof__(mnl_##f) *f;
static struct {
    MNL_FUNCS(MNL_FIELD)
} mnl;
static pthread_once_t mnl_once = PTHREAD_ONCE_INIT;
static const char *mnl_missing;   /* why it could not be loaded (NULL: loaded) */

static void mnl_load(void)
{
    void *lib = dlopen("libmnl.so.0", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        mnl_missing = "cannot load libmnl.so.0 (Debian's libmnl0)";
        return;
    }
#define MNL_SYM(f)                                                                            \
    if (!(*(void **)&mnl.f = dlsym(lib, "mnl_" #f)))                                          \
        mnl_missing = "libmnl.so.0 lacks mnl_" #f;
    MNL_FUNCS(MNL_SYM)
}

/* libmnl loaded (once, by whichever thread asks first), or -ENOENT saying why not. */
static int loaded(char *err, size_t errlen)
{
    pthread_once(&mnl_once, mnl_load);
    if (mnl_missing && err)
        snprintf(err, errlen, "netlink: %s", mnl_missing);
    return mnl_missing ? -ENOENT : 0;
}

#define mnl_socket_open2 mnl.socket_open2
#define mnl_socket_bind mnl.socket_bind
#define mnl_socket_close mnl.socket_close
#define mnl_socket_get_portid mnl.socket_get_portid
#define mnl_socket_sendto mnl.socket_sendto
#define mnl_socket_recvfrom mnl.socket_recvfrom
#define mnl_cb_run mnl.cb_run
#define mnl_nlmsg_put_header mnl.nlmsg_put_header
#define mnl_nlmsg_put_extra_header mnl.nlmsg_put_extra_header
#define mnl_nlmsg_get_payload mnl.nlmsg_get_payload
#define mnl_nlmsg_get_payload_offset mnl.nlmsg_get_payload_offset
#define mnl_nlmsg_get_payload_tail mnl.nlmsg_get_payload_tail
#define mnl_attr_put mnl.attr_put
#define mnl_attr_put_u32 mnl.attr_put_u32
#define mnl_attr_put_strz mnl.attr_put_strz
#define mnl_attr_nest_start mnl.attr_nest_start
#define mnl_attr_nest_end mnl.attr_nest_end
#define mnl_attr_get_type mnl.attr_get_type
#define mnl_attr_get_str mnl.attr_get_str
#define mnl_attr_get_payload mnl.attr_get_payload
#define mnl_attr_get_payload_len mnl.attr_get_payload_len
#define mnl_attr_ok mnl.attr_ok
#define mnl_attr_next mnl.attr_next

#define BUF 8192

static int fail(char *err, size_t errlen, int e, const char *what, const char *name)
{
    if (err)
        snprintf(err, errlen, "%s%s%s: %s", what, name ? " " : "", name ? name : "",
                 strerror(e));
    return -e;
}

static int open_here(struct cr_nl *nl)
{
    nl->sock = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
    if (!nl->sock)
        return -errno;
    if (mnl_socket_bind(nl->sock, 0, MNL_SOCKET_AUTOPID) < 0) {
        int e = errno;
        mnl_socket_close(nl->sock);
        nl->sock = NULL;
        return -e;
    }
    nl->portid = mnl_socket_get_portid(nl->sock);
    nl->seq = 1;
    return 0;
}

/* The socket is made with the calling thread in netns_fd's namespace, which it then leaves
 * (a socket stays in the namespace it was made in). A short-lived thread did this before: its
 * making cost ten times the rest (a stack, a clone3 of a process in nine v1 hierarchies). */
int cr_nl_open(struct cr_nl *nl, int netns_fd, char *err, size_t errlen)
{
    memset(nl, 0, sizeof *nl);
    if (netns_fd < 0) {
        nl->lazy = true;   /* ready() */
        return 0;
    }
    int r = loaded(err, errlen);
    if (r < 0)
        return r;
    int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (home < 0)
        return fail(err, errlen, errno, "netlink socket", "in the container (our namespace)");
    r = setns(netns_fd, CLONE_NEWNET) < 0 ? -errno : open_here(nl);
    /* Back home, or this thread would make the host's links in a container from now on.
     * setns to a namespace it was in a moment ago, with the same rights, has no way to
     * fail but the kernel's memory: nothing sound is left to do then. */
    if (setns(home, CLONE_NEWNET) < 0) {
        fprintf(stderr, "supervisor: netlink: cannot return to our network namespace: %s\n",
                strerror(errno));
        abort();
    }
    close(home);
    return r < 0 ? fail(err, errlen, -r, "netlink socket", "in the container") : 0;
}

/* A lazy socket's libmnl and socket, at its first request. */
static int ready(struct cr_nl *nl, char *err, size_t errlen)
{
    if (nl->sock)
        return 0;
    if (!nl->lazy)
        return fail(err, errlen, EBADF, "netlink socket", NULL);
    int r = loaded(err, errlen);
    if (r < 0)
        return r;
    r = open_here(nl);
    return r < 0 ? fail(err, errlen, -r, "netlink socket", NULL) : 0;
}

void cr_nl_close(struct cr_nl *nl)
{
    if (nl->sock)
        mnl_socket_close(nl->sock);
    nl->sock = NULL;
}

/* Sends one request and reads until its ACK (or DONE of a dump); cb sees each answer. */
static int talk(struct cr_nl *nl, struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
    nlh->nlmsg_seq = ++nl->seq;
    if (mnl_socket_sendto(nl->sock, nlh, nlh->nlmsg_len) < 0)
        return -errno;
    char buf[BUF * 4];
    int r;
    do {
        ssize_t n = mnl_socket_recvfrom(nl->sock, buf, sizeof buf);
        if (n < 0)
            return -errno;
        r = mnl_cb_run(buf, (size_t)n, nl->seq, nl->portid, cb, data);
    } while (r > MNL_CB_STOP);
    return r < 0 ? -errno : 0;
}

/* A request begun in buf (*nlh), on a socket ready for it: a lazy one's libmnl and socket
 * are made here, so no message is built before libmnl is loaded. */
static int begin(struct cr_nl *nl, char *buf, int type, int flags, struct nlmsghdr **nlh,
                 char *err, size_t errlen)
{
    int r = ready(nl, err, errlen);
    if (r < 0)
        return r;
    *nlh = mnl_nlmsg_put_header(buf);
    (*nlh)->nlmsg_type = (uint16_t)type;
    (*nlh)->nlmsg_flags = (uint16_t)(NLM_F_REQUEST | flags);
    return 0;
}

static int link_index_cb(const struct nlmsghdr *nlh, void *data)
{
    const struct ifinfomsg *ifm = mnl_nlmsg_get_payload(nlh);
    *(int *)data = ifm->ifi_index;
    return MNL_CB_OK;
}

int cr_nl_ifindex(struct cr_nl *nl, const char *name)
{
    char buf[BUF];
    struct nlmsghdr *nlh;
    if (begin(nl, buf, RTM_GETLINK, NLM_F_ACK, &nlh, NULL, 0) < 0)
        return 0;
    struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(nlh, sizeof *ifm);
    ifm->ifi_family = AF_UNSPEC;
    mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
    int idx = 0;
    return talk(nl, nlh, link_index_cb, &idx) < 0 ? 0 : idx;
}

static struct ifinfomsg *new_link(struct nlmsghdr *nlh, const char *name, bool up)
{
    struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(nlh, sizeof *ifm);
    ifm->ifi_family = AF_UNSPEC;
    if (up)
        ifm->ifi_flags = ifm->ifi_change = IFF_UP;
    mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
    return ifm;
}

int cr_nl_bridge_add(struct cr_nl *nl, const char *name, char *err, size_t errlen)
{
    char buf[BUF];
    struct nlmsghdr *nlh;
    int begun = begin(nl, buf, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK, &nlh,
                      err, errlen);
    if (begun < 0)
        return begun;
    new_link(nlh, name, true);
    struct nlattr *info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
    mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "bridge");
    mnl_attr_nest_end(nlh, info);
    int r = talk(nl, nlh, NULL, NULL);
    return r < 0 && r != -EEXIST ? fail(err, errlen, -r, "creating the bridge", name) : r;
}

/* One request: the host end enslaved and up, the peer made in the container's namespace
 * (down: the kernel would open it before pairing it, ENOTCONN; setup_inside brings it up). */
int cr_nl_veth_add(struct cr_nl *nl, const char *host, int master, const char *peer,
                   int netns_fd, char *err, size_t errlen)
{
    char buf[BUF];
    struct nlmsghdr *nlh;
    int begun = begin(nl, buf, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK, &nlh,
                      err, errlen);
    if (begun < 0)
        return begun;
    new_link(nlh, host, true);
    if (master > 0)
        mnl_attr_put_u32(nlh, IFLA_MASTER, (uint32_t)master);
    struct nlattr *info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
    mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
    struct nlattr *data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
    struct nlattr *p = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
    /* The peer's attributes follow an ifinfomsg of its own inside the nest. */
    struct ifinfomsg *pifm = mnl_nlmsg_get_payload_tail(nlh);
    memset(pifm, 0, MNL_ALIGN(sizeof *pifm));
    pifm->ifi_family = AF_UNSPEC;
    nlh->nlmsg_len += MNL_ALIGN(sizeof *pifm);
    mnl_attr_put_u32(nlh, IFLA_NET_NS_FD, (uint32_t)netns_fd);
    mnl_attr_put_strz(nlh, IFLA_IFNAME, peer);
    mnl_attr_nest_end(nlh, p);
    mnl_attr_nest_end(nlh, data);
    mnl_attr_nest_end(nlh, info);
    int r = talk(nl, nlh, NULL, NULL);
    return r < 0 ? fail(err, errlen, -r, "creating the veth pair", host) : 0;
}

int cr_nl_link_del(struct cr_nl *nl, const char *name, char *err, size_t errlen)
{
    char buf[BUF];
    struct nlmsghdr *nlh;
    int begun = begin(nl, buf, RTM_DELLINK, NLM_F_ACK, &nlh, err, errlen);
    if (begun < 0)
        return begun;
    new_link(nlh, name, false);
    int r = talk(nl, nlh, NULL, NULL);
    return r < 0 && r != -ENODEV ? fail(err, errlen, -r, "deleting", name) : r;
}

int cr_nl_link_up(struct cr_nl *nl, int ifindex, char *err, size_t errlen)
{
    char buf[BUF];
    struct nlmsghdr *nlh;
    int begun = begin(nl, buf, RTM_NEWLINK, NLM_F_ACK, &nlh, err, errlen);
    if (begun < 0)
        return begun;
    struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(nlh, sizeof *ifm);
    ifm->ifi_family = AF_UNSPEC;
    ifm->ifi_index = ifindex;
    ifm->ifi_flags = ifm->ifi_change = IFF_UP;
    int r = talk(nl, nlh, NULL, NULL);
    return r < 0 ? fail(err, errlen, -r, "setting a link up", NULL) : 0;
}

int cr_nl_addr_add(struct cr_nl *nl, int ifindex, int family, const void *addr, int prefix,
                   char *err, size_t errlen)
{
    char buf[BUF];
    struct nlmsghdr *nlh;
    int begun = begin(nl, buf, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK, &nlh,
                      err, errlen);
    if (begun < 0)
        return begun;
    struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof *ifa);
    ifa->ifa_family = (uint8_t)family;
    ifa->ifa_prefixlen = (uint8_t)prefix;
    ifa->ifa_index = (uint32_t)ifindex;
    size_t len = family == AF_INET ? 4 : 16;
    mnl_attr_put(nlh, IFA_LOCAL, len, addr);
    mnl_attr_put(nlh, IFA_ADDRESS, len, addr);
    /* IPv6: usable at once, no duplicate detection (the supervisor hands out addresses) */
    if (family == AF_INET6)
        mnl_attr_put_u32(nlh, IFA_FLAGS, IFA_F_NODAD);
    int r = talk(nl, nlh, NULL, NULL);
    return r < 0 && r != -EEXIST ? fail(err, errlen, -r, "adding an address", NULL) : 0;
}

int cr_nl_route_default(struct cr_nl *nl, int family, const void *gw, char *err,
                        size_t errlen)
{
    char buf[BUF];
    struct nlmsghdr *nlh;
    int begun = begin(nl, buf, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK, &nlh,
                      err, errlen);
    if (begun < 0)
        return begun;
    struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof *rtm);
    rtm->rtm_family = (uint8_t)family;
    rtm->rtm_table = RT_TABLE_MAIN;
    rtm->rtm_protocol = RTPROT_BOOT;
    rtm->rtm_scope = RT_SCOPE_UNIVERSE;
    rtm->rtm_type = RTN_UNICAST;
    mnl_attr_put(nlh, RTA_GATEWAY, family == AF_INET ? 4 : 16, gw);
    int r = talk(nl, nlh, NULL, NULL);
    return r < 0 ? fail(err, errlen, -r, "adding the default route", NULL) : 0;
}

struct names {
    const char *prefix;
    char (*v)[IFNAMSIZ];
    size_t n, cap;
};

static int names_cb(const struct nlmsghdr *nlh, void *data)
{
    struct names *l = data;
    struct nlattr *a;
    mnl_attr_for_each(a, nlh, sizeof(struct ifinfomsg)) {
        if (mnl_attr_get_type(a) != IFLA_IFNAME)
            continue;
        const char *name = mnl_attr_get_str(a);
        if (strncmp(name, l->prefix, strlen(l->prefix)) || strlen(name) >= IFNAMSIZ)
            continue;
        if (l->n == l->cap) {
            size_t cap = l->cap ? 2 * l->cap : 16;
            void *nv = realloc(l->v, cap * sizeof *l->v);
            if (!nv)
                return MNL_CB_ERROR;
            l->v = nv;
            l->cap = cap;
        }
        strcpy(l->v[l->n++], name);
    }
    return MNL_CB_OK;
}

int cr_nl_links(struct cr_nl *nl, const char *prefix, void (*fn)(const char *name, void *arg),
                void *arg)
{
    char buf[BUF];
    struct nlmsghdr *nlh;
    int begun = begin(nl, buf, RTM_GETLINK, NLM_F_DUMP, &nlh, NULL, 0);
    if (begun < 0)
        return begun;
    struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(nlh, sizeof *ifm);
    ifm->ifi_family = AF_UNSPEC;
    struct names l = {.prefix = prefix};
    int r = talk(nl, nlh, names_cb, &l);
    /* after the dump: fn may talk on the same socket */
    for (size_t i = 0; r == 0 && i < l.n; i++)
        fn(l.v[i], arg);
    free(l.v);
    return r;
}

static int stats_cb(const struct nlmsghdr *nlh, void *data)
{
    struct nlattr *a;
    mnl_attr_for_each(a, nlh, sizeof(struct ifinfomsg)) {
        if (mnl_attr_get_type(a) == IFLA_STATS64 &&
            mnl_attr_get_payload_len(a) >= sizeof(struct rtnl_link_stats64))
            memcpy(data, mnl_attr_get_payload(a), sizeof(struct rtnl_link_stats64));
    }
    return MNL_CB_OK;
}

int cr_nl_link_stats(struct cr_nl *nl, const char *name, uint64_t *rx, uint64_t *tx)
{
    char buf[BUF];
    struct nlmsghdr *nlh;
    int begun = begin(nl, buf, RTM_GETLINK, NLM_F_ACK, &nlh, NULL, 0);
    if (begun < 0)
        return begun;
    struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(nlh, sizeof *ifm);
    ifm->ifi_family = AF_UNSPEC;
    mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
    struct rtnl_link_stats64 st;
    memset(&st, 0, sizeof st);
    int r = talk(nl, nlh, stats_cb, &st);
    /* the host end: what it receives the container sent */
    *rx = st.tx_bytes;
    *tx = st.rx_bytes;
    return r;
}
