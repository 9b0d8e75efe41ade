"""depends_on, black-box: the real supervisor starts a service only once its dependencies are
ready (their `ready` key, or startsecs), stops in reverse dependency order, refuses unknown
names and cycles, and keeps to the graph on reload. Real containers over build/rootfs; every
test has its own cgroup root (cgroot fixture), processes are killed by PID by the harness."""
import re
import signal
import time
from pathlib import Path

import pytest

from conftest import ASAN_SUPERVISOR, INIT, T, first_seen, read_text, wait_until
from test_supervisor import WL, Sup, cgroot, rootfs, svc  # noqa: F401 (fixtures)

pytestmark = pytest.mark.cgroup


def test_starts_after_its_dependency_is_ready(h, tmp, cgroot, rootfs):
    shared = Path(tmp) / "shared"
    shared.mkdir()
    marks = shared / "marks"
    # web has the lower priority: by priority alone it would start first
    conf = (svc("db", f"{WL} out /shared/marks -- sleep 1.5 -- mark db-ready -- notify -- "
                      f"sleep 1000", ready="notify", priority=500, bind=f"{shared}:/shared") +
            svc("web", f"{WL} out /shared/marks -- mark web-start -- sleep 1000",
                depends_on="db", priority=1, startsecs=0, bind=f"{shared}:/shared"))
    s = Sup(h, tmp, cgroot, conf, stamped=True).start()
    t = first_seen(s, [r"^supervisor: db: started \(pid", r"^supervisor: db: ready \(notify\)$",
                       r"^supervisor: web: container started", r"^supervisor: web: started \(pid"])
    # by the supervisor's clock: web's container came after db's workload had slept (1.5 s:
    # at least half of it, however late the supervisor heard of db's start), once db said READY=1
    assert t[r"^supervisor: web: container started"] - t[r"^supervisor: db: started \(pid"] >= 0.75
    assert t[r"^supervisor: web: container started"] >= t[r"^supervisor: db: ready \(notify\)$"]
    log = s.log()
    assert re.search(r"^supervisor: web: waiting for db to be ready \(\w+\)$", log, re.M), log
    assert log.index("db: STARTING -> RUNNING") < log.index("web: container started")
    # and by what the workloads themselves wrote
    wait_until(lambda: len(read_text(marks).splitlines()) >= 2, what="both marks")
    assert read_text(marks).splitlines() == ["db-ready", "web-start"]
    assert s.stop() == 0


def test_sigterm_stops_in_reverse_dependency_order(h, tmp, cgroot, rootfs):
    # c needs b needs a; priorities say the opposite (a would stop first by priority)
    cmd = f"{WL} trap TERM -- waitsig TERM -- sleep 0.3 -- exit 0"
    conf = (svc("a", cmd, priority=900, startsecs=0) +
            svc("b", cmd, priority=500, startsecs=0, depends_on="a") +
            svc("c", cmd, priority=100, startsecs=0, depends_on="b"))
    s = Sup(h, tmp, cgroot, conf).start()
    s.wait_log(r"^supervisor: c: STARTING -> RUNNING$")
    log = s.log()
    started = [log.index(f"supervisor: {n}: container started") for n in "abc"]
    assert started == sorted(started), log
    assert s.stop() == 0
    log = s.log()
    stopping = [log.index(f"supervisor: {n}: RUNNING -> STOPPING") for n in "cba"]
    stopped = [log.index(f"supervisor: {n}: STOPPING -> STOPPED") for n in "cba"]
    assert stopping[1] > stopped[0] and stopping[2] > stopped[1], log
    assert "all services stopped" in log


def test_fatal_dependency_keeps_dependents_down(h, tmp, cgroot, rootfs):
    conf = (svc("db", f"{WL} exit 1", autorestart="false", startretries=0) +
            svc("web", f"{WL} sleep 1000", depends_on="db", startsecs=0) +
            svc("api", f"{WL} sleep 1000", depends_on="web", startsecs=0))
    s = Sup(h, tmp, cgroot, conf).start()
    s.wait_log(r"^supervisor: db: \w+ -> FATAL$")
    s.wait_log(r"^supervisor: web: not started: its dependency db is FATAL$")
    time.sleep(0.5)
    log = s.log()
    assert "web: container started" not in log and "api: container started" not in log
    assert "supervisor: api: waiting for web to be ready (STOPPED)" in log
    assert s.stop() == 0


