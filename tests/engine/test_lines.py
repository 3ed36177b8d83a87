"""Line-of-therapy rules (Meng 2021 defaults, HIV regimen changes), firing and not firing."""

from __future__ import annotations

from datetime import date

from tests.conftest import Chart, q21

R_CHOP = ["rituximab", "cyclophosphamide", "doxorubicin", "vincristine", "prednisone"]


def regimens(analysis) -> list[tuple[int, str, bool]]:
    return [(line.number, line.regimen, line.maintenance) for line in analysis.lines]


def test_drugs_started_within_28_days_form_one_regimen(kb) -> None:
    chart = Chart()
    chart.cycles(["rituximab", "ifosfamide", "etoposide"], ["2024-01-01"])
    chart.give("carboplatin", "2024-01-29")  # day 28: still inside the window
    assert regimens(chart.analyse(kb)) == [(1, "R-ICE", False)]


def test_a_new_drug_on_day_29_starts_a_new_line(kb) -> None:
    chart = Chart()
    chart.cycles(["rituximab", "ifosfamide", "etoposide"], ["2024-01-01"])
    chart.give("carboplatin", "2024-01-30")
    assert [line.number for line in chart.analyse(kb).lines] == [1, 2]


def test_a_gap_of_120_days_keeps_the_line_and_121_days_ends_it(kb) -> None:
    kept = Chart()
    kept.cycles(R_CHOP, ["2024-01-01", "2024-04-30"])  # 120 days apart
    assert [line.number for line in kept.analyse(kb).lines] == [1]
    ended = Chart()
    ended.cycles(R_CHOP, ["2024-01-01", "2024-05-01"])  # 121 days apart
    assert regimens(ended.analyse(kb)) == [(1, "R-CHOP", False), (2, "R-CHOP", False)]


def test_dropping_a_drug_does_not_advance_the_line(kb) -> None:
    chart = Chart()
    chart.cycles(R_CHOP, q21("2024-01-01", 2))
    chart.cycles(
        ["rituximab", "cyclophosphamide", "doxorubicin", "prednisone"], q21("2024-02-12", 2)
    )
    analysis = chart.analyse(kb)
    assert regimens(analysis) == [(1, "R-CHOP", False)]
    assert analysis.lines[0].end == date(2024, 3, 4)


def test_paclitaxel_to_nab_paclitaxel_is_a_substitution(kb) -> None:
    chart = Chart(disease_snomed="254637007")
    chart.cycles(["carboplatin", "paclitaxel"], q21("2024-01-01", 2))
    chart.cycles(["carboplatin", "abraxane"], q21("2024-02-12", 2))
    analysis = chart.analyse(kb)
    assert [line.number for line in analysis.lines] == [1]
    assert "nab-paclitaxel" in analysis.lines[0].ingredients


def test_supportive_drugs_never_start_a_line(kb) -> None:
    chart = Chart()
    for drug in (
        "ondansetron",
        "pegfilgrastim",
        "mesna",
        "leucovorin",
        "allopurinol",
        "dexamethasone",
    ):
        chart.give(drug, "2024-01-01")
    analysis = chart.analyse(kb)
    assert analysis.lines == ()
    assert analysis.unmapped == ()


def test_a_premedication_steroid_does_not_change_the_regimen(kb) -> None:
    chart = Chart()
    chart.cycles([*R_CHOP, "dexamethasone"], ["2024-01-01"])
    (line,) = chart.analyse(kb).lines
    assert line.regimen == "R-CHOP"
    assert "dexamethasone" not in line.ingredients


def test_an_unknown_drug_is_reported_unmapped_and_not_dropped(kb) -> None:
    chart = Chart()
    source = chart.give("Zorblatinib 40 mg", "2024-01-01")
    analysis = chart.analyse(kb)
    assert [(u.source, u.text) for u in analysis.unmapped] == [(source, "Zorblatinib 40 mg")]


def test_brand_name_in_text_maps_to_the_ingredient(kb) -> None:
    chart = Chart()
    chart.give("Rituxan 375 mg/m2", "2024-01-01")
    assert chart.analyse(kb).lines[0].ingredients == ("rituximab",)


def test_continuous_oral_therapy_is_active_over_its_supply(kb) -> None:
    chart = Chart(disease_snomed="254837009")
    chart.order(
        "letrozole",
        "2024-01-01",
        dispenseRequest={
            "expectedSupplyDuration": {"value": 30, "code": "d"},
            "numberOfRepeatsAllowed": 2,
        },
    )
    (line,) = chart.analyse(kb).lines
    assert line.end == date(2024, 3, 30)  # 90 days of supply, not only the order date


def test_an_active_open_ended_order_is_ongoing(kb) -> None:
    chart = Chart(disease_snomed="254837009")
    chart.order("tamoxifen", "2024-01-01", status="active")
    (line,) = chart.analyse(kb, as_of=date(2025, 1, 1)).lines
    assert line.end is None


def test_hiv_any_regimen_change_is_a_new_line(kb) -> None:
    chart = Chart(disease_snomed="86406008")
    chart.order(
        "Biktarvy",
        "2020-01-01",
        dispenseRequest={
            "expectedSupplyDuration": {"value": 90, "code": "d"},
            "numberOfRepeatsAllowed": 3,
        },
    )
    chart.order("Dovato", "2020-12-27", status="active")
    analysis = chart.analyse(kb)
    assert regimens(analysis) == [(1, "BIC/FTC/TAF", False), (2, "DTG/3TC", False)]
    assert analysis.lines[1].end is None


def test_hiv_short_switch_overlap_is_not_a_regimen(kb) -> None:
    chart = Chart(disease_snomed="86406008")
    chart.order(
        "Biktarvy",
        "2020-01-01",
        dispenseRequest={"expectedSupplyDuration": {"value": 100, "code": "d"}},
    )
    chart.order("Dovato", "2020-04-01", status="active")  # 10 days of overlap
    analysis = chart.analyse(kb)
    assert [line.regimen for line in analysis.lines] == ["BIC/FTC/TAF", "DTG/3TC"]
    assert analysis.lines[1].start == date(2020, 4, 1)
