"""Task pages: the list (任务), a task with its history, the new-task form of a project, and
the project page's section of open tasks."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from crm.access import (
    can_cancel_task,
    can_complete_task,
    load_project,
    load_task,
    readable_project_ids,
    scope_key,
)
from crm.auth.models import User
from crm.core import local_today, parse_int
from crm.decisions import AlreadyDecided
from crm.extensions import db
from crm.forms import save_form
from crm.pagination import IdFirstPagination
from crm.projects.models import Project
from crm.projects.panels import Panel
from crm.tasks import services
from crm.tasks.forms import CancelForm, CompleteForm, TaskForm
from crm.tasks.models import Task

bp = Blueprint("tasks", __name__)


def tasks_panel(project: Project, user: User) -> Panel:
    """任务 on the project page: its open tasks, due first, overdue marked; a link to add one
    (anyone who reads the project may)."""
    return Panel(
        "tasks/_panel.html",
        {"tasks": services.project_open_tasks(project), "today": local_today()},
    )


@bp.route("/tasks/")
@login_required
def index():
    f = services.TaskFilter.from_args(request.args)
    today = local_today()
    user_key = current_user.id if f.scope != "all" else None
    page = IdFirstPagination(
        select=lambda: services.task_list_select(current_user, f, today),
        key=("tasks", scope_key(current_user), user_key, f, today),
        load=services.load_list_rows,
        one_pass=bool(f.q),
        page=parse_int(request.args.get("page")) or 1,
        per_page=current_app.config["PAGE_SIZE"],
        error_out=False,
    )
    project = None
    if f.project_id is not None and readable_project_ids(current_user, {f.project_id}):
        project = db.session.get(Project, f.project_id)
    return render_template(
        "tasks/index.html",
        page=page,
        f=f,
        project=project,
        today=today,
        scopes=services.SCOPES,
        states=services.STATES,
        sorts=services.SORTS,
    )


@bp.route("/projects/<int:project_id>/tasks/new", methods=["GET", "POST"])
@login_required
def new(project_id: int):
    project = load_project(current_user, project_id)
    form = TaskForm()
    form.set_assignees(services.assignee_choices(project))
    saved, outcome = save_form(
        form,
        lambda: services.create_task(
            current_user,
            project,
            {
                "title": form.title.data,
                "description": form.description.data,
                "due_on": form.due_on.data,
                "assignee": db.session.get(User, form.assignee_id.data)
                if form.assignee_id.data
                else None,
            },
        ),
    )
    if saved:
        flash(f"已创建任务“{outcome.title}”，并通知{outcome.assignee.display_name}", "success")
        return redirect(url_for("projects.detail", project_id=project.id) + "#tasks")
    status = 400 if request.method == "POST" else 200
    return render_template("tasks/form.html", form=form, project=project), status


@bp.route("/tasks/<int:task_id>")
@login_required
def detail(task_id: int):
    return _render_detail(load_task(current_user, task_id))


def _render_detail(task: Task, status: int = 200, complete=None, cancel=None):
    may_complete = task.is_open and can_complete_task(current_user, task)
    may_cancel = task.is_open and can_cancel_task(current_user, task)
    return render_template(
        "tasks/detail.html",
        task=task,
        today=local_today(),
        history=services.task_history(task),
        complete_form=complete or (CompleteForm(formdata=None) if may_complete else None),
        cancel_form=cancel or (CancelForm(formdata=None) if may_cancel else None),
    ), status


def _decide(task: Task, form, service, done: str):
    """Complete or cancel: saved → back to the task; someone was first → 409 with the task
    as it is now; bad input → 400 with the form's messages."""
    saved, outcome = save_form(form, service, not_at_fields=AlreadyDecided)
    if saved:
        flash(done, "success")
        return redirect(url_for("tasks.detail", task_id=task.id))
    if isinstance(outcome, AlreadyDecided):
        flash(outcome.message, "error")
        db.session.refresh(task)
        return _render_detail(task, 409)
    forms = {"complete": form} if isinstance(form, CompleteForm) else {"cancel": form}
    return _render_detail(task, 400, **forms)


@bp.route("/tasks/<int:task_id>/complete", methods=["POST"])
@login_required
def complete(task_id: int):
    task = load_task(current_user, task_id)
    if not can_complete_task(current_user, task):
        abort(403)
    form = CompleteForm()
    return _decide(
        task,
        form,
        lambda: services.complete_task(current_user, task, form.note.data or ""),
        "任务已完成",
    )


@bp.route("/tasks/<int:task_id>/cancel", methods=["POST"])
@login_required
def cancel(task_id: int):
    task = load_task(current_user, task_id)
    if not can_cancel_task(current_user, task):
        abort(403)
    form = CancelForm()
    return _decide(
        task,
        form,
        lambda: services.cancel_task(current_user, task, form.reason.data or ""),
        "任务已取消",
    )
