"""`flask crm generate`: synthetic data in bulk, consistent and reproducible."""

from __future__ import annotations

import sqlalchemy as sa

from crm.devdata.generate import GENERATED_PASSWORD, generate
from crm.evaluation.models import Evaluation
from crm.extensions import db
from crm.projects.models import FollowUp, FundsRecord, Project, StageChange
from crm.projects.stages import Stage


def _login(client, username):
    client.post("/logout", data={})
    response = client.post("/login", data={"username": username, "password": GENERATED_PASSWORD})
    assert response.status_code == 302, f"login as {username} failed"


def test_generate_fills_every_stage_and_the_pages_answer(client, db_session):
    counts = generate(50, seed=3)
    assert counts["projects"] == 50
    assert db.session.scalar(sa.select(sa.func.count(Project.id))) == 50
    followups = db.session.scalar(sa.select(sa.func.count(FollowUp.id)))
    assert 400 <= followups <= 600
    assert {s for (s,) in db.session.execute(sa.select(Project.stage).distinct())} == set(Stage)
    # The stage history leads up to each project's stage, one row per stage reached.
    moves = dict(
        db.session.execute(
            sa.select(StageChange.project_id, sa.func.count()).group_by(StageChange.project_id)
        ).all()
    )
    for project in db.session.scalars(sa.select(Project)):
        assert moves[project.id] == project.stage.order + 1
        if project.stage.order >= Stage.SIGNED.order:
            assert project.signed_on and project.signed_amount
    assert db.session.scalar(sa.select(sa.func.count(FundsRecord.id))) > 0
    assert db.session.scalar(sa.select(sa.func.count(Evaluation.id))) > 0

    _login(client, "gen_leader")
    for url in ("/projects/", "/projects/?stage=ATTRACTING&sort=updated&page=2", "/dashboard/"):
        assert client.get(url).status_code == 200, url
    project_id = db.session.scalar(sa.select(Project.id).order_by(Project.id.desc()).limit(1))
    assert client.get(f"/projects/{project_id}").status_code == 200


def test_the_same_seed_gives_the_same_names(db_session):
    def names(seed):
        first = (db.session.scalar(sa.select(sa.func.max(Project.id))) or 0) + 1
        generate(20, seed=seed, followups=1)
        return db.session.execute(
            sa.select(Project.name, Project.stage, Project.total_investment)
            .where(Project.id >= first)
            .order_by(Project.id)
        ).all()

    one, two, other = names(5), names(5), names(6)
    assert one == two
    assert one != other


def test_the_command(runner, db_session):
    result = runner.invoke(
        args=["crm", "generate", "--projects", "3", "--followups", "2", "--no-analyze"]
    )
    assert result.exit_code == 0, result.output
    assert "projects 3" in result.output
    assert db.session.scalar(sa.select(sa.func.count(Project.id))) == 3


def test_generate_makes_open_tasks_that_match_the_projects_next_actions(client, db_session):
    """About one open task per five projects, a share overdue; each open 下一步 is the next
    action of a 正常 project, given to its officer; every 正常 project with a next action has
    one; and an officer finds them on the task list."""
    from crm.access import can_read_project
    from crm.auth.models import User
    from crm.core import local_today
    from crm.projects.stages import Status
    from crm.tasks.models import Task, TaskKind, TaskStatus

    generate(400, seed=4, followups=1)
    open_tasks = db.session.scalars(sa.select(Task).where(Task.status == TaskStatus.OPEN)).all()
    assert 50 <= len(open_tasks) <= 110
    overdue = [t for t in open_tasks if t.due_on and t.due_on < local_today()]
    assert 0.15 <= len(overdue) / len(open_tasks) <= 0.5
    next_actions = {t.project_id: t for t in open_tasks if t.kind is TaskKind.NEXT_ACTION}
    for project in db.session.scalars(sa.select(Project)):
        task = next_actions.get(project.id)
        if project.status is Status.ACTIVE and project.next_action:
            assert (task.title, task.due_on, task.assignee_id) == (
                project.next_action,
                project.next_action_due,
                project.officer_id,
            )
        else:
            assert task is None
    assert {t.status for t in db.session.scalars(sa.select(Task))} == set(TaskStatus)
    for task in open_tasks:  # given to someone who reads the project
        assert can_read_project(db.session.get(User, task.assignee_id), task.project)

    officer = db.session.get(User, open_tasks[0].assignee_id)
    _login(client, officer.username)
    assert client.get("/tasks/").status_code == 200
