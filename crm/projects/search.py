"""Text search over projects by the project's and its company's names.

Both names, normalized (NFKC, so full-width letters and digits match half-width ones, and case
folded), are kept in one column, `projects.search_text`: a search reads that column of one table
instead of joining every project to its company (a fifth of a second at 100,000 projects). A
search is a substring match, so two-character Chinese words, the usual query, find what they
should. The column is kept here, on every flush of the ORM; the bulk writers (the ledger import,
the generator) call `search_text` themselves.
"""

from __future__ import annotations

import unicodedata

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session

from crm.companies.models import Company
from crm.projects.models import Project

SEPARATOR = "\n"  # between the two names: a query never matches across it


def normalize(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def search_text(project_name: str, company_name: str) -> str:
    return normalize(project_name) + SEPARATOR + normalize(company_name)


def search_clause(query: str) -> sa.ColumnElement[bool]:
    """Projects whose name or company name contains `query`."""
    words = normalize(query).replace(SEPARATOR, " ").strip()
    return Project.search_text.contains(words, autoescape=True)


@event.listens_for(Session, "before_flush")
def _keep_search_text(session: Session, _context, _instances) -> None:
    renamed = [
        c
        for c in session.dirty
        if isinstance(c, Company) and sa.inspect(c).attrs.name.history.has_changes()
    ]
    for company in renamed:
        for project in session.scalars(sa.select(Project).where(Project.company_id == company.id)):
            project.search_text = search_text(project.name, company.name)
    for project in [*session.new, *session.dirty]:
        if not isinstance(project, Project):
            continue
        state = sa.inspect(project)
        if project in session.new or any(
            state.attrs[name].history.has_changes() for name in ("name", "company_id")
        ):
            company = project.company or (
                session.get(Company, project.company_id) if project.company_id else None
            )
            project.search_text = search_text(project.name or "", company.name if company else "")
