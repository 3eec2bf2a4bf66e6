"""Writing an .xlsx in memory with XlsxWriter (the export and the import template), each
format made once per workbook; text always written as text, never as a formula."""

from __future__ import annotations

import io
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import xlsxwriter
from xlsxwriter.format import Format
from xlsxwriter.worksheet import Worksheet

from crm.core import LOCAL_TZ
from crm.ledger.columns import (
    INT_FORMAT,
    Column,
)

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

HEADER_FILL = "#DCE6F1"  # columns the import reads
READ_ONLY_FILL = "#EDEDED"  # system data, ignored by the import
WORKBOOK_OPTIONS = {
    "in_memory": True,  # no temporary file anywhere
    "strings_to_numbers": False,  # text stays text, whatever it looks like
    "strings_to_formulas": False,
    "strings_to_urls": False,
}


class Book:
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
