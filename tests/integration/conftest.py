"""Fixtures and helpers for corral's black-box tests.

Everything here runs the real binaries: build/init (or its ASan / valgrind builds) as PID 1 of
a new PID namespace or as a plain child (subreaper mode), with build/test/workload as the fake
workload. Every process a test starts is killed, by PID, at teardown: the pytest process makes
itself a child subreaper, so even double-forked orphans of a test end up as its children and
are found and killed.

Timeouts scale with CRTEST_SLOW (a factor, default 1) for slow or loaded machines.
"""
import contextlib
import ctypes
import datetime
import errno
import os
import re
import select
import shlex
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "build"
# CRTEST_INIT runs the suite against another binary (e.g. to check the harness with tini).
INIT = Path(os.environ.get("CRTEST_INIT", BUILD / "init"))
ASAN_INIT = BUILD / "asan" / "init"
INIT_VG = BUILD / "test" / "init-vg"
WORKLOAD = BUILD / "test" / "workload"
ROOTFS = BUILD / "rootfs"
SUPERVISOR = BUILD / "supervisor"
ASAN_SUPERVISOR = BUILD / "asan" / "supervisor"
SVCTL = BUILD / "svctl"

SLOW = float(os.environ.get("CRTEST_SLOW", "1"))
VALGRIND = ["valgrind", "-q", "--error-exitcode=99", "--leak-check=full",
            "--errors-for-leak-kinds=definite", "--show-leak-kinds=definite"]
SANITIZER_RE = re.compile(r"ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:|"
                          r"SUMMARY: (Address|Leak|Undefined)Sanitizer")

_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_CHILD_SUBREAPER = 36


def T(seconds):
    """A timeout, scaled for slow machines."""
    return seconds * SLOW


# ---- waiting ---------------------------------------------------------------------------------
def wait_until(pred, timeout=10, interval=0.01, what="condition"):
    """Polls pred() until it returns something true; returns it. Fails after timeout (scaled).
    A pred() that raises is asked again, as one that returned false: what it reads may be
    half-made still (a pid file created but not yet written); the last error is the
    failure's cause."""
    deadline = time.monotonic() + T(timeout)
    last = None
    while True:
        try:
            v = pred()
        except Exception as e:   # not pytest's outcomes (fail, skip): those end the test
            v, last = None, e
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {T(timeout):.1f}s waiting for {what}"
                                 + (f" (last: {last!r})" if last else "")) from last
        time.sleep(interval)


def _nft_tables():
    p = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True)
    return set(re.findall(r"^table (\S+ \S+)$", p.stdout, re.M)) if p.returncode == 0 else set()


def _cni_bridges():
    return {d.name for d in Path("/sys/class/net").glob("cni-podman*")}


def _podman_networks():
    if not shutil.which("podman"):
        return set()
    p = subprocess.run(["podman", "network", "ls", "--format", "{{.Name}}"],
                       capture_output=True, text=True)
    return set(p.stdout.split()) if p.returncode == 0 else set()


def mount_points():
    """Every mount point of our mount namespace (/proc/self/mountinfo's fifth field)."""
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f]


def _mounted(path):
    """True when path is a mount point (a bind mount on the same filesystem too)."""
    return str(path) in mount_points()


# What the CNI plugins and podman of these tests make on the host and leave: iptables-nft's
# tables (portmap's and the bridge plugin's top chains, kept after the last DEL), networks
# podman makes on demand (`podman kube play`'s) or the tests name crtest-*, and their bridges
# (and the default network's, made by its first container).
_IPTABLES_NFT = {f"{f} {t}" for f in ("ip", "ip6") for t in ("nat", "filter", "mangle", "raw")}
_PODMAN_ON_DEMAND = {"podman-default-kube-network"}


def _podman_bridge(net):
    p = subprocess.run(["podman", "network", "inspect", net, "--format",
                        "{{.NetworkInterface}}"], capture_output=True, text=True)
    return p.stdout.strip() if p.returncode == 0 else ""


