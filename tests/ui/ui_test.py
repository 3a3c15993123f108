#!/usr/bin/env python3
"""The master's web UI in a real browser: headless Chromium driven by Selenium.

Usage: ui_test.py [PATH/TO/tessera]      (else $TESSERA_BIN, else build/bin/tessera)

It starts its own `tessera cluster` (2 agents, 127.0.0.1, ephemeral ports, a
temporary work dir), runs two tasks with `tessera run` (a long `sleep 30` and a
short `echo hello-ui; sleep 5`), opens the UI and checks, each check printed:

  - the connection indicator says "live" and shows a sequence number;
  - the overview shows 2 agents, and used CPUs > 0 while a task runs;
  - the tasks page lists both tasks as TASK_RUNNING;
  - the short task's row turns TASK_FINISHED without a page reload;
  - the short task's page shows its states with timestamps and exit code 0,
    and its stdout (or says "log unavailable" when its agent serves no HTTP);
  - draining an agent from the agents page shows DRAINING or DRAINED there;
  - the page logged no JavaScript error;
  - the apps page lists an app (created through /v2) with its running count,
    its tasks, and its queue section;
  - against a cluster started with --credentials, the page asks for a token
    when the API answers 401, and with one made by `tessera token create`
    the stream goes live again (the token kept in sessionStorage).

Screenshots (overview, tasks, task, agents) go to $TESSERA_SCREENSHOT_DIR
(default: a new temporary directory; printed). Every process it starts is
stopped by its pid in a finally block. Exit status 0 only when every check
passed; otherwise a message says what failed.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
DEBIAN_PYTHON = "/usr/bin/python3"


class Failure(Exception):
    pass


def say(msg):
    print(msg, flush=True)


def ok(msg):
    say(f"ok: {msg}")


def need_selenium():
    """Imports selenium; re-runs this script with Debian's python3 (which has
    python3-selenium) when the interpreter on PATH (a pyenv, a venv) lacks it."""
    try:
        import selenium  # noqa: F401
        return
    except ImportError:
        pass
    if (os.path.exists(DEBIAN_PYTHON) and os.path.realpath(sys.executable) != os.path.realpath(DEBIAN_PYTHON)
            and not os.environ.get("TESSERA_UI_TEST_REEXEC")):
        env = dict(os.environ, TESSERA_UI_TEST_REEXEC="1")
        say(f"ui_test: {sys.executable} has no selenium; running again with {DEBIAN_PYTHON}")
        os.execve(DEBIAN_PYTHON, [DEBIAN_PYTHON, os.path.abspath(__file__)] + sys.argv[1:], env)
    raise Failure("python3-selenium is not installed (for {}): run tools/bootstrap.sh".format(sys.executable))


def need_browser():
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.access(path, os.X_OK):
            raise Failure(f"{path} is missing (Debian package {package}): run tools/bootstrap.sh")


# -- processes ------------------------------------------------------------------


class Proc:
    """A child process in its own process group, its output kept for failure
    reports. Stopped by its pid (SIGTERM, then SIGKILL to its group)."""

    def __init__(self, name, argv):
        self.name = name
        self.argv = argv
        self.lines = []
        self.stopped = False
        self.cond = threading.Condition()
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  text=True, errors="replace", start_new_session=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.p.stdout:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait_line(self, pattern, timeout):
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cond:
            seen = 0
            while True:
                for line in self.lines[seen:]:
                    m = rx.search(line)
                    if m:
                        return m
                seen = len(self.lines)
                left = deadline - time.monotonic()
                if left <= 0 or (self.p.poll() is not None and not self.reader.is_alive()):
                    return None
                self.cond.wait(min(left, 0.5))

    def tail(self, n=30):
        with self.cond:
            return "\n".join(f"  [{self.name}] {line}" for line in self.lines[-n:])

    def stop(self, grace=15):
        if self.stopped:
            return
        self.stopped = True
        if self.p.poll() is None:
            try:
                self.p.send_signal(signal.SIGTERM)
                self.p.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                say(f"ui_test: {self.name} (pid {self.p.pid}) ignored SIGTERM for {grace} s: killing its group")
            except ProcessLookupError:
                pass
        try:  # anything the process left in its group (executors, shells)
            os.killpg(self.p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            say(f"ui_test: {self.name} (pid {self.p.pid}) did not exit")


def proc_stat(pid):
    """(parent pid, start time) of a process, from /proc/PID/stat; None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        fields = stat[stat.rindex(")") + 2:].split()
        return int(fields[1]), int(fields[19])
    except (OSError, ValueError, IndexError):
        return None


