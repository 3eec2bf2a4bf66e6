"""Evaluation of a project before it is signed (measure 22): versioned checklist templates,
the filled checklist, and the leaders' collective decisions (集体决策)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.auth.models import User
from crm.core import LabelledEnum, UTCDateTime, enum_column, utcnow
from crm.extensions import db
from crm.files.models import StoredFile
from crm.projects.models import Project

Score = sa.Numeric(6, 1)


class ChecklistTemplate(db.Model):
    """评估清单模板, one version of it. Editing makes a new version; old ones stay as they were."""

    __tablename__ = "checklist_templates"
    __table_args__ = (sa.UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    version: Mapped[int]
    is_current: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    change_note: Mapped[str] = mapped_column(sa.String(500), default="", server_default="")
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    sections: Mapped[list[ChecklistSection]] = relationship(
        back_populates="template", order_by="ChecklistSection.position"
    )
    created_by: Mapped[User | None] = relationship()

    def __str__(self) -> str:
        return f"{self.name}（第 {self.version} 版）"


class ChecklistSection(db.Model):
    __tablename__ = "checklist_sections"

    id: Mapped[int] = mapped_column(primary_key=True)
    template_id: Mapped[int] = mapped_column(sa.ForeignKey("checklist_templates.id"), index=True)
    position: Mapped[int]
    title: Mapped[str] = mapped_column(sa.String(100))

    template: Mapped[ChecklistTemplate] = relationship(back_populates="sections")
    items: Mapped[list[ChecklistItem]] = relationship(
        back_populates="section", order_by="ChecklistItem.position"
    )


class ChecklistItem(db.Model):
    __tablename__ = "checklist_items"
    __table_args__ = (
        sa.CheckConstraint("max_score IS NULL OR max_score > 0", name="max_score_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    section_id: Mapped[int] = mapped_column(sa.ForeignKey("checklist_sections.id"), index=True)
    position: Mapped[int]
    title: Mapped[str] = mapped_column(sa.String(200))
    guidance: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    is_veto: Mapped[bool] = mapped_column(default=False, server_default=sa.false())  # 一票否决
    max_score: Mapped[Decimal | None] = mapped_column(Score)

    section: Mapped[ChecklistSection] = relationship(back_populates="items")


class EvaluationState(LabelledEnum):
    DRAFT = "草稿", "warn"
    SUBMITTED = "待决策", "warn"
    RETURNED = "退回", "warn"  # reopened for rework
    PASSED = "通过", "ok"
    REJECTED = "否决", "stale"

    @property
    def awaits_decision(self) -> bool:
        return self is EvaluationState.SUBMITTED

    @property
    def is_returned(self) -> bool:
        return self is EvaluationState.RETURNED


OPEN_STATES = (EvaluationState.DRAFT, EvaluationState.SUBMITTED, EvaluationState.RETURNED)


class Verdict(LabelledEnum):
    CONFORMS = "符合"
    MOSTLY = "基本符合"
    FAILS = "不符合", "stale"
    NOT_APPLICABLE = "不适用"


class Evaluation(db.Model):
    """One evaluation of one project, filled on one template version."""

    __tablename__ = "evaluations"
    __table_args__ = (
        # At most one open evaluation per project, even under concurrent starts.
        sa.Index(
            "uq_evaluations_open_project",
            "project_id",
            unique=True,
            sqlite_where=sa.text("state IN ('DRAFT', 'SUBMITTED', 'RETURNED')"),
            postgresql_where=sa.text("state IN ('DRAFT', 'SUBMITTED', 'RETURNED')"),
        ),
        sa.Index("ix_evaluations_state_submitted_at", "state", "submitted_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(sa.ForeignKey("projects.id"), index=True)
    template_id: Mapped[int] = mapped_column(sa.ForeignKey("checklist_templates.id"))
    state: Mapped[EvaluationState] = mapped_column(
        enum_column(EvaluationState, "state"), default=EvaluationState.DRAFT
    )
    started_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    submitted_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    project: Mapped[Project] = relationship()
    template: Mapped[ChecklistTemplate] = relationship()
    started_by: Mapped[User | None] = relationship(foreign_keys=[started_by_id])
    submitted_by: Mapped[User | None] = relationship(foreign_keys=[submitted_by_id])

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def is_editable(self) -> bool:
        return self.state in (EvaluationState.DRAFT, EvaluationState.RETURNED)


class EvaluationAnswer(db.Model):
    """The verdict, comment and score given to one checklist item."""

    __tablename__ = "evaluation_answers"
    __table_args__ = (sa.UniqueConstraint("evaluation_id", "item_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    evaluation_id: Mapped[int] = mapped_column(sa.ForeignKey("evaluations.id"), index=True)
    item_id: Mapped[int] = mapped_column(sa.ForeignKey("checklist_items.id"))
    verdict: Mapped[Verdict | None] = mapped_column(enum_column(Verdict, "verdict"))
    comment: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    score: Mapped[Decimal | None] = mapped_column(Score)
    updated_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    item: Mapped[ChecklistItem] = relationship()
    updated_by: Mapped[User | None] = relationship()
    files: Mapped[list[StoredFile]] = relationship(
        secondary=lambda: answer_files,
        secondaryjoin=lambda: sa.and_(
            StoredFile.id == answer_files.c.file_id, StoredFile.is_deleted.is_(False)
        ),
        order_by=lambda: StoredFile.id,
        viewonly=True,
    )


# Evidence files (佐证材料) attached to an answer.
answer_files = sa.Table(
    "evaluation_answer_files",
    db.metadata,
    sa.Column("answer_id", sa.ForeignKey("evaluation_answers.id"), primary_key=True),
    sa.Column("file_id", sa.ForeignKey("stored_files.id"), primary_key=True),
)


class DecisionOutcome(LabelledEnum):
    PASSED = "通过"
    RETURNED = "退回"
    REJECTED = "否决"


class Decision(db.Model):
    """集体决策: one decision taken on an evaluation at a meeting. Never edited."""

    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    evaluation_id: Mapped[int] = mapped_column(sa.ForeignKey("evaluations.id"), index=True)
    outcome: Mapped[DecisionOutcome] = mapped_column(enum_column(DecisionOutcome, "outcome"))
    meeting_date: Mapped[date]
    meeting_name: Mapped[str] = mapped_column(sa.String(200))
    participants: Mapped[str] = mapped_column(sa.Text)
    opinion: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    decided_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The due-diligence summary as it stood at the decision, archived with its SHA-256.
    dossier_file_id: Mapped[int | None] = mapped_column(sa.ForeignKey("stored_files.id"))

    decided_by: Mapped[User | None] = relationship()
    dossier_file: Mapped[StoredFile | None] = relationship()
