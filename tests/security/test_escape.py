"""The escape suite: an attacker's probes (tests/security/probe.c, build/test/probe) run as the
root workload of real containers started by the real supervisor. Every probe must be BLOCKED
under the defaults; and every probe has a negative control: the same probe EXPOSED once the
protection it tests is relaxed in the service's keys, so no test passes vacuously. A probe
this kernel cannot run (ABSENT, e.g. no module support) is checked for not being EXPOSED and
its control is skipped with the reason.

The probes run all at once (`probe all`, each in a child of its own) in one container per
configuration; the results are cached per configuration for the module."""
import os
import shutil
import tempfile
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from conftest import BUILD, _net_state, _subreaper, h, need, read_text, tmp, wait_until  # noqa: E402,F401
from test_supervisor import Sup, cgroot, svc  # noqa: E402,F401
from test_userns import subids  # noqa: E402

PROBE = BUILD / "test" / "probe"
pytestmark = pytest.mark.cgroup

# Relaxations: service keys that take one protection away.
RELAX = {
    "defaults": {},
    "cap_add=ALL": {"cap_add": "ALL"},
    "seccomp=unconfined": {"seccomp": "unconfined"},
    "cap_add=ALL, seccomp=unconfined": {"cap_add": "ALL", "seccomp": "unconfined"},
    "unmask=ALL": {"unmask": "ALL"},
    "unmask=ALL, cap_add=SYS_RAWIO": {"unmask": "ALL", "cap_add": "SYS_RAWIO"},
    "cap_add=MKNOD": {"cap_add": "MKNOD"},
    "cap_add=MKNOD, device=/dev/kmsg": {"cap_add": "MKNOD", "device": "/dev/kmsg"},
    "cap_add=MKNOD,SYSLOG, device=/dev/kmsg": {"cap_add": "MKNOD,SYSLOG", "device": "/dev/kmsg"},
    "cap_add=SYS_PTRACE": {"cap_add": "SYS_PTRACE"},
    "cap_add=SYS_NICE": {"cap_add": "SYS_NICE"},
    # not a relaxation: the defaults inside a user namespace of its own (its root an
    # unprivileged host id)
    "user_namespace=auto": {"user_namespace": "auto"},
}

# Each probe of `probe all`, and the relaxation that must expose it.
CAPS_AND_FILTER = "cap_add=ALL, seccomp=unconfined"
PROBES = {
    "caps": "cap_add=ALL",
    "keyctl": "seccomp=unconfined",
    "io_uring": "seccomp=unconfined",
    "userfaultfd": "seccomp=unconfined",
    "quotactl": "seccomp=unconfined",
    "personality": "seccomp=unconfined",
    "process_vm": "seccomp=unconfined",
    "kcmp": "seccomp=unconfined",
    "mempolicy": "seccomp=unconfined",
    **{p: CAPS_AND_FILTER for p in (
        "bpf", "perf_event_open", "open_by_handle_at", "init_module", "kexec_load", "clock",
        "reboot", "swapon", "syslog", "acct", "ioperm", "mount", "umount", "sys_remount",
        "pivot_root", "unshare", "setns", "clone_ns", "clone3_ns", "cgroup_mount")},
    "core_pattern": "unmask=ALL",
    "sysrq": "unmask=ALL",
    "kcore": "unmask=ALL, cap_add=SYS_RAWIO",
    "keys": "unmask=ALL",
    "timer_list": "unmask=ALL",
    "kmsg": "cap_add=MKNOD,SYSLOG, device=/dev/kmsg",
    "mknod": "cap_add=MKNOD, device=/dev/kmsg",
    "ptrace_init": "cap_add=SYS_PTRACE",
    "init_fds": "cap_add=SYS_PTRACE",
}
# Stopped by the device rules alone: still BLOCKED with the capability to make the node.
DEVICE_RULES = ["mknod", "kmsg"]
# The system calls the default filter denies by itself: still BLOCKED with every capability.
FILTERED = ["keyctl", "io_uring", "userfaultfd", "quotactl", "personality", "bpf", "perf_event_open", "open_by_handle_at",
            "clock", "reboot", "swapon", "syslog", "acct", "mount", "umount", "sys_remount",
            "pivot_root", "unshare", "setns", "clone_ns", "clone3_ns", "cgroup_mount"]

_cache = {}


