/* supervisord's [fcgi-program:x]: the listening socket every process of one program gets as
 * its stdin (fcgi.c). Made at the first start of any of them, kept while the program is in
 * the config with the same socket (a process that exits leaves it listening for the next);
 * closed, and a unix one's file removed, when a reload removes the program or changes its
 * socket (cr_fcgi_keep_only), and by cr_fcgi_close_all() at the exit. */
#ifndef CORRAL_SERVICE_FCGI_H
#define CORRAL_SERVICE_FCGI_H

#include <stddef.h>

struct cr_service;
/* The socket of conf's program (conf->fcgi), made now if it is not yet: an fd the caller
 * must not close, or a negative errno with err. */
int cr_fcgi_socket(const struct cr_service *conf, char *err, size_t errlen);
/* After a reload: closes the sockets no [fcgi-program:x] of services[0..n) has any more (their
 * running processes keep their own copy until they stop). Returns how many were closed. */
size_t cr_fcgi_keep_only(const struct cr_service *services, size_t n);
void cr_fcgi_close_all(void);

#endif
