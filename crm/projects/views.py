"""Project pages: list, registration, detail with its actions, edit."""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from crm.access import (
    Action,
    allowed_actions,
    can_create_project,
    can_import_projects,
    can_read_project,
    load_company,
    load_company_by_code,
    load_handover,
    load_project,
    own_carrier_id,
)
from crm.auth.models import Role, User
from crm.catalog.models import Carrier, Chain, Channel, Cluster, TerminationReason
from crm.companies.models import Contact
from crm.core import ConflictError, local_today, parse_int
from crm.decisions import AlreadyDecided
from crm.extensions import db
from crm.forms import NONE_CHOICE, Form, save_form, select_choices
from crm.projects import conflicts as conflict_service
from crm.projects import lifecycle
from crm.projects.detail import element_needs, funds_ratio, funds_records, project_timeline
from crm.projects.filters import SEARCH_MAX_CHARS, SORTS, ProjectFilter, is_stale
from crm.projects.forms import (
    AcceptHandoverForm,
    DeclineHandoverForm,
    ElementNeedForm,
    ElementStatusForm,
    FollowUpForm,
    FundsForm,
    HandoverForm,
    ProjectForm,
    RejectForm,
    StageForm,
    StatusForm,
    VerifyForm,
)
from crm.projects.listing import assignable_officers, list_choices, project_page
from crm.projects.models import (
    ElementKind,
    ElementNeed,
    ElementStatus,
    FollowUpKind,
    Handover,
    Project,
    StageChange,
)
from crm.projects.panels import panels_for
from crm.projects.records import add_element_need, add_followup, add_funds, update_element_need
from crm.projects.registration import (
    PROJECT_FIELDS,
    CourtingUnconfirmed,
    create_project,
    update_project,
)
from crm.projects.stages import (
    STAGE_REQUIRED_FIELDS,
    VERIFIED_STAGES,
    Stage,
    Status,
    Verification,
)

bp = Blueprint("projects", __name__, url_prefix="/projects")


def _active(model) -> list[sa.Row]:
    """(id, name) of a catalogue's active entries, in their order: rows, not objects."""
    return db.session.execute(
        sa.select(model.id, model.name)
        .where(model.is_active.is_(True))
        .order_by(model.sort_order, model.id)
    ).all()


def _int_arg(name: str) -> int | None:
    value = request.args.get(name, "")
    return parse_int(value)


@bp.route("/")
@login_required
def index():
    f = ProjectFilter.from_args(request.args)
    # A search longer than the field takes (a crafted or pasted address): searched for its
    # first SEARCH_MAX_CHARS characters, and said so at the field with a 400.
    search_error = None
    if len(request.args.get("q", "").strip()) > SEARCH_MAX_CHARS:
        search_error = (
            f"搜索词过长，最多 {SEARCH_MAX_CHARS} 个字符，已按前 {SEARCH_MAX_CHARS} 个字符搜索"
        )
    today = local_today()
    stale_days = current_app.config["STALE_AFTER_DAYS"]
    page = project_page(
        current_user, f, today, stale_days, _int_arg("page") or 1, current_app.config["PAGE_SIZE"]
    )
    return render_template(
        "projects/index.html",
        page=page,
        f=f,
        stages=list(Stage),
        statuses=list(Status),
        choices=list_choices(current_user),
        sorts=SORTS,
        can_create=can_create_project(current_user),
        can_import=can_import_projects(current_user),
        advanced=f.advanced_labels(),
        filter_args=f.to_args(),
        PENDING=Verification.PENDING,
        search_error=search_error,
        search_max=SEARCH_MAX_CHARS,
    ), 400 if search_error else 200


