"""Kept statements (crm.speedups): built once per key, the least recently used dropped."""

from __future__ import annotations

from cachetools import LRUCache

from crm import speedups


def test_a_statement_is_built_once_per_key_and_the_oldest_dropped(monkeypatch):
    monkeypatch.setattr(speedups, "_kept", LRUCache(maxsize=2))
    built: list[str] = []

    def build(name):
        def do():
            built.append(name)
            return f"statement {name}"

        return do

    assert speedups.kept("a", build("a")) == "statement a"
    assert speedups.kept("a", build("a")) == "statement a"
    speedups.kept("b", build("b"))
    speedups.kept("a", build("a"))  # a is now the most recent
    speedups.kept("c", build("c"))  # drops b
    speedups.kept("a", build("a"))
    speedups.kept("b", build("b"))
    assert built == ["a", "b", "c", "b"]


def test_one_url_for_gives_every_rows_link(app):
    with app.test_request_context("/"):
        detail = speedups.url_for_each("projects.detail", "project_id")
        assert [detail(7), detail(2_147_483_647)] == ["/projects/7", "/projects/2147483647"]
