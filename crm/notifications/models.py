"""In-app notifications (通知): one row per recipient, unread until read."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.auth.models import User
from crm.core import LabelledEnum, UTCDateTime, enum_column, utcnow
from crm.extensions import db
from crm.projects.models import Project


class NotificationKind(LabelledEnum):
    """What happened. Every kind the work needs is listed here (a CHECK constraint keeps the
    column to these names, so a new kind is a migration)."""

    EVALUATION_SUBMITTED = "评估待决策", "warn"
    DECISION_RECORDED = "集体决策", "ok"
    MOVE_VERIFIED = "甄别通过", "ok"
    MOVE_REJECTED = "甄别驳回", "stale"
    TASK_ASSIGNED = "新任务", "warn"
    TASK_COMPLETED = "任务完成", "ok"
    TASK_CANCELLED = "任务取消", ""
    HANDOVER_OFFERED = "流转待接收", "warn"
    HANDOVER_ACCEPTED = "流转已接收", "ok"
    HANDOVER_DECLINED = "流转被退回", "stale"
    CONFLICT_FLAGGED = "跨载体冲突", "stale"
    DUE_REMINDER = "到期提醒", "warn"


class Notification(db.Model):
    __tablename__ = "notifications"
    __table_args__ = (
        # The top bar's unread count and the list, newest first: one index range per user.
        sa.Index("ix_notifications_user_id_read_at_id", "user_id", "read_at", "id"),
        # A reminder or digest retried sends nothing twice: one row per user and key.
        sa.UniqueConstraint("user_id", "key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[NotificationKind] = mapped_column(enum_column(NotificationKind, "kind"))
    project_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    text: Mapped[str] = mapped_column(sa.String(500))
    url: Mapped[str] = mapped_column(sa.String(500), default="", server_default="")
    key: Mapped[str | None] = mapped_column(sa.String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(foreign_keys=[user_id])
    actor: Mapped[User | None] = relationship(foreign_keys=[actor_id])
    project: Mapped[Project | None] = relationship()
