"""Factory functions for test records. Each flushes, so ids exist; none commits."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from werkzeug.security import generate_password_hash

from crm.auth.models import Role, User
from crm.catalog.models import (
    Carrier,
    Chain,
    Channel,
    Cluster,
    ClusterCategory,
    Department,
    TerminationReason,
)
from crm.companies.credit_code import check_character
from crm.companies.models import Company, Contact, Origin
from crm.extensions import db
from crm.projects.models import FollowUp, FollowUpKind, Project, StageChange
from crm.projects.stages import Stage, Status

PASSWORD = "Passw0rd!"
_HASH = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1")
_seq = itertools.count(1)


def _add(obj):
    db.session.add(obj)
    db.session.flush()
    return obj


def credit_code(n: int | None = None) -> str:
    """A valid 统一社会信用代码, distinct for each n."""
    first17 = f"91341600{(n or next(_seq)):09d}"
    return first17 + check_character(first17)


def carrier(name=None) -> Carrier:
    return _add(Carrier(name=name or f"载体{next(_seq)}"))


def cluster(name=None, category=ClusterCategory.EMERGING) -> Cluster:
    return _add(Cluster(name=name or f"集群{next(_seq)}", category=category))


def chain(cluster_: Cluster, name=None) -> Chain:
    return _add(Chain(cluster=cluster_, name=name or f"产业链{next(_seq)}"))


def channel(name=None) -> Channel:
    return _add(Channel(name=name or f"渠道{next(_seq)}"))


def termination_reason(name=None) -> TerminationReason:
    return _add(TerminationReason(name=name or f"原因{next(_seq)}"))


def department(name=None) -> Department:
    return _add(Department(name=name or f"部门{next(_seq)}"))


def user(role: Role, carrier_=None, cluster_=None, username=None, **kw) -> User:
    n = next(_seq)
    return _add(
        User(
            username=username or f"{role.name.lower()}{n}",
            display_name=kw.pop("display_name", f"用户{n}"),
            password_hash=_HASH,
            role=role,
            carrier=carrier_,
            cluster=cluster_,
            **kw,
        )
    )


def company(name=None, code: str | None = "auto", **kw) -> Company:
    n = next(_seq)
    return _add(
        Company(
            name=name or f"测试企业{n}有限公司",
            credit_code=credit_code(n) if code == "auto" else code,
            origin=kw.pop("origin", Origin.OUT_OF_PROVINCE),
            **kw,
        )
    )


def project(
    carrier_: Carrier,
    cluster_: Cluster,
    officer: User,
    channel_: Channel | None = None,
    company_: Company | None = None,
    stage: Stage = Stage.PLANNED,
    **kw,
) -> Project:
    p = _add(
        Project(
            name=kw.pop("name", f"测试项目{next(_seq)}"),
            company=company_ or company(),
            carrier=carrier_,
            cluster=cluster_,
            channel=channel_ or channel(),
            officer=officer,
            stage=stage,
            status=kw.pop("status", Status.ACTIVE),
            total_investment=kw.pop("total_investment", Decimal("50000")),
            land_area=kw.pop("land_area", Decimal("100")),
            version=1,
            **kw,
        )
    )
    _add(
        StageChange(
            project_id=p.id,
            from_stage=None,
            to_stage=stage,
            changed_by_id=officer.id,
            officer_id=officer.id,
        )
    )
    return p


@dataclass
class World:
    carrier_a: Carrier
    carrier_b: Carrier
    cluster_x: Cluster
    cluster_y: Cluster
    channel: Channel
    admin: User
    leader: User
    officer_a: User
    officer_b: User
    taskforce_x: User
    taskforce_y: User
    department: User  # 部门用户 of 市自然资源和规划局 (zrzy)
    project_a: Project  # 载体 A, cluster X
    project_b: Project  # 载体 B, cluster Y

    @classmethod
    def build(cls) -> World:
        ca, cb = carrier("甲区"), carrier("乙县")
        cx, cy = cluster("新能源"), cluster("现代中医药", ClusterCategory.TRADITIONAL)
        ch = channel("链式招商")
        officer_a = user(Role.OFFICER, carrier_=ca, username="officer_a")
        officer_b = user(Role.OFFICER, carrier_=cb, username="officer_b")
        return cls(
            carrier_a=ca,
            carrier_b=cb,
            cluster_x=cx,
            cluster_y=cy,
            channel=ch,
            admin=user(Role.ADMIN, username="admin"),
            leader=user(Role.LEADER, username="leader"),
            officer_a=officer_a,
            officer_b=officer_b,
            taskforce_x=user(Role.TASKFORCE, cluster_=cx, username="taskforce_x"),
            taskforce_y=user(Role.TASKFORCE, cluster_=cy, username="taskforce_y"),
            department=user(
                Role.DEPARTMENT,
                username="department",
                department=department("市自然资源和规划局"),
            ),
            project_a=project(ca, cx, officer_a, ch, name="甲区光伏组件项目"),
            project_b=project(cb, cy, officer_b, ch, name="乙县中药饮片项目"),
        )


def today() -> date:
    from crm.core import local_today

    return local_today()


def contact(company_: Company, name=None, **kw) -> Contact:
    return _add(Contact(company_id=company_.id, name=name or f"联系人{next(_seq)}", **kw))


def followup(project_: Project, user_: User, **kw) -> FollowUp:
    """A follow-up row as stored; it does not touch the project (the service does that)."""
    return _add(
        FollowUp(
            project_id=project_.id,
            kind=kw.pop("kind", FollowUpKind.VISIT),
            happened_on=kw.pop("happened_on", today()),
            summary=kw.pop("summary", f"跟踪记录{next(_seq)}"),
            created_by_id=user_.id,
            **kw,
        )
    )
