"""Projects: follow-ups, element needs, funds, and the queries behind the list, the detail
page and the home page (registering and editing: `crm.projects.registration`)."""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.orm import joinedload, selectinload

from crm.access import project_scope, readable_project, scope_key
from crm.audit.services import apply_changes, record
from crm.auth.models import Role, User
from crm.catalog.models import Carrier, Channel, Cluster
from crm.companies.models import Company, Contact
from crm.core import LOCAL_TZ, ServiceError, local_today, parse_int
from crm.extensions import db
from crm.pagination import IdFirstPagination
from crm.projects.models import (
    ElementNeed,
    FollowUp,
    FundsRecord,
    Handover,
    Project,
    ProjectConflict,
    StageChange,
    StatusChange,
)
from crm.projects.search import search_clause
from crm.projects.stages import Stage, Status, Verification
from crm.statements import kept

# Follow-ups, element needs, funds -----------------------------------------------------------


def add_followup(
    user: User, project: Project, values: dict[str, Any], contacts: list[Contact]
) -> FollowUp:
    errors = {}
    if values["happened_on"] > local_today():
        errors["happened_on"] = "跟踪日期不能晚于今天"
    due = values.get("next_action_due")
    if due and due < values["happened_on"]:
        errors["next_action_due"] = "下一步期限不能早于跟踪日期"
    if due and not values.get("next_action", "").strip():
        errors["next_action"] = "填写了期限，请写明下一步要做什么"
    if any(c.company_id != project.company_id for c in contacts):
        errors["contact_ids"] = "只能选择本项目企业的联系人"
    if errors:
        raise ServiceError(errors=errors)
    followup = FollowUp(
        project_id=project.id,
        kind=values["kind"],
        happened_on=values["happened_on"],
        summary=values["summary"].strip(),
        next_action=values.get("next_action", "").strip(),
        next_action_due=due,
        created_by_id=user.id,
        contacts=contacts,
    )
    db.session.add(followup)
    # The latest follow-up sets the project's next action and freshness.
    if project.last_followup_on is None or followup.happened_on >= project.last_followup_on:
        project.last_followup_on = followup.happened_on
        project.next_action = followup.next_action
        project.next_action_due = followup.next_action_due
    db.session.flush()
    record(
        user,
        "followup_added",
        followup,
        summary=f"{project.name}：{followup.kind.label} {followup.happened_on}",
    )
    return followup


def add_element_need(user: User, project: Project, values: dict[str, Any]) -> ElementNeed:
    need = ElementNeed(
        project_id=project.id,
        kind=values["kind"],
        quantity=values["quantity"],
        unit=(values.get("unit") or "").strip() or values["kind"].default_unit,
        status=values["status"],
        note=values.get("note", "").strip(),
    )
    db.session.add(need)
    db.session.flush()
    record(user, "element_added", need, summary=f"{project.name}：{need.kind.label}")
    return need


def update_element_need(user: User, need: ElementNeed, values: dict[str, Any]) -> ElementNeed:
    changes = apply_changes(
        need,
        {
            "quantity": values["quantity"],
            "status": values["status"],
            "note": values.get("note", "").strip(),
        },
    )
    if changes:
        record(user, "element_updated", need, summary=need.kind.label, changes=changes)
    return need


def add_funds(user: User, project: Project, values: dict[str, Any]) -> FundsRecord:
    """Record funds actually invested (实际到位资金). Funds belong to signed projects: none
    before 签约, nor dated before the signing; they count in the statistics once the task force
    has verified the 签约 (`funded_clause`)."""
    if project.stage.order < Stage.SIGNED.order:
        raise ServiceError(f"项目处于“{project.stage.label}”阶段：实际到位资金须在签约后记录")
    received_on = values["received_on"]
    if received_on > local_today():
        raise ServiceError(errors={"received_on": "到位日期不能晚于今天"})
    if project.signed_on and received_on < project.signed_on:
        raise ServiceError(
            errors={"received_on": f"到位日期不能早于签约日期（{project.signed_on.isoformat()}）"}
        )
    funds = FundsRecord(
        project_id=project.id,
        received_on=values["received_on"],
        amount=values["amount"],
        note=values.get("note", "").strip(),
        created_by_id=user.id,
    )
    db.session.add(funds)
    db.session.flush()
    record(user, "funds_added", funds, summary=f"{project.name}：{funds.amount} 万元")
    return funds


