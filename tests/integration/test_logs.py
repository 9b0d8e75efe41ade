"""Service logs, black-box: build/asan/supervisor with the real init, real containers over the
busybox rootfs (the workload helper inside), real cgroups (crtest-<pid>-<n>, removed at
teardown) and a real small tmpfs for the disk-full case (mounted under the test's tmp dir,
unmounted at the end).

Checked: files per stream, AUTO names, NONE, redirect_stderr and a file shared by two streams
(no line split), rotation under load (sizes, backup count, no line lost or split), RFC 3339
timestamps, SIGUSR2 rotation, disk full (lines dropped and counted, the service runs on,
writing resumes), and the console's `NAME | line` beside all of it."""
import os
import re
import signal
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from conftest import T, read_text, wait_until
from test_supervisor import Sup, cgroot, prefixed, svc  # noqa: F401 (cgroot: a fixture)

WL = "/usr/local/bin/workload"

pytestmark = pytest.mark.cgroup


class LogSup(Sup):
    """A supervisor whose log_dir (and control socket) live in the test's tmp dir."""

    def __init__(self, h, tmp, cgroot, services, log_dir=None, glob=""):
        self.log_dir = Path(log_dir or Path(tmp) / "logs")
        self.glob = glob                                # more [supervisor] keys
        super().__init__(h, tmp, cgroot, services)

    def write(self, services):
        self.ini.write_text(f"[supervisor]\ncgroup_root = {self.cgroot}\nlog_dir = {self.log_dir}\n"
                            f"control_socket = {self.tmp}/ctl.sock\n{self.glob}\n" + services)

    def logfile(self, name, kind="out"):
        return self.log_dir / f"{name}.{kind}.log"


def file_lines(path):
    return read_text(path).splitlines()


def wait_lines(path, n, timeout=20):
    return wait_until(lambda: len(file_lines(path)) >= n and file_lines(path), timeout,
                      what=f"{n} lines in {path}")


def rotated(path, backups):
    """path.backups ... path.1, path: oldest first, those that exist."""
    files = [Path(f"{path}.{i}") for i in range(backups, 0, -1)] + [Path(path)]
    return [f for f in files if f.exists()]


# ---- files ---------------------------------------------------------------------------------------
def test_each_stream_to_its_file_across_restarts_and_the_console_keeps_its_prefix(
        h, tmp, cgroot, rootfs):
    cmd = f"/bin/sh -c '{WL} spew 3; echo oops >&2; printf tail; sleep 0.3; exit 3'"
    s = LogSup(h, tmp, cgroot, svc("web", cmd, startsecs=0, autorestart="true",
                                   restart_delay="100ms")).start()
    out, err = s.logfile("web"), s.logfile("web", "err")
    # The pipes outlive each run: the second run's lines land in the same files.
    wait_until(lambda: file_lines(out).count("line 0") >= 2, 20, what="two runs in the file")
    assert file_lines(out)[:4] == ["line 0", "line 1", "line 2", "tail"], file_lines(out)
    wait_until(lambda: file_lines(err).count("oops") >= 2, 10, what="stderr's file")
    assert set(file_lines(err)) == {"oops"}
    assert oct(out.stat().st_mode & 0o777) == "0o640"
    con = prefixed(s.out(), "web")
    assert sorted(con[:5]) == ["line 0", "line 1", "line 2", "oops", "tail"], con
    assert s.stop() == 0


def test_none_disables_a_file_but_not_the_console(h, tmp, cgroot, rootfs):
    cmd = f"/bin/sh -c 'echo to-out; echo to-err >&2; exec sleep 1000'"
    s = LogSup(h, tmp, cgroot, svc("quiet", cmd, startsecs=0, stdout_logfile="NONE")).start()
    s.wait_out("quiet | to-out")
    s.wait_out("quiet | to-err")
    wait_lines(s.logfile("quiet", "err"), 1)
    assert file_lines(s.logfile("quiet", "err")) == ["to-err"]
    assert not s.logfile("quiet").exists()
    assert s.stop() == 0
    assert sorted(os.listdir(s.log_dir)) == ["quiet.err.log"]


