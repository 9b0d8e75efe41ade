#!/usr/bin/env python3
"""Images against podman (issue 9), the same image file in the same run:

  warm  `supervisor run` of /bin/true from a docker-archive whose layers are already in the
        store, against `podman run --rm` of the same image already in podman's storage; the
        goal is ours <= 0.5x podman's (median of --runs each, alternated).
  cold  `supervisor run` with an empty store (check, unpack, run), against `podman load` of
        the same tarball plus `podman run --rm` (the image removed before each round); the
        goal is ours <= 1x podman's.

The image: the busybox root (build/image) plus a layer of --size MB of random bytes, written
with umoci and saved as a docker-archive with skopeo. Both sides run without a network
(`network = none`, `--network none`); podman runs with runc (crun refuses this machine's
hybrid cgroups) and explicit rlimits, as tests/integration/test_where.py does.

    bench/images/imgbench.py [--runs 20] [--cold-rounds 3] [--size 100] [--root NAME] [--dir DIR]

Needs root, podman, runc, umoci, skopeo, build/supervisor, build/init, build/image. Uses its
own cgroup root (default corral-bench-images-PID), directory and podman image name, and
removes them (and any libpod_parent cgroup podman made that was not there before)."""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "build"
PODMAN_RUN = ["--runtime", "runc", "--ulimit", "nofile=4096:4096", "--ulimit",
              "nproc=8192:8192", "--network", "none", "--pull", "never", "--rm"]


def sh(*argv, **kw):
    p = subprocess.run([str(a) for a in argv], capture_output=True, text=True, **kw)
    if p.returncode != 0:
        sys.exit(f"imgbench: {' '.join(map(str, argv))}: exit {p.returncode}\n{p.stderr[-2000:]}")
    return p


def timed(*argv):
    t = time.monotonic()
    sh(*argv)
    return time.monotonic() - t


def load():
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--cold-rounds", type=int, default=3)
    ap.add_argument("--size", type=int, default=100, help="MB of the big layer")
    ap.add_argument("--root", default=f"corral-bench-images-{os.getpid()}")
    ap.add_argument("--dir")
    a = ap.parse_args()
    for tool in ("podman", "runc", "umoci", "skopeo"):
        if not shutil.which(tool):
            sys.exit(f"imgbench: {tool} is not installed (make deps-bench)")
    for f in ("supervisor", "init", "image/index.json"):
        if not (BUILD / f).exists():
            sys.exit(f"imgbench: build/{f} is missing (make all image)")
    d = Path(a.dir or tempfile.mkdtemp(prefix="imgbench-"))
    d.mkdir(parents=True, exist_ok=True)
    name = f"localhost/corral-imgbench-{os.getpid()}:latest"
    parents_before = set(Path("/sys/fs/cgroup").glob("*/libpod_parent"))
    try:
        run(a, d, name)
    finally:
        subprocess.run(["podman", "rmi", "-f", name], capture_output=True)
        for parent in set(Path("/sys/fs/cgroup").glob("*/libpod_parent")) - parents_before:
            for x in sorted(parent.rglob("*"), key=lambda p: len(p.parts), reverse=True) + [parent]:
                try:
                    x.rmdir()
                except OSError:
                    pass
        shutil.rmtree(d, ignore_errors=True)


def run(a, d, name):
    print(f"imgbench: load average before: {load()} ({os.cpu_count()} cpus)")
    lay = d / "layout"
    shutil.copytree(BUILD / "image", lay)
    sh("umoci", "unpack", "--image", f"{lay}:latest", d / "bundle")
    with open(d / "bundle/rootfs/big.bin", "wb") as f:
        for _ in range(a.size):
            f.write(os.urandom(1 << 20))
    sh("umoci", "repack", "--image", f"{lay}:latest", d / "bundle")
    shutil.rmtree(d / "bundle")
    tar = d / "image.tar"
    ref = name
    sh("skopeo", "copy", "-q", f"oci:{lay}:latest", f"docker-archive:{tar}:{ref}")
    store = d / "store"
    ini = d / "bench.ini"
    ini.write_text(f"[supervisor]\ncgroup_root = {a.root}\nimage_store = {store}\n"
                   f"log_dir = {d}/logs\ncontrol_socket = {d}/ctl.sock\n\n"
                   f"[service:img]\nimage = docker-archive:{tar}:{ref}\ncommand = /bin/true\n"
                   f"network = none\n")
    ours = [BUILD / "supervisor", "-c", ini, "run", "img"]
    print(f"imgbench: image {tar.stat().st_size / 1e6:.1f} MB ({a.size} MB random layer on "
          f"the busybox root)")

    # cold: nothing unpacked / nothing loaded, each round
    cold_ours, cold_load, cold_run = [], [], []
    for _ in range(a.cold_rounds):
        shutil.rmtree(store, ignore_errors=True)
        cold_ours.append(timed(*ours))
        subprocess.run(["podman", "rmi", "-f", name], capture_output=True)
        cold_load.append(timed("podman", "load", "-q", "-i", tar))
        cold_run.append(timed("podman", "run", *PODMAN_RUN, name, "/bin/true"))
    # warm: both have the image; one untimed start each first
    sh(*ours)
    sh("podman", "run", *PODMAN_RUN, name, "/bin/true")
    warm_ours, warm_podman = [], []
    for _ in range(a.runs):
        warm_ours.append(timed(*ours))
        warm_podman.append(timed("podman", "run", *PODMAN_RUN, name, "/bin/true"))

    med = statistics.median
    wo, wp = med(warm_ours), med(warm_podman)
    co, cp = med(cold_ours), med([l + r for l, r in zip(cold_load, cold_run)])
    print(f"warm start (layers unpacked), median of {a.runs}: supervisor run {wo * 1000:.0f} ms, "
          f"podman run {wp * 1000:.0f} ms: ratio {wo / wp:.2f} (goal <= 0.50) "
          f"{'OK' if wo / wp <= 0.5 else 'MISSED'}")
    print(f"  supervisor run min/max {min(warm_ours) * 1000:.0f}/{max(warm_ours) * 1000:.0f} ms; "
          f"podman run min/max {min(warm_podman) * 1000:.0f}/{max(warm_podman) * 1000:.0f} ms")
    print(f"cold start, median of {a.cold_rounds}: supervisor run (check+unpack+run) "
          f"{co * 1000:.0f} ms, podman load + run {cp * 1000:.0f} ms (load "
          f"{med(cold_load) * 1000:.0f} + run {med(cold_run) * 1000:.0f}): ratio {co / cp:.2f} "
          f"(goal <= 1.00) {'OK' if co / cp <= 1 else 'MISSED'}")
    print(f"imgbench: load average after: {load()}")


if __name__ == "__main__":
    main()
