"""`flask crm backup` and `flask crm restore`: a snapshot, changes, the snapshot back, and every
table compared. They run on a SQLite file of their own (the suite's database lives inside a
rolled-back transaction); for PostgreSQL the commands point to pg_dump.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

from config import TestingConfig
from crm import create_app
from crm.audit.models import AuditEntry
from crm.auth.models import User
from crm.catalog.models import Carrier, Cluster
from crm.extensions import db
from crm.files.services import file_path
from crm.ledger.reading import RawRow
from crm.ledger.uploads import save_upload as keep_ledger_upload
from crm.projects.lifecycle import move_stage
from crm.projects.models import FollowUp, Project
from crm.projects.stages import Stage
from tests import factories
from tests.evaluation_factories import attach_agreement
from tests.test_evaluation import sessions_on


def contents(session) -> dict[str, list]:
    """Every row of every table, in primary-key order; the restore's own audit entry aside."""
    found = {}
    for table in db.metadata.sorted_tables:
        stmt = sa.select(table).order_by(*table.primary_key)
        if table.name == AuditEntry.__tablename__:
            stmt = stmt.where(table.c.action != "database_restored")
        found[table.name] = [tuple(row) for row in session.execute(stmt)]
    return found


@pytest.fixture
def file_app(tmp_path):
    """An app on a SQLite file of its own, migrated, with the test world committed in it."""

    class Config(TestingConfig):
        SQLALCHEMY_DATABASE_URI = f"sqlite:///{tmp_path / 'crm.sqlite3'}"
        UPLOAD_FOLDER = str(tmp_path / "uploads")

    app = create_app(Config)
    with app.app_context():
        upgrade()
        with sessions_on(db.engine) as session:
            world = factories.World.build()
            factories.followup(world.project_a, world.officer_a, summary="第一次走访")
            session.commit()
            yield app, session, world
        db.engine.dispose()


def test_backup_then_restore_brings_back_every_row(file_app, tmp_path):
    app, session, world = file_app
    runner = app.test_cli_runner()
    snapshot = tmp_path / "backups" / "crm-20260301.sqlite3"
    before = contents(session)
    ids = {
        "project": world.project_a.id,
        "officer": world.officer_a.id,
        "carrier_b": world.carrier_b.id,
        "cluster_y": world.cluster_y.id,
        "officer_b": world.officer_b.id,
    }
    session.remove()

    result = runner.invoke(args=["crm", "backup", str(snapshot)])
    assert result.exit_code == 0, result.output
    assert "已备份" in result.output and "上传的文件" in result.output
    assert snapshot.is_file() and not snapshot.with_name(snapshot.name + ".part").exists()
    with closing(sqlite3.connect(snapshot)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # one file

    # Life goes on: a new project, a move, a follow-up gone, a name changed.
    project = session.get(Project, ids["project"])
    move_stage(session.get(User, ids["officer"]), project, Stage.ATTRACTING)
    project.name = "改过名的项目"
    session.execute(sa.delete(FollowUp))
    factories.project(
        session.get(Carrier, ids["carrier_b"]),
        session.get(Cluster, ids["cluster_y"]),
        session.get(User, ids["officer_b"]),
        name="备份后登记的项目",
    )
    session.commit()
    assert contents(session) != before
    session.remove()

    result = runner.invoke(args=["crm", "restore", str(snapshot), "--yes"])
    assert result.exit_code == 0, result.output
    assert "已从" in result.output

    assert contents(session) == before
    restored = session.scalars(
        sa.select(AuditEntry).where(AuditEntry.action == "database_restored")
    )
    assert [e.summary for e in restored] == ["从备份 crm-20260301.sqlite3 恢复"]


def test_restore_asks_first_and_does_nothing_when_not_confirmed(file_app, tmp_path):
    app, session, world = file_app
    runner = app.test_cli_runner()
    snapshot = tmp_path / "snap.sqlite3"
    assert runner.invoke(args=["crm", "backup", str(snapshot)]).exit_code == 0
    factories.project(world.carrier_a, world.cluster_x, world.officer_a, name="备份后的项目")
    session.commit()
    before = contents(session)
    session.remove()

    result = runner.invoke(args=["crm", "restore", str(snapshot)], input="n\n")
    assert result.exit_code != 0
    assert "替换数据库" in result.output
    assert contents(session) == before  # the project made after the backup is still there
    assert session.scalar(sa.select(Project.id).where(Project.name == "备份后的项目"))


def test_backup_never_overwrites_without_force(file_app, tmp_path):
    app, _session, _world = file_app
    runner = app.test_cli_runner()
    snapshot = tmp_path / "snap.sqlite3"
    snapshot.write_text("an older backup")
    result = runner.invoke(args=["crm", "backup", str(snapshot)])
    assert result.exit_code != 0 and "已存在" in result.output
    assert snapshot.read_text() == "an older backup"
    assert runner.invoke(args=["crm", "backup", str(snapshot), "--force"]).exit_code == 0


@pytest.mark.parametrize("kind", ["not sqlite", "another database"])
def test_restore_refuses_a_file_that_is_not_a_crm_backup(file_app, tmp_path, kind):
    app, session, _world = file_app
    bogus = tmp_path / "bogus.sqlite3"
    if kind == "not sqlite":
        bogus.write_bytes(b"PK\x03\x04 this is a zip file, not a database" * 20)
    else:
        with closing(sqlite3.connect(bogus)) as conn:
            conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY)")
    before = contents(session)
    session.remove()
    result = app.test_cli_runner().invoke(args=["crm", "restore", str(bogus), "--yes"])
    assert result.exit_code != 0
    assert "不是" in result.output
    assert contents(session) == before


