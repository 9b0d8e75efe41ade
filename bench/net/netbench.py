#!/usr/bin/python3
"""Throughput over corral's networks against the kernel's floor and podman, in one run (issue 8:
at least 90 % of the floor). iperf3 (Debian's), SECONDS a test, ROUNDS rounds taking turns;
each path's median Gbit/s, and its median ratio to the floor measured in the same round:
  service to service: a `supervisor run` client beside a supervisor whose service is the
    server, on one bridge network, the server found by its name;
  the host to the server's published port, at 127.0.0.1 and at one of the host's addresses;
  the floor: two network namespaces joined by a plain veth pair (no bridge, no NAT);
  podman (runc, cgroupfs, a `podman network create` bridge): container to container by
    address, and the host to its published port, the same ways.
Both run build/rootfs with iperf3 and its libraries copied in (a copy: podman writes into
the root it is given). Everything is made under names of the bench's own (netbench-PID) and
removed at the end; traffic stays on this machine.

Two passes when the host has bridge netfilter on (net.bridge.bridge-nf-call-iptables = 1, as
br_netfilter sets it, loaded by Docker or kubernetes; a machine-wide choice of the host's):
the host as it is, then the same bench in a network namespace of its own (`unshare -n`, a
second address on its lo standing for the host's) where that per-namespace setting is
0, as on a host without br_netfilter: the bridge's packets then skip the IP hooks, the
floor's never pass them. Everything in that namespace goes with it. --one-pass: the first
only.

usage: netbench.py --ours build/supervisor --init build/init --rootfs build/rootfs
                   [--seconds 5] [--rounds 3] [--one-pass]"""
import argparse
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OURS_SUBNET = "10.239.242.0/24"
PODMAN_SUBNET = "10.239.243.0/24"
FLOOR = ("10.239.244.1", "10.239.244.2")
IPERF = "/usr/bin/iperf3"
BRIDGE_NF = Path("/proc/sys/net/bridge")
INNER_ADDR = "198.51.100.1/32"   # TEST-NET-2, on lo inside the bench's own namespace only
PODMAN = "/usr/bin/podman"
CGROUP_V1 = ["cpu", "cpuacct", "cpu,cpuacct", "memory", "pids", "blkio", "devices", "freezer",
             "cpuset", "net_cls", "net_prio", "net_cls,net_prio", "perf_event", "hugetlb",
             "rdma", "misc", "systemd", "unified", ""]


def run(argv, timeout=120, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)


def make_root(src, dst):
    """src's copy with iperf3, its libraries and the dynamic loader at their own paths."""
    shutil.copytree(src, dst, symlinks=True)
    libs = [IPERF]
    for line in run(["ldd", IPERF]).stdout.splitlines():
        parts = line.split()
        path = parts[2] if "=>" in parts and len(parts) > 2 else parts[0]
        if path.startswith("/"):
            libs.append(path)
    for f in libs:
        real = os.path.realpath(f)
        for p in {f, real}:
            out = dst / p.lstrip("/")
            out.parent.mkdir(parents=True, exist_ok=True)
            if not out.exists():
                shutil.copy2(real, out)


def gbits(out, what):
    """iperf3 -J's result: Gbit/s received, or None (the reason on stderr)."""
    try:
        r = json.loads(out)
        return r["end"]["sum_received"]["bits_per_second"] / 1e9
    except (ValueError, KeyError, TypeError):
        print(f"netbench: {what}: no result: {out[-500:]}", file=sys.stderr)
        return None


def client_args(host, port, seconds):
    # -A 0,1: the client on CPU 0, the server (for this test) on CPU 1, in every setup alike:
    # left to the scheduler, the two sometimes shared a CPU, and the floor moved from 16 to 22
    # Gbit/s between runs. iperf3 sets it itself, after any cgroup it is in was joined (a v1
    # cpuset's attach resets a task's affinity).
    pin = ["-A", "0,1"] if (os.cpu_count() or 1) >= 2 else []
    return [IPERF, "-c", host, "-p", str(port), "-t", str(seconds), "-J"] + pin


def host_address():
    """One IPv4 address of the host's own (not loopback, not a bridge of ours or podman's)."""
    p = run(["ip", "-j", "-4", "addr", "show", "scope", "global"])
    for link in json.loads(p.stdout or "[]"):
        for a in link.get("addr_info", []):
            ip = a.get("local", "")
            if ip and not ip.startswith("10.239."):
                return ip
    return None


def wait_port(host, port, timeout=30):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.1)
    return False


