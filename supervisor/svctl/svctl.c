/* svctl: the supervisor's command-line client. It speaks the control protocol
 * (shared/ctl_proto.h) over the control socket and turns the records into tables, or JSON
 * with --json. Exit codes are stable (svctl(8)):
 *   0 ok, 1 the command failed, 2 usage error, 3 cannot connect (or the connection broke),
 *   4 no such service, 5 permission denied (not root), 6 the configuration has errors,
 *   7 start/stop/restart ran out of --timeout. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <getopt.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctl_proto.h"
#include "ini_reader.h"
#include "text.h"
#include "units.h"

#define DEFAULT_CONFIG CR_DEFAULT_CONFIG
#define DEFAULT_SOCKET CR_CTL_DEFAULT_SOCKET
#define CONFIG_MAX (16 << 20)    /* a config file read for its control_socket */
#define READ_MAX (64 * 1024)

static bool json;
static const char *prog = "svctl";

static void usage(FILE *out)
{
    fprintf(out,
            "usage: svctl [-c FILE | -s SOCKET] [--json] COMMAND [ARGS]\n"
            "\n"
            "commands:\n"
            "  status [NAME...]        state, pid, uptime, restarts, last exit, resources\n"
            "  start NAME...           start services; waits until each is RUNNING (ready)\n"
            "  stop NAME...            stop services; waits until each is down\n"
            "  restart NAME...         stop (if running), then start; waits as start does\n"
            "  signal SIG NAME...      send SIG to each service (through its init)\n"
            "  logs [-f] [-n N] NAME   the last N lines (default 10); -f: keep following\n"
            "  logs --rotate           rotate every log file now, the supervisor's own too\n"
            "                          (as SIGUSR2 does)\n"
            "  reload                  re-read the configuration and apply it; prints the plan\n"
            "  check                   the plan a reload would apply, without applying it\n"
            "  history NAME            the service's last exits and what it logged before\n"
            "  shutdown                stop every service; the supervisor exits\n"
            "  reexec [PATH]           replace the supervisor's program with PATH (default:\n"
            "                          its own) in place; running containers are kept\n"
            "  poweroff|reboot|halt    (supervisor as the machine's PID 1) stop every service\n"
            "                          and process, unmount, then power off, reboot or halt\n"
            "\n"
            "options:\n"
            "  -c, --config FILE       read control_socket from FILE's [supervisor] section\n"
            "                          (default " DEFAULT_CONFIG " when it exists)\n"
            "  -s, --socket PATH       the control socket (default " DEFAULT_SOCKET ")\n"
            "  -j, --json              machine-readable output (status, start, stop, restart,\n"
            "                          logs, reload, check, history)\n"
            "      --no-block          start, stop, restart: return at once, not waiting\n"
            "      --timeout T         start, stop, restart: wait at most T (e.g. 30s, 500ms;\n"
            "                          default: no bound)\n"
            "  -h, --help, -V, --version\n"
            "\n"
            "exit status: 0 ok, 1 command failed (a start or stop failed), 2 usage, 3 cannot\n"
            "             connect, 4 no such service, 5 permission denied, 6 configuration\n"
            "             errors, 7 --timeout ran out\n");
}

static void die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void die(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(code);
}

/* ---- the socket path from a config file ---------------------------------------------------- */

/* The value as the supervisor reads it: %(here)s is the config file's directory, %% a '%',
 * and a relative path is relative to that directory. Takes and returns malloc'd strings. */
static char *expand_here(char *v, const char *cfgpath)
{
    char real[PATH_MAX], here[PATH_MAX];
    snprintf(here, sizeof here, "%s", realpath(cfgpath, real) ? real : cfgpath);
    char *slash = strrchr(here, '/');
    if (slash)
        *(slash == here ? slash + 1 : slash) = 0;
    else
        snprintf(here, sizeof here, ".");
    size_t cap = strlen(v) * 2 + strlen(here) * 4 + 8, n = 0;
    char *out = malloc(cap + PATH_MAX);
    if (!out)
        die(CR_CTL_EXIT_FAILED, "out of memory");
    if (v[0] != '/' && strncmp(v, "%(here)s", 8))
        n += (size_t)snprintf(out, cap, "%s/", here);
    for (const char *p = v; *p && n < cap; ) {
        if (!strncmp(p, "%(here)s", 8)) {
            n += (size_t)snprintf(out + n, cap - n, "%s", here);
            p += 8;
        } else if (!strncmp(p, "%%", 2)) {
            out[n++] = '%';
            p += 2;
        } else {
            out[n++] = *p++;
        }
    }
    out[n < cap ? n : cap - 1] = 0;
    free(v);
    return out;
}

/* control_socket from FILE's [supervisor] section (read as the supervisor reads it,
 * shared/ini_reader.h; its other keys and any errors are the supervisor's business); NULL when
 * not set there. */
struct sock_search {
    bool in_sup;
    char *found;
};

static void sock_section(struct cr_ini *ini, const char *name)
{
    struct sock_search *q = ini->user;
    q->in_sup = name && !strcasecmp(name, "supervisor");
}

