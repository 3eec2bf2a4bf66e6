def test_healthz_reports_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": True}


def test_home_requires_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_login_and_home(world, login):
    client = login(world.officer_a)
    response = client.get("/")
    assert response.status_code == 200
    assert "的待办</h1>" in response.get_data(as_text=True)


def test_a_write_that_races_on_sqlite_answers_503_in_chinese(app, world, login, monkeypatch):
    import sqlalchemy as sa

    from crm.projects import records

    def locked(*args, **kwargs):
        raise sa.exc.OperationalError("UPDATE", {}, Exception("database is locked"))

    monkeypatch.setattr(records, "add_element_need", locked)
    monkeypatch.setattr("crm.projects.views.add_element_need", locked)
    client = login(world.officer_a)
    response = client.post(
        f"/projects/{world.project_a.id}/elements",
        data={"kind": "LAND", "quantity": "10", "status": "RAISED"},
    )
    assert response.status_code == 503
    assert "系统繁忙" in response.get_data(as_text=True)


def test_unicode_digits_in_numbers_of_the_url_are_ignored(world, login):
    """ "²".isdigit() is true but int("²") fails: lists must not answer 500 to it."""
    client = login(world.admin)
    for url in (
        "/companies/?page=²",
        "/projects/?page=²&carrier=²&officer=١",
        "/evaluations/?page=³",
        "/admin/users?page=²",
    ):
        assert client.get(url).status_code == 200, url


def test_extreme_dates_in_the_audit_search_do_not_overflow(world, login):
    client = login(world.admin)
    for query in ("date_from=0001-01-01", "date_to=9999-12-31", "date_from=9999-12-31"):
        assert client.get(f"/admin/audit?{query}").status_code == 200, query
