"""Measured creatinine clearance (24-hour urine, LOINC 2164-2): read in mL/min, mL/s or per
1.73 m2 with the lab's comparator; newer than the estimates it is the value the renal rules use; an
old abnormal value keeps its caution and asks for a re-check, never dropped, never fit."""

from __future__ import annotations

import pytest

from salvage.engine import analyse_patient, contraindications, factors
from salvage.engine.recommend import recommend
from tests.conftest import AS_OF, Chart, q21
from tests.engine.test_messy_records import R_CHOP, record_of

MEASURED = "2164-2"


def clearance(chart: Chart, day: str, **value) -> str:
    return chart.add(
        "Observation",
        status="final",
        code={"coding": [{"system": "http://loinc.org", "code": MEASURED}]},
        effectiveDateTime=day,
        **value,
    )


def quantity(value: float, unit: str, comparator: str | None = None) -> dict:
    q: dict = {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}
    if comparator:
        q["comparator"] = comparator
    return q


@pytest.mark.parametrize(
    ("value", "expected", "comparator"),
    [
        ({"valueQuantity": quantity(45, "mL/min")}, 45.0, None),
        ({"valueQuantity": quantity(0.5, "mL/s")}, 30.0, None),  # SI unit
        ({"valueQuantity": quantity(72, "mL/min/{1.73_m2}")}, 72.0, None),
        ({"valueQuantity": quantity(30, "mL/min", "<")}, 30.0, "<"),
        ({"valueString": ">=60 mL/min"}, 60.0, ">="),
        ({"valueString": "<30 mL/min"}, 30.0, "<"),
    ],
)
def test_a_measured_clearance_is_read_with_its_unit_and_comparator(
    kb, value, expected, comparator
) -> None:
    chart = Chart()
    clearance(chart, "2026-06-20", **value)
    fact = factors.creatinine_clearance(record_of(chart, kb), kb, AS_OF)
    assert fact is not None and fact.value == pytest.approx(expected)
    assert fact.comparator == comparator and "measured" in fact.text and not fact.stale


def test_a_bare_number_is_reported_not_guessed_as_ml_per_min(kb) -> None:
    chart = Chart()
    clearance(chart, "2026-06-20", valueQuantity={"value": 1.1})  # mL/s or mL/min?
    record = record_of(chart, kb)
    assert factors.creatinine_clearance(record, kb, AS_OF) is None
    assert any("creatinine-clearance" in w.problem for w in record.warnings)


@pytest.mark.parametrize(
    ("value", "severity", "basis"),
    [
        (quantity(30, "mL/min", "<"), "contraindicated", "current"),  # "<30": below 60
        (quantity(60, "mL/min", ">="), None, None),  # ">=60": at the limit, fine
        (quantity(70, "mL/min", "<"), "caution", "indeterminate"),  # "<70": cannot be placed
    ],
)
def test_cisplatin_follows_the_measured_clearance_and_its_comparator(
    kb, value, severity, basis
) -> None:
    chart = Chart()
    clearance(chart, "2026-06-20", valueQuantity=value)
    found = contraindications.drug_findings(
        frozenset({"cisplatin"}), record_of(chart, kb), kb, AS_OF
    )
    assert [(f.severity, f.basis) for f in found] == ([(severity, basis)] if severity else [])


def test_a_14_month_old_low_measured_clearance_stays_visible_and_asks_for_a_recheck(kb) -> None:
    chart = Chart()
    clearance(chart, "2025-04-30", valueQuantity=quantity(30, "mL/min", "<"))
    (finding,) = contraindications.drug_findings(
        frozenset({"cisplatin"}), record_of(chart, kb), kb, AS_OF
    )
    assert (finding.severity, finding.basis, finding.abnormal) == ("caution", "stale", True)
    assert finding.recheck == "re-check creatinine clearance before cisplatin"
    assert "14 months old" in finding.text and "<30 mL/min" in finding.text


