"""The fd budget: a file too large for RLIMIT_NOFILE is refused whole with the numbers (at
start-up and on reload), the soft limit is raised to the hard one and the workloads keep the
limit the supervisor was started with, and a start that finds no fd (EMFILE) is retried with
backoff until fds are free again, never FATAL."""
import os
import re
import resource
import signal
from pathlib import Path

import pytest

from faultlib import (WL, FaultSup, _subreaper, _net_state, cg_dirs, cg_procs, cgroot, ctrl_dir, h,  # noqa: F401
                      procs_left, read_text, rootfs, svc, tmp, wait_until)

pytestmark = pytest.mark.cgroup


def sleepers(names, **keys):
    return "".join(svc(n, f"{WL} sleep 1000", startsecs=0, **keys) for n in names)


def refused(h, tmp, cgroot, n, limit, **keys):
    names = [f"f{i}" for i in range(n)]
    s = FaultSup(h, tmp, cgroot, sleepers(names, **keys), nofile=(limit, limit))
    rc, out, err = s.run(timeout=60, preexec_fn=s._limits)
    return rc, err


@pytest.mark.parametrize("n,limit", [(20, 128), (200, 1024)])
def test_a_file_too_large_for_the_limit_is_refused_whole(h, tmp, cgroot, rootfs, n, limit):
    rc, err = refused(h, tmp, cgroot, n, limit)
    assert rc == 1, err
    m = re.search(rf"^supervisor: .*services\.ini: {n} services need ~([\d,]+) file descriptors; "
                  rf"the limit is {limit:,}: raise LimitNOFILE \(systemd\) / ulimit -n; "
                  r"nothing started$", err, re.M)
    assert m, err
    assert int(m.group(1).replace(",", "")) > limit
    assert err.count("need ~") == 1                     # said once, not once per service
    assert not cg_dirs(cgroot)                           # nothing was made


def test_soft_limit_raised_to_hard_and_workloads_keep_the_original(h, tmp, cgroot, rootfs):
    """Soft 64, hard 4096: 20 services need more than 64 and fit under 4096: all run, and
    their processes get the soft limit of 64 back."""
    names = [f"f{i}" for i in range(20)]
    s = FaultSup(h, tmp, cgroot, sleepers(names), nofile=(64, 4096)).start()
    s.wait_all_running(names)
    lim = [l for l in Path(f"/proc/{s.pid}/limits").read_text().splitlines()
           if l.startswith("Max open files")][0].split()
    assert lim[3:5] == ["4096", "4096"], lim
    for n in names:
        for p in cg_procs(ctrl_dir(cgroot, "pids") / f"svc-{n}"):
            lim = [l for l in Path(f"/proc/{p}/limits").read_text().splitlines()
                   if l.startswith("Max open files")][0].split()
            assert lim[3:5] == ["64", "4096"], (n, p, lim)
    assert s.stop() == 0


def test_a_reload_beyond_the_limit_is_refused_and_changes_nothing(h, tmp, cgroot, rootfs):
    names = [f"f{i}" for i in range(5)]
    s = FaultSup(h, tmp, cgroot, sleepers(names), nofile=(256, 256)).start()
    s.wait_all_running(names)
    s.write(sleepers([f"g{i}" for i in range(40)]))
    rc, out, err = s.ctl("reload")
    assert rc != 0 and "40 services need ~" in out + err, (rc, out, err)
    s.p.send_signal(signal.SIGHUP)
    s.wait_log(r"^supervisor: reload: 40 services need ~[\d,]+ file descriptors; the limit is "
               r"256: ")
    s.wait_log(r"^supervisor: reload: 1 error; nothing changed$")
    assert s.running() == sorted(names)
    assert "g0" not in s.status()
    assert s.stop() == 0


def lowest_free_fd(pid):
    used = {int(x) for x in os.listdir(f"/proc/{pid}/fd")}
    return next(i for i in range(len(used) + 1) if i not in used)


def test_a_start_out_of_fds_is_retried_until_fds_are_free(h, tmp, cgroot, rootfs):
    """The supervisor's limit lowered under its feet (every fd number below it taken), then
    a container dies: its new container cannot get an fd. That is no failed start: it is
    tried again with backoff (never FATAL, however often), and runs once the limit is back."""
    names = ["a", "b"]
    s = FaultSup(h, tmp, cgroot, sleepers(names[:1]) +
                 svc("b", f"{WL} sleep 1000", startsecs=0, startretries=1,
                     restart_delay="100ms", restart_delay_max="300ms")).start()
    s.wait_all_running(names)
    old = resource.prlimit(s.pid, resource.RLIMIT_NOFILE)
    low = lowest_free_fd(s.pid)
    resource.prlimit(s.pid, resource.RLIMIT_NOFILE, (low, old[1]))
    try:
        os.kill(s.init("b"), signal.SIGKILL)
        # more tries than startretries allows failed starts
        s.wait_log(r"^supervisor: b: cannot start: the supervisor is out of file descriptors "
                   rf"\(limit {low}; raise LimitNOFILE / ulimit -n\): trying again", count=4,
                   timeout=30)
        assert "FATAL" not in s.log()
    finally:
        resource.prlimit(s.pid, resource.RLIMIT_NOFILE, old)
    s.wait_log(r"^supervisor: b: container started", count=2, timeout=30)
    s.wait_all_running(names)
    assert "FATAL" not in s.log()
    assert s.stop() == 0


@pytest.mark.slow
def test_400_services_run_under_4096_and_600_are_refused(h, tmp, cgroot, rootfs):
    """The issue's numbers: with 4,096 fds, 600 services used to leave 373 FATAL; now 600 are
    refused whole, and 400 (which fit) all run. (Not on the default bridge network: its /24
    has addresses for 253 services; the supervisor used to abort at the first bridge with fds
    past 1,024, as libnftables select()s on its socket.)"""
    rc, err = refused(h, tmp, cgroot, 600, 4096, network="none")
    assert rc == 1 and "600 services need ~" in err, err
    names = [f"f{i}" for i in range(400)]
    s = FaultSup(h, tmp, cgroot, sleepers(names, network="none"), nofile=(4096, 4096),
                 name="fits.ini").start()
    s.wait_all_running(names, timeout=300)
    assert "FATAL" not in s.log() and "out of file descriptors" not in s.log()
    assert s.stop(timeout=180) == 0


@pytest.mark.slow
def test_a_bridge_set_up_past_fd_1024(h, tmp, cgroot, rootfs):
    """libnftables waits on its netlink socket with select(): a socket numbered 1,024 or more
    aborted the supervisor (glibc: "bit out of range 0 - FD_SETSIZE on fd_set") when the first
    bridge service came after a few hundred services. It keeps a low number for it."""
    names = [f"f{i}" for i in range(160)]
    s = FaultSup(h, tmp, cgroot, sleepers(names, network="none"), nofile=(4096, 4096)).start()
    s.wait_all_running(names, timeout=180)
    assert len(os.listdir(f"/proc/{s.pid}/fd")) > 1100
    s.write(sleepers(names, network="none") + svc("web", f"{WL} sleep 1000", startsecs=0))
    s.ctl("reload", check=0)
    s.wait_all_running(names + ["web"], timeout=60)
    assert s.p.poll() is None
    assert s.stop(timeout=120) == 0
    assert "FD_SETSIZE" not in s.log() and "FATAL" not in s.log()
