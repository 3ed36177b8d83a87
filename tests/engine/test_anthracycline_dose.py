"""Issue 12 item 10: the cumulative anthracycline dose counts every documented dose (with the kind
of record it comes from), by cited equivalence ratios, converts mg with the BSA nearest to the dose,
says "at least" when a dose cannot be converted and "unknown" when no dose is documented."""

from __future__ import annotations

import math

import pytest

from salvage.engine import anthracycline, contraindications
from salvage.engine.recommend import recommend
from salvage.fhir.reader import ReadResult, iter_resources
from salvage.fhir.records import build_patient_records
from salvage.knowledge.loader import load_raw
from tests.conftest import AS_OF, FIXTURES, LOINC, Chart, q21


def _record(kb, case: str):
    patients, _ = build_patient_records(
        iter_resources([str(FIXTURES / f"{case}.json")], ReadResult()), kb
    )
    (record,) = patients.values()
    return record


def _dose(value: float, unit: str) -> dict:
    return {"dose": {"value": value, "unit": unit, "code": unit}}


def _ordered(value: float, unit: str, count: int | None = None) -> list[dict]:
    dosage: dict = {"doseAndRate": [{"doseQuantity": {"value": value, "unit": unit, "code": unit}}]}
    if count:
        dosage["timing"] = {"repeat": {"count": count}}
    return [dosage]


@pytest.mark.parametrize(
    ("drug", "ratio", "basis"),
    [
        ("doxorubicin", 1.0, "Feijen2019"),
        ("epirubicin", 0.8, "Feijen2019"),
        ("daunorubicin", 0.6, "Feijen2019"),
        ("mitoxantrone", 10.5, "Feijen2019"),
        ("idarubicin", 5.0, "assumed"),
        ("pegylated liposomal doxorubicin", 1.0, "assumed"),
    ],
)
def test_equivalence_ratios_are_data_with_their_basis(kb, drug, ratio, basis) -> None:
    assert kb.drugs[drug].anthracycline_equivalence == ratio
    assert kb.drugs[drug].anthracycline_equivalence_basis == basis


def test_the_cited_sources_carry_doi_and_pmid() -> None:
    evidence = load_raw()["evidence"].evidence
    assert (evidence["Feijen2019"].doi, evidence["Feijen2019"].pmid) == (
        "10.1001/jamaoncol.2018.6634",
        "30703192",
    )
    assert evidence["Mosteller1987"].pmid == "3657876"


def test_every_documented_dose_counts_with_its_source_kind(kb) -> None:
    total = anthracycline.cumulative(_record(kb, "dlbcl-anthracycline-dose-sources"), kb, AS_OF)
    assert total is not None and not total.at_least
    kinds = {(d.kind, d.drug) for d in total.counted}
    assert kinds == {
        ("statement", "epirubicin"),
        ("order", "epirubicin"),
        ("administration", "doxorubicin"),
    }
    # 4 x 50 + 2 x 80 / sqrt(164 x 57 / 3600) + 0.8 x (4 x 100 + 2 x 160 / sqrt(165 x 64 / 3600))
    expected = (
        200 + 160 / math.sqrt(164 * 57 / 3600) + 0.8 * (400 + 320 / math.sqrt(165 * 64 / 3600))
    )
    assert total.total == pytest.approx(expected)
    assert round(total.total) == 769


def test_an_order_carried_out_by_an_administration_counts_once(kb) -> None:
    record = _record(kb, "dlbcl-anthracycline-dose-sources")
    total = anthracycline.cumulative(record, kb, AS_OF)
    assert total is not None
    doxorubicin_orders = [d for d in total.doses if d.kind == "order" and d.drug == "doxorubicin"]
    assert doxorubicin_orders == []
    assert len([d for d in total.doses if d.drug == "doxorubicin"]) == 6


def test_mg_doses_use_the_weight_nearest_to_the_dose_not_the_latest(kb) -> None:
    chart = Chart()
    chart.quantity("8302-2", "2020-01-01", 170, "cm")
    near = chart.quantity("29463-7", "2024-01-05", 90, "kg")
    chart.quantity("29463-7", "2026-06-01", 60, "kg")  # much later weight loss
    chart.give("doxorubicin", "2024-01-08", dosage=_dose(100, "mg"))
    total = anthracycline.cumulative(chart.analyse(kb).record, kb, AS_OF)
    assert total is not None
    (dose,) = total.doses
    assert near in dose.bsa_sources
    assert dose.mg_m2 == pytest.approx(100 / math.sqrt(170 * 90 / 3600))


def test_a_dose_that_cannot_be_converted_makes_the_total_at_least(kb) -> None:
    chart = Chart()
    chart.give("doxorubicin", "2024-01-08", dosage=_dose(50, "mg/m2"))
    chart.give("doxorubicin", "2024-01-29", dosage=_dose(90, "mg"))  # no height or weight
    chart.give("doxorubicin", "2024-02-19", dosage=_dose(2, "mL"))  # not a dose unit read
    total = anthracycline.cumulative(chart.analyse(kb).record, kb, AS_OF)
    assert total is not None and total.at_least and total.total == 50
    text = anthracycline.describe(total, kb)
    assert text.startswith("cumulative anthracycline at least 50 mg/m2")
    assert "2 dose(s) not converted" in text