# Queries -----------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class ListFilter:
    """A list filter another package adds (so this package never imports it): `?key=1`."""

    key: str
    label: str
    clause: Callable[[], sa.ColumnElement[bool]]


_list_filters: dict[str, ListFilter] = {}


def register_list_filter(key: str, label: str, clause: Callable[[], sa.ColumnElement[bool]]):
    _list_filters[key] = ListFilter(key, label, clause)


@dataclass(frozen=True)
class ProjectFilter:
    """The project list's filters, as read from the query string.

    Besides the form's fields, the filters the dashboard's figures link to, so that every
    figure opens the list of exactly the projects behind it.
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
    planned: Stage | None = None  # the planned date of this milestone within these dates
    planned_from: date | None = None
    planned_to: date | None = None
    overdue: Stage | None = None  # late for this milestone
    overdue_any: bool = False  # late for any milestone
    funded: bool = False  # has funds (实际到位资金) received within these dates
    funded_from: date | None = None
    funded_to: date | None = None
    conflict: bool = False  # has an open cross-载体 conflict
    extra: tuple[str, ...] = ()  # registered filters that are on

    @classmethod
    def from_args(cls, args) -> ProjectFilter:
        """Read a filter from a query string (a werkzeug MultiDict or a plain dict)."""

        def get(name: str) -> str:
            value = args.get(name, "")
            return value.strip() if isinstance(value, str) else ""

        def getlist(name: str) -> list[str]:
            if hasattr(args, "getlist"):
                return args.getlist(name)
            value = args.get(name)
            return value if isinstance(value, list) else [value] if value else []

        def int_arg(name: str) -> int | None:
            value = get(name)
            return parse_int(value)

        def date_arg(name: str) -> date | None:
            try:
                value = date.fromisoformat(get(name)[:10])
            except ValueError:
                return None
            return value if DATE_RANGE[0] <= value <= DATE_RANGE[1] else None

        moved = []
        for name in getlist("moved"):
            stage = Stage.from_name(name)
            if stage and stage not in moved:
                moved.append(stage)
        overdue = get("overdue")
        return cls(
            q=get("q")[:SEARCH_MAX_CHARS],
            stage=Stage.from_name(get("stage")),
            status=Status.from_name(get("status")),
            carrier_id=int_arg("carrier"),
            cluster_id=int_arg("cluster"),
            channel_id=int_arg("channel"),
            officer_id=int_arg("officer"),
            is_key=get("key") == "1",
            stale=get("stale") == "1",
            sort=get("sort") if get("sort") in SORTS else "updated",
            pipeline=get("pipeline") == "1",
            created_from=date_arg("created_from"),
            created_to=date_arg("created_to"),
            moved_into=tuple(moved),
            verification=Verification.from_name(get("verification")),
            moved_from=date_arg("moved_from"),
            moved_to=date_arg("moved_to"),
            planned=planned
            if (planned := Stage.from_name(get("planned"))) in PLANNED_COLUMNS
            else None,
            planned_from=date_arg("planned_from"),
            planned_to=date_arg("planned_to"),
            overdue=Stage.from_name(overdue)
            if Stage.from_name(overdue) in OVERDUE_STAGES
            else None,
            overdue_any=overdue == "1",
            funded=get("funded") == "1",
            funded_from=date_arg("funded_from"),
            funded_to=date_arg("funded_to"),
            conflict=get("conflict") == "1",
            extra=tuple(key for key in _list_filters if get(key) == "1"),
        )

    def to_args(self) -> dict[str, Any]:
        """The query string arguments that read back as this filter (for links)."""
        args: dict[str, Any] = {}

        def put(name: str, value: Any) -> None:
            if value in (None, "", False, ()):
                return
            if value is True:
                args[name] = "1"
            elif isinstance(value, (Stage, Status, Verification)):
                args[name] = value.name
            else:
                args[name] = value.isoformat() if isinstance(value, date) else value

        put("q", self.q)
        put("stage", self.stage)
        put("status", self.status)
        put("carrier", self.carrier_id)
        put("cluster", self.cluster_id)
        put("channel", self.channel_id)
        put("officer", self.officer_id)
        put("key", self.is_key)
        put("stale", self.stale)
        put("pipeline", self.pipeline)
        put("created_from", self.created_from)
        put("created_to", self.created_to)
        if self.moved_into:
            args["moved"] = [s.name for s in self.moved_into]
        put("verification", self.verification)
        put("moved_from", self.moved_from)
        put("moved_to", self.moved_to)
        put("planned", self.planned)
        put("planned_from", self.planned_from)
        put("planned_to", self.planned_to)
        put("overdue", self.overdue)
        if self.overdue_any:
            args["overdue"] = "1"
        put("funded", self.funded)
        put("funded_from", self.funded_from)
        put("funded_to", self.funded_to)
        put("conflict", self.conflict)
        for key in self.extra:
            args[key] = "1"
        if self.sort != "updated":
            args["sort"] = self.sort
        return args

    def advanced_labels(self) -> list[str]:
        """The conditions the list form does not show (set by a dashboard link), in Chinese."""
        labels = []
        if self.pipeline:
            labels.append("在库项目（正常、暂缓）")
        if self.created_from or self.created_to:
            labels.append("登记于" + _period(self.created_from, self.created_to))
        if self.moved_into or self.verification:
            state = f"{self.verification.label}的" if self.verification else ""
            into = "、".join(s.label for s in self.moved_into) or "任一阶段"
            when = _period(self.moved_from, self.moved_to)
            labels.append(f"有{state}进入{into}的阶段变更" + (f"（{when}）" if when else ""))
        if self.planned:
            when = _period(self.planned_from, self.planned_to)
            labels.append(f"计划{self.planned.label}日期" + (f"在{when}" if when else "已填写"))
        if self.overdue:
            labels.append(OVERDUE_LABELS[self.overdue])
        if self.overdue_any:
            labels.append("计划节点逾期")
        if self.funded:
            when = _period(self.funded_from, self.funded_to)
            labels.append(
                "有计入统计的实际到位资金（签约已核实）" + (f"（{when}）" if when else "")
            )
        if self.conflict:
            labels.append("存在未处理的跨载体冲突")
        labels += [_list_filters[key].label for key in self.extra]
        return labels


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


def _moment_between(column, start: date | None, end: date | None) -> list[sa.ColumnElement]:
    conditions = []
    if start:
        conditions.append(column >= _local_start(start))
    if end:
        conditions.append(column < _local_start(end + timedelta(days=1)))
    return conditions


def _date_between(column, start: date | None, end: date | None) -> list[sa.ColumnElement]:
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
) -> sa.ColumnElement[bool]:
    """The project has a history row into `stage` (any stage if None), with `verification`,
    made between the local dates `start` and `end`."""
    conditions = []
    if stage is not None:
        conditions.append(StageChange.to_stage == stage)
    if verification is not None:
        conditions.append(StageChange.verification == verification)
    conditions += _moment_between(StageChange.changed_at, start, end)
    return Project.id.in_(sa.select(StageChange.project_id).where(*conditions))


def overdue_clause(milestone: Stage, today: date) -> sa.ColumnElement[bool]:
    """正常 projects still short of `milestone` after its planned date."""
    return sa.and_(
        Project.status == Status.ACTIVE,
        Project.stage.in_(OVERDUE_STAGES[milestone]),
        PLANNED_COLUMNS[milestone] < today,
    )


def funded_clause(start: date | None = None, end: date | None = None) -> sa.ColumnElement[bool]:
    """Projects whose funds (实际到位资金) received within the dates count: those whose 签约
    the task force verified (甄别). The dashboard sums the funds of exactly these projects."""
    return sa.and_(
        Project.id.in_(
            sa.select(FundsRecord.project_id).where(
                *_date_between(FundsRecord.received_on, start, end)
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


def filter_clauses(f: ProjectFilter, today: date, stale_days: int) -> list[sa.ColumnElement]:
    """The WHERE conditions of a filter, without the permission scope: the list and the
    dashboard's figures use these same conditions, so their counts agree."""
    clauses: list[sa.ColumnElement] = []
    if f.q:
        clauses.append(search_clause(f.q))
    for column, value in (
        (Project.stage, f.stage),
        (Project.status, f.status),
        (Project.carrier_id, f.carrier_id),
        (Project.cluster_id, f.cluster_id),
        (Project.channel_id, f.channel_id),
        (Project.officer_id, f.officer_id),
    ):
        if value is not None:
            clauses.append(column == value)
    if f.is_key:
        clauses.append(Project.is_key.is_(True))
    if f.stale:
        clauses.append(stale_clause(today, stale_days))
    if f.pipeline:
        clauses.append(Project.status.in_(PIPELINE_STATUSES))
    clauses += _moment_between(Project.created_at, f.created_from, f.created_to)
    for stage in f.moved_into:
        clauses.append(moved_clause(stage, f.verification, f.moved_from, f.moved_to))
    if not f.moved_into and f.verification is not None:
        clauses.append(moved_clause(None, f.verification, f.moved_from, f.moved_to))
    if f.planned is not None:
        column = PLANNED_COLUMNS[f.planned]
        clauses.append(column.is_not(None))
        clauses += _date_between(column, f.planned_from, f.planned_to)
    if f.overdue is not None:
        clauses.append(overdue_clause(f.overdue, today))
    if f.overdue_any:
        clauses.append(sa.or_(*(overdue_clause(m, today) for m in OVERDUE_STAGES)))
    if f.funded:
        clauses.append(funded_clause(f.funded_from, f.funded_to))
    if f.conflict:
        clauses.append(open_conflict_clause())
    clauses += [_list_filters[key].clause() for key in f.extra if key in _list_filters]
    return clauses


