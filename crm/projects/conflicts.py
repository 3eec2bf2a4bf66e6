"""No 内卷 between 载体 (measures 13 and 21): two 载体 courting the same company are flagged as a
conflict (跨载体冲突) for the task force and the leaders to settle, and a project can be handed
over (流转) to another 载体 with its whole history.

A company is "courted" by a 载体 while one of its projects there is 正常 or 暂缓. The same
company means the same record (the 统一社会信用代码 is unique), or a company whose name is the
same once normalised (`crm.companies.names`: spaces, full-width characters, brackets, legal
form and administrative-division prefixes do not count; the divisions must agree), unless
both carry different credit codes (two legal persons).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from crm.access import (
    Action,
    can,
    can_resolve_conflict,
    conflict_scope,
)
from crm.audit.services import apply_changes, record, record_bulk
from crm.auth.models import Role, User
from crm.catalog.models import Carrier
from crm.companies.models import Company
from crm.companies.names import same_company_name, split_name
from crm.core import ServiceError, utcnow
from crm.decisions import AlreadyDecided, change_once, decide_once
from crm.extensions import db
from crm.hooks import next_action_changed
from crm.projects import notices
from crm.projects.models import (
    ConflictBasis,
    Handover,
    HandoverState,
    Project,
    ProjectConflict,
)
from crm.projects.officers import officer_in_charge_error
from crm.projects.stages import Status

COURTING_STATUSES = (Status.ACTIVE, Status.ON_HOLD)


@dataclass
class Courting:
    """A project of another 载体 for the same company, and why it counts as the same."""

    project: Project
    basis: ConflictBasis


def courting_projects(
    company: Company, carrier_id: int | None, exclude: Iterable[int] = ()
) -> list[Courting]:
    """Projects of other 载体 courting `company` (by the same record or the same normalised
    name): an indexed lookup on the stored key, then the regions compared."""
    return CourtingLookup([company]).of(company, carrier_id, exclude)


_CHUNK = 2000  # ids or keys per IN (…) list


class CourtingLookup:
    """Who courts a set of companies, read in a few indexed queries for all of them (the
    ledger import asks for a whole file at once), then asked company by company (`of`).

    A company may be new (no id yet): it is looked up by its name alone."""

    def __init__(self, companies: Iterable[Company]):
        companies = list(companies)
        ids = sorted({c.id for c in companies if c.id})
        keys = sorted({split_name(c.name).key for c in companies} - {""})
        self._by_company: dict[int, list[tuple[Project, Company]]] = defaultdict(list)
        self._by_key: dict[str, list[tuple[Project, Company]]] = defaultdict(list)
        seen: set[int] = set()
        conditions = [
            Project.company_id.in_(ids[i : i + _CHUNK]) for i in range(0, len(ids), _CHUNK)
        ]
        conditions += [
            Company.name_key.in_(keys[i : i + _CHUNK]) for i in range(0, len(keys), _CHUNK)
        ]
        for condition in conditions:
            for project, other in db.session.execute(
                sa.select(Project, Company)
                .join(Company, Company.id == Project.company_id)
                .where(
                    condition,
                    Project.is_deleted.is_(False),
                    Project.status.in_(COURTING_STATUSES),
                )
                .options(joinedload(Project.carrier), joinedload(Project.officer))
            ).tuples():
                if project.id in seen:
                    continue
                seen.add(project.id)
                self._by_company[other.id].append((project, other))
                if other.name_key:
                    self._by_key[other.name_key].append((project, other))

    def of(
        self, company: Company, carrier_id: int | None, exclude: Iterable[int] = ()
    ) -> list[Courting]:
        """Projects of other 载体 than `carrier_id` courting `company`, oldest first."""
        parts = split_name(company.name)
        excluded = set(exclude)
        rows = {
            project.id: (project, other)
            for project, other in [
                *(self._by_company.get(company.id, []) if company.id else []),
                *(self._by_key.get(parts.key, []) if parts.key else []),
            ]
            if project.carrier_id != (carrier_id or 0) and project.id not in excluded
        }
        found = []
        for project_id in sorted(rows):
            project, other = rows[project_id]
            if company.id and other.id == company.id:
                basis = ConflictBasis.CREDIT_CODE if company.credit_code else ConflictBasis.NAME
            elif company.credit_code and other.credit_code:
                continue  # two registrations, two legal persons, however alike their names
            elif same_company_name(parts, split_name(other.name)):
                basis = ConflictBasis.NAME
            else:
                continue  # the same key in another place: 亳州市人民医院 is not 蚌埠市人民医院
            found.append(Courting(project, basis))
        return found


@dataclass
class CourtedProject:
    """A project whose company other 载体 court: what its conflicts and their audit entries
    say of it (a project just inserted in bulk has no object loaded)."""

    id: int
    name: str
    carrier_name: str
    courting: list[Courting]


def record_conflicts(user: User | None, project: Project) -> list[ProjectConflict]:
    """Flag every project of another 载体 courting the company of `project` (once per pair)."""
    company = project.company or db.session.get(Company, project.company_id)
    found = courting_projects(company, project.carrier_id, exclude=[project.id])
    if not found:
        return []
    carrier = project.carrier or db.session.get(Carrier, project.carrier_id)
    ids = record_conflicts_bulk(
        user, [CourtedProject(project.id, project.name, carrier.name if carrier else "", found)]
    )
    if not ids:
        return []
    return list(
        db.session.scalars(
            sa.select(ProjectConflict)
            .where(ProjectConflict.id.in_(ids))
            .order_by(ProjectConflict.id)
        )
    )


def record_conflicts_bulk(
    user: User | None, courted: list[CourtedProject], at: datetime | None = None
) -> list[int]:
    """Flag the conflicts of many projects in one statement, each pair once (a pair already
    flagged, or met twice here, is skipped), each audited as `conflict_detected`; the ids."""
    courted = [c for c in courted if c.courting]
    if not courted:
        return []
    at = at or utcnow()
    known = _known_pairs([c.id for c in courted])
    added: list[tuple[CourtedProject, Courting]] = []
    for project in courted:
        for courting in project.courting:
            pair = frozenset((project.id, courting.project.id))
            if pair not in known:
                known.add(pair)
                added.append((project, courting))
    if not added:
        return []
    # RETURNING in any order (SQLite cannot batch an ordered one): matched back by the pair.
    returned = db.session.execute(
        sa.insert(ProjectConflict).returning(
            ProjectConflict.id, ProjectConflict.project_id, ProjectConflict.other_project_id
        ),
        [
            {
                "project_id": project.id,
                "other_project_id": courting.project.id,
                "basis": courting.basis,
                "detected_at": at,
            }
            for project, courting in added
        ],
    ).all()
    ids = {(pid, other): cid for cid, pid, other in returned}
    entries = [
        (
            ids[project.id, courting.project.id],
            f"{project.name}（{project.carrier_name}）与"
            f"{courting.project.carrier.name}的“{courting.project.name}”："
            f"{courting.basis.label}",
            {},
        )
        for project, courting in added
    ]
    record_bulk(user, "conflict_detected", entries, object_type="project_conflicts", at=at)
    clusters = _clusters_of([project.id for project, _courting in added])
    notices.conflicts_flagged(
        user,
        [
            notices.Flagged(
                ids[project.id, courting.project.id],
                (
                    (project.id, project.name, clusters[project.id]),
                    (courting.project.id, courting.project.name, courting.project.cluster_id),
                ),
            )
            for project, courting in added
        ],
    )
    return [entry[0] for entry in entries]


def _clusters_of(project_ids: list[int]) -> dict[int, int]:
    """The cluster of each project (projects just inserted in bulk have no object loaded)."""
    ids = sorted(set(project_ids))
    clusters: dict[int, int] = {}
    for i in range(0, len(ids), _CHUNK):
        query = sa.select(Project.id, Project.cluster_id).where(Project.id.in_(ids[i : i + _CHUNK]))
        clusters.update(db.session.execute(query).tuples().all())
    return clusters


def _known_pairs(project_ids: list[int]) -> set[frozenset[int]]:
    pairs: set[frozenset[int]] = set()
    for i in range(0, len(project_ids), _CHUNK):
        chunk = project_ids[i : i + _CHUNK]
        rows = db.session.execute(
            sa.select(ProjectConflict.project_id, ProjectConflict.other_project_id).where(
                sa.or_(
                    ProjectConflict.project_id.in_(chunk),
                    ProjectConflict.other_project_id.in_(chunk),
                )
            )
        ).all()
        pairs.update(frozenset(row) for row in rows)
    return pairs


def conflicts_query(user: User, open_only: bool = True) -> sa.Select:
    """Conflicts touching a project `user` may read, oldest first."""
    query = (
        sa.select(ProjectConflict)
        .where(conflict_scope(user))
        .options(
            joinedload(ProjectConflict.project).joinedload(Project.carrier),
            joinedload(ProjectConflict.project).joinedload(Project.company),
            joinedload(ProjectConflict.other_project).joinedload(Project.carrier),
            joinedload(ProjectConflict.other_project).joinedload(Project.company),
            joinedload(ProjectConflict.resolved_by),
        )
    )
    if open_only:
        return query.where(ProjectConflict.resolved_at.is_(None)).order_by(
            ProjectConflict.detected_at, ProjectConflict.id
        )
    return query.where(ProjectConflict.resolved_at.is_not(None)).order_by(
        ProjectConflict.resolved_at.desc(), ProjectConflict.id.desc()
    )


def count_open_conflicts(user: User) -> int:
    return (
        db.session.scalar(
            sa.select(sa.func.count(ProjectConflict.id)).where(
                ProjectConflict.resolved_at.is_(None), conflict_scope(user)
            )
        )
        or 0
    )


def project_conflicts(project: Project) -> list[ProjectConflict]:
    """The open conflicts of one project (either side), for its page."""
    return list(
        db.session.scalars(
            sa.select(ProjectConflict)
            .where(
                sa.or_(
                    ProjectConflict.project_id == project.id,
                    ProjectConflict.other_project_id == project.id,
                ),
                ProjectConflict.resolved_at.is_(None),
            )
            .options(
                joinedload(ProjectConflict.project).joinedload(Project.carrier),
                joinedload(ProjectConflict.other_project).joinedload(Project.carrier),
            )
            .order_by(ProjectConflict.id)
        )
    )


def _settle(user: User, conflict: ProjectConflict, note: str) -> bool:
    """Mark `conflict` settled with `note`, unless it was settled meanwhile (`change_once`)."""
    return change_once(
        conflict,
        {"resolved_at": None},
        {"resolved_at": utcnow(), "resolved_by_id": user.id, "resolution_note": note},
    )


def resolve_conflict(user: User, conflict: ProjectConflict, note: str) -> ProjectConflict:
    """Settle a conflict with the outcome of the coordination: one settlement wins, a second
    one (even at the same moment) is refused with AlreadyDecided and its note is not kept."""
    note = note.strip()
    if not can_resolve_conflict(user, conflict):
        raise ServiceError("只有产业专班和领导可以处理跨载体冲突")
    if conflict.resolved_at is not None:
        raise AlreadyDecided("该冲突已处理")
    if not note:
        raise ServiceError(errors={"note": "请写明处理结果（如：经协调由某载体继续跟进）"})
    if not _settle(user, conflict, note):
        raise AlreadyDecided("该冲突已处理")
    record(
        user,
        "conflict_resolved",
        conflict,
        summary=f"{conflict.project.name} / {conflict.other_project.name}：{note}",
    )
    return conflict


# 流转 (hand-over) ------------------------------------------------------------------------------
#
# A hand-over is offered by the task force, a leader or an admin (`handover_project`) and waits
# for the receiving 载体 (待接收): the project stays with the sending 载体 meanwhile — its
# carrier, its officer and so every statistic. The receiving 载体's officers, the project's
# task force or a leader/admin accept it (`accept_handover`, choosing the new 责任人) or decline
# it with a reason (`decline_handover`); the sender may withdraw it (`withdraw_handover`).
# Each decision is taken once (`decide_once` on the state): of simultaneous ones one wins.


def handover_targets(project: Project) -> tuple[list[Carrier], list[User]]:
    """The 载体 a project may be handed over to, and their active officers."""
    carriers = db.session.scalars(
        sa.select(Carrier)
        .where(Carrier.is_active.is_(True), Carrier.id != project.carrier_id)
        .order_by(Carrier.sort_order, Carrier.id)
    ).all()
    return list(carriers), _active_officers([c.id for c in carriers])


def receiving_officers(handover: Handover) -> list[User]:
    """Whom the receiving 载体 may put in charge: its active officers."""
    return _active_officers([handover.to_carrier_id])


def _active_officers(carrier_ids: list[int]) -> list[User]:
    return list(
        db.session.scalars(
            sa.select(User)
            .where(
                User.role == Role.OFFICER,
                User.is_active.is_(True),
                User.carrier_id.in_(carrier_ids),
            )
            .options(joinedload(User.carrier))
            .order_by(User.carrier_id, User.display_name)
        )
    )


def pending_handover(project: Project) -> Handover | None:
    """The hand-over of `project` waiting for the receiving 载体, if any (at most one)."""
    return db.session.scalar(
        sa.select(Handover)
        .where(Handover.project_id == project.id, Handover.state == HandoverState.PENDING)
        .options(
            joinedload(Handover.from_carrier),
            joinedload(Handover.to_carrier),
            joinedload(Handover.handed_by),
            joinedload(Handover.proposed_officer),
        )
    )


def handover_project(
    user: User,
    project: Project,
    to_carrier: Carrier | None,
    officer: User | None,
    reason: str,
    benefit_sharing: str = "",
    *,
    loaded_version: int | None,
) -> Handover:
    """Offer `project` to `to_carrier`, proposing `officer` as its 责任人 there: the hand-over
    waits for that 载体 to accept. History, follow-ups, evaluations and files go with the
    project once accepted (they hang on its id). `loaded_version` is the project's version the
    user saw: a hand-over or an edit made since wins (AlreadyDecided), whichever 载体 this one
    names; without it nothing is offered."""
    reason, benefit_sharing = reason.strip(), benefit_sharing.strip()
    if not can(user, Action.HANDOVER, project):
        raise ServiceError("只有产业专班和领导可以流转项目")
    if loaded_version != project.version:
        raise AlreadyDecided("项目已被流转或修改" if loaded_version else "未能确认页面上的项目版本")
    if pending_handover(project) is not None:
        raise AlreadyDecided("项目已在流转中，待接收载体处理")
    errors = {}
    if project.status not in COURTING_STATUSES:
        raise ServiceError(f"项目已{project.status.label}，不能流转")
    if to_carrier is None or not to_carrier.is_active:
        errors["to_carrier_id"] = "请选择接收的载体"
    elif to_carrier.id == project.carrier_id:
        # The form offers only other 载体: a page from before a hand-over made meanwhile.
        raise AlreadyDecided(f"项目已在{to_carrier.name}")
    if officer is None:
        errors["officer_id"] = "请选择接收载体的招商专员作为责任人"
    elif to_carrier is not None and (error := officer_in_charge_error(officer, to_carrier)):
        errors["officer_id"] = error
    if not reason:
        errors["reason"] = "请说明流转原因"
    if errors:
        raise ServiceError(errors=errors)
    # The project's version row: one hand-over (or edit, or move) of this version wins.
    decide_once(
        project,
        {"version": project.version},
        {"version": project.version + 1},
        "项目已被流转或修改",
    )
    handover = Handover(
        project_id=project.id,
        from_carrier_id=project.carrier_id,
        to_carrier_id=to_carrier.id,
        reason=reason,
        benefit_sharing=benefit_sharing,
        handed_by_id=user.id,
        from_officer_id=project.officer_id,
        proposed_officer_id=officer.id,
        state=HandoverState.PENDING,
    )
    db.session.add(handover)
    db.session.flush()
    from_name = db.session.get(Carrier, project.carrier_id).name
    record(
        user,
        "handover_offered",
        handover,
        summary=f"{project.name}：{from_name} → {to_carrier.name}，待接收",
        changes={
            "project_id": project.id,
            "to_carrier_id": to_carrier.id,
            "proposed_officer_id": officer.id,
            "reason": reason,
            "benefit_sharing": benefit_sharing,
        },
    )
    notices.handover_offered(user, project, handover, from_name, to_carrier.name)
    return handover


def _open_for(user: User, handover: Handover, action: Action) -> Project:
    """The project of a hand-over still waiting, that `user` may decide on with `action`."""
    project = db.session.get(Project, handover.project_id)
    if not can(user, action, project):
        raise ServiceError("无权处理该项目流转")
    if not handover.state.is_pending:
        raise AlreadyDecided(f"该流转已{handover.state.label}")
    return project


def _decide(user: User, handover: Handover, state: HandoverState, **values) -> None:
    """Take the decision `state`, once: of simultaneous decisions one wins (AlreadyDecided)."""
    decide_once(
        handover,
        {"state": HandoverState.PENDING},
        {"state": state, "decided_by_id": user.id, "decided_at": utcnow(), **values},
        "该流转已被处理",
    )


def accept_handover(user: User, handover: Handover, officer: User | None) -> Handover:
    """The receiving 载体 takes the project over with `officer` in charge: its 载体 and 责任人
    change (and with them where its statistics count from now on; moves made before stay
    credited to the officer in charge then), and open conflicts with projects of that 载体
    are settled."""
    project = _open_for(user, handover, Action.RECEIVE_HANDOVER)
    to_carrier = db.session.get(Carrier, handover.to_carrier_id)
    if project.status not in COURTING_STATUSES:
        raise ServiceError(f"项目已{project.status.label}，不能接收；可由流转发起方撤回")
    if error := officer_in_charge_error(officer, to_carrier):
        raise ServiceError(errors={"officer_id": error})
    _decide(user, handover, HandoverState.ACCEPTED, officer_id=officer.id)
    from_name = db.session.get(Carrier, handover.from_carrier_id).name
    project.version += 1  # a page of the project from before the hand-over is stale now
    changes = apply_changes(project, {"carrier_id": to_carrier.id, "officer_id": officer.id})
    db.session.flush()
    record(
        user,
        "project_handed_over",
        project,
        summary=f"{project.name}：{from_name} → {to_carrier.name}",
        changes=changes | {"reason": handover.reason, "benefit_sharing": handover.benefit_sharing},
    )
    _settle_conflicts_within(user, project, to_carrier)
    next_action_changed(user, [project.id])  # its 下一步 task goes to the new officer
    notices.handover_decided(user, project, handover, from_name, to_carrier.name)
    return handover


def decline_handover(user: User, handover: Handover, reason: str) -> Handover:
    """The receiving 载体 declines, with its reason: the project stays where it is."""
    project = _open_for(user, handover, Action.RECEIVE_HANDOVER)
    reason = reason.strip()
    if not reason:
        raise ServiceError(errors={"reason": "请说明退回原因"})
    if len(reason) > DECLINE_REASON_MAX:
        raise ServiceError(errors={"reason": f"退回原因最多 {DECLINE_REASON_MAX} 个字符"})
    _decide(user, handover, HandoverState.DECLINED, decline_reason=reason)
    from_name = db.session.get(Carrier, handover.from_carrier_id).name
    to_name = db.session.get(Carrier, handover.to_carrier_id).name
    record(
        user,
        "handover_declined",
        handover,
        summary=f"{project.name}：{to_name}退回",
        changes={"project_id": project.id, "decline_reason": reason},
    )
    notices.handover_decided(user, project, handover, from_name, to_name)
    return handover


def withdraw_handover(user: User, handover: Handover) -> Handover:
    """The sender takes its offer back before the receiving 载体 decided."""
    project = _open_for(user, handover, Action.HANDOVER)
    _decide(user, handover, HandoverState.WITHDRAWN)
    to_name = db.session.get(Carrier, handover.to_carrier_id).name
    record(
        user,
        "handover_withdrawn",
        handover,
        summary=f"{project.name}：撤回流转至{to_name}",
        changes={"project_id": project.id},
    )
    return handover


DECLINE_REASON_MAX = 500  # Handover.decline_reason


def _settle_conflicts_within(user: User, project: Project, carrier: Carrier) -> None:
    """Open conflicts with projects of the 载体 the project now belongs to are settled."""
    other = sa.case(
        (ProjectConflict.project_id == project.id, ProjectConflict.other_project_id),
        else_=ProjectConflict.project_id,
    )
    conflicts = db.session.scalars(
        sa.select(ProjectConflict)
        .join(Project, Project.id == other)
        .where(
            sa.or_(
                ProjectConflict.project_id == project.id,
                ProjectConflict.other_project_id == project.id,
            ),
            ProjectConflict.resolved_at.is_(None),
            Project.carrier_id == carrier.id,
        )
    ).all()
    for conflict in conflicts:
        # One settled by someone else meanwhile keeps that settlement and its note.
        if _settle(user, conflict, f"项目流转至{carrier.name}，两个项目同属一个载体"):
            record(user, "conflict_resolved", conflict, summary=conflict.resolution_note)


def _may_receive(user: User) -> sa.ColumnElement[bool] | None:
    """The pending hand-overs `user` may accept or decline, as a clause (None: none): an
    officer's into its 载体, a task force's of its cluster's projects, anyone's for leaders and
    admins; of live projects only. The project is checked row by row (EXISTS), so the read is
    driven by the few pending hand-overs, never by a cluster's thousands of projects."""
    project = [Project.id == Handover.project_id, Project.is_deleted.is_(False)]
    if user.role is Role.OFFICER:
        return sa.and_(Handover.to_carrier_id == user.carrier_id, sa.exists().where(*project))
    if user.role is Role.TASKFORCE:
        return sa.exists().where(*project, Project.cluster_id == user.cluster_id)
    if user.role in (Role.LEADER, Role.ADMIN):
        return sa.exists().where(*project)
    return None


def _pending_for(user: User, *columns) -> sa.Select | None:
    mine = _may_receive(user)
    if mine is None:
        return None
    return (
        sa.select(*columns)
        .select_from(Handover)
        .where(Handover.state == HandoverState.PENDING, mine)
    )


def pending_handovers_for(user: User, limit: int = 10) -> list[Handover]:
    """The hand-overs waiting for `user` to accept or decline (待办), oldest first, with their
    project and 载体 loaded; an indexed read of the few pending ones."""
    query = _pending_for(user, Handover)
    if query is None:
        return []
    return list(
        db.session.scalars(
            query.options(
                joinedload(Handover.project),
                joinedload(Handover.from_carrier),
                joinedload(Handover.to_carrier),
                joinedload(Handover.handed_by),
            )
            .order_by(Handover.handed_at, Handover.id)
            .limit(limit)
        )
    )


def count_pending_handovers_for(user: User) -> int:
    """How many hand-overs wait for `user` (the top bar's and 待办's count)."""
    query = _pending_for(user, sa.func.count(Handover.id))
    return (db.session.scalar(query) or 0) if query is not None else 0
