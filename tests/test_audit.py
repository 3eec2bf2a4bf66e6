"""The audit log (审计日志): append-only in the database itself, and readable in Chinese."""

from __future__ import annotations

import ast
import csv
import html
import io
import json
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

import crm
from config import TestingConfig
from crm import create_app
from crm.audit.labels import ACTION_LABELS, OBJECT_TYPE_LABELS, field_label
from crm.audit.models import AuditEntry, AuditLogIsAppendOnly
from crm.audit.services import record
from crm.auth.models import Role
from crm.core import LabelledEnum, local_today
from crm.extensions import db
from crm.files.models import DocumentKind, StoredFile
from crm.projects.conflicts import accept_handover, handover_project
from crm.projects.lifecycle import change_status
from crm.projects.stages import Status
from tests import factories
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


# ---- item 19: the log in Chinese ------------------------------------------------------------


def _table(response) -> str:
    """The text of the audit table's body (the search form's option values are codes)."""
    assert response.status_code == 200
    page = html.unescape(response.get_data(as_text=True))
    body = re.search(r"<tbody>(.*)</tbody>", page, re.S)
    assert body, "no table on the page"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body.group(1)))


@pytest.fixture
def history(world, db_session):
    """Real changes through the services: a project put on hold and resumed, then handed over
    to the other 载体 (offered, then accepted there); an account's role changed; a checklist answer entered."""
    project = world.project_a
    change_status(
        world.leader,
        project,
        Status.ON_HOLD,
        reason="等待用地指标",
        effective_on=local_today(),
    )
    change_status(world.leader, project, Status.ACTIVE, effective_on=local_today())
    handover = handover_project(
        world.leader,
        project,
        world.carrier_b,
        world.officer_b,
        reason="产业匹配",
        loaded_version=project.version,
    )
    accept_handover(world.officer_b, handover, world.officer_b)
    record(world.admin, "login", world.admin, summary="admin")
    record(
        world.admin,
        "evaluation_filled",
        object_type="evaluations",
        summary="填写 1 项",
        changes={"尽职调查": {"verdict": [None, "CONFORMS"], "comment": ["", "已核查"]}},
    )
    db_session.flush()
    return project


CODES = [
    "users #",
    "projects #",
    "status_reason",
    "carrier_id",
    "officer_id",
    "ON_HOLD",
    "ACTIVE",
    "CONFORMS",
    "verdict",
    "status_changed",
    "project_handed_over",
    "evaluation_filled",
]


def test_the_audit_page_shows_labels_not_codes(world, login, history):
    client = login(world.admin)
    table = _table(client.get("/admin/audit"))
    for code in CODES:
        assert code not in table, code
    project = f"项目 #{history.id} {history.name}"
    assert table.count(project) == 3  # two status changes and the hand-over
    assert "变更状态" in table and "项目流转" in table and "填写评估" in table
    assert "状态 暂缓 → 正常" in table
    assert "状态 正常 → 暂缓" in table
    assert "状态说明 等待用地指标 → —" in table
    assert f"载体 {world.carrier_a.name} → {world.carrier_b.name}" in table
    assert f"责任人 {world.officer_a.display_name} → {world.officer_b.display_name}" in table
    assert f"用户 #{world.admin.id} {world.admin.display_name}" in table
    assert "尽职调查 结论 — → 符合 说明 — → 已核查" in table


def test_the_search_offers_labels(world, login, history):
    page = login(world.admin).get("/admin/audit").get_data(as_text=True)
    assert '<option value="status_changed">变更状态</option>' in page
    assert '<option value="projects">项目</option>' in page


def test_the_csv_export_shows_labels_and_keeps_the_codes_apart(world, login, history):
    client = login(world.admin)
    response = client.get("/admin/audit/export.csv?action=status_changed")
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    header, resumed, held = rows[0], rows[1], rows[2]
    assert header[5] == "对象" and header[8] == "变更"
    assert resumed[3] == "变更状态"
    assert resumed[5] == f"项目 #{history.id} {history.name}"
    assert "状态：暂缓 → 正常" in resumed[8] and "状态说明：等待用地指标 → —" in resumed[8]
    assert "ON_HOLD" not in resumed[8] and "status_reason" not in resumed[8]
    assert held[8].startswith("状态：正常 → 暂缓")
    # the codes stay in their own columns, for whoever processes the file further
    assert (resumed[4], resumed[9]) == ("status_changed", "projects")
    assert json.loads(resumed[10])["status"] == ["ON_HOLD", "ACTIVE"]


def test_names_are_read_in_one_query_per_table(world, login, count_queries, db_session):
    """The page reads the names of the projects, 载体 and users it mentions in batches,
    not once per row."""
    client = login(world.admin)

    def page_queries() -> int:
        with count_queries() as counter:
            assert client.get("/admin/audit").status_code == 200
        return counter.count

    def add_entries() -> None:
        for _ in range(5):
            project = factories.project(world.carrier_a, world.cluster_x, world.officer_a)
            record(
                world.leader,
                "project_updated",
                project,
                changes={"carrier_id": [world.carrier_a.id, world.carrier_b.id]},
            )
            other = factories.user(Role.LEADER)
            record(other, "login", other)
        db_session.commit()

    add_entries()
    few = page_queries()
    add_entries()
    assert page_queries() == few


def test_unknown_codes_and_removed_records_still_show(world, login, db_session):
    """An entry written by an older version (an action or field no longer known) or naming a
    record that is gone shows its code and number rather than failing."""
    db_session.add(
        AuditEntry(
            user_id=None,
            action="retired_action",
            object_type="projects",
            object_id=2**31 - 1,
            changes={"old_field": [1, 2], "carrier_id": [2**31 - 1, None], "flag": True},
        )
    )
    db_session.flush()
    table = _table(login(world.admin).get("/admin/audit"))
    assert "retired_action" in table and f"项目 #{2**31 - 1}" in table
    assert "old_field 1 → 2" in table
    assert f"载体 #{2**31 - 1} → —" in table
    assert "flag 是" in table


