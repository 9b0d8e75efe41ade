/* services.ini → a validated, immutable table of services (parse → plan → apply: this is
 * the "parse" step; the spec inside each service is what init receives).
 *
 * cr_config_load() reads the file and its includes with inih, checks every key against the
 * key table (keys.h), expands %(...)s, checks what needs the machine (rootfs, the command
 * inside it, users and groups, cgroup controllers) and builds each service's spec. Every
 * problem is reported, as "FILE:LINE: key: what is wrong" or "FILE:LINE: [section]: ...";
 * the config is usable only when cfg->errors.n == 0. */
#ifndef CORRAL_CONFIG_H
#define CORRAL_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cgroup/devices.h"
#include "cgroup/probe.h"
#include "ini_reader.h"
#include "config/keys.h"
#include "net/addr.h"
#include "spec.h"
#include "units.h"

#define CR_CONFIG_MAX_BYTES (1024 * 1024)   /* per file */
#define CR_CONFIG_MAX_FILES 256             /* the main file and its includes */
#define CR_CONFIG_MAX_LINE (64 * 1024)      /* bytes in one line */
#define CR_NAME_MAX 40
#define CR_NUMPROCS_MAX 1000
/* All services of a config, numprocs copies counted: each costs memory, a control slot and
 * checks across all the others; beyond this a config is an error. */
#define CR_SERVICES_MAX 4096

/* Items of a list key, each with the line it came from. */
struct cr_strv {
    char **v;
    int *line;
    size_t n;
};

#define CR_CPU_UNLIMITED INT64_MAX

struct cr_global {
    int key_line[CR_NKEYS];      /* line of each key in its file, 0 = default */
    const char *file;            /* the file holding [supervisor] (or the main file) */
    char *cgroup_root;
    char *control_socket;
    char *log_dir;
    char *logfile;
    int64_t logfile_maxbytes;
    int64_t logfile_backups;
    char *metrics_listen;        /* ADDRESS:PORT, or NULL: no metrics server */
    char *run_dir;
    char *cni_config_dir, *cni_plugin_dir;   /* network = cni:NAME */
    char *subid_user;            /* user_namespace = auto: whose subordinate ids */
    char *subuid_file, *subgid_file;
    char *userns_state;          /* NAME UID GID of each auto service (userns.c) */
    /* supervisord's [supervisord] keys */
    struct cr_strv environment;  /* "NAME=VALUE", given to every [program:] */
    int umask;                   /* -1: unset */
    int64_t minfds, minprocs;
    bool nodaemon, strip_ansi, nocleanup, silent;
    char *identity, *pidfile, *loglevel, *user, *directory;
    char *image_store;           /* image/image.h's store */
    char *hostname;              /* the machine's, as its PID 1 (pid1/); NULL: unset */
    int reexec_signal;           /* re-executes the supervisor (reexec.c); -1: none */
    /* [unix_http_server] and [inet_http_server] (api/rpc.h); file/port NULL: not served */
    char *rpc_unix_file, *rpc_unix_chown, *rpc_unix_user, *rpc_unix_pass;
    int rpc_unix_chmod;
    char *rpc_inet_port, *rpc_inet_user, *rpc_inet_pass;
    int rpc_unix_line, rpc_inet_line;   /* the sections' lines (0: absent) */
    const char *rpc_unix_file_of, *rpc_inet_file_of;   /* ... and files */
};

/* A [network:NAME] section, or the implicit "default" network (file NULL). */
struct cr_network {
    char *name;
    const char *file;            /* NULL: the implicit default network */
    int line;
    int key_line[CR_NKEYS];
    /* One field per key row. */
    char *subnet, *subnet6, *bridge;
    bool internal;
    /* Parsed: prefix -1 when unset (subnet: chosen when first set up; subnet6: none). */
    struct cr_cidr4 net4;
    struct cr_cidr6 net6;
};