def descendants(pid):
    """{pid: start time} of every descendant of pid, from /proc (by pid, never by name)."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = proc_stat(int(entry))
            if st:
                children.setdefault(st[0], []).append((int(entry), st[1]))
    out, todo = {}, [pid]
    while todo:
        for child, started in children.get(todo.pop(), []):
            out[child] = started
            todo.append(child)
    return out


def kill_if_same(pid, started):
    """SIGKILL pid only if it is still the process that started at `started`."""
    st = proc_stat(pid)
    if st and st[1] == started:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# -- the operator API ------------------------------------------------------------

NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def call(http, body, timeout=10):
    req = urllib.request.Request(f"{http}/api/v1", data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with NO_PROXY.open(req, timeout=timeout) as r:
        return json.loads(r.read())


def wait_for(what, fn, timeout, interval=0.25):
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = fn()
            if value:
                return value
        except Exception as e:  # noqa: BLE001 - the reason goes into the failure
            last_error = e
        time.sleep(interval)
    raise Failure(f"timed out after {timeout} s waiting for {what}" + (f" (last error: {last_error})" if last_error else ""))


# ===================================================================================
# The apps page (#/apps), on the apps framework's /v2 API (docs/apps.md).
# ===================================================================================


def v2(http, method, path, body=None, timeout=10):
    """(status, parsed JSON or None) of a call to the apps framework's /v2 API."""
    req = urllib.request.Request(f"{http}/v2/{path}", method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json", "Accept": "application/json"})
    try:
        with NO_PROXY.open(req, timeout=timeout) as r:
            text = r.read()
            return r.status, json.loads(text) if text else None
    except urllib.error.HTTPError as e:
        text = e.read()
        try:
            return e.code, json.loads(text) if text else None
        except ValueError:
            return e.code, None


def check_apps_page(driver, http, text, go, shot):
    """The apps page shows the app $TESSERA_UI_APP_ID (default /ui-test/sleeper;
    created with one `sleep 3600` instance when the framework does not know
    it) with the running count /v2 gives, its tasks when clicked, and renders
    its "why not running" queue section."""
    from selenium.webdriver.common.by import By

    app_id = "/" + (os.environ.get("TESSERA_UI_APP_ID") or "/ui-test/sleeper").strip("/")
    path = "apps/" + urllib.parse.quote(app_id.lstrip("/"))
    wait_for("GET /v2/apps to answer 200 (the apps framework running)", lambda: v2(http, "GET", "apps")[0] == 200, 30)
    status, answer = v2(http, "GET", path)
    if status not in (200, 404):
        raise Failure(f"GET /v2/{path} answered {status}: {answer}")
    created = status == 404
    if created:
        status, answer = v2(http, "POST", "apps", {"id": app_id, "cmd": "sleep 3600", "instances": 1,
                                                   "cpus": 0.1, "mem": 32})
        if status != 201:
            raise Failure(f"POST /v2/apps {app_id} answered {status}: {answer}")
        say(f"ui_test: created app {app_id}")

    go("#/apps")
    row = f'#apps tr[data-app-id="{app_id}"]'
    wait_for(f"app {app_id}'s row on the apps page", lambda: driver.find_elements(By.CSS_SELECTOR, row), 30)
    if driver.find_element(By.ID, "apps-off").is_displayed():
        raise Failure("the apps page says the apps framework is not running, yet /v2/apps answers")

    seen = {}

    def running_matches():
        status, answer = v2(http, "GET", path)
        app = (answer or {}).get("app") or {}
        want = f"{app.get('tasksRunning', 0)} / {app.get('instances', 0)}"
        seen.update(page=text(f"{row} td.running"), api=want)
        steady = not created or (app.get("instances", 0) >= 1 and app.get("tasksRunning") == app.get("instances"))
        return status == 200 and steady and seen["page"] == want
    try:
        wait_for(f"app {app_id}'s running count", running_matches, 60, interval=0.5)
    except Failure:
        raise Failure(f"app {app_id}'s running count: the page shows {seen.get('page')!r}, "
                      f"GET /v2/{path} says {seen.get('api')!r}")
    ok(f"the apps page shows app {app_id} running '{seen['page']}' (running / wanted), as GET /v2/{path} says")

    driver.find_element(By.CSS_SELECTOR, f"{row} td.id a").click()
    wait_for(f"app {app_id}'s detail", lambda: text("#app-detail-id") == app_id, 10)
    running = int(seen["page"].split("/")[0])
    if running:
        tasks = wait_for(f"app {app_id}'s tasks", lambda: driver.find_elements(
            By.CSS_SELECTOR, '#app-tasks tbody tr[data-state="TASK_RUNNING"]'), 10)
        ok(f"clicking app {app_id} shows its tasks ({len(tasks)} TASK_RUNNING)")

    def queue_rows():
        return driver.find_elements(By.CSS_SELECTOR, "#queue tbody tr")
    wait_for("the apps page's queue section", queue_rows, 10)
    waiting = driver.find_elements(By.CSS_SELECTOR, "#queue tbody tr[data-app-id]")
    ok(f"the apps page's queue section renders ({len(waiting)} app(s) waiting"
       f"{'' if waiting else ': ' + repr(text('#queue tbody td.empty'))})")
    shot("ui-apps.png")


# -- the test ----------------------------------------------------------------------


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("TESSERA_BIN")
    if not binary:
        binary = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "build", "bin", "tessera")
    binary = os.path.abspath(binary)
    if not os.access(binary, os.X_OK):
        raise Failure(f"no tessera binary at {binary} (give its path as the argument or in TESSERA_BIN)")

    need_browser()
    need_selenium()
    from selenium import webdriver
    from selenium.common.exceptions import (NoAlertPresentException, StaleElementReferenceException,
                                            WebDriverException)
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    shots = os.environ.get("TESSERA_SCREENSHOT_DIR") or tempfile.mkdtemp(prefix="tessera-ui-shots-")
    os.makedirs(shots, exist_ok=True)
    say(f"ui_test: screenshots go to {shots}")
    work = tempfile.mkdtemp(prefix="tessera-ui-")
    procs = []
    driver = None
    browser_pids = {}
    service = None
    passed = False
    try:
        # -- the cluster --------------------------------------------------------
        cluster = Proc("cluster", [binary, "cluster", "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0",
                                   "--agents", "2", "--agent-resources", "cpus:4;mem:8192;disk:20480",
                                   "--work-dir", os.path.join(work, "cluster")])
        procs.append(cluster)
        m = cluster.wait_line(r"master at (\S+) with", 60)
        if not m:
            raise Failure("tessera cluster printed no 'master at' line within 60 s:\n" + cluster.tail())
        master = m.group(1)
        m = cluster.wait_line(r"web UI: (http://\S+?)/?$", 10)
        if not m:
            raise Failure("tessera cluster printed no 'HTTP API and web UI' line:\n" + cluster.tail())
        http = m.group(1).rstrip("/")
        say(f"ui_test: cluster pid {cluster.p.pid}: master {master}, UI {http}/")
        wait_for("2 agents in GET_AGENTS",
                 lambda: len(call(http, {"type": "GET_AGENTS"})["get_agents"]["agents"]) == 2, 60)
        ok("GET_AGENTS lists 2 agents")

        # -- the browser ----------------------------------------------------------
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1440,1000", "--no-proxy-server", "--no-first-run",
                    "--disable-background-networking", "--disable-extensions",
                    f"--user-data-dir={os.path.join(work, 'chromium')}"):
            opts.add_argument(arg)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        service = Service(executable_path=CHROMEDRIVER, log_path=os.path.join(work, "chromedriver.log"))
        try:
            driver = webdriver.Chrome(service=service, options=opts)
        except WebDriverException as e:
            raise Failure(f"could not start headless Chromium through {CHROMEDRIVER}: {e.msg or e}")
        browser_pids = descendants(service.process.pid)
        driver.set_page_load_timeout(30)
        say(f"ui_test: chromedriver pid {service.process.pid}, browser pids {sorted(browser_pids)}")

        def text(css):
            for _ in range(5):  # a row re-rendered between the find and the read
                try:
                    els = driver.find_elements(By.CSS_SELECTOR, css)
                    return els[0].text.strip() if els else None
                except StaleElementReferenceException:
                    time.sleep(0.05)
            return None

        def wait_text(what, css, pred, timeout=20):
            last = [None]

            def check(_):
                last[0] = text(css)
                try:
                    return last[0] is not None and pred(last[0])
                except ValueError:  # e.g. float("–")
                    return False
            try:
                WebDriverWait(driver, timeout, poll_frequency=0.2).until(check)
            except Exception:  # noqa: BLE001
                raise Failure(f"{what}: '{css}' was {last[0]!r} after {timeout} s")
            return last[0]

        def shot(name):
            path = os.path.join(shots, name)
            driver.execute_script("document.getElementById('toasts').replaceChildren()")  # not in the picture
            time.sleep(0.3)  # a render in flight
            if not driver.save_screenshot(path):
                raise Failure(f"could not save screenshot {path}")
            say(f"ui_test: screenshot {path}")

        def go(route):
            driver.execute_script("location.hash = arguments[0]", route)

        driver.get(f"{http}/")
        wait_text("the connection indicator", "#conn", lambda t: t == "live", 30)
        seq0 = int(driver.find_element(By.ID, "seq").get_attribute("data-sequence"))
        ok(f"#conn says 'live' and #seq shows sequence {seq0}")
        driver.execute_script("window.__uiTestMarker = 'same page'")
        wait_text("the overview's agent count", "#stat-agents .value", lambda t: t == "2")
        ok("the overview shows 2 agents")

        # -- a role's weight and quota, set from the roles page --------------------
        go("#/roles")
        wait_text("the roles page", "#roles-note", lambda t: "as of" in t)

        def submit(form, fields):
            for name, value in fields.items():
                box = driver.find_element(By.CSS_SELECTOR, f'#{form} input[name="{name}"]')
                box.clear()
                box.send_keys(value)
            driver.find_element(By.CSS_SELECTOR, f'#{form} button[type="submit"]').click()
        submit("weight-form", {"role": "analytics", "weight": "2"})
        wait_text("role analytics's weight", '#roles tr[data-role="analytics"] td.weight', lambda t: t == "2")
        submit("quota-form", {"role": "analytics", "cpus": "2", "mem": "2048"})
        quota = wait_text("role analytics's quota", '#roles tr[data-role="analytics"] td.quota',
                          lambda t: "cpus 2" in t and "mem 2 GB" in t)
        answer = call(http, {"type": "GET_ROLES"})["get_roles"]["roles"]
        role = next((r for r in answer if r["name"] == "analytics"), None)
        if not role or role.get("weight") != 2 or "quota" not in role:
            raise Failure(f"GET_ROLES does not show what the roles page set: {role}")
        ok(f"the roles page set role analytics's weight to 2 and quota to '{quota}' (GET_ROLES agrees)")

        # -- tasks ----------------------------------------------------------------
        def find_task(name):
            answer = call(http, {"type": "GET_TASKS"})["get_tasks"]
            for t in answer["tasks"] + answer["completed_tasks"]:
                if t["name"] == name:
                    return t
            return None

        go("#/")
        long_run = Proc("run ui-long", [binary, "run", "--master", master, "--name", "ui-long", "--role", "analytics",
                                        "--cpus", "1", "--mem", "256", "--", "sleep", "30"])
        procs.append(long_run)
        long_task = wait_for("task ui-long in GET_TASKS", lambda: find_task("ui-long"), 30)
        long_id, long_fw = long_task["task_id"]["value"], long_task["framework_id"]["value"]
        long_agent = long_task["agent_id"]["value"]
        say(f"ui_test: ui-long is task {long_id} of framework {long_fw} on agent {long_agent}")
        used = wait_text("the overview's used CPUs", '#resources tr[data-resource="cpus"] td.used',
                         lambda t: float(t) > 0)
        ok(f"the overview shows {used} CPUs used while ui-long runs")
        consumed = wait_text("role analytics's quota consumption on the overview",
                             '#overview-roles tr[data-role="analytics"] td.consumed', lambda t: "cpus: 1 / 2" in t)
        ok(f"the overview shows role analytics's quota consumption: {' '.join(consumed.split())}")
        shot("ui-overview.png")
        go("#/roles")
        wait_text("role analytics's allocation", '#roles tr[data-role="analytics"] td.allocated', lambda t: "cpus 1" in t)
        ok("the roles page shows ui-long's cpus allocated to role analytics")
        shot("ui-roles.png")

        go("#/tasks")
        wait_text("the tasks page", "#tasks-count", lambda t: "showing" in t)
        short_run = Proc("run ui-short", [binary, "run", "--master", master, "--name", "ui-short", "--cpus", "0.5",
                                          "--mem", "128", "--", "sh", "-c", "echo hello-ui; sleep 5"])
        procs.append(short_run)
        short_task = wait_for("task ui-short in GET_TASKS", lambda: find_task("ui-short"), 30)
        short_id, short_fw = short_task["task_id"]["value"], short_task["framework_id"]["value"]
        say(f"ui_test: ui-short is task {short_id} of framework {short_fw}")
        long_row = f'tr[data-task-id="{long_id}"] td.state'
        short_row = f'tr[data-task-id="{short_id}"] td.state'
        wait_text("ui-long's row", long_row, lambda t: t == "TASK_RUNNING")
        wait_text("ui-short's row", short_row, lambda t: t == "TASK_RUNNING")
        ok(f"the tasks page lists {long_id} and {short_id} as TASK_RUNNING")
        shot("ui-tasks.png")

        wait_text("ui-short's row after its command exits", short_row, lambda t: t == "TASK_FINISHED", 20)
        marker = driver.execute_script("return window.__uiTestMarker")
        if marker != "same page":
            raise Failure("the page was reloaded (the marker set on it is gone)")
        ok(f"{short_id}'s row turned TASK_FINISHED without a page reload")
        seq1 = int(driver.find_element(By.ID, "seq").get_attribute("data-sequence"))
        if seq1 <= seq0:
            raise Failure(f"#seq did not advance: {seq0} then {seq1}")
        ok(f"#seq advanced from {seq0} to {seq1}")

        # The filters: free text, then state.
        search = driver.find_element(By.ID, "filter-text")
        search.send_keys("ui-long")
        wait_for("the text filter", lambda: [r.get_attribute("data-task-id") for r in
                                            driver.find_elements(By.CSS_SELECTOR, "#tasks tbody tr[data-task-id]")]
                 == [long_id], 5)
        search.clear()
        search.send_keys(short_id)
        wait_for("the text filter by id", lambda: [r.get_attribute("data-task-id") for r in
                                                  driver.find_elements(By.CSS_SELECTOR, "#tasks tbody tr[data-task-id]")]
                 == [short_id], 5)
        search.clear()
        driver.execute_script("""const s = document.getElementById('filter-state');
                                 s.value = 'TASK_FINISHED'; s.dispatchEvent(new Event('change'));""")
        wait_for("the state filter", lambda: [r.get_attribute("data-task-id") for r in
                                             driver.find_elements(By.CSS_SELECTOR, "#tasks tbody tr[data-task-id]")]
                 == [short_id], 5)
        if "state=TASK_FINISHED" not in driver.current_url:
            raise Failure(f"the state filter is not in the URL: {driver.current_url}")
        driver.execute_script("""const s = document.getElementById('filter-state');
                                 s.value = ''; s.dispatchEvent(new Event('change'));""")
        ok("the tasks page's filters (name, id, state) pick the right rows and go into the URL")

        # -- the short task's page --------------------------------------------------------
        driver.find_element(By.CSS_SELECTOR, f'tr[data-task-id="{short_id}"] td.id a').click()
        wait_text("the task page's state", "#task-state", lambda t: t == "TASK_FINISHED")
        rows = driver.find_elements(By.CSS_SELECTOR, "#task-statuses tbody tr[data-state]")
        states = [r.get_attribute("data-state") for r in rows]
        times = [r.find_element(By.CSS_SELECTOR, "td.time").text.strip() for r in rows]
        if "TASK_RUNNING" not in states or states[-1] != "TASK_FINISHED":
            raise Failure(f"the task page lists states {states}; expected TASK_RUNNING then TASK_FINISHED")
        if not all(re.search(r"\d\d:\d\d:\d\d", t) for t in times):
            raise Failure(f"the task page's states lack timestamps: {times}")
        ok("the task page shows its states: " + ", ".join(f"{s} at {t}" for s, t in zip(states, times)))
        exit_code = wait_text("the task page's exit code", "#fact-exit-code", lambda t: t != "–", 5)
        if exit_code != "0":
            raise Failure(f"the task page shows exit code {exit_code!r}, expected 0")
        ok("the task page shows exit code 0")

        agents = {a["agent_info"]["id"]["value"]: a for a in call(http, {"type": "GET_AGENTS"})["get_agents"]["agents"]}
        short_agent = agents.get(short_task["agent_id"]["value"], {})
        wait_text("the stdout pane", "#log-stdout-status",
                  lambda t: t.startswith("log unavailable") or "hello-ui" in (text("#log-stdout") or ""), 15)
        status = text("#log-stdout-status")
        if "hello-ui" in (text("#log-stdout") or ""):
            ok(f"the task page's stdout tail shows 'hello-ui' ({status})")
        elif short_agent.get("http_address"):
            raise Failure(f"the agent serves HTTP at {short_agent['http_address']} but the stdout pane says {status!r}")
        else:
            ok(f"the agent has no http_address in GET_AGENTS, and the stdout pane says so cleanly: {status!r}")
        shot("ui-task.png")

        # -- reservations and drain on the agents page -----------------------------------
        go("#/agents")
        agent_row = f'tr[data-agent-id="{long_agent}"]'
        wait_text("the agents page", f"{agent_row} td.drain", lambda t: t == "NONE")
        call(http, {"type": "RESERVE_RESOURCES",
                    "reserve_resources": {"agent_id": {"value": long_agent}, "resources": "mem(web):64"}})
        reserved = wait_text("the agent's reservation, live", f"{agent_row} td.reserved",
                             lambda t: t.startswith("web: mem 64 MB*"), 10)
        ok(f"the agents page shows agent {long_agent}'s new reservation live: {reserved!r}")
        driver.find_element(By.CSS_SELECTOR, f'{agent_row} button[data-action="drain"]').click()
        try:
            alert = WebDriverWait(driver, 5).until(lambda d: d.switch_to.alert)
            say(f"ui_test: accepting confirm(): {alert.text!r}")
            alert.accept()
        except Exception:  # noqa: BLE001 - no confirm() is fine too
            try:
                driver.switch_to.alert.accept()
            except NoAlertPresentException:
                pass
        drain = wait_text("the drained agent's row", f"{agent_row} td.drain",
                          lambda t: t in ("DRAINING", "DRAINED"), 20)
        ok(f"agent {long_agent} shows {drain} on the agents page after its Drain button")
        drain = wait_text("the drained agent's row", f"{agent_row} td.drain", lambda t: t == "DRAINED", 20)
        ok(f"agent {long_agent} went on to {drain} (ui-long: "
           f"{(find_task('ui-long') or {}).get('state')})")
        shot("ui-agents.png")

        go("#/frameworks")
        # ui-long's `tessera run` ended with its task: its framework is completed by now.
        where = wait_for("ui-long's framework on the frameworks page", lambda: next(
            (table for table in ("frameworks", "completed-frameworks")
             if driver.find_elements(By.CSS_SELECTOR, f'#{table} tr[data-framework-id="{long_fw}"]')), None), 20)
        ok(f"the frameworks page lists ui-long's framework {long_fw} (in #{where})")
        shot("ui-frameworks.png")
        if driver.execute_script("return window.__uiTestMarker") != "same page":
            raise Failure("the page was reloaded during the test")

        # -- the apps page (the apps framework runs inside tessera cluster) ----------
        check_apps_page(driver, http, text, go, shot)

        # -- a new master: the page reconnects and rebuilds from its snapshot -------------
        old_agents = set(agents)
        go("#/agents")
        port = http.rsplit(":", 1)[1]
        cluster.stop()
        wait_text("the connection indicator after the master stopped", "#conn", lambda t: t == "reconnecting", 20)
        if not driver.find_element(By.ID, "stale").is_displayed():
            raise Failure("the stale-data banner is not shown while reconnecting")
        ok("#conn says 'reconnecting' (and the stale-data banner shows) once the master is gone")
        cluster = Proc("cluster 2", [binary, "cluster", "--listen", "127.0.0.1:0", "--http", f"127.0.0.1:{port}",
                                     "--agents", "2", "--agent-resources", "cpus:4;mem:8192;disk:20480",
                                     "--work-dir", os.path.join(work, "cluster2")])
        procs.append(cluster)
        if not cluster.wait_line(r"web UI: http://", 60):
            raise Failure(f"a second tessera cluster on 127.0.0.1:{port} did not start:\n" + cluster.tail())
        wait_text("the connection indicator after a new master started", "#conn", lambda t: t == "live", 40)

        def new_rows():
            rows = {r.get_attribute("data-agent-id") for r in driver.find_elements(By.CSS_SELECTOR, "tr[data-agent-id]")}
            return len(rows) == 2 and not rows & old_agents and rows
        rows = wait_for("the agents page to show the new master's agents only", new_rows, 20)
        if driver.execute_script("return window.__uiTestMarker") != "same page":
            raise Failure("the page was reloaded to reconnect")
        ok(f"the page reconnected without a reload and rebuilt from the new SUBSCRIBED: agents {sorted(rows)}")

        # -- credentials: the page asks for a token, then goes on --------------------------
        cluster.stop()
        creds = os.path.join(work, "credentials.json")
        made = subprocess.run([binary, "token", "create", "--file", creds, "--principal", "ops"],
                              capture_output=True, text=True, timeout=30)
        if made.returncode != 0:
            raise Failure(f"tessera token create failed: {made.stderr}")
        token = made.stdout.strip()
        cluster = Proc("cluster 3", [binary, "cluster", "--listen", "127.0.0.1:0", "--http", f"127.0.0.1:{port}",
                                     "--agents", "2", "--agent-resources", "cpus:4;mem:8192;disk:20480",
                                     "--credentials", creds, "--work-dir", os.path.join(work, "cluster3")])
        procs.append(cluster)
        if not cluster.wait_line(r"web UI: http://", 60):
            raise Failure(f"a tessera cluster with --credentials did not start:\n" + cluster.tail())
        wait_for("the token prompt once the API answers 401",
                 lambda: driver.find_element(By.ID, "auth").is_displayed(), 40)
        why = driver.find_element(By.ID, "auth-why").text
        if "credentials are needed" not in why:
            raise Failure(f"the token prompt does not say why: {why!r}")
        ok(f"the page asks for a token when the API answers 401 ({why!r})")
        shot("ui-token.png")
        driver.find_element(By.ID, "auth-token").send_keys(token)
        driver.find_element(By.CSS_SELECTOR, "#auth-form button").click()
        wait_text("the connection indicator after the token was given", "#conn", lambda t: t == "live", 40)
        if driver.find_element(By.ID, "auth").is_displayed():
            raise Failure("the token prompt is still shown after a good token")
        kept = driver.execute_script("return sessionStorage.getItem('tessera.token')")
        if kept != token:
            raise Failure("the token is not kept in sessionStorage")
        wait_for("the agents page to show the third master's agents",
                 lambda: len(driver.find_elements(By.CSS_SELECTOR, "tr[data-agent-id]")) == 2, 20)
        ok("with the token (kept in sessionStorage) the stream is live and the agents are listed")

        # -- the page's own errors ------------------------------------------------------
        # Failed loads are the network's (the stopped master, an agent's log);
        # anything else SEVERE is the page's own error.
        errors = [e for e in driver.get_log("browser")
                  if e.get("level") == "SEVERE" and "Failed to load resource" not in e.get("message", "")]
        if errors:
            raise Failure("the page logged errors:\n" + "\n".join(f"  {e['message']}" for e in errors))
        ok("the page logged no JavaScript error")
        passed = True
    except Exception:
        if driver is not None:
            try:
                path = os.path.join(shots, "ui-failure.png")
                driver.save_screenshot(path)
                say(f"ui_test: the page at the failure: {path}")
                for e in driver.get_log("browser"):
                    say(f"  [browser {e.get('level')}] {e.get('message')}")
            except Exception:  # noqa: BLE001
                pass
        for p in procs:
            say(p.tail())
        raise
    finally:
        if service is not None and service.process is not None:
            browser_pids.update(descendants(service.process.pid))
        if driver is not None:
            try:
                driver.quit()
            except Exception as e:  # noqa: BLE001
                say(f"ui_test: driver.quit(): {e}")
        if service is not None and service.process is not None and service.process.poll() is None:
            service.process.kill()
        for pid, started in browser_pids.items():  # anything of the browser still alive, by pid
            kill_if_same(pid, started)
        for p in reversed(procs):
            p.stop()
        if passed:
            shutil.rmtree(work, ignore_errors=True)
        else:
            say(f"ui_test: work dir kept: {work}")
    say("ui_test: PASSED")


if __name__ == "__main__":
    try:
        main()
    except Failure as e:
        say(f"ui_test: FAILED: {e}")
        sys.exit(1)
    except KeyboardInterrupt:
        say("ui_test: interrupted")
        sys.exit(130)
    except Exception as e:  # noqa: BLE001 - anything unexpected is a failure too
        import traceback
        traceback.print_exc()
        say(f"ui_test: FAILED: unexpected {type(e).__name__}: {e}")
        sys.exit(1)
