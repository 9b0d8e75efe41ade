/* Appliance mode: the supervisor as the machine's PID 1 (issue 11).
 *
 * The machine's side of being init, and nothing of services: the file systems a system needs
 * before anything runs (machine.c), the hostname and lo (machine.c), and the way down — every process killed, file systems unmounted,
 * reboot(2) — or, on a fatal error, an emergency shell or a delayed reboot (power.c).
 * Each step says what it did on the console (stderr, through log.h), prefixed "supervisor: ".
 *
 * This layer includes only log.h: the daemon (supervisor/daemon.c) stops the services in
 * dependency order first, then hands the machine to cr_pid1_power(). The orphans the kernel
 * hands to PID 1 while services run are collected by supervisor/orphans.c, the one owner of
 * that rule (it knows which children are containers' inits, held by service/). */
#ifndef CORRAL_PID1_H
#define CORRAL_PID1_H

#include <stdbool.h>
#include <stddef.h>

enum cr_power {
    CR_POWER_NONE,       /* no power action asked for (the supervisor should not have ended) */
    CR_POWER_HALT,
    CR_POWER_POWEROFF,
    CR_POWER_REBOOT,
};

/* "halt", "poweroff", "reboot" (and "none"); cr_power_parse returns CR_POWER_NONE for
 * anything else. */
const char *cr_power_name(enum cr_power p);
enum cr_power cr_power_parse(const char *name);
/* What a signal to PID 1 means (busybox's halt/poweroff/reboot and s6-linux-init send
 * these): TERM reboot, INT reboot (ctrl-alt-del), USR1 halt, USR2 and PWR poweroff. */
enum cr_power cr_power_of_signal(int signum);

/* Whether pid 1 is the machine's: true unless /proc (when mounted) shows a pid namespace
 * other than the initial one (PID 1 of a container, where appliance mode needs --pid1). */
bool cr_pid1_is_machine(void);

/* Stage 1, before the configuration is read: fds 0-2 on /dev/console when closed; /proc,
 * /sys, /dev (devtmpfs, /dev/pts, /dev/shm), /run, /tmp and cgroup2 on /sys/fs/cgroup with
 * every controller enabled for the root's children; each one only when nothing is mounted
 * there yet (an initramfs or a boot loader may have done it). Ctrl-alt-del becomes SIGINT.
 * Returns 0, or -errno with err set when /proc or cgroup2 could not be had (fatal). */
int cr_pid1_setup(char *err, size_t errlen);

/* The configuration file named by the kernel command line's corral.conf=PATH, or NULL.
 * (The kernel keeps dotted parameters from init's arguments and environment, so it is read
 * from /proc/cmdline.) Returns buf or NULL. */
const char *cr_pid1_cmdline_conf(char *buf, size_t len);
/* The same from a command line's text: the value of its last corral.conf= word, or NULL (none,
 * empty, or longer than len-1). */
const char *cr_pid1_conf_from_cmdline(const char *line, char *buf, size_t len);

/* After the configuration: the hostname (NULL: left as it is) and lo up. Failures are said
 * on the console and are not fatal. */
void cr_pid1_machine(const char *hostname);

/* The machine's way down once the services are stopped: SIGTERM to every process, then
 * (after at most grace_ms) SIGKILL, sync, unmount what can be unmounted and remount the rest
 * read-only, then reboot(2) with p. Never returns (when reboot(2) fails or p is HALT, it
 * waits forever, still reaping). */
void cr_pid1_power(enum cr_power p, int grace_ms) __attribute__((noreturn));

/* A fatal error: why goes to the console; then an emergency shell (/bin/sh on the console,
 * when there is one) until it exits, or a delay of delay_s seconds; then the way down with a
 * reboot. Never returns. */
void cr_pid1_fatal(const char *why, int delay_s) __attribute__((noreturn));

#endif
