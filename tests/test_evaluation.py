"""Project evaluation (measure 22): the checklist template and its versions, filling, submission,
the leaders' collective decision, concurrent decisions, and the 签约 gate."""

from __future__ import annotations

import io
import os
import re
import secrets
import threading
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import scoped_session, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.pool import NullPool

from config import _database_url
from crm.audit.models import AuditEntry
from crm.auth.models import Role, User
from crm.core import ConflictError, ServiceError
from crm.evaluation import services
from crm.evaluation.models import (
    ChecklistItem,
    ChecklistSection,
    ChecklistTemplate,
    Decision,
    DecisionOutcome,
    Evaluation,
    EvaluationAnswer,
    EvaluationState,
    Verdict,
)
from crm.evaluation.seed import DEFAULT_TEMPLATE_NAME, seed_default_template
from crm.evaluation.services import (
    create_template_version,
    current_template,
    decide,
    load_answers,
    start_evaluation,
    submit_evaluation,
    template_specs,
)
from crm.extensions import db
from crm.files.models import DocumentKind
from crm.projects.lifecycle import move_stage
from crm.projects.stages import Stage
from tests import factories
from tests.evaluation_factories import (
    PDF,
    answer_for,
    attach_agreement,
    attracting,
    decided_evaluation,
    decision_values,
    default_template,
    fill_all,
    passed_evaluation,
    submitted_evaluation,
)
from tests.factories import today

VETO_ITEM = "信用与涉诉记录"  # 一票否决 in the default template
PLAIN_ITEM = "市场前景"  # scored (4), no veto
UNSCORED_ITEM = "投资协议条款合法合规"


def text(response) -> str:
    return response.get_data(as_text=True)


def count(model, *where) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def audit(action: str, obj) -> list[AuditEntry]:
    return list(
        db.session.scalars(
            sa.select(AuditEntry)
            .where(
                AuditEntry.action == action,
                AuditEntry.object_type == obj.__tablename__,
                AuditEntry.object_id == obj.id,
            )
            .order_by(AuditEntry.id)
        )
    )


@pytest.fixture(autouse=True)
def uploads(app, tmp_path, monkeypatch):
    """Uploaded files go to a temporary folder, never into the repository's instance folder."""
    folder = tmp_path / "uploads"
    monkeypatch.setitem(app.config, "UPLOAD_FOLDER", str(folder))
    return folder


@pytest.fixture
def draft(world, db_session) -> Evaluation:
    """An evaluation of project A (载体 A, cluster X) in 招引, just started, committed."""
    default_template()
    attracting(world.project_a, world.officer_a)
    evaluation = start_evaluation(world.officer_a, world.project_a)
    db_session.commit()
    return evaluation


@pytest.fixture
def submitted(world, db_session) -> Evaluation:
    evaluation = submitted_evaluation(world.project_a, world.officer_a, world.taskforce_x)
    db_session.commit()
    return evaluation


def answers_form(evaluation: Evaluation, values: dict[str, tuple]) -> dict:
    """Form fields for the items named in `values`: title → (verdict, comment[, score])."""
    data = {}
    for a in load_answers(evaluation):
        if a.item.title in values:
            verdict, comment, *score = values[a.item.title]
            data[f"verdict_{a.id}"] = verdict.name if verdict else ""
            data[f"comment_{a.id}"] = comment
            if score:
                data[f"score_{a.id}"] = score[0]
    return data


def decision_form(outcome: str = "PASSED", **overrides) -> dict:
    values = decision_values()
    data = {
        "outcome": outcome,
        "meeting_date": values["meeting_date"].isoformat(),
        "meeting_name": values["meeting_name"],
        "participants": values["participants"],
        "opinion": values["opinion"],
        "confirm": "y",
    }
    data.update(overrides)
    return data


def state_of(evaluation: Evaluation) -> EvaluationState:
    db.session.expire_all()
    return db.session.get(Evaluation, evaluation.id).state


# The default template ---------------------------------------------------------------------------


def test_default_template_covers_measure_22(db_session):
    template = default_template()
    assert template.name == DEFAULT_TEMPLATE_NAME
    assert template.version == 1
    items = [i for s in template.sections for i in s.items]
    assert len(items) >= 20
    assert all(s.items for s in template.sections)
    missing_guidance = [i.title for i in items if not i.guidance.strip()]
    assert missing_guidance == []

    # Three procedures are sections of the checklist; the fourth, 集体决策, is the Decision
    # taken on the filled checklist (meeting date, name, participants).
    titles = " ".join(s.title for s in template.sections)
    for procedure in ("尽职调查", "项目论证", "合法性审查"):
        assert procedure in titles
    for question in ("产业导向", "政策取向", "土地指标", "环境保护", "综合效益", "承载能力"):
        assert question in titles

    item_titles = {i.title for i in items}
    for example in ("工商登记与股权结构", "近三年财务状况", "信用与涉诉记录"):
        assert example in item_titles
    assert any("亩均投资强度" in t for t in item_titles)
    assert any("环评" in t for t in item_titles)

    veto = [i for i in items if i.is_veto]
    assert len(veto) >= 2
    assert VETO_ITEM in {i.title for i in veto}
    assert sum((i.max_score or Decimal(0) for i in items), Decimal(0)) == 100


def test_seeding_the_default_template_is_idempotent(db_session):
    assert seed_default_template() is True
    assert seed_default_template() is False
    assert count(ChecklistTemplate) == 1


# Template versions -------------------------------------------------------------------------------


def test_a_new_version_becomes_current_and_the_old_one_stays(world, db_session):
    v1 = default_template()
    specs = template_specs(v1)
    specs[0].items[0].title = "工商登记、股权结构与实际控制人"
    v2 = create_template_version(world.admin, v1.name, specs, "细化尽职调查")
    db_session.expire_all()
    assert (v1.version, v1.is_current) == (1, False)
    assert (v2.version, v2.is_current) == (2, True)
    assert current_template().id == v2.id
    assert v1.sections[0].items[0].title == "工商登记与股权结构"
    assert v2.sections[0].items[0].title == "工商登记、股权结构与实际控制人"
    assert audit("template_version_created", v2)


