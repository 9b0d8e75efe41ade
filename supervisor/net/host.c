/* The host side of networking; see host.h. */
#include "net/host.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <dirent.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "net/netlink.h"
#include "net/nft.h"

#define STATE_END "end\n"     /* the state file's last line (state_replace) */
#define NAME_LEN 64
#define MAX_NETS 8
_Static_assert(2 * MAX_NETS <= CR_NL_ADDRS_MAX, "an address of each family on each network");

struct bridge {
    char net[NAME_LEN];
    char name[CR_IFNAME_MAX + 1];
    struct cr_cidr4 net4;
    struct cr_cidr6 net6;
    bool internal;
    bool adopted;                /* a `run`'s: the supervisor's bridge, used, never changed */
    int index;                   /* an adopted one's, as found (0: look it up) */
    bool dead;                   /* forgotten (cr_net_forget): a free slot; slots never move,
                                    attachments point at them */
};

struct lease {                   /* kept in the state file */
    char net[NAME_LEN], svc[NAME_LEN];
    uint32_t a4;
    uint8_t a6[16];
    bool has6;
};

struct subnet {                  /* an automatic subnet, kept in the state file */
    char net[NAME_LEN];
    struct cr_cidr4 c;
};

struct attach {
    char svc[NAME_LEN];
    size_t n;
    char veth[MAX_NETS][CR_IFNAME_MAX + 1];
    const struct bridge *br[MAX_NETS];   /* into n->br: never moved (MAX_BRIDGES) */
    struct lease ls[MAX_NETS];           /* copies */
    struct cr_port *port;                /* published (malloc'd), at ls[pnet]'s address */
    size_t nport, pnet;
    bool release;                        /* gone from the config: its leases go with it */
};

#define MAX_BRIDGES 64

struct cr_net {
    char root[256], run_dir[PATH_MAX], dir[PATH_MAX + 300], prefix[CR_IFNAME_MAX + 1],
        table[300];
    struct cr_nl nl;
    struct cr_nft *nft;
    bool forward_ours;           /* we set net.ipv4.ip_forward to 1: give back 0 at close */
    bool forward_held;           /* we hold it at 1 (forward_hold): one of the host's holders */
    char holder[96];             /* our name among them (holder_self), made at the start */
    bool table_made;             /* our nftables table exists */
    char (*left)[CR_IFNAME_MAX + 1];  /* bridges a killed supervisor left (from the state) */
    size_t nleft;
    struct bridge br[MAX_BRIDGES];
    size_t nbr;
    struct lease *ls;
    size_t nls, capls;
    struct subnet *sub;
    size_t nsub;
    struct attach *at;
    size_t nat;
    struct cr_net_job *jobs;     /* attachments under way (cr_net_prepare .. cr_net_finish) */
    uint32_t gen;                /* veth names: see veth_name() */
    /* `supervisor run` (cr_net_open_run): a guest beside the supervisor of its root. Its
     * leases and files are named SVC.run-PID (tag); it edits the state file's lines of its
     * own and leaves the rest to that supervisor. */
    bool guest;
    char tag[24];
    int mark;                    /* a run's STATE/run-PID, flock'ed while it lives; or -1 */
    /* links that live runs made (from their marks): a supervisor's sweep leaves them */
    char (*kept)[CR_IFNAME_MAX + 1];
    size_t nkept;
};

/* ---- the state file: automatic subnets, addresses, whether ip_forward is ours ---------- */

/* The state file is shared with `supervisor run`s of the same root: each change is made
 * under an flock of STATE/lock (held for a file's read and write, never longer). */
static int state_lock(const struct cr_net *n)
{
    char path[sizeof n->dir + 16];
    snprintf(path, sizeof path, "%s/lock", n->dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    while (flock(fd, LOCK_EX) < 0 && errno == EINTR)
        ;
    return fd;
}

static void state_unlock(int fd)
{
    if (fd >= 0)
        close(fd);   /* releases the lock */
}

/* A run's lease ("SVC.run-PID"): its pid; 0 for a service's own. */
static pid_t run_pid(const char *svc)
{
    const char *p = strstr(svc, ".run-");
    return p ? (pid_t)atoi(p + 5) : 0;
}

static bool run_alive(const char *svc)
{
    pid_t p = run_pid(svc);
    return p > 0 && (kill(p, 0) == 0 || errno == EPERM);
}

/* "addr NET SVC A4 [A6]" into l; false if it is not one. */
static bool parse_addr(const char *line, struct lease *l)
{
    char net[NAME_LEN], svc[NAME_LEN], a4[64], a6[64] = "";
    struct in_addr in;
    if (sscanf(line, "addr %63s %63s %63s %63s", net, svc, a4, a6) < 3 ||
        inet_pton(AF_INET, a4, &in) != 1)
        return false;
    memset(l, 0, sizeof *l);
    snprintf(l->net, NAME_LEN, "%s", net);
    snprintf(l->svc, NAME_LEN, "%s", svc);
    l->a4 = ntohl(in.s_addr);
    l->has6 = *a6 && inet_pton(AF_INET6, a6, l->a6) == 1;
    return true;
}

static struct lease *lease_new(struct cr_net *n);

/* Under the lock: the runs' leases as the file has them now (those of live runs), and the
 * automatic subnets a run chose for networks we have not set up. Ours stay as they are. */
static void runs_refresh(struct cr_net *n)
{
    for (size_t i = 0; i < n->nls;)
        if (run_pid(n->ls[i].svc))
            n->ls[i] = n->ls[--n->nls];
        else
            i++;
    char path[sizeof n->dir + 16], line[512];
    snprintf(path, sizeof path, "%s/state", n->dir);
    FILE *f = fopen(path, "re");
    while (f && fgets(line, sizeof line, f) && strcmp(line, STATE_END)) {
        struct lease l;
        char a[16], net[NAME_LEN], c[64];
        if (parse_addr(line, &l)) {
            struct lease *v;
            if (run_pid(l.svc) && run_alive(l.svc) && (v = lease_new(n)))
                *v = l;
        } else if (sscanf(line, "%15s %63s %63s", a, net, c) == 3 && !strcmp(a, "subnet")) {
            bool known = false;
            for (size_t i = 0; i < n->nsub && !known; i++)
                known = !strcmp(n->sub[i].net, net);
            struct subnet *v = known ? NULL : realloc(n->sub, (n->nsub + 1) * sizeof *v);
            char e[128];
            if (v) {
                n->sub = v;
                snprintf(v[n->nsub].net, NAME_LEN, "%s", net);
                if (cr_cidr4_parse(c, &v[n->nsub].c, e, sizeof e) == 0)
                    n->nsub++;
            }
        }
    }
    if (f)
        fclose(f);
}

/* Under the lock: the state file becomes the text written to out (an open_memstream of
 * *text), ended by STATE_END, rewritten in place — one pwrite of the whole, then the length
 * cut — and out closed, *text freed. A new file renamed over the old one made ext4 (/run is
 * ext4 on some machines) write the file out at each rename, on every container start; in
 * place it stays in the page cache. A reader stops at STATE_END, so the tail of a longer old
 * text, should the cut never come, is never read. */
static void state_replace(struct cr_net *n, FILE *out, char **text, size_t *len)
{
    char path[sizeof n->dir + 16];
    snprintf(path, sizeof path, "%s/state", n->dir);
    fputs(STATE_END, out);
    int fd = fclose(out) != 0 ? -1 : open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    struct stat st;
    /* cut only when shorter: a truncate to the same length is a change of the inode too */
    if (fd < 0 || fstat(fd, &st) < 0 || pwrite(fd, *text, *len, 0) != (ssize_t)*len ||
        (st.st_size > (off_t)*len && ftruncate(fd, (off_t)*len) < 0))
        cr_log(NULL, "network state %s: %s", path, strerror(errno));
    if (fd >= 0)
        close(fd);
    free(*text);
    *text = NULL;
}

/* A run's change of the file: every line as it is but the leases of drop (a run's tag,
 * ".run-PID"; NULL: none), plus add (a line, or NULL). */
static void guest_edit(struct cr_net *n, const char *add, const char *drop)
{
    char path[sizeof n->dir + 16], line[512], *text = NULL;
    size_t len = 0;
    snprintf(path, sizeof path, "%s/state", n->dir);
    FILE *in = fopen(path, "re"), *out = open_memstream(&text, &len);
    if (!out) {
        cr_log(NULL, "network state %s: out of memory", path);
        if (in)
            fclose(in);
        return;
    }
    if (!in)
        fprintf(out, "# corral: the networks' automatic subnets and the services' addresses\n");
    while (in && fgets(line, sizeof line, in) && strcmp(line, STATE_END)) {
        struct lease l;
        size_t sl, dl = drop ? strlen(drop) : 0;
        if (drop && parse_addr(line, &l) && (sl = strlen(l.svc)) > dl &&
            !strcmp(l.svc + sl - dl, drop))
            continue;
        fputs(line, out);
    }
    if (add)
        fputs(add, out);
    if (in)
        fclose(in);
    state_replace(n, out, &text, &len);
}

static void state_write(struct cr_net *n);
static void remove_tag_files(struct cr_net *n, const char *tag);
static void remove_own_files(struct cr_net *n, const char *name);
static void mark_add(struct cr_net *n, const char *what, const char *name);
static bool listed(char (*v)[CR_IFNAME_MAX + 1], size_t nv, const char *name);

/* The supervisor's whole state, written under the lock with the runs' leases kept. */
static void state_save(struct cr_net *n)
{
    if (n->guest)
        return;   /* a run writes its own lines only (guest_edit) */
    int fd = state_lock(n);
    runs_refresh(n);
    state_write(n);
    state_unlock(fd);
}

static void state_write(struct cr_net *n)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) {
        cr_log(NULL, "network state %s/state: out of memory", n->dir);
        return;
    }
    fprintf(f, "# corral: the networks' automatic subnets and the services' addresses\n");
    if (n->forward_ours)
        fprintf(f, "forward-was 0\n");
    if (n->table_made)
        fprintf(f, "table %s\n", n->table);
    for (size_t i = 0; i < n->nbr; i++)
        if (!n->br[i].dead)
            fprintf(f, "bridge %s\n", n->br[i].name);
    for (size_t i = 0; i < n->nsub; i++) {
        char c[32];
        cr_cidr4_format(&n->sub[i].c, c, sizeof c);
        fprintf(f, "subnet %s %s\n", n->sub[i].net, c);
    }
    for (size_t i = 0; i < n->nls; i++) {
        char a[16], a6[INET6_ADDRSTRLEN] = "";
        cr_ip4_format(n->ls[i].a4, a, sizeof a);
        if (n->ls[i].has6)
            inet_ntop(AF_INET6, n->ls[i].a6, a6, sizeof a6);
        fprintf(f, "addr %s %s %s%s%s\n", n->ls[i].net, n->ls[i].svc, a, *a6 ? " " : "", a6);
    }
    state_replace(n, f, &text, &len);
}

