"""init: exit status, command line, exec failures, environment, what the workload inherits."""
import os
import re
import signal
from pathlib import Path

import pytest

from conftest import INIT, W, gone, parse_info, proc_stat, read_text, wait_for_line, wait_until


# ---- exit status -----------------------------------------------------------------------------
@pytest.mark.parametrize("code", [0, 1, 3, 42, 255])
def test_exit_code_passes_through(h, mode, code):
    r = h.run(["--"] + W(f"exit {code}"), mode=mode)
    assert r.rc == code, r.stderr()


@pytest.mark.parametrize("sig", ["TERM", "KILL", "SEGV", "INT", "USR1"])
def test_killed_workload_gives_128_plus_signal(h, mode, sig):
    r = h.run(["--"] + W(f"die {sig}"), mode=mode)
    assert r.rc == 128 + signal.Signals["SIG" + sig].value, r.stderr()


def test_arguments_reach_the_workload_unchanged(h, mode, tmp):
    out = tmp / "env"
    r = h.run(["--", "/bin/sh", "-c", 'printf "%s|" "$@" > "$0"', str(out), "a b", "", "-g", "--"],
              mode=mode)
    assert r.rc == 0, r.stderr()
    assert read_text(out) == "a b||-g|--|"


def test_no_double_dash_needed(h, mode):
    r = h.run(W("exit 7"), mode=mode)
    assert r.rc == 7, r.stderr()


# ---- command line errors -------------------------------------------------------------------
@pytest.mark.parametrize("args", [
    ["--bogus", "--", "true"],
    ["-X", "true"],
    [],
    ["-g"],
    ["--"],
    ["--grace", "soon", "--", "true"],
    ["--grace"],
    ["-r", "TERM", "--", "true"],
    ["-r", "NOPE:QUIT", "--", "true"],
    ["-e", "300", "--", "true"],
    ["-e", "x", "--", "true"],
    ["--restart", "sometimes", "--", "true"],
    ["--max-restarts", "-1", "--", "true"],
    ["--exit-codes", "0,abc", "--", "true"],
    ["-p", "NOSIG", "--", "true"],
    ["--events-fd", "x", "--", "true"],
    ["--restart-delay", "1parsec", "--", "true"],
], ids=lambda a: " ".join(a) or "no-args")
def test_bad_command_line_exits_2_with_message(h, args):
    r = h.run(args)
    assert r.rc == 2, (r.rc, r.stderr())
    assert r.stderr().strip(), "no message on stderr"


def test_help_and_version(h):
    r = h.run(["--help"])
    assert r.rc == 0
    assert "--restart" in r.stdout() + r.stderr()
    r = h.run(["-V"])
    assert r.rc == 0
    assert (r.stdout() + r.stderr()).strip()


# ---- exec failures -----------------------------------------------------------------------------
def test_missing_command_exits_127(h, mode, tmp):
    missing = tmp / "no-such-program"
    r = h.run(["--", str(missing), "arg"], mode=mode)
    assert r.rc == 127
    assert f"init: cannot run '{missing}': No such file or directory" in r.stderr()


def test_missing_command_in_path_exits_127(h, mode):
    r = h.run(["--", "corral-no-such-command-anywhere"], mode=mode)
    assert r.rc == 127
    assert "init: cannot run 'corral-no-such-command-anywhere': No such file or directory" \
        in r.stderr()


def test_not_executable_exits_126(h, mode, tmp):
    f = tmp / "script"
    f.write_text("#!/bin/sh\nexit 0\n")
    f.chmod(0o644)
    r = h.run(["--", str(f)], mode=mode, events=True)
    assert r.rc == 126, r.stderr()
    assert str(f) in r.stderr()
    assert r.events.wait("exec-failed")[0]["errno"] == "13"  # EACCES


def test_directory_exits_126(h, mode, tmp):
    r = h.run(["--", str(tmp)], mode=mode)
    assert r.rc == 126, r.stderr()


def test_exec_failure_event(h, tmp):
    missing = tmp / "nothing"
    r = h.run(["--", str(missing)], events=True)
    assert r.rc == 127
    ev = r.events.wait("exec-failed")[0]
    assert ev["errno"] == "2"
    assert ev.reason
    assert not r.events.named("started")


