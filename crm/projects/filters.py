"""The project list's filters: what `?stage=…&stale=1…` means, in words and in SQL.

The list, its export and the dashboard's figures all select projects through
`filter_clauses`, so a figure and the list it links to count the same projects."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app, has_app_context

from crm.core import LOCAL_TZ, parse_int
from crm.projects.models import FundsRecord, Project, ProjectConflict, StageChange
from crm.projects.search import search_clause
from crm.projects.stages import Stage, Status, Verification


def stale_clause(today: date, days: int) -> sa.ColumnElement[bool]:
    """正常 projects with no follow-up for `days` days (or none since they were registered)."""
    cutoff = today - timedelta(days=days)
    cutoff_at = datetime.combine(cutoff, time.min, LOCAL_TZ).astimezone(UTC)
    return sa.and_(
        Project.status == Status.ACTIVE,
        sa.or_(
            Project.last_followup_on < cutoff,
            sa.and_(Project.last_followup_on.is_(None), Project.created_at < cutoff_at),
        ),
    )


def is_stale(project: Project, today: date, days: int) -> bool:
    if project.status is not Status.ACTIVE:
        return False
    cutoff = today - timedelta(days=days)
    last = project.last_followup_on or project.created_at.astimezone(LOCAL_TZ).date()
    return last < cutoff


SORTS: dict[str, tuple[str, Any]] = {
    "updated": ("最近更新", Project.updated_at.desc()),
    "name": ("项目名称", Project.name.asc()),
    "investment": ("总投资", Project.total_investment.desc()),
    "stage": ("阶段", Project.stage.asc()),
    "due": ("下一步期限", Project.next_action_due.asc()),
}

# Planned-date columns per milestone stage, and the stages a project is in while it is late for
# that milestone (逾期未签约 / 逾期未开工 / 逾期未投产).
PLANNED_COLUMNS: dict[Stage, Any] = {
    Stage.SIGNED: Project.planned_signed_on,
    Stage.STARTED: Project.planned_started_on,
    Stage.PRODUCING: Project.planned_producing_on,
}
OVERDUE_STAGES: dict[Stage, tuple[Stage, ...]] = {
    Stage.SIGNED: (Stage.PLANNED, Stage.ATTRACTING),
    Stage.STARTED: (Stage.SIGNED,),
    Stage.PRODUCING: (Stage.STARTED,),
}
OVERDUE_LABELS = {
    Stage.SIGNED: "逾期未签约",
    Stage.STARTED: "逾期未开工",
    Stage.PRODUCING: "逾期未投产",
}
PIPELINE_STATUSES = (Status.ACTIVE, Status.ON_HOLD)  # 在库: not 终止, not 流失
# The longest search the project list takes (its input's maxlength); a longer one is refused.
SEARCH_MAX_CHARS = 100

# Dates a filter accepts: beyond them a date is a typing error (and would overflow).
DATE_RANGE = (date(1900, 1, 1), date(2999, 12, 31))


def _period(start: date | None, end: date | None) -> str:
    if start and end:
        return f"{start.isoformat()} 至 {end.isoformat()}"
    if start:
        return f"{start.isoformat()} 起"
    if end:
        return f"{end.isoformat()} 前"
    return ""


def _local_start(day: date) -> datetime:
    """The first moment of a local (Asia/Shanghai) day, in UTC."""
    return datetime.combine(day, time.min, LOCAL_TZ).astimezone(UTC)


def moment_between(column, start: date | None, end: date | None) -> list[sa.ColumnElement]:
    conditions = []
    if start:
        conditions.append(column >= _local_start(start))
    if end:
        conditions.append(column < _local_start(end + timedelta(days=1)))
    return conditions


def date_between(column, start: date | None, end: date | None) -> list[sa.ColumnElement]:
    """`column` (a date) between `start` and `end`, both included (either may be None)."""
    conditions = []
    if start:
        conditions.append(column >= start)
    if end:
        conditions.append(column <= end)
    return conditions


def moved_clause(
    stage: Stage | None,
    verification: Verification | None = None,
    start: date | None = None,
    end: date | None = None,
    officer_id: int | None = None,
) -> sa.ColumnElement[bool]:
    """The project has a history row into `stage` (any stage if None), with `verification`,
    made between the local dates `start` and `end` (while `officer_id` was in charge)."""
    conditions = []
    if officer_id is not None:
        conditions.append(StageChange.officer_id == officer_id)
    if stage is not None:
        conditions.append(StageChange.to_stage == stage)
    if verification is not None:
        conditions.append(StageChange.verification == verification)
    conditions += moment_between(StageChange.changed_at, start, end)
    return Project.id.in_(sa.select(StageChange.project_id).where(*conditions))


def overdue_clause(milestone: Stage, today: date) -> sa.ColumnElement[bool]:
    """正常 projects still short of `milestone` after its planned date."""
    return sa.and_(
        Project.status == Status.ACTIVE,
        Project.stage.in_(OVERDUE_STAGES[milestone]),
        PLANNED_COLUMNS[milestone] < today,
    )


def funded_clause(start: date | None = None, end: date | None = None) -> sa.ColumnElement[bool]:
    """Projects whose funds (实际到位资金) received within the dates count: those still signed
    (签约 or later) whose 签约 the task force verified (甄别); a project moved back below 签约
    counts none. The dashboard sums the funds of exactly these projects."""
    return sa.and_(
        Project.stage.in_([s for s in Stage if s.order >= Stage.SIGNED.order]),
        Project.id.in_(
            sa.select(FundsRecord.project_id).where(
                *date_between(FundsRecord.received_on, start, end)
            )
        ),
        moved_clause(Stage.SIGNED, Verification.VERIFIED),
    )


def open_conflict_clause() -> sa.ColumnElement[bool]:
    open_ = ProjectConflict.resolved_at.is_(None)
    return Project.id.in_(
        sa.union(
            sa.select(ProjectConflict.project_id).where(open_),
            sa.select(ProjectConflict.other_project_id).where(open_),
        )
    )


# Filters other packages contribute --------------------------------------------------------


@dataclass(frozen=True)
class ListFilter:
    """A list filter another package contributes (so this package never imports it):
    `?key=1`, shown as `label`, selecting the projects of `clause`."""

    key: str
    label: str
    clause: Callable[[], sa.ColumnElement[bool]]


_CONTRIBUTED = "crm.list_filters"  # the app's extensions key


def add_list_filters(app: Flask, *filters: ListFilter) -> None:
    """Let the list of `app` take these filters: called by the app's wiring (create_app)."""
    app.extensions.setdefault(_CONTRIBUTED, {}).update({f.key: f for f in filters})