def test_redirect_stderr_one_file_whole_lines(h, tmp, cgroot, rootfs):
    n = 3000
    cmd = (f"/bin/sh -c '{WL} spew {n} fd=1 bytes=300 & {WL} spew {n} fd=2 bytes=301; wait; "
           "exec sleep 1000'")
    s = LogSup(h, tmp, cgroot, svc("mix", cmd, startsecs=0, redirect_stderr="true")).start()
    got = wait_lines(s.logfile("mix"), 2 * n)
    assert sorted(set(got)) == ["x" * 299, "x" * 300]
    assert got.count("x" * 299) == n and got.count("x" * 300) == n
    assert not s.logfile("mix", "err").exists()
    assert s.stop() == 0


def test_two_streams_sharing_a_path_never_split_each_others_lines(h, tmp, cgroot, rootfs):
    # Two pipes, one file: reads end mid-line all the time with 3 KiB lines; the file must
    # still only get whole lines.
    n = 2000
    shared = Path(tmp) / "shared" / "both.log"      # its directory is created on demand
    cmd = (f"/bin/sh -c '{WL} spew {n} fd=1 bytes=3000 & {WL} spew {n} fd=2 bytes=3001; wait; "
           "exec sleep 1000'")
    s = LogSup(h, tmp, cgroot, svc("two", cmd, startsecs=0, stdout_logfile=shared,
                                   stderr_logfile=shared)).start()
    got = wait_lines(shared, 2 * n, timeout=30)
    bad = [len(l) for l in got if l not in ("x" * 2999, "x" * 3000)]
    assert not bad, bad[:10]
    assert got.count("x" * 2999) == n and got.count("x" * 3000) == n
    assert s.stop() == 0


# ---- rotation ------------------------------------------------------------------------------------
def test_rotation_under_load_loses_and_splits_nothing(h, tmp, cgroot, rootfs):
    n, maxb = 30000, 16 * 1024                          # ~290 KB: ~18 files
    cmd = f"/bin/sh -c '{WL} spew {n}; exec sleep 1000'"
    s = LogSup(h, tmp, cgroot, svc("busy", cmd, startsecs=0, stdout_logfile_maxbytes="16K",
                                   stdout_logfile_backups=50)).start()
    path = s.logfile("busy")

    def all_lines():
        out = []
        for f in rotated(path, 50):
            out += file_lines(f)
        return out
    wait_until(lambda: len(all_lines()) >= n, 30, what=f"{n} lines in the rotated files")
    files = rotated(path, 50)
    assert len(files) > 10, files
    assert all(f.stat().st_size <= maxb for f in files), [f.stat().st_size for f in files]
    # Only the current file may be short of a full one by more than a line.
    assert all(f.stat().st_size > maxb - 20 for f in files[:-1])
    assert all_lines() == [f"line {i}" for i in range(n)]
    assert s.stop() == 0


def test_rotation_keeps_only_backups_files(h, tmp, cgroot, rootfs):
    n = 30000
    cmd = f"/bin/sh -c '{WL} spew {n}; echo END; exec sleep 1000'"
    s = LogSup(h, tmp, cgroot, svc("bounded", cmd, startsecs=0, stdout_logfile_maxbytes="8K",
                                   stdout_logfile_backups=2)).start()
    path = s.logfile("bounded")
    wait_until(lambda: "END" in file_lines(path), 30, what="END in the current file")
    names = sorted(os.listdir(s.log_dir))
    assert names == ["bounded.err.log", "bounded.out.log", "bounded.out.log.1",
                     "bounded.out.log.2"], names
    sizes = [f.stat().st_size for f in rotated(path, 2)]
    assert all(x <= 8192 for x in sizes), sizes
    # What is kept is the newest output, contiguous and whole.
    kept = file_lines(Path(f"{path}.2")) + file_lines(Path(f"{path}.1")) + file_lines(path)
    nums = [int(l.split()[1]) for l in kept[:-1]]
    assert nums == list(range(nums[0], n)) and kept[-1] == "END"
    assert s.stop() == 0