def _fill_project_choices(form: ProjectForm, user: User) -> None:
    form.carrier_id.choices = select_choices((c.id, c.name) for c in _active(Carrier))
    if own_carrier_id(user) is not None:
        form.carrier_id.choices = select_choices([(user.carrier_id, user.carrier.name)])
        form.carrier_id.data = user.carrier_id  # its own 载体, whatever the request names
    form.cluster_id.choices = select_choices(
        [(0, "请选择"), *((c.id, c.name) for c in _active(Cluster))]
    )
    chains = db.session.execute(
        sa.select(Chain.id, Chain.name, Cluster.name)
        .join(Chain.cluster)
        .where(Chain.is_active.is_(True))
        .order_by(Cluster.sort_order, Cluster.id, Chain.sort_order, Chain.id)
    ).all()
    form.chain_id.choices = select_choices(
        [NONE_CHOICE, *((cid, f"{cl} / {name}") for cid, name, cl in chains)]
    )
    form.channel_id.choices = select_choices(
        [(0, "请选择"), *((c.id, c.name) for c in _active(Channel))]
    )
    form.officer_id.choices = select_choices(
        (u.id, f"{u.display_name}（{u.carrier_name}）") for u in assignable_officers(user)
    )


def _project_values(form: ProjectForm) -> dict:
    return {name: getattr(form, name).data for name in PROJECT_FIELDS}


@bp.route("/new", methods=["GET", "POST"])
@login_required
def new():
    if not can_create_project(current_user):
        abort(403)
    company_id = _int_arg("company")
    if company_id is None:
        flash("请先在企业库中找到或登记企业，再为它新建项目。", "info")
        return redirect(url_for("companies.index"))
    code = request.args.get("code", "")[:18]
    # A company another 载体 registered is reached by its exact credit code (shared records).
    company = (
        load_company_by_code(current_user, company_id, code)
        if code
        else load_company(current_user, company_id)
    )
    form = ProjectForm()
    if request.method == "GET":
        form.officer_id.data = current_user.id if current_user.role is Role.OFFICER else None
    _fill_project_choices(form, current_user)
    saved, outcome = save_form(
        form,
        lambda: create_project(
            current_user,
            company,
            _project_values(form),
            Stage[form.stage.data],
            courting_confirmed=form.confirm_conflict.data,
        ),
        not_at_fields=CourtingUnconfirmed,
    )
    if saved:
        flash(f"已登记项目“{outcome.name}”", "success")
        if conflict_service.project_conflicts(outcome):
            flash("已登记为跨载体冲突，待产业专班或领导协调处理", "warning")
        return redirect(url_for("projects.detail", project_id=outcome.id))
    # Other 载体 court the company: warn before saving; ticking the box saves and flags it.
    courting = outcome.courting if isinstance(outcome, CourtingUnconfirmed) else []
    status = 409 if courting else 400 if form.is_submitted() else 200
    return render_template(
        "projects/form.html", form=form, company=company, project=None, courting=courting
    ), status


@bp.route("/<int:project_id>/edit", methods=["GET", "POST"])
@login_required
def edit(project_id: int):
    project = load_project(current_user, project_id, Action.EDIT)
    form = ProjectForm(obj=project)
    del form.stage
    del form.confirm_conflict
    _fill_project_choices(form, current_user)
    if project.officer_id not in {c.value for c in form.officer_id.choices}:
        form.officer_id.choices += select_choices(
            [(project.officer.id, project.officer.display_name)]
        )
    if request.method == "GET":
        form.version.data = project.version

    def save():
        loaded = parse_int(str(form.version.data or ""))  # missing or forged: None, refused
        return update_project(current_user, project, _project_values(form), loaded)

    saved, outcome = save_form(form, save, not_at_fields=ConflictError)
    if saved:
        flash("已保存", "success")
        return redirect(url_for("projects.detail", project_id=project.id))
    status, conflict = (400 if form.is_submitted() else 200), None
    if isinstance(outcome, ConflictError):  # saved meanwhile: show theirs next to this input
        status, conflict = 409, _conflict_rows(form, project)
        form.version.data = project.version
        flash(outcome.message, "error")
    return render_template(
        "projects/form.html", form=form, company=project.company, project=project, conflict=conflict
    ), status