def test_a_template_version_needs_items(world, db_session):
    default_template()
    with pytest.raises(ServiceError):
        create_template_version(world.admin, DEFAULT_TEMPLATE_NAME, [], "清空")
    assert current_template().version == 1


def template_form(template: ChecklistTemplate, change_note: str = "细化尽职调查") -> dict:
    """The admin page's form as a browser posts it, holding `template`'s items."""
    data = {"change_note": change_note}
    n = 0
    for section in template.sections:
        for item in section.items:
            data[f"items-{n}-section"] = section.title
            data[f"items-{n}-title"] = item.title
            data[f"items-{n}-guidance"] = item.guidance
            if item.is_veto:
                data[f"items-{n}-is_veto"] = "y"
            data[f"items-{n}-max_score"] = "" if item.max_score is None else str(item.max_score)
            n += 1
    return data


def test_admin_saves_a_version_and_an_old_evaluation_keeps_its_items(
    world, login, db_session, draft
):
    v1 = draft.template
    v1_titles = [i.title for s in v1.sections for i in s.items]
    old_title, new_title = "工商登记与股权结构", "工商登记、股权结构与实际控制人"
    data = template_form(v1)
    assert data["items-0-title"] == old_title
    data["items-0-title"] = new_title
    n = sum(len(s.items) for s in v1.sections)
    data |= {
        f"items-{n}-section": "九、承载能力",
        f"items-{n}-title": "园区安全风险评估",
        f"items-{n}-guidance": "周边危险源与安全防护距离。",
        f"items-{n}-max_score": "",
    }
    client = login(world.admin)
    assert client.get("/admin/checklists/").status_code == 200
    response = client.post(f"/admin/checklists/{v1.id}", data=data)
    assert response.status_code == 302, text(response)[:3000]

    db_session.expire_all()
    v2 = current_template()
    assert v2.version == 2 and v2.id != v1.id
    assert response.headers["Location"].endswith(f"/admin/checklists/{v2.id}")
    assert v2.change_note == "细化尽职调查"
    v2_items = [i for s in v2.sections for i in s.items]
    assert len(v2_items) == n + 1
    assert new_title in {i.title for i in v2_items}
    assert old_title not in {i.title for i in v2_items}
    assert [i.title for s in v1.sections for i in s.items] == v1_titles  # v1 untouched
    assert v1_titles[0] == old_title
    listing = text(client.get("/admin/checklists/"))
    assert "第 1 版" in listing and "第 2 版" in listing

    # The evaluation started on version 1 still reads as version 1.
    client = login(world.officer_a)
    page = text(client.get(f"/evaluations/{draft.id}"))
    assert old_title in page
    assert new_title not in page
    assert "园区安全风险评估" not in page
    assert "第 1 版" in page

    # One started now uses version 2.
    attracting(world.project_b, world.officer_b)
    db_session.commit()
    client = login(world.officer_b)
    response = client.post(f"/projects/{world.project_b.id}/evaluations")
    assert response.status_code == 302
    newer = services.open_evaluation(world.project_b)
    assert newer.template_id == v2.id
    page = text(client.get(f"/evaluations/{newer.id}"))
    assert new_title in page and "园区安全风险评估" in page
    assert old_title not in page


def test_a_template_version_needs_a_change_note(world, login, db_session):
    v1 = default_template()
    db_session.commit()
    client = login(world.admin)
    response = client.post(f"/admin/checklists/{v1.id}", data=template_form(v1, change_note=""))
    assert response.status_code == 400
    assert "请说明本次修订的内容" in text(response)
    assert current_template().id == v1.id


@pytest.mark.parametrize("who", ["officer_a", "taskforce_x", "leader"])
def test_checklist_templates_are_for_admins_only(world, login, db_session, who):
    v1 = default_template()
    db_session.commit()
    client = login(getattr(world, who))
    assert client.get("/admin/checklists/").status_code == 403
    assert client.get(f"/admin/checklists/{v1.id}").status_code == 403
    assert client.post(f"/admin/checklists/{v1.id}", data=template_form(v1)).status_code == 403
    assert count(ChecklistTemplate) == 1


# Starting ------------------------------------------------------------------------------------------


def test_an_evaluation_starts_only_in_attracting(world, login, db_session):
    default_template()
    db_session.commit()
    assert world.project_a.stage is Stage.PLANNED
    client = login(world.officer_a)
    response = client.post(f"/projects/{world.project_a.id}/evaluations", follow_redirects=True)
    assert "只有处于“招引”阶段的项目可以发起评估" in text(response)
    assert count(Evaluation) == 0
    assert "发起评估</button>" not in text(client.get(f"/projects/{world.project_a.id}"))


def test_one_open_evaluation_per_project(world, login, db_session, draft):
    client = login(world.officer_a)
    page = text(client.get(f"/projects/{world.project_a.id}"))
    assert f"评估 #{draft.id}" in page
    assert "发起评估</button>" not in page
    response = client.post(f"/projects/{world.project_a.id}/evaluations", follow_redirects=True)
    assert "该项目已有一个未完成的评估" in text(response)
    assert count(Evaluation) == 1
    with pytest.raises(ServiceError, match="已有一个未完成的评估"):
        start_evaluation(world.admin, world.project_a)


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("officer_a", 302),
        ("admin", 302),
        ("taskforce_x", 403),
        ("leader", 403),
        ("officer_b", 404),
        ("taskforce_y", 404),
    ],
)
def test_who_may_start_an_evaluation(world, login, db_session, who, status):
    default_template()
    attracting(world.project_a, world.officer_a)
    db_session.commit()
    client = login(getattr(world, who))
    response = client.post(f"/projects/{world.project_a.id}/evaluations")
    assert response.status_code == status
    if status == 302:
        evaluation = services.open_evaluation(world.project_a)
        assert response.headers["Location"].endswith(f"/evaluations/{evaluation.id}")
        assert evaluation.state is EvaluationState.DRAFT
        assert evaluation.started_by_id == getattr(world, who).id
        assert len(load_answers(evaluation)) == sum(
            len(s.items) for s in current_template().sections
        )
    else:
        assert count(Evaluation) == 0


