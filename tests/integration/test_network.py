"""Networking, black-box: the default bridge network and named ones, between real services
(python3 from the host's root, bound read-only), with real TCP; outbound NAT to an "outside"
network namespace this test makes itself (198.51.100.0/24, TEST-NET-2: never a real address);
and what is left after a stop and after kill -9 plus a restart: nothing.

Names: every cgroup root here is crtest-<pid>-<n>, so the supervisor's bridges and veths are
crtestXXXX... and its nftables table corral-crtest-<pid>-<n> (tests/leftovers checks both).
net.ipv4.ip_forward is read before each test and must be the same after it."""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

import json

from conftest import (ASAN_SUPERVISOR, INIT, ROOT, ROOTFS, SANITIZER_RE, SUPERVISOR, SVCTL, T,
                      host_network_restored, mount_points, need, net_cleanup, read_text,
                      wait_until)
from test_supervisor import (Sup, cg_cleanup, cg_dirs, cgroot, children_of,  # noqa: F401
                             svc)  # (cgroot is a fixture)
from test_svctl import free_port

pytestmark = pytest.mark.cgroup

PY = "/usr/bin/python3"
FORWARD = Path("/proc/sys/net/ipv4/ip_forward")

SERVER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen()
while True:
    c, a = s.accept(); c.sendall(("hello from %s to %s\\n" % (sys.argv[2], a[0])).encode()); c.close()
"""
# client HOST PORT OUT: one answer (or the error) into OUT, retried for a while
CLIENT = """
import socket, sys, time
host, port, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
end = time.time() + float(sys.argv[4] if len(sys.argv) > 4 else 10)
while True:
    try:
        c = socket.create_connection((host, port), timeout=2)
        r = c.recv(200).decode().strip() or "empty"
    except OSError as e:
        r = "error %s %s" % (type(e).__name__, e.errno)
        if time.time() < end:
            time.sleep(0.1); continue
    break
open(out + ".tmp", "w").write(r + "\\n"); __import__("os").rename(out + ".tmp", out)
time.sleep(1000)
"""


def forward():
    return FORWARD.read_text().strip()


@pytest.fixture
def net_env(tmp_path):
    """tmp/x (the scripts, bound on /x), tmp/out (bound on /out), tmp/run (run_dir)."""
    x = tmp_path / "x"
    x.mkdir()
    (x / "server.py").write_text(SERVER)
    (x / "client.py").write_text(CLIENT)
    (tmp_path / "out").mkdir()
    return tmp_path


def links(prefix):
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    names = [m.group(1).split("@")[0] for m in re.finditer(r"^\d+: ([^:]+):", out, re.M)]
    return [n for n in names if n.startswith(prefix)]


def nft_tables():
    p = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True)
    return p.stdout.split()


def no_links_left(prefix, timeout=300):
    """Waits until no link named prefix* is left: the bridges the supervisor removes itself,
    the veths going with their containers' namespaces (the kernel's cleanup, soon after: its
    work queue tears namespaces down one after another, and under `make flake-check`'s load
    one veth outlived 30 s, and on 2026-12-07 one 90 s, with no process in or holding its
    namespace, and was gone by the run's end). On a timeout the
    failure says what is left and why it may be: each link's details (a veth's peer
    namespace), the processes in a network namespace not the host's or holding one open, and
    the kernel's lines about devices it could not free."""
    try:
        wait_until(lambda: links(prefix) == [], timeout, what=f"no link {prefix}*")
    except AssertionError as e:
        left = [subprocess.run(["ip", "-d", "-o", "link", "show", "dev", n], capture_output=True,
                               text=True).stdout.strip() for n in links(prefix)]
        host = os.readlink("/proc/self/ns/net")
        procs = []
        for d in os.listdir("/proc"):
            try:
                if not d.isdigit():
                    continue
                held = {os.readlink(f"/proc/{d}/ns/net")} - {host}
                for fd in os.listdir(f"/proc/{d}/fd"):
                    try:
                        t = os.readlink(f"/proc/{d}/fd/{fd}")
                    except OSError:
                        continue
                    if t.startswith("net:[") and t != host:
                        held.add(f"fd {fd}: {t}")
                if held:
                    procs.append(f"{d} {sorted(held)} "
                                 + read_text(f"/proc/{d}/cmdline").replace("\0", " ")[:120])
            except OSError:
                pass
        kernel = [line for line in subprocess.run(["dmesg"], capture_output=True,
                                                  text=True).stdout.splitlines()
                  if "unregister_netdevice" in line or "to become free" in line][-5:]
        pinned = [line for line in read_text("/proc/self/mountinfo").splitlines()
                  if " - nsfs " in line]
        raise AssertionError("\n".join([str(e), "left:", *left, "processes in other network "
                                        "namespaces:", *procs, "namespaces mounted:", *pinned,
                                        "kernel:", *kernel])) from None


def ifprefix(cgroot):
    """The supervisor's interface prefix: the last part of the root's first 6 letters/digits,
    then 4 base-36 digits of the root's FNV-1a hash (net/addr.c), so that a colleague's
    crtest-... root running at the same time is not counted."""
    h = 2166136261
    for b in cgroot.encode():
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    v, tail = h % 36 ** 4, ""
    for _ in range(4):
        v, d = divmod(v, 36)
        tail = "0123456789abcdefghijklmnopqrstuvwxyz"[d] + tail
    head = re.sub(r"[^a-z0-9]", "", cgroot.rsplit("/", 1)[-1].lower())[:6] or "c"
    return head + tail


def server(name, port=8000, **keys):
    return svc(name, f"{PY} /x/server.py {port} {name}", rootfs=None, bind="%(here)s/x:/x",
               startsecs=0, **keys)


def client(name, host, port=8000, wait=10, **keys):
    return svc(name, f"{PY} /x/client.py {host} {port} /out/{name} {wait}", rootfs=None,
               bind=["%(here)s/x:/x", "%(here)s/out:/out"], startsecs=0, **keys)


class NetSup(Sup):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.forward = forward()

    def stop(self, timeout=30):
        rc = super().stop(timeout)
        # given back by the supervisor itself at its clean exit (not on CNI networks: there
        # the bridge plugin sets it and keeps it, as under podman; the test gives it back)
        assert self.forward is None or forward() == self.forward, \
            "net.ipv4.ip_forward was not given back"
        return rc

    def write(self, services):
        text = (f"[supervisor]\ncgroup_root = {self.cgroot}\nlog_dir = {self.tmp}/logs\n"
                f"run_dir = {self.tmp}/run\ncontrol_socket = {self.tmp}/ctl.sock\n\n"
                + services)
        self.ini.write_text(text)

    def result(self, name, timeout=20):
        path = self.tmp / "out" / name
        wait_until(path.exists, timeout=T(timeout), what=f"{name}'s answer")
        return path.read_text().strip()

    def state(self):
        return read_text(self.tmp / "run" / self.cgroot / "state")

    def addr(self, svc_name, net="default"):
        m = re.search(rf"^addr {net} {svc_name} (\S+)", self.state(), re.M)
        return m.group(1) if m else None


def veths(prefix):
    """The `ip -d` lines of the veths named prefix*."""
    details = [subprocess.run(["ip", "-d", "-o", "link", "show", "dev", n], capture_output=True,
                              text=True).stdout for n in links(prefix)]
    return [d for d in details if " veth " in d]


