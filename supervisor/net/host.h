/* The host side of a supervisor's networks: bridges, each container's veth pair, addresses
 * and routes (netlink), outbound NAT and isolation between networks (one nftables table of
 * its own, "corral-ROOT"), the addresses kept across restarts, and each container's hosts and
 * resolv.conf files. Knows nothing of services or config: the caller describes networks with
 * struct cr_net_def.
 *
 * Lifetime: cr_net_open() sweeps what a killed supervisor of the same cgroup root left (links
 * named with its prefix, its table) and reads the kept addresses; cr_net_close() removes the
 * bridges and the table, and gives net.ipv4.ip_forward back if it was 0 before. */
#ifndef CORRAL_NET_HOST_H
#define CORRAL_NET_HOST_H

#include <stdbool.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "net/addr.h"
#include "spec.h"

struct cr_net;

struct cr_net_def {
    const char *name;
    const char *bridge;          /* NULL: cr_net_ifname(root, 'b', hash(name)) */
    struct cr_cidr4 net4;        /* prefix -1: the first free /24 of 10.89.0.0/16, kept */
    struct cr_cidr6 net6;        /* prefix -1: none */
    bool internal;
};

int cr_net_open(const char *cgroup_root, const char *run_dir, struct cr_net **out, char *err,
                size_t errlen);
void cr_net_close(struct cr_net *n);
/* Live re-exec (svctl reexec): cr_net_handover() writes the host side (bridges, each
 * container's attachment, veth names, published ports) as "net ..." lines of the state handed
 * to the next program, whose cr_net_resume() takes them back instead of sweeping: the
 * containers' networks, the bridges and the table stay as they are. cr_net_handover_ok():
 * -EBUSY (why said) while a container is being connected. */
int cr_net_handover_ok(const struct cr_net *n, char *why, size_t whylen);
int cr_net_handover(const struct cr_net *n, FILE *f);
int cr_net_resume(const char *cgroup_root, const char *run_dir, const char *state,
                  struct cr_net **out, char *err, size_t errlen);
/* A `supervisor run`'s networking, beside the supervisor of the same root and other runs: it
 * sweeps nothing; it uses the bridges that are up as they are, and makes (and removes at
 * close) only those that are missing, with a table of its own (corral-ROOT-rPID) for their
 * NAT. Its container's address is leased in the shared state file as SVC.run-PID (under the
 * file's lock: the supervisor never hands it out meanwhile) and given back at close; its
 * hosts file (STATE/SVC.run-PID/hosts, see cr_net_files_name) lists the services of its
 * networks at their kept addresses. No published ports. */
int cr_net_open_run(const char *cgroup_root, const char *run_dir, struct cr_net **out,
                    char *err, size_t errlen);
/* The name of svc's own files in the state folder: svc, or a run's SVC.run-PID. */
void cr_net_files_name(const struct cr_net *n, const char *svc, char *buf, size_t len);
/* A run's name for svc, SVC.run-PID: its files' (above), and the key under which a
 * supervisor connects the run's container for it (supervisor/run_net.h) — that attachment's
 * address and files go at its cr_net_detach, and it is in no service's hosts file. */
void cr_net_run_key(const char *svc, pid_t run, char *buf, size_t len);
/* fn for each run's container connected by this supervisor (after a re-exec: watched
 * again), with its key and the run's pid; fn may cr_net_detach it. */
void cr_net_each_run(struct cr_net *n, void (*fn)(const char *key, pid_t run, void *arg),
                     void *arg);
/* spec with /etc/hosts and /etc/resolv.conf bound read-only from the run_dir files of
 * files_name (only_net: the shared file of that one network; cr_net_hosts_file), unless it
 * binds its own, when it has a root of its own: into *copy, which borrows everything of spec
 * but its binds array (free copy->binds when it differs from spec->binds). paths: the
 * sources' room. 0 or -ENOMEM. */
int cr_net_bind_files(const char *run_dir, const char *cgroup_root, const char *files_name,
                      const char *only_net, const struct cr_spec *spec, struct cr_spec *copy,
                      char paths[2][4200]);
/* The hosts file of cr_net_bind_files (paths[0]) made (empty) when missing: init binds it
 * during its set-up, which may run before the container's network is finished (init waits
 * for the go-ahead after its set-up); its text is written in place before that go-ahead. */
void cr_net_hosts_ensure(const char *path);

/* Connects the container whose init (waiting, not yet exec'd) is pid to the networks defs
 * (eth0, eth1, ... inside, in that order), sets up its lo, addresses and default route, and
 * writes its hosts and resolv.conf (cr_net_state_dir(run_dir, root, svc)). Every other
 * container on those networks gets svc in its hosts. */
int cr_net_attach(struct cr_net *n, const char *svc, const struct cr_net_def *defs, size_t ndefs,
                  pid_t pid, char *err, size_t errlen);
/* The same in three steps (with ports: published at its address on its first network that
 * is not internal; a port another program holds is an error here), so that the slow part (the kernel takes milliseconds to make a
 * veth pair) runs on another thread while the loop goes on: cr_net_prepare (the loop: the
 * bridges, addresses and names), cr_net_job_run (any thread: the veth pairs, the container's
 * side; touches nothing of n), cr_net_finish (the loop: records it, writes the files; frees
 * the job; -ESRCH when the service was detached meanwhile). */
struct cr_net_job;
int cr_net_prepare(struct cr_net *n, const char *svc, const struct cr_net_def *defs,
                   size_t ndefs, const struct cr_port *ports, size_t nports, pid_t pid,
                   struct cr_net_job **out, char *err, size_t errlen);
void cr_net_job_run(struct cr_net_job *j);
int cr_net_finish(struct cr_net *n, struct cr_net_job *j, char *err, size_t errlen);
/* After the container is gone: others' hosts without it (its veth pairs go with its
 * namespace); a job under way for it is cancelled. */
void cr_net_detach(struct cr_net *n, const char *svc);
/* The host ends of svc's veth pairs while it is attached (before its cr_net_detach): at most
 * max names into out, their count. cr_net_links_del then removes them (any thread, a netlink
 * socket of its own; one already gone is no failure): a pair goes with its container's
 * namespace, but only once nothing holds that namespace, which may be long after the
 * container (a process of the host holding it open, or the kernel's clean-up running late
 * under load); removing the host end removes the pair at once. */
size_t cr_net_veths(const struct cr_net *n, const char *svc, char (*out)[CR_IFNAME_MAX + 1],
                    size_t max);
void cr_net_links_del(char (*names)[CR_IFNAME_MAX + 1], size_t count);
/* Gives back the kept addresses that wanted() says no to (the service is gone from the config,
 * or no longer on that network): at once, or, for a container still up, when it is
 * detached. A run's leases are its own. */
void cr_net_reclaim(struct cr_net *n, bool (*wanted)(const char *svc, const char *net, void *arg),
                    void *arg);
/* A network whose definition changed (a reload): its bridge removed and forgotten, made
 * again from the new definition at its next use; 0 also when it is not set up. -EBUSY with
 * the services in err when a container is attached to it (or being attached). */
int cr_net_forget(struct cr_net *n, const char *net, char *err, size_t errlen);
/* "10.89.0.7" (and " fd00:89::7" on a dual-stack network; ", " between several networks')
 * of an attached service; "" when it is not attached. */
void cr_net_addresses(struct cr_net *n, const char *svc, char *buf, size_t len);
/* Bytes the service's container received and sent over all its veths; -ENOENT when not
 * attached. */
int cr_net_traffic(struct cr_net *n, const char *svc, uint64_t *rx, uint64_t *tx);

#endif