static struct lease *lease_new(struct cr_net *n)
{
    if (n->nls == n->capls) {
        size_t cap = n->capls ? 2 * n->capls : 32;
        struct lease *v = realloc(n->ls, cap * sizeof *v);
        if (!v)
            return NULL;
        n->ls = v;
        n->capls = cap;
    }
    struct lease *l = &n->ls[n->nls++];
    memset(l, 0, sizeof *l);
    return l;
}

static void state_load(struct cr_net *n)
{
    char path[sizeof n->dir + 16], line[512];
    snprintf(path, sizeof path, "%s/state", n->dir);
    FILE *f = fopen(path, "re");
    if (!f)
        return;
    while (fgets(line, sizeof line, f) && strcmp(line, STATE_END)) {
        char a[NAME_LEN], b[NAME_LEN], c[64], d[64];
        int k = sscanf(line, "%63s %63s %63s %63s %63s", a, b, c, d, d);
        if (n->guest && strcmp(a, "subnet") && strcmp(a, "addr"))
            continue;   /* the supervisor's own */
        if (k >= 2 && !strcmp(a, "forward-was") && !strcmp(b, "0")) {
            n->forward_ours = true;
        } else if (k == 2 && !strcmp(a, "table")) {
            n->table_made = true;
        } else if (k == 2 && !strcmp(a, "bridge") && cr_ifname_valid(b)) {
            void *v = realloc(n->left, (n->nleft + 1) * sizeof *n->left);
            if (!v)
                break;
            n->left = v;
            memcpy(n->left[n->nleft++], b, strlen(b) + 1);   /* valid: at most 15 */
        } else if (k == 3 && !strcmp(a, "subnet")) {
            struct subnet *v = realloc(n->sub, (n->nsub + 1) * sizeof *v);
            char e[128];
            if (!v)
                break;
            n->sub = v;
            snprintf(v[n->nsub].net, NAME_LEN, "%s", b);
            if (cr_cidr4_parse(c, &v[n->nsub].c, e, sizeof e) == 0)
                n->nsub++;
        } else if (k >= 4 && !strcmp(a, "addr")) {
            struct lease t, *l;
            if (!parse_addr(line, &t) || (run_pid(t.svc) && !run_alive(t.svc)))
                continue;   /* a run that is gone: its address is free again */
            if (!(l = lease_new(n)))
                break;
            *l = t;
        }
    }
    fclose(f);
}

/* Whatever our umask: a container in a user namespace reads its files through here. A stat
 * rather than a chmod each time: a chmod is a change of the inode (ext4: its journal). */
static int dir_mode(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0 && (st.st_mode & 07777) == 0755)
        return 0;
    return chmod(path, 0755) < 0 ? -errno : 0;
}

static int mkdirs(const char *path)
{
    if (mkdir(path, 0755) == 0)
        return dir_mode(path);
    if (errno == EEXIST)
        return 0;   /* made before (and given its mode then): most calls, one syscall */
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s", path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0755) < 0 && errno != EEXIST)
            return -errno;
        *s = '/';
    }
    if (mkdir(p, 0755) < 0 && errno != EEXIST)
        return -errno;
    return dir_mode(p);
}

/* ---- sysctl ---------------------------------------------------------------------------------- */

static int read_forward(void)
{
    char c = '?';
    int fd = open("/proc/sys/net/ipv4/ip_forward", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t r = read(fd, &c, 1);
    close(fd);
    return r == 1 ? c - '0' : -1;
}

static int write_forward(int v)
{
    int fd = open("/proc/sys/net/ipv4/ip_forward", O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t r = write(fd, v ? "1\n" : "0\n", 2);
    int e = errno;
    close(fd);
    return r == 2 ? 0 : -e;
}

/* ---- net.ipv4.ip_forward's holders: every supervisor and run of the host ------------------ *
 * ip_forward is the host's, one value for every cgroup root: a supervisor that set it from 0
 * and gave it back at its exit cut off the bridges of another root's supervisor still running
 * (and of the tests of two suites at once). So each one that needs it holds it: a file
 * PIDNS.PID.STARTTIME in FORWARD_DIR, and the marker `from0` while a holder set it from 0;
 * the last live holder to go gives back the 0. A holder whose process is gone (kill -9) is
 * dropped by the next one to look; one of another pid namespace, which cannot be looked up,
 * counts as live (the value stays 1). Under flock on the folder, removed with the last one. */
#define FORWARD_DIR "/run/corral-ip-forward"

/* A process's start time (field 22 of /proc/PID/stat, path); 0 when it cannot be read. */
static unsigned long long start_time(const char *path)
{
    char buf[1024];
    unsigned long long start;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0)
        close(fd);
    char *p = n > 0 ? (buf[n] = '\0', strrchr(buf, ')')) : NULL;
    /* after the command: state (3) ... starttime (22) */
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d "
                     "%*d %*d %*d %*d %*d %llu", &start) != 1)
        return 0;
    return start;
}

/* This process as a holder's name: its pid namespace, pid and start time (a pid used again
 * is another process). */
static void holder_self(char *out, size_t len)
{
    struct stat ns;
    if (stat("/proc/self/ns/pid", &ns) < 0)
        ns.st_ino = 0;
    snprintf(out, len, "%llu.%d.%llu", (unsigned long long)ns.st_ino, (int)getpid(),
             start_time("/proc/self/stat"));
}

/* Whether the holder named name still runs (or cannot be told: another pid namespace). */
static bool holder_alive(const char *name, const char *self)
{
    unsigned long long ino, start, my_ino;
    int pid;
    if (sscanf(name, "%llu.%d.%llu", &ino, &pid, &start) != 3)
        return false;   /* not a holder's name: dropped */
    if (sscanf(self, "%llu.", &my_ino) != 1 || ino != my_ino)
        return true;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    /* the same pid: the same process when its start time is the same */
    return start != 0 && start_time(path) == start;
}

/* The holders' folder, made if need be, locked (flock): its fd, or -errno. A folder removed
 * by the last holder while we waited for its lock is made again. */
static int forward_lock(void)
{
    for (int tries = 0; tries < 100; tries++) {
        if (mkdir(FORWARD_DIR, 0700) < 0 && errno != EEXIST)
            return -errno;
        int fd = open(FORWARD_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
            if (errno == ENOENT)
                continue;
            return -errno;
        }
        struct stat st;
        while (flock(fd, LOCK_EX) < 0 && errno == EINTR)
            ;
        if (fstat(fd, &st) == 0 && st.st_nlink > 0)
            return fd;
        close(fd);   /* removed meanwhile */
    }
    return -EAGAIN;
}

/* Drops the holders that are gone; the number still live but self; whether from0 is there. */
static size_t holders_live(int dfd, const char *self, bool *from0)
{
    size_t live = 0;
    *from0 = false;
    int fd = dup(dfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return 1;   /* cannot tell: as if another held it */
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if (!strcmp(e->d_name, "from0"))
            *from0 = true;
        else if (!strcmp(e->d_name, self))
            continue;
        else if (holder_alive(e->d_name, self))
            live++;
        else
            unlinkat(dfd, e->d_name, 0);
    }
    closedir(d);
    return live;
}

/* The marker from0 in the locked folder dfd: a holder set ip_forward from 0, and the last
 * one gives it back. */
