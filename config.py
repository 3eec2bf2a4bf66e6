"""Configuration: defaults that run with no setting, overridden by the environment."""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
INSTANCE_DIR = Path(os.environ.get("CRM_INSTANCE_PATH", BASE_DIR / "instance"))


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _database_url(url: str) -> str:
    """Accept the usual `postgres://` / `postgresql://` forms and use psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def instance_secret_key(instance_dir: Path = INSTANCE_DIR) -> str:
    """Return SECRET_KEY from the environment, or one generated once into the instance folder."""
    if key := os.environ.get("SECRET_KEY"):
        return key
    instance_dir.mkdir(parents=True, exist_ok=True)
    path = instance_dir / "secret_key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return path.read_text().strip()


SQLITE_BUSY_TIMEOUT_DEFAULT = 10_000


class Config:
    # `CRM_ENV=production` selects ProductionConfig, which create_app checks before starting.
    PRODUCTION = False
    SQLALCHEMY_DATABASE_URI = _database_url(
        os.environ.get("DATABASE_URL", f"sqlite:///{INSTANCE_DIR / 'crm.sqlite3'}")
    )
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
    # SQLite: how long a write waits for another worker's write lock before "database is
    # locked" (answered 503, nothing saved). The longest write the app makes, the writes of a
    # 20,000-row ledger import, holds the lock about 4.4 s on 2 cores (make bench's
    # bench_ledger.py): 10 s lets the saves made meanwhile wait and succeed.
    SQLITE_BUSY_TIMEOUT_MS = _env_int("CRM_SQLITE_BUSY_TIMEOUT_MS", SQLITE_BUSY_TIMEOUT_DEFAULT)
    SECRET_KEY: str | None = None  # filled by create_app from instance_secret_key()
    WTF_CSRF_TIME_LIMIT = None  # the token lives as long as the session
    WTF_I18N_ENABLED = False  # forms use WTForms' own Chinese catalog (crm/forms.py)
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = _env_flag("CRM_SECURE_COOKIES", False)
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_SECURE = _env_flag("CRM_SECURE_COOKIES", False)
    PASSWORD_HASH_METHOD = "scrypt"

    # Accounts (等保 2.0 level 2): lockout after repeated failures, password age. See
    # crm/auth/services.py: failures on one account from one address lock that address out of
    # it; failures from addresses the account never signed in from lock the account for such
    # addresses, briefly and more each time; too many failures from one address stop it.
    LOGIN_MAX_FAILURES = _env_int("CRM_LOGIN_MAX_FAILURES", 5)
    LOGIN_FAILURE_WINDOW_MINUTES = _env_int("CRM_LOGIN_FAILURE_WINDOW_MINUTES", 15)
    LOGIN_LOCK_MINUTES = _env_int("CRM_LOGIN_LOCK_MINUTES", 15)
    LOGIN_ACCOUNT_MAX_FAILURES = _env_int("CRM_LOGIN_ACCOUNT_MAX_FAILURES", 10)
    LOGIN_ACCOUNT_LOCK_MINUTES = _env_int("CRM_LOGIN_ACCOUNT_LOCK_MINUTES", 1)
    LOGIN_ADDRESS_MAX_FAILURES = _env_int("CRM_LOGIN_ADDRESS_MAX_FAILURES", 30)
    LOGIN_KNOWN_ADDRESS_DAYS = _env_int("CRM_LOGIN_KNOWN_ADDRESS_DAYS", 90)
    # Flask-Limiter's request rate on POST /login per client address, in a storage every
    # worker and host shares (e.g. redis://127.0.0.1:6379/0). Unset: off, and the failure
    # limits above (kept in the database) are the per-address limit.
    RATELIMIT_STORAGE_URI = os.environ.get("CRM_RATELIMIT_STORAGE_URI", "") or "memory://"
    RATELIMIT_ENABLED = bool(os.environ.get("CRM_RATELIMIT_STORAGE_URI"))
    RATELIMIT_SWALLOW_ERRORS = True  # storage down: the database limits still hold
    RATELIMIT_KEY_PREFIX = "crm"
    LOGIN_RATE_LIMIT = os.environ.get("CRM_LOGIN_RATE_LIMIT", "20 per minute; 200 per hour")
    PASSWORD_MAX_AGE_DAYS = _env_int("CRM_PASSWORD_MAX_AGE_DAYS", 90)  # 0: passwords never expire
    # Sessions end after this much inactivity, and this long after signing in, whatever happens.
    # "Remember me" keeps a sign-in across browser restarts within the absolute limit.
    SESSION_IDLE_MINUTES = _env_int("CRM_SESSION_IDLE_MINUTES", 30)
    SESSION_MAX_HOURS = _env_int("CRM_SESSION_MAX_HOURS", 12)
    REMEMBER_COOKIE_DURATION = timedelta(hours=SESSION_MAX_HOURS)
    # Reverse proxies in front of the app that set X-Forwarded-For/-Proto (0: none trusted).
    PROXY_COUNT = _env_int("CRM_PROXY_COUNT", 0)
    # A project with no follow-up for this many days is shown as stale (久未跟踪).
    STALE_AFTER_DAYS = _env_int("CRM_STALE_AFTER_DAYS", 30)
    # 督办: a task this many days overdue shows on the leaders' 待办.
    ESCALATE_AFTER_DAYS = _env_int("CRM_ESCALATE_AFTER_DAYS", 7)
    PAGE_SIZE = 50
    # The dashboard's figures are kept per scope until the next audited change, and at most
    # this long (0: computed on every request).
    DASHBOARD_CACHE_SECONDS = _env_int("CRM_DASHBOARD_CACHE_SECONDS", 300)
    # Uploaded files (project documents, evaluation evidence): size limit and folder.
    MAX_UPLOAD_BYTES = _env_int("CRM_MAX_UPLOAD_MB", 20) * 1024 * 1024
    MAX_CONTENT_LENGTH = MAX_UPLOAD_BYTES + 1024 * 1024  # the rest of the form besides the file
    UPLOAD_FOLDER = os.environ.get("CRM_UPLOAD_FOLDER", str(INSTANCE_DIR / "uploads"))
    TIMEZONE = "Asia/Shanghai"
    # The longest address (path and query, percent-encoded) the app reads: a longer one gets
    # its 414 page. gunicorn runs with --limit-request-line 8190 (its maximum), above this.
    MAX_URL_BYTES = _env_int("CRM_MAX_URL_BYTES", 4096)
    # The PDF dossier renders in a helper process (keeps web workers small); the copy frozen
    # at each decision is archived.
    PDF_IN_SUBPROCESS = True
    # At most PDF_MAX_CONCURRENT dossiers render at once in each web worker process (one helper
    # process each, a few hundred MB); another waits up to PDF_WAIT_SECONDS for a free helper,
    # then gets 503. A render that takes more than PDF_TIMEOUT_SECONDS is stopped (its helper
    # killed) and answered 503. Wait plus timeout stay under gunicorn's 30 s worker timeout.
    PDF_MAX_CONCURRENT = _env_int("CRM_PDF_MAX_CONCURRENT", 1)
    PDF_WAIT_SECONDS = _env_int("CRM_PDF_WAIT_SECONDS", 5)
    PDF_TIMEOUT_SECONDS = _env_int("CRM_PDF_TIMEOUT_SECONDS", 20)
    DOSSIER_ARCHIVE = True

    # The job queue (crm/jobs/): "" keeps it in a SQLite file of the instance folder (no
    # server; `make run`), a redis:// URL puts it in Redis (production, several hosts).
    QUEUE_URL = os.environ.get("CRM_QUEUE_URL", "")
    # Runs of background jobs (后台任务) are kept this many days, then pruned daily.
    JOB_RUNS_KEEP_DAYS = _env_int("CRM_JOB_RUNS_KEEP_DAYS", 30)
    # E-mail: off unless CRM_SMTP_HOST is set. Sent only by jobs, never inside a request.
    SMTP_HOST = os.environ.get("CRM_SMTP_HOST", "")
    SMTP_SECURITY = os.environ.get("CRM_SMTP_SECURITY", "starttls").strip().lower()
    SMTP_PORT = _env_int("CRM_SMTP_PORT", 0)  # 0: 25, 587 or 465 by SMTP_SECURITY
    SMTP_USER = os.environ.get("CRM_SMTP_USER", "")
    SMTP_PASSWORD = os.environ.get("CRM_SMTP_PASSWORD", "")
    SMTP_TIMEOUT_SECONDS = _env_int("CRM_SMTP_TIMEOUT_SECONDS", 20)
    MAIL_FROM = os.environ.get("CRM_MAIL_FROM", "") or "双招双引项目管理 <crm@localhost>"
    # The address users open the CRM at (e.g. https://crm.example.gov.cn): links in e-mails.
    # Unset: e-mails name the pages without links.
    BASE_URL = os.environ.get("CRM_BASE_URL", "").rstrip("/")


class TestingConfig(Config):
    TESTING = True
    SECRET_KEY = "testing-only-not-secret"
    SQLALCHEMY_DATABASE_URI = _database_url(os.environ.get("CRM_TEST_DATABASE_URL", "sqlite://"))
    WTF_CSRF_ENABLED = False
    PASSWORD_HASH_METHOD = "pbkdf2:sha256:1"
    DOSSIER_ARCHIVE = False  # the tests that check the archive switch it on
    DASHBOARD_CACHE_SECONDS = 0  # tests roll back, which can reuse the change marker
    RATELIMIT_ENABLED = False  # the tests that check the limiter switch it on
    QUEUE_URL = "memory://"  # jobs wait in memory until a test runs them (tests/test_jobs.py)
    SMTP_HOST = ""  # no mail unless a test starts its own SMTP server
    BASE_URL = ""


class ProductionConfig(Config):
    """`CRM_ENV=production`: create_app refuses to start unless DEBUG is off, SECRET_KEY is
    strong and every cookie is Secure, HttpOnly and SameSite (crm/security.py)."""

    PRODUCTION = True
    SECRET_KEY = os.environ.get("SECRET_KEY")  # required: never generated in production
    SESSION_COOKIE_SECURE = True
    REMEMBER_COOKIE_SECURE = True
    SESSION_COOKIE_NAME = "__Host-crm_session"  # Secure, Path=/, no Domain: this host only


def config_from_env() -> type[Config]:
    """The configuration class `CRM_ENV` names: `production`, or the default otherwise."""
    env = os.environ.get("CRM_ENV", "").strip().lower()
    if env in ("", "development", "default"):
        return Config
    if env == "production":
        return ProductionConfig
    raise RuntimeError(f"CRM_ENV must be 'production' or empty, not {env!r}")
