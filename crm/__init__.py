"""The 双招双引 investment-promotion CRM."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlalchemy as sa
from flask import (
    Flask,
    abort,
    current_app,
    g,
    has_app_context,
    has_request_context,
    render_template,
    request,
)
from flask_wtf.csrf import CSRFError
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter

from config import SQLITE_BUSY_TIMEOUT_DEFAULT, Config, config_from_env, instance_secret_key


class CRMFlask(Flask):
    """Flask, with the request's work discarded as soon as it raises (see crm/transaction.py)."""

    def handle_user_exception(self, e):
        _discard_failed_request(e)
        return super().handle_user_exception(e)


def _discard_failed_request(error: Exception) -> None:
    """Nothing of a request that raised is kept, decided before any error handler runs. A
    refusal (4xx) is rolled back when the request ends; any other failure at once, and unless
    it leaves the database working (a record saved meanwhile), the error page shows the
    signed-in user as already loaded (`_user_without_database`)."""
    from crm import transaction

    if isinstance(error, HTTPException) and (error.code or 500) < 500:
        transaction.discard(at_once=False)  # a refusal: the session is still usable
        return
    if not isinstance(error, StaleDataError):
        _user_without_database()
    transaction.discard()


def create_app(config: type[Config] | None = None) -> Flask:
    from config import INSTANCE_DIR

    app = CRMFlask(__name__, instance_path=str(INSTANCE_DIR))
    app.config.from_object(config or config_from_env())
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    if not app.config.get("SECRET_KEY") and not app.config.get("PRODUCTION"):
        app.config["SECRET_KEY"] = instance_secret_key()
    register_security(app)
    register_extensions(app)
    register_transaction_edge(app)
    register_request_guards(app)
    register_blueprints(app)
    register_hooks(app)
    register_list_filters(app)
    register_template_helpers(app)
    register_errorhandlers(app)
    register_commands(app)
    register_jobs(app)
    return app


def register_extensions(app: Flask) -> None:
    from crm.extensions import csrf, db, limiter, login_manager, migrate

    db.init_app(app)
    migrate.init_app(
        app,
        db,
        directory=str(Path(app.root_path).parent / "migrations"),
        render_as_batch=True,
        compare_type=True,
    )
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "请先登录"
    login_manager.login_message_category = "warning"
    csrf.init_app(app)
    limiter.init_app(app)


