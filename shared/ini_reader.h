/* A line reader for inih (Debian's r55) that makes every message name FILE:LINE.
 *
 * inih r55 gives its handler no line number, cuts lines at 200 bytes and parses the tail of
 * a long line as a new line, and reports only the first error. Feeding it through
 * ini_parse_stream() with this reader fixes all of that without patching the library:
 *   - the reader counts physical lines, and inih calls the handler right after reading a
 *     line, so `lineno` is the line of the key being handled;
 *   - lines over CR_INI_LINE_MAX bytes, lines with a NUL byte, section headers without ']'
 *     and lines that are not `key = value` become errors here and reach inih as blank lines;
 *   - the reader sees `[section]` headers itself (full length; inih cuts them at 49 bytes)
 *     and tells its user, and it knows whether a line is an indented continuation.
 * Used by the supervisor (services.ini) and by init (the spec), so it is libc-neutral. */
#ifndef CORRAL_INI_READER_H
#define CORRAL_INI_READER_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

/* inih r55's default buffer is 200 bytes: room for 197 bytes, "\r\n" and the terminator.
 * A caller may ask for longer lines (struct cr_ini's max_line): Debian's inih has its
 * options as run-time variables, and cr_ini_parse() sizes inih's heap line buffer to fit. */
#define CR_INI_LINE_MAX 197

/* A list of messages, each already formatted ("FILE:LINE: key: what is wrong"). Identical
 * messages are kept once (numprocs copies of one service would repeat them). */
struct cr_errlist {
    char **v;
    size_t n, cap;
    bool oom;                    /* a message was lost for lack of memory */
};
void cr_errlist_add(struct cr_errlist *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void cr_errlist_vadd(struct cr_errlist *l, const char *fmt, va_list ap);
void cr_errlist_free(struct cr_errlist *l);

struct cr_ini;
/* Called by the reader for each `[name]` header (name trimmed, any length), and with NULL for
 * a broken header: the keys that follow belong to no section and should be ignored. */
typedef void (*cr_ini_section_fn)(struct cr_ini *ini, const char *name);
/* Called for each value line; ini->lineno and ini->cont describe that line. */
typedef void (*cr_ini_value_fn)(struct cr_ini *ini, const char *key, const char *value);

struct cr_ini {
    /* set by the caller */
    const char *file;            /* name used in messages */
    const char *buf;             /* the whole text (may hold NUL bytes: they are errors) */
    size_t len;
    cr_ini_section_fn on_section;
    cr_ini_value_fn on_value;
    struct cr_errlist *errors;
    void *user;
    size_t max_line;             /* longest line in bytes; 0: CR_INI_LINE_MAX */
    const char *comment_chars;   /* what starts an inline comment after a blank; NULL: ";" */
    /* state, readable from the callbacks */
    int lineno;                  /* physical line being handled (1-based) */
    bool cont;                   /* that line is an indented continuation of the last key */
    int section_line;            /* line of the current [section] header, 0 before any */
    /* private */
    size_t pos;
    bool have_prev;              /* inih's "previous name" is set (continuations possible) */
    bool skip_cont;              /* the last line was refused: drop its continuation lines */
};

/* Adds "FILE:LINE: " + the formatted text to ini->errors, for the current line. */
void cr_ini_error(struct cr_ini *ini, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parses ini->buf. Returns 0, or -ENOMEM. Every problem is in ini->errors. */
int cr_ini_parse(struct cr_ini *ini);

/* Reads a whole file (at most cap bytes) into a NUL-terminated heap buffer. On failure adds
 * "PATH: reason" to errors and returns a negative errno. */
int cr_ini_load(const char *path, size_t cap, char **buf, size_t *len, struct cr_errlist *errors);

/* Reads all of fd (at most cap bytes) the same way; name is used in messages. */
int cr_ini_load_fd(int fd, const char *name, size_t cap, char **buf, size_t *len,
                   struct cr_errlist *errors);

#endif