def test_services_reach_each_other_by_name_over_the_default_bridge(h, net_env, cgroot):
    s = NetSup(h, net_env, cgroot, server("srv") + client("cli", "srv")).start()
    answer = s.result("cli")
    cli = s.addr("cli")
    assert cli and cli.startswith("10.89."), s.state()
    # the server saw the client's own address: bridged, not NATed
    assert answer == f"hello from srv to {cli}", answer
    hosts = read_text(net_env / "run" / cgroot / "hosts.default")   # shared by the network
    assert f"{s.addr('srv')}\tsrv" in hosts and f"{cli}\tcli" in hosts, hosts
    prefix = ifprefix(cgroot)
    assert len(links(prefix)) == 3, links(prefix)       # the bridge and two veths
    # a veth end has one queue each way (the kernel's default: one per possible CPU, each made
    # with the device), on the host and in the container
    pairs = veths(prefix)
    assert len(pairs) == 2, links(prefix)
    for d in pairs:
        assert "numtxqueues 1 numrxqueues 1 " in d, d
    inside = subprocess.run(["nsenter", "-t", str(s.init("srv")), "-n", "ip", "-d", "-o",
                             "link", "show", "dev", "eth0"], capture_output=True, text=True)
    assert "numtxqueues 1 numrxqueues 1 " in inside.stdout, inside
    # svctl status: each service's address and its traffic
    p = subprocess.run([str(SVCTL), "-s", str(net_env / "ctl.sock"), "--json", "status"],
                       capture_output=True, text=True, timeout=T(10))
    recs = {r["name"]: r for r in json.loads(p.stdout)}
    assert recs["cli"]["addr"] == cli and recs["srv"]["addr"] == s.addr("srv"), p.stdout
    assert int(recs["srv"]["net_tx_bytes"]) > len(answer), recs["srv"]   # its answer at least
    text = subprocess.run([str(SVCTL), "-s", str(net_env / "ctl.sock"), "status"],
                          capture_output=True, text=True, timeout=T(10)).stdout
    assert f"address {cli}" in text, text
    # hosts kept current: cli gone from it once stopped
    subprocess.run([str(SVCTL), "-s", str(net_env / "ctl.sock"), "stop", "cli"],
                   capture_output=True, timeout=T(30))
    hosts_file = net_env / "run" / cgroot / "hosts.default"
    wait_until(lambda: "\tcli\n" not in read_text(hosts_file), what="cli out of hosts")
    assert f"{s.addr('srv')}\tsrv" in read_text(hosts_file)
    assert s.stop() == 0
    assert f"corral-{cgroot}" not in nft_tables()
    # the veths go with the containers' namespaces (the kernel's cleanup, soon after)
    no_links_left(prefix)


def test_a_containers_veth_pair_goes_with_it_while_its_namespace_is_held(h, net_env, cgroot):
    """A container's veth pair goes when the container does, not only when its namespace
    does: here the test holds both services' namespaces open (as the kernel's clean-up
    running late under load, or a socket outliving its process, would) and each pair is gone
    all the same, after its service's stop and after the supervisor's."""
    s = NetSup(h, net_env, cgroot, server("srv") + server("two", port=8001)).start()
    s.wait_log(r"^supervisor: srv: started")
    s.wait_log(r"^supervisor: two: started")
    prefix = ifprefix(cgroot)
    held = [os.open(f"/proc/{s.init(n)}/ns/net", os.O_RDONLY) for n in ("srv", "two")]
    try:
        assert len(veths(prefix)) == 2, links(prefix)
        subprocess.run([str(SVCTL), "-s", str(net_env / "ctl.sock"), "stop", "srv"],
                       capture_output=True, timeout=T(30))
        wait_until(lambda: len(veths(prefix)) == 1, 20, what="srv's veth pair gone")
        assert s.stop() == 0
        wait_until(lambda: veths(prefix) == [], 20, what="two's veth pair gone")
    finally:
        for fd in held:
            os.close(fd)
    no_links_left(prefix)


def test_addresses_are_stable_across_restarts(h, net_env, cgroot):
    s = NetSup(h, net_env, cgroot, server("a") + server("b") + server("c")).start()
    s.wait_log(r"^supervisor: c: started \(pid")
    first = {n: s.addr(n) for n in "abc"}
    assert len(set(first.values())) == 3 and all(first.values()), first
    assert s.stop() == 0
    s.write(server("c") + server("b"))                   # another order, a gone
    s.start()
    s.wait_log(r"^supervisor: b: started \(pid")
    assert s.addr("b") == first["b"] and s.addr("c") == first["c"]
    # a, gone from the file, had its address given back at the start
    assert s.addr("a") is None, s.state()
    assert "network default: address of a given back (no longer in the config)" in s.log()
    # a reload removing b (running): its address goes once it is down, c's stays
    s.write(server("c"))
    subprocess.run([str(SVCTL), "-s", str(net_env / "ctl.sock"), "reload"], check=True,
                   capture_output=True, timeout=T(30))
    wait_until(lambda: s.addr("b") is None, what="b's address given back")
    wait_until(lambda: "\tb\n" not in read_text(net_env / "run" / s.cgroot / "hosts.default"),
               what="b out of the hosts file")
    assert s.addr("c") == first["c"]
    assert s.stop() == 0


def test_networks_cannot_reach_each_other(h, net_env, cgroot):
    conf = ("[network:one]\n\n[network:two]\n\n" + server("srv", network="bridge:one")
            + client("same", "srv", network="bridge:one")
            + client("other", "srv", network="bridge:two", wait=2))
    s = NetSup(h, net_env, cgroot, conf).start()
    assert s.result("same").startswith("hello from srv"), s.result("same")
    # `other` does not even know the name; by address it is dropped between the bridges
    assert s.result("other").startswith("error gaierror"), s.result("other")
    srv = s.addr("srv", "one")
    s.write(conf.replace("client.py srv 8000 /out/other", f"client.py {srv} 8000 /out/other2"))
    (net_env / "out" / "other").unlink()
    assert s.run("--check")[0] == 0
    s.p.send_signal(signal.SIGHUP)
    r = s.result("other2", timeout=30)
    assert r.startswith("error") and "hello" not in r, r      # dropped: a time-out
    assert s.stop() == 0


class Outside:
    """The "outside": a network namespace held by a process of the test's own (no `ip netns
    add`, which would leave /run/netns mounted on the host), reached with nsenter."""
    def __init__(self, pid):
        self.pid, self.addr = pid, "198.51.100.2"

    def cmd(self, *argv):
        return ["nsenter", "-t", str(self.pid), "-n", "--", *argv]


@pytest.fixture
def outside(net_env):
    """A network namespace on a host veth: the "outside" (198.51.100.2, the host's end .1),
    with a server that answers with the address it sees."""
    hostend = f"crtest{os.getpid() % 100000}o"
    run = lambda *a: subprocess.run(list(a), check=True, capture_output=True)
    holder = subprocess.Popen(["unshare", "--net", "--", "sleep", "infinity"])
    p = None
    try:
        mine = os.readlink("/proc/self/ns/net")
        wait_until(lambda: os.readlink(f"/proc/{holder.pid}/ns/net") != mine,
                   what="the outside namespace made")
        out = Outside(holder.pid)
        run("ip", "link", "add", hostend, "type", "veth", "peer", "name", "o0", "netns",
            str(holder.pid))
        run("ip", "addr", "add", "198.51.100.1/24", "dev", hostend)
        run("ip", "link", "set", hostend, "up")
        run(*out.cmd("ip", "addr", "add", "198.51.100.2/24", "dev", "o0"))
        run(*out.cmd("ip", "link", "set", "o0", "up"))
        run(*out.cmd("ip", "link", "set", "lo", "up"))
        p = subprocess.Popen(out.cmd(PY, str(net_env / "x" / "server.py"), "9000", "outside"))
        yield out
    finally:
        if p:
            p.kill()
            p.wait()
        subprocess.run(["ip", "link", "del", hostend], capture_output=True)
        holder.kill()
        holder.wait()


def test_outbound_nat_and_internal_networks(h, net_env, cgroot, outside):
    conf = ("[network:closed]\ninternal = true\n\n"
            + client("out", outside.addr, port=9000)
            + client("shut", outside.addr, port=9000, network="bridge:closed", wait=1)
            + server("peer", network="bridge:closed")
            + client("near", "peer", network="bridge:closed"))
    s = NetSup(h, net_env, cgroot, conf).start()
    # masqueraded: the outside sees the host's address on its link, not the container's
    assert s.result("out") == "hello from outside to 198.51.100.1", s.result("out")
    assert forward() == "1"
    # an internal network has no way out (no route), but its members reach each other
    assert s.result("shut") == "error OSError 101", s.result("shut")   # ENETUNREACH
    assert s.result("near").startswith("hello from peer"), s.result("near")
    assert s.stop() == 0


def outside_client(outside, host, port):
    """connects from the outside namespace; returns the answer (or the error)."""
    code = ("import socket,sys\ntry:\n c=socket.create_connection((sys.argv[1],int(sys.argv[2])),"
            "timeout=3); print(c.recv(200).decode().strip())\nexcept OSError as e: print('error',e)")
    p = subprocess.run(outside.cmd(PY, "-c", code, host, str(port)),
                       capture_output=True, text=True, timeout=T(20))
    return p.stdout.strip()


