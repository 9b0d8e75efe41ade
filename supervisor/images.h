/* `supervisor -c FILE images [--prune]` and `volumes [--prune]` (images.c). */
#ifndef CORRAL_IMAGES_H
#define CORRAL_IMAGES_H

#include <stdbool.h>

#include "config/config.h"

/* Prints the images of cfg's services and the store's layers; prune removes the layers none
 * of them uses. Returns the exit status. */
int sv_images(const struct cr_config *cfg, bool prune);
/* `volumes [--prune]`: the store's named volumes, their sizes and the services using them;
 * prune removes those none of cfg's services names. */
int sv_volumes(const struct cr_config *cfg, bool prune);

#endif