@sa.event.listens_for(sa.engine.Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """WAL and a busy timeout, so several gunicorn workers can share one file; enforce FKs.

    pysqlite's own transaction handling is switched off and SQLAlchemy emits BEGIN itself
    (the documented recipe), so transactions and SAVEPOINTs behave as on PostgreSQL.
    """
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        busy_ms = (
            current_app.config.get("SQLITE_BUSY_TIMEOUT_MS", SQLITE_BUSY_TIMEOUT_DEFAULT)
            if has_app_context()
            else SQLITE_BUSY_TIMEOUT_DEFAULT
        )
        cursor.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


@sa.event.listens_for(sa.engine.Engine, "begin")
def _sqlite_begin(connection) -> None:
    """A request that may write (POST) takes SQLite's write lock when its transaction begins
    (BEGIN IMMEDIATE), so writers of several workers queue on the busy timeout instead of
    failing with "database is locked" when one wrote after the other had read. A view marked
    `transaction.reads_first` reads in a plain BEGIN, then writes in a transaction of its own.
    A background job's transactions, short by design (crm/jobs/queue.py), are writers too."""
    if connection.dialect.name == "sqlite":
        from crm import transaction
        from crm.jobs.queue import running_job

        write = (
            has_request_context()
            and request.method not in ("GET", "HEAD", "OPTIONS")
            and not transaction.reading()  # a view that reads at length first (transaction.py)
        ) or running_job()
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def register_transaction_edge(app: Flask) -> None:
    """One commit or rollback per request, after the view (crm/transaction.py). Registered
    after the extensions, so their after-request steps (security headers, the remember-me
    cookie) apply to the response the edge settles on."""
    from crm import transaction

    transaction.init_app(app, app.handle_user_exception)


def register_hooks(app: Flask) -> None:
    """Install the explicit wiring between features (crm/hooks.py)."""
    from crm import hooks

    hooks.init_app(app)


def register_security(app: Flask) -> None:
    from crm import security

    security.init_app(app)


class _DatabaseIntConverter(IntegerConverter):
    """`<int:...>` in URLs stops at the largest id the database can hold: 404, not a 500."""

    def __init__(self, url_map, fixed_digits=0, min=None, max=2**31 - 1, signed=False):
        super().__init__(url_map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def register_request_guards(app: Flask) -> None:
    app.url_map.converters["int"] = _DatabaseIntConverter

    @app.before_request
    def refuse_overlong_urls():
        """An address longer than MAX_URL_BYTES (as sent, percent-encoded) gets the app's 414
        page, before anything else reads it; gunicorn's own limit is set above this one."""
        environ = request.environ
        uri = environ.get("RAW_URI") or environ.get("REQUEST_URI") or request.full_path
        if len(uri.encode("utf-8", "surrogateescape")) > app.config["MAX_URL_BYTES"]:
            abort(414)

    @app.before_request
    def refuse_nul_bytes():
        """No text field legitimately holds a NUL byte, and PostgreSQL refuses one."""
        for _key, values in request.values.lists():
            if any("\x00" in value for value in values):
                abort(400)


def register_blueprints(app: Flask) -> None:
    from crm.admin.views import bp as admin_bp
    from crm.auth.views import bp as auth_bp
    from crm.companies.views import bp as companies_bp
    from crm.dashboard.views import bp as dashboard_bp
    from crm.evaluation.views import bp as evaluation_bp
    from crm.files.views import bp as files_bp
    from crm.ledger.views import bp as ledger_bp
    from crm.main.views import bp as main_bp
    from crm.notifications.views import bp as notifications_bp
    from crm.projects.conflict_views import bp as conflicts_bp
    from crm.projects.views import bp as projects_bp
    from crm.reports.views import bp as reports_bp
    from crm.tasks.views import bp as tasks_bp
    from crm.todo.views import bp as todo_bp
    from crm.workdays.views import bp as workdays_bp

    blueprints = (main_bp, auth_bp, projects_bp, companies_bp, files_bp, evaluation_bp)
    features = (dashboard_bp, ledger_bp, conflicts_bp)  # issue 5: statistics and the ledger
    features += (notifications_bp, tasks_bp, todo_bp)  # issue 15: 待办
    features += (workdays_bp,)  # issue 16: the working-day calendar
    for bp in (*blueprints, reports_bp, admin_bp, *features):
        app.register_blueprint(bp)


def register_list_filters(app: Flask) -> None:
    from crm.dashboard.filters import register_list_filters

    register_list_filters(app)


def register_template_helpers(app: Flask) -> None:
    from crm import templating

    templating.init_app(app)


def register_errorhandlers(app: Flask) -> None:
    messages = {
        400: "请求无效",
        403: "没有权限",
        404: "页面不存在",
        405: "不支持的请求方式",
        409: "内容冲突",
        413: "上传的文件过大",
        414: "请求地址过长",
        429: "请求过于频繁，请稍后再试",
        500: "服务器内部错误",
    }

    # Whatever the request did is already discarded when a handler runs (CRMFlask).

    def handle(error):
        code = getattr(error, "code", 500) or 500
        if code in (403, 404):
            _audit_denial(code)
        return render_template("error.html", code=code, message=messages.get(code, "出错了")), code

    def _audit_denial(code: int) -> None:
        """A signed-in user refused a page of the app (not a missing static file or an unknown
        address): 403, or 404 for a record out of the user's scope or not there."""
        from flask_login import current_user

        from crm.audit.services import record_separately

        if request.url_rule is None or request.endpoint == "static":
            return
        if not current_user.is_authenticated:
            return
        record_separately(
            current_user.id,
            "permission_denied",
            object_type="request",
            summary=f"{code} {request.method} {request.full_path.rstrip('?')}"[:500],
        )

    for code in messages:
        app.register_error_handler(code, handle)

    @app.errorhandler(sa.exc.OperationalError)
    def database_busy(error):
        """SQLite refuses a write that raced another one ("database is locked"): nothing was
        saved, and trying again works. Anything else is a real failure."""
        if "database is locked" not in str(error.orig):
            raise error
        message = "系统繁忙，本次操作未保存，请重试"
        return render_template("error.html", code=503, message=message), 503

    @app.errorhandler(CSRFError)
    def csrf_refused(_error):
        """No valid CSRF token: a form from an old page, or a request from another site."""
        message = "页面已过期，请刷新后重试"
        return render_template("error.html", code=400, message=message), 400

    @app.errorhandler(StaleDataError)
    def saved_meanwhile(_error):
        """Someone saved the same record after this request loaded it (the version checked by
        the UPDATE no longer matched): nothing of this request was saved."""
        message = "该记录刚被他人修改，本次操作未保存，请刷新页面后重试"
        return render_template("error.html", code=409, message=message), 409


class _HeaderUser:
    """The signed-in user as a page's header shows them (name, role, 载体 or cluster), as plain
    values: what an error page uses once the database has failed."""

    is_authenticated = True
    is_active = True
    is_anonymous = False

    def __init__(self, user):
        self.id = user.id
        self.display_name = user.display_name
        self.role = user.role
        self.scope_label = user.scope_label

    def get_id(self) -> str:
        return str(self.id)


def _user_without_database() -> None:
    """Let the error page about to be rendered show the signed-in user without a query.

    Called before the rollback that expires every loaded object. The database may be what
    failed: loading the user (again) for the page's header would begin another transaction,
    which on SQLite waits for the same lock and fails inside the error handler (a bare 500).
    The page shows the user as already loaded, or nobody when the user was never loaded (the
    failure came while loading them) or not completely."""
    from crm.extensions import login_manager

    user = g.get("_login_user")
    if isinstance(user, _HeaderUser) or (user is not None and not user.is_authenticated):
        return  # already plain values, or anonymous: nothing to load
    g._login_user = _HeaderUser(user) if _fully_loaded(user) else login_manager.anonymous_user()


def _fully_loaded(user) -> bool:
    """Whether the header's values of `user` are in memory (reading them runs no query)."""
    state = sa.inspect(user, raiseerr=False) if user is not None else None
    if state is None or {"id", "display_name", "role", "carrier", "cluster"} & state.unloaded:
        return False
    places = [p for p in (state.dict["carrier"], state.dict["cluster"]) if p is not None]
    return all("name" not in sa.inspect(p).unloaded for p in places)


def register_jobs(app: Flask) -> None:
    """The job queue's storage and the app its jobs run in (crm/jobs/queue.py)."""
    from crm.jobs import queue

    queue.init_app(app)


def register_commands(app: Flask) -> None:
    from crm.commands import crm_cli

    app.cli.add_command(crm_cli)
