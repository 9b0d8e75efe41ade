"""supervisorctl against corral, black-box: Debian's supervisorctl (a client nobody here wrote)
over [unix_http_server] and [inet_http_server], and the same commands against Debian's real
supervisord on the same file, outputs and exit codes compared. The ASan supervisor, real init,
real cgroups (crtest-<pid>-<n>, removed at teardown).

Also: what a bad request gets (HTTP 400 for XML that is not a methodCall, 413 for a body over
the limit, fault 1 for an unknown method, 401 without the credentials), and that nothing
running is affected by it."""
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import xmlrpc.client
from collections import Counter
from pathlib import Path

import pytest

from conftest import ASAN_SUPERVISOR, INIT, T, read_text, wait_until
from test_supervisor import cgroot, need  # noqa: F401 (cgroot: a fixture)

pytestmark = pytest.mark.cgroup

SUPERVISORCTL = shutil.which("supervisorctl") or "/usr/bin/supervisorctl"
SUPERVISORD = shutil.which("supervisord") or "/usr/bin/supervisord"

PROGRAMS = """
[program:sleeper]
command = /bin/sleep 1000
stdout_logfile = {d}/sleeper.out

[program:echo]
command = /bin/sh -c "echo hello; echo oops >&2; exec sleep 1000"
stdout_logfile = {d}/echo.out
stderr_logfile = {d}/echo.err

[program:manual]
command = /bin/sleep 1000
autostart = false
stdout_logfile = {d}/manual.out

[program:quick]
command = /bin/true
autostart = false
startretries = 0
stdout_logfile = {d}/quick.out

[program:a]
command = /bin/sleep 1000
stdout_logfile = {d}/a.out

[program:b]
command = /bin/sleep 1000
stdout_logfile = {d}/b.out

[group:grp]
programs = a,b
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    """corral's supervisor or supervisord over one supervisord-style file in dir."""

    def __init__(self, h, dir, cgroot=None, programs=PROGRAMS):
        self.h, self.dir, self.cgroot = h, Path(dir), cgroot
        self.dir.mkdir(parents=True, exist_ok=True)
        self.sock = self.dir / "rpc.sock"
        self.port = free_port()
        self.conf = self.dir / "supervisord.conf"
        self.write(programs)

    def write(self, programs):
        corral = (f"cgroup_root = {self.cgroot}\ncontrol_socket = {self.dir}/ctl.sock\n"
                  f"log_dir = {self.dir}/logs\n") if self.cgroot else ""
        self.conf.write_text(
            f"[supervisord]\nnodaemon = true\nlogfile = {self.dir}/main.log\n"
            f"pidfile = {self.dir}/sd.pid\nchildlogdir = {self.dir}\n{corral}\n"
            f"[unix_http_server]\nfile = {self.sock}\n\n"
            f"[inet_http_server]\nport = 127.0.0.1:{self.port}\nusername = user\n"
            f"password = {{SHA}}a94a8fe5ccb19ba61c4c0873d391e987982fbbd3\n\n"  # "test"
            f"[supervisorctl]\nserverurl = unix://{self.sock}\n\n"
            "[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = "
            "supervisor.rpcinterface:make_main_rpcinterface\n"
            + programs.format(d=self.dir))

    def start(self):
        if self.cgroot:
            need(ASAN_SUPERVISOR)
            need(INIT)
            argv, env = [ASAN_SUPERVISOR, "-c", self.conf], {"CORRAL_INIT": str(INIT)}
        else:
            argv, env = [SUPERVISORD, "-n", "-c", self.conf], None
        self.p, self.out_path, self.err_path = self.h.popen(argv, env=env)
        wait_until(lambda: self.sock.exists(), 20, what=f"{self.sock}")
        return self

    def ctl(self, *args, timeout=60):
        p = subprocess.run([SUPERVISORCTL, "-c", str(self.conf)] + list(args),
                           capture_output=True, text=True, timeout=T(timeout))
        return p.returncode, p.stdout + p.stderr

    def status(self):
        """{name: state} as `supervisorctl status` names them (group:name in a group), asked
        over XML-RPC in this process: polling through supervisorctl cost a Python start-up
        per look (seconds each in the VM's TCG), the tests' commands still go through it."""
        code, text = call(self.sock, "supervisor.getAllProcessInfo",
                          headers={"Connection": "close"})   # supervisord keeps it open else
        assert code == 200, (code, text)
        (infos,), _ = xmlrpc.client.loads(text)
        return {(i["name"] if i["name"] == i["group"] else f'{i["group"]}:{i["name"]}'):
                i["statename"] for i in infos}

    def wait_state(self, want, timeout=20):
        try:
            wait_until(lambda: all(self.status().get(k) == v for k, v in want.items()),
                       timeout, what=f"{want}")
        except AssertionError as e:
            raise AssertionError(f"{e} (status: {self.ctl('status')[1]})") from None

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        rc = self.p.wait(T(30))
        log = read_text(self.err_path)
        assert "ERROR: AddressSanitizer" not in log and "runtime error" not in log, log[-3000:]
        return rc


