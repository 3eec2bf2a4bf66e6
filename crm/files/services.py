"""The file store: type checked by content, stored under generated names, size limited.

Files live in the folder UPLOAD_FOLDER (default: instance/uploads), two levels deep by the
first characters of a random name; the user's own file name is kept in the database only.
New bytes are written to a temporary name and get their real name only once their record is
committed; `clean_store` removes what no record owns. Files and folders are private (0600/0700).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import secrets
import time
import zipfile
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO

import olefile
import sqlalchemy as sa

from crm.audit.services import record
from crm.auth.models import User
from crm.core import ServiceError
from crm.extensions import db
from crm.files.models import DocumentKind, StoredFile
from crm.files.private import private_folder, write_private
from crm.projects.models import Project
from crm.projects.stages import Stage
from crm.transaction import on_commit, on_rollback

log = logging.getLogger(__name__)

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
# What a detected type is called in a message, when its name says otherwise.
TYPE_LABELS = {
    "pdf": "PDF 文件",
    "png": "PNG 图片",
    "jpeg": "JPG 图片",
    "docx": "Word 文档（.docx）",
    "xlsx": "Excel 表格（.xlsx）",
    "doc": "Word 97–2003 文档（.doc）",
    "xls": "Excel 97–2003 表格（.xls）",
}
ALLOWED_DESCRIPTION = "PDF、图片（PNG/JPG）、Word、Excel"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def detect_type(data: bytes) -> str | None:
    """The file's type judged by its bytes alone, never by its name."""
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
        return _ole_type(data)
    return None


# The stream at the root of an old Office file's OLE container that says what it is.
_OLE_STREAMS = (
    ("WordDocument", "doc"),
    ("Workbook", "xls"),  # Excel 97–2003
    ("Book", "xls"),  # Excel 5/95
    ("PowerPoint Document", "ppt"),
)


def _ole_type(data: bytes) -> str | None:
    """Word, Excel or PowerPoint 97–2003, by the OLE container's root streams (olefile); None
    for any other OLE file (an installer, an encrypted package, a broken container)."""
    try:
        with olefile.OleFileIO(io.BytesIO(data)) as ole:
            roots = {entry[0].lower() for entry in ole.listdir() if len(entry) == 1}
    except Exception:  # a hostile or broken container: olefile raises many kinds of errors
        return None
    return next((kind for stream, kind in _OLE_STREAMS if stream.lower() in roots), None)


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
    detected = detect_type(data)
    if detected not in FILE_TYPES:
        raise ServiceError(errors={"file": f"只能上传{ALLOWED_DESCRIPTION}文件"})
    mime, extensions = FILE_TYPES[detected]
    if not name.lower().endswith(extensions):
        raise ServiceError(
            errors={"file": f"文件内容与扩展名不符：这是{TYPE_LABELS[detected]}，请检查文件"}
        )
    stored_name = secrets.token_hex(16)
    _write_pending(upload_folder, stored_name, data)
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


# Writing: bytes under a temporary name first, the real name only once their row is committed --

TEMP_PREFIX = ".tmp-"
_STORED_NAME = re.compile(r"[0-9a-f]{32}")


def temp_path(upload_folder: Path, stored_name: str) -> Path:
    return upload_folder / f"{TEMP_PREFIX}{stored_name}"


def _write_pending(upload_folder: Path, stored_name: str, data: bytes) -> None:
    """Write the bytes, fsync'd, to `.tmp-<stored name>` in the upload folder. The commit of
    their row renames them to their real name; a rollback removes them. A process killed in
    between leaves only the temporary file, which `crm clean-files` removes (or, if the row was
    committed, moves into place)."""
    private_folder(upload_folder)
    temp = temp_path(upload_folder, stored_name)
    write_private(temp, data)
    final = file_path_for(stored_name, upload_folder)
    on_commit(lambda: _publish(temp, final))
    on_rollback(lambda: temp.unlink(missing_ok=True))


def _publish(temp: Path, final: Path) -> None:
    try:
        private_folder(final.parent)
        os.replace(temp, final)
        _fsync_folder(final.parent)
    except OSError:  # the row is committed: `crm clean-files` moves the bytes into place
        log.exception("could not move %s to %s", temp, final)


