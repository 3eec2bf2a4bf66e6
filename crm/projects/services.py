"""Projects: registering, editing (with optimistic locking), follow-ups, element needs, funds,
and the queries behind the list, the detail page and the home page."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import joinedload, selectinload

from crm.access import project_scope
from crm.audit.services import apply_changes, record
from crm.auth.models import Role, User
from crm.catalog.models import Chain
from crm.companies.models import Company, Contact
from crm.core import LOCAL_TZ, ConflictError, ServiceError, local_today
from crm.extensions import db
from crm.projects.lifecycle import record_initial_stage
from crm.projects.models import (
    ElementNeed,
    FollowUp,
    FundsRecord,
    Project,
    StageChange,
    StatusChange,
)
from crm.projects.stages import MILESTONES, Stage, Status

# Fields the project form edits; stage and status move only through the lifecycle module.
PROJECT_FIELDS = (
    "name",
    "carrier_id",
    "cluster_id",
    "chain_id",
    "channel_id",
    "officer_id",
    "is_key",
    "total_investment",
    "fixed_asset_investment",
    "land_area",
    "expected_output",
    "expected_tax",
    "expected_jobs",
    "description",
    "planned_signed_on",
    "planned_started_on",
    "planned_producing_on",
)
# Stages a project may be registered in; later ones are reached through the lifecycle.
INITIAL_STAGES = (Stage.PLANNED, Stage.ATTRACTING)


def planned_date_errors(values: dict[str, Any]) -> dict[str, str]:
    """A planned date may not come before an earlier stage's planned date."""
    errors = {}
    earlier: tuple[str, date] | None = None
    for label, planned, _actual in MILESTONES:
        value = values.get(planned)
        if value is None:
            continue
        if earlier and value < earlier[1]:
            errors[planned] = f"计划{label}日期不能早于计划{earlier[0]}日期"
        earlier = (label, value)
    return errors


def _check_project_values(user: User, values: dict[str, Any]) -> dict[str, Any]:
    values = {k: values[k] for k in PROJECT_FIELDS if k in values}
    values["name"] = values["name"].strip()
    if user.role is Role.OFFICER:
        values["carrier_id"] = user.carrier_id  # an officer works in its own 载体
    errors = planned_date_errors(values)
    if values.get("chain_id"):
        chain = db.session.get(Chain, values["chain_id"])
        if chain is None or chain.cluster_id != values.get("cluster_id"):
            errors["chain_id"] = "所选产业链不属于所选产业集群"
    if (
        values.get("fixed_asset_investment") is not None
        and values.get("total_investment") is not None
        and values["fixed_asset_investment"] > values["total_investment"]
    ):
        errors["fixed_asset_investment"] = "固定资产投资不能大于总投资"
    if errors:
        raise ServiceError(errors=errors)
    return values


def create_project(
    user: User, company: Company, values: dict[str, Any], stage: Stage = Stage.PLANNED
) -> Project:
    if stage not in INITIAL_STAGES:
        raise ServiceError(errors={"stage": "新项目只能登记为谋划或招引阶段"})
    project = Project(
        company_id=company.id,
        stage=stage,
        status=Status.ACTIVE,
        created_by_id=user.id,
        version=1,
        **_check_project_values(user, values),
    )
    db.session.add(project)
    db.session.flush()
    record_initial_stage(user, project)
    record(user, "project_created", project, summary=project.name)
    return project


def update_project(
    user: User, project: Project, values: dict[str, Any], loaded_version: int
) -> Project:
    """Save an edit made on the version the user loaded; refuse to overwrite a newer one."""
    if loaded_version != project.version:
        raise ConflictError("该项目已被他人修改，请核对最新内容后再保存")
    values = _check_project_values(user, values)
    if user.role is Role.OFFICER:
        values["carrier_id"] = project.carrier_id
    changes = apply_changes(project, values)
    if changes:
        project.version += 1
        record(user, "project_updated", project, summary=project.name, changes=changes)
    return project


# Follow-ups, element needs, funds -----------------------------------------------------------