# ---- environment variables ---------------------------------------------------------------------
def test_init_variables_are_removed_from_the_workload_env(h, mode, tmp):
    out = tmp / "env"
    env = {"INIT_GROUP": "1", "INIT_VERBOSE": "1", "INIT_GRACE": "2s", "INIT_SUBREAPER": "1",
           "INIT_REWRITE": "USR2:USR1", "INIT_REMAP_EXIT": "9", "INIT_RESTART": "no",
           "INIT_EXIT_CODES": "0", "INIT_RESTART_DELAY": "100ms",
           "INIT_RESTART_DELAY_MAX": "1s", "INIT_RESTART_RESET_AFTER": "10s",
           "INIT_MAX_RESTARTS": "3", "INIT_RESTART_WINDOW": "1m", "INIT_PDEATHSIG": "TERM",
           "KEEP_ME": "yes", "INITIALLY": "kept"}
    r = h.run(["--"] + W(f"out {out}", "env", "exit 9"), mode=mode, env=env)
    assert r.rc == 0, r.stderr()  # INIT_REMAP_EXIT=9 mapped it
    got = read_text(out).splitlines()
    assert "KEEP_ME=yes" in got
    assert "INITIALLY=kept" in got
    assert [v for v in got if v.startswith("INIT_")] == []


def test_env_remap_exit(h, mode):
    r = h.run(["--"] + W("exit 143"), mode=mode, env={"INIT_REMAP_EXIT": "143,130"})
    assert r.rc == 0
    r = h.run(["--"] + W("exit 3"), mode=mode, env={"INIT_REMAP_EXIT": "143,130"})
    assert r.rc == 3


def test_env_rewrite_and_group(h, mode, tmp):
    rep = tmp / "rep"
    r = h.start(["--"] + W(f"trap USR1,USR2 report={rep}", "children 2",
                           "mark ready", "waitsig USR1 30", "exit 0"),
                mode=mode, env={"INIT_REWRITE": "USR2:USR1", "INIT_GROUP": "1"})
    wait_for_line(rep, "ready")
    r.signal(signal.SIGUSR2)
    # Rewritten to USR1 and sent to the whole group: the workload and its two children.
    wait_for_line(rep, "USR1", count=3)
    assert r.wait() == 0
    assert "USR2" not in read_text(rep).splitlines()


def test_env_verbose(h, mode, tmp):
    pidf = tmp / "pids"
    r = h.run(["--"] + W(f"orphans 1 0 pidfile={pidf}", "sleep 0.5", "exit 0"), mode=mode,
              env={"INIT_VERBOSE": "1"})
    assert r.rc == 0
    pid = int(read_text(pidf).split()[0])
    assert f"init: reaped orphan {pid} (exit 0)" in r.stderr()


def test_env_grace_and_option_wins(h, mode):
    # INIT_GRACE=60s alone would keep init waiting a minute for the TERM-ignoring orphan;
    # --grace 1s on the command line wins.
    r = h.run(["--grace", "1s", "--"] + W("ignore TERM", "orphans 1 120", "exit 0"),
              mode=mode, env={"INIT_GRACE": "60s"}, timeout=30)
    assert r.rc == 0
    assert 0.8 < r.elapsed < 15


def test_env_restart_option_wins(h, mode):
    r = h.run(["--restart", "no", "--"] + W("exit 3"), mode=mode, events=True,
              env={"INIT_RESTART": "always"})
    assert r.rc == 3
    assert len(r.events.named("started")) == 1
    assert not r.events.named("restarting")


def test_env_bad_value_exits_2(h):
    r = h.run(["--"] + W("exit 0"), env={"INIT_GRACE": "forever-ish"})
    assert r.rc == 2
    assert r.stderr().strip()