def norm(text):
    text = re.sub(r"pid \d+, uptime \d+:\d\d:\d\d", "pid N, uptime T", text)
    # supervisord itself says either for a program that exits at once, depending on whether
    # it saw the exit before answering (its startProcess reaps once, then polls)
    text = re.sub(r"^quick: ERROR \((spawn error|abnormal termination)\)$",
                  "quick: ERROR (failed to start)", text, flags=re.M)
    text = re.sub(r"[A-Z][a-z]{2} \d\d \d\d:\d\d [AP]M", "DATE", text)
    # /bin/true under startsecs=1 is FATAL "Exited too quickly", unless supervisord's own loop
    # was slower than a second between the spawn and the reap (it is, in a TCG VM): then it
    # counted the start as done and says EXITED. Both mean "ran and ended"; ours is checked
    # for FATAL on its own in the test.
    text = re.sub(r"^(quick\s+)(FATAL\s+Exited too quickly \(process log may have details\)"
                  r"|EXITED\s+DATE)$", r"\1ENDED", text, flags=re.M)
    return text


UP = {"sleeper": "RUNNING", "echo": "RUNNING", "grp:a": "RUNNING", "grp:b": "RUNNING"}

# (arguments, whether the lines' order is the servers' own: compared sorted)
COMMANDS = [
    (["status"], False),
    (["status", "sleeper"], False),
    (["start", "manual"], False),
    (["start", "manual"], False),
    (["status", "manual"], False),
    (["stop", "manual"], False),
    (["stop", "manual"], False),
    (["status", "manual"], False),
    (["restart", "sleeper"], False),
    (["start", "nosuch"], False),
    (["stop", "nosuch"], False),
    (["status", "nosuch"], False),
    (["signal", "CONT", "sleeper"], False),
    (["signal", "HUP", "manual"], False),
    (["signal", "NOSUCHSIG", "sleeper"], False),
    (["tail", "echo"], False),
    (["tail", "echo", "stderr"], False),
    (["tail", "-3", "echo"], False),
    (["tail", "manual", "stderr"], False),
    (["start", "quick"], False),
    (["status", "quick"], False),
    (["stop", "grp:*"], True),
    (["status", "grp:*"], False),
    (["start", "grp:*"], True),
    (["stop", "grp:a"], False),
    (["start", "grp:a"], False),
    (["avail"], True),
    (["clear", "echo"], False),
    (["tail", "echo"], False),
    (["stop", "all"], True),
    (["start", "all"], True),
    (["status"], False),
]


def run_all(d):
    got = []
    for args, unordered in COMMANDS:
        rc, out = d.ctl(*args)
        out = norm(out)
        if unordered:
            out = "\n".join(sorted(out.splitlines()))
        got.append((args, rc, out))
    return got


@pytest.mark.skipif(not os.path.exists(SUPERVISORCTL), reason="Debian's supervisor package")
# 64 supervisorctl runs and a supervisord, each a Python start-up that takes seconds under the
# VM's TCG: the text comparison runs on the host; the v2 VM runs the other tests of this file.
@pytest.mark.skipif(bool(os.environ.get("RUN_IN_VM")), reason="host only (TCG: minutes)")
def test_supervisorctl_as_with_supervisord(h, tmp, cgroot):
    ours = Daemon(h, Path(tmp) / "corral", cgroot).start()
    theirs = Daemon(h, Path(tmp) / "supervisord").start()
    for d in (ours, theirs):
        d.wait_state({**UP, "manual": "STOPPED"})
    a, b = run_all(ours), run_all(theirs)
    rc, out = ours.ctl("status", "quick")
    assert rc == 3 and re.search(r"^quick\s+FATAL\s+Exited too quickly", out, re.M), out
    for (args, rc1, out1), (_, rc2, out2) in zip(a, b):
        assert (rc1, out1) == (rc2, out2), f"supervisorctl {' '.join(args)}"

    # what differs by nature is still well-formed
    for d in (ours, theirs):
        rc, out = d.ctl("pid")
        assert rc == 0 and int(out) == d.p.pid
        rc, out = d.ctl("pid", "sleeper")
        assert rc == 0 and int(out) > 0
        rc, out = d.ctl("version")
        assert rc == 0 and re.fullmatch(r"\d+\.\d+(\.\d+)?\n", out)
        rc, out = d.ctl("maintail")
        assert rc == 0 and out.strip()
    # the inet server: no credentials, then the {SHA} ones
    for d in (ours, theirs):
        url = f"http://127.0.0.1:{d.port}"
        rc, out = d.ctl("-s", url, "status")
        assert rc != 0 and "Server requires authentication" in out
        rc, out = d.ctl("-s", url, "-u", "user", "-p", "test", "status", "sleeper")
        assert rc == 0 and "RUNNING" in out, out

    # reread and update: one program removed, one changed, one added
    changed = (PROGRAMS.replace("[program:manual]\ncommand = /bin/sleep 1000\nautostart = false\n"
                                "stdout_logfile = {d}/manual.out\n", "")
               .replace("echo hello;", "echo hello again;")
               + "\n[program:added]\ncommand = /bin/sleep 1000\nstdout_logfile = {d}/added.out\n")
    for d in (ours, theirs):
        d.write(changed)
    out = []
    for d in (ours, theirs):
        r1, o1 = d.ctl("reread")
        r2, o2 = d.ctl("update")
        d.wait_state({**UP, "added": "RUNNING"})
        r3, o3 = d.ctl("status")
        out.append((r1, sorted(o1.splitlines()), r2, sorted(o2.splitlines()), r3, norm(o3)))
    assert out[0] == out[1]
    assert "manual" not in out[0][-1] and "added" in out[0][-1]
    rc, text = ours.ctl("tail", "echo")
    assert text.rstrip("\n").endswith("hello again"), text

    # shutdown: both stop every program and exit
    for d in (ours, theirs):
        rc, text = d.ctl("shutdown")
        assert (rc, text) == (0, "Shut down\n")
        assert d.p.wait(T(30)) == 0
    assert not ours.sock.exists()


