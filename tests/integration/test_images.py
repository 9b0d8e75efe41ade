"""image = oci:PATH[:TAG] and docker-archive:FILE[:REF]: layers checked and unpacked once into
image_store, the root an overlay of them with a per-container upper dir.

The images are built here from the busybox root (build/rootfs) with umoci (a layout, its first
layers, the image config) and skopeo (the docker-archive); layers umoci cannot make (an opaque
directory, a zstd layer, the hostile ones) are tar files written by Python and appended to a
copy of the layout the way `umoci raw add-layer` would: a blob, a new config with its diff_id,
a new manifest, a tag in index.json. No registry is ever contacted."""
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

import kube_schema
from conftest import BUILD, ROOTFS, T, read_text, wait_until
from test_svctl import ASAN_SVCTL
from test_supervisor import Sup, cgroot, svc  # noqa: F401  (cgroot is a fixture)

pytestmark = pytest.mark.cgroup


# ---- building images ------------------------------------------------------------------------
def sh(*argv):
    p = subprocess.run([str(a) for a in argv], capture_output=True, text=True)
    assert p.returncode == 0, (argv, p.stdout, p.stderr)
    return p.stdout


def blob(layout, data):
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    (Path(layout) / "blobs/sha256" / d[7:]).write_bytes(data)
    return d


def read_blob(layout, digest):
    return json.loads((Path(layout) / "blobs/sha256" / digest[7:]).read_bytes())


def manifest_of(layout, tag):
    index = json.loads((Path(layout) / "index.json").read_text())
    for m in index["manifests"]:
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag:
            return index, m, read_blob(layout, m["digest"])
    raise KeyError(tag)


def add_layer(layout, src, dst, tar_bytes, compress="gzip"):
    """Tag dst: the image src with one more layer (tar_bytes, compressed as asked)."""
    index, _, man = manifest_of(layout, src)
    cfg = read_blob(layout, man["config"]["digest"])
    if compress == "gzip":
        data, mt = gzip.compress(tar_bytes), "application/vnd.oci.image.layer.v1.tar+gzip"
    elif compress == "zstd":
        data = subprocess.run(["zstd", "-q", "-c"], input=tar_bytes, capture_output=True,
                              check=True).stdout
        mt = "application/vnd.oci.image.layer.v1.tar+zstd"
    else:
        data, mt = tar_bytes, "application/vnd.oci.image.layer.v1.tar"
    ld = blob(layout, data)
    cfg["rootfs"]["diff_ids"].append("sha256:" + hashlib.sha256(tar_bytes).hexdigest())
    cb = json.dumps(cfg).encode()
    man = dict(man, config=dict(man["config"], digest=blob(layout, cb), size=len(cb)),
               layers=man["layers"] + [{"mediaType": mt, "digest": ld, "size": len(data)}])
    mb = json.dumps(man).encode()
    index["manifests"] = [m for m in index["manifests"]
                          if m.get("annotations", {}).get("org.opencontainers.image.ref.name")
                          != dst]
    index["manifests"].append({"mediaType": "application/vnd.oci.image.manifest.v1+json",
                               "digest": blob(layout, mb), "size": len(mb),
                               "annotations": {"org.opencontainers.image.ref.name": dst}})
    (Path(layout) / "index.json").write_text(json.dumps(index))
    return ld


def tar_of(*entries):
    """A tar from (name, kind, payload): kind 'f' file (payload: bytes), 'd' dir, 'l' symlink
    (payload: target), 'h' hard link (payload: target)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, kind, payload in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime = 1
            if kind == "f":
                ti.size, ti.mode = len(payload), 0o644
                t.addfile(ti, io.BytesIO(payload))
                continue
            ti.type = {"d": tarfile.DIRTYPE, "l": tarfile.SYMTYPE, "h": tarfile.LNKTYPE}[kind]
            ti.mode = 0o755
            if kind in "lh":
                ti.linkname = payload
            t.addfile(ti)
    return buf.getvalue()


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """layout:base  the busybox root plus /etc/removed and /opq/{a,b} (umoci), its config
                    (Cmd, Env, WorkingDir, StopSignal) set with umoci config;
       layout:user  base, run as nobody, with an Entrypoint and a Cmd;
       layout:app   + a layer from umoci (removes /etc/removed: a whiteout; adds /app/hello)
                    + an opaque /opq holding only c (gzip);
       layout:zapp  layout:app + /app/z (zstd);
       app.tar      layout:app as a docker-archive (skopeo: no zstd there), corral/app:v1."""
    d = tmp_path_factory.mktemp("images")
    lay, b = d / "layout", d / "bundle"
    sh("umoci", "init", "--layout", lay)
    sh("umoci", "new", "--image", f"{lay}:base")
    sh("umoci", "unpack", "--image", f"{lay}:base", b)
    sh("cp", "-a", f"{ROOTFS}/.", b / "rootfs")
    (b / "rootfs/etc/removed").write_text("gone in app\n")
    (b / "rootfs/opq").mkdir()
    (b / "rootfs/opq/a").write_text("a\n")
    (b / "rootfs/opq/b").write_text("b\n")
    sh("umoci", "repack", "--image", f"{lay}:base", b)
    sh("umoci", "config", "--image", f"{lay}:base", "--config.cmd", "/bin/sh",
       "--config.cmd", "-c", "--config.cmd", "echo cmd $GREETING; pwd",
       "--config.env", "GREETING=hello-from-config", "--config.workingdir", "/opq",
       "--config.stopsignal", "SIGQUIT")
    shutil.rmtree(b)
    sh("umoci", "config", "--image", f"{lay}:base", "--tag", "user", "--config.user", "nobody",
       "--config.entrypoint", "/bin/sh", "--config.entrypoint", "-c",
       "--config.cmd", "echo id=$(id -u):$(id -g) home=$HOME")
    sh("umoci", "tag", "--image", f"{lay}:base", "app")
    sh("umoci", "unpack", "--image", f"{lay}:app", b)
    (b / "rootfs/etc/removed").unlink()
    (b / "rootfs/app").mkdir()
    (b / "rootfs/app/hello").write_text("hello from layer 2\n")
    sh("umoci", "repack", "--image", f"{lay}:app", b)
    shutil.rmtree(b)
    add_layer(lay, "app", "app", tar_of(("opq", "d", None), ("opq/.wh..wh..opq", "f", b""),
                                        ("opq/c", "f", b"c\n")))
    add_layer(lay, "app", "zapp", tar_of(("app/z", "f", b"zstd layer\n")), compress="zstd")
    sh("skopeo", "copy", "-q", f"oci:{lay}:app", f"docker-archive:{d}/app.tar:corral/app:v1")
    return d


class ImgSup(Sup):
    """A supervisor whose image_store is its own."""

    def __init__(self, h, tmp, cgroot, services, store=None):
        self.store = Path(store) if store else Path(tmp) / "store"
        super().__init__(h, tmp, cgroot, services)

    def write(self, services):
        self.ini.write_text(f"[supervisor]\ncgroup_root = {self.cgroot}\nlog_dir = "
                            f"{self.tmp}/logs\nimage_store = {self.store}\ncontrol_socket = "
                            f"{self.tmp}/ctl.sock\n\n" + services)

    def layers(self):
        d = self.store / "layers/sha256"
        return sorted(p.name for p in d.iterdir()) if d.exists() else []


def isvc(name, image, command=None, **keys):
    text = f"[service:{name}]\nimage = {image}\n"
    if command:
        text += f"command = {command}\n"
    for k, v in keys.items():
        text += f"{k} = {v}\n"
    return text + "\n"


def store_mounts(store):
    return [l for l in read_text("/proc/self/mountinfo").splitlines() if str(store) in l]


def assert_store_clean(s):
    """No container dir left (none persists here), no .tmp unpack, nothing mounted."""
    ct = s.store / "containers"
    assert not ct.exists() or not list(ct.iterdir()), list(ct.iterdir())
    assert not [n for n in s.layers() if n.startswith(".")], s.layers()
    assert not store_mounts(s.store)


# ---- running images -------------------------------------------------------------------------
def test_oci_image_layers_whiteouts_and_config(h, tmp, cgroot, images):
    lay = images / "layout"
    probe = ("echo cwd=$(pwd) g=$GREETING; cat /app/hello /app/z; ls /opq; "
             "test -e /etc/removed && echo removed-still-there; mount | grep \"on / type\"")
    s = ImgSup(h, tmp, cgroot, isvc("app", f"oci:{lay}:zapp", f"/bin/sh -c '{probe}'"))
    spec = s.run("--print-spec", "app")[1]
    assert "stopsignal = QUIT" in spec and "directory = /opq" in spec, spec
    assert spec.count("layer = ") == 4, spec
    rc, out, err = s.run("run", "app")
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[:4] == ["cwd=/opq g=hello-from-config", "hello from layer 2", "zstd layer",
                         "c"], lines
    assert "removed-still-there" not in out
    assert lines[4].startswith("overlay on / type overlay"), lines
    # each layer once in the store, keyed by its blob's digest
    _, _, man = manifest_of(lay, "zapp")
    assert s.layers() == sorted(l["digest"][7:] for l in man["layers"])
    assert "4 layers unpacked" in err
    # image/'s per-thread buffers come out of every thread's stack: the log writer's too
    assert "no writer thread" not in err, err
    # a line per layer as it begins, before the outcome
    progress = [l for l in err.splitlines() if ": unpacking layer " in l]
    assert [l.split("unpacking layer ")[1][:4] for l in progress] == ["1/4 ", "2/4 ", "3/4 ",
                                                                    "4/4 "], err
    for l, d in zip(progress, [x["digest"] for x in man["layers"]]):
        assert f" {d[:19]}… (" in l and l.endswith(" MB)"), l
    assert err.index("4/4 ") < err.index("4 layers unpacked")
    assert_store_clean(s)
    # the image's Cmd when command is unset, in another run: the layers are not unpacked again
    s.write(isvc("app", f"oci:{lay}:zapp"))
    rc, out, err = s.run("run", "app")
    assert (rc, out) == (0, "cmd hello-from-config\n/opq\n"), err
    assert "unpacking" not in err
    assert_store_clean(s)


def test_each_container_starts_from_the_image(h, tmp, cgroot, images):
    """What a container writes goes with it (its upper dir); read_only: no upper at all."""
    lay = images / "layout"
    s = ImgSup(h, tmp, cgroot, isvc("w", f"oci:{lay}:base",
                                   "/bin/sh -c 'cat /mark 2>/dev/null; echo x > /mark; echo ok'"))
    for _ in range(2):
        rc, out, err = s.run("run", "w")
        assert (rc, out) == (0, "ok\n"), err
    s.write(isvc("w", f"oci:{lay}:base", "/bin/sh -c 'echo x > /mark || echo refused'",
                 read_only="true"))
    assert "upper" not in s.run("--print-spec", "w")[1]
    rc, out, err = s.run("run", "w")
    assert rc == 0 and out.endswith("refused\n"), (out, err)
    assert_store_clean(s)


def test_entrypoint_and_user_from_the_image(h, tmp, cgroot, images):
    """Docker's rules: command replaces Cmd after the Entrypoint; the entrypoint key replaces
    the Entrypoint and drops Cmd; the image's User is looked up in its /etc/passwd."""
    lay = images / "layout"
    s = ImgSup(h, tmp, cgroot, isvc("u", f"oci:{lay}:user"))
    rc, out, err = s.run("run", "u")
    assert (rc, out) == (0, "id=65534:65534 home=/nonexistent\n"), err
    s.write(isvc("u", f"oci:{lay}:user", "'echo replaced cmd'"))
    rc, out, err = s.run("run", "u")
    assert (rc, out) == (0, "replaced cmd\n"), err
    s.write(isvc("u", f"oci:{lay}:user", entrypoint="/bin/echo", user="0"))
    spec = s.run("--print-spec", "u")[1]
    assert [l for l in spec.splitlines() if l.startswith("argv")] == ["argv = /bin/echo"], spec
    assert "uid = 0" in spec
    assert_store_clean(s)


