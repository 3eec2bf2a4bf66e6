"""Cross-载体 conflicts (跨载体冲突) and hand-overs (流转), measures 13 and 21."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
import sqlalchemy as sa

from crm.audit.models import AuditEntry
from crm.companies.models import Company
from crm.companies.services import name_key
from crm.projects.conflicts import courting_projects, record_conflicts
from crm.projects.models import (
    ConflictBasis,
    FollowUp,
    Handover,
    HandoverState,
    Project,
    ProjectConflict,
)
from crm.projects.registration import CourtingUnconfirmed, create_project
from crm.projects.stages import Stage, Status
from tests import factories
from tests.test_projects import project_form


def text(response) -> str:
    return response.get_data(as_text=True)


def named_company(name: str, **kw) -> Company:
    return factories.company(name=name, name_key=name_key(name), **kw)


def conflicts(db_session) -> list[ProjectConflict]:
    return db_session.scalars(sa.select(ProjectConflict).order_by(ProjectConflict.id)).all()


# Detection -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("安徽 某某 药业有限公司", "安徽某某药业股份有限公司"),
        ("亳州华康集团有限公司", "亳州华康"),
        ("ＡＢＣ Technology Co.,Ltd.", "abctechnology"),
        ("江苏金澜生物医药(中国)有限公司", "江苏金澜生物医药有限责任公司"),
    ],
)
def test_names_that_differ_only_in_spaces_and_suffixes_are_the_same_company(first, second):
    assert name_key(first) == name_key(second)


def test_different_names_are_different_companies():
    assert name_key("安徽某某药业有限公司") != name_key("安徽某某医药有限公司")


def test_courting_by_credit_code_and_by_name(world, db_session):
    company_b = world.project_b.company
    # The same record (same credit code) courted by 载体 B.
    found = courting_projects(company_b, world.carrier_a.id)
    assert [(c.project, c.basis) for c in found] == [(world.project_b, ConflictBasis.CREDIT_CODE)]
    # Not a conflict within the same 载体.
    assert courting_projects(company_b, world.carrier_b.id) == []
    # A differently written name of a company courted elsewhere.
    other = named_company("安徽 华佗 药业有限公司", code=None)
    factories.project(world.carrier_b, world.cluster_y, world.officer_b, world.channel, other)
    variant = named_company("安徽华佗药业股份有限公司")
    found = courting_projects(variant, world.carrier_a.id)
    assert [c.basis for c in found] == [ConflictBasis.NAME]


def test_only_projects_still_courted_count(world, db_session):
    company_b = world.project_b.company
    world.project_b.status = Status.DROPPED
    assert courting_projects(company_b, world.carrier_a.id) == []
    world.project_b.status = Status.ON_HOLD
    assert len(courting_projects(company_b, world.carrier_a.id)) == 1


def test_a_pair_is_recorded_once(world, db_session):
    project = factories.project(
        world.carrier_a, world.cluster_x, world.officer_a, world.channel, world.project_b.company
    )
    assert len(record_conflicts(world.officer_a, project)) == 1
    assert record_conflicts(world.officer_a, project) == []
    assert len(conflicts(db_session)) == 1


# Registering a project for a company another 载体 courts ---------------------------------------


def test_the_form_warns_before_saving_and_flags_the_conflict(world, login, db_session):
    company = world.project_b.company
    company.registered_by_carrier_id = world.carrier_a.id  # visible to 载体 A
    db_session.commit()
    client = login(world.officer_a)
    url = f"/projects/new?company={company.id}"

    response = client.post(url, data=project_form(world, name="甲区同一企业项目"))
    assert response.status_code == 409
    html = text(response)
    assert "其他载体正在跟进该企业" in html
    assert world.carrier_b.name in html and world.project_b.name in html
    assert "仍然保存" in html
    assert db_session.scalar(sa.select(sa.func.count(Project.id))) == 2
    assert conflicts(db_session) == []

    response = client.post(
        url, data=project_form(world, name="甲区同一企业项目", confirm_conflict="y")
    )
    assert response.status_code == 302
    created = db_session.scalar(sa.select(Project).where(Project.name == "甲区同一企业项目"))
    (conflict,) = conflicts(db_session)
    assert (conflict.project_id, conflict.other_project_id) == (created.id, world.project_b.id)
    assert conflict.basis is ConflictBasis.CREDIT_CODE
    assert conflict.resolved_at is None
    assert db_session.scalar(
        sa.select(AuditEntry.id).where(AuditEntry.action == "conflict_detected")
    )
    page = text(client.get(f"/projects/{created.id}"))
    assert "跨载体冲突" in page and world.carrier_b.name in page


def test_a_company_already_registered_elsewhere_is_reused(world, login, db_session):
    """An officer of 载体 A types the credit code of 载体 B's company: the form offers to
    register A's project against that company instead of a duplicate."""
    company = world.project_b.company
    company.registered_by_carrier_id = world.carrier_b.id
    db_session.commit()
    client = login(world.officer_a)
    assert client.get(f"/companies/{company.id}").status_code == 404  # not A's yet

    response = client.post(
        "/companies/new",
        data={"name": "随便写的名字", "credit_code": company.credit_code, "origin": "IN_PROVINCE"},
    )
    assert response.status_code == 400
    html = text(response)
    assert f"该企业已在库中（由{world.carrier_b.name}登记）" in html
    assert company.name in html
    link = re.search(r'href="(/projects/new\?[^"]+)"', html).group(1).replace("&amp;", "&")
    assert f"company={company.id}" in link and f"code={company.credit_code}" in link
    assert db_session.scalar(sa.select(sa.func.count(Company.id))) == 2

    assert client.get(link).status_code == 200
    assert client.get(f"/projects/new?company={company.id}").status_code == 404
    wrong = factories.credit_code(424242)
    assert client.get(f"/projects/new?company={company.id}&code={wrong}").status_code == 404
    response = client.post(link, data=project_form(world, name="甲区复用企业项目"))
    assert response.status_code == 409
    response = client.post(
        link, data=project_form(world, name="甲区复用企业项目", confirm_conflict="y")
    )
    assert response.status_code == 302
    created = db_session.scalar(sa.select(Project).where(Project.name == "甲区复用企业项目"))
    assert created.company_id == company.id and created.carrier_id == world.carrier_a.id
    assert len(conflicts(db_session)) == 1
    # Now 载体 A courts the company too, and sees it.
    assert client.get(f"/companies/{company.id}").status_code == 200