def test_sigusr2_rotates_every_log_now(h, tmp, cgroot, rootfs):
    cmd = ("/bin/sh -c 'echo before; echo err-before >&2; while [ ! -e /out/go ]; do sleep 0.05; "
           "done; echo after; exec sleep 1000'")
    outdir = Path(tmp) / "o"
    outdir.mkdir()
    s = LogSup(h, tmp, cgroot, svc("rot", cmd, startsecs=0, bind=f"{outdir}:/out")).start()
    out, err = s.logfile("rot"), s.logfile("rot", "err")
    wait_lines(out, 1)
    wait_lines(err, 1)
    s.p.send_signal(signal.SIGUSR2)
    s.wait_log(r"^supervisor: rotated 2 log files$")
    assert file_lines(Path(f"{out}.1")) == ["before"]
    assert file_lines(Path(f"{err}.1")) == ["err-before"]
    assert out.exists() and out.stat().st_size == 0
    (outdir / "go").touch()
    wait_lines(out, 1)
    assert file_lines(out) == ["after"]
    # Empty files are left alone: a second SIGUSR2 rotates only stdout's.
    s.p.send_signal(signal.SIGUSR2)
    s.wait_log(r"^supervisor: rotated 1 log file$")
    assert file_lines(Path(f"{out}.2")) == ["before"] and file_lines(Path(f"{out}.1")) == ["after"]
    assert s.p.poll() is None
    assert s.stop() == 0


# ---- timestamps ----------------------------------------------------------------------------------
STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6})(Z|[+-]\d\d:\d\d) (.*)$")


def test_log_timestamps_rfc3339_with_microseconds(h, tmp, cgroot, rootfs):
    cmd = f"/bin/sh -c '{WL} spew 5; echo e >&2; exec sleep 1000'"
    before = time.time()
    s = LogSup(h, tmp, cgroot, svc("ts", cmd, startsecs=0, log_timestamps="true")).start()
    got = wait_lines(s.logfile("ts"), 5)
    wait_lines(s.logfile("ts", "err"), 1)
    after = time.time()
    for line, want in zip(got, [f"line {i}" for i in range(5)]):
        m = STAMP.match(line)
        assert m and m.group(3) == want, line
        zone = m.group(2)
        t = datetime.fromisoformat(m.group(1) + ("+00:00" if zone == "Z" else zone))
        assert before - 1 <= t.timestamp() <= after + 1, (line, before, after)
    assert STAMP.match(file_lines(s.logfile("ts", "err"))[0]).group(3) == "e"
    # The console shows the line as written, without the stamp.
    s.wait_out("ts | line 0")
    assert s.stop() == 0


