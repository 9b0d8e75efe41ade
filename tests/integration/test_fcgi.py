"""supervisord's [fcgi-program:x], black-box: a real FastCGI application (Debian's fcgiwrap,
which accepts on its stdin as spawn-fcgi and supervisord give it a socket) run by the ASan
supervisor, asked over the socket with FastCGI records written here (a CGI script of the test
answers through it).

Checked: every process of the program gets the one listening socket as its stdin (unix:// with
socket_mode, and tcp://), requests are answered, a process killed is started again on the
same socket while the others go on answering, the socket file goes with the supervisor; a
missing or malformed socket is an error naming file, line and key."""
import os
import re
import signal
import socket
import stat
import struct
import subprocess
from pathlib import Path

import pytest

from conftest import ASAN_SUPERVISOR, alive, wait_until
from test_supervisor import cgroot, need  # noqa: F401 (cgroot: a fixture)
from test_svctl import CtlSup

pytestmark = pytest.mark.cgroup

FCGIWRAP = Path("/usr/sbin/fcgiwrap")


def record(kind, body, req=1):
    pad = (8 - len(body) % 8) % 8
    return struct.pack(">BBHHBB", 1, kind, req, len(body), pad, 0) + body + b"\0" * pad


def pairs(params):
    out = b""
    for k, v in params.items():
        for s in (k.encode(), v.encode()):
            out += bytes([len(s)]) if len(s) < 128 else struct.pack(">I", len(s) | 1 << 31)
        out += k.encode() + v.encode()
    return out


def fcgi_get(connect, script, query):
    """One FastCGI GET of script (fcgiwrap runs it as CGI); returns its stdout (head + body)."""
    s = connect()
    s.settimeout(10)
    params = {"REQUEST_METHOD": "GET", "SCRIPT_FILENAME": str(script), "SCRIPT_NAME": "/t",
              "QUERY_STRING": query, "SERVER_PROTOCOL": "HTTP/1.1", "GATEWAY_INTERFACE": "CGI/1.1",
              "SERVER_NAME": "localhost", "SERVER_PORT": "80", "REMOTE_ADDR": "127.0.0.1"}
    s.sendall(record(1, struct.pack(">HB5x", 1, 0)) + record(4, pairs(params)) + record(4, b"") +
              record(5, b""))
    data, out = b"", b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    while len(data) >= 8:                     # the STDOUT records, up to END_REQUEST
        _, kind, _, n, pad, _ = struct.unpack(">BBHHBB", data[:8])
        if kind == 6:
            out += data[8:8 + n]
        data = data[8 + n + pad:]
    return out.decode()


def children(pid):
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def workload(s, name):
    """The pid of the program's process (init's child: no pid namespace for a program)."""
    return wait_until(lambda: children(s.init(name)) and children(s.init(name))[0], 10,
                      what=f"{name}'s process")


def unix_conn(path):
    c = socket.socket(socket.AF_UNIX)
    c.connect(str(path))
    return c


def cgi_script(tmp):
    script = Path(tmp) / "hello.cgi"
    script.write_text("#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\n"
                      "echo \"hello $QUERY_STRING from $PPID\"\n")
    script.chmod(0o755)
    return script


def test_fcgi_program_shares_one_unix_socket_as_stdin(h, tmp, cgroot):
    need(FCGIWRAP)
    sock = Path(tmp) / "fcgi.sock"
    sections = (f"[fcgi-program:cgi]\ncommand = {FCGIWRAP}\nsocket = unix://{sock}\n"
                "socket_mode = 0660\nnumprocs = 2\nprocess_name = %(program_name)s_%(process_num)d\n"
                "startsecs = 0\nautorestart = true\n")
    s = CtlSup(h, tmp, cgroot, sections).start()
    for n in ("cgi_0", "cgi_1"):
        s.wait_state(n, "RUNNING")
    assert stat.S_ISSOCK(sock.stat().st_mode) and stat.S_IMODE(sock.stat().st_mode) == 0o660
    pids = {n: workload(s, n) for n in ("cgi_0", "cgi_1")}
    stdin = {os.readlink(f"/proc/{p}/fd/0") for p in pids.values()}
    assert len(stdin) == 1 and stdin.pop().startswith("socket:"), stdin   # one socket for both
    script = cgi_script(tmp)

    def connect():
        return unix_conn(sock)
    answers = [fcgi_get(connect, script, f"q{i}") for i in range(6)]
    assert all(f"hello q{i} from" in a for i, a in enumerate(answers)), answers
    # One process killed: started again on the same socket; the other answers meanwhile.
    os.kill(pids["cgi_0"], signal.SIGKILL)
    # gone first: a connection made as the kill lands may be the dying process's (reset)
    wait_until(lambda: not alive(pids["cgi_0"]), 10, what="cgi_0 gone")
    assert "hello during from" in fcgi_get(connect, script, "during")
    wait_until(lambda: children(s.init("cgi_0")) and children(s.init("cgi_0"))[0] != pids["cgi_0"],
               10, what="cgi_0 started again")
    again = workload(s, "cgi_0")
    assert os.readlink(f"/proc/{again}/fd/0") == os.readlink(f"/proc/{pids['cgi_1']}/fd/0")
    assert "hello after from" in fcgi_get(connect, script, "after")
    assert s.stop() == 0
    assert not sock.exists()                   # the supervisor's socket goes with it


