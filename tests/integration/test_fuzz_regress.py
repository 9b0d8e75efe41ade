"""Every saved fuzzing reproducer (tests/fuzz/regress/TARGET/) and every seed
(tests/fuzz/seeds/TARGET/) replayed through its libFuzzer target, built without libFuzzer
(tests/fuzz/replay_main.c; gcc, ASan + UBSan: build/test/fuzz/replay_TARGET, made by
`make test-build`). A crash, a sanitizer report or an abort() of the target's own checks fails.
Fuzzing itself is `make fuzz` (tests/fuzz/fuzz.mk)."""
import subprocess
from pathlib import Path

import pytest

from conftest import BUILD, SANITIZER_RE, T, base_env

ROOT = Path(__file__).resolve().parents[2]
TARGETS = ["config", "spec", "events", "ctl", "seccomp"]


@pytest.mark.parametrize("target", TARGETS)
def test_replay(target):
    binary = BUILD / "test" / "fuzz" / f"replay_{target}"
    assert binary.exists(), f"{binary} is missing: make test-build"
    dirs = [ROOT / "tests" / "fuzz" / d / target for d in ("regress", "seeds")]
    files = sorted(p for d in dirs for p in d.glob("*") if p.is_file())
    assert files, f"no reproducers or seeds for {target}"
    p = subprocess.run([str(binary)] + [str(f) for f in files], env=base_env(), cwd=ROOT,
                       capture_output=True, text=True, timeout=T(120))
    assert not SANITIZER_RE.search(p.stderr), p.stderr[-4000:]
    assert p.returncode == 0, (p.returncode, p.stderr[-4000:])
    assert p.stdout.count("\nok ") + p.stdout.startswith("ok ") == len(files), p.stdout
