"""Actions that cannot be undone ask for confirmation, on the server: 终止 and 流失, a leader's
decision, a hand-over (流转), the rejection of a claimed move (甄别驳回), submitting an
evaluation and removing a document (which only an admin can bring back).

Each form has a confirmation checkbox validated by the server, so the page works without
JavaScript and a POST without the box ticked is refused (400, the form shown again with the
message at the checkbox and the input kept) and saves nothing.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from crm.audit.models import AuditEntry
from crm.evaluation.models import Decision, Evaluation, EvaluationState
from crm.evaluation.services import start_evaluation
from crm.extensions import db
from crm.files.models import StoredFile
from crm.projects import lifecycle
from crm.projects.models import Handover, Project, StageChange, StatusChange
from crm.projects.stages import Stage, Status, Verification
from tests import factories
from tests.evaluation_factories import (
    answer_for,
    attach_agreement,
    attracting,
    default_template,
    fill_all,
    passed_evaluation,
    submitted_evaluation,
)
from tests.factories import today


@pytest.fixture(autouse=True)
def uploads(app, tmp_path, monkeypatch):
    """A decision archives the dossier: into a temporary folder, never the repository's."""
    folder = tmp_path / "uploads"
    monkeypatch.setitem(app.config, "UPLOAD_FOLDER", str(folder))
    return folder


def text(response) -> str:
    return response.get_data(as_text=True)


def count(model, *where) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def error_at(page: str, field_id: str) -> str:
    """The error shown at the field with this id (the macro ties it by `<id>-error`)."""
    match = re.search(rf'<div class="error" id="{re.escape(field_id)}-error">([^<]*)</div>', page)
    assert match, f"no error shown at #{field_id}"
    assert f'id="{field_id}"' in page and f'aria-describedby="{field_id}-error"' in page
    return match.group(1)


def checkbox(page: str, field_id: str) -> str:
    match = re.search(rf'<input[^>]*id="{re.escape(field_id)}"[^>]*>', page)
    assert match, f"no checkbox #{field_id}"
    assert 'type="checkbox"' in match.group(0)
    label = re.search(rf'<label for="{re.escape(field_id)}">([^<]*)</label>', page)
    assert label, f"the checkbox #{field_id} has no label"
    return label.group(1)


# 终止 and 流失 -----------------------------------------------------------------------------------


def status_form(to_status: str, reason_id: int | None = None, **overrides) -> dict:
    data = {
        "to_status": to_status,
        "reason": "企业投资计划取消" if to_status == "DROPPED" else "对方给出更优的土地价格",
        "effective_on": today().isoformat(),
        "lost_to": "江苏省徐州市" if to_status == "LOST" else "",
        "termination_reason_id": str(reason_id or 0),
    }
    data.update(overrides)
    return data


@pytest.fixture
def termination_reason(db_session):
    reason = factories.termination_reason("企业自身原因")
    db_session.commit()
    return reason


def test_the_project_page_offers_the_confirmation_with_its_label(world, login):
    page = text(login(world.officer_a).get(f"/projects/{world.project_a.id}"))
    assert "终止或流失" in checkbox(page, "status-confirm")
    assert "变更为终止或流失时须勾选" in page


@pytest.mark.parametrize("to_status", ["DROPPED", "LOST"])
def test_ending_a_project_without_the_confirmation_saves_nothing(
    world, login, db_session, termination_reason, to_status
):
    project = world.project_a
    db_session.commit()
    client = login(world.officer_a)
    response = client.post(
        f"/projects/{project.id}/status", data=status_form(to_status, termination_reason.id)
    )
    assert response.status_code == 400
    page = text(response)
    assert "请勾选确认" in error_at(page, "status-confirm")
    assert "请修改标出的内容" in page
    assert re.search(r"<details[^>]*open[^>]*><summary>变更状态", page)  # the form stays open
    assert "对方给出更优的土地价格" in page or "企业投资计划取消" in page  # input kept
    db_session.expire_all()
    assert db.session.get(Project, project.id).status is Status.ACTIVE
    assert count(StatusChange, StatusChange.project_id == project.id) == 0
    assert count(AuditEntry, AuditEntry.action == "status_changed") == 0


