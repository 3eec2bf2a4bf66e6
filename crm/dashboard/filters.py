"""The project list's filter this package contributes: `?decision=1`, the projects whose
evaluation waits for the leaders' decision (the dashboard's 评估待决策 figure links to it).

It is defined here, where the evaluation package may be read, and handed to the list by the
app's wiring (`register_list_filters`, called by create_app): crm/projects never imports
crm/evaluation."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Flask

from crm.evaluation.models import Evaluation, EvaluationState
from crm.projects.filters import ListFilter, add_list_filters
from crm.projects.models import Project


def _awaiting_decision() -> sa.ColumnElement[bool]:
    return Project.id.in_(
        sa.select(Evaluation.project_id).where(Evaluation.state == EvaluationState.SUBMITTED)
    )


AWAITING_DECISION = ListFilter("decision", "评估待决策", _awaiting_decision)


def register_list_filters(app: Flask) -> None:
    add_list_filters(app, AWAITING_DECISION)
