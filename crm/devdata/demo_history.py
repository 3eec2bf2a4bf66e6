"""The demo's project histories after registration (see `crm.devdata.demo`)."""

from __future__ import annotations

import io
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
from flask import current_app

from crm.companies.models import Origin
from crm.devdata.demo_data import (
    CHECKLIST_COMMENTS,
    CHECKLIST_NOT_APPLICABLE,
    COMPANIES,
    FOLLOWUP_COUNTS,
    FOLLOWUPS,
    FUNDS_NOTES,
    MOSTLY_COMMENTS,
    REJECTED_VETO_COMMENT,
    REJECTED_VETO_ITEM,
    A,
    K,
    S,
    T,
)
from crm.evaluation.models import (
    DecisionOutcome,
    EvaluationAnswer,
    Verdict,
)
from crm.evaluation.services import (
    AnswerInput,
    decide,
    save_answers,
    start_evaluation,
    submit_evaluation,
)
from crm.extensions import db
from crm.files.models import DocumentKind
from crm.files.services import store_file
from crm.projects.models import (
    ElementKind,
    ElementStatus,
    FollowUpKind,
    Project,
)
from crm.projects.records import add_element_need, add_followup, add_funds


class ProjectHistory:
    """What happens to a demo project once registered: the 签约 gate (evaluation and
    agreement), follow-ups, element needs and funds. Mixed into the builder, whose `rng`,
    `at`, `backdate` and catalogues it uses."""

    # Evaluation (measure 22) and the agreement: the 签约 gate -------------------------------

    def evaluate(self, spec, officer, project, days, outcome, opinion, history):
        """Start, fill and submit an evaluation on days[0] and days[1]; with an outcome, the
        leaders decide it on days[2]. The task force fills it (the admin where none exists)."""
        filler = self.task_forces.get(project.cluster_id) or self.users["admin"]
        evaluation = start_evaluation(officer, project)
        answers = db.session.scalars(
            sa.select(EvaluationAnswer)
            .where(EvaluationAnswer.evaluation_id == evaluation.id)
            .order_by(EvaluationAnswer.id)
        ).all()
        given = {a.id: self.answer(spec, a.item, outcome) for a in answers}
        if outcome is None and len(days) < 2:  # a draft: filled in part
            given = dict(list(given.items())[: len(given) // 2])
        save_answers(filler, evaluation, given)
        history.append((evaluation, "created_at", self.at(days[0], 10)))
        for answer in answers:
            if answer.id in given:
                history.append((answer, "updated_at", self.at(days[0], 16)))
        if len(days) < 2:
            return evaluation
        submit_evaluation(filler, evaluation)
        history.append((evaluation, "submitted_at", self.at(days[1], 11)))
        if outcome is None:
            return evaluation
        meeting_on = days[2]
        decision = decide(
            self.users["leader"],
            evaluation,
            outcome,
            meeting_date=meeting_on,
            meeting_name=f"{meeting_on.year}年{meeting_on.month}月市重大招商项目集体决策会",
            participants=(
                f"{self.users['leader'].display_name}（市政府分管领导）、市投资促进中心、"
                f"市发展改革委、市自然资源和规划局、市生态环境局、{spec.cluster}产业专班、"
                f"{spec.carrier}"
            ),
            opinion=opinion,
        )
        history.append((evaluation, "decided_at", self.at(meeting_on, 15)))
        history.append((decision, "decided_at", self.at(meeting_on, 15)))
        return evaluation

    def answer(self, spec, item, outcome) -> AnswerInput:
        rng = self.rng
        overseas = COMPANIES[spec.company][2] is Origin.OVERSEAS
        if item.title in CHECKLIST_NOT_APPLICABLE and not overseas:
            return AnswerInput(Verdict.NOT_APPLICABLE, CHECKLIST_NOT_APPLICABLE[item.title])
        if outcome is DecisionOutcome.REJECTED and item.title == REJECTED_VETO_ITEM:
            return AnswerInput(Verdict.FAILS, REJECTED_VETO_COMMENT, Decimal(0))
        mostly = rng.random() < (0.45 if outcome is DecisionOutcome.REJECTED else 0.2)
        if mostly and not item.is_veto:
            verdict, comment = Verdict.MOSTLY, rng.choice(MOSTLY_COMMENTS)
            factor = rng.choice([0.5, 0.6, 0.7, 0.8])
        else:
            verdict = Verdict.CONFORMS
            comment = CHECKLIST_COMMENTS.get(item.title, "经核查，符合要求。")
            factor = 1.0
        score = None
        if item.max_score is not None:
            score = (item.max_score * Decimal(str(factor))).quantize(Decimal("0.1"))
        return AnswerInput(verdict, comment, score)

    def prepare_signing(self, spec, officer, project, timeline, signed_on, history) -> None:
        """What the 签约 gate asks: a passed evaluation, then the signed agreement on file."""
        rng = self.rng
        attracting = timeline.reached(A)
        started = max(
            attracting + timedelta(days=2), signed_on - timedelta(days=rng.randint(20, 28))
        )
        submitted = started + timedelta(days=rng.randint(4, 8))
        decided = min(submitted + timedelta(days=rng.randint(2, 6)), signed_on)
        self.evaluate(
            spec,
            officer,
            project,
            [started, submitted, decided],
            DecisionOutcome.PASSED,
            "同意签约。请载体按评估意见完善协议条款，落实要素保障。",
            history,
        )
        stored = store_file(
            officer,
            project,
            io.BytesIO(_agreement_pdf(project, signed_on)),
            f"{project.name}投资协议.pdf",
            DocumentKind.AGREEMENT,
            Path(current_app.config["UPLOAD_FOLDER"]),
            current_app.config["MAX_UPLOAD_BYTES"],
        )
        history.append((stored, "uploaded_at", self.at(signed_on, 11)))

    def open_evaluation(self, spec, officer, project, timeline, history) -> None:
        """An evaluation still under way at 招引, or returned, or rejected."""
        rng = self.rng
        end = timeline.status_changes[0][1] if timeline.status_changes else timeline.last_followup
        first = timeline.reached(A) + timedelta(days=1)
        started = min(max(first, end - timedelta(days=rng.randint(12, 25))), end)
        submitted = min(started + timedelta(days=rng.randint(3, 7)), end)
        decided = min(submitted + timedelta(days=rng.randint(2, 5)), end)
        if spec.evaluation == "draft":
            self.evaluate(spec, officer, project, [started], None, "", history)
        elif spec.evaluation == "submitted":
            self.evaluate(spec, officer, project, [started, submitted], None, "", history)
        else:
            outcome = {"returned": DecisionOutcome.RETURNED, "rejected": DecisionOutcome.REJECTED}
            days = [started, submitted, decided]
            self.evaluate(
                spec, officer, project, days, outcome[spec.evaluation], spec.opinion, history
            )

    # Follow-ups, element needs, funds ----------------------------------------------------

    def add_followups(self, spec, officer, project, company, timeline, history) -> None:
        rng = self.rng
        start, end = timeline.created_on, timeline.last_followup
        span = (end - start).days
        count = rng.randint(*FOLLOWUP_COUNTS[project.stage])  # longer history, more contacts
        days = sorted(start + timedelta(days=rng.randint(0, span)) for _ in range(count - 1))
        days.append(end)
        contacts = self.contacts[spec.company]
        short, city = COMPANIES[spec.company][1], COMPANIES[spec.company][4]
        task_force = self.task_forces.get(project.cluster_id)
        used: set[str] = set()
        for i, day in enumerate(days):
            last = i == len(days) - 1
            stage = timeline.stage_on(day)
            choices = [t for t in FOLLOWUPS[stage] if t[1] not in used] or FOLLOWUPS[stage]
            kind, summary, next_action = rng.choice(choices)
            used.add(summary)
            contact = (
                rng.choice(contacts) if contacts and kind is not FollowUpKind.MEETING else None
            )
            due = day + timedelta(days=rng.randint(7, 21))
            if last:
                summary, next_action, due = self.last_followup(spec, summary, next_action, day)
            text = {
                "short": short,
                "city": city,
                "carrier": spec.carrier,
                "cluster": spec.cluster,
                "chain": spec.chain,
                "officer": officer.display_name,
                "contact": f"{contact.position}{contact.name}" if contact else "企业负责人",
                "pct": rng.choice([30, 45, 60, 70, 85]),
            }
            author = (
                task_force
                if task_force and kind is FollowUpKind.MEETING and rng.random() < 0.6
                else officer
            )
            followup = add_followup(
                author,
                project,
                {
                    "kind": kind,
                    "happened_on": day,
                    "summary": summary.format(**text),
                    "next_action": next_action.format(**text),
                    "next_action_due": due if next_action else None,
                },
                [contact] if contact else [],
            )
            history.append((followup, "created_at", self.at(day, 17)))

    def last_followup(self, spec, summary, next_action, day) -> tuple[str, str, date | None]:
        """The latest follow-up sets the project's next action: due this week, overdue, later,
        or none for a project that left 正常."""
        rng, today = self.rng, self.today
        if spec.dropped:
            return f"与企业最终沟通确认：{spec.dropped[1]}，经研判终止项目。", "", None
        if spec.lost:
            return f"获悉企业已落户{spec.lost[0]}，{spec.lost[1]}。", "", None
        if spec.hold:
            return (
                f"{{contact}}告知：{spec.hold}，项目暂缓推进。",
                "保持联系，每季度回访一次",
                day + timedelta(days=90),
            )
        if spec.stale:
            return summary, next_action, day + timedelta(days=rng.randint(7, 20))
        week_end = today + timedelta(days=6 - today.weekday())
        roll = rng.random()
        if roll < 0.35:
            due = today + timedelta(days=rng.randint(0, (week_end - today).days))
        elif roll < 0.5 and day < today:
            due = day + timedelta(days=rng.randint(0, (today - day).days - 1))
        else:
            due = today + timedelta(days=rng.randint(8, 40))
        return summary, next_action, due

    def add_element_needs(self, spec, user, project, timeline, history) -> None:
        rng = self.rng
        if project.stage in (K, T):
            status = ElementStatus.SECURED
        elif project.stage is S:
            status = rng.choice([ElementStatus.CONSULTING, ElementStatus.SECURED])
        else:
            status = rng.choice([ElementStatus.RAISED, ElementStatus.CONSULTING])
        needs = [
            (ElementKind.LAND, Decimal(spec.land), "纳入年度新增建设用地计划统筹保障"),
            (
                ElementKind.ENERGY,
                round_to(spec.total * rng.uniform(0.02, 0.12), 10),
                "需开展固定资产投资项目节能审查",
            ),
            (
                ElementKind.WATER,
                round_to(rng.uniform(5000, 300000), 100),
                "生产及生活用水，接入园区供水管网",
            ),
        ]
        if rng.random() < 0.5:
            needs.append(
                (
                    ElementKind.ENVIRONMENT,
                    round_to(rng.uniform(2, 60), 1),
                    "化学需氧量(COD)排放总量指标",
                )
            )
        if spec.cluster == "文化旅游" or rng.random() < 0.1:
            needs.append(
                (
                    ElementKind.FOREST,
                    round_to(rng.uniform(5, 40), 1),
                    "选址涉及部分林地，需办理使用林地审核",
                )
            )
        on = timeline.reached(A) or timeline.created_on
        for kind, quantity, note in needs:
            need = add_element_need(
                user,
                project,
                {"kind": kind, "quantity": quantity, "status": status, "note": note},
            )
            moment = self.at(on + timedelta(days=rng.randint(1, 20)), 11)
            history.append((need, "updated_at", moment))

    def add_funds(self, user, project, timeline, history) -> None:
        rng = self.rng
        signed_on = timeline.reached(S)
        share = rng.uniform(0.6, 1.0) if project.stage is T else rng.uniform(0.15, 0.6)
        count = rng.randint(3, 6) if project.stage is T else rng.randint(1, 3)
        total = float(project.signed_amount) * share
        weights = [rng.uniform(0.5, 1.5) for _ in range(count)]
        span = (self.today - signed_on).days
        days = sorted(signed_on + timedelta(days=rng.randint(10, max(10, span))) for _ in weights)
        for day, weight in zip(days, weights, strict=True):
            day = min(day, self.today)
            funds = add_funds(
                user,
                project,
                {
                    "received_on": day,
                    "amount": round_to(total * weight / sum(weights), 10),
                    "note": rng.choice(FUNDS_NOTES),
                },
            )
            history.append((funds, "created_at", self.at(day, 16)))


def _agreement_pdf(project: Project, signed_on: date) -> bytes:
    """A one-page placeholder PDF standing in for a signed investment agreement."""
    lines = [
        "DEMO - placeholder for a signed investment agreement",
        f"Project no. {project.id}, signed on {signed_on.isoformat()}",
        f"Agreed investment: {project.signed_amount or project.total_investment} (10k CNY)",
    ]
    text = "".join(
        f"BT /F1 12 Tf 72 {760 - 24 * i} Td ({line}) Tj ET\n" for i, line in enumerate(lines)
    ).encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n%sendstream" % (len(text), text),
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def round_to(value: float, step: int) -> Decimal:
    return Decimal(max(step, round(value / step) * step))
