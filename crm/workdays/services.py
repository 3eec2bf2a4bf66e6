"""Working days (工作日) by China's official calendar, with its adjusted working weekends (调休).

Where a day's answer comes from, first match wins:
1. the admin's own calendar day (`CalendarDay`, 工作日历 under 系统管理): 休息日 or 调休上班日;
2. the chinesecalendar library, for the years it knows (`library_years()`): its holidays are
   rest days, its 调休 weekends working days, other days by the weekday;
3. a year neither knows: Monday to Friday are working days. The admin page warns when the
   current or the next year is such a year (`missing_years`), so the admin enters its
   holidays before due dates fall in it.

Conventions, for due dates (诉求 answered "within n working days"):
- `add_workdays(start, n)` is the n-th working day after `start`; n = 0 gives `start` itself.
- `workdays_between(start, end)` counts the working days after `start` up to and including
  `end`: (start, end]. So `workdays_between(s, add_workdays(s, n)) == n`, a day counts in
  neither when it is `start`, and an `end` before `start` gives the negative count of
  (end, start].
Each reads the admin's days for its range in one query, never one per day.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache

import chinese_calendar
import sqlalchemy as sa
from chinese_calendar import constants as calendar_data

from crm.audit.services import record
from crm.core import ServiceError
from crm.extensions import db
from crm.workdays.models import CalendarDay, DayKind

NAME_MAX = 20
FIRST_YEAR, LAST_YEAR = 2000, 2099  # what the admin may enter: no typing accident in year 20255
MAX_WORKDAYS = 3650  # add_workdays refuses more (a due date is weeks away, not decades)


@cache
def library_years() -> range:
    """The years the installed chinesecalendar knows (its data starts in 2004)."""
    known = calendar_data.holidays.keys() | calendar_data.workdays.keys()
    return range(min(known).year, max(known).year + 1)


def _library_workday(day: date) -> bool:
    if day.year in library_years():
        return chinese_calendar.is_workday(day)
    return day.weekday() < 5  # a year the library does not know: Monday to Friday


def _admin_days(first: date, last: date) -> dict[date, bool]:
    """The admin's days in [first, last], as {day: is a working day}: one query."""
    stmt = sa.select(CalendarDay.day, CalendarDay.kind).where(CalendarDay.day.between(first, last))
    return {day: kind is DayKind.WORK for day, kind in db.session.execute(stmt)}


def _workday(day: date, admin: Mapping[date, bool]) -> bool:
    answer = admin.get(day)
    return _library_workday(day) if answer is None else answer


def is_workday(day: date) -> bool:
    """Whether `day` is a working day (工作日)."""
    return _workday(day, _admin_days(day, day))


def add_workdays(start: date, n: int) -> date:
    """The n-th working day after `start` (n ≥ 0; n = 0 gives `start`)."""
    if not 0 <= n <= MAX_WORKDAYS:
        raise ValueError(f"n must be between 0 and {MAX_WORKDAYS}, not {n}")
    day, left = start, n
    while left:
        # A year has about 250 working days in 365: twice n and a month of holidays is ample,
        # so the loop reads the admin's days once (again only if the admin made a long break).
        first, last = day + timedelta(days=1), day + timedelta(days=2 * left + 31)
        admin = _admin_days(first, last)
        while left and day < last:
            day += timedelta(days=1)
            left -= _workday(day, admin)
    return day


def workdays_between(start: date, end: date) -> int:
    """How many working days in (start, end]: after `start`, up to and including `end`.

    0 when end == start; negative (the count of (end, start]) when `end` is before `start`.
    """
    if end < start:
        return -workdays_between(end, start)
    admin = _admin_days(start + timedelta(days=1), end)
    span = (end - start).days
    return sum(_workday(start + timedelta(days=i), admin) for i in range(1, span + 1))


# ---- the admin's page (工作日历) ----


