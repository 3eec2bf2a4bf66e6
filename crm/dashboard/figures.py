"""A figure: a number of projects (and a sum over them) with the `ProjectFilter` that lists
them, and the aggregator that computes many figures in a fixed number of queries, whatever
the number of projects (conditional aggregates, `SUM(CASE WHEN <filter> ...)`)."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from functools import cached_property
from typing import Any

import sqlalchemy as sa
from flask import url_for

from crm.access import project_scope
from crm.auth.models import User
from crm.extensions import db
from crm.projects.filters import ProjectFilter, date_between, filter_clauses, moment_between
from crm.projects.models import FundsRecord, Project, StageChange


@dataclass
class Figure:
    """A number of projects (and a sum over them, 万元), with the filter that lists them."""

    count: int
    filter: ProjectFilter
    amount: Decimal | None = None

    @property
    def args(self) -> dict[str, Any]:
        return self.filter.to_args()

    @cached_property
    def href(self) -> str:
        """The link to the list of its projects: built once, the figure may be kept (a page
        holds some 500 of them)."""
        return url_for("projects.index", **self.args)


@dataclass(frozen=True)
class FundsReceived:
    """A measure: the funds (实际到位资金) a project received between `start` and `end`."""

    start: date | None = None
    end: date | None = None

    def _conditions(self) -> list[sa.ColumnElement]:
        return date_between(FundsRecord.received_on, self.start, self.end)

    def per_project(self) -> sa.Subquery:
        """(project_id, amount) for every project that received funds: summed once."""
        return (
            sa.select(FundsRecord.project_id, sa.func.sum(FundsRecord.amount).label("amount"))
            .where(*self._conditions())
            .group_by(FundsRecord.project_id)
            .subquery()
        )

    def correlated(self) -> sa.ColumnElement:
        """The amount of the project of the enclosing query."""
        return (
            sa.select(sa.func.sum(FundsRecord.amount))
            .where(FundsRecord.project_id == Project.id, *self._conditions())
            .scalar_subquery()
        )


@dataclass(eq=False)
class Spec:
    """One figure to compute: its filter, and what to sum over its projects (or nothing)."""

    key: Hashable
    filter: ProjectFilter
    measure: sa.ColumnElement | FundsReceived | None = None


def _amount(value) -> Decimal:
    return Decimal(str(value or 0)).quantize(Decimal("0.01"))


def _on_other_tables(f: ProjectFilter) -> bool:
    """The filter asks for rows of another table (a move, funds, a conflict, an evaluation)."""
    return bool(f.moved_into or f.verification or f.funded or f.conflict or f.extra)


def _without_moves(f: ProjectFilter) -> ProjectFilter:
    """The filter's conditions but those on the moves (read from the moves themselves)."""
    return replace(f, moved_into=(), verification=None, moved_from=None, moved_to=None)


