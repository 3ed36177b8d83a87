"""Failure definitions at their thresholds: each fires at the boundary and not just below it."""

from __future__ import annotations

import pytest

from tests.conftest import Chart, q21

R_CHOP = ["rituximab", "cyclophosphamide", "doxorubicin", "vincristine", "prednisone"]


def kinds(analysis) -> list[tuple[str, str, int | None]]:
    return [(f.kind, f.when.isoformat(), f.line) for f in analysis.failures]


def test_worsened_status_during_a_line_is_refractory(kb) -> None:
    chart = Chart()
    chart.cycles(R_CHOP, q21("2024-01-01", 4))
    source = chart.status("2024-02-15")
    analysis = chart.analyse(kb)
    assert kinds(analysis) == [("refractory", "2024-02-15", 1)]
    assert analysis.failures[0].sources == (source,)


def test_worsened_status_after_the_line_is_relapse_with_its_interval(kb) -> None:
    chart = Chart()
    chart.cycles(R_CHOP, q21("2024-01-01", 4))  # ends 2024-03-04
    chart.status("2025-03-04")
    (failure,) = chart.analyse(kb).failures
    assert failure.kind == "relapse"
    assert failure.relapse_interval_months == 12.0


def test_improved_status_is_not_a_failure(kb) -> None:
    chart = Chart()
    chart.cycles(R_CHOP, q21("2024-01-01", 4))
    chart.status("2024-02-15", answer="268910001")
    assert chart.analyse(kb).failures == ()


def test_progression_before_any_treatment_is_not_a_treatment_failure(kb) -> None:
    chart = Chart()
    chart.status("2023-06-01")
    chart.cycles(R_CHOP, q21("2024-01-01", 2))
    assert chart.analyse(kb).failures == ()


def test_stopped_for_intolerance_is_intolerance_of_that_line(kb) -> None:
    chart = Chart()
    chart.cycles(R_CHOP, q21("2024-01-01", 2))
    source = chart.order(
        "vincristine",
        "2024-01-22",
        status="stopped",
        statusReason={"coding": [{"system": "http://snomed.info/sct", "code": "407563006"}]},
    )
    analysis = chart.analyse(kb)
    assert kinds(analysis) == [("intolerance", "2024-01-22", 1)]
    assert analysis.failures[0].sources == (source,)


@pytest.mark.parametrize(("second", "fires"), [(0.2, True), (0.19, False)])
def test_psa_after_prostatectomy_needs_a_confirmed_0_2(kb, second: float, fires: bool) -> None:
    chart = Chart(disease_snomed="399068003")
    chart.procedure("176262001", "2020-01-10")
    chart.quantity("2857-1", "2020-06-01", 0.2, "ng/mL")
    chart.quantity("2857-1", "2020-09-01", second, "ng/mL")
    expected = [("biochemical-recurrence", "2020-09-01", 1)] if fires else []
    assert kinds(chart.analyse(kb)) == expected


@pytest.mark.parametrize(("value", "fires"), [(2.5, True), (2.49, False)])
def test_phoenix_nadir_plus_2_after_radiotherapy(kb, value: float, fires: bool) -> None:
    chart = Chart(disease_snomed="399068003")
    chart.procedure("1217123003", "2019-01-10")
    chart.quantity("2857-1", "2019-06-01", 0.5, "ng/mL")
    chart.quantity("2857-1", "2020-06-01", value, "ng/mL")
    expected = [("biochemical-recurrence", "2020-06-01", 1)] if fires else []
    assert kinds(chart.analyse(kb)) == expected


def test_psa_in_ng_per_dl_is_converted_before_comparing(kb) -> None:
    chart = Chart(disease_snomed="399068003")
    chart.procedure("176262001", "2020-01-10")
    chart.quantity("2857-1", "2020-06-01", 25, "ng/dL")  # 0.25 ng/mL
    chart.quantity("2857-1", "2020-09-01", 30, "ng/dL")
    assert kinds(chart.analyse(kb)) == [("biochemical-recurrence", "2020-09-01", 1)]


def _on_art(chart: Chart) -> None:
    chart.order("Biktarvy", "2020-01-01", status="active")


@pytest.mark.parametrize(("value", "fires"), [(200, True), (199, False)])
def test_hiv_failure_threshold_is_200_copies(kb, value: float, fires: bool) -> None:
    chart = Chart(disease_snomed="86406008")
    _on_art(chart)
    chart.quantity("20447-9", "2020-03-01", 20, "{copies}/mL")
    chart.quantity("20447-9", "2021-01-01", 500, "{copies}/mL")
    chart.quantity("20447-9", "2021-02-01", value, "{copies}/mL")
    expected = [("virologic-failure", "2021-02-01", 1)] if fires else []
    assert kinds(chart.analyse(kb)) == expected


def test_hiv_blip_is_not_a_failure(kb) -> None:
    chart = Chart(disease_snomed="86406008")
    _on_art(chart)
    for day, value in (("2020-06-01", 20), ("2020-09-01", 800), ("2020-10-01", 20)):
        chart.quantity("20447-9", day, value, "{copies}/mL")
    assert chart.analyse(kb).failures == ()


def test_hiv_high_values_before_24_weeks_without_suppression_are_not_failure(kb) -> None:
    chart = Chart(disease_snomed="86406008")
    _on_art(chart)
    chart.quantity("20447-9", "2020-02-01", 30000, "{copies}/mL")
    chart.quantity("20447-9", "2020-05-01", 900, "{copies}/mL")  # week 17
    chart.quantity("20447-9", "2020-06-01", 400, "{copies}/mL")  # week 21.6
    assert chart.analyse(kb).failures == ()


def test_a_value_in_an_unknown_unit_is_reported_not_guessed(kb) -> None:
    chart = Chart(disease_snomed="86406008")
    _on_art(chart)
    source = chart.quantity("20447-9", "2020-06-01", 5000, "[IU]/mL")
    analysis = chart.analyse(kb)
    assert [w.source for w in analysis.warnings] == [source]
    assert analysis.record.measurements == []