static void sock_value(struct cr_ini *ini, const char *key, const char *value)
{
    struct sock_search *q = ini->user;
    if (!q->in_sup || strcasecmp(key, "control_socket"))
        return;
    free(q->found);
    q->found = strdup(value);
    if (!q->found)
        die(CR_CTL_EXIT_FAILED, "out of memory");
}

static char *socket_from_config(const char *path, bool must_exist)
{
    struct cr_errlist errors = {0};
    char *buf;
    size_t len;
    int r = cr_ini_load(path, CONFIG_MAX, &buf, &len, &errors);
    cr_errlist_free(&errors);
    if (r < 0) {
        if (must_exist)
            die(CR_CTL_EXIT_USAGE, "%s: %s", path, strerror(-r));
        return NULL;
    }
    struct sock_search q = {0};
    struct cr_ini ini = {
        .file = path, .buf = buf, .len = len, .on_section = sock_section,
        .on_value = sock_value, .errors = &errors, .user = &q,
    };
    r = cr_ini_parse(&ini);
    cr_errlist_free(&errors);
    free(buf);
    if (r < 0)
        die(CR_CTL_EXIT_FAILED, "out of memory");
    return q.found ? expand_here(q.found, path) : NULL;
}

/* ---- the connection ------------------------------------------------------------------------ */

struct conn {
    int fd;
    char *buf;
    size_t len, off;
};

static int conn_open(struct conn *c, const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t pl = strlen(path);
    if (pl >= sizeof sa.sun_path)
        die(CR_CTL_EXIT_USAGE, "%s: socket path too long", path);
    memcpy(sa.sun_path, path, pl + 1);
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        die(CR_CTL_EXIT_CONNECT, "socket: %s", strerror(errno));
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        int e = errno;
        if (e == EACCES || e == EPERM)
            die(CR_CTL_EXIT_DENIED, "%s: %s (svctl needs root)", path, strerror(e));
        die(CR_CTL_EXIT_CONNECT, "cannot connect to %s: %s (is the supervisor running?)", path,
            strerror(e));
    }
    c->buf = malloc(READ_MAX);
    if (!c->buf)
        die(CR_CTL_EXIT_FAILED, "out of memory");
    c->len = c->off = 0;
    return 0;
}