def _conflict_rows(form: ProjectForm, project: Project) -> list[tuple[str, str, str]]:
    """Fields where this user's input differs from the version saved meanwhile."""
    rows = []
    for name in PROJECT_FIELDS:
        field = getattr(form, name)
        mine, theirs = field.data, getattr(project, name)
        if isinstance(mine, Decimal) and theirs is not None:
            theirs = Decimal(theirs)
        if mine != theirs and not (mine in (None, "") and theirs in (None, "")):
            rows.append((field.label.text, _shown(field, mine), _shown(field, theirs)))
    return rows


def _shown(field, value) -> str:
    if value in (None, ""):
        return "—"
    if getattr(field, "choices", None):
        return {c.value: c.label for c in field.choices}.get(value, str(value))
    if isinstance(value, bool):
        return "是" if value else "否"
    return str(value)


# Detail page and its actions ----------------------------------------------------------------


def _stage_form(project: Project, form: StageForm | None = None) -> StageForm:
    form = form or StageForm(formdata=None)
    form.to_stage.choices = select_choices(
        (s.name, s.label) for s in lifecycle.stage_moves(project)
    )
    if form.to_stage.data is None and project.stage.next:
        form.to_stage.data = project.stage.next.name
    return form


def _status_form(project: Project, form: StatusForm | None = None) -> StatusForm:
    form = form or StatusForm(formdata=None)
    form.set_choices(
        project.status, lifecycle.STATUS_MOVES[project.status], _active(TerminationReason)
    )
    return form


def _followup_form(project: Project, form: FollowUpForm | None = None) -> FollowUpForm:
    form = form or FollowUpForm(formdata=None)
    form.contact_ids.choices = select_choices((c.id, str(c)) for c in project.company.contacts)
    return form


def render_detail(project: Project, status: int = 200, open_form: str = "", **forms):
    """The project page, with any action form that failed shown open with its errors."""
    actions = allowed_actions(current_user, project)
    needs = element_needs(project)
    funds = funds_records(project)
    funds_total = sum((r.amount for r in funds), Decimal(0))
    next_stage = project.stage.next
    timeline = project_timeline(project)
    pending = [
        e.item
        for e in timeline
        if e.kind == "stage" and e.item.verification is Verification.PENDING
    ]
    verify_forms = forms.get("verify_forms", {})
    # Funds are recorded from 签约 on, and counted in the statistics once it is verified.
    funds_open = project.stage.order >= Stage.SIGNED.order
    funds_counted = any(
        e.kind == "stage"
        and e.item.to_stage is Stage.SIGNED
        and e.item.verification is Verification.VERIFIED
        for e in timeline
    )
    return render_template(
        "projects/detail.html",
        project=project,
        Action=Action,
        actions=actions,
        stages=list(Stage),
        timeline=timeline,
        pending=pending,
        verify_forms={
            c.id: verify_forms.get(("verify", c.id)) or VerifyForm(formdata=None, prefix=f"v{c.id}")
            for c in pending
        },
        reject_forms={
            c.id: verify_forms.get(("reject", c.id)) or RejectForm(formdata=None, prefix=f"r{c.id}")
            for c in pending
        },
        conflicts=conflict_service.project_conflicts(project),
        **_handover_forms(project, actions, forms),
        needs=needs,
        need_forms={
            n.id: ElementStatusForm(
                formdata=None,
                prefix=f"e{n.id}",
                data={"quantity": n.quantity, "status": n.status.name, "note": n.note},
            )
            for n in needs
        },
        funds=funds,
        funds_total=funds_total,
        funds_ratio=funds_ratio(funds_total, project),
        funds_open=funds_open,
        funds_counted=funds_counted,
        stale=is_stale(project, local_today(), current_app.config["STALE_AFTER_DAYS"]),
        next_stage=next_stage,
        next_required=STAGE_REQUIRED_FIELDS.get(next_stage, {}) if next_stage else {},
        blockers=lifecycle.entry_blockers(project, next_stage) if next_stage else [],
        open_form=open_form,
        panels=panels_for(project, current_user),
        stage_form=_stage_form(project, forms.get("stage_form")),
        status_form=_status_form(project, forms.get("status_form")),
        followup_form=_followup_form(project, forms.get("followup_form")),
        element_form=forms.get("element_form") or ElementNeedForm(formdata=None),
        funds_form=forms.get("funds_form") or FundsForm(formdata=None),
        kinds=ElementKind,
        FollowUpKind=FollowUpKind,
        ElementStatus=ElementStatus,
    ), status


