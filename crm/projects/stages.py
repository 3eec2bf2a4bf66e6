"""The one list of lifecycle stages and statuses (measure 28)."""

from __future__ import annotations

from crm.core import LabelledEnum


class Stage(LabelledEnum):
    PLANNED = "谋划"
    ATTRACTING = "招引"
    SIGNED = "签约"
    STARTED = "开工"
    PRODUCING = "投产"

    @property
    def order(self) -> int:
        return list(Stage).index(self)

    @property
    def next(self) -> Stage | None:
        stages = list(Stage)
        return stages[self.order + 1] if self.order + 1 < len(stages) else None

    @property
    def records_signed_amount(self) -> bool:
        """Entering this stage records the 签约金额 (the dashboard counts this stage's results by
        it, the others' by the total investment; a rejected move clears it)."""
        return "signed_amount" in STAGE_REQUIRED_FIELDS.get(self, {})


class Status(LabelledEnum):
    """Separate from the stage, as in Data Hub."""

    ACTIVE = "正常"
    ON_HOLD = "暂缓", "warn"
    DROPPED = "终止", "warn"
    LOST = "流失", "warn"

    @property
    def is_active(self) -> bool:
        """正常: anything else needs a reason and a date, and the pages show them."""
        return self is Status.ACTIVE


class Verification(LabelledEnum):
    """甄别: a claimed 签约, 开工 or 投产 counts once the task force has verified it."""

    PENDING = "待核实", "warn"
    VERIFIED = "已核实", "ok"
    REJECTED = "已驳回", "stale"

    @property
    def is_verified(self) -> bool:
        return self is Verification.VERIFIED


# Moves into these stages wait for the task force's verification.
VERIFIED_STAGES = (Stage.SIGNED, Stage.STARTED, Stage.PRODUCING)

# Fields a project must have before it may enter a stage, with the label the form shows.
STAGE_REQUIRED_FIELDS: dict[Stage, dict[str, str]] = {
    Stage.SIGNED: {"signed_amount": "签约金额(万元)", "signed_on": "签约日期"},
    Stage.STARTED: {"started_on": "开工日期"},
    Stage.PRODUCING: {"producing_on": "投产日期"},
}

# Planned/actual date pairs, in lifecycle order.
MILESTONES: list[tuple[str, str, str]] = [
    ("签约", "planned_signed_on", "signed_on"),
    ("开工", "planned_started_on", "started_on"),
    ("投产", "planned_producing_on", "producing_on"),
]
