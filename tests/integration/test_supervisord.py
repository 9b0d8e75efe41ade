"""supervisord files, black-box: the ASan supervisor with the real init over [program:x] and
[supervisord] sections, real cgroups (crtest-<pid>-<n>, removed at teardown).

Checked: a [program:x] means what it means to supervisord (the supervisor's namespaces, the
host's filesystem writable, the supervisor's environment plus [supervisord] environment and
SUPERVISOR_*, stdin a pipe a reader waits on); stdout_logfile=/dev/stdout and /dev/stderr
reach the supervisor's own stdout and stderr once, as written; [supervisord] umask, minfds
and pidfile; a [service:x] beside it keeps its isolation; [group:G] as a unit for svctl
(G:*, G:NAME)."""
import os
import re
import resource
from pathlib import Path

import pytest

from conftest import ASAN_SUPERVISOR, INIT, read_text, wait_until
from test_supervisor import Sup, cgroot, need  # noqa: F401 (cgroot: a fixture)

pytestmark = pytest.mark.cgroup


class SdSup(Sup):
    """A supervisor over a supervisord-style file: [supervisord] instead of [supervisor]."""

    def __init__(self, h, tmp, cgroot, sections, glob="", env=None):
        self.glob, self.env = glob, env or {}
        super().__init__(h, tmp, cgroot, sections, name="supervisord.conf")

    def write(self, sections):
        self.ini.write_text(f"[supervisord]\nnodaemon = true\ncgroup_root = {self.cgroot}\n"
                            f"log_dir = {self.tmp}/logs\ncontrol_socket = {self.tmp}/ctl.sock\n"
                            f"{self.glob}\n" + sections)

    def start(self):
        need(ASAN_SUPERVISOR)
        need(INIT)
        self.p, self.out_path, self.err_path = self.h.popen(
            [ASAN_SUPERVISOR, "-c", self.ini], env={"CORRAL_INIT": str(INIT), **self.env})
        self.pid = self.p.pid
        return self


def own_ns(kind):
    return os.readlink(f"/proc/self/ns/{kind}")


def test_program_runs_as_under_supervisord(h, tmp, cgroot):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    minfds = soft + 1000 if hard == resource.RLIM_INFINITY else min(soft + 1000, hard)
    pidfile = Path(tmp) / "supervisord.pid"
    script = ("echo pid=$$; echo net=$(readlink /proc/self/ns/net); "
              "echo mnt=$(readlink /proc/self/ns/mnt); echo pidns=$(readlink /proc/self/ns/pid); "
              f"touch {tmp}/written && echo wrote; "
              "echo env=$SXD_HOSTVAR/$SXD_GLOBAL/$SUPERVISOR_ENABLED/$SUPERVISOR_PROCESS_NAME; "
              "echo stdin=$(readlink /proc/self/fd/0); echo umask=$(umask); "
              "echo nofile=$(ulimit -n); echo err-line >&2; echo done; exec cat")
    sections = (f"[program:host]\ncommand = /bin/sh -c '{script}'\nstartsecs = 0\n"
                "stdout_logfile = /dev/stdout\nstdout_logfile_maxbytes = 0\n"
                "stderr_logfile = /dev/stderr\nstderr_logfile_maxbytes = 0\n\n"
                "[service:iso]\ncommand = /bin/sh -c 'echo net=$(readlink /proc/self/ns/net); "
                "echo env=$SXD_HOSTVAR/$SXD_GLOBAL; echo stdin=$(readlink /proc/self/fd/0); "
                "echo iso-done; exec sleep 1000'\nstartsecs = 0\n")
    glob = (f"environment = SXD_GLOBAL=\"from supervisord\"\numask = 027\nminfds = {minfds}\n"
            f"pidfile = {pidfile}\n")
    s = SdSup(h, tmp, cgroot, sections, glob, env={"SXD_HOSTVAR": "host"}).start()
    wait_until(lambda: "done" in s.out().splitlines(), 20, what="the program's last line")
    out = s.out().splitlines()
    raw = [l for l in out if not l.startswith("iso | ")]
    raw = raw[:raw.index("done") + 1]
    assert raw[1:] == [f"net={own_ns('net')}", f"mnt={own_ns('mnt')}", f"pidns={own_ns('pid')}",
                       "wrote", "env=host/from supervisord/1/host",
                       raw[6], "umask=0027", f"nofile={minfds}", "done"], out
    assert re.fullmatch(r"stdin=pipe:\[\d+\]", raw[6])
    assert (Path(tmp) / "written").exists()               # the host's filesystem, writable
    # each line once, as written: no "host | " copy on the console, stderr not on stdout
    assert not [l for l in out if l.startswith("host | ") or l == "err-line"], out
    wait_until(lambda: "err-line" in s.log().splitlines(), 10, what="err-line on stderr")
    assert s.log().splitlines().count("err-line") == 1
    # stdin is a pipe the supervisor holds: cat waits on it (under supervisord's command=cat
    # stays RUNNING; with /dev/null it would exit at once)
    cat = int(raw[0].split("=")[1])
    wait_until(lambda: read_text(f"/proc/{cat}/wchan").endswith("pipe_read"), 10,
               what="cat reading its stdin")
    assert read_text(f"/proc/{cat}/comm").strip() == "cat"
    assert int(read_text(pidfile)) == s.pid
    # the [service:x] beside it keeps its own namespaces and a clean environment
    s.wait_out("iso | iso-done")
    iso = [l[len("iso | "):] for l in s.out().splitlines() if l.startswith("iso | ")]
    assert iso[0] != f"net={own_ns('net')}" and iso[1] == "env=/" and \
        iso[2] == "stdin=/dev/null", iso
    assert s.stop() == 0
    assert not pidfile.exists()


def test_group_is_a_unit_for_svctl(h, tmp, cgroot):
    from test_svctl import CtlSup
    sections = ("[group:web]\nprograms = front,worker\npriority = 10\n\n"
                "[program:front]\ncommand = /bin/sleep 1000\nstartsecs = 0\n\n"
                "[program:worker]\ncommand = /bin/sleep 1000\nstartsecs = 0\nnumprocs = 2\n"
                "process_name = worker_%(process_num)d\n\n"
                "[program:other]\ncommand = /bin/sleep 1000\nstartsecs = 0\n")
    s = CtlSup(h, tmp, cgroot, sections).start()
    names = ["front", "worker_0", "worker_1", "other"]
    for n in names:
        s.wait_state(n, "RUNNING")
    first = {n: s.inits(n) for n in names}
    # supervisorctl's forms: G:* every process of the group, G:NAME one of them
    rc, out, err = s.ctl("restart", "web:*", check=0)
    for n in ["front", "worker_0", "worker_1"]:
        wait_until(lambda: len(s.inits(n)) == len(first[n]) + 1, 20, what=f"{n} restarted")
        s.wait_state(n, "RUNNING")
    assert s.inits("other") == first["other"]
    s.ctl("stop", "web:worker_1", check=0)
    s.wait_state("worker_1", "STOPPED")
    assert s.status("worker_0")["worker_0"]["state"] == "RUNNING"
    # a program in no group is its own: other:* is it
    s.ctl("stop", "other:*", check=0)
    s.wait_state("other", "STOPPED")
    rc, out, err = s.ctl("status", "nogroup:*")
    assert rc != 0 and "no such service: nogroup:*" in err, (rc, out, err)
    assert s.stop() == 0
