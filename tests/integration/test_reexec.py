"""Live re-exec (`svctl reexec [PATH]`), black-box on the host (it does not need PID 1): the
supervisor execs its own binary in place, hands over its services through a memfd, and the new
program adopts the running containers instead of starting them again."""
import json
import os
import re
import signal
import socket
import subprocess
import threading

import pytest

from conftest import (INIT, SUPERVISOR, base_env, alive, children, descendants, gone,  # noqa: F401
                      read_text, wait_for_line, wait_until)
from test_supervisor import WL, cg_dirs, cg_procs, cgroot, svc  # noqa: F401  (cgroot: a fixture)
from test_svctl import ASAN_SVCTL, CtlSup, sleeper
from test_images import ImgSup, assert_store_clean, images, isvc  # noqa: F401
from test_where import NoCgroupSup
from test_network import client, ifprefix, links, net_env, nft_tables, server  # noqa: F401

# Most services here have network = none (quicker); a container on a bridge (the default
# for [service:]) is handed over too (test_reexec_keeps_bridge_containers_connected).

pytestmark = pytest.mark.cgroup


def test_reexec_keeps_containers_and_stops_after(h, tmp, cgroot):
    s = CtlSup(h, tmp, cgroot, sleeper("web", network="none") + sleeper("db", network="none") +
               svc("idle", "/bin/true", autostart="false")).start()
    before = {n: s.wait_state(n, "RUNNING") for n in ("web", "db")}
    inits = {n: before[n]["pid"] for n in before}
    work = {n: set(descendants(inits[n])) for n in inits}
    assert all(inits.values()) and all(work.values()), (inits, work)

    rc, out, err = s.ctl("reexec", check=0)
    assert "re-executing" in out, out
    s.wait_log(r"^supervisor: resumed after reexec \(pid %d" % s.pid)
    s.wait_log(r"^supervisor: took over 2 running containers$")
    # The new program says how long no event was handled (bench/supervisor/reexec_gap.py)
    s.wait_log(r"^supervisor: reexec: no event handled for \d+\.\d\d ms \(from the old "
               r"program's last to the new one's loop; \d+\.\d\d ms of CPU, [1-9]\d* page "
               r"faults\)$")
    assert s.p.poll() is None, "the supervisor's process is the same one"

    after = s.status()
    for n in ("web", "db"):
        assert after[n]["state"] == "RUNNING", after[n]
        assert after[n]["pid"] == inits[n], (n, after[n], inits[n])
        assert set(descendants(inits[n])) == work[n], n
        assert all(alive(p) for p in work[n]), n
    assert after["idle"]["state"] == "STOPPED", after["idle"]
    # Started once each: no container was made again.
    for n in ("web", "db"):
        assert len(s.inits(n)) == 1, s.log()

    # The adopted output pipe is read by the new supervisor: web's workload answers USR1 on
    # its stdout, which lands in web's log file.
    s.ctl("signal", "USR1", "web", check=0)
    wait_for_line(s.logdir / "web.out.log", "USR1")

    # What a container says after the handover still reaches the new supervisor: a stop is
    # seen through the adopted pidfd and events pipe, and everything goes.
    s.ctl("stop", "db", check=0)
    s.wait_state("db", "STOPPED")
    wait_until(lambda: all(gone(p) for p in work["db"] | {inits["db"]}), 10,
               what="db's processes gone")
    assert s.stop() == 0
    assert all(gone(p) for p in work["web"] | {inits["web"]})
    assert "all services stopped" in s.log()
    # The supervisor after the execve knew its own leaf as where it came from: leaving, it
    # removes the cgroup root all the same.
    assert not cg_dirs(cgroot), cg_dirs(cgroot)



