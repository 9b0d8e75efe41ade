#include "ini_reader.h"

#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void cr_errlist_vadd(struct cr_errlist *l, const char *fmt, va_list ap)
{
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0) {
        l->oom = true;
        return;
    }
    for (size_t i = 0; i < l->n; i++) {
        if (!strcmp(l->v[i], msg)) {
            free(msg);
            return;
        }
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        char **v = realloc(l->v, cap * sizeof *v);
        if (!v) {
            free(msg);
            l->oom = true;
            return;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = msg;
}

void cr_errlist_add(struct cr_errlist *l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cr_errlist_vadd(l, fmt, ap);
    va_end(ap);
}

void cr_errlist_free(struct cr_errlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

void cr_ini_error(struct cr_ini *ini, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    cr_errlist_add(ini->errors, "%s:%d: %s", ini->file, ini->lineno, text);
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r';
}

static const char *comment_chars(const struct cr_ini *ini)
{
    return ini->comment_chars ? ini->comment_chars : ";";
}

/* The first of chars in s, stopping (like inih) at an inline comment after a blank. */
static const char *find_before_comment(const struct cr_ini *ini, const char *s, const char *chars)
{
    bool was_blank = false;
    for (; *s; s++) {
        if (strchr(chars, *s))
            return s;
        if (was_blank && strchr(comment_chars(ini), *s))
            return NULL;
        was_blank = is_blank(*s);
    }
    return NULL;
}

/* Looks at one physical line (no newline) and decides what inih may see. Returns false when
 * the line is replaced by a blank one (an error was recorded). */
static bool classify(struct cr_ini *ini, char *line)
{
    char *p = line;
    ini->cont = false;
    while (is_blank(*p))
        p++;
    if (*p == '\0' || *p == ';' || *p == '#')
        return true;                             /* blank or comment */
    if (p > line && ini->skip_cont)
        return false;                            /* continues a refused line: dropped */
    ini->skip_cont = false;
    if (p > line && ini->have_prev) {
        /* inih passes it under the previous key; r55 keeps an inline comment there, so it
         * is cut here: " ;" starts a comment on every line */
        for (char *q = p + 1; *q; q++)
            if (strchr(comment_chars(ini), *q) && is_blank(q[-1])) {
                *q = '\0';
                break;
            }
        ini->cont = true;
        return true;
    }
    if (*p == '[') {
        const char *end = find_before_comment(ini, p + 1, "]");
        if (!end) {
            cr_ini_error(ini, "%s: section header without ']'", p);
            if (ini->on_section)
                ini->on_section(ini, NULL);
            return false;
        }
        const char *s = p + 1;
        while (s < end && is_blank(*s))
            s++;
        size_t n = (size_t)(end - s);
        while (n && is_blank(s[n - 1]))
            n--;
        char *name = strndup(s, n);
        if (!name) {
            ini->errors->oom = true;
            return false;
        }
        ini->have_prev = false;
        ini->section_line = ini->lineno;
        if (ini->on_section)
            ini->on_section(ini, name);
        free(name);
        return true;
    }
    const char *eq = find_before_comment(ini, p, "=:");
    if (!eq) {
        cr_ini_error(ini, "expected 'key = value', got '%s'", p);
        ini->have_prev = false;
        return false;
    }
    if (eq == p) {
        cr_ini_error(ini, "missing key name before '%c'", *eq);
        ini->have_prev = false;
        return false;
    }
    ini->have_prev = true;
    return true;
}

static char *reader(char *str, int num, void *stream)
{
    struct cr_ini *ini = stream;
    if (ini->pos >= ini->len)
        return NULL;
    const char *start = ini->buf + ini->pos;
    size_t rest = ini->len - ini->pos;
    const char *nl = memchr(start, '\n', rest);
    size_t n = nl ? (size_t)(nl - start) : rest;
    ini->pos += n + (nl ? 1 : 0);
    ini->lineno++;
    ini->cont = false;
    if (n && start[n - 1] == '\r')
        n--;
    /* A UTF-8 byte order mark is skipped here, so inih never sees it. */
    if (ini->lineno == 1 && n >= 3 && !memcmp(start, "\xEF\xBB\xBF", 3)) {
        start += 3;
        n -= 3;
    }
    size_t max = num > 3 ? (size_t)num - 3 : 0;
    size_t want = ini->max_line ? ini->max_line : CR_INI_LINE_MAX;
    if (max > want)
        max = want;
    if (memchr(start, '\0', n)) {
        cr_ini_error(ini, "line holds a NUL byte");
    } else if (n > max) {
        cr_ini_error(ini, "line is %zu bytes, longer than %zu (continue it on indented lines)",
                     n, max);
    } else {
        memcpy(str, start, n);
        str[n] = '\0';
        if (classify(ini, str)) {
            str[n] = '\n';
            str[n + 1] = '\0';
            return str;
        }
    }
    /* refused: inih gets a blank line, and the refused line's continuations go too */
    ini->cont = false;
    ini->have_prev = false;
    ini->skip_cont = true;
    str[0] = '\n';
    str[1] = '\0';
    return str;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
    struct cr_ini *ini = user;
    (void)section;               /* inih's copy is cut at 49 bytes; the reader's is not */
    if (ini->on_value)
        ini->on_value(ini, name, value ? value : "");
    return 1;
}

int cr_ini_parse(struct cr_ini *ini)
{
    ini->pos = 0;
    ini->lineno = 0;
    ini->section_line = 0;
    ini->have_prev = false;
    ini->skip_cont = false;
    /* Debian's inih has its options as run-time globals (upstream has them as macros): the
     * line buffer goes to the heap, sized for max_line plus "\r\n" and the terminator, and
     * inline comments start with the caller's characters. Multiline on and keep going after
     * an error are the defaults we rely on. Restored after, for the next caller. */
    size_t max = ini->max_line ? ini->max_line : CR_INI_LINE_MAX;
    if (max > (size_t)INT32_MAX - 3)
        max = (size_t)INT32_MAX - 3;
    int saved_max = ini_max_line, saved_alloc = ini_initial_alloc;
    bool saved_stack = ini_use_stack, saved_realloc = ini_allow_realloc;
    char *saved_prefixes = ini_inline_comment_prefixes;
    char prefixes[8];
    snprintf(prefixes, sizeof prefixes, "%s", comment_chars(ini));
    ini_max_line = ini_initial_alloc = (int)max + 3;
    ini_use_stack = false;
    ini_allow_realloc = false;
    ini_inline_comment_prefixes = prefixes;
    int r = ini_parse_stream(reader, ini, handler, ini);
    ini_max_line = saved_max;
    ini_initial_alloc = saved_alloc;
    ini_use_stack = saved_stack;
    ini_allow_realloc = saved_realloc;
    ini_inline_comment_prefixes = saved_prefixes;
    if (r == -2)
        return -ENOMEM;
    /* r > 0 would be inih's own syntax error on a line the reader let through; the reader
     * rejects everything inih rejects, so just make sure nothing goes unreported. */
    if (r > 0 && ini->errors->n == 0)
        cr_errlist_add(ini->errors, "%s:%d: syntax error", ini->file, r);
    return 0;
}

int cr_ini_load_fd(int fd, const char *name, size_t cap, char **bufp, size_t *lenp,
                   struct cr_errlist *errors)
{
    size_t len = 0, size = 4096;
    char *buf = malloc(size);
    if (!buf)
        return -ENOMEM;
    for (;;) {
        if (len + 1 >= size) {
            if (size > cap + 1) {
                cr_errlist_add(errors, "%s: larger than %zu bytes", name, cap);
                free(buf);
                return -EFBIG;
            }
            size *= 2;
            char *nb = realloc(buf, size);
            if (!nb) {
                free(buf);
                return -ENOMEM;
            }
            buf = nb;
        }
        ssize_t r = read(fd, buf + len, size - len - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            cr_errlist_add(errors, "%s: %s", name, strerror(e));
            free(buf);
            return -e;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    if (len > cap) {
        cr_errlist_add(errors, "%s: larger than %zu bytes", name, cap);
        free(buf);
        return -EFBIG;
    }
    buf[len] = '\0';
    *bufp = buf;
    *lenp = len;
    return 0;
}

int cr_ini_load(const char *path, size_t cap, char **buf, size_t *len, struct cr_errlist *errors)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        cr_errlist_add(errors, "%s: %s", path, strerror(e));
        return -e;
    }
    int r = cr_ini_load_fd(fd, path, cap, buf, len, errors);
    close(fd);
    return r;
}