@contextlib.contextmanager
def host_network_restored():
    """Of what CNI plugins and podman make on the host and leave at the end (_IPTABLES_NFT,
    _PODMAN_ON_DEMAND), what was not there before is removed afterwards — and nothing else
    that appeared meanwhile (another program's table, network or bridge on a shared
    machine); net.ipv4.ip_forward, which the bridge plugin sets to 1 and keeps, given back;
    /run/netns, which podman makes a mount point of its own on first use (as `ip netns add`
    does), unmounted when it was not a mount point before and is empty, and removed when it
    did not exist (a bench run may leave the empty folder). What was there is left alone."""
    tables, bridges, nets = _nft_tables(), _cni_bridges(), _podman_networks()
    fwd = Path("/proc/sys/net/ipv4/ip_forward")
    forward = fwd.read_text()
    netns = Path("/run/netns")
    netns_there, netns_mounted = netns.exists(), _mounted(netns)
    try:
        yield
    finally:
        if fwd.read_text() != forward:
            fwd.write_text(forward)
        if not netns_mounted and netns.is_dir() and not any(netns.iterdir()):
            if _mounted(netns):
                subprocess.run(["umount", str(netns)], capture_output=True)
            if not netns_there and not _mounted(netns):
                try:
                    netns.rmdir()
                except OSError:
                    pass
        new_nets = _podman_networks() - nets
        ours = {_podman_bridge("podman")} if "podman" in nets | new_nets else set()
        for n in new_nets:
            if n.startswith("crtest") or n in _PODMAN_ON_DEMAND:
                ours.add(_podman_bridge(n))
                subprocess.run(["podman", "network", "rm", "-f", n], capture_output=True)
        for b in (_cni_bridges() - bridges) & ours:
            subprocess.run(["ip", "link", "del", b], capture_output=True)
        for t in (_nft_tables() - tables) & _IPTABLES_NFT:
            subprocess.run(["nft", "delete", "table", *t.split()], capture_output=True)


def read_text(path):
    try:
        return Path(path).read_text(errors="replace")
    except FileNotFoundError:
        return ""


def wait_for_line(path, line, timeout=10, count=1):
    """Waits until file path holds `line` (a whole line) at least count times."""
    return wait_until(lambda: read_text(path).splitlines().count(line) >= count,
                      timeout, what=f"{line!r} x{count} in {path}")


def lines(path):
    return read_text(path).splitlines()


def first_seen(s, patterns, timeout=15):
    """Polls s.log() (a supervisor's log, each pattern starting `^supervisor: `) until every
    pattern is there; returns {pattern: time}. The time is when the supervisor logged the
    first matching line if s keeps a stamped log (s.stamps: its `[supervisor] logfile`, whose
    microsecond stamps its loop takes as it logs; Sup(stamped=True)): a loaded machine delays
    the test's reading, which would shorten the gap between two lines the test saw late and
    early. Otherwise it is the monotonic time the test first saw the line."""
    seen = {}
    deadline = time.monotonic() + T(timeout)
    while len(seen) < len(patterns):
        log = s.log()
        for p in patterns:
            if p not in seen and re.search(p, log, re.M):
                seen[p] = time.monotonic()
        if time.monotonic() > deadline:
            missing = [p for p in patterns if p not in seen]
            raise AssertionError(f"never saw {missing} in the log:\n{log[-4000:]}")
        time.sleep(0.01)
    stamps = getattr(s, "stamps", None)
    if not stamps:
        return seen
    return wait_until(lambda: stamped_times(stamps, patterns), timeout,
                      what=f"{patterns} in {stamps}")


def stamped_times(path, patterns):
    """{pattern: seconds since the epoch} of the first line of path (a supervisor's own log
    file: `STAMP NAME: message`, without the `supervisor: ` of its stderr) that matches each
    pattern, or None while one has none."""
    prefix = "^supervisor: "
    rxs = {p: re.compile("^" + p[len(prefix):] if p.startswith(prefix) else p)
           for p in patterns}
    found = {}
    for line in read_text(path).splitlines():
        stamp, _, rest = line.partition(" ")
        for p, rx in rxs.items():
            if p not in found and rx.search(rest):
                found[p] = datetime.datetime.fromisoformat(stamp).timestamp()
    return found if len(found) == len(patterns) else None


