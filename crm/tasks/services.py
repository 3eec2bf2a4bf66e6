"""任务: creating, completing and cancelling tasks, the lists that read them.

Each command checks its input, flushes, audits (`task_created`, `task_completed`,
`task_cancelled`) and notifies; the view commits. Completing and cancelling are decisions on
the state the user saw: of simultaneous ones exactly one wins (`crm.decisions.decide_once`),
the others get AlreadyDecided (409).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from crm.access import can_read_project, project_scope
from crm.audit.labels import describe_entries
from crm.audit.models import AuditEntry
from crm.audit.services import record
from crm.auth.models import Role, User
from crm.core import ServiceError, local_today, parse_int, utcnow
from crm.decisions import AlreadyDecided, decide_once
from crm.extensions import db
from crm.notifications.models import NotificationKind
from crm.notifications.services import app_path, notify
from crm.projects.models import Project
from crm.tasks.models import (
    DESCRIPTION_MAX,
    NOTE_MAX,
    REASON_MAX,
    TITLE_MAX,
    Task,
    TaskKind,
    TaskStatus,
)

# Open tasks due first (a 下一步 without a date after every dated one, on either database),
# then by project: the order of the indexes, read without a sort.
DUE_ORDER = (sa.nulls_last(Task.due_on.asc()), Task.project_id.asc(), Task.id.asc())


def tell(kind: NotificationKind, task: Task, actor: User, recipient: User | None, text: str):
    notify(
        kind,
        [recipient],
        project=task.project,
        actor=actor,
        text=text[:500],
        url=app_path("tasks.detail", task_id=task.id),
    )


# Who may be given a task -----------------------------------------------------------------------


# The order the assignee list offers people in: those who work the project first.
_ROLE_ORDER = {Role.OFFICER: 0, Role.TASKFORCE: 1, Role.LEADER: 2, Role.ADMIN: 3}


def assignee_choices(project: Project) -> list[User]:
    """The active users who read `project` (the one rule, `can_read_project`): the people a
    task on it may be given to, its officers and task force first, then by name."""
    users = db.session.scalars(
        sa.select(User)
        .where(User.is_active.is_(True))
        .options(joinedload(User.carrier), joinedload(User.cluster))
        .order_by(User.display_name, User.id)
    ).all()
    readers = [u for u in users if can_read_project(u, project)]
    return sorted(readers, key=lambda u: _ROLE_ORDER.get(u.role, len(_ROLE_ORDER)))


def _assignee_error(project: Project, assignee: User | None) -> str | None:
    if assignee is None:
        return "请选择负责人"
    if not assignee.is_active:
        return f"“{assignee.display_name}”的账号已停用，请另选负责人"
    if not can_read_project(assignee, project):
        return f"“{assignee.display_name}”看不到本项目，不能为其指派任务"
    return None


def _text_errors(values: dict[str, str], bounds: dict[str, tuple[int, str]]) -> dict[str, str]:
    """Texts longer than their column: a field message each (the forms say so first)."""
    return {
        name: f"{label}不能超过 {limit} 个字"
        for name, (limit, label) in bounds.items()
        if len(values.get(name) or "") > limit
    }


# Creating, completing, cancelling ---------------------------------------------------------------


def create_task(user: User, project: Project, values: dict[str, Any]) -> Task:
    """A task on `project` for `values["assignee"]` (a User or None), with a title, a
    description and a due date today or later."""
    if not can_read_project(user, project):
        raise ServiceError("看不到该项目，不能为其创建任务")
    title = (values.get("title") or "").strip()
    description = (values.get("description") or "").strip()
    due_on: date | None = values.get("due_on")
    assignee: User | None = values.get("assignee")
    errors = _text_errors(
        {"title": title, "description": description},
        {"title": (TITLE_MAX, "标题"), "description": (DESCRIPTION_MAX, "说明")},
    )
    if not title:
        errors["title"] = "请填写任务标题"
    if due_on is None:
        errors["due_on"] = "请填写期限"
    elif due_on < local_today():
        errors["due_on"] = "期限不能早于今天"
    if error := _assignee_error(project, assignee):
        errors["assignee_id"] = error
    if errors:
        raise ServiceError(errors=errors)
    task = Task(
        project_id=project.id,
        project=project,
        kind=TaskKind.TASK,
        title=title,
        description=description,
        due_on=due_on,
        assignee_id=assignee.id,
        assignee=assignee,
        status=TaskStatus.OPEN,
        created_by_id=user.id,
    )
    db.session.add(task)
    db.session.flush()
    record(user, "task_created", task, summary=f"{project.name}：{title} → {assignee.display_name}")
    tell(
        NotificationKind.TASK_ASSIGNED,
        task,
        user,
        assignee,
        f"{user.display_name}给您指派了任务“{title}”（{project.name}，期限 {due_on.isoformat()}）",
    )
    return task


def reassign_unreadable_tasks(user: User | None, project_ids, *, bulk: bool = False) -> None:
    """An open task goes with its project: when a project changes hands (a hand-over accepted,
    a new officer), a task whose assignee can no longer read it passes to the project's
    officer, told and audited. So an open task's assignee always reads its project, and the
    top bar counts a user's open tasks from the index alone (`crm.todo.services.top_counts`).
    The ledger import (`bulk`) changes no project's 载体."""
    if bulk or not project_ids:
        return
    tasks = db.session.scalars(
        sa.select(Task)
        .where(Task.project_id.in_(list(project_ids)), Task.status == TaskStatus.OPEN)
        .options(joinedload(Task.project), joinedload(Task.assignee))
        .order_by(Task.id)
    ).all()
    for task in tasks:
        project, old = task.project, task.assignee
        if can_read_project(old, project) or project.officer_id == old.id:
            continue
        # By id: the project's `officer` may still be the one before the change being made.
        officer = db.session.get(User, project.officer_id)
        task.assignee = officer
        record(
            user,
            "task_updated",
            task,
            summary=f"{project.name}：{task.title}：{old.display_name} → {officer.display_name}"
            "（原负责人已看不到该项目）",
            changes={"assignee_id": [old.id, officer.id]},
        )
        tell(
            NotificationKind.TASK_ASSIGNED,
            task,
            user,
            officer,
            f"任务“{task.title}”（{project.name}）随项目转由您负责",
        )
    db.session.flush()