def contributed_filters() -> dict[str, ListFilter]:
    """The filters contributed to the current app (none outside one)."""
    return current_app.extensions.get(_CONTRIBUTED, {}) if has_app_context() else {}


# The filter -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProjectFilter:
    """The project list's filters, as read from the query string.

    Besides the form's fields, the filters the dashboard's figures link to, so that every
    figure opens the list of exactly the projects behind it. Each field is described once, in
    `CONDITIONS`: its argument, how it reads and writes, its label and its SQL. Frozen and
    hashable: it keys the list's kept statements.
    """

    q: str = ""
    stage: Stage | None = None
    status: Status | None = None
    carrier_id: int | None = None
    cluster_id: int | None = None
    channel_id: int | None = None
    officer_id: int | None = None
    is_key: bool = False
    stale: bool = False
    sort: str = "updated"
    pipeline: bool = False  # 正常 or 暂缓
    created_from: date | None = None  # registered (登记) within these dates
    created_to: date | None = None
    moved_into: tuple[Stage, ...] = ()  # has a move into each of these stages,
    verification: Verification | None = None  # with this verification (alone: any move),
    moved_from: date | None = None  # made within these dates
    moved_to: date | None = None
    moved_officer_id: int | None = None  # while this officer was in charge (credited to it)
    planned: Stage | None = None  # the planned date of this milestone within these dates
    planned_from: date | None = None
    planned_to: date | None = None
    overdue: Stage | None = None  # late for this milestone
    overdue_any: bool = False  # late for any milestone
    funded: bool = False  # has funds (实际到位资金) received within these dates
    funded_from: date | None = None
    funded_to: date | None = None
    conflict: bool = False  # has an open cross-载体 conflict
    extra: tuple[str, ...] = ()  # contributed filters that are on

    @classmethod
    def from_args(cls, args) -> ProjectFilter:
        """Read a filter from a query string (a werkzeug MultiDict or a plain dict); an
        argument that does not read as its field's kind is left out."""
        query = _Query(args)
        values = {param.field: param.read(query, param.arg) for param in _PARAMS}
        sort = query.get("sort")
        return cls(
            **values,
            sort=sort if sort in SORTS else "updated",
            extra=tuple(key for key in contributed_filters() if query.get(key) == "1"),
        )

    def to_args(self) -> dict[str, Any]:
        """The query string arguments that read back as this filter (for links)."""
        args: dict[str, Any] = {}
        for param in _PARAMS:
            value = getattr(self, param.field)
            if value != _DEFAULTS[param.field]:  # an id 0 too: the list selects none
                args[param.arg] = _written(value)
        for key in self.extra:
            args[key] = "1"
        if self.sort != "updated":
            args["sort"] = self.sort
        return args

    def hidden_args(self) -> dict[str, Any]:
        """The arguments of `to_args` the list's form has no field for (set by a dashboard
        link): the form carries them along as hidden fields."""
        shown = {
            p.arg for p in _PARAMS if p.on_form is True or (callable(p.on_form) and p.on_form(self))
        }
        return {
            name: value for name, value in self.to_args().items() if name not in shown | {"sort"}
        }

    def advanced_labels(self) -> list[str]:
        """The conditions the list form does not show (set by a dashboard link), in Chinese."""
        labels = [c.label(self) for c in CONDITIONS if c.label is not None]
        contributed = contributed_filters()
        labels += [contributed[key].label for key in self.extra if key in contributed]
        return [label for label in labels if label]