static void conn_timeout(struct conn *c, int secs)
{
    struct timeval tv = {secs, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

static void conn_send(struct conn *c, const char *line)
{
    size_t n = strlen(line);
    while (n) {
        ssize_t w = send(c->fd, line, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        /* A supervisor that refuses us (denied, busy) answers and closes at once, maybe
         * before our line is sent: its answer is still there to read. */
        if (w < 0 && (errno == EPIPE || errno == ECONNRESET))
            return;
        if (w <= 0)
            die(CR_CTL_EXIT_CONNECT, "sending the request: %s", strerror(errno));
        line += w;
        n -= (size_t)w;
    }
}

/* The next response line (NUL-terminated, without its newline); a line longer than the buffer
 * is cut. NULL on EOF. */
static char *conn_line(struct conn *c)
{
    for (;;) {
        char *nl = memchr(c->buf + c->off, '\n', c->len - c->off);
        if (nl) {
            *nl = 0;
            char *line = c->buf + c->off;
            c->off = (size_t)(nl - c->buf) + 1;
            return line;
        }
        if (c->off) {
            memmove(c->buf, c->buf + c->off, c->len - c->off);
            c->len -= c->off;
            c->off = 0;
        }
        if (c->len == READ_MAX - 1) {   /* an over-long line: deliver what we have */
            c->buf[c->len] = 0;
            c->len = 0;
            return c->buf;
        }
        ssize_t r = recv(c->fd, c->buf + c->len, READ_MAX - 1 - c->len, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            die(CR_CTL_EXIT_CONNECT, "no answer from the supervisor");
        if (r <= 0)
            return NULL;
        c->len += (size_t)r;
    }
}

/* A whole response: its lines (copies), and how it ended. */
struct reply {
    char **lines;                /* data lines as received */
    size_t n, cap;
    bool ok;
    int err;                     /* enum cr_ctl_err, or -1 */
    char *text;                  /* the terminator's text */
};

static void reply_add(struct reply *r, const char *line)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 32;
        r->lines = realloc(r->lines, r->cap * sizeof *r->lines);
        if (!r->lines)
            die(CR_CTL_EXIT_FAILED, "out of memory");
    }
    r->lines[r->n] = strdup(line);
    if (!r->lines[r->n])
        die(CR_CTL_EXIT_FAILED, "out of memory");
    r->n++;
}

/* Reads up to the terminator. fn, when given, sees each data line as it comes (then it is not
 * kept). */
static void read_reply(struct conn *c, struct reply *r, void (*fn)(char *line))
{
    memset(r, 0, sizeof *r);
    r->err = -1;
    for (;;) {
        char *line = conn_line(c);
        if (!line)
            die(CR_CTL_EXIT_CONNECT, "the supervisor closed the connection");
        char copy[256];
        snprintf(copy, sizeof copy, "%s", line);
        struct cr_ctl_resp p;
        if (!strncmp(line, "ok", 2) && (line[2] == ' ' || !line[2])) {
            cr_ctl_parse_response(copy, &p);
            r->ok = true;
            r->text = strdup(p.text);
            return;
        }
        if (!strncmp(line, "error ", 6)) {
            char *full = strdup(line);
            if (!full || cr_ctl_parse_response(full, &p) < 0)
                die(CR_CTL_EXIT_CONNECT, "garbled answer: %s", line);
            r->err = p.err;
            r->text = strdup(p.text);
            free(full);
            return;
        }
        if (fn)
            fn(line);
        else
            reply_add(r, line);
    }
}

static void reply_free(struct reply *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->lines[i]);
    free(r->lines);
    free(r->text);
    memset(r, 0, sizeof *r);
}

static int reply_exit(const struct reply *r)
{
    if (r->ok)
        return CR_CTL_EXIT_OK;
    fprintf(stderr, "%s: %s\n", prog, r->text && *r->text ? r->text : "failed");
    return cr_ctl_err_exit(r->err);
}

/* A supervisor that re-executes itself (svctl reexec) drops the connections it had accepted
 * and not answered yet, while its listening socket lives on into the next program, which
 * answers. So a connection that ends before the first byte of an answer is made again, for
 * up to RETRY_MS: such a request was never read (an answered one has its answer on the way,
 * and a supervisor that is gone refuses the next connect). */
#define RETRY_MS 5000

static bool closed_unanswered(struct conn *c)
{
    if (c->off < c->len)
        return false;   /* an answer is here already */
    char b;
    for (;;) {
        ssize_t r = recv(c->fd, &b, 1, MSG_PEEK);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            die(CR_CTL_EXIT_CONNECT, "no answer from the supervisor");
        return r == 0 || (r < 0 && errno == ECONNRESET);
    }
}

static void conn_close(struct conn *c)
{
    close(c->fd);
    free(c->buf);
    c->fd = -1;
    c->buf = NULL;
}

static long long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Connects, says hello, sends the request; the caller reads the reply. */
static void request(struct conn *c, const char *sock, int argc, char **argv, int timeout)
{
    char line[CR_CTL_LINE_MAX];
    size_t len = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!*a)
            die(CR_CTL_EXIT_USAGE, "empty argument");
        for (const char *p = a; *p; p++)
            if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e)
                die(CR_CTL_EXIT_USAGE, "'%s': only printable ASCII without spaces", a);
        size_t al = strlen(a);
        if (len + al + 2 > sizeof line)
            die(CR_CTL_EXIT_USAGE, "request too long");
        if (i)
            line[len++] = ' ';
        memcpy(line + len, a, al);
        len += al;
    }
    line[len++] = '\n';
    line[len] = 0;
    long long until = now_ms() + RETRY_MS;
    for (;;) {
        conn_open(c, sock);
        if (timeout)
            conn_timeout(c, timeout);
        char hello[32];
        snprintf(hello, sizeof hello, "hello %d\n", CR_CTL_PROTO_VERSION);
        conn_send(c, hello);
        bool retry = closed_unanswered(c);
        if (!retry) {
            struct reply r;
            read_reply(c, &r, NULL);
            if (!r.ok)
                exit(reply_exit(&r));
            reply_free(&r);
            conn_send(c, line);
            retry = closed_unanswered(c);
        }
        if (!retry || now_ms() >= until)
            return;   /* read_reply says it when the connection is closed */
        conn_close(c);
        nanosleep(&(struct timespec){0, 20 * 1000000L}, NULL);
    }
}

/* ---- output helpers -------------------------------------------------------------------------- */

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", f);
        else if (*p == '\t')
            fputs("\\t", f);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static bool is_int(const char *s)
{
    const char *p = s + (*s == '-');
    if (!*p || strlen(p) > 18 || (p[0] == '0' && p[1]))
        return false;
    for (; *p; p++)
        if (!isdigit((unsigned char)*p))
            return false;
    return true;
}

/* Keys whose values are always strings, even when they look like numbers. */
static bool string_key(const char *k)
{
    static const char *const keys[] = {"name", "state", "exit", "last_exit", "summary", "reason",
                                       "file", "keys", "action", "notice", "signal",
                                       "last_signal", "version", NULL};
    for (int i = 0; keys[i]; i++)
        if (!strcmp(k, keys[i]))
            return true;
    return false;
}

static void json_rec(FILE *f, const struct cr_ctl_resp *p)
{
    fputc('{', f);
    for (int i = 0; i < p->nkv; i++) {
        if (i)
            fputs(", ", f);
        json_str(f, p->kv[i].key);
        fputs(": ", f);
        const char *v = p->kv[i].value;
        if (!strcmp(p->kv[i].key, "lines")) {
            /* The last lines it logged: an array. */
            fputc('[', f);
            char *copy = strdup(v), *save = NULL;
            bool first = true;
            for (char *l = copy ? strtok_r(copy, "\n", &save) : NULL; l;
                 l = strtok_r(NULL, "\n", &save)) {
                if (!first)
                    fputs(", ", f);
                first = false;
                json_str(f, l);
            }
            free(copy);
            fputc(']', f);
        } else if (!string_key(p->kv[i].key) && is_int(v)) {
            fputs(v, f);
        } else {
            json_str(f, v);
        }
    }
    fputc('}', f);
}

