"""Sign-in, sign-out, the user's own password, and the rules every signed-in request obeys.

Sessions (Flask's signed cookie) carry the user's id and session version (`User.get_id`), the
time of signing in and the time of the last request. Each request of a signed-in user:
- is refused (signed out) when the session version is no longer the user's (`load_user`);
- ends the session after `SESSION_IDLE_MINUTES` without a request (counted from the last
  request that moved its start, `_note_activity`) or `SESSION_MAX_HOURS` after
  signing in, back to the login page with 会话已超时 (`enforce_session_rules`);
- of a user who must change the password, leads to the change-password page and nowhere else.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required, login_user, logout_user
from flask_login.signals import user_loaded_from_cookie
from sqlalchemy.orm import joinedload

from crm import core, transaction
from crm.audit.services import record_separately
from crm.auth import services, signin
from crm.auth.forms import ChangePasswordForm, LoginForm, LogoutForm, OwnEmailForm
from crm.auth.models import User
from crm.core import parse_int
from crm.extensions import db, limiter, login_manager
from crm.forms import save_form
from crm.speedups import kept

bp = Blueprint("auth", __name__)

LOGIN_FAILED = "用户名或密码不正确，或账号已停用、已锁定（连续输错多次将暂时锁定）"
SESSION_EXPIRED = "会话已超时，请重新登录"

# Where a user who must change the password may still go.
_OPEN_WHILE_CHANGING = {"auth.change_password", "auth.logout", "auth.login", "static"}


def _signed_in_user() -> sa.Select:
    """The user of a request, with what every page's header shows (`User.scope_label`): one
    statement, kept (every request runs it)."""
    return (
        sa.select(User)
        .where(User.id == sa.bindparam("id"))
        .options(joinedload(User.carrier), joinedload(User.cluster))
    )


@login_manager.user_loader
def load_user(identity: str) -> User | None:
    """The active user the session names, if the session's version is still the user's."""
    user_id, _, version = identity.partition(":")
    user_id, version = parse_int(user_id), parse_int(version)
    if user_id is None or version is None:
        return None
    user = db.session.scalar(kept("signed_in_user", _signed_in_user), {"id": user_id})
    if user is None or not user.is_active or user.session_version != version:
        return None
    return user


def _now() -> int:
    return int(core.utcnow().timestamp())


def start_session(user: User, remember: bool = False) -> None:
    """A new session for `user`: nothing of the one before survives (no session fixation,
    a new CSRF token), with the times the timeouts are measured from."""
    session.clear()
    login_user(user, remember=remember)
    session["_login_at"] = session["_seen_at"] = _now()


@user_loaded_from_cookie.connect
def _session_from_remember_cookie(_app, user: User) -> None:
    """A remember-me cookie opened a new session: it counts from the last sign-in, so the
    absolute limit holds for it too."""
    signed_in = user.last_login_at
    session["_login_at"] = int(signed_in.timestamp()) if signed_in else 0
    session["_seen_at"] = _now()


def _session_expired(now: int) -> bool:
    login_at, seen_at = session.get("_login_at"), session.get("_seen_at")
    if not isinstance(login_at, int) or not isinstance(seen_at, int):
        return True
    config = current_app.config
    return (
        now - seen_at > config["SESSION_IDLE_MINUTES"] * 60
        or now - login_at > config["SESSION_MAX_HOURS"] * 3600
    )


def _note_activity(now: int) -> None:
    """Move the idle timeout's start to now, once a thirtieth of the timeout has passed (a
    minute of the default 30): a request that changes the session re-signs and re-sends the
    cookie, which most requests need not do. A session may so end up to that much early."""
    if now - session["_seen_at"] >= current_app.config["SESSION_IDLE_MINUTES"] * 2:
        session["_seen_at"] = now


@bp.before_app_request
def enforce_session_rules():
    if request.endpoint == "static" or not current_user.is_authenticated:
        return None
    now = _now()
    if _session_expired(now):
        user = current_user._get_current_object()
        record_separately(user.id, "session_expired", user, summary=user.username)
        logout_user()  # also drops a remember-me cookie
        for key in ("_login_at", "_seen_at"):
            session.pop(key, None)
        flash(SESSION_EXPIRED, "warning")
        target = request.full_path.rstrip("?") if request.method == "GET" else None
        return redirect(url_for("auth.login", next=target))
    _note_activity(now)
    if request.endpoint not in _OPEN_WHILE_CHANGING and services.must_change_password(current_user):
        return redirect(url_for("auth.change_password"))
    return None


def safe_next(target: str | None) -> str | None:
    """Only a path on this site: no scheme, no host, no `//` or backslash tricks, and no
    control character (a CR or LF would split the Location header)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    if any(ord(c) < 32 or ord(c) == 127 for c in target):
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else None


def _login_rate() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_rate, methods=["POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("main.home"))
    form = LoginForm()
    if form.validate_on_submit():
        address = request.remote_addr or ""
        try:
            user = signin.authenticate(form.username.data, form.password.data, address)
        except signin.TooManyAttempts as refused:
            transaction.keep()  # the audit entry
            form.password.errors.append(refused.message)
            return render_template("auth/login.html", form=form), 429
        transaction.keep()  # the attempt, counted for the limits, and its audit entry
        if user is not None:
            start_session(user, remember=form.remember.data)
            target = safe_next(request.args.get("next")) or url_for("main.home")
            if services.must_change_password(user):
                return redirect(url_for("auth.change_password", next=target))
            return redirect(target)
        form.password.errors.append(LOGIN_FAILED)
        return render_template("auth/login.html", form=form), 200
    return render_template("auth/login.html", form=form)


@bp.route("/logout", methods=["GET", "POST"])
@login_required
def logout():
    form = LogoutForm()
    if form.validate_on_submit():
        services.logout(current_user._get_current_object())
        transaction.keep()
        logout_user()
        flash("您已安全退出", "success")
        return redirect(url_for("auth.login"))
    return render_template("auth/logout.html", form=form)


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password():
    user: User = current_user._get_current_object()
    form = ChangePasswordForm()
    saved, _ = save_form(
        form,
        lambda: services.change_password(
            user, current_password=form.current_password.data, new_password=form.password.data
        ),
    )
    if saved:
        remember = current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token")
        start_session(user, remember=remember in request.cookies)
        flash("密码已修改；其他电脑上的登录已失效", "success")
        return redirect(safe_next(request.args.get("next")) or url_for("main.home"))
    status = 400 if form.is_submitted() else 200
    reason = None
    if user.must_change_password:
        reason = "管理员为您设置了初始密码或重置了密码，请先设置您自己的密码。"
    elif services.password_expired(user):
        days = current_app.config["PASSWORD_MAX_AGE_DAYS"]
        reason = f"您的密码已使用超过 {days} 天，请修改后继续使用。"
    return render_template("auth/password.html", form=form, reason=reason), status


@bp.route("/account/email", methods=["GET", "POST"])
@login_required
def own_email():
    """The user's own address (电子邮箱) for the daily digest and notifications."""
    user: User = current_user._get_current_object()
    form = OwnEmailForm(obj=user)
    saved, changed = save_form(form, lambda: services.set_own_email(user, form.email.data))
    if saved:
        if not changed:
            flash("电子邮箱未改动", "info")
        elif user.email:
            flash(f"已保存电子邮箱 {user.email}", "success")
        else:
            flash("已删除电子邮箱，此后不再收到邮件", "success")
        return redirect(url_for(".own_email"))
    status = 400 if form.is_submitted() else 200
    return render_template(
        "auth/email.html", form=form, mail_on=bool(current_app.config["SMTP_HOST"])
    ), status
