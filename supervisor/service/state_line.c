/* A service's state line: written and read without printf/scanf (state_line.h). */
#include "service/state_line.h"

#include <string.h>

#include "text.h"

void cr_sl_raw(struct cr_sl_out *o, const char *s, size_t n)
{
    if (o->full || o->n + n >= o->cap) {
        o->full = true;
        return;
    }
    memcpy(o->buf + o->n, s, n);
    o->n += n;
    o->buf[o->n] = 0;
}

void cr_sl_str(struct cr_sl_out *o, const char *s)
{
    cr_sl_raw(o, s, strlen(s));
}

void cr_sl_key(struct cr_sl_out *o, const char *key)
{
    cr_sl_raw(o, " ", 1);
    cr_sl_str(o, key);
    cr_sl_raw(o, "=", 1);
}

void cr_sl_u64(struct cr_sl_out *o, uint64_t v)
{
    char tmp[24];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    cr_sl_raw(o, tmp + i, sizeof tmp - i);
}

void cr_sl_i64(struct cr_sl_out *o, int64_t v)
{
    if (v < 0) {
        cr_sl_raw(o, "-", 1);
        cr_sl_u64(o, -(uint64_t)v);   /* INT64_MIN too */
    } else {
        cr_sl_u64(o, (uint64_t)v);
    }
}

void cr_sl_hex(struct cr_sl_out *o, const char *bytes, size_t n)
{
    static const char digit[] = "0123456789abcdef";
    if (o->full || o->n + 2 * n >= o->cap) {
        o->full = true;
        return;
    }
    char *d = o->buf + o->n;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)bytes[i];
        *d++ = digit[c >> 4];
        *d++ = digit[c & 15];
    }
    o->n += 2 * n;
    o->buf[o->n] = 0;
}

void cr_sl_field(struct cr_sl_out *o, const char *key, int64_t v)
{
    cr_sl_key(o, key);
    cr_sl_i64(o, v);
}

void cr_sl_ufield(struct cr_sl_out *o, const char *key, uint64_t v)
{
    cr_sl_key(o, key);
    cr_sl_u64(o, v);
}

int cr_sl_end(struct cr_sl_out *o)
{
    return o->full ? -1 : (int)o->n;
}

void cr_sl_rewind(struct cr_sl_out *o, size_t n)
{
    if (n < o->cap) {
        o->n = n;
        o->buf[n] = 0;
        o->full = false;
    }
}

bool cr_sl_index(struct cr_sl_in *in, const char *line)
{
    const char *p = line;
    in->n = in->next = 0;
    if (strncmp(p, "svc ", 4))
        return false;
    /* one pass: each token ends at a space, '\n' or the end; a field's at its first '=' */
    const char *tok[2] = {NULL, NULL};
    size_t toklen[2] = {0, 0};
    int k = 0;
    for (p += 4; *p && *p != '\n';) {
        while (*p == ' ')
            p++;
        const char *t = p;
        p += strcspn(p, " \n");
        if (p == t)
            break;
        const char *eq = k < 2 ? NULL : memchr(t, '=', (size_t)(p - t));
        if (k < 2) {   /* NAME and STATE */
            tok[k] = t;
            toklen[k++] = (size_t)(p - t);
        } else if (eq && in->n < CR_SL_FIELDS) {
            /* a token without '=' is not a field: as the earlier program's strstr would,
             * passed over */
            in->f[in->n].key = t;
            in->f[in->n].key_len = (size_t)(eq - t);
            in->f[in->n].val = eq + 1;
            in->f[in->n].val_len = (size_t)(p - eq - 1);
            in->n++;
        }
    }
    in->name = tok[0];
    in->name_len = toklen[0];
    in->state = tok[1];
    in->state_len = toklen[1];
    return k == 2;
}

const char *cr_sl_get(struct cr_sl_in *in, const char *key, size_t *len)
{
    size_t k = strlen(key);
    for (int j = 0; j < in->n; j++) {
        int i = (in->next + j) % in->n;
        if (in->f[i].key_len == k && !memcmp(in->f[i].key, key, k)) {
            in->next = i + 1;
            if (len)
                *len = in->f[i].val_len;
            return in->f[i].val;
        }
    }
    return NULL;
}

bool cr_sl_num(const char **pp, const char *end, int64_t *v)
{
    const char *p = *pp;
    bool neg = p < end && *p == '-';
    p += neg;
    if (p >= end || *p < '0' || *p > '9')
        return false;
    uint64_t x = 0;
    for (; p < end && *p >= '0' && *p <= '9'; p++)
        x = x * 10 + (uint64_t)(*p - '0');
    *v = neg ? -(int64_t)x : (int64_t)x;
    *pp = p;
    return true;
}

bool cr_sl_skip(const char **pp, const char *end, char c)
{
    if (*pp >= end || **pp != c)
        return false;
    (*pp)++;
    return true;
}

bool cr_sl_int(struct cr_sl_in *in, const char *key, int64_t *v)
{
    size_t len;
    const char *p = cr_sl_get(in, key, &len);
    return p && cr_sl_num(&p, p + len, v);
}

size_t cr_sl_unhex(const char *p, size_t n, char *out, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i + 1 < n && k < cap; i += 2) {
        int hi = cr_hexval(p[i]), lo = cr_hexval(p[i + 1]);
        if (hi < 0 || lo < 0)
            break;
        out[k++] = (char)(hi << 4 | lo);
    }
    return k;
}