# Filling -------------------------------------------------------------------------------------------


def test_filling_saves_verdicts_comments_and_scores(world, login, db_session, draft):
    client = login(world.officer_a)
    data = answers_form(
        draft,
        {
            PLAIN_ITEM: (Verdict.CONFORMS, "市场容量大", "3.5"),
            VETO_ITEM: (Verdict.MOSTLY, "有一起已结案的合同纠纷"),
            UNSCORED_ITEM: (Verdict.NOT_APPLICABLE, "协议尚在起草"),
        },
    )
    response = client.post(f"/evaluations/{draft.id}/answers", data=data)
    assert response.status_code == 302, text(response)[:3000]
    db_session.expire_all()
    plain = answer_for(draft, PLAIN_ITEM)
    assert (plain.verdict, plain.comment, plain.score) == (
        Verdict.CONFORMS,
        "市场容量大",
        Decimal("3.5"),
    )
    assert plain.updated_by_id == world.officer_a.id
    assert answer_for(draft, VETO_ITEM).verdict is Verdict.MOSTLY
    assert answer_for(draft, UNSCORED_ITEM).verdict is Verdict.NOT_APPLICABLE
    untouched = answer_for(draft, "近三年财务状况")
    assert (untouched.verdict, untouched.updated_by_id) == (None, None)

    page = text(client.get(f"/evaluations/{draft.id}"))
    assert "市场容量大" in page
    assert "得分 3.5 / 100" in page


@pytest.mark.parametrize(
    ("verdict", "message"),
    [(Verdict.FAILS, "“不符合”须填写说明"), (Verdict.NOT_APPLICABLE, "“不适用”须填写说明")],
)
def test_fails_or_not_applicable_needs_a_comment_and_nothing_is_saved(
    world, login, db_session, draft, verdict, message
):
    client = login(world.taskforce_x)
    data = answers_form(
        draft,
        {
            PLAIN_ITEM: (Verdict.CONFORMS, "市场容量大", "4"),
            VETO_ITEM: (verdict, "   "),
        },
    )
    response = client.post(f"/evaluations/{draft.id}/answers", data=data)
    assert response.status_code == 400
    page = text(response)
    assert message in page
    assert "有事项未通过校验" in page
    db_session.expire_all()
    assert all(a.verdict is None and a.score is None for a in load_answers(draft))
    assert audit("evaluation_filled", draft) == []


def test_a_score_above_the_maximum_is_refused(world, login, db_session, draft):
    client = login(world.officer_a)
    data = answers_form(
        draft,
        {
            PLAIN_ITEM: (Verdict.CONFORMS, "", "4.5"),  # 满分 4
            "近三年财务状况": (Verdict.CONFORMS, "", "5"),
        },
    )
    response = client.post(f"/evaluations/{draft.id}/answers", data=data)
    assert response.status_code == 400
    assert "得分应在 0 到 4" in text(response)
    db_session.expire_all()
    assert all(a.verdict is None and a.score is None for a in load_answers(draft))


def test_a_verdict_outside_the_list_is_refused(world, login, db_session, draft):
    client = login(world.officer_a)
    answer = answer_for(draft, PLAIN_ITEM)
    response = client.post(
        f"/evaluations/{draft.id}/answers", data={f"verdict_{answer.id}": "EXCELLENT"}
    )
    assert response.status_code == 400
    db_session.expire_all()
    assert answer_for(draft, PLAIN_ITEM).verdict is None


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("officer_a", 302),
        ("taskforce_x", 302),
        ("admin", 302),
        ("taskforce_y", 404),
        ("officer_b", 404),
        ("leader", 403),
    ],
)
def test_who_may_fill(world, login, db_session, draft, who, status):
    client = login(getattr(world, who))
    data = answers_form(draft, {PLAIN_ITEM: (Verdict.MOSTLY, "尚可")})
    assert client.post(f"/evaluations/{draft.id}/answers", data=data).status_code == status
    db_session.expire_all()
    expected = Verdict.MOSTLY if status == 302 else None
    assert answer_for(draft, PLAIN_ITEM).verdict is expected


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("officer_a", 200),
        ("taskforce_x", 200),
        ("leader", 200),
        ("admin", 200),
        ("officer_b", 404),
        ("taskforce_y", 404),
    ],
)
def test_who_may_read_an_evaluation(world, login, draft, who, status):
    client = login(getattr(world, who))
    assert client.get(f"/evaluations/{draft.id}").status_code == status


# Submitting ----------------------------------------------------------------------------------------


def test_submission_is_refused_listing_the_items_without_verdict(world, login, db_session, draft):
    fill_all(draft, world.taskforce_x)
    for title in (PLAIN_ITEM, UNSCORED_ITEM):
        answer_for(draft, title).verdict = None
    db_session.commit()
    client = login(world.taskforce_x)
    response = client.post(f"/evaluations/{draft.id}/submit", data={"confirm": "y"})
    assert response.status_code == 400
    page = text(response)
    assert "还有 2 项未给出结论" in page
    assert PLAIN_ITEM in page and UNSCORED_ITEM in page
    assert state_of(draft) is EvaluationState.DRAFT
    assert audit("evaluation_submitted", draft) == []


