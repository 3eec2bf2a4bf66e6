"""Where features plug into each other: one explicit, ordered list per hook.

A feature never imports a feature built on it: `crm/projects` does not import evaluation,
files or reports, `crm/main` does not import 待办, `crm/evaluation` does not import
reports. Where a page or an operation of a lower feature needs something from higher ones, a
hook below names what it needs, who provides it and who calls it. `init_app` (a step of
`create_app`) installs the lists into `app.extensions["crm.hooks"]`, so what runs, and in what
order, is read here, never from the order in which modules happen to be imported.

project_panels
    Sections of the project page (项目详情) below the project's own, in this order: each a
    function `(project, user) -> crm.projects.panels.Panel | None` (None: nothing to show).
    Provided by tasks (任务, `tasks_panel`), files (材料, `documents_panel`), evaluation
    (项目评估, `evaluation_panel`) and reports (尽调摘要, `dossier_panel`). Called by
    `crm.projects.panels.panels_for`, for the project page (`crm.projects.views.detail`).

home
    The home page (`/`) of every role: 待办, the user's work (`crm.todo.views.index`), which
    reads every feature's open work. Called by `crm.main.views.home`.

decision_taken
    What else a leader's decision (集体决策) writes, in the decision's own transaction, so
    that all of it is saved or none: functions `(evaluation, user, decision) -> None`, run in
    order right after `crm.evaluation.services.decide`. Provided by reports
    (`archive_on_decision`: the dossier PDF archived with the decision, when DOSSIER_ARCHIVE is
    on; a dossier that cannot be rendered refuses the decision). Called by the decision page,
    `crm.evaluation.views.decision`.

next_action_changed
    What follows a change of projects' next action (下一步), officer or status, in the same
    transaction: functions `(user, project_ids, *, bulk) -> None`, run after the projects' rows
    are written (`bulk`: many projects at once, the ledger import: a few statements whatever
    their number, no notifications). Provided by tasks (`sync_next_action_tasks`: the officer's
    open 下一步 task created, updated or cancelled to match; `reassign_unreadable_tasks`: an
    open task whose assignee no longer reads the project passes to its officer). Called, through
    `next_action_changed` below, by `crm.projects.records.add_followup`,
    `crm.projects.registration.update_project` and `update_projects_bulk` (when the officer
    changed), `crm.projects.lifecycle.change_status` and
    `crm.projects.conflicts.accept_handover` (the receiving officer takes the project over).
    Registration needs no call: a new project has no next action yet.

Not here: the 签约 gate, a rule of the lifecycle that evaluation plugs into the projects
package (`crm.projects.lifecycle.register_entry_check`), and the project list's filters.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import Flask, current_app

if TYPE_CHECKING:
    from crm.auth.models import User
    from crm.evaluation.models import Decision, Evaluation
    from crm.projects.models import Project
    from crm.projects.panels import Panel

    PanelFunction = Callable[[Project, User], Panel | None]
    DecisionHook = Callable[[Evaluation, User, Decision], None]
    NextActionHook = Callable[..., None]

EXTENSION = "crm.hooks"


@dataclass(frozen=True)
class Hooks:
    project_panels: tuple[PanelFunction, ...]
    home: Callable[[], Any]
    decision_taken: tuple[DecisionHook, ...]
    next_action_changed: tuple[NextActionHook, ...] = ()


def default_hooks() -> Hooks:
    """The app's wiring. This is the one module (with `create_app`) that imports every feature."""
    from crm.evaluation.views import evaluation_panel
    from crm.files.views import documents_panel
    from crm.reports.dossier import archive_on_decision
    from crm.reports.views import dossier_panel
    from crm.tasks.next_actions import sync_next_action_tasks
    from crm.tasks.services import reassign_unreadable_tasks
    from crm.tasks.views import tasks_panel
    from crm.todo.views import index as todo

    return Hooks(
        project_panels=(tasks_panel, documents_panel, evaluation_panel, dossier_panel),
        home=todo,
        decision_taken=(archive_on_decision,),
        next_action_changed=(sync_next_action_tasks, reassign_unreadable_tasks),
    )


def init_app(app: Flask, hooks: Hooks | None = None) -> None:
    app.extensions[EXTENSION] = hooks or default_hooks()


def installed() -> Hooks:
    """The hooks of the current app."""
    return current_app.extensions[EXTENSION]


def next_action_changed(user: User | None, project_ids: Collection[int], *, bulk=False) -> None:
    """Run the `next_action_changed` hooks for `project_ids` (none: nothing runs)."""
    if not project_ids:
        return
    for function in installed().next_action_changed:
        function(user, project_ids, bulk=bulk)
