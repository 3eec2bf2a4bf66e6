"""The dashboard (统计): figures against a hand-computed fixture, every figure's link against
the project list, the scope of each role, the landing page, a fixed number of queries."""

from __future__ import annotations

import html as html_lib
import re
from datetime import date, timedelta
from decimal import Decimal
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa

from crm.audit.services import record
from crm.auth.models import Role, User
from crm.core import local_today
from crm.dashboard import cache, services
from crm.dashboard.services import build_dashboard
from crm.devdata.demo import load_demo
from crm.projects import lifecycle
from crm.projects.lifecycle import change_status, move_stage, verify_move
from crm.projects.models import FundsRecord, StageChange
from crm.projects.stages import Stage, Status
from tests import factories
from tests.factories import today


@pytest.fixture(autouse=True)
def no_entry_checks(monkeypatch):
    monkeypatch.setattr(lifecycle, "_entry_checks", {stage: [] for stage in Stage})


def text(response) -> str:
    return response.get_data(as_text=True)


def advance(project, officer, checker, to: Stage, amount="0", verify=True):
    """Move `project` forward to `to`, one stage at a time; `checker` verifies each claim."""
    while project.stage is not to:
        target = project.stage.next
        fields = {}
        if target is Stage.SIGNED:
            fields = {"signed_amount": Decimal(amount), "signed_on": today() - timedelta(days=40)}
        elif target is Stage.STARTED:
            fields = {"started_on": today() - timedelta(days=20)}
        elif target is Stage.PRODUCING:
            fields = {"producing_on": today() - timedelta(days=2)}
        change = move_stage(officer, project, target, fields=fields)
        if (verify or project.stage is not to) and change.verification is not None:
            verify_move(checker, change)
    return project


def funds(project, amount, on):
    factories._add(FundsRecord(project_id=project.id, received_on=on, amount=Decimal(amount)))


@pytest.fixture
def pipeline(world, db_session):
    """project_a (A/X, 谋划, 5 亿) and project_b (B/Y, 谋划, 5 亿) from the world, and:
    signed   A/X 签约 verified, signed 3 亿, total 4 亿
    pending  B/Y 签约 waiting for verification, signed 2 亿, total 2.5 亿
    started  A/Y 开工, 签约 and 开工 verified, signed 1 亿, total 1 亿; funds 5000 this year
             and 1000 the year before; planned 开工 this year
    dropped  B/X 谋划, 终止
    """
    w = world

    def make(carrier, cluster, officer, name, total):
        return factories.project(
            carrier, cluster, officer, w.channel, name=name, total_investment=Decimal(total)
        )

    signed = make(w.carrier_a, w.cluster_x, w.officer_a, "已签约项目", 40000)
    advance(signed, w.officer_a, w.taskforce_x, Stage.SIGNED, "30000")
    pending = make(w.carrier_b, w.cluster_y, w.officer_b, "待核实项目", 25000)
    advance(pending, w.officer_b, w.taskforce_y, Stage.SIGNED, "20000", verify=False)
    started = make(w.carrier_a, w.cluster_y, w.officer_a, "已开工项目", 10000)
    started.planned_signed_on = date(today().year, 1, 1)
    started.planned_started_on = today()
    advance(started, w.officer_a, w.taskforce_y, Stage.STARTED, "10000")
    funds(started, "5000", today())
    funds(started, "1000", date(today().year - 1, 12, 31))
    dropped = make(w.carrier_b, w.cluster_x, w.officer_b, "已终止项目", 8000)
    reason = factories.termination_reason("资金链问题")
    change_status(
        w.officer_b,
        dropped,
        Status.DROPPED,
        reason="企业放弃",
        effective_on=today(),
        termination_reason=reason,
    )
    db_session.commit()
    return {"signed": signed, "pending": pending, "started": started, "dropped": dropped}


def dashboard_for(user):
    year = local_today().year
    return build_dashboard(user, local_today(), 30, year, date(year, 1, 1), local_today())


