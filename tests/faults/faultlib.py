"""What the fault-injection tests share: the integration suite's harness and fixtures
(tests/integration/conftest.py, test_supervisor.py, test_svctl.py), plus helpers for the
faults themselves. Tests assert outcomes (services running, exact counts, nothing left),
never timings."""
import os
import re
import resource
import signal
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from conftest import (ASAN_SUPERVISOR, INIT, SANITIZER_RE, T, alive, base_env, gone,  # noqa: E402,F401
                      kill_quiet, need, read_text, wait_until, _subreaper, _net_state, h, tmp)
from test_supervisor import (WL, Sup, cg_dirs, cg_procs, cg_tree_procs, cgroot, ctrl_dir,  # noqa: E402,F401
                             rootfs, svc)
from test_svctl import CtlSup, free_port, read_until_eof  # noqa: E402,F401


class FaultSup(CtlSup):
    """A supervisor with its control socket, optionally metrics, extra [supervisor] lines and
    a RLIMIT_NOFILE of its own (soft, hard)."""

    def __init__(self, h, tmp, cgroot, services, nofile=None, log_dir=None, **kw):
        self.nofile = nofile
        self.log_dir_override = log_dir
        super().__init__(h, tmp, cgroot, services, **kw)

    def write(self, services):
        """Writes the file as an editor saves it: a new file renamed over the old one (a
        reload never reads half a file)."""
        real = self.ini
        self.ini = real.with_name(real.name + ".new")
        try:
            super().write(services)
            if self.log_dir_override:
                text = self.ini.read_text().replace(f"log_dir = {self.logdir}\n",
                                                    f"log_dir = {self.log_dir_override}\n", 1)
                self.ini.write_text(text)
            os.replace(self.ini, real)
        finally:
            self.ini = real

    def _limits(self):
        if self.nofile:
            resource.setrlimit(resource.RLIMIT_NOFILE, self.nofile)

    def start(self):
        need(ASAN_SUPERVISOR)
        need(INIT)
        self.p, self.out_path, self.err_path = self.h.popen(
            [ASAN_SUPERVISOR, "-c", self.ini], env={"CORRAL_INIT": str(INIT)},
            preexec_fn=self._limits if self.nofile else None)
        self.pid = self.p.pid
        wait_until(lambda: self._connectable() or self.p.poll() is not None, 20,
                   what="the control socket")
        return self

    def _connectable(self):
        """The control socket answers (a killed supervisor's stale socket file does not)."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
                c.connect(str(self.sock))
            return True
        except OSError:
            return False

    def running(self):
        """Names of the services in RUNNING."""
        return sorted(n for n, r in self.status().items() if r["state"] == "RUNNING")

    def wait_all_running(self, names, timeout=60):
        want = sorted(names)
        return wait_until(lambda: self.running() == want, timeout, interval=0.2,
                          what=f"all of {len(want)} services RUNNING")

    def kill9(self):
        self.p.kill()
        self.p.wait(T(10))


def procs_left(root):
    """Every pid still in any cgroup of our root (the supervisor's own leaf included)."""
    return sorted(cg_tree_procs(root))


def wait_nothing_left(root, timeout=10):
    """Waits until no process is left in our cgroup root: the outcome 'nothing outlives'."""
    try:
        wait_until(lambda: not procs_left(root), timeout, interval=0.02,
                   what=f"no process left under {root}")
    except AssertionError:
        raise AssertionError(f"left under {root}: {describe(procs_left(root))}")


def describe(pids):
    out = []
    for p in pids:
        try:
            cmd = Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            cmd = "?"
        out.append(f"{p}: {cmd[:80]}")
    return out


def raise_own_nofile(n):
    """The test process itself holds many sockets: its soft limit up to n (or the hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(n, hard) if hard != resource.RLIM_INFINITY else n
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def http_get(port, path="/metrics", timeout=5, src=None):
    """One GET; returns (status code, body) — (0, b'') when the connection was closed or
    refused without an answer."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=T(timeout),
                                     source_address=(src, 0) if src else None)
    except OSError:
        return 0, b""
    with s:
        try:
            s.sendall(f"GET {path} HTTP/1.0\r\n\r\n".encode())
            data = read_until_eof(s)
        except OSError:
            return 0, b""
    m = re.match(rb"HTTP/1\.[01] (\d+) ", data)
    return (int(m.group(1)), data.split(b"\r\n\r\n", 1)[-1]) if m else (0, data)
