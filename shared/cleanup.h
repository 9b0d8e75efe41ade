/* Scope-bound resources (STYLE.md §8): a variable declared with CR_AUTOFD, CR_AUTOFREE,
 * CR_AUTOFCLOSE or CR_AUTOCLOSEDIR is closed or freed when it goes out of scope, so an early
 * return cannot leak it. To hand it on (return it, store it), take it with cr_steal_fd() or
 * cr_steal_ptr(), which leave -1 or NULL behind.
 *
 *     CR_AUTOFD int fd = open(path, O_RDONLY | O_CLOEXEC);
 *     if (fd < 0 || fstat(fd, &st) < 0)
 *         return -errno;          // closed here, when it was open
 *     return cr_steal_fd(&fd);    // the caller's now
 *
 * Not for a child between clone and exec: it leaves through _exit, and nothing runs there. */
#ifndef CORRAL_CLEANUP_H
#define CORRAL_CLEANUP_H

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Also to close one early: it leaves -1 behind, so the scope's end does nothing more. */
static inline void cr_closep(int *fd)
{
    if (*fd >= 0) {
        int e = errno;   /* a return value of -errno may be computed after this runs */
        close(*fd);
        *fd = -1;
        errno = e;
    }
}

static inline void cr_freep(void *p)
{
    free(*(void **)p);
}

static inline void cr_fclosep(FILE **f)
{
    if (*f) {
        int e = errno;
        fclose(*f);
        errno = e;
    }
}

static inline void cr_closedirp(DIR **d)
{
    if (*d) {
        int e = errno;
        closedir(*d);
        errno = e;
    }
}

#define CR_AUTOFD __attribute__((cleanup(cr_closep)))
#define CR_AUTOFREE __attribute__((cleanup(cr_freep)))
#define CR_AUTOFCLOSE __attribute__((cleanup(cr_fclosep)))
#define CR_AUTOCLOSEDIR __attribute__((cleanup(cr_closedirp)))
/* A type's own free function, called with the variable's address: CR_CLEANUP(table_free). */
#define CR_CLEANUP(fn) __attribute__((cleanup(fn)))

static inline int cr_steal_fd(int *fd)
{
    int r = *fd;
    *fd = -1;
    return r;
}

static inline void *cr_steal_ptr(void *pp)
{
    void **p = pp;
    void *r = *p;
    *p = NULL;
    return r;
}

#endif
