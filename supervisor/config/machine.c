/* The checks that need the machine, and the spec they produce: the rootfs, the command inside
 * it, users and groups, bind sources, environment_file, and whether this machine's cgroup
 * controllers can enforce each limit.
 *
 * Users and groups are resolved here, by the supervisor, from the container's own
 * /etc/passwd and /etc/group (the rootfs's, or the host's when there is no rootfs), never
 * through the host's NSS: "www-data" must mean what it means inside the image, and init, a
 * static binary in a half-built container, should not parse files or load NSS modules. The
 * spec carries only numbers. Files inside the rootfs are opened with openat2(RESOLVE_IN_ROOT),
 * so absolute symlinks (busybox applets: /bin/sh -> /bin/busybox) resolve as they will in
 * the container and can never escape to the host. */
#include "config/config.h"
#include "image/image.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

struct ctx {
    struct cr_service *svc;
    struct cr_errlist *errors;
    const char *here;
    const char *rootname;        /* the rootfs as the user wrote it, for messages */
    int rootfd;                  /* -1 when the root could not be opened */
    struct root_fd *root;        /* rootfd's entry in roots (not closed here), or NULL */
    struct cr_roots *roots;      /* NULL: nothing shared, every look done again */
    bool checks;
};

/* ---- what services sharing a root share (config.h: cr_roots) ------------------------------ */

#define ROOTS_MAX 64             /* distinct roots remembered; more are looked at each time */

struct root_path {               /* a rootfs as written */
    char *as_written, *real;     /* real: NULL when realpath() failed */
    bool stat_done, is_dir;
    int stat_errno;              /* 0, or why stat() failed */
};

#define LOOKS_MAX 16             /* paths inside one root whose stat is remembered */

struct look {                    /* a path inside a root, stat'ed once per load */
    char *path;
    int err;                     /* 0, or why the stat failed */
    struct stat st;
};

struct root_fd {                 /* an opened root, by its real path */
    char *path;
    int fd;
    bool passwd_read, group_read;
    char *passwd, *group;        /* NULL: absent */
    struct look *looks;          /* LOOKS_MAX, on the first stat */
    size_t nlooks;
};

struct cr_roots {
    struct root_path paths[ROOTS_MAX];
    struct root_fd fds[ROOTS_MAX];
    size_t npaths, nfds;
    char *specbuf;               /* CR_SPEC_MAX + 1 bytes for check_spec_fits */
};

struct cr_roots *cr_roots_new(void)
{
    return calloc(1, sizeof(struct cr_roots));
}

void cr_roots_free(struct cr_roots *roots)
{
    if (!roots)
        return;
    for (size_t i = 0; i < roots->npaths; i++) {
        free(roots->paths[i].as_written);
        free(roots->paths[i].real);
    }
    for (size_t i = 0; i < roots->nfds; i++) {
        close(roots->fds[i].fd);
        free(roots->fds[i].path);
        free(roots->fds[i].passwd);
        free(roots->fds[i].group);
        for (size_t k = 0; k < roots->fds[i].nlooks; k++)
            free(roots->fds[i].looks[k].path);
        free(roots->fds[i].looks);
    }
    free(roots->specbuf);
    free(roots);
}

/* The rootfs's entry, made (stat when checking, realpath) on its first use; NULL when not
 * kept (no roots, full, out of memory): the caller looks itself. */
static struct root_path *root_path(struct cr_roots *roots, const char *rootfs, bool checks)
{
    if (!roots)
        return NULL;
    struct root_path *e = NULL;
    for (size_t i = 0; i < roots->npaths && !e; i++)
        if (!strcmp(roots->paths[i].as_written, rootfs))
            e = &roots->paths[i];
    if (!e) {
        if (roots->npaths == ROOTS_MAX)
            return NULL;
        char real[PATH_MAX];
        e = &roots->paths[roots->npaths];
        *e = (struct root_path){.as_written = strdup(rootfs)};
        if (!e->as_written)
            return NULL;
        if (realpath(rootfs, real) && !(e->real = strdup(real))) {
            free(e->as_written);
            return NULL;
        }
        roots->npaths++;
    }
    if (checks && !e->stat_done) {
        struct stat st;
        e->stat_errno = stat(rootfs, &st) < 0 ? errno : 0;
        e->is_dir = !e->stat_errno && S_ISDIR(st.st_mode);
        e->stat_done = true;
    }
    return e;
}

/* An O_PATH fd on the root (the real path), kept open for the load; its entry in *out. */
static int root_open(struct cr_roots *roots, const char *path, struct root_fd **out)
{
    *out = NULL;
    for (size_t i = 0; roots && i < roots->nfds; i++)
        if (!strcmp(roots->fds[i].path, path)) {
            *out = &roots->fds[i];
            return roots->fds[i].fd;
        }
    int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || !roots || roots->nfds == ROOTS_MAX)
        return fd;
    struct root_fd *e = &roots->fds[roots->nfds];
    *e = (struct root_fd){.path = strdup(path), .fd = fd};
    if (!e->path)
        return fd;
    roots->nfds++;
    *out = e;
    return fd;
}

