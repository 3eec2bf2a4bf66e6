"""任务 (issue 15): creating a task for someone who reads the project, completing and cancelling
it, the list, the project page's section, and a project's 下一步 kept as its officer's task."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from crm.audit.models import AuditEntry
from crm.auth.models import Role
from crm.core import local_today
from crm.extensions import db
from crm.projects import lifecycle, records, registration
from crm.projects.models import FollowUpKind, Project
from crm.projects.stages import Status
from crm.tasks import services
from crm.tasks.models import Task, TaskKind, TaskStatus
from tests import factories


def text(response) -> str:
    return response.get_data(as_text=True)


def tasks(*where) -> list[Task]:
    return list(db.session.scalars(sa.select(Task).where(*where).order_by(Task.id)))


def audited(action: str) -> list[AuditEntry]:
    return list(db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == action)))


def task_form(assignee, **overrides) -> dict:
    data = {
        "title": "报送项目专报",
        "description": "请在周五前报送",
        "due_on": (local_today() + timedelta(days=3)).isoformat(),
        "assignee_id": str(assignee.id),
    }
    data.update(overrides)
    return data


def make_task(world, creator=None, assignee=None, project=None, **kw) -> Task:
    return services.create_task(
        creator or world.officer_a,
        project or world.project_a,
        {
            "title": kw.pop("title", "约请企业高层回访"),
            "description": kw.pop("description", ""),
            "due_on": kw.pop("due_on", local_today() + timedelta(days=2)),
            "assignee": assignee or world.taskforce_x,
        },
    )


def overdue(task: Task, days: int = 3) -> Task:
    """Backdate a task's due date (a task cannot be created overdue)."""
    task.due_on = local_today() - timedelta(days=days)
    db.session.flush()
    return task


# Creating ------------------------------------------------------------------------------------


def test_an_officer_gives_the_task_force_a_task_on_the_project_page(world, login, db_session):
    client = login(world.officer_a)
    page = text(client.get(f"/projects/{world.project_a.id}"))
    assert f'href="/projects/{world.project_a.id}/tasks/new"' in page
    assert "本项目没有进行中的任务" in page

    response = client.post(
        f"/projects/{world.project_a.id}/tasks/new", data=task_form(world.taskforce_x)
    )

    assert response.status_code == 302
    (task,) = tasks()
    assert (task.title, task.assignee_id, task.created_by_id) == (
        "报送项目专报",
        world.taskforce_x.id,
        world.officer_a.id,
    )
    assert (task.status, task.kind) == (TaskStatus.OPEN, TaskKind.TASK)
    assert [e.object_id for e in audited("task_created")] == [task.id]
    page = text(client.get(f"/projects/{world.project_a.id}"))
    assert "报送项目专报" in page and world.taskforce_x.display_name in page


def test_the_assignee_list_offers_only_active_users_who_read_the_project(world, login):
    disabled = factories.user(Role.OFFICER, carrier_=world.carrier_a, is_active=False)
    page = text(login(world.officer_a).get(f"/projects/{world.project_a.id}/tasks/new"))
    offered = set(map(int, re.findall(r'<option value="(\d+)"', page))) - {0}
    readers = {world.officer_a, world.taskforce_x, world.leader, world.admin}
    assert offered == {u.id for u in readers}
    assert disabled.id not in offered


@pytest.mark.parametrize("who", ["officer_b", "taskforce_y"])
def test_a_user_who_cannot_read_the_project_is_refused_at_the_field(world, login, db_session, who):
    client = login(world.officer_a)
    response = client.post(
        f"/projects/{world.project_a.id}/tasks/new", data=task_form(getattr(world, who))
    )
    assert response.status_code == 400
    assert "看不到本项目" in text(response)
    assert tasks() == []


def test_an_unreadable_project_answers_404(world, login, db_session):
    client = login(world.officer_b)
    assert client.get(f"/projects/{world.project_a.id}/tasks/new").status_code == 404
    response = client.post(
        f"/projects/{world.project_a.id}/tasks/new", data=task_form(world.officer_b)
    )
    assert response.status_code == 404
    assert tasks() == []


