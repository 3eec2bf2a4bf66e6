"""The file store: type checked by content, stored under generated names, size limited.

Files live in the folder UPLOAD_FOLDER (default: instance/uploads), two levels deep by the
first characters of a random name; the user's own file name is kept in the database only.
"""

from __future__ import annotations

import hashlib
import io
import secrets
import zipfile
from pathlib import Path
from typing import BinaryIO

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session

from crm.audit.services import record
from crm.auth.models import User
from crm.core import ServiceError
from crm.extensions import db
from crm.files.models import DocumentKind, StoredFile
from crm.projects.models import Project

# Detected type → (MIME type, the file-name extensions it may carry).
FILE_TYPES: dict[str, tuple[str, tuple[str, ...]]] = {
    "pdf": ("application/pdf", (".pdf",)),
    "png": ("image/png", (".png",)),
    "jpeg": ("image/jpeg", (".jpg", ".jpeg")),
    "docx": (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        (".docx",),
    ),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", (".xlsx",)),
    "doc": ("application/msword", (".doc",)),
    "xls": ("application/vnd.ms-excel", (".xls",)),
}
ALLOWED_DESCRIPTION = "PDF、图片（PNG/JPG）、Word、Excel"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def detect_type(data: bytes, filename: str) -> str | None:
    """The file's type judged by its bytes; the name only tells Word from Excel in OLE files."""
    if data.startswith(b"%PDF-"):
        return "pdf"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"PK\x03\x04"):
        try:
            names = set(zipfile.ZipFile(io.BytesIO(data)).namelist())
        except zipfile.BadZipFile:
            return None
        if "[Content_Types].xml" in names:
            if "word/document.xml" in names:
                return "docx"
            if "xl/workbook.xml" in names:
                return "xlsx"
        return None
    if data.startswith(_OLE_MAGIC):
        return "xls" if filename.lower().endswith(".xls") else "doc"
    return None


def clean_filename(filename: str) -> str:
    """Keep the user's name (Chinese included) but no path, control characters or quotes."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if c.isprintable() and c not in '"<>|:*?')
    return name.strip(" .")[:200] or "文件"


def store_file(
    user: User,
    project: Project,
    stream: BinaryIO,
    filename: str,
    kind: DocumentKind,
    upload_folder: Path,
    max_bytes: int,
) -> StoredFile:
    data = stream.read(max_bytes + 1)
    if not data:
        raise ServiceError(errors={"file": "请选择要上传的文件"})
    if len(data) > max_bytes:
        raise ServiceError(errors={"file": f"文件不能超过 {max_bytes // (1024 * 1024)} MB"})
    name = clean_filename(filename)
    detected = detect_type(data, name)
    if detected is None:
        raise ServiceError(errors={"file": f"只能上传{ALLOWED_DESCRIPTION}文件"})
    mime, extensions = FILE_TYPES[detected]
    if not name.lower().endswith(extensions):
        raise ServiceError(errors={"file": "文件内容与扩展名不符，请检查文件"})
    stored_name = secrets.token_hex(16)
    path = upload_folder / stored_name[:2] / stored_name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    _remove_unless_committed(path)
    stored = StoredFile(
        project_id=project.id,
        kind=kind,
        original_name=name,
        stored_name=stored_name,
        content_type=mime,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        uploaded_by_id=user.id,
    )
    db.session.add(stored)
    db.session.flush()
    record(user, "file_uploaded", stored, summary=f"{project.name}：{kind.label} {name}")
    return stored


def _remove_unless_committed(path: Path) -> None:
    """The bytes are written before their row: if the transaction then rolls back (a later
    step refused), they go too, so no file is left without its record."""
    db.session().info.setdefault(_NEW_FILES, []).append(path)


_NEW_FILES = "crm.files: written in this transaction"


@event.listens_for(Session, "after_commit")
def _keep_new_files(session: Session) -> None:
    session.info.pop(_NEW_FILES, None)


@event.listens_for(Session, "after_rollback")
def _drop_new_files(session: Session) -> None:
    for path in session.info.pop(_NEW_FILES, []):
        path.unlink(missing_ok=True)


def file_path(stored: StoredFile, upload_folder: Path) -> Path:
    return upload_folder / stored.stored_name[:2] / stored.stored_name


def archive_file(user: User, stored: StoredFile) -> None:
    """Files are archived, never deleted: the bytes stay for the record."""
    if stored.kind is DocumentKind.EVIDENCE:  # part of an evaluation, which may be decided
        raise ServiceError("评估佐证材料随评估存档，不能移除")
    if stored.kind is DocumentKind.DOSSIER:
        raise ServiceError("决策时存档的尽调摘要不能移除")
    stored.is_deleted = True
    record(user, "file_archived", stored, summary=stored.original_name)


def project_documents(project: Project) -> list[StoredFile]:
    return list(
        db.session.scalars(
            sa.select(StoredFile)
            .where(
                StoredFile.project_id == project.id,
                StoredFile.kind.not_in([DocumentKind.EVIDENCE, DocumentKind.DOSSIER]),
                StoredFile.is_deleted.is_(False),
            )
            .order_by(StoredFile.kind, StoredFile.id)
        )
    )


def has_document(project: Project, kind: DocumentKind) -> bool:
    return (
        db.session.scalar(
            sa.select(StoredFile.id)
            .where(
                StoredFile.project_id == project.id,
                StoredFile.kind == kind,
                StoredFile.is_deleted.is_(False),
            )
            .limit(1)
        )
        is not None
    )
