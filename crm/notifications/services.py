"""Notifications (通知): who is told what, and the reading of them.

`notify` is the one way to tell users something: services call it in their own transaction, so
a refused change notifies nobody. It never tells a user something about a project that user may
not read (`crm.access.can_read_project`), nor the user who did it.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from flask import current_app, has_request_context, url_for
from sqlalchemy.orm import joinedload

from crm.access import can_read_project
from crm.auth.models import Role, User
from crm.core import utcnow
from crm.extensions import db
from crm.jobs.mail import mail_notifications
from crm.notifications.models import Notification, NotificationKind
from crm.projects.models import Project
from crm.speedups import kept

TEXT_MAX = 500


def notify(
    kind: NotificationKind,
    recipients: Iterable[User | None],
    *,
    project: Project | None,
    actor: User | None,
    text: str,
    url: str,
    key: str | None = None,
) -> list[Notification]:
    """One unread notification per recipient who may know of it; flushes, never commits.

    Skipped: None, repeats, inactive users, the actor, users who cannot read `project`, and,
    with `key`, users who already have a notification with that key (a retried reminder)."""
    if not url.startswith("/") or url.startswith("//"):
        raise ValueError(f"a notification links to a page of the app, not {url!r}")
    users: dict[int, User] = {}
    for user in recipients:
        if user is None or user.id in users or not user.is_active:
            continue
        if actor is not None and user.id == actor.id:
            continue
        if project is not None and not can_read_project(user, project):
            continue
        users[user.id] = user
    if key is not None and users:
        users = {uid: u for uid, u in users.items() if uid not in _users_with_key(key, list(users))}
    made = [
        Notification(
            user=user,
            kind=kind,
            project_id=project.id if project is not None else None,
            actor_id=actor.id if actor is not None else None,
            text=text[:TEXT_MAX],
            url=url[:500],
            key=key,
        )
        for user in users.values()
    ]
    db.session.add_all(made)
    db.session.flush()
    mail_notifications(made)  # e-mail copies, queued after the commit when mail is on
    return made


def _users_with_key(key: str, user_ids: list[int]) -> set[int]:
    return set(
        db.session.scalars(
            sa.select(Notification.user_id).where(
                Notification.key == key, Notification.user_id.in_(user_ids)
            )
        )
    )


def app_path(endpoint: str, **values) -> str:
    """The path of a page of the app, for a notification's link: `url_for` within a request,
    the URL map alone elsewhere (the demo loader, a job)."""
    if has_request_context():
        return url_for(endpoint, **values)
    return current_app.url_map.bind("localhost").build(endpoint, values)


# Who is told ----------------------------------------------------------------------------------


def _active(*conditions) -> list[User]:
    return list(
        db.session.scalars(
            sa.select(User).where(User.is_active.is_(True), *conditions).order_by(User.id)
        )
    )


def leaders() -> list[User]:
    return _active(User.role == Role.LEADER)


def taskforce_of(project: Project) -> list[User]:
    """The task force of the project's cluster."""
    return _active(User.role == Role.TASKFORCE, User.cluster_id == project.cluster_id)


def officers_of_carrier(carrier_id: int) -> list[User]:
    return _active(User.role == Role.OFFICER, User.carrier_id == carrier_id)


# Reading --------------------------------------------------------------------------------------


def unread_count(user: User) -> int:
    """The top bar's figure, on every page: one query on the (user_id, read_at, id) index, its
    statement kept (`crm.speedups.kept`) so the list page pays for the query alone."""
    statement = kept(
        "unread_notifications",
        lambda: (
            sa.select(sa.func.count())
            .select_from(Notification)
            .where(Notification.user_id == sa.bindparam("user_id"), Notification.read_at.is_(None))
        ),
    )
    return db.session.connection().execute(statement, {"user_id": user.id}).scalar_one()


def notifications_query(user: User, unread_only: bool = False) -> sa.Select:
    """The user's notifications, newest first (the page shows those of a project deleted since
    without their link)."""
    query = (
        sa.select(Notification)
        .where(Notification.user_id == user.id)
        .options(joinedload(Notification.actor), joinedload(Notification.project))
        .order_by(Notification.id.desc())
    )
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    return query


def mark_read(user: User, notification_id: int) -> Notification | None:
    """Mark one of the user's own notifications read (again is harmless); None if not his."""
    notification = db.session.scalar(
        sa.select(Notification).where(
            Notification.id == notification_id, Notification.user_id == user.id
        )
    )
    if notification is not None and notification.read_at is None:
        notification.read_at = utcnow()
        db.session.flush()
    return notification


def mark_all_read(user: User) -> int:
    """Every unread notification of the user read; the number marked."""
    result = db.session.execute(
        sa.update(Notification)
        .where(Notification.user_id == user.id, Notification.read_at.is_(None))
        .values(read_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount
