"""The dashboard (统计): the pipeline in figures, within what the user may read.

Every figure is a number of projects, and often a sum over them, defined by a `ProjectFilter`:
the very conditions the project list applies (`crm.projects.filters.filter_clauses`), so each
figure links to the list of exactly the projects behind it and the two counts agree. The
figures are conditional aggregates (`SUM(CASE WHEN <filter> ...)`) over the projects in
`project_scope(user)`: a fixed number of queries, whatever the number of projects.

Definitions (also shown on the page):
- 在库项目: status 正常 or 暂缓 (not 终止, not 流失), counted by their current stage.
- 本年签约 / 开工 / 投产: projects with a move into that stage made in the year and verified by
  the task force (甄别); moves still 待核实 are shown beside them, never added.
- 履约率: verified 签约 projects that also have a verified 开工, over verified 签约 projects.
- 开工率 / 投产率: projects whose planned 开工 / 投产 date falls in the year that have a
  verified 开工 / 投产, over those projects.
- 资金到位率: funds actually invested (实际到位资金) in verified 签约 projects over their signed
  amounts (签约金额).
- 实际到位资金 (the year's, all, and in the performance table) counts only the funds of projects
  whose 签约 is verified (`funded_clause`): funds are recorded from 签约 on, counted once verified.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from crm.access import scope_key
from crm.auth.models import User
from crm.catalog.models import Carrier, Channel, Cluster
from crm.core import local_now
from crm.dashboard.cache import cached
from crm.dashboard.figures import Aggregator, Figure, FundsReceived, Spec
from crm.dashboard.filters import AWAITING_DECISION
from crm.dashboard.queries import (
    awaiting_decision,
    longest_overdue,
    open_conflicts,
    overdue_projects,
    pending_moves,
    projects_by_id,
    stalest,
)
from crm.evaluation.models import Evaluation
from crm.extensions import db
from crm.projects.conflicts import count_open_conflicts
from crm.projects.filters import (
    DATE_RANGE,
    OVERDUE_LABELS,
    OVERDUE_STAGES,
    ProjectFilter,
)
from crm.projects.models import Project, StageChange
from crm.projects.stages import VERIFIED_STAGES, Stage, Status, Verification
from crm.templating import yi

DEFINITIONS = {
    "pipeline": "在库项目：状态为正常或暂缓（不含终止、流失）的项目，按当前阶段计。",
    "year_new": "本年新登记：本年登记的在库项目，按当前阶段计。",
    "verified": "本年签约、开工、投产：本年进入该阶段、并经产业专班核实（甄别）的项目；待核实的不计入，另行列出。金额：签约为签约金额，开工、投产为总投资。",
    "funds": "实际到位资金：签约经产业专班核实（甄别）的项目本年收到的实际到位资金合计，及其来自的项目数；签约待核实的项目的资金暂不计入。",
    "履约率": "履约率 = 已核实开工的签约项目数 ÷ 已核实签约项目数（全部年份）。",
    "开工率": "开工率 = 计划开工日期在本年的项目中，已核实开工的项目数 ÷ 计划本年开工的项目数。",
    "投产率": "投产率 = 计划投产日期在本年的项目中，已核实投产的项目数 ÷ 计划本年投产的项目数。",
    "资金到位率": "资金到位率 = 已核实签约项目的实际到位资金合计 ÷ 其签约金额合计（全部年份）。",
    "performance": "绩效：按项目当前责任人和载体统计所选期间内的新增线索（登记的项目）、经核实的签约、开工、投产，签约金额和实际到位资金（签约已核实的项目）。",
}


@dataclass
class Rate:
    label: str
    definition: str
    numerator: Figure
    denominator: Figure
    by_amount: bool = False  # 资金到位率 compares amounts, not counts

    @property
    def percent(self) -> Decimal | None:
        if self.by_amount:
            top, bottom = self.numerator.amount or 0, self.denominator.amount or 0
        else:
            top, bottom = self.numerator.count, self.denominator.count
        if not bottom:
            return None
        return (Decimal(top) * 100 / Decimal(bottom)).quantize(Decimal("0.1"))


@dataclass
class BreakdownRow:
    name: str
    stages: list[Figure]  # 在库, per stage
    total: Figure  # 在库, all stages
    year_new: Figure
    year_signed: Figure


@dataclass
class PerformanceRow:
    name: str
    note: str  # the officer's 载体
    leads: Figure
    signed: Figure
    started: Figure
    producing: Figure
    funds: Figure


@dataclass
class Bar:
    label: str
    value: Decimal | int
    text: str
    width: float  # share of the longest bar, 0–100
    figure: Figure  # its projects (the bar links to their list)
    secondary: float | None = None  # a second bar (本年), share of the longest


@dataclass
class Dashboard:
    year: int
    today: date
    period_from: date
    period_to: date
    funnel: list[tuple[Stage, Figure, Figure]]  # stage, 在库, 本年新登记
    pipeline_total: Figure
    year_new_total: Figure
    closed: list[tuple[Status, Figure]]
    results: list[tuple[Stage, Figure, Figure]]  # stage, verified in the year, pending
    funds_year: Figure
    funds_all: Figure
    rates: list[Rate]
    breakdowns: list[tuple[str, list[BreakdownRow]]]
    stale: Figure
    stale_items: list[Project]
    overdue: list[tuple[str, Figure]]
    overdue_any: Figure
    overdue_items: list[tuple[Project, str, date]]
    decisions: Figure
    decision_items: list[Evaluation]
    pending: Figure
    pending_items: list[StageChange]
    conflicts_open: int
    conflict_projects: Figure
    conflict_items: list
    performance_officers: list[PerformanceRow]
    performance_carriers: list[PerformanceRow]
    performance_total: PerformanceRow | None
    computed_at: datetime | None = None  # when the figures were computed (local time)
    funnel_bars: list[Bar] = field(default_factory=list)
    carrier_bars: list[Bar] = field(default_factory=list)
    definitions: dict[str, str] = field(default_factory=lambda: DEFINITIONS)


@dataclass(frozen=True)
class _Figures:
    """The aggregates of a dashboard: what `cached` keeps."""

    totals: dict[Hashable, Figure]
    rates: list[Rate]
    breakdowns: list[tuple[str, list[BreakdownRow]]]
    performance: tuple[list[PerformanceRow], list[PerformanceRow], PerformanceRow | None]
    overdue: list[tuple[int, str, date]]  # the longest overdue: project id, what, planned date
    stale: list[int]  # the projects followed up longest ago
    computed_at: datetime


def year_bounds(year: int) -> tuple[date, date]:
    return date(year, 1, 1), date(year, 12, 31)


@dataclass(frozen=True)
class _Asked:
    """What a dashboard is asked for, besides whose: with the user's scope, the cache key."""

    today: date
    stale_days: int
    year: int
    period_from: date
    period_to: date
    list_limit: int


