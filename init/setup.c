/* Spec mode: init as PID 1 of a service's fresh namespaces builds the container from the
 * spec the supervisor hands it (shared/spec.h), then runs the PID-1 loop.
 *
 * Order matters and is fixed here, in one place (parse → plan → apply, STYLE.md §2):
 *   0. create the container's other namespaces (mount, uts, ipc, net, cgroup): the supervisor's
 *      clone makes only the pid (and user) namespace, so that the costly ones (a network
 *      namespace is ~0.3 ms of kernel work) are built here, beside the supervisor, which goes
 *      on with the next service instead of waiting; the cgroup namespace is made after the
 *      cgroup was joined, so the container sees its own cgroup as its root;
 *   1. make every mount private, so nothing we do propagates to the host;
 *   2. put the new root at a mount point of its own (a bind of the rootfs onto itself, or
 *      for rootfs "/" a recursive clone of the host's tree on a private staging tmpfs);
 *   3. create the mount points we need while the tree is still writable;
 *   4. read_only: make the whole new tree read-only (recursively);
 *   5. mount on top: binds, tmpfs, a minimal /dev, a fresh /proc, /sys read-only;
 *   6. pivot_root into it and detach the old root (no chroot: it is escapable);
 *   6b. masked and read-only paths (/proc/kcore, /proc/sys, ...: confine.c);
 *   7. hostname, loopback up, the clean environment;
 *   8. init confines itself (bounding set, its own capabilities, not dumpable) and keeps
 *      the workload's confinement (capabilities, no_new_privs, seccomp) for each child.
 * Any failure is fatal before the workload exists: it is reported as one line on the events
 * fd ("setup-failed reason=bind /srv/data: No such file or directory") and init exits 125. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "events.h"
#include "init.h"
#include "loopback.h"
#include "spec.h"

#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef SYS_pivot_root
#define SYS_pivot_root 155
#endif
#define OPEN_TREE_CLONE_ 1
#define AT_RECURSIVE_ 0x8000
#define MOVE_MOUNT_F_EMPTY_PATH_ 0x00000004
#define MOUNT_ATTR_RDONLY_ 0x00000001

struct mount_attr_ {
    uint64_t attr_set, attr_clr, propagation, userns_fd;
};

extern char **environ;

static char setup_err[512];

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(setup_err, sizeof setup_err, fmt, ap);
    va_end(ap);
    return -1;
}

/* path inside the new root: root + p (p is absolute). */
static int in_root(char *buf, size_t len, const char *root, const char *p)
{
    int n = snprintf(buf, len, "%s%s", strcmp(root, "/") ? root : "", p);
    return n < 0 || (size_t)n >= len ? fail("%s: path too long", p) : 0;
}

static int mkdir_p(const char *path, mode_t mode)
{
    char tmp[4096];
    size_t n = strlen(path);
    if (n >= sizeof tmp)
        return -1;
    memcpy(tmp, path, n + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(tmp, mode) < 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(tmp, mode) < 0 && errno != EEXIST ? -1 : 0;
}

/* A mount point of the right kind (directory, or an empty file for a file bind). */
static int make_mountpoint(const char *path, bool dir)
{
    struct stat st;
    if (stat(path, &st) == 0)
        return 0;
    if (dir)
        return mkdir(path, 0755) == 0 || errno == EEXIST ? 0 : mkdir_p(path, 0755);
    /* Most mount points' parents exist (the /dev nodes always do): try the file first. */
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0) {
        close(fd);
        return 0;
    }
    char parent[4096];
    snprintf(parent, sizeof parent, "%s", path);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent) {
        *slash = 0;
        if (mkdir_p(parent, 0755) < 0)
            return -1;
    }
    fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

