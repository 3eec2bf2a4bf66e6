"""The demo's tasks (任务): a few for every role, some overdue, some done, one cancelled.

They are given, completed and cancelled through the services, so their audit entries and
notifications are what real use leaves; due dates and creation times are then moved back
(a task cannot be created overdue). The 下一步 tasks come by themselves, from the projects'
follow-ups (crm/tasks/next_actions.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa

from crm.auth.models import Role, User
from crm.core import LOCAL_TZ
from crm.extensions import db
from crm.projects.models import Project
from crm.projects.stages import Status
from crm.tasks.services import cancel_task, complete_task, create_task

OFFICER, TASKFORCE, LEADER, ADMIN = "officer", "taskforce", "leader", "admin"

# On the first and second 正常 project of each task force's cluster: (project, creator,
# assignee, title, description, due in days from today, outcome). The outcome is "" (open),
# ("done", note) or ("cancelled", reason).
PLAN = [
    (0, OFFICER, TASKFORCE, "核实项目用地指标", "请核实拟选地块是否纳入年度新增建设用地计划", 5, ""),
    (0, OFFICER, TASKFORCE, "组织要素会商", "邀请自然资源、生态环境部门会商用地和排污指标", -3, ""),
    (0, TASKFORCE, OFFICER, "补充可研报告", "企业可研报告缺少产能测算和达产时间，请督促补充", 2, ""),
    (0, TASKFORCE, OFFICER, "核对签约材料", "", -6, ("done", "已核对投资协议及附件，与评估结论一致")),
    (0, OFFICER, TASKFORCE, "组织现场踏勘", "", 3, ("cancelled", "企业调整考察行程，改由线上对接")),
    (1, LEADER, OFFICER, "准备项目专报", "下周市长办公会听取项目推进情况", 4, ""),
    (1, TASKFORCE, LEADER, "审阅评估结论", "评估已提交，请安排集体决策", -1, ""),
    (1, OFFICER, ADMIN, "更正项目责任人信息", "原责任人已调岗，请在系统中更正", 1, ""),
    (1, ADMIN, OFFICER, "补录实际到位资金", "", -10, ("done", "已补录三笔到位资金")),
]  # fmt: skip


def add_demo_tasks(
    users: dict[str, User], today: date, backdate: Callable[[object, str, datetime], None]
) -> None:
    """The PLAN for each task force in `users` (by username), on projects of its cluster."""
    admin = next(u for u in users.values() if u.role is Role.ADMIN)
    leader = next(u for u in users.values() if u.role is Role.LEADER)
    for taskforce in (u for u in users.values() if u.role is Role.TASKFORCE):
        projects = db.session.scalars(
            sa.select(Project)
            .where(
                Project.cluster_id == taskforce.cluster_id,
                Project.status == Status.ACTIVE,
                Project.is_deleted.is_(False),
            )
            .order_by(Project.id)
            .limit(2)
        ).all()
        if len(projects) < 2:
            continue
        for index, creator, assignee, title, description, days, outcome in PLAN:
            project = projects[index]
            people = {OFFICER: project.officer, TASKFORCE: taskforce, LEADER: leader, ADMIN: admin}
            _one(people[creator], people[assignee], project, title, description, today, days,
                 outcome, backdate)  # fmt: skip


def _one(creator, assignee, project, title, description, today, days, outcome, backdate) -> None:
    task = create_task(
        creator,
        project,
        {
            "title": title,
            "description": description,
            "due_on": today + timedelta(days=max(days, 0)),
            "assignee": assignee,
        },
    )
    due = today + timedelta(days=days)
    task.due_on = due
    db.session.flush()
    backdate(task, "created_at", _at(min(due, today) - timedelta(days=7), 10))
    if outcome:
        kind, text = outcome
        if kind == "done":
            complete_task(assignee, task, text)
            backdate(task, "completed_at", _at(min(due, today), 16))
        else:
            cancel_task(creator, task, text)
            backdate(task, "cancelled_at", _at(today - timedelta(days=1), 16))


def _at(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), LOCAL_TZ).astimezone(UTC)
