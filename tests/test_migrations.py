"""The migrations are the schema: one head, equal to the models, reversible; the app starts.

The suite's `app` fixture upgrades a fresh database (SQLite, or PostgreSQL when
CRM_TEST_DATABASE_URL is set); these tests check that database against the models, and run a
full downgrade/upgrade cycle on a separate database so the shared one is left alone.
"""

from __future__ import annotations

import hashlib
import os
import pprint
import secrets
import stat
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import Config as AlembicConfig
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade
from sqlalchemy.pool import NullPool

from config import TestingConfig
from crm import create_app
from crm.extensions import db

ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS = ROOT / "migrations"


def script_directory() -> ScriptDirectory:
    config = AlembicConfig(str(MIGRATIONS / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config)


def schema_differences(app, connection: sa.Connection) -> list:
    """What `flask db migrate` would write for this database: [] when it equals the models.

    The MigrationContext gets the options migrations/env.py gives it (compare_type,
    render_as_batch, ... as passed to Migrate.init_app in create_app).
    """
    opts = dict(app.extensions["migrate"].configure_args)
    assert opts.get("compare_type") is True
    assert opts.get("render_as_batch") is True
    opts["target_metadata"] = db.metadata
    context = MigrationContext.configure(connection, opts=opts)
    return compare_metadata(context, db.metadata)


def test_single_head():
    scripts = script_directory()
    heads = scripts.get_heads()
    assert len(heads) == 1, f"several Alembic heads, merge them: {heads}"
    assert len(scripts.get_bases()) == 1


def test_migrated_schema_equals_models(app):
    with app.app_context(), db.engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_heads()
        assert set(current) == set(script_directory().get_heads())
        differences = schema_differences(app, connection)
    assert differences == [], (
        "the migrations do not match the models; run `flask --app wsgi db migrate`:\n"
        + pprint.pformat(differences)
    )


# A separate database for the downgrade/upgrade cycle -----------------------------------------


@contextmanager
def separate_database(tmp_path: Path):
    """Yield the URL of a new, empty database of the suite's kind; remove it afterwards."""
    main_url = os.environ.get("CRM_TEST_DATABASE_URL")
    if not main_url:
        yield f"sqlite:///{tmp_path / 'migrations.sqlite3'}"
        return

    url = sa.make_url(TestingConfig.SQLALCHEMY_DATABASE_URI)
    if url.get_backend_name() != "postgresql":
        pytest.skip(f"no separate-database recipe for {url.get_backend_name()}")
    # A name of its own: the server may be shared with other test runs.
    name = f"crm_migration_test_{os.getpid()}_{secrets.token_hex(4)}"
    # AUTOCOMMIT: CREATE/DROP DATABASE cannot run inside a transaction. template0 never has
    # connections, so CREATE DATABASE cannot fail on "source database is being accessed".
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE template0')
        try:
            yield url.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


def leftovers(connection: sa.Connection) -> dict[str, list]:
    """Tables, sequences and types a full downgrade should have removed."""
    inspector = sa.inspect(connection)
    found = {
        "tables": sorted(set(inspector.get_table_names()) - {"alembic_version"}),
        "views": sorted(inspector.get_view_names()),
    }
    if connection.dialect.name == "postgresql":
        found["sequences"] = sorted(inspector.get_sequence_names())
        found["enums"] = sorted(enum["name"] for enum in inspector.get_enums())
    return {kind: names for kind, names in found.items() if names}


def test_downgrade_to_base_and_upgrade_again(tmp_path):
    with separate_database(tmp_path) as url:

        class Config(TestingConfig):
            SQLALCHEMY_DATABASE_URI = url

        other = create_app(Config)
        head = script_directory().get_current_head()
        try:
            with other.app_context():
                upgrade()
                with db.engine.connect() as conn:
                    assert MigrationContext.configure(conn).get_current_heads() == (head,)
                    assert leftovers(conn)  # the schema is there

                downgrade(revision="base")
                with db.engine.connect() as conn:
                    assert MigrationContext.configure(conn).get_current_heads() == ()
                    assert leftovers(conn) == {}, "the downgrade left these behind"

                upgrade()
                with db.engine.connect() as conn:
                    assert MigrationContext.configure(conn).get_current_heads() == (head,)
                    differences = schema_differences(other, conn)
                assert differences == [], pprint.pformat(differences)
        finally:
            with other.app_context():
                db.engine.dispose()  # no connection may stay open for DROP DATABASE


# `gunicorn wsgi:app` ---------------------------------------------------------------------------

SHOW_APP = """
import hashlib, wsgi
print(wsgi.app.name, hashlib.sha256(wsgi.app.config["SECRET_KEY"].encode()).hexdigest())
"""


def start_wsgi(instance: Path, **env: str) -> subprocess.CompletedProcess:
    environ = {
        key: value
        for key, value in os.environ.items()
        if key not in {"SECRET_KEY", "DATABASE_URL", "CRM_INSTANCE_PATH", "FLASK_APP"}
    }
    environ |= {
        "CRM_INSTANCE_PATH": str(instance),
        "DATABASE_URL": f"sqlite:///{instance / 'crm.sqlite3'}",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-c", SHOW_APP],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_wsgi_imports_and_keeps_its_generated_secret_key(tmp_path):
    instance = tmp_path / "instance"
    first = start_wsgi(instance)
    assert first.returncode == 0, first.stderr
    key_file = instance / "secret_key"
    assert key_file.is_file()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    digest = hashlib.sha256(key_file.read_text().strip().encode()).hexdigest()
    assert first.stdout.split() == ["crm", digest]

    second = start_wsgi(instance)
    assert second.returncode == 0, second.stderr
    assert second.stdout == first.stdout, "the second start must reuse the key"
    assert hashlib.sha256(key_file.read_text().strip().encode()).hexdigest() == digest


def test_wsgi_takes_secret_key_from_the_environment(tmp_path):
    instance = tmp_path / "instance"
    instance.mkdir()
    result = start_wsgi(instance, SECRET_KEY="from-the-environment")
    assert result.returncode == 0, result.stderr
    expected = hashlib.sha256(b"from-the-environment").hexdigest()
    assert result.stdout.split() == ["crm", expected]
    assert not (instance / "secret_key").exists()


def test_gunicorn_loads_the_app(tmp_path):
    gunicorn = Path(sys.executable).with_name("gunicorn")
    if not gunicorn.exists():
        pytest.skip("gunicorn is not installed next to this Python")
    instance = tmp_path / "instance"
    environ = {key: value for key, value in os.environ.items() if key != "SECRET_KEY"}
    environ |= {
        "CRM_INSTANCE_PATH": str(instance),
        "DATABASE_URL": f"sqlite:///{instance / 'crm.sqlite3'}",
    }
    # --check-config loads the application and exits: 0 when `gunicorn wsgi:app` would start.
    result = subprocess.run(
        [str(gunicorn), "--check-config", "wsgi:app"],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
