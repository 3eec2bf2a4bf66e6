"""Accounts: password hashing and rules, sign-in with lockout, sessions, user administration.

The account rules of 等保 2.0 level 2 and OWASP ASVS level 2:
- a sign-in fails the same way for an unknown user, a wrong password, a disabled and a locked
  account; `LOGIN_MAX_FAILURES` failures within `LOGIN_FAILURE_WINDOW_MINUTES` lock the account
  for `LOGIN_LOCK_MINUTES`, counted in the database so every worker sees them; every attempt is
  audited (login, login_failed, login_locked);
- passwords: 8 to 256 characters, 3 of 4 character classes, not the user name, not a common
  password; they expire after `PASSWORD_MAX_AGE_DAYS` (0: never); an account an admin created
  or whose password an admin reset must choose its own password at the next sign-in;
- `end_sessions` raises the user's session version: every session signed in before, remember-me
  included, is refused from then on (logout, password change, role change, disabling).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from functools import cache

import sqlalchemy as sa
from flask import current_app
from werkzeug.security import check_password_hash, generate_password_hash

from crm import core
from crm.audit.services import apply_changes, record
from crm.auth.models import Role, User
from crm.auth.passwords import is_common
from crm.catalog.models import Carrier, Cluster
from crm.core import ServiceError, UTCDateTime
from crm.extensions import db

PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 256
PASSWORD_HINT = (
    f"{PASSWORD_MIN_LENGTH} 到 {PASSWORD_MAX_LENGTH} 位，须包含大写字母、小写字母、数字、符号中的"
    "至少三类，不能是用户名或常见密码；长密码（如一句话）更安全"
)


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])


@cache
def _dummy_hash(method: str) -> str:
    """A hash made like the real ones: checking it costs what checking a user's password costs,
    so the answer time does not tell whether a user name exists."""
    return generate_password_hash("not-a-password", method=method)


def _config_minutes(name: str) -> timedelta:
    return timedelta(minutes=current_app.config[name])


def is_locked(user: User, now: datetime | None = None) -> bool:
    return user.locked_until is not None and user.locked_until > (now or core.utcnow())


def authenticate(username: str, password: str) -> User | None:
    """The active, unlocked user with this name and password, or None. Every attempt is audited;
    failures are counted and lock the account (see the module docstring)."""
    now = core.utcnow()
    name = username.strip()
    user = db.session.scalar(sa.select(User).where(User.username == name))
    if user is None:
        check_password_hash(_dummy_hash(current_app.config["PASSWORD_HASH_METHOD"]), password)
        record(None, "login_failed", object_type="users", summary=f"未知用户 {name[:64]}")
        return None
    password_ok = check_password_hash(user.password_hash, password)
    if is_locked(user, now):
        until = user.locked_until.astimezone(core.LOCAL_TZ).strftime("%H:%M")
        record(
            user,
            "login_locked",
            user,
            summary=f"{user.username} 账号锁定中（至 {until}），拒绝登录",
        )
        return None
    if not password_ok or not user.is_active:
        reason = "密码错误" if not password_ok else "账号已停用"
        record(user, "login_failed", user, summary=f"{user.username} {reason}")
        _count_failure(user, now)
        return None
    user.failed_login_count = 0
    user.failed_login_since = None
    user.locked_until = None
    user.last_login_at = now
    record(user, "login", user, summary=user.username)
    return user


def _count_failure(user: User, now: datetime) -> None:
    """Add one failure in one UPDATE (concurrent attempts in other workers are all counted);
    lock the account when the window holds `LOGIN_MAX_FAILURES` of them."""
    window_start = now - _config_minutes("LOGIN_FAILURE_WINDOW_MINUTES")
    new_window = sa.or_(User.failed_login_since.is_(None), User.failed_login_since < window_start)
    db.session.execute(
        sa.update(User)
        .where(User.id == user.id)
        .values(
            failed_login_count=sa.case((new_window, 1), else_=User.failed_login_count + 1),
            failed_login_since=sa.case(
                (new_window, sa.literal(now, UTCDateTime())), else_=User.failed_login_since
            ),
        )
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(user, ["failed_login_count", "failed_login_since"])
    limit = current_app.config["LOGIN_MAX_FAILURES"]
    if user.failed_login_count >= limit:
        user.locked_until = now + _config_minutes("LOGIN_LOCK_MINUTES")
        user.failed_login_count = 0
        user.failed_login_since = None
        minutes = current_app.config["LOGIN_LOCK_MINUTES"]
        record(
            user,
            "login_locked",
            user,
            summary=f"{user.username} 连续 {limit} 次登录失败，锁定 {minutes} 分钟",
        )
    db.session.flush()


def unlock(user: User) -> dict[str, list]:
    """Clear the failure count and any lock; the diff for the audit log."""
    changes = {}
    if user.locked_until is not None:
        changes["locked_until"] = [user.locked_until.isoformat(), None]
    user.locked_until = None
    user.failed_login_count = 0
    user.failed_login_since = None
    return changes


def check_password_rules(password: str, username: str = "") -> str | None:
    """A message in Chinese if the password is too weak, else None."""
    if len(password) < PASSWORD_MIN_LENGTH:
        return f"密码至少 {PASSWORD_MIN_LENGTH} 位"
    if len(password) > PASSWORD_MAX_LENGTH:
        return f"密码不能超过 {PASSWORD_MAX_LENGTH} 位"
    classes = sum(
        [
            any(c.islower() for c in password),
            any(c.isupper() for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() for c in password),
        ]
    )
    if classes < 3:
        return "密码须包含大写字母、小写字母、数字、符号中的至少三类"
    if username and password.lower() == username.lower():
        return "密码不能与用户名相同"
    if is_common(password):
        return "该密码过于常见，容易被猜中，请换一个"
    return None


def _set_password(user: User, password: str) -> None:
    user.password_hash = hash_password(password)
    user.password_changed_at = core.utcnow()


def password_expired(user: User, now: datetime | None = None) -> bool:
    """True when the password is older than `PASSWORD_MAX_AGE_DAYS` (never when that is 0)."""
    days = current_app.config["PASSWORD_MAX_AGE_DAYS"]
    if not days:
        return False
    since = user.password_changed_at or user.created_at
    return since is not None and since + timedelta(days=days) <= (now or core.utcnow())


def must_change_password(user: User) -> bool:
    """The user may do nothing but choose a new password."""
    return user.must_change_password or password_expired(user)


def end_sessions(user: User) -> None:
    """End every session of `user` signed in before now, remember-me cookies included."""
    user.session_version = (user.session_version or 0) + 1


def change_password(user: User, *, current_password: str, new_password: str) -> None:
    """The user's own change (修改密码): the current password, then the rules; ends every other
    session of the user (the view signs the current one in again)."""
    errors = {}
    if not check_password_hash(user.password_hash, current_password):
        errors["current_password"] = "当前密码不正确"
    elif message := check_password_rules(new_password, user.username):
        errors["password"] = message
    elif check_password_hash(user.password_hash, new_password):
        errors["password"] = "新密码不能与当前密码相同"
    if errors:
        raise ServiceError(errors=errors)
    _set_password(user, new_password)
    user.must_change_password = False
    end_sessions(user)
    record(user, "password_changed", user, summary=user.username)
    db.session.flush()


def logout(user: User) -> None:
    """Signing out ends every session of the user, on every computer."""
    end_sessions(user)
    record(user, "logout", user, summary=user.username)
    db.session.flush()


USERNAME_MAX = 64
DISPLAY_NAME_MAX = 64
PHONE_MAX = 32
_USERNAME_RE = re.compile(r"[A-Za-z0-9_.\-]+")
_PHONE_RE = re.compile(r"[0-9+\-() ]*")


def _check_scope(
    role: Role,
    carrier: Carrier | None,
    cluster: Cluster | None,
    user: User | None = None,
) -> dict[str, str]:
    """An officer needs an active 载体, a task force an active cluster.

    A user may keep the 载体 or cluster it already has after that entry was deactivated.
    """
    errors = {}
    if role is Role.OFFICER:
        if carrier is None:
            errors["carrier_id"] = "招商专员须属于一个载体"
        elif not carrier.is_active and (user is None or user.carrier_id != carrier.id):
            errors["carrier_id"] = "该载体已停用"
    if role is Role.TASKFORCE:
        if cluster is None:
            errors["cluster_id"] = "产业专班须对应一个产业集群"
        elif not cluster.is_active and (user is None or user.cluster_id != cluster.id):
            errors["cluster_id"] = "该产业集群已停用"
    return errors


def _check_profile(display_name: str, phone: str) -> dict[str, str]:
    errors = {}
    if len(display_name) > DISPLAY_NAME_MAX:
        errors["display_name"] = f"姓名不能超过 {DISPLAY_NAME_MAX} 个字"
    if len(phone) > PHONE_MAX:
        errors["phone"] = f"电话不能超过 {PHONE_MAX} 个字符"
    elif not _PHONE_RE.fullmatch(phone):
        errors["phone"] = "电话只能包含数字、空格和 + - ( )"
    return errors


def _check_username(username: str) -> str | None:
    if not username:
        return "请填写用户名"
    if len(username) > USERNAME_MAX:
        return f"用户名不能超过 {USERNAME_MAX} 个字符"
    if not _USERNAME_RE.fullmatch(username):
        return "用户名只能包含英文字母、数字、下划线、点和连字符"
    taken = sa.select(User.id).where(sa.func.lower(User.username) == username.lower())
    if db.session.scalar(taken.limit(1)) is not None:
        return "该用户名已存在"
    return None


def create_user(
    actor: User | None,
    *,
    username: str,
    display_name: str,
    password: str,
    role: Role,
    carrier: Carrier | None = None,
    cluster: Cluster | None = None,
    phone: str = "",
    must_change_password: bool = False,
) -> User:
    """Create an account. Errors are keyed by the form's field names (carrier_id, cluster_id).

    An admin creating an account on the admin page passes `must_change_password=True`: the
    user chooses an own password at the first sign-in. The command line and the demo do not.
    """
    username = username.strip()
    display_name = display_name.strip()
    phone = phone.strip()
    errors = _check_scope(role, carrier, cluster)
    errors.update(_check_profile(display_name, phone))
    if message := _check_username(username):
        errors["username"] = message
    if message := check_password_rules(password, username):
        errors["password"] = message
    if errors:
        raise ServiceError(errors=errors)
    user = User(
        username=username,
        display_name=display_name or username,
        password_hash=hash_password(password),
        password_changed_at=core.utcnow(),
        must_change_password=must_change_password,
        role=role,
        carrier=carrier if role is Role.OFFICER else None,
        cluster=cluster if role is Role.TASKFORCE else None,
        phone=phone,
    )
    db.session.add(user)
    db.session.flush()
    record(actor, "user_created", user, summary=f"{username}（{role.label}）")
    return user


def update_user(
    actor: User,
    user: User,
    *,
    display_name: str,
    role: Role,
    carrier: Carrier | None,
    cluster: Cluster | None,
    phone: str = "",
    is_active: bool = True,
    password: str = "",
    unlock_account: bool = False,
) -> User:
    """Change an account; `is_active=False` disables it (accounts are never deleted).

    An empty `password` keeps the current one; a new one set here is the admin's, so the user
    must change it at the next sign-in. A change of role or scope, disabling and a new password
    end the user's sessions. Enabling, a new password or `unlock_account` lift a lockout.
    Admins cannot disable or demote themselves, so at least one active admin always remains.
    """
    display_name = display_name.strip()
    phone = phone.strip()
    errors = _check_scope(role, carrier, cluster, user)
    errors.update(_check_profile(display_name, phone))
    if password and (message := check_password_rules(password, user.username)):
        errors["password"] = message
    if user.id == actor.id:
        if not is_active:
            errors["is_active"] = "不能停用自己的账号"
        if role is not Role.ADMIN:
            errors["role"] = "不能取消自己的管理员角色"
    if errors:
        raise ServiceError(errors=errors)
    changes = apply_changes(
        user,
        {
            "display_name": display_name or user.username,
            "role": role,
            "carrier_id": carrier.id if carrier and role is Role.OFFICER else None,
            "cluster_id": cluster.id if cluster and role is Role.TASKFORCE else None,
            "phone": phone,
            "is_active": is_active,
        },
    )
    if password:
        _set_password(user, password)
        user.must_change_password = user.id != actor.id  # an admin's own choice stands
        changes["password"] = ["***", "***"]
    if password or unlock_account or changes.get("is_active") == [False, True]:
        changes |= unlock(user)
    if password or not is_active or {"role", "carrier_id", "cluster_id"} & changes.keys():
        end_sessions(user)
    if changes:
        action = "user_updated"
        if "is_active" in changes:
            action = "user_enabled" if is_active else "user_disabled"
        record(actor, action, user, summary=user.username, changes=changes)
        db.session.flush()
    return user
