/* A small HTTP/1.0 server on the supervisor's loop that no client can jam: the metrics
 * endpoint's and the XML-RPC endpoint's (on TCP or a unix socket). One request per
 * connection, answered and closed (HTTP/1.1 clients are answered with Connection: close).
 *
 * What a client may hold: at most CR_HTTP_CLIENTS_MAX connections are open at once, at most
 * CR_HTTP_PEER_MAX from one address. A connection must send its first byte within
 * CR_HTTP_FIRST_BYTE_MS (while the server, and its peer's share, are less than a quarter
 * full, it gets until CR_HTTP_HEAD_MS: a client slowed down by a loaded machine is not an
 * attack) and its whole request (a head of at most CR_HTTP_HEAD_MAX bytes, and
 * a body of at most the server's body_max) within CR_HTTP_HEAD_MS of connecting, and take
 * its answer within CR_HTTP_SEND_MS. When a new connection finds its peer's share, or the
 * whole server, full, the oldest connection still sending its request (of that peer, or of
 * all) is closed to make room: idle and slowloris connections, however many are held, only
 * ever push each other out, and a scraper, which sends its request at once, is answered.
 * Only when every slot is busy answering is the new connection refused (closed at once). A
 * handler may answer later (an XML-RPC start that waits for RUNNING): such a connection is
 * busy, and closed after CR_HTTP_PENDING_MS without an answer. Once answered, a connection
 * lingers until the client closes (at most CR_HTTP_LINGER_MS, reading and dropping what it
 * still sends), and may be pushed out like an idle one. The fds all this takes are
 * bounded, and part of the supervisor's fd budget (fd_budget.h). */
#ifndef CORRAL_HTTP_H
#define CORRAL_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <uv.h>

#define CR_HTTP_CLIENTS_MAX 64
#define CR_HTTP_PEER_MAX 16
#define CR_HTTP_FIRST_BYTE_MS 1000
#define CR_HTTP_HEAD_MS 5000
#define CR_HTTP_SEND_MS 10000
/* after the answer, for the client to close: as long as a loaded machine's client gets to send its
 * request (a guest starved by a host under stress-ng was past 2 s between reading the answer and
 * its last write, and got EPIPE) */
#define CR_HTTP_LINGER_MS CR_HTTP_HEAD_MS
#define CR_HTTP_HEAD_MAX 8192

#define CR_HTTP_PENDING_MS (10 * 60 * 1000)

struct cr_http;
struct cr_http_conn;

/* The answer to one request; body is heap memory the server frees (NULL when blen is 0).
 * headers: more header lines, each ending in \r\n (a static string), or NULL. A handler
 * that leaves code 0 answers later, with cr_http_reply(). */
struct cr_http_answer {
    int code;
    const char *reason, *ctype;
    char *body;
    size_t blen;
    const char *headers;
    /* with code 0: the answer is a stream of this type (cr_http_stream_begin), body (if any)
     * its first chunk */
    const char *stream_ctype;
};

/* One request, valid during the handler's call. */
struct cr_http_req {
    const char *method, *target;   /* target: the path and query */
    int minor;                     /* HTTP/1.minor */
    const char *head;              /* its header lines */
    const char *body;              /* NUL-terminated as well; "" when none */
    size_t blen;
    struct cr_http_conn *conn;     /* for cr_http_reply() */
};

/* A header's value (the first of that name, case-insensitive), copied into out, spaces
 * trimmed: false when absent (or longer than len). */
bool cr_http_header(const struct cr_http_req *r, const char *name, char *out, size_t len);

typedef void (*cr_http_handler)(void *arg, const struct cr_http_req *req,
                                struct cr_http_answer *ans);

struct cr_http_opts {
    cr_http_handler handler;
    /* A request the handler left unanswered lost its connection (the pending deadline, the
     * server closing): conn is gone after this; NULL when the handler never defers. */
    void (*aborted)(void *arg, struct cr_http_conn *conn);
    void *arg;
    size_t body_max;               /* larger bodies get 413; 0: no body is taken */
};

/* Parses listen ("127.0.0.1:9100", "[::1]:9100", "0.0.0.0:9100"), binds and listens. */
int cr_http_open(uv_loop_t *loop, const char *listen, const struct cr_http_opts *o,
                 struct cr_http **out, char *err, size_t errlen);
/* The same on a unix socket at path, created with mode (and owned by uid:gid unless -1). A
 * path where a server answers is left alone (-EADDRINUSE); a stale socket is replaced. The
 * file is removed at close. */
int cr_http_open_unix(uv_loop_t *loop, const char *path, unsigned mode, uid_t uid, gid_t gid,
                      const struct cr_http_opts *o, struct cr_http **out, char *err,
                      size_t errlen);
/* A request its handler deferred can instead be answered by a stream that has no end
 * (supervisorctl's tail -f): 200, chunked, then each cr_http_stream_write() one chunk. The
 * connection then has no deadline; it closes when the client goes away (then `aborted` is
 * called) or lets more than CR_HTTP_STREAM_QUEUE_MAX bytes wait. 0 or a negative errno (the
 * connection is then closed: `aborted` follows). */
#define CR_HTTP_STREAM_QUEUE_MAX (256 * 1024)
int cr_http_stream_begin(struct cr_http_conn *conn, const char *ctype);
int cr_http_stream_write(struct cr_http_conn *conn, const char *data, size_t len);
/* Answers a request its handler deferred (ans as the handler's; code not 0). */
void cr_http_reply(struct cr_http_conn *conn, struct cr_http_answer *ans);
void cr_http_close(struct cr_http *s);

/* Counters, for tests and the log: connections closed to make room, and refused. */
struct cr_http_stats {
    unsigned long long accepted, evicted, refused, timed_out;
};
void cr_http_stats(const struct cr_http *s, struct cr_http_stats *st);

#endif
