"""The access matrix: every route of the app, as every kind of user, with the answer it must give.

`MATRIX` has one row per endpoint: the URL of each of its rules (filled with the objects of the
`objects` fixture) and the expected answer per role for GET and for a POST with an empty body.
A route that has no row fails `test_every_route_has_a_row`, naming it: a new page is not done
until someone has decided who may open it.

The roles, all looking at project A (载体 A, cluster X) and what hangs on it:
- anonymous;
- officer_b: officer of another 载体; taskforce_y: task force of another cluster — the project
  does not exist for them (404), while pages without a record answer by role (403);
- officer_a: the project's own officer; taskforce_x: its cluster's task force;
- leader and admin;
- department: a 部门用户 (市自然资源和规划局), who reads no project and none of what hangs on one
  (404), finds the lists empty and may do none of the project actions.

Besides the answers, the walk checks that no GET changes the database (a fingerprint of every
table before and after each GET; the audit log's records of reading are allowed), and that every
POST route refuses a request without a CSRF token when CSRF protection is on.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from datetime import date

import pytest
import sqlalchemy as sa

import crm.reports.views
from crm.audit.models import AuditEntry
from crm.evaluation.services import start_evaluation
from crm.extensions import db
from crm.files.models import DocumentKind
from crm.files.services import store_file
from crm.notifications.models import NotificationKind
from crm.notifications.services import notify
from crm.projects.models import (
    ConflictBasis,
    ElementKind,
    ElementNeed,
    Handover,
    HandoverState,
    ProjectConflict,
    StageChange,
)
from crm.projects.stages import Stage, Verification
from crm.tasks.services import create_task
from crm.workdays.models import DayKind
from crm.workdays.services import add_day
from tests import factories
from tests.evaluation_factories import PDF, attracting, default_template

LOGIN = "login"  # 302 to the login page
HOME = "home"  # 302 to the home page
BACK = "back"  # 302 back to a page of the app (an action refused with a message, or done)

ROLES = (
    "anonymous",
    "officer_b",
    "taskforce_y",
    "officer_a",
    "taskforce_x",
    "leader",
    "admin",
    "department",
)
SIGNED_IN = ROLES[1:]

# A POST "with an empty form": a body without any of the form's fields. (A body with nothing
# at all would make Flask-WTF fall back to the record's current values on edit forms.)
EMPTY_FORM = {"matrix": ""}

# Audit entries a GET may write: records of reading and of refusals, not changes.
READ_EVENTS = {
    "permission_denied",
    "file_downloaded",
    "dossier_downloaded",
    "audit_exported",
    "ledger_exported",
}


def _answers(default, **by_role) -> dict[str, object]:
    """Expected answers: anonymous → login page, every other role → `default` unless named."""
    answers = dict.fromkeys(ROLES, default)
    answers["anonymous"] = LOGIN
    answers.update(by_role)
    return answers


def everyone(default=200, **by_role):
    return _answers(default, **by_role)


# The project and what hangs on it: hidden from officer_b, taskforce_y and the department user.
def on_project(default, **by_role):
    return _answers(default, officer_b=404, taskforce_y=404, department=404, **by_role)


# A project of 载体 A offered to 载体 B: officer_b may open it (to accept or decline).
def offered_project(default, **by_role):
    return _answers(default, taskforce_y=404, department=404, **by_role)


def admin_only(admin):
    return _answers(403, admin=admin)


def importers(answer):
    """The ledger import: officers (into their own 载体) and admins."""
    return _answers(403, officer_a=answer, officer_b=answer, admin=answer)


@dataclass
class Row:
    urls: list[str]  # one per rule of the endpoint, with {placeholders} from `objects`
    get: dict[str, object] | None = None
    post: dict[str, object] | None = None
    # POSTs that act at once (no form to fill): they run on objects of their own, last.
    destructive: bool = False
    # Edit forms of these URLs keep the record's values for fields a POST leaves out (WTForms
    # fills them from the object): an empty form saves the record unchanged, and the answer
    # for a role that may edit is BACK, not 400.
    resaves: set[str] = field(default_factory=set)


# fmt: off
MATRIX: dict[str, Row] = {
    # ---- signing in and out, the own account ----
    "auth.login": Row(
        ["/login"],
        get=everyone(HOME, anonymous=200),
        post=everyone(HOME, anonymous=200),  # the form again, with its messages
    ),
    "auth.logout": Row(
        ["/logout"],
        get=everyone(200),  # asks for confirmation
        post=everyone(LOGIN),  # signs out (walked last)
        destructive=True,
    ),
    "auth.change_password": Row(["/account/password"], get=everyone(200), post=everyone(400)),
    "auth.own_email": Row(
        ["/account/email"], get=everyone(200), post=everyone(BACK), resaves={"/account/email"}
    ),
    # ---- home, health ----
    "main.home": Row(["/"], get=everyone(200)),
    "main.healthz": Row(["/healthz"], get=everyone(200, anonymous=200)),
    "main.favicon": Row(["/favicon.ico"], get=everyone(200, anonymous=200)),
    # ---- projects ----
    "projects.index": Row(["/projects/"], get=everyone(200)),
    "projects.new": Row(
        ["/projects/new?company={company}"],
        get=everyone(403, officer_a=200, admin=200, officer_b=404),
        post=everyone(403, officer_a=400, admin=400, officer_b=404),
    ),
    "projects.detail": Row(["/projects/{project}"], get=on_project(200)),
    "projects.edit": Row(
        ["/projects/{project}/edit"],
        get=on_project(403, officer_a=200, admin=200),
        post=on_project(403, officer_a=400, admin=400),
    ),
    "projects.move_stage": Row(
        ["/projects/{project}/stage"], post=on_project(403, officer_a=400, admin=400)
    ),
    "projects.change_status": Row(
        ["/projects/{project}/status"], post=on_project(403, officer_a=400, admin=400)
    ),
    "projects.new_followup": Row(
        ["/projects/{project}/followups"],
        post=on_project(400, leader=403),
    ),
    "projects.new_element": Row(
        ["/projects/{project}/elements"], post=on_project(400, leader=403)
    ),
    "projects.update_element": Row(
        ["/projects/{project}/elements/{need}"], post=on_project(400, leader=403)
    ),
    "projects.new_funds": Row(
        ["/projects/{project}/funds"], post=on_project(403, officer_a=400, admin=400)
    ),
    "reports.project_dossier": Row(["/projects/{project}/dossier.pdf"], get=on_project(200)),
    # ---- companies and contacts ----
    "companies.index": Row(["/companies/"], get=everyone(200)),
    "companies.new": Row(
        ["/companies/new"],
        get=everyone(403, officer_a=200, officer_b=200, admin=200),
        post=everyone(403, officer_a=400, officer_b=400, admin=400),
    ),
    "companies.detail": Row(["/companies/{company}"], get=on_project(200)),
    "companies.edit": Row(
        ["/companies/{company}/edit"],
        get=on_project(403, officer_a=200, admin=200),
        post=on_project(403, officer_a=400, admin=400),
    ),
    "companies.contact_form": Row(
        ["/companies/{company}/contacts/new", "/companies/{company}/contacts/{contact}/edit"],
        get=on_project(403, officer_a=200, admin=200),
        post=on_project(403, officer_a=400, admin=400),
        resaves={"/companies/{company}/contacts/{contact}/edit"},
    ),
    "companies.merge": Row(["/companies/merge"], get=admin_only(200), post=admin_only(400)),
    "companies.contact_archive": Row(
        ["/companies/{company}/contacts/{spare_contact}/archive"],
        post=on_project(403, officer_a=BACK, admin=BACK),  # archived at once (not deleted)
        destructive=True,
    ),
    # ---- documents ----
    "files.download": Row(["/files/{file}"], get=on_project(200)),
    "files.upload_document": Row(
        ["/projects/{project}/documents"],
        # no file: refused with a message on the project page
        post=on_project(403, officer_a=BACK, taskforce_x=BACK, admin=BACK),
    ),
    "files.archive": Row(
        ["/files/{spare_file}/archive"],
        get=on_project(403, officer_a=200, taskforce_x=200, admin=200),  # asks first
        post=on_project(403, officer_a=400, taskforce_x=400, admin=400),  # box not ticked
    ),
    "files.restore": Row(
        ["/files/{spare_file}/restore"],
        post=on_project(403, admin=BACK),  # not removed: refused with a message
    ),
    # ---- evaluations (措施二十二) ----
    "evaluation.queue": Row(["/evaluations/"], get=everyone(200)),
    "evaluation.start": Row(
        ["/projects/{project}/evaluations"],
        # one is open already: refused with a message on the project page
        post=on_project(403, officer_a=BACK, admin=BACK),
    ),
    "evaluation.detail": Row(["/evaluations/{evaluation}"], get=on_project(200)),
    "evaluation.save": Row(
        ["/evaluations/{evaluation}/answers"],
        # every answer is optional until submission: nothing given, nothing changed
        post=on_project(403, officer_a=BACK, taskforce_x=BACK, admin=BACK),
    ),
    "evaluation.upload_evidence": Row(
        ["/evaluations/{evaluation}/evidence"],
        post=on_project(403, officer_a=400, taskforce_x=400, admin=400),
    ),
    "evaluation.submit": Row(
        ["/evaluations/{evaluation}/submit"],
        post=on_project(403, taskforce_x=400, admin=400),  # items still without verdict
    ),
    "evaluation.decision": Row(
        ["/evaluations/{evaluation}/decision"], post=on_project(403, leader=400)
    ),
    "evaluation.templates": Row(["/admin/checklists/"], get=admin_only(200)),
    "evaluation.template_version": Row(
        ["/admin/checklists/{template}"], get=admin_only(200), post=admin_only(400)
    ),
    # ---- administration ----
    "admin.users": Row(["/admin/users"], get=admin_only(200)),
    "admin.user_new": Row(["/admin/users/new"], get=admin_only(200), post=admin_only(400)),
    "admin.user_edit": Row(
        ["/admin/users/{user}/edit"], get=admin_only(200), post=admin_only(400)
    ),
    "admin.jobs": Row(["/admin/jobs"], get=admin_only(200)),
    "admin.catalog": Row(["/admin/catalog/carriers/"], get=admin_only(200)),
    "admin.catalog_new": Row(
        ["/admin/catalog/carriers/new"], get=admin_only(200), post=admin_only(400)
    ),
    "admin.catalog_edit": Row(
        ["/admin/catalog/carriers/{carrier}/edit"],
        get=admin_only(200),
        post=admin_only(400),
        resaves={"/admin/catalog/carriers/{carrier}/edit"},
    ),
    "workdays.index": Row(["/admin/workdays/"], get=admin_only(200), post=admin_only(400)),
    "workdays.delete": Row(
        ["/admin/workdays/{calendar_day}/delete"],
        get=admin_only(200),  # asks first
        post=admin_only(400),  # box not ticked
    ),
    # ---- dashboard, ledger, conflicts, 甄别 and 流转 ----
    "dashboard.index": Row(["/dashboard/"], get=everyone(200)),
    "ledger.export": Row(["/ledger/export"], get=everyone(200)),
    "ledger.template": Row(["/ledger/template"], get=importers(200)),
    "ledger.upload": Row(["/ledger/import"], get=importers(200), post=importers(400)),
    # an unknown or expired import: back to the upload page with a message
    "ledger.preview": Row(["/ledger/import/{token}"], get=importers(BACK)),
    "ledger.confirm": Row(["/ledger/import/{token}"], post=importers(BACK)),
    "conflicts.conflicts": Row(["/conflicts/"], get=everyone(200)),
    "conflicts.resolve": Row(
        ["/conflicts/{conflict}/resolve"],
        # the conflict pairs project A with project B: both sides see it; officers may not
        # resolve it; the note is required, so the form comes back with its message
        post=everyone(400, officer_a=403, officer_b=403, department=404),
    ),
    "projects.verify_move": Row(
        ["/projects/{project}/moves/{move}/verify"],
        post=on_project(403, taskforce_x=BACK, admin=BACK),
        destructive=True,
    ),
    "projects.reject_move": Row(
        ["/projects/{project}/moves/{move}/reject"],
        post=on_project(403, taskforce_x=400, admin=400),  # a reason is required
    ),
    "projects.handover": Row(
        ["/projects/{project}/handover"],
        post=on_project(403, taskforce_x=400, leader=400, admin=400),
    ),
    # A project of 载体 A offered to 载体 B (待接收): officer_b, of the receiving 载体, may open
    # it to accept (naming the 责任人) or decline (with a reason); the sender withdraws.
    "projects.accept_handover": Row(
        ["/projects/{offered}/handovers/{handover}/accept"],
        post=offered_project(400, officer_a=403),
    ),
    "projects.decline_handover": Row(
        ["/projects/{offered}/handovers/{handover}/decline"],
        post=offered_project(400, officer_a=403),
    ),
    "projects.withdraw_handover": Row(
        ["/projects/{offered}/handovers/{handover}/withdraw"],
        post=offered_project(403, taskforce_x=BACK, leader=BACK, admin=BACK),
        destructive=True,
    ),
    # ---- 待办: notifications ----
    "notifications.index": Row(["/notifications/"], get=everyone(200)),
    "notifications.open_": Row(
        ["/notifications/{notification}/open"],
        # officer_a's own notification: read, then its project; nobody else's
        post=_answers(404, officer_a=BACK),
    ),
    "notifications.read_all": Row(["/notifications/read-all"], post=everyone(BACK)),
    # ---- tasks (任务): a task of project A, given by officer_a to taskforce_x ----
    "tasks.index": Row(["/tasks/"], get=everyone(200)),
    "tasks.new": Row(
        ["/projects/{project}/tasks/new"],
        get=on_project(200),  # anyone who reads the project may give a task on it
        post=on_project(400),  # no title, no due date, no assignee
    ),
    "tasks.detail": Row(["/tasks/{task}"], get=on_project(200)),
    "tasks.complete": Row(
        ["/tasks/{task}/complete"], post=on_project(403, taskforce_x=400)  # not confirmed
    ),
    "tasks.cancel": Row(
        ["/tasks/{task}/cancel"], post=on_project(403, officer_a=400, admin=400)  # no reason
    ),
    "admin.audit": Row(["/admin/audit"], get=admin_only(200)),
    "admin.audit_export": Row(["/admin/audit/export.csv"], get=admin_only(200)),
}
# fmt: on


@pytest.fixture(autouse=True)
def uploads(app, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "UPLOAD_FOLDER", str(tmp_path / "uploads"))
    return tmp_path / "uploads"


@pytest.fixture(autouse=True)
def quick_pdf(monkeypatch):
    """The dossier's access is what is walked here, not its rendering (tests/test_reports.py)."""
    monkeypatch.setattr(crm.reports.views, "render_dossier", lambda dossier: PDF)