def host_client(host, port):
    try:
        with socket.create_connection((host, port), timeout=3) as c:
            return c.recv(200).decode().strip()
    except OSError as e:
        return f"error {e}"


@pytest.mark.parametrize("binary", [ASAN_SUPERVISOR, SUPERVISOR], ids=["asan", "release"])
def test_published_ports(h, net_env, cgroot, outside, binary):
    """Also with the release binary: a static PIE that dlopens libmnl and libnftables (each
    with a C library of its own), which the sanitizers' build (dynamic) does not show."""
    port = 20000 + os.getpid() % 20000
    s = NetSup(h, net_env, cgroot, server("web", ports=f"{port}:8000")
               + server("udpless", port=8001, ports=f"127.0.0.1:{port + 1}:8001"),
               binary=binary).start()
    s.wait_log(r"^supervisor: udpless: started \(pid")
    web = s.addr("web")
    # from the host at 127.0.0.1 (masqueraded: the container sees its gateway), at a host
    # address (seen as itself), from the outside namespace (its own address preserved)
    r = wait_until(lambda: host_client("127.0.0.1", port).startswith("hello") and
                   host_client("127.0.0.1", port), what="127.0.0.1 answers")
    gw = web.rsplit(".", 1)[0] + ".1"
    assert r == f"hello from web to {gw}", r
    assert host_client("198.51.100.1", port) == "hello from web to 198.51.100.1"
    assert outside_client(outside, "198.51.100.1", port) == "hello from web to 198.51.100.2"
    # bound to 127.0.0.1 only: not from outside
    # (its server listens a moment after its start: waited for, as web's was; refused under
    # `make flake-check`'s load when asked once)
    wait_until(lambda: host_client("127.0.0.1", port + 1).startswith("hello from udpless"),
               what="udpless at 127.0.0.1")
    assert outside_client(outside, "198.51.100.1", port + 1).startswith("error")
    assert s.stop() == 0
    assert host_client("127.0.0.1", port).startswith("error")     # gone with the table


class FileSup(NetSup):
    """A supervisor over a whole file as it is (services: its text)."""

    def write(self, services):
        self.ini.write_text(services)


def test_the_network_example_runs(h, tmp_path, cgroot):
    """conf/network.ini as shipped (but for its cgroup root and published port, the test's
    own): app reaches db by name over the internal network, web answers at its published port
    from the host, and nothing of it is left after the stop."""
    need(ROOTFS / "bin/busybox")
    top = tmp_path / "top"
    shutil.copytree(ROOT / "conf", top / "conf")
    (top / "build").mkdir()
    (top / "build" / "rootfs").symlink_to(ROOTFS)
    text = (top / "conf" / "network.ini").read_text()
    assert "cgroup_root = corral-net\n" in text and "ports = 18080:8080\n" in text
    port = free_port()
    text = text.replace("cgroup_root = corral-net\n", f"cgroup_root = {cgroot}\n")
    text = text.replace("ports = 18080:8080\n", f"ports = {port}:8080\n")
    s = FileSup(h, top / "conf", cgroot, text, name="network.ini").start()
    log = top / "build" / "logs" / "app.out.log"
    wait_until(lambda: "db says: +PONG" in read_text(log), 30, what="app's answer from db")

    def page():
        """web's page, once it is the example's (one request a try)."""
        with socket.create_connection(("127.0.0.1", port), timeout=3) as c:
            c.sendall(b"GET / HTTP/1.0\r\n\r\n")
            data = b""
            while chunk := c.recv(65536):
                data += chunk
        text = data.decode(errors="replace")
        return text if "Hello from a corral container" in text else None
    r = wait_until(page, 30, what="web at its published port")
    assert r.startswith("HTTP/1.") and " 200 " in r.splitlines()[0], r
    assert s.stop() == 0
    no_links_left(ifprefix(cgroot))
    assert f"corral-{cgroot}" not in nft_tables()
    assert host_client("127.0.0.1", port).startswith("error")


