"""Catalogue rules: names unique, entries deactivated and never deleted, every change audited.

One set of functions serves the six catalogues (载体, 产业集群, 产业链, 招商渠道, 终止原因, 部门);
a `CatalogKind` says what is particular to each: its table, its Chinese name, its extra fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from crm.audit.services import apply_changes, record
from crm.catalog.models import (
    Carrier,
    CatalogEntry,
    Chain,
    Channel,
    Cluster,
    ClusterCategory,
    Department,
    TerminationReason,
)
from crm.core import ServiceError
from crm.extensions import db

NAME_MAX = 100
LEADING_INDUSTRY_MAX = 200
SHORT_NAME_MAX = 50
SORT_ORDER_MAX = 99999


@dataclass(frozen=True)
class CatalogKind:
    """One catalogue: its URL slug, model, Chinese name and the fields beyond the shared ones."""

    slug: str
    model: type[CatalogEntry]
    label: str
    extra_fields: tuple[str, ...] = ()

    @property
    def fields(self) -> tuple[str, ...]:
        return ("name", "sort_order", "is_active", *self.extra_fields)


CATALOG_KINDS: tuple[CatalogKind, ...] = (
    CatalogKind("carriers", Carrier, "载体", ("leading_industry",)),
    CatalogKind("clusters", Cluster, "产业集群", ("category",)),
    CatalogKind("chains", Chain, "产业链", ("cluster_id",)),
    CatalogKind("channels", Channel, "招商渠道"),
    CatalogKind("termination-reasons", TerminationReason, "终止原因"),
    CatalogKind("departments", Department, "部门", ("short_name",)),
)
_BY_SLUG = {kind.slug: kind for kind in CATALOG_KINDS}


def get_kind(slug: str) -> CatalogKind | None:
    return _BY_SLUG.get(slug)


def list_entries(kind: CatalogKind) -> list[CatalogEntry]:
    """Every entry of a catalogue, inactive ones included, in display order."""
    model = kind.model
    stmt = sa.select(model)
    if model is Chain:
        stmt = (
            stmt.join(Chain.cluster)
            .options(selectinload(Chain.cluster))
            .order_by(Cluster.sort_order, Cluster.name, Chain.sort_order, Chain.name)
        )
    else:
        stmt = stmt.order_by(model.sort_order, model.name)
    return list(db.session.scalars(stmt))


def active_entries(model: type[CatalogEntry], keep_id: int | None = None) -> list[CatalogEntry]:
    """Active entries, for a choice list; `keep_id` is kept even if inactive (the current value)."""
    condition = model.is_active.is_(True)
    if keep_id:
        condition = sa.or_(condition, model.id == keep_id)
    stmt = sa.select(model).where(condition).order_by(model.sort_order, model.name)
    return list(db.session.scalars(stmt))


def _check(kind: CatalogKind, entry: CatalogEntry | None, values: dict[str, Any]) -> dict[str, str]:
    """Validate and normalise `values` in place; return {field: message} for what is refused."""
    unknown = set(values) - set(kind.fields)
    if unknown:
        raise TypeError(f"unexpected fields for {kind.slug}: {sorted(unknown)}")
    errors: dict[str, str] = {}
    model = kind.model

    name = (values.get("name") or "").strip()
    values["name"] = name
    if not name:
        errors["name"] = "请填写名称"
    elif len(name) > NAME_MAX:
        errors["name"] = f"名称不能超过 {NAME_MAX} 个字"

    sort_order = values.get("sort_order")
    values["sort_order"] = sort_order = 0 if sort_order is None else sort_order
    if not 0 <= sort_order <= SORT_ORDER_MAX:
        errors["sort_order"] = f"排序须在 0 到 {SORT_ORDER_MAX} 之间"
    values["is_active"] = bool(values.get("is_active", True))

    if model is Carrier:
        industry = (values.get("leading_industry") or "").strip()
        values["leading_industry"] = industry
        if len(industry) > LEADING_INDUSTRY_MAX:
            errors["leading_industry"] = f"主导产业不能超过 {LEADING_INDUSTRY_MAX} 个字"

    if model is Department:
        short_name = (values.get("short_name") or "").strip()
        values["short_name"] = short_name
        if len(short_name) > SHORT_NAME_MAX:
            errors["short_name"] = f"简称不能超过 {SHORT_NAME_MAX} 个字"

    if model is Cluster and not isinstance(values.get("category"), ClusterCategory):
        errors["category"] = "请选择产业类别"

    same_name = sa.select(model.id).where(model.name == name)
    if entry is not None:
        same_name = same_name.where(model.id != entry.id)
    duplicate_message = f"已有同名的{kind.label}"

    if model is Chain:
        cluster_id = values.get("cluster_id") or None
        values["cluster_id"] = cluster_id
        cluster = db.session.get(Cluster, cluster_id) if cluster_id else None
        if cluster is None:
            errors["cluster_id"] = "请选择所属产业集群"
        elif not cluster.is_active and (entry is None or entry.cluster_id != cluster_id):
            errors["cluster_id"] = "该产业集群已停用"
        same_name = same_name.where(Chain.cluster_id == cluster_id)
        duplicate_message = "该产业集群下已有同名的产业链"

    if "name" not in errors and db.session.scalar(same_name.limit(1)) is not None:
        errors["name"] = duplicate_message
    return errors


def _flush(kind: CatalogKind) -> None:
    """Flush; a unique-constraint race lost to another request becomes a message at the name.

    After a ServiceError the caller rolls the session back, as after any other.
    """
    try:
        db.session.flush()
    except sa.exc.IntegrityError as error:
        raise ServiceError(errors={"name": f"已有同名的{kind.label}"}) from error


def create_entry(actor, kind: CatalogKind, **values: Any) -> CatalogEntry:
    """Add an entry to a catalogue. Fields: name, sort_order, is_active and the kind's extras."""
    if errors := _check(kind, None, values):
        raise ServiceError(errors=errors)
    entry = kind.model(**values)
    db.session.add(entry)
    _flush(kind)
    record(actor, "catalog_created", entry, summary=f"{kind.label}：{entry.name}")
    db.session.flush()
    return entry


def update_entry(actor, kind: CatalogKind, entry: CatalogEntry, **values: Any) -> CatalogEntry:
    """Change an entry; deactivating (is_active=False) is how an entry is retired."""
    if not isinstance(entry, kind.model):
        raise TypeError(f"{entry!r} is not a {kind.slug} entry")
    if errors := _check(kind, entry, values):
        raise ServiceError(errors=errors)
    changes = apply_changes(entry, values)
    if changes:
        _flush(kind)
        action = "catalog_updated"
        if "is_active" in changes:
            action = "catalog_activated" if entry.is_active else "catalog_deactivated"
        record(actor, action, entry, summary=f"{kind.label}：{entry.name}", changes=changes)
        db.session.flush()
    return entry
