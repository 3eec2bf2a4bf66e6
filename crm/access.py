"""Permission rules, in one place.

Every query that lists or loads a project or a company goes through `project_scope` /
`company_scope`; every action is asked of `can`. Who sees what:
- 招商专员 (officer): the projects of its 载体; acts on them.
- 产业专班 (task force): the projects of its cluster in every 载体; follows up, element needs,
  fills and submits evaluations.
- 领导 (leader): everything; takes the collective decision on evaluations, hands projects over
  to another 载体 (流转) and settles cross-载体 conflicts; changes nothing else.
- 管理员 (admin): everything but the decision.
- 部门用户 (department user): no project, company, evaluation, file, task or conflict (scope
  "none": every loader answers 404, every list is empty) and no project action; its records
  will be the 诉求 addressed to its 部门.

The task force also verifies (甄别) the moves into 签约, 开工 and 投产 of its cluster's projects,
hands them over and settles conflicts.

A project offered to another 载体 (流转, waiting for acceptance) stays with the sending 载体;
the receiving 载体's officers may open it (and only open it) to accept or decline it. That case
is checked where one project is (`can_read_project`, the loaders), never in the lists' scope.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from dataclasses import dataclass
from functools import wraps

import sqlalchemy as sa
from flask import abort, current_app
from flask_login import current_user, login_required
from sqlalchemy.orm import joinedload

from crm.auth.models import Role, User
from crm.companies.models import Company
from crm.evaluation.models import Evaluation
from crm.extensions import db
from crm.files.models import StoredFile
from crm.projects.models import Handover, HandoverState, Project, ProjectConflict
from crm.tasks.models import Task


class Action(enum.Enum):
    VIEW = "view"
    EDIT = "edit"  # profile, figures, dates
    MOVE = "move"  # stage and status
    FUNDS = "funds"
    FOLLOW_UP = "follow_up"
    ELEMENTS = "elements"
    DOCUMENTS = "documents"  # upload project documents (投资协议, 可研报告, …)
    RESTORE_DOCUMENTS = "restore_documents"  # bring back a removed document (admins)
    START_EVALUATION = "start_evaluation"
    FILL_EVALUATION = "fill_evaluation"  # verdicts, comments, scores, evidence
    SUBMIT_EVALUATION = "submit_evaluation"  # 草稿 → 待决策, by the task force
    DECIDE = "decide"  # 集体决策, leaders only
    VERIFY = "verify"  # 甄别: verify or reject a move into 签约, 开工 or 投产
    HANDOVER = "handover"  # 流转: offer the project to another 载体, or withdraw the offer
    RECEIVE_HANDOVER = "receive_handover"  # accept or decline a project offered to a 载体
    RESOLVE_CONFLICT = "resolve_conflict"  # settle two 载体 courting the same company


# Which roles may take which action on a project they can see.
_PROJECT_ACTIONS: dict[Role, set[Action]] = {
    Role.ADMIN: set(Action) - {Action.DECIDE},
    Role.OFFICER: set(Action)
    - {
        Action.RESTORE_DOCUMENTS,
        Action.SUBMIT_EVALUATION,
        Action.DECIDE,
        Action.VERIFY,
        Action.HANDOVER,
        Action.RECEIVE_HANDOVER,  # an officer receives only into its 载体 (_RECEIVER_ACTIONS)
        Action.RESOLVE_CONFLICT,
    },
    Role.TASKFORCE: {
        Action.VIEW,
        Action.FOLLOW_UP,
        Action.ELEMENTS,
        Action.DOCUMENTS,
        Action.FILL_EVALUATION,
        Action.SUBMIT_EVALUATION,
        Action.VERIFY,
        Action.HANDOVER,
        Action.RECEIVE_HANDOVER,
        Action.RESOLVE_CONFLICT,
    },
    Role.LEADER: {
        Action.VIEW,
        Action.DECIDE,
        Action.HANDOVER,
        Action.RECEIVE_HANDOVER,
        Action.RESOLVE_CONFLICT,
    },
}

# What the officers of the 载体 a project is offered to (流转, pending) may do on it.
_RECEIVER_ACTIONS = {Action.VIEW, Action.RECEIVE_HANDOVER}


# What each role reads: an officer its own 载体's projects, a task force its cluster's in every
# 载体, a leader or an admin all of them; anyone else (a department user) none.
_SCOPE_KIND = {
    Role.ADMIN: "all",
    Role.LEADER: "all",
    Role.OFFICER: "carrier",
    Role.TASKFORCE: "cluster",
}


def _scope_kind(user) -> str:
    """The kind of `user`'s scope, read from the role alone (no query, even for a stand-in)."""
    return _SCOPE_KIND.get(getattr(user, "role", None), "none")


