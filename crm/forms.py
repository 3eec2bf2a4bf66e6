"""The base form: WTForms' built-in messages in Chinese, and optional select fields."""

from __future__ import annotations

import enum
from collections.abc import Callable

from flask_wtf import FlaskForm
from wtforms import DecimalField as _DecimalField
from wtforms import SelectChoice, SelectField

# WTForms ships its own Chinese catalog (wtforms/locale/zh), used through `Meta.locales`;
# Flask-WTF would otherwise ask flask-babel for translations, hence `WTF_I18N_ENABLED = False`
# in config.py. Overridden here, each for the reason given, only what the catalog lacks or
# words unhelpfully. (The CSRF messages need none: Flask-WTF raises them untranslated, and
# CSRFProtect refuses a bad token before any form sees it, with the "页面已过期" page.)
_OVERRIDES = {
    # A format hint: the catalog's "不是有效的日期值" does not say how to write a date.
    "Not a valid date value.": "请输入有效日期（年-月-日）",
    # The catalog speaks of "小数" / "浮点数": an amount typed as "五千万" wants a number.
    "Not a valid decimal value.": "请输入数字",
    "Not a valid float value.": "请输入数字",
    # The catalog's "无法转化类型" is programmer's language; the user picked a bad option.
    "Invalid Choice: could not coerce.": "不是有效的选择。",
    "Invalid choice(s): one or more data inputs could not be coerced.": "不是有效的选择。",
    # The catalog says "必须大于 / 小于", but the bounds are allowed values.
    "Number must be at least %(min)s.": "不能小于 %(min)s",
    "Number must be at most %(max)s.": "不能大于 %(max)s",
}


class _Translations:
    """WTForms' Chinese catalog with the overrides above."""

    def __init__(self, catalog) -> None:
        self.catalog = catalog

    def gettext(self, string: str) -> str:
        return _OVERRIDES.get(string) or self.catalog.gettext(string)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self.catalog.ngettext(singular, plural, n)


class Form(FlaskForm):
    class Meta:
        locales = ("zh",)

        def get_translations(self, form):
            return _Translations(super().get_translations(form))


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
