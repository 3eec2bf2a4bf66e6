"""The request's transaction edge (crm/transaction.py) and the wiring between features
(crm/hooks.py): one commit or rollback per request, after the view."""

from __future__ import annotations

import ast
import logging
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

import crm
from crm.evaluation.models import Decision, EvaluationState
from crm.extensions import db
from tests.evaluation_factories import submitted_evaluation
from tests.test_evaluation import decision_form


class Injected(Exception):
    pass


def _fail(*_args, **_kwargs):
    raise Injected("failure injected after the save")


def _database_locked(*_args, **_kwargs):
    raise sa.exc.OperationalError("COMMIT", {}, sqlite3.OperationalError("database is locked"))


def decisions() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Decision))


def test_a_failure_after_the_save_keeps_nothing_of_it(world, login, db_session, app, monkeypatch):
    """The page says nothing was saved: then nothing was. (save_form used to commit at once,
    so a failure later in the same request showed "未保存" over a decision already taken.)"""
    import crm.evaluation.views as evaluation_views

    evaluation = submitted_evaluation(world.project_a, world.officer_a, world.taskforce_x)
    db_session.commit()
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)
    client = login(world.leader)
    monkeypatch.setattr(evaluation_views, "flash", _fail)  # after the decision is written

    response = client.post(f"/evaluations/{evaluation.id}/decision", data=decision_form())

    assert response.status_code == 500
    assert "操作未完成，也未保存任何内容" in response.get_data(as_text=True)
    db_session.expire_all()
    assert evaluation.state is EvaluationState.SUBMITTED
    assert decisions() == 0


def test_a_commit_that_fails_answers_503_without_a_false_success(
    world, login, db_session, app, monkeypatch
):
    evaluation = submitted_evaluation(world.project_a, world.officer_a, world.taskforce_x)
    db_session.commit()
    client = login(world.leader)
    monkeypatch.setattr(db.session, "commit", _database_locked)

    response = client.post(f"/evaluations/{evaluation.id}/decision", data=decision_form())

    assert response.status_code == 503
    assert "系统繁忙，本次操作未保存，请重试" in response.get_data(as_text=True)
    monkeypatch.undo()
    page = client.get(f"/evaluations/{evaluation.id}").get_data(as_text=True)
    assert "已记录决策" not in page  # the view's success message was not kept either
    db_session.expire_all()
    assert evaluation.state is EvaluationState.SUBMITTED
    assert decisions() == 0


def test_a_sign_in_whose_commit_fails_signs_nobody_in(world, client, db_session, monkeypatch):
    db_session.commit()
    monkeypatch.setattr(db.session, "commit", _database_locked)

    response = client.post(
        "/login", data={"username": world.officer_a.username, "password": "Passw0rd!"}
    )

    assert response.status_code == 503
    monkeypatch.undo()
    assert client.get("/").status_code == 302  # still to the sign-in page


def test_a_refused_request_is_audited_and_keeps_nothing_else(world, login, db_session):
    from crm.audit.models import AuditEntry

    db_session.commit()
    client = login(world.officer_b)  # another 载体: project_a is out of scope
    before = decisions()

    assert client.get(f"/projects/{world.project_a.id}").status_code == 404

    denied = db_session.scalars(
        sa.select(AuditEntry).where(
            AuditEntry.action == "permission_denied", AuditEntry.user_id == world.officer_b.id
        )
    ).all()
    assert [e.summary for e in denied] == [f"404 GET /projects/{world.project_a.id}"]
    assert decisions() == before


# After commit ---------------------------------------------------------------------------------


def test_after_commit_work_runs_in_order_once_committed_and_a_failure_is_logged(db_session, caplog):
    from crm import transaction

    ran: list[str] = []
    db_session.execute(sa.text("SELECT 1"))
    transaction.on_commit(lambda: ran.append("first"))
    transaction.on_commit(_fail)
    transaction.on_commit(lambda: ran.append("third"))
    transaction.on_rollback(lambda: ran.append("undone"))
    assert ran == []

    with caplog.at_level(logging.ERROR, logger="crm.transaction"):
        db_session.commit()

    assert ran == ["first", "third"]
    assert "after-commit callback" in caplog.text
    db_session.execute(sa.text("SELECT 1"))
    db_session.commit()
    assert ran == ["first", "third"]  # once


def test_a_rollback_drops_the_after_commit_work(db_session):
    from crm import transaction

    ran: list[str] = []
    db_session.execute(sa.text("SELECT 1"))
    transaction.on_commit(lambda: ran.append("published"))
    transaction.on_rollback(lambda: ran.append("undone"))

    db_session.rollback()
    db_session.execute(sa.text("SELECT 1"))
    db_session.commit()

    assert ran == ["undone"]


# One place commits ----------------------------------------------------------------------------

CRM = Path(crm.__file__).resolve().parent
# Their own edge: the request's (crm/transaction.py), the command line's and the jobs'.
EDGES = {"transaction.py", "commands.py", "jobs/queue.py"}
# The demo and the generator (crm/devdata/) are the command line's: they commit as it does.
COMMAND_LINE = "devdata"


def _session_calls(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        f"{path.relative_to(CRM)}:{node.lineno} {node.func.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("commit", "rollback")
        and "session" in ast.unparse(node.func.value)
    ]


def test_no_view_service_or_error_handler_commits_or_rolls_back():
    calls = [
        call
        for path in sorted(CRM.rglob("*.py"))
        if path.relative_to(CRM).as_posix() not in EDGES
        and path.relative_to(CRM).parts[0] != COMMAND_LINE
        for call in _session_calls(path)
    ]
    assert calls == []


# The wiring between features ----------------------------------------------------------------


def test_the_project_page_shows_the_other_features_sections_in_the_listed_order(world, login):
    html = login(world.officer_a).get(f"/projects/{world.project_a.id}").get_data(as_text=True)
    positions = [
        html.index(f'id="{section}"') for section in ("documents", "evaluations", "dossier")
    ]
    assert positions == sorted(positions)


@pytest.mark.parametrize(
    ("role", "heading"),
    [("leader", "的待办</h1>"), ("taskforce_x", "的待办</h1>"), ("officer_a", "的待办</h1>")],
)
def test_each_role_lands_on_its_home_page(world, login, role, heading):
    assert heading in login(getattr(world, role)).get("/").get_data(as_text=True)


def test_the_hooks_an_app_installs_are_the_ones_it_runs(app, world, login):
    """The wiring is read from the app, not from the order modules were imported in."""
    from dataclasses import replace

    from crm import hooks

    installed = app.extensions[hooks.EXTENSION]
    client = login(world.officer_a)
    app.extensions[hooks.EXTENSION] = replace(
        installed, project_panels=installed.project_panels[::-1]
    )
    try:
        html = client.get(f"/projects/{world.project_a.id}").get_data(as_text=True)
    finally:
        app.extensions[hooks.EXTENSION] = installed
    assert (
        html.index('id="dossier"') < html.index('id="evaluations"') < html.index('id="documents"')
    )