def test_published_port_in_use_is_that_services_error(h, net_env, cgroot):
    taken = socket.socket()
    taken.bind(("0.0.0.0", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        s = NetSup(h, net_env, cgroot, server("clash", ports=f"{port}:8000",
                                              startretries=0)
                   + server("fine")).start()
        s.wait_log(rf"clash: cannot connect its container to its networks: ports: "
                   rf"{port}->8000/tcp: port {port}/tcp is already in use on the host")
        s.wait_log(r"^supervisor: fine: started \(pid")
        assert s.stop() == 0
    finally:
        taken.close()


def test_service_network_shares_localhost(h, net_env, cgroot):
    """network = service:srv: the sidecar is in srv's namespace (srv starts first, implicit),
    so srv's 127.0.0.1:8000 is its own."""
    s = NetSup(h, net_env, cgroot, client("side", "127.0.0.1", network="service:srv")
               + server("srv")).start()
    assert s.result("side") == "hello from srv to 127.0.0.1", s.result("side")
    sp = s.init("side")
    so = s.init("srv")
    assert os.readlink(f"/proc/{sp}/ns/net") == os.readlink(f"/proc/{so}/ns/net")
    assert s.stop() == 0


def test_nothing_left_after_kill9_and_restart(h, net_env, cgroot):
    s = NetSup(h, net_env, cgroot, server("srv") + client("cli", "srv")).start()
    s.result("cli")
    prefix = ifprefix(cgroot)
    assert links(prefix)
    s.p.send_signal(signal.SIGKILL)
    s.p.wait(T(10))
    # the bridge and the table stay behind the killed supervisor...
    assert any(n for n in links(prefix)) and f"corral-{cgroot}" in nft_tables()
    (net_env / "out" / "cli").unlink()
    s.start()
    s.wait_log(r"removed the nftables table corral-")
    assert s.result("cli").startswith("hello from srv")
    assert s.stop() == 0
    # ...and the next one takes them away, and gives ip_forward back (NetSup.stop checks)
    assert f"corral-{cgroot}" not in nft_tables()
    no_links_left(prefix)


def test_state_file_is_read_up_to_its_end_line(h, net_env, cgroot):
    """The state file is rewritten in place (no rename: /run is ext4 on some machines, and a
    rename there writes the file out on every start) and ends with an `end` line; what
    follows it — the tail of a longer old text, were the process killed between the write
    and the cut — is never read: the subnet named there is not taken, the one before it is."""
    d = net_env / "run" / cgroot
    d.mkdir(parents=True)
    (d / "state").write_text("# corral\nsubnet default 10.89.77.0/24\nend\n"
                             "subnet default 10.89.78.0/24\naddr default srv 10.89.78.9\n")
    s = NetSup(h, net_env, cgroot, server("srv")).start()
    s.wait_log(r"^supervisor: srv: started")
    wait_until(lambda: s.addr("srv"), what="srv's address in the state file")
    assert s.addr("srv").startswith("10.89.77."), s.state()
    assert s.state().endswith("\nend\n") and "10.89.78" not in s.state(), s.state()
    assert not (d / "state.new").exists()
    assert s.stop() == 0


# `supervisor run NAME`: the service's networks, beside the supervisor of the same root
ASK = ("import socket, sys, time\n"
       "end = time.time() + 30\n"
       "while True:\n"
       "    try:\n"
       "        c = socket.create_connection((sys.argv[1], 8000), timeout=5); break\n"
       "    except ConnectionRefusedError:\n"
       "        if time.time() > end: raise\n"
       "        time.sleep(0.05)\n"
       "print(c.recv(200).decode().strip())\n"
       "print('route', ' '.join(l.split()[0] for l in open('/proc/net/route').readlines()[1:]"
       " if l.split()[1] == '00000000'))\n"
       "print('hosts', ' '.join(l.split()[1] for l in open('/etc/hosts') if l[0].isdigit()))\n")


FORWARD_DIR = Path("/run/corral-ip-forward")


@pytest.fixture
def two_roots(net_env, cgroot):
    """A second cgroup root beside cgroot (its own folder net_env/b: x, out, run), removed
    after as cgroot is."""
    other = f"{cgroot}-b"
    b = net_env / "b"
    shutil.copytree(net_env / "x", b / "x")
    (b / "out").mkdir()
    yield other, b
    cg_cleanup(other)
    net_cleanup(other)
    assert not cg_dirs(other), f"cgroup root {other} left behind"


@pytest.mark.parametrize("first_ends", ["stops", "is killed"])
def test_ip_forward_is_given_back_by_the_last_supervisor_using_it(h, net_env, cgroot,
                                                                   two_roots, outside,
                                                                   first_ends):
    """net.ipv4.ip_forward is the host's: two supervisors of two cgroup roots on bridges
    both need it. The first sets it from 0; when it ends (a clean stop, or kill -9) the other
    still holds it at 1 and its services still reach out; the last one gives back the 0 and
    leaves no holders' folder."""
    if forward() != "0":
        pytest.skip("net.ipv4.ip_forward is 1 on this host: there is no 0 to give back")
    other, b_env = two_roots
    a = NetSup(h, net_env, cgroot, server("srv")).start()
    a.wait_log(r"^supervisor: srv: started")
    assert forward() == "1"
    b = NetSup(h, b_env, other, server("srv2") + client("cli", outside.addr, port=9000,
                                                          wait=30, autostart="false")).start()
    b.wait_log(r"^supervisor: srv2: started")
    assert len([p for p in FORWARD_DIR.iterdir() if p.name != "from0"]) == 2, \
        list(FORWARD_DIR.iterdir())
    if first_ends == "stops":
        a.forward = "1"            # what NetSup.stop checks: kept for b
        assert a.stop() == 0
        assert "net.ipv4.ip_forward stays 1 for 1 other supervisor" in a.log(), a.log()
    else:
        a.p.send_signal(signal.SIGKILL)
        a.p.wait(T(10))
    assert forward() == "1"
    # b's containers still get out: routed (forwarded) and masqueraded to the outside
    r = subprocess.run([str(SVCTL), "-s", str(b_env / "ctl.sock"), "start", "cli"],
                       capture_output=True, text=True, timeout=T(30))
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert b.result("cli") == "hello from outside to 198.51.100.1", b.result("cli")
    assert forward() == "1"
    b.forward = "0"                # the last one: 0 again, its dead neighbour's hold dropped
    assert b.stop() == 0
    assert forward() == "0"
    assert not FORWARD_DIR.exists(), list(FORWARD_DIR.iterdir())


def test_ip_forward_without_the_holders_folder(h, net_env, cgroot):
    """Where the holders' folder cannot be made (here: a file in its place), a supervisor on a
    bridge still starts, sets net.ipv4.ip_forward from 0, says so once, and gives back its 0
    at its exit, as before there were holders."""
    if forward() != "0":
        pytest.skip("net.ipv4.ip_forward is 1 on this host: there is no 0 to give back")
    if FORWARD_DIR.exists():
        pytest.skip(f"{FORWARD_DIR} is in use (another supervisor on a bridge)")
    FORWARD_DIR.write_text("")
    try:
        s = NetSup(h, net_env, cgroot, server("srv")).start()
        s.wait_log(r"^supervisor: srv: started")
        assert forward() == "1"
        assert s.log().count("net.ipv4.ip_forward's holders not kept") == 1, s.log()
        assert s.stop() == 0       # NetSup.stop: given back (0)
    finally:
        FORWARD_DIR.unlink()


def test_run_gets_the_services_network(h, net_env, cgroot):
    """A `run` of a bridge service beside its supervisor: the supervisor connects its
    container (net-connect on its control socket): an address of its own on the service's
    network (leased as NAME.run-PID, given back after), the default route, the services by
    name; no published port; the supervisor's bridge and table untouched."""
    (net_env / "x" / "ask.py").write_text(ASK)
    s = NetSup(h, net_env, cgroot, server("srv") + svc(
        "cli", "/bin/true", rootfs=None, bind="%(here)s/x:/x", autostart="false",
        ports="18391:8000")).start()
    s.wait_log(r"^supervisor: srv: started")
    prefix = ifprefix(cgroot)
    before = sorted(links(prefix))
    resolv = net_env / "run" / cgroot / "resolv.conf"
    resolv_made = resolv.stat().st_mtime_ns
    rc, out, err = s.run("run", "cli", "--", PY, "/x/ask.py", "srv")
    assert rc == 0, (out, err)
    # the shared resolv.conf had the run's text already: left as it was, not written again
    assert resolv.stat().st_mtime_ns == resolv_made
    lines = out.splitlines()
    m = re.fullmatch(r"hello from srv to (10\.89\.\d+\.\d+)", lines[0])
    assert m, out
    assert m.group(1) not in (s.addr("srv"), s.addr("cli")), (out, s.state())
    assert lines[1] == "route eth0" and "srv" in lines[2].split(), out
    # the supervisor connected it, at the address the run's container had
    said = s.wait_log(r"^supervisor: run cli\.run-(\d+) \(pid \1\): connected, (\S+)$")
    assert said[0][1] == m.group(1), (said, out)
    # its lease and files given back once the run is gone; the supervisor's bridge still
    # there, its table alone (the run made no table of its own)
    wait_until(lambda: ".run-" not in s.state(), what="the run's lease given back")
    wait_until(lambda: not [p for p in (net_env / "run" / cgroot).iterdir()
                            if ".run-" in p.name or p.name.startswith("run-")],
               what="the run's files removed")
    wait_until(lambda: sorted(links(prefix)) == before, 30, what="the run's veth gone")
    assert [t for t in nft_tables() if t.startswith(f"corral-{cgroot}")] == [f"corral-{cgroot}"]
    # srv still answers its own clients: nothing of the supervisor's was changed
    assert s.stop() == 0
    no_links_left(prefix)


def test_a_connected_run_is_let_go_after_a_reexec(h, net_env, cgroot):
    """A run the supervisor connected, then `svctl reexec`: the new program watches it
    again, and gives its address and files back when it ends; a second run meanwhile is
    connected by the new program."""
    s = NetSup(h, net_env, cgroot, server("srv")).start()
    s.wait_log(r"^supervisor: srv: started")
    state_dir = net_env / "run" / cgroot
    p, _, err = h.popen([ASAN_SUPERVISOR, "-c", s.ini, "run", "srv", "--", "/bin/sleep",
                         "1000"], env={"CORRAL_INIT": str(INIT)})
    s.wait_log(rf"^supervisor: run srv\.run-{p.pid} \(pid {p.pid}\): connected, ")
    assert f"srv.run-{p.pid}" in s.state()
    r = subprocess.run([str(SVCTL), "-c", str(s.ini), "reexec"], capture_output=True, text=True,
                       timeout=T(30))
    assert r.returncode == 0, (r.stdout, r.stderr)
    s.wait_log(r"^supervisor: reexec: no event handled for ")
    assert "not taken back" not in s.log(), s.log()
    rc, out, e = s.run("run", "srv", "--", "/bin/true")
    assert rc == 0, (out, e)
    p.send_signal(signal.SIGTERM)
    assert p.wait(T(20)) in (0, 143, -15), read_text(err)
    assert not re.search(SANITIZER_RE, read_text(err)), read_text(err)
    wait_until(lambda: ".run-" not in s.state(), what="the runs' leases given back")
    wait_until(lambda: not [d for d in state_dir.iterdir() if ".run-" in d.name],
               what="the runs' files removed")
    assert len(re.findall(r"^supervisor: run srv\.run-\d+ \(pid \d+\): connected, ", s.log(),
                          re.M)) == 2, s.log()
    assert s.stop() == 0
    no_links_left(ifprefix(cgroot))


def test_a_connected_run_is_in_its_own_files_only_and_shares_its_namespace(h, net_env, cgroot):
    """A run the supervisor connects: it made its container's network namespace at its start
    and is in it (its init inherited it: not the host's); its own hosts file lists it under
    its service's name beside the services of its network; no service's file lists it."""
    s = NetSup(h, net_env, cgroot, server("srv") + svc(
        "cli", "/bin/true", rootfs=None, autostart="false")).start()
    s.wait_log(r"^supervisor: srv: started")
    p, _, err = h.popen([ASAN_SUPERVISOR, "-c", s.ini, "run", "cli", "--", "/bin/sleep",
                         "1000"], env={"CORRAL_INIT": str(INIT)})
    said = s.wait_log(rf"^supervisor: run cli\.run-{p.pid} \(pid {p.pid}\): connected, (\S+)$")
    addr = said[0]
    init = wait_until(lambda: children_of(p.pid), what="the run's init")[0]
    ns = lambda pid: os.readlink(f"/proc/{pid}/ns/net")
    assert ns(p.pid) == ns(init) != ns(os.getpid())
    state_dir = net_env / "run" / cgroot
    own = read_text(state_dir / f"cli.run-{p.pid}" / "hosts")
    assert re.search(rf"^{re.escape(addr)}\tcli$", own, re.M), own
    assert re.search(rf"^{re.escape(s.addr('srv'))}\tsrv$", own, re.M), own
    shared = read_text(state_dir / "hosts.default")
    assert "srv" in shared and addr not in shared and "cli" not in shared, shared
    p.send_signal(signal.SIGTERM)
    assert p.wait(T(20)) in (0, 143, -15), read_text(err)
    assert not re.search(SANITIZER_RE, read_text(err)), read_text(err)
    assert s.stop() == 0
    no_links_left(ifprefix(cgroot))


def test_a_run_in_a_user_namespace_gets_a_network_namespace_of_that_user_namespace(
        h, net_env, cgroot):
    """A run with a user namespace is connected after its clone, in the network namespace
    made with that user namespace: its root may bind port 80 there."""
    bind = ("import socket; s = socket.socket(); s.bind(('0.0.0.0', 80)); "
            "print('bound', flush=True)")
    s = NetSup(h, net_env, cgroot, server("srv") + svc(
        "u", f"{PY} -c \"{bind}\"", rootfs=None, autostart="false",
        namespaces="pid,mount,uts,ipc,net,user", uid_map="0:3100000:65536",
        gid_map="0:3100000:65536"))
    # the hosts files where the user namespace's root can reach them (pytest's folder is
    # its owner's only)
    run_dir = Path(tempfile.mkdtemp(prefix="crtest-run-", dir="/tmp"))
    try:
        run_dir.chmod(0o755)
        s.ini.write_text(s.ini.read_text().replace(f"run_dir = {net_env}/run",
                                                   f"run_dir = {run_dir}"))
        s.start()
        s.wait_log(r"^supervisor: srv: started")
        rc, out, err = s.run("run", "u")
        assert rc == 0 and out.strip() == "bound", (rc, out, err)
        s.wait_log(r"^supervisor: run u\.run-\d+ \(pid \d+\): connected, ")
        assert s.stop() == 0
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    no_links_left(ifprefix(cgroot))


def test_run_connects_itself_when_the_supervisor_lacks_its_network(h, net_env, cgroot):
    """The supervisor of the root has not the run's network in its config: it says no to
    net-connect (nothing done), and the run connects its container itself, as alone (its
    own bridge for that network, removed at its end), while the supervisor's stay."""
    s = NetSup(h, net_env, cgroot, server("srv")).start()
    s.wait_log(r"^supervisor: srv: started")
    prefix = ifprefix(cgroot)
    before = sorted(links(prefix))
    other = net_env / "other.ini"
    other.write_text(s.ini.read_text() + svc(
        "cli", "/bin/true", rootfs=None, bind="%(here)s/x:/x", network="bridge:side")
        + "[network:side]\nsubnet = 10.123.7.0/24\n")
    p, out, err = h.popen([ASAN_SUPERVISOR, "-c", other, "run", "cli", "--", "/bin/cat",
                           "/proc/net/route"], env={"CORRAL_INIT": str(INIT)})
    assert p.wait(T(30)) == 0, read_text(err)
    assert not re.search(SANITIZER_RE, read_text(err)), read_text(err)
    assert re.search(r"^eth0\t00000000\t", read_text(out), re.M), (read_text(out), read_text(err))
    assert "connected" not in s.log(), s.log()
    assert f"{p.pid}" not in s.log(), s.log()
    wait_until(lambda: sorted(links(prefix)) == before, 30, what="the run's links gone")
    assert ".run-" not in s.state(), s.state()
    assert s.stop() == 0
    no_links_left(prefix)


def test_net_connect_is_only_for_the_run_itself(h, net_env, cgroot):
    """net-connect answers only the run whose pid it names, of the supervisor's cgroup root,
    for its own new network namespace or its child's, on the supervisor's networks, with a
    plain name; each refusal changes nothing."""
    s = NetSup(h, net_env, cgroot, server("srv")).start()
    s.wait_log(r"^supervisor: srv: started")
    state = s.state()
    me = os.getpid()
    child = subprocess.Popen(["/bin/sleep", "100"])
    try:
        def ask(line):
            c = socket.socket(socket.AF_UNIX)
            c.connect(str(net_env / "ctl.sock"))
            c.sendall(line.encode() + b"\n")
            r = c.makefile().readline().strip()
            c.close()
            return r
        assert ask(f"net-connect x {me + 1} {child.pid} {cgroot} default").startswith("error denied ")
        assert ask(f"net-connect x {me} {os.getppid()} {cgroot} default") == \
            f"error failed net-connect: pid {os.getppid()} is not a child or a thread of pid {me}"
        # the run's own namespace (made at its start) or its child's, never the supervisor's
        assert ask(f"net-connect x {me} {me} {cgroot} default") == \
            f"error failed net-connect: pid {me} is in the supervisor's own network namespace"
        assert ask(f"net-connect x {me} {child.pid} {cgroot} default") == \
            f"error failed net-connect: pid {child.pid} is in the supervisor's own network " \
            "namespace"
        assert ask(f"net-connect ../x {me} {child.pid} {cgroot} default") == \
            "error failed net-connect: bad service name: ../x"
        assert ask(f"net-connect x {me} {child.pid} {cgroot} nope") == \
            "error failed net-connect: network nope is not one of this supervisor's"
        assert ask(f"net-connect x {me} {child.pid} other default") == \
            f"error failed net-connect: cgroup root other is not this supervisor's ({cgroot})"
        assert ask(f"net-connect x {me} {child.pid} {cgroot}").startswith("error usage ")
    finally:
        child.kill()
        child.wait()
    assert s.state() == state
    assert "connected" not in s.log()
    assert s.stop() == 0


LO = ("import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); "
      "c = socket.create_connection(s.getsockname(), timeout=2); print('lo answers')")


def test_a_runs_namespace_is_made_ahead_for_none_and_bridge_and_not_for_host(h, net_env, cgroot):
    """A run makes its container's network namespace while it reads its file (run_net.h):
    with network = none the container gets it (its own: lo, up, and nothing else), as with
    network = bridge (lo and eth0, whether a supervisor of the root connects it or the run
    does; eth0 without an IPv6 link-local address on a network without subnet6), and with
    network = host the host's, the one made ahead left unused."""
    s = NetSup(h, net_env, cgroot, "")
    s.write(svc("iso", "/bin/true", rootfs=None, network="none", startsecs=0) +
            svc("hostnet", "/bin/true", rootfs=None, network="host", startsecs=0) +
            server("srv"))
    show = ("readlink /proc/self/ns/net; "
            "sed -n 's/^ *\\([a-z0-9]*\\):.*/if \\1/p' /proc/net/dev; "
            f"{PY} -c \"{LO}\"")
    host_ns = os.readlink("/proc/self/ns/net")
    rc, out, err = s.run("run", "iso", "--", "/bin/sh", "-c", show)
    assert rc == 0, (out, err)
    lines = out.splitlines()
    assert lines[0] != host_ns and lines[0].startswith("net:["), out
    assert sorted(lines[1:-1]) == ["if lo"] and lines[-1] == "lo answers", out
    rc, out, err = s.run("run", "hostnet", "--", "/bin/sh", "-c", "readlink /proc/self/ns/net")
    assert rc == 0 and out.strip() == host_ns, (out, err)
    # a bridge, alone (the run connects it), then beside a supervisor that does
    prefix = ifprefix(cgroot)
    for alone in (True, False):
        if not alone:
            s.start()
            s.wait_log("srv: STARTING -> RUNNING")
        rc, out, err = s.run("run", "srv", "--", "/bin/sh", "-c", show)
        assert rc == 0, (out, err)
        lines = out.splitlines()
        assert lines[0] != host_ns, out
        assert sorted(lines[1:-1]) == ["if eth0", "if lo"] and lines[-1] == "lo answers", out
        rc, out, err = s.run("run", "srv", "--", "/bin/cat", "/proc/net/if_inet6")
        assert rc == 0 and "lo" in out and "eth0" not in out, (out, err)
        assert alone or re.search(r"run srv\.run-\d+ \(pid \d+\): connected", s.log()), s.log()
    assert s.stop() == 0
    no_links_left(prefix)


def test_run_alone_makes_and_removes_its_network(h, net_env, cgroot):
    """No supervisor of the root runs: the run makes the bridge (and its NAT table) for its
    container, and removes both when it ends."""
    (net_env / "x" / "ask.py").write_text(ASK)
    s = NetSup(h, net_env, cgroot, server("srv"))
    s.write(server("srv"))
    before = forward()
    rc, out, err = s.run("run", "srv", "--", "/bin/sh", "-c",
                         f"{PY} /x/server.py 8000 srv & {PY} /x/ask.py 127.0.0.1")
    assert rc == 0, (out, err)
    assert out.splitlines()[1] == "route eth0", out
    assert re.match(r"hello from srv to 127\.0\.0\.1", out), out
    prefix = ifprefix(cgroot)
    no_links_left(prefix)
    assert not [t for t in nft_tables() if t.startswith(f"corral-{cgroot}")]
    assert forward() == before
    assert ".run-" not in s.state()
    # the run's pick of the network's subnet is kept, for the supervisor and later runs
    assert re.search(r"^subnet default 10\.89\.\d+\.0/24$", s.state(), re.M), s.state()


def test_a_killed_run_is_swept_by_the_next_run_and_supervisor(h, net_env, cgroot):
    """A `run` killed -9 leaves its bridge and its table (corral-ROOT-rPID): the next run of
    the root removes them (its mark, STATE/run-PID, is no longer locked), and keeps a live
    run's; a supervisor's start does the same."""
    s = NetSup(h, net_env, cgroot, server("srv"))
    s.write(server("srv"))
    table = f"corral-{cgroot}"
    prefix = ifprefix(cgroot)
    state = net_env / "run" / cgroot

    def run_bg():
        p, _, err = h.popen([ASAN_SUPERVISOR, "-c", s.ini, "run", "srv", "--", "/bin/sleep",
                             "1000"], env={"CORRAL_INIT": str(INIT)})
        wait_until(lambda: f"{table}-r{p.pid}" in nft_tables() or p.poll() is not None,
                   what=f"the table of run {p.pid}")
        assert p.poll() is None, read_text(err)
        return p, err

    k, _ = run_bg()
    assert (state / f"run-{k.pid}").exists() and links(prefix)
    k.send_signal(signal.SIGKILL)
    k.wait(T(10))
    assert f"{table}-r{k.pid}" in nft_tables()
    live, live_err = run_bg()      # sweeps k's table and bridge, makes its own
    log = read_text(live_err)
    assert f"{table}-r{k.pid}" not in nft_tables(), log
    assert re.search(rf"removed the nftables table {re.escape(table)}-r{k.pid}, left by a "
                     r"killed run", log), log
    assert not (state / f"run-{k.pid}").exists()
    rc, out, err = s.run("run", "srv", "--", "/bin/true")
    assert rc == 0, (out, err)
    assert f"{table}-r{live.pid}" in nft_tables(), err        # the live run's: kept
    assert (state / f"run-{live.pid}").exists()
    live.send_signal(signal.SIGKILL)
    live.wait(T(10))
    s.start()                       # a supervisor's start sweeps the second one
    s.wait_log(rf"removed the nftables table {re.escape(table)}-r{live.pid}, left by a killed run")
    s.wait_log(r"^supervisor: srv: started")
    assert [t for t in nft_tables() if t.startswith(table)] == [table]
    assert not [p for p in state.iterdir() if p.name.startswith("run-")]
    assert s.stop() == 0
    no_links_left(prefix)
    assert not [t for t in nft_tables() if t.startswith(table)]


def bridge_links(prefix):
    out = subprocess.run(["ip", "-o", "link", "show", "type", "bridge"], capture_output=True,
                         text=True).stdout
    return [n for n in re.findall(r"^\d+: ([^:@]+)", out, re.M) if n.startswith(prefix)]


def test_a_run_leaves_its_bridge_to_a_supervisor_that_took_it_over(h, net_env, cgroot):
    """A `run` alone makes the network's bridge; a supervisor of the root started meanwhile
    takes that bridge over for its services; when the run ends it removes its own table
    only, and the bridge stays the supervisor's (its services still reached over it) until
    the supervisor's own end."""
    s = NetSup(h, net_env, cgroot, server("srv"))
    s.write(server("srv"))
    table = f"corral-{cgroot}"
    prefix = ifprefix(cgroot)
    p, _, err = h.popen([ASAN_SUPERVISOR, "-c", s.ini, "run", "srv", "--", "/bin/sleep",
                         "1000"], env={"CORRAL_INIT": str(INIT)})
    wait_until(lambda: f"{table}-r{p.pid}" in nft_tables() or p.poll() is not None,
               what=f"the table of run {p.pid}")
    assert p.poll() is None, read_text(err)
    bridge = bridge_links(prefix)
    assert len(bridge) == 1, bridge
    s.start()
    s.wait_log(r"^supervisor: srv: started")
    assert re.search(rf"^bridge {bridge[0]}$", s.state(), re.M), s.state()
    srv = s.addr("srv")
    wait_until(lambda: host_client(srv, 8000).startswith("hello from srv"), 20,
               what="srv over the bridge")
    p.send_signal(signal.SIGTERM)          # the run ends
    assert p.wait(T(20)) in (0, 143, -15), read_text(err)
    assert not re.search(SANITIZER_RE, read_text(err)), read_text(err)
    assert f"{table}-r{p.pid}" not in nft_tables()
    assert bridge_links(prefix) == bridge               # the supervisor's now: left
    assert table in nft_tables()
    assert host_client(srv, 8000).startswith("hello from srv")
    assert s.stop() == 0
    assert bridge_links(prefix) == []                   # removed by the supervisor itself
    no_links_left(prefix)
    assert not [t for t in nft_tables() if t.startswith(table)]


def test_print_spec_shows_the_network(h, net_env, cgroot):
    """--print-spec: the network as comments (the supervisor's to set up), the hosts and
    resolv.conf binds init gets (the file of the network, shared by its single-network
    services; one of its own for a service on two); nothing set up or written."""
    sleep = "/bin/sleep 1000"
    s = NetSup(h, net_env, cgroot, svc("one", sleep)
               + svc("two", sleep, network="bridge:front,bridge", ports="127.0.0.1:18392:8000")
               + svc("lo", sleep, network="none")
               + "[network:front]\nsubnet = 10.123.5.0/24\nsubnet6 = fd00:123::/64\n")
    run = net_env / "run" / cgroot
    p = re.escape(ifprefix(cgroot))
    rc, out, err = s.run("--print-spec", "two")
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0] == ("; network: a namespace the supervisor makes and connects before init "
                        "runs"), out
    assert re.fullmatch(rf"; eth0: network front, bridge {p}\w+, subnet 10\.123\.5\.0/24, "
                        r"subnet6 fd00:123::/64", lines[1]), out
    assert re.fullmatch(rf"; eth1: network default, bridge {p}\w+, subnet a /24 of "
                        r"10\.89\.0\.0/16, chosen and kept", lines[2]), out
    assert lines[3] == "; ports = 127.0.0.1:18392->8000/tcp", out
    assert f"bind = {run}/two/hosts:/etc/hosts:ro" in lines, out
    assert f"bind = {run}/resolv.conf:/etc/resolv.conf:ro" in lines, out
    rc, out, err = s.run("--print-spec", "one")
    assert f"bind = {run}/hosts.default:/etc/hosts:ro" in out.splitlines(), out
    rc, out, err = s.run("--print-spec", "lo")
    assert out.startswith("; network = none: a network namespace with lo only\n"), out
    assert "/etc/hosts" not in out
    assert not run.exists()


SERVER6 = """
import socket, sys
s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", int(sys.argv[1]))); s.listen()
while True:
    c, a = s.accept(); c.sendall(("hello from %s to %s\\n" % (sys.argv[2], a[0])).encode()); c.close()
"""
# client6 NAME PORT OUT: NAME resolved for IPv6 only (/etc/hosts), one answer into OUT
CLIENT6 = """
import socket, sys, time
end = time.time() + 30
while True:
    try:
        a = socket.getaddrinfo(sys.argv[1], int(sys.argv[2]), socket.AF_INET6, socket.SOCK_STREAM)
        c = socket.create_connection(a[0][4][:2], timeout=2); r = c.recv(200).decode().strip()
    except OSError as e:
        r = "error %s %s" % (type(e).__name__, e.errno)
        if time.time() < end:
            time.sleep(0.1); continue
    break
open(sys.argv[3] + ".tmp", "w").write(r + "\\n"); __import__("os").rename(sys.argv[3] + ".tmp", sys.argv[3])
time.sleep(1000)
"""


def test_ipv6_dual_stack(h, net_env, cgroot):
    """subnet6: each service has an IPv6 address as well (kept in the state), its name in the
    hosts files for both, the bridge its IPv6 gateway; a service reaches another by name over
    IPv6 and sees its own address; the host reaches a service at its IPv6 address."""
    (net_env / "x" / "server6.py").write_text(SERVER6)
    (net_env / "x" / "client6.py").write_text(CLIENT6)
    sub6 = f"fd00:89:{os.getpid() % 65536:x}::"
    conf = (f"[network:six]\nsubnet = 10.231.{os.getpid() % 200}.0/24\nsubnet6 = {sub6}/64\n\n"
            + svc("srv6", f"{PY} /x/server6.py 8000 srv6", rootfs=None, bind="%(here)s/x:/x",
                  startsecs=0, network="bridge:six")
            + svc("cli6", f"{PY} /x/client6.py srv6 8000 /out/cli6", rootfs=None,
                  bind=["%(here)s/x:/x", "%(here)s/out:/out"], startsecs=0,
                  network="bridge:six"))
    s = NetSup(h, net_env, cgroot, conf).start()
    answer = s.result("cli6")
    st = s.state()
    m = {n: re.search(rf"^addr six {n} (\S+) ({re.escape(sub6)}\S+)$", st, re.M)
         for n in ("srv6", "cli6")}
    assert all(m.values()), st
    assert answer == f"hello from srv6 to {m['cli6'].group(2)}", answer
    hosts = read_text(net_env / "run" / cgroot / "hosts.six")
    for n in ("srv6", "cli6"):
        assert f"{m[n].group(1)}\t{n}\n" in hosts and f"{m[n].group(2)}\t{n}\n" in hosts, hosts
    # the host, on the bridge (its gateway fd00:...::1), reaches srv6 at its IPv6 address
    assert host_client(m["srv6"].group(2), 8000) == f"hello from srv6 to {sub6}1"
    # through the bridge's ports, which have no IPv6 address of their own (the bridge has)
    ports = [l for l in links(ifprefix(cgroot))
             if " master " in subprocess.run(["ip", "-o", "link", "show", "dev", l],
                                             capture_output=True, text=True).stdout]
    assert len(ports) == 2, ports
    for l in ports:
        assert not subprocess.run(["ip", "-6", "-o", "addr", "show", "dev", l],
                                  capture_output=True, text=True).stdout.strip(), l
    # svctl status: both addresses
    p = subprocess.run([str(SVCTL), "-s", str(net_env / "ctl.sock"), "--json", "status"],
                       capture_output=True, text=True, timeout=T(10))
    recs = {r["name"]: r for r in json.loads(p.stdout)}
    assert recs["srv6"]["addr"] == f"{m['srv6'].group(1)} {m['srv6'].group(2)}", p.stdout
    assert s.stop() == 0


@pytest.fixture
def cni_net(net_env, request, h):
    with host_network_restored():   # the bridge/portmap plugins' nft tables, kept after DEL
        try:
            yield from _cni_net(net_env, request)
        finally:
            # A test that ended half-way leaves its supervisor running, and its next start of
            # a container (its ADD) would make the plugins' tables again after they are gone
            h.cleanup()


def _cni_net(net_env, request):
    """A conflist (bridge + host-local + portmap) of the test's own: (list dir, bridge, subnet
    prefix, host-local's lease folder, a host port)."""
    plugins = Path("/usr/lib/cni")
    if not (plugins / "bridge").exists():
        pytest.skip("containernetworking-plugins is not installed")
    if os.environ.get("RUN_IN_VM"):
        pytest.skip("the test VM's kernel lacks the iptables nat/comment modules the CNI "
                    "bridge plugin uses (it runs on the host)")
    tag = os.getpid() % 100000
    br, sub = f"crtest{tag}c", f"10.242.{os.getpid() % 200}"
    request.addfinalizer(lambda: subprocess.run(["ip", "link", "del", br], capture_output=True))
    request.addfinalizer(lambda: unmount_below(net_env))
    cni = net_env / "cni"
    cni.mkdir()
    (cni / "tnet.conflist").write_text(json.dumps({
        "cniVersion": "0.4.0", "name": f"crtest-{tag}",
        "plugins": [
            {"type": "bridge", "bridge": br, "isGateway": True, "ipMasq": True,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": f"{sub}.0/24"}]],
                      "routes": [{"dst": "0.0.0.0/0"}], "dataDir": str(net_env / "ipam")}},
            {"type": "portmap", "capabilities": {"portMappings": True}}]}))
    yield cni, br, sub, net_env / "ipam" / f"crtest-{tag}", 30000 + os.getpid() % 20000


