"""Accounts, sessions, production settings, security headers and the audit log (issue 6).

Time-dependent rules run on a frozen clock: `crm.core.utcnow`, the one clock the account and
session rules read, is replaced by `clock` below.
"""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from werkzeug.security import generate_password_hash

import crm.core
from config import Config, ProductionConfig, TestingConfig, config_from_env
from crm import create_app
from crm.audit.models import AuditEntry, AuditLogIsAppendOnly
from crm.audit.services import record
from crm.auth.models import Role, User
from crm.auth.passwords import COMMON_PASSWORDS
from crm.auth.services import check_password_rules, create_user
from crm.extensions import db
from crm.projects.models import FollowUp
from crm.security import CONTENT_SECURITY_POLICY, production_config_problems
from tests import factories
from tests.conftest import PASSWORD

ROOT = Path(__file__).resolve().parent.parent
NEW_PASSWORD = "Kuai!Ma-2026"
CURRENT = "Xian!Zai-2026"


def text(response) -> str:
    return response.get_data(as_text=True)


def entries(action: str, user: User | None = None) -> list[AuditEntry]:
    stmt = sa.select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
    if user is not None:
        stmt = stmt.where(AuditEntry.user_id == user.id)
    return list(db.session.scalars(stmt))


class Clock:
    def __init__(self):
        self.now = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch):
    frozen = Clock()
    monkeypatch.setattr(crm.core, "utcnow", frozen)
    return frozen


def sign_in(client, username: str, password: str = PASSWORD, **extra):
    return client.post("/login", data={"username": username, "password": password, **extra})


def signed_in(client) -> bool:
    response = client.get("/")
    return response.status_code == 200


# ---- failed logins and lockout ----


STRANGER = {"REMOTE_ADDR": "203.0.113.66"}  # another client address (documentation range)


def test_five_failures_lock_the_address_out_of_the_account_for_fifteen_minutes(
    world, client, clock
):
    officer = world.officer_a
    for _ in range(4):
        assert sign_in(client, officer.username, "wrong-Passw0rd").status_code == 200
        clock.advance(minutes=3)
    sign_in(client, officer.username, "wrong-Passw0rd")  # the fifth within 15 minutes
    assert len(entries("login_failed", officer)) == 5
    assert "连续 5 次登录失败，锁定 15 分钟" in entries("login_locked", officer)[0].summary

    # Locked for this address: even the right password is refused, with the same message.
    clock.advance(minutes=14)
    response = sign_in(client, officer.username)
    assert response.status_code == 200
    assert "用户名或密码不正确" in text(response)
    assert not signed_in(client)
    assert "拒绝登录" in entries("login_locked", officer)[-1].summary

    clock.advance(minutes=1, seconds=1)
    assert sign_in(client, officer.username).status_code == 302
    db.session.expire_all()
    assert (officer.failed_login_count, officer.locked_until) == (0, None)
    assert len(entries("login", officer)) == 1


def test_failures_spread_over_more_than_the_window_do_not_lock(world, client, clock):
    officer = world.officer_a
    for _ in range(8):
        sign_in(client, officer.username, "wrong-Passw0rd")
        clock.advance(minutes=4)  # never 5 within 15 minutes
    db.session.expire_all()
    assert officer.locked_until is None
    assert sign_in(client, officer.username).status_code == 302


def test_a_success_resets_the_count(world, client, clock):
    officer = world.officer_a
    for _ in range(4):
        sign_in(client, officer.username, "wrong-Passw0rd")
    assert sign_in(client, officer.username).status_code == 302
    client.post("/logout")
    for _ in range(4):
        sign_in(client, officer.username, "wrong-Passw0rd")
    assert not entries("login_locked", officer)
    assert sign_in(client, officer.username).status_code == 302  # 4 failures, not 8


