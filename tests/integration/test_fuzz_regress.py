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
TARGETS = ["config", "spec", "events", "ctl", "seccomp", "xmlrpc"]


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


@pytest.mark.parametrize("target", TARGETS)
def test_fuzz_briefly(target, tmp_path):
    """Each libFuzzer target (clang, build/fuzz/fuzz_TARGET, made by `make test-build`) fuzzes
    for a few seconds from its seeds, in a corpus of the test's own: CI's short run of
    `make fuzz`. A crash or a sanitizer report fails, its input left in tmp_path."""
    binary = BUILD / "fuzz" / f"fuzz_{target}"
    assert binary.exists(), f"{binary} is missing: make test-build"
    seeds = ROOT / "tests" / "fuzz" / "seeds" / target
    p = subprocess.run([str(binary), "-max_total_time=3", "-max_len=8192", "-timeout=10",
                        f"-artifact_prefix={tmp_path}/", "-print_final_stats=1",
                        str(tmp_path), str(seeds)],
                       cwd=ROOT, capture_output=True, text=True, timeout=T(120))
    assert p.returncode == 0, p.stderr[-4000:]
    assert "stat::number_of_executed_units" in p.stderr, p.stderr[-2000:]
    assert not list(tmp_path.glob("crash-*")), p.stderr[-4000:]
