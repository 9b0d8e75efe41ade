/* Telling systemd (Type=notify) how the supervisor is doing: sd_notify's datagrams on
 * $NOTIFY_SOCKET, sent by hand (notify.c). libsystemd is not used: Debian ships it only as a
 * shared library, and the supervisor is one static binary. Without $NOTIFY_SOCKET every call
 * does nothing. */
#ifndef CORRAL_NOTIFY_H
#define CORRAL_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

/* Reads (and removes from our environment) NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID;
 * with a watchdog for us, WATCHDOG=1 goes out from loop every half period once READY=1 has
 * gone out, or at once when running (a re-exec: systemd counts the pid as started). True
 * when systemd listens. */
bool sv_notify_open(uv_loop_t *loop, bool running);
/* Sends one message, e.g. "READY=1\nSTATUS=3 services running". Never blocks; a message
 * systemd's queue does not take now waits (in order, sent again on a timer), but for
 * WATCHDOG=1, dropped: the next comes. */
void sv_notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* RELOADING=1 with MONOTONIC_USEC (systemd 253's reload protocol; older ones ignore it) and
 * STATUS=status. */
void sv_notify_reloading(const char *status);
/* Live re-exec (reexec.c): on puts NOTIFY_SOCKET (and WATCHDOG_USEC, WATCHDOG_PID: this pid,
 * which the execve keeps) back into the environment for the next program, which reads them
 * as sv_notify_open() does; off removes them again (the execve failed). On first sends what
 * waits, blocking up to 2 s for systemd's queue to take it (the execve would lose it). Nothing
 * without NOTIFY_SOCKET. */
void sv_notify_pass_on(bool on);
/* At the exit: what waits is sent as pass_on sends it, then the socket is closed. */
void sv_notify_close(void);

#endif