def test_the_company_search_offers_the_company_registered_elsewhere(world, login, db_session):
    company = world.project_b.company
    db_session.commit()
    html = text(login(world.officer_a).get(f"/companies/?q={company.credit_code}"))
    assert "该企业已在库中" in html and "为该企业登记本载体的项目" in html
    html = text(login(world.leader).get(f"/companies/?q={company.credit_code}"))
    assert "该企业已在库中" not in html  # the leader sees the company itself


def test_only_registering_roles_may_reach_a_company_by_its_code(world, login, db_session):
    company = world.project_b.company
    db_session.commit()
    url = f"/projects/new?company={company.id}&code={company.credit_code}"
    assert login(world.leader).get(url).status_code == 403
    assert login(world.taskforce_x).get(url).status_code == 403


def test_a_name_variant_is_warned_about_too(world, login, db_session):
    courted = named_company("安徽 华佗 药业有限公司", code=None)
    factories.project(world.carrier_b, world.cluster_y, world.officer_b, world.channel, courted)
    db_session.commit()
    client = login(world.officer_a)
    values = {"name": "安徽华佗药业股份有限公司", "credit_code": "", "origin": "IN_PROVINCE"}
    response = client.post("/companies/new", data=values)
    assert response.status_code == 409  # registering it warns first: likely the same company
    assert "安徽 华佗 药业有限公司" in text(response)
    response = client.post("/companies/new", data={**values, "confirm_duplicate": "y"})
    company_id = int(response.headers["Location"].rsplit("/", 1)[1])
    response = client.post(f"/projects/new?company={company_id}", data=project_form(world))
    assert response.status_code == 409
    assert "企业名称相同" in text(response)


