"""Real supervisord files (tests/data/supervisord/, each one's repository and path in SOURCES):
every file Debian's supervisord parser accepts, `supervisor --check --syntax-only` accepts
too. The files were written for their own images, so the checks that look at this machine
(commands, users) are left out; supervisord's parser is asked in a child python3 -I (its
package: `supervisor`, from Debian), with the same environment as corral.

Each %(ENV_X)s a file uses is set, so both parsers see a value: a path for *DIR*/*FILE*/*LOG*,
a number for *NUM*/*PROCS*/*WORKERS*/*DELAY*, root for *USER*, info for *LEVEL*, else a word.
supervisord refuses some files here for reasons of this machine (a log directory that only
their image has) or because they are fragments for an [include] (no [supervisord]): those
are not counted."""
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from conftest import ASAN_SUPERVISOR, ROOT

CORPUS = ROOT / "tests" / "data" / "supervisord"
# One child for every file (a python start each cost more than the parsing): reads a path and
# its environment per line, answers "ok" or the error's last line.
SUPERVISORD_PARSER = """
import io, json, os, sys, contextlib
from supervisor.options import ServerOptions
for line in sys.stdin:
    path, env = json.loads(line)
    os.environ.clear()
    os.environ.update(env)
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(err):
            ServerOptions().realize(args=["-c", path])
        print(json.dumps("ok"), flush=True)
    except SystemExit:
        print(json.dumps(err.getvalue().strip().splitlines()[-3:]), flush=True)
"""

# Files supervisord accepts and corral does not, each with the reason (an empty list is the
# goal; keep it short and true).
KNOWN_GAPS = {
    # A service's name names its cgroup, log files and svctl's argument (printable ASCII):
    # corral keeps names to A-Z a-z 0-9 _ . -
    "supervisor--supervisor_tests_fixtures_issue-664.conf": "[program:test_öäü]: a non-ASCII "
                                                            "name",
}


def corpus():
    return sorted(p for p in CORPUS.rglob("*.conf"))


def env_for(path):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    for name in set(re.findall(r"%\(ENV_([A-Za-z0-9_]+)\)s", path.read_text(errors="replace"))):
        up = name.upper()
        if "LEVEL" in up:
            v = "info"
        elif any(w in up for w in ("DIR", "PATH")):
            v = "/tmp"
        elif any(w in up for w in ("FILE", "LOG")):
            v = "/tmp/corral-corpus.log"
        elif any(w in up for w in ("NUM", "PROCS", "WORKERS", "DELAY", "PORT", "WIDTH",
                                   "HEIGHT", "DEPTH")):
            v = "2"
        elif "USER" in up:
            v = "root"
        else:
            v = "value"
        env[name] = v
    return env


def supervisord_verdicts(files):
    """{path: True or the error} from Debian's supervisord parser."""
    lines = "".join(json.dumps([str(f), env_for(f)]) + "\n" for f in files)
    p = subprocess.run(["/usr/bin/python3", "-I", "-c", SUPERVISORD_PARSER], input=lines,
                       cwd="/", capture_output=True, text=True, timeout=120)
    answers = [json.loads(l) for l in p.stdout.splitlines()]
    assert len(answers) == len(files), p.stderr
    return {f: a == "ok" or a for f, a in zip(files, answers)}


def corral_check(path, env):
    p = subprocess.run([str(ASAN_SUPERVISOR), "-c", str(path), "--check", "--syntax-only"],
                       env=env, cwd="/", capture_output=True, text=True, timeout=60)
    return p.returncode == 0, p.stderr


def test_the_corpus_is_whole():
    files = corpus()
    sources = (CORPUS / "SOURCES").read_text().splitlines()
    named = {l.split()[0] for l in sources if l.strip()}
    assert {str(f.relative_to(CORPUS)) for f in files} == named
    assert len(files) >= 40


def test_corral_accepts_what_supervisord_accepts():
    if not Path("/usr/lib/python3/dist-packages/supervisor/options.py").exists():
        pytest.fail("Debian's supervisor package is missing: run `make deps`")
    accepted, refused, gaps = [], [], []
    verdicts = supervisord_verdicts(corpus())
    for f in corpus():
        if verdicts[f] is not True:
            continue
        accepted.append(f.name)
        ok, err = corral_check(f, env_for(f))
        if f.name in KNOWN_GAPS:
            assert not ok, f"{f.name} passes now: take it out of KNOWN_GAPS"
            gaps.append(f.name)
        elif not ok:
            refused.append(f"{f.name}: {err.strip()[-600:]}")
    print(f"\nsupervisord accepts {len(accepted)} of {len(corpus())} files; corral --check "
          f"accepts {len(accepted) - len(refused) - len(gaps)} of them "
          f"({len(gaps)} known gap{'s' if len(gaps) != 1 else ''})")
    assert not refused, "\n".join(refused)
    assert len(accepted) >= 40
