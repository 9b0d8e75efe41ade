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

from conftest import ASAN_SUPERVISOR, INIT, T, alive, gone, need, read_text, wait_until
from test_supervisor import WL, cg_dirs, cg_procs, cgroot, ctrl_dir, rootfs, svc  # noqa: F401
from test_svctl import CtlSup

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
        os.set_blocking(r, False)
        got = b""

        def drain():
            nonlocal got
            try:
                while True:
                    d = os.read(r, 1 << 16)
                    if not d:
                        break
                    got += d
            except BlockingIOError:
                pass
            return b"stderr too slow" in got
        wait_until(drain, 10, what="the drop report on stderr")
        text = got.decode(errors="replace")
        m = re.search(r"supervisor: stderr too slow: (\d+) lines? of the supervisor's log "
                      r"dropped", text)
        assert int(m.group(1)) > 0
        # Lines stay whole: every line after our filler is one of the supervisor's.
        ours = text.lstrip("x").splitlines()
        assert ours and all(l.startswith("supervisor: ") for l in ours), ours[:5]
        s.p.send_signal(signal.SIGTERM)
        while s.p.poll() is None:
            drain()
            time.sleep(0.01)
        assert s.p.returncode == 0
    finally:
        if w >= 0:
            os.close(w)
        os.close(r)
