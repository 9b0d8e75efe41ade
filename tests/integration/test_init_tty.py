"""init on a terminal (a pseudo-terminal the test holds the master of).

init is started as the session leader's process via `setsid -c`, so its group is the
terminal's foreground group, as under an interactive shell. ^Z is checked only in subreaper
mode: the doc says init stops itself only when it is not PID 1."""
import os
import signal
import time

from conftest import W, parse_info, read_text, state, wait_for_line, wait_until


def test_workload_is_the_foreground_group(h, mode, tmp):
    info = tmp / "info"
    r = h.pty_start(["--"] + W(f"out {info}", "info", "mark done", "sleep 60"), mode=mode)
    wait_for_line(info, "done")
    i = parse_info(read_text(info))
    assert i["tty"] == "1"
    assert i["fg"] == "1", i
    assert i["pgid"] == i["pid"]
    r.signal(signal.SIGTERM)
    assert r.wait() == 143


def test_ctrl_c_reaches_the_workload_exit_130(h, mode, tmp):
    rep = tmp / "rep"
    r = h.pty_start(["--"] + W(f"out {rep}", "mark ready", "sleep 60"), mode=mode)
    wait_for_line(rep, "ready")
    r.pty.write(b"\x03")
    assert r.wait() == 130


def test_ctrl_c_trapped_by_workload(h, mode, tmp):
    rep = tmp / "rep"
    r = h.pty_start(["--"] + W(f"trap INT report={rep}", "mark ready", "waitsig INT 30",
                               "exit 0"), mode=mode)
    wait_for_line(rep, "ready")
    r.pty.write(b"\x03")
    wait_for_line(rep, "INT")
    assert r.wait() == 0
    # Only the foreground group got it, and only once: init did not forward a second copy.
    time.sleep(0.1)
    assert read_text(rep).splitlines() == ["ready", "INT"]


def test_workload_output_reaches_the_terminal(h, mode):
    r = h.pty_start(["--"] + W("mark hello-from-workload", "exit 0"), mode=mode)
    assert r.wait() == 0
    r.pty.expect(rb"hello-from-workload")


def test_ctrl_z_stops_init_and_cont_resumes(h, tmp):
    rep, info = tmp / "rep", tmp / "info"
    r = h.pty_start(["--"] + W(f"trap CONT report={rep}", "mark ready", "waitsig CONT 60",
                               f"out {info}", "info", "exit 7"))
    wait_for_line(rep, "ready")
    wl = r.workload()
    r.pty.write(b"\x1a")
    # The workload stops on TSTP; init (not PID 1) stops itself so a shell would regain the
    # terminal.
    wait_until(lambda: state(wl) == "T", what="the workload to stop")
    wait_until(lambda: state(r.pid) == "T", what="init to stop itself")
    # Like a shell's `fg`: give init the terminal back and continue it.
    os.kill(r.pid, signal.SIGCONT)
    wait_for_line(rep, "CONT")
    assert r.wait() == 7
    i = parse_info(read_text(info))
    assert i["fg"] == "1", "init did not give the terminal back to the workload"


def test_ctrl_z_as_pid1_does_not_stop_init(h, tmp):
    rep = tmp / "rep"
    r = h.pty_start(["--"] + W(f"out {rep}", "mark ready", "sleep 60"), mode="pid1")
    wait_for_line(rep, "ready")
    wl = r.workload()
    r.pty.write(b"\x1a")
    wait_until(lambda: state(wl) == "T", what="the workload to stop")
    time.sleep(0.3)
    assert state(r.pid) != "T"
    r.signal(signal.SIGCONT)
    r.signal(signal.SIGTERM)
    assert r.wait() == 143


def test_background_init_does_not_take_the_terminal(h, tmp):
    """init started in a background job (not the foreground group) leaves the terminal alone."""
    from conftest import INIT, Pty
    info = tmp / "info"
    t = Pty()
    h.fds.append(t)
    inner = " ".join([str(INIT), "--"] + W(f"out {info}", "info"))
    # sh -m: job control, so the & job gets its own (background) process group.
    p, _, _ = h.popen(["setsid", "-c", "/bin/sh", "-m", "-c", f"{inner} & wait $!; echo rc=$?"],
                      stdin=t.slave, stdout=t.slave, stderr=t.slave)
    os.close(t.slave)
    t.slave = None
    t.expect(rb"rc=0")
    assert p.wait(10) == 0
    i = parse_info(read_text(info))
    assert i["tty"] == "1"
    assert i["fg"] == "0", i