@pytest.mark.parametrize("to_status", ["DROPPED", "LOST"])
def test_ending_a_project_with_the_confirmation(
    world, login, db_session, termination_reason, to_status
):
    project = world.project_a
    db_session.commit()
    response = login(world.officer_a).post(
        f"/projects/{project.id}/status",
        data=status_form(to_status, termination_reason.id, confirm="y"),
    )
    assert response.status_code == 302
    db_session.expire_all()
    assert db.session.get(Project, project.id).status is Status[to_status]
    assert count(StatusChange, StatusChange.project_id == project.id) == 1


def test_a_pause_can_be_undone_and_needs_no_confirmation(world, login, db_session):
    """暂缓 can resume: only the changes that cannot be undone ask for the box."""
    project = world.project_a
    db_session.commit()
    client = login(world.officer_a)
    url = f"/projects/{project.id}/status"
    assert client.post(url, data=status_form("ON_HOLD", reason="企业调整计划")).status_code == 302
    assert client.post(url, data=status_form("ACTIVE", reason="恢复洽谈")).status_code == 302
    db_session.expire_all()
    assert db.session.get(Project, project.id).status is Status.ACTIVE


def test_other_errors_and_the_confirmation_are_shown_together(world, login, db_session):
    """The form's own errors come first: the service is not reached, nothing is saved."""
    db_session.commit()
    response = login(world.officer_a).post(
        f"/projects/{world.project_a.id}/status",
        data={"to_status": "LOST", "effective_on": "", "reason": "x"},
    )
    assert response.status_code == 400
    assert "请勾选确认" in error_at(text(response), "status-confirm")
    assert count(StatusChange) == 0


# The leaders' decision --------------------------------------------------------------------------


@pytest.fixture
def submitted(world, db_session) -> Evaluation:
    evaluation = submitted_evaluation(world.project_a, world.officer_a, world.taskforce_x)
    db_session.commit()
    return evaluation


def decision_data(outcome: str, **overrides) -> dict:
    data = {
        "outcome": outcome,
        "meeting_date": today().isoformat(),
        "meeting_name": "市招商引资项目评审会第 7 次会议",
        "participants": "张市长、发改委、自然资源局",
        "opinion": "材料齐全" if outcome == "PASSED" else "补充环评材料后再议",
    }
    data.update(overrides)
    return data


def test_the_decision_form_offers_the_confirmation_with_its_label(world, login, submitted):
    page = text(login(world.leader).get(f"/evaluations/{submitted.id}"))
    assert "决策一经记录不能修改" in checkbox(page, "confirm")


@pytest.mark.parametrize("outcome", ["PASSED", "RETURNED", "REJECTED"])
def test_a_decision_without_the_confirmation_saves_nothing(
    world, login, db_session, submitted, outcome
):
    response = login(world.leader).post(
        f"/evaluations/{submitted.id}/decision", data=decision_data(outcome)
    )
    assert response.status_code == 400
    page = text(response)
    assert "请勾选确认" in error_at(page, "confirm")
    assert "市招商引资项目评审会第 7 次会议" in page  # what was typed is kept
    db_session.expire_all()
    assert db.session.get(Evaluation, submitted.id).state is EvaluationState.SUBMITTED
    assert count(Decision) == 0
    assert count(AuditEntry, AuditEntry.action == "evaluation_decided") == 0


def test_a_decision_with_the_confirmation_is_recorded(world, login, db_session, submitted):
    response = login(world.leader).post(
        f"/evaluations/{submitted.id}/decision", data=decision_data("RETURNED", confirm="y")
    )
    assert response.status_code == 302
    db_session.expire_all()
    assert db.session.get(Evaluation, submitted.id).state is EvaluationState.RETURNED
    assert count(Decision) == 1


# Hand-over (流转) and rejection (甄别驳回) already had their boxes: still refused without ----


def test_a_hand_over_without_the_confirmation_saves_nothing(world, login, db_session):
    project = world.project_a
    db_session.commit()
    client = login(world.leader)
    assert "确认流转" in checkbox(text(client.get(f"/projects/{project.id}")), "handover-confirm")
    response = client.post(
        f"/projects/{project.id}/handover",
        data={
            "version": project.version,
            "to_carrier_id": world.carrier_b.id,
            "officer_id": world.officer_b.id,
            "reason": "项目选址调整至乙县工业园",
        },
    )
    assert response.status_code == 400
    assert "请勾选确认" in error_at(text(response), "handover-confirm")
    db_session.expire_all()
    assert db.session.get(Project, project.id).carrier_id == world.carrier_a.id
    assert count(Handover) == 0


