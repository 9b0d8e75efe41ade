/* The declarative key table: one row per INI key. Parsing, defaults, validation, --check,
 * --list-keys (the README's key reference) and the reload diff all read it. */
#ifndef CORRAL_KEYS_H
#define CORRAL_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum cr_key_type {
    CR_T_STRING,     /* any text */
    CR_T_PATH,       /* an absolute path */
    CR_T_COMMAND,    /* shell-like words, no shell; continuation lines joined with a space */
    CR_T_BOOL,       /* true/yes/on/1, false/no/off/0 */
    CR_T_DURATION,   /* 500ms, 10s, 2m, 1h; a bare number is seconds */
    CR_T_SIZE,       /* bytes, K/M/G/T, KB/MB/GB (powers of 1024), or max */
    CR_T_SIGNAL,     /* TERM, SIGTERM, 15 */
    CR_T_CODES,      /* 0,2,143 */
    CR_T_INT,        /* an integer in [min, max]; "max" too when max_word */
    CR_T_RESTART,    /* false|unexpected|true, or no|on-failure|always */
    CR_T_LIST,       /* comma-separated words; repeated keys and continuation lines add more */
    CR_T_ITEMS,      /* one item per line (repeat the key or continue on indented lines) */
    CR_T_ENV,        /* NAME="value",NAME2=value2; repeated and continued lines add more */
    CR_T_NAMESPACES, /* pid,mount,uts,ipc,net,cgroup,user */
    CR_T_UMASK,      /* octal, e.g. 022 */
    CR_T_CPU_MAX,    /* 150%, "QUOTA PERIOD" in microseconds, or max */
    CR_T_LOGFILE,    /* AUTO, NONE, or an absolute path */
    CR_T_CGPATH,     /* a relative path below the cgroup hierarchy's root */
    CR_T_NOOP,       /* a boolean that is accepted and ignored, with a notice */
};

enum {
    CR_SEC_GLOBAL = 1,           /* [supervisor] */
    CR_SEC_SERVICE = 2,          /* [service:NAME], [program:NAME] */
    CR_SEC_INCLUDE = 4,          /* [include] */
    CR_SEC_NETWORK = 8,          /* [network:NAME] */
    CR_SEC_GROUP = 16,           /* [group:NAME] (supervisord's) */
    CR_SEC_UNIX_HTTP = 32,       /* [unix_http_server] (supervisord's XML-RPC) */
    CR_SEC_INET_HTTP = 64,       /* [inet_http_server] */
    CR_SEC_LISTENER = 128,       /* [eventlistener:NAME] only (it takes every service key) */
    CR_SEC_FCGI = 256,           /* [fcgi-program:NAME] only (it takes every service key) */
};
/* The sections whose keys are struct cr_service's. */
#define CR_SEC_SERVICES (CR_SEC_SERVICE | CR_SEC_LISTENER | CR_SEC_FCGI)
/* The sections whose keys are struct cr_global's. */
#define CR_SEC_GLOBALS (CR_SEC_GLOBAL | CR_SEC_UNIX_HTTP | CR_SEC_INET_HTTP)

/* What changing a key's value means to a reload. */
enum cr_key_reload {
    CR_RELOAD_RESTART,   /* the service restarts (a [supervisor] key: read when it starts) */
    CR_RELOAD_LIVE,      /* written to the running service's cgroup (limits); [supervisor]:
                            applied to the supervisor's own log */
    CR_RELOAD_NONE,      /* the running service just takes the new value (stop settings, log
                            files, order, autostart): used when it next matters */
};