def add_followup(
    user: User, project: Project, values: dict[str, Any], contacts: list[Contact]
) -> FollowUp:
    errors = {}
    if values["happened_on"] > local_today():
        errors["happened_on"] = "跟踪日期不能晚于今天"
    due = values.get("next_action_due")
    if due and due < values["happened_on"]:
        errors["next_action_due"] = "下一步期限不能早于跟踪日期"
    if due and not values.get("next_action", "").strip():
        errors["next_action"] = "填写了期限，请写明下一步要做什么"
    if any(c.company_id != project.company_id for c in contacts):
        errors["contact_ids"] = "只能选择本项目企业的联系人"
    if errors:
        raise ServiceError(errors=errors)
    followup = FollowUp(
        project_id=project.id,
        kind=values["kind"],
        happened_on=values["happened_on"],
        summary=values["summary"].strip(),
        next_action=values.get("next_action", "").strip(),
        next_action_due=due,
        created_by_id=user.id,
        contacts=contacts,
    )
    db.session.add(followup)
    # The latest follow-up sets the project's next action and freshness.
    if project.last_followup_on is None or followup.happened_on >= project.last_followup_on:
        project.last_followup_on = followup.happened_on
        project.next_action = followup.next_action
        project.next_action_due = followup.next_action_due
    db.session.flush()
    record(
        user,
        "followup_added",
        followup,
        summary=f"{project.name}：{followup.kind.label} {followup.happened_on}",
    )
    return followup


def add_element_need(user: User, project: Project, values: dict[str, Any]) -> ElementNeed:
    need = ElementNeed(
        project_id=project.id,
        kind=values["kind"],
        quantity=values["quantity"],
        unit=(values.get("unit") or "").strip() or values["kind"].default_unit,
        status=values["status"],
        note=values.get("note", "").strip(),
    )
    db.session.add(need)
    db.session.flush()
    record(user, "element_added", need, summary=f"{project.name}：{need.kind.label}")
    return need


def update_element_need(user: User, need: ElementNeed, values: dict[str, Any]) -> ElementNeed:
    changes = apply_changes(
        need,
        {
            "quantity": values["quantity"],
            "status": values["status"],
            "note": values.get("note", "").strip(),
        },
    )
    if changes:
        record(user, "element_updated", need, summary=need.kind.label, changes=changes)
    return need


def add_funds(user: User, project: Project, values: dict[str, Any]) -> FundsRecord:
    if values["received_on"] > local_today():
        raise ServiceError(errors={"received_on": "到位日期不能晚于今天"})
    funds = FundsRecord(
        project_id=project.id,
        received_on=values["received_on"],
        amount=values["amount"],
        note=values.get("note", "").strip(),
        created_by_id=user.id,
    )
    db.session.add(funds)
    db.session.flush()
    record(user, "funds_added", funds, summary=f"{project.name}：{funds.amount} 万元")
    return funds


# Queries -----------------------------------------------------------------------------------


def stale_clause(today: date, days: int) -> sa.ColumnElement[bool]:
    """正常 projects with no follow-up for `days` days (or none since they were registered)."""
    cutoff = today - timedelta(days=days)
    cutoff_at = datetime.combine(cutoff, time.min, LOCAL_TZ).astimezone(UTC)
    return sa.and_(
        Project.status == Status.ACTIVE,
        sa.or_(
            Project.last_followup_on < cutoff,
            sa.and_(Project.last_followup_on.is_(None), Project.created_at < cutoff_at),
        ),
    )


def is_stale(project: Project, today: date, days: int) -> bool:
    if project.status is not Status.ACTIVE:
        return False
    cutoff = today - timedelta(days=days)
    last = project.last_followup_on or project.created_at.astimezone(LOCAL_TZ).date()
    return last < cutoff


SORTS: dict[str, tuple[str, Any]] = {
    "updated": ("最近更新", Project.updated_at.desc()),
    "name": ("项目名称", Project.name.asc()),
    "investment": ("总投资", Project.total_investment.desc()),
    "stage": ("阶段", Project.stage.asc()),
    "due": ("下一步期限", Project.next_action_due.asc()),
}


