from __future__ import annotations

from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, SelectField
from wtforms.validators import DataRequired

from crm.files.models import DocumentKind
from crm.forms import Form, select_choices

DOCUMENT_KINDS = [k for k in DocumentKind if k not in (DocumentKind.EVIDENCE, DocumentKind.DOSSIER)]


class UploadForm(Form):
    file = FileField("文件", validators=[FileRequired("请选择要上传的文件")])


class DocumentForm(UploadForm):
    kind = SelectField(
        "文件类别", choices=select_choices((k.name, k.label) for k in DOCUMENT_KINDS)
    )


class ArchiveForm(Form):
    """Removing a document asks first; the server refuses it unless the box is ticked."""

    confirm = BooleanField(
        "确认移除：该文件将从项目页面移除（文件仍存档，管理员可恢复）",
        validators=[DataRequired("请勾选确认：移除后只有管理员能恢复该文件")],
    )
