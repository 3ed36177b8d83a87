"""Performance status written as text, with or without a LOINC code: a single clear score is read
(the label deciding the scale), anything ambiguous is "recorded but unreadable" and never fit."""

from __future__ import annotations

from typing import Any

import pytest

from salvage.engine import factors, fitness
from salvage.fhir.decode import ResourceFilter
from salvage.fhir.records import build_patient_records
from tests.conftest import AS_OF, LOINC, Chart

ECOG_LOINC = {"coding": [{"system": LOINC, "code": "89247-1"}]}
KPS_LOINC = {"coding": [{"system": LOINC, "code": "89243-0"}]}
LOCAL_PS = {"coding": [{"system": "urn:oid:1.2.3.4.local", "code": "PS", "display": "ECOG"}]}


def performance(code: dict[str, Any], kb, **value: Any):
    chart = Chart()
    chart.add("Observation", status="final", code=code, effectiveDateTime="2026-06-20", **value)
    patients, skipped = build_patient_records(((r, "test") for r in chart.resources), kb)
    assert not skipped
    record = patients["Patient/p1"]
    return record, factors.ecog(record, kb, AS_OF), factors.unreadable_performance(record, AS_OF)


@pytest.mark.parametrize(
    ("code", "value", "ecog"),
    [
        ({"text": "Performance status"}, {"valueString": "PS 3"}, 3),
        ({"text": "ECOG"}, {"valueString": "3"}, 3),
        ({"text": "ECOG 2"}, {}, 2),  # the score in the code's own text, no value
        (LOCAL_PS, {"valueString": "ECOG: 1"}, 1),  # a local code, no LOINC
        ({"text": "WHO performance status"}, {"valueString": "WHO PS 2"}, 2),
        ({"text": "Karnofsky"}, {"valueString": "Karnofsky 60%"}, 2),  # KPS 60 -> ECOG 2
        ({"text": "Performance status"}, {"valueString": "KPS: 50"}, 3),  # label names scale
        (ECOG_LOINC, {"valueString": "KPS 40"}, 3),  # Karnofsky under the ECOG code
        (KPS_LOINC, {"valueString": "ECOG 1"}, 1),  # ECOG under the Karnofsky code
        (ECOG_LOINC, {"valueCodeableConcept": {"text": "ECOG 1 - restricted activity"}}, 1),
        # the scale's own wording with a percentage after the score (specialist review, 03)
        ({"text": "ECOG"}, {"valueString": "ECOG PS 3, in chair >50% of day"}, 3),
        ({"text": "Performance status"}, {"valueString": "KPS 60% - requires occasional help"}, 2),
        (
            {"text": "ECOG PS"},
            {
                "valueCodeableConcept": {
                    "coding": [{"system": "urn:local", "code": "x"}],
                    "text": "PS 4",
                }
            },
            4,
        ),
    ],
)
def test_a_single_clear_score_written_as_text_is_read(code, value, ecog, kb) -> None:
    _, fact, odd = performance(code, kb, **value)
    assert odd is None
    assert fact is not None and fact.value == ecog


@pytest.mark.parametrize(
    ("code", "value"),
    [
        ({"text": "ECOG"}, {"valueString": "ECOG 1-2"}),  # a range
        ({"text": "ECOG"}, {"valueString": "ECOG 1/2"}),
        ({"text": "Performance status"}, {"valueString": "poor PS"}),
        ({"text": "Performance status"}, {"valueString": "PS 2?"}),
        ({"text": "ECOG"}, {"valueString": "ECOG 2 or 3"}),
        ({"text": "ECOG"}, {"valueString": "probably 1"}),
        (ECOG_LOINC, {"valueString": "60"}),  # a Karnofsky number under the ECOG code
        (ECOG_LOINC, {"valueInteger": 7}),  # outside the ECOG scale
        (KPS_LOINC, {"valueQuantity": {"value": 150, "unit": "%"}}),
        (KPS_LOINC, {"valueQuantity": {"value": 60, "unit": "mg"}}),  # not a score unit
        ({"text": "ECOG"}, {"valueString": "ECOG 2 (was 0 in March)"}),
    ],
)
def test_an_ambiguous_performance_status_is_recorded_but_unreadable(code, value, kb) -> None:
    record, fact, odd = performance(code, kb, **value)
    assert fact is None  # never read as a score, so never as fit
    assert odd is not None and odd.value is None
    assert record.warnings  # the reason is shown


def test_an_unreadable_text_score_makes_transplant_candidacy_unknown(kb) -> None:
    record, _, _ = performance({"text": "ECOG"}, kb, valueString="ECOG 0-1")
    verdict = fitness.transplant(record, kb, "dlbcl", AS_OF)
    assert verdict is not None and verdict.status == "unknown"
    assert any("'ECOG 0-1'" in u for u in verdict.unreadable)


@pytest.mark.parametrize("text", ["Performance status", "ECOG", "Karnofsky", "KPS", "PS"])
def test_the_fast_path_keeps_a_performance_status_named_only_in_words(text, kb) -> None:
    local = {"coding": [{"system": "urn:local", "code": "77", "display": text}]}
    assert ResourceFilter(kb).resource({"resourceType": "Observation", "code": local})


@pytest.mark.parametrize("text", ["PSA", "Haemoglobin", "Urine protein"])
def test_an_unrelated_local_observation_is_not_taken_for_a_performance_status(text, kb) -> None:
    local = {"coding": [{"system": "urn:local", "code": "77", "display": text}], "text": text}
    assert not ResourceFilter(kb).resource({"resourceType": "Observation", "code": local})


def test_an_older_readable_score_never_stands_in_for_an_unreadable_latest_one(kb) -> None:
    chart = Chart()
    for day, text in (("2026-06-01", "ECOG 0"), ("2026-06-25", "poor PS")):
        chart.add(
            "Observation",
            status="final",
            code={"text": "Performance status"},
            effectiveDateTime=day,
            valueString=text,
        )
    patients, _ = build_patient_records(((r, "test") for r in chart.resources), kb)
    record = patients["Patient/p1"]
    assert factors.ecog(record, kb, AS_OF) is None
    verdict = fitness.transplant(record, kb, "dlbcl", AS_OF)
    assert verdict is not None and verdict.status == "unknown"


@pytest.mark.parametrize(("answer", "ecog"), [("LA29176-7", 1), ("LA29180-9", 3), ("LA9627-6", 5)])
def test_a_karnofsky_loinc_answer_is_read(answer: str, ecog: int, kb) -> None:
    coded = {"coding": [{"system": LOINC, "code": answer}]}
    _, fact, odd = performance(KPS_LOINC, kb, valueCodeableConcept=coded)
    assert odd is None and fact is not None and fact.value == ecog
