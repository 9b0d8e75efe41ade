/* nftables through libnftables (loaded on first use with dlopen: it costs ~5 ms of start-up
 * to load with its libraries, which a supervisor without a bridge network never needs).
 * Internal to net/. */
#ifndef CORRAL_NET_NFT_H
#define CORRAL_NET_NFT_H

#include <stddef.h>

struct cr_nft;

/* Holds a low fd number for libnftables' socket (it uses select()): call while few fds are
 * open (net_new does); cr_nft_open() uses it. */
void cr_nft_reserve(void);
int cr_nft_open(struct cr_nft **out, char *err, size_t errlen);
void cr_nft_close(struct cr_nft *n);
/* Runs nft commands (one transaction). Returns 0 or -EINVAL with nft's message in err. */
int cr_nft_run(struct cr_nft *n, const char *cmds, char *err, size_t errlen);

#endif
