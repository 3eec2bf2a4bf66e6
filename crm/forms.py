"""The base form: WTForms' built-in messages in Chinese, and optional select fields."""

from __future__ import annotations

import enum
from collections.abc import Callable

from flask_wtf import FlaskForm
from wtforms import DecimalField as _DecimalField
from wtforms import SelectChoice, SelectField

_MESSAGES = {
    "This field is required.": "此项必填",
    "Not a valid decimal value.": "请输入数字",
    "Not a valid float value.": "请输入数字",
    "Not a valid integer value.": "请输入整数",
    "Not a valid date value.": "请输入有效日期（年-月-日）",
    "Not a valid datetime value.": "请输入有效的日期时间",
    "Not a valid choice.": "请从列表中选择",
    "Not a valid choice": "请从列表中选择",
    "Invalid Choice: could not coerce.": "请从列表中选择",
    "Invalid choice(s): one or more data inputs could not be coerced.": "请从列表中选择",
    "'%(value)s' is not a valid choice for this field.": "请从列表中选择",
    "'%(value)s' are not valid choices for this field.": "请从列表中选择",
    "Choices cannot be None.": "请从列表中选择",
    "Invalid email address.": "电子邮箱格式不正确",
    "Number must be at least %(min)s.": "不能小于 %(min)s",
    "Number must be at most %(max)s.": "不能大于 %(max)s",
    "Number must be between %(min)s and %(max)s.": "应在 %(min)s 到 %(max)s 之间",
    "Field must be at least %(min)d character long.": "至少 %(min)d 个字符",
    "Field must be at least %(min)d characters long.": "至少 %(min)d 个字符",
    "Field cannot be longer than %(max)d character.": "不能超过 %(max)d 个字符",
    "Field cannot be longer than %(max)d characters.": "不能超过 %(max)d 个字符",
    "Field must be exactly %(max)d character long.": "应为 %(max)d 个字符",
    "Field must be exactly %(max)d characters long.": "应为 %(max)d 个字符",
    "Field must be between %(min)d and %(max)d characters long.": "应为 %(min)d 到 %(max)d 个字符",
    "The CSRF token is missing.": "页面已过期，请刷新后重试",
    "The CSRF token is invalid.": "页面已过期，请刷新后重试",
    "The CSRF token has expired.": "页面已过期，请刷新后重试",
    "The CSRF tokens do not match.": "页面已过期，请刷新后重试",
    "The CSRF session token is missing.": "页面已过期，请刷新后重试",
}


class _ChineseTranslations:
    def gettext(self, string: str) -> str:
        return _MESSAGES.get(string, string)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self.gettext(singular if n == 1 else plural)


class Form(FlaskForm):
    class Meta:
        def get_translations(self, form):
            return _ChineseTranslations()


class OptionalSelectField(SelectField):
    """A select whose first choice "—" (value 0) means none: data is None then."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("coerce", int)
        super().__init__(*args, **kwargs)

    def process_formdata(self, valuelist):
        super().process_formdata(valuelist)
        if self.data == 0:
            self.data = None

    def pre_validate(self, form):
        if self.data is not None:
            super().pre_validate(form)


class DecimalField(_DecimalField):
    """A decimal that is a real number: "NaN" and "Infinity" are not amounts."""

    def process_formdata(self, valuelist):
        super().process_formdata(valuelist)
        if self.data is not None and not self.data.is_finite():
            self.data = None
            raise ValueError(self.gettext("Not a valid decimal value."))


def strip(value):
    """Filter for text fields: surrounding spaces are never meaningful."""
    return value.strip() if isinstance(value, str) else value


def show_service_errors(form, exc) -> None:
    """Put a ServiceError's messages at the form's fields (or above the form)."""
    for name, message in exc.errors.items():
        field = getattr(form, name, None)
        if field is not None and hasattr(field, "errors"):
            field.errors = [*field.errors, message]
        else:
            form.form_errors.append(message)
    if exc.message and not exc.errors:
        form.form_errors.append(exc.message)


NONE_CHOICE = (0, "—")


def select_choices(pairs) -> list[SelectChoice]:
    """(value, label) pairs as WTForms choices (plain tuples are deprecated in WTForms 3.3)."""
    return [SelectChoice(value, label) for value, label in pairs]


def enum_coerce(enum_cls: type[enum.Enum]) -> Callable[[object], enum.Enum]:
    """A SelectField coerce for enums: accepts a member (from `obj=`) or a member's name."""

    def coerce(value: object) -> enum.Enum:
        if isinstance(value, enum_cls):
            return value
        try:
            return enum_cls[str(value)]
        except KeyError:
            raise ValueError(value) from None

    return coerce


def save_form(
    form, service, *, not_at_fields: type[Exception] | tuple[type[Exception], ...] = ()
) -> tuple[bool, object]:
    """Every form POST: validate `form`, run `service()` and flush, giving (True, its result);
    the request's edge commits it once the view has returned (crm/transaction.py: a commit
    that fails answers 409/503 instead of the view's response). Otherwise nothing is kept: bad
    input gives (False, None); a change a rule refused is rolled back at once (the page shows
    what is stored) and gives (False, the ServiceError), its messages put at the fields
    unless its type is one of `not_at_fields`, which the caller answers itself (a stale edit:
    409 and the saved values)."""
    from crm import transaction
    from crm.core import ServiceError
    from crm.extensions import db

    if not form.validate_on_submit():
        return False, None
    try:
        result = service()
        db.session.flush()
    except ServiceError as exc:
        transaction.discard()
        if not isinstance(exc, not_at_fields):
            show_service_errors(form, exc)
        return False, exc
    transaction.keep()
    return True, result


def save_button(service) -> tuple[bool, object]:
    """`save_form` for a button: a POST without fields (CSRFProtect has checked its token).
    A refusal is flashed as an error, for the caller to redirect or render the page."""
    from flask import flash

    from crm.core import ServiceError

    saved, outcome = save_form(Form(), service, not_at_fields=ServiceError)
    if not saved:
        flash(outcome.message, "error")
    return saved, outcome
