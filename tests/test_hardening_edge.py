"""The app's edge (issue 14): a locked database, a database that is down, an overlong search
or address, the favicon. Each answers with the app's own page and a status code that says
what happened, never a bare 500 or 414."""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path

import pytest

from crm.projects.filters import SEARCH_MAX_CHARS
from tests import factories
from tests.conftest import PASSWORD, Client
from tests.test_evaluation import committed_database, sessions_on

ON_POSTGRESQL = bool(os.environ.get("CRM_TEST_DATABASE_URL"))


def text(response) -> str:
    return response.get_data(as_text=True)


# A locked database -------------------------------------------------------------------------------


@pytest.mark.skipif(ON_POSTGRESQL, reason="SQLite's write lock")
def test_a_locked_database_gives_a_signed_in_user_the_busy_page(app, tmp_path, monkeypatch):
    """Another connection holds SQLite's write lock longer than the busy timeout. The request's
    first statement (loading the signed-in user, in BEGIN IMMEDIATE) fails; the error page must
    not load the user again, which would wait on the same lock and fail inside the handler."""
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)
    monkeypatch.setitem(app.config, "SQLITE_BUSY_TIMEOUT_MS", 100)
    with committed_database(tmp_path) as engine, sessions_on(engine) as session:
        world = factories.World.build()
        session.commit()
        project_id, username = world.project_a.id, world.officer_a.username
        session.remove()
        client = Client(app, app.response_class, use_cookies=True)
        response = client.post("/login", data={"username": username, "password": PASSWORD})
        assert response.status_code == 302
        session.remove()  # the test's app context outlives the request: end its transaction

        locker = sqlite3.connect(engine.url.database, isolation_level=None)
        try:
            locker.execute("BEGIN IMMEDIATE")
            response = client.post(
                f"/projects/{project_id}/elements",
                data={"kind": "LAND", "quantity": "10", "status": "RAISED"},
            )
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        assert response.status_code == 503
        page = text(response)
        assert "系统繁忙，本次操作未保存，请重试" in page
        assert "双招双引项目管理" in page  # the app's own page

        # The lock gone, the same user goes on working.
        assert client.get(f"/projects/{project_id}").status_code == 200
        session.remove()


def test_the_busy_page_shows_the_user_as_loaded_without_a_query(
    world, login, count_queries, monkeypatch
):
    """When the lock comes after the user was loaded, the page's header shows them from memory:
    after the failure, no statement reaches the database (which may be what failed)."""
    import sqlalchemy as sa

    client = login(world.officer_a)
    seen = {}

    def locked(*args, **kwargs):
        seen["statements"] = len(counter.statements)
        raise sa.exc.OperationalError("INSERT", {}, Exception("database is locked"))

    monkeypatch.setattr("crm.projects.views.add_element_need", locked)
    with count_queries() as counter:
        response = client.post(
            f"/projects/{world.project_a.id}/elements",
            data={"kind": "LAND", "quantity": "10", "status": "RAISED"},
        )
    assert response.status_code == 503
    page = text(response)
    assert "系统繁忙" in page
    assert world.officer_a.display_name in page
    assert world.carrier_a.name in page  # the header's 载体, loaded with the user
    assert counter.statements[seen["statements"] :] == []


# The health check --------------------------------------------------------------------------------


def test_healthz_answers_503_when_the_database_is_down(client, db_session, monkeypatch):
    import sqlalchemy as sa

    def down(*args, **kwargs):
        raise sa.exc.OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(db_session, "execute", down)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "degraded", "database": False}


def test_healthz_answers_200_when_the_database_answers(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": True}


# Overlong searches and addresses; the favicon ----------------------------------------------------


@pytest.mark.parametrize("letter, length", [("q", 3000), ("光", 300)])
def test_an_overlong_search_is_refused_at_the_search_field(world, login, letter, length):
    """The field takes 100 characters; a longer search (a pasted or crafted address: 3,000
    characters gave gunicorn's bare 414) answers 400 with the list, its search cut to the
    limit, and the reason at the field."""
    client = login(world.admin)
    response = client.get(f"/projects/?q={letter * length}")
    assert response.status_code == 400
    page = text(response)
    assert "搜索词过长" in page
    assert 'id="q-error"' in page
    assert f'value="{letter * SEARCH_MAX_CHARS}"' in page
    assert letter * (SEARCH_MAX_CHARS + 1) not in page


def test_a_search_at_the_limit_is_searched(world, login):
    client = login(world.admin)
    response = client.get("/projects/?q=" + "光" * SEARCH_MAX_CHARS)
    assert response.status_code == 200
    assert "搜索词过长" not in text(response)
    found = client.get("/projects/?q=光伏")
    assert found.status_code == 200
    assert world.project_a.name in text(found)


def test_an_address_over_the_limit_gets_the_apps_414_page(world, login, app):
    """Up to gunicorn's raised limit (8190 bytes in the request line) the app answers; over
    MAX_URL_BYTES with its own page rather than gunicorn's bare 414."""
    client = login(world.officer_a)
    limit = app.config["MAX_URL_BYTES"]
    response = client.get("/projects/?stage=" + "x" * limit)
    assert response.status_code == 414
    page = text(response)
    assert "请求地址过长" in page
    assert "双招双引项目管理" in page
    assert client.get("/projects/?stage=" + "x" * (limit - 100)).status_code == 200


def test_gunicorn_takes_request_lines_beyond_the_apps_limit(app):
    makefile = (Path(__file__).resolve().parent.parent / "Makefile").read_text()
    run = makefile[makefile.index("\nrun:") :].split("\n\n")[0]  # the `make run` recipe
    [line] = re.findall(r"gunicorn .*--limit-request-line (\d+)", run.replace("\\\n", " "))
    assert int(line) > app.config["MAX_URL_BYTES"] + len("GET  HTTP/1.1")


def test_the_favicon_is_served(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response.mimetype == "image/vnd.microsoft.icon"
    assert response.data[:4] == b"\x00\x00\x01\x00"  # an ICO file
    assert response.headers["Cache-Control"] == "public, max-age=86400"
