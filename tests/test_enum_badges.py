"""Enums carry their label and badge; templates compare no names (issue 13, item 8)."""

from __future__ import annotations

from decimal import Decimal

from crm.auth.models import Role
from crm.evaluation.models import EvaluationState, Verdict
from crm.projects.models import ElementStatus
from crm.projects.stages import STAGE_REQUIRED_FIELDS, Stage, Status, Verification
from tests import factories
from tests.evaluation_factories import attracting


def text(response) -> str:
    return response.get_data(as_text=True)


def test_each_enum_says_its_badge():
    assert [s.badge for s in Status] == ["", "warn", "warn", "warn"]
    assert EvaluationState.PASSED.badge == "ok"
    assert EvaluationState.REJECTED.badge == "stale"
    assert EvaluationState.SUBMITTED.badge == "warn"
    assert Verification.VERIFIED.badge == "ok"
    assert Verification.REJECTED.badge == "stale"
    assert ElementStatus.SECURED.badge == "ok"
    assert Verdict.FAILS.badge == "stale"
    assert Verdict.CONFORMS.badge == ""
    assert [m.label for m in Status] == ["正常", "暂缓", "终止", "流失"]


def test_the_move_form_asks_for_what_the_next_stage_requires(world, login, db_session, monkeypatch):
    """The fields of the 变更阶段 form come from STAGE_REQUIRED_FIELDS, not a second list."""
    attracting(world.project_a, world.officer_a)
    db_session.commit()
    monkeypatch.setitem(
        STAGE_REQUIRED_FIELDS,
        Stage.SIGNED,
        {"signed_amount": "签约金额(万元)", "started_on": "开工日期"},
    )
    page = text(login(world.officer_a).get(f"/projects/{world.project_a.id}"))
    assert 'id="stage-signed_amount"' in page
    assert 'id="stage-started_on"' in page
    assert 'id="stage-signed_on"' not in page
    assert "进入签约时必填" in page


def test_a_carrier_named_like_the_total_row_is_not_styled_as_the_total(world, login, db_session):
    """The performance table marks its own total row, not any row whose name is 合计."""
    odd = factories.carrier("合计")
    officer = factories.user(Role.OFFICER, carrier_=odd, username="officer_odd")
    factories.project(odd, world.cluster_x, officer, world.channel, total_investment=Decimal(1))
    db_session.commit()
    page = text(login(world.leader).get("/dashboard/"))
    assert "<td>合计</td>" in page
    # the pipeline's total and the carriers' total, not the carrier's own row
    assert page.count('<tr class="total"><td>合计</td>') == 2
