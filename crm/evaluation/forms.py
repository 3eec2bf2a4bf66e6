"""Evaluation forms. The checklist form is built per evaluation: three fields per answer."""

from __future__ import annotations

from decimal import Decimal

from wtforms import (
    BooleanField,
    DateField,
    FieldList,
    FormField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from crm.core import local_today
from crm.evaluation.models import DecisionOutcome, EvaluationAnswer, Verdict
from crm.evaluation.services import MAX_COMMENT, ItemSpec, SectionSpec
from crm.files.forms import UploadForm
from crm.forms import DecimalField, Form, select_choices, strip

VERDICT_CHOICES = select_choices([("", "未评"), *Verdict.choices()])


def checklist_form(answers: list[EvaluationAnswer], formdata=None) -> Form:
    """A form with `verdict_<id>`, `comment_<id>` and `score_<id>` for every answer."""

    class ChecklistForm(Form):
        pass

    for a in answers:
        setattr(
            ChecklistForm,
            f"verdict_{a.id}",
            SelectField(
                "结论", choices=VERDICT_CHOICES, default=a.verdict.name if a.verdict else ""
            ),
        )
        setattr(
            ChecklistForm,
            f"comment_{a.id}",
            TextAreaField(
                "说明",
                default=a.comment,
                filters=[strip],
                validators=[Length(max=MAX_COMMENT, message=f"说明不能超过 {MAX_COMMENT} 个字符")],
                render_kw={"rows": 1},
            ),
        )
        if a.item.max_score is not None:
            setattr(
                ChecklistForm,
                f"score_{a.id}",
                DecimalField(
                    "得分",
                    places=1,
                    default=a.score,
                    validators=[
                        Optional(),
                        NumberRange(0, a.item.max_score, f"得分应在 0 到 {a.item.max_score} 之间"),
                    ],
                ),
            )
    return ChecklistForm(formdata=formdata)


class DecisionForm(Form):
    outcome = SelectField("决策结果", choices=select_choices(DecisionOutcome.choices()))
    meeting_date = DateField(
        "会议日期", default=local_today, validators=[InputRequired("请填写会议日期")]
    )
    meeting_name = StringField(
        "会议名称或编号",
        filters=[strip],
        validators=[DataRequired("请填写会议名称或编号"), Length(max=200)],
        description="如：市招商引资项目评审会 2026 年第 12 次",
    )
    participants = TextAreaField(
        "参会人员",
        filters=[strip],
        validators=[DataRequired("请填写参会人员"), Length(max=2000)],
        render_kw={"rows": 2},
    )
    opinion = TextAreaField(
        "决策意见", filters=[strip], validators=[Length(max=5000)], description="退回或否决时必填"
    )
    # A decision is never edited: the server refuses it unless this box is ticked.
    confirm = BooleanField(
        "确认记录决策：决策一经记录不能修改",
        validators=[DataRequired("请勾选确认：决策一经记录不能修改")],
    )


class SubmitForm(Form):
    """Submitting freezes the checklist until the leaders decide, and saves only the state:
    the server refuses it unless this box is ticked."""

    confirm = BooleanField(
        "确认提交：提交后在领导决策前不能修改，本页未保存的填写不会随提交保存",
        validators=[
            DataRequired("请勾选确认：提交后不能修改。本页如有未保存的填写，请先保存本页答案")
        ],
    )


class EvidenceForm(UploadForm):
    answer_id = SelectField("所属事项", coerce=int)

    def set_answers(self, answers: list[EvaluationAnswer]) -> EvidenceForm:
        self.answer_id.choices = select_choices(
            (a.id, f"{a.item.section.title} · {a.item.title}") for a in answers
        )
        return self


class TemplateItemForm(Form):
    """One row of the template editor; a row without a title is dropped."""

    class Meta:
        csrf = False

    section = StringField("部分", filters=[strip], validators=[Length(max=100)])
    title = StringField("事项", filters=[strip], validators=[Length(max=200)])
    guidance = TextAreaField(
        "检查要点与佐证材料", filters=[strip], validators=[Length(max=2000)], render_kw={"rows": 2}
    )
    is_veto = BooleanField("一票否决")
    max_score = DecimalField(
        "满分",
        places=1,
        validators=[Optional(), NumberRange(Decimal("0.1"), 1000, "满分应在 0.1 到 1000 之间")],
    )


class TemplateForm(Form):
    items = FieldList(FormField(TemplateItemForm), min_entries=1, max_entries=300)
    change_note = StringField(
        "修订说明",
        filters=[strip],
        validators=[InputRequired("请说明本次修订的内容"), Length(max=500)],
    )


BLANK_ROWS = 3


def specs_to_form_data(sections: list[SectionSpec]) -> dict:
    rows = [
        {
            "section": s.title,
            "title": i.title,
            "guidance": i.guidance,
            "is_veto": i.is_veto,
            "max_score": i.max_score,
        }
        for s in sections
        for i in s.items
    ]
    last = sections[-1].title if sections else ""
    rows += [
        {"section": last, "title": "", "guidance": "", "is_veto": False, "max_score": None}
    ] * BLANK_ROWS
    return {"items": rows, "change_note": ""}


def form_to_specs(form: TemplateForm) -> list[SectionSpec]:
    """Rows grouped into sections in order; a row without a section joins the one above."""
    sections: list[SectionSpec] = []
    for row in form.items:
        data = row.form
        if not data.title.data:
            continue
        title = data.section.data or (sections[-1].title if sections else "未分组")
        if not sections or sections[-1].title != title:
            sections.append(SectionSpec(title))
        sections[-1].items.append(
            ItemSpec(
                data.title.data, data.guidance.data or "", data.is_veto.data, data.max_score.data
            )
        )
    return sections
