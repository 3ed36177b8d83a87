"""Haematology review (clin-heme): an undocumented anthracycline dose is a caution, never a lower
rank; consolidation follows salvage; wording a haematologist can act on."""

from __future__ import annotations

import pytest

from salvage.engine.recommend import recommend
from tests.conftest import AS_OF, Chart, q21

ABVD = ["doxorubicin", "bleomycin", "vinblastine", "dacarbazine"]
HODGKIN = "118599009"


def hodgkin_relapse(*, documented: bool) -> Chart:
    chart = Chart(disease_snomed=HODGKIN)
    chart.resources[0]["birthDate"] = "1992-03-01"
    for day in q21("2024-01-08", 6, every=28):
        for drug in ABVD:
            extra = (
                {"dosage": {"dose": {"value": 25, "unit": "mg/m2", "code": "mg/m2"}}}
                if documented and drug == "doxorubicin"
                else {}
            )
            chart.give(drug, day, **extra)
            if drug == "doxorubicin":
                chart.give(drug, day, **extra)  # ABVD: days 1 and 15
    chart.status("2026-05-20")
    chart.add(
        "Observation",
        status="final",
        code={"text": "ECOG performance status"},
        effectiveDateTime="2026-06-10",
        valueString="ECOG 0",
    )
    return chart


def ranked(chart: Chart, kb):
    rec = recommend(chart.analyse(kb), kb, AS_OF)
    return rec, [o.regimen for o in rec.options]


def test_an_undocumented_anthracycline_dose_cautions_without_lowering_the_rank(kb) -> None:
    _, documented = ranked(hodgkin_relapse(documented=True), kb)
    rec_unknown, unknown = ranked(hodgkin_relapse(documented=False), kb)
    assert unknown == documented  # same order, whatever the documentation
    option = next(o for o in rec_unknown.options if o.regimen == "Pembrolizumab-GVD")
    assert option.recheck == ()
    assert any("cumulative anthracycline dose unknown" in c for c in option.cautions)
    assert not any("after options resting on current data" in r for r in option.rank_reasons)
    assert any("anthracycline" in m for m in rec_unknown.missing_data)


def test_transplant_consolidation_is_the_step_after_salvage_not_a_competing_option(kb) -> None:
    from salvage import output

    rec, names = ranked(hodgkin_relapse(documented=True), kb)
    assert not any(n.startswith("High-dose therapy") for n in names)
    step = rec.after_salvage[0]
    assert step.regimen.startswith("High-dose therapy and autologous stem-cell transplant")
    assert "not an alternative" in step.rank_reasons[0]
    assert not any("pathway preference" in r for r in step.rank_reasons)
    document = output.recommendation_json(rec, kb)
    assert [s["id"] for s in document["after_salvage"]] == [s.option_id for s in rec.after_salvage]
    assert step.option_id not in [o["id"] for o in document["options"]]


@pytest.mark.parametrize(("ecog", "first"), [("ECOG 3", True), ("ECOG 1", False)])
def test_the_poor_performance_reason_for_palliative_care_appears_only_when_it_applies(
    kb, ecog: str, first: bool
) -> None:
    chart = Chart()
    chart.resources[0]["birthDate"] = "1950-01-01"
    chart.cycles(
        ["rituximab", "cyclophosphamide", "doxorubicin", "vincristine", "prednisone"],
        q21("2023-01-10", 6),
    )
    chart.status("2026-06-01")
    chart.add(
        "Observation",
        status="final",
        code={"text": "Performance status"},
        effectiveDateTime="2026-06-20",
        valueString=ecog,
    )
    rec, names = ranked(chart, kb)
    care = next(o for o in rec.options if o.kind == "care")
    assert (names[0] == care.regimen) is first
    said = " ".join([*care.rationale, *care.rank_reasons])
    assert ("ECOG 3-4" in said) is first
    for option in rec.options:
        assert not any("preference" in r or r.startswith("evidence:") for r in option.rank_reasons)


def test_vincristine_intolerance_in_r_chop_is_substituted_by_pola_r_chp_with_its_limits(
    kb,
) -> None:
    chart = Chart()
    chart.cycles(
        ["rituximab", "cyclophosphamide", "doxorubicin", "vincristine", "prednisone"],
        q21("2024-01-08", 2),
    )
    chart.order(
        "vincristine",
        "2024-01-29",
        status="stopped",
        statusReason={"coding": [{"system": "http://snomed.info/sct", "code": "407563006"}]},
    )
    rec, names = ranked(chart, kb)
    assert rec.failure is not None and rec.failure.kind == "intolerance"
    assert names == ["Pola-R-CHP"]
    option = rec.options[0]
    assert option.evidence == ("POLARIX",)
    assert "vincristine not tolerated" in option.rationale[0]
    assert any("neuropathy above grade 1" in c for c in option.cautions)


def test_the_cds_card_lists_consolidation_after_the_options_not_among_them(kb) -> None:
    from cds_hooks.cards import _options_lines

    rec, _ = ranked(hodgkin_relapse(documented=True), kb)
    lines = _options_lines(kb, rec, frozenset(), frozenset())
    then = [i for i, line in enumerate(lines) if line.startswith("- **Then, after salvage: ")]
    assert then and then == list(range(len(lines) - len(then), len(lines)))
    assert lines[then[0]].startswith("- **Then, after salvage: High-dose therapy")
    assert not any(line.startswith("- **") and "High-dose" in line for line in lines[: then[0]])