def test_the_task_force_submits_a_complete_evaluation(world, login, db_session, draft):
    fill_all(draft, world.officer_a)
    db_session.commit()
    client = login(world.taskforce_x)
    assert "提交领导集体决策</button>" in text(client.get(f"/evaluations/{draft.id}"))
    response = client.post(f"/evaluations/{draft.id}/submit", data={"confirm": "y"})
    assert response.status_code == 302
    db_session.expire_all()
    assert draft.state is EvaluationState.SUBMITTED
    assert draft.submitted_by_id == world.taskforce_x.id
    assert draft.submitted_at is not None


@pytest.mark.parametrize(
    ("who", "status"), [("officer_a", 403), ("leader", 403), ("taskforce_y", 404)]
)
def test_only_the_task_force_or_admin_submits(world, login, db_session, draft, who, status):
    fill_all(draft, world.officer_a)
    db_session.commit()
    client = login(getattr(world, who))
    assert "提交领导集体决策</button>" not in text(client.get(f"/evaluations/{draft.id}"))
    assert (
        client.post(f"/evaluations/{draft.id}/submit", data={"confirm": "y"}).status_code == status
    )
    assert state_of(draft) is EvaluationState.DRAFT


def test_a_submitted_evaluation_cannot_be_filled(world, login, db_session, submitted):
    before = answer_for(submitted, PLAIN_ITEM)
    before_values = (before.verdict, before.comment)
    for user in (world.officer_a, world.taskforce_x):
        client = login(user)
        data = answers_form(submitted, {PLAIN_ITEM: (Verdict.FAILS, "改为不符合")})
        response = client.post(f"/evaluations/{submitted.id}/answers", data=data)
        assert response.status_code == 400
        assert "评估处于“待决策”状态，不能修改" in text(response)
    response = client.post(
        f"/evaluations/{submitted.id}/submit", data={"confirm": "y"}
    )  # the task force, again
    assert response.status_code == 400
    assert "评估处于“待决策”状态，不能修改" in text(response)
    db_session.expire_all()
    after = answer_for(submitted, PLAIN_ITEM)
    assert (after.verdict, after.comment) == before_values
    assert state_of(submitted) is EvaluationState.SUBMITTED
    page = text(login(world.officer_a).get(f"/evaluations/{submitted.id}"))
    assert 'id="checklist"' not in page
    assert "等待领导集体决策" in page


# The decision ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "status"),
    [("officer_a", 403), ("taskforce_x", 403), ("admin", 403), ("officer_b", 404)],
)
def test_only_a_leader_decides(world, login, db_session, submitted, who, status):
    client = login(getattr(world, who))
    page = text(client.get(f"/evaluations/{submitted.id}"))
    assert 'id="decision"' not in page
    response = client.post(f"/evaluations/{submitted.id}/decision", data=decision_form())
    assert response.status_code == status
    assert state_of(submitted) is EvaluationState.SUBMITTED
    assert count(Decision) == 0


def test_the_queue_lists_submitted_evaluations_oldest_first(world, login, db_session):
    # Three projects of three 载体: the last one submitted first.
    project_c = factories.project(
        factories.carrier("丙园区"), world.cluster_x, world.officer_a, name="丙园区储能项目"
    )
    first = submitted_evaluation(world.project_a, world.officer_a, world.taskforce_x)
    second = submitted_evaluation(world.project_b, world.officer_b, world.taskforce_y)
    attracting(project_c, world.officer_a)
    start_evaluation(world.officer_a, project_c)  # a draft: not in the queue
    now = datetime.now(UTC)
    first.submitted_at = now - timedelta(hours=1)
    second.submitted_at = now - timedelta(days=2)
    db_session.commit()

    client = login(world.leader)
    page = text(client.get("/evaluations/"))
    assert "乙县中药饮片项目" in page and "甲区光伏组件项目" in page
    assert page.index("乙县中药饮片项目") < page.index("甲区光伏组件项目")
    assert "丙园区储能项目" not in page
    assert f"/evaluations/{second.id}#decision" in page


def test_the_queue_shows_scores_vetoes_and_each_role_its_action(world, login, db_session):
    """The leaders decide from the queue: each row's total score and veto hits; an officer
    (who may not decide) is offered to look, not to decide."""
    vetoed = submitted_evaluation(
        world.project_a,
        world.officer_a,
        world.taskforce_x,
        overrides={VETO_ITEM: Verdict.FAILS},
    )
    db_session.commit()
    page = text(login(world.leader).get("/evaluations/"))
    row = page.split("甲区光伏组件项目", 1)[1].split("</tr>", 1)[0]
    assert '<span class="badge stale">1 项不符合</span>' in row
    assert re.search(r'<td class="num">\d+(\.\d+)? / \d+(\.\d+)?</td>', row), row
    assert f'href="/evaluations/{vetoed.id}#decision">查看并决策</a>' in row
    officer_page = text(login(world.officer_a).get("/evaluations/"))
    assert "查看并决策" not in officer_page
    assert f'<a href="/evaluations/{vetoed.id}">查看评估</a>' in officer_page


def test_a_decision_needs_the_meeting_date_name_and_participants(
    world, login, db_session, submitted
):
    client = login(world.leader)
    response = client.post(
        f"/evaluations/{submitted.id}/decision",
        data=decision_form(meeting_date="", meeting_name="", participants=""),
    )
    assert response.status_code == 400
    page = text(response)
    for message in ("请填写会议日期", "请填写会议名称或编号", "请填写参会人员"):
        assert message in page

    response = client.post(
        f"/evaluations/{submitted.id}/decision",
        data=decision_form(meeting_name=" ", participants=""),
    )
    assert response.status_code == 400
    page = text(response)
    assert "请填写会议名称或编号" in page and "请填写参会人员" in page

    tomorrow = (today() + timedelta(days=1)).isoformat()
    response = client.post(
        f"/evaluations/{submitted.id}/decision", data=decision_form(meeting_date=tomorrow)
    )
    assert response.status_code == 400
    assert "会议日期不能晚于今天" in text(response)
    assert state_of(submitted) is EvaluationState.SUBMITTED
    assert count(Decision) == 0


