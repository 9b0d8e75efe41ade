"""init: restart policies, backoff, give-up, stop signals during a run or a restart wait.

Timing checks use the arrival times of event lines and the delay_ms init announces, with
generous bounds: they check order and growth, not exact timing."""
import signal
import time

import pytest

from conftest import W, read_text, wait_for_line

FAST = ["--restart-delay", "50ms", "--restart-delay-max", "200ms"]


def names(r):
    return [e.name for e in r.events.events]


@pytest.mark.parametrize("policy", ["no", "false"])
def test_policy_no(h, mode, policy):
    r = h.run(["--restart", policy] + FAST + ["--"] + W("exit 3"), mode=mode, events=True)
    assert r.rc == 3
    assert names(r) == ["started", "exited"]


def test_default_policy_is_no(h, mode):
    r = h.run(["--"] + W("exit 1"), mode=mode, events=True)
    assert r.rc == 1
    assert names(r) == ["started", "exited"]


@pytest.mark.parametrize("policy", ["on-failure", "unexpected"])
def test_on_failure_restarts_until_success(h, mode, tmp, policy):
    st = tmp / "state"
    r = h.run(["--restart", policy] + FAST + ["--"] + W(f"exit 3,TERM,0 state={st}"),
              mode=mode, events=True)
    assert r.rc == 0
    assert names(r) == ["started", "exited", "restarting", "started", "exited", "restarting",
                        "started", "exited"]
    ex = r.events.named("exited")
    assert ex[0]["code"] == "3"
    assert ex[1]["signal"] == "TERM"
    assert ex[2]["code"] == "0"
    assert [e["attempt"] for e in r.events.named("restarting")] == ["1", "2"]
    assert len(read_text(st).split()) == 3
    # Each run has its own pid.
    pids = [e["pid"] for e in r.events.named("started")]
    assert len(set(pids)) == 3


def test_on_failure_exit_codes(h, mode, tmp):
    st = tmp / "state"
    r = h.run(["--restart", "on-failure", "--exit-codes", "0,2"] + FAST + ["--"]
              + W(f"exit 1,2 state={st}"), mode=mode, events=True)
    assert r.rc == 2
    assert len(r.events.named("started")) == 2


def test_on_failure_exit_codes_env(h, mode, tmp):
    st = tmp / "state"
    r = h.run(["--restart", "on-failure"] + FAST + ["--"] + W(f"exit 1,7 state={st}"),
              mode=mode, events=True, env={"INIT_EXIT_CODES": "0,7"})
    assert r.rc == 7
    assert len(r.events.named("started")) == 2


def test_on_failure_signal_restarts_even_if_code_listed(h, mode, tmp):
    st = tmp / "state"
    # 143 is an "expected" code, but a death by TERM is a signal, not exit code 143.
    r = h.run(["--restart", "on-failure", "--exit-codes", "0,143"] + FAST + ["--"]
              + W(f"exit TERM,143 state={st}"), mode=mode, events=True)
    assert r.rc == 143
    assert len(r.events.named("started")) == 2


@pytest.mark.parametrize("policy", ["always", "true"])
def test_always_restarts_on_success_too(h, mode, policy):
    r = h.run(["--restart", policy, "--max-restarts", "3"] + FAST + ["--"] + W("exit 0"),
              mode=mode, events=True)
    assert r.rc == 0
    assert len(r.events.named("started")) == 4
    g = r.events.wait("gave-up")[0]
    assert g["code"] == "0"
    assert g["restarts"] == "3"
    assert names(r)[-1] == "gave-up"


def test_restart_env(h, mode):
    r = h.run(["--"] + W("exit 5"), mode=mode, events=True,
              env={"INIT_RESTART": "always", "INIT_MAX_RESTARTS": "1",
                   "INIT_RESTART_DELAY": "50ms"})
    assert r.rc == 5
    assert len(r.events.named("started")) == 2
    assert r.events.named("gave-up")[0]["restarts"] == "1"


def test_max_restarts_gives_up_with_workload_status(h, mode):
    r = h.run(["--restart", "on-failure", "--max-restarts", "2", "--restart-window", "1h"] + FAST
              + ["--"] + W("exit 4"), mode=mode, events=True)
    assert r.rc == 4
    assert names(r) == ["started", "exited", "restarting", "started", "exited", "restarting",
                        "started", "exited", "gave-up"]
    g = r.events.named("gave-up")[0]
    assert (g["code"], g["restarts"]) == ("4", "2")