static const char *human_bytes(const char *v, char *buf, size_t len)
{
    if (!v)
        return "-";
    double b = (double)strtoll(v, NULL, 10);
    const char *u = "BKMGT";
    while (b >= 1024 && u[1]) {
        b /= 1024;
        u++;
    }
    if (*u == 'B')
        snprintf(buf, len, "%.0fB", b);
    else
        snprintf(buf, len, b < 10 ? "%.1f%c" : "%.0f%c", b, *u);
    return buf;
}

static const char *human_ms(const char *v, char *buf, size_t len)
{
    if (!v)
        return "-";
    long long ms = strtoll(v, NULL, 10);
    if (ms < 0)
        return "-";
    long long s = ms / 1000;
    if (ms < 10000)
        snprintf(buf, len, "%.1fs", (double)ms / 1000);
    else if (s < 3600)
        snprintf(buf, len, "%lldm%02llds", s / 60, s % 60);
    else if (s < 86400)
        snprintf(buf, len, "%lldh%02lldm", s / 3600, s % 3600 / 60);
    else
        snprintf(buf, len, "%lldd%02lldh", s / 86400, s % 86400 / 3600);
    return buf;
}

static const char *human_cpu(const char *v, char *buf, size_t len)
{
    if (!v)
        return "-";
    long long us = strtoll(v, NULL, 10);
    char ms[32];
    snprintf(ms, sizeof ms, "%lld", us / 1000);
    return human_ms(ms, buf, len);
}

static const char *or_dash(const char *v)
{
    return v && *v ? v : "-";
}

/* Text output: every value a container could have written (STATUS=, failure reasons, the
 * lines before an exit) with its control bytes as \xHH (shared/text.h), so none reaches the
 * terminal raw; "lines" keeps its newlines, which separate the lines. The escaped values live
 * in one arena, valid until the next parse (each command holds one parsed line at a time). */
static void escape_resp(struct cr_ctl_resp *p)
{
    static char arena[4 * READ_MAX + CR_CTL_KV_MAX + 8];
    size_t used = 0;
    if (p->text && cr_text_needs_escape(p->text, false)) {
        used += cr_text_escape(arena, sizeof arena, p->text, false) + 1;
        p->text = arena;
    }
    for (int i = 0; i < p->nkv; i++) {
        bool keep_nl = !strcmp(p->kv[i].key, "lines");
        if (!cr_text_needs_escape(p->kv[i].value, keep_nl))
            continue;
        char *dst = arena + used;
        used += cr_text_escape(dst, sizeof arena - used, p->kv[i].value, keep_nl) + 1;
        p->kv[i].value = dst;
    }
}

/* Text output of a summary or message line: escaped as the values are. */
static void print_text_line(const char *text)
{
    static char buf[4 * READ_MAX];
    cr_text_escape(buf, sizeof buf, text, false);
    printf("%s\n", buf);
}

/* Parses a copy of a kept line (parsing cuts the line up; a reply's lines are parsed more
 * than once). The copy lives in a buffer owned by the caller. */
static int parse_copy(const char *line, struct cr_ctl_resp *p, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", line);
    int r = cr_ctl_parse_response(buf, p);
    if (r == 0 && !json)
        escape_resp(p);
    return r;
}
#define PARSE(line, p) parse_copy((line), (p), pbuf, sizeof pbuf)

/* ---- commands ------------------------------------------------------------------------------ */

