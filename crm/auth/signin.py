"""Signing in, with the lockout of 等保 2.0 level 2 (登录失败处理、限制非法登录次数).

Every attempt is audited (login, login_failed, login_locked, login_throttled) and kept with
its client address (`LoginAttempt`) in the database, so every worker and every host counts the
same attempts. A sign-in fails the same way for an unknown user, a wrong password, a disabled
and a locked account.
- `LOGIN_MAX_FAILURES` failures on one account from one address within
  `LOGIN_FAILURE_WINDOW_MINUTES` lock that address out of that account for
  `LOGIN_LOCK_MINUTES`: the owner signing in from elsewhere is not locked out by a stranger;
- against guessing from many addresses, `LOGIN_ACCOUNT_MAX_FAILURES` failures within the
  window from addresses the account has not signed in from lock the account for such addresses
  (`User.locked_until`): `LOGIN_ACCOUNT_LOCK_MINUTES` the first time, doubling with each further
  lock within a day, never longer than `LOGIN_LOCK_MINUTES`; addresses the account signed in
  from within `LOGIN_KNOWN_ADDRESS_DAYS` are not affected;
- `LOGIN_ADDRESS_MAX_FAILURES` failures from one address within the window, whatever the user
  names, stop that address's sign-ins until they age out (HTTP 429).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache

import sqlalchemy as sa
from flask import current_app
from werkzeug.security import check_password_hash, generate_password_hash

from crm import core
from crm.audit.services import record
from crm.auth.models import LoginAttempt, User
from crm.core import ServiceError, UTCDateTime
from crm.extensions import db

FAILED_ATTEMPTS_KEPT = timedelta(days=1)


class TooManyAttempts(ServiceError):
    """The client address made too many failed sign-ins: it may not try again for a while."""


@cache
def _dummy_hash(method: str) -> str:
    """A hash made like the real ones: checking it costs what checking a user's password costs,
    so the answer time does not tell whether a user name exists."""
    return generate_password_hash("not-a-password", method=method)


def _config_minutes(name: str) -> timedelta:
    return timedelta(minutes=current_app.config[name])


def is_locked(user: User, now: datetime | None = None) -> bool:
    """Locked account-wide (for the addresses it has not signed in from)."""
    return user.locked_until is not None and user.locked_until > (now or core.utcnow())


def _failures(*conditions) -> sa.Select:
    return sa.select(LoginAttempt.at).where(~LoginAttempt.succeeded, *conditions)


def _address_throttled(address: str, now: datetime) -> bool:
    window_start = now - _config_minutes("LOGIN_FAILURE_WINDOW_MINUTES")
    limit = current_app.config["LOGIN_ADDRESS_MAX_FAILURES"]
    recent = _failures(LoginAttempt.address == address, LoginAttempt.at > window_start)
    count = db.session.scalar(
        sa.select(sa.func.count()).select_from(recent.limit(limit).subquery())
    )
    return count >= limit


def _is_known_address(user: User, address: str, now: datetime) -> bool:
    """The account signed in successfully from this address lately."""
    since = now - timedelta(days=current_app.config["LOGIN_KNOWN_ADDRESS_DAYS"])
    stmt = sa.select(LoginAttempt.id).where(
        LoginAttempt.user_id == user.id,
        LoginAttempt.address == address,
        LoginAttempt.succeeded,
        LoginAttempt.at > since,
    )
    return db.session.scalar(stmt.limit(1)) is not None


def address_locked_until(user: User, address: str, now: datetime) -> datetime | None:
    """When this address may try this account again, if `LOGIN_MAX_FAILURES` of its latest
    failures on it fell within one window; else None."""
    limit = current_app.config["LOGIN_MAX_FAILURES"]
    window = _config_minutes("LOGIN_FAILURE_WINDOW_MINUTES")
    lock = _config_minutes("LOGIN_LOCK_MINUTES")
    latest = list(
        db.session.scalars(
            _failures(
                LoginAttempt.user_id == user.id,
                LoginAttempt.address == address,
                LoginAttempt.at > now - window - lock,
            )
            .order_by(LoginAttempt.at.desc(), LoginAttempt.id.desc())
            .limit(limit)
        )
    )
    if len(latest) < limit or latest[0] - latest[-1] > window:
        return None
    until = latest[0] + lock
    return until if until > now else None


def _prune_attempts(now: datetime) -> None:
    """Failures are kept a day, the successes that mark known addresses as long as they count."""
    known_days = timedelta(days=current_app.config["LOGIN_KNOWN_ADDRESS_DAYS"])
    db.session.execute(
        sa.delete(LoginAttempt)
        .where(
            sa.or_(
                sa.and_(~LoginAttempt.succeeded, LoginAttempt.at < now - FAILED_ATTEMPTS_KEPT),
                LoginAttempt.at < now - known_days,
            )
        )
        .execution_options(synchronize_session=False)
    )


def _local_time(moment: datetime) -> str:
    return moment.astimezone(core.LOCAL_TZ).strftime("%H:%M")


def authenticate(username: str, password: str, address: str = "") -> User | None:
    """The active user with this name and password, if neither the account nor this address is
    locked; else None. Every attempt is audited and kept with `address` (the client's); failures
    lock as the module docstring says. Raises TooManyAttempts when the address is stopped."""
    now = core.utcnow()
    name = username.strip()
    address = (address or "unknown")[:45]
    _prune_attempts(now)
    if _address_throttled(address, now):
        record(None, "login_throttled", object_type="users", summary=f"{address} 登录失败过多")
        minutes = current_app.config["LOGIN_FAILURE_WINDOW_MINUTES"]
        raise TooManyAttempts(f"登录失败次数过多，请 {minutes} 分钟后再试")
    # FOR UPDATE: attempts on one account wait for each other, so each sees the last count.
    user = db.session.scalar(sa.select(User).where(User.username == name).with_for_update())
    if user is None:
        check_password_hash(_dummy_hash(current_app.config["PASSWORD_HASH_METHOD"]), password)
        db.session.add(LoginAttempt(at=now, address=address, user_id=None))
        record(
            None, "login_failed", object_type="users", summary=f"未知用户 {name[:64]}（{address}）"
        )
        return None
    password_ok = check_password_hash(user.password_hash, password)
    known = _is_known_address(user, address, now)
    until = address_locked_until(user, address, now)
    if until is None and not known and is_locked(user, now):
        until = user.locked_until
    if until is not None:
        record(
            user,
            "login_locked",
            user,
            summary=f"{user.username} 自 {address} 登录已锁定（至 {_local_time(until)}），拒绝登录",
        )
        return None
    if not password_ok or not user.is_active:
        reason = "密码错误" if not password_ok else "账号已停用"
        record(user, "login_failed", user, summary=f"{user.username} {reason}（{address}）")
        db.session.add(LoginAttempt(at=now, address=address, user_id=user.id))
        db.session.flush()
        _lock_address_if_due(user, address, now)
        if not known:
            _count_account_failure(user, now)
        return None
    # Earlier attempts from this address are settled; one row marks it as known.
    db.session.execute(
        sa.delete(LoginAttempt)
        .where(LoginAttempt.user_id == user.id, LoginAttempt.address == address)
        .execution_options(synchronize_session=False)
    )
    db.session.add(LoginAttempt(at=now, address=address, user_id=user.id, succeeded=True))
    user.failed_login_count = 0
    user.failed_login_since = None
    user.last_login_at = now
    record(user, "login", user, summary=f"{user.username}（{address}）")
    return user


def _lock_address_if_due(user: User, address: str, now: datetime) -> None:
    until = address_locked_until(user, address, now)
    if until is not None:
        limit = current_app.config["LOGIN_MAX_FAILURES"]
        minutes = current_app.config["LOGIN_LOCK_MINUTES"]
        record(
            user,
            "login_locked",
            user,
            summary=f"{user.username} 自 {address} 连续 {limit} 次登录失败，"
            f"锁定 {minutes} 分钟（仅此地址）",
        )


def _count_account_failure(user: User, now: datetime) -> None:
    """A failure from an address the account has not signed in from: add one in one UPDATE
    (concurrent attempts in other workers are all counted); lock the account for such
    addresses when the window holds `LOGIN_ACCOUNT_MAX_FAILURES` of them."""
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
    limit = current_app.config["LOGIN_ACCOUNT_MAX_FAILURES"]
    if user.failed_login_count >= limit:
        minutes = _account_lock_minutes(user, now)
        user.locked_until = now + timedelta(minutes=minutes)
        user.failed_login_count = 0
        user.failed_login_since = None
        record(
            user,
            "login_locked",
            user,
            summary=f"{user.username} 在 {current_app.config['LOGIN_FAILURE_WINDOW_MINUTES']} 分钟内"
            f"自陌生地址登录失败 {limit} 次，锁定 {minutes} 分钟（已登录过的地址不受影响）",
        )
    db.session.flush()


def _account_lock_minutes(user: User, now: datetime) -> int:
    """`LOGIN_ACCOUNT_LOCK_MINUTES`, doubled for each earlier account lock within a day (as
    many `LOGIN_ACCOUNT_MAX_FAILURES` as the day's failures hold), at most
    `LOGIN_LOCK_MINUTES`."""
    config = current_app.config
    failures = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(LoginAttempt)
        .where(
            LoginAttempt.user_id == user.id,
            ~LoginAttempt.succeeded,
            LoginAttempt.at > now - FAILED_ATTEMPTS_KEPT,
        )
    )
    earlier_locks = max(failures // config["LOGIN_ACCOUNT_MAX_FAILURES"] - 1, 0)
    minutes = config["LOGIN_ACCOUNT_LOCK_MINUTES"] * 2 ** min(earlier_locks, 16)
    return min(minutes, config["LOGIN_LOCK_MINUTES"])


def unlock(user: User) -> dict[str, list]:
    """Clear the account's lock and every failure counted against it (from any address); the
    diff for the audit log."""
    changes = {}
    if user.locked_until is not None:
        changes["locked_until"] = [user.locked_until.isoformat(), None]
    failures = db.session.execute(
        sa.delete(LoginAttempt)
        .where(LoginAttempt.user_id == user.id, ~LoginAttempt.succeeded)
        .execution_options(synchronize_session=False)
    ).rowcount
    if failures:
        changes["login_failures"] = [failures, 0]
    user.locked_until = None
    user.failed_login_count = 0
    user.failed_login_since = None
    return changes


def unlock_user(actor: User | None, user: User) -> dict[str, list]:
    """解除锁定 (`crm unlock-user`): the account may sign in again from everywhere, now."""
    changes = unlock(user)
    record(actor, "user_unlocked", user, summary=user.username, changes=changes)
    db.session.flush()
    return changes