def test_max_restarts_gave_up_by_signal(h, mode):
    r = h.run(["--restart", "always", "--max-restarts", "1"] + FAST + ["--"] + W("die TERM"),
              mode=mode, events=True)
    assert r.rc == 143
    assert r.events.named("gave-up")[0]["restarts"] == "1"


def test_startretries_gives_up_on_runs_shorter_than_startsecs(h, mode):
    """supervisord's start check (what `export kube` gives init from a service's keys): more
    than --startretries runs in a row shorter than --startsecs end the restarts."""
    r = h.run(["--restart", "always", "--startsecs", "10s", "--startretries", "2"] + FAST
              + ["--"] + W("exit 5"), mode=mode, events=True)
    assert r.rc == 5
    assert names(r) == ["started", "exited", "restarting", "started", "exited", "restarting",
                        "started", "exited", "gave-up"]
    assert "exited too quickly 3 times in a row" in r.events.named("gave-up")[0].reason


def test_startretries_counts_only_short_runs(h, mode, tmp):
    """Runs longer than startsecs are not failed starts: with --startretries 0 init still
    restarts each of them (the env spellings, as a pod spec's env gives them)."""
    st = tmp / "state"
    r = h.run(["--restart", "on-failure"] + FAST + ["--"]
              + W("sleep 0.3", f"exit 4,4,0 state={st}"), mode=mode, events=True, timeout=30,
              env={"INIT_STARTSECS": "100ms", "INIT_STARTRETRIES": "0"})
    assert r.rc == 0 and not r.events.named("gave-up")
    assert len(r.events.named("restarting")) == 2


def test_restart_window_forgets_old_restarts(h, mode, tmp):
    st = tmp / "state"
    # Each run lasts 0.5 s, longer than the 300 ms window: there is never more than one
    # restart within the window, so init never gives up; the 4th run succeeds.
    r = h.run(["--restart", "on-failure", "--max-restarts", "1", "--restart-window", "300ms"]
              + FAST + ["--"] + W("sleep 0.5", f"exit 4,4,4,0 state={st}"),
              mode=mode, events=True, timeout=30)
    assert r.rc == 0
    assert not r.events.named("gave-up")
    assert len(r.events.named("restarting")) == 3


def test_backoff_grows_and_is_capped(h, mode):
    stamps = h.tmp / "stamps"
    r = h.run(["--restart", "always", "--restart-delay", "100ms", "--restart-delay-max", "400ms",
               "--max-restarts", "5", "--"] + W(f"out {stamps}", "stamp", "exit 1"), mode=mode,
              events=True, timeout=30)
    assert r.rc == 1
    rs = r.events.named("restarting")
    assert [e["attempt"] for e in rs] == ["1", "2", "3", "4", "5"]
    delays = [int(e["delay_ms"]) for e in rs]
    nominal = [100, 200, 400, 400, 400]
    for d, n in zip(delays, nominal):
        assert 0.8 * n - 1 <= d <= n, (delays, nominal)
    # The run lasts at least the announced delays together (the workload itself exits at
    # once), and each start comes at least its delay after the one before. Each run stamps
    # its own start (CLOCK_MONOTONIC, the same clock as ours): the test's reader thread stamps
    # lines only when it reads them, and a loaded machine that kept it from reading one line
    # at once made a gap look shorter than it was (make flake-check).
    assert r.elapsed * 1000 >= sum(delays) - 20 * len(delays), (r.elapsed, delays)
    starts = [float(x) for x in stamps.read_text().split()]
    assert len(starts) == 6, starts
    for i, d in enumerate(delays):
        gap = (starts[i + 1] - starts[i]) * 1000
        assert d - 2 <= gap < d + 3000, (i, gap, delays)


def test_backoff_jitter_varies(h, mode):
    r = h.run(["--restart", "always", "--restart-delay", "50ms", "--restart-delay-max", "50ms",
               "--max-restarts", "8", "--"] + W("exit 1"), mode=mode, events=True, timeout=30)
    delays = [int(e["delay_ms"]) for e in r.events.named("restarting")]
    assert len(delays) == 8
    assert all(40 <= d <= 50 for d in delays), delays
    assert len(set(delays)) > 1, f"no jitter: {delays}"