def test_the_lockout_numbers_are_configurable(world, client, clock, app, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_MAX_FAILURES", 2)
    monkeypatch.setitem(app.config, "LOGIN_LOCK_MINUTES", 60)
    for _ in range(2):
        sign_in(client, world.officer_a.username, "wrong-Passw0rd")
    clock.advance(minutes=59)
    assert sign_in(client, world.officer_a.username).status_code == 200
    clock.advance(minutes=1, seconds=1)
    assert sign_in(client, world.officer_a.username).status_code == 302


def _login_error(response) -> str:
    found = re.search(r'<div class="error" id="password-error">(.*?)</div>', text(response))
    assert found, text(response)
    return found.group(1)


def test_every_refusal_looks_the_same(world, client, clock):
    locked = factories.user(Role.OFFICER, carrier_=world.carrier_a, username="locked_user")
    locked.locked_until = clock.now + timedelta(minutes=10)
    disabled = factories.user(Role.LEADER, username="disabled_user", is_active=False)
    answers = [
        sign_in(client, "nobody_here", PASSWORD),
        sign_in(client, world.officer_a.username, "wrong-Passw0rd"),
        sign_in(client, locked.username, PASSWORD),
        sign_in(client, disabled.username, PASSWORD),
    ]
    assert {r.status_code for r in answers} == {200}
    assert len({_login_error(r) for r in answers}) == 1
    # ... and every attempt is in the audit log
    unknown = entries("login_failed")[0]
    assert unknown.user_id is None and "nobody_here" in unknown.summary
    assert entries("login_failed", world.officer_a)
    assert entries("login_locked", locked)
    assert entries("login_failed", disabled)


def test_an_admin_unlocks_an_account(world, login, clock):
    officer = world.officer_a
    officer.locked_until = clock.now + timedelta(minutes=10)
    db.session.flush()
    client = login(world.admin)
    assert "已锁定" in text(client.get("/admin/users"))
    assert "解除登录锁定" in text(client.get(f"/admin/users/{officer.id}/edit"))
    data = {
        "display_name": officer.display_name,
        "role": "OFFICER",
        "carrier_id": str(officer.carrier_id),
        "cluster_id": "0",
        "phone": "",
        "is_active": "y",
        "unlock": "y",
    }
    assert client.post(f"/admin/users/{officer.id}/edit", data=data).status_code == 302
    db.session.expire_all()
    assert officer.locked_until is None
    assert "locked_until" in entries("user_updated", world.admin)[-1].changes


# ---- password rules ----


@pytest.mark.parametrize(
    "password",
    ["P@ssw0rd", "Admin@123", "Abc@123456", "ADMIN@123", "aDmIn@123", "Woaini@1314", "Qwer@1234!"],
)
def test_common_passwords_are_refused_whatever_their_case(password):
    assert check_password_rules(password) == "该密码过于常见，容易被猜中，请换一个"


@pytest.mark.parametrize("password", ["woaini1314", "a123456", "qwer1234", "Passw0rd", "12345678"])
def test_common_passwords_that_break_other_rules_are_refused_too(password):
    assert check_password_rules(password) is not None


def test_the_common_list_is_a_few_hundred_lowercase_words():
    assert 150 <= len(COMMON_PASSWORDS) <= 1000
    assert all(p == p.lower() and p.strip() == p for p in COMMON_PASSWORDS)
    assert {"woaini1314", "a123456", "qwer1234", "p@ssw0rd", "admin@123"} <= COMMON_PASSWORDS


def test_long_passwords_are_welcome_up_to_256_characters():
    sentence = "我家门前有两棵树，一棵是枣树，另一棵也是枣树 Lu Xun 1924!"
    assert check_password_rules(sentence) is None
    assert check_password_rules((sentence * 4)[:64]) is None
    assert check_password_rules((sentence * 8)[:256]) is None
    assert check_password_rules((sentence * 8)[:257]) == "密码不能超过 256 位"


def test_a_long_password_works_end_to_end(world, login, db_session):
    long_password = "Een lang wachtwoord, 64+ tekens: 双招双引 CRM 2026! " * 2
    client = login(world.officer_a)
    response = client.post(
        "/account/password",
        data={
            "current_password": PASSWORD,
            "password": long_password,
            "password_confirm": long_password,
        },
    )
    assert response.status_code == 302, text(response)
    client.post("/logout")
    assert sign_in(client, world.officer_a.username, long_password).status_code == 302


# ---- must change: admin-made accounts, admin resets, expiry ----


def _admin_creates(login, world) -> User:
    client = login(world.admin)
    data = {
        "username": "new_officer",
        "display_name": "新专员",
        "role": "OFFICER",
        "carrier_id": str(world.carrier_a.id),
        "cluster_id": "0",
        "phone": "",
        "password": "Chushi!Mima9",
        "password_confirm": "Chushi!Mima9",
    }
    assert client.post("/admin/users/new", data=data).status_code == 302
    return db.session.scalar(sa.select(User).where(User.username == "new_officer"))


def test_an_account_an_admin_made_changes_its_password_first(world, login, client):
    user = _admin_creates(login, world)
    assert user.must_change_password is True
    client.post("/logout")

    response = sign_in(client, "new_officer", "Chushi!Mima9")
    assert response.headers["Location"].startswith("/account/password")
    for url in ("/", "/projects/", f"/projects/{world.project_a.id}", "/companies/"):
        assert client.get(url).headers["Location"] == "/account/password", url
    # nothing can be done meanwhile
    before = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry))
    response = client.post(f"/projects/{world.project_a.id}/followups", data={"summary": "x"})
    assert response.headers["Location"] == "/account/password"
    page = client.get("/account/password")
    assert page.status_code == 200 and "管理员为您设置了初始密码" in text(page)

    response = client.post(
        "/account/password",
        data={
            "current_password": "Chushi!Mima9",
            "password": NEW_PASSWORD,
            "password_confirm": NEW_PASSWORD,
        },
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert user.must_change_password is False
    assert client.get("/").status_code == 200
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)) == before + 1