# ---- pipes nobody reads until the test says so ------------------------------------------------
def read_available(fd, into):
    """Appends what fd (made non-blocking) holds now to the bytearray into; returns the number
    of bytes added."""
    os.set_blocking(fd, False)
    n0 = len(into)
    try:
        while True:
            d = os.read(fd, 1 << 20)
            if not d:
                break
            into.extend(d)
    except BlockingIOError:
        pass
    return len(into) - n0


def drain_until_exit(p, fd, into, timeout=30):
    """Reads fd into the bytearray into until process p has exited (it may be blocked writing
    to fd), waiting on fd rather than sleeping; returns p's exit status."""
    deadline = time.monotonic() + T(timeout)
    while p.poll() is None:
        read_available(fd, into)
        if time.monotonic() > deadline:
            raise AssertionError(f"pid {p.pid} did not exit within {T(timeout):.1f}s")
        select.select([fd], [], [], 0.05)
    read_available(fd, into)
    return p.returncode


# ---- /proc -----------------------------------------------------------------------------------
def children(pid):
    """Direct children of pid (all threads), zombies included."""
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                out += [int(x) for x in Path(f"/proc/{pid}/task/{tid}/children").read_text().split()]
            except (FileNotFoundError, ProcessLookupError):
                pass
    except (FileNotFoundError, ProcessLookupError):
        pass
    return out


def descendants(pid, keep=()):
    """Every process below pid, but those in keep and what is below them."""
    out, todo = [], [pid]
    while todo:
        for c in children(todo.pop()):
            if c not in out and c not in keep:
                out.append(c)
                todo.append(c)
    return out


# Processes of pytest's that outlive any one test (test_vm.py's VM run, started at the
# session's start, on a thread of its own): no test's cleanup kills or reaps them. Held only
# while they run; started and listed under KEEP_LOCK, which a cleanup holds while it looks
# for its victims and kills them.
KEEP = set()
KEEP_LOCK = threading.Lock()


def kept_popen(argv, **kw):
    """subprocess.Popen, listed in KEEP until kept_done(p)."""
    with KEEP_LOCK:
        p = subprocess.Popen(argv, **kw)
        KEEP.add(p.pid)
    return p


def kept_done(p):
    with KEEP_LOCK:
        KEEP.discard(p.pid)


def kept_run(argv, timeout, **kw):
    """subprocess.run(argv, capture_output=True, text=True) for a kept process."""
    p = kept_popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                   stderr=subprocess.PIPE, text=True, **kw)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise
    finally:
        kept_done(p)
    return subprocess.CompletedProcess(argv, p.returncode, out, err)


def proc_stat(pid):
    """(state, ppid, pgrp, session) of a host pid, or None when gone."""
    try:
        s = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    f = s[s.rindex(")") + 2:].split()
    return f[0], int(f[1]), int(f[2]), int(f[3])


def state(pid):
    st = proc_stat(pid)
    return st[0] if st else None


def alive(pid):
    """Exists and is not a zombie."""
    return state(pid) not in (None, "Z", "X")


def gone(pid):
    return state(pid) is None


def pidns(pid):
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def ns_processes(ns):
    """[(host pid, state)] of every process in pid namespace ns (from the host's view)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if os.readlink(f"/proc/{d}/ns/pid") == ns:
                    st = state(int(d))
                    if st:
                        out.append((int(d), st))
            except OSError:
                pass
    return out


def host_pid(ns_pid, candidates):
    """The host pid among candidates whose innermost pid is ns_pid."""
    for p in candidates:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("NSpid:") and int(line.split()[-1]) == ns_pid:
                    return p
        except (FileNotFoundError, ProcessLookupError):
            pass
    return None


def kill_quiet(pid, sig=signal.SIGKILL):
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


# ---- building workload command lines --------------------------------------------------------
def W(*steps):
    """workload argv from step strings: W('trap USR1 report=F', 'sleep 5', 'exit 3')."""
    argv = [str(WORKLOAD)]
    for i, s in enumerate(steps):
        if i:
            argv.append("--")
        argv += shlex.split(s) if isinstance(s, str) else [str(x) for x in s]
    return argv


def parse_info(text):
    """The key=value lines of workload's `info` step (the last block if several)."""
    d = {}
    for line in text.splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            d[k] = v
    return d


