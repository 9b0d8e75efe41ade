"""[eventlistener:x], black-box: listeners written on Debian's supervisor.childutils (a library
nobody here wrote) run under corral and under Debian's real supervisord on the same file, and
the events they receive are compared (names and payload fields; pids, serials and times
normalised). Also: a FAIL result sends the same event again, a full buffer drops the oldest
and says so, and a listener that shuts the supervisor down when a program goes FATAL works
(through Debian's supervisorctl). The ASan supervisor, real init, real cgroups."""
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from conftest import T, read_text, wait_until
from test_supervisor import cgroot  # noqa: F401 (a fixture)
from test_supervisorctl import SUPERVISORCTL, SUPERVISORD, Daemon
from test_svctl import ASAN_SVCTL

pytestmark = [pytest.mark.cgroup,
              pytest.mark.skipif(not os.path.exists(SUPERVISORD),
                                 reason="Debian's supervisor package")]

# Records every event as one JSON line: its headers and its payload's fields. Answers FAIL to
# the first FAILS events, OK to the others; waits for the file GATE (if given) before its
# first answer.
LISTENER = r'''
import json, os, sys, time
from supervisor import childutils
out, fails, gate = sys.argv[1], int(sys.argv[2]), sys.argv[3]
n = 0
while True:
    headers, payload = childutils.listener.wait(sys.stdin, sys.stdout)
    if gate != "-":
        while not os.path.exists(gate):
            time.sleep(0.05)
    first, _, data = payload.partition("\n")
    fields = dict(w.split(":", 1) for w in first.split() if ":" in w)
    with open(out, "a") as f:
        f.write(json.dumps({"h": headers, "p": fields, "raw": payload}) + "\n")
    n += 1
    if n <= fails:
        childutils.listener.fail(sys.stdout)
    else:
        childutils.listener.ok(sys.stdout)
'''


# supervisord uses no cgroups: its half of a comparison answers alike under v1 and v2. The v2
# VM (TCG, where each Python supervisord and its listener take tens of seconds) runs ours'
# half alone, checked against what the host's run compared with supervisord.
IN_VM = bool(os.environ.get("RUN_IN_VM"))


def pair(h, tmp, cgroot, progs):
    """Ours over progs(its dir), then (not in the VM) supervisord over the same, unstarted."""
    ours = Daemon(h, Path(tmp) / "corral", cgroot, programs=progs(Path(tmp) / "corral"))
    if IN_VM:
        return [ours]
    return [ours, Daemon(h, Path(tmp) / "supervisord", programs=progs(Path(tmp) / "supervisord"))]


def listener_section(d, name="lis", events="PROCESS_STATE,SUPERVISOR_STATE_CHANGE,TICK_5",
                     fails=0, gate="-", extra=""):
    Path(d).mkdir(parents=True, exist_ok=True)
    (Path(d) / "listener.py").write_text(LISTENER)
    return (f"[eventlistener:{name}]\ncommand = /usr/bin/python3 {d}/listener.py "
            f"{d}/{name}.jsonl {fails} {gate}\nevents = {events}\n"
            f"stdout_logfile = {d}/{name}.out\nstderr_logfile = {d}/{name}.err\n{extra}\n")


PROGRAMS = """
[program:ok]
command = /bin/sleep 1000
stdout_logfile = {d}/ok.out

[program:bad]
command = /bin/sh -c "exit 3"
startretries = 1
; long: a loaded machine's supervisord may reap the exit after startsecs (then RUNNING)
startsecs = 10
stdout_logfile = {d}/bad.out

[program:once]
command = /bin/sh -c "sleep 0.5; exit 0"
startsecs = 0
autorestart = false
stdout_logfile = {d}/once.out

[program:manual]
command = /bin/sleep 1000
autostart = false
stdout_logfile = {d}/manual.out
"""


def events(d, name="lis"):
    path = Path(d) / f"{name}.jsonl"
    if not path.exists():
        return []
    return [json.loads(l) for l in path.read_text().splitlines() if l.strip()]


def has(d, eventname, process=None, name="lis"):
    return any(e["h"]["eventname"] == eventname and
               (process is None or e["p"].get("processname") == process)
               for e in events(d, name))