def test_fcgi_program_on_tcp(h, tmp, cgroot):
    need(FCGIWRAP)
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    sections = (f"[fcgi-program:cgi]\ncommand = {FCGIWRAP}\nsocket = tcp://127.0.0.1:{port}\n"
                "startsecs = 0\n")
    s = CtlSup(h, tmp, cgroot, sections).start()
    s.wait_state("cgi", "RUNNING")
    script = cgi_script(tmp)
    got = fcgi_get(lambda: socket.create_connection(("127.0.0.1", port)), script, "tcp")
    assert "hello tcp from" in got, got
    # A re-exec would lose the socket under it: refused, saying why; nothing changes.
    pid = s.status("cgi")["cgi"]["pid"]
    rc, out, err = s.ctl("reexec")
    assert rc == 1 and "cgi is a FastCGI program" in err and "stop it first" in err, (rc, err)
    assert s.status("cgi")["cgi"]["pid"] == pid and "resumed" not in s.log()
    assert "hello still from" in fcgi_get(lambda: socket.create_connection(("127.0.0.1", port)),
                                          script, "still")
    assert s.stop() == 0


@pytest.mark.parametrize("lines,want", [
    ("command = /bin/true\n", r"services.ini:6: \[fcgi-program:x\]: socket is missing"),
    ("command = /bin/true\nsocket = udp://x:1\n",
     r"services.ini:8: socket: 'udp://x:1' is not tcp://HOST:PORT or unix:///PATH"),
    ("command = /bin/true\nsocket = unix://relative.sock\n",
     r"services.ini:8: socket: 'unix://relative.sock': unix:// takes an absolute path"),
    ("command = /bin/true\nsocket = tcp://127.0.0.1:99999\n",
     r"services.ini:8: socket: 'tcp://127.0.0.1:99999': tcp:// takes HOST:PORT"),
    ("command = /bin/true\nsocket = tcp://127.0.0.1:9000\nsocket_owner = nobody\n",
     r"services.ini:9: socket_owner: only for a unix:// socket"),
    ("command = /bin/true\nsocket = tcp://127.0.0.1:9000\nstdin = pipe\n",
     r"services.ini:9: stdin: cannot be pipe in a FastCGI program"),
])
def test_fcgi_program_bad_socket_is_an_error_naming_the_line(h, tmp, cgroot, lines, want):
    s = CtlSup(h, tmp, cgroot, "[fcgi-program:x]\n" + lines)
    p = subprocess.run([str(ASAN_SUPERVISOR), "-c", str(s.ini), "--check"], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode != 0
    assert re.search(want, p.stderr), p.stderr


def test_fcgi_socket_follows_a_reload(h, tmp, cgroot):
    """A reload that changes a program's socket: the old one is closed and its file removed,
    the restarted process listens on the new one; a reload that removes the program closes
    its socket too (supervisord's update re-creates the group, socket included)."""
    need(FCGIWRAP)
    old, new = Path(tmp) / "old.sock", Path(tmp) / "new.sock"

    def sections(sock):
        return (f"[fcgi-program:cgi]\ncommand = {FCGIWRAP}\nsocket = unix://{sock}\n"
                "startsecs = 0\n\n[program:keep]\ncommand = /bin/sleep 1000\n")
    s = CtlSup(h, tmp, cgroot, sections(old)).start()
    s.wait_state("cgi", "RUNNING")
    script = cgi_script(tmp)
    assert "hello a from" in fcgi_get(lambda: unix_conn(old), script, "a")
    first = workload(s, "cgi")
    s.write(sections(new))
    assert s.ctl("reload")[0] == 0
    wait_until(lambda: children(s.init("cgi")) and children(s.init("cgi"))[0] != first, 10,
               what="cgi restarted")
    assert not old.exists()
    assert "hello b from" in fcgi_get(lambda: unix_conn(new), script, "b")
    assert "1 FastCGI socket closed" in s.log()
    s.write("[program:keep]\ncommand = /bin/sleep 1000\n")
    assert s.ctl("reload")[0] == 0
    wait_until(lambda: "cgi" not in s.status(), 10, what="cgi removed")
    assert not new.exists()
    assert s.stop() == 0


def test_fcgi_socket_path_taken_over_only_from_a_dead_server(h, tmp, cgroot):
    """A stale socket file at the path (its server gone) is replaced; a path where a server
    answers is left alone and the program does not start, saying why."""
    need(FCGIWRAP)
    stale, live = Path(tmp) / "stale.sock", Path(tmp) / "live.sock"
    old = socket.socket(socket.AF_UNIX)
    old.bind(str(stale))
    old.close()                                # the file stays, nobody listens
    other = socket.socket(socket.AF_UNIX)
    other.bind(str(live))
    other.listen(1)
    try:
        sections = "".join(f"[fcgi-program:{n}]\ncommand = {FCGIWRAP}\nsocket = unix://{p}\n"
                           "startsecs = 0\nautorestart = false\n\n"
                           for n, p in (("a", stale), ("b", live)))
        s = CtlSup(h, tmp, cgroot, sections).start()
        s.wait_state("a", "RUNNING")
        assert "hello x from" in fcgi_get(lambda: unix_conn(stale), cgi_script(tmp), "x")
        wait_until(lambda: f"socket unix://{live}: another process answers there" in s.log(),
                   10, what="b's refusal")
        assert s.status("b")["b"]["state"] != "RUNNING"
        assert s.stop() == 0
        assert live.exists()                   # not ours: left as it was
    finally:
        other.close()
