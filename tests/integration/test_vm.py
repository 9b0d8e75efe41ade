"""cgroup v2 and PID 1 in a VM: Debian's kernel under qemu (TCG), booted by tests/vm/run-in-vm.

This machine mounts the v1 controllers; most users run pure cgroup v2. The VM boots with
cgroup_no_v1=all, so /sys/fs/cgroup is cgroup2 with every controller, and sees the host's / (read
only, under a tmpfs overlay), so the same binaries run there. TCG is slow (a boot is 3-7 s, more
when the machine is busy), so the checks share boots: one for the cgroup checks
(tests/vm/guest_checks.py), one for init as the VM's PID 1, one for the pytest selection of
cgroup tests (only when there are some). That selection, the longest (~14 min on a quiet
machine), starts as soon as pytest has collected test_cgroup_tests_in_vm (conftest.py's
pytest_collection_finish calls start_early) and runs beside the host's tests, which mostly
wait on their processes; the test then takes its result.

Skipped only when qemu cannot run here at all (the reason is printed). Environment:
  RUN_IN_VM_TIMEOUT          seconds per boot (120)
  CORRAL_VM_PYTEST           pytest arguments for the run inside the VM
                             (default: -m cgroup tests/integration tests/security)
  CORRAL_VM_PYTEST_TIMEOUT   seconds for that run (1800: the selection takes ~14 min in TCG on a quiet machine; CI has 90 min in all); its output is kept in build/test/vm-pytest.log
  CORRAL_VM_EARLY            0: the selection runs in its turn, not from the start
"""
import importlib.machinery
import importlib.util
import json
import os
import re
import select
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import kept_done, kept_popen, kept_run

ROOT = Path(__file__).resolve().parents[2]
RUN_IN_VM = ROOT / "tests" / "vm" / "run-in-vm"
GUEST_CHECKS = ROOT / "tests" / "vm" / "guest_checks.py"
TIMEOUT = float(os.environ.get("RUN_IN_VM_TIMEOUT", "120"))
VM_PYTEST = shlex.split(os.environ.get("CORRAL_VM_PYTEST", "-m cgroup tests/integration tests/security"))
VM_PYTEST_TIMEOUT = float(os.environ.get("CORRAL_VM_PYTEST_TIMEOUT", "1800"))
VM_STALLED = 124   # tests/vm/run-in-vm: the guest kernel reported a soft lockup of 120 s or more
# The guest runs under TCG: its tests get more time (conftest.T scales by CRTEST_SLOW).
GUEST_SLOW = str(max(float(os.environ.get("CRTEST_SLOW", "1")), 1.0) * 5)

TIMES = []  # (what, seconds), printed at the end of the session
RUNNING = set()  # run-in-vm processes under way (stop_early ends them at the session's end)
BUILD_LOCK = threading.Lock()  # build/vm: made once, by the early run or the fixture
# Boots take minutes under TCG, and test_cgroup_tests_in_vm waits for the whole selection
# (run twice if the guest stalls): past conftest's time limit per test.
pytestmark = pytest.mark.time_limit(2 * (VM_PYTEST_TIMEOUT + 90) + 900)


class Result:
    def __init__(self, rc, out, err, seconds):
        self.rc, self.out, self.err, self.seconds = rc, out, err, seconds

    def __repr__(self):
        return (f"<run-in-vm rc={self.rc} {self.seconds:.1f}s\n--- stdout\n{self.out[-3000:]}"
                f"\n--- stderr\n{self.err[-3000:]}>")


