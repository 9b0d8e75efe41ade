"""Readiness (`ready = ...`), black-box: the real supervisor (build/asan/supervisor), the real
init inside real containers over build/rootfs, and the workload helper. init detects readiness
inside the container and reports it as the `ready` event; the supervisor shows it as
STARTING -> RUNNING (and logs "NAME: ready (KIND)").

Every test has its own cgroup root (crtest-<pid>-<n>, removed at teardown by the cgroot
fixture) and its processes are killed by PID by the harness."""
import os
import re
import socket
import time
from pathlib import Path

import pytest

from conftest import T, alive, first_seen, gone, wait_until
from test_supervisor import WL, Sup, cgroot, rootfs  # noqa: F401 (fixtures)
from test_supervisor import svc  # rootfs=None: no rootfs key (the host's / read-only)

pytestmark = pytest.mark.cgroup


def ready_gap(s, name, kind):
    """Seconds from `NAME: started (pid` to `NAME: ready (KIND)` in the supervisor's log (its
    own stamps when s is stamped). The tests below ask at least half of the workload's sleep:
    enough to tell a readiness that waited from one that did not, and never failed by how
    late the supervisor learns the workload started on a loaded machine."""
    started = rf"^supervisor: {name}: started \(pid"
    ready = rf"^supervisor: {name}: ready \({re.escape(kind)}\)$"
    t = first_seen(s, [started, ready])
    return t[ready] - t[started]


def workload_pid(ipid):
    """The host pid of init's (first) child: the workload."""
    from conftest import children
    return wait_until(lambda: next((c for c in children(ipid) if alive(c)), None),
                      what=f"a child of init {ipid}")


# ---- notify -------------------------------------------------------------------------------------
def test_notify_ready_and_status(h, tmp, cgroot, rootfs):
    cmd = f"{WL} sleep 1 -- notify STATUS=warming_up -- sleep 0.3 -- notify -- sleep 1000"
    s = Sup(h, tmp, cgroot, svc("db", cmd, ready="notify"), stamped=True).start()
    t = first_seen(s, [r"^supervisor: db: started \(pid", r"^supervisor: db: status: warming_up$",
                       r"^supervisor: db: ready \(notify\)$",
                       r"^supervisor: db: STARTING -> RUNNING$"])
    started, ready = t[r"^supervisor: db: started \(pid"], t[r"^supervisor: db: STARTING -> RUNNING$"]
    # STARTING lasts until READY=1 (1.3 s in), not startsecs (1 s): the order below says which
    assert ready - started >= 0.65, ready - started
    log = s.log()
    assert log.index("db: status: warming_up") < log.index("db: ready (notify)")
    assert log.index("db: ready (notify)") < log.index("db: STARTING -> RUNNING")
    assert s.stop() == 0


def test_notify_env_points_into_the_containers_own_dev(h, tmp, cgroot, rootfs):
    # The socket lives on init's /dev tmpfs: the host's /dev has no such thing.
    cmd = f"{WL} env -- notify -- sleep 1000"
    s = Sup(h, tmp, cgroot, svc("envy", cmd, ready="notify", user="nobody")).start()
    s.wait_log(r"^supervisor: envy: STARTING -> RUNNING$")
    # Its output pipe and the notify socket are two channels: the line may come after READY.
    s.wait_out("envy | NOTIFY_SOCKET=/dev/.corral/notify")
    assert not Path("/dev/.corral").exists()
    ipid = s.init("envy")
    sock = Path(f"/proc/{ipid}/root/dev/.corral/notify")
    assert sock.is_socket() and (sock.stat().st_mode & 0o777) == 0o666   # any user may notify
    assert s.stop() == 0


def test_a_real_sd_notify_client(h, tmp, cgroot, rootfs):
    """systemd's own client (systemd-notify, libsystemd's sd_notify with its BARRIER=1
    handshake) in a container over the host's / (read-only)."""
    if not Path("/usr/bin/systemd-notify").exists():
        pytest.fail("systemd-notify is missing (Debian package systemd)")
    cmd = ("/bin/sh -c 'sleep 0.5; /usr/bin/systemd-notify --status=\"serving on 80\"; "
           "/usr/bin/systemd-notify --ready; echo notified; exec sleep 1000'")
    s = Sup(h, tmp, cgroot, svc("sysd", cmd, rootfs=None, ready="notify")).start()
    s.wait_log(r"^supervisor: sysd: STARTING -> RUNNING$")
    assert "supervisor: sysd: status: serving on 80" in s.log()
    assert "supervisor: sysd: ready (notify)" in s.log()
    s.wait_out("sysd | notified")          # its barrier was acknowledged: it did not hang
    assert s.stop() == 0