def host_svc(name, command, **keys):
    """A service on the default root: the host's / read-only (where the probe binary sits
    at its own path)."""
    return svc(name, command, rootfs=None, **keys)


def probe_all(h, tmp, cgroot, relax):
    """{probe: (verdict, detail)} from one container with the relaxation applied."""
    if relax in _cache:
        return _cache[relax]
    need(PROBE)
    d = Path(tmp) / ("m-" + str(len(_cache)))
    d.mkdir()
    keys = RELAX[relax]
    # user_namespace = auto takes its ids from subid files of the test's own (test_userns.py)
    s = Sup(h, d, cgroot, (subids(d) if "user_namespace" in keys else "") +
            host_svc("attacker", "/bin/true", **keys))
    rc, out, err = s.run("run", "attacker", "--", str(PROBE), "all")
    assert rc == 0, f"{relax}: rc {rc}\n{out}\n{err}"
    res = {}
    for line in out.splitlines():
        name, _, rest = line.partition(": ")
        verdict, _, detail = rest.partition(" ")
        res[name] = (verdict, detail)
    assert set(PROBES) <= set(res), f"{relax}: missing {set(PROBES) - set(res)}\n{out}"
    _cache[relax] = res
    return res


@pytest.mark.parametrize("probe", sorted(PROBES))
def test_blocked_by_default(h, tmp, cgroot, probe):
    verdict, detail = probe_all(h, tmp, cgroot, "defaults")[probe]
    assert verdict in ("BLOCKED", "ABSENT"), f"{probe}: {verdict} {detail}"


@pytest.mark.parametrize("probe", sorted(PROBES))
def test_negative_control(h, tmp, cgroot, probe):
    base = probe_all(h, tmp, cgroot, "defaults")[probe]
    verdict, detail = probe_all(h, tmp, cgroot, PROBES[probe])[probe]
    if base[0] == "ABSENT" or verdict == "ABSENT":
        pytest.skip(f"{probe}: not on this kernel ({base[1]})")
    assert verdict == "EXPOSED", f"{probe} with {PROBES[probe]}: {verdict} {detail}"


@pytest.mark.parametrize("probe", sorted(PROBES))
def test_blocked_in_a_user_namespace(h, tmp, cgroot, probe):
    """user_namespace = auto changes none of the defaults: every probe is still blocked (and
    what got through would act as an unprivileged host id)."""
    verdict, detail = probe_all(h, tmp, cgroot, "user_namespace=auto")[probe]
    assert verdict in ("BLOCKED", "ABSENT"), f"{probe} with user_namespace=auto: {verdict} {detail}"


@pytest.mark.parametrize("probe", FILTERED)
def test_filter_holds_with_every_capability(h, tmp, cgroot, probe):
    """Defence in depth: the default filter alone stops these, even for a service given
    every capability."""
    verdict, detail = probe_all(h, tmp, cgroot, "cap_add=ALL")[probe]
    assert verdict in ("BLOCKED", "ABSENT"), f"{probe} with cap_add=ALL: {verdict} {detail}"


@pytest.mark.parametrize("probe", DEVICE_RULES)
def test_device_rules_hold_with_cap_mknod(h, tmp, cgroot, probe):
    """The cgroup's device rules (v1 devices controller, v2 device program) refuse a node the
    service made itself with CAP_MKNOD; only a `device` key lets one through."""
    verdict, detail = probe_all(h, tmp, cgroot, "cap_add=MKNOD")[probe]
    assert verdict == "BLOCKED", f"{probe} with cap_add=MKNOD: {verdict} {detail}"
    assert "worked, open" in detail or "mknod" in detail, detail


def _setuid_run(h, tmp, cgroot, nnp):
    """A setuid-root copy of the probe, run by `user = nobody`: its effective uid."""
    d = Path(tmp) / f"suid-{nnp}"
    d.mkdir()
    # pytest's tmp is root's alone (0700): the binary goes where nobody can reach it.
    bindir = Path(tempfile.mkdtemp(prefix="suid-", dir=BUILD / "test"))
    os.chmod(bindir, 0o755)
    request_cleanup.append(bindir)
    suid = bindir / "probe-suid"
    shutil.copy(PROBE, suid)
    os.chown(suid, 0, 0)
    os.chmod(suid, 0o4755)
    s = Sup(h, d, cgroot, host_svc("nobody", "/bin/true", user="nobody",
                                   no_new_privileges=nnp))
    rc, out, err = s.run("run", "nobody", "--", str(suid), "setuid", str(suid))
    assert rc == 0, out + err
    return out.strip()