def test_a_rejection_without_the_confirmation_saves_nothing(world, login, db_session, monkeypatch):
    monkeypatch.setattr(lifecycle, "_entry_checks", {stage: [] for stage in Stage})
    project = world.project_a
    lifecycle.move_stage(world.officer_a, project, Stage.ATTRACTING)
    change = lifecycle.move_stage(
        world.officer_a,
        project,
        Stage.SIGNED,
        fields={"signed_amount": Decimal("30000"), "signed_on": today() - timedelta(days=5)},
    )
    db_session.commit()
    client = login(world.taskforce_x)
    prefix = f"r{change.id}"
    assert "确认驳回" in checkbox(text(client.get(f"/projects/{project.id}")), f"{prefix}-confirm")
    response = client.post(
        f"/projects/{project.id}/moves/{change.id}/reject",
        data={f"{prefix}-reason": "框架协议，不是投资协议"},
    )
    assert response.status_code == 400
    assert "请勾选" in error_at(text(response), f"{prefix}-confirm")
    db_session.expire_all()
    assert db.session.get(Project, project.id).stage is Stage.SIGNED
    assert db.session.get(StageChange, change.id).verification is Verification.PENDING


# Submitting an evaluation (提交决策) --------------------------------------------------------------


@pytest.fixture
def filled(world, db_session) -> Evaluation:
    default_template()
    attracting(world.project_a, world.officer_a)
    evaluation = start_evaluation(world.officer_a, world.project_a)
    fill_all(evaluation, world.taskforce_x)
    db_session.commit()
    return evaluation


def test_the_submit_form_asks_first_and_says_to_save_the_answers(world, login, filled):
    page = text(login(world.taskforce_x).get(f"/evaluations/{filled.id}"))
    assert "提交后在领导决策前不能修改" in checkbox(page, "submit-confirm")
    assert "请先保存本页答案" in page
    assert "不保存本页上尚未保存的填写" in page


def test_submitting_without_the_confirmation_saves_nothing(world, login, db_session, filled):
    response = login(world.taskforce_x).post(f"/evaluations/{filled.id}/submit", data={})
    assert response.status_code == 400
    page = text(response)
    assert "请先保存本页答案" in error_at(page, "submit-confirm")
    assert 'id="checklist"' in page  # still a draft: the answers can still be saved
    db_session.expire_all()
    assert db.session.get(Evaluation, filled.id).state is EvaluationState.DRAFT
    assert count(AuditEntry, AuditEntry.action == "evaluation_submitted") == 0


def test_submitting_with_the_confirmation(world, login, db_session, filled):
    response = login(world.taskforce_x).post(
        f"/evaluations/{filled.id}/submit", data={"confirm": "y"}
    )
    assert response.status_code == 302
    db_session.expire_all()
    assert db.session.get(Evaluation, filled.id).state is EvaluationState.SUBMITTED


def test_an_incomplete_evaluation_is_refused_even_when_confirmed(world, login, db_session, filled):
    answer_for(filled, "工商登记与股权结构").verdict = None
    db_session.commit()
    response = login(world.taskforce_x).post(
        f"/evaluations/{filled.id}/submit", data={"confirm": "y"}
    )
    assert response.status_code == 400
    assert "还有 1 项未给出结论：工商登记与股权结构" in text(response)
    db_session.expire_all()
    assert db.session.get(Evaluation, filled.id).state is EvaluationState.DRAFT


# Removing a document, restoring it (admins) --------------------------------------------------


def removed(stored) -> bool:
    db.session.expire_all()
    return db.session.get(StoredFile, stored.id).is_deleted


def test_the_project_page_leads_to_a_confirmation_before_removing(
    world, login, db_session, uploads
):
    stored = attach_agreement(world.project_a, world.officer_a, uploads)
    db_session.commit()
    client = login(world.officer_a)
    page = text(client.get(f"/projects/{world.project_a.id}"))
    assert f'href="/files/{stored.id}/archive">移除…</a>' in page
    page = text(client.get(f"/files/{stored.id}/archive"))
    assert "管理员可恢复" in checkbox(page, "confirm")
    assert "投资协议（签署版）.pdf" in page
    assert not removed(stored)


