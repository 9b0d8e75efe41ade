"""Appliance mode: build/supervisor as the PID 1 of a VM (issue 11), booted by tests/vm/run-in-vm.

The VM is tests/vm's (Debian's kernel under qemu TCG, the host's / read-only under a tmpfs
overlay); its job execs the supervisor, so it is the machine's PID 1, with a configuration
written here into the shared folder ($RUN_IN_VM_SHARE, /run/vm-share in the guest):
  db, web   containers over build/rootfs; web depends on db (so it stops first)
  orphans   in the machine's pid namespace: kills its own init, so its processes are handed
            to PID 1 and must be collected by it
  ctl       in the machine's pid namespace and mount namespace: records what it sees, waits
            for the orphans to be collected, then asks for the power action (or says it is
            ready for the test's ctrl-alt-del)
ctrl-alt-del is the real key press (qemu's monitor, sendkey). The VM ends by itself: qemu runs with -no-reboot, so a poweroff and a reboot both end it, and
the kernel's last line says which. Skipped only when qemu cannot run here.

The last tests boot `make appliance`'s own kernel and initramfs (conf/appliance.ini) with
nothing else, as `make appliance-run` does: its net service configures eth0 by qemu's DHCP, its
web service answers the host on a forwarded port of 127.0.0.1, and `svctl poweroff` typed at
its console or ctrl-alt-del (monitor) ends qemu after the stop sequence.
"""
import os
import re
import shlex
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import T
from test_vm import qemu_unusable, run_in_vm, TIMEOUT, TIMES

ROOT = Path(__file__).resolve().parents[2]
SUPERVISOR = ROOT / "build" / "supervisor"
SVCTL = ROOT / "build" / "svctl"
ROOTFS = ROOT / "build" / "rootfs"
SHARE = "/run/vm-share"

# booting and building the appliance: minutes under TCG, past conftest's limit per test
pytestmark = [pytest.mark.appliance, pytest.mark.time_limit(1800)]

CONFIG = """\
[supervisor]
hostname = appliance
cgroup_root = corral
control_socket = /run/corral/control.sock
log_dir = /run/corral/logs

[service:db]
command = /bin/sh -c 'echo db up; exec sleep 3600'
rootfs = {rootfs}
network = none
priority = 10
stopwaitsecs = 10s

[service:web]
command = /bin/sh -c 'echo web up; exec sleep 3600'
rootfs = {rootfs}
network = none
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

{extra}[service:ctl]
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
  echo "uptime_ready=$(cut -d' ' -f1 /proc/uptime)"
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
echo "pid1_rss_kb=$(awk '$1 == "VmRSS:" {{ print $2 }}' /proc/1/status)" >>$r
echo "uptime_action=$(cut -d' ' -f1 /proc/uptime)" >>$r
{action}
echo "action_rc=$?" >>$r
"""


@pytest.fixture(scope="module")
def vm(request):
    reason = qemu_unusable()
    if reason:
        pytest.skip(f"qemu cannot run here: {reason}")
    for p in (SUPERVISOR, SVCTL, ROOTFS / "bin" / "sh"):
        assert p.exists(), f"{p} is missing (make test-build)"
    first = len(TIMES)
    request.addfinalizer(lambda: report_times(
        request, first, "appliance VM timings (seconds, TCG; host wall clock unless 'guest'):",
        lambda what: not what.startswith("appliance: ")))   # the machine fixture's own
    return run_in_vm


def report_times(request, first, title, mine=lambda what: True):
    """Prints the figures TIMES got since first (those mine() picks) at the end of the test
    run's output."""
    tr = request.config.pluginmanager.get_plugin("terminalreporter")
    capman = request.config.pluginmanager.get_plugin("capturemanager")
    rows = [(what, v) for what, v in TIMES[first:] if mine(what)]
    if not (tr and capman and rows):
        return
    with capman.global_and_fixture_disabled():
        tr.write_line("")
        tr.write_line(title)
        for what, v in rows:
            tr.write_line(f"  {v:7.2f}  {what}")


