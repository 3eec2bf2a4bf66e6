"""Form messages come from WTForms' own Chinese catalog, with a few overrides (crm/forms.py)."""

from __future__ import annotations

from wtforms import DateField, IntegerField, StringField
from wtforms.validators import DataRequired, NumberRange

from crm.forms import Form


class _Sample(Form):
    class Meta:
        csrf = False

    name = StringField("名称", validators=[DataRequired()])
    count = IntegerField("数量", validators=[NumberRange(min=1)])
    on = DateField("日期")


def _errors(app, **data) -> dict[str, list[str]]:
    with app.test_request_context("/", method="POST", data=data):
        form = _Sample()
        form.validate()
        return form.errors


def test_a_message_without_an_override_is_the_wtforms_catalogs(app):
    errors = _errors(app, name="", count="x", on="2027-01-01")
    assert errors["name"] == ["该字段是必填字段。"]
    assert errors["count"][0] == "不是有效的整数。"


def test_the_overrides_say_what_to_type(app):
    errors = _errors(app, name="甲", count="0", on="2027-13-45")
    assert errors["on"] == ["请输入有效日期（年-月-日）"]
    # The catalog says "必须大于 1": 1 itself is allowed.
    assert errors["count"] == ["不能小于 1"]