/* What `network` says for a service (config/network.c). */
enum cr_net_mode {
    CR_NETMODE_HOST,             /* no net namespace */
    CR_NETMODE_NONE,             /* its own, with lo only */
    CR_NETMODE_BRIDGE,           /* veths to the bridges of nets[] */
    CR_NETMODE_SERVICE,          /* the net namespace of join */
    CR_NETMODE_CNI,              /* the conflist named cni */
};

struct cr_service {
    char *name;                  /* the process name: unique, used everywhere */
    char *program;               /* the section's NAME */
    char *section;               /* "service:NAME" or "program:NAME", as written */
    char *sd_group;              /* supervisord's group: a [group:G] listing it, else its
                                    program; svctl's G:* and G:NAME */
    int process_num;             /* numprocs_start .. numprocs_start+numprocs-1 */
    const char *file;            /* where the section is */
    int line;
    int key_line[CR_NKEYS];      /* line of each key in file, 0 = default */

    /* One field per key row (keys.c holds their offsets). -1 / NULL: not set. */
    char *command;
    char *process_name;
    int64_t numprocs, numprocs_start;
    char *directory;
    char *user, *group;
    struct cr_strv groups;
    int umask;
    struct cr_strv environment;  /* "NAME=VALUE" */
    char *environment_file;
    bool inherit_environment;    /* start from the supervisor's environment */
    char *stdin_mode;            /* null | pipe */
    /* [eventlistener:NAME]: its events come on stdin (events.c at the top) */
    bool listener;
    struct cr_strv events;       /* the event types its pool takes */
    int64_t buffer_size;
    char *result_handler;
    /* [fcgi-program:NAME]: every process's stdin is one listening socket (service/fcgi.c) */
    bool fcgi;
    char *socket;                /* tcp://HOST:PORT or unix:///PATH */
    int64_t socket_backlog;
    char *socket_owner;
    int socket_mode;
    bool autostart;
    int64_t priority;
    int autorestart;             /* enum cr_restart */
    cr_codeset exitcodes;
    int64_t startsecs, startretries;
    int64_t restart_delay, restart_delay_max, restart_reset_after, max_restarts,
        restart_window;
    int stopsignal;
    int64_t stopwaitsecs;
    bool stopasgroup, killasgroup;
    struct cr_strv depends_on;   /* names: a process name, or a program (all its copies) */
    char *ready;                 /* none|notify|fd:N|exec:CMD|tcp:PORT (in spec: parsed) */
    int64_t ready_timeout;
    char *health_cmd;
    int64_t health_interval, health_timeout, health_retries, health_start_period;
    char *health_action;         /* restart|stop|none (in spec: parsed) */
    bool redirect_stderr;
    char *stdout_logfile, *stderr_logfile;
    int64_t stdout_logfile_maxbytes, stdout_logfile_backups;
    int64_t stderr_logfile_maxbytes, stderr_logfile_backups;
    bool log_timestamps;
    /* supervisord keys accepted with a notice (keys.c says what corral does instead) */
    int64_t stdout_capture_maxbytes, stderr_capture_maxbytes;
    bool stdout_events_enabled, stderr_events_enabled, stdout_syslog, stderr_syslog;
    char *serverurl;
    char *rootfs;
    char *hostname;
    unsigned namespaces;         /* CR_NS_* */
    char *user_namespace;        /* auto | none | NULL */
    bool userns_auto;            /* user_namespace = auto: the maps come from userns.c */
    struct cr_strv uid_map, gid_map;  /* "C:H:N" lines of the user namespace */
    /* The same as /proc/PID/uid_map and gid_map want them ("C H N\n" lines); NULL without a
     * user namespace. */
    char *uid_map_text, *gid_map_text;
    struct cr_strv bind, tmpfs;
    bool read_only;
    char *image;                 /* oci:PATH[:TAG] | docker-archive:FILE[:REF] */
    char *entrypoint;
    bool rootfs_persist;
    struct cr_strv volume;       /* NAME:/path[:ro] */
    struct cr_image *img;        /* the image read (image.c); NULL without one or on error */
    const char *image_store;     /* the global image_store (images, volumes) */
    int64_t memory_max, memory_high, memory_swap_max;   /* bytes, INT64_MAX = max */
    struct cr_cpu_max { int64_t quota_us, period_us; } cpu_max; /* quota -1: unset */
    int64_t cpu_weight, pids_max, io_weight;
    struct cr_strv cap_add, cap_drop, ambient_capabilities;
    bool no_new_privileges;
    char *seccomp;               /* default | unconfined */
    struct cr_strv masked_paths, readonly_paths, unmask;
    struct cr_strv device;       /* HOST[:CONTAINER][:rwm] */
    struct cr_strv network;      /* as written: bridge, bridge:NAME, none, host, service:X... */
    struct cr_strv ports;        /* as written */
    /* Parsed network and ports (config/network.c). */
    int net_mode;                /* enum cr_net_mode */
    const struct cr_network **nets;  /* BRIDGE: into cfg->networks, in the order given */
    size_t nnets;
    char *join;                  /* SERVICE: the other service's name; CNI: the conflist */
    struct cr_port *port;
    size_t nport;
    bool confine_devices;        /* false: the cgroup allows every device */
    /* The cgroup's device rules beside the defaults, one per `device` (cgroup/devices.h). */
    struct cr_device *dev_rules;
    size_t ndev_rules;

