"""Synthetic data at a province's scale: `flask --app wsgi crm generate --projects N`.

Unlike the demo (crm/devdata/demo.py), which goes through the services one project at a time, this
writes rows straight into the tables with bulk INSERTs (lists of dicts, in chunks), so that
100,000 projects with about a million follow-ups take minutes. The rows are consistent with
what the services would leave: the stage history leads up to the project's stage (moves into
签约, 开工 and 投产 verified), 签约 and later projects have a passed evaluation, their signing
figures and funds records; 终止 and 流失 projects have their status change. The audit log is
not written.

Tasks (任务): about 0.2 open tasks per project (20,000 at 100,000 projects), most of them the
下一步 of a 正常 project (its officer's task with the project's next action and due date, as
crm/tasks/next_actions.py keeps it; the other projects' next actions were done long ago, so
they have none), the rest given by officers, task forces and leaders to each other on projects
they all read, a third of them overdue; and about as many done or cancelled ones. They draw
from a generator of their own: the projects' names, stages and figures are what the same seed
gave before tasks existed (only fewer of them have a next action).

Names of companies and projects are composed from word lists; `--seed` makes every run with
the same seed and N write the same data (dates are relative to the day it runs).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import sqlalchemy as sa

from crm.auth.models import Role, User
from crm.catalog.models import Carrier, Chain, Channel, Cluster, TerminationReason
from crm.catalog.seed import seed_catalogues
from crm.companies.credit_code import check_character
from crm.companies.models import Company, Origin
from crm.companies.services import name_key
from crm.core import LOCAL_TZ, local_today
from crm.evaluation.models import ChecklistTemplate, Evaluation, EvaluationState
from crm.evaluation.seed import seed_default_template
from crm.extensions import db
from crm.projects.models import (
    ElementKind,
    ElementNeed,
    ElementStatus,
    FollowUp,
    FollowUpKind,
    FundsRecord,
    Project,
    StageChange,
    StatusChange,
)
from crm.projects.search import search_text
from crm.projects.stages import VERIFIED_STAGES, Stage, Status, Verification
from crm.tasks.models import Task, TaskKind, TaskStatus

GENERATED_PASSWORD = "Bench@2026"
OFFICERS_PER_CARRIER = 3
CHUNK = 2000  # projects per round of INSERTs

PLACES = ["安徽", "江苏", "浙江", "上海", "山东", "河南", "广东", "湖北", "北京", "四川",
          "福建", "江西", "湖南", "天津", "重庆", "陕西", "亳州", "合肥", "芜湖", "苏州",
          "杭州", "深圳", "宁波", "无锡", "常州", "南京", "郑州", "济南", "成都", "武汉"]  # fmt: skip
WORDS = ["华", "瑞", "恒", "泰", "信", "达", "盛", "源", "鑫", "隆", "宏", "兴", "德", "丰",
         "康", "博", "润", "佳", "祥", "通", "明", "远", "创", "新", "科", "金", "安", "嘉",
         "卓", "越", "中", "天", "海", "正", "聚", "弘", "晟", "昊", "腾", "辉", "凯", "锦",
         "致", "诚", "益", "鼎", "汇", "辰", "启", "航"]  # fmt: skip
TRADES = ["生物科技", "中药科技", "医药", "酒业", "食品", "新能源", "光伏科技", "储能科技",
          "新材料", "汽车零部件", "智能装备", "精密机械", "纺织", "服饰", "电子科技", "信息技术",
          "数据科技", "环保科技", "农业科技", "文化旅游", "健康产业", "航空科技", "机器人",
          "包装材料", "化工"]  # fmt: skip
FORMS = ["有限公司", "股份有限公司", "集团有限公司", "科技有限公司"]
SCALES = ["年产{n}万吨", "年产{n}万套", "年产{n}万件", "年产{n}亿元", "年产{n}GWh", "{n}万平方米"]
PRODUCTS = ["中药饮片", "中成药", "保健酒", "白酒", "预制菜", "功能性食品", "光伏组件", "储能电池",
            "锂电池", "风电装备", "碳纤维", "生物基材料", "汽车零部件", "汽车线束", "数控机床",
            "工业机器人", "农机装备", "纺织面料", "服装", "家纺", "电子元器件", "功率半导体",
            "无人机", "医疗器械", "植物提取物", "石墨烯材料", "环保装备", "智能终端"]  # fmt: skip
KINDS_OF_WORK = ["生产线项目", "生产基地项目", "产业园项目", "研发中心项目", "智能工厂项目",
                 "扩建项目", "技改项目", "总部项目", "仓储物流中心项目"]  # fmt: skip
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程魏"
)
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国志文博宇晨浩然思雨振峰"
FOLLOWUP_SUMMARIES = [
    "与企业负责人座谈，介绍园区产业基础和要素保障政策，企业对选址表示认可",
    "电话沟通项目进展，企业正在完成内部投资决策程序",
    "陪同企业考察备选地块，现场对接规划、供电、供水条件",
    "就投资协议条款进行洽谈，重点协商固定资产投资强度和亩均税收",
    "组织发改、自然资源、生态环境部门会商项目要素保障",
    "企业反馈董事会已原则同意投资，待确定首期投资规模",
    "赴企业总部拜访，了解产业链上下游配套需求",
    "协调解决项目施工用水用电问题，推动尽快开工",
]
NEXT_ACTIONS = ["报送项目专报", "组织现场踏勘", "起草投资协议", "对接要素保障部门", "约请企业高层回访",
                "跟进企业决策进度", "协调施工许可办理", ""]  # fmt: skip
TASK_TITLES = ["核实项目用地指标", "补充可研报告", "协调环评手续", "报送项目专报", "组织要素会商",
               "核对签约材料", "跟进注册公司进度", "准备集体决策材料", "复核亩均税收测算", "对接供电方案"]  # fmt: skip
TASK_NOTES = ["已按要求办理", "已报送并收到回复", "企业已提供材料", "已协调相关部门"]
# A 正常 project's next action is still open (its 下一步 task) for this share of them; ad hoc
# tasks per project: open, and done or cancelled.
OPEN_NEXT_ACTION_SHARE = 0.19
OPEN_TASKS_PER_PROJECT = 0.06
CLOSED_TASKS_PER_PROJECT = 0.2
LEADER_SHARE = 0.05  # of the ad hoc tasks, given by a leader (most) or to one
FUNDS_NOTES = ["设备购置款", "土建工程款", "注册资本金到位", "银行贷款到位", "厂房装修款"]
ELEMENT_NOTES = {
    ElementKind.LAND: "纳入年度新增建设用地计划统筹保障",
    ElementKind.FOREST: "选址涉及部分林地，需办理使用林地审核",
    ElementKind.ENERGY: "需开展固定资产投资项目节能审查",
    ElementKind.WATER: "生产及生活用水，接入园区供水管网",
    ElementKind.ENVIRONMENT: "化学需氧量(COD)排放总量指标",
}
# Rough shares of the projects in each stage, and of each status.
STAGE_WEIGHTS = {Stage.PLANNED: 25, Stage.ATTRACTING: 35, Stage.SIGNED: 15, Stage.STARTED: 15,
                 Stage.PRODUCING: 10}  # fmt: skip
STATUS_WEIGHTS = {Status.ACTIVE: 85, Status.ON_HOLD: 7, Status.DROPPED: 5, Status.LOST: 3}
REGIONS = ["341602", "341600", "341621", "341622", "341623", "340100", "340200", "320505",
           "330106", "310115", "440300", "370100", "410100", "510100", "420100"]  # fmt: skip


def _person(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.randint(1, 2)))


def _at(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), LOCAL_TZ).astimezone(UTC)


def _between(rng: random.Random, start: date, end: date) -> date:
    return start + timedelta(days=rng.randint(0, max(0, (end - start).days)))


def _money(value: float) -> Decimal:
    return Decimal(max(10, round(value / 10) * 10))


class _Catalogues:
    def __init__(self) -> None:
        def ids(model) -> list[int]:
            return list(db.session.scalars(sa.select(model.id).order_by(model.id)))

        self.carriers = ids(Carrier)
        self.clusters = ids(Cluster)
        self.channels = ids(Channel)
        self.reasons = ids(TerminationReason)
        self.chains: dict[int, list[int]] = {c: [] for c in self.clusters}
        for chain_id, cluster_id in db.session.execute(
            sa.select(Chain.id, Chain.cluster_id).order_by(Chain.id)
        ):
            self.chains[cluster_id].append(chain_id)
        self.template = db.session.scalar(
            sa.select(ChecklistTemplate.id).order_by(ChecklistTemplate.id.desc()).limit(1)
        )


def _ensure_users(rng: random.Random, carriers: list[int]) -> tuple[dict[int, list[int]], int]:
    """Officers of each 载体 (created, OFFICERS_PER_CARRIER each, where a 载体 has none) and
    a leader; returns the officers' ids by 载体 and the id of a user who verifies moves."""
    from crm.auth.services import create_user

    officers: dict[int, list[int]] = {c: [] for c in carriers}
    for user_id, carrier_id in db.session.execute(
        sa.select(User.id, User.carrier_id)
        .where(User.role == Role.OFFICER, User.is_active)
        .order_by(User.id)
    ):
        if carrier_id in officers:
            officers[carrier_id].append(user_id)
    for carrier_id, have in officers.items():
        carrier = db.session.get(Carrier, carrier_id)
        for i in range(OFFICERS_PER_CARRIER if not have else 0):
            user = create_user(
                None,
                username=f"gen_officer_{carrier_id}_{i + 1}",
                display_name=_person(rng),
                password=GENERATED_PASSWORD,
                enforce_password_policy=False,  # a published password
                role=Role.OFFICER,
                carrier=carrier,
            )
            have.append(user.id)
    leader = db.session.scalar(
        sa.select(User.id).where(User.role.in_([Role.LEADER, Role.ADMIN])).order_by(User.id)
    )
    if leader is None or not db.session.scalar(
        sa.select(User.id).where(User.username == "gen_leader")
    ):
        user = create_user(
            None,
            username="gen_leader",
            display_name=_person(rng),
            password=GENERATED_PASSWORD,
            enforce_password_policy=False,
            role=Role.LEADER,
        )
        leader = leader or user.id
    _ensure_taskforces_and_admin(rng)
    return officers, leader


