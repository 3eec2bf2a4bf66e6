"""The project ledger (项目台账) in Excel: the filtered project list out, projects in.

Export: one row per project with the fields of the list and the project page, amounts as
numbers in 万元, dates as dates, a frozen header with filters; a second sheet says which
filter, when (Asia/Shanghai) and who. Text is always written as text, never as a formula.
The export and the import template are written with XlsxWriter, in memory (`_Book`: each
format made once per workbook); uploads are read with openpyxl.

Import, in two steps: `read_workbook` reads an upload into plain rows (kept server-side as
JSON under a random token), `plan_import` checks every row against the catalogues, the
permissions and the lifecycle and says what it would do (create / update / unchanged) or what
is wrong (row, column, message); nothing is written until `apply_import` runs the plan, all
rows or none, in bulk statements (no per-row commits). A project is matched by its 项目编号,
or by 统一社会信用代码 (the company's name when it has none) plus project name, so importing
the same file twice changes nothing the second time.
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import time as time_module
import unicodedata
import zipfile
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import xlsxwriter
from openpyxl import load_workbook
from sqlalchemy.orm import joinedload
from xlsxwriter.format import Format
from xlsxwriter.utility import xl_range_abs
from xlsxwriter.worksheet import Worksheet

from crm.access import project_scope
from crm.audit.models import AuditEntry
from crm.audit.services import changes_of, record
from crm.auth.models import Role, User
from crm.catalog.models import Carrier, Chain, Channel, Cluster
from crm.companies.credit_code import credit_code_error, normalize
from crm.companies.models import Company, Origin
from crm.companies.services import name_key
from crm.core import LOCAL_TZ, ConflictError, ServiceError, utcnow
from crm.extensions import db
from crm.ledger.columns import (
    BY_KEY,
    COLUMNS,
    HEADERS,
    INT_FORMAT,
    Column,
    header,
    header_key,
)
from crm.projects.conflicts import COURTING_STATUSES
from crm.projects.filters import ProjectFilter
from crm.projects.listing import project_list_query
from crm.projects.models import (
    ConflictBasis,
    FundsRecord,
    Project,
    ProjectConflict,
    StageChange,
)
from crm.projects.search import search_text
from crm.projects.services import INITIAL_STAGES, planned_date_errors
from crm.projects.stages import STAGE_REQUIRED_FIELDS, Stage, Status

MAX_ROWS = 20000
# An upload is refused before it is parsed beyond these (a legitimate 20,000-row ledger
# expands to about 30 MB, at 10–25 : 1; a decompression bomb to far more, at up to 1000 : 1).
MAX_SHEET_ROWS = MAX_ROWS + 1000  # rows read, empty ones included (a template has 1,000)
MAX_COLUMNS = 100  # cells read per row
MAX_PARTS = 200
MAX_PART = 100 * 2**20  # bytes of one part, decompressed
MAX_UNCOMPRESSED = 200 * 2**20  # bytes of the whole file, decompressed
MAX_RATIO = 200  # decompressed : compressed, of a part above 1 MB
MAX_SHARED_STRINGS = 20 * MAX_ROWS
SNAPSHOT_SHEET = "导出时的值"  # the export's very hidden copy of what each row was
MAX_MONEY = Decimal("100000000")  # 万元: as the project form
MAX_AREA = Decimal("1000000")
MAX_JOBS = 1000000
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CONTROL_ESCAPE = re.compile(r"_x(00[01][0-9A-Fa-f])_")  # OOXML's escape of U+0000–U+001F
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
TOKEN_MAX_AGE = timedelta(hours=2)
XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

HEADER_FILL = "#DCE6F1"  # columns the import reads
READ_ONLY_FILL = "#EDEDED"  # system data, ignored by the import
TEMPLATE_ROWS = 1000  # rows of the template with the date formats
VALIDATED_ROWS = 5000  # rows of the template with the drop-down lists
WORKBOOK_OPTIONS = {
    "in_memory": True,  # no temporary file anywhere
    "strings_to_numbers": False,  # text stays text, whatever it looks like
    "strings_to_formulas": False,
    "strings_to_urls": False,
}


# Writing a workbook ------------------------------------------------------------------------


class _Book:
    """An .xlsx written in memory with XlsxWriter, each of its formats made once.

    `lockable`: every cell it writes is unlocked unless written in `locked`, so that a sheet
    it then protects (`protect`) refuses edits to the locked cells only."""

    def __init__(self, lockable: bool = False) -> None:
        self._out = io.BytesIO()
        self.wb = xlsxwriter.Workbook(self._out, WORKBOOK_OPTIONS)
        self._base = {"locked": False} if lockable else {}
        self.bold = self._format({"bold": True})
        self.plain = self._format({}) if lockable else None
        self.locked = self.wb.add_format({"locked": True, "num_format": INT_FORMAT})
        self._quoted = self._format({"quote_prefix": True})
        self._headers = {
            imported: self._format({"bold": True, "pattern": 1, "bg_color": fill})
            for imported, fill in ((True, HEADER_FILL), (False, READ_ONLY_FILL))
        }
        self._numbers: dict[str, Format] = {}

    def _format(self, properties: dict) -> Format:
        return self.wb.add_format({**properties, **self._base})

    @staticmethod
    def protect(ws: Worksheet) -> None:
        """Protect `ws` (no password: a guard against slips, not a secret) leaving everything
        but locked cells editable, and filtering, sorting and row edits allowed."""
        ws.protect(
            "",
            {
                "autofilter": True,
                "sort": True,
                "format_cells": True,
                "format_columns": True,
                "format_rows": True,
                "insert_rows": True,
                "delete_rows": True,
            },
        )

    def sheet(
        self, name: str, widths: Iterable[int], formats: Iterable[Format | None] = ()
    ) -> Worksheet:
        """A sheet with its column widths, and the formats of its columns' empty cells."""
        ws = self.wb.add_worksheet(name)
        formats = list(formats)
        for col, width in enumerate(widths):
            # `width` × 7 px is stored as `width` itself, as openpyxl wrote it (XlsxWriter's
            # set_column would add Excel's 5 px of padding to every column).
            fmt = formats[col] if col < len(formats) else self.plain
            ws.set_column_pixels(col, col, width * 7, fmt)
        return ws

    def number_format(self, num_format: str | None) -> Format | None:
        if num_format is None:
            return self.plain
        if num_format not in self._numbers:
            self._numbers[num_format] = self._format({"num_format": num_format})
        return self._numbers[num_format]

    def header(self, ws: Worksheet, columns: list[Column]) -> None:
        """The header row: bold, blue where the import reads the column, grey where not."""
        for col, column in enumerate(columns):
            ws.write_string(0, col, column.header, self._headers[column.imported])

    def write(
        self, ws: Worksheet, row: int, col: int, value: Any, fmt: Format | None = None
    ) -> None:
        """`value` into a cell in `fmt` (its column's format); None and "" stay blank.

        Text is always text: one starting like a formula (= + - @ tab CR) gets the quote
        prefix; its line ends are line feeds (a CR was always read back as one, and XlsxWriter
        would write it as "_x000D_", which openpyxl, and so the import, reads literally).
        Decimals are numbers, dates dates, datetimes Beijing time to the minute.
        """
        if value is None or value == "":
            return
        if isinstance(value, str):
            if value.startswith(FORMULA_START):
                fmt = self._quoted
            if "\r" in value:
                value = value.replace("\r\n", "\n").replace("\r", "\n")
            ws.write_string(row, col, value, fmt)
        elif isinstance(value, datetime):
            local = value.astimezone(LOCAL_TZ).replace(tzinfo=None, second=0, microsecond=0)
            ws.write_datetime(row, col, local, fmt)
        elif isinstance(value, date):
            ws.write_datetime(row, col, value, fmt)
        elif isinstance(value, bool):
            ws.write_boolean(row, col, value, fmt)
        else:
            ws.write_number(row, col, float(value) if isinstance(value, Decimal) else value, fmt)

    def close(self) -> bytes:
        self.wb.close()
        return self._out.getvalue()


