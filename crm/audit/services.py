"""Writing the audit log. Services call `record` in the same transaction as their change."""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from crm.audit.models import AuditEntry
from crm.extensions import db


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if hasattr(value, "id") and hasattr(value, "__tablename__"):
        return value.id
    return value


def apply_changes(obj: Any, values: dict[str, Any]) -> dict[str, list[Any]]:
    """Set `values` on `obj`; return the diff {field: [old, new]} of what really changed."""
    diff: dict[str, list[Any]] = {}
    for field, new in values.items():
        old = getattr(obj, field)
        if _plain(old) != _plain(new):
            diff[field] = [_plain(old), _plain(new)]
            setattr(obj, field, new)
    return diff


def record(
    user,
    action: str,
    obj: Any = None,
    summary: str = "",
    changes: dict[str, Any] | None = None,
    object_type: str | None = None,
) -> AuditEntry:
    if obj is not None and getattr(obj, "id", None) is None:
        db.session.flush()
    entry = AuditEntry(
        user_id=getattr(user, "id", None),
        action=action,
        object_type=object_type or (obj.__tablename__ if obj is not None else ""),
        object_id=getattr(obj, "id", None),
        summary=summary[:500],
        changes={
            k: _plain(v) if not isinstance(v, list) else v for k, v in (changes or {}).items()
        },
    )
    db.session.add(entry)
    return entry