def post(sock_path, body, headers=None, raw=None):
    """One HTTP request on the unix socket; (status, body)."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(T(20))
    s.connect(str(sock_path))
    if raw is None:
        head = f"POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\n"
        for k, v in (headers or {}).items():
            head += f"{k}: {v}\r\n"
        raw = head.encode() + f"Content-Length: {len(body)}\r\n\r\n".encode() + body
    try:
        s.sendall(raw)
    except (BrokenPipeError, ConnectionResetError):
        pass   # answered (and closed) before the whole body was taken
    data = b""
    while True:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    s.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), rest


def call(sock_path, method, *params, headers=None):
    return post(sock_path, xmlrpc.client.dumps(params, method).encode(), headers)


def test_bad_requests_get_errors_and_change_nothing(h, tmp, cgroot):
    d = Daemon(h, Path(tmp) / "corral", cgroot).start()
    d.wait_state(UP)
    before = d.ctl("pid", "sleeper")[1]
    # not XML, not a methodCall, an entity bomb: 400
    for body in [b"<methodCall><methodName>x", b"garbage", b"<a/>",
                 b'<?xml version="1.0"?><!DOCTYPE m [<!ENTITY a "aaaaaaaaaa">'
                 b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
                 b"<methodCall><methodName>&b;</methodName></methodCall>",
                 b"<methodCall><methodName>system.listMethods</methodName><params><param>"
                 + b"<value><array><data>" * 40 + b"</data></array></value>" * 40
                 + b"</param></params></methodCall>"]:
        code, text = post(d.sock, body)
        assert code == 400, (body[:60], text)
    # a body over 1 MiB: 413, before it is read
    code, _ = post(d.sock, b"x" * (2 * 1024 * 1024))
    assert code == 413
    # no Content-Length for a huge chunked body: refused
    code, _ = post(d.sock, b"", raw=b"POST /RPC2 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
    assert code == 501
    # an unknown method, bad parameters: XML-RPC faults
    code, text = call(d.sock, "supervisor.noSuchMethod")
    assert code == 200
    with pytest.raises(xmlrpc.client.Fault) as e:
        xmlrpc.client.loads(text)
    assert e.value.faultCode == 1
    code, text = call(d.sock, "supervisor.startProcess", 1, 2, 3)
    with pytest.raises(xmlrpc.client.Fault) as e:
        xmlrpc.client.loads(text)
    assert e.value.faultCode == 2
    # the wrong path and verb
    code, _ = post(d.sock, b"", raw=b"GET /RPC2 HTTP/1.0\r\n\r\n")
    assert code == 405
    code, _ = post(d.sock, b"", raw=b"POST /other HTTP/1.0\r\nContent-Length: 0\r\n\r\n")
    assert code == 404
    # system.multicall: each result, faults inline
    code, text = call(d.sock, "system.multicall", [
        {"methodName": "supervisor.getState", "params": []},
        {"methodName": "supervisor.getProcessInfo", "params": ["nosuch"]},
        {"methodName": "supervisor.getProcessInfo", "params": ["grp:a"]}])
    (res,), _ = xmlrpc.client.loads(text)
    assert res[0] == [{"statecode": 1, "statename": "RUNNING"}]
    assert res[1]["faultCode"] == 10
    info = res[2][0]
    assert (info["name"], info["group"], info["statename"], info["state"]) == \
        ("a", "grp", "RUNNING", 20)
    assert re.fullmatch(r"pid \d+, uptime \d+:\d\d:\d\d", info["description"])
    code, text = call(d.sock, "system.listMethods")
    (methods,), _ = xmlrpc.client.loads(text)
    assert "supervisor.getAllProcessInfo" in methods and "system.multicall" in methods
    # the log's raw bytes reach the client as text its parser takes
    # nothing running was touched
    assert d.ctl("pid", "sleeper")[1] == before
    d.wait_state(UP)
    assert d.stop() == 0


def fd_targets(pid):
    """What pid's fds point at, each as often as it is open (a Counter of readlink texts).
    Compared as multisets, not counted: a connection the server still closes at the first
    look (the last status poll's, on a loaded machine) is no fd of the tail's, and a file
    opened twice shows."""
    got = Counter()
    for n in os.listdir(f"/proc/{pid}/fd"):
        try:
            got[os.readlink(f"/proc/{pid}/fd/{n}")] += 1
        except FileNotFoundError:   # closed meanwhile
            pass
    return got


def test_tail_f_follows_the_log_until_the_client_goes(h, tmp, cgroot):
    d = Daemon(h, Path(tmp) / "corral", cgroot, programs=(
        "[program:pinger]\ncommand = /bin/sh -c 'trap \"echo ping\" USR1; echo start; "
        "while :; do sleep 1 & wait; done'\nstdout_logfile = {d}/pinger.out\n")).start()
    d.wait_state({"pinger": "RUNNING"})
    before = fd_targets(d.p.pid)
    p, out, _ = h.popen([SUPERVISORCTL, "-c", d.conf, "tail", "-f", "pinger"])
    wait_until(lambda: read_text(out).splitlines()[-1:] == ["start"], 20,
               what="tail -f's first lines")
    assert read_text(out).splitlines() == ["==> Press Ctrl-C to exit <==", "start"]
    for n in (1, 2):
        assert d.ctl("signal", "USR1", "pinger")[0] == 0
        wait_until(lambda: read_text(out).splitlines().count("ping") == n, 20,
                   what=f"ping {n} through tail -f")
    # the client goes: its connection and the file's poll go with it (seen while it is here)
    assert fd_targets(d.p.pid) - before
    p.send_signal(signal.SIGTERM)
    p.wait(T(20))
    try:
        wait_until(lambda: not fd_targets(d.p.pid) - before, 10, what="the supervisor's fds")
    except AssertionError as e:
        raise AssertionError(f"{e}: more than before ({sorted(before.elements())}): "
                             f"{sorted((fd_targets(d.p.pid) - before).elements())}") from None
    # a name it does not know: 404, which supervisorctl reports
    rc, text = d.ctl("tail", "-f", "nosuch")
    assert "Cannot read, status code 404" in text, text
    assert d.stop() == 0


def test_a_client_still_writing_after_its_answer_is_not_cut_off(h, tmp, cgroot):
    """supervisorctl's tail -f writes its request in many small writes, the last an extra
    line end after the head; on a loaded machine the answer (404 here) came first and the
    server had closed the connection, so that write failed ("Cannot connect, error:
    BrokenPipeError"). The server now shuts its side and reads on until the client closes."""
    d = Daemon(h, Path(tmp) / "corral", cgroot).start()
    c = answered_404(d)
    try:
        c.sendall(b"\r\n")               # the client's last write: EPIPE when closed
    finally:
        c.close()
    assert d.stop() == 0


def answered_404(d):
    """A connection to d's socket whose request (a log of no such program) got its whole
    answer, 404, and the server's end of it (EOF); still open on the client's side."""
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.settimeout(T(10))
    try:
        c.connect(str(d.sock))
        c.sendall(b"GET /logtail/nosuch/stdout HTTP/1.1\r\nHost: localhost\r\n\r\n")
        answer = b""
        while chunk := c.recv(4096):     # the whole answer, then the server's end (EOF)
            answer += chunk
        assert answer.startswith(b"HTTP/1.0 404 "), answer
    except BaseException:
        c.close()
        raise
    return c


def test_an_answered_connection_waits_for_a_slow_client_as_long_as_for_its_request(h, tmp, cgroot):
    """After the answer the connection stays open as long as a request may take to come
    (5 s): a client starved by a loaded machine, 2.5 s between reading the answer and its last
    write, is not cut off (it was at 2 s, with EPIPE)."""
    d = Daemon(h, Path(tmp) / "corral", cgroot).start()
    c = answered_404(d)
    try:
        time.sleep(2.5)                  # the starved client (past the old 2 s, within 5 s)
        c.sendall(b"\r\n")
    finally:
        c.close()
    assert d.stop() == 0