# Export ------------------------------------------------------------------------------------


def export_projects(user: User, f: ProjectFilter, today: date, stale_days: int) -> list[Project]:
    """The projects of the list, every page, with what the ledger shows loaded."""
    query = project_list_query(user, f, today, stale_days).options(
        joinedload(Project.chain), joinedload(Project.channel)
    )
    return list(db.session.scalars(query).unique())


def _funds_totals(ids: list[int]) -> dict[int, Decimal]:
    totals: dict[int, Decimal] = {}
    for chunk in _chunks(ids, 5000):
        rows = db.session.execute(
            sa.select(FundsRecord.project_id, sa.func.sum(FundsRecord.amount))
            .where(FundsRecord.project_id.in_(chunk))
            .group_by(FundsRecord.project_id)
        ).all()
        totals.update({pid: Decimal(str(total)) for pid, total in rows})
    return totals


def _current_verifications(ids: list[int]) -> dict[int, str]:
    """The verification of the move that brought each project into its current stage."""
    latest = (
        sa.select(StageChange.project_id, sa.func.max(StageChange.id).label("id"))
        .where(StageChange.project_id.in_(sa.bindparam("ids", expanding=True)))
        .group_by(StageChange.project_id)
        .subquery()
    )
    found: dict[int, str] = {}
    for chunk in _chunks(ids, 5000):
        rows = db.session.execute(
            sa.select(StageChange.project_id, StageChange.verification).join(
                latest, latest.c.id == StageChange.id
            ),
            {"ids": chunk},
        ).all()
        found.update({pid: v.label for pid, v in rows if v is not None})
    return found


def _chunks(items: list, size: int) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _row_values(project: Project, funds: dict[int, Decimal], checks: dict[int, str]) -> dict:
    status_reason = project.status_reason
    if project.lost_to:
        status_reason = f"{status_reason}（流向：{project.lost_to}）"
    return {
        "id": project.id,
        "version": project.version,
        "name": project.name,
        "company_name": project.company.name,
        "credit_code": project.company.credit_code or "",
        "origin": project.company.origin.label,
        "carrier": project.carrier.name,
        "cluster": project.cluster.name,
        "chain": project.chain.name if project.chain else "",
        "channel": project.channel.name,
        "officer": project.officer.display_name,
        "is_key": "是" if project.is_key else "否",
        "stage": project.stage.label,
        "status": project.status.label,
        "status_reason": status_reason,
        "verification": checks.get(project.id, ""),
        "total_investment": project.total_investment,
        "fixed_asset_investment": project.fixed_asset_investment,
        "land_area": project.land_area,
        "expected_output": project.expected_output,
        "expected_tax": project.expected_tax,
        "expected_jobs": project.expected_jobs,
        "planned_signed_on": project.planned_signed_on,
        "signed_on": project.signed_on,
        "signed_amount": project.signed_amount,
        "planned_started_on": project.planned_started_on,
        "started_on": project.started_on,
        "planned_producing_on": project.planned_producing_on,
        "producing_on": project.producing_on,
        "funds_total": funds.get(project.id),
        "last_followup_on": project.last_followup_on,
        "next_action": project.next_action,
        "next_action_due": project.next_action_due,
        "description": project.description,
        "created_at": project.created_at,
        "updated_at": project.updated_at,
    }


def describe_filter(f: ProjectFilter) -> list[tuple[str, str]]:
    """The filter in words, for the export's second sheet."""
    names = []
    for label, model, value in (
        ("载体", Carrier, f.carrier_id),
        ("产业集群", Cluster, f.cluster_id),
        ("招商渠道", Channel, f.channel_id),
        ("责任人", User, f.officer_id),
    ):
        if value is not None:
            row = db.session.get(model, value)
            names.append((label, str(row) if row else f"（编号 {value}）"))
    rows = []
    if f.q:
        rows.append(("搜索", f.q))
    if f.stage:
        rows.append(("阶段", f.stage.label))
    if f.status:
        rows.append(("状态", f.status.label))
    rows += names
    if f.is_key:
        rows.append(("重点项目", "仅重点项目"))
    if f.stale:
        rows.append(("久未跟踪", "仅久未跟踪"))
    rows += [("附加条件", label) for label in f.advanced_labels()]
    return rows or [("筛选条件", "无（可见范围内的全部项目）")]


