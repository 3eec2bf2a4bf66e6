"""What a project's page shows besides the project itself: its timeline (stage moves, status
changes, follow-ups, hand-overs), its element needs and its funds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import joinedload, selectinload

from crm.core import LOCAL_TZ
from crm.extensions import db
from crm.projects.models import (
    ElementNeed,
    FollowUp,
    FundsRecord,
    Handover,
    Project,
    StageChange,
    StatusChange,
)


@dataclass
class TimelineEntry:
    at: datetime | date
    kind: str  # "stage", "status", "followup", "handover"
    item: Any


def project_timeline(project: Project) -> list[TimelineEntry]:
    """Stage moves, status changes, follow-ups and hand-overs (流转), newest first, in four
    queries."""
    stage_changes = _of_project(
        StageChange,
        project,
        joinedload(StageChange.changed_by),
        joinedload(StageChange.verified_by),
    )
    status_changes = _of_project(
        StatusChange,
        project,
        joinedload(StatusChange.changed_by),
        joinedload(StatusChange.termination_reason),
    )
    followups = _of_project(
        FollowUp, project, joinedload(FollowUp.created_by), selectinload(FollowUp.contacts)
    )
    handovers = _of_project(
        Handover,
        project,
        joinedload(Handover.from_carrier),
        joinedload(Handover.to_carrier),
        joinedload(Handover.handed_by),
        joinedload(Handover.decided_by),
        joinedload(Handover.officer),
    )
    entries = (
        [TimelineEntry(c.changed_at, "stage", c) for c in stage_changes]
        + [TimelineEntry(h.handed_at, "handover", h) for h in handovers]
        + [TimelineEntry(c.changed_at, "status", c) for c in status_changes]
        + [
            TimelineEntry(
                datetime.combine(f.happened_on, time(12), LOCAL_TZ).astimezone(UTC),
                "followup",
                f,
            )
            for f in followups
        ]
    )
    return sorted(entries, key=lambda e: (e.at, e.item.id), reverse=True)


def _of_project(model, project: Project, *options, order_by=()) -> list:
    """The rows of `model` that belong to `project`, with `options` loaded, in `order_by`."""
    query = sa.select(model).where(model.project_id == project.id)
    return list(db.session.scalars(query.options(*options).order_by(*order_by)))


def element_needs(project: Project) -> list[ElementNeed]:
    return _of_project(ElementNeed, project, order_by=(ElementNeed.kind, ElementNeed.id))


def funds_records(project: Project) -> list[FundsRecord]:
    order = (FundsRecord.received_on.desc(), FundsRecord.id.desc())
    return _of_project(FundsRecord, project, order_by=order)


def funds_ratio(total: Decimal, project: Project) -> Decimal | None:
    """资金到位率: funds in place over the signed amount, in percent."""
    if project.signed_amount:
        return (total * 100 / project.signed_amount).quantize(Decimal("0.1"))
    return None