def filter_clauses(f: ProjectFilter, today: date, stale_days: int) -> list[sa.ColumnElement]:
    """The WHERE conditions of a filter, without the permission scope: the list and the
    dashboard's figures use these same conditions, so their counts agree."""
    clauses = [clause for c in CONDITIONS for clause in c.clauses(f, today, stale_days)]
    contributed = contributed_filters()
    return clauses + [contributed[key].clause() for key in f.extra if key in contributed]


# How each filter reads, writes, reads in words and selects --------------------------------


class _Query:
    """A query string: a werkzeug MultiDict or a plain dict, read leniently."""

    def __init__(self, args) -> None:
        self.args = args

    def get(self, name: str) -> str:
        value = self.args.get(name, "")
        return value.strip() if isinstance(value, str) else ""

    def getlist(self, name: str) -> list[str]:
        if hasattr(self.args, "getlist"):
            return self.args.getlist(name)
        value = self.args.get(name)
        return value if isinstance(value, list) else [value] if value else []


def _text(query: _Query, arg: str) -> str:
    return query.get(arg)[:SEARCH_MAX_CHARS]


def _flag(query: _Query, arg: str) -> bool:
    return query.get(arg) == "1"


def _int(query: _Query, arg: str) -> int | None:
    return parse_int(query.get(arg))


def _date(query: _Query, arg: str) -> date | None:
    try:
        value = date.fromisoformat(query.get(arg)[:10])
    except ValueError:
        return None
    return value if DATE_RANGE[0] <= value <= DATE_RANGE[1] else None