@dataclass(frozen=True)
class _Year:
    """The filters the figures of one year are built from."""

    first: date
    last: date

    pipeline = ProjectFilter(pipeline=True)

    @property
    def new(self) -> ProjectFilter:
        """在库 projects registered in the year."""
        return ProjectFilter(pipeline=True, created_from=self.first, created_to=self.last)

    def moved(self, stage: Stage, state: Verification = Verification.VERIFIED) -> ProjectFilter:
        """Projects with a move into `stage` made in the year, in `state`."""
        return ProjectFilter(
            moved_into=(stage,), verification=state, moved_from=self.first, moved_to=self.last
        )


def _figures(user: User, asked: _Asked) -> _Figures:
    """The aggregates of `user`'s dashboard (what `cached` keeps): the totals, the rates, the
    breakdowns, the performance tables and the two short lists sorted over every project."""
    _without_jit()
    agg = Aggregator(user, asked.today, asked.stale_days)
    year = _Year(*year_bounds(asked.year))
    totals = agg.totals(_total_specs(year))
    return _Figures(
        totals,
        _rates(totals),
        _breakdowns(agg, year),
        _performance(agg, asked.period_from, asked.period_to),
        # The two short lists sorted over thousands of projects are kept too, as ids.
        longest_overdue(user, asked.today, asked.list_limit),
        stalest(user, asked.today, asked.stale_days, asked.list_limit),
        local_now(),
    )