def test_a_leader_passes_an_evaluation(world, login, db_session, submitted):
    client = login(world.leader)
    page = text(client.get(f"/evaluations/{submitted.id}"))
    assert 'id="decision"' in page
    response = client.post(f"/evaluations/{submitted.id}/decision", data=decision_form())
    assert response.status_code == 302
    assert state_of(submitted) is EvaluationState.PASSED
    decision = db_session.scalar(sa.select(Decision).where(Decision.evaluation_id == submitted.id))
    assert decision.outcome is DecisionOutcome.PASSED
    assert decision.meeting_name == "市招商引资项目评审会 2026 年第 3 次"
    assert "发改委" in decision.participants
    assert decision.decided_by_id == world.leader.id
    page = text(client.get(f"/evaluations/{submitted.id}"))
    assert "市招商引资项目评审会 2026 年第 3 次" in page
    assert "参会：张市长" in page


def test_a_veto_item_that_fails_makes_passing_impossible(world, login, db_session):
    evaluation = submitted_evaluation(
        world.project_a, world.officer_a, world.taskforce_x, overrides={VETO_ITEM: Verdict.FAILS}
    )
    db_session.commit()
    client = login(world.leader)
    page = text(client.get(f"/evaluations/{evaluation.id}"))
    assert f"一票否决事项“{VETO_ITEM}”为不符合，不能作出“通过”决策" in page

    response = client.post(f"/evaluations/{evaluation.id}/decision", data=decision_form())
    assert response.status_code == 400
    assert f"一票否决事项“{VETO_ITEM}”为不符合，不能通过" in text(response)
    assert state_of(evaluation) is EvaluationState.SUBMITTED
    assert count(Decision) == 0

    response = client.post(
        f"/evaluations/{evaluation.id}/decision", data=decision_form("REJECTED", opinion="")
    )
    assert response.status_code == 400
    assert "“否决”须写明意见" in text(response)

    response = client.post(
        f"/evaluations/{evaluation.id}/decision",
        data=decision_form("REJECTED", opinion="投资主体为失信被执行人"),
    )
    assert response.status_code == 302
    assert state_of(evaluation) is EvaluationState.REJECTED


def test_a_failing_item_without_veto_does_not_block_passing(world, db_session):
    evaluation, decision = decided_evaluation(
        world.project_a,
        world.officer_a,
        world.taskforce_x,
        world.leader,
        DecisionOutcome.PASSED,
        overrides={PLAIN_ITEM: Verdict.FAILS},
    )
    assert decision.outcome is DecisionOutcome.PASSED
    assert evaluation.state is EvaluationState.PASSED


def test_returning_reopens_the_evaluation_and_keeps_the_decision(
    world, login, db_session, submitted
):
    client = login(world.leader)
    response = client.post(
        f"/evaluations/{submitted.id}/decision",
        data=decision_form("RETURNED", opinion="补充近三年审计报告"),
    )
    assert response.status_code == 302
    assert state_of(submitted) is EvaluationState.RETURNED

    client = login(world.officer_a)
    page = text(client.get(f"/evaluations/{submitted.id}"))
    assert 'id="checklist"' in page
    assert "补充近三年审计报告" in page
    data = answers_form(submitted, {"近三年财务状况": (Verdict.MOSTLY, "已补充审计报告", "4")})
    assert client.post(f"/evaluations/{submitted.id}/answers", data=data).status_code == 302

    client = login(world.taskforce_x)
    assert (
        client.post(f"/evaluations/{submitted.id}/submit", data={"confirm": "y"}).status_code == 302
    )
    assert state_of(submitted) is EvaluationState.SUBMITTED

    client = login(world.leader)
    response = client.post(f"/evaluations/{submitted.id}/decision", data=decision_form())
    assert response.status_code == 302
    assert state_of(submitted) is EvaluationState.PASSED
    outcomes = db_session.scalars(
        sa.select(Decision.outcome)
        .where(Decision.evaluation_id == submitted.id)
        .order_by(Decision.id)
    ).all()
    assert outcomes == [DecisionOutcome.RETURNED, DecisionOutcome.PASSED]
    page = text(client.get(f"/evaluations/{submitted.id}"))
    assert "补充近三年审计报告" in page  # the earlier decision stays in the history
    assert page.count("市招商引资项目评审会 2026 年第 3 次") == 2


