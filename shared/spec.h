/* The spec: the one data type that crosses from the supervisor to init.
 *
 * It holds everything init needs to build one container and run its workload, already
 * resolved by the supervisor (absolute paths, numeric ids, the final environment). It travels
 * as INI text, read with inih through shared/ini_reader.c, at most CR_SPEC_MAX bytes:
 *
 *   ; corral spec, written by the supervisor for init
 *   [spec]
 *   version = 1
 *   name = web
 *   [container]
 *   hostname = web
 *   rootfs = /srv/rootfs            ; absent: no filesystem setup (no mount namespace)
 *   namespaces = pid,mount,uts,ipc,net,cgroup
 *   read_only = false
 *   rootfs_idmap = false            ; true: the rootfs arrives idmapped (see idmap below)
 *   bind = /srv/data:/data:ro       ; SRC:DST[:OPTS], repeated, in order; OPTS: ro, idmap or
 *                                   ; ro,idmap. idmap: the supervisor passes a detached,
 *                                   ; idmapped clone of SRC (and of rootfs, with rootfs_idmap),
 *                                   ; one fd each from CR_IDMAP_CHILD_FD up: the root first,
 *                                   ; then the idmap binds in order; init moves it into place.
 *                                   ; clone (alone or after the others): the same, without
 *                                   ; the idmapping
 *   layer = /var/lib/corral/layers/sha256/ab12… ; an image's unpacked layer, repeated, top
 *                                   ; first: rootfs is then the mount point of an overlay of
 *                                   ; them (no ':' or ',' in these paths)
 *   upper = /var/lib/corral/containers/web/upper ; the overlay's upper dir (and work, its
 *   work = /var/lib/corral/containers/web/work   ; work dir); absent: a read-only overlay
 *   tmpfs = /tmp:67108864           ; DST[:BYTES], repeated, 0 or absent = kernel default
 *   device = /dev/fuse:/dev/fuse:c:10:229:0666 ; HOST:DST:TYPE:MAJOR:MINOR:MODE, repeated: a
 *                                   ; node made in the container's /dev (bound from HOST
 *                                   ; where mknod is refused: a user namespace)
 *   [process]
 *   exec = /bin/httpd               ; the file to execute, resolved in the rootfs by the
 *                                   ; supervisor; absent: argv[0] searched in env's PATH
 *   argv = httpd                    ; one item per line, in order
 *   argv = -f
 *   directory = /
 *   uid = 0
 *   gid = 0
 *   groups = 0,10                   ; supplementary groups, may be empty
 *   umask = 0022                    ; absent: inherited
 *   console = true                  ; a pty of the container's own (`run` on a terminal)
 *   env = PATH=/usr/bin:/bin        ; one NAME=VALUE per line, the complete environment
 *   [lifecycle]
 *   autorestart = unexpected        ; false | unexpected | true
 *   exitcodes = 0
 *   startsecs = 1000ms
 *   startretries = 3
 *   restart_delay = 0ms
 *   restart_delay_max = 30000ms
 *   restart_reset_after = 10000ms
 *   max_restarts = 0                ; 0: no limit
 *   restart_window = 60000ms
 *   stopsignal = TERM
 *   stopwaitsecs = 10000ms
 *   [readiness]                     ; detected by init, reported as the `ready` event
 *   kind = none                     ; none | notify | fd:N | tcp:PORT | exec
 *   argv = /bin/check               ; exec: the probe, one item per line
 *   timeout = 90000ms               ; not ready by then: a failed start
 *   [health]
 *   argv = /bin/check               ; the check, one item per line; absent: no checks
 *   interval = 30000ms
 *   timeout = 30000ms
 *   retries = 3
 *   start_period = 0ms
 *   action = restart                ; restart | stop | none
 *   [security]                      ; absent: nothing confined (init used by hand)
 *   capabilities = 0x00000000a80425fb ; bounding set; permitted/effective for uid 0 (hex,
 *                                   ; bit N = capability N)
 *   ambient = 0x0000000000000400    ; raised for a non-root user (a subset of the above)
 *   no_new_privs = true
 *   seccomp_fd = 6                  ; a BPF program (struct sock_filter[]) on this fd,
 *                                   ; installed last before exec; absent: none
 *   masked = /proc/kcore            ; hidden (an empty read-only tmpfs on a directory,
 *                                   ; /dev/null on a file), repeated
 *   readonly = /proc/sys            ; made read-only, repeated
 *
 * Values are encoded so inih returns them unchanged: '%' ';' control bytes, and a blank at
 * either end of a line are written %XX; in bind and tmpfs items ':' is written %3A. A value
 * longer than one line continues on indented lines that are appended to it as they are.
 * Unknown sections or keys, a key given twice, a bad value, a missing version or argv are
 * errors, each reported as "ORIGIN:LINE: key: what is wrong". */
#ifndef CORRAL_SPEC_H
#define CORRAL_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ini_reader.h"
#include "units.h"

