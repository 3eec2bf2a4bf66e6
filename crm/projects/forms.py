"""Project forms. Choices of catalogue selects are filled by the views."""

from __future__ import annotations

from decimal import Decimal

from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    widgets,
)
from wtforms.utils import unset_value
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)

from crm.core import local_today
from crm.forms import NONE_CHOICE, DecimalField, Form, OptionalSelectField, select_choices, strip
from crm.projects.lifecycle import STATUS_MOVES
from crm.projects.models import ElementKind, ElementStatus, FollowUpKind
from crm.projects.registration import INITIAL_STAGES
from crm.projects.stages import Status

MAX_MONEY = Decimal("100000000")  # 万元: 1 万亿, beyond any single project
MAX_AREA = Decimal("1000000")  # 亩
# Statuses a project never leaves (终止, 流失): changing to them asks for confirmation.
FINAL_STATUS_NAMES = frozenset(s.name for s, moves in STATUS_MOVES.items() if not moves)


def money_field(label: str, required: bool = False) -> DecimalField:
    first = InputRequired(f"请填写{label}") if required else Optional()
    return DecimalField(
        label,
        places=2,
        validators=[first, NumberRange(0, MAX_MONEY, f"{label}应在 0 到 1 亿万元之间")],
        render_kw={"inputmode": "decimal", "step": "0.01"},
    )


class VersionField(HiddenField):
    """The version of the record the user loaded (optimistic locking), read from the submitted
    form only. WTForms would fall back to the edited object's own version when the field is
    left out, and an edit without it would then overwrite whatever version is stored."""

    def process(self, formdata, data=unset_value, extra_filters=None):
        super().process(formdata, data, extra_filters)
        if formdata is not None and self.name not in formdata:
            self.data = None


class ProjectForm(Form):
    name = StringField(
        "项目名称",
        filters=[strip],
        validators=[DataRequired("请填写项目名称"), Length(max=200)],
    )
    stage = SelectField(
        "登记阶段",
        choices=select_choices((s.name, s.label) for s in INITIAL_STAGES),
        default=INITIAL_STAGES[0].name,
    )
    carrier_id = SelectField("载体", coerce=int, validators=[DataRequired("请选择载体")])
    cluster_id = SelectField("产业集群", coerce=int, validators=[DataRequired("请选择产业集群")])
    chain_id = OptionalSelectField("产业链")
    channel_id = SelectField("招商渠道", coerce=int, validators=[DataRequired("请选择招商渠道")])
    officer_id = SelectField("责任人", coerce=int, validators=[DataRequired("请选择责任人")])
    is_key = BooleanField("重点项目")
    total_investment = money_field("总投资", required=True)
    fixed_asset_investment = money_field("固定资产投资")
    land_area = DecimalField(
        "用地面积",
        places=2,
        validators=[Optional(), NumberRange(0, MAX_AREA, "用地面积应在 0 到 100 万亩之间")],
    )
    expected_output = money_field("预计年产值")
    expected_tax = money_field("预计年税收")
    expected_jobs = IntegerField(
        "预计新增就业",
        validators=[Optional(), NumberRange(0, 1000000, "就业人数应在 0 到 100 万之间")],
    )
    description = TextAreaField(
        "项目简介", filters=[strip], validators=[Length(max=5000, message="不能超过 5000 个字符")]
    )
    planned_signed_on = DateField("计划签约日期", validators=[Optional()])
    planned_started_on = DateField("计划开工日期", validators=[Optional()])
    planned_producing_on = DateField("计划投产日期", validators=[Optional()])
    version = VersionField()
    # Shown with the warning that another 载体 already courts the company (跨载体冲突).
    confirm_conflict = BooleanField("仍然保存：我已了解其他载体正在跟进该企业")


class StageForm(Form):
    to_stage = SelectField("变更为", validators=[DataRequired("请选择阶段")])
    reason = StringField(
        "说明", filters=[strip], validators=[Length(max=500)], description="退回时必填"
    )
    signed_amount = money_field("签约金额")
    signed_on = DateField("签约日期", validators=[Optional()])
    started_on = DateField("开工日期", validators=[Optional()])
    producing_on = DateField("投产日期", validators=[Optional()])


class StatusForm(Form):
    to_status = SelectField("变更为", validators=[DataRequired("请选择状态")])
    reason = StringField("原因", filters=[strip], validators=[Length(max=500)])
    effective_on = DateField("生效日期", default=local_today, validators=[Optional()])
    lost_to = StringField(
        "流向", filters=[strip], validators=[Length(max=100)], description="流失时填写，如：合肥市"
    )
    termination_reason_id = OptionalSelectField("终止原因")
    # 终止 and 流失 cannot be undone: the server refuses them unless this box is ticked.
    confirm = BooleanField(
        "确认终止或流失：项目将不能再推进，也不能恢复",
        description="变更为终止或流失时须勾选",
    )

    def validate_confirm(self, field) -> None:
        if self.to_status.data in FINAL_STATUS_NAMES and not field.data:
            raise ValidationError("请勾选确认：终止或流失后项目不能再推进，也不能恢复")

    def set_choices(self, current: Status, moves, reasons) -> None:
        self.to_status.choices = select_choices((s.name, s.label) for s in moves)
        self.termination_reason_id.choices = select_choices(
            [NONE_CHOICE, *((r.id, r.name) for r in reasons)]
        )