def test_an_assignee_disabled_meanwhile_is_refused_at_submit(world, login, db_session):
    colleague = factories.user(Role.OFFICER, carrier_=world.carrier_a, display_name="同事甲")
    client = login(world.officer_a)
    assert f'value="{colleague.id}"' in text(
        client.get(f"/projects/{world.project_a.id}/tasks/new")
    )
    colleague.is_active = False  # an admin disables the account while the form is open
    db_session.flush()

    response = client.post(f"/projects/{world.project_a.id}/tasks/new", data=task_form(colleague))

    assert response.status_code == 400
    assert "“同事甲”的账号已停用" in text(response)
    assert tasks() == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"due_on": "下周五"}, "请输入有效日期"),
        ({"due_on": "2026-02-30"}, "请输入有效日期"),
        ({"due_on": ""}, "请填写期限"),
        ({"due_on": "2020-01-01"}, "期限不能早于今天"),
        ({"title": ""}, "请填写任务标题"),
        ({"title": "长" * 5000}, "200"),
        ({"description": "长" * 5000}, "2000"),
        ({"assignee_id": "0"}, "请选择负责人"),
        ({"assignee_id": "abc"}, "不是有效的选择"),
        ({"assignee_id": "999999"}, "请选择负责人"),
    ],
)
def test_bad_input_is_refused_at_the_field_and_saves_nothing(
    world, login, db_session, change, message
):
    client = login(world.officer_a)
    response = client.post(
        f"/projects/{world.project_a.id}/tasks/new", data=task_form(world.taskforce_x, **change)
    )
    assert response.status_code == 400
    body = text(response)
    assert message in body
    assert 'class="error"' in body and "Traceback" not in body
    assert tasks() == []


def test_markup_is_shown_as_text(world, login, db_session):
    script = "<script>alert(1)</script>"
    task = make_task(world, title=script, description=script, assignee=world.officer_a)
    client = login(world.officer_a)
    for url in ("/tasks/", f"/tasks/{task.id}", f"/projects/{world.project_a.id}"):
        body = text(client.get(url))
        assert script not in body, url
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body, url


# Completing and cancelling ---------------------------------------------------------------------


def test_the_assignee_completes_a_task_with_a_note(world, login, db_session):
    task = make_task(world)
    client = login(world.taskforce_x)
    assert "完成任务" in text(client.get(f"/tasks/{task.id}"))

    response = client.post(
        f"/tasks/{task.id}/complete", data={"note": "已报送专报", "confirm": "y"}
    )

    assert response.status_code == 302
    db_session.expire_all()
    assert task.status is TaskStatus.DONE
    assert (task.completion_note, task.completed_by_id) == ("已报送专报", world.taskforce_x.id)
    assert task.completed_at is not None
    assert [e.object_id for e in audited("task_completed")] == [task.id]
    page = text(client.get(f"/tasks/{task.id}"))
    assert "已完成" in page and "已报送专报" in page
    assert "创建任务" in page and "完成任务" in page  # the history
    assert f'action="/tasks/{task.id}/complete"' not in page


def test_completing_asks_for_confirmation(world, login, db_session):
    task = make_task(world)
    response = login(world.taskforce_x).post(f"/tasks/{task.id}/complete", data={"note": "好"})
    assert response.status_code == 400
    assert "请勾选“确认完成”" in text(response)
    db_session.expire_all()
    assert task.status is TaskStatus.OPEN


@pytest.mark.parametrize("who", ["officer_a", "leader", "admin"])
def test_only_the_assignee_completes(world, login, db_session, who):
    task = make_task(world)
    client = login(getattr(world, who))
    assert f'action="/tasks/{task.id}/complete"' not in text(client.get(f"/tasks/{task.id}"))
    response = client.post(f"/tasks/{task.id}/complete", data={"confirm": "y"})
    assert response.status_code == 403
    db_session.expire_all()
    assert task.status is TaskStatus.OPEN


