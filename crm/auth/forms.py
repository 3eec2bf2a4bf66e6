from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length, Optional

from crm.auth.services import EMAIL_INVALID, EMAIL_MAX, PASSWORD_HINT, PASSWORD_MAX_LENGTH
from crm.forms import Form as ChineseForm
from crm.forms import strip

_TOO_LONG = f"密码不能超过 {PASSWORD_MAX_LENGTH} 位"


class LoginForm(ChineseForm):
    username = StringField("用户名", validators=[DataRequired("请输入用户名"), Length(max=64)])
    password = PasswordField(
        "密码", validators=[DataRequired("请输入密码"), Length(max=PASSWORD_MAX_LENGTH)]
    )
    remember = BooleanField("在此电脑上保持登录")


class LogoutForm(FlaskForm):
    pass


class ChangePasswordForm(ChineseForm):
    """修改密码: the current password, the new one twice."""

    current_password = PasswordField(
        "当前密码",
        validators=[
            DataRequired("请输入当前密码"),
            Length(max=PASSWORD_MAX_LENGTH, message=_TOO_LONG),
        ],
        render_kw={"autocomplete": "current-password"},
    )
    password = PasswordField(
        "新密码",
        description=PASSWORD_HINT,
        validators=[
            DataRequired("请输入新密码"),
            Length(max=PASSWORD_MAX_LENGTH, message=_TOO_LONG),
        ],
        render_kw={"autocomplete": "new-password"},
    )
    password_confirm = PasswordField(
        "确认新密码",
        validators=[
            DataRequired("请再次输入新密码"),
            EqualTo("password", message="两次输入的密码不一致"),
        ],
        render_kw={"autocomplete": "new-password"},
    )


def email_field(description: str) -> EmailField:
    """电子邮箱, optional: checked by WTForms' `Email` (the email-validator library), bounded;
    the service stores it normalised (crm/auth/services.py `normalize_email`)."""
    return EmailField(
        "电子邮箱",
        description=description,
        filters=[strip],
        validators=[
            Optional(),
            Length(max=EMAIL_MAX, message=f"电子邮箱不能超过 {EMAIL_MAX} 个字符"),
            Email(message=EMAIL_INVALID, check_deliverability=False),
        ],
        render_kw={"autocomplete": "email"},
    )


class OwnEmailForm(ChineseForm):
    """The user's own address (电子邮箱), for the daily digest and notifications."""

    email = email_field("每日待办摘要和通知发到这里；留空则不接收邮件")