def scope_key(user: User) -> tuple:
    """Which projects `user` may read, as a value: users with the same key read the same
    projects (`_SCOPE_KIND`, with the 载体 or cluster it is pinned to)."""
    kind = _scope_kind(user)
    if kind == "carrier":
        return (kind, user.carrier_id)
    if kind == "cluster":
        return (kind, user.cluster_id)
    return (kind,)


# The projects a scope of each kind (`scope_key`) reads: the attribute of a project that must
# equal the key's value. "all" reads every live project, any other kind none. The SQL clause
# (`project_scope`) and the check of one loaded project (`can_read_project`) both read it.
_SCOPE_ATTRIBUTE = {"carrier": "carrier_id", "cluster": "cluster_id"}


def own_carrier_id(user: User) -> int | None:
    """An officer works in its own 载体: the id of that 载体, which its projects, the companies
    it registers and its imports belong to. None for the other roles, who work across 载体."""
    return user.carrier_id if _scope_kind(user) == "carrier" else None


def is_admin(user: User) -> bool:
    """系统管理: users, catalogues, checklist templates, the audit log."""
    return getattr(user, "role", None) is Role.ADMIN


def admin_required(view):
    """A view for admins only: signed in (else to the login page), admin (else 403)."""

    @wraps(view)
    @login_required
    def wrapped(*args, **kwargs):
        if not is_admin(current_user):
            abort(403)
        return view(*args, **kwargs)

    return wrapped


@dataclass(frozen=True)
class PageRights:
    """What the pages offer the signed-in user beyond a project's actions: plain booleans for
    the templates (`rights` in every template)."""

    administer: bool = False  # the 系统管理 menu
    carrier_fixed: bool = False  # works in its own 载体: no 载体 to choose, imports only its own
    cluster_fixed: bool = False  # reads one cluster: no cluster to choose
    pipeline: bool = False  # reads projects: 统计, 任务, 项目, 企业, 待决策, 冲突 in the navigation


def page_rights(user) -> PageRights:
    """Read from the role alone: an error page after a failed query shows the header without
    loading the user again."""
    if not getattr(user, "is_authenticated", False):
        return PageRights()
    kind = _scope_kind(user)
    return PageRights(
        administer=is_admin(user),
        carrier_fixed=kind == "carrier",
        cluster_fixed=kind == "cluster",
        pipeline=kind != "none",
    )


def project_scope(user: User) -> sa.ColumnElement[bool]:
    """The WHERE clause selecting the projects `user` may read (`scope_key`), deleted ones never."""
    kind, *value = scope_key(user)
    alive = Project.is_deleted.is_(False)
    if kind == "all":
        return alive
    if kind in _SCOPE_ATTRIBUTE:
        return sa.and_(alive, getattr(Project, _SCOPE_ATTRIBUTE[kind]) == value[0])
    return sa.false()


def readable_project(user: User, project_id: sa.ColumnElement[int]) -> sa.ColumnElement[bool]:
    """The project `project_id` (a column of another table) is one `user` may read, checked row
    by row (EXISTS): for tables of few rows, or read newest first a page at a time, where
    listing every readable project first (100,000 for a leader) would cost more."""
    return sa.exists().where(Project.id == project_id, project_scope(user))


def readable_project_ids(user: User, ids: set[int]) -> set[int]:
    """Which of the projects `ids` `user` may read (one query; none for no ids)."""
    if not ids:
        return set()
    return set(
        db.session.scalars(sa.select(Project.id).where(Project.id.in_(ids), project_scope(user)))
    )