# ---- events ----------------------------------------------------------------------------------
class Event:
    def __init__(self, line, t):
        self.line, self.t = line, t
        self.name, self.kv, self.reason = parse_event(line)

    def __getitem__(self, k):
        return self.kv[k]

    def get(self, k, default=None):
        return self.kv.get(k, default)

    def __repr__(self):
        return f"<{self.line} @{self.t:.3f}>"


def parse_event(line):
    """'exited pid=3 code=1 reason=free text' -> ('exited', {'pid': '3', ...}, 'free text')."""
    name, _, rest = line.partition(" ")
    kv, reason = {}, None
    while rest:
        rest = rest.lstrip(" ")
        if not rest:
            break
        if rest.startswith("reason="):
            reason = rest[len("reason="):]
            break
        tok, _, rest = rest.partition(" ")
        k, eq, v = tok.partition("=")
        assert eq, f"garbled event line {line!r}"
        kv[k] = v
    return name, kv, reason


class EventReader:
    """Reads event lines from a pipe in a thread, stamping each with time.monotonic()."""

    def __init__(self, rfd):
        self.rfd = rfd
        self.events = []
        self.raw = b""
        self.eof = False
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        buf = b""
        while True:
            try:
                data = os.read(self.rfd, 65536)
            except OSError:
                data = b""
            t = time.monotonic()
            with self.cond:
                if not data:
                    self.eof = True
                    self.cond.notify_all()
                    return
                self.raw += data
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    self.events.append(Event(line.decode(errors="replace"), t))
                self.cond.notify_all()

    def named(self, name):
        with self.cond:
            return [e for e in self.events if e.name == name]

    def wait(self, name, count=1, timeout=10):
        """Waits for count events called name; returns them all."""
        deadline = time.monotonic() + T(timeout)
        with self.cond:
            while True:
                evs = [e for e in self.events if e.name == name]
                if len(evs) >= count:
                    return evs
                left = deadline - time.monotonic()
                if left <= 0 or self.eof:
                    raise AssertionError(f"wanted {count} '{name}' events, got {self.events}"
                                         + (" (EOF)" if self.eof else ""))
                self.cond.wait(left)

    def wait_eof(self, timeout=10):
        self.thread.join(T(timeout))
        return self.eof

    def close(self):
        # Close only once the thread is done with the fd: closed under a thread between two
        # reads, the number could be reused by the next test's event pipe and this thread would
        # then read (steal) that test's lines. The writers are dead by now, so EOF is near; a
        # thread still blocked (a writer survived) keeps its fd open rather than risk that.
        self.thread.join(T(5))
        if self.thread.is_alive():
            return
        try:
            os.close(self.rfd)
        except OSError:
            pass


# ---- running init ----------------------------------------------------------------------------
def base_env(extra=None):
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "LANG": "C"}
    # tests/run marks every process of a run, so tests/leftovers can find what survived.
    if "CORRAL_TEST_RUN" in os.environ:
        env["CORRAL_TEST_RUN"] = os.environ["CORRAL_TEST_RUN"]
    env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=0:exitcode=98"
    env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1:exitcode=98"
    env.update(extra or {})
    return env


