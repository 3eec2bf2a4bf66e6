"""The project list's filters: one description (`crm.projects.filters.CONDITIONS`) reads
them from a link, writes them back into the links of the page, describes them and selects."""

from __future__ import annotations

import html
from dataclasses import replace
from datetime import date
from urllib.parse import parse_qsl, urlencode

from flask import Flask
from werkzeug.datastructures import MultiDict

from crm.projects.filters import CONDITIONS, ProjectFilter
from crm.projects.stages import Stage, Status, Verification


def every_filter_on() -> ProjectFilter:
    """A filter with every field away from its default (what no form would send at once)."""
    return ProjectFilter(
        q="中药",
        stage=Stage.SIGNED,
        status=Status.ON_HOLD,
        carrier_id=3,
        cluster_id=4,
        channel_id=5,
        officer_id=6,
        is_key=True,
        stale=True,
        sort="name",
        pipeline=True,
        created_from=date(2026, 1, 1),
        created_to=date(2026, 6, 30),
        moved_into=(Stage.STARTED, Stage.SIGNED),
        verification=Verification.VERIFIED,
        moved_from=date(2026, 2, 1),
        moved_to=date(2026, 3, 1),
        planned=Stage.PRODUCING,
        planned_from=date(2026, 4, 1),
        planned_to=date(2026, 5, 1),
        overdue=Stage.STARTED,
        funded=True,
        funded_from=date(2026, 7, 1),
        funded_to=date(2026, 8, 1),
        conflict=True,
        extra=("decision",),
    )


def as_query(args: dict) -> MultiDict:
    """Arguments as a link's query string reads: strings, a list as repeated arguments."""
    return MultiDict(parse_qsl(urlencode(args, doseq=True)))


def test_every_filter_reads_back_from_the_link_it_writes(app):
    f = every_filter_on()
    assert ProjectFilter.from_args(as_query(f.to_args())) == f
    # `overdue` is one argument for two filters: a milestone, or "1" for any.
    either = ProjectFilter(overdue_any=True)
    assert either.to_args() == {"overdue": "1"}
    assert ProjectFilter.from_args(as_query(either.to_args())) == either


def test_every_condition_the_form_does_not_show_is_described(app):
    f = replace(every_filter_on(), overdue_any=True)
    described = [c for c in CONDITIONS if c.label is not None]
    assert all(c.label(f) for c in described)
    assert all(c.label(ProjectFilter()) is None for c in described)
    assert len(f.advanced_labels()) == len(described) + 1  # and 评估待决策
    assert "评估待决策" in f.advanced_labels()


def test_the_decision_filter_comes_from_the_apps_wiring(app):
    """The dashboard hands `?decision=1` to the list through create_app, not by being
    imported: another app knows nothing of it."""
    assert ProjectFilter.from_args({"decision": "1"}).extra == ("decision",)
    with Flask("bare").app_context():
        assert ProjectFilter.from_args({"decision": "1"}).extra == ()


def test_a_list_of_officer_zero_exports_what_it_shows(world, login):
    """`?officer=0` selects no project: the page's export link keeps the condition instead
    of dropping it (it exported every visible project)."""
    client = login(world.admin)
    page = html.unescape(client.get("/projects/?officer=0&stale=1").get_data(as_text=True))
    assert "/ledger/export?officer=0&stale=1" in page
