/* XML-RPC requests read with expat, responses written (xmlrpc.h). */
#include "api/xmlrpc.h"

#include <errno.h>
#include <expat.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cr_xv_free(struct cr_xv *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->n; i++) {
        cr_xv_free(v->v[i]);
        if (v->names)
            free(v->names[i]);
    }
    free(v->v);
    free(v->names);
    free(v->s);
    free(v->pending);
    free(v);
}

const struct cr_xv *cr_xv_member(const struct cr_xv *v, const char *name)
{
    if (!v || v->t != CR_XV_STRUCT)
        return NULL;
    for (size_t i = 0; i < v->n; i++)
        if (!strcmp(v->names[i], name))
            return v->v[i];
    return NULL;
}

/* ---- reading: expat's callbacks build the tree ------------------------------------------ */

/* The elements XML-RPC has, and which may hold which. */
enum el { EL_NONE, EL_CALL, EL_METHOD, EL_PARAMS, EL_PARAM, EL_VALUE, EL_MEMBER, EL_NAME,
          EL_STRUCT, EL_ARRAY, EL_DATA, EL_SCALAR };

struct pctx {
    XML_Parser p;
    char *method;
    struct cr_xv *params;
    enum el els[2 * CR_XV_DEPTH + 8];    /* the open elements */
    int nels;
    struct cr_xv *vals[CR_XV_DEPTH + 1]; /* the open values */
    int nvals;
    enum cr_xv_type scalar;              /* the type element inside the innermost value */
    bool typed;                          /* ... which has one */
    char *text;
    size_t tlen, tcap;
    size_t nodes;
    bool failed, oom;
    char err[160];
};

static void fail(struct pctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(struct pctx *c, const char *fmt, ...)
{
    if (c->failed)
        return;
    c->failed = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    XML_StopParser(c->p, XML_FALSE);
}

static const struct { const char *name; enum el el; enum cr_xv_type t; } scalars[] = {
    {"i4", EL_SCALAR, CR_XV_INT}, {"int", EL_SCALAR, CR_XV_INT}, {"i8", EL_SCALAR, CR_XV_INT},
    {"boolean", EL_SCALAR, CR_XV_BOOL}, {"string", EL_SCALAR, CR_XV_STRING},
    {"double", EL_SCALAR, CR_XV_DOUBLE}, {"dateTime.iso8601", EL_SCALAR, CR_XV_DATETIME},
    {"base64", EL_SCALAR, CR_XV_BASE64}, {"nil", EL_SCALAR, CR_XV_NIL},
};

static enum el element_of(const char *name, enum cr_xv_type *t)
{
    static const struct { const char *name; enum el el; } els[] = {
        {"methodCall", EL_CALL}, {"methodName", EL_METHOD}, {"params", EL_PARAMS},
        {"param", EL_PARAM}, {"value", EL_VALUE}, {"member", EL_MEMBER}, {"name", EL_NAME},
        {"struct", EL_STRUCT}, {"array", EL_ARRAY}, {"data", EL_DATA},
    };
    for (size_t i = 0; i < sizeof els / sizeof els[0]; i++)
        if (!strcmp(name, els[i].name))
            return els[i].el;
    for (size_t i = 0; i < sizeof scalars / sizeof scalars[0]; i++)
        if (!strcmp(name, scalars[i].name)) {
            *t = scalars[i].t;
            return EL_SCALAR;
        }
    return EL_NONE;
}

/* May element `in` hold `el`? */
static bool allowed(enum el in, enum el el)
{
    switch (in) {
    case EL_NONE: return el == EL_CALL;
    case EL_CALL: return el == EL_METHOD || el == EL_PARAMS;
    case EL_PARAMS: return el == EL_PARAM;
    case EL_PARAM: return el == EL_VALUE;
    case EL_VALUE: return el == EL_SCALAR || el == EL_STRUCT || el == EL_ARRAY;
    case EL_STRUCT: return el == EL_MEMBER;
    case EL_MEMBER: return el == EL_NAME || el == EL_VALUE;
    case EL_ARRAY: return el == EL_DATA;
    case EL_DATA: return el == EL_VALUE;
    default: return false;
    }
}

static char *take_text(struct pctx *c)
{
    char *s = strndup(c->text ? c->text : "", c->tlen);
    if (!s) {
        c->oom = true;
        fail(c, "out of memory");
    }
    c->tlen = 0;
    return s;
}

static void on_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
    (void)attrs;
    struct pctx *c = ud;
    enum cr_xv_type t = CR_XV_STRING;
    enum el el = element_of(name, &t);
    enum el in = c->nels ? c->els[c->nels - 1] : EL_NONE;
    if (el == EL_NONE || !allowed(in, el)) {
        fail(c, "<%s> is not allowed %s", name, c->nels ? "there" : "as the root");
        return;
    }
    if (c->nels >= (int)(sizeof c->els / sizeof c->els[0]) ||
        (el == EL_VALUE && c->nvals >= CR_XV_DEPTH)) {
        fail(c, "values nested deeper than %d", CR_XV_DEPTH);
        return;
    }
    if (in == EL_VALUE && c->typed) {
        fail(c, "<value> holds one value");
        return;
    }
    c->els[c->nels++] = el;
    c->tlen = 0;
    struct cr_xv *top = c->nvals ? c->vals[c->nvals - 1] : NULL;
    switch (el) {
    case EL_VALUE:
        if (++c->nodes > CR_XV_NODES) {
            fail(c, "more than %d values", CR_XV_NODES);
            return;
        }
        if (!(c->vals[c->nvals] = calloc(1, sizeof(struct cr_xv)))) {
            c->oom = true;
            fail(c, "out of memory");
            return;
        }
        c->nvals++;
        c->typed = false;
        break;
    case EL_SCALAR:
        top->t = t;
        c->typed = true;
        break;
    case EL_STRUCT:
        top->t = CR_XV_STRUCT;
        c->typed = true;
        break;
    case EL_ARRAY:
        top->t = CR_XV_ARRAY;
        c->typed = true;
        break;
    default:
        break;
    }
}

