/* The key table. One row per key: adding a key means adding a row here and a field in
 * struct cr_service (config.h); parsing, defaults, --check and --list-keys follow. */
#include "config/keys.h"

#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <strings.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "ctl_proto.h"

#define SV(field) offsetof(struct cr_service, field)
#define GL(field) offsetof(struct cr_global, field)
#define NW(field) offsetof(struct cr_network, field)
#define G CR_SEC_GLOBAL
#define N CR_SEC_NETWORK
#define S CR_SEC_SERVICE
/* On reload (enum cr_key_reload). */
#define RESTART CR_RELOAD_RESTART
#define LIVE CR_RELOAD_LIVE
#define NONE CR_RELOAD_NONE
#define WHOLE_CGROUP "accepted and ignored: a stop always reaches every process in the " \
    "service's cgroup"
#define NO_CAPTURE "accepted and ignored: corral has no capture mode (no " \
    "PROCESS_COMMUNICATION events)"

const struct cr_key cr_keys[CR_NKEYS] = {
    /* ---- [supervisor] ---- */
    [CR_K_CGROUP_ROOT] = {"cgroup_root", NULL, CR_T_CGPATH, "corral", G, RESTART, GL(cgroup_root),
        .doc = "cgroup below the hierarchy's root that holds the supervisor and its services "
               "(started by systemd on cgroup v2: below the supervisor's own cgroup, the "
               "subtree Delegate=yes gives it)"},
    [CR_K_CONTROL_SOCKET] = {"control_socket", NULL, CR_T_PATH, CR_CTL_DEFAULT_SOCKET, G,
        RESTART, GL(control_socket), .doc = "unix socket svctl talks to"},
    [CR_K_LOG_DIR] = {"log_dir", "childlogdir", CR_T_PATH, "/var/log/corral", G, RESTART,
        GL(log_dir), .doc = "directory of the AUTO log files"},
    [CR_K_LOGFILE] = {"logfile", NULL, CR_T_LOGFILE, "NONE", G, RESTART, GL(logfile),
        .doc = "the supervisor's own log: a path, AUTO (log_dir/supervisor.log) or NONE "
               "(standard error only)"},
    [CR_K_LOGFILE_MAXBYTES] = {"logfile_maxbytes", NULL, CR_T_SIZE, "50MB", G, LIVE,
        GL(logfile_maxbytes), .doc = "rotate the supervisor's log at this size; 0: never"},
    [CR_K_LOGFILE_BACKUPS] = {"logfile_backups", NULL, CR_T_INT, "10", G, LIVE,
        GL(logfile_backups), 0, 1000, .doc = "rotated supervisor logs kept"},
    [CR_K_METRICS_LISTEN] = {"metrics_listen", NULL, CR_T_STRING, NULL, G, RESTART,
        GL(metrics_listen), .doc = "serve Prometheus metrics over HTTP at ADDRESS:PORT "
               "(e.g. 127.0.0.1:9100, [::1]:9100); unset: off"},
    [CR_K_RUN_DIR] = {"run_dir", NULL, CR_T_PATH, "/run/corral-net", G, RESTART, GL(run_dir),
        .doc = "the supervisor's runtime files, in a folder per cgroup_root: the services' "
               "addresses (kept across restarts), each container's /etc/hosts and "
               "/etc/resolv.conf (readable from every container, so not the control socket's 0700 "
               "folder)"},
    [CR_K_CNI_CONFIG_DIR] = {"cni_config_dir", NULL, CR_T_PATH, "/etc/cni/net.d", G, RESTART,
        GL(cni_config_dir), .doc = "where network = cni:NAME finds NAME.conflist"},
    [CR_K_CNI_PLUGIN_DIR] = {"cni_plugin_dir", NULL, CR_T_PATH, "/usr/lib/cni", G, RESTART,
        GL(cni_plugin_dir), .doc = "the CNI plugins (CNI_PATH); Debian's containernetworking-"
               "plugins puts them in /usr/lib/cni"},
    [CR_K_SUBID_USER] = {"subid_user", NULL, CR_T_STRING, "corral", G, NONE, GL(subid_user),
        .doc = "user (name or uid) whose subuid_file and subgid_file ranges user_namespace = "
               "auto carves into 65536-id ranges"},
    [CR_K_SUBUID_FILE] = {"subuid_file", NULL, CR_T_PATH, "/etc/subuid", G, NONE,
        GL(subuid_file), .doc = "subordinate user ids, in shadow's NAME_OR_UID:START:COUNT "
               "lines"},
    [CR_K_SUBGID_FILE] = {"subgid_file", NULL, CR_T_PATH, "/etc/subgid", G, NONE,
        GL(subgid_file), .doc = "subordinate group ids, as subuid_file"},
    [CR_K_USERNS_STATE] = {"userns_state", NULL, CR_T_PATH, "/var/lib/corral/userns", G, NONE,
        GL(userns_state), .doc = "file remembering which id range each user_namespace = auto "
               "service has (NAME UID GID lines, replaced atomically): a name keeps its range "
               "across restarts, reloads and reboots; no two names share one"},
    [CR_K_IMAGE_STORE] = {"image_store", NULL, CR_T_PATH, "/var/lib/corral", G, RESTART,
        GL(image_store), .doc = "where image layers are unpacked (layers/sha256/DIGEST, once "
               "each) and containers' overlay upper dirs live (containers/NAME); no ':' or ','"},

    /* ---- [network:NAME] ---- */
    [CR_K_SUBNET] = {"subnet", NULL, CR_T_STRING, NULL, N, RESTART, NW(subnet),
        .doc = "IPv4 subnet of the network, e.g. 10.89.1.0/24 (prefix 8 to 30); the gateway "
               "(the bridge) is its first address. Unset: the first /24 of 10.89.0.0/16 that no "
               "host route uses, chosen when the network is first set up and kept"},
    [CR_K_SUBNET6] = {"subnet6", NULL, CR_T_STRING, NULL, N, RESTART, NW(subnet6),
        .doc = "IPv6 subnet as well (dual stack), e.g. fd00:89:1::/64; unset: IPv4 only"},
    [CR_K_INTERNAL] = {"internal", NULL, CR_T_BOOL, "false", N, RESTART, NW(internal),
        .doc = "no way out: no default route, no NAT, no published ports; its services reach "
               "only each other"},
    [CR_K_BRIDGE] = {"bridge", NULL, CR_T_STRING, NULL, N, RESTART, NW(bridge),
        .doc = "the host's bridge interface (at most 15 characters); default a name made of "
               "the cgroup_root and the network's name"},

    /* ---- [supervisord]: supervisord's own keys ---- */
    [CR_K_SUP_ENVIRONMENT] = {"environment", NULL, CR_T_ENV, NULL, G, RESTART,
        GL(environment), .doc = "NAME=\"value\",... added to the supervisor's environment for "
               "every service with inherit_environment (every [program:] by default)"},
    [CR_K_SUP_UMASK] = {"umask", NULL, CR_T_UMASK, NULL, G, RESTART, GL(umask),
        .doc = "the supervisor's umask (octal), inherited by services without their own; "
               "default: left as it is"},
    [CR_K_MINFDS] = {"minfds", NULL, CR_T_INT, NULL, G, RESTART, GL(minfds), 0, 1 << 30,
        .doc = "RLIMIT_NOFILE of the supervisor and its services is raised to at least this "
               "(the hard limit too as root); if it cannot be, nothing starts. Unset: the "
               "limit stays as it is (supervisord's 1024 is not assumed)"},
    [CR_K_MINPROCS] = {"minprocs", NULL, CR_T_INT, NULL, G, RESTART, GL(minprocs), 0, 1 << 30,
        .doc = "RLIMIT_NPROC raised to at least this, as minfds; unset: left as it is"},
    [CR_K_NODAEMON] = {"nodaemon", NULL, CR_T_BOOL, "true", G, NONE, GL(nodaemon),
        .doc = "accepted for supervisord files: the supervisor always runs in the foreground",
        .notice = "accepted: the supervisor always runs in the foreground"},
    [CR_K_IDENTITY] = {"identity", "identifier", CR_T_STRING, "supervisor", G, RESTART, GL(identity),
        .doc = "the name the supervisor gives itself (supervisorctl's getIdentification, the web UI's title); supervisord spells it identifier"},
    [CR_K_PIDFILE] = {"pidfile", NULL, CR_T_PATH, NULL, G, RESTART, GL(pidfile),
        .doc = "file the supervisor writes its pid to once it runs, removed when it exits"},
    [CR_K_LOGLEVEL] = {"loglevel", NULL, CR_T_STRING, "info", G, NONE, GL(loglevel),
        .doc = "supervisord's log level; accepted, with a notice: the supervisor logs every "
               "event", .notice = "accepted and ignored: the supervisor logs every event"},
    [CR_K_SUP_USER] = {"user", NULL, CR_T_STRING, NULL, G, NONE, GL(user),
        .doc = "supervisord's user to switch to; accepted, with a notice: the supervisor "
               "stays who started it", .notice = "accepted and ignored: the supervisor stays "
               "the user who started it (it needs root for cgroups and namespaces)"},
    [CR_K_SUP_DIRECTORY] = {"directory", NULL, CR_T_PATH, NULL, G, NONE, GL(directory),
        .doc = "supervisord's directory when daemonizing; accepted, with a notice",
        .notice = "accepted and ignored: the supervisor does not daemonize"},
    [CR_K_STRIP_ANSI] = {"strip_ansi", NULL, CR_T_BOOL, "false", G, NONE, GL(strip_ansi),
        .doc = "accepted, with a notice, and ignored", .notice = "accepted and ignored: "
               "log files keep the bytes as written"},
    [CR_K_NOCLEANUP] = {"nocleanup", NULL, CR_T_BOOL, "false", G, NONE, GL(nocleanup),
        .doc = "accepted, with a notice, and ignored", .notice = "accepted and ignored: "
               "AUTO log files are kept"},
    [CR_K_SILENT] = {"silent", NULL, CR_T_BOOL, "false", G, NONE, GL(silent),
        .doc = "accepted, with a notice, and ignored", .notice = "accepted and ignored"},
    [CR_K_MACHINE_HOSTNAME] = {"hostname", NULL, CR_T_STRING, NULL, G, RESTART,
        GL(hostname), .doc = "the machine's hostname, set when the supervisor is its PID 1 "
               "(appliance mode); unset: left as it is"},
    [CR_K_REEXEC_SIGNAL] = {"reexec_signal", NULL, CR_T_SIGNAL, NULL, G, RESTART,
        GL(reexec_signal), .doc = "a signal that makes the supervisor re-execute its own "
               "binary as `svctl reexec` does (an appliance's upgrade without svctl), e.g. "
               "QUIT or RTMIN+1; not one it already uses (TERM, INT, HUP, USR2, CHLD; as PID 1 "
               "USR1 and PWR too). A change applies at the next start or re-exec; unset: none"},

    /* ---- [unix_http_server], [inet_http_server]: supervisorctl's XML-RPC (api/rpc.h) ---- */
    [CR_K_UNIX_FILE] = {"file", NULL, CR_T_PATH, NULL, CR_SEC_UNIX_HTTP, RESTART,
        GL(rpc_unix_file), .doc = "the unix socket serving supervisord's XML-RPC API at /RPC2 "
               "(supervisorctl's serverurl = unix://FILE); a live server's socket is left "
               "alone, a stale one replaced"},
    [CR_K_UNIX_CHMOD] = {"chmod", NULL, CR_T_UMASK, "0700", CR_SEC_UNIX_HTTP, RESTART,
        GL(rpc_unix_chmod), .doc = "the socket's mode (octal)"},
    [CR_K_UNIX_CHOWN] = {"chown", NULL, CR_T_STRING, NULL, CR_SEC_UNIX_HTTP, RESTART,
        GL(rpc_unix_chown), .doc = "USER or USER:GROUP owning the socket; unset: the "
               "supervisor's"},
    [CR_K_UNIX_USERNAME] = {"username", NULL, CR_T_STRING, NULL, CR_SEC_UNIX_HTTP, RESTART,
        GL(rpc_unix_user), .doc = "with password: HTTP basic authentication for every "
               "request; unset: none"},
    [CR_K_UNIX_PASSWORD] = {"password", NULL, CR_T_STRING, NULL, CR_SEC_UNIX_HTTP, RESTART,
        GL(rpc_unix_pass), .doc = "the password, as text or {SHA}HEX (its SHA-1)"},
    [CR_K_INET_PORT] = {"port", NULL, CR_T_STRING, NULL, CR_SEC_INET_HTTP, RESTART,
        GL(rpc_inet_port), .doc = "HOST:PORT serving the XML-RPC API over TCP (:PORT, "
               "*:PORT or PORT: every address; [::1]:PORT for IPv6)"},
    [CR_K_INET_USERNAME] = {"username", NULL, CR_T_STRING, NULL, CR_SEC_INET_HTTP, RESTART,
        GL(rpc_inet_user), .doc = "with password: HTTP basic authentication; unset: none"},
    [CR_K_INET_PASSWORD] = {"password", NULL, CR_T_STRING, NULL, CR_SEC_INET_HTTP, RESTART,
        GL(rpc_inet_pass), .doc = "the password, as text or {SHA}HEX (its SHA-1)"},

    /* ---- [include] ---- */
    [CR_K_FILES] = {"files", NULL, CR_T_STRING, NULL, CR_SEC_INCLUDE, NONE, 0,
        .doc = "space-separated globs, relative to the including file, read in sorted order; "
               "included files cannot include"},

    /* ---- [group:NAME] (read by the loader itself, as [include]) ---- */
    [CR_K_GROUP_PROGRAMS] = {"programs", NULL, CR_T_LIST, NULL, CR_SEC_GROUP, NONE, 0,
        .doc = "the [program:] (or [service:]) sections of the group, comma-separated; svctl "
               "takes NAME:* for all their processes and NAME:PROCESS for one"},
    [CR_K_GROUP_PRIORITY] = {"priority", NULL, CR_T_INT, "999", CR_SEC_GROUP, NONE, 0,
        -100000, 100000, .doc = "the priority of the group's programs that set none"},

    /* ---- services: what runs ---- */
    [CR_K_COMMAND] = {"command", NULL, CR_T_COMMAND, NULL, S, RESTART, SV(command),
        .doc = "the program and its arguments, split like a shell (no shell runs); found via "
               "PATH inside the rootfs; required"},
    [CR_K_PROCESS_NAME] = {"process_name", NULL, CR_T_STRING, "%(program_name)s", S, RESTART,
        SV(process_name), .doc = "name of each process; default NAME, or NAME_N when "
               "numprocs > 1"},
    [CR_K_NUMPROCS] = {"numprocs", NULL, CR_T_INT, "1", S, RESTART, SV(numprocs), 1,
        CR_NUMPROCS_MAX, .doc = "run this many copies, numbered from numprocs_start "
               "(%(process_num)d)"},
    [CR_K_NUMPROCS_START] = {"numprocs_start", NULL, CR_T_INT, "0", S, RESTART,
        SV(numprocs_start), 0, 100000, .doc = "first process_num"},
    [CR_K_DIRECTORY] = {"directory", "working_dir", CR_T_PATH, NULL, S, RESTART, SV(directory),
        .doc = "working directory inside the container; default /"},
    [CR_K_USER] = {"user", NULL, CR_T_STRING, NULL, S, RESTART, SV(user),
        .doc = "user name or uid, looked up in the rootfs's /etc/passwd; default root"},
    [CR_K_GROUP] = {"group", NULL, CR_T_STRING, NULL, S, RESTART, SV(group),
        .doc = "group name or gid (rootfs's /etc/group); default the user's group"},
    [CR_K_GROUPS] = {"groups", "supplementary_groups", CR_T_LIST, NULL, S, RESTART, SV(groups),
        .doc = "supplementary groups; default the user's groups in /etc/group"},
    [CR_K_UMASK] = {"umask", NULL, CR_T_UMASK, NULL, S, RESTART, SV(umask),
        .doc = "octal umask; default inherited"},
    [CR_K_ENVIRONMENT] = {"environment", NULL, CR_T_ENV, NULL, S, RESTART, SV(environment),
        .doc = "NAME=\"value\",NAME2=value2 (repeat or continue for more), set last; the "
               "environment starts clean with PATH and HOME, or see inherit_environment"},
    [CR_K_ENVIRONMENT_FILE] = {"environment_file", "env_file", CR_T_STRING, NULL, S, RESTART,
        SV(environment_file), .doc = "file of NAME=value lines (on the host, relative to "
               "this file), read before environment"},
    [CR_K_INHERIT_ENVIRONMENT] = {"inherit_environment", NULL, CR_T_BOOL, "false", S, RESTART,
        SV(inherit_environment), .doc = "start from the supervisor's own environment and "
               "[supervisord] environment (as supervisord does), plus SUPERVISOR_ENABLED, "
               "SUPERVISOR_PROCESS_NAME and SUPERVISOR_GROUP_NAME; false: a clean one (PATH and "
               "HOME)", .def_program = "true"},
    [CR_K_STDIN] = {"stdin", NULL, CR_T_STRING, "null", S, RESTART, SV(stdin_mode),
        .doc = "null (/dev/null) or pipe (a pipe whose other end the supervisor holds, as "
               "supervisord gives)", .def_program = "pipe"},

    /* ---- lifecycle ---- */
    [CR_K_AUTOSTART] = {"autostart", NULL, CR_T_BOOL, "true", S, NONE, SV(autostart),
        .doc = "start when the supervisor starts"},
    [CR_K_PRIORITY] = {"priority", NULL, CR_T_INT, "999", S, NONE, SV(priority), -100000,
        100000, .doc = "lower starts first and stops last (an [eventlistener:x]'s default: -1, "
               "as supervisord's)"},
    [CR_K_AUTORESTART] = {"autorestart", "restart", CR_T_RESTART, "unexpected", S, RESTART,
        SV(autorestart), .doc = "false|unexpected|true (or no|on-failure|always): restart "
               "after an exit, after an exit code not in exitcodes, or always"},
    [CR_K_EXITCODES] = {"exitcodes", NULL, CR_T_CODES, "0", S, RESTART, SV(exitcodes),
        .doc = "expected exit codes, for autorestart=unexpected"},
    [CR_K_STARTSECS] = {"startsecs", NULL, CR_T_DURATION, "1", S, RESTART, SV(startsecs),
        .doc = "how long it must run to count as started (RUNNING) with ready = none"},
    [CR_K_STARTRETRIES] = {"startretries", NULL, CR_T_INT, "3", S, RESTART, SV(startretries),
        0, 1000, .doc = "failed starts in a row before FATAL"},
    [CR_K_RESTART_DELAY] = {"restart_delay", "restart_sec", CR_T_DURATION, "0", S, RESTART,
        SV(restart_delay), .doc = "first delay before a restart; doubles (with jitter) up to "
               "restart_delay_max"},
    [CR_K_RESTART_DELAY_MAX] = {"restart_delay_max", NULL, CR_T_DURATION, "30s", S, RESTART,
        SV(restart_delay_max), .doc = "longest delay before a restart"},
    [CR_K_RESTART_RESET_AFTER] = {"restart_reset_after", NULL, CR_T_DURATION, "10s", S,
        RESTART, SV(restart_reset_after),
        .doc = "a run this long resets the delay to restart_delay"},
    [CR_K_MAX_RESTARTS] = {"max_restarts", NULL, CR_T_INT, "0", S, RESTART, SV(max_restarts), 0,
        1000000, .doc = "give up (FATAL) after this many restarts within restart_window; 0: "
               "never"},
    [CR_K_RESTART_WINDOW] = {"restart_window", NULL, CR_T_DURATION, "60s", S, RESTART,
        SV(restart_window), .doc = "the window max_restarts counts in"},
    [CR_K_STOPSIGNAL] = {"stopsignal", "stop_signal", CR_T_SIGNAL, "TERM", S, NONE,
        SV(stopsignal), .doc = "signal that asks the service to stop"},
    [CR_K_STOPWAITSECS] = {"stopwaitsecs", "stop_grace_period", CR_T_DURATION, "10", S, NONE,
        SV(stopwaitsecs), .doc = "wait this long after stopsignal, then kill everything in the "
               "service's cgroup"},
    [CR_K_STOPASGROUP] = {"stopasgroup", NULL, CR_T_NOOP, "false", S, NONE, SV(stopasgroup),
        .doc = "accepted for supervisord files and ignored: stop always reaches the whole "
               "cgroup", .notice = WHOLE_CGROUP},
    [CR_K_KILLASGROUP] = {"killasgroup", NULL, CR_T_NOOP, "false", S, NONE, SV(killasgroup),
        .doc = "accepted for supervisord files and ignored: the kill always reaches the whole "
               "cgroup", .notice = WHOLE_CGROUP},

    /* ---- dependencies, readiness, health checks ---- */
    [CR_K_DEPENDS_ON] = {"depends_on", NULL, CR_T_LIST, NULL, S, NONE, SV(depends_on),
        .doc = "services (process or program names) that must be ready before this one starts; "
               "it stops before them; unknown names and cycles are errors"},
    [CR_K_READY] = {"ready", NULL, CR_T_STRING, "none", S, RESTART, SV(ready),
        .doc = "when it counts as ready (RUNNING): none (after startsecs), notify (sd_notify "
               "READY=1 on $NOTIFY_SOCKET), fd:N (a newline on fd N), exec:CMD (CMD exits 0, "
               "run in the container every 100 ms), tcp:PORT (127.0.0.1:PORT accepts)"},
    [CR_K_READY_TIMEOUT] = {"ready_timeout", "timeout_start_sec", CR_T_DURATION, "90s", S, RESTART,
        SV(ready_timeout), .doc = "not ready by then (ready other than none): a failed start; "
               "0: wait forever"},
    [CR_K_HEALTH_CMD] = {"health_cmd", "healthcheck", CR_T_COMMAND, NULL, S, RESTART,
        SV(health_cmd), .doc = "health check run inside the container (as the service's user) "
               "every health_interval once it is ready; exit 0 means healthy"},
    [CR_K_HEALTH_INTERVAL] = {"health_interval", NULL, CR_T_DURATION, "30s", S, RESTART,
        SV(health_interval), .doc = "time between the end of a check and the next"},
    [CR_K_HEALTH_TIMEOUT] = {"health_timeout", NULL, CR_T_DURATION, "30s", S, RESTART,
        SV(health_timeout), .doc = "a check running longer fails (its process group is killed)"},
    [CR_K_HEALTH_RETRIES] = {"health_retries", NULL, CR_T_INT, "3", S, RESTART, SV(health_retries),
        1, 1000, .doc = "failed checks in a row that make it unhealthy"},
    [CR_K_HEALTH_START_PERIOD] = {"health_start_period", NULL, CR_T_DURATION, "0", S, RESTART,
        SV(health_start_period), .doc = "failures of checks started this soon after it became "
               "ready do not count"},
    [CR_K_HEALTH_ACTION] = {"health_action", NULL, CR_T_STRING, "restart", S, RESTART,
        SV(health_action), .doc = "when unhealthy: restart (stop signal, stopwaitsecs, start "
               "again; counts as a restart), stop (stop it, no restart) or none (report only)"},

    /* ---- logs ---- */
    [CR_K_REDIRECT_STDERR] = {"redirect_stderr", NULL, CR_T_BOOL, "false", S, RESTART,
        SV(redirect_stderr), .doc = "send stderr into stdout's pipe (2>&1)"},
    [CR_K_STDOUT_LOGFILE] = {"stdout_logfile", NULL, CR_T_LOGFILE, "AUTO", S, NONE,
        SV(stdout_logfile), .doc = "file for stdout: a path, AUTO (in log_dir) or NONE"},
    [CR_K_STDOUT_LOGFILE_MAXBYTES] = {"stdout_logfile_maxbytes", NULL, CR_T_SIZE, "50MB", S,
        NONE, SV(stdout_logfile_maxbytes), .doc = "rotate at this size; 0: never"},
    [CR_K_STDOUT_LOGFILE_BACKUPS] = {"stdout_logfile_backups", NULL, CR_T_INT, "10", S, NONE,
        SV(stdout_logfile_backups), 0, 1000, .doc = "rotated files kept"},
    [CR_K_STDERR_LOGFILE] = {"stderr_logfile", NULL, CR_T_LOGFILE, "AUTO", S, NONE,
        SV(stderr_logfile), .doc = "file for stderr: a path, AUTO (in log_dir) or NONE"},
    [CR_K_STDERR_LOGFILE_MAXBYTES] = {"stderr_logfile_maxbytes", NULL, CR_T_SIZE, "50MB", S,
        NONE, SV(stderr_logfile_maxbytes), .doc = "rotate at this size; 0: never"},
    [CR_K_STDERR_LOGFILE_BACKUPS] = {"stderr_logfile_backups", NULL, CR_T_INT, "10", S, NONE,
        SV(stderr_logfile_backups), 0, 1000, .doc = "rotated files kept"},
    [CR_K_LOG_TIMESTAMPS] = {"log_timestamps", "stdout_logfile_timestamps", CR_T_BOOL, "false",
        S, NONE, SV(log_timestamps), .doc = "prefix each logged line with the time"},
    [CR_K_STDOUT_CAPTURE_MAXBYTES] = {"stdout_capture_maxbytes", NULL, CR_T_SIZE, "0", S, NONE,
        SV(stdout_capture_maxbytes), .doc = "supervisord's capture mode (PROCESS_COMMUNICATION "
               "events); accepted, with a notice, and ignored", .notice = NO_CAPTURE},
    [CR_K_STDERR_CAPTURE_MAXBYTES] = {"stderr_capture_maxbytes", NULL, CR_T_SIZE, "0", S, NONE,
        SV(stderr_capture_maxbytes), .doc = "as stdout_capture_maxbytes",
        .notice = NO_CAPTURE},
    [CR_K_STDOUT_EVENTS_ENABLED] = {"stdout_events_enabled", NULL, CR_T_BOOL, "false", S, NONE,
        SV(stdout_events_enabled), .doc = "send its stdout to the event listeners that take "
               "PROCESS_LOG_STDOUT (supervisord's events, a few lines each)"},
    [CR_K_STDERR_EVENTS_ENABLED] = {"stderr_events_enabled", NULL, CR_T_BOOL, "false", S, NONE,
        SV(stderr_events_enabled), .doc = "as stdout_events_enabled, for stderr "
               "(PROCESS_LOG_STDERR)"},
    [CR_K_STDOUT_SYSLOG] = {"stdout_syslog", NULL, CR_T_BOOL, "false", S, NONE,
        SV(stdout_syslog), .doc = "supervisord's copy of the output to syslog; accepted, with "
               "a notice, and ignored", .notice = "accepted and ignored: output goes to the "
               "log files and svctl logs, not to syslog"},
    [CR_K_STDERR_SYSLOG] = {"stderr_syslog", NULL, CR_T_BOOL, "false", S, NONE,
        SV(stderr_syslog), .doc = "as stdout_syslog", .notice = "accepted and ignored: output "
               "goes to the log files and svctl logs, not to syslog"},
    [CR_K_SERVERURL] = {"serverurl", NULL, CR_T_STRING, NULL, S, RESTART, SV(serverurl),
        .doc = "SUPERVISOR_SERVER_URL in its environment (with inherit_environment), as "
               "supervisord: a URL, or AUTO (unset): unix://[unix_http_server] file, else "
               "http://[inet_http_server] port; childutils.getRPCInterface() reads it"},

    /* ---- [fcgi-program:NAME] ---- */
    [CR_K_SOCKET] = {"socket", NULL, CR_T_STRING, NULL, CR_SEC_FCGI, RESTART, SV(socket),
        .doc = "the listening socket every process of the program gets as its stdin, made by "
               "the supervisor before the first starts and kept until the supervisor exits: "
               "tcp://HOST:PORT or unix:///PATH (required)"},
    [CR_K_SOCKET_BACKLOG] = {"socket_backlog", NULL, CR_T_INT, "4096", CR_SEC_FCGI, RESTART,
        SV(socket_backlog), 1, 65535, .doc = "its listen(2) backlog"},
    [CR_K_SOCKET_OWNER] = {"socket_owner", NULL, CR_T_STRING, NULL, CR_SEC_FCGI, RESTART,
        SV(socket_owner), .doc = "unix: USER or USER:GROUP owning the socket file; unset: "
               "the supervisor's"},
    [CR_K_SOCKET_MODE] = {"socket_mode", NULL, CR_T_UMASK, "0700", CR_SEC_FCGI, RESTART,
        SV(socket_mode), .doc = "unix: the socket file's mode (octal)"},

    /* ---- [eventlistener:NAME] ---- */
    [CR_K_EVENTS] = {"events", NULL, CR_T_LIST, NULL, CR_SEC_LISTENER, RESTART, SV(events),
        .doc = "the event types the listener's pool receives on its stdin, supervisord's names: "
               "EVENT (all), PROCESS_STATE and PROCESS_STATE_STARTING, _RUNNING, _BACKOFF, "
               "_STOPPING, _STOPPED, _EXITED, _FATAL, TICK, TICK_5, TICK_60, TICK_3600, "
               "SUPERVISOR_STATE_CHANGE, _RUNNING, _STOPPING, PROCESS_LOG, _STDOUT, _STDERR (of "
               "programs with stdout_events_enabled, stderr_events_enabled); supervisord's "
               "other names are accepted, corral sends none of them yet"},
    [CR_K_BUFFER_SIZE] = {"buffer_size", NULL, CR_T_INT, "10", CR_SEC_LISTENER, NONE,
        SV(buffer_size), 1, 1000000, .doc = "events the pool keeps while its listeners are "
               "busy; when full, the oldest is dropped (and logged)"},
    [CR_K_RESULT_HANDLER] = {"result_handler", NULL, CR_T_STRING,
        "supervisor.dispatchers:default_handler", CR_SEC_LISTENER, RESTART,
        SV(result_handler), .doc = "supervisord's default only: RESULT OK acknowledges an "
               "event, any other result sends it again"},

    /* ---- container ---- */
    [CR_K_ROOTFS] = {"rootfs", "root_directory", CR_T_PATH, NULL, S, RESTART, SV(rootfs),
        .doc = "root directory of the container; default the host's / bound read-only"},
    [CR_K_HOSTNAME] = {"hostname", NULL, CR_T_STRING, NULL, S, RESTART, SV(hostname),
        .doc = "hostname inside (needs uts); default the process name"},
    [CR_K_NAMESPACES] = {"namespaces", NULL, CR_T_NAMESPACES, "pid,mount,uts,ipc,net,cgroup", S,
        RESTART, SV(namespaces), .doc = "namespaces to create: pid, mount, uts, ipc, net, cgroup, "
               "user, or none (the host's, and the host's / as it is)", .def_program = "none"},
    [CR_K_USER_NAMESPACE] = {"user_namespace", "userns", CR_T_STRING, NULL, S, RESTART,
        SV(user_namespace), .doc = "auto: a user namespace whose ids 0-65535 are a range of "
               "65536 of subid_user's subordinate ids, the same for this name every time "
               "(implies user in namespaces; not with uid_map/gid_map; an explicit rootfs is "
               "idmapped where its filesystem allows, so its files keep their owners inside); "
               "none: no user namespace; "
               "unset: one only with user in namespaces"},
    [CR_K_UID_MAP] = {"uid_map", NULL, CR_T_ITEMS, NULL, S, RESTART, SV(uid_map),
        .doc = "CONTAINER:HOST:COUNT user ids of the user namespace (repeatable; needs user in "
               "namespaces, and must map uid 0), e.g. 0:100000:65536"},
    [CR_K_GID_MAP] = {"gid_map", NULL, CR_T_ITEMS, NULL, S, RESTART, SV(gid_map),
        .doc = "CONTAINER:HOST:COUNT group ids of the user namespace, as uid_map"},
    [CR_K_BIND] = {"bind", NULL, CR_T_ITEMS, NULL, S, RESTART, SV(bind),
        .doc = "SRC:DST[:OPTS] bind mount from the host (repeatable); SRC must exist; OPTS: "
               "ro, rw, idmap or ro,idmap (idmap, with a user namespace: files show inside with "
               "their host owners, and what root inside creates belongs to host root)"},
    [CR_K_TMPFS] = {"tmpfs", NULL, CR_T_ITEMS, NULL, S, RESTART, SV(tmpfs),
        .doc = "DST[:SIZE] tmpfs inside (repeatable)"},
    [CR_K_READ_ONLY] = {"read_only", NULL, CR_T_BOOL, "false", S, RESTART, SV(read_only),
        .doc = "mount the root read-only (binds and tmpfs keep their own mode); with an "
               "image: an overlay without an upper dir"},
    [CR_K_NETWORK] = {"network", "networks", CR_T_LIST, NULL, S, RESTART, SV(network),
        .doc = "bridge (the default network), bridge:NAME (a [network:NAME]; a list joins "
               "several), none (a net namespace with lo only), host (no net namespace), "
               "service:OTHER (OTHER's net namespace; OTHER starts first) or cni:NAME. "
               "Default: bridge for [service:]; host without a net namespace ([program:]'s "
               "default, or namespaces without net); none for a [program:] given namespaces "
               "with net"},
    [CR_K_PORTS] = {"ports", "publish", CR_T_LIST, NULL, S, RESTART, SV(ports),
        .doc = "[IP:]HOST:CONTAINER[/tcp|/udp] published on the host (repeatable; needs a "
               "bridge network that is not internal): reachable at 127.0.0.1:HOST, the "
               "host's addresses and from outside, the client's address preserved. With "
               "network = cni:NAME: given to the plugins that ask for portMappings (portmap)"},
    [CR_K_IMAGE] = {"image", NULL, CR_T_STRING, NULL, S, RESTART, SV(image),
        .doc = "oci:PATH[:TAG] (an OCI image layout) or docker-archive:FILE[:REF] (a docker "
               "save tarball): the root is an overlay of its layers (digest-checked, unpacked "
               "once into image_store) with a per-container upper dir; its config fills "
               "command, entrypoint, environment, directory, user and stopsignal left unset; "
               "not with rootfs or a user namespace"},
    [CR_K_ENTRYPOINT] = {"entrypoint", NULL, CR_T_COMMAND, NULL, S, RESTART, SV(entrypoint),
        .doc = "words put before command (as Docker's: it replaces the image's Entrypoint, and "
               "then the image's Cmd is not used)"},
    [CR_K_ROOTFS_PERSIST] = {"rootfs_persist", NULL, CR_T_BOOL, "false", S, RESTART,
        SV(rootfs_persist), .doc = "with an image: keep what the container wrote (its upper "
               "dir) for the next container; false: each container starts from the image"},
    [CR_K_VOLUME] = {"volume", NULL, CR_T_ITEMS, NULL, S, RESTART, SV(volume),
        .doc = "NAME:/path[:ro] a named volume (image_store/volumes/NAME) bound at /path "
               "(repeatable): made at the first start, seeded then from the image's content "
               "at /path, kept across restarts, reloads and services; removed only by "
               "supervisor -c FILE volumes --prune"},

    /* ---- security: every default confines, every key relaxes one thing ---- */
    [CR_K_CAP_ADD] = {"cap_add", NULL, CR_T_LIST, NULL, S, RESTART, SV(cap_add),
        .doc = "capabilities added to the default 11 (CHOWN DAC_OVERRIDE FOWNER FSETID KILL "
               "SETGID SETUID SETPCAP NET_BIND_SERVICE SYS_CHROOT SETFCAP): NET_RAW or "
               "CAP_NET_RAW, any case; ALL for every one", .def_program = "ALL"},
    [CR_K_CAP_DROP] = {"cap_drop", NULL, CR_T_LIST, NULL, S, RESTART, SV(cap_drop),
        .doc = "capabilities taken away (ALL: start from none, then cap_add)"},
    [CR_K_AMBIENT_CAPABILITIES] = {"ambient_capabilities", NULL, CR_T_LIST, NULL, S, RESTART,
        SV(ambient_capabilities), .doc = "capabilities a non-root user keeps through exec "
               "(e.g. NET_BIND_SERVICE to bind port 80); each must be among the service's"},
    [CR_K_NO_NEW_PRIVILEGES] = {"no_new_privileges", "no_new_privs", CR_T_BOOL, "true", S,
        RESTART, SV(no_new_privileges), .doc = "no exec can gain privileges (setuid and file "
               "capabilities have no effect); false allows setuid binaries", .def_program = "false"},
    [CR_K_SECCOMP] = {"seccomp", "seccomp_profile", CR_T_STRING, "default", S, RESTART,
        SV(seccomp), .doc = "system call filter: default (denies keyrings, bpf, perf, "
               "mount and namespace calls, modules, clock setting, io_uring, userfaultfd, ... "
               "with EPERM) or unconfined", .def_program = "unconfined"},
    [CR_K_MASKED_PATHS] = {"masked_paths", NULL, CR_T_LIST, NULL, S, RESTART, SV(masked_paths),
        .doc = "more paths hidden inside (besides /proc/kcore, /proc/keys, /proc/timer_list, "
               "/sys/firmware and the other OCI defaults)"},
    [CR_K_READONLY_PATHS] = {"readonly_paths", NULL, CR_T_LIST, NULL, S, RESTART,
        SV(readonly_paths), .doc = "more paths made read-only inside (besides /proc/sys, "
               "/proc/sysrq-trigger, /proc/bus, /proc/fs, /proc/irq)"},
    [CR_K_UNMASK] = {"unmask", NULL, CR_T_LIST, NULL, S, RESTART, SV(unmask),
        .doc = "default masked or read-only paths to leave alone, or ALL"},
    [CR_K_DEVICE] = {"device", "devices", CR_T_ITEMS, NULL, S, RESTART, SV(device),
        .doc = "HOST[:CONTAINER][:rwm] a host device node passed in (repeatable, as Docker's "
               "--device): made in the container's /dev and allowed by its cgroup; every other "
               "device is refused"},
    [CR_K_CONFINE_DEVICES] = {"confine_devices", NULL, CR_T_BOOL, "true", S, RESTART,
        SV(confine_devices), .doc = "the cgroup allows only the default device nodes and "
               "those of device; false: every device, as on the host", .def_program = "false"},

    /* ---- cgroup limits: applied live on reload ---- */
    [CR_K_MEMORY_MAX] = {"memory_max", "mem_limit", CR_T_SIZE, NULL, S, LIVE, SV(memory_max),
        .doc = "hard memory limit (OOM kill above it), or max"},
    [CR_K_MEMORY_HIGH] = {"memory_high", NULL, CR_T_SIZE, NULL, S, LIVE, SV(memory_high),
        .doc = "memory throttling point (cgroup v1: the soft limit), or max"},
    [CR_K_MEMORY_SWAP_MAX] = {"memory_swap_max", NULL, CR_T_SIZE, NULL, S, LIVE,
        SV(memory_swap_max), .doc = "swap limit (v1: needs memory.memsw.*), or max"},
    [CR_K_CPU_MAX] = {"cpu_max", "cpu_quota", CR_T_CPU_MAX, NULL, S, LIVE, SV(cpu_max),
        .doc = "CPU bandwidth: 150% (of one CPU), QUOTA PERIOD in microseconds, or max"},
    [CR_K_CPU_WEIGHT] = {"cpu_weight", NULL, CR_T_INT, NULL, S, LIVE, SV(cpu_weight), 1,
        10000, .doc = "relative CPU share, 1-10000 (100 is normal)"},
    [CR_K_PIDS_MAX] = {"pids_max", "tasks_max", CR_T_INT, "2048", S, LIVE, SV(pids_max), 1,
        4194304, true, .doc = "most processes and threads at once, or max (the default holds "
               "a fork bomb inside its service; dropped where there is no pids controller)"},
    [CR_K_IO_WEIGHT] = {"io_weight", NULL, CR_T_INT, NULL, S, LIVE, SV(io_weight), 1, 10000,
        .doc = "relative IO share, 1-10000 (100 is normal)"},
};

