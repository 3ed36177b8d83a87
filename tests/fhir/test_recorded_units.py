"""A value recorded in another unit than the one the thresholds use is shown in that unit, saying
the recorded one (ux finding 7): "2.6 ng/mL (recorded as ug/L)", driven by the conversion
factors of observations.yaml."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from salvage import service
from salvage.engine.failures import psa_text
from salvage.fhir import observation_records
from salvage.fhir.records import build_patient_records

KB = service.knowledge_base()
PSA = "2857-1"


def _psa(value: dict[str, Any]) -> Any:
    resources = [
        {"resourceType": "Patient", "id": "p"},
        {
            "resourceType": "Observation",
            "id": "o1",
            "status": "final",
            "subject": {"reference": "Patient/p"},
            "code": {"coding": [{"system": "http://loinc.org", "code": PSA}]},
            "effectiveDateTime": "2025-03-01",
            **value,
        },
    ]
    patients, _ = build_patient_records(((r, "t") for r in resources), KB)
    (m,) = patients["Patient/p"].measurements
    return m


def _quantity(value: float, unit: str, comparator: str | None = None) -> dict[str, Any]:
    q: dict[str, Any] = {"value": value, "unit": unit, "system": "http://unitsofmeasure.org"}
    if comparator:
        q["comparator"] = comparator
    return {"valueQuantity": q}


@pytest.mark.parametrize(
    ("value", "shown", "number"),
    [
        (_quantity(2.6, "ug/L"), "2.6 ng/mL (recorded as ug/L)", 2.6),
        (_quantity(2.6, "µg/L"), "2.6 ng/mL (recorded as µg/L)", 2.6),
        (_quantity(0.1, "ug/L", "<"), "<0.1 ng/mL (recorded as ug/L)", 0.1),
        (_quantity(25, "ng/dL"), "0.25 ng/mL (recorded as 25 ng/dL)", 0.25),
        ({"valueString": "2.6 ug/L"}, "2.6 ng/mL (recorded as ug/L)", 2.6),
    ],
)
def test_a_psa_in_another_unit_is_shown_in_ng_ml_with_the_recorded_unit(
    value: dict[str, Any], shown: str, number: float
) -> None:
    m = _psa(value)
    assert m.value == pytest.approx(number)  # a value-preserving unit keeps the number
    assert m.shown == shown and psa_text(m) == shown


def test_a_psa_in_ng_ml_is_shown_as_recorded() -> None:
    m = _psa(_quantity(2.6, "ng/mL"))
    assert m.shown == "" and psa_text(m) == "2.6 ng/mL"


def test_the_factor_comes_from_the_units_file() -> None:
    """ug/L keeps its number because observations.yaml gives it the factor 1; any unit given the
    factor 1 there is shown the same way."""
    spec = KB.observation_kinds["psa"]
    assert spec.convert["ug/L"] == 1 and spec.convert["ng/dL"] != 1
    other = replace(spec, convert={**spec.convert, "pg/uL": 1})
    assert observation_records._shown(other, None, 3.0, "pg/uL", 1, 3.0) == (
        "3 ng/mL (recorded as pg/uL)"
    )