def _fsync_folder(folder: Path) -> None:
    """Make a rename durable: fsync the folder that holds the new name."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def file_path_for(stored_name: str, upload_folder: Path) -> Path:
    return upload_folder / stored_name[:2] / stored_name


def file_path(stored: StoredFile, upload_folder: Path) -> Path:
    return file_path_for(stored.stored_name, upload_folder)


def removal_blocker(stored: StoredFile) -> str | None:
    """Why this document cannot be removed from its project page, or None."""
    if stored.kind is DocumentKind.EVIDENCE:  # part of an evaluation, which may be decided
        return "评估佐证材料随评估存档，不能移除"
    if stored.kind is DocumentKind.DOSSIER:
        return "决策时存档的尽调摘要不能移除"
    if stored.is_deleted:
        return "该文件已移除"
    project = db.session.get(Project, stored.project_id)
    if is_signing_basis(stored, project) and _other_agreements(stored) == 0:
        return (
            f"项目已{project.stage.label}，须保留至少一份已签署的投资协议作为签约依据："
            "如需更换，请先上传新的协议，再移除旧的"
        )
    return None


def archive_file(user: User, stored: StoredFile) -> None:
    """Remove a document from the project page. Files are archived, never deleted: the bytes
    and the record stay, and an admin can restore it (`restore_file`)."""
    # The project's row is locked first: two removals of its last two agreements at once
    # must not both see the other one left (PostgreSQL; SQLite serialises writers anyway).
    db.session.get(Project, stored.project_id, with_for_update=True, populate_existing=True)
    if blocker := removal_blocker(stored):
        raise ServiceError(blocker)
    _set_removed(user, stored, True)


def is_signing_basis(stored: StoredFile, project: Project) -> bool:
    """A 投资协议 of a project at 签约 or later: what its 签约 was allowed on (the gate)."""
    return stored.kind is DocumentKind.AGREEMENT and project.stage.order >= Stage.SIGNED.order


def restore_file(user: User, stored: StoredFile) -> None:
    """Bring a removed document back to the project page (admins, `Action.RESTORE_DOCUMENTS`)."""
    if not stored.is_deleted:
        raise ServiceError("该文件未被移除，无需恢复")
    _set_removed(user, stored, False)


def _set_removed(user: User, stored: StoredFile, removed: bool) -> None:
    """Remove (archive) or restore a document, and audit it."""
    stored.is_deleted = removed
    project = db.session.get(Project, stored.project_id)
    record(
        user,
        "file_archived" if removed else "file_restored",
        stored,
        summary=f"{project.name}：{stored.kind.label} {stored.original_name}",
        changes={"is_deleted": [not removed, removed]},
    )


def _other_agreements(stored: StoredFile) -> int:
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(StoredFile)
        .where(
            StoredFile.project_id == stored.project_id,
            StoredFile.kind == DocumentKind.AGREEMENT,
            StoredFile.is_deleted.is_(False),
            StoredFile.id != stored.id,
        )
    )


def project_documents(project: Project, *, removed: bool = False) -> list[StoredFile]:
    """The project's documents (not evidence, not archived dossiers) by kind; with `removed`,
    the ones removed, newest first, for an admin to restore."""
    order = (StoredFile.id.desc(),) if removed else (StoredFile.kind, StoredFile.id)
    return list(
        db.session.scalars(
            sa.select(StoredFile)
            .where(
                StoredFile.project_id == project.id,
                StoredFile.kind.not_in([DocumentKind.EVIDENCE, DocumentKind.DOSSIER]),
                StoredFile.is_deleted.is_(removed),
            )
            .order_by(*order)
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


# Clean-up: what a killed upload left behind --------------------------------------------------


@dataclass
class CleanReport:
    removed: list[Path] = field(default_factory=list)  # temporary or unowned files, removed
    recovered: list[Path] = field(default_factory=list)  # a committed file moved into place
    kept_young: int = 0  # not owned, but younger than the grace period
    skipped: list[Path] = field(default_factory=list)  # not a name the store makes: left alone


def clean_store(
    upload_folder: Path, grace: timedelta, *, dry_run: bool = False, now: float | None = None
) -> CleanReport:
    """Remove from the upload folder the files no StoredFile row owns, older than `grace`:
    temporary files of uploads whose process died before the commit, and bytes whose row is
    gone. A temporary file whose row *was* committed (killed between the commit and the rename)
    is moved to its real name instead. Files with names the store never makes are left alone,
    so a misconfigured folder loses nothing. Archived (removed) documents keep their rows and
    so their bytes. With `dry_run`, nothing changes and the report says what would."""
    report = CleanReport()
    if not upload_folder.is_dir():
        return report
    limit = (time.time() if now is None else now) - grace.total_seconds()
    candidates: list[tuple[Path, str, bool]] = []  # (path, stored name, is temporary)
    for path in sorted(upload_folder.iterdir()):
        if path.is_file() and path.name.startswith(TEMP_PREFIX):
            name = path.name[len(TEMP_PREFIX) :]
            candidates.append((path, name, True))
        elif path.is_dir() and len(path.name) == 2:
            candidates.extend((p, p.name, False) for p in sorted(path.iterdir()) if p.is_file())
        elif path.is_file() or path.is_dir():
            report.skipped.append(path)
    old: list[tuple[Path, str, bool]] = []
    for path, name, temporary in candidates:
        if not _STORED_NAME.fullmatch(name) or (not temporary and path.parent.name != name[:2]):
            report.skipped.append(path)
        elif path.stat().st_mtime > limit:
            report.kept_young += 1
        else:
            old.append((path, name, temporary))
    owned = _owned_names({name for _path, name, _temporary in old})
    for path, name, temporary in old:
        if name not in owned:
            report.removed.append(path)
            if not dry_run:
                path.unlink(missing_ok=True)
        elif temporary:
            final = file_path_for(name, upload_folder)
            if final.exists():  # the rename happened after all: the copy is a leftover
                report.removed.append(path)
                if not dry_run:
                    path.unlink(missing_ok=True)
            else:
                report.recovered.append(final)
                if not dry_run:
                    private_folder(final.parent)
                    os.replace(path, final)
    if not dry_run and (report.removed or report.recovered):
        record(
            None,
            "files_cleaned",
            object_type="file_store",
            summary=f"清理上传文件夹：删除 {len(report.removed)} 个无主或未完成的文件"
            + (f"，归位 {len(report.recovered)} 个" if report.recovered else ""),
            changes={
                "removed": [p.name for p in report.removed][:200],
                "recovered": [p.name for p in report.recovered][:200],
            },
        )
    return report


def _owned_names(names: set[str]) -> set[str]:
    """The names among `names` that a StoredFile row (archived ones included) owns."""
    owned: set[str] = set()
    batch = sorted(names)
    for start in range(0, len(batch), 500):
        owned.update(
            db.session.scalars(
                sa.select(StoredFile.stored_name).where(
                    StoredFile.stored_name.in_(batch[start : start + 500])
                )
            )
        )
    return owned
