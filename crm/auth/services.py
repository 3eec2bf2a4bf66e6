"""Accounts: password hashing and rules, sessions, user administration.

The account rules of 等保 2.0 level 2 (登录失败处理、限制非法登录次数) and OWASP ASVS 5.0 level 2:
- signing in and the lockout: `crm/auth/signin.py`;
- passwords (`check_password_rules`): 8 to 256 characters, 3 of 4 character classes (等保's
  composition rule), not the user name (with digits or symbols added), not on the Chinese or
  the breached list, a zxcvbn score of at least `PASSWORD_MIN_SCORE` with the user's own names
  as hints, and none of the last `PASSWORD_HISTORY` passwords; they expire after
  `PASSWORD_MAX_AGE_DAYS` (0: never); an account an admin created or whose password an admin
  reset must choose its own password at the next sign-in;
- `end_sessions` raises the user's session version: every session signed in before, remember-me
  included, is refused from then on (logout, password change, role change, disabling).
"""

from __future__ import annotations

import re
import secrets
import string
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from werkzeug.security import check_password_hash, generate_password_hash

from crm import core
from crm.audit.services import apply_changes, record
from crm.auth.models import PasswordHistory, Role, User
from crm.auth.passwords import is_common, strength
from crm.auth.signin import unlock
from crm.catalog.models import Carrier, Cluster, Department
from crm.core import ServiceError
from crm.extensions import db

PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 256
PASSWORD_MIN_SCORE = 3  # zxcvbn: 3 is "safely unguessable", about 10^8 guesses or more
PASSWORD_HISTORY = 5  # a new password is none of the last five (the current one included)
PASSWORD_HINT = (
    f"{PASSWORD_MIN_LENGTH} 到 {PASSWORD_MAX_LENGTH} 位，须包含大写字母、小写字母、数字、符号中的"
    "至少三类，不能含用户名、不能是常见或泄露过的密码、不能与最近 5 次的密码相同；"
    "长密码（如一句话）更安全"
)


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])


def _contains_username(password: str, username: str) -> bool:
    """The user name, whatever the case, alone or with digits and symbols around it, or inside
    a longer password when it is 4 characters or more."""
    lower, name = password.lower(), username.lower()
    if not name:
        return False
    if len(name) >= 4 and name in lower:
        return True
    return lower.strip(string.digits + string.punctuation + string.whitespace) == name


def _recent_hashes(user: User) -> list[str]:
    """The hashes of the user's current and last passwords, newest first."""
    history = db.session.scalars(
        sa.select(PasswordHistory.password_hash)
        .where(PasswordHistory.user_id == user.id)
        .order_by(PasswordHistory.created_at.desc(), PasswordHistory.id.desc())
        .limit(PASSWORD_HISTORY)
    )
    return list(dict.fromkeys([user.password_hash, *history]))[:PASSWORD_HISTORY]


def check_password_rules(
    password: str,
    username: str = "",
    names: tuple[str, ...] = (),
    user: User | None = None,
) -> str | None:
    """A message in Chinese if the password may not be used, else None. `names` are the user's
    other names (display name, phone); `user`, an existing account, adds the history rule."""
    if user is not None:
        username = username or user.username
        names = (*names, user.display_name, user.phone)
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
    if classes < 3:  # 等保 2.0: 身份鉴别信息具有复杂度要求
        return "密码须包含大写字母、小写字母、数字、符号中的至少三类"
    if username and password.lower() == username.lower():
        return "密码不能与用户名相同"
    if username and _contains_username(password, username):
        return "密码不能包含用户名"
    if is_common(password):
        return "该密码过于常见，容易被猜中，请换一个"
    if strength(password, [username, *names]) < PASSWORD_MIN_SCORE:
        return "该密码容易被猜中（常见词、拼音、键盘顺序、年份或姓名加数字等），请换一个更长、更少见的密码"
    if user is not None:
        hashes = _recent_hashes(user)
        if hashes and check_password_hash(hashes[0], password):
            return "新密码不能与当前密码相同"
        if any(check_password_hash(h, password) for h in hashes[1:]):
            return f"不能使用最近 {PASSWORD_HISTORY} 次用过的密码"
    return None


