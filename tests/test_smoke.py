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
    assert "工作台" in response.get_data(as_text=True)
