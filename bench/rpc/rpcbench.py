#!/usr/bin/python3
"""supervisorctl against corral and against supervisord, same run: N programs (sleep) under
each, then `supervisorctl status` (the whole client, Python start-up included) and the XML-RPC
call behind it (supervisor.getAllProcessInfo over the unix socket, one connection per call as
supervisorctl makes it) timed alternately; prints medians and ratios.

usage: rpcbench.py --ours build/supervisor --init build/init [--programs 100] [--rounds 30]"""
import argparse
import http.client
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import xmlrpc.client
from pathlib import Path


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost")
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(self.path)


def rpc_once(sock, body):
    c = UnixHTTP(str(sock))
    c.request("POST", "/RPC2", body, {"Content-Type": "text/xml"})
    r = c.getresponse()
    data = r.read()
    c.close()
    assert r.status == 200, r.status
    return data


def write_conf(d, n, cgroot):
    corral = (f"cgroup_root = {cgroot}\ncontrol_socket = {d}/ctl.sock\nlog_dir = {d}/logs\n"
              if cgroot else "")
    text = (f"[supervisord]\nnodaemon = true\nlogfile = {d}/main.log\npidfile = {d}/sd.pid\n"
            f"childlogdir = {d}\n{corral}\n[unix_http_server]\nfile = {d}/rpc.sock\n\n"
            f"[supervisorctl]\nserverurl = unix://{d}/rpc.sock\n\n"
            "[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = "
            "supervisor.rpcinterface:make_main_rpcinterface\n")
    for i in range(n):
        text += (f"\n[program:p{i:03d}]\ncommand = /bin/sleep 100000\nstartsecs = 0\n"
                 f"stdout_logfile = {d}/p{i:03d}.out\n")
    (d / "supervisord.conf").write_text(text)
    return d / "supervisord.conf"


def wait_all_running(ctl, conf, n, timeout=120):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        p = subprocess.run([ctl, "-c", str(conf), "status"], capture_output=True, text=True)
        if p.stdout.count(" RUNNING ") == n:
            return
        time.sleep(0.2)
    sys.exit(f"{conf}: not all {n} programs RUNNING:\n{p.stdout[-2000:]}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ours", required=True)
    ap.add_argument("--init", required=True)
    ap.add_argument("--programs", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=30)
    a = ap.parse_args()
    ctl = shutil.which("supervisorctl")
    sd = shutil.which("supervisord")
    if not ctl or not sd:
        sys.exit("needs Debian's supervisor package")
    tmp = Path(tempfile.mkdtemp(prefix="rpcbench-"))
    cgroot = f"rpcbench-{os.getpid()}"
    procs = {}
    try:
        confs = {}
        for who in ("corral", "supervisord"):
            d = tmp / who
            d.mkdir()
            confs[who] = write_conf(d, a.programs, cgroot if who == "corral" else None)
        env = dict(os.environ, CORRAL_INIT=os.path.abspath(a.init))
        procs["corral"] = subprocess.Popen([a.ours, "-c", str(confs["corral"])], env=env,
                                           stdout=subprocess.DEVNULL,
                                           stderr=open(tmp / "corral.log", "w"))
        procs["supervisord"] = subprocess.Popen([sd, "-n", "-c", str(confs["supervisord"])],
                                                stdout=subprocess.DEVNULL,
                                                stderr=subprocess.DEVNULL)
        for who, conf in confs.items():
            wait_all_running(ctl, conf, a.programs)
        body = xmlrpc.client.dumps((), "supervisor.getAllProcessInfo").encode()
        t = {(w, k): [] for w in confs for k in ("status", "rpc")}
        for _ in range(a.rounds):
            for who, conf in confs.items():
                t0 = time.perf_counter()
                subprocess.run([ctl, "-c", str(conf), "status"], capture_output=True)
                t[who, "status"].append(time.perf_counter() - t0)
                sock = conf.parent / "rpc.sock"
                for _ in range(10):
                    t0 = time.perf_counter()
                    data = rpc_once(sock, body)
                    t[who, "rpc"].append(time.perf_counter() - t0)
        size = {w: len(rpc_once(confs[w].parent / "rpc.sock", body)) for w in confs}
        print(f"supervisorctl against corral and supervisord, {a.programs} programs, "
              f"{a.rounds} rounds (medians)")
        for k, what in (("status", "`supervisorctl status` (whole client)"),
                        ("rpc", "getAllProcessInfo over the unix socket")):
            ours, theirs = (statistics.median(t[w, k]) * 1000 for w in ("corral", "supervisord"))
            print(f"  {what:45s} corral {ours:8.2f} ms  supervisord {theirs:8.2f} ms  "
                  f"ratio {ours / theirs:5.2f}")
        print(f"  answer size: corral {size['corral']} bytes, supervisord "
              f"{size['supervisord']} bytes")
    finally:
        for p in procs.values():
            p.send_signal(signal.SIGTERM)
        for p in procs.values():
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
