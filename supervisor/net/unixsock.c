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
