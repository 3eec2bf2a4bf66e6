"""Statements built once and used again, for the queries every list page runs.

Building a SQLAlchemy statement from its clauses and computing its compiled form's cache key
cost more, on a list page over 100,000 projects, than the database's work: a statement kept
and executed again with new parameter values skips both (its cache key is memoised on it).
A statement is kept under a key that names everything it depends on; the least recently used
are dropped beyond 256 (a list page's statements take about 17 KB: 4 MB per process at most).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TypeVar

from crm.lru import LRU

T = TypeVar("T")

_kept = LRU(256)


def kept(key: Hashable, build: Callable[[], T]) -> T:
    """The statement (or statements) kept under `key`, built by `build()` the first time."""
    found = _kept.get(key)
    if found is None:
        found = build()
        _kept.put(key, found)
    return found