# The figures, by hand ------------------------------------------------------------------------


def test_the_figures_for_the_whole_city(world, pipeline):
    d = dashboard_for(world.leader)
    funnel = {stage: (all_.count, all_.amount) for stage, all_, _new in d.funnel}
    assert funnel == {
        Stage.PLANNED: (2, Decimal("100000.00")),
        Stage.ATTRACTING: (0, Decimal("0.00")),
        Stage.SIGNED: (2, Decimal("65000.00")),
        Stage.STARTED: (1, Decimal("10000.00")),
        Stage.PRODUCING: (0, Decimal("0.00")),
    }
    assert d.pipeline_total.count == 5
    assert d.year_new_total.count == 5  # all registered this year
    assert [(s, f.count) for s, f in d.closed] == [(Status.DROPPED, 1), (Status.LOST, 0)]

    results = {stage: (done.count, done.amount, wait.count) for stage, done, wait in d.results}
    assert results == {
        Stage.SIGNED: (2, Decimal("40000.00"), 1),  # signed amounts; the pending one apart
        Stage.STARTED: (1, Decimal("10000.00"), 0),  # total investment
        Stage.PRODUCING: (0, Decimal("0.00"), 0),
    }
    assert (d.funds_year.count, d.funds_year.amount) == (1, Decimal("5000.00"))
    assert (d.funds_all.count, d.funds_all.amount) == (1, Decimal("6000.00"))

    rates = {r.label: (r.numerator.count, r.denominator.count, r.percent) for r in d.rates}
    assert rates["履约率"] == (1, 2, Decimal("50.0"))
    assert rates["开工率"] == (1, 1, Decimal("100.0"))
    assert rates["投产率"] == (0, 0, None)
    funds_rate = next(r for r in d.rates if r.label == "资金到位率")
    assert (funds_rate.numerator.amount, funds_rate.denominator.amount) == (
        Decimal("6000.00"),
        Decimal("40000.00"),
    )
    assert funds_rate.percent == Decimal("15.0")

    assert d.pending.count == 1
    assert [c.project.name for c in d.pending_items] == ["待核实项目"]

    carriers = dict(d.breakdowns)["载体"]
    by_name = {r.name: r for r in carriers}
    assert [f.count for f in by_name["甲区"].stages] == [1, 0, 1, 1, 0]
    assert [f.count for f in by_name["乙县"].stages] == [1, 0, 1, 0, 0]
    assert by_name["甲区"].year_signed.count == 2
    assert by_name["乙县"].year_signed.count == 0


def test_the_performance_table(world, pipeline):
    d = dashboard_for(world.leader)
    officers = {r.name: r for r in d.performance_officers}
    a = officers[world.officer_a.display_name]
    assert a.note == "甲区"
    assert (a.leads.count, a.signed.count, a.started.count, a.producing.count) == (3, 2, 1, 0)
    assert a.signed.amount == Decimal("40000.00")
    assert a.funds.amount == Decimal("5000.00")
    b = officers[world.officer_b.display_name]
    assert (b.leads.count, b.signed.count) == (3, 0)  # the pending 签约 does not count
    assert d.performance_total.leads.count == 6
    assert d.performance_total.signed.count == 2

    # A period before anything happened counts nothing.
    year = local_today().year
    early = build_dashboard(
        world.leader, local_today(), 30, year, date(2000, 1, 1), date(2000, 12, 31)
    )
    assert all(r.leads.count == r.signed.count == 0 for r in early.performance_officers)


