"""The lifecycle rules (measure 28), in one module.

- A project moves one stage forward at a time; it may go back to any earlier stage with a reason.
- Each stage has fields that must be filled before entry (`STAGE_REQUIRED_FIELDS`).
- Other packages plug checks into a stage's entry with `register_entry_check`; the evaluation
  package uses it for the 签约 gate (measure 22), so this module never imports it.
- Stages move only while the status is 正常. Leaving 正常 needs a reason and a date; 流失 names
  where the project went; 终止 names a reason from the catalogue; 暂缓 can resume.
- Every move writes a history row (StageChange / StatusChange) that is never edited.
- 甄别: a forward move into 签约, 开工 or 投产 is 待核实 until the project's task force verifies
  it (`verify_move`) or rejects it (`reject_move`, which returns the project to the stage it
  came from, clearing the claimed actual date). Only the verification fields of the history row
  change. A project moved back past a move still waiting has that move withdrawn (已驳回).
  A move is decided once (`crm.decisions.decide_once`): of several verifications and
  rejections sent at the same moment one wins, the others are refused with AlreadyDecided.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import sqlalchemy as sa

from crm.access import Action, can
from crm.audit.services import apply_changes, record
from crm.auth.models import User
from crm.catalog.models import TerminationReason
from crm.core import ServiceError, local_today, utcnow
from crm.decisions import AlreadyDecided, change_once, decide_once
from crm.extensions import db
from crm.hooks import next_action_changed
from crm.notifications.models import NotificationKind
from crm.notifications.services import app_path, notify
from crm.projects.models import Project, StageChange, StatusChange
from crm.projects.stages import (
    STAGE_REQUIRED_FIELDS,
    VERIFIED_STAGES,
    Stage,
    Status,
    Verification,
)

# A check returns None when the project may enter the stage, or the reason it may not.
EntryCheck = Callable[[Project], str | None]
_entry_checks: dict[Stage, list[EntryCheck]] = {stage: [] for stage in Stage}

# Statuses a project may change to, from each status.
STATUS_MOVES: dict[Status, tuple[Status, ...]] = {
    Status.ACTIVE: (Status.ON_HOLD, Status.DROPPED, Status.LOST),
    Status.ON_HOLD: (Status.ACTIVE, Status.DROPPED, Status.LOST),
    Status.DROPPED: (),
    Status.LOST: (),
}


def register_entry_check(stage: Stage) -> Callable[[EntryCheck], EntryCheck]:
    """Decorator: run `check` before any project enters `stage`."""

    def decorator(check: EntryCheck) -> EntryCheck:
        if check not in _entry_checks[stage]:
            _entry_checks[stage].append(check)
        return check

    return decorator


def entry_blockers(project: Project, stage: Stage) -> list[str]:
    """Why `project` may not enter `stage` now, from the registered checks (gates)."""
    return [reason for check in _entry_checks[stage] if (reason := check(project))]


def stage_moves(project: Project) -> list[Stage]:
    """The stages this project may move to: the next one, and every earlier one."""
    if project.status is not Status.ACTIVE:
        return []
    moves = [s for s in Stage if s.order < project.stage.order]
    if project.stage.next:
        moves.append(project.stage.next)
    return moves


def move_stage(
    user: User,
    project: Project,
    to_stage: Stage,
    reason: str = "",
    fields: dict[str, Any] | None = None,
) -> StageChange:
    """Move `project` to `to_stage`, filling that stage's required fields from `fields`."""
    from_stage = project.stage
    reason = reason.strip()
    if project.status is not Status.ACTIVE:
        raise ServiceError(f"项目处于“{project.status.label}”状态，不能变更阶段")
    if to_stage not in stage_moves(project):
        raise ServiceError(f"不能从“{from_stage.label}”直接进入“{to_stage.label}”：阶段须逐级推进")
    backward = to_stage.order < from_stage.order
    if backward and not reason:
        raise ServiceError(errors={"reason": "退回到之前的阶段须说明原因"})

    changes: dict[str, list[Any]] = {"stage": [from_stage.name, to_stage.name]}
    if not backward:
        required = STAGE_REQUIRED_FIELDS.get(to_stage, {})
        values = {k: v for k, v in (fields or {}).items() if k in required}
        missing = {
            k: f"进入“{to_stage.label}”须填写{label}"
            for k, label in required.items()
            if values.get(k) in (None, "") and getattr(project, k) in (None, "")
        }
        if missing:
            raise ServiceError(errors=missing)
        errors = _actual_date_errors(project, values)
        if errors:
            raise ServiceError(errors=errors)
        if blockers := entry_blockers(project, to_stage):
            raise ServiceError("；".join(blockers))
        changes |= apply_changes(project, {k: v for k, v in values.items() if v not in (None, "")})

    return _write_move(user, project, to_stage, reason, changes)