def company_scope(user: User) -> sa.ColumnElement[bool]:
    """Companies `user` may read: those behind a readable project, or registered by its 载体."""
    alive = Company.is_deleted.is_(False)
    if _scope_kind(user) == "none":
        return sa.false()
    if user.role in (Role.ADMIN, Role.LEADER):
        return alive
    has_project = (
        sa.select(Project.id).where(Project.company_id == Company.id, project_scope(user)).exists()
    )
    if user.role is Role.OFFICER:
        return sa.and_(
            alive, sa.or_(Company.registered_by_carrier_id == user.carrier_id, has_project)
        )
    return sa.and_(alive, has_project)


def _in_scope(user: User, project: Project) -> bool:
    """`project_scope` for one loaded project, from the same rule."""
    kind, *value = scope_key(user)
    if project.is_deleted:
        return False
    if kind == "all":
        return True
    if kind in _SCOPE_ATTRIBUTE:
        return getattr(project, _SCOPE_ATTRIBUTE[kind]) == value[0]
    return False


def _receiving(user: User) -> sa.ColumnElement[bool] | None:
    """The projects offered to `user`'s 载体 and waiting for it (an officer's only), as a
    clause for one project's query; None for the other roles, who read them in their scope."""
    if (carrier_id := own_carrier_id(user)) is None:
        return None
    return Project.id.in_(
        sa.select(Handover.project_id).where(
            Handover.state == HandoverState.PENDING, Handover.to_carrier_id == carrier_id
        )
    )


def _receives(user: User, project: Project) -> bool:
    """`project` is offered to `user`'s 载体 and waits for it to accept (one indexed query)."""
    receiving = _receiving(user)
    if receiving is None or project.is_deleted:
        return False
    return bool(
        db.session.scalar(sa.select(sa.exists().where(Project.id == project.id, receiving)))
    )


def can_read_project(user: User, project: Project) -> bool:
    """`project_scope` for one loaded project, or a project offered to the user's 载体."""
    return _in_scope(user, project) or _receives(user, project)


def _actions(user: User, project: Project) -> set[Action]:
    if _in_scope(user, project):
        return _PROJECT_ACTIONS[user.role]
    return _RECEIVER_ACTIONS if _receives(user, project) else set()


def can(user: User, action: Action, project: Project) -> bool:
    return action in _actions(user, project)


def allowed_actions(user: User, project: Project) -> set[Action]:
    """What the project page may offer this user."""
    return set(_actions(user, project))


def _readable_one(user: User) -> sa.ColumnElement[bool]:
    """The scope of a query for one project: `project_scope`, or offered to the user's 载体."""
    receiving = _receiving(user)
    scope = project_scope(user)
    return (
        scope
        if receiving is None
        else sa.or_(scope, sa.and_(receiving, Project.is_deleted.is_(False)))
    )


def can_create_project(user: User) -> bool:
    return user.role in (Role.ADMIN, Role.OFFICER)


def can_import_projects(user: User) -> bool:
    """Importing a ledger registers projects: the same people as registering one by hand."""
    return can_create_project(user)


def can_edit_company(user: User) -> bool:
    """Officers and admins keep company records; the company must also be readable."""
    return user.role in (Role.ADMIN, Role.OFFICER)


def load_project(user: User, project_id: int, action: Action = Action.VIEW) -> Project:
    """Load a project through the permission layer: 404 if unreadable, 403 if not allowed."""
    project = db.session.scalar(
        sa.select(Project).where(Project.id == project_id, _readable_one(user))
    )
    if project is None:
        abort(404)
    if not can(user, action, project):
        abort(403)
    return project


def _load_of_project(user: User, model, object_id: int, action: Action, *where, options=()):
    """A record of a project (`model.project_id`) is readable exactly when its project is: 404
    otherwise; then `action` is asked of the project: 403 if not allowed."""
    row = db.session.execute(
        sa.select(model, Project)
        .join(Project, Project.id == model.project_id)
        .where(model.id == object_id, _readable_one(user), *where)
        .options(*options)
    ).first()
    if row is None:
        abort(404)
    record, project = row
    if not can(user, action, project):
        abort(403)
    return record


def load_evaluation(user: User, evaluation_id: int, action: Action = Action.VIEW) -> Evaluation:
    return _load_of_project(
        user,
        Evaluation,
        evaluation_id,
        action,
        options=(joinedload(Evaluation.template),),  # its project: the row's, no query
    )