def export_workbook(
    user: User, f: ProjectFilter, today: date, stale_days: int, now: datetime | None = None
) -> tuple[bytes, int]:
    """The ledger as .xlsx bytes, and the number of projects in it. Audited."""
    now = now or utcnow()
    projects = export_projects(user, f, today, stale_days)
    ids = [p.id for p in projects]
    funds, checks = _funds_totals(ids), _current_verifications(ids)

    # The 数据版本 column says what each row was; locked (the sheet protected, every other
    # cell editable), and the values of the imported columns as exported are kept in a very
    # hidden sheet, so an import can show a conflict's three values.
    book = _Book(lockable=True)
    formats = [
        book.locked if column.key == "version" else book.number_format(column.number_format)
        for column in COLUMNS
    ]
    ws = book.sheet("项目台账", [column.width for column in COLUMNS], formats)
    ws.freeze_panes(1, 0)
    book.header(ws, COLUMNS)
    info = book.sheet("导出信息", [14, 60])
    kept = [c for c in COLUMNS if c.imported or c.key == "version"]
    snapshot = book.sheet(SNAPSHOT_SHEET, [c.width for c in kept])
    book.header(snapshot, kept)
    kept_formats = [(c.key, book.number_format(c.number_format)) for c in kept]
    cells = [(column.key, fmt) for column, fmt in zip(COLUMNS, formats, strict=True)]
    write = book.write
    for row, project in enumerate(projects, 1):
        values = _row_values(project, funds, checks)
        for col, (key, fmt) in enumerate(cells):
            write(ws, row, col, values[key], fmt)
        for col, (key, fmt) in enumerate(kept_formats):
            write(snapshot, row, col, values[key], fmt)
    ws.autofilter(0, 0, len(projects), len(COLUMNS) - 1)
    book.protect(ws)
    book.protect(snapshot)
    snapshot.very_hidden()

    local = now.astimezone(LOCAL_TZ)
    rows = [
        ("导出时间", local.strftime("%Y-%m-%d %H:%M:%S") + "（北京时间）"),
        ("导出人", f"{user.display_name}（{user.username}，{user.role.label}）"),
        ("数据范围", user.scope_label),
        ("项目数", str(len(projects))),
        *describe_filter(f),
        ("说明", "金额单位为万元；灰色表头的列为系统数据，导入时忽略。"),
        (
            "数据版本",
            "“数据版本”列记录导出时每个项目的版本（已锁定，请勿修改）。再次导入时，导出后在系统中"
            "被他人修改过的项目显示为冲突（导出时 / 现在 / 文件中三个值），逐行勾选后才会更新。"
            "工作表保护没有密码：需要删除行时，可在“审阅”中撤销工作表保护。",
        ),
    ]
    for row, (label, value) in enumerate(rows):
        write(info, row, 0, label)
        write(info, row, 1, value)

    data = book.close()
    record(
        user,
        "ledger_exported",
        summary=f"导出项目台账 {len(projects)} 个项目",
        changes={"filter": f.to_args(), "rows": len(projects)},
        object_type="ledger",
    )
    return data, len(projects)


def export_filename(now: datetime) -> str:
    return f"项目台账-{now.astimezone(LOCAL_TZ):%Y%m%d-%H%M}.xlsx"


# The import template -----------------------------------------------------------------------


def _active(model) -> list:
    return list(
        db.session.scalars(
            sa.select(model).where(model.is_active.is_(True)).order_by(model.sort_order, model.id)
        )
    )


def template_workbook(user: User) -> bytes:
    """The headers of the ledger, a sheet of allowed values and a sheet of instructions."""
    carriers = [user.carrier] if user.role is Role.OFFICER and user.carrier else _active(Carrier)
    clusters, channels = _active(Cluster), _active(Channel)
    chains = db.session.execute(
        sa.select(Cluster.name, Chain.name)
        .join(Chain.cluster)
        .where(Chain.is_active.is_(True), Cluster.is_active.is_(True))
        .order_by(Cluster.sort_order, Cluster.id, Chain.sort_order, Chain.id)
    ).all()
    allowed = {
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

    book = _Book()
    ws = book.sheet("项目台账", [column.width for column in COLUMNS])
    book.header(ws, COLUMNS)
    for col, column in enumerate(COLUMNS):
        if column.kind == "date":
            fmt = book.number_format(column.number_format)
            for row in range(1, TEMPLATE_ROWS + 1):
                ws.write_blank(row, col, None, fmt)
    ws.freeze_panes(1, 0)

    values = book.sheet("可选值", [18] * len(allowed))
    for col, (title, items) in enumerate(allowed.items()):
        book.write(values, 0, col, title, book.bold)
        for row, item in enumerate(items, 1):
            book.write(values, row, col, item)
    # Drop-down lists on the data sheet, from the allowed values. As ever, Excel shows the
    # list but takes any typed value (no error message shown): the import checks every cell.
    titles = list(allowed)
    keys = [column.key for column in COLUMNS]
    for key, title in (
        ("carrier", "载体"),
        ("cluster", "产业集群"),
        ("channel", "招商渠道"),
        ("stage", "阶段"),
        ("origin", "企业来源地"),
        ("is_key", "重点项目"),
    ):
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
    rows += [
        ("", ""),
        (
            "导入规则",
            "先预览：每行的问题（行号、列、原因）都会列出，确认后才写入，全部成功或全部不写入。",
        ),
        (
            "",
            "同一文件重复导入不会重复登记：按项目编号，或按统一社会信用代码（无代码时按企业名称）加项目名称匹配已有项目。",
        ),
        (
            "",
            "从系统导出的台账带有“数据版本”列：导出后在系统中被修改过的项目显示为冲突（导出时、现在、文件中三个值），逐行勾选后才会更新。",
        ),
        (
            "",
            "新项目只能导入为谋划或招引阶段；签约须经评估通过并上传投资协议，在项目页面逐级推进。",
        ),
    ]
    for row, (label, text) in enumerate(rows):
        book.write(notes, row, 0, label)
        book.write(notes, row, 1, text)
    return book.close()


# Reading an upload --------------------------------------------------------------------------


@dataclass
class RawRow:
    """One data row of an upload, as plain JSON values keyed by column key."""

    row: int
    cells: dict[str, Any]
    formulas: list[str] = field(default_factory=list)
    exported: dict[str, Any] | None = None  # the row as exported, from the export's hidden sheet


def _plain(value) -> Any:
    if isinstance(value, datetime):
        return (
            value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
        )
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    # Excel writes a carriage return and the other control characters as `_x000D_` …, which
    # openpyxl leaves as they are (it only turns the escaped underscore `_x005F_` back into
    # `_`, so a typed `_x000D_` now looks the same: rare enough to read as a line break).
    return CONTROL_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), str(value))


class WorkbookTooLarge(ServiceError):
    """An upload beyond the limits of a ledger (413): refused before it is parsed."""


def _check_archive(stream) -> None:
    """Refuse a zip whose parts would expand beyond a ledger's size, before openpyxl opens it.

    The declared sizes are what zipfile will decompress at most (it stops at the declared size
    and then fails the CRC), so they bound the work; a high compression ratio on a large part
    and a flood of shared strings (each a Python string openpyxl keeps for the whole read) are
    the marks of a decompression bomb, counted while streaming, a few MB at a time."""
    try:
        archive = zipfile.ZipFile(stream)
        parts = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ServiceError("无法读取该文件：请上传由本系统导出或从模板填写的 .xlsx 文件") from exc
    too_large = WorkbookTooLarge(
        f"文件解压后超过 {MAX_UNCOMPRESSED // 2**20} MB，不是正常的台账：请删除多余的行、列和工作表，"
        "或拆分为多个文件后再导入"
    )
    if len(parts) > MAX_PARTS or sum(p.file_size for p in parts) > MAX_UNCOMPRESSED:
        raise too_large
    for part in parts:
        if part.file_size > MAX_PART:
            raise too_large
        if part.file_size > 2**20 and part.file_size > MAX_RATIO * max(part.compress_size, 1):
            raise WorkbookTooLarge(
                "文件的压缩比异常（疑似压缩炸弹），已拒绝：请从本系统导出或从模板填写后再上传"
            )
    strings = next((p for p in parts if p.filename.lower().endswith("sharedstrings.xml")), None)
    if strings is not None:
        count, tail = 0, b""
        try:
            with archive.open(strings) as fh:
                while chunk := fh.read(2**22):
                    data = tail + chunk
                    count += data.count(b"<si>") + data.count(b"<si ")
                    tail = data[-3:]
                    if count > MAX_SHARED_STRINGS:
                        raise WorkbookTooLarge(
                            f"文件中的文字超过 {MAX_SHARED_STRINGS} 条，不是正常的台账："
                            "请拆分为多个文件后再导入"
                        )
        except (zipfile.BadZipFile, OSError, EOFError) as exc:  # damaged or lying part
            raise ServiceError("文件内容无法读取，请重新导出或从模板填写后再上传") from exc


