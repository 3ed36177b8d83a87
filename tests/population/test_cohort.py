"""Cohort analytics on hand-made entries: Kaplan-Meier with censoring, late switches against the
knowledge base's delay thresholds, keys other engineers add to lines, escaping in the report."""

from __future__ import annotations

import io
from datetime import date
from typing import Any

import pytest

from salvage import service
from salvage.population.cohort import build_cohort
from salvage.population.progress import Meter
from salvage.population.report import render_report

AS_OF = date(2025, 1, 1)


def _line(number: int, regimen: str, start: str, end: str | None, **extra: Any) -> dict[str, Any]:
    return {
        "number": number,
        "regimen": regimen,
        "ingredients": ["b", "a"],
        "start": start,
        "end": end,
        "maintenance": False,
        "sources": [],
        "domain": "oncology",
        "disease": "dlbcl",
        **extra,
    }


def _failure(when: str, line: int = 1, kind: str = "relapse") -> dict[str, Any]:
    return {"kind": kind, "date": when, "line": line, "disease": "dlbcl", "sources": []}


def _entry(patient: str, lines: list[dict[str, Any]], failures: list[dict[str, Any]], last: str):
    return {"patient": patient, "lines": lines, "failures": failures, "last_record_date": last}


@pytest.fixture(scope="module")
def kb() -> Any:
    return service.knowledge_base("")


def test_time_to_next_treatment_is_censored_at_the_last_record_date(kb: Any) -> None:
    entries = [
        _entry(
            "Patient/a",
            [_line(1, "First", "2024-01-01", "2024-03-01"), _line(2, "Second", "2024-04-10", None)],
            [],
            "2024-06-01",
        ),
        _entry("Patient/b", [_line(1, "First", "2024-01-01", "2024-02-01")], [], "2024-02-20"),
    ]
    summary = build_cohort(entries, kb, AS_OF).summary
    first = next(r for r in summary["time_to_next_treatment"] if r["regimen"] == "First")
    assert (first["n"], first["events"], first["censored"]) == (2, 1, 1)
    assert first["median_days"] == 100.0  # b censored at day 50, a's next line at day 100
    second = next(r for r in summary["time_on_treatment"] if r["regimen"] == "Second")
    assert (second["events"], second["median_days"]) == (0, None)  # ongoing: not reached
    assert sorted(summary["sequences"]["dlbcl"], key=lambda r: r["sequence"]) == [
        {"sequence": "First", "patients": 1},
        {"sequence": "First -> Second", "patients": 1},
    ]


def test_a_failure_without_a_new_line_within_the_threshold_counts_as_a_late_switch(
    kb: Any,
) -> None:
    threshold = kb.order_checks.delay.days_by_disease["dlbcl"]
    entries = [
        _entry(
            "Patient/late",
            [_line(1, "First", "2023-01-01", "2023-06-01"), _line(2, "Second", "2024-03-01", None)],
            [_failure("2024-01-01")],  # 60 days to the next line
            "2024-06-01",
        ),
        _entry(
            "Patient/prompt",
            [_line(1, "First", "2023-01-01", "2023-06-01"), _line(2, "Second", "2024-01-11", None)],
            [_failure("2024-01-01")],
            "2024-06-01",
        ),
        _entry(
            "Patient/recent",
            [_line(1, "First", "2024-06-01", "2024-12-01")],
            [_failure("2024-12-28")],  # four days before the analysis: too early to judge
            "2024-12-28",
        ),
    ]
    cohort = build_cohort(entries, kb, AS_OF)
    by_patient = {f["patient"]: f for f in cohort.failures}
    assert by_patient["Patient/late"]["switch_late"] is True
    assert by_patient["Patient/late"]["days_to_next_line"] == 60
    assert by_patient["Patient/prompt"]["switch_late"] is False
    assert by_patient["Patient/recent"]["switch_late"] is None
    assert by_patient["Patient/late"]["delay_threshold_days"] == threshold
    assert cohort.summary["late_switch"]["dlbcl"] == {"failures": 2, "late": 1, "patients": 1}
    rates = cohort.summary["failure_rates"]["dlbcl"]
    assert rates["by_kind"]["relapse"] == {"patients": 3, "rate": 1.0}


def test_keys_other_engineers_add_to_lines_are_read_when_present(kb: Any) -> None:
    line = _line(1, "First", "2024-01-01", None, consolidation="BEAM + ASCT")
    line["best_response"] = {"code": "CR", "display": "complete response"}
    rows = build_cohort([_entry("Patient/a", [line], [], "2024-02-01")], kb, AS_OF).lines
    assert rows[0]["consolidation"] == "BEAM + ASCT"
    assert rows[0]["best_response"] == "CR"
    assert rows[0]["ingredients"] == "b; a"
    bare = build_cohort(
        [_entry("Patient/b", [_line(1, "X", "2024-01-01", None)], [], "2024-02-01")], kb, AS_OF
    )
    assert bare.lines[0]["consolidation"] is None and bare.lines[0]["best_response"] is None


def test_the_report_escapes_record_text_and_loads_nothing(kb: Any) -> None:
    hostile = '<script>alert("x")</script>'
    entries = [
        _entry("Patient/a", [_line(1, hostile, "2024-01-01", "2024-02-01")], [], "2024-03-01")
    ]
    html = render_report(build_cohort(entries, kb, AS_OF))
    assert "<script" not in html
    assert "&lt;script&gt;" in html
    assert "<svg" in html
    assert 'src="http' not in html and 'href="http' not in html and "@import" not in html


def test_progress_is_silent_when_not_a_terminal_and_estimates_time_left_when_it_is() -> None:
    quiet = io.StringIO()
    with Meter("patients", total=10, stream=quiet, interval=0) as meter:
        meter.add(5)
    assert quiet.getvalue() == ""
    shown = io.StringIO()
    with Meter("patients", total=10, stream=shown, interval=0, force=True) as meter:
        meter.add(5)
    text = shown.getvalue()
    assert "5/10 patients" in text and "/s)" in text and "left" in text
