"""The job queue: runs recorded and retried, the worker, the periodic jobs and their times in
Asia/Shanghai, the daily digest, the clean-ups and the admin's 后台任务 page."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from huey.storage import MemoryStorage, RedisStorage, SqliteStorage

from config import TestingConfig
from crm import create_app
from crm.auth.models import Role, User
from crm.core import utcnow
from crm.extensions import db
from crm.jobs import runs
from crm.jobs.digest import due_items, send_daily_digest
from crm.jobs.models import JobRun, JobStatus, SentMail
from crm.jobs.periodic import clean_files, prune_job_runs
from crm.jobs.queue import huey, job, storage_for
from crm.projects.stages import Status
from tests import factories
from tests.queue_helpers import run_pending, run_retries

ROOT = Path(__file__).resolve().parent.parent


@job()
def rename_then_fail(user_id: int, name: str) -> None:
    """A job that changes a user, then fails: its change must not be kept."""
    user = db.session.get(User, user_id)
    user.display_name = name
    db.session.flush()
    raise ValueError("第三方接口无响应")


def _runs() -> list[JobRun]:
    return list(db.session.scalars(sa.select(JobRun).order_by(JobRun.id)))


# ---- runs, retries, failures ----


def test_a_failing_job_keeps_its_record_but_none_of_its_work(queue):
    user = factories.user(Role.LEADER, display_name="原名")
    rename_then_fail(user.id, "改名")
    run_pending()
    run_retries()
    db.session.refresh(user)
    assert user.display_name == "原名"
    (run,) = _runs()
    assert (run.name, run.status, run.attempt) == ("rename_then_fail", JobStatus.FAILED, 4)
    assert run.error == "ValueError: 第三方接口无响应"
    assert run.summary == f"{user.id}, '改名'"


def test_an_error_text_is_bounded(queue):
    user = factories.user(Role.LEADER)
    rename_then_fail(user.id, "长" * 5000)
    run_pending()
    (run,) = _runs()
    assert run.status is JobStatus.RETRYING
    assert len(run.summary) == 200 and len(run.error) <= 2000


def test_failed_jobs_for_the_admins_inbox_are_the_last_weeks(queue):
    now = utcnow()
    for days, status in [(1, JobStatus.FAILED), (2, JobStatus.SUCCEEDED), (9, JobStatus.FAILED)]:
        db.session.add(
            JobRun(
                task_id=f"t{days}",
                name="send_mail",
                status=status,
                started_at=now - timedelta(days=days),
            )
        )
    db.session.flush()
    assert runs.count_failed_jobs() == 1
    assert [r.task_id for r in runs.failed_jobs(5)] == ["t1"]


def test_pruning_removes_old_finished_runs_and_mail_keys(queue, app):
    now = utcnow()
    old, recent = now - timedelta(days=31), now - timedelta(days=29)
    db.session.add_all(
        [
            JobRun(
                task_id="old", name="a", status=JobStatus.FAILED, started_at=old, finished_at=old
            ),
            JobRun(
                task_id="recent",
                name="a",
                status=JobStatus.SUCCEEDED,
                started_at=recent,
                finished_at=recent,
            ),
            JobRun(task_id="running", name="a", status=JobStatus.RUNNING, started_at=old),
            SentMail(key="old", address="a@b.example", subject="s", sent_at=old),
            SentMail(key="recent", address="a@b.example", subject="s", sent_at=recent),
        ]
    )
    prune_job_runs()
    run_pending()
    left = {r.task_id for r in _runs()}
    assert {"recent", "running"} <= left and "old" not in left
    assert db.session.scalars(sa.select(SentMail.key)).all() == ["recent"]


def test_clean_files_runs_the_file_stores_clean_up(queue, app, monkeypatch, tmp_path):
    monkeypatch.setitem(app.config, "UPLOAD_FOLDER", str(tmp_path))
    orphan = tmp_path / (".tmp-" + "0" * 32)  # an upload whose process died before its commit
    orphan.write_bytes(b"%PDF-1.4")
    young = tmp_path / (".tmp-" + "1" * 32)
    young.write_bytes(b"%PDF-1.4")
    day_ago = time.time() - 25 * 3600
    os.utime(orphan, (day_ago, day_ago))
    clean_files()
    run_pending()
    assert not orphan.exists() and young.exists()
    assert _runs()[0].status is JobStatus.SUCCEEDED


# ---- the schedule ----


def _periodic_at(utc: datetime) -> set[str]:
    """The periodic jobs huey's scheduler enqueues at `utc` (it asks in UTC: utc=True)."""
    return {type(task).__name__ for task in huey.read_periodic(utc)}


