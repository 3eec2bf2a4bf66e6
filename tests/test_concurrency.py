"""No lost data: simultaneous actions make exactly one change; a stale save answers 409; a
failure in the middle of a multi-step operation leaves nothing behind.

The races run through the real pages, in threads, on a separate database with committed data
(the suite's rolled-back test transaction cannot give that): SQLite, or PostgreSQL when
CRM_TEST_DATABASE_URL names one.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from crm.audit.models import AuditEntry
from crm.auth.models import Role
from crm.decisions import AlreadyDecided
from crm.evaluation.models import Decision, Evaluation, EvaluationState
from crm.extensions import db
from crm.projects import lifecycle
from crm.projects import registration as project_registration
from crm.projects.models import Project, StageChange
from crm.projects.stages import Stage, Verification
from tests import factories
from tests.conftest import PASSWORD
from tests.evaluation_factories import submitted_evaluation
from tests.test_evaluation import committed_database, decision_form, sessions_on

THREADS = 20


def count(model, *where) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def race(app, username: str, method: str, url: str, data: dict) -> Counter:
    """THREADS browsers signed in as `username` send the same request at the same moment;
    the answers' status codes, counted."""
    return race_each(app, username, method, [(url, data)] * THREADS)


def race_each(
    app, username: str, method: str, requests: list[tuple[str, dict]], bodies: list | None = None
) -> Counter:
    """One browser per request, each signed in as `username`, all sending at the same moment;
    the answers' status codes, counted (and their pages appended to `bodies`)."""
    ready = threading.Barrier(len(requests), timeout=60)
    statuses: list[int | str] = []

    def browser(url: str, data: dict) -> None:
        client = FlaskClient(app, app.response_class, use_cookies=True)
        try:
            response = client.post("/login", data={"username": username, "password": PASSWORD})
            assert response.status_code == 302, response.status_code
            ready.wait()
            response = client.open(url, method=method, data=data)
            statuses.append(response.status_code)
            if bodies is not None:
                bodies.append((response.status_code, response.get_data(as_text=True)))
        except BaseException as exc:  # reported in the test's thread
            statuses.append(repr(exc))

    threads = [threading.Thread(target=browser, args=request) for request in requests]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    return Counter(statuses)


@pytest.fixture
def racing_app(app, monkeypatch):
    """The app with its error pages (not exceptions raised into the test)."""
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)
    return app


def test_twenty_simultaneous_stage_moves_make_one_change(racing_app, tmp_path):
    with committed_database(tmp_path) as engine, sessions_on(engine) as session:
        world = factories.World.build()
        session.commit()
        project_id, officer = world.project_a.id, world.officer_a.username
        session.remove()

        statuses = race(
            racing_app,
            officer,
            "POST",
            f"/projects/{project_id}/stage",
            {"to_stage": "ATTRACTING", "reason": ""},
        )

        # One wins (302). The others either waited and then found the project already in 招引
        # (400: not a move from there), or lost the version check of the UPDATE (409), or —
        # SQLite under load — were told to try again (503). Never a 500, never a second move.
        assert statuses[302] == 1, statuses
        assert set(statuses) <= {302, 400, 409, 503}, statuses
        moves = session.scalars(
            sa.select(StageChange).where(
                StageChange.project_id == project_id, StageChange.to_stage == Stage.ATTRACTING
            )
        ).all()
        assert len(moves) == 1
        project = session.get(Project, project_id)
        assert (project.stage, project.version) == (Stage.ATTRACTING, 2)
        moved = sa.select(sa.func.count()).where(AuditEntry.action == "stage_moved")
        assert session.scalar(moved) == 1


def test_twenty_simultaneous_decisions_make_one_decision(racing_app, tmp_path):
    with committed_database(tmp_path) as engine, sessions_on(engine) as session:
        world = factories.World.build()
        evaluation = submitted_evaluation(world.project_a, world.officer_a, world.taskforce_x)
        session.commit()
        evaluation_id, leader = evaluation.id, world.leader.username
        session.remove()

        statuses = race(
            racing_app, leader, "POST", f"/evaluations/{evaluation_id}/decision", decision_form()
        )

        assert statuses[302] == 1, statuses
        assert set(statuses) <= {302, 409, 503}, statuses
        decisions = session.scalars(
            sa.select(Decision).where(Decision.evaluation_id == evaluation_id)
        ).all()
        assert len(decisions) == 1
        assert session.get(Evaluation, evaluation_id).state is EvaluationState.PASSED