def test_command_line_and_demo_accounts_need_no_change(runner, world, db_session, monkeypatch):
    monkeypatch.setenv("CRM_PASSWORD", NEW_PASSWORD)
    result = runner.invoke(args=["crm", "create-user", "cli_leader", "--role", "leader"])
    assert result.exit_code == 0, result.output
    user = db.session.scalar(sa.select(User).where(User.username == "cli_leader"))
    assert user.must_change_password is False
    assert user.password_changed_at is not None
    made = create_user(
        None, username="svc", display_name="s", password=NEW_PASSWORD, role=Role.LEADER
    )
    assert made.must_change_password is False


def test_an_admin_reset_password_must_be_changed(world, login, client):
    officer = world.officer_a
    admin = login(world.admin)
    data = {
        "display_name": officer.display_name,
        "role": "OFFICER",
        "carrier_id": str(officer.carrier_id),
        "cluster_id": "0",
        "phone": "",
        "is_active": "y",
        "password": "Reset!Mima77",
        "password_confirm": "Reset!Mima77",
    }
    assert admin.post(f"/admin/users/{officer.id}/edit", data=data).status_code == 302
    db.session.expire_all()
    assert officer.must_change_password is True
    admin.post("/logout")
    sign_in(client, officer.username, "Reset!Mima77")
    assert client.get("/").headers["Location"] == "/account/password"


def test_an_admin_changing_the_own_password_stays_signed_in(world, login):
    admin = world.admin
    client = login(admin)
    data = {
        "display_name": admin.display_name,
        "role": "ADMIN",
        "carrier_id": "0",
        "cluster_id": "0",
        "phone": "",
        "is_active": "y",
        "password": "Own!Choice2026",
        "password_confirm": "Own!Choice2026",
    }
    assert client.post(f"/admin/users/{admin.id}/edit", data=data).status_code == 302
    db.session.expire_all()
    assert admin.must_change_password is False
    assert client.get("/").status_code == 200


def test_an_old_password_expires(world, client, clock, app, monkeypatch):
    officer = world.officer_a
    officer.password_changed_at = clock.now - timedelta(days=91)
    db.session.flush()
    sign_in(client, officer.username)
    response = client.get("/")
    assert response.headers["Location"] == "/account/password"
    assert "已使用超过 90 天" in text(client.get("/account/password"))

    monkeypatch.setitem(app.config, "PASSWORD_MAX_AGE_DAYS", 0)  # expiry switched off
    assert client.get("/").status_code == 200
    monkeypatch.setitem(app.config, "PASSWORD_MAX_AGE_DAYS", 120)
    assert client.get("/").status_code == 200


# ---- the change-password page ----


