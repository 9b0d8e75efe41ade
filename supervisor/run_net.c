/* A run's network through the supervisor of its root; see run_net.h. */
#include "run_net.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include "ctl_proto.h"
#include "daemon_int.h"
#include "log.h"
#include "loopback.h"
#include "net/host.h"

/* ---- the supervisor's side ------------------------------------------------------------------ */

struct sv_run_net {
    uv_work_t req;
    uv_poll_t poll;              /* the run's pidfd, once connected */
    struct sv *sv;
    struct cr_net_job *job;
    char key[64];                /* SVC.run-PID */
    pid_t run;
    int pidfd;
    void (*done)(void *arg, int r, const char *text);
    void *arg;
    struct sv_run_net *next;     /* sv->run_nets: connected, watched */
};

static void unlink_run(struct sv_run_net *w)
{
    for (struct sv_run_net **p = &w->sv->run_nets; *p; p = &(*p)->next)
        if (*p == w) {
            *p = w->next;
            break;
        }
}

static void on_poll_closed(uv_handle_t *h)
{
    struct sv_run_net *w = h->data;
    close(w->pidfd);
    free(w);
}

/* The run ended: its address and files go (its veth went with its container's namespace). */
static void on_run_gone(uv_poll_t *p, int status, int events)
{
    (void)status;
    (void)events;
    struct sv_run_net *w = p->data;
    unlink_run(w);
    if (w->sv->rt.net)
        cr_net_detach(w->sv->rt.net, w->key);
    uv_close((uv_handle_t *)&w->poll, on_poll_closed);
}

/* Watches w's run by its pidfd, listed in sv->run_nets: 0; -1: not watched (nothing to undo
 * but w); -2: its watch failed once made, and it was let go as if it ended (w is freed). */
static int watch(struct sv_run_net *w)
{
    if (uv_poll_init(w->sv->rt.loop, &w->poll, w->pidfd) < 0)
        return -1;
    w->poll.data = w;
    w->next = w->sv->run_nets;
    w->sv->run_nets = w;
    if (uv_poll_start(&w->poll, UV_READABLE, on_run_gone) == 0)
        return 0;
    on_run_gone(&w->poll, 0, 0);
    return -2;
}

static void work_run(uv_work_t *req)
{
    cr_net_job_run(((struct sv_run_net *)req)->job);
}

static void work_done(uv_work_t *req, int status)
{
    struct sv_run_net *w = (struct sv_run_net *)req;
    char err[512], addrs[256];
    void (*done)(void *arg, int r, const char *text) = w->done;
    void *arg = w->arg;
    int r = cr_net_finish(w->sv->rt.net, w->job, err, sizeof err), watched = -1;
    if (r == 0 && status < 0) {
        cr_net_detach(w->sv->rt.net, w->key);
        snprintf(err, sizeof err, "cancelled");
        r = -ECANCELED;
    } else if (r == 0 && (watched = watch(w)) < 0) {
        if (watched == -1)
            cr_net_detach(w->sv->rt.net, w->key);
        snprintf(err, sizeof err, "cannot watch the run's pid");
        r = -EIO;
    }
    if (r < 0) {
        if (watched != -2) {   /* -2: freed, let go */
            close(w->pidfd);
            free(w);
        }
        done(arg, r, err);
        return;
    }
    cr_net_addresses(w->sv->rt.net, w->key, addrs, sizeof addrs);
    cr_log(NULL, "run %s (pid %d): connected, %s", w->key, (int)w->run, addrs);
    done(arg, 0, addrs);
}

/* A service name as a file name and a hosts entry: letters, digits, '-', '_', '.', not first. */
static bool plain_name(const char *s)
{
    if (!*s || *s == '.' || strlen(s) > 40)
        return false;
    for (; *s; s++)
        if (!(('a' <= *s && *s <= 'z') || ('A' <= *s && *s <= 'Z') || ('0' <= *s && *s <= '9') ||
              *s == '-' || *s == '_' || *s == '.'))
            return false;
    return true;
}