def _close(user: User, task: Task, status: TaskStatus, values: dict[str, Any]) -> None:
    """Close the open `task` as `status`, unless someone closed it meanwhile (409)."""
    if not task.is_open:
        raise AlreadyDecided(f"任务已{task.status.label}")
    decide_once(
        task,
        {"status": TaskStatus.OPEN},
        {"status": status, "updated_at": utcnow(), **values},
        "任务已完成或已取消",
    )
    if task.kind is TaskKind.NEXT_ACTION:
        _clear_next_action(task)


def _clear_next_action(task: Task) -> None:
    """A 下一步 done or dropped: the project has no next action any more (unless a newer one
    replaced it meanwhile, which has its own task). The task's title is the next action cut
    to a title's length."""
    project = task.project
    text = (project.next_action or "").strip()[:TITLE_MAX]
    if (text, project.next_action_due) == (task.title, task.due_on):
        project.next_action, project.next_action_due = "", None


def complete_task(user: User, task: Task, note: str) -> Task:
    """The assignee marks `task` done, with a note of what was done."""
    note = (note or "").strip()
    if user.id != task.assignee_id:
        raise ServiceError("只有任务的负责人可以完成任务")
    if errors := _text_errors({"note": note}, {"note": (NOTE_MAX, "完成情况")}):
        raise ServiceError(errors=errors)
    _close(
        user,
        task,
        TaskStatus.DONE,
        {"completed_at": utcnow(), "completed_by_id": user.id, "completion_note": note},
    )
    record(user, "task_completed", task, summary=f"{task.project.name}：{task.title}")
    tell(
        NotificationKind.TASK_COMPLETED,
        task,
        user,
        task.created_by,
        f"{user.display_name}完成了任务“{task.title}”（{task.project.name}）",
    )
    return task


