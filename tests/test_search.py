"""The text search of the project list (crm/projects/search.py): names of projects and their
companies, whatever the case or the width of the letters, kept up to date on every rename."""

from __future__ import annotations

import re

import sqlalchemy as sa

from crm.companies.services import update_company
from crm.devdata.generate import generate
from crm.extensions import db
from crm.projects.models import Project
from crm.projects.search import search_text
from tests import factories


def text(response) -> str:
    return response.get_data(as_text=True)


def listed(client, query: str) -> tuple[int, str]:
    """The total the list announces for `query`, and its HTML."""
    html = text(client.get("/projects/?q=" + query))
    found = re.search(r"共\s*(\d+)\s*条", html)
    return (int(found.group(1)) if found else 0), html


def make(world, name: str, company_name: str) -> Project:
    return factories.project(
        world.carrier_a,
        world.cluster_x,
        world.officer_a,
        company_=factories.company(name=company_name),
        name=name,
    )


def test_case_and_full_width_letters_do_not_matter(world, login, db_session):
    make(world, "ABC光伏组件项目", "某某有限公司")
    db_session.commit()
    client = login(world.admin)
    for query in ("abc光伏", "ＡＢＣ", "Abc"):
        total, html = listed(client, query)
        assert total == 1 and "ABC光伏组件项目" in html, query


def test_a_query_never_spans_the_project_and_the_company(world, login, db_session):
    make(world, "储能电站项目甲", "乙方科技有限公司")
    db_session.commit()
    client = login(world.admin)
    assert listed(client, "项目甲")[0] == 1
    assert listed(client, "乙方科技")[0] == 1
    assert listed(client, "甲乙方")[0] == 0


def test_renaming_the_company_or_the_project_is_searched_at_once(world, login, db_session):
    project = make(world, "旧名称项目", "星河旧名有限公司")
    db_session.commit()
    client = login(world.admin)
    update_company(world.admin, project.company, {"name": "银河新名有限公司"})
    project.name = "新名称项目"
    db_session.commit()
    assert listed(client, "银河新名")[0] == 1
    assert listed(client, "星河旧名")[0] == 0
    assert listed(client, "新名称项目")[0] == 1
    assert listed(client, "旧名称项目")[0] == 0


def test_the_total_and_the_pages_of_a_search_agree(world, login, db_session, app, monkeypatch):
    for n in range(5):
        make(world, f"分页搜索项目{n}", f"分页企业{n}有限公司")
    db_session.commit()
    monkeypatch.setitem(app.config, "PAGE_SIZE", 2)
    client = login(world.admin)
    seen = []
    for page in (1, 2, 3):
        html = text(client.get(f"/projects/?q=分页搜索&sort=name&page={page}"))
        assert re.search(r"共\s*5\s*条", html), page
        seen += re.findall(r"分页搜索项目\d", html)
    assert sorted(set(seen)) == [f"分页搜索项目{n}" for n in range(5)]
    # Past the last page: no rows, and the total still right.
    html = text(client.get("/projects/?q=分页搜索&page=9"))
    assert "第 9 页没有项目（共 5 条）" in html and "回到第 1 页" in html
    assert "分页搜索项目" not in html


def test_generated_projects_are_searchable(db_session):
    generate(10, seed=5)
    for project in db.session.scalars(sa.select(Project)):
        assert project.search_text == search_text(project.name, project.company.name)