def read_workbook(stream) -> list[RawRow]:
    """The data rows of the first sheet whose header row names the ledger's columns, each with
    the values it had when exported (from the export's hidden sheet), when the file has them.

    Checked before it is parsed (`_check_archive`), read row by row up to the limits: call it
    before the request touches the database (on SQLite a POST holds the write lock from its
    first statement until it ends)."""
    _check_archive(stream)
    stream.seek(0)
    try:
        wb = load_workbook(stream, read_only=True, data_only=False)
    except Exception as exc:  # any unreadable file is the user's to fix
        raise ServiceError("无法读取该文件：请上传由本系统导出或从模板填写的 .xlsx 文件") from exc
    try:
        rows = _read_rows(wb.worksheets[0], required=True)
        if not rows:
            raise ServiceError("文件中没有数据行")
        if SNAPSHOT_SHEET in wb.sheetnames:
            exported = {
                str(r.cells["id"]): r.cells
                for r in _read_rows(wb[SNAPSHOT_SHEET], required=False)
                if "id" in r.cells
            }
            for row in rows:
                row.exported = exported.get(str(row.cells.get("id")))
        return rows
    except ServiceError:
        raise
    except Exception as exc:  # a damaged sheet inside a readable file
        raise ServiceError("文件内容无法读取，请重新导出或从模板填写后再上传") from exc
    finally:
        wb.close()


def _read_rows(ws, required: bool) -> list[RawRow]:
    """The non-empty rows under the header; every row counts toward the limit of rows read,
    empty or not, and no row is read past it."""
    ws.reset_dimensions()  # some writers record wrong dimensions; read every row
    rows = ws.iter_rows(max_col=MAX_COLUMNS)
    try:
        first = next(rows)
    except StopIteration:
        raise ServiceError("文件是空的") from None
    columns: dict[int, str] = {}
    for i, cell in enumerate(first):
        column = HEADERS.get(header_key(cell.value)) if cell.value is not None else None
        if column is not None and column.key not in columns.values():
            columns[i] = column.key
    missing = [c.header for c in COLUMNS if c.required and c.key not in columns.values()]
    if required and missing:
        raise ServiceError(
            "表头缺少必填列：" + "、".join(missing) + "。请使用“下载导入模板”得到的表头"
        )
    out = []
    for counted, row in enumerate(rows, 2):
        if counted > MAX_SHEET_ROWS + 1:
            raise WorkbookTooLarge(
                f"工作表超过 {MAX_SHEET_ROWS} 行（含空行）：请删除多余的空行，"
                f"或拆分为多个文件（每个最多 {MAX_ROWS} 行）后再导入"
            )
        number = next((c.row for c in row if getattr(c, "row", None)), counted)
        cells, formulas = {}, []
        for i, cell in enumerate(row):
            key = columns.get(i)
            if key is None or cell.value is None:
                continue
            if cell.data_type == "f":
                formulas.append(key)
            value = _plain(cell.value)
            if isinstance(value, str) and not value.strip():
                continue
            cells[key] = value
        if not cells:
            continue
        out.append(RawRow(number, cells, formulas))
        if len(out) > MAX_ROWS:
            raise WorkbookTooLarge(f"一次最多导入 {MAX_ROWS} 行，请拆分文件")
    return out


# Keeping an upload between preview and confirmation ---------------------------------------


def save_upload(folder: Path, user_id: int, filename: str, rows: list[RawRow]) -> str:
    """Keep the parsed rows for the user `user_id` under a random token; old uploads are
    removed. Touches no database (the upload is read outside any transaction)."""
    folder.mkdir(parents=True, exist_ok=True)
    _remove_old(folder)
    token = secrets.token_urlsafe(24)
    payload = {
        "user_id": user_id,
        "filename": filename[:200],
        "saved_at": utcnow().isoformat(),
        "rows": [
            {"row": r.row, "cells": r.cells, "formulas": r.formulas, "exported": r.exported}
            for r in rows
        ],
    }
    path = folder / f"{token}.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(payload, fh, ensure_ascii=False)
    return token


def load_upload(folder: Path, user: User, token: str) -> tuple[str, list[RawRow]] | None:
    """The rows kept under `token`, if they are `user`'s and not expired."""
    if not TOKEN_PATTERN.match(token or ""):
        return None
    path = folder / f"{token}.json"
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    saved = datetime.fromisoformat(payload.get("saved_at", "2000-01-01T00:00:00+00:00"))
    if payload.get("user_id") != user.id or utcnow() - saved > TOKEN_MAX_AGE:
        return None
    rows = [
        RawRow(r["row"], r["cells"], r.get("formulas", []), r.get("exported"))
        for r in payload["rows"]
    ]
    return payload.get("filename", ""), rows


def discard_upload(folder: Path, token: str) -> None:
    if TOKEN_PATTERN.match(token or ""):
        (folder / f"{token}.json").unlink(missing_ok=True)


def _remove_old(folder: Path) -> None:
    limit = time_module.time() - TOKEN_MAX_AGE.total_seconds()
    for path in folder.glob("*.json"):
        try:
            if path.stat().st_mtime < limit:
                path.unlink()
        except OSError:
            continue


# Checking the rows -------------------------------------------------------------------------


@dataclass
class RowPlan:
    """What one row of an upload would do. `action`: create, update, unchanged, or conflict
    (an update of a project changed in the app since the file was exported: not applied
    unless the user chooses it)."""

    row: int
    action: str = ""  # create, update, unchanged; "" when the row has errors
    name: str = ""
    company_name: str = ""
    carrier_name: str = ""
    stage: Stage | None = None
    errors: list[tuple[str, str]] = field(default_factory=list)  # (column, message)
    warnings: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)  # project fields
    project: Project | None = None  # the matched project
    company: Company | None = None  # the existing company
    new_company: dict[str, Any] | None = None  # or the company to create
    courting: list[tuple[Project, ConflictBasis]] = field(default_factory=list)
    changes: dict[str, list[Any]] = field(default_factory=dict)
    cells: list[CellChange] = field(default_factory=list)  # what the preview shows changing
    exported_version: int | None = None  # the 数据版本 of the row, when it has one

    def error(self, key: str, message: str) -> None:
        self.errors.append((header(key), message))

    @property
    def changed_headers(self) -> list[str]:
        keys = [k.removesuffix("_id") for k in self.changes]
        return [BY_KEY[k].header for k in keys if k in BY_KEY]

    @property
    def action_label(self) -> str:
        return {
            "create": "新建",
            "update": "更新",
            "conflict": "冲突",
            "unchanged": "无变化",
        }.get(self.action, "有误")

    @property
    def choice(self) -> str:
        """The value of the checkbox that applies this conflicting row anyway: the row and the
        version it was seen at, so a project changed again after the preview stays as it is."""
        return f"{self.row}:{self.project.version}" if self.project is not None else ""


