/* `lo` up in the calling thread's network namespace: init's, in a namespace it made, and a
 * `supervisor run`'s, in the one it makes ahead for its container. */
#ifndef CORRAL_LOOPBACK_H
#define CORRAL_LOOPBACK_H

/* 0, or -errno. */
int cr_loopback_up(void);

#endif