class Ours:
    def __init__(self, a, tmp, root, port):
        self.a, self.tmp, self.port = a, tmp, port
        self.conf = tmp / "ours.ini"
        self.conf.write_text(
            f"[supervisor]\ncgroup_root = netbench-{os.getpid()}\nlog_dir = {tmp}/logs\n"
            f"run_dir = {tmp}/run\ncontrol_socket = {tmp}/ours.sock\n\n"
            f"[network:nb]\nsubnet = {OURS_SUBNET}\n\n"
            f"[service:server]\ncommand = {IPERF} -s -p 5201\nrootfs = {root}\n"
            f"network = bridge:nb\nports = {port}:5201\n\n"
            f"[service:client]\ncommand = {' '.join(client_args('server', 5201, a.seconds))}\n"
            f"rootfs = {root}\nnetwork = bridge:nb\nautostart = false\nautorestart = false\n"
            "startsecs = 0\n")
        self.env = dict(os.environ, CORRAL_INIT=os.path.abspath(a.init))
        self.p = subprocess.Popen([a.ours, "-c", str(self.conf)], env=self.env,
                                  stdout=subprocess.DEVNULL,
                                  stderr=open(tmp / "ours.log", "w"))
        if not wait_port("127.0.0.1", port):
            raise RuntimeError(f"ours: the server's port {port} did not open; see "
                               f"{tmp / 'ours.log'}")

    def service_to_service(self):
        p = run([self.a.ours, "-c", str(self.conf), "run", "client"], env=self.env,
                timeout=self.a.seconds + 60)
        return gbits(p.stdout, "ours, service to service")

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(60)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


