"""Accounts: password hashing, sign-in, user administration."""

from __future__ import annotations

import re

import sqlalchemy as sa
from flask import current_app
from werkzeug.security import check_password_hash, generate_password_hash

from crm.audit.services import apply_changes, record
from crm.auth.models import Role, User
from crm.catalog.models import Carrier, Cluster
from crm.core import ServiceError, utcnow
from crm.extensions import db

# Compared against when the user does not exist, so both paths cost the same.
_DUMMY_HASH = generate_password_hash("not-a-password", method="pbkdf2:sha256:1")


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])


def authenticate(username: str, password: str) -> User | None:
    """The active user with this name and password, or None. Every attempt is audited."""
    user = db.session.scalar(sa.select(User).where(User.username == username.strip()))
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        record(None, "login_failed", object_type="users", summary=f"未知用户 {username[:64]}")
        return None
    if not check_password_hash(user.password_hash, password) or not user.is_active:
        record(user, "login_failed", user, summary=user.username)
        return None
    user.last_login_at = utcnow()
    record(user, "login", user, summary=user.username)
    return user


def check_password_rules(password: str, username: str = "") -> str | None:
    """A message in Chinese if the password is too weak, else None."""
    if len(password) < 8:
        return "密码至少 8 位"
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
    return None


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
) -> User:
    """Create an account. Errors are keyed by the form's field names (carrier_id, cluster_id)."""
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
) -> User:
    """Change an account; `is_active=False` disables it (accounts are never deleted).

    An empty `password` keeps the current one. Admins cannot disable or demote themselves,
    so at least one active admin always remains.
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
        user.password_hash = hash_password(password)
        changes["password"] = ["***", "***"]
    if changes:
        action = "user_updated"
        if "is_active" in changes:
            action = "user_enabled" if is_active else "user_disabled"
        record(actor, action, user, summary=user.username, changes=changes)
        db.session.flush()
    return user
