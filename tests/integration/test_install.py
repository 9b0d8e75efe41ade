"""make install: the installed supervisor finds the installed init (libexec/corral/init), and
never takes a foreign "init" that happens to sit next to it (an installed /usr/sbin/supervisor
sits next to the system's own /usr/sbin/init)."""
import os
import subprocess

import pytest

from conftest import ROOT, T

pytestmark = pytest.mark.cgroup


def install(dest):
    subprocess.run(["make", "-s", "--no-print-directory", "install", f"DESTDIR={dest}",
                    "PREFIX=/usr"], cwd=ROOT, check=True, capture_output=True, timeout=T(300))


def run_once(sup, ini, cgroot):
    ini.write_text(f"[supervisor]\ncgroup_root = {cgroot}\n\n[service:t]\n"
                   "command = /bin/sh -c 'cat /proc/1/cmdline | tr \"\\\\0\" \" \"; exit 7'\n"
                   "namespaces = pid,mount\n")
    env = {k: v for k, v in os.environ.items() if k != "CORRAL_INIT"}
    return subprocess.run([str(sup), "-c", str(ini), "run", "t"], capture_output=True, text=True,
                          env=env, timeout=T(60))


def test_installed_layout_and_init_lookup(tmp):
    dest = tmp / "inst"
    install(dest)
    for f in ["usr/sbin/supervisor", "usr/bin/svctl", "usr/libexec/corral/init",
              "usr/share/man/man8/supervisor.8", "usr/share/man/man8/svctl.8",
              "usr/share/man/man8/corral-init.8", "usr/share/man/man5/services.ini.5",
              "usr/share/bash-completion/completions/svctl"]:
        assert (dest / f).is_file(), f
    assert not (dest / "usr/share/man/man8/init.8").exists()
    sup = dest / "usr/sbin/supervisor"
    # A foreign init next to the supervisor, as /usr/sbin/init is on most systems.
    foreign = dest / "usr/sbin/init"
    foreign.write_text("#!/bin/sh\necho FOREIGN; exit 99\n")
    foreign.chmod(0o755)
    cgroot = f"crtest-{os.getpid()}-install"
    p = run_once(sup, tmp / "a.ini", cgroot)
    assert p.returncode == 7, (p.stdout, p.stderr)
    assert "--spec-fd" in p.stdout and "FOREIGN" not in p.stdout + p.stderr
    # Without the libexec copy, the foreign init is refused rather than run.
    (dest / "usr/libexec/corral/init").unlink()
    p = run_once(sup, tmp / "b.ini", cgroot)
    assert p.returncode != 0 and "FOREIGN" not in p.stdout + p.stderr, (p.stdout, p.stderr)
    assert "init" in p.stderr


def test_make_deb(tmp):
    """make deb: a .deb (dpkg-deb) with the binaries, init in libexec, man pages, completion,
    the systemd unit (Type=notify, Delegate=yes, a watchdog, reload by SIGHUP, ordered stop),
    a conffile example config that --check accepts, /var/lib/corral and /var/log/corral."""
    p = subprocess.run(["make", "-s", "--no-print-directory", "deb"], cwd=ROOT,
                       capture_output=True, text=True, timeout=T(300))
    assert p.returncode == 0, p.stderr
    ver = (ROOT / "VERSION").read_text().strip()
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True,
                          text=True).stdout.strip()
    deb = ROOT / "build" / f"corral_{ver}_{arch}.deb"
    info = subprocess.run(["dpkg-deb", "-f", str(deb)], capture_output=True, text=True,
                          check=True).stdout
    assert f"Package: corral\nVersion: {ver}\nArchitecture: {arch}\n" in info, info
    root = tmp / "x"
    subprocess.run(["dpkg-deb", "-R", str(deb), str(root)], check=True)
    for f in ["usr/sbin/supervisor", "usr/bin/svctl", "usr/libexec/corral/init",
              "usr/share/man/man8/supervisor.8.gz", "usr/share/man/man8/svctl.8.gz",
              "usr/share/man/man8/corral-init.8.gz", "usr/share/man/man5/services.ini.5.gz",
              "usr/share/bash-completion/completions/svctl", "lib/systemd/system/corral.service",
              "etc/corral/services.ini", "usr/share/doc/corral/copyright"]:
        assert (root / f).is_file(), f
    assert (root / "var/lib/corral").is_dir() and (root / "var/log/corral").is_dir()
    assert (root / "DEBIAN/conffiles").read_text() == "/etc/corral/services.ini\n"
    unit = dict(l.split("=", 1) for l in (root / "lib/systemd/system/corral.service")
                .read_text().splitlines() if "=" in l and not l.startswith("#"))
    assert unit["Type"] == "notify" and unit["Delegate"] == "yes" and unit["KillMode"] == "mixed"
    assert unit["ExecStart"] == "/usr/sbin/supervisor -c /etc/corral/services.ini"
    assert unit["ExecReload"] == "/bin/kill -HUP $MAINPID" and "WatchdogSec" in unit
    # the packaged binaries run, and take the packaged example
    r = subprocess.run([str(root / "usr/sbin/supervisor"), "-c",
                        str(root / "etc/corral/services.ini"), "--check"],
                       capture_output=True, text=True, timeout=T(60))
    assert r.returncode == 0 and "OK, 1 service" in r.stdout + r.stderr, (r.stdout, r.stderr)