def per_process(evs):
    """Each process's PROCESS_STATE events in order, pids made N (0 stays 0)."""
    seq = {}
    for e in evs:
        if not e["h"]["eventname"].startswith("PROCESS_STATE"):
            continue
        p = dict(e["p"])
        if "pid" in p:
            assert re.fullmatch(r"\d+", p["pid"]), p
            p["pid"] = "N" if p["pid"] != "0" else "0"
        seq.setdefault(p["processname"], []).append((e["h"]["eventname"], p))
    return seq


def check_headers(evs, pool="lis"):
    """supervisord's header line: ver, server, pool; serials rising; len the payload's."""
    serials, poolserials = [], []
    for e in evs:
        h = e["h"]
        assert h["ver"] == "3.0" and h["server"] == "supervisor" and h["pool"] == pool, h
        assert int(h["len"]) == len(e["raw"].encode()), e
        serials.append(int(h["serial"]))
        poolserials.append(int(h["poolserial"]))
    assert serials == sorted(serials) and poolserials == sorted(poolserials), evs


def scenario(d):
    """Waits for the start-up's events, then starts and stops `manual` with supervisorctl."""
    wait_until(lambda: has(d.dir, "PROCESS_STATE_FATAL", "bad") and
               has(d.dir, "PROCESS_STATE_EXITED", "once") and
               has(d.dir, "PROCESS_STATE_RUNNING", "ok") and
               has(d.dir, "PROCESS_STATE_RUNNING", "lis"), 30,
               what=f"start-up events in {d.dir} ({events(d.dir)})")
    assert d.ctl("start", "manual")[0] == 0
    wait_until(lambda: has(d.dir, "PROCESS_STATE_RUNNING", "manual"), 20, what="manual RUNNING")
    assert d.ctl("stop", "manual")[0] == 0
    wait_until(lambda: has(d.dir, "PROCESS_STATE_STOPPED", "manual"), 20, what="manual STOPPED")
    wait_until(lambda: has(d.dir, "TICK_5"), 20, what="a TICK_5")
    return events(d.dir)


@pytest.mark.skipif(not os.path.exists(SUPERVISORCTL), reason="Debian's supervisor package")
def test_events_as_with_supervisord(h, tmp, cgroot):
    # room for every event of the start-up: corral's restarts come faster than supervisord's
    progs = lambda d: PROGRAMS + listener_section(d, extra="buffer_size = 100")  # noqa: E731
    both = pair(h, tmp, cgroot, progs)
    ours = both[0]
    got = {}
    for d in both:
        got[d] = scenario(d.start())
        assert d.stop() == 0
    if len(both) == 2:
        a, b = per_process(got[ours]), per_process(got[both[1]])
        assert a.keys() == b.keys()
        for name in a:
            assert a[name] == b[name], name
    for d in both:
        evs = got[d]
        check_headers(evs)
        # the supervisor's own state comes first, before any process's
        assert evs[0]["h"]["eventname"] == "SUPERVISOR_STATE_CHANGE_RUNNING"
        assert evs[0]["raw"] == ""
        ticks = [e for e in evs if e["h"]["eventname"] == "TICK_5"]
        assert ticks and all(int(e["p"]["when"]) % 5 == 0 for e in ticks)
    # what corral sent, spelled out once (supervisord's payloads, in its field order)
    raw = [e["raw"] for e in got[ours] if e["p"].get("processname") == "bad"]
    assert [re.sub(r"pid:\d+", "pid:N", r) for r in raw] == [
        "processname:bad groupname:bad from_state:STOPPED tries:0",
        "processname:bad groupname:bad from_state:STARTING tries:1",
        "processname:bad groupname:bad from_state:BACKOFF tries:1",
        "processname:bad groupname:bad from_state:STARTING tries:2",
        "processname:bad groupname:bad from_state:BACKOFF"]
    once = [e["raw"] for e in got[ours] if e["p"].get("processname") == "once"]
    assert re.fullmatch(r"processname:once groupname:once from_state:RUNNING expected:1 "
                        r"pid:[1-9]\d*", once[-1]), once


