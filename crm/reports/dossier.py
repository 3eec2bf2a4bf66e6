"""The due-diligence summary (尽职调查摘要) of one project: what it shows, as plain values."""

from __future__ import annotations

import hashlib
import io
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
from flask import current_app, render_template
from sqlalchemy.orm import joinedload

from crm.audit.services import record
from crm.auth.models import User
from crm.core import LOCAL_TZ, utcnow
from crm.evaluation.models import Decision, Evaluation, EvaluationAnswer, Verdict
from crm.evaluation.services import decisions_of, latest_evaluation, load_answers, summarize
from crm.extensions import db
from crm.files.models import DocumentKind, StoredFile
from crm.files.services import store_file
from crm.projects.detail import element_needs, funds_ratio, funds_records
from crm.projects.models import FollowUp, Project, StageChange
from crm.reports.renderer import render_pdf

# The dossier is a summary for a meeting, not the record: the largest permitted input (27
# evaluation comments, the project description and the 10 latest follow-ups, 5,000 characters
# each) gave 225 pages in 12 s, more under load. Each long text shows its first SHORT_TEXT
# characters and a pointer to the system (32 pages in about 2 s); the follow-ups beyond the
# latest LATEST_FOLLOWUPS are counted ("另有 M 条"). The decision's participants and opinion are
# shown whole: they are what the archived copy is for.
LATEST_FOLLOWUPS = 10
# Stage moves and element needs have no limit of their own (a project moved back and forth for
# years): the latest LATEST_ROWS moves and the first LATEST_ROWS needs are shown, the others
# counted.
LATEST_ROWS = 30
SHORT_TEXT = 300
MORE_IN_SYSTEM = "…（全文见系统）"

# WeasyPrint lays out the whole rest of a run that offers no line break for every line it cuts
# from it: a 10,000-character comment without spaces took about 8 s (quadratic). Zero-width
# spaces every BREAK_EVERY characters inside such runs make it linear; pdftotext and copying
# from the PDF do not show them.
BREAK_EVERY = 20
_LONG_RUN = re.compile(r"\S{41,}")  # runs longer than 2 * BREAK_EVERY
_ZWSP = "\u200b"
_JOINERS = {"\u200c", "\u200d"}


def _is_joined(before: str, after: str) -> bool:
    """Whether a break between these two characters would split one visible character."""
    return (
        before in _JOINERS
        or after in _JOINERS
        or unicodedata.category(after) in ("Mn", "Mc", "Me")  # combining marks, selectors
        or "\U0001f3fb" <= after <= "\U0001f3ff"  # emoji skin tones
    )


def breakable(text: str | None) -> str:
    """`text` with break opportunities inside long runs without one (plain text, not markup:
    the template still escapes it)."""
    if not text:
        return text or ""

    def add_breaks(match: re.Match) -> str:
        run, out, since = match.group(0), [], 0
        for i, c in enumerate(run):
            if since >= BREAK_EVERY and not _is_joined(run[i - 1], c):
                out.append(_ZWSP)
                since = 0
            out.append(c)
            since += 1
        return "".join(out)

    return _LONG_RUN.sub(add_breaks, text)


def shown(text: str | None, limit: int = SHORT_TEXT) -> str:
    """`text` as the dossier shows it: its first `limit` characters and "…（全文见系统）" when
    it is longer, with break opportunities inside long runs (plain text: the template escapes)."""
    text = text or ""
    if len(text) > limit:
        text = text[:limit].rstrip() + MORE_IN_SYSTEM
    return breakable(text)


@dataclass
class Dossier:
    project: Project
    html: str
    generated_at: datetime

    @property
    def filename(self) -> str:
        day = self.generated_at.astimezone(LOCAL_TZ).strftime("%Y%m%d")
        name = "".join(c for c in self.project.name if c not in '\\/:*?"<>|\r\n\t')[:80]
        return f"尽调摘要-{name}-{day}.pdf"


