"""Abuse of the supervisor's sockets: the metrics endpoint answers a scrape while 1,000 idle
or slowloris connections are held (idle ones pushed out oldest first, and one peer's flood
never pushes out another peer's connections), and svctl works while the control socket is
fed garbage. Not cgroup-specific: the host run only."""
import socket
import threading
import time

import pytest

from faultlib import (WL, FaultSup, _subreaper, _net_state, cgroot, free_port, h, http_get,  # noqa: F401
                      raise_own_nofile, read_until_eof, rootfs, svc, tmp, T, wait_until)


def metrics_sup(h, tmp, cgroot):
    port = free_port()
    s = FaultSup(h, tmp, cgroot, svc("web", f"{WL} sleep 1000", startsecs=0),
                 metrics=f"127.0.0.1:{port}").start()
    s.wait_all_running(["web"])
    assert http_get(port)[0] == 200
    return s, port


def connect_many(port, n, src=None, first=b""):
    out = []
    for _ in range(n):
        try:
            c = socket.create_connection(("127.0.0.1", port), timeout=T(5),
                                         source_address=(src, 0) if src else None)
        except OSError:
            continue
        if first:
            try:
                c.sendall(first)
            except OSError:
                pass
        out.append(c)
    return out


def close_all(socks):
    for c in socks:
        c.close()


def metric(body, name):
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def test_scrapes_answer_while_1000_idle_connections_are_held(h, tmp, cgroot, rootfs):
    s, port = metrics_sup(h, tmp, cgroot)
    raise_own_nofile(4096)
    held = connect_many(port, 1000)
    try:
        assert len(held) == 1000
        for _ in range(5):
            code, body = http_get(port)
            assert code == 200, body[:200]
            assert b'corral_service_up{service="web"} 1' in body
        # The attacker reopens what was closed: still answered.
        close_all(held)
        held = connect_many(port, 1000)
        code, body = http_get(port)
        assert code == 200
        assert metric(body, "corral_http_evicted_total") >= 1000 - 64
    finally:
        close_all(held)
    assert s.stop() == 0


def test_scrapes_answer_while_1000_slowloris_connections_are_held(h, tmp, cgroot, rootfs):
    s, port = metrics_sup(h, tmp, cgroot)
    raise_own_nofile(4096)
    held = connect_many(port, 1000, first=b"GET /metrics HTTP/1.0\r\nX-Slow: ")
    stop = threading.Event()

    def drip():
        while not stop.is_set():
            for c in held:
                try:
                    c.send(b"a")
                except OSError:
                    pass
            stop.wait(0.2)
    t = threading.Thread(target=drip, daemon=True)
    t.start()
    try:
        for _ in range(5):
            code, body = http_get(port)
            assert code == 200, body[:200]
    finally:
        stop.set()
        t.join()
        close_all(held)
    assert s.stop() == 0


def test_one_peers_flood_never_pushes_out_another_peers_connections(h, tmp, cgroot, rootfs):
    s, port = metrics_sup(h, tmp, cgroot)
    raise_own_nofile(4096)
    # Peer A's ten connections have begun their requests; peer B floods.
    mine = connect_many(port, 10, src="127.0.0.2", first=b"G")
    flood = connect_many(port, 300, src="127.0.0.3")
    try:
        answers = []
        for c in mine:
            try:
                c.sendall(b"ET /metrics HTTP/1.0\r\n\r\n")
                answers.append(read_until_eof(c)[:12])
            except OSError as e:
                answers.append(repr(e).encode())
        assert answers == [b"HTTP/1.0 200"] * 10, answers
        # B, by itself, still gets answered (its own oldest idle ones make room).
        assert http_get(port, src="127.0.0.3")[0] == 200
    finally:
        close_all(mine + flood)
    assert s.stop() == 0


def test_oversized_and_bad_requests_get_their_answers(h, tmp, cgroot, rootfs):
    s, port = metrics_sup(h, tmp, cgroot)
    c = socket.create_connection(("127.0.0.1", port), timeout=T(5))
    c.sendall(b"GET /metrics HTTP/1.0\r\nX: " + b"a" * 20000)
    assert read_until_eof(c).startswith(b"HTTP/1.0 431 ")
    c.close()
    assert http_get(port, "/nope")[0] == 404
    c = socket.create_connection(("127.0.0.1", port), timeout=T(5))
    c.sendall(b"\x00\xff garbage\r\n\r\n")
    assert read_until_eof(c).startswith(b"HTTP/1.0 400 ")
    c.close()
    # A connection that never sends a byte is closed by the server (the first-byte deadline).
    c = socket.create_connection(("127.0.0.1", port), timeout=T(10))
    assert read_until_eof(c) == b""
    c.close()
    assert s.stop() == 0


def test_svctl_works_while_the_control_socket_is_abused(h, tmp, cgroot, rootfs):
    s = FaultSup(h, tmp, cgroot, svc("web", f"{WL} sleep 1000", startsecs=0)).start()
    s.wait_all_running(["web"])
    raise_own_nofile(4096)
    junk = [b"\x00\x01\x02\xff\n", b"status " + b"x" * 100000 + b"\n", b"nosuchverb a b c\n",
            b"status", b"", b"start " + b"../" * 50 + b"\n"]
    abusers = []
    for i in range(300):
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.settimeout(T(5))
        try:
            c.connect(str(s.sock))
            c.sendall(junk[i % len(junk)])
        except OSError:
            pass
        abusers.append(c)
    try:
        for _ in range(3):
            assert s.status()["web"]["state"] == "RUNNING"
        s.ctl("restart", "web", check=0)
        s.wait_state("web", "RUNNING")
    finally:
        close_all(abusers)
    assert s.running() == ["web"]
    assert s.stop() == 0


def test_a_slow_client_is_answered_when_there_is_room(h, tmp, cgroot, rootfs):
    """A client that connects and only writes its request 2 s later (past the 1 s first-byte
    deadline: supervisorctl's Python on a loaded machine did) is answered while the server
    has room; the short deadline is for floods (the tests above)."""
    s, port = metrics_sup(h, tmp, cgroot)
    c = socket.create_connection(("127.0.0.1", port), timeout=T(10))
    try:
        time.sleep(2)
        c.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        answer = read_until_eof(c)
    finally:
        c.close()
    assert answer.startswith(b"HTTP/1.0 200"), answer[:200]
    assert s.stop() == 0


def test_answered_connections_left_open_are_pushed_out_for_a_scrape(h, tmp, cgroot, rootfs):
    """After its answer a connection lingers (the server reads on until the client closes,
    for a client still writing); 16 such connections, a whole peer's share, kept open by a
    client that read its answers, do not keep that peer's next scrape out."""
    s, port = metrics_sup(h, tmp, cgroot)
    held = connect_many(port, 16, first=b"GET /metrics HTTP/1.0\r\n\r\n")
    try:
        assert len(held) == 16
        for c in held:
            assert read_until_eof(c).startswith(b"HTTP/1.0 200"), "an answer, then the EOF"
        assert http_get(port)[0] == 200
    finally:
        close_all(held)
    assert s.stop() == 0
