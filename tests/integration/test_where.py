"""Where users run it (issue 12): without cgroups (a container whose /sys/fs/cgroup is
read-only or absent), black-box with the real build/asan/supervisor, build/init and svctl.

The no-cgroups cases run the supervisor in a mount namespace of its own where a read-only,
empty tmpfs hides /sys/fs/cgroup (`unshare -m`, private propagation: the host's mounts are
untouched); the podman cases are further down."""
import os
import re
from pathlib import Path

import pytest

from conftest import ASAN_SUPERVISOR, INIT, gone, need, read_text, wait_until
from test_supervisor import WL, cgroot, svc  # noqa: F401  (cgroot is a fixture)
from test_svctl import ASAN_SVCTL, CtlSup

NO_CGROUPS = ["unshare", "-m", "--propagation", "private", "sh", "-c",
              'mount -t tmpfs -o ro sxw-none /sys/fs/cgroup && exec "$@"', "sh"]


class NoCgroupSup(CtlSup):
    """A supervisor that finds no cgroup hierarchy (same pid: sh execs it)."""

    def start(self):
        need(ASAN_SVCTL)
        need(ASAN_SUPERVISOR)
        need(INIT)
        self.p, self.out_path, self.err_path = self.h.popen(
            NO_CGROUPS + [ASAN_SUPERVISOR, "-c", self.ini], env={"CORRAL_INIT": str(INIT)})
        self.pid = self.p.pid
        wait_until(lambda: self.sock.exists(), 10, what="the control socket")
        return self

    def run(self, *args, timeout=30, **kw):
        p, out, err = self.h.popen(NO_CGROUPS + [ASAN_SUPERVISOR, "-c", self.ini] + list(args),
                                   env={"CORRAL_INIT": str(INIT)}, **kw)
        return p.wait(timeout), read_text(out), read_text(err)


def descendants(pid):
    """Every live descendant of pid (from /proc's ppid fields)."""
    kids = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                f = read_text(d / "stat").rsplit(")", 1)[1].split()
                kids.setdefault(int(f[1]), []).append(int(d.name))
            except (OSError, IndexError, ValueError):
                pass
    out, todo = [], [pid]
    while todo:
        for c in kids.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


@pytest.mark.cgroup
def test_no_cgroups_limits_are_check_errors(h, tmp, cgroot, rootfs):
    s = NoCgroupSup(h, tmp, cgroot, svc("web", f"{WL} sleep 1000", memory_max="64M",
                                        cpu_max="50%") + svc("plain", f"{WL} sleep 1000"))
    rc, out, err = s.run("--check")
    assert rc == 1, (out, err)
    for key, line in (("memory_max", 8), ("cpu_max", 9)):
        assert re.search(rf"^{re.escape(str(s.ini))}:{line}: {key}: no cgroups to enforce it: "
                         r"no cgroup hierarchy at /sys/fs/cgroup \(in a container, give it a "
                         r"writable /sys/fs/cgroup of its own: --cgroupns=private", err, re.M), err
    assert "2 errors" in err and "plain" not in err, err   # the default pids_max is no error


@pytest.mark.cgroup
def test_no_cgroups_services_run_and_stops_reach_everything(h, tmp, cgroot, rootfs):
    """Without cgroups services still run (status says what is missing and why); a stop
    reaches the whole tree: with a pid namespace through it, without one through init's
    process group and the supervisor as subreaper, setsid grandchildren included."""
    stubborn = f"{WL} ignore TERM -- linger 1000 -- sleep 1000"
    s = NoCgroupSup(h, tmp, cgroot,
                    svc("flat", stubborn, namespaces="mount", startsecs=0, stopwaitsecs="1s") +
                    svc("boxed", stubborn, startsecs=0, stopwaitsecs="1s")).start()
    s.wait_log(r"^supervisor: no cgroups \(no cgroup hierarchy at /sys/fs/cgroup\): no limits")
    trees = {}
    for name in ("flat", "boxed"):
        st = s.wait_state(name, "RUNNING")
        init = st["pid"]
        trees[name] = [init] + wait_until(lambda: len(descendants(init)) >= 2 and
                                          descendants(init), what=f"{name}'s tree")
        assert "mem" not in st and "pids" not in st, st       # nothing measured
    rc, out, _ = s.ctl("status", check=0)
    assert "degraded: no cgroups (no cgroup hierarchy at /sys/fs/cgroup): no limits" in out, out
    assert "container started (init pid %d, cgroup none)" % trees["flat"][0] in s.log()

    # TERM is ignored: after stopwaitsecs everything is killed, the setsid grandchild too
    rc, out, _ = s.ctl("stop", "flat", check=0)
    assert out == "flat: STOPPED\n", out
    assert "flat: still running 1000 ms after the stop signal" in s.log()
    wait_until(lambda: all(gone(p) for p in trees["flat"]), 5, what="flat's whole tree gone")
    assert s.status("boxed")["boxed"]["state"] == "RUNNING"
    assert s.stop() == 0
    assert all(gone(p) for p in trees["boxed"]), [p for p in trees["boxed"] if not gone(p)]