def run_in_vm(args, timeout=TIMEOUT, what=None):
    """tests/vm/run-in-vm ARGS (options, then -- CMD...); its own timeout kills qemu. If it
    overruns anyway, it gets SIGTERM (it then kills qemu by PID and removes its folder)."""
    argv = [str(RUN_IN_VM), "--timeout", str(timeout)] + [str(a) for a in args]
    t = time.monotonic()
    # kept: not a test's leftover, which a test's cleanup kills (conftest.py)
    p = kept_popen(argv, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                   stderr=subprocess.PIPE, text=True)
    RUNNING.add(p)
    try:
        out, err = p.communicate(timeout=timeout + 60)
    except BaseException as e:
        if not isinstance(e, subprocess.TimeoutExpired):   # an interrupt: qemu goes too
            p.send_signal(signal.SIGTERM)
            ended(p)
            raise
        p.send_signal(signal.SIGTERM)
        try:
            out, err = p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        err += "\n(run-in-vm overran its own timeout)"
    finally:
        RUNNING.discard(p)
        kept_done(p)
    r = Result(p.returncode, out, err, time.monotonic() - t)
    if what:
        TIMES.append((what, r.seconds))
    return r


def ended(p, timeout=60):
    """Waits for run-in-vm p, sent SIGTERM (it kills its qemu by PID and removes its folder);
    killed after timeout."""
    try:
        p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def qemu_unusable():
    """Why qemu cannot run here at all, or None."""
    if os.environ.get("RUN_IN_VM"):
        return "already inside the run-in-vm guest"
    qemu = shutil.which("qemu-system-x86_64")
    if not qemu:
        return "qemu-system-x86_64 is not installed (make deps-vm)"
    # Start an empty, stopped machine: qemu runs when it greets on its QMP channel.
    try:
        p = kept_popen([qemu, "-accel", "tcg", "-M", "none", "-nodefaults", "-display",
                        "none", "-S", "-qmp", "stdio"], stdin=subprocess.PIPE,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as e:
        return f"qemu-system-x86_64 cannot be executed: {e}"
    try:
        ready, _, _ = select.select([p.stdout], [], [], 60)
        greeting = p.stdout.readline() if ready else b""
    finally:
        p.kill()  # by its PID
        _, err = p.communicate()
        kept_done(p)
    if b'"QMP"' in greeting:
        return None
    return (f"qemu-system-x86_64 -accel tcg does not start (status {p.returncode}): "
            f"{err.decode(errors='replace').strip()}")


def build_vm():
    """build/vm (cached after the first time): None, or why it could not be made."""
    with BUILD_LOCK:
        t = time.monotonic()
        r = kept_run([str(RUN_IN_VM), "--build-only"], 900, cwd=ROOT)
        TIMES.append(("build/vm (cached after the first time)", time.monotonic() - t))
    return None if r.returncode == 0 else r.stderr


@pytest.fixture(scope="session")
def vm(request):
    reason = qemu_unusable()
    if reason:
        pytest.skip(f"qemu cannot run here: {reason}")
    err = build_vm()
    assert err is None, f"building build/vm failed:\n{err}"

    def report():
        tr = request.config.pluginmanager.get_plugin("terminalreporter")
        capman = request.config.pluginmanager.get_plugin("capturemanager")
        if not (tr and capman and TIMES):
            return
        with capman.global_and_fixture_disabled():
            tr.write_line("")
            tr.write_line("VM timings (host wall clock, TCG):")
            for what, s in TIMES:
                tr.write_line(f"  {s:6.1f} s  {what}")
    request.addfinalizer(report)
    return run_in_vm


@pytest.fixture(scope="session")
def checks(vm):
    """One boot: tests/vm/guest_checks.py, its JSON, and the guest's boot timestamps."""
    with tempfile.TemporaryDirectory(prefix="vm-checks.") as d:
        r = vm(["--share", d, "--", "/usr/bin/python3", GUEST_CHECKS],
               what="boot + cgroup checks (one VM)")
        assert r.rc == 0, r
        try:
            res = json.loads(r.out.strip().splitlines()[-1])
        except (IndexError, ValueError):
            pytest.fail(f"guest_checks.py printed no JSON; {r}")
        ready = Path(d, "uptime-root-ready")
        if ready.exists():
            up = float(ready.read_text().split()[0])
            res["uptime_root_ready"] = up
            TIMES.append(("  guest uptime when its root was ready (boot to shell)", up))
    TIMES.append(("  guest: the checks themselves", res["guest_seconds"]))
    return res


def test_vm_has_pure_cgroup2(checks):
    lay = checks["layout"]
    assert "error" not in lay, lay
    assert lay["cgroup_mount_fstype"] == ["cgroup2"], lay
    assert lay["v1_mounts"] == [], lay
    assert lay["v1_memory_mount_rc"] != 0, "a v1 memory hierarchy could be mounted"
    assert lay["self_cgroup"] == ["0::/"], lay
    for c in ("memory", "pids", "cpu"):
        assert c in lay["controllers"], lay
        assert c in lay["subtree_control"], lay
    assert "cgroup_no_v1=all" in lay["cmdline"]


def test_vm_memory_max_oom_kills_hog(checks):
    oom = checks["oom"]
    assert "error" not in oom, oom
    # The same 256 MiB hog runs without a limit and is OOM-killed under memory.max = 48 MiB.
    assert oom["unlimited_rc"] == 0 and oom["unlimited_out"] == str(256 << 20), oom
    assert oom["memory_max"] == str(48 << 20), oom
    assert oom["limited_rc"] == -signal.SIGKILL, oom
    assert int(oom["memory_events"]["oom_kill"]) >= 1, oom
    assert oom["removed"] and not oom["exists_after"], oom


def test_vm_pids_max_stops_forks(checks):
    pids = checks["pids"]
    assert "error" not in pids, pids
    assert pids["rc"] == 0, pids
    assert pids["forked"] == 3 and pids["eagain"] == 5, pids
    assert int(pids["pids_events"]["max"]) >= 5, pids
    assert pids["removed"], pids


# The workload of init-as-PID-1: records what it sees in the shared folder, leaves an orphan
# (sleep, whose parent shell exits at once) and waits for PID 1 to reap it, then exits 7.
PID1_SCRIPT = r"""
r=$RUN_IN_VM_SHARE/result
field() { awk -v k="$1:" '$1 == k { print $2 }' /proc/$2/status 2>/dev/null; }
{
  echo "workload_pid=$$"
  echo "workload_ppid=$PPID"
  echo "pid1_exe=$(readlink /proc/1/exe)"
  echo "pid1_comm=$(cat /proc/1/comm)"
} >$r
o=$(sh -c 'sleep 2 >/dev/null 2>&1 & echo $!')
i=0
while [ "$(field PPid $o)" != 1 ] && [ $i -lt 100 ]; do i=$((i + 1)); sleep 0.02; done
echo "orphan_ppid=$(field PPid $o)" >>$r
i=0
while [ -e /proc/$o ] && [ $i -lt 200 ]; do i=$((i + 1)); sleep 0.05; done
st=$(field State $o)
echo "orphan_end=${st:-reaped}" >>$r
exit 7
"""


def test_init_as_vm_pid1(vm, init_bin):
    """build/init is the VM's real PID 1 (`init -- sh -c ...`): the workload is its child,
    an orphan is re-parented to it and reaped, and the workload's status 7 becomes init's exit
    status, which the kernel reports when PID 1 exits."""
    with tempfile.TemporaryDirectory(prefix="vm-pid1.") as d:
        r = vm(["--pid1", "--share", d, "--", init_bin, "--", "/bin/sh", "-c", PID1_SCRIPT],
               what="boot + build/init as PID 1")
        res_path = Path(d, "result")
        text = res_path.read_text() if res_path.exists() else ""
    res = dict(l.split("=", 1) for l in text.splitlines() if "=" in l)
    assert res, f"the workload recorded nothing; {r}"
    assert res["pid1_exe"] == str(Path(init_bin).resolve()), res
    assert res["workload_ppid"] == "1", res
    assert res["orphan_ppid"] == "1", res
    assert res["orphan_end"] == "reaped", f"PID 1 left the orphan in state {res['orphan_end']}"
    if r.rc == 125 and "orphan_end" in res:
        pytest.fail(f"the workload finished, but PID 1 (build/init) did not exit; {r}")
    assert r.rc == 7, r


def selection():
    """CORRAL_VM_PYTEST in a VM: ("skip", why), ("fail", message) or ("ran", Result)."""
    why = qemu_unusable()
    if why:
        return "skip", f"qemu cannot run here: {why}"
    err = build_vm()
    if err is not None:
        return "fail", f"building build/vm failed:\n{err}"
    collect = kept_run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                        "-p", "no:cacheprovider", *VM_PYTEST], 300, cwd=ROOT)
    if collect.returncode == 5:
        return "skip", f"no tests selected by `{shlex.join(VM_PYTEST)}` yet"
    if collect.returncode != 0:
        return "fail", collect.stdout[-3000:] + collect.stderr[-3000:]
    if EARLY["stop"]:   # the session ended meanwhile
        return "skip", "the session ended before the VM started"
    return "ran", guest_pytest(VM_PYTEST)


