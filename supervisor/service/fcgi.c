/* The listening sockets of [fcgi-program:x] (fcgi.h): supervisord's tcp://HOST:PORT and
 * unix:///PATH, with socket_backlog, socket_mode and socket_owner. */
#include "service/fcgi.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "net/unixsock.h"

struct fcgi_sock {
    char *program, *url;
    int fd;
    bool unlink_path;            /* unix: the file is ours to remove */
};

static struct fcgi_sock *socks;
static size_t nsocks;

static int fail(char *err, size_t errlen, int e, const char *what, const char *url)
{
    snprintf(err, errlen, "socket %s: %s: %s", url, what, strerror(e));
    return -e;
}

/* A live listener on path is left alone (an error); a stale file is replaced. */
static int open_unix(const struct cr_service *c, const char *path, char *err, size_t errlen)
{
    uid_t uid = (uid_t)-1;
    gid_t gid = (gid_t)-1;
    char why[300];
    if (c->socket_owner && cr_owner_parse(c->socket_owner, &uid, &gid, why, sizeof why) < 0) {
        snprintf(err, errlen, "socket_owner %s: %s", c->socket_owner, why);
        return -EINVAL;
    }
    int r = cr_unix_path_claim(path, "process", why, sizeof why);
    if (r < 0) {
        snprintf(err, errlen, "socket %s: %s", c->socket, why);
        return r;
    }
    /* there only once it listens, as the control socket (a web server that finds the file
     * at once is not refused); the program's accept() blocks, so the fd is made blocking */
    dev_t dev;
    ino_t ino;
    int fd = cr_unix_listen(path, (mode_t)(c->socket_mode >= 0 ? c->socket_mode : 0700), uid,
                            gid, (int)c->socket_backlog, &dev, &ino, why, sizeof why);
    if (fd < 0) {
        snprintf(err, errlen, "socket %s: %s", c->socket, why);
        return fd;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
        int e = errno;
        close(fd);
        unlink(path);
        return fail(err, errlen, e, "fcntl", c->socket);
    }
    return fd;
}

static int open_tcp(const struct cr_service *c, const char *hostport, char *err, size_t errlen)
{
    char host[256];
    const char *colon = strrchr(hostport, ':');
    snprintf(host, sizeof host, "%.*s", (int)(colon - hostport), hostport);
    /* [::1]:9000 and *:9000 as supervisord writes them */
    char *h = host;
    if (h[0] == '[' && h[strlen(h) - 1] == ']') {
        h[strlen(h) - 1] = 0;
        h++;
    }
    struct addrinfo hints = {.ai_flags = AI_PASSIVE, .ai_socktype = SOCK_STREAM}, *ai;
    int g = getaddrinfo(!strcmp(h, "*") || !*h ? NULL : h, colon + 1, &hints, &ai);
    if (g) {
        snprintf(err, errlen, "socket %s: %s", c->socket, gai_strerror(g));
        return -EINVAL;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1, e = 0;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, (int)c->socket_backlog) < 0)
        e = errno;
    freeaddrinfo(ai);
    if (e) {
        if (fd >= 0)
            close(fd);
        return fail(err, errlen, e, "bind", c->socket);
    }
    return fd;
}

int cr_fcgi_socket(const struct cr_service *c, char *err, size_t errlen)
{
    for (size_t i = 0; i < nsocks; i++)
        if (!strcmp(socks[i].program, c->program) && !strcmp(socks[i].url, c->socket))
            return socks[i].fd;
    struct fcgi_sock *ns = realloc(socks, (nsocks + 1) * sizeof *ns);
    if (!ns)
        return fail(err, errlen, ENOMEM, "out of memory", c->socket);
    socks = ns;
    bool unix_path = !strncmp(c->socket, "unix://", 7);
    int fd = unix_path ? open_unix(c, c->socket + 7, err, errlen)
                       : open_tcp(c, c->socket + 6, err, errlen);
    if (fd < 0)
        return fd;
    struct fcgi_sock *s = &socks[nsocks];
    s->program = strdup(c->program);
    s->url = strdup(c->socket);
    s->fd = fd;
    s->unlink_path = unix_path;
    if (!s->program || !s->url) {
        free(s->program);
        free(s->url);
        close(fd);
        return fail(err, errlen, ENOMEM, "out of memory", c->socket);
    }
    nsocks++;
    return fd;
}

static void sock_close(struct fcgi_sock *s)
{
    close(s->fd);
    if (s->unlink_path)
        unlink(s->url + 7);
    free(s->program);
    free(s->url);
}

size_t cr_fcgi_keep_only(const struct cr_service *services, size_t n)
{
    size_t closed = 0;
    for (size_t i = 0; i < nsocks;) {
        bool wanted = false;
        for (size_t k = 0; k < n && !wanted; k++)
            wanted = services[k].fcgi && !strcmp(services[k].program, socks[i].program) &&
                     !strcmp(services[k].socket, socks[i].url);
        if (wanted) {
            i++;
            continue;
        }
        sock_close(&socks[i]);
        socks[i] = socks[--nsocks];
        closed++;
    }
    return closed;
}

void cr_fcgi_close_all(void)
{
    for (size_t i = 0; i < nsocks; i++)
        sock_close(&socks[i]);
    free(socks);
    socks = NULL;
    nsocks = 0;
}