def test_fail_sends_again(h, tmp, cgroot):
    """RESULT 4\\nFAIL: the same event (serial) comes again, to a listener READY again."""
    progs = lambda d: PROGRAMS + listener_section(d, events="PROCESS_STATE_FATAL", fails=1)  # noqa
    for d in pair(h, tmp, cgroot, progs):
        d.start()
        wait_until(lambda: len(events(d.dir)) >= 2, 30, what=f"two events in {d.dir}")
        assert d.stop() == 0
        evs = events(d.dir)
        assert [e["h"]["eventname"] for e in evs] == ["PROCESS_STATE_FATAL"] * 2, evs
        assert evs[0]["h"]["serial"] == evs[1]["h"]["serial"]
        assert evs[0]["raw"] == evs[1]["raw"]


def test_buffer_overflow_drops_oldest(h, tmp, cgroot):
    """A busy listener: its pool keeps buffer_size events, the oldest go, and the log says so."""
    d = Path(tmp) / "corral"
    gate = d / "go"
    sec = listener_section(d, events="PROCESS_STATE", gate=str(gate), extra="buffer_size = 2")
    ours = Daemon(h, d, cgroot, programs=PROGRAMS + sec).start()
    # the listener holds its first event until the gate opens; meanwhile more than 2 come
    wait_until(lambda: "buffer full" in read_text(ours.err_path), 30,
               what="the overflow in the log")
    settled = {"ok": "RUNNING", "once": "EXITED", "bad": "FATAL", "lis": "RUNNING"}
    wait_until(lambda: all(ours.status().get(k) == v for k, v in settled.items()), 30,
               what=f"{settled}: no more events after these")
    log = read_text(ours.err_path)
    assert re.search(r"event listener pool lis: buffer full \(buffer_size 2\), dropping event "
                     r"\d+ \(PROCESS_STATE_\w+\)", log), log[-2000:]
    gate.write_text("")

    def accounted():
        """Every event made was either received or dropped (logged), none both: the held one
        and what the pool kept reached the listener. (Held + 2 when the listener was READY
        before the overflow; 2 when it became READY only after every event was made, as in
        a slow VM.)"""
        got = {int(e["h"]["serial"]) for e in events(d)}
        dropped = {int(x) for x in re.findall(r"buffer_size 2\), dropping event (\d+) ",
                                              read_text(ours.err_path))}
        every = got | dropped
        return len(got) >= 2 and not got & dropped and every == set(range(max(every) + 1))
    try:
        wait_until(accounted, 20, what="every event received or dropped")
    except AssertionError as e:
        raise AssertionError(f"{e}\nevents: {events(d)}\nsupervisor: "
                             f"{read_text(ours.err_path)[-4000:]}") from None
    serials = [int(e["h"]["serial"]) for e in events(d)]
    # rising, and fewer than were made: the dropped ones never came
    assert serials == sorted(set(serials)), serials
    assert len(serials) < max(serials) + 1, serials
    assert ours.stop() == 0


@pytest.mark.skipif(not os.path.exists(SUPERVISORCTL), reason="Debian's supervisor package")
def test_fatal_listener_shuts_down(h, tmp, cgroot):
    """supervisord's FAQ listener: when any program goes FATAL, shut the supervisor down,
    through the XML-RPC interface childutils finds in SUPERVISOR_SERVER_URL."""
    d = Path(tmp) / "corral"
    d.mkdir(parents=True)
    (d / "fatal.py").write_text(
        "import os, sys\nfrom supervisor import childutils\n"
        f"open('{d}/url', 'w').write(os.environ['SUPERVISOR_SERVER_URL'])\n"
        "while True:\n"
        "    headers, payload = childutils.listener.wait(sys.stdin, sys.stdout)\n"
        "    childutils.getRPCInterface(os.environ).supervisor.shutdown()\n"
        "    childutils.listener.ok(sys.stdout)\n")
    progs = ("[program:doomed]\ncommand = /bin/sh -c 'exit 1'\nstartretries = 0\n"
             f"stdout_logfile = {d}/doomed.out\n\n"
             f"[eventlistener:fatalexit]\nevents = PROCESS_STATE_FATAL\n"
             f"command = /usr/bin/python3 {d}/fatal.py\nstdout_logfile = {d}/fatal.out\n")
    ours = Daemon(h, d, cgroot, programs=progs).start()
    assert ours.p.wait(T(60)) == 0
    assert (d / "url").read_text() == f"unix://{d}/rpc.sock"   # the [unix_http_server]
    assert "shutdown" in read_text(ours.err_path) or "stopping all" in read_text(ours.err_path)