static bool add_item(struct pctx *c, struct cr_xv *to, struct cr_xv *v, char *name)
{
    struct cr_xv **nv = realloc(to->v, (to->n + 1) * sizeof *nv);
    if (nv)
        to->v = nv;
    char **nn = to->t == CR_XV_STRUCT ? realloc(to->names, (to->n + 1) * sizeof *nn) : NULL;
    if (nn)
        to->names = nn;
    if (!nv || (to->t == CR_XV_STRUCT && !nn)) {
        c->oom = true;
        fail(c, "out of memory");
        return false;
    }
    to->v[to->n] = v;
    if (nn)
        to->names[to->n] = name;
    to->n++;
    return true;
}

/* The scalar's text into its value. */
static void set_scalar(struct pctx *c, struct cr_xv *v)
{
    char *s = take_text(c);
    if (!s)
        return;
    char *end;
    switch (v->t) {
    case CR_XV_INT:
        errno = 0;
        v->i = strtoll(s, &end, 10);
        if (!*s || *end || errno)
            fail(c, "'%.40s' is not an integer", s);
        free(s);
        break;
    case CR_XV_BOOL:
        if (strcmp(s, "0") && strcmp(s, "1"))
            fail(c, "'%.40s' is not a boolean (0 or 1)", s);
        v->i = s[0] == '1';
        free(s);
        break;
    case CR_XV_DOUBLE:
        v->d = strtod(s, &end);
        if (!*s || *end)
            fail(c, "'%.40s' is not a double", s);
        free(s);
        break;
    case CR_XV_NIL:
        free(s);
        break;
    default:
        v->s = s;
    }
}

static void on_end(void *ud, const XML_Char *name)
{
    (void)name;
    struct pctx *c = ud;
    if (c->failed)
        return;
    enum el el = c->els[--c->nels];
    enum el in = c->nels ? c->els[c->nels - 1] : EL_NONE;
    struct cr_xv *top = c->nvals ? c->vals[c->nvals - 1] : NULL;
    switch (el) {
    case EL_METHOD:
        free(c->method);
        c->method = take_text(c);
        break;
    case EL_NAME:
        free(top->pending);
        top->pending = take_text(c);
        break;
    case EL_SCALAR:
        set_scalar(c, top);
        break;
    case EL_VALUE: {
        struct cr_xv *v = c->vals[--c->nvals];
        if (!c->typed)      /* <value>text</value> is a string */
            v->s = take_text(c);
        c->typed = true;    /* the enclosing value is typed (a struct or an array) */
        struct cr_xv *to = in == EL_PARAM ? c->params : c->vals[c->nvals - 1];
        char *mname = NULL;
        if (in == EL_MEMBER) {
            if (!to->pending) {
                cr_xv_free(v);
                fail(c, "<member> without a <name> before its <value>");
                return;
            }
            mname = to->pending;
            to->pending = NULL;
        }
        if (!add_item(c, to, v, mname)) {
            cr_xv_free(v);
            free(mname);
        }
        break;
    }
    default:
        break;
    }
    c->tlen = 0;
}

