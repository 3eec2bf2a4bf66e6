"""通知: the list, opening one (read, then its page), marking all read (the top bar's count:
crm/todo/views.py)."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from crm import transaction
from crm.access import can_read_project
from crm.core import parse_int
from crm.extensions import db
from crm.notifications import services

bp = Blueprint("notifications", __name__, url_prefix="/notifications")


@bp.route("/")
@login_required
def index():
    unread_only = request.args.get("unread") == "1"
    page = db.paginate(
        services.notifications_query(current_user, unread_only),
        page=parse_int(request.args.get("page")) or 1,
        per_page=current_app.config["PAGE_SIZE"],
        error_out=False,
    )
    return render_template("notifications/index.html", page=page, unread_only=unread_only)


@bp.route("/<int:notification_id>/open", methods=["POST"])
@login_required
def open_(notification_id: int):
    """Read it, then go where it points (back to the list, for a project the user may no
    longer read)."""
    notification = services.mark_read(current_user, notification_id)
    if notification is None:
        abort(404)
    transaction.keep()
    project = notification.project
    if project is not None and not can_read_project(current_user, project):
        # Deleted since, or handed over to another 载体: the page would answer 404.
        flash("该项目已删除或已不在您的范围内", "warning")
        return redirect(url_for("notifications.index"))
    return redirect(notification.url)


@bp.route("/read-all", methods=["POST"])
@login_required
def read_all():
    marked = services.mark_all_read(current_user)
    transaction.keep()
    flash(f"已将 {marked} 条通知标为已读" if marked else "没有未读通知", "success")
    return redirect(url_for("notifications.index"))