def _named(kind, among=None) -> Callable[[_Query, str], Any]:
    """A member of the enum `kind` by its name (one of `among`, if given)."""

    def read(query: _Query, arg: str):
        value = kind.from_name(query.get(arg))
        return value if among is None or value in among else None

    return read


def _stages(query: _Query, arg: str) -> tuple[Stage, ...]:
    """Stages by name, each once, in the order given."""
    stages: list[Stage] = []
    for name in query.getlist(arg):
        stage = Stage.from_name(name)
        if stage and stage not in stages:
            stages.append(stage)
    return tuple(stages)


def _written(value: Any) -> Any:
    """A field's value as a query string argument."""
    if value is True:
        return "1"
    if isinstance(value, (Stage, Status, Verification)):
        return value.name
    if isinstance(value, tuple):
        return [stage.name for stage in value]
    return value.isoformat() if isinstance(value, date) else value


@dataclass(frozen=True)
class Param:
    """One query string argument: the filter's field it fills, and how it is read. `on_form`:
    the list's form has a field for it (always, or for some filters)."""

    field: str
    arg: str
    read: Callable[[_Query, str], Any]
    on_form: bool | Callable[[ProjectFilter], bool] = False


Clauses = Callable[[ProjectFilter, date, int], list[sa.ColumnElement]]


@dataclass(frozen=True)
class Condition:
    """One filter of the list: its arguments, its WHERE conditions (none when it is off) and,
    for a filter the form does not show, its description in Chinese (None when it is off)."""

    params: tuple[Param, ...]
    clauses: Clauses
    label: Callable[[ProjectFilter], str | None] | None = None


def _equals(column, field: str) -> Clauses:
    def clauses(f: ProjectFilter, _today: date, _stale_days: int) -> list[sa.ColumnElement]:
        value = getattr(f, field)
        return [] if value is None else [column == value]

    return clauses


def _on_form_field(field: str, arg: str, read, column) -> Condition:
    """A filter the form shows, that selects the projects whose `column` is its value."""
    return Condition((Param(field, arg, read, on_form=True),), _equals(column, field))


def _moved_clauses(f: ProjectFilter, _today: date, _stale_days: int) -> list[sa.ColumnElement]:
    when = (f.verification, f.moved_from, f.moved_to, f.moved_officer_id)
    if f.moved_into:
        return [moved_clause(stage, *when) for stage in f.moved_into]
    return [moved_clause(None, *when)] if f.verification is not None else []


def _moved_label(f: ProjectFilter) -> str | None:
    if not (f.moved_into or f.verification):
        return None
    state = f"{f.verification.label}的" if f.verification else ""
    into = "、".join(s.label for s in f.moved_into) or "任一阶段"
    when = _period(f.moved_from, f.moved_to)
    by = "，由所选招商专员任责任人时推进" if f.moved_officer_id is not None else ""
    return f"有{state}进入{into}的阶段变更" + (f"（{when}{by}）" if when or by else "")


def _planned_clauses(f: ProjectFilter, _today: date, _stale_days: int) -> list[sa.ColumnElement]:
    if f.planned is None:
        return []
    column = PLANNED_COLUMNS[f.planned]
    return [column.is_not(None), *date_between(column, f.planned_from, f.planned_to)]


def _planned_label(f: ProjectFilter) -> str | None:
    if not f.planned:
        return None
    when = _period(f.planned_from, f.planned_to)
    return f"计划{f.planned.label}日期" + (f"在{when}" if when else "已填写")


def _funded_label(f: ProjectFilter) -> str | None:
    if not f.funded:
        return None
    when = _period(f.funded_from, f.funded_to)
    return "有计入统计的实际到位资金（签约已核实）" + (f"（{when}）" if when else "")