@pytest.mark.parametrize(
    ("current", "new", "confirm", "message"),
    [
        ("Wrong!Pass1", NEW_PASSWORD, NEW_PASSWORD, "当前密码不正确"),
        (CURRENT, "abcdefgh", "abcdefgh", "至少三类"),
        (CURRENT, "Admin@123", "Admin@123", "过于常见"),
        (CURRENT, NEW_PASSWORD, "Other!Pass2", "两次输入的密码不一致"),
        (CURRENT, CURRENT, CURRENT, "新密码不能与当前密码相同"),
        ("", NEW_PASSWORD, NEW_PASSWORD, "请输入当前密码"),
    ],
)
def test_a_refused_change_changes_nothing(world, login, current, new, confirm, message):
    world.officer_a.password_hash = generate_password_hash(CURRENT, "pbkdf2:sha256:1")
    db.session.flush()
    client = login(world.officer_a, password=CURRENT)
    old_hash, version = world.officer_a.password_hash, world.officer_a.session_version
    response = client.post(
        "/account/password",
        data={"current_password": current, "password": new, "password_confirm": confirm},
    )
    assert response.status_code == 400
    assert message in text(response)
    db.session.expire_all()
    assert (world.officer_a.password_hash, world.officer_a.session_version) == (old_hash, version)


def test_every_user_has_the_change_page(world, login):
    for who in ("admin", "leader", "officer_a", "taskforce_x"):
        client = login(getattr(world, who))
        assert 'href="/account/password"' in text(client.get("/"))
        assert client.get("/account/password").status_code == 200


def test_changing_the_password_ends_the_other_sessions_only(world, login, app):
    officer = world.officer_a
    other = app.test_client()
    sign_in(other, officer.username)
    client = login(officer)
    response = client.post(
        "/account/password",
        data={
            "current_password": PASSWORD,
            "password": NEW_PASSWORD,
            "password_confirm": NEW_PASSWORD,
        },
    )
    assert response.status_code == 302
    assert client.get("/").status_code == 200  # this browser stays signed in
    assert entries("password_changed", officer)
    with app.app_context():  # a fresh `g`, as in another worker
        assert other.get("/").status_code == 302


# ---- sessions ----


def test_signing_in_starts_a_new_session(world, client):
    with client.session_transaction() as session:
        session["planted"] = "by an attacker"
        session["csrf_token"] = "known-token"
    sign_in(client, world.officer_a.username)
    with client.session_transaction() as session:
        assert "planted" not in session
        assert session.get("csrf_token") != "known-token"
        assert session["_user_id"] == f"{world.officer_a.id}:{world.officer_a.session_version}"


def test_logout_ends_every_session_including_remember_me(world, app):
    officer = world.officer_a
    first, second = app.test_client(), app.test_client()
    sign_in(first, officer.username, remember="y")
    remember_cookie = first.get_cookie("remember_token")
    assert remember_cookie is not None
    sign_in(second, officer.username)
    assert second.get("/").status_code == 200

    assert first.post("/logout").status_code == 302
    assert entries("logout", officer)
    with app.app_context():
        assert second.get("/").status_code == 302
    # the remember-me cookie taken from the first browser opens nothing any more
    thief = app.test_client()
    thief.set_cookie("remember_token", remember_cookie.value)
    with app.app_context():
        assert thief.get("/").status_code == 302


def test_remember_me_survives_a_browser_restart(world, client):
    sign_in(client, world.officer_a.username, remember="y")
    client.delete_cookie("session")  # the browser was closed
    assert client.get("/").status_code == 200


@pytest.mark.parametrize(
    "change",
    [
        {"role": "LEADER", "carrier_id": "0"},  # a new role
        {"is_active": None},  # disabled
    ],
)
def test_a_role_change_or_disabling_ends_the_users_sessions(world, login, app, change):
    officer = world.officer_a
    browser = app.test_client()
    sign_in(browser, officer.username, remember="y")
    admin = login(world.admin)
    data = {
        "display_name": officer.display_name,
        "role": "OFFICER",
        "carrier_id": str(officer.carrier_id),
        "cluster_id": "0",
        "phone": "",
        "is_active": "y",
    }
    data.update(change)
    data = {k: v for k, v in data.items() if v is not None}
    assert admin.post(f"/admin/users/{officer.id}/edit", data=data).status_code == 302
    with app.app_context():
        assert browser.get("/").status_code == 302


