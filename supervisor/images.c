/* `supervisor -c FILE images [--prune]`: the image store as FILE sees it — each image of its
 * services with its layers, then every layer in the store with its size and the services
 * using it; --prune removes the layers none of FILE's services uses. */
#include "images.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "image/image.h"

static void human(int64_t b, char *out, size_t len)
{
    if (b < 0)
        snprintf(out, len, "-");
    else if (b < 1024 * 1024)
        snprintf(out, len, "%.1f KB", (double)b / 1024);
    else
        snprintf(out, len, "%.1f MB", (double)b / (1024 * 1024));
}

/* The services of cfg whose image has the layer of this hex digest, comma-separated. */
static void users_of(const struct cr_config *cfg, const char *hex, char *out, size_t len)
{
    size_t n = 0;
    out[0] = 0;
    for (size_t i = 0; i < cfg->nservices; i++) {
        const struct cr_image *img = cfg->services[i].img;
        for (size_t k = 0; img && k < img->nlayers; k++)
            if (!strcmp(img->layers[k].digest + 7, hex)) {
                n += (size_t)snprintf(out + n, n < len ? len - n : 0, "%s%s", n ? ", " : "",
                                      cfg->services[i].name);
                break;
            }
    }
}

int sv_images(const struct cr_config *cfg, bool prune)
{
    const char *store = cfg->global.image_store;
    char size[32], dir[4400], users[1024];
    /* The images, once each (services sharing one are listed together). */
    for (size_t i = 0; i < cfg->nservices; i++) {
        const struct cr_service *s = &cfg->services[i];
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = cfg->services[j].image && s->image && !strcmp(cfg->services[j].image, s->image);
        if (!s->img || !s->image || seen)
            continue;
        size_t n = 0;
        users[0] = 0;
        for (size_t j = i; j < cfg->nservices; j++)
            if (cfg->services[j].image && !strcmp(cfg->services[j].image, s->image))
                n += (size_t)snprintf(users + n, n < sizeof users ? sizeof users - n : 0, "%s%s",
                                      n ? ", " : "", cfg->services[j].name);
        printf("image %s (config %.19s…, %zu layer%s), used by %s\n", s->image,
               s->img->config_digest, s->img->nlayers, s->img->nlayers == 1 ? "" : "s", users);
        for (size_t k = 0; k < s->img->nlayers; k++) {
            const struct cr_image_layer *l = &s->img->layers[k];
            human(l->size, size, sizeof size);
            printf("  %s  blob %s, %s\n", l->digest, size,
                   cr_image_layer_present(store, l) ? "unpacked" : "not unpacked");
        }
    }
    snprintf(dir, sizeof dir, "%s/layers/sha256", store);
    DIR *d = opendir(dir);
    if (!d) {
        printf("store %s: no layers%s%s\n", store, errno == ENOENT ? "" : ": ",
               errno == ENOENT ? "" : strerror(errno));
        return errno == ENOENT ? 0 : 1;
    }
    printf("%-71s %10s  %s\n", "LAYER (in the store)", "SIZE", "USED BY");
    struct dirent *e;
    int64_t total = 0, freed = 0;
    size_t nl = 0, nfree = 0;
    int rc = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || strlen(e->d_name) != 64)
            continue;               /* ., .., and unpacks under way (.tmp-*) */
        char path[4800];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        int64_t b = cr_image_tree_size(path);
        users_of(cfg, e->d_name, users, sizeof users);
        human(b, size, sizeof size);
        printf("sha256:%s %10s  %s", e->d_name, size, users[0] ? users : "-");
        nl++;
        total += b > 0 ? b : 0;
        if (prune && !users[0]) {
            int r = cr_image_rmtree(path);
            printf("%s", r < 0 ? "  (prune failed: " : "  (removed)");
            if (r < 0) {
                printf("%s)", strerror(-r));
                rc = 1;
            } else {
                nfree++;
                freed += b > 0 ? b : 0;
            }
        }
        printf("\n");
    }
    closedir(d);
    human(total, size, sizeof size);
    /* Container dirs a supervisor renamed to remove (service/container.c) and never did
     * (it was killed meanwhile): .gone-NAME-PID-N whose PID is gone. */
    size_t ngone = 0;
    snprintf(dir, sizeof dir, "%s/containers", store);
    if (prune && (d = opendir(dir))) {
        while ((e = readdir(d))) {
            const char *dash = strncmp(e->d_name, ".gone-", 6) ? NULL : strrchr(e->d_name, '-');
            const char *p = dash;
            while (p && p > e->d_name + 6 && p[-1] != '-')
                p--;
            long pid = p && p > e->d_name + 6 ? strtol(p, NULL, 10) : 0;
            if (pid <= 0 || (kill((pid_t)pid, 0) == 0 || errno == EPERM))
                continue;
            char path[4800];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            if (cr_image_rmtree(path) == 0)
                ngone++;
        }
        closedir(d);
    }
    printf("store %s: %zu layer%s, %s", store, nl, nl == 1 ? "" : "s", size);
    if (ngone)
        printf("; removed %zu container dir%s left by a killed supervisor", ngone,
               ngone == 1 ? "" : "s");
    if (prune) {
        human(freed, size, sizeof size);
        printf("; removed %zu unused (%s)", nfree, size);
    }
    printf("\n");
    return rc;
}

int sv_volumes(const struct cr_config *cfg, bool prune)
{
    const char *store = cfg->global.image_store;
    char dir[4400], size[32], users[1024];
    snprintf(dir, sizeof dir, "%s/volumes", store);
    DIR *d = opendir(dir);
    if (!d) {
        printf("store %s: no volumes%s%s\n", store, errno == ENOENT ? "" : ": ",
               errno == ENOENT ? "" : strerror(errno));
        return errno == ENOENT ? 0 : 1;
    }
    printf("%-40s %10s  %s\n", "VOLUME", "SIZE", "USED BY (at)");
    struct dirent *e;
    int rc = 0;
    size_t nv = 0, nfree = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;               /* ., .., and volumes being made (.tmp-*) */
        size_t n = 0;
        users[0] = 0;
        for (size_t i = 0; i < cfg->nservices; i++)
            for (size_t k = 0; k < cfg->services[i].volume.n; k++) {
                const char *item = cfg->services[i].volume.v[k];
                char name[128];
                cr_volume_name(item, name, sizeof name);
                if (strcmp(name, e->d_name))
                    continue;
                const char *at = item + strlen(name) + (item[strlen(name)] == ':');
                n += (size_t)snprintf(users + n, n < sizeof users ? sizeof users - n : 0,
                                      "%s%s (%s)", n ? ", " : "", cfg->services[i].name, at);
            }
        char path[4800];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        human(cr_image_tree_size(path), size, sizeof size);
        printf("%-40s %10s  %s", e->d_name, size, users[0] ? users : "-");
        nv++;
        if (prune && !users[0]) {
            int r = cr_image_rmtree(path);
            char ids[4900];
            snprintf(ids, sizeof ids, "%s/.%s.ids", dir, e->d_name);
            if (r == 0)
                unlink(ids);     /* whose ids its files had (image/volume.c) */
            printf("%s%s%s", r < 0 ? "  (prune failed: " : "  (removed)",
                   r < 0 ? strerror(-r) : "", r < 0 ? ")" : "");
            rc |= r < 0;
            nfree += r == 0;
        }
        printf("\n");
    }
    closedir(d);
    printf("store %s: %zu volume%s", store, nv, nv == 1 ? "" : "s");
    if (prune)
        printf("; removed %zu unused", nfree);
    printf("\n");
    return rc;
}
