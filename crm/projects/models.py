"""Projects and what happens to them: stage and status history, follow-ups,
element needs (要素保障) and funds actually invested (实际到位资金)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.auth.models import User
from crm.catalog.models import Carrier, Chain, Channel, Cluster, TerminationReason
from crm.companies.models import Company, Contact
from crm.core import Area, LabelledEnum, Money, UTCDateTime, enum_column, utcnow
from crm.extensions import db
from crm.projects.stages import Stage, Status, Verification


class Project(db.Model):
    __tablename__ = "projects"
    __table_args__ = (
        # The list's filters and sorts (issue 7): equality columns first, then the sort, and
        # is_deleted inside the index so the page count is read from the index alone.
        sa.Index("ix_projects_stage_is_deleted_updated_at", "stage", "is_deleted", "updated_at"),
        sa.Index(
            "ix_projects_carrier_id_is_deleted_updated_at", "carrier_id", "is_deleted", "updated_at"
        ),
        sa.Index(
            "ix_projects_carrier_id_stage_is_deleted_updated_at",
            "carrier_id",
            "stage",
            "is_deleted",
            "updated_at",
        ),
        sa.Index("ix_projects_cluster_id_updated_at", "cluster_id", "updated_at"),
        # The text search scans this index instead of the table (crm.projects.search), and
        # sorts its matches by the last update from it too.
        sa.Index("ix_projects_search_text", "search_text", "is_deleted", "updated_at"),
        # An officer's home page: its next actions due and its stale projects, in order.
        sa.Index(
            "ix_projects_officer_id_status_next_action_due",
            "officer_id",
            "status",
            "next_action_due",
        ),
        sa.Index(
            "ix_projects_officer_id_status_last_followup_on",
            "officer_id",
            "status",
            "last_followup_on",
        ),
        # Whether a project is readable (`crm.access.project_scope`), from this narrow index
        # instead of the wide row: the lists of records hung on projects (tasks) check it for
        # every row they count.
        sa.Index("ix_projects_id_scope", "id", "is_deleted", "carrier_id", "cluster_id"),
        sa.CheckConstraint("total_investment >= 0", name="total_investment_not_negative"),
        sa.CheckConstraint("land_area >= 0", name="land_area_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200), index=True)
    company_id: Mapped[int] = mapped_column(sa.ForeignKey("companies.id"), index=True)
    carrier_id: Mapped[int] = mapped_column(sa.ForeignKey("carriers.id"))
    cluster_id: Mapped[int] = mapped_column(sa.ForeignKey("clusters.id"))
    chain_id: Mapped[int | None] = mapped_column(sa.ForeignKey("chains.id"))
    channel_id: Mapped[int] = mapped_column(sa.ForeignKey("channels.id"), index=True)
    officer_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    is_key: Mapped[bool] = mapped_column(default=False, server_default=sa.false())  # 重点项目

    stage: Mapped[Stage] = mapped_column(enum_column(Stage, "stage"), default=Stage.PLANNED)
    status: Mapped[Status] = mapped_column(enum_column(Status, "status"), default=Status.ACTIVE)
    status_reason: Mapped[str] = mapped_column(sa.String(500), default="", server_default="")
    status_on: Mapped[date | None]
    lost_to: Mapped[str] = mapped_column(sa.String(100), default="", server_default="")
    termination_reason_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("termination_reasons.id")
    )

    total_investment: Mapped[Decimal] = mapped_column(Money)  # 总投资, 万元
    fixed_asset_investment: Mapped[Decimal | None] = mapped_column(Money)  # 固定资产投资, 万元
    land_area: Mapped[Decimal | None] = mapped_column(Area)  # 亩
    expected_output: Mapped[Decimal | None] = mapped_column(Money)  # 预计年产值, 万元
    expected_tax: Mapped[Decimal | None] = mapped_column(Money)  # 预计年税收, 万元
    expected_jobs: Mapped[int | None]
    description: Mapped[str] = mapped_column(sa.Text, default="", server_default="")

    planned_signed_on: Mapped[date | None]
    signed_on: Mapped[date | None]
    signed_amount: Mapped[Decimal | None] = mapped_column(Money)
    planned_started_on: Mapped[date | None]
    started_on: Mapped[date | None]
    planned_producing_on: Mapped[date | None]
    producing_on: Mapped[date | None]

    # The project's and its company's names for the text search (crm.projects.search).
    search_text: Mapped[str] = mapped_column(sa.String(410), default="", server_default="")
    # Kept by the follow-up service so lists can filter without reading follow-ups.
    last_followup_on: Mapped[date | None] = mapped_column(index=True)
    next_action: Mapped[str] = mapped_column(sa.String(500), default="", server_default="")
    next_action_due: Mapped[date | None] = mapped_column(index=True)

    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow, index=True
    )
    version: Mapped[int] = mapped_column(default=1, server_default="1")
    is_deleted: Mapped[bool] = mapped_column(default=False, server_default=sa.false())

    # The version is raised by the services on every edit or move, not on follow-ups;
    # an UPDATE over a newer version fails (optimistic locking).
    __mapper_args__ = {"version_id_col": version, "version_id_generator": False}

    company: Mapped[Company] = relationship()
    carrier: Mapped[Carrier] = relationship()
    cluster: Mapped[Cluster] = relationship()
    chain: Mapped[Chain | None] = relationship()
    channel: Mapped[Channel] = relationship()
    officer: Mapped[User] = relationship(foreign_keys=[officer_id])
    termination_reason: Mapped[TerminationReason | None] = relationship()

    def __str__(self) -> str:
        return self.name

    @property
    def investment_per_mu(self) -> Decimal | None:
        """亩均投资 (万元/亩)."""
        if self.land_area:
            return (self.total_investment / self.land_area).quantize(Decimal("0.01"))
        return None

    @property
    def tax_per_mu(self) -> Decimal | None:
        """亩均税收 (万元/亩)."""
        if self.land_area and self.expected_tax is not None:
            return (self.expected_tax / self.land_area).quantize(Decimal("0.01"))
        return None


class StageChange(db.Model):
    """One move between stages. Written by the lifecycle service, never edited."""

    __tablename__ = "stage_changes"
    # The dashboard's "moved into a stage, verified, in a year" reads the first index alone;
    # the home page's latest moves walk the second, newest first.
    __table_args__ = (
        sa.Index(
            "ix_stage_changes_to_stage_verification",
            "to_stage",
            "verification",
            "changed_at",
            "project_id",
        ),
        sa.Index("ix_stage_changes_changed_at_id", "changed_at", "id"),
        # 待办: the moves waiting for 甄别, oldest first; those rejected lately, newest first.
        sa.Index("ix_stage_changes_verification_changed_at", "verification", "changed_at", "id"),
        sa.Index("ix_stage_changes_verification_verified_at", "verification", "verified_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(sa.ForeignKey("projects.id"), index=True)
    from_stage: Mapped[Stage | None] = mapped_column(enum_column(Stage, "from_stage"))
    to_stage: Mapped[Stage] = mapped_column(enum_column(Stage, "to_stage"))
    reason: Mapped[str] = mapped_column(sa.String(500), default="", server_default="")
    changed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # The project's 责任人 when the move was made: the officer the move is credited to in
    # the statistics, wherever the project went since (流转).
    officer_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    # 甄别 of a move into 签约, 开工 or 投产; None for moves that need none.
    verification: Mapped[Verification | None] = mapped_column(
        enum_column(Verification, "verification")
    )
    verified_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    verification_note: Mapped[str] = mapped_column(sa.String(500), default="", server_default="")

    project: Mapped[Project] = relationship()
    changed_by: Mapped[User | None] = relationship(foreign_keys=[changed_by_id])
    officer: Mapped[User | None] = relationship(foreign_keys=[officer_id])
    verified_by: Mapped[User | None] = relationship(foreign_keys=[verified_by_id])

    @property
    def is_backward(self) -> bool:
        return self.from_stage is not None and self.to_stage.order < self.from_stage.order


class StatusChange(db.Model):
    """One change of status (正常 / 暂缓 / 终止 / 流失), never edited."""

    __tablename__ = "status_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(sa.ForeignKey("projects.id"), index=True)
    from_status: Mapped[Status] = mapped_column(enum_column(Status, "from_status"))
    to_status: Mapped[Status] = mapped_column(enum_column(Status, "to_status"))
    reason: Mapped[str] = mapped_column(sa.String(500), default="", server_default="")
    effective_on: Mapped[date]
    lost_to: Mapped[str] = mapped_column(sa.String(100), default="", server_default="")
    termination_reason_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("termination_reasons.id")
    )
    changed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    changed_by: Mapped[User | None] = relationship()
    termination_reason: Mapped[TerminationReason | None] = relationship()


class FollowUpKind(LabelledEnum):
    VISIT = "走访"
    CALL = "电话"
    NEGOTIATION = "洽谈"
    MEETING = "会议"
    OTHER = "其他"


followup_contacts = sa.Table(
    "followup_contacts",
    db.metadata,
    sa.Column("followup_id", sa.ForeignKey("followups.id"), primary_key=True),
    sa.Column("contact_id", sa.ForeignKey("contacts.id"), primary_key=True),
)


class FollowUp(db.Model):
    """跟踪服务: one contact with the company, and the next action it leads to."""

    __tablename__ = "followups"
    __table_args__ = (sa.Index("ix_followups_project_id_happened_on", "project_id", "happened_on"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(sa.ForeignKey("projects.id"))
    kind: Mapped[FollowUpKind] = mapped_column(enum_column(FollowUpKind, "kind"))
    happened_on: Mapped[date]
    summary: Mapped[str] = mapped_column(sa.Text)
    next_action: Mapped[str] = mapped_column(sa.String(500), default="", server_default="")
    next_action_due: Mapped[date | None]
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    created_by: Mapped[User | None] = relationship()
    contacts: Mapped[list[Contact]] = relationship(secondary=followup_contacts)


class ElementKind(LabelledEnum):
    LAND = "用地"
    FOREST = "用林"
    ENERGY = "用能"
    WATER = "用水"
    ENVIRONMENT = "环境容量"

    @property
    def default_unit(self) -> str:
        return {
            "LAND": "亩",
            "FOREST": "亩",
            "ENERGY": "吨标准煤/年",
            "WATER": "吨/年",
            "ENVIRONMENT": "吨/年",
        }[self.name]


class ElementStatus(LabelledEnum):
    RAISED = "提出", "warn"
    CONSULTING = "会商中", "warn"
    SECURED = "已保障", "ok"


class ElementNeed(db.Model):
    """要素保障: one need of a project for land, forest, energy, water or environmental capacity."""

    __tablename__ = "element_needs"
    __table_args__ = (sa.CheckConstraint("quantity >= 0", name="quantity_not_negative"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(sa.ForeignKey("projects.id"), index=True)
    kind: Mapped[ElementKind] = mapped_column(enum_column(ElementKind, "kind"))
    quantity: Mapped[Decimal] = mapped_column(sa.Numeric(14, 2))
    unit: Mapped[str] = mapped_column(sa.String(20))
    status: Mapped[ElementStatus] = mapped_column(
        enum_column(ElementStatus, "status"), default=ElementStatus.RAISED
    )
    note: Mapped[str] = mapped_column(sa.String(500), default="", server_default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class FundsRecord(db.Model):
    """实际到位资金: an amount actually invested, on a date."""

    __tablename__ = "funds_records"
    __table_args__ = (
        sa.CheckConstraint("amount > 0", name="amount_positive"),
        # "Funds received in a period", per project, from the index alone.
        sa.Index("ix_funds_records_received_on_project_id", "received_on", "project_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(sa.ForeignKey("projects.id"), index=True)
    received_on: Mapped[date]
    amount: Mapped[Decimal] = mapped_column(Money)
    note: Mapped[str] = mapped_column(sa.String(500), default="", server_default="")
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    created_by: Mapped[User | None] = relationship()


class ConflictBasis(LabelledEnum):
    CREDIT_CODE = "统一社会信用代码相同"
    NAME = "企业名称相同"


class ProjectConflict(db.Model):
    """Two 载体 courting the same company (measures 13 and 21): flagged until resolved."""

    __tablename__ = "project_conflicts"
    __table_args__ = (sa.UniqueConstraint("project_id", "other_project_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(sa.ForeignKey("projects.id"), index=True)
    other_project_id: Mapped[int] = mapped_column(sa.ForeignKey("projects.id"), index=True)
    basis: Mapped[ConflictBasis] = mapped_column(enum_column(ConflictBasis, "basis"))
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    resolved_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    resolution_note: Mapped[str] = mapped_column(sa.String(1000), default="", server_default="")

    project: Mapped[Project] = relationship(foreign_keys=[project_id])
    other_project: Mapped[Project] = relationship(foreign_keys=[other_project_id])
    resolved_by: Mapped[User | None] = relationship()


class HandoverState(LabelledEnum):
    """Where a hand-over (流转) stands: offered, until the receiving 载体 decides."""

    PENDING = "待接收", "warn"
    ACCEPTED = "已接收", "ok"
    DECLINED = "已退回", "stale"
    WITHDRAWN = "已撤回"

    @property
    def is_pending(self) -> bool:
        return self is HandoverState.PENDING


_PENDING_HANDOVER = sa.text("state = 'PENDING'")


class Handover(db.Model):
    """流转: a project offered to another 载体, its history travelling with it. The project
    stays with the sending 载体 (and its statistics there) until the receiving 载体 accepts;
    it may decline with a reason, or the sender withdraw the offer."""

    __tablename__ = "handovers"
    __table_args__ = (
        # A project has at most one hand-over waiting for the receiving 载体.
        sa.Index(
            "uq_handovers_pending_project",
            "project_id",
            unique=True,
            sqlite_where=_PENDING_HANDOVER,
            postgresql_where=_PENDING_HANDOVER,
        ),
        # 待办: the hand-overs waiting for a 载体 (or for anyone, by state alone), oldest first.
        sa.Index(
            "ix_handovers_state_to_carrier_id_handed_at", "state", "to_carrier_id", "handed_at"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(sa.ForeignKey("projects.id"), index=True)
    from_carrier_id: Mapped[int] = mapped_column(sa.ForeignKey("carriers.id"))
    to_carrier_id: Mapped[int] = mapped_column(sa.ForeignKey("carriers.id"))
    reason: Mapped[str] = mapped_column(sa.String(1000))
    benefit_sharing: Mapped[str] = mapped_column(sa.String(1000), default="", server_default="")
    handed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    handed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The project's 责任人 when it was offered (the sending officer), and the one the sender
    # proposed in the receiving 载体; both unknown for hand-overs made before acceptance existed.
    from_officer_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    proposed_officer_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    state: Mapped[HandoverState] = mapped_column(
        enum_column(HandoverState, "state"), default=HandoverState.PENDING
    )
    # Who accepted, declined or withdrew it, and when; the new 责任人 on acceptance.
    decided_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    officer_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    decline_reason: Mapped[str] = mapped_column(sa.String(500), default="", server_default="")

    project: Mapped[Project] = relationship()
    from_carrier: Mapped[Carrier] = relationship(foreign_keys=[from_carrier_id])
    to_carrier: Mapped[Carrier] = relationship(foreign_keys=[to_carrier_id])
    handed_by: Mapped[User | None] = relationship(foreign_keys=[handed_by_id])
    from_officer: Mapped[User | None] = relationship(foreign_keys=[from_officer_id])
    proposed_officer: Mapped[User | None] = relationship(foreign_keys=[proposed_officer_id])
    decided_by: Mapped[User | None] = relationship(foreign_keys=[decided_by_id])
    officer: Mapped[User | None] = relationship(foreign_keys=[officer_id])