# Decision-like actions (甄别, settling a conflict, 流转): exactly one of N wins ------------------

ALREADY_DECIDED = "该事项刚被他人处理"


def _one_won(statuses: Counter, bodies: list) -> None:
    """One 302; every other answer a 409 that says so in Chinese, never a 400, 404 or 500."""
    assert statuses[302] == 1, statuses
    assert set(statuses) <= {302, 409}, statuses
    for status, body in bodies:
        if status == 409:
            assert ALREADY_DECIDED in body and "Traceback" not in body


def _pending_start(world) -> StageChange:
    """Project A signed (verified) and claimed started: its 开工 move waits for the task force."""
    project = world.project_a
    project.stage, project.signed_amount = Stage.STARTED, Decimal("30000")
    project.signed_on = factories.today() - timedelta(days=30)
    project.started_on = factories.today() - timedelta(days=2)
    db.session.add(
        StageChange(
            project_id=project.id,
            from_stage=Stage.ATTRACTING,
            to_stage=Stage.SIGNED,
            changed_by_id=world.officer_a.id,
            verification=Verification.VERIFIED,
        )
    )
    change = StageChange(
        project_id=project.id,
        from_stage=Stage.SIGNED,
        to_stage=Stage.STARTED,
        changed_by_id=world.officer_a.id,
        verification=Verification.PENDING,
    )
    db.session.add(change)
    db.session.flush()
    return change