#define NCOLS 10
static int cmd_status(const struct reply *r)
{
    static char pbuf[READ_MAX];
    int rc = reply_exit(r);
    if (rc)
        return rc;
    if (json) {
        fputc('[', stdout);
        for (size_t i = 0; i < r->n; i++) {
            struct cr_ctl_resp p;
            if (PARSE(r->lines[i], &p) < 0 || p.kind != CR_CTL_R_REC)
                continue;
            fputs(i ? ",\n " : "", stdout);
            json_rec(stdout, &p);
        }
        fputs("]\n", stdout);
        return 0;
    }
    static const char *const head[NCOLS] = {"NAME", "STATE", "PID", "UPTIME", "RESTARTS",
                                            "LAST EXIT", "NEXT", "MEM", "CPU", "PIDS"};
    size_t n = r->n;
    char (*cells)[NCOLS][64] = calloc(n + 1, sizeof *cells);
    char **notes = calloc(n + 1, sizeof *notes);
    if (!cells || !notes)
        die(CR_CTL_EXIT_FAILED, "out of memory");
    int w[NCOLS];
    for (int k = 0; k < NCOLS; k++)
        w[k] = (int)strlen(head[k]);
    size_t rows = 0;
    for (size_t i = 0; i < n; i++) {
        struct cr_ctl_resp p;
        if (PARSE(r->lines[i], &p) < 0 || p.kind != CR_CTL_R_REC)
            continue;
        char t[64];
        char (*row)[64] = cells[rows];
        const char *last = cr_ctl_get(&p, "last_exit");
        const char *lrun = cr_ctl_get(&p, "last_runtime_ms");
        snprintf(row[0], 64, "%s", or_dash(cr_ctl_get(&p, "name")));
        const char *hl = cr_ctl_get(&p, "healthy");
        snprintf(row[1], 64, "%s%s", or_dash(cr_ctl_get(&p, "state")),
                 !hl ? "" : strcmp(hl, "1") ? " (unhealthy)" : " (healthy)");
        snprintf(row[2], 64, "%s", or_dash(cr_ctl_get(&p, "pid")));
        snprintf(row[3], 64, "%s", human_ms(cr_ctl_get(&p, "uptime_ms"), t, sizeof t));
        snprintf(row[4], 64, "%s", or_dash(cr_ctl_get(&p, "restarts")));
        if (last)
            snprintf(row[5], 64, "%s after %s", last, human_ms(lrun, t, sizeof t));
        else
            snprintf(row[5], 64, "-");
        const char *next = cr_ctl_get(&p, "next_try_ms");
        if (next)
            snprintf(row[6], 64, "in %s", human_ms(next, t, sizeof t));
        else
            snprintf(row[6], 64, "-");
        snprintf(row[7], 64, "%s", human_bytes(cr_ctl_get(&p, "mem"), t, sizeof t));
        snprintf(row[8], 64, "%s", human_cpu(cr_ctl_get(&p, "cpu_us"), t, sizeof t));
        snprintf(row[9], 64, "%s", or_dash(cr_ctl_get(&p, "pids")));
        /* One line of notes under the row: the crash-loop summary, a setup failure, what a
         * pending start waits for, the service's own STATUS=, dropped log lines. */
        const char *sum = cr_ctl_get(&p, "summary"), *why = cr_ctl_get(&p, "reason");
        const char *wait = cr_ctl_get(&p, "why"), *st = cr_ctl_get(&p, "status");
        const char *drop = cr_ctl_get(&p, "log_dropped"), *addr = cr_ctl_get(&p, "addr");
        char note[1024];
        size_t nl = 0;
#define NOTE(...) (nl += (size_t)snprintf(note + nl, nl < sizeof note ? sizeof note - nl : 0, \
                                          "%s", nl ? "; " : ""), \
                   nl += (size_t)snprintf(note + nl, nl < sizeof note ? sizeof note - nl : 0, \
                                          __VA_ARGS__))
        if (sum)
            NOTE("%s", sum);
        if (why)
            NOTE("setup failed: %s", why);
        if (wait)
            NOTE("%s", wait);
        if (st)
            NOTE("status: %s", st);
        if (drop)
            NOTE("%s log lines dropped (log files could not take them)", drop);
        if (addr && *addr)
            NOTE("address %s", addr);
#undef NOTE
        if (nl)
            notes[rows] = strdup(note);
        for (int k = 0; k < NCOLS; k++)
            if ((int)strlen(row[k]) > w[k])
                w[k] = (int)strlen(row[k]);
        rows++;
    }
    for (int k = 0; k < NCOLS; k++)
        printf("%-*s%s", k == NCOLS - 1 ? 0 : w[k], head[k], k == NCOLS - 1 ? "\n" : "  ");
    for (size_t i = 0; i < rows; i++) {
        for (int k = 0; k < NCOLS; k++)
            printf("%-*s%s", k == NCOLS - 1 ? 0 : w[k], cells[i][k], k == NCOLS - 1 ? "\n" : "  ");
        if (notes[i])
            printf("  %s: %s\n", cells[i][0], notes[i]);
        free(notes[i]);
    }
    free(cells);
    free(notes);
    if (r->text && *r->text)
        print_text_line(r->text);   /* what the supervisor cannot guarantee here */
    return 0;
}

/* start, stop, restart, signal: "NAME: STATE" or "NAME: RESULT" per service. */
static int cmd_act(const struct reply *r)
{
    static char pbuf[READ_MAX];
    for (size_t i = 0; i < r->n; i++) {
        struct cr_ctl_resp p;
        if (PARSE(r->lines[i], &p) < 0 || p.kind != CR_CTL_R_REC)
            continue;
        const char *v = cr_ctl_get(&p, "state"), *res = cr_ctl_get(&p, "result");
        if (!v)
            v = res;
        if (json) {
            json_rec(stdout, &p);
            fputc('\n', stdout);
        } else if (cr_ctl_get(&p, "state") && res && strcmp(res, "done")) {
            /* A waited start or stop that failed or ran out of time: what it came to. */
            char t[32], rt[32];
            const char *ex = cr_ctl_get(&p, "exit"), *why = cr_ctl_get(&p, "reason");
            const char *wait = cr_ctl_get(&p, "why");
            printf("%s: %s %s after %s", or_dash(cr_ctl_get(&p, "name")),
                   strcmp(res, "timeout") ? "failed:" : "timed out:", v,
                   human_ms(cr_ctl_get(&p, "elapsed_ms"), t, sizeof t));
            if (ex)
                printf("; last exit: %s after %s", ex,
                       human_ms(cr_ctl_get(&p, "runtime_ms"), rt, sizeof rt));
            if (why)
                printf("; setup failed: %s", why);
            if (wait)
                printf("; %s", wait);
            putchar('\n');
        } else {
            printf("%s: %s\n", or_dash(cr_ctl_get(&p, "name")), or_dash(v));
        }
    }
    return reply_exit(r);
}