/* Whether pid's network namespace is this process's own (the host's, as a rule). */
static bool own_netns(pid_t pid)
{
    char path[64];
    struct stat a, b;
    snprintf(path, sizeof path, "/proc/%d/ns/net", (int)pid);
    return stat(path, &a) < 0 || stat("/proc/self/ns/net", &b) < 0 ||
           (a.st_dev == b.st_dev && a.st_ino == b.st_ino);
}

/* init's parent, from /proc/INIT/stat (after the command's last ')'); -1 when gone. */
static pid_t parent_of(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    int ppid;
    return p && sscanf(p + 1, " %*c %d", &ppid) == 1 ? (pid_t)ppid : -1;
}

/* Whether tid is a thread of pid other than its first (a run makes its container's
 * namespace on one: run_net.h). */
static bool thread_of(pid_t tid, pid_t pid)
{
    char path[64];
    struct stat st;
    snprintf(path, sizeof path, "/proc/%d/task/%d", (int)pid, (int)tid);
    return tid != pid && stat(path, &st) == 0;
}

int sv_net_connect(struct cr_runtime *rt, const char *name, pid_t run, pid_t init,
                   const char *root, char *const *nets, size_t nnets,
                   void (*done)(void *arg, int r, const char *text), void *arg, char *why,
                   size_t whylen)
{
    struct sv *sv = sv_of(rt);
    struct cr_net_def defs[8];
    if (sv->shutting_down || sv->finished || rt->run_mode) {
        snprintf(why, whylen, "the supervisor is shutting down");
        return -ESHUTDOWN;
    }
    if (!rt->net) {
        snprintf(why, whylen, "this supervisor has no networking");
        return -ENODEV;
    }
    if (!plain_name(name)) {
        snprintf(why, whylen, "bad service name: %s", name);
        return -EINVAL;
    }
    if (strcmp(root, rt->cgroup_root)) {
        snprintf(why, whylen, "cgroup root %s is not this supervisor's (%s)", root,
                 rt->cgroup_root);
        return -EXDEV;
    }
    if (nnets > sizeof defs / sizeof defs[0]) {
        snprintf(why, whylen, "more than %zu networks", sizeof defs / sizeof defs[0]);
        return -E2BIG;
    }
    for (size_t i = 0; i < nnets; i++) {
        const struct cr_network *nw = cr_config_network(sv->cfg, nets[i]);
        if (!nw) {
            snprintf(why, whylen, "network %s is not one of this supervisor's", nets[i]);
            return -ENOENT;
        }
        cr_network_def(nw, &defs[i]);
    }
    /* init: the run's container's init, or the run itself, in the namespace it made for it
     * at its start (run_net.h) */
    if (init != run && parent_of(init) != run && !thread_of(init, run)) {
        snprintf(why, whylen, "pid %d is not a child or a thread of pid %d", (int)init,
                 (int)run);
        return -EPERM;
    }
    if (own_netns(init)) {
        snprintf(why, whylen, "pid %d is in the supervisor's own network namespace", (int)init);
        return -EPERM;
    }
    struct sv_run_net *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(why, whylen, "out of memory");
        return -ENOMEM;
    }
    w->sv = sv;
    w->run = run;
    w->done = done;
    w->arg = arg;
    cr_net_run_key(name, run, w->key, sizeof w->key);
    if ((w->pidfd = (int)syscall(SYS_pidfd_open, run, 0)) < 0) {
        snprintf(why, whylen, "pidfd_open %d: %s", (int)run, strerror(errno));
        free(w);
        return -ESRCH;
    }
    int r = cr_net_prepare(rt->net, w->key, defs, nnets, NULL, 0, init, &w->job, why, whylen);
    if (r == 0 && (r = uv_queue_work(rt->loop, &w->req, work_run, work_done)) < 0) {
        cr_net_job_run(w->job);   /* no thread pool: here, then, answered at once */
        work_done(&w->req, 0);
        return 0;
    }
    if (r < 0) {
        close(w->pidfd);
        free(w);
    }
    return r;
}