def _without_jit() -> None:
    """The aggregates are many cheap index look-ups, but their summed cost estimate makes
    PostgreSQL compile them (JIT) first: over a second for nothing. Not for this request."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(sa.text("SET LOCAL jit = off"))


def _total_specs(year: _Year) -> list[Spec]:
    """Every figure of the page over the user's whole scope."""
    return [
        *_pipeline_specs(year),
        *_result_specs(year),
        *_rate_specs(year),
        *_action_specs(),
    ]


def _pipeline_specs(year: _Year) -> list[Spec]:
    """在库 and 本年新登记, per stage and in all, with their investment; 终止 and 流失."""
    investment = Project.total_investment
    return [
        *(Spec(("pipe", s), replace(year.pipeline, stage=s), investment) for s in Stage),
        *(Spec(("new", s), replace(year.new, stage=s), investment) for s in Stage),
        Spec("pipe", year.pipeline, investment),
        Spec("new", year.new, investment),
        *(Spec(("closed", st), ProjectFilter(status=st)) for st in (Status.DROPPED, Status.LOST)),
    ]


def _result_measure(stage: Stage) -> sa.ColumnElement:
    """What a result sums: the signed amount for 签约, the total investment after it."""
    return Project.signed_amount if stage is Stage.SIGNED else Project.total_investment


def _result_specs(year: _Year) -> list[Spec]:
    """The year's verified results and those still 待核实; the funds in place."""
    first, last = year.first, year.last
    return [
        *(Spec(("done", s), year.moved(s), _result_measure(s)) for s in VERIFIED_STAGES),
        *(
            Spec(("wait", s), year.moved(s, Verification.PENDING), _result_measure(s))
            for s in VERIFIED_STAGES
        ),
        Spec(
            "funds_year",
            ProjectFilter(funded=True, funded_from=first, funded_to=last),
            FundsReceived(first, last),
        ),
        Spec("funds_all", ProjectFilter(funded=True), FundsReceived()),
    ]


def _rate_specs(year: _Year) -> list[Spec]:
    """The numerators and denominators of the rates (see DEFINITIONS)."""
    signed_ever = ProjectFilter(moved_into=(Stage.SIGNED,), verification=Verification.VERIFIED)
    planned = {"planned_from": year.first, "planned_to": year.last}
    return [
        Spec("signed_ever", signed_ever, Project.signed_amount),
        Spec("signed_started", replace(signed_ever, moved_into=(Stage.SIGNED, Stage.STARTED))),
        Spec("signed_funded", replace(signed_ever, funded=True), FundsReceived()),
        *(
            Spec(("plan", s), ProjectFilter(planned=s, **planned))
            for s in (Stage.STARTED, Stage.PRODUCING)
        ),
        *(
            Spec(
                ("plan_done", s),
                ProjectFilter(
                    planned=s, **planned, moved_into=(s,), verification=Verification.VERIFIED
                ),
            )
            for s in (Stage.STARTED, Stage.PRODUCING)
        ),
    ]


def _action_specs() -> list[Spec]:
    """What needs action: stale, overdue, waiting for a decision or a verification, conflicts."""
    return [
        Spec("stale", ProjectFilter(stale=True)),
        *(Spec(("overdue", m), ProjectFilter(overdue=m)) for m in OVERDUE_STAGES),
        Spec("overdue_any", ProjectFilter(overdue_any=True)),
        Spec("decisions", ProjectFilter(extra=(AWAITING_DECISION.key,))),
        Spec("pending", ProjectFilter(verification=Verification.PENDING)),
        Spec("conflicts", ProjectFilter(conflict=True)),
    ]


def _rates(t: dict[Hashable, Figure]) -> list[Rate]:
    return [
        Rate("履约率", DEFINITIONS["履约率"], t["signed_started"], t["signed_ever"]),
        Rate(
            "开工率", DEFINITIONS["开工率"], t["plan_done", Stage.STARTED], t["plan", Stage.STARTED]
        ),
        Rate(
            "投产率",
            DEFINITIONS["投产率"],
            t["plan_done", Stage.PRODUCING],
            t["plan", Stage.PRODUCING],
        ),
        Rate("资金到位率", DEFINITIONS["资金到位率"], t["signed_funded"], t["signed_ever"], True),
    ]


# The breakdowns' titles, the catalogue each is by, and the project's column for it.
BREAKDOWNS = (
    ("载体", Carrier, "carrier_id"),
    ("产业集群", Cluster, "cluster_id"),
    ("招商渠道", Channel, "channel_id"),
)


