"""Hand-over acceptance (流转): an offered project waits for the receiving 载体, which accepts
(naming the 责任人) or declines with a reason; the sender may withdraw. Meanwhile the project,
its officer and its statistics stay with the sending 载体; past results stay credited to the
officer in charge when they happened. Who is notified of offers, decisions and conflicts."""

from __future__ import annotations

import re
from datetime import date
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa

from crm.audit.models import AuditEntry
from crm.auth.models import Role
from crm.core import local_today
from crm.dashboard.services import build_dashboard
from crm.decisions import AlreadyDecided
from crm.extensions import db
from crm.notifications.models import Notification, NotificationKind
from crm.projects import lifecycle
from crm.projects.conflicts import (
    accept_handover,
    count_pending_handovers_for,
    decline_handover,
    handover_project,
    pending_handovers_for,
    record_conflicts,
    withdraw_handover,
)
from crm.projects.models import Handover, HandoverState, Project, ProjectConflict, StageChange
from crm.projects.registration import NewProject, register_projects
from crm.projects.stages import Stage
from tests import factories
from tests.test_concurrency import _one_won, race_each
from tests.test_conflicts import handover_form
from tests.test_dashboard import advance
from tests.test_evaluation import committed_database, sessions_on


def text(response) -> str:
    return response.get_data(as_text=True)


def offer(world, project=None, by=None) -> Handover:
    """Project A (载体 A, cluster X) offered to 载体 B, officer_b proposed."""
    project = project or world.project_a
    return handover_project(
        by or world.taskforce_x,
        project,
        world.carrier_b,
        world.officer_b,
        "项目选址调整至乙县工业园",
        loaded_version=project.version,
    )


@pytest.fixture
def offered(world, db_session) -> Handover:
    handover = offer(world)
    db_session.commit()
    return handover


def urls(handover: Handover) -> dict[str, str]:
    base = f"/projects/{handover.project_id}/handovers/{handover.id}"
    return {what: f"{base}/{what}" for what in ("accept", "decline", "withdraw")}


def notified(kind: NotificationKind) -> dict[int, Notification]:
    return {
        n.user_id: n
        for n in db.session.scalars(sa.select(Notification).where(Notification.kind == kind))
    }


# While it waits ---------------------------------------------------------------------------------


def test_a_pending_hand_over_leaves_the_project_with_the_sender(world, login, offered, db_session):
    project = world.project_a
    db_session.expire_all()
    assert (project.carrier_id, project.officer_id) == (world.carrier_a.id, world.officer_a.id)

    # Both 载体 see it as 流转中, on the project page and in the list.
    sender = login(world.officer_a)
    page = text(sender.get(f"/projects/{project.id}"))
    assert "流转中" in page and "待接收" in page and "接收项目" not in page
    assert sender.get(f"/projects/{project.id}/edit").status_code == 200  # still theirs
    row = re.search(
        rf"<tr>(?:(?!</tr>).)*{project.name}.*?</tr>", text(sender.get("/projects/")), re.S
    )
    assert row and "流转中" in row.group(0)
    other = re.search(
        rf"<tr>(?:(?!</tr>).)*{world.project_b.name}.*?</tr>",
        text(login(world.leader).get("/projects/")),
        re.S,
    )
    assert other and "流转中" not in other.group(0)

    # The receiving 载体's officer opens it to decide, and does nothing else on it.
    receiver = login(world.officer_b)
    page = text(receiver.get(f"/projects/{project.id}"))
    assert "流转中" in page and "接收项目" in page and "退回" in page and "撤回流转" not in page
    assert project.name not in text(receiver.get("/projects/"))  # not in its 载体's list
    assert receiver.get(f"/projects/{project.id}/edit").status_code == 403
    response = receiver.post(f"/projects/{project.id}/followups", data={"summary": "x"})
    assert response.status_code == 403
    # An officer of a third 载体 does not even see it.
    third = factories.carrier("丙园区")
    outsider = factories.user(Role.OFFICER, carrier_=third, username="officer_c")
    db_session.commit()
    assert login(outsider).get(f"/projects/{project.id}").status_code == 404


def test_the_proposed_officer_is_preselected(world, login, offered, db_session):
    second = factories.user(Role.OFFICER, carrier_=world.carrier_b, username="officer_b2")
    db_session.commit()
    page = text(login(world.officer_b).get(f"/projects/{world.project_a.id}"))
    select = re.search(r'<select[^>]*id="accept-officer_id".*?</select>', page, re.S).group(0)
    assert re.search(
        rf'<option selected value="{world.officer_b.id}"|<option value="{world.officer_b.id}" selected',
        select,
    )
    assert second.display_name in select and world.officer_a.display_name not in select


