"""Writing a checked upload (the confirmation): all rows or none, through the projects'
bulk registration and update (`crm.projects.registration`), which record the history, the
conflicts, the search text and the audit entries as the project form does."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from crm.audit.services import record
from crm.auth.models import User
from crm.core import ConflictError, ServiceError, utcnow
from crm.extensions import db
from crm.ledger.plan import ImportPlan, RowPlan, newest_ids
from crm.projects.registration import (
    NewProject,
    ProjectUpdate,
    register_projects,
    update_projects_bulk,
)

VIA = "台账导入"  # the way in, in the history and the audit log


@dataclass
class ImportResult:
    created: int
    updated: int
    unchanged: int
    companies: int
    conflicts: int  # cross-载体 conflicts registered
    kept: int = 0  # rows changed in the app since the export, not chosen: left as they are


def apply_import(
    user: User, plan: ImportPlan, filename: str = "", chosen: Iterable[str] = ()
) -> ImportResult:
    """Write a plan without errors, in bulk statements; the caller commits (all or none).

    A conflicting row (its project changed in the app since the export) is applied only when
    `chosen` holds its `RowPlan.choice`; the others keep the app's values."""
    if not plan.ok:
        raise ServiceError("导入文件有误，未写入任何数据")
    now = utcnow()
    creates = [r for r in plan.rows if r.action == "create"]
    if creates and newest_ids() != plan.newest:
        # Someone registered a company or a project since the plan was made: the plan's
        # matching (same company, same project, courting 载体) may be out of date.
        raise ConflictError("导入期间有他人登记了企业或项目，未写入任何数据：请重新预览后再导入")
    registered = register_projects(user, [_new_project(r) for r in creates], via=VIA, at=now)
    chosen = set(chosen)
    updates = [
        r
        for r in plan.rows
        if r.action == "update" or (r.action == "conflict" and r.choice in chosen)
    ]
    try:
        update_projects_bulk(user, [_update(r) for r in updates], via=VIA, at=now)
    except ConflictError as exc:
        raise ConflictError("导入期间有项目被他人修改，未写入任何数据：请重新预览后再导入") from exc
    result = ImportResult(
        created=len(creates),
        updated=len(updates),
        unchanged=plan.count("unchanged"),
        companies=registered.companies,
        conflicts=registered.conflicts,
        kept=plan.count("conflict") - (len(updates) - plan.count("update")),
    )
    _record_import(user, plan, filename, result)
    db.session.flush()
    return result


def _new_project(row: RowPlan) -> NewProject:
    return NewProject(
        row.values,
        row.stage,
        company=row.company,
        new_company=row.new_company,
        courting=row.courting,
        carrier_name=row.carrier_name,
    )


def _update(row: RowPlan) -> ProjectUpdate:
    company = row.company or row.project.company
    return ProjectUpdate(row.project, row.values, company.name)


def _record_import(user: User, plan: ImportPlan, filename: str, result: ImportResult) -> None:
    """The import's own audit entry, with its counts."""
    record(
        user,
        "ledger_imported",
        summary=(
            f"导入项目台账“{filename}”：新建 {result.created}，更新 {result.updated}，"
            f"无变化 {result.unchanged}"
        )[:500],
        changes={
            "rows": len(plan.rows),
            "created": result.created,
            "updated": result.updated,
            "unchanged": result.unchanged,
            "companies": result.companies,
            "conflicts": result.conflicts,
            "kept": result.kept,
        },
        object_type="ledger",
    )