static void print_log_line(char *line)
{
    struct cr_ctl_resp p;
    if (cr_ctl_parse_response(line, &p) < 0)
        return;
    if (p.kind == CR_CTL_R_LINE) {
        if (json) {
            json_str(stdout, p.text);
            fputc('\n', stdout);
        } else {
            puts(p.text);
        }
    } else if (p.kind == CR_CTL_R_REC) {
        const char *file = cr_ctl_get(&p, "file"), *dropped = cr_ctl_get(&p, "dropped");
        if (json) {
            json_rec(stdout, &p);
            fputc('\n', stdout);
        } else if (file) {
            printf("==> %s <==\n", file);
        } else if (dropped) {
            fprintf(stderr, "%s: %s lines dropped (svctl reads too slowly)\n", prog, dropped);
        }
    }
    fflush(stdout);
}

static int cmd_logs(const struct reply *r)
{
    return reply_exit(r);
}

static int cmd_plan(const struct reply *r, bool apply)
{
    static char pbuf[READ_MAX];
    size_t counts[8] = {0};
    static const char *const order[] = {"start", "stop", "restart", "live", "update", "add",
                                        "keep"};
    if (json) {
        printf("{\"applied\": %s, \"ok\": %s, \"plan\": [", r->ok && apply ? "true" : "false",
               r->ok ? "true" : "false");
        bool first = true;
        for (size_t i = 0; i < r->n; i++) {
            struct cr_ctl_resp p;
            if (PARSE(r->lines[i], &p) < 0 || p.kind != CR_CTL_R_REC ||
                !cr_ctl_get(&p, "action"))
                continue;
            fputs(first ? "" : ", ", stdout);
            first = false;
            json_rec(stdout, &p);
        }
        fputs("], \"notices\": [", stdout);
        first = true;
        for (size_t i = 0; i < r->n; i++) {
            struct cr_ctl_resp p;
            if (PARSE(r->lines[i], &p) < 0 || p.kind != CR_CTL_R_REC ||
                !cr_ctl_get(&p, "notice"))
                continue;
            fputs(first ? "" : ", ", stdout);
            first = false;
            json_str(stdout, cr_ctl_get(&p, "notice"));
        }
        fputs("], \"errors\": [", stdout);
        first = true;
        for (size_t i = 0; i < r->n; i++) {
            struct cr_ctl_resp p;
            if (PARSE(r->lines[i], &p) < 0 || p.kind != CR_CTL_R_LINE)
                continue;
            fputs(first ? "" : ", ", stdout);
            first = false;
            json_str(stdout, p.text);
        }
        fputs("]}\n", stdout);
        return r->ok ? 0 : cr_ctl_err_exit(r->err);
    }
    for (size_t i = 0; i < r->n; i++) {
        struct cr_ctl_resp p;
        if (PARSE(r->lines[i], &p) < 0)
            continue;
        if (p.kind == CR_CTL_R_LINE) {
            fprintf(stderr, "%s\n", p.text);
            continue;
        }
        if (p.kind != CR_CTL_R_REC)
            continue;
        const char *notice = cr_ctl_get(&p, "notice");
        if (notice) {
            fprintf(stderr, "notice: %s\n", notice);
            continue;
        }
        const char *a = cr_ctl_get(&p, "action"), *keys = cr_ctl_get(&p, "keys");
        if (!a)
            continue;
        for (size_t k = 0; k < sizeof order / sizeof order[0]; k++)
            if (!strcmp(a, order[k]))
                counts[k]++;
        if (!strcmp(a, "keep"))
            continue;
        printf("%-8s %s%s%s%s\n", a, or_dash(cr_ctl_get(&p, "name")), keys ? " (" : "",
               keys ? keys : "", keys ? ")" : "");
    }
    if (!r->ok)
        return reply_exit(r);
    printf("%s: %zu to start, %zu to stop, %zu to restart, %zu changed live, %zu updated, "
           "%zu added stopped, %zu unchanged\n",
           apply ? "applied" : "plan (not applied)", counts[0], counts[1], counts[2], counts[3],
           counts[4], counts[5], counts[6]);
    return 0;
}