/* Opens path (absolute, inside the container) below rootfd as chroot would see it. */
static int open_in_root(int rootfd, const char *path, int flags)
{
    struct open_how how = {.flags = (uint64_t)(flags | O_CLOEXEC), .resolve = RESOLVE_IN_ROOT};
    while (*path == '/')
        path++;
    if (!*path)
        path = ".";
    long fd = syscall(SYS_openat2, rootfd, path, &how, sizeof how);
    if (fd < 0 && errno == ENOSYS)
        fd = openat(rootfd, path, flags | O_CLOEXEC);   /* before Linux 5.6: best effort */
    return (int)fd;
}

/* Reads a small file inside the root; NULL if absent. */
static char *read_in_root(int rootfd, const char *path)
{
    int fd = open_in_root(rootfd, path, O_RDONLY);
    if (fd < 0)
        return NULL;
    char *buf;
    size_t len;
    struct cr_errlist ignore = {0};
    int r = cr_ini_load_fd(fd, path, 4 << 20, &buf, &len, &ignore);
    cr_errlist_free(&ignore);
    close(fd);
    return r < 0 ? NULL : buf;
}

/* Field i (0-based, ':'-separated) of line, copied to out. */
static bool field(const char *line, int i, char *out, size_t len)
{
    for (; i > 0; i--) {
        line = strchr(line, ':');
        if (!line)
            return false;
        line++;
    }
    size_t n = strcspn(line, ":\n");
    if (n >= len)
        return false;
    memcpy(out, line, n);
    out[n] = '\0';
    return true;
}

static bool is_number(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return false;
    return true;
}

/* Finds the line of an /etc/passwd or /etc/group text whose name (field 0) is key, or
 * whose id (field 2) is key when by_id. Returns a pointer to the line or NULL. */
static const char *db_find(const char *db, const char *key, bool by_id)
{
    char f[256];
    for (const char *line = db; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
        if (*line == '#' || *line == '\n')
            continue;
        if (field(line, by_id ? 2 : 0, f, sizeof f) && !strcmp(f, key))
            return line;
    }
    return NULL;
}

/* An id the spec can carry: plain digits, at most 4294967294 ((uid_t)-1 means "no id" to
 * setresuid and chown, and 2^32 cast to a gid was 0: root's group). */
static bool id_value(const char *s, unsigned *out)
{
    return is_number(s) && cr_parse_uint(s, 0xFFFFFFFEu, out) == 0;
}

/* The numeric gid of name (a number, or a group of the rootfs's /etc/group) as text in f, or
 * NULL after reporting at file:line of key what is wrong. A name is looked up only with the
 * machine checks on; without them NULL, silently. */
static const char *group_id(struct ctx *c, const char *group, const char *name,
                            const char *where, int key, int line, char *f, size_t flen)
{
    unsigned id;
    const char *gid = NULL;
    if (is_number(name)) {
        gid = name;
    } else if (c->checks) {
        const char *gr = group ? db_find(group, name, false) : NULL;
        if (!gr || !field(gr, 2, f, flen) || !is_number(f)) {
            cr_errlist_add(c->errors, "%s:%d: %s: no group '%s' in %s", c->svc->file, line,
                           cr_keys[key].name, name, where);
            return NULL;
        }
        gid = f;
    }
    if (gid && !id_value(gid, &id)) {
        if (gid == name)
            cr_errlist_add(c->errors, "%s:%d: %s: '%s' is too large a gid (at most 4294967294)",
                           c->svc->file, line, cr_keys[key].name, name);
        else
            cr_errlist_add(c->errors, "%s:%d: %s: group '%s' in %s has gid %s, above "
                           "4294967294", c->svc->file, line, cr_keys[key].name, name, where, gid);
        return NULL;
    }
    return gid;
}

/* A small file of the container's root: the rootfs's, or the image's (its layers, unpacked
 * or not); NULL if absent. */
static char *root_file(struct ctx *c, const char *path)
{
    if (c->rootfd >= 0 && c->root) {
        /* read once per load for every service in this root */
        bool pw = !strcmp(path, "/etc/passwd");
        bool *done = pw ? &c->root->passwd_read : &c->root->group_read;
        char **text = pw ? &c->root->passwd : &c->root->group;
        if (!*done) {
            *text = read_in_root(c->rootfd, path);
            *done = true;
        }
        return *text ? strdup(*text) : NULL;
    }
    if (c->rootfd >= 0)
        return read_in_root(c->rootfd, path);
    if (!c->svc->img || !c->checks)
        return NULL;
    char *buf = NULL;
    size_t len;
    return cr_image_read_file(c->svc->img, c->svc->image_store, path + 1, &buf, &len) == 0
               ? buf : NULL;
}