def unmount_below(top):
    """The mounts under top (this test's folder): the namespace files the supervisor binds
    for its CNI containers stay when a test ends half-way, before their DEL ran."""
    prefix = str(top).rstrip("/") + "/"
    for p in sorted((p for p in mount_points() if p.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", p], capture_output=True)


def cni_sup(h, net_env, cgroot, cni, port):
    s = NetSup(h, net_env, cgroot, server("web", network="cni:tnet", ports=f"{port}:8000"))
    s.forward = None
    s.ini.write_text(s.ini.read_text().replace("[supervisor]\n",
                                               f"[supervisor]\ncni_config_dir = {cni}\n", 1))
    return s


def cni_addr(net_env):
    p = subprocess.run([str(SVCTL), "-s", str(net_env / "ctl.sock"), "--json", "status"],
                       capture_output=True, text=True, timeout=T(10))
    return json.loads(p.stdout)[0]["addr"]


def nat_rules():
    return subprocess.run(["iptables", "-t", "nat", "-S"], capture_output=True, text=True).stdout


def test_cni_bridge_host_local_portmap(h, net_env, cgroot, cni_net):
    """network = cni:NAME with Debian's containernetworking-plugins (bridge + host-local +
    portmap): ADD before init runs (eth0 with host-local's address, lo up, a default route),
    the address in svctl status, reachable from the host, and its `ports` published by the
    portmap plugin (runtimeConfig.portMappings); DEL at the stop, while the namespace is still
    held: the lease and the plugins' rules are gone."""
    cni, br, sub, leases, port = cni_net
    s = cni_sup(h, net_env, cgroot, cni, port).start()
    s.wait_log(r"^supervisor: web: started \(pid")
    addr = cni_addr(net_env)
    assert re.fullmatch(rf"{re.escape(sub)}\.\d+/24", addr), addr
    ip = addr.split("/")[0]
    assert (leases / ip).exists(), list(leases.iterdir())
    ans = wait_until(lambda: (lambda a: a if a.startswith("hello") else None)(host_client(ip, 8000)),
                     what="web answering at its CNI address")
    assert ans == f"hello from web to {sub}.1", ans            # the host, through the bridge
    # the published port, at a host address (the bridge's: portmap's DNAT of local traffic)
    ans = wait_until(lambda: (lambda a: a if a.startswith("hello") else None)(
        host_client(f"{sub}.1", port)), what=f"web answering at the host's port {port}")
    assert ans.startswith("hello from web"), ans
    cid = (leases / ip).read_text().split()[0]
    assert cid.startswith(f"corral-{cgroot}-web-"), cid
    assert f"--dport {port}" in nat_rules(), nat_rules()
    state = net_env / "run" / cgroot / "cni"
    assert sorted(p.name for p in state.iterdir()) == [f"{cid}.json", f"{cid}.netns"]
    subprocess.run([str(SVCTL), "-s", str(net_env / "ctl.sock"), "stop", "web"],
                   capture_output=True, timeout=T(30))
    wait_until(lambda: not (leases / ip).exists(), what="host-local's lease given back")
    # the bridge plugin takes its masquerade out after the lease, in the same DEL
    wait_until(lambda: cid not in nat_rules() and f"--dport {port}" not in nat_rules(),
               what="the plugins' rules gone")
    wait_until(lambda: not list(state.iterdir()), what="its DEL record gone")
    assert s.stop() == 0


def test_cni_container_handed_over_by_reexec(h, net_env, cgroot, cni_net):
    """svctl reexec with a container on a CNI network: the new program keeps its record (no
    DEL as for a killed supervisor's), the container keeps its address, lease and published
    port, and the new program runs the DEL at its stop with the kept namespace and result."""
    cni, br, sub, leases, port = cni_net
    s = cni_sup(h, net_env, cgroot, cni, port).start()
    s.wait_log(r"^supervisor: web: started \(pid")
    addr = cni_addr(net_env)
    ip = addr.split("/")[0]
    cid = (leases / ip).read_text().split()[0]
    answers = lambda: (lambda a: a if a.startswith("hello") else None)(host_client(ip, 8000))
    wait_until(answers, what="web answering at its CNI address")
    ctl = lambda *args: subprocess.run([str(SVCTL), "-s", str(net_env / "ctl.sock")] + list(args),
                                       capture_output=True, text=True, timeout=T(30))
    r = ctl("reexec")
    assert r.returncode == 0, (r.stdout, r.stderr)
    s.wait_log(r"^supervisor: took over 1 running container$")
    assert "left by an earlier supervisor" not in s.log(), s.log()
    assert cni_addr(net_env) == addr
    assert (leases / ip).exists() and f"--dport {port}" in nat_rules(), nat_rules()
    assert answers(), "web at its CNI address after the re-exec"
    state = net_env / "run" / cgroot / "cni"
    assert sorted(p.name for p in state.iterdir()) == [f"{cid}.json", f"{cid}.netns"]
    ctl("stop", "web")
    wait_until(lambda: not (leases / ip).exists(), what="host-local's lease given back")
    wait_until(lambda: cid not in nat_rules() and f"--dport {port}" not in nat_rules(),
               what="the plugins' rules gone")
    wait_until(lambda: not list(state.iterdir()), what="its DEL record gone")
    assert s.stop() == 0


def test_cni_plugins_inherit_no_fd_of_the_supervisor(h, net_env, cgroot, cni_net):
    """The services' pipes and pidfds have no close-on-exec (io/handed.h, for live re-exec):
    a CNI plugin is not given one. The bridge plugin here is a wrapper that writes down its
    open fds and then execs Debian's; ADD and DEL from the first program and, after a
    re-exec, from the new one."""
    cni, br, sub, leases, port = cni_net
    plugins, record = net_env / "plugins", net_env / "fds.jsonl"
    plugins.mkdir()
    for p in ("host-local", "portmap"):
        (plugins / p).symlink_to(f"/usr/lib/cni/{p}")
    wrapper = plugins / "bridge"
    wrapper.write_text(textwrap.dedent(f"""\
        #!/usr/bin/python3
        import json, os
        fds = {{}}
        for f in os.listdir("/proc/self/fd"):
            try:
                fds[f] = os.readlink("/proc/self/fd/" + f)
            except OSError:
                pass   # the listing's own, closed by now
        with open("{record}", "a") as r:
            r.write(json.dumps({{"cmd": os.environ.get("CNI_COMMAND"), "fds": fds}}) + "\\n")
        os.execv("/usr/lib/cni/bridge", ["bridge"])
        """))
    wrapper.chmod(0o755)
    s = cni_sup(h, net_env, cgroot, cni, port)
    s.ini.write_text(s.ini.read_text().replace("[supervisor]\n",
                                               f"[supervisor]\ncni_plugin_dir = {plugins}\n", 1))
    s.start()
    calls = lambda: [json.loads(l) for l in record.read_text().splitlines()] \
        if record.exists() else []
    ctl = lambda *args: subprocess.run([str(SVCTL), "-s", str(net_env / "ctl.sock")] + list(args),
                                       capture_output=True, text=True, timeout=T(30))
    try:
        s.wait_log(r"^supervisor: web: started \(pid")
        assert ctl("reexec").returncode == 0
        s.wait_log(r"^supervisor: took over 1 running container$")
        assert ctl("restart", "web").returncode == 0
        wait_until(lambda: sorted(c["cmd"] for c in calls()) == ["ADD", "ADD", "DEL"],
                   what="ADD, then DEL and ADD (in either order) after the re-exec")
        ctl("stop", "web")
        wait_until(lambda: len(calls()) == 4, what="the DEL at the stop")
        for c in calls():
            assert sorted(c["fds"]) == ["0", "1", "2"], c
    finally:
        assert s.stop() == 0   # a clean stop: its DEL, the namespace's bind mount undone


def test_cni_del_after_kill9(h, net_env, cgroot, cni_net):
    """A supervisor killed -9 leaves its CNI container's lease and the plugins' rules: it kept
    the ADD result and the namespace (bind-mounted) in its state folder, so the next one runs
    the DEL first."""
    cni, br, sub, leases, port = cni_net
    s = cni_sup(h, net_env, cgroot, cni, port).start()
    s.wait_log(r"^supervisor: web: started \(pid")
    ip = cni_addr(net_env).split("/")[0]
    cid = (leases / ip).read_text().split()[0]
    s.p.send_signal(signal.SIGKILL)
    s.p.wait(T(10))
    assert (leases / ip).exists() and cid in nat_rules()       # left behind...
    state = net_env / "run" / cgroot / "cni"
    s.start()
    s.wait_log(rf"cni:tnet: DEL of {re.escape(cid)}, left by an earlier supervisor$")
    s.wait_log(r"^supervisor: web: started \(pid")
    assert cid not in nat_rules(), nat_rules()                  # ...and taken away
    new = cni_addr(net_env).split("/")[0]
    assert new == ip or not (leases / ip).exists()
    assert [p.name for p in state.iterdir() if p.name.startswith(cid)] == []
    assert s.stop() == 0
    wait_until(lambda: not list(state.iterdir()), what="every DEL record gone")
    assert not [p for p in leases.iterdir() if re.fullmatch(r"[\d.]+", p.name)]


def test_reload_of_a_changed_subnet(h, net_env, cgroot):
    """A network's subnet changed in the file: while a container uses its bridge, check and
    reload refuse, naming the service (nothing changes); once no container uses it, the reload
    removes the bridge, and the service's next start makes it again on the new subnet."""
    a, b = f"10.77.{os.getpid() % 250}", f"10.78.{os.getpid() % 250}"
    text = lambda sub: f"[network:front]\nsubnet = {sub}.0/24\n\n" + server(
        "web", network="bridge:front")
    s = NetSup(h, net_env, cgroot, text(a)).start()
    s.wait_log(r"^supervisor: web: started \(pid")
    ctl = lambda *args: subprocess.run([str(SVCTL), "-s", str(net_env / "ctl.sock")] + list(args),
                                       capture_output=True, text=True, timeout=T(30))
    assert ctl("status").stdout.count(f"{a}.") == 1, ctl("status").stdout
    s.write(text(b))
    for verb in ("check", "reload"):
        p = ctl(verb)
        assert p.returncode != 0, (verb, p.stdout, p.stderr)
        msg = p.stdout + p.stderr
        assert (f"[network:front]: subnet {a}.0/24 -> {b}.0/24 needs its bridge made again, "
                "and the containers of web use it") in msg, (verb, msg)
    s.wait_log(r"^supervisor: reload: 1 error; nothing changed$")
    assert f"{a}." in ctl("status").stdout                   # untouched
    ctl("stop", "web")
    s.wait_log(r"^supervisor: web: STOPPING -> STOPPED")
    p = ctl("reload")
    assert p.returncode == 0, (p.stdout, p.stderr)
    s.wait_log(rf"^supervisor: reload: notice: \[network:front\]: subnet {a}\.0/24 -> {b}\.0/24: "
               r"no container uses it; its bridge is removed now")
    s.wait_log(r"^supervisor: network front: bridge \S+ removed \(its definition changed")
    ctl("start", "web")
    s.wait_log(rf"^supervisor: network front: bridge \S+, {b}\.0/24$")
    wait_until(lambda: f"{b}." in ctl("status").stdout, what="web on the new subnet")
    assert s.stop() == 0