    /* What init receives, complete: argv resolved, ids numeric, environment final. */
    struct cr_spec spec;
};

struct cr_config {
    char *path;                  /* the main file */
    char **files;                /* every file read (main first), kept for messages */
    size_t nfiles;
    struct cr_global global;
    struct cr_service *services; /* in file order (includes after the main file) */
    size_t nservices;
    struct cr_network *networks; /* [network:NAME] in file order, then "default" if not given */
    size_t nnetworks;
    struct cr_errlist errors;    /* "FILE:LINE: key: what is wrong", all of them */
    struct cr_errlist notices;   /* accepted but worth saying (ignored keys/sections) */
};

struct cr_config_opts {
    /* The cgroup hierarchy to check limits against; NULL: probe CR_CGROUP_MOUNT. */
    const struct cr_cgroup_caps *caps;
    /* Skip the checks that look at the machine (rootfs, command, users, cgroups). */
    bool no_machine_checks;
    /* user_namespace = auto: write the ranges given to new names into userns_state (running
     * or reloading); else they are only shown (--check, --print-spec, svctl check). */
    bool userns_persist;
};

/* Loads path. Returns 0 when the config is valid, -EINVAL when cfg->errors holds errors
 * (the config is then only good for printing them), -ENOMEM. Always cr_config_free(). */
int cr_config_load(const char *path, const struct cr_config_opts *opts, struct cr_config *cfg);
void cr_config_free(struct cr_config *cfg);

const struct cr_service *cr_config_find(const struct cr_config *cfg, const char *name);
/* True when a depends_on name means svc: its process name, or its program (every copy). */
bool cr_service_matches(const struct cr_service *svc, const char *name);

/* Splits a command line into words like a POSIX shell would, without running one: blanks
 * separate words, '...' is literal, "..." allows \" \\ \$ \`, a backslash outside quotes
 * escapes the next byte. Returns 0 with a NULL-terminated argv, or -EINVAL with *err. */
int cr_split_command(const char *s, char ***argv, size_t *argc, const char **err);

/* Reload support: true when key differs between a and b (compared as parsed values; a
 * [network:] key: in any of the services' networks). */
bool cr_service_key_differs(const struct cr_service *a, const struct cr_service *b, int key);
/* True when any key whose row says restart=true differs, or the spec differs. */
bool cr_service_needs_restart(const struct cr_service *a, const struct cr_service *b);

