"""待办: the home page of every role (served at `/` through the `home` hook, crm/hooks.py)."""

from __future__ import annotations

from flask import render_template
from flask_login import current_user

from crm.core import local_today
from crm.todo.services import todo_for


def index():
    today = local_today()
    groups = todo_for(current_user, today)
    return render_template("todo/index.html", groups=groups, today=today)