@dataclass(frozen=True)
class CellChange:
    """One cell an import would change, as the preview shows it: the value in the app now,
    the one in the file and, for a conflict, the one exported (None: not in the file)."""

    header: str
    old: str
    new: str
    exported: str | None = None


@dataclass
class ImportPlan:
    rows: list[RowPlan]

    @property
    def errors(self) -> list[tuple[int, str, str]]:
        return [(r.row, column, message) for r in self.rows for column, message in r.errors]

    @property
    def warnings(self) -> list[tuple[int, str]]:
        return [(r.row, w) for r in self.rows for w in r.warnings]

    @property
    def ok(self) -> bool:
        return not any(r.errors for r in self.rows)

    def count(self, action: str) -> int:
        return sum(r.action == action for r in self.rows)

    @property
    def new_companies(self) -> int:
        return len(
            {
                _company_identity(r.new_company)
                for r in self.rows
                if r.new_company and r.action == "create"
            }
        )


def _company_identity(values: dict[str, Any]) -> tuple[str, str]:
    return (
        ("code", values["credit_code"])
        if values.get("credit_code")
        else (
            "name",
            values["name"],
        )
    )


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return unicodedata.normalize("NFC", str(value)).strip()


def _decimal(value, places: str = "0.01") -> Decimal:
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


_DATE_TEXT = re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?$")


def _date(value) -> date:
    """A date from a cell: a date, or text such as 2026-03-01, 2026/3/1, 2026年3月1日."""
    text = unicodedata.normalize("NFKC", str(value)).strip()
    if "T" in text:
        text = text.split("T", 1)[0]
    match = _DATE_TEXT.match(text)
    if not match:
        raise ValueError
    return date(int(match[1]), int(match[2]), int(match[3]))


class _Lookups:
    """Everything the rows refer to, loaded in a few queries for the whole file."""

    def __init__(self, user: User, rows: list[RawRow]):
        self.user = user
        self.carriers = {c.name: c for c in _active(Carrier)}
        self.clusters = {c.name: c for c in _active(Cluster)}
        self.channels = {c.name: c for c in _active(Channel)}
        self.chains = {
            (ch.cluster_id, ch.name): ch
            for ch in db.session.scalars(sa.select(Chain).where(Chain.is_active.is_(True)))
        }
        self.officers: dict[int, list[User]] = defaultdict(list)
        for officer in db.session.scalars(
            sa.select(User).where(User.role == Role.OFFICER, User.is_active.is_(True))
        ):
            self.officers[officer.carrier_id].append(officer)

        codes = {normalize(_text(r.cells.get("credit_code"))) for r in rows} - {""}
        names = {_text(r.cells.get("company_name")) for r in rows} - {""}
        self.by_code: dict[str, Company] = {}
        for chunk in _chunks(sorted(codes), 2000):
            for company in db.session.scalars(
                sa.select(Company).where(Company.credit_code.in_(chunk))
            ):
                self.by_code[company.credit_code] = company
        # Without a credit code, a company is found by its exact name (with or without a code
        # on record); a name several companies share needs the code.
        self.by_name: dict[str, list[Company]] = defaultdict(list)
        for chunk in _chunks(sorted(names), 2000):
            for company in db.session.scalars(
                sa.select(Company)
                .where(Company.name.in_(chunk), Company.is_deleted.is_(False))
                .order_by(Company.id)
            ):
                self.by_name[company.name].append(company)

        ids = set()
        for r in rows:
            try:
                ids.add(int(_decimal(r.cells["id"], "1")))
            except (KeyError, ValueError, InvalidOperation):
                continue
        self.by_id: dict[int, Project] = {}
        for chunk in _chunks(sorted(i for i in ids if 0 < i < 2**31), 2000):
            for project in db.session.scalars(
                sa.select(Project).where(Project.id.in_(chunk), project_scope(user))
            ):
                self.by_id[project.id] = project
        company_ids = {c.id for c in self.by_code.values()} | {
            c.id for cs in self.by_name.values() for c in cs
        }
        self.by_company: dict[tuple[int, str], list[Project]] = defaultdict(list)
        for chunk in _chunks(sorted(company_ids), 2000):
            for project in db.session.scalars(
                sa.select(Project).where(Project.company_id.in_(chunk), project_scope(user))
            ):
                self.by_company[project.company_id, project.name].append(project)

        # Who courts the companies of the file: by the same company or the same name key.
        keys = {name_key(n) for n in names} - {""}
        self.courting: list[tuple[Project, Company]] = []
        conditions = []
        if company_ids:
            conditions.append(Project.company_id.in_(sorted(company_ids)))
        if keys:
            conditions.append(Company.name_key.in_(sorted(keys)))
        if conditions:
            self.courting = list(
                db.session.execute(
                    sa.select(Project, Company)
                    .join(Company, Company.id == Project.company_id)
                    .where(
                        sa.or_(*conditions),
                        Project.is_deleted.is_(False),
                        Project.status.in_(COURTING_STATUSES),
                    )
                    .options(joinedload(Project.carrier))
                ).tuples()
            )
        self.courting_by_company: dict[int, list[tuple[Project, Company]]] = defaultdict(list)
        self.courting_by_key: dict[str, list[tuple[Project, Company]]] = defaultdict(list)
        for project, company in self.courting:
            self.courting_by_company[company.id].append((project, company))
            if company.name_key:
                self.courting_by_key[company.name_key].append((project, company))


_BOOL = {"是": True, "否": False, "true": True, "false": False, "1": True, "0": False, "": False}
_STAGES = {s.label: s for s in Stage} | {s.name: s for s in Stage}
_STATUSES = {s.label: s for s in Status} | {s.name: s for s in Status}
_ORIGINS = {o.label: o for o in Origin} | {o.name: o for o in Origin}


def plan_import(user: User, rows: list[RawRow]) -> ImportPlan:
    """What importing `rows` would do, row by row, with every problem found. Writes nothing."""
    lookups = _Lookups(user, rows)
    seen: dict[tuple, int] = {}
    plans = [_plan_row(user, raw, lookups, seen) for raw in rows]
    return ImportPlan(plans)


