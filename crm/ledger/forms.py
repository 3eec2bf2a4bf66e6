from __future__ import annotations

from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField
from wtforms.validators import DataRequired

from crm.forms import Form


class UploadForm(Form):
    file = FileField("台账文件（.xlsx）", validators=[FileRequired("请选择要导入的 .xlsx 文件")])


class ConfirmForm(Form):
    confirm = BooleanField(
        "确认导入：按上表新建和更新项目", validators=[DataRequired("请勾选确认后再导入")]
    )
