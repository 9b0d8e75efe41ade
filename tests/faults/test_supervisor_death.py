"""Nothing outlives the supervisor, in every mode: a supervisor killed with SIGKILL takes
every workload it started along (with a pid namespace the kernel does it; without one, init,
a subreaper with a parent-death signal, kills its whole tree), at any point of a start, a
reload or a stop; the next supervisor on the same cgroup root starts everything again."""
import re
import signal
import subprocess

import pytest

from faultlib import (INIT, T, WL, FaultSup, _subreaper, _net_state, cg_dirs, cgroot, h, need,  # noqa: F401
                      procs_left, rootfs, svc, tmp, wait_nothing_left, wait_until)
from conftest import ASAN_SUPERVISOR, WORKLOAD

pytestmark = pytest.mark.cgroup

# A tree of processes: a background child, a setsid'd grandchild with a child of its own.
TREE = ("/bin/sh -c 'sleep 1000 & setsid /bin/sh -c \"sleep 1000 & exec sleep 1000\" & "
        "exec sleep 1000'")
TREE_PROCS = 4   # the shell (exec'd into sleep), its sleep, the setsid'd shell's two


def nons(name, **kw):
    """No namespaces at all (init is a subreaper, not PID 1), on the host's / (no mount
    namespace, no rootfs)."""
    kw.setdefault("startsecs", 0)
    return svc(name, TREE, namespaces="", rootfs=None, **kw)


def userns(name, **kw):
    kw.setdefault("startsecs", 0)
    return svc(name, TREE, namespaces="pid,mount,uts,ipc,net,cgroup,user",
               uid_map="0:100000:65536", gid_map="0:100000:65536", **kw)


def pidns(name, **kw):
    kw.setdefault("startsecs", 0)
    return svc(name, TREE, **kw)


def tree_up(s, names):
    """Every service's tree is complete in its cgroup (init + TREE_PROCS)."""
    from faultlib import cg_procs, ctrl_dir
    def complete():
        return all(len(cg_procs(ctrl_dir(s.cgroot, "pids") / f"svc-{n}")) >= 1 + TREE_PROCS
                   for n in names)
    wait_until(complete, 30, interval=0.05, what="every service's process tree")


KINDS = {"no-namespaces": nons, "user-namespace": userns}


@pytest.mark.parametrize("kind", list(KINDS))
def test_killed_supervisor_takes_every_workload_along(h, tmp, cgroot, rootfs, kind):
    names = [f"t{i}" for i in range(5)]
    s = FaultSup(h, tmp, cgroot, "".join(KINDS[kind](n) for n in names)).start()
    s.wait_all_running(names)
    tree_up(s, names)
    before = len(procs_left(cgroot))
    assert before >= len(names) * (1 + TREE_PROCS) + 1
    s.kill9()
    wait_nothing_left(cgroot)
    # The next supervisor sweeps the leftover cgroups and runs them all again.
    s2 = FaultSup(h, tmp, cgroot, "".join(KINDS[kind](n) for n in names),
                  name="second.ini").start()
    s2.wait_all_running(names)
    tree_up(s2, names)
    assert s2.stop() == 0
    assert not procs_left(cgroot)


@pytest.mark.parametrize("namespaces", ["", None])
def test_killed_run_takes_its_workload_along(h, tmp, cgroot, rootfs, namespaces):
    """`supervisor run NAME` killed with SIGKILL: its container's tree goes with it, with
    (None: the default namespaces) or without a pid namespace."""
    s = FaultSup(h, tmp, cgroot, svc("job", TREE, namespaces=namespaces,
                                     rootfs=None if namespaces == "" else rootfs))
    need(ASAN_SUPERVISOR)
    p, out, err = h.popen([ASAN_SUPERVISOR, "-c", s.ini, "run", "job"],
                          env={"CORRAL_INIT": str(INIT)})
    wait_until(lambda: len(procs_left(cgroot)) >= 1 + TREE_PROCS, 20, interval=0.05,
               what="run's container tree")
    p.kill()
    p.wait(T(10))
    wait_nothing_left(cgroot)


def phase_config(ns, names):
    return "".join(ns(n) for n in names)


@pytest.mark.parametrize("point", ["start", "reload", "stop"])
@pytest.mark.parametrize("kind", ["pid-namespace", "no-namespaces"])
def test_kill9_at_each_point_leaves_nothing_and_recovers(h, tmp, cgroot, rootfs, point, kind):
    ns = pidns if kind == "pid-namespace" else nons
    names = [f"k{i}" for i in range(8)]
    s = FaultSup(h, tmp, cgroot, phase_config(ns, names)).start()
    if point == "start":
        # mid-way through the start: some containers made, others not yet
        s.wait_log(r"^supervisor: k\d: container started", count=3, timeout=30)
    else:
        s.wait_all_running(names)
    if point == "reload":
        # half restart (changed command), two go, two come
        new = names[2:] + ["n1", "n2"]
        s.write("".join(ns(n, environment="X=2") if i % 2 else ns(n)
                        for i, n in enumerate(new)))
        s.p.send_signal(signal.SIGHUP)
        s.wait_log(r"^supervisor: reload: k\d: restart", timeout=30)
        names = new
    elif point == "stop":
        s.p.send_signal(signal.SIGTERM)
        s.wait_log(r"^supervisor: k\d: stopping \(SIG", timeout=30)
    s.kill9()
    wait_nothing_left(cgroot)
    s2 = FaultSup(h, tmp, cgroot, phase_config(ns, names), name="second.ini").start()
    s2.wait_all_running(names)
    assert s2.stop() == 0
    assert not procs_left(cgroot)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["pid-namespace", "no-namespaces"])
def test_crash_recovery_with_200_services(h, tmp, cgroot, rootfs, kind):
    """200 services, the supervisor killed: every process goes; the next supervisor sweeps
    200 leftover cgroups and has all 200 RUNNING again, and a stop leaves nothing."""
    ns = pidns if kind == "pid-namespace" else nons
    names = [f"c{i}" for i in range(200)]
    conf = "".join(svc(n, f"{WL} sleep 1000" if ns is pidns else "sleep 1000",
                       startsecs=0, **({} if ns is pidns else {"namespaces": "",
                                                                 "rootfs": None}))
                   for n in names)
    s = FaultSup(h, tmp, cgroot, conf).start()
    s.wait_all_running(names, timeout=180)
    s.kill9()
    wait_nothing_left(cgroot, timeout=30)
    s2 = FaultSup(h, tmp, cgroot, conf, name="second.ini").start()
    s2.wait_all_running(names, timeout=180)
    assert s2.stop(timeout=120) == 0
    assert not procs_left(cgroot)