/* After a re-exec: a connected run handed over, watched again (gone meanwhile: let go). */
static void rewatch(const char *key, pid_t run, void *arg)
{
    struct sv *sv = arg;
    struct sv_run_net *w = calloc(1, sizeof *w);
    int r = -1;
    if (w) {
        w->sv = sv;
        w->run = run;
        snprintf(w->key, sizeof w->key, "%s", key);
        if ((w->pidfd = (int)syscall(SYS_pidfd_open, run, 0)) >= 0 && (r = watch(w)) == -1)
            close(w->pidfd);
    }
    if (r == -1) {   /* gone meanwhile, or not to be watched: let go now */
        free(w);
        cr_net_detach(sv->rt.net, key);
    }
}

void sv_run_nets_resume(struct sv *sv)
{
    cr_net_each_run(sv->rt.net, rewatch, sv);
}

void sv_run_nets_close(struct sv *sv)
{
    while (sv->run_nets) {
        struct sv_run_net *w = sv->run_nets;
        sv->run_nets = w->next;
        uv_close((uv_handle_t *)&w->poll, on_poll_closed);
    }
}

/* ---- the run's side -------------------------------------------------------------------------- */

/* A run makes its container's network namespace ahead (sv_netns_ahead): a thread of the run
 * unshares one from the start, while the run reads its config (making a namespace is ~0.5
 * ms of the kernel's time; in init's set-up, or the run's clone, it came before the
 * workload). Before the clone the run moves into it (the container inherits it). On a
 * bridge, the thread then asks the supervisor of the root from that namespace to connect
 * it, while the run goes on (sv_keeper_early); the supervisor makes the veth pair
 * meanwhile, finding the namespace through the thread's id, so the thread stays until the
 * answer. */

/* The question but for the pid of the namespace: "net-connect NAME RUN " and its tail. */
struct question {
    char head[128];
    char tail[CR_CTL_LINE_MAX];
};

static int question(struct question *q, const char *name, const char *root,
                    const struct cr_service *conf)
{
    int h = snprintf(q->head, sizeof q->head, "net-connect %s %d ", name, (int)getpid());
    int len = snprintf(q->tail, sizeof q->tail, " %s", root);
    for (size_t i = 0; i < conf->nnets && len < (int)sizeof q->tail; i++)
        len += snprintf(q->tail + len, sizeof q->tail - (size_t)len, " %s", conf->nets[i]->name);
    /* the pid takes at most 10 bytes, the newline one */
    if (h >= (int)sizeof q->head || h + len + 11 >= CR_CTL_LINE_MAX)
        return -EAGAIN;
    q->tail[len] = '\n';
    q->tail[len + 1] = '\0';
    return 0;
}

/* The question on a connected socket: 0, or -EAGAIN when it was not sent. Any thread. */
static int ask(int fd, const struct question *q, pid_t nspid)
{
    char line[CR_CTL_LINE_MAX + 16];
    int len = snprintf(line, sizeof line, "%s%d%s", q->head, (int)nspid, q->tail);
    return send(fd, line, (size_t)len, MSG_NOSIGNAL) == len ? 0 : -EAGAIN;
}

static int keeper_socket(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (!path || strlen(path) >= sizeof sa.sun_path)
        return -1;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(fd);
        return -1;   /* no supervisor there */
    }
    /* The answer comes once the veth is made (milliseconds); a supervisor that takes longer
     * than this is stuck, and may have connected it or not: the start fails. */
    struct timeval tv = {.tv_sec = 10};
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
    return fd;
}

/* The namespace made ahead, and the early question; the thread touches nothing but this
 * (the run may free its config meanwhile). */
static struct {
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int state;                   /* the namespace: 0: not yet; 1: made (nsfd); -1: not */
    int nsfd;
    int want;                    /* 1: the question is posted (q, path): the thread asks it */
    int quit;                    /* 1: or it never will be: the thread ends */
    int asked;                   /* 0: not yet; 1: asked on fd; -1: not (no supervisor);
                                    -2: not (no namespace) */
    int fd;                      /* the connection the question went on (-1: none) */
    int home;                    /* the run's own network namespace, to go back to */
    int hold[2];                 /* the thread reads hold[0] until hold[1] is closed */
    struct question q;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
} early = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .nsfd = -1,
           .fd = -1, .home = -1, .hold = {-1, -1}};

static void early_publish(int *field, int value)
{
    pthread_mutex_lock(&early.mu);
    *field = value;
    pthread_cond_broadcast(&early.cv);
    pthread_mutex_unlock(&early.mu);
}

/* Waits until *field is set; its value. */
static int early_wait(const int *field)
{
    pthread_mutex_lock(&early.mu);
    while (!*field)
        pthread_cond_wait(&early.cv, &early.mu);
    int v = *field;
    pthread_mutex_unlock(&early.mu);
    return v;
}

static void *early_main(void *arg)
{
    (void)arg;
    int nsfd = -1;
    if (unshare(CLONE_NEWNET) == 0 &&
        (nsfd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)) >= 0)
        cr_loopback_up();   /* init does it in a namespace of its own making */
    early.nsfd = nsfd;
    early_publish(&early.state, nsfd >= 0 ? 1 : -1);
    /* Asked by sv_keeper_early, or let go by sv_netns_settle (not asked: the thread ends),
     * or neither (not used: it waits until the run ends). */
    pthread_mutex_lock(&early.mu);
    while (!early.want && !early.quit)
        pthread_cond_wait(&early.cv, &early.mu);
    int want = early.want;
    pthread_mutex_unlock(&early.mu);
    if (!want)
        return NULL;
    int fd = nsfd >= 0 ? keeper_socket(early.path) : -1;
    if (fd >= 0 && ask(fd, &early.q, gettid()) < 0) {
        close(fd);
        fd = -1;
    }
    early.fd = fd;
    early_publish(&early.asked, fd >= 0 ? 1 : nsfd >= 0 ? -1 : -2);
    char c;
    while (fd >= 0 && read(early.hold[0], &c, 1) < 0 && errno == EINTR)
        ;
    return NULL;
}

/* The write end first: the thread's read then ends (EOF) on the read end it still holds. */
static void early_close(void)
{
    for (int i = 1; i >= 0; i--)
        if (early.hold[i] >= 0) {
            close(early.hold[i]);
            early.hold[i] = -1;
        }
}

void sv_netns_ahead(void)
{
    static char stack[64 * 1024] __attribute__((aligned(64)));
    if (early.started || pipe2(early.hold, O_CLOEXEC) < 0)
        return;
    pthread_attr_t a;
    sigset_t all, old;
    sigfillset(&all);
    pthread_attr_init(&a);
    pthread_attr_setstack(&a, stack, sizeof stack);   /* no mmap, no guard page to make */
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    /* On another CPU than this one: left to the scheduler, the thread was often put
     * behind the run on its CPU and ran only when the run first waited (~1.6 ms later,
     * median, on 2 CPUs), which the namespace was to be made during. */
    cpu_set_t cpus;
    int here = sched_getcpu(), others = 0;
    if (here >= 0 && here < CPU_SETSIZE && sched_getaffinity(0, sizeof cpus, &cpus) == 0) {
        CPU_CLR(here, &cpus);
        others = CPU_COUNT(&cpus);
    }
    if (others > 0)
        pthread_attr_setaffinity_np(&a, sizeof cpus, &cpus);
    pthread_sigmask(SIG_SETMASK, &all, &old);   /* the thread takes no signal */
    pthread_t t;
    int r = pthread_create(&t, &a, early_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&a);
    if (r != 0)
        early_close();
    else
        early.started = true;
}

