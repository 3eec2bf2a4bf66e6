"""The admin's own calendar days (工作日历), which take precedence over the library's calendar."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.auth.models import User
from crm.core import LabelledEnum, UTCDateTime, enum_column, utcnow
from crm.extensions import db


class DayKind(LabelledEnum):
    """What the admin says a day is."""

    REST = "休息日"  # a holiday or rest day, even on a weekday
    WORK = "调休上班日", "warn"  # an adjusted working day (调休), even on a weekend


class CalendarDay(db.Model):
    """One day the admin entered: a 休息日 or a 调休上班日, with its name (春节, 国庆节调休 …).

    It decides that day whatever the library says, so the holidays of a year the installed
    chinesecalendar does not know yet can be entered by hand.
    """

    __tablename__ = "calendar_days"
    __table_args__ = (sa.UniqueConstraint("day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(sa.Date)
    kind: Mapped[DayKind] = mapped_column(enum_column(DayKind, "kind"))
    name: Mapped[str] = mapped_column(sa.String(20))
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    created_by: Mapped[User | None] = relationship()

    def __str__(self) -> str:
        return f"{self.day.isoformat()} {self.name}"
