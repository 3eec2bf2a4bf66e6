"""Merging a duplicate company into the one that stays (合并重复企业), by an admin.

Everything that hangs on the duplicate moves: its projects (with their history, documents,
follow-ups and evaluations, which hang on the project), its contacts, and its credit code if
the kept company has none. The duplicate is soft-deleted with `merged_into_id`, both records
get an audit entry, and the projects that now share one company across 载体 are flagged as
cross-载体 conflicts. One transaction: the view commits, a refusal keeps nothing.

A module of its own: it builds on the projects package (conflicts), which builds on companies.
"""

from __future__ import annotations

import sqlalchemy as sa

from crm.audit.services import apply_changes, record
from crm.auth.models import Role, User
from crm.companies.models import Company, Contact
from crm.core import ServiceError, utcnow
from crm.extensions import db
from crm.projects.conflicts import record_conflicts
from crm.projects.models import Project

# Fields of the kept company filled from the duplicate when the kept one has none.
_FILLED = ("legal_representative", "registered_capital", "industry", "registered_by_carrier_id")


def merge_companies(user: User, absorbed: Company, kept: Company) -> Company:
    """Merge `absorbed` into `kept`; return `kept`."""
    if user.role is not Role.ADMIN:
        raise ServiceError("只有管理员可以合并企业")
    errors = {}
    if absorbed.id == kept.id:
        errors["kept_id"] = "请选择另一家企业：不能与自身合并"
    for field, company in (("absorbed_id", absorbed), ("kept_id", kept)):
        if company.is_deleted:
            errors[field] = f"“{company.name}”已删除或已被合并，不能再合并"
    if (
        not errors
        and absorbed.credit_code
        and kept.credit_code
        and absorbed.credit_code != kept.credit_code
    ):
        errors["kept_id"] = "两家企业的统一社会信用代码不同，是两个法人，不能合并"
    if errors:
        raise ServiceError(errors=errors)

    projects = db.session.scalars(
        sa.select(Project).where(Project.company_id == absorbed.id).order_by(Project.id)
    ).all()
    contacts = db.session.scalars(
        sa.select(Contact).where(Contact.company_id == absorbed.id).order_by(Contact.id)
    ).all()
    for project in projects:
        project.company_id = kept.id
        project.company = kept
    for contact in contacts:
        contact.company_id = kept.id

    filled = {
        field: getattr(absorbed, field)
        for field in _FILLED
        if getattr(kept, field) in (None, "") and getattr(absorbed, field) not in (None, "")
    }
    code = absorbed.credit_code if absorbed.credit_code and not kept.credit_code else None
    absorbed_changes = apply_changes(
        absorbed,
        {"is_deleted": True, "merged_into_id": kept.id, "credit_code": None},
    )
    absorbed.merged_at = utcnow()
    db.session.flush()  # the code is free before the kept company takes it
    if code:
        filled["credit_code"] = code
    kept_changes = apply_changes(kept, filled)
    db.session.flush()

    moved = {
        "absorbed_id": absorbed.id,
        "absorbed_name": absorbed.name,
        "projects": [p.id for p in projects],
        "contacts": [c.id for c in contacts],
    }
    record(
        user,
        "company_merged",
        kept,
        summary=(
            f"{absorbed.name}（#{absorbed.id}）并入{kept.name}：项目 {len(projects)} 个、"
            f"联系人 {len(contacts)} 位"
        ),
        changes=kept_changes | moved,
    )
    record(
        user,
        "company_merged_into",
        absorbed,
        summary=f"{absorbed.name}已并入{kept.name}（#{kept.id}）",
        changes=absorbed_changes | {"kept_id": kept.id, "kept_name": kept.name},
    )
    for project in projects:
        record_conflicts(user, project)
    return kept