def test_funds_count_once_the_signing_is_verified(world, pipeline, login, db_session):
    """Funds of a project whose 签约 still waits for the task force are recorded but not
    counted: not in 实际到位资金, not in the performance table; the list behind the figure
    agrees. Once the 签约 is verified, they count."""
    pending = pipeline["pending"]
    funds(pending, "700", today())
    db_session.commit()
    client = login(world.leader)

    d = dashboard_for(world.leader)
    assert (d.funds_year.count, d.funds_year.amount) == (1, Decimal("5000.00"))
    assert (d.funds_all.count, d.funds_all.amount) == (1, Decimal("6000.00"))
    officer_b = {r.name: r for r in d.performance_officers}[world.officer_b.display_name]
    assert officer_b.funds.count == 0
    url = "/projects/?" + urlencode(d.funds_year.args)
    funds_list = text(client.get(url))
    assert list_count(client, url) == 1
    assert "已开工项目" in funds_list and "待核实项目" not in funds_list
    assert "有计入统计的实际到位资金（签约已核实）" in funds_list

    (signing,) = [
        c
        for c in db_session.scalars(
            sa.select(StageChange).where(StageChange.project_id == pending.id)
        )
        if c.to_stage is Stage.SIGNED
    ]
    verify_move(world.taskforce_y, signing)
    db_session.commit()

    d = dashboard_for(world.leader)
    assert (d.funds_year.count, d.funds_year.amount) == (2, Decimal("5700.00"))
    assert list_count(client, url) == 2
    funds_rate = next(r for r in d.rates if r.label == "资金到位率")
    assert funds_rate.numerator.amount == Decimal("6700.00")


@pytest.mark.parametrize(
    ("role", "pipeline_count", "carriers"),
    [
        ("officer_a", 3, {"甲区"}),
        ("officer_b", 2, {"乙县"}),
        ("taskforce_x", 2, {"甲区"}),  # cluster X: project_a and 已签约项目 (the dropped one aside)
        ("taskforce_y", 3, {"甲区", "乙县"}),
        ("admin", 5, {"甲区", "乙县"}),
    ],
)
def test_each_role_sees_its_scope(world, pipeline, role, pipeline_count, carriers):
    d = dashboard_for(getattr(world, role))
    assert d.pipeline_total.count == pipeline_count
    rows = dict(d.breakdowns)["载体"]
    assert {r.name for r in rows} == carriers


# Every figure opens the list of exactly its projects -------------------------------------------

FIGURE_LINK = re.compile(r'<a class="fig" href="([^"]+)" data-count="(\d+)"[^>]*>')


def list_count(client, url: str) -> int:
    html = text(client.get(url))
    if "没有符合条件的项目" in html:
        return 0
    return int(re.search(r"共 (\d+) 条", html).group(1))


@pytest.mark.parametrize("role", ["leader", "taskforce_y", "officer_a", "admin"])
def test_every_figure_links_to_a_list_of_as_many_projects(world, pipeline, login, role):
    client = login(getattr(world, role))
    html = text(client.get("/dashboard/"))
    links = FIGURE_LINK.findall(html)
    assert len(links) > 60
    checked = {}
    for href, count in links:
        url = html_lib.unescape(href)
        assert url.startswith("/projects/")
        if url not in checked:
            checked[url] = list_count(client, url)
        assert checked[url] == int(count), url
    # The figures are not all zero: the fixture shows up.
    assert any(int(count) for _href, count in links)


def test_the_links_keep_their_conditions_on_the_list(world, pipeline, login):
    client = login(world.leader)
    year = local_today().year
    url = (
        f"/projects/?moved=SIGNED&verification=VERIFIED"
        f"&moved_from={year}-01-01&moved_to={year}-12-31"
    )
    html = text(client.get(url))
    assert "已签约项目" in html and "已开工项目" in html and "待核实项目" not in html
    assert "附加条件" in html and "有已核实的进入签约的阶段变更" in html
    assert 'name="moved" value="SIGNED"' in html  # kept when the form is sent again


# The page ------------------------------------------------------------------------------------


def test_every_role_lands_on_its_work_and_finds_the_dashboard_under_statistics(
    world, pipeline, login
):
    for user in (world.leader, world.taskforce_x, world.officer_a):
        html = text(login(user).get("/"))
        assert "的待办</h1>" in html and "项目漏斗" not in html
        assert "项目漏斗" in text(login(user).get("/dashboard/"))
    html = text(login(world.officer_a).get("/dashboard/"))
    assert "统计 · 甲区" in html and "乙县" not in html