@pytest.fixture
def objects(world, db_session, uploads) -> dict[str, int]:
    """Project A in 招引 with an open evaluation, a document, a contact and an element need; a
    spare contact and document for the routes that archive at once."""
    project = world.project_a
    default_template()
    attracting(project, world.officer_a)
    evaluation = start_evaluation(world.officer_a, project)

    def document(name: str) -> int:
        stored = store_file(
            world.officer_a, project, io.BytesIO(PDF), name, DocumentKind.AGREEMENT, uploads, 10**6
        )
        return stored.id

    need = ElementNeed(project_id=project.id, kind=ElementKind.LAND, quantity=100, unit="亩")
    db_session.add(need)
    db_session.flush()
    ids = {
        "project": project.id,
        "company": project.company_id,
        "contact": factories.contact(project.company).id,
        "spare_contact": factories.contact(project.company).id,
        "need": need.id,
        "file": document("投资协议.pdf"),
        "spare_file": document("旧版协议.pdf"),
        "evaluation": evaluation.id,
        "template": evaluation.template_id,
        "user": world.officer_b.id,
        "carrier": world.carrier_b.id,
        "token": "0" * 32,
        "move": pending_move(project, world.officer_a),
        "conflict": conflict_between(world.project_a, world.project_b),
        **offered(world),
        "notification": notify(
            NotificationKind.TASK_ASSIGNED,
            [world.officer_a],
            project=project,
            actor=None,
            text="矩阵通知",
            url=f"/projects/{project.id}",
        )[0].id,
        "task": a_task(world),
        "calendar_day": add_day(world.admin, date(2027, 2, 6), DayKind.REST, "春节").id,
    }
    db_session.commit()
    return ids


