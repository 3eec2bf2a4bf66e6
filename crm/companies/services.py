"""Companies and contacts: registering and editing them."""

from __future__ import annotations

from typing import Any, NamedTuple

import sqlalchemy as sa

from crm.access import own_carrier_id
from crm.audit.services import apply_changes, record
from crm.auth.models import User
from crm.companies.credit_code import credit_code_error, normalize
from crm.companies.models import HEAD_LENGTH, Company, Contact
from crm.companies.names import (
    name_key,
    similarity,
    split_name,
)  # name_key: the ledger imports it here
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

# Likely matches: names at least this alike (0–100) are shown before a company is registered.
MATCH_THRESHOLD = 80.0
# The fuzzy pass reads at most this many companies whose key starts like the new one's.
_FUZZY_CANDIDATES = 200


class LikelyMatch(NamedTuple):
    """A registered company that may be the one being registered (重复企业)."""

    company: Company
    normalised: str  # its name as matched: key and regions
    score: float  # 0–100; 100 for the same credit code or the same normalised name


def likely_matches(
    name: str, credit_code: str | None = None, limit: int = 5, exclude_id: int | None = None
) -> list[LikelyMatch]:
    """Registered companies that may be the company `name` / `credit_code`, best first.

    An indexed lookup, not a scan: the company with the code, those with the same name key
    (then kept only if their regions agree), and a bounded fuzzy pass over at most
    `_FUZZY_CANDIDATES` companies whose key starts with the same characters (`name_head`), scored by
    rapidfuzz. Deleted and merged companies are never offered. Used by the company form and
    the ledger import."""
    parts = split_name(name or "")
    code = normalize(credit_code or "")
    alive = [Company.is_deleted.is_(False)]
    if exclude_id:
        alive.append(Company.id != exclude_id)
    found: dict[int, LikelyMatch] = {}
    if code and not credit_code_error(code):
        for company in db.session.scalars(
            sa.select(Company).where(Company.credit_code == code, *alive)
        ):
            found[company.id] = LikelyMatch(company, split_name(company.name).normalised, 100.0)
    if parts.key:
        head = parts.key[:HEAD_LENGTH]
        same_key = db.session.scalars(
            sa.select(Company).where(Company.name_key == parts.key, *alive)
        ).all()
        alike = db.session.scalars(
            sa.select(Company)
            .where(
                Company.name_head == head,
                Company.name_key != parts.key,
                *alive,
            )
            .order_by(Company.name_key)
            .limit(_FUZZY_CANDIDATES)
        ).all()
        candidates = [*same_key, *alike]
        for company in candidates:
            if company.id in found:
                continue
            other = split_name(company.name)
            score = similarity(parts, other)
            if code and company.credit_code and company.credit_code != code:
                continue  # two valid registrations: two legal persons, however alike
            if score >= MATCH_THRESHOLD:
                found[company.id] = LikelyMatch(company, other.normalised, score)
    return sorted(found.values(), key=lambda m: (-m.score, m.company.id))[:limit]


def _clean_company(values: dict[str, Any], company_id: int | None = None) -> dict[str, Any]:
    values = {k: values[k] for k in COMPANY_FIELDS if k in values}
    values["name"] = values["name"].strip()
    values["name_key"] = name_key(values["name"])
    values["name_head"] = values["name_key"][:HEAD_LENGTH]
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


class DuplicatesUnconfirmed(ServiceError):
    """The company may be registered already (`matches`) and the user has not said it is a
    different one: nothing is saved, the form shows the matches and asks again."""

    def __init__(self, matches: list[LikelyMatch]):
        super().__init__("企业库中已有名称相近的企业，请核对；确认不是同一企业后才能登记")
        self.matches = matches


def create_company(
    user: User, values: dict[str, Any], *, duplicates_confirmed: bool = True
) -> Company:
    """Register a company. A user at the form is asked first: with
    `duplicates_confirmed=False` and likely matches (`likely_matches`), nothing is saved and
    DuplicatesUnconfirmed lists them. Callers with nobody to ask keep the default."""
    cleaned = _clean_company(values)
    if not duplicates_confirmed and (
        matches := likely_matches(cleaned["name"], cleaned["credit_code"])
    ):
        raise DuplicatesUnconfirmed(matches)
    company = Company(
        **cleaned,
        registered_by_carrier_id=own_carrier_id(user),
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