class Choice(NamedTuple):
    id: int
    name: str


@dataclass(frozen=True)
class ListChoices:
    """The project list's filter choices: active 载体, clusters and channels, and officers."""

    carriers: list[Choice]
    clusters: list[Choice]
    channels: list[Choice]
    officers: list[Choice]


def _officer_conditions(user: User) -> list[sa.ColumnElement[bool]]:
    """Active officers `user` may assign a project to, or filter the list by: an officer those
    of its own 载体, a task force those of the 载体 its projects are in, others all."""
    conditions = [User.role == Role.OFFICER, User.is_active.is_(True)]
    if user.role is Role.OFFICER:
        conditions.append(User.carrier_id == user.carrier_id)
    elif user.role is Role.TASKFORCE:
        conditions.append(
            User.carrier_id.in_(sa.select(Project.carrier_id).where(project_scope(user)).distinct())
        )
    return conditions


def assignable_officers(user: User) -> list[sa.Row]:
    """(id, display_name, carrier_name) of the officers `user` may assign a project to."""
    return list(
        db.session.execute(
            sa.select(User.id, User.display_name, Carrier.name.label("carrier_name"))
            .join(Carrier, Carrier.id == User.carrier_id)
            .where(*_officer_conditions(user))
            .order_by(User.display_name, User.id)
        )
    )