def _plan_row(user: User, raw: RawRow, lk: _Lookups, seen: dict[tuple, int]) -> RowPlan:
    cells = raw.cells
    plan = RowPlan(raw.row)
    for key in raw.formulas:
        plan.error(key, "不能包含公式，请填写数值或文字")
    formulas = set(raw.formulas)

    def text(key: str, limit: int) -> str:
        value = _text(cells.get(key))
        if key in formulas:
            return ""
        if value.startswith("="):
            plan.error(key, "不能以“=”开头（疑似公式），请删除后再导入")
            return ""
        if len(value) > limit:
            plan.error(key, f"不能超过 {limit} 个字")
        return value[:limit]

    name = plan.name = text("name", 200)
    company_name = plan.company_name = text("company_name", 200)
    if not name and "name" not in formulas:
        plan.error("name", "请填写项目名称")
    if not company_name and "company_name" not in formulas:
        plan.error("company_name", "请填写企业名称")
    code = normalize(text("credit_code", 30))
    if code and (message := credit_code_error(code)):
        plan.error("credit_code", message)
        code = ""

    # Matching: an explicit 项目编号, else the company (code or name) and the project name.
    project: Project | None = None
    if "id" in cells:
        try:
            project_id = int(_decimal(cells["id"], "1"))
        except (ValueError, InvalidOperation):
            project_id = 0
        project = lk.by_id.get(project_id)
        if project is None:
            plan.error("id", f"项目编号 {_text(cells['id'])} 不存在或不在您的权限范围内")
    if code:
        company = lk.by_code.get(code)
    else:
        same_name = lk.by_name.get(company_name, [])
        company = same_name[0] if len(same_name) == 1 else None
        if len(same_name) > 1:
            plan.error("credit_code", "库中有多家同名企业，请填写统一社会信用代码")
    if company is not None and company.is_deleted:
        plan.error("company_name", "该企业已从企业库移除")
    if project is None and company is not None and name and not plan.errors:
        matches = lk.by_company.get((company.id, name), [])
        if len(matches) > 1:
            plan.error("name", "该企业有多个同名项目，请填写项目编号")
        elif matches:
            project = matches[0]
    if project is not None and company is not None and project.company_id != company.id:
        plan.error("credit_code", "与项目编号对应项目的企业不一致")
    plan.project = project
    if project is not None and "version" in cells:
        try:
            plan.exported_version = int(_decimal(cells["version"], "1"))
        except (ValueError, InvalidOperation):
            plan.error("version", "数据版本应为导出时的数字，请勿修改")

    identity = ("id", project.id) if project else (code or name_key(company_name), name)
    if identity in seen:
        plan.error("name", f"与第 {seen[identity]} 行重复（同一企业、同一项目）")
    else:
        seen[identity] = raw.row

    # Catalogues and people.
    def named(field: str, label: str, entries: dict) -> Any:
        """A required catalogue entry named in the row, or an error at its column."""
        name = text(field, 100)
        entry = entries.get(name)
        if not name:
            plan.error(field, f"请填写{label}")
        elif entry is None:
            plan.error(field, f"没有名为“{name}”的{label}")
        return entry

    carrier_name = text("carrier", 100)
    if user.role is Role.OFFICER:
        carrier = user.carrier
        if carrier_name and carrier_name != carrier.name:
            plan.error("carrier", f"招商专员只能导入本载体（{carrier.name}）的项目")
    else:
        carrier = named("carrier", "载体", lk.carriers)
    plan.carrier_name = carrier.name if carrier else carrier_name
    if project is not None and carrier is not None and project.carrier_id != carrier.id:
        plan.error("carrier", "导入不能变更项目所属载体：流转请在项目页面办理")

    cluster = named("cluster", "产业集群", lk.clusters)
    chain_name = text("chain", 100)
    chain = None
    if chain_name and cluster is not None:
        chain = lk.chains.get((cluster.id, chain_name))
        if chain is None:
            plan.error("chain", f"“{chain_name}”不是{cluster.name}的产业链")
    channel = named("channel", "招商渠道", lk.channels)

    officer_name = text("officer", 64)
    officer = None
    if carrier is not None:
        if not officer_name:
            if project is not None:
                officer = project.officer
            elif user.role is Role.OFFICER:
                officer = user
            else:
                plan.error("officer", "请填写责任人（该载体招商专员的姓名或用户名）")
        else:
            candidates = [
                u
                for u in lk.officers.get(carrier.id, [])
                if officer_name in (u.display_name, u.username)
            ]
            by_username = [u for u in candidates if u.username == officer_name]
            if by_username:
                officer = by_username[0]
            elif len(candidates) == 1:
                officer = candidates[0]
            elif candidates:
                plan.error("officer", f"{carrier.name}有多名“{officer_name}”，请填写用户名")
            elif project is not None and officer_name == project.officer.display_name:
                officer = project.officer  # kept as is, even if no longer active
            else:
                plan.error("officer", f"“{officer_name}”不是{carrier.name}的在岗招商专员")

    key_text = _text(cells.get("is_key")).lower()
    if key_text not in _BOOL:
        plan.error("is_key", "请填写“是”或“否”")
    is_key = _BOOL.get(key_text, False)

    # Lifecycle: the import never moves a stage or a status.
    stage_text = _text(cells.get("stage"))
    stage = _STAGES.get(stage_text) if stage_text else None
    if stage_text and stage is None:
        plan.error("stage", f"没有“{stage_text}”阶段")
    status_text = _text(cells.get("status"))
    status = _STATUSES.get(status_text) if status_text else None
    if status_text and status is None:
        plan.error("status", f"没有“{status_text}”状态")
    if project is None:
        stage = stage or Stage.PLANNED
        if stage not in INITIAL_STAGES:
            plan.error(
                "stage",
                f"新项目不能导入为“{stage.label}”：只能为谋划或招引；"
                "签约须经评估通过并上传投资协议后在项目页面逐级推进",
            )
        if status not in (None, Status.ACTIVE):
            plan.error("status", "新项目的状态只能为正常")
    else:
        if stage is not None and stage is not project.stage:
            plan.error(
                "stage",
                f"导入不能变更阶段（系统中为“{project.stage.label}”）：请在项目页面推进或退回",
            )
        if status is not None and status is not project.status:
            plan.error(
                "status", f"导入不能变更状态（系统中为“{project.status.label}”）：请在项目页面办理"
            )
        stage = project.stage
    plan.stage = stage

    # Figures and dates.
    numbers: dict[str, Any] = {}
    for key in (
        "total_investment",
        "fixed_asset_investment",
        "land_area",
        "expected_output",
        "expected_tax",
        "expected_jobs",
    ):
        column = BY_KEY[key]
        value = cells.get(key)
        if value is None or key in formulas:
            if column.required and key not in formulas:
                plan.error(key, f"请填写{column.header}")
            numbers[key] = None
            continue
        try:
            number = _decimal(value, "1" if column.kind == "int" else "0.01")
        except (ValueError, InvalidOperation):
            unit = {"money": "单位：万元", "area": "单位：亩", "int": "整数"}[column.kind]
            plan.error(key, f"应填写数字（{unit}），“{_text(value)[:20]}”不是数字")
            numbers[key] = None
            continue
        limit = {"money": MAX_MONEY, "area": MAX_AREA, "int": Decimal(MAX_JOBS)}[column.kind]
        if number < 0:
            plan.error(key, "不能为负数")
        elif number > limit:
            plan.error(key, f"不能超过 {limit:,}")
        if column.kind == "int" and Decimal(str(value)) != number:
            plan.error(key, "应为整数")
        numbers[key] = int(number) if column.kind == "int" else number
    dates: dict[str, date | None] = {}
    for key in ("planned_signed_on", "planned_started_on", "planned_producing_on"):
        value = cells.get(key)
        if value is None or key in formulas:
            dates[key] = None
            continue
        try:
            dates[key] = _date(value)
        except ValueError:
            plan.error(key, f"“{_text(value)[:20]}”不是有效日期，应如 2026-03-01")
            dates[key] = None
    for key, message in planned_date_errors(dates).items():
        plan.error(key, message)
    if (
        numbers.get("fixed_asset_investment") is not None
        and numbers.get("total_investment") is not None
        and numbers["fixed_asset_investment"] > numbers["total_investment"]
    ):
        plan.error("fixed_asset_investment", "固定资产投资不能大于总投资")
    description = text("description", 5000)

    # The company behind a new project.
    origin_text = _text(cells.get("origin"))
    origin = _ORIGINS.get(origin_text) if origin_text else None
    if origin_text and origin is None:
        plan.error("origin", "企业来源地应为省内、省外或境外")
    if project is None and company is None and company_name:
        if origin is None and not origin_text:
            plan.error("origin", "新企业须填写企业来源地（省内、省外或境外）")
        plan.new_company = {
            "name": company_name,
            "name_key": name_key(company_name),
            "credit_code": code or None,
            "origin": origin,
        }
    elif company is not None and company_name and company.name != company_name:
        plan.warnings.append(f"企业名称与库中登记的“{company.name}”不一致，以库中为准")
    plan.company = company

    if plan.errors:
        return plan

    plan.values = {
        "name": name,
        "carrier_id": carrier.id,
        "cluster_id": cluster.id,
        "chain_id": chain.id if chain else None,
        "channel_id": channel.id,
        "officer_id": officer.id,
        "is_key": is_key,
        **numbers,
        "description": description,
        **dates,
    }
    if project is not None:
        plan.changes = {
            key: [getattr(project, key), value]
            for key, value in plan.values.items()
            if _differs(getattr(project, key), value)
        }
        if not plan.changes:
            plan.action = "unchanged"
            return plan
        if project.stage in STAGE_REQUIRED_FIELDS:
            plan.warnings.append(f"项目处于“{project.stage.label}”阶段：只更新基本信息和计划日期")
        changed = _changed_since_export(project, plan.exported_version, cells.get("updated_at"))
        if changed is None:
            plan.warnings.append("该行没有“数据版本”：无法检查导出后系统中是否有修改，将按文件更新")
        plan.action = "conflict" if changed else "update"
        names = {
            "carrier_id": carrier.name,
            "cluster_id": cluster.name,
            "chain_id": chain.name if chain else None,
            "channel_id": channel.name,
            "officer_id": officer.display_name,
        }
        plan.cells = []
        for key, (_old, value) in plan.changes.items():
            column = BY_KEY[key.removesuffix("_id")]
            exported = None
            if changed:  # the third value: the row as exported, from the hidden sheet
                exported = (
                    _show_cell(column, raw.exported.get(column.key))
                    if raw.exported is not None
                    else "（文件中未记录）"
                )
            plan.cells.append(
                CellChange(
                    column.header,
                    _show(_now_value(project, key)),
                    _show(names.get(key, value)),
                    exported,
                )
            )
        return plan

    plan.action = "create"
    courting = (
        lk.courting_by_company.get(company.id, []) if company is not None else []
    ) + lk.courting_by_key.get(name_key(company_name), [])
    found: dict[int, tuple[Project, ConflictBasis]] = {}
    for other, other_company in courting:
        if other.carrier_id == carrier.id or other.id in found:
            continue
        basis = (
            ConflictBasis.CREDIT_CODE
            if code and other_company.credit_code == code
            else ConflictBasis.NAME
        )
        found[other.id] = (other, basis)
    plan.courting = list(found.values())
    if plan.courting:
        names = "、".join(f"{p.carrier.name}（{p.name}）" for p, _b in plan.courting)
        plan.warnings.append(f"其他载体正在跟进该企业：{names}；导入后登记为跨载体冲突")
    return plan


