"""A project's 下一步 becomes a task of its officer.

While a project is 正常 and has a next action (`Project.next_action`, set by its latest
follow-up), its officer has exactly one open 下一步 task (`TaskKind.NEXT_ACTION`) with that
text and due date: created when the next action appears, updated when it or the officer
changes, cancelled when the next action is cleared or the project leaves 正常. Completing
the task clears the project's next action (crm/tasks/services.py).

`sync_next_action_tasks` is the `next_action_changed` hook (crm/hooks.py): the projects'
services call it after writing, with the ids of the projects concerned, so crm/projects never
imports this package. It reads and writes in a few statements whatever the number of
projects (the ledger import reassigns thousands at once), and a partial unique index keeps a
second open 下一步 of a project out even when two requests race.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from datetime import date

import sqlalchemy as sa

from crm.audit.services import record_bulk
from crm.auth.models import User
from crm.core import utcnow
from crm.extensions import db
from crm.notifications.models import NotificationKind
from crm.projects.models import Project
from crm.projects.stages import Status
from crm.tasks.models import TITLE_MAX, Task, TaskKind, TaskStatus
from crm.tasks.services import tell

CHUNK = 500  # projects per round (bound parameters stay well under every database's limit)
CANCELLED_REASON = "项目的下一步已清除"
LEFT_ACTIVE_REASON = "项目已不在正常状态"


def _chunks(ids: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


def wanted_task(project) -> tuple[str, date | None, int] | None:
    """(title, due date, assignee) of the open 下一步 task `project` (a row or a Project)
    should have, or None."""
    text = (project.next_action or "").strip()
    if project.is_deleted or project.status is not Status.ACTIVE or not text:
        return None
    return text[:TITLE_MAX], project.next_action_due, project.officer_id


def sync_next_action_tasks(user: User | None, project_ids: Collection[int], *, bulk=False):
    """Bring the open 下一步 tasks of `project_ids` in line with their projects. Without
    `bulk`, each new or reassigned assignee is notified (TASK_ASSIGNED; never the user who
    made the change); a bulk change (the ledger import) notifies nobody."""
    ids = sorted(set(project_ids))
    if not ids:
        return
    db.session.flush()
    for chunk in _chunks(ids):
        _sync(user, chunk, bulk)


def _sync(user: User | None, ids: list[int], bulk: bool) -> None:
    projects = db.session.execute(
        sa.select(
            Project.id,
            Project.name,
            Project.next_action,
            Project.next_action_due,
            Project.officer_id,
            Project.status,
            Project.is_deleted,
        ).where(Project.id.in_(ids))
    ).all()
    current = {
        row.project_id: row
        for row in db.session.execute(
            sa.select(Task.id, Task.project_id, Task.title, Task.due_on, Task.assignee_id).where(
                Task.project_id.in_(ids),
                Task.kind == TaskKind.NEXT_ACTION,
                Task.status == TaskStatus.OPEN,
            )
        )
    }
    at = utcnow()
    create, update, cancel = [], [], []
    for p in projects:
        wanted, task = wanted_task(p), current.get(p.id)
        if wanted is None:
            if task is not None:
                reason = CANCELLED_REASON if p.status is Status.ACTIVE else LEFT_ACTIVE_REASON
                cancel.append((task, p, reason))
        elif task is None:
            create.append((p, wanted))
        elif (task.title, task.due_on, task.assignee_id) != wanted:
            update.append((task, p, wanted))
    created = _create(user, create, at)
    _update(user, update, at)
    _cancel(user, cancel, at)
    if not bulk:
        changed = [tid for tid, _p in created] + [
            t.id for t, _p, wanted in update if wanted[2] != t.assignee_id
        ]
        _notify_assigned(user, changed)


def _create(user: User | None, rows: list, at) -> list[tuple[int, object]]:
    if not rows:
        return []
    params = [
        {
            "project_id": p.id,
            "kind": TaskKind.NEXT_ACTION,
            "title": title,
            "description": "",
            "due_on": due,
            "assignee_id": officer,
            "status": TaskStatus.OPEN,
            "completion_note": "",
            "cancel_reason": "",
            "created_by_id": getattr(user, "id", None),
            "created_at": at,
            "updated_at": at,
        }
        for p, (title, due, officer) in rows
    ]
    # RETURNING in any order: matched back by project (one open 下一步 each).
    returned = dict(
        db.session.execute(sa.insert(Task).returning(Task.project_id, Task.id), params).all()
    )
    created = [(returned[p.id], p) for p, _wanted in rows]
    record_bulk(
        user,
        "task_created",
        [(tid, f"{p.name}：下一步 {p.next_action}", {}) for tid, p in created],
        object_type="tasks",
        at=at,
    )
    return created


def _update(user: User | None, rows: list, at) -> None:
    if not rows:
        return
    table = Task.__table__
    db.session.execute(
        sa.update(table)
        .where(table.c.id == sa.bindparam("t_id"), table.c.status == TaskStatus.OPEN)
        .values(
            title=sa.bindparam("t_title"),
            due_on=sa.bindparam("t_due"),
            assignee_id=sa.bindparam("t_assignee"),
            updated_at=at,
        ),
        [
            {"t_id": t.id, "t_title": title, "t_due": due, "t_assignee": officer}
            for t, _p, (title, due, officer) in rows
        ],
    )
    changes = []
    for t, p, wanted in rows:
        diff = {
            name: [_plain(old), _plain(new)]
            for name, old, new in zip(
                ("title", "due_on", "assignee_id"),
                (t.title, t.due_on, t.assignee_id),
                wanted,
                strict=True,
            )
            if old != new
        }
        changes.append((t.id, f"{p.name}：下一步 {wanted[0]}", diff))
    record_bulk(user, "task_updated", changes, object_type="tasks", at=at)
    _expire([t.id for t, _p, _w in rows])


def _cancel(user: User | None, rows: list, at) -> None:
    if not rows:
        return
    table = Task.__table__
    db.session.execute(
        sa.update(table)
        .where(table.c.id == sa.bindparam("t_id"), table.c.status == TaskStatus.OPEN)
        .values(
            status=TaskStatus.CANCELLED,
            cancel_reason=sa.bindparam("t_reason"),
            cancelled_at=at,
            cancelled_by_id=getattr(user, "id", None),
            updated_at=at,
        ),
        [{"t_id": t.id, "t_reason": reason} for t, _p, reason in rows],
    )
    record_bulk(
        user,
        "task_cancelled",
        [(t.id, f"{p.name}：下一步 {t.title}：{reason}", {}) for t, p, reason in rows],
        object_type="tasks",
        at=at,
    )
    _expire([t.id for t, _p, _r in rows])


def _plain(value):
    return value.isoformat() if isinstance(value, date) else value


def _expire(task_ids: list[int]) -> None:
    """Tasks of the session written by the statements above are read again when next used."""
    ids = set(task_ids)
    for obj in list(db.session.identity_map.values()):
        if isinstance(obj, Task) and obj.id in ids:
            db.session.expire(obj)


def _notify_assigned(user: User | None, task_ids: list[int]) -> None:
    if not task_ids:
        return
    tasks = db.session.scalars(
        sa.select(Task)
        .where(Task.id.in_(task_ids))
        .options(sa.orm.joinedload(Task.project), sa.orm.joinedload(Task.assignee))
    )
    for task in tasks:
        due = f"，期限 {task.due_on.isoformat()}" if task.due_on else ""
        tell(
            NotificationKind.TASK_ASSIGNED,
            task,
            user,
            task.assignee,
            f"项目“{task.project.name}”的下一步交由您负责：{task.title}{due}",
        )