def list_choices(user: User) -> ListChoices:
    """The list's filter choices in one statement (four were a tenth of the list's time):
    catalogue entries in their order (排序, then as entered), officers by name."""
    kinds = (Carrier, Cluster, Channel)

    def build() -> sa.CompoundSelect:
        def entries(kind: int, model) -> sa.Select:
            return sa.select(
                sa.literal_column(str(kind)).label("kind"),
                model.sort_order.label("rank"),
                model.id.label("entered"),
                model.name.label("name"),
                model.id.label("id"),
            ).where(model.is_active.is_(True))

        zero = sa.literal_column("0")
        officers = sa.select(
            sa.literal_column(str(len(kinds))), zero, zero, User.display_name, User.id
        ).where(*_officer_conditions(user))
        statement = sa.union_all(*(entries(i, m) for i, m in enumerate(kinds)), officers)
        return statement.order_by(
            *(sa.column(c) for c in ("kind", "rank", "entered", "name", "id"))
        )

    grouped: list[list[Choice]] = [[] for _ in range(len(kinds) + 1)]
    for kind, _, _, name, id_ in db.session.execute(kept(("list_choices", scope_key(user)), build)):
        grouped[kind].append(Choice(id_, name))
    return ListChoices(*grouped)


# What the list shows of each project besides its own columns.
LIST_OPTIONS = (
    joinedload(Project.company),
    joinedload(Project.carrier),
    joinedload(Project.cluster),
    joinedload(Project.officer),
)


