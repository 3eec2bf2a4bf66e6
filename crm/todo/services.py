"""待办: what a user must do now, in groups, each item with its project, since when, its due
date and one link to the place where it is done.

Each group is a function `(user, today, limit) -> Group | None` (None: not this user's work),
and `GROUPS` lists which groups each role sees, in order. A group reads its first `limit`
items and its total from the feature that owns them: the 待办 page adds no rule of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import NamedTuple

import sqlalchemy as sa
from flask import current_app, url_for
from sqlalchemy.orm import joinedload

from crm.access import project_scope
from crm.auth.models import Role, User
from crm.core import utcnow
from crm.dashboard import queries
from crm.evaluation.models import Evaluation, EvaluationState
from crm.evaluation.services import decision_queue_query, summaries_of
from crm.extensions import db
from crm.jobs import runs
from crm.notifications.models import Notification
from crm.projects.conflicts import (
    count_open_conflicts,
    count_pending_handovers_for,
    pending_handovers_for,
)
from crm.projects.filters import stale_clause
from crm.projects.models import Project, StageChange
from crm.projects.stages import Verification
from crm.speedups import kept
from crm.tasks.services import (
    count_open_tasks_for,
    escalated_tasks,
    open_task_count,
    open_tasks_for,
)
from crm.templating import local_datetime, number

LIMIT = 10  # items shown per group; the group's link lists them all
REJECTIONS_SHOWN_DAYS = 30  # a rejected 甄别 stays on the officer's 待办 this long


@dataclass
class Item:
    name: str  # the project's name (or the account's)
    url: str  # where the work is done
    what: str  # what is to be done
    since: datetime | date | None = None
    due: date | None = None
    overdue: bool = False
    where: str = ""  # the 载体, the assignee, …
    note: str = ""  # a figure worth seeing here (a score, veto hits)
    alert: bool = False  # the note is a warning


@dataclass
class Group:
    key: str
    title: str
    total: int
    items: list[Item]
    empty: str  # the one line an empty group shows
    more_url: str | None = None  # the full list, when the group shows only its first items
    notes: list[str] = field(default_factory=list)


GroupFunction = Callable[[User, date, int], "Group | None"]


def _count(query: sa.Select) -> int:
    return db.session.scalar(
        sa.select(sa.func.count()).select_from(query.order_by(None).subquery())
    )


def _own_projects(user: User) -> sa.ColumnElement[bool]:
    """An officer's own projects (责任人); everyone else's scope."""
    if user.role is Role.OFFICER:
        return sa.and_(project_scope(user), Project.officer_id == user.id)
    return project_scope(user)


# The groups -------------------------------------------------------------------------------------


def my_tasks(user: User, today: date, limit: int) -> Group:
    """任务 assigned to the user, open, due first: a project's 下一步 is its officer's task."""
    return Group(
        "tasks",
        "我的任务",
        count_open_tasks_for(user),
        [
            Item(
                t.project.name,
                url_for("tasks.detail", task_id=t.id),
                f"{t.kind.label}：{t.title}",
                since=t.created_at,
                due=t.due_on,
                overdue=t.due_on is not None and t.due_on < today,
            )
            for t in open_tasks_for(user, limit)
        ],
        "没有待办的任务。",
        url_for("tasks.index"),
    )


def escalated(user: User, today: date, limit: int) -> Group:
    """督办: tasks overdue ESCALATE_AFTER_DAYS or more, in the user's scope, for leaders."""
    days = current_app.config["ESCALATE_AFTER_DAYS"]
    total, tasks = escalated_tasks(user, today - timedelta(days=days - 1), limit)
    return Group(
        "escalated",
        f"督办：逾期 {days} 天以上的任务",
        total,
        [
            Item(
                t.project.name,
                url_for("tasks.detail", task_id=t.id),
                f"{t.kind.label}：{t.title}",
                since=t.created_at,
                due=t.due_on,
                overdue=True,
                where=f"承办人 {t.assignee.display_name}",
            )
            for t in tasks
        ],
        f"没有逾期 {days} 天以上的任务。",
        url_for("tasks.index", scope="all", state="overdue"),
    )


def stale_projects(user: User, today: date, limit: int) -> Group:
    """久未跟踪: the officer's own projects not followed up for STALE_AFTER_DAYS."""
    days = current_app.config["STALE_AFTER_DAYS"]
    query = sa.select(Project).where(_own_projects(user), stale_clause(today, days))
    projects = db.session.scalars(
        query.order_by(Project.last_followup_on.asc().nulls_first(), Project.id).limit(limit)
    ).all()
    args = {"stale": 1} | ({"officer": user.id} if user.role is Role.OFFICER else {})
    return Group(
        "stale",
        f"久未跟踪（超过 {days} 天）",
        _count(query),
        [
            Item(
                p.name,
                url_for("projects.detail", project_id=p.id) + "#timeline",
                "跟踪一次",
                since=p.last_followup_on,
                note="从未跟踪" if p.last_followup_on is None else "",
            )
            for p in projects
        ],
        "没有久未跟踪的项目。",
        url_for("projects.index", **args),
    )


