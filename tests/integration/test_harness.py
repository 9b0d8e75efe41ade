"""The test harness's own time limit per test (conftest.py's _TimeLimit): a pytest of its own
on a few tests that would run 30 s each, with CRTEST_TIME_LIMIT=1. A hang ends as a failure
naming the test, with every thread's stack; a test swallowing `Exception` in a polling loop is
ended all the same; a test's own `time_limit` mark gives it longer; quick tests pass."""
import os
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent

# The harness's conftest under another module name ("conftest" is the tmp folder's own).
CONFTEST = f"""\
import importlib.util
spec = importlib.util.spec_from_file_location("corral_conftest", {str(HERE / "conftest.py")!r})
harness = importlib.util.module_from_spec(spec)
spec.loader.exec_module(harness)
pytest_configure = harness.pytest_configure
"""

TESTS = """\
import time
import pytest

def test_hangs():
    time.sleep(30)

def test_swallows_exceptions_while_polling():
    end = time.monotonic() + 30
    while time.monotonic() < end:
        try:
            time.sleep(0.05)
        except Exception:
            pass

@pytest.mark.time_limit(20)
def test_has_a_longer_limit_of_its_own():
    time.sleep(2)

def test_quick():
    pass

@pytest.fixture
def slow_teardown():
    yield
    time.sleep(30)

def test_whose_teardown_hangs(slow_teardown):
    pass
"""


def test_a_test_past_its_time_limit_fails_with_every_threads_stack(tmp_path):
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_limited.py").write_text(TESTS)
    env = dict(os.environ, CRTEST_TIME_LIMIT="1", CRTEST_SLOW="1", PYTHONDONTWRITEBYTECODE="1",
               COLUMNS="300")   # the summary's lines whole
    p = subprocess.run(["/usr/bin/python3", "-m", "pytest", "-p", "no:cacheprovider", "-rfE",
                        "-o", "addopts=", str(tmp_path)], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=120)
    out = p.stdout + p.stderr
    assert p.returncode == 1, out
    # the last test passes its call and errs in its teardown: pytest counts it twice
    assert "3 passed" in out and "2 failed" in out and "1 error" in out, out
    for name in ("test_hangs", "test_swallows_exceptions_while_polling"):
        assert f"FAILED test_limited.py::{name} - corral_conftest.TimeLimitExceeded: " \
            f"test_limited.py::{name}: call ran past its 1 s" in out, out
    assert "ERROR test_limited.py::test_whose_teardown_hangs" in out, out
    assert "teardown ran past its 1 s" in out, out
    assert "call still running after 1 s; every thread's stack" in out, out
    assert 'File "' in out and "in test_hangs" in out, out