def _ensure_taskforces_and_admin(rng: random.Random) -> None:
    """A task force for each cluster that has none (gen_taskforce_<cluster id>) and an admin
    (gen_admin), so that every role's pages can be measured at scale (`make bench`: 待办)."""
    from crm.auth.services import create_user

    staffed = set(db.session.scalars(sa.select(User.cluster_id).where(User.role == Role.TASKFORCE)))
    for cluster in db.session.scalars(sa.select(Cluster).order_by(Cluster.id)):
        if cluster.id not in staffed:
            create_user(
                None,
                username=f"gen_taskforce_{cluster.id}",
                display_name=_person(rng),
                password=GENERATED_PASSWORD,
                enforce_password_policy=False,
                role=Role.TASKFORCE,
                cluster=cluster,
            )
    if not db.session.scalar(sa.select(User.id).where(User.username == "gen_admin")):
        create_user(
            None,
            username="gen_admin",
            display_name=_person(rng),
            password=GENERATED_PASSWORD,
            enforce_password_policy=False,
            role=Role.ADMIN,
        )


# The tables written, in the order of their INSERTs (a row's parents first).
TABLES = {
    "companies": Company,
    "projects": Project,
    "stage_changes": StageChange,
    "status_changes": StatusChange,
    "followups": FollowUp,
    "element_needs": ElementNeed,
    "funds_records": FundsRecord,
    "evaluations": Evaluation,
    "tasks": Task,
}
# The order the counts are reported in.
COUNTED = ["companies", "projects", "followups", "stage_changes", "status_changes",
           "element_needs", "funds_records", "evaluations", "tasks"]  # fmt: skip


