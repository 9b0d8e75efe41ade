/* The HTTP server that cannot be jammed (http.h). */
#include "api/http.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>

struct cr_http {
    uv_tcp_t server;
    cr_http_handler handler;
    void *arg;
    int refs;                    /* the server handle + every client */
    int nclients;
    bool closing;
    struct hclient *oldest, *newest;   /* every open client, in the order they came */
    struct cr_http_stats st;
};

struct hclient {
    struct cr_http *s;
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wreq;
    int open_handles;
    bool closing, answered, got_byte;
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
    if (--s->refs == 0)
        free(s);
}

static void on_client_closed(uv_handle_t *h)
{
    struct hclient *c = h->data;
    if (--c->open_handles)
        return;
    struct cr_http *s = c->s;
    free(c->resp);
    free(c);
    s_unref(s);
}

static void client_close(struct hclient *c)
{
    if (c->closing)
        return;
    c->closing = true;
    struct cr_http *s = c->s;
    *(c->prev ? &c->prev->next : &s->oldest) = c->next;
    *(c->next ? &c->next->prev : &s->newest) = c->prev;
    s->nclients--;
    uv_close((uv_handle_t *)&c->tcp, on_client_closed);   /* the fd is closed now */
    uv_close((uv_handle_t *)&c->timer, on_client_closed);
}

static void on_timeout(uv_timer_t *t)
{
    struct hclient *c = t->data;
    c->s->st.timed_out++;
    client_close(c);
}

/* Re-arms the client's one timer for `ms` after it connected. */
static void deadline(struct hclient *c, uint64_t ms)
{
    uint64_t now = uv_now(c->tcp.loop), at = c->since + ms;
    uv_timer_start(&c->timer, on_timeout, at > now ? at - now : 0, 0);
}

/* ---- the answer ----------------------------------------------------------------------------- */

static void on_written(uv_write_t *req, int status)
{
    (void)status;
    client_close(req->data);
}

static void answer(struct hclient *c, struct cr_http_answer *a)
{
    c->answered = true;
    uv_read_stop((uv_stream_t *)&c->tcp);
    /* The answer must be taken within its own time, counted from now. */
    c->since = uv_now(c->tcp.loop);
    deadline(c, CR_HTTP_SEND_MS);
    char head[256];
    int hl = snprintf(head, sizeof head,
                      "HTTP/1.0 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                      "Connection: close\r\n\r\n",
                      a->code, a->reason, a->ctype, a->blen);
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
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_written) < 0)
        client_close(c);
}

static void answer_text(struct hclient *c, int code, const char *reason, const char *msg)
{
    struct cr_http_answer a = {code, reason, "text/plain; charset=utf-8", strdup(msg), 0};
    a.blen = a.body ? strlen(a.body) : 0;
    answer(c, &a);
}

/* "METHOD SP TARGET SP VERSION" on the first line; no header is needed. */
static void handle_request(struct hclient *c)
{
    char *line = c->head;
    char *eol = strpbrk(line, "\r\n");
    if (eol)
        *eol = 0;
    char *sp1 = strchr(line, ' ');
    char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (!sp1 || !sp2 || strncmp(sp2 + 1, "HTTP/", 5)) {
        answer_text(c, 400, "Bad Request", "bad request\n");
        return;
    }
    *sp1 = *sp2 = 0;
    struct cr_http_answer a = {500, "Internal Server Error", "text/plain; charset=utf-8", NULL,
                               0};
    c->s->handler(c->s->arg, line, sp1 + 1, &a);
    answer(c, &a);
}

/* ---- reading the request ---------------------------------------------------------------------- */

static size_t head_len(const struct hclient *c)
{
    return strnlen(c->head, sizeof c->head);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct hclient *c = h->data;
    size_t used = head_len(c);
    /* Room for the terminating NUL; a full buffer reads 0 bytes (then: 431). */
    *buf = uv_buf_init(c->head + used, (unsigned)(sizeof c->head - 1 - used));
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
        if (buf->len == 0)
            answer_text(c, 431, "Request Header Fields Too Large", "request too large\n");
        return;
    }
    if (!c->got_byte) {
        c->got_byte = true;
        deadline(c, CR_HTTP_HEAD_MS);
    }
    /* A NUL byte would end the head early: make it a space. */
    for (ssize_t i = 0; i < nread; i++)
        if (!buf->base[i])
            buf->base[i] = ' ';
    buf->base[nread] = 0;
    if (strstr(c->head, "\r\n\r\n") || strstr(c->head, "\n\n"))
        handle_request(c);
    else if (head_len(c) >= sizeof c->head - 1)
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
        bool idle = !c->answered;
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
    uv_tcp_t tmp;
    memset(&tmp, 0, sizeof tmp);
    uv_tcp_t *tcp = c ? &c->tcp : &tmp;
    uv_tcp_init(server->loop, tcp);
    int len = sizeof c->peer;
    if (uv_accept(server, (uv_stream_t *)tcp) < 0 || !c ||
        uv_tcp_getpeername(tcp, (struct sockaddr *)&c->peer, &len) < 0 ||
        !make_room(s, &c->peer)) {
        /* No memory, or no room: closing it at once is the answer (a scraper retries). */
        s->st.refused++;
        tcp->data = c;
        uv_close((uv_handle_t *)tcp, c ? on_refused_closed : NULL);
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
    c->tcp.data = c->timer.data = c;
    c->open_handles = 2;
    c->since = uv_now(server->loop);
    deadline(c, CR_HTTP_FIRST_BYTE_MS);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
        client_close(c);
}

/* ---- the server ------------------------------------------------------------------------------ */

static void on_server_closed(uv_handle_t *h)
{
    s_unref(h->data);
}

int cr_http_open(uv_loop_t *loop, const char *listen, cr_http_handler handler, void *arg,
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
    s->handler = handler;
    s->arg = arg;
    s->refs = 1;
    uv_tcp_init(loop, &s->server);
    s->server.data = s;
    r = uv_tcp_bind(&s->server, (struct sockaddr *)&ss, 0);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&s->server, 128, on_connection);
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
    uv_close((uv_handle_t *)&s->server, on_server_closed);
}

void cr_http_stats(const struct cr_http *s, struct cr_http_stats *st)
{
    *st = s->st;
}