def test_a_dependency_that_exited_as_expected_counts_as_done(h, tmp, cgroot, rootfs):
    # one-shot jobs: "ok" exited 0 (expected), "bad" exited 3; both stay down
    base = (svc("ok", f"{WL} sleep 0.2 -- exit 0", autorestart="false", startsecs=0) +
            svc("bad", f"{WL} sleep 0.2 -- exit 3", autorestart="false", startsecs=0))
    s = Sup(h, tmp, cgroot, base).start()
    s.wait_log(r"^supervisor: ok: RUNNING -> EXITED$")
    s.wait_log(r"^supervisor: bad: RUNNING -> EXITED$")
    s.write(base + svc("app", f"{WL} sleep 1000", depends_on="ok", startsecs=0) +
            svc("app2", f"{WL} sleep 1000", depends_on="bad", startsecs=0))
    s.p.send_signal(signal.SIGHUP)
    s.wait_log(r"^supervisor: app: STARTING -> RUNNING$")
    s.wait_log(r"^supervisor: app2: waiting for bad to be ready \(EXITED\)$")
    time.sleep(0.3)
    assert "app2: container started" not in s.log()
    assert s.stop() == 0


def lines_of(text, needle):
    """1-based numbers of the lines of text that start with needle."""
    return [i + 1 for i, l in enumerate(text.splitlines()) if l.startswith(needle)]


def test_unknown_names_and_cycles_are_config_errors(h, tmp, cgroot, rootfs):
    conf = (svc("a", f"{WL} sleep 1", depends_on="b") +
            svc("b", f"{WL} sleep 1", depends_on="c, nosuch") +
            svc("c", f"{WL} sleep 1", depends_on="a") +
            svc("d", f"{WL} sleep 1", depends_on="d") +
            svc("e", f"{WL} sleep 1", depends_on=["a", "ghost"]))
    s = Sup(h, tmp, cgroot, conf)
    text = s.ini.read_text()
    dl = lines_of(text, "depends_on")
    ini = s.ini
    rc, out, err = s.run("--check")
    assert rc != 0
    errors = [l for l in (out + err).splitlines() if l.startswith(str(ini))]
    assert errors == [
        f"{ini}:{dl[1]}: depends_on: no service 'nosuch'",
        f"{ini}:{dl[5]}: depends_on: no service 'ghost'",
        f"{ini}:{dl[2]}: depends_on: dependency cycle: a -> b -> c -> a",
        f"{ini}:{dl[3]}: depends_on: dependency cycle: d -> d",
    ], out + err
    # and a supervisor with that file starts nothing
    p, o, e = h.popen([ASAN_SUPERVISOR, "-c", ini], env={"CORRAL_INIT": str(INIT)})
    assert p.wait(T(10)) != 0
    assert "container started" not in read_text(e)


def test_reload_starts_new_services_in_dependency_order(h, tmp, cgroot, rootfs):
    base = svc("keep", f"{WL} sleep 1000", startsecs=0)
    s = Sup(h, tmp, cgroot, base, stamped=True).start()
    s.wait_log(r"^supervisor: keep: STARTING -> RUNNING$")
    s.write(base +
            svc("api", f"{WL} sleep 1000", depends_on="cache", priority=1, startsecs=0) +
            svc("cache", f"{WL} sleep 1 -- notify -- sleep 1000", ready="notify", priority=900))
    s.p.send_signal(signal.SIGHUP)
    t = first_seen(s, [r"^supervisor: cache: started \(pid", r"^supervisor: cache: ready",
                       r"^supervisor: api: container started"])
    # by the supervisor's clock, at least half of cache's second
    assert t[r"^supervisor: api: container started"] - t[r"^supervisor: cache: started \(pid"] >= 0.5
    # the log's order, not the times the test saw the lines (a loaded machine delays the
    # test's reading, not the supervisor's order): cache is ready (a second after its start)
    # before api's container is started
    log = s.log()
    at = {m: log.index(m) for m in ("cache: started (pid", "cache: ready",
                                    "cache: STARTING -> RUNNING", "api: container started")}
    for m in ("cache: ready", "cache: STARTING -> RUNNING"):
        assert at["cache: started (pid"] < at[m] < at["api: container started"], log
    assert "reloaded: 2 added, 0 removed" in log
    assert s.stop() == 0


