"""Issue 10, item 8: when the FHIR server cannot return a resource type, the app never turns the
gap into "no treatment failure"; the conclusions that depend on it say they could not be
assessed."""

from __future__ import annotations

import json
from datetime import date

from smart_app.summary import summarise
from tests.conftest import FIXTURES


def _resources(name: str, without: str | None = None) -> list[dict]:
    bundle = json.loads((FIXTURES / f"{name}.json").read_text())
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] != without]


def test_observations_unreadable_is_not_reported_as_no_failure(kb) -> None:
    problems = [{"type": "Observation", "problem": "HTTP 503", "affects": "failures"}]
    document = summarise(
        _resources("dlbcl-early-relapse", without="Observation"),
        "dlbcl-early-relapse",
        kb,
        problems,
        date(2026, 6, 30),
    )
    (entry,) = document["patients"]
    assert entry["failures"] == [] and entry["failure_assessable"] is False
    assert "could not be assessed" in entry["statement"]
    assert "no documented treatment failure" not in entry["statement"]
    assert any("Observation could not be read" in n for n in entry["not_assessed"])


def test_with_everything_read_the_failure_is_found(kb) -> None:
    document = summarise(
        _resources("dlbcl-early-relapse"), "dlbcl-early-relapse", kb, [], date(2026, 6, 30)
    )
    (entry,) = document["patients"]
    assert entry["failure_assessable"] is True and entry["failures"]
