/* A seccomp profile in the Docker/OCI JSON format (moby's profiles/seccomp/default.json, podman's
 * /usr/share/containers/seccomp.json, `docker run --security-opt seccomp=FILE`) → rules in a
 * libseccomp filter. Read with json-c; the meaning follows Docker's loader:
 *   defaultAction, defaultErrnoRet; architectures (OCI) or archMap (Docker: the native
 *   architecture's entry adds its subArchitectures); syscalls[]: names, action, errnoRet,
 *   args (index, value, valueTwo, op), includes/excludes by caps (the service's capability
 *   set), arches (Go's names: amd64, ...) and minKernel. Unknown syscall names are skipped, as
 *   Docker does; several args on the same index become one rule each.
 * Syntax errors name file:line:column; errors of meaning name the file and the JSON path. */
#include "policy/internal.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/utsname.h>

#define PERR(...) (snprintf(err, len, __VA_ARGS__), -EINVAL)

static bool action_of(const char *name, int errno_ret, uint32_t *out)
{
    static const struct { const char *name; uint32_t act; } acts[] = {
        {"SCMP_ACT_ALLOW", SCMP_ACT_ALLOW}, {"SCMP_ACT_KILL", SCMP_ACT_KILL},
        {"SCMP_ACT_KILL_THREAD", SCMP_ACT_KILL_THREAD},
        {"SCMP_ACT_KILL_PROCESS", SCMP_ACT_KILL_PROCESS}, {"SCMP_ACT_TRAP", SCMP_ACT_TRAP},
        {"SCMP_ACT_LOG", SCMP_ACT_LOG},
    };
    if (!strcmp(name, "SCMP_ACT_ERRNO")) {
        *out = SCMP_ACT_ERRNO((uint32_t)errno_ret);
        return true;
    }
    if (!strcmp(name, "SCMP_ACT_TRACE")) {
        *out = SCMP_ACT_TRACE((uint32_t)errno_ret);
        return true;
    }
    for (size_t i = 0; i < sizeof acts / sizeof *acts; i++)
        if (!strcmp(name, acts[i].name)) {
            *out = acts[i].act;
            return true;
        }
    return false;
}

static bool op_of(const char *name, enum scmp_compare *out)
{
    static const struct { const char *name; enum scmp_compare op; } ops[] = {
        {"SCMP_CMP_NE", SCMP_CMP_NE}, {"SCMP_CMP_LT", SCMP_CMP_LT}, {"SCMP_CMP_LE", SCMP_CMP_LE},
        {"SCMP_CMP_EQ", SCMP_CMP_EQ}, {"SCMP_CMP_GE", SCMP_CMP_GE}, {"SCMP_CMP_GT", SCMP_CMP_GT},
        {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ},
    };
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
        if (!strcmp(name, ops[i].name)) {
            *out = ops[i].op;
            return true;
        }
    return false;
}

/* "SCMP_ARCH_X86_64" → libseccomp's token; 0 if unknown. */
static uint32_t arch_of(const char *name)
{
    char low[32];
    size_t skip = strncmp(name, "SCMP_ARCH_", 10) ? 0 : 10, n = strlen(name + skip);
    if (n == 0 || n >= sizeof low)
        return 0;
    for (size_t i = 0; i <= n; i++)
        low[i] = (char)((name[skip + i] >= 'A' && name[skip + i] <= 'Z') ? name[skip + i] + 32
                                                                         : name[skip + i]);
    return seccomp_arch_resolve_name(low);
}

/* Go's name of the native architecture, as includes.arches spells it. */
static const char *go_arch(void)
{
    switch (seccomp_arch_native()) {
    case SCMP_ARCH_X86_64: return "amd64";
    case SCMP_ARCH_X86: return "386";
    case SCMP_ARCH_AARCH64: return "arm64";
    case SCMP_ARCH_ARM: return "arm";
    case SCMP_ARCH_PPC64LE: return "ppc64le";
    case SCMP_ARCH_S390X: return "s390x";
    case SCMP_ARCH_RISCV64: return "riscv64";
    default: return "?";
    }
}

static const char *str_at(json_object *o, const char *key)
{
    json_object *v;
    return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v) : NULL;
}

static json_object *array_at(json_object *o, const char *key)
{
    json_object *v;
    return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_array)
               ? v : NULL;
}

static bool in_array(json_object *a, const char *s)
{
    for (size_t i = 0; a && i < json_object_array_length(a); i++) {
        const char *v = json_object_get_string(json_object_array_get_idx(a, i));
        if (v && !strcmp(v, s))
            return true;
    }
    return false;
}