def boot(vm, d, what, action, on_ready=None, cmdline=False):
    """Boots the VM with the supervisor as PID 1; returns (run-in-vm result, result dict,
    console text). on_ready(share) runs (in a thread) once ctl has written the file `ready`.
    cmdline: the configuration is named by the kernel command line (corral.conf=), not -c."""
    share = Path(d)
    # six more containers, so that the supervisor's memory is the one of 10 services
    extra = "".join(f"[service:idle{i}]\ncommand = /bin/sh -c 'exec sleep 3600'\n"
                    f"rootfs = {ROOTFS}\nnetwork = none\npriority = 15\n\n" for i in range(6))
    (share / "app.ini").write_text(CONFIG.format(rootfs=ROOTFS, share=SHARE, extra=extra))
    (share / "ctl.sh").write_text(CTL.format(share=SHARE, svctl=SVCTL, action=action))
    console = share / "console.log"
    # The job's sh takes /dev/pts and /dev/shm away first (run-in-vm's guest mounted them),
    # then execs the supervisor: it is PID 1 and must mount them again.
    job = (f"umount /dev/pts /dev/shm && exec {shlex.quote(str(SUPERVISOR))}" +
           ("" if cmdline else f" -c {SHARE}/app.ini"))
    args = ["--pid1", "--share", d, "--console", str(console)]
    if cmdline:
        args += ["--append", f"corral.conf={SHARE}/app.ini"]
    done = threading.Event()
    waiter = None
    if on_ready:
        args += ["--monitor", str(share / "monitor.sock")]

        def wait_ready():
            while not done.is_set():
                if (share / "ready").exists():
                    on_ready(share)
                    return
                time.sleep(0.1)
        waiter = threading.Thread(target=wait_ready, daemon=True)
        waiter.start()
    try:
        r = vm(args + ["--", "/bin/sh", "-c", job], timeout=max(TIMEOUT, 180),
               what=f"boot + supervisor as PID 1, then {what}")
    finally:
        done.set()
        if waiter:
            waiter.join()
    res = {}
    text = (share / "result").read_text() if (share / "result").exists() else ""
    for line in text.splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            res[k] = v
    res["mounts"] = res.get("mounts", "").split()
    res["status"] = (share / "status").read_text() if (share / "status").exists() else ""
    con = console.read_text(errors="replace").replace("\r", "") if console.exists() else ""
    figures(share, res, con)
    return r, res, con


def figures(share, res, con):
    """Guest-clock figures (uptime, TCG), printed with the VM timings at the end."""
    try:
        root = float((share / "uptime-root-ready").read_text().split()[0])
        ready = float(res["uptime_ready"])
        TIMES.append(("  guest: supervisor exec'd -> db, web ready, ctl started", ready - root))
        TIMES.append(("  guest: supervisor (PID 1) RSS with 10 services, MiB",
                      int(res["pid1_rss_kb"]) / 1024))
        g = re.search(r"supervisor: reexec: no event handled for ([\d.]+) ms", con)
        if g:
            TIMES.append(("  guest: re-exec gap as PID 1 with 10 services, ms", float(g.group(1))))
        m = re.search(r"\[\s*(\d+\.\d+)\] reboot: ", con)
        if m and "uptime_action" in res:
            TIMES.append(("  guest: power request -> reboot(2) (stop, kill, unmount; "
                          "ctrl-alt-del: from ctl's ready, the host's key press included)",
                          float(m.group(1)) - float(res["uptime_action"])))
    except (OSError, KeyError, ValueError, IndexError):
        pass


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
    systems, and the kernel powers the machine off (qemu exits by itself, status 0). The
    configuration comes from the kernel command line (corral.conf=; no -c)."""
    with tempfile.TemporaryDirectory(prefix="vm-appliance.") as d:
        r, res, con = boot(vm, d, "svctl poweroff",
                           f"{SVCTL} -s /run/corral/control.sock poweroff", cmdline=True)
    assert f"supervisor: configuration {SHARE}/app.ini\n" in con, con[-4000:]
    check_machine(res, con, r)
    assert r.rc == 0, f"{r}\n{con[-4000:]}"
    assert r.out.rstrip().endswith("reboot: Power down"), r
    missing = in_order(con, [r"svctl poweroff: stopping all services, then poweroff"] +
                       [s.format(p="poweroff", verb="powering off") for s in STOP_STEPS] +
                       [r"reboot: Power down"])
    assert missing is None, f"console lacks, in order: {missing}\n{con[-4000:]}"


def sendkey_ctrl_alt_del(share):
    """qemu's monitor: the keyboard's ctrl-alt-del, as a user at the console would press it."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(T(60))
        s.connect(str(share / "monitor.sock"))
        s.sendall(b"sendkey ctrl-alt-delete\n")
        # The monitor's prompt comes once on connecting and again once the command ran: the
        # second one says the key was sent (a fixed 0.5 s stood for it; under TCG on a loaded
        # machine that is not always enough).
        got = b""
        while got.count(b"(qemu)") < 2:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
    (share / "key-sent").write_text("1")