static bool key_named(const struct cr_key *k, const char *name)
{
    if (!strcasecmp(k->name, name))
        return true;
    size_t n = strlen(name);
    for (const char *a = k->aliases; a && *a;) {
        size_t len = strcspn(a, " ");
        if (len == n && !strncasecmp(a, name, n))
            return true;
        a += len;
        while (*a == ' ')
            a++;
    }
    return false;
}

/* Each name and alias of the table in a hash (case folded): a key of a file is found by one
 * or two probes, not by comparing it with 136 names and their aliases (a file of 100
 * services with five keys each made 500 such scans); keys of one name are chained in table
 * order. Made on the first look-up (a sorted index made then cost a qsort, ~2 % of a load). */
static struct key_name {
    const char *name;   /* not NUL-terminated when an alias */
    size_t len;
    int key;
    int next;           /* the next key of this name, in table order; -1: none */
} by_name[CR_NKEYS * 3];
#define NAME_SLOTS 1024   /* a power of two, over twice the names */
_Static_assert(NAME_SLOTS > 2 * CR_NKEYS * 3, "the hash of key names stays sparse");
static int16_t name_slot[NAME_SLOTS];   /* index + 1 into by_name of a name's first key */
static size_t nby_name;

static unsigned name_hash(const char *s, size_t n)
{
    unsigned h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)tolower((unsigned char)s[i])) * 16777619u;
    return h;
}