# ---- the supervisor's own log -------------------------------------------------------------------
def test_supervisor_logfile_auto_stamped_rotated_by_size_and_sigusr2(h, tmp, cgroot, rootfs):
    # A crash loop makes the supervisor talk: a few lines per exit, ~100 bytes each.
    before = time.time()
    s = LogSup(h, tmp, cgroot, svc("loop", "/bin/sh -c 'echo hi; exit 3'", startsecs=0,
                                   autorestart="true", restart_delay="50ms",
                                   restart_delay_max="50ms"),
               glob="logfile = AUTO\nlogfile_maxbytes = 2K\nlogfile_backups = 2\n").start()
    path = s.log_dir / "supervisor.log"
    # Held still while we look, at a moment between rotations: a rotation renames .1 to .2,
    # then the file to .1, then makes a new one, so .2 alone can be seen half way through.
    def held_with_all_three():
        s.p.send_signal(signal.SIGSTOP)
        wait_until(lambda: all(t.read_text().rsplit(")", 1)[1].split()[0] == "T"
                               for t in Path(f"/proc/{s.p.pid}/task").glob("*/stat")),
                   5, what="every thread of the supervisor stopped")
        if len(rotated(path, 2)) == 3:
            return True
        s.p.send_signal(signal.SIGCONT)
        return False
    wait_until(held_with_all_three, 30, what="two rotated supervisor logs")
    try:
        files = rotated(path, 2)
        assert [f.name for f in files] == ["supervisor.log.2", "supervisor.log.1",
                                           "supervisor.log"], files
        assert not Path(f"{path}.3").exists()          # logfile_backups = 2
        assert all(f.stat().st_size <= 2048 for f in files), [f.stat().st_size for f in files]
        assert all(f.stat().st_size > 1024 for f in files[:-1])
        got = []
        for f in files:
            got += file_lines(f)
        after = time.time()
        for line in got:
            m = STAMP.match(line)
            assert m, line
            zone = m.group(2)
            t = datetime.fromisoformat(m.group(1) + ("+00:00" if zone == "Z" else zone))
            assert before - 1 <= t.timestamp() <= after + 1, (line, before, after)
        msgs = [STAMP.match(l).group(3) for l in got]
        # The same lines as on stderr, which keeps its own form (no stamp, a prefix).
        err = s.log().splitlines()
        assert msgs and all(f"supervisor: {m}" in err for m in msgs), (msgs[:5], err[:5])
        assert any(re.fullmatch(r"loop: \S+ -> \S+.*", m) for m in msgs), msgs[:10]
        assert re.match(r"^supervisor: started \(pid \d+", s.log())
    finally:
        s.p.send_signal(signal.SIGCONT)
    # SIGUSR2 rotates it as well, and the fresh file starts with what came after. The file
    # is read with the supervisor stopped, the signal waiting for it; what it logs before
    # handling it can still fill the file to its size and rotate it once more (a flake run in
    # the VM: .1 was a newer file than the one read), so .1 or .2 holds what was read.
    s.p.send_signal(signal.SIGSTOP)
    try:
        old = file_lines(path)
        s.p.send_signal(signal.SIGUSR2)
    finally:
        s.p.send_signal(signal.SIGCONT)
    m = s.wait_log(r"^supervisor: rotated (\d+) log files?$")
    assert int(m[0]) >= 2                               # loop.out.log and supervisor.log
    wait_until(lambda: file_lines(path), 5, what="the new supervisor.log")
    assert any(file_lines(Path(f"{path}.{i}"))[:len(old)] == old for i in (1, 2)), old
    assert s.stop() == 0
    # Written to the end: the file's last line is stderr's last.
    last = [l for l in s.log().splitlines() if l.startswith("supervisor: ")][-1]
    assert "supervisor: " + STAMP.match(file_lines(path)[-1]).group(3) == last


def test_supervisor_logfile_default_none_and_a_path(h, tmp, cgroot, rootfs):
    cmd = f"/bin/sh -c 'echo x; exec sleep 1000'"
    s = LogSup(h, tmp, cgroot, svc("a", cmd, startsecs=0)).start()
    s.init("a")
    assert s.stop() == 0
    assert not (s.log_dir / "supervisor.log").exists()  # NONE by default: stderr only
    mine = Path(tmp) / "own" / "sup.log"                # its directory is made on demand
    s = LogSup(h, tmp, cgroot, svc("a", cmd, startsecs=0), glob=f"logfile = {mine}\n").start()
    s.init("a")
    got = wait_until(lambda: [STAMP.match(l).group(3) for l in file_lines(mine)
                              if re.search(r"a: started \(pid", l)], 10, what="the file")
    assert got and STAMP.match(file_lines(mine)[0]).group(3).startswith("started (pid ")
    assert not (s.log_dir / "supervisor.log").exists()
    assert s.stop() == 0


# ---- disk full -----------------------------------------------------------------------------------
@pytest.fixture
def small_tmpfs(tmp):
    d = Path(tmp) / "small"
    d.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", str(d)],
                   check=True)
    try:
        yield d
    finally:
        for _ in range(50):
            if subprocess.run(["umount", str(d)]).returncode == 0:
                break
            time.sleep(0.1)
        else:
            # still busy: a failed test's supervisor (ended later, by the harness) holds a
            # file open; detach it rather than leave the mount behind
            subprocess.run(["umount", "-l", str(d)])
        assert not os.path.ismount(d)