def _changed_since_export(project: Project, version: int | None, exported_at) -> bool | None:
    """Whether `project` changed in the app after its row was exported: by the row's 数据版本,
    or, in a ledger exported before it had one, by its 更新时间 (to the minute); None when the
    row carries neither (a filled-in template)."""
    if version is not None:
        return version != project.version
    if not exported_at:
        return None
    try:
        stamp = datetime.fromisoformat(str(exported_at)).replace(tzinfo=None)
    except ValueError:
        return None
    now = project.updated_at.astimezone(LOCAL_TZ).replace(tzinfo=None, second=0, microsecond=0)
    return now > stamp


def _now_value(project: Project, key: str) -> Any:
    """A project field as the preview names it: a catalogue entry or a person by name."""
    if key == "officer_id":
        return project.officer.display_name
    if key.endswith("_id"):
        entry = getattr(project, key.removesuffix("_id"))
        return entry.name if entry is not None else None
    return getattr(project, key)


SHOWN_CHARS = 80


def _show(value: Any) -> str:
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


def _show_cell(column: Column, value: Any) -> str:
    """A cell of the file (as read) as `_show` shows the same field of a project."""
    if value is None or value == "":
        return _show(None)
    try:
        if column.kind in ("money", "area"):
            return _show(_decimal(value))
        if column.kind == "int":
            return str(int(_decimal(value, "1")))
        if column.kind == "date":
            return _date(value).isoformat()
    except (ValueError, InvalidOperation):
        pass
    return _show(_text(value))


def _differs(old, new) -> bool:
    if isinstance(old, Decimal) or isinstance(new, Decimal):
        old = None if old is None else Decimal(old).quantize(Decimal("0.01"))
        new = None if new is None else Decimal(new).quantize(Decimal("0.01"))
    if old in (None, "") and new in (None, ""):
        return False
    return old != new


# Writing -----------------------------------------------------------------------------------


@dataclass
class ImportResult:
    created: int
    updated: int
    unchanged: int
    companies: int
    conflicts: int  # cross-载体 conflicts registered
    kept: int = 0  # rows changed in the app since the export, not chosen: left as they are


