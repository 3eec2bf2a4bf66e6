"""Running the job queue in tests: what huey's consumer does, one step at a time.

The suite's app keeps the queue in memory (TestingConfig.QUEUE_URL = "memory://"): what a
request or a job enqueues waits there until a test runs it with `run_pending` (the worker's
loop) or `run_retries` (its scheduler, with the clock moved to each retry's time).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from huey.storage import MemoryStorage

from crm.extensions import db
from crm.jobs.queue import QUEUE_NAME, huey


@pytest.fixture
def queue():
    """An empty in-memory queue for the test."""
    huey.storage = MemoryStorage(QUEUE_NAME)
    yield huey
    huey.storage = MemoryStorage(QUEUE_NAME)


def run_pending() -> int:
    """Commit the test's data (jobs commit and roll back their own work), then run every task
    waiting on the queue, as a worker would. Returns how many ran."""
    db.session.commit()
    ran = 0
    while (task := huey.dequeue()) is not None:
        huey.execute(task)  # huey records a failure and schedules the retry; it never raises
        ran += 1
    return ran


def run_retries() -> list[timedelta]:
    """Run the scheduled tasks (retries) one at a time, each at its own eta, until none is
    left. Returns, for each run that failed and was scheduled again, the delay of its retry
    (from the moment it ran to the new eta)."""
    db.session.commit()
    delays = []
    while scheduled := huey.scheduled():
        task = min(scheduled, key=lambda t: t.eta)
        for ready in huey.read_schedule(task.eta):
            ran_at = datetime.now(UTC).replace(tzinfo=None)
            huey.execute(ready, ready.eta)
            delays += [t.eta - ran_at for t in huey.scheduled() if t.id == ready.id]
    return delays


def free_port() -> int:
    """A port on 127.0.0.1 nothing listens on (until someone takes it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class MailServer:
    """A real SMTP server on 127.0.0.1 (aiosmtpd) keeping what it receives."""

    port: int
    received: list = field(default_factory=list)  # aiosmtpd envelopes

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd's name
        self.received.append(envelope)
        return "250 Message accepted for delivery"

    def messages(self):
        import email
        from email import policy

        return [email.message_from_bytes(e.content, policy=policy.default) for e in self.received]


@pytest.fixture
def smtp_server(app, monkeypatch):
    """An SMTP server the app's mail settings point at, for the test's length."""
    from aiosmtpd.controller import Controller

    server = MailServer(free_port())
    controller = Controller(server, hostname="127.0.0.1", port=server.port)
    controller.start()
    mail_settings(app, monkeypatch, server.port)
    try:
        yield server
    finally:
        controller.stop()


def mail_settings(app, monkeypatch, port: int) -> None:
    """Mail on, to 127.0.0.1:`port`, plain SMTP (the test server speaks no TLS)."""
    monkeypatch.setitem(app.config, "SMTP_HOST", "127.0.0.1")
    monkeypatch.setitem(app.config, "SMTP_PORT", port)
    monkeypatch.setitem(app.config, "SMTP_SECURITY", "none")
    monkeypatch.setitem(app.config, "SMTP_TIMEOUT_SECONDS", 5)
    monkeypatch.setitem(app.config, "MAIL_FROM", "双招双引项目管理 <crm@bozhou.example>")
    monkeypatch.setitem(app.config, "BASE_URL", "https://crm.bozhou.example")
