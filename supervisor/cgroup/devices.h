/* Device access of a service's cgroup (devices.c): deny by default, the usual nodes
 * allowed, plus the service's `device` keys. */
#ifndef CORRAL_CGROUP_DEVICES_H
#define CORRAL_CGROUP_DEVICES_H

#include <stddef.h>
#include <stdint.h>

enum { CR_DEV_MKNOD = 1, CR_DEV_READ = 2, CR_DEV_WRITE = 4, CR_DEV_RWM = 7 };
#define CR_DEVICES_MAX 32

struct cr_device {
    char type;                   /* 'c', 'b', or 'a' (any) */
    int major, minor;            /* -1: any */
    int access;                  /* CR_DEV_* */
};

/* The rules every confined container gets (after "deny all"), before its own. */
size_t cr_cg_devices_defaults(const struct cr_device **out);
/* cgroup v1: writes the rules into the devices cgroup directory dirfd. */
int cr_cg_devices_v1(int dirfd, const struct cr_device *extra, size_t nextra, char *err,
                     size_t len);
/* cgroup v2: loads the rules as a device program and attaches it to the cgroup cgfd. */
int cr_cg_devices_v2(int cgfd, const struct cr_device *extra, size_t nextra, char *err,
                     size_t len);
/* "PATH[:rwm]" → the path and the access (type and numbers are the caller's, from the node).
 * 0 or -EINVAL. */
int cr_device_parse(const char *s, struct cr_device *out, char *path, size_t plen);

#endif