def test_ctrl_alt_del_reboots(vm):
    """Ctrl-alt-del on the VM's keyboard (qemu's monitor: sendkey): PID 1 turned the kernel's
    immediate reboot into a SIGINT, so everything stops in order and the machine reboots
    (qemu -no-reboot exits by itself)."""
    with tempfile.TemporaryDirectory(prefix="vm-appliance.") as d:
        r, res, con = boot(vm, d, "ctrl-alt-del", f"echo > {SHARE}/ready; exec sleep 600",
                           on_ready=sendkey_ctrl_alt_del)
        assert Path(d, "key-sent").exists(), f"ctl never said ready; {r}\n{con[-4000:]}"
    check_machine(res, con, r)
    assert r.rc == 0, f"{r}\n{con[-4000:]}"
    assert r.out.rstrip().endswith("reboot: Restarting system"), r
    missing = in_order(con, [r"SIGINT: stopping all services, then reboot"] +
                       [s.format(p="reboot", verb="rebooting") for s in STOP_STEPS] +
                       [r"reboot: Restarting system"])
    assert missing is None, f"console lacks, in order: {missing}\n{con[-4000:]}"


REEXEC = """\
S="{svctl} -s /run/corral/control.sock"
$S status >{share}/status-before 2>&1
$S reexec >{share}/reexec.out 2>&1
echo "reexec_rc=$?" >>$r
i=0
until tr '\\0' ' ' </proc/1/cmdline | grep -q -- '--resume' || [ $i -ge 600 ]; do
  i=$((i + 1)); sleep 0.05
done
echo "pid1_cmdline=$(tr '\\0' ' ' </proc/1/cmdline)" >>$r
$S status >{share}/status-after 2>&1
echo "status_after_rc=$?" >>$r
$S poweroff"""


def pids(text):
    """NAME -> the pid column of `svctl status` (its third word), for running services."""
    out = {}
    for line in text.splitlines():
        w = line.split()
        if len(w) >= 3 and w[1] == "RUNNING":
            out[w[0]] = w[2]
    return out


def test_reexec_as_pid1(vm):
    """svctl reexec with the supervisor as the machine's PID 1: the new program is PID 1 with
    --resume, every container is the same one (same init pids), svctl answers after it, and
    the machine then powers off in order."""
    with tempfile.TemporaryDirectory(prefix="vm-appliance.") as d:
        r, res, con = boot(vm, d, "svctl reexec, then poweroff",
                           REEXEC.format(svctl=SVCTL, share=SHARE))
        before = Path(d, "status-before").read_text() if Path(d, "status-before").exists() else ""
        after = Path(d, "status-after").read_text() if Path(d, "status-after").exists() else ""
        said = Path(d, "reexec.out").read_text() if Path(d, "reexec.out").exists() else ""
    check_machine(res, con, r)
    assert res.get("reexec_rc") == "0", (res, said)
    assert "--pid1 --resume" in res.get("pid1_cmdline", ""), res
    assert res.get("status_after_rc") == "0", (res, after)
    b, a = pids(before), pids(after)
    assert {"db", "web", "idle0", "idle5"} <= set(b) and a == b, (before, after)
    assert re.search(r"supervisor: took over 9 running containers", con), con[-4000:]
    assert re.search(r"supervisor: reexec: no event handled for [\d.]+ ms", con), con[-4000:]
    assert r.rc == 0 and r.out.rstrip().endswith("reboot: Power down"), f"{r}\n{con[-4000:]}"
    missing = in_order(con, [r"svctl poweroff: stopping all services, then poweroff"] +
                       [s.format(p="poweroff", verb="powering off") for s in STOP_STEPS])
    assert missing is None, f"console lacks, in order: {missing}\n{con[-4000:]}"


