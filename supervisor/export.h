/* `supervisor -c FILE export oci NAME DIR[:TAG]` and `export kube [NAME...]` (export.c). */
#ifndef CORRAL_EXPORT_H
#define CORRAL_EXPORT_H

#include "config/config.h"

/* args: what follows "export" on the command line. Returns the exit status (2: usage). */
int sv_export(const struct cr_config *cfg, int argc, char **argv);

#endif