@dataclass
class _World:
    """What every project is drawn from: the generator, the catalogues, the accounts."""

    rng: random.Random
    cat: _Catalogues
    officers: dict[int, list[int]]  # by 载体
    verifier: int
    followups: int  # about this many follow-ups per project
    task_rng: random.Random  # the tasks' own draws
    others: _OtherUsers
    today: date = field(default_factory=local_today)

    @property
    def first_day(self) -> date:
        return self.today - timedelta(days=3 * 365)


@dataclass
class _Drawn:
    """One project's facts, drawn before its rows are written."""

    project_id: int
    company_id: int
    company_name: str
    carrier: int
    officer: int
    created_on: date
    stage: Stage
    status: Status
    cluster: int
    total: Decimal
    land: Decimal | None
    reached: dict[Stage, date]  # the day it moved into each stage up to its own
    signed_amount: Decimal | None
    days: list[date]  # of its follow-ups
    next_action: str
    due: date | None
    updated_on: date
    status_on: date | None
    product: str
    name: str

    @property
    def signed_on(self) -> date | None:
        return self.reached.get(Stage.SIGNED)


def generate(
    projects: int,
    seed: int = 1,
    followups: int = 10,
    progress: Callable[[int], None] | None = None,
    analyze: bool = False,
) -> dict[str, int]:
    """Write `projects` synthetic projects with their companies and history; returns the
    number of rows written per table. Commits after every chunk (the caller need not).
    `analyze`: on PostgreSQL, VACUUM ANALYZE the database afterwards (the command does)."""
    world = _prepare(seed, followups)
    next_project = (db.session.scalar(sa.select(sa.func.max(Project.id))) or 0) + 1
    next_company = (db.session.scalar(sa.select(sa.func.max(Company.id))) or 0) + 1
    counts = dict.fromkeys(COUNTED, 0)
    done = 0
    while done < projects:
        size = min(CHUNK, projects - done)
        rows: dict[str, list[dict]] = {key: [] for key in counts}
        for k in range(size):
            _add_project(world, rows, next_project + done + k, next_company + done + k)
        _insert(rows, counts)
        done += size
        if progress:
            progress(done)
    _after_explicit_ids()
    if analyze and db.engine.dialect.name == "postgresql":
        # Fresh statistics, and the visibility map that lets counts read the indexes alone.
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    return counts