class FollowUpForm(Form):
    kind = SelectField("方式", choices=select_choices(FollowUpKind.choices()))
    happened_on = DateField(
        "日期", default=local_today, validators=[InputRequired("请填写跟踪日期")]
    )
    summary = TextAreaField(
        "情况记录",
        filters=[strip],
        validators=[DataRequired("请填写跟踪情况"), Length(max=5000)],
    )
    contact_ids = SelectMultipleField(
        "会见的联系人",
        coerce=int,
        widget=widgets.ListWidget(prefix_label=False),
        option_widget=widgets.CheckboxInput(),
        validate_choice=True,
    )
    next_action = StringField("下一步", filters=[strip], validators=[Length(max=500)])
    next_action_due = DateField("下一步期限", validators=[Optional()])


class ElementNeedForm(Form):
    kind = SelectField("要素", choices=select_choices(ElementKind.choices()))
    quantity = DecimalField(
        "数量",
        places=2,
        validators=[
            InputRequired("请填写数量"),
            NumberRange(0, Decimal("100000000"), "数量应在 0 到 1 亿之间"),
        ],
    )
    unit = StringField(
        "单位", filters=[strip], validators=[Length(max=20)], description="留空按要素默认单位"
    )
    status = SelectField("保障状态", choices=select_choices(ElementStatus.choices()))
    note = StringField("备注", filters=[strip], validators=[Length(max=500)])


class ElementStatusForm(Form):
    quantity = ElementNeedForm.quantity
    status = SelectField("保障状态", choices=select_choices(ElementStatus.choices()))
    note = StringField("备注", filters=[strip], validators=[Length(max=500)])


class FundsForm(Form):
    received_on = DateField(
        "到位日期", default=local_today, validators=[InputRequired("请填写日期")]
    )
    amount = DecimalField(
        "到位金额",
        places=2,
        validators=[
            InputRequired("请填写金额"),
            NumberRange(Decimal("0.01"), MAX_MONEY, "金额应大于 0 且不超过 1 亿万元"),
        ],
    )
    note = StringField("说明", filters=[strip], validators=[Length(max=500)])


class VerifyForm(Form):
    """甄别: confirm a claimed 签约, 开工 or 投产."""

    note = StringField(
        "核实意见",
        filters=[strip],
        validators=[Length(max=500)],
        description="选填，如：已核对协议原件",
    )


class RejectForm(Form):
    """甄别: reject a claimed move; the project returns to the stage it came from."""

    reason = StringField(
        "驳回原因", filters=[strip], validators=[DataRequired("请说明驳回原因"), Length(max=480)]
    )
    confirm = BooleanField(
        "确认驳回", validators=[DataRequired("请勾选“确认驳回”：驳回后项目将退回原阶段")]
    )


class HandoverForm(Form):
    """流转: hand the project over to another 载体.

    The choices are the 载体 other than the project's and their officers; they are not checked
    against the submitted values here but by the service, so a page from before a hand-over
    made meanwhile (the project now in the chosen 载体) is answered "already decided" (409)."""

    version = VersionField()  # the project's, as the page showed it: a later change wins
    to_carrier_id = SelectField(
        "接收载体",
        coerce=int,
        validate_choice=False,
        validators=[DataRequired("请选择接收的载体")],
    )
    officer_id = SelectField(
        "新的责任人",
        coerce=int,
        validate_choice=False,
        validators=[DataRequired("请选择接收载体的招商专员")],
    )
    reason = TextAreaField(
        "流转原因", filters=[strip], validators=[DataRequired("请说明流转原因"), Length(max=1000)]
    )
    benefit_sharing = TextAreaField(
        "收益分享",
        filters=[strip],
        validators=[Length(max=1000)],
        description="选填，如：投产后前三年地方留成税收按 4:6 分享",
    )
    confirm = BooleanField(
        "确认流转：接收载体接收后，项目及其全部记录将移交该载体，本载体的招商专员将不能再编辑",
        validators=[DataRequired("请勾选确认后再流转")],
    )


class AcceptHandoverForm(Form):
    """接收流转: the receiving 载体 takes the project over, naming its 责任人 there (the
    sender's proposal preselected). The choices are its active officers; the service checks
    the submitted one again (an officer disabled meanwhile is refused at the field)."""

    officer_id = SelectField(
        "新的责任人",
        coerce=int,
        validate_choice=False,
        validators=[DataRequired("请选择接收载体的招商专员作为责任人")],
    )


class DeclineHandoverForm(Form):
    """退回流转: the receiving 载体 declines, saying why; the project stays where it is."""

    reason = TextAreaField(
        "退回原因",
        filters=[strip],
        validators=[DataRequired("请说明退回原因"), Length(max=500)],
        description="如：该项目用地需求超出本园区可供指标",
    )


class ResolveConflictForm(Form):
    note = TextAreaField(
        "处理结果",
        filters=[strip],
        validators=[DataRequired("请写明处理结果"), Length(max=1000)],
        description="如：经专班协调，由涡阳县继续跟进，蒙城县项目转为配套",
    )
