"""The evaluation rules (measure 22), in one module.

States: 草稿 → 待决策 → 通过 / 退回 / 否决. 退回 reopens the same evaluation for rework; 通过 and
否决 freeze it. Only a leader decides (the permission layer says who may call what). A 不符合 on
a veto item (一票否决) makes 通过 impossible. The 签约 gate: a project enters 签约 only while its
latest evaluation is 通过 and the signed agreement is attached.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import contains_eager, joinedload, selectinload

from crm.audit.services import apply_changes, record
from crm.auth.models import User
from crm.core import ConflictError, ServiceError, local_today, utcnow
from crm.evaluation.models import (
    OPEN_STATES,
    ChecklistItem,
    ChecklistSection,
    ChecklistTemplate,
    Decision,
    DecisionOutcome,
    Evaluation,
    EvaluationAnswer,
    EvaluationState,
    Verdict,
    answer_files,
)
from crm.extensions import db
from crm.files.models import DocumentKind, StoredFile
from crm.files.services import has_document
from crm.notifications.models import NotificationKind
from crm.notifications.services import app_path, leaders, notify, taskforce_of
from crm.projects.lifecycle import register_entry_check
from crm.projects.models import Project
from crm.projects.stages import Stage
from crm.templating import number

COMMENT_REQUIRED = (Verdict.FAILS, Verdict.NOT_APPLICABLE)
MAX_COMMENT = 5000


# Templates ---------------------------------------------------------------------------------


def current_template() -> ChecklistTemplate | None:
    return db.session.scalar(
        sa.select(ChecklistTemplate)
        .where(ChecklistTemplate.is_current.is_(True))
        .order_by(ChecklistTemplate.version.desc())
        .limit(1)
    )


@dataclass
class ItemSpec:
    title: str
    guidance: str = ""
    is_veto: bool = False
    max_score: Decimal | None = None


@dataclass
class SectionSpec:
    title: str
    items: list[ItemSpec] = field(default_factory=list)


def create_template_version(
    user: User | None, name: str, sections: list[SectionSpec], change_note: str = ""
) -> ChecklistTemplate:
    """Write `sections` as the next version of template `name`; it becomes the current one."""
    errors = {}
    if not [s for s in sections if s.items]:
        errors["sections"] = "模板至少要有一个包含评估事项的部分"
    for s in sections:
        if not s.title.strip():
            errors["sections"] = "每个部分都要有标题"
        for item in s.items:
            if not item.title.strip():
                errors["sections"] = f"“{s.title}”中有未填写标题的事项"
            if item.max_score is not None and item.max_score <= 0:
                errors["sections"] = f"“{item.title}”的满分须大于 0"
    if errors:
        raise ServiceError(errors=errors)
    latest = db.session.scalar(
        sa.select(sa.func.max(ChecklistTemplate.version)).where(ChecklistTemplate.name == name)
    )
    db.session.execute(
        sa.update(ChecklistTemplate)
        .where(ChecklistTemplate.is_current.is_(True))
        .values(is_current=False)
    )
    template = ChecklistTemplate(
        name=name,
        version=(latest or 0) + 1,
        is_current=True,
        change_note=change_note.strip(),
        created_by_id=getattr(user, "id", None),
    )
    db.session.add(template)
    for s_pos, spec in enumerate((s for s in sections if s.items), start=1):
        section = ChecklistSection(template=template, position=s_pos, title=spec.title.strip())
        db.session.add(section)
        for i_pos, item in enumerate(spec.items, start=1):
            db.session.add(
                ChecklistItem(
                    section=section,
                    position=i_pos,
                    title=item.title.strip(),
                    guidance=item.guidance.strip(),
                    is_veto=item.is_veto,
                    max_score=item.max_score,
                )
            )
    db.session.flush()
    record(user, "template_version_created", template, summary=str(template))
    return template


def template_specs(template: ChecklistTemplate) -> list[SectionSpec]:
    """A template version as editable specs, the start of the next version."""
    return [
        SectionSpec(
            s.title,
            [ItemSpec(i.title, i.guidance, i.is_veto, i.max_score) for i in s.items],
        )
        for s in template.sections
    ]


def load_template(template_id: int) -> ChecklistTemplate | None:
    return db.session.scalar(
        sa.select(ChecklistTemplate)
        .where(ChecklistTemplate.id == template_id)
        .options(selectinload(ChecklistTemplate.sections).selectinload(ChecklistSection.items))
    )


# Starting and filling ------------------------------------------------------------------------


def open_evaluation(project: Project) -> Evaluation | None:
    return db.session.scalar(
        sa.select(Evaluation).where(
            Evaluation.project_id == project.id, Evaluation.state.in_(OPEN_STATES)
        )
    )


def latest_evaluation(project: Project) -> Evaluation | None:
    return db.session.scalar(
        sa.select(Evaluation)
        .where(Evaluation.project_id == project.id)
        .order_by(Evaluation.id.desc())
        .limit(1)
    )


def project_evaluations(project: Project) -> list[Evaluation]:
    return list(
        db.session.scalars(
            sa.select(Evaluation)
            .where(Evaluation.project_id == project.id)
            .options(joinedload(Evaluation.template), joinedload(Evaluation.started_by))
            .order_by(Evaluation.id.desc())
        )
    )


def start_blocker(project: Project, open_: Evaluation | None) -> str | None:
    """Why an evaluation cannot be started for `project` (whose open evaluation is `open_`),
    or None: the rule both `start_evaluation` and the project page's button read."""
    if project.stage is not Stage.ATTRACTING:
        return "只有处于“招引”阶段的项目可以发起评估"
    if open_ is not None:
        return "该项目已有一个未完成的评估"
    if current_template() is None:
        return "尚未配置评估清单模板，请联系管理员"
    return None


