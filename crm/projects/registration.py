"""Registering projects and editing their values: the one path every project is written by.

The project form, the ledger import (项目台账) and the demo data all go through here:

- `project_value_errors` is the one check of a project's values (the 载体's officer, the chain
  within its cluster, 固定资产投资 ≤ 总投资, planned dates in order). The form gets its errors
  as a ServiceError; the import reads them row by row, with what they look up (chains,
  officers, 载体) loaded once for the whole file (`ProjectLookups.preload`).
- `register_projects` registers any number of projects in a few statements: their new
  companies (through the companies' service), the projects with their search text, the first
  stage history rows, the cross-载体 conflicts, and the audit entries of each. `create_project`
  is the form's one-project case of it, so history, conflicts, search text and audit never
  differ between the two.
- `update_project` (the form, on the version the user loaded) and `update_projects_bulk` (the
  import, one version-guarded UPDATE) write the same `project_updated` audit entry.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from crm.audit.services import apply_changes, changes_of, record, record_bulk
from crm.auth.models import Role, User
from crm.catalog.models import Carrier, Chain
from crm.companies.models import Company
from crm.companies.services import company_identity, create_companies_bulk
from crm.core import ConflictError, ServiceError, utcnow
from crm.extensions import db
from crm.hooks import next_action_changed
from crm.projects.conflicts import (
    CourtedProject,
    Courting,
    CourtingLookup,
    courting_projects,
    record_conflicts_bulk,
)
from crm.projects.models import Project, StageChange
from crm.projects.officers import officer_in_charge_error
from crm.projects.search import search_text
from crm.projects.stages import MILESTONES, Stage, Status

# A project's figures (万元, 亩, jobs) and planned dates, among the fields below.
PROJECT_FIGURES = (
    "total_investment",
    "fixed_asset_investment",
    "land_area",
    "expected_output",
    "expected_tax",
    "expected_jobs",
)
PLANNED_DATES = ("planned_signed_on", "planned_started_on", "planned_producing_on")
# Fields the project form edits; stage and status move only through the lifecycle module.
PROJECT_FIELDS = (
    "name",
    "carrier_id",
    "cluster_id",
    "chain_id",
    "channel_id",
    "officer_id",
    "is_key",
    *PROJECT_FIGURES,
    "description",
    *PLANNED_DATES,
)
# Stages a project may be registered in; later ones are reached through the lifecycle.
INITIAL_STAGES = (Stage.PLANNED, Stage.ATTRACTING)


# Checking values ---------------------------------------------------------------------------


class ProjectLookups:
    """The chains, officers and 载体 the checks read. By default each is read when asked
    (`db.session.get`, from the identity map when loaded); `preload` reads them all at once,
    for a check of many projects (then what it did not load does not exist)."""

    def __init__(self) -> None:
        self._loaded: dict[type, dict[int, Any]] | None = None

    @classmethod
    def preload(
        cls, chains: Iterable[Chain], officers: Iterable[User], carriers: Iterable[Carrier]
    ) -> ProjectLookups:
        lookups = cls()
        lookups._loaded = {
            Chain: {c.id: c for c in chains},
            User: {u.id: u for u in officers},
            Carrier: {c.id: c for c in carriers},
        }
        return lookups

    def get(self, model: type, ident: int | None) -> Any:
        if not ident:
            return None
        if self._loaded is None:
            return db.session.get(model, ident)
        return self._loaded[model].get(ident)


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


def _officer_errors(
    values: dict[str, Any], project: Project | None, lookups: ProjectLookups
) -> dict[str, str]:
    """The 责任人 is an active officer of the project's 载体: an officer of another 载体 could
    not even open the project. One kept as it was (same officer, same 载体) is left alone."""
    officer_id = values.get("officer_id", project.officer_id if project else None)
    carrier_id = values.get("carrier_id", project.carrier_id if project else None)
    if project is not None and (officer_id, carrier_id) == (project.officer_id, project.carrier_id):
        return {}
    error = officer_in_charge_error(lookups.get(User, officer_id), lookups.get(Carrier, carrier_id))
    return {"officer_id": error} if error else {}


def clean_project_values(
    user: User, values: dict[str, Any], project: Project | None = None
) -> dict[str, Any]:
    """The project fields of `values`, the name trimmed; an officer's projects are in its
    own 载体 (an edit keeps the project's, which is the same)."""
    values = {k: values[k] for k in PROJECT_FIELDS if k in values}
    values["name"] = values["name"].strip()
    if user.role is Role.OFFICER:
        values["carrier_id"] = project.carrier_id if project else user.carrier_id
    return values


def project_value_errors(
    values: dict[str, Any],
    *,
    project: Project | None = None,
    lookups: ProjectLookups | None = None,
) -> dict[str, str]:
    """What is wrong with cleaned project `values` (`clean_project_values`), by field: the
    rules of a project's values wherever they come from (form, ledger, demo data)."""
    lookups = lookups or ProjectLookups()
    errors = planned_date_errors(values) | _officer_errors(values, project, lookups)
    if values.get("chain_id"):
        chain = lookups.get(Chain, values["chain_id"])
        if chain is None or chain.cluster_id != values.get("cluster_id"):
            errors["chain_id"] = "所选产业链不属于所选产业集群"
    if (
        values.get("fixed_asset_investment") is not None
        and values.get("total_investment") is not None
        and values["fixed_asset_investment"] > values["total_investment"]
    ):
        errors["fixed_asset_investment"] = "固定资产投资不能大于总投资"
    return errors


def _check_project_values(
    user: User, values: dict[str, Any], project: Project | None = None
) -> dict[str, Any]:
    values = clean_project_values(user, values, project)
    if errors := project_value_errors(values, project=project):
        raise ServiceError(errors=errors)
    return values


# Registering -------------------------------------------------------------------------------


class CourtingUnconfirmed(ServiceError):
    """Other 载体 court the company (跨载体冲突) and the user has not said to register anyway;
    `courting` lists their projects, for the form to show before it asks again."""

    def __init__(self, courting: list[Courting]):
        super().__init__("其他载体正在跟进该企业，确认后才能登记")
        self.courting = courting


@dataclass
class NewProject:
    """One project to register: checked `values` (PROJECT_FIELDS), its first stage, and its
    company, registered (`company`) or to register with it (`new_company`: the values
    `create_companies_bulk` takes). `courting`: the projects of other 载体 courting the
    company, when the caller has looked them up already (None: looked up here)."""

    values: dict[str, Any]
    stage: Stage
    company: Company | None = None
    new_company: dict[str, Any] | None = None
    courting: list[Courting] | None = None
    carrier_name: str = ""  # for the conflicts' audit entries; looked up when empty
    company_id: int = field(default=0, init=False)


@dataclass
class Registered:
    """What `register_projects` wrote: the projects' ids (in the order given), how many
    companies and cross-载体 conflicts it registered with them."""

    ids: list[int]
    companies: int = 0
    conflicts: int = 0


def register_projects(
    user: User, entries: list[NewProject], *, via: str = "", at: datetime | None = None
) -> Registered:
    """Register `entries` in a few statements: their new companies, the projects with their
    search text, their first history rows, their cross-载体 conflicts, each audited. `via`
    names the way in, in the history and the audit log (台账导入)."""
    for entry in entries:
        if entry.stage not in INITIAL_STAGES:
            raise ServiceError(errors={"stage": "新项目只能登记为谋划或招引阶段"})
    if not entries:
        return Registered([])
    at = at or utcnow()
    companies = _register_companies(user, entries, via, at)
    ids = _insert_projects(user, entries, at)
    _record_first_stages(user, ids, entries, via, at)
    suffix = f"（{via}）" if via else ""
    record_bulk(
        user,
        "project_created",
        [(pid, e.values["name"] + suffix, {}) for pid, e in zip(ids, entries, strict=True)],
        object_type="projects",
        at=at,
    )
    conflicts = _record_courting(user, ids, entries, at)
    return Registered(ids, companies, conflicts)


def _register_companies(user: User, entries: list[NewProject], via: str, at: datetime) -> int:
    """Each entry's company id: its registered company, or one registered now (once per
    credit code, or name without one)."""
    new = [e.new_company for e in entries if e.company is None and e.new_company is not None]
    created = create_companies_bulk(user, new, via=via, at=at) if new else {}
    for entry in entries:
        if entry.company is not None:
            entry.company_id = entry.company.id
        else:
            entry.company_id = created[company_identity(entry.new_company)]
    return len(created)


def _company_name(entry: NewProject) -> str:
    return entry.company.name if entry.company is not None else entry.new_company["name"]


def _insert_projects(user: User, entries: list[NewProject], at: datetime) -> list[int]:
    params = [
        {
            **e.values,
            "company_id": e.company_id,
            "search_text": search_text(e.values["name"], _company_name(e)),
            "stage": e.stage,
            "status": Status.ACTIVE,
            "created_by_id": user.id,
            "created_at": at,
            "updated_at": at,
            "version": 1,
            "is_deleted": False,
        }
        for e in entries
    ]
    # RETURNING in any order (SQLite cannot batch an ordered one): matched back by company
    # and name, which must be unique among the new projects.
    returned = db.session.execute(
        sa.insert(Project).returning(Project.id, Project.company_id, Project.name), params
    ).all()
    by_key = {(company_id, name): pid for pid, company_id, name in returned}
    ids = [by_key[p["company_id"], p["name"]] for p in params]
    if len(set(ids)) != len(params):
        raise ServiceError("有重复的项目（同一企业、同一项目名称），未写入任何数据")
    return ids


def _record_first_stages(
    user: User, ids: list[int], entries: list[NewProject], via: str, at: datetime
) -> None:
    """The first history row of each new project (from nothing to its stage)."""
    db.session.execute(
        sa.insert(StageChange),
        [
            {
                "project_id": pid,
                "from_stage": None,
                "to_stage": e.stage,
                "reason": via,
                "changed_by_id": user.id,
                "changed_at": at,
                "officer_id": e.values.get("officer_id"),
            }
            for pid, e in zip(ids, entries, strict=True)
        ],
    )


def _record_courting(user: User, ids: list[int], entries: list[NewProject], at: datetime) -> int:
    """The cross-载体 conflicts of the new projects, looked up at once for those whose caller
    did not, and audited as a conflict registered at the form is."""
    unknown = [(pid, e) for pid, e in zip(ids, entries, strict=True) if e.courting is None]
    if unknown:
        companies = {
            e.company_id: e.company or db.session.get(Company, e.company_id) for _p, e in unknown
        }
        lookup = CourtingLookup(companies.values())
        for pid, entry in unknown:
            company = companies[entry.company_id]
            entry.courting = lookup.of(company, entry.values.get("carrier_id"), exclude=[pid])
    courted = []
    for pid, entry in zip(ids, entries, strict=True):
        if not entry.courting:
            continue
        carrier_name = entry.carrier_name or _carrier_name(entry.values.get("carrier_id"))
        courted.append(CourtedProject(pid, entry.values["name"], carrier_name, entry.courting))
    return len(record_conflicts_bulk(user, courted, at))


def _carrier_name(carrier_id: int | None) -> str:
    carrier = db.session.get(Carrier, carrier_id) if carrier_id else None
    return carrier.name if carrier else ""


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
        # The 载体 as clean_project_values settles it: an officer's own.
        carrier_id = user.carrier_id if user.role is Role.OFFICER else values.get("carrier_id")
        if courting := courting_projects(company, carrier_id):
            raise CourtingUnconfirmed(courting)
    if stage not in INITIAL_STAGES:
        raise ServiceError(errors={"stage": "新项目只能登记为谋划或招引阶段"})
    values = _check_project_values(user, values)
    (project_id,) = register_projects(user, [NewProject(values, stage, company=company)]).ids
    return db.session.get(Project, project_id)


# Updating ----------------------------------------------------------------------------------


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
    # The 下一步 task follows the officer; open tasks follow the project into its new scope.
    if changes.keys() & {"officer_id", "carrier_id", "cluster_id"}:
        db.session.flush()
        next_action_changed(user, [project.id])
    return project


@dataclass
class ProjectUpdate:
    """New checked `values` for `project`, over the version it was read at; `company_name`
    for its search text (its company's name, unless the update names another)."""

    project: Project
    values: dict[str, Any]
    company_name: str


def update_projects_bulk(
    user: User, updates: list[ProjectUpdate], *, via: str = "", at: datetime | None = None
) -> None:
    """Write many edits in one UPDATE, each over the version it was read at (optimistic lock,
    as `update_project`: a project changed in between fails them all with ConflictError),
    each audited as `project_updated` with the diff of what really changed. Every update
    sets the same fields (those of the first)."""
    if not updates:
        return
    at = at or utcnow()
    table = Project.__table__
    keys = list(updates[0].values)
    statement = (
        sa.update(table)
        .where(table.c.id == sa.bindparam("p_id"), table.c.version == sa.bindparam("p_seen"))
        .values(
            {
                **{key: sa.bindparam(f"v_{key}") for key in keys},
                "version": table.c.version + 1,
                "search_text": sa.bindparam("p_search_text"),
                "updated_at": at,
            }
        )
    )
    params = [
        {
            "p_id": u.project.id,
            "p_seen": u.project.version,
            "p_search_text": search_text(u.values["name"], u.company_name),
            **{f"v_{key}": u.values[key] for key in keys},
        }
        for u in updates
    ]
    suffix = f"（{via}）" if via else ""
    audit = [
        (u.project.id, u.project.name + suffix, changes_of(u.project, u.values)) for u in updates
    ]
    result = db.session.execute(statement, params)
    if db.engine.dialect.supports_sane_multi_rowcount and result.rowcount != len(params):
        raise ConflictError("保存期间有项目被他人修改，未写入任何数据：请重新核对后再保存")
    for u in updates:
        db.session.expire(u.project)
    record_bulk(user, "project_updated", audit, object_type="projects", at=at)
    # The 下一步 tasks follow the officers, for the projects whose officer changed.
    reassigned = [pid for pid, _name, changes in audit if "officer_id" in changes]
    next_action_changed(user, reassigned, bulk=True)
