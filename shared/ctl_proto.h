/* The control protocol: svctl (or any client) ↔ the supervisor's control socket.
 *
 * Version 1. A unix stream socket, root only. Text, one request per line, any number of
 * requests per connection, answered in order:
 *
 *   request   VERB [ARG ...]\n
 *             at most CR_CTL_LINE_MAX bytes with the newline; words are separated by spaces
 *             (tabs too) and are printable ASCII (0x21-0x7e), at most CR_CTL_ARGS_MAX of them.
 *             Anything else is refused with `error usage ...`; a line longer than the limit
 *             gets `error toolong ...` and the connection is closed.
 *   response  zero or more data lines, then exactly one terminator line:
 *               rec KEY=VALUE ...      a record; VALUE is %-encoded (cr_ctl_encode: %, =,
 *                                      space, controls and bytes >= 0x7f as %XX)
 *               line TEXT              a line of text (a log line, a config error)
 *               ok [TEXT]              success
 *               error CODE TEXT        failure; CODE is one word (enum cr_ctl_err)
 *             Clients must ignore data lines that start with a word they do not know, and
 *             record keys they do not know.
 *
 * Verbs (arguments in brackets are optional):
 *   hello 1                    rec proto=1 version=V pid=P
 *   status [NAME ...]          one rec per service (all when no NAME); `ok degraded: TEXT`
 *                              when the supervisor lacks guarantees where it runs (no
 *                              cgroups: TEXT says what is missing and why)
 *   start|stop|restart [wait=MS] NAME ...
 *                              one rec name=N state=S per service, after acting. With
 *                              wait=MS (added within version 1) the answer comes once each
 *                              service is RUNNING (start, restart: ready) or settled (stop),
 *                              or failed (BACKOFF, EXITED, FATAL, stopped meanwhile, a
 *                              dependency FATAL), or MS ran out (0: no bound): one
 *                              rec name=N state=S result=done|failed|timeout elapsed_ms=T
 *                              [exit=E runtime_ms=R reason=R why=W] per service, each made
 *                              when its result was decided, then `ok`, `error failed` (one
 *                              failed) or `error timeout`. Input sent meanwhile is ignored.
 *   signal SIG NAME ...        sends SIG to each service's init (which forwards it)
 *   logs NAME [N] [follow]     for each log file: rec file=PATH, then its last N (default
 *                              10) lines as `line`; without files, the last N (at most 20)
 *                              lines kept in memory; with follow, new lines (both streams)
 *                              keep coming, with `rec dropped=N` when a slow reader lost
 *                              some, until the client closes the connection
 *   reload                     rec name=N action=start|stop|restart|live|update|add|keep
 *                              keys=K,... per service (rec notice=TEXT for notices),
 *                              applied; `error config` with `line`s when the
 *                              configuration has errors (nothing changes)
 *   check                      the same plan, not applied
 *   history NAME               one rec per remembered exit, oldest first
 *   shutdown                   stops every service, then the supervisor exits
 *   rotate                     rotates every non-empty log file now, the supervisor's own
 *                              log included (as SIGUSR2 does): `ok rotated N files`
 *                              (added within version 1: an older supervisor answers
 *                              `error usage unknown command`)
 *   poweroff|reboot|halt       only when the supervisor is the machine's PID 1: stops every
 *                              service, then every process, unmounts, and powers off, reboots
 *                              or halts; `ok ...` first, or `error failed` when it is not
 *                              PID 1 (added within version 1, as rotate)
 *   net-connect NAME RUNPID NSPID ROOT NET ...
 *                              a `supervisor run` of cgroup root ROOT, which must be this
 *                              supervisor's (the peer, whose pid is RUNPID), asks it to
 *                              connect the network namespace of NSPID (the run itself, which
 *                              made it for its container, or its container's init, its
 *                              child; never the supervisor's own namespace) to the
 *                              networks NET, which must be this supervisor's: `ok ADDRESSES`
 *                              once connected, `error failed WHY` and nothing done otherwise
 *                              (the run then does it itself). The address and files are
 *                              NAME.run-RUNPID's, given back when RUNPID ends. Not an svctl
 *                              command (added within version 1, as rotate)
 *
 * A client that sends nothing, or trickles a line slower than CR_CTL_TIMEOUT_MS, or does not
 * read its responses, is disconnected; the supervisor never waits for one. */
#ifndef CORRAL_CTL_PROTO_H
#define CORRAL_CTL_PROTO_H

#include <stdbool.h>
#include <stddef.h>

#define CR_CTL_PROTO_VERSION 1
#define CR_CTL_LINE_MAX 1024            /* a request line, newline included */
#define CR_CTL_ARGS_MAX 64              /* words after the verb */
#define CR_CTL_TIMEOUT_MS 5000          /* to send a whole request line */
#define CR_CTL_RESP_LINE_MAX 16384      /* a response line a client must accept */

/* Where both ends look when told nothing: the supervisor's config file (its [supervisor]
 * control_socket names the socket) and the socket itself. */
#define CR_DEFAULT_CONFIG "/etc/corral/services.ini"
#define CR_CTL_DEFAULT_SOCKET "/run/corral/control.sock"