static void mark_from0(int dfd)
{
    int m = openat(dfd, "from0", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (m >= 0)
        close(m);
}

/* Holds ip_forward at 1 for n (no-op when it does): 0, or -errno (err says). */
static int forward_hold(struct cr_net *n, const char *net, char *err, size_t errlen)
{
    if (n->forward_held)
        return 0;
    /* Without the holders' folder (no writable /run): as before it, this one alone gives
     * back what it set (said once in the log) */
    static bool said;
    int dfd = forward_lock(), r = 0;
    if (dfd < 0 && !said) {
        said = true;
        cr_log(NULL, "%s: %s: net.ipv4.ip_forward's holders not kept (a 0 this supervisor "
               "sets to 1 goes back to 0 at its exit, whoever else uses it)", FORWARD_DIR,
               strerror(-dfd));
    }
    int fd = dfd >= 0 ? openat(dfd, n->holder, O_WRONLY | O_CREAT | O_CLOEXEC, 0600) : -1;
    if (fd >= 0) {
        close(fd);
        n->forward_held = true;
    } else if (dfd >= 0) {
        cr_log(NULL, "%s/%s: %s: net.ipv4.ip_forward not held", FORWARD_DIR, n->holder,
               strerror(errno));
    }
    bool from0 = n->forward_ours;   /* a killed predecessor of ours set it from 0 */
    if (read_forward() == 0) {
        mark_add(n, "forward", NULL);
        r = write_forward(1);
        if (r == 0) {
            n->forward_ours = from0 = true;
            state_save(n);
            cr_log(NULL, "net.ipv4.ip_forward was 0: set to 1 for network %s (0 again when "
                   "the last supervisor using it exits)", net);
        } else {
            snprintf(err, errlen, "setting net.ipv4.ip_forward: %s", strerror(-r));
        }
    }
    if (from0 && dfd >= 0)
        mark_from0(dfd);
    if (dfd >= 0)
        close(dfd);   /* and its lock */
    return r;
}

/* n holds ip_forward no longer; the last live holder gives back the 0 a holder found. */
static void forward_release(struct cr_net *n)
{
    int dfd = forward_lock();
    if (dfd < 0) {   /* no holders' folder: this one gives back what it set, as before it */
        int r = n->forward_ours ? write_forward(0) : 0;
        if (r < 0)
            cr_log(NULL, "giving net.ipv4.ip_forward back its 0: %s", strerror(-r));
        n->forward_ours = n->forward_held = false;
        return;
    }
    unlinkat(dfd, n->holder, 0);
    bool from0;
    size_t live = holders_live(dfd, n->holder, &from0);
    if (live == 0 && (from0 || n->forward_ours)) {
        int r = write_forward(0);
        if (r < 0)
            cr_log(NULL, "giving net.ipv4.ip_forward back its 0: %s", strerror(-r));
        unlinkat(dfd, "from0", 0);
    } else if (live > 0 && n->forward_ours && !from0) {
        mark_from0(dfd);
    }
    if (live > 0 && (from0 || n->forward_ours))
        cr_log(NULL, "net.ipv4.ip_forward stays 1 for %zu other supervisor%s or run%s using "
               "it (the last one gives back its 0)", live, live == 1 ? "" : "s",
               live == 1 ? "" : "s");
    if (live == 0)
        rmdir(FORWARD_DIR);   /* under its lock: a waiter sees it removed and makes it again */
    close(dfd);
    n->forward_ours = false;
    n->forward_held = false;
}

/* ---- nftables -------------------------------------------------------------------------------- */

/* libnftables, loaded at its first use (a supervisor without bridges never loads it; one
 * that took the table over at a re-exec has not yet): 0, or -ENOENT with err said. */
static int nft_ready(struct cr_net *n, char *err, size_t errlen)
{
    return n->nft || cr_nft_open(&n->nft, err, errlen) == 0 ? 0 : -ENOENT;
}

/* The whole table, made again from the bridges up now (one transaction): NAT out of every
 * network that is not internal, nothing forwarded between two networks, nothing in or out of
 * an internal one. */
static int apply_rules(struct cr_net *n, char *err, size_t errlen)
{
    if (nft_ready(n, err, errlen) < 0)
        return -ENOENT;
    size_t nports = 0;
    for (size_t i = 0; i < n->nat; i++)
        nports += n->at[i].nport;
    size_t cap = 2048 + n->nbr * (n->nbr + 4) * 160 + nports * 2 * 200, len = 0;
    char *b = malloc(cap);
    if (!b)
        return -ENOMEM;
#define ADD(...) (len += (size_t)snprintf(b + len, cap - len, __VA_ARGS__))
    ADD("add table inet %s\nflush table inet %s\n", n->table, n->table);
    ADD("add chain inet %s postrouting { type nat hook postrouting priority srcnat; }\n",
        n->table);
    ADD("add chain inet %s forward { type filter hook forward priority filter; }\n", n->table);
    /* Published ports (as netavark does it): DNAT of what comes to one of the host's own
     * addresses, from outside (prerouting: the client's address stays) and from the host
     * itself (output; 127.0.0.1 needs route_localnet on the bridge, and a masquerade so the
     * container can answer). */
    ADD("add chain inet %s prerouting { type nat hook prerouting priority dstnat; }\n",
        n->table);
    ADD("add chain inet %s output { type nat hook output priority -100; }\n", n->table);
    for (size_t i = 0; i < n->nat; i++) {
        const struct attach *a = &n->at[i];
        for (size_t k = 0; k < a->nport; k++) {
            const struct cr_port *pt = &a->port[k];
            char to[16], ip[40] = "";
            cr_ip4_format(a->ls[a->pnet].a4, to, sizeof to);
            if (pt->ip) {
                char h[16];
                cr_ip4_format(pt->ip, h, sizeof h);
                snprintf(ip, sizeof ip, "ip daddr %s ", h);
            }
            const char *proto = pt->proto == CR_PROTO_UDP ? "udp" : "tcp";
            for (int hook = 0; hook < 2; hook++)
                ADD("add rule inet %s %s meta nfproto ipv4 fib daddr type local %s%s dport %u dnat ip to "
                    "%s:%u\n",
                    n->table, hook ? "output" : "prerouting", ip, proto, pt->host, to,
                    pt->container);
        }
    }
    for (size_t i = 0; i < n->nbr; i++) {
        const struct bridge *br = &n->br[i];
        if (br->adopted || br->dead)
            continue;   /* a run's use of the supervisor's: its rules are the supervisor's */
        if (br->internal) {
            ADD("add rule inet %s forward iifname \"%s\" oifname != \"%s\" drop\n", n->table,
                br->name, br->name);
            ADD("add rule inet %s forward oifname \"%s\" iifname != \"%s\" drop\n", n->table,
                br->name, br->name);
            continue;
        }
        char c[32];
        cr_cidr4_format(&br->net4, c, sizeof c);
        /* "ip daddr != SUBNET" too, as netavark: with br_netfilter loaded (bridge-nf-call-
         * iptables, as on Docker hosts) traffic between two services of the bridge passes
         * the IP hooks without the bridge as its oifname, and must keep its source. */
        ADD("add rule inet %s postrouting ip saddr %s ip daddr != %s oifname != \"%s\" "
            "masquerade\n", n->table, c, c, br->name);
        ADD("add rule inet %s postrouting ip saddr 127.0.0.0/8 oifname \"%s\" masquerade\n",
            n->table, br->name);
        if (br->net6.prefix >= 0) {
            char a6[INET6_ADDRSTRLEN];
            inet_ntop(AF_INET6, br->net6.addr, a6, sizeof a6);
            ADD("add rule inet %s postrouting ip6 saddr %s/%d ip6 daddr != %s/%d oifname != "
                "\"%s\" masquerade\n", n->table, a6, br->net6.prefix, a6, br->net6.prefix,
                br->name);
        }
        for (size_t j = 0; j < n->nbr; j++)
            if (j != i && !n->br[j].internal && !n->br[j].adopted && !n->br[j].dead)
                ADD("add rule inet %s forward iifname \"%s\" oifname \"%s\" drop\n", n->table,
                    br->name, n->br[j].name);
    }
#undef ADD
    if (!n->table_made)
        mark_add(n, "table", NULL);
    int r = len < cap ? cr_nft_run(n->nft, b, err, errlen) : -E2BIG;
    free(b);
    if (r == 0 && !n->table_made) {
        n->table_made = true;
        state_save(n);
    }
    return r;
}

/* ---- bridges --------------------------------------------------------------------------------- */

static bool route_collides(struct cr_net *n, const struct cr_cidr4 *c)
{
    FILE *f = fopen("/proc/net/route", "re");
    if (!f)
        return false;
    char line[512];
    bool hit = false;
    while (!hit && fgets(line, sizeof line, f)) {
        char dev[64];
        unsigned dst, mask;
        if (sscanf(line, "%63s %x %*x %*x %*d %*d %*d %x", dev, &dst, &mask) != 3 || !mask ||
            !strncmp(dev, n->prefix, strlen(n->prefix)))
            continue;
        struct cr_cidr4 r = {.addr = __builtin_bswap32(dst), .prefix = __builtin_popcount(mask)};
        hit = cr_cidr4_overlap(&r, c);
    }
    fclose(f);
    return hit;
}

/* The kept automatic subnet of a network, or the first free /24 of 10.89.0.0/16. */
static int auto_subnet(struct cr_net *n, const char *net, struct cr_cidr4 *out, char *err,
                       size_t errlen)
{
    for (size_t i = 0; i < n->nsub; i++)
        if (!strcmp(n->sub[i].net, net)) {
            *out = n->sub[i].c;
            return 0;
        }
    for (uint32_t k = 0; k < 256; k++) {
        struct cr_cidr4 c = {.addr = 0x0A590000u | (k << 8), .prefix = 24};
        bool used = route_collides(n, &c);
        for (size_t i = 0; i < n->nsub && !used; i++)
            used = cr_cidr4_overlap(&n->sub[i].c, &c);
        for (size_t i = 0; i < n->nbr && !used; i++)
            used = !n->br[i].dead && cr_cidr4_overlap(&n->br[i].net4, &c);
        if (used)
            continue;
        struct subnet *v = realloc(n->sub, (n->nsub + 1) * sizeof *v);
        if (!v)
            return -ENOMEM;
        n->sub = v;
        snprintf(v[n->nsub].net, NAME_LEN, "%s", net);
        v[n->nsub++].c = c;
        *out = c;
        if (n->guest) {
            char line[160], t[32];
            cr_cidr4_format(&c, t, sizeof t);
            snprintf(line, sizeof line, "subnet %s %s\n", net, t);
            int fd = state_lock(n);
            guest_edit(n, line, NULL);
            state_unlock(fd);
        }
        state_save(n);
        return 0;
    }
    snprintf(err, errlen, "network %s: no free /24 in 10.89.0.0/16 (set its subnet)", net);
    return -ENOSPC;
}

static const struct bridge *ensure_bridge(struct cr_net *n, const struct cr_net_def *d,
                                          char *err, size_t errlen)
{
    size_t slot = n->nbr;
    for (size_t i = 0; i < n->nbr; i++)
        if (!n->br[i].dead && !strcmp(n->br[i].net, d->name))
            return &n->br[i];
        else if (n->br[i].dead && slot == n->nbr)
            slot = i;
    if (slot == MAX_BRIDGES) {
        snprintf(err, errlen, "more than %d networks", MAX_BRIDGES);
        return NULL;
    }
    struct bridge b = {.net6 = d->net6, .internal = d->internal};
    snprintf(b.net, NAME_LEN, "%s", d->name);
    if (d->bridge)
        snprintf(b.name, sizeof b.name, "%s", d->bridge);
    else
        cr_net_ifname(n->root, 'b', cr_net_hash(d->name), b.name);
    b.net4 = d->net4;
    if (b.net4.prefix < 0 && auto_subnet(n, d->name, &b.net4, err, errlen) < 0)
        return NULL;
    /* A run on a network whose bridge the supervisor has up: that one, as it is. */
    int r = -EEXIST;
    if (!n->guest || (b.index = cr_nl_ifindex(&n->nl, b.name)) <= 0) {
        mark_add(n, "bridge", b.name);   /* before: a kill -9 may come at any point */
        r = cr_nl_bridge_add(&n->nl, b.name, err, errlen);
    }
    if (r == -EEXIST && n->guest) {
        b.adopted = true;
        n->br[slot] = b;
        n->nbr += slot == n->nbr;
        return &n->br[slot];
    }
    if (r == -EEXIST && listed(n->kept, n->nkept, b.name)) {
        r = 0;   /* a live run's (it made it alone): ours from now on, as it is */
    } else if (r == -EEXIST) {
        /* an explicit bridge name left over by a supervisor killed before: ours again */
        cr_nl_link_del(&n->nl, b.name, NULL, 0);
        r = cr_nl_bridge_add(&n->nl, b.name, err, errlen);
    }
    if (r < 0)
        return NULL;
    n->br[slot] = b;
    n->nbr += slot == n->nbr;
    struct bridge *br = &n->br[slot];
    int idx = cr_nl_ifindex(&n->nl, br->name);
    uint32_t gw = htonl(cr_gateway4(&br->net4));
    r = idx > 0 ? cr_nl_addr_add(&n->nl, idx, AF_INET, &gw, br->net4.prefix, err, errlen)
                : -ENODEV;
    if (r == 0 && br->net6.prefix >= 0) {
        uint8_t g6[16];
        memcpy(g6, br->net6.addr, 16);
        g6[15] |= 1;
        r = cr_nl_addr_add(&n->nl, idx, AF_INET6, g6, br->net6.prefix, err, errlen);
    }
    if (r == 0 && !br->internal)
        r = forward_hold(n, br->net, err, errlen);
    if (r == 0 && !br->internal && !n->guest) {
        /* published ports reached at 127.0.0.1: our bridge's own setting, gone with it */
        char path[128];
        snprintf(path, sizeof path, "/proc/sys/net/ipv4/conf/%s/route_localnet", br->name);
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, "1\n", 2) != 2)
            cr_log(NULL, "%s: %s (published ports will not answer at 127.0.0.1)", path,
                   strerror(errno));
        if (fd >= 0)
            close(fd);
    }
    if (r == 0)
        r = apply_rules(n, err, errlen);
    if (r < 0) {
        cr_nl_link_del(&n->nl, br->name, NULL, 0);
        *br = (struct bridge){.dead = true};
        return NULL;
    }
    state_save(n);
    char c[32];
    cr_cidr4_format(&br->net4, c, sizeof c);
    cr_log(NULL, "network %s: bridge %s, %s%s", br->net, br->name, c,
           br->internal ? ", internal" : "");
    return br;
}

