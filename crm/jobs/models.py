"""What the background jobs leave in the database: their runs, and the mails they sent."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from crm.core import LabelledEnum, UTCDateTime, enum_column, utcnow
from crm.extensions import db

JOB_NAME_MAX = 64
JOB_SUMMARY_MAX = 200
JOB_ERROR_MAX = 2000
MAIL_KEY_MAX = 200
MAIL_SUBJECT_MAX = 200
EMAIL_MAX = 254  # RFC 5321's limit on an address's length


class JobStatus(LabelledEnum):
    RUNNING = "运行中", "warn"
    SUCCEEDED = "成功", "ok"
    RETRYING = "重试中", "warn"  # this attempt failed; huey runs it again after the back-off
    FAILED = "失败", "stale"  # the last attempt failed: nothing more will happen


# The Chinese name of each job, as the 后台任务 page and 待办 show it (a test checks that every
# job registered with the queue has one).
JOB_LABELS = {
    "send_mail": "发送邮件",
    "send_daily_digest": "每日待办摘要",
    "send_due_reminders": "到期提醒",
    "clean_files": "清理无主文件",
    "prune_job_runs": "清理过期任务记录",
}


class JobRun(db.Model):
    """One job put on the queue (后台任务), from its first attempt to its last: a retry updates
    the same row (attempt, status), and keeps the error of the last failed attempt."""

    __tablename__ = "job_runs"
    __table_args__ = (
        sa.UniqueConstraint("task_id"),
        sa.Index("ix_job_runs_started_at_id", "started_at", "id"),
        sa.Index("ix_job_runs_status_started_at_id", "status", "started_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[str] = mapped_column(sa.String(64))  # huey's id of the queued task
    name: Mapped[str] = mapped_column(sa.String(JOB_NAME_MAX))
    summary: Mapped[str] = mapped_column(sa.String(JOB_SUMMARY_MAX), default="", server_default="")
    status: Mapped[JobStatus] = mapped_column(enum_column(JobStatus, "status"))
    attempt: Mapped[int] = mapped_column(default=1, server_default="1")
    error: Mapped[str] = mapped_column(sa.String(JOB_ERROR_MAX), default="", server_default="")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def label(self) -> str:
        return JOB_LABELS.get(self.name, self.name)


class SentMail(db.Model):
    """A mail the queue has sent (已发送邮件), under the key its sender gave it (e.g.
    `digest:<user>:<date>`): a retried or repeated job finds the key and sends nothing again."""

    __tablename__ = "sent_mails"
    __table_args__ = (sa.UniqueConstraint("key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(MAIL_KEY_MAX))
    user_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    address: Mapped[str] = mapped_column(sa.String(EMAIL_MAX))
    subject: Mapped[str] = mapped_column(sa.String(MAIL_SUBJECT_MAX))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
