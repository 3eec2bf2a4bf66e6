"""End-to-end fixtures: a real server on 127.0.0.1 with a fresh database, and Debian's Chromium
driven by Playwright (never a browser Playwright downloads itself).

The server is gunicorn on a free port, with a SQLite database in a temporary folder made by
`flask db upgrade`, `flask crm seed` and `flask crm create-user` (CRM_PASSWORD). Its idle
timeout is one minute (CRM_SESSION_IDLE_MINUTES=1): the timeout test waits past it.

Part of `make test` (`make e2e` runs them alone). Skipped, with the reason, when
/usr/bin/chromium (Debian's package `chromium`, which scripts/setup.sh installs as root) or
Playwright is missing, and in the PostgreSQL pass of .ci/run (CRM_TEST_DATABASE_URL set):
the server's database is always SQLite, so that pass would repeat the same run.

Screenshots of the main pages go to test-artifacts/screenshots/<date-time>/ (gitignored);
a failing test also leaves there each open page's screenshot and HTML (FAILED-*).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("CRM_E2E_CHROMIUM", "/usr/bin/chromium"))
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PASSWORD = "E2e@Journey2026"
IDLE_MINUTES = 1
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# username, role, --carrier/--cluster, display name
USERS = [
    ("e2e_officer", "officer", ("--carrier", "谯城区"), "周明"),
    ("e2e_other", "officer", ("--carrier", "涡阳县"), "钱亮"),
    ("e2e_taskforce", "taskforce", ("--cluster", "现代中医药"), "孙芳"),
    ("e2e_leader", "leader", (), "郑国强"),
]


def pytest_configure(config):
    config.addinivalue_line("markers", "e2e: browser tests in Chromium against a live server")


def pytest_collection_modifyitems(config, items):
    reason = None
    if os.environ.get("CRM_TEST_DATABASE_URL") and not os.environ.get("CRM_E2E_ALWAYS"):
        # The server always runs on a SQLite database of its own, so the PostgreSQL pass of
        # .ci/run would only repeat the SQLite pass's browser run.
        reason = "browser tests run in the SQLite pass only (CRM_TEST_DATABASE_URL is set)"
    elif not CHROMIUM.exists():
        reason = (
            f"{CHROMIUM} not found: install Debian's package chromium (scripts/setup.sh as root)"
        )
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            reason = "playwright is not installed (pip install -r requirements-dev.txt)"
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.e2e)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(autouse=True)
def db_session():
    """The unit tests' per-test transaction is not for these: the server has its own database."""
    yield None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server_env(tmp_path_factory) -> dict[str, str]:
    """The environment of the server: its instance folder and a fresh database, migrated,
    seeded and with the USERS. Tests that need more records run `in_app` with it."""
    instance = tmp_path_factory.mktemp("e2e-instance")
    env = {
        **os.environ,
        "CRM_INSTANCE_PATH": str(instance),
        "DATABASE_URL": f"sqlite:///{instance / 'crm.sqlite3'}",
        "SECRET_KEY": "e2e-" + os.urandom(16).hex(),
        "CRM_SESSION_IDLE_MINUTES": str(IDLE_MINUTES),
        "CRM_PASSWORD": PASSWORD,
        "CRM_ENV": "",
    }
    env.pop("CRM_TEST_DATABASE_URL", None)
    flask = [str(BIN / "flask"), "--app", "wsgi"]

    def run(*args):
        subprocess.run([*flask, *args], cwd=ROOT, env=env, check=True, capture_output=True)

    run("db", "upgrade")
    run("crm", "seed")
    for username, role, scope, name in USERS:
        run("crm", "create-user", username, "--role", role, *scope, "--name", name)
    return env


def in_app(env: dict[str, str], function: str, *args: str) -> str:
    """Run `function` ("module:name", called with the string `args`) in an app context on
    the server's database, in a process of its own; returns what it printed."""
    module, name = function.split(":")
    code = (
        "import sys\n"
        "from wsgi import app\n"
        f"from {module} import {name}\n"
        "with app.app_context():\n"
        f"    {name}(*sys.argv[1:])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if done.returncode:
        raise RuntimeError(f"{function} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


@pytest.fixture(scope="session")
def live_server(server_env):
    env = server_env
    instance = Path(env["CRM_INSTANCE_PATH"])
    port = _free_port()
    log = open(instance / "server.log", "wb")  # noqa: SIM115
    server = subprocess.Popen(
        [
            str(BIN / "gunicorn"),
            "--workers",
            "2",
            "--bind",
            f"127.0.0.1:{port}",
            "--no-control-socket",
            "wsgi:app",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                with urllib.request.urlopen(url + "/", timeout=1):
                    break
            except urllib.error.HTTPError:
                break  # it answers
            except OSError:
                if server.poll() is not None:
                    raise RuntimeError((instance / "server.log").read_text()) from None
                time.sleep(0.1)
        else:
            raise RuntimeError(f"the server did not answer on {url}")
        yield url
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def screenshot_dir():
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = ROOT / "test-artifacts" / "screenshots" / stamp
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, "rep_" + report.when, report)
    return report


@pytest.fixture
def new_page(request, browser, live_server, screenshot_dir):
    """new_page(width=1366, height=768) -> a page in a fresh context (no cookies). When the
    test fails, each page's screenshot and HTML are kept in the screenshots folder."""
    contexts = []

    def make(width=1366, height=768):
        context = browser.new_context(
            base_url=live_server,
            viewport={"width": width, "height": height},
            accept_downloads=True,
            locale="zh-CN",
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield make
    report = getattr(request.node, "rep_call", None)
    for i, context in enumerate(contexts):
        if report is not None and report.failed:
            for j, page in enumerate(context.pages):
                stem = screenshot_dir / f"FAILED-{request.node.name}-{i}-{j}"
                page.screenshot(path=f"{stem}.png", full_page=True)
                Path(f"{stem}.html").write_text(page.content(), encoding="utf-8")
        context.close()


def login(page, username, password=PASSWORD):
    page.goto("/")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(password)
    page.get_by_role("button", name="登录").click()
    page.wait_for_load_state()
    return page


def have_pdftotext() -> bool:
    return shutil.which("pdftotext") is not None