def test_removing_a_document_without_the_confirmation_saves_nothing(
    world, login, db_session, uploads
):
    stored = attach_agreement(world.project_a, world.officer_a, uploads)
    db_session.commit()
    response = login(world.officer_a).post(f"/files/{stored.id}/archive", data={})
    assert response.status_code == 400
    assert "请勾选确认" in error_at(text(response), "confirm")
    assert not removed(stored)
    assert count(AuditEntry, AuditEntry.action == "file_archived") == 0


def test_a_removed_document_is_listed_for_the_admin_who_restores_it(
    world, login, db_session, uploads
):
    stored = attach_agreement(world.project_a, world.officer_a, uploads)
    db_session.commit()
    client = login(world.officer_a)
    response = client.post(f"/files/{stored.id}/archive", data={"confirm": "y"})
    assert response.status_code == 302
    assert removed(stored)
    page = text(client.get(f"/projects/{world.project_a.id}"))
    assert "已移除“投资协议（签署版）.pdf”（文件仍存档，管理员可恢复）" in page
    assert f'href="/files/{stored.id}"' not in page
    assert "已移除的文件" not in page  # the list of removed files is the admins'

    for who, status in (("officer_a", 403), ("taskforce_x", 403), ("officer_b", 404)):
        assert login(getattr(world, who)).post(f"/files/{stored.id}/restore").status_code == status
    assert removed(stored)

    client = login(world.admin)
    page = text(client.get(f"/projects/{world.project_a.id}"))
    assert "已移除的文件（1，仅管理员可见）" in page
    assert f'action="/files/{stored.id}/restore"' in page
    response = client.post(f"/files/{stored.id}/restore")
    assert response.status_code == 302
    assert not removed(stored)
    page = text(client.get(f"/projects/{world.project_a.id}"))
    assert f'href="/files/{stored.id}">投资协议（签署版）.pdf</a>' in page
    assert "已移除的文件" not in page
    actions = db.session.scalars(
        sa.select(AuditEntry.action)
        .where(AuditEntry.object_type == "stored_files", AuditEntry.object_id == stored.id)
        .order_by(AuditEntry.id)
    ).all()
    assert [a for a in actions if a != "file_downloaded"] == [
        "file_uploaded",
        "file_archived",
        "file_restored",
    ]


@pytest.fixture
def signed(world, db_session, uploads) -> tuple[Project, StoredFile]:
    """Project A at 签约, through the gate: a passed evaluation and the signed agreement."""
    project = world.project_a
    passed_evaluation(project, world.officer_a, world.taskforce_x, world.leader)
    agreement = attach_agreement(project, world.officer_a, uploads)
    lifecycle.move_stage(
        world.officer_a,
        project,
        Stage.SIGNED,
        fields={"signed_amount": Decimal("30000"), "signed_on": today() - timedelta(days=1)},
    )
    db_session.commit()
    return project, agreement


def test_the_signed_agreement_of_a_signed_project_cannot_be_removed(world, login, signed):
    _project, agreement = signed
    client = login(world.officer_a)
    page = text(client.get(f"/files/{agreement.id}/archive"))
    assert "不能移除：项目已签约，须保留至少一份已签署的投资协议" in page
    assert 'id="confirm"' not in page  # nothing to confirm
    response = client.post(f"/files/{agreement.id}/archive", data={"confirm": "y"})
    assert response.status_code == 409
    assert "请先上传新的协议，再移除旧的" in text(response)
    assert not removed(agreement)
    assert count(AuditEntry, AuditEntry.action == "file_archived") == 0


def test_a_replaced_agreement_of_a_signed_project_can_be_removed(
    world, login, db_session, uploads, signed
):
    project, old = signed
    attach_agreement(project, world.officer_a, uploads)  # the corrected copy, uploaded first
    db_session.commit()
    client = login(world.officer_a)
    page = text(client.get(f"/files/{old.id}/archive"))
    assert "这份投资协议是签约的依据" in page
    assert client.post(f"/files/{old.id}/archive", data={"confirm": "y"}).status_code == 302
    assert removed(old)