def test_a_second_hand_over_cannot_start_while_one_waits(world, login, offered, db_session):
    leader = login(world.leader)
    assert "流转至其他载体" not in text(leader.get(f"/projects/{world.project_a.id}"))
    db_session.expire_all()
    third = factories.carrier("丙园区")
    officer_c = factories.user(Role.OFFICER, carrier_=third, username="officer_c")
    db_session.commit()
    data = handover_form(world, world.project_a, to_carrier_id=third.id, officer_id=officer_c.id)
    response = leader.post(f"/projects/{world.project_a.id}/handover", data=data)
    assert response.status_code == 409 and "项目已在流转中" in text(response)
    assert db_session.scalar(sa.select(sa.func.count(Handover.id))) == 1


def test_the_database_keeps_one_pending_hand_over_per_project(world, offered, db_session):
    db_session.add(
        Handover(
            project_id=offered.project_id,
            from_carrier_id=world.carrier_a.id,
            to_carrier_id=world.carrier_b.id,
            reason="再次流转",
            state=HandoverState.PENDING,
        )
    )
    with pytest.raises(sa.exc.IntegrityError):
        db_session.flush()


# Accepting, declining, withdrawing ---------------------------------------------------------------


@pytest.mark.parametrize("role", ["officer_b", "taskforce_x", "leader", "admin"])
def test_who_may_accept(world, login, offered, db_session, role):
    second = factories.user(Role.OFFICER, carrier_=world.carrier_b, username="officer_b2")
    db_session.commit()
    response = login(getattr(world, role)).post(
        urls(offered)["accept"], data={"officer_id": second.id}
    )
    assert response.status_code == 302
    db_session.expire_all()
    project = world.project_a
    assert (project.carrier_id, project.officer_id) == (world.carrier_b.id, second.id)
    assert offered.state is HandoverState.ACCEPTED
    assert offered.decided_by_id == getattr(world, role).id and offered.officer_id == second.id
    assert offered.decided_at is not None
    entry = db_session.scalar(
        sa.select(AuditEntry).where(AuditEntry.action == "project_handed_over")
    )
    assert entry.changes["carrier_id"] == [world.carrier_a.id, world.carrier_b.id]
    # The sending 载体's officer no longer opens it; its list shows it no more.
    sender = login(world.officer_a)
    assert sender.get(f"/projects/{project.id}").status_code == 404


@pytest.mark.parametrize(("role", "status"), [("officer_a", 403), ("taskforce_y", 404)])
def test_who_may_not_accept(world, login, offered, db_session, role, status):
    for what in ("accept", "decline"):
        data = {"officer_id": world.officer_b.id, "reason": "不接收"}
        response = login(getattr(world, role)).post(urls(offered)[what], data=data)
        assert response.status_code == status
    db_session.expire_all()
    assert offered.state is HandoverState.PENDING


@pytest.mark.parametrize(
    ("officer", "message"),
    [
        ("none", "请选择接收载体的招商专员作为责任人"),
        ("officer_a", "责任人须是乙县的招商专员"),  # of the sending 载体
        ("disabled", "请选择在岗的招商专员作为责任人"),  # disabled meanwhile
    ],
)
def test_accepting_needs_an_active_officer_of_the_receiving_carrier(
    world, login, offered, db_session, officer, message
):
    disabled = factories.user(Role.OFFICER, carrier_=world.carrier_b, username="gone")
    disabled.is_active = False
    db_session.commit()
    chosen = {"none": 0, "officer_a": world.officer_a.id, "disabled": disabled.id}[officer]
    response = login(world.officer_b).post(urls(offered)["accept"], data={"officer_id": chosen})
    assert response.status_code == 400
    assert message in text(response)
    db_session.expire_all()
    assert offered.state is HandoverState.PENDING
    assert world.project_a.carrier_id == world.carrier_a.id


@pytest.mark.parametrize(("reason", "message"), [("", "请说明退回原因"), ("长" * 501, "500")])
def test_declining_needs_a_bounded_reason(world, login, offered, db_session, reason, message):
    response = login(world.officer_b).post(urls(offered)["decline"], data={"reason": reason})
    assert response.status_code == 400
    assert message in text(response)
    db_session.expire_all()
    assert offered.state is HandoverState.PENDING


