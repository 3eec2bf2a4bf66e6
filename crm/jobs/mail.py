"""E-mail (邮件): queued after the request's commit, sent by a job, each mail once.

Off unless CRM_SMTP_HOST is set (config.py). `queue_mail` never talks to the mail server: it
registers the job's enqueueing with `crm.transaction.on_commit`, so a request that is rolled
back sends nothing and no page waits on SMTP. The job (`send_mail`) sends to the address the
user has when it runs, under the mail's key, claimed in SentMail before the mail goes out: a
second run of the same key, retried or simultaneous, finds it and sends nothing.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Iterable
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import TYPE_CHECKING

import sqlalchemy as sa
from flask import current_app

from crm import transaction
from crm.auth.models import User
from crm.core import utcnow
from crm.extensions import db
from crm.jobs.models import MAIL_KEY_MAX, MAIL_SUBJECT_MAX, SentMail
from crm.jobs.queue import checkpoint, job

if TYPE_CHECKING:
    from crm.notifications.models import Notification

SECURITY_PORTS = {"none": 25, "starttls": 587, "ssl": 465}
MAIL_FOOTER = "—— 双招双引项目管理系统（自动发送，请勿回复）"


def check_settings(config) -> None:
    """Refuse to start with a CRM_SMTP_SECURITY the mail job would not understand."""
    if config["SMTP_SECURITY"] not in SECURITY_PORTS:
        choices = "、".join(SECURITY_PORTS)
        raise RuntimeError(f"CRM_SMTP_SECURITY must be one of {choices}")


def mail_enabled() -> bool:
    return bool(current_app.config["SMTP_HOST"])


def queue_mail(user: User, subject: str, body: str, key: str) -> bool:
    """Send `user` a mail once its caller's transaction commits (never if it is rolled back).
    `key` names the mail (e.g. `digest:<user>:<date>`): one key is sent at most once. False
    when nothing is queued: mail is off, or the user is disabled or has no address."""
    if not mail_enabled() or not user.is_active or not user.email:
        return False
    if len(key) > MAIL_KEY_MAX:
        raise ValueError(f"mail key longer than {MAIL_KEY_MAX} characters: {key!r}")
    user_id = user.id
    transaction.on_commit(lambda: send_mail(user_id, subject, body, key))
    return True


def mail_notifications(notifications: Iterable[Notification]) -> int:
    """E-mail copies of in-app notifications (通知), for `notify` to call once it has flushed
    them: each to its recipient, after the commit, under the key `notification:<id>`; with a
    link when CRM_BASE_URL is set. Returns how many were queued (none when mail is off)."""
    if not mail_enabled():
        return 0
    base_url = current_app.config["BASE_URL"]
    queued = 0
    for notification in notifications:
        user = notification.user
        link = f"\n\n查看：{base_url}{notification.url}" if base_url and notification.url else ""
        body = f"{user.display_name}，您好：\n\n{notification.text}{link}\n\n{MAIL_FOOTER}"
        subject = f"【通知】{notification.kind.label}"
        queued += queue_mail(user, subject, body, key=f"notification:{notification.id}")
    return queued


def build_message(to: str, subject: str, body: str) -> EmailMessage:
    """A plain-text mail in UTF-8; the Chinese subject is encoded by the e-mail package."""
    message = EmailMessage()
    message["From"] = current_app.config["MAIL_FROM"]
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=_sender_domain())
    message.set_content(body)
    return message


def _sender_domain() -> str:
    from email.headerregistry import Address
    from email.policy import default

    header = default.header_factory("From", current_app.config["MAIL_FROM"])
    addresses: tuple[Address, ...] = header.addresses
    return addresses[0].domain if addresses and addresses[0].domain else "localhost"


def _deliver(message: EmailMessage) -> None:
    """Hand `message` to the SMTP server of the settings; any failure raises (and the job is
    retried)."""
    config = current_app.config
    security = config["SMTP_SECURITY"]
    host, port = config["SMTP_HOST"], config["SMTP_PORT"] or SECURITY_PORTS[security]
    timeout = config["SMTP_TIMEOUT_SECONDS"]
    context = ssl.create_default_context()
    if security == "ssl":
        server = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
    else:
        server = smtplib.SMTP(host, port, timeout=timeout)
    with server:
        if security == "starttls":
            server.starttls(context=context)
        if config["SMTP_USER"]:
            server.login(config["SMTP_USER"], config["SMTP_PASSWORD"])
        server.send_message(message)


def _describe(user_id: int, subject: str, body: str, key: str) -> str:
    return f"{key} → 用户 #{user_id}"


@job(describe=_describe)
def send_mail(user_id: int, subject: str, body: str, key: str) -> bool:
    """Send one mail, unless its key was claimed already or the user can no longer receive it
    (disabled, address removed). True when it went out.

    The key is claimed (a SentMail row, committed) before the mail goes out, so a simultaneous
    run of the same key finds it and sends nothing, and no lock is held while the SMTP server
    answers; a failed delivery gives the key up again, for the retry. A worker killed in the
    middle of a delivery leaves the key claimed: that mail is not sent twice, nor retried."""
    if db.session.scalar(sa.select(SentMail.id).where(SentMail.key == key)) is not None:
        return False
    user = db.session.get(User, user_id)
    if user is None or not user.is_active or not user.email:
        return False
    subject = subject[:MAIL_SUBJECT_MAX]
    claim = SentMail(key=key, user_id=user.id, address=user.email, subject=subject)
    try:
        with db.session.begin_nested():
            db.session.add(claim)
    except sa.exc.IntegrityError:  # claimed by a simultaneous run meanwhile
        return False
    checkpoint()
    try:
        _deliver(build_message(claim.address, subject, body))
    except Exception:
        db.session.delete(claim)
        checkpoint()
        raise
    claim.sent_at = utcnow()
    return True