static void resolve_identity(struct ctx *c, char *home, size_t homelen)
{
    struct cr_service *svc = c->svc;
    struct cr_spec *sp = &svc->spec;
    char *passwd = root_file(c, "/etc/passwd");
    char *group = root_file(c, "/etc/group");
    /* the file named in an error */
    char where[PATH_MAX + 32];
    const char *root = strcmp(c->rootname, "/") ? c->rootname : "";
    snprintf(where, sizeof where, "%s/etc/passwd", root);
    char f[256], uname[256] = "root";
    const char *pw;
    unsigned id = 0;
    snprintf(home, homelen, "/");

    if (!svc->user) {
        sp->uid = 0;
        sp->gid = 0;
        if ((pw = passwd ? db_find(passwd, "0", true) : NULL)) {
            field(pw, 0, uname, sizeof uname);
            field(pw, 5, home, homelen);
        }
    } else if (is_number(svc->user)) {
        if (!id_value(svc->user, &id))
            cr_service_error(c->errors, svc, CR_K_USER, "'%s' is too large a uid (at most "
                             "4294967294)", svc->user);
        sp->uid = (uid_t)id;
        sp->gid = (gid_t)id;    /* no passwd entry: the group of the same number */
        uname[0] = '\0';
        if ((pw = passwd ? db_find(passwd, svc->user, true) : NULL)) {
            field(pw, 0, uname, sizeof uname);
            if (field(pw, 3, f, sizeof f) && is_number(f)) {
                if (!id_value(f, &id))
                    cr_service_error(c->errors, svc, CR_K_USER, "uid %s in %s has gid %s, "
                                     "above 4294967294", svc->user, where, f);
                sp->gid = (gid_t)id;
            }
            field(pw, 5, home, homelen);
        }
    } else if (c->checks) {
        pw = passwd ? db_find(passwd, svc->user, false) : NULL;
        char uid[32] = "", gid[32] = "";
        unsigned u, g;
        if (!pw || !field(pw, 2, uid, sizeof uid) || !field(pw, 3, gid, sizeof gid) ||
            !is_number(uid) || !is_number(gid)) {
            cr_service_error(c->errors, svc, CR_K_USER, "no user '%s' in %s", svc->user, where);
        } else if (!id_value(uid, &u) || !id_value(gid, &g)) {
            cr_service_error(c->errors, svc, CR_K_USER, "user '%s' in %s has uid %s and gid "
                             "%s: above 4294967294", svc->user, where, uid, gid);
        } else {
            snprintf(uname, sizeof uname, "%s", svc->user);
            sp->uid = (uid_t)u;
            sp->gid = (gid_t)g;
            field(pw, 5, home, homelen);
        }
    }
    if (!home[0])
        snprintf(home, homelen, "/");

    snprintf(where, sizeof where, "%s/etc/group", root);
    if (svc->group) {
        const char *gid = group_id(c, group, svc->group, where, CR_K_GROUP,
                                   svc->key_line[CR_K_GROUP], f, sizeof f);
        if (gid && id_value(gid, &id))
            sp->gid = (gid_t)id;
    }
    if (svc->key_line[CR_K_GROUPS]) {
        /* exactly the groups listed */
        for (size_t i = 0; i < svc->groups.n; i++) {
            const char *gid = group_id(c, group, svc->groups.v[i], where, CR_K_GROUPS,
                                       svc->groups.line[i], f, sizeof f);
            if (gid && id_value(gid, &id))
                cr_spec_add_group(sp, (gid_t)id);
        }
    } else if (group && uname[0]) {
        /* as initgroups(3): the primary group and every group listing the user */
        cr_spec_add_group(sp, sp->gid);
        for (const char *line = group; *line;) {
            char members[4096];
            if (field(line, 3, members, sizeof members) && field(line, 2, f, sizeof f) &&
                is_number(f)) {
                for (char *save = NULL, *m = strtok_r(members, ",", &save); m;
                     m = strtok_r(NULL, ",", &save)) {
                    if (strcmp(m, uname))
                        continue;
                    if (id_value(f, &id))
                        cr_spec_add_group(sp, (gid_t)id);
                    else
                        cr_service_error(c->errors, svc, CR_K_USER, "a group of '%s' in %s has "
                                         "gid %s, above 4294967294", uname, where, f);
                }
            }
            const char *nl = strchr(line, '\n');
            if (!nl)
                break;
            line = nl + 1;
        }
    }
    free(passwd);
    free(group);
}

/* A path relative to the config file's directory made absolute. Returns false when it did not
 * fit in len (it is then cut; callers that can see that check the lengths first). */
static bool host_path(const char *here, const char *p, char *out, size_t len)
{
    int n = p[0] == '/' ? snprintf(out, len, "%s", p) : snprintf(out, len, "%s/%s", here, p);
    return n >= 0 && (size_t)n < len;
}

