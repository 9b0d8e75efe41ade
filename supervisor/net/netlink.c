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
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

/* libmnl is dlopen'ed with the first socket, as libnftables is (nft.c): a supervisor whose
 * services need no bridge never loads it. It builds and reads the messages; the socket and
 * its calls are ours (a failed call of libmnl's reports through errno, and a static
 * supervisor's errno is not the one of the C library a dlopen'ed one calls into). Each
 * function of it used here is called through this table, by its own name. */
#define MNL_FUNCS(X)                                                                          \
    X(nlmsg_put_header) X(nlmsg_put_extra_header) X(nlmsg_get_payload)                        \
    X(nlmsg_get_payload_offset) X(nlmsg_get_payload_tail) X(attr_put) X(attr_put_u32)         \
    X(attr_put_strz) X(attr_nest_start) X(attr_nest_end) X(attr_get_type) X(attr_get_str)     \
    X(attr_get_payload) X(attr_get_payload_len) X(attr_ok) X(attr_next)
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
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
    socklen_t len = sizeof sa;
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0)
        return -errno;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    nl->fd = fd;
    nl->portid = sa.nl_pid;
    nl->seq = 1;
    return 0;
}

/* The socket is made with the calling thread in netns_fd's namespace, which it then leaves
 * (a socket stays in the namespace it was made in). A short-lived thread did this before: its
 * making cost ten times the rest (a stack, a clone3 of a process in nine v1 hierarchies). */
int cr_nl_open(struct cr_nl *nl, int netns_fd, char *err, size_t errlen)
{
    memset(nl, 0, sizeof *nl);
    nl->fd = -1;
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
    if (nl->fd >= 0)
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
    if (nl->fd >= 0)
        close(nl->fd);
    nl->fd = -1;
}

static int send_all(struct cr_nl *nl, const void *buf, size_t len)
{
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    ssize_t n;
    while ((n = sendto(nl->fd, buf, len, 0, (struct sockaddr *)&kernel, sizeof kernel)) < 0 &&
           errno == EINTR)
        ;
    return n < 0 ? -errno : 0;
}

/* The message at *off of the n bytes read into buf (moving *off past it), or NULL at the end
 * or at a message cut short. */
static struct nlmsghdr *next_msg(char *buf, size_t n, size_t *off)
{
    if (n - *off < sizeof(struct nlmsghdr))
        return NULL;
    struct nlmsghdr *h = (struct nlmsghdr *)(buf + *off);
    if (h->nlmsg_len < sizeof *h || h->nlmsg_len > n - *off)
        return NULL;
    *off += NLMSG_ALIGN(h->nlmsg_len) < n - *off ? NLMSG_ALIGN(h->nlmsg_len) : n - *off;
    return h;
}

static ssize_t receive(struct cr_nl *nl, char *buf, size_t len)
{
    ssize_t n;
    while ((n = recv(nl->fd, buf, len, 0)) < 0 && errno == EINTR)
        ;
    return n < 0 ? -errno : n;
}

/* Sends one request and reads until its ACK (or the DONE of a dump); cb sees each answer.
 * A negative errno: the kernel's answer, or the socket's failure. */
