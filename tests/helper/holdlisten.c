/* LD_PRELOAD shim for tests/faults/test_socket_window.py: listen() on a unix socket whose bound
 * path contains $CRTEST_HOLD_MATCH first appends that path to $CRTEST_HOLD_DIR/held, then
 * waits (up to 60 s) until $CRTEST_HOLD_DIR/go exists. It stops the program in the moment
 * between bind and listen, where a loaded machine preempts it now and then, for as long as
 * the test needs to look at it. Without both variables it is the real listen(). */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

int listen(int fd, int backlog)
{
    int (*real)(int, int) = (int (*)(int, int))dlsym(RTLD_NEXT, "listen");
    const char *dir = getenv("CRTEST_HOLD_DIR"), *match = getenv("CRTEST_HOLD_MATCH");
    struct sockaddr_un sa;
    socklen_t len = sizeof sa;
    if (dir && match && getsockname(fd, (struct sockaddr *)&sa, &len) == 0 &&
        sa.sun_family == AF_UNIX && len > sizeof sa.sun_family && sa.sun_path[0] &&
        strstr(sa.sun_path, match)) {
        char path[4096];
        snprintf(path, sizeof path, "%s/held", dir);
        int h = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (h >= 0) {
            dprintf(h, "%s\n", sa.sun_path);
            close(h);
        }
        snprintf(path, sizeof path, "%s/go", dir);
        for (int i = 0; i < 6000 && access(path, F_OK) < 0; i++)
            nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
    return real(fd, backlog);
}
