"""The home page (工作台) and the health check.

Leaders and task forces land on the dashboard (统计); officers and admins keep their work list
(officers find their 载体's dashboard under 统计)."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, current_app, jsonify, render_template, send_from_directory
from flask_login import current_user, login_required

from crm.access import can_read_project
from crm.core import local_today
from crm.extensions import db
from crm.hooks import installed
from crm.projects.conflicts import recent_handovers
from crm.projects.worklist import my_work

bp = Blueprint("main", __name__)


@bp.route("/")
@login_required
def home():
    # Another feature may serve the home page of some roles: the `homes` hook (crm/hooks.py).
    if (view := installed().homes.get(current_user.role)) is not None:
        return view()
    today = local_today()
    work = my_work(current_user, today, current_app.config["STALE_AFTER_DAYS"])
    handovers = [
        (handover, project, can_read_project(current_user, project))
        for handover, project in recent_handovers(current_user, 5)
    ]
    return render_template("main/home.html", work=work, today=today, handovers=handovers)


@bp.route("/healthz")
def healthz():
    try:
        db.session.execute(sa.text("SELECT 1"))
        database = True
    except sa.exc.SQLAlchemyError:
        database = False  # rolled back when the request ends (crm/transaction.py)
    body = {"status": "ok" if database else "degraded", "database": database}
    # A load balancer or monitor reads the status code: 503 takes the instance out of service.
    return jsonify(body), 200 if database else 503


@bp.route("/favicon.ico")
def favicon():
    """Browsers ask for /favicon.ico on every site: the app's icon (crm/static/favicon.ico),
    kept by the browser for a day, instead of a 404 in every page's log."""
    return send_from_directory(
        current_app.static_folder, "favicon.ico", mimetype="image/vnd.microsoft.icon", max_age=86400
    )