@pytest.mark.parametrize("outcome", [DecisionOutcome.PASSED, DecisionOutcome.REJECTED])
def test_a_decided_evaluation_is_frozen(world, login, db_session, uploads, outcome):
    evaluation, _ = decided_evaluation(
        world.project_a, world.officer_a, world.taskforce_x, world.leader, outcome
    )
    db_session.commit()
    answer = answer_for(evaluation, PLAIN_ITEM)
    before = (answer.verdict, answer.comment, answer.score)

    for user in (world.officer_a, world.taskforce_x, world.admin):
        client = login(user)
        data = answers_form(evaluation, {PLAIN_ITEM: (Verdict.FAILS, "改为不符合", "0")})
        response = client.post(f"/evaluations/{evaluation.id}/answers", data=data)
        assert response.status_code == 400
        assert f"评估处于“{outcome.label}”状态，不能修改" in text(response)
        response = client.post(
            f"/evaluations/{evaluation.id}/evidence",
            data={"answer_id": str(answer.id), "file": (io.BytesIO(PDF), "补充材料.pdf")},
            content_type="multipart/form-data",
        )
        assert response.status_code == 400
        assert f"评估处于“{outcome.label}”状态，不能修改" in text(response)
        if user.role is not Role.OFFICER:
            assert (
                client.post(
                    f"/evaluations/{evaluation.id}/submit", data={"confirm": "y"}
                ).status_code
                == 400
            )
        page = text(client.get(f"/evaluations/{evaluation.id}"))
        assert 'id="checklist"' not in page
        assert 'id="evidence"' not in page
        assert "提交领导集体决策</button>" not in page
        assert "评估已决策，内容已冻结" in page

    client = login(world.leader)
    page = text(client.get(f"/evaluations/{evaluation.id}"))
    assert 'id="decision"' not in page
    response = client.post(
        f"/evaluations/{evaluation.id}/decision", data=decision_form("RETURNED", opinion="再议")
    )
    assert response.status_code == 409

    db_session.expire_all()
    answer = answer_for(evaluation, PLAIN_ITEM)
    assert (answer.verdict, answer.comment, answer.score) == before
    assert answer.files == []
    assert state_of(evaluation) is EvaluationState[outcome.name]
    assert count(Decision) == 1
    assert not uploads.exists() or not any(p.is_file() for p in uploads.rglob("*"))


def test_a_new_evaluation_after_a_rejection_and_the_old_one_stays_readable(
    world, login, db_session
):
    old, _ = decided_evaluation(
        world.project_a,
        world.officer_a,
        world.taskforce_x,
        world.leader,
        DecisionOutcome.REJECTED,
        overrides={VETO_ITEM: Verdict.FAILS},
    )
    db_session.commit()
    client = login(world.officer_a)
    page = text(client.get(f"/projects/{world.project_a.id}"))
    assert "发起评估</button>" in page
    response = client.post(f"/projects/{world.project_a.id}/evaluations")
    assert response.status_code == 302
    new = services.open_evaluation(world.project_a)
    assert new.id != old.id and new.state is EvaluationState.DRAFT

    page = text(client.get(f"/evaluations/{old.id}"))
    assert "否决" in page and "核查意见：信用与涉诉记录" in page
    page = text(client.get(f"/projects/{world.project_a.id}"))
    assert f"评估 #{old.id}" in page and f"评估 #{new.id}" in page


# Concurrent decisions ----------------------------------------------------------------------------------


def test_a_second_decision_gets_a_conflict_and_one_decision_is_recorded(world, db_session):
    evaluation = submitted_evaluation(world.project_a, world.officer_a, world.taskforce_x)
    db_session.commit()
    other_leader = factories.user(Role.LEADER)
    decide(world.leader, evaluation, DecisionOutcome.PASSED, **decision_values())
    db_session.commit()

    # The second leader's request loaded the evaluation before the first decision was saved.
    set_committed_value(evaluation, "state", EvaluationState.SUBMITTED)
    with pytest.raises(ConflictError, match="已被他人处理"):
        decide(other_leader, evaluation, DecisionOutcome.REJECTED, **decision_values())
    db_session.rollback()

    # And one that loads it afterwards is told it is no longer waiting.
    with pytest.raises(ConflictError, match="不在待决策状态"):
        decide(other_leader, evaluation, DecisionOutcome.RETURNED, **decision_values())
    db_session.rollback()

    assert count(Decision, Decision.evaluation_id == evaluation.id) == 1
    assert state_of(evaluation) is EvaluationState.PASSED
    assert len(audit("evaluation_decided", evaluation)) == 1


def test_a_transition_from_a_stale_state_raises_a_conflict(world, db_session, submitted):
    with pytest.raises(ConflictError):
        services._transition(
            submitted,
            (EvaluationState.DRAFT, EvaluationState.RETURNED),
            {"state": EvaluationState.SUBMITTED},
        )
    assert submitted.state is EvaluationState.SUBMITTED
    services._transition(
        submitted, (EvaluationState.SUBMITTED,), {"state": EvaluationState.RETURNED}
    )
    assert submitted.state is EvaluationState.RETURNED


def test_the_second_leader_on_the_page_gets_a_clear_message(world, login, db_session, submitted):
    other_leader = factories.user(Role.LEADER, username="leader_2")
    db_session.commit()
    client = login(world.leader)
    response = client.post(f"/evaluations/{submitted.id}/decision", data=decision_form())
    assert response.status_code == 302
    client = login(other_leader)
    response = client.post(
        f"/evaluations/{submitted.id}/decision", data=decision_form("REJECTED", opinion="不同意")
    )
    assert response.status_code == 409
    assert "该评估当前为“通过”，不在待决策状态" in text(response)
    assert count(Decision, Decision.evaluation_id == submitted.id) == 1
    assert state_of(submitted) is EvaluationState.PASSED


@contextmanager
def committed_database(tmp_path):
    """An engine on a new, empty database of the suite's kind with the models' schema, dropped
    afterwards. The race below needs committed data, which the suite's rolled-back test
    transaction cannot give."""
    main_url = os.environ.get("CRM_TEST_DATABASE_URL")
    if not main_url:
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'race.sqlite3'}")
        try:
            db.metadata.create_all(engine)
            yield engine
        finally:
            engine.dispose()
        return

    url = sa.make_url(_database_url(main_url))
    if url.get_backend_name() != "postgresql":
        pytest.skip(f"no separate-database recipe for {url.get_backend_name()}")
    name = f"crm_race_test_{os.getpid()}_{secrets.token_hex(4)}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE template0')
        engine = sa.create_engine(url.set(database=name))
        try:
            db.metadata.create_all(engine)
            yield engine
        finally:
            engine.dispose()
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


@contextmanager
def sessions_on(engine):
    """db.session becomes a thread-local session on `engine` for the duration."""
    saved = db.session
    db.session = scoped_session(sessionmaker(bind=engine))
    try:
        yield db.session
    finally:
        db.session.remove()
        db.session = saved