def load_file(
    user: User, file_id: int, action: Action = Action.VIEW, *, removed: bool | None = False
) -> StoredFile:
    """A removed file only with `removed` (True: only removed ones, None: either)."""
    return _load_of_project(
        user,
        StoredFile,
        file_id,
        action,
        StoredFile.is_deleted.is_(removed) if removed is not None else sa.true(),
    )


def can_complete_task(user: User, task: Task) -> bool:
    """任务: the assignee completes it."""
    return task.assignee_id == user.id


def can_cancel_task(user: User, task: Task) -> bool:
    """任务: the creator cancels it, or an admin."""
    return task.created_by_id == user.id or is_admin(user)


def load_task(user: User, task_id: int) -> Task:
    """A task, readable exactly when its project is (404 otherwise). What the user may do with
    it is `can_complete_task` / `can_cancel_task` (403)."""
    return _load_of_project(
        user,
        Task,
        task_id,
        Action.VIEW,
        options=(joinedload(Task.assignee), joinedload(Task.created_by)),
    )


def load_handover(user: User, project_id: int, handover_id: int, action: Action) -> Handover:
    """A hand-over (流转) of a project `user` may read: 404 otherwise (or if it is another
    project's), 403 if `action` is not allowed on the project."""
    project = load_project(user, project_id, action)
    handover = db.session.scalar(
        sa.select(Handover).where(Handover.id == handover_id, Handover.project_id == project.id)
    )
    if handover is None:
        abort(404)
    return handover


def conflict_scope(user: User) -> sa.ColumnElement[bool]:
    """Cross-载体 conflicts `user` may read: those involving a project it may read (conflicts
    are few: checked one by one)."""
    return sa.or_(
        readable_project(user, ProjectConflict.project_id),
        readable_project(user, ProjectConflict.other_project_id),
    )


def can_resolve_conflict(user: User, conflict: ProjectConflict) -> bool:
    return can(user, Action.RESOLVE_CONFLICT, conflict.project) or can(
        user, Action.RESOLVE_CONFLICT, conflict.other_project
    )


def load_conflict(user: User, conflict_id: int) -> ProjectConflict:
    """A conflict, open or settled, that `user` may settle: 404 if unreadable, 403 if not."""
    conflict = db.session.scalar(
        sa.select(ProjectConflict).where(ProjectConflict.id == conflict_id, conflict_scope(user))
    )
    if conflict is None:
        abort(404)
    if not can_resolve_conflict(user, conflict):
        abort(403)
    return conflict


def load_company(user: User, company_id: int, edit: bool = False) -> Company:
    company = db.session.scalar(
        sa.select(Company).where(Company.id == company_id, company_scope(user))
    )
    if company is None:
        abort(404)
    if edit and not can_edit_company(user):
        abort(403)
    return company


def company_offer_code(company_id: int) -> str:
    """What the company search and the duplicates warning put in the "为该企业登记本载体的项目"
    link of a company that has no credit code, in place of the code: a keyed digest of its id
    (lower case, so never a valid code), which only someone shown that offer can have."""
    key = current_app.config["SECRET_KEY"].encode()
    digest = hmac.new(key, f"company-offer:{company_id}".encode(), hashlib.sha256).hexdigest()
    return "k" + digest[:17]


def load_company_by_code(user: User, company_id: int, credit_code: str) -> Company:
    """A company for registering a project: readable, or — for a user who may register
    projects — named by its exact 统一社会信用代码 (or, for a company without one, by the
    `company_offer_code` the search showed). Companies are shared records: an officer of
    another 载体 who knows the code registers its own project against the same company (and
    the cross-载体 conflict is flagged) instead of a duplicate company."""
    code = (credit_code or "").strip()
    offered = hmac.compare_digest(code, company_offer_code(company_id))
    company = db.session.scalar(
        sa.select(Company).where(
            Company.id == company_id,
            sa.or_(
                company_scope(user),
                sa.and_(
                    Company.is_deleted.is_(False),
                    sa.true() if offered else sa.false(),
                    sa.true() if can_create_project(user) else sa.false(),
                ),
                sa.and_(
                    Company.is_deleted.is_(False),
                    Company.credit_code.is_not(None),
                    Company.credit_code == code.upper(),
                    sa.true() if can_create_project(user) else sa.false(),
                ),
            ),
        )
    )
    if company is None:
        abort(404)
    return company
