"""The dashboard's short lists of what needs action: the projects behind them, in order,
as far as the user may still read them."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from crm.access import project_scope
from crm.auth.models import User
from crm.extensions import db
from crm.projects.filters import (
    OVERDUE_LABELS,
    OVERDUE_STAGES,
    PLANNED_COLUMNS,
    ProjectFilter,
    filter_clauses,
)
from crm.projects.models import Project
from crm.projects.stages import Stage


def longest_overdue(user: User, today: date, limit: int) -> list[tuple[int, str, date]]:
    """The longest overdue projects: (project id, what is late, planned date)."""
    late_on = sa.case(
        *(
            (Project.stage.in_(stages), PLANNED_COLUMNS[milestone])
            for milestone, stages in OVERDUE_STAGES.items()
        ),
    )
    projects = db.session.execute(
        sa.select(Project.id, Project.stage, *PLANNED_COLUMNS.values())
        .where(
            project_scope(user),
            *filter_clauses(ProjectFilter(overdue_any=True), today, 0),
        )
        .order_by(late_on, Project.id)
        .limit(limit)
    ).all()
    items = []
    for row in projects:
        for milestone, stages in OVERDUE_STAGES.items():
            if row.stage in stages:
                items.append(
                    (row.id, OVERDUE_LABELS[milestone], getattr(row, _planned_attr(milestone)))
                )
    return items


def projects_by_id(user: User, ids: list[int]) -> list[Project]:
    """These projects, in this order, with their 载体 (those `user` may still read)."""
    projects = {
        p.id: p
        for p in db.session.scalars(
            sa.select(Project)
            .where(project_scope(user), Project.id.in_(ids))
            .options(joinedload(Project.carrier))
        )
    }
    return [projects[i] for i in ids if i in projects]


def overdue_projects(
    user: User, overdue: list[tuple[int, str, date]]
) -> list[tuple[Project, str, date]]:
    projects = {p.id: p for p in projects_by_id(user, [i for i, _what, _on in overdue])}
    return [(projects[i], what, on) for i, what, on in overdue if i in projects]


def _planned_attr(milestone: Stage) -> str:
    return PLANNED_COLUMNS[milestone].key
