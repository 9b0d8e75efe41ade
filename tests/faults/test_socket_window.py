"""The moment between a unix socket's bind and its listen (issue 13 item 9's flake check found
it): a client that waits for the socket file and connects at once must never be refused. A
loaded machine preempts the supervisor there now and then; here an LD_PRELOADed listen()
(tests/helper/holdlisten.c) holds it there while the test looks: the path must not be there
yet (it was, refusing connections, before cr_unix_listen), and it answers once let go.
Covers the control socket, [unix_http_server] and a FastCGI program's socket."""
import socket
import sys
from pathlib import Path

import pytest

from faultlib import ASAN_SUPERVISOR, INIT, CtlSup, cgroot, h, need, tmp, wait_until  # noqa: F401

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from test_fcgi import FCGIWRAP, cgi_script, fcgi_get, unix_conn  # noqa: E402

pytestmark = pytest.mark.cgroup

SHIM = Path(__file__).resolve().parents[2] / "build" / "test" / "holdlisten.so"


class HeldSup(CtlSup):
    """A supervisor whose listen() on a unix socket matching `match` waits for a go."""

    def __init__(self, h, tmp, cgroot, services, match):
        self.hold = Path(tmp) / "hold"
        self.hold.mkdir()
        self.match = match
        super().__init__(h, tmp, cgroot, services)

    def start(self):
        need(ASAN_SUPERVISOR)
        need(INIT)
        need(SHIM)
        self.p, self.out_path, self.err_path = self.h.popen(
            [ASAN_SUPERVISOR, "-c", self.ini],
            env={"CORRAL_INIT": str(INIT), "LD_PRELOAD": str(SHIM),
                 "CRTEST_HOLD_DIR": str(self.hold), "CRTEST_HOLD_MATCH": self.match,
                 # the shim comes before ASan's runtime in the preload order
                 "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:exitcode=98:"
                                 "verify_asan_link_order=0"})
        self.pid = self.p.pid
        return self

    def held(self):
        """Waits until the supervisor stands in listen() on the matching socket; its path."""
        f = self.hold / "held"
        wait_until(lambda: f.exists() and f.read_text().endswith("\n") or self.p.poll() is not None,
                   20, what="the supervisor held in listen()")
        assert self.p.poll() is None, self.log()
        return f.read_text().split()[0]

    def go(self):
        (self.hold / "go").touch()


def refused_or_absent(path):
    """What a client that connects to path now gets: 'absent', 'refused' or 'answered'."""
    try:
        unix_conn(path).close()
        return "answered"
    except FileNotFoundError:
        return "absent"
    except ConnectionRefusedError:
        return "refused"


def hold_and_check(s, path):
    bound = s.held()
    # bound but not listening: the file must not be at the path clients use
    assert refused_or_absent(path) == "absent", (bound, sorted(p.name for p in path.parent.iterdir()))
    s.go()
    wait_until(lambda: refused_or_absent(path) == "answered", 20, what=f"{path} answering")


def test_control_socket_appears_only_listening(h, tmp, cgroot):
    s = HeldSup(h, tmp, cgroot, "[program:a]\ncommand = /bin/sleep 1000\n", "control.sock")
    s.start()
    hold_and_check(s, s.sock)
    s.wait_state("a", "RUNNING")
    assert s.stop() == 0


def test_unix_http_server_appears_only_listening(h, tmp, cgroot):
    sock = Path(tmp) / "http.sock"
    s = HeldSup(h, tmp, cgroot, f"[unix_http_server]\nfile = {sock}\n\n"
                "[program:a]\ncommand = /bin/sleep 1000\n", "http.sock")
    s.start()
    hold_and_check(s, sock)
    assert s.stop() == 0


def test_fcgi_socket_appears_only_listening(h, tmp, cgroot):
    need(FCGIWRAP)
    sock = Path(tmp) / "fcgi.sock"
    s = HeldSup(h, tmp, cgroot, f"[fcgi-program:cgi]\ncommand = {FCGIWRAP}\n"
                f"socket = unix://{sock}\nstartsecs = 0\n", "fcgi.sock")
    s.start()
    hold_and_check(s, sock)
    s.wait_state("cgi", "RUNNING")
    assert "hello w from" in fcgi_get(lambda: unix_conn(sock), cgi_script(tmp), "w")
    assert s.stop() == 0
