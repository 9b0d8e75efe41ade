/* libnftables, dlopen'ed; see nft.h. */
#include "net/nft.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

struct nft_ctx;

struct cr_nft {
    void *lib;
    struct nft_ctx *ctx;
    struct nft_ctx *(*ctx_new)(unsigned flags);
    void (*ctx_free)(struct nft_ctx *);
    int (*run)(struct nft_ctx *, const char *);
    int (*buffer_output)(struct nft_ctx *);
    int (*buffer_error)(struct nft_ctx *);
    const char *(*get_error)(struct nft_ctx *);
};

/* libnftables (1.0.x) waits on its netlink socket with select(), whose fd_set holds numbers
 * below FD_SETSIZE (1024) only: a socket numbered higher aborts the process (glibc's fortify
 * check) or writes past the set. The socket is made once, in nft_ctx_new(), with the lowest
 * free number; a supervisor with a few hundred services has none below 1024 left by then. So
 * a low number is held from the start (on /dev/null) and given back just before. */
static int low_slot = -1;

void cr_nft_reserve(void)
{
    if (low_slot >= 0)
        return;
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd >= FD_SETSIZE) {
        close(fd);
        fd = -1;
    }
    low_slot = fd;
}

/* Whether fd is a netfilter netlink socket (ours are NETLINK_ROUTE ones). */
static bool is_nf_socket(int fd)
{
    int dom = 0, proto = -1;
    socklen_t l1 = sizeof dom, l2 = sizeof proto;
    return getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &l1) == 0 && dom == AF_NETLINK &&
           getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &l2) == 0 &&
           proto == NETLINK_NETFILTER;
}

/* Makes the context, its socket on a number select() can take; NULL (err said) if not. A
 * writer thread opening a log file between our close of the kept number and the library's
 * socket() takes that number first (seen under load: a bridge service's first start failed):
 * then the context is made again, a few times, on the lowest number free then. */
static struct nft_ctx *ctx_low(struct cr_nft *n, char *err, size_t errlen)
{
    if (low_slot >= 0)
        close(low_slot);
    low_slot = -1;
    for (int attempt = 0; attempt < 8; attempt++) {
        int low = open("/dev/null", O_RDONLY | O_CLOEXEC);   /* the number the socket will get */
        if (low >= 0)
            close(low);
        if (low < 0 || low >= FD_SETSIZE) {
            snprintf(err, errlen, "libnftables needs a file descriptor below %d (it uses "
                     "select()) and none is free", FD_SETSIZE);
            return NULL;
        }
        struct nft_ctx *ctx = n->ctx_new(0);
        if (!ctx) {
            snprintf(err, errlen, "libnftables.so.1: cannot make a context");
            return NULL;
        }
        if (is_nf_socket(low))
            return ctx;
        n->ctx_free(ctx);   /* its socket may be out of select()'s reach */
    }
    cr_nft_reserve();   /* a low number kept again for the next try */
    snprintf(err, errlen, "libnftables needs a file descriptor below %d (it uses select()); "
             "the one kept for it was taken again and again", FD_SETSIZE);
    return NULL;
}

int cr_nft_open(struct cr_nft **out, char *err, size_t errlen)
{
    struct cr_nft *n = calloc(1, sizeof *n);
    if (!n)
        return -ENOMEM;
    n->lib = dlopen("libnftables.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!n->lib) {
        snprintf(err, errlen, "cannot load libnftables.so.1 (Debian's libnftables1): %s",
                 dlerror());
        free(n);
        return -ENOENT;
    }
    *(void **)&n->ctx_new = dlsym(n->lib, "nft_ctx_new");
    *(void **)&n->ctx_free = dlsym(n->lib, "nft_ctx_free");
    *(void **)&n->run = dlsym(n->lib, "nft_run_cmd_from_buffer");
    *(void **)&n->buffer_output = dlsym(n->lib, "nft_ctx_buffer_output");
    *(void **)&n->buffer_error = dlsym(n->lib, "nft_ctx_buffer_error");
    *(void **)&n->get_error = dlsym(n->lib, "nft_ctx_get_error_buffer");
    if (!n->ctx_new || !n->ctx_free || !n->run || !n->buffer_output || !n->buffer_error ||
        !n->get_error) {
        snprintf(err, errlen, "libnftables.so.1 lacks the functions it should have");
        dlclose(n->lib);
        free(n);
        return -ENOENT;
    }
    if (!(n->ctx = ctx_low(n, err, errlen))) {
        dlclose(n->lib);
        free(n);
        return -EMFILE;
    }
    n->buffer_output(n->ctx);
    n->buffer_error(n->ctx);
    *out = n;
    return 0;
}

void cr_nft_close(struct cr_nft *n)
{
    if (!n)
        return;
    n->ctx_free(n->ctx);
    dlclose(n->lib);
    free(n);
}

int cr_nft_run(struct cr_nft *n, const char *cmds, char *err, size_t errlen)
{
    if (n->run(n->ctx, cmds) == 0)
        return 0;
    const char *e = n->get_error(n->ctx);
    snprintf(err, errlen, "nftables: %s", e && *e ? e : "failed");
    size_t len = strlen(err);
    while (len && (err[len - 1] == '\n'))
        err[--len] = '\0';
    return -EINVAL;
}