/* ---- addresses --------------------------------------------------------------------------------- */

struct taken {
    struct cr_net *n;
    const char *net;
};

static bool taken4(uint32_t a, void *arg)
{
    const struct taken *tk = arg;
    for (size_t i = 0; i < tk->n->nls; i++)
        if (tk->n->ls[i].a4 == a && !strcmp(tk->n->ls[i].net, tk->net))
            return true;
    return false;
}

static bool taken6(const uint8_t a[16], void *arg)
{
    const struct taken *tk = arg;
    for (size_t i = 0; i < tk->n->nls; i++)
        if (tk->n->ls[i].has6 && !memcmp(tk->n->ls[i].a6, a, 16) &&
            !strcmp(tk->n->ls[i].net, tk->net))
            return true;
    return false;
}

static const struct lease *lease_pick(struct cr_net *n, const struct bridge *br,
                                      const char *svc);

/* The address of svc on br: kept, or picked (and kept), under the state file's lock (a run
 * may be picking one too). A run's is SVC.run-PID's, given back when it ends. */
static const struct lease *lease_of(struct cr_net *n, const struct bridge *br, const char *svc)
{
    char key[NAME_LEN];
    snprintf(key, sizeof key, "%s%s", svc, n->tag);
    int fd = state_lock(n);
    if (n->guest) {
        /* every address taken now: the file's */
        n->nls = 0;
        char path[sizeof n->dir + 16], line[512];
        snprintf(path, sizeof path, "%s/state", n->dir);
        FILE *f = fopen(path, "re");
        struct lease t, *v;
        while (f && fgets(line, sizeof line, f))
            if (parse_addr(line, &t) && (!run_pid(t.svc) || run_alive(t.svc)) &&
                (v = lease_new(n)))
                *v = t;
        if (f)
            fclose(f);
    } else {
        runs_refresh(n);
    }
    const struct lease *l = lease_pick(n, br, key);
    if (l && n->guest) {
        char line[256], a4[16], a6[INET6_ADDRSTRLEN] = "";
        cr_ip4_format(l->a4, a4, sizeof a4);
        if (l->has6)
            inet_ntop(AF_INET6, l->a6, a6, sizeof a6);
        snprintf(line, sizeof line, "addr %s %s %s%s%s\n", l->net, l->svc, a4, *a6 ? " " : "",
                 a6);
        guest_edit(n, line, NULL);
    } else if (l) {
        state_write(n);
    }
    state_unlock(fd);
    return l;
}

static const struct lease *lease_pick(struct cr_net *n, const struct bridge *br,
                                      const char *svc)
{
    for (size_t i = 0; i < n->nls; i++)
        if (!strcmp(n->ls[i].net, br->net) && !strcmp(n->ls[i].svc, svc)) {
            struct lease *l = &n->ls[i];
            /* kept from an older subnet: a new one */
            if ((l->a4 & cr_mask4(br->net4.prefix)) == br->net4.addr &&
                (br->net6.prefix < 0) == !l->has6)
                return l;
            n->ls[i] = n->ls[--n->nls];
            break;
        }
    struct taken t = {n, br->net};
    uint32_t a4;
    uint8_t a6[16];
    if (cr_net_pick4(&br->net4, svc, taken4, &t, &a4) < 0)
        return NULL;
    if (br->net6.prefix >= 0 && cr_net_pick6(&br->net6, svc, taken6, &t, a6) < 0)
        return NULL;
    struct lease *l = lease_new(n);
    if (!l)
        return NULL;
    snprintf(l->net, NAME_LEN, "%s", br->net);
    snprintf(l->svc, NAME_LEN, "%s", svc);
    l->a4 = a4;
    if ((l->has6 = br->net6.prefix >= 0))
        memcpy(l->a6, a6, 16);
    return l;
}

/* ---- each container's hosts and resolv.conf ------------------------------------------------ */

static struct attach *attach_of(struct cr_net *n, const char *svc)
{
    for (size_t i = 0; i < n->nat; i++)
        if (!strcmp(n->at[i].svc, svc))
            return &n->at[i];
    return NULL;
}

/* Whether fd holds exactly text (of size bytes now). */
static bool holds(int fd, off_t size, const char *text, size_t len)
{
    char buf[4096];
    size_t off = 0;
    if (size != (off_t)len)
        return false;
    while (off < len) {
        ssize_t r = pread(fd, buf, sizeof buf, (off_t)off);
        if (r <= 0 || (size_t)r > len - off || memcmp(buf, text + off, (size_t)r))
            return false;
        off += (size_t)r;
    }
    return true;
}

/* Written in place (the same inode: the container has it bound on /etc/hosts), over the old
 * text and then cut to length, so that a reader never finds it empty. The same text is left
 * as it is: every `run` on a bridge puts the shared resolv.conf, and rewriting a file (ext4
 * here: its times, the journal) cost a run ~0.3 ms of CPU; for the same reason its mode is
 * set only when it is not 0644 already. */
static void put_file(const char *path, const char *text, size_t len)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    struct stat st;
    bool sized = fd >= 0 && fstat(fd, &st) == 0;
    if (fd < 0 || (!(sized && (st.st_mode & 07777) == 0644) && fchmod(fd, 0644) < 0) ||
        (!(sized && holds(fd, st.st_size, text, len)) &&
         (pwrite(fd, text, len, 0) != (ssize_t)len ||
          ((!sized || st.st_size > (off_t)len) && ftruncate(fd, (off_t)len) < 0))))
        cr_log(NULL, "writing %s: %s", path, strerror(errno));
    if (fd >= 0)
        close(fd);
}

#define HOSTS_HEAD "# written by corral: the services on this container's networks\n" \
                   "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"

/* o's lines in a hosts file: its address on br (v4, v6), under its service's name (a run's
 * SVC.run-PID as SVC). */
static size_t hosts_lines(char *b, size_t cap, size_t len, const struct attach *o,
                          const struct bridge *br)
{
    char ip[INET6_ADDRSTRLEN];
    const char *tag = strstr(o->svc, ".run-");
    int nl = tag ? (int)(tag - o->svc) : (int)strlen(o->svc);
    for (size_t k = 0; k < o->n; k++) {
        if (o->br[k] != br)
            continue;
        cr_ip4_format(o->ls[k].a4, ip, sizeof ip);
        len += (size_t)snprintf(b + len, len < cap ? cap - len : 0, "%s\t%.*s\n", ip, nl,
                                o->svc);
        if (o->ls[k].has6) {
            inet_ntop(AF_INET6, o->ls[k].a6, ip, sizeof ip);
            len += (size_t)snprintf(b + len, len < cap ? cap - len : 0, "%s\t%.*s\n", ip, nl,
                                    o->svc);
        }
    }
    return len;
}

/* The hosts file every service of only this network shares (one file to write when a service
 * comes or goes, not one per service): each attached service's address on it. */
static void write_net_hosts(struct cr_net *n, const struct bridge *br)
{
    size_t cap = 256 + n->nat * 120, len = 0;
    char *b = malloc(cap), path[sizeof n->dir + NAME_LEN + 16];
    if (!b)
        return;
    len += (size_t)snprintf(b, cap, HOSTS_HEAD);
    for (size_t i = 0; i < n->nat; i++)
        if (!run_pid(n->at[i].svc))   /* a run connected by us is in no service's hosts */
            len = hosts_lines(b, cap, len, &n->at[i], br);
    cr_net_hosts_file(n->run_dir, n->root, NULL, br->net, path, sizeof path);
    if (len < cap)
        put_file(path, b, len);
    free(b);
}

/* The own hosts file of a service on several networks (or none): itself, then each other
 * service on a network it is on, at its address there. */
static void write_hosts(struct cr_net *n, const struct attach *a)
{
    size_t cap = 256 + (n->nat + 1) * MAX_NETS * 120 + n->nls * 120, len = 0;
    char *b = malloc(cap), path[sizeof n->dir + NAME_LEN + 16];
    if (!b)
        return;
    len += (size_t)snprintf(b, cap, HOSTS_HEAD);
    for (size_t k = 0; k < a->n; k++)
        len = hosts_lines(b, cap, len, a, a->br[k]);
    if (!a->n)
        len += (size_t)snprintf(b + len, len < cap ? cap - len : 0, "127.0.1.1\t%s\n", a->svc);
    bool run = n->guest || run_pid(a->svc);
    for (size_t i = 0; i < n->nat; i++) {
        const struct attach *o = &n->at[i];
        if (strcmp(o->svc, a->svc) && !run_pid(o->svc))
            for (size_t k = 0; k < a->n; k++)
                len = hosts_lines(b, cap, len, o, a->br[k]);
    }
    /* A run: the services of its networks, at the addresses the supervisor keeps for them
     * (stable: whether they run now or not; those up are listed above) */
    for (size_t i = 0; run && i < n->nls; i++) {
        const struct lease *l = &n->ls[i];
        char ip[INET6_ADDRSTRLEN];
        bool on = false;
        for (size_t k = 0; k < a->n && !on; k++)
            on = !strcmp(a->br[k]->net, l->net);
        if (!on || run_pid(l->svc) || len >= cap || (!n->guest && attach_of(n, l->svc)))
            continue;
        cr_ip4_format(l->a4, ip, sizeof ip);
        len += (size_t)snprintf(b + len, cap - len, "%s\t%s\n", ip, l->svc);
    }
    char key[NAME_LEN + 24];
    snprintf(key, sizeof key, "%s%s", a->svc, n->tag);
    cr_net_hosts_file(n->run_dir, n->root, key, NULL, path, sizeof path);
    if (len < cap)
        put_file(path, b, len);
    free(b);
}