static int remount_ro(const char *path, bool recursive)
{
    if (recursive) {
        struct mount_attr_ a = {.attr_set = MOUNT_ATTR_RDONLY_};
        if (syscall(SYS_mount_setattr, AT_FDCWD, path, AT_RECURSIVE_, &a, sizeof a) == 0)
            return 0;
    }
    /* Older kernels: the top mount only. A bind's flags must be given again on remount. */
    return mount(NULL, path, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL);
}

/* Step 2 for an image: an overlay of its layers (top first) at the rootfs mount point, with
 * the container's upper and work dirs (none: read-only). mount(2) takes one page of options:
 * the layers, all in one store folder, are named relative to it (65 bytes each), so 60 fit. */
static int mount_overlay(const struct cr_spec *s, char *root_out, size_t len)
{
    static char opts[4096];
    const char *l0 = s->layers[0], *slash = strrchr(l0, '/');
    size_t dl = (size_t)(slash - l0);
    char dir[4096];
    if (dl >= sizeof dir)
        return fail("layer %s: path too long", l0);
    memcpy(dir, l0, dl);
    dir[dl] = 0;
    int n = snprintf(opts, sizeof opts, "lowerdir=");
    for (size_t i = 0; i < s->nlayers; i++) {
        const char *l = s->layers[i];
        bool same = !strncmp(l, dir, dl) && l[dl] == '/' && !strchr(l + dl + 1, '/');
        n += snprintf(opts + n, sizeof opts - (size_t)n, "%s%s", i ? ":" : "",
                      same ? l + dl + 1 : l);
        if ((size_t)n >= sizeof opts)
            return fail("overlay: %zu layers do not fit in one page of mount options",
                        s->nlayers);
    }
    if (s->upper)
        n += snprintf(opts + n, sizeof opts - (size_t)n, ",upperdir=%s,workdir=%s", s->upper,
                      s->work);
    if ((size_t)n >= sizeof opts)
        return fail("overlay: its options do not fit in one page");
    /* Relative lower dirs resolve against the working directory at mount time. */
    int cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (chdir(dir) < 0) {
        int e = errno;
        if (cwd >= 0)
            close(cwd);
        return fail("layers %s: %s", dir, strerror(e));
    }
    /* A single layer without an upper is not an overlay overlayfs takes: bind it. */
    int r = s->nlayers == 1 && !s->upper
                ? mount(l0, s->rootfs, NULL, MS_BIND, NULL)
                : mount("overlay", s->rootfs, "overlay", 0, opts);
    int e = errno;
    if (cwd >= 0) {
        if (fchdir(cwd) < 0)
            e = e ? e : errno;
        close(cwd);
    }
    if (r < 0)
        return fail("overlay of %zu layers at %s: %s", s->nlayers, s->rootfs, strerror(e));
    snprintf(root_out, len, "%s", s->rootfs);
    return 0;
}

/* A detached tree (the host's / cloned, or the idmapped overlay of an image) attached as the
 * new root on a private staging tmpfs (/tmp, else /mnt, /run, /var/tmp) of this mount
 * namespace: no path of the host's is needed (an image's store is root's alone, closed to a
 * user namespace's root). Takes tree. */
static int stage_tree(int tree, const char *what, char *root_out, size_t len)
{
    static const char *staging[] = {"/tmp", "/mnt", "/run", "/var/tmp"};
    const char *st = NULL;
    for (size_t i = 0; i < sizeof staging / sizeof staging[0] && !st; i++)
        if (mount("corral-staging", staging[i], "tmpfs", MS_NOSUID | MS_NODEV, "size=16k,mode=700") == 0)
            st = staging[i];
    if (!st) {
        close(tree);
        return fail("%s: no directory to stage the new root on: %s", what, strerror(errno));
    }
    snprintf(root_out, len, "%s/root", st);
    if (mkdir(root_out, 0755) < 0 ||
        syscall(SYS_move_mount, tree, "", AT_FDCWD, root_out, MOVE_MOUNT_F_EMPTY_PATH_) < 0) {
        int e = errno;
        close(tree);
        return fail("%s: move_mount: %s", what, strerror(e));
    }
    close(tree);
    return 0;
}