def registration_values(world, carrier) -> dict:
    return {
        "name": "甲区同一企业项目",
        "carrier_id": carrier.id,
        "cluster_id": world.cluster_x.id,
        "channel_id": world.channel.id,
        "officer_id": world.officer_a.id,
        "is_key": False,
        "total_investment": Decimal(20000),
    }


def test_the_service_refuses_an_unconfirmed_registration_and_lists_the_courting(world, db_session):
    company = world.project_b.company
    # The officer's own 载体 counts, whatever the values name.
    values = registration_values(world, world.carrier_b)
    with pytest.raises(CourtingUnconfirmed) as refused:
        create_project(world.officer_a, company, values, Stage.PLANNED, courting_confirmed=False)
    assert [(c.project, c.basis) for c in refused.value.courting] == [
        (world.project_b, ConflictBasis.CREDIT_CODE)
    ]
    assert db_session.scalar(sa.select(sa.func.count(Project.id))) == 2

    project = create_project(world.officer_a, company, values, Stage.PLANNED)
    assert project.carrier_id == world.carrier_a.id
    assert [(c.project_id, c.other_project_id) for c in conflicts(db_session)] == [
        (project.id, world.project_b.id)
    ]


def test_a_confirmed_registration_a_rule_refuses_keeps_nothing(world, login, db_session):
    company = world.project_b.company
    company.registered_by_carrier_id = world.carrier_a.id
    db_session.commit()
    client = login(world.officer_a)
    url = f"/projects/new?company={company.id}"
    refused = project_form(
        world, planned_signed_on="2030-06-01", planned_started_on="2030-01-01", confirm_conflict="y"
    )
    response = client.post(url, data=refused)
    assert response.status_code == 400
    assert "计划开工日期不能早于计划签约日期" in text(response)
    assert db_session.scalar(sa.select(sa.func.count(Project.id))) == 2
    assert conflicts(db_session) == []

    response = client.post(url, data=project_form(world, confirm_conflict="y"))
    assert response.status_code == 302
    with client.session_transaction() as session:
        flashed = [message for _category, message in session["_flashes"]]
    assert "已登记为跨载体冲突，待产业专班或领导协调处理" in flashed
    assert len(conflicts(db_session)) == 1


def test_a_registration_nobody_courts_is_not_flagged(world, login, db_session):
    company = factories.company(name="无人跟进的企业")
    company.registered_by_carrier_id = world.carrier_a.id
    db_session.commit()
    client = login(world.officer_a)
    response = client.post(f"/projects/new?company={company.id}", data=project_form(world))
    assert response.status_code == 302
    with client.session_transaction() as session:
        flashed = [message for _category, message in session["_flashes"]]
    assert flashed == ["已登记项目“皖北储能电池项目”"]
    assert conflicts(db_session) == []


# Settling conflicts ----------------------------------------------------------------------------


@pytest.fixture
def conflict(world, db_session) -> ProjectConflict:
    project = factories.project(
        world.carrier_a,
        world.cluster_x,
        world.officer_a,
        world.channel,
        world.project_b.company,
        name="甲区重复招引项目",
    )
    (found,) = record_conflicts(world.officer_a, project)
    db_session.commit()
    return found


@pytest.mark.parametrize(
    ("role", "sees", "resolves"),
    [
        ("leader", True, True),
        ("admin", True, True),
        ("taskforce_x", True, True),  # the cluster of the new project
        ("taskforce_y", True, True),  # the cluster of the courted one
        ("officer_a", True, False),
        ("officer_b", True, False),
    ],
)
def test_the_conflicts_page_by_role(world, login, conflict, role, sees, resolves):
    html = text(login(getattr(world, role)).get("/conflicts/"))
    assert ("甲区重复招引项目" in html) is sees
    assert ("标记为已处理" in html) is resolves


def test_a_conflict_outside_ones_scope_is_not_shown(world, login, conflict, db_session):
    outsider = factories.user(factories.Role.TASKFORCE, cluster_=factories.cluster("未来产业集群"))
    db_session.commit()
    client = login(outsider)
    assert "甲区重复招引项目" not in text(client.get("/conflicts/"))
    url = f"/conflicts/{conflict.id}/resolve"
    assert client.post(url, data={f"c{conflict.id}-note": "x"}).status_code == 404


