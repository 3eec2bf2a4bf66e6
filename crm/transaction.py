"""The request's transaction edge: the one place a request's work is committed or rolled back.

A request's work is kept only when the request says so: `save_form` / `save_button` call
`keep()` once their service succeeded, and the few views that write outside a form (the audit
entry of a download, of an export, a sign-in attempt) call it themselves. After the view has
returned, `finish_request` (installed by `init_app` as an `after_request`, so before the
response is sent) commits a kept request once and rolls back every other one. Nothing else
in `crm/` commits or rolls back inside a request; CLI commands and tests are their own edge.

- An exception in a request (a refusal by `abort`, a failed flush, a timeout) discards its
  work before any error handler runs (`discard`, called by the app's exception hook in
  `crm/__init__.py`), so an error page never shows, nor commits, half a change.
- A commit that fails (the record was saved meanwhile, the database is busy) answers through
  the app's error handlers (409, 503, …) instead of the view's response: no false success, no
  "已保存" message, nothing of the request kept in the browser session either.
- `on_commit(fn)`: work that must happen only once the change is committed (and never for a
  change rolled back) runs right after the commit, in order; a failure is logged, not fatal.
- `separately(fn)`: an entry that must be written even though the request's own work is
  rolled back (the audit of a refused request, of a session that timed out) is written at the
  edge, after the request's work is finished, in a transaction of its own.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, current_app, has_request_context, request, session
from sqlalchemy import event
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from crm.extensions import db

log = logging.getLogger(__name__)

_ENVIRON_KEY = "crm.transaction"
ON_COMMIT = "crm.transaction: after commit"  # session.info keys
ON_ROLLBACK = "crm.transaction: after rollback"


@dataclass
class _RequestWork:
    """What one request asked of its edge."""

    keep: bool = False
    separately: list[Callable[[], Any]] = field(default_factory=list)
    session_before_keep: dict[str, Any] | None = None  # restored if the commit fails
    read_done: bool = False  # a `reads_first` view ended its reading part (`end_read`)


def _work() -> _RequestWork | None:
    if not has_request_context():
        return None
    return request.environ.setdefault(_ENVIRON_KEY, _RequestWork())


def keep() -> None:
    """Commit this request's changes when it ends (once; a failure answers 409/503). What the
    browser session holds now is what it keeps if that commit fails: call this before the
    view signs someone in or flashes its success."""
    if (work := _work()) is not None:
        if not work.keep:
            work.session_before_keep = copy.deepcopy(dict(session))
        work.keep = True


def discard(*, at_once: bool = True) -> None:
    """Nothing this request did so far is kept (a form a rule refused, an exception, a page
    that only planned changes to show them): rolled back now, or, with `at_once=False`, when
    the request ends (a refusal by `abort`, which leaves the session usable for its page)."""
    if (work := _work()) is not None:
        work.keep = False
    if at_once:
        _rollback()


def reads_first(view: Callable) -> Callable:
    """Mark a view whose POST reads at length before it writes (the ledger's confirmation
    plans every row): its first transaction begins without SQLite's write lock, and
    `end_read()` ends it before the writes, so other users' saves are not held behind the
    reading. Put it below `login_required` (functools.wraps carries the mark up)."""
    view.reads_first = True
    return view


def reading() -> bool:
    """This request is in the reading part of a `reads_first` view (no write lock yet)."""
    work = _work()
    if work is None or work.read_done or request.endpoint is None:
        return False
    return getattr(current_app.view_functions.get(request.endpoint), "reads_first", False)


def end_read() -> None:
    """End the reading transaction of a `reads_first` view, keeping what it loaded (nothing
    was written), so that the next statement begins a writing transaction (on SQLite with the
    write lock). What it read may change before the writes: they must check (a version, the
    newest ids) and refuse with a ConflictError."""
    sess = db.session()
    if sess.new or sess.dirty or sess.deleted:
        raise RuntimeError("end_read() with unsaved changes: a reading part must not write")
    expire, sess.expire_on_commit = sess.expire_on_commit, False
    try:
        sess.commit()  # a read-only transaction: nothing to write, the objects stay loaded
    finally:
        sess.expire_on_commit = expire
    if (work := _work()) is not None:
        work.read_done = True


def on_commit(fn: Callable[[], Any]) -> None:
    """Run `fn()` right after the session's current transaction commits; never if it is
    rolled back. Callbacks run in the order they were registered; a failing one is logged."""
    db.session().info.setdefault(ON_COMMIT, []).append(fn)


def separately(fn: Callable[[], Any]) -> None:
    """Write what `fn()` adds to the session in a transaction of its own, whatever becomes of
    the request's: at the request's edge after its own work, or at once outside a request
    (discarding what the session held unsaved). Never raises: a failure is logged."""
    if (work := _work()) is not None:
        work.separately.append(fn)
    else:
        _rollback()
        _write_separately(fn)


# The edge ----------------------------------------------------------------------------------


def init_app(app: Flask, on_failed_commit: Callable[[Exception], Any]) -> None:
    """Install the edge. `on_failed_commit(error)` answers a commit that failed (the app's
    error handlers: it rolls back first, as for any exception in a request)."""

    @app.after_request
    def finish_request(response: Response) -> Response:
        work = _work()
        if work is None:
            return response
        response = _finish_own_work(work, response, on_failed_commit)
        while work.separately:
            _write_separately(work.separately.pop(0))
        return response


def _finish_own_work(work: _RequestWork, response: Response, on_failed_commit) -> Response:
    """Commit a kept request, roll back any other; a failed commit gets the error's answer."""
    if not work.keep:
        if work.separately:  # their own transaction: nothing of the request's goes with them
            _rollback()
        return response  # rolled back when the session is removed, at the app context's end
    work.keep = False
    try:
        db.session.commit()
    except SQLAlchemyError as error:
        if work.session_before_keep is not None:  # no sign-in, no "已保存" of a lost change
            session.clear()
            session.update(work.session_before_keep)
        try:
            return current_app.make_response(on_failed_commit(error))
        finally:
            _rollback()
    return response


def _rollback() -> None:
    """Roll back the session's transaction, if one is open; a broken connection is logged."""
    try:
        if db.session().in_transaction():
            db.session.rollback()
    except SQLAlchemyError:
        log.exception("rollback failed")


def _write_separately(fn: Callable[[], Any]) -> None:
    try:
        fn()
        db.session.commit()
    except SQLAlchemyError:
        _rollback()
        log.exception("could not write %r in a transaction of its own", fn)


# After commit, after rollback ----------------------------------------------------------------


def on_rollback(fn: Callable[[], Any]) -> None:
    """Run `fn()` when the session's current transaction is rolled back (undo what was done
    outside the database, as removing the bytes of an upload); never once it is committed."""
    db.session().info.setdefault(ON_ROLLBACK, []).append(fn)


def _run(callbacks: list[Callable[[], Any]], when: str) -> None:
    for fn in callbacks:
        try:
            fn()
        except Exception:  # one failing callback neither undoes the commit nor stops the others
            log.exception("%s callback %r failed", when, fn)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    session.info.pop(ON_ROLLBACK, None)
    _run(session.info.pop(ON_COMMIT, []), "after-commit")


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(ON_COMMIT, None)
    _run(session.info.pop(ON_ROLLBACK, []), "after-rollback")
