/* supervisord's [fcgi-program:x]: the listening socket every process of one program gets as
 * its stdin (fcgi.c). Made at the first start of any of them, kept for the supervisor's life
 * (a process that exits leaves it listening for the next); closed, and a unix one's file
 * removed, by cr_fcgi_close_all() at the exit. */
#ifndef CORRAL_SERVICE_FCGI_H
#define CORRAL_SERVICE_FCGI_H

#include <stddef.h>

struct cr_service;
/* The socket of conf's program (conf->fcgi), made now if it is not yet: an fd the caller
 * must not close, or a negative errno with err. */
int cr_fcgi_socket(const struct cr_service *conf, char *err, size_t errlen);
void cr_fcgi_close_all(void);

#endif