@pytest.mark.parametrize("mix", ["verify", "reject", "both"])
def test_twenty_simultaneous_verifications_and_rejections_make_one_decision(
    racing_app, tmp_path, mix
):
    with committed_database(tmp_path) as engine, sessions_on(engine) as session:
        world = factories.World.build()
        change = _pending_start(world)
        session.commit()
        project_id, change_id = world.project_a.id, change.id
        taskforce = world.taskforce_x.username
        session.remove()
        base = f"/projects/{project_id}/moves/{change_id}"
        verify = (f"{base}/verify", {f"v{change_id}-note": "已到现场核实"})
        reject = (
            f"{base}/reject",
            {f"r{change_id}-reason": "现场未见施工", f"r{change_id}-confirm": "y"},
        )
        requests = {
            "verify": [verify] * THREADS,
            "reject": [reject] * THREADS,
            "both": [verify, reject] * (THREADS // 2),
        }[mix]

        bodies: list = []
        statuses = race_each(racing_app, taskforce, "POST", requests, bodies)

        _one_won(statuses, bodies)
        change = session.get(StageChange, change_id)
        project = session.get(Project, project_id)
        backward = count(
            StageChange,
            StageChange.project_id == project_id,
            StageChange.from_stage == Stage.STARTED,
        )
        decided = sa.select(sa.func.count()).where(
            AuditEntry.action.in_(["stage_move_verified", "stage_move_rejected"])
        )
        assert session.scalar(decided) == 1
        if change.verification is Verification.VERIFIED:
            assert mix != "reject"
            assert (project.stage, backward) == (Stage.STARTED, 0)
            assert project.started_on is not None
        else:
            assert mix != "verify"
            assert change.verification is Verification.REJECTED
            assert (project.stage, backward) == (Stage.SIGNED, 1)
            assert project.started_on is None


def test_twenty_simultaneous_resolutions_keep_the_one_note_saved(racing_app, tmp_path):
    from crm.projects.conflicts import record_conflicts
    from crm.projects.models import ProjectConflict

    with committed_database(tmp_path) as engine, sessions_on(engine) as session:
        world = factories.World.build()
        same_company = factories.project(
            world.carrier_a,
            world.cluster_x,
            world.officer_a,
            world.channel,
            world.project_b.company,
            name="甲区重复招引项目",
        )
        (conflict,) = record_conflicts(world.officer_a, same_company)
        session.commit()
        conflict_id, taskforce = conflict.id, world.taskforce_x.username
        session.remove()
        url = f"/conflicts/{conflict_id}/resolve"
        requests = [(url, {f"c{conflict_id}-note": f"协调意见{i}"}) for i in range(THREADS)]

        bodies: list = []
        statuses = race_each(racing_app, taskforce, "POST", requests, bodies)

        _one_won(statuses, bodies)
        conflict = session.get(ProjectConflict, conflict_id)
        entries = session.scalars(
            sa.select(AuditEntry).where(AuditEntry.action == "conflict_resolved")
        ).all()
        assert len(entries) == 1
        # The note kept is the one the winner wrote and the audit log names, not another's.
        assert conflict.resolution_note.startswith("协调意见")
        assert conflict.resolution_note in entries[0].summary


def test_twenty_simultaneous_hand_overs_make_one(racing_app, tmp_path):
    from crm.projects.models import Handover

    with committed_database(tmp_path) as engine, sessions_on(engine) as session:
        world = factories.World.build()
        session.commit()
        project_id, leader = world.project_a.id, world.leader.username
        data = {
            "version": world.project_a.version,
            "to_carrier_id": world.carrier_b.id,
            "officer_id": world.officer_b.id,
            "reason": "项目选址调整至乙县工业园",
            "confirm": "y",
        }
        carrier_a, carrier_b = world.carrier_a.id, world.carrier_b.id
        session.remove()

        bodies: list = []
        requests = [(f"/projects/{project_id}/handover", data)] * THREADS
        statuses = race_each(racing_app, leader, "POST", requests, bodies)

        _one_won(statuses, bodies)
        assert count(Handover, Handover.project_id == project_id) == 1
        offered = sa.select(sa.func.count()).where(AuditEntry.action == "handover_offered")
        assert session.scalar(offered) == 1
        (handover,) = session.scalars(sa.select(Handover)).all()
        assert handover.to_carrier_id == carrier_b
        project = session.get(Project, project_id)  # waiting for 载体 B: still in 载体 A
        assert (project.carrier_id, project.version) == (carrier_a, 2)


def test_a_settlement_taken_meanwhile_refuses_a_second_one(world, db_session):
    """Another request settled the conflict after this one loaded it: the conditional UPDATE
    changes nothing and the note of the first settlement stays."""
    from crm.projects import conflicts
    from crm.projects.models import ProjectConflict

    same_company = factories.project(
        world.carrier_a, world.cluster_x, world.officer_a, world.channel, world.project_b.company
    )
    (conflict,) = conflicts.record_conflicts(world.officer_a, same_company)
    db_session.execute(
        sa.update(ProjectConflict.__table__)
        .where(ProjectConflict.id == conflict.id)
        .values(resolved_at=sa.func.current_timestamp(), resolution_note="先到的处理意见")
    )

    with pytest.raises(AlreadyDecided, match="该事项刚被他人处理"):
        conflicts.resolve_conflict(world.leader, conflict, "后到的处理意见")
    db_session.expire_all()
    assert conflict.resolution_note == "先到的处理意见"


def test_a_hand_over_of_a_project_changed_meanwhile_is_refused(world, db_session):
    from crm.projects import conflicts
    from crm.projects.models import Handover

    project = world.project_a
    db_session.execute(
        sa.update(Project.__table__).where(Project.id == project.id).values(version=2)
    )

    with pytest.raises(AlreadyDecided, match="该事项刚被他人处理"):
        conflicts.handover_project(
            world.leader,
            project,
            world.carrier_b,
            world.officer_b,
            "选址调整",
            loaded_version=project.version,  # as loaded; the database has moved on
        )
    assert count(Handover, Handover.project_id == project.id) == 0


# A stale save, in one transaction ---------------------------------------------------------------


def test_a_save_over_a_newer_version_answers_409_and_saves_nothing(
    world, login, db_session, monkeypatch
):
    """Another request saved the project between this one's loading and its UPDATE: the
    version in the UPDATE's WHERE no longer matches, and the answer is a clear 409."""
    project = world.project_a
    db_session.commit()
    checks = lifecycle.entry_blockers

    def someone_saves_meanwhile(p, stage):
        db_session.execute(
            sa.update(Project.__table__).where(Project.id == p.id).values(version=p.version + 5)
        )
        return checks(p, stage)

    monkeypatch.setattr(lifecycle, "entry_blockers", someone_saves_meanwhile)
    client = login(world.officer_a)
    before = count(StageChange, StageChange.project_id == project.id)

    response = client.post(f"/projects/{project.id}/stage", data={"to_stage": "ATTRACTING"})

    assert response.status_code == 409
    assert "该记录刚被他人修改，本次操作未保存" in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)
    db_session.expire_all()
    assert count(StageChange, StageChange.project_id == project.id) == before
    assert db_session.get(Project, project.id).stage is Stage.PLANNED