def test_backoff_first_delay_below_100ms_then_doubles_from_100ms(h, mode):
    r = h.run(["--restart", "always", "--restart-delay", "20ms", "--restart-delay-max", "10s",
               "--max-restarts", "3", "--"] + W("exit 1"), mode=mode, events=True, timeout=30)
    delays = [int(e["delay_ms"]) for e in r.events.named("restarting")]
    # d(1) = 20, d(2) = max(20, 100) * 2 = 200, d(3) = 400 (each minus up to 20 %).
    for d, n in zip(delays, [20, 200, 400]):
        assert 0.8 * n - 1 <= d <= n, delays


def test_backoff_resets_after_a_long_run(h, mode):
    r = h.run(["--restart", "always", "--restart-delay", "100ms", "--restart-delay-max", "10s",
               "--restart-reset-after", "300ms", "--max-restarts", "3", "--"]
              + W("sleep 0.5", "exit 1"), mode=mode, events=True, timeout=30)
    delays = [int(e["delay_ms"]) for e in r.events.named("restarting")]
    assert len(delays) == 3
    # Every run lasted longer than reset-after: each restart is a first one again.
    assert all(79 <= d <= 100 for d in delays), delays


def test_backoff_reset_env(h, mode):
    r = h.run(["--restart", "always", "--max-restarts", "2", "--"] + W("sleep 0.4", "exit 1"),
              mode=mode, events=True, timeout=30,
              env={"INIT_RESTART_DELAY": "100ms", "INIT_RESTART_DELAY_MAX": "10s",
                   "INIT_RESTART_RESET_AFTER": "200ms", "INIT_RESTART_WINDOW": "1h"})
    delays = [int(e["delay_ms"]) for e in r.events.named("restarting")]
    assert len(delays) == 2 and all(79 <= d <= 100 for d in delays), delays


@pytest.mark.parametrize("stop", ["TERM", "INT"])
def test_stop_signal_during_backoff_exits_without_restart(h, mode, stop):
    r = h.start(["--restart", "always", "--restart-delay", "30s", "--"] + W("exit 1"),
                mode=mode, events=True)
    r.events.wait("restarting")
    t0 = time.monotonic()
    r.signal(signal.Signals["SIG" + stop])
    r.wait(20)
    assert time.monotonic() - t0 < 10
    assert len(r.events.named("started")) == 1


@pytest.mark.parametrize("stop", ["TERM", "INT"])
def test_stop_signal_while_running_prevents_restart(h, mode, tmp, stop):
    rep = tmp / "rep"
    r = h.start(["--restart", "always"] + FAST + ["--"]
                + W(f"trap {stop} report={rep} exit=0", "mark ready", "sleep 60"),
                mode=mode, events=True)
    wait_for_line(rep, "ready")
    r.signal(signal.Signals["SIG" + stop])
    assert r.wait(20) == 0
    assert read_text(rep).splitlines() == ["ready", stop]
    assert len(r.events.named("started")) == 1
    assert not r.events.named("restarting")


def test_other_signal_does_not_stop_restarts(h, mode, tmp):
    st = tmp / "state"
    rep = tmp / "rep"
    r = h.start(["--restart", "always", "--max-restarts", "1"] + FAST + ["--"]
                + W(f"trap USR1 report={rep} exit=9", "mark ready", f"exit 0 state={st} after=60"),
                mode=mode, events=True)
    wait_for_line(rep, "ready")
    r.signal(signal.SIGUSR1)
    r.events.wait("started", count=2)
    r.signal(signal.SIGTERM)
    r.wait(20)
    assert r.events.named("exited")[0]["code"] == "9"


def test_restarted_workload_inherits_clean_state(h, mode, tmp):
    st, info = tmp / "state", tmp / "info"
    r = h.run(["--restart", "on-failure"] + FAST + ["--"]
              + W(f"out {info}", "info", f"exit 1,0 state={st}"), mode=mode, events=True)
    assert r.rc == 0
    blocks = read_text(info).split("\nfg=")[:-1]
    assert len(blocks) == 2
    for b in blocks:
        assert "sigmask=0000000000000000" in b
        assert "fds=0,1,2\n" in b
