"""The file store: project documents and evaluation evidence — the type judged by content, the
size limit, generated names on disk, Chinese names kept, downloads through the project's
permission check, archiving instead of deleting."""

from __future__ import annotations

import io
import os
import struct
import time
import zipfile
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from crm import transaction
from crm.audit.models import AuditEntry
from crm.core import ServiceError
from crm.evaluation.models import DecisionOutcome, EvaluationState
from crm.evaluation.services import decide, load_answers, start_evaluation, submit_evaluation
from crm.extensions import db
from crm.files.models import DocumentKind, StoredFile
from crm.files.services import file_path, store_file
from tests.evaluation_factories import (
    PDF,
    answer_for,
    attach_agreement,
    attracting,
    decision_values,
    default_template,
    docx_bytes,
    fill_all,
)

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"


def text(response) -> str:
    return response.get_data(as_text=True)


def stored_files() -> list[StoredFile]:
    return list(db.session.scalars(sa.select(StoredFile).order_by(StoredFile.id)))


def files_on_disk(folder) -> list:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def audit(action: str, obj) -> list[AuditEntry]:
    return list(
        db.session.scalars(
            sa.select(AuditEntry).where(
                AuditEntry.action == action,
                AuditEntry.object_type == obj.__tablename__,
                AuditEntry.object_id == obj.id,
            )
        )
    )


@pytest.fixture(autouse=True)
def uploads(app, tmp_path, monkeypatch):
    """Uploaded files go to a temporary folder, never into the repository's instance folder."""
    folder = tmp_path / "uploads"
    monkeypatch.setitem(app.config, "UPLOAD_FOLDER", str(folder))
    return folder


def upload(client, project, data: bytes, name: str, kind: str = "AGREEMENT", **kw):
    return client.post(
        f"/projects/{project.id}/documents",
        data={"kind": kind, "file": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
        **kw,
    )


# Project documents ------------------------------------------------------------------------------


def test_a_document_is_stored_under_a_generated_name(world, login, db_session, uploads):
    client = login(world.officer_a)
    response = upload(client, world.project_a, PDF, "投资协议.pdf")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/projects/{world.project_a.id}#documents")

    [stored] = stored_files()
    assert (stored.project_id, stored.kind) == (world.project_a.id, DocumentKind.AGREEMENT)
    assert stored.original_name == "投资协议.pdf"
    assert (stored.content_type, stored.size) == ("application/pdf", len(PDF))
    assert stored.uploaded_by_id == world.officer_a.id

    [on_disk] = files_on_disk(uploads)
    assert on_disk == file_path(stored, uploads)
    assert on_disk.read_bytes() == PDF
    assert "投资协议" not in str(on_disk.relative_to(uploads))
    assert not on_disk.name.endswith(".pdf")
    assert on_disk.name == stored.stored_name != stored.original_name

    page = text(client.get(f"/projects/{world.project_a.id}"))
    assert "投资协议.pdf" in page
    assert f"/files/{stored.id}" in page
    assert audit("file_uploaded", stored)[0].user_id == world.officer_a.id


def test_a_path_in_the_file_name_is_dropped(world, login, db_session, uploads):
    client = login(world.officer_a)
    response = upload(client, world.project_a, PDF, "../../etc/考察报告.pdf", "INSPECTION")
    assert response.status_code == 302
    [stored] = stored_files()
    assert stored.original_name == "考察报告.pdf"
    assert all(uploads in p.parents for p in files_on_disk(uploads))


def test_the_download_gives_back_the_bytes_and_the_chinese_name(world, login, db_session):
    client = login(world.officer_a)
    upload(client, world.project_a, PDF, "投资协议.pdf")
    [stored] = stored_files()

    response = client.get(f"/files/{stored.id}")
    assert response.status_code == 200
    assert response.data == PDF
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment")
    assert "filename*=UTF-8''" + quote("投资协议.pdf") in disposition
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.mimetype == "application/pdf"
    response.close()

    entries = audit("file_downloaded", stored)
    assert [e.user_id for e in entries] == [world.officer_a.id]


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("officer_a", 200),
        ("taskforce_x", 200),
        ("leader", 200),
        ("admin", 200),
        ("officer_b", 404),
        ("taskforce_y", 404),
    ],
)
def test_a_download_is_as_private_as_its_project(world, login, db_session, uploads, who, status):
    stored = attach_agreement(world.project_a, world.officer_a, uploads)
    db_session.commit()
    client = login(getattr(world, who))
    response = client.get(f"/files/{stored.id}")
    assert response.status_code == status
    if status == 200:
        assert response.data == PDF
    else:
        assert PDF not in response.data
        assert audit("file_downloaded", stored) == []
    response.close()