def test_a_session_ends_after_30_idle_minutes(world, client, clock):
    sign_in(client, world.officer_a.username)
    clock.advance(minutes=29)
    assert client.get("/").status_code == 200
    clock.advance(minutes=29)  # 29 since the last request: still alive
    assert client.get("/projects/").status_code == 200
    clock.advance(minutes=30, seconds=1)
    response = client.get("/projects/?stage=PLANNED")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/projects/?stage%3DPLANNED"
    assert "会话已超时，请重新登录" in text(client.get(response.headers["Location"]))
    assert client.get("/").status_code == 302
    assert entries("session_expired", world.officer_a)


def test_a_busy_session_is_not_re_signed_on_every_request_yet_stays_alive(world, client, clock):
    """The idle clock moves once a thirtieth of the timeout (one minute) has passed: requests
    within that minute send no new cookie, and a user clicking every 50 seconds stays in."""
    sign_in(client, world.officer_a.username)
    client.get("/")  # the first page puts the form token into the new session
    clock.advance(seconds=30)
    assert "Set-Cookie" not in client.get("/projects/").headers
    clock.advance(seconds=31)
    assert "session=" in client.get("/projects/").headers["Set-Cookie"]
    for _ in range(60):
        clock.advance(seconds=50)
        assert client.get("/").status_code == 200


def test_a_session_ends_12_hours_after_signing_in_however_busy(world, client, clock):
    sign_in(client, world.officer_a.username)
    for _ in range(12 * 3):
        clock.advance(minutes=20)
        assert client.get("/").status_code == 200
    clock.advance(minutes=1)
    assert client.get("/").status_code == 302


def test_remember_me_does_not_outlive_the_absolute_limit(world, client, clock):
    sign_in(client, world.officer_a.username, remember="y")
    clock.advance(hours=11)
    client.delete_cookie("session")
    assert client.get("/").status_code == 200  # restored from the cookie
    clock.advance(hours=1, minutes=1)
    client.delete_cookie("session")
    assert client.get("/").status_code == 302
    assert client.get_cookie("remember_token") is None  # and the cookie is dropped


def test_the_timeouts_are_configurable(world, client, clock, app, monkeypatch):
    monkeypatch.setitem(app.config, "SESSION_IDLE_MINUTES", 5)
    sign_in(client, world.officer_a.username)
    clock.advance(minutes=6)
    assert client.get("/").status_code == 302


def test_a_post_after_the_timeout_saves_nothing(world, client, clock, db_session):
    sign_in(client, world.officer_a.username)
    clock.advance(hours=1)
    response = client.post(
        f"/projects/{world.project_a.id}/followups",
        data={"kind": "VISIT", "happened_on": "2026-03-01", "summary": "超时后提交"},
    )
    assert response.headers["Location"] == "/login"
    assert db.session.scalar(sa.select(FollowUp.id).where(FollowUp.summary == "超时后提交")) is None


# ---- production mode ----


def _production(**overrides) -> type[Config]:
    values = {
        "SECRET_KEY": "k" * 8 + "3f9c0a7e51b24d6c8e0f1a2b3c4d5e6f",
        "SQLALCHEMY_DATABASE_URI": "sqlite://",
    }
    values.update(overrides)
    return type("Production", (ProductionConfig,), values)