def test_notify_from_outside_the_container_is_dropped(h, tmp, cgroot, rootfs):
    s = Sup(h, tmp, cgroot, svc("guarded", f"{WL} sleep 1000", ready="notify",
                                ready_timeout="0")).start()
    ipid = s.init("guarded")
    path = f"/proc/{ipid}/root/dev/.corral/notify"
    wait_until(lambda: os.path.exists(path), what="the notify socket")
    c = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        c.sendto(b"READY=1", path)       # the host's pid namespace: the kernel shows pid 0
    finally:
        c.close()
    s.wait_out("guarded | init: notify: dropped a message from outside the container")
    time.sleep(0.3)
    assert "guarded: ready" not in s.log()
    assert "guarded: STARTING -> RUNNING" not in s.log()
    assert s.stop() == 0


# ---- fd:N ---------------------------------------------------------------------------------------
def test_notification_fd(h, tmp, cgroot, rootfs):
    cmd = f"{WL} info -- sleep 0.8 -- notify-fd 5 -- sleep 1000"
    s = Sup(h, tmp, cgroot, svc("s6", cmd, ready="fd:5"), stamped=True).start()
    gap = ready_gap(s, "s6", "fd:5")
    assert gap >= 0.4, gap
    fds = [l for l in s.out().splitlines() if l.startswith("s6 | fds=")]
    assert fds and "5" in fds[0].split("=", 1)[1].split(","), fds   # fd 5 is open in it
    s.wait_log(r"^supervisor: s6: STARTING -> RUNNING$")
    assert s.stop() == 0


def test_notification_fd_closed_without_newline_is_never_ready(h, tmp, cgroot, rootfs):
    cmd = f"/bin/sh -c 'exec 5>&-; exec {WL} sleep 1000'"
    s = Sup(h, tmp, cgroot, svc("mute", cmd, ready="fd:5", ready_timeout="1500ms",
                                startretries=0)).start()
    s.wait_log(r"^supervisor: mute: not ready within 1500 ms \(ready = fd:5\): a failed start$",
               timeout=10)
    assert "mute: STARTING -> RUNNING" not in s.log()
    assert s.stop() == 0


# ---- exec:CMD -----------------------------------------------------------------------------------
def test_exec_probe_runs_inside_as_the_user(h, tmp, cgroot, rootfs):
    # The probe succeeds only inside the container (its /tmp is a tmpfs of its own) and only
    # as the service's user.
    probe = "exec:/bin/sh -c 'test $(id -u) = 65534 && test -e /tmp/up'"
    cmd = "/bin/sh -c 'sleep 1; touch /tmp/up; exec sleep 1000'"
    s = Sup(h, tmp, cgroot, svc("probed", cmd, ready=probe, user="nobody", tmpfs="/tmp",
                                startsecs=0), stamped=True).start()
    gap = ready_gap(s, "probed", "exec")
    assert 0.5 <= gap < T(3), gap
    s.wait_log(r"^supervisor: probed: STARTING -> RUNNING$")
    assert s.stop() == 0


def test_exec_probe_that_never_succeeds_times_out(h, tmp, cgroot, rootfs):
    s = Sup(h, tmp, cgroot, svc("never", f"{WL} sleep 1000", ready="exec:/bin/false",
                                ready_timeout="1s", startretries=1, restart_delay="0")).start()
    s.wait_log(r"^supervisor: never: \w+ -> FATAL$", timeout=15)
    log = s.log()
    # a failed start, retried once (startretries = 1), then init gives up
    assert len(re.findall(r"never: not ready within 1000 ms \(ready = exec\): a failed start",
                          log)) == 2, log
    assert re.search(r"never: gave up after \d+ restarts", log), log
    assert "never: STARTING -> RUNNING" not in log
    assert len(s.inits("never")) == 1               # init retried inside the same container
    assert s.stop() == 0


# ---- tcp:PORT -----------------------------------------------------------------------------------
def test_tcp_port(h, tmp, cgroot, rootfs):
    # Inside its own network namespace: a listener on the host's 127.0.0.1:8080 would not do.
    cmd = "/bin/sh -c 'sleep 1; exec httpd -f -p 127.0.0.1:8080 -h /'"
    s = Sup(h, tmp, cgroot, svc("web", cmd, ready="tcp:8080"), stamped=True).start()
    gap = ready_gap(s, "web", "tcp:8080")
    assert 0.5 <= gap < T(3), gap
    s.wait_log(r"^supervisor: web: STARTING -> RUNNING$")
    assert s.stop() == 0


