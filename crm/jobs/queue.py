"""The job queue: one huey instance, where it keeps its tasks, and how a task runs.

Storage (`QUEUE_URL`, from CRM_QUEUE_URL): empty keeps the queue in `queue.sqlite3` in the
instance folder, shared by the web workers that enqueue and the worker that runs (no server:
`make run`); `redis://…` keeps it in Redis (production); `memory://` (the tests) keeps it in
this process until a test runs it. `init_app` installs it when the app is created.

A job is a function decorated with `job` or `periodic_job`. Each run:
- happens inside an app context: the caller's if it has one (a test), else one of the app the
  worker built once (`init_app` remembers it);
- is recorded as a JobRun (运行中, then 成功, 重试中 or 失败, with the attempt and the error),
  committed apart from the job's own work, which commits once at the end (a failure rolls
  the job's work back and keeps the record);
- is retried after 1, 5 and 25 minutes (huey's retry_delay and retry_backoff) before it
  counts as failed. Jobs are written to be run again: what they did is checked first;
- on SQLite, writes from its first statement (BEGIN IMMEDIATE, `running_job`): its
  transactions are short, and it commits (`checkpoint`) before waiting on the outside world.

Periodic jobs use `local_crontab`: huey's scheduler hands them UTC times (utc=True), which
this converts to Asia/Shanghai before huey's own `crontab` compares them.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from flask import Flask, current_app, has_app_context
from huey import Huey, crontab
from huey.storage import MemoryStorage, RedisStorage, SqliteStorage

from crm.core import LOCAL_TZ
from crm.files.private import make_private

log = logging.getLogger(__name__)

QUEUE_NAME = "crm"
RETRIES = 3
RETRY_DELAY_SECONDS = 60  # then ×5: retries after 1, 5 and 25 minutes
RETRY_BACKOFF = 5

# results=False: nothing reads a job's return value, so none is kept in the storage.
# utc=True: etas and the scheduler's clock are UTC whatever the machine's time zone.
huey = Huey(QUEUE_NAME, results=False, utc=True, storage_class=MemoryStorage)

_app: Flask | None = None  # the app jobs run in when the caller has no app context


def storage_for(url: str, instance_path: str, name: str = QUEUE_NAME):
    """The huey storage a QUEUE_URL names (see the module's docstring)."""
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisStorage(name, url=url)
    if url == "memory://":
        return MemoryStorage(name)
    if url:
        raise RuntimeError(f"CRM_QUEUE_URL must be empty or a redis:// URL, not {url!r}")
    path = Path(instance_path) / "queue.sqlite3"
    storage = SqliteStorage(name, filename=str(path))  # creates the file and its tables
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        make_private(file)  # the queued jobs' arguments (mail bodies) are nobody else's
    return storage


def init_app(app: Flask) -> None:
    """Point the queue at the app's storage and run jobs in this app; load every job."""
    global _app
    from crm.jobs import mail

    mail.check_settings(app.config)
    huey.storage = storage_for(app.config["QUEUE_URL"], app.instance_path)
    _app = app
    import crm.jobs.periodic  # noqa: F401  (registers the periodic jobs with huey)


def queue_description(config) -> str:
    """Where the queue is, in words for the admin's page."""
    url = config["QUEUE_URL"]
    if url.startswith(("redis://", "rediss://", "unix://")):
        return "Redis"
    if url == "memory://":
        return "内存（测试）"
    return "SQLite（实例目录 queue.sqlite3）"


@dataclass(frozen=True)
class QueueState:
    """The queue as the admin's page shows it; `error` when it cannot be read (Redis down)."""

    where: str
    pending: int | None = None  # waiting for a worker
    scheduled: int | None = None  # waiting for their time (retries after a failure)
    error: str = ""


def queue_state(config) -> QueueState:
    where = queue_description(config)
    try:
        return QueueState(where, huey.pending_count(), huey.scheduled_count())
    except Exception as exc:  # the page shows the queue's failure instead of failing itself
        log.warning("cannot read the job queue: %s", exc)
        return QueueState(where, error=f"{type(exc).__name__}: {exc}"[:300])


def local_crontab(**fields) -> Callable[[datetime], bool]:
    """huey's `crontab(**fields)`, read in Asia/Shanghai: `local_crontab(hour="8", minute="0")`
    fires at 08:00 in Bozhou, 00:00 UTC, which is what huey's scheduler asks about."""
    matches = crontab(strict=True, **fields)

    def validate(timestamp: datetime) -> bool:
        utc = timestamp.replace(tzinfo=UTC) if timestamp.tzinfo is None else timestamp
        return matches(utc.astimezone(LOCAL_TZ).replace(tzinfo=None))

    return validate


def _summary(args: tuple, kwargs: dict) -> str:
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    return ", ".join(parts)


def _wrap(fn: Callable, name: str, describe: Callable[..., str]) -> Callable:
    """`fn` as huey runs it: in an app context, recorded as a JobRun."""

    @functools.wraps(fn)
    def run(*args, task=None, **kwargs):
        if has_app_context():
            return _recorded(fn, name, describe, task, args, kwargs)
        if _app is None:
            raise RuntimeError("the job queue runs jobs only after create_app()")
        with _app.app_context():
            return _recorded(fn, name, describe, task, args, kwargs)

    return run


_in_job: ContextVar[bool] = ContextVar("crm.jobs: running a job", default=False)


def running_job() -> bool:
    """This thread is running a job: on SQLite its transactions take the write lock when they
    begin (crm/__init__.py `_sqlite_begin`), as a POST's do, so the worker's writes queue on
    the busy timeout behind the web's instead of failing. A job therefore keeps its
    transactions short, and never waits on the outside world inside one (`checkpoint`)."""
    return _in_job.get()


def checkpoint() -> None:
    """Commit the job's work so far: before it waits on something outside the database (an
    SMTP server), so that no lock is held meanwhile, and what it claimed is seen by others."""
    from crm.extensions import db

    db.session.commit()


def _recorded(fn, name, describe, task, args, kwargs):
    token = _in_job.set(True)
    try:
        return _edge(fn, name, describe, task, args, kwargs)
    finally:
        _in_job.reset(token)


def _edge(fn, name, describe, task, args, kwargs):
    """The jobs' transaction edge, as crm/transaction.py is the requests': the record of the
    run, the job's work and the record of its outcome, each committed on its own."""
    from crm.extensions import db
    from crm.jobs import runs

    attempt = 1 + (task.default_retries - task.retries if task is not None else 0)
    run_id = runs.start(
        task_id=task.id if task is not None else None,
        name=name,
        summary=describe(*args, **kwargs),
        attempt=attempt,
    )
    db.session.commit()
    try:
        result = fn(*args, **kwargs)
        db.session.commit()
    except Exception as exc:
        db.session.rollback()
        runs.fail(run_id, exc, will_retry=task is not None and task.retries > 0)
        db.session.commit()
        raise
    runs.succeed(run_id)
    db.session.commit()
    return result


def job(*, name: str | None = None, describe: Callable[..., str] = lambda *a, **k: _summary(a, k)):
    """Make `fn` a job: `fn(…)` enqueues it (after the caller's commit, see mail.py's use of
    `on_commit`), `fn.call_local(…)` runs it here and now without the queue."""

    def decorator(fn: Callable) -> Callable:
        task_name = name or fn.__name__
        return huey.task(
            retries=RETRIES,
            retry_delay=RETRY_DELAY_SECONDS,
            retry_backoff=RETRY_BACKOFF,
            context=True,
            name=task_name,
        )(_wrap(fn, task_name, describe))

    return decorator


def periodic_job(when: Callable[[datetime], bool], *, name: str | None = None):
    """Make `fn` (no arguments) a job the worker's scheduler enqueues whenever `when(utc_now)`
    says so (checked once a minute); retried like any job."""

    def decorator(fn: Callable) -> Callable:
        task_name = name or fn.__name__
        return huey.periodic_task(
            when,
            retries=RETRIES,
            retry_delay=RETRY_DELAY_SECONDS,
            retry_backoff=RETRY_BACKOFF,
            context=True,
            name=task_name,
        )(_wrap(fn, task_name, lambda: ""))

    return decorator


def run_worker(workers: int, periodic: bool = True) -> None:
    """Run huey's consumer here until SIGINT (finishes the running jobs) or SIGTERM (stops
    them; they are run again at the next start only if they were retried)."""
    if huey.immediate:
        raise RuntimeError("the queue is in immediate mode: there is nothing for a worker to do")
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    log.info("job queue: %s", queue_description(current_app.config))
    consumer = huey.create_consumer(workers=workers, worker_type="thread", periodic=periodic)
    consumer.run()