@pytest.mark.parametrize(
    ("who", "status"), [("officer_a", 302), ("admin", 302), ("taskforce_x", 403), ("leader", 403)]
)
def test_the_creator_or_an_admin_cancels_with_a_reason(world, login, db_session, who, status):
    task = make_task(world)
    response = login(getattr(world, who)).post(
        f"/tasks/{task.id}/cancel", data={"reason": "企业已自行报送", "confirm": "y"}
    )
    assert response.status_code == status
    db_session.expire_all()
    if status == 302:
        assert (task.status, task.cancel_reason) == (TaskStatus.CANCELLED, "企业已自行报送")
        assert task.cancelled_by_id == getattr(world, who).id
        assert len(audited("task_cancelled")) == 1
    else:
        assert task.status is TaskStatus.OPEN


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"reason": "", "confirm": "y"}, "请说明取消原因"),
        ({"reason": "长" * 5000, "confirm": "y"}, "500"),
        ({"reason": "不再需要"}, "请勾选“确认取消”"),
    ],
)
def test_a_cancel_without_reason_or_confirmation_is_refused(
    world, login, db_session, data, message
):
    task = make_task(world)
    response = login(world.officer_a).post(f"/tasks/{task.id}/cancel", data=data)
    assert response.status_code == 400
    assert message in text(response)
    db_session.expire_all()
    assert task.status is TaskStatus.OPEN


def test_a_task_of_an_unreadable_project_answers_404(world, login, db_session):
    task = make_task(world)
    for who in (world.officer_b, world.taskforce_y):
        client = login(who)
        assert client.get(f"/tasks/{task.id}").status_code == 404
        assert client.post(f"/tasks/{task.id}/complete", data={"confirm": "y"}).status_code == 404
        assert (
            client.post(
                f"/tasks/{task.id}/cancel", data={"reason": "x", "confirm": "y"}
            ).status_code
            == 404
        )


def test_a_second_completion_answers_409(world, login, db_session):
    """The page was loaded before the task was closed: a second click finds it done."""
    task = make_task(world)
    client = login(world.taskforce_x)
    first = client.post(f"/tasks/{task.id}/complete", data={"note": "第一次", "confirm": "y"})
    second = client.post(f"/tasks/{task.id}/complete", data={"note": "第二次", "confirm": "y"})
    assert (first.status_code, second.status_code) == (302, 409)
    assert "该事项刚被他人处理" in text(second)
    db_session.expire_all()
    assert task.completion_note == "第一次"
    assert len(audited("task_completed")) == 1


def test_a_task_closed_meanwhile_refuses_the_other_decision(world, db_session):
    """The conditional UPDATE decides: a task cancelled after this request loaded it (the
    object still says open) is not completed as well."""
    from crm.decisions import AlreadyDecided

    task = make_task(world)
    db_session.execute(
        sa.update(Task.__table__)
        .where(Task.id == task.id)
        .values(status=TaskStatus.CANCELLED, cancel_reason="先到的取消")
    )
    assert task.is_open  # as loaded
    with pytest.raises(AlreadyDecided):
        services.complete_task(world.taskforce_x, task, "后到的完成")
    db_session.expire_all()
    assert (task.status, task.cancel_reason) == (TaskStatus.CANCELLED, "先到的取消")


# The list ---------------------------------------------------------------------------------------


@pytest.fixture
def listed(world, db_session):
    """Tasks of project A: for taskforce_x (one overdue, one done, one cancelled) and for the
    officer; one of project B for officer_b."""
    t = {
        "due": make_task(world, title="核实用地指标"),
        "late": overdue(make_task(world, title="报送季度台账")),
        "done": make_task(world, title="整理签约材料"),
        "dropped": make_task(world, title="组织现场踏勘"),
        "officer": make_task(
            world, creator=world.taskforce_x, assignee=world.officer_a, title="补充可研报告"
        ),
        "other": make_task(
            world,
            creator=world.officer_b,
            assignee=world.officer_b,
            project=world.project_b,
            title="乙县的任务",
        ),
    }
    services.complete_task(world.taskforce_x, t["done"], "")
    services.cancel_task(world.officer_a, t["dropped"], "不再需要")
    db_session.flush()
    return t


def titles(html: str) -> list[str]:
    return re.findall(r'<a href="/tasks/\d+">([^<]+)</a>', html)


