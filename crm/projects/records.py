"""A project's records: follow-ups (跟踪服务), element needs (要素保障) and funds actually
invested (实际到位资金). Each command checks its input, flushes and audits; the view commits."""

from __future__ import annotations

from typing import Any

from crm.audit.services import apply_changes, record
from crm.auth.models import User
from crm.companies.models import Contact
from crm.core import ServiceError, local_today
from crm.extensions import db
from crm.hooks import next_action_changed
from crm.projects.models import ElementNeed, FollowUp, FundsRecord, Project
from crm.projects.stages import Stage


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
    next_action_changed(user, [project.id])
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