static void on_text(void *ud, const XML_Char *s, int len)
{
    struct pctx *c = ud;
    if (c->failed)
        return;
    if (c->tlen + (size_t)len + 1 > c->tcap) {
        size_t cap = (c->tlen + (size_t)len + 1) * 2;
        char *n = realloc(c->text, cap);
        if (!n) {
            c->oom = true;
            fail(c, "out of memory");
            return;
        }
        c->text = n;
        c->tcap = cap;
    }
    memcpy(c->text + c->tlen, s, (size_t)len);
    c->tlen += (size_t)len;
}

static void on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
                       const XML_Char *pubid, int has_internal)
{
    (void)name, (void)sysid, (void)pubid, (void)has_internal;
    fail(ud, "a DOCTYPE is not taken");
}

int cr_xmlrpc_parse(const char *body, size_t len, char **method, struct cr_xv **params,
                    char *err, size_t errlen)
{
    *method = NULL;
    *params = NULL;
    struct pctx c = {0};
    c.params = calloc(1, sizeof *c.params);
    c.p = XML_ParserCreate("UTF-8");
    if (!c.params || !c.p) {
        free(c.params);
        if (c.p)
            XML_ParserFree(c.p);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    c.params->t = CR_XV_ARRAY;
    XML_SetUserData(c.p, &c);
    XML_SetElementHandler(c.p, on_start, on_end);
    XML_SetCharacterDataHandler(c.p, on_text);
    XML_SetStartDoctypeDeclHandler(c.p, on_doctype);
    enum XML_Status st = XML_Parse(c.p, body, (int)len, XML_TRUE);
    if (st != XML_STATUS_OK && !c.failed)
        snprintf(c.err, sizeof c.err, "%s", XML_ErrorString(XML_GetErrorCode(c.p)));
    int r = 0;
    if (st != XML_STATUS_OK || c.failed) {
        snprintf(err, errlen, "line %lu, column %lu: %s",
                 (unsigned long)XML_GetCurrentLineNumber(c.p),
                 (unsigned long)XML_GetCurrentColumnNumber(c.p), c.err);
        r = c.oom ? -ENOMEM : -EINVAL;
    } else if (!c.method || !*c.method) {
        snprintf(err, errlen, "no <methodName>");
        r = -EINVAL;
    }
    while (c.nvals)
        cr_xv_free(c.vals[--c.nvals]);
    XML_ParserFree(c.p);
    free(c.text);
    if (r < 0) {
        free(c.method);
        cr_xv_free(c.params);
        return r;
    }
    *method = c.method;
    *params = c.params;
    return 0;
}

/* ---- writing ---------------------------------------------------------------------------- */

static void put(struct cr_xw *w, const char *s, size_t n)
{
    if (w->oom)
        return;
    if (w->len + n + 1 > w->cap) {
        size_t cap = w->cap ? w->cap : 1024;
        while (cap < w->len + n + 1)
            cap *= 2;
        char *p = realloc(w->p, cap);
        if (!p) {
            w->oom = true;
            return;
        }
        w->p = p;
        w->cap = cap;
    }
    memcpy(w->p + w->len, s, n);
    w->len += n;
    w->p[w->len] = 0;
}

void cr_xw_raw(struct cr_xw *w, const char *s)
{
    put(w, s, strlen(s));
}

void cr_xw_rawn(struct cr_xw *w, const char *s, size_t n)
{
    put(w, s, n);
}

/* The length of the valid UTF-8 sequence at s (n bytes left), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t k = s[0] < 0x80 ? 1 : (s[0] & 0xe0) == 0xc0 ? 2 : (s[0] & 0xf0) == 0xe0 ? 3
             : (s[0] & 0xf8) == 0xf0 ? 4 : 0;
    if (!k || k > n || (k == 2 && s[0] < 0xc2) || (k == 4 && s[0] > 0xf4))
        return 0;
    for (size_t i = 1; i < k; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if (k == 3 && ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0)))
        return 0;
    if (k == 4 && ((s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90)))
        return 0;
    return k;
}

/* Text escaped for XML; what XML cannot carry (control characters, bytes that are not
 * UTF-8: a log's raw output) becomes U+FFFD, so the client's parser takes it. */
static void escape(struct cr_xw *w, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t run = 0;
    for (size_t i = 0; i < n;) {
        const char *rep = NULL;
        size_t k = utf8_len(u + i, n - i);
        if (u[i] == '<')
            rep = "&lt;";
        else if (u[i] == '>')
            rep = "&gt;";
        else if (u[i] == '&')
            rep = "&amp;";
        else if (u[i] == '\r')
            rep = "&#13;";
        else if (!k || (u[i] < 0x20 && u[i] != '\t' && u[i] != '\n'))
            rep = "\xef\xbf\xbd";
        if (!rep) {
            i += k;
            run += k;
            continue;
        }
        put(w, s + i - run, run);
        run = 0;
        put(w, rep, strlen(rep));
        i += k ? k : 1;
    }
    put(w, s + n - run, run);
}

void cr_xw_strn(struct cr_xw *w, const char *s, size_t n)
{
    put(w, "<value><string>", 15);
    escape(w, s, n);
    put(w, "</string></value>", 17);
}

void cr_xw_str(struct cr_xw *w, const char *s)
{
    cr_xw_strn(w, s ? s : "", s ? strlen(s) : 0);
}

void cr_xw_int(struct cr_xw *w, int64_t i)
{
    char b[64];
    /* XML-RPC's int is 32 bits; larger (never from supervisord's API) are clamped */
    if (i > INT32_MAX)
        i = INT32_MAX;
    if (i < INT32_MIN)
        i = INT32_MIN;
    snprintf(b, sizeof b, "<value><int>%lld</int></value>", (long long)i);
    cr_xw_raw(w, b);
}

void cr_xw_bool(struct cr_xw *w, bool b)
{
    cr_xw_raw(w, b ? "<value><boolean>1</boolean></value>"
                   : "<value><boolean>0</boolean></value>");
}

void cr_xw_array_begin(struct cr_xw *w) { cr_xw_raw(w, "<value><array><data>"); }
void cr_xw_array_end(struct cr_xw *w) { cr_xw_raw(w, "</data></array></value>"); }
void cr_xw_struct_begin(struct cr_xw *w) { cr_xw_raw(w, "<value><struct>"); }
void cr_xw_struct_end(struct cr_xw *w) { cr_xw_raw(w, "</struct></value>"); }
void cr_xw_member_end(struct cr_xw *w) { cr_xw_raw(w, "</member>"); }

void cr_xw_member(struct cr_xw *w, const char *name)
{
    /* names are ours (ASCII words) */
    cr_xw_raw(w, "<member><name>");
    cr_xw_raw(w, name);
    cr_xw_raw(w, "</name>");
}

void cr_xw_begin(struct cr_xw *w)
{
    cr_xw_raw(w, "<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n");
}

void cr_xw_end(struct cr_xw *w)
{
    cr_xw_raw(w, "\n</param>\n</params>\n</methodResponse>\n");
}

void cr_xw_fault(struct cr_xw *w, int code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cr_xw_raw(w, "<?xml version='1.0'?>\n<methodResponse>\n<fault>\n");
    cr_xw_struct_begin(w);
    cr_xw_member(w, "faultCode");
    cr_xw_int(w, code);
    cr_xw_member_end(w);
    cr_xw_member(w, "faultString");
    cr_xw_str(w, msg);
    cr_xw_member_end(w);
    cr_xw_struct_end(w);
    cr_xw_raw(w, "\n</fault>\n</methodResponse>\n");
}

void cr_xw_value(struct cr_xw *w, const struct cr_xv *v)
{
    char b[64];
    switch (v->t) {
    case CR_XV_STRING: cr_xw_str(w, v->s); break;
    case CR_XV_INT: cr_xw_int(w, v->i); break;
    case CR_XV_BOOL: cr_xw_bool(w, v->i); break;
    case CR_XV_DOUBLE:
        snprintf(b, sizeof b, "<value><double>%.17g</double></value>", v->d);
        cr_xw_raw(w, b);
        break;
    case CR_XV_NIL: cr_xw_raw(w, "<value><nil/></value>"); break;
    case CR_XV_DATETIME:
    case CR_XV_BASE64:
        cr_xw_raw(w, v->t == CR_XV_DATETIME ? "<value><dateTime.iso8601>" : "<value><base64>");
        escape(w, v->s ? v->s : "", v->s ? strlen(v->s) : 0);
        cr_xw_raw(w, v->t == CR_XV_DATETIME ? "</dateTime.iso8601></value>"
                                            : "</base64></value>");
        break;
    case CR_XV_ARRAY:
        cr_xw_array_begin(w);
        for (size_t i = 0; i < v->n; i++)
            cr_xw_value(w, v->v[i]);
        cr_xw_array_end(w);
        break;
    case CR_XV_STRUCT:
        cr_xw_struct_begin(w);
        for (size_t i = 0; i < v->n; i++) {
            cr_xw_raw(w, "<member><name>");
            escape(w, v->names[i], strlen(v->names[i]));
            cr_xw_raw(w, "</name>");
            cr_xw_value(w, v->v[i]);
            cr_xw_member_end(w);
        }
        cr_xw_struct_end(w);
        break;
    }
}
