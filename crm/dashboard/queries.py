"""The dashboard's short lists of what needs action: the projects behind them, in order,
as far as the user may still read them."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from crm.access import project_scope
from crm.auth.models import User
from crm.evaluation.models import Evaluation
from crm.evaluation.services import decision_queue_query
from crm.extensions import db
from crm.projects.conflicts import conflicts_query
from crm.projects.filters import (
    OVERDUE_LABELS,
    OVERDUE_STAGES,
    PLANNED_COLUMNS,
    ProjectFilter,
    filter_clauses,
    stale_clause,
)
from crm.projects.models import Project, StageChange
from crm.projects.stages import Stage, Verification


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


def stalest(user: User, today: date, stale_days: int, limit: int) -> list[int]:
    """The ids of the stale projects followed up longest ago (never, first)."""
    return list(
        db.session.scalars(
            sa.select(Project.id)
            .where(project_scope(user), stale_clause(today, stale_days))
            .order_by(Project.last_followup_on.asc().nulls_first(), Project.id)
            .limit(limit)
        )
    )


def awaiting_decision(user: User, limit: int) -> list[Evaluation]:
    """The evaluations waiting for the leaders' decision, oldest first."""
    return list(db.session.scalars(decision_queue_query().where(project_scope(user)).limit(limit)))


def pending_moves(user: User, limit: int) -> list[StageChange]:
    """The moves waiting for the task force's verification (待核实), oldest first."""
    return list(
        db.session.scalars(
            sa.select(StageChange)
            .join(Project, Project.id == StageChange.project_id)
            .where(project_scope(user), StageChange.verification == Verification.PENDING)
            .order_by(StageChange.changed_at, StageChange.id)
            .options(
                joinedload(StageChange.project).joinedload(Project.carrier),
                joinedload(StageChange.changed_by),
            )
            .limit(limit)
        )
    )


def open_conflicts(user: User, limit: int) -> list:
    """The open cross-载体 conflicts the user may see."""
    return list(db.session.scalars(conflicts_query(user).limit(limit)))