def test_resolving_a_conflict_needs_a_note(world, login, conflict, db_session):
    client = login(world.taskforce_x)
    url = f"/conflicts/{conflict.id}/resolve"
    response = client.post(url, data={f"c{conflict.id}-note": ""})
    assert response.status_code == 400
    assert "请写明处理结果" in text(response)
    response = client.post(url, data={f"c{conflict.id}-note": "经协调由乙县继续跟进"})
    assert response.status_code == 302
    db_session.expire_all()
    assert conflict.resolved_at is not None
    assert conflict.resolved_by_id == world.taskforce_x.id
    assert conflict.resolution_note == "经协调由乙县继续跟进"
    html = text(client.get("/conflicts/"))
    assert "没有待处理的跨载体冲突" in html and "经协调由乙县继续跟进" in html
    # Settled once: a second resolution is refused as already decided, its note not kept.
    response = client.post(url, data={f"c{conflict.id}-note": "再次"})
    assert response.status_code == 409 and "该事项刚被他人处理" in text(response)
    db_session.expire_all()
    assert conflict.resolution_note == "经协调由乙县继续跟进"


def test_officers_cannot_resolve(world, login, conflict, db_session):
    client = login(world.officer_a)
    response = client.post(f"/conflicts/{conflict.id}/resolve", data={f"c{conflict.id}-note": "x"})
    assert response.status_code == 403
    db_session.expire_all()
    assert conflict.resolved_at is None


# 流转 (hand-over) --------------------------------------------------------------------------------


def handover_form(world, project=None, **overrides) -> dict:
    data = {
        "version": (project or world.project_a).version,
        "to_carrier_id": world.carrier_b.id,
        "officer_id": world.officer_b.id,
        "reason": "项目选址调整至乙县工业园",
        "benefit_sharing": "投产后前三年税收地方留成部分按 5:5 分享",
        "confirm": "y",
    }
    data.update(overrides)
    return data


def test_the_task_force_hands_a_project_over(world, login, db_session):
    project = world.project_a
    factories.followup(project, world.officer_a, summary="移交前的跟踪记录")
    db_session.commit()
    client = login(world.taskforce_x)
    assert "流转至其他载体" in text(client.get(f"/projects/{project.id}"))
    response = client.post(f"/projects/{project.id}/handover", data=handover_form(world, project))
    assert response.status_code == 302
    db_session.expire_all()
    # Offered: the project waits for 载体 B, still with 载体 A and its officer.
    assert (project.carrier_id, project.officer_id) == (world.carrier_a.id, world.officer_a.id)
    handover = db_session.scalar(sa.select(Handover).where(Handover.project_id == project.id))
    assert handover.state is HandoverState.PENDING
    assert handover.from_carrier_id == world.carrier_a.id
    assert handover.to_carrier_id == world.carrier_b.id
    assert handover.handed_by_id == world.taskforce_x.id
    assert handover.from_officer_id == world.officer_a.id
    assert handover.proposed_officer_id == world.officer_b.id
    assert handover.benefit_sharing.startswith("投产后")
    assert db_session.scalar(
        sa.select(AuditEntry.id).where(AuditEntry.action == "handover_offered")
    )

    # 载体 B's officer accepts, keeping the proposed 责任人.
    receiver = login(world.officer_b)
    url = f"/projects/{project.id}/handovers/{handover.id}/accept"
    assert receiver.post(url, data={"officer_id": world.officer_b.id}).status_code == 302
    db_session.expire_all()
    assert project.carrier_id == world.carrier_b.id
    assert project.officer_id == world.officer_b.id
    assert handover.state is HandoverState.ACCEPTED
    assert (handover.decided_by_id, handover.officer_id) == (world.officer_b.id, world.officer_b.id)
    assert db_session.scalar(
        sa.select(AuditEntry.id).where(AuditEntry.action == "project_handed_over")
    )

    # The new 载体 works on it, with its history; the old one sees where it went.
    page = text(receiver.get(f"/projects/{project.id}"))
    assert f"流转 {world.carrier_a.name} → {world.carrier_b.name}" in page
    assert "移交前的跟踪记录" in page and "收益分享" in page
    old = login(world.officer_a)
    assert old.get(f"/projects/{project.id}").status_code == 404
    assert (
        db_session.scalar(
            sa.select(sa.func.count(FollowUp.id)).where(FollowUp.project_id == project.id)
        )
        == 1
    )


