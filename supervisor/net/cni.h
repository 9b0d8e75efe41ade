/* network = cni:NAME: the standard CNI plugins of a conflist (the CNI spec's plugin protocol:
 * each plugin executed with CNI_COMMAND and friends in its environment, its network config on
 * stdin, its result on stdout). Blocking (plugins take milliseconds to seconds): called on
 * libuv's thread pool, never in the loop. Knows nothing of services. */
#ifndef CORRAL_NET_CNI_H
#define CORRAL_NET_CNI_H

#include <stddef.h>

struct cr_cni {
    const char *conf_dir;        /* [supervisor] cni_config_dir: NAME.conflist is read there */
    const char *plugin_dir;      /* [supervisor] cni_plugin_dir: CNI_PATH */
    const char *name;            /* the conflist's file name (without .conflist) */
    const char *container_id;    /* CNI_CONTAINERID: unique per container */
    const char *netns;           /* CNI_NETNS: a path (/proc/PID/ns/net); NULL at DEL: gone */
    const char *ifname;          /* CNI_IFNAME, e.g. eth0 */
};

/* ADD through every plugin of the list, in order, each given the previous one's result
 * (prevResult). The final result (JSON text, malloc'd) into *result, and its addresses
 * ("10.88.0.5/16", space separated) into addrs. 0, or a negative errno with the failing
 * plugin's message in err; the plugins already added are deleted again. */
int cr_cni_add(const struct cr_cni *c, char **result, char *addrs, size_t alen, char *err,
               size_t errlen);
/* DEL through every plugin, in reverse order, with the final ADD result as prevResult (may be
 * NULL). 0 or a negative errno (the first error; every plugin is still called). */
int cr_cni_del(const struct cr_cni *c, const char *result, char *err, size_t errlen);

#endif