def test_the_page_draws_its_charts_and_explains_its_rates(world, pipeline, login):
    html = text(login(world.leader).get("/dashboard/"))
    assert html.count("<svg") == 2 and "<rect" in html
    assert "<script" not in html and 'style="' not in html
    for label in ("履约率", "开工率", "投产率", "资金到位率"):
        assert re.search(rf'<h3 title="{label} = [^"]+">{label}', html), label
    assert "口径说明" in html
    assert "另有 <a" in html and "项待核实" in html


def test_the_year_and_the_period_can_be_chosen(world, pipeline, login):
    client = login(world.leader)
    last_year = local_today().year - 1
    html = text(client.get(f"/dashboard/?year={last_year}&from=2000-01-01&to=2000-01-31"))
    assert f"统计 · 全市 · {last_year} 年" in html
    assert "招商绩效（2000-01-01 至 2000-01-31）" in html
    assert text(client.get("/dashboard/?year=abc&from=x&to=y")).count("<svg") == 2


def _many_projects(world, n):
    for i in range(n):
        p = factories.project(
            world.carrier_a if i % 2 else world.carrier_b,
            world.cluster_x if i % 3 else world.cluster_y,
            world.officer_a if i % 2 else world.officer_b,
            world.channel,
            name=f"批量项目{i}",
        )
        if i % 2:
            advance(p, world.officer_a, world.admin, Stage.STARTED, "100")
            funds(p, "10", today())


def test_the_dashboard_runs_the_same_queries_for_few_and_many_projects(
    world, login, db_session, count_queries
):
    client = login(world.leader)
    _many_projects(world, 4)
    db_session.commit()
    client.get("/dashboard/")  # warm up caches filled once per process
    db_session.commit()  # expires every loaded row, as a new request would find them
    with count_queries() as few:
        assert client.get("/dashboard/").status_code == 200
    _many_projects(world, 40)
    db_session.commit()
    with count_queries() as many:
        assert client.get("/dashboard/").status_code == 200
    assert many.count == few.count, "\n---\n".join(
        s for s in many.statements if s not in few.statements
    )
    # One scan for the figures on the projects' own columns, one query for each figure that
    # needs another table (moves, funds, …), per grouping: many, but as many for 4 as for 40.
    assert few.count < 60


def test_every_role_opens_the_dashboard(world, login):
    for role in (Role.ADMIN, Role.LEADER, Role.OFFICER, Role.TASKFORCE):
        user = next(
            u
            for u in (world.admin, world.leader, world.officer_a, world.taskforce_x)
            if u.role is role
        )
        assert login(user).get("/dashboard/").status_code == 200