def test_reexec_keeps_crash_history_restart_counts_and_health(h, tmp, cgroot):
    """What a service went through goes on after a re-exec instead of starting from zero: its
    exits (codes, times, the lines each run wrote), its restart count, the crash-loop summary,
    and its health as the last check said."""
    st_dir = tmp / "flaky-state"
    st_dir.mkdir()
    # crashes twice (init restarts it in its container), then stays up
    flaky = svc("flaky", "/bin/sh -c 'n=$(cat /st/n 2>/dev/null || echo 0); echo $((n+1)) > "
                f"/st/n; echo run $n; [ $n -ge 2 ] && exec {WL} sleep 1000; exit 3'",
                network="none", startsecs=0, autorestart="true", restart_delay="100ms",
                restart_delay_max="200ms", max_restarts=10, restart_window="10m",
                bind=f"{st_dir}:/st")
    sick = svc("sick", f"{WL} sleep 1000", network="none", startsecs=0,
               health_cmd="/bin/false", health_interval="100ms", health_retries=2,
               health_action="none")
    s = CtlSup(h, tmp, cgroot, flaky + sick).start()
    wait_until(lambda: s.status("flaky")["flaky"].get("exits", 0) == 2 and
               s.status("flaky")["flaky"]["state"] == "RUNNING", 20, what="2 exits, then up")
    s.wait_log(r"^supervisor: sick: unhealthy after 2 failed checks")
    # (2 exits and RUNNING: the third run is up; no deadline is pending for either service)
    keys = ("pid", "state", "restarts", "exits", "last_exit", "last_code", "healthy")

    def seen():
        st = s.status()
        hist = json.loads(s.ctl("--json", "history", "flaky", check=0)[1])
        return {n: {k: st[n].get(k) for k in keys} for n in st}, hist

    before, hist0 = seen()
    assert before["flaky"]["restarts"] == 2 and before["flaky"]["last_exit"] == "exit 3", before
    assert before["sick"]["healthy"] == 0, before
    assert [e["code"] for e in hist0["exits"]] == [3, 3], hist0
    assert ["run 0" in e["lines"] for e in hist0["exits"]] == [True, False], hist0
    assert ["run 1" in e["lines"] for e in hist0["exits"]] == [False, True], hist0
    assert hist0["summary"].startswith("2 exits in "), hist0

    s.ctl("reexec", check=0)
    s.wait_log(r"^supervisor: reexec: no event handled for ")
    after, hist1 = seen()
    assert after == before, (before, after)
    assert hist1["exits"] == hist0["exits"], (hist0, hist1)
    assert hist1["summary"].startswith("2 exits in "), hist1
    assert "does not fit" not in s.log(), s.log()
    # ... and a re-exec after that one still has them (what was taken is handed on again)
    s.ctl("reexec", check=0)
    wait_until(lambda: len(re.findall(r"^supervisor: reexec: no event handled", s.log(),
                                      re.M)) == 2, 20, what="the second re-exec")
    assert seen()[0] == before
    assert s.stop() == 0

def test_reexec_to_a_missing_or_broken_binary_is_refused(h, tmp, cgroot):
    """The new program is tried (--version) before anything is handed over: a missing one, a
    truncated one, one that fails and one that is not a supervisor are refused, svctl says
    why, and the old supervisor goes on with its services."""
    s = CtlSup(h, tmp, cgroot, sleeper("web", network="none")).start()
    pid = s.wait_state("web", "RUNNING")["pid"]
    rc, out, err = s.ctl("reexec", os.path.join(str(tmp), "nothing-here"))
    assert rc == 1 and "No such file" in err, (rc, out, err)
    rc, out, err = s.ctl("reexec", "relative/path")
    assert rc == 1 and "not an absolute path" in err, (rc, out, err)
    truncated = tmp / "truncated"
    truncated.write_bytes(SUPERVISOR.read_bytes()[:8192])
    failing = tmp / "failing"
    failing.write_text("#!/bin/sh\necho cannot start >&2\nexit 3\n")
    other = tmp / "other"
    other.write_text("#!/bin/sh\necho something 1.0\n")
    for p in (truncated, failing, other):
        p.chmod(0o755)
    rc, out, err = s.ctl("reexec", truncated)
    assert rc == 1 and f"{truncated}" in err and "not re-executing" in err, (rc, out, err)
    rc, out, err = s.ctl("reexec", failing)
    assert rc == 1 and "--version: exit 3: cannot start: a broken binary" in err, (rc, out, err)
    rc, out, err = s.ctl("reexec", other)
    assert rc == 1 and "says 'something 1.0': not corral's supervisor" in err, (rc, out, err)
    assert s.status("web")["web"]["pid"] == pid
    assert "resumed" not in s.log() and "reexec:" not in s.log(), s.log()
    assert s.p.poll() is None
    assert s.stop() == 0


def slow_version(tmp, real, secs):
    """A program that answers --version only after secs (as a binary that starts slowly on
    a loaded machine), then is real; one process (python3 sleeping, then exec'ing), so that
    killing it leaves nothing behind."""
    p = tmp / "slow-supervisor"
    p.write_text("#!/usr/bin/python3\nimport os, sys, time\n"
                 f"if sys.argv[1:] == ['--version']:\n    time.sleep({secs})\n"
                 f"os.execv({str(real)!r}, [{str(real)!r}] + sys.argv[1:])\n")
    p.chmod(0o755)
    return p


