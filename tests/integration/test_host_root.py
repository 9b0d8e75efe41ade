"""The default root (no rootfs: the host's / read-only): binds work there as with a rootfs."""
from pathlib import Path

from conftest import read_text
from test_supervisor import Sup, cgroot, svc  # noqa: F401  (cgroot is a fixture)


def test_bind_with_the_default_root(h, tmp, cgroot):
    """A bind whose source is below /tmp: init stages the host's tree on a tmpfs parked on
    /tmp, which used to hide the source ("setup failed: bind ...: No such file")."""
    data = Path(tmp) / "data"
    data.mkdir()
    (data / "hello").write_text("hi\n")
    s = Sup(h, tmp, cgroot, svc("b", f"/bin/cat {data}/hello", rootfs=None,
                                bind=f"{data}:{data}:ro"))
    rc, out, err = s.run("run", "b")
    assert rc == 0, err
    assert out == "hi\n", (out, err)
    assert read_text(data / "hello") == "hi\n"