enum cr_ctl_verb {
    CR_CTL_HELLO, CR_CTL_STATUS, CR_CTL_START, CR_CTL_STOP, CR_CTL_RESTART, CR_CTL_SIGNAL,
    CR_CTL_LOGS, CR_CTL_RELOAD, CR_CTL_CHECK, CR_CTL_HISTORY, CR_CTL_SHUTDOWN, CR_CTL_ROTATE,
    CR_CTL_POWEROFF, CR_CTL_REBOOT, CR_CTL_HALT, CR_CTL_REEXEC, CR_CTL_NET_CONNECT,
    CR_CTL_NVERBS
};

/* Error codes on the wire (the word after `error`) and what svctl exits with. */
enum cr_ctl_err {
    CR_CTL_E_FAILED,     /* "failed"   the command could not be done        exit 1 */
    CR_CTL_E_USAGE,      /* "usage"    bad request                          exit 2 */
    CR_CTL_E_TOOLONG,    /* "toolong"  request line over CR_CTL_LINE_MAX    exit 2 */
    CR_CTL_E_NOSUCH,     /* "nosuch"   no such service                      exit 4 */
    CR_CTL_E_DENIED,     /* "denied"   the peer is not root                 exit 5 */
    CR_CTL_E_BUSY,       /* "busy"     shutting down, or too many clients   exit 1 */
    CR_CTL_E_CONFIG,     /* "config"   the configuration has errors         exit 6 */
    CR_CTL_E_VERSION,    /* "version"  protocol version not supported       exit 3 */
    CR_CTL_E_TIMEOUT,    /* "timeout"  a wait ran out of time               exit 7 */
    CR_CTL_NERRS
};

/* svctl's exit codes (documented in svctl(8)). */
enum {
    CR_CTL_EXIT_OK = 0, CR_CTL_EXIT_FAILED = 1, CR_CTL_EXIT_USAGE = 2, CR_CTL_EXIT_CONNECT = 3,
    CR_CTL_EXIT_NOSUCH = 4, CR_CTL_EXIT_DENIED = 5, CR_CTL_EXIT_CONFIG = 6,
    CR_CTL_EXIT_TIMEOUT = 7,
};

const char *cr_ctl_err_name(enum cr_ctl_err e);
int cr_ctl_err_parse(const char *word);          /* enum value, or -1 */
int cr_ctl_err_exit(int err);                    /* the svctl exit code for an error code */

struct cr_ctl_req {
    enum cr_ctl_verb verb;
    const char *name;            /* the verb as written */
    int argc;
    char *argv[CR_CTL_ARGS_MAX];
};

/* Parses one request line (without its newline; modified in place: words are cut with NUL;
 * line[len] must be writable). Returns 0, or a positive enum cr_ctl_err with *why set to a
 * static explanation. Never touches bytes outside line[0..len]. */
int cr_ctl_parse_request(char *line, size_t len, struct cr_ctl_req *req, const char **why);
const char *cr_ctl_verb_name(enum cr_ctl_verb v);
/* The verb called name, or -1. */
int cr_ctl_verb_find(const char *name);
/* svctl's commands are the verbs with a command-line form; *min and *max are the words a
 * command takes there (logs: NAME only, its N and follow come from options). False for a
 * verb svctl does not offer as a command (hello, rotate). */
bool cr_ctl_verb_cli(enum cr_ctl_verb v, int *min, int *max);

/* Cuts a byte stream into lines with a bounded buffer. Feed it whatever arrives; each whole
 * line (newline removed, NUL-terminated) goes to fn, which returns 0 to go on or non-zero to
 * stop (the rest stays buffered). A line longer than cap-1 bytes makes feed return -E2BIG;
 * the buffer is then reset. */
struct cr_ctl_lines {
    char *buf;
    size_t cap, len;
};
typedef int (*cr_ctl_line_fn)(void *arg, char *line, size_t len);
int cr_ctl_lines_feed(struct cr_ctl_lines *lb, const char *data, size_t n, cr_ctl_line_fn fn,
                      void *arg, size_t *used);

/* %-encodes src into dst (always NUL-terminated, truncated at a whole escape). Returns the
 * length written. */
size_t cr_ctl_encode(char *dst, size_t cap, const char *src, size_t n);
/* Decodes in place; returns the new length or -1 on a bad escape (left as it is). */
long cr_ctl_decode(char *s);

/* A parsed response line. Pointers point into the (modified) line. */
enum cr_ctl_kind { CR_CTL_R_REC, CR_CTL_R_LINE, CR_CTL_R_OK, CR_CTL_R_ERROR, CR_CTL_R_OTHER };
#define CR_CTL_KV_MAX 48
struct cr_ctl_resp {
    enum cr_ctl_kind kind;
    const char *text;            /* LINE: the text; OK/ERROR: the message ("" if none) */
    int err;                     /* ERROR: enum cr_ctl_err, or -1 when unknown */
    int nkv;
    struct { const char *key, *value; } kv[CR_CTL_KV_MAX];
};
/* Parses one response line (without its newline). Returns 0, or -1 for a garbled line. */
int cr_ctl_parse_response(char *line, struct cr_ctl_resp *r);
const char *cr_ctl_get(const struct cr_ctl_resp *r, const char *key);

#endif
