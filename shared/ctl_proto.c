/* The control protocol's parsing and encoding (see ctl_proto.h), shared by the supervisor
 * and svctl. Every function here takes untrusted bytes: bounds come from the arguments,
 * never from the data. */
#include "ctl_proto.h"

#include <errno.h>
#include <string.h>

#include "text.h"

#define ANY CR_CTL_ARGS_MAX
static const struct {
    const char *name;
    int min, max;                /* arguments after the verb */
    bool cli;                    /* an svctl command, */
    int cli_max;                 /* taking min to cli_max words there */
} verbs[CR_CTL_NVERBS] = {
    [CR_CTL_HELLO] = {"hello", 1, 1, false, 0},
    [CR_CTL_STATUS] = {"status", 0, ANY, true, ANY},
    [CR_CTL_START] = {"start", 1, ANY, true, ANY},
    [CR_CTL_STOP] = {"stop", 1, ANY, true, ANY},
    [CR_CTL_RESTART] = {"restart", 1, ANY, true, ANY},
    [CR_CTL_SIGNAL] = {"signal", 2, ANY, true, ANY},
    [CR_CTL_LOGS] = {"logs", 1, 3, true, 1},
    [CR_CTL_RELOAD] = {"reload", 0, 0, true, 0},
    [CR_CTL_CHECK] = {"check", 0, 0, true, 0},
    [CR_CTL_HISTORY] = {"history", 1, 1, true, 1},
    [CR_CTL_SHUTDOWN] = {"shutdown", 0, 0, true, 0},
    [CR_CTL_ROTATE] = {"rotate", 0, 0, false, 0},   /* svctl logs --rotate */
    [CR_CTL_POWEROFF] = {"poweroff", 0, 0, true, 0},
    [CR_CTL_REBOOT] = {"reboot", 0, 0, true, 0},
    [CR_CTL_HALT] = {"halt", 0, 0, true, 0},
    [CR_CTL_REEXEC] = {"reexec", 0, 1, true, 1},
    [CR_CTL_NET_CONNECT] = {"net-connect", 5, 4 + 8, false, 0},   /* `run` (run_net.h) */
};
#undef ANY

static const struct {
    const char *name;
    int exit;
} errs[CR_CTL_NERRS] = {
    [CR_CTL_E_FAILED] = {"failed", CR_CTL_EXIT_FAILED},
    [CR_CTL_E_USAGE] = {"usage", CR_CTL_EXIT_USAGE},
    [CR_CTL_E_TOOLONG] = {"toolong", CR_CTL_EXIT_USAGE},
    [CR_CTL_E_NOSUCH] = {"nosuch", CR_CTL_EXIT_NOSUCH},
    [CR_CTL_E_DENIED] = {"denied", CR_CTL_EXIT_DENIED},
    [CR_CTL_E_BUSY] = {"busy", CR_CTL_EXIT_FAILED},
    [CR_CTL_E_CONFIG] = {"config", CR_CTL_EXIT_CONFIG},
    [CR_CTL_E_VERSION] = {"version", CR_CTL_EXIT_CONNECT},
    [CR_CTL_E_TIMEOUT] = {"timeout", CR_CTL_EXIT_TIMEOUT},
};

const char *cr_ctl_verb_name(enum cr_ctl_verb v)
{
    return (unsigned)v < CR_CTL_NVERBS ? verbs[v].name : "?";
}

int cr_ctl_verb_find(const char *name)
{
    for (int v = 0; v < CR_CTL_NVERBS; v++)
        if (!strcmp(name, verbs[v].name))
            return v;
    return -1;
}

bool cr_ctl_verb_cli(enum cr_ctl_verb v, int *min, int *max)
{
    if ((unsigned)v >= CR_CTL_NVERBS || !verbs[v].cli)
        return false;
    *min = verbs[v].min;
    *max = verbs[v].cli_max;
    return true;
}

const char *cr_ctl_err_name(enum cr_ctl_err e)
{
    return (unsigned)e < CR_CTL_NERRS ? errs[e].name : "failed";
}

int cr_ctl_err_parse(const char *word)
{
    for (int i = 0; i < CR_CTL_NERRS; i++)
        if (!strcmp(errs[i].name, word))
            return i;
    return -1;
}