static void read_env_file(struct ctx *c)
{
    struct cr_service *svc = c->svc;
    char path[PATH_MAX], *buf;
    size_t len;
    struct cr_errlist errs = {0};
    host_path(c->here, svc->environment_file, path, sizeof path);
    if (cr_ini_load(path, 1 << 20, &buf, &len, &errs) < 0) {
        for (size_t i = 0; i < errs.n; i++)
            cr_service_error(c->errors, svc, CR_K_ENVIRONMENT_FILE, "%s", errs.v[i]);
        cr_errlist_free(&errs);
        return;
    }
    int lineno = 0;
    for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        while (isspace((unsigned char)*line))
            line++;
        if (!*line || *line == '#')
            continue;
        if (!strncmp(line, "export ", 7))
            line += 7;
        char *eq = strchr(line, '=');
        size_t n = eq ? (size_t)(eq - line) : 0;
        bool ok = n > 0 && !isdigit((unsigned char)line[0]);
        for (size_t i = 0; i < n; i++)
            if (!isalnum((unsigned char)line[i]) && line[i] != '_')
                ok = false;
        if (!ok) {
            cr_service_error(c->errors, svc, CR_K_ENVIRONMENT_FILE, "%s:%d: expected NAME=value",
                             path, lineno);
            continue;
        }
        *eq = '\0';
        char *v = eq + 1;
        size_t vl = strlen(v);
        while (vl && isspace((unsigned char)v[vl - 1]))
            v[--vl] = '\0';
        if (vl >= 2 && (v[0] == '"' || v[0] == '\'') && v[vl - 1] == v[0]) {
            v[vl - 1] = '\0';
            v++;
        }
        cr_spec_set_env(&svc->spec, line, v);
    }
    free(buf);
}

/* Names of the supervisor's environment a program does not inherit: they speak of the
 * supervisor's own sockets and fds (systemd's notify socket and socket activation). */
static bool not_inherited(const char *item)
{
    /* systemd's words to the supervisor itself. The supervisor unsets the sd_notify ones once
     * it has read them, so the environment a reload sees lacks them: inherited, they made
     * every service's spec differ at the first reload under systemd (all restarted). */
    static const char *const names[] = {"NOTIFY_SOCKET=", "LISTEN_FDS=", "LISTEN_PID=",
                                        "LISTEN_FDNAMES=", "WATCHDOG_USEC=", "WATCHDOG_PID="};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strncmp(item, names[i], strlen(names[i])))
            return true;
    return false;
}

static void set_env_item(struct cr_spec *sp, char *item)
{
    char *eq = strchr(item, '=');
    if (!eq || eq == item)
        return;
    *eq = '\0';
    cr_spec_set_env(sp, item, eq + 1);
    *eq = '=';
}

/* supervisord's SUPERVISOR_SERVER_URL (what childutils.getRPCInterface reads): serverurl,
 * or with AUTO (or unset) the [unix_http_server]'s socket, else the [inet_http_server]'s
 * address (made in buf). NULL: none of them. */
static const char *server_url(const struct cr_service *svc, const struct cr_global *g,
                              char *buf, size_t len)
{
    if (svc->serverurl && strcasecmp(svc->serverurl, "AUTO"))
        return svc->serverurl;
    if (g && g->rpc_unix_file) {
        snprintf(buf, len, "unix://%s", g->rpc_unix_file);
        return buf;
    }
    if (!g || !g->rpc_inet_port)
        return NULL;
    const char *colon = strrchr(g->rpc_inet_port, ':');
    const char *port = colon ? colon + 1 : g->rpc_inet_port;
    int hl = colon ? (int)(colon - g->rpc_inet_port) : 0;
    if (!hl || (hl == 1 && g->rpc_inet_port[0] == '*'))
        snprintf(buf, len, "http://localhost:%s", port);
    else
        snprintf(buf, len, "http://%.*s:%s", hl, g->rpc_inet_port, port);
    return buf;
}

/* The environment: clean (PATH, HOME), or with inherit_environment supervisord's: the
 * supervisor's own, then [supervisord] environment, then SUPERVISOR_* (HOME is the user's
 * when user is set); then environment_file and environment. */
static void build_env(struct ctx *c, const struct cr_global *g, const char *home)
{
    struct cr_service *svc = c->svc;
    if (svc->inherit_environment) {
        for (char **e = environ; *e; e++)
            if (!not_inherited(*e)) {
                char *item = strdup(*e);
                if (!item) {
                    c->errors->oom = true;
                    break;
                }
                set_env_item(&svc->spec, item);
                free(item);
            }
        for (size_t i = 0; g && i < g->environment.n; i++)
            set_env_item(&svc->spec, g->environment.v[i]);
        cr_spec_set_env(&svc->spec, "SUPERVISOR_ENABLED", "1");
        char buf[PATH_MAX + 16];
        const char *url = server_url(svc, g, buf, sizeof buf);
        if (url)
            cr_spec_set_env(&svc->spec, "SUPERVISOR_SERVER_URL", url);
        cr_spec_set_env(&svc->spec, "SUPERVISOR_PROCESS_NAME", svc->name);
        cr_spec_set_env(&svc->spec, "SUPERVISOR_GROUP_NAME", svc->program);
        if (!cr_spec_get_env(&svc->spec, "PATH"))
            cr_spec_set_env(&svc->spec, "PATH", DEFAULT_PATH);
        if (svc->user || !cr_spec_get_env(&svc->spec, "HOME"))
            cr_spec_set_env(&svc->spec, "HOME", home);
    } else {
        cr_spec_set_env(&svc->spec, "PATH", DEFAULT_PATH);
        cr_spec_set_env(&svc->spec, "HOME", home);
    }
    /* an image's Env (as Docker: over the defaults, under environment_file and environment) */
    for (size_t i = 0; svc->img && svc->img->env && svc->img->env[i]; i++)
        set_env_item(&svc->spec, svc->img->env[i]);
    if (svc->environment_file)
        read_env_file(c);
    for (size_t i = 0; i < svc->environment.n; i++) {
        char *item = svc->environment.v[i], *eq = strchr(item, '=');
        *eq = '\0';
        cr_spec_set_env(&svc->spec, item, eq + 1);
        *eq = '=';
    }
}