def start_evaluation(user: User, project: Project) -> Evaluation:
    if (blocker := start_blocker(project, open_evaluation(project))) is not None:
        raise ServiceError(blocker)
    template = current_template()
    evaluation = Evaluation(
        project_id=project.id,
        template_id=template.id,
        state=EvaluationState.DRAFT,
        started_by_id=user.id,
    )
    try:
        with db.session.begin_nested():
            db.session.add(evaluation)
            db.session.flush()
    except IntegrityError as exc:  # a concurrent start won the unique index
        raise ServiceError("该项目已有一个未完成的评估") from exc
    item_ids = db.session.scalars(
        sa.select(ChecklistItem.id)
        .join(ChecklistItem.section)
        .where(ChecklistSection.template_id == template.id)
    ).all()
    db.session.add_all(EvaluationAnswer(evaluation_id=evaluation.id, item_id=i) for i in item_ids)
    db.session.flush()
    record(user, "evaluation_started", evaluation, summary=f"{project.name}：{template}")
    return evaluation


def load_answers(evaluation: Evaluation) -> list[EvaluationAnswer]:
    """All answers with their items and evidence, in checklist order, in three queries."""
    return list(
        db.session.scalars(
            sa.select(EvaluationAnswer)
            .join(EvaluationAnswer.item)
            .join(ChecklistItem.section)
            .where(EvaluationAnswer.evaluation_id == evaluation.id)
            .options(
                joinedload(EvaluationAnswer.item).joinedload(ChecklistItem.section),
                joinedload(EvaluationAnswer.updated_by),
                selectinload(EvaluationAnswer.files),
            )
            .order_by(ChecklistSection.position, ChecklistItem.position)
        ).unique()
    )


@dataclass
class AnswerInput:
    verdict: Verdict | None
    comment: str = ""
    score: Decimal | None = None


def answer_errors(item: ChecklistItem, given: AnswerInput) -> str | None:
    if given.verdict in COMMENT_REQUIRED and not given.comment.strip():
        return f"“{given.verdict.label}”须填写说明"
    if len(given.comment) > MAX_COMMENT:
        return f"说明不能超过 {MAX_COMMENT} 个字符"
    if given.score is not None:
        if item.max_score is None:
            return "该事项不计分"
        if not (0 <= given.score <= item.max_score):
            return f"得分应在 0 到 {item.max_score} 之间"
    return None


def _require_editable(evaluation: Evaluation) -> None:
    if not evaluation.is_editable:
        raise ServiceError(f"评估处于“{evaluation.state.label}”状态，不能修改")


def save_answers(
    user: User, evaluation: Evaluation, given: dict[int, AnswerInput]
) -> list[EvaluationAnswer]:
    """Save verdicts, comments and scores for some answers (keyed by answer id). All or none."""
    _require_editable(evaluation)
    answers = {a.id: a for a in load_answers(evaluation)}
    errors = {}
    for answer_id, value in given.items():
        answer = answers.get(answer_id)
        if answer is None:
            raise ServiceError("评估事项不存在")
        if message := answer_errors(answer.item, value):
            errors[f"a{answer_id}"] = message
    if errors:
        raise ServiceError("有事项未通过校验，请按提示修改", errors=errors)
    changed = []
    for answer_id, value in given.items():
        answer = answers[answer_id]
        diff = apply_changes(
            answer,
            {"verdict": value.verdict, "comment": value.comment.strip(), "score": value.score},
        )
        if diff:
            answer.updated_by_id = user.id
            answer.updated_at = utcnow()
            changed.append((answer, diff))
    if changed:
        db.session.flush()
        record(
            user,
            "evaluation_filled",
            evaluation,
            summary=f"填写 {len(changed)} 项",
            changes={f"{a.item.title}": d for a, d in changed},
        )
    return [a for a, _ in changed]