def guest_pytest(args):
    """pytest ARGS in a VM of its own: its Result."""
    env = ["-e", f"CRTEST_SLOW={GUEST_SLOW}", "-e", "PYTHONDONTWRITEBYTECODE=1"]
    if "CORRAL_TEST_RUN" in os.environ:
        env += ["-e", "CORRAL_TEST_RUN=" + os.environ["CORRAL_TEST_RUN"]]
    argv = env + ["--",
                  # -v: a test's name before it runs, so a run cut by the timeout names the
                  # test it was in; the slowest ones listed at the end
                  "/usr/bin/python3", "-m", "pytest", "-p", "no:cacheprovider", "-v",
                  "--durations=30", *args]
    r = run_in_vm(argv, timeout=VM_PYTEST_TIMEOUT, what=f"boot + pytest {shlex.join(args)}")
    if r.rc == VM_STALLED and not EARLY["stop"]:
        # The guest's kernel, emulated by TCG, had a CPU stuck for minutes (seen once in CI,
        # at the first test, never reproduced): the whole selection runs once more in a new
        # VM, and that run's result is the test's. The stall report is printed either way.
        r.out = f"the VM stalled; running the selection once more:\n{r.err}\n"
        again = run_in_vm(argv, timeout=VM_PYTEST_TIMEOUT,
                          what=f"again: boot + pytest {shlex.join(args)}")
        again.out, r = r.out + again.out, again
    return r