def cancel_task(user: User, task: Task, reason: str) -> Task:
    """The creator (or an admin) cancels `task`, saying why."""
    reason = (reason or "").strip()
    errors = _text_errors({"reason": reason}, {"reason": (REASON_MAX, "取消原因")})
    if not reason:
        errors["reason"] = "请说明取消原因"
    if errors:
        raise ServiceError(errors=errors)
    _close(
        user,
        task,
        TaskStatus.CANCELLED,
        {"cancelled_at": utcnow(), "cancelled_by_id": user.id, "cancel_reason": reason},
    )
    record(user, "task_cancelled", task, summary=f"{task.project.name}：{task.title}：{reason}")
    tell(
        NotificationKind.TASK_CANCELLED,
        task,
        user,
        task.assignee,
        f"{user.display_name}取消了任务“{task.title}”（{task.project.name}）：{reason}",
    )
    return task


# Reading ---------------------------------------------------------------------------------------


def open_tasks_for(user: User, limit: int = 20) -> list[Task]:
    """The open tasks assigned to `user`, due first, with their projects (one query, read in
    the order of ix_tasks_assignee_id_status_due_on). A task whose project the user cannot
    read any more (handed over, deleted) is left out."""
    return list(
        db.session.scalars(
            _open_assigned(user)
            .order_by(*DUE_ORDER)
            .options(sa.orm.contains_eager(Task.project))
            .limit(limit)
        )
    )


def count_open_tasks_for(user: User) -> int:
    """How many open tasks `user` has: from the index alone, no project read (an open task's
    assignee reads its project, `reassign_unreadable_tasks`). The top bar's figure is the same
    count (`crm.todo.services.top_counts`)."""
    return db.session.scalar(open_task_count(sa.literal(user.id)))


def open_task_count(user_id) -> sa.Select:
    """SELECT count(*) of the open tasks assigned to `user_id` (a value or a bound parameter):
    one range of ix_tasks_assignee_id_status_due_on."""
    return (
        sa.select(sa.func.count())
        .select_from(Task)
        .where(Task.assignee_id == user_id, Task.status == TaskStatus.OPEN)
    )


def _open_assigned(user: User) -> sa.Select:
    return (
        sa.select(Task)
        .join(Project, Project.id == Task.project_id)
        .where(Task.assignee_id == user.id, Task.status == TaskStatus.OPEN, project_scope(user))
    )


def tasks_due_by(user: User, day: date, limit: int) -> list[Task]:
    """The user's open tasks due on `day` or before (the daily digest), earliest first."""
    return list(
        db.session.scalars(
            _open_assigned(user)
            .where(Task.due_on <= day)
            .order_by(*DUE_ORDER)
            .options(sa.orm.contains_eager(Task.project))
            .limit(limit)
        )
    )


def _overdue_since(user: User, day: date) -> sa.Select:
    return (
        sa.select(Task)
        .join(Project, Project.id == Task.project_id)
        .where(Task.status == TaskStatus.OPEN, Task.due_on < day, project_scope(user))
    )


def escalated_tasks(user: User, day: date, limit: int) -> tuple[int, list[Task]]:
    """督办: open tasks of the projects `user` reads still open `day` (a date: overdue since
    before it), longest overdue first, with their project and assignee; and how many there are.
    Read in the order of ix_tasks_status_due_on."""
    query = _overdue_since(user, day)
    total = db.session.scalar(
        sa.select(sa.func.count()).select_from(query.order_by(None).subquery())
    )
    tasks = db.session.scalars(
        query.order_by(*DUE_ORDER)
        .options(sa.orm.contains_eager(Task.project), joinedload(Task.assignee))
        .limit(limit)
    ).all()
    return total, list(tasks)


def send_due_reminders(today: date) -> int:
    """到期提醒: each open task due tomorrow, told to its assignee once (the notification's key
    names the task and the date: a retried or repeated run tells nobody twice)."""
    tomorrow = today + timedelta(days=1)
    tasks = db.session.scalars(
        sa.select(Task)
        .where(Task.status == TaskStatus.OPEN, Task.due_on == tomorrow)
        .order_by(Task.id)
        .options(joinedload(Task.project), joinedload(Task.assignee))
    ).all()
    told = 0
    for task in tasks:
        told += len(
            notify(
                NotificationKind.DUE_REMINDER,
                [task.assignee],
                project=task.project,
                actor=None,
                text=f"{task.project.name}：{task.kind.label}“{task.title}”明天（{tomorrow:%m月%d日}）到期",
                url=app_path("tasks.detail", task_id=task.id),
                key=f"due:{task.id}:{tomorrow.isoformat()}",
            )
        )
    return told


