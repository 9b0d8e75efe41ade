"""user_namespace = auto and idmapped binds, black-box: the real supervisor (build/asan), the real
init, real user namespaces and idmapped mounts over build/rootfs.

No test touches /etc/subuid, /etc/subgid or /var/lib/corral: each writes its own subordinate
id files and state file in its tmp directory and names them with [supervisor] subuid_file,
subgid_file and userns_state. Every test has its own cgroup root (removed at teardown) and its
processes are killed by PID by the harness."""
import os
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import T, alive, gone, wait_until
from test_supervisor import WL, Sup, cgroot, rootfs  # noqa: F401 (fixtures)
from test_supervisor import children_of, prefixed, svc

SLOT = 65536
UID0, GID0 = 3_000_000, 5_000_000      # host ids no other test uses


def subids(tmp, uids=((UID0, 4 * SLOT),), gids=((GID0, 4 * SLOT),), user="crtestuser"):
    """[supervisor] keys naming subuid/subgid files written in tmp, and the state file."""
    tmp = Path(tmp)
    (tmp / "subuid").write_text("".join(f"{user}:{s}:{n}\n" for s, n in uids) +
                                "someoneelse:100000:65536\n")
    (tmp / "subgid").write_text("".join(f"{user}:{s}:{n}\n" for s, n in gids))
    return (f"subid_user = {user}\nsubuid_file = {tmp}/subuid\nsubgid_file = {tmp}/subgid\n"
            f"userns_state = {tmp}/state/userns\n\n")


def state(tmp):
    """{name: (uid, gid)} of the state file."""
    out = {}
    for line in (Path(tmp) / "state" / "userns").read_text().splitlines():
        if line and not line.startswith("#"):
            name, uid, gid = line.split()
            out[name] = (int(uid), int(gid))
    return out


def host_maps(pid):
    """(uid_map, gid_map) of a host pid, each as [[C, H, N], ...]."""
    return tuple([[int(x) for x in l.split()] for l in
                  Path(f"/proc/{pid}/{f}").read_text().splitlines()] for f in ("uid_map", "gid_map"))


def host_ids(pid):
    st = Path(f"/proc/{pid}/status").read_text()
    return (int(re.search(r"^Uid:\s+(\d+)", st, re.M).group(1)),
            int(re.search(r"^Gid:\s+(\d+)", st, re.M).group(1)))


AUTO = dict(user_namespace="auto", startsecs=0)


def idmap_fs(path):
    """True when path's filesystem has idmapped mounts on this kernel (ext4, xfs, btrfs since
    5.12-5.15; tmpfs since 6.3; not 9p: the VM's shared folders)."""
    fs = subprocess.run(["stat", "-f", "-c", "%T", str(path)], capture_output=True, text=True,
                        check=True).stdout.strip()
    release = tuple(int(x) for x in re.match(r"(\d+)\.(\d+)", os.uname().release).groups())
    return fs in ("ext2/ext3", "xfs", "btrfs") or (fs == "tmpfs" and release >= (6, 3))


ROOT_PLAIN = "rootfs {}: not idmapped (its filesystem has no idmapped mounts)"


