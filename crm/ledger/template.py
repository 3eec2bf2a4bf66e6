"""The import template: the ledger's headers, a sheet of allowed values with drop-down lists,
and a sheet of instructions."""

from __future__ import annotations

import sqlalchemy as sa
from xlsxwriter.utility import xl_range_abs
from xlsxwriter.worksheet import Worksheet

from crm.auth.models import Role, User
from crm.catalog.models import Carrier, Chain, Channel, Cluster
from crm.catalog.services import active_entries
from crm.companies.models import Origin
from crm.extensions import db
from crm.ledger.book import Book
from crm.ledger.columns import (
    COLUMNS,
)
from crm.projects.registration import INITIAL_STAGES
from crm.projects.stages import Status

TEMPLATE_ROWS = 1000  # rows of the template with the date formats
VALIDATED_ROWS = 5000  # rows of the template with the drop-down lists


def template_workbook(user: User) -> bytes:
    """The headers of the ledger, a sheet of allowed values and a sheet of instructions."""
    allowed = _allowed_values(user)
    book = Book()
    ws = _data_sheet(book)
    _values_sheet(book, ws, allowed)
    _notes_sheet(book)
    return book.close()


def _allowed_values(user: User) -> dict[str, list[str]]:
    """The values the import takes in the catalogue columns, by title of the values sheet."""
    carriers = (
        [user.carrier] if user.role is Role.OFFICER and user.carrier else active_entries(Carrier)
    )
    clusters, channels = active_entries(Cluster), active_entries(Channel)
    chains = db.session.execute(
        sa.select(Cluster.name, Chain.name)
        .join(Chain.cluster)
        .where(Chain.is_active.is_(True), Cluster.is_active.is_(True))
        .order_by(Cluster.sort_order, Cluster.id, Chain.sort_order, Chain.id)
    ).all()
    return {
        "载体": [c.name for c in carriers],
        "产业集群": [c.name for c in clusters],
        "招商渠道": [c.name for c in channels],
        "阶段": [s.label for s in INITIAL_STAGES],
        "企业来源地": [o.label for o in Origin],
        "重点项目": ["是", "否"],
        "状态（新项目）": [Status.ACTIVE.label],
        "产业链": [chain for _cluster, chain in chains],
        "产业链所属集群": [cluster for cluster, _chain in chains],
    }


def _data_sheet(book: Book) -> Worksheet:
    """The sheet to fill in: the headers, date formats on its first rows."""
    ws = book.sheet("项目台账", [column.width for column in COLUMNS])
    book.header(ws, COLUMNS)
    for col, column in enumerate(COLUMNS):
        if column.kind == "date":
            fmt = book.number_format(column.number_format)
            for row in range(1, TEMPLATE_ROWS + 1):
                ws.write_blank(row, col, None, fmt)
    ws.freeze_panes(1, 0)
    return ws


# Columns of the data sheet with a drop-down list, and the title of their allowed values.
DROP_DOWNS = (
    ("carrier", "载体"),
    ("cluster", "产业集群"),
    ("channel", "招商渠道"),
    ("stage", "阶段"),
    ("origin", "企业来源地"),
    ("is_key", "重点项目"),
)


def _values_sheet(book: Book, ws: Worksheet, allowed: dict[str, list[str]]) -> None:
    """The allowed values, and drop-down lists from them on the data sheet `ws`. As ever,
    Excel shows the list but takes any typed value (no error message shown): the import
    checks every cell."""
    values = book.sheet("可选值", [18] * len(allowed))
    for col, (title, items) in enumerate(allowed.items()):
        book.write(values, 0, col, title, book.bold)
        for row, item in enumerate(items, 1):
            book.write(values, row, col, item)
    titles = list(allowed)
    keys = [column.key for column in COLUMNS]
    for key, title in DROP_DOWNS:
        source = titles.index(title)
        target = keys.index(key)
        ws.data_validation(
            1,
            target,
            VALIDATED_ROWS,
            target,
            {
                "validate": "list",
                "source": f"='可选值'!{xl_range_abs(1, source, len(allowed[title]), source)}",
                "ignore_blank": True,
                "show_error": False,
                "error_title": "取值无效",
                "error_message": "请从下拉列表中选择",
            },
        )


IMPORT_RULES = (
    "先预览：每行的问题（行号、列、原因）都会列出，确认后才写入，全部成功或全部不写入。",
    "同一文件重复导入不会重复登记：按项目编号，或按统一社会信用代码（无代码时按企业名称）加项目名称匹配已有项目。",
    "从系统导出的台账带有“数据版本”列：导出后在系统中被修改过的项目显示为冲突（导出时、现在、文件中三个值），逐行勾选后才会更新。",
    "新项目只能导入为谋划或招引阶段；签约须经评估通过并上传投资协议，在项目页面逐级推进。",
)


def _notes_sheet(book: Book) -> None:
    """The instructions: what each column takes, then the rules of the import."""
    notes = book.sheet("填写说明", [22, 80])
    rows = [("列", "说明")]
    for column in COLUMNS:
        text = "必填。" if column.required else ""
        text += column.note
        if not column.imported:
            text = column.note or "系统数据（灰色表头），导入时忽略。"
        elif column.kind == "money":
            text += "数字，单位万元。"
        elif column.kind == "date":
            text += "日期，如 2026-03-01。"
        rows.append((column.header, text))
    rows.append(("", ""))
    rows += [("导入规则" if i == 0 else "", rule) for i, rule in enumerate(IMPORT_RULES)]
    for row, (label, text) in enumerate(rows):
        book.write(notes, row, 0, label)
        book.write(notes, row, 1, text)
