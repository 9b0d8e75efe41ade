/* libnftables, dlopen'ed; see nft.h. */
#include "net/nft.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
        !n->get_error || !(n->ctx = n->ctx_new(0))) {
        snprintf(err, errlen, "libnftables.so.1 lacks the functions it should have");
        dlclose(n->lib);
        free(n);
        return -ENOENT;
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
