"""Stored files: project documents (投资协议, 可研报告, 考察报告) and evaluation evidence."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.auth.models import User
from crm.core import LabelledEnum, UTCDateTime, enum_column, utcnow
from crm.extensions import db


class DocumentKind(LabelledEnum):
    AGREEMENT = "投资协议"
    FEASIBILITY = "可研报告"
    INSPECTION = "考察报告"
    EVIDENCE = "评估佐证材料"
    DOSSIER = "尽调摘要存档"  # the PDF frozen when a decision is taken
    OTHER = "其他"


class StoredFile(db.Model):
    """One uploaded file. The bytes live under a generated name; the user's name is kept."""

    __tablename__ = "stored_files"
    __table_args__ = (sa.UniqueConstraint("stored_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(sa.ForeignKey("projects.id"), index=True)
    kind: Mapped[DocumentKind] = mapped_column(enum_column(DocumentKind, "kind"))
    original_name: Mapped[str] = mapped_column(sa.String(255))
    stored_name: Mapped[str] = mapped_column(sa.String(64))
    content_type: Mapped[str] = mapped_column(sa.String(100))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(sa.String(64))
    uploaded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    is_deleted: Mapped[bool] = mapped_column(default=False, server_default=sa.false())

    uploaded_by: Mapped[User | None] = relationship()
