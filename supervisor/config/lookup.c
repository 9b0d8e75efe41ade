/* Finding a service in a loaded config (config.h): the loader's dependency checks, the
 * networks' and everyone above use these two. */
#include <string.h>

#include "config/config.h"

const struct cr_service *cr_config_find(const struct cr_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nservices; i++)
        if (cfg->services[i].name && !strcmp(cfg->services[i].name, name))
            return &cfg->services[i];
    return NULL;
}

bool cr_service_matches(const struct cr_service *svc, const char *name)
{
    return (svc->name && !strcmp(svc->name, name)) ||
           (svc->program && !strcmp(svc->program, name));
}
