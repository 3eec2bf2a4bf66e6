"""The audit log (审计日志): append-only in the database itself, and readable in Chinese."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

from config import TestingConfig
from crm import create_app
from crm.audit.models import AuditEntry, AuditLogIsAppendOnly
from crm.audit.services import record
from crm.extensions import db
from tests.test_migrations import separate_database

# ---- item 20: the database refuses UPDATE and DELETE of audit entries ----------------------

TRIGGERS_REVISION = "3ed1d116c783"


@pytest.fixture
def entry(world, db_session) -> AuditEntry:
    """One committed entry (the commit releases the test's savepoint, so a rollback after a
    refused statement keeps it)."""
    made = record(world.admin, "login", world.admin, summary="原始摘要")
    db_session.commit()
    return made


def _stored(entry_id: int) -> tuple | None:
    """The row as the database holds it, read past the session's identity map."""
    return db.session.execute(
        sa.text("SELECT summary, action FROM audit_entries WHERE id = :id"), {"id": entry_id}
    ).one_or_none()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_entries SET summary = 'rewritten' WHERE id = :id",
        "UPDATE audit_entries SET user_id = NULL, action = 'login_failed' WHERE id = :id",
        "DELETE FROM audit_entries WHERE id = :id",
        "DELETE FROM audit_entries",
    ],
)
def test_textual_update_or_delete_is_refused_by_the_database(entry, db_session, statement):
    with pytest.raises(sa.exc.IntegrityError, match="audit entries are append-only"):
        db_session.execute(sa.text(statement), {"id": entry.id})
    db_session.rollback()
    assert _stored(entry.id) == ("原始摘要", "login")


def test_core_statements_on_the_connection_are_refused_too(entry, db_session):
    """A Core UPDATE/DELETE on the session's connection skips the ORM's guard: the triggers
    still stop it."""
    table = AuditEntry.__table__
    for statement in (
        sa.update(table).where(table.c.id == entry.id).values(summary="x"),
        sa.delete(table).where(table.c.id == entry.id),
    ):
        with pytest.raises(sa.exc.IntegrityError, match="append-only"):
            db_session.connection().execute(statement)
        db_session.rollback()
    assert _stored(entry.id) == ("原始摘要", "login")


def test_truncate_is_refused_on_postgresql(entry, db_session):
    if db_session.get_bind().dialect.name != "postgresql":
        pytest.skip("TRUNCATE is PostgreSQL's")
    with pytest.raises(sa.exc.IntegrityError, match="append-only"):
        db_session.execute(sa.text("TRUNCATE audit_entries"))
    db_session.rollback()
    assert _stored(entry.id) == ("原始摘要", "login")


def test_new_entries_are_still_written(world, db_session):
    made = record(world.admin, "logout", world.admin, summary="退出")
    db_session.commit()
    assert _stored(made.id) == ("退出", "logout")


def test_the_orm_guard_still_refuses_first_with_a_clear_error(entry, db_session):
    """Through the ORM the app's own exception comes before any SQL reaches the triggers."""
    entry_id = entry.id
    entry.summary = "rewritten"
    with pytest.raises(AuditLogIsAppendOnly, match=f"audit entry {entry_id} cannot be changed"):
        db_session.flush()
    db_session.rollback()
    with pytest.raises(AuditLogIsAppendOnly, match="cannot be changed or deleted"):
        db_session.execute(sa.delete(AuditEntry).where(AuditEntry.id == entry_id))
    db_session.rollback()
    assert _stored(entry_id) == ("原始摘要", "login")


def test_the_trigger_migration_goes_down_and_up(tmp_path):
    """Downgrading past the migration lets an UPDATE through again; upgrading refuses it."""

    def try_update(conn: sa.Connection) -> bool:
        with conn.begin_nested() as savepoint:
            try:
                conn.execute(sa.text("UPDATE audit_entries SET summary = 'changed'"))
            except sa.exc.IntegrityError:
                savepoint.rollback()
                return False
        return True

    with separate_database(tmp_path) as url:

        class Config(TestingConfig):
            SQLALCHEMY_DATABASE_URI = url

        other = create_app(Config)
        try:
            with other.app_context():
                upgrade()
                with db.engine.begin() as conn:
                    conn.execute(
                        sa.insert(AuditEntry.__table__).values(
                            action="login", object_type="users", summary="s", changes={}
                        )
                    )
                    assert try_update(conn) is False

                downgrade(revision=f"{TRIGGERS_REVISION}-1")
                with db.engine.connect() as conn:
                    assert try_update(conn) is True
                    conn.rollback()
                    if conn.dialect.name == "postgresql":  # the function goes with its triggers
                        functions = "SELECT count(*) FROM pg_proc WHERE proname = :name"
                        name = {"name": "audit_entries_append_only"}
                        assert conn.scalar(sa.text(functions), name) == 0

                upgrade()
                with db.engine.begin() as conn:
                    assert try_update(conn) is False
                    assert conn.scalar(sa.select(AuditEntry.__table__.c.summary)) == "s"
        finally:
            with other.app_context():
                db.engine.dispose()