/* The host's resolv.conf without loopback name servers (a resolver on the host's 127.0.0.x
 * is out of reach from a container's namespace): one file, every container's. */
static void write_resolv(struct cr_net *n)
{
    char path[sizeof n->dir + 32], out[4096], line[512];
    size_t len = 0;
    FILE *f = fopen("/etc/resolv.conf", "re");
    len += (size_t)snprintf(out, sizeof out, "# written by corral from the host's\n");
    while (f && fgets(line, sizeof line, f)) {
        char a[64];
        if (sscanf(line, " nameserver %63s", a) == 1 &&
            (!strncmp(a, "127.", 4) || !strcmp(a, "::1")))
            continue;
        size_t l = strlen(line);
        if (len + l < sizeof out) {
            memcpy(out + len, line, l);
            len += l;
        }
    }
    if (f)
        fclose(f);
    cr_net_resolv_file(n->run_dir, n->root, path, sizeof path);
    put_file(path, out, len);
}

/* After a came or went: the shared files of its networks, and the own files of the services
 * on several networks that share one with it. */
static void hosts_refresh(struct cr_net *n, const struct attach *a)
{
    if (n->guest) {
        if (*a->svc)
            write_hosts(n, a);   /* a run's own; the supervisor's files are the supervisor's */
        return;
    }
    if (run_pid(a->svc)) {
        write_hosts(n, a);       /* a run we connect: in no other file */
        return;
    }
    for (size_t k = 0; k < a->n; k++)
        write_net_hosts(n, a->br[k]);
    for (size_t i = 0; i < n->nat; i++) {
        const struct attach *o = &n->at[i];
        if (o->n == 1 && !run_pid(o->svc))
            continue;   /* the shared file's, written above; a run's file is its own */
        bool shared = !strcmp(o->svc, a->svc);
        for (size_t k = 0; k < o->n && !shared; k++)
            for (size_t j = 0; j < a->n; j++)
                shared |= a->br[j] == o->br[k];
        if (shared)
            write_hosts(n, o);
    }
}

/* ---- containers ------------------------------------------------------------------------------ */

/* A veth's host end: the network and service's hash, moved by a counter of this supervisor so
 * that a new container never meets its predecessor's pair, which goes away with that one's
 * namespace (the kernel's cleanup, a little after the container is gone). */
static void veth_name(struct cr_net *n, const char *net, const char *svc, uint32_t gen,
                      char out[CR_IFNAME_MAX + 1])
{
    char key[2 * NAME_LEN + 32];
    /* a run's: its own (the supervisor's container of that service may be up, and an earlier
     * run's pair may still be going away with its namespace) */
    snprintf(key, sizeof key, "%s/%s%s", net, svc, n->tag);
    cr_net_ifname(n->root, 'v', cr_net_hash(key) + gen * 7919u, out);
}

/* The container's side, through a socket of its namespace, in one message: each eth's
 * addresses, lo and the eths up, the default routes. */
static int setup_inside(const struct attach *a, int nsfd, char *err, size_t errlen)
{
    struct cr_nl in;
    int r = cr_nl_open(&in, nsfd, err, errlen);
    if (r < 0)
        return r;
    struct cr_nl_addr ad[2 * MAX_NETS];
    int up[MAX_NETS + 1] = {1};   /* lo is 1 in every namespace */
    int no_ll6[MAX_NETS];
    uint32_t g4;
    uint8_t g6[16];
    struct cr_nl_setup c = {.addr = ad, .up = up, .nup = 1, .no_ll6 = no_ll6};
    for (size_t k = 0; k < a->n; k++) {
        char eth[32];
        snprintf(eth, sizeof eth, "eth%zu", k);
        int idx = cr_nl_ifindex(&in, eth);
        if (idx <= 0) {
            snprintf(err, errlen, "%s is missing in the container", eth);
            r = -ENODEV;
            break;
        }
        const struct bridge *br = a->br[k];
        uint32_t a4 = htonl(a->ls[k].a4);
        ad[c.naddr] = (struct cr_nl_addr){.ifindex = idx, .family = AF_INET,
                                          .prefix = br->net4.prefix};
        memcpy(ad[c.naddr++].addr, &a4, 4);
        if (a->ls[k].has6) {
            ad[c.naddr] = (struct cr_nl_addr){.ifindex = idx, .family = AF_INET6,
                                              .prefix = br->net6.prefix};
            memcpy(ad[c.naddr++].addr, a->ls[k].a6, 16);
        }
        up[c.nup++] = idx;
        if (!a->ls[k].has6)
            no_ll6[c.nno_ll6++] = idx;
        if (!br->internal && !c.gw4) {
            g4 = htonl(cr_gateway4(&br->net4));
            c.gw4 = &g4;
        }
        if (!br->internal && a->ls[k].has6 && !c.gw6) {
            memcpy(g6, br->net6.addr, 16);
            g6[15] |= 1;
            c.gw6 = g6;
        }
    }
    if (r == 0)
        r = cr_nl_configure(&in, &c, err, errlen);
    cr_nl_close(&in);
    return r;
}

struct cr_net_job {
    struct cr_net_job *next;     /* in n->jobs */
    struct attach a;             /* the bridges' entries are read, never moved (MAX_BRIDGES) */
    int master[MAX_NETS];
    int nsfd;
    struct cr_nl *host;          /* a run's own socket (its job runs in place), or NULL: the
                                    job's own (on the thread pool, beside the loop's) */
    bool cancelled;              /* the container went before the job was finished */
    int r;
    char err[256];
};

/* A port another program of the host holds: a clear error now, rather than a rule that
 * would take its traffic. */
static int port_free(const struct cr_port *p, char *err, size_t errlen)
{
    int fd = socket(AF_INET, (p->proto == CR_PROTO_UDP ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC,
                    0);
    if (fd < 0)
        return 0;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(p->host),
                             .sin_addr.s_addr = htonl(p->ip)};
    int r = bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ? -errno : 0;
    close(fd);
    if (r == -EADDRINUSE) {
        char t[64];
        cr_port_format(p, t, sizeof t);
        snprintf(err, errlen, "ports: %s: port %u/%s is already in use on the host", t,
                 p->host, p->proto == CR_PROTO_UDP ? "udp" : "tcp");
        return r;
    }
    return 0;
}

