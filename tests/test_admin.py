"""Admin pages (系统管理): who may open them, user accounts, the catalogues, the audit trail."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from crm.audit.models import AuditEntry
from crm.auth.models import Role, User
from crm.catalog.models import Carrier, Chain, Channel, Cluster, TerminationReason
from crm.catalog.services import CATALOG_KINDS
from crm.extensions import db
from tests import factories

STRONG = "Str0ng!pass"


def _count(model, *where) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def _audit(action: str, obj) -> list[AuditEntry]:
    return list(
        db.session.scalars(
            sa.select(AuditEntry).where(
                AuditEntry.action == action,
                AuditEntry.object_type == obj.__tablename__,
                AuditEntry.object_id == obj.id,
            )
        )
    )


def _user_form(**overrides) -> dict:
    data = {
        "username": "zhang_san",
        "display_name": "张三",
        "role": "OFFICER",
        "carrier_id": "0",
        "cluster_id": "0",
        "phone": "0558-5555555",
        "password": STRONG,
        "password_confirm": STRONG,
    }
    data.update(overrides)
    return data


def _edit_form(user: User, **overrides) -> dict:
    data = {
        "display_name": user.display_name,
        "role": user.role.name,
        "carrier_id": str(user.carrier_id or 0),
        "cluster_id": str(user.cluster_id or 0),
        "phone": user.phone,
        "is_active": "y",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


# ---- access ----


@pytest.fixture
def admin_urls(world):
    """Every admin URL with a real object in it, as (method, url)."""
    entries = {
        "carriers": world.carrier_a,
        "clusters": world.cluster_x,
        "chains": factories.chain(world.cluster_x),
        "channels": world.channel,
        "termination-reasons": factories.termination_reason(),
        "departments": world.department.department,
    }
    urls = [
        ("GET", "/admin/users"),
        ("GET", "/admin/users/new"),
        ("POST", "/admin/users/new"),
        ("GET", f"/admin/users/{world.officer_a.id}/edit"),
        ("POST", f"/admin/users/{world.officer_a.id}/edit"),
        ("GET", "/admin/audit"),
        ("GET", "/admin/audit/export.csv"),
        ("GET", "/admin/jobs"),
    ]
    for kind in CATALOG_KINDS:
        entry = entries[kind.slug]
        urls += [
            ("GET", f"/admin/catalog/{kind.slug}/"),
            ("GET", f"/admin/catalog/{kind.slug}/new"),
            ("POST", f"/admin/catalog/{kind.slug}/new"),
            ("GET", f"/admin/catalog/{kind.slug}/{entry.id}/edit"),
            ("POST", f"/admin/catalog/{kind.slug}/{entry.id}/edit"),
        ]
    return urls


def test_admin_urls_cover_every_admin_route(app, admin_urls):
    adapter = app.url_map.bind("localhost")
    walked = {adapter.match(url, method=method)[0] for method, url in admin_urls}
    routes = {
        rule.endpoint for rule in app.url_map.iter_rules() if rule.endpoint.startswith("admin.")
    }
    assert walked == routes


def test_anonymous_is_sent_to_login(client, admin_urls):
    for method, url in admin_urls:
        response = client.open(url, method=method)
        assert response.status_code == 302, url
        assert "/login" in response.headers["Location"], url


@pytest.mark.parametrize("who", ["officer_a", "taskforce_x", "leader"])
def test_other_roles_are_refused(world, login, admin_urls, who):
    client = login(getattr(world, who))
    for method, url in admin_urls:
        assert client.open(url, method=method, data={}).status_code == 403, (method, url)
    # nothing was changed by the refused POSTs
    assert not db.session.scalar(
        sa.select(AuditEntry.id).where(AuditEntry.action.like("catalog_%")).limit(1)
    )


def test_admin_opens_every_page(world, login, admin_urls):
    client = login(world.admin)
    for _method, url in [u for u in admin_urls if u[0] == "GET"]:
        response = client.get(url)
        assert response.status_code == 200, url
        if not url.endswith(".csv"):
            assert "用户管理" in response.get_data(as_text=True)  # the sub-navigation


def test_unknown_catalogue_or_entry_is_404(world, login):
    client = login(world.admin)
    assert client.get("/admin/catalog/planets/").status_code == 404
    assert client.get("/admin/catalog/carriers/999999/edit").status_code == 404
    assert client.get("/admin/users/999999/edit").status_code == 404


def test_admin_nav_link_only_for_admins(world, login):
    assert "系统管理" in login(world.admin).get("/").get_data(as_text=True)
    assert "系统管理" not in login(world.officer_a).get("/").get_data(as_text=True)


# ---- users ----


def test_user_list_shows_role_scope_state_and_last_login(world, login):
    world.officer_b.is_active = False
    db.session.flush()
    client = login(world.admin)  # sets the admin's last login
    html = client.get("/admin/users").get_data(as_text=True)
    assert "officer_a" in html and "甲区" in html and "招商专员" in html
    assert "新能源专班" in html
    assert "已停用" in html
    assert "从未登录" in html  # the others have never signed in


def test_user_list_search_and_filter(world, login):
    client = login(world.admin)
    html = client.get("/admin/users?q=OFFICER_").get_data(as_text=True)
    assert "officer_a" in html and "officer_b" in html and "taskforce_x" not in html
    html = client.get("/admin/users?role=TASKFORCE").get_data(as_text=True)
    assert "taskforce_x" in html and "officer_a" not in html
    world.officer_b.is_active = False
    db.session.flush()
    html = client.get("/admin/users?active=0").get_data(as_text=True)
    assert "officer_b" in html and "officer_a" not in html
    # a name search finds display names; % is a literal, not a wildcard
    world.leader.display_name = "王市长"
    db.session.flush()
    html = client.get("/admin/users?q=市长").get_data(as_text=True)
    assert "leader" in html and "admin</td>" not in html
    assert "没有符合条件的用户" in client.get("/admin/users?q=%25").get_data(as_text=True)
    # an unknown role value is ignored, not an error
    assert client.get("/admin/users?role=BOGUS").status_code == 200


def test_user_list_paginates(world, login, app, monkeypatch):
    monkeypatch.setitem(app.config, "PAGE_SIZE", 2)
    client = login(world.admin)
    html = client.get("/admin/users").get_data(as_text=True)
    assert "下一页" in html and "共 7 条" in html
    page4 = client.get("/admin/users?page=4").get_data(as_text=True)
    assert "taskforce_y" in page4 and "上一页" in page4


def test_user_list_query_count_does_not_grow_with_users(world, login, count_queries):
    client = login(world.admin)
    with count_queries() as before:
        client.get("/admin/users")
    for _ in range(5):
        factories.user(Role.OFFICER, carrier_=factories.carrier())
        factories.user(Role.TASKFORCE, cluster_=factories.cluster())
    with count_queries() as after:
        client.get("/admin/users")
    assert after.count == before.count


def test_create_officer_without_carrier_is_refused_at_the_field(world, login):
    client = login(world.admin)
    response = client.post("/admin/users/new", data=_user_form(carrier_id="0"))
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert 'id="carrier_id-error">招商专员须属于一个载体' in html
    assert _count(User, User.username == "zhang_san") == 0


def test_create_taskforce_without_cluster_is_refused(world, login):
    client = login(world.admin)
    response = client.post("/admin/users/new", data=_user_form(role="TASKFORCE"))
    assert response.status_code == 400
    assert 'id="cluster_id-error">产业专班须对应一个产业集群' in response.get_data(as_text=True)


def test_admin_creates_user_who_can_log_in(world, login, client):
    admin_client = login(world.admin)
    response = admin_client.post(
        "/admin/users/new",
        data=_user_form(carrier_id=str(world.carrier_a.id), cluster_id=str(world.cluster_x.id)),
    )
    assert response.status_code == 302
    assert "已创建用户 zhang_san" in admin_client.get("/admin/users").get_data(as_text=True)
    user = db.session.scalar(sa.select(User).where(User.username == "zhang_san"))
    assert user.role is Role.OFFICER
    assert user.carrier_id == world.carrier_a.id
    assert user.cluster_id is None  # only a task force has a cluster
    assert user.phone == "0558-5555555"
    entry = _audit("user_created", user)[0]
    assert entry.user_id == world.admin.id
    assert "***" not in str(entry.changes) and STRONG not in str(entry.summary)

    client = login(user, password=STRONG)
    # an account an admin made chooses its own password first (tests/test_security.py)
    assert client.get("/").headers["Location"] == "/account/password"
    response = client.post(
        "/account/password",
        data={
            "current_password": STRONG,
            "password": "Mine!2026pw",
            "password_confirm": "Mine!2026pw",
        },
    )
    assert response.status_code == 302
    assert "张三" in client.get("/").get_data(as_text=True)


def test_weak_password_is_rejected(world, login):
    client = login(world.admin)
    data = _user_form(carrier_id=str(world.carrier_a.id), password="abcdefgh")
    data["password_confirm"] = "abcdefgh"
    response = client.post("/admin/users/new", data=data)
    assert response.status_code == 400
    assert "密码须包含大写字母、小写字母、数字、符号中的至少三类" in response.get_data(as_text=True)
    assert _count(User, User.username == "zhang_san") == 0

    short = client.post(
        f"/admin/users/{world.officer_a.id}/edit",
        data=_edit_form(world.officer_a, password="Ab1!", password_confirm="Ab1!"),
    )
    assert short.status_code == 400
    assert "密码至少 8 位" in short.get_data(as_text=True)


def test_password_confirmation_must_match(world, login):
    client = login(world.admin)
    data = _user_form(carrier_id=str(world.carrier_a.id), password_confirm="Other!pass1")
    response = client.post("/admin/users/new", data=data)
    assert response.status_code == 400
    assert "两次输入的密码不一致" in response.get_data(as_text=True)


def test_duplicate_or_malformed_username_is_refused(world, login):
    client = login(world.admin)
    response = client.post("/admin/users/new", data=_user_form(username="Officer_A", role="LEADER"))
    assert response.status_code == 400
    assert "该用户名已存在" in response.get_data(as_text=True)
    response = client.post("/admin/users/new", data=_user_form(username="张 三", role="LEADER"))
    assert response.status_code == 400
    assert "用户名只能包含英文字母" in response.get_data(as_text=True)


def test_invalid_choice_message_is_chinese(world, login):
    client = login(world.admin)
    response = client.post("/admin/users/new", data=_user_form(role="EMPEROR"))
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "选择" in html and "Not a valid" not in html and "Invalid" not in html


def test_disabling_a_user_prevents_login(world, login, app):
    officer = world.officer_a
    # the officer has a session open in another browser
    other = app.test_client()
    other.post("/login", data={"username": officer.username, "password": factories.PASSWORD})
    assert other.get("/").status_code == 200

    client = login(world.admin)
    response = client.post(
        f"/admin/users/{officer.id}/edit", data=_edit_form(officer, is_active=None)
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert officer.is_active is False
    assert _audit("user_disabled", officer)[0].changes["is_active"] == [True, False]
    assert "已停用" in client.get("/admin/users?active=0").get_data(as_text=True)

    client.post("/logout")
    response = client.post(
        "/login", data={"username": officer.username, "password": factories.PASSWORD}
    )
    assert response.status_code == 200
    assert "账号已停用" in response.get_data(as_text=True)

    # The open session ends too. A fresh app context, because the fixtures keep one pushed for
    # the whole test and Flask-Login caches the current user in its `g`; leaving it closes
    # the test's session, so this comes last.
    with app.app_context():
        assert other.get("/").status_code == 302


def test_edit_user_changes_role_and_scope_and_password(world, login):
    client = login(world.admin)
    user = world.officer_a
    response = client.post(
        f"/admin/users/{user.id}/edit",
        data=_edit_form(
            user,
            role="TASKFORCE",
            cluster_id=str(world.cluster_y.id),
            display_name="李四",
            password="N3w!Lan-Qiao-88",
            password_confirm="N3w!Lan-Qiao-88",
        ),
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert (user.role, user.cluster_id, user.carrier_id) == (
        Role.TASKFORCE,
        world.cluster_y.id,
        None,
    )
    entry = _audit("user_updated", user)[0]
    assert entry.changes["role"] == ["OFFICER", "TASKFORCE"]
    assert entry.changes["password"] == ["***", "***"]
    assert "N3w!Lan-Qiao-88" not in str(entry.changes)
    login(user, password="N3w!Lan-Qiao-88")


def test_edit_form_shows_current_values(world, login):
    client = login(world.admin)
    html = client.get(f"/admin/users/{world.officer_a.id}/edit").get_data(as_text=True)
    assert f'<option selected value="{world.carrier_a.id}">甲区</option>' in html
    assert '<option selected value="OFFICER">招商专员</option>' in html
    assert "checked" in html  # 账号启用


def test_admin_cannot_disable_or_demote_self(world, login):
    client = login(world.admin)
    admin = world.admin
    response = client.post(
        f"/admin/users/{admin.id}/edit", data=_edit_form(admin, is_active=None, role="LEADER")
    )
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "不能停用自己的账号" in html and "不能取消自己的管理员角色" in html
    db.session.expire_all()
    assert admin.is_active and admin.role is Role.ADMIN


def test_deactivated_carrier_is_not_offered_but_kept_by_its_users(world, login):
    client = login(world.admin)
    world.carrier_a.is_active = False
    db.session.commit()
    new_form = client.get("/admin/users/new").get_data(as_text=True)
    assert "甲区" not in new_form and "乙县" in new_form
    response = client.post("/admin/users/new", data=_user_form(carrier_id=str(world.carrier_a.id)))
    assert response.status_code == 400  # not a choice any more
    # officer_a keeps its deactivated 载体 on edit
    edit_form = client.get(f"/admin/users/{world.officer_a.id}/edit").get_data(as_text=True)
    assert "甲区（已停用）" in edit_form
    response = client.post(
        f"/admin/users/{world.officer_a.id}/edit", data=_edit_form(world.officer_a, phone="123")
    )
    assert response.status_code == 302


# ---- catalogues ----


def test_create_carrier(world, login):
    client = login(world.admin)
    response = client.post(
        "/admin/catalog/carriers/new",
        data={
            "name": " 丙园区 ",
            "leading_industry": "新材料",
            "sort_order": "5",
            "is_active": "y",
        },
    )
    assert response.status_code == 302
    carrier = db.session.scalar(sa.select(Carrier).where(Carrier.name == "丙园区"))
    assert (carrier.leading_industry, carrier.sort_order, carrier.is_active) == ("新材料", 5, True)
    assert _audit("catalog_created", carrier)[0].user_id == world.admin.id
    html = client.get("/admin/catalog/carriers/").get_data(as_text=True)
    assert "丙园区" in html and "新材料" in html


@pytest.mark.parametrize(
    ("slug", "model", "existing"),
    [
        ("carriers", Carrier, "甲区"),
        ("clusters", Cluster, "新能源"),
        ("channels", Channel, "链式招商"),
    ],
)
def test_duplicate_catalogue_name_is_a_message(world, login, slug, model, existing):
    client = login(world.admin)
    before = _count(model)
    response = client.post(
        f"/admin/catalog/{slug}/new",
        data={"name": existing, "category": "EMERGING", "is_active": "y"},
    )
    assert response.status_code == 400
    assert 'id="name-error">已有同名的' in response.get_data(as_text=True)
    assert _count(model) == before


def test_renaming_to_an_existing_name_is_refused(world, login):
    client = login(world.admin)
    response = client.post(
        f"/admin/catalog/carriers/{world.carrier_b.id}/edit",
        data={"name": "甲区", "is_active": "y"},
    )
    assert response.status_code == 400
    assert "已有同名的载体" in response.get_data(as_text=True)
    db.session.expire_all()
    assert world.carrier_b.name == "乙县"
    # saving an entry under its own name is fine
    response = client.post(
        f"/admin/catalog/carriers/{world.carrier_b.id}/edit",
        data={"name": "乙县", "leading_industry": "中医药", "is_active": "y"},
    )
    assert response.status_code == 302


def test_chain_names_are_unique_within_a_cluster(world, login):
    client = login(world.admin)
    factories.chain(world.cluster_x, name="光伏")
    db.session.commit()  # the refused POST below rolls the session back
    same = client.post(
        "/admin/catalog/chains/new",
        data={"name": "光伏", "cluster_id": str(world.cluster_x.id), "is_active": "y"},
    )
    assert same.status_code == 400
    assert "该产业集群下已有同名的产业链" in same.get_data(as_text=True)
    other = client.post(
        "/admin/catalog/chains/new",
        data={"name": "光伏", "cluster_id": str(world.cluster_y.id), "is_active": "y"},
    )
    assert other.status_code == 302
    assert _count(Chain, Chain.name == "光伏") == 2


def test_chain_needs_a_cluster(world, login):
    client = login(world.admin)
    response = client.post(
        "/admin/catalog/chains/new", data={"name": "储能", "cluster_id": "0", "is_active": "y"}
    )
    assert response.status_code == 400
    assert "请选择所属产业集群" in response.get_data(as_text=True)
    assert _count(Chain) == 0


def test_cluster_category_and_blank_name(world, login):
    client = login(world.admin)
    response = client.post(
        "/admin/catalog/clusters/new",
        data={"name": "低空经济", "category": "FUTURE", "sort_order": "", "is_active": "y"},
    )
    assert response.status_code == 302
    cluster = db.session.scalar(sa.select(Cluster).where(Cluster.name == "低空经济"))
    assert cluster.category.name == "FUTURE" and cluster.sort_order == 0
    blank = client.post("/admin/catalog/termination-reasons/new", data={"name": "  "})
    assert blank.status_code == 400
    assert "请填写名称" in blank.get_data(as_text=True)
    assert _count(TerminationReason) == 0


def test_deactivated_carrier_is_still_listed(world, login):
    client = login(world.admin)
    carrier = world.carrier_a
    response = client.post(
        f"/admin/catalog/carriers/{carrier.id}/edit",
        data={"name": carrier.name, "leading_industry": "", "sort_order": "0"},  # 启用 unchecked
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert carrier.is_active is False
    assert _count(Carrier, Carrier.id == carrier.id) == 1
    html = client.get("/admin/catalog/carriers/").get_data(as_text=True)
    row = html[html.index("<td>甲区</td>") :]
    assert row.index("已停用") < row.index("</tr>")


def test_catalogue_edit_writes_audit_row(world, login):
    client = login(world.admin)
    channel = world.channel
    response = client.post(
        f"/admin/catalog/channels/{channel.id}/edit",
        data={"name": "产业链招商", "sort_order": "3", "is_active": "y"},
    )
    assert response.status_code == 302
    entry = _audit("catalog_updated", channel)[0]
    assert entry.user_id == world.admin.id
    assert entry.changes == {"name": ["链式招商", "产业链招商"], "sort_order": [0, 3]}
    # saving without a change writes nothing
    client.post(
        f"/admin/catalog/channels/{channel.id}/edit",
        data={"name": "产业链招商", "sort_order": "3", "is_active": "y"},
    )
    assert len(_audit("catalog_updated", channel)) == 1
    # deactivating is its own action
    client.post(
        f"/admin/catalog/channels/{channel.id}/edit",
        data={"name": "产业链招商", "sort_order": "3"},
    )
    assert _audit("catalog_deactivated", channel)[0].changes == {"is_active": [True, False]}


def test_sort_order_out_of_range_is_refused(world, login):
    client = login(world.admin)
    response = client.post(
        "/admin/catalog/channels/new", data={"name": "以商招商", "sort_order": "10000000000"}
    )
    assert response.status_code == 400
    assert "排序须在 0 到 99999 之间" in response.get_data(as_text=True)
