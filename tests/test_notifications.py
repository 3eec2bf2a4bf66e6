"""通知: who is told what, never anyone who may not read the project; the top bar and the list."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from crm.auth.models import Role
from crm.evaluation.models import DecisionOutcome, Verdict
from crm.notifications.models import Notification, NotificationKind
from crm.notifications.services import mark_all_read, notify, unread_count
from crm.projects import lifecycle
from crm.projects.lifecycle import move_stage, reject_move, verify_move
from crm.projects.stages import Stage
from tests import factories
from tests.evaluation_factories import decided_evaluation, submitted_evaluation
from tests.factories import today
from tests.test_evaluation import VETO_ITEM


def received(db_session, kind=None) -> dict[str, list[str]]:
    """username → the texts of the notifications that user received (of `kind`)."""
    query = sa.select(Notification).order_by(Notification.id)
    if kind is not None:
        query = query.where(Notification.kind == kind)
    out: dict[str, list[str]] = {}
    for n in db_session.scalars(query):
        out.setdefault(n.user.username, []).append(n.text)
    return out


def everybody(world):
    return [
        world.admin,
        world.leader,
        world.officer_a,
        world.officer_b,
        world.taskforce_x,
        world.taskforce_y,
    ]


@pytest.mark.parametrize("kind", list(NotificationKind))
def test_no_kind_reaches_a_user_who_cannot_read_the_project(world, db_session, kind):
    """Told to everyone, a notification about project A (载体 甲区, cluster 新能源) reaches only
    those who read it: never the officer of another 载体 or the task force of another cluster,
    nor the one who did it."""
    disabled = factories.user(Role.LEADER, username="retired", is_active=False)
    notify(
        kind,
        [*everybody(world), disabled, None, world.leader],
        project=world.project_a,
        actor=world.taskforce_x,
        text="甲区光伏组件项目：测试",
        url=f"/projects/{world.project_a.id}",
    )
    assert set(received(db_session)) == {"admin", "leader", "officer_a"}


def test_a_key_makes_a_retried_reminder_arrive_once(world, db_session):
    for _ in range(2):
        notify(
            NotificationKind.DUE_REMINDER,
            [world.officer_a],
            project=world.project_a,
            actor=None,
            text="明天到期",
            url="/",
            key="reminder:1:2026-12-08",
        )
    assert received(db_session) == {"officer_a": ["明天到期"]}


def test_a_notification_links_only_into_the_app(world, db_session):
    for url in ("https://example.org/", "//example.org/", "javascript:alert(1)"):
        with pytest.raises(ValueError):
            notify(
                NotificationKind.DUE_REMINDER,
                [world.officer_a],
                project=None,
                actor=None,
                text="x",
                url=url,
            )


# What the services tell ------------------------------------------------------------------------


def test_a_submitted_evaluation_is_told_to_the_leaders_with_its_score(world, db_session):
    factories.user(Role.LEADER, username="leader2")
    submitted_evaluation(
        world.project_a,
        world.officer_a,
        world.taskforce_x,
        overrides={VETO_ITEM: Verdict.FAILS},
    )
    told = received(db_session, NotificationKind.EVALUATION_SUBMITTED)
    assert set(told) == {"leader", "leader2"}
    assert "甲区光伏组件项目：评估已提交待决策（得分" in told["leader"][0]
    assert "一票否决 1 项" in told["leader"][0]


def test_a_decision_is_told_to_the_officer_and_the_task_force(world, db_session):
    decided_evaluation(
        world.project_a, world.officer_a, world.taskforce_x, world.leader, DecisionOutcome.PASSED
    )
    told = received(db_session, NotificationKind.DECISION_RECORDED)
    assert set(told) == {"officer_a", "taskforce_x"}
    assert told["officer_a"] == [
        "甲区光伏组件项目：集体决策“通过”（市招商引资项目评审会 2026 年第 3 次）"
    ]


@pytest.fixture
def no_entry_checks(monkeypatch):
    monkeypatch.setattr(lifecycle, "_entry_checks", {stage: [] for stage in Stage})


def _claimed_signing(world):
    move_stage(world.officer_a, world.project_a, Stage.ATTRACTING)
    return move_stage(
        world.officer_a,
        world.project_a,
        Stage.SIGNED,
        fields={"signed_amount": Decimal("30000"), "signed_on": today() - timedelta(days=5)},
    )


def test_a_verified_move_is_told_to_the_officer(world, db_session, no_entry_checks):
    verify_move(world.taskforce_x, _claimed_signing(world))
    assert received(db_session, NotificationKind.MOVE_VERIFIED) == {
        "officer_a": ["甲区光伏组件项目：“签约”已通过甄别"]
    }


def test_a_rejected_move_is_told_to_the_officer_with_the_reason(world, db_session, no_entry_checks):
    reject_move(world.taskforce_x, _claimed_signing(world), "协议未盖章")
    assert received(db_session, NotificationKind.MOVE_REJECTED) == {
        "officer_a": ["甲区光伏组件项目：“签约”被甄别驳回，退回“招引”：协议未盖章"]
    }


# The pages ---------------------------------------------------------------------------------------


def _tell(world, user, text="任务：准备考察材料"):
    return notify(
        NotificationKind.TASK_ASSIGNED,
        [user],
        project=world.project_a,
        actor=world.taskforce_x,
        text=text,
        url=f"/projects/{world.project_a.id}",
    )[0]


def test_the_top_bar_counts_unread_and_the_list_opens_one(world, db_session, client, login):
    first = _tell(world, world.officer_a)
    _tell(world, world.officer_a, "任务：联系企业")
    db_session.commit()
    login(world.officer_a)
    page = client.get("/projects/").get_data(as_text=True)
    assert 'aria-label="2 条未读"' in page
    listing = client.get("/notifications/").get_data(as_text=True)
    assert "任务：准备考察材料" in listing and "任务：联系企业" in listing
    assert world.taskforce_x.display_name in listing
    response = client.post(f"/notifications/{first.id}/open")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/projects/{world.project_a.id}")
    assert unread_count(world.officer_a) == 1
    assert 'aria-label="1 条未读"' in client.get("/projects/").get_data(as_text=True)
    unread = client.get("/notifications/?unread=1").get_data(as_text=True)
    assert "任务：联系企业" in unread and "任务：准备考察材料" not in unread


def test_nobody_opens_another_users_notification(world, db_session, client, login):
    theirs = _tell(world, world.officer_a)
    db_session.commit()
    login(world.leader)
    assert client.post(f"/notifications/{theirs.id}/open").status_code == 404
    db_session.refresh(theirs)
    assert theirs.read_at is None


def test_one_of_a_project_no_longer_readable_opens_the_list(world, db_session, client, login):
    notification = _tell(world, world.officer_a)
    world.project_a.carrier_id = world.carrier_b.id  # handed over since
    db_session.commit()
    login(world.officer_a)
    response = client.post(f"/notifications/{notification.id}/open", follow_redirects=True)
    assert response.status_code == 200
    assert "该项目已删除或已不在您的范围内" in response.get_data(as_text=True)


def test_mark_all_read(world, db_session, client, login):
    for n in range(3):
        _tell(world, world.officer_a, f"任务{n}")
    _tell(world, world.admin)
    db_session.commit()
    login(world.officer_a)
    page = client.post("/notifications/read-all", follow_redirects=True).get_data(as_text=True)
    assert "已将 3 条通知标为已读" in page
    assert unread_count(world.officer_a) == 0
    assert unread_count(world.admin) == 1  # nobody else's
    assert mark_all_read(world.officer_a) == 0


def test_an_empty_list_says_so(world, client, login):
    login(world.officer_b)
    assert "还没有通知。" in client.get("/notifications/").get_data(as_text=True)
    assert "没有未读通知。" in client.get("/notifications/?unread=1").get_data(as_text=True)


def test_the_unread_count_is_one_indexed_query(world, db_session, app, count_queries):
    _tell(world, world.officer_a)
    db_session.flush()
    with count_queries() as counter:
        assert unread_count(world.officer_a) == 1
    assert counter.count == 1
    if db_session.bind.dialect.name != "sqlite":
        return  # the plan below is SQLite's (tests/test_query_plans.py)
    plan = " ".join(
        row[3]
        for row in db_session.execute(
            sa.text(
                "EXPLAIN QUERY PLAN SELECT count(*) FROM notifications"
                " WHERE user_id = :u AND read_at IS NULL"
            ),
            {"u": world.officer_a.id},
        )
    )
    assert "COVERING INDEX ix_notifications_user_id_read_at_id" in plan