def test_a_missing_file_is_not_found(world, login, db_session):
    client = login(world.admin)
    assert client.get("/files/999999").status_code == 404


@pytest.mark.parametrize(
    ("content", "name"),
    [
        (b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 64, "投资协议.pdf"),
        (b"<!doctype html><html><script>alert(1)</script></html>", "投资协议.pdf"),
        ("这是一份纯文本的投资协议".encode(), "投资协议.pdf"),
        (b"PK\x03\x04not really a zip", "可研报告.docx"),
    ],
    ids=["exe", "html", "text", "broken-zip"],
)
def test_a_forged_type_is_refused_and_nothing_is_stored(
    world, login, db_session, uploads, content, name
):
    db_session.commit()
    client = login(world.officer_a)
    response = upload(client, world.project_a, content, name, follow_redirects=True)
    assert "上传失败：只能上传PDF、图片（PNG/JPG）、Word、Excel文件" in text(response)
    assert stored_files() == []
    assert files_on_disk(uploads) == []


def test_content_that_does_not_match_the_extension_is_refused(world, login, db_session, uploads):
    db_session.commit()
    client = login(world.officer_a)
    response = upload(client, world.project_a, PNG, "投资协议.pdf", follow_redirects=True)
    assert "文件内容与扩展名不符" in text(response)
    response = upload(client, world.project_a, PDF, "投资协议.exe", follow_redirects=True)
    assert "文件内容与扩展名不符" in text(response)
    assert stored_files() == []
    assert files_on_disk(uploads) == []


def test_a_zip_that_is_no_office_document_is_refused(world, login, db_session, uploads):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("payload.exe", b"MZ")
    db_session.commit()
    client = login(world.officer_a)
    response = upload(client, world.project_a, buffer.getvalue(), "可研报告.docx", "FEASIBILITY")
    assert response.status_code in (302, 303)
    assert stored_files() == []


def test_a_word_document_is_accepted(world, login, db_session, uploads):
    client = login(world.officer_a)
    content = docx_bytes()
    response = upload(client, world.project_a, content, "可行性研究报告.docx", "FEASIBILITY")
    assert response.status_code == 302
    [stored] = stored_files()
    assert stored.kind is DocumentKind.FEASIBILITY
    assert stored.original_name == "可行性研究报告.docx"
    assert stored.content_type == (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    )
    assert file_path(stored, uploads).read_bytes() == content


def test_an_image_is_accepted(world, login, db_session):
    client = login(world.taskforce_x)
    assert upload(client, world.project_a, PNG, "现场照片.png", "OTHER").status_code == 302
    [stored] = stored_files()
    assert (stored.content_type, stored.uploaded_by_id) == ("image/png", world.taskforce_x.id)


def test_an_oversize_upload_is_refused(world, login, db_session, uploads, app, monkeypatch):
    monkeypatch.setitem(app.config, "MAX_UPLOAD_BYTES", 1024)
    db_session.commit()
    client = login(world.officer_a)
    big = PDF + b"0" * 2048
    response = upload(client, world.project_a, big, "投资协议.pdf", follow_redirects=True)
    assert "上传失败：文件不能超过" in text(response)
    assert stored_files() == []
    assert files_on_disk(uploads) == []

    small = PDF + b"0" * (1024 - len(PDF))
    assert upload(client, world.project_a, small, "投资协议.pdf").status_code == 302
    assert len(stored_files()) == 1


def test_a_request_above_the_content_length_limit_is_refused(
    world, login, db_session, uploads, app, monkeypatch
):
    db_session.commit()
    client = login(world.officer_a)
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 4096)
    response = upload(client, world.project_a, PDF + b"0" * 8192, "投资协议.pdf")
    assert response.status_code == 413
    assert "上传的文件过大" in text(response)
    assert stored_files() == []
    assert files_on_disk(uploads) == []