def test_a_declined_hand_over_leaves_the_project_and_may_be_offered_again(
    world, login, offered, db_session
):
    receiver = login(world.officer_b)
    reason = "用地需求超出本园区可供指标<script>"
    response = receiver.post(urls(offered)["decline"], data={"reason": reason})
    assert response.status_code == 302 and response.headers["Location"] == "/"
    db_session.expire_all()
    assert offered.state is HandoverState.DECLINED and offered.decline_reason == reason
    assert world.project_a.carrier_id == world.carrier_a.id
    assert receiver.get(f"/projects/{world.project_a.id}").status_code == 404
    assert db_session.scalar(
        sa.select(AuditEntry.id).where(AuditEntry.action == "handover_declined")
    )
    page = text(login(world.officer_a).get(f"/projects/{world.project_a.id}"))
    assert "已退回" in page and "&lt;script&gt;" in page and "<script>" not in page
    assert "流转中" not in page
    # Declined: the task force may offer it again (to another 载体 or the same).
    leader = login(world.leader)
    assert "流转至其他载体" in text(leader.get(f"/projects/{world.project_a.id}"))
    data = handover_form(world, world.project_a)
    assert leader.post(f"/projects/{world.project_a.id}/handover", data=data).status_code == 302


def test_the_sender_withdraws(world, login, offered, db_session):
    assert login(world.officer_b).post(urls(offered)["withdraw"]).status_code == 403
    response = login(world.taskforce_x).post(urls(offered)["withdraw"])
    assert response.status_code == 302
    db_session.expire_all()
    assert offered.state is HandoverState.WITHDRAWN
    assert db_session.scalar(
        sa.select(AuditEntry.id).where(AuditEntry.action == "handover_withdrawn")
    )
    assert login(world.officer_b).get(f"/projects/{world.project_a.id}").status_code == 404
    # Decided: neither accepting nor a second withdrawal is possible any more.
    response = login(world.leader).post(
        urls(offered)["accept"], data={"officer_id": world.officer_b.id}
    )
    assert response.status_code == 409 and "该事项刚被他人处理" in text(response)


def test_a_decision_taken_meanwhile_wins(world, offered, db_session):
    """Another request declined between this one's loading and its UPDATE: the conditional
    UPDATE changes nothing, and nothing of this acceptance is kept."""
    db_session.execute(
        sa.update(Handover.__table__)
        .where(Handover.id == offered.id)
        .values(state="DECLINED", decline_reason="先到的退回")
    )
    with pytest.raises(AlreadyDecided, match="该事项刚被他人处理"):
        accept_handover(world.leader, offered, world.officer_b)
    db_session.expire_all()
    assert offered.decline_reason == "先到的退回"
    assert world.project_a.carrier_id == world.carrier_a.id


def test_simultaneous_accept_decline_and_withdraw_make_one_decision(app, tmp_path, monkeypatch):
    """The leader's three kinds of decision at the same moment, in many browsers: one wins,
    the others answer 409; the hand-over holds that one decision and its one audit entry."""
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)
    with committed_database(tmp_path) as engine, sessions_on(engine) as session:
        world = factories.World.build()
        handover = offer(world)
        session.commit()
        links, project_id = urls(handover), world.project_a.id
        leader, officer_b, carrier_a = world.leader.username, world.officer_b.id, world.carrier_a.id
        session.remove()

        requests = [
            (links["accept"], {"officer_id": officer_b}),
            (links["decline"], {"reason": "不接收"}),
            (links["withdraw"], {}),
        ] * 4
        bodies: list = []
        statuses = race_each(app, leader, "POST", requests, bodies)

        _one_won(statuses, bodies)
        handover = session.get(Handover, handover.id)
        assert handover.state is not HandoverState.PENDING
        decisions = ("project_handed_over", "handover_declined", "handover_withdrawn")
        entries = session.scalars(
            sa.select(AuditEntry.action).where(AuditEntry.action.in_(decisions))
        ).all()
        assert len(entries) == 1
        project = session.get(Project, project_id)
        accepted = handover.state is HandoverState.ACCEPTED
        assert (project.carrier_id == carrier_a) is not accepted


# 待办 ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "waiting"),
    [
        ("officer_b", True),  # into its 载体
        ("officer_a", False),  # out of its 载体: not its to accept
        ("taskforce_x", True),  # its cluster's project
        ("taskforce_y", False),
        ("leader", True),
        ("admin", True),
    ],
)
def test_pending_hand_overs_for_each_role(world, offered, role, waiting):
    user = getattr(world, role)
    assert [h.id for h in pending_handovers_for(user, 5)] == ([offered.id] if waiting else [])
    assert count_pending_handovers_for(user) == int(waiting)