@pytest.mark.parametrize(
    ("who", "query", "expected"),
    [
        ("taskforce_x", "", ["报送季度台账", "核实用地指标"]),  # mine, open, due first
        ("taskforce_x", "?state=overdue", ["报送季度台账"]),
        ("taskforce_x", "?state=done", ["整理签约材料"]),
        ("taskforce_x", "?state=cancelled", ["组织现场踏勘"]),
        ("taskforce_x", "?scope=created", ["补充可研报告"]),
        (
            "officer_a",
            "?scope=created&state=any",
            ["报送季度台账", "核实用地指标", "整理签约材料", "组织现场踏勘"],
        ),
        ("officer_a", "?scope=all", ["报送季度台账", "核实用地指标", "补充可研报告"]),
        ("officer_a", "?scope=all&q=用地", ["核实用地指标"]),
        ("officer_a", "?scope=all&q=%25", []),  # a LIKE wildcard is a character
        ("leader", "?scope=all", ["报送季度台账", "核实用地指标", "补充可研报告", "乙县的任务"]),
        ("officer_b", "?scope=all&state=any", ["乙县的任务"]),
        ("taskforce_y", "?scope=all&state=any", ["乙县的任务"]),  # project B: cluster Y
        ("taskforce_y", "?state=any", []),
    ],
)
def test_the_list_filters(world, login, listed, who, query, expected):
    """Each list in due order (the overdue first), ties by creation."""
    body = text(login(getattr(world, who)).get("/tasks/" + query))
    assert titles(body) == expected


def test_the_list_marks_overdue_tasks_in_red(world, login, listed):
    body = text(login(world.taskforce_x).get("/tasks/"))
    rows = {titles(row)[0]: row for row in re.findall(r"<tr>.*?</tr>", body, re.S)[1:]}
    assert 'class="badge stale">逾期 3 天' in rows["报送季度台账"]
    assert "逾期" not in rows["核实用地指标"]


def test_the_list_by_project(world, login, listed):
    client = login(world.leader)
    body = text(client.get(f"/tasks/?scope=all&project={world.project_b.id}"))
    assert titles(body) == ["乙县的任务"] and world.project_b.name in body
    # Another user's unreadable project filters to nothing and names nothing.
    body = text(login(world.officer_a).get(f"/tasks/?scope=all&project={world.project_b.id}"))
    assert titles(body) == [] and world.project_b.name not in body


def test_the_list_says_when_it_is_empty(world, login, db_session):
    body = text(login(world.officer_a).get("/tasks/"))
    assert "没有指派给您的进行中任务" in body
    body = text(login(world.officer_a).get("/tasks/?q=不存在"))
    assert "没有标题或说明含“不存在”的任务" in body


def test_the_list_pages(world, login, db_session, app, monkeypatch):
    monkeypatch.setitem(app.config, "PAGE_SIZE", 2)
    for n in range(5):
        make_task(world, title=f"任务{n}", due_on=local_today() + timedelta(days=n + 1))
    client = login(world.taskforce_x)
    first, third = text(client.get("/tasks/")), text(client.get("/tasks/?page=3"))
    assert titles(first) == ["任务0", "任务1"] and titles(third) == ["任务4"]
    assert "共 5 条" in first


def test_the_navigation_links_to_the_tasks(world, login):
    assert 'href="/tasks/"' in text(login(world.leader).get("/projects/"))


def test_the_project_page_lists_open_tasks_overdue_in_red(world, login, listed):
    body = text(login(world.officer_a).get(f"/projects/{world.project_a.id}"))
    section = re.search(r'<section class="card" id="tasks">.*?</section>', body, re.S).group(0)
    assert sorted(titles(section)) == ["报送季度台账", "核实用地指标", "补充可研报告"]
    assert "逾期 3 天" in section


# 待办: the user's open tasks ---------------------------------------------------------------------


def test_open_tasks_for_a_user_due_first(world, listed, db_session):
    found = services.open_tasks_for(world.taskforce_x, limit=10)
    assert [t.title for t in found] == ["报送季度台账", "核实用地指标"]
    assert services.count_open_tasks_for(world.taskforce_x) == 2
    assert services.count_open_tasks_for(world.officer_b) == 1
    # The project comes with the task: no further query.
    with db_session.no_autoflush:
        assert {t.project.name for t in found} == {world.project_a.name}
    assert [t.title for t in services.open_tasks_for(world.taskforce_x, limit=1)] == [
        "报送季度台账"
    ]


def test_open_tasks_leave_out_projects_the_user_no_longer_reads(world, db_session):
    make_task(world, assignee=world.taskforce_x)
    world.project_a.cluster_id = world.cluster_y.id  # moved to another cluster, not by a service
    db_session.flush()
    assert services.open_tasks_for(world.taskforce_x) == []


