"""The cells of a ledger: read into typed values (text, numbers, dates), and values shown as
the preview shows them."""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from crm.companies.models import Origin
from crm.ledger.columns import (
    Column,
)
from crm.projects.stages import Stage, Status

MAX_MONEY = Decimal("100000000")  # 万元: as the project form
MAX_AREA = Decimal("1000000")
MAX_JOBS = 1000000


def cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return unicodedata.normalize("NFC", str(value)).strip()


def cell_decimal(value, places: str = "0.01") -> Decimal:
    """A number from a cell: a number, or text such as "1,234.5"; raises ValueError."""
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, (int, float)):
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    else:
        text = unicodedata.normalize("NFKC", str(value)).strip().replace(",", "").replace(" ", "")
        if not re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)", text):
            raise ValueError
        number = Decimal(text)
    if not number.is_finite():
        raise ValueError
    return number.quantize(Decimal(places))


DATE_TEXT = re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?$")


def cell_date(value) -> date:
    """A date from a cell: a date, or text such as 2026-03-01, 2026/3/1, 2026年3月1日."""
    text = unicodedata.normalize("NFKC", str(value)).strip()
    if "T" in text:
        text = text.split("T", 1)[0]
    match = DATE_TEXT.match(text)
    if not match:
        raise ValueError
    return date(int(match[1]), int(match[2]), int(match[3]))


BOOLEANS = {"是": True, "否": False, "true": True, "false": False, "1": True, "0": False, "": False}
STAGES = {s.label: s for s in Stage} | {s.name: s for s in Stage}
STATUSES = {s.label: s for s in Status} | {s.name: s for s in Status}
ORIGINS = {o.label: o for o in Origin} | {o.name: o for o in Origin}


SHOWN_CHARS = 80


def shown(value: Any) -> str:
    if value is None or value == "":
        return "（空）"
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, Decimal):
        return f"{value:,.2f}"
    if isinstance(value, date):
        return value.isoformat()
    text = str(value)
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "…"


def shown_cell(column: Column, value: Any) -> str:
    """A cell of the file (as read) as `shown` shows the same field of a project."""
    if value is None or value == "":
        return shown(None)
    try:
        if column.kind in ("money", "area"):
            return shown(cell_decimal(value))
        if column.kind == "int":
            return str(int(cell_decimal(value, "1")))
        if column.kind == "date":
            return cell_date(value).isoformat()
    except (ValueError, InvalidOperation):
        pass
    return shown(cell_text(value))


def differs(old, new) -> bool:
    if isinstance(old, Decimal) or isinstance(new, Decimal):
        old = None if old is None else Decimal(old).quantize(Decimal("0.01"))
        new = None if new is None else Decimal(new).quantize(Decimal("0.01"))
    if old in (None, "") and new in (None, ""):
        return False
    return old != new