def list_select(user: User, f: ProjectFilter, today: date, stale_days: int) -> sa.Select:
    query = sa.select(Project).where(project_scope(user), *filter_clauses(f, today, stale_days))
    order = SORTS.get(f.sort, SORTS["updated"])[1]
    return query.order_by(order, Project.id.desc())


def project_list_query(user: User, f: ProjectFilter, today: date, stale_days: int) -> sa.Select:
    """The projects of the list, with what it shows (the export reads them all)."""
    return list_select(user, f, today, stale_days).options(*LIST_OPTIONS)


def project_page(
    user: User, f: ProjectFilter, today: date, stale_days: int, page: int, per_page: int
) -> IdFirstPagination:
    """One page of the list, as rows of what it shows (`_page_rows`). A text search matches
    inside names, which no ordered index can serve: its page and total come from one scan of
    the search index. The statements are kept for users of the same scope asking the same
    filter on the same day (the list's statements depend on nothing else)."""
    return IdFirstPagination(
        select=lambda: list_select(user, f, today, stale_days),
        key=("projects", scope_key(user), f, today, stale_days),
        load=lambda ids: _page_rows(ids, today, stale_days),
        one_pass=bool(f.q),
        page=page,
        per_page=per_page,
        error_out=False,
    )


def _page_rows(ids: list[int], today: date, stale_days: int) -> list[tuple]:
    """What the list shows of these projects, as named tuples: a list only reads, and building
    ORM objects for 50 projects and their relations was half the cost of the page (a tuple's
    fields are also read faster by the template than a result row's)."""
    select, row = kept(
        ("page_rows", today, stale_days), lambda: _page_rows_select(today, stale_days)
    )
    # On the session's connection: plain rows need none of the ORM's result handling.
    return [row(*values) for values in db.session.connection().execute(select, {"ids": ids})]


def _page_rows_select(today: date, stale_days: int) -> tuple[sa.Select, type]:
    """`_page_rows`' statement (kept: built once a day) and the named tuple of its rows."""
    select = (
        sa.select(
            Project.id,
            Project.name,
            Project.is_key,
            Project.stage,
            Project.status,
            Project.total_investment,
            Project.next_action_due,
            Project.updated_at,
            Company.name.label("company_name"),
            Carrier.name.label("carrier_name"),
            Cluster.name.label("cluster_name"),
            User.display_name.label("officer_name"),
            stale_clause(today, stale_days).label("is_stale"),
        )
        .join(Company, Company.id == Project.company_id)
        .join(Carrier, Carrier.id == Project.carrier_id)
        .join(Cluster, Cluster.id == Project.cluster_id)
        .outerjoin(User, User.id == Project.officer_id)
        .where(Project.id.in_(sa.bindparam("ids", expanding=True)))
    )
    return select, collections.namedtuple("ListRow", select.selected_columns.keys())


@dataclass
class TimelineEntry:
    at: datetime | date
    kind: str  # "stage", "status", "followup", "handover"
    item: Any