def test_image_user_read_from_a_blob_once(h, tmp, cgroot, images):
    """A user looked up in layers not unpacked yet is read from the layer's blob (streamed)
    once: a reload finds the answer kept (a blob never changes under its digest), without
    reading the blob again, which on the loop blocked every service for as long as it took.
    Shown with the blob moved away before the reload: it still loads, with the same ids."""
    lay = tmp / "layout"
    shutil.copytree(images / "layout", lay)
    s = ImgSup(h, tmp, cgroot, isvc("u", f"oci:{lay}:user", autostart="false",
                                    startsecs="0")).start()
    wait_until(lambda: (tmp / "ctl.sock").exists(), 10, what="the control socket")
    assert "uid = 65534" in s.run("--print-spec", "u")[1]
    assert not s.layers()                           # nothing unpacked: read from the blob
    blobs = [p for p in (lay / "blobs/sha256").iterdir()
             if p.stat().st_size > 100000]          # the layer (the rest is JSON)
    assert len(blobs) == 1, blobs
    moved = tmp / "moved-blob"
    blobs[0].rename(moved)
    try:
        # what a fresh load says without the blob (a negative control: the blob is needed)
        rc, out, err = s.run("--check")
        assert rc != 0 and "no user 'nobody'" in err, (rc, out, err)
        s.write(isvc("u", f"oci:{lay}:user", autostart="false", startsecs="1"))
        p = subprocess.run([str(ASAN_SVCTL), "-c", str(s.ini), "reload"],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, (p.stdout, p.stderr, s.log()[-2000:])
        assert "no user" not in s.log(), s.log()[-2000:]
    finally:
        moved.rename(blobs[0])
    assert s.stop() == 0
    assert_store_clean(s)


def test_rootfs_persist_keeps_the_upper_across_containers(h, tmp, cgroot, images):
    """A new container (svctl restart) starts from the image, unless rootfs_persist."""
    lay = images / "layout"
    cmd = "/bin/sh -c 'echo x >> /starts; echo n=$(wc -l < /starts); exec sleep 1000'"
    s = ImgSup(h, tmp, cgroot, isvc("keep", f"oci:{lay}:base", cmd, rootfs_persist="true",
                                   startsecs="0") +
               isvc("drop", f"oci:{lay}:base", cmd, startsecs="0")).start()
    s.wait_out("keep | n=1")
    s.wait_out("drop | n=1")
    wait_until(lambda: (tmp / "ctl.sock").exists(), 10, what="the control socket")
    p = subprocess.run([str(ASAN_SVCTL), "-c", str(s.ini), "restart", "keep", "drop"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    s.wait_out("keep | n=2")
    wait_until(lambda: s.out().splitlines().count("drop | n=1") == 2, 20, what="drop again")
    s.stop()
    assert sorted(p.name for p in (s.store / "containers").iterdir()) == ["keep"]
    assert (s.store / "containers/keep/upper/starts").read_text() == "x\nx\n"
    shutil.rmtree(s.store / "containers/keep")
    assert_store_clean(s)


def test_docker_archive_from_skopeo(h, tmp, cgroot, images):
    s = ImgSup(h, tmp, cgroot, isvc("d", f"docker-archive:{images}/app.tar:corral/app:v1",
                                   "/bin/sh -c 'cat /app/hello; ls /opq'"))
    rc, out, err = s.run("run", "d")
    assert rc == 0, err
    assert out == "hello from layer 2\nc\n", (out, err)
    # docker-archive layers are keyed by their diff_ids (uncompressed): 3 of them
    assert len(s.layers()) == 3
    assert_store_clean(s)


def test_shared_layers_images_listing_and_prune(h, tmp, cgroot, images):
    """Two services on images sharing their base layer: one copy of it; `images` lists the
    users of each layer; --prune removes only what no service uses."""
    lay = images / "layout"
    both = (isvc("one", f"oci:{lay}:base", "/bin/true") +
            isvc("two", f"oci:{lay}:zapp", "/bin/true"))
    s = ImgSup(h, tmp, cgroot, both)
    for name in ("one", "two"):
        rc, out, err = s.run("run", name)
        assert rc == 0, err
    _, _, base = manifest_of(lay, "base")
    _, _, app = manifest_of(lay, "zapp")
    shared = base["layers"][0]["digest"]
    assert shared == app["layers"][0]["digest"]
    assert len(s.layers()) == 4                  # base's one layer is app's first
    rc, out, err = s.run("images")
    assert rc == 0, err
    row = [l for l in out.splitlines() if l.startswith(shared + " ")]
    assert row and row[0].endswith("one, two"), out
    s.write(isvc("one", f"oci:{lay}:base", "/bin/true"))
    # a container dir a killed supervisor renamed to remove (its pid gone), and one of a
    # live supervisor's (this test's pid), under way
    dead, live = (s.store / "containers/.gone-x-4194304-1/upper",
                  s.store / f"containers/.gone-y-z-{os.getpid()}-2/upper")
    for p in (dead, live):
        p.mkdir(parents=True)
        (p / "f").write_text("x")
    rc, out, err = s.run("images", "--prune")
    assert rc == 0, err
    assert s.layers() == [shared[7:]], out
    assert "removed 3 unused" in out and "removed 1 container dir left by a killed" in out, out
    assert not dead.parent.exists() and live.exists()
    shutil.rmtree(live.parent)


def test_daemon_unpacks_off_the_loop_and_other_services_run(h, tmp, cgroot, images):
    """A bad image keeps its own service down (FATAL, the blob named); the others start."""
    lay = images / "layout"
    bad = tmp / "bad"
    shutil.copytree(lay, bad)
    _, _, man = manifest_of(bad, "app")
    victim = bad / "blobs/sha256" / man["layers"][1]["digest"][7:]
    data = bytearray(victim.read_bytes())
    victim.write_bytes(data[: len(data) // 2])   # truncated
    s = ImgSup(h, tmp, cgroot,
               isvc("good", f"oci:{lay}:base", "/bin/sh -c 'echo up; exec sleep 1000'",
                    startsecs="0") +
               isvc("bad", f"oci:{bad}:app", "/bin/true", startretries="0") +
               svc("plain", "/bin/sh -c 'echo plain; exec sleep 1000'", startsecs=0)).start()
    s.wait_out("good | up")
    s.wait_out("plain | plain")
    s.wait_log(r"bad: image oci:.*: layer blob .*" + victim.name + r".*truncated or corrupt")
    s.wait_log(r"bad: .*FATAL")
    assert victim.name not in s.layers()
    s.stop()
    assert_store_clean(s)


# ---- bad input ------------------------------------------------------------------------------
def check_errors(s):
    p = subprocess.run([str(a) for a in ["build/supervisor", "-c", s.ini, "--check"]],
                       capture_output=True, text=True, cwd=Path(__file__).parents[2])
    return p.returncode, p.stderr


def test_missing_tag_and_bad_refs(h, tmp, cgroot, images):
    lay = images / "layout"
    s = ImgSup(h, tmp, cgroot, isvc("t", f"oci:{lay}:nope", "/bin/true") +
               isvc("u", f"oci:{lay}", "/bin/true") +
               isvc("v", f"docker-archive:{images}/app.tar:other:v9", "/bin/true") +
               isvc("w", f"tarball:{lay}", "/bin/true"))
    rc, err = check_errors(s)
    assert rc == 1
    ini, text = s.ini, s.ini.read_text().splitlines()

    def at(value):
        return text.index(f"image = {value}") + 1
    assert f"{ini}:{at(f'oci:{lay}:nope')}: image: {lay}: no image tagged 'nope' in its " \
           "index.json" in err, err
    n = len(json.loads((lay / "index.json").read_text())["manifests"])
    assert f"{ini}:{at(f'oci:{lay}')}: image: {lay}: {n} images in its index.json: name " \
           "one" in err, err
    assert f"{ini}:{at(f'docker-archive:{images}/app.tar:other:v9')}: image: " \
           f"{images}/app.tar: no image tagged 'other:v9'" in err, err
    assert f"{ini}:{at(f'tarball:{lay}')}: image: tarball:{lay}: expected " \
           "oci:PATH[:TAG]" in err, err


def hostile(images, tmp, tag, tar_bytes, compress="gzip"):
    lay = tmp / ("h-" + tag)
    shutil.copytree(images / "layout", lay)
    digest = add_layer(lay, "base", tag, tar_bytes, compress)
    return lay, digest


@pytest.mark.parametrize("case", ["dotdot", "symlink", "hardlink", "whiteout-symlink"])
def test_layers_escaping_the_root(h, tmp, cgroot, images, case):
    """Nothing lands outside the layer; the error names the blob; nothing is left in the
    store of the refused layer."""
    target = tmp / "target"
    target.mkdir()
    entries = {
        "dotdot": [("../../../../../../../..%s/pwned" % target, "f", b"x")],
        "symlink": [("evil", "l", str(target)), ("evil/pwned", "f", b"x")],
        "hardlink": [("evil", "l", str(target)), ("pw", "h", "evil/../evil/pwned")],
        "whiteout-symlink": [("evil", "l", str(target)), ("evil/.wh.x", "f", b""),
                             ("evil/.wh..wh..opq", "f", b"")],
    }[case]
    (target / "x").write_text("keep\n")
    lay, digest = hostile(images, tmp, "evil", tar_of(*entries))
    s = ImgSup(h, tmp, cgroot, isvc("e", f"oci:{lay}:evil", "/bin/true"))
    rc, out, err = s.run("run", "e")
    assert rc != 0
    assert digest[7:] in err, err
    assert sorted(p.name for p in target.iterdir()) == ["x"], list(target.iterdir())
    assert (target / "x").read_text() == "keep\n"
    assert not os.listxattr(target), os.listxattr(target)
    assert digest[7:] not in s.layers()
    assert_store_clean(s)


def test_digest_mismatch(h, tmp, cgroot, images):
    """A layer blob replaced by another valid one: it unpacks, but its digest is not the
    manifest's: refused, not kept."""
    lay, digest = hostile(images, tmp, "swap", tar_of(("a", "f", b"one\n")))
    (lay / "blobs/sha256" / digest[7:]).write_bytes(gzip.compress(tar_of(("a", "f", b"two\n"))))
    s = ImgSup(h, tmp, cgroot, isvc("m", f"oci:{lay}:swap", "/bin/cat /a"))
    rc, out, err = s.run("run", "m")
    assert rc != 0 and out == ""
    assert f"layer blob {lay}/blobs/sha256/{digest[7:]}: digest mismatch: expected {digest}" \
        in err, err
    assert digest[7:] not in s.layers()
    assert_store_clean(s)
    # a manifest blob that does not match its digest: --check says so
    index, m, _ = manifest_of(lay, "swap")
    mpath = lay / "blobs/sha256" / m["digest"][7:]
    mpath.write_bytes(mpath.read_bytes() + b" ")
    rc, err = check_errors(s)
    assert rc == 1 and f"manifest blob {m['digest']}: digest mismatch" in err, err


def test_disk_full_while_unpacking(h, tmp, cgroot, images):
    """The store on a 600 KB tmpfs: the busybox layer (2 MB) does not fit. The error names the
    blob and the store keeps nothing of it."""
    small = tmp / "small"
    small.mkdir()
    sh("mount", "-t", "tmpfs", "-o", "size=600k", "crtest-img-small", small)
    try:
        s = ImgSup(h, tmp, cgroot, isvc("f", f"oci:{images}/layout:base", "/bin/true"),
                   store=small / "store")
        rc, out, err = s.run("run", "f")
        assert rc != 0
        _, _, man = manifest_of(images / "layout", "base")
        assert man["layers"][0]["digest"][7:] in err and "No space left on device" in err, err
        assert s.layers() == []
        assert_store_clean(s)
    finally:
        sh("umount", small)


# ---- named volumes --------------------------------------------------------------------------
def test_named_volumes_seeded_kept_shared_and_pruned(h, tmp, cgroot, images):
    """A volume is seeded once from the image's content at its path (the overlay's view:
    /opq of zapp is opaque, only c), kept across runs, shared by name, read-only where asked;
    `volumes --prune` removes the ones no service names."""
    lay = images / "layout"
    s = ImgSup(h, tmp, cgroot,
               isvc("v", f"oci:{lay}:zapp",
                    "/bin/sh -c 'ls /opq; echo x >> /opq/log; wc -l < /opq/log; "
                    "echo y > /ro/f || echo ro-refused'",
                    volume="data:/opq\nvolume = other:/ro:ro") +
               isvc("w", f"oci:{lay}:base", "/bin/cat /shared/log", volume="data:/shared"))
    rc, out, err = s.run("run", "v")
    assert rc == 0, err
    assert out.splitlines()[:3] == ["c", "1", "ro-refused"], (out, err)
    rc, out, err = s.run("run", "v")
    assert rc == 0 and out.splitlines()[:4] == ["c", "log", "2", "ro-refused"], (out, err)
    rc, out, err = s.run("run", "w")
    assert (rc, out) == (0, "x\nx\n"), err
    vols = s.store / "volumes"
    assert sorted(p.name for p in vols.iterdir()) == ["data", "other"]
    rc, out, err = s.run("volumes")
    assert rc == 0 and "v (/opq), w (/shared)" in out, out
    s.write(isvc("w", f"oci:{lay}:base", "/bin/true", volume="data:/shared"))
    rc, out, err = s.run("volumes", "--prune")
    assert rc == 0 and "removed 1 unused" in out, out
    assert sorted(p.name for p in vols.iterdir()) == ["data"]
    assert_store_clean(s)


def test_bad_volume_items(h, tmp, cgroot, images):
    s = ImgSup(h, tmp, cgroot, isvc("b", f"oci:{images}/layout:base", "/bin/true",
                                   volume="../x:/data\nvolume = ok:relative\n"
                                          "volume = ok2:/a:rx"))
    rc, err = check_errors(s)
    assert rc == 1
    for item in ("../x:/data", "ok:relative", "ok2:/a:rx"):
        assert f"volume: '{item}' is not NAME:/path[:ro]" in err, err


# ---- user namespaces ------------------------------------------------------------------------
def tar_owned(*entries):
    """A tar from (name, kind, payload, uid): 'f' file or 'd' dir, owned uid:uid."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, kind, payload, uid in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime, ti.uid, ti.gid = 1, uid, uid
            if kind == "f":
                ti.size, ti.mode = len(payload), 0o644
                t.addfile(ti, io.BytesIO(payload))
            else:
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                t.addfile(ti)
    return buf.getvalue()


def test_image_in_a_user_namespace_keeps_its_owners(h, tmp, cgroot, images):
    """user_namespace = auto: the layers (owned by host ids as the image gives them) are
    idmapped under the overlay, so the image's uid 1000 is 1000 inside and its root's files
    root's; root inside writes its / (the upper, owned by the range's root) and a volume
    seeded from the image, whose owners are shifted into the range at first use."""
    from test_userns import UID0, GID0, idmap_fs, subids, state
    if not idmap_fs(tmp):
        pytest.skip(f"{tmp}: its filesystem has no idmapped mounts")
    lay = tmp / "ulayout"
    shutil.copytree(images / "layout", lay)
    add_layer(lay, "base", "owned", tar_owned(("owned", "d", None, 1000),
                                              ("owned/f", "f", b"mine\n", 1000),
                                              ("data", "d", None, 1000),
                                              ("data/seed", "f", b"seed\n", 1000)))
    probe = ("stat -c %u:%g /owned/f /data/seed /bin/busybox /; id -u; "
             "echo r > /new && echo wrote-root; echo v > /data/new && echo wrote-volume; "
             "touch /owned/g && echo wrote-owned")
    keys = subids(tmp)

    class UserSup(ImgSup):
        def write(self, services):
            super().write(services)
            self.ini.write_text(self.ini.read_text().replace("\n\n", "\n" + keys, 1))

    s = UserSup(h, tmp, cgroot, isvc("u", f"oci:{lay}:owned", f"/bin/sh -c '{probe}'",
                                     user_namespace="auto", rootfs_persist="true",
                                     volume="vol:/data", startsecs="0", autorestart="false"))
    rc, spec, err = s.run("--print-spec", "u")
    assert rc == 0 and "rootfs_idmap = true" in spec, (spec, err)
    want = ["1000:1000", "1000:1000", "0:0", "0:0", "0", "wrote-root", "wrote-volume",
            "wrote-owned"]
    rc, out, err = s.run("run", "u")
    assert rc == 0, err
    assert out.splitlines() == want, (out, err)
    # the daemon, the volume already the range's; rootfs_persist keeps the upper to look at
    s.start()
    s.wait_out("u | wrote-owned")
    s.stop()
    assert [l.split("| ", 1)[1] for l in s.out().splitlines() if l.startswith("u | ")] == want
    uid, gid = state(tmp)["u"]
    assert UID0 <= uid and GID0 <= gid
    # `run`'s container (run-NAME-PID) went with it, rootfs_persist or not
    assert sorted(p.name for p in (s.store / "containers").iterdir()) == ["u"]
    upper, vol = s.store / "containers/u/upper", s.store / "volumes/vol"
    own = lambda p: (p.lstat().st_uid, p.lstat().st_gid)  # noqa: E731
    # on disk: the container's files belong to its range, the store's layers stay as unpacked
    assert own(upper) == own(upper / "new") == (uid, gid)
    assert own(upper / "owned/g") == (uid, gid)
    assert own(upper / "owned") == (uid + 1000, gid + 1000)     # copied up
    assert own(vol / "new") == (uid, gid)
    assert own(vol) == own(vol / "seed") == (uid + 1000, gid + 1000)   # as /data in the image
    _, _, man = manifest_of(lay, "owned")
    top = s.store / "layers/sha256" / man["layers"][-1]["digest"][7:]
    assert own(top / "owned/f") == (1000, 1000)
    shutil.rmtree(s.store / "containers/u")
    assert_store_clean(s)


# ---- the way out: export oci / export kube --------------------------------------------------
def export(s, *args, init=BUILD / "init"):
    """`supervisor export ...`; init: the init export oci puts in the image (CORRAL_INIT: the
    ASan supervisor would find the ASan init next to it, a dynamically linked one)."""
    p = subprocess.run(["build/asan/supervisor", "-c", str(s.ini), "export", *map(str, args)],
                       capture_output=True, text=True, cwd=Path(__file__).parents[2], timeout=120,
                       env=dict(os.environ, CORRAL_INIT=str(init)))
    return p.returncode, p.stdout, p.stderr


def kube_docs(text):
    """The documents of export kube's output, each checked against the Kubernetes API schema
    (kube_schema.py)."""
    import yaml
    return kube_schema.check_all(yaml.safe_load_all(text))


INIT_AT = "/.corral/init"


def init_layer(layout, tag):
    """The last layer of tag in layout: its tar's members, and its diff_id in the config."""
    _, _, man = manifest_of(layout, tag)
    last = man["layers"][-1]
    data = (Path(layout) / "blobs/sha256" / last["digest"][7:]).read_bytes()
    assert last["mediaType"] == "application/vnd.oci.image.layer.v1.tar", last
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        members = {m.name: (m.mode, m.uid, m.gid, t.extractfile(m).read() if m.isfile() else None)
                   for m in t.getmembers()}
    cfg = read_blob(layout, man["config"]["digest"])
    return members, last["digest"], cfg["rootfs"]["diff_ids"][-1]


def test_export_oci_is_read_back_by_skopeo_and_umoci(h, tmp, cgroot, images):
    """The service's image with its process as the config: skopeo reads the layout, umoci
    unpacks it (whiteouts and opaque dirs as corral shows them), the layers keep their digests;
    a docker-archive's layers come out as tars under their diff_ids; a second tag joins the
    first in the same layout."""
    lay = images / "layout"
    s = ImgSup(h, tmp, cgroot,
               isvc("app", f"oci:{lay}:app", "/bin/sh -c 'echo exported'", user="nobody",
                    environment="EXTRA=one \"two\"", stopsignal="INT") +
               isvc("arch", f"docker-archive:{images}/app.tar:corral/app:v1") +
               svc("plain", "/bin/true"))
    out = tmp / "out"
    # a dynamically linked init (the ASan build) would not run in the image: refused, and
    # nothing of the image written
    rc, o, e = export(s, "oci", "app", f"{out}:v1", init=BUILD / "asan/init")
    assert rc == 1 and "asan/init is not a static program" in e, e
    assert not list((out / "blobs/sha256").iterdir()) and not (out / "index.json").exists()
    rc, o, e = export(s, "oci", "app", f"{out}:v1")
    assert rc == 0 and f"app: oci:{out}:v1 (3 layers, and corral's init at {INIT_AT})" in o, e
    cfg = json.loads(sh("skopeo", "inspect", "--config", f"oci:{out}:v1"))["config"]
    assert cfg["Entrypoint"] == ["/bin/sh", "-c", "echo exported"] and "Cmd" not in cfg, cfg
    assert "EXTRA=one \"two\"" in cfg["Env"] and "GREETING=hello-from-config" in cfg["Env"]
    assert (cfg["User"], cfg["WorkingDir"], cfg["StopSignal"]) == ("65534:65534", "/opq",
                                                                  "SIGINT"), cfg
    _, _, man = manifest_of(lay, "app")
    got = json.loads(sh("skopeo", "inspect", f"oci:{out}:v1"))
    # the image's layers as they were, then one more: corral's static init alone, at
    # /.corral/init, an uncompressed tar whose digest is its diff_id
    assert got["Layers"][:-1] == [l["digest"] for l in man["layers"]], got
    members, digest, diff_id = init_layer(out, "v1")
    init_bytes = (BUILD / "init").read_bytes()
    assert members == {".corral": (0o755, 0, 0, None),
                       ".corral/init": (0o755, 0, 0, init_bytes)}, list(members)
    assert got["Layers"][-1] == digest == diff_id, (got, diff_id)
    sh("umoci", "unpack", "--image", f"{out}:v1", tmp / "bundle")   # umoci checks diff_ids
    root = tmp / "bundle/rootfs"
    assert (root / ".corral/init").read_bytes() == init_bytes
    assert (root / "app/hello").read_text() == "hello from layer 2\n"
    assert not (root / "etc/removed").exists() and sorted(os.listdir(root / "opq")) == ["c"]
    proc = json.loads((tmp / "bundle/config.json").read_text())["process"]
    assert proc["args"] == ["/bin/sh", "-c", "echo exported"] and proc["user"]["uid"] == 65534
    # a docker-archive, tagged by its name, into the same layout
    rc, o, e = export(s, "oci", "arch", out)
    assert rc == 0, e
    arch = json.loads(sh("skopeo", "inspect", f"oci:{out}:arch"))
    diff_ids = read_blob(lay, man["config"]["digest"])["rootfs"]["diff_ids"]
    assert arch["Layers"] == diff_ids + [digest], arch   # the same init: the same blob
    tags = [m["annotations"]["org.opencontainers.image.ref.name"]
            for m in json.loads((out / "index.json").read_text())["manifests"]]
    assert sorted(tags) == ["arch", "v1"], tags
    assert not [p for p in (out / "blobs/sha256").iterdir() if p.name.startswith(".")]
    # what cannot be exported
    rc, o, e = export(s, "oci", "plain", out)
    assert rc == 1 and "plain: has no image" in e, e
    rc, o, e = export(s, "oci", "nosuch", out)
    assert rc == 1 and "no service 'nosuch'" in e, e
    rc, o, e = export(s, "tar", "app")
    assert rc == 2 and ("expected oci NAME DIR[:TAG], bundle NAME DIR or kube [--deployment] "
                        "[NAME...]") in e, e


def test_export_kube_is_a_pod_podman_takes(h, tmp, cgroot, images):
    """One Pod per service: command, env, restart policy, limits, user, probes, ports,
    volumes as claims, every document as the Kubernetes API's schema has it; a policy
    Kubernetes says (OnFailure, Never) keeps the command plain. podman kube play (a real
    consumer of Kubernetes YAML) creates the Pod from the image `export oci` wrote (not
    started: its host port and claim are the point here; test_export_kube_pod_starts_under_
    podman_and_its_services_answer starts one). The pod, its containers, the image and a pause image podman built are
    removed."""
    from test_where import podman, podman_cgroups, podman_usable
    lay = images / "layout"
    name = f"crtest-{os.getpid()}-kube"
    s = ImgSup(h, tmp, cgroot,
               isvc(name, f"oci:{lay}:app", "/bin/sh -c 'echo $GREETING; sleep 5'",
                    user="nobody", memory_max="64M", cpu_max="50%", autorestart="unexpected",
                    health_cmd="test -e /app/hello", health_interval="5s",
                    volume="data_1:/data:ro", ports="18080:80", ready="tcp:80") +
               isvc("other", f"oci:{lay}:base", "/bin/true", autorestart="false"))
    rc, o, e = export(s, "kube")
    assert rc == 0, e
    docs = kube_docs(o)
    assert [d["metadata"]["name"] for d in docs] == [name, "other"]
    pod = docs[0]
    assert (pod["apiVersion"], pod["kind"], pod["spec"]["restartPolicy"]) == ("v1", "Pod",
                                                                          "OnFailure")
    assert docs[1]["spec"]["restartPolicy"] == "Never"
    c = pod["spec"]["containers"][0]
    assert c["image"] == f"localhost/{name}:latest"
    assert c["command"] == ["/bin/sh", "-c", "echo $GREETING; sleep 5"]
    assert {"name": "GREETING", "value": "hello-from-config"} in c["env"]
    assert c["resources"]["limits"] == {"memory": str(64 << 20), "cpu": "500m"}
    assert (c["securityContext"]["runAsUser"], c["securityContext"]["runAsGroup"]) == (65534,
                                                                                      65534)
    assert c["ports"] == [{"containerPort": 80, "hostPort": 18080, "protocol": "TCP"}]
    assert c["readinessProbe"] == {"tcpSocket": {"port": 80}}
    assert c["livenessProbe"]["exec"]["command"] == ["/bin/sh", "-c", "test -e /app/hello"]
    assert c["livenessProbe"]["periodSeconds"] == 5
    assert c["volumeMounts"] == [{"name": "data-1", "mountPath": "/data", "readOnly": True}]
    assert pod["spec"]["volumes"] == [{"name": "data-1",
                                       "persistentVolumeClaim": {"claimName": "data-1"}}]
    assert docs[1]["spec"]["containers"][0]["command"] == ["/bin/true"]
    rc, o1, e = export(s, "kube", name)
    assert rc == 0 and o1.count("kind: Pod") == 1, e
    kube_docs(o1)

    why = podman_usable()
    if why:
        pytest.skip(why)
    rc, _, e = export(s, "oci", name, tmp / "out")
    assert rc == 0, e
    images_before = set(podman("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split())
    sh("skopeo", "copy", "-q", f"oci:{tmp}/out:{name}",
       f"containers-storage:localhost/{name}:latest")
    (tmp / "pod.yaml").write_text(o1)
    with podman_cgroups():
        try:
            p = podman("kube", "play", "--start=false", tmp / "pod.yaml", check=False)
            assert p.returncode == 0, p.stderr
            ps = podman("ps", "-a", "--pod", "--format", "{{.Names}} {{.PodName}}").stdout
            assert f"{name}-{name} {name}" in ps, ps
            spec = json.loads(podman("inspect", f"{name}-{name}").stdout)[0]
            assert spec["Config"]["Cmd"] == ["/bin/sh", "-c", "echo $GREETING; sleep 5"] or \
                spec["Config"]["Entrypoint"] == "/bin/sh -c echo $GREETING; sleep 5" or \
                "echo $GREETING" in json.dumps(spec["Config"]), spec["Config"]
            assert spec["Config"]["User"] in ("65534:65534", "65534"), spec["Config"]["User"]
        finally:
            podman("pod", "rm", "-f", name, check=False)
            podman("volume", "rm", "-f", "data-1", check=False)
            after = set(podman("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split())
            for img in after - images_before:
                podman("rmi", "-f", img, check=False)


# ---- export bundle: the same container under crun ----------------------------------------------
PROBE = r"""#!/bin/sh
hostname
id
grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status
[ "$(stat -c %s /proc/kcore 2>/dev/null || echo 0)" = 0 ] && echo kcore-hidden || echo kcore-visible  # (absent on some kernels)
(echo x > /proc/sys/kernel/hostname) 2>/dev/null && echo proc-sys-writable || echo proc-sys-ro
cat /bound/word
echo "mounts: $(awk '$2 == "/" || $2 == "/proc" || $2 == "/sys" || $2 == "/bound" || $2 == "/dev/pts" {print $2}' /proc/self/mounts | sort | tr '\n' ' ')"
echo "pid1 reaps: $(cat /proc/1/status | grep -c '^PPid:	0')"
exit 7
"""


def crun_run(bundle, state, cgpath):
    """`crun run` of the bundle, in a private mount namespace where this machine's hybrid
    cgroup2 mount (which crun refuses) is covered, as the bench does; the bundle's cgroup is
    cgpath (below the test's own cgroup name)."""
    cfg = json.loads((bundle / "config.json").read_text())
    cfg["linux"]["cgroupsPath"] = cgpath
    (bundle / "config.json").write_text(json.dumps(cfg))
    script = ("mount --make-rprivate / && if mountpoint -q /sys/fs/cgroup/unified; then "
              "umount -l /sys/fs/cgroup/unified && mount -t tmpfs none /sys/fs/cgroup/unified; "
              f"fi; exec crun --root {state} run --bundle {bundle} probe-{os.getpid()}")
    p = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True,
                       timeout=60)
    return p.returncode, p.stdout, p.stderr


def remove_cgroup_tree(name):
    """Removes the cgroup NAME crun's bundles were put under (cgroupsPath /NAME/...), deepest
    first, in every v1 hierarchy and on v2."""
    root = Path("/sys/fs/cgroup")
    tops = [root / name] + [t / name for t in root.iterdir() if t.is_dir()]
    for d in tops:
        if d.is_dir():
            for sub in sorted(d.rglob("*"), key=lambda x: -len(x.parts)):
                if sub.is_dir():
                    sub.rmdir()
            d.rmdir()


def same_under_crun(s, tmp, cgroot):
    """The probe under `supervisor run` and under `crun run` of tmp/bundle: both exit 7 with
    the same lines, which it returns."""
    rc_ours, ours, err = s.run("run", "probe")
    assert rc_ours == 7, err
    oci = f"{cgroot}-oci"
    try:
        rc_crun, theirs, err = crun_run(tmp / "bundle", tmp / "crun-state", f"/{oci}/probe")
    finally:
        remove_cgroup_tree(oci)
    assert rc_crun == 7, (theirs, err)
    assert ours.splitlines() == theirs.splitlines(), (ours, theirs)
    return ours


@pytest.mark.parametrize("hardening", ["default", "relaxed"])
def test_export_bundle_runs_the_same_container_under_crun(h, tmp, cgroot, hardening):
    """`export bundle NAME DIR` writes config.json and corral's init; `crun run` on it gives
    what `supervisor run NAME` gives: hostname, user, the five capability sets,
    no_new_privileges, seccomp, masked /proc/kcore, read-only /proc/sys, a bind, init as PID 1,
    the exit status. The relaxed service (cap_add = ALL, seccomp =
    unconfined, no_new_privileges = false, unmask = ALL, confine_devices = false) changes
    those lines under both alike: the bundle follows the service, it is not one fixed file."""
    if not shutil.which("crun"):
        pytest.skip("crun is not installed (make test installs it)")
    (tmp / "probe.sh").write_text(PROBE)
    (tmp / "probe.sh").chmod(0o755)
    (tmp / "word").write_text("bound-word\n")
    keys = dict(hostname="probe1", network="none", memory_max="64M", pids_max="100",
                autorestart="false",
                bind=[f"{tmp}/probe.sh:/probe.sh:ro", f"{tmp}:/bound:ro"])
    if hardening == "relaxed":
        keys.update(cap_add="ALL", seccomp="unconfined", no_new_privileges="false",
                    unmask="ALL", confine_devices="false")
    s = Sup(h, tmp, cgroot, svc("probe", "/probe.sh", **keys))
    rc, out, err = s.run("export", "bundle", "probe", tmp / "bundle")
    assert rc == 0, err
    cfg = json.loads((tmp / "bundle/config.json").read_text())
    assert cfg["process"]["args"][:1] == ["/dev/.corral-init"], cfg["process"]["args"]
    assert cfg["process"]["args"][-2:] == ["--", "/probe.sh"], cfg["process"]["args"]
    assert cfg["linux"]["resources"]["memory"]["limit"] == 64 << 20
    assert cfg["linux"]["resources"]["pids"]["limit"] == 100
    assert {n["type"] for n in cfg["linux"]["namespaces"]} == {"pid", "mount", "uts", "ipc",
                                                               "network", "cgroup"}
    assert ("seccomp" in cfg["linux"]) == (hardening == "default")
    assert os.access(tmp / "bundle/init", os.X_OK)

    ours = same_under_crun(s, tmp, cgroot)
    lines = ours.splitlines()
    assert lines[0] == "probe1" and "bound-word" in lines
    assert "mounts: / /bound /dev/pts /proc /sys " in lines, lines
    bnd = next(l for l in lines if l.startswith("CapBnd:"))
    if hardening == "default":
        assert "kcore-hidden" in lines and "proc-sys-ro" in lines and "Seccomp:\t2" in lines
        assert int(bnd.split()[1], 16) == 0x800405fb   # podman's 11, as the README says
        assert "NoNewPrivs:\t1" in lines
    else:
        assert ("Seccomp:\t0" in lines and "NoNewPrivs:\t0" in lines and
                "proc-sys-writable" in lines), "\n".join(lines)
        assert int(bnd.split()[1], 16) > 0x800405fb


def test_export_kube_deployment_and_joined_services(h, tmp, cgroot, images):
    """`export kube --deployment`: a Deployment of one replica per Pod (restartPolicy Always,
    a selector matching its template's label); a service with `network = service:web` is a
    container of web's Pod, not a Pod of its own, and naming it names that Pod; a volume two
    of the Pod's services mount is claimed once. A Deployment cannot say autorestart =
    unexpected or false: those containers run their command under corral's init with the
    service's policy (a comment says what happens when init gives up). Every document is as
    the Kubernetes API's schema has it. podman kube play creates the Pod with both containers
    (not started, as above); what it made is removed."""
    import yaml
    from test_where import podman, podman_cgroups, podman_usable
    lay = images / "layout"
    web = f"crtest-{os.getpid()}-dep"
    s = ImgSup(h, tmp, cgroot,
               isvc(web, f"oci:{lay}:app", "/bin/sh -c 'sleep 5'", autorestart="unexpected",
                    volume="data_1:/data") +
               isvc("side", f"oci:{lay}:base", "/bin/sh -c 'sleep 5'", network=f"service:{web}",
                    volume="data_1:/shared:ro") +
               isvc("other", f"oci:{lay}:base", "/bin/true", autorestart="false"))
    rc, o, e = export(s, "kube", "--deployment")
    assert rc == 0, e
    docs = kube_docs(o)
    assert [(d["kind"], d["metadata"]["name"]) for d in docs] == [("Deployment", web),
                                                                 ("Deployment", "other")]
    dep = docs[0]
    assert dep["apiVersion"] == "apps/v1" and dep["spec"]["replicas"] == 1
    assert dep["spec"]["selector"]["matchLabels"] == dep["spec"]["template"]["metadata"]["labels"]
    pod = dep["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Always"
    assert docs[1]["spec"]["template"]["spec"]["restartPolicy"] == "Always"
    assert [c["name"] for c in pod["containers"]] == [web, "side"]
    assert pod["containers"][1]["volumeMounts"] == [{"name": "data-1", "mountPath": "/shared",
                                                     "readOnly": True}]
    assert pod["volumes"] == [{"name": "data-1", "persistentVolumeClaim": {"claimName": "data-1"}}]
    # autorestart unexpected (both: the default) and false under init; init's exit restarts
    # the container, as the comment says
    assert pod["containers"][0]["command"] == [
        INIT_AT, "--restart", "on-failure", "--restart-delay", "0s", "--startsecs", "1s",
        "--startretries", "3", "--", "/bin/sh", "-c", "sleep 5"]
    assert pod["containers"][1]["command"][:3] == [INIT_AT, "--restart", "on-failure"]
    other = docs[1]["spec"]["template"]["spec"]["containers"][0]
    assert other["command"] == [INIT_AT, "--restart", "no", "--", "/bin/true"]
    assert "init exits with its status and the Deployment starts the container again" in o
    rc, o2, e = export(s, "kube", "side")          # the sidecar names its Pod
    assert rc == 0, e
    pods = kube_docs(o2)
    assert [(d["kind"], d["metadata"]["name"]) for d in pods] == [("Pod", web)]
    assert [c["name"] for c in pods[0]["spec"]["containers"]] == [web, "side"]

    why = podman_usable()
    if why:
        pytest.skip(why)
    images_before = set(podman("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split())
    for name in (web, "side"):
        rc, _, e = export(s, "oci", name, tmp / f"out-{name}")
        assert rc == 0, e
        sh("skopeo", "copy", "-q", f"oci:{tmp}/out-{name}:{name}",
           f"containers-storage:localhost/{name}:latest")
    (tmp / "dep.yaml").write_text(yaml.safe_dump(dep))
    with podman_cgroups():
        try:
            p = podman("kube", "play", "--start=false", tmp / "dep.yaml", check=False)
            assert p.returncode == 0, p.stderr
            ps = podman("ps", "-a", "--pod", "--format", "{{.Names}} {{.PodName}}").stdout
            mine = [l.split()[0] for l in ps.splitlines() if web in l.split()[-1]]
            assert any(n.endswith(f"-{web}") for n in mine) and \
                any(n.endswith("-side") for n in mine), ps
        finally:
            pods_now = podman("pod", "ps", "--format", "{{.Name}}").stdout.split()
            for pn in pods_now:
                if pn.startswith(web):
                    podman("pod", "rm", "-f", pn, check=False)
            podman("volume", "rm", "-f", "data-1", check=False)
            after = set(podman("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split())
            for img in after - images_before:
                podman("rmi", "-f", img, check=False)


def test_kube_schema_check_rejects_what_the_api_would():
    """The schema check (kube_schema.py) can fail: a Pod it takes, then that Pod broken one way
    at a time (an unknown or misspelled key, a wrong type at each level, a required field
    missing, a null, a value outside an enum, a Deployment whose Pods would not restart
    Always or whose selector misses its template) is refused, naming the place."""
    import copy
    good = {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {"restartPolicy": "Never",
                     "containers": [{"name": "web", "image": "localhost/web:latest",
                                     "command": ["/.corral/init", "--", "httpd"],
                                     "ports": [{"containerPort": 80, "protocol": "TCP"}],
                                     "readinessProbe": {"tcpSocket": {"port": 80}},
                                     "resources": {"limits": {"memory": "64M"}},
                                     "securityContext": {"runAsUser": 0}}]}}
    kube_schema.check(good)
    named = copy.deepcopy(good)
    named["spec"]["containers"][0]["readinessProbe"]["tcpSocket"]["port"] = "http"
    kube_schema.check(named)                        # IntOrString: a port's name will do

    def broken(change):
        d = copy.deepcopy(good)
        change(d, d["spec"]["containers"][0])
        with pytest.raises(kube_schema.SchemaError) as e:
            kube_schema.check(d)
        return str(e.value)

    assert "spec.restartPolicyy: not a field of V1PodSpec" in \
        broken(lambda d, c: d["spec"].update(restartPolicyy=d["spec"].pop("restartPolicy")))
    assert "containers[0].securityContext.runAsUserr: not a field" in \
        broken(lambda d, c: c["securityContext"].update(runAsUserr=1))
    assert "containers[0].ports[0].containerPort: str '80' where int" in \
        broken(lambda d, c: c["ports"][0].update(containerPort="80"))
    assert "containers[0].command: str" in broken(lambda d, c: c.update(command="httpd"))
    assert "containers[0].command[1]: int" in broken(lambda d, c: c["command"].insert(1, 5))
    assert "resources.limits.memory: int" in \
        broken(lambda d, c: c["resources"]["limits"].update(memory=64))
    assert "port: list" in broken(lambda d, c: c["readinessProbe"]["tcpSocket"].update(port=[80]))
    assert "securityContext.runAsUser: bool" in \
        broken(lambda d, c: c["securityContext"].update(runAsUser=True))
    assert "`name`, must not be `None`" in broken(lambda d, c: c.pop("name"))
    assert "`containers`, must not be `None`" in broken(lambda d, c: d["spec"].pop("containers"))
    assert "image: null" in broken(lambda d, c: c.update(image=None))
    assert "restartPolicy: 'Sometimes' is not one of" in \
        broken(lambda d, c: d["spec"].update(restartPolicy="Sometimes"))
    assert "protocol: 'tcp' is not one of" in \
        broken(lambda d, c: c["ports"][0].update(protocol="tcp"))
    assert "is not a DNS label" in broken(lambda d, c: c.update(name="Web_1"))
    assert "not a Pod (v1) or Deployment" in broken(lambda d, c: d.update(apiVersion="v2"))
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
           "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": good["metadata"],
                                 "spec": dict(good["spec"], restartPolicy="Always")}}}
    kube_schema.check(dep)
    for change, why in [(lambda d: d["spec"]["template"]["spec"].update(restartPolicy="Never"),
                         "a Deployment's Pods restart Always"),
                        (lambda d: d["spec"]["selector"]["matchLabels"].update(app="db"),
                         "does not match the template's labels"),
                        (lambda d: d["spec"].update(replicas="1"), "spec.replicas: str"),
                        (lambda d: d["spec"].pop("selector"), "`selector`, must not be `None`")]:
        d = copy.deepcopy(dep)
        change(d)
        with pytest.raises(kube_schema.SchemaError) as e:
            kube_schema.check(d)
        assert why in str(e.value), (why, str(e.value))


def test_export_kube_init_where_the_restart_policy_needs_it(h, tmp, cgroot, images):
    """Kubernetes has one restartPolicy per Pod (a Deployment: Always), and its OnFailure means
    any exit but 0, forever. Where that cannot say a service's policy (other exitcodes,
    max_restarts, members of one Pod that differ, a Deployment of anything but autorestart =
    true), the container's command is corral's init from the image running the service's
    command with the service's whole policy, and the Pod's restartPolicy is Never; a member
    whose policy the Pod's is keeps its plain command. Where every member says the same, all
    stays plain. Every document is as the Kubernetes API's schema has it."""
    lay = images / "layout"
    s = ImgSup(h, tmp, cgroot,
               isvc("codes", f"oci:{lay}:base", "/bin/sh -c 'exit 2'", exitcodes="0,2",
                    restart_delay="1500ms", restart_delay_max="1m", startsecs="0") +
               isvc("limited", f"oci:{lay}:base", "/bin/true", autorestart="true",
                    max_restarts="5", restart_window="10m", restart_reset_after="30s") +
               isvc("web", f"oci:{lay}:base", "/bin/httpd -f", autorestart="true",
                    startsecs="2s", startretries="1") +
               isvc("once", f"oci:{lay}:base", "/bin/true", autorestart="false",
                    network="service:web") +
               isvc("again", f"oci:{lay}:base", "/bin/sleep 9", autorestart="unexpected",
                    network="service:web") +
               isvc("always", f"oci:{lay}:base", "/bin/sleep 9", autorestart="true") +
               isvc("alsoalways", f"oci:{lay}:base", "/bin/sleep 9", autorestart="true",
                    network="service:always"))
    rc, o, e = export(s, "kube")
    assert rc == 0, e
    docs = {d["metadata"]["name"]: d["spec"] for d in kube_docs(o)}
    assert list(docs) == ["codes", "limited", "web", "always"]
    cmd = {c["name"]: c["command"] for d in docs.values() for c in d["containers"]}
    assert docs["codes"]["restartPolicy"] == "Never"
    assert cmd["codes"] == [INIT_AT, "--restart", "on-failure", "--exit-codes", "0,2",
                            "--restart-delay", "1500ms", "--restart-delay-max", "60s", "--",
                            "/bin/sh", "-c", "exit 2"]
    assert docs["limited"]["restartPolicy"] == "Never"
    assert cmd["limited"] == [INIT_AT, "--restart", "always", "--restart-delay", "0s",
                              "--restart-reset-after", "30s", "--max-restarts", "5",
                              "--restart-window", "600s", "--startsecs", "1s",
                              "--startretries", "3", "--", "/bin/true"]
    # three members, three policies: Never for the Pod, init for the two that restart
    assert docs["web"]["restartPolicy"] == "Never"
    assert [c["name"] for c in docs["web"]["containers"]] == ["web", "once", "again"]
    assert cmd["web"] == [INIT_AT, "--restart", "always", "--restart-delay", "0s",
                          "--startsecs", "2s", "--startretries", "1", "--", "/bin/httpd", "-f"]
    assert cmd["once"] == ["/bin/true"]
    assert cmd["again"][:3] == [INIT_AT, "--restart", "on-failure"] and \
        cmd["again"][-3:] == ["--", "/bin/sleep", "9"]
    assert "# again: autorestart unexpected (exitcodes 0): restartPolicy Never does not say it" \
        in o and "# codes: autorestart unexpected (exitcodes 0,2)" in o
    assert "# limited: autorestart true, max_restarts 5" in o
    assert "the container stays exited (restartPolicy Never)" in o
    # members that agree: their own policy, plain commands
    assert docs["always"]["restartPolicy"] == "Always"
    assert cmd["always"] == cmd["alsoalways"] == ["/bin/sleep", "9"]
    assert "# always: autorestart" not in o
    # a Deployment: Always, so init for every member whose policy is another
    rc, o, e = export(s, "kube", "--deployment", "web", "always")
    assert rc == 0, e
    deps = {d["metadata"]["name"]: d["spec"]["template"]["spec"] for d in kube_docs(o)}
    assert {n: d["restartPolicy"] for n, d in deps.items()} == {"web": "Always",
                                                                "always": "Always"}
    dcmd = {c["name"]: c["command"] for d in deps.values() for c in d["containers"]}
    assert dcmd["web"] == ["/bin/httpd", "-f"] and dcmd["always"] == ["/bin/sleep", "9"]
    assert dcmd["once"] == [INIT_AT, "--restart", "no", "--", "/bin/true"]
    assert dcmd["again"][:3] == [INIT_AT, "--restart", "on-failure"]
    assert o.count("the Deployment starts the container again") == 1   # web's Pod only


WEB_CMD = ("/bin/sh -c 'mkdir -p /tmp/www && echo served-by-web > /tmp/www/index.html && "
           "exec httpd -f -p 127.0.0.1:8080 -h /tmp/www'")
CLI_CMD = ("/bin/sh -c 'until wget -q -O - http://127.0.0.1:8080/; do sleep 0.2; done; "
           "exec sleep 600'")
FLAKY_CMD = ("/bin/sh -c 'echo run >> /tmp/runs; n=$(wc -l < /tmp/runs); echo flaky run $n; "
             "[ $n -ge 3 ] && exit 2; exit 3'")


def test_export_kube_pod_starts_under_podman_and_its_services_answer(h, tmp, cgroot, images):
    """The exported Pod really runs under `podman kube play` (runc and explicit rlimits from a
    containers.conf of the test's own, as podman's defaults fail on this hybrid-cgroup
    machine; --network none: the pod's own loopback and nothing else). Three services share
    web's network namespace: web serves a page on 127.0.0.1 (autorestart = true, under
    corral's init since the Pod is Never), cli fetches it from its own container over the
    pod's loopback (autorestart = false: plain command), flaky exits 3 twice (unexpected:
    init restarts it in its container) and then 2 (in exitcodes: expected, init exits 2 and
    the container stays exited, podman never restarted it). web's httpd, killed, is
    restarted by init. Pod, containers, images (the pause one too when podman built it
    here) and cgroups are removed, also on failure."""
    from test_where import podman, podman_cgroups, podman_usable, remove_pod_cgroups
    why = podman_usable()
    if why:
        pytest.skip(why)
    lay = images / "layout"
    pre = f"crtest-{os.getpid()}"
    web, cli, flaky = f"{pre}-kweb", f"{pre}-kcli", f"{pre}-kflaky"
    s = ImgSup(h, tmp, cgroot,
               isvc(web, f"oci:{lay}:base", WEB_CMD, autorestart="true", startsecs="0",
                    restart_delay="100ms") +
               isvc(cli, f"oci:{lay}:base", CLI_CMD, autorestart="false",
                    network=f"service:{web}") +
               isvc(flaky, f"oci:{lay}:base", FLAKY_CMD, exitcodes="0,2", startsecs="0",
                    restart_delay="100ms", user="nobody", network=f"service:{web}"))
    rc, o, e = export(s, "kube", web)
    assert rc == 0, e
    (pod,) = kube_docs(o)
    assert pod["spec"]["restartPolicy"] == "Never"
    cmd = {c["name"]: c["command"] for c in pod["spec"]["containers"]}
    assert cmd[web][:3] == [INIT_AT, "--restart", "always"], cmd[web]
    assert cmd[flaky][:5] == [INIT_AT, "--restart", "on-failure", "--exit-codes", "0,2"]
    assert cmd[cli] == ["/bin/sh", "-c", CLI_CMD[len("/bin/sh -c '"):-1]]
    (tmp / "pod.yaml").write_text(o)
    conf = tmp / "containers.conf"
    conf.write_text('[containers]\ndefault_ulimits = ["nofile=4096:4096", "nproc=8192:8192"]\n'
                    '[engine]\nruntime = "runc"\n')
    env = dict(os.environ, CONTAINERS_CONF=str(conf))
    pause = "localhost/podman-pause:" + podman("version", "--format",
                                               "{{.Client.Version}}").stdout.strip() + "-0"
    had_pause = subprocess.run(["podman", "image", "exists", pause]).returncode == 0
    made = []
    pod_id = None
    with podman_cgroups():
        try:
            for n in (web, cli, flaky):
                rc, _, e = export(s, "oci", n, tmp / f"out-{n}")
                assert rc == 0, e
                made.append(f"localhost/{n}:latest")
                sh("skopeo", "copy", "-q", f"oci:{tmp}/out-{n}:{n}",
                   f"containers-storage:localhost/{n}:latest")
            p = subprocess.run(["podman", "kube", "play", "--network", "none", tmp / "pod.yaml"],
                               env=env, capture_output=True, text=True, timeout=T(120))
            pod_id = podman("pod", "inspect", web, "--format", "{{.Id}}",
                            check=False).stdout.strip() or None
            assert p.returncode == 0, (p.stdout, p.stderr)

            def logs(c):
                q = podman("logs", f"{web}-{c}", check=False)
                return q.stdout + q.stderr

            def state(c):
                return podman("inspect", f"{web}-{c}", "--format",
                              "{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}}"
                              ).stdout.split()

            # cli reached web over the pod's loopback, and so does an exec in cli's container
            wait_until(lambda: "served-by-web" in logs(cli), 60, interval=0.2,
                       what="cli's fetch of web's page")
            got = podman("exec", f"{web}-{cli}", "wget", "-q", "-O", "-",
                         "http://127.0.0.1:8080/")
            assert got.stdout == "served-by-web\n"
            # flaky: 3 and 3 restarted by init inside the container, then 2: expected
            wait_until(lambda: state(flaky)[0] == "exited", 60, interval=0.2,
                       what="flaky's container to exit")
            assert state(flaky) == ["exited", "2", "0"], (state(flaky), logs(flaky))
            runs = [l for l in logs(flaky).splitlines() if l.startswith("flaky run")]
            assert runs == ["flaky run 1", "flaky run 2", "flaky run 3"], logs(flaky)
            # web's process runs under init, which restarts it when it is killed
            ctr = f"{web}-{web}"
            pid1 = podman("exec", ctr, "cat", "/proc/1/cmdline").stdout.split("\0")
            assert pid1[:3] == [INIT_AT, "--restart", "always"], pid1
            old = podman("exec", ctr, "pidof", "httpd").stdout.split()
            assert len(old) == 1, old
            podman("exec", ctr, "kill", old[0])
            wait_until(lambda: (lambda p: p and p != old)(
                podman("exec", ctr, "pidof", "httpd", check=False).stdout.split()), 60,
                interval=0.2, what="init to start httpd again")
            wait_until(lambda: podman("exec", f"{web}-{cli}", "wget", "-q", "-O", "-",
                                      "http://127.0.0.1:8080/", check=False).stdout
                       == "served-by-web\n", 60, interval=0.2, what="the new httpd to answer")
            assert state(web)[0] == "running" and state(web)[2] == "0", state(web)
        finally:
            podman("pod", "rm", "-f", "-t", "0", web, check=False)
            for img in made:
                podman("rmi", "-f", img, check=False)
            if not had_pause:
                podman("rmi", "-f", pause, check=False)
            if pod_id:
                remove_pod_cgroups(pod_id)


def test_export_bundle_of_an_image_service(h, tmp, cgroot, images):
    """An image service's bundle: its layers merged (the whiteout and the opaque directory
    applied) into DIR/rootfs, a plain tree crun pivots into; the same probe gives the same
    lines under `supervisor run` and `crun run`, the image's removed file absent and its
    opaque directory's lower content hidden in both. A second export into the same DIR is
    refused (a root is made whole, never merged into)."""
    if not shutil.which("crun"):
        pytest.skip("crun is not installed (make test installs it)")
    (tmp / "probe.sh").write_text(PROBE.replace("exit 7", "ls /etc/removed /opq 2>&1\nexit 7"))
    (tmp / "probe.sh").chmod(0o755)
    (tmp / "word").write_text("bound-word\n")
    s = ImgSup(h, tmp, cgroot,
               isvc("probe", f"oci:{images / 'layout'}:app", "/probe.sh", hostname="probe1",
                    network="none", autorestart="false",
                    bind=f"{tmp}/probe.sh:/probe.sh:ro\nbind = {tmp}:/bound:ro"))
    rc, out, err = s.run("export", "bundle", "probe", tmp / "bundle")
    assert rc == 0, err
    root = tmp / "bundle/rootfs"
    assert (root / "bin/busybox").exists() and not (root / "etc/removed").exists()
    cfg = json.loads((tmp / "bundle/config.json").read_text())
    assert cfg["root"] == {"path": str(root), "readonly": False}
    rc, _, err = s.run("export", "bundle", "probe", tmp / "bundle")
    assert rc == 1 and "exists: remove it first" in err, err
    ours = same_under_crun(s, tmp, cgroot)
    assert "bound-word" in ours and "No such file" in ours, ours   # /etc/removed: whited out
    assert ours.splitlines()[-1] == "c", ours                      # /opq: only the upper's c
    assert sorted(p.name for p in (root / "opq").iterdir()) == ["c"]
    shutil.rmtree(tmp / "bundle")
