/* Small helpers for the supervisor's own unix sockets and socket files (the control socket,
 * the HTTP servers', a FastCGI program's): taking over a path whose server is gone, and the
 * USER[:GROUP] owner a config names for one. Knows nothing of services or config. */
#ifndef CORRAL_NET_UNIXSOCK_H
#define CORRAL_NET_UNIXSOCK_H

#include <stddef.h>
#include <sys/types.h>

/* A socket file at path whose server is gone is removed; 0 then, or when nothing is there.
 * -EEXIST (not a socket) or -EADDRINUSE ("another WHO answers there") with err. */
int cr_unix_path_claim(const char *path, const char *who, char *err, size_t errlen);

/* A listening unix socket (nonblocking, close-on-exec) at path, which appears there only
 * once it listens: bound at a sibling name, given mode (and uid/gid unless -1), listening,
 * then renamed over path. A client that waits for the file and connects at once is never
 * refused (it was, in the moment between bind and listen, on a loaded machine). The fd, its
 * file's device and inode in *dev and *ino; or -errno with err. */
int cr_unix_listen(const char *path, mode_t mode, uid_t uid, gid_t gid, int backlog,
                   dev_t *dev, ino_t *ino, char *err, size_t errlen);

/* "USER" (its primary group) or "USER:GROUP" to ids; -EINVAL with "no user 'x'" or
 * "no group 'y'" in err. */
int cr_owner_parse(const char *spec, uid_t *uid, gid_t *gid, char *err, size_t errlen);

#endif