def _write_move(
    user: User, project: Project, to_stage: Stage, reason: str, changes: dict[str, list[Any]]
) -> StageChange:
    """Set the stage and write its history row and audit entry (rules already checked)."""
    from_stage = project.stage
    backward = to_stage.order < from_stage.order
    if backward:
        _withdraw_pending_moves(user, project, to_stage)
    project.stage = to_stage
    project.version += 1
    change = StageChange(
        project_id=project.id,
        from_stage=from_stage,
        to_stage=to_stage,
        reason=reason,
        changed_by_id=user.id,
        officer_id=project.officer_id,  # credited to the officer in charge now
        # 甄别: a claimed 签约, 开工 or 投产 waits for the task force before it counts.
        verification=Verification.PENDING if not backward and to_stage in VERIFIED_STAGES else None,
    )
    db.session.add(change)
    db.session.flush()
    record(
        user,
        "stage_moved",
        project,
        summary=f"{project.name}：{from_stage.label} → {to_stage.label}",
        changes=changes,
    )
    return change


def _withdraw_pending_moves(user: User, project: Project, to_stage: Stage) -> None:
    """Moves into stages the project now leaves behind no longer wait for verification."""
    later = [s for s in VERIFIED_STAGES if s.order > to_stage.order]
    waiting = db.session.scalars(
        sa.select(StageChange).where(
            StageChange.project_id == project.id,
            StageChange.verification == Verification.PENDING,
            StageChange.to_stage.in_(later),
        )
    ).all()
    for change in waiting:
        # A move the task force verified or rejected meanwhile keeps that decision.
        change_once(
            change,
            {"verification": Verification.PENDING},
            {
                "verification": Verification.REJECTED,
                "verified_by_id": user.id,
                "verified_at": utcnow(),
                "verification_note": f"项目退回“{to_stage.label}”，该变更随之撤回",
            },
        )


# 甄别 (verification) -------------------------------------------------------------------------


def _check_verifiable(user: User, change: StageChange) -> Project:
    project = change.project
    if not can(user, Action.VERIFY, project):
        raise ServiceError("只有该项目所属产业集群的产业专班可以核实阶段变更")
    if change.verification is None:
        raise ServiceError("该阶段变更无需核实")
    if change.verification is not Verification.PENDING:
        raise AlreadyDecided(f"该阶段变更已为“{change.verification.label}”，不能再核实或驳回")
    return project


def _decide(user: User, change: StageChange, verification: Verification, note: str) -> None:
    """Take the 甄别 decision on `change`, if nobody took one meanwhile (`decide_once`)."""
    decide_once(
        change,
        {"verification": Verification.PENDING},
        {
            "verification": verification,
            "verified_by_id": user.id,
            "verified_at": utcnow(),
            "verification_note": note,
        },
        "该阶段变更已被核实或驳回",
    )


def verify_move(user: User, change: StageChange, note: str = "") -> StageChange:
    """The task force confirms a claimed 签约, 开工 or 投产: from now on it counts."""
    project = _check_verifiable(user, change)
    note = note.strip()
    _decide(user, change, Verification.VERIFIED, note)
    record(
        user,
        "stage_move_verified",
        project,
        summary=f"{project.name}：核实“{change.to_stage.label}”",
        changes={"stage_change": change.id, "verification": ["PENDING", "VERIFIED"], "note": note},
    )
    _tell_officer(
        NotificationKind.MOVE_VERIFIED, user, change, f"“{change.to_stage.label}”已通过甄别"
    )
    return change