@bp.route("/<int:project_id>")
@login_required
def detail(project_id: int):
    return render_detail(load_project(current_user, project_id))


def _handover_forms(project: Project, actions: set[Action], forms: dict) -> dict:
    """The hand-over (流转) section: the pending one with what this user may do on it (accept,
    decline, withdraw), or the form offering the project to another 载体."""
    pending = conflict_service.pending_handover(project)
    if pending is None:
        offer = Action.HANDOVER in actions
        return {
            "handover": None,
            "handover_form": _handover_form(project, forms.get("handover_form")) if offer else None,
        }
    receive = Action.RECEIVE_HANDOVER in actions
    return {
        "handover": pending,
        "handover_form": None,
        "accept_form": _accept_form(pending, forms.get("accept_form")) if receive else None,
        "decline_form": (forms.get("decline_form") or DeclineHandoverForm(formdata=None))
        if receive
        else None,
        "may_withdraw": Action.HANDOVER in actions,
    }


def _accept_form(handover: Handover, form: AcceptHandoverForm | None = None) -> AcceptHandoverForm:
    form = form or AcceptHandoverForm(formdata=None)
    if form.officer_id.data is None and not form.is_submitted():
        form.officer_id.data = handover.proposed_officer_id
    form.officer_id.choices = select_choices(
        [
            (0, "请选择"),
            *((u.id, u.display_name) for u in conflict_service.receiving_officers(handover)),
        ]
    )
    return form


def _handover_form(project: Project, form: HandoverForm | None = None) -> HandoverForm:
    form = form or HandoverForm(formdata=None)
    if form.version.data is None and not form.is_submitted():
        form.version.data = project.version
    carriers, officers = conflict_service.handover_targets(project)
    form.to_carrier_id.choices = select_choices(
        [(0, "请选择"), *((c.id, c.name) for c in carriers)]
    )
    form.officer_id.choices = select_choices(
        [(0, "请选择"), *((u.id, f"{u.display_name}（{u.carrier.name}）") for u in officers)]
    )
    return form


def _load_change(project: Project, change_id: int) -> StageChange:
    change = db.session.scalar(
        sa.select(StageChange).where(
            StageChange.id == change_id, StageChange.project_id == project.id
        )
    )
    if change is None:
        abort(404)
    return change


@bp.route("/<int:project_id>/moves/<int:change_id>/verify", methods=["POST"])
@login_required
def verify_move(project_id: int, change_id: int):
    project = load_project(current_user, project_id, Action.VERIFY)
    change = _load_change(project, change_id)
    form = VerifyForm(prefix=f"v{change.id}")
    return _run_action(
        project,
        form,
        "verify_form",
        lambda: lifecycle.verify_move(current_user, change, form.note.data or ""),
        f"已核实“{change.to_stage.label}”",
        render={"verify_forms": {("verify", change.id): form}},
    )


@bp.route("/<int:project_id>/moves/<int:change_id>/reject", methods=["POST"])
@login_required
def reject_move(project_id: int, change_id: int):
    project = load_project(current_user, project_id, Action.VERIFY)
    change = _load_change(project, change_id)
    form = RejectForm(prefix=f"r{change.id}")
    return _run_action(
        project,
        form,
        "reject_form",
        lambda: lifecycle.reject_move(current_user, change, form.reason.data or ""),
        f"已驳回“{change.to_stage.label}”，项目退回“{(change.from_stage or change.to_stage).label}”",
        render={"verify_forms": {("reject", change.id): form}},
    )


