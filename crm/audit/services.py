"""The audit log. Services call `record` in the same transaction as their change; events that
are not part of a change (refused requests, timeouts) use `record_separately`. The admin's
search and CSV export read it (`audit_query`, `audit_csv_rows`); nothing changes or deletes it."""

from __future__ import annotations

import csv
import enum
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from crm.audit.labels import (
    ACTION_LABELS,
    action_label,
    describe_entries,
    object_type_label,
)
from crm.audit.models import AuditEntry
from crm.auth.models import User
from crm.core import LOCAL_TZ, utcnow
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


def changes_of(obj: Any, values: dict[str, Any]) -> dict[str, list[Any]]:
    """The diff {field: [old, new]} that setting `values` on `obj` would make."""
    diff: dict[str, list[Any]] = {}
    for field, new in values.items():
        old = getattr(obj, field)
        if _plain(old) != _plain(new):
            diff[field] = [_plain(old), _plain(new)]
    return diff


def apply_changes(obj: Any, values: dict[str, Any]) -> dict[str, list[Any]]:
    """Set `values` on `obj`; return the diff {field: [old, new]} of what really changed."""
    diff = changes_of(obj, values)
    for field in diff:
        setattr(obj, field, values[field])
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


def record_bulk(
    user,
    action: str,
    entries: Iterable[tuple[int, str, dict[str, Any]]],
    *,
    object_type: str,
    at: datetime | None = None,
) -> int:
    """`record` for many objects in one statement: (object id, summary, changes) each, as
    `record` would write them (summaries cut to 500 characters, the diff already plain).
    For the bulk writers (the ledger import); returns the number of entries written."""
    at = at or utcnow()
    rows = [
        {
            "user_id": getattr(user, "id", None),
            "action": action,
            "object_type": object_type,
            "object_id": object_id,
            "summary": summary[:500],
            "changes": changes,
            "created_at": at,
        }
        for object_id, summary, changes in entries
    ]
    if rows:
        db.session.execute(sa.insert(AuditEntry), rows)
    return len(rows)


def record_separately(
    user_id: int | None,
    action: str,
    obj: Any = None,
    summary: str = "",
    object_type: str | None = None,
) -> None:
    """Write one entry in a transaction of its own, for an event that is not part of a change
    (a refused request, a session that timed out): in a request, at its edge once the
    request's own work is committed or rolled back (crm/transaction.py, `separately`);
    elsewhere at once. Never raises: a failure is logged."""
    from crm import transaction

    entry = AuditEntry(
        user_id=user_id,
        action=action,
        object_type=object_type or (obj.__tablename__ if obj is not None else ""),
        object_id=getattr(obj, "id", None),
        summary=summary[:500],
        changes={},
    )
    transaction.separately(lambda: db.session.add(entry))


# Reading the log (系统管理 → 审计日志) ----------------------------------------------------------


@dataclass
class AuditFilter:
    """The admin's search: every part optional; dates are local (Asia/Shanghai) and inclusive."""

    user: str = ""  # user name or display name, a part of it
    action: str = ""
    object_type: str = ""
    object_id: int | None = None
    date_from: date | None = None
    date_to: date | None = None
    text: str = ""  # a part of the summary


_EARLIEST, _LATEST = date(1900, 1, 1), date(2999, 12, 31)


def _local_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=LOCAL_TZ).astimezone(UTC)


def audit_query(f: AuditFilter) -> sa.Select:
    """Matching entries, newest first, with their users loaded."""
    stmt = sa.select(AuditEntry).options(selectinload(AuditEntry.user))
    if f.user.strip():
        q = f.user.strip()
        stmt = stmt.join(User, User.id == AuditEntry.user_id).where(
            sa.or_(
                User.username.icontains(q, autoescape=True),
                User.display_name.icontains(q, autoescape=True),
            )
        )
    if f.action:
        stmt = stmt.where(AuditEntry.action == f.action)
    if f.object_type:
        stmt = stmt.where(AuditEntry.object_type == f.object_type)
    if f.object_id is not None:
        stmt = stmt.where(AuditEntry.object_id == f.object_id)
    # Dates outside the years the log can hold are as good as open ends (and 9999-12-31 + 1 day
    # would overflow).
    if f.date_from and f.date_from > _EARLIEST:
        stmt = stmt.where(AuditEntry.created_at >= _local_midnight(min(f.date_from, _LATEST)))
    if f.date_to and f.date_to < _LATEST:
        stmt = stmt.where(
            AuditEntry.created_at < _local_midnight(max(f.date_to, _EARLIEST) + timedelta(days=1))
        )
    if f.text.strip():
        stmt = stmt.where(AuditEntry.summary.icontains(f.text.strip(), autoescape=True))
    return stmt.order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc())


def audit_choices() -> tuple[list[str], list[str]]:
    """The actions and object types the log holds, for the search's drop-downs."""
    actions = db.session.scalars(sa.select(AuditEntry.action).distinct()).all()
    types = db.session.scalars(sa.select(AuditEntry.object_type).distinct()).all()
    return sorted(set(actions) | set(ACTION_LABELS)), sorted(t for t in types if t)


CSV_HEADER = [
    "时间（北京时间）",
    "用户名",
    "姓名",
    "操作",
    "操作代码",
    "对象",
    "对象编号",
    "摘要",
    "变更",
    "对象类型代码",
    "变更数据（JSON）",
]


def _csv_cell(value: Any) -> str:
    """A cell a spreadsheet shows as text: one that starts like a formula gets a quote."""
    text = "" if value is None else str(value)
    if text and text[0] in "=+-@\t\r":
        return "'" + text
    return text


def audit_csv_rows(f: AuditFilter) -> Iterator[str]:
    """The matching entries as CSV text, a chunk at a time: a UTF-8 BOM first, so Excel opens
    the Chinese correctly; times in Asia/Shanghai; labels as on the page (操作, 对象, 变更), the
    codes and the raw diff in the last columns for whoever processes the file further."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    yield "\ufeff" + buffer.getvalue()
    result = db.session.execute(audit_query(f).execution_options(yield_per=500)).scalars()
    for chunk in result.partitions():
        buffer.seek(0)
        buffer.truncate()
        for entry, view in zip(chunk, describe_entries(chunk), strict=True):
            user = entry.user
            writer.writerow(
                _csv_cell(v)
                for v in (
                    entry.created_at.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M:%S"),
                    user.username if user else "",
                    user.display_name if user else "",
                    view.action,
                    entry.action,
                    view.object,
                    entry.object_id,
                    entry.summary,
                    view.changes_text,
                    entry.object_type,
                    json.dumps(entry.changes, ensure_ascii=False) if entry.changes else "",
                )
            )
        yield buffer.getvalue()


_FILTER_LABELS = {
    "user": "用户",
    "action": "操作",
    "object_type": "对象类型",
    "object_id": "对象编号",
    "date_from": "起始日期",
    "date_to": "截止日期",
    "text": "摘要包含",
}


def describe_filter(f: AuditFilter) -> str:
    """The search in words, for the export's own audit entry: 用户 张三；操作 登录…"""
    parts = []
    for part in fields(f):
        value = getattr(f, part.name)
        if value in (None, ""):
            continue
        if part.name == "action":
            value = action_label(value)
        elif part.name == "object_type":
            value = object_type_label(value)
        parts.append(f"{_FILTER_LABELS[part.name]} {value}")
    return "；".join(parts) or "全部记录"