def test_a_task_passes_to_the_officer_when_its_project_leaves_the_assignees_scope(
    world, db_session
):
    """Moved to another cluster through the project's edit: the old cluster's task force no
    longer reads it, so its open task passes to the project's officer (and is counted there)."""
    from crm.projects.registration import update_project

    task = make_task(world, assignee=world.taskforce_x)
    project = world.project_a
    update_project(
        world.officer_a,
        project,
        {"name": project.name, "cluster_id": world.cluster_y.id},
        loaded_version=project.version,
    )
    assert task.assignee_id == world.officer_a.id
    assert services.count_open_tasks_for(world.taskforce_x) == 0


def _plan(statement) -> str:
    """The plan of `statement`, SQLite's or PostgreSQL's (EXPLAIN; the test's two projects
    fit in one page, which PostgreSQL would rather read whole: sequential scans priced out)."""
    sql = str(statement.compile(db.engine, compile_kwargs={"literal_binds": True}))
    if db.engine.dialect.name == "sqlite":
        return "\n".join(r[3] for r in db.session.execute(sa.text("EXPLAIN QUERY PLAN " + sql)))
    db.session.execute(sa.text("SET LOCAL enable_seqscan = off"))
    return "\n".join(r[0] for r in db.session.execute(sa.text("EXPLAIN " + sql)))


@pytest.fixture
def busy(world, listed, db_session):
    """Enough tasks, of 40 more users, for PostgreSQL's planner to choose as it would with real
    data (statistics taken in the test's transaction); SQLite's plans do not depend on it."""
    users = [factories.user(Role.OFFICER, carrier_=world.carrier_a) for _ in range(40)]
    today = local_today()
    db_session.execute(
        sa.insert(Task),
        [
            {
                "project_id": world.project_a.id,
                "title": f"任务{n}",
                "due_on": today + timedelta(days=n % 60 - 20),
                "assignee_id": users[n % 40].id,
                "created_by_id": users[(n + 1) % 40].id,
                "status": [TaskStatus.OPEN, TaskStatus.DONE, TaskStatus.CANCELLED][n % 3],
            }
            for n in range(4000)
        ],
    )
    if db.engine.dialect.name == "postgresql":
        db_session.execute(sa.text("ANALYZE tasks"))
        db_session.execute(sa.text("ANALYZE projects"))
    return listed


def _scans(plan: str) -> list[str]:
    """Reads of a whole table (not of an index)."""
    return re.findall(r"^SCAN (?:tasks|projects)$|Seq Scan on \w+", plan, re.M)


@pytest.mark.parametrize("role", ["officer_a", "taskforce_x", "leader"])
def test_open_tasks_are_one_indexed_query_each(world, busy, db_session, count_queries, role):
    user = getattr(world, role)
    with count_queries() as counter:
        services.open_tasks_for(user, limit=20)
    assert counter.count == 1
    with count_queries() as counter:
        services.count_open_tasks_for(user)
    assert counter.count == 1

    statements = []

    def keep(conn, cursor, statement, parameters, context, executemany):
        statements.append(context.compiled.statement)

    sa.event.listen(db.engine, "before_cursor_execute", keep)
    try:
        services.open_tasks_for(user, limit=20)
        services.count_open_tasks_for(user)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", keep)
    for statement in statements:
        plan = _plan(statement)
        assert "ix_tasks_assignee_id_status_due_on" in plan, plan
        assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan  # read in due order
        assert not _scans(plan), plan


# A project's 下一步 is its officer's task ---------------------------------------------------------


def followup(world, user=None, project=None, action="起草投资协议", due_days=5):
    return records.add_followup(
        user or world.officer_a,
        project or world.project_a,
        {
            "kind": FollowUpKind.CALL,
            "happened_on": local_today(),
            "summary": "电话沟通",
            "next_action": action,
            "next_action_due": local_today() + timedelta(days=due_days) if action else None,
        },
        [],
    )


def next_action_tasks(project, status=TaskStatus.OPEN) -> list[Task]:
    return tasks(
        Task.project_id == project.id, Task.kind == TaskKind.NEXT_ACTION, Task.status == status
    )


