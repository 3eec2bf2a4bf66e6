"""The catalogue seed, the demo data and the commands that load them."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from crm.audit.models import AuditEntry
from crm.auth.models import Role, User
from crm.catalog.models import Carrier, Chain, Channel, Cluster, ClusterCategory, TerminationReason
from crm.catalog.seed import CARRIERS, CHANNELS, CLUSTERS, TERMINATION_REASONS, seed_catalogues
from crm.companies.credit_code import credit_code_error
from crm.companies.models import Company, Contact, Origin
from crm.core import local_today, utcnow
from crm.devdata.demo import DEMO_PASSWORD, DEMO_USERS, load_demo
from crm.evaluation.models import (
    ChecklistItem,
    Decision,
    Evaluation,
    EvaluationAnswer,
    EvaluationState,
    Verdict,
)
from crm.extensions import db
from crm.files.models import DocumentKind, StoredFile
from crm.projects.filters import stale_clause
from crm.projects.models import (
    ConflictBasis,
    ElementNeed,
    FollowUp,
    FundsRecord,
    Handover,
    HandoverState,
    Project,
    ProjectConflict,
    StageChange,
    StatusChange,
)
from crm.projects.stages import VERIFIED_STAGES, Stage, Status, Verification

COUNTED = (
    Carrier,
    Cluster,
    Chain,
    Channel,
    TerminationReason,
    User,
    Company,
    Contact,
    Project,
    StageChange,
    StatusChange,
    FollowUp,
    ElementNeed,
    FundsRecord,
    ProjectConflict,
    Handover,
    Evaluation,
    Decision,
    StoredFile,
    AuditEntry,
)


@pytest.fixture(autouse=True)
def upload_folder(app, tmp_path, monkeypatch):
    """The demo files its signed agreements; keep them out of the instance folder."""
    monkeypatch.setitem(app.config, "UPLOAD_FOLDER", str(tmp_path))
    return tmp_path


def row_counts() -> dict[str, int]:
    return {
        model.__name__: db.session.scalar(sa.select(sa.func.count()).select_from(model))
        for model in COUNTED
    }


# The catalogues ----------------------------------------------------------------------------


def test_seed_catalogues_loads_the_4_6_6_system_once(db_session):
    assert seed_catalogues() is True
    counts = row_counts()
    assert counts["Carrier"] == len(CARRIERS) == 6
    assert counts["Channel"] == len(CHANNELS) == 7
    assert counts["TerminationReason"] == len(TERMINATION_REASONS) == 7
    categories = Counter(db_session.scalars(sa.select(Cluster.category)))
    assert categories == {
        ClusterCategory.TRADITIONAL: 4,
        ClusterCategory.EMERGING: 6,
        ClusterCategory.FUTURE: 6,
    }
    for cluster in db_session.scalars(sa.select(Cluster)):
        assert 2 <= len(cluster.chains) <= 4, cluster.name
    medicine = db_session.scalar(sa.select(Cluster).where(Cluster.name == "现代中医药"))
    assert [c.name for c in medicine.chains] == ["中药材种植", "中药饮片", "中成药", "中医药大健康"]
    assert all(c.leading_industry for c in db_session.scalars(sa.select(Carrier)))

    assert seed_catalogues() is False
    assert row_counts() == counts


def test_seed_catalogues_adds_only_what_is_missing(db_session):
    """Entries the admin already has (edited, deactivated) are left as they are."""
    db_session.add(Carrier(name="谯城区", leading_industry="自定义主导产业"))
    db_session.add(Channel(name="其他", is_active=False))
    cluster = Cluster(name="新能源", category=ClusterCategory.EMERGING)
    db_session.add_all([cluster, Chain(cluster=cluster, name="光伏")])
    db_session.flush()

    assert seed_catalogues() is True
    kept = db_session.scalar(sa.select(Carrier).where(Carrier.name == "谯城区"))
    assert kept.leading_industry == "自定义主导产业"
    assert db_session.scalar(sa.select(Channel.is_active).where(Channel.name == "其他")) is False
    assert [c.name for c in cluster.chains].count("光伏") == 1
    assert len(cluster.chains) == {n: len(c) for n, _k, c in CLUSTERS}["新能源"]
    assert row_counts()["Carrier"] == 6


def test_seed_command(runner, db_session):
    result = runner.invoke(args=["crm", "seed"])
    assert result.exit_code == 0, result.output
    assert "已载入" in result.output
    assert row_counts()["Cluster"] == 16

    again = runner.invoke(args=["crm", "seed"])
    assert again.exit_code == 0
    assert "未作改动" in again.output


# The demo data -----------------------------------------------------------------------------


def test_load_demo_builds_a_pipeline_at_every_stage_once(db_session, upload_folder):
    assert load_demo() is True  # its time is make bench's (scripts/bench_pdf.py loads it)

    projects = db_session.scalars(sa.select(Project)).all()
    assert 55 <= len(projects) <= 65
    assert {p.stage for p in projects} == set(Stage)
    assert {p.status for p in projects} == set(Status)
    assert {p.carrier_id for p in projects} == set(db_session.scalars(sa.select(Carrier.id)))
    assert {p.channel_id for p in projects} == set(db_session.scalars(sa.select(Channel.id)))
    assert len({p.cluster_id for p in projects}) >= 8
    assert sum(p.is_key for p in projects) >= 5
    for stage in Stage:
        assert sum(p.stage is stage for p in projects) >= 5, stage

    # Companies: valid credit codes, a few overseas ones without, some with two projects.
    companies = db_session.scalars(sa.select(Company)).all()
    assert all(credit_code_error(c.credit_code) is None for c in companies if c.credit_code)
    without_code = [c for c in companies if not c.credit_code]
    assert 1 <= len(without_code) <= 5
    assert all(c.origin is Origin.OVERSEAS for c in without_code)
    assert {c.origin for c in companies} == set(Origin)
    per_company = Counter(p.company_id for p in projects)
    assert max(per_company.values()) == 2
    with_contacts = set(db_session.scalars(sa.select(Contact.company_id)))
    assert len(with_contacts) >= 0.75 * len(companies)

    # Officers run the projects of their own 载体.
    officers = {u.id: u for u in db_session.scalars(sa.select(User))}
    assert all(officers[p.officer_id].carrier_id == p.carrier_id for p in projects)

    # Statuses carry their reasons.
    for p in projects:
        if p.status is not Status.ACTIVE:
            assert p.status_reason and p.status_on, p.name
        if p.status is Status.DROPPED:
            assert p.termination_reason is not None
        if p.status is Status.LOST:
            assert p.lost_to

    # The lifecycle: actual dates in order, never in the future; history in order.
    today, now = local_today(), utcnow()
    for p in projects:
        milestones = [p.signed_on, p.started_on, p.producing_on][: max(0, p.stage.order - 1)]
        assert all(milestones), p.name
        assert milestones == sorted(milestones) and all(d <= today for d in milestones)
        if p.stage.order >= Stage.SIGNED.order:
            assert p.signed_amount
        history = db_session.scalars(
            sa.select(StageChange).where(StageChange.project_id == p.id).order_by(StageChange.id)
        ).all()
        assert history[0].from_stage is None and history[-1].to_stage is p.stage
        times = [c.changed_at for c in history]
        assert times == sorted(times) and times[-1] <= now
        assert p.created_at == times[0]

    # Follow-ups: 3 to 10 per project; some due this week, some overdue, about ten stale.
    followups = Counter(db_session.scalars(sa.select(FollowUp.project_id)))
    assert all(3 <= followups[p.id] <= 10 for p in projects)
    assert all(d <= today for d in db_session.scalars(sa.select(FollowUp.happened_on)))
    active = [p for p in projects if p.status is Status.ACTIVE]
    week_end = today + timedelta(days=6 - today.weekday())
    assert any(today <= p.next_action_due <= week_end for p in active)
    assert any(p.next_action_due < today for p in active)
    stale = db_session.scalar(
        sa.select(sa.func.count()).select_from(Project).where(stale_clause(today, 30))
    )
    assert 8 <= stale <= 15

    # Element needs for about half the projects; funds for every project under way.
    with_needs = set(db_session.scalars(sa.select(ElementNeed.project_id)))
    assert 0.3 * len(projects) <= len(with_needs) <= 0.7 * len(projects)
    funded = set(db_session.scalars(sa.select(FundsRecord.project_id)))
    building = {p.id for p in projects if p.stage in (Stage.STARTED, Stage.PRODUCING)}
    assert funded == building
    assert all(d <= today for d in db_session.scalars(sa.select(FundsRecord.received_on)))

    # The 签约 gate: every signed project passed an evaluation and has its agreement on file;
    # a few evaluations are still under way, one was returned and one rejected.
    evaluations = db_session.scalars(sa.select(Evaluation).order_by(Evaluation.id)).all()
    latest = {e.project_id: e for e in evaluations}
    signed = [p for p in projects if p.stage.order >= Stage.SIGNED.order]
    assert all(latest[p.id].state is EvaluationState.PASSED for p in signed)
    assert Counter(e.state for e in evaluations) == {
        EvaluationState.PASSED: len(signed),
        EvaluationState.SUBMITTED: 2,
        EvaluationState.DRAFT: 2,
        EvaluationState.RETURNED: 1,
        EvaluationState.REJECTED: 1,
    }
    assert all(e.created_at <= (e.submitted_at or now) for e in evaluations)
    rejected = next(e for e in evaluations if e.state is EvaluationState.REJECTED)
    veto_fails = db_session.scalars(
        sa.select(EvaluationAnswer)
        .join(EvaluationAnswer.item)
        .where(
            EvaluationAnswer.evaluation_id == rejected.id,
            EvaluationAnswer.verdict == Verdict.FAILS,
            ChecklistItem.is_veto.is_(True),
        )
    ).all()
    assert len(veto_fails) == 1 and veto_fails[0].comment
    decided = db_session.scalars(sa.select(Decision)).all()
    assert len(decided) == len(signed) + 2
    assert all(d.meeting_date <= today and d.participants for d in decided)
    agreements = db_session.scalars(
        sa.select(StoredFile).where(StoredFile.kind == DocumentKind.AGREEMENT)
    ).all()
    assert {f.project_id for f in agreements} == {p.id for p in signed}
    for stored in agreements:
        path = Path(upload_folder) / stored.stored_name[:2] / stored.stored_name
        assert path.read_bytes().startswith(b"%PDF-")

    # 甄别: the moves into 签约, 开工 and 投产 are verified by the task force (the admin where
    # the cluster has none), but for four still waiting and one rejected.
    claims = db_session.scalars(
        sa.select(StageChange).where(
            StageChange.to_stage.in_(VERIFIED_STAGES), StageChange.from_stage.is_not(None)
        )
    ).all()
    forward = [c for c in claims if not c.is_backward]
    states = Counter(c.verification for c in forward)
    assert states[Verification.PENDING] == 4
    assert states[Verification.REJECTED] == 1
    assert states[Verification.VERIFIED] == len(forward) - 5 >= 50
    users = {u.id: u for u in db_session.scalars(sa.select(User))}
    for change in forward:
        if change.verification is Verification.PENDING:
            assert change.verified_at is None
            continue
        assert change.changed_at <= change.verified_at <= now
        checker = users[change.verified_by_id]
        assert checker.role in (Role.TASKFORCE, Role.ADMIN)
        assert checker.role is Role.ADMIN or checker.cluster_id == change.project.cluster_id
    rejected = next(c for c in forward if c.verification is Verification.REJECTED)
    assert rejected.to_stage is Stage.STARTED and "主体工程尚未动工" in rejected.verification_note
    back = [c for c in claims if c.is_backward and c.project_id == rejected.project_id]
    assert back and back[-1].reason.startswith("甄别驳回：")
    assert rejected.project.stage is Stage.SIGNED and rejected.project.started_on is None

    # One company courted by 涡阳县 and 蒙城县: an open conflict. One project offered to
    # another 载体, waiting for it to accept (待接收): still with the sending 载体.
    (conflict,) = db_session.scalars(sa.select(ProjectConflict)).all()
    assert conflict.basis is ConflictBasis.CREDIT_CODE and conflict.resolved_at is None
    carriers = {conflict.project.carrier.name, conflict.other_project.carrier.name}
    assert carriers == {"涡阳县", "蒙城县"}
    assert conflict.project.company_id == conflict.other_project.company_id
    (handover,) = db_session.scalars(sa.select(Handover)).all()
    assert (handover.from_carrier.name, handover.to_carrier.name) == ("蒙城县", "亳芜现代产业园区")
    handed = db_session.get(Project, handover.project_id)
    assert handover.state is HandoverState.PENDING
    assert handed.carrier_id == handover.from_carrier_id
    assert handover.proposed_officer.carrier_id == handover.to_carrier_id
    assert users[handover.handed_by_id].role is Role.LEADER
    assert handover.benefit_sharing and handover.handed_at <= now

    # Loading again changes nothing.
    counts = row_counts()
    assert load_demo() is False
    assert row_counts() == counts


def test_every_demo_user_can_sign_in(client, db_session):
    load_demo()
    users = {u.username: u for u in db_session.scalars(sa.select(User))}
    for username, display_name, role, scope in DEMO_USERS:
        user = users[username]
        assert (user.display_name, user.role) == (display_name, role)
        if role in (Role.OFFICER, Role.TASKFORCE):
            assert scope in user.scope_label
        client.post("/logout", data={})
        response = client.post("/login", data={"username": username, "password": DEMO_PASSWORD})
        assert response.status_code == 302, username
        assert client.get("/").status_code == 200
    client.post("/logout", data={})


def test_demo_command_loads_once_and_prints_the_accounts(runner, db_session):
    result = runner.invoke(args=["crm", "demo"])
    assert result.exit_code == 0, result.output
    assert "演示数据已载入" in result.output
    assert DEMO_PASSWORD in result.output
    for username, *_rest in DEMO_USERS:
        assert username in result.output
    counts = row_counts()

    again = runner.invoke(args=["crm", "demo"])
    assert again.exit_code == 0
    assert "未重复载入" in again.output
    assert row_counts() == counts


def test_the_demo_gives_every_role_tasks_some_overdue_some_done(client, db_session):
    """Each role has open tasks (some overdue), some were done or cancelled; every 正常 project
    with a next action has its officer's 下一步 task, also after a hand-over; each task's
    assignee reads its project; the people given or finishing a task were told."""
    from crm.access import can_read_project
    from crm.notifications.models import Notification, NotificationKind
    from crm.tasks.models import Task, TaskKind, TaskStatus

    load_demo()
    today = local_today()
    all_tasks = db_session.scalars(sa.select(Task)).all()
    open_tasks = [t for t in all_tasks if t.status is TaskStatus.OPEN]
    for role in set(Role) - {Role.DEPARTMENT}:  # a department user reads no project: no task
        mine = [t for t in open_tasks if t.assignee.role is role and t.kind is TaskKind.TASK]
        assert mine, role
    assert any(t.due_on < today for t in open_tasks if t.kind is TaskKind.TASK)
    assert {t.status for t in all_tasks} == set(TaskStatus)
    for task in all_tasks:
        assert can_read_project(task.assignee, task.project) or not task.is_open

    next_actions = {t.project_id: t for t in open_tasks if t.kind is TaskKind.NEXT_ACTION}
    assert len(next_actions) >= 20
    for project in db_session.scalars(sa.select(Project)):
        task = next_actions.get(project.id)
        if project.status is Status.ACTIVE and project.next_action:
            assert (task.title, task.due_on, task.assignee_id) == (
                project.next_action,
                project.next_action_due,
                project.officer_id,
            ), project.name
        else:
            assert task is None, project.name

    told = {
        n.kind
        for n in db_session.scalars(sa.select(Notification))
        if n.kind.name.startswith("TASK_")
    }
    assert told >= {NotificationKind.TASK_ASSIGNED, NotificationKind.TASK_COMPLETED}
    client.post("/login", data={"username": "taskforce_xny", "password": DEMO_PASSWORD})
    page = client.get("/tasks/").get_data(as_text=True)
    assert "核实项目用地指标" in page and "逾期" in page
