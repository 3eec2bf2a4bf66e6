"""Forms of the 工作日历 page: one day of the admin's calendar, and the deletion's confirmation."""

from __future__ import annotations

from wtforms import BooleanField, DateField, SelectField, StringField
from wtforms.validators import DataRequired, InputRequired

from crm.forms import Form, enum_coerce, select_choices, strip
from crm.workdays.models import DayKind
from crm.workdays.services import NAME_MAX


class CalendarDayForm(Form):
    day = DateField("日期", validators=[InputRequired("请填写日期")])
    kind = SelectField(
        "类型",
        choices=select_choices(DayKind.choices()),
        coerce=enum_coerce(DayKind),
        validators=[InputRequired("请选择类型")],
        description="休息日：法定节假日或因调休放假的工作日；调休上班日：因调休上班的周末",
    )
    # Length is checked by the service, with the other rules, so the message is the same.
    name = StringField(
        "名称",
        filters=[strip],
        description=f"如：春节、国庆节调休；不超过 {NAME_MAX} 个字",
        render_kw={"maxlength": NAME_MAX},
    )


class DeleteDayForm(Form):
    """Deleting a day asks first; the server refuses it unless the box is ticked."""

    confirm = BooleanField(
        "确认删除：删除后这一天按日历库（或周一至周五）计算",
        validators=[DataRequired("请勾选确认后再删除")],
    )
