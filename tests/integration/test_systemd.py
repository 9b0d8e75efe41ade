"""corral.service under real systemd (issue 12): a Debian 12 root with systemd (tests/vm/mksysvm,
mmdebstrap, cached in build/sysvm) booted by tests/vm/run-in-vm with systemd as PID 1 on pure
cgroup v2. In the guest, tests/vm/sysjob.sh installs the .deb that `make deb` built and drives
the unit with systemctl; it writes what it saw to the shared folder and this test judges it:
  - the install enables corral.service and starts it with the example services.ini
  - `systemctl start corral` returns once every service is RUNNING (Type=notify, READY=1)
  - Delegate=yes: the supervisor in corral.service/corral/supervisor, each service in
    corral.service/corral/svc-NAME, nothing in corral.service itself or at /sys/fs/cgroup/corral
  - `systemctl reload` starts a service added to the file
  - the watchdog (WatchdogSec=3s) kills a SIGSTOPped supervisor and systemd starts it again
  - `systemctl stop` and `systemctl kill -s KILL` then `start` leave nothing behind
  - the bench: `systemctl start corral` with N services against one `systemctl start` of a
    target of N units (Type=exec, /bin/sleep), same VM, three rounds each

Slow (a systemd boot and 100 services under TCG: minutes): `make test-systemd`, not `make
test` (marker systemd_vm). Skipped only when qemu cannot run here."""
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from test_vm import qemu_unusable, run_in_vm

ROOT = Path(__file__).resolve().parents[2]
SYSVM = ROOT / "build" / "sysvm"
N = int(os.environ.get("CORRAL_SYSTEMD_N", "100"))
TIMEOUT = float(os.environ.get("CORRAL_SYSTEMD_TIMEOUT", "1200"))

pytestmark = [pytest.mark.systemd_vm, pytest.mark.time_limit(2 * TIMEOUT + 900)]


def services_ini(n):
    text = ("[supervisor]\ncgroup_root = corral\nlog_dir = /var/log/corral\n\n")
    for i in range(1, n + 1):
        text += f"[program:b{i}]\ncommand = /bin/sleep infinity\nstartsecs = 0\n\n"
    return text


def results(path):
    out = {}
    for line in Path(path).read_text().splitlines():
        name, _, rest = line.partition(" ")
        out.setdefault(name, []).append(rest.split(" "))
    return out


@pytest.fixture(scope="module")
def deb():
    debs = sorted((ROOT / "build").glob("corral_*.deb"), key=os.path.getmtime)
    if not debs:
        pytest.fail("no build/corral_*.deb: run `make deb` first (make test-systemd does)")
    return debs[-1]


def test_corral_service_under_systemd(deb, request):
    why = qemu_unusable()
    if why:
        pytest.skip(why)
    r = subprocess.run([str(ROOT / "tests/vm/mksysvm"), str(SYSVM)], capture_output=True,
                       text=True)
    assert r.returncode == 0, f"building the systemd root failed:\n{r.stderr[-3000:]}"
    with tempfile.TemporaryDirectory(prefix="vm-systemd.") as d:
        share = Path(d)
        shutil.copy(deb, share / "corral.deb")
        shutil.copy(ROOT / "tests/vm/sysjob.sh", share / "sysjob")
        (share / "services.ini").write_text(services_ini(N))
        (share / "n").write_text(f"{N}\n")
        res = run_in_vm(["--root", SYSVM / "root", "--pid1", "--share", share, "-C", "/",
                         "--mem", "2G", "--", "/lib/systemd/systemd"], timeout=TIMEOUT,
                        what="systemd VM")
        # what the VM wrote, kept for a look after the run (build/ is not in git)
        shutil.rmtree(SYSVM / "last-share", ignore_errors=True)
        shutil.copytree(share, SYSVM / "last-share", ignore=shutil.ignore_patterns("*.deb"))
        got = results(share / "results") if (share / "results").exists() else {}
        extra = {f: (share / f).read_text()[-3000:] for f in ("stderr", "dpkg.log",
                 "status-install.txt", "journal-install.txt", "journal-restart.txt",
                 "journal-watchdog.txt") if (share / f).exists()}
        assert "done" in got, (res, got, extra)
    one = {k: v[0] for k, v in got.items()}
    ctx = (got, extra)
    assert one["dpkg"] == ["0"], ctx
    # enabled and started on install (dh_installsystemd), with the example's one service
    assert one["installed_enabled"] == ["enabled"] and one["installed_active"] == ["active"], ctx
    assert one["installed_running"] == ["1"], ctx
    assert one["start"][0] == "0", ctx
    # Type=notify: every service is RUNNING when `systemctl start` returns
    assert one["running_after_start"] == [str(N)], ctx
    assert " ".join(one["status_line"]).startswith(f"{N} running, 0 failed"), ctx
    assert one["supervisor_cg"] == [one["mainpid"][0], ""], ctx
    assert one["svc_cgroups"] == [str(N)], ctx
    assert one["unit_top_procs"] == ["0"], ctx        # no process in corral.service itself
    assert one["outside_root"] == ["0"], ctx          # nothing at /sys/fs/cgroup/corral
    assert one["sleeps_in_unit"] == [str(N)], ctx
    assert one["reload"] == ["0"] and one["added_running"] == ["0"], ctx
    assert one["reload_mainpid"] == one["mainpid"], ctx   # a reload is no restart
    assert one["restart"] == ["0"], ctx
    assert one["watchdog_restart"][0] == "0", ctx
    assert one["watchdog_result"] == ["1"], ctx       # "Failed with result 'watchdog'" once
    assert one["watchdog_newpid"] == ["yes"], ctx
    assert one["watchdog_running"][0] == "0", ctx
    assert one["watchdog_sleeps"] == [str(N + 1)], ctx   # the old services did not stay
    assert one["stop"][0] == "0", ctx
    assert one["stop_cgroup"] == ["0"] and one["stop_sleeps"] == ["0"], ctx
    assert one["killed_start"] == ["0"], ctx
    assert one["killed_sleeps"] == ["0", str(N + 1)], ctx
    assert one["killed_stop_sleeps"] == ["0"] and one["killed_stop_cgroup"] == ["0"], ctx
    rows = []
    for (rnd, ms_c, up_c), (_, ms_s, up_s) in zip(got["bench_corral"], got["bench_systemd"]):
        assert up_c == str(N) and up_s == str(N), ctx
        rows.append((int(ms_c), int(ms_s)))
    report = [f"systemd VM (TCG, {N} services): start to ready, ms per round"]
    report += [f"  corral.service {c:6d}   {N} systemd units {s:6d}   ratio {c / s:.2f}"
               for c, s in rows]
    report.append(f"  stop {one['stop'][1]} ms; watchdog restart {one['watchdog_restart'][1]} ms"
                  f" after SIGSTOP (WatchdogSec=3s)")
    print("\n".join(report))
    (ROOT / "build" / "bench").mkdir(parents=True, exist_ok=True)
    (ROOT / "build" / "bench" / "systemd-vm.txt").write_text("\n".join(report) + "\n")
