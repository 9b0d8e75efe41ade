"""The loop never blocks, stops run in parallel, and the start-up sweep is fast and logged
(issue 13 items 6 and 8, issue 14's recovery and stop parts).

Real supervisors, real containers and cgroups, as in test_supervisor.py; times are read from
the supervisor's own timestamped log ([supervisor] logfile), not from sleeps."""
import fcntl
import os
import re
import signal
import subprocess
import time
from datetime import datetime
from pathlib import Path

import pytest

from conftest import (ASAN_SUPERVISOR, INIT, T, alive, base_env, children, drain_until_exit,
                      need, read_available, read_text, wait_until)
from test_supervisor import V2, WL, cg_dirs, cg_procs, cgroot, ctrl_dir, rootfs, svc  # noqa: F401
from test_svctl import ASAN_SVCTL, CtlSup

pytestmark = pytest.mark.cgroup

F_SETPIPE_SZ = 1031


def stamps(logfile, pattern):
    """[(datetime, line)] of the lines of our own logfile matching pattern."""
    out = []
    for line in read_text(logfile).splitlines():
        if re.search(pattern, line):
            out.append((datetime.fromisoformat(line.split(" ", 1)[0]), line))
    return out


def test_stderr_nobody_reads_never_blocks_the_loop(h, tmp, cgroot, rootfs):
    """The supervisor's stderr is a small pipe nobody reads: its log lines wait in a bounded
    queue or are dropped and counted, while services start and stop and svctl answers."""
    n = 12
    conf = "".join(svc(f"s{i}", f"{WL} sleep 1000", startsecs=0) for i in range(n))
    # Crashers restarted by init every ~100 ms: a steady stream of log lines, more than the
    # queue holds within a few seconds.
    conf += "".join(svc(f"crash{i}", f"{WL} exit 1", startsecs=0, autorestart="always",
                        restart_delay="0", restart_delay_max="100ms") for i in range(6))
    s = CtlSup(h, tmp, cgroot, conf)
    r, w = os.pipe()
    fcntl.fcntl(w, F_SETPIPE_SZ, 4096)
    # Fill it before the supervisor even starts: its first line already finds no room.
    os.set_blocking(w, False)
    try:
        while True:
            os.write(w, b"x" * 512)
    except BlockingIOError:
        pass
    try:
        need(ASAN_SUPERVISOR)
        s.p, s.out_path, s.err_path = h.popen([ASAN_SUPERVISOR, "-c", s.ini],
                                              env={"CORRAL_INIT": str(INIT)}, stderr=w)
        s.pid = s.p.pid
        os.close(w)
        w = -1
        wait_until(lambda: s.sock.exists(), 10, what="the control socket")
        wait_until(lambda: all(s.status()[f"s{i}"]["state"] == "RUNNING" for i in range(n)),
                   20, what="every sleeper RUNNING")
        t0 = time.monotonic()
        s.ctl("stop", "s0", check=0)
        s.wait_state("s0", "STOPPED")
        s.ctl("start", "s0", check=0)
        s.wait_state("s0", "RUNNING")
        assert time.monotonic() - t0 < T(10)
        # The crashers' restarts keep coming (init restarts them, the supervisor logs each).
        wait_until(lambda: s.status("crash0")["crash0"]["restarts"] >= 50, 30,
                   what="50 restarts of crash0")
        assert alive(s.pid)
        # Now read: what waited comes out, then how many lines were lost.
        got = bytearray()
        wait_until(lambda: read_available(r, got) >= 0 and b"stderr too slow" in got, 10,
                   what="the drop report on stderr")
        text = got.decode(errors="replace")
        m = re.search(r"supervisor: stderr too slow: (\d+) lines? of the supervisor's log "
                      r"dropped", text)
        assert int(m.group(1)) > 0
        # Lines stay whole: every line after our filler is one of the supervisor's.
        ours = text.lstrip("x").splitlines()
        assert ours and all(l.startswith("supervisor: ") for l in ours), ours[:5]
        s.p.send_signal(signal.SIGTERM)
        assert drain_until_exit(s.p, r, got) == 0
    finally:
        if w >= 0:
            os.close(w)
        os.close(r)


class LogSup(CtlSup):
    """CtlSup with its own timestamped log ([supervisor] logfile)."""

    def __init__(self, h, tmp, cgroot, services, **kw):
        self.logfile = Path(tmp) / "supervisor.log"
        super().__init__(h, tmp, cgroot, services, **kw)

    def write(self, services):
        super().write(services)
        text = self.ini.read_text()
        self.ini.write_text(text.replace("[supervisor]\n",
                                         f"[supervisor]\nlogfile = {self.logfile}\n", 1))


