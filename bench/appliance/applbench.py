#!/usr/bin/env python3
"""Appliance boot and poweroff (issue 11): corral's supervisor as the machine's PID 1 against
Debian's runit (runit as PID 1, runsvdir, a runsv per service) and busybox init (busybox-static,
an /etc/inittab of respawn lines), with the same services, in the same VM (tests/vm's:
Debian's kernel under qemu TCG, booted by tests/vm/run-in-vm --pid1), in the same run.

The services (--http N busybox httpd on 127.0.0.1:8101..., --loops M shell loops around a
busybox sleep) are ready when the port accepts, or when the loop's sleep runs. Under corral
each is a container (own pid, mount, uts, ipc and cgroup namespaces, its own cgroup; the
httpds on the host network, the loops with network = none); runit and busybox run them as
plain processes. --plain adds a corral row with `namespaces = none` (its own cgroup only).

Each boot: the boot script execs the init under test right after it started
build/bench/applwatch (so the watcher is a child of PID 1), which polls every 10 ms until all
are ready, measures memory, and asks for a poweroff the way each init documents it (corral:
SIGUSR1, as svctl poweroff; busybox: SIGUSR2, what its `poweroff` sends; runit: the stop flag
and SIGCONT, what runit-init 0 does). Times are the kernel's printk timestamps on the console
(KERN_EMERG lines from the script and the watcher, and the kernel's own "reboot: Power down"),
one clock inside the guest, so the host's TCG noise counts alike for all. Inits take turns
(the order rotates each round); each figure is the median of --boots boots.

    bench/appliance/applbench.py [--boots 3] [--http 5] [--loops 5] [--plain] [--keep DIR]

Needs qemu (make vm), runit, busybox-static, build/{supervisor,init,svctl},
build/bench/applwatch. Runs nothing on the host but qemu: the stage scripts, /etc/inittab and
the service dirs are written inside the guest (its root is the host's / read-only under a
tmpfs overlay; writes vanish with the VM). Exit 1 when a boot could not be measured."""
import argparse
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "build"
RUN_IN_VM = REPO / "tests" / "vm" / "run-in-vm"
WATCH = BUILD / "bench" / "applwatch"
SUPERVISOR = BUILD / "supervisor"
BUSYBOX = "/bin/busybox"
SHARE = "/run/vm-share"          # the per-run share, as the guest sees it
SVDIR = "/run/applbench/service"  # runit's service directory, in the guest

INITS = ("corral", "runit", "busybox")


def services(http, loops):
    """(name, argv, readiness argument of applwatch)"""
    out = []
    for i in range(http):
        port = 8101 + i
        out.append((f"http{i}", [BUSYBOX, "httpd", "-f", "-p", f"127.0.0.1:{port}", "-h", "/"],
                    ["--port", str(port)]))
    for i in range(loops):
        sleep = f"{BUSYBOX} sleep {3601 + i}"
        out.append((f"loop{i}", [BUSYBOX, "sh", "-c", f"while :; do {sleep}; done"],
                    ["--proc", sleep]))
    return out


def corral_ini(svcs, plain):
    lines = ["[supervisor]", "hostname = appliance", "cgroup_root = applbench",
             "control_socket = /run/corral/control.sock", "log_dir = /run/corral/logs", ""]
    for name, argv, _ in svcs:
        lines += [f"[service:{name}]", "command = " + " ".join(shlex.quote(a) for a in argv)]
        if plain:
            lines.append("namespaces = none")
        else:
            lines.append("network = " + ("host" if name.startswith("http") else "none"))
        lines.append("")
    return "\n".join(lines)


def heredoc(path, text, mode=None):
    s = f"cat >{path} <<'APPLBENCH_EOF'\n{text}APPLBENCH_EOF\n"
    return s + (f"chmod {mode} {path}\n" if mode else "")


