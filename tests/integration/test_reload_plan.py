"""`svctl check` against what `svctl reload` then did, over many config pairs: the plan check
prints (text and JSON) is the plan reload answers and walks, item for item in the
supervisor's log ("reload: NAME: ACTION (keys: ...)"), and each item's effect shows in the
services afterwards (a restart is a new init, a stop removes the service, live limits are in
the cgroup, kept services keep their init). Real supervisor, containers and cgroups; the
config pairs come from a seeded random walk, so a failure names its round and repeats."""
import json
import random
import re

import pytest

from conftest import wait_until
from test_supervisor import V2, WL, cgroot, ctrl_dir, rootfs, svc  # noqa: F401  (fixtures)
from test_svctl import CtlSup

pytestmark = pytest.mark.cgroup

POOL = ["a", "b", "c", "d", "e"]
# What each variant sets beside the base config: a restart key, a live key, keys that are
# neither (taken as it runs), and autostart.
VARIANTS = {
    "base": {},
    "host": {"hostname": "h2"},
    "mem": {"memory_max": "64M"},
    "mem2": {"memory_max": "32M", "hostname": "h2"},
    "sig": {"stopsignal": "INT"},
    "prio": {"priority": "5"},
    "lazy": {"autostart": "false"},
}
BASE = dict(startsecs=0, stopwaitsecs="2s")
SLEEP = f"{WL} sleep 1000"
LOG_LINE = re.compile(r"^supervisor: reload: (\S+): (\w+)(?: \(keys: (.*)\))?$", re.M)
TEXT_LINE = re.compile(r"^(\w+) +(\S+)(?: \((.*)\))?$")


class GlobalSup(CtlSup):
    """CtlSup with extra [supervisor] lines."""
    extra = ""

    def write(self, services):
        super().write(services)
        text = self.ini.read_text().replace("[supervisor]\n", "[supervisor]\n" + self.extra, 1)
        self.ini.write_text(text)


def conf_text(shape):
    """shape: {name: variant} for the sleepers, and "job" (a one-shot that exits) always."""
    text = ""
    for name, variant in shape.items():
        if name == "job":
            keys = dict(BASE, autorestart="false", **({"hostname": "h2"} if variant else {}))
            text += svc("job", "/bin/sh -c 'exit 0'", **keys)
        else:
            text += svc(name, SLEEP, **dict(BASE, **VARIANTS[variant]))
    return text


def json_plan(s, verb):
    rc, out, err = s.ctl("--json", verb, check=0)
    js = json.loads(out)
    assert js["ok"] and js["applied"] == (verb == "reload"), js
    return {(p["name"], p["action"], p.get("keys", "")) for p in js["plan"]}


def text_plan(s):
    """`svctl check` as a person reads it: one line per item that is not kept."""
    rc, out, err = s.ctl("check", check=0)
    lines = out.splitlines()
    assert lines[-1].startswith("plan (not applied): "), out
    items = set()
    for line in lines[:-1]:
        m = TEXT_LINE.match(line)
        assert m, line
        items.add((m.group(2), m.group(1), m.group(3) or ""))
    return items


def cg_memory_max(s, name):
    """The service's memory limit in bytes, None for no limit."""
    mem = ctrl_dir(s.cgroot, "memory") / f"svc-{name}"
    v = (mem / ("memory.max" if V2 else "memory.limit_in_bytes")).read_text().strip()
    return None if v == "max" or int(v) >= 1 << 62 else int(v)


def want_memory_max(variant):
    v = VARIANTS[variant].get("memory_max")
    return None if v is None else int(v[:-1]) << 20


