"""The working-day calendar (工作日历): China's official calendar with 调休, the admin's own
days over it, a year the library does not know, and the admin page."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from crm.audit.models import AuditEntry
from crm.extensions import db
from crm.workdays import services, views
from crm.workdays.models import CalendarDay, DayKind
from crm.workdays.services import add_day, add_workdays, is_workday, workdays_between

# 2026 春节: 2-15 (Sunday) to 2-23 (Monday) off; Saturday 2-14 and Saturday 2-28 are worked.
# 2025 国庆节 and 中秋: 10-1 to 10-8 off; Sunday 9-28 and Saturday 10-11 are worked.
SPRING_EVE = date(2026, 2, 13)  # Friday before the 调休 Saturday


@pytest.fixture
def library_ends_2025(monkeypatch):
    """A missed upgrade: the installed library knows nothing of 2026."""
    monkeypatch.setattr(services, "library_years", lambda: range(2004, 2026))


def _count(*where) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(CalendarDay).where(*where))


# ---- the official calendar ----


def test_the_library_knows_2025_and_2026():
    assert 2025 in services.library_years() and 2026 in services.library_years()


def test_adjusted_working_weekends_are_working_days(world):
    assert is_workday(date(2025, 9, 28))  # Sunday before 国庆
    assert is_workday(date(2025, 10, 11))  # Saturday after 国庆
    assert is_workday(date(2026, 2, 14))  # Saturday before 春节
    assert not is_workday(date(2025, 9, 27))  # an ordinary Saturday


def test_national_day_weekdays_are_not_working_days(world):
    assert not is_workday(date(2025, 10, 1))
    assert not is_workday(date(2025, 10, 6))  # a Monday
    assert not is_workday(date(2025, 10, 8))  # a Wednesday
    assert is_workday(date(2025, 10, 9))


def test_the_admins_day_overrides_the_library(world):
    add_day(world.admin, date(2025, 9, 29), DayKind.REST, "防汛停工")  # a Monday
    add_day(world.admin, date(2025, 10, 8), DayKind.WORK, "调休")  # a 国庆 Wednesday
    assert not is_workday(date(2025, 9, 29))
    assert is_workday(date(2025, 10, 8))
    assert not is_workday(date(2025, 10, 7))  # the days it does not name: the library


# ---- add_workdays ----


def test_add_workdays_across_the_spring_festival(world):
    assert add_workdays(SPRING_EVE, 0) == SPRING_EVE
    assert add_workdays(SPRING_EVE, 1) == date(2026, 2, 14)  # the 调休 Saturday
    assert add_workdays(SPRING_EVE, 2) == date(2026, 2, 24)  # after nine days off
    assert add_workdays(date(2026, 2, 12), 5) == date(2026, 2, 26)
    # from a holiday: the first working day after it
    assert add_workdays(date(2026, 2, 18), 1) == date(2026, 2, 24)


def test_add_workdays_refuses_a_negative_count(world):
    with pytest.raises(ValueError):
        add_workdays(SPRING_EVE, -1)


def test_a_year_the_library_does_not_know_counts_weekdays_until_the_admin_fills_it(
    world, library_ends_2025
):
    # Monday to Friday are working days: 春节 is not known, the Saturday is not worked.
    assert add_workdays(SPRING_EVE, 1) == date(2026, 2, 16)
    assert add_workdays(SPRING_EVE, 2) == date(2026, 2, 17)
    # The admin enters the year's 春节 from the State Council's notice: right again.
    add_day(world.admin, date(2026, 2, 14), DayKind.WORK, "春节调休")
    for day in (16, 17, 18, 19, 20, 23):
        add_day(world.admin, date(2026, 2, day), DayKind.REST, "春节")
    assert add_workdays(SPRING_EVE, 1) == date(2026, 2, 14)
    assert add_workdays(SPRING_EVE, 2) == date(2026, 2, 24)
    # From a known year into the unknown one: 2025-12-31 (Wednesday), 2026-01-01 (Thursday).
    assert add_workdays(date(2025, 12, 30), 2) == date(2026, 1, 1)


def test_the_admins_days_are_read_in_one_query(world, count_queries):
    add_day(world.admin, date(2026, 3, 2), DayKind.REST, "停工")
    db.session.flush()
    with count_queries() as counter:
        assert add_workdays(date(2026, 1, 5), 60) > date(2026, 4, 1)
    assert counter.count == 1
    with count_queries() as counter:
        workdays_between(date(2025, 1, 1), date(2026, 12, 31))
    assert counter.count == 1


def test_add_workdays_reads_again_after_a_long_break_the_admin_entered(world):
    # More rest days than the first read covers: the loop reads the next range.
    start = date(2025, 3, 3)
    for i in range(1, 45):
        add_day(world.admin, start + timedelta(days=i), DayKind.REST, "停工")
    assert add_workdays(start, 1) == date(2025, 4, 17)  # the Thursday after the 44 days


# ---- workdays_between: (start, end] ----


def test_workdays_between_counts_after_start_up_to_and_including_end(world):
    assert workdays_between(SPRING_EVE, SPRING_EVE) == 0
    assert workdays_between(date(2025, 10, 9), date(2025, 10, 10)) == 1  # start not counted
    assert workdays_between(SPRING_EVE, date(2026, 2, 14)) == 1  # end counted
    assert workdays_between(SPRING_EVE, date(2026, 2, 20)) == 1  # holidays do not count
    assert workdays_between(SPRING_EVE, date(2026, 2, 24)) == 2
    assert workdays_between(date(2026, 2, 24), SPRING_EVE) == -2  # end before start


def test_workdays_between_undoes_add_workdays(world):
    for start in (SPRING_EVE, date(2025, 9, 27), date(2025, 10, 3)):
        for n in range(0, 25):
            assert workdays_between(start, add_workdays(start, n)) == n


# ---- the admin page ----


def test_the_page_warns_of_a_missing_year(world, login, monkeypatch):
    last = services.library_years()[-1]
    monkeypatch.setattr(views, "local_today", lambda: date(last, 6, 1))
    client = login(world.admin)
    page = client.get("/admin/workdays/").get_data(as_text=True)
    assert f"{last + 1} 年的法定节假日尚未录入" in page
    assert f"{last} 年的法定节假日" not in page
    assert "工作日历" in page
    # one 休息日 entered for the year: the admin has started on it, the warning goes
    response = client.post(
        "/admin/workdays/", data={"day": f"{last + 1}-01-01", "kind": "REST", "name": "元旦"}
    )
    assert response.status_code == 302
    page = client.get("/admin/workdays/").get_data(as_text=True)
    assert "尚未录入" not in page and "元旦" in page
    # a year the library knows, followed by one it knows: no warning
    monkeypatch.setattr(views, "local_today", lambda: date(last - 1, 6, 1))
    assert "尚未录入" not in client.get("/admin/workdays/").get_data(as_text=True)


def test_adding_a_day_is_audited(world, login):
    client = login(world.admin)
    response = client.post(
        "/admin/workdays/", data={"day": "2027-02-06", "kind": "WORK", "name": "春节调休"}
    )
    assert response.status_code == 302
    entry = db.session.scalar(sa.select(CalendarDay).where(CalendarDay.day == date(2027, 2, 6)))
    assert entry.kind is DayKind.WORK and entry.created_by_id == world.admin.id
    audit = db.session.scalar(
        sa.select(AuditEntry).where(AuditEntry.action == "calendar_day_added")
    )
    assert audit.object_id == entry.id and "春节调休" in audit.summary
    assert "调休上班日" in client.get("/admin/workdays/").get_data(as_text=True)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"day": "2027-02-30", "kind": "REST", "name": "春节"}, "请输入有效日期"),
        ({"day": "明天", "kind": "REST", "name": "春节"}, "请输入有效日期"),
        ({"day": "", "kind": "REST", "name": "春节"}, "请填写日期"),
        ({"day": "1999-10-01", "kind": "REST", "name": "国庆"}, "日期须在 2000 年到 2099 年之间"),
        ({"day": "2027-10-01", "kind": "HOLIDAY", "name": "国庆"}, "不是有效的选择"),
        ({"day": "2027-10-01", "kind": "REST", "name": "  "}, "请填写名称"),
        ({"day": "2027-10-01", "kind": "REST", "name": "国" * 21}, "名称不能超过 20 个字"),
    ],
)
def test_bad_input_is_refused_at_the_field(world, login, data, message):
    response = login(world.admin).post("/admin/workdays/", data=data)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert _count() == 0


def test_a_date_already_entered_is_refused(world, login):
    add_day(world.admin, date(2027, 10, 1), DayKind.REST, "国庆节")
    response = login(world.admin).post(
        "/admin/workdays/", data={"day": "2027-10-01", "kind": "WORK", "name": "调休"}
    )
    assert response.status_code == 400
    assert "2027-10-01 已录入（休息日：国庆节）" in response.get_data(as_text=True)
    assert _count() == 1


def test_markup_in_a_name_is_shown_as_text(world, login):
    client = login(world.admin)
    client.post(
        "/admin/workdays/", data={"day": "2027-05-01", "kind": "REST", "name": "<b>劳动节</b>"}
    )
    page = client.get("/admin/workdays/").get_data(as_text=True)
    assert "&lt;b&gt;劳动节&lt;/b&gt;" in page and "<b>劳动节" not in page


def test_deleting_a_day_asks_first(world, login):
    entry = add_day(world.admin, date(2027, 10, 1), DayKind.REST, "国庆节")
    db.session.flush()
    client = login(world.admin)
    url = f"/admin/workdays/{entry.id}/delete"
    page = client.get(url)
    assert page.status_code == 200 and "确认删除" in page.get_data(as_text=True)
    refused = client.post(url, data={})
    assert refused.status_code == 400 and "请勾选确认" in refused.get_data(as_text=True)
    assert _count() == 1
    assert client.post(url, data={"confirm": "y"}).status_code == 302
    assert _count() == 0
    audit = db.session.scalar(
        sa.select(AuditEntry).where(AuditEntry.action == "calendar_day_deleted")
    )
    assert audit.object_id == entry.id and audit.changes["name"] == ["国庆节", None]
    assert client.get(url).status_code == 404


def test_only_admins_open_the_calendar(world, login):
    assert login(world.leader).get("/admin/workdays/").status_code == 403