request_cleanup = []


@pytest.fixture
def suid_dirs():
    yield
    while request_cleanup:
        shutil.rmtree(request_cleanup.pop(), ignore_errors=True)


def test_setuid_binary_blocked_by_no_new_privs(h, tmp, cgroot, suid_dirs):
    need(PROBE)
    assert _setuid_run(h, tmp, cgroot, "true").startswith("BLOCKED"), "no_new_privileges"
    out = _setuid_run(h, tmp, cgroot, "false")
    assert out.startswith("EXPOSED"), f"negative control (no_new_privileges = false): {out}"


def _fork_bomb(h, tmp, cgroot, **keys):
    d = Path(tmp) / f"bomb-{len(keys)}"
    d.mkdir()
    s = Sup(h, d, cgroot, host_svc("bomb", "/bin/true", **keys))
    rc, out, err = s.run("run", "bomb", "--", str(PROBE), "fork_bomb", "3000", timeout=60)
    assert rc == 0, out + err
    return out.strip()


def test_fork_bomb_stays_inside(h, tmp, cgroot):
    need(PROBE)
    if not (Path("/sys/fs/cgroup/pids").is_dir() or
            "pids" in read_text("/sys/fs/cgroup/cgroup.controllers").split()):
        pytest.skip("no pids controller here")
    out = _fork_bomb(h, tmp, cgroot)
    assert out.startswith("BLOCKED"), out
    n = int(out.split("after ")[1].split(":")[0])
    assert 2000 <= n < 2048, out                   # the default pids_max, podman's 2048
    out = _fork_bomb(h, tmp, cgroot, pids_max="max")
    assert out.startswith("EXPOSED"), f"negative control (pids_max = max): {out}"


def test_control_socket_unreachable_from_the_default_root(h, tmp, cgroot):
    """With the host's / as its root, a service cannot reach the supervisor's control socket
    (its directory is hidden); a bind of that directory (the negative control) can."""
    need(PROBE)
    sock = Path(tmp) / "run" / "ctl.sock"
    common = dict(autorestart="false", startsecs=0)
    services = (host_svc("spy", f"{PROBE} control_socket {sock}",
                         stdout_logfile=f"{tmp}/spy.out", **common) +
                host_svc("spy2", f"{PROBE} control_socket /ctl/ctl.sock",
                         stdout_logfile=f"{tmp}/spy2.out", bind=f"{sock.parent}:/ctl", **common))
    s = Sup(h, tmp, cgroot, services)
    s.ini.write_text(s.ini.read_text().replace("[supervisor]\n",
                                               f"[supervisor]\ncontrol_socket = {sock}\n", 1))
    sock.parent.mkdir()
    s.start()
    spy, spy2 = (lambda: read_text(f"{tmp}/spy.out")), (lambda: read_text(f"{tmp}/spy2.out"))
    wait_until(lambda: spy().strip() and spy2().strip(), 20, what="both probes' results")
    assert sock.exists()
    assert spy().startswith("BLOCKED"), spy()
    assert spy2().startswith("EXPOSED"), spy2()
    s.stop()


# ---- seccomp profiles in the Docker/OCI JSON format ----------------------------------------
def test_json_profile_denies_with_its_errno(h, tmp, cgroot):
    prof = Path(tmp) / "profile.json"
    prof.write_text('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": ['
                    '{"names": ["uname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}')
    s = Sup(h, tmp, cgroot, host_svc("u", "/bin/uname -s", seccomp=str(prof)))
    rc, out, err = s.run("run", "u")
    assert rc != 0 and "Permission denied" in err, (rc, out, err)    # EACCES, the profile's
    prof.write_text('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": []}')
    rc, out, err = s.run("run", "u")
    assert rc == 0 and out.strip() == "Linux", (rc, out, err)        # the file is read anew


PODMAN_PROFILE = Path("/usr/share/containers/seccomp.json")   # golang-github-containers-common


