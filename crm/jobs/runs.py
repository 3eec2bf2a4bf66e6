"""The record of background jobs (后台任务): written around each run by queue.py, read by the
admin's page and 待办, pruned daily.

The writes here flush; queue.py, the jobs' transaction edge, commits each at once, apart
from the job's own work: a job that fails rolls its work back, but its record stays.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import sqlalchemy as sa

from crm.core import utcnow
from crm.extensions import db
from crm.jobs.models import JOB_ERROR_MAX, JOB_SUMMARY_MAX, JobRun, JobStatus, SentMail

RECENT_FAILURE_DAYS = 7  # the admin's 待办 counts the failures of this last week


def start(*, task_id: str | None, name: str, summary: str, attempt: int) -> int:
    """Record that a job begins (运行中): a new row, or its earlier attempt's row again."""
    run = None
    if task_id is not None:
        run = db.session.scalar(sa.select(JobRun).where(JobRun.task_id == task_id))
    if run is None:
        run = JobRun(task_id=task_id or f"local:{uuid.uuid4()}", name=name[:64])
        db.session.add(run)
    run.summary = summary[:JOB_SUMMARY_MAX]
    run.status = JobStatus.RUNNING
    run.attempt = attempt
    run.started_at = utcnow()
    run.finished_at = None
    db.session.flush()
    return run.id


def _finish(run_id: int, status: JobStatus, error: str | None = None) -> None:
    run = db.session.get(JobRun, run_id)
    run.status = status
    run.finished_at = utcnow()
    if error is not None:
        run.error = error[:JOB_ERROR_MAX]
    db.session.flush()


def succeed(run_id: int) -> None:
    """成功. The error of an earlier attempt stays, for the admin to see what was retried."""
    _finish(run_id, JobStatus.SUCCEEDED)


def fail(run_id: int, exc: BaseException, *, will_retry: bool) -> None:
    """重试中 when huey will run it again, else 失败; the error is kept, bounded."""
    status = JobStatus.RETRYING if will_retry else JobStatus.FAILED
    _finish(run_id, status, f"{type(exc).__name__}: {exc}")


def runs_query(status: JobStatus | None) -> sa.Select:
    """The runs for the admin's page, newest first, optionally of one status (an index each)."""
    stmt = sa.select(JobRun).order_by(JobRun.started_at.desc(), JobRun.id.desc())
    if status is not None:
        stmt = stmt.where(JobRun.status == status)
    return stmt


def _recent_failures() -> sa.ColumnElement[bool]:
    since = utcnow() - timedelta(days=RECENT_FAILURE_DAYS)
    return sa.and_(JobRun.status == JobStatus.FAILED, JobRun.started_at >= since)


def failed_jobs(limit: int = 10) -> list[JobRun]:
    """The admin's 待办: the last week's failed jobs, newest first."""
    stmt = runs_query(JobStatus.FAILED).where(_recent_failures()).limit(limit)
    return list(db.session.scalars(stmt))


def count_failed_jobs() -> int:
    """How many jobs failed in the last week (the admin's 待办 count)."""
    stmt = sa.select(sa.func.count()).select_from(JobRun).where(_recent_failures())
    return db.session.scalar(stmt) or 0


def prune(keep_days: int, now: datetime | None = None) -> dict[str, int]:
    """Delete the runs that finished, and the records of mails sent, more than `keep_days`
    ago (a mail's key is needed only while its job may still be retried: half an hour)."""
    before = (now or utcnow()) - timedelta(days=keep_days)
    runs = db.session.execute(
        sa.delete(JobRun).where(JobRun.finished_at.is_not(None), JobRun.finished_at < before)
    ).rowcount
    mails = db.session.execute(sa.delete(SentMail).where(SentMail.sent_at < before)).rowcount
    return {"runs": runs, "mails": mails}
