"""Companies and contacts: registering and editing them."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import sqlalchemy as sa

from crm.audit.services import apply_changes, record
from crm.auth.models import Role, User
from crm.companies.credit_code import credit_code_error, normalize
from crm.companies.models import Company, Contact
from crm.core import ServiceError
from crm.extensions import db

COMPANY_FIELDS = (
    "name",
    "credit_code",
    "legal_representative",
    "registered_capital",
    "origin",
    "industry",
)
CONTACT_FIELDS = ("name", "position", "phone", "email", "wechat", "notes")

# Legal-form endings that do not tell two companies apart, longest first.
_NAME_SUFFIXES = (
    "集团股份有限公司",
    "集团有限责任公司",
    "集团有限公司",
    "股份有限公司",
    "有限责任公司",
    "有限公司",
    "集团公司",
    "集团",
    "公司",
    "corporation",
    "limited",
    "co.,ltd.",
    "co.,ltd",
    "co.ltd",
    "ltd.",
    "ltd",
    "inc.",
    "inc",
)


def name_key(name: str) -> str:
    """The company name for matching: full-width folded, lower case, no spaces, no "(中国)",
    no legal-form suffix. 安徽 某某 药业有限公司 and 安徽某某药业 match."""
    key = unicodedata.normalize("NFKC", name).lower()
    key = re.sub(r"\s+", "", key).replace("(中国)", "")
    stripped = True
    while stripped:
        stripped = False
        for suffix in _NAME_SUFFIXES:
            if key.endswith(suffix) and len(key) > len(suffix):
                key = key[: -len(suffix)]
                stripped = True
                break
    return key[:200]


def _clean_company(values: dict[str, Any], company_id: int | None = None) -> dict[str, Any]:
    values = {k: values[k] for k in COMPANY_FIELDS if k in values}
    values["name"] = values["name"].strip()
    values["name_key"] = name_key(values["name"])
    code = normalize(values.get("credit_code") or "")
    errors = {}
    if code:
        if message := credit_code_error(code):
            errors["credit_code"] = message
        else:
            taken = db.session.scalar(
                sa.select(Company.id).where(
                    Company.credit_code == code, Company.id != (company_id or 0)
                )
            )
            if taken:
                errors["credit_code"] = (
                    "该统一社会信用代码的企业已登记，请在企业库中查找或联系产业专班协调"
                )
    if errors:
        raise ServiceError(errors=errors)
    values["credit_code"] = code or None
    return values


def company_by_credit_code(code: str) -> Company | None:
    """The registered company with this 统一社会信用代码, if the code is valid and taken.

    Companies are shared records: an officer of another 载体 registers its project against
    this one rather than a duplicate (the cross-载体 conflict is then flagged)."""
    code = normalize(code or "")
    if not code or credit_code_error(code):
        return None
    return db.session.scalar(
        sa.select(Company).where(Company.credit_code == code, Company.is_deleted.is_(False))
    )


def create_company(user: User, values: dict[str, Any]) -> Company:
    company = Company(
        **_clean_company(values),
        registered_by_carrier_id=user.carrier_id if user.role is Role.OFFICER else None,
        created_by_id=user.id,
    )
    db.session.add(company)
    db.session.flush()
    record(user, "company_created", company, summary=company.name)
    return company


def update_company(user: User, company: Company, values: dict[str, Any]) -> Company:
    changes = apply_changes(company, _clean_company(values, company.id))
    if changes:
        record(user, "company_updated", company, summary=company.name, changes=changes)
    return company


def add_contact(user: User, company: Company, values: dict[str, Any]) -> Contact:
    contact = Contact(company_id=company.id, **{k: values[k] for k in CONTACT_FIELDS})
    db.session.add(contact)
    db.session.flush()
    record(user, "contact_created", contact, summary=f"{company.name}：{contact.name}")
    return contact


def update_contact(user: User, contact: Contact, values: dict[str, Any]) -> Contact:
    changes = apply_changes(contact, {k: values[k] for k in CONTACT_FIELDS})
    if changes:
        record(user, "contact_updated", contact, summary=contact.name, changes=changes)
    return contact


def archive_contact(user: User, contact: Contact) -> None:
    contact.is_deleted = True
    record(user, "contact_archived", contact, summary=contact.name)
