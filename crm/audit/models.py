"""The audit log: who did what, when, with a diff of the changed fields."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.auth.models import User
from crm.core import UTCDateTime, utcnow
from crm.extensions import db


class AuditEntry(db.Model):
    """One audited action. Rows are only ever inserted."""

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