/* The slot of that name: its first key's, or the empty one where it would go. */
static unsigned name_find(const char *s, size_t n)
{
    unsigned i = name_hash(s, n) & (NAME_SLOTS - 1);
    while (name_slot[i]) {
        const struct key_name *e = &by_name[name_slot[i] - 1];
        if (e->len == n && !strncasecmp(e->name, s, n))
            break;
        i = (i + 1) & (NAME_SLOTS - 1);
    }
    return i;
}

static bool index_names(void)
{
    if (nby_name)
        return true;
    size_t n = 0;
    for (int i = 0; i < CR_NKEYS; i++) {
        const struct cr_key *k = &cr_keys[i];
        if (!k->name)
            continue;
        for (const char *a = k->name; a && *a;) {
            size_t len = a == k->name ? strlen(a) : strcspn(a, " ");
            if (n == sizeof by_name / sizeof by_name[0])
                return false;   /* (not with today's table) the scan below does it */
            by_name[n] = (struct key_name){a, len, i, -1};
            unsigned slot = name_find(a, len);
            if (!name_slot[slot]) {
                name_slot[slot] = (int16_t)(n + 1);
            } else {
                int t = name_slot[slot] - 1;
                while (by_name[t].next >= 0)
                    t = by_name[t].next;
                by_name[t].next = (int)n;
            }
            n++;
            a = a == k->name ? k->aliases : a + len;
            while (a && *a == ' ')
                a++;
        }
    }
    nby_name = n;
    return true;
}

