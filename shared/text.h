/* Text from a container (sd_notify STATUS=, setup and exec failure reasons, what a service
 * logged before it exited) made safe for an administrator's terminal: every control byte
 * (0x00-0x1f and 0x7f; an escape sequence could retitle, clear or rewrite the terminal) is
 * written as the four visible characters \xHH, e.g. ESC as \x1b. Bytes from 0x80 up pass (UTF-8
 * text stays readable). svctl's text output and the supervisor's log lines about services use
 * it; --json escapes by its own rules. */
#ifndef CORRAL_TEXT_H
#define CORRAL_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Writes src into dst (cap > 0; always NUL-terminated, cut only at a whole escape) with
 * control bytes escaped; '\n' passes when keep_nl. Returns the length written. */
size_t cr_text_escape(char *dst, size_t cap, const char *src, bool keep_nl);
/* True when src holds a byte cr_text_escape would change. */
bool cr_text_needs_escape(const char *src, bool keep_nl);
/* A hex digit's value (either case), -1 for any other byte. */
int cr_hexval(char c);
/* FNV-1a (32 bits) of the n bytes at s: names to numbers (hash tables, stable addresses). */
uint32_t cr_fnv1a(const char *s, size_t n);

#endif
