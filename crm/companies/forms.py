from __future__ import annotations

from decimal import Decimal

from wtforms import EmailField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Optional, Regexp

from crm.companies.models import Origin
from crm.forms import DecimalField, Form, select_choices, strip


class CompanyForm(Form):
    name = StringField(
        "企业名称", filters=[strip], validators=[DataRequired("请填写企业名称"), Length(max=200)]
    )
    credit_code = StringField(
        "统一社会信用代码",
        filters=[strip],
        # A pasted code may carry spaces, hyphens or full-width characters: the service
        # normalises it and says which part is wrong; here only an absurd length is refused.
        validators=[Length(max=64, message="统一社会信用代码应为 18 位")],
        description="18 位；尚未在境内注册的企业可留空",
    )
    legal_representative = StringField("法定代表人", filters=[strip], validators=[Length(max=64)])
    registered_capital = DecimalField(
        "注册资本",
        places=2,
        validators=[
            Optional(),
            NumberRange(0, Decimal("100000000"), "注册资本应在 0 到 1 亿万元之间"),
        ],
    )
    origin = SelectField("来源地", choices=select_choices(Origin.choices()))
    industry = StringField("所属行业", filters=[strip], validators=[Length(max=100)])


class ContactForm(Form):
    name = StringField(
        "姓名", filters=[strip], validators=[DataRequired("请填写姓名"), Length(max=64)]
    )
    position = StringField("职务", filters=[strip], validators=[Length(max=100)])
    phone = StringField("电话", filters=[strip], validators=[Length(max=32)])
    email = EmailField(
        "电子邮箱",
        filters=[strip],
        validators=[
            Optional(),
            Regexp(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", message="电子邮箱格式不正确"),
            Length(max=120),
        ],
    )
    wechat = StringField("微信", filters=[strip], validators=[Length(max=64)])
    notes = TextAreaField("备注", filters=[strip], validators=[Length(max=2000)])