def reject_move(user: User, change: StageChange, reason: str) -> StageChange:
    """The task force rejects a claimed move: the project returns to the stage it came from
    (a backward history row with the reason), the claimed actual date and amount are cleared,
    and the move is marked 已驳回. Returns the backward move."""
    project = _check_verifiable(user, change)
    reason = reason.strip()
    if not reason:
        raise ServiceError(errors={"reason": "驳回须说明原因"})
    if project.stage is not change.to_stage or change.from_stage is None:
        raise ServiceError(
            f"项目已不在“{change.to_stage.label}”阶段：请先处理之后的阶段变更，再驳回这一项"
        )
    _decide(user, change, Verification.REJECTED, reason)
    claimed = dict.fromkeys(STAGE_REQUIRED_FIELDS.get(change.to_stage, {}))
    changes = {"stage": [change.to_stage.name, change.from_stage.name]}
    changes |= apply_changes(project, claimed)
    back = _write_move(user, project, change.from_stage, f"甄别驳回：{reason}", changes)
    record(
        user,
        "stage_move_rejected",
        project,
        summary=f"{project.name}：驳回“{change.to_stage.label}”，退回“{change.from_stage.label}”",
        changes={
            "stage_change": change.id,
            "verification": ["PENDING", "REJECTED"],
            "reason": reason,
        },
    )
    _tell_officer(
        NotificationKind.MOVE_REJECTED,
        user,
        change,
        f"“{change.to_stage.label}”被甄别驳回，退回“{change.from_stage.label}”：{reason}",
    )
    return back


def _tell_officer(kind: NotificationKind, user: User, change: StageChange, what: str) -> None:
    """A 甄别 decision, told to the project's officer and to whoever claimed the move."""
    project = change.project
    notify(
        kind,
        [project.officer, change.changed_by],
        project=project,
        actor=user,
        text=f"{project.name}：{what}",
        url=app_path("projects.detail", project_id=project.id),
    )


def _actual_date_errors(project: Project, values: dict[str, Any]) -> dict[str, str]:
    """Actual dates may not lie in the future, nor before the previous milestone."""
    today = local_today()
    order = ["signed_on", "started_on", "producing_on"]
    errors = {}
    for i, field in enumerate(order):
        value: date | None = values.get(field)
        if value is None:
            continue
        if value > today:
            errors[field] = "实际日期不能晚于今天"
        for earlier in order[:i]:
            before = values.get(earlier) or getattr(project, earlier)
            if before and value < before:
                errors[field] = "日期不能早于前一阶段的实际日期"
    return errors


def change_status(
    user: User,
    project: Project,
    to_status: Status,
    *,
    reason: str = "",
    effective_on: date | None = None,
    lost_to: str = "",
    termination_reason: TerminationReason | None = None,
) -> StatusChange:
    from_status = project.status
    reason, lost_to = reason.strip(), lost_to.strip()
    if to_status not in STATUS_MOVES[from_status]:
        raise ServiceError(f"项目不能从“{from_status.label}”变为“{to_status.label}”")
    errors = {}
    if to_status is not Status.ACTIVE and not reason:
        errors["reason"] = f"变为“{to_status.label}”须说明原因"
    if effective_on is None:
        errors["effective_on"] = "请填写生效日期"
    elif effective_on > local_today():
        errors["effective_on"] = "生效日期不能晚于今天"
    if to_status is Status.LOST and not lost_to:
        errors["lost_to"] = "流失须写明流向何地"
    if to_status is Status.DROPPED and termination_reason is None:
        errors["termination_reason_id"] = "请选择终止原因"
    if errors:
        raise ServiceError(errors=errors)

    changes = apply_changes(
        project,
        {
            "status": to_status,
            "status_reason": reason,
            "status_on": effective_on,
            "lost_to": lost_to if to_status is Status.LOST else "",
            "termination_reason_id": termination_reason.id
            if termination_reason and to_status is Status.DROPPED
            else None,
        },
    )
    project.version += 1
    change = StatusChange(
        project_id=project.id,
        from_status=from_status,
        to_status=to_status,
        reason=reason,
        effective_on=effective_on,
        lost_to=project.lost_to,
        termination_reason_id=project.termination_reason_id,
        changed_by_id=user.id,
    )
    db.session.add(change)
    db.session.flush()
    record(
        user,
        "status_changed",
        project,
        summary=f"{project.name}：{from_status.label} → {to_status.label}",
        changes=changes,
    )
    next_action_changed(user, [project.id])  # its 下一步 task waits only while 正常
    return change
