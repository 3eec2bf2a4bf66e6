"""任务: a piece of work on a project, given to one user with a due date.

A task is created by anyone who reads the project, for a user who reads it too; the assignee
completes it with a note, the creator (or an admin) cancels it with a reason. One kind of
task is kept by the projects' services themselves: the project's 下一步 (`TaskKind.NEXT_ACTION`),
an open task of the project's officer with the next action's text and due date
(crm/tasks/next_actions.py).
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.auth.models import User
from crm.core import LabelledEnum, UTCDateTime, enum_column, utcnow
from crm.extensions import db
from crm.projects.models import Project

TITLE_MAX = 200
DESCRIPTION_MAX = 2000
NOTE_MAX = 2000  # the completion note
REASON_MAX = 500  # the cancel reason


class TaskStatus(LabelledEnum):
    OPEN = "进行中", "warn"
    DONE = "已完成", "ok"
    CANCELLED = "已取消", ""


class TaskKind(LabelledEnum):
    TASK = "任务"
    NEXT_ACTION = "下一步"  # the project's next action, kept by the projects' services


class Task(db.Model):
    __tablename__ = "tasks"
    __table_args__ = (
        # The questions asked all day, each read in due order from one index that also holds
        # the project (whose readability the lists check): a user's open tasks (待办, the
        # list's default), a project's open tasks (its page), the tasks a user created, and
        # every task of a state, or of any (the list of all the user reads; a leader's: all).
        sa.Index(
            "ix_tasks_assignee_id_status_due_on",
            "assignee_id",
            "status",
            "due_on",
            "project_id",
            "id",
        ),
        sa.Index("ix_tasks_project_id_status_due_on", "project_id", "status", "due_on", "id"),
        sa.Index(
            "ix_tasks_created_by_id_status_due_on",
            "created_by_id",
            "status",
            "due_on",
            "project_id",
            "id",
        ),
        sa.Index("ix_tasks_status_due_on", "status", "due_on", "project_id", "id"),
        sa.Index("ix_tasks_due_on", "due_on", "project_id", "id"),  # of any state
        # A project has at most one open 下一步 task, whatever requests run at once.
        sa.Index(
            "ux_tasks_open_next_action",
            "project_id",
            unique=True,
            sqlite_where=sa.text("kind = 'NEXT_ACTION' AND status = 'OPEN'"),
            postgresql_where=sa.text("kind = 'NEXT_ACTION' AND status = 'OPEN'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(sa.ForeignKey("projects.id"))
    kind: Mapped[TaskKind] = mapped_column(enum_column(TaskKind, "kind"), default=TaskKind.TASK)
    title: Mapped[str] = mapped_column(sa.String(TITLE_MAX))
    description: Mapped[str] = mapped_column(
        sa.String(DESCRIPTION_MAX), default="", server_default=""
    )
    # None only for a 下一步 whose follow-up gave no date; a task made at the form has one.
    due_on: Mapped[date | None]
    assignee_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    status: Mapped[TaskStatus] = mapped_column(
        enum_column(TaskStatus, "status"), default=TaskStatus.OPEN
    )
    completion_note: Mapped[str] = mapped_column(sa.String(NOTE_MAX), default="", server_default="")
    cancel_reason: Mapped[str] = mapped_column(sa.String(REASON_MAX), default="", server_default="")
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    project: Mapped[Project] = relationship()
    assignee: Mapped[User] = relationship(foreign_keys=[assignee_id])
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])
    completed_by: Mapped[User | None] = relationship(foreign_keys=[completed_by_id])
    cancelled_by: Mapped[User | None] = relationship(foreign_keys=[cancelled_by_id])

    def __str__(self) -> str:
        return self.title

    @property
    def is_open(self) -> bool:
        return self.status is TaskStatus.OPEN

    @property
    def is_next_action(self) -> bool:
        return self.kind is TaskKind.NEXT_ACTION

    def is_overdue(self, today: date) -> bool:
        return self.is_open and self.due_on is not None and self.due_on < today