def test_env_events_fd(h, tmp):
    rfd, wfd = os.pipe()
    os.set_inheritable(wfd, True)
    try:
        r = h.run(["--"] + W("exit 4"), env={"INIT_EVENTS_FD": str(wfd)}, pass_fds=[wfd])
    finally:
        os.close(wfd)
    data = os.read(rfd, 65536).decode()
    os.close(rfd)
    assert r.rc == 4
    assert data.startswith("started pid=")
    assert "exited pid=" in data and "code=4" in data


# ---- what the workload inherits ------------------------------------------------------------------
def test_workload_gets_original_mask_and_dispositions(h, mode, tmp):
    before, after = tmp / "before", tmp / "after"
    # The outer workload ignores USR2, blocks HUP and WINCH, then execs init (so init starts
    # with that mask and those dispositions), which runs the inner workload.
    launcher = W("ignore USR2,QUIT", "block HUP,WINCH", f"out {before}", "info",
                 ["exec", INIT, "--"]) + W(f"out {after}", "info")
    argv = launcher
    if mode == "pid1":
        argv = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"] + launcher
    p, _, err = h.popen(argv)
    assert p.wait(20) == 0, read_text(err)
    b, a = parse_info(read_text(before)), parse_info(read_text(after))
    assert int(b["sigmask"], 16) == (1 << (signal.SIGHUP - 1)) | (1 << (signal.SIGWINCH - 1))
    assert a["sigmask"] == b["sigmask"]
    assert a["sigign"] == b["sigign"]
    assert int(a["sigign"], 16) & (1 << (signal.SIGUSR2 - 1))


def test_workload_default_mask_is_empty(h, mode, tmp):
    out = tmp / "info"
    r = h.run(["--"] + W(f"out {out}", "info"), mode=mode)
    assert r.rc == 0
    i = parse_info(read_text(out))
    assert int(i["sigmask"], 16) == 0
    # What init was started with: ours, less what subprocess restores (PIPE, XFSZ). Under
    # make, for one, signals 32 and 33 arrive ignored, and must stay so for the workload.
    own = int(re.search(r"^SigIgn:\s*([0-9a-f]+)", Path("/proc/self/status").read_text(),
                        re.M).group(1), 16)
    own &= ~((1 << (signal.SIGPIPE - 1)) | (1 << (signal.SIGXFSZ - 1)))
    assert int(i["sigign"], 16) == own


def test_workload_has_no_extra_fds(h, mode, tmp):
    out = tmp / "info"
    r = h.run(["-v", "--"] + W(f"out {out}", "info"), mode=mode, events=True)
    assert r.rc == 0
    assert parse_info(read_text(out))["fds"] == "0,1,2"


def test_workload_keeps_inherited_fds(h, mode, tmp):
    out = tmp / "info"
    rfd, wfd = os.pipe()
    os.set_inheritable(wfd, True)
    try:
        r = h.run(["--"] + W(f"out {out}", "info"), mode=mode, pass_fds=[wfd])
    finally:
        os.close(wfd)
        os.close(rfd)
    assert r.rc == 0
    assert parse_info(read_text(out))["fds"] == f"0,1,2,{wfd}"


def test_workload_runs_in_its_own_process_group(h, mode, tmp):
    out = tmp / "info"
    r = h.start(["--"] + W(f"out {out}", "info", "mark done", "sleep 30"), mode=mode)
    wait_for_line(out, "done")
    i = parse_info(read_text(out))
    assert i["pgid"] == i["pid"]
    r.signal(signal.SIGTERM)
    assert r.wait() == 143


def test_subreaper_mode_is_silent_and_reaps(h, tmp):
    pidf = tmp / "pids"
    r = h.start(["--"] + W(f"orphans 3 1 pidfile={pidf}", "mark forked", "sleep 2", "exit 0"),
                stdout=None)
    # "forked" comes once the workload has reaped the middle child that forked them (the
    # pidfile is written before it exits: a flake run read the ppid while it still lived)
    wait_until(lambda: "forked" in r.stdout().split(), what="the orphans' middle child gone")
    pids = [int(p) for p in read_text(pidf).split()]
    assert len(pids) == 3, pids
    # The orphans were reparented to init (the subreaper), not to pytest or the host's init.
    for pid in pids:
        st = proc_stat(pid)
        assert st is None or st[1] == r.pid, (pid, st)
    assert r.wait() == 0
    assert r.stderr() == ""
    assert all(gone(pid) for pid in pids)