def test_a_followups_next_action_becomes_the_officers_task(world, db_session):
    followup(world, user=world.taskforce_x)
    (task,) = next_action_tasks(world.project_a)
    assert (task.title, task.due_on, task.assignee_id) == (
        "起草投资协议",
        local_today() + timedelta(days=5),
        world.officer_a.id,
    )
    assert task.created_by_id == world.taskforce_x.id

    followup(world, action="报送项目专报", due_days=9)  # a new next action: the same task
    db_session.expire_all()
    (same,) = next_action_tasks(world.project_a)
    assert same.id == task.id
    assert (same.title, same.due_on) == ("报送项目专报", local_today() + timedelta(days=9))
    assert [e.object_id for e in audited("task_updated")] == [task.id]

    followup(world, action="")  # the next action cleared: the task cancelled
    assert next_action_tasks(world.project_a) == []
    (cancelled,) = next_action_tasks(world.project_a, TaskStatus.CANCELLED)
    assert cancelled.id == task.id and cancelled.cancel_reason


@pytest.mark.parametrize("action", ["起草投资协议", "起草投资协议" + "并" * 400])
def test_completing_the_next_action_task_clears_the_projects_next_action(
    world, login, db_session, action
):
    """Also a next action longer than a task's title (the task holds its first 200)."""
    followup(world, action=action)
    (task,) = next_action_tasks(world.project_a)
    response = login(world.officer_a).post(
        f"/tasks/{task.id}/complete", data={"note": "协议草稿已发企业", "confirm": "y"}
    )
    assert response.status_code == 302
    db_session.expire_all()
    project = db_session.get(Project, world.project_a.id)
    assert (project.next_action, project.next_action_due) == ("", None)
    assert next_action_tasks(project) == []

    followup(world, action="约请企业高层回访")  # the next one is a new task
    (new,) = next_action_tasks(project)
    assert new.id != task.id


def test_the_next_action_task_follows_the_officer(world, login, db_session):
    followup(world)
    colleague = factories.user(Role.OFFICER, carrier_=world.carrier_a)
    project = world.project_a
    registration.update_project(
        world.admin,
        project,
        {
            **{k: getattr(project, k) for k in registration.PROJECT_FIELDS},
            "officer_id": colleague.id,
        },
        project.version,
    )
    (task,) = next_action_tasks(project)
    assert task.assignee_id == colleague.id


def test_a_project_leaving_active_cancels_its_next_action_task(world, db_session):
    followup(world)
    lifecycle.change_status(
        world.officer_a,
        world.project_a,
        Status.ON_HOLD,
        reason="企业暂缓投资",
        effective_on=local_today(),
    )
    assert next_action_tasks(world.project_a) == []
    lifecycle.change_status(
        world.officer_a, world.project_a, Status.ACTIVE, effective_on=local_today()
    )
    (task,) = next_action_tasks(world.project_a)
    assert task.title == "起草投资协议"


def test_an_accepted_hand_over_gives_the_next_action_task_to_the_receiving_officer(
    world, db_session
):
    from crm.projects.conflicts import accept_handover, handover_project

    followup(world)
    handover = handover_project(
        world.taskforce_x,
        world.project_a,
        world.carrier_b,
        world.officer_b,
        "项目选址调整至乙县工业园",
        loaded_version=world.project_a.version,
    )
    (task,) = next_action_tasks(world.project_a)
    assert task.assignee_id == world.officer_a.id  # offered only: still the sender's
    accept_handover(world.officer_b, handover, world.officer_b)
    db_session.expire_all()
    (task,) = next_action_tasks(world.project_a)
    assert task.assignee_id == world.officer_b.id
    assert [t.title for t in services.open_tasks_for(world.officer_b)] == ["起草投资协议"]


def test_the_bulk_update_reassigns_next_action_tasks_in_a_few_statements(
    world, db_session, count_queries
):
    colleague = factories.user(Role.OFFICER, carrier_=world.carrier_a)
    projects = [
        factories.project(world.carrier_a, world.cluster_x, world.officer_a, world.channel)
        for _ in range(12)
    ]
    for p in projects:
        followup(world, project=p)
    updates = [
        registration.ProjectUpdate(
            p,
            {**{k: getattr(p, k) for k in registration.PROJECT_FIELDS}, "officer_id": colleague.id},
            p.company.name,
        )
        for p in projects
    ]
    with count_queries() as counter:
        registration.update_projects_bulk(world.admin, updates)
    # The projects' UPDATE and audit, then the tasks: read projects, read tasks, one UPDATE,
    # its audit — whatever the number of projects.
    assert counter.count <= 8, counter.statements
    assert {t.assignee_id for p in projects for t in next_action_tasks(p)} == {colleague.id}


