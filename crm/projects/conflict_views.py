"""The cross-载体 conflicts page (跨载体冲突): the list, and settling one with a note."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user, login_required

from crm.access import can_resolve_conflict, load_conflict, readable_project_ids
from crm.decisions import AlreadyDecided
from crm.extensions import db
from crm.forms import save_form
from crm.projects import conflicts as conflict_service
from crm.projects.forms import ResolveConflictForm

bp = Blueprint("conflicts", __name__, url_prefix="/conflicts")


@bp.route("/")
@login_required
def conflicts():
    return _render_conflicts()


def _render_conflicts(status: int = 200, failed: tuple[int, ResolveConflictForm] | None = None):
    open_conflicts = db.session.scalars(conflict_service.conflicts_query(current_user)).all()
    resolved = db.session.scalars(
        conflict_service.conflicts_query(current_user, open_only=False).limit(20)
    ).all()
    forms = {
        c.id: ResolveConflictForm(formdata=None, prefix=f"c{c.id}")
        for c in open_conflicts
        if can_resolve_conflict(current_user, c)
    }
    if failed is not None:
        forms[failed[0]] = failed[1]
    return render_template(
        "projects/conflicts.html",
        open_conflicts=open_conflicts,
        resolved=resolved,
        forms=forms,
        readable=readable_project_ids(
            current_user,
            {
                pid
                for c in (*open_conflicts, *resolved)
                for pid in (c.project_id, c.other_project_id)
            },
        ),
    ), status


@bp.route("/<int:conflict_id>/resolve", methods=["POST"])
@login_required
def resolve(conflict_id: int):
    conflict = load_conflict(current_user, conflict_id)
    form = ResolveConflictForm(prefix=f"c{conflict.id}")
    saved, outcome = save_form(
        form,
        lambda: conflict_service.resolve_conflict(current_user, conflict, form.note.data or ""),
        not_at_fields=AlreadyDecided,
    )
    if saved:
        flash("已标记为已处理", "success")
        return redirect(url_for("conflicts.conflicts"))
    if isinstance(outcome, AlreadyDecided):  # settled by someone else first
        flash(outcome.message, "error")
        return _render_conflicts(409)
    return _render_conflicts(400, (conflict.id, form))
