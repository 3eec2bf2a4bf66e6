"""Demo data: accounts for every role and about sixty projects at every stage.

Everything is built through the real services (companies, projects, the lifecycle with its
签约 gate: an evaluation the leaders passed and the agreement on file; follow-ups, element
needs, funds), so the history and the audit log are what real use would leave. Afterwards the timestamps of the history rows are moved back so the timeline spans
months of work; stage history stays in order. The audit log keeps the real time of loading.

Names of companies and people are invented. `random.Random(2026)` makes the data the same on
every load (dates are relative to the day it is loaded).
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import sqlalchemy as sa
from flask import current_app

from crm.auth.models import Role, User
from crm.auth.services import create_user
from crm.catalog.models import Carrier, Chain, Channel, Cluster, Department, TerminationReason
from crm.catalog.seed import seed_catalogues
from crm.companies.credit_code import CHARSET, check_character
from crm.companies.models import Company, Contact
from crm.companies.services import add_contact, create_company
from crm.core import LOCAL_TZ, local_today, utcnow
from crm.devdata.demo_data import (
    COMPANIES,
    DEMO_PASSWORD,
    DEMO_USERS,
    GIVEN_NAMES,
    PHONE_PREFIXES,
    POSITIONS,
    PROJECTS,
    STAGE_GAPS,
    SURNAMES,
    VERIFY_NOTES,
    A,
    DemoProject,
    K,
    P,
    S,
    T,
)
from crm.devdata.demo_history import ProjectHistory, round_to
from crm.devdata.demo_tasks import add_demo_tasks
from crm.evaluation.models import (
    Decision,
    Evaluation,
)
from crm.evaluation.seed import seed_default_template
from crm.extensions import db
from crm.projects.conflicts import handover_project
from crm.projects.lifecycle import change_status, move_stage, reject_move, verify_move
from crm.projects.models import (
    Project,
    ProjectConflict,
    StageChange,
)
from crm.projects.registration import create_project
from crm.projects.stages import Stage, Status, Verification


@dataclass
class _Timeline:
    """When things happened to one demo project."""

    moves: list[tuple[Stage | None, Stage, date, str]]  # (from, to, on, reason); first = creation
    last_followup: date
    status_changes: list[tuple[Status, date]] = field(default_factory=list)

    @property
    def created_on(self) -> date:
        return self.moves[0][2]

    def reached(self, stage: Stage) -> date | None:
        return next((on for _f, to, on, _r in self.moves if to is stage), None)

    def stage_on(self, day: date) -> Stage:
        stage = self.moves[0][1]
        for _f, to, on, _r in self.moves:
            if on <= day:
                stage = to
        return stage


class _DemoBuilder(ProjectHistory):
    def __init__(self, rng: random.Random, today: date):
        self.rng = rng
        # 甄别 and 流转 draw from their own sequence, so the rest of the data stays as it was.
        self.check_rng = random.Random(2027)  # noqa: S311 - not for secrets
        self.today = today
        self.now = utcnow()
        self.codes: set[str] = set()
        self.companies: dict[str, Company] = {}
        self.company_dates: dict[str, date] = {}
        self.carriers = {c.name: c for c in db.session.scalars(sa.select(Carrier))}
        self.clusters = {c.name: c for c in db.session.scalars(sa.select(Cluster))}
        self.departments = {d.name: d for d in db.session.scalars(sa.select(Department))}
        self.chains = {(ch.cluster_id, ch.name): ch for ch in db.session.scalars(sa.select(Chain))}
        self.channels = {c.name: c for c in db.session.scalars(sa.select(Channel))}
        self.reasons = {r.name: r for r in db.session.scalars(sa.select(TerminationReason))}
        self.users: dict[str, User] = {}
        self.officers: dict[int, User] = {}  # by carrier id
        self.task_forces: dict[int, User] = {}  # by cluster id
        self.contacts: dict[str, list[Contact]] = {}  # by company key
        # (model, column) → [{"row_id": id, "moment": when}]: timestamps to move back
        self.backdates: defaultdict[tuple[type, str], list[dict]] = defaultdict(list)

    # Helpers ---------------------------------------------------------------------------

    def days_ago(self, least: int, most: int) -> date:
        return self.today - timedelta(days=self.rng.randint(least, most))

    def at(self, day: date, hour: int) -> datetime:
        """A moment of `day` in local time, never later than now."""
        moment = datetime.combine(day, time(hour, self.rng.randint(0, 59)), LOCAL_TZ)
        return min(moment.astimezone(UTC), self.now)

    def person_name(self) -> str:
        return self.rng.choice(SURNAMES) + self.rng.choice(GIVEN_NAMES)

    def phone(self) -> str:
        return self.rng.choice(PHONE_PREFIXES) + f"{self.rng.randint(0, 99999999):08d}"

    def credit_code(self, region: str) -> str:
        """A valid 统一社会信用代码 for an enterprise (登记管理部门 9, 类别 1) in `region`."""
        while True:
            if self.rng.random() < 0.5:  # codes issued since 2015 start with MA
                body = "MA" + "".join(self.rng.choice(CHARSET) for _ in range(6))
            else:
                body = "".join(self.rng.choice("0123456789") for _ in range(8))
            first17 = "91" + region + body + _organization_check(body)
            code = first17 + check_character(first17)
            if code not in self.codes:
                self.codes.add(code)
                return code

    # Building --------------------------------------------------------------------------

    def build(self) -> None:
        self.create_users()
        for spec in PROJECTS:
            self.create_project(spec)
        add_demo_tasks(self.users, self.today, self.backdate)
        self.backdate_companies()
        self.write_backdates()

    def create_users(self) -> None:
        admin = None
        for username, display_name, role, scope in DEMO_USERS:
            user = create_user(
                admin,
                username=username,
                display_name=display_name,
                password=DEMO_PASSWORD,
                enforce_password_policy=False,  # the published demo password
                role=role,
                carrier=self.carriers.get(scope) if role is Role.OFFICER else None,
                cluster=self.clusters.get(scope) if role is Role.TASKFORCE else None,
                department=self.departments.get(scope) if role is Role.DEPARTMENT else None,
                phone=self.phone(),
            )
            admin = admin or user
            self.users[username] = user
        self.officers = {u.carrier_id: u for u in self.users.values() if u.role is Role.OFFICER}
        self.task_forces = {
            u.cluster_id: u for u in self.users.values() if u.role is Role.TASKFORCE
        }

    def company_for(self, key: str, officer: User, created_on: date) -> Company:
        if key in self.companies:
            self.company_dates[key] = min(self.company_dates[key], created_on)
            return self.companies[key]
        name, _short, origin, region, _city, legal_rep, capital, industry = COMPANIES[key]
        company = create_company(
            officer,
            {
                "name": name,
                "credit_code": self.credit_code(region) if region else "",
                "legal_representative": legal_rep,
                "registered_capital": Decimal(capital),
                "origin": origin,
                "industry": industry,
            },
        )
        self.contacts[key] = []
        if self.rng.random() < 0.9:  # most companies have people on record
            self.add_contacts(key, officer, company, legal_rep)
        self.companies[key] = company
        self.company_dates[key] = created_on
        return company

    def add_contacts(self, key: str, officer: User, company: Company, legal_rep: str) -> None:
        people = [(legal_rep, "董事长", "企业决策人，重大事项需其拍板")]
        for position in self.rng.sample(POSITIONS, self.rng.randint(0, 2)):
            people.append((self.person_name(), position, ""))
        if self.rng.random() < 0.6:  # the day-to-day contact
            people.append((self.person_name(), "项目经理", "日常对接人，负责项目选址及手续办理"))
        for i, (name, position, notes) in enumerate(people, 1):
            contact = add_contact(
                officer,
                company,
                {
                    "name": name,
                    "position": position,
                    "phone": self.phone(),
                    "email": f"contact{i}@{key}.example.com",
                    "wechat": f"wx_{key}{self.rng.randint(100, 999)}" if i > 1 else "",
                    "notes": notes,
                },
            )
            self.contacts[key].append(contact)

    def timeline(self, spec: DemoProject) -> _Timeline:
        rng = self.rng
        status_changes: list[tuple[Status, date]] = []
        if spec.dropped or spec.lost or spec.hold:
            effective = self.days_ago(10, 150)
            last_followup = effective
            latest_move = effective - timedelta(days=rng.randint(15, 120))
            to = Status.DROPPED if spec.dropped else Status.LOST if spec.lost else Status.ON_HOLD
            status_changes.append((to, effective))
        elif spec.stale:
            last_followup = self.days_ago(35, 110)
            latest_move = last_followup - timedelta(days=rng.randint(5, 90))
        elif spec.resumed:
            latest_move = self.days_ago(150, 220)
            held = latest_move + timedelta(days=rng.randint(20, 40))
            resumed = held + timedelta(days=rng.randint(30, 60))
            status_changes += [(Status.ON_HOLD, held), (Status.ACTIVE, resumed)]
            last_followup = self.days_ago(0, 10)
        else:
            latest_move = self.days_ago(3, 200)
            last_followup = self.today - timedelta(
                days=rng.randint(0, min(20, (self.today - latest_move).days))
            )

        # The path of stages, oldest first, then its dates counted back from the latest move.
        registered_attracting = spec.stage.order >= 1 and not spec.detour and rng.random() < 0.35
        start = A if registered_attracting else P
        path: list[tuple[Stage | None, Stage, str]] = [(None, start, "")]
        stage = start
        while stage is not spec.stage:
            path.append((stage, stage.next, ""))
            stage = stage.next
            if spec.detour and stage is Stage.ATTRACTING:
                path += [(stage, P, spec.detour), (P, stage, "方案调整完成，重新进入招引")]
        dates = [latest_move]
        for _f, to, reason in reversed(path[1:]):
            least, most = (20, 60) if reason else STAGE_GAPS[to]
            dates.append(dates[-1] - timedelta(days=rng.randint(least, most)))
        dates.reverse()
        moves = [(f, to, on, reason) for (f, to, reason), on in zip(path, dates, strict=True)]
        return _Timeline(moves, last_followup, status_changes)

    def planned_dates(self, timeline: _Timeline) -> dict[str, date]:
        rng, today = self.rng, self.today

        def near(day: date) -> date:
            return day + timedelta(days=rng.randint(-30, 20))

        signed = timeline.reached(S)
        started = timeline.reached(K)
        producing = timeline.reached(T)
        if signed:
            planned_signed = near(signed)
        elif rng.random() < 0.2:  # planned date passed, not signed yet
            planned_signed = self.days_ago(5, 40)
        else:
            planned_signed = today + timedelta(days=rng.randint(20, 200))
        planned_started = (
            near(started) if started else planned_signed + timedelta(days=rng.randint(45, 150))
        )
        planned_producing = (
            near(producing)
            if producing
            else planned_started + timedelta(days=rng.randint(180, 420))
        )
        planned_started = max(planned_started, planned_signed)
        planned_producing = max(planned_producing, planned_started)
        return {
            "planned_signed_on": planned_signed,
            "planned_started_on": planned_started,
            "planned_producing_on": planned_producing,
        }

    def create_project(self, spec: DemoProject) -> Project:
        """One project through the services, its whole history, then its times moved back."""
        carrier = self.carriers[spec.carrier]
        officer = self.officers[carrier.id]
        timeline = self.timeline(spec)
        company = self.company_for(spec.company, officer, timeline.created_on)
        values = self.project_values(spec, carrier, officer, timeline)
        project = create_project(officer, company, values, stage=timeline.moves[0][1])

        # The lifecycle, in order; timestamps are moved back at the end.
        history: list[tuple[object, str, datetime]] = []
        self.move_through(spec, officer, project, timeline, history)
        self.add_records(spec, officer, project, company, timeline, history)
        for conflict in db.session.scalars(
            sa.select(ProjectConflict).where(ProjectConflict.project_id == project.id)
        ):
            history.append((conflict, "detected_at", history[0][2]))
        self.backdate_history(project, history)
        return project

    def project_values(self, spec: DemoProject, carrier, officer, timeline: _Timeline) -> dict:
        """What the project form would be filled with."""
        rng = self.rng
        cluster = self.clusters[spec.cluster]
        output = round_to(spec.total * rng.uniform(0.8, 1.8), 100)
        return {
            "name": spec.name,
            "carrier_id": carrier.id,
            "cluster_id": cluster.id,
            "chain_id": self.chains[cluster.id, spec.chain].id,
            "channel_id": self.channels[spec.channel].id,
            "officer_id": officer.id,
            "is_key": spec.key,
            "total_investment": Decimal(spec.total),
            "fixed_asset_investment": round_to(spec.total * rng.uniform(0.7, 0.92), 100),
            "land_area": Decimal(spec.land) if spec.land else None,
            "expected_output": output,
            "expected_tax": round_to(float(output) * rng.uniform(0.04, 0.08), 10),
            "expected_jobs": max(20, int(round(spec.total / rng.uniform(80, 220), -1))),
            "description": spec.content + "。",
            **self.planned_dates(timeline),
        }

    def move_through(self, spec, officer, project, timeline, history) -> None:
        """The project's moves up to its stage (签约 prepared first), their checks (甄别), its
        open evaluation and its status changes."""
        moves: list[tuple[StageChange, date]] = []
        first = db.session.scalar(
            sa.select(StageChange).where(StageChange.project_id == project.id)
        )
        history.append((first, "changed_at", self.at(timeline.created_on, 9)))
        for _from, to, on, reason in timeline.moves[1:]:
            fields = {}
            if to is S:
                self.prepare_signing(spec, officer, project, timeline, on, history)
                fields = {"signed_amount": Decimal(spec.total), "signed_on": on}
            elif to is K:
                fields = {"started_on": on}
            elif to is T:
                fields = {"producing_on": on}
            change = move_stage(officer, project, to, reason=reason, fields=fields)
            history.append((change, "changed_at", self.at(on, 10)))
            moves.append((change, on))
        self.check_moves(spec, project, timeline, moves, history)
        if spec.evaluation:
            self.open_evaluation(spec, officer, project, timeline, history)
        self.change_statuses(spec, officer, project, timeline, history)

    def add_records(self, spec, officer, project, company, timeline, history) -> None:
        """Follow-ups, element needs (for some projects with land), funds, the hand-over."""
        rng = self.rng
        self.add_followups(spec, officer, project, company, timeline, history)
        if spec.land and (project.stage.order >= 1 or rng.random() < 0.3) and rng.random() < 0.6:
            self.add_element_needs(spec, officer, project, timeline, history)
        if project.stage in (K, T):
            self.add_funds(officer, project, timeline, history)
        if spec.handover:
            self.hand_over(spec, project, timeline, history)

    def backdate_history(self, project: Project, history) -> None:
        """Each history row to its moment; the project to its first and latest."""
        for row, attr, moment in history:
            self.backdate(row, attr, moment)
        self.backdate(project, "created_at", history[0][2])
        self.backdate(project, "updated_at", max(moment for _row, _attr, moment in history))

    # 甄别 (verification) and 流转 (hand-over) ---------------------------------------------------

    def checked_at(self, day: date) -> datetime:
        """A few days after `day`, in the afternoon; never later than now."""
        later = day + timedelta(days=self.check_rng.randint(2, 8))
        moment = datetime.combine(later, time(15, self.check_rng.randint(0, 59)), LOCAL_TZ)
        return min(moment.astimezone(UTC), self.now)

    def check_moves(self, spec, project, timeline, moves, history) -> None:
        """The task force (the admin where the cluster has none) verifies the claimed moves;
        the last one of an `unverified` project waits, that of a `rejected` one is rejected."""
        checker = self.task_forces.get(project.cluster_id) or self.users["admin"]
        waiting = [(c, on) for c, on in moves if c.verification is Verification.PENDING]
        for i, (change, on) in enumerate(waiting):
            last = i == len(waiting) - 1
            if last and spec.unverified:
                continue
            moment = self.checked_at(on)
            if last and spec.rejected:
                back = reject_move(checker, change, spec.rejected)
                history.append((back, "changed_at", moment))
                day = moment.astimezone(LOCAL_TZ).date()
                timeline.moves.append((change.to_stage, back.to_stage, day, spec.rejected))
            else:
                verify_move(checker, change, self.check_rng.choice(VERIFY_NOTES[change.to_stage]))
            history.append((change, "verified_at", moment))

    def hand_over(self, spec, project, timeline, history) -> None:
        """The project offered to another 载体 by a leader, waiting there (待接收)."""
        to_name, reason, sharing = spec.handover
        carrier = self.carriers[to_name]
        handover = handover_project(
            self.users["leader"],
            project,
            carrier,
            self.officers[carrier.id],
            reason,
            sharing,
            loaded_version=project.version,
        )
        day = min(
            timeline.last_followup + timedelta(days=self.check_rng.randint(1, 10)), self.today
        )
        moment = datetime.combine(day, time(11, self.check_rng.randint(0, 59)), LOCAL_TZ)
        history.append((handover, "handed_at", min(moment.astimezone(UTC), self.now)))

    def change_statuses(self, spec, officer, project, timeline, history) -> None:
        for to, on in timeline.status_changes:
            kwargs = {"effective_on": on}
            if to is Status.DROPPED:
                reason_name, text = spec.dropped
                kwargs |= {"reason": text, "termination_reason": self.reasons[reason_name]}
            elif to is Status.LOST:
                lost_to, text = spec.lost
                kwargs |= {"reason": text, "lost_to": lost_to}
            elif to is Status.ON_HOLD:
                kwargs["reason"] = spec.hold or spec.resumed[0]
            else:
                kwargs["reason"] = spec.resumed[1]
            change = change_status(officer, project, to, **kwargs)
            history.append((change, "changed_at", self.at(on, 15)))

    def backdate_companies(self) -> None:
        """Companies, their contacts and the users existed before the first project."""
        for key, company in self.companies.items():
            moment = self.at(self.company_dates[key] - timedelta(days=self.rng.randint(1, 10)), 9)
            self.backdate(company, "created_at", moment)
            self.backdate(company, "updated_at", moment)
            for contact in self.contacts[key]:
                self.backdate(contact, "created_at", moment)
        earliest = min(self.company_dates.values()) - timedelta(days=30)
        for user in self.users.values():
            self.backdate(user, "created_at", self.at(earliest, 9))

    def backdate(self, row, attr: str, moment: datetime) -> None:
        self.backdates[type(row), attr].append({"row_id": row.id, "moment": moment})

    def write_backdates(self) -> None:
        """Move the timestamps back: one UPDATE per table and column, by primary key."""
        for (model, attr), rows in self.backdates.items():
            table = model.__table__
            db.session.execute(
                sa.update(table)
                .where(table.c.id == sa.bindparam("row_id"))
                .values({attr: sa.bindparam("moment")}),
                rows,
            )
        db.session.expire_all()  # the objects in the session still hold the loading time


def _organization_check(body: str) -> str:
    """The check character of an 8-character organization code (GB 11714)."""
    weights = (3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(
        (int(c) if c.isdigit() else ord(c) - 55) * w for c, w in zip(body, weights, strict=True)
    )
    check = 11 - total % 11
    return {10: "X", 11: "0"}.get(check, str(check))


def load_demo() -> bool:
    """Load the demo accounts and projects, unless the demo admin exists; True if loaded.

    Seeds the catalogues first. Flushes, does not commit: the caller commits.
    """
    admin_name = DEMO_USERS[0][0]
    if db.session.scalar(sa.select(User.id).where(User.username == admin_name)):
        return False
    seed_catalogues()
    seed_default_template()
    _DemoBuilder(random.Random(2026), local_today()).build()  # noqa: S311 - not for secrets
    db.session.flush()
    # `decide()` archives nothing (the decision page's hook does): rendering a dossier at each
    # of the ~40 demo decisions would take most of a minute, so the demo archives the latest
    # few only, as they would have been archived when decided.
    if current_app.config["DOSSIER_ARCHIVE"]:
        _archive_latest_decisions(DEMO_ARCHIVED_DOSSIERS)
    _read_all_but_newest(DEMO_UNREAD_NOTIFICATIONS)
    return True


DEMO_UNREAD_NOTIFICATIONS = 5  # per user: a history of months has been read, not the latest


def _read_all_but_newest(keep: int) -> None:
    """Mark each user's notifications read except the newest `keep`."""
    from sqlalchemy.orm import aliased

    from crm.notifications.models import Notification

    newer = aliased(Notification)
    newest = (
        sa.select(newer.id)
        .where(newer.user_id == Notification.user_id)
        .order_by(newer.id.desc())
        .limit(keep)
    )
    db.session.execute(
        sa.update(Notification)
        .where(Notification.read_at.is_(None), Notification.id.not_in(newest))
        .values(read_at=utcnow())
        .execution_options(synchronize_session=False)
    )


DEMO_ARCHIVED_DOSSIERS = 3


def _archive_latest_decisions(count: int) -> None:
    from crm.reports.dossier import archive_dossier

    decisions = db.session.scalars(
        sa.select(Decision).order_by(Decision.decided_at.desc(), Decision.id.desc()).limit(count)
    ).all()
    for decision in decisions:
        evaluation = db.session.get(Evaluation, decision.evaluation_id)
        stored = archive_dossier(decision.decided_by, decision, evaluation)
        stored.uploaded_at = decision.decided_at
    db.session.flush()