/* True when map (uid_map text: "C H N" lines) gives container id a host id. */
static bool id_mapped(const char *map, unsigned long long id)
{
    unsigned long long c, h, n;
    int used;
    for (const char *p = map; p && *p; p += used)
        if (sscanf(p, "%llu %llu %llu\n%n", &c, &h, &n, &used) != 3)
            return false;
        else if (id >= c && id - c < n)
            return true;
    return false;
}

/* In a user namespace, the ids the workload switches to must be mapped, or setuid fails. */
static void check_ids_mapped(struct ctx *c)
{
    struct cr_service *svc = c->svc;
    const struct cr_spec *sp = &svc->spec;
    if (svc->userns_auto) {      /* ids 0-65535 are mapped */
        if (sp->uid > 65535)
            cr_service_error(c->errors, svc, CR_K_USER_NAMESPACE, "uid %lu (of user) is not "
                             "mapped (auto maps 0-65535)", (unsigned long)sp->uid);
        if (sp->gid > 65535)
            cr_service_error(c->errors, svc, CR_K_USER_NAMESPACE, "gid %lu (of group) is not "
                             "mapped (auto maps 0-65535)", (unsigned long)sp->gid);
        for (size_t i = 0; i < sp->ngroups; i++)
            if (sp->groups[i] > 65535)
                cr_service_error(c->errors, svc, CR_K_USER_NAMESPACE, "gid %lu (of groups) is "
                                 "not mapped (auto maps 0-65535)", (unsigned long)sp->groups[i]);
        return;
    }
    if (!svc->uid_map_text || !svc->gid_map_text)
        return;
    if (!id_mapped(svc->uid_map_text, sp->uid))
        cr_service_error(c->errors, svc, CR_K_UID_MAP, "uid %lu (of user) is not mapped",
                         (unsigned long)sp->uid);
    if (!id_mapped(svc->gid_map_text, sp->gid))
        cr_service_error(c->errors, svc, CR_K_GID_MAP, "gid %lu (of group) is not mapped",
                         (unsigned long)sp->gid);
    for (size_t i = 0; i < sp->ngroups; i++)
        if (!id_mapped(svc->gid_map_text, sp->groups[i]))
            cr_service_error(c->errors, svc, CR_K_GID_MAP, "gid %lu (of groups) is not mapped",
                             (unsigned long)sp->groups[i]);
}

static void build_mounts(struct ctx *c)
{
    struct cr_service *svc = c->svc;
    for (size_t i = 0; i < svc->bind.n; i++) {
        char *item = strdup(svc->bind.v[i]);
        int line = svc->bind.line[i];
        if (!item)
            continue;
        char *f[4] = {0};
        int nf = 0;
        for (char *save = NULL, *w = strtok_r(item, ":", &save); w && nf < 4;
             w = strtok_r(NULL, ":", &save))
            f[nf++] = w;
        bool ro = false, idmap = false;
        if (nf < 2 || nf > 3 || (nf == 3 && cr_bind_opts_parse(f[2], &ro, &idmap) < 0)) {
            cr_errlist_add(c->errors, "%s:%d: bind: '%s' is not SRC:DST[:OPTS] (OPTS: ro, rw, "
                           "idmap, ro,idmap)", svc->file, line, svc->bind.v[i]);
        } else if (idmap && !(svc->namespaces & CR_NS_USER)) {
            cr_errlist_add(c->errors, "%s:%d: bind: idmap needs a user namespace (user_namespace "
                           "= auto, or user in namespaces)", svc->file, line);
        } else if (f[1][0] != '/') {
            cr_errlist_add(c->errors, "%s:%d: bind: destination '%s' is not an absolute path",
                           svc->file, line, f[1]);
        } else if (strlen(c->here) + strlen(f[0]) + 1 >= PATH_MAX || strlen(f[1]) >= PATH_MAX) {
            /* src[] below would cut it, and init refuses paths of PATH_MAX bytes */
            cr_errlist_add(c->errors, "%s:%d: bind: a path longer than %d bytes", svc->file,
                           line, PATH_MAX - 1);
        } else {
            char src[PATH_MAX], real[PATH_MAX];
            struct stat st;
            host_path(c->here, f[0], src, sizeof src);
            if (c->checks && stat(src, &st) < 0)
                cr_errlist_add(c->errors, "%s:%d: bind: %s: %s", svc->file, line, src,
                               strerror(errno));
            else if (cr_spec_add_bind(&svc->spec, realpath(src, real) ? real : src, f[1], ro))
                c->errors->oom = true;
            else
                svc->spec.binds[svc->spec.nbinds - 1].idmap = idmap;
        }
        free(item);
    }
    if (cr_spec_nidmap(&svc->spec) > CR_IDMAP_MAX)
        cr_service_error(c->errors, svc, CR_K_BIND, "more than %d idmapped mounts (the rootfs "
                         "counts as one)", CR_IDMAP_MAX);
    for (size_t i = 0; i < svc->tmpfs.n; i++) {
        const char *item = svc->tmpfs.v[i];
        int line = svc->tmpfs.line[i];
        const char *colon = strchr(item, ':');
        char dst[PATH_MAX];
        int64_t size = 0;
        size_t dlen = colon ? (size_t)(colon - item) : strlen(item);
        snprintf(dst, sizeof dst, "%.*s", (int)(dlen < PATH_MAX ? dlen : 0), item);
        if (dlen >= PATH_MAX)
            cr_errlist_add(c->errors, "%s:%d: tmpfs: a path longer than %d bytes", svc->file,
                           line, PATH_MAX - 1);
        else if (dst[0] != '/')
            cr_errlist_add(c->errors, "%s:%d: tmpfs: '%s' is not an absolute path", svc->file,
                           line, dst);
        else if (colon && (cr_parse_size(colon + 1, &size) || size == INT64_MAX || size == 0))
            cr_errlist_add(c->errors, "%s:%d: tmpfs: size '%s' is not a size (64M)", svc->file,
                           line, colon + 1);
        else
            cr_spec_add_tmpfs(&svc->spec, dst, size);
    }
}

