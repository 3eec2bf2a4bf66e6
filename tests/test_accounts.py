"""Accounts (issue 14, items 7, 11 and 13): who can lock whom out, the per-address limits, the
unlock-user and set-password commands, the `next` target of the login, and the password rules.

Time-dependent rules run on the frozen clock of tests/test_security.py.
"""

from __future__ import annotations

import socket
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa
from werkzeug.security import check_password_hash, generate_password_hash

import crm.core
from config import TestingConfig
from crm import create_app
from crm.audit.models import AuditEntry
from crm.audit.services import ACTION_LABELS
from crm.auth import services
from crm.auth.models import LoginAttempt, PasswordHistory, User
from crm.auth.passwords import breached_passwords, is_common
from crm.auth.views import safe_next
from crm.devdata.demo import DEMO_PASSWORD
from crm.extensions import db, limiter
from tests.conftest import PASSWORD, Client
from tests.test_security import Clock

WRONG = "wrong-Passw0rd"
OWNER = {"REMOTE_ADDR": "10.20.0.8"}  # the owner's office computer
STRONG = "Lan-Hai#Qiao88"


@pytest.fixture
def clock(monkeypatch):
    frozen = Clock()
    monkeypatch.setattr(crm.core, "utcnow", frozen)
    return frozen


@pytest.fixture
def new_client(app):
    """A fresh browser (the conftest's Client, which forgets the last request's user)."""
    app.test_client_class = Client
    return app.test_client


def address(n: int) -> dict[str, str]:
    return {"REMOTE_ADDR": f"198.51.100.{n}"}  # strangers (a documentation range)


def sign_in(client, username, password=PASSWORD, env=None):
    return client.post(
        "/login",
        data={"username": username, "password": password},
        environ_base=env or {"REMOTE_ADDR": "127.0.0.1"},
    )


def actions(user: User | None, action: str) -> list[AuditEntry]:
    stmt = sa.select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
    if user is not None:
        stmt = stmt.where(AuditEntry.object_id == user.id, AuditEntry.object_type == "users")
    return list(db.session.scalars(stmt))


# ---- item 7: a stranger cannot lock the owner out ----


def test_a_strangers_failures_do_not_lock_the_owner_out(world, new_client, clock):
    stranger, owner = new_client(), new_client()
    for _ in range(20):  # the old rule locked the account, admin included, after 5
        assert sign_in(stranger, world.admin.username, WRONG, address(66)).status_code == 200
        clock.advance(seconds=20)
    assert sign_in(stranger, world.admin.username, PASSWORD, address(66)).status_code == 200
    assert "拒绝登录" in actions(world.admin, "login_locked")[-1].summary  # that address only
    # The owner, at a computer never used before, signs in at once.
    assert sign_in(owner, world.admin.username, PASSWORD, OWNER).status_code == 302
    db.session.expire_all()
    assert world.admin.locked_until is None


def test_guessing_from_many_addresses_locks_briefly_and_more_each_time(world, new_client, clock):
    owner, officer = new_client(), world.officer_a
    assert sign_in(owner, officer.username, PASSWORD, OWNER).status_code == 302
    owner.post("/logout")
    strangers = new_client()
    for n in range(10):  # 10 addresses, one failure each
        sign_in(strangers, officer.username, WRONG, address(n))
    db.session.expire_all()
    assert officer.locked_until == clock.now + timedelta(minutes=1)
    assert "锁定 1 分钟" in actions(officer, "login_locked")[-1].summary
    # A new address waits the minute, even with the right password ...
    assert sign_in(strangers, officer.username, PASSWORD, address(99)).status_code == 200
    # ... the owner's own computer does not.
    assert sign_in(owner, officer.username, PASSWORD, OWNER).status_code == 302
    owner.post("/logout")
    clock.advance(minutes=1, seconds=1)
    for n in range(10, 20):  # the next round locks twice as long
        sign_in(strangers, officer.username, WRONG, address(n))
    db.session.expire_all()
    assert officer.locked_until == clock.now + timedelta(minutes=2)
    for _ in range(6):
        clock.advance(minutes=1, seconds=1)
        for n in range(20):
            sign_in(strangers, officer.username, WRONG, address(100 + n))
    db.session.expire_all()
    assert officer.locked_until <= clock.now + timedelta(minutes=15)  # never longer