int cr_net_prepare(struct cr_net *n, const char *svc, const struct cr_net_def *defs,
                   size_t ndefs, const struct cr_port *ports, size_t nports, pid_t pid,
                   struct cr_net_job **out, char *err, size_t errlen)
{
    for (size_t i = 0; i < nports; i++)
        if (port_free(&ports[i], err, errlen) < 0)
            return -EADDRINUSE;
    if (ndefs > MAX_NETS || strlen(svc) >= NAME_LEN) {
        snprintf(err, errlen, "more than %d networks", MAX_NETS);
        return -E2BIG;
    }
    cr_net_detach(n, svc);
    struct cr_net_job *j = calloc(1, sizeof *j);
    if (!j)
        return -ENOMEM;
    snprintf(j->a.svc, NAME_LEN, "%s", svc);
    j->host = n->guest ? &n->nl : NULL;   /* a run's job runs in place (service/container.c) */
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/ns/net", (int)pid);
    if ((j->nsfd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        free(j);
        return -e;
    }
    for (size_t k = 0; k < ndefs; k++) {
        const struct bridge *br = ensure_bridge(n, &defs[k], err, errlen);
        const struct lease *l = br ? lease_of(n, br, svc) : NULL;
        if (!br || !l) {
            if (br)
                snprintf(err, errlen, "network %s: no free address", br->net);
            close(j->nsfd);
            free(j);
            return -ENOSPC;
        }
        j->a.br[k] = br;
        j->a.ls[k] = *l;
        j->master[k] = br->index > 0 ? br->index : cr_nl_ifindex(&n->nl, br->name);
        veth_name(n, br->net, svc, n->gen++, j->a.veth[k]);
        mark_add(n, "veth", j->a.veth[k]);
    }
    j->a.n = ndefs;
    for (size_t k = 0; k < ndefs; k++)
        if (!j->a.br[k]->internal) {
            j->a.pnet = k;
            break;
        }
    if (nports && !(j->a.port = malloc(nports * sizeof *ports))) {
        close(j->nsfd);
        free(j);
        return -ENOMEM;
    }
    if (nports)
        memcpy(j->a.port, ports, nports * sizeof *ports);
    j->a.nport = nports;
    j->next = n->jobs;
    n->jobs = j;
    *out = j;
    return 0;
}

void cr_net_job_run(struct cr_net_job *j)
{
    struct cr_nl own, *nl = j->host ? j->host : &own;
    size_t made = 0;
    j->r = j->host ? 0 : cr_nl_open(&own, -1, j->err, sizeof j->err);
    for (size_t k = 0; j->r == 0 && k < j->a.n; k++) {
        char eth[32];
        snprintf(eth, sizeof eth, "eth%zu", k);
        j->r = cr_nl_veth_add(nl, j->a.veth[k], j->master[k], eth, j->nsfd, j->err,
                              sizeof j->err);
        if (j->r == 0)
            made = k + 1;
    }
    if (j->r == 0)
        j->r = setup_inside(&j->a, j->nsfd, j->err, sizeof j->err);
    if (j->r < 0)
        for (size_t k = 0; k < made; k++)
            cr_nl_link_del(nl, j->a.veth[k], NULL, 0);
    if (!j->host)
        cr_nl_close(&own);
}

int cr_net_finish(struct cr_net *n, struct cr_net_job *j, char *err, size_t errlen)
{
    for (struct cr_net_job **p = &n->jobs; *p; p = &(*p)->next)
        if (*p == j) {
            *p = j->next;
            break;
        }
    close(j->nsfd);
    int r = j->r;
    if (r < 0)
        snprintf(err, errlen, "%s", j->err);
    char dir[sizeof n->dir + NAME_LEN + 26];
    snprintf(dir, sizeof dir, "%s/%s%s", n->dir, j->a.svc, n->tag);
    if (r == 0 && !j->cancelled && (j->a.n != 1 || n->guest || run_pid(j->a.svc)) &&
        (r = mkdirs(dir)) < 0)
        snprintf(err, errlen, "%s: %s", dir, strerror(-r));
    struct attach *v = r == 0 && !j->cancelled ? realloc(n->at, (n->nat + 1) * sizeof *v)
                                                 : NULL;
    if (r == 0 && !j->cancelled && !v)
        r = -ENOMEM;
    if (v) {
        n->at = v;
        n->at[n->nat++] = j->a;
        j->a.port = NULL;                   /* the attachment's now */
        hosts_refresh(n, &n->at[n->nat - 1]);
        if (n->at[n->nat - 1].nport && (r = apply_rules(n, err, errlen)) < 0) {
            char keep[256];
            snprintf(keep, sizeof keep, "publishing its ports: %s", err);
            snprintf(err, errlen, "%s", keep);
            cr_net_detach(n, n->at[n->nat - 1].svc);
        }
    }
    free(j->a.port);
    if (r == 0 && j->cancelled) {
        snprintf(err, errlen, "the container is gone");
        r = -ESRCH;
    }
    free(j);
    return r;
}

int cr_net_attach(struct cr_net *n, const char *svc, const struct cr_net_def *defs, size_t ndefs,
                  pid_t pid, char *err, size_t errlen)
{
    struct cr_net_job *j;
    int r = cr_net_prepare(n, svc, defs, ndefs, NULL, 0, pid, &j, err, errlen);
    if (r < 0)
        return r;
    cr_net_job_run(j);
    return cr_net_finish(n, j, err, errlen);
}

/* svc's leases (on net, or every one): gone. */
static void drop_leases(struct cr_net *n, const char *svc, const char *net)
{
    for (size_t i = 0; i < n->nls;)
        if (!strcmp(n->ls[i].svc, svc) && (!net || !strcmp(n->ls[i].net, net)))
            n->ls[i] = n->ls[--n->nls];
        else
            i++;
}

void cr_net_detach(struct cr_net *n, const char *svc)
{
    for (struct cr_net_job *j = n->jobs; j; j = j->next)
        if (!strcmp(j->a.svc, svc))
            j->cancelled = true;
    struct attach *a = attach_of(n, svc);
    if (!a)
        return;
    /* Its veth pairs go with its namespace, or before, by the caller on its thread pool
     * (cr_net_links_del): deleting one here took ~20 ms of the loop (the kernel waits for an
     * RCU grace period). */
    struct attach gone = *a;
    *a = n->at[--n->nat];
    if (gone.nport) {
        char err[256];
        free(gone.port);
        if (apply_rules(n, err, sizeof err) < 0)
            cr_log(NULL, "%s", err);
    }
    pid_t run = n->guest ? 0 : run_pid(gone.svc);
    if (run) {
        /* a run connected by us (cr_net_run_key): its address and files go now,
         * from the state file too (a state_save would keep the line while the run is a
         * zombie: a live run's) */
        char tag[24];
        snprintf(tag, sizeof tag, ".run-%d", (int)run);
        int fd = state_lock(n);
        drop_leases(n, gone.svc, NULL);
        guest_edit(n, NULL, tag);
        state_unlock(fd);
        remove_own_files(n, gone.svc);
        return;   /* in no other container's hosts file */
    }
    if (gone.release) {
        drop_leases(n, gone.svc, NULL);
        state_save(n);
    }
    /* the others that shared a network with it: without it */
    gone.svc[0] = '\0';
    hosts_refresh(n, &gone);
}

size_t cr_net_veths(const struct cr_net *n, const char *svc, char (*out)[CR_IFNAME_MAX + 1],
                    size_t max)
{
    const struct attach *a = n && !n->guest ? attach_of((struct cr_net *)n, svc) : NULL;
    size_t k = 0;
    for (; a && k < a->n && k < max; k++)
        memcpy(out[k], a->veth[k], sizeof out[k]);
    return k;
}

void cr_net_links_del(char (*names)[CR_IFNAME_MAX + 1], size_t count)
{
    struct cr_nl nl;
    char err[256];
    if (cr_nl_open(&nl, -1, err, sizeof err) < 0)
        return;
    for (size_t i = 0; i < count; i++)
        cr_nl_link_del(&nl, names[i], NULL, 0);   /* -ENODEV: gone with its namespace */
    cr_nl_close(&nl);
}

void cr_net_reclaim(struct cr_net *n, bool (*wanted)(const char *svc, const char *net, void *arg),
                    void *arg)
{
    if (!n || n->guest)
        return;
    int fd = state_lock(n);
    runs_refresh(n);
    size_t before = n->nls;
    for (size_t i = 0; i < n->nls;) {
        struct lease *l = &n->ls[i];
        struct attach *a = attach_of(n, l->svc);
        if (run_pid(l->svc) || wanted(l->svc, l->net, arg)) {
            i++;
        } else if (a) {
            a->release = true;   /* still up (stopping): when it is gone */
            i++;
        } else {
            cr_log(NULL, "network %s: address of %s given back (no longer in the config)",
                   l->net, l->svc);
            *l = n->ls[--n->nls];
        }
    }
    if (n->nls != before)
        state_write(n);
    state_unlock(fd);
}

int cr_net_forget(struct cr_net *n, const char *net, char *err, size_t errlen)
{
    struct bridge *br = NULL;
    for (size_t i = 0; n && i < n->nbr && !br; i++)
        if (!n->br[i].dead && !strcmp(n->br[i].net, net))
            br = &n->br[i];
    if (!br)
        return 0;   /* not set up: made from the new definition at its first use */
    char users[256] = "";
    size_t ul = 0;
    for (size_t i = 0; i < n->nat; i++)
        for (size_t k = 0; k < n->at[i].n; k++)
            if (n->at[i].br[k] == br && ul < sizeof users)
                ul += (size_t)snprintf(users + ul, sizeof users - ul, "%s%s", ul ? ", " : "",
                                       n->at[i].svc);
    for (struct cr_net_job *j = n->jobs; j; j = j->next)
        for (size_t k = 0; k < j->a.n; k++)
            if (j->a.br[k] == br && ul < sizeof users)
                ul += (size_t)snprintf(users + ul, sizeof users - ul, "%s%s", ul ? ", " : "",
                                       j->a.svc);
    if (ul) {
        snprintf(err, errlen, "network %s: its bridge %s is in use by %s", net, br->name, users);
        return -EBUSY;
    }
    char name[sizeof br->name];
    snprintf(name, sizeof name, "%s", br->name);
    bool adopted = br->adopted;
    *br = (struct bridge){.dead = true};
    int r = adopted ? 0 : cr_nl_link_del(&n->nl, name, err, errlen);
    if (r == -ENODEV)
        r = 0;
    char e2[256];
    if (n->table_made && apply_rules(n, e2, sizeof e2) < 0)
        cr_log(NULL, "%s", e2);
    state_save(n);
    if (r == 0)
        cr_log(NULL, "network %s: bridge %s removed (its definition changed: made again at its "
               "next use)", net, name);
    return r;
}

void cr_net_addresses(struct cr_net *n, const char *svc, char *buf, size_t len)
{
    const struct attach *a = n ? attach_of(n, svc) : NULL;
    size_t used = 0;
    buf[0] = '\0';
    for (size_t k = 0; a && k < a->n && used < len; k++) {
        char ip[16], ip6[INET6_ADDRSTRLEN] = "";
        cr_ip4_format(a->ls[k].a4, ip, sizeof ip);
        if (a->ls[k].has6)
            inet_ntop(AF_INET6, a->ls[k].a6, ip6, sizeof ip6);
        used += (size_t)snprintf(buf + used, len - used, "%s%s%s%s", k ? ", " : "", ip,
                                 *ip6 ? " " : "", ip6);
    }
}

int cr_net_traffic(struct cr_net *n, const char *svc, uint64_t *rx, uint64_t *tx)
{
    const struct attach *a = n ? attach_of(n, svc) : NULL;
    if (!a)
        return -ENOENT;
    *rx = *tx = 0;
    for (size_t k = 0; k < a->n; k++) {
        uint64_t r, t;
        if (cr_nl_link_stats(&n->nl, a->veth[k], &r, &t) == 0) {
            *rx += r;
            *tx += t;
        }
    }
    return 0;
}

/* ---- what killed runs left ------------------------------------------------------------------ */

/* A run marks what it makes on the host in STATE/run-PID ("bridge NAME", "veth NAME",
 * "table" lines, each written before the thing is made), a file it holds an flock on as long
 * as it lives: whoever gets that lock knows the run is gone, whatever its pid became since. */
static void mark_add(struct cr_net *n, const char *what, const char *name)
{
    if (!n->guest || n->mark < 0)
        return;
    char line[64];
    int len = snprintf(line, sizeof line, "%s%s%s\n", what, name ? " " : "", name ? name : "");
    if (write(n->mark, line, (size_t)len) != len)
        cr_log(NULL, "network state run-%d: %s", (int)getpid(), strerror(errno));
}

/* Under the state lock, after sweep_runs (which would take a stale run-PID of a reused pid). */
static void mark_open(struct cr_net *n)
{
    char path[sizeof n->dir + 32];
    snprintf(path, sizeof path, "%s/run-%d", n->dir, (int)getpid());
    n->mark = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    if (n->mark >= 0 && flock(n->mark, LOCK_EX | LOCK_NB) < 0) {
        close(n->mark);
        n->mark = -1;
    }
    if (n->mark < 0)
        cr_log(NULL, "network state %s: %s (a kill -9 of this run will leave its links)", path,
               strerror(errno));
}

static bool listed(char (*v)[CR_IFNAME_MAX + 1], size_t nv, const char *name)
{
    for (size_t i = 0; i < nv; i++)
        if (!strcmp(v[i], name))
            return true;
    return false;
}

static void keep_link(char (**v)[CR_IFNAME_MAX + 1], size_t *nv, const char *name)
{
    void *nvv = realloc(*v, (*nv + 1) * sizeof **v);
    if (!nvv)
        return;
    *v = nvv;
    snprintf((*v)[(*nv)++], CR_IFNAME_MAX + 1, "%s", name);
}

/* The bridges the state file names as the supervisor's, read at the first question (most
 * sweeps find no dead run, most runs' ends no bridge of their own). */
struct sup_bridges {
    char (*v)[CR_IFNAME_MAX + 1];
    size_t n;
    bool read;
};

static bool sup_bridge(struct cr_net *n, struct sup_bridges *s, const char *name)
{
    char path[sizeof n->dir + 16], line[128], a[16], b[64];
    snprintf(path, sizeof path, "%s/state", n->dir);
    FILE *st = s->read ? NULL : fopen(path, "re");
    while (st && fgets(line, sizeof line, st))
        if (sscanf(line, "%15s %63s", a, b) == 2 && !strcmp(a, "bridge"))
            keep_link(&s->v, &s->n, b);
    if (st)
        fclose(st);
    s->read = true;
    return listed(s->v, s->n, name);
}

/* One dead run's leftovers (its mark read from f): links (but the bridges the state names as
 * the supervisor's: a supervisor took them over), its table, leases and files. */
static void sweep_run(struct cr_net *n, pid_t pid, FILE *f, struct sup_bridges *sup)
{
    char line[128], a[16], b[64], err[256];
    bool table = false;
    while (fgets(line, sizeof line, f)) {
        int k = sscanf(line, "%15s %63s", a, b);
        if (k == 1 && !strcmp(a, "table")) {
            table = true;
        } else if (k == 1 && !strcmp(a, "forward") && !n->forward_ours) {
            /* it set net.ipv4.ip_forward from 0: ours to give back now */
            n->forward_ours = true;
            cr_log(NULL, "net.ipv4.ip_forward was set to 1 by a killed run (pid %d): 0 again "
                   "when this one exits", (int)pid);
        } else if (k == 2 && (!strcmp(a, "bridge") || !strcmp(a, "veth")) &&
                   cr_ifname_valid(b) && !sup_bridge(n, sup, b) &&
                   cr_nl_link_del(&n->nl, b, NULL, 0) == 0) {
            cr_log(NULL, "removed %s, left by a killed run (pid %d)", b, (int)pid);
        }
    }
    if (table) {
        char base[sizeof n->table], cmd[sizeof n->table * 2 + 96];
        cr_net_table(n->root, base, sizeof base);
        snprintf(cmd, sizeof cmd, "add table inet %.280s-r%d\ndelete table inet %.280s-r%d\n",
                 base, (int)pid, base, (int)pid);
        if (nft_ready(n, err, sizeof err) == 0 && cr_nft_run(n->nft, cmd, err, sizeof err) == 0)
            cr_log(NULL, "removed the nftables table %.280s-r%d, left by a killed run", base,
                   (int)pid);
        else
            cr_log(NULL, "removing the table of a killed run (pid %d): %s", (int)pid, err);
    }
    char tag[24];
    snprintf(tag, sizeof tag, ".run-%d", (int)pid);
    guest_edit(n, NULL, tag);
    remove_tag_files(n, tag);
}

/* Under the state lock: every run mark whose lock can be had is a dead run's; the others'
 * links are kept (n->kept) from a supervisor's sweep by prefix. */
static void sweep_runs(struct cr_net *n)
{
    struct sup_bridges sup = {0};
    char path[sizeof n->dir + 300], line[128], a[16], b[64];
    DIR *d = opendir(n->dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char *end;
        long pid = strncmp(e->d_name, "run-", 4) ? 0 : strtol(e->d_name + 4, &end, 10);
        if (pid <= 0 || *end)
            continue;
        snprintf(path, sizeof path, "%s/%s", n->dir, e->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        FILE *f = fd >= 0 ? fdopen(fd, "re") : NULL;
        if (!f) {
            if (fd >= 0)
                close(fd);
            continue;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
            sweep_run(n, (pid_t)pid, f, &sup);
            unlink(path);
        } else {
            while (fgets(line, sizeof line, f))
                if (sscanf(line, "%15s %63s", a, b) == 2 && strcmp(a, "table"))
                    keep_link(&n->kept, &n->nkept, b);
        }
        fclose(f);
    }
    if (d)
        closedir(d);
    free(sup.v);
}

/* ---- the supervisor's networking, whole --------------------------------------------------- */

static void sweep_link(const char *name, void *arg)
{
    struct cr_net *n = arg;
    if (listed(n->kept, n->nkept, name))
        return;   /* a live run's */
    if (cr_nl_link_del(&n->nl, name, NULL, 0) == 0)
        cr_log(NULL, "removed %s, left by an earlier supervisor", name);
}

/* What a supervisor's and a run's host side share: names, the state folder, netlink. run_pid:
 * a run's (its table is TABLE-rPID, its leases NAME.run-PID), 0 for a supervisor. */
static int net_new(const char *cgroup_root, const char *run_dir, pid_t run_pid,
                   struct cr_net **out, char *err, size_t errlen)
{
    struct cr_net *n = calloc(1, sizeof *n);
    if (!n)
        return -ENOMEM;
    n->mark = -1;
    snprintf(n->root, sizeof n->root, "%s", cgroup_root);
    snprintf(n->run_dir, sizeof n->run_dir, "%s", run_dir);
    cr_net_state_dir(run_dir, cgroup_root, NULL, n->dir, sizeof n->dir);
    cr_net_ifprefix(cgroup_root, n->prefix);
    cr_net_table(cgroup_root, n->table, sizeof n->table);
    if (run_pid) {
        char t[sizeof n->table];
        snprintf(t, sizeof t, "%s", n->table);
        n->guest = true;
        snprintf(n->tag, sizeof n->tag, ".run-%d", (int)run_pid);
        snprintf(n->table, sizeof n->table, "%.280s-r%d", t, (int)run_pid);
    }
    int r = mkdirs(n->dir);
    if (r < 0) {
        snprintf(err, errlen, "%s: %s", n->dir, strerror(-r));
        free(n);
        return r;
    }
    if ((r = cr_nl_open(&n->nl, -1, err, errlen)) < 0) {
        free(n);
        return r;
    }
    cr_nft_reserve();
    /* after a re-exec (the same pid and start time): still one of ip_forward's holders */
    char held[sizeof FORWARD_DIR + sizeof n->holder];
    holder_self(n->holder, sizeof n->holder);
    snprintf(held, sizeof held, "%s/%s", FORWARD_DIR, n->holder);
    n->forward_held = access(held, F_OK) == 0;
    *out = n;
    return 0;
}

int cr_net_open(const char *cgroup_root, const char *run_dir, struct cr_net **out, char *err,
                size_t errlen)
{
    struct cr_net *n;
    int r = net_new(cgroup_root, run_dir, 0, &n, err, errlen);
    if (r < 0)
        return r;
    int fd = state_lock(n);
    sweep_runs(n);   /* killed runs' links and tables; live runs' links are kept */
    state_unlock(fd);
    bool inherited = n->forward_ours;
    state_load(n);
    if (inherited)
        state_save(n);   /* forward-was 0: given back at our exit, or by the next one */
    write_resolv(n);
    /* What a killed supervisor of this root left: its links (by prefix, and the bridges
     * named in its state) and its table. libnftables is loaded only when there is one. */
    cr_nl_links(&n->nl, n->prefix, sweep_link, n);
    for (size_t i = 0; i < n->nleft; i++)
        sweep_link(n->left[i], n);
    free(n->left);
    n->left = NULL;
    if (n->table_made) {
        char cmd[sizeof n->table * 2 + 64];
        snprintf(cmd, sizeof cmd, "add table inet %s\ndelete table inet %s\n", n->table,
                 n->table);
        if (nft_ready(n, err, errlen) == 0 && cr_nft_run(n->nft, cmd, err, errlen) == 0)
            cr_log(NULL, "removed the nftables table %s, left by an earlier supervisor",
                   n->table);
        n->table_made = false;
        state_save(n);
    }
    *out = n;
    return 0;
}

int cr_net_open_run(const char *cgroup_root, const char *run_dir, struct cr_net **out,
                    char *err, size_t errlen)
{
    struct cr_net *n;
    int r = net_new(cgroup_root, run_dir, getpid(), &n, err, errlen);
    if (r < 0)
        return r;
    int fd = state_lock(n);
    sweep_runs(n);   /* what killed runs left: their links, tables, leases */
    mark_open(n);
    if (n->forward_ours)
        mark_add(n, "forward", NULL);   /* taken over from a killed run */
    state_load(n);   /* the automatic subnets and the addresses taken */
    state_unlock(fd);
    write_resolv(n);
    *out = n;
    return 0;
}

/* ---- live re-exec: the host side handed to the next program ------------------------------ */

int cr_net_handover_ok(const struct cr_net *n, char *why, size_t whylen)
{
    if (!n || !n->jobs)
        return 0;
    snprintf(why, whylen, "%s is being connected to its networks: try again when it settles",
             n->jobs->a.svc);
    return -EBUSY;
}

int cr_net_handover(const struct cr_net *n, FILE *f)
{
    if (!n || n->guest)
        return 0;
    fprintf(f, "net gen %" PRIu32 "\n", n->gen);
    for (size_t i = 0; i < n->nbr; i++) {
        const struct bridge *b = &n->br[i];
        if (b->dead)
            continue;
        fprintf(f, "net bridge %zu %s %s %" PRIu32 " %d %d %d ", i, b->net, b->name,
                b->net4.addr, b->net4.prefix, b->net6.prefix, b->internal);
        for (int k = 0; k < 16; k++)
            fprintf(f, "%02x", b->net6.addr[k]);
        fputc('\n', f);
    }
    for (size_t i = 0; i < n->nat; i++) {
        const struct attach *a = &n->at[i];
        fprintf(f, "net attach %s %zu %zu %d", a->svc, a->pnet, a->n, a->release);
        for (size_t k = 0; k < a->n; k++)
            fprintf(f, " %zu:%s", (size_t)(a->br[k] - n->br), a->veth[k]);
        for (size_t k = 0; k < a->nport; k++)
            fprintf(f, " p%" PRIu32 ":%u:%u:%u", a->port[k].ip, a->port[k].host,
                    a->port[k].container, a->port[k].proto);
        fputc('\n', f);
    }
    return ferror(f) ? -EIO : 0;
}

/* One "net bridge" line read back into its slot. */
static int resume_bridge(struct cr_net *n, const char *line)
{
    size_t slot;
    struct bridge b = {0};
    char hex[33];
    int internal;
    if (sscanf(line, "net bridge %zu %63s %15s %" SCNu32 " %d %d %d %32s", &slot, b.net, b.name,
               &b.net4.addr, &b.net4.prefix, &b.net6.prefix, &internal, hex) != 8 ||
        slot >= MAX_BRIDGES || strlen(hex) != 32 || !cr_ifname_valid(b.name))
        return -EINVAL;
    for (int k = 0; k < 16; k++)
        if (sscanf(hex + 2 * k, "%2hhx", &b.net6.addr[k]) != 1)
            return -EINVAL;
    b.internal = internal != 0;
    for (size_t i = n->nbr; i < slot; i++)
        n->br[i] = (struct bridge){.dead = true};   /* forgotten ones keep their slots */
    n->br[slot] = b;
    if (slot >= n->nbr)
        n->nbr = slot + 1;
    return 0;
}

/* One "net attach" line read back; its addresses are the state file's. */
static int resume_attach(struct cr_net *n, const char *line)
{
    struct attach a = {0};
    int release, off = 0;
    if (sscanf(line, "net attach %63s %zu %zu %d%n", a.svc, &a.pnet, &a.n, &release, &off) != 4 ||
        a.n == 0 || a.n > MAX_NETS || a.pnet >= a.n)
        return -EINVAL;
    a.release = release != 0;
    const char *p = line + off;
    for (size_t k = 0; k < a.n; k++) {
        size_t slot;
        int used = 0;
        if (sscanf(p, " %zu:%15s%n", &slot, a.veth[k], &used) != 2 || slot >= n->nbr ||
            n->br[slot].dead)
            return -EINVAL;
        p += used;
        a.br[k] = &n->br[slot];
        const struct lease *l = NULL;
        for (size_t i = 0; i < n->nls && !l; i++)
            if (!strcmp(n->ls[i].svc, a.svc) && !strcmp(n->ls[i].net, a.br[k]->net))
                l = &n->ls[i];
        if (!l && run_pid(a.svc)) {
            /* a run we connected, gone during the re-exec (state_load left its address
             * out): its files go, nothing else is left of it */
            remove_own_files(n, a.svc);
            return 0;
        }
        if (!l)
            return -ENOENT;
        a.ls[k] = *l;
    }
    struct cr_port port;
    unsigned host, ctr, proto;
    int used = 0;
    while (sscanf(p, " p%" SCNu32 ":%u:%u:%u%n", &port.ip, &host, &ctr, &proto, &used) == 4) {
        p += used;
        port.host = (uint16_t)host;
        port.container = (uint16_t)ctr;
        port.proto = (uint8_t)proto;
        struct cr_port *v = realloc(a.port, (a.nport + 1) * sizeof *v);
        if (!v) {
            free(a.port);
            return -ENOMEM;
        }
        a.port = v;
        a.port[a.nport++] = port;
    }
    struct attach *v = realloc(n->at, (n->nat + 1) * sizeof *v);
    if (!v) {
        free(a.port);
        return -ENOMEM;
    }
    n->at = v;
    n->at[n->nat++] = a;
    return 0;
}

int cr_net_resume(const char *cgroup_root, const char *run_dir, const char *state,
                  struct cr_net **out, char *err, size_t errlen)
{
    struct cr_net *n;
    int r = net_new(cgroup_root, run_dir, 0, &n, err, errlen);
    if (r < 0)
        return r;
    int fd = state_lock(n);
    sweep_runs(n);   /* killed runs' links; live runs' are kept */
    state_unlock(fd);
    state_load(n);   /* the addresses, the subnets, the table, ip_forward: as they are */
    for (const char *line = state; line && *line;) {
        const char *end = strchr(line, '\n');
        int len = (int)(end ? end - line : (long)strlen(line));
        if (!strncmp(line, "net gen ", 8))
            r = sscanf(line, "net gen %" SCNu32, &n->gen) == 1 ? 0 : -EINVAL;
        else if (!strncmp(line, "net bridge ", 11))
            r = resume_bridge(n, line);
        else if (!strncmp(line, "net attach ", 11))
            r = resume_attach(n, line);
        else
            r = 0;
        /* One line not taken back costs that container its network's bookkeeping (its
         * hosts entry, its ports at a reload), not the others theirs. */
        if (r < 0)
            cr_log(NULL, "reexec: network state not taken back (%s): %.*s",
                   r == -ENOENT ? "no address kept" : strerror(-r), len, line);
        line = end ? end + 1 : line + len;
    }
    /* The bridges of the state file that are no longer ours: swept as a killed one's. */
    for (size_t i = 0; i < n->nleft; i++) {
        bool live = false;
        for (size_t k = 0; k < n->nbr && !live; k++)
            live = !n->br[k].dead && !strcmp(n->br[k].name, n->left[i]);
        if (!live)
            sweep_link(n->left[i], n);
    }
    free(n->left);
    n->left = NULL;
    write_resolv(n);
    *out = n;
    return 0;
}

/* The own files of name (STATE/NAME/hosts, and its folder). */
static void remove_own_files(struct cr_net *n, const char *name)
{
    char p[sizeof n->dir + 600];
    snprintf(p, sizeof p, "%s/%s/hosts", n->dir, name);
    unlink(p);
    *strrchr(p, '/') = '\0';
    rmdir(p);
}

/* The own files of the runs of tag (".run-PID"): STATE/SVC.run-PID/hosts. */
static void remove_tag_files(struct cr_net *n, const char *tag)
{
    DIR *d = opendir(n->dir);
    struct dirent *e;
    size_t tl = strlen(tag);
    while (d && (e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l > tl && !strcmp(e->d_name + l - tl, tag))
            remove_own_files(n, e->d_name);
    }
    if (d)
        closedir(d);
}

/* A run's end: its lines of the state file, its own files and its mark. */
static void guest_close(struct cr_net *n)
{
    int fd = state_lock(n);
    guest_edit(n, NULL, n->tag);
    remove_tag_files(n, n->tag);
    if (n->mark >= 0) {
        char path[sizeof n->dir + 32];
        snprintf(path, sizeof path, "%s/run-%d", n->dir, (int)getpid());
        unlink(path);
        close(n->mark);
        n->mark = -1;
    }
    state_unlock(fd);
}

void cr_net_run_key(const char *svc, pid_t run, char *buf, size_t len)
{
    snprintf(buf, len, "%s.run-%d", svc, (int)run);
}

void cr_net_each_run(struct cr_net *n, void (*fn)(const char *key, pid_t run, void *arg),
                     void *arg)
{
    for (size_t i = 0; n && !n->guest && i < n->nat; i++) {
        char key[NAME_LEN];
        snprintf(key, sizeof key, "%s", n->at[i].svc);
        pid_t run = run_pid(key);
        if (run) {
            fn(key, run, arg);   /* it may detach it: looked at again */
            if (i < n->nat && strcmp(n->at[i].svc, key))
                i--;
        }
    }
}

void cr_net_files_name(const struct cr_net *n, const char *svc, char *buf, size_t len)
{
    snprintf(buf, len, "%s%s", svc, n ? n->tag : "");
}

int cr_net_bind_files(const char *run_dir, const char *cgroup_root, const char *files_name,
                      const char *only_net, const struct cr_spec *spec, struct cr_spec *copy,
                      char paths[2][4200])
{
    static const char *const dst[] = {"/etc/hosts", "/etc/resolv.conf"};
    *copy = *spec;
    if (!(spec->namespaces & CR_NS_MOUNT) || !spec->rootfs)
        return 0;
    struct cr_bind *b = malloc((spec->nbinds + 2) * sizeof *b);
    if (!b)
        return -ENOMEM;
    if (spec->nbinds)
        memcpy(b, spec->binds, spec->nbinds * sizeof *b);
    size_t n = spec->nbinds;
    cr_net_hosts_file(run_dir, cgroup_root, files_name, only_net, paths[0], 4200);
    cr_net_resolv_file(run_dir, cgroup_root, paths[1], 4200);
    for (size_t i = 0; i < 2; i++) {
        bool own = false;
        for (size_t k = 0; k < spec->nbinds; k++)
            own |= !strcmp(spec->binds[k].dst, dst[i]);
        if (!own)
            b[n++] = (struct cr_bind){.src = paths[i], .dst = (char *)dst[i], .ro = true};
    }
    copy->binds = b;
    copy->nbinds = n;
    return 0;
}

void cr_net_hosts_ensure(const char *path)
{
    if (access(path, F_OK) == 0)
        return;
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        mkdirs(dir);
    }
    /* Made empty, if it is still not there: its text is written before the container's
     * workload may run (the network's job, cr_net_finish, comes before the go-ahead). Only
     * made, never emptied: the supervisor connecting a run (run_net.h) writes the run's file
     * while the run gets here, and an emptying write after its text lost the services' names
     * in the run's container. */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0) {
        if (fchmod(fd, 0644) < 0)
            cr_log(NULL, "making %s: %s", path, strerror(errno));
        close(fd);
    } else if (errno != EEXIST) {
        cr_log(NULL, "making %s: %s", path, strerror(errno));
    }
}