def test_disk_full_drops_and_counts_lines_service_runs_on_and_writing_resumes(
        h, tmp, cgroot, rootfs, small_tmpfs):
    n = 20000                                  # ~190 KB, where ~64 KB are free
    filler = small_tmpfs / "filler"
    with open(filler, "wb") as f:
        f.write(b"\0" * (1024 * 1024 - 64 * 1024))
    outdir = Path(tmp) / "o"
    outdir.mkdir()
    (outdir / "run.sh").write_text(
        f"{WL} spew {n}; touch /out/phase1\n"
        "while [ ! -e /out/go ]; do sleep 0.05; done\n"
        "i=0; while [ $i -lt 100 ]; do echo after-$i; i=$((i+1)); done\n"
        "touch /out/done; exec sleep 1000\n")
    s = LogSup(h, tmp, cgroot, svc("full", "/bin/sh /out/run.sh", startsecs=0,
                                   bind=f"{outdir}:/out"),
               log_dir=small_tmpfs / "logs").start()
    path = s.logfile("full")
    wait_until(lambda: (outdir / "phase1").exists(), 30,
               what="the workload to write everything, never blocked")
    s.wait_log(r"^supervisor: full: log \S+full\.out\.log: No space left on device: dropping "
               r"lines until it can be written$")
    ipid = s.init("full")
    filler.unlink()                            # space returns
    (outdir / "go").touch()
    wait_until(lambda: (outdir / "done").exists(), 20, what="phase 2")
    wait_until(lambda: "after-99" in file_lines(path), 20, what="writing to resume")
    got = file_lines(path)
    assert [l for l in got if l.startswith("after-")] == [f"after-{i}" for i in range(100)]
    before = [l for l in got if not l.startswith("after-")]
    assert all(re.fullmatch(r"line \d+", l) for l in before), [l for l in before
                                                               if not re.fullmatch(r"line \d+", l)][:5]
    nums = [int(l.split()[1]) for l in before]
    assert nums == sorted(nums) and len(set(nums)) == len(nums)
    dropped = sum(int(x) for x in re.findall(r"^supervisor: full: log \S+: writing again; "
                                             r"(\d+) lines? dropped$", s.log(), re.M))
    assert dropped > 0 and len(before) + dropped == n, (len(before), dropped)
    # The service was never disturbed: one container, still running, and the console had it all.
    assert s.inits("full") == [ipid] and s.p.poll() is None
    assert "full: RUNNING -> " not in s.log()
    con = prefixed(s.out(), "full")
    assert len(con) == n + 100 and con[-1] == "after-99"
    assert s.stop() == 0


# ---- console colour ------------------------------------------------------------------------------
def test_console_colours_names_on_a_terminal(h, tmp, cgroot, rootfs):
    from conftest import ASAN_SUPERVISOR, INIT, Pty
    cmd = f"/bin/sh -c 'echo hello; exec sleep 1000'"
    s = LogSup(h, tmp, cgroot, svc("tty", cmd, startsecs=0))
    t = Pty()
    try:
        p, _, err = h.popen([ASAN_SUPERVISOR, "-c", s.ini], env={"CORRAL_INIT": str(INIT)},
                            stdout=t.slave)
        os.close(t.slave)
        t.slave = None
        m = t.expect(rb"\x1b\[(\d+)mtty \|\x1b\[0m hello\r?\n", timeout=20)
        assert m
        p.send_signal(signal.SIGTERM)
        assert p.wait(T(30)) == 0, read_text(err)
    finally:
        t.close()


def test_supervisor_logfile_on_a_full_disk_drops_lines_and_resumes(h, tmp, cgroot, rootfs,
                                                                    small_tmpfs):
    filler = small_tmpfs / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while os.write(fd, b"\0" * 4096):            # to the last block: ENOSPC
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    cmd = f"/bin/sh -c 'echo x; exec sleep 1000'"
    s = LogSup(h, tmp, cgroot, svc("a", cmd, startsecs=0, stdout_logfile="NONE",
                                   stderr_logfile="NONE"),
               log_dir=small_tmpfs, glob="logfile = AUTO\n").start()
    s.init("a")
    s.wait_log(r"^supervisor: logfile: log \S+supervisor\.log: No space left on device: "
               r"dropping lines until it can be written$")
    filler.unlink()
    s.p.send_signal(signal.SIGUSR2)                     # something to say: it is written
    s.wait_log(r"^supervisor: rotated \d+ log files?$")
    path = small_tmpfs / "supervisor.log"
    wait_until(lambda: any(re.search(r" rotated \d+ log files?$", l) for l in
                           file_lines(path) + file_lines(f"{path}.1")), 10, what="a line again")
    assert s.p.poll() is None
    assert s.stop() == 0
    assert re.search(r"^supervisor: logfile: log \S+: writing again; \d+ lines? dropped$",
                     s.log(), re.M)