/* The first key named so (name or alias) whose sections include one of these, else the
 * first named so at all. */
const struct cr_key *cr_key_find(const char *name, unsigned sections)
{
    const struct cr_key *any = NULL;
    if (!index_names()) {
        for (size_t i = 0; i < CR_NKEYS; i++) {
            const struct cr_key *k = &cr_keys[i];
            if (!key_named(k, name))
                continue;
            if (k->sections & sections)
                return k;
            if (!any)
                any = k;
        }
        return any;
    }
    unsigned slot = name_find(name, strlen(name));
    for (int e = name_slot[slot] - 1; e >= 0; e = by_name[e].next) {
        const struct cr_key *k = &cr_keys[by_name[e].key];
        if (k->sections & sections)
            return k;
        if (!any)
            any = k;
    }
    return any;
}

int cr_edit_distance(const char *a, const char *b)
{
    /* optimal string alignment over three rows; names here are short */
    size_t na = strlen(a), nb = strlen(b);
    if (na > 63 || nb > 63)
        return 64;
    int rows[3][64];
    int *pp = rows[0], *p = rows[1], *c = rows[2];
    for (size_t j = 0; j <= nb; j++)
        p[j] = (int)j;
    for (size_t i = 1; i <= na; i++) {
        c[0] = (int)i;
        for (size_t j = 1; j <= nb; j++) {
            int ca = tolower((unsigned char)a[i - 1]), cb = tolower((unsigned char)b[j - 1]);
            int d = p[j - 1] + (ca != cb);
            if (p[j] + 1 < d)
                d = p[j] + 1;
            if (c[j - 1] + 1 < d)
                d = c[j - 1] + 1;
            if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
                tolower((unsigned char)a[i - 2]) == cb && pp[j - 2] + 1 < d)
                d = pp[j - 2] + 1;
            c[j] = d;
        }
        int *t = pp;
        pp = p;
        p = c;
        c = t;
    }
    return p[nb];
}