# ---- svctl and pending starts (issue 13, bugs (a) and (b)) -------------------------------------
def _why(s, name):
    return s.status(name)[name].get("why", "")


def test_restart_waits_for_a_stopped_dependency_as_stop_then_start_does(h, tmp, cgroot, rootfs):
    """`svctl restart app` with db STOPPED is `svctl stop app; svctl start app`: app stops and
    its start waits for db (db is not started for it), then happens once db is ready."""
    from test_svctl import CtlSup
    conf = (svc("db", f"{WL} sleep 1000", startsecs=0) +
            svc("app", f"{WL} sleep 1000", startsecs=0, depends_on="db"))
    s = CtlSup(h, tmp, cgroot, conf).start()
    s.wait_log(r"^supervisor: app: STARTING -> RUNNING$")
    s.ctl("stop", "db", check=0)
    s.wait_state("db", "STOPPED")

    # stop then start: app is down and says what its start waits for
    s.ctl("stop", "app", check=0)
    s.ctl("start", "--no-block", "app", check=0)   # it waits for db: svctl would too
    s.wait_log(r"^supervisor: app: STOPPING -> STOPPED$")
    first = s.status("app")["app"]
    assert first["state"] == "STOPPED" and "waiting for db" in first.get("why", ""), first
    s.ctl("start", "db", check=0)
    s.wait_log(r"^supervisor: app: STARTING -> RUNNING$", count=2)
    assert _why(s, "app") == ""

    # restart does the same
    s.ctl("stop", "db", check=0)
    s.wait_state("db", "STOPPED")
    s.ctl("restart", "--no-block", "app", check=0)
    s.wait_log(r"^supervisor: app: STOPPING -> STOPPED$", count=2)
    again = s.status("app")["app"]
    assert (again["state"], again.get("why")) == (first["state"], first["why"]), again
    assert s.status("db")["db"]["state"] == "STOPPED"       # not started for app
    assert len(s.inits("app")) == 2
    s.ctl("start", "db", check=0)
    s.wait_log(r"^supervisor: app: STARTING -> RUNNING$", count=3)
    assert _why(s, "app") == ""
    assert s.stop() == 0


def test_stop_cancels_a_start_that_waits_for_a_dependency(h, tmp, cgroot, rootfs):
    """`svctl stop app` while app's start waits for db cancels that start: status no longer
    says it waits, and db becoming ready does not start it."""
    from test_svctl import CtlSup
    conf = (svc("db", f"{WL} sleep 1000", startsecs=0, autostart="false") +
            svc("app", f"{WL} sleep 1000", startsecs=0, depends_on="db"))
    s = CtlSup(h, tmp, cgroot, conf).start()
    s.wait_log(r"^supervisor: app: waiting for db to be ready \(STOPPED\)$")
    assert "waiting for db" in _why(s, "app")
    s.ctl("stop", "app", check=0)
    st = s.status("app")["app"]
    assert st["state"] == "STOPPED" and "why" not in st, st
    s.ctl("start", "db", check=0)
    s.wait_state("db", "RUNNING")
    # db's becoming RUNNING starts what waits for it in the same turn of the loop, before
    # this status is answered: app must still be down.
    st = s.status("app")["app"]
    assert st["state"] == "STOPPED" and "why" not in st, st
    assert "app: container started" not in s.log()
    # and a later start works as usual
    s.ctl("start", "app", check=0)
    s.wait_state("app", "RUNNING")
    assert s.stop() == 0