def test_one_address_failing_on_many_names_is_stopped(world, app, new_client, clock, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_ADDRESS_MAX_FAILURES", 6)
    client, other = new_client(), new_client()
    for n in range(6):
        sign_in(client, f"guess{n}", WRONG, address(7))
    response = sign_in(client, world.leader.username, PASSWORD, address(7))
    assert response.status_code == 429
    assert "登录失败次数过多，请 15 分钟后再试" in response.get_data(as_text=True)
    assert actions(None, "login_throttled")
    assert sign_in(other, world.leader.username, PASSWORD, address(8)).status_code == 302
    clock.advance(minutes=15, seconds=1)
    assert sign_in(client, world.leader.username, PASSWORD, address(7)).status_code == 302


def test_attempts_are_kept_with_the_address_and_pruned(world, client, clock):
    sign_in(client, world.officer_b.username, WRONG, address(3))
    row = db.session.scalar(sa.select(LoginAttempt).where(LoginAttempt.address == "198.51.100.3"))
    assert (row.user_id, row.succeeded) == (world.officer_b.id, False)
    row_id = row.id
    db.session.expunge(row)
    clock.advance(days=1, minutes=1)
    sign_in(client, "someone", WRONG, address(4))
    kept = db.session.scalars(sa.select(LoginAttempt.address).where(LoginAttempt.id >= row_id))
    assert list(kept) == ["198.51.100.4"]


# ---- Flask-Limiter: the request rate per real client address ----


@pytest.fixture
def limited_app(database_url, app):
    """An app behind one trusted proxy with Flask-Limiter on (the limiter object is shared:
    its state is put back afterwards). Its context stays pushed, so its requests keep the
    test's database session."""
    saved = dict(limiter.__dict__)
    contexts = []

    def make(storage: str):
        class Config(TestingConfig):
            SQLALCHEMY_DATABASE_URI = database_url
            PROXY_COUNT = 1
            RATELIMIT_ENABLED = True
            RATELIMIT_STORAGE_URI = storage
            RATELIMIT_KEY_PREFIX = f"crm-test-{uuid.uuid4().hex}"
            LOGIN_RATE_LIMIT = "3 per minute"

        limited = create_app(Config)
        limited.test_client_class = Client
        contexts.append(limited.app_context())
        contexts[-1].push()
        return limited

    yield make
    for context in reversed(contexts):
        context.pop()
    limiter.__dict__.clear()
    limiter.__dict__.update(saved)


def _redis_reachable() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=0.5).close()
    except OSError:
        return False
    return True


@pytest.mark.parametrize("storage", ["memory://", "redis://127.0.0.1:6379/0"])
def test_the_limiter_counts_per_real_client_behind_the_proxy(world, limited_app, storage):
    if storage.startswith("redis") and not _redis_reachable():
        pytest.skip("no Redis on 127.0.0.1:6379")
    client = limited_app(storage).test_client()

    def attempt(forwarded: str):
        return client.post(
            "/login",
            data={"username": world.taskforce_x.username, "password": WRONG},
            headers={"X-Forwarded-For": forwarded},
        )

    assert [attempt("203.0.113.5").status_code for _ in range(4)] == [200, 200, 200, 429]
    assert "请求过于频繁" in attempt("203.0.113.5").get_data(as_text=True)
    assert attempt("203.0.113.6").status_code == 200  # another client behind the same proxy
    addresses = set(db.session.scalars(sa.select(LoginAttempt.address)))
    assert {"203.0.113.5", "203.0.113.6"} <= addresses


def test_a_storage_that_is_down_does_not_stop_sign_ins(world, limited_app):
    client = limited_app("redis://127.0.0.1:1/0").test_client()  # nothing listens there
    response = client.post("/login", data={"username": world.leader.username, "password": PASSWORD})
    assert response.status_code == 302


# ---- item 7: the commands ----


def test_unlock_user_lifts_every_lock_now(world, runner, new_client, clock):
    officer = world.officer_a
    officer.locked_until = clock.now + timedelta(minutes=10)
    for _ in range(5):
        db.session.add(LoginAttempt(at=clock.now, address="127.0.0.1", user_id=officer.id))
    db.session.flush()
    result = runner.invoke(args=["crm", "unlock-user", officer.username])
    assert result.exit_code == 0, result.output
    assert f"已解除 {officer.username} 的登录锁定" in result.output
    entry = actions(officer, "user_unlocked")[-1]
    assert ACTION_LABELS["user_unlocked"] == "解除登录锁定"  # as the audit page names it
    assert entry.changes["login_failures"] == [5, 0] and "locked_until" in entry.changes
    client = new_client()
    assert sign_in(client, officer.username).status_code == 302


def test_unlock_user_names_an_unknown_user(runner):
    result = runner.invoke(args=["crm", "unlock-user", "nobody"])
    assert result.exit_code != 0 and "没有用户名为“nobody”的用户" in result.output


def test_set_password_asks_twice_applies_the_rules_and_forces_a_change(world, runner, new_client):
    officer = world.officer_b
    version = officer.session_version
    weak = runner.invoke(args=["crm", "set-password", officer.username], input="Demo@2026\n" * 2)
    assert weak.exit_code != 0 and "过于常见" in weak.output
    assert check_password_hash(officer.password_hash, PASSWORD)  # nothing changed
    typo = runner.invoke(
        args=["crm", "set-password", officer.username], input=f"{STRONG}\nOther!Pass2\n" * 3
    )
    assert typo.exit_code != 0  # the two entries never matched: asked again, then given up
    assert check_password_hash(officer.password_hash, PASSWORD)
    result = runner.invoke(args=["crm", "set-password", officer.username], input=f"{STRONG}\n" * 2)
    assert result.exit_code == 0, result.output
    assert STRONG not in result.output  # hidden input
    db.session.expire_all()
    assert check_password_hash(officer.password_hash, STRONG)
    assert officer.must_change_password and officer.session_version > version
    assert actions(officer, "password_set")[-1].changes["password"] == ["***", "***"]
    client = new_client()
    assert (
        sign_in(client, officer.username, STRONG)
        .headers["Location"]
        .startswith("/account/password")
    )


