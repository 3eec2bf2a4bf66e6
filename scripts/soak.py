"""Soak test: gunicorn with several workers on one SQLite file, concurrent writers and readers.

    .venv/bin/python scripts/soak.py [--seconds 60] [--workers 4] [--writers 8] [--readers 4]

A fresh demo database in a temporary folder; gunicorn on 127.0.0.1 (a free port) only. Each
writer signs in as a demo officer through the real login form (CSRF token included) and records
follow-ups (跟踪服务) on its 载体's projects as fast as the server answers; each reader opens
the project list, project pages and the home page as the leader. At the end the follow-ups in
the database are counted against the writes the server confirmed (302), and the answers and the
server's log are searched for "database is locked" and server errors. Exits non-zero when a row
is lost or made up, or an error showed.

Bounded: at most 600 s and `--max-requests` requests in all; it stops by itself.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import os
import re
import secrets
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DEMO_PASSWORD = "Demo@2026"
OFFICERS = ["officer_qc", "officer_gx", "officer_wy", "officer_mc", "officer_lx", "officer_bw"]
CSRF = re.compile(r'name="csrf_token"(?: type="hidden")? value="([^"]+)"')
PROBLEMS = ("database is locked", "Traceback", "Internal Server Error")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a 302 is an answer to count, not to follow


class Browser:
    """One user's browser: cookies, no automatic redirects."""

    def __init__(self, base: str):
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), NoRedirect()
        )

    def request(self, path: str, data: dict | None = None) -> tuple[int, str, float]:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        started = time.perf_counter()
        try:
            with self.opener.open(self.base + path, data=body, timeout=60) as response:
                status, text = response.status, response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as error:  # 3xx (not followed), 4xx, 5xx
            status, text = error.code, error.read().decode("utf-8", "replace")
        return status, text, time.perf_counter() - started

    def token(self, path: str) -> str:
        status, text, _ = self.request(path)
        match = CSRF.search(text)
        if status != 200 or not match:
            raise RuntimeError(f"no form at {path}: {status}")
        return match.group(1)

    def sign_in(self, username: str) -> None:
        token = self.token("/login")
        data = {"username": username, "password": DEMO_PASSWORD, "csrf_token": token}
        status, _, _ = self.request("/login", data)
        if status != 302:
            raise RuntimeError(f"could not sign in as {username}: {status}")


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.statuses: Counter = Counter()
        self.latencies: dict[str, list[float]] = {"write": [], "read": []}
        self.written: set[str] = set()
        self.problems: Counter = Counter()
        self.samples: list[str] = []

    def add(self, kind: str, status: int, text: str, seconds: float, summary: str = "") -> None:
        with self.lock:
            self.statuses[(kind, status)] += 1
            self.latencies[kind].append(seconds)
            if kind == "write" and status == 302:
                self.written.add(summary)
            for needle in PROBLEMS:
                if needle in text:
                    self.problems[needle] += 1
            if (status >= 500 or (kind == "write" and status != 302)) and len(self.samples) < 5:
                shown = re.findall(r'class="(?:error|flash[^"]*)"[^>]*>([^<]+)', text) or [
                    text[:300]
                ]
                self.samples.append(f"{kind} {status}: {shown}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare(instance: Path, env: dict) -> None:
    flask = [str(BIN / "flask"), "--app", "wsgi"]
    for args in (["db", "upgrade"], ["crm", "demo"]):
        subprocess.run(  # noqa: S603 - our own flask with fixed arguments
            flask + args, cwd=ROOT, env=env, check=True, capture_output=True
        )


def projects_of(db_file: Path) -> dict[str, list[int]]:
    with sqlite3.connect(f"file:{db_file}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT u.username, p.id FROM projects p JOIN users u ON u.carrier_id = p.carrier_id"
            " WHERE u.role = 'OFFICER' AND p.is_deleted = 0"
        ).fetchall()
    found: dict[str, list[int]] = {}
    for username, project_id in rows:
        found.setdefault(username, []).append(project_id)
    return found


def soak(args) -> int:
    instance = Path(tempfile.mkdtemp(prefix="crm-soak-"))
    db_file = instance / "crm.sqlite3"
    env = {k: v for k, v in os.environ.items() if k not in {"CRM_ENV", "FLASK_DEBUG"}}
    env |= {
        "CRM_INSTANCE_PATH": str(instance),
        "DATABASE_URL": f"sqlite:///{db_file}",
        "SECRET_KEY": secrets.token_hex(32),
    }
    server = None
    try:
        print(f"soak: preparing a demo database in {instance}")
        prepare(instance, env)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        log_path = instance / "gunicorn.log"
        log = log_path.open("w")
        server = subprocess.Popen(  # noqa: S603 - our own gunicorn, fixed arguments
            [
                str(BIN / "gunicorn"),
                "--workers",
                str(args.workers),
                "--bind",
                f"127.0.0.1:{port}",
                "--access-logfile",
                "-",
                "--no-control-socket",
                "wsgi:app",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        for _ in range(120):
            try:
                if Browser(base).request("/healthz")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.25)
        else:
            raise RuntimeError("gunicorn did not come up")
        print(f"soak: gunicorn with {args.workers} workers on {base}; {args.seconds} s")

        projects = projects_of(db_file)
        today = datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()
        tally = Tally()
        stop = threading.Event()
        budget = threading.Semaphore(args.max_requests)
        errors: list[str] = []

        def writer(n: int) -> None:
            username = OFFICERS[n % len(OFFICERS)]
            mine = projects[username]
            browser = Browser(base)
            try:
                browser.sign_in(username)
                tokens = {pid: browser.token(f"/projects/{pid}") for pid in mine[:3]}
                i = 0
                while not stop.is_set() and budget.acquire(blocking=False):
                    pid = mine[i % len(tokens)]
                    summary = f"soak-{n}-{i}"
                    data = {
                        "csrf_token": tokens[pid],
                        "kind": "CALL",
                        "happened_on": today,
                        "summary": summary,
                        "next_action": "",
                        "next_action_due": "",
                    }
                    status, text, seconds = browser.request(f"/projects/{pid}/followups", data)
                    tally.add("write", status, text, seconds, summary)
                    i += 1
            except Exception as exc:  # reported at the end
                errors.append(f"writer {n}: {exc!r}")

        def reader(n: int) -> None:
            browser = Browser(base)
            pages = ["/", "/projects/", *(f"/projects/{p}" for p in projects[OFFICERS[n % 6]][:3])]
            try:
                browser.sign_in("leader")
                i = 0
                while not stop.is_set() and budget.acquire(blocking=False):
                    status, text, seconds = browser.request(pages[i % len(pages)])
                    tally.add("read", status, text, seconds)
                    i += 1
            except Exception as exc:
                errors.append(f"reader {n}: {exc!r}")

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(args.writers)]
        threads += [threading.Thread(target=reader, args=(n,)) for n in range(args.readers)]
        started = time.monotonic()
        for t in threads:
            t.start()
        stop.wait(args.seconds)
        stop.set()
        for t in threads:
            t.join(timeout=120)
        elapsed = time.monotonic() - started

        with sqlite3.connect(f"file:{db_file}?mode=ro", uri=True) as conn:
            stored = {
                row[0]
                for row in conn.execute("SELECT summary FROM followups WHERE summary LIKE 'soak-%'")
            }
        server.terminate()
        server.wait(timeout=60)
        log.close()
        server_log = log_path.read_text(errors="replace")
        log_problems = {needle: server_log.count(needle) for needle in PROBLEMS}

        writes = sum(c for (kind, _), c in tally.statuses.items() if kind == "write")
        reads = sum(c for (kind, _), c in tally.statuses.items() if kind == "read")
        ok_writes = len(tally.written)
        lost = tally.written - stored
        phantom = stored - tally.written

        def pct(kind: str, q: float) -> str:
            values = sorted(tally.latencies[kind])
            if not values:
                return "-"
            return f"{values[min(len(values) - 1, int(q * len(values)))] * 1000:.0f} ms"

        print(
            f"soak: {elapsed:.0f} s, {writes + reads} requests ({(writes + reads) / elapsed:.0f}/s)"
        )
        print(f"  writes: {writes}, confirmed {ok_writes}; statuses {dict(_by(tally, 'write'))}")
        print(f"  reads:  {reads}; statuses {dict(_by(tally, 'read'))}")
        print(
            "  latency write p50 {} p95 {} · read p50 {} p95 {}".format(
                pct("write", 0.5), pct("write", 0.95), pct("read", 0.5), pct("read", 0.95)
            )
        )
        if tally.latencies["write"]:
            print(f"  mean write {statistics.mean(tally.latencies['write']) * 1000:.0f} ms")
        print(f"  follow-ups stored: {len(stored)}; lost {len(lost)}; unconfirmed {len(phantom)}")
        print(f"  in answers: {dict(tally.problems) or 'no problem'}")
        print(f"  in the server log: {log_problems}")
        for sample in tally.samples:
            print("  sample:", sample)
        for error in errors:
            print("  error:", error)
        failed = (
            lost
            or phantom
            or errors
            or tally.problems
            or any(log_problems.values())
            or any(status >= 500 for (_, status) in tally.statuses)
            or ok_writes == 0
        )
        print("soak: FAILED" if failed else "soak: passed")
        return 1 if failed else 0
    finally:
        if server is not None and server.poll() is None:
            server.terminate()
            server.wait(timeout=60)
        if args.keep:
            print(f"soak: kept {instance}")
        else:
            shutil.rmtree(instance, ignore_errors=True)


def _by(tally: Tally, kind: str) -> Counter:
    return Counter({status: c for (k, status), c in tally.statuses.items() if k == kind})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60, help="duration (at most 600)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--writers", type=int, default=8, help="threads recording follow-ups")
    parser.add_argument("--readers", type=int, default=4, help="threads reading pages")
    parser.add_argument("--max-requests", type=int, default=100_000, help="requests in all")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    args.seconds = max(1, min(args.seconds, 600))
    args.max_requests = max(1, min(args.max_requests, 1_000_000))
    return soak(args)


if __name__ == "__main__":
    sys.exit(main())
