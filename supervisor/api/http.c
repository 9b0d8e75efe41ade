/* The HTTP server that cannot be jammed (http.h). */
#include "api/http.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <unistd.h>

#include "net/unixsock.h"

struct cr_http {
    union {
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } server;
    bool is_unix;
    char *path;                  /* the unix socket's file, removed at close */
    dev_t dev;
    ino_t ino;
    struct cr_http_opts o;
    int refs;                    /* the server handle + every client */
    int nclients;
    bool closing;
    struct hclient *oldest, *newest;   /* every open client, in the order they came */
    struct cr_http_stats st;
};

struct hclient {
    struct cr_http *s;
    union {
        uv_tcp_t tcp;
        uv_pipe_t pipe;
        uv_stream_t st;
        uv_handle_t h;
    } u;
    uv_timer_t timer;
    uv_write_t wreq;
    uv_shutdown_t shut;
    int open_handles;
    bool closing, answered, got_byte;
    bool lingering;              /* answered: what the client still sends is read and dropped */
    bool pending;                /* the handler answers later (cr_http_reply) */
    bool streaming;              /* a chunked answer that goes on (cr_http_stream_write) */
    bool in_body;                /* the head is read; the body comes */
    size_t hlen;                 /* bytes in head */
    char *body;                  /* body_len + 1 bytes */
    size_t body_len, body_got;
    uint64_t since;              /* uv_now() at accept */
    struct sockaddr_storage peer;
    socklen_t peerlen;
    char *resp;
    size_t len;
    char head[CR_HTTP_HEAD_MAX];
    struct hclient *prev, *next;
};

static void s_unref(struct cr_http *s)
{
    if (--s->refs == 0) {
        free(s->path);
        free(s);
    }
}

static void on_client_closed(uv_handle_t *h)
{
    struct hclient *c = h->data;
    if (--c->open_handles)
        return;
    struct cr_http *s = c->s;
    free(c->resp);
    free(c->body);
    free(c);
    s_unref(s);
}

static void client_close(struct hclient *c)
{
    if (c->closing)
        return;
    c->closing = true;
    struct cr_http *s = c->s;
    if (c->pending && s->o.aborted) {
        c->pending = false;
        s->o.aborted(s->o.arg, (struct cr_http_conn *)c);
    }
    *(c->prev ? &c->prev->next : &s->oldest) = c->next;
    *(c->next ? &c->next->prev : &s->newest) = c->prev;
    s->nclients--;
    uv_close(&c->u.h, on_client_closed);   /* the fd is closed now */
    uv_close((uv_handle_t *)&c->timer, on_client_closed);
}

static bool same_peer(const struct hclient *a, const struct sockaddr_storage *p);
static void deadline(struct hclient *c, uint64_t ms);

static int peer_count(const struct cr_http *s, const struct hclient *of)
{
    int n = 0;
    for (const struct hclient *c = s->oldest; c; c = c->next)
        n += same_peer(c, &of->peer);
    return n;
}

static void on_timeout(uv_timer_t *t)
{
    struct hclient *c = t->data;
    struct cr_http *s = c->s;
    if (c->lingering) {
        client_close(c);
        return;
    }
    /* Silent since it connected: closed at once only where room is short (an idle-connection
     * flood); with room to spare, a client slowed down by a loaded machine (supervisorctl's
     * Python, say) gets until the request's own deadline to start. */
    if (!c->got_byte && !c->answered && uv_now(c->u.h.loop) < c->since + CR_HTTP_HEAD_MS &&
        s->nclients < CR_HTTP_CLIENTS_MAX / 4 && peer_count(s, c) < CR_HTTP_PEER_MAX / 4) {
        deadline(c, CR_HTTP_HEAD_MS);
        return;
    }
    s->st.timed_out++;
    client_close(c);
}

/* Re-arms the client's one timer for `ms` after it connected. */
static void deadline(struct hclient *c, uint64_t ms)
{
    uint64_t now = uv_now(c->u.h.loop), at = c->since + ms;
    uv_timer_start(&c->timer, on_timeout, at > now ? at - now : 0, 0);
}

/* ---- the answer ----------------------------------------------------------------------------- */

static void on_shut(uv_shutdown_t *req, int status)
{
    (void)req;
    (void)status;
}

/* Once the answer is going out (a lingering or a streaming connection), what the client
 * sends is dropped: only EOF (or an error) matters, the client went away. */
static void on_drop_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct hclient *c = h->data;
    *buf = uv_buf_init(c->head, sizeof c->head);
}

static void on_drop_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    if (nread < 0)
        client_close(st->data);
}