/* Stats path (inside the container): through a bind when one covers it, else in the root. */
static int stat_in_container(struct ctx *c, const char *path, struct stat *st)
{
    const struct cr_spec *sp = &c->svc->spec;
    size_t best = 0;
    const struct cr_bind *b = NULL;
    for (size_t i = 0; i < sp->nbinds; i++) {
        size_t n = strlen(sp->binds[i].dst);
        while (n > 1 && sp->binds[i].dst[n - 1] == '/')
            n--;
        if (!strncmp(path, sp->binds[i].dst, n) && (path[n] == '/' || path[n] == '\0') &&
            n > best) {
            best = n;
            b = &sp->binds[i];
        }
    }
    if (b) {
        char host[PATH_MAX * 2];
        snprintf(host, sizeof host, "%s%s", b->src, path + best);
        return stat(host, st);
    }
    if (c->rootfd < 0)
        return -1;
    struct root_fd *rt = c->root;
    for (size_t i = 0; rt && i < rt->nlooks; i++)
        if (!strcmp(rt->looks[i].path, path)) {   /* services sharing a root and a command */
            *st = rt->looks[i].st;
            errno = rt->looks[i].err;
            return errno ? -1 : 0;
        }
    int fd = open_in_root(c->rootfd, path, O_PATH);
    int r = fd < 0 ? -1 : fstat(fd, st);
    int err = r < 0 ? errno : 0;
    if (fd >= 0)
        close(fd);
    if (rt && !rt->looks)
        rt->looks = calloc(LOOKS_MAX, sizeof *rt->looks);
    if (rt && rt->looks && rt->nlooks < LOOKS_MAX &&
        (rt->looks[rt->nlooks].path = strdup(path))) {
        rt->looks[rt->nlooks].err = err;
        rt->looks[rt->nlooks].st = *st;
        rt->nlooks++;
    }
    errno = err;
    return r;
}

static const char *exec_problem(struct ctx *c, const char *path)
{
    struct stat st;
    if (stat_in_container(c, path, &st) < 0)
        return strerror(errno);
    if (!S_ISREG(st.st_mode))
        return S_ISDIR(st.st_mode) ? "is a directory" : "is not a regular file";
    if (!(st.st_mode & 0111))
        return "is not executable";
    return NULL;
}

static void resolve_command(struct ctx *c)
{
    struct cr_service *svc = c->svc;
    struct cr_spec *sp = &svc->spec;
    const char *arg0 = sp->argv[0], *why;
    char path[PATH_MAX], inside[PATH_MAX + 16];
    snprintf(inside, sizeof inside, "%s", strcmp(c->rootname, "/") ? c->rootname : "the host");
    if (strchr(arg0, '/')) {
        if (arg0[0] == '/')
            snprintf(path, sizeof path, "%s", arg0);
        else
            snprintf(path, sizeof path, "%s/%s", sp->directory ? sp->directory : "", arg0);
        if ((why = exec_problem(c, path)))
            cr_service_error(c->errors, svc, CR_K_COMMAND, "%s: %s (inside %s)", path, why,
                             inside);
        else
            sp->exec = strdup(path);
        return;
    }
    const char *search = cr_spec_get_env(sp, "PATH");
    char *dirs = strdup(search ? search : "");
    if (!dirs)
        return;
    for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        if (d[0] != '/')
            continue;                    /* a relative PATH entry means nothing here */
        snprintf(path, sizeof path, "%s%s%s", d, d[strlen(d) - 1] == '/' ? "" : "/", arg0);
        if (!exec_problem(c, path)) {
            sp->exec = strdup(path);
            break;
        }
    }
    if (!sp->exec)
        cr_service_error(c->errors, svc, CR_K_COMMAND, "'%s' not found in PATH (%s) inside %s",
                         arg0, search ? search : "", inside);
    free(dirs);
}