@pytest.mark.cgroup
def test_auto_ranges_are_disjoint_and_kept_across_restarts(h, tmp, cgroot, rootfs):
    """Two services get two disjoint 65536-id ranges of the subid user's; a new container (init
    killed), a `run`, and a new supervisor all keep the name's range; the state file holds
    them and survives."""
    cmd = f"{WL} sleep 1000"
    s = Sup(h, tmp, cgroot, subids(tmp) + svc("a", cmd, **AUTO) + svc("b", cmd, **AUTO)).start()
    ia, ib = s.init("a"), s.init("b")
    ma, mb = host_maps(ia), host_maps(ib)
    st = state(tmp)
    assert set(st) == {"a", "b"}, st
    for name, m in (("a", ma), ("b", mb)):
        uid, gid = st[name]
        assert m == ([[0, uid, SLOT]], [[0, gid, SLOT]]), (name, m)
        # a range of the subid user's, on a 65536 boundary of it
        assert UID0 <= uid and uid + SLOT <= UID0 + 4 * SLOT and (uid - UID0) % SLOT == 0
        assert GID0 <= gid and gid + SLOT <= GID0 + 4 * SLOT and (gid - GID0) % SLOT == 0
    assert abs(st["a"][0] - st["b"][0]) >= SLOT and abs(st["a"][1] - st["b"][1]) >= SLOT
    # a rootfs on a filesystem without idmapped mounts (the VM's 9p) is bound as it is, said
    assert (ROOT_PLAIN.format(os.path.realpath(rootfs)) in s.log()) != idmap_fs(rootfs), s.log()
    # root inside is the range's first id outside, init and the workload alike
    wl = wait_until(lambda: children_of(ia), what="a's workload")[0]
    assert host_ids(ia) == host_ids(wl) == st["a"]

    # a new container of a: the same range
    os.kill(ia, signal.SIGKILL)
    s.wait_log(r"^supervisor: a: started \(pid", count=2)
    ia2 = s.inits("a")[-1]
    assert ia2 != ia and host_maps(ia2) == ma
    # `supervisor run a` beside it: the same range too
    rc, out, err = s.run("run", "a", "--", "/bin/cat", "/proc/self/uid_map")
    assert rc == 0 and out.split() == ["0", str(st["a"][0]), str(SLOT)], (rc, out, err)
    assert s.stop() == 0
    saved = (Path(tmp) / "state" / "userns").read_text()

    # a new supervisor, with a third service before the others: a and b keep theirs
    s2 = Sup(h, tmp, cgroot, subids(tmp) + svc("c", cmd, **AUTO) + svc("b", cmd, **AUTO) +
             svc("a", cmd, **AUTO), name="again.ini").start()
    assert host_maps(s2.init("a")) == ma and host_maps(s2.init("b")) == mb
    st2 = state(tmp)
    assert {k: st2[k] for k in ("a", "b")} == {k: st[k] for k in ("a", "b")}
    assert host_maps(s2.init("c")) == ([[0, st2["c"][0], SLOT]], [[0, st2["c"][1], SLOT]])
    taken = [v[0] for v in st2.values()]
    assert len(set(taken)) == 3 and all(abs(x - y) >= SLOT for x in taken for y in taken if x != y)
    # the file only grew: the old lines are still there as they were
    text = (Path(tmp) / "state" / "userns").read_text()
    assert text.startswith(saved) and text.count("\n") == saved.count("\n") + 1
    assert "1 new range of host ids kept in" in s2.log()
    assert s2.stop() == 0


@pytest.mark.cgroup
def test_reload_gives_a_new_service_a_range_and_check_writes_nothing(h, tmp, cgroot, rootfs):
    cmd = f"{WL} sleep 1000"
    keys = subids(tmp)
    s = Sup(h, tmp, cgroot, keys + svc("a", cmd, **AUTO)).start()
    ma = host_maps(s.init("a"))
    before = state(tmp)
    s.write(keys + svc("a", cmd, **AUTO) + svc("n", cmd, **AUTO))
    # --check and --print-spec show the range n would get, and keep nothing
    rc, out, err = s.run("--print-spec", "n")
    assert rc == 0, err
    shown = re.findall(r"^; uid_map = 0 (\d+) 65536$", out, re.M)
    assert len(shown) == 1 and int(shown[0]) != before["a"][0], out
    rc, out, err = s.run("--check")
    assert rc == 0 and state(tmp) == before, (out, err)
    s.p.send_signal(signal.SIGHUP)
    s.wait_log(r"^supervisor: reloaded: 1 added")
    inn = s.init("n")
    st = state(tmp)
    assert st["a"] == before["a"] and st["n"][0] == int(shown[0])
    assert host_maps(inn) == ([[0, st["n"][0], SLOT]], [[0, st["n"][1], SLOT]])
    assert host_maps(s.inits("a")[-1]) == ma and len(s.inits("a")) == 1   # a untouched
    assert s.stop() == 0


def test_auto_config_errors(h, tmp, cgroot, rootfs):
    """No entries for the subid user, too few ids, a stale state line, and a map given by
    hand: each an error naming file, line and key; nothing is written."""
    cmd = "/bin/true"

    def check(text, name="check.ini"):
        s = Sup(h, tmp, cgroot, text, name=name)
        rc, out, err = s.run("--check")
        return rc, err.replace(str(s.ini), "FILE")

    rc, err = check(subids(tmp, user="nobodyhere").replace("subid_user = nobodyhere",
                                                           "subid_user = crtestuser") +
                    svc("a", cmd, **AUTO))
    assert rc == 1 and (f"FILE:12: user_namespace: auto needs {tmp}/subuid and {tmp}/subgid "
                        "entries for 'crtestuser' (subid_user): e.g. `useradd --system "
                        "--no-create-home crtestuser; usermod --add-subuids 1000000-1655359 "
                        "--add-subgids 1000000-1655359 crtestuser`") in err, err
    # one range of 65536 (and a bit): the second service finds none left
    rc, err = check(subids(tmp, uids=((UID0, SLOT + 100),)) + svc("a", cmd, **AUTO) +
                    svc("b", cmd, **AUTO))
    assert rc == 1 and (f"FILE:18: user_namespace: no free range of 65536 ids left for 'b' in "
                        f"{tmp}/subuid and {tmp}/subgid of 'crtestuser' (1 ranges given, in "
                        f"{tmp}/state/userns)") in err, err
    assert not (Path(tmp) / "state" / "userns").exists()     # --check keeps nothing
    # a range the subid files no longer give
    (Path(tmp) / "state").mkdir()
    (Path(tmp) / "state" / "userns").write_text(f"# old\na 9000000 {GID0}\n")
    rc, err = check(subids(tmp) + svc("a", cmd, **AUTO))
    assert rc == 1 and (f"FILE:12: user_namespace: the range {tmp}/state/userns:2 gives 'a' "
                        f"(uid 9000000, gid {GID0}) is no longer among the ids of 'crtestuser'"
                        ) in err, err
    (Path(tmp) / "state" / "userns").write_text("a 1 2 3\n")
    rc, err = check(subids(tmp) + svc("a", cmd, **AUTO))
    assert rc == 1 and f"FILE:8: userns_state: {tmp}/state/userns:1: 'a 1 2 3' is not NAME UID GID" \
        in err, err
    rc, err = check(subids(tmp) + svc("a", cmd, uid_map="0:100000:65536", **AUTO))
    assert rc == 1 and "FILE:12: uid_map: not with user_namespace = auto (line 13)" in err, err


