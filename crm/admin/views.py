"""Admin pages (系统管理): user accounts, the catalogues, the audit log. For the admin role only.

Each view: check the role, load, then `save_form`: validate, call a service, commit once; on
bad input or a ServiceError nothing is kept and the form shows the messages (status 400).
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_login import current_user
from sqlalchemy.orm import selectinload

from crm import transaction
from crm.access import admin_required
from crm.admin.forms import (
    AuditFilterForm,
    JobFilterForm,
    UserCreateForm,
    UserEditForm,
    UserFilterForm,
)
from crm.audit.labels import action_label, describe_entries, object_type_label
from crm.audit.services import (
    AuditFilter,
    audit_choices,
    audit_csv_rows,
    audit_query,
    describe_filter,
    record,
)
from crm.auth.models import Role, User
from crm.auth.services import create_user, update_user
from crm.auth.signin import is_locked
from crm.auth.views import start_session
from crm.catalog.forms import FORMS, NONE_CHOICE, optional_id, select_choices
from crm.catalog.models import Carrier, CatalogEntry, Chain, Cluster, Department
from crm.catalog.services import (
    CATALOG_KINDS,
    CatalogKind,
    active_entries,
    create_entry,
    get_kind,
    list_entries,
    update_entry,
)
from crm.core import LOCAL_TZ, content_disposition, parse_int, utcnow
from crm.extensions import db
from crm.forms import save_form
from crm.jobs import runs
from crm.jobs.models import JobStatus
from crm.jobs.queue import queue_state

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.app_context_processor
def admin_navigation() -> dict:
    return {"catalog_kinds": CATALOG_KINDS}


def _actor() -> User:
    return current_user._get_current_object()


def _entry_choices(model: type[CatalogEntry], keep_id: int | None, empty: tuple[int, str]):
    """Choices for a select of catalogue entries: the active ones, and the current value."""
    return select_choices(
        [empty]
        + [
            (e.id, e.name if e.is_active else f"{e.name}（已停用）")
            for e in active_entries(model, keep_id)
        ]
    )


def _page() -> int:
    """The list page asked for; anything but a sensible number is the first page."""
    return parse_int(request.args.get("page", ""), max_digits=6) or 1


def _form_status() -> int:
    """A form shown again after a POST carries errors: 400; a first display: 200."""
    return 400 if request.method == "POST" else 200


# ---- users (用户管理) ----


@bp.route("/users")
@admin_required
def users():
    filters = UserFilterForm(request.args)
    stmt = (
        sa.select(User)
        .options(
            selectinload(User.carrier), selectinload(User.cluster), selectinload(User.department)
        )
        .order_by(User.username)
    )
    if q := (filters.q.data or "").strip()[:64]:  # the field's limit; longer finds nothing new
        stmt = stmt.where(
            sa.or_(
                User.username.icontains(q, autoescape=True),
                User.display_name.icontains(q, autoescape=True),
            )
        )
    if role := Role.from_name(filters.role.data):
        stmt = stmt.where(User.role == role)
    if filters.active.data in ("0", "1"):
        stmt = stmt.where(User.is_active.is_(filters.active.data == "1"))
    page = db.paginate(
        stmt, page=_page(), per_page=current_app.config["PAGE_SIZE"], error_out=False
    )
    locked = {u.id for u in page.items if is_locked(u)}
    return render_template(
        "admin/users.html", page=page, filters=filters, locked=locked, section="users"
    )


def _user_choices(form, user: User | None = None) -> None:
    form.carrier_id.choices = _entry_choices(Carrier, user and user.carrier_id, NONE_CHOICE)
    form.cluster_id.choices = _entry_choices(Cluster, user and user.cluster_id, NONE_CHOICE)
    form.department_id.choices = _entry_choices(
        Department, user and user.department_id, NONE_CHOICE
    )


def _scope_values(form) -> dict:
    carrier_id = optional_id(form.carrier_id.data)
    cluster_id = optional_id(form.cluster_id.data)
    department_id = optional_id(form.department_id.data)
    return {
        "carrier": db.session.get(Carrier, carrier_id) if carrier_id else None,
        "cluster": db.session.get(Cluster, cluster_id) if cluster_id else None,
        "department": db.session.get(Department, department_id) if department_id else None,
    }


@bp.route("/users/new", methods=["GET", "POST"])
@admin_required
def user_new():
    form = UserCreateForm()
    _user_choices(form)
    saved, user = save_form(
        form,
        lambda: create_user(
            _actor(),
            username=form.username.data,
            display_name=form.display_name.data,
            password=form.password.data,
            role=form.role.data,
            phone=form.phone.data or "",
            email=form.email.data,
            must_change_password=True,  # the user chooses an own one at the first sign-in
            **_scope_values(form),
        ),
    )
    if saved:
        flash(f"已创建用户 {user.username}；首次登录时须修改密码", "success")
        return redirect(url_for(".users"))
    return render_template(
        "admin/user_form.html", form=form, user=None, section="users"
    ), _form_status()


@bp.route("/users/<int:user_id>/edit", methods=["GET", "POST"])
@admin_required
def user_edit(user_id: int):
    user = db.get_or_404(User, user_id)
    form = UserEditForm(obj=user)
    _user_choices(form, user)
    if not form.is_submitted():
        form.carrier_id.data = user.carrier_id or 0
        form.cluster_id.data = user.cluster_id or 0
        form.department_id.data = user.department_id or 0
    version_before = user.session_version
    saved, _ = save_form(
        form,
        lambda: update_user(
            _actor(),
            user,
            display_name=form.display_name.data,
            role=form.role.data,
            phone=form.phone.data or "",
            email=form.email.data,
            is_active=form.is_active.data,
            password=form.password.data or "",
            unlock_account=form.unlock.data,
            **_scope_values(form),
        ),
    )
    if saved:
        if user.id == current_user.id and user.session_version != version_before:
            start_session(user)  # the admin's own password changed: stay signed in here
        flash(f"已保存用户 {user.username}", "success")
        return redirect(url_for(".users"))
    return render_template(
        "admin/user_form.html",
        form=form,
        user=user,
        locked=is_locked(user),
        section="users",
    ), _form_status()


# ---- catalogues (载体, 产业集群, 产业链, 招商渠道, 终止原因, 部门) ----

# Columns a catalogue's list shows besides name, sort order and state.
_EXTRA_COLUMNS: dict[type[CatalogEntry], list[tuple[str, Callable[[CatalogEntry], str]]]] = {
    Carrier: [("主导产业", lambda e: e.leading_industry or "—")],
    Cluster: [("产业类别", lambda e: e.category.label)],
    Chain: [("所属产业集群", lambda e: e.cluster.name)],
    Department: [("简称", lambda e: e.short_name or "—")],
}


def _kind_or_404(slug: str) -> CatalogKind:
    kind = get_kind(slug)
    if kind is None:
        abort(404)
    return kind


@bp.route("/catalog/<kind>/")
@admin_required
def catalog(kind: str):
    catalog_kind = _kind_or_404(kind)
    columns = _EXTRA_COLUMNS.get(catalog_kind.model, [])
    rows = [(e, [cell(e) for _, cell in columns]) for e in list_entries(catalog_kind)]
    return render_template(
        "admin/catalog.html",
        kind=catalog_kind,
        headers=[header for header, _ in columns],
        rows=rows,
        section=catalog_kind.slug,
    )


def _catalog_form(kind: CatalogKind, entry: CatalogEntry | None):
    form = FORMS[kind.model](obj=entry)
    if "cluster_id" in form:
        keep = entry.cluster_id if entry is not None else None
        form.cluster_id.choices = _entry_choices(Cluster, keep, (0, "请选择"))
    return form


def _render_catalog_form(kind: CatalogKind, form, entry: CatalogEntry | None):
    order = ("name", *kind.extra_fields, "sort_order", "is_active")
    return render_template(
        "admin/catalog_form.html",
        kind=kind,
        form=form,
        fields=[form[name] for name in order],
        entry=entry,
        section=kind.slug,
    ), _form_status()


def _catalog_values(kind: CatalogKind, form) -> dict:
    return {name: form[name].data for name in kind.fields}


@bp.route("/catalog/<kind>/new", methods=["GET", "POST"])
@admin_required
def catalog_new(kind: str):
    catalog_kind = _kind_or_404(kind)
    form = _catalog_form(catalog_kind, None)
    saved, entry = save_form(
        form, lambda: create_entry(_actor(), catalog_kind, **_catalog_values(catalog_kind, form))
    )
    if saved:
        flash(f"已添加{catalog_kind.label}“{entry.name}”", "success")
        return redirect(url_for(".catalog", kind=catalog_kind.slug))
    return _render_catalog_form(catalog_kind, form, None)


@bp.route("/catalog/<kind>/<int:entry_id>/edit", methods=["GET", "POST"])
@admin_required
def catalog_edit(kind: str, entry_id: int):
    catalog_kind = _kind_or_404(kind)
    entry = db.get_or_404(catalog_kind.model, entry_id)
    form = _catalog_form(catalog_kind, entry)
    saved, _ = save_form(
        form,
        lambda: update_entry(_actor(), catalog_kind, entry, **_catalog_values(catalog_kind, form)),
    )
    if saved:
        flash(f"已保存{catalog_kind.label}“{entry.name}”", "success")
        return redirect(url_for(".catalog", kind=catalog_kind.slug))
    return _render_catalog_form(catalog_kind, form, entry)


# ---- the audit log (审计日志) ----


def _audit_filter() -> tuple[AuditFilterForm, AuditFilter]:
    """The search form from the query string; a part that does not validate is left out."""
    form = AuditFilterForm(request.args)
    actions, types = audit_choices()
    form.action.choices = select_choices(
        [("", "全部操作"), *((a, action_label(a)) for a in actions)]
    )
    form.object_type.choices = select_choices(
        [("", "全部对象"), *((t, object_type_label(t)) for t in types)]
    )
    form.validate()

    def valid(name: str):
        field = form[name]
        return None if field.errors else field.data

    return form, AuditFilter(
        user=valid("user") or "",
        action=valid("action") or "",
        object_type=valid("object_type") or "",
        object_id=valid("object_id"),
        date_from=valid("date_from"),
        date_to=valid("date_to"),
        text=valid("q") or "",
    )


@bp.route("/audit")
@admin_required
def audit():
    form, audit_filter = _audit_filter()
    page = db.paginate(
        audit_query(audit_filter),
        page=_page(),
        per_page=current_app.config["PAGE_SIZE"],
        error_out=False,
    )
    return render_template(
        "admin/audit.html",
        form=form,
        page=page,
        rows=list(zip(page.items, describe_entries(page.items), strict=True)),
        section="audit",
    )


@bp.route("/audit/export.csv")
@admin_required
def audit_export():
    """The matching entries as CSV (UTF-8 with BOM), streamed; the export itself is audited."""
    _form, audit_filter = _audit_filter()
    record(
        _actor(),
        "audit_exported",
        object_type="audit_entries",
        summary=f"导出条件：{describe_filter(audit_filter)}",
    )
    transaction.keep()
    day = utcnow().astimezone(LOCAL_TZ).strftime("%Y%m%d-%H%M")
    response = Response(
        stream_with_context(audit_csv_rows(audit_filter)), mimetype="text/csv; charset=utf-8"
    )
    response.headers["Content-Disposition"] = content_disposition(
        f"审计日志-{day}.csv", f"audit-{day}.csv"
    )
    return response


# ---- background jobs (后台任务) ----


@bp.route("/jobs")
@admin_required
def jobs():
    """The last runs of background jobs, newest first, each with its error; by status."""
    filters = JobFilterForm(request.args)
    status = JobStatus.from_name(filters.status.data) if filters.validate() else None
    page = db.paginate(
        runs.runs_query(status),
        page=_page(),
        per_page=current_app.config["PAGE_SIZE"],
        error_out=False,
    )
    return render_template(
        "admin/jobs.html",
        page=page,
        filters=filters,
        status=status,
        failed_status=JobStatus.FAILED,
        failed_count=runs.count_failed_jobs(),
        queue=queue_state(current_app.config),
        mail_on=bool(current_app.config["SMTP_HOST"]),
        section="jobs",
    )
