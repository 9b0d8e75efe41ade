/* A small HTTP/1.0 server on the supervisor's loop that no client can jam: the metrics
 * endpoint's, and any later one's. One request per connection, answered and closed.
 *
 * What a client may hold: at most CR_HTTP_CLIENTS_MAX connections are open at once, at most
 * CR_HTTP_PEER_MAX from one address. A connection must send its first byte within
 * CR_HTTP_FIRST_BYTE_MS and its whole request head (at most CR_HTTP_HEAD_MAX bytes) within
 * CR_HTTP_HEAD_MS of connecting, and take its answer within CR_HTTP_SEND_MS. When a new
 * connection finds its peer's share, or the whole server, full, the oldest connection still
 * sending its request (of that peer, or of all) is closed to make room: idle and slowloris
 * connections, however many are held, only ever push each other out, and a scraper, which
 * sends its request at once, is answered. Only when every slot is busy answering is the new
 * connection refused (closed at once). The fds all this takes are bounded, and part of the
 * supervisor's fd budget (fd_budget.h). */
#ifndef CORRAL_HTTP_H
#define CORRAL_HTTP_H

#include <stddef.h>
#include <uv.h>

#define CR_HTTP_CLIENTS_MAX 64
#define CR_HTTP_PEER_MAX 16
#define CR_HTTP_FIRST_BYTE_MS 1000
#define CR_HTTP_HEAD_MS 5000
#define CR_HTTP_SEND_MS 10000
#define CR_HTTP_HEAD_MAX 8192

struct cr_http;

/* The answer to one request; body is heap memory the server frees (NULL when blen is 0). */
struct cr_http_answer {
    int code;
    const char *reason, *ctype;
    char *body;
    size_t blen;
};

/* Called once per request with its method and target (the path and query). */
typedef void (*cr_http_handler)(void *arg, const char *method, const char *target,
                                struct cr_http_answer *ans);

/* Parses listen ("127.0.0.1:9100", "[::1]:9100", "0.0.0.0:9100"), binds and listens. */
int cr_http_open(uv_loop_t *loop, const char *listen, cr_http_handler handler, void *arg,
                 struct cr_http **out, char *err, size_t errlen);
void cr_http_close(struct cr_http *s);

/* Counters, for tests and the log: connections closed to make room, and refused. */
struct cr_http_stats {
    unsigned long long accepted, evicted, refused, timed_out;
};
void cr_http_stats(const struct cr_http *s, struct cr_http_stats *st);

#endif