def check_child(s, slow):
    """The supervisor's child running `slow --version` (the check), once there."""
    return wait_until(lambda: next((p for p in children(s.pid) if f"{slow} --version" in
                                    read_text(f"/proc/{p}/cmdline").replace("\0", " ")), None),
                      10, what="the check's child")


def test_reexec_check_runs_beside_the_loop(h, tmp, cgroot):
    """The new program's --version check runs beside the loop: while a binary takes 6 s to
    answer (more than the 5 s the check once allowed, blocking the loop; an ASan build in the
    emulated VM under load took that long), svctl status is answered; then the re-exec goes
    on with that binary."""
    s = CtlSup(h, tmp, cgroot, sleeper("web", network="none")).start()
    pid = s.wait_state("web", "RUNNING")["pid"]
    slow = slow_version(tmp, s.binary, 6)
    got = []
    t = threading.Thread(target=lambda: got.append(s.ctl("reexec", slow)))
    t.start()
    try:
        check_child(s, slow)
        assert s.status("web")["web"]["pid"] == pid    # answered while the check runs
        assert t.is_alive(), got
    finally:
        t.join(60)
    assert got and got[0][0] == 0 and f"re-executing {slow}" in got[0][1], got
    s.wait_log(r"^supervisor: took over 1 running container$")
    assert s.status("web")["web"]["pid"] == pid
    assert s.stop() == 0


def test_a_stop_ends_the_reexec_check_saying_so(h, tmp, cgroot):
    """A stop while the check runs: the waiting svctl hears why (busy: the supervisor is
    stopping), the checked program is killed, and the supervisor exits as usual."""
    s = CtlSup(h, tmp, cgroot, sleeper("web", network="none")).start()
    s.wait_state("web", "RUNNING")
    slow = slow_version(tmp, s.binary, 600)
    got = []
    t = threading.Thread(target=lambda: got.append(s.ctl("reexec", slow)))
    t.start()
    try:
        child = check_child(s, slow)
        rc, out, err = s.ctl("reexec")
        assert rc != 0 and "a re-exec is being checked already" in err, (rc, out, err)
        s.p.send_signal(signal.SIGTERM)
        assert s.p.wait(30) == 0, s.log()
    finally:
        t.join(60)
    assert got and got[0][0] != 0 and "the supervisor is stopping" in got[0][2], got
    assert gone(child)
    assert "resumed" not in s.log()