static void check_cgroups(struct ctx *c, const struct cr_cgroup_caps *caps)
{
    struct cr_service *svc = c->svc;
    static const struct { int key; size_t cap; const char *controller; } need[] = {
        {CR_K_MEMORY_MAX, offsetof(struct cr_cgroup_caps, memory), "memory"},
        {CR_K_MEMORY_HIGH, offsetof(struct cr_cgroup_caps, memory_high), "memory"},
        {CR_K_MEMORY_SWAP_MAX, offsetof(struct cr_cgroup_caps, memory_swap), "memory"},
        {CR_K_CPU_MAX, offsetof(struct cr_cgroup_caps, cpu_max), "cpu"},
        {CR_K_CPU_WEIGHT, offsetof(struct cr_cgroup_caps, cpu_weight), "cpu"},
        {CR_K_PIDS_MAX, offsetof(struct cr_cgroup_caps, pids), "pids"},
        {CR_K_IO_WEIGHT, offsetof(struct cr_cgroup_caps, io_weight), "io"},
    };
    /* The default pids_max only where the pids controller is. */
    if (!svc->key_line[CR_K_PIDS_MAX] && !caps->pids)
        svc->pids_max = -1;
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++) {
        int k = need[i].key;
        if (!svc->key_line[k] || *(const bool *)((const char *)caps + need[i].cap))
            continue;
        if (caps->version == 0)
            cr_service_error(c->errors, svc, k, "no cgroups to enforce it: %s (in a "
                             "container, give it a writable /sys/fs/cgroup of its own: "
                             "--cgroupns=private on cgroup v2, podman's and Kubernetes' "
                             "default; or drop the key)",
                             caps->none_why[0] ? caps->none_why
                                               : "no cgroup hierarchy at " CR_CGROUP_MOUNT);
        else if (k == CR_K_MEMORY_SWAP_MAX && caps->memory && caps->version == 1)
            cr_service_error(c->errors, svc, k, "this machine's memory controller (cgroup v1) "
                             "has no swap accounting (no memory.memsw.*; boot with "
                             "swapaccount=1)");
        else if (k == CR_K_IO_WEIGHT && caps->version == 1)
            cr_service_error(c->errors, svc, k, "cgroup v1 here has neither blkio.weight nor "
                             "blkio.bfq.weight (the BFQ scheduler)");
        else
            cr_service_error(c->errors, svc, k, "the %s controller is not available on this "
                             "machine (cgroup v%d)", need[i].controller, caps->version);
    }
    /* v1 has no swap-only limit: memory.memsw.limit_in_bytes is memory + swap, written as
     * memory_max + memory_swap_max, so a swap limit needs a memory limit beside it. */
    if (caps->version == 1 && caps->memory_swap && svc->key_line[CR_K_MEMORY_SWAP_MAX] &&
        svc->memory_swap_max != INT64_MAX &&
        (!svc->key_line[CR_K_MEMORY_MAX] || svc->memory_max == INT64_MAX))
        cr_service_error(c->errors, svc, CR_K_MEMORY_SWAP_MAX, "cgroup v1 limits swap only "
                         "together with memory_max (memory.memsw.limit_in_bytes is memory + "
                         "swap): set memory_max too");
}

/* Reports key's value when init would refuse it in the spec: a path of PATH_MAX bytes or more,
 * an item over CR_SPEC_MAX_ITEM bytes. Returns true when it fits. */
static bool spec_value_fits(struct ctx *c, int key, const char *v, bool path)
{
    size_t n = v ? strlen(v) : 0;
    size_t max = path ? PATH_MAX - 1 : CR_SPEC_MAX_ITEM;
    if (n <= max)
        return true;
    cr_service_error(c->errors, c->svc, key, "%s of %zu bytes: init takes at most %zu",
                     path ? "a path" : "a value", n, max);
    return false;
}

static bool spec_list_fits(struct ctx *c, int key, char *const *v)
{
    for (size_t i = 0; v && v[i]; i++)
        if (!spec_value_fits(c, key, v[i], false))
            return false;
    return true;
}

/* Everything init would refuse, found here with the key that holds it: --check must accept
 * nothing that fails at start (a 4096-byte directory passed, and init rejected the spec). */
