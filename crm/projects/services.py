"""Projects: registering and editing (with optimistic locking).

A project's records are in `records`, the list's filters in `filters`, the list in `listing`,
its page in `detail`, the home page in `worklist`."""

from __future__ import annotations

from datetime import date
from typing import Any

from crm.audit.services import apply_changes, record
from crm.auth.models import Role, User
from crm.catalog.models import Carrier, Chain
from crm.companies.models import Company
from crm.core import ConflictError, ServiceError
from crm.extensions import db
from crm.projects.conflicts import Courting, courting_projects, record_conflicts
from crm.projects.lifecycle import record_initial_stage
from crm.projects.models import Project
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


def _officer_errors(values: dict[str, Any], project: Project | None) -> dict[str, str]:
    """The 责任人 is an active officer of the project's 载体: an officer of another 载体 could
    not even open the project. One kept as it was (same officer, same 载体) is left alone."""
    officer_id = values.get("officer_id", project.officer_id if project else None)
    carrier_id = values.get("carrier_id", project.carrier_id if project else None)
    if project is not None and (officer_id, carrier_id) == (project.officer_id, project.carrier_id):
        return {}
    officer = db.session.get(User, officer_id) if officer_id else None
    if officer is None or officer.role is not Role.OFFICER or not officer.is_active:
        return {"officer_id": "请选择在岗的招商专员作为责任人"}
    if officer.carrier_id != carrier_id:
        carrier = db.session.get(Carrier, carrier_id) if carrier_id else None
        return {"officer_id": f"责任人须是{carrier.name if carrier else '项目所在载体'}的招商专员"}
    return {}


def _check_project_values(
    user: User, values: dict[str, Any], project: Project | None = None
) -> dict[str, Any]:
    values = {k: values[k] for k in PROJECT_FIELDS if k in values}
    values["name"] = values["name"].strip()
    if user.role is Role.OFFICER:
        # An officer works in its own 载体 (an edit keeps the project's, which is the same).
        values["carrier_id"] = project.carrier_id if project else user.carrier_id
    errors = planned_date_errors(values) | _officer_errors(values, project)
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


class CourtingUnconfirmed(ServiceError):
    """Other 载体 court the company (跨载体冲突) and the user has not said to register anyway;
    `courting` lists their projects, for the form to show before it asks again."""

    def __init__(self, courting: list[Courting]):
        super().__init__("其他载体正在跟进该企业，确认后才能登记")
        self.courting = courting


def create_project(
    user: User,
    company: Company,
    values: dict[str, Any],
    stage: Stage = Stage.PLANNED,
    *,
    courting_confirmed: bool = True,
) -> Project:
    """Register a project of `company`; each project of another 载体 still courting the same
    company is flagged as a conflict with it, for the 专班 or a leader to settle.

    A user at the form is warned first: with `courting_confirmed=False` (the box 仍然保存 not
    ticked) and such projects, nothing is saved and CourtingUnconfirmed lists them. Callers
    with nobody to ask (demo data, scripts) keep the default."""
    if not courting_confirmed:
        # The 载体 as _check_project_values settles it: an officer's own.
        carrier_id = user.carrier_id if user.role is Role.OFFICER else values.get("carrier_id")
        if courting := courting_projects(company, carrier_id):
            raise CourtingUnconfirmed(courting)
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
    record_conflicts(user, project)
    return project


def update_project(
    user: User, project: Project, values: dict[str, Any], loaded_version: int | None
) -> Project:
    """Save an edit made on the version the user loaded; refuse to overwrite a newer one, and
    an edit that does not say which version it was made on (`loaded_version` None)."""
    if loaded_version is None:
        raise ConflictError("未能确认您编辑的是哪个版本，本次修改未保存：请核对最新内容后再保存")
    if loaded_version != project.version:
        raise ConflictError("该项目已被他人修改，请核对最新内容后再保存")
    values = _check_project_values(user, values, project)
    changes = apply_changes(project, values)
    if changes:
        project.version += 1
        record(user, "project_updated", project, summary=project.name, changes=changes)
    return project
