"""Appliance mode: build/supervisor as the PID 1 of a VM (issue 11), booted by tests/vm/run-in-vm.

The VM is tests/vm's (Debian's kernel under qemu TCG, the host's / read-only under a tmpfs
overlay); its job execs the supervisor, so it is the machine's PID 1, with a configuration
written here into the shared folder ($RUN_IN_VM_SHARE, /run/vm-share in the guest):
  db, web   containers over build/rootfs; web depends on db (so it stops first)
  orphans   in the machine's pid namespace: kills its own init, so its processes are handed
            to PID 1 and must be collected by it
  ctl       in the machine's pid namespace and mount namespace: records what it sees, waits
            for the orphans to be collected, then asks for the power action
The VM ends by itself: qemu runs with -no-reboot, so a poweroff and a reboot both end it, and
the kernel's last line says which. Skipped only when qemu cannot run here.
"""
import os
import re
import shlex
import tempfile
from pathlib import Path

import pytest

from test_vm import qemu_unusable, run_in_vm, TIMEOUT

ROOT = Path(__file__).resolve().parents[2]
SUPERVISOR = ROOT / "build" / "supervisor"
SVCTL = ROOT / "build" / "svctl"
ROOTFS = ROOT / "build" / "rootfs"
SHARE = "/run/vm-share"

pytestmark = pytest.mark.appliance

CONFIG = """\
[supervisor]
hostname = appliance
cgroup_root = corral
control_socket = /run/corral/control.sock
log_dir = /run/corral/logs

[service:db]
command = /bin/sh -c 'echo db up; exec sleep 3600'
rootfs = {rootfs}
priority = 10
stopwaitsecs = 10s

[service:web]
command = /bin/sh -c 'echo web up; exec sleep 3600'
rootfs = {rootfs}
depends_on = db
priority = 20

[service:orphans]
; its init dies: the shell and its sleeps are handed to the machine's PID 1, killed with the
; service's cgroup, and must be collected by PID 1 (no zombie with parent 1 may stay)
command = /bin/sh -c 'sleep 600 & echo $! > {share}/orphan.pid; kill -9 $PPID; exec sleep 600'
namespaces = ipc
autorestart = false
startsecs = 0
priority = 5

[service:ctl]
command = /bin/sh {share}/ctl.sh
namespaces = ipc
depends_on = web
autorestart = false
startsecs = 0
priority = 30
"""

# Runs in the machine's pid and mount namespaces; writes key=value lines to result.
CTL = """\
s={share}
r=$s/result
field() {{ awk -v k="$1:" '$1 == k {{ print $2 }}' /proc/$2/status 2>/dev/null; }}
{{
  echo "hostname=$(hostname)"
  echo "pid1_argv0=$(tr '\\0' '\\n' </proc/1/cmdline | head -1)"
  echo "lo_flags=$(cat /sys/class/net/lo/flags)"
  echo "mounts=$(awk '{{ print $2 ":" $3 }}' /proc/mounts | tr '\\n' ' ')"
  echo "subtree_control=$(cat /sys/fs/cgroup/cgroup.subtree_control)"
}} >$r
i=0
while [ ! -s $s/orphan.pid ] && [ $i -lt 600 ]; do i=$((i + 1)); sleep 0.05; done
o=$(cat $s/orphan.pid 2>/dev/null)
i=0
while [ -n "$o" ] && [ -e /proc/$o ] && [ $i -lt 600 ]; do i=$((i + 1)); sleep 0.05; done
st=$(field State $o)
printf 'orphan=%s\norphan_end=%s\n' "${{o:-none}}" "${{st:-collected}}" >>$r
z=0
for p in /proc/[0-9]*; do
  [ "$(field PPid ${{p#/proc/}})" = 1 ] && [ "$(field State ${{p#/proc/}})" = Z ] && z=$((z + 1))
done
echo "zombies_of_pid1=$z" >>$r
{svctl} -s /run/corral/control.sock status >$s/status 2>&1
echo "status_rc=$?" >>$r
{action}
echo "action_rc=$?" >>$r
"""


@pytest.fixture(scope="module")
def vm():
    reason = qemu_unusable()
    if reason:
        pytest.skip(f"qemu cannot run here: {reason}")
    for p in (SUPERVISOR, SVCTL, ROOTFS / "bin" / "sh"):
        assert p.exists(), f"{p} is missing (make test-build)"
    return run_in_vm