def build_dossier(project: Project, user: User, evaluation: Evaluation | None = None) -> Dossier:
    """The dossier's HTML from the data as it stands now."""
    evaluation = evaluation or latest_evaluation(project)
    answers: list[EvaluationAnswer] = load_answers(evaluation) if evaluation else []
    sections: dict[str, list[EvaluationAnswer]] = {}
    for a in answers:
        sections.setdefault(a.item.section.title, []).append(a)
    funds = funds_records(project)
    funds_total = sum((r.amount for r in funds), Decimal(0))
    history = db.session.scalars(
        sa.select(StageChange)
        .where(StageChange.project_id == project.id)
        .options(joinedload(StageChange.changed_by))
        .order_by(StageChange.changed_at.desc(), StageChange.id.desc())
        .limit(LATEST_ROWS)
    ).all()[::-1]  # the latest, in the order they happened
    history_total = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(StageChange)
        .where(StageChange.project_id == project.id)
    )
    needs = element_needs(project)
    followups = db.session.scalars(
        sa.select(FollowUp)
        .where(FollowUp.project_id == project.id)
        .options(joinedload(FollowUp.created_by))
        .order_by(FollowUp.happened_on.desc(), FollowUp.id.desc())
        .limit(LATEST_FOLLOWUPS)
    ).all()
    followups_total = db.session.scalar(
        sa.select(sa.func.count()).select_from(FollowUp).where(FollowUp.project_id == project.id)
    )
    decisions: list[Decision] = decisions_of(evaluation) if evaluation else []
    generated_at = utcnow()
    html = render_template(
        "reports/dossier.html",
        project=project,
        company=project.company,
        evaluation=evaluation,
        sections=sections,
        summary=summarize(answers) if evaluation else None,
        decision=decisions[0] if decisions else None,
        needs=needs[:LATEST_ROWS],
        needs_more=max(len(needs) - LATEST_ROWS, 0),
        funds_total=funds_total,
        funds_ratio=funds_ratio(funds_total, project),
        history=history,
        history_more=max(history_total - len(history), 0),
        followups=followups,
        followups_more=max(followups_total - len(followups), 0),
        user=user,
        generated_at=generated_at,
        verdicts=list(Verdict),
        shown=shown,
    )
    return Dossier(project, html, generated_at)


def render_dossier(dossier: Dossier) -> bytes:
    config = current_app.config
    return render_pdf(
        dossier.html,
        in_subprocess=config["PDF_IN_SUBPROCESS"],
        timeout=config["PDF_TIMEOUT_SECONDS"],
        max_concurrent=config["PDF_MAX_CONCURRENT"],
        wait=config["PDF_WAIT_SECONDS"],
    )


def archive_dossier(user: User, decision: Decision, evaluation: Evaluation) -> StoredFile:
    """Render the dossier as it stands at `decision` and keep it, with its SHA-256."""
    project = evaluation.project
    dossier = build_dossier(project, user, evaluation)
    pdf = render_dossier(dossier)
    stored = store_file(
        user,
        project,
        io.BytesIO(pdf),
        dossier.filename,
        DocumentKind.DOSSIER,
        Path(current_app.config["UPLOAD_FOLDER"]),
        max(len(pdf), current_app.config["MAX_UPLOAD_BYTES"]),
    )
    decision.dossier_file_id = stored.id
    assert stored.sha256 == hashlib.sha256(pdf).hexdigest()
    return stored


def archive_on_decision(evaluation: Evaluation, user: User, decision: Decision) -> None:
    """The `decision_taken` hook (crm/hooks.py): archive the dossier with the decision, in its
    transaction, when DOSSIER_ARCHIVE is on; a dossier that cannot be rendered (RenderUnavailable)
    refuses the decision."""
    if not current_app.config["DOSSIER_ARCHIVE"]:
        return
    stored = archive_dossier(user, decision, evaluation)
    record(
        user,
        "dossier_archived",
        evaluation,
        summary=f"决策时存档尽调摘要 SHA-256 {stored.sha256}",
        changes={"file_id": stored.id, "sha256": stored.sha256},
    )
