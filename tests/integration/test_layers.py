"""tests/check-layers itself: a copy of the sources with one breach planted must fail, naming
the file, the line and the rule; the tree as it is passes (tests/run checks that too)."""
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHECK = ROOT / "tests" / "check-layers"


def copy_tree(dst):
    for top in ("init", "shared", "supervisor"):
        shutil.copytree(ROOT / top, dst / top)


def plant(path, after, line):
    """Adds line after the first line of path that equals after; its 1-based line number."""
    lines = path.read_text().splitlines(keepends=True)
    i = next(k for k, l in enumerate(lines) if l.rstrip("\n") == after)
    lines.insert(i + 1, line + "\n")
    path.write_text("".join(lines))
    return i + 2


def check(root):
    p = subprocess.run([str(CHECK), "--root", str(root)], capture_output=True, text=True,
                       timeout=60)
    return p.returncode, p.stdout


def test_the_tree_follows_the_rules(tmp_path):
    copy_tree(tmp_path)
    rc, out = check(tmp_path)
    assert rc == 0, out


def test_another_folders_internal_header_is_refused(tmp_path):
    copy_tree(tmp_path)
    sup = tmp_path / "supervisor"
    # api/ reaching into the service's fields, and service/ into cgroup/'s backends
    n1 = plant(sup / "api" / "metrics.c", '#include "api/host.h"', '#include "service/internal.h"')
    n2 = plant(sup / "service" / "order.c", '#include "log.h"', '#include "cgroup/internal.h"')
    rc, out = check(tmp_path)
    assert rc == 1, out
    bad = [l for l in out.splitlines() if "internal.h is for the files of that folder" in l]
    assert sorted(bad) == sorted([
        f"supervisor/api/metrics.c:{n1}: includes supervisor/service/internal.h: a folder's "
        "internal.h is for the files of that folder only (ask through its public header: "
        "service.h's cr_svc_view() and cr_svc_request() for a service)",
        f"supervisor/service/order.c:{n2}: includes supervisor/cgroup/internal.h: a folder's "
        "internal.h is for the files of that folder only (ask through its public header: "
        "service.h's cr_svc_view() and cr_svc_request() for a service)",
    ]), out
    # the folder's own files may: service/ includes its internal.h all along
    assert "supervisor/service/fsm.c" not in out
