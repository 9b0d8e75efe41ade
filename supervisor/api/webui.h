/* The web UI, on the same HTTP server as supervisorctl's XML-RPC ([inet_http_server],
 * [unix_http_server]) and behind its Basic authentication: GET / is a page of every service
 * (state, supervisord's description, health, restarts, a link to its log's tail -f) with a
 * start, stop or restart button each; POST /action (name, do, token) asks the service as
 * svctl does and redirects to /. Every form carries the server's token, random per
 * supervisor: a page of another site cannot post with the browser's credentials. No
 * JavaScript. */
#ifndef CORRAL_API_WEBUI_H
#define CORRAL_API_WEBUI_H

#include <stdbool.h>

#include "api/host.h"
#include "api/http.h"

struct cr_webui_sampler;

struct cr_webui {
    char token[33];              /* 16 random bytes, hex */
    struct cr_webui_sampler *smp;   /* memory and CPU of each service over the last hour */
};

/* The token, and the sampler: every service's memory and CPU time read once a minute (only
 * where a web server is configured: no wake-up otherwise), kept for an hour for the charts
 * of its page. CORRAL_WEBUI_SAMPLE_MS changes the minute (tests). 0 or a negative errno. */
int cr_webui_init(struct cr_webui *w, const struct cr_api_host *host);
/* Stops the sampler (its memory goes with its timer's close). */
void cr_webui_close(struct cr_webui *w);
/* Answers req when it is the UI's (GET /, /index.html; POST /action): true; false leaves it
 * to the caller. identity: the page's title ([supervisord] identifier). */
bool cr_webui_route(const struct cr_api_host *host, const struct cr_webui *w,
                    const char *identity, const struct cr_http_req *req,
                    struct cr_http_answer *a);

#endif
