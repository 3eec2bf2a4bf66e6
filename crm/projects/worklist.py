"""The home page (工作台): what needs the user's attention."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from crm.access import project_scope, readable_project
from crm.auth.models import Role, User
from crm.extensions import db
from crm.projects.filters import stale_clause
from crm.projects.models import Project, StageChange
from crm.projects.stages import Status


@dataclass
class MyWork:
    due: list[Project]
    stale: list[Project]
    recent: list[StageChange]


def my_work(user: User, today: date, stale_days: int, limit: int = 20) -> MyWork:
    """The home page: next actions due this week or overdue, stale projects, recent moves."""
    week_end = today + timedelta(days=6 - today.weekday())
    mine = project_scope(user)
    if user.role is Role.OFFICER:
        mine = sa.and_(mine, Project.officer_id == user.id)
    opts = (joinedload(Project.company), joinedload(Project.carrier))
    due = db.session.scalars(
        sa.select(Project)
        .where(
            mine,
            Project.status == Status.ACTIVE,
            Project.next_action_due.is_not(None),
            Project.next_action_due <= week_end,
        )
        .order_by(Project.next_action_due, Project.id)
        .options(*opts)
        .limit(limit)
    ).all()
    stale = db.session.scalars(
        sa.select(Project)
        .where(mine, stale_clause(today, stale_days))
        .order_by(Project.last_followup_on.asc().nulls_first(), Project.id)
        .options(*opts)
        .limit(limit)
    ).all()
    # The newest moves first, each checked against the scope, rather than every readable
    # project's moves sorted: a 载体 has tens of thousands of them at a province's scale.
    recent = db.session.scalars(
        sa.select(StageChange)
        .where(readable_project(user, StageChange.project_id), StageChange.from_stage.is_not(None))
        .order_by(StageChange.changed_at.desc(), StageChange.id.desc())
        .options(joinedload(StageChange.project), joinedload(StageChange.changed_by))
        .limit(limit)
    ).all()
    return MyWork(list(due), list(stale), list(recent))
