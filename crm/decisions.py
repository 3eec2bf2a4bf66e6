"""A decision-like action wins once.

Verifying or rejecting a claimed stage (甄别), settling a cross-载体 conflict, handing a project
over (流转): each is decided by one person, on the state that person saw. When N people (or one
person's N clicks) decide at the same moment, exactly one decision is kept and every other is
refused with `AlreadyDecided` (answered 409 by the views), whatever the database.

The mechanism is a conditional UPDATE: the row changes only if it is still in the state the
decision was taken on (`UPDATE … SET <decision> WHERE id = :id AND <state> = <expected>`), and the
number of rows it changed says who won. On PostgreSQL (READ COMMITTED) a second UPDATE of the same
row waits for the first transaction, then evaluates its WHERE again on the committed row and
changes nothing; on SQLite the writers are serialised (BEGIN IMMEDIATE), so a later one sees the
decided state in its own checks, which raise `AlreadyDecided` too.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm.attributes import set_committed_value

from crm.core import ConflictError
from crm.extensions import db

ALREADY_DECIDED = "该事项刚被他人处理，本次操作未保存，请刷新页面后查看"


class AlreadyDecided(ConflictError):
    """Someone else decided the same thing first: nothing of this request is kept (409)."""

    def __init__(self, detail: str = ""):
        super().__init__(f"{ALREADY_DECIDED}（{detail}）" if detail else ALREADY_DECIDED)


def change_once(obj: Any, expected: dict[str, Any], values: dict[str, Any]) -> bool:
    """Set `values` on the row of `obj` if its columns still hold `expected`; True if this call
    changed it. `obj` then holds `values` as if loaded (not pending a second UPDATE)."""
    model = type(obj)
    where = [
        getattr(model, name).is_(None) if value is None else getattr(model, name) == value
        for name, value in expected.items()
    ]
    statement = (
        sa.update(model)
        .where(model.id == obj.id, *where)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    try:
        result = db.session.execute(statement)
    except OperationalError as exc:
        # SQLite outside a request's BEGIN IMMEDIATE: another transaction wrote since this one
        # began reading ("database is locked"), so the state seen may be gone.
        if db.session.get_bind().dialect.name != "sqlite" or "locked" not in str(exc.orig):
            raise
        return False
    if result.rowcount != 1:
        return False
    for name, value in values.items():
        set_committed_value(obj, name, value)
    return True


def decide_once(
    obj: Any, expected: dict[str, Any], values: dict[str, Any], detail: str = ""
) -> None:
    """`change_once`, or `AlreadyDecided` when another decision came first."""
    if not change_once(obj, expected, values):
        raise AlreadyDecided(detail)