def test_two_leaders_deciding_at_the_same_moment(app, tmp_path):
    """Two threads, each its own session and connection, both holding the evaluation in 待决策
    when they decide: exactly one decision is recorded, the other gets ConflictError."""
    with committed_database(tmp_path) as engine, sessions_on(engine) as session:
        world = factories.World.build()
        second_leader = factories.user(Role.LEADER, username="leader_2")
        evaluation = submitted_evaluation(world.project_a, world.officer_a, world.taskforce_x)
        session.commit()
        evaluation_id = evaluation.id
        leaders = {
            DecisionOutcome.PASSED: world.leader.id,
            DecisionOutcome.REJECTED: second_leader.id,
        }
        session.remove()

        both_loaded = threading.Barrier(2, timeout=30)
        results: dict[DecisionOutcome, object] = {}

        def leader_decides(outcome: DecisionOutcome) -> None:
            with app.app_context():
                try:
                    user = db.session.get(User, leaders[outcome])
                    loaded = db.session.get(Evaluation, evaluation_id)
                    assert loaded.state is EvaluationState.SUBMITTED
                    both_loaded.wait()
                    decide(user, loaded, outcome, **decision_values(opinion="会议意见"))
                    db.session.commit()
                    results[outcome] = "decided"
                except BaseException as exc:  # reported below, in the test's thread
                    db.session.rollback()
                    results[outcome] = exc
                finally:
                    db.session.remove()

        threads = [threading.Thread(target=leader_decides, args=(o,)) for o in leaders]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not any(t.is_alive() for t in threads)

        winners = [o for o, r in results.items() if r == "decided"]
        losers = [r for r in results.values() if r != "decided"]
        assert len(winners) == 1, results
        assert len(losers) == 1 and isinstance(losers[0], ConflictError), results

        decisions = session.scalars(
            sa.select(Decision).where(Decision.evaluation_id == evaluation_id)
        ).all()
        assert [d.outcome for d in decisions] == winners
        assert session.get(Evaluation, evaluation_id).state is EvaluationState[winners[0].name]
        assert (
            session.scalar(
                sa.select(sa.func.count())
                .select_from(AuditEntry)
                .where(AuditEntry.action == "evaluation_decided")
            )
            == 1
        )


# Queries per page -------------------------------------------------------------------------------------


def _count_get(client, db_session, count_queries, url):
    db_session.commit()  # expires every loaded row, as a new request would find them
    with count_queries() as counter:
        response = client.get(url)
    assert response.status_code == 200
    return counter.count, text(response)


def test_the_queue_runs_the_same_queries_for_1_and_4_evaluations(
    world, login, db_session, count_queries
):
    def submitted_elsewhere(n):
        carrier = factories.carrier(f"载体{n}号")
        officer = factories.user(Role.OFFICER, carrier_=carrier)
        cluster = factories.cluster(f"集群{n}号")
        taskforce = factories.user(Role.TASKFORCE, cluster_=cluster)
        project = factories.project(carrier, cluster, officer, name=f"排队项目{n}")
        submitted_evaluation(project, officer, taskforce)

    client = login(world.leader)
    submitted_elsewhere(1)
    client.get("/evaluations/")  # warm up caches filled once per process
    few, page = _count_get(client, db_session, count_queries, "/evaluations/")
    assert page.count("排队项目") == 1
    for n in range(2, 5):
        submitted_elsewhere(n)
    many, page = _count_get(client, db_session, count_queries, "/evaluations/")
    assert page.count("排队项目") == 4
    assert many == few


def test_the_evaluation_page_runs_the_same_queries_however_much_is_filled(
    world, login, db_session, count_queries, uploads
):
    evaluation = submitted_evaluation(world.project_a, world.officer_a, world.taskforce_x)
    url = f"/evaluations/{evaluation.id}"
    client = login(world.leader)
    client.get(url)
    few, _ = _count_get(client, db_session, count_queries, url)

    # Back for rework: every item answered by a different user, evidence on every item,
    # and a decision history of several leaders.
    decide(world.leader, evaluation, DecisionOutcome.RETURNED, **decision_values())
    for i, answer in enumerate(load_answers(evaluation)):
        filler = factories.user(Role.TASKFORCE, cluster_=world.cluster_x)
        services.save_answers(
            filler,
            evaluation,
            {answer.id: services.AnswerInput(Verdict.MOSTLY, f"复核{i}", answer.item.max_score)},
        )
        stored = attach_agreement(world.project_a, filler, uploads)
        stored.kind = DocumentKind.EVIDENCE
        services.attach_evidence(filler, answer, stored)
    submit_evaluation(world.taskforce_x, evaluation)
    decide(factories.user(Role.LEADER), evaluation, DecisionOutcome.RETURNED, **decision_values())
    submit_evaluation(world.taskforce_x, evaluation)
    many, page = _count_get(client, db_session, count_queries, url)
    assert page.count("复核") == len(load_answers(evaluation))
    assert page.count("投资协议（签署版）.pdf") == len(load_answers(evaluation))
    assert many == few


# The 签约 gate -------------------------------------------------------------------------------------------


def sign(client, project):
    return client.post(
        f"/projects/{project.id}/stage",
        data={
            "to_stage": "SIGNED",
            "signed_amount": "30000",
            "signed_on": (today() - timedelta(days=1)).isoformat(),
        },
    )


def test_no_signing_without_an_evaluation(world, login, db_session):
    attracting(world.project_a, world.officer_a)
    db_session.commit()
    client = login(world.officer_a)
    assert "尚未开展项目评估" in text(client.get(f"/projects/{world.project_a.id}"))
    response = sign(client, world.project_a)
    assert response.status_code == 400
    assert "尚未开展项目评估：须经评估并由领导集体决策通过后方可签约" in text(response)
    db_session.expire_all()
    assert (world.project_a.stage, world.project_a.signed_amount) == (Stage.ATTRACTING, None)


