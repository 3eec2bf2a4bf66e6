"""The task forms: a new task, completing one, cancelling one."""

from __future__ import annotations

from wtforms import BooleanField, DateField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from crm.forms import Form, select_choices, strip
from crm.tasks.models import DESCRIPTION_MAX, NOTE_MAX, REASON_MAX, TITLE_MAX


class TaskForm(Form):
    """新建任务. The assignee's choices are the active users who read the project; a choice
    outside them (a page from before an account was disabled) is refused by the service at the
    field, with the reason, rather than as an unknown option."""

    title = StringField(
        "任务", filters=[strip], validators=[DataRequired("请填写任务标题"), Length(max=TITLE_MAX)]
    )
    description = TextAreaField(
        "说明", filters=[strip], validators=[Optional(), Length(max=DESCRIPTION_MAX)]
    )
    due_on = DateField("期限", validators=[InputRequired("请填写期限")])
    assignee_id = SelectField("负责人", coerce=int, validate_choice=False)

    def set_assignees(self, users) -> None:
        self.assignee_id.choices = select_choices(
            [(0, "— 请选择 —")]
            + [(u.id, f"{u.display_name}（{u.role.label} · {u.scope_label}）") for u in users]
        )


class CompleteForm(Form):
    note = TextAreaField(
        "完成情况",
        filters=[strip],
        validators=[Optional(), Length(max=NOTE_MAX)],
        description="选填，如：已与企业确认签约时间",
    )
    confirm = BooleanField("确认完成", validators=[DataRequired("请勾选“确认完成”")])


class CancelForm(Form):
    reason = StringField(
        "取消原因",
        filters=[strip],
        validators=[DataRequired("请说明取消原因"), Length(max=REASON_MAX)],
    )
    confirm = BooleanField("确认取消", validators=[DataRequired("请勾选“确认取消”")])