static int talk(struct cr_nl *nl, struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
    nlh->nlmsg_seq = ++nl->seq;
    int r = send_all(nl, nlh, nlh->nlmsg_len);
    if (r < 0)
        return r;
    char buf[BUF * 4];
    for (;;) {
        ssize_t n = receive(nl, buf, sizeof buf);
        if (n < 0)
            return (int)n;
        size_t off = 0;
        for (struct nlmsghdr *h; (h = next_msg(buf, (size_t)n, &off));) {
            if (h->nlmsg_seq != nl->seq || h->nlmsg_pid != nl->portid)
                continue;   /* not the answer to this request */
            if (h->nlmsg_type == NLMSG_ERROR) {
                const struct nlmsgerr *e = NLMSG_DATA(h);
                return h->nlmsg_len < NLMSG_LENGTH(sizeof *e) ? -EBADMSG : e->error;
            }
            if (h->nlmsg_type == NLMSG_DONE)
                return 0;
            if (h->nlmsg_type == NLMSG_OVERRUN)
                return -ENOBUFS;
            if (h->nlmsg_type < NLMSG_MIN_TYPE || !cb)
                continue;
            int c = cb(h, data);
            if (c == MNL_CB_ERROR)
                return -ENOMEM;
            if (c == MNL_CB_STOP)
                return 0;
        }
    }
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

/* One ioctl on the socket (SIOCGIFINDEX answers for the namespace the socket was made in)
 * rather than a request and its answer. */
int cr_nl_ifindex(struct cr_nl *nl, const char *name)
{
    struct ifreq ifr;
    if (strlen(name) >= sizeof ifr.ifr_name || ready(nl, NULL, 0) < 0)
        return 0;
    memset(&ifr, 0, sizeof ifr);
    memcpy(ifr.ifr_name, name, strlen(name));
    return ioctl(nl->fd, SIOCGIFINDEX, &ifr) < 0 ? 0 : ifr.ifr_ifindex;
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

/* Requests laid one after another in buf (one send), each with its own sequence number. */
struct batch {
    char buf[BUF];
    size_t len;
    int n;
    uint32_t first;
    const char *name;   /* what the requests are about, in a failure's text (NULL: none) */
    struct {
        const char *what;
        int fine;   /* an errno that is no failure (0: none) */
    } req[3 * CR_NL_ADDRS_MAX + 2];   /* addresses, links without link-local, up, routes */
};

static struct nlmsghdr *batch_add(struct cr_nl *nl, struct batch *b, int type, int flags,
                                  const char *what, int fine)
{
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(b->buf + b->len);
    nlh->nlmsg_type = (uint16_t)type;
    nlh->nlmsg_flags = (uint16_t)(NLM_F_REQUEST | NLM_F_ACK | flags);
    nlh->nlmsg_seq = ++nl->seq;
    if (!b->n)
        b->first = nlh->nlmsg_seq;
    b->req[b->n].what = what;
    b->req[b->n++].fine = fine;
    return nlh;
}

/* Sends the batch and reads an answer for each request (the kernel goes on after a failed
 * one): the first failure is the result, an address already there none. */
static int batch_talk(struct cr_nl *nl, struct batch *b, char *err, size_t errlen)
{
    int r = send_all(nl, b->buf, b->len);
    if (r < 0)
        return fail(err, errlen, -r, "netlink", "(sending)");
    int got = 0;
    char buf[BUF];
    while (got < b->n) {
        ssize_t n = receive(nl, buf, sizeof buf);
        if (n < 0)
            return r < 0 ? r : fail(err, errlen, (int)-n, "netlink", "(reading)");
        size_t off = 0;
        for (struct nlmsghdr *h; (h = next_msg(buf, (size_t)n, &off));) {
            uint32_t i = h->nlmsg_seq - b->first;
            if (h->nlmsg_type != NLMSG_ERROR || h->nlmsg_pid != nl->portid ||
                i >= (uint32_t)b->n || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr)))
                continue;
            got++;
            int e = -((struct nlmsgerr *)NLMSG_DATA(h))->error;
            if (e > 0 && r == 0 && e != b->req[i].fine)
                r = fail(err, errlen, e, b->req[i].what, b->name);
        }
    }
    return r;
}

/* No IPv6 link-local address on a link (IN6_ADDR_GEN_MODE_NONE), asked before it goes up:
 * a bridge's port needs none, nor does a container's eth without an IPv6 address (as
 * Docker's); no address, no duplicate detection, no router solicitation. A kernel without
 * IPv6 answers EAFNOSUPPORT: no failure. By index, or by name when ifindex is 0. */
static void put_no_ll6(struct nlmsghdr *nlh, int ifindex, const char *name)
{
    struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(nlh, sizeof *ifm);
    ifm->ifi_family = AF_UNSPEC;
    ifm->ifi_index = ifindex;
    if (name)
        mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
    struct nlattr *spec = mnl_attr_nest_start(nlh, IFLA_AF_SPEC);
    struct nlattr *in6 = mnl_attr_nest_start(nlh, AF_INET6);
    uint8_t mode = IN6_ADDR_GEN_MODE_NONE;
    mnl_attr_put(nlh, IFLA_INET6_ADDR_GEN_MODE, sizeof mode, &mode);
    mnl_attr_nest_end(nlh, in6);
    mnl_attr_nest_end(nlh, spec);
}

/* One queue each way on a veth end. The kernel's default is one per possible CPU, each a
 * kobject with sysfs files of its own, made with the device (here 2: table 1c's time added
 * by the bridge went from 1.02–1.25 ms to 0.79–0.88 with one, paired runs, the kernel's work
 * slowing the run's on the other CPU less; more cores, more queues). A veth hands its
 * packets to the peer's CPU backlog (no NAPI without XDP or GRO asked for), so the count does
 * not limit its traffic (make bench-net: the same throughput as podman's veths). */
static void one_queue(struct nlmsghdr *nlh)
{
    mnl_attr_put_u32(nlh, IFLA_NUM_TX_QUEUES, 1);
    mnl_attr_put_u32(nlh, IFLA_NUM_RX_QUEUES, 1);
}

/* One message: the pair made with the host end enslaved, the peer in the container's
 * namespace (down: the kernel would open it before pairing it, ENOTCONN; setup_inside brings
 * it up); then the host end without an IPv6 link-local address (put_no_ll6), then up. */