# ---- ready_timeout ------------------------------------------------------------------------------
def test_ready_timeout_is_a_failed_start(h, tmp, cgroot, rootfs):
    s = Sup(h, tmp, cgroot, svc("slow", f"{WL} trap TERM exit=0 -- sleep 1000", ready="notify",
                                ready_timeout="800ms", startretries=1,
                                restart_delay="0"), stamped=True).start()
    t = first_seen(s, [r"^supervisor: slow: started \(pid",
                       r"^supervisor: slow: not ready within 800 ms \(ready = notify\): a failed start$",
                       r"^supervisor: slow: \w+ -> FATAL$"], timeout=15)
    took = t[r"^supervisor: slow: not ready within 800 ms \(ready = notify\): a failed start$"] - \
        t[r"^supervisor: slow: started \(pid"]
    assert 0.4 <= took < T(2.5), took
    log = s.log()
    assert re.search(r"slow: exited \(code 0", log), log   # stopped with its stop signal
    # a failed start: retried once (startretries = 1), then init gives up
    assert len(re.findall(r"slow: not ready within 800 ms", log)) == 2, log
    assert "slow: STARTING -> RUNNING" not in log
    assert s.stop() == 0


# ---- config errors ------------------------------------------------------------------------------
def test_bad_readiness_and_health_keys_are_config_errors(h, tmp, cgroot, rootfs):
    conf = (svc("a", f"{WL} sleep 1", ready="fd:2") +
            svc("b", f"{WL} sleep 1", ready="socket") +
            svc("c", f"{WL} sleep 1", ready="exec:'unterminated") +
            svc("d", f"{WL} sleep 1", ready="tcp:70000", health_action="reboot") +
            svc("e", f"{WL} sleep 1", health_cmd="/bin/true", health_interval="0",
                health_retries="0", ready_timeout="soon"))
    s = Sup(h, tmp, cgroot, conf)
    text = s.ini.read_text().splitlines()

    def line(key, n=0):
        return [i + 1 for i, l in enumerate(text) if l.startswith(key + " =")][n]
    ini = s.ini
    rc, out, err = s.run("--check")
    assert rc != 0
    errors = sorted(l for l in (out + err).splitlines() if l.startswith(str(ini)))
    kinds = "is not none, notify, fd:N (N from 3 to 1023), exec:CMD or tcp:PORT"
    assert errors == sorted([
        f"{ini}:{line('ready', 0)}: ready: 'fd:2' {kinds}",
        f"{ini}:{line('ready', 1)}: ready: 'socket' {kinds}",
        f"{ini}:{line('ready', 2)}: ready: exec:CMD: unterminated ' quote",
        f"{ini}:{line('ready', 3)}: ready: 'tcp:70000' {kinds}",
        f"{ini}:{line('health_action')}: health_action: 'reboot' is not restart, stop or none",
        f"{ini}:{line('health_interval')}: health_interval: must be longer than 0",
        f"{ini}:{line('health_retries')}: health_retries: '0' is not an integer from 1 to 1000",
        f"{ini}:{line('ready_timeout')}: ready_timeout: 'soon' is not a duration (500ms, 10s, "
        f"2m, 1h)",
    ]), out + err


def test_notify_without_a_mount_namespace_uses_an_abstract_socket(h, tmp, cgroot, rootfs):
    # No /dev of its own to bind in: an abstract socket of the container's network namespace.
    from conftest import WORKLOAD
    cmd = f"{WORKLOAD} env -- sleep 0.3 -- notify -- sleep 1000"
    s = Sup(h, tmp, cgroot, svc("abs", cmd, rootfs=None, namespaces="pid,uts,ipc,net",
                                ready="notify")).start()
    s.wait_log(r"^supervisor: abs: STARTING -> RUNNING$")
    env = [l for l in s.out().splitlines() if l.startswith("abs | NOTIFY_SOCKET=")]
    assert len(env) == 1 and env[0].startswith("abs | NOTIFY_SOCKET=@corral-notify-"), env
    # not in the host's network namespace
    assert env[0].split("=", 1)[1][1:] not in Path("/proc/net/unix").read_text()
    assert s.stop() == 0