/* Key indices: cr_keys[CR_K_x] is the row of key x. */
enum cr_key_id {
    /* [supervisor] */
    CR_K_CGROUP_ROOT, CR_K_CONTROL_SOCKET, CR_K_LOG_DIR, CR_K_LOGFILE, CR_K_LOGFILE_MAXBYTES,
    CR_K_LOGFILE_BACKUPS, CR_K_METRICS_LISTEN, CR_K_RUN_DIR, CR_K_CNI_CONFIG_DIR,
    CR_K_CNI_PLUGIN_DIR, CR_K_SUBID_USER, CR_K_SUBUID_FILE,
    CR_K_SUBGID_FILE, CR_K_USERNS_STATE, CR_K_IMAGE_STORE, CR_K_MACHINE_HOSTNAME,
    CR_K_REEXEC_SIGNAL,
    /* [network:NAME] */
    CR_K_SUBNET, CR_K_SUBNET6, CR_K_INTERNAL, CR_K_BRIDGE,
    /* [supervisord]'s own keys (also allowed in [supervisor]) */
    CR_K_SUP_ENVIRONMENT, CR_K_SUP_UMASK, CR_K_MINFDS, CR_K_MINPROCS, CR_K_NODAEMON,
    CR_K_IDENTITY, CR_K_PIDFILE, CR_K_LOGLEVEL, CR_K_SUP_USER, CR_K_SUP_DIRECTORY,
    CR_K_STRIP_ANSI, CR_K_NOCLEANUP, CR_K_SILENT,
    /* [unix_http_server], [inet_http_server] */
    CR_K_UNIX_FILE, CR_K_UNIX_CHMOD, CR_K_UNIX_CHOWN, CR_K_UNIX_USERNAME, CR_K_UNIX_PASSWORD,
    CR_K_INET_PORT, CR_K_INET_USERNAME, CR_K_INET_PASSWORD,
    /* [include] */
    CR_K_FILES,
    /* [group:NAME] */
    CR_K_GROUP_PROGRAMS, CR_K_GROUP_PRIORITY,
    /* services: what runs */
    CR_K_COMMAND, CR_K_PROCESS_NAME, CR_K_NUMPROCS, CR_K_NUMPROCS_START, CR_K_DIRECTORY,
    CR_K_USER, CR_K_GROUP, CR_K_GROUPS, CR_K_UMASK, CR_K_ENVIRONMENT, CR_K_ENVIRONMENT_FILE,
    CR_K_INHERIT_ENVIRONMENT, CR_K_STDIN,
    /* lifecycle */
    CR_K_AUTOSTART, CR_K_PRIORITY, CR_K_AUTORESTART, CR_K_EXITCODES, CR_K_STARTSECS,
    CR_K_STARTRETRIES, CR_K_RESTART_DELAY, CR_K_RESTART_DELAY_MAX, CR_K_RESTART_RESET_AFTER,
    CR_K_MAX_RESTARTS, CR_K_RESTART_WINDOW, CR_K_STOPSIGNAL, CR_K_STOPWAITSECS,
    CR_K_STOPASGROUP, CR_K_KILLASGROUP,
    /* dependencies, readiness, health checks */
    CR_K_DEPENDS_ON, CR_K_READY, CR_K_READY_TIMEOUT, CR_K_HEALTH_CMD, CR_K_HEALTH_INTERVAL,
    CR_K_HEALTH_TIMEOUT, CR_K_HEALTH_RETRIES, CR_K_HEALTH_START_PERIOD, CR_K_HEALTH_ACTION,
    /* logs */
    CR_K_REDIRECT_STDERR, CR_K_STDOUT_LOGFILE, CR_K_STDOUT_LOGFILE_MAXBYTES,
    CR_K_STDOUT_LOGFILE_BACKUPS, CR_K_STDERR_LOGFILE, CR_K_STDERR_LOGFILE_MAXBYTES,
    CR_K_STDERR_LOGFILE_BACKUPS, CR_K_LOG_TIMESTAMPS, CR_K_STDOUT_CAPTURE_MAXBYTES,
    CR_K_STDERR_CAPTURE_MAXBYTES, CR_K_STDOUT_EVENTS_ENABLED, CR_K_STDERR_EVENTS_ENABLED,
    CR_K_STDOUT_SYSLOG, CR_K_STDERR_SYSLOG, CR_K_SERVERURL,
    /* [eventlistener:NAME] */
    CR_K_EVENTS, CR_K_BUFFER_SIZE, CR_K_RESULT_HANDLER,
    /* [fcgi-program:NAME] */
    CR_K_SOCKET, CR_K_SOCKET_BACKLOG, CR_K_SOCKET_OWNER, CR_K_SOCKET_MODE,
    /* container */
    CR_K_ROOTFS, CR_K_HOSTNAME, CR_K_NAMESPACES, CR_K_USER_NAMESPACE, CR_K_UID_MAP,
    CR_K_GID_MAP, CR_K_BIND, CR_K_TMPFS, CR_K_READ_ONLY, CR_K_NETWORK, CR_K_PORTS,
    CR_K_IMAGE, CR_K_ENTRYPOINT, CR_K_ROOTFS_PERSIST, CR_K_VOLUME,
    /* security */
    CR_K_CAP_ADD, CR_K_CAP_DROP, CR_K_AMBIENT_CAPABILITIES, CR_K_NO_NEW_PRIVILEGES, CR_K_SECCOMP,
    CR_K_MASKED_PATHS, CR_K_READONLY_PATHS, CR_K_UNMASK, CR_K_DEVICE, CR_K_CONFINE_DEVICES,
    /* cgroup limits */
    CR_K_MEMORY_MAX, CR_K_MEMORY_HIGH, CR_K_MEMORY_SWAP_MAX, CR_K_CPU_MAX, CR_K_CPU_WEIGHT,
    CR_K_PIDS_MAX, CR_K_IO_WEIGHT,
    CR_NKEYS
};

struct cr_key {
    const char *name;
    const char *aliases;         /* space-separated other spellings, or NULL */
    enum cr_key_type type;
    const char *def;             /* default, as text read by the same parser; NULL: unset */
    unsigned sections;           /* CR_SEC_* where the key is allowed */
    enum cr_key_reload reload;   /* what a reload does when the value changes (the one place
                                    that decides: config/diff.c reads it) */
    size_t off;                  /* offset of the value in struct cr_service / cr_global /
                                    cr_network */
    int64_t min, max;            /* CR_T_INT range */
    bool max_word;               /* CR_T_INT: "max" means no limit (INT64_MAX) */
    const char *doc;             /* one line for --list-keys and the README */
    const char *notice;          /* said (FILE:LINE: key: notice) whenever a file sets it: a
                                    supervisord key corral accepts but does not honour */
    const char *def_program;     /* the default in [program:x] when it differs from def:
                                    supervisord's meaning (no namespaces, the host as it is) */
};

extern const struct cr_key cr_keys[CR_NKEYS];

/* The key called name (or one of its aliases), case-insensitive, or NULL. Two rows may share
 * a name in different sections ([supervisord] environment and a service's): the row allowed
 * in sections (CR_SEC_*) wins, else any row of that name (for "not allowed in"). */
const struct cr_key *cr_key_find(const char *name, unsigned sections);
/* The key name or alias closest to name (a typo: at most 1 edit for names up to 4 bytes,
 * 2 beyond; a swap of neighbours is one edit), or NULL. */
const char *cr_key_suggest(const char *name);
/* Edit distance between a and b (case-insensitive; insert, delete, change, swap). */
int cr_edit_distance(const char *a, const char *b);
static inline int cr_key_id(const struct cr_key *k) { return (int)(k - cr_keys); }
/* Human words for a type, for --list-keys ("duration", "size"...). */
const char *cr_key_type_name(enum cr_key_type t);

#endif