def attach_evidence(user: User, answer: EvaluationAnswer, stored: StoredFile) -> None:
    evaluation = db.session.get(Evaluation, answer.evaluation_id)
    _require_editable(evaluation)
    db.session.execute(answer_files.insert().values(answer_id=answer.id, file_id=stored.id))
    record(
        user,
        "evidence_attached",
        evaluation,
        summary=f"{answer.item.title}：{stored.original_name}",
    )


# Summary, submission, decision ---------------------------------------------------------------


@dataclass
class Summary:
    counts: dict[Verdict, int]
    unanswered: list[EvaluationAnswer]
    veto_hits: list[EvaluationAnswer]
    risks: list[EvaluationAnswer]  # every 不符合, veto items first
    total_score: Decimal
    max_score: Decimal

    @property
    def can_pass(self) -> bool:
        return not self.veto_hits


def summarize(answers: list[EvaluationAnswer]) -> Summary:
    counts = dict.fromkeys(Verdict, 0)
    for a in answers:
        if a.verdict:
            counts[a.verdict] += 1
    fails = [a for a in answers if a.verdict is Verdict.FAILS]
    return Summary(
        counts=counts,
        unanswered=[a for a in answers if a.verdict is None],
        veto_hits=[a for a in fails if a.item.is_veto],
        risks=sorted(fails, key=lambda a: not a.item.is_veto),
        total_score=sum((a.score or Decimal(0) for a in answers), Decimal(0)),
        max_score=sum((a.item.max_score or Decimal(0) for a in answers), Decimal(0)),
    )


def summaries_of(evaluations: list[Evaluation]) -> dict[int, Summary]:
    """`summarize` for several evaluations at once (the 待办 page's decisions): one query."""
    answers: dict[int, list[EvaluationAnswer]] = {e.id: [] for e in evaluations}
    if answers:
        for answer in db.session.scalars(
            sa.select(EvaluationAnswer)
            .where(EvaluationAnswer.evaluation_id.in_(answers))
            .options(joinedload(EvaluationAnswer.item))
        ):
            answers[answer.evaluation_id].append(answer)
    return {evaluation_id: summarize(rows) for evaluation_id, rows in answers.items()}