@bp.route("/<int:project_id>/handover", methods=["POST"])
@login_required
def handover(project_id: int):
    project = load_project(current_user, project_id, Action.HANDOVER)
    form = _handover_form(project, HandoverForm())

    def service():
        return conflict_service.handover_project(
            current_user,
            project,
            db.session.get(Carrier, form.to_carrier_id.data or 0),
            db.session.get(User, form.officer_id.data or 0),
            form.reason.data or "",
            form.benefit_sharing.data or "",
            loaded_version=parse_int(form.version.data or ""),
        )

    return _run_action(
        project, form, "handover_form", service, "已发起流转，待接收载体接收后项目移交"
    )


@bp.route("/<int:project_id>/handovers/<int:handover_id>/accept", methods=["POST"])
@login_required
def accept_handover(project_id: int, handover_id: int):
    handover = load_handover(current_user, project_id, handover_id, Action.RECEIVE_HANDOVER)
    form = _accept_form(handover, AcceptHandoverForm())
    return _run_action(
        handover.project,
        form,
        "accept_form",
        lambda: conflict_service.accept_handover(
            current_user, handover, db.session.get(User, form.officer_id.data or 0)
        ),
        "已接收项目，项目已移交本载体",
    )


@bp.route("/<int:project_id>/handovers/<int:handover_id>/decline", methods=["POST"])
@login_required
def decline_handover(project_id: int, handover_id: int):
    handover = load_handover(current_user, project_id, handover_id, Action.RECEIVE_HANDOVER)
    form = DeclineHandoverForm()
    return _run_action(
        handover.project,
        form,
        "decline_form",
        lambda: conflict_service.decline_handover(current_user, handover, form.reason.data or ""),
        "已退回流转，项目仍由原载体跟进",
    )


@bp.route("/<int:project_id>/handovers/<int:handover_id>/withdraw", methods=["POST"])
@login_required
def withdraw_handover(project_id: int, handover_id: int):
    handover = load_handover(current_user, project_id, handover_id, Action.HANDOVER)
    return _run_action(
        handover.project,
        Form(),
        "withdraw_form",
        lambda: conflict_service.withdraw_handover(current_user, handover),
        "已撤回流转",
    )


def _run_action(
    project: Project, form, form_name: str, service, success: str, render: dict | None = None
):
    """Save an action of the project page, or show the page again with the form open and
    its errors (`render` names the form to the template when it is not `form_name`). A user
    who may no longer read the project afterwards (a 载体 that declined a hand-over) is taken
    to the home page."""
    saved, outcome = save_form(form, service, not_at_fields=AlreadyDecided)
    if saved:
        flash(success, "success")
        if not can_read_project(current_user, project):
            return redirect(url_for("main.home"))
        return redirect(url_for("projects.detail", project_id=project.id))
    db.session.refresh(project)  # after a rollback, the page shows what is stored
    if not can_read_project(current_user, project):  # a hand-over withdrawn meanwhile, say
        if not isinstance(outcome, AlreadyDecided):
            abort(404)
        return render_template("error.html", code=409, message=outcome.message), 409
    if isinstance(outcome, AlreadyDecided):  # decided by someone else first: show what they did
        flash(outcome.message, "error")
        return render_detail(project, 409)
    return render_detail(project, 400, **(render or {"open_form": form_name, form_name: form}))