/* The capability names of a list, each "CAP_X" (Docker's spelling), within caps? */
static bool caps_all_in(json_object *a, uint64_t caps, bool any)
{
    bool hit_any = false;
    for (size_t i = 0; a && i < json_object_array_length(a); i++) {
        int c = cr_cap_number(json_object_get_string(json_object_array_get_idx(a, i)));
        bool has = c >= 0 && (caps & (1ULL << c));
        if (!any && !has)
            return false;
        hit_any |= has;
    }
    return any ? hit_any : true;
}

static bool kernel_at_least(const char *want)
{
    struct utsname u;
    unsigned a = 0, b = 0, x = 0, y = 0;
    if (uname(&u) < 0 || sscanf(u.release, "%u.%u", &a, &b) < 1 || sscanf(want, "%u.%u", &x, &y) < 1)
        return true;
    return a > x || (a == x && b >= y);
}

/* Whether a syscalls[] entry applies to this service (Docker's includes/excludes). */
static bool entry_applies(json_object *e, uint64_t caps)
{
    json_object *inc, *exc;
    if (json_object_object_get_ex(e, "includes", &inc) && json_object_is_type(inc, json_type_object)) {
        json_object *arches = array_at(inc, "arches"), *icaps = array_at(inc, "caps");
        const char *min = str_at(inc, "minKernel");
        if (arches && json_object_array_length(arches) && !in_array(arches, go_arch()))
            return false;
        if (icaps && json_object_array_length(icaps) && !caps_all_in(icaps, caps, false))
            return false;
        if (min && *min && !kernel_at_least(min))
            return false;
    }
    if (json_object_object_get_ex(e, "excludes", &exc) && json_object_is_type(exc, json_type_object)) {
        json_object *arches = array_at(exc, "arches"), *ecaps = array_at(exc, "caps");
        if (arches && in_array(arches, go_arch()))
            return false;
        if (ecaps && json_object_array_length(ecaps) && caps_all_in(ecaps, caps, true))
            return false;
    }
    return true;
}

static int read_args(json_object *args, struct scmp_arg_cmp *cmp, size_t *n, size_t i,
                     const char *file, char *err, size_t len)
{
    *n = 0;
    for (size_t j = 0; args && j < json_object_array_length(args); j++) {
        json_object *a = json_object_array_get_idx(args, j), *v;
        enum scmp_compare op;
        const char *ops = str_at(a, "op");
        if (j >= 6)
            return PERR("%s: syscalls[%zu].args: more than 6", file, i);
        if (!ops || !op_of(ops, &op))
            return PERR("%s: syscalls[%zu].args[%zu].op: '%s' is not an SCMP_CMP_* operator",
                        file, i, j, ops ? ops : "(missing)");
        int64_t idx = json_object_object_get_ex(a, "index", &v) ? json_object_get_int64(v) : -1;
        if (idx < 0 || idx > 5)
            return PERR("%s: syscalls[%zu].args[%zu].index: not from 0 to 5", file, i, j);
        uint64_t val = json_object_object_get_ex(a, "value", &v) ? json_object_get_uint64(v) : 0;
        uint64_t two = json_object_object_get_ex(a, "valueTwo", &v) ? json_object_get_uint64(v) : 0;
        cmp[(*n)++] = (struct scmp_arg_cmp){.arg = (unsigned)idx, .op = op, .datum_a = val,
                                            .datum_b = two};
    }
    return 0;
}

static bool same_index_twice(const struct scmp_arg_cmp *cmp, size_t n)
{
    for (size_t a = 0; a < n; a++)
        for (size_t b = a + 1; b < n; b++)
            if (cmp[a].arg == cmp[b].arg)
                return true;
    return false;
}

static int add_entry(scmp_filter_ctx ctx, json_object *e, size_t i, uint32_t def_act,
                     int def_errno, const char *file, char *err, size_t len)
{
    json_object *v, *names = array_at(e, "names");
    const char *act_name = str_at(e, "action"), *one = str_at(e, "name");
    int eret = json_object_object_get_ex(e, "errnoRet", &v) ? json_object_get_int(v) : def_errno;
    uint32_t act;
    if (!act_name || !action_of(act_name, eret, &act))
        return PERR("%s: syscalls[%zu].action: '%s' is not a supported SCMP_ACT_* action", file,
                    i, act_name ? act_name : "(missing)");
    if (!names && !one)
        return PERR("%s: syscalls[%zu]: no names", file, i);
    struct scmp_arg_cmp cmp[6];
    size_t ncmp;
    int r = read_args(array_at(e, "args"), cmp, &ncmp, i, file, err, len);
    if (r < 0)
        return r;
    if (act == def_act)
        return 0;                /* libseccomp refuses a rule that changes nothing */
    size_t nn = names ? json_object_array_length(names) : 1;
    for (size_t k = 0; k < nn; k++) {
        const char *name = names ? json_object_get_string(json_object_array_get_idx(names, k)) : one;
        int nr = name ? seccomp_syscall_resolve_name(name) : __NR_SCMP_ERROR;
        if (nr == __NR_SCMP_ERROR)
            continue;            /* unknown here: Docker skips it too */
        if (same_index_twice(cmp, ncmp)) {
            for (size_t c = 0; c < ncmp && r >= 0; c++)
                r = seccomp_rule_add_array(ctx, act, nr, 1, &cmp[c]);
        } else {
            r = seccomp_rule_add_array(ctx, act, nr, (unsigned)ncmp, cmp);
        }
        if (r < 0 && r != -EEXIST)
            return PERR("%s: syscalls[%zu]: rule for %s: %s", file, i, name, strerror(-r));
    }
    return 0;
}