@dataclass
class ProjectFilter:
    """The project list's filters, as read from the query string."""

    q: str = ""
    stage: Stage | None = None
    status: Status | None = None
    carrier_id: int | None = None
    cluster_id: int | None = None
    channel_id: int | None = None
    officer_id: int | None = None
    is_key: bool = False
    stale: bool = False
    sort: str = "updated"
    active: dict[str, str] = field(default_factory=dict)  # what was set, for links


def project_list_query(user: User, f: ProjectFilter, today: date, stale_days: int) -> sa.Select:
    query = sa.select(Project).where(project_scope(user))
    if f.q:
        pattern = "%" + f.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        company_match = (
            sa.select(Company.id)
            .where(Company.id == Project.company_id, Company.name.ilike(pattern, escape="\\"))
            .exists()
        )
        query = query.where(sa.or_(Project.name.ilike(pattern, escape="\\"), company_match))
    for column, value in (
        (Project.stage, f.stage),
        (Project.status, f.status),
        (Project.carrier_id, f.carrier_id),
        (Project.cluster_id, f.cluster_id),
        (Project.channel_id, f.channel_id),
        (Project.officer_id, f.officer_id),
    ):
        if value is not None:
            query = query.where(column == value)
    if f.is_key:
        query = query.where(Project.is_key.is_(True))
    if f.stale:
        query = query.where(stale_clause(today, stale_days))
    order = SORTS.get(f.sort, SORTS["updated"])[1]
    return query.order_by(order, Project.id.desc()).options(
        joinedload(Project.company),
        joinedload(Project.carrier),
        joinedload(Project.cluster),
        joinedload(Project.officer),
    )


@dataclass
class TimelineEntry:
    at: datetime | date
    kind: str  # "stage", "status", "followup"
    item: Any


def project_timeline(project: Project) -> list[TimelineEntry]:
    """Stage moves, status changes and follow-ups, newest first, in three queries."""
    stage_changes = db.session.scalars(
        sa.select(StageChange)
        .where(StageChange.project_id == project.id)
        .options(joinedload(StageChange.changed_by))
    ).all()
    status_changes = db.session.scalars(
        sa.select(StatusChange)
        .where(StatusChange.project_id == project.id)
        .options(joinedload(StatusChange.changed_by), joinedload(StatusChange.termination_reason))
    ).all()
    followups = db.session.scalars(
        sa.select(FollowUp)
        .where(FollowUp.project_id == project.id)
        .options(joinedload(FollowUp.created_by), selectinload(FollowUp.contacts))
    ).all()
    entries = (
        [TimelineEntry(c.changed_at, "stage", c) for c in stage_changes]
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


def element_needs(project: Project) -> list[ElementNeed]:
    return list(
        db.session.scalars(
            sa.select(ElementNeed)
            .where(ElementNeed.project_id == project.id)
            .order_by(ElementNeed.kind, ElementNeed.id)
        )
    )


def funds_records(project: Project) -> list[FundsRecord]:
    return list(
        db.session.scalars(
            sa.select(FundsRecord)
            .where(FundsRecord.project_id == project.id)
            .order_by(FundsRecord.received_on.desc(), FundsRecord.id.desc())
        )
    )


def funds_ratio(total: Decimal, project: Project) -> Decimal | None:
    """资金到位率: funds in place over the signed amount, in percent."""
    if project.signed_amount:
        return (total * 100 / project.signed_amount).quantize(Decimal("0.1"))
    return None


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
    recent = db.session.scalars(
        sa.select(StageChange)
        .join(StageChange.project)
        .where(project_scope(user), StageChange.from_stage.is_not(None))
        .order_by(StageChange.changed_at.desc(), StageChange.id.desc())
        .options(joinedload(StageChange.project), joinedload(StageChange.changed_by))
        .limit(limit)
    ).all()
    return MyWork(list(due), list(stale), list(recent))
