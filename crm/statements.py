"""Statements built once and used again, for the queries every list page runs.

Building a SQLAlchemy statement from its clauses and computing its compiled form's cache key
cost more, on a list page over 100,000 projects, than the database's work: a statement kept
and executed again with new parameter values skips both (its cache key is memoised on it).
A statement is kept under a key that names everything it depends on; the least recently used
are dropped beyond `KEPT` (a list page's statements take about 17 KB: 4 MB per process at most).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

T = TypeVar("T")
KEPT = 256

_kept: OrderedDict[Hashable, object] = OrderedDict()
_lock = threading.Lock()


def kept(key: Hashable, build: Callable[[], T]) -> T:
    """The statement (or statements) kept under `key`, built by `build()` the first time."""
    with _lock:
        found = _kept.get(key)
        if found is not None:
            _kept.move_to_end(key)
            return found  # type: ignore[return-value]
    built = build()
    with _lock:
        _kept[key] = built
        while len(_kept) > KEPT:
            _kept.popitem(last=False)
    return built
