"""An upload form's file into the file store, with the app's folder and size limit: what the
pages of several features that take a file (project documents, evaluation evidence) share."""

from __future__ import annotations

from pathlib import Path

from flask import current_app

from crm.auth.models import User
from crm.files.models import DocumentKind, StoredFile
from crm.files.services import store_file
from crm.projects.models import Project


def upload_folder() -> Path:
    return Path(current_app.config["UPLOAD_FOLDER"])


def save_upload(user: User, project: Project, form, kind: DocumentKind) -> StoredFile:
    """Store the file of a validated upload form; raises ServiceError on a refused file."""
    upload = form.file.data
    return store_file(
        user,
        project,
        upload.stream,
        upload.filename or "",
        kind,
        upload_folder(),
        current_app.config["MAX_UPLOAD_BYTES"],
    )
