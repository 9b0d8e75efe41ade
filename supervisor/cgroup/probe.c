#include "cgroup/probe.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static bool exists(const char *mount, const char *rel)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", mount, rel);
    return access(path, F_OK) == 0;
}

bool cr_cgroup_list_has(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = list; (p = strstr(p, word)); p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\n' || p[n] == '\0'))
            return true;
    return false;
}

static struct {
    bool valid;
    char mount[256];
    struct cr_cgroup_caps caps;
} last;

static void probe(const char *mount, struct cr_cgroup_caps *c);

/* A hierarchy we cannot write is none at all: no cgroup of ours could be made there. */
static void writable(const char *mount, const char *sub, struct cr_cgroup_caps *c)
{
    char dir[96];
    snprintf(dir, sizeof dir, "%.80s%s%s", mount, sub ? "/" : "", sub ? sub : "");
    if (access(dir, W_OK) == 0)
        return;
    int e = errno;
    memset(c, 0, sizeof *c);
    snprintf(c->none_why, sizeof c->none_why, "%s is %s", dir,
             e == EROFS ? "read-only" : e == EACCES || e == EPERM ? "not writable for us"
                                                                 : strerror(e));
}

void cr_cgroup_probe(const char *mount, struct cr_cgroup_caps *c)
{
    probe(mount, c);
    if (c->version == 2)
        writable(mount, NULL, c);
    else if (c->version == 1)
        writable(mount, exists(mount, "freezer/freezer.state") ? "freezer" : "memory", c);
    else
        snprintf(c->none_why, sizeof c->none_why, "no cgroup hierarchy at %s", mount);
    last.valid = strlen(mount) < sizeof last.mount;
    if (last.valid) {
        memcpy(last.mount, mount, strlen(mount) + 1);
        last.caps = *c;
    }
}

void cr_cgroup_probe_last(const char *mount, struct cr_cgroup_caps *c)
{
    if (last.valid && !strcmp(last.mount, mount))
        *c = last.caps;
    else
        cr_cgroup_probe(mount, c);
}

static void probe(const char *mount, struct cr_cgroup_caps *c)
{
    char path[512], list[512] = "";
    memset(c, 0, sizeof *c);
    snprintf(path, sizeof path, "%s/cgroup.controllers", mount);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, list, sizeof list - 1);
        close(fd);
        list[n > 0 ? n : 0] = '\0';
        c->version = 2;
        c->memory = c->memory_high = cr_cgroup_list_has(list, "memory");
        /* memory.swap.max exists in every non-root cgroup once the memory controller is on
         * (unless the kernel was booted with swapaccount=0, which is rare and shows at write
         * time). */
        c->memory_swap = c->memory;
        c->cpu_max = c->cpu_weight = cr_cgroup_list_has(list, "cpu");
        c->pids = cr_cgroup_list_has(list, "pids");
        c->io_weight = cr_cgroup_list_has(list, "io");
        if (c->io_weight)
            snprintf(c->io_weight_file, sizeof c->io_weight_file, "io.weight");
        return;
    }
    c->memory = exists(mount, "memory/memory.limit_in_bytes");
    /* v1 has no memory.high; its soft limit is the closest thing (reclaimed to under
     * pressure, never OOM-killed for it). */
    c->memory_high = exists(mount, "memory/memory.soft_limit_in_bytes");
    c->memory_swap = exists(mount, "memory/memory.memsw.limit_in_bytes");
    c->cpu_max = exists(mount, "cpu/cpu.cfs_quota_us") && exists(mount, "cpu/cpu.cfs_period_us");
    c->cpu_weight = exists(mount, "cpu/cpu.shares");
    /* pids.max and blkio.bfq.weight are never on a root cgroup (CFTYPE_NOT_ON_ROOT), so
     * the root shows them by other files: the hierarchy itself, BFQ's statistics. */
    c->pids = exists(mount, "pids/cgroup.procs");
    if (exists(mount, "blkio/blkio.weight"))
        snprintf(c->io_weight_file, sizeof c->io_weight_file, "blkio.weight");
    else if (exists(mount, "blkio/blkio.bfq.weight") ||
             exists(mount, "blkio/blkio.bfq.io_service_bytes"))
        snprintf(c->io_weight_file, sizeof c->io_weight_file, "blkio.bfq.weight");
    c->io_weight = c->io_weight_file[0] != '\0';
    if (c->memory || c->cpu_max || c->cpu_weight || c->pids || c->io_weight ||
        exists(mount, "freezer/freezer.state"))
        c->version = 1;
}