def test_reexec_ends_a_log_follower_saying_so(h, tmp, cgroot):
    """`svctl logs -f` follows the program it is connected to: at a re-exec it ends, saying
    that the supervisor re-executed itself, and a new one follows the new program."""
    s = CtlSup(h, tmp, cgroot, sleeper("web", network="none")).start()
    s.wait_state("web", "RUNNING")
    f = subprocess.Popen([str(ASAN_SVCTL), "-c", str(s.ini), "logs", "-f", "web"],
                         env=base_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        assert "web.out.log" in f.stdout.readline()   # following from here on
        s.ctl("signal", "USR1", "web", check=0)
        while "USR1" not in f.stdout.readline():
            pass
        s.ctl("reexec", check=0)
        out, err = f.communicate(timeout=20)
    finally:
        if f.poll() is None:
            f.kill()
            f.wait()
    assert f.returncode == 1 and "re-executed itself: follow again" in err, (f.returncode, err)
    s.wait_log(r"^supervisor: took over 1 running container$")
    rc, out, err = s.ctl("logs", "web", check=0)
    assert "USR1" in out
    assert s.stop() == 0


def test_reexec_waits_for_a_settled_state(h, tmp, cgroot):
    # startsecs keeps slow in STARTING with its deadline armed: no handover then.
    s = CtlSup(h, tmp, cgroot, sleeper("web", network="none") +
               sleeper("slow", startsecs="60s", network="none")).start()
    s.wait_state("web", "RUNNING")
    s.wait_state("slow", "STARTING")
    rc, out, err = s.ctl("reexec")
    assert rc == 1 and "slow is STARTING" in err and "try again" in err, (rc, out, err)
    assert "resumed" not in s.log()
    assert s.stop() == 0


def test_reexec_kills_a_container_whose_service_left_the_file(h, tmp, cgroot):
    s = CtlSup(h, tmp, cgroot,
               sleeper("web", network="none") + sleeper("db", network="none")).start()
    web = s.wait_state("web", "RUNNING")["pid"]
    db = s.wait_state("db", "RUNNING")["pid"]
    s.write(sleeper("web", network="none"))   # the file changed on disk, not reloaded
    s.ctl("reexec", check=0)
    s.wait_log(r"^supervisor: db: not in the configuration any more: killing its container "
               r"\(init pid %d\)$" % db)
    s.wait_log(r"^supervisor: took over 1 running container$")
    assert gone(db)
    st = s.status()
    assert list(st) == ["web"] and st["web"]["pid"] == web, st
    assert s.stop() == 0
    assert not cg_dirs(cgroot), cg_dirs(cgroot)   # db's cgroup went with its container


def test_handed_fds_reach_no_workload_and_none_is_left_behind(h, tmp, cgroot):
    """The fds a re-exec hands over (output and stdin pipes, pidfds, events pipes, the watch
    set) have no close-on-exec from the start (io/handed.h): no workload inherits one (in a
    container, or with `namespaces =` and supervisord's stdin pipe), before or after re-execs,
    and the supervisor holds as many fds after two re-execs as before."""
    listing = "/bin/sh -c 'ls /proc/$$/fd; exec sleep 1000'"
    s = CtlSup(h, tmp, cgroot,
               svc("boxed", listing, network="none", startsecs=0) +
               svc("plain", listing, rootfs=None, namespaces="", stdin="pipe", startsecs=0))
    s.start()
    for n in ("boxed", "plain"):
        s.wait_state(n, "RUNNING")
    fds = lambda n: (s.logdir / f"{n}.out.log").read_text().split()
    for n in ("boxed", "plain"):
        wait_until(lambda: len(fds(n)) >= 3, what=f"{n}'s fd list")
        assert fds(n) == ["0", "1", "2"], (n, fds(n))
    def held():
        """The supervisor's pipes, pidfds and epoll sets (log files and the seccomp memfd are
        opened again as needed)."""
        out = []
        for f in os.listdir(f"/proc/{s.pid}/fd"):
            try:
                t = os.readlink(f"/proc/{s.pid}/fd/{f}")
            except OSError:
                continue
            if t.startswith(("pipe:", "anon_inode:")):
                out.append(re.sub(r"\[\d+\]", "[N]", t))
        return sorted(out)
    before = held()
    for k in (1, 2):
        s.ctl("reexec", check=0)
        s.wait_log(r"^supervisor: took over 2 running containers$", count=k)
        s.wait_log(r"^supervisor: reexec: no event handled", count=k)
    assert held() == before
    s.ctl("restart", "boxed", "plain", check=0)
    for n in ("boxed", "plain"):
        wait_until(lambda: len(fds(n)) >= 6, what=f"{n}'s fd list after the restart")
        assert fds(n) == ["0", "1", "2"] * 2, (n, fds(n))
    assert s.stop() == 0


def test_reexec_sweeps_a_killed_runs_cgroups(h, tmp, cgroot):
    """A `supervisor run` killed -9 leaves its run-NAME-PID cgroups under the root: the
    supervisor's next open of the root removes them, a re-exec's too (it lists them in one
    hierarchy only: a live supervisor's leftovers can only be those), and leaves the running
    services' cgroups alone."""
    s = CtlSup(h, tmp, cgroot, sleeper("web", network="none") +
               svc("job", f"{WL} sleep 1000", network="none", autostart="false"))
    s.start()
    web = s.wait_state("web", "RUNNING")["pid"]
    runs = lambda: sorted({str(d.relative_to(d.parent.parent)) for r in cg_dirs(cgroot)
                           for d in r.glob("run-job-*")})
    p, _, err = h.popen([SUPERVISOR, "-c", s.ini, "run", "job"], env={"CORRAL_INIT": str(INIT)})
    wait_until(lambda: any(cg_procs(d) for r in cg_dirs(cgroot) for d in r.glob("run-job-*")),
               what="the run's container")
    p.kill()
    p.wait()
    # its init and workload go with it (pdeathsig); its cgroups stay
    wait_until(lambda: runs() and not any(cg_procs(d) for r in cg_dirs(cgroot)
                                          for d in r.glob("run-job-*")),
               what="the killed run's empty cgroups")
    s.ctl("reexec", check=0)
    s.wait_log(r"^supervisor: took over 1 running container$")
    s.wait_log(r"^supervisor: swept \d+ leftover cgroup")
    wait_until(lambda: not runs(), what="the killed run's cgroups removed")
    assert s.status("web")["web"]["pid"] == web
    assert all((r / "svc-web").is_dir() for r in cg_dirs(cgroot) if (r / "svc-web").exists())
    assert s.stop() == 0


def heap_huge_vmas(pid):
    """The [heap] mappings of pid marked MADV_HUGEPAGE (VmFlags hg), as (start, size)."""
    out = []
    for blk in re.split(r"\n(?=[0-9a-f]+-[0-9a-f]+ )", open(f"/proc/{pid}/smaps").read()):
        head = blk.split("\n", 1)[0]
        flags = re.search(r"^VmFlags:(.*)$", blk, re.M)
        if head.endswith("[heap]") and flags and " hg" in flags.group(1):
            lo, hi = (int(x, 16) for x in head.split()[0].split("-"))
            out.append((lo, hi - lo))
    return out


def assert_heap_marked(s):
    """One 2 MiB [heap] mapping of s's, 2 MiB aligned, marked; else what its log said."""
    marked = heap_huge_vmas(s.pid)
    said = [l for l in open(s.err_path).read().splitlines() if "heap:" in l]
    assert [size for at, size in marked] == [2 << 20] and marked[0][0] % (2 << 20) == 0, \
        (marked, said)


def test_many_services_put_the_heap_on_a_huge_page(h, tmp, cgroot):
    """64 services or more: the release supervisor marks 2 MiB of its heap, aligned,
    MADV_HUGEPAGE before it allocates for them (own_process.h: a first touch of each 4 KiB page
    is dear in a VM) — at a start once the file is read, and after a re-exec before it is
    read; every service runs and is taken over as with any heap. (Whether the kernel backs it
    with a huge page depends on its free memory: not asserted.) Fewer services: no such mark."""
    class RelSup(CtlSup):
        def start(self):
            self.p, self.out_path, self.err_path = self.h.popen(
                [SUPERVISOR, "-c", self.ini], env={"CORRAL_INIT": str(INIT)})
            self.pid = self.p.pid
            wait_until(lambda: self.sock.exists(), 10, what="the control socket")
            return self
    few = RelSup(h, tmp, cgroot, "".join(sleeper(f"f{i}", network="none") for i in range(3)),
                 name="few.ini").start()
    for i in range(3):
        few.wait_state(f"f{i}", "RUNNING")
    assert heap_huge_vmas(few.pid) == []
    assert few.stop() == 0
    n = 64
    s = RelSup(h, tmp, cgroot, "".join(sleeper(f"s{i}", network="none") for i in range(n)))
    s.start()
    wait_until(lambda: sum(r["state"] == "RUNNING" for r in s.status().values()) == n, 60,
               what=f"{n} services RUNNING")
    assert_heap_marked(s)
    s.ctl("reexec", check=0)
    s.wait_log(r"^supervisor: took over %d running containers$" % n)
    assert_heap_marked(s)
    assert all(r["state"] == "RUNNING" for r in s.status().values())
    assert s.stop() == 0


def test_reexec_keeps_bridge_containers_connected(h, net_env, cgroot):
    """A container on a bridge network is handed over with its host side (net/:
    cr_net_handover): after the re-exec its veth, address, published port and the table are
    the same ones and still work, a service started afterwards reaches it by name on the same
    bridge, and the stop removes all of it."""
    port = 18000 + os.getpid() % 1000

    class NetCtlSup(CtlSup):
        def write(self, services):   # the network's state under tmp, not the default run_dir
            super().write(services)
            self.ini.write_text(self.ini.read_text().replace(
                "[supervisor]\n", f"[supervisor]\nrun_dir = {net_env}/run\n", 1))

    s = NetCtlSup(h, net_env, cgroot,
                  server("srv", ports=f"127.0.0.1:{port}:8000") + sleeper("web", network="none")
                  + client("cli", "srv", autostart="false")).start()
    srv = s.wait_state("srv", "RUNNING")["pid"]
    web = s.wait_state("web", "RUNNING")["pid"]
    state_file = net_env / "run" / cgroot / "state"
    wait_until(lambda: re.search(r"^addr default srv ", state_file.read_text(), re.M), 10,
               what="srv's address")
    addr = re.search(r"^addr default srv (\S+)", state_file.read_text(), re.M).group(1)
    prefix = ifprefix(cgroot)

    def published():
        with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
            return c.recv(200).decode().strip()

    def answers():
        """RUNNING comes before the server in it listens (refused meanwhile: a slow guest)."""
        try:
            return published().startswith("hello from srv")
        except OSError:
            return False

    wait_until(answers, 10, what="the published port")
    links_before = sorted(links(prefix))
    assert len(links_before) == 2, links_before            # the bridge and srv's veth

    rc, out, err = s.ctl("reexec", check=0)
    s.wait_log(r"^supervisor: resumed after reexec \(pid %d" % s.pid)
    s.wait_log(r"^supervisor: took over 2 running containers$")
    st = s.status()
    assert st["srv"]["pid"] == srv and st["web"]["pid"] == web, st
    assert st["srv"]["addr"] == addr, st["srv"]
    # nothing swept as a killed supervisor's: the same links, the table, the port
    assert sorted(links(prefix)) == links_before
    assert f"corral-{cgroot}" in nft_tables()
    assert published().startswith("hello from srv"), "the published port after the re-exec"
    assert "left by an earlier supervisor" not in s.log(), s.log()

    # a container started by the new program joins the same bridge and finds srv by name
    s.ctl("start", "cli", check=0)
    out_file = net_env / "out" / "cli"
    wait_until(out_file.exists, 20, what="cli's answer")
    answer = out_file.read_text().strip()
    cli = re.search(r"^addr default cli (\S+)", state_file.read_text(), re.M).group(1)
    assert answer == f"hello from srv to {cli}", answer
    assert cli != addr
    assert len(links(prefix)) == 3, links(prefix)
    # and once more, with what the first re-exec took back
    s.ctl("reexec", check=0)
    s.wait_log(r"^supervisor: took over 3 running containers$")
    st = s.status()
    assert (st["srv"]["addr"], st["cli"]["addr"]) == (addr, cli), st
    assert published().startswith("hello from srv")
    assert len(links(prefix)) == 3, links(prefix)

    assert s.stop() == 0
    assert f"corral-{cgroot}" not in nft_tables()
    wait_until(lambda: links(prefix) == [], what=f"no link {prefix}*")
    assert not cg_dirs(cgroot), cg_dirs(cgroot)


def test_stop_after_a_reexec_removes_the_bridge_and_the_table(h, net_env, cgroot):
    """A supervisor that took a bridge over at a re-exec and changed nothing since (so it
    never loaded libnftables itself) still removes the bridge, the veth and its nftables
    table when it stops, and keeps no "table" line in its state file."""

    class NetCtlSup(CtlSup):
        def write(self, services):   # the network's state under tmp, not the default run_dir
            super().write(services)
            self.ini.write_text(self.ini.read_text().replace(
                "[supervisor]\n", f"[supervisor]\nrun_dir = {net_env}/run\n", 1))

    s = NetCtlSup(h, net_env, cgroot, sleeper("web", network="bridge")).start()
    web = s.wait_state("web", "RUNNING")["pid"]
    prefix = ifprefix(cgroot)
    wait_until(lambda: len(links(prefix)) == 2, 10, what="the bridge and web's veth")
    assert f"corral-{cgroot}" in nft_tables()
    s.ctl("reexec", check=0)
    s.wait_log(r"^supervisor: took over 1 running container$")
    assert s.status()["web"]["pid"] == web
    assert s.stop() == 0
    assert f"corral-{cgroot}" not in nft_tables(), "the table outlived a clean stop"
    state_file = net_env / "run" / cgroot / "state"
    assert not state_file.exists() or not re.search(r"^table ", state_file.read_text(), re.M)
    wait_until(lambda: links(prefix) == [], what=f"no link {prefix}*")
    assert not cg_dirs(cgroot), cg_dirs(cgroot)


def test_reexec_without_cgroups(h, tmp, cgroot):
    """No cgroup hierarchy (a container's read-only /sys/fs/cgroup): the containers are
    handed over all the same, and a stop after it still reaches each one's whole tree."""
    s = NoCgroupSup(h, tmp, cgroot, sleeper("web", network="none")).start()
    init = s.wait_state("web", "RUNNING")["pid"]
    tree = [init] + wait_until(lambda: descendants(init), what="web's workload")
    s.ctl("reexec", check=0)
    s.wait_log(r"^supervisor: took over 1 running container$")
    assert s.status("web")["web"]["pid"] == init
    assert all(alive(p) for p in tree)
    assert s.stop() == 0
    assert all(gone(p) for p in tree), [p for p in tree if not gone(p)]


def test_reexec_keeps_an_image_container(h, tmp, cgroot, images):
    """A container on an image (its overlay of the store's layers, its upper dir) is handed
    over; its stop after the re-exec removes its upper dir as always."""
    class ImgCtlSup(CtlSup):
        store = tmp / "store"
        layers = ImgSup.layers

        def write(self, services):
            super().write(services)
            self.ini.write_text(self.ini.read_text().replace(
                "[supervisor]\n", f"[supervisor]\nimage_store = {self.store}\n", 1))

    lay = images / "layout"
    s = ImgCtlSup(h, tmp, cgroot, isvc("app", f"oci:{lay}:base", "/bin/sh -c 'echo up; exec "
                                       "sleep 1000'", network="none", startsecs=0)).start()
    init = s.wait_state("app", "RUNNING")["pid"]
    s.ctl("reexec", check=0)
    s.wait_log(r"^supervisor: took over 1 running container$")
    assert s.status("app")["app"]["pid"] == init
    assert s.stop() == 0
    assert_store_clean(s)


# Each line is written in two write(2)s, so the supervisor often holds the start of one when
# it re-executes; stderr gets a line of its own each round.
WRITER = ("/bin/sh -c 'i=0; while :; do printf \"line %d-\" $i; printf \"end\\n\"; "
          "echo \"err $i\" >&2; i=$((i+1)); done'")


def numbered(lines, fmt):
    """The numbers of lines matching fmt (a regex with one group), and the lines that do not."""
    rx = re.compile(fmt)
    nums, bad = [], []
    for ln in lines:
        m = rx.fullmatch(ln)
        (nums.append(int(m.group(1))) if m else bad.append(ln))
    return nums, bad


def test_reexec_loses_and_doubles_no_line_of_a_continuous_writer(h, tmp, cgroot):
    """A service writes lines as fast as it can, on stdout and stderr, across three re-execs:
    its log files and the console have every line once, in order, none cut in two (the start
    of a line read before the execve is handed over; the rest stays in the pipe)."""
    s = CtlSup(h, tmp, cgroot, svc("writer", WRITER, network="none", startsecs=0,
                                   stdout_logfile_maxbytes=0, stderr_logfile_maxbytes=0)).start()
    s.wait_state("writer", "RUNNING")
    out_log, err_log = s.logdir / "writer.out.log", s.logdir / "writer.err.log"

    def count():
        try:
            return out_log.stat().st_size
        except FileNotFoundError:
            return 0
    for k in range(1, 4):
        before = count()
        wait_until(lambda: count() > before + 20000, 10, what="the writer's lines")
        s.ctl("reexec", check=0)
        s.wait_log(r"^supervisor: took over 1 running container$", count=k)
    before = count()
    wait_until(lambda: count() > before + 20000, 10, what="lines after the last re-exec")
    s.ctl("stop", "writer", check=0)
    s.wait_state("writer", "STOPPED")
    assert s.stop() == 0

    out = out_log.read_text().splitlines()
    nums, bad = numbered(out, r"line (\d+)-end")
    # The writer is killed at its stop: only its very last line may be cut.
    assert bad in ([], [out[-1]]), bad[:5]
    assert nums == list(range(len(nums))), next(
        (i, n) for i, n in enumerate(nums) if n != i)
    enums, ebad = numbered(err_log.read_text().splitlines(), r"err (\d+)")
    assert not ebad and enums == list(range(len(enums))), (ebad[:5], len(enums))
    # The console (the supervisor's stdout, here a file) has the same lines, once each.
    cnums, _ = numbered([ln for ln in s.out().splitlines() if ln.startswith("writer | line")],
                        r"writer \| line (\d+)-end")
    assert cnums == list(range(len(cnums))) and len(cnums) >= len(nums) - 1, len(cnums)
    assert len(re.findall(r"(?m)^supervisor: resumed after reexec", s.log())) == 3


def test_svctl_keeps_answering_across_reexecs(h, tmp, cgroot):
    """svctl clients run all the time across re-execs: each one is answered (the listening
    socket is the same one; a connection the old program had accepted and not answered ends
    unanswered, and svctl makes it again: the next test makes that happen every time)."""
    s = CtlSup(h, tmp, cgroot, sleeper("web", network="none")).start()
    pid = s.wait_state("web", "RUNNING")["pid"]
    results, stop = [], threading.Event()

    def client():
        while not stop.is_set():
            rc, out, err = s.ctl("status", "web")
            results.append((rc, "RUNNING" in out, err))
    t = threading.Thread(target=client)
    t.start()
    try:
        for k in range(1, 6):
            n = len(results)
            wait_until(lambda: len(results) > n, 10, what="a status answered")
            s.ctl("reexec", check=0)
            s.wait_log(r"^supervisor: took over 1 running container$", count=k)
        n = len(results)
        wait_until(lambda: len(results) > n + 2, 10, what="statuses after the last re-exec")
    finally:
        stop.set()
        t.join()
    failed = [r for r in results if r[0] != 0 or not r[1]]
    assert not failed, (len(results), failed[:3])
    assert s.status("web")["web"]["pid"] == pid
    assert s.stop() == 0


def test_svctl_makes_again_a_connection_closed_unanswered(h, tmp, cgroot):
    """What a re-exec does to a connection it had accepted (closed, nothing answered), made
    to happen every time: a relay before the real socket closes svctl's first connection
    after its hello, the second after its request (the hello answered by the supervisor),
    and relays the third. svctl connects again and gets its answer; a supervisor that is
    gone is still said at once (exit 3)."""
    s = CtlSup(h, tmp, cgroot, sleeper("web", network="none")).start()
    s.wait_state("web", "RUNNING")
    relay = tmp / "relay.sock"
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(str(relay))
    srv.listen(8)
    seen = []

    def pipe(a, b):
        while (d := a.recv(65536)):
            b.sendall(d)
        b.shutdown(socket.SHUT_WR)

    def serve():
        for k in range(3):
            c, _ = srv.accept()
            f = c.makefile("rb")
            up = socket.socket(socket.AF_UNIX)
            up.connect(str(s.sock))
            if k == 0:
                seen.append([f.readline()])
            elif k == 1:
                hello = f.readline()
                up.sendall(hello)
                uf = up.makefile("rb")
                while True:   # the hello's answer: records, then ok
                    ln = uf.readline()
                    c.sendall(ln)
                    if not ln or ln.startswith((b"ok", b"error")):
                        break
                uf.close()
                seen.append([hello, f.readline()])
            else:
                th = threading.Thread(target=pipe, args=(up, c))
                th.start()
                pipe(c, up)
                th.join()
            f.close()
            c.close()
            up.close()
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    p = subprocess.run([str(ASAN_SVCTL), "-s", str(relay), "status", "web"], env=base_env(),
                       capture_output=True, text=True, timeout=30)
    t.join(10)
    srv.close()
    relay.unlink()
    assert p.returncode == 0 and "RUNNING" in p.stdout, (p.returncode, p.stdout, p.stderr)
    assert [[ln.split()[0] for ln in x] for x in seen] == [[b"hello"], [b"hello", b"status"]], seen
    assert s.stop() == 0
    p = subprocess.run([str(ASAN_SVCTL), "-s", str(s.sock), "status"], env=base_env(),
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 3, (p.returncode, p.stderr)


def test_reexec_signal(h, tmp, cgroot):
    """[supervisor] reexec_signal: the signal re-executes the supervisor as `svctl reexec`
    does; a signal the supervisor uses already is a configuration error naming file, line
    and key."""
    class SigSup(CtlSup):
        def write(self, services):
            super().write(services)
            self.ini.write_text(self.ini.read_text().replace(
                "[supervisor]\n", f"[supervisor]\nreexec_signal = {self.sig}\n", 1))

    SigSup.sig = "HUP"
    bad = SigSup(h, tmp, cgroot, sleeper("web", network="none"))
    p = subprocess.run([str(SUPERVISOR), "-c", str(bad.ini), "--check"], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode != 0 and (f"{bad.ini}:2: reexec_signal: 'HUP': the supervisor uses "
                                  "SIGHUP already (to reload)") in p.stderr, p.stderr
    SigSup.sig = "QUIT"
    s = SigSup(h, tmp, cgroot, sleeper("web", network="none")).start()
    pid = s.wait_state("web", "RUNNING")["pid"]
    s.p.send_signal(signal.SIGQUIT)
    s.wait_log(r"^supervisor: SIGQUIT \(reexec_signal\): re-executing /")
    s.wait_log(r"^supervisor: took over 1 running container$")
    assert s.status("web")["web"]["pid"] == pid
    s.p.send_signal(signal.SIGQUIT)   # the new program watches it too
    s.wait_log(r"^supervisor: took over 1 running container$", count=2)
    assert s.stop() == 0