def test_set_password_keep_needs_no_change(world, runner):
    result = runner.invoke(
        args=["crm", "set-password", "--keep", world.leader.username], input=f"{STRONG}\n" * 2
    )
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    assert not world.leader.must_change_password


# ---- item 11: the `next` target ----


@pytest.mark.parametrize(
    "target", ["/%0D%0AX-Injected:%201", "/projects%0aSet-Cookie:%20x=1", "/%09/evil.example"]
)
def test_a_next_with_control_characters_goes_home(world, client, target):
    response = client.post(
        f"/login?next={target}",
        data={"username": world.officer_a.username, "password": PASSWORD},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert "X-Injected" not in response.headers and "Set-Cookie: x" not in str(response.headers)


def test_safe_next_keeps_ordinary_paths():
    assert safe_next("/projects/3?tab=followups") == "/projects/3?tab=followups"
    assert safe_next("/\r\nX: 1") is None and safe_next("/a\x7fb") is None


# ---- item 13: the password rules ----


def _change(client, new: str):
    return client.post(
        "/account/password",
        data={"current_password": PASSWORD, "password": new, "password_confirm": new},
    )


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("Qwer1234!", "过于常见"),  # qwer1234 plus a symbol
        ("woaini1314A", "容易被猜中"),  # pinyin: 我爱你一生一世
        ("Demo@2026", "过于常见"),  # the published demo password
        ("officer_a1", "不能包含用户名"),  # the user name and a digit
        ("Officer_A2026!", "不能包含用户名"),
        ("Pe#5gz29ptzmse", "过于常见"),  # looks random, but it is on the breached list
    ],
)
def test_guessable_passwords_are_refused_at_the_field(world, login, password, message):
    client = login(world.officer_a)
    old_hash = world.officer_a.password_hash
    response = _change(client, password)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    db.session.expire_all()
    assert world.officer_a.password_hash == old_hash


def test_the_users_own_names_count_as_guessable(world):
    user = world.leader
    user.display_name = "Zhang Lanqiao"
    user.phone = "13905581234"
    assert services.check_password_rules("13905581234Aa!", user=user) is not None
    assert services.check_password_rules("Lan-Hai#Qiao88", user=user) is None


def test_the_last_five_passwords_are_refused(world, db_session):
    user = world.taskforce_x
    current = PASSWORD
    used = [f"Lan-Hai#Qiao{n}x" for n in range(6)]
    for new in used:
        services.change_password(user, current_password=current, new_password=new)
        current = new
    for old in used[-5:]:
        message = services.check_password_rules(old, user=user)
        assert message in ("新密码不能与当前密码相同", "不能使用最近 5 次用过的密码"), old
    assert services.check_password_rules(used[0], user=user) is None  # six changes ago
    count = sa.select(sa.func.count()).where(PasswordHistory.user_id == user.id)
    assert db.session.scalar(count) == 5


def test_a_password_used_before_is_refused_on_the_page(world, login):
    client = login(world.officer_a)
    assert _change(client, STRONG).status_code == 302
    world.officer_a.password_hash = generate_password_hash(PASSWORD, "pbkdf2:sha256:1")
    db.session.flush()
    response = _change(client, STRONG)
    assert response.status_code == 400
    assert "不能使用最近 5 次用过的密码" in response.get_data(as_text=True)


def test_the_breached_list_is_shipped_and_large():
    passwords = breached_passwords()
    assert len(passwords) >= 10_000
    assert "password1!" in passwords and "iloveyou<3" in passwords
    assert is_common("PASSWORD1!") and is_common(" Woaini1314 ")


def test_the_demo_and_the_factories_keep_their_passwords(world, db_session):
    """The demo password is refused for anyone choosing it, yet the demo accounts use it (they
    are made without the policy); the factories set a hash directly."""
    assert services.check_password_rules(DEMO_PASSWORD) is not None
    demo = services.create_user(
        None,
        username="demo_check",
        display_name="演示",
        password=DEMO_PASSWORD,
        role=world.leader.role,
        enforce_password_policy=False,
    )
    assert check_password_hash(demo.password_hash, DEMO_PASSWORD)
    with pytest.raises(services.ServiceError):
        services.create_user(
            None,
            username="demo_check2",
            display_name="演示",
            password=DEMO_PASSWORD,
            role=world.leader.role,
        )