def _breakdowns(agg: Aggregator, year: _Year) -> list[tuple[str, list[BreakdownRow]]]:
    """在库 per stage, 本年新登记 and 本年签约, per 载体, cluster and channel."""
    specs = [
        *(Spec(("pipe", s), replace(year.pipeline, stage=s)) for s in Stage),
        Spec("pipe", year.pipeline, Project.total_investment),
        Spec("new", year.new),
        Spec("signed", year.moved(Stage.SIGNED)),
    ]
    return [
        (title, _breakdown_rows(model, agg.grouped(specs, key))) for title, model, key in BREAKDOWNS
    ]


def _breakdown_rows(model, figures: dict[Any, dict[Hashable, Figure]]) -> list[BreakdownRow]:
    """A row per catalogue entry with projects, in the catalogue's order."""
    names = db.session.execute(
        sa.select(model.id, model.name)
        .where(model.id.in_([k for k in figures if k is not None]))
        .order_by(model.sort_order, model.id)
    ).all()
    return [
        BreakdownRow(
            name=name,
            stages=[figs["pipe", s] for s in Stage],
            total=figs["pipe"],
            year_new=figs["new"],
            year_signed=figs["signed"],
        )
        for id_, name in names
        if (figs := figures[id_])["pipe"].count or figs["new"].count or figs["signed"].count
    ]


def build_dashboard(
    user: User,
    today: date,
    stale_days: int,
    year: int,
    period_from: date,
    period_to: date,
    list_limit: int = 10,
    cache_seconds: int = 0,
) -> Dashboard:
    """The dashboard of `user`. Its figures are kept for `cache_seconds` (see `cached`); the
    short lists of what needs action are read anew every time."""
    asked = _Asked(today, stale_days, year, period_from, period_to, list_limit)
    figures = cached((scope_key(user), asked), cache_seconds, lambda: _figures(user, asked))
    t, rates, breakdowns = figures.totals, figures.rates, figures.breakdowns
    perf_officers, perf_carriers, perf_total = figures.performance

    stale_items = projects_by_id(user, figures.stale)
    overdue_items = overdue_projects(user, figures.overdue)
    decision_items = awaiting_decision(user, list_limit)
    pending_items = pending_moves(user, list_limit)
    conflicts_open = count_open_conflicts(user)
    conflict_items = open_conflicts(user, list_limit)

    funnel = [(s, t["pipe", s], t["new", s]) for s in Stage]
    dashboard = Dashboard(
        year=year,
        today=today,
        period_from=period_from,
        period_to=period_to,
        funnel=funnel,
        pipeline_total=t["pipe"],
        year_new_total=t["new"],
        closed=[(st, t["closed", st]) for st in (Status.DROPPED, Status.LOST)],
        results=[(s, t["done", s], t["wait", s]) for s in VERIFIED_STAGES],
        funds_year=t["funds_year"],
        funds_all=t["funds_all"],
        rates=rates,
        breakdowns=breakdowns,
        stale=t["stale"],
        stale_items=list(stale_items),
        overdue=[(OVERDUE_LABELS[m], t["overdue", m]) for m in OVERDUE_STAGES],
        overdue_any=t["overdue_any"],
        overdue_items=overdue_items,
        decisions=t["decisions"],
        decision_items=list(decision_items),
        pending=t["pending"],
        pending_items=list(pending_items),
        conflicts_open=conflicts_open or 0,
        conflict_projects=t["conflicts"],
        conflict_items=list(conflict_items),
        performance_officers=perf_officers,
        performance_carriers=perf_carriers,
        performance_total=perf_total,
        computed_at=figures.computed_at,
    )
    dashboard.funnel_bars = _funnel_bars(funnel)
    carriers = next((rows for title, rows in breakdowns if title == "载体"), [])
    dashboard.carrier_bars = _amount_bars([(r.name, r.total) for r in carriers])
    return dashboard