class Floor:
    """Two namespaces (held by a sleeping process each) joined by a veth pair."""

    def __init__(self):
        self.holders = []
        for _ in range(2):
            self.holders.append(subprocess.Popen(["unshare", "-n", "sleep", "100000"]))
        time.sleep(0.2)
        a, b = (str(h.pid) for h in self.holders)
        tag = str(os.getpid() % 100000)
        self.ns = (a, b)
        steps = [["ip", "link", "add", f"nbf{tag}a", "netns", a, "type", "veth", "peer", "name",
                  f"nbf{tag}b", "netns", b]]
        for pid, name, ip in ((a, f"nbf{tag}a", FLOOR[0]), (b, f"nbf{tag}b", FLOOR[1])):
            steps += [["nsenter", "-t", pid, "-n", "ip", "addr", "add", f"{ip}/24", "dev", name],
                      ["nsenter", "-t", pid, "-n", "ip", "link", "set", name, "up"],
                      ["nsenter", "-t", pid, "-n", "ip", "link", "set", "lo", "up"]]
        for s in steps:
            p = run(s)
            if p.returncode:
                raise RuntimeError(f"floor: {' '.join(s)}: {p.stderr.strip()}")
        self.server = subprocess.Popen(["nsenter", "-t", b, "-n", IPERF, "-s", "-p", "5201"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.holders.append(self.server)
        time.sleep(0.3)

    def measure(self, seconds):
        p = run(["nsenter", "-t", self.ns[0], "-n"] + client_args(FLOOR[1], 5201, seconds),
                timeout=seconds + 60)
        return gbits(p.stdout, "floor")

    def stop(self):
        for h in reversed(self.holders):
            h.kill()
            h.wait()


class Podman:
    def __init__(self, a, root, port):
        self.a, self.root, self.port = a, str(root), port
        self.net = self.name = f"netbench-{os.getpid()}"
        self.parent = f"netbench-{os.getpid()}-podman"
        self.before = self.libpod_parents()
        self.made_net = self.made_server = False
        try:
            p = run([PODMAN, "network", "create", "--subnet", PODMAN_SUBNET, self.net])
            if p.returncode:
                raise RuntimeError(f"podman network create: {p.stderr.strip()}")
            self.made_net = True
            p = run(self.run_args() + ["-d", "--name", self.name, "-p", f"{port}:5201",
                                       "--rootfs", self.root, IPERF, "-s", "-p", "5201"])
            self.made_server = True   # (or half made: rm -f either way)
            if p.returncode:
                raise RuntimeError(f"podman run (server): {p.stderr.strip()}")
            p = run([PODMAN, "inspect", "-f",
                     "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", self.name])
            self.ip = p.stdout.strip()
            if not self.ip or not wait_port("127.0.0.1", port):
                raise RuntimeError(f"the server is not up (address {self.ip!r})")
        except BaseException:
            self.stop()
            raise

    def run_args(self):
        # the limits as table 1c gives them (runc cannot raise nofile past the bench's own)
        return [PODMAN, "run", "--runtime", "runc", "--cgroup-manager", "cgroupfs",
                "--cgroup-parent", self.parent, "--ulimit", "nofile=4096:4096", "--ulimit",
                "nproc=8192:8192", "--network", self.net]

    def service_to_service(self):
        p = run(self.run_args() + ["--rm", "--rootfs", self.root] +
                client_args(self.ip, 5201, self.a.seconds), timeout=self.a.seconds + 120)
        return gbits(p.stdout, "podman, container to container")

    @staticmethod
    def libpod_parents():
        return {c for c in CGROUP_V1
                if Path("/sys/fs/cgroup", c, "libpod_parent").is_dir()}

    def stop(self):
        if self.made_server:
            run([PODMAN, "rm", "-f", "-t", "0", self.name])
        if self.made_net:
            run([PODMAN, "network", "rm", "-f", self.net])
        # conmon's libpod_parent cgroups podman made now (not there before), and the
        # --cgroup-parent of our name (conmon/ and the containers' under it), once empty
        for c in self.libpod_parents() - self.before:
            remove_empty_tree(Path("/sys/fs/cgroup", c, "libpod_parent"))
        for c in CGROUP_V1:
            remove_empty_tree(Path("/sys/fs/cgroup", c, self.parent))


def remove_empty_tree(top):
    """top's cgroup folders, deepest first (a busy one stays, and so do those above it)."""
    if not top.is_dir():
        return
    for d in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        try:
            d.rmdir()
        except OSError:
            pass
    try:
        top.rmdir()
    except OSError:
        pass


class HostRestored:
    """What podman's CNI plugins leave on the host and were not there before the bench: the
    iptables-nft tables (portmap's and the bridge plugin's top chains), net.ipv4.ip_forward
    (set to 1 and kept), /run/netns (podman's mount point of its own). Removed, or given
    back, at the end; what was there before is left alone."""
    TABLES = {f"{f} {t}" for f in ("ip", "ip6") for t in ("nat", "filter", "mangle", "raw")}
    FORWARD = Path("/proc/sys/net/ipv4/ip_forward")
    NETNS = Path("/run/netns")

    @staticmethod
    def tables():
        out = run(["nft", "list", "tables"]).stdout
        return {line.split(None, 1)[1] for line in out.splitlines() if line.startswith("table ")}

    @staticmethod
    def mounted(path):
        return any(line.split()[4] == str(path)
                   for line in Path("/proc/self/mountinfo").read_text().splitlines())

    def __init__(self):
        self.before = self.tables()
        self.forward = self.FORWARD.read_text()
        self.netns_there, self.netns_mounted = self.NETNS.exists(), self.mounted(self.NETNS)

    def stop(self):
        for t in (self.tables() - self.before) & self.TABLES:
            run(["nft", "delete", "table", *t.split()])
        if self.FORWARD.read_text() != self.forward:
            self.FORWARD.write_text(self.forward)
        n = self.NETNS
        if not self.netns_mounted and n.is_dir() and not any(n.iterdir()):
            if self.mounted(n):
                run(["umount", str(n)])
            if not self.netns_there and not self.mounted(n):
                try:
                    n.rmdir()
                except OSError:
                    pass


def bridge_nf_on():
    try:
        return (BRIDGE_NF / "bridge-nf-call-iptables").read_text().strip() == "1"
    except OSError:
        return False


def inner_host():
    """In the bench's own network namespace: lo up with a second address standing for the
    host's (not every kernel has dummy links), bridge netfilter off (per namespace)."""
    for s in (["ip", "link", "set", "lo", "up"],
              ["ip", "addr", "add", INNER_ADDR, "dev", "lo"]):
        p = run(s)
        if p.returncode:
            sys.exit(f"netbench: {' '.join(s)}: {p.stderr.strip()}")
    for f in ("iptables", "ip6tables", "arptables"):
        (BRIDGE_NF / f"bridge-nf-call-{f}").write_text("0\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ours", required=True)
    ap.add_argument("--init", required=True)
    ap.add_argument("--rootfs", required=True)
    ap.add_argument("--seconds", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--one-pass", action="store_true")
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if not os.access(IPERF, os.X_OK):
        sys.exit("netbench: needs Debian's iperf3")
    if a.inner:
        inner_host()
        return bench(a, "in a network namespace of the bench's own, bridge-nf-call-iptables = 0 "
                     "(a host without br_netfilter)")
    nf = bridge_nf_on()
    rc = bench(a, "this host as it is" + (", bridge-nf-call-iptables = 1 (bridged packets pass "
                                          "its netfilter hooks)" if nf else ""))
    if nf and not a.one_pass:
        sys.stdout.flush()
        me = os.path.abspath(__file__)
        p = subprocess.run(["unshare", "-n", "--", sys.executable, me] + sys.argv[1:] + ["--inner"])
        rc = rc or p.returncode
    return rc


def bench(a, where):
    tmp = Path(tempfile.mkdtemp(prefix="netbench-"))
    root = tmp / "root"
    make_root(Path(a.rootfs), root)
    addr = host_address()
    base = 20000 + os.getpid() % 20000
    kinds = {}   # name: (function, ...) taking turns
    res = {}
    up = [HostRestored()]
    try:
        floor = Floor()
        up.append(floor)
        kinds["floor"] = lambda: floor.measure(a.seconds)
        ours = Ours(a, tmp, root, base)
        up.append(ours)
        kinds["ours s2s"] = ours.service_to_service
        kinds["ours 127"] = lambda: gbits(run(client_args("127.0.0.1", base, a.seconds),
                                              timeout=a.seconds + 60).stdout, "ours, 127.0.0.1")
        if addr:
            kinds["ours addr"] = lambda: gbits(run(client_args(addr, base, a.seconds),
                                                   timeout=a.seconds + 60).stdout,
                                               f"ours, {addr}")
        try:
            pm = Podman(a, root, base + 1) if os.access(PODMAN, os.X_OK) else None
        except RuntimeError as e:
            print(f"netbench: podman: {e}: its column is n/a", file=sys.stderr)
            pm = None
        if pm:
            up.append(pm)
            kinds["podman s2s"] = pm.service_to_service
            kinds["podman 127"] = lambda: gbits(run(client_args("127.0.0.1", base + 1, a.seconds),
                                                    timeout=a.seconds + 60).stdout,
                                                "podman, 127.0.0.1")
            if addr:
                kinds["podman addr"] = lambda: gbits(run(client_args(addr, base + 1, a.seconds),
                                                         timeout=a.seconds + 60).stdout,
                                                     f"podman, {addr}")
        for r in range(a.rounds):
            names = list(kinds) if r % 2 == 0 else list(reversed(kinds))
            for k in names:
                v = kinds[k]()
                if v is not None:
                    res.setdefault(k, {})[r] = v
    finally:
        for u in reversed(up):
            u.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    def med(k):
        return statistics.median(res[k].values()) if res.get(k) else None

    def ratios(k):
        """k against the floor measured in the same round: the VM's drift between rounds
        (the floor moves by 10 % and more) falls out of each pair."""
        fl = res.get("floor", {})
        return sorted(v / fl[r] for r, v in res.get(k, {}).items() if fl.get(r))

    def fmt(v, places=2):
        return f"{v:7.{places}f}" if v is not None else "    n/a"

    def cut3(v):   # a ratio's three places, cut: a median of 0.8996 is 0.899, a miss
        return math.floor(v * 1000) / 1000 if v is not None else None

    def spread(rs):
        return f"{rs[0]:.2f}-{rs[-1]:.2f}" if rs else "n/a"

    fl = med("floor")
    print(f"== Network throughput, {where}: iperf3, {a.seconds} s a test, {a.rounds} rounds "
          f"taking turns (Gbit/s, medians); the floor: two namespaces on a plain veth pair, "
          f"{fmt(fl).strip()} ({spread(sorted(res.get('floor', {}).values()))})")
    print(f"   {'path':42s} {'ours':>7s} {'podman':>7s}  ours/floor, median of the rounds' "
          "(their spread; target >= 0.90)  podman/floor")
    rows = [("service to service, one bridge", "s2s"),
            ("host to a published port, 127.0.0.1", "127"),
            (f"host to a published port, {addr or 'a host address'}", "addr")]
    for what, k in rows:
        o, p = med(f"ours {k}"), med(f"podman {k}")
        ro, rp = ratios(f"ours {k}"), ratios(f"podman {k}")
        vs = statistics.median(ro) if ro else None
        verdict = "" if vs is None else ("  ok" if vs >= 0.9 else "  MISS")
        pm = f"{statistics.median(rp):.2f} ({spread(rp)})" if rp else "n/a"
        print(f"   {what:42s} {fmt(o)} {fmt(p)}  {fmt(cut3(vs), 3)} ({spread(ro)}){verdict:6s}"
              f"{'':9s}{pm}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
