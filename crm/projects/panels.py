"""Sections other features add to the project page, so this package never imports them.

A feature registers a function `(project, user) -> Panel | None`; the project page includes
each panel's template with its context, in registration order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from crm.auth.models import User
from crm.projects.models import Project


@dataclass
class Panel:
    template: str
    context: dict[str, Any] = field(default_factory=dict)


PanelFunction = Callable[[Project, User], Panel | None]
_panels: list[PanelFunction] = []


def register_panel(function: PanelFunction) -> PanelFunction:
    if function not in _panels:
        _panels.append(function)
    return function


def panels_for(project: Project, user: User) -> list[Panel]:
    return [panel for function in _panels if (panel := function(project, user)) is not None]
