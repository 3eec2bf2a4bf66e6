"""The project list: its filter choices, its query and its pages.

The list page is the busiest page of the app: its statements are kept (`crm.speedups.kept`)
and a page is read as plain rows (`_page_rows`), not ORM objects."""

from __future__ import annotations

import collections
from dataclasses import dataclass
from datetime import date
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from crm.access import own_carrier_id, project_scope, scope_key
from crm.auth.models import Role, User
from crm.catalog.models import Carrier, Channel, Cluster
from crm.companies.models import Company
from crm.extensions import db
from crm.pagination import IdFirstPagination
from crm.projects.filters import SORTS, ProjectFilter, filter_clauses, stale_clause
from crm.projects.models import Handover, HandoverState, Project
from crm.speedups import kept, plain_rows


class Choice(NamedTuple):
    id: int
    name: str


@dataclass(frozen=True)
class ListChoices:
    """The project list's filter choices: active 载体, clusters and channels, and officers."""

    carriers: list[Choice]
    clusters: list[Choice]
    channels: list[Choice]
    officers: list[Choice]


def _officer_conditions(user: User) -> list[sa.ColumnElement[bool]]:
    """Active officers `user` may assign a project to, or filter the list by: an officer those
    of its own 载体, a task force those of the 载体 its projects are in, others all."""
    conditions = [User.role == Role.OFFICER, User.is_active.is_(True)]
    if (carrier_id := own_carrier_id(user)) is not None:
        conditions.append(User.carrier_id == carrier_id)
    elif user.role is Role.TASKFORCE:
        conditions.append(
            User.carrier_id.in_(sa.select(Project.carrier_id).where(project_scope(user)).distinct())
        )
    return conditions


def assignable_officers(user: User) -> list[sa.Row]:
    """(id, display_name, carrier_name) of the officers `user` may assign a project to."""
    return list(
        db.session.execute(
            sa.select(User.id, User.display_name, Carrier.name.label("carrier_name"))
            .join(Carrier, Carrier.id == User.carrier_id)
            .where(*_officer_conditions(user))
            .order_by(User.display_name, User.id)
        )
    )


def list_choices(user: User) -> ListChoices:
    """The list's filter choices in one statement (four were a tenth of the list's time):
    catalogue entries in their order (排序, then as entered), officers by name."""
    kinds = (Carrier, Cluster, Channel)

    def build() -> sa.CompoundSelect:
        def entries(kind: int, model) -> sa.Select:
            return sa.select(
                sa.literal_column(str(kind)).label("kind"),
                model.sort_order.label("rank"),
                model.id.label("entered"),
                model.name.label("name"),
                model.id.label("id"),
            ).where(model.is_active.is_(True))

        zero = sa.literal_column("0")
        officers = sa.select(
            sa.literal_column(str(len(kinds))), zero, zero, User.display_name, User.id
        ).where(*_officer_conditions(user))
        statement = sa.union_all(*(entries(i, m) for i, m in enumerate(kinds)), officers)
        return statement.order_by(
            *(sa.column(c) for c in ("kind", "rank", "entered", "name", "id"))
        )

    grouped: list[list[Choice]] = [[] for _ in range(len(kinds) + 1)]
    for kind, _, _, name, id_ in db.session.execute(kept(("list_choices", scope_key(user)), build)):
        grouped[kind].append(Choice(id_, name))
    return ListChoices(*grouped)


# What the list shows of each project besides its own columns.
LIST_OPTIONS = (
    joinedload(Project.company),
    joinedload(Project.carrier),
    joinedload(Project.cluster),
    joinedload(Project.officer),
)


def list_select(user: User, f: ProjectFilter, today: date, stale_days: int) -> sa.Select:
    query = sa.select(Project).where(project_scope(user), *filter_clauses(f, today, stale_days))
    order = SORTS.get(f.sort, SORTS["updated"])[1]
    return query.order_by(order, Project.id.desc())


def project_list_query(user: User, f: ProjectFilter, today: date, stale_days: int) -> sa.Select:
    """The projects of the list, with what it shows (the export reads them all)."""
    return list_select(user, f, today, stale_days).options(*LIST_OPTIONS)


def project_page(
    user: User, f: ProjectFilter, today: date, stale_days: int, page: int, per_page: int
) -> IdFirstPagination:
    """One page of the list, as rows of what it shows (`_page_rows`). A text search matches
    inside names, which no ordered index can serve: its page and total come from one scan of
    the search index. The statements are kept for users of the same scope asking the same
    filter on the same day (the list's statements depend on nothing else)."""
    return IdFirstPagination(
        select=lambda: list_select(user, f, today, stale_days),
        key=("projects", scope_key(user), f, today, stale_days),
        load=lambda ids: _page_rows(ids, today, stale_days),
        one_pass=bool(f.q),
        page=page,
        per_page=per_page,
        error_out=False,
    )


def _page_rows(ids: list[int], today: date, stale_days: int) -> list[tuple]:
    """What the list shows of these projects, as named tuples: a list only reads, and building
    ORM objects for 50 projects and their relations was half the cost of the page (a tuple's
    fields are also read faster by the template than a result row's)."""
    select, row = kept(
        ("page_rows", today, stale_days), lambda: _page_rows_select(today, stale_days)
    )
    return plain_rows(select, {"ids": ids}, row)


def _page_rows_select(today: date, stale_days: int) -> tuple[sa.Select, type]:
    """`_page_rows`' statement (kept: built once a day) and the named tuple of its rows."""
    select = (
        sa.select(
            Project.id,
            Project.name,
            Project.is_key,
            Project.stage,
            Project.status,
            Project.total_investment,
            Project.next_action_due,
            Project.updated_at,
            Company.name.label("company_name"),
            Carrier.name.label("carrier_name"),
            Cluster.name.label("cluster_name"),
            User.display_name.label("officer_name"),
            stale_clause(today, stale_days).label("is_stale"),
            # 流转中: offered to another 载体 and waiting (the partial unique index, per row).
            sa.exists()
            .where(Handover.project_id == Project.id, Handover.state == HandoverState.PENDING)
            .label("in_handover"),
        )
        .join(Company, Company.id == Project.company_id)
        .join(Carrier, Carrier.id == Project.carrier_id)
        .join(Cluster, Cluster.id == Project.cluster_id)
        .outerjoin(User, User.id == Project.officer_id)
        .where(Project.id.in_(sa.bindparam("ids", expanding=True)))
    )
    return select, collections.namedtuple("ListRow", select.selected_columns.keys())
