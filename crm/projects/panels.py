"""Sections other features add to the project page, so this package never imports them.

A section is a template and its context (`Panel`). Which features provide one, and in what
order the page shows them, is the `project_panels` hook of crm/hooks.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from crm.auth.models import User
from crm.hooks import installed
from crm.projects.models import Project


@dataclass
class Panel:
    template: str
    context: dict[str, Any] = field(default_factory=dict)


def panels_for(project: Project, user: User) -> list[Panel]:
    functions = installed().project_panels
    return [panel for function in functions if (panel := function(project, user)) is not None]