def boot_script(init, svcs, plain, share_host):
    """The guest's PID 1 runs this (sh): prepare the init's files, start the watcher, exec."""
    watch = [str(WATCH), "--result", f"{SHARE}/result", "--workload-exe",
             os.path.realpath(BUSYBOX), "--request", init]
    for _, _, ready in svcs:
        watch += ready
    s = f"set -e\necho '<0>applbench: prepare {init}' >/dev/kmsg\n"
    if init == "corral":
        Path(share_host, "app.ini").write_text(corral_ini(svcs, plain))
        # as tests/integration/test_appliance.py: the supervisor mounts these itself
        s += "umount /dev/pts /dev/shm\n"
        cmd = f"{SUPERVISOR} -c {SHARE}/app.ini"
    elif init == "runit":
        # Debian's stage scripts without their sysv emulation (rcS.d, rc2.d): stage 1 makes
        # the flag files runit-init uses, 2 is runsvdir, 3 stops every service as Debian's does.
        s += heredoc("/etc/runit/1", "#!/bin/sh\ninstall -m000 /dev/null /run/runit.stopit\n"
                     "install -m000 /dev/null /run/runit.reboot\n", "755")
        s += heredoc("/etc/runit/2", "#!/bin/sh\nPATH=/usr/local/sbin:/usr/local/bin:/sbin:"
                     f"/usr/sbin:/bin:/usr/bin\nexec env - PATH=$PATH runsvdir -P {SVDIR}\n",
                     "755")
        s += heredoc("/etc/runit/3", "#!/bin/sh\nexec 2>&1\nPATH=/sbin:/usr/sbin:/bin:/usr/bin\n"
                     f"echo 'Waiting for services to stop...'\nsv force-stop {SVDIR}/*\n"
                     f"sv exit {SVDIR}/*\n", "755")
        for name, argv, _ in svcs:
            s += f"mkdir -p {SVDIR}/{name}\n"
            s += heredoc(f"{SVDIR}/{name}/run",
                         "#!/bin/sh\nexec " + " ".join(shlex.quote(a) for a in argv) + "\n", "755")
        cmd = "/sbin/runit"
    elif init == "busybox":
        tab = "".join("::respawn:" + " ".join(shlex.quote(a) for a in argv) + "\n"
                      for _, argv, _ in svcs)
        s += heredoc("/etc/inittab", tab)
        cmd = f"{BUSYBOX} init"
    else:
        raise ValueError(init)
    s += " ".join(shlex.quote(a) for a in watch) + f" >{SHARE}/watch.log 2>&1 &\n"
    s += f"echo '<0>applbench: exec {init}' >/dev/kmsg\n"
    s += f"exec {cmd}\n"
    return s


def stamp(console, pattern):
    m = re.search(r"\[\s*(\d+\.\d+)\] " + pattern, console)
    return float(m.group(1)) if m else None


def boot(init, svcs, plain, timeout, keep):
    """One boot; returns a dict of figures, or raises RuntimeError saying why not."""
    d = tempfile.mkdtemp(prefix="applbench.", dir=keep)
    try:
        Path(d, "boot.sh").write_text(boot_script(init, svcs, plain, d))
        console = Path(d, "console.log")
        r = subprocess.run([str(RUN_IN_VM), "--pid1", "--timeout", str(timeout), "--share", d,
                            "--console", str(console), "--", "/bin/sh", f"{SHARE}/boot.sh"],
                           capture_output=True, text=True, cwd=REPO)
        con = console.read_text(errors="replace").replace("\r", "") if console.exists() else ""
        res = {}
        if Path(d, "result").exists():
            for line in Path(d, "result").read_text().splitlines():
                k, _, v = line.partition("=")
                res[k] = v
        why = res.get("error")
        if not why and (r.returncode != 0 or "reboot: Power down" not in r.stdout):
            why = f"run-in-vm exit {r.returncode}, not a poweroff: {r.stderr[-1500:]}"
        t = {k: stamp(con, p) for k, p in (("prepare", r"applbench: prepare"),
                                           ("exec", r"applbench: exec"),
                                           ("ready", r"applbench: ready"),
                                           ("request", r"applbench: request"),
                                           ("off", r"reboot: Power down"))}
        if not why and None in t.values():
            why = f"console lacks a mark: {t}"
        if why:
            raise RuntimeError(f"{init}: {why}\n{con[-3000:]}")
        # The boot script's writing of the init's files (runit's: 13, busybox's: 1) would be
        # on disk already in a real machine: it is not counted.
        return {"boot": t["ready"] - (t["exec"] - t["prepare"]),
                "exec_ready": t["ready"] - t["exec"],
                "pid1_rss": int(res["pid1_rss_kb"]) / 1024,
                "sup_pss": int(res["sup_pss_kb"]) / 1024, "sup_procs": int(res["sup_procs"]),
                "off": t["off"] - t["request"], "procs": res.get("procs", "")}
    finally:
        if not keep:
            shutil.rmtree(d, ignore_errors=True)