/* The answer is out: our side is shut, and the connection stays open, reading and dropping,
 * until the client closes (at most CR_HTTP_LINGER_MS). Closing at once made a client that
 * was still sending bytes after the head (supervisorctl's tail -f sends one more line end,
 * in a write of its own) fail with EPIPE on a unix socket, or be reset on TCP, whenever
 * the answer beat that write. */
static void on_written(uv_write_t *req, int status)
{
    struct hclient *c = req->data;
    if (status < 0 || c->closing) {
        client_close(c);
        return;
    }
    c->lingering = true;
    c->since = uv_now(c->u.h.loop);
    deadline(c, CR_HTTP_LINGER_MS);
    if (uv_shutdown(&c->shut, &c->u.st, on_shut) < 0 ||
        uv_read_start(&c->u.st, on_drop_alloc, on_drop_read) < 0)
        client_close(c);
}

int cr_http_stream_begin(struct cr_http_conn *conn, const char *ctype);
int cr_http_stream_write(struct cr_http_conn *conn, const char *data, size_t len);

static void answer(struct hclient *c, struct cr_http_answer *a)
{
    c->answered = true;
    uv_read_stop(&c->u.st);
    if (!a->code) {
        /* The handler answers later: the connection waits, busy, within its own time. */
        c->pending = true;
        c->since = uv_now(c->u.h.loop);
        deadline(c, CR_HTTP_PENDING_MS);
        if (a->stream_ctype && cr_http_stream_begin((struct cr_http_conn *)c,
                                                    a->stream_ctype) == 0)
            cr_http_stream_write((struct cr_http_conn *)c, a->body, a->blen);
        free(a->body);
        return;
    }
    c->pending = false;
    /* The answer must be taken within its own time, counted from now. */
    c->since = uv_now(c->u.h.loop);
    deadline(c, CR_HTTP_SEND_MS);
    char head[512];
    int hl = snprintf(head, sizeof head,
                      "HTTP/1.0 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                      "%sConnection: close\r\n\r\n",
                      a->code, a->reason, a->ctype, a->blen, a->headers ? a->headers : "");
    if (hl < 0 || (size_t)hl >= sizeof head) {
        free(a->body);
        client_close(c);
        return;
    }
    c->resp = malloc((size_t)hl + a->blen);
    if (!c->resp) {
        free(a->body);
        client_close(c);
        return;
    }
    memcpy(c->resp, head, (size_t)hl);
    if (a->blen)
        memcpy(c->resp + hl, a->body, a->blen);
    free(a->body);
    c->len = (size_t)hl + a->blen;
    uv_buf_t b = uv_buf_init(c->resp, (unsigned)c->len);
    c->wreq.data = c;
    if (uv_write(&c->wreq, &c->u.st, &b, 1, on_written) < 0)
        client_close(c);
}

/* ---- streaming: a chunked answer without an end -------------------------------------------- */

struct chunk_req {
    uv_write_t req;
    char data[];
};

static void on_chunk_written(uv_write_t *req, int status)
{
    struct hclient *c = req->data;
    free(req);
    if (status < 0)
        client_close(c);
}

static int stream_put(struct hclient *c, const char *data, size_t len)
{
    if (c->closing)
        return -EPIPE;
    if (uv_stream_get_write_queue_size(&c->u.st) + len > CR_HTTP_STREAM_QUEUE_MAX) {
        client_close(c);           /* a client that does not read is dropped */
        return -ENOBUFS;
    }
    struct chunk_req *r = malloc(sizeof *r + len);
    if (!r) {
        client_close(c);
        return -ENOMEM;
    }
    memcpy(r->data, data, len);
    r->req.data = c;
    uv_buf_t b = uv_buf_init(r->data, (unsigned)len);
    if (uv_write(&r->req, &c->u.st, &b, 1, on_chunk_written) < 0) {
        free(r);
        client_close(c);
        return -EPIPE;
    }
    return 0;
}

int cr_http_stream_begin(struct cr_http_conn *conn, const char *ctype)
{
    struct hclient *c = (struct hclient *)conn;
    if (!c->pending || c->closing || c->streaming)
        return -EINVAL;
    c->streaming = true;
    uv_timer_stop(&c->timer);      /* it lasts as long as the client reads */
    char head[256];
    int hl = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Type: %s\r\n"
                      "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n", ctype);
    if (uv_read_start(&c->u.st, on_drop_alloc, on_drop_read) < 0) {
        client_close(c);
        return -EPIPE;
    }
    return stream_put(c, head, (size_t)hl);
}

