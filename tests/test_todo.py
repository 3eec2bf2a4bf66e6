"""待办: each role's home page lists its real work, in groups, each item linking to where it is
done; another 载体's or cluster's work never shows; an empty group says so in one line."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from crm.core import utcnow
from crm.evaluation.models import DecisionOutcome, Verdict
from crm.evaluation.services import start_evaluation
from crm.projects import lifecycle
from crm.projects.lifecycle import move_stage, reject_move
from crm.projects.models import ConflictBasis, ProjectConflict
from crm.projects.stages import Stage
from tests import factories
from tests.evaluation_factories import (
    attracting,
    decided_evaluation,
    default_template,
    submitted_evaluation,
)
from tests.factories import today
from tests.test_evaluation import VETO_ITEM


def section(html: str, key: str) -> str:
    """The group `key` of the 待办 page."""
    return html.split(f'id="{key}"', 1)[1].split("</section>", 1)[0]


@pytest.fixture
def no_entry_checks(monkeypatch):
    monkeypatch.setattr(lifecycle, "_entry_checks", {stage: [] for stage in Stage})


def test_an_officer_sees_a_returned_evaluation_and_a_rejected_move(
    world, db_session, login, no_entry_checks
):
    evaluation, _ = decided_evaluation(
        world.project_a,
        world.officer_a,
        world.taskforce_x,
        world.leader,
        DecisionOutcome.RETURNED,
    )
    other = factories.project(
        world.carrier_a, world.cluster_x, world.officer_a, world.channel, name="甲区电池项目"
    )
    move_stage(world.officer_a, other, Stage.ATTRACTING)
    claimed = move_stage(
        world.officer_a,
        other,
        Stage.SIGNED,
        fields={"signed_amount": Decimal("1000"), "signed_on": today()},
    )
    reject_move(world.taskforce_x, claimed, "协议未盖章")
    db_session.commit()

    html = login(world.officer_a).get("/").get_data(as_text=True)
    returned = section(html, "returned")
    assert world.project_a.name in returned
    assert f'href="/evaluations/{evaluation.id}"' in returned
    rejected = section(html, "rejected")
    assert "甲区电池项目" in rejected and "“签约”被驳回：协议未盖章" in rejected
    assert f'href="/projects/{other.id}#verification"' in rejected

    theirs = login(world.officer_b).get("/").get_data(as_text=True)
    assert "没有被退回的评估。" in theirs and "没有被驳回的阶段变更。" in theirs
    assert world.project_a.name not in theirs


def test_the_task_force_sees_evaluations_to_fill_moves_to_verify_and_conflicts(
    world, db_session, login, no_entry_checks
):
    default_template()
    attracting(world.project_a, world.officer_a)
    draft = start_evaluation(world.officer_a, world.project_a)
    second = factories.project(
        world.carrier_b, world.cluster_x, world.officer_b, world.channel, name="乙县储能项目"
    )
    move_stage(world.officer_b, second, Stage.ATTRACTING)
    move_stage(
        world.officer_b,
        second,
        Stage.SIGNED,
        fields={"signed_amount": Decimal("2000"), "signed_on": today()},
    )
    db_session.add(
        ProjectConflict(
            project_id=world.project_a.id, other_project_id=second.id, basis=ConflictBasis.NAME
        )
    )
    db_session.commit()

    html = login(world.taskforce_x).get("/").get_data(as_text=True)
    to_fill = section(html, "to_fill")
    assert world.project_a.name in to_fill and "填写清单并提交" in to_fill
    assert f'href="/evaluations/{draft.id}"' in to_fill
    to_verify = section(html, "to_verify")
    assert "乙县储能项目" in to_verify and "核实“签约”" in to_verify
    conflicts = section(html, "conflicts")
    assert "甲区光伏组件项目 / 乙县储能项目" in conflicts and "企业名称相同" in conflicts
    # the counts at the top of the page
    assert 'href="#to_verify">待甄别的阶段变更 <span class="count-chip busy">1</span>' in html

    other = login(world.taskforce_y).get("/").get_data(as_text=True)
    for line in ("没有待填写的评估。", "没有待甄别的阶段变更。", "没有未处理的冲突。"):
        assert line in other
    assert "乙县储能项目" not in other


def test_a_leader_sees_what_waits_for_the_decision_with_score_and_vetoes(world, db_session, login):
    evaluation = submitted_evaluation(
        world.project_a,
        world.officer_a,
        world.taskforce_x,
        overrides={VETO_ITEM: Verdict.FAILS},
    )
    db_session.commit()
    html = login(world.leader).get("/").get_data(as_text=True)
    decisions = section(html, "decisions")
    assert world.project_a.name in decisions
    assert f'href="/evaluations/{evaluation.id}#decision"' in decisions
    assert "一票否决 1 项" in decisions and "得分 " in decisions


def test_an_admin_sees_locked_accounts(world, db_session, login):
    world.officer_b.locked_until = utcnow() + timedelta(minutes=30)
    world.taskforce_y.locked_until = utcnow() - timedelta(minutes=1)  # expired: unlocked
    db_session.commit()
    html = login(world.admin).get("/").get_data(as_text=True)
    locked = section(html, "locked")
    assert world.officer_b.username in locked
    assert f'href="/admin/users/{world.officer_b.id}/edit"' in locked
    assert world.taskforce_y.username not in locked


def test_a_group_shows_its_first_items_and_links_to_all(world, db_session, login, app):
    from crm.todo import services

    app.config["STALE_AFTER_DAYS"] = 30
    for n in range(services.LIMIT + 2):
        p = factories.project(
            world.carrier_a, world.cluster_x, world.officer_a, world.channel, name=f"老项目{n:02d}"
        )
        p.created_at = utcnow() - timedelta(days=90)
    db_session.commit()
    html = login(world.officer_a).get("/").get_data(as_text=True)
    stale = section(html, "stale")
    assert stale.count("老项目") == services.LIMIT
    assert f"查看全部 {services.LIMIT + 2} 项</a>" in stale
    assert f'href="/projects/?stale=1&amp;officer={world.officer_a.id}"' in stale


def test_the_receiving_side_finds_a_hand_over_to_accept(world, db_session, login):
    from crm.projects.conflicts import handover_project

    project = world.project_a
    handover_project(
        world.taskforce_x,
        project,
        world.carrier_b,
        world.officer_b,
        "项目选址调整至乙县",
        loaded_version=project.version,
    )
    db_session.commit()
    html = login(world.officer_b).get("/").get_data(as_text=True)
    handovers = section(html, "handovers")
    assert project.name in handovers
    assert f"接收或退回：{world.carrier_a.name} → {world.carrier_b.name}" in handovers
    assert f'href="/projects/{project.id}#handover"' in handovers
    # the sender waits; it has nothing to accept
    assert "没有待接收的流转。" in login(world.officer_a).get("/").get_data(as_text=True)


def test_an_admin_sees_the_failed_jobs(world, db_session, login):
    from crm.jobs.models import JobRun, JobStatus

    db_session.add(
        JobRun(
            task_id="t1",
            name="send_mail",
            summary="officer_a",
            status=JobStatus.FAILED,
            error="SMTPConnectError: 连接被拒绝",
            finished_at=utcnow(),
        )
    )
    db_session.commit()
    failed = section(login(world.admin).get("/").get_data(as_text=True), "failed_jobs")
    assert "发送邮件" in failed and "SMTPConnectError: 连接被拒绝" in failed
    assert 'href="/admin/jobs?status=FAILED"' in failed


# Tasks: mine, 督办, the reminders, the top bar ------------------------------------------------------


def _task(world, assignee, title, due, creator=None):
    from crm.tasks.services import create_task

    return create_task(
        creator or world.officer_a,
        world.project_a,
        {"title": title, "due_on": due, "assignee": assignee},
    )


def _overdue(task, days):
    task.due_on = today() - timedelta(days=days)  # created earlier, overdue since


def test_my_tasks_lead_the_page_and_the_top_bar_counts_them(world, db_session, login):
    first = _task(world, world.taskforce_x, "审核尽调材料", today())
    _overdue(_task(world, world.taskforce_x, "复核用地指标", today()), 3)
    _task(world, world.admin, "别人的任务", today(), creator=world.leader)
    db_session.commit()
    html = login(world.taskforce_x).get("/").get_data(as_text=True)
    tasks = section(html, "tasks")
    assert tasks.index("复核用地指标") < tasks.index("审核尽调材料")  # due first
    assert '<span class="badge stale">逾期 3 天</span>' in tasks
    assert f'href="/tasks/{first.id}"' in tasks
    assert 'aria-label="2 项任务">2</span>' in html  # the top bar
    assert 'aria-label="2 条未读">2</span>' in html  # assigned: told twice


def test_tasks_overdue_a_week_go_to_the_leaders(world, db_session, login, app):
    app.config["ESCALATE_AFTER_DAYS"] = 7
    _overdue(_task(world, world.taskforce_x, "逾期七天的任务", today()), 7)
    _overdue(_task(world, world.taskforce_x, "逾期六天的任务", today()), 6)
    db_session.commit()
    escalated = section(login(world.leader).get("/").get_data(as_text=True), "escalated")
    assert "逾期七天的任务" in escalated and "逾期六天的任务" not in escalated
    assert f"承办人 {world.taskforce_x.display_name}" in escalated
    assert "督办：逾期 7 天以上的任务" in escalated
    assert "逾期七天的任务" in section(
        login(world.admin).get("/").get_data(as_text=True), "escalated"
    )


def test_a_task_due_tomorrow_is_reminded_once(world, db_session):
    import sqlalchemy as sa

    from crm.notifications.models import Notification, NotificationKind
    from crm.tasks.services import send_due_reminders

    _task(world, world.taskforce_x, "明天交材料", today() + timedelta(days=1))
    _task(world, world.taskforce_x, "后天交材料", today() + timedelta(days=2))
    assert send_due_reminders(today()) == 1
    assert send_due_reminders(today()) == 0  # a second run (a retry) tells nobody again
    (reminder,) = db_session.scalars(
        sa.select(Notification).where(Notification.kind == NotificationKind.DUE_REMINDER)
    )
    assert reminder.user_id == world.taskforce_x.id
    assert "任务“明天交材料”明天" in reminder.text


def test_an_open_task_follows_its_project_to_the_receiving_officer(world, db_session, login):
    """After a hand-over, the old officer's open task on the project passes to the new
    officer (who is told); the task force's stays with it: both still read the project."""
    import sqlalchemy as sa

    from crm.notifications.models import Notification, NotificationKind
    from crm.projects.conflicts import accept_handover, handover_project

    mine = _task(world, world.officer_a, "补充可研报告", today(), creator=world.taskforce_x)
    theirs = _task(world, world.taskforce_x, "组织要素会商", today())
    project = world.project_a
    offered = handover_project(
        world.taskforce_x,
        project,
        world.carrier_b,
        world.officer_b,
        "项目选址调整至乙县",
        loaded_version=project.version,
    )
    accept_handover(world.leader, offered, world.officer_b)
    db_session.commit()
    assert mine.assignee_id == world.officer_b.id
    assert theirs.assignee_id == world.taskforce_x.id
    told = db_session.scalars(
        sa.select(Notification.text).where(
            Notification.user_id == world.officer_b.id,
            Notification.kind == NotificationKind.TASK_ASSIGNED,
        )
    ).all()
    assert "任务“补充可研报告”（甲区光伏组件项目）随项目转由您负责" in told, told
    html = login(world.officer_a).get("/").get_data(as_text=True)
    assert "补充可研报告" not in html and "没有待办的任务。" in html
