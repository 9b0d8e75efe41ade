"""supervisor -c FILE --check / --print-spec / --list-keys, black-box, on real files.

Runs build/asan/supervisor on INI files written to a temporary directory and checks exit
codes and every message (FILE:LINE: key: what is wrong). The example files in conf/ must
pass --check: against build/rootfs when `make rootfs` has run, else against a copy of conf/
beside a root filesystem made here with tests/mkrootfs.
"""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import ASAN_SUPERVISOR, ROOT, ROOTFS, SANITIZER_RE, WORKLOAD, T

CONF = ROOT / "conf"
PATH_LIST = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def sup(*args, cwd=None, env=None):
    """Runs the ASan supervisor; fails the test on any sanitizer report."""
    p = subprocess.run([str(ASAN_SUPERVISOR), *map(str, args)], cwd=cwd, env=env,
                       capture_output=True, text=True, timeout=T(30))
    assert not SANITIZER_RE.search(p.stderr), p.stderr
    return p


def errors(p):
    """The error lines of a run (notices and the summary line left out)."""
    return [l for l in p.stderr.splitlines()
            if not l.startswith("notice: ") and not l.startswith("supervisor: ")]


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory):
    """A busybox root filesystem: build/rootfs, or one made here when it is not built yet."""
    if (ROOTFS / ".stamp").exists():
        return ROOTFS
    if not WORKLOAD.exists() or not Path("/bin/busybox").exists():
        pytest.skip("needs build/test/workload and busybox-static (make test-build)")
    d = tmp_path_factory.mktemp("rootfs") / "rootfs"
    subprocess.run([str(ROOT / "tests" / "mkrootfs"), str(d), str(WORKLOAD)], check=True,
                   capture_output=True)
    return d


@pytest.fixture(scope="module")
def conf_dir(rootfs, tmp_path_factory):
    """conf/ as the examples expect it: beside ../build/rootfs."""
    if rootfs == ROOTFS:
        return CONF
    top = tmp_path_factory.mktemp("tree")
    shutil.copytree(CONF, top / "conf")
    (top / "build").mkdir()
    (top / "build" / "rootfs").symlink_to(rootfs)
    # conf/image.ini's image: the same root as an OCI layout (umoci)
    subprocess.run([str(ROOT / "tests" / "mkimage"), str(rootfs), str(top / "build" / "image")],
                   check=True, capture_output=True)
    return top / "conf"


@pytest.fixture
def ini(tmp_path, rootfs):
    """Writes services.ini (with {rootfs} and {dir} filled in) and returns its path."""
    def write(text, name="services.ini"):
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text.format(rootfs=rootfs, dir=tmp_path))
        return p
    return write


def check_fails(path, *expected):
    """--check must exit 1 and print exactly the expected errors (FILE is the path)."""
    p = sup("-c", path, "--check")
    assert p.returncode == 1, p.stderr
    assert p.stdout == ""
    got = errors(p)
    want = [e.replace("FILE", str(path)) for e in expected]
    assert sorted(got) == sorted(want), "\n".join(got)
    n = len(want)
    assert p.stderr.splitlines()[-1] == f"supervisor: {path}: {n} error{'s' if n != 1 else ''}"
    return p


# ---- the examples ---------------------------------------------------------------------------
# appliance.ini names the appliance's paths (/srv/rootfs, /sbin/udhcpc): checked in its root
@pytest.mark.parametrize("name", sorted(p.name for p in CONF.glob("*.ini")
                                        if p.name != "appliance.ini"))
def test_examples_pass_check(conf_dir, name):
    path = conf_dir / name
    p = sup("-c", path, "--check")
    assert p.returncode == 0, p.stderr
    assert re.fullmatch(rf"{re.escape(str(path))}: OK, \d+ services?\n", p.stdout)
    assert errors(p) == []