def test_log_reads_and_rotations_on_a_stalled_disk_hold_nobody(h, tmp, cgroot, rootfs):
    """A service's log file is on a FUSE mount whose daemon is stopped (SIGSTOP): every
    access to it hangs, as on a hung NFS server. `svctl logs NAME` (a tail read) and `svctl
    logs --rotate` wait for the disk, on writer threads; meanwhile `svctl status` answers,
    every time. Once the daemon runs again both get their answers. Before: the tail read and
    an idle file's rotation ran on the loop, and nothing answered until the disk did."""
    bindfs = Path("/usr/bin/bindfs")
    if not bindfs.exists():
        pytest.fail("bindfs is missing: run `make deps` (TEST_PKGS)")
    src, mnt = Path(tmp) / "src", Path(tmp) / "mnt"
    src.mkdir()
    mnt.mkdir()
    fs = subprocess.Popen([str(bindfs), "-f", str(src), str(mnt)], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
    h.track(fs.pid)
    out = mnt / "slow.out.log"
    conf = svc("slow", "/bin/sh -c 'echo one; echo two; exec sleep 1000'", startsecs=0,
               stdout_logfile=out, redirect_stderr="true")
    s = CtlSup(h, tmp, cgroot, conf)
    waiting = []
    try:
        wait_until(lambda: os.path.ismount(mnt) or fs.poll() is not None, 10, what="bindfs")
        assert fs.poll() is None, "bindfs did not mount"
        s.start()
        wait_until(lambda: read_text(src / "slow.out.log") == "one\ntwo\n", 10,
                   what="slow's two lines in its file")
        fs.send_signal(signal.SIGSTOP)
        for args in (["logs", "-n", "5", "slow"], ["logs", "--rotate"]):
            p = subprocess.Popen([str(ASAN_SVCTL), "-c", str(s.ini)] + args, env=base_env(),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            h.track(p.pid)
            waiting.append(p)
        # Both are asked (the supervisor logs the rotation request's outcome only later):
        # status answers again and again meanwhile, and neither of them has an answer.
        for _ in range(5):
            st = s.status()
            assert st["slow"]["state"] == "RUNNING", st
        assert all(p.poll() is None for p in waiting), [p.poll() for p in waiting]
        fs.send_signal(signal.SIGCONT)
        logs, rot = (p.communicate(timeout=T(30)) for p in waiting)
        assert waiting[0].returncode == 0 and logs[0].splitlines()[-2:] == ["one", "two"], logs
        assert waiting[1].returncode == 0 and rot[0] == "rotated 1 file\n", rot
        assert read_text(src / "slow.out.log.1") == "one\ntwo\n"
        assert s.stop() == 0
    finally:
        fs.send_signal(signal.SIGCONT)
        for p in waiting:
            if p.poll() is None:
                p.kill()
                p.wait()
        if s.p and s.p.poll() is None:
            s.p.send_signal(signal.SIGTERM)
            s.p.wait(T(30))
        subprocess.run(["umount", str(mnt)], stderr=subprocess.DEVNULL)
        fs.wait(T(10))


def freezer_dir(cgroot, leaf):
    return (Path("/sys/fs/cgroup") / cgroot / leaf if V2
            else ctrl_dir(cgroot, "freezer") / leaf)


def test_a_log_file_that_stalls_holds_neither_the_loop_nor_other_logs(h, tmp, cgroot, rootfs):
    """A service's stdout_logfile is a FIFO whose reader does not read: the pipe fills and the
    write blocks, as on a hung NFS or FUSE mount. Meanwhile svctl answers, another service's
    lines reach its own file, a crasher's restarts are handled without a gap; once the reader
    reads again, every line is either delivered whole or counted as dropped (issue 13 item 6).
    Before: the loop itself blocked in write(2) and nothing answered until the reader read."""
    n = 100000                                   # 10 MB: more than the file's queue holds
    fifo = Path(tmp) / "stall.fifo"
    os.mkfifo(fifo)
    r = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)   # a reader that does not read (yet)
    conf = (svc("stall", f"/bin/sh -c '{WL} spew {n} bytes=100; exec sleep 1000'",
                startsecs=0, stdout_logfile=fifo) +
            svc("tick", "/bin/sh -c 'i=0; while :; do echo tick $i; i=$((i+1)); "
                "sleep 0.05; done'", startsecs=0) +
            svc("crash", f"{WL} exit 1", startsecs=0, autorestart="always",
                restart_delay="0", restart_delay_max="100ms"))
    s = LogSup(h, tmp, cgroot, conf)
    got = bytearray()

    def drain():
        read_available(r, got)
        return got.count(b"\n")

    try:
        s.start()
        # 2 s into the stall the service reads on and what its file cannot queue is dropped.
        s.wait_log(r"^supervisor: stall: log \S+: writes are not keeping up: dropping lines",
                   timeout=30)
        t_stalled = datetime.now().astimezone()
        tick = s.logdir / "tick.out.log"
        before = len(read_text(tick).splitlines())
        crashes = s.status("crash")["crash"]["restarts"]
        t = time.monotonic()
        st = s.status()
        worst = time.monotonic() - t
        assert st["stall"]["state"] == "RUNNING" and st["stall"].get("log_dropped", 0) > 0, st
        wait_until(lambda: len(read_text(tick).splitlines()) >= before + 10, 10,
                   what="10 more lines in tick's log")
        wait_until(lambda: s.status("crash")["crash"]["restarts"] >= crashes + 5, 10,
                   what="5 more restarts of crash")
        s.ctl("restart", "tick", check=0)
        s.wait_state("tick", "RUNNING")
        restarts = [t for t, _ in stamps(s.logfile, r"crash: exited \(") if t >= t_stalled]
        gaps = [(b - a).total_seconds() for a, b in zip(restarts, restarts[1:])]
        # init restarts crash every ~100 ms: no gap near the stall's seconds (before: no
        # event at all until the reader read). 1 s: an ASan supervisor reading and dropping
        # the stalled service's megabytes on a loaded machine saw a 0.65 s gap once.
        assert len(restarts) >= 5 and max(gaps) < T(1.0), gaps
        assert worst < T(2), worst
        # The reader reads again: everything is written or was counted, and lines are whole.
        wait_until(lambda: drain() + s.status("stall")["stall"].get("log_dropped", 0) >= n,
                   60, what=f"{n} lines delivered or counted")
        s.wait_log(r"^supervisor: stall: log \S+: writing again; \d+ lines? dropped$")
        dropped = s.status("stall")["stall"]["log_dropped"]
        lines = bytes(got).split(b"\n")
        assert lines[-1] == b"" and all(l == b"x" * 99 for l in lines[:-1])
        assert len(lines) - 1 + dropped == n, (len(lines) - 1, dropped)
        assert s.stop() == 0
    finally:
        if s.p and s.p.poll() is None:   # a failed run: let a blocked writer go, then stop
            s.p.send_signal(signal.SIGTERM)
            drain_until_exit(s.p, r, got)
        os.close(r)


@pytest.mark.skipif(V2, reason="v1's freezer: a self-frozen child stays frozen when its parent "
                    "thaws; v2's cgroup.kill kills frozen tasks")
def test_a_cgroup_that_empties_late_does_not_stall_the_loop(h, tmp, cgroot, rootfs):
    """A service's workload sits in a frozen child cgroup (the supervisor's kill does not thaw
    it): its pid namespace cannot end until the test thaws it, 1.5 s later. Meanwhile another
    service keeps crashing and being restarted, and svctl answers, without a stall."""
    conf = (svc("stuck", f"{WL} sleep 1000", startsecs=0, stopwaitsecs="300ms") +
            svc("tick", f"{WL} exit 1", startsecs=0, autorestart="always",
                restart_delay="0", restart_delay_max="100ms"))
    s = LogSup(h, tmp, cgroot, conf).start()
    s.wait_state("stuck", "RUNNING")
    init = s.init("stuck")
    wl = wait_until(lambda: children(init), what="stuck's workload")[0]
    sub = freezer_dir(cgroot, "svc-stuck") / "held"
    sub.mkdir()
    (sub / "cgroup.procs").write_text(str(wl))
    if V2:
        (sub / "cgroup.freeze").write_text("1")
        wait_until(lambda: "frozen 1" in read_text(sub / "cgroup.events"), what="frozen")
    else:
        (sub / "freezer.state").write_text("FROZEN")
        wait_until(lambda: read_text(sub / "freezer.state").strip() == "FROZEN", what="frozen")
    try:
        s.ctl("stop", "--no-block", "stuck", check=0)   # svctl is timed while it stops
        s.wait_log(r"stuck: still running 300 ms after the stop signal: killing its cgroup")
        # The slow operation: 1.5 s during which the cgroup cannot empty. svctl is timed.
        worst, t_end = 0.0, time.monotonic() + 1.5
        while time.monotonic() < t_end:
            t = time.monotonic()
            s.status("tick")
            worst = max(worst, time.monotonic() - t)
            time.sleep(0.05)
    finally:
        if V2:
            (sub / "cgroup.freeze").write_text("0")
        else:
            (sub / "freezer.state").write_text("THAWED")
    s.wait_state("stuck", "STOPPED")
    wait_until(lambda: not freezer_dir(cgroot, "svc-stuck").exists(), 10,
               what="svc-stuck (and its child) removed")
    t_kill = stamps(s.logfile, r"stuck: still running")[0][0]
    t_gone = stamps(s.logfile, r"stuck: container (killed|exited)")[0][0]
    ticks = [t for t, _ in stamps(s.logfile, r"tick: exited \(") if t_kill <= t <= t_gone]
    gaps = [(b - a).total_seconds() for a, b in zip(ticks, ticks[1:])]
    # init restarts tick every ~100 ms: its events keep being handled while stuck drains
    # (before: the loop waited up to 1 s at a time in the kill).
    assert (t_gone - t_kill).total_seconds() >= 1.0, (t_kill, t_gone)
    assert len(ticks) >= 5, ticks
    assert max(gaps) < T(0.5), gaps
    assert worst < T(2), worst   # an ASan svctl's own start-up under load included
    assert s.stop() == 0


def test_services_that_ignore_term_are_killed_in_one_batch(h, tmp, cgroot, rootfs):
    n = 30
    conf = "".join(svc(f"deaf{i}", f"{WL} ignore TERM -- sleep 1000", startsecs=0,
                       stopwaitsecs="2s") for i in range(n))
    s = LogSup(h, tmp, cgroot, conf).start()
    wait_until(lambda: all(v["state"] == "RUNNING" for v in s.status().values()), 30,
               interval=0.1, what="all RUNNING")
    t0 = time.monotonic()
    assert s.stop(timeout=60) == 0
    took = time.monotonic() - t0
    kills = [t for t, _ in stamps(s.logfile, r"deaf\d+: still running 2000 ms after")]
    assert len(kills) == n
    spread = (max(kills) - min(kills)).total_seconds()
    # Signalled together, timed out together, killed together: not one after another.
    assert spread < T(0.2), spread
    assert took < 2 * 2 + T(2), took
    done = stamps(s.logfile, r"all services stopped")[0][0]
    assert (done - max(kills)).total_seconds() < T(1.5)
    assert not cg_dirs(cgroot) or not any((d / f"svc-deaf0").exists() for d in cg_dirs(cgroot))


def test_sweep_after_kill9_is_one_batch_and_logged(h, tmp, cgroot, rootfs):
    n = 20
    conf = "".join(svc(f"w{i}", f"{WL} sleep 1000", startsecs=0) for i in range(n))
    s = LogSup(h, tmp, cgroot, conf).start()
    wait_until(lambda: len(s.status()) == n and
               all(v["state"] == "RUNNING" for v in s.status().values()), 30,
               interval=0.1, what="all RUNNING")
    inits = [s.init(f"w{i}") for i in range(n)]
    s.p.kill()
    s.p.wait(T(10))
    wait_until(lambda: not any(alive(p) for p in inits), 10,
               what="the containers to die with their supervisor (pdeathsig)")
    # Two leftovers still hold a process (ours); the other 18 are empty.
    strays = []
    for i in (3, 7):
        p = subprocess.Popen(["sleep", "1000"])
        h.track(p.pid)
        h.popens.append(p)
        strays.append(p)
        for d in cg_dirs(cgroot):
            if (d / f"svc-w{i}").exists():
                (d / f"svc-w{i}" / "cgroup.procs").write_text(str(p.pid))
    s.logfile.unlink()
    s2 = LogSup(h, tmp, cgroot, conf, name="second.ini").start()
    line = wait_until(lambda: stamps(s2.logfile, r"swept \d+ leftover"), 10,
                      what="the sweep's line")[0][1]
    m = re.search(r"swept (\d+) leftover cgroups \((\d+) process(es)?\) in (\d+) ms", line)
    assert m and int(m.group(1)) == n and int(m.group(2)) == 2, line
    wait_until(lambda: all(p.poll() is not None for p in strays), 5, what="strays killed")
    wait_until(lambda: len(s2.status()) == n and
               all(v["state"] == "RUNNING" for v in s2.status().values()), 30,
               interval=0.1, what="all RUNNING again")
    # Exactly one container each: init and its workload in each cgroup.
    for i in range(n):
        d = ctrl_dir(cgroot, "pids") / f"svc-w{i}"
        assert len(cg_procs(d)) == 2, (i, cg_procs(d))
    assert s2.stop() == 0
