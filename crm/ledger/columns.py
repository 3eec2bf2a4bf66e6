"""The columns of the project ledger (项目台账): one list for the export, the import template
and the import, so a ledger exported from the CRM is a valid import file."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

MONEY_FORMAT = "#,##0.00"
AREA_FORMAT = "#,##0.00"
INT_FORMAT = "0"
DATE_FORMAT = "yyyy-mm-dd"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm"
SNAPSHOT_SHEET = "导出时的值"  # the export's very hidden copy of what each row was
SNAPSHOT_ID, SNAPSHOT_VALUES = "项目编号", "导出时的值（JSON）"  # its two columns


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    kind: str  # text, int, money, area, date, datetime, bool, choice
    width: int = 14
    imported: bool = True  # False: shown in the ledger, ignored by the import
    required: bool = False
    note: str = ""

    @property
    def number_format(self) -> str | None:
        return {
            "money": MONEY_FORMAT,
            "area": AREA_FORMAT,
            "int": INT_FORMAT,
            "date": DATE_FORMAT,
            "datetime": DATETIME_FORMAT,
        }.get(self.kind)


COLUMNS: list[Column] = [
    Column("id", "项目编号", "int", 10, note="系统编号；填写时按编号更新该项目，留空则按信用代码和项目名称匹配"),
    Column("name", "项目名称", "text", 32, required=True),
    Column("company_name", "企业名称", "text", 32, required=True),
    Column("credit_code", "统一社会信用代码", "text", 22, note="18 位；境外企业可留空"),
    Column("origin", "企业来源地", "choice", 10, note="省内、省外、境外；新企业必填"),
    Column("carrier", "载体", "choice", 16, required=True, note="招商专员只能导入本载体"),
    Column("cluster", "产业集群", "choice", 14, required=True),
    Column("chain", "产业链", "choice", 16),
    Column("channel", "招商渠道", "choice", 16, required=True),
    Column("officer", "责任人", "text", 10, note="该载体招商专员的姓名或用户名；招商专员留空为本人"),
    Column("is_key", "重点项目", "bool", 8, note="是 / 否"),
    Column("stage", "阶段", "choice", 8, note="新项目只能为谋划或招引，留空为谋划"),
    Column("status", "状态", "choice", 8, note="新项目为正常；已有项目须与系统一致"),
    Column("status_reason", "状态说明", "text", 24, imported=False),
    Column("verification", "本阶段核实", "text", 10, imported=False),
    Column("total_investment", "总投资（万元）", "money", 14, required=True),
    Column("fixed_asset_investment", "固定资产投资（万元）", "money", 14),
    Column("land_area", "用地面积（亩）", "area", 12),
    Column("expected_output", "预计年产值（万元）", "money", 14),
    Column("expected_tax", "预计年税收（万元）", "money", 14),
    Column("expected_jobs", "预计新增就业（人）", "int", 12),
    Column("planned_signed_on", "计划签约日期", "date", 12),
    Column("signed_on", "签约日期", "date", 12, imported=False),
    Column("signed_amount", "签约金额（万元）", "money", 14, imported=False),
    Column("planned_started_on", "计划开工日期", "date", 12),
    Column("started_on", "开工日期", "date", 12, imported=False),
    Column("planned_producing_on", "计划投产日期", "date", 12),
    Column("producing_on", "投产日期", "date", 12, imported=False),
    Column("funds_total", "实际到位资金（万元）", "money", 14, imported=False),
    Column("last_followup_on", "最近跟踪日期", "date", 12, imported=False),
    Column("next_action", "下一步", "text", 24, imported=False),
    Column("next_action_due", "下一步期限", "date", 12, imported=False),
    Column("description", "项目简介", "text", 40),
    Column("created_at", "登记时间", "datetime", 17, imported=False),
    Column("updated_at", "更新时间", "datetime", 17, imported=False),
    Column("version", "数据版本", "int", 10, imported=False, note="系统数据，请勿修改（已锁定）：导出时项目的数据版本，项目每次修改加 1。导入时与系统比对：导出后在系统中被修改过的项目显示为冲突，逐行勾选后才会更新。新项目留空"),
]  # fmt: skip

BY_KEY = {c.key: c for c in COLUMNS}


def header_key(text: str) -> str:
    """A header as typed, for matching: full-width folded, no spaces, 万元 units optional."""
    key = unicodedata.normalize("NFKC", str(text or "")).strip()
    key = re.sub(r"\s+", "", key)
    return re.sub(r"\((万元|亩|人)\)$", "", key)


HEADERS = {header_key(c.header): c for c in COLUMNS}


def header(key: str) -> str:
    return BY_KEY[key].header