/* The folder and what the supervisor writes in it (state, hosts.NET, resolv.conf, lock); a
 * service's own folder left in it keeps it. Under the lock. */
static void state_remove(struct cr_net *n)
{
    DIR *d = opendir(n->dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        const char *f = e->d_name;
        if (!strcmp(f, "state") || !strcmp(f, "state.new") || !strcmp(f, "resolv.conf") ||
            !strcmp(f, "lock") || !strncmp(f, "hosts.", 6)) {
            char p[sizeof n->dir + 300];
            snprintf(p, sizeof p, "%s/%s", n->dir, f);
            unlink(p);
        }
    }
    if (d)
        closedir(d);
    rmdir(n->dir);
}

/* A supervisor's clean exit: state_save(), unless nothing in the state is worth keeping (no
 * automatic subnet, no address of a live run, nothing of ours on the host): then the folder
 * goes (it stayed behind for every cgroup root). */
static void state_close(struct cr_net *n)
{
    if (n->guest)
        return;
    int fd = state_lock(n);
    runs_refresh(n);
    bool keep = n->nsub || n->nls || n->forward_ours || n->table_made;
    for (size_t i = 0; i < n->nbr && !keep; i++)
        keep = !n->br[i].dead;
    if (keep)
        state_write(n);
    else
        state_remove(n);
    state_unlock(fd);
}

