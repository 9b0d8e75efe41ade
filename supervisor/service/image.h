/* A service's image layers, unpacked off the loop before its container starts (image.c). */
#ifndef CORRAL_SERVICE_IMAGE_H
#define CORRAL_SERVICE_IMAGE_H

#include <stdbool.h>

#include "service/service.h"

struct cr_svcs;
/* For a pending start: true while its image's layers are being unpacked (a job is queued the
 * first time; ended(all) is called when it ends: the start pass, order.c's, runs again).
 * False when there is no image, every layer is there, or the last unpack ended (its error,
 * if any, in image_err). */
bool cr_svc_image_wait(struct cr_svcs *all, struct cr_svc *svc,
                       void (*ended)(struct cr_svcs *all));
/* The service is freed: a running job forgets it. */
void cr_svc_image_forget(struct cr_svc *svc);

#endif
