"""Salvage options: pathway choice, contraindication rules at their thresholds, overlay, and the
rule that a failed or not-tolerated drug is never offered again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from salvage import cli
from salvage.engine import contraindications
from salvage.engine.recommend import recommend
from salvage.errors import KnowledgeError
from salvage.knowledge import load_knowledge
from tests.conftest import AS_OF, FIXTURES, Chart, q21

R_CHOP = ["rituximab", "cyclophosphamide", "doxorubicin", "vincristine", "prednisone"]

# Since 2026-12 every oncology failure also offers palliative care, last unless ECOG is 3-4
# (ASCO guideline, Ferrell 2017).
PALLIATIVE = "Palliative care referral and best supportive care"


def dlbcl_relapse(relapse_day: str, *, birth: str = "1958-01-01") -> Chart:
    chart = Chart()
    chart.resources[0]["birthDate"] = birth
    chart.cycles(R_CHOP, q21("2023-01-02", 6))  # ends 2023-04-17
    chart.status(relapse_day)
    return chart


def fit(chart: Chart, ecog: int = 0, day: str = "2026-06-10") -> Chart:
    """A current ECOG: without one, transplant eligibility is unknown (issue 10, item 5)."""
    chart.add(
        "Observation",
        status="final",
        effectiveDateTime=day,
        code={"coding": [{"system": "http://loinc.org", "code": "89247-1"}]},
        valueInteger=ecog,
    )
    return chart


def options(chart: Chart, kb) -> list[str]:
    rec = recommend(chart.analyse(kb), kb, AS_OF)
    return [o.regimen for o in rec.options if o.kind != "trial"]  # trial: own test


def test_relapse_within_12_months_puts_car_t_first(kb) -> None:
    assert options(dlbcl_relapse("2023-12-01"), kb)[:2] == [
        "Axicabtagene ciloleucel",
        "Lisocabtagene maraleucel",
    ]


def test_relapse_after_12_months_in_a_transplant_candidate_offers_salvage_chemo(kb) -> None:
    # A transplant candidate: salvage is curative in intent, so no palliative-care option.
    assert options(fit(dlbcl_relapse("2024-06-03")), kb) == ["R-ICE", "R-DHAP", "R-GDP"]


def test_ecog_2_makes_the_patient_transplant_ineligible(kb) -> None:
    chart = dlbcl_relapse("2026-06-01")
    chart.add(
        "Observation",
        status="final",
        effectiveDateTime="2026-06-10",
        code={"coding": [{"system": "http://loinc.org", "code": "89247-1"}]},
        valueInteger=2,
    )
    rec = recommend(chart.analyse(kb), kb, AS_OF)
    # Changed 2026-12 (issue 12, items 3 and 7): late relapse off the transplant branch gets
    # liso-cel (PILOT, no 12-month limit) and glofitamab-GemOx (STARGLO).
    assert [o.regimen for o in rec.options if o.kind != "trial"] == [
        "Lisocabtagene maraleucel",
        "Pola-BR",
        "Glofitamab-GemOx",
        "Tafasitamab-lenalidomide",
        "R-GemOx",
        PALLIATIVE,
    ]
    assert any("ECOG 2" in r for r in rec.options[1].rationale)


# Changed 2026-12-07 (clin-heme item 3): PILOT's age >= 70 was a trial entry criterion, not an
# exclusion, and ZUMA-7 had no upper age limit (Westin 2023: benefit at 70 or more). A fit patient
# aged 70-75 is of unknown candidacy with both branches shown; ECOG 2 still rules transplant out.
@pytest.mark.parametrize(
    ("birth", "ecog", "status"),
    [
        ("1956-07-01", 0, "candidate"),  # 69 on AS_OF
        ("1956-06-30", 0, "unknown"),  # turns 70 that day
        ("1951-06-30", 1, "unknown"),  # 75
        ("1950-06-30", 0, "unknown"),  # 76: above the trials' range, a clinical decision
        ("1954-01-01", 2, "not-candidate"),  # 72 at ECOG 2 (PILOT criterion met)
    ],
)
def test_age_70_to_75_alone_leaves_transplant_candidacy_to_the_clinician(
    kb, birth: str, ecog: int, status: str
) -> None:
    chart = fit(dlbcl_relapse("2024-06-03", birth=birth), ecog=ecog)
    rec = recommend(chart.analyse(kb), kb, AS_OF)
    assert rec.transplant is not None and rec.transplant.status == status
    offered = {o.regimen: o.branch for o in rec.options}
    assert ("R-ICE" in offered) is (status != "not-candidate")
    assert ("Pola-BR" in offered) is (status != "candidate")
    if status == "unknown":  # both branches, each labelled
        assert offered["R-ICE"] and offered["Pola-BR"]
        if birth == "1956-06-30":
            assert "not an exclusion" in rec.transplant.summary()
            assert "ZUMA-7-older" in rec.transplant.evidence


@pytest.mark.parametrize(("ecog", "eligible"), [(1, True), (2, False)])
def test_transplant_eligibility_needs_ecog_0_or_1(kb, ecog: int, eligible: bool) -> None:
    chart = fit(dlbcl_relapse("2024-06-03"), ecog=ecog)
    assert ("R-ICE" in options(chart, kb)) is eligible


def _renal(chart: Chart, weight: float, creatinine: float = 1.0) -> None:
    chart.quantity("2160-0", "2026-06-20", creatinine, "mg/dL")
    chart.quantity("29463-7", "2026-06-20", weight, "kg")


# Changed 2026-12 (issue 10, item 6): a creatinine clearance below 60 mL/min is also a PILOT
# "transplant not intended" criterion, so below 60 the cisplatin salvage regimens (which lead to
# transplant) are not in play at all; the cisplatin rule itself is checked on the drug findings.
@pytest.mark.parametrize(("weight", "cisplatin_allowed"), [(60, True), (59, False)])
def test_cisplatin_is_excluded_below_60_ml_per_min(
    kb, weight: float, cisplatin_allowed: bool
) -> None:
    chart = fit(dlbcl_relapse("2026-06-01"))  # age 68: Cockcroft-Gault = weight / creatinine
    _renal(chart, weight)
    analysis = chart.analyse(kb)
    rec = recommend(analysis, kb, AS_OF)
    offered = {o.regimen for o in rec.options}
    assert ("R-DHAP" in offered) is cisplatin_allowed
    assert ("R-GDP" in offered) is cisplatin_allowed
    assert ("R-ICE" in offered) is cisplatin_allowed  # transplant candidacy ends with it
    findings = contraindications.drug_findings(frozenset({"cisplatin"}), analysis.record, kb, AS_OF)
    if cisplatin_allowed:
        assert findings == []
    else:
        (finding,) = findings
        assert finding.severity == "contraindicated" and finding.basis == "current"
        assert "creatinine clearance 59 mL/min" in finding.text and "Observation/" in finding.text
        assert rec.transplant is not None and rec.transplant.status == "not-candidate"
        assert any("< 60 mL/min" in r for r in rec.transplant.reasons)


def test_creatinine_in_umol_per_l_is_converted(kb) -> None:
    chart = fit(dlbcl_relapse("2026-06-01"))
    chart.quantity("2160-0", "2026-06-20", 150, "umol/L")  # 1.70 mg/dL
    chart.quantity("29463-7", "2026-06-20", 70, "kg")
    analysis = chart.analyse(kb)
    (finding,) = contraindications.drug_findings(
        frozenset({"cisplatin"}), analysis.record, kb, AS_OF
    )
    assert "creatinine clearance 41 mL/min" in finding.text


def test_missing_renal_data_is_reported(kb) -> None:
    rec = recommend(dlbcl_relapse("2026-06-01").analyse(kb), kb, AS_OF)
    assert any("creatinine clearance unknown" in m for m in rec.missing_data)
    assert any("ECOG" in m for m in rec.missing_data)


def _hodgkin_with_doxorubicin(total_mg_m2: float) -> Chart:
    chart = Chart(disease_snomed="118599009")
    per_cycle = total_mg_m2 / 6
    for day in q21("2022-01-03", 6):
        chart.give(
            "doxorubicin",
            day,
            dosage={"dose": {"value": per_cycle, "unit": "mg/m2", "code": "mg/m2"}},
        )
        chart.give("bleomycin", day)
    chart.status("2023-06-01")
    return chart


@pytest.mark.parametrize(("total", "gvd_allowed"), [(449, True), (450, False)])
def test_anthracycline_options_stop_at_450_mg_per_m2(kb, total: float, gvd_allowed: bool) -> None:
    rec = recommend(_hodgkin_with_doxorubicin(total).analyse(kb), kb, AS_OF)
    assert ("GVD" in {o.regimen for o in rec.options}) is gvd_allowed


def test_no_failure_means_no_options_and_says_why(kb) -> None:
    chart = Chart()
    chart.cycles(R_CHOP, q21("2024-01-01", 3))
    rec = recommend(chart.analyse(kb), kb, AS_OF)
    assert rec.options == ()
    assert rec.statement and "no documented treatment failure" in rec.statement


def test_a_drug_not_tolerated_is_never_offered_again(kb) -> None:
    chart = Chart(disease_snomed="254837009")
    chart.cycles(["capecitabine"], ["2024-01-01"])
    chart.order(
        "capecitabine",
        "2024-01-20",
        status="stopped",
        statusReason={"coding": [{"system": "http://snomed.info/sct", "code": "407563006"}]},
    )
    rec = recommend(chart.analyse(kb), kb, AS_OF)
    assert "Capecitabine" not in {o.regimen for o in rec.options}
    assert any("capecitabine not tolerated" in r for x in rec.excluded for r in x.reasons)


def test_no_fixture_patient_is_offered_a_failed_drug_or_regimen(kb) -> None:
    from salvage.engine import analyse_patient
    from salvage.fhir.reader import ReadResult, iter_resources
    from salvage.fhir.records import build_patient_records

    patients, _ = build_patient_records(iter_resources([str(FIXTURES)], ReadResult()), kb)
    checked = 0
    for record in patients.values():
        analysis = analyse_patient(record, kb, AS_OF)
        rec = recommend(analysis, kb, AS_OF)
        if rec.disease == "hiv":
            continue  # HIV drugs may be recycled when the genotype allows (test_hiv_salvage)
        pathway = kb.pathways.get(rec.disease or "")
        backbone = pathway.backbone_drugs if pathway else frozenset()
        for failure in analysis.failures:
            failed = [ln for ln in analysis.lines if ln.number == failure.line]
            for option in rec.options:
                checked += 1
                assert all(option.regimen != ln.regimen for ln in failed)
                if failure.kind == "intolerance":
                    # Changed 2026-12 (issue 12, item 9): intolerance is of one drug, and its
                    # substitution keeps the rest of the regimen; only the drug stopped is barred.
                    stopped = {
                        d
                        for e in record.exposures
                        if e.source in failure.sources and len(e.ingredients) == 1
                        for d in e.ingredients
                    }
                    assert not set(option.ingredients) & stopped
                    continue
                for ln in failed:
                    assert not (set(option.ingredients) & set(ln.ingredients)) - backbone
    assert checked > 10


def _overlay(tmp_path: Path, body: dict) -> str:
    path = tmp_path / "overlay.json"
    path.write_text(json.dumps(body))
    return str(path)


def test_overlay_disables_reranks_and_adds_options(tmp_path: Path) -> None:
    extra = {
        "id": "local-trial",
        "kind": "test",
        "label": "Screen for local trial NCT-LOCAL-1",
        "rank": 1,
        "when": {"failure": ["relapse", "refractory"]},
        "rationale": "Local pathway: offer trial screening first.",
        "evidence": ["ZUMA-7"],
    }
    kb = load_knowledge(
        None,
        _overlay(
            tmp_path,
            {
                "institution": "Example Hospital",
                "disable": ["dlbcl-axicel"],
                "rerank": {"dlbcl-lisocel": 5},
                "add": {"dlbcl": [extra]},
            },
        ),
    )
    rec = recommend(fit(dlbcl_relapse("2023-12-01")).analyse(kb), kb, AS_OF)
    assert [o.option_id for o in rec.options if o.kind != "trial"] == [
        "local-trial",
        "dlbcl-lisocel",
    ]
    (disabled,) = rec.excluded
    assert "disabled by the local pathway of Example Hospital" in disabled.reasons[0]


@pytest.mark.parametrize(
    "body",
    [
        {"institution": "X", "disable": ["no-such-option"]},
        {
            "institution": "X",
            "add": {
                "dlbcl": [
                    {
                        "id": "bad",
                        "kind": "regimen",
                        "regimen": "R-NOPE",
                        "rank": 1,
                        "when": {"failure": ["relapse"]},
                        "rationale": "x",
                        "evidence": ["ZUMA-7"],
                    }
                ]
            },
        },
        {"institution": "X", "colour": "blue"},
    ],
)
def test_an_invalid_overlay_is_refused(tmp_path: Path, body: dict) -> None:
    with pytest.raises(KnowledgeError):
        load_knowledge(None, _overlay(tmp_path, body))


def test_recommend_json_has_the_documented_shape(capsys: pytest.CaptureFixture[str]) -> None:
    status = cli.main(
        [
            "recommend",
            str(FIXTURES / "dlbcl-late-relapse.json"),
            "--json",
            "--as-of",
            AS_OF.isoformat(),
        ]
    )
    document = json.loads(capsys.readouterr().out)
    assert status == 0
    (patient,) = document["patients"]
    assert patient["disease"] == "dlbcl"
    assert patient["failure"] == {
        "kind": "relapse",
        "date": "2023-03-01",
        "line": 1,
        "sources": ["Observation/dlbcl-late-relapse-status-32"],
        "disease": "dlbcl",
    }
    first = patient["options"][0]
    # R-ICE was already given after this relapse (line 2), so R-DHAP comes first
    assert (first["rank"], first["regimen"], first["setting"]) == (1, "R-DHAP", "salvage")
    assert first["evidence"][0]["label"] == "CORAL" and first["evidence"][0]["url"]
    (rice,) = [x for x in patient["excluded"] if x["regimen"] == "R-ICE"]
    assert "already given after this failure" in rice["reasons"][0]
    assert "Observation/dlbcl-late-relapse-status-32" in first["sources"]
    assert "decision support" in patient["disclaimer"]
    assert document["kb_version"]


def _hiv_failure(kb, *extra: tuple[str, dict]) -> list:
    chart = Chart(disease_snomed="86406008")
    chart.order("Biktarvy", "2020-01-01", status="active")
    for day, value in (("2020-06-01", 20), ("2021-01-01", 900), ("2021-02-01", 1500)):
        chart.quantity("20447-9", day, value, "{copies}/mL")
    for rtype, fields in extra:
        chart.add(rtype, **fields)
    return recommend(chart.analyse(kb), kb, AS_OF)


def test_hbv_coinfection_keeps_the_hbv_active_pair_in_every_regimen(kb) -> None:
    hbv = (
        "Condition",
        {"code": {"coding": [{"system": "http://snomed.info/sct", "code": "61977001"}]}},
    )
    rec = _hiv_failure(kb, hbv)
    regimens = [o for o in rec.options if o.kind in ("regimen", "construct")]
    assert regimens
    for option in regimens:
        assert {"tenofovir alafenamide", "emtricitabine"} <= set(option.ingredients)
        assert any("HBV-active pair" in c for c in option.cautions)
    assert not any("hepatitis B" in m for m in rec.missing_data)


def test_unknown_hbv_status_is_missing_data(kb) -> None:
    rec = _hiv_failure(kb)
    (drv,) = [o for o in rec.options if o.regimen == "DRV/r + 2 NRTIs"]
    assert not any("Hepatitis B" in c for c in drv.cautions)
    assert any("no hepatitis B diagnosis or HBsAg result" in m for m in rec.missing_data)


def _breast_progression(kb, *markers: tuple[str, str]):
    chart = Chart(disease_snomed="254837009")
    chart.order(
        "letrozole",
        "2024-01-01",
        status="stopped",
        dispenseRequest={"expectedSupplyDuration": {"value": 180, "code": "d"}},
    )
    chart.status("2024-05-01")
    sources = []
    for loinc, answer in markers:
        sources.append(
            chart.add(
                "Observation",
                status="final",
                effectiveDateTime="2023-12-01",
                code={"coding": [{"system": "http://loinc.org", "code": loinc}]},
                valueCodeableConcept={"coding": [{"system": "http://loinc.org", "code": answer}]},
            )
        )
    return recommend(chart.analyse(kb), kb, AS_OF), sources


POS, NEG = "LA6576-8", "LA6577-6"


def test_cdk46_endocrine_option_needs_hormone_receptor_positive_her2_negative(kb) -> None:
    rec, _ = _breast_progression(kb, ("85337-4", POS), ("85339-0", NEG), ("85319-2", NEG))
    assert rec.options[0].regimen == "Abemaciclib-fulvestrant"
    assert not any("ER/PR" in m for m in rec.missing_data)


def test_triple_negative_disease_excludes_the_endocrine_option(kb) -> None:
    rec, sources = _breast_progression(kb, ("85337-4", NEG), ("85339-0", NEG), ("85319-2", NEG))
    assert "Abemaciclib-fulvestrant" not in [o.regimen for o in rec.options]
    (excluded,) = [x for x in rec.excluded if x.option_id == "breast-abema-fulv"]
    assert "needs hormone-receptor-positive disease" in excluded.reasons[0]
    assert sources[0] in excluded.reasons[0]


def test_her2_positive_disease_excludes_the_endocrine_option(kb) -> None:
    rec, _ = _breast_progression(kb, ("85337-4", POS), ("85319-2", POS))
    (excluded,) = [x for x in rec.excluded if x.option_id == "breast-abema-fulv"]
    assert "needs HER2-negative disease" in excluded.reasons[0]


def test_unknown_receptor_status_is_missing_data(kb) -> None:
    rec, _ = _breast_progression(kb)
    assert rec.options[0].regimen == "Abemaciclib-fulvestrant"
    assert any("ER/PR or HER2" in m for m in rec.missing_data)
