"""Defects a specialist review found on records it wrote itself (each failed before the fix)."""

from __future__ import annotations

from datetime import date

from salvage.engine.recommend import recommend
from tests.conftest import SNOMED, Chart, q21

R_CHOP = ["rituximab", "cyclophosphamide", "doxorubicin", "vincristine", "prednisone"]
DLBCL = "109969005"


def _dlbcl_condition(chart: Chart, text: str, onset: str, status: str = "active") -> str:
    return chart.add(
        "Condition",
        code={"coding": [{"system": SNOMED, "code": DLBCL}], "text": text},
        clinicalStatus={"coding": [{"code": status}]},
        onsetDateTime=onset,
    )


def test_a_relapse_entered_as_a_new_problem_list_condition_is_a_relapse(kb) -> None:
    chart = Chart(disease_snomed=None)
    _dlbcl_condition(chart, "Diffuse large B-cell lymphoma", "2023-12-01")
    chart.cycles(R_CHOP, q21("2024-01-01", 6))
    source = _dlbcl_condition(chart, "Relapsed diffuse large B-cell lymphoma", "2024-11-25")
    (failure,) = chart.analyse(kb, date(2025, 1, 15)).failures
    assert failure.kind == "relapse" and failure.sources == (source,)
    assert failure.when == date(2024, 11, 25)


def test_a_second_disease_entry_without_relapse_words_is_not_a_silent_no_failure(kb) -> None:
    chart = Chart(disease_snomed=None)
    _dlbcl_condition(chart, "Diffuse large B-cell lymphoma", "2023-12-01")
    chart.cycles(R_CHOP, q21("2024-01-01", 6))
    _dlbcl_condition(chart, "DLBCL", "2024-11-25")
    analysis = chart.analyse(kb, date(2025, 1, 15))
    assert analysis.failures == () and not analysis.failure_assessable
    rec = recommend(analysis, kb, date(2025, 1, 15))
    assert rec.statement and "not a finding" in rec.statement and "second" in rec.statement


def test_the_original_diagnosis_recorded_late_is_not_a_relapse_or_a_doubt(kb) -> None:
    chart = Chart(disease_snomed=None)
    chart.add(  # entered on the problem list after treatment began, onset before it
        "Condition",
        code={"coding": [{"system": SNOMED, "code": DLBCL}], "text": "DLBCL"},
        onsetDateTime="2023-12-01",
        recordedDate="2024-02-01",
    )
    chart.cycles(R_CHOP, q21("2024-01-01", 6))
    analysis = chart.analyse(kb, date(2025, 1, 15))
    assert analysis.failures == () and analysis.failure_assessable


def test_primary_refractory_is_not_claimed_outside_the_lymphomas(kb) -> None:
    chart = Chart(disease_snomed="254637007")  # non-small cell lung cancer
    chart.cycles(["carboplatin", "pemetrexed", "pembrolizumab"], q21("2024-01-01", 4))
    chart.cycles(["pemetrexed", "pembrolizumab"], q21("2024-04-01", 12))
    chart.status("2024-12-01")
    failures = chart.analyse(kb, date(2025, 1, 15)).failures
    assert failures and not any(f.primary for f in failures)


def test_a_first_line_recorded_as_improved_then_progressing_is_not_primary_refractory(kb) -> None:
    chart = Chart()
    chart.cycles(R_CHOP, q21("2024-01-01", 6))
    chart.status("2024-03-01", answer="268910001")  # interim response
    chart.status("2024-05-01")  # progression while the line is still active
    (failure,) = chart.analyse(kb, date(2024, 6, 1)).failures
    assert failure.kind == "refractory" and not failure.primary


def test_progression_on_first_line_without_response_is_primary_refractory_in_dlbcl(kb) -> None:
    chart = Chart()
    chart.cycles(R_CHOP, q21("2024-01-01", 6))
    chart.status("2024-03-01")
    (failure,) = chart.analyse(kb, date(2024, 6, 1)).failures
    assert failure.kind == "refractory" and failure.primary