# The selection started early (start_early), in a thread of its own: its outcome once done.
EARLY = {"thread": None, "outcome": None, "stop": False}


def start_early():
    """From conftest.py once test_cgroup_tests_in_vm is collected: the selection starts
    now, beside the host's tests (not under CORRAL_VM_EARLY=0, nor inside the guest)."""
    if EARLY["thread"] or os.environ.get("CORRAL_VM_EARLY", "1") == "0" or \
            os.environ.get("RUN_IN_VM"):
        return

    def run():
        try:
            EARLY["outcome"] = selection()
        except Exception as e:  # noqa: BLE001 -- the test reports it
            EARLY["outcome"] = ("fail", f"the early VM run failed: {e!r}")
    EARLY["thread"] = threading.Thread(target=run, name="vm-selection", daemon=True)
    EARLY["thread"].start()


def stop_early():
    """From conftest.py at the session's end: a selection still under way (its test was
    not reached: pytest -x, an interrupt) is ended, its qemu killed by run-in-vm by PID."""
    # (not t.is_alive(): after a join interrupted by ^C it can say False for a thread
    # still running, https://github.com/python/cpython/issues/90882)
    t = EARLY["thread"]
    if not t or EARLY["outcome"] is not None:
        return
    EARLY["stop"] = True
    for _ in range(2):   # its VM may have been starting: its Popen comes a moment later
        for p in list(RUNNING):
            p.send_signal(signal.SIGTERM)
        for p in list(RUNNING):
            ended(p)
        time.sleep(0.5)


