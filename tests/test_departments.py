"""Departments as users (issue 16): the 部门 catalogue, the role 部门用户 bound to one 部门, and
what such a user sees before 诉求 exist: nothing of the pipeline."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from crm.access import (
    Action,
    allowed_actions,
    can_read_project,
    company_scope,
    page_rights,
    project_scope,
)
from crm.audit.models import AuditEntry
from crm.auth.models import Role, User
from crm.catalog.models import Department
from crm.catalog.seed import DEPARTMENTS, seed_catalogues
from crm.extensions import db
from tests import factories

POLICY = Path(__file__).resolve().parents[2] / "shared" / "seed" / "000_6713ad706a7aef2f.txt"
STRONG = "Str0ng!pass"

# The 部门 the issue names; each must be seeded.
NAMED_IN_ISSUE = [
    "市发展改革委",
    "市自然资源和规划局",
    "市生态环境局",
    "市住房城乡建设局",
    "市城市管理局",
    "市应急局",
    "市投资促进中心",
    "市数据资源局",
    "市市场监管局",
    "市人力资源社会保障局",
    "市委人才工作局",
    "市财政局",
    "市营商环境办",
]


def _names(model) -> list[str]:
    return list(db.session.scalars(sa.select(model.name)))


# ---- the catalogue and its seed ----


def test_seed_adds_the_departments_the_policy_names_once():
    assert seed_catalogues()
    seeded = _names(Department)
    assert set(NAMED_IN_ISSUE) <= set(seeded)
    assert len(seeded) == len(set(seeded)) == len(DEPARTMENTS)
    assert not seed_catalogues()  # a second run adds nothing
    assert len(_names(Department)) == len(DEPARTMENTS)


@pytest.mark.skipif(not POLICY.is_file(), reason="the policy text is not beside the repository")
def test_every_seeded_department_is_a_unit_the_policy_names():
    text = POLICY.read_text(encoding="utf-8")
    units = set()
    for clause in re.findall(r"[(（]牵头单位[:：]([^)）]*)[)）]", text):
        units |= set(re.split(r"[、;；]|牵头单位[:：]|配合单位[:：]", clause))
    assert set(DEPARTMENTS) <= units
    # the 载体 and the task forces the clauses also name are users of their own kinds
    assert not [name for name in DEPARTMENTS if "管委会" in name or "专班" in name]


def test_admin_adds_edits_and_deactivates_a_department(world, login):
    client = login(world.admin)
    response = client.post(
        "/admin/catalog/departments/new",
        data={"name": " 市水务局 ", "short_name": "水务局", "sort_order": "3", "is_active": "y"},
    )
    assert response.status_code == 302
    department = db.session.scalar(sa.select(Department).where(Department.name == "市水务局"))
    assert (department.short_name, department.sort_order, department.is_active) == (
        "水务局",
        3,
        True,
    )
    html = client.get("/admin/catalog/departments/").get_data(as_text=True)
    assert "市水务局" in html and "水务局" in html and "简称" in html

    response = client.post(
        f"/admin/catalog/departments/{department.id}/edit",
        data={"name": "市水务局", "short_name": "", "sort_order": "3"},  # 启用 unchecked
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert department.is_active is False and department.short_name == ""
    entry = db.session.scalar(
        sa.select(AuditEntry).where(
            AuditEntry.action == "catalog_deactivated", AuditEntry.object_id == department.id
        )
    )
    assert entry.object_type == "departments"
    assert entry.changes == {"short_name": ["水务局", ""], "is_active": [True, False]}
    row = client.get("/admin/catalog/departments/").get_data(as_text=True)
    row = row[row.index("<td>市水务局</td>") :]
    assert row.index("已停用") < row.index("</tr>")


def test_department_names_are_unique_and_bounded(world, login):
    client = login(world.admin)
    response = client.post(
        "/admin/catalog/departments/new",
        data={"name": "市自然资源和规划局", "is_active": "y"},
    )
    assert response.status_code == 400
    assert 'id="name-error">已有同名的部门' in response.get_data(as_text=True)
    response = client.post(
        "/admin/catalog/departments/new",
        data={"name": "市<b>新</b>局", "short_name": "简" * 51, "is_active": "y"},
    )
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "简称不能超过 50 个字" in html and "<b>新</b>" not in html
    assert _names(Department) == ["市自然资源和规划局"]


# ---- the role and its 部门 ----


def test_a_department_user_needs_a_department_in_the_database(world):
    user = world.department
    assert user.scope_label == "市自然资源和规划局"
    with pytest.raises(sa.exc.IntegrityError), db.session.begin_nested():
        db.session.execute(sa.update(User).where(User.id == user.id).values(department_id=None))


def test_create_user_command_binds_the_department(world, runner, monkeypatch):
    monkeypatch.setenv("CRM_PASSWORD", STRONG)
    result = runner.invoke(
        args=[
            "crm",
            "create-user",
            "dept_zrzy2",
            "--role",
            "department",
            "--department",
            "市自然资源和规划局",
        ]
    )
    assert result.exit_code == 0, result.output
    assert "已创建用户 dept_zrzy2（部门用户）" in result.output
    user = db.session.scalar(sa.select(User).where(User.username == "dept_zrzy2"))
    assert user.role is Role.DEPARTMENT
    assert user.department_id == world.department.department_id
    assert (user.carrier_id, user.cluster_id) == (None, None)

    missing = runner.invoke(args=["crm", "create-user", "dept_x", "--role", "department"])
    assert missing.exit_code != 0 and "部门用户须属于一个部门" in missing.output
    unknown = runner.invoke(
        args=["crm", "create-user", "dept_y", "--role", "department", "--department", "市某局"]
    )
    assert unknown.exit_code != 0 and "没有名为“市某局”的部门" in unknown.output
    assert db.session.scalar(sa.select(User).where(User.username.in_(["dept_x", "dept_y"]))) is None


def _user_form(**overrides) -> dict:
    return {
        "username": "dept_sthj2",
        "display_name": "周雅琴",
        "role": "DEPARTMENT",
        "carrier_id": "0",
        "cluster_id": "0",
        "department_id": "0",
        "phone": "",
        "password": STRONG,
        "password_confirm": STRONG,
    } | overrides


def test_admin_creates_a_department_user_choosing_its_department(world, login):
    client = login(world.admin)
    page = client.get("/admin/users/new").get_data(as_text=True)
    assert "部门用户" in page and "市自然资源和规划局" in page

    response = client.post("/admin/users/new", data=_user_form())
    assert response.status_code == 400
    assert 'id="department_id-error">部门用户须属于一个部门' in response.get_data(as_text=True)

    sthj = factories.department("市生态环境局")
    response = client.post(
        "/admin/users/new",
        data=_user_form(department_id=str(sthj.id), carrier_id=str(world.carrier_a.id)),
    )
    assert response.status_code == 302
    user = db.session.scalar(sa.select(User).where(User.username == "dept_sthj2"))
    assert (user.role, user.department_id, user.carrier_id) == (Role.DEPARTMENT, sthj.id, None)
    assert "市生态环境局" in client.get("/admin/users").get_data(as_text=True)


def test_a_deactivated_department_is_not_chosen_but_kept_by_its_users(world, login):
    client = login(world.admin)
    user = world.department
    user.department.is_active = False
    other = factories.department("市应急局")
    db.session.flush()
    response = client.post(
        "/admin/users/new", data=_user_form(department_id=str(user.department_id))
    )
    assert response.status_code == 400  # not a choice any more
    assert db.session.scalar(sa.select(User).where(User.username == "dept_sthj2")) is None
    edit_page = client.get(f"/admin/users/{user.id}/edit").get_data(as_text=True)
    assert "市自然资源和规划局（已停用）" in edit_page

    edit = {
        "display_name": "改名",
        "role": "DEPARTMENT",
        "carrier_id": "0",
        "cluster_id": "0",
        "department_id": str(user.department_id),
        "phone": "",
        "is_active": "y",
    }
    assert client.post(f"/admin/users/{user.id}/edit", data=edit).status_code == 302
    version = user.session_version
    moved = edit | {"department_id": str(other.id)}
    assert client.post(f"/admin/users/{user.id}/edit", data=moved).status_code == 302
    db.session.expire_all()
    assert user.department_id == other.id
    assert user.session_version > version  # a change of 部门 ends the user's sessions
    entry = db.session.scalars(
        sa.select(AuditEntry)
        .where(AuditEntry.action == "user_updated", AuditEntry.object_id == user.id)
        .order_by(AuditEntry.id.desc())
    ).first()
    assert "department_id" in entry.changes


def test_only_a_department_user_keeps_a_department(world, login):
    """Changing a department user into an officer drops its 部门."""
    client = login(world.admin)
    user = world.department
    data = {
        "display_name": user.display_name,
        "role": "OFFICER",
        "carrier_id": str(world.carrier_a.id),
        "cluster_id": "0",
        "department_id": str(user.department_id),
        "phone": "",
        "is_active": "y",
    }
    assert client.post(f"/admin/users/{user.id}/edit", data=data).status_code == 302
    db.session.expire_all()
    assert (user.role, user.department_id, user.carrier_id) == (
        Role.OFFICER,
        None,
        world.carrier_a.id,
    )


# ---- what a department user sees: nothing of the pipeline yet ----


def test_a_department_user_reads_no_project_and_no_company(world):
    user = world.department
    assert not db.session.scalar(sa.select(sa.func.count()).where(project_scope(user)))
    assert not can_read_project(user, world.project_a)
    assert allowed_actions(user, world.project_a) == set()
    from crm.companies.models import Company

    readable = sa.select(sa.func.count()).select_from(Company).where(company_scope(user))
    assert db.session.scalar(readable) == 0
    rights = page_rights(user)
    assert not rights.pipeline and not rights.administer
    assert page_rights(world.officer_a).pipeline and page_rights(world.leader).pipeline
    assert Action.VIEW in allowed_actions(world.leader, world.project_a)


def test_a_department_user_gets_404_on_records_and_empty_lists(world, login):
    client = login(world.department)
    project = world.project_a
    assert client.get(f"/projects/{project.id}").status_code == 404
    assert client.get(f"/companies/{project.company_id}").status_code == 404
    for url in ("/projects/", "/companies/", "/tasks/", "/conflicts/", "/evaluations/"):
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.get_data(as_text=True)
        assert project.name not in html and world.project_b.name not in html, url
        assert project.company.name not in html, url


def test_the_department_home_says_what_will_be_listed_and_the_navigation_hides_the_rest(
    world, login
):
    client = login(world.department)
    html = client.get("/").get_data(as_text=True)
    assert "交办给市自然资源和规划局的诉求将列在这里" in html
    nav = html[html.index('aria-label="主导航"') : html.index("</nav>")]
    assert "待办" in nav
    for label in ("统计", "任务", "项目", "企业", "待决策", "冲突", "系统管理"):
        assert f">{label}<" not in nav, label

    client = login(world.officer_a)
    html = client.get("/").get_data(as_text=True)
    nav = html[html.index('aria-label="主导航"') : html.index("</nav>")]
    for label in ("统计", "任务", "项目", "企业", "待决策", "冲突"):
        assert f">{label}<" in nav, label
    assert "诉求将列在这里" not in html


# ---- the migration, with rows in the tables ----


def test_the_migration_goes_down_and_up_again_with_department_users(tmp_path):
    """Down: a department user becomes a disabled account that changes nothing (领导), its
    sign-in history kept; up again: the role and the 部门 are there for new users."""
    from flask_migrate import downgrade, upgrade

    from config import TestingConfig
    from crm import create_app
    from crm.auth.models import PasswordHistory
    from tests.test_evaluation import sessions_on
    from tests.test_migrations import script_directory, separate_database

    with separate_database(tmp_path) as url:

        class Config(TestingConfig):
            SQLALCHEMY_DATABASE_URI = url

        other = create_app(Config)
        try:
            with other.app_context():
                upgrade()
                with sessions_on(db.engine) as session:
                    world = factories.World.build()
                    session.add(PasswordHistory(user_id=world.department.id, password_hash="x"))
                    session.commit()
                    user_id, version = world.department.id, world.department.session_version

                downgrade(revision=script_directory().get_revision("5c9d2e7f4a18").down_revision)
                with db.engine.connect() as conn:
                    row = conn.execute(
                        sa.text("SELECT role, is_active, session_version FROM users WHERE id = :i"),
                        {"i": user_id},
                    ).one()
                    assert (row.role, bool(row.is_active)) == ("LEADER", False)
                    assert row.session_version == version + 1
                    kept = "SELECT count(*) FROM password_history WHERE user_id = :i"
                    assert conn.execute(sa.text(kept), {"i": user_id}).scalar() == 1
                    assert conn.execute(sa.text("SELECT count(*) FROM projects")).scalar() == 2

                upgrade()
                with sessions_on(db.engine) as session:
                    department = factories.department("市生态环境局")
                    user = factories.user(Role.DEPARTMENT, department=department)
                    session.commit()
                    assert session.get(User, user.id).department.name == "市生态环境局"
                    with pytest.raises(sa.exc.IntegrityError):
                        factories.user(Role.DEPARTMENT)
                    session.rollback()
        finally:
            with other.app_context():
                db.engine.dispose()
