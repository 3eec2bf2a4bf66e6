"""The home page (工作台) and the health check."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, current_app, jsonify, render_template
from flask_login import current_user, login_required

from crm.core import local_today
from crm.extensions import db
from crm.projects.services import my_work

bp = Blueprint("main", __name__)


@bp.route("/")
@login_required
def home():
    today = local_today()
    work = my_work(current_user, today, current_app.config["STALE_AFTER_DAYS"])
    return render_template("main/home.html", work=work, today=today)


@bp.route("/healthz")
def healthz():
    try:
        db.session.execute(sa.text("SELECT 1"))
        database = True
    except sa.exc.SQLAlchemyError:
        db.session.rollback()
        database = False
    body = {"status": "ok" if database else "degraded", "database": database}
    return jsonify(body)
