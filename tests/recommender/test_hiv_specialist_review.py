"""Findings of an HIV specialist on patients they wrote (tests/hiv_review_bundles, analysed as of
2024-10-01 as in the review); each test failed before its fix."""

from __future__ import annotations

import json
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from salvage import service
from salvage.engine.hiv_regimens import HivOption
from salvage.service import PatientReport
from tests.conftest import ROOT

BUNDLES = ROOT / "tests" / "hiv_review_bundles"
AS_OF = date(2024, 10, 1)


def resources_of(name: str) -> list[dict[str, Any]]:
    path = next(BUNDLES.glob(f"{name}-*.json"))
    return [e["resource"] for e in json.loads(Path(path).read_text())["entry"]]


@cache
def review(name: str) -> PatientReport:
    return report_of(resources_of(name))


def report_of(resources: list[dict[str, Any]]) -> PatientReport:
    patient = next(r["id"] for r in resources if r["resourceType"] == "Patient")
    report, skipped = service.report_for_patient(
        resources, patient, service.knowledge_base(), AS_OF
    )
    assert not skipped
    return report


def hiv_options(report: PatientReport) -> list[HivOption]:
    return [o for o in report.recommendation.options if isinstance(o, HivOption)]


# --- 1. HBsAg read through the qualitative answer sets -------------------------------------------
def test_hbsag_reported_as_reactive_text_is_hepatitis_b_and_every_option_keeps_the_pair() -> None:
    report = review("p08")
    options = hiv_options(report)
    assert options and all(o.keeps_hbv_pair for o in options if o.kind != "test")
    assert any("HBsAg positive" in f for f in report.recommendation.facts)
    assert not any("not a number" in w.problem for w in report.analysis.warnings)


@pytest.mark.parametrize("name", ["p130", "p131", "p132"])
def test_a_negative_hbsag_is_read_and_not_reported_missing(name: str) -> None:
    rec = review(name).recommendation
    assert any(f.startswith("HBsAg negative") for f in rec.facts)
    assert not any("HBsAg" in m for m in rec.missing_data)


def test_an_unreadable_hbsag_result_is_possible_hepatitis_b_and_keeps_the_pair() -> None:
    resources = resources_of("p14")  # EFV/FTC/TDF failure, no HBV on record
    resources.append(
        {
            "resourceType": "Observation",
            "id": "hbsag-equivocal",
            "status": "final",
            "subject": {"reference": "Patient/rv14"},
            "code": {"coding": [{"system": "http://loinc.org", "code": "5196-1"}]},
            "effectiveDateTime": "2024-08-16",
            "valueString": "Indeterminate, see comment",
        }
    )
    rec = report_of(resources).recommendation
    regimens = [o for o in hiv_options(review("p14")) if o.kind == "regimen"]
    assert any(not o.keeps_hbv_pair for o in regimens)  # without the result: DRV/r + DTG
    regimens = [o for o in rec.options if isinstance(o, HivOption) and o.kind == "regimen"]
    assert regimens and all(o.keeps_hbv_pair for o in regimens)
    assert any("possible hepatitis B" in f for f in rec.facts)
    assert any("Possible hepatitis B" in c for o in regimens for c in o.cautions)


# --- 2. An active order with refills keeps the line running; viraemia is never silent ----------
def test_an_active_order_with_refills_keeps_the_line_running_and_viraemia_is_a_failure() -> None:
    report = review("p02")  # Biktarvy active, 90 days x 12 supplies from 2020-09-01
    (line,) = report.analysis.lines
    assert line.end is None
    (failure,) = report.analysis.failures
    assert failure.kind == "virologic-failure" and failure.line == 1
    assert failure.when == date(2024, 5, 6)


def test_confirmed_viraemia_outside_every_line_is_reported_not_called_no_failure() -> None:
    resources = resources_of("p02")
    order = next(r for r in resources if r["resourceType"] == "MedicationRequest")
    order["status"] = "completed"  # the supplies ran out in August 2023
    report = report_of(resources)
    assert report.analysis.failures == () and not report.analysis.failure_assessable
    (doubt,) = [w for w in report.analysis.warnings if w.failure_doubt]
    assert "2150" in doubt.problem and "3900" in doubt.problem
    statement = report.recommendation.statement or ""
    assert "not a finding" in statement and "viraemia" in statement