int cr_http_stream_write(struct cr_http_conn *conn, const char *data, size_t len)
{
    struct hclient *c = (struct hclient *)conn;
    if (!c->streaming)
        return -EINVAL;
    if (!len)
        return 0;                  /* a chunk of 0 would end the answer */
    char *buf = malloc(len + 32);
    if (!buf) {
        client_close(c);
        return -ENOMEM;
    }
    int hl = snprintf(buf, 32, "%zx\r\n", len);
    memcpy(buf + hl, data, len);
    memcpy(buf + hl + len, "\r\n", 2);
    int r = stream_put(c, buf, (size_t)hl + len + 2);
    free(buf);
    return r;
}

void cr_http_reply(struct cr_http_conn *conn, struct cr_http_answer *a)
{
    struct hclient *c = (struct hclient *)conn;
    if (!c->pending || c->closing || c->streaming) {
        free(a->body);
        return;
    }
    answer(c, a);
}

static void answer_text(struct hclient *c, int code, const char *reason, const char *msg)
{
    struct cr_http_answer a = {code, reason, "text/plain; charset=utf-8", strdup(msg), 0,
                               NULL, NULL};
    a.blen = a.body ? strlen(a.body) : 0;
    answer(c, &a);
}

bool cr_http_header(const struct cr_http_req *r, const char *name, char *out, size_t len)
{
    size_t nl = strlen(name);
    for (const char *l = r->head; *l;) {
        const char *eol = strchr(l, '\n');
        size_t ll = eol ? (size_t)(eol - l) : strlen(l);
        if (ll > nl && l[nl] == ':' && !strncasecmp(l, name, nl)) {
            const char *v = l + nl + 1, *e = l + ll;
            while (v < e && (*v == ' ' || *v == '\t'))
                v++;
            while (e > v && isspace((unsigned char)e[-1]))
                e--;
            if ((size_t)(e - v) >= len)
                return false;
            memcpy(out, v, (size_t)(e - v));
            out[e - v] = 0;
            return true;
        }
        if (!eol)
            break;
        l = eol + 1;
    }
    return false;
}

/* The request line and headers are c->head[0..end); the body, if any, is read. */
static void handle_request(struct hclient *c)
{
    char *line = c->head;
    char *eol = strpbrk(line, "\r\n");
    if (eol)
        *eol = 0;
    char *sp1 = strchr(line, ' ');
    char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (!sp1 || !sp2 || strncmp(sp2 + 1, "HTTP/1.", 7)) {
        answer_text(c, 400, "Bad Request", "bad request\n");
        return;
    }
    *sp1 = *sp2 = 0;
    struct cr_http_req req = {
        .method = line, .target = sp1 + 1, .minor = atoi(sp2 + 8),
        .head = eol ? eol + 1 : "", .body = c->body ? c->body : "", .blen = c->body_len,
        .conn = (struct cr_http_conn *)c,
    };
    struct cr_http_answer a = {500, "Internal Server Error", "text/plain; charset=utf-8", NULL,
                               0, NULL, NULL};
    c->s->o.handler(c->s->o.arg, &req, &a);
    answer(c, &a);
}

/* The head is complete at end (the blank line's last byte + 1): how long a body follows? */
static void head_done(struct hclient *c, size_t end)
{
    size_t surplus = c->hlen - end;
    c->head[end - 1] = 0;        /* the head is a string; the blank line is cut */
    struct cr_http_req r = {.head = c->head};
    char v[64];
    if (cr_http_header(&r, "Transfer-Encoding", v, sizeof v)) {
        answer_text(c, 501, "Not Implemented", "chunked bodies are not taken\n");
        return;
    }
    unsigned long long n = 0;
    if (cr_http_header(&r, "Content-Length", v, sizeof v)) {
        char *e;
        errno = 0;
        n = strtoull(v, &e, 10);
        if (!*v || *e || errno || v[0] == '-') {
            answer_text(c, 400, "Bad Request", "bad Content-Length\n");
            return;
        }
    }
    /* a client's stray line end after a bodiless request (supervisorctl's tail -f) */
    for (char ch; surplus > n && ((ch = c->head[end + surplus - 1]) == '\r' || ch == '\n');)
        surplus--;
    if (n > c->s->o.body_max || surplus > n) {
        answer_text(c, 413, "Payload Too Large", "request body too large\n");
        return;
    }
    c->body_len = (size_t)n;
    c->body = malloc(c->body_len + 1);
    if (!c->body) {
        answer_text(c, 503, "Service Unavailable", "out of memory\n");
        return;
    }
    memcpy(c->body, c->head + end, surplus);
    c->body_got = surplus;
    c->body[c->body_len] = 0;
    c->in_body = true;
    if (c->body_got == c->body_len)
        handle_request(c);
}

