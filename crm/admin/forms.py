"""Forms of the admin pages (系统管理): user accounts. Catalogue forms: crm/catalog/forms.py."""

from __future__ import annotations

from wtforms import (
    BooleanField,
    DateField,
    IntegerField,
    PasswordField,
    SearchField,
    SelectField,
    StringField,
)
from wtforms.validators import DataRequired, EqualTo, InputRequired, Length, NumberRange, Optional

from crm.auth.forms import email_field
from crm.auth.models import Role
from crm.auth.services import (
    DISPLAY_NAME_MAX,
    PASSWORD_HINT,
    PHONE_MAX,
    USERNAME_MAX,
)
from crm.auth.services import PASSWORD_MAX_LENGTH as PASSWORD_MAX
from crm.forms import Form as ChineseForm
from crm.forms import enum_coerce, select_choices
from crm.jobs.models import JobStatus


class UserFilterForm(ChineseForm):
    """The search bar of the user list; read from the query string."""

    class Meta:
        csrf = False

    q = SearchField("搜索", description="用户名或姓名", validators=[Optional(), Length(max=64)])
    role = SelectField(
        "角色", choices=select_choices([("", "全部角色"), *Role.choices()]), validators=[Optional()]
    )
    active = SelectField(
        "状态",
        choices=select_choices([("", "全部"), ("1", "启用"), ("0", "已停用")]),
        validators=[Optional()],
    )


class _UserFields(ChineseForm):
    display_name = StringField(
        "姓名",
        validators=[
            DataRequired("请填写姓名"),
            Length(max=DISPLAY_NAME_MAX, message=f"姓名不能超过 {DISPLAY_NAME_MAX} 个字"),
        ],
    )
    role = SelectField(
        "角色",
        choices=select_choices(Role.choices()),
        coerce=enum_coerce(Role),
        validators=[InputRequired("请选择角色")],
    )
    # Choices are loaded by the view from the active catalogue entries; 0 is "—".
    carrier_id = SelectField("载体", coerce=int, description="招商专员必填")
    cluster_id = SelectField("产业集群", coerce=int, description="产业专班必填")
    # A form posted without it (made before 部门 existed) means none, as "—" does.
    department_id = SelectField(
        "部门", coerce=int, description="部门用户必填", filters=[lambda value: value or 0]
    )
    phone = StringField(
        "电话",
        validators=[Length(max=PHONE_MAX, message=f"电话不能超过 {PHONE_MAX} 个字符")],
    )
    email = email_field("每日待办摘要和通知发到这里；留空则不发邮件")


class UserCreateForm(_UserFields):
    username = StringField(
        "用户名",
        description="登录用，英文字母、数字、下划线、点或连字符；创建后不能修改",
        validators=[
            DataRequired("请填写用户名"),
            Length(max=USERNAME_MAX, message=f"用户名不能超过 {USERNAME_MAX} 个字符"),
        ],
    )
    password = PasswordField(
        "密码",
        description=PASSWORD_HINT,
        validators=[
            DataRequired("请填写密码"),
            Length(max=PASSWORD_MAX, message=f"密码不能超过 {PASSWORD_MAX} 位"),
        ],
    )
    password_confirm = PasswordField(
        "确认密码",
        validators=[
            DataRequired("请再次输入密码"),
            EqualTo("password", message="两次输入的密码不一致"),
        ],
    )


class UserEditForm(_UserFields):
    is_active = BooleanField("账号启用", description="取消勾选即停用该账号，停用后不能登录")
    unlock = BooleanField(
        "解除登录锁定", description="连续输错密码被锁定的账号，勾选后立即可以登录"
    )
    password = PasswordField(
        "新密码",
        description=f"留空则不修改；用户下次登录时须改为自己的密码。{PASSWORD_HINT}",
        validators=[
            Optional(),
            Length(max=PASSWORD_MAX, message=f"密码不能超过 {PASSWORD_MAX} 位"),
        ],
    )
    password_confirm = PasswordField(
        "确认新密码",
        validators=[EqualTo("password", message="两次输入的密码不一致")],
    )


class AuditFilterForm(ChineseForm):
    """The search of the audit log (审计日志); read from the query string."""

    class Meta:
        csrf = False

    user = SearchField("用户", description="用户名或姓名", validators=[Optional(), Length(max=64)])
    action = SelectField("操作", validators=[Optional()])  # choices from the log itself
    object_type = SelectField("对象类型", validators=[Optional()])
    object_id = IntegerField(
        "对象编号", validators=[Optional(), NumberRange(min=1, max=2**31 - 1, message="编号无效")]
    )
    date_from = DateField("起始日期", validators=[Optional()])
    date_to = DateField("截止日期", validators=[Optional()])
    q = SearchField("摘要包含", validators=[Optional(), Length(max=200)])


class JobFilterForm(ChineseForm):
    """The status filter of the 后台任务 page; read from the query string."""

    class Meta:
        csrf = False

    status = SelectField(
        "状态",
        choices=select_choices([("", "全部状态"), *JobStatus.choices()]),
        validators=[Optional()],
    )
