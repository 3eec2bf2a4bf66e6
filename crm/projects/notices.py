"""Who is told of a hand-over (流转) and of a cross-载体 conflict, through `crm.notifications`.

- A hand-over offered: the receiving 载体's officers and the project's task force.
- Accepted or declined: whoever offered it and the sending officer (and, on acceptance, the new
  责任人 when someone else chose it). Once accepted, the sending side may no longer read the
  project: it is told without a link to it (the text names the project and where it went, as
  its 载体's list of recent hand-overs does), pointing to its home page.
- Conflicts flagged: the task force of each project's cluster and the leaders. One call of
  `conflicts_flagged` (one registration, one ledger import) tells each of them once: the
  conflict itself when they read one, otherwise how many were flagged, pointing to the
  conflicts page — an import flagging thousands sends no thousands of rows.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from crm.access import can_read_project
from crm.auth.models import Role, User
from crm.extensions import db
from crm.notifications.models import NotificationKind
from crm.notifications.services import (
    app_path,
    leaders,
    notify,
    officers_of_carrier,
    taskforce_of,
)
from crm.projects.models import Handover, HandoverState, Project


def handover_offered(
    user: User, project: Project, handover: Handover, from_name: str, to_name: str
) -> None:
    notify(
        NotificationKind.HANDOVER_OFFERED,
        [*officers_of_carrier(handover.to_carrier_id), *taskforce_of(project)],
        project=project,
        actor=user,
        text=f"{project.name}：{from_name}拟流转至{to_name}，待接收或退回",
        url=app_path("projects.detail", project_id=project.id) + "#handover",
    )


def handover_decided(
    user: User, project: Project, handover: Handover, from_name: str, to_name: str
) -> None:
    """Accepted or declined: told to the sending side (and to the new 责任人)."""
    users = {u.id: u for u in _users(handover.handed_by_id, handover.from_officer_id)}
    if handover.state is HandoverState.ACCEPTED:
        kind, what = NotificationKind.HANDOVER_ACCEPTED, f"{to_name}已接收，项目移交{to_name}"
        users |= {u.id: u for u in _users(handover.officer_id)}
    else:
        kind = NotificationKind.HANDOVER_DECLINED
        what = f"{to_name}退回了流转，项目仍在{from_name}：{handover.decline_reason}"
    readers = [u for u in users.values() if can_read_project(u, project)]
    text = f"{project.name}：{what}"
    notify(
        kind,
        readers,
        project=project,
        actor=user,
        text=text,
        url=app_path("projects.detail", project_id=project.id),
    )
    notify(
        kind,
        [u for u in users.values() if u not in readers],
        project=None,
        actor=user,
        text=text,
        url=app_path("main.home"),
    )


def _users(*ids: int | None) -> list[User]:
    return [user for i in ids if i and (user := db.session.get(User, i)) is not None]


@dataclass(frozen=True)
class Flagged:
    """One conflict just flagged: its id and the two projects (id, name, cluster)."""

    id: int
    projects: tuple[tuple[int, str, int], tuple[int, str, int]]


def conflicts_flagged(user: User | None, flagged: list[Flagged]) -> None:
    """Each leader and task force concerned told once of the conflicts of this call."""
    if not flagged:
        return
    everyone = leaders()
    mine: dict[int, list[Flagged]] = {u.id: list(flagged) for u in everyone}
    recipients = {u.id: u for u in everyone}
    clusters: dict[int, list[Flagged]] = defaultdict(list)
    a_project_of: dict[int, int] = {}
    for conflict in flagged:
        for project_id, _name, cluster_id in conflict.projects:
            if conflict not in clusters[cluster_id]:
                clusters[cluster_id].append(conflict)
            a_project_of.setdefault(cluster_id, project_id)
    for cluster_id, conflicts in clusters.items():
        for member in taskforce_of(db.session.get(Project, a_project_of[cluster_id])):
            recipients[member.id] = member
            mine.setdefault(member.id, []).extend(conflicts)
    page = app_path("conflicts.conflicts")
    for user_id, recipient in recipients.items():
        conflicts = list({c.id: c for c in mine[user_id]}.values())
        if len(conflicts) == 1:
            (conflict,) = conflicts
            project = _readable_side(recipient, conflict)
            (_a, name_a, _), (_b, name_b, _) = conflict.projects
            notify(
                NotificationKind.CONFLICT_FLAGGED,
                [recipient],
                project=project,
                actor=user,
                text=f"跨载体冲突：“{name_a}”与“{name_b}”为同一企业，待协调处理",
                url=f"{page}#conflict-{conflict.id}",
            )
        else:
            names = "、".join(f"“{c.projects[0][1]}”" for c in conflicts[:3])
            notify(
                NotificationKind.CONFLICT_FLAGGED,
                [recipient],
                project=None,
                actor=user,
                text=f"新发现 {len(conflicts)} 个跨载体冲突（{names}等），待协调处理",
                url=page,
            )


def _readable_side(user: User, conflict: Flagged) -> Project | None:
    """The project of the conflict the notification is about: for a task force, the one of
    its cluster (the check in `notify` then passes); for a leader, the first."""
    ids = [p[0] for p in conflict.projects]
    if user.role is Role.TASKFORCE:
        ids = [p[0] for p in conflict.projects if p[2] == user.cluster_id] or ids
    return db.session.get(Project, ids[0])
