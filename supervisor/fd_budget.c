/* The fd budget (fd_budget.h). */
#include "fd_budget.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "api/http.h"

unsigned long cr_fd_count_open(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return 3;
    unsigned long n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n ? n - 1 : 0;   /* the directory's own fd */
}

static bool logged(const char *spec)
{
    return !spec || strcmp(spec, "NONE");
}

unsigned long cr_fd_service_cost(const struct cr_service *c)
{
    unsigned long n = 2 + logged(c->stdout_logfile);              /* stdout pipe, its file */
    if (!c->redirect_stderr)
        n += 2 + logged(c->stderr_logfile);                       /* stderr pipe, its file */
    if (c->stdin_mode && !strcmp(c->stdin_mode, "pipe"))
        n++;                                                      /* stdin pipe's write end */
    return n + 3;                                /* init's pidfd, events pipe, cgroup dir */
}

unsigned long cr_fd_need(const struct cr_config *cfg, unsigned long inherited)
{
    unsigned long n = inherited + CR_FD_FIXED + CR_FD_CONTROL_RESERVE;
    if (cfg->global.metrics_listen)
        n += 1 + CR_HTTP_CLIENTS_MAX;
    if (cfg->global.rpc_unix_file)
        n += 1 + CR_HTTP_CLIENTS_MAX;
    if (cfg->global.rpc_inet_port)
        n += 1 + CR_HTTP_CLIENTS_MAX;
    for (size_t i = 0; i < cfg->nservices; i++)
        n += cr_fd_service_cost(&cfg->services[i]);
    return n;
}

/* 1650 → "1,650" */
static const char *grouped(unsigned long long v, char *buf, size_t len)
{
    char raw[32];
    int n = snprintf(raw, sizeof raw, "%llu", v);
    size_t o = 0;
    for (int i = 0; i < n && o + 2 < len; i++) {
        if (i && (n - i) % 3 == 0)
            buf[o++] = ',';
        buf[o++] = raw[i];
    }
    buf[o] = 0;
    return buf;
}

int cr_fd_budget(const struct cr_config *cfg, unsigned long inherited, char *msg, size_t len)
{
    unsigned long need = cr_fd_need(cfg, inherited);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 0;   /* nothing to compare with */
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need && rl.rlim_cur < rl.rlim_max) {
        struct rlimit raised = {rl.rlim_max, rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
            rl = raised;
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need)
        return 0;
    char a[32], b[32];
    snprintf(msg, len, "%zu service%s need ~%s file descriptors; the limit is %s: raise "
             "LimitNOFILE (systemd) / ulimit -n", cfg->nservices, cfg->nservices == 1 ? "" : "s",
             grouped(need, a, sizeof a), grouped(rl.rlim_cur, b, sizeof b));
    return -EMFILE;
}