/* file:line:column of a byte offset. */
static void where(const char *text, size_t off, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off && text[i]; i++) {
        if (text[i] == '\n') {
            ++*line;
            *col = 1;
        } else {
            ++*col;
        }
    }
}

int cr_seccomp_json(const char *file, const char *text, size_t tlen, uint64_t caps,
                    scmp_filter_ctx *out, char *err, size_t len)
{
    *out = NULL;
    json_tokener *tok = json_tokener_new();
    if (!tok)
        return PERR("%s: out of memory", file);
    json_object *root = json_tokener_parse_ex(tok, text, (int)tlen);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (!root || jerr != json_tokener_success || end < tlen) {
        /* Trailing text after a complete value is an error too. */
        while (root && end < tlen && (text[end] == ' ' || text[end] == '\n' ||
                                      text[end] == '\t' || text[end] == '\r'))
            end++;
        if (!root || jerr != json_tokener_success || end < tlen) {
            int line, col;
            where(text, end, &line, &col);
            json_object_put(root);
            return PERR("%s:%d:%d: %s", file, line, col,
                        jerr != json_tokener_success ? json_tokener_error_desc(jerr)
                                                     : "text after the profile");
        }
    }
    int r = 0;
    json_object *v;
    const char *defname = str_at(root, "defaultAction");
    int def_errno = json_object_object_get_ex(root, "defaultErrnoRet", &v) ? json_object_get_int(v)
                                                                           : EPERM;
    uint32_t def_act;
    scmp_filter_ctx ctx = NULL;
    if (!json_object_is_type(root, json_type_object))
        r = PERR("%s: not a JSON object", file);
    else if (!defname || !action_of(defname, def_errno, &def_act))
        r = PERR("%s: defaultAction: '%s' is not a supported SCMP_ACT_* action", file,
                 defname ? defname : "(missing)");
    else if (!(ctx = seccomp_init(def_act)))
        r = PERR("%s: seccomp_init failed", file);
    else
        cr_seccomp_tree(ctx);
    /* Architectures: OCI's list, or Docker's archMap entry for the native one. */
    json_object *arches = r ? NULL : array_at(root, "architectures");
    json_object *archmap = r ? NULL : array_at(root, "archMap");
    for (size_t i = 0; arches && r == 0 && i < json_object_array_length(arches); i++) {
        const char *a = json_object_get_string(json_object_array_get_idx(arches, i));
        uint32_t t = a ? arch_of(a) : 0;
        if (!t)
            r = PERR("%s: architectures[%zu]: unknown '%s'", file, i, a ? a : "");
        else if (t != seccomp_arch_native())
            seccomp_arch_add(ctx, t);
    }
    for (size_t i = 0; archmap && r == 0 && i < json_object_array_length(archmap); i++) {
        json_object *m = json_object_array_get_idx(archmap, i), *subs = array_at(m, "subArchitectures");
        const char *a = str_at(m, "architecture");
        if (!a || arch_of(a) != seccomp_arch_native())
            continue;
        for (size_t j = 0; subs && j < json_object_array_length(subs); j++) {
            uint32_t t = arch_of(json_object_get_string(json_object_array_get_idx(subs, j)));
            if (t)
                seccomp_arch_add(ctx, t);
        }
    }
    json_object *calls = r ? NULL : array_at(root, "syscalls");
    for (size_t i = 0; calls && r == 0 && i < json_object_array_length(calls); i++) {
        json_object *e = json_object_array_get_idx(calls, i);
        if (!json_object_is_type(e, json_type_object))
            r = PERR("%s: syscalls[%zu]: not an object", file, i);
        else if (entry_applies(e, caps))
            r = add_entry(ctx, e, i, def_act, def_errno, file, err, len);
    }
    json_object_put(root);
    if (r < 0) {
        if (ctx)
            seccomp_release(ctx);
        return r;
    }
    *out = ctx;
    return 0;
}