class Run:
    """One started init (or any command): its Popen, the pid to signal, its output files."""

    def __init__(self, popen, pid, out, err, events=None, pty=None):
        self.popen, self.pid, self.out_path, self.err_path = popen, pid, out, err
        self.events, self.pty = events, pty
        self.started = time.monotonic()
        self.ended = None

    def signal(self, sig):
        os.kill(self.pid, sig)

    def wait(self, timeout=20):
        """Waits for the process to end; returns its exit status (negative: killed)."""
        try:
            rc = self.popen.wait(T(timeout))
        except subprocess.TimeoutExpired:
            raise AssertionError(f"init (pid {self.pid}) still running after {T(timeout):.0f}s; "
                                 f"stderr: {self.stderr()[-2000:]!r}")
        if self.ended is None:
            self.ended = time.monotonic()
        return rc

    def running(self):
        return self.popen.poll() is None

    @property
    def elapsed(self):
        return (self.ended or time.monotonic()) - self.started

    def stdout(self):
        return read_text(self.out_path)

    def stderr(self):
        return read_text(self.err_path)

    def workload(self, timeout=10):
        """Host pid of init's first living child (the workload, once it runs)."""
        return wait_until(lambda: next((c for c in children(self.pid) if alive(c)), None),
                          timeout, what=f"a child of init {self.pid}")


class Harness:
    """Starts processes for one test and kills every one of them at teardown."""

    def __init__(self, tmp):
        self.tmp = Path(tmp)
        self.popens = []
        self.pids = set()
        self.fds = []
        self.n = 0

    def track(self, pid):
        self.pids.add(pid)
        return pid

    def popen(self, argv, env=None, stdin=subprocess.DEVNULL, stdout=None, stderr=None,
              pass_fds=(), cwd=None, **kw):
        """subprocess.Popen, tracked; stdout/stderr go to files in tmp unless given."""
        self.n += 1
        out = self.tmp / f"out.{self.n}"
        err = self.tmp / f"err.{self.n}"
        fo = open(out, "wb") if stdout is None else None
        fe = open(err, "wb") if stderr is None else None
        try:
            p = subprocess.Popen([str(a) for a in argv], env=base_env(env), stdin=stdin,
                                 stdout=fo if fo else stdout, stderr=fe if fe else stderr,
                                 pass_fds=pass_fds, cwd=cwd or self.tmp, **kw)
        finally:
            for f in (fo, fe):
                if f:
                    f.close()
        self.popens.append(p)
        self.track(p.pid)
        return p, out, err

    def start(self, args, mode="subreaper", init=INIT, env=None, events=False, wrapper=(),
              stdin=subprocess.DEVNULL, stdout=None, stderr=None, pass_fds=(), pty=None):
        """Starts init with args (a list; put '--' and the workload argv in it yourself).

        mode 'pid1': as PID 1 of a new PID (and mount, for /proc) namespace, via
        `unshare --pid --fork --mount-proc --kill-child`; Run.pid is then init's host pid (the
        unshare process is Run.popen). mode 'subreaper': as a plain child.
        events=True adds `--events-fd N` (first) and Run.events reads it.
        wrapper: argv put before init (e.g. VALGRIND)."""
        argv = list(wrapper) + [init]
        fds = list(pass_fds)
        reader = None
        if events:
            r, w = os.pipe()
            os.set_inheritable(w, True)
            fds.append(w)
            argv += ["--events-fd", str(w)]
        argv += [str(a) for a in args]
        if mode == "pid1":
            argv = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"] + argv
        elif mode != "subreaper":
            raise ValueError(mode)
        try:
            p, out, err = self.popen(argv, env=env, stdin=stdin, stdout=stdout, stderr=stderr,
                                     pass_fds=fds)
        finally:
            if events:
                os.close(w)
        if events:
            reader = EventReader(r)
            self.fds.append(reader)
        pid = p.pid
        if mode == "pid1":
            # A quick workload may be done before we look: then there is nothing to signal.
            found = wait_until(lambda: _exec_child(p.pid) or (p.poll() is not None and -1), 10,
                               what="unshare's child to exec init")
            pid = self.track(found) if found > 0 else p.pid
        return Run(p, pid, out, err, reader, pty)

    def run(self, args, timeout=20, **kw):
        """start() and wait; returns the Run (rc in .rc)."""
        r = self.start(args, **kw)
        r.rc = r.wait(timeout)
        if r.events:
            r.events.wait_eof(5)
        return r

    def pty_start(self, args, mode="subreaper", **kw):
        """Starts init on a new pseudo-terminal as the session leader's process (setsid -c makes
        the pty its controlling terminal, so init's group is the foreground). Run.pty is a Pty."""
        t = Pty()
        self.fds.append(t)
        # ^C and ^\ must reach a workload that does not ignore them: a suite started in the
        # background by a shell without job control inherits SIGINT and SIGQUIT ignored, and
        # init passes ignored signals on as they are (as tini does)
        wrapper = ["env", "--default-signal=INT,QUIT", "setsid", "-c"]
        if mode == "pid1":
            args = list(args)
            r = self.start(args, mode="pid1", stdin=t.slave, stdout=t.slave, stderr=t.slave,
                           wrapper=wrapper, pty=t, **kw)
            # unshare is the session leader; init is its child in the same (foreground) group.
        else:
            r = self.start(args, mode="subreaper", stdin=t.slave, stdout=t.slave,
                           stderr=t.slave, wrapper=wrapper, pty=t, **kw)
        os.close(t.slave)
        t.slave = None
        return r

    def cleanup(self):
        # Kill every tracked process and everything below it; as a subreaper we inherit any
        # orphan, so a final sweep over our own descendants catches what escaped.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with KEEP_LOCK:
                victims = set()
                for pid in list(self.pids):
                    if not gone(pid):
                        victims.add(pid)
                        victims.update(descendants(pid))
                victims.update(descendants(os.getpid(), KEEP))
                victims = {v for v in victims if alive(v)}
                if not victims:
                    break
                for v in victims:
                    kill_quiet(v)
                self._reap()
            time.sleep(0.02)
        for p in self.popens:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                pass
        self._reap()
        for f in self.fds:
            f.close()

    def _reap(self):
        for p in self.popens:
            p.poll()
        known = {p.pid for p in self.popens} | KEEP
        for c in children(os.getpid()):
            if c in known:
                continue
            try:
                os.waitpid(c, os.WNOHANG)
            except ChildProcessError:
                pass


