"""No lost data: simultaneous actions make exactly one change; a stale save answers 409; a
failure in the middle of a multi-step operation leaves nothing behind.

The races run through the real pages, in threads, on a separate database with committed data
(the suite's rolled-back test transaction cannot give that): SQLite, or PostgreSQL when
CRM_TEST_DATABASE_URL names one.
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from crm.audit.models import AuditEntry
from crm.auth.models import Role
from crm.evaluation.models import Decision, Evaluation, EvaluationState
from crm.extensions import db
from crm.projects import lifecycle
from crm.projects import services as project_services
from crm.projects.models import Project, StageChange
from crm.projects.stages import Stage
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
    ready = threading.Barrier(THREADS, timeout=60)
    statuses: list[int | str] = []

    def browser() -> None:
        client = FlaskClient(app, app.response_class, use_cookies=True)
        try:
            response = client.post("/login", data={"username": username, "password": PASSWORD})
            assert response.status_code == 302, response.status_code
            ready.wait()
            statuses.append(client.open(url, method=method, data=data).status_code)
        except BaseException as exc:  # reported in the test's thread
            statuses.append(repr(exc))

    threads = [threading.Thread(target=browser) for _ in range(THREADS)]
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
    monkeypatch.setattr(project_services, "record", _fail)
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