def test_an_order_over_several_weeks_without_a_count_is_a_lower_bound(kb) -> None:
    chart = Chart()
    chart.order(
        "epirubicin",
        "2024-01-08",
        dosageInstruction=[
            {
                **_ordered(90, "mg/m2")[0],
                "timing": {
                    "repeat": {"boundsPeriod": {"start": "2024-01-08", "end": "2024-03-11"}}
                },
            }
        ],
    )
    total = anthracycline.cumulative(chart.analyse(kb).record, kb, AS_OF)
    assert total is not None and total.at_least and total.total == pytest.approx(72)


def test_an_order_with_a_count_counts_every_dose(kb) -> None:
    chart = Chart()
    chart.order("daunorubicin", "2024-01-08", dosageInstruction=_ordered(60, "mg/m2", count=3))
    total = anthracycline.cumulative(chart.analyse(kb).record, kb, AS_OF)
    assert total is not None and not total.at_least
    assert total.total == pytest.approx(3 * 60 * 0.6)


def test_no_documented_dose_is_missing_data_never_zero(kb) -> None:
    chart = Chart()
    for day in q21("2024-01-01", 6):
        chart.cycles(["rituximab", "cyclophosphamide", "doxorubicin", "vincristine"], [day])
    chart.status("2024-09-01")
    analysis = chart.analyse(kb)
    total = anthracycline.cumulative(analysis.record, kb, AS_OF)
    assert total is not None and not total.known and len(total.undocumented) == 6
    rec = recommend(analysis, kb, AS_OF)
    assert any(m.startswith("cumulative anthracycline dose unknown") for m in rec.missing_data)
    (finding,) = contraindications.drug_findings(
        frozenset({"doxorubicin"}), analysis.record, kb, AS_OF
    )
    assert (finding.severity, finding.basis) == ("caution", "unknown")


def test_a_patient_never_given_an_anthracycline_has_no_total_and_no_finding(kb) -> None:
    chart = Chart()
    chart.give("rituximab", "2024-01-08")
    analysis = chart.analyse(kb)
    assert anthracycline.cumulative(analysis.record, kb, AS_OF) is None
    assert (
        contraindications.drug_findings(frozenset({"doxorubicin"}), analysis.record, kb, AS_OF)
        == []
    )


def test_the_limit_contraindicates_and_counts_orders_and_statements(kb) -> None:
    record = _record(kb, "dlbcl-anthracycline-dose-sources")
    findings = contraindications.drug_findings(frozenset({"doxorubicin"}), record, kb, AS_OF)
    assert [(f.severity, f.basis) for f in findings] == [("contraindicated", "current")]
    assert "769 mg/m2" in findings[0].text and "1 statement" in findings[0].text


def test_liposomal_doxorubicin_counts_with_the_assumption_stated(kb) -> None:
    total = anthracycline.cumulative(
        _record(kb, "hodgkin-liposomal-doxorubicin-at-least"), kb, AS_OF
    )
    assert total is not None
    assert total.assumed == ("pegylated liposomal doxorubicin",)
    assert round(total.total) == 330 and total.at_least
    (unconverted,) = total.unconverted
    assert unconverted.problem is not None and "more than 90 days" in unconverted.problem


def test_the_json_lists_every_dose_with_its_kind(capsys) -> None:
    import json

    from salvage import cli

    path = FIXTURES / "dlbcl-anthracycline-dose-sources.json"
    assert cli.main(["lines", str(path), "--json", "--as-of", AS_OF.isoformat()]) == 0
    (patient,) = json.loads(capsys.readouterr().out)["patients"]
    dose = patient["anthracycline_dose"]
    assert dose["total_mg_m2"] == pytest.approx(768.8, abs=0.1) and dose["at_least"] is False
    assert {d["kind"] for d in dose["doses"]} == {"administration", "order", "statement"}


def test_height_and_weight_in_other_units_convert(kb) -> None:
    chart = Chart()
    chart.add(
        "Observation",
        status="final",
        code={"coding": [{"system": LOINC, "code": "29463-7"}]},
        effectiveDateTime="2024-01-05",
        valueQuantity={"value": 176.4, "unit": "lb", "code": "[lb_av]"},
    )
    chart.quantity("8302-2", "2024-01-05", 170, "cm")
    chart.give("doxorubicin", "2024-01-08", dosage=_dose(100, "mg"))
    total = anthracycline.cumulative(chart.analyse(kb).record, kb, AS_OF)
    assert total is not None and total.known
    assert total.total == pytest.approx(100 / math.sqrt(170 * 176.4 * 0.45359237 / 3600), rel=1e-3)


@pytest.mark.parametrize(
    "fields",
    [
        {"dosage": "50 mg"},
        {"dosage": {"dose": "50 mg"}},
        {"dosage": {"dose": {"value": float("inf"), "unit": "mg/m2"}}},
        {"dosage": {"dose": {"value": True, "unit": "mg/m2"}}},
        {"dosage": {"dose": {"value": -50, "unit": "mg/m2"}}},
        {"basedOn": {"reference": 3}},
    ],
)
def test_a_malformed_dose_is_undocumented_never_an_error(kb, fields: dict) -> None:
    chart = Chart()
    chart.give("doxorubicin", "2024-01-08", **fields)
    total = anthracycline.cumulative(chart.analyse(kb).record, kb, AS_OF)
    assert total is not None and not total.known and total.at_least
    assert anthracycline.describe(total, kb).startswith("cumulative anthracycline dose unknown")
