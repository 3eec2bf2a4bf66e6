"""Companies (企业) and their people (客商联系人)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.catalog.models import Carrier
from crm.core import LabelledEnum, Money, UTCDateTime, enum_column, utcnow
from crm.extensions import db

HEAD_LENGTH = 2


def _head_of_key(context) -> str:
    """Column default: the head of the inserted row's name_key (ORM and bulk inserts alike)."""
    return (context.get_current_parameters().get("name_key") or "")[:HEAD_LENGTH]


class Origin(LabelledEnum):
    IN_PROVINCE = "省内"
    OUT_OF_PROVINCE = "省外"
    OVERSEAS = "境外"


class Company(db.Model):
    __tablename__ = "companies"
    __table_args__ = (sa.UniqueConstraint("credit_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200), index=True)
    # The name normalised for matching (crm.companies.names: no spaces, brackets, legal form
    # or leading administrative divisions), to find the same company registered twice.
    name_key: Mapped[str] = mapped_column(sa.String(200), index=True, default="", server_default="")
    # The key's first characters: the likely-match search reads the companies starting alike by
    # this equality (indexed whatever the database's collation), then scores them.
    name_head: Mapped[str] = mapped_column(
        sa.String(HEAD_LENGTH), index=True, default=_head_of_key, server_default=""
    )
    # 统一社会信用代码; empty for a company not yet registered in China.
    credit_code: Mapped[str | None] = mapped_column(sa.String(18))
    legal_representative: Mapped[str] = mapped_column(sa.String(64), default="", server_default="")
    registered_capital: Mapped[Decimal | None] = mapped_column(Money)  # 万元
    origin: Mapped[Origin] = mapped_column(enum_column(Origin, "origin"))
    industry: Mapped[str] = mapped_column(sa.String(100), default="", server_default="")
    # The 载体 whose user registered the company; it sees the company before any project exists.
    registered_by_carrier_id: Mapped[int | None] = mapped_column(sa.ForeignKey("carriers.id"))
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    is_deleted: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    # Set when an admin merged this duplicate into another company (it is then deleted too).
    merged_into_id: Mapped[int | None] = mapped_column(sa.ForeignKey("companies.id"), index=True)
    merged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    merged_into: Mapped[Company | None] = relationship(remote_side=[id])
    registered_by_carrier: Mapped[Carrier | None] = relationship()
    contacts: Mapped[list[Contact]] = relationship(
        back_populates="company",
        primaryjoin="and_(Contact.company_id == Company.id, Contact.is_deleted == False)",
        order_by="Contact.id",
        viewonly=True,
    )

    def __str__(self) -> str:
        return self.name


class Contact(db.Model):
    """A person of a company the office deals with."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(sa.ForeignKey("companies.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(64))
    position: Mapped[str] = mapped_column(sa.String(100), default="", server_default="")
    phone: Mapped[str] = mapped_column(sa.String(32), default="", server_default="")
    email: Mapped[str] = mapped_column(sa.String(120), default="", server_default="")
    wechat: Mapped[str] = mapped_column(sa.String(64), default="", server_default="")
    notes: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    is_deleted: Mapped[bool] = mapped_column(default=False, server_default=sa.false())

    company: Mapped[Company] = relationship()

    def __str__(self) -> str:
        return f"{self.name}({self.position})" if self.position else self.name