def test_on_postgresql_the_commands_explain_pg_dump(tmp_path):
    class Config(TestingConfig):
        SQLALCHEMY_DATABASE_URI = "postgresql+psycopg://crm@127.0.0.1:1/crm"  # never connected
        UPLOAD_FOLDER = str(tmp_path / "uploads")

    app = create_app(Config)
    with app.app_context():  # the command runs in the app whose context is current
        result = app.test_cli_runner().invoke(args=["crm", "backup", str(tmp_path / "x.dump")])
    assert result.exit_code != 0
    assert "pg_dump --format=custom" in result.output
    assert "pg_restore" in result.output and str(tmp_path / "uploads") in result.output
    assert not (tmp_path / "x.dump").exists()


# Who may read the files (issue 14, item 21) ----------------------------------------------------


@pytest.fixture
def usual_umask():
    """The umask most servers run with (022): files made without care come out 0644."""
    before = os.umask(0o022)
    yield
    os.umask(before)


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_the_database_uploads_and_backups_are_readable_by_the_app_only(
    usual_umask, file_app, tmp_path
):
    app, session, world = file_app
    database = tmp_path / "crm.sqlite3"
    wal, shm = database.with_name("crm.sqlite3-wal"), database.with_name("crm.sqlite3-shm")
    assert wal.exists() and shm.exists()  # WAL mode, connections open
    assert {p.name: mode(p) for p in (database, wal, shm)} == {
        "crm.sqlite3": 0o600,
        "crm.sqlite3-wal": 0o600,
        "crm.sqlite3-shm": 0o600,
    }

    uploads = Path(app.config["UPLOAD_FOLDER"])
    stored = attach_agreement(world.project_a, world.officer_a, uploads)
    session.commit()
    document = file_path(stored, uploads)
    assert mode(document) == 0o600
    assert (mode(uploads), mode(document.parent)) == (0o700, 0o700)

    snapshot = tmp_path / "backups" / "crm-20260301.sqlite3"
    result = app.test_cli_runner().invoke(args=["crm", "backup", str(snapshot)])
    assert result.exit_code == 0, result.output
    assert (mode(snapshot), mode(snapshot.parent)) == (0o600, 0o700)

    imports = tmp_path / "ledger_imports"
    token = keep_ledger_upload(
        imports, world.officer_a.id, "台账.xlsx", [RawRow(2, {"name": "项目"})]
    )
    assert mode(imports / f"{token}.json") == 0o600
