"""Project documents on the project page; downloads through the project's permission check."""

from __future__ import annotations

from pathlib import Path

from flask import (
    Blueprint,
    abort,
    flash,
    redirect,
    render_template,
    send_file,
    url_for,
)
from flask_login import current_user, login_required

from crm import transaction
from crm.access import Action, can, load_file, load_project
from crm.audit.services import record
from crm.auth.models import User
from crm.core import ServiceError, content_disposition
from crm.extensions import db
from crm.files.forms import ArchiveForm, DocumentForm
from crm.files.models import DocumentKind
from crm.files.services import (
    archive_file,
    file_path,
    is_signing_basis,
    project_documents,
    removal_blocker,
    restore_file,
)
from crm.files.uploads import save_upload, upload_folder
from crm.forms import save_button, save_form
from crm.projects.models import Project
from crm.projects.panels import Panel

bp = Blueprint("files", __name__)


def documents_panel(project: Project, user: User) -> Panel:
    return Panel(
        "files/_documents.html",
        {
            "documents": project_documents(project),
            "form": DocumentForm(formdata=None) if can(user, Action.DOCUMENTS, project) else None,
            "removed": project_documents(project, removed=True)
            if can(user, Action.RESTORE_DOCUMENTS, project)
            else [],
        },
    )


@bp.route("/projects/<int:project_id>/documents", methods=["POST"])
@login_required
def upload_document(project_id: int):
    project = load_project(current_user, project_id, Action.DOCUMENTS)
    form = DocumentForm()
    saved, outcome = save_form(
        form,
        lambda: save_upload(current_user, project, form, DocumentKind[form.kind.data]),
        not_at_fields=ServiceError,
    )
    documents = url_for("projects.detail", project_id=project.id) + "#documents"
    if saved:
        flash(f"已上传“{outcome.original_name}”", "success")
    elif outcome is not None:  # the file was refused
        flash("上传失败：" + "；".join(outcome.errors.values() or [outcome.message]), "error")
        return redirect(documents), 303
    else:
        flash("上传失败：" + "；".join(e for errs in form.errors.values() for e in errs), "error")
    return redirect(documents)


@bp.route("/files/<int:file_id>")
@login_required
def download(file_id: int):
    stored = load_file(current_user, file_id)
    path = file_path(stored, upload_folder())
    if not path.is_file():
        abort(404)
    record(current_user, "file_downloaded", stored, summary=stored.original_name)
    transaction.keep()
    response = send_file(path, mimetype=stored.content_type, max_age=0)
    extension = Path(stored.original_name).suffix.encode("ascii", "ignore").decode()
    response.headers["Content-Disposition"] = content_disposition(
        stored.original_name, f"file-{stored.id}{extension}"
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.route("/files/<int:file_id>/archive", methods=["GET", "POST"])
@login_required
def archive(file_id: int):
    """Remove a document from the project page, after a confirmation the server checks."""
    stored = load_file(current_user, file_id, Action.DOCUMENTS)
    documents = url_for("projects.detail", project_id=stored.project_id) + "#documents"
    form = ArchiveForm()
    blocker = removal_blocker(stored)  # nothing to confirm: say why at once
    if blocker is None:
        saved, outcome = save_form(form, lambda: archive_file(current_user, stored))
        if saved:
            flash(f"已移除“{stored.original_name}”（文件仍存档，管理员可恢复）", "success")
            return redirect(documents)
        if outcome is not None:  # refused meanwhile (another removal): rolled back
            db.session.refresh(stored)
            blocker = outcome.message
    if blocker is not None:
        status = 409 if form.is_submitted() else 200
    else:
        status = 400 if form.is_submitted() else 200  # the box was not ticked
    project = db.session.get(Project, stored.project_id)
    return render_template(
        "files/archive.html",
        stored=stored,
        project=project,
        form=form if blocker is None else None,
        blocker=blocker,
        back=documents,
        signing_basis=is_signing_basis(stored, project),
    ), status


@bp.route("/files/<int:file_id>/restore", methods=["POST"])
@login_required
def restore(file_id: int):
    """An admin brings a removed document back to the project page."""
    stored = load_file(current_user, file_id, Action.RESTORE_DOCUMENTS, removed=None)
    saved, _ = save_button(lambda: restore_file(current_user, stored))
    back = url_for("projects.detail", project_id=stored.project_id)
    if not saved:  # not removed (any more): the message is flashed
        return redirect(back)
    flash(f"已恢复“{stored.original_name}”", "success")
    return redirect(back + "#documents")