int cr_nl_veth_add(struct cr_nl *nl, const char *host, int master, const char *peer,
                   int netns_fd, char *err, size_t errlen)
{
    int r = ready(nl, err, errlen);
    if (r < 0)
        return r;
    struct batch batch, *b = &batch;
    b->len = 0;
    b->n = 0;
    b->name = host;
    struct nlmsghdr *nlh = batch_add(nl, b, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL,
                                     "creating the veth pair", 0);
    new_link(nlh, host, false);
    if (master > 0)
        mnl_attr_put_u32(nlh, IFLA_MASTER, (uint32_t)master);
    one_queue(nlh);
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
    one_queue(nlh);
    mnl_attr_nest_end(nlh, p);
    mnl_attr_nest_end(nlh, data);
    mnl_attr_nest_end(nlh, info);
    b->len += MNL_ALIGN(nlh->nlmsg_len);
    nlh = batch_add(nl, b, RTM_NEWLINK, 0, "no IPv6 link-local address on", EAFNOSUPPORT);
    put_no_ll6(nlh, 0, host);
    b->len += MNL_ALIGN(nlh->nlmsg_len);
    nlh = batch_add(nl, b, RTM_NEWLINK, 0, "setting up", 0);
    new_link(nlh, host, true);
    b->len += MNL_ALIGN(nlh->nlmsg_len);
    return batch_talk(nl, b, err, errlen);
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

static void put_link_up(struct nlmsghdr *nlh, int ifindex)
{
    struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(nlh, sizeof *ifm);
    ifm->ifi_family = AF_UNSPEC;
    ifm->ifi_index = ifindex;
    ifm->ifi_flags = ifm->ifi_change = IFF_UP;
}

int cr_nl_link_up(struct cr_nl *nl, int ifindex, char *err, size_t errlen)
{
    char buf[BUF];
    struct nlmsghdr *nlh;
    int begun = begin(nl, buf, RTM_NEWLINK, NLM_F_ACK, &nlh, err, errlen);
    if (begun < 0)
        return begun;
    put_link_up(nlh, ifindex);
    int r = talk(nl, nlh, NULL, NULL);
    return r < 0 ? fail(err, errlen, -r, "setting a link up", NULL) : 0;
}

static void put_addr(struct nlmsghdr *nlh, int ifindex, int family, const void *addr,
                     int prefix)
{
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
}

static void put_default_route(struct nlmsghdr *nlh, int family, const void *gw)
{
    struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof *rtm);
    rtm->rtm_family = (uint8_t)family;
    rtm->rtm_table = RT_TABLE_MAIN;
    rtm->rtm_protocol = RTPROT_BOOT;
    rtm->rtm_scope = RT_SCOPE_UNIVERSE;
    rtm->rtm_type = RTN_UNICAST;
    mnl_attr_put(nlh, RTA_GATEWAY, family == AF_INET ? 4 : 16, gw);
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
    put_addr(nlh, ifindex, family, addr, prefix);
    int r = talk(nl, nlh, NULL, NULL);
    return r < 0 && r != -EEXIST ? fail(err, errlen, -r, "adding an address", NULL) : 0;
}

int cr_nl_configure(struct cr_nl *nl, const struct cr_nl_setup *c, char *err, size_t errlen)
{
    int r = ready(nl, err, errlen);
    if (r < 0)
        return r;
    if (c->naddr > CR_NL_ADDRS_MAX || c->nup > CR_NL_ADDRS_MAX || c->nno_ll6 > CR_NL_ADDRS_MAX)
        return fail(err, errlen, E2BIG, "setting up links", NULL);
    struct batch batch, *b = &batch;
    b->len = 0;
    b->n = 0;
    b->name = NULL;
    for (size_t i = 0; i < c->naddr; i++) {
        const struct cr_nl_addr *a = &c->addr[i];
        struct nlmsghdr *nlh = batch_add(nl, b, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL,
                                         "adding an address", EEXIST);
        put_addr(nlh, a->ifindex, a->family, a->addr, a->prefix);
        b->len += MNL_ALIGN(nlh->nlmsg_len);
    }
    for (size_t i = 0; i < c->nno_ll6; i++) {
        struct nlmsghdr *nlh = batch_add(nl, b, RTM_NEWLINK, 0, "setting a link up",
                                         EAFNOSUPPORT);
        put_no_ll6(nlh, c->no_ll6[i], NULL);
        b->len += MNL_ALIGN(nlh->nlmsg_len);
    }
    for (size_t i = 0; i < c->nup; i++) {
        struct nlmsghdr *nlh = batch_add(nl, b, RTM_NEWLINK, 0, "setting a link up", 0);
        put_link_up(nlh, c->up[i]);
        b->len += MNL_ALIGN(nlh->nlmsg_len);
    }
    const void *gw[2] = {c->gw4, c->gw6};
    for (int f = 0; f < 2; f++)
        if (gw[f]) {
            struct nlmsghdr *nlh = batch_add(nl, b, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL,
                                             "adding the default route", 0);
            put_default_route(nlh, f ? AF_INET6 : AF_INET, gw[f]);
            b->len += MNL_ALIGN(nlh->nlmsg_len);
        }
    return b->n ? batch_talk(nl, b, err, errlen) : 0;
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
