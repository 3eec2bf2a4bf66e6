"""Checking an upload (the preview): what each row would do, or what is wrong with it.

`plan_import` checks every row against the catalogues, the permissions and the lifecycle and
says what it would do (create / update / unchanged / conflict) or what is wrong (row, column,
message); it writes nothing. A project is matched by its 项目编号, or by 统一社会信用代码 (the
company's name when it has none) plus project name, so importing the same file twice changes
nothing the second time."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa

from crm.auth.models import Role, User
from crm.catalog.models import Carrier, Chain, Channel, Cluster
from crm.companies.credit_code import credit_code_error, normalize
from crm.companies.models import Company
from crm.companies.services import company_identity, likely_matches_bulk, name_key
from crm.core import LOCAL_TZ
from crm.extensions import db
from crm.ledger.cells import (
    BOOLEANS,
    MAX_AREA,
    MAX_JOBS,
    MAX_MONEY,
    ORIGINS,
    STAGES,
    STATUSES,
    cell_date,
    cell_decimal,
    cell_text,
    differs,
    shown,
    shown_cell,
)
from crm.ledger.columns import (
    BY_KEY,
    header,
)
from crm.ledger.lookups import FileLookups
from crm.ledger.reading import RawRow
from crm.projects.conflicts import Courting, CourtingLookup
from crm.projects.models import (
    Project,
)
from crm.projects.registration import (
    INITIAL_STAGES,
    PLANNED_DATES,
    PROJECT_FIGURES,
    clean_project_values,
    project_value_errors,
)
from crm.projects.stages import STAGE_REQUIRED_FIELDS, Stage, Status


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
    courting: list[Courting] = field(default_factory=list)
    changes: dict[str, list[Any]] = field(default_factory=dict)
    cells: list[CellChange] = field(default_factory=list)  # what the preview shows changing
    exported_version: int | None = None  # the 数据版本 of the row, when it has one
    failed: set[str] = field(default_factory=set)  # keys of the columns with an error

    def error(self, key: str, message: str) -> None:
        self.failed.add(key)
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
    # The newest company and project ids when the plan was made: a confirmation that writes in
    # a transaction of its own (`transaction.reads_first`) refuses new projects if either moved.
    newest: tuple[int, int] = (0, 0)

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
                company_identity(r.new_company)
                for r in self.rows
                if r.new_company and r.action == "create"
            }
        )


def plan_import(user: User, rows: list[RawRow]) -> ImportPlan:
    """What importing `rows` would do, row by row, with every problem found. Writes nothing."""
    lookups = FileLookups(user, rows)
    seen: dict[tuple, int] = {}
    plans = [_plan_row(user, raw, lookups, seen) for raw in rows]
    _plan_new_projects([p for p in plans if p.action == "create"])
    return ImportPlan(plans, newest_ids())


def newest_ids() -> tuple[int, int]:
    """The newest company and project ids: another registration moves one of them."""
    return (
        db.session.scalar(sa.select(sa.func.max(Company.id))) or 0,
        db.session.scalar(sa.select(sa.func.max(Project.id))) or 0,
    )


class _Row:
    """The cells of one row as read for its plan: each problem said at its column."""

    def __init__(self, raw: RawRow, plan: RowPlan):
        self.cells, self.plan = raw.cells, plan
        self.formulas = set(raw.formulas)
        for key in raw.formulas:
            plan.error(key, "不能包含公式，请填写数值或文字")

    def text(self, key: str, limit: int) -> str:
        value = cell_text(self.cells.get(key))
        if key in self.formulas:
            return ""
        if value.startswith("="):
            self.plan.error(key, "不能以“=”开头（疑似公式），请删除后再导入")
            return ""
        if len(value) > limit:
            self.plan.error(key, f"不能超过 {limit} 个字")
        return value[:limit]

    def named(self, key: str, label: str, entries: dict) -> Any:
        """A required catalogue entry named in the row, or an error at its column."""
        name = self.text(key, 100)
        entry = entries.get(name)
        if not name:
            self.plan.error(key, f"请填写{label}")
        elif entry is None:
            self.plan.error(key, f"没有名为“{name}”的{label}")
        return entry


@dataclass
class _Refs:
    """What a row names in the catalogues and among the people, found (None: not found)."""

    carrier: Carrier | None
    cluster: Cluster | None
    chain: Chain | None
    channel: Channel | None
    officer: User | None


def _plan_row(user: User, raw: RawRow, lk: FileLookups, seen: dict[tuple, int]) -> RowPlan:
    plan = RowPlan(raw.row)
    row = _Row(raw, plan)
    code = _read_names(row)
    project, company = _match(row, lk, code)
    _check_repeated(plan, project, code, seen)
    refs = _read_references(user, row, lk, project)
    is_key = _read_is_key(row)
    plan.stage = _read_lifecycle(row, project)
    numbers = _read_figures(row)
    dates = _read_dates(row)
    description = row.text("description", 5000)
    _plan_company(row, lk, project, company, code)
    values = clean_project_values(
        user,
        {
            "name": plan.name,
            "carrier_id": refs.carrier.id if refs.carrier else None,
            "cluster_id": refs.cluster.id if refs.cluster else None,
            "chain_id": refs.chain.id if refs.chain else None,
            "channel_id": refs.channel.id if refs.channel else None,
            "officer_id": refs.officer.id if refs.officer else None,
            "is_key": is_key,
            **numbers,
            "description": description,
            **dates,
        },
        project,
    )
    _check_values(plan, values, project, lk)
    if plan.errors:
        return plan
    plan.values = values
    if project is not None:
        _plan_update(plan, raw, project, refs)
    else:
        plan.action = "create"
    return plan


def _read_names(row: _Row) -> str:
    """The project's and the company's names (on the plan), and the credit code ("" if none
    or invalid)."""
    plan = row.plan
    plan.name = row.text("name", 200)
    plan.company_name = row.text("company_name", 200)
    if not plan.name and "name" not in row.formulas:
        plan.error("name", "请填写项目名称")
    if not plan.company_name and "company_name" not in row.formulas:
        plan.error("company_name", "请填写企业名称")
    code = normalize(row.text("credit_code", 30))
    if code and (message := credit_code_error(code)):
        plan.error("credit_code", message)
        code = ""
    return code


def _match(row: _Row, lk: FileLookups, code: str) -> tuple[Project | None, Company | None]:
    """The project a row updates, by an explicit 项目编号, else by the company (code or
    name) and the project name; and the registered company it names."""
    plan, cells = row.plan, row.cells
    project: Project | None = None
    if "id" in cells:
        try:
            project_id = int(cell_decimal(cells["id"], "1"))
        except (ValueError, InvalidOperation):
            project_id = 0
        project = lk.by_id.get(project_id)
        if project is None:
            plan.error("id", f"项目编号 {cell_text(cells['id'])} 不存在或不在您的权限范围内")
    if code:
        company = lk.by_code.get(code)
    else:
        same_name = lk.by_name.get(plan.company_name, [])
        company = same_name[0] if len(same_name) == 1 else None
        if len(same_name) > 1:
            plan.error("credit_code", "库中有多家同名企业，请填写统一社会信用代码")
    if company is not None and company.is_deleted:
        plan.error("company_name", "该企业已从企业库移除")
    if project is None and company is not None and plan.name and not plan.errors:
        matches = lk.by_company.get((company.id, plan.name), [])
        if len(matches) > 1:
            plan.error("name", "该企业有多个同名项目，请填写项目编号")
        elif matches:
            project = matches[0]
    if project is not None and company is not None and project.company_id != company.id:
        plan.error("credit_code", "与项目编号对应项目的企业不一致")
    plan.project = project
    if project is not None and "version" in cells:
        try:
            plan.exported_version = int(cell_decimal(cells["version"], "1"))
        except (ValueError, InvalidOperation):
            plan.error("version", "数据版本应为导出时的数字，请勿修改")
    return project, company


def _check_repeated(
    plan: RowPlan, project: Project | None, code: str, seen: dict[tuple, int]
) -> None:
    """A row naming the same project as an earlier row of the file is an error."""
    identity = ("id", project.id) if project else (code or name_key(plan.company_name), plan.name)
    if identity in seen:
        plan.error("name", f"与第 {seen[identity]} 行重复（同一企业、同一项目）")
    else:
        seen[identity] = plan.row


def _read_references(user: User, row: _Row, lk: FileLookups, project: Project | None) -> _Refs:
    """The 载体, cluster, chain, channel and officer a row names (names → records)."""
    plan = row.plan
    carrier_name = row.text("carrier", 100)
    if user.role is Role.OFFICER:
        carrier = user.carrier
        if carrier_name and carrier_name != carrier.name:
            plan.error("carrier", f"招商专员只能导入本载体（{carrier.name}）的项目")
    else:
        carrier = row.named("carrier", "载体", lk.carriers)
    plan.carrier_name = carrier.name if carrier else carrier_name
    if project is not None and carrier is not None and project.carrier_id != carrier.id:
        plan.error("carrier", "导入不能变更项目所属载体：流转请在项目页面办理")

    cluster = row.named("cluster", "产业集群", lk.clusters)
    chain_name = row.text("chain", 100)
    chain = None
    if chain_name and cluster is not None:
        chain = lk.chains.get((cluster.id, chain_name))
        if chain is None:
            plan.error("chain", f"“{chain_name}”不是{cluster.name}的产业链")
    channel = row.named("channel", "招商渠道", lk.channels)
    officer = _read_officer(user, row, lk, project, carrier)
    return _Refs(carrier, cluster, chain, channel, officer)


def _read_officer(
    user: User, row: _Row, lk: FileLookups, project: Project | None, carrier: Carrier | None
) -> User | None:
    """The 责任人 a row names, by user name or display name among the 载体's officers; a
    project's own is kept when the cell is empty, an officer's self on a new project."""
    plan = row.plan
    officer_name = row.text("officer", 64)
    if carrier is None:
        plan.failed.add("officer")  # nothing to check it against
        return None
    if not officer_name:
        if project is not None:
            return project.officer
        if user.role is Role.OFFICER:
            return user
        plan.error("officer", "请填写责任人（该载体招商专员的姓名或用户名）")
        return None
    candidates = [
        u for u in lk.officers.get(carrier.id, []) if officer_name in (u.display_name, u.username)
    ]
    by_username = [u for u in candidates if u.username == officer_name]
    if by_username:
        return by_username[0]
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        plan.error("officer", f"{carrier.name}有多名“{officer_name}”，请填写用户名")
    elif project is not None and officer_name == project.officer.display_name:
        return project.officer  # kept as is, even if no longer active
    else:
        plan.error("officer", f"“{officer_name}”不是{carrier.name}的在岗招商专员")
    return None


def _read_is_key(row: _Row) -> bool:
    key_text = cell_text(row.cells.get("is_key")).lower()
    if key_text not in BOOLEANS:
        row.plan.error("is_key", "请填写“是”或“否”")
    return BOOLEANS.get(key_text, False)


def _read_lifecycle(row: _Row, project: Project | None) -> Stage:
    """The stage of the row: the import never moves a stage or a status."""
    plan = row.plan
    stage_text = cell_text(row.cells.get("stage"))
    stage = STAGES.get(stage_text) if stage_text else None
    if stage_text and stage is None:
        plan.error("stage", f"没有“{stage_text}”阶段")
    status_text = cell_text(row.cells.get("status"))
    status = STATUSES.get(status_text) if status_text else None
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
        return stage
    if stage is not None and stage is not project.stage:
        plan.error(
            "stage",
            f"导入不能变更阶段（系统中为“{project.stage.label}”）：请在项目页面推进或退回",
        )
    if status is not None and status is not project.status:
        plan.error(
            "status", f"导入不能变更状态（系统中为“{project.status.label}”）：请在项目页面办理"
        )
    return project.stage


_UNITS = {"money": "单位：万元", "area": "单位：亩", "int": "整数"}
_LIMITS = {"money": MAX_MONEY, "area": MAX_AREA, "int": Decimal(MAX_JOBS)}


def _read_figures(row: _Row) -> dict[str, Any]:
    """The amounts, area and jobs of a row: numbers within the form's limits (None: empty
    or wrong)."""
    plan, numbers = row.plan, {}
    for key in PROJECT_FIGURES:
        column = BY_KEY[key]
        value = row.cells.get(key)
        numbers[key] = None
        if value is None or key in row.formulas:
            if column.required and key not in row.formulas:
                plan.error(key, f"请填写{column.header}")
            continue
        try:
            number = cell_decimal(value, "1" if column.kind == "int" else "0.01")
        except (ValueError, InvalidOperation):
            message = f"应填写数字（{_UNITS[column.kind]}），“{cell_text(value)[:20]}”不是数字"
            plan.error(key, message)
            continue
        limit = _LIMITS[column.kind]
        if number < 0:
            plan.error(key, "不能为负数")
        elif number > limit:
            plan.error(key, f"不能超过 {limit:,}")
        if column.kind == "int" and Decimal(str(value)) != number:
            plan.error(key, "应为整数")
        numbers[key] = int(number) if column.kind == "int" else number
    return numbers


def _read_dates(row: _Row) -> dict[str, date | None]:
    dates: dict[str, date | None] = {}
    for key in PLANNED_DATES:
        value = row.cells.get(key)
        dates[key] = None
        if value is None or key in row.formulas:
            continue
        try:
            dates[key] = cell_date(value)
        except ValueError:
            row.plan.error(key, f"“{cell_text(value)[:20]}”不是有效日期，应如 2026-03-01")
    return dates


def _plan_company(
    row: _Row, lk: FileLookups, project: Project | None, company: Company | None, code: str
) -> None:
    """The company behind the row: the registered one, or one to register with a new
    project (then its origin is needed, and the companies it may be are listed)."""
    plan = row.plan
    origin_text = cell_text(row.cells.get("origin"))
    origin = ORIGINS.get(origin_text) if origin_text else None
    if origin_text and origin is None:
        plan.error("origin", "企业来源地应为省内、省外或境外")
    if project is None and company is None and plan.company_name:
        if origin is None and not origin_text:
            plan.error("origin", "新企业须填写企业来源地（省内、省外或境外）")
        plan.new_company = {
            "name": plan.company_name,
            "credit_code": code or None,
            "origin": origin,
        }
    elif company is not None and plan.company_name and company.name != plan.company_name:
        plan.warnings.append(f"企业名称与库中登记的“{company.name}”不一致，以库中为准")
    plan.company = company


def _check_values(
    plan: RowPlan,
    values: dict[str, Any],
    project: Project | None,
    lk: FileLookups,
) -> None:
    """The rules of a project's values (`project_value_errors`, as the form checks them),
    said at their columns; a column already wrong, or not found, is not checked again."""
    errors = project_value_errors(values, project=project, lookups=lk.project_lookups)
    for key, message in errors.items():
        column = key.removesuffix("_id")
        if column not in plan.failed:
            plan.error(column, message)


def _plan_new_projects(creates: list[RowPlan]) -> None:
    """What the new projects of a file are told, looked up at once for all of them: the
    registered companies each new company may be (so the user can name that one instead),
    and the projects of other 载体 courting each company (the conflict rule of the form,
    `crm.projects.conflicts`: flagged when imported)."""
    new = [r for r in creates if r.new_company is not None]
    wanted = [(r.new_company["name"], r.new_company["credit_code"]) for r in new]
    for row, matches in zip(new, likely_matches_bulk(wanted), strict=True):
        if matches:
            names = "、".join(
                f"{m.company.name}（{m.company.credit_code or '无统一社会信用代码'}，"
                f"相似度 {m.score:g}）"
                for m in matches
            )
            row.warnings.append(
                f"企业库中有相近的企业：{names}。如为同一企业，请在文件中填写库中的企业名称"
                "或统一社会信用代码；否则将登记为新企业"
            )
    companies = [r.company or Company(**_company_fields(r.new_company)) for r in creates]
    courting = CourtingLookup(companies)
    for row, company in zip(creates, companies, strict=True):
        row.courting = courting.of(company, row.values["carrier_id"])
        if row.courting:
            names = "、".join(f"{c.project.carrier.name}（{c.project.name}）" for c in row.courting)
            row.warnings.append(f"其他载体正在跟进该企业：{names}；导入后登记为跨载体冲突")


def _company_fields(values: dict[str, Any]) -> dict[str, Any]:
    """A company to register as the courting rule sees it (not added to the session)."""
    return {"name": values["name"], "credit_code": values["credit_code"]}


def _plan_update(plan: RowPlan, raw: RawRow, project: Project, refs: _Refs) -> None:
    """An update of a registered project: what changes, and whether the project changed in
    the app since the file was exported (then a conflict, applied only when chosen)."""
    plan.changes = {
        key: [getattr(project, key), value]
        for key, value in plan.values.items()
        if differs(getattr(project, key), value)
    }
    if not plan.changes:
        plan.action = "unchanged"
        return
    if project.stage in STAGE_REQUIRED_FIELDS:
        plan.warnings.append(f"项目处于“{project.stage.label}”阶段：只更新基本信息和计划日期")
    changed = _changed_since_export(project, plan.exported_version, raw.cells.get("updated_at"))
    if changed is None:
        plan.warnings.append("该行没有“数据版本”：无法检查导出后系统中是否有修改，将按文件更新")
    plan.action = "conflict" if changed else "update"
    names = {
        "carrier_id": refs.carrier.name,
        "cluster_id": refs.cluster.name,
        "chain_id": refs.chain.name if refs.chain else None,
        "channel_id": refs.channel.name,
        "officer_id": refs.officer.display_name,
    }
    plan.cells = []
    for key, (_old, value) in plan.changes.items():
        column = BY_KEY[key.removesuffix("_id")]
        exported = None
        if changed:  # the third value: the row as exported, from the hidden sheet
            exported = (
                shown_cell(column, raw.exported.get(column.key))
                if raw.exported is not None
                else "（文件中未记录）"
            )
        plan.cells.append(
            CellChange(
                column.header,
                shown(_now_value(project, key)),
                shown(names.get(key, value)),
                exported,
            )
        )


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
