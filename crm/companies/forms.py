from __future__ import annotations

from decimal import Decimal

from wtforms import BooleanField, EmailField, IntegerField, SelectField, StringField, TextAreaField
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
    # Shown with the likely matches (重复企业) found for a new company.
    confirm_duplicate = BooleanField("仍然登记：我已核对，以上企业不是本企业")


class MergeForm(Form):
    """An admin merges a duplicate (absorbed) into the company that stays (kept)."""

    absorbed_id = IntegerField(
        "被合并的企业编号",
        validators=[DataRequired("请填写被合并（重复）企业的编号"), NumberRange(1, 2**31 - 1)],
        description="企业页面地址中的数字；该企业合并后不再单独显示",
    )
    kept_id = IntegerField(
        "保留的企业编号",
        validators=[DataRequired("请填写保留企业的编号"), NumberRange(1, 2**31 - 1)],
    )
    confirm = BooleanField("我已核对两家企业，确认合并（合并后不能撤销）")


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