int cr_ctl_err_exit(int err)
{
    return err >= 0 && err < CR_CTL_NERRS ? errs[err].exit : CR_CTL_EXIT_FAILED;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

int cr_ctl_parse_request(char *line, size_t len, struct cr_ctl_req *req, const char **why)
{
    memset(req, 0, sizeof *req);
    if (len && line[len - 1] == '\r')
        len--;   /* a client that ends lines with CRLF (nc -C, telnet) */
    char *words[CR_CTL_ARGS_MAX + 1];
    int n = 0;
    size_t i = 0;
    while (i < len) {
        while (i < len && is_blank(line[i]))
            i++;
        if (i == len)
            break;
        if (n == CR_CTL_ARGS_MAX + 1) {
            *why = "too many arguments";
            return CR_CTL_E_USAGE;
        }
        words[n++] = line + i;
        while (i < len && !is_blank(line[i])) {
            unsigned char c = (unsigned char)line[i];
            if (c < 0x21 || c > 0x7e) {
                *why = "only printable ASCII is allowed in requests";
                return CR_CTL_E_USAGE;
            }
            i++;
        }
        if (i < len)
            line[i++] = 0;
    }
    line[len] = 0;
    if (n == 0) {
        *why = "empty request";
        return CR_CTL_E_USAGE;
    }
    int v = cr_ctl_verb_find(words[0]);
    if (v >= 0) {
        int argc = n - 1;
        if (argc < verbs[v].min || argc > verbs[v].max) {
            *why = argc < verbs[v].min ? "missing arguments" : "too many arguments";
            return CR_CTL_E_USAGE;
        }
        req->verb = (enum cr_ctl_verb)v;
        req->name = verbs[v].name;
        req->argc = argc;
        for (int k = 0; k < argc; k++)
            req->argv[k] = words[k + 1];
        return 0;
    }
    *why = "unknown command";
    return CR_CTL_E_USAGE;
}

int cr_ctl_lines_feed(struct cr_ctl_lines *lb, const char *data, size_t n, cr_ctl_line_fn fn,
                      void *arg, size_t *used)
{
    size_t off = 0;
    *used = 0;
    while (off < n) {
        const char *nl = memchr(data + off, '\n', n - off);
        size_t take = nl ? (size_t)(nl - (data + off)) : n - off;
        if (lb->len + take + 1 > lb->cap) {
            lb->len = 0;
            *used = n;
            return -E2BIG;
        }
        memcpy(lb->buf + lb->len, data + off, take);
        lb->len += take;
        off += take;
        if (!nl)
            break;
        off++;   /* the newline */
        lb->buf[lb->len] = 0;
        size_t l = lb->len;
        lb->len = 0;
        if (fn(arg, lb->buf, l)) {
            *used = off;
            return 1;
        }
    }
    *used = off;
    return 0;
}

static bool needs_escape(unsigned char c)
{
    return c <= 0x20 || c >= 0x7f || c == '%' || c == '=';
}

size_t cr_ctl_encode(char *dst, size_t cap, const char *src, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    if (!cap)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)src[i];
        if (needs_escape(c)) {
            if (o + 3 >= cap)
                break;
            dst[o++] = '%';
            dst[o++] = hex[c >> 4];
            dst[o++] = hex[c & 15];
        } else {
            if (o + 1 >= cap)
                break;
            dst[o++] = (char)c;
        }
    }
    dst[o] = 0;
    return o;
}

long cr_ctl_decode(char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++)
        if (s[i] == '%' && (i + 2 >= n || cr_hexval(s[i + 1]) < 0 || cr_hexval(s[i + 2]) < 0))
            return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            s[o++] = (char)(cr_hexval(s[i + 1]) << 4 | cr_hexval(s[i + 2]));
            i += 2;
        } else {
            s[o++] = s[i];
        }
    }
    s[o] = 0;
    return (long)o;
}

int cr_ctl_parse_response(char *line, struct cr_ctl_resp *r)
{
    memset(r, 0, sizeof *r);
    r->err = -1;
    r->text = "";
    char *sp = strchr(line, ' ');
    char *rest = sp ? sp + 1 : line + strlen(line);
    if (sp)
        *sp = 0;
    if (!strcmp(line, "ok")) {
        r->kind = CR_CTL_R_OK;
        r->text = rest;
        return 0;
    }
    if (!strcmp(line, "line")) {
        r->kind = CR_CTL_R_LINE;
        r->text = rest;
        return 0;
    }
    if (!strcmp(line, "error")) {
        r->kind = CR_CTL_R_ERROR;
        char *code = rest;
        char *sp2 = strchr(code, ' ');
        if (sp2) {
            *sp2 = 0;
            r->text = sp2 + 1;
        }
        if (!*code)
            return -1;
        r->err = cr_ctl_err_parse(code);
        return 0;
    }
    if (strcmp(line, "rec")) {
        r->kind = CR_CTL_R_OTHER;
        return 0;
    }
    r->kind = CR_CTL_R_REC;
    char *p = rest;
    while (*p) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        char *tok = p;
        while (*p && *p != ' ')
            p++;
        if (*p)
            *p++ = 0;
        char *eq = strchr(tok, '=');
        if (!eq || eq == tok)
            return -1;
        *eq = 0;
        if (cr_ctl_decode(eq + 1) < 0)
            return -1;
        if (r->nkv == CR_CTL_KV_MAX)
            continue;   /* more keys than we know of: the rest are dropped */
        r->kv[r->nkv].key = tok;
        r->kv[r->nkv].value = eq + 1;
        r->nkv++;
    }
    return 0;
}

const char *cr_ctl_get(const struct cr_ctl_resp *r, const char *key)
{
    for (int i = 0; i < r->nkv; i++)
        if (!strcmp(r->kv[i].key, key))
            return r->kv[i].value;
    return NULL;
}