# ---- make appliance: the bootable initramfs, booted with nothing else ----------------------
# build/appliance (contrib/appliance/mkappliance, conf/appliance.ini) under qemu as
# `make appliance-run` boots it: no disk, no 9p share; the host reaches it only through qemu's
# user network, which forwards a free port of 127.0.0.1 to its port 80 and answers its DHCP.
APPLIANCE = ROOT / "build" / "appliance"
# As tests/vm/vm.mk's appliance-run: no_timer_check (a loaded host makes the kernel's IO-APIC
# timer check fail under TCG, a panic), panic=-1 (a panic ends the VM at once).
APPLIANCE_APPEND = "console=ttyS0 no_timer_check panic=-1"
APPLIANCE_READY = [r"supervisor: net: RUNNING -> EXITED", r"supervisor: status: STARTING -> RUNNING",
                   r"supervisor: web: STARTING -> RUNNING",
                   r"supervisor: console: STARTING -> RUNNING"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Machine:
    """qemu running the appliance: its serial console on stdin/stdout (kept in console.log
    and in .text), its monitor on a unix socket in d."""

    def __init__(self, d):
        self.d = Path(d)
        self.port = free_port()
        self.text = ""
        self.cond = threading.Condition()
        cmd = ["qemu-system-x86_64", "-accel", "tcg", "-m", "512", "-nographic", "-no-reboot",
               "-kernel", str(APPLIANCE / "vmlinuz"),
               "-initrd", str(APPLIANCE / "initramfs.cpio.gz"), "-append", APPLIANCE_APPEND,
               "-netdev", f"user,id=n,hostfwd=tcp:127.0.0.1:{self.port}-:80",
               "-device", "virtio-net-pci,netdev=n",
               "-monitor", f"unix:{self.d / 'monitor.sock'},server=on,wait=off"]
        self.start = time.monotonic()
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        with open(self.d / "console.log", "wb") as log:
            while True:
                chunk = self.p.stdout.read1(65536)
                if not chunk:
                    break
                log.write(chunk)
                with self.cond:
                    self.text += chunk.decode(errors="replace").replace("\r", "")
                    self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait_for(self, patterns, timeout, since=0):
        """Waits until every pattern was printed, in order, after offset since; returns the
        end of the last one. Fails with the console's tail after timeout (scaled)."""
        deadline = time.monotonic() + T(timeout)
        with self.cond:
            while True:
                if in_order(self.text[since:], patterns) is None:
                    end = since
                    for p in patterns:
                        end = re.compile(p).search(self.text, end).end()
                    return end
                left = deadline - time.monotonic()
                if left <= 0 or (self.p.poll() is not None and not self.reader.is_alive()):
                    missing = in_order(self.text[since:], patterns)
                    pytest.fail(f"console lacks {missing!r} (qemu status {self.p.poll()}):\n"
                                f"{self.text[-4000:]}")
                self.cond.wait(min(left, 1))

    def type(self, line):
        """A line typed at the serial console."""
        self.p.stdin.write(line.encode() + b"\n")
        self.p.stdin.flush()

    def exit_status(self, timeout):
        try:
            rc = self.p.wait(timeout=T(timeout))
        except subprocess.TimeoutExpired:
            pytest.fail(f"qemu still runs after {T(timeout)} s:\n{self.text[-4000:]}")
        self.reader.join(T(10))
        return rc

    def close(self):
        if self.p.poll() is None:
            self.p.kill()   # by its PID
        self.p.wait()
        self.p.stdin.close()
        self.p.stdout.close()


def http_get(port, path, timeout):
    """GET from the host, through qemu's forward; a refused or reset connection is retried
    until timeout (the forward exists before the guest listens)."""
    deadline = time.monotonic() + T(timeout)
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=T(10)) as s:
                s.sendall(f"GET {path} HTTP/1.0\r\nHost: appliance\r\n\r\n".encode())
                data = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            if data:
                return data.decode(errors="replace")
        except OSError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"no HTTP answer on 127.0.0.1:{port}{path}")
        time.sleep(0.2)


@pytest.fixture
def machine(request):
    reason = qemu_unusable()
    if reason:
        pytest.skip(f"qemu cannot run here: {reason}")
    for f in ("vmlinuz", "initramfs.cpio.gz"):
        assert (APPLIANCE / f).exists(), f"{APPLIANCE / f} is missing (make appliance)"
    with tempfile.TemporaryDirectory(prefix="vm-appliance-image.") as d:
        first = len(TIMES)
        m = Machine(d)
        try:
            yield m
        finally:
            m.close()
            report_times(request, first, "appliance timings (seconds, TCG, host wall clock):")