def _exec_child(unshare_pid):
    """unshare's child once it has exec'd something other than unshare."""
    try:
        me = os.readlink(f"/proc/{unshare_pid}/exe")
    except OSError:
        return None
    for c in children(unshare_pid):
        try:
            if os.readlink(f"/proc/{c}/exe") != me:
                return c
        except OSError:
            pass
    return None


class Pty:
    """A pseudo-terminal pair; the test holds the master."""

    def __init__(self):
        self.master, self.slave = os.openpty()
        os.set_inheritable(self.slave, True)
        self.buf = b""

    def write(self, data):
        os.write(self.master, data)

    def read_available(self, wait=0.0):
        while True:
            r, _, _ = select.select([self.master], [], [], wait)
            if not r:
                return self.buf
            try:
                data = os.read(self.master, 65536)
            except OSError as e:  # EIO: every slave end is closed
                if e.errno == errno.EIO:
                    return self.buf
                raise
            if not data:
                return self.buf
            self.buf += data
            wait = 0.0

    def expect(self, pattern, timeout=10):
        """Waits for regex pattern (bytes) in everything read so far; returns the match."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + T(timeout)
        while True:
            m = rx.search(self.buf)
            if m:
                return m
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"pty: no {pattern!r} in {self.buf[-2000:]!r}")
            self.read_available(min(left, 0.1))

    def close(self):
        for fd in (self.master, self.slave):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.master = self.slave = None


# ---- networking leftovers -------------------------------------------------------------------
IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")


def net_prefix(root):
    """The interface prefix of a supervisor with cgroup_root root (supervisor/net/addr.c,
    cr_net_ifprefix): up to 6 of its last component's letters and digits, then 4 base-36
    digits of the root's FNV-1a hash."""
    last = root.rsplit("/", 1)[-1]
    head = "".join(c.lower() for c in last if c.isalnum())[:6] or "c"
    h = 2166136261
    for b in root.encode():
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    h %= 36 ** 4
    digits = ""
    for _ in range(4):
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[h % 36] + digits
        h //= 36
    return head + digits


