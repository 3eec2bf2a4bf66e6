"""Pagination that reads a page's ids from the indexes first, then only that page's rows.

`db.paginate` fetches whole rows, joined to what the page shows, at an OFFSET: on page 100 the
database builds and throws away 4,950 of them. Here the page is found on the ids alone (the
list's indexes hold the filter, the sort and the id, so this reads no table row), then the 50
rows are loaded by id, by the caller's `load` (which may read plain rows, not ORM objects).

The total comes from a COUNT over the same conditions, also an index-only read, except when
the caller says the conditions cannot use an ordered index (a text search, `one_pass=True`):
then a single scan yields both the page's ids and the total (`count(*) OVER ()`).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask_sqlalchemy.pagination import Pagination

from crm.extensions import db


class IdFirstPagination(Pagination):
    """`select` is `sa.select(Model)` with its WHERE and ORDER BY (the order must end with the
    id, so pages never overlap); `load(ids)` returns the items shown, each with an `id`, in
    any order."""

    def _ids(self) -> sa.Select:
        """The ids of `select`, in its order."""
        select: sa.Select = self._query_args["select"]
        return select.with_only_columns(select.column_descriptions[0]["entity"].id)

    def _query_items(self) -> list[Any]:
        self._total: int | None = None
        page = self._ids().limit(self.per_page).offset(self._query_offset)
        if self._query_args.get("one_pass"):
            rows = db.session.execute(page.add_columns(sa.func.count().over())).all()
            ids = [row[0] for row in rows]
            if rows:
                self._total = rows[0][1]
        else:
            ids = list(db.session.scalars(page))
        if not ids:
            return []
        by_id = {item.id: item for item in self._query_args["load"](ids)}
        return [by_id[i] for i in ids if i in by_id]

    def _query_count(self) -> int:
        if self._total is not None:
            return self._total
        return db.session.scalar(
            sa.select(sa.func.count()).select_from(self._ids().order_by(None).subquery())
        )