def test_production_starts_with_safe_settings():
    app = create_app(_production())
    assert app.config["SESSION_COOKIE_SECURE"] and app.config["REMEMBER_COOKIE_SECURE"]
    assert app.config["SESSION_COOKIE_HTTPONLY"] and app.config["REMEMBER_COOKIE_HTTPONLY"]
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"DEBUG": True}, "DEBUG is on"),
        ({"SECRET_KEY": None}, "SECRET_KEY is not set"),
        ({"SECRET_KEY": ""}, "SECRET_KEY is not set"),
        ({"SECRET_KEY": "a1b2c3d4e5f6g7h8"}, "shorter than 32"),
        ({"SECRET_KEY": TestingConfig.SECRET_KEY}, "known or trivial"),
        ({"SECRET_KEY": "a" * 64}, "known or trivial"),
        ({"SESSION_COOKIE_SECURE": False}, "SESSION_COOKIE_SECURE is off"),
        ({"REMEMBER_COOKIE_SECURE": False}, "REMEMBER_COOKIE_SECURE is off"),
        ({"SESSION_COOKIE_HTTPONLY": False}, "SESSION_COOKIE_HTTPONLY is off"),
        ({"REMEMBER_COOKIE_HTTPONLY": False}, "REMEMBER_COOKIE_HTTPONLY is off"),
        ({"SESSION_COOKIE_SAMESITE": None}, "SESSION_COOKIE_SAMESITE"),
        ({"REMEMBER_COOKIE_SAMESITE": "None"}, "REMEMBER_COOKIE_SAMESITE"),
    ],
)
def test_production_refuses_to_start_with_unsafe_settings(overrides, problem):
    with pytest.raises(RuntimeError, match=re.escape(problem)):
        create_app(_production(**overrides))


def test_development_settings_are_not_checked():
    config = type("Dev", (TestingConfig,), {"SQLALCHEMY_DATABASE_URI": "sqlite://"})
    assert production_config_problems(create_app(config).config)  # unsafe, and it starts


def test_crm_env_picks_the_configuration(monkeypatch):
    monkeypatch.delenv("CRM_ENV", raising=False)
    assert config_from_env() is Config
    monkeypatch.setenv("CRM_ENV", "production")
    assert config_from_env() is ProductionConfig
    monkeypatch.setenv("CRM_ENV", "prod")
    with pytest.raises(RuntimeError, match="CRM_ENV"):
        config_from_env()


def _start_wsgi(tmp_path, **env) -> subprocess.CompletedProcess:
    environ = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SECRET_KEY", "DATABASE_URL", "CRM_INSTANCE_PATH", "FLASK_DEBUG", "CRM_ENV"}
    }
    environ |= {
        "CRM_INSTANCE_PATH": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'crm.sqlite3'}",
        "CRM_ENV": "production",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-c", "import wsgi; print(wsgi.app.config['SESSION_COOKIE_NAME'])"],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_gunicorn_entry_point_refuses_production_without_a_secret_key(tmp_path):
    refused = _start_wsgi(tmp_path)
    assert refused.returncode != 0
    assert "refusing to start in production mode" in refused.stderr
    assert "SECRET_KEY is not set" in refused.stderr
    assert not (tmp_path / "secret_key").exists()  # never generated in production

    debug = _start_wsgi(tmp_path, SECRET_KEY="x1" * 20 + "abcdefgh", FLASK_DEBUG="1")
    assert debug.returncode != 0 and "DEBUG is on" in debug.stderr

    started = _start_wsgi(tmp_path, SECRET_KEY="4f1c9e0b7a2d58e6" * 3)
    assert started.returncode == 0, started.stderr
    assert started.stdout.strip() == "__Host-crm_session"


# ---- security headers ----


def test_every_response_carries_the_security_headers(world, login, client):
    answers = [client.get("/login"), client.get("/projects/"), client.get("/no-such-page")]
    signed = login(world.officer_a)
    answers += [signed.get(f"/projects/{world.project_a.id}"), signed.get("/static/crm.css")]
    for response in answers:
        headers = response.headers
        assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "same-origin"
        assert "Strict-Transport-Security" not in headers  # plain HTTP
    csp = CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp and "base-uri 'none'" in csp


