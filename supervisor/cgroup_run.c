/* The cgroup root as `supervisor run` opens it: no sweep, no move (cgroup_run.h). */
#include "cgroup_run.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgroup_int.h"

int cr_cg_root_open_shared(const char *mount, const char *root, struct cr_cg_root **out,
                           char *err, size_t errlen)
{
    *out = NULL;
    if (!mount)
        mount = CR_CGROUP_MOUNT;
    if (!root || !*root || *root == '/' || strstr(root, "..") || strlen(root) > 200) {
        snprintf(err, errlen, "cgroup root '%s' is not a relative path", root ? root : "");
        return -EINVAL;
    }
    struct cr_cg_root *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    cr_cgroup_probe(mount, &r->caps);
    r->version = r->caps.version;
    snprintf(r->root, sizeof r->root, "%s", root);
    snprintf(r->mount, sizeof r->mount, "%s", mount);
    int rc;
    if (r->version == 2)
        rc = cg2_root_prepare(r, err, errlen);
    else if (r->version == 1)
        rc = cg1_root_prepare(r, err, errlen);
    else {
        snprintf(err, errlen, "%s: no cgroup hierarchy found", mount);
        rc = -ENOENT;
    }
    /* v2 enables the controllers for <root>'s children here; v1 does nothing more. */
    if (rc == 0)
        rc = r->version == 2 ? cg2_root_enter(r, false, err, errlen)
                             : cg1_root_enter(r, false, err, errlen);
    if (rc < 0) {
        free(r);
        return rc;
    }
    *out = r;
    return 0;
}