def net_cleanup(root):
    """Removes the bridges and veths and the nftables table a supervisor of root left (one
    killed by a test, or by the harness at its end). Returns what it removed."""
    prefix = net_prefix(root)
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    gone = []
    for m in re.finditer(r"^\d+: ([^:@]+)", out, re.M):
        if m.group(1).startswith(prefix):
            subprocess.run(["ip", "link", "del", m.group(1)], capture_output=True)
            gone.append(m.group(1))
    table = "corral-" + root.replace("/", "-")
    # its own, and those of its runs (TABLE-rPID: a run killed before its end leaves one)
    tables = subprocess.run(["nft", "list", "tables", "inet"], capture_output=True,
                            text=True).stdout
    for t in re.findall(r"^table inet (\S+)$", tables, re.M):
        if t == table or re.fullmatch(re.escape(table) + r"-r\d+", t):
            if subprocess.run(["nft", "delete", "table", "inet", t],
                              capture_output=True).returncode == 0:
                gone.append(t)
    ip_forward_holders_pruned()
    return gone


IP_FORWARD_HOLDERS = Path("/run/corral-ip-forward")


def ip_forward_holders_pruned():
    """net.ipv4.ip_forward's holders (net/host.c): a supervisor killed by a test stays one
    until the next supervisor looks; its file is dropped here (pid gone, or another process
    since), and the folder with the last one (the test gives the value back itself)."""
    try:
        names = os.listdir(IP_FORWARD_HOLDERS)
    except FileNotFoundError:
        return
    my_ns = os.stat("/proc/self/ns/pid").st_ino
    live = 0
    for n in names:
        m = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", n)
        if not m:
            continue
        ns, pid, start = (int(x) for x in m.groups())
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            alive = ns != my_ns or int(stat.rsplit(")", 1)[1].split()[19]) == start
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            alive = False
        if alive:
            live += 1
        else:
            (IP_FORWARD_HOLDERS / n).unlink(missing_ok=True)
    if not live:
        (IP_FORWARD_HOLDERS / "from0").unlink(missing_ok=True)
        try:
            IP_FORWARD_HOLDERS.rmdir()
        except OSError:
            pass


# ---- fixtures --------------------------------------------------------------------------------
@pytest.fixture(scope="session", autouse=True)
def _ip_forward():
    """A supervisor with a bridge network sets net.ipv4.ip_forward when it is 0, and gives it
    back at its clean exit; one killed cannot: the run gives it back in any case."""
    before = IP_FORWARD.read_text()
    yield
    if IP_FORWARD.read_text() != before:
        IP_FORWARD.write_text(before)


@pytest.fixture(scope="session", autouse=True)
def _net_state():
    """A supervisor keeps its network state (leases, hosts files) in /run/corral-net/ROOT
    after it exits; the roots of this session (crtest-PID-…) are removed at its end, and those
    of an earlier session that was killed before its end (its PID gone) at the start."""
    base = Path("/run/corral-net")
    for d in base.glob("crtest-*-*") if base.is_dir() else ():
        pid = d.name.split("-")[1]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(d, ignore_errors=True)
    yield
    for d in base.glob(f"crtest-{os.getpid()}-*") if base.is_dir() else ():
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def _subreaper():
    """Orphans of any test become pytest's children, never the host's init's."""
    if _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    yield


@pytest.fixture
def tmp(tmp_path):
    return tmp_path


@pytest.fixture
def h(tmp_path):
    """The harness: h.start(...), h.run(...), h.pty_start(...), h.popen(...)."""
    harness = Harness(tmp_path)
    yield harness
    harness.cleanup()


@pytest.fixture(params=["pid1", "subreaper"])
def mode(request):
    """Runs a test twice: init as PID 1 of a new PID namespace, and as a subreaper child."""
    return request.param


