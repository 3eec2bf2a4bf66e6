"""Forms for the catalogues, one per kind; field names match the model and the service."""

from __future__ import annotations

from wtforms import BooleanField, IntegerField, SelectField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from crm.catalog.models import (
    Carrier,
    CatalogEntry,
    Chain,
    Channel,
    Cluster,
    ClusterCategory,
    Department,
    TerminationReason,
)
from crm.catalog.services import LEADING_INDUSTRY_MAX, NAME_MAX, SHORT_NAME_MAX, SORT_ORDER_MAX
from crm.forms import NONE_CHOICE, enum_coerce, select_choices
from crm.forms import Form as ChineseForm


def optional_id(value: int | None) -> int | None:
    """The value of an optional select with coerce=int: 0 ("—") means none."""
    return value or None


__all__ = ["FORMS", "NONE_CHOICE", "optional_id", "select_choices"]


class CatalogEntryForm(ChineseForm):
    name = StringField(
        "名称",
        validators=[
            DataRequired("请填写名称"),
            Length(max=NAME_MAX, message=f"名称不能超过 {NAME_MAX} 个字"),
        ],
    )
    sort_order = IntegerField(
        "排序",
        default=0,
        description="数字小的排在前面",
        validators=[
            Optional(),
            NumberRange(0, SORT_ORDER_MAX, message=f"排序须在 0 到 {SORT_ORDER_MAX} 之间"),
        ],
    )
    is_active = BooleanField("启用", default=True, description="停用后不再出现在选择列表中")


class CarrierForm(CatalogEntryForm):
    leading_industry = StringField(
        "主导产业",
        validators=[
            Length(
                max=LEADING_INDUSTRY_MAX,
                message=f"主导产业不能超过 {LEADING_INDUSTRY_MAX} 个字",
            )
        ],
    )


class DepartmentForm(CatalogEntryForm):
    short_name = StringField(
        "简称",
        description="选填，如“自然资源规划局”",
        validators=[
            Length(max=SHORT_NAME_MAX, message=f"简称不能超过 {SHORT_NAME_MAX} 个字"),
        ],
    )


class ClusterForm(CatalogEntryForm):
    category = SelectField(
        "产业类别",
        choices=select_choices(ClusterCategory.choices()),
        coerce=enum_coerce(ClusterCategory),
        validators=[InputRequired("请选择产业类别")],
    )


class ChainForm(CatalogEntryForm):
    cluster_id = SelectField(
        "所属产业集群", coerce=int, validators=[DataRequired("请选择所属产业集群")]
    )


FORMS: dict[type[CatalogEntry], type[CatalogEntryForm]] = {
    Carrier: CarrierForm,
    Cluster: ClusterForm,
    Chain: ChainForm,
    Channel: CatalogEntryForm,
    TerminationReason: CatalogEntryForm,
    Department: DepartmentForm,
}