def apply_import(
    user: User, plan: ImportPlan, filename: str = "", chosen: Iterable[str] = ()
) -> ImportResult:
    """Write a plan without errors, in bulk statements; the caller commits (all or none).

    A conflicting row (its project changed in the app since the export) is applied only when
    `chosen` holds its `RowPlan.choice`; the others keep the app's values."""
    if not plan.ok:
        raise ServiceError("导入文件有误，未写入任何数据")
    now = utcnow()
    registered_by = user.carrier_id if user.role is Role.OFFICER else None

    # New companies, one per credit code (or name), in one statement.
    to_create: dict[tuple[str, str], dict[str, Any]] = {}
    for row in plan.rows:
        if row.new_company is not None:
            to_create.setdefault(_company_identity(row.new_company), row.new_company)
    company_ids: dict[tuple[str, str], int] = {}
    if to_create:
        params = [
            {
                **values,
                "legal_representative": "",
                "industry": "",
                "registered_by_carrier_id": registered_by,
                "created_by_id": user.id,
                "created_at": now,
                "updated_at": now,
                "is_deleted": False,
            }
            for values in to_create.values()
        ]
        # RETURNING in any order (SQLite cannot batch an ordered one): matched back by the
        # credit code, or the name of a company without one (unique within the plan).
        returned = db.session.execute(
            sa.insert(Company).returning(Company.id, Company.credit_code, Company.name), params
        ).all()
        company_ids = {
            _company_identity({"credit_code": code, "name": name}): cid
            for cid, code, name in returned
        }

    # New projects, their first history rows, in a few statements.
    creates = [r for r in plan.rows if r.action == "create"]
    project_ids: list[int] = []
    if creates:
        params = [
            {
                **r.values,
                "company_id": r.company.id
                if r.company is not None
                else company_ids[_company_identity(r.new_company)],
                "search_text": search_text(
                    r.values["name"],
                    r.company.name if r.company is not None else r.new_company["name"],
                ),
                "stage": r.stage,
                "status": Status.ACTIVE,
                "created_by_id": user.id,
                "created_at": now,
                "updated_at": now,
                "version": 1,
                "is_deleted": False,
            }
            for r in creates
        ]
        # Matched back by company and name: unique among the new projects of a plan.
        returned = db.session.execute(
            sa.insert(Project).returning(Project.id, Project.company_id, Project.name), params
        ).all()
        by_key = {(company_id, name): pid for pid, company_id, name in returned}
        project_ids = [by_key[p["company_id"], p["name"]] for p in params]
        if len(set(project_ids)) != len(params):
            raise ServiceError("导入文件中有重复的项目，未写入任何数据")
        db.session.execute(
            sa.insert(StageChange),
            [
                {
                    "project_id": pid,
                    "from_stage": None,
                    "to_stage": r.stage,
                    "reason": "台账导入",
                    "changed_by_id": user.id,
                    "changed_at": now,
                }
                for pid, r in zip(project_ids, creates, strict=True)
            ],
        )

    # Cross-载体 conflicts of the new projects.
    conflicts = []
    seen_pairs: set[frozenset[int]] = set()
    for pid, r in zip(project_ids, creates, strict=True):
        for other, basis in r.courting:
            pair = frozenset((pid, other.id))
            if pair not in seen_pairs:
                seen_pairs.add(pair)
                conflicts.append(
                    {
                        "project_id": pid,
                        "other_project_id": other.id,
                        "basis": basis,
                        "detected_at": now,
                    }
                )
    if conflicts:
        db.session.execute(sa.insert(ProjectConflict), conflicts)

    # Updates of matched projects, in one statement: every imported field of each row, over
    # the version the plan read (optimistic lock: a project changed in between fails the
    # import, all rows or none), audited with the diff of what really changed.
    chosen = set(chosen)
    updates = [
        r
        for r in plan.rows
        if r.action == "update" or (r.action == "conflict" and r.choice in chosen)
    ]
    updated_audit = []
    if updates:
        table = Project.__table__
        keys = list(updates[0].values)
        statement = (
            sa.update(table)
            .where(table.c.id == sa.bindparam("p_id"), table.c.version == sa.bindparam("p_seen"))
            .values(
                {
                    **{key: sa.bindparam(f"v_{key}") for key in keys},
                    "version": table.c.version + 1,
                    "search_text": sa.bindparam("p_search_text"),
                    "updated_at": now,
                }
            )
        )
        params, updated_audit = [], []
        for r in updates:
            company = r.company or r.project.company
            params.append(
                {
                    "p_id": r.project.id,
                    "p_seen": r.project.version,
                    "p_search_text": search_text(r.values["name"], company.name),
                    **{f"v_{key}": r.values[key] for key in keys},
                }
            )
            updated_audit.append(
                {
                    "user_id": user.id,
                    "action": "project_updated",
                    "object_type": "projects",
                    "object_id": r.project.id,
                    "summary": f"{r.project.name}（台账导入）"[:500],
                    "changes": changes_of(r.project, r.values),
                    "created_at": now,
                }
            )
        result = db.session.execute(statement, params)
        if db.engine.dialect.supports_sane_multi_rowcount and result.rowcount != len(params):
            raise ConflictError("导入期间有项目被他人修改，未写入任何数据：请重新预览后再导入")
        for r in updates:
            db.session.expire(r.project)

    # The audit log: one row per created record, one for the import.
    audit = (
        [
            {
                "user_id": user.id,
                "action": "company_created",
                "object_type": "companies",
                "object_id": company_ids[identity],
                "summary": f"{values['name']}（台账导入）"[:500],
                "changes": {},
                "created_at": now,
            }
            for identity, values in to_create.items()
        ]
        + updated_audit
        + [
            {
                "user_id": user.id,
                "action": "project_created",
                "object_type": "projects",
                "object_id": pid,
                "summary": f"{r.values['name']}（台账导入）"[:500],
                "changes": {},
                "created_at": now,
            }
            for pid, r in zip(project_ids, creates, strict=True)
        ]
    )
    if audit:
        db.session.execute(sa.insert(AuditEntry), audit)
    result = ImportResult(
        created=len(creates),
        updated=len(updates),
        unchanged=plan.count("unchanged"),
        companies=len(to_create),
        conflicts=len(conflicts),
        kept=plan.count("conflict") - (len(updates) - plan.count("update")),
    )
    record(
        user,
        "ledger_imported",
        summary=(
            f"导入项目台账“{filename}”：新建 {result.created}，更新 {result.updated}，"
            f"无变化 {result.unchanged}"
        )[:500],
        changes={
            "rows": len(plan.rows),
            "created": result.created,
            "updated": result.updated,
            "unchanged": result.unchanged,
            "companies": result.companies,
            "conflicts": result.conflicts,
            "kept": result.kept,
        },
        object_type="ledger",
    )
    db.session.flush()
    return result