def test_a_project_has_one_open_next_action_task_at_most(world, db_session):
    from sqlalchemy.exc import IntegrityError

    followup(world)
    with pytest.raises(IntegrityError), db_session.begin_nested():
        db_session.add(
            Task(
                project_id=world.project_a.id,
                kind=TaskKind.NEXT_ACTION,
                title="第二个下一步",
                assignee_id=world.officer_a.id,
                status=TaskStatus.OPEN,
            )
        )
        db_session.flush()


# Simultaneous decisions, on committed data ---------------------------------------------------------


@pytest.mark.parametrize("mix", ["complete", "both"])
def test_simultaneous_completions_and_cancellations_make_one_decision(
    app, monkeypatch, tmp_path, mix
):
    """Twenty browsers close the same task at once (the assignee completing it, or, for
    "both", also the creator cancelling it): one wins, every other gets 409."""
    from tests.test_concurrency import THREADS, _one_won, race_each
    from tests.test_evaluation import committed_database, sessions_on

    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)
    with committed_database(tmp_path) as engine, sessions_on(engine) as session:
        world = factories.World.build()
        # The creator and the assignee are one officer here, so one browser kind can do both.
        task = make_task(world, assignee=world.officer_a)
        session.commit()
        task_id, officer = task.id, world.officer_a.username
        session.remove()
        complete = (f"/tasks/{task_id}/complete", {"note": "已完成", "confirm": "y"})
        cancel = (f"/tasks/{task_id}/cancel", {"reason": "不再需要", "confirm": "y"})
        requests = (
            [complete] * THREADS if mix == "complete" else [complete, cancel] * (THREADS // 2)
        )

        bodies: list = []
        statuses = race_each(app, officer, "POST", requests, bodies)

        _one_won(statuses, bodies)
        task = session.get(Task, task_id)
        assert task.status in (TaskStatus.DONE, TaskStatus.CANCELLED)
        closed = session.scalar(
            sa.select(sa.func.count()).where(
                AuditEntry.action.in_(["task_completed", "task_cancelled"])
            )
        )
        assert closed == 1


def test_the_migration_gives_active_projects_with_a_next_action_their_task(tmp_path):
    """Upgrading a database that has projects: each 正常 project with a next action gets its
    officer's open 下一步 task; a project on hold or without one gets none."""
    from flask_migrate import downgrade, upgrade

    from config import TestingConfig
    from crm import create_app
    from tests.test_evaluation import sessions_on
    from tests.test_migrations import script_directory, separate_database

    with separate_database(tmp_path) as url:

        class Config(TestingConfig):
            SQLALCHEMY_DATABASE_URI = url

        other = create_app(Config)
        try:
            with other.app_context():
                upgrade()  # the models' schema, for the factories; then back before tasks
                with sessions_on(db.engine) as session:
                    world = factories.World.build()
                    due = local_today() + timedelta(days=4)
                    world.project_a.next_action, world.project_a.next_action_due = (
                        "起草投资协议",
                        due,
                    )
                    held = factories.project(
                        world.carrier_a,
                        world.cluster_x,
                        world.officer_a,
                        world.channel,
                        status=Status.ON_HOLD,
                        next_action="等待企业回复",
                    )
                    session.commit()
                    expected = {(world.project_a.id, "起草投资协议", due, world.officer_a.id)}
                    held_id = held.id
                downgrade(revision=script_directory().get_revision("33f1ad376483").down_revision)
                upgrade()
                with sessions_on(db.engine) as session:
                    found = session.execute(
                        sa.select(Task.project_id, Task.title, Task.due_on, Task.assignee_id).where(
                            Task.kind == TaskKind.NEXT_ACTION, Task.status == TaskStatus.OPEN
                        )
                    ).all()
                    assert set(found) == expected
                    assert held_id not in {row.project_id for row in found}
        finally:
            with other.app_context():
                db.engine.dispose()


# Notifications ---------------------------------------------------------------------------------------


def notes(user) -> list[tuple]:
    from crm.notifications.models import Notification

    return [
        (n.kind.name, n.url)
        for n in db.session.scalars(
            sa.select(Notification).where(Notification.user_id == user.id).order_by(Notification.id)
        )
    ]


def test_assigning_completing_and_cancelling_notify_the_other_side(world, login, db_session):
    client = login(world.officer_a)
    client.post(f"/projects/{world.project_a.id}/tasks/new", data=task_form(world.taskforce_x))
    (task,) = tasks()
    link = f"/tasks/{task.id}"
    assert notes(world.taskforce_x) == [("TASK_ASSIGNED", link)]
    assert notes(world.officer_a) == []  # not the one who did it

    login(world.taskforce_x).post(f"{link}/complete", data={"note": "已办", "confirm": "y"})
    assert notes(world.officer_a) == [("TASK_COMPLETED", link)]

    other = make_task(world, title="第二项任务")
    login(world.officer_a).post(
        f"/tasks/{other.id}/cancel", data={"reason": "不再需要", "confirm": "y"}
    )
    assert notes(world.taskforce_x)[-1] == ("TASK_CANCELLED", f"/tasks/{other.id}")
    # Nobody of another 载体 or cluster heard of any of it.
    assert notes(world.officer_b) == notes(world.taskforce_y) == []


def test_the_officer_hears_of_a_next_action_someone_else_set(world, db_session):
    followup(world, user=world.taskforce_x)
    (task,) = next_action_tasks(world.project_a)
    assert notes(world.officer_a) == [("TASK_ASSIGNED", f"/tasks/{task.id}")]
    followup(world)  # the officer's own next action: no notification to himself
    assert len(notes(world.officer_a)) == 1


def test_a_long_completion_note_is_refused_at_the_field(world, login, db_session):
    task = make_task(world)
    response = login(world.taskforce_x).post(
        f"/tasks/{task.id}/complete", data={"note": "长" * 5000, "confirm": "y"}
    )
    assert response.status_code == 400
    assert "2000" in text(response)
    db_session.expire_all()
    assert task.status is TaskStatus.OPEN


def test_cancelling_the_next_action_task_drops_the_projects_next_action(world, db_session):
    followup(world)
    (task,) = next_action_tasks(world.project_a)
    services.cancel_task(world.officer_a, task, "企业已明确不再推进该事项")
    db_session.flush()
    db_session.expire_all()
    project = db_session.get(Project, world.project_a.id)
    assert (project.next_action, project.next_action_due) == ("", None)


def test_the_list_reads_as_many_statements_for_many_tasks_as_for_few(
    world, login, db_session, count_queries
):
    client = login(world.taskforce_x)

    def statements() -> int:
        with count_queries() as counter:
            assert client.get("/tasks/?scope=all&state=any").status_code == 200
        return counter.count

    make_task(world)
    few = statements()
    for n in range(8):
        other = factories.user(Role.OFFICER, carrier_=world.carrier_a)
        make_task(world, creator=other, assignee=world.officer_a, title=f"任务{n}")
    assert statements() == few


@pytest.mark.parametrize("role", ["officer_a", "leader"])
@pytest.mark.parametrize(
    "args",
    [{}, {"scope": "all"}, {"scope": "all", "state": "any"}, {"scope": "created"}],
    ids=["mine", "all", "all-any-state", "created"],
)
def test_the_list_reads_its_page_and_count_from_indexes(world, busy, role, args):
    """The page of ids (at an offset) and the count read indexes, never a whole table; a
    user's own lists (given to or by the user) read that user's tasks in due order, no sort.
    (Which side of the join the list of all readable tasks starts from depends on how many
    projects and tasks there are: the planner's to choose, on real data.)"""
    from werkzeug.datastructures import MultiDict

    f = services.TaskFilter.from_args(MultiDict(args))
    select = services.task_list_select(getattr(world, role), f, local_today())
    ids = select.with_only_columns(Task.id)
    count = sa.select(sa.func.count()).select_from(ids.order_by(None).subquery())
    for statement in (ids.limit(50).offset(4950), count):
        plan = _plan(statement)
        assert "ix_tasks_" in plan, plan
        assert not _scans(plan), plan
        if f.scope != "all":
            assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan
