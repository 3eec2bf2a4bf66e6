"""The project list's query uses its indexes (issue 7): on SQLite, `EXPLAIN QUERY PLAN` of the
list (its page of ids, at an offset, and its count; for a text search, the one query that
yields both) never scans the whole projects table."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from werkzeug.datastructures import MultiDict

from crm.core import local_today
from crm.extensions import db
from crm.projects.filters import ProjectFilter
from crm.projects.listing import list_select
from crm.projects.models import Project

LIST_INDEXES = {
    "ix_projects_search_text",
    "ix_projects_stage_is_deleted_updated_at",
    "ix_projects_carrier_id_is_deleted_updated_at",
    "ix_projects_carrier_id_stage_is_deleted_updated_at",
    "ix_projects_updated_at",
}


def _plan(user, args: dict) -> list[str]:
    """The plans of the statements `crm.pagination.IdFirstPagination` runs for page 100."""
    f = ProjectFilter.from_args(MultiDict(args))
    query = list_select(user, f, local_today(), 30)
    if f.q:
        statements = [query.with_only_columns(Project.id, sa.func.count().over())]
    else:
        count = sa.select(sa.func.count()).select_from(
            query.with_only_columns(Project.id).order_by(None).subquery()
        )
        statements = [query.with_only_columns(Project.id), count]
    lines = []
    for statement in statements:
        if statement is not statements[-1] or f.q:
            statement = statement.limit(50).offset(4950)
        sql = str(statement.compile(db.engine, compile_kwargs={"literal_binds": True}))
        lines += [row[3] for row in db.session.execute(sa.text("EXPLAIN QUERY PLAN " + sql))]
    return lines


def _full_scans(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("SCAN projects") and "INDEX" not in line]


@pytest.mark.parametrize("role", ["leader", "officer_a"])
@pytest.mark.parametrize(
    "args",
    [{}, {"stage": "ATTRACTING"}, {"stage": "SIGNED", "sort": "updated"}],
    ids=["default", "stage", "stage-sorted"],
)
def test_the_list_query_uses_an_index(world, role, args):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("EXPLAIN QUERY PLAN is SQLite's")
    lines = _plan(getattr(world, role), args)
    assert not _full_scans(lines), "\n".join(lines)
    assert any("INDEX ix_projects_" in line for line in lines), "\n".join(lines)


def test_the_list_indexes_exist(db_session):
    """The migration created the indexes the models declare, on either database."""
    names = {ix["name"] for ix in sa.inspect(db_session.connection()).get_indexes("projects")}
    assert names >= LIST_INDEXES


@pytest.mark.parametrize("role", ["leader", "officer_a"])
def test_a_text_search_reads_an_index(world, role):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("EXPLAIN QUERY PLAN is SQLite's")
    lines = _plan(getattr(world, role), {"q": "光伏"})
    assert not _full_scans(lines), "\n".join(lines)
    if role == "leader":  # every project: the search index, not the table
        assert any("COVERING INDEX ix_projects_search_text" in line for line in lines), lines


def test_the_check_sees_a_full_scan(world):
    """The checks above can fail: a filter on a column no index holds is a full scan."""
    if db.engine.dialect.name != "sqlite":
        pytest.skip("EXPLAIN QUERY PLAN is SQLite's")
    sql = str(
        sa.select(Project.id)
        .where(Project.description.contains("厂房"))
        .compile(db.engine, compile_kwargs={"literal_binds": True})
    )
    lines = [row[3] for row in db.session.execute(sa.text("EXPLAIN QUERY PLAN " + sql))]
    assert _full_scans(lines)


@pytest.mark.parametrize("role", ["leader", "officer_a"])
def test_postgresql_can_serve_the_list_from_an_index(world, role):
    """On PostgreSQL the test data is too small for the planner to prefer an index, so sequential
    scans are priced out: the plan of the default list page must then read an index of ours."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("EXPLAIN is PostgreSQL's here")
    f = ProjectFilter.from_args(MultiDict({"stage": "ATTRACTING"}))
    query = list_select(getattr(world, role), f, local_today(), 30).with_only_columns(Project.id)
    sql = str(
        query.limit(50).offset(4950).compile(db.engine, compile_kwargs={"literal_binds": True})
    )
    db.session.execute(sa.text("SET LOCAL enable_seqscan = off"))
    plan = "\n".join(row[0] for row in db.session.execute(sa.text("EXPLAIN " + sql)))
    assert "Seq Scan on projects" not in plan, plan
    assert "ix_projects_" in plan, plan


@pytest.mark.parametrize("role", ["officer_a", "taskforce_x", "leader", "admin"])
def test_the_todo_page_reads_its_lists_in_index_order(app, world, db_session, role):
    """待办's groups come in index order, and their counts from indexes: no sort of all the
    载体's projects or moves, no scan of a whole table (migration cffb03cd1124)."""
    if db.engine.dialect.name != "sqlite":
        pytest.skip("EXPLAIN QUERY PLAN is SQLite's")
    from crm.todo.services import todo_for

    statements: list[tuple[str, object]] = []

    def keep(conn, cursor, statement, parameters, context, executemany):
        statements.append((statement, parameters))

    sa.event.listen(db.engine, "before_cursor_execute", keep)
    try:
        with app.test_request_context():
            todo_for(getattr(world, role), local_today())
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", keep)
    plans = []
    for statement, parameters in statements:
        rows = db.session.connection().exec_driver_sql(
            "EXPLAIN QUERY PLAN " + statement, parameters
        )
        plans.append([row[3] for row in rows])
    big = ("projects", "stage_changes", "followups", "tasks")
    for lines in plans:
        # Reads driven by a large table come in index order; a sort is allowed only over the
        # few rows of a state (evaluations waiting, open conflicts, locked accounts).
        if lines[0].split()[1] in big:
            assert not any("TEMP B-TREE FOR ORDER BY" in line for line in lines), lines
        assert not any(
            line.startswith("SCAN") and line.split()[1] in big and "INDEX" not in line
            for line in lines
        ), lines