@pytest.mark.cgroup
def test_idmap_bind_keeps_host_owners(h, tmp, cgroot, rootfs, request):
    """Through an idmap bind a host file of uid 1000 is 1000 inside and what root creates inside
    is host root's; through a plain bind the same files are nobody's (65534). The rootfs of an
    auto service is idmapped too: busybox, host root's, is root's inside."""
    # A plain bind's source must be reachable by root inside (host uid 3000000): not below
    # pytest's 0700 directories.
    data = Path(tempfile.mkdtemp(prefix="crtest-userns-"))
    request.addfinalizer(lambda: shutil.rmtree(data))
    data.chmod(0o755)
    if not idmap_fs(data):
        pytest.skip(f"{data}: no idmapped mounts on this filesystem with kernel "
                    f"{os.uname().release}")
    (data / "user-file").write_text("x")
    os.chown(data / "user-file", 1000, 1000)
    (data / "root-file").write_text("y")
    script = ("ls -ln /idm /plain /bin/busybox; touch /idm/made-inside; "
              "touch /plain/denied 2>/dev/null || echo PLAIN-DENIED; echo END")
    s = Sup(h, tmp, cgroot, subids(tmp) + svc(
        "m", f"/bin/sh -c '{script}'", bind=[f"{data}:/idm:idmap", f"{data}:/plain:ro"],
        autorestart="false", **AUTO))
    rc, out, err = s.run("run", "m")
    assert rc == 0, (out, err)
    own = {}
    section = None
    for line in out.splitlines():
        if line.endswith(":"):
            section = line[:-1]
        f = line.split()
        if len(f) >= 9 and f[0].startswith("-"):
            own[(section, f[-1])] = (int(f[2]), int(f[3]))
    assert own[("/idm", "user-file")] == (1000, 1000), out
    assert own[("/idm", "root-file")] == (0, 0), out
    assert own[("/plain", "user-file")] == (65534, 65534), out
    assert own[("/plain", "root-file")] == (65534, 65534), out
    # the rootfs idmapped, where its filesystem allows (else said, and nobody's as below)
    assert own[(None, "/bin/busybox")] == ((0, 0) if idmap_fs(rootfs) else (65534, 65534)), out
    assert (ROOT_PLAIN.format(os.path.realpath(rootfs)) in err) != idmap_fs(rootfs), err
    assert "PLAIN-DENIED" in out
    made = data / "made-inside"
    assert (made.stat().st_uid, made.stat().st_gid) == (0, 0)   # host root's, not 3000000's
    # without idmap the rootfs is nobody's inside (a manual user namespace)
    s2 = Sup(h, tmp, cgroot, svc("plain", "/bin/ls -ln /bin/busybox", startsecs=0,
                                 namespaces="pid,mount,uts,ipc,net,cgroup,user",
                                 uid_map=f"0:{UID0}:65536", gid_map=f"0:{GID0}:65536"),
             name="manual.ini")
    rc, out, err = s2.run("run", "plain")
    assert rc == 0 and out.split()[2:4] == ["65534", "65534"], (out, err)


@pytest.mark.cgroup
def test_idmap_bind_on_a_filesystem_without_idmapped_mounts(h, tmp, cgroot, rootfs):
    """proc has no idmapped mounts: the start fails with the bind named, at once (the child
    the supervisor gave up on exits instead of waiting)."""
    s = Sup(h, tmp, cgroot, subids(tmp) + svc("p", "/bin/true", bind="/proc/sys:/x:idmap",
                                              **AUTO))
    rc, out, err = s.run("run", "p", timeout=20)
    assert rc != 0
    assert ("p: cannot start its container: bind /proc/sys: cannot be idmapped: its filesystem "
            "(or one mounted below it) does not support idmapped mounts") in err, err
