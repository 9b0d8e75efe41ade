"""Health checks (`health_cmd` and friends), black-box: the real supervisor, the real init in
real containers over build/rootfs. init runs the check inside the container and reports
`healthy` / `unhealthy`; health_action decides what follows.

The checks look for /tmp/healthy on the container's own /tmp tmpfs; the test creates or
removes it from the host through /proc/PID/root of the workload. Every test has its own
cgroup root (cgroot fixture) and its processes are killed by PID by the harness."""
import os
import re
import time
from pathlib import Path

import pytest

from conftest import T, alive, children, gone, wait_until
from test_supervisor import WL, Sup, cgroot, rootfs, svc  # noqa: F401 (fixtures)

pytestmark = pytest.mark.cgroup

CHECK = "/bin/sh -c 'test -e /tmp/healthy || { echo no /tmp/healthy; exit 1; }'"


def workload(ipid):
    return wait_until(lambda: next((c for c in children(ipid) if alive(c)), None),
                      what=f"a child of init {ipid}")


def flag(pid):
    return Path(f"/proc/{pid}/root/tmp/healthy")


def test_unhealthy_restarts_the_workload(h, tmp, cgroot, rootfs):
    s = Sup(h, tmp, cgroot, svc("flaky", f"{WL} sleep 1000", startsecs=0, tmpfs="/tmp",
                                health_cmd=CHECK, health_interval="200ms", health_retries=3,
                                restart_delay="0")).start()
    ipid = s.init("flaky")
    w1 = workload(ipid)
    flag(w1).touch()
    s.wait_log(r"^supervisor: flaky: healthy$")
    flag(w1).unlink()
    t0 = time.monotonic()
    s.wait_log(r"^supervisor: flaky: unhealthy after 3 failed checks \(exit 1: no /tmp/healthy\); "
               r"health_action = restart$")
    took = time.monotonic() - t0
    assert 0.5 <= took < T(3), took                  # three checks, 200 ms apart
    s.wait_log(r"^supervisor: flaky: exited \(signal TERM")
    s.wait_log(r"^supervisor: flaky: restarting in \d+ ms \(attempt 1\)$")
    s.wait_log(r"^supervisor: flaky: started \(pid", count=2)
    w2 = workload(ipid)
    assert w2 != w1 and gone(w1)
    assert s.inits("flaky") == [ipid]                # the same container: init restarted it
    assert "flaky | init: unhealthy after 3 failed checks (exit 1: no /tmp/healthy): " \
           "restarting it" in s.out()
    assert s.stop() == 0


def test_unhealthy_stop_ends_the_container_for_good(h, tmp, cgroot, rootfs):
    s = Sup(h, tmp, cgroot, svc("sick", f"{WL} sleep 1000", startsecs=0, autorestart="true",
                                health_cmd="/bin/false", health_interval="100ms",
                                health_retries=2, health_action="stop")).start()
    ipid = s.init("sick")
    s.wait_log(r"^supervisor: sick: unhealthy after 2 failed checks \(exit 1\); "
               r"health_action = stop$")
    s.wait_log(r"^supervisor: sick: container exited \(code 143\)$")   # the workload's status
    s.wait_log(r"^supervisor: sick: \w+ -> EXITED$")
    assert "sick: stopped for being unhealthy (health_action = stop): not restarted" in s.log()
    assert gone(ipid)
    time.sleep(0.5)
    assert len(s.inits("sick")) == 1 and "sick: restarting" not in s.log()
    assert s.stop() == 0


def test_unhealthy_none_only_reports(h, tmp, cgroot, rootfs):
    s = Sup(h, tmp, cgroot, svc("watched", f"{WL} sleep 1000", startsecs=0, tmpfs="/tmp",
                                health_cmd=CHECK, health_interval="100ms", health_retries=2,
                                health_action="none")).start()
    ipid = s.init("watched")
    w = workload(ipid)
    s.wait_log(r"^supervisor: watched: unhealthy after 2 failed checks .*; health_action = none$")
    time.sleep(0.5)                                   # more failures: reported once
    assert s.log().count("watched: unhealthy") == 1
    assert alive(w) and workload(ipid) == w           # left alone
    flag(w).touch()
    s.wait_log(r"^supervisor: watched: healthy$")
    flag(w).unlink()
    s.wait_log(r"^supervisor: watched: unhealthy after 2 failed checks", count=2)
    assert alive(w) and "watched: exited" not in s.log()
    assert s.stop() == 0