def _performance(
    agg: Aggregator, start: date, end: date
) -> tuple[list[PerformanceRow], list[PerformanceRow], PerformanceRow | None]:
    """The performance tables of the period: per officer, per 载体, and their total."""
    specs = _performance_specs(start, end)
    by_officer = agg.by_officer_credited(specs)
    by_carrier = agg.grouped(specs, "carrier_id")
    officer_rows = [
        _performance_row(name, carrier, by_officer[user_id])
        for user_id, name, carrier in db.session.execute(
            sa.select(User.id, User.display_name, Carrier.name)
            .join(Carrier, Carrier.id == User.carrier_id)
            .where(User.id.in_([k for k in by_officer if k is not None]))
            .order_by(Carrier.sort_order, User.display_name, User.id)
        )
    ]
    carrier_rows = [
        _performance_row(name, "", by_carrier[carrier_id])
        for carrier_id, name in db.session.execute(
            sa.select(Carrier.id, Carrier.name)
            .where(Carrier.id.in_([k for k in by_carrier if k is not None]))
            .order_by(Carrier.sort_order, Carrier.id)
        )
    ]
    return officer_rows, carrier_rows, _total_row(specs, carrier_rows)


def _performance_specs(start: date, end: date) -> list[Spec]:
    moved = {"verification": Verification.VERIFIED, "moved_from": start, "moved_to": end}
    return [
        Spec("leads", ProjectFilter(created_from=start, created_to=end), Project.total_investment),
        Spec("signed", ProjectFilter(moved_into=(Stage.SIGNED,), **moved), Project.signed_amount),
        Spec("started", ProjectFilter(moved_into=(Stage.STARTED,), **moved)),
        Spec("producing", ProjectFilter(moved_into=(Stage.PRODUCING,), **moved)),
        Spec(
            "funds",
            ProjectFilter(funded=True, funded_from=start, funded_to=end),
            FundsReceived(start, end),
        ),
    ]


def _performance_row(name: str, note: str, figs: dict[Hashable, Figure]) -> PerformanceRow:
    return PerformanceRow(
        name,
        note,
        figs["leads"],
        figs["signed"],
        figs["started"],
        figs["producing"],
        figs["funds"],
    )


def _total_row(specs: list[Spec], carrier_rows: list[PerformanceRow]) -> PerformanceRow | None:
    """合计: the 载体 rows summed (every project has a 载体), linking to the period's list."""
    if not carrier_rows:
        return None
    return _performance_row(
        "合计",
        "",
        {
            spec.key: Figure(
                sum(getattr(r, spec.key).count for r in carrier_rows),
                spec.filter,
                sum(
                    (getattr(r, spec.key).amount or Decimal(0) for r in carrier_rows),
                    Decimal(0),
                )
                if spec.measure is not None
                else None,
            )
            for spec in specs
        },
    )


def _funnel_bars(funnel: list[tuple[Stage, Figure, Figure]]) -> list[Bar]:
    longest = max([f.count for _s, f, _n in funnel] + [1])
    return [
        Bar(
            label=stage.label,
            value=figure.count,
            text=f"{figure.count} 项 · {yi(figure.amount)} 亿元",
            width=round(100 * figure.count / longest, 1),
            figure=figure,
            secondary=round(100 * new.count / longest, 1),
        )
        for stage, figure, new in funnel
    ]


def _amount_bars(rows: list[tuple[str, Figure]]) -> list[Bar]:
    longest = max([f.amount or 0 for _n, f in rows] + [Decimal(1)])
    return [
        Bar(
            label=name,
            value=figure.amount or Decimal(0),
            text=f"{yi(figure.amount)} 亿元 · {figure.count} 项",
            width=round(float(100 * (figure.amount or 0) / longest), 1),
            figure=figure,
        )
        for name, figure in rows
    ]


def default_period(today: date) -> tuple[date, date]:
    return date(today.year, 1, 1), today


def parse_period(start: str, end: str, today: date) -> tuple[date, date]:
    default_start, default_end = default_period(today)
    try:
        first = date.fromisoformat(start) if start else default_start
    except ValueError:
        first = default_start
    try:
        last = date.fromisoformat(end) if end else default_end
    except ValueError:
        last = default_end
    lowest, highest = DATE_RANGE
    first = first if lowest <= first <= highest else default_start
    last = last if lowest <= last <= highest else default_end
    if last < first:
        first, last = last, first
    if (last - first) > timedelta(days=366 * 20):
        first = last - timedelta(days=366 * 20)
    return first, last
