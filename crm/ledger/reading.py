"""Reading an upload: the data rows of a ledger as plain JSON values, after checking the
file is not a decompression bomb; nothing here touches the database."""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from openpyxl import load_workbook

from crm.core import ServiceError
from crm.ledger.columns import (
    COLUMNS,
    HEADERS,
    SNAPSHOT_SHEET,
    header_key,
)

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
CONTROL_ESCAPE = re.compile(r"_x(00[01][0-9A-Fa-f])_")  # OOXML's escape of U+0000–U+001F


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
            exported = _read_snapshot(wb[SNAPSHOT_SHEET])
            for row in rows:
                row.exported = exported.get(str(row.cells.get("id")))
        return rows
    except ServiceError:
        raise
    except Exception as exc:  # a damaged sheet inside a readable file
        raise ServiceError("文件内容无法读取，请重新导出或从模板填写后再上传") from exc
    finally:
        wb.close()


def _read_snapshot(ws) -> dict[str, dict[str, Any]]:
    """The export's hidden sheet: each project's id and its row as exported (JSON), read up to
    the rows' limit; a damaged cell is skipped (its row then has no third value to show)."""
    exported: dict[str, dict[str, Any]] = {}
    for counted, row in enumerate(ws.iter_rows(min_row=2, max_col=2, values_only=True), 2):
        if counted > MAX_SHEET_ROWS + 1:
            break
        project_id, values = [*row, None, None][:2]
        if project_id is None or not isinstance(values, str):
            continue
        try:
            found = json.loads(values)
        except ValueError:
            continue
        if isinstance(found, dict):
            exported[str(_plain(project_id))] = found
    return exported


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
