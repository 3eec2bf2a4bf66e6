"""Ledger pages (台账): export the filtered project list, download the import template, upload
a ledger, preview every row, confirm."""

from __future__ import annotations

from pathlib import Path

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required

from crm import transaction
from crm.access import can_import_projects
from crm.core import ConflictError, ServiceError, content_disposition, local_today, utcnow
from crm.forms import save_form
from crm.ledger.apply import apply_import
from crm.ledger.book import XLSX_MIMETYPE
from crm.ledger.export import export_filename, export_workbook
from crm.ledger.forms import ConfirmForm, UploadForm
from crm.ledger.plan import plan_import
from crm.ledger.reading import WorkbookTooLarge, read_workbook
from crm.ledger.template import template_workbook
from crm.ledger.uploads import discard_upload, load_upload, save_upload
from crm.projects.filters import ProjectFilter

bp = Blueprint("ledger", __name__, url_prefix="/ledger")

PREVIEW_ROWS = 500


def _xlsx(data: bytes, filename: str, fallback: str) -> Response:
    response = Response(data, mimetype=XLSX_MIMETYPE)
    response.headers["Content-Disposition"] = content_disposition(filename, fallback)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _import_folder() -> Path:
    return Path(current_app.instance_path) / "ledger_imports"


@bp.route("/export")
@login_required
def export():
    """The project list as filtered (every page) as an .xlsx ledger."""
    f = ProjectFilter.from_args(request.args)
    now = utcnow()
    data, _count = export_workbook(
        current_user, f, local_today(), current_app.config["STALE_AFTER_DAYS"], now
    )
    transaction.keep()  # the audit row of the export
    return _xlsx(data, export_filename(now), f"ledger-{now:%Y%m%d-%H%M}.xlsx")


@bp.route("/template")
@login_required
def template():
    if not can_import_projects(current_user):
        abort(403)
    return _xlsx(template_workbook(current_user), "项目台账导入模板.xlsx", "ledger-template.xlsx")


@bp.route("/import", methods=["GET", "POST"])
@login_required
def upload():
    if not can_import_projects(current_user):
        abort(403)
    form = UploadForm()
    user_id = current_user.id

    def keep_upload() -> str:
        # Parsed outside any transaction: on SQLite this POST took the write lock when the
        # login loaded the user, and a large file must not hold every other writer back.
        # Nothing was written; the upload is kept in a file, not in the database.
        transaction.discard()
        rows = read_workbook(form.file.data.stream)
        return save_upload(_import_folder(), user_id, form.file.data.filename or "", rows)

    saved, outcome = save_form(form, keep_upload, not_at_fields=ServiceError)
    if saved:
        return redirect(url_for("ledger.preview", token=outcome))
    if outcome is not None:  # a file that cannot be read: said at the file
        form.file.errors = [*form.file.errors, outcome.message]
    status = 413 if isinstance(outcome, WorkbookTooLarge) else 400
    return render_template("ledger/upload.html", form=form), status if form.is_submitted() else 200


def _load(token: str):
    loaded = load_upload(_import_folder(), current_user, token)
    if loaded is None:
        flash("导入预览已过期或不存在，请重新上传文件", "warning")
    return loaded


def _planned(token: str):
    """(file name, plan) of the kept upload `token`, or None when it is gone (flashed)."""
    if not can_import_projects(current_user):
        abort(403)
    loaded = _load(token)
    if loaded is None:
        return None
    filename, rows = loaded
    return filename, plan_import(current_user, rows)


def _render_preview(token: str, filename: str, plan, form: ConfirmForm, status: int = 200):
    return render_template(
        "ledger/preview.html",
        token=token,
        filename=filename,
        plan=plan,
        form=form,
        shown=plan.rows[:PREVIEW_ROWS],
        conflicts=[r for r in plan.rows if r.action == "conflict"],
        preview_rows=PREVIEW_ROWS,
    ), status


@bp.route("/import/<token>")
@login_required
def preview(token: str):
    planned = _planned(token)
    if planned is None:
        return redirect(url_for("ledger.upload"))
    filename, plan = planned
    transaction.discard()  # nothing is written before the confirmation
    return _render_preview(token, filename, plan, ConfirmForm(formdata=None))


@bp.route("/import/<token>", methods=["POST"])
@login_required
@transaction.reads_first
def confirm(token: str):
    """Plan again (the data may have changed since the preview) without SQLite's write lock,
    then write in a transaction of its own: at 20,000 rows the plan is half the time, and
    other users' saves wait only for the writes. What changed in between is refused (409):
    updates check each project's version, new projects the newest ids (`apply_import`)."""
    planned = _planned(token)
    if planned is None:
        return redirect(url_for("ledger.upload"))
    filename, plan = planned
    form = ConfirmForm()
    # A plan with errors is refused too (the page lists them and offers no confirmation).
    chosen = request.form.getlist("apply_row")  # conflicting rows to apply anyway
    transaction.end_read()
    saved, result = save_form(
        form,
        lambda: apply_import(current_user, plan, filename, chosen),
        not_at_fields=ConflictError,
    )
    if not saved:
        transaction.discard()  # nothing the plan read is kept
        if isinstance(result, ConflictError):
            form.form_errors.append(result.message)
            return _render_preview(token, filename, plan, form, 409)
        return _render_preview(token, filename, plan, form, 400)
    discard_upload(_import_folder(), token)
    flash(
        f"导入完成：新建 {result.created} 个项目（新登记企业 {result.companies} 家），"
        f"更新 {result.updated} 个，无变化 {result.unchanged} 个"
        + (f"；登记跨载体冲突 {result.conflicts} 起" if result.conflicts else "")
        + (
            f"；导出后已在系统中修改的 {result.kept} 个项目未勾选，保留系统中的数据未更新"
            if result.kept
            else ""
        ),
        "success",
    )
    return redirect(url_for("projects.index"))