def project_timeline(project: Project) -> list[TimelineEntry]:
    """Stage moves, status changes, follow-ups and hand-overs (流转), newest first, in four
    queries."""
    stage_changes = db.session.scalars(
        sa.select(StageChange)
        .where(StageChange.project_id == project.id)
        .options(joinedload(StageChange.changed_by), joinedload(StageChange.verified_by))
    ).all()
    status_changes = db.session.scalars(
        sa.select(StatusChange)
        .where(StatusChange.project_id == project.id)
        .options(joinedload(StatusChange.changed_by), joinedload(StatusChange.termination_reason))
    ).all()
    followups = db.session.scalars(
        sa.select(FollowUp)
        .where(FollowUp.project_id == project.id)
        .options(joinedload(FollowUp.created_by), selectinload(FollowUp.contacts))
    ).all()
    handovers = db.session.scalars(
        sa.select(Handover)
        .where(Handover.project_id == project.id)
        .options(
            joinedload(Handover.from_carrier),
            joinedload(Handover.to_carrier),
            joinedload(Handover.handed_by),
        )
    ).all()
    entries = (
        [TimelineEntry(c.changed_at, "stage", c) for c in stage_changes]
        + [TimelineEntry(h.handed_at, "handover", h) for h in handovers]
        + [TimelineEntry(c.changed_at, "status", c) for c in status_changes]
        + [
            TimelineEntry(
                datetime.combine(f.happened_on, time(12), LOCAL_TZ).astimezone(UTC),
                "followup",
                f,
            )
            for f in followups
        ]
    )
    return sorted(entries, key=lambda e: (e.at, e.item.id), reverse=True)


def element_needs(project: Project) -> list[ElementNeed]:
    return list(
        db.session.scalars(
            sa.select(ElementNeed)
            .where(ElementNeed.project_id == project.id)
            .order_by(ElementNeed.kind, ElementNeed.id)
        )
    )


def funds_records(project: Project) -> list[FundsRecord]:
    return list(
        db.session.scalars(
            sa.select(FundsRecord)
            .where(FundsRecord.project_id == project.id)
            .order_by(FundsRecord.received_on.desc(), FundsRecord.id.desc())
        )
    )


def funds_ratio(total: Decimal, project: Project) -> Decimal | None:
    """资金到位率: funds in place over the signed amount, in percent."""
    if project.signed_amount:
        return (total * 100 / project.signed_amount).quantize(Decimal("0.1"))
    return None


@dataclass
class MyWork:
    due: list[Project]
    stale: list[Project]
    recent: list[StageChange]


def my_work(user: User, today: date, stale_days: int, limit: int = 20) -> MyWork:
    """The home page: next actions due this week or overdue, stale projects, recent moves."""
    week_end = today + timedelta(days=6 - today.weekday())
    mine = project_scope(user)
    if user.role is Role.OFFICER:
        mine = sa.and_(mine, Project.officer_id == user.id)
    opts = (joinedload(Project.company), joinedload(Project.carrier))
    due = db.session.scalars(
        sa.select(Project)
        .where(
            mine,
            Project.status == Status.ACTIVE,
            Project.next_action_due.is_not(None),
            Project.next_action_due <= week_end,
        )
        .order_by(Project.next_action_due, Project.id)
        .options(*opts)
        .limit(limit)
    ).all()
    stale = db.session.scalars(
        sa.select(Project)
        .where(mine, stale_clause(today, stale_days))
        .order_by(Project.last_followup_on.asc().nulls_first(), Project.id)
        .options(*opts)
        .limit(limit)
    ).all()
    # The newest moves first, each checked against the scope, rather than every readable
    # project's moves sorted: a 载体 has tens of thousands of them at a province's scale.
    recent = db.session.scalars(
        sa.select(StageChange)
        .where(readable_project(user, StageChange.project_id), StageChange.from_stage.is_not(None))
        .order_by(StageChange.changed_at.desc(), StageChange.id.desc())
        .options(joinedload(StageChange.project), joinedload(StageChange.changed_by))
        .limit(limit)
    ).all()
    return MyWork(list(due), list(stale), list(recent))