def _transition(
    evaluation: Evaluation, from_states: tuple[EvaluationState, ...], values: dict[str, Any]
) -> None:
    """Change the state only if nobody changed it meanwhile: exactly one concurrent caller wins."""
    try:
        result = db.session.execute(
            sa.update(Evaluation)
            .where(Evaluation.id == evaluation.id, Evaluation.state.in_(from_states))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
    except OperationalError as exc:
        # SQLite (WAL) refuses the write when another transaction wrote since this one began
        # reading ("database is locked"): the concurrent change must be looked at first.
        if db.session.get_bind().dialect.name != "sqlite":
            raise
        raise ConflictError("该评估刚被他人处理，请刷新页面后查看") from exc
    if result.rowcount != 1:
        db.session.refresh(evaluation)
        raise ConflictError(f"该评估已被他人处理，当前状态为“{evaluation.state.label}”")
    db.session.refresh(evaluation)


def submit_evaluation(user: User, evaluation: Evaluation) -> None:
    _require_editable(evaluation)
    answers = load_answers(evaluation)
    summary = summarize(answers)
    if summary.unanswered:
        titles = "、".join(a.item.title for a in summary.unanswered)
        raise ServiceError(f"还有 {len(summary.unanswered)} 项未给出结论：{titles}")
    if bad := [
        a for a in answers if answer_errors(a.item, AnswerInput(a.verdict, a.comment, a.score))
    ]:
        raise ServiceError("以下事项须补充说明：" + "、".join(a.item.title for a in bad))
    _transition(
        evaluation,
        (EvaluationState.DRAFT, EvaluationState.RETURNED),
        {"state": EvaluationState.SUBMITTED, "submitted_at": utcnow(), "submitted_by_id": user.id},
    )
    record(user, "evaluation_submitted", evaluation, summary="提交决策")
    project = evaluation.project
    vetoes = f"，一票否决 {len(summary.veto_hits)} 项" if summary.veto_hits else ""
    notify(
        NotificationKind.EVALUATION_SUBMITTED,
        leaders(),
        project=project,
        actor=user,
        text=f"{project.name}：评估已提交待决策（得分 {number(summary.total_score)}/"
        f"{number(summary.max_score)}{vetoes}）",
        url=app_path("evaluation.detail", evaluation_id=evaluation.id),
    )


def decide(
    user: User,
    evaluation: Evaluation,
    outcome: DecisionOutcome,
    *,
    meeting_date: date | None,
    meeting_name: str,
    participants: str,
    opinion: str,
) -> Decision:
    errors = {}
    if meeting_date is None:
        errors["meeting_date"] = "请填写会议日期"
    elif meeting_date > local_today():
        errors["meeting_date"] = "会议日期不能晚于今天"
    if not meeting_name.strip():
        errors["meeting_name"] = "请填写会议名称或编号"
    if not participants.strip():
        errors["participants"] = "请填写参会人员"
    if outcome is not DecisionOutcome.PASSED and not opinion.strip():
        errors["opinion"] = f"“{outcome.label}”须写明意见"
    if errors:
        raise ServiceError(errors=errors)
    if evaluation.state is not EvaluationState.SUBMITTED:
        raise ConflictError(f"该评估当前为“{evaluation.state.label}”，不在待决策状态")
    if outcome is DecisionOutcome.PASSED:
        summary = summarize(load_answers(evaluation))
        if not summary.can_pass:
            titles = "、".join(a.item.title for a in summary.veto_hits)
            raise ServiceError(f"一票否决事项“{titles}”为不符合，不能通过")
    new_state = {
        DecisionOutcome.PASSED: EvaluationState.PASSED,
        DecisionOutcome.RETURNED: EvaluationState.RETURNED,
        DecisionOutcome.REJECTED: EvaluationState.REJECTED,
    }[outcome]
    _transition(
        evaluation, (EvaluationState.SUBMITTED,), {"state": new_state, "decided_at": utcnow()}
    )
    decision = Decision(
        evaluation_id=evaluation.id,
        outcome=outcome,
        meeting_date=meeting_date,
        meeting_name=meeting_name.strip(),
        participants=participants.strip(),
        opinion=opinion.strip(),
        decided_by_id=user.id,
    )
    db.session.add(decision)
    db.session.flush()
    record(
        user,
        "evaluation_decided",
        evaluation,
        summary=f"{outcome.label}（{decision.meeting_name}）",
        changes={"state": ["SUBMITTED", new_state.name]},
    )
    project = evaluation.project
    notify(
        NotificationKind.DECISION_RECORDED,
        [project.officer, *taskforce_of(project)],
        project=project,
        actor=user,
        text=f"{project.name}：集体决策“{outcome.label}”（{decision.meeting_name}）",
        url=app_path("evaluation.detail", evaluation_id=evaluation.id),
    )
    return decision


def decisions_of(evaluation: Evaluation) -> list[Decision]:
    return list(
        db.session.scalars(
            sa.select(Decision)
            .where(Decision.evaluation_id == evaluation.id)
            .options(joinedload(Decision.decided_by), joinedload(Decision.dossier_file))
            .order_by(Decision.id.desc())
        )
    )


def decision_queue_query() -> sa.Select:
    """Evaluations waiting for a decision, across all 载体, oldest first."""
    return (
        sa.select(Evaluation)
        .join(Evaluation.project)  # so callers may filter on Project (the permission scope)
        .where(Evaluation.state == EvaluationState.SUBMITTED)
        .options(
            contains_eager(Evaluation.project).joinedload(Project.carrier),
            contains_eager(Evaluation.project).joinedload(Project.cluster),
            joinedload(Evaluation.submitted_by),
        )
        .order_by(Evaluation.submitted_at, Evaluation.id)
    )


# The 签约 gate --------------------------------------------------------------------------------


@register_entry_check(Stage.SIGNED)
def signing_gate(project: Project) -> str | None:
    """Measure 22 before the deal: a passed evaluation, and the signed agreement attached."""
    latest = latest_evaluation(project)
    if latest is None:
        return "尚未开展项目评估：须经评估并由领导集体决策通过后方可签约"
    if latest.state is not EvaluationState.PASSED:
        return f"最近一次评估为“{latest.state.label}”：须经集体决策通过后方可签约"
    if not has_document(project, DocumentKind.AGREEMENT):
        return "尚未上传已签署的投资协议"
    return None