# A failure in the middle: nothing is left behind ---------------------------------------------------


class Injected(RuntimeError):
    pass


def _fail(*_args, **_kwargs):
    raise Injected("failure injected after the first steps")


def _snapshot() -> dict[str, int]:
    """Rows per table: what a half-done operation would leave."""
    return {
        table.name: db.session.scalar(sa.select(sa.func.count()).select_from(table))
        for table in db.metadata.sorted_tables
    }


@pytest.mark.parametrize(
    ("target", "name"),
    [
        (lifecycle, "record"),  # after the stage, the version and the history row
        (lifecycle, "entry_blockers"),  # after the required fields were applied
    ],
)
def test_a_failing_stage_move_leaves_nothing(
    world, login, db_session, app, monkeypatch, target, name
):
    project = world.project_a
    db_session.commit()
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)
    monkeypatch.setattr(target, name, _fail)
    client = login(world.officer_a)
    before = _snapshot()

    response = client.post(f"/projects/{project.id}/stage", data={"to_stage": "ATTRACTING"})

    assert response.status_code == 500
    html = response.get_data(as_text=True)
    assert "操作未完成，也未保存任何内容" in html and "Injected" not in html
    db_session.expire_all()
    assert _snapshot() == before
    assert (db_session.get(Project, project.id).stage, project.version) == (Stage.PLANNED, 1)


def test_a_failing_project_registration_leaves_nothing(world, login, db_session, app, monkeypatch):
    """Registering writes the project, its first history row and the audit entry: a failure at
    the last step takes the first two with it."""
    from tests.test_projects import detail_id, project_form

    db_session.commit()
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)
    client = login(world.officer_a)
    url = f"/projects/new?company={world.project_a.company_id}"
    monkeypatch.setattr(project_registration, "record_bulk", _fail)
    before = _snapshot()

    assert client.post(url, data=project_form(world, name="注入故障项目")).status_code == 500

    db_session.expire_all()
    assert _snapshot() == before
    monkeypatch.undo()
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)
    response = client.post(url, data=project_form(world, name="注入故障项目"))
    assert detail_id(response)  # the same request works once nothing fails


def test_a_failing_decision_leaves_the_evaluation_waiting(
    world, login, db_session, app, monkeypatch
):
    from crm.evaluation import services as evaluation_services

    evaluation = submitted_evaluation(world.project_a, world.officer_a, world.taskforce_x)
    db_session.commit()
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)
    monkeypatch.setattr(evaluation_services, "record", _fail)
    client = login(world.leader)
    before = _snapshot()

    response = client.post(f"/evaluations/{evaluation.id}/decision", data=decision_form())

    assert response.status_code == 500
    db_session.expire_all()
    assert _snapshot() == before
    assert db_session.get(Evaluation, evaluation.id).state is EvaluationState.SUBMITTED


def test_a_second_officer_account_cannot_sneak_a_move_in(world, db_session):
    """The service checks the stage it was given against the stage it loaded: a move decided
    on a stale page is refused as a rule, not saved twice."""
    other = factories.user(Role.OFFICER, carrier_=world.carrier_a)
    lifecycle.move_stage(world.officer_a, world.project_a, Stage.ATTRACTING)
    with pytest.raises(lifecycle.ServiceError):
        lifecycle.move_stage(other, world.project_a, Stage.ATTRACTING)
    assert count(StageChange, StageChange.to_stage == Stage.ATTRACTING) == 1
