#!/usr/bin/env python3
"""Crash recovery at scale (issue 14): N services (default isolation but `network = none`: a
bridge network's /24 holds 253, and the figure is about cgroups; the busybox rootfs) are
started by a clean supervisor and timed until all are RUNNING; then the supervisor is killed
with SIGKILL and a new one is started at once on the same config, timed the same way (its
sweep of the leftover cgroups included). Each round prints both times and their ratio; the
goal is recovery <= 1.5x a clean start. Times are read from the supervisor's log as it is
written (each service's "-> RUNNING" line), not polled through svctl.

    bench/supervisor/recovery.py [-n 1000] [--rounds 2] [--root NAME] [--dir DIR]

Needs root, build/supervisor, build/init and build/rootfs (make all rootfs). Uses its own
cgroup root (default corral-bench-recovery) and directory, and removes both."""
import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "build"


def config(n, root, d):
    text = (f"[supervisor]\ncgroup_root = {root}\ncontrol_socket = {d}/control.sock\n"
            f"log_dir = {d}/logs\n\n")
    for i in range(n):
        text += (f"[service:r{i}]\ncommand = /usr/local/bin/workload sleep 100000\n"
                 f"rootfs = {BUILD}/rootfs\nnetwork = none\nstartsecs = 0\nstdout_logfile = NONE\n"
                 f"stderr_logfile = NONE\n\n")
    return text


def start(ini, log):
    env = dict(os.environ, CORRAL_INIT=str(BUILD / "init"))
    f = open(log, "wb")
    p = subprocess.Popen([str(BUILD / "supervisor"), "-c", str(ini)], env=env,
                         stdout=subprocess.DEVNULL, stderr=f)
    f.close()
    return p


def wait_running(p, log, n, timeout):
    """Seconds until n distinct services logged '-> RUNNING' (from now)."""
    t0 = time.monotonic()
    rx = re.compile(rb"^supervisor: (r\d+): \w+ -> RUNNING$", re.M)
    seen, pos = set(), 0
    with open(log, "rb") as f:
        buf = b""
        while len(seen) < n:
            if p.poll() is not None:
                sys.exit(f"the supervisor exited ({p.returncode}); see {log}")
            if time.monotonic() - t0 > timeout:
                sys.exit(f"only {len(seen)} of {n} RUNNING after {timeout} s; see {log}")
            chunk = f.read()
            if not chunk:
                time.sleep(0.02)
                continue
            buf += chunk
            cut = buf.rfind(b"\n") + 1
            seen.update(m.group(1) for m in rx.finditer(buf[:cut]))
            buf = buf[cut:]
    return time.monotonic() - t0


def stop(p, timeout=300):
    p.send_signal(signal.SIGTERM)
    p.wait(timeout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--root", default="corral-bench-recovery")
    ap.add_argument("--dir", default="/tmp/corral-bench-recovery")
    ap.add_argument("--timeout", type=int, default=600)
    a = ap.parse_args()
    d = Path(a.dir)
    d.mkdir(parents=True, exist_ok=True)
    ini = d / "services.ini"
    ini.write_text(config(a.n, a.root, d))
    ratios = []
    try:
        for r in range(a.rounds):
            log1, log2 = d / f"clean{r}.log", d / f"recovered{r}.log"
            p = start(ini, log1)
            clean = wait_running(p, log1, a.n, a.timeout)
            p.kill()
            p.wait()
            p = start(ini, log2)
            rec = wait_running(p, log2, a.n, a.timeout)
            sweep = re.search(r"swept .*", log2.read_text(errors="replace"))
            stop(p)
            ratios.append(rec / clean)
            print(f"round {r + 1}: {a.n} services: clean start {clean:.2f} s, after kill -9 "
                  f"{rec:.2f} s ({rec / clean:.2f}x); {sweep.group(0) if sweep else 'no sweep'}",
                  flush=True)
    finally:
        shutil.rmtree(d / "logs", ignore_errors=True)
    print(f"recovery / clean start: {', '.join(f'{x:.2f}x' for x in ratios)} "
          f"(goal <= 1.5x)")


if __name__ == "__main__":
    main()