def test_subreaper_flag_accepted(h, mode):
    r = h.run(["-s", "--"] + W("exit 5"), mode=mode)
    assert r.rc == 5
    r = h.run(["--subreaper", "--"] + W("exit 6"), mode=mode)
    assert r.rc == 6


# ---- events ------------------------------------------------------------------------------------
def test_events_started_exited(h, mode):
    r = h.run(["--"] + W("sleep 0.3", "exit 3"), mode=mode, events=True)
    assert r.rc == 3
    names = [e.name for e in r.events.events]
    assert names == ["started", "exited"], r.events.events
    st, ex = r.events.events
    assert int(st["pid"]) > 0
    assert ex["pid"] == st["pid"]
    assert ex["code"] == "3"
    assert "signal" not in ex.kv
    assert 250 <= int(ex["runtime_ms"]) < 10000
    if mode == "pid1":
        assert st["pid"] == "2"


def test_events_exited_by_signal(h, mode):
    r = h.run(["--"] + W("die TERM"), mode=mode, events=True)
    assert r.rc == 143
    ex = r.events.wait("exited")[0]
    assert ex["signal"] == "TERM"
    assert "code" not in ex.kv
    assert int(ex["runtime_ms"]) >= 0


def test_events_fd_not_leaked_and_closed_at_exit(h, mode):
    r = h.run(["--"] + W("exit 0"), mode=mode, events=True)
    assert r.rc == 0
    assert r.events.eof
    raw = r.events.raw.decode()
    assert raw.endswith("\n")
    for line in raw.splitlines():
        assert len(line) < 512


# ---- tini's flags and variables (issue 10 item 5) ------------------------------------------------
def test_no_arguments_prints_the_usage(h):
    r = h.run([])
    assert r.rc == 2
    assert r.stderr().startswith("usage: init [OPTIONS] [--] CMD [ARGS...]")
    assert "--restart" in r.stderr()


def test_tini_flags_accepted(h, mode, tmp):
    # a Dockerfile's `tini -s -g -w --` or `-p SIGKILL` starts unchanged
    r = h.run(["-s", "-g", "-w", "-p", "SIGKILL", "-e", "143", "--"] + W("exit 143"), mode=mode)
    assert r.rc == 0
    r = h.run(["-l"])
    assert r.rc == 0 and "corral" in r.stdout()
    # -w logs each orphan reaped, as -v does
    pidf = tmp / "pids"
    r = h.run(["-w", "--"] + W(f"orphans 1 0 pidfile={pidf}", "sleep 0.5", "exit 0"), mode=mode)
    assert r.rc == 0
    pid = int(read_text(pidf).split()[0])
    assert f"init: reaped orphan {pid} (exit 0)" in r.stderr()


def test_tini_variables(h, mode, tmp):
    pidf = tmp / "pids"
    r = h.run(["--"] + W(f"orphans 1 0 pidfile={pidf}", "sleep 0.5", "exit 0"), mode=mode,
              env={"TINI_VERBOSITY": "2", "TINI_SUBREAPER": "1"})
    assert r.rc == 0
    pid = int(read_text(pidf).split()[0])
    assert f"init: reaped orphan {pid} (exit 0)" in r.stderr()
    r = h.run(["--"] + W("exit 0"), mode=mode, env={"TINI_VERBOSITY": "lots"})
    assert r.rc == 2 and "TINI_VERBOSITY" in r.stderr()
    # TINI_KILL_PROCESS_GROUP: signals reach the workload's whole process group (as -g)
    rep = tmp / "rep"
    r = h.start(["--"] + W(f"trap USR1 report={rep}", "children 2", "mark ready",
                           "waitsig USR1 30", "exit 0"),
                mode=mode, env={"TINI_KILL_PROCESS_GROUP": "1"})
    wait_for_line(rep, "ready")
    r.signal(signal.SIGUSR1)
    wait_for_line(rep, "USR1", count=3)
    assert r.wait() == 0
