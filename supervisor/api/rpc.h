/* supervisord's XML-RPC API at /RPC2, for supervisorctl and its other clients: served by
 * api/http.c on a unix socket ([unix_http_server] file, chmod, chown) and/or TCP
 * ([inet_http_server] port), each with HTTP basic authentication when the section sets
 * username and password (plain text, or {SHA}hex as supervisord takes it).
 *
 * The supervisor.* methods supervisorctl calls (rpc.c lists them) with supervisord's answers
 * and fault codes; system.listMethods and system.multicall. startProcess and stopProcess
 * (and their group and all forms) with wait=true answer once the process is RUNNING (or
 * failed) or stopped: the HTTP answer waits, the loop does not. Inside system.multicall every
 * call answers at once. A process's pid is its container's init, on the host. Requests are
 * bounded: CR_RPC_BODY_MAX bytes (more: HTTP 413), and xmlrpc.h's limits on the XML. */
#ifndef CORRAL_RPC_H
#define CORRAL_RPC_H

#include <stddef.h>

#include "api/host.h"
#include "config/config.h"

#define CR_RPC_BODY_MAX (1024 * 1024)
#define CR_RPC_READ_MAX (1024 * 1024)   /* bytes of a log one read answers at most */

struct cr_rpc;

/* Opens the servers g asks for ([unix_http_server], [inet_http_server]); *out stays NULL
 * when it asks for none. On error (err filled) the servers opened so far are closed. */
int cr_rpc_open(const struct cr_api_host *host, const struct cr_global *g, struct cr_rpc **out,
                char *err, size_t errlen);
/* A service changed: answers the start and stop calls that waited for it. */
void cr_rpc_changed(struct cr_rpc *r);
void cr_rpc_close(struct cr_rpc *r);

#endif
