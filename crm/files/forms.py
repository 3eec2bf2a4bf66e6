from __future__ import annotations

from flask_wtf.file import FileField, FileRequired
from wtforms import SelectField

from crm.files.models import DocumentKind
from crm.forms import Form, select_choices

DOCUMENT_KINDS = [k for k in DocumentKind if k not in (DocumentKind.EVIDENCE, DocumentKind.DOSSIER)]


class UploadForm(Form):
    file = FileField("文件", validators=[FileRequired("请选择要上传的文件")])


class DocumentForm(UploadForm):
    kind = SelectField(
        "文件类别", choices=select_choices((k.name, k.label) for k in DOCUMENT_KINDS)
    )