def a_task(world) -> int:
    task = create_task(
        world.officer_a,
        world.project_a,
        {"title": "报送项目专报", "due_on": factories.today(), "assignee": world.taskforce_x},
    )
    return task.id


def pending_move(project, officer) -> int:
    """A claimed 签约 waiting for the task force's 甄别 (the project itself stays in 招引)."""
    change = StageChange(
        project_id=project.id,
        from_stage=Stage.ATTRACTING,
        to_stage=Stage.SIGNED,
        changed_by_id=officer.id,
        verification=Verification.PENDING,
    )
    db.session.add(change)
    db.session.flush()
    return change.id


def offered(world) -> dict[str, int]:
    """Another project of 载体 A (cluster X), offered to 载体 B and waiting (待接收)."""
    project = factories.project(world.carrier_a, world.cluster_x, world.officer_a, world.channel)
    handover = Handover(
        project_id=project.id,
        from_carrier_id=world.carrier_a.id,
        to_carrier_id=world.carrier_b.id,
        reason="选址调整",
        handed_by_id=world.taskforce_x.id,
        from_officer_id=world.officer_a.id,
        proposed_officer_id=world.officer_b.id,
        state=HandoverState.PENDING,
    )
    db.session.add(handover)
    db.session.flush()
    return {"offered": project.id, "handover": handover.id}


def conflict_between(project, other) -> int:
    conflict = ProjectConflict(
        project_id=project.id, other_project_id=other.id, basis=ConflictBasis.NAME
    )
    db.session.add(conflict)
    db.session.flush()
    return conflict.id


def _rules(app) -> list:
    return [r for r in app.url_map.iter_rules() if r.endpoint != "static"]


def test_every_route_has_a_row(app):
    missing = sorted({r.endpoint for r in _rules(app)} - MATRIX.keys())
    assert missing == [], f"routes without a row in the access matrix: {missing}"


def test_every_rule_of_every_row_is_walked(app):
    adapter = app.url_map.bind("localhost")
    ids = dict.fromkeys(
        ["project", "company", "contact", "spare_contact", "need", "file", "spare_file"], 1
    ) | dict.fromkeys(
        [
            "evaluation",
            "template",
            "user",
            "carrier",
            "move",
            "conflict",
            "notification",
            "offered",
            "handover",
            "task",
            "calendar_day",
        ],
        1,
    )
    ids["token"] = "0" * 32
    walked = set()
    for endpoint, row in MATRIX.items():
        for url in row.urls:
            method = "GET" if row.get is not None else "POST"
            path = url.format(**ids).split("?")[0]
            rule, _ = adapter.match(path, method=method, return_rule=True)
            assert rule.endpoint == endpoint, (url, rule.endpoint)
            walked.add(rule.rule)
        methods = set().union(*(r.methods for r in _rules(app) if r.endpoint == endpoint))
        assert (row.get is not None) == ("GET" in methods), endpoint
        assert (row.post is not None) == ("POST" in methods), endpoint
    assert {r.rule for r in _rules(app) if r.endpoint in MATRIX} == walked


