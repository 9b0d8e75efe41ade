"""init: signal forwarding, -g, --rewrite, -e, -p (pdeathsig)."""
import os
import signal
import time

import pytest

from conftest import INIT, W, alive, lines, read_text, wait_for_line, wait_until

FORWARDED = ["TERM", "INT", "HUP", "QUIT", "USR1", "USR2", "WINCH", "CONT", "ALRM", "PWR",
             "TSTP", "TTIN", "TTOU", "SEGV", "ABRT", "SYS"]


def sig(name):
    return signal.Signals["SIG" + name]


@pytest.mark.parametrize("name", FORWARDED)
def test_signal_is_forwarded(h, mode, tmp, name):
    rep = tmp / "rep"
    r = h.start(["--"] + W(f"trap {name} report={rep}", "mark ready", f"waitsig {name} 30",
                           "exit 5"), mode=mode)
    wait_for_line(rep, "ready")
    r.signal(sig(name))
    wait_for_line(rep, name)
    assert r.wait() == 5, r.stderr()
    assert lines(rep) == ["ready", name]


def test_several_signals_in_a_row_all_arrive(h, mode, tmp):
    rep = tmp / "rep"
    names = ["USR1", "USR2", "HUP", "WINCH", "ALRM"]
    r = h.start(["--"] + W(f"trap {','.join(names)} report={rep}", "mark ready",
                           "waitsig ALRM 30", "exit 0"), mode=mode)
    wait_for_line(rep, "ready")
    for n in names:
        r.signal(sig(n))
        wait_for_line(rep, n)  # standard signals do not queue: one at a time
    assert r.wait() == 0
    assert lines(rep) == ["ready"] + names


def test_sigchld_is_not_forwarded(h, mode, tmp):
    rep = tmp / "rep"
    r = h.start(["--"] + W(f"trap CHLD,USR1 report={rep}", "mark ready", "waitsig USR1 30",
                           "exit 0"), mode=mode)
    wait_for_line(rep, "ready")
    r.signal(signal.SIGCHLD)
    time.sleep(0.2)
    r.signal(signal.SIGUSR1)
    wait_for_line(rep, "USR1")
    assert r.wait() == 0
    assert "CHLD" not in lines(rep)


def test_term_kills_default_workload_143(h, mode):
    r = h.start(["--"] + W("sleep 60"), mode=mode)
    r.workload()
    r.signal(signal.SIGTERM)
    assert r.wait() == 143


def test_term_ignoring_workload_keeps_running(h, mode, tmp):
    rep = tmp / "rep"
    r = h.start(["--"] + W("ignore TERM", f"trap USR1 report={rep}", "mark ready",
                           "waitsig USR1 30", "exit 4"), mode=mode)
    wait_for_line(rep, "ready")
    r.signal(signal.SIGTERM)
    time.sleep(0.3)
    assert r.running()
    r.signal(signal.SIGUSR1)
    assert r.wait() == 4


# ---- -g ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("opt", ["-g", "--group"])
def test_group_forwards_to_the_whole_group(h, mode, tmp, opt):
    rep = tmp / "rep"
    r = h.start([opt, "--"] + W(f"trap USR1 report={rep}", "children 3", "mark ready",
                                "waitsig USR1 30", "exit 0"), mode=mode)
    wait_for_line(rep, "ready")
    r.signal(signal.SIGUSR1)
    wait_for_line(rep, "USR1", count=4)
    assert r.wait() == 0


def test_without_group_only_the_workload_gets_it(h, mode, tmp):
    rep = tmp / "rep"
    r = h.start(["--"] + W(f"trap USR1 report={rep}", "children 3", "mark ready",
                           "waitsig USR1 30", "sleep 0.5", "exit 0"), mode=mode)
    wait_for_line(rep, "ready")
    r.signal(signal.SIGUSR1)
    assert r.wait() == 0
    assert lines(rep).count("USR1") == 1


def test_group_term_reaches_children(h, mode, tmp):
    pidf = tmp / "pids"
    r = h.start(["-g", "--grace", "30s", "--"] + W("children 3", f"pidfile {pidf}", "sleep 60"),
                mode=mode)
    wait_until(lambda: read_text(pidf), what="pidfile")
    kids = [c for c in _all_below(r.pid)]
    assert len(kids) >= 4
    r.signal(signal.SIGTERM)
    assert r.wait() == 143
    # All got TERM at once: no grace period (30 s) was needed.
    assert r.elapsed < 20


def _all_below(pid):
    from conftest import descendants
    return descendants(pid)


# ---- --rewrite -----------------------------------------------------------------------------------
@pytest.mark.parametrize("opt", ["-r", "--rewrite"])
def test_rewrite(h, mode, tmp, opt):
    rep = tmp / "rep"
    r = h.start([opt, "TERM:QUIT", "--"] + W(f"trap TERM,QUIT report={rep}", "mark ready",
                                            "waitsig QUIT 30", "exit 0"), mode=mode)
    wait_for_line(rep, "ready")
    r.signal(signal.SIGTERM)
    wait_for_line(rep, "QUIT")
    assert r.wait() == 0
    assert lines(rep) == ["ready", "QUIT"]