void sv_keeper_early(struct sv *sv, const struct cr_service *conf)
{
    /* In a user namespace the container's network namespace must be that namespace's (for
     * its root to bind low ports): made with it, in the clone, as without a supervisor. */
    const char *path = sv->cfg->global.control_socket;
    if (!early.started || conf->spec.namespaces & CR_NS_USER || !path ||
        strlen(path) >= sizeof early.path ||
        question(&early.q, conf->name, sv->cfg->global.cgroup_root, conf) < 0)
        return;
    memcpy(early.path, path, strlen(path) + 1);
    early_publish(&early.want, 1);
}

bool sv_netns_settle(struct cr_runtime *rt, bool bridge)
{
    (void)rt;
    if (!early.started || early_wait(&early.state) != 1)
        return false;
    early_publish(&early.quit, !early.want);
    /* On a bridge: the way back if the supervisor says no (a guest run connecting it here
     * needs the host's netlink) */
    if (bridge && early.home < 0)
        early.home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if ((!bridge || early.home >= 0) && setns(early.nsfd, CLONE_NEWNET) == 0) {
        close(early.nsfd);
        early.nsfd = -1;
        return true;
    }
    /* Not movable into it: the clone makes the namespace, and the question is asked after
     * it, as without an early one (the thread's, if asked, is let go). */
    if (early.want && early_wait(&early.asked) == 1) {
        close(early.fd);
        early.fd = -1;
    }
    early.want = 0;
    early_close();
    if (early.home >= 0)
        close(early.home);
    early.home = -1;
    return false;
}

/* Back in the run's own namespace unless it stays in the container's (connected): a guest
 * run connecting it here needs the host's netlink. */
static void early_home(bool stay)
{
    if (early.home < 0)
        return;
    if (!stay && setns(early.home, CLONE_NEWNET) < 0)
        abort();   /* it would connect the wrong namespace */
    close(early.home);
    early.home = -1;
}

int sv_keeper_connect(struct cr_runtime *rt, struct cr_svc *svc, pid_t pid, char *why,
                      size_t whylen)
{
    struct sv *sv = sv_of(rt);
    why[0] = '\0';
    int fd = -1, asked = early.want ? early_wait(&early.asked) : 0;
    early.want = 0;
    if (asked == 1) {
        fd = early.fd;
        early.fd = -1;
    }
    struct question q;
    if (fd < 0 && (asked == -1 ||   /* no supervisor there a moment ago */
                   question(&q, cr_svc_name(svc), sv->cfg->global.cgroup_root,
                            cr_svc_conf(svc)) < 0 ||
                   (fd = keeper_socket(sv->cfg->global.control_socket)) < 0 ||
                   ask(fd, &q, pid) < 0)) {
        if (fd >= 0)
            close(fd);
        early_close();
        early_home(false);
        return -EAGAIN;
    }
    char ans[512];
    size_t got = 0;
    ssize_t n = 0;
    while (got < sizeof ans - 1 && !memchr(ans, '\n', got) &&
           ((n = recv(fd, ans + got, sizeof ans - 1 - got, 0)) > 0 || (n < 0 && errno == EINTR)))
        got += n > 0 ? (size_t)n : 0;
    close(fd);
    early_close();   /* the asking thread goes: the supervisor has the namespace */
    ans[got] = '\0';
    char *end = strchr(ans, '\n');
    if (end)
        *end = '\0';
    /* Connected: the run stays in the container's namespace (it needs no network of its own
     * from here on; going back cost ~0.3 ms more per run, paired). */
    early_home(end && !strncmp(ans, "ok", 2));
    if (!end) {
        snprintf(why, whylen, "the supervisor at %s did not answer",
                 sv->cfg->global.control_socket);
        return -ETIMEDOUT;
    }
    if (!strncmp(ans, "ok", 2))
        return 0;
    /* "error CODE TEXT": an older supervisor (unknown command), a network it does not have */
    snprintf(why, whylen, "%s", ans);
    return -EAGAIN;
}

int sv_run_net_open(struct cr_runtime *rt, char *err, size_t errlen)
{
    return cr_net_open_run(rt->cgroup_root, rt->run_dir, &rt->net, err, errlen);
}