/* ---- reading the request ---------------------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct hclient *c = h->data;
    if (c->in_body) {
        *buf = uv_buf_init(c->body + c->body_got, (unsigned)(c->body_len - c->body_got));
        return;
    }
    /* Room for the terminating NUL; a full buffer reads 0 bytes (then: 431). */
    *buf = uv_buf_init(c->head + c->hlen, (unsigned)(sizeof c->head - 1 - c->hlen));
}

/* Where the head ends (after its blank line) in the bytes read, or 0. */
static size_t head_end(const struct hclient *c)
{
    const char *p = strstr(c->head, "\r\n\r\n");
    const char *q = strstr(c->head, "\n\n");
    if (p && (!q || p < q))
        return (size_t)(p - c->head) + 4;
    return q ? (size_t)(q - c->head) + 2 : 0;
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct hclient *c = st->data;
    if (c->closing || c->answered)
        return;
    if (nread < 0) {
        client_close(c);
        return;
    }
    if (nread == 0) {
        if (buf->len == 0 && !c->in_body)
            answer_text(c, 431, "Request Header Fields Too Large", "request too large\n");
        return;
    }
    if (!c->got_byte) {
        c->got_byte = true;
        deadline(c, CR_HTTP_HEAD_MS);
    }
    if (c->in_body) {
        c->body_got += (size_t)nread;
        if (c->body_got == c->body_len)
            handle_request(c);
        return;
    }
    /* A NUL byte would end the head early: make it a space. */
    for (ssize_t i = 0; i < nread; i++)
        if (!buf->base[i])
            buf->base[i] = ' ';
    c->hlen += (size_t)nread;
    c->head[c->hlen] = 0;
    size_t end = head_end(c);
    if (end)
        head_done(c, end);
    else if (c->hlen >= sizeof c->head - 1)
        answer_text(c, 431, "Request Header Fields Too Large", "request too large\n");
}

/* ---- connections: the limits ------------------------------------------------------------------ */

static bool same_peer(const struct hclient *a, const struct sockaddr_storage *p)
{
    if (a->peer.ss_family != p->ss_family)
        return false;
    if (p->ss_family == AF_INET)
        return ((const struct sockaddr_in *)&a->peer)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)p)->sin_addr.s_addr;
    if (p->ss_family == AF_INET6)
        return !memcmp(&((const struct sockaddr_in6 *)&a->peer)->sin6_addr,
                       &((const struct sockaddr_in6 *)p)->sin6_addr, sizeof(struct in6_addr));
    return true;
}

/* Makes room for a new connection from peer: closes the oldest one still sending its
 * request, of that peer when it has its share, else of all when the server is full.
 * False: no room (every slot in question is busy answering). */
static bool make_room(struct cr_http *s, const struct sockaddr_storage *peer)
{
    int mine = 0;
    struct hclient *my_oldest = NULL, *oldest = NULL;
    for (struct hclient *c = s->oldest; c; c = c->next) {
        bool idle = !c->answered || c->lingering;
        if (same_peer(c, peer)) {
            mine++;
            if (idle && !my_oldest)
                my_oldest = c;
        }
        if (idle && !oldest)
            oldest = c;
    }
    struct hclient *victim = NULL;
    if (mine >= CR_HTTP_PEER_MAX)
        victim = my_oldest;
    else if (s->nclients >= CR_HTTP_CLIENTS_MAX)
        victim = oldest;
    else
        return true;
    if (!victim)
        return false;
    s->st.evicted++;
    client_close(victim);
    return true;
}

static void on_refused_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct cr_http *s = server->data;
    if (status < 0 || s->closing)
        return;
    struct hclient *c = calloc(1, sizeof *c);
    union {
        uv_tcp_t tcp;
        uv_pipe_t pipe;
        uv_stream_t st;
        uv_handle_t h;
    } tmp;
    memset(&tmp, 0, sizeof tmp);
    uv_stream_t *cs = c ? &c->u.st : &tmp.st;
    if (s->is_unix)
        uv_pipe_init(server->loop, (uv_pipe_t *)cs, 0);
    else
        uv_tcp_init(server->loop, (uv_tcp_t *)cs);
    int len = c ? (int)sizeof c->peer : 0;
    bool ok = uv_accept(server, cs) == 0 && c;
    if (ok && s->is_unix)
        c->peer.ss_family = AF_UNIX;   /* one peer: every local client shares its share */
    else if (ok)
        ok = uv_tcp_getpeername((uv_tcp_t *)cs, (struct sockaddr *)&c->peer, &len) == 0;
    if (!ok || !make_room(s, &c->peer)) {
        /* No memory, or no room: closing it at once is the answer (a scraper retries). */
        s->st.refused++;
        cs->data = c;
        uv_close((uv_handle_t *)cs, c ? on_refused_closed : NULL);
        return;
    }
    s->st.accepted++;
    c->peerlen = (socklen_t)len;
    c->s = s;
    s->refs++;
    s->nclients++;
    c->prev = s->newest;
    *(s->newest ? &s->newest->next : &s->oldest) = c;
    s->newest = c;
    uv_timer_init(server->loop, &c->timer);
    c->u.h.data = c->timer.data = c;
    c->open_handles = 2;
    c->since = uv_now(server->loop);
    deadline(c, CR_HTTP_FIRST_BYTE_MS);
    if (uv_read_start(&c->u.st, on_alloc, on_read) < 0)
        client_close(c);
}

