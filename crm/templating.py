"""Jinja filters and globals: amounts, dates in Asia/Shanghai, labels, query-string links."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal

from flask import Flask, request, url_for

from crm.core import LOCAL_TZ
from crm.speedups import PLACEHOLDER, numbered, url_for_each


def money(value, unit: bool = True) -> str:
    """万元 amounts; 亿元 from 10,000 万元 on."""
    if value is None:
        return "—"
    value = Decimal(value)
    if abs(value) >= 10000:
        text = f"{value / 10000:,.2f}".rstrip("0").rstrip(".")
        return f"{text} 亿元" if unit else text
    text = f"{value:,.2f}".rstrip("0").rstrip(".")
    return f"{text} 万元" if unit else text


def yi(amount: Decimal | None) -> str:
    """万元 as 亿元, two decimals, without the unit (the page writes it): the dashboard's figures."""
    return f"{(amount or Decimal(0)) / 10000:,.2f}"


def number(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, Decimal):
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    return f"{value:,}"


def local_datetime(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if value is None:
        return "—"
    return value.astimezone(LOCAL_TZ).strftime(fmt)


def local_date(value: date | datetime | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return local_datetime(value, "%Y-%m-%d")
    return value.isoformat()


def url_with(**changes) -> str:
    """The current URL with some query arguments changed (None removes one)."""
    args = request.args.to_dict()
    for key, value in changes.items():
        if value is None:
            args.pop(key, None)
        else:
            args[key] = value
    return url_for(request.endpoint, **(request.view_args or {}), **args)


def url_with_each(name: str) -> Callable[[int], str]:
    """`url_with(name=n)` for many numbers `n` (the pages of a pager) at the cost of one
    (crm.speedups)."""
    return numbered(url_with(**{name: PLACEHOLDER}))


def init_app(app: Flask) -> None:
    app.jinja_env.filters.update(
        money=money, yi=yi, number=number, local_datetime=local_datetime, local_date=local_date
    )
    app.jinja_env.globals.update(
        url_with=url_with, url_for_each=url_for_each, url_with_each=url_with_each
    )
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True

    @app.context_processor
    def inject_rights():
        """`rights`: what the pages offer the signed-in user (crm/access.py decides)."""
        from flask_login import current_user

        from crm.access import page_rights

        return {"rights": page_rights(current_user)}