def returned_evaluations(user: User, today: date, limit: int) -> Group:
    """评估退回: the leaders returned an evaluation of the officer's project for rework."""
    query = (
        sa.select(Evaluation)
        .join(Project, Project.id == Evaluation.project_id)
        .where(_own_projects(user), Evaluation.state == EvaluationState.RETURNED)
    )
    evaluations = db.session.scalars(
        query.order_by(Evaluation.decided_at, Evaluation.id)
        .options(joinedload(Evaluation.project))
        .limit(limit)
    ).all()
    return Group(
        "returned",
        "被退回的评估",
        _count(query),
        [
            Item(
                e.project.name,
                url_for("evaluation.detail", evaluation_id=e.id),
                "按决策意见补充后重新提交",
                since=e.decided_at,
            )
            for e in evaluations
        ],
        "没有被退回的评估。",
    )


def evaluations_to_fill(user: User, today: date, limit: int) -> Group:
    """评估待填写或提交: drafts and returned evaluations of the task force's cluster."""
    query = (
        sa.select(Evaluation)
        .join(Project, Project.id == Evaluation.project_id)
        .where(
            project_scope(user),
            Evaluation.state.in_((EvaluationState.DRAFT, EvaluationState.RETURNED)),
        )
    )
    evaluations = db.session.scalars(
        query.order_by(Evaluation.created_at, Evaluation.id)
        .options(joinedload(Evaluation.project).joinedload(Project.carrier))
        .limit(limit)
    ).all()
    return Group(
        "to_fill",
        "待填写或提交的评估",
        _count(query),
        [
            Item(
                e.project.name,
                url_for("evaluation.detail", evaluation_id=e.id),
                "补充后重新提交" if e.state is EvaluationState.RETURNED else "填写清单并提交",
                since=e.decided_at or e.created_at,
                where=e.project.carrier.name,
                note=e.state.label,
                alert=e.state is EvaluationState.RETURNED,
            )
            for e in evaluations
        ],
        "没有待填写的评估。",
    )


def rejected_moves(user: User, today: date, limit: int) -> Group:
    """甄别驳回: the officer's claimed moves the task force rejected lately."""
    since = utcnow() - timedelta(days=REJECTIONS_SHOWN_DAYS)
    query = (
        sa.select(StageChange)
        .join(Project, Project.id == StageChange.project_id)
        .where(
            _own_projects(user),
            StageChange.verification == Verification.REJECTED,
            StageChange.verified_at >= since,
        )
    )
    changes = db.session.scalars(
        query.order_by(StageChange.verified_at.desc(), StageChange.id.desc())
        .options(joinedload(StageChange.project))
        .limit(limit)
    ).all()
    return Group(
        "rejected",
        f"甄别被驳回的阶段变更（近 {REJECTIONS_SHOWN_DAYS} 天）",
        _count(query),
        [
            Item(
                c.project.name,
                url_for("projects.detail", project_id=c.project_id) + "#verification",
                f"“{c.to_stage.label}”被驳回：{c.verification_note}",
                since=c.verified_at,
                alert=True,
            )
            for c in changes
        ],
        "没有被驳回的阶段变更。",
    )


def moves_to_verify(user: User, today: date, limit: int) -> Group:
    """待甄别: moves into 签约, 开工, 投产 waiting for the task force."""
    query = (
        sa.select(StageChange)
        .join(Project, Project.id == StageChange.project_id)
        .where(project_scope(user), StageChange.verification == Verification.PENDING)
    )
    return Group(
        "to_verify",
        "待甄别的阶段变更",
        _count(query),
        [
            Item(
                c.project.name,
                url_for("projects.detail", project_id=c.project_id) + "#verification",
                f"核实“{c.to_stage.label}”",
                since=c.changed_at,
                where=c.project.carrier.name,
            )
            for c in queries.pending_moves(user, limit)
        ],
        "没有待甄别的阶段变更。",
        url_for("projects.index", verification=Verification.PENDING.name),
    )


def conflicts(user: User, today: date, limit: int) -> Group:
    """跨载体冲突 still open, of the projects the user reads."""
    return Group(
        "conflicts",
        "未处理的跨载体冲突",
        count_open_conflicts(user),
        [
            Item(
                f"{c.project.name} / {c.other_project.name}",
                url_for("conflicts.conflicts") + f"#conflict-{c.id}",
                "商定由哪个载体跟进",
                since=c.detected_at,
                where=f"{c.project.carrier.name} / {c.other_project.carrier.name}",
                note=c.basis.label,
            )
            for c in queries.open_conflicts(user, limit)
        ],
        "没有未处理的冲突。",
        url_for("conflicts.conflicts"),
    )


