"""The dashboard page (统计): the landing page of leaders and task forces; officers see their
载体's at /dashboard."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request
from flask_login import current_user, login_required

from crm.core import local_today, parse_int
from crm.dashboard.services import build_dashboard, parse_period

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")

YEARS_SHOWN = 6


@bp.route("/")
@login_required
def index():
    today = local_today()
    years = list(range(today.year, today.year - YEARS_SHOWN, -1))
    year_arg = request.args.get("year", "")
    year = parse_int(year_arg) if parse_int(year_arg) in years else today.year
    start, end = parse_period(
        request.args.get("from", "")[:10], request.args.get("to", "")[:10], today
    )
    dashboard = build_dashboard(
        current_user,
        today,
        current_app.config["STALE_AFTER_DAYS"],
        year,
        start,
        end,
        cache_seconds=current_app.config["DASHBOARD_CACHE_SECONDS"],
    )
    return render_template("dashboard/index.html", d=dashboard, years=years)