@dataclass(frozen=True)
class MissingYear:
    """A year due dates may fall in that neither the library nor the admin has filled."""

    year: int

    @property
    def message(self) -> str:
        return (
            f"{self.year} 年的法定节假日尚未录入：系统所用日历库只到 {library_years()[-1]} 年，"
            "这一年暂按周一至周五为工作日计算。请按国务院办公厅的放假通知录入该年的休息日和调休上班日，"
            "或升级日历库。"
        )


def missing_years(today: date) -> list[MissingYear]:
    """The current and the next year, where the library does not know them and the admin has
    entered no 休息日 in them."""
    years = [y for y in (today.year, today.year + 1) if y not in library_years()]
    if not years:
        return []
    stmt = (
        sa.select(sa.distinct(sa.extract("year", CalendarDay.day)))
        .where(CalendarDay.kind == DayKind.REST)
        .where(CalendarDay.day.between(date(years[0], 1, 1), date(years[-1], 12, 31)))
    )
    filled = {int(y) for y in db.session.scalars(stmt)}
    return [MissingYear(y) for y in years if y not in filled]


def list_days() -> list[CalendarDay]:
    """The admin's days, newest first."""
    return list(db.session.scalars(sa.select(CalendarDay).order_by(CalendarDay.day.desc())))


def library_day(day: date) -> str:
    """What the library (or the weekday rule) says of `day`, in words, for the admin's list."""
    if day.year not in library_years():
        kind = "工作日" if day.weekday() < 5 else "休息日"
        return f"{kind}（日历库未收录该年，按星期计）"
    on_holiday, holiday = chinese_calendar.get_holiday_detail(day)
    kind = "休息日" if on_holiday else "工作日"
    return f"{kind}（{holiday.chinese}）" if holiday is not None else kind


def _check(day: date | None, kind: DayKind | None, name: str) -> dict[str, str]:
    errors: dict[str, str] = {}
    if day is None:
        errors["day"] = "请填写日期"
    elif not FIRST_YEAR <= day.year <= LAST_YEAR:
        errors["day"] = f"日期须在 {FIRST_YEAR} 年到 {LAST_YEAR} 年之间"
    else:
        same = db.session.scalar(sa.select(CalendarDay).where(CalendarDay.day == day))
        if same is not None:
            errors["day"] = (
                f"{day.isoformat()} 已录入（{same.kind.label}：{same.name}），如需更改请先删除"
            )
    if not isinstance(kind, DayKind):
        errors["kind"] = "请选择类型"
    if not name:
        errors["name"] = "请填写名称，如：春节、国庆节调休"
    elif len(name) > NAME_MAX:
        errors["name"] = f"名称不能超过 {NAME_MAX} 个字"
    return errors


def add_day(actor, day: date | None, kind: DayKind | None, name: str) -> CalendarDay:
    """Enter one day of the admin's calendar; a date already entered is refused at the field."""
    name = (name or "").strip()
    if errors := _check(day, kind, name):
        raise ServiceError(errors=errors)
    entry = CalendarDay(day=day, kind=kind, name=name, created_by_id=getattr(actor, "id", None))
    db.session.add(entry)
    try:
        db.session.flush()
    except sa.exc.IntegrityError as error:  # another admin entered the same day meanwhile
        raise ServiceError(errors={"day": f"{day.isoformat()} 已录入，如需更改请先删除"}) from error
    record(actor, "calendar_day_added", entry, summary=f"{entry.kind.label}：{entry}")
    return entry


def delete_day(actor, entry: CalendarDay) -> None:
    """Remove one of the admin's days: the library's answer (or the weekday) applies again.
    The audit entry keeps what it said."""
    summary = f"{entry.kind.label}：{entry}"
    changes = {"day": [entry.day.isoformat(), None], "kind": [entry.kind.name, None]}
    changes["name"] = [entry.name, None]
    record(actor, "calendar_day_deleted", entry, summary=summary, changes=changes)
    db.session.delete(entry)
    db.session.flush()
