#!/usr/bin/python3
"""Checks run inside the run-in-vm guest, all in one boot; prints one JSON object.

tests/integration/test_vm.py asserts on the result. Each check records what it saw, not a
verdict, so a failing assertion on the host shows the guest's facts. Everything created here
(cgroups, processes) is removed before exit, even though the VM is thrown away.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time

CG = "/sys/fs/cgroup"
HOG = "b = b'x' * (256 << 20); print(len(b))"
FORKER = """
import os
r, w = os.pipe()
kids, eagain = [], 0
for _ in range(8):
    try:
        pid = os.fork()
    except BlockingIOError:
        eagain += 1
        continue
    if pid == 0:
        os.close(w)
        os.read(r, 1)
        os._exit(0)
    kids.append(pid)
os.close(w)
for pid in kids:
    os.waitpid(pid, 0)
print(len(kids), eagain)
"""


def read(path):
    with open(path) as f:
        return f.read()


def mounts():
    out = []
    for line in read("/proc/self/mountinfo").splitlines():
        left, right = line.split(" - ", 1)
        out.append({"point": left.split()[4], "fstype": right.split()[0]})
    return out


def check_layout():
    r = {}
    m = mounts()
    r["cgroup_mount_fstype"] = [x["fstype"] for x in m if x["point"] == CG]
    r["v1_mounts"] = [x["point"] for x in m if x["fstype"] == "cgroup"]
    r["controllers"] = read(CG + "/cgroup.controllers").split()
    r["subtree_control"] = read(CG + "/cgroup.subtree_control").split()
    r["self_cgroup"] = read("/proc/self/cgroup").splitlines()
    # With cgroup_no_v1=all, a v1 hierarchy of a controller cannot be mounted at all.
    d = tempfile.mkdtemp(prefix="v1-")
    p = subprocess.run(["mount", "-t", "cgroup", "-o", "memory", "none", d],
                       capture_output=True, text=True)
    r["v1_memory_mount_rc"] = p.returncode
    if p.returncode == 0:
        subprocess.run(["umount", d])
    os.rmdir(d)
    r["cmdline"] = read("/proc/cmdline").split()
    return r


def run_in_cgroup(path, argv, timeout=60):
    """argv as a child placed in cgroup `path` before it execs; returns (returncode, stdout)."""
    def enter():
        with open(os.path.join(path, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))
    p = subprocess.run(argv, preexec_fn=enter, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout.strip()


def events(path, name):
    return dict(l.split() for l in read(os.path.join(path, name)).splitlines())


def remove_cgroup(path):
    """Kill whatever is left in it, then rmdir (retried: the kill is asynchronous)."""
    if not os.path.isdir(path):
        return True
    with open(os.path.join(path, "cgroup.kill"), "w") as f:
        f.write("1")
    for _ in range(100):
        try:
            os.rmdir(path)
            return True
        except OSError:
            time.sleep(0.05)
    return False


def check_oom():
    r = {}
    cg = os.path.join(CG, "vmcheck-oom-%d" % os.getpid())
    os.mkdir(cg)
    try:
        # Control: the same hog runs to completion without a limit.
        r["unlimited_rc"], r["unlimited_out"] = run_in_cgroup(cg, [sys.executable, "-c", HOG])
        with open(os.path.join(cg, "memory.max"), "w") as f:
            f.write(str(48 << 20))
        if os.path.exists(os.path.join(cg, "memory.swap.max")):
            with open(os.path.join(cg, "memory.swap.max"), "w") as f:
                f.write("0")
        r["memory_max"] = read(os.path.join(cg, "memory.max")).strip()
        r["limited_rc"], _ = run_in_cgroup(cg, [sys.executable, "-c", HOG])
        r["memory_events"] = events(cg, "memory.events")
    finally:
        r["removed"] = remove_cgroup(cg)
        r["exists_after"] = os.path.exists(cg)
    return r


def check_pids():
    r = {}
    cg = os.path.join(CG, "vmcheck-pids-%d" % os.getpid())
    os.mkdir(cg)
    try:
        with open(os.path.join(cg, "pids.max"), "w") as f:
            f.write("4")
        # A process in the cgroup forks 8 children that wait on a pipe; forks past the
        # limit (itself + 3) fail with EAGAIN.
        r["rc"], out = run_in_cgroup(cg, [sys.executable, "-c", FORKER])
        r["forked"], r["eagain"] = (int(x) for x in out.split())
        r["pids_events"] = events(cg, "pids.events")
    finally:
        r["removed"] = remove_cgroup(cg)
    return r


def main():
    t0 = time.monotonic()
    res = {"uptime_at_start": float(read("/proc/uptime").split()[0]), "pid": os.getpid()}
    for name, fn in (("layout", check_layout), ("oom", check_oom), ("pids", check_pids)):
        t = time.monotonic()
        try:
            res[name] = fn()
        except Exception as e:  # reported, so the other checks still run
            res[name] = {"error": "%s: %s" % (type(e).__name__, e)}
        res[name + "_seconds"] = round(time.monotonic() - t, 2)
    res["guest_seconds"] = round(time.monotonic() - t0, 2)
    json.dump(res, sys.stdout)
    print()


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    main()