def test_pending_hand_overs_are_read_in_one_query(world, offered, count_queries):
    db.session.expire_all()
    assert world.officer_b.carrier_id  # the user, loaded as for any request
    with count_queries() as counter:
        handovers = pending_handovers_for(world.officer_b, 10)
        assert handovers[0].project.name and handovers[0].from_carrier.name
    assert counter.count == 1, counter.statements


# Credit stays where it was earned ----------------------------------------------------------------


@pytest.fixture
def no_entry_checks(monkeypatch):
    monkeypatch.setattr(lifecycle, "_entry_checks", {stage: [] for stage in Stage})


def test_a_past_signing_stays_with_the_officer_who_won_it(
    world, login, db_session, no_entry_checks
):
    project = world.project_a
    advance(project, world.officer_a, world.taskforce_x, Stage.SIGNED, "30000")
    accept_handover(world.officer_b, offer(world), world.officer_b)
    db_session.commit()

    year = local_today().year
    d = build_dashboard(world.leader, local_today(), 30, year, date(year, 1, 1), local_today())
    officers = {r.name: r for r in d.performance_officers}
    a, b = officers[world.officer_a.display_name], officers[world.officer_b.display_name]
    assert a.signed.count == 1 and str(a.signed.amount) == "30000.00"
    assert b.signed.count == 0
    # The 载体 table follows the project; the total is unchanged.
    assert d.performance_total.signed.count == 1
    # The figure lists the project it counts.
    page = text(login(world.leader).get("/projects/?" + urlencode(a.signed.args)))
    assert project.name in page and "由所选招商专员任责任人时推进" in page
    empty = text(login(world.leader).get("/projects/?" + urlencode(b.signed.args)))
    assert project.name not in empty

    # A move after the hand-over is credited to the new officer.
    change = lifecycle.move_stage(
        world.officer_b, project, Stage.STARTED, fields={"started_on": factories.today()}
    )
    assert change.officer_id == world.officer_b.id
    first = db_session.scalars(
        sa.select(StageChange).where(StageChange.project_id == project.id).order_by(StageChange.id)
    ).all()
    assert {c.officer_id for c in first[:-1]} == {world.officer_a.id}


# Notifications -------------------------------------------------------------------------------------


def test_an_offer_is_told_to_the_receiving_carrier_and_the_task_force(world, offered):
    told = notified(NotificationKind.HANDOVER_OFFERED)
    # officer_b (receiving) — taskforce_x offered it and is the actor; nobody else.
    assert set(told) == {world.officer_b.id}
    assert told[world.officer_b.id].url == f"/projects/{world.project_a.id}#handover"
    second_tf = factories.user(Role.TASKFORCE, cluster_=world.cluster_x, username="tf_x2")
    withdraw_handover(world.leader, offered)
    offer(world, by=world.leader)
    told = notified(NotificationKind.HANDOVER_OFFERED)
    assert {world.officer_b.id, world.taskforce_x.id, second_tf.id} <= set(told)
    assert world.officer_a.id not in told and world.taskforce_y.id not in told


def test_a_decision_is_told_to_the_sender(world, offered, db_session):
    decline_handover(world.officer_b, offered, "用地指标不足")
    told = notified(NotificationKind.HANDOVER_DECLINED)
    assert set(told) == {world.taskforce_x.id, world.officer_a.id}
    assert all(
        "用地指标不足" in n.text and n.project_id == world.project_a.id for n in told.values()
    )

    handover = offer(world)
    second = factories.user(Role.OFFICER, carrier_=world.carrier_b, username="officer_b2")
    accept_handover(world.leader, handover, second)
    told = notified(NotificationKind.HANDOVER_ACCEPTED)
    assert set(told) == {world.taskforce_x.id, world.officer_a.id, second.id}
    # The sending officer may no longer open the project: told without a link to it.
    assert told[world.officer_a.id].project_id is None and told[world.officer_a.id].url == "/"
    assert told[second.id].project_id == world.project_a.id


def test_a_conflict_is_told_to_both_task_forces_and_the_leaders(world):
    same = factories.project(
        world.carrier_a, world.cluster_x, world.officer_a, world.channel, world.project_b.company
    )
    (conflict,) = record_conflicts(world.officer_a, same)
    told = notified(NotificationKind.CONFLICT_FLAGGED)
    assert set(told) == {world.leader.id, world.taskforce_x.id, world.taskforce_y.id}
    assert told[world.leader.id].url == f"/conflicts/#conflict-{conflict.id}"
    assert told[world.taskforce_y.id].project_id == world.project_b.id  # the one it reads
    assert told[world.taskforce_x.id].project_id == same.id