#define CR_SPEC_VERSION 1
/* init carries an ELF note (owner CR_INIT_NOTE_NAME, type CR_INIT_NOTE_TYPE) that says it is
 * corral's init: the supervisor tells it from a few header reads (spawn.c), and never takes
 * another program called "init" (the system's own, next to an installed supervisor). */
#define CR_INIT_NOTE_NAME "corral"
#define CR_INIT_NOTE_TYPE 1
#define CR_SPEC_MAX (64 * 1024)
#define CR_SPEC_MAX_ITEM 4096          /* longest single value (a path, an argv item) */

/* Namespace bits: the kernel's CLONE_NEW* values. */
#define CR_NS_MOUNT  0x00020000
#define CR_NS_CGROUP 0x02000000
#define CR_NS_UTS    0x04000000
#define CR_NS_IPC    0x08000000
#define CR_NS_USER   0x10000000
#define CR_NS_PID    0x20000000
#define CR_NS_NET    0x40000000
#define CR_NS_DEFAULT (CR_NS_PID | CR_NS_MOUNT | CR_NS_UTS | CR_NS_IPC | CR_NS_NET | CR_NS_CGROUP)

/* Parses "pid,mount,uts" (also "mnt", "network"; spaces allowed) into CR_NS_* bits. On error
 * returns -EINVAL and points *bad at the offending word (a static copy). */
int cr_ns_parse(const char *s, unsigned *out, const char **bad);
/* Writes "pid,mount,..." in a fixed order. */
void cr_ns_format(unsigned ns, char *buf, size_t len);   /* the names that fit, whole */

enum cr_restart { CR_RESTART_NEVER = 0, CR_RESTART_UNEXPECTED = 1, CR_RESTART_ALWAYS = 2 };
/* "false|unexpected|true" and the aliases "no|on-failure|always". -EINVAL if unknown. */
int cr_restart_parse(const char *s);
const char *cr_restart_name(int r);

/* How init learns that the workload is ready. */
enum cr_ready {
    CR_READY_NONE = 0,    /* the supervisor's startsecs decides; init reports nothing */
    CR_READY_NOTIFY,      /* sd_notify: READY=1 on $NOTIFY_SOCKET */
    CR_READY_FD,          /* s6: a newline on fd N (ready_arg) */
    CR_READY_EXEC,        /* a probe (ready_argv) exits 0 */
    CR_READY_TCP,         /* connect(127.0.0.1:ready_arg) succeeds */
};
/* "none", "notify", "fd:N" (N 3-1023), "tcp:PORT" (1-65535), "exec" or "exec:CMD". Returns
 * the kind, sets *arg (N or PORT, else 0) and *cmd (what follows "exec:", else NULL), or
 * returns -EINVAL. */
int cr_ready_parse(const char *s, int *arg, const char **cmd);
/* Writes "none", "notify", "fd:N", "tcp:PORT" or "exec". */
void cr_ready_format(int kind, int arg, char *buf, size_t len);

enum cr_health_action { CR_HEALTH_RESTART = 0, CR_HEALTH_STOP, CR_HEALTH_NONE };
/* "restart|stop|none" → the action, or -EINVAL. */
int cr_health_action_parse(const char *s);
const char *cr_health_action_name(int a);

struct cr_bind {
    char *src, *dst;
    bool ro;
    bool idmap;                  /* an idmapped clone of src arrives on an fd (see above) */
    bool clone;                  /* a plain clone of src arrives so (spec option "clone": a
                                  * source init could not reach from its user namespace, an
                                  * image store's volume) */
};

/* The first fd of the idmapped mounts the supervisor passes to init (after the seccomp
 * program's 6), and how many there may be. */
#define CR_IDMAP_CHILD_FD 7
#define CR_IDMAP_MAX 32
struct cr_tmpfs {
    char *dst;
    int64_t size;                /* bytes; 0 = the kernel's default (half of RAM) */
};

struct cr_devnode {
    char *host, *dst;            /* the host's node; where it appears (below /dev) */
    char type;                   /* 'c' or 'b' */
    unsigned major, minor;
    unsigned mode;               /* permission bits */
};

