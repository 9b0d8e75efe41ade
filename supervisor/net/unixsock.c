/* unixsock.h: stale socket files and owners. */
#include "net/unixsock.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* Is a server answering at path? (A leftover socket file of a dead process is not.) */
static bool someone_listens(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return false;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    int r = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    bool live = r == 0 || errno == EAGAIN || errno == EINPROGRESS;
    close(fd);
    return live;
}

int cr_unix_path_claim(const char *path, const char *who, char *err, size_t errlen)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return 0;
    if (!S_ISSOCK(st.st_mode)) {
        snprintf(err, errlen, "exists and is not a socket");
        return -EEXIST;
    }
    if (someone_listens(path)) {
        snprintf(err, errlen, "another %s answers there", who);
        return -EADDRINUSE;
    }
    unlink(path);
    return 0;
}

int cr_unix_listen(const char *path, mode_t mode, uid_t uid, gid_t gid, int backlog,
                   dev_t *dev, ino_t *ino, char *err, size_t errlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path) {   /* clients could not name it */
        snprintf(err, errlen, "path longer than %zu bytes", sizeof sa.sun_path - 1);
        return -ENAMETOOLONG;
    }
    /* the sibling: ".NAME.PID" beside NAME (where the final name fits, so mostly does this) */
    const char *slash = strrchr(path, '/');
    int dirlen = slash ? (int)(slash - path + 1) : 0;
    int n = snprintf(sa.sun_path, sizeof sa.sun_path, "%.*s.%s.%d", dirlen, path,
                     path + dirlen, (int)getpid());
    if (n < 0 || (size_t)n >= sizeof sa.sun_path)
        n = snprintf(sa.sun_path, sizeof sa.sun_path, "%.*s.%d", dirlen, path, (int)getpid());
    if (n < 0 || (size_t)n >= sizeof sa.sun_path) {
        snprintf(err, errlen, "path too long for a sibling name");
        return -ENAMETOOLONG;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "socket: %s", strerror(e));
        return -e;
    }
    unlink(sa.sun_path);   /* a sibling a killed supervisor of this pid left */
    /* born without access for others; then the mode asked for */
    mode_t old = umask(0177);
    int r = bind(fd, (struct sockaddr *)&sa, sizeof sa);
    umask(old);
    struct stat st;
    const char *what = NULL;
    if (r < 0)
        what = "bind";
    else if ((uid != (uid_t)-1 || gid != (gid_t)-1) && lchown(sa.sun_path, uid, gid) < 0)
        what = "chown";
    else if (chmod(sa.sun_path, mode) < 0)
        what = "chmod";
    else if (listen(fd, backlog) < 0)
        what = "listen";
    else if (lstat(sa.sun_path, &st) < 0)
        what = "stat";
    else if (rename(sa.sun_path, path) < 0)
        what = "rename";
    if (what) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", what, strerror(e));
        if (r == 0)
            unlink(sa.sun_path);
        close(fd);
        return -e;
    }
    *dev = st.st_dev;
    *ino = st.st_ino;
    return fd;
}

int cr_owner_parse(const char *spec, uid_t *uid, gid_t *gid, char *err, size_t errlen)
{
    char u[256];
    snprintf(u, sizeof u, "%s", spec);
    char *g = strchr(u, ':');
    if (g)
        *g++ = 0;
    struct passwd *pw = getpwnam(u);
    if (!pw) {
        snprintf(err, errlen, "no user '%s'", u);
        return -EINVAL;
    }
    struct group *gr = g ? getgrnam(g) : NULL;
    if (g && !gr) {
        snprintf(err, errlen, "no group '%s'", g);
        return -EINVAL;
    }
    *uid = pw->pw_uid;
    *gid = gr ? gr->gr_gid : pw->pw_gid;
    return 0;
}
