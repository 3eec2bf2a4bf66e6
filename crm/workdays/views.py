"""工作日历 (系统管理): the years the calendar library knows, the warning for a missing year,
and the admin's own days (list, add, delete after a confirmation). For admins only."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user

from crm.access import admin_required
from crm.core import local_today
from crm.extensions import db
from crm.forms import save_form
from crm.workdays import services
from crm.workdays.forms import CalendarDayForm, DeleteDayForm
from crm.workdays.models import CalendarDay

bp = Blueprint("workdays", __name__, url_prefix="/admin/workdays")


def _render_index(form: CalendarDayForm, status: int = 200):
    days = services.list_days()
    return render_template(
        "workdays/index.html",
        form=form,
        days=[(d, services.library_day(d.day)) for d in days],
        years=services.library_years(),
        missing=services.missing_years(local_today()),
        section="workdays",
    ), status


@bp.route("/", methods=["GET", "POST"])
@admin_required
def index():
    """The calendar page; its form enters one day."""
    form = CalendarDayForm()
    saved, entry = save_form(
        form,
        lambda: services.add_day(current_user, form.day.data, form.kind.data, form.name.data or ""),
    )
    if saved:
        flash(f"已录入 {entry.day.isoformat()}（{entry.kind.label}：{entry.name}）", "success")
        return redirect(url_for("workdays.index"))
    return _render_index(form, 400 if form.is_submitted() else 200)


@bp.route("/<int:day_id>/delete", methods=["GET", "POST"])
@admin_required
def delete(day_id: int):
    """Delete one of the admin's days, after a confirmation the server checks."""
    entry = db.get_or_404(CalendarDay, day_id)
    form = DeleteDayForm()
    label = f"{entry.day.isoformat()}（{entry.kind.label}：{entry.name}）"
    saved, _ = save_form(form, lambda: services.delete_day(current_user, entry))
    if saved:
        flash(f"已删除 {label}", "success")
        return redirect(url_for("workdays.index"))
    return render_template(
        "workdays/delete.html",
        form=form,
        entry=entry,
        library=services.library_day(entry.day),
        section="workdays",
    ), 400 if form.is_submitted() else 200