def _prepare(seed: int, followups: int) -> _World:
    """The catalogues, the checklist and the accounts the projects need, committed."""
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not secrets
    seed_catalogues()
    seed_default_template()
    db.session.flush()
    cat = _Catalogues()
    # The accounts draw from their own generator: the data is the same whether they exist or not.
    officers, verifier = _ensure_users(random.Random(seed - 1), cat.carriers)  # noqa: S311
    db.session.commit()
    task_rng = random.Random(seed + 7)  # noqa: S311
    return _World(rng, cat, officers, verifier, followups, task_rng, _OtherUsers.load())


def _add_project(world: _World, rows: dict[str, list[dict]], project_id: int, company_id: int):
    """One project, its company and its history, as rows. The draws are made in this order
    whatever the rows: the same seed writes the same data."""
    company, created_on = _company_row(world, company_id)
    rows["companies"].append(company)
    p = _draw(world, project_id, company, created_on)
    if p.next_action and world.task_rng.random() >= OPEN_NEXT_ACTION_SHARE:
        p.next_action, p.due = "", None  # done long ago
    rows["projects"].append(_project_row(world, p))
    rows["stage_changes"] += _stage_change_rows(world, p)
    rows["status_changes"] += _status_change_rows(world, p)
    rows["followups"] += _followup_rows(world, p)
    rows["element_needs"] += _element_rows(world, p)
    rows["evaluations"] += _evaluation_rows(world, p)
    rows["funds_records"] += _funds_rows(world, p)
    rows["tasks"] += _task_rows(world, p)