def boot(vm, d, action):
    """Boots the VM with the supervisor as PID 1; returns (run-in-vm result, result dict,
    console text)."""
    share = Path(d)
    (share / "app.ini").write_text(CONFIG.format(rootfs=ROOTFS, share=SHARE))
    (share / "ctl.sh").write_text(CTL.format(share=SHARE, svctl=SVCTL, action=action))
    console = share / "console.log"
    # The job's sh takes /dev/pts and /dev/shm away first (run-in-vm's guest mounted them),
    # then execs the supervisor: it is PID 1 and must mount them again.
    job = (f"umount /dev/pts /dev/shm && exec {shlex.quote(str(SUPERVISOR))} "
           f"-c {SHARE}/app.ini")
    r = vm(["--pid1", "--share", d, "--console", str(console), "--", "/bin/sh", "-c", job],
           timeout=max(TIMEOUT, 180), what=f"boot + supervisor as PID 1 ({action.split()[-1]})")
    res = {}
    text = (share / "result").read_text() if (share / "result").exists() else ""
    for line in text.splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            res[k] = v
    res["mounts"] = res.get("mounts", "").split()
    res["status"] = (share / "status").read_text() if (share / "status").exists() else ""
    con = console.read_text(errors="replace").replace("\r", "") if console.exists() else ""
    return r, res, con


def in_order(text, patterns):
    """Each pattern is found after the previous one; returns the first missing one, or None."""
    pos = 0
    for p in patterns:
        m = re.compile(p).search(text, pos)
        if not m:
            return p
        pos = m.end()
    return None


def check_machine(res, con, r):
    assert res, f"ctl recorded nothing; {r}\n{con[-4000:]}"
    assert res["hostname"] == "appliance", res
    assert res["pid1_argv0"] == str(SUPERVISOR), res
    assert int(res["lo_flags"], 16) & 1, res   # IFF_UP
    for m in ("/proc:proc", "/sys:sysfs", "/dev:devtmpfs", "/dev/pts:devpts", "/dev/shm:tmpfs",
              "/run:tmpfs", "/tmp:tmpfs", "/sys/fs/cgroup:cgroup2"):
        assert m in res["mounts"], (m, res["mounts"])
    assert "supervisor: mounted /dev/pts /dev/shm" in con, con[-4000:]
    for c in ("memory", "pids", "cpu"):
        assert c in res["subtree_control"].split(), res
    # The orphans were collected by PID 1 (gone, not zombies), and none is left.
    assert res["orphan"] != "none", res
    assert res["orphan_end"] == "collected", res
    assert res["zombies_of_pid1"] == "0", res
    assert res["status_rc"] == "0", res
    for name in ("db", "web"):
        assert re.search(rf"(?m)^{name}\s+RUNNING", res["status"]), res["status"]


STOP_STEPS = [
    r"supervisor: web: RUNNING -> STOPPING",      # web depends on db: it stops first
    r"supervisor: db: RUNNING -> STOPPING",
    r"supervisor: all services stopped",
    r"supervisor: {p}: sending SIGTERM to every process",
    r"supervisor: {p}: every process is gone \(\d+ ms\); syncing",
    r"supervisor: file systems: \d+ unmounted, \d+ remounted read-only",
    r"supervisor: {p}: {verb} now",
]


def test_poweroff_from_svctl(vm):
    """svctl poweroff: every service stops in dependency order, then every process, the file
    systems, and the kernel powers the machine off (qemu exits by itself, status 0)."""
    with tempfile.TemporaryDirectory(prefix="vm-appliance.") as d:
        r, res, con = boot(vm, d, f"{SVCTL} -s /run/corral/control.sock poweroff")
    check_machine(res, con, r)
    assert r.rc == 0, f"{r}\n{con[-4000:]}"
    assert r.out.rstrip().endswith("reboot: Power down"), r
    missing = in_order(con, [r"svctl poweroff: stopping all services, then poweroff"] +
                       [s.format(p="poweroff", verb="powering off") for s in STOP_STEPS] +
                       [r"reboot: Power down"])
    assert missing is None, f"console lacks, in order: {missing}\n{con[-4000:]}"


def test_ctrl_alt_del_reboots(vm):
    """SIGINT to PID 1 (what the kernel sends on ctrl-alt-del once PID 1 disabled CAD) stops
    everything in order and reboots (qemu -no-reboot exits by itself)."""
    with tempfile.TemporaryDirectory(prefix="vm-appliance.") as d:
        r, res, con = boot(vm, d, "kill -INT 1")
    check_machine(res, con, r)
    assert r.rc == 0, f"{r}\n{con[-4000:]}"
    assert r.out.rstrip().endswith("reboot: Restarting system"), r
    missing = in_order(con, [r"SIGINT: stopping all services, then reboot"] +
                       [s.format(p="reboot", verb="rebooting") for s in STOP_STEPS] +
                       [r"reboot: Restarting system"])
    assert missing is None, f"console lacks, in order: {missing}\n{con[-4000:]}"
