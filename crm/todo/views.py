"""待办: the home page of every role (served at `/` through the `home` hook, crm/hooks.py)."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user
from sqlalchemy.exc import SQLAlchemyError

from crm.core import local_today
from crm.todo.services import home_note, todo_for, top_counts

# No routes of its own (待办 is served at `/`, crm/main): the top bar's counts on every page.
bp = Blueprint("todo", __name__)


@bp.app_context_processor
def top_bar():
    """The top bar's counts, asked only by pages that show the top bar (one query); None where
    they cannot be read (an error page after a failed query does not ask)."""

    def counts():
        if not current_user.is_authenticated:
            return None
        try:
            return top_counts(current_user)
        except SQLAlchemyError:
            return None

    return {"top_counts": counts}


def index():
    today = local_today()
    groups = todo_for(current_user, today)
    return render_template(
        "todo/index.html", groups=groups, today=today, note=home_note(current_user)
    )