struct cr_spec {
    char *name;
    /* [container] */
    char *hostname;
    char *rootfs;                /* NULL: no filesystem setup */
    bool rootfs_idmap;           /* the rootfs arrives idmapped on fd CR_IDMAP_CHILD_FD */
    unsigned namespaces;         /* CR_NS_* */
    bool read_only;
    char **layers;               /* an image's layers, top first: rootfs is an overlay of them */
    size_t nlayers;
    char *upper, *work;          /* the overlay's upper and work dirs; NULL: read-only */
    struct cr_bind *binds;
    size_t nbinds;
    struct cr_tmpfs *tmpfs;
    size_t ntmpfs;
    struct cr_devnode *devices;
    size_t ndevices;
    /* [process] */
    char *exec;                  /* path to execute; NULL: argv[0] via PATH */
    char **argv;                 /* NULL-terminated; NULL when empty */
    size_t argc;
    char *directory;             /* NULL: the root of the container */
    uid_t uid;
    gid_t gid;
    gid_t *groups;
    size_t ngroups;
    int umask;                   /* -1: inherited */
    bool console;                /* a pty of the container's own, init between it and init's
                                    stdio (a terminal): init/console.c */
    char **env;                  /* NULL-terminated "NAME=VALUE"; NULL when empty */
    size_t nenv;
    /* [lifecycle] */
    int autorestart;             /* enum cr_restart */
    cr_codeset exitcodes;
    int64_t startsecs_ms;
    unsigned startretries;
    int64_t restart_delay_ms, restart_delay_max_ms, restart_reset_after_ms, restart_window_ms;
    unsigned max_restarts;       /* 0: no limit */
    int stopsignal;
    int64_t stopwait_ms;
    /* [readiness] */
    int ready;                   /* enum cr_ready */
    int ready_arg;               /* CR_READY_FD: the fd; CR_READY_TCP: the port */
    char **ready_argv;           /* CR_READY_EXEC: the probe, NULL-terminated */
    size_t ready_argc;
    int64_t ready_timeout_ms;    /* 0: no limit */
    /* [health] */
    char **health_argv;          /* NULL: no health checks */
    size_t health_argc;
    int64_t health_interval_ms, health_timeout_ms, health_start_period_ms;
    unsigned health_retries;
    int health_action;           /* enum cr_health_action */
    /* [security] */
    uint64_t caps;               /* capability bounding set (CR_CAPS_ALL: left as it is) */
    uint64_t ambient;            /* ambient set for a non-root workload */
    bool no_new_privs;
    int seccomp_fd;              /* -1: no seccomp filter */
    char **masked;               /* NULL-terminated paths inside the container */
    size_t nmasked;
    char **readonly;
    size_t nreadonly;
};

#define CR_CAPS_ALL UINT64_MAX

/* Sets every field to its default (an empty, valid-but-incomplete spec). */
void cr_spec_init(struct cr_spec *s);
void cr_spec_free(struct cr_spec *s);

/* Appenders that copy their arguments; -ENOMEM on failure. */
int cr_spec_add_arg(struct cr_spec *s, const char *arg);
int cr_spec_add_ready_arg(struct cr_spec *s, const char *arg);
int cr_spec_add_health_arg(struct cr_spec *s, const char *arg);
int cr_spec_set_env(struct cr_spec *s, const char *name, const char *value); /* replaces */
const char *cr_spec_get_env(const struct cr_spec *s, const char *name);
int cr_spec_add_bind(struct cr_spec *s, const char *src, const char *dst, bool ro);
/* A bind's options, comma-separated: ro or rw (the default), idmap (as podman's). -EINVAL
 * for anything else, or one given twice. */
int cr_bind_opts_parse(const char *s, bool *ro, bool *idmap);
/* The idmapped mounts init receives: the rootfs (with rootfs_idmap) and each idmap bind. */
size_t cr_spec_nidmap(const struct cr_spec *s);
/* An overlay lower layer (appended below those before it): -EINVAL for a path overlayfs'
 * options cannot carry (':', ',', not absolute). */
int cr_spec_add_layer(struct cr_spec *s, const char *path);
int cr_spec_add_tmpfs(struct cr_spec *s, const char *dst, int64_t size);
int cr_spec_add_device(struct cr_spec *s, const struct cr_devnode *d);
int cr_spec_add_group(struct cr_spec *s, gid_t gid);
/* paths (k of them, each copied, none repeated: a list's defaults) as s's read-only or masked
 * paths when it has none yet, without searching for each (else each is added as by
 * cr_spec_add_masked, if not there). */
int cr_spec_add_new_paths(struct cr_spec *s, bool readonly, const char *const *paths, size_t k);
int cr_spec_add_masked(struct cr_spec *s, const char *path);
int cr_spec_add_readonly(struct cr_spec *s, const char *path);

/* Writes the text into buf (NUL-terminated). Returns its length, -ENOSPC if it does not fit
 * in len or in CR_SPEC_MAX, -EINVAL for a spec that could not be read back (no argv, an
 * item over CR_SPEC_MAX_ITEM bytes). */
ssize_t cr_spec_write(const struct cr_spec *s, char *buf, size_t len);
/* The same, written in full to fd (retrying short writes). Returns 0 or a negative errno. */
/* A length cr_spec_write never exceeds for s (cheap: no text made): a spec whose bound is
 * within CR_SPEC_MAX surely fits, and only one beyond it needs writing to know. */
size_t cr_spec_size_bound(const struct cr_spec *s);
int cr_spec_write_fd(const struct cr_spec *s, int fd);

/* Parses text (len bytes, need not be NUL-terminated). origin names it in messages. Returns
 * 0 and fills *out, or -EINVAL with every problem in errors (*out is then freed). */
int cr_spec_parse(const char *text, size_t len, const char *origin, struct cr_spec *out,
                  struct cr_errlist *errors);
/* Reads all of fd (at most CR_SPEC_MAX bytes) and parses it. */
int cr_spec_read_fd(int fd, const char *origin, struct cr_spec *out, struct cr_errlist *errors);

#endif
