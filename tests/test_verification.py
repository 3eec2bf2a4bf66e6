"""甄别: the task force verifies or rejects the moves into 签约, 开工 and 投产."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from crm.access import Action, can
from crm.audit.models import AuditEntry
from crm.core import ServiceError
from crm.decisions import AlreadyDecided
from crm.projects import lifecycle
from crm.projects.lifecycle import move_stage, reject_move, verify_move
from crm.projects.models import StageChange
from crm.projects.stages import Stage, Verification
from tests import factories
from tests.factories import today


@pytest.fixture(autouse=True)
def no_entry_checks(monkeypatch):
    """The 签约 gate of the evaluation package is not what these tests are about."""
    monkeypatch.setattr(lifecycle, "_entry_checks", {stage: [] for stage in Stage})


def text(response) -> str:
    return response.get_data(as_text=True)


def signed(world, project=None):
    """Project A moved to 招引 then 签约 by its officer: the 签约 waits for verification."""
    project = project or world.project_a
    if project.stage is Stage.PLANNED:
        move_stage(world.officer_a, project, Stage.ATTRACTING)
    return move_stage(
        world.officer_a,
        project,
        Stage.SIGNED,
        fields={"signed_amount": Decimal("30000"), "signed_on": today() - timedelta(days=5)},
    )


def started(world, project=None):
    project = project or world.project_a
    return move_stage(
        world.officer_a, project, Stage.STARTED, fields={"started_on": today() - timedelta(days=1)}
    )


def history(db_session, project):
    return db_session.scalars(
        sa.select(StageChange).where(StageChange.project_id == project.id).order_by(StageChange.id)
    ).all()


# The service -----------------------------------------------------------------------------------


def test_moves_into_signed_started_and_producing_wait_for_verification(world, db_session):
    project = world.project_a
    to_attracting = move_stage(world.officer_a, project, Stage.ATTRACTING)
    assert to_attracting.verification is None
    change = signed(world)
    assert change.verification is Verification.PENDING
    back = move_stage(world.officer_a, project, Stage.ATTRACTING, reason="协议需重签")
    assert back.verification is None


def test_the_task_force_verifies_a_move(world, db_session):
    change = signed(world)
    verify_move(world.taskforce_x, change, "  已核对协议原件 ")
    assert change.verification is Verification.VERIFIED
    assert change.verified_by_id == world.taskforce_x.id
    assert change.verified_at is not None
    assert change.verification_note == "已核对协议原件"
    assert world.project_a.stage is Stage.SIGNED
    entry = db_session.scalar(
        sa.select(AuditEntry).where(AuditEntry.action == "stage_move_verified")
    )
    assert entry.object_id == world.project_a.id and entry.user_id == world.taskforce_x.id

    with pytest.raises(ServiceError, match="已核实"):
        verify_move(world.taskforce_x, change)
    with pytest.raises(ServiceError, match="已核实"):
        reject_move(world.taskforce_x, change, "迟来的驳回")


def test_a_rejection_returns_the_project_and_clears_the_claim(world, db_session):
    signed(world)
    change = started(world)
    project = world.project_a
    back = reject_move(world.taskforce_x, change, "现场未见施工")
    assert project.stage is Stage.SIGNED
    assert project.started_on is None  # the claimed date is gone
    assert project.signed_on is not None  # the earlier stage keeps its own
    assert change.verification is Verification.REJECTED
    assert change.verification_note == "现场未见施工"
    assert (back.from_stage, back.to_stage) == (Stage.STARTED, Stage.SIGNED)
    assert back.reason == "甄别驳回：现场未见施工"
    assert back.verification is None
    assert [c.to_stage for c in history(db_session, project)] == [
        Stage.PLANNED,
        Stage.ATTRACTING,
        Stage.SIGNED,
        Stage.STARTED,
        Stage.SIGNED,
    ]
    assert db_session.scalar(
        sa.select(AuditEntry.id).where(AuditEntry.action == "stage_move_rejected")
    )


def test_a_rejection_needs_a_reason_and_the_latest_move(world, db_session):
    signing = signed(world)
    with pytest.raises(ServiceError) as raised:
        reject_move(world.taskforce_x, signing, "  ")
    assert raised.value.errors == {"reason": "驳回须说明原因"}
    started(world)
    with pytest.raises(ServiceError, match="已不在“签约”阶段"):
        reject_move(world.taskforce_x, signing, "协议为框架协议")
    # The earlier move may still be verified.
    verify_move(world.taskforce_x, signing)
    assert signing.verification is Verification.VERIFIED


def test_moving_back_withdraws_the_moves_still_waiting(world, db_session):
    signing = signed(world)
    move_stage(world.officer_a, world.project_a, Stage.ATTRACTING, reason="企业撤回协议")
    assert signing.verification is Verification.REJECTED
    assert "撤回" in signing.verification_note


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        ("officer_a", False),
        ("taskforce_x", True),
        ("taskforce_y", False),
        ("leader", False),
        ("admin", True),
    ],
)
def test_only_the_projects_task_force_and_the_admin_verify(world, db_session, role, allowed):
    change = signed(world)
    user = getattr(world, role)
    assert can(user, Action.VERIFY, world.project_a) is allowed
    if allowed:
        verify_move(user, change)
    else:
        with pytest.raises(ServiceError, match="产业专班"):
            verify_move(user, change)
        with pytest.raises(ServiceError, match="产业专班"):
            reject_move(user, change, "理由")
        assert change.verification is Verification.PENDING


# The pages -------------------------------------------------------------------------------------


def test_the_task_force_verifies_on_the_project_page(world, login, db_session):
    change = signed(world)
    db_session.commit()
    url = f"/projects/{world.project_a.id}"
    officer_page = text(login(world.officer_a).get(url))
    assert "待核实的阶段变更" in officer_page
    assert "核实通过" not in officer_page

    client = login(world.taskforce_x)
    page = text(client.get(url))
    assert "核实通过" in page and "驳回" in page
    response = client.post(
        f"{url}/moves/{change.id}/verify", data={f"v{change.id}-note": "已核对协议原件"}
    )
    assert response.status_code == 302
    db_session.expire_all()
    assert change.verification is Verification.VERIFIED
    page = text(client.get(url))
    assert "待核实的阶段变更" not in page
    assert "已核实" in page and "已核对协议原件" in page


def test_a_rejection_on_the_page_needs_the_reason_and_the_confirmation(world, login, db_session):
    change = signed(world)
    db_session.commit()
    client = login(world.taskforce_x)
    url = f"/projects/{world.project_a.id}/moves/{change.id}/reject"
    prefix = f"r{change.id}"

    response = client.post(url, data={f"{prefix}-reason": "框架协议，不是投资协议"})
    assert response.status_code == 400
    assert "请勾选“确认驳回”" in text(response)
    response = client.post(url, data={f"{prefix}-confirm": "y"})
    assert response.status_code == 400
    assert "请说明驳回原因" in text(response)
    db_session.expire_all()
    assert world.project_a.stage is Stage.SIGNED

    response = client.post(
        url, data={f"{prefix}-reason": "框架协议，不是投资协议", f"{prefix}-confirm": "y"}
    )
    assert response.status_code == 302
    db_session.expire_all()
    assert world.project_a.stage is Stage.ATTRACTING
    assert change.verification is Verification.REJECTED
    page = text(client.get(f"/projects/{world.project_a.id}"))
    assert "甄别驳回：框架协议，不是投资协议" in page and "已驳回" in page


@pytest.mark.parametrize(
    ("role", "status"),
    [("officer_a", 403), ("leader", 403), ("taskforce_y", 404), ("officer_b", 404)],
)
def test_others_cannot_verify_or_reject_through_the_pages(world, login, db_session, role, status):
    change = signed(world)
    db_session.commit()
    client = login(getattr(world, role))
    base = f"/projects/{world.project_a.id}/moves/{change.id}"
    assert client.post(f"{base}/verify", data={}).status_code == status
    reject = {f"r{change.id}-reason": "理由", f"r{change.id}-confirm": "y"}
    assert client.post(f"{base}/reject", data=reject).status_code == status
    db_session.expire_all()
    assert change.verification is Verification.PENDING


def test_a_move_of_another_project_cannot_be_reached(world, login, db_session):
    other = factories.project(
        world.carrier_b, world.cluster_x, world.officer_b, world.channel, stage=Stage.ATTRACTING
    )
    change = move_stage(
        world.officer_b,
        other,
        Stage.SIGNED,
        fields={"signed_amount": Decimal(1), "signed_on": today()},
    )
    db_session.commit()
    client = login(world.taskforce_x)
    url = f"/projects/{world.project_a.id}/moves/{change.id}/verify"
    assert client.post(url, data={}).status_code == 404


def test_the_list_filters_the_projects_waiting_for_verification(world, login, db_session):
    signed(world)
    db_session.commit()
    client = login(world.admin)
    html = text(client.get("/projects/?verification=PENDING"))
    assert world.project_a.name in html
    assert world.project_b.name not in html
    assert 'name="verification" value="PENDING" checked' in html


# One decision wins ------------------------------------------------------------------------------


def _decided_behind_its_back(db_session, change, verification: Verification) -> None:
    """Another request decided the move after this one loaded it (the object still says 待核实)."""
    db_session.execute(
        sa.update(StageChange.__table__)
        .where(StageChange.id == change.id)
        .values(verification=verification.name, verification_note="他人的决定")
    )
    assert change.verification is Verification.PENDING


@pytest.mark.parametrize("first", [Verification.VERIFIED, Verification.REJECTED])
@pytest.mark.parametrize("second", ["verify", "reject"])
def test_a_move_decided_meanwhile_refuses_a_second_decision(world, db_session, first, second):
    signed(world)
    change = started(world)
    _decided_behind_its_back(db_session, change, first)

    with pytest.raises(AlreadyDecided, match="该事项刚被他人处理"):
        if second == "verify":
            verify_move(world.taskforce_x, change, "我的意见")
        else:
            reject_move(world.taskforce_x, change, "我的理由")

    db_session.expire_all()
    assert (change.verification, change.verification_note) == (first, "他人的决定")
    assert world.project_a.stage is Stage.STARTED  # the losing rejection moved nothing back


def test_a_second_decision_on_the_page_answers_409_and_keeps_the_first(world, login, db_session):
    change = signed(world)
    db_session.commit()
    client = login(world.taskforce_x)
    base = f"/projects/{world.project_a.id}/moves/{change.id}"
    assert client.post(f"{base}/verify", data={f"v{change.id}-note": "已核对"}).status_code == 302

    reject = {f"r{change.id}-reason": "迟来的驳回", f"r{change.id}-confirm": "y"}
    for url, data in ((f"{base}/verify", {}), (f"{base}/reject", reject)):
        response = client.post(url, data=data)
        assert response.status_code == 409
        assert "该事项刚被他人处理" in text(response) and "已核实" in text(response)
    db_session.expire_all()
    assert change.verification is Verification.VERIFIED
    assert change.verification_note == "已核对"
    assert world.project_a.stage is Stage.SIGNED


def test_moving_back_keeps_a_decision_taken_meanwhile(world, db_session):
    """An officer moves the project back while the task force verifies the move: the
    verification stays as taken, not overwritten by the withdrawal."""
    change = signed(world)
    _decided_behind_its_back(db_session, change, Verification.VERIFIED)
    move_stage(world.officer_a, world.project_a, Stage.ATTRACTING, reason="企业撤回协议")
    db_session.expire_all()
    assert change.verification is Verification.VERIFIED
    assert change.verification_note == "他人的决定"