def test_podman_default_profile_loads_and_confines(h, tmp, cgroot):
    """The profile podman ships (moby's format and rules, Debian's package) works unchanged:
    an ordinary program runs, the calls it denies are denied, and its capability-conditional
    rules follow the service's capabilities as under Docker."""
    need(PROBE)
    if not PODMAN_PROFILE.exists():
        pytest.skip(f"{PODMAN_PROFILE} missing (make deps installs it)")
    s = Sup(h, tmp, cgroot, host_svc("p", "/bin/true", seccomp=str(PODMAN_PROFILE)))
    rc, out, err = s.run("run", "p", "--", "/bin/sh", "-c", "echo ok; ls / >/dev/null")
    assert rc == 0 and out == "ok\n", (rc, out, err)
    rc, out, err = s.run("run", "p", "--", str(PROBE), "all")
    res = dict(l.split(": ", 1) for l in out.splitlines())
    for probe in ("bpf", "mount", "unshare", "clone_ns", "perf_event_open", "open_by_handle_at",
                  "reboot", "clock", "syslog", "acct", "setns", "umount", "pivot_root"):
        assert res[probe].split()[0] in ("BLOCKED", "ABSENT"), (probe, res[probe])
    (Path(tmp) / "all").mkdir()
    s2 = Sup(h, Path(tmp) / "all", cgroot, host_svc("p", "/bin/true", seccomp=str(PODMAN_PROFILE),
                                                     cap_add="ALL"))
    rc, out, err = s2.run("run", "p", "--", str(PROBE), "mount")
    assert out.startswith("EXPOSED"), (out, err)                     # includes.caps SYS_ADMIN


@pytest.mark.parametrize("probe,relax", [("process_vm", "cap_add=SYS_PTRACE"),
                                         ("kcmp", "cap_add=SYS_PTRACE"),
                                         ("mempolicy", "cap_add=SYS_NICE")])
def test_calls_docker_ties_to_a_capability_follow_it(h, tmp, cgroot, probe, relax):
    """As in Docker, reading another process's memory (process_vm_readv) and kcmp are denied
    unless the service holds CAP_SYS_PTRACE (a debugger needs it with ptrace anyway), and the
    NUMA placement calls unless it holds CAP_SYS_NICE."""
    verdict, detail = probe_all(h, tmp, cgroot, relax)[probe]
    if verdict == "ABSENT":
        pytest.skip(f"{probe}: not on this kernel ({detail})")
    assert verdict == "EXPOSED", f"{probe} with {relax}: {verdict} {detail}"


def test_printed_default_profile_is_the_default(h, tmp, cgroot):
    """`supervisor --print-seccomp` prints the default filter as a Docker/OCI profile; loaded
    as `seccomp = FILE`, it blocks exactly what the default blocks."""
    need(PROBE)
    prof = Path(tmp) / "default.json"
    s = Sup(h, tmp, cgroot, "")
    rc, out, err = s.run("--print-seccomp")
    assert rc == 0, err
    prof.write_text(out)
    (Path(tmp) / "f").mkdir()
    s2 = Sup(h, Path(tmp) / "f", cgroot, host_svc("p", "/bin/true", seccomp=str(prof),
                                                   cap_add="ALL"))
    rc, out, err = s2.run("run", "p", "--", str(PROBE), "all")
    from_file = {l.split(": ", 1)[0]: l.split(": ", 1)[1].split()[0] for l in out.splitlines()}
    builtin = {k: v[0] for k, v in probe_all(h, tmp, cgroot, "cap_add=ALL").items()}
    assert from_file == builtin


def test_ambient_capabilities_reach_a_non_root_workload(h, tmp, cgroot):
    """ambient_capabilities: a `user = nobody` workload keeps NET_BIND_SERVICE through exec
    (its CapAmb and CapEff), and has no capability without the key."""
    def caps(**keys):
        d = Path(tmp) / f"amb-{len(keys)}"
        d.mkdir()
        s = Sup(h, d, cgroot, host_svc("a", "/bin/true", user="nobody", **keys))
        rc, out, err = s.run("run", "a", "--", "/bin/grep", "-E", "^Cap(Amb|Eff)", "/proc/self/status")
        assert rc == 0, out + err
        return dict(l.split(":\t") for l in out.splitlines())
    assert caps(ambient_capabilities="NET_BIND_SERVICE") == {"CapEff": "0000000000000400",
                                                            "CapAmb": "0000000000000400"}
    assert caps() == {"CapEff": "0000000000000000", "CapAmb": "0000000000000000"}
