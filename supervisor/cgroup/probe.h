/* What the cgroup hierarchy on this machine can enforce, found by looking at files.
 *
 * v2 when MOUNT itself is a cgroup2 root (it has cgroup.controllers): the controllers are
 * those listed there. Otherwise v1: one hierarchy per controller at MOUNT/<name>. A machine
 * with v1 controllers and an empty cgroup2 at MOUNT/unified (a "hybrid" layout) is v1.
 * Used by config validation ("a limit its controller cannot enforce is an error") and by
 * the cgroup backends to choose what to write. */
#ifndef CORRAL_CGROUP_PROBE_H
#define CORRAL_CGROUP_PROBE_H

#include <stdbool.h>

#define CR_CGROUP_MOUNT "/sys/fs/cgroup"

struct cr_cgroup_caps {
    int version;                 /* 2, 1, or 0 when no usable hierarchy was found */
    char none_why[128];          /* version 0: why (absent, read-only, not writable) */
    bool memory;                 /* memory_max: memory.max / memory.limit_in_bytes */
    bool memory_high;            /* v2 memory.high; v1 memory.soft_limit_in_bytes */
    bool memory_swap;            /* v2 memory.swap.max; v1 memory.memsw.limit_in_bytes */
    bool cpu_max;                /* v2 cpu.max; v1 cpu.cfs_quota_us + cpu.cfs_period_us */
    bool cpu_weight;             /* v2 cpu.weight; v1 cpu.shares */
    bool pids;                   /* pids.max */
    bool io_weight;              /* v2 io.weight; v1 blkio.weight or blkio.bfq.weight */
    char io_weight_file[24];     /* the file name that exists, e.g. "blkio.bfq.weight" */
};

/* Probes the hierarchy mounted at mount (normally CR_CGROUP_MOUNT). Never fails: what it
 * cannot find is reported as absent. A hierarchy this process cannot write (mounted
 * read-only, as in a Docker container by default; or not ours) counts as none: version 0,
 * none_why says which. */
void cr_cgroup_probe(const char *mount, struct cr_cgroup_caps *caps);
/* The last cr_cgroup_probe() of the same mount in this process, if there was one (the cgroup
 * root opened right after the config was read and checked: ~20 syscalls saved); else a new
 * probe. */
void cr_cgroup_probe_last(const char *mount, struct cr_cgroup_caps *caps);

/* True when a space-separated controller list (cgroup.controllers, subtree_control) holds
 * word as a whole word. */
bool cr_cgroup_list_has(const char *list, const char *word);

#endif