def test_process_log_as_with_supervisord(h, tmp, cgroot):
    """stdout_events_enabled, stderr_events_enabled: PROCESS_LOG_STDOUT and _STDERR carry the
    output (supervisord's payload: a header line, then the data), as under supervisord."""
    def progs(d):
        return ("[program:talker]\ncommand = /bin/sh -c 'echo hello; echo oops >&2; "
                "echo world; exec sleep 1000'\nstdout_events_enabled = true\n"
                f"stderr_events_enabled = true\nstdout_logfile = {d}/talker.out\n"
                f"stderr_logfile = {d}/talker.err\n\n"
                "[program:quiet]\ncommand = /bin/sh -c 'echo unheard; exec sleep 1000'\n"
                f"stdout_logfile = {d}/quiet.out\n\n" + listener_section(d, events="PROCESS_LOG"))
    got = []
    for d in pair(h, tmp, cgroot, progs):
        d.start()

        def streams():
            out = {}
            for e in events(d.dir):
                head, _, data = e["raw"].partition("\n")
                p = e["p"]
                assert e["h"]["eventname"] == f"PROCESS_LOG_{p['channel'].upper()}", e
                assert re.fullmatch(r"[1-9]\d*", p["pid"]), e
                key = (p["processname"], p["groupname"], p["channel"])
                out[key] = out.get(key, "") + data
            return out
        wait_until(lambda: streams().get(("talker", "talker", "stdout")) == "hello\nworld\n" and
                   streams().get(("talker", "talker", "stderr")) == "oops\n", 30,
                   what=f"talker's output as events ({events(d.dir)})")
        assert d.stop() == 0
        got.append(streams())
    want = {("talker", "talker", "stdout"): "hello\nworld\n",
            ("talker", "talker", "stderr"): "oops\n"}
    assert got == [want] * (1 if IN_VM else 2)


# Exits without an answer at its first event (the marker file tells a restart from the first).
CRASHER = r'''
import json, os, sys
from supervisor import childutils
out, mark = sys.argv[1], sys.argv[2]
while True:
    headers, payload = childutils.listener.wait(sys.stdin, sys.stdout)
    with open(out, "a") as f:
        f.write(json.dumps({"h": headers, "p": {}, "raw": payload}) + "\n")
    if not os.path.exists(mark):
        open(mark, "w").close()
        os._exit(1)
    childutils.listener.ok(sys.stdout)
'''


def test_listener_dies_busy_event_sent_again(h, tmp, cgroot):
    """A listener that exits holding an event: its restart gets the same event."""
    def progs(d):
        d.mkdir(parents=True, exist_ok=True)
        (d / "crasher.py").write_text(CRASHER)
        return (PROGRAMS + f"[eventlistener:lis]\ncommand = /usr/bin/python3 {d}/crasher.py "
                f"{d}/lis.jsonl {d}/crashed\nevents = PROCESS_STATE_FATAL\n"
                f"stdout_logfile = {d}/lis.out\n")
    for d in pair(h, tmp, cgroot, progs):
        d.start()
        wait_until(lambda: len(events(d.dir)) >= 2, 30, what=f"the event twice in {d.dir}")
        assert d.stop() == 0
        evs = events(d.dir)
        assert evs[0]["h"]["serial"] == evs[1]["h"]["serial"], evs
        assert evs[0]["raw"] == evs[1]["raw"] and "processname:bad" in evs[0]["raw"], evs


