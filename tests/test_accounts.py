"""Accounts (issue 14): the `next` target of the login."""

from __future__ import annotations

import pytest

from crm.auth.views import safe_next
from tests.conftest import PASSWORD

# ---- item 11: the `next` target ----


@pytest.mark.parametrize(
    "target", ["/%0D%0AX-Injected:%201", "/projects%0aSet-Cookie:%20x=1", "/%09/evil.example"]
)
def test_a_next_with_control_characters_goes_home(world, client, target):
    response = client.post(
        f"/login?next={target}",
        data={"username": world.officer_a.username, "password": PASSWORD},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert "X-Injected" not in response.headers and "Set-Cookie: x" not in str(response.headers)


def test_safe_next_keeps_ordinary_paths():
    assert safe_next("/projects/3?tab=followups") == "/projects/3?tab=followups"
    assert safe_next("/\r\nX: 1") is None and safe_next("/a\x7fb") is None