def need(path):
    """Fails (not skips) when a binary the test needs was not built."""
    if not Path(path).exists():
        pytest.fail(f"{path} is missing: run `make test-build` first")
    return path


@pytest.fixture(scope="session")
def init_bin():
    return need(INIT)


@pytest.fixture(scope="session")
def workload_bin():
    return need(WORKLOAD)


@pytest.fixture(scope="session")
def rootfs():
    need(ROOTFS / "usr/local/bin/workload")
    return ROOTFS


# ---- a time limit per test -------------------------------------------------------------------

class TimeLimitExceeded(BaseException):
    """A test phase ran past its time limit. A BaseException, so that a test's own
    `except Exception` (a polling loop's) does not take it for a passing failure."""


class _TimeLimit:
    """Every test phase (setup, call, teardown) of the whole session, security and faults too
    (a plugin of the session's, not this conftest's own hooks, which pytest keeps to the tests
    of this folder), ends with TimeLimitExceeded after CRTEST_TIME_LIMIT seconds (default 900,
    scaled by CRTEST_SLOW; 0: none) or a test's `time_limit(SECONDS)` mark: a hang is a
    failure with its stack (every thread's, on stderr), not a run stuck until CI's own limit.
    SIGALRM: the main thread's blocking calls (recv, poll, wait, sleep) give way to it."""

    def __init__(self):
        self.default = T(float(os.environ.get("CRTEST_TIME_LIMIT", "900")))

    def _limit(self, item):
        m = item.get_closest_marker("time_limit")
        return float(m.args[0]) if m else self.default

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_setup(self, item):
        yield from self._under(item, "setup")

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item):
        yield from self._under(item, "call")

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_teardown(self, item):
        yield from self._under(item, "teardown")

    def _under(self, item, phase):
        limit = self._limit(item)
        if limit <= 0 or threading.current_thread() is not threading.main_thread():
            yield
            return

        def on_alarm(signum, frame):
            import faulthandler
            import sys
            sys.stderr.write(f"\n{item.nodeid}: {phase} still running after {limit:.0f} s; "
                             "every thread's stack:\n")
            faulthandler.dump_traceback(all_threads=True)
            raise TimeLimitExceeded(f"{item.nodeid}: {phase} ran past its {limit:.0f} s "
                                    "(CRTEST_TIME_LIMIT, or the test's time_limit mark)")

        old = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, limit)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)


def pytest_configure(config):
    config.addinivalue_line("markers", "time_limit(seconds): this test's own time limit per "
                            "phase, for the few that take longer than CRTEST_TIME_LIMIT")
    if not config.pluginmanager.has_plugin("corral-time-limit"):
        config.pluginmanager.register(_TimeLimit(), "corral-time-limit")


# ---- the VM's pytest selection, beside the host's tests (test_vm.py) ----

def pytest_collection_finish(session):
    """test_vm.py's longest test (the cgroup selection in a VM, ~14 min) starts now and runs
    beside the host's tests; the test itself takes its result in its turn (not when only
    collecting, as the selection's own count of its tests does)."""
    if session.config.option.collectonly:
        return
    for item in session.items:
        if item.name == "test_cgroup_tests_in_vm" and hasattr(item.module, "start_early"):
            item.module.start_early()
            break


def pytest_collection_modifyitems(session, config, items):
    """test_cgroup_tests_in_vm, which waits for the VM's selection started early, runs last:
    the host's tests after it in the order of files (security, faults, ...) run meanwhile."""
    last = [i for i in items if i.name == "test_cgroup_tests_in_vm"]
    if last and os.environ.get("CORRAL_VM_EARLY", "1") != "0":
        items[:] = [i for i in items if i.name != "test_cgroup_tests_in_vm"] + last


def pytest_sessionfinish(session, exitstatus):
    """A selection still running (its test not reached) is ended with the session."""
    for item in session.items:
        if item.name == "test_cgroup_tests_in_vm" and hasattr(item.module, "stop_early"):
            item.module.stop_early()
            break
