"""The audit log: who did what, when, with a diff of the changed fields."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.auth.models import User
from crm.core import UTCDateTime, utcnow
from crm.extensions import db


class AuditLogIsAppendOnly(RuntimeError):
    """Something tried to change or delete an audit entry."""


class AuditEntry(db.Model):
    """One audited action. Rows are only ever inserted: updating or deleting one raises
    (`_refuse_changes` below), whether through the ORM or an UPDATE/DELETE statement; and
    the database itself refuses UPDATE and DELETE of its rows, whatever sends them (triggers
    created by migration 3ed1d116c783)."""

    __tablename__ = "audit_entries"
    __table_args__ = (sa.Index(None, "object_type", "object_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(sa.String(64))
    object_type: Mapped[str] = mapped_column(sa.String(64))
    object_id: Mapped[int | None]
    summary: Mapped[str] = mapped_column(sa.String(500), default="", server_default="")
    changes: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)

    user: Mapped[User | None] = relationship()


@sa.event.listens_for(AuditEntry, "before_update")
@sa.event.listens_for(AuditEntry, "before_delete")
def _refuse_changes(_mapper, _connection, target: AuditEntry) -> None:
    raise AuditLogIsAppendOnly(f"audit entry {target.id} cannot be changed or deleted")


@sa.event.listens_for(sa.orm.Session, "do_orm_execute")
def _refuse_bulk_changes(state: sa.orm.ORMExecuteState) -> None:
    """`session.execute(update(AuditEntry)...)` and `delete(AuditEntry)` are refused too."""
    if not (state.is_update or state.is_delete):
        return
    table = getattr(state.statement, "table", None)
    if table is AuditEntry.__table__ or any(m.class_ is AuditEntry for m in state.all_mappers):
        raise AuditLogIsAppendOnly("audit entries cannot be changed or deleted")
