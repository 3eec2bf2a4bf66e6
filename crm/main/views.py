"""The home page and the health check.

Every role lands on 待办 (crm/todo/), served through the `home` hook (crm/hooks.py); the
dashboard is under 统计."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, current_app, jsonify, send_from_directory
from flask_login import login_required

from crm.extensions import db
from crm.hooks import installed

bp = Blueprint("main", __name__)


@bp.route("/")
@login_required
def home():
    return installed().home()


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
