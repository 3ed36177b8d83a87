"""Markers to chart, with the failure definition that applies to this patient only."""

from __future__ import annotations

from salvage.engine.markers import marker_series
from tests.conftest import Chart

PROSTATE = "399068003"


def _psa_patient(procedure: str) -> Chart:
    chart = Chart(disease_snomed=PROSTATE)
    chart.procedure(procedure, "2020-01-10")
    for day, value in (("2020-04-01", 0.5), ("2020-07-01", 0.3), ("2021-01-01", 0.9)):
        chart.quantity("2857-1", day, value, "ng/mL")
    return chart


def test_after_prostatectomy_only_the_confirmed_psa_threshold_is_drawn(kb) -> None:
    (psa,) = marker_series(_psa_patient("176262001").analyse(kb), kb)
    rule = kb.failures.prostate.post_prostatectomy.threshold_ng_per_ml
    assert [t.value for t in psa.thresholds] == [rule]
    assert "Phoenix" not in " ".join(t.label for t in psa.thresholds)


def test_after_radiotherapy_nadir_and_phoenix_are_drawn_not_the_surgical_threshold(kb) -> None:
    (psa,) = marker_series(_psa_patient("1217123003").analyse(kb), kb)
    rise = kb.failures.prostate.post_radiotherapy.nadir_plus_ng_per_ml
    assert [t.value for t in psa.thresholds] == [0.3, 0.3 + rise]


def test_without_a_primary_local_therapy_no_threshold_is_drawn_and_the_reason_is_said(kb) -> None:
    chart = Chart(disease_snomed=PROSTATE)
    chart.quantity("2857-1", "2020-04-01", 3.0, "ng/mL")
    (psa,) = marker_series(chart.analyse(kb), kb)
    assert psa.thresholds == () and "no primary local therapy" in psa.note


def test_hiv_rna_uses_the_failure_threshold_from_the_knowledge_base(kb) -> None:
    chart = Chart(disease_snomed="86406008")
    chart.order("Biktarvy", "2020-01-01", status="active")
    chart.quantity("20447-9", "2020-06-01", 40, "{copies}/mL")
    (rna,) = marker_series(chart.analyse(kb), kb)
    assert rna.spec.log_scale and [t.value for t in rna.thresholds] == [
        kb.failures.hiv.threshold_copies_per_ml
    ]


def test_a_disease_without_a_charted_marker_has_no_series(kb) -> None:
    chart = Chart()
    chart.quantity("2857-1", "2020-04-01", 3.0, "ng/mL")  # a PSA in a lymphoma patient
    assert marker_series(chart.analyse(kb), kb) == ()
