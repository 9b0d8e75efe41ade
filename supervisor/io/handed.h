/* What a live re-exec hands over: a service's pipes, its container's pidfd, events pipe and
 * network namespace, the watch set. It is made without close-on-exec (the flag argument of
 * pipe2, epoll_create1 or open; a pidfd is born with it and loses it once, at the spawn),
 * so that the execve keeps it as it is: no system call per fd in the gap (reexec.c), where
 * 100 services once cost 700 fcntl calls. Nothing leaks into a child for it: every child
 * the supervisor starts closes what it is not given (spawn.c's close_range, posix_spawn's
 * addclosefrom in net/cni.c and reexec.c, the emergency shell's close_range in pid1/). */
#ifndef CORRAL_IO_HANDED_H
#define CORRAL_IO_HANDED_H

#define CR_HANDED_FD 0

#endif
