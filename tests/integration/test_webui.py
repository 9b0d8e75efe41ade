"""The web UI (supervisor/api/webui.c) on [inet_http_server], black-box: a real corral
(build/asan/supervisor) over a supervisord-style file, driven by a real browser (Debian's
chromium, headless, through chromium-driver and python3-selenium) and by plain HTTP for what a
browser hides (authentication, the form token, escaping)."""
import base64
import os
import re
import shutil
import signal
import socket
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from conftest import ASAN_SUPERVISOR, INIT, SANITIZER_RE, T, need, read_text, wait_until
from test_supervisor import cgroot  # noqa: F401  (a fixture)

pytestmark = pytest.mark.cgroup

CHROMEDRIVER = Path("/usr/bin/chromedriver")
# what chromedriver says instead of "stale element" when a node's document was replaced under it
GONE = "does not belong to the document"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class UiSup:
    def __init__(self, h, tmp, cgroot, auth=False, identifier=None):
        self.h, self.tmp, self.port = h, Path(tmp), free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.conf = self.tmp / "supervisord.conf"
        self.conf.write_text(
            f"[supervisord]\ncgroup_root = {cgroot}\ncontrol_socket = {tmp}/ctl.sock\n"
            f"log_dir = {tmp}/logs\n" + (f"identifier = {identifier}\n" if identifier else "")
            + f"\n[inet_http_server]\nport = 127.0.0.1:{self.port}\n"
            + ("username = user\npassword = secret\n" if auth else "")
            + "\n[program:web]\ncommand = /bin/sleep 1000\n\n"
            "[program:idle]\ncommand = /bin/sleep 1000\nautostart = false\n\n"
            "[program:quick]\ncommand = /bin/sh -c 'echo boom; exit 3'\nstartretries = 0\n\n"
            "[program:talker]\ncommand = /bin/sh -c 'i=0; while :; do echo tick $i; "
            "i=$((i+1)); sleep 0.2; done'\n")
        self.auth = "Basic " + base64.b64encode(b"user:secret").decode() if auth else None

    def start(self):
        need(ASAN_SUPERVISOR)
        need(INIT)
        # memory and CPU read every 200 ms instead of every minute, for the charts
        self.p, self.out, self.err = self.h.popen([ASAN_SUPERVISOR, "-c", self.conf],
                                                  env={"CORRAL_INIT": str(INIT),
                                                       "CORRAL_WEBUI_SAMPLE_MS": "200"})
        wait_until(self.listening, 20, what="the HTTP server")
        return self

    def listening(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def http(self, path, data=None, auth=True):
        """(status, headers, body) of GET path, or of a POST of the form data."""
        req = urllib.request.Request(self.base + path, data=urllib.parse.urlencode(data).encode()
                                     if data is not None else None)
        if auth and self.auth:
            req.add_header("Authorization", self.auth)

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *a, **kw):
                return None
        opener = urllib.request.build_opener(NoRedirect)
        try:
            with opener.open(req, timeout=T(10)) as r:
                return r.status, r.headers, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read().decode()

    def state(self, name):
        m = re.search(rf'<tr id="svc-{name}"><td class="state \w+">(\w+)<', self.http("/")[2])
        return m.group(1) if m else None

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        rc = self.p.wait(T(30))
        log = read_text(self.err)
        assert not SANITIZER_RE.search(log), log[-3000:]
        return rc


