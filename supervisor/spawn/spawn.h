/* Spawning a container: the host side of the supervisor → init contract
 * (notes/spawn-contract.md).
 *
 * cr_init_memfd() makes the one sealed in-memory copy of the init binary that every container
 * executes (runc's answer to CVE-2019-5736: nothing inside a container can rewrite it).
 * cr_spawn() clones a child into the service's namespaces (clone3 with CLONE_PIDFD, and
 * CLONE_INTO_CGROUP on cgroup v2; legacy clone with CLONE_PIDFD on older kernels), makes sure it
 * is in its cgroup and has a parent-death signal before it runs anything, and execs init from
 * the memfd with the spec on fd 3 and the events pipe on fd 4 (the seccomp program on 6, the
 * idmapped mounts from CR_IDMAP_CHILD_FD up). It never waits for the child:
 * a failure in the child is reported as a `setup-failed` line on the events pipe, and the
 * child exits 127. */
#ifndef CORRAL_SPAWN_H
#define CORRAL_SPAWN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "cgroup/cgroup.h"
#include "spec.h"

/* The init binary: $CORRAL_INIT, else "init" next to the running supervisor. Writes the path
 * into buf; returns 0 or -ENOENT. */
int cr_init_find(char *buf, size_t len);
/* Copies path into a sealed memfd (MFD_CLOEXEC). Returns the fd or a negative errno. */
int cr_init_memfd(const char *path, char *err, size_t errlen);

struct cr_spawn_req {
    const struct cr_spec *spec;
    int init_fd;                 /* from cr_init_memfd() */
    struct cr_cg *cg;            /* the container's cgroup (created, limits written) */
    int stdio[3];                /* become the child's 0, 1, 2 */
    int events_fd;               /* write end of the events pipe: the child's fd 4 */
    const struct rlimit *nofile; /* RLIMIT_NOFILE to give init (the supervisor raises its
                                    own for its many pipes); NULL: inherit */
    int seccomp_fd;              /* the compiled filter (cr_seccomp_fd): the child's fd 6;
                                    -1: none (must match the spec's seccomp_fd) */
    const char *uid_map, *gid_map;  /* with CR_NS_USER: written to /proc/PID/{uid,gid}_map
                                       before init runs ("C H N" lines) */
    /* The child is cloned into a new network namespace (CLONE_NEWNET) that the caller sets
     * up before init runs: with defer_go, cr_spawn returns with the child waiting (in its
     * cgroup, its id maps written) and hands over the go-ahead (cr_spawned.go_fd): one byte
     * written there lets the child exec init; closing it without one ends the child before
     * it runs anything (it exits 127). */
    bool new_netns;
    bool defer_go;
    /* >= 0: the child joins this network namespace (setns) before it executes init: a
     * service's network = service:OTHER, OTHER's namespace. -1: none (0 is an fd). */
    int join_netns_fd;
    bool own_pgrp;               /* init leads a process group of its own, so a terminal's
                                    ^C reaches only the supervisor, which then stops the
                                    services in reverse priority order (not for `run`,
                                    whose init takes the terminal) */
};

struct cr_spawned {
    pid_t pid;                   /* host pid of init */
    int pidfd;                   /* close-on-exec */
    bool into_cgroup;            /* born in its cgroup (clone3 CLONE_INTO_CGROUP) */
    int go_fd;                   /* defer_go: the go-ahead's write end (close-on-exec); else -1 */
    bool rootfs_plain;           /* rootfs_idmap asked, but its filesystem has no idmapped
                                    mounts: bound as it is */
};

/* Returns 0 or a negative errno with a message in err. On success the child runs (or is
 * about to report why it cannot). Never blocks on the child. */
int cr_spawn(const struct cr_spawn_req *req, struct cr_spawned *out, char *err, size_t errlen);

/* Holds a few low fd numbers for the children's fds: call once, early (before the services'
 * pipes exist). Without it spawning works the same, copying the whole fd table. */
void cr_spawn_reserve_fds(void);

/* idmap.c: for a spec with idmapped mounts (cr_spec_nidmap), a detached clone of each source
 * (the rootfs first, then the idmap binds in order), idmapped with the user namespace of pid
 * (its maps written), into fds (CR_IDMAP_MAX of them). Returns how many, or a negative errno
 * with a message naming the mount in err. A rootfs whose filesystem has no idmapped mounts is
 * passed as a plain clone, with *root_plain set; an idmap bind there is an error. */
int cr_idmap_mounts(pid_t pid, const struct cr_spec *spec, int *fds, bool *root_plain, char *err,
                    size_t errlen);

/* pidfd_send_signal(); returns 0 or a negative errno. */
int cr_pidfd_signal(int pidfd, int sig);

#endif
