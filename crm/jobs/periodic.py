"""The periodic jobs the worker's scheduler runs (times in Asia/Shanghai): the daily digest
(digest.py) and the clean-ups. Each calls the service that does the work, as the command line
does (`crm clean-files`), and is safe to run again.

Reminders of tasks due tomorrow (a project's 下一步 is its officer's task) are notifications
(通知, and their e-mail copies), sent at 08:00 with the digest.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from flask import current_app

from crm.core import local_today
from crm.files.services import clean_store
from crm.jobs import digest, runs
from crm.jobs.queue import local_crontab, periodic_job
from crm.tasks import services as tasks

__all__ = ["clean_files", "digest", "prune_job_runs", "send_due_reminders"]

CLEAN_FILES_GRACE = timedelta(hours=24)  # as `crm clean-files`: uploads still in progress stay


@periodic_job(local_crontab(hour="8", minute="0"))
def send_due_reminders() -> int:
    """08:00: each open task due tomorrow, told to its assignee once."""
    return tasks.send_due_reminders(local_today())


@periodic_job(local_crontab(hour="3", minute="30"))
def clean_files() -> int:
    """03:30: the upload folder's files no record owns (crm/files/services.py `clean_store`)."""
    report = clean_store(Path(current_app.config["UPLOAD_FOLDER"]), CLEAN_FILES_GRACE)
    return len(report.removed)


@periodic_job(local_crontab(hour="3", minute="45"))
def prune_job_runs() -> dict[str, int]:
    """03:45: runs and sent-mail records older than JOB_RUNS_KEEP_DAYS."""
    return runs.prune(current_app.config["JOB_RUNS_KEEP_DAYS"])