def _company_row(world: _World, company_id: int) -> tuple[dict, date]:
    """A company's row, and the day its project is registered (a few days after it)."""
    rng = world.rng
    parts = (PLACES, WORDS, WORDS, TRADES, FORMS)
    company_name = "".join(rng.choice(words) for words in parts)
    origin = rng.choices(list(Origin), [45, 50, 5])[0]
    created_on = _between(rng, world.first_day, world.today - timedelta(days=20))
    carrier = rng.choice(world.cat.carriers)
    officer = rng.choice(world.officers[carrier])
    credit = None
    if origin is not Origin.OVERSEAS:
        body = "91" + rng.choice(REGIONS) + f"{company_id:09d}"
        credit = body + check_character(body)
    company = {
        "id": company_id,
        "name": company_name,
        "name_key": name_key(company_name),
        "credit_code": credit,
        "legal_representative": _person(rng),
        "registered_capital": _money(rng.uniform(500, 100000)),
        "origin": origin,
        "industry": rng.choice(TRADES),
        "registered_by_carrier_id": carrier,
        "created_by_id": officer,
        "created_at": _at(created_on - timedelta(days=rng.randint(1, 10)), 9),
        "updated_at": _at(created_on, 9),
        "is_deleted": False,
    }
    return company, created_on


def _draw(world: _World, project_id: int, company: dict, created_on: date) -> _Drawn:
    """The project's stage, status, figures, dates and name."""
    rng, today = world.rng, world.today
    stage = rng.choices(list(STAGE_WEIGHTS), list(STAGE_WEIGHTS.values()))[0]
    status = rng.choices(list(STATUS_WEIGHTS), list(STATUS_WEIGHTS.values()))[0]
    cluster = rng.choice(world.cat.clusters)
    total = _money(rng.lognormvariate(10, 1.0))
    land = _money(float(total) / rng.uniform(150, 600)) if rng.random() < 0.8 else None
    reached = _moves(rng, stage, created_on, today)
    signed_on = reached.get(Stage.SIGNED)
    signed_amount = _money(float(total) * rng.uniform(0.8, 1.0)) if signed_on else None
    n_followups = max(1, world.followups + rng.randint(-4, 4)) if world.followups else 0
    days = sorted(_between(rng, created_on, today) for _ in range(n_followups))
    next_action = rng.choice(NEXT_ACTIONS)
    due = today + timedelta(days=rng.randint(-20, 40)) if next_action else None
    last_move = list(reached.values())[-1]
    status_on = _between(rng, last_move, today) if status is not Status.ACTIVE else None
    product = rng.choice(PRODUCTS)
    name = rng.choice(SCALES).format(n=rng.randint(1, 50)) + product + rng.choice(KINDS_OF_WORK)
    return _Drawn(
        project_id=project_id,
        company_id=company["id"],
        company_name=company["name"],
        carrier=company["registered_by_carrier_id"],
        officer=company["created_by_id"],
        created_on=created_on,
        stage=stage,
        status=status,
        cluster=cluster,
        total=total,
        land=land,
        reached=reached,
        signed_amount=signed_amount,
        days=days,
        next_action=next_action,
        due=due,
        updated_on=max([last_move, *days[-1:]]),
        status_on=status_on,
        product=product,
        name=name,
    )