static void check_spec_fits(struct ctx *c)
{
    const struct cr_spec *sp = &c->svc->spec;
    bool ok = spec_value_fits(c, CR_K_ROOTFS, sp->rootfs, true);
    ok &= spec_value_fits(c, CR_K_DIRECTORY, sp->directory, true);
    ok &= spec_value_fits(c, CR_K_COMMAND, sp->exec, true);
    ok &= spec_list_fits(c, CR_K_COMMAND, sp->argv);
    ok &= spec_list_fits(c, CR_K_ENVIRONMENT, sp->env);
    ok &= spec_list_fits(c, CR_K_READY, sp->ready_argv);
    ok &= spec_list_fits(c, CR_K_HEALTH_CMD, sp->health_argv);
    if (!ok || !sp->argc)
        return;                  /* it would not write at all; the reason is reported */
    if (cr_spec_size_bound(sp) <= CR_SPEC_MAX)
        return;                  /* it fits: writing it cost ~14 % of a load's instructions */
    /* one buffer for the whole load: 64 kB allocated and freed per service went back to the
     * kernel (brk) and was faulted in again each time */
    char *buf = c->roots ? c->roots->specbuf : NULL;
    if (!buf)
        buf = malloc(CR_SPEC_MAX + 1);
    if (!buf) {
        c->errors->oom = true;
        return;
    }
    ssize_t n = cr_spec_write(sp, buf, CR_SPEC_MAX + 1);
    if (n == -ENOSPC)
        cr_service_error(c->errors, c->svc, -1, "the spec init receives would be larger than "
                         "%d bytes (environment, binds, command)", CR_SPEC_MAX);
    if (c->roots)
        c->roots->specbuf = buf;
    else
        free(buf);
}

void cr_service_resolve(struct cr_service *svc, const char *here,
                        const struct cr_config_opts *opts, const struct cr_cgroup_caps *caps,
                        const struct cr_global *g, struct cr_roots *roots,
                        struct cr_errlist *errors)
{
    struct cr_spec *sp = &svc->spec;
    struct ctx c = {.svc = svc, .errors = errors, .here = here, .rootname = "/", .rootfd = -1,
                    .roots = roots, .checks = !opts->no_machine_checks};
    char real[PATH_MAX], home[PATH_MAX];
    bool root_ok = true;

    sp->name = strdup(svc->name);
    sp->namespaces = svc->namespaces;
    if (svc->namespaces & CR_NS_UTS)
        sp->hostname = strdup(svc->hostname ? svc->hostname : svc->name);
    if (svc->image) {
        /* The layers may not be unpacked yet: no command check (init searches PATH), users
         * from the topmost unpacked layer with an /etc/passwd. */
        c.rootname = svc->image;
        c.rootfd = cr_service_image_root(svc, errors);
        root_ok = false;
    } else if (svc->key_line[CR_K_ROOTFS] && !svc->rootfs) {
        root_ok = false;         /* its value was refused: nothing to look into */
        c.rootname = "(invalid rootfs)";
    } else if (svc->rootfs) {
        struct stat st;
        c.rootname = svc->rootfs;
        struct root_path *rp = root_path(roots, svc->rootfs, c.checks);
        int st_errno = rp ? rp->stat_errno : 0;
        bool is_dir = rp ? rp->is_dir : false;
        if (c.checks && !rp) {
            st_errno = stat(svc->rootfs, &st) < 0 ? errno : 0;
            is_dir = !st_errno && S_ISDIR(st.st_mode);
        }
        if (c.checks && st_errno) {
            cr_service_error(errors, svc, CR_K_ROOTFS, "%s: %s", svc->rootfs, strerror(st_errno));
            root_ok = false;
        } else if (c.checks && !is_dir) {
            cr_service_error(errors, svc, CR_K_ROOTFS, "%s: not a directory", svc->rootfs);
            root_ok = false;
        }
        const char *rreal = rp ? rp->real : realpath(svc->rootfs, real) ? real : NULL;
        sp->rootfs = strdup(rreal ? rreal : svc->rootfs);
        /* Its files keep their owners inside (root's are root's), as without a user
         * namespace; the host's own / (no rootfs) is never idmapped. */
        sp->rootfs_idmap = svc->userns_auto && sp->rootfs && strcmp(sp->rootfs, "/");
        if (sp->rootfs)
            c.rootname = sp->rootfs;
        sp->read_only = svc->read_only;
    } else if (svc->namespaces & CR_NS_MOUNT) {
        /* no rootfs: the host's / bound read-only, so host binaries run isolated */
        sp->rootfs = strdup("/");
        sp->read_only = true;
    }
    if (c.checks && root_ok)
        c.rootfd = root_open(roots, sp->rootfs ? sp->rootfs : "/", &c.root);
    if (svc->directory)
        sp->directory = strdup(svc->directory);
    sp->umask = svc->umask;

    build_mounts(&c);
    cr_service_volumes(svc, errors);
    resolve_identity(&c, home, sizeof home);
    check_ids_mapped(&c);
    build_env(&c, g, home);
    if (sp->argc && c.checks && c.rootfd >= 0 && !svc->image)
        resolve_command(&c);
    if (c.checks)
        check_cgroups(&c, caps);

    sp->autorestart = svc->autorestart;
    sp->exitcodes = svc->exitcodes;
    sp->startsecs_ms = svc->startsecs;
    sp->startretries = (unsigned)svc->startretries;
    sp->restart_delay_ms = svc->restart_delay;
    sp->restart_delay_max_ms = svc->restart_delay_max;
    sp->restart_reset_after_ms = svc->restart_reset_after;
    sp->max_restarts = (unsigned)svc->max_restarts;
    sp->restart_window_ms = svc->restart_window;
    sp->stopsignal = svc->stopsignal;
    sp->stopwait_ms = svc->stopwaitsecs;
    check_spec_fits(&c);
    if (c.rootfd >= 0 && !c.root)
        close(c.rootfd);
}
