"""The permission layer (crm/access.py) and the plain values pages get from it."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from crm.access import can_read_project, page_rights, project_scope
from crm.extensions import db
from crm.projects.models import Project
from tests import factories
from tests.evaluation_factories import attracting


def text(response) -> str:
    return response.get_data(as_text=True)


def test_reading_one_project_follows_the_same_rule_as_the_list(world, db_session):
    """can_read_project (one loaded project) and project_scope (SQL) agree, for every role,
    on projects of every 载体 × cluster, and on a deleted one."""
    cross = factories.project(world.carrier_a, world.cluster_y, world.officer_a, world.channel)
    gone = factories.project(world.carrier_b, world.cluster_x, world.officer_b, world.channel)
    gone.is_deleted = True
    db_session.flush()
    projects = [world.project_a, world.project_b, cross, gone]
    users = [
        world.admin,
        world.leader,
        world.officer_a,
        world.officer_b,
        world.taskforce_x,
        world.taskforce_y,
    ]
    for user in users:
        listed = set(
            db.session.scalars(
                sa.select(Project.id).where(
                    project_scope(user), Project.id.in_(p.id for p in projects)
                )
            )
        )
        assert {p.id for p in projects if can_read_project(user, p)} == listed, user.username
    assert not can_read_project(world.admin, gone)


@pytest.mark.parametrize(
    ("who", "administer", "carrier_fixed", "cluster_fixed"),
    [
        ("admin", True, False, False),
        ("leader", False, False, False),
        ("officer_a", False, True, False),
        ("taskforce_x", False, False, True),
    ],
)
def test_pages_get_booleans_for_what_they_offer(
    world, who, administer, carrier_fixed, cluster_fixed
):
    rights = page_rights(getattr(world, who))
    assert (rights.administer, rights.carrier_fixed, rights.cluster_fixed) == (
        administer,
        carrier_fixed,
        cluster_fixed,
    )


def test_no_start_button_while_no_checklist_template_is_configured(world, login, db_session):
    """The project page offers 发起评估 exactly when starting would succeed: without a
    checklist template the start is refused, so the button is not shown."""
    attracting(world.project_a, world.officer_a)
    db_session.commit()
    client = login(world.officer_a)
    assert "发起评估</button>" not in text(client.get(f"/projects/{world.project_a.id}"))
    response = client.post(f"/projects/{world.project_a.id}/evaluations", follow_redirects=True)
    assert "尚未配置评估清单模板" in text(response)


def test_the_admin_pages_of_checklists_and_users_answer_alike(world, login):
    """One admin check: signed out, to the login page; not an admin, 403; an admin, 200."""
    client = login(world.leader)
    for url in ("/admin/users", "/admin/checklists/"):
        assert client.get(url).status_code == 403
    client = login(world.admin)
    for url in ("/admin/users", "/admin/checklists/"):
        assert client.get(url).status_code == 200
    client.post("/logout", data={})
    for url in ("/admin/users", "/admin/checklists/"):
        assert client.get(url).status_code == 302