def test_cgroup_tests_in_vm():
    """The hook for the cgroup-dependent integration tests: runs the pytest selection
    CORRAL_VM_PYTEST (tests marked `cgroup`) inside the VM, against the same binaries
    (started early: start_early; else now)."""
    if EARLY["thread"]:
        EARLY["thread"].join()
        outcome = EARLY["outcome"]
    else:
        outcome = selection()
    kind, r = outcome
    if kind == "skip":
        pytest.skip(r)
    assert kind == "ran", r
    print(r.out)
    # kept whether it passed or not: its --durations say where the guest's time goes
    (ROOT / "build" / "test").mkdir(parents=True, exist_ok=True)
    (ROOT / "build" / "test" / "vm-pytest.log").write_text(r.out)
    assert r.rc == 0, failure_digest(r.out) + repr(r)


def failure_digest(out, per_test=4, width=240):
    """The guest's failures first, short: each failed test's name and its first `E` lines
    (CI shows only the head and the tail of a long log, and the guest's own failure
    sections sit in the middle of it)."""
    lines, name, n = [], None, 0
    for line in out.splitlines():
        m = re.match(r"^_{3,} (\S.*?) _{3,}$", line)
        if m:
            name, n = m.group(1), 0
            lines.append(f"[guest] {name}:")
        elif name and line.startswith("E ") and n < per_test:
            lines.append("    " + line[1:].strip()[:width])
            n += 1
    return ("\n".join(lines) + "\n") if lines else ""


def test_run_in_vm_tells_a_stalled_guest_from_a_slow_one(tmp_path):
    """run-in-vm's console watch (no VM needed): a soft lockup report of 120 s or more is a
    stall (qemu is killed, exit 124, the report printed from its first line); a shorter one,
    which a guest starved by a busy host may print and survive, or a partial line, is not."""
    loader = importlib.machinery.SourceFileLoader("run_in_vm", str(RUN_IN_VM))
    riv = importlib.util.module_from_spec(importlib.util.spec_from_loader("run_in_vm", loader))
    loader.exec_module(riv)
    con = tmp_path / "console.log"
    short = "[   30.1] watchdog: BUG: soft lockup - CPU#0 stuck for 23s! [python3:133]\n"
    long_ = "[ 1796.6] watchdog: BUG: soft lockup - CPU#1 stuck for 1658s! [supervisor:135]\n"
    con.write_text("[    1.0] booting\n" + short + "[ 1796.6] watchdog: BUG: soft lockup - "
                   "CPU#1 stuck for 1658s!")          # the long one not yet a whole line
    scanned, stalled = riv.scan_stall(str(con), 0)
    assert not stalled and scanned == len("[    1.0] booting\n" + short)
    con.write_text("[    1.0] booting\n" + short + long_ + "[ 1796.7] Call Trace:\n")
    scanned, stalled = riv.scan_stall(str(con), scanned)
    assert stalled
    report = riv.stall_report(str(con))
    assert report.splitlines()[0].strip() == short.strip() and "Call Trace" in report
    assert riv.VM_STALLED == VM_STALLED == 124


def test_failure_digest_names_each_guest_failure():
    """The guest's failures lead the VM test's message (no VM needed)."""
    out = ("tests/a.py::test_x PASSED\n= FAILURES =\n____ test_one ____\n\n    def test_one():\n"
           ">       assert 1 == 2\nE       assert 1 == 2\nE        +  where ...\n\ntests/a.py:3: "
           "AssertionError\n____ test_two[p] ____\nE       TimeoutError: the pool's events\n"
           "= short test summary info =\n")
    d = failure_digest(out)
    assert d == ("[guest] test_one:\n    assert 1 == 2\n    +  where ...\n"
                 "[guest] test_two[p]:\n    TimeoutError: the pool's events\n"), d
    assert failure_digest("== 3 passed ==\n") == ""
