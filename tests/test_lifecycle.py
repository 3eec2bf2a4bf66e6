"""The lifecycle service (measure 28): stage moves, required fields, status changes, history."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from crm.audit.models import AuditEntry
from crm.core import ServiceError
from crm.projects import lifecycle
from crm.projects.lifecycle import change_status, move_stage, register_entry_check
from crm.projects.models import StageChange, StatusChange
from crm.projects.stages import Stage, Status
from tests import factories
from tests.factories import today


@pytest.fixture(autouse=True)
def own_entry_checks(monkeypatch):
    """These tests prove the lifecycle's own rules: checks other packages registered at import
    (the evaluation's 签约 gate) are set aside here and restored after each test."""
    monkeypatch.setattr(lifecycle, "_entry_checks", {stage: [] for stage in Stage})


def history(db_session, project, model=StageChange):
    return db_session.scalars(
        sa.select(model).where(model.project_id == project.id).order_by(model.id)
    ).all()


def audit(db_session, project, action):
    return db_session.scalars(
        sa.select(AuditEntry)
        .where(
            AuditEntry.action == action,
            AuditEntry.object_type == "projects",
            AuditEntry.object_id == project.id,
        )
        .order_by(AuditEntry.id)
    ).all()


def signed_fields(days_ago=10, amount="30000"):
    return {"signed_amount": Decimal(amount), "signed_on": today() - timedelta(days=days_ago)}


def at_stage(world, stage, **kw):
    """A project of 载体 A already in `stage`, with the actual dates that stage implies."""
    dates = {
        Stage.SIGNED: {
            "signed_amount": Decimal("30000"),
            "signed_on": today() - timedelta(days=60),
        },
        Stage.STARTED: {
            "signed_amount": Decimal("30000"),
            "signed_on": today() - timedelta(days=60),
            "started_on": today() - timedelta(days=30),
        },
    }.get(stage, {})
    return factories.project(
        world.carrier_a, world.cluster_x, world.officer_a, world.channel, stage=stage, **dates, **kw
    )


# One stage forward at a time; back only with a reason ----------------------------------------


def test_a_project_moves_one_stage_forward(world):
    project = world.project_a
    move_stage(world.officer_a, project, Stage.ATTRACTING)
    assert project.stage is Stage.ATTRACTING


@pytest.mark.parametrize(
    ("start", "target"),
    [
        (Stage.PLANNED, Stage.SIGNED),
        (Stage.PLANNED, Stage.STARTED),
        (Stage.PLANNED, Stage.PRODUCING),
        (Stage.ATTRACTING, Stage.STARTED),
        (Stage.SIGNED, Stage.PRODUCING),
    ],
)
def test_skipping_a_stage_is_refused(world, db_session, start, target):
    project = at_stage(world, start)
    before = len(history(db_session, project))
    signed_before = (project.signed_amount, project.signed_on)
    fields = {
        **signed_fields(),
        "started_on": today() - timedelta(days=5),
        "producing_on": today() - timedelta(days=1),
    }
    with pytest.raises(ServiceError) as raised:
        move_stage(world.officer_a, project, target, fields=fields)
    assert "逐级推进" in str(raised.value)
    assert project.stage is start
    assert (project.signed_amount, project.signed_on) == signed_before
    assert project.started_on is None or start is Stage.STARTED
    assert len(history(db_session, project)) == before


def test_moving_to_the_current_stage_is_refused(world):
    with pytest.raises(ServiceError):
        move_stage(world.officer_a, world.project_a, Stage.PLANNED, reason="重复")


def test_going_back_needs_a_reason(world, db_session):
    project = at_stage(world, Stage.SIGNED)
    for reason in ("", "   "):
        with pytest.raises(ServiceError) as raised:
            move_stage(world.officer_a, project, Stage.ATTRACTING, reason=reason)
        assert raised.value.errors == {"reason": "退回到之前的阶段须说明原因"}
    assert project.stage is Stage.SIGNED
    assert len(history(db_session, project)) == 1


def test_going_back_with_a_reason_works_and_may_skip_stages(world, db_session):
    project = at_stage(world, Stage.STARTED)
    change = move_stage(world.officer_a, project, Stage.ATTRACTING, reason=" 协议被企业撤回 ")
    assert project.stage is Stage.ATTRACTING
    assert change.reason == "协议被企业撤回"
    assert change.is_backward
    assert (change.from_stage, change.to_stage) == (Stage.STARTED, Stage.ATTRACTING)


def test_after_going_back_the_project_can_move_forward_again(world):
    project = at_stage(world, Stage.SIGNED)
    move_stage(world.officer_a, project, Stage.ATTRACTING, reason="重新谈判")
    # The signed amount and date are kept, so re-entering 签约 needs no new input.
    move_stage(world.officer_a, project, Stage.SIGNED)
    assert project.stage is Stage.SIGNED


def test_stage_moves_offers_the_next_stage_and_every_earlier_one(world):
    assert lifecycle.stage_moves(world.project_a) == [Stage.ATTRACTING]
    project = at_stage(world, Stage.STARTED)
    assert lifecycle.stage_moves(project) == [
        Stage.PLANNED,
        Stage.ATTRACTING,
        Stage.SIGNED,
        Stage.PRODUCING,
    ]
    last = at_stage(world, Stage.PRODUCING)
    assert Stage.PRODUCING not in lifecycle.stage_moves(last)


# Required fields per stage --------------------------------------------------------------------


def test_signing_needs_amount_and_date_keyed_by_field(world):
    project = at_stage(world, Stage.ATTRACTING)
    with pytest.raises(ServiceError) as raised:
        move_stage(world.officer_a, project, Stage.SIGNED)
    assert raised.value.errors == {
        "signed_amount": "进入“签约”须填写签约金额(万元)",
        "signed_on": "进入“签约”须填写签约日期",
    }
    with pytest.raises(ServiceError) as raised:
        move_stage(world.officer_a, project, Stage.SIGNED, fields={"signed_amount": Decimal("100")})
    assert set(raised.value.errors) == {"signed_on"}
    assert project.stage is Stage.ATTRACTING
    assert project.signed_amount is None


def test_signing_with_amount_and_date_fills_them(world):
    project = at_stage(world, Stage.ATTRACTING)
    fields = signed_fields()
    move_stage(world.officer_a, project, Stage.SIGNED, fields=fields)
    assert project.stage is Stage.SIGNED
    assert project.signed_amount == Decimal("30000")
    assert project.signed_on == fields["signed_on"]


def test_starting_needs_a_start_date(world):
    project = at_stage(world, Stage.SIGNED)
    with pytest.raises(ServiceError) as raised:
        move_stage(world.officer_a, project, Stage.STARTED, fields={"started_on": None})
    assert raised.value.errors == {"started_on": "进入“开工”须填写开工日期"}
    move_stage(world.officer_a, project, Stage.STARTED, fields={"started_on": today()})
    assert (project.stage, project.started_on) == (Stage.STARTED, today())


def test_production_needs_a_production_date(world):
    project = at_stage(world, Stage.STARTED)
    with pytest.raises(ServiceError) as raised:
        move_stage(world.officer_a, project, Stage.PRODUCING)
    assert raised.value.errors == {"producing_on": "进入“投产”须填写投产日期"}
    move_stage(world.officer_a, project, Stage.PRODUCING, fields={"producing_on": today()})
    assert project.stage is Stage.PRODUCING


def test_fields_of_other_stages_are_ignored(world):
    """Moving to 招引 cannot smuggle in a 开工 date."""
    project = world.project_a
    move_stage(world.officer_a, project, Stage.ATTRACTING, fields={"started_on": today()})
    assert project.started_on is None


@pytest.mark.parametrize(
    ("stage", "field"),
    [
        (Stage.ATTRACTING, "signed_on"),
        (Stage.SIGNED, "started_on"),
        (Stage.STARTED, "producing_on"),
    ],
)
def test_an_actual_date_in_the_future_is_refused(world, stage, field):
    project = at_stage(world, stage)
    target = stage.next
    fields = {field: today() + timedelta(days=1)}
    if target is Stage.SIGNED:
        fields["signed_amount"] = Decimal("100")
    with pytest.raises(ServiceError) as raised:
        move_stage(world.officer_a, project, target, fields=fields)
    assert raised.value.errors == {field: "实际日期不能晚于今天"}
    assert project.stage is stage
    assert getattr(project, field) is None


def test_an_actual_date_before_the_previous_stage_is_refused(world):
    project = at_stage(world, Stage.SIGNED)  # signed 60 days ago
    too_early = project.signed_on - timedelta(days=1)
    with pytest.raises(ServiceError) as raised:
        move_stage(world.officer_a, project, Stage.STARTED, fields={"started_on": too_early})
    assert raised.value.errors == {"started_on": "日期不能早于前一阶段的实际日期"}
    assert project.stage is Stage.SIGNED

    started = at_stage(world, Stage.STARTED)  # started 30 days ago
    with pytest.raises(ServiceError) as raised:
        move_stage(
            world.officer_a,
            started,
            Stage.PRODUCING,
            fields={"producing_on": started.started_on - timedelta(days=1)},
        )
    assert set(raised.value.errors) == {"producing_on"}
    # The same day as the previous milestone is fine.
    move_stage(
        world.officer_a, started, Stage.PRODUCING, fields={"producing_on": started.started_on}
    )
    assert started.stage is Stage.PRODUCING


# History, audit, version ----------------------------------------------------------------------


def test_every_move_is_recorded_with_who_from_to_and_why(world, db_session):
    project = world.project_a
    move_stage(world.officer_a, project, Stage.ATTRACTING, reason="企业来访")
    move_stage(world.admin, project, Stage.SIGNED, fields=signed_fields())
    move_stage(world.officer_a, project, Stage.PLANNED, reason="企业暂停投资计划")
    rows = [
        (c.changed_by_id, c.from_stage, c.to_stage, c.reason) for c in history(db_session, project)
    ]
    assert rows == [
        (world.officer_a.id, None, Stage.PLANNED, ""),  # registration
        (world.officer_a.id, Stage.PLANNED, Stage.ATTRACTING, "企业来访"),
        (world.admin.id, Stage.ATTRACTING, Stage.SIGNED, ""),
        (world.officer_a.id, Stage.SIGNED, Stage.PLANNED, "企业暂停投资计划"),
    ]
    assert all(c.changed_at is not None for c in history(db_session, project))

    entries = audit(db_session, project, "stage_moved")
    assert [e.user_id for e in entries] == [world.officer_a.id, world.admin.id, world.officer_a.id]
    assert entries[0].changes == {"stage": ["PLANNED", "ATTRACTING"]}
    assert entries[1].changes["stage"] == ["ATTRACTING", "SIGNED"]
    assert entries[1].changes["signed_on"] == [None, signed_fields()["signed_on"].isoformat()]
    assert "signed_amount" in entries[1].changes


def test_audit_shows_amounts_as_plain_numbers_not_scientific_notation(world, db_session):
    """An audit reader must see 30000, not 3E+4 (crm/audit/services.py `_plain`)."""
    project = at_stage(world, Stage.ATTRACTING)
    move_stage(world.officer_a, project, Stage.SIGNED, fields=signed_fields(amount="30000"))
    entry = audit(db_session, project, "stage_moved")[0]
    assert entry.changes["signed_amount"] == [None, "30000"]


def test_every_move_raises_the_version(world):
    project = world.project_a
    assert project.version == 1
    move_stage(world.officer_a, project, Stage.ATTRACTING)
    assert project.version == 2
    change_status(
        world.officer_a, project, Status.ON_HOLD, reason="企业资金紧张", effective_on=today()
    )
    assert project.version == 3


def test_a_refused_move_writes_nothing(world, db_session):
    project = world.project_a
    audit_before = db_session.scalar(sa.select(sa.func.count(AuditEntry.id)))
    with pytest.raises(ServiceError):
        move_stage(world.officer_a, project, Stage.SIGNED, fields=signed_fields())
    assert project.version == 1
    assert len(history(db_session, project)) == 1
    assert db_session.scalar(sa.select(sa.func.count(AuditEntry.id))) == audit_before


# Status ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("to_status", [Status.ON_HOLD, Status.DROPPED, Status.LOST])
def test_leaving_active_needs_a_reason_and_a_date(world, to_status):
    project = world.project_a
    with pytest.raises(ServiceError) as raised:
        change_status(
            world.officer_a,
            project,
            to_status,
            reason=" ",
            effective_on=None,
            lost_to="合肥市",
            termination_reason=factories.termination_reason(),
        )
    assert set(raised.value.errors) == {"reason", "effective_on"}
    assert project.status is Status.ACTIVE


def test_a_status_date_in_the_future_is_refused(world):
    with pytest.raises(ServiceError) as raised:
        change_status(
            world.officer_a,
            world.project_a,
            Status.ON_HOLD,
            reason="等待环评",
            effective_on=today() + timedelta(days=1),
        )
    assert raised.value.errors == {"effective_on": "生效日期不能晚于今天"}


def test_lost_needs_where_it_went(world, db_session):
    project = world.project_a
    with pytest.raises(ServiceError) as raised:
        change_status(
            world.officer_a, project, Status.LOST, reason="对方条件更优", effective_on=today()
        )
    assert raised.value.errors == {"lost_to": "流失须写明流向何地"}
    change = change_status(
        world.officer_a,
        project,
        Status.LOST,
        reason="对方条件更优",
        effective_on=today(),
        lost_to=" 江苏省徐州市 ",
    )
    assert project.status is Status.LOST
    assert project.lost_to == change.lost_to == "江苏省徐州市"
    assert (change.from_status, change.to_status) == (Status.ACTIVE, Status.LOST)
    assert change.changed_by_id == world.officer_a.id
    assert audit(db_session, project, "status_changed")[0].changes["status"] == ["ACTIVE", "LOST"]


def test_dropped_needs_a_termination_reason(world):
    project = world.project_a
    with pytest.raises(ServiceError) as raised:
        change_status(
            world.officer_a, project, Status.DROPPED, reason="企业破产", effective_on=today()
        )
    assert raised.value.errors == {"termination_reason_id": "请选择终止原因"}
    reason = factories.termination_reason("企业经营变化")
    change = change_status(
        world.officer_a,
        project,
        Status.DROPPED,
        reason="企业破产",
        effective_on=today(),
        termination_reason=reason,
    )
    assert project.status is Status.DROPPED
    assert project.termination_reason_id == change.termination_reason_id == reason.id


def test_on_hold_can_resume(world, db_session):
    project = world.project_a
    day = today() - timedelta(days=3)
    change_status(world.officer_a, project, Status.ON_HOLD, reason="等待用地指标", effective_on=day)
    assert (project.status, project.status_reason, project.status_on) == (
        Status.ON_HOLD,
        "等待用地指标",
        day,
    )
    change_status(world.officer_a, project, Status.ACTIVE, effective_on=today())
    assert project.status is Status.ACTIVE
    move_stage(world.officer_a, project, Stage.ATTRACTING)  # moving again
    rows = [(c.from_status, c.to_status) for c in history(db_session, project, StatusChange)]
    assert rows == [(Status.ACTIVE, Status.ON_HOLD), (Status.ON_HOLD, Status.ACTIVE)]


@pytest.mark.parametrize("final", [Status.DROPPED, Status.LOST])
def test_dropped_and_lost_are_final(world, final):
    project = factories.project(
        world.carrier_a, world.cluster_x, world.officer_a, world.channel, status=final
    )
    for to_status in Status:
        with pytest.raises(ServiceError):
            change_status(
                world.officer_a,
                project,
                to_status,
                reason="重新启动",
                effective_on=today(),
                lost_to="合肥市",
                termination_reason=factories.termination_reason(),
            )
    assert project.status is final
    assert lifecycle.stage_moves(project) == []


@pytest.mark.parametrize("status", [Status.ON_HOLD, Status.DROPPED, Status.LOST])
def test_no_stage_move_unless_active(world, db_session, status):
    project = factories.project(
        world.carrier_a, world.cluster_x, world.officer_a, world.channel, status=status
    )
    with pytest.raises(ServiceError) as raised:
        move_stage(world.officer_a, project, Stage.ATTRACTING)
    assert f"处于“{status.label}”状态" in str(raised.value)
    assert project.stage is Stage.PLANNED
    assert len(history(db_session, project)) == 1


# Entry checks (the 签约 gate the evaluation package fills) ---------------------------------


@pytest.fixture
def signing_gate():
    """A registered check that blocks every project from entering 签约; removed afterwards."""

    def needs_evaluation(project):
        return "须先经领导集体决策通过项目评估"

    register_entry_check(Stage.SIGNED)(needs_evaluation)
    try:
        yield needs_evaluation
    finally:
        lifecycle._entry_checks[Stage.SIGNED].remove(needs_evaluation)
    assert needs_evaluation not in lifecycle._entry_checks[Stage.SIGNED]


def test_an_entry_check_blocks_signing_with_its_message(world, db_session, signing_gate):
    project = at_stage(world, Stage.ATTRACTING)
    with pytest.raises(ServiceError) as raised:
        move_stage(world.officer_a, project, Stage.SIGNED, fields=signed_fields())
    assert "须先经领导集体决策通过项目评估" in str(raised.value)
    assert project.stage is Stage.ATTRACTING
    assert project.signed_amount is None
    assert lifecycle.entry_blockers(project, Stage.SIGNED) == ["须先经领导集体决策通过项目评估"]


def test_an_entry_check_blocks_nothing_else(world, signing_gate):
    project = world.project_a
    move_stage(world.officer_a, project, Stage.ATTRACTING)
    started = at_stage(world, Stage.SIGNED)
    move_stage(world.officer_a, started, Stage.STARTED, fields={"started_on": today()})
    move_stage(world.officer_a, started, Stage.PRODUCING, fields={"producing_on": today()})
    back = at_stage(world, Stage.STARTED)
    move_stage(world.officer_a, back, Stage.ATTRACTING, reason="协议解除")
    assert (project.stage, started.stage, back.stage) == (
        Stage.ATTRACTING,
        Stage.PRODUCING,
        Stage.ATTRACTING,
    )
    for stage in Stage:
        if stage is not Stage.SIGNED:
            assert lifecycle.entry_blockers(project, stage) == []


def test_registering_the_same_check_twice_runs_it_once(world, signing_gate):
    register_entry_check(Stage.SIGNED)(signing_gate)
    assert lifecycle.entry_blockers(world.project_a, Stage.SIGNED) == [
        "须先经领导集体决策通过项目评估"
    ]


def test_an_entry_check_may_let_some_projects_through(world):
    def key_projects_only(project):
        return None if project.is_key else "仅重点项目可签约"

    register_entry_check(Stage.SIGNED)(key_projects_only)
    try:
        plain = at_stage(world, Stage.ATTRACTING)
        key = at_stage(world, Stage.ATTRACTING, is_key=True)
        with pytest.raises(ServiceError, match="仅重点项目可签约"):
            move_stage(world.officer_a, plain, Stage.SIGNED, fields=signed_fields())
        move_stage(world.officer_a, key, Stage.SIGNED, fields=signed_fields())
        assert key.stage is Stage.SIGNED
    finally:
        lifecycle._entry_checks[Stage.SIGNED].remove(key_projects_only)
