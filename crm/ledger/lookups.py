"""Everything the rows of an upload refer to, loaded in a few queries for the whole file."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from decimal import InvalidOperation

import sqlalchemy as sa

from crm.access import project_scope
from crm.auth.models import Role, User
from crm.catalog.models import Carrier, Chain, Channel, Cluster
from crm.catalog.services import active_entries
from crm.companies.credit_code import normalize
from crm.companies.models import Company
from crm.extensions import db
from crm.ledger.cells import (
    cell_decimal,
    cell_text,
)
from crm.ledger.reading import RawRow
from crm.projects.models import (
    Project,
)
from crm.projects.registration import ProjectLookups


def chunks(items: list, size: int) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class FileLookups:
    """Everything the rows refer to, loaded in a few queries for the whole file."""

    def __init__(self, user: User, rows: list[RawRow]):
        self.user = user
        self._load_catalogues(user)
        self._load_companies(rows)
        self._load_projects(user, rows)

    def _load_catalogues(self, user: User) -> None:
        """The active 载体, clusters, chains, channels and officers, by what a row names."""
        self.carriers = {c.name: c for c in active_entries(Carrier)}
        self.clusters = {c.name: c for c in active_entries(Cluster)}
        self.channels = {c.name: c for c in active_entries(Channel)}
        self.chains = {
            (ch.cluster_id, ch.name): ch
            for ch in db.session.scalars(sa.select(Chain).where(Chain.is_active.is_(True)))
        }
        self.officers: dict[int, list[User]] = defaultdict(list)
        for officer in db.session.scalars(
            sa.select(User).where(User.role == Role.OFFICER, User.is_active.is_(True))
        ):
            self.officers[officer.carrier_id].append(officer)
        # The same, for the rules of a project's values (crm.projects.registration).
        self.project_lookups = ProjectLookups.preload(
            self.chains.values(),
            [officer for officers in self.officers.values() for officer in officers],
            [*self.carriers.values(), *([user.carrier] if user.carrier else [])],
        )

    def _load_companies(self, rows: list[RawRow]) -> None:
        """The registered companies the rows name, by credit code and by exact name."""
        codes = {normalize(cell_text(r.cells.get("credit_code"))) for r in rows} - {""}
        names = {cell_text(r.cells.get("company_name")) for r in rows} - {""}
        self.by_code: dict[str, Company] = {}
        for chunk in chunks(sorted(codes), 2000):
            for company in db.session.scalars(
                sa.select(Company).where(Company.credit_code.in_(chunk))
            ):
                self.by_code[company.credit_code] = company
        # Without a credit code, a company is found by its exact name (with or without a code
        # on record); a name several companies share needs the code.
        self.by_name: dict[str, list[Company]] = defaultdict(list)
        for chunk in chunks(sorted(names), 2000):
            for company in db.session.scalars(
                sa.select(Company)
                .where(Company.name.in_(chunk), Company.is_deleted.is_(False))
                .order_by(Company.id)
            ):
                self.by_name[company.name].append(company)

    def _load_projects(self, user: User, rows: list[RawRow]) -> None:
        """The projects `user` may read that the rows name: by 项目编号, and by company and
        project name."""
        ids = set()
        for r in rows:
            try:
                ids.add(int(cell_decimal(r.cells["id"], "1")))
            except (KeyError, ValueError, InvalidOperation):
                continue
        self.by_id: dict[int, Project] = {}
        for chunk in chunks(sorted(i for i in ids if 0 < i < 2**31), 2000):
            for project in db.session.scalars(
                sa.select(Project).where(Project.id.in_(chunk), project_scope(user))
            ):
                self.by_id[project.id] = project
        company_ids = {c.id for c in self.by_code.values()} | {
            c.id for cs in self.by_name.values() for c in cs
        }
        self.by_company: dict[tuple[int, str], list[Project]] = defaultdict(list)
        for chunk in chunks(sorted(company_ids), 2000):
            for project in db.session.scalars(
                sa.select(Project).where(Project.company_id.in_(chunk), project_scope(user))
            ):
                self.by_company[project.company_id, project.name].append(project)