def test_the_export_entry_describes_the_search_in_words(world, login):
    client = login(world.admin)
    client.get("/admin/audit/export.csv?action=login&object_type=users&date_to=2026-03-03")
    (entry,) = db.session.scalars(
        sa.select(AuditEntry).where(AuditEntry.action == "audit_exported")
    ).all()
    assert entry.summary == "导出条件：操作 登录；对象类型 用户；截止日期 2026-03-03"


# ---- every code the program can write has a label -------------------------------------------

CRM = Path(crm.__file__).resolve().parent
RECORDERS = {"record", "record_separately", "record_bulk"}


def _call_name(node: ast.Call) -> str | None:
    func = node.func
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)


def _strings(node: ast.AST) -> set[str]:
    return {
        n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    }


def _dict_keys(node: ast.AST) -> set[str]:
    return {
        k.value
        for d in ast.walk(node)
        if isinstance(d, ast.Dict)
        for k in d.keys
        if isinstance(k, ast.Constant) and isinstance(k.value, str)
    }


def written_codes() -> dict[str, set[str]]:
    """What the code under crm/ can put in an entry: action codes (literal, or assigned to the
    variable passed as the action), object types and the keys of the diffs it writes."""
    found: dict[str, set[str]] = {"actions": set(), "object_types": set(), "fields": set()}
    for path in CRM.rglob("*.py"):
        if path == CRM / "audit" / "labels.py":  # the words themselves, keyed by the codes
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        action_names: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _call_name(node) in RECORDERS:
                args = dict(enumerate(node.args)) | {
                    {"action": 1}.get(k.arg, k.arg): k.value for k in node.keywords
                }
                action = args.get(1)
                if isinstance(action, ast.Constant):
                    found["actions"].add(action.value)
                elif isinstance(action, ast.Name):
                    action_names.add(action.id)
                if isinstance(args.get("object_type"), ast.Constant):
                    found["object_types"].add(args["object_type"].value)
                if "changes" in args:
                    found["fields"] |= _dict_keys(args["changes"])
            # a bulk insert of entries: {"action": ..., "object_type": ..., "changes": ...}
            if isinstance(node, ast.Dict):
                keys = {
                    k.value: v
                    for k, v in zip(node.keys, node.values, strict=True)
                    if isinstance(k, ast.Constant)
                }
                if {"action", "object_type", "changes"} <= keys.keys():
                    found["actions"] |= _strings(keys["action"])
                    found["object_types"] |= _strings(keys["object_type"])
            # diffs built up before the call: changes = {...}, changes |= {...}, changes["k"] = ...
            if isinstance(node, ast.Assign | ast.AugAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name) and target.id == "changes":
                        found["fields"] |= _dict_keys(node.value)
                    if (
                        isinstance(target, ast.Subscript)
                        and isinstance(target.value, ast.Name)
                        and target.value.id == "changes"
                        and isinstance(target.slice, ast.Constant)
                    ):
                        found["fields"].add(target.slice.value)
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id in action_names for t in node.targets
            ):
                found["actions"] |= _strings(node.value)
    return found


def test_the_walk_finds_what_the_code_writes():
    """The scan itself works: it sees literal, variable-held and bulk-inserted codes."""
    codes = written_codes()
    assert {"login", "catalog_deactivated", "user_enabled", "company_created"} <= codes["actions"]
    assert {"ledger", "database", "request", "companies"} <= codes["object_types"]
    assert {"stage", "password", "locked_until", "benefit_sharing", "rows"} <= codes["fields"]


def test_every_action_code_has_a_label():
    missing = sorted(a for a in written_codes()["actions"] if a not in ACTION_LABELS)
    assert missing == []


def test_every_object_type_has_a_label(app):
    types = written_codes()["object_types"] | set(db.metadata.tables)
    assert sorted(t for t in types if t not in OBJECT_TYPE_LABELS) == []


def test_every_field_has_a_label(app):
    """Every column of every table (services diff model attributes) and every other key the
    code writes into a diff."""
    missing = sorted(
        f"{table.name}.{column.key}"
        for table in db.metadata.tables.values()
        for column in table.c
        if field_label(table.name, column.key) == column.key
    )
    missing += sorted(k for k in written_codes()["fields"] if field_label("", k) == k)
    assert missing == []


def test_every_enum_value_has_a_label(app):
    """Stored enum members are shown by their label: every enum column holds a LabelledEnum."""
    for table in db.metadata.tables.values():
        for column in table.c:
            if isinstance(column.type, sa.Enum):
                assert issubclass(column.type.enum_class, LabelledEnum), column
                for member in column.type.enum_class:
                    assert member.label and member.label != member.name, member


def test_a_file_named_in_a_diff_shows_by_its_name(world, login, db_session):
    stored = StoredFile(
        project_id=world.project_a.id,
        kind=DocumentKind.DOSSIER,
        original_name="尽调摘要-甲区光伏组件项目.pdf",
        stored_name="0" * 64,
        content_type="application/pdf",
        size=1,
        sha256="0" * 64,
    )
    db_session.add(stored)
    db_session.flush()
    record(
        world.leader,
        "dossier_archived",
        object_type="evaluations",
        changes={"file_id": stored.id, "sha256": stored.sha256},
    )
    db_session.flush()
    table = _table(login(world.admin).get("/admin/audit"))
    assert "存档尽调摘要" in table and "文件 尽调摘要-甲区光伏组件项目.pdf" in table
