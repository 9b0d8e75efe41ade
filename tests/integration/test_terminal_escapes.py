"""Bytes a container controls never reach the administrator's terminal raw (a finding of the
fuzzing review: `^[]0;title^G^[[2J` sent as sd_notify STATUS= retitled and cleared root's
terminal through `svctl status` and the supervisor's log). svctl's text output and the
supervisor's log lines about services write every control byte as \\xHH (shared/text.h);
--json escapes by JSON's rules. Real supervisor, init, svctl and workload over build/rootfs."""
import json

import pytest

from test_supervisor import WL, cgroot, rootfs, svc  # noqa: F401 (fixtures)
from test_svctl import CtlSup

pytestmark = pytest.mark.cgroup

EVIL = "\x1b]0;pwned\x07\x1b[2J"
SHOWN = r"\x1b]0;pwned\x07\x1b[2J"


def no_control(text):
    """The text holds no control byte but newlines."""
    bad = [c for c in text if (ord(c) < 0x20 and c != "\n") or ord(c) == 0x7f]
    assert not bad, repr(text)


def test_status_text_of_a_workload_is_escaped(h, tmp, cgroot, rootfs):
    cmd = f"{WL} notify 'STATUS=up{EVIL}now' -- notify -- sleep 1000"
    s = CtlSup(h, tmp, cgroot, svc("evil", cmd, ready="notify", startsecs=0)).start()
    s.wait_state("evil", "RUNNING")
    rc, out, err = s.ctl("status", check=0)
    no_control(out)
    assert f"status: up{SHOWN}now" in out, out
    # --json carries the exact bytes, JSON-escaped
    rc, js, err = s.ctl("status", "--json", "evil", check=0)
    assert json.loads(js)[0]["status"] == f"up{EVIL}now"
    log = s.log()
    assert f"supervisor: evil: status: up{SHOWN}now" in log, log
    no_control(log)
    assert s.stop() == 0


def test_history_lines_and_reasons_are_escaped(h, tmp, cgroot, rootfs):
    cmd = f"{WL} mark '{EVIL}bye' -- exit 3"
    s = CtlSup(h, tmp, cgroot, svc("loud", cmd, startsecs=0, autorestart="false")).start()
    s.wait_state("loud", "EXITED")
    rc, out, err = s.ctl("history", "loud", check=0)
    no_control(out)
    assert SHOWN + "bye" in out, out
    assert s.stop() == 0