def test_the_digest_fires_at_eight_in_shanghai():
    assert huey.utc
    assert "send_daily_digest" in _periodic_at(datetime(2026, 12, 8, 0, 0))  # 08:00 in 亳州
    assert "send_daily_digest" not in _periodic_at(datetime(2026, 12, 8, 8, 0))  # 16:00 there
    assert "send_daily_digest" not in _periodic_at(datetime(2026, 12, 8, 0, 1))
    assert _periodic_at(datetime(2026, 12, 7, 19, 30)) == {"clean_files"}  # 03:30 in 亳州
    assert _periodic_at(datetime(2026, 12, 7, 19, 45)) == {"prune_job_runs"}


# ---- the daily digest ----


@pytest.fixture
def due(world):
    """Next actions around today on the world's projects and two more (each its officer's 下一步
    task), and a task of the task force due today."""
    from crm.tasks.next_actions import sync_next_action_tasks
    from crm.tasks.services import create_task

    today = factories.today()
    w = world
    w.project_a.next_action, w.project_a.next_action_due = "上门拜访董事长", today
    w.project_b.next_action, w.project_b.next_action_due = "报送选址方案", today - timedelta(days=3)
    other_officer = factories.user(Role.OFFICER, w.carrier_a)
    colleague = factories.project(w.carrier_a, w.cluster_x, other_officer, name="同事的项目")
    colleague.next_action, colleague.next_action_due = "回访", today
    on_hold = factories.project(
        w.carrier_a, w.cluster_x, w.officer_a, name="暂缓的项目", status=Status.ON_HOLD
    )
    on_hold.next_action, on_hold.next_action_due = "暂缓中", today - timedelta(days=1)
    later = factories.project(w.carrier_a, w.cluster_x, w.officer_a, name="下周的项目")
    later.next_action, later.next_action_due = "准备签约", today + timedelta(days=1)
    db.session.flush()
    sync_next_action_tasks(
        None, [p.id for p in (w.project_a, w.project_b, colleague, on_hold, later)]
    )
    create_task(
        w.officer_a,
        w.project_a,
        {"title": "审核尽调材料", "due_on": today, "assignee": w.taskforce_x},
    )
    db.session.flush()
    return w


def _names(user, day=None):
    return [item.project for item in due_items(user, day or factories.today())]


def test_due_items_are_the_users_own_tasks(due):
    assert _names(due.officer_a) == ["甲区光伏组件项目"]  # its own: not a colleague's, not 暂缓
    assert _names(due.officer_b) == ["乙县中药饮片项目"]
    assert _names(due.taskforce_x) == ["甲区光伏组件项目"]  # the task it was given
    assert _names(due.taskforce_y) == [] and _names(due.leader) == []
    tomorrow = factories.today() + timedelta(days=1)
    assert _names(due.officer_a, tomorrow) == ["甲区光伏组件项目", "下周的项目"]
    (item,) = due_items(due.officer_b, factories.today())
    assert item.overdue_on(factories.today()) and item.path.startswith("/tasks/")


def test_the_digest_mails_each_user_with_something_due_once(due, queue, smtp_server):
    due.officer_a.email = "officer.a@bozhou.example"
    due.officer_b.email = "officer.b@bozhou.example"
    due.taskforce_x.email = "tf.x@bozhou.example"
    due.taskforce_y.email = "tf.y@bozhou.example"  # nothing due
    due.admin.email = "admin@bozhou.example"
    due.admin.is_active = False  # disabled: no mail
    nothing_due = factories.user(Role.OFFICER, factories.carrier(), email="idle@bozhou.example")
    for _ in range(2):  # the digest run twice the same day (retried): each mail once
        send_daily_digest()
        run_pending()  # the digest, which queues the mails after its commit
        run_pending()  # the mails
    by_address = {m["To"]: m for m in smtp_server.messages()}
    assert sorted(by_address) == [
        "officer.a@bozhou.example",
        "officer.b@bozhou.example",
        "tf.x@bozhou.example",
    ]
    today = factories.today()
    mail_a = by_address["officer.a@bozhou.example"]
    assert mail_a["Subject"] == f"每日待办：今天到期 1 项（{today:%Y年%m月%d日}）"
    body_a = mail_a.get_content()
    assert "【甲区光伏组件项目】下一步：上门拜访董事长（今天到期）" in body_a
    assert "https://crm.bozhou.example/tasks/" in body_a
    assert "已逾期" not in body_a and "同事的项目" not in body_a
    body_b = by_address["officer.b@bozhou.example"].get_content()
    assert "已逾期：" in body_b and "报送选址方案（已逾期 3 天" in body_b
    keys = set(db.session.scalars(sa.select(SentMail.key)))
    assert f"digest:{due.officer_a.id}:{today.isoformat()}" in keys
    assert nothing_due.id not in {m.user_id for m in db.session.scalars(sa.select(SentMail))}


def test_no_digest_when_mail_is_off(due, queue):
    due.officer_a.email = "officer.a@bozhou.example"
    send_daily_digest()
    run_pending()
    assert run_pending() == 0  # no mail job was queued
    assert _runs()[0].status is JobStatus.SUCCEEDED


# ---- the admin's page ----


