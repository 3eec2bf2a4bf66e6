"""The daily digest (每日待办摘要): at 08:00 Asia/Shanghai, one mail to each active user with an
address, listing what is due for them today and what is overdue; nothing to a user with
nothing due.

`due_items(user, day)` is the one answer to "what is due for this user on this day": the
digest reads it, and whatever else comes due (tasks) is added there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from flask import current_app

from crm.auth.models import User
from crm.core import local_today
from crm.extensions import db
from crm.jobs.mail import MAIL_FOOTER, mail_enabled, queue_mail
from crm.jobs.queue import local_crontab, periodic_job
from crm.notifications.services import app_path
from crm.tasks.services import tasks_due_by

DIGEST_MAX_ITEMS = 50  # a longer list ends with "另有 N 项"; the home page has them all


@dataclass(frozen=True)
class DueItem:
    """Something a user must do by `due`: what it is, on which project, and where it is done."""

    kind: str  # the word shown before it: 下一步, 任务…
    title: str
    project: str
    due: date
    path: str  # the app's page for it, e.g. /projects/12

    def overdue_on(self, day: date) -> bool:
        return self.due < day


def _tasks(user: User, day: date) -> list[DueItem]:
    """The user's open tasks due by `day` — a project's 下一步 is its officer's task."""
    return [
        DueItem(
            kind=task.kind.label,
            title=task.title,
            project=task.project.name,
            due=task.due_on,
            path=app_path("tasks.detail", task_id=task.id),
        )
        for task in tasks_due_by(user, day, DIGEST_MAX_ITEMS + 1)
    ]


def due_items(user: User, day: date) -> list[DueItem]:
    """What `user` must do by `day` (today's and overdue), earliest first."""
    items = _tasks(user, day)
    return sorted(items, key=lambda item: item.due)


def _line(item: DueItem, day: date, base_url: str) -> str:
    when = (
        "今天到期"
        if item.due == day
        else f"已逾期 {(day - item.due).days} 天（期限 {item.due:%m月%d日}）"
    )
    link = f"\n    {base_url}{item.path}" if base_url else ""
    return f"· 【{item.project}】{item.kind}：{item.title}（{when}）{link}"


def digest_text(user: User, day: date, items: list[DueItem]) -> tuple[str, str]:
    """The digest's subject and body, in Chinese."""
    base_url = current_app.config["BASE_URL"]
    shown = items[:DIGEST_MAX_ITEMS]
    today = [i for i in shown if not i.overdue_on(day)]
    overdue = [i for i in shown if i.overdue_on(day)]
    counts = []
    if today:
        counts.append(f"今天到期 {len(today)} 项")
    if overdue:
        counts.append(f"已逾期 {len(overdue)} 项")
    subject = f"每日待办：{'，'.join(counts)}（{day:%Y年%m月%d日}）"
    parts = [f"{user.display_name}，您好：", ""]
    for title, group in (("今天到期", today), ("已逾期", overdue)):
        if group:
            parts += [f"{title}：", *(_line(i, day, base_url) for i in group), ""]
    if len(items) > DIGEST_MAX_ITEMS:
        parts += ["另有更多事项，请登录系统查看待办。", ""]
    parts.append(MAIL_FOOTER)
    return subject, "\n".join(parts)


def queue_digests(day: date) -> int:
    """Queue the digest of `day` for every active user with an address and something due
    (sent after the caller's commit, each under the key `digest:<user>:<day>`: once)."""
    users = db.session.scalars(
        sa.select(User).where(User.is_active.is_(True), User.email.is_not(None), User.email != "")
    )
    queued = 0
    for user in users:
        if items := due_items(user, day):
            subject, body = digest_text(user, day, items)
            queued += queue_mail(user, subject, body, key=f"digest:{user.id}:{day.isoformat()}")
    return queued


@periodic_job(local_crontab(hour="8", minute="0"))
def send_daily_digest() -> int:
    """08:00 Asia/Shanghai: the digest of the day (when mail is on)."""
    return queue_digests(local_today()) if mail_enabled() else 0