def serves(m):
    """Boot -> every service ready; HTTP answers from the host through the forwarded port."""
    start = m.wait_for([r"Run /init as init process",
                        r"supervisor: started \(pid 1, the machine's init, 4 services"], 300)
    end = max(m.wait_for([p], 120, start) for p in APPLIANCE_READY)   # in any order
    boot = time.monotonic() - m.start
    page = http_get(m.port, "/", 60)
    assert page.startswith("HTTP/1.") and " 200 " in page.split("\n")[0], page
    assert (ROOT / "conf" / "www" / "index.html").read_text() in page, page
    # The status service (no network) wrote it; web reads it through a read-only bind.
    status = http_get(m.port, "/live/status.txt", 60)
    assert re.search(r"(?m)^hostname: status$", status), status
    TIMES.append(("appliance: qemu start -> every service ready (host clock)", boot))
    return end


def test_appliance_serves_then_powers_off(machine):
    """make appliance's initramfs booted with nothing else: eth0 configured by its own net
    service (DHCP from qemu), HTTP answers on the forwarded port, and `svctl poweroff` typed
    at its console stops every service in order and powers off (qemu exits 0)."""
    m = machine
    end = serves(m)
    m.wait_for([r"appliance# "], 60)   # the console's shell (it may have come before web)
    m.type("svctl status; ip -4 addr show dev eth0; ip route")
    # what svctl says, and eth0 as the net service left it (qemu's DHCP: 10.0.2.15)
    for p in (r"(?m)^web\s+RUNNING", r"(?m)^status\s+RUNNING", r"(?m)^net\s+EXITED",
              r"inet 10\.0\.2\.15/24", r"default via 10\.0\.2\.2 dev eth0"):
        m.wait_for([p], 60, end)
    end = len(m.text)
    m.type("echo pid1_rss_kb=$(awk '$1 == \"VmRSS:\" { print $2 }' /proc/1/status)")
    end = m.wait_for([r"pid1_rss_kb=\d+"], 60, end)
    rss = int(re.findall(r"pid1_rss_kb=(\d+)", m.text[:end])[-1])
    TIMES.append(("appliance: the supervisor's (PID 1) RSS with 4 services, MiB", rss / 1024))
    t = time.monotonic()
    m.type("svctl poweroff")
    assert m.exit_status(120) == 0, m.text[-4000:]
    TIMES.append(("appliance: svctl poweroff typed -> qemu exited (host clock)",
                  time.monotonic() - t))
    missing = in_order(m.text[end:], [
        r"svctl poweroff: stopping all services, then poweroff",
        r"supervisor: web: RUNNING -> STOPPING",   # web depends on status: it stops first
        r"supervisor: status: RUNNING -> STOPPING",
        r"supervisor: all services stopped",
        r"supervisor: poweroff: sending SIGTERM to every process",
        r"supervisor: poweroff: every process is gone \(\d+ ms\); syncing",
        r"supervisor: file systems: \d+ unmounted, \d+ remounted read-only",
        r"supervisor: poweroff: powering off now",
        r"reboot: Power down"])
    assert missing is None, f"console lacks, in order: {missing}\n{m.text[-4000:]}"


def test_appliance_ctrl_alt_del_reboots(machine):
    """Ctrl-alt-del on the appliance's keyboard (qemu monitor: sendkey): every service stops in
    order and the machine reboots, which ends qemu -no-reboot (status 0)."""
    m = machine
    end = serves(m)
    t = time.monotonic()
    sendkey_ctrl_alt_del(m.d)
    assert m.exit_status(120) == 0, m.text[-4000:]
    TIMES.append(("appliance: ctrl-alt-del -> qemu exited (host clock)", time.monotonic() - t))
    missing = in_order(m.text[end:], [
        r"supervisor: SIGINT: stopping all services, then reboot",
        r"supervisor: web: RUNNING -> STOPPING",
        r"supervisor: status: RUNNING -> STOPPING",
        r"supervisor: all services stopped",
        r"supervisor: reboot: sending SIGTERM to every process",
        r"supervisor: reboot: every process is gone \(\d+ ms\); syncing",
        r"supervisor: file systems: \d+ unmounted, \d+ remounted read-only",
        r"supervisor: reboot: rebooting now",
        r"reboot: Restarting system"])
    assert missing is None, f"console lacks, in order: {missing}\n{m.text[-4000:]}"