def awaiting_decision(user: User, today: date, limit: int) -> Group:
    """待决策: evaluations submitted to the leaders, with their score and veto hits."""
    evaluations = queries.awaiting_decision(user, limit)
    summaries = summaries_of(evaluations)
    items = []
    for e in evaluations:
        s = summaries[e.id]
        vetoes = f" · 一票否决 {len(s.veto_hits)} 项" if s.veto_hits else ""
        items.append(
            Item(
                e.project.name,
                url_for("evaluation.detail", evaluation_id=e.id) + "#decision",
                "集体决策",
                since=e.submitted_at,
                where=e.project.carrier.name,
                note=f"得分 {number(s.total_score)}/{number(s.max_score)}{vetoes}",
                alert=bool(s.veto_hits),
            )
        )
    return Group(
        "decisions",
        "待决策的评估",
        _count(decision_queue_query().where(project_scope(user))),
        items,
        "没有待决策的评估。",
        url_for("evaluation.queue"),
    )


def locked_accounts(user: User, today: date, limit: int) -> Group:
    """Accounts locked after wrong passwords: the admin may unlock them."""
    query = sa.select(User).where(User.locked_until > utcnow())
    users = db.session.scalars(query.order_by(User.locked_until, User.id).limit(limit)).all()
    return Group(
        "locked",
        "被锁定的账号",
        _count(query),
        [
            Item(
                f"{u.display_name}（{u.username}）",
                url_for("admin.user_edit", user_id=u.id),
                "核实后解锁",
                where=u.scope_label,
                note=f"锁定至 {local_datetime(u.locked_until)}",
            )
            for u in users
        ],
        "没有被锁定的账号。",
        url_for("admin.users"),
    )


def handovers_to_accept(user: User, today: date, limit: int) -> Group:
    """流转 waiting for the receiving 载体 (its officers, the cluster's task force, leaders)."""
    return Group(
        "handovers",
        "待接收的项目流转",
        count_pending_handovers_for(user),
        [
            Item(
                h.project.name,
                url_for("projects.detail", project_id=h.project_id) + "#handover",
                f"接收或退回：{h.from_carrier.name} → {h.to_carrier.name}",
                since=h.handed_at,
                where=f"发起人 {h.handed_by.display_name}" if h.handed_by else "",
            )
            for h in pending_handovers_for(user, limit)
        ],
        "没有待接收的流转。",
    )


def failed_jobs(user: User, today: date, limit: int) -> Group:
    """Background jobs that failed in the last week, after their retries."""
    return Group(
        "failed_jobs",
        "失败的后台任务（近 7 天）",
        runs.count_failed_jobs(),
        [
            Item(
                run.label,
                url_for("admin.jobs", status="FAILED"),
                run.error or "失败",
                since=run.finished_at or run.started_at,
                where=run.summary,
                alert=True,
            )
            for run in runs.failed_jobs(limit)
        ],
        "近 7 天没有失败的后台任务。",
        url_for("admin.jobs", status="FAILED"),
    )


# Which groups each role sees, in this order.
GROUPS: dict[Role, tuple[GroupFunction, ...]] = {
    Role.OFFICER: (
        my_tasks,
        handovers_to_accept,
        returned_evaluations,
        rejected_moves,
        stale_projects,
    ),
    Role.TASKFORCE: (
        my_tasks,
        evaluations_to_fill,
        moves_to_verify,
        handovers_to_accept,
        conflicts,
    ),
    Role.LEADER: (awaiting_decision, escalated, handovers_to_accept, conflicts, my_tasks),
    Role.ADMIN: (
        locked_accounts,
        failed_jobs,
        escalated,
        awaiting_decision,
        moves_to_verify,
        handovers_to_accept,
        conflicts,
    ),
}


def home_note(user: User) -> str:
    """What the home page says of a role whose work has no group yet: a department user's
    queue will be the 诉求 addressed to its 部门, which do not exist yet. '' for the others."""
    if user.role is Role.DEPARTMENT and user.department is not None:
        return f"交办给{user.department.name}的诉求将列在这里，由本部门报到和答复。"
    return ""


class TopCounts(NamedTuple):
    tasks: int  # open tasks assigned to the user
    unread: int  # unread notifications


def top_counts(user: User) -> TopCounts:
    """The top bar's two figures, on every page: one statement of two counts read from indexes
    alone (the user's open tasks, its unread notifications), kept (`crm.speedups.kept`) so a
    page pays for the query alone. Counting the tasks through their projects' scope cost
    0.8 ms a page for an officer with 1,000 open tasks (`make bench`); the index alone,
    0.03 ms."""

    def build() -> sa.Select:
        uid = sa.bindparam("user_id")
        unread = (
            sa.select(sa.func.count())
            .select_from(Notification)
            .where(Notification.user_id == uid, Notification.read_at.is_(None))
        )
        tasks = open_task_count(uid)
        return sa.select(tasks.scalar_subquery(), unread.scalar_subquery())

    statement = kept("top_counts", build)
    row = db.session.connection().execute(statement, {"user_id": user.id}).one()
    return TopCounts(*row)


def todo_for(user: User, today: date, limit: int = LIMIT) -> list[Group]:
    return [group for build in GROUPS.get(user.role, ()) if (group := build(user, today, limit))]