def _set_password(user: User, password: str) -> None:
    """Set the password and keep its hash in the user's history (the last `PASSWORD_HISTORY`)."""
    user.password_hash = hash_password(password)
    user.password_changed_at = core.utcnow()
    if user.id is None:
        db.session.flush()
    db.session.add(
        PasswordHistory(
            user_id=user.id, password_hash=user.password_hash, created_at=user.password_changed_at
        )
    )
    db.session.flush()
    kept_ids = (
        sa.select(PasswordHistory.id)
        .where(PasswordHistory.user_id == user.id)
        .order_by(PasswordHistory.created_at.desc(), PasswordHistory.id.desc())
        .limit(PASSWORD_HISTORY)
        .scalar_subquery()
    )
    db.session.execute(
        sa.delete(PasswordHistory)
        .where(PasswordHistory.user_id == user.id, PasswordHistory.id.not_in(kept_ids))
        .execution_options(synchronize_session=False)
    )


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
    elif message := check_password_rules(new_password, user=user):
        errors["password"] = message
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
    department: Department | None = None,
) -> dict[str, str]:
    """An officer needs an active 载体, a task force an active cluster, a department user an
    active 部门.

    A user may keep the 载体, cluster or 部门 it already has after that entry was deactivated.
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
    if role is Role.DEPARTMENT:
        if department is None:
            errors["department_id"] = "部门用户须属于一个部门"
        elif not department.is_active and (user is None or user.department_id != department.id):
            errors["department_id"] = "该部门已停用"
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


EMAIL_MAX = 254
EMAIL_INVALID = "请输入有效的电子邮箱地址，如 zhangsan@example.gov.cn"


def normalize_email(email: str | None) -> str | None:
    """A user's address as stored: checked and normalised by email-validator (the domain in
    lower case, internationalised domains as written), None for none. An invalid one raises
    ServiceError at the field `email`."""
    from email_validator import EmailNotValidError, validate_email

    email = (email or "").strip()
    if not email:
        return None
    if len(email) > EMAIL_MAX:
        raise ServiceError(errors={"email": f"电子邮箱不能超过 {EMAIL_MAX} 个字符"})
    try:
        return validate_email(email, check_deliverability=False).normalized
    except EmailNotValidError:
        raise ServiceError(errors={"email": EMAIL_INVALID}) from None


def _email_or_error(email: str | None) -> tuple[str | None, dict[str, str]]:
    """`normalize_email`, its refusal as the errors of a form with other fields."""
    try:
        return normalize_email(email), {}
    except ServiceError as exc:
        return None, exc.errors


def set_own_email(user: User, email: str | None) -> bool:
    """The user's own address (电子邮箱), or none; audited. A new address gets a mail saying
    so, when mail is on (sent by the queue after the commit). True when it changed."""
    from crm.jobs.mail import queue_mail

    changes = apply_changes(user, {"email": normalize_email(email)})
    if not changes:
        return False
    record(user, "email_changed", user, summary=user.username, changes=changes)
    db.session.flush()
    if user.email:
        queue_mail(
            user,
            "电子邮箱设置成功",
            f"{user.display_name}，您好：\n\n您在双招双引项目管理系统中设置了接收邮件的地址 "
            f"{user.email}。此后每日待办摘要和通知将发到这里。\n\n"
            "如非本人操作，请联系系统管理员。",
            key=f"email-set:{user.id}:{secrets.token_hex(8)}",
        )
    return True


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
    department: Department | None = None,
    phone: str = "",
    email: str | None = None,
    must_change_password: bool = False,
    enforce_password_policy: bool = True,
) -> User:
    """Create an account. Errors are keyed by the form's field names (carrier_id, cluster_id,
    department_id).

    An admin creating an account on the admin page passes `must_change_password=True`: the
    user chooses an own password at the first sign-in. The command line and the demo do not.
    Only the demo and the benchmark data pass `enforce_password_policy=False`: their published
    passwords are refused anywhere else.
    """
    username = username.strip()
    display_name = display_name.strip()
    phone = phone.strip()
    errors = _check_scope(role, carrier, cluster, department=department)
    errors.update(_check_profile(display_name, phone))
    if message := _check_username(username):
        errors["username"] = message
    if enforce_password_policy and (
        message := check_password_rules(password, username, (display_name, phone))
    ):
        errors["password"] = message
    email, email_error = _email_or_error(email)
    errors.update(email_error)
    if errors:
        raise ServiceError(errors=errors)
    user = User(
        username=username,
        display_name=display_name or username,
        must_change_password=must_change_password,
        role=role,
        carrier=carrier if role is Role.OFFICER else None,
        cluster=cluster if role is Role.TASKFORCE else None,
        department=department if role is Role.DEPARTMENT else None,
        phone=phone,
        email=email,
    )
    db.session.add(user)
    _set_password(user, password)  # the hash is set before the user is first flushed
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
    email: str | None,
    department: Department | None = None,
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
    errors = _check_scope(role, carrier, cluster, user, department)
    errors.update(_check_profile(display_name, phone))
    if password and (message := check_password_rules(password, names=(display_name,), user=user)):
        errors["password"] = message
    email, email_error = _email_or_error(email)
    errors.update(email_error)
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
            "department_id": department.id if department and role is Role.DEPARTMENT else None,
            "phone": phone,
            "email": email,
            "is_active": is_active,
        },
    )
    if password:
        _set_password(user, password)
        user.must_change_password = user.id != actor.id  # an admin's own choice stands
        changes["password"] = ["***", "***"]
    if password or unlock_account or changes.get("is_active") == [False, True]:
        changes |= unlock(user)
    if (
        password
        or not is_active
        or {"role", "carrier_id", "cluster_id", "department_id"} & changes.keys()
    ):
        end_sessions(user)
    if changes:
        action = "user_updated"
        if "is_active" in changes:
            action = "user_enabled" if is_active else "user_disabled"
        record(actor, action, user, summary=user.username, changes=changes)
        db.session.flush()
    return user


def set_password(
    actor: User | None, user: User, password: str, *, must_change: bool = True
) -> None:
    """An administrator sets the password (`crm set-password`): every rule applies; the user
    must change it at the next sign-in unless `must_change` is False; the user's sessions end
    and any lockout is lifted."""
    if message := check_password_rules(password, user=user):
        raise ServiceError(errors={"password": message})
    _set_password(user, password)
    user.must_change_password = must_change
    end_sessions(user)
    changes = {"password": ["***", "***"], "must_change_password": must_change} | unlock(user)
    record(actor, "password_set", user, summary=user.username, changes=changes)
    db.session.flush()