def walk_round(s, shape, nround):
    """Writes shape, compares check and reload, and checks what reload did."""
    before = s.status()
    s.write(conf_text(shape))
    check = json_plan(s, "check")
    assert text_plan(s) == {i for i in check if i[1] != "keep"}, nround
    assert s.status().keys() == before.keys()                       # check changed nothing
    log_at = len(s.log())
    applied = json_plan(s, "reload")
    assert applied == check, (nround, check ^ applied)
    s.wait_log(r"^supervisor: reloaded: ", count=nround + 1)
    logged = {(m.group(1), m.group(2), m.group(3) or "")
              for m in LOG_LINE.finditer(s.log()[log_at:])}
    assert logged == {i for i in check if i[1] != "keep"}, (nround, logged ^ check)

    def problems():
        """What does not (yet) show the effect of its item, from one status."""
        now, bad = s.status(), []
        for name, action, keys in sorted(check):
            old, new = before.get(name, {}), now.get(name)
            if action == "stop":
                if new:
                    bad.append(f"{name} still there")
            elif action == "add":
                if new["state"] != "STOPPED":
                    bad.append(f"{name} {new['state']}")
            elif action in ("start", "restart") and name == "job":
                if new["state"] != "EXITED" or new.get("exits", 0) <= old.get("exits", 0):
                    bad.append(f"job has not run again: {new}")
            elif action in ("start", "restart"):
                if new["state"] != "RUNNING" or new.get("pid") in (None, old.get("pid")):
                    bad.append(f"{name} not running a new init: {new}")
            elif new.get("pid") != old.get("pid") or new["state"] != old["state"]:
                bad.append(f"{name} {action}: was {old}, now {new}")   # keep, live, update
            if action == "live" and "memory_max" in keys.split(","):
                if cg_memory_max(s, name) != want_memory_max(shape[name]):
                    bad.append(f"{name}: memory limit {cg_memory_max(s, name)}")
        return bad

    try:
        wait_until(lambda: not problems(), 15, interval=0.05, what="the plan's effects")
    except AssertionError as e:
        raise AssertionError(f"round {nround}: {e}: {problems()}\n{s.log()[-3000:]}")
    return check


def test_check_is_what_reload_walks_over_many_config_pairs(h, tmp, cgroot, rootfs):
    rng = random.Random(13)
    shape = {n: "base" for n in POOL} | {"job": False}
    s = GlobalSup(h, tmp, cgroot, conf_text(shape)).start()
    for n in POOL:
        s.wait_state(n, "RUNNING")
    s.wait_state("job", "EXITED")
    seen = set()
    for nround in range(12):
        new = {}
        for n in POOL:
            if rng.random() < 0.8:
                # a service just added with autostart=false is STOPPED: its next variants
                # then plan "start" (restart key) or "update"
                new[n] = rng.choice(list(VARIANTS))
        new["job"] = rng.random() < 0.5
        seen |= {a for _, a, _ in walk_round(s, new, nround)}
        shape = new
    # the walk went through every kind of item
    assert seen >= {"keep", "start", "add", "stop", "restart", "live", "update"}, seen
    assert s.stop() == 0


def test_global_keys_planned_and_kept_until_restart(h, tmp, cgroot, rootfs):
    """[supervisor] keys: logfile_maxbytes applies live, logfile is read at start-up, so the
    plan keeps naming it and no later reload switches the log file over."""
    s = GlobalSup(h, tmp, cgroot, svc("a", SLEEP, **BASE)).start()
    s.wait_state("a", "RUNNING")
    s.extra = "logfile = AUTO\nlogfile_maxbytes = 1MB\n"
    s.write(svc("a", SLEEP, **BASE))
    item = ("[supervisor]", "live", "logfile,logfile_maxbytes")
    assert text_plan(s) == {item}
    assert json_plan(s, "reload") == {("a", "keep", ""), item}
    s.wait_log(r"^supervisor: reload: \[supervisor\]: live \(keys: logfile,logfile_maxbytes\)$")
    for n in (2, 3):
        assert json_plan(s, "reload") == {("a", "keep", ""), ("[supervisor]", "update", "logfile")}
        s.wait_log(r"^supervisor: reloaded: ", count=n)
    assert not (s.logdir / "supervisor.log").exists()
    assert s.stop() == 0


def test_service_put_back_while_it_stops_starts_again(h, tmp, cgroot, rootfs):
    """Removed, still stopping (it ignores TERM), then back in the config: the plan says
    restart, and once the old container is killed a new one runs (it stayed STOPPED before
    the plan walk: its removed flag was never cleared)."""
    slow = svc("slow", f"{WL} ignore TERM -- sleep 1000", startsecs=0, stopwaitsecs="5s")
    s = GlobalSup(h, tmp, cgroot, slow + svc("a", SLEEP, **BASE)).start()
    first = s.wait_state("slow", "RUNNING")["pid"]
    s.write(svc("a", SLEEP, **BASE))
    assert json_plan(s, "reload") == {("slow", "stop", ""), ("a", "keep", "")}
    s.wait_log(r"^supervisor: slow: RUNNING -> STOPPING$")
    s.write(slow + svc("a", SLEEP, **BASE))
    assert text_plan(s) == {("slow", "restart", "")}
    assert json_plan(s, "reload") == {("slow", "restart", ""), ("a", "keep", "")}
    st = wait_until(lambda: (lambda r: r["state"] == "RUNNING" and r.get("pid") != first and r)(
        s.status("slow")["slow"]), 20, what="slow running a new init")
    assert "removed" not in st
    assert s.stop() == 0