def test_an_upload_without_a_file_is_refused(world, login, db_session):
    db_session.commit()
    client = login(world.officer_a)
    response = client.post(
        f"/projects/{world.project_a.id}/documents",
        data={"kind": "AGREEMENT"},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert "请选择要上传的文件" in text(response)
    assert stored_files() == []


@pytest.mark.parametrize(
    ("who", "status"),
    [("leader", 403), ("officer_b", 404), ("taskforce_y", 404)],
)
def test_who_may_not_upload(world, login, db_session, uploads, who, status):
    client = login(getattr(world, who))
    assert upload(client, world.project_a, PDF, "投资协议.pdf").status_code == status
    assert stored_files() == []
    assert files_on_disk(uploads) == []


def test_evidence_cannot_be_uploaded_as_a_project_document(world, login, db_session):
    db_session.commit()
    client = login(world.officer_a)
    upload(client, world.project_a, PDF, "佐证.pdf", "EVIDENCE")
    assert stored_files() == []


# Archiving ---------------------------------------------------------------------------------------


def test_archiving_hides_a_document_but_keeps_its_bytes(world, login, db_session, uploads):
    stored = attach_agreement(world.project_a, world.officer_a, uploads)
    db_session.commit()

    client = login(world.leader)
    assert client.post(f"/files/{stored.id}/archive").status_code == 403
    client = login(world.officer_b)
    assert client.post(f"/files/{stored.id}/archive").status_code == 404
    db_session.expire_all()
    assert stored.is_deleted is False

    client = login(world.officer_a)
    response = client.post(f"/files/{stored.id}/archive", data={"confirm": "y"})
    assert response.status_code == 302
    db_session.expire_all()
    assert stored.is_deleted is True
    page = text(client.get(f"/projects/{world.project_a.id}"))
    assert f"/files/{stored.id}" not in page
    assert "尚未上传文件" in page
    assert client.get(f"/files/{stored.id}").status_code == 404
    assert file_path(stored, uploads).read_bytes() == PDF  # archived, never deleted
    assert audit("file_archived", stored)


# Evidence -----------------------------------------------------------------------------------------


@pytest.fixture
def draft(world, db_session):
    default_template()
    attracting(world.project_a, world.officer_a)
    evaluation = start_evaluation(world.officer_a, world.project_a)
    db_session.commit()
    return evaluation


def upload_evidence(client, evaluation, answer, content=PDF, name="营业执照.pdf"):
    return client.post(
        f"/evaluations/{evaluation.id}/evidence",
        data={"answer_id": str(answer.id), "file": (io.BytesIO(content), name)},
        content_type="multipart/form-data",
    )


def test_evidence_is_attached_to_its_answer_and_listed(world, login, db_session, draft, uploads):
    answer = answer_for(draft, "工商登记与股权结构")
    other = answer_for(draft, "近三年财务状况")
    client = login(world.taskforce_x)
    response = upload_evidence(client, draft, answer)
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/evaluations/{draft.id}#item-{answer.id}")

    db_session.expire_all()
    [stored] = stored_files()
    assert (stored.kind, stored.project_id) == (DocumentKind.EVIDENCE, world.project_a.id)
    assert [f.id for f in answer_for(draft, "工商登记与股权结构").files] == [stored.id]
    assert answer_for(draft, "近三年财务状况").files == []
    assert other.id != answer.id

    page = text(client.get(f"/evaluations/{draft.id}"))
    assert "佐证材料：" in page
    assert f'<a href="/files/{stored.id}">营业执照.pdf</a>' in page
    # Evidence belongs to the evaluation page, not to the project's documents.
    project_page = text(client.get(f"/projects/{world.project_a.id}"))
    assert "营业执照.pdf" not in project_page

    response = client.get(f"/files/{stored.id}")
    assert response.data == PDF
    response.close()
    client = login(world.officer_b)
    assert client.get(f"/files/{stored.id}").status_code == 404

    entries = db_session.scalars(
        sa.select(AuditEntry.action).where(
            AuditEntry.object_type == "evaluations", AuditEntry.object_id == draft.id
        )
    ).all()
    assert "evidence_attached" in entries


def test_forged_evidence_is_refused_with_a_message(world, login, db_session, draft, uploads):
    answer = load_answers(draft)[0]
    client = login(world.officer_a)
    response = upload_evidence(client, draft, answer, b"MZ\x90\x00" + b"\x00" * 64, "执照.pdf")
    assert response.status_code == 400
    assert "只能上传PDF、图片（PNG/JPG）、Word、Excel文件" in text(response)
    assert stored_files() == []
    assert files_on_disk(uploads) == []


def test_evidence_needs_an_answer_of_this_evaluation(world, login, db_session, draft, uploads):
    client = login(world.officer_a)
    response = client.post(
        f"/evaluations/{draft.id}/evidence",
        data={"answer_id": "999999", "file": (io.BytesIO(PDF), "营业执照.pdf")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert stored_files() == []


def test_evidence_a_rule_refuses_after_storing_keeps_no_record(
    world, login, db_session, draft, uploads, monkeypatch
):
    """The file passes its checks, then attaching it is refused (say, the evaluation was
    submitted meanwhile): the refusal is on the page, and the stored file's record and its
    bytes go with it."""

    def refuse(*_args):
        raise ServiceError("评估处于“待决策”状态，不能修改")

    monkeypatch.setattr("crm.evaluation.views.attach_evidence", refuse)
    answer = load_answers(draft)[0]
    response = upload_evidence(login(world.officer_a), draft, answer)
    assert response.status_code == 400
    assert "评估处于“待决策”状态，不能修改" in text(response)
    assert stored_files() == []
    assert files_on_disk(uploads) == []
    assert (
        db_session.scalar(sa.select(AuditEntry.id).where(AuditEntry.action == "file_uploaded"))
        is None
    )


@pytest.mark.parametrize(("who", "status"), [("leader", 403), ("taskforce_y", 404)])
def test_who_may_not_upload_evidence(world, login, db_session, draft, uploads, who, status):
    answer = load_answers(draft)[0]
    client = login(getattr(world, who))
    assert upload_evidence(client, draft, answer).status_code == status
    assert stored_files() == []
    assert files_on_disk(uploads) == []


def test_no_evidence_once_submitted(world, login, db_session, draft, uploads):
    fill_all(draft, world.taskforce_x)
    submit_evaluation(world.taskforce_x, draft)
    db_session.commit()
    assert draft.state is EvaluationState.SUBMITTED
    answer = load_answers(draft)[0]
    client = login(world.officer_a)
    response = upload_evidence(client, draft, answer)
    assert response.status_code == 400
    assert "评估处于“待决策”状态，不能修改" in text(response)
    assert stored_files() == []
    assert files_on_disk(uploads) == []


def test_evidence_of_a_decided_evaluation_cannot_be_archived(
    world, login, db_session, draft, uploads
):
    """A decided evaluation reads as it was decided: its evidence cannot be taken away."""
    answer = answer_for(draft, "工商登记与股权结构")
    client = login(world.officer_a)
    assert upload_evidence(client, draft, answer).status_code == 302
    [stored] = stored_files()
    fill_all(draft, world.taskforce_x)
    submit_evaluation(world.taskforce_x, draft)
    decide(world.leader, draft, DecisionOutcome.PASSED, **decision_values())
    db_session.commit()

    for user in (world.officer_a, world.taskforce_x, world.admin):
        client = login(user)
        response = client.post(f"/files/{stored.id}/archive", follow_redirects=True)
        assert "评估佐证材料随评估存档，不能移除" in text(response)
    db_session.expire_all()
    assert stored.is_deleted is False
    assert [f.id for f in answer_for(draft, "工商登记与股权结构").files] == [stored.id]
    assert "营业执照.pdf" in text(client.get(f"/evaluations/{draft.id}"))


# Old Office formats: told apart by the OLE container's streams, not by the name ------------------


def ole_file(*streams: str, size: int = 4096) -> bytes:
    """A minimal OLE2 compound file (the container of Office 97–2003 files: version 3, 512-byte
    sectors) holding these streams at its root, each `size` zero bytes in regular sectors."""
    end, free, fat_sector, none = 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD, 0xFFFFFFFF
    per_stream = -(-size // 512)
    fat = [fat_sector, end]  # sector 0: this FAT; sector 1: the directory (up to 4 entries)
    assert len(streams) <= 3
    starts = []
    for _ in streams:
        starts.append(len(fat))
        fat += [*range(len(fat) + 1, len(fat) + per_stream), end]
    fat += [free] * (128 - len(fat))
    header = struct.pack(
        "<8s16sHHHHH6sIIIIIIIII",
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
        b"\0" * 16,
        0x3E,  # minor version
        3,  # major version: 512-byte sectors
        0xFFFE,  # little-endian
        9,  # sector shift (512)
        6,  # mini sector shift (64)
        b"\0" * 6,
        0,  # directory sectors (0 in version 3)
        1,  # FAT sectors
        1,  # first directory sector
        0,
        4096,  # mini stream cut-off: our streams are not smaller
        end,  # no mini FAT
        0,
        end,  # no DIFAT sectors
        0,
    ) + struct.pack("<109I", 0, *[free] * 108)

    def entry(name: str, kind: int, child=none, right=none, start=end, length=0) -> bytes:
        encoded = (name + "\0").encode("utf-16-le") if name else b""
        return struct.pack(
            "<64sHBBIII16sIQQIQ",
            encoded, len(encoded), kind, 1, none, right, child, b"\0" * 16, 0, 0, 0, start, length,
        )  # fmt: skip

    entries = [entry("Root Entry", 5, child=1 if streams else none)]
    for i, (name, start) in enumerate(zip(streams, starts, strict=True)):
        right = i + 2 if i + 1 < len(streams) else none  # each sibling to the right of the last
        entries.append(entry(name, 2, right=right, start=start, length=size))
    entries += [entry("", 0)] * (4 - len(entries))
    return header + struct.pack("<128I", *fat) + b"".join(entries) + bytes(512 * (len(fat) - 2))


@pytest.mark.parametrize(
    ("streams", "name", "message"),
    [
        (("Workbook",), "可研报告.doc", "这是Excel 97–2003 表格（.xls）"),
        (("Book",), "可研报告.doc", "这是Excel 97–2003 表格（.xls）"),
        (("\x05SummaryInformation", "WordDocument"), "测算表.xls", "这是Word 97–2003 文档（.doc）"),
    ],
    ids=["excel97-as-doc", "excel95-as-doc", "word-as-xls"],
)
def test_an_old_office_file_under_the_wrong_extension_is_refused(
    world, login, db_session, uploads, streams, name, message
):
    db_session.commit()
    client = login(world.officer_a)
    response = upload(client, world.project_a, ole_file(*streams), name, "FEASIBILITY")
    assert response.status_code == 303
    page = text(client.get(response.headers["Location"]))
    assert f"上传失败：文件内容与扩展名不符：{message}" in page
    assert stored_files() == []
    assert files_on_disk(uploads) == []


@pytest.mark.parametrize(
    ("streams", "name", "mime"),
    [
        (("WordDocument",), "可研报告.doc", "application/msword"),
        (("\x05SummaryInformation", "Workbook"), "投资测算.xls", "application/vnd.ms-excel"),
        (("Book",), "旧版测算.XLS", "application/vnd.ms-excel"),
    ],
)
def test_an_old_office_file_is_accepted_and_served_as_what_it_is(
    world, login, db_session, uploads, streams, name, mime
):
    client = login(world.officer_a)
    content = ole_file(*streams)
    assert upload(client, world.project_a, content, name, "FEASIBILITY").status_code == 302
    [stored] = stored_files()
    assert stored.content_type == mime
    response = client.get(f"/files/{stored.id}")
    assert (response.mimetype, response.data) == (mime, content)
    response.close()


@pytest.mark.parametrize(
    "content",
    [
        ole_file("PowerPoint Document"),  # not among the allowed types
        ole_file("\x05SummaryInformation"),  # an OLE file, but no Office document (an .msi…)
        ole_file("WordDocument")[:700],  # a truncated container
    ],
    ids=["powerpoint", "no-office-stream", "truncated"],
)
def test_an_ole_file_that_is_no_word_or_excel_file_is_refused(
    world, login, db_session, uploads, content
):
    db_session.commit()
    client = login(world.officer_a)
    response = upload(client, world.project_a, content, "可研报告.doc", follow_redirects=True)
    assert "上传失败：只能上传PDF、图片（PNG/JPG）、Word、Excel文件" in text(response)
    assert stored_files() == []
    assert files_on_disk(uploads) == []


# Interrupted uploads: a temporary name until the commit; `crm clean-files` ---------------------


def temporary_files(folder) -> list:
    return sorted(folder.glob(".tmp-*")) if folder.exists() else []


def store(world, uploads, content=PDF, name="投资协议.pdf"):
    return store_file(
        world.officer_a, world.project_a, io.BytesIO(content), name,
        DocumentKind.AGREEMENT, uploads, 10**6,
    )  # fmt: skip


def die_before_the_commit(session) -> None:
    """What a kill -9 leaves: the process's memory of the files it wrote is gone, so nothing
    cleans up after the transaction (which the database rolls back)."""
    session.info.pop(transaction.ON_COMMIT, None)
    session.info.pop(transaction.ON_ROLLBACK, None)


def age(path, hours: float) -> None:
    then = time.time() - hours * 3600
    os.utime(path, (then, then))


def test_until_its_record_is_committed_an_upload_has_only_a_temporary_name(
    world, db_session, uploads
):
    stored = store(world, uploads)
    final = file_path(stored, uploads)
    [temporary] = temporary_files(uploads)
    assert temporary.read_bytes() == PDF
    assert not final.exists()  # a kill -9 now leaves no truncated file under a real name
    db_session.commit()
    assert final.read_bytes() == PDF
    assert temporary_files(uploads) == []
    assert files_on_disk(uploads) == [final]


def test_an_upload_whose_transaction_fails_leaves_nothing(world, db_session, uploads):
    store(world, uploads)
    db_session.rollback()
    assert files_on_disk(uploads) == []


def test_clean_files_removes_what_killed_uploads_left_and_keeps_what_is_owned(
    world, db_session, uploads, runner
):
    owned = attach_agreement(world.project_a, world.officer_a, uploads)
    archived = store(world, uploads, name="旧版协议.pdf")
    archived.is_deleted = True  # removed from the page: its bytes stay for the record
    db_session.commit()
    store(world, uploads, PDF[:10], "被中断的上传.pdf")  # killed: a truncated temporary file
    die_before_the_commit(db_session)
    db_session.rollback()
    [killed] = temporary_files(uploads)
    orphan = uploads / "ab" / ("ab" + "0" * 30)  # bytes whose record is gone
    orphan.parent.mkdir(exist_ok=True)
    orphan.write_bytes(PDF)
    foreign = uploads / "说明.txt"  # not a name the store makes: never touched
    foreign.write_text("backup notes")
    for path in (file_path(owned, uploads), file_path(archived, uploads), killed, orphan, foreign):
        age(path, 25)
    store(world, uploads, PDF, "正在上传.pdf")  # in flight right now: young
    die_before_the_commit(db_session)
    db_session.rollback()
    young = next(p for p in temporary_files(uploads) if p != killed)

    result = runner.invoke(args=["crm", "clean-files", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert f"将删除 {killed}" in result.output and f"将删除 {orphan}" in result.output
    assert killed.exists() and orphan.exists()

    result = runner.invoke(args=["crm", "clean-files", "--grace-hours", "24"])
    assert result.exit_code == 0, result.output
    assert f"已删除 {killed}" in result.output and f"已删除 {orphan}" in result.output
    assert "已删除 2 个文件" in result.output and "1 个未满 24 小时，暂留" in result.output
    assert not killed.exists() and not orphan.exists()
    assert young.exists() and foreign.exists()
    assert file_path(owned, uploads).read_bytes() == PDF
    assert file_path(archived, uploads).read_bytes() == PDF
    [entry] = db_session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "files_cleaned"))
    assert "删除 2 个" in entry.summary
    assert sorted(entry.changes["removed"]) == sorted([killed.name, orphan.name])

    age(young, 25)  # the next day's run
    result = runner.invoke(args=["crm", "clean-files"])
    assert "已删除 1 个文件" in result.output and not young.exists()


def test_clean_files_moves_a_committed_upload_into_place(world, login, db_session, uploads, runner):
    """Killed after the commit but before the rename: the record is there, so are the bytes
    under the temporary name; the clean-up finishes the rename instead of removing them."""
    stored = store(world, uploads)
    die_before_the_commit(db_session)
    db_session.commit()
    [temporary] = temporary_files(uploads)
    age(temporary, 25)
    result = runner.invoke(args=["crm", "clean-files"])
    assert result.exit_code == 0, result.output
    assert f"已归位 {file_path(stored, uploads)}" in result.output
    assert temporary_files(uploads) == []
    response = login(world.officer_a).get(f"/files/{stored.id}")
    assert response.data == PDF
    response.close()