def test_check_timeout_kills_the_probes_process_group(h, tmp, cgroot, rootfs):
    # The check leaves a grandchild in its process group: both die at the timeout.
    check = "/bin/sh -c 'sleep 100 & exec sleep 200'"
    s = Sup(h, tmp, cgroot, svc("hang", f"{WL} sleep 1000", startsecs=0, health_cmd=check,
                                health_interval="100ms", health_timeout="300ms",
                                health_retries=1, health_action="none")).start()
    ipid = s.init("hang")
    t0 = time.monotonic()
    s.wait_log(r"^supervisor: hang: unhealthy after 1 failed checks \(timed out after 300 ms\); "
               r"health_action = none$")
    assert time.monotonic() - t0 >= 0.25

    def sleepers():
        out = []
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    if os.readlink(f"/proc/{d}/ns/pid") == os.readlink(f"/proc/{ipid}/ns/pid") \
                            and Path(f"/proc/{d}/comm").read_text().strip() == "sleep":
                        out.append(int(d))
                except OSError:
                    pass
        return out
    # checks keep coming every 100 ms; each one's sleeps are gone at its timeout, so at most
    # one check's pair exists at any time
    for _ in range(10):
        assert len(sleepers()) <= 2, sleepers()
        time.sleep(0.05)
    assert s.stop() == 0


def test_start_period_forgives_early_failures(h, tmp, cgroot, rootfs):
    s = Sup(h, tmp, cgroot, svc("warm", f"{WL} sleep 1000", startsecs=0, health_cmd="/bin/false",
                                health_interval="100ms", health_retries=1,
                                health_start_period="1500ms", health_action="none")).start()
    s.wait_log(r"^supervisor: warm: started \(pid")
    t0 = time.monotonic()
    s.wait_log(r"^supervisor: warm: unhealthy after 1 failed checks", timeout=10)
    took = time.monotonic() - t0
    assert 1.3 <= took < T(3), took
    assert s.stop() == 0


def test_checks_start_once_ready(h, tmp, cgroot, rootfs):
    # ready = notify: no check runs before READY=1 (1 s in), so a check that fails only before
    # readiness never counts.
    cmd = f"/bin/sh -c 'sleep 1; touch /tmp/healthy; exec {WL} notify -- sleep 1000'"
    s = Sup(h, tmp, cgroot, svc("order", cmd, tmpfs="/tmp", ready="notify", health_cmd=CHECK,
                                health_interval="100ms", health_retries=1,
                                health_action="none")).start()
    s.wait_log(r"^supervisor: order: healthy$")
    log = s.log()
    assert log.index("order: ready (notify)") < log.index("order: healthy")
    assert "order: unhealthy" not in log
    assert s.stop() == 0


def test_health_is_forgotten_when_the_workload_exits(h, tmp, cgroot, rootfs):
    # issue 10 item 7: after an exit (an OOM kill, here a SIGKILL) status said
    # "BACKOFF (healthy)": the verdict was the dead workload's
    import signal
    from test_svctl import CtlSup
    s = CtlSup(h, tmp, cgroot, svc("hk", f"{WL} sleep 1000", startsecs=0, tmpfs="/tmp",
                                   health_cmd=CHECK, health_interval="100ms",
                                   autorestart="true", restart_delay="60s",
                                   restart_delay_max="60s")).start()
    ipid = s.init("hk")
    w = workload(ipid)
    flag(w).touch()
    s.wait_log(r"^supervisor: hk: healthy$")
    assert s.status("hk")["hk"].get("healthy") == 1
    os.kill(w, signal.SIGKILL)
    s.wait_log(r"^supervisor: hk: exited \(signal KILL")
    st = s.wait_state("hk", "BACKOFF")
    assert "healthy" not in st, st
    rc, out, err = s.ctl("status", "hk", check=0)
    assert "healthy" not in out, out
    assert s.stop() == 0