def test_a_newer_estimate_supersedes_an_older_measured_clearance_and_not_the_reverse(kb) -> None:
    chart = Chart()
    clearance(chart, "2026-06-01", valueQuantity=quantity(40, "mL/min"))
    chart.add(
        "Observation",
        status="final",
        code={"coding": [{"system": "http://loinc.org", "code": "98979-8"}]},
        effectiveDateTime="2026-06-01",  # same day: the measured value wins
        valueQuantity=quantity(75, "mL/min/{1.73_m2}"),
    )
    fact = factors.creatinine_clearance(record_of(chart, kb), kb, AS_OF)
    assert fact is not None and fact.value == 40
    chart.add(
        "Observation",
        status="final",
        code={"coding": [{"system": "http://loinc.org", "code": "98979-8"}]},
        effectiveDateTime="2026-06-25",
        valueQuantity=quantity(75, "mL/min/{1.73_m2}"),
    )
    fact = factors.creatinine_clearance(record_of(chart, kb), kb, AS_OF)
    assert fact is not None and fact.value == 75


def late_relapse(kb, *, crcl_day: str | None) -> object:
    chart = Chart()
    chart.cycles(R_CHOP, q21("2023-01-10", 6))
    chart.add(
        "Observation",
        status="final",
        code={"coding": [{"system": "http://loinc.org", "code": "97509-4"}]},
        effectiveDateTime="2026-06-01",
        valueCodeableConcept={
            "coding": [{"system": "http://snomed.info/sct", "code": "271299001"}]
        },
    )
    chart.add(
        "Observation",
        status="final",
        code={"text": "ECOG"},
        effectiveDateTime="2026-06-15",
        valueString="ECOG 0",
    )
    if crcl_day:
        clearance(chart, crcl_day, valueQuantity=quantity(30, "mL/min", "<"))
    record = record_of(chart, kb)
    return recommend(analyse_patient(record, kb, AS_OF), kb, AS_OF)


@pytest.mark.parametrize("crcl_day", [None, "2025-04-30"])
def test_a_cisplatin_regimen_is_never_offered_as_fit_on_a_missing_or_stale_clearance(
    kb, crcl_day
) -> None:
    rec = late_relapse(kb, crcl_day=crcl_day)
    found = [o for o in rec.options if o.regimen in ("R-DHAP", "R-GDP")]
    assert found
    r_ice = next(o.rank for o in rec.options if o.regimen == "R-ICE")
    for option in found:
        assert option.recheck and all("creatinine clearance" in r for r in option.recheck)
        assert option.rank > r_ice  # after the options resting on current data
    if crcl_day:
        # the old value is said once, for the patient, not on every cisplatin option
        assert any("2025-04-30" in m and "re-check" in m for m in rec.missing_data)
        assert not any("2025-04-30" in r for o in found for r in (*o.recheck, *o.cautions))


def test_a_current_low_measured_clearance_rules_out_transplant_and_cisplatin(kb) -> None:
    rec = late_relapse(kb, crcl_day="2026-06-20")
    assert rec.transplant is not None and rec.transplant.status == "not-candidate"
    assert "measured creatinine clearance <30 mL/min" in rec.transplant.summary()
    assert not {"R-DHAP", "R-GDP"} & {o.regimen for o in rec.options}


@pytest.mark.parametrize(
    ("value", "cautioned"),
    [
        (quantity(30, "mL/min", "<"), True),  # "<30": below the limit
        (quantity(45, "mL/min"), False),
        (quantity(30, "mL/min", ">"), False),
    ],
)
def test_oxaliplatin_is_cautioned_not_avoided_below_30_ml_per_min(kb, value, cautioned) -> None:
    chart = Chart()
    clearance(chart, "2026-06-20", valueQuantity=value)
    found = contraindications.drug_findings(
        frozenset({"oxaliplatin"}), record_of(chart, kb), kb, AS_OF
    )
    assert [(f.severity, f.recheck) for f in found] == ([("caution", None)] if cautioned else [])
    if cautioned:
        assert "labels differ" in found[0].text and "Takimoto 2003" in found[0].text


def test_an_unknown_clearance_adds_no_oxaliplatin_caution(kb) -> None:
    found = contraindications.drug_findings(
        frozenset({"oxaliplatin"}), record_of(Chart(), kb), kb, AS_OF
    )
    assert found == []