def _moves(rng: random.Random, stage: Stage, created_on: date, today: date) -> dict[Stage, date]:
    """The day of each move up to `stage`, evenly spread from creation to a little before
    today."""
    span = (today - created_on).days
    moves = [created_on]
    for _k in range(stage.order):
        moves.append(moves[-1] + timedelta(days=rng.randint(1, max(1, span // 6))))
    moves = [min(day, today) for day in moves]
    return dict(zip(list(Stage)[: stage.order + 1], moves, strict=True))


def _project_row(world: _World, p: _Drawn) -> dict:
    rng, cat = world.rng, world.cat
    total = float(p.total)
    return {
        "id": p.project_id,
        "name": p.name,
        "company_id": p.company_id,
        "search_text": search_text(p.name, p.company_name),
        "carrier_id": p.carrier,
        "cluster_id": p.cluster,
        "chain_id": rng.choice(cat.chains[p.cluster]) if cat.chains[p.cluster] else None,
        "channel_id": rng.choice(cat.channels),
        "officer_id": p.officer,
        "is_key": rng.random() < 0.1,
        "stage": p.stage,
        "status": p.status,
        "status_reason": "企业投资计划调整" if p.status is not Status.ACTIVE else "",
        "status_on": p.status_on,
        "lost_to": rng.choice(PLACES) if p.status is Status.LOST else "",
        "termination_reason_id": rng.choice(cat.reasons) if p.status is Status.DROPPED else None,
        "total_investment": p.total,
        "fixed_asset_investment": _money(total * rng.uniform(0.6, 0.9)),
        "land_area": p.land,
        "expected_output": _money(total * rng.uniform(0.8, 2.5)),
        "expected_tax": _money(total * rng.uniform(0.03, 0.1)),
        "expected_jobs": rng.randint(20, 2000),
        "description": f"建设{p.product}生产车间、仓储及配套设施，购置自动化生产设备",
        "planned_signed_on": p.created_on + timedelta(days=rng.randint(60, 300)),
        "signed_on": p.signed_on,
        "signed_amount": p.signed_amount,
        "planned_started_on": p.created_on + timedelta(days=rng.randint(200, 500)),
        "started_on": p.reached.get(Stage.STARTED),
        "planned_producing_on": p.created_on + timedelta(days=rng.randint(400, 900)),
        "producing_on": p.reached.get(Stage.PRODUCING),
        "last_followup_on": p.days[-1] if p.days else None,
        "next_action": p.next_action,
        "next_action_due": p.due,
        "created_by_id": p.officer,
        "created_at": _at(p.created_on, 10),
        "updated_at": _at(p.updated_on, 17) + timedelta(seconds=rng.randint(0, 3599)),
        "version": 1 + p.stage.order,
        "is_deleted": False,
    }


def _stage_change_rows(world: _World, p: _Drawn) -> list[dict]:
    """The stage history: moves into 签约, 开工 and 投产 verified."""
    rows, previous = [], None
    for to_stage, day in p.reached.items():
        verified = to_stage in VERIFIED_STAGES
        rows.append(
            {
                "project_id": p.project_id,
                "from_stage": previous,
                "to_stage": to_stage,
                "reason": "",
                "changed_by_id": p.officer,
                "officer_id": p.officer,
                "changed_at": _at(day, 10 if previous is None else 15),
                "verification": Verification.VERIFIED if verified else None,
                "verified_by_id": world.verifier if verified else None,
                "verified_at": _at(min(day + timedelta(days=2), world.today), 9)
                if verified
                else None,
                "verification_note": "",
            }
        )
        previous = to_stage
    return rows


def _status_change_rows(world: _World, p: _Drawn) -> list[dict]:
    if p.status is Status.ACTIVE:
        return []
    rng = world.rng
    return [
        {
            "project_id": p.project_id,
            "from_status": Status.ACTIVE,
            "to_status": p.status,
            "reason": "企业投资计划调整",
            "effective_on": p.status_on,
            "lost_to": rng.choice(PLACES) if p.status is Status.LOST else "",
            "termination_reason_id": rng.choice(world.cat.reasons)
            if p.status is Status.DROPPED
            else None,
            "changed_by_id": p.officer,
            "changed_at": _at(p.status_on, 16),
        }
    ]


def _followup_rows(world: _World, p: _Drawn) -> list[dict]:
    rng, rows = world.rng, []
    for day in p.days:
        action = rng.choice(NEXT_ACTIONS)
        rows.append(
            {
                "project_id": p.project_id,
                "kind": rng.choice(list(FollowUpKind)),
                "happened_on": day,
                "summary": rng.choice(FOLLOWUP_SUMMARIES),
                "next_action": action,
                "next_action_due": day + timedelta(days=rng.randint(3, 30)) if action else None,
                "created_by_id": p.officer,
                "created_at": _at(day, 18),
            }
        )
    return rows


def _element_rows(world: _World, p: _Drawn) -> list[dict]:
    """Element needs from 招引 on: secured (已保障) once signed."""
    if p.stage.order < Stage.ATTRACTING.order:
        return []
    rng = world.rng
    secured = p.stage.order >= Stage.SIGNED.order
    return [
        {
            "project_id": p.project_id,
            "kind": kind,
            "quantity": _money(rng.uniform(10, 5000)),
            "unit": kind.default_unit,
            "status": ElementStatus.SECURED
            if secured
            else rng.choice([ElementStatus.RAISED, ElementStatus.CONSULTING]),
            "note": ELEMENT_NOTES[kind],
            "updated_at": _at(p.reached[Stage.ATTRACTING], 11),
        }
        for kind in rng.sample(list(ElementKind), rng.randint(1, 3))
    ]


def _evaluation_rows(world: _World, p: _Drawn) -> list[dict]:
    """A passed evaluation before the signing; a draft for some projects under 招引."""
    rng, signed_on = world.rng, p.signed_on
    if not (
        world.cat.template and (signed_on or (p.stage is Stage.ATTRACTING and rng.random() < 0.2))
    ):
        return []
    day = max((signed_on or world.today) - timedelta(days=rng.randint(5, 20)), p.created_on)
    passed = signed_on is not None
    return [
        {
            "project_id": p.project_id,
            "template_id": world.cat.template,
            "state": EvaluationState.PASSED if passed else EvaluationState.DRAFT,
            "started_by_id": p.officer,
            "created_at": _at(day, 9),
            "submitted_at": _at(day, 17) if passed else None,
            "submitted_by_id": p.officer if passed else None,
            "decided_at": _at(min(day + timedelta(days=3), world.today), 10) if passed else None,
        }
    ]


def _funds_rows(world: _World, p: _Drawn) -> list[dict]:
    """Funds received from the start of construction on."""
    started_on = p.reached.get(Stage.STARTED)
    if not started_on:
        return []
    rng = world.rng
    count = rng.randint(2, 5)
    share = rng.uniform(0.15, 0.9) / count
    rows = []
    for _k in range(count):
        day = _between(rng, started_on, world.today)
        rows.append(
            {
                "project_id": p.project_id,
                "received_on": day,
                "amount": _money(float(p.signed_amount) * share),
                "note": rng.choice(FUNDS_NOTES),
                "created_by_id": p.officer,
                "created_at": _at(day, 16),
            }
        )
    return rows


@dataclass
class _OtherUsers:
    """Who besides a project's officers reads it: the task force of each cluster, leaders."""

    taskforce: dict[int, list[int]]  # by cluster
    leaders: list[int]

    @classmethod
    def load(cls) -> _OtherUsers:
        taskforce: dict[int, list[int]] = {}
        leaders = []
        for user_id, role, cluster_id in db.session.execute(
            sa.select(User.id, User.role, User.cluster_id)
            .where(User.is_active.is_(True), User.role.in_([Role.TASKFORCE, Role.LEADER]))
            .order_by(User.id)
        ):
            if role is Role.LEADER:
                leaders.append(user_id)
            else:
                taskforce.setdefault(cluster_id, []).append(user_id)
        return cls(taskforce, leaders)


def _task_rows(world: _World, p: _Drawn) -> list[dict]:
    """The project's 下一步 task while it has a next action, and a few tasks people gave each
    other on it: open ones (about a third overdue) and closed ones."""
    rng, today = world.task_rng, world.today
    rows = []
    if p.next_action and p.status is Status.ACTIVE:
        created = max(p.created_on, (p.due or today) - timedelta(days=rng.randint(5, 30)))
        rows.append(
            _task(p, TaskKind.NEXT_ACTION, p.next_action, p.due, p.officer, p.officer, created)
        )
    # Officers and task forces give each other tasks; a leader gives some and gets a few.
    workers = [*world.officers[p.carrier], *world.others.taskforce.get(p.cluster, [])]
    if p.status is not Status.ACTIVE or len(workers) < 2:
        return rows
    for closed in (False, True):
        share = CLOSED_TASKS_PER_PROJECT if closed else OPEN_TASKS_PER_PROJECT
        for _k in range(int(share) + (rng.random() < share % 1)):
            creator, assignee = rng.sample(workers, 2)
            if world.others.leaders and rng.random() < LEADER_SHARE:
                leader = rng.choice(world.others.leaders)
                creator, assignee = (leader, assignee) if rng.random() < 0.7 else (creator, leader)
            due = today + timedelta(days=rng.randint(-40, 20) if closed else rng.randint(-14, 30))
            created = max(p.created_on, due - timedelta(days=rng.randint(3, 20)))
            row = _task(p, TaskKind.TASK, rng.choice(TASK_TITLES), due, assignee, creator, created)
            if closed:
                _close(rng, row, min(due + timedelta(days=rng.randint(-3, 5)), today))
            rows.append(row)
    return rows


def _task(p: _Drawn, kind, title, due, assignee, creator, created_on) -> dict:
    at = _at(min(created_on, local_today()), 11)
    return {
        "project_id": p.project_id,
        "kind": kind,
        "title": title,
        "description": "",
        "due_on": due,
        "assignee_id": assignee,
        "status": TaskStatus.OPEN,
        "completion_note": "",
        "cancel_reason": "",
        "created_by_id": creator,
        "created_at": at,
        "updated_at": at,
        "completed_at": None,
        "completed_by_id": None,
        "cancelled_at": None,
        "cancelled_by_id": None,
    }


def _close(rng: random.Random, row: dict, day: date) -> None:
    """Done by the assignee (most), or cancelled by the creator."""
    at = max(_at(day, 16), row["created_at"])
    if rng.random() < 0.85:
        row |= {"status": TaskStatus.DONE, "completed_at": at, "completed_by_id": row["assignee_id"],
                "completion_note": rng.choice(TASK_NOTES)}  # fmt: skip
    else:
        row |= {"status": TaskStatus.CANCELLED, "cancelled_at": at,
                "cancelled_by_id": row["created_by_id"], "cancel_reason": "企业已自行办理"}  # fmt: skip
    row["updated_at"] = at


def _insert(rows: dict[str, list[dict]], counts: dict[str, int]) -> None:
    """One chunk's rows, table by table, then a commit."""
    for key, model in TABLES.items():
        if rows[key]:
            db.session.execute(sa.insert(model.__table__), rows[key])
            counts[key] += len(rows[key])
    db.session.commit()


def _after_explicit_ids() -> None:
    """On PostgreSQL, explicit ids leave the sequences behind: move them past the rows."""
    if db.engine.dialect.name != "postgresql":
        return
    # The two table names are this module's own constants, never input.
    for table in ("companies", "projects"):
        sql = (
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608 # nosec B608
            f"(SELECT coalesce(max(id), 1) FROM {table}))"
        )
        db.session.execute(sa.text(sql))
    db.session.commit()