def test_numprocs_pool(h, tmp, cgroot):
    """numprocs listeners form one pool: each event goes to one of them, once."""
    def progs(d):
        return PROGRAMS + listener_section(
            d, events="PROCESS_STATE", extra="numprocs = 2\nprocess_name = "
            "%(program_name)s_%(process_num)d\nbuffer_size = 100").replace(
                f"{d}/lis.jsonl", f"{d}/%(process_num)d.jsonl")
    for d in pair(h, tmp, cgroot, progs):
        d.start()

        def both():
            return events(d.dir, "0") + events(d.dir, "1")

        def settled():
            """Every process's last state recorded and no event in flight: the pool's serials
            have no hole (two listeners may write events out of order)."""
            evs = both()
            last = {(e["p"]["processname"], e["h"]["eventname"]) for e in evs}
            want = {("bad", "PROCESS_STATE_FATAL"), ("once", "PROCESS_STATE_EXITED"),
                    ("ok", "PROCESS_STATE_RUNNING"), ("lis_0", "PROCESS_STATE_RUNNING"),
                    ("lis_1", "PROCESS_STATE_RUNNING")}
            ps = sorted(int(e["h"]["poolserial"]) for e in evs)
            return want <= last and ps == list(range(ps[0], ps[0] + len(ps))) and evs
        # Judged before the stop: a listener stopped while busy has its event sent again to
        # the other one (at least once), in both supervisors.
        evs = wait_until(settled, 30, what=f"the pool's events in {d.dir}")
        assert d.stop() == 0
        assert {e["h"]["pool"] for e in evs} == {"lis"}
        serials = [int(e["h"]["serial"]) for e in evs]
        assert len(serials) == len(set(serials)), serials   # each event once
        names = {e["p"]["processname"] for e in evs}
        assert {"lis_0", "lis_1"} <= names, names


@pytest.mark.skipif(not os.path.exists(SUPERVISORCTL), reason="Debian's supervisor package")
def test_listener_added_and_removed_by_update(h, tmp, cgroot):
    """supervisorctl update adds a listener (its pool takes events from then on) and removes
    it; a changed `events` restarts it with the new subscription."""
    d = Path(tmp) / "corral"
    ours = Daemon(h, d, cgroot, programs=PROGRAMS).start()
    ours.wait_state({"ok": "RUNNING"})
    ours.write(PROGRAMS + listener_section(d, events="PROCESS_STATE_RUNNING"))
    assert ours.ctl("update")[0] == 0
    ours.wait_state({"lis": "RUNNING"})
    assert ours.ctl("start", "manual")[0] == 0
    wait_until(lambda: has(d, "PROCESS_STATE_RUNNING", "manual"), 20, what="manual's RUNNING")
    assert not has(d, "PROCESS_STATE_STOPPED", "manual")
    ours.write(PROGRAMS + listener_section(d, events="PROCESS_STATE_STOPPED"))
    assert ours.ctl("update")[0] == 0
    ours.wait_state({"lis": "RUNNING"})
    assert ours.ctl("stop", "manual")[0] == 0
    wait_until(lambda: has(d, "PROCESS_STATE_STOPPED", "manual"), 20, what="manual's STOPPED")
    n = len(events(d))
    ours.write(PROGRAMS)
    assert ours.ctl("update")[0] == 0
    wait_until(lambda: "lis" not in ours.status(), 20, what="lis removed")
    assert ours.ctl("start", "manual")[0] == 0
    ours.wait_state({"manual": "RUNNING"})
    assert len(events(d)) == n
    assert ours.stop() == 0


def test_listener_across_reexec(h, tmp, cgroot):
    """svctl reexec: the listener (and a program reading its stdin) keep their stdin pipe;
    events after the handover still reach the listener."""
    d = Path(tmp) / "corral"
    progs = (PROGRAMS + f"[program:cat]\ncommand = /bin/cat\nstdout_logfile = {d}/cat.out\n\n"
             + listener_section(d, events="PROCESS_STATE_RUNNING,PROCESS_STATE_STOPPED"))
    ours = Daemon(h, d, cgroot, programs=progs).start()
    ours.wait_state({"lis": "RUNNING", "cat": "RUNNING", "ok": "RUNNING"})
    wait_until(lambda: has(d, "PROCESS_STATE_RUNNING", "ok"), 20, what="ok's RUNNING")
    p = subprocess.run([str(ASAN_SVCTL), "-s", str(d / "ctl.sock"), "reexec"],
                       capture_output=True, text=True, timeout=T(30))
    assert "re-executing" in p.stdout, (p.stdout, p.stderr)
    wait_until(lambda: "took over" in read_text(ours.err_path), 20, what="the re-exec")
    assert ours.ctl("stop", "manual")[0] == 0 and ours.ctl("start", "manual")[0] == 0
    wait_until(lambda: has(d, "PROCESS_STATE_RUNNING", "manual"), 20,
               what="manual's RUNNING after the re-exec")
    status = ours.status()
    assert status["cat"] == "RUNNING" and status["lis"] == "RUNNING", status
    log = read_text(ours.err_path)
    assert "Traceback" not in log and "cannot send" not in log, log[-3000:]
    assert ours.stop() == 0
