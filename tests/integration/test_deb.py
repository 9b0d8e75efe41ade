"""The Debian package that `make deb` built (issue 12): build/corral_VERSION_ARCH.deb, read with
dpkg-deb. Building it (dpkg-buildpackage and lintian, a few minutes here) is no part of `make
test`: these checks run when the .deb is there (`make deb`; `make test-systemd` builds it and
runs them) and are skipped otherwise. `make deb` itself fails on any lintian error.
  - control: name, VERSION's version, Depends on the glibc the static supervisor was linked
    with (its upstream version: the dlopen'ed libraries load it) and the dlopen'ed libmnl0
    and libnftables1,
    Built-Using naming the statically linked libraries' sources
  - contents: binaries, init in libexec, man pages, completion, the unit, the example config
    (a conffile, found by debhelper), /var/lib/corral and /var/log/corral, the DEP-5 copyright
  - maintainer scripts from dh_installsystemd: enable and start on install, restart on
    upgrade, stop on remove; a purge removes /var/lib/corral and /var/log/corral
  - the packaged supervisor runs and accepts the packaged example"""
import re
import subprocess

import pytest

from conftest import ROOT, T

VERSION = (ROOT / "VERSION").read_text().strip()
ARCH = subprocess.run(["dpkg", "--print-architecture"], capture_output=True,
                      text=True).stdout.strip()
DEB = ROOT / "build" / f"corral_{VERSION}_{ARCH}.deb"

pytestmark = pytest.mark.skipif(not DEB.exists(), reason=f"no {DEB.name}: `make deb` builds it")


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory):
    root = tmp_path_factory.mktemp("deb") / "x"
    subprocess.run(["dpkg-deb", "-R", str(DEB), str(root)], check=True)
    return root


def field(name):
    return subprocess.run(["dpkg-deb", "-f", str(DEB), name], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_control_fields():
    assert field("Package") == "corral" and field("Version") == VERSION
    assert field("Architecture") == ARCH
    # The glibc of the build to its upstream version (debian/rules: the dlopen'ed libmnl and
    # libnftables load it into the static supervisor), and those two.
    libc = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "libc6-dev"],
                          capture_output=True, text=True, check=True).stdout.rsplit("-", 1)[0]
    major, minor = libc.split(".")[:2]
    deps = field("Depends").split(", ")
    assert f"libc6 (>= {libc})" in deps and f"libc6 (<< {major}.{int(minor) + 1}~)" in deps, deps
    assert {"libmnl0", "libnftables1"} <= {d.split(" ")[0] for d in deps}, deps
    built_using = {b.split(" ")[0] for b in field("Built-Using").split(", ")}
    assert {"glibc", "musl", "libuv1", "libarchive", "zlib", "expat"} <= built_using, built_using
    assert re.fullmatch(r".+ <[^@\s]+@[^@\s]+\.[a-z]+>", field("Maintainer")), field("Maintainer")


def test_contents(unpacked):
    for f in ["usr/sbin/supervisor", "usr/bin/svctl", "usr/libexec/corral/init"]:
        assert (unpacked / f).stat().st_mode & 0o777 == 0o755, f
    for f in ["usr/share/man/man8/supervisor.8.gz", "usr/share/man/man8/svctl.8.gz",
              "usr/share/man/man8/corral-init.8.gz", "usr/share/man/man5/services.ini.5.gz",
              "usr/share/bash-completion/completions/svctl", "lib/systemd/system/corral.service",
              "etc/corral/services.ini", "usr/share/doc/corral/copyright",
              "usr/share/doc/corral/changelog.gz"]:
        assert (unpacked / f).is_file(), f
    assert not (unpacked / "usr/share/man/man8/init.8.gz").exists()
    assert (unpacked / "var/lib/corral").is_dir() and (unpacked / "var/log/corral").is_dir()
    assert (unpacked / "DEBIAN/conffiles").read_text() == "/etc/corral/services.ini\n"
    copyright = (unpacked / "usr/share/doc/corral/copyright").read_text()
    assert copyright.startswith("Format: https://www.debian.org/doc/packaging-manuals/"
                                "copyright-format/1.0/\n"), copyright
    assert "\nFiles: *\nCopyright: " in copyright
    # stripped by dh_strip: no symbol table, no debug sections
    for f in ["usr/sbin/supervisor", "usr/bin/svctl", "usr/libexec/corral/init"]:
        out = subprocess.run(["readelf", "-S", "-W", str(unpacked / f)], capture_output=True,
                             text=True, check=True).stdout
        assert ".symtab" not in out and ".debug_info" not in out, (f, out)


def test_unit(unpacked):
    unit = dict(l.split("=", 1) for l in (unpacked / "lib/systemd/system/corral.service")
                .read_text().splitlines() if "=" in l and not l.startswith("#"))
    assert unit["Type"] == "notify" and unit["Delegate"] == "yes" and unit["KillMode"] == "mixed"
    assert unit["ExecStart"] == "/usr/sbin/supervisor -c /etc/corral/services.ini"
    assert unit["ExecReload"] == "/bin/kill -HUP $MAINPID" and "WatchdogSec" in unit
    assert unit["WantedBy"] == "multi-user.target"


def test_maintainer_scripts(unpacked):
    post = (unpacked / "DEBIAN/postinst").read_text()
    assert "deb-systemd-helper enable 'corral.service'" in post
    # a new install starts it, an upgrade restarts it
    assert "_dh_action=restart" in post and "_dh_action=start" in post
    assert "deb-systemd-invoke $_dh_action 'corral.service'" in post
    assert "deb-systemd-invoke stop 'corral.service'" in (unpacked / "DEBIAN/prerm").read_text()
    postrm = (unpacked / "DEBIAN/postrm").read_text()
    assert "rm -rf /var/lib/corral /var/log/corral" in postrm
    assert "deb-systemd-helper purge 'corral.service'" in postrm
    assert "#DEBHELPER#" not in post + postrm
    for s in ["postinst", "prerm", "postrm"]:
        r = subprocess.run(["sh", "-n", str(unpacked / "DEBIAN" / s)], capture_output=True,
                           text=True)
        assert r.returncode == 0, (s, r.stderr)


def test_packaged_supervisor_checks_the_example(unpacked):
    r = subprocess.run([str(unpacked / "usr/sbin/supervisor"), "-c",
                        str(unpacked / "etc/corral/services.ini"), "--check"],
                       capture_output=True, text=True, timeout=T(60))
    assert r.returncode == 0 and "OK, 1 service" in r.stdout + r.stderr, (r.stdout, r.stderr)
    r = subprocess.run([str(unpacked / "usr/bin/svctl"), "--version"], capture_output=True,
                       text=True, timeout=T(60))
    assert VERSION in r.stdout + r.stderr, (r.stdout, r.stderr)


def test_nothing_written_into_the_tree():
    """dpkg-buildpackage ran in build/deb/src: no debian/ folder or build products beside the
    Makefile."""
    assert not (ROOT / "debian").exists()
    assert not list(ROOT.glob("corral_*"))