def test_hsts_only_over_https(client):
    response = client.get("/login", base_url="https://crm.example")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_pages_pdfs_and_downloads_are_not_cached_but_static_files_may_be(world, login, monkeypatch):
    import crm.reports.views

    monkeypatch.setattr(crm.reports.views, "render_dossier", lambda dossier: b"%PDF-1.4 test")
    client = login(world.officer_a)
    for url in (
        "/",
        f"/projects/{world.project_a.id}",
        f"/projects/{world.project_a.id}/dossier.pdf",
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.headers["Cache-Control"] == "no-store", url
    assert "no-store" not in client.get("/static/crm.css").headers.get("Cache-Control", "")


TEMPLATES = ROOT / "crm" / "templates"


def test_no_template_has_inline_script_or_style():
    """The CSP allows neither: a template that needs one would break in the browser."""
    forbidden = re.compile(
        r"<script(?![^>]*\bsrc=)|\sstyle\s*=|\(style\s*=|\son[a-z]+\s*=|javascript:", re.I
    )
    found = []
    for path in TEMPLATES.rglob("*.html"):
        if path.parent.name == "reports":
            continue  # the PDF dossier: rendered by WeasyPrint on the server, never served
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if forbidden.search(line):
                found.append(f"{path.relative_to(TEMPLATES)}:{number}: {line.strip()}")
    assert found == []


# ---- the audit log: denials, search, export, append-only ----


def test_refused_requests_of_signed_in_users_are_audited(world, login, client):
    client.get(f"/projects/{world.project_a.id}")  # anonymous: sent to the login page
    assert entries("permission_denied") == []

    other = login(world.officer_b)
    assert other.get(f"/projects/{world.project_a.id}").status_code == 404
    assert other.get("/admin/users").status_code == 403
    assert other.get("/no-such-page").status_code == 404  # not a page of the app: not logged
    assert other.get("/static/none.css").status_code == 404
    denied = entries("permission_denied", world.officer_b)
    assert [e.summary for e in denied] == [
        f"404 GET /projects/{world.project_a.id}",
        "403 GET /admin/users",
    ]


def test_a_refused_post_is_audited_and_changes_nothing(world, login):
    client = login(world.leader)
    response = client.post(f"/projects/{world.project_a.id}/stage", data={"to_stage": "ATTRACTING"})
    assert response.status_code == 403
    (entry,) = entries("permission_denied", world.leader)
    assert entry.summary == f"403 POST /projects/{world.project_a.id}/stage"
    assert entries("stage_moved") == []


@pytest.fixture
def logbook(world, db_session):
    """Entries at known times: 2026-03-01 16:30 UTC is 2026-03-02 00:30 in Shanghai."""
    made = []
    for i, (when, action, user, summary) in enumerate(
        [
            (datetime(2026, 3, 1, 15, 59, tzinfo=UTC), "login", world.officer_a, "晚上登录"),
            (datetime(2026, 3, 1, 16, 30, tzinfo=UTC), "project_updated", world.officer_a, "改名"),
            (datetime(2026, 3, 2, 2, 0, tzinfo=UTC), "login", world.leader, "领导登录"),
            (datetime(2026, 3, 3, 2, 0, tzinfo=UTC), "stage_moved", world.officer_b, "=1+2"),
        ]
    ):
        entry = AuditEntry(
            created_at=when,
            user_id=user.id,
            action=action,
            object_type="projects" if action != "login" else "users",
            object_id=world.project_a.id if action != "login" else user.id,
            summary=summary,
            changes={"name": ["旧", "新"]} if i == 1 else {},
        )
        db_session.add(entry)
        made.append(entry)
    db_session.flush()
    return made


def _rows(html: str) -> list[str]:
    return re.findall(r"<td class=\"nowrap\">([^<]+)</td>", html)


def test_the_audit_page_lists_newest_first_in_shanghai_time(world, login, logbook):
    client = login(world.admin)
    html = text(client.get("/admin/audit?date_to=2026-03-03"))
    assert _rows(html) == [
        "2026-03-03 10:00:00",
        "2026-03-02 10:00:00",
        "2026-03-02 00:30:00",
        "2026-03-01 23:59:00",
    ]
    assert "修改项目" in html and "旧 → 新" in html


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("user=officer_a", ["2026-03-02 00:30:00", "2026-03-01 23:59:00"]),
        ("user=OFFICER_", ["2026-03-03 10:00:00", "2026-03-02 00:30:00", "2026-03-01 23:59:00"]),
        ("action=login&date_to=2026-03-03", ["2026-03-02 10:00:00", "2026-03-01 23:59:00"]),
        ("object_type=projects", ["2026-03-03 10:00:00", "2026-03-02 00:30:00"]),
        ("date_from=2026-03-02&date_to=2026-03-02", ["2026-03-02 10:00:00", "2026-03-02 00:30:00"]),
        ("date_to=2026-03-01", ["2026-03-01 23:59:00"]),
        ("q=登录&date_to=2026-03-03", ["2026-03-02 10:00:00", "2026-03-01 23:59:00"]),
        ("q=%25", []),  # a literal %, not a wildcard
        ("date_from=not-a-date&user=officer_b", ["2026-03-03 10:00:00"]),  # a bad part is left out
    ],
)
def test_the_audit_search(world, login, logbook, query, expected):
    client = login(world.admin)
    response = client.get(f"/admin/audit?{query}")
    assert response.status_code == 200
    assert _rows(text(response)) == expected