static int cmd_history(const struct reply *r)
{
    static char pbuf[READ_MAX];
    int rc = reply_exit(r);
    if (rc)
        return rc;
    if (json) {
        fputs("{\"exits\": [", stdout);
        bool first = true;
        for (size_t i = 0; i < r->n; i++) {
            struct cr_ctl_resp p;
            if (PARSE(r->lines[i], &p) < 0 || p.kind != CR_CTL_R_REC)
                continue;
            fputs(first ? "" : ",\n ", stdout);
            first = false;
            json_rec(stdout, &p);
        }
        fputs("], \"summary\": ", stdout);
        json_str(stdout, r->text ? r->text : "");
        fputs("}\n", stdout);
        return 0;
    }
    if (!r->n)
        printf("no exits recorded\n");
    for (size_t i = 0; i < r->n; i++) {
        struct cr_ctl_resp p;
        if (PARSE(r->lines[i], &p) < 0 || p.kind != CR_CTL_R_REC)
            continue;
        char when[64] = "?", t[32], m[32];
        const char *tm = cr_ctl_get(&p, "time_ms");
        if (tm) {
            time_t s = (time_t)(strtoll(tm, NULL, 10) / 1000);
            struct tm lt;
            localtime_r(&s, &lt);
            strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &lt);
        }
        const char *peak = cr_ctl_get(&p, "mem_peak");
        printf("%s  %-22s after %-8s%s%s%s%s\n", when, or_dash(cr_ctl_get(&p, "exit")),
               human_ms(cr_ctl_get(&p, "runtime_ms"), t, sizeof t), peak ? "  peak " : "",
               peak ? human_bytes(peak, m, sizeof m) : "",
               strcmp(or_dash(cr_ctl_get(&p, "stopped")), "1") ? "" : "  (stop requested)",
               strcmp(or_dash(cr_ctl_get(&p, "container")), "1") ? "" : "  (container)");
        const char *why = cr_ctl_get(&p, "reason");
        if (why)
            printf("    reason: %s\n", why);
        const char *lines = cr_ctl_get(&p, "lines");
        if (lines) {
            char *copy = strdup(lines), *save = NULL;
            for (char *l = copy ? strtok_r(copy, "\n", &save) : NULL; l;
                 l = strtok_r(NULL, "\n", &save))
                printf("    | %s\n", l);
            free(copy);
        }
    }
    if (r->text && *r->text)
        print_text_line(r->text);
    return 0;
}

static int cmd_simple(const struct reply *r)
{
    if (r->ok && r->text && *r->text && !json)
        print_text_line(r->text);
    return reply_exit(r);
}

