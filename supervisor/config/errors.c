/* The one shape of a service's configuration error: "FILE:LINE: key: what is wrong". Used by
 * the loader and the machine checks alike. */
#include <stdarg.h>
#include <stdio.h>

#include "config/config.h"

void cr_service_error(struct cr_errlist *errors, const struct cr_service *svc, int key,
                      const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (key >= 0 && svc->key_line[key])
        cr_errlist_add(errors, "%s:%d: %s: %s", svc->file, svc->key_line[key],
                       cr_keys[key].name, text);
    else if (key >= 0)
        cr_errlist_add(errors, "%s:%d: [%s]: %s (default): %s", svc->file, svc->line,
                       svc->section, cr_keys[key].name, text);
    else
        cr_errlist_add(errors, "%s:%d: [%s]: %s", svc->file, svc->line, svc->section, text);
}
