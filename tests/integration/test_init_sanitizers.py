"""A few init scenarios under ASan/UBSan (build/asan/init) and valgrind (build/test/init-vg):
correct results and no sanitizer report, no memory error, no definite leak."""
import signal

import pytest

from conftest import (ASAN_INIT, INIT_VG, SANITIZER_RE, VALGRIND, W, lines, need, read_text,
                      wait_for_line)

SCENARIOS = ["exit", "signal", "orphans", "restart", "grace", "exec-fail", "bad-option"]


def _scenario(h, tmp, name, mode, **kw):
    if name == "exit":
        r = h.run(["-v", "--"] + W("exit 3"), mode=mode, events=True, timeout=60, **kw)
        assert r.rc == 3
    elif name == "signal":
        rep = tmp / "rep"
        r = h.start(["-g", "-r", "HUP:USR2", "--"] + W(f"trap USR1,USR2 report={rep}",
                                                      "mark ready", "waitsig USR1 60",
                                                      "waitsig USR2 60", "exit 0"),
                    mode=mode, **kw)
        wait_for_line(rep, "ready", timeout=60)
        r.signal(signal.SIGUSR1)
        wait_for_line(rep, "USR1", timeout=30)
        r.signal(signal.SIGHUP)
        r.rc = r.wait(60)
        assert r.rc == 0
        assert lines(rep) == ["ready", "USR1", "USR2"]
    elif name == "orphans":
        r = h.run(["-v", "--"] + W("storm 200", "orphans 20 0.1", "sleep 0.5", "exit 0"),
                  mode=mode, timeout=90, **kw)
        assert r.rc == 0
    elif name == "restart":
        st = tmp / "st"
        r = h.run(["--restart", "on-failure", "--restart-delay", "20ms", "--max-restarts", "5",
                   "--"] + W(f"exit 1,TERM,0 state={st}"), mode=mode, events=True, timeout=60,
                  **kw)
        assert r.rc == 0
        assert len(r.events.named("started")) == 3
    elif name == "grace":
        r = h.run(["--grace", "300ms", "-v", "--"] + W("ignore TERM", "orphans 2 60",
                                                         "linger 60", "exit 0"),
                  mode=mode, timeout=60, **kw)
        assert r.rc == 0
    elif name == "exec-fail":
        r = h.run(["--", str(tmp / "missing")], mode=mode, events=True, timeout=60, **kw)
        assert r.rc == 127
    elif name == "bad-option":
        r = h.run(["--restart", "bogus", "--", "true"], mode=mode, timeout=60, **kw)
        assert r.rc == 2
    return r


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_asan(h, tmp, mode, scenario):
    need(ASAN_INIT)
    r = _scenario(h, tmp, scenario, mode, init=ASAN_INIT)
    err = r.stderr()
    assert not SANITIZER_RE.search(err), err
    assert r.rc != 98


@pytest.mark.parametrize("scenario", ["exit", "signal", "orphans", "restart", "grace",
                                      "exec-fail", "bad-option"])
def test_valgrind(h, tmp, scenario):
    need(INIT_VG)
    r = _scenario(h, tmp, scenario, "subreaper", init=INIT_VG, wrapper=VALGRIND)
    err = r.stderr()
    assert r.rc != 99, err
    assert "==" not in "".join(l[:2] for l in err.splitlines()), err


def test_valgrind_as_pid1(h, tmp):
    need(INIT_VG)
    r = _scenario(h, tmp, "orphans", "pid1", init=INIT_VG, wrapper=VALGRIND)
    assert r.rc != 99, r.stderr()
    assert "definitely lost" not in r.stderr()
