"""Who may be a project's 责任人 (officer in charge): an active 招商专员 of the project's 载体 —
an officer of another 载体 could not even open it. Registration, editing and hand-over (流转)
ask this one rule."""

from __future__ import annotations

from crm.auth.models import Role, User
from crm.catalog.models import Carrier


def officer_in_charge_error(officer: User | None, carrier: Carrier | None) -> str | None:
    """Why `officer` may not be in charge of a project in `carrier`, or None."""
    if officer is None or officer.role is not Role.OFFICER or not officer.is_active:
        return "请选择在岗的招商专员作为责任人"
    if carrier is None or officer.carrier_id != carrier.id:
        return f"责任人须是{carrier.name if carrier else '项目所在载体'}的招商专员"
    return None
