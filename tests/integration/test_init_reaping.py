"""init: reaping orphans (a storm of 20,000), killing leftovers after --grace, -v logging."""
import os
import signal
import time

import pytest

from conftest import (W, alive, descendants, gone, host_pid, ns_processes, pidns,
                      read_text, state, wait_for_line, wait_until)

STORM = int(os.environ.get("CRTEST_STORM", "20000"))


def _members(r, mode, ns):
    """[(host pid, state)] of every process init is responsible for, init included."""
    if mode == "pid1":
        return ns_processes(ns)
    return [(p, state(p)) for p in [r.pid] + descendants(r.pid) if state(p)]


def test_zombie_storm_all_reaped(h, mode, tmp):
    rep = tmp / "rep"
    r = h.start(["--"] + W(f"out {rep}", f"storm {STORM}", "mark stormed", "trap USR1",
                           "waitsig USR1 120", "release", "mark released", "sleep 120"),
                mode=mode)
    wait_for_line(rep, "stormed", timeout=120)
    ns = pidns(r.pid)
    wl = r.workload()
    assert len(_members(r, mode, ns)) >= STORM + 2
    t0 = time.monotonic()
    os.kill(wl, signal.SIGUSR1)
    # All orphans exit at once; init reaps every one while the workload keeps running. A
    # /proc children list read while thousands leave it can skip entries: two reads in a row
    # must agree.
    wait_until(lambda: len(_members(r, mode, ns)) == 2 and len(_members(r, mode, ns)) == 2,
               timeout=60, interval=0.1, what="init to reap the storm")
    reap_s = time.monotonic() - t0
    left = _members(r, mode, ns)
    assert sorted(p for p, _ in left) == sorted([r.pid, wl])
    assert all(st != "Z" for _, st in left), left
    r.signal(signal.SIGTERM)
    assert r.wait(30) == 143
    if mode == "pid1":
        assert ns_processes(ns) == []
    print(f"reaped {STORM} orphans in {reap_s:.2f}s")


def test_storm_released_by_workload_exit(h, mode, tmp):
    n = min(STORM, 2000)
    r = h.start(["--"] + W(f"storm {n}", "exit 0"), mode=mode)
    ns = pidns(r.pid)
    assert r.wait(60) == 0
    assert r.elapsed < 50
    if mode == "pid1":
        assert ns_processes(ns) == []


def test_orphans_reaped_while_workload_runs(h, mode, tmp):
    pidf, rep = tmp / "pids", tmp / "rep"
    r = h.start(["--"] + W(f"orphans 5 0.1 pidfile={pidf}", f"out {rep}", "mark forked",
                           "sleep 60"), mode=mode)
    wait_for_line(rep, "forked")
    ns = pidns(r.pid)
    wl = r.workload()
    wait_until(lambda: sorted(p for p, _ in _members(r, mode, ns)) == sorted([r.pid, wl]),
               what="the orphans to be reaped")
    assert all(st != "Z" for _, st in _members(r, mode, ns))
    r.signal(signal.SIGTERM)
    assert r.wait() == 143


# ---- leftovers at exit -------------------------------------------------------------------------
def test_term_ignoring_orphan_killed_after_grace(h, mode, tmp):
    pidf = tmp / "pids"
    r = h.start(["--grace", "1s", "-v", "--"] + W("ignore TERM", f"orphans 1 120 pidfile={pidf}",
                                                   "exit 3"), mode=mode)
    assert r.wait(30) == 3
    assert 0.9 <= r.elapsed < 20, r.elapsed
    pid = int(read_text(pidf).split()[0])
    assert f"init: reaped orphan {pid} (signal KILL)" in r.stderr()


def test_term_obeying_daemon_exits_before_grace(h, mode, tmp):
    pidf, rep = tmp / "pids", tmp / "daemon"
    # The orphan inherits the trap: on TERM it reports and exits 0.
    r = h.start(["--grace", "60s", "-v", "--"] + W(f"trap TERM report={rep} exit=0",
                                                    f"orphans 1 120 pidfile={pidf}",
                                                    "untrap TERM", "exit 0"), mode=mode)
    assert r.wait(30) == 0
    assert r.elapsed < 20
    assert read_text(rep).splitlines() == ["TERM"]
    pid = int(read_text(pidf).split()[0])
    assert f"init: reaped orphan {pid} (exit 0)" in r.stderr()


def test_default_grace_is_5s(h):
    # One mode only: it takes 5 s by design.
    r = h.start(["--"] + W("ignore TERM", "orphans 1 120", "exit 0"))
    assert r.wait(40) == 0
    assert 4.5 <= r.elapsed < 25, r.elapsed


def test_leftovers_get_cont_so_stopped_ones_die(h, mode, tmp):
    pidf = tmp / "pids"
    r = h.start(["--grace", "30s", "--"] + W(f"orphans 1 120 pidfile={pidf}", "sleep 1.5",
                                             "exit 0"), mode=mode)
    wait_until(lambda: read_text(pidf), what="orphan pid")
    orphan = int(read_text(pidf).split()[0])
    if mode == "pid1":
        orphan = host_pid(orphan, [p for p, _ in ns_processes(pidns(r.pid))])
    os.kill(orphan, signal.SIGSTOP)
    wait_until(lambda: state(orphan) == "T", what="orphan stopped")
    # TERM + CONT: the stopped orphan dies at once, long before the 30 s grace.
    assert r.wait(25) == 0
    assert r.elapsed < 20


def test_setsid_grandchild_is_killed(h, mode, tmp):
    pidf = tmp / "pids"
    r = h.start(["--grace", "1s", "--"] + W(f"linger 120 pidfile={pidf}", "exit 0"), mode=mode)
    assert r.wait(30) == 0
    assert r.elapsed < 20
    if mode == "subreaper":
        pid = int(read_text(pidf).split()[0])
        assert gone(pid) or not alive(pid)
    assert descendants(r.pid) == []


def test_stray_children_of_workload_are_killed_at_exit(h, mode, tmp):
    r = h.start(["--grace", "1s", "--"] + W("children 3 sleep=120", "exit 7"), mode=mode)
    ns = pidns(r.pid)
    assert r.wait(30) == 7
    assert r.elapsed < 20
    if mode == "pid1":
        assert ns_processes(ns) == []


# ---- -v ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("opt", ["-v", "--verbose"])
def test_verbose_logs_each_orphan(h, mode, tmp, opt):
    pidf, sigf = tmp / "pids", tmp / "sigpids"
    r = h.run([opt, "--"] + W(f"orphans 2 0 pidfile={pidf} exit=4",
                              f"orphans 1 0 pidfile={sigf} exit=USR2", "sleep 1", "exit 0"),
              mode=mode)
    assert r.rc == 0
    err = r.stderr()
    for pid in read_text(pidf).split():
        assert f"init: reaped orphan {pid} (exit 4)" in err, err
    pid = read_text(sigf).split()[0]
    assert f"init: reaped orphan {pid} (signal USR2)" in err, err


def test_not_verbose_is_quiet(h, mode):
    r = h.run(["--"] + W("orphans 2 0", "sleep 0.5", "exit 0"), mode=mode)
    assert r.rc == 0
    assert "orphan" not in r.stderr()
