/* The machine before the services: console, file systems, cgroup2, hostname, lo (pid1.h). */
#include "pid1/pid1.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

#define CGROUP2 "/sys/fs/cgroup"

/* What a system needs mounted before anything runs, in order (a later one may live on an
 * earlier one). required: without it the supervisor cannot work (setup fails). */
static const struct {
    const char *src, *target, *type;
    unsigned long flags;
    const char *data;
    bool required;
} mounts[] = {
    {"proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, true},
    {"sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, false},
    {"devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755", false},
    {"devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "mode=0620,ptmxmode=0666", false},
    {"shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777", false},
    {"tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755", false},
    {"tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777", false},
    {"cgroup2", CGROUP2, "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, "nsdelegate", true},
};

/* Something is mounted on path: its device differs from its parent's, or it is its parent
 * (the root). A bind mount of the same file system is not told apart; nothing here makes
 * one. */
static bool is_mountpoint(const char *path)
{
    char parent[256];
    snprintf(parent, sizeof parent, "%s/..", path);
    struct stat a, b;
    if (stat(path, &a) < 0 || stat(parent, &b) < 0)
        return false;
    return a.st_dev != b.st_dev || a.st_ino == b.st_ino;
}

/* fds 0-2: the kernel opens /dev/console for init when the root has one; when it had not,
 * they are closed, and anything we open would land there. */
static void console_fds(void)
{
    for (int fd = 0; fd < 3; fd++) {
        if (fcntl(fd, F_GETFD) >= 0)
            continue;
        int c = open("/dev/console", O_RDWR | O_NOCTTY);
        if (c < 0)
            c = open("/dev/null", O_RDWR);
        if (c >= 0 && c != fd) {
            dup2(c, fd);
            close(c);
        }
    }
}

/* Every controller the kernel has, for the root's children (the services' cgroups). */
static void enable_controllers(void)
{
    char list[512];
    int fd = open(CGROUP2 "/cgroup.controllers", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, list, sizeof list - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (n <= 0)
        return;
    list[n] = 0;
    fd = open(CGROUP2 "/cgroup.subtree_control", O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    for (char *save, *c = strtok_r(list, " \n", &save); c; c = strtok_r(NULL, " \n", &save)) {
        char w[64];
        int len = snprintf(w, sizeof w, "+%s", c);
        if (write(fd, w, (size_t)len) < 0)
            cr_log(NULL, "cgroup2: cannot enable the %s controller: %s", c, strerror(errno));
    }
    close(fd);
}

static void dev_links(void)
{
    static const char *const links[][2] = {
        {"/proc/self/fd", "/dev/fd"},   {"/proc/self/fd/0", "/dev/stdin"},
        {"/proc/self/fd/1", "/dev/stdout"}, {"/proc/self/fd/2", "/dev/stderr"},
        {"pts/ptmx", "/dev/ptmx"},
    };
    for (size_t i = 0; i < sizeof links / sizeof links[0]; i++)
        if (symlink(links[i][0], links[i][1]) < 0 && errno != EEXIST)
            cr_log(NULL, "%s: %s", links[i][1], strerror(errno));
}

/* The initial pid namespace's inode number (PROC_PID_INIT_INO in the kernel). */
#define CR_PID_INIT_INO 0xEFFFFFFCU

bool cr_pid1_is_machine(void)
{
    struct stat st;
    if (stat("/proc/self/ns/pid", &st) < 0)
        return true;   /* no /proc yet: a container runtime would have mounted one */
    return st.st_ino == CR_PID_INIT_INO;
}

int cr_pid1_setup(char *err, size_t errlen)
{
    console_fds();
    umask(022);
    char done[256] = "";
    size_t dl = 0;
    for (size_t i = 0; i < sizeof mounts / sizeof mounts[0]; i++) {
        const char *t = mounts[i].target;
        mkdir(t, 0755);   /* a read-only root without it: mount says so */
        if (is_mountpoint(t))
            continue;
        if (mount(mounts[i].src, t, mounts[i].type, mounts[i].flags, mounts[i].data) < 0) {
            int e = errno;
            if (mounts[i].required) {
                snprintf(err, errlen, "cannot mount %s on %s: %s", mounts[i].type, t,
                         strerror(e));
                return -e;
            }
            cr_log(NULL, "cannot mount %s on %s: %s", mounts[i].type, t, strerror(e));
            continue;
        }
        if (dl < sizeof done)
            dl += (size_t)snprintf(done + dl, sizeof done - dl, " %s", t);
        if (!strcmp(t, "/dev"))
            console_fds();
    }
    if (dl)
        cr_log(NULL, "mounted%s", done);
    dev_links();
    enable_controllers();
    /* The kernel sends SIGINT to PID 1 on ctrl-alt-del instead of rebooting at once. */
    if (getpid() == 1 && reboot(RB_DISABLE_CAD) < 0)
        cr_log(NULL, "ctrl-alt-del stays the kernel's: %s", strerror(errno));
    return 0;
}

const char *cr_pid1_conf_from_cmdline(const char *line, char *buf, size_t len)
{
    static const char key[] = "corral.conf=";
    const char *found = NULL;
    size_t flen = 0;
    /* Words split on blanks; the last corral.conf= wins, as the kernel's own parameters do. */
    for (const char *p = line; *p;) {
        p += strspn(p, " \t\n");
        size_t w = strcspn(p, " \t\n");
        if (w >= sizeof key - 1 && !strncmp(p, key, sizeof key - 1)) {
            found = p + sizeof key - 1;
            flen = w - (sizeof key - 1);
        }
        p += w;
    }
    if (!found || flen == 0 || flen + 1 > len)
        return NULL;
    memcpy(buf, found, flen);
    buf[flen] = 0;
    return buf;
}

const char *cr_pid1_cmdline_conf(char *buf, size_t len)
{
    char line[4096];
    int fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, line, sizeof line - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (n <= 0)
        return NULL;
    line[n] = 0;
    return cr_pid1_conf_from_cmdline(line, buf, len);
}

static void lo_up(void)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "lo");
    if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
        cr_log(NULL, "lo: %s", strerror(errno));
    } else if (!(ifr.ifr_flags & IFF_UP)) {
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
            cr_log(NULL, "lo: cannot bring it up: %s", strerror(errno));
    }
    if (s >= 0)
        close(s);
}

void cr_pid1_machine(const char *hostname)
{
    if (hostname && sethostname(hostname, strlen(hostname)) < 0)
        cr_log(NULL, "hostname %s: %s", hostname, strerror(errno));
    lo_up();
}
