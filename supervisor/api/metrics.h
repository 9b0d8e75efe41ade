/* `[supervisor] metrics_listen = ADDRESS:PORT`: Prometheus text exposition (format 0.0.4)
 * over api/http.c's HTTP/1.0 server on the supervisor's libuv loop (its limits: http.h).
 *
 * GET /metrics answers with one sample per service and metric (see metrics.c and svctl(8)),
 * and the HTTP server's own counters; anything else gets 404 or 405. */
#ifndef CORRAL_METRICS_H
#define CORRAL_METRICS_H

#include <stddef.h>

struct cr_api_host;
struct cr_metrics;

/* Parses listen ("127.0.0.1:9100", "[::1]:9100", "0.0.0.0:9100"), binds and listens on
 * api->rt's loop; api must outlive it. */
int cr_metrics_open(const struct cr_api_host *api, const char *listen, struct cr_metrics **out,
                    char *err, size_t errlen);
void cr_metrics_close(struct cr_metrics *m);
/* The exposition text for the host's services (heap; *len its length), or NULL. */
char *cr_metrics_render(const struct cr_api_host *api, size_t *len);

#endif