def test_appliance_conf_checked_in_its_root(tmp_path):
    """conf/appliance.ini passes --check inside the appliance's root (make appliance's, without
    kernel or archive), and a bad key fails the build with the file, line and key."""
    if not Path("/bin/busybox").exists() or os.geteuid() != 0:
        pytest.skip("needs busybox-static and root (chroot)")
    mk = [str(ROOT / "contrib" / "appliance" / "mkappliance"), "--root-only"]
    bins = [str(ROOT / "build" / b) for b in ("supervisor", "init", "svctl")]
    p = subprocess.run(mk + [str(tmp_path / "good")] + bins + [str(CONF / "appliance.ini")],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    for f in ("usr/sbin/supervisor", "usr/libexec/corral/init", "usr/bin/svctl", "init",
              "sbin/udhcpc", "srv/rootfs/usr/sbin/httpd", "srv/rootfs/www/index.html"):
        assert (tmp_path / "good" / f).exists(), f
    text = (CONF / "appliance.ini").read_text().replace("[service:web]\n",
                                                        "[service:web]\nlisten = 80\n")
    bad = tmp_path / "bad.ini"
    bad.write_text(text)
    line = text.splitlines().index("listen = 80") + 1
    p = subprocess.run(mk + [str(tmp_path / "bad")] + bins + [str(bad)],
                       capture_output=True, text=True)
    assert p.returncode == 1, p.stderr
    assert f"/etc/corral/appliance.ini:{line}: listen: unknown key" in p.stderr, p.stderr
    assert f"mkappliance: {bad} has errors" in p.stderr, p.stderr


def test_demo_specs(conf_dir, rootfs):
    demo = conf_dir / "demo.ini"
    p = sup("-c", demo, "--print-spec", "web")
    assert p.returncode == 0, p.stderr
    text = p.stdout
    # the spec, after what the supervisor sets up itself (the network) as comments
    head, spec = text.split("; corral spec", 1)
    assert head == "; network = host: no network namespace\n", head   # namespaces without net
    for line in ["[spec]", "version = 1", "name = web", "hostname = web",
                 f"rootfs = {os.path.realpath(rootfs)}", "namespaces = pid,mount,uts,ipc,cgroup",
                 "read_only = true", f"bind = {os.path.realpath(conf_dir / 'www')}:/www:ro",
                 "tmpfs = /tmp:8388608", "exec = /usr/sbin/httpd", "argv = httpd", "argv = -f",
                 "uid = 65534", "gid = 65534", f"env = PATH={PATH_LIST}",
                 "env = HOME=/nonexistent", "autorestart = unexpected", "stopsignal = TERM"]:
        assert line in text.splitlines(), line
    # every line fits inih r55's buffer
    assert max(len(l) for l in text.splitlines()) <= 197
    # the ticker's %% became a single %, and its ';' is escaped in the spec
    p = sup("-c", demo, "--print-spec", "ticker")
    assert p.returncode == 0
    assert "argv = while true%3B do echo \"tick $(date +%25T) on $(hostname)\"%3B sleep 1%3B done" \
        in p.stdout.splitlines()


def test_supervisord_style_notices(conf_dir):
    p = sup("-c", conf_dir / "supervisord-style.ini", "--check")
    assert p.returncode == 0
    notices = [l for l in p.stderr.splitlines() if l.startswith("notice: ")]
    assert any("[rpcinterface:supervisor]: supervisord's section, accepted and ignored" in n
               for n in notices)
    assert any("nodaemon: accepted: the supervisor always runs in the foreground" in n
               for n in notices)
    assert any("stopasgroup: accepted and ignored" in n for n in notices)
    p = sup("-c", conf_dir / "supervisord-style.ini", "--print-spec", "worker_01")
    assert p.returncode == 0
    lines = p.stdout.splitlines()
    assert "env = GREETING=hello" in lines and "env = TARGET=world, again" in lines
    # supervisord's meaning: no namespaces, the host's / as it is, its environment
    assert "namespaces = " in lines and "read_only = false" in lines
    assert not [l for l in lines if l.startswith("rootfs = ")]
    assert "env = SUPERVISOR_ENABLED=1" in lines and "env = SUPERVISOR_PROCESS_NAME=worker_01" \
        in lines
    assert "exec = /bin/sleep" in lines or "exec = /usr/bin/sleep" in lines


# ---- errors ----------------------------------------------------------------------------------
def test_every_error_is_reported(ini, rootfs, tmp_path):
    path = ini("""\
[supervisor]
cgroup_root = /absolute
bogus = 1

[service:web]
rootfs = {rootfs}
command = httpd -f
memory_max = lots
priority = 1
priority = 2
autorestart = sometimes

[service:bad name]
command = true

[service:nocmd]
rootfs = {rootfs}
command = /bin/not-there

[service:norootfs]
rootfs = {dir}/missing
command = sleep 1

[program:web]
command = true

[wat]
""")
    check_fails(path,
                "FILE:2: cgroup_root: '/absolute' is not a relative cgroup path (words of A-Z "
                "a-z 0-9 _ . - joined by /)",
                "FILE:3: bogus: unknown key",
                "FILE:8: memory_max: 'lots' is not a size (512K, 100MB, 2G, max)",
                "FILE:11: autorestart: 'sometimes' is not false, unexpected or true (no, "
                "on-failure, always)",
                "FILE:13: [service:bad name]: the name must be 1 to 40 of A-Z a-z 0-9 _ . -",
                f"FILE:18: command: /bin/not-there: No such file or directory (inside "
                f"{os.path.realpath(rootfs)})",
                f"FILE:21: rootfs: {tmp_path}/missing: No such file or directory",
                "FILE:24: [program:web]: defined twice (first at FILE:5)",
                "FILE:27: [wat]: unknown section")


def test_each_error_message(ini, rootfs, tmp_path):
    real = os.path.realpath(rootfs)
    cases = [
        ("command = sleep 1\n[service:t]\ncommand = true\n",
         ["FILE:1: command: outside of any section"]),
        ("[service:t]\ncommand = nothere\nrootfs = {rootfs}\n",
         [f"FILE:2: command: 'nothere' not found in PATH ({PATH_LIST}) inside {real}"]),
        ("[service:t]\ncommand = /etc/passwd\nrootfs = {rootfs}\n",
         [f"FILE:2: command: /etc/passwd: is not executable (inside {real})"]),
        ("[service:t]\ncommand = sleep 1\nrootfs = {dir}/nope\n",
         ["FILE:3: rootfs: {dir}/nope: No such file or directory"]),
        ("[service:t]\ncommand = sleep 1\nrootfs = {dir}/services.ini\n",
         ["FILE:3: rootfs: {dir}/services.ini: not a directory"]),
        ("[service:t]\ncommand = sleep 1\nrootfs = {rootfs}\nuser = www\n",
         [f"FILE:4: user: no user 'www' in {real}/etc/passwd"]),
        ("[service:t]\ncommand = sleep 1\nrootfs = {rootfs}\nnamespaces = pid\n",
         ["FILE:3: rootfs: needs the mount namespace (add mount to namespaces)"]),
        ("[service:t]\ncommand = sleep 1\nrootfs = {rootfs}\nbind = {dir}/gone:/x\n",
         ["FILE:4: bind: {dir}/gone: No such file or directory"]),
        ("[service:t]\ncommand = sleep 1\n[service:t]\ncommand = true\n",
         ["FILE:3: [service:t]: defined twice (first at FILE:1)"]),
        ("[service:t]\ncommand = sleep 1\nstopsignal = SIGWHAT\n",
         ["FILE:3: stopsignal: 'SIGWHAT' is not a signal (TERM, SIGINT, 9)"]),
        ("[service:t]\ncommand = sleep 1\nnoequals\n",
         ["FILE:3: expected 'key = value', got 'noequals'"]),
        ("[service:t]\n", ["FILE:1: [service:t]: command is missing"]),
        ("[services:t]\n", ["FILE:1: [services:t]: unknown section (did you mean "
                             "[service:NAME]?)"]),
        ("[service:t]\ncommand = sleep 1\nrootfs = {rootfs}\nnamespaces = pid,mount,user\n",
         ["FILE:4: namespaces: the user namespace needs uid_map and gid_map (e.g. uid_map = "
          "0:100000:65536)"]),
        ("[service:t]\ncommand = sleep 1\nrootfs = {rootfs}\nuid_map = 0:100000:65536\n",
         ["FILE:4: uid_map: needs the user namespace (add user to namespaces)"]),
        ("[service:t]\ncommand = sleep 1\nrootfs = {rootfs}\nnamespaces = pid,mount,user\n"
         "uid_map = 0:100000\nuid_map = 0:-5:1\ngid_map = 1:100000:65536\n",
         ["FILE:5: uid_map: '0:100000' is not CONTAINER:HOST:COUNT (e.g. 0:100000:65536)",
          "FILE:6: uid_map: '0:-5:1' is not CONTAINER:HOST:COUNT (e.g. 0:100000:65536)",
          "FILE:7: gid_map: container gid 0 is not mapped (init runs as root inside the user "
          "namespace)"]),
        ("[service:t]\ncommand = sleep 1\nrootfs = {rootfs}\nnamespaces = pid,mount,user\n"
         "uid_map = 0:100000:10\nuid_map = 5:200000:10\ngid_map = 0:100000:100\n"
         "user = 65534\n",
         ["FILE:6: uid_map: '5:200000:10' overlaps an earlier range"]),
        ("[service:t]\ncommand = sleep 1\nrootfs = {rootfs}\nnamespaces = pid,mount,user\n"
         "uid_map = 0:100000:10\ngid_map = 0:100000:10\nuser = 65534\n",
         ["FILE:5: uid_map: uid 65534 (of user) is not mapped",
          "FILE:6: gid_map: gid 65534 (of group) is not mapped",
          "FILE:6: gid_map: gid 65534 (of groups) is not mapped"]),
    ]
    for text, want in cases:
        path = ini(text)
        check_fails(path, *[w.replace("{dir}", str(tmp_path)) for w in want])


def test_long_line_keeps_line_numbers(ini):
    # supervisord has no line limit; corral reads lines up to 64 KiB
    long_value = "x" * 65536
    path = ini("[service:t]\ncommand = sleep 1\nenvironment = A=" + long_value +
               "\npriority = high\n")
    check_fails(path,
                "FILE:3: line is 65552 bytes, longer than 65536 (continue it on indented lines)",
                "FILE:4: priority: 'high' is not an integer from -100000 to 100000")


def test_supervisord_parsing(ini):
    # What supervisord's parser makes of these lines, corral makes too: inline " #" and " ;"
    # comments, a key given twice keeps the last (with a notice), %(ENV_X)s in numprocs.
    path = ini("[program:t]\ncommand = /bin/echo hello # note\ndirectory = /tmp  # dir\n"
               "numprocs = %(ENV_SXD_N)s\nprocess_name = t%(process_num)d\n"
               "priority = 1\npriority = 2 ; the one that counts\n")
    env = dict(os.environ, SXD_N="2")
    p = sup("-c", path, "--print-spec", "t1", env=env)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    argv = [l[len("argv = "):] for l in lines if l.startswith("argv = ")]
    assert argv == ["/bin/echo", "hello"]
    assert "directory = /tmp" in lines, lines
    assert f"{path}:7: priority: given twice in [program:t] (first on line 6); the last value " \
        "counts" in p.stderr


def test_continuation_lines(ini):
    path = ini("[service:t]\nrootfs = {rootfs}\ncommand = /usr/local/bin/workload\n"
               "    mark one\n    -- sleep 1\nenvironment = A=1,\n  B=\"two words\"\n  C=3\n")
    p = sup("-c", path, "--print-spec", "t")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    argv = [l[len("argv = "):] for l in lines if l.startswith("argv = ")]
    assert argv == ["/usr/local/bin/workload", "mark", "one", "--", "sleep", "1"]
    assert "env = A=1" in lines and "env = B=two words" in lines and "env = C=3" in lines


def test_nul_byte_and_missing_file(tmp_path):
    path = tmp_path / "nul.ini"
    path.write_bytes(b"[service:t]\ncommand = sl\0eep 1\n")
    check_fails(path, "FILE:2: line holds a NUL byte", "FILE:1: [service:t]: command is missing")
    missing = tmp_path / "none.ini"
    check_fails(missing, "FILE: No such file or directory")


def test_includes(ini, tmp_path):
    ini("[service:b]\nrootfs = {rootfs}\ncommand = sleep 2\n", "conf.d/20-b.ini")
    ini("[service:a]\nrootfs = {rootfs}\ncommand = sleep 1\n", "conf.d/10-a.ini")
    main = ini("[include]\nfiles = conf.d/*.ini\n")
    # from another directory: includes are relative to the including file
    p = sup("-c", main, "--check", cwd="/")
    assert p.returncode == 0, p.stderr
    assert p.stdout == f"{main}: OK, 2 services\n"
    ini("[service:a]\ncommand = true\n[include]\nfiles = x.ini\n", "conf.d/30-c.ini")
    check_fails(main,
                f"{tmp_path}/conf.d/30-c.ini:1: [service:a]: defined twice (first at "
                f"{tmp_path}/conf.d/10-a.ini:1)",
                f"{tmp_path}/conf.d/30-c.ini:3: [include]: included files cannot include further")


def test_numprocs_and_expansions(ini, tmp_path):
    env = dict(os.environ, CORRAL_TEST_GREETING="hi")
    path = ini("[program:w]\nrootfs = {rootfs}\nnumprocs = 3\n"
               "process_name = %(program_name)s-%(process_num)02d\n"
               "command = /usr/local/bin/workload mark %(ENV_CORRAL_TEST_GREETING)s "
               "%(process_num)d %(here)s\n")
    p = sup("-c", path, "--check", env=env)
    assert p.returncode == 0, p.stderr
    assert p.stdout.endswith("OK, 3 services\n")
    p = sup("-c", path, "--print-spec", "w-02", env=env)
    assert p.returncode == 0, p.stderr
    argv = [l[7:] for l in p.stdout.splitlines() if l.startswith("argv = ")]
    assert argv == ["/usr/local/bin/workload", "mark", "hi", "2", str(tmp_path)]
    assert "hostname = w-02" in p.stdout.splitlines()
    # without the variable, the expansion is an error on its line
    env.pop("CORRAL_TEST_GREETING")
    p = sup("-c", path, "--check", env=env)
    assert p.returncode == 1
    assert errors(p) == [f"{path}:5: command: %(ENV_CORRAL_TEST_GREETING)s: "
                         "CORRAL_TEST_GREETING is not set in the supervisor's environment"]


def test_cgroup_limits_on_this_machine(ini):
    """Limits must be enforceable here: the error appears exactly when the probe says no."""
    path = ini("[service:t]\nrootfs = {rootfs}\ncommand = sleep 1\nmemory_max = 64M\n"
               "pids_max = 10\ncpu_max = 50%\ncpu_weight = 100\n")
    v2 = Path("/sys/fs/cgroup/cgroup.controllers")
    if v2.exists():
        ctrls = v2.read_text().split()
        have = {"memory": "memory" in ctrls, "pids": "pids" in ctrls, "cpu": "cpu" in ctrls}
    else:
        have = {"memory": Path("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists(),
                "pids": Path("/sys/fs/cgroup/pids/cgroup.procs").exists(),
                "cpu": Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").exists()}
    p = sup("-c", path, "--check")
    if all(have.values()):
        assert p.returncode == 0, p.stderr
    else:
        assert p.returncode == 1
        for key, ctrl in [("memory_max", "memory"), ("pids_max", "pids"), ("cpu_max", "cpu")]:
            assert any(f": {key}: " in e for e in errors(p)) == (not have[ctrl])
    if not v2.exists() and Path("/sys/fs/cgroup/memory").exists():
        swap = Path("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists()
        path = ini("[service:t]\nrootfs = {rootfs}\ncommand = sleep 1\nmemory_max = 2G\nmemory_swap_max = 1G\n")
        p = sup("-c", path, "--check")
        assert (p.returncode == 0) == swap, p.stderr


# ---- the command line ------------------------------------------------------------------------
def test_print_spec_unknown_and_invalid(ini):
    path = ini("[service:a]\nrootfs = {rootfs}\ncommand = sleep 1\n"
               "[service:b]\nrootfs = {rootfs}\ncommand = sleep 1\n")
    p = sup("-c", path, "--print-spec", "zzz")
    assert p.returncode == 1
    assert p.stdout == ""
    assert p.stderr == f"supervisor: {path}: no service 'zzz' (services: a, b)\n"
    bad = ini("[service:a]\ncommand = sleep 1\nbogus = 1\n", "bad.ini")
    p = sup("-c", bad, "--print-spec", "a")
    assert p.returncode == 1 and p.stdout == ""
    assert errors(p) == [f"{bad}:3: bogus: unknown key"]


def test_help_version_usage():
    p = sup("--help")
    assert p.returncode == 0 and "--print-spec NAME" in p.stdout and "--check" in p.stdout
    version = (ROOT / "VERSION").read_text().strip() if (ROOT / "VERSION").exists() else "0.1.0"
    p = sup("--version")
    assert p.returncode == 0 and p.stdout == f"supervisor (corral) {version}\n"
    p = sup("--no-such-option")
    assert p.returncode == 2 and "usage:" in p.stderr
    p = sup("-c", "/dev/null", "--check", "extra")
    assert p.returncode == 2 and "unexpected argument 'extra'" in p.stderr


def test_list_keys_markdown():
    p = sup("--list-keys")
    assert p.returncode == 0
    out = p.stdout
    for title in ["### `[supervisor]`", "### `[service:NAME]` (or `[program:NAME]`)",
                  "### `[include]`", "### `[group:NAME]`"]:
        assert title in out
    names = []
    for part in out.split("### ")[1:]:    # unique within a section ([supervisord]'s
        rows = [l for l in part.splitlines() if l.startswith("| `")]   # environment is not
        part_names = [re.match(r"\| `([a-z_0-9]+)`", r).group(1) for r in rows]  # a service's)
        assert len(part_names) == len(set(part_names))
        names += part_names
    # one name, two rows: [supervisor] hostname is the machine's, a service's its own
    assert names.count("hostname") == 2
    for key in ["command", "autorestart", "numprocs", "rootfs", "namespaces", "memory_max",
                "cpu_max", "bind", "tmpfs", "restart_delay_max", "environment_file",
                "cgroup_root", "files", "stopasgroup"]:
        assert key in names
    assert "| `autorestart` (also `restart`) | restart policy | `unexpected` | restart |" in out
