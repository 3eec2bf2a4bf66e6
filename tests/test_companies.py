"""Companies registered once (issue 14, item 4): name matching, likely matches at registration,
finding a company another 载体 registered, and the admin's merge of duplicates."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

from crm.audit.models import AuditEntry
from crm.companies import divisions
from crm.companies.models import Company, Contact, Origin
from crm.companies.names import same_company_name, similarity, split_name
from crm.companies.services import MATCH_THRESHOLD, create_company, likely_matches, name_key
from crm.extensions import db
from crm.projects.conflicts import courting_projects
from crm.projects.models import ConflictBasis, Project, ProjectConflict
from tests import factories
from tests.test_projects import project_form


def text(response) -> str:
    return response.get_data(as_text=True)


def named(name: str, code: str | None = None, **kw) -> Company:
    return factories.company(name=name, code=code, name_key=name_key(name), **kw)


def company_form(name: str, code: str = "", **extra) -> dict:
    return {"name": name, "credit_code": code, "origin": "IN_PROVINCE", **extra}


def count(db_session, model) -> int:
    return db_session.scalar(sa.select(sa.func.count()).select_from(model))


# Names: what makes two ways of writing one company ---------------------------------------------


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("亳州华佗药业有限公司", "亳州 华佗 药业有限公司"),  # spaces
        ("亳州华佗药业有限公司", "亳州华佗药业有限公司\u3000"),  # an ideographic space
        ("ABC生物科技有限公司", "ＡＢＣ生物科技有限公司"),  # full-width letters
        ("华润医药（亳州）有限公司", "华润医药(亳州)有限公司"),  # full- and half-width brackets
        ("华润医药（亳州）有限公司", "亳州华润医药有限公司"),  # the place in brackets or in front
        ("古井贡酒（集团）股份有限公司", "古井贡酒集团有限公司"),
        ("亳州华佗药业有限公司", "亳州华佗药业有限责任公司"),  # legal forms
        ("亳州华佗药业有限公司", "亳州华佗药业股份有限公司"),
        ("安徽省亳州市华佗药业有限公司", "华佗药业有限公司"),  # a division prefix or none
        ("安徽省亳州市华佗药业有限公司", "亳州华佗药业有限公司"),
        ("安徽省亳州市谯城区华佗药业有限公司", "谯城区华佗药业有限公司"),
        ("蒙城县绿源食品有限公司", "安徽蒙城绿源食品有限公司"),
        ("广西壮族自治区桂华药业有限公司", "广西桂华药业有限公司"),
        ("上海市某某科技有限公司", "上海某某科技股份有限公司"),
    ],
)
def test_variants_of_one_name_are_the_same_company(first, second):
    a, b = split_name(first), split_name(second)
    assert a.key == b.key and a.key
    assert same_company_name(a, b)
    assert similarity(a, b) == 100


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("亳州市人民医院", "蚌埠市人民医院"),  # the same words in two places
        ("涡阳县华佗药业有限公司", "蒙城县华佗药业有限公司"),
        ("江苏华佗药业有限公司", "安徽华佗药业有限公司"),
        # Registered at two levels: usually a parent and its subsidiary, two legal persons.
        ("安徽华佗药业有限公司", "亳州华佗药业有限公司"),
        ("安徽省人民医院", "亳州市人民医院"),
        ("安徽某某药业有限公司", "安徽某某医药有限公司"),
    ],
)
def test_different_companies_stay_apart(first, second):
    a, b = split_name(first), split_name(second)
    assert not same_company_name(a, b)
    assert similarity(a, b) < MATCH_THRESHOLD


def test_a_name_is_not_emptied_by_its_prefixes():
    assert name_key("安徽省亳州市") == "亳州市"  # what remains is at least two characters
    assert name_key("合肥") == "合肥"


def test_the_division_list_covers_every_province_anhui_and_bozhou():
    assert len(divisions.PROVINCES) == 34
    assert set(divisions.ANHUI_CITIES) >= {"合肥", "芜湖", "蚌埠", "阜阳", "亳州", "宣城"}
    assert len(divisions.ANHUI_CITIES) == 16
    assert set(divisions.BOZHOU_COUNTIES) == {"谯城", "涡阳", "蒙城", "利辛"}
    assert all(divisions.PARENTS[c] == "亳州" for c in divisions.BOZHOU_COUNTIES)
    assert {"省", "市", "县", "区", "自治区"} <= {
        s for suffixes in divisions.SUFFIXES.values() for s in suffixes
    }


# likely_matches -------------------------------------------------------------------------------


def test_likely_matches_gives_company_normalised_name_and_score(db_session):
    same = named("亳州市华佗药业有限公司")
    alike = named("华佗药业科技有限公司")
    named("蚌埠华佗药业有限公司")  # another place: not offered
    named("无关企业有限公司")
    matches = likely_matches("亳州 华佗药业 股份有限公司")
    assert next((c.id, normalised, score) for c, normalised, score in matches) == (
        same.id,
        "华佗药业（亳州）",
        100.0,
    )
    scores = {m.company.id: m.score for m in matches}
    assert set(scores) == {same.id, alike.id}
    assert MATCH_THRESHOLD <= scores[alike.id] < 100


def test_likely_matches_by_credit_code_whatever_the_name(db_session):
    company = factories.company(name="名称完全不同的企业")
    pasted = "-".join([company.credit_code[:6], company.credit_code[6:]]).lower()
    ((found, _normalised, score),) = likely_matches("另一个名字", pasted)
    assert (found, score) == (company, 100.0)


def test_likely_matches_skips_deleted_merged_and_other_legal_persons(db_session):
    named("华佗药业有限公司", is_deleted=True)
    kept = named("亳州华佗药业有限公司")
    named("华佗药业股份有限公司", merged_into_id=kept.id, is_deleted=True)
    coded = named("华佗药业集团", code=factories.credit_code(777001))
    assert [m.company for m in likely_matches("华佗药业有限公司")] == [kept, coded]
    # Two different valid codes are two legal persons, however alike the names.
    assert [m.company for m in likely_matches("华佗药业", factories.credit_code(777002))] == [kept]
    assert len(likely_matches("华佗药业", limit=1)) == 1


def test_likely_matches_is_an_indexed_lookup_and_a_bounded_pass(db_session):
    """Hundreds of companies starting alike cost the same few statements, each reading an
    index (SQLite's query plan), never a scan of the companies table."""
    for n in range(300):
        db_session.add(Company(name=f"华佗{n:03d}号药业", name_key=f"华佗{n:03d}号药业",
                               origin=Origin.IN_PROVINCE))  # fmt: skip
    db_session.flush()
    # The head is filled by the column default, for bulk inserts (the ledger's) too.
    db_session.execute(
        sa.insert(Company),
        [{"name": "华佗批量药业", "name_key": "华佗批量药业", "origin": Origin.IN_PROVINCE}],
    )
    heads = db_session.scalars(sa.select(Company.name_head).where(Company.name_key.like("华佗%")))
    assert set(heads) == {"华佗"}
    statements = []

    def keep(conn, cursor, statement, parameters, context, executemany):
        statements.append((statement, parameters))

    sa.event.listen(db.engine, "before_cursor_execute", keep)
    try:
        matches = likely_matches("华佗药业", factories.credit_code(888001))
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", keep)
    assert len(statements) <= 3
    assert len(matches) <= 5
    if db.engine.dialect.name != "sqlite":
        return
    for statement, parameters in statements:
        plan = [
            row[3]
            for row in db_session.connection().exec_driver_sql(
                "EXPLAIN QUERY PLAN " + statement, parameters
            )
        ]
        assert not [line for line in plan if line.startswith("SCAN companies")], plan


# Registering a company: the form lists the likely matches first ------------------------------


def test_the_same_name_twice_without_a_code_is_warned_about(world, login, db_session):
    client = login(world.officer_a)
    assert (
        client.post("/companies/new", data=company_form("亳州华佗药业有限公司")).status_code == 302
    )
    before = count(db_session, Company)
    for variant in (
        "亳州华佗药业有限公司",
        "亳州 华佗药业有限公司",
        "安徽省亳州市华佗药业股份有限公司",
    ):
        response = client.post("/companies/new", data=company_form(variant))
        assert response.status_code == 409, variant
        html = text(response)
        assert "企业库中已有名称相近的企业" in html
        assert "亳州华佗药业有限公司" in html and "华佗药业（亳州）" in html
        assert "打开该企业" in html  # 载体 A registered it: it sees it
        assert "仍然登记" in html
        assert count(db_session, Company) == before  # nothing saved
    response = client.post(
        "/companies/new", data=company_form("亳州华佗药业有限公司", confirm_duplicate="y")
    )
    assert response.status_code == 302
    assert count(db_session, Company) == before + 1


def test_a_company_another_carrier_registered_is_offered_not_its_projects(world, login, db_session):
    """载体 B registered a company without a code and courts it; an officer of 载体 A who
    registers it again sees its name and the offer, never B's projects."""
    theirs = named("亳州华佗药业有限公司", registered_by_carrier_id=world.carrier_b.id)
    courted = factories.project(
        world.carrier_b,
        world.cluster_y,
        world.officer_b,
        world.channel,
        theirs,
        name="乙县秘密项目",
    )
    db_session.commit()
    client = login(world.officer_a)
    response = client.post("/companies/new", data=company_form("华佗药业股份有限公司"))
    assert response.status_code == 409
    html = text(response)
    assert theirs.name in html and "为该企业登记本载体的项目" in html
    assert courted.name not in html and world.officer_b.display_name not in html
    link = re.search(r'href="(/projects/new\?[^"]+)"', html).group(1).replace("&amp;", "&")
    assert f"company={theirs.id}" in link

    # The offer opens the project form for that very company; the courting rule applies.
    assert client.get(link).status_code == 200
    response = client.post(link, data=project_form(world, name="甲区华佗项目"))
    assert response.status_code == 409 and "其他载体正在跟进该企业" in text(response)
    response = client.post(
        link, data=project_form(world, name="甲区华佗项目", confirm_conflict="y")
    )
    assert response.status_code == 302
    created = db_session.scalar(sa.select(Project).where(Project.name == "甲区华佗项目"))
    assert created.company_id == theirs.id
    assert count(db_session, Company) == 3  # the world's two and this one: no duplicate
    (conflict,) = db_session.scalars(sa.select(ProjectConflict)).all()
    assert {conflict.project_id, conflict.other_project_id} == {created.id, courted.id}


def test_the_offer_cannot_be_forged(world, login, db_session):
    theirs = named("亳州华佗药业有限公司", registered_by_carrier_id=world.carrier_b.id)
    db_session.commit()
    client = login(world.officer_a)
    assert client.get(f"/projects/new?company={theirs.id}").status_code == 404
    assert client.get(f"/projects/new?company={theirs.id}&code=k0000").status_code == 404
    link = re.search(
        r'href="(/projects/new\?[^"]+)"', text(client.get("/companies/?q=华佗药业"))
    ).group(1)
    other = named("另一家企业")
    db_session.commit()
    forged = link.replace(f"company={theirs.id}", f"company={other.id}").replace("&amp;", "&")
    assert client.get(forged).status_code == 404  # the offer names one company only


# Searching the register finds what other 载体 registered --------------------------------------


@pytest.mark.parametrize("query", ["华佗药业", "安徽省亳州市华佗药业股份有限公司", "CODE"])
def test_the_search_finds_a_company_another_carrier_registered(world, login, db_session, query):
    code = factories.credit_code(555001)
    theirs = named("亳州华佗药业有限公司", code=code, registered_by_carrier_id=world.carrier_b.id)
    factories.project(
        world.carrier_b,
        world.cluster_y,
        world.officer_b,
        world.channel,
        theirs,
        name="乙县秘密项目",
    )
    db_session.commit()
    if query == "CODE":  # pasted with spaces and a hyphen
        query = f"{code[:8]} {code[8:12]}-{code[12:]}"
    html = text(login(world.officer_a).get("/companies/", query_string={"q": query}))
    assert theirs.name in html and code in html
    assert "为该企业登记本载体的项目" in html
    assert "乙县秘密项目" not in html
    # A task force or a leader registers no projects: it is not offered the link.
    html = text(login(world.taskforce_x).get("/companies/", query_string={"q": query}))
    assert "为该企业登记本载体的项目" not in html


def test_the_search_does_not_offer_what_one_sees_already(world, login, db_session):
    mine = named("亳州华佗药业有限公司", registered_by_carrier_id=world.carrier_a.id)
    db_session.commit()
    html = text(login(world.officer_a).get("/companies/?q=华佗药业"))
    assert mine.name in html and "其他载体登记的企业" not in html


# The courting rule uses the same normalisation -----------------------------------------------


def test_the_courting_rule_sees_a_division_prefix_and_brackets(world, db_session):
    theirs = named("华佗药业（亳州）有限公司")
    factories.project(world.carrier_b, world.cluster_y, world.officer_b, world.channel, theirs)
    mine = named("安徽省亳州市华佗药业股份有限公司")
    found = courting_projects(mine, world.carrier_a.id)
    assert [c.basis for c in found] == [ConflictBasis.NAME]
    elsewhere = named("蚌埠市华佗药业有限公司")
    assert courting_projects(elsewhere, world.carrier_a.id) == []


def test_two_legal_persons_with_alike_names_are_not_a_conflict(world, db_session):
    theirs = named("亳州华佗药业有限公司", code=factories.credit_code(444001))
    factories.project(world.carrier_b, world.cluster_y, world.officer_b, world.channel, theirs)
    mine = named("华佗药业股份有限公司", code=factories.credit_code(444002))
    assert courting_projects(mine, world.carrier_a.id) == []
    mine.credit_code = None  # without a code, the name decides
    assert [c.basis for c in courting_projects(mine, world.carrier_a.id)] == [ConflictBasis.NAME]


# Merging duplicates (admin) ------------------------------------------------------------------


@pytest.fixture
def duplicates(world, db_session):
    """载体 B registered 华佗药业 with a code; 载体 A registered it again without one."""
    code = factories.credit_code(666001)
    absorbed = named("亳州华佗药业有限公司", code=code, legal_representative="张三",
                     registered_by_carrier_id=world.carrier_b.id)  # fmt: skip
    kept = named("亳州市华佗药业股份有限公司", registered_by_carrier_id=world.carrier_a.id)
    theirs = factories.project(
        world.carrier_b, world.cluster_y, world.officer_b, world.channel, absorbed, name="乙县华佗"
    )
    mine = factories.project(
        world.carrier_a, world.cluster_x, world.officer_a, world.channel, kept, name="甲区华佗"
    )
    contact = factories.contact(absorbed, name="李四")
    db_session.commit()
    return absorbed, kept, theirs, mine, contact, code


def merge_form(absorbed, kept, **extra) -> dict:
    return {"absorbed_id": absorbed.id, "kept_id": kept.id, **extra}


def test_an_admin_merges_two_companies(world, login, db_session, duplicates):
    absorbed, kept, theirs, mine, contact, code = duplicates
    client = login(world.admin)
    assert "合并企业" in text(client.get("/admin/users"))  # in the admin navigation

    response = client.post("/companies/merge", data=merge_form(absorbed, kept))
    assert response.status_code == 409  # the preview, and a box to tick
    html = text(response)
    assert absorbed.name in html and kept.name in html and "请核对两家企业后勾选确认" in html
    db_session.expire_all()
    assert theirs.company_id == absorbed.id and not absorbed.is_deleted

    response = client.post("/companies/merge", data=merge_form(absorbed, kept, confirm="y"))
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/companies/{kept.id}")
    db_session.expire_all()
    assert (theirs.company_id, mine.company_id) == (kept.id, kept.id)
    assert contact.company_id == kept.id
    assert absorbed.is_deleted and absorbed.merged_into_id == kept.id
    assert kept.credit_code == code and absorbed.credit_code is None
    assert kept.legal_representative == "张三"
    # Two 载体 now court one company: the conflict is flagged.
    (conflict,) = db_session.scalars(sa.select(ProjectConflict)).all()
    assert {conflict.project_id, conflict.other_project_id} == {theirs.id, mine.id}
    actions = {
        (e.action, e.object_id)
        for e in db_session.scalars(
            sa.select(AuditEntry).where(AuditEntry.object_type == "companies")
        )
    }
    assert {("company_merged", kept.id), ("company_merged_into", absorbed.id)} <= actions

    kept_page = text(client.get(f"/companies/{kept.id}"))
    assert "已合并的重复企业" in kept_page and absorbed.name in kept_page
    assert "乙县华佗" in kept_page and "李四" in kept_page and "合并企业" in kept_page
    absorbed_page = client.get(f"/companies/{absorbed.id}")
    assert absorbed_page.status_code == 200
    assert "该企业已合并" in text(absorbed_page) and kept.name in text(absorbed_page)
    # The absorbed company is offered nowhere any more.
    assert [m.company for m in likely_matches(absorbed.name)] == [kept]


def test_the_merge_shows_to_those_who_read_the_kept_company_only(
    world, login, db_session, duplicates
):
    absorbed, kept, *_ = duplicates
    login(world.admin).post("/companies/merge", data=merge_form(absorbed, kept, confirm="y"))
    # 载体 B's officer now reads the kept company through its project.
    page = login(world.officer_b).get(f"/companies/{absorbed.id}")
    assert page.status_code == 200 and kept.name in text(page)
    stranger = factories.company(name="无关企业")
    db_session.commit()
    assert login(world.officer_b).get(f"/companies/{stranger.id}").status_code == 404
    assert login(world.taskforce_x).get(f"/companies/{absorbed.id}").status_code == 200
    other_taskforce = factories.user(factories.Role.TASKFORCE, cluster_=factories.cluster())
    db_session.commit()
    assert login(other_taskforce).get(f"/companies/{absorbed.id}").status_code == 404


@pytest.mark.parametrize("role", ["officer_a", "leader", "taskforce_x"])
def test_only_an_admin_merges(world, login, db_session, duplicates, role):
    absorbed, kept, theirs, *_ = duplicates
    client = login(getattr(world, role))
    assert client.get("/companies/merge").status_code == 403
    response = client.post("/companies/merge", data=merge_form(absorbed, kept, confirm="y"))
    assert response.status_code == 403
    db_session.expire_all()
    assert theirs.company_id == absorbed.id and not absorbed.is_deleted


def test_a_refused_merge_keeps_nothing(world, login, db_session, duplicates):
    absorbed, kept, theirs, *_ = duplicates
    kept.credit_code = factories.credit_code(666002)
    db_session.commit()
    client = login(world.admin)
    response = client.post("/companies/merge", data=merge_form(absorbed, kept, confirm="y"))
    assert response.status_code == 400
    assert "统一社会信用代码不同" in text(response)
    response = client.post("/companies/merge", data=merge_form(kept, kept, confirm="y"))
    assert response.status_code == 400 and "不能与自身合并" in text(response)
    response = client.post(
        "/companies/merge", data={"absorbed_id": 99999999, "kept_id": kept.id, "confirm": "y"}
    )
    assert response.status_code == 404 and "没有该编号的企业" in text(response)
    response = client.post("/companies/merge", data={"absorbed_id": "x", "kept_id": ""})
    assert response.status_code == 400
    db_session.expire_all()
    assert theirs.company_id == absorbed.id and not absorbed.is_deleted
    assert not db_session.scalar(
        sa.select(AuditEntry.id).where(AuditEntry.action.like("company_merged%"))
    )
    assert db_session.scalar(sa.select(Contact.company_id)) == absorbed.id


def test_a_merged_company_cannot_be_merged_again(world, login, db_session, duplicates):
    absorbed, kept, *_ = duplicates
    client = login(world.admin)
    client.post("/companies/merge", data=merge_form(absorbed, kept, confirm="y"))
    response = client.post("/companies/merge", data=merge_form(absorbed, kept, confirm="y"))
    assert response.status_code == 404 and "已被合并" in text(response)


# The migration fills the key for companies registered before it -------------------------------


def test_the_migration_recomputes_the_name_key(tmp_path):
    from config import TestingConfig
    from crm import create_app
    from tests.test_migrations import separate_database

    with separate_database(tmp_path) as url:

        class Config(TestingConfig):
            SQLALCHEMY_DATABASE_URI = url

        other = create_app(Config)
        try:
            with other.app_context():
                upgrade(revision="cffb03cd1124")
                with db.engine.begin() as conn:
                    conn.exec_driver_sql(
                        "INSERT INTO companies (name, name_key, origin, created_at, updated_at,"
                        " is_deleted, legal_representative, industry) VALUES"
                        " ('安徽省亳州市华佗药业（集团）有限公司', '安徽省亳州市华佗药业（集团）',"
                        " 'IN_PROVINCE', '2026-01-01', '2026-01-01', false, '', '')"
                    )
                upgrade()
                with db.engine.connect() as conn:
                    row = conn.exec_driver_sql("SELECT name_key, name_head FROM companies").one()
                    assert tuple(row) == ("华佗药业", "华佗")
        finally:
            with other.app_context():
                db.engine.dispose()


def test_a_service_caller_without_a_user_to_ask_is_not_stopped(world, db_session):
    named("亳州华佗药业有限公司")
    company = create_company(
        world.officer_a, {"name": "亳州华佗药业有限公司", "origin": Origin.IN_PROVINCE}
    )
    assert company.id
