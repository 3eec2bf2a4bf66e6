"""Company pages: the company register (企业库), a company with its contacts and projects."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy.orm import joinedload

from crm.access import (
    can_create_project,
    can_edit_company,
    company_scope,
    load_company,
    project_scope,
)
from crm.companies.forms import CompanyForm, ContactForm
from crm.companies.models import Company, Contact, Origin
from crm.companies.services import (
    CONTACT_FIELDS,
    add_contact,
    archive_contact,
    company_by_credit_code,
    create_company,
    update_company,
    update_contact,
)
from crm.core import ServiceError, parse_int
from crm.extensions import db
from crm.forms import save_form
from crm.projects.models import Project

bp = Blueprint("companies", __name__, url_prefix="/companies")


def _company_values(form: CompanyForm) -> dict:
    return {
        "name": form.name.data,
        "credit_code": form.credit_code.data or "",
        "legal_representative": form.legal_representative.data or "",
        "registered_capital": form.registered_capital.data,
        "origin": Origin[form.origin.data],
        "industry": form.industry.data or "",
    }


@bp.route("/")
@login_required
def index():
    q = request.args.get("q", "").strip()[:100]
    query = sa.select(Company).where(company_scope(current_user))
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(
            sa.or_(Company.name.ilike(pattern, escape="\\"), Company.credit_code == q.upper())
        )
    page_arg = request.args.get("page", "1")
    page = db.paginate(
        query.order_by(Company.updated_at.desc(), Company.id.desc()),
        page=parse_int(page_arg) or 1,
        per_page=current_app.config["PAGE_SIZE"],
        error_out=False,
    )
    return render_template(
        "companies/index.html",
        page=page,
        q=q,
        can_edit=can_edit_company(current_user),
        existing=_existing_elsewhere(q) if q and not page.items else None,
    )


def _existing_elsewhere(code: str) -> Company | None:
    """The company registered with this credit code that the user does not see (another
    载体 registered and courts it), so the user may register its own project for it."""
    company = company_by_credit_code(code)
    return None if company is None or _readable(company) else company


def _readable(company: Company) -> bool:
    """Whether the user sees this company in its own register (企业库)."""
    return (
        db.session.scalar(
            sa.select(Company.id).where(Company.id == company.id, company_scope(current_user))
        )
        is not None
    )


@bp.route("/new", methods=["GET", "POST"])
@login_required
def new():
    if not can_edit_company(current_user):
        abort(403)
    form = CompanyForm()
    saved, outcome = save_form(form, lambda: create_company(current_user, _company_values(form)))
    if saved:
        flash(f"已登记企业“{outcome.name}”", "success")
        return redirect(url_for("companies.detail", company_id=outcome.id))
    existing, readable = None, False
    if isinstance(outcome, ServiceError):  # refused: the credit code may be registered already
        existing = company_by_credit_code(form.credit_code.data or "")
        readable = existing is not None and _readable(existing)
    status = 400 if form.is_submitted() else 200
    return render_template(
        "companies/form.html",
        form=form,
        company=None,
        existing=existing,
        existing_readable=readable,
        can_create_project=can_create_project(current_user),
    ), status


@bp.route("/<int:company_id>")
@login_required
def detail(company_id: int):
    company = load_company(current_user, company_id)
    projects = db.session.scalars(
        sa.select(Project)
        .where(Project.company_id == company.id, project_scope(current_user))
        .options(joinedload(Project.carrier))
        .order_by(Project.updated_at.desc())
    ).all()
    return render_template(
        "companies/detail.html",
        company=company,
        projects=projects,
        can_edit=can_edit_company(current_user),
        can_create_project=can_create_project(current_user),
    )


@bp.route("/<int:company_id>/edit", methods=["GET", "POST"])
@login_required
def edit(company_id: int):
    company = load_company(current_user, company_id, edit=True)
    form = CompanyForm(obj=company)
    if request.method == "GET":
        form.origin.data = company.origin.name
    saved, _ = save_form(form, lambda: update_company(current_user, company, _company_values(form)))
    if saved:
        flash("已保存", "success")
        return redirect(url_for("companies.detail", company_id=company.id))
    status = 400 if form.is_submitted() else 200
    return render_template("companies/form.html", form=form, company=company), status


def _load_contact(company: Company, contact_id: int) -> Contact:
    contact = db.session.scalar(
        sa.select(Contact).where(
            Contact.id == contact_id,
            Contact.company_id == company.id,
            Contact.is_deleted.is_(False),
        )
    )
    if contact is None:
        abort(404)
    return contact


@bp.route("/<int:company_id>/contacts/new", methods=["GET", "POST"])
@bp.route("/<int:company_id>/contacts/<int:contact_id>/edit", methods=["GET", "POST"])
@login_required
def contact_form(company_id: int, contact_id: int | None = None):
    company = load_company(current_user, company_id, edit=True)
    contact = _load_contact(company, contact_id) if contact_id else None
    form = ContactForm(obj=contact)

    def save():
        values = {k: getattr(form, k).data or "" for k in CONTACT_FIELDS}
        if contact:
            return update_contact(current_user, contact, values)
        return add_contact(current_user, company, values)

    saved, _ = save_form(form, save)
    if saved:
        flash("联系人已保存", "success")
        return redirect(url_for("companies.detail", company_id=company.id))
    status = 400 if form.is_submitted() else 200
    return render_template(
        "companies/contact_form.html", form=form, company=company, contact=contact
    ), status


@bp.route("/<int:company_id>/contacts/<int:contact_id>/archive", methods=["POST"])
@login_required
def contact_archive(company_id: int, contact_id: int):
    company = load_company(current_user, company_id, edit=True)
    archive_contact(current_user, _load_contact(company, contact_id))
    db.session.commit()
    flash("联系人已移除（记录仍保留在历史中）", "success")
    return redirect(url_for("companies.detail", company_id=company.id))
