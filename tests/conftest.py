"""Fixtures: one migrated database per run; each test inside a rolled-back transaction.

Set CRM_TEST_DATABASE_URL (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test) to run
the suite on PostgreSQL; without it, a SQLite file in a temporary folder is used.
"""

from __future__ import annotations

import os
import re

import pytest
import sqlalchemy as sa
from flask import g
from flask.testing import FlaskClient
from flask_migrate import upgrade
from sqlalchemy.orm import scoped_session, sessionmaker

from config import TestingConfig, _database_url
from crm import create_app
from crm.extensions import db
from tests import factories
from tests.queue_helpers import queue, smtp_server  # noqa: F401  (fixtures of the job queue)

PASSWORD = factories.PASSWORD


def _reset_database(engine: sa.Engine) -> None:
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA public CASCADE")
            conn.exec_driver_sql("CREATE SCHEMA public")
    else:
        db.drop_all()
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    """SQLite in a temporary folder, or a fresh PostgreSQL database of its own for this run
    (created next to the one CRM_TEST_DATABASE_URL names, dropped afterwards), so parallel
    runs never share tables."""
    url = os.environ.get("CRM_TEST_DATABASE_URL")
    url = _database_url(url) if url else None
    if not url:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"
        return
    base = sa.make_url(url)
    own = base.set(database=f"{base.database}_run{os.getpid()}")
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{own.database}"')
        conn.exec_driver_sql(f'CREATE DATABASE "{own.database}"')
    try:
        yield own.render_as_string(hide_password=False)
    finally:
        for engine in _engines:
            engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{own.database}" WITH (FORCE)')
        admin.dispose()


_engines: list[sa.Engine] = []


@pytest.fixture(scope="session")
def app(database_url):
    class Config(TestingConfig):
        SQLALCHEMY_DATABASE_URI = database_url

    app = create_app(Config)
    with app.app_context():
        _engines.append(db.engine)
        _reset_database(db.engine)
        upgrade()  # the suite runs on the migrated schema, not on create_all
    return app


@pytest.fixture(autouse=True)
def db_session(app):
    """Bind the session to one connection whose outer transaction is rolled back after the test;
    commits in the code under test only release savepoints."""
    with app.app_context():
        connection = db.engine.connect()
        transaction = connection.begin()
        original = db.session
        db.session = scoped_session(
            sessionmaker(bind=connection, join_transaction_mode="create_savepoint")
        )
        try:
            yield db.session
        finally:
            db.session.remove()
            db.session = original
            transaction.rollback()
            connection.close()


class Client(FlaskClient):
    """Each request starts without the signed-in user cached by Flask-Login.

    The test holds one app context open (for its database session), and Flask reuses it for
    every request, so `g` would otherwise carry the user of one client into another's request.
    """

    def open(self, *args, **kwargs):
        g.pop("_login_user", None)
        return super().open(*args, **kwargs)


@pytest.fixture
def client(app):
    app.test_client_class = Client
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def login(client):
    """login(user) signs `client` in as `user` (created by the factories' password)."""

    def do_login(user, password=PASSWORD):
        client.post("/logout", data={})
        response = client.post("/login", data={"username": user.username, "password": password})
        assert response.status_code == 302, f"login as {user.username} failed"
        return client

    return do_login


@pytest.fixture
def world(db_session):
    """Two 载体, two clusters, every role, and one project on each side."""
    return factories.World.build()


class QueryCounter:
    def __init__(self):
        self.statements: list[str] = []

    @property
    def count(self) -> int:
        return len(self.statements)

    def __call__(self, conn, cursor, statement, *args):
        if not re.match(r"\s*(SAVEPOINT|RELEASE|ROLLBACK TO)", statement):
            self.statements.append(statement)


@pytest.fixture
def count_queries(app):
    """Use as `with count_queries() as counter:`; counter.count is the number of SQL statements."""
    from contextlib import contextmanager

    @contextmanager
    def counting():
        counter = QueryCounter()
        sa.event.listen(db.engine, "before_cursor_execute", counter)
        try:
            yield counter
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", counter)

    return counting
