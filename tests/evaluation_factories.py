"""Helpers for evaluation and file-store tests. Like tests/factories.py they flush, never commit."""

from __future__ import annotations

import io
import zipfile
from datetime import timedelta
from pathlib import Path

from crm.auth.models import User
from crm.evaluation.models import (
    ChecklistTemplate,
    Decision,
    DecisionOutcome,
    Evaluation,
    EvaluationAnswer,
    Verdict,
)
from crm.evaluation.seed import seed_default_template
from crm.evaluation.services import (
    AnswerInput,
    current_template,
    decide,
    load_answers,
    save_answers,
    start_evaluation,
    submit_evaluation,
)
from crm.files.models import DocumentKind, StoredFile
from crm.files.services import store_file
from crm.projects.lifecycle import move_stage
from crm.projects.models import Project
from crm.projects.stages import Stage
from tests.factories import today

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def default_template() -> ChecklistTemplate:
    """The default checklist (seeded if no template exists yet), the current version."""
    seed_default_template()
    template = current_template()
    assert template is not None
    return template


def attracting(project: Project, user: User) -> Project:
    """Move a 谋划 project on to 招引, through the lifecycle service."""
    if project.stage is Stage.PLANNED:
        move_stage(user, project, Stage.ATTRACTING)
    assert project.stage is Stage.ATTRACTING
    return project


def answer_for(evaluation: Evaluation, title: str) -> EvaluationAnswer:
    return next(a for a in load_answers(evaluation) if a.item.title == title)


def fill_all(
    evaluation: Evaluation,
    user: User,
    verdict: Verdict = Verdict.CONFORMS,
    overrides: dict[str, Verdict] | None = None,
) -> list[EvaluationAnswer]:
    """Give every item `verdict` (items named in `overrides` theirs), with a comment and, where
    the item is scored, its full score."""
    overrides = overrides or {}
    answers = load_answers(evaluation)
    save_answers(
        user,
        evaluation,
        {
            a.id: AnswerInput(
                overrides.get(a.item.title, verdict),
                f"核查意见：{a.item.title}",
                a.item.max_score,
            )
            for a in answers
        },
    )
    return answers


def decision_values(**overrides) -> dict:
    values = {
        "meeting_date": today() - timedelta(days=1),
        "meeting_name": "市招商引资项目评审会 2026 年第 3 次",
        "participants": "张市长、李副市长、发改委、自然资源局、生态环境局",
        "opinion": "同意",
    }
    values.update(overrides)
    return values


def submitted_evaluation(
    project: Project, officer: User, taskforce: User, overrides: dict[str, Verdict] | None = None
) -> Evaluation:
    """Start (in 招引), fill completely and submit an evaluation of `project`."""
    default_template()
    attracting(project, officer)
    evaluation = start_evaluation(officer, project)
    fill_all(evaluation, taskforce, overrides=overrides)
    submit_evaluation(taskforce, evaluation)
    return evaluation


def decided_evaluation(
    project: Project,
    officer: User,
    taskforce: User,
    leader: User,
    outcome: DecisionOutcome,
    overrides: dict[str, Verdict] | None = None,
) -> tuple[Evaluation, Decision]:
    evaluation = submitted_evaluation(project, officer, taskforce, overrides)
    decision = decide(leader, evaluation, outcome, **decision_values())
    return evaluation, decision


def passed_evaluation(project: Project, officer: User, taskforce: User, leader: User) -> Evaluation:
    evaluation, _ = decided_evaluation(project, officer, taskforce, leader, DecisionOutcome.PASSED)
    return evaluation


def attach_agreement(project: Project, user: User, upload_folder: Path | str) -> StoredFile:
    """The signed 投资协议, stored through the file store."""
    return store_file(
        user,
        project,
        io.BytesIO(PDF),
        "投资协议（签署版）.pdf",
        DocumentKind.AGREEMENT,
        Path(upload_folder),
        20 * 1024 * 1024,
    )


def docx_bytes() -> bytes:
    """A minimal Word document: a zip with [Content_Types].xml and word/document.xml."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/'
            '2006/content-types"/>',
        )
        zf.writestr("word/document.xml", '<?xml version="1.0"?><w:document/>')
    return buffer.getvalue()