/* ---- the server ------------------------------------------------------------------------------ */

static void on_server_closed(uv_handle_t *h)
{
    s_unref(h->data);
}

int cr_http_open(uv_loop_t *loop, const char *listen, const struct cr_http_opts *o,
                 struct cr_http **out, char *err, size_t errlen)
{
    *out = NULL;
    char host[128];
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen || !colon[1]) {
        snprintf(err, errlen, "expected ADDRESS:PORT");
        return -EINVAL;
    }
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535) {
        snprintf(err, errlen, "bad port '%s'", colon + 1);
        return -EINVAL;
    }
    size_t hl = (size_t)(colon - listen);
    if (hl >= sizeof host) {
        snprintf(err, errlen, "address too long");
        return -EINVAL;
    }
    memcpy(host, listen, hl);
    host[hl] = 0;
    struct sockaddr_storage ss;
    int r;
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
        host[hl - 1] = 0;
        r = uv_ip6_addr(host + 1, (int)port, (struct sockaddr_in6 *)&ss);
    } else {
        r = uv_ip4_addr(host, (int)port, (struct sockaddr_in *)&ss);
    }
    if (r < 0) {
        snprintf(err, errlen, "bad address '%s' (an IPv4 address, or [IPv6])", host);
        return -EINVAL;
    }
    struct cr_http *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    s->o = *o;
    s->refs = 1;
    uv_tcp_init(loop, &s->server.tcp);
    s->server.tcp.data = s;
    r = uv_tcp_bind(&s->server.tcp, (struct sockaddr *)&ss, 0);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&s->server.tcp, 128, on_connection);
    if (r < 0) {
        snprintf(err, errlen, "%s", uv_strerror(r));
        cr_http_close(s);
        return r;
    }
    *out = s;
    return 0;
}

int cr_http_open_unix(uv_loop_t *loop, const char *path, unsigned mode, uid_t uid, gid_t gid,
                      const struct cr_http_opts *o, struct cr_http **out, char *err,
                      size_t errlen)
{
    *out = NULL;
    struct sockaddr_un sa;
    if (strlen(path) >= sizeof sa.sun_path) {
        snprintf(err, errlen, "path longer than %zu bytes", sizeof sa.sun_path - 1);
        return -ENAMETOOLONG;
    }
    int r = cr_unix_path_claim(path, "server", err, errlen);
    if (r < 0)
        return r;
    struct cr_http *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        free(s);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    s->o = *o;
    s->refs = 1;
    s->is_unix = true;
    uv_pipe_init(loop, &s->server.pipe, 0);
    s->server.pipe.data = s;
    /* There only once it listens, with the mode and owner asked for (unixsock.h). */
    int fd = cr_unix_listen(path, mode, uid, gid, 128, &s->dev, &s->ino, err, errlen);
    if (fd < 0) {
        cr_http_close(s);
        return fd;
    }
    r = uv_pipe_open(&s->server.pipe, fd);
    if (r < 0)
        close(fd);   /* not the handle's */
    else
        r = uv_listen((uv_stream_t *)&s->server.pipe, 128, on_connection);
    if (r < 0) {
        snprintf(err, errlen, "%s", uv_strerror(r));
        cr_http_close(s);
        return r;
    }
    *out = s;
    return 0;
}

void cr_http_close(struct cr_http *s)
{
    if (!s || s->closing)
        return;
    s->closing = true;
    while (s->oldest)
        client_close(s->oldest);
    struct stat st;
    if (s->path && s->dev && stat(s->path, &st) == 0 && st.st_dev == s->dev &&
        st.st_ino == s->ino)
        unlink(s->path);
    uv_close((uv_handle_t *)&s->server, on_server_closed);
}

void cr_http_stats(const struct cr_http *s, struct cr_http_stats *st)
{
    *st = s->st;
}