# --- 3. Counts, companions and rationales that fit the patient; 8. wording and citations -------
@pytest.mark.parametrize("name", ["p01", "p02", "p03", "p04", "p06b", "p14"])
def test_every_hiv_option_states_its_count_of_fully_active_drugs_naming_each(name: str) -> None:
    for option in hiv_options(review(name)):
        if option.kind in ("test", "continue"):  # a genotype, or keeping the regimen
            continue
        count = option.summary[0]
        assert count.startswith(
            f"Fully active drugs: {option.fully_active} of {len(option.activity)}: "
        )
        for act in option.activity:
            assert act.drug in count
        below = [s for s in option.summary if s.startswith("Fewer than")]
        assert bool(below) == (option.fully_active < 2), option.regimen


def test_an_optimised_background_names_its_companions_in_text() -> None:
    (construct, *_) = [o for o in hiv_options(review("p06b")) if o.construct]
    assert construct.companions
    assert any(
        s.startswith("Companions") and all(c in s for c in construct.companions)
        for s in construct.summary
    )


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("p02", "bictegravir failure (integrase-experienced)"),
        ("p04", "second-line cabotegravir/rilpivirine failure"),
        ("p03", "first-line dolutegravir/lamivudine failure"),
    ],
)
def test_nadia_wording_is_not_shown_outside_first_line_nnrti_failure(name: str, why: str) -> None:
    for option in hiv_options(review(name)):
        assert "NADIA" not in option.rationale[0] or "outside" in option.rationale[0], why
        assert "first-line" not in option.rationale[0], why
        assert not any("NADIA" in s for s in option.summary), why


def test_after_first_line_nnrti_failure_the_nadia_wording_and_justification_apply() -> None:
    (dtg, *_) = [o for o in hiv_options(review("p01")) if o.option_id == "hiv-dtg-2nrti"]
    assert "first-line NNRTI" in dtg.rationale[0]


def test_hiv_text_uses_an_hiv_disclaimer_and_lists_each_citation_once(capsys) -> None:
    from salvage import cli

    path = next(BUNDLES.glob("p01-*.json"))
    assert cli.main(["recommend", str(path), "--as-of", AS_OF.isoformat()]) == 0
    out = capsys.readouterr().out
    assert "tumour board" not in out and "HIV specialist" in out
    assert "Fully active drugs: " in out
    for line in out.splitlines():
        if line.strip()[:2].rstrip(".").isdigit() and "[" in line:
            labels = line[line.index("[") + 1 : line.rindex("]")].split(", ")
            assert len(labels) == len(set(labels)), line


# --- 4. PrEP is never a treatment line --------------------------------------------------------
def test_hiv_acquired_on_prep_is_not_a_failure_of_a_treatment_line() -> None:
    report = review("p10d")  # Truvada as PrEP (Z20.6), then HIV-1 RNA 45,000 and 61,000
    assert report.analysis.lines == () and report.analysis.failures == ()
    statement = report.recommendation.statement or ""
    assert statement.startswith("HIV first evidenced on 2024-07-01 in a PrEP user")
    assert "HIV acquisition on PrEP" in statement and "genotypic resistance test" in statement
    assert "full ART" in statement and "integrase" not in statement  # no cabotegravir PrEP


def test_acquisition_on_cabotegravir_prep_asks_for_an_integrase_genotype() -> None:
    resources = resources_of("p10d")
    order = next(r for r in resources if r["resourceType"] == "MedicationRequest")
    order["medicationCodeableConcept"] = {"text": "Apretude 600 mg/3 mL injection"}
    statement = report_of(resources).recommendation.statement or ""
    assert "HIV acquisition on PrEP" in statement and "include integrase" in statement


def test_prep_users_are_told_prep_is_not_hiv_treatment() -> None:
    assert (review("p10").recommendation.statement or "").startswith("PrEP - not HIV treatment")


def test_rna_detected_below_quantification_in_a_prep_user_asks_for_a_repeat() -> None:
    report = review("p10c")
    statement = report.recommendation.statement or ""
    assert statement.startswith("PrEP - not HIV treatment") and "repeat HIV-1 RNA" in statement
    assert not any("not a number" in w.problem for w in report.analysis.warnings)
    (low,) = [m for m in report.analysis.record.measurements if m.detected]
    assert low.value == 20 and low.comparator == "<"


