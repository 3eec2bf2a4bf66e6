"""Pagination that reads a page's ids from the indexes first, then only that page's rows.

`db.paginate` fetches whole rows, joined to what the page shows, at an OFFSET: on page 100 the
database builds and throws away 4,950 of them. Here the page is found on the ids alone (the
list's indexes hold the filter, the sort and the id, so this reads no table row), then the 50
rows are loaded by id, by the caller's `load` (which may read plain rows, not ORM objects).

The total comes from a COUNT over the same conditions, also an index-only read, except when
the caller says the conditions cannot use an ordered index (a text search, `one_pass=True`):
then a single scan yields both the page's ids and the total (`count(*) OVER ()`).

The statements are built once per `key`, which names everything they depend on (the caller's
filter and scope), and kept for the next page asked with that key (`crm.speedups`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import sqlalchemy as sa
from flask_sqlalchemy.pagination import Pagination

from crm.extensions import db
from crm.speedups import kept


class _Statements(NamedTuple):
    page: sa.Select  # the page's ids (and with one_pass the total), limit and offset bound
    count: sa.Select


def _build(select: sa.Select, one_pass: bool) -> _Statements:
    ids = select.with_only_columns(select.column_descriptions[0]["entity"].id)
    page = ids.limit(sa.bindparam("limit")).offset(sa.bindparam("offset"))
    if one_pass:
        page = page.add_columns(sa.func.count().over())
    count = sa.select(sa.func.count()).select_from(ids.order_by(None).subquery())
    return _Statements(page, count)


class IdFirstPagination(Pagination):
    """`select()` returns `sa.select(Model)` with its WHERE and ORDER BY (the order must end
    with the id, so pages never overlap); `key` names everything that statement depends on
    (the statements built from it are kept for the next page asked with that key, and
    `select` is not called again); `load(ids)` returns the items shown, each with an `id`, in
    any order."""

    def _statements(self) -> _Statements:
        select: Callable[[], sa.Select] = self._query_args["select"]
        one_pass = bool(self._query_args.get("one_pass"))
        key = ("page", self._query_args["key"], one_pass)
        return kept(key, lambda: _build(select(), one_pass))

    def _query_items(self) -> list[Any]:
        self._total: int | None = None
        statements = self._statements()
        self._count_statement = statements.count
        bounds = {"limit": self.per_page, "offset": self._query_offset}
        # Ids and a count need none of the ORM's result handling: the session's connection
        # runs them, after the flush the session would have made.
        db.session.flush()
        rows = db.session.connection().execute(statements.page, bounds).all()
        if self._query_args.get("one_pass") and rows:
            self._total = rows[0][1]
        ids = [row[0] for row in rows]
        if not ids:
            return []
        by_id = {item.id: item for item in self._query_args["load"](ids)}
        return [by_id[i] for i in ids if i in by_id]

    def _query_count(self) -> int:
        if self._total is not None:
            return self._total
        return db.session.connection().execute(self._count_statement).scalar_one()