def _fingerprint() -> dict[str, str]:
    """A digest of every table's content; of the audit log, only the entries that are not
    records of reading."""
    prints = {}
    for table in db.metadata.sorted_tables:
        stmt = sa.select(table)
        if table.name == AuditEntry.__tablename__:
            stmt = stmt.where(table.c.action.not_in(READ_EVENTS))
        rows = db.session.execute(stmt.order_by(*table.primary_key.columns)).all()
        prints[table.name] = hashlib.sha256(repr(rows).encode()).hexdigest()
    return prints


def _answer(response) -> object:
    if response.status_code != 302:
        return response.status_code
    location = response.headers["Location"]
    if location.startswith("/login"):
        return LOGIN
    if location == "/":
        return HOME
    return BACK


def _requests() -> list[tuple[str, str, str, bool]]:
    """(endpoint, method, url, destructive): GETs first, then POSTs, destructive ones last and
    signing out at the very end."""
    plan = []
    for endpoint, row in MATRIX.items():
        for url in row.urls:
            if row.get is not None:
                plan.append((endpoint, "GET", url, False))
            if row.post is not None:
                plan.append((endpoint, "POST", url, row.destructive))
    return sorted(
        plan,
        key=lambda p: (p[1] == "POST", p[3], p[0] == "auth.logout"),
    )


@pytest.mark.parametrize("role", ROLES)
def test_the_access_matrix(app, world, objects, client, login, db_session, role):
    if role != "anonymous":
        login(getattr(world, role))
    wrong, changed_by_get = [], []
    for endpoint, method, url, _ in _requests():
        if endpoint not in MATRIX:
            continue
        row = MATRIX[endpoint]
        expected = (row.get if method == "GET" else row.post)[role]
        if method == "POST" and url in row.resaves and expected == 400:
            expected = BACK
        target = url.format(**objects)
        before = _fingerprint() if method == "GET" else None
        response = client.open(target, method=method, data=EMPTY_FORM if method == "POST" else None)
        db_session.expire_all()
        got = _answer(response)
        if got != expected:
            wrong.append(f"{method} {target} ({endpoint}): expected {expected}, got {got}")
        if before is not None and (after := _fingerprint()) != before:
            tables = sorted(k for k in before if before[k] != after[k])
            changed_by_get.append(f"GET {target} changed {tables}")
        assert got != 500, f"{method} {target}: 500"
    assert wrong == [], "\n".join(wrong)
    assert changed_by_get == [], "\n".join(changed_by_get)