def project_open_tasks(project: Project) -> list[Task]:
    """The open tasks of a project, due first (the project page's section)."""
    return list(
        db.session.scalars(
            sa.select(Task)
            .where(Task.project_id == project.id, Task.status == TaskStatus.OPEN)
            .order_by(*DUE_ORDER)
            .options(joinedload(Task.assignee))
        )
    )


# The task list's filters --------------------------------------------------------------------------

SCOPES = {"mine": "指派给我", "created": "我创建的", "all": "我能看到的全部"}
STATES = {
    "open": "进行中",
    "overdue": "已逾期",
    "done": "已完成",
    "cancelled": "已取消",
    "any": "全部状态",
}
SORTS = {"due": "按期限", "new": "最新创建"}
STATE_STATUS = {"open": TaskStatus.OPEN, "done": TaskStatus.DONE, "cancelled": TaskStatus.CANCELLED}


@dataclass(frozen=True)
class TaskFilter:
    """The list's filters, from the query string (anything unknown falls back to the default)."""

    scope: str = "mine"
    state: str = "open"
    project_id: int | None = None
    q: str = ""
    sort: str = "due"

    @classmethod
    def from_args(cls, args) -> TaskFilter:
        def pick(name: str, allowed: dict[str, str]) -> str:
            value = args.get(name, "")
            return value if value in allowed else getattr(cls, name)

        return cls(
            scope=pick("scope", SCOPES),
            state=pick("state", STATES),
            project_id=parse_int(args.get("project")),
            q=" ".join(args.get("q", "").split())[:100],
            sort=pick("sort", SORTS),
        )


def _like(q: str) -> str:
    return "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def task_list_select(user: User, f: TaskFilter, today: date) -> sa.Select:
    """The tasks of the list, in its order (ending with the id)."""
    where: list[sa.ColumnElement[bool]] = [project_scope(user)]
    if f.scope == "mine":
        where.append(Task.assignee_id == user.id)
    elif f.scope == "created":
        where.append(Task.created_by_id == user.id)
    if f.state == "overdue":
        where += [Task.status == TaskStatus.OPEN, Task.due_on < today]
    elif f.state in STATE_STATUS:
        where.append(Task.status == STATE_STATUS[f.state])
    if f.project_id is not None:
        where.append(Task.project_id == f.project_id)
    if f.q:
        pattern = _like(f.q)
        where.append(
            sa.or_(
                Task.title.ilike(pattern, escape="\\"), Task.description.ilike(pattern, escape="\\")
            )
        )
    order = DUE_ORDER if f.sort == "due" else (Task.created_at.desc(), Task.id.desc())
    return (
        sa.select(Task).join(Project, Project.id == Task.project_id).where(*where).order_by(*order)
    )


def load_list_rows(ids: list[int]) -> list[Task]:
    return list(
        db.session.scalars(
            sa.select(Task)
            .where(Task.id.in_(ids))
            .options(
                joinedload(Task.project),
                joinedload(Task.assignee),
                joinedload(Task.created_by),
            )
        )
    )


def task_history(task: Task) -> list[dict]:
    """The audit entries of a task, oldest first: who created, changed, completed or cancelled
    it, and when."""
    entries = db.session.scalars(
        sa.select(AuditEntry)
        .where(AuditEntry.object_type == Task.__tablename__, AuditEntry.object_id == task.id)
        .options(joinedload(AuditEntry.user))
        .order_by(AuditEntry.created_at, AuditEntry.id)
    ).all()
    return [
        {
            "at": entry.created_at,
            "action": view.action,
            "summary": entry.summary,
            "changes": view.changes_text,
            "user": entry.user.display_name if entry.user else "系统",
        }
        for entry, view in zip(entries, describe_entries(entries), strict=True)
    ]