static void suggest_one(const char *name, const char *cand, size_t len, const char **best,
                        int *bestd, char *buf)
{
    char word[64];
    if (len >= sizeof word)
        return;
    memcpy(word, cand, len);
    word[len] = '\0';
    int d = cr_edit_distance(name, word);
    if (d < *bestd) {
        *bestd = d;
        memcpy(buf, word, len + 1);
        *best = buf;
    }
}

const char *cr_key_suggest(const char *name)
{
    static char buf[64];
    const char *best = NULL;
    int limit = strlen(name) <= 4 ? 1 : 2, bestd = limit + 1;
    for (size_t i = 0; i < CR_NKEYS; i++) {
        const struct cr_key *k = &cr_keys[i];
        suggest_one(name, k->name, strlen(k->name), &best, &bestd, buf);
        for (const char *a = k->aliases; a && *a;) {
            size_t len = strcspn(a, " ");
            suggest_one(name, a, len, &best, &bestd, buf);
            a += len;
            while (*a == ' ')
                a++;
        }
    }
    return best;
}

const char *cr_key_type_name(enum cr_key_type t)
{
    static const char *const names[] = {
        [CR_T_STRING] = "text", [CR_T_PATH] = "path", [CR_T_COMMAND] = "command",
        [CR_T_BOOL] = "bool", [CR_T_DURATION] = "duration", [CR_T_SIZE] = "size",
        [CR_T_SIGNAL] = "signal", [CR_T_CODES] = "exit codes", [CR_T_INT] = "integer",
        [CR_T_RESTART] = "restart policy", [CR_T_LIST] = "list", [CR_T_ITEMS] = "list (one per line)",
        [CR_T_ENV] = "environment", [CR_T_NAMESPACES] = "namespaces", [CR_T_UMASK] = "octal",
        [CR_T_CPU_MAX] = "cpu quota", [CR_T_LOGFILE] = "log file", [CR_T_CGPATH] = "cgroup path",
        [CR_T_NOOP] = "bool (ignored)",
    };
    return names[t];
}