def test_an_import_flagging_many_conflicts_tells_each_one_once(world, db_session):
    """A bulk registration (the ledger import) flags a conflict per project: one notification
    per recipient summarises them."""
    companies = [factories.company() for _ in range(5)]
    for company in companies:
        factories.project(world.carrier_b, world.cluster_x, world.officer_b, world.channel, company)
    entries = [
        NewProject(
            company=company,
            stage=Stage.PLANNED,
            values={
                "name": f"导入项目{i}",
                "carrier_id": world.carrier_a.id,
                "cluster_id": world.cluster_x.id,
                "channel_id": world.channel.id,
                "officer_id": world.officer_a.id,
                "total_investment": 1000,
            },
        )
        for i, company in enumerate(companies)
    ]
    register_projects(world.officer_a, entries, via="导入台账")
    assert db_session.scalar(sa.select(sa.func.count(ProjectConflict.id))) == 5
    rows = db_session.scalars(
        sa.select(Notification).where(Notification.kind == NotificationKind.CONFLICT_FLAGGED)
    ).all()
    assert sorted(n.user_id for n in rows) == sorted([world.leader.id, world.taskforce_x.id])
    assert all("5 个跨载体冲突" in n.text and n.url == "/conflicts/" for n in rows)


# The migration's back-fill ------------------------------------------------------------------------


def test_the_migration_credits_past_moves_and_accepts_past_hand_overs(tmp_path, monkeypatch):
    """Hand-overs made before acceptance existed are 已接收; each past move is credited to the
    officer in charge then, read from the audit trail of the officer changes."""
    from flask_migrate import downgrade, upgrade

    from config import TestingConfig
    from crm import create_app
    from tests.test_migrations import separate_database

    with separate_database(tmp_path) as url:

        class Config(TestingConfig):
            SQLALCHEMY_DATABASE_URI = url

        other = create_app(Config)
        try:
            with other.app_context():
                upgrade()
                with sessions_on(db.engine):  # not the suite's rolled-back session
                    monkeypatch.setattr(lifecycle, "_entry_checks", {s: [] for s in Stage})
                    world = factories.World.build()
                    project = world.project_a
                    lifecycle.move_stage(world.officer_a, project, Stage.ATTRACTING)
                    accept_handover(world.officer_b, offer(world), world.officer_b)
                    lifecycle.move_stage(world.officer_b, project, Stage.PLANNED, reason="重新谋划")
                    db.session.commit()
                    ids = (project.id, world.officer_a.id, world.officer_b.id, world.taskforce_x.id)

                downgrade(revision="6b1f0d2c9a47")
                upgrade()

                project_id, officer_a, officer_b, offered_by = ids
                with sessions_on(db.engine) as session:
                    moves = session.execute(
                        sa.select(StageChange.to_stage, StageChange.officer_id)
                        .where(StageChange.project_id == project_id)
                        .order_by(StageChange.id)
                    ).all()
                    assert moves == [
                        (Stage.PLANNED, officer_a),
                        (Stage.ATTRACTING, officer_a),
                        (Stage.PLANNED, officer_b),
                    ]
                    (handover,) = session.scalars(sa.select(Handover)).all()
                    assert handover.state is HandoverState.ACCEPTED
                    assert (handover.from_officer_id, handover.officer_id) == (officer_a, officer_b)
                    assert handover.decided_at == handover.handed_at
                    assert handover.decided_by_id == offered_by
        finally:
            with other.app_context():
                db.engine.dispose()


def test_a_receiver_answering_a_withdrawn_offer_finds_nothing(world, login, offered, db_session):
    """载体 B's page still offers to accept; the sender withdrew meanwhile: the project is no
    longer B's to open, and nothing changes."""
    receiver = login(world.officer_b)
    assert "接收项目" in text(receiver.get(f"/projects/{world.project_a.id}"))
    withdraw_handover(world.taskforce_x, offered)
    db_session.commit()
    response = receiver.post(urls(offered)["accept"], data={"officer_id": world.officer_b.id})
    assert response.status_code == 404
    db_session.expire_all()
    assert offered.state is HandoverState.WITHDRAWN
    assert world.project_a.carrier_id == world.carrier_a.id
