"""The special measures that keep the busiest pages fast, gathered here with why each exists.

Each one was kept because `make bench` (scripts/bench_web.py, 100,000 projects) showed what it
gained; docs/performance.md has the runs. The project list's measures live in this module;
the others act where they must, and are listed here so that one place says them all.

| measure | where | what it gained when it was measured |
| --- | --- | --- |
| kept statements: the list's ids, count, rows, filter choices and the signed-in user's load are built once per key and executed again (`kept`) | here; used by `crm.projects.listing`, `crm.pagination`, `crm.auth.views` | building a statement and its compiled form's cache key cost more than SQLite's work: the list's CPU per request about 9 → 4 ms (with the items below) |
| one `url_for` for the 50 rows' links and the pager's (`url_for_each`; `url_with_each` in `crm.templating`) | here; used by `projects/index.html`, `macros.html` | 50 `url_for` calls were a sixth of the list's time |
| plain rows: the list's 50 rows as named tuples on the session's connection (`plain_rows`) | here; used by `crm.projects.listing` | ORM objects for 50 projects and their relations were half the page's cost; Jinja reads a tuple's fields faster than a result row's |
| ids first: a page's ids are found in the indexes, then 50 rows read | `crm.pagination` | page 100 costs what page 1 does (44–49 → 4 ms) |
| the session cookie re-signed once a thirtieth of the idle timeout, not on every request | `crm.auth.views` | part of the list's 9 → 4 ms; a session may end up to a minute early |
| start-up objects frozen out of the garbage collector (`gc.freeze()`) | `wsgi.py` | the list's p99 under 16 connections 52 → 40 ms |
| the collector's first threshold 700 → 10,000 (`gc.set_threshold`) | `wsgi.py` | the list's CPU per request −3–4 % in process; `make bench`'s ratio 0.46/0.55/0.48 → 0.53/0.52/0.52 in alternate runs |
| the top bar's two counts (open tasks, unread notifications) in one kept statement, read from indexes alone | `crm.todo.services.top_counts` | every page: 0.8 ms → 0.03 ms for an officer with 1,000 open tasks (its first form joined each task to its project's scope) |
| the dashboard's figures kept per scope until the next audited change | `crm.dashboard.cache` | the dashboard 6–10 s → 12–29 ms |
| PostgreSQL's JIT off for the dashboard's aggregates (`SET LOCAL jit = off`) | `crm.dashboard.services` | JIT compiled them first: over a second for nothing |
| the dossier's helper process: fonts and stylesheet kept, `gc.freeze()`, zlib level 6 for the font stream | `crm.reports.renderer` | instructions per render 2.69 G → 2.01 G |

Not done, on purpose: caching whole pages (it would meet a benchmark that repeats one request
without helping people). SQLAlchemy's own `lambda_stmt` caches a statement per lambda and
treats the closure's values as parameters, but the list's statements change *shape* with the
filter (which conditions are present, which sort), so one kept statement per (scope, filter)
is the direct form of the same idea; SQLAlchemy's compiled cache still serves each of them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import sqlalchemy as sa
from cachetools import LRUCache
from flask import url_for

from crm.extensions import db

T = TypeVar("T")

# A list page's statements take about 17 KB: 256 of them are about 4 MB per process at most.
_kept: LRUCache = LRUCache(maxsize=256)
_kept_lock = threading.Lock()


def kept(key: Hashable, build: Callable[[], T]) -> T:
    """The statement (or statements) kept under `key`, built by `build()` the first time; the
    key names everything the statement depends on (the scope, the filter, the day)."""
    with _kept_lock:
        found = _kept.get(key)
    if found is None:
        found = build()
        with _kept_lock:
            _kept[key] = found
    return found


def forget_kept() -> None:
    """Drop every kept statement (tests, and a process that changed its schema)."""
    with _kept_lock:
        _kept.clear()


def plain_rows(select: sa.Select, params: dict[str, Any], row: Callable[..., T]) -> list[T]:
    """The rows of `select` as `row(*values)` (a named tuple), on the session's connection:
    none of the ORM's result handling, for a page that only reads."""
    return [row(*values) for values in db.session.connection().execute(select, params)]


PLACEHOLDER = 987654321012345  # a number no real id or page reaches


def url_for_each(endpoint: str, name: str, **values) -> Callable[[int], str]:
    """`url_for(endpoint, name=n, **values)` for many numbers `n` at the cost of one url_for:
    for the link on each row of a list. Only for an `<int:...>` argument or a query argument:
    the number is its text."""
    return numbered(url_for(endpoint, **{name: PLACEHOLDER}, **values))


def numbered(url: str) -> Callable[[int], str]:
    """`url`, built with PLACEHOLDER for a number, as a function of that number."""
    head, _, tail = url.partition(str(PLACEHOLDER))
    return lambda n: f"{head}{int(n)}{tail}"