def test_the_dashboard_needs_a_login(client):
    response = client.get("/dashboard/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_on_the_demo_data_every_figure_agrees_with_its_list(app, login, db_session, tmp_path):
    """The demo has every stage, status, verification state, funds, a conflict, a hand-over."""
    app.config["UPLOAD_FOLDER"], folder = str(tmp_path), app.config["UPLOAD_FOLDER"]
    try:
        load_demo()
    finally:
        app.config["UPLOAD_FOLDER"] = folder
    db_session.commit()
    for username in ("leader", "officer_mc"):
        user = db_session.scalar(sa.select(User).where(User.username == username))
        client = login(user, "Demo@2026")
        html = text(client.get("/dashboard/"))
        checked = {}
        for href, figure in FIGURE_LINK.findall(html):
            url = html_lib.unescape(href)
            if url not in checked:
                checked[url] = list_count(client, url)
            assert checked[url] == int(figure), (username, url)
        assert sum(checked.values()) > 50, username


@pytest.mark.parametrize(
    "query",
    [
        "planned=ATTRACTING&planned_from=2026-01-01",
        "overdue=PLANNED&moved=XYZ&verification=NOPE",
        "created_from=0001-01-01&created_to=9999-12-31&moved=SIGNED&moved_to=9999-12-31",
        "funded=1&funded_from=abc&funded_to=2026-02-30&decision=1&conflict=1",
        "moved=SIGNED&moved=STARTED&moved=SIGNED&verification=VERIFIED&overdue=1",
    ],
)
def test_odd_list_filters_are_ignored_not_errors(world, login, query):
    assert login(world.admin).get("/projects/?" + query).status_code == 200
    assert login(world.admin).get("/ledger/export?" + query).status_code == 200


def test_odd_dashboard_periods_fall_back(world, login):
    client = login(world.leader)
    for query in ("from=0001-01-01&to=9999-12-31", "from=2026-12-31&to=2026-01-01", "year=1"):
        assert client.get("/dashboard/?" + query).status_code == 200


# The figures are kept until the next change -------------------------------------------------


@pytest.fixture
def kept(monkeypatch):
    """build_dashboard(user) keeping its figures for five minutes, from an empty store."""
    cache.forget_figures()
    yield lambda user: build_dashboard(
        user, local_today(), 30, local_today().year, date(local_today().year, 1, 1),
        local_today(), cache_seconds=300,
    )  # fmt: skip
    cache.forget_figures()


def test_the_figures_are_kept_until_an_audited_change(world, pipeline, kept, db_session):
    first = kept(world.leader)
    again = kept(world.leader)
    assert again.computed_at == first.computed_at  # read from the store
    assert again.pipeline_total.count == first.pipeline_total.count == 5

    # Registering a project is audited: the next dashboard counts it at once.
    factories.project(world.carrier_a, world.cluster_x, world.officer_a)  # not audited
    record(world.officer_a, "project_created", world.project_a)
    db_session.commit()
    after = kept(world.leader)
    assert after.computed_at > first.computed_at
    assert after.pipeline_total.count == 6


def test_kept_figures_are_per_scope(world, pipeline, kept):
    leader = kept(world.leader)
    officer = kept(world.officer_a)
    other = kept(world.officer_b)
    assert (leader.pipeline_total.count, officer.pipeline_total.count) == (5, 3)
    assert other.pipeline_total.count == 2
    assert kept(world.officer_a).pipeline_total.count == 3


def test_kept_figures_expire(world, pipeline, kept, monkeypatch):
    first = kept(world.leader)
    later = first.computed_at + timedelta(minutes=6)
    monkeypatch.setattr(cache, "local_now", lambda: later)  # the age of what is kept
    monkeypatch.setattr(services, "local_now", lambda: later)  # when figures are computed
    assert kept(world.leader).computed_at == later  # computed anew


def test_the_page_says_when_its_figures_were_computed(world, pipeline, login, app, monkeypatch):
    monkeypatch.setitem(app.config, "DASHBOARD_CACHE_SECONDS", 300)
    cache.forget_figures()
    html = text(login(world.leader).get("/dashboard/"))
    cache.forget_figures()
    assert re.search(r"数据截至 \d\d:\d\d:\d\d", html)


def test_funds_of_a_project_moved_back_below_the_signing_stop_counting(
    world, pipeline, login, db_session
):
    """A verified 签约 undone by moving the project back to 招引: its funds stay recorded but
    no longer count, in the figure and in the list behind it."""
    signed = pipeline["signed"]
    funds(signed, "300", today())
    db_session.commit()
    before = dashboard_for(world.leader).funds_year
    assert (before.count, before.amount) == (2, Decimal("5300.00"))

    move_stage(world.officer_a, signed, Stage.ATTRACTING, reason="协议解除，重新洽谈")
    db_session.commit()
    after = dashboard_for(world.leader).funds_year
    assert (after.count, after.amount) == (1, Decimal("5000.00"))
    client = login(world.leader)
    assert list_count(client, "/projects/?" + urlencode(after.args)) == 1