/* Step 2: the new root as a mount of its own at *root_out. An idmapped root (rootfs_idmap)
 * arrives from the supervisor as a detached mount on CR_IDMAP_CHILD_FD: attached over the
 * rootfs's own path, or staged (an image's overlay of idmapped layers). */
static int prepare_root(const struct cr_spec *s, char *root_out, size_t len)
{
    const char *rootfs = s->rootfs;
    if (s->nlayers && s->rootfs_idmap)
        return stage_tree(CR_IDMAP_CHILD_FD, "image root", root_out, len);
    if (s->nlayers)
        return mount_overlay(s, root_out, len);
    if (s->rootfs_idmap) {
        int r = (int)syscall(SYS_move_mount, CR_IDMAP_CHILD_FD, "", AT_FDCWD, rootfs,
                             MOVE_MOUNT_F_EMPTY_PATH_);
        int e = errno;
        close(CR_IDMAP_CHILD_FD);
        if (r < 0)
            return fail("rootfs %s: attaching its idmapped mount: %s", rootfs, strerror(e));
        snprintf(root_out, len, "%s", rootfs);
        return 0;
    }
    if (strcmp(rootfs, "/")) {
        if (mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
            return fail("rootfs %s: %s", rootfs, strerror(errno));
        snprintf(root_out, len, "%s", rootfs);
        return 0;
    }
    /* The host's own tree: clone it first, then park the clone on a private tmpfs. */
    int tree = (int)syscall(SYS_open_tree, AT_FDCWD, "/", OPEN_TREE_CLONE_ | AT_RECURSIVE_ | O_CLOEXEC);
    if (tree < 0)
        return fail("rootfs /: open_tree: %s", strerror(errno));
    return stage_tree(tree, "rootfs /", root_out, len);
}

/* Step 5: a minimal /dev on a fresh tmpfs: the six device nodes made with mknod (as runc
 * does; six bind mounts cost ~80 us more, each taking the kernel's global mount lock), or
 * bound from the host's where mknod is refused (a user namespace); devpts, shm, the usual
 * links. */
/* The service's `device` nodes, below /dev: made with mknod, or bound from the host's node
 * where mknod is refused (a user namespace). */
static int setup_devices(const char *dev, const struct cr_spec *s)
{
    char p[4200];
    for (size_t i = 0; i < s->ndevices; i++) {
        const struct cr_devnode *d = &s->devices[i];
        snprintf(p, sizeof p, "%s/%s", dev, d->dst + 5);
        char *slash = strrchr(p, '/');
        if (slash > p + strlen(dev)) {
            *slash = '\0';
            int r = mkdir_p(p, 0755);
            *slash = '/';
            if (r < 0)
                return fail("device %s: %s", d->dst, strerror(errno));
        }
        mode_t type = d->type == 'b' ? S_IFBLK : S_IFCHR;
        if (mknod(p, type | d->mode, makedev(d->major, d->minor)) == 0)
            continue;
        if (errno != EPERM || make_mountpoint(p, false) < 0 ||
            mount(d->host, p, NULL, MS_BIND, NULL) < 0)
            return fail("device %s: %s", d->dst, strerror(errno));
    }
    return 0;
}

static int setup_dev(const char *root, const struct cr_spec *s)
{
    static const char *nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
    static const unsigned dev_nr[][2] = {{1, 3}, {1, 5}, {1, 7}, {1, 8}, {1, 9}, {5, 0}};
    static const char *links[][2] = {
        {"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
        {"/proc/self/fd/2", "stderr"}, {"pts/ptmx", "ptmx"},
    };
    char dev[4096], p[4200];
    if (in_root(dev, sizeof dev, root, "/dev"))
        return -1;
    if (mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=64k") < 0)
        return fail("mount /dev: %s", strerror(errno));
    mode_t old_umask = umask(0);
    bool can_mknod = true;
    for (size_t i = 0; i < sizeof nodes / sizeof nodes[0]; i++) {
        char host[64];
        snprintf(host, sizeof host, "/dev/%s", nodes[i]);
        snprintf(p, sizeof p, "%s/%s", dev, nodes[i]);
        if (can_mknod &&
            mknod(p, S_IFCHR | 0666, makedev(dev_nr[i][0], dev_nr[i][1])) == 0)
            continue;
        can_mknod = false;
        if (make_mountpoint(p, false) < 0 || mount(host, p, NULL, MS_BIND, NULL) < 0) {
            int e = errno;
            umask(old_umask);
            return fail("mount /dev/%s: %s", nodes[i], strerror(e));
        }
    }
    int r = setup_devices(dev, s);
    umask(old_umask);
    if (r < 0)
        return -1;
    for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", dev, links[i][1]);
        if (symlink(links[i][0], p) < 0)
            return fail("/dev/%s: %s", links[i][1], strerror(errno));
    }
    snprintf(p, sizeof p, "%s/pts", dev);
    if (mkdir(p, 0755) < 0 ||
        mount("devpts", p, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=620") < 0)
        return fail("mount /dev/pts: %s", strerror(errno));
    if (s->console && console_open(dev, s->uid, s->gid, setup_err, sizeof setup_err) < 0)
        return -1;
    snprintf(p, sizeof p, "%s/shm", dev);
    if (mkdir(p, 01777) < 0 ||
        mount("shm", p, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=65536k") < 0)
        return fail("mount /dev/shm: %s", strerror(errno));
    return 0;
}

/* The bind sources, held open (O_PATH) from before the new root is staged: staging the host's
 * own tree parks a tmpfs on /tmp (or /mnt, /run, /var/tmp), which would hide a source below
 * it. Mounted later through /proc/self/fd/N. An idmap bind's source is the detached mount the
 * supervisor passed (from CR_IDMAP_CHILD_FD up, after the root's), attached with move_mount. */
static int open_bind_sources(const struct cr_spec *s, int *fds)
{
    int next = CR_IDMAP_CHILD_FD + (s->rootfs_idmap ? 1 : 0);
    for (size_t i = 0; i < s->nbinds; i++) {
        if (s->binds[i].idmap || s->binds[i].clone) {
            fds[i] = next++;
            continue;
        }
        fds[i] = open(s->binds[i].src, O_PATH | O_CLOEXEC);
        if (fds[i] < 0)
            return fail("bind %s: %s", s->binds[i].src, strerror(errno));
    }
    return 0;
}

static int setup_tree(const struct cr_spec *s, const int *src, char *root, size_t rlen, char *p,
                      size_t plen);

static int setup_mounts(const struct cr_spec *s)
{
    char root[4096], p[4096];
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return fail("make / private: %s", strerror(errno));
    int *src = calloc(s->nbinds + 1, sizeof *src);
    if (!src)
        return fail("out of memory");
    for (size_t i = 0; i < s->nbinds; i++)
        src[i] = -1;
    int r = open_bind_sources(s, src);
    if (r == 0)
        r = setup_tree(s, src, root, sizeof root, p, sizeof p);
    for (size_t i = 0; i < s->nbinds; i++)
        if (src[i] >= 0)
            close(src[i]);
    free(src);
    if (r)
        return r;
    /* Step 6: pivot_root(".", ".") stacks the old root on the new one; detaching it leaves
     * only the new root, with no path back to the host's tree. */
    if (chdir(root) < 0)
        return fail("chdir %s: %s", root, strerror(errno));
    if (syscall(SYS_pivot_root, ".", ".") < 0)
        return fail("pivot_root %s: %s", root, strerror(errno));
    if (umount2(".", MNT_DETACH) < 0)
        return fail("detach the old root: %s", strerror(errno));
    if (chdir("/") < 0)
        return fail("chdir /: %s", strerror(errno));
    /* Step 6b: masked and read-only paths, now that the paths are the container's. */
    return confine_paths(s, setup_err, sizeof setup_err);
}

/* Steps 2-5: the new root at root, everything mounted in it. */
static int setup_tree(const struct cr_spec *s, const int *src, char *root, size_t rlen, char *p,
                      size_t plen)
{
    char fdpath[64];
    if (prepare_root(s, root, rlen))
        return -1;

    /* Step 3: mount points, while the tree can still be written. */
    struct stat st;
    for (size_t i = 0; i < s->nbinds; i++) {
        if (fstat(src[i], &st) < 0)
            return fail("bind %s: %s", s->binds[i].src, strerror(errno));
        if (in_root(p, plen, root, s->binds[i].dst) ||
            make_mountpoint(p, S_ISDIR(st.st_mode)) < 0)
            return setup_err[0] ? -1 : fail("bind %s: cannot create %s: %s", s->binds[i].src,
                                            s->binds[i].dst, strerror(errno));
    }
    for (size_t i = 0; i < s->ntmpfs; i++)
        if (in_root(p, plen, root, s->tmpfs[i].dst) || make_mountpoint(p, true) < 0)
            return setup_err[0] ? -1 : fail("tmpfs %s: %s", s->tmpfs[i].dst, strerror(errno));
    static const char *std_dirs[] = {"/dev", "/proc", "/sys"};
    for (size_t i = 0; i < 3; i++)
        if (in_root(p, plen, root, std_dirs[i]) || make_mountpoint(p, true) < 0)
            return setup_err[0] ? -1 : fail("%s: %s", std_dirs[i], strerror(errno));

    /* Step 4 */
    if (s->read_only && remount_ro(root, true) < 0)
        return fail("read_only: %s", strerror(errno));

    /* Step 5 */
    for (size_t i = 0; i < s->nbinds; i++) {
        in_root(p, plen, root, s->binds[i].dst);
        snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", src[i]);
        if (s->binds[i].idmap || s->binds[i].clone
                ? syscall(SYS_move_mount, src[i], "", AT_FDCWD, p, MOVE_MOUNT_F_EMPTY_PATH_) < 0
                : mount(fdpath, p, NULL, MS_BIND | MS_REC, NULL) < 0)
            return fail("bind %s: %s", s->binds[i].src, strerror(errno));
        if (s->binds[i].ro && remount_ro(p, true) < 0)
            return fail("bind %s: read-only: %s", s->binds[i].src, strerror(errno));
    }
    for (size_t i = 0; i < s->ntmpfs; i++) {
        char opts[64] = "mode=1777";
        if (s->tmpfs[i].size > 0)
            snprintf(opts, sizeof opts, "mode=1777,size=%lld", (long long)s->tmpfs[i].size);
        in_root(p, plen, root, s->tmpfs[i].dst);
        if (mount("tmpfs", p, "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0)
            return fail("tmpfs %s: %s", s->tmpfs[i].dst, strerror(errno));
    }
    if (setup_dev(root, s))
        return -1;
    in_root(p, plen, root, "/proc");
    if (mount("proc", p, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        return fail("mount /proc: %s", strerror(errno));
    in_root(p, plen, root, "/sys");
    if (mount("sysfs", p, "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0 &&
        (mount("/sys", p, NULL, MS_BIND | MS_REC, NULL) < 0 || remount_ro(p, true) < 0))
        return fail("mount /sys: %s", strerror(errno));

    return 0;
}

static int loopback_up(void)
{
    int r = cr_loopback_up();
    return r < 0 ? fail("loopback up: %s", strerror(-r)) : 0;
}

static enum init_restart restart_of(int r)
{
    return r == CR_RESTART_ALWAYS ? RESTART_ALWAYS
         : r == CR_RESTART_UNEXPECTED ? RESTART_ON_FAILURE : RESTART_NO;
}

int init_spec_setup(int spec_fd, struct init_opts *o)
{
    static struct cr_spec spec;   /* lives as long as init: opts point into it */
    struct cr_errlist errs = {0};
    char origin[32];
    snprintf(origin, sizeof origin, "spec(fd %d)", spec_fd);
    setup_err[0] = 0;
    if (cr_spec_read_fd(spec_fd, origin, &spec, &errs) < 0) {
        for (size_t i = 0; i < errs.n; i++)
            fprintf(stderr, "init: %s\n", errs.v[i]);
        fail("%s", errs.n ? errs.v[0] : "cannot read the spec");
        cr_errlist_free(&errs);
        goto failed;
    }
    cr_errlist_free(&errs);
    close(spec_fd);

    /* CR_NS_* are the CLONE_NEW* bits. */
    unsigned later = spec.namespaces & ~(unsigned)(CR_NS_PID | CR_NS_USER);
    if (later && unshare((int)later) < 0) {
        fail("creating its namespaces: %s", strerror(errno));
        goto failed;
    }
    if ((spec.namespaces & CR_NS_MOUNT) && spec.rootfs && setup_mounts(&spec))
        goto failed;
    if ((spec.namespaces & CR_NS_UTS) && spec.hostname &&
        sethostname(spec.hostname, strlen(spec.hostname)) < 0) {
        fail("hostname %s: %s", spec.hostname, strerror(errno));
        goto failed;
    }
    if ((spec.namespaces & CR_NS_NET) && loopback_up())
        goto failed;

    static char *empty_env[] = {NULL};
    environ = spec.env ? spec.env : empty_env;
    o->argv = spec.argv;
    o->exec_path = spec.exec;
    o->set_ids = true;
    o->empty_mask = true;
    o->uid = spec.uid;
    o->gid = spec.gid;
    o->groups = spec.groups;
    o->ngroups = spec.ngroups;
    o->umask = spec.umask;
    o->directory = spec.directory;
    o->restart = restart_of(spec.autorestart);
    o->exit_codes = spec.exitcodes;
    o->restart_delay_ms = spec.restart_delay_ms;
    o->restart_delay_max_ms = spec.restart_delay_max_ms > spec.restart_delay_ms
                                  ? spec.restart_delay_max_ms : spec.restart_delay_ms;
    o->restart_reset_after_ms = spec.restart_reset_after_ms;
    o->max_restarts = spec.max_restarts;
    o->restart_window_ms = spec.restart_window_ms;
    o->startsecs_ms = spec.startsecs_ms;
    o->startretries = spec.startretries;
    o->stop_signal = spec.stopsignal;
    o->grace_ms = spec.stopwait_ms;
    o->ready = spec.ready;
    o->ready_arg = spec.ready_arg;
    o->ready_argv = spec.ready_argv;
    o->ready_timeout_ms = spec.ready_timeout_ms;
    o->health_argv = spec.health_argv;
    o->health_interval_ms = spec.health_interval_ms;
    o->health_timeout_ms = spec.health_timeout_ms;
    o->health_start_period_ms = spec.health_start_period_ms;
    o->health_retries = spec.health_retries;
    o->health_action = spec.health_action;
    if (confine_self(&spec, o, setup_err, sizeof setup_err) < 0)
        goto failed;
    /* Our own /dev tmpfs, seen by this container only: the NOTIFY_SOCKET's home. */
    if ((spec.namespaces & CR_NS_MOUNT) && spec.rootfs)
        o->notify_dir = "/dev/.corral";
    return 0;

failed:
    fprintf(stderr, "init: setup failed: %s\n", setup_err);
    cr_event(o->events_fd, CR_EVT_SETUP_FAILED, "reason=%s", setup_err);
    return 125;
}
