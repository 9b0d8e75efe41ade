/* network = cni:NAME: the standard CNI plugins of a conflist (the CNI spec's plugin protocol:
 * each plugin executed with CNI_COMMAND and friends in its environment, its network config on
 * stdin, its result on stdout). Blocking (plugins take milliseconds to seconds): called on
 * libuv's thread pool, never in the loop. Knows nothing of services. */
#ifndef CORRAL_NET_CNI_H
#define CORRAL_NET_CNI_H

#include <stdbool.h>
#include <stddef.h>

#include "net/addr.h"

struct cr_cni {
    const char *conf_dir;        /* [supervisor] cni_config_dir: NAME.conflist is read there */
    const char *plugin_dir;      /* [supervisor] cni_plugin_dir: CNI_PATH */
    const char *name;            /* the conflist's file name (without .conflist) */
    const char *container_id;    /* CNI_CONTAINERID: unique per container */
    const char *netns;           /* CNI_NETNS: a path (/proc/PID/ns/net); NULL at DEL: gone */
    const char *ifname;          /* CNI_IFNAME, e.g. eth0 */
    const struct cr_port *ports; /* the service's ports: runtimeConfig.portMappings of each */
    size_t nports;               /* plugin whose capabilities ask for them (portmap) */
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

/* The folder of those records: the networks' state folder's cni/. */
void cr_cni_state_dir(const char *run_dir, const char *cgroup_root, char *buf, size_t len);
/* What a DEL needs after a kill -9 of the supervisor, kept in dir (the networks' state folder's
 * cni/): ID.json (the list, the ADD result, the ports) and ID.netns, the container's network
 * namespace bind-mounted there (nsfd), so that it outlives the container for the plugins' DEL
 * (the bridge plugin takes its masquerade rules out only inside it). 0 or a negative errno
 * with the reason in err. */
int cr_cni_record(const char *dir, const struct cr_cni *c, const char *result, int nsfd,
                  char *err, size_t errlen);
/* After the DEL: both gone (the namespace unmounted). */
void cr_cni_forget(const char *dir, const char *container_id);
/* At a supervisor's start: DEL for every container recorded in dir (its supervisor was
 * killed), with its kept namespace and result, then forgets it. Blocking (plugins). Logs
 * each. Returns how many. */
int cr_cni_sweep(const char *dir, const char *conf_dir, const char *plugin_dir,
                 bool (*keep)(const char *container_id, void *arg), void *arg);
/* A live re-exec's new program: the list and ADD result recorded for container_id (strings
 * to free) and the result's addresses ("A/P A/P"), so that its service can run the DEL
 * later; 0 or a negative errno. keep() above spares such a record from the sweep. */
int cr_cni_recall(const char *dir, const char *container_id, char **list, char **result,
                  char *addrs, size_t alen);

#endif
