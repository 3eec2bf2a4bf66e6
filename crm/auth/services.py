"""Accounts: password hashing, sign-in, user administration."""

from __future__ import annotations

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


def _check_scope(role: Role, carrier: Carrier | None, cluster: Cluster | None) -> dict[str, str]:
    errors = {}
    if role is Role.OFFICER and carrier is None:
        errors["carrier_id"] = "招商专员须属于一个载体"
    if role is Role.TASKFORCE and cluster is None:
        errors["cluster_id"] = "产业专班须对应一个产业集群"
    return errors


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
    username = username.strip()
    errors = _check_scope(role, carrier, cluster)
    if db.session.scalar(sa.select(User.id).where(User.username == username)):
        errors["username"] = "该用户名已存在"
    if message := check_password_rules(password, username):
        errors["password"] = message
    if errors:
        raise ServiceError(errors=errors)
    user = User(
        username=username,
        display_name=display_name.strip() or username,
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
    errors = _check_scope(role, carrier, cluster)
    if password and (message := check_password_rules(password, user.username)):
        errors["password"] = message
    if user.id == actor.id and (not is_active or role is not Role.ADMIN):
        errors["role"] = "不能停用自己或取消自己的管理员角色"
    if errors:
        raise ServiceError(errors=errors)
    changes = apply_changes(
        user,
        {
            "display_name": display_name.strip() or user.username,
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
        record(actor, "user_updated", user, summary=user.username, changes=changes)
    return user
