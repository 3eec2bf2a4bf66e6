"""Company pages: the company register (企业库), a company with its contacts and projects."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy.orm import joinedload

from crm.access import (
    can_create_project,
    can_edit_company,
    company_offer_code,
    company_scope,
    load_company,
    project_scope,
)
from crm.audit.models import AuditEntry
from crm.audit.services import action_label
from crm.auth.models import Role
from crm.companies.credit_code import credit_code_error, normalize
from crm.companies.forms import CompanyForm, ContactForm, MergeForm
from crm.companies.merge import merge_companies
from crm.companies.models import Company, Contact, Origin
from crm.companies.services import (
    CONTACT_FIELDS,
    DuplicatesUnconfirmed,
    LikelyMatch,
    add_contact,
    archive_contact,
    company_by_credit_code,
    create_company,
    likely_matches,
    update_company,
    update_contact,
)
from crm.core import ServiceError, parse_int
from crm.extensions import db
from crm.forms import save_button, save_form
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
            sa.or_(Company.name.ilike(pattern, escape="\\"), Company.credit_code == normalize(q))
        )
    page_arg = request.args.get("page", "1")
    page = db.paginate(
        query.order_by(Company.updated_at.desc(), Company.id.desc()),
        page=parse_int(page_arg) or 1,
        per_page=current_app.config["PAGE_SIZE"],
        error_out=False,
    )
    existing = _existing_elsewhere(q) if q and not page.items else None
    return render_template(
        "companies/index.html",
        page=page,
        q=q,
        can_edit=can_edit_company(current_user),
        existing=existing,
        elsewhere=_matches_elsewhere(q, exclude=existing) if q else [],
        can_create_project=can_create_project(current_user),
    )


def _existing_elsewhere(code: str) -> Company | None:
    """The company registered with this credit code that the user does not see (another
    载体 registered and courts it), so the user may register its own project for it."""
    company = company_by_credit_code(code)
    return None if company is None or _readable(company) else company


def _matches_elsewhere(q: str, exclude: Company | None) -> list[dict]:
    """Companies the user does not see whose name (any way of writing it) or code is `q`:
    their name and code only, never their projects, with the offer to register a project."""
    code = q if not credit_code_error(q) else None
    return [
        row
        for row in _offers(likely_matches(q, code, limit=10))
        if not row["readable"] and (exclude is None or row["company"].id != exclude.id)
    ]


def _offers(matches: list[LikelyMatch]) -> list[dict]:
    """Likely matches as the templates show them, with what the user may do with each: open
    it (readable), or register its own project for it (the code, or the keyed offer for a
    company without one, lets `load_company_by_code` reach it)."""
    may_register = can_create_project(current_user)
    rows = []
    for company, normalised, score in matches:
        readable = _readable(company)
        rows.append(
            {
                "company": company,
                "normalised": normalised,
                "score": score,
                "readable": readable,
                "offer": (
                    url_for(
                        "projects.new",
                        company=company.id,
                        code=company.credit_code or company_offer_code(company.id),
                    )
                    if may_register and not readable
                    else None
                ),
            }
        )
    return rows


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
    saved, outcome = save_form(
        form,
        lambda: create_company(
            current_user,
            _company_values(form),
            duplicates_confirmed=form.confirm_duplicate.data,
        ),
        not_at_fields=DuplicatesUnconfirmed,
    )
    if saved:
        flash(f"已登记企业“{outcome.name}”", "success")
        return redirect(url_for("companies.detail", company_id=outcome.id))
    existing, readable, matches = None, False, []
    if isinstance(outcome, DuplicatesUnconfirmed):  # likely registered already: ask first
        matches = _offers(outcome.matches)
    elif isinstance(outcome, ServiceError):  # refused: the credit code may be registered already
        existing = company_by_credit_code(form.credit_code.data or "")
        readable = existing is not None and _readable(existing)
    status = 409 if matches else 400 if form.is_submitted() else 200
    return render_template(
        "companies/form.html",
        form=form,
        company=None,
        existing=existing,
        existing_readable=readable,
        matches=matches,
        can_create_project=can_create_project(current_user),
    ), status


@bp.route("/<int:company_id>")
@login_required
def detail(company_id: int):
    company = db.session.scalar(
        sa.select(Company).where(Company.id == company_id, company_scope(current_user))
    )
    if company is None:
        return _merged_page(company_id)
    projects = db.session.scalars(
        sa.select(Project)
        .where(Project.company_id == company.id, project_scope(current_user))
        .options(joinedload(Project.carrier))
        .order_by(Project.updated_at.desc())
    ).all()
    absorbed = db.session.scalars(
        sa.select(Company).where(Company.merged_into_id == company.id).order_by(Company.merged_at)
    ).all()
    return render_template(
        "companies/detail.html",
        company=company,
        projects=projects,
        absorbed=absorbed,
        history=_history([company.id, *(c.id for c in absorbed)]),
        can_edit=can_edit_company(current_user),
        can_create_project=can_create_project(current_user),
        can_merge=current_user.role is Role.ADMIN,
    )


def _merged_page(company_id: int):
    """A company merged into another: its page says so and leads to the one that stayed, for
    whoever may read that one (others get the 404 of an unknown company)."""
    merged = db.session.get(Company, company_id)
    if merged is None or merged.merged_into_id is None:
        abort(404)
    kept = merged
    while kept.merged_into_id is not None:  # merged again later: follow to the end
        kept = db.session.get(Company, kept.merged_into_id)
    kept = load_company(current_user, kept.id)
    return render_template(
        "companies/merged.html", company=merged, kept=kept, history=_history([merged.id])
    )


def _history(company_ids: list[int], limit: int = 30) -> list[dict]:
    """The audit entries of a company and of the duplicates merged into it, newest first."""
    entries = db.session.scalars(
        sa.select(AuditEntry)
        .where(AuditEntry.object_type == "companies", AuditEntry.object_id.in_(company_ids))
        .order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc())
        .limit(limit)
    ).all()
    return [
        {
            "at": e.created_at,
            "action": action_label(e.action),
            "summary": e.summary,
            "user": e.user.display_name if e.user else "系统",
        }
        for e in entries
    ]


@bp.route("/merge", methods=["GET", "POST"])
@login_required
def merge():
    """合并重复企业 (admin): preview both companies, then merge on confirmation."""
    if current_user.role is not Role.ADMIN:
        abort(403)
    form = MergeForm()
    if request.method == "GET":
        form.kept_id.data = parse_int(request.args.get("kept", ""))
        form.absorbed_id.data = parse_int(request.args.get("absorbed", ""))
    valid = form.validate() if form.is_submitted() else False
    preview, missing = {}, False
    for name in ("absorbed_id", "kept_id"):
        field = getattr(form, name)
        if not field.data or field.errors:
            continue
        company = db.session.scalar(
            sa.select(Company).where(Company.id == field.data, Company.is_deleted.is_(False))
        )
        if company is not None:
            preview[name] = _merge_preview(company)
        elif form.is_submitted():
            field.errors = [*field.errors, "没有该编号的企业（或已被合并）"]
            missing = True
    status = 200
    if missing:
        status = 404
    elif form.is_submitted() and not valid:
        status = 400
    elif form.is_submitted() and not form.confirm.data:
        form.confirm.errors = ["请核对两家企业后勾选确认"]
        status = 409
    elif form.is_submitted():
        absorbed, kept = preview["absorbed_id"]["company"], preview["kept_id"]["company"]
        saved, _ = save_form(form, lambda: merge_companies(current_user, absorbed, kept))
        if saved:
            flash(f"已将“{absorbed.name}”并入“{kept.name}”", "success")
            return redirect(url_for("companies.detail", company_id=kept.id))
        status = 400
    return render_template(
        "companies/merge.html", form=form, preview=preview, section="company_merge"
    ), status


def _merge_preview(company: Company) -> dict:
    count = sa.func.count()
    return {
        "company": company,
        "projects": db.session.scalar(
            sa.select(count)
            .select_from(Project)
            .where(Project.company_id == company.id, Project.is_deleted.is_(False))
        ),
        "contacts": db.session.scalar(
            sa.select(count)
            .select_from(Contact)
            .where(Contact.company_id == company.id, Contact.is_deleted.is_(False))
        ),
    }


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
    contact = _load_contact(company, contact_id)
    saved, _ = save_button(lambda: archive_contact(current_user, contact))
    if not saved:
        return redirect(url_for("companies.detail", company_id=company.id))
    flash("联系人已移除（记录仍保留在历史中）", "success")
    return redirect(url_for("companies.detail", company_id=company.id))