def test_the_jobs_page_lists_runs_newest_first_and_filters_by_status(world, login):
    now = utcnow()
    for i, status in enumerate([JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.RETRYING]):
        db.session.add(
            JobRun(
                task_id=f"t{i}",
                name=f"job_{i}",
                status=status,
                error="SMTPServerDisconnected: <script>x</script>" if i else "",
                started_at=now - timedelta(minutes=10 - i),
            )
        )
    db.session.flush()
    client = login(world.admin)
    text = client.get("/admin/jobs").get_data(as_text=True)
    assert text.index("job_2") < text.index("job_1") < text.index("job_0")
    assert "&lt;script&gt;" in text and "<script>x" not in text
    assert 'href="/admin/jobs"' in client.get("/admin/users").get_data(as_text=True)  # navigation
    failed = client.get("/admin/jobs?status=FAILED").get_data(as_text=True)
    assert "job_1" in failed and "job_0" not in failed and "job_2" not in failed
    assert client.get("/admin/jobs?status=NOPE&page=x").status_code == 200  # all, first page


def test_the_jobs_page_says_when_there_is_nothing(world, login):
    client = login(world.admin)
    assert "还没有后台任务运行过" in client.get("/admin/jobs").get_data(as_text=True)
    assert "没有状态为“失败”的后台任务" in client.get("/admin/jobs?status=FAILED").get_data(
        as_text=True
    )


def test_the_jobs_page_shows_an_unreachable_queue_instead_of_failing(world, login, queue):
    huey.storage = RedisStorage("crm-test", url="redis://127.0.0.1:1/0")  # nothing listens
    response = login(world.admin).get("/admin/jobs")
    assert response.status_code == 200
    assert "无法读取" in response.get_data(as_text=True)


# ---- configuration ----


def test_the_queue_url_chooses_the_storage(tmp_path):
    sqlite = storage_for("", str(tmp_path))
    assert isinstance(sqlite, SqliteStorage) and sqlite.filename == str(tmp_path / "queue.sqlite3")
    assert (tmp_path / "queue.sqlite3").stat().st_mode & 0o777 == 0o600
    assert isinstance(storage_for("redis://127.0.0.1:6379/0", str(tmp_path)), RedisStorage)
    assert isinstance(storage_for("memory://", str(tmp_path)), MemoryStorage)
    with pytest.raises(RuntimeError, match="CRM_QUEUE_URL"):
        storage_for("amqp://somewhere", str(tmp_path))


def test_an_unknown_smtp_security_stops_the_app_from_starting():
    class Config(TestingConfig):
        SMTP_SECURITY = "tls1.0"

    with pytest.raises(RuntimeError, match="CRM_SMTP_SECURITY"):
        create_app(Config)
    create_app(TestingConfig)  # the queue bound to a fresh app again


# ---- the worker ----


def test_the_worker_runs_what_the_app_queued(tmp_path):
    """`flask crm worker` in a process of its own, on the embedded SQLite queue of an instance
    folder: a job the app put there runs, and Ctrl-C (SIGINT) stops the worker cleanly."""
    env = os.environ | {
        "CRM_INSTANCE_PATH": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'crm.sqlite3'}",
        "CRM_QUEUE_URL": "",
        "CRM_ENV": "",
    }
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    subprocess.run([*flask, "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True)
    storage = SqliteStorage("crm", filename=str(tmp_path / "queue.sqlite3"))
    saved, huey.storage = huey.storage, storage
    try:
        prune_job_runs()  # enqueued into the instance's queue file
    finally:
        huey.storage = saved
    assert storage.queue_size() == 1

    worker = subprocess.Popen(
        [*flask, "crm", "worker", "--workers", "1", "--no-periodic"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        rows = []
        for _ in range(300):  # up to 30 s on a busy machine; usually well under one
            with sqlite3.connect(tmp_path / "crm.sqlite3") as conn:
                rows = conn.execute("SELECT name, status FROM job_runs").fetchall()
            if rows and rows[0][1] != "RUNNING":
                break
            time.sleep(0.1)
        assert rows == [("prune_job_runs", "SUCCEEDED")]
        assert storage.queue_size() == 0
    finally:
        worker.send_signal(signal.SIGINT)
        output, _ = worker.communicate(timeout=30)
    assert worker.returncode == 0, output
    assert "SQLite" in output  # it says which queue it serves


def test_every_job_has_a_chinese_name(app, world, login):
    from crm.jobs.models import JOB_LABELS
    from crm.jobs.queue import huey

    registered = {
        key.rsplit(".", 1)[-1] for key in huey._registry._registry if key.startswith("crm.")
    }
    assert registered and registered <= JOB_LABELS.keys()
    db.session.add(JobRun(task_id="t", name="clean_files", status=JobStatus.SUCCEEDED))
    db.session.flush()
    assert "<td>清理无主文件</td>" in login(world.admin).get("/admin/jobs").get_data(as_text=True)