void cr_net_close(struct cr_net *n)
{
    if (!n)
        return;
    char err[256];
    while (n->nat)
        cr_net_detach(n, n->at[n->nat - 1].svc);
    struct sup_bridges sup = {0};
    if (n->guest)
        guest_close(n);
    /* a run's own bridges, but those a supervisor started since took over */
    for (size_t i = 0; i < n->nbr; i++)
        if (!n->br[i].adopted && !n->br[i].dead &&
            !(n->guest && sup_bridge(n, &sup, n->br[i].name))) {
            int r = cr_nl_link_del(&n->nl, n->br[i].name, err, sizeof err);
            if (r < 0 && r != -ENODEV)   /* gone already: nothing to say */
                cr_log(NULL, "%s", err);
        }
    free(sup.v);
    if (n->table_made && nft_ready(n, err, sizeof err) < 0)
        cr_log(NULL, "nftables table %s left in place: %s", n->table, err);
    if (n->nft) {
        char cmd[sizeof n->table + 64];
        snprintf(cmd, sizeof cmd, "delete table inet %s\n", n->table);
        if (n->table_made && cr_nft_run(n->nft, cmd, err, sizeof err) < 0)
            cr_log(NULL, "%s", err);
        n->table_made = false;
    }
    n->nbr = 0;
    if (n->forward_ours || n->forward_held)
        forward_release(n);
    state_close(n);
    cr_nft_close(n->nft);
    cr_nl_close(&n->nl);
    if (n->mark >= 0)
        close(n->mark);
    free(n->kept);
    free(n->ls);
    free(n->sub);
    free(n->at);
    free(n);
}