@pytest.mark.parametrize("state", ["draft", "submitted", "returned", "rejected"])
def test_no_signing_until_the_evaluation_passed(world, login, db_session, state):
    if state == "draft":
        default_template()
        attracting(world.project_a, world.officer_a)
        start_evaluation(world.officer_a, world.project_a)
    elif state == "submitted":
        submitted_evaluation(world.project_a, world.officer_a, world.taskforce_x)
    else:
        decided_evaluation(
            world.project_a,
            world.officer_a,
            world.taskforce_x,
            world.leader,
            DecisionOutcome[state.upper()],
        )
    db_session.commit()
    label = EvaluationState[state.upper()].label
    client = login(world.officer_a)
    assert f"最近一次评估为“{label}”" in text(client.get(f"/projects/{world.project_a.id}"))
    response = sign(client, world.project_a)
    assert response.status_code == 400
    assert f"最近一次评估为“{label}”：须经集体决策通过后方可签约" in text(response)
    db_session.expire_all()
    assert world.project_a.stage is Stage.ATTRACTING


def test_signing_needs_the_agreement_after_the_evaluation_passed(world, login, db_session, uploads):
    passed_evaluation(world.project_a, world.officer_a, world.taskforce_x, world.leader)
    db_session.commit()
    client = login(world.officer_a)
    page = text(client.get(f"/projects/{world.project_a.id}"))
    assert "尚未上传已签署的投资协议" in page
    assert "尚未开展项目评估" not in page
    response = sign(client, world.project_a)
    assert response.status_code == 400
    assert "尚未上传已签署的投资协议" in text(response)
    db_session.expire_all()
    assert world.project_a.stage is Stage.ATTRACTING

    response = client.post(
        f"/projects/{world.project_a.id}/documents",
        data={"kind": "AGREEMENT", "file": (io.BytesIO(PDF), "投资协议.pdf")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    page = text(client.get(f"/projects/{world.project_a.id}"))
    assert "尚未上传已签署的投资协议" not in page
    response = sign(client, world.project_a)
    assert response.status_code == 302
    db_session.expire_all()
    assert world.project_a.stage is Stage.SIGNED
    assert world.project_a.signed_amount == Decimal("30000")


def test_an_archived_agreement_or_a_newer_evaluation_shuts_the_gate(
    world, login, db_session, uploads
):
    passed_evaluation(world.project_a, world.officer_a, world.taskforce_x, world.leader)
    agreement = attach_agreement(world.project_a, world.officer_a, uploads)
    db_session.commit()
    assert services.signing_gate(world.project_a) is None

    client = login(world.officer_a)
    assert client.post(f"/files/{agreement.id}/archive", data={"confirm": "y"}).status_code == 302
    db_session.expire_all()
    assert services.signing_gate(world.project_a) == "尚未上传已签署的投资协议"

    attach_agreement(world.project_a, world.officer_a, uploads)
    start_evaluation(world.officer_a, world.project_a)  # a new one, latest, not passed
    db_session.commit()
    response = sign(client, world.project_a)
    assert response.status_code == 400
    assert "最近一次评估为“草稿”" in text(response)


def test_the_service_path_into_signing_is_gated_too(world, db_session):
    attracting(world.project_a, world.officer_a)
    fields = {"signed_amount": Decimal("100"), "signed_on": today()}
    with pytest.raises(ServiceError, match="尚未开展项目评估"):
        move_stage(world.admin, world.project_a, Stage.SIGNED, fields=fields)
    assert world.project_a.stage is Stage.ATTRACTING


# Audit -----------------------------------------------------------------------------------------------------


def test_every_step_is_audited(world, login, db_session):
    default_template()
    attracting(world.project_a, world.officer_a)
    db_session.commit()
    client = login(world.officer_a)
    assert client.post(f"/projects/{world.project_a.id}/evaluations").status_code == 302
    evaluation = services.open_evaluation(world.project_a)
    data = answers_form(evaluation, {PLAIN_ITEM: (Verdict.MOSTLY, "尚可", "3")})
    assert client.post(f"/evaluations/{evaluation.id}/answers", data=data).status_code == 302
    fill_all(evaluation, world.taskforce_x)
    db_session.commit()
    client = login(world.taskforce_x)
    assert (
        client.post(f"/evaluations/{evaluation.id}/submit", data={"confirm": "y"}).status_code
        == 302
    )
    client = login(world.leader)
    response = client.post(f"/evaluations/{evaluation.id}/decision", data=decision_form())
    assert response.status_code == 302

    started = audit("evaluation_started", evaluation)
    assert [e.user_id for e in started] == [world.officer_a.id]
    filled = audit("evaluation_filled", evaluation)
    assert [e.user_id for e in filled] == [world.officer_a.id, world.taskforce_x.id]
    assert filled[0].changes[PLAIN_ITEM]["verdict"] == [None, "MOSTLY"]
    assert [e.user_id for e in audit("evaluation_submitted", evaluation)] == [world.taskforce_x.id]
    decided = audit("evaluation_decided", evaluation)
    assert [e.user_id for e in decided] == [world.leader.id]
    assert decided[0].changes["state"] == ["SUBMITTED", "PASSED"]


def test_items_of_an_evaluation_come_from_its_template_only(world, db_session, draft):
    """Answers exist for exactly the items of the version the evaluation was started on."""
    items = db_session.scalars(
        sa.select(ChecklistItem.id)
        .join(ChecklistItem.section)
        .where(ChecklistSection.template_id == draft.template_id)
    ).all()
    answered = db_session.scalars(
        sa.select(EvaluationAnswer.item_id).where(EvaluationAnswer.evaluation_id == draft.id)
    ).all()
    assert sorted(items) == sorted(answered)
