"""E-mail: addresses checked by email-validator, mail queued after commit and sent by a job to a
real SMTP server on 127.0.0.1 (aiosmtpd), in Chinese, once per key; an unreachable server
makes the job retry with back-off and fail visibly, while no page waits on it."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
import sqlalchemy as sa

from crm.audit.models import AuditEntry
from crm.auth.models import Role
from crm.core import utcnow
from crm.extensions import db
from crm.jobs import runs
from crm.jobs.mail import queue_mail, send_mail
from crm.jobs.models import JobRun, JobStatus, SentMail
from crm.jobs.queue import huey
from tests import factories
from tests.queue_helpers import free_port, mail_settings, run_pending, run_retries

SUBJECT = "项目“甲区光伏组件项目”已通过集体决策"
BODY = "张三，您好：\n\n评估已通过。请在三日内安排签约准备。\n——双招双引项目管理系统"


def _user(**kw):
    return factories.user(Role.OFFICER, factories.carrier(), email="zhangsan@bozhou.example", **kw)


def _runs() -> list[JobRun]:
    return list(db.session.scalars(sa.select(JobRun).order_by(JobRun.id)))


# ---- sending ----


def test_a_queued_mail_arrives_with_its_chinese_subject_and_body(smtp_server, queue):
    user = _user()
    assert queue_mail(user, SUBJECT, BODY, key="decision:1")
    assert huey.pending_count() == 0  # nothing before the commit
    assert run_pending() == 1  # commits, then runs what the commit queued

    (message,) = smtp_server.messages()
    assert message["Subject"] == SUBJECT
    assert message["To"] == "zhangsan@bozhou.example"
    assert message["From"].addresses[0].display_name == "双招双引项目管理"
    assert message.get_content_type() == "text/plain"
    assert message.get_content().replace("\r\n", "\n").strip() == BODY  # CRLF on the wire
    raw = smtp_server.received[0].content
    assert SUBJECT.encode() not in raw  # encoded on the wire (RFC 2047), not raw bytes
    assert smtp_server.received[0].rcpt_tos == ["zhangsan@bozhou.example"]

    (run,) = _runs()
    assert (run.name, run.status, run.attempt, run.error) == (
        "send_mail",
        JobStatus.SUCCEEDED,
        1,
        "",
    )
    assert "decision:1" in run.summary and run.finished_at is not None


def test_a_rolled_back_transaction_queues_nothing(smtp_server, queue):
    user = _user()
    db.session.commit()
    queue_mail(user, SUBJECT, BODY, key="decision:2")
    db.session.rollback()
    assert run_pending() == 0
    assert smtp_server.received == []


def test_a_key_is_sent_once_however_often_its_job_runs(smtp_server, queue):
    user = _user()
    db.session.commit()
    for _ in range(3):
        send_mail(user.id, SUBJECT, BODY, "digest:7:2026-12-08")
    assert run_pending() == 3
    assert len(smtp_server.received) == 1
    assert [r.status for r in _runs()] == [JobStatus.SUCCEEDED] * 3
    sent = db.session.scalars(sa.select(SentMail)).all()
    assert [(m.key, m.address, m.subject) for m in sent] == [
        ("digest:7:2026-12-08", "zhangsan@bozhou.example", SUBJECT)
    ]


def test_no_mail_when_mail_is_off_or_the_user_cannot_receive(smtp_server, queue, app, monkeypatch):
    no_address = factories.user(Role.LEADER)
    disabled = _user(is_active=False)
    assert not queue_mail(no_address, SUBJECT, BODY, key="a")
    assert not queue_mail(disabled, SUBJECT, BODY, key="b")
    removed_later = _user()
    assert queue_mail(removed_later, SUBJECT, BODY, key="c")
    db.session.commit()
    removed_later.email = None  # the address removed before the job ran: nothing sent
    assert run_pending() == 1
    monkeypatch.setitem(app.config, "SMTP_HOST", "")
    assert not queue_mail(_user(), SUBJECT, BODY, key="d")
    assert run_pending() == 0
    assert smtp_server.received == []


# ---- an unreachable server ----


def test_an_unreachable_server_is_retried_with_back_off_then_shown_as_failed(
    app, queue, monkeypatch, login
):
    mail_settings(app, monkeypatch, free_port())  # nothing listens there
    user = _user()
    client = login(user)
    # The request saves and answers without touching SMTP: the mail only waits on the queue.
    response = client.post("/account/email", data={"email": "li.si@bozhou.example"})
    assert response.status_code == 302
    assert huey.pending_count() == 1 and _runs() == []

    before = utcnow().replace(tzinfo=None)
    run_pending()
    (run,) = _runs()
    assert (run.status, run.attempt) == (JobStatus.RETRYING, 1)
    assert "ConnectionRefusedError" in run.error
    (retry,) = huey.scheduled()
    assert timedelta(seconds=59) < retry.eta - before < timedelta(seconds=70)

    delays = [retry.eta - before, *run_retries()]
    assert [round(d.total_seconds() / 60) for d in delays] == [1, 5, 25]
    db.session.refresh(run)
    assert (run.status, run.attempt) == (JobStatus.FAILED, 4)
    assert "ConnectionRefusedError" in run.error and huey.scheduled() == []
    assert runs.count_failed_jobs() == 1 and runs.failed_jobs() == [run]

    page = login(factories.user(Role.ADMIN)).get("/admin/jobs?status=FAILED")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "<td>发送邮件</td>" in text and "失败" in text and "ConnectionRefusedError" in text


def test_a_retry_that_reaches_the_server_sends_the_mail_once(app, queue, monkeypatch):
    from aiosmtpd.controller import Controller

    from tests.queue_helpers import MailServer

    server = MailServer(free_port())
    mail_settings(app, monkeypatch, server.port)  # the server is not started yet
    send_mail(_user().id, SUBJECT, BODY, "k")
    run_pending()
    assert _runs()[0].status is JobStatus.RETRYING
    controller = Controller(server, hostname="127.0.0.1", port=server.port)
    controller.start()
    try:
        assert run_retries() == []  # succeeded: nothing scheduled again
    finally:
        controller.stop()
    (run,) = _runs()
    assert (run.status, run.attempt) == (JobStatus.SUCCEEDED, 2)
    assert "ConnectionRefusedError" in run.error  # the failure that was retried stays visible
    assert len(server.received) == 1


# ---- Redis ----


def test_a_mail_job_runs_through_redis(smtp_server, queue):
    import redis
    from huey.storage import RedisStorage

    url = os.environ.get("CRM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    storage = RedisStorage(f"crm-test-{os.getpid()}", url=url)
    try:
        storage.conn.ping()
    except redis.ConnectionError:
        if os.environ.get("CI"):
            pytest.fail(f"Redis is not answering at {url} (.ci/run starts it)")
        pytest.skip(f"no Redis at {url}")
    huey.storage = storage
    try:
        storage.flush_all()
        queue_mail(_user(), SUBJECT, BODY, key="redis:1")
        db.session.commit()
        assert storage.queue_size() == 1  # in Redis, not in this process
        assert run_pending() == 1
    finally:
        storage.flush_all()
    (message,) = smtp_server.messages()
    assert message["Subject"] == SUBJECT
    assert _runs()[0].status is JobStatus.SUCCEEDED


# ---- addresses ----


def test_a_user_sets_and_removes_the_own_address(login, queue, smtp_server):
    user = _user()
    client = login(user)
    page = client.get("/")
    assert 'href="/account/email"' in page.get_data(as_text=True)

    response = client.post("/account/email", data={"email": "  Wang.Wu@BoZhou.Example "})
    assert response.status_code == 302
    db.session.refresh(user)
    assert user.email == "Wang.Wu@bozhou.example"  # the domain normalised by email-validator
    entry = db.session.scalars(
        sa.select(AuditEntry).where(AuditEntry.action == "email_changed")
    ).one()
    assert entry.changes == {"email": ["zhangsan@bozhou.example", "Wang.Wu@bozhou.example"]}
    run_pending()
    (message,) = smtp_server.messages()
    assert message["Subject"] == "电子邮箱设置成功" and message["To"] == "Wang.Wu@bozhou.example"

    assert client.post("/account/email", data={"email": ""}).status_code == 302
    db.session.refresh(user)
    assert user.email is None


@pytest.mark.parametrize(
    "address",
    ["zhangsan", "zhangsan@", "张三@", "a@b", "<b>x</b>@bozhou.example", "x" * 250 + "@qq.com"],
)
def test_bad_addresses_are_refused_at_the_field(login, address):
    user = _user()
    response = login(user).post("/account/email", data={"email": address})
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert "电子邮箱" in text and ("有效的电子邮箱地址" in text or "不能超过 254" in text)
    assert "<b>x</b>" not in text
    db.session.refresh(user)
    assert user.email == "zhangsan@bozhou.example"


def test_the_admin_sets_a_users_address(world, login):
    client = login(world.admin)
    url = f"/admin/users/{world.officer_a.id}/edit"
    form = {
        "display_name": world.officer_a.display_name,
        "role": "OFFICER",
        "carrier_id": world.carrier_a.id,
        "cluster_id": 0,
        "is_active": "y",
    }
    assert client.post(url, data=form | {"email": "not an address"}).status_code == 400
    assert client.post(url, data=form | {"email": "officer.a@bozhou.example"}).status_code == 302
    db.session.refresh(world.officer_a)
    assert world.officer_a.email == "officer.a@bozhou.example"
    assert "officer.a@bozhou.example" in client.get(url).get_data(as_text=True)


def test_notifications_get_e_mail_copies_for_those_with_an_address(world, queue, smtp_server):
    """`notify` queues the copies (after the commit): one per recipient with an address."""
    from crm.notifications.models import NotificationKind
    from crm.notifications.services import notify

    world.officer_a.email = "officer.a@bozhou.example"  # world.taskforce_x has no address
    made = notify(
        NotificationKind.DECISION_RECORDED,
        [world.officer_a, world.taskforce_x, world.officer_b],  # officer_b cannot read it
        project=world.project_a,
        actor=world.leader,
        text="甲区光伏组件项目的评估已通过集体决策",
        url=f"/projects/{world.project_a.id}",
    )
    assert len(made) == 2  # officer_a and taskforce_x
    run_pending()
    (message,) = smtp_server.messages()
    assert message["To"] == "officer.a@bozhou.example"
    assert message["Subject"] == "【通知】集体决策"
    body = message.get_content()
    assert "甲区光伏组件项目的评估已通过集体决策" in body
    assert f"https://crm.bozhou.example/projects/{world.project_a.id}" in body


def test_simultaneous_runs_of_one_key_send_one_mail(app, tmp_path, queue, smtp_server):
    """Runs of the same key in worker threads at the same moment, each with its own session,
    on committed data (SQLite, or PostgreSQL with CRM_TEST_DATABASE_URL): one mail goes out,
    every run succeeds, none is left to retry."""
    import threading

    from tests.test_evaluation import committed_database, sessions_on

    threads = 8
    with committed_database(tmp_path) as engine, sessions_on(engine) as session:
        user = _user()
        session.commit()
        tasks = [send_mail.s(user.id, SUBJECT, BODY, "race:1") for _ in range(threads)]
        ready = threading.Barrier(threads, timeout=60)
        errors: list[str] = []

        def worker(task) -> None:
            try:
                with app.app_context():
                    ready.wait()
                    huey.execute(task)
            except BaseException as exc:  # reported in the test's thread
                errors.append(repr(exc))
            finally:
                db.session.remove()

        running = [threading.Thread(target=worker, args=(task,)) for task in tasks]
        for thread in running:
            thread.start()
        for thread in running:
            thread.join(timeout=120)
        assert errors == []
        assert len(smtp_server.received) == 1
        session.rollback()  # a fresh snapshot: what the threads committed
        statuses = session.scalars(sa.select(JobRun.status)).all()
        assert statuses == [JobStatus.SUCCEEDED] * threads
        assert session.scalars(sa.select(SentMail.key)).all() == ["race:1"]
        assert huey.scheduled() == []
