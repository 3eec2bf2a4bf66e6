"""Evaluation pages: the checklist of one project, the leaders' decision queue, and the
admin's template versions."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from crm.access import (
    Action,
    admin_required,
    allowed_actions,
    can,
    load_evaluation,
    load_project,
    project_scope,
)
from crm.auth.models import User
from crm.core import ConflictError, ServiceError, parse_int
from crm.evaluation.forms import (
    DecisionForm,
    EvidenceForm,
    SubmitForm,
    TemplateForm,
    checklist_form,
    form_to_specs,
    specs_to_form_data,
)
from crm.evaluation.models import (
    ChecklistTemplate,
    DecisionOutcome,
    Evaluation,
    EvaluationAnswer,
    EvaluationState,
    Verdict,
)
from crm.evaluation.services import (
    AnswerInput,
    attach_evidence,
    create_template_version,
    decide,
    decision_queue_query,
    decisions_of,
    load_answers,
    load_template,
    project_evaluations,
    save_answers,
    start_blocker,
    start_evaluation,
    submit_evaluation,
    summaries_of,
    summarize,
    template_specs,
)
from crm.extensions import db
from crm.files.models import DocumentKind
from crm.files.uploads import save_upload
from crm.forms import save_button, save_form
from crm.hooks import installed
from crm.projects.lifecycle import entry_blockers
from crm.projects.models import Project
from crm.projects.panels import Panel
from crm.projects.stages import Stage

bp = Blueprint("evaluation", __name__)


def evaluation_panel(project: Project, user: User) -> Panel:
    evaluations = project_evaluations(project)
    open_ = next((e for e in evaluations if e.is_open), None)
    return Panel(
        "evaluation/_panel.html",
        {
            "evaluations": evaluations,
            "can_start": (
                can(user, Action.START_EVALUATION, project)
                and start_blocker(project, open_) is None
            ),
            "before_attracting": project.stage is Stage.PLANNED,
            "signing_blockers": entry_blockers(project, Stage.SIGNED)
            if project.stage is Stage.ATTRACTING
            else [],
        },
    )


@bp.route("/projects/<int:project_id>/evaluations", methods=["POST"])
@login_required
def start(project_id: int):
    project = load_project(current_user, project_id, Action.START_EVALUATION)
    saved, outcome = save_button(lambda: start_evaluation(current_user, project))
    if not saved:
        return redirect(url_for("projects.detail", project_id=project.id))
    flash("已发起评估，请逐项填写", "success")
    return redirect(url_for("evaluation.detail", evaluation_id=outcome.id))


def render_evaluation(
    evaluation: Evaluation,
    status: int = 200,
    form=None,
    decision_form: DecisionForm | None = None,
    evidence_form: EvidenceForm | None = None,
    answers: list[EvaluationAnswer] | None = None,
    submit_form: SubmitForm | None = None,
):
    answers = answers if answers is not None else load_answers(evaluation)
    actions = allowed_actions(current_user, evaluation.project)
    editable = evaluation.is_editable and Action.FILL_EVALUATION in actions
    sections: dict[str, list[EvaluationAnswer]] = {}
    for a in answers:
        sections.setdefault(a.item.section.title, []).append(a)
    summary = summarize(answers)
    return render_template(
        "evaluation/detail.html",
        evaluation=evaluation,
        project=evaluation.project,
        sections=sections,
        summary=summary,
        form=form if form is not None else (checklist_form(answers) if editable else None),
        evidence_form=(evidence_form or EvidenceForm(formdata=None).set_answers(answers))
        if editable
        else None,
        submit_form=(submit_form or SubmitForm(formdata=None))
        if evaluation.is_editable and Action.SUBMIT_EVALUATION in actions
        else None,
        decision_form=(decision_form or DecisionForm(formdata=None))
        if evaluation.state is EvaluationState.SUBMITTED and Action.DECIDE in actions
        else None,
        decisions=decisions_of(evaluation),
        Verdict=Verdict,
    ), status


@bp.route("/evaluations/<int:evaluation_id>")
@login_required
def detail(evaluation_id: int):
    return render_evaluation(load_evaluation(current_user, evaluation_id))


@bp.route("/evaluations/<int:evaluation_id>/answers", methods=["POST"])
@login_required
def save(evaluation_id: int):
    evaluation = load_evaluation(current_user, evaluation_id, Action.FILL_EVALUATION)
    answers = load_answers(evaluation)
    form = checklist_form(answers, request.form)

    def save_given():
        given = {}
        for a in answers:
            verdict = getattr(form, f"verdict_{a.id}").data
            score_field = getattr(form, f"score_{a.id}", None)
            given[a.id] = AnswerInput(
                Verdict[verdict] if verdict else None,
                getattr(form, f"comment_{a.id}").data or "",
                score_field.data if score_field is not None else None,
            )
        return save_answers(current_user, evaluation, given)

    saved, outcome = save_form(form, save_given, not_at_fields=ServiceError)
    if saved:
        flash(f"已保存（更新 {len(outcome)} 项）" if outcome else "没有需要保存的修改", "success")
        return redirect(url_for("evaluation.detail", evaluation_id=evaluation.id))
    if outcome is not None:  # refused and rolled back: the messages, at the answers' comments
        for key, message in outcome.errors.items():  # keys are a<answer id>
            getattr(form, f"comment_{key[1:]}").errors = [message]
        form.form_errors.append(outcome.message)
        answers = load_answers(evaluation)
    return render_evaluation(evaluation, 400, form=form, answers=answers)


@bp.route("/evaluations/<int:evaluation_id>/evidence", methods=["POST"])
@login_required
def upload_evidence(evaluation_id: int):
    evaluation = load_evaluation(current_user, evaluation_id, Action.FILL_EVALUATION)
    if not evaluation.is_editable:  # refuse before any byte is written to the file store
        flash(f"评估处于“{evaluation.state.label}”状态，不能修改", "error")
        return render_evaluation(evaluation, 400)
    answers = load_answers(evaluation)
    form = EvidenceForm().set_answers(answers)

    def attach():
        answer = next(a for a in answers if a.id == form.answer_id.data)
        stored = save_upload(current_user, evaluation.project, form, DocumentKind.EVIDENCE)
        attach_evidence(current_user, answer, stored)
        return answer, stored

    saved, outcome = save_form(form, attach)
    if not saved:  # after a rollback (a ServiceError) the answers are read again
        return render_evaluation(
            evaluation, 400, evidence_form=form, answers=answers if outcome is None else None
        )
    answer, stored = outcome
    flash(f"已上传佐证材料“{stored.original_name}”", "success")
    return redirect(
        url_for("evaluation.detail", evaluation_id=evaluation.id) + f"#item-{answer.id}"
    )


@bp.route("/evaluations/<int:evaluation_id>/submit", methods=["POST"])
@login_required
def submit(evaluation_id: int):
    evaluation = load_evaluation(current_user, evaluation_id, Action.SUBMIT_EVALUATION)
    if not evaluation.is_editable:  # nothing to confirm: say why at once
        flash(f"评估处于“{evaluation.state.label}”状态，不能修改", "error")
        return render_evaluation(evaluation, 400)
    form = SubmitForm()
    saved, outcome = save_form(
        form, lambda: submit_evaluation(current_user, evaluation), not_at_fields=ServiceError
    )
    if not saved:
        if outcome is not None:  # a rule refused it (items without verdict, a race)
            flash(outcome.message, "error")
            db.session.refresh(evaluation)
            status = 409 if isinstance(outcome, ConflictError) else 400
            return render_evaluation(evaluation, status, submit_form=form)
        return render_evaluation(evaluation, 400, submit_form=form)
    flash("已提交领导集体决策", "success")
    return redirect(url_for("evaluation.detail", evaluation_id=evaluation.id))


@bp.route("/evaluations/<int:evaluation_id>/decision", methods=["POST"])
@login_required
def decision(evaluation_id: int):
    evaluation = load_evaluation(current_user, evaluation_id, Action.DECIDE)
    form = DecisionForm()

    def decide_and_archive():
        taken = decide(
            current_user,
            evaluation,
            DecisionOutcome[form.outcome.data],
            meeting_date=form.meeting_date.data,
            meeting_name=form.meeting_name.data or "",
            participants=form.participants.data or "",
            opinion=form.opinion.data or "",
        )
        for hook in installed().decision_taken:  # the dossier archive: saved with it, or neither
            hook(evaluation, current_user, taken)
        return taken

    saved, outcome = save_form(form, decide_and_archive, not_at_fields=ConflictError)
    if not saved:
        if outcome is not None:  # rolled back: the page shows what is stored
            db.session.refresh(evaluation)
        if isinstance(outcome, ConflictError):  # the form is gone from the page now: say why
            flash(outcome.message, "error")
            return render_evaluation(evaluation, 409, decision_form=form)
        return render_evaluation(evaluation, 400, decision_form=form)
    flash(f"已记录决策：{DecisionOutcome[form.outcome.data].label}", "success")
    return redirect(url_for("evaluation.detail", evaluation_id=evaluation.id))


@bp.route("/evaluations/")
@login_required
def queue():
    """待决策: evaluations waiting for the leaders, oldest first."""
    page_arg = request.args.get("page", "1")
    page = db.paginate(
        decision_queue_query().where(project_scope(current_user)),
        page=parse_int(page_arg) or 1,
        per_page=current_app.config["PAGE_SIZE"],
        error_out=False,
    )
    return render_template(
        "evaluation/queue.html",
        page=page,
        summaries=summaries_of(page.items),
        deciding={e.id for e in page.items if can(current_user, Action.DECIDE, e.project)},
    )


# Checklist templates (admin) ----------------------------------------------------------------


@bp.route("/admin/checklists/")
@admin_required
def templates():
    versions = db.session.scalars(
        sa.select(ChecklistTemplate).order_by(ChecklistTemplate.version.desc())
    ).all()
    return render_template("evaluation/templates.html", versions=versions, section="checklists")


@bp.route("/admin/checklists/<int:template_id>", methods=["GET", "POST"])
@admin_required
def template_version(template_id: int):
    """Show a version; the form below it saves an edited copy as the next version."""
    template = load_template(template_id)
    if template is None:
        abort(404)
    form = TemplateForm(data=specs_to_form_data(template_specs(template)))
    if request.method == "POST":
        form = TemplateForm()
    saved, new = save_form(
        form,
        lambda: create_template_version(
            current_user, template.name, form_to_specs(form), form.change_note.data or ""
        ),
    )
    if saved:
        flash(f"已保存为第 {new.version} 版；此后发起的评估使用新版本", "success")
        return redirect(url_for("evaluation.template_version", template_id=new.id))
    status = 400 if form.is_submitted() else 200
    return render_template("evaluation/template_version.html", template=template, form=form), status
