"""Kept statements (crm.statements): built once per key, the least recently used dropped."""

from __future__ import annotations

from crm import statements
from crm.lru import LRU


def test_a_statement_is_built_once_per_key_and_the_oldest_dropped(monkeypatch):
    monkeypatch.setattr(statements, "_kept", LRU(2))
    built: list[str] = []

    def build(name):
        def do():
            built.append(name)
            return f"statement {name}"

        return do

    assert statements.kept("a", build("a")) == "statement a"
    assert statements.kept("a", build("a")) == "statement a"
    statements.kept("b", build("b"))
    statements.kept("a", build("a"))  # a is now the most recent
    statements.kept("c", build("c"))  # drops b
    statements.kept("a", build("a"))
    statements.kept("b", build("b"))
    assert built == ["a", "b", "c", "b"]