def test_rewrite_repeatable_and_numeric(h, mode, tmp):
    rep = tmp / "rep"
    r = h.start(["-r", "USR1:USR2", "-r", f"{int(signal.SIGHUP)}:{int(signal.SIGWINCH)}", "--"]
                + W(f"trap USR1,USR2,HUP,WINCH report={rep}", "mark ready", "waitsig WINCH 30",
                    "waitsig USR2 30", "exit 0"), mode=mode)
    wait_for_line(rep, "ready")
    r.signal(signal.SIGUSR1)
    wait_for_line(rep, "USR2")
    r.signal(signal.SIGHUP)
    wait_for_line(rep, "WINCH")
    assert r.wait() == 0
    assert lines(rep) == ["ready", "USR2", "WINCH"]


def test_rewrite_env_list(h, mode, tmp):
    rep = tmp / "rep"
    r = h.start(["--"] + W(f"trap TERM,INT,QUIT report={rep}", "mark ready", "waitsig QUIT 30",
                           "waitsig QUIT 30", "exit 0"),
                mode=mode, env={"INIT_REWRITE": "TERM:QUIT,INT:QUIT"})
    wait_for_line(rep, "ready")
    r.signal(signal.SIGTERM)
    wait_for_line(rep, "QUIT")
    r.signal(signal.SIGINT)
    wait_for_line(rep, "QUIT", count=2)
    assert r.wait() == 0
    assert lines(rep) == ["ready", "QUIT", "QUIT"]


# ---- -e --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("opt", ["-e", "--remap-exit"])
def test_remap_exit(h, mode, opt):
    r = h.start([opt, "143", "--"] + W("sleep 60"), mode=mode)
    r.workload()
    r.signal(signal.SIGTERM)
    assert r.wait() == 0


def test_remap_exit_repeatable_and_others_kept(h, mode):
    assert h.run(["-e", "3", "-e", "4", "--"] + W("exit 4"), mode=mode).rc == 0
    assert h.run(["-e", "3", "-e", "4", "--"] + W("exit 3"), mode=mode).rc == 0
    assert h.run(["-e", "3", "-e", "4", "--"] + W("exit 5"), mode=mode).rc == 5


# ---- -p --------------------------------------------------------------------------------------------
def pid_to(pidf):
    """Shell: the last background job's pid into pidf, whole or not at all (a rename)."""
    return f'echo $! > {pidf}.tmp && mv {pidf}.tmp {pidf}'


def kill_the_parent_shell(h, p, rep, pidf, sig):
    """Once the workload reported "ready" in rep, SIGKILLs the shell p that started init in the
    background (init's pid in pidf); waits for the workload to report sig and for init to exit.
    init is then our child (pytest is a subreaper): returns its wait status.
    The shell may write pidf after the workload is ready: it writes another file and renames
    it (pid_to), and the pid is read once the file holds a whole line."""
    wait_for_line(rep, "ready")
    text = wait_until(lambda: (t := read_text(pidf)).endswith("\n") and t,
                      what=f"init's pid in {pidf}")
    init_pid = int(text)
    h.track(init_pid)
    os.kill(p.pid, signal.SIGKILL)
    p.wait(10)
    wait_for_line(rep, sig)
    wait_until(lambda: not alive(init_pid), what="init to exit")
    _, st = os.waitpid(init_pid, 0)
    return st


@pytest.mark.parametrize("opt", ["-p", "--pdeathsig"])
def test_pdeathsig(h, tmp, opt):
    rep = tmp / "rep"
    pidf = tmp / "init.pid"
    # A parent shell starts init in the background and waits; when the shell dies, init gets
    # USR1 from the kernel and forwards it to the workload.
    script = f'echo $$ > {pidf}.sh; "$@" & {pid_to(pidf)}; wait'
    p, _, err = h.popen(["/bin/sh", "-c", script, "sh", INIT, opt, "USR1", "--"]
                        + W(f"trap USR1 report={rep}", "mark ready", "waitsig USR1 30",
                            "exit 6"))
    st = kill_the_parent_shell(h, p, rep, pidf, "USR1")
    assert os.waitstatus_to_exitcode(st) == 6


def test_pdeathsig_env(h, tmp):
    rep = tmp / "rep"
    pidf = tmp / "init.pid"
    script = f'"$@" & {pid_to(pidf)}; wait'
    p, _, err = h.popen(["/bin/sh", "-c", script, "sh", INIT, "--"]
                        + W(f"trap HUP report={rep}", "mark ready", "waitsig HUP 30", "exit 0"),
                        env={"INIT_PDEATHSIG": "HUP"})
    kill_the_parent_shell(h, p, rep, pidf, "HUP")


def test_fault_signals_sent_with_kill_are_forwarded(h, mode, tmp):
    """Fault signals sent with kill() are forwarded (the kernel did not raise them for init)."""
    rep = tmp / "rep"
    r = h.start(["--"] + W(f"trap SEGV,BUS,FPE,ILL,TRAP report={rep}", "mark ready",
                           "waitsig TRAP 30", "exit 0"), mode=mode)
    wait_for_line(rep, "ready")
    for n in ["SEGV", "BUS", "FPE", "ILL", "TRAP"]:
        r.signal(sig(n))
        wait_for_line(rep, n)
    assert r.wait() == 0
