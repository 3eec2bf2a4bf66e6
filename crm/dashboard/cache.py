"""The dashboard's figures, kept per process until the data changes."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

import sqlalchemy as sa
from cachetools import LRUCache

from crm.audit.models import AuditEntry
from crm.core import local_now
from crm.extensions import db

# The aggregates over every project in a scope take a second or more at 100,000 projects; the
# page must answer in tens of milliseconds. So each process keeps the latest ones, per scope
# and arguments, until the data changes. Every change to the data is audited in the
# transaction that makes it (crm.audit.services.record), so the newest audit entry's id moves
# with each one: it is part of the key. The age limit bounds what a change that is not seen
# this way (two transactions committing in the reverse order of their audit ids on
# PostgreSQL, a bulk load that writes no audit entry) can leave behind.
_cache: LRUCache = LRUCache(maxsize=64)
_cache_lock = threading.Lock()


def forget_figures() -> None:
    """Empty this process's store of figures."""
    with _cache_lock:
        _cache.clear()


def change_marker() -> int:
    """The id of the newest audit entry: it changes with every change to the data."""
    return db.session.scalar(sa.select(sa.func.max(AuditEntry.id))) or 0


class Kept(Protocol):
    computed_at: datetime  # local time


K = TypeVar("K", bound=Kept)


def cached(args: tuple, seconds: int, compute: Callable[[], K]) -> K:
    """What `compute` returns for `args`, kept for `seconds` (computed anew if 0)."""
    if seconds <= 0:
        return compute()
    key = (db.engine.url.render_as_string(hide_password=True), change_marker(), *args)
    with _cache_lock:
        figures = _cache.get(key)
    if figures is None or figures.computed_at < local_now() - timedelta(seconds=seconds):
        figures = compute()
        with _cache_lock:
            _cache[key] = figures
    return figures