/* ---- main ---------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'}, {"socket", required_argument, NULL, 's'},
        {"json", no_argument, NULL, 'j'},         {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},      {"no-block", no_argument, NULL, 'B'},
        {"timeout", required_argument, NULL, 'T'}, {NULL, 0, NULL, 0},
    };
    const char *config = NULL, *sock = NULL, *timeout = NULL;
    bool no_block = false;
    int o;
    while ((o = getopt_long(argc, argv, "+c:s:jhV", longopts, NULL)) != -1) {
        switch (o) {
        case 'c': config = optarg; break;
        case 's': sock = optarg; break;
        case 'j': json = true; break;
        case 'B': no_block = true; break;
        case 'T': timeout = optarg; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("svctl (corral) %s\n", CORRAL_VERSION); return 0;
        default: usage(stderr); return CR_CTL_EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return CR_CTL_EXIT_USAGE;
    }
    if (config && sock)
        die(CR_CTL_EXIT_USAGE, "-c and -s exclude each other");
    static char *from_cfg;   /* static: reachable on every early exit */
    if (!sock) {
        from_cfg = socket_from_config(config ? config : DEFAULT_CONFIG, config != NULL);
        sock = from_cfg ? from_cfg : DEFAULT_SOCKET;
    }

    const char *cmd = argv[optind];
    /* The command's own words, with --json (anywhere) and logs' -f/-n taken out. */
    char *words[CR_CTL_ARGS_MAX + 4];
    int nw = 0;
    bool follow = false, rotate = false;
    const char *nlines = NULL;
    for (int i = optind; i < argc; i++) {
        const char *a = argv[i];
        if (i > optind && (!strcmp(a, "--json") || !strcmp(a, "-j"))) {
            json = true;
            continue;
        }
        if (i > optind && !strcmp(cmd, "logs")) {
            if (!strcmp(a, "-f") || !strcmp(a, "--follow")) {
                follow = true;
                continue;
            }
            if (!strcmp(a, "--rotate")) {
                rotate = true;
                continue;
            }
            if (!strcmp(a, "-n") || !strcmp(a, "--lines")) {
                if (i + 1 >= argc)
                    die(CR_CTL_EXIT_USAGE, "logs: -n needs a number");
                nlines = argv[++i];
                continue;
            }
            if (!strncmp(a, "-n", 2) && isdigit((unsigned char)a[2])) {
                nlines = a + 2;
                continue;
            }
        }
        bool acts = !strcmp(cmd, "start") || !strcmp(cmd, "stop") || !strcmp(cmd, "restart");
        if (i > optind && acts && !strcmp(a, "--no-block")) {
            no_block = true;
            continue;
        }
        if (i > optind && acts && (!strcmp(a, "--timeout") || !strncmp(a, "--timeout=", 10))) {
            if (a[9] == '=')
                timeout = a + 10;
            else if (i + 1 < argc)
                timeout = argv[++i];
            else
                die(CR_CTL_EXIT_USAGE, "%s: --timeout needs a duration", cmd);
            continue;
        }
        if (i > optind && a[0] == '-' && a[1] && !(!strcmp(cmd, "signal") && i == optind + 1))
            die(CR_CTL_EXIT_USAGE, "%s: unknown option '%s'", cmd, a);
        if (nw >= CR_CTL_ARGS_MAX + 1)
            die(CR_CTL_EXIT_USAGE, "too many arguments");
        words[nw++] = (char *)a;
    }
    int verb = cr_ctl_verb_find(cmd), min, max;
    if (verb < 0 || !cr_ctl_verb_cli(verb, &min, &max)) {
        fprintf(stderr, "%s: unknown command '%s'\n", prog, cmd);
        usage(stderr);
        return CR_CTL_EXIT_USAGE;
    }
    if (rotate) {
        /* logs --rotate: every file at once, so no NAME (and nothing to tail) */
        if (nw > 1 || follow || nlines)
            die(CR_CTL_EXIT_USAGE, "logs --rotate takes no NAME, -f or -n");
    } else if (nw - 1 < min || nw - 1 > max) {
        die(CR_CTL_EXIT_USAGE, "%s: %s arguments (see svctl --help)", cmd,
            nw - 1 < min ? "missing" : "too many");
    }

    int64_t wait_ms = 0;
    if (timeout && (cr_parse_duration_ms(timeout, &wait_ms) < 0 || wait_ms <= 0 ||
                    wait_ms > UINT32_MAX))
        die(CR_CTL_EXIT_USAGE, "--timeout: '%s' is not a duration (e.g. 30s, 500ms, 2m)",
            timeout);
    if (timeout && no_block)
        die(CR_CTL_EXIT_USAGE, "--timeout and --no-block exclude each other");
    if ((timeout || no_block) && verb != CR_CTL_START && verb != CR_CTL_STOP &&
        verb != CR_CTL_RESTART)
        die(CR_CTL_EXIT_USAGE, "%s: --no-block and --timeout are for start, stop and restart",
            cmd);

    struct conn c;
    struct reply r;
    int rc;
    if (rotate) {
        char *req[] = {"rotate"};
        request(&c, sock, 1, req, 60);
        read_reply(&c, &r, NULL);
        rc = cmd_simple(&r);
    } else if (verb == CR_CTL_LOGS) {
        char n[32] = "10";
        if (nlines) {
            char *e;
            long v = strtol(nlines, &e, 10);
            if (*e || v < 0 || v > 10000)
                die(CR_CTL_EXIT_USAGE, "logs: -n wants a number from 0 to 10000");
            snprintf(n, sizeof n, "%ld", v);
        }
        char *req[] = {"logs", words[1], n, "follow"};
        request(&c, sock, follow ? 4 : 3, req, 30);
        if (follow)
            conn_timeout(&c, 0);   /* lines come when they come */
        read_reply(&c, &r, print_log_line);
        rc = cmd_logs(&r);
    } else if ((verb == CR_CTL_START || verb == CR_CTL_STOP || verb == CR_CTL_RESTART) &&
               !no_block) {
        /* Wait as systemctl does: the supervisor answers once each service is RUNNING (ready)
         * or down, or failed, or the time ran out (ctl_proto.h: wait=MS). */
        if (nw - 1 >= CR_CTL_ARGS_MAX)
            die(CR_CTL_EXIT_USAGE, "%s: at most %d services at once (or --no-block)", cmd,
                CR_CTL_ARGS_MAX - 1);
        char wait[40];
        snprintf(wait, sizeof wait, "wait=%lld", (long long)wait_ms);
        char *req[CR_CTL_ARGS_MAX + 2];
        req[0] = words[0];
        req[1] = wait;
        for (int i = 1; i < nw && i <= CR_CTL_ARGS_MAX; i++)
            req[i + 1] = words[i];
        request(&c, sock, nw + 1, req, 60);
        /* The supervisor keeps the time: svctl only guards against one that never answers. */
        conn_timeout(&c, wait_ms ? (int)(wait_ms / 1000) + 60 : 0);
        read_reply(&c, &r, NULL);
        rc = cmd_act(&r);
    } else {
        request(&c, sock, nw, words, 60);
        read_reply(&c, &r, NULL);
        switch (verb) {
        case CR_CTL_STATUS: rc = cmd_status(&r); break;
        case CR_CTL_RELOAD: rc = cmd_plan(&r, true); break;
        case CR_CTL_CHECK: rc = cmd_plan(&r, false); break;
        case CR_CTL_HISTORY: rc = cmd_history(&r); break;
        case CR_CTL_SHUTDOWN:
        case CR_CTL_POWEROFF:
        case CR_CTL_REBOOT:
        case CR_CTL_HALT:
        case CR_CTL_REEXEC: rc = cmd_simple(&r); break;
        default: rc = cmd_act(&r); break;   /* start, stop, restart, signal */
        }
    }
    reply_free(&r);
    close(c.fd);
    free(c.buf);
    free(from_cfg);
    if (fflush(stdout) != 0 && rc == 0)
        rc = CR_CTL_EXIT_FAILED;
    return rc;
}