def _span(name: str) -> tuple[Param, Param]:
    """The dates `{name}_from` and `{name}_to` (both included) a filter applies between."""
    return Param(f"{name}_from", f"{name}_from", _date), Param(f"{name}_to", f"{name}_to", _date)


def _pending_alone(f: ProjectFilter) -> bool:
    """The form's box 仅待核实: moves waiting for verification, into any stage."""
    return f.verification is Verification.PENDING and not f.moved_into


# Every filter of the list, in the order of its arguments in a link and of its conditions.
CONDITIONS: tuple[Condition, ...] = (
    Condition(
        (Param("q", "q", _text, on_form=True),),
        lambda f, _today, _days: [search_clause(f.q)] if f.q else [],
    ),
    _on_form_field("stage", "stage", _named(Stage), Project.stage),
    _on_form_field("status", "status", _named(Status), Project.status),
    _on_form_field("carrier_id", "carrier", _int, Project.carrier_id),
    _on_form_field("cluster_id", "cluster", _int, Project.cluster_id),
    _on_form_field("channel_id", "channel", _int, Project.channel_id),
    _on_form_field("officer_id", "officer", _int, Project.officer_id),
    Condition(
        (Param("is_key", "key", _flag, on_form=True),),
        lambda f, _today, _days: [Project.is_key.is_(True)] if f.is_key else [],
    ),
    Condition(
        (Param("stale", "stale", _flag, on_form=True),),
        lambda f, today, days: [stale_clause(today, days)] if f.stale else [],
    ),
    Condition(
        (Param("pipeline", "pipeline", _flag),),
        lambda f, _today, _days: [Project.status.in_(PIPELINE_STATUSES)] if f.pipeline else [],
        lambda f: "在库项目（正常、暂缓）" if f.pipeline else None,
    ),
    Condition(
        _span("created"),
        lambda f, _today, _days: moment_between(Project.created_at, f.created_from, f.created_to),
        lambda f: (
            "登记于" + _period(f.created_from, f.created_to)
            if f.created_from or f.created_to
            else None
        ),
    ),
    Condition(
        (
            Param("moved_into", "moved", _stages),
            Param("verification", "verification", _named(Verification), on_form=_pending_alone),
            *_span("moved"),
            Param("moved_officer_id", "moved_by", _int),
        ),
        _moved_clauses,
        _moved_label,
    ),
    Condition(
        (
            Param("planned", "planned", _named(Stage, among=PLANNED_COLUMNS)),
            *_span("planned"),
        ),
        _planned_clauses,
        _planned_label,
    ),
    Condition(
        (Param("overdue", "overdue", _named(Stage, among=OVERDUE_STAGES)),),
        lambda f, today, _days: [] if f.overdue is None else [overdue_clause(f.overdue, today)],
        lambda f: OVERDUE_LABELS[f.overdue] if f.overdue else None,
    ),
    Condition(
        # The same argument as the one before: "1" for any milestone.
        (Param("overdue_any", "overdue", _flag),),
        lambda f, today, _days: (
            [sa.or_(*(overdue_clause(m, today) for m in OVERDUE_STAGES))] if f.overdue_any else []
        ),
        lambda f: "计划节点逾期" if f.overdue_any else None,
    ),
    Condition(
        (
            Param("funded", "funded", _flag),
            *_span("funded"),
        ),
        lambda f, _today, _days: [funded_clause(f.funded_from, f.funded_to)] if f.funded else [],
        _funded_label,
    ),
    Condition(
        (Param("conflict", "conflict", _flag),),
        lambda f, _today, _days: [open_conflict_clause()] if f.conflict else [],
        lambda f: "存在未处理的跨载体冲突" if f.conflict else None,
    ),
)

_DEFAULTS = {field.name: field.default for field in dataclasses.fields(ProjectFilter)}
# Every argument, in that order.
_PARAMS = tuple(param for condition in CONDITIONS for param in condition.params)
