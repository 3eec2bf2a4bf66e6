"""The project list's query uses its indexes (issue 7): on SQLite, `EXPLAIN QUERY PLAN` of the
list (its page, at an offset, and its count) never scans the whole projects table."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from werkzeug.datastructures import MultiDict

from crm.core import local_today
from crm.extensions import db
from crm.projects.services import ProjectFilter, project_list_query

LIST_INDEXES = {
    "ix_projects_stage_is_deleted_updated_at",
    "ix_projects_carrier_id_is_deleted_updated_at",
    "ix_projects_carrier_id_stage_is_deleted_updated_at",
    "ix_projects_updated_at",
}


def _plan(user, args: dict) -> list[str]:
    f = ProjectFilter.from_args(MultiDict(args))
    query = project_list_query(user, f, local_today(), 30)
    count = sa.select(sa.func.count()).select_from(query.order_by(None).subquery())
    lines = []
    for statement in (query.limit(50).offset(4950), count):
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


def test_a_text_search_still_scans(world):
    """The check above would see a full scan: the text search (LIKE '%…%') is one, for now."""
    if db.engine.dialect.name != "sqlite":
        pytest.skip("EXPLAIN QUERY PLAN is SQLite's")
    assert _full_scans(_plan(world.leader, {"q": "光伏"}))