class Aggregator:
    """Computes specs in a fixed number of queries (per grouping), whatever the data size.

    Specs on the project's own columns are conditional aggregates (`SUM(CASE WHEN …)`) in one
    scan of the projects. A spec that asks for rows of another table (moved into 签约 and
    verified this year, funds received, …) matches few projects: it is a query of its own with
    its conditions in the WHERE, so the database starts from those few (the `IN` list) instead
    of testing every project against it (a second at 100,000 projects)."""

    def __init__(self, user: User, today: date, stale_days: int):
        self.user, self.today, self.stale_days = user, today, stale_days

    def _conditions(self, spec: Spec) -> list[sa.ColumnElement]:
        return filter_clauses(spec.filter, self.today, self.stale_days)

    def _columns(self, specs: list[Spec]) -> list[sa.ColumnElement]:
        columns = []
        for spec in specs:
            condition = sa.and_(sa.true(), *self._conditions(spec))
            columns.append(sa.func.sum(sa.case((condition, 1), else_=0)))
            measure = spec.measure
            if isinstance(measure, FundsReceived):
                measure = measure.correlated()
            if measure is not None:
                columns.append(sa.func.sum(sa.case((condition, measure))))
        return columns

    def _own_query(self, spec: Spec, *group: sa.ColumnElement) -> sa.Select:
        """A spec on another table, in a query of its own: its conditions in the WHERE; funds
        summed per project once and joined, not looked up project by project."""
        query = sa.select(*group, sa.func.count()).select_from(Project)
        if isinstance(spec.measure, FundsReceived):
            funds = spec.measure.per_project()
            query = query.outerjoin(funds, funds.c.project_id == Project.id)
            query = query.add_columns(sa.func.sum(funds.c.amount))
        elif spec.measure is not None:
            query = query.add_columns(sa.func.sum(spec.measure))
        query = query.where(project_scope(self.user), *self._conditions(spec))
        return query.group_by(*group) if group else query

    def _figures(self, specs: list[Spec], values, extra: dict[str, Any]) -> dict[Hashable, Figure]:
        figures, values = {}, list(values)
        for spec in specs:
            count = int(values.pop(0) or 0)
            amount = _amount(values.pop(0)) if spec.measure is not None else None
            figures[spec.key] = Figure(count, replace(spec.filter, **extra), amount)
        return figures

    def totals(self, specs: list[Spec]) -> dict[Hashable, Figure]:
        scan = [spec for spec in specs if not _on_other_tables(spec.filter)]
        figures: dict[Hashable, Figure] = {}
        if scan:
            row = db.session.execute(
                sa.select(*self._columns(scan)).select_from(Project).where(project_scope(self.user))
            ).one()
            figures.update(self._figures(scan, row, {}))
        for spec in specs:
            if _on_other_tables(spec.filter):
                row = db.session.execute(self._own_query(spec)).one()
                figures.update(self._figures([spec], row, {}))
        return {spec.key: figures[spec.key] for spec in specs}

    def grouped(self, specs: list[Spec], key: str) -> dict[Any, dict[Hashable, Figure]]:
        """Figures per value of the project's column `key` (carrier_id, officer_id, …): grouped
        on the projects table alone, the names are read by the caller."""
        column = getattr(Project, key)
        scan = [spec for spec in specs if not _on_other_tables(spec.filter)]
        groups: dict[Any, dict[Hashable, Figure]] = {}
        if scan:
            for row in db.session.execute(
                sa.select(column, *self._columns(scan))
                .where(project_scope(self.user))
                .group_by(column)
            ):
                groups[row[0]] = self._figures(scan, row[1:], {key: row[0]})
        for spec in specs:
            if not _on_other_tables(spec.filter):
                continue
            for row in db.session.execute(self._own_query(spec, column)):
                groups.setdefault(row[0], {}).update(self._figures([spec], row[1:], {key: row[0]}))
        for value, figures in groups.items():
            for spec in specs:
                if spec.key not in figures:
                    zero = [0, None] if spec.measure is not None else [0]
                    figures.update(self._figures([spec], zero, {key: value}))
        return groups

    def by_officer_credited(self, specs: list[Spec]) -> dict[Any, dict[Hashable, Figure]]:
        """`grouped` by officer, except that a move into a stage counts for the officer in
        charge when it was made (`StageChange.officer_id`), wherever the project went since
        (流转): a 签约 stays with the officer who won it. Its figure lists those projects
        (`moved_officer_id`)."""
        credited = [s for s in specs if len(s.filter.moved_into) == 1]
        groups = self.grouped([s for s in specs if s not in credited], "officer_id")
        for spec in credited:
            for row in db.session.execute(self._credited_query(spec)):
                figures = self._figures([spec], row[1:], {"moved_officer_id": row[0]})
                groups.setdefault(row[0], {}).update(figures)
        for value, figures in groups.items():  # an officer with no project now, say
            for spec in specs:
                if spec.key not in figures:
                    extra = {"moved_officer_id" if spec in credited else "officer_id": value}
                    zero = [0, None] if spec.measure is not None else [0]
                    figures.update(self._figures([spec], zero, extra))
        return groups

    def _credited_query(self, spec: Spec) -> sa.Select:
        """Per officer credited with the spec's move: its projects (each once per officer,
        whatever the number of such moves) and the sum of the measure over them."""
        f = spec.filter
        moves = (
            sa.select(StageChange.project_id, StageChange.officer_id)
            .where(
                StageChange.to_stage == f.moved_into[0],
                StageChange.officer_id.is_not(None),
                *([StageChange.verification == f.verification] if f.verification else []),
                *moment_between(StageChange.changed_at, f.moved_from, f.moved_to),
            )
            .distinct()
            .subquery()
        )
        measure = spec.measure
        if isinstance(measure, FundsReceived):
            measure = measure.correlated()
        columns = [sa.func.count()] + ([sa.func.sum(measure)] if measure is not None else [])
        return (
            sa.select(moves.c.officer_id, *columns)
            .select_from(Project)
            .join(moves, moves.c.project_id == Project.id)
            .where(
                project_scope(self.user),
                *filter_clauses(_without_moves(f), self.today, self.stale_days),
            )
            .group_by(moves.c.officer_id)
        )