@bp.route("/<int:project_id>/stage", methods=["POST"])
@login_required
def move_stage(project_id: int):
    project = load_project(current_user, project_id, Action.MOVE)
    form = _stage_form(project, StageForm())
    fields = {
        k: getattr(form, k).data
        for k in ("signed_amount", "signed_on", "started_on", "producing_on")
    }
    target = Stage.from_name(form.to_stage.data)
    claimed = target in VERIFIED_STAGES and target.order > project.stage.order
    return _run_action(
        project,
        form,
        "stage_form",
        lambda: lifecycle.move_stage(
            current_user, project, Stage[form.to_stage.data], form.reason.data or "", fields
        ),
        "阶段已变更，待产业专班核实（甄别）后计入统计" if claimed else "阶段已变更",
    )


@bp.route("/<int:project_id>/status", methods=["POST"])
@login_required
def change_status(project_id: int):
    project = load_project(current_user, project_id, Action.MOVE)
    form = _status_form(project, StatusForm())

    def service():
        reason = (
            db.session.get(TerminationReason, form.termination_reason_id.data)
            if form.termination_reason_id.data
            else None
        )
        lifecycle.change_status(
            current_user,
            project,
            Status[form.to_status.data],
            reason=form.reason.data or "",
            effective_on=form.effective_on.data,
            lost_to=form.lost_to.data or "",
            termination_reason=reason,
        )

    return _run_action(project, form, "status_form", service, "状态已变更")


@bp.route("/<int:project_id>/followups", methods=["POST"])
@login_required
def new_followup(project_id: int):
    project = load_project(current_user, project_id, Action.FOLLOW_UP)
    form = _followup_form(project, FollowUpForm())

    def service():
        contacts = db.session.scalars(
            sa.select(Contact).where(Contact.id.in_(form.contact_ids.data or []))
        ).all()
        add_followup(
            current_user,
            project,
            {
                "kind": FollowUpKind[form.kind.data],
                "happened_on": form.happened_on.data,
                "summary": form.summary.data,
                "next_action": form.next_action.data or "",
                "next_action_due": form.next_action_due.data,
            },
            list(contacts),
        )

    return _run_action(project, form, "followup_form", service, "已记录跟踪服务")


@bp.route("/<int:project_id>/elements", methods=["POST"])
@login_required
def new_element(project_id: int):
    project = load_project(current_user, project_id, Action.ELEMENTS)
    form = ElementNeedForm()
    return _run_action(
        project,
        form,
        "element_form",
        lambda: add_element_need(
            current_user,
            project,
            {
                "kind": ElementKind[form.kind.data],
                "quantity": form.quantity.data,
                "unit": form.unit.data,
                "status": ElementStatus[form.status.data],
                "note": form.note.data or "",
            },
        ),
        "已添加要素需求",
    )


@bp.route("/<int:project_id>/elements/<int:need_id>", methods=["POST"])
@login_required
def update_element(project_id: int, need_id: int):
    project = load_project(current_user, project_id, Action.ELEMENTS)
    need = db.session.scalar(
        sa.select(ElementNeed).where(
            ElementNeed.id == need_id, ElementNeed.project_id == project.id
        )
    )
    if need is None:
        abort(404)
    form = ElementStatusForm(prefix=f"e{need.id}")
    saved, _ = save_form(
        form,
        lambda: update_element_need(
            current_user,
            need,
            {
                "quantity": form.quantity.data,
                "status": ElementStatus[form.status.data],
                "note": form.note.data or "",
            },
        ),
    )
    if saved:
        flash(f"已更新{need.kind.label}需求", "success")
        return redirect(url_for("projects.detail", project_id=project.id) + "#elements")
    flash("要素需求未保存：" + "；".join(e for errs in form.errors.values() for e in errs), "error")
    return render_detail(project, 400)


@bp.route("/<int:project_id>/funds", methods=["POST"])
@login_required
def new_funds(project_id: int):
    project = load_project(current_user, project_id, Action.FUNDS)
    form = FundsForm()
    return _run_action(
        project,
        form,
        "funds_form",
        lambda: add_funds(
            current_user,
            project,
            {
                "received_on": form.received_on.data,
                "amount": form.amount.data,
                "note": form.note.data or "",
            },
        ),
        "已记录到位资金",
    )
