"""HIV salvage follows resistance (issue 13): each HIV fixture patient gets the hand-reviewed
options, exclusions, per-drug activity and missing-data statements in its expected file."""

from __future__ import annotations

import json

import pytest

from salvage.engine import analyse_patient, hiv_regimens
from salvage.engine.recommend import recommend
from salvage.fhir.reader import ReadResult, iter_resources
from salvage.fhir.records import build_patient_records
from tests.conftest import AS_OF, FIXTURES

CASES = sorted(
    p.stem for p in (FIXTURES / "expected").glob("hiv-*.json") if "hiv" in json.loads(p.read_text())
)


def _recommendation(kb, case: str):
    patients, skipped = build_patient_records(
        iter_resources([str(FIXTURES / f"{case}.json")], ReadResult()), kb
    )
    assert not skipped
    (record,) = patients.values()
    return recommend(analyse_patient(record, kb, AS_OF), kb, AS_OF)


def test_there_are_at_least_ten_hiv_salvage_fixture_patients() -> None:
    assert len(CASES) >= 10


@pytest.mark.parametrize("case", CASES)
def test_hiv_fixture_patient_gets_the_reviewed_advice(kb, case: str) -> None:
    expected = json.loads((FIXTURES / "expected" / f"{case}.json").read_text())["hiv"]
    rec = _recommendation(kb, case)
    assert [o.regimen for o in rec.options] == expected["options"]
    assert [x.regimen for x in rec.excluded] == expected["excluded"]
    for regimen, ingredients in expected["ingredients"].items():
        (option,) = [o for o in rec.options if o.regimen == regimen]
        assert list(option.ingredients) == ingredients
    levels = {}
    for option in rec.options:
        assert isinstance(option, hiv_regimens.HivOption)
        levels |= {  # integrase-naive DTG/BIC: the genotype says unknown, the option "active"
            a.drug: a.level for a in option.activity if a.basis != kb.hiv.presumed_active.label
        }
    from salvage.engine import resistance

    assessed = resistance.assess(_record(kb, case), kb)
    for drug, level in expected["activity"].items():
        assert assessed.level(drug) == level, (drug, assessed.drugs[drug].text)
        if drug in levels:
            assert levels[drug] == level
    for fragment in expected["missing"]:
        assert any(fragment in m for m in rec.missing_data), (fragment, rec.missing_data)


def _record(kb, case: str):
    patients, _ = build_patient_records(
        iter_resources([str(FIXTURES / f"{case}.json")], ReadResult()), kb
    )
    (record,) = patients.values()
    return record


@pytest.mark.parametrize("case", CASES)
def test_every_hiv_option_counts_its_fully_active_drugs(kb, case: str) -> None:
    for option in _recommendation(kb, case).options:
        if option.kind == "test":
            continue
        assert any(r.startswith("fully active drugs: ") for r in option.rationale)
        assert option.fully_active == sum(a.level == "active" for a in option.activity)


@pytest.mark.parametrize("case", ["hiv-hbv-crcl45", "hiv-hbv-dialysis"])
def test_with_hepatitis_b_every_regimen_keeps_taf_with_emtricitabine(kb, case: str) -> None:
    rec = _recommendation(kb, case)
    regimens = [o for o in rec.options if o.kind in ("regimen", "construct")]
    assert regimens
    for option in regimens:
        assert {"tenofovir alafenamide", "emtricitabine"} <= set(option.ingredients)
        assert "tenofovir disoproxil" not in option.ingredients
        assert any("HBV-active pair" in c for c in option.cautions)
        assert not any("TAF or TDF" in text for text in (*option.cautions, *option.rationale))


def test_below_60_ml_per_min_the_text_names_taf_and_rules_out_tdf(kb) -> None:
    rec = _recommendation(kb, "hiv-hbv-crcl45")
    (fact,) = [f for f in rec.facts if f.startswith("creatinine clearance 45 mL/min")]
    assert "tenofovir alafenamide, not tenofovir disoproxil" in fact


def test_on_dialysis_taf_is_kept_below_15_ml_per_min(kb) -> None:
    rec = _recommendation(kb, "hiv-hbv-dialysis")
    assert any("on renal dialysis" in f for f in rec.facts)
    assert not any("tenofovir alafenamide avoided" in r for x in rec.excluded for r in x.reasons)


def test_multidrug_resistance_agents_come_with_named_fully_active_companions(kb) -> None:
    rec = _recommendation(kb, "hiv-multiclass-resistance")
    agents = [o for o in rec.options if o.kind == "construct"]
    assert [o.regimen for o in agents][:1] == ["Fostemsavir + optimised background"]
    for option in agents:
        assert isinstance(option, hiv_regimens.HivOption) and option.construct
        assert option.min_drugs >= 2 and len(option.ingredients) >= 2
        assert option.fully_active >= 1
        assert any(r.startswith("Construct the regimen: ") for r in option.rationale)


@pytest.mark.parametrize(
    "case",
    ["hiv-archived-m184v", "hiv-k65r-nadia", "hiv-hbv-crcl45", "hiv-cabrpv-insti-resistance"],
)
def test_multidrug_resistance_agents_are_not_offered_without_multiclass_resistance(
    kb, case: str
) -> None:
    rec = _recommendation(kb, case)
    assert not [o for o in rec.options if o.kind == "construct"]
    for x in rec.excluded:
        if x.option_id in ("hiv-fostemsavir", "hiv-ibalizumab", "hiv-lenacapavir"):
            assert "needs documented resistance in at least 3" in x.reasons[0]


def test_recycled_tenofovir_and_xtc_are_offered_with_m184v_after_nnrti_failure(kb) -> None:
    rec = _recommendation(kb, "hiv-k65r-nadia")
    (dtg,) = [o for o in rec.options if o.option_id == "hiv-dtg-2nrti"]
    assert "NADIA" in dtg.evidence
    assert {a.drug: a.level for a in dtg.activity}["emtricitabine"] == "inactive"


def test_after_cab_rpv_failure_without_genotype_an_integrase_genotype_comes_first(kb) -> None:
    rec = _recommendation(kb, "hiv-cabrpv-no-genotype")
    assert rec.options[0].kind == "test" and "integrase" in rec.options[0].regimen
    assert any("contains cabotegravir" in f for f in rec.facts)


def test_an_unknown_activity_is_never_counted_as_fully_active(kb) -> None:
    rec = _recommendation(kb, "hiv-cabrpv-no-genotype")
    (drv,) = [o for o in rec.options if o.option_id == "hiv-drvr-2nrti"]
    assert drv.fully_active == 0 and drv.unknown_activity == 3