# --- 5. Integrase-naive: dolutegravir and bictegravir presumed active -------------------------
def test_in_an_integrase_naive_patient_dolutegravir_is_presumed_active_and_counted() -> None:
    options = {o.option_id: o for o in hiv_options(review("p01"))}  # EFV/FTC/TDF, RT+PR genotype
    (dtg,) = [a for a in options["hiv-drvr-dtg"].activity if a.drug == "dolutegravir"]
    assert dtg.level == "active" and dtg.basis == "presumed active: integrase-naive"
    assert options["hiv-drvr-dtg"].fully_active == 2
    assert (
        "dolutegravir fully active (presumed active: integrase-naive)"
        in (options["hiv-drvr-dtg"].summary[0])
    )
    assert "DHHS-ART-resistance" in options["hiv-drvr-dtg"].evidence


def test_after_integrase_exposure_an_unsequenced_integrase_stays_unknown() -> None:
    resources = resources_of("p04")  # BIC/FTC/TAF then CAB/RPV; genotype with IN
    resources = [
        r
        for r in resources
        if not (r["resourceType"] == "Observation" and "72560-6" in json.dumps(r.get("code")))
    ]
    report = report_of(resources)
    for option in hiv_options(report):
        for act in option.activity:
            assert act.basis != "presumed active: integrase-naive"
    reasons = [r for x in report.recommendation.excluded for r in x.reasons]
    assert any(r.startswith("dolutegravir: activity unknown") for r in reasons)


# --- 6. Q148 with N155H; nelfinavir ----------------------------------------------------------
def test_q148r_with_n155h_leaves_no_fully_active_integrase_inhibitor() -> None:
    from salvage.engine import resistance

    report = review("p04")
    assessed = resistance.assess(report.analysis.record, service.knowledge_base())
    assert assessed.level("cabotegravir") == "inactive"  # was partial
    assert assessed.level("raltegravir") == "inactive"
    assert assessed.level("dolutegravir") == "partial"  # HIVdb 10.2: 55, below high-level
    assert all("dolutegravir" not in o.ingredients for o in hiv_options(report))


def test_viracept_maps_to_nelfinavir_a_protease_inhibitor() -> None:
    analysis = review("p06").analysis
    assert not any("Viracept" in u.text for u in analysis.unmapped)
    assert any("nelfinavir" in line.ingredients for line in analysis.lines)
    assert "PI" in service.knowledge_base().drugs["nelfinavir"].classes


# --- 7. Adherence and interactions before a switch -------------------------------------------
@pytest.mark.parametrize("name", ["p02", "p02b"])
def test_cations_or_missed_doses_without_resistance_put_continue_first(name: str) -> None:
    first = review(name).recommendation.options[0]
    assert isinstance(first, HivOption) and first.kind == "continue"
    assert first.ingredients == ()  # a plan, never an order
    assert first.regimen.startswith("Address adherence and interactions")
    assert "BIC/FTC/TAF" in first.regimen
    assert "iron" in first.summary[0] and "calcium carbonate" in first.summary[0]


def test_a_missed_dose_note_is_named_as_the_cause() -> None:
    (first, *_) = review("p02b").recommendation.options
    assert "missing doses ~3x/week" in first.summary[0]


def test_with_resistance_on_the_genotype_adherence_is_a_fact_not_a_reason_to_continue() -> None:
    resources = resources_of("p02b")
    for r in resources:
        if r["resourceType"] == "Observation" and r.get("valueString") == "RT: none; PR: none":
            r["valueString"] = "RT: M184V; PR: none"
    rec = report_of(resources).recommendation
    assert all(o.kind != "continue" for o in rec.options)
    assert any(f.startswith("missed doses noted") for f in rec.facts)
    assert any("not free of resistance" in f for f in rec.facts)


def test_full_art_started_before_a_late_coded_diagnosis_is_never_taken_for_prep() -> None:
    resources = resources_of("p02")  # Biktarvy from 2020-09-01, viraemia in 2024
    resources = [r for r in resources if r.get("effectiveDateTime") != "2020-08-10"]  # baseline
    for r in resources:
        if r["resourceType"] == "Condition":
            r["onsetDateTime"] = "2024-05-01"  # problem list updated late
    resources.append(
        {
            "resourceType": "Condition",
            "id": "prep-context",
            "subject": {"reference": "Patient/rv02"},
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "Z20.6"}]},
        }
    )
    report = report_of(resources)
    assert [line.regimen for line in report.analysis.lines] == ["BIC/FTC/TAF"]
