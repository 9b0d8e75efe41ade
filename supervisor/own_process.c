#include "own_process.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

/* Raises limit res to at least want (soft, and hard when it is lower). */
static int raise_limit(int res, rlim_t want, const char *key, char *err, size_t len)
{
    struct rlimit rl;
    if (getrlimit(res, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= want)
        return 0;
    struct rlimit nl = {want, rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? rl.rlim_max
                                                                                  : want};
    if (setrlimit(res, &nl) == 0)
        return 0;
    snprintf(err, len, "%s: cannot raise the limit from %llu (hard %llu) to %llu: %s", key,
             (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max,
             (unsigned long long)want, strerror(errno));
    return -1;
}

int cr_own_process_apply(const struct cr_global *g, struct rlimit *nofile, char *err,
                         size_t len)
{
    if (g->umask >= 0)
        umask((mode_t)g->umask);
    if (g->minfds > 0) {
        if (raise_limit(RLIMIT_NOFILE, (rlim_t)g->minfds, "minfds", err, len) < 0)
            return -1;
        /* the containers' own limit (what we were started with) is raised the same way */
        if (nofile->rlim_cur != RLIM_INFINITY && nofile->rlim_cur < (rlim_t)g->minfds) {
            nofile->rlim_cur = (rlim_t)g->minfds;
            if (nofile->rlim_max != RLIM_INFINITY && nofile->rlim_max < nofile->rlim_cur)
                nofile->rlim_max = nofile->rlim_cur;
        }
    }
    if (g->minprocs > 0 && raise_limit(RLIMIT_NPROC, (rlim_t)g->minprocs, "minprocs", err,
                                       len) < 0)
        return -1;
    return 0;
}

void cr_own_pidfile_write(const char *path)
{
    char tmp[4096 + 16];
    snprintf(tmp, sizeof tmp, "%s.%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        cr_log(NULL, "pidfile %s: %s", path, strerror(errno));
        return;
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
    bool ok = write(fd, pid, (size_t)n) == n;
    ok &= close(fd) == 0;
    if (!ok || rename(tmp, path) < 0) {
        cr_log(NULL, "pidfile %s: %s", path, strerror(errno));
        unlink(tmp);
    }
}

void cr_own_pidfile_remove(const char *path)
{
    char buf[32] = "";
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n > 0 && atoi(buf) == (int)getpid())
        unlink(path);
}

#define HEAP_HUGE_MIN 64   /* services; fewer allocate too little to be worth 2 MiB */

void cr_own_heap_huge(size_t services)
{
#if defined(__SANITIZE_ADDRESS__)
    (void)services;
    return;   /* not glibc's allocator: its heap is not the program break */
#else
    if (services < HEAP_HUGE_MIN)
        return;
    const uintptr_t huge = 2u << 20;
    mallopt(M_MMAP_THRESHOLD, 8 << 20);   /* the arrays of many services stay on the heap */
    mallopt(M_TRIM_THRESHOLD, 8 << 20);   /* and the huge page is not given back */
    /* The top chunk (what malloc carves from next) is [break - keepcost, break). One block
     * that ends 16 bytes short of a 2 MiB boundary takes it and the address space up to
     * there (never written: no memory), so that the next chunk's header lands just below
     * the boundary and its data above; the break moves 2 MiB and more past it (top pad).
     * Checked, not assumed: a block served from a free hole elsewhere instead (the top left
     * where it was), or a break that could not move (malloc then maps elsewhere), would leave
     * the 2 MiB unmapped (madvise: ENOMEM, seen once under load); one more try from where
     * the top then is, and a misfit block is given back after. */
    void *misfit = NULL;
    for (int attempt = 0; attempt < 2; attempt++) {
        uintptr_t end = (uintptr_t)sbrk(0), top = end - mallinfo2().keepcost;
        uintptr_t at = (end + (64u << 10) + huge - 1) & ~(huge - 1);
        mallopt(M_TOP_PAD, (int)(huge + (64u << 10)));
        void *skip = malloc(at - 16 - top - sizeof(size_t));   /* kept for good */
        mallopt(M_TOP_PAD, 128 << 10);                         /* glibc's default again */
        if (!skip)
            break;
        uintptr_t brk_now = (uintptr_t)sbrk(0);
        if ((uintptr_t)skip == top + 2 * sizeof(size_t) && brk_now >= at + huge) {
            if (madvise((void *)at, huge, MADV_HUGEPAGE) < 0)
                cr_log(NULL, "heap: no huge page (%s; at %#lx, break %#lx): 4 KiB pages",
                       strerror(errno), (unsigned long)at, (unsigned long)brk_now);
            break;
        }
        cr_log(NULL, "heap: the block below the huge page is at %p, not at the top %#lx, or the "
               "break %#lx is short of %#lx%s", skip, (unsigned long)top,
               (unsigned long)brk_now, (unsigned long)(at + huge),
               attempt ? ": 4 KiB pages" : ": once more");
        if (attempt)
            free(skip);
        else
            misfit = skip;
    }
    free(misfit);
#endif
}