def test_web_ui_in_a_real_browser(h, tmp, cgroot):
    """chromium loads the page, sees every service's state, and its buttons stop a running
    service and start a stopped one: the page after each click (post, redirect, get) shows the
    change, and so does the supervisor."""
    if not CHROMEDRIVER.exists():
        pytest.skip("chromium-driver is not installed (make test installs it)")
    if os.environ.get("RUN_IN_VM"):
        pytest.skip("chromium under TCG takes minutes; the page is the same (tested on the host)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.common.exceptions import (NoSuchElementException, StaleElementReferenceException,
                                            WebDriverException)
    from selenium.webdriver.common.by import By

    s = UiSup(h, tmp, cgroot).start()
    wait_until(lambda: s.state("web") == "RUNNING" and s.state("quick") == "FATAL", 20,
               what="web RUNNING, quick FATAL")
    opts = webdriver.ChromeOptions()
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              f"--user-data-dir={tmp}/chromium", "--no-first-run"):
        opts.add_argument(a)
    drv = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    try:
        drv.set_page_load_timeout(T(30))
        drv.get(s.base + "/")
        cell = lambda name, cls: drv.find_element(By.CSS_SELECTOR, f"#svc-{name} .{cls}").text

        def press(button_id):
            """Clicks and waits for the post, the redirect and the new page (a navigation of
            our own started before that would cancel the post)."""
            old = drv.find_element(By.ID, button_id)
            old.click()

            def replaced():
                try:
                    old.is_enabled()
                    return False
                except StaleElementReferenceException:
                    return True
                except WebDriverException as e:   # chromium's other words for "stale"
                    if GONE in str(e):
                        return True
                    raise
            wait_until(replaced, 20, what=f"the page after {button_id}")
        assert cell("web", "state") == "RUNNING"
        assert re.fullmatch(r"pid \d+, uptime 0:00:\d\d", cell("web", "desc")), cell("web", "desc")
        assert cell("idle", "state") == "STOPPED"
        assert cell("quick", "state") == "FATAL"
        assert "exit status 3" in cell("quick", "desc"), cell("quick", "desc")

        # web's page: memory and CPU as charts the browser draws (inline SVG, no script)
        def charted():
            drv.get(s.base + "/service/web")
            return drv.find_elements(By.CSS_SELECTOR, "#mem-chart polyline")
        wait_until(charted, 20, what="web's memory chart")
        for cid in ("mem-chart", "cpu-chart"):
            svg = drv.find_element(By.ID, cid)
            assert svg.is_displayed() and svg.size["width"] == 360, (cid, svg.size)
            pts = svg.find_element(By.TAG_NAME, "polyline").get_attribute("points").split()
            assert len(pts) >= 2, pts
        # talker's page: its output live in the page (a frame that reloads itself)
        drv.get(s.base + "/service/talker")
        drv.switch_to.frame(drv.find_element(By.ID, "live"))
        def ticks():
            try:   # the frame reloads itself every 2 s: an element may go stale under us
                return [int(x) for x in re.findall(r"tick (\d+)",
                                                   drv.find_element(By.ID, "lines").text)]
            except (StaleElementReferenceException, NoSuchElementException):
                return []
            except WebDriverException as e:   # chromium's other words for "stale"
                if GONE in str(e):
                    return []
                raise
        # the lines wait_until saw: asking again may meet the frame reloading (no lines)
        first = max(wait_until(ticks, 20, what="talker's lines in the live log"))
        wait_until(lambda: max(ticks() or [0]) >= first + 3, 20, what="new lines arriving live")
        drv.switch_to.default_content()
        drv.get(s.base + "/")
        press("stop-web")

        def shows(name, want):
            drv.get(s.base + "/")
            return cell(name, "state") == want
        wait_until(lambda: shows("web", "STOPPED"), 20, what="web STOPPED in the page")
        assert drv.current_url.rstrip("/") == s.base, drv.current_url   # redirected back
        press("start-idle")
        wait_until(lambda: shows("idle", "RUNNING"), 20, what="idle RUNNING in the page")
        # a link to each log's tail -f, as supervisord's page has
        link = drv.find_element(By.CSS_SELECTOR, "#svc-idle .name a.tail")
        assert link.get_attribute("href") == s.base + "/logtail/idle"
        # each name leads to its page: its facts, its crash history with the last lines
        drv.find_element(By.LINK_TEXT, "quick").click()
        wait_until(lambda: drv.current_url == s.base + "/service/quick", 20,
                   what="quick's page")
        wait_until(lambda: drv.find_elements(By.ID, "state"), 20, what="quick's page loaded")
        assert drv.find_element(By.ID, "state").text == "FATAL"
        exits = drv.find_elements(By.CSS_SELECTOR, "#exits tr.exit")
        assert len(exits) == 1 and "exit 3" in exits[0].text and "boom" in exits[0].text, \
            [e.text for e in exits]
        press("start-quick")          # its button, as on the list
        wait_until(lambda: (drv.get(s.base + "/service/quick"),
                            len(drv.find_elements(By.CSS_SELECTOR, "#exits tr.exit")))[1] == 2,
                   20, what="a second exit of quick in its history")
    finally:
        drv.quit()
    assert s.state("web") == "STOPPED" and s.state("idle") == "RUNNING"
    assert s.stop() == 0
    shutil.rmtree(tmp / "chromium", ignore_errors=True)


def test_web_ui_needs_the_credentials_and_the_form_token(h, tmp, cgroot):
    """Behind [inet_http_server]'s username and password like XML-RPC; an action needs the
    token the page's forms carry (a page of another site cannot post one); what the page shows
    is escaped."""
    s = UiSup(h, tmp, cgroot, auth=True, identifier="<b>box</b>").start()
    code, hdr, _ = s.http("/", auth=False)
    assert code == 401 and "Basic" in hdr["WWW-Authenticate"], code
    wait_until(lambda: s.state("web") == "RUNNING", 20, what="web RUNNING")
    code, hdr, page = s.http("/")
    assert code == 200 and hdr["Content-Type"].startswith("text/html"), code
    assert "<b>box</b>" not in page and "&lt;b&gt;box&lt;/b&gt;" in page
    assert "default-src 'none'" in hdr["Content-Security-Policy"]
    token = re.search(r'name="token" value="([0-9a-f]{32})"', page).group(1)
    assert s.http("/action", {"name": "web", "do": "stop"})[0] == 403
    assert s.http("/action", {"name": "web", "do": "stop", "token": "0" * 32})[0] == 403
    assert s.http("/action", {"name": "web", "do": "stop", "token": token}, auth=False)[0] == 401
    assert s.state("web") == "RUNNING"
    assert s.http("/action", {"name": "nope", "do": "stop", "token": token})[0] == 404
    assert s.http("/action", {"name": "web", "do": "kill", "token": token})[0] == 400
    assert s.http("/action")[0] == 405
    assert s.http("/service/nope")[0] == 404
    code, _, page = s.http("/service/web")
    assert code == 200 and '<td id="state">RUNNING</td>' in page, page
    code, hdr, _ = s.http("/action", {"name": "web", "do": "stop", "token": token})
    assert code == 303 and hdr["Location"] == "/", code
    wait_until(lambda: s.state("web") == "STOPPED", 20, what="web STOPPED")
    assert s.stop() == 0
