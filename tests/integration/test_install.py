"""make install: the installed supervisor finds the installed init (libexec/corral/init), and
never takes a foreign "init" that happens to sit next to it (an installed /usr/sbin/supervisor
sits next to the system's own /usr/sbin/init)."""
import os
import subprocess

import pytest

from conftest import ROOT, T
from test_supervisor import cgroot  # noqa: F401  (a fixture: the root a run leaves is removed)

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


def test_installed_layout_and_init_lookup(tmp, cgroot):
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
    p = run_once(sup, tmp / "a.ini", cgroot)
    assert p.returncode == 7, (p.stdout, p.stderr)
    assert "--spec-fd" in p.stdout and "FOREIGN" not in p.stdout + p.stderr
    # Without the libexec copy, the foreign init is refused rather than run.
    (dest / "usr/libexec/corral/init").unlink()
    p = run_once(sup, tmp / "b.ini", cgroot)
    assert p.returncode != 0 and "FOREIGN" not in p.stdout + p.stderr, (p.stdout, p.stderr)
    assert "init" in p.stderr