@pytest.mark.parametrize(
    ("role", "status"),
    [("officer_a", 403), ("leader", 302), ("admin", 302), ("taskforce_y", 404)],
)
def test_who_may_hand_over(world, login, db_session, role, status):
    db_session.commit()
    response = login(getattr(world, role)).post(
        f"/projects/{world.project_a.id}/handover", data=handover_form(world)
    )
    assert response.status_code == status


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"confirm": ""}, "请勾选确认后再流转"),
        ({"reason": ""}, "请说明流转原因"),
        ({"officer_id": 0}, "请选择接收载体的招商专员"),
    ],
)
def test_a_hand_over_needs_its_fields(world, login, db_session, change, message):
    db_session.commit()
    response = login(world.leader).post(
        f"/projects/{world.project_a.id}/handover", data=handover_form(world, **change)
    )
    assert response.status_code == 400
    assert message in text(response)
    db_session.expire_all()
    assert world.project_a.carrier_id == world.carrier_a.id


def test_the_new_officer_must_belong_to_the_new_carrier(world, login, db_session):
    third = factories.carrier("丙园区")
    factories.user(factories.Role.OFFICER, carrier_=third, username="officer_c")
    db_session.commit()
    response = login(world.leader).post(
        f"/projects/{world.project_a.id}/handover",
        data=handover_form(world, to_carrier_id=third.id),
    )
    assert response.status_code == 400
    assert "责任人须是丙园区的招商专员" in text(response)


def test_a_hand_over_settles_a_conflict_within_the_new_carrier(world, login, conflict, db_session):
    project = conflict.project  # 载体 A; the other project is in 载体 B
    leader = login(world.leader)
    response = leader.post(f"/projects/{project.id}/handover", data=handover_form(world, project))
    assert response.status_code == 302
    db_session.expire_all()
    assert conflict.resolved_at is None  # offered only: the two projects are in two 载体 still
    handover = db_session.scalar(sa.select(Handover).where(Handover.project_id == project.id))
    url = f"/projects/{project.id}/handovers/{handover.id}/accept"
    assert leader.post(url, data={"officer_id": world.officer_b.id}).status_code == 302
    db_session.expire_all()
    assert conflict.resolved_at is not None
    assert "同属一个载体" in conflict.resolution_note


@pytest.mark.parametrize("version", ["stale", "missing"])
def test_a_hand_over_from_a_page_older_than_the_project_is_refused(
    world, login, db_session, version
):
    """Two people open the project page; one hands it over to 载体 B. The other's page, to
    载体 C, is answered 409 and the project stays where the first hand-over put it — also
    on SQLite, where the two requests run one after the other."""
    third = factories.carrier("丙园区")
    officer_c = factories.user(factories.Role.OFFICER, carrier_=third, username="officer_c")
    db_session.commit()
    project = world.project_a
    seen = handover_form(world, project)  # the page both people opened
    leader = login(world.leader)
    assert leader.post(f"/projects/{project.id}/handover", data=seen).status_code == 302

    late = {**seen, "to_carrier_id": third.id, "officer_id": officer_c.id}
    if version == "missing":
        late.pop("version")
    response = leader.post(f"/projects/{project.id}/handover", data=late)
    assert response.status_code == 409
    assert "该事项刚被他人处理" in text(response)
    db_session.expire_all()
    pending = db_session.scalar(sa.select(Handover).where(Handover.project_id == project.id))
    assert (pending.to_carrier_id, pending.state) == (world.carrier_b.id, HandoverState.PENDING)
    assert project.carrier_id == world.carrier_a.id
    assert (
        db_session.scalar(
            sa.select(sa.func.count(Handover.id)).where(Handover.project_id == project.id)
        )
        == 1
    )