@pytest.mark.parametrize("role", ["anonymous", "admin", "officer_a"])
def test_every_post_needs_a_csrf_token(
    app, world, objects, login, client, db_session, role, monkeypatch
):
    if role != "anonymous":
        login(getattr(world, role))
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    before = _fingerprint()
    refused = []
    for endpoint, method, url, _ in _requests():
        if method != "POST":
            continue
        response = client.post(url.format(**objects), data={"csrf_token": "forged"})
        if response.status_code != 400 or "页面已过期" not in response.get_data(as_text=True):
            refused.append(f"{url} ({endpoint}): {response.status_code}")
        response = client.post(url.format(**objects), data={})
        if response.status_code != 400:
            refused.append(f"{url} ({endpoint}) without a token: {response.status_code}")
    assert refused == [], "\n".join(refused)
    db_session.expire_all()
    after = _fingerprint()
    assert [k for k in before if before[k] != after[k]] == []


def test_a_valid_csrf_token_is_accepted(app, world, client, monkeypatch):
    """The other side: with CSRF on, the real forms work."""
    import re

    from flask import g

    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    response = client.post(
        "/login",
        data={"username": "officer_a", "password": factories.PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 302
    # Flask-WTF keeps the token of a request in `g`, which the test's app context keeps alive
    # across requests; in a server each request has its own.
    g.pop("csrf_token", None)
    page = client.get(f"/projects/{world.project_a.id}").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = client.post(
        f"/projects/{world.project_a.id}/followups",
        data={
            "csrf_token": token,
            "kind": "VISIT",
            "happened_on": factories.today().isoformat(),
            "summary": "带令牌的跟踪记录",
        },
    )
    assert response.status_code == 302


# Fields a form does not offer change nothing ------------------------------------------------------

SMUGGLED = {
    "stage": "PRODUCING",
    "status": "LOST",
    "is_deleted": "y",
    "company_id": "999",
    "registered_by_carrier_id": "999",
    "created_by_id": "1",
    "officer": "1",
    "role": "ADMIN",
    "session_version": "0",
    "must_change_password": "",
    "password_hash": "x",
    "locked_until": "",
}


def test_fields_a_form_does_not_offer_change_nothing(world, login, db_session):
    from crm.auth.models import Role, User
    from crm.companies.models import Company
    from crm.projects.models import Project
    from crm.projects.stages import Stage, Status
    from tests.test_projects import edit_form

    project, officer = world.project_a, world.officer_a
    client = login(officer)
    data = edit_form(world, project, name="新名称") | SMUGGLED
    data["carrier_id"] = world.carrier_b.id  # an officer keeps the project in its 载体
    assert client.post(f"/projects/{project.id}/edit", data=data).status_code == 302
    company = {"name": "改名企业有限公司", "origin": "IN_PROVINCE"} | SMUGGLED
    assert client.post(f"/companies/{project.company_id}/edit", data=company).status_code == 302
    followup = {"kind": "VISIT", "happened_on": factories.today().isoformat(), "summary": "走访"}
    response = client.post(f"/projects/{project.id}/followups", data=followup | SMUGGLED)
    assert response.status_code == 302
    password = {
        "current_password": factories.PASSWORD,
        "password": "Zhen!Ming-2026",
        "password_confirm": "Zhen!Ming-2026",
    }
    assert client.post("/account/password", data=password | SMUGGLED).status_code == 302
    db_session.expire_all()

    project = db_session.get(Project, project.id)
    assert project.name == "新名称"
    assert (project.stage, project.status, project.is_deleted) == (
        Stage.PLANNED,
        Status.ACTIVE,
        False,
    )
    company_id = world.project_a.company_id
    assert (project.carrier_id, project.company_id) == (world.carrier_a.id, company_id)
    company_row = db_session.get(Company, company_id)
    assert company_row.name == "改名企业有限公司"
    assert not company_row.is_deleted and company_row.registered_by_carrier_id != 999
    user = db_session.get(User, officer.id)
    assert user.role is Role.OFFICER and user.session_version >= 1
    assert user.password_hash != "x"