def test_the_audit_page_paginates(world, login, logbook, app, monkeypatch):
    monkeypatch.setitem(app.config, "PAGE_SIZE", 2)
    client = login(world.admin)
    first = text(client.get("/admin/audit?date_to=2026-03-03"))
    second = text(client.get("/admin/audit?date_to=2026-03-03&page=2"))
    assert _rows(first) == ["2026-03-03 10:00:00", "2026-03-02 10:00:00"]
    assert _rows(second) == ["2026-03-02 00:30:00", "2026-03-01 23:59:00"]
    assert "下一页" in first and "共 4 条" in first


def test_the_audit_export_is_excel_ready_csv_and_audited(world, login, logbook):
    client = login(world.admin)
    response = client.get("/admin/audit/export.csv?object_type=projects")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_data()
    assert body.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM: Excel reads the Chinese right
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0][0] == "时间（北京时间）"
    assert [r[0] for r in rows[1:]] == ["2026-03-03 10:00:00", "2026-03-02 00:30:00"]
    assert rows[1][7] == "'=1+2"  # never a formula in a spreadsheet
    assert rows[2][3] == "修改项目" and "旧" in rows[2][8]
    (exported,) = entries("audit_exported", world.admin)
    assert exported.summary == "导出条件：对象类型 项目"  # the search in words, not codes


@pytest.mark.parametrize("who", ["officer_a", "taskforce_x", "leader"])
def test_only_admins_read_the_audit_log(world, login, who):
    client = login(getattr(world, who))
    assert client.get("/admin/audit").status_code == 403
    assert client.get("/admin/audit/export.csv").status_code == 403


def test_audit_entries_cannot_be_changed_or_deleted(world, db_session):
    entry = record(world.admin, "login", world.admin, summary="admin")
    db_session.commit()
    entry.summary = "rewritten"
    with pytest.raises(AuditLogIsAppendOnly):
        db_session.flush()
    db_session.rollback()

    db_session.delete(entry)
    with pytest.raises(AuditLogIsAppendOnly):
        db_session.flush()
    db_session.rollback()
    assert db_session.get(AuditEntry, entry.id).summary == "admin"

    for statement in (
        sa.update(AuditEntry).values(summary="x"),
        sa.delete(AuditEntry).where(AuditEntry.id > 0),
        sa.update(AuditEntry.__table__).values(summary="x"),
        sa.delete(AuditEntry.__table__),
    ):
        with pytest.raises(AuditLogIsAppendOnly):
            db_session.execute(statement)
        db_session.rollback()


# ---- error pages ----


@pytest.mark.parametrize(
    ("method", "url", "kwargs", "code", "words"),
    [
        ("POST", "/login", {"data": {"username": "a\x00b", "password": "x"}}, 400, "请求无效"),
        ("GET", "/admin/users", {}, 403, "没有权限"),
        ("GET", "/projects/987654", {}, 404, "页面不存在"),
        ("PUT", "/projects/", {}, 405, "不支持的请求方式"),
        ("POST", "/login", {"data": {"username": "x" * (22 * 1024 * 1024)}}, 413, "上传的文件过大"),
    ],
)
def test_error_pages_are_chinese_and_tell_nothing_inside(
    world, login, method, url, kwargs, code, words
):
    client = login(world.officer_a)
    response = client.open(url, method=method, **kwargs)
    assert response.status_code == code
    html = text(response)
    assert words in html and "Traceback" not in html and "werkzeug" not in html.lower()
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
