"""Companies and contacts: registering and editing them."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa

from crm.access import own_carrier_id
from crm.audit.services import apply_changes, record, record_bulk
from crm.auth.models import Role, User
from crm.companies.credit_code import credit_code_error, normalize
from crm.companies.models import HEAD_LENGTH, Company, Contact
from crm.companies.names import NameParts, name_key, similarity, split_name
from crm.core import ServiceError, utcnow
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
    rapidfuzz. Deleted and merged companies are never offered. Used by the company form;
    the ledger import asks for a whole file at once (`likely_matches_bulk`)."""
    return likely_matches_bulk([(name, credit_code)], limit, exclude_id)[0]


_CHUNK = 2000  # values per IN (…) list


def likely_matches_bulk(
    wanted: list[tuple[str, str | None]], limit: int = 5, exclude_id: int | None = None
) -> list[list[LikelyMatch]]:
    """`likely_matches` of each (name, credit code), read in a few queries for all of them."""
    asked = [(split_name(name or ""), normalize(code or "")) for name, code in wanted]
    codes = sorted({code for _p, code in asked if code and not credit_code_error(code)})
    keys = sorted({parts.key for parts, _c in asked if parts.key})
    alive = [Company.is_deleted.is_(False)]
    if exclude_id:
        alive.append(Company.id != exclude_id)
    by_code = {c.credit_code: c for c in _companies_where(Company.credit_code, codes, alive)}
    same_key: dict[str, list[Company]] = defaultdict(list)
    for company in _companies_where(Company.name_key, keys, alive):
        same_key[company.name_key].append(company)
    heads = _companies_by_head(keys, same_key, alive)
    parts_of: dict[int, NameParts] = {}

    def parts(company: Company) -> NameParts:
        if company.id not in parts_of:
            parts_of[company.id] = split_name(company.name)
        return parts_of[company.id]

    out = []
    for wanted_parts, code in asked:
        found: dict[int, LikelyMatch] = {}
        if code in by_code:
            company = by_code[code]
            found[company.id] = LikelyMatch(company, parts(company).normalised, 100.0)
        if wanted_parts.key:
            alike = [
                c
                for c in heads.get(wanted_parts.key[:HEAD_LENGTH], [])
                if c.name_key != wanted_parts.key
            ][:_FUZZY_CANDIDATES]
            for company in [*same_key.get(wanted_parts.key, []), *alike]:
                if company.id in found:
                    continue
                other = parts(company)
                score = similarity(wanted_parts, other)
                if code and company.credit_code and company.credit_code != code:
                    continue  # two valid registrations: two legal persons, however alike
                if score >= MATCH_THRESHOLD:
                    found[company.id] = LikelyMatch(company, other.normalised, score)
        out.append(sorted(found.values(), key=lambda m: (-m.score, m.company.id))[:limit])
    return out


def _companies_where(column, values: list[str], alive: list) -> list[Company]:
    found: list[Company] = []
    for i in range(0, len(values), _CHUNK):
        found += db.session.scalars(
            sa.select(Company).where(column.in_(values[i : i + _CHUNK]), *alive)
        ).all()
    return found


def _companies_by_head(
    keys: list[str], same_key: dict[str, list[Company]], alive: list
) -> dict[str, list[Company]]:
    """For the fuzzy pass: per head of `keys`, the first companies by key, enough that each
    key still has `_FUZZY_CANDIDATES` of another key (those of its own key set aside)."""
    heads = sorted({key[:HEAD_LENGTH] for key in keys})
    own = max((len(same_key.get(key, [])) for key in keys), default=0)
    found: dict[str, list[Company]] = defaultdict(list)
    for i in range(0, len(heads), _CHUNK):
        ranked = (
            sa.select(
                Company.id,
                sa.func.row_number()
                .over(partition_by=Company.name_head, order_by=(Company.name_key, Company.id))
                .label("rank"),
            )
            .where(Company.name_head.in_(heads[i : i + _CHUNK]), *alive)
            .subquery()
        )
        for company in db.session.scalars(
            sa.select(Company)
            .join(ranked, ranked.c.id == Company.id)
            .where(ranked.c.rank <= _FUZZY_CANDIDATES + own)
            .order_by(Company.name_head, Company.name_key, Company.id)
        ):
            found[company.name_head].append(company)
    return found


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


def company_identity(values: dict[str, Any]) -> tuple[str, str]:
    """What tells a company to register apart: its credit code, or its name without one."""
    if values.get("credit_code"):
        return ("code", values["credit_code"])
    return ("name", values["name"])


def create_companies_bulk(
    user: User, companies: list[dict[str, Any]], *, via: str = "", at: datetime | None = None
) -> dict[tuple[str, str], int]:
    """Register many companies in one statement, each audited as `create_company` does; the
    ids by `company_identity` (a company named twice is registered once). Each holds a name,
    a credit code checked by the caller (or None) and an origin."""
    at = at or utcnow()
    registered_by = user.carrier_id if user.role is Role.OFFICER else None
    unique: dict[tuple[str, str], dict[str, Any]] = {}
    for values in companies:
        unique.setdefault(company_identity(values), values)
    params = [
        {
            "name": values["name"],
            "name_key": name_key(values["name"]),
            "credit_code": values.get("credit_code") or None,
            "origin": values["origin"],
            "legal_representative": "",
            "industry": "",
            "registered_by_carrier_id": registered_by,
            "created_by_id": user.id,
            "created_at": at,
            "updated_at": at,
            "is_deleted": False,
        }
        for values in unique.values()
    ]
    if not params:
        return {}
    # RETURNING in any order (SQLite cannot batch an ordered one): matched back by identity.
    returned = db.session.execute(
        sa.insert(Company).returning(Company.id, Company.credit_code, Company.name), params
    ).all()
    ids = {
        company_identity({"credit_code": code, "name": name}): cid for cid, code, name in returned
    }
    suffix = f"（{via}）" if via else ""
    record_bulk(
        user,
        "company_created",
        [(ids[identity], values["name"] + suffix, {}) for identity, values in unique.items()],
        object_type="companies",
        at=at,
    )
    return ids


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