ROWS = [("boot", "kernel start -> all ready (*)", "s"),
        ("exec_ready", "init exec'd -> all ready", "s"),
        ("pid1_rss", "PID 1 RSS", "MiB"),
        ("sup_pss", "supervision PSS (PID 1 + non-workloads)", "MiB"),
        ("off", "poweroff request -> reboot(2)", "s")]


def table(names, runs, nsvc, boots):
    med = {n: {k: statistics.median(r[k] for r in runs[n]) for k, _, _ in ROWS} for n in names}
    anchors = [n for n in names if not n.startswith("corral")]
    ours = [n for n in names if n.startswith("corral")]
    w = 46
    pairs = [(o, a) for o in ours for a in anchors]
    print(f"\nappliance boot and poweroff, {nsvc} services, qemu TCG (2 vCPUs), "
          f"median of {boots} boots each (min-max below it)")
    print(f"{'':{w}}" + "".join(f"{n:>13}" for n in names) +
          "".join(f"{o + '/' + a:>22}" for o, a in pairs))
    for k, what, unit in ROWS:
        line = f"{what + ' (' + unit + ')':{w}}"
        line += "".join(f"{med[n][k]:13.3f}" for n in names)
        line += "".join(f"{med[o][k] / med[a][k]:21.2f}x" for o, a in pairs)
        print(line)
        print(f"{'':{w}}" + "".join(
            f"{min(r[k] for r in runs[n]):>7.2f}-{max(r[k] for r in runs[n]):<5.2f}"
            for n in names))
    print(f"{'supervision processes':{w}}" + "".join(
        f"{runs[n][0]['sup_procs']:13d}" for n in names))
    print("(*) less the boot script's writing of each init's files (on a real machine they are "
          "on disk)")
    for o in ours:
        first = [k for k, _, _ in ROWS if k in ("boot", "exec_ready", "off")
                 and all(med[o][k] <= med[a][k] for a in anchors)]
        print(f"goal (issue 11): {o} first in boot and poweroff: "
              f"{'PASS' if len(first) == 3 else 'MISS'} (first in: {', '.join(first) or 'none'})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--boots", type=int, default=3, help="boots per init (default 3)")
    ap.add_argument("--http", type=int, default=5, help="busybox httpd services (default 5)")
    ap.add_argument("--loops", type=int, default=5, help="sleep-loop services (default 5)")
    ap.add_argument("--plain", action="store_true",
                    help="also corral with namespaces = none (cgroups only)")
    ap.add_argument("--inits", default=",".join(INITS), help="which, of " + ",".join(INITS))
    ap.add_argument("--timeout", type=float, default=240, help="seconds per boot")
    ap.add_argument("--keep", metavar="DIR", help="keep each boot's share (console, result) here")
    a = ap.parse_args()
    for p in (WATCH, SUPERVISOR, BUILD / "init", Path(BUSYBOX), Path("/sbin/runit"),
              Path("/usr/bin/runsvdir")):
        if not p.exists():
            sys.exit(f"applbench: {p} is missing (make bench-appliance builds and installs it)")
    if a.keep:
        os.makedirs(a.keep, exist_ok=True)
    svcs = services(a.http, a.loops)
    names = [n for n in a.inits.split(",") if n]
    if a.plain and "corral" in names:
        names.insert(1, "corral-plain")
    runs = {n: [] for n in names}
    print(f"applbench: load average before: {' '.join(open('/proc/loadavg').read().split()[:3])}"
          f" ({os.cpu_count()} cpus)", flush=True)
    for rnd in range(a.boots):
        order = names[rnd % len(names):] + names[:rnd % len(names)]
        for n in order:
            try:
                f = boot(n.split("-")[0], svcs, n == "corral-plain", a.timeout, a.keep)
            except RuntimeError as e:
                print(f"applbench: boot {rnd + 1} of {n} not measured: {e}", file=sys.stderr)
                return 1
            runs[n].append(f)
            print(f"  boot {rnd + 1} {n:13} ready at {f['boot']:.2f} s ({f['exec_ready']:.2f} s "
                  f"after exec), PID 1 {f['pid1_rss']:.1f} MiB, supervision {f['sup_pss']:.1f} MiB"
                  f" PSS in {f['sup_procs']} processes, off {f['off']:.2f} s after the request",
                  flush=True)
            if rnd == 0:
                print(f"    supervision processes (comm:pid:rss:pss kB): {f['procs']}", flush=True)
    table(names, runs, len(svcs), a.boots)
    print(f"applbench: load average after: {' '.join(open('/proc/loadavg').read().split()[:3])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