/* Internal to config*.c: the checks that look at the machine (rootfs, the command inside
 * it, users and groups, bind sources, environment_file, cgroup controllers), then the spec. */
struct cr_roots;
void cr_service_resolve(struct cr_service *svc, const char *here,
                        const struct cr_config_opts *opts, const struct cr_cgroup_caps *caps,
                        const struct cr_global *g, struct cr_roots *roots,
                        struct cr_errlist *errors);
/* What one load learns of the roots its services share (machine.c): a rootfs's stat and
 * real path, an open fd on it, its /etc/passwd and /etc/group, each read once per load
 * instead of once per service; freed (the fds closed) at the end of the load. */
struct cr_roots *cr_roots_new(void);
void cr_roots_free(struct cr_roots *roots);
/* image, entrypoint and command → the spec's argv; the image's config fills directory, user,
 * group and stopsignal left unset (image.c). Before the machine checks. */
void cr_service_image(struct cr_service *svc, const struct cr_global *g,
                      struct cr_errlist *errors);
/* With an image: the spec's rootfs (the overlay's mount point), layers, upper and work. Returns
 * -1 (no root directory to look into: the users come from cr_image_read_file). */
int cr_service_image_root(struct cr_service *svc, struct cr_errlist *errors);
/* volume = NAME:/path[:ro] → binds of image_store/volumes/NAME (image.c). */
void cr_service_volumes(struct cr_service *svc, struct cr_errlist *errors);
/* The volume name of a volume item (its text before the first ':') into out. */
void cr_volume_name(const char *item, char *out, size_t len);
/* The security keys → the spec's [security] (security.c). */
void cr_security_resolve(struct cr_service *svc, const struct cr_global *g,
                         struct cr_errlist *errors);
/* user_namespace = auto: each such service's range of subordinate ids, from userns_state or
 * newly carved (userns.c); fills uid_map_text and gid_map_text. */
void cr_userns_assign(struct cr_config *cfg, bool persist);
/* Adds "FILE:LINE: key: ..." for svc's key (its section header line when key is a default). */
/* Why the supervisor cannot take sig for [supervisor] reexec_signal (it uses it already, or
 * it is a fault signal), or NULL: free. */
const char *cr_reexec_signal_taken(int sig);
void cr_service_error(struct cr_errlist *errors, const struct cr_service *svc, int key,
                      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* config/network.c: a service's network and ports, alone (before its spec is made: `host`
 * takes net out of its namespaces)... */
void cr_network_service_check(struct cr_service *svc, bool program, struct cr_errlist *errors);
/* ... and across the config: the networks' subnets (overlaps, host routes when checks),
 * names, service: targets and cycles, port clashes. */
void cr_network_config_check(struct cr_config *cfg, bool machine_checks);
/* The spec of a bridge service: no net in what init creates (the supervisor clones the
 * namespace and sets it up before init runs). */
void cr_network_spec(struct cr_service *svc, const struct cr_global *g, struct cr_errlist *errors);
const struct cr_network *cr_config_network(const struct cr_config *cfg, const char *name);
/* nw as the networks' host side takes it (net/host.h): borrows nw's strings. */
struct cr_net_def;
void cr_network_def(const struct cr_network *nw, struct cr_net_def *out);
void cr_network_free(struct cr_network *n);

/* Prints the key table as markdown (supervisor --list-keys). */
void cr_keys_print_markdown(FILE *out);
/* Prints it as roff, services.ini(5)'s KEYS section (supervisor --list-keys=man). */
void cr_keys_print_man(FILE *out);

/* supervisord's event types (evtypes.c): name as known (the table's copy), or NULL with *hint
 * the closest (or NULL); whether subscribing to sub delivers name (PROCESS_STATE delivers
 * PROCESS_STATE_RUNNING, EVENT everything). */
const char *cr_evtype_check(const char *name, const char **hint);
bool cr_evtype_matches(const char *sub, const char *name);

#endif
