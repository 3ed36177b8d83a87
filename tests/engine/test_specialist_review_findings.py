"""Defects a specialist review found on records it wrote itself (each failed before the fix)."""

from __future__ import annotations

from datetime import date

from salvage.engine.recommend import recommend
from tests.conftest import SNOMED, Chart, q21

R_CHOP = ["rituximab", "cyclophosphamide", "doxorubicin", "vincristine", "prednisone"]
DLBCL = "109969005"


def _dlbcl_condition(chart: Chart, text: str, onset: str, status: str = "active") -> str:
    return chart.add(
        "Condition",
        code={"coding": [{"system": SNOMED, "code": DLBCL}], "text": text},
        clinicalStatus={"coding": [{"code": status}]},
        onsetDateTime=onset,
    )


def test_a_relapse_entered_as_a_new_problem_list_condition_is_a_relapse(kb) -> None:
    chart = Chart(disease_snomed=None)
    _dlbcl_condition(chart, "Diffuse large B-cell lymphoma", "2023-12-01")
    chart.cycles(R_CHOP, q21("2024-01-01", 6))
    source = _dlbcl_condition(chart, "Relapsed diffuse large B-cell lymphoma", "2024-11-25")
    (failure,) = chart.analyse(kb, date(2025, 1, 15)).failures
    assert failure.kind == "relapse" and failure.sources == (source,)
    assert failure.when == date(2024, 11, 25)


def test_a_second_disease_entry_without_relapse_words_is_not_a_silent_no_failure(kb) -> None:
    chart = Chart(disease_snomed=None)
    _dlbcl_condition(chart, "Diffuse large B-cell lymphoma", "2023-12-01")
    chart.cycles(R_CHOP, q21("2024-01-01", 6))
    _dlbcl_condition(chart, "DLBCL", "2024-11-25")
    analysis = chart.analyse(kb, date(2025, 1, 15))
    assert analysis.failures == () and not analysis.failure_assessable
    rec = recommend(analysis, kb, date(2025, 1, 15))
    assert rec.statement and "not a finding" in rec.statement and "second" in rec.statement


def test_the_original_diagnosis_recorded_late_is_not_a_relapse_or_a_doubt(kb) -> None:
    chart = Chart(disease_snomed=None)
    chart.add(  # entered on the problem list after treatment began, onset before it
        "Condition",
        code={"coding": [{"system": SNOMED, "code": DLBCL}], "text": "DLBCL"},
        onsetDateTime="2023-12-01",
        recordedDate="2024-02-01",
    )
    chart.cycles(R_CHOP, q21("2024-01-01", 6))
    analysis = chart.analyse(kb, date(2025, 1, 15))
    assert analysis.failures == () and analysis.failure_assessable


def test_primary_refractory_is_not_claimed_outside_the_lymphomas(kb) -> None:
    chart = Chart(disease_snomed="254637007")  # non-small cell lung cancer
    chart.cycles(["carboplatin", "pemetrexed", "pembrolizumab"], q21("2024-01-01", 4))
    chart.cycles(["pemetrexed", "pembrolizumab"], q21("2024-04-01", 12))
    chart.status("2024-12-01")
    failures = chart.analyse(kb, date(2025, 1, 15)).failures
    assert failures and not any(f.primary for f in failures)


def test_an_interim_response_then_progression_on_first_line_is_still_primary_refractory(
    kb,
) -> None:
    """ZUMA-7 counts no complete response to first line as primary refractory; an interim
    'improved' status is not a complete response (second specialist review)."""
    chart = Chart()
    chart.cycles(R_CHOP, q21("2024-01-01", 6))
    chart.status("2024-03-01", answer="268910001")  # interim response
    chart.status("2024-05-01")  # progression while the line is still active
    (failure,) = chart.analyse(kb, date(2024, 6, 1)).failures
    assert failure.kind == "refractory" and failure.primary


def test_progression_on_first_line_without_response_is_primary_refractory_in_dlbcl(kb) -> None:
    chart = Chart()
    chart.cycles(R_CHOP, q21("2024-01-01", 6))
    chart.status("2024-03-01")
    (failure,) = chart.analyse(kb, date(2024, 6, 1)).failures
    assert failure.kind == "refractory" and failure.primary


NSCLC = "254637007"
PALLIATIVE = "Palliative care referral and best supportive care"


def _ecog(chart: Chart, day: str, value: int) -> None:
    chart.add(
        "Observation",
        status="final",
        code={"coding": [{"system": "http://loinc.org", "code": "89247-1"}]},
        effectiveDateTime=day,
        valueInteger=value,
    )


def _nsclc_progression(ecog: int, ecog_day: str) -> Chart:
    chart = Chart(disease_snomed=NSCLC)
    chart.cycles(["carboplatin", "pemetrexed", "pembrolizumab"], q21("2024-01-01", 4))
    chart.status("2024-06-01")
    _ecog(chart, ecog_day, ecog)
    return chart


def test_at_ecog_3_palliative_care_leads_and_trials_limited_to_ecog_0_2_are_excluded(kb) -> None:
    as_of = date(2024, 6, 15)
    rec = recommend(_nsclc_progression(3, "2024-06-10").analyse(kb, as_of), kb, as_of)
    assert rec.options[0].regimen == PALLIATIVE and rec.options[0].kind == "care"
    excluded = {x.regimen: " ".join(x.reasons) for x in rec.excluded}
    assert "enrolled ECOG 0-1" in excluded["Docetaxel-ramucirumab"]
    assert "enrolled ECOG 0-2" in excluded["Docetaxel"]
    assert rec.statement and "clinical trial" in rec.statement


def test_at_ecog_1_anticancer_options_come_first_and_palliative_care_last(kb) -> None:
    as_of = date(2024, 6, 15)
    rec = recommend(_nsclc_progression(1, "2024-06-10").analyse(kb, as_of), kb, as_of)
    # no driver result on record: broad molecular testing is the first step (review finding 12b)
    assert rec.options[0].option_id == "nsclc-molecular-testing"
    assert [o.regimen for o in rec.options if o.kind not in ("trial", "test")] == [
        "Docetaxel-ramucirumab",
        "Docetaxel",
        PALLIATIVE,
    ]


def test_a_stale_poor_ecog_asks_for_a_recheck_instead_of_excluding(kb) -> None:
    as_of = date(2024, 6, 15)
    rec = recommend(_nsclc_progression(3, "2023-06-01").analyse(kb, as_of), kb, as_of)
    by_name = {o.regimen: o for o in rec.options}
    assert "Docetaxel-ramucirumab" in by_name and by_name["Docetaxel-ramucirumab"].recheck
    # An old ECOG 3 does not set the order (the second review: a patient active again would be
    # offered palliative care first); it asks for a re-check and cautions every option.
    assert rec.options[-1].regimen == PALLIATIVE
    assert any("re-check performance status" in m for m in rec.missing_data)
    assert any("enrolled ECOG 0-2" in r for r in by_name["Docetaxel"].recheck)


def test_after_cd19_car_t_failure_another_cd19_car_t_is_excluded_by_class(kb) -> None:
    chart = Chart()
    chart.cycles(R_CHOP, q21("2022-01-01", 6))
    chart.status("2022-09-01")  # early relapse after R-CHOP
    chart.give("axicabtagene ciloleucel", "2022-11-01")
    chart.status("2023-08-01")  # relapse after axi-cel
    _ecog(chart, "2023-08-05", 1)
    as_of = date(2023, 8, 10)
    rec = recommend(chart.analyse(kb, as_of), kb, as_of)
    assert "Lisocabtagene maraleucel" not in [o.regimen for o in rec.options]
    (liso,) = [x for x in rec.excluded if x.regimen == "Lisocabtagene maraleucel"]
    assert "CD19-directed CAR-T cell therapy already failed" in liso.reasons[-1]
    assert "axicabtagene ciloleucel" in liso.reasons[-1]


def test_after_docetaxel_failure_weekly_paclitaxel_is_excluded_as_the_same_class(kb) -> None:
    chart = Chart(disease_snomed="254837009")  # breast cancer
    chart.cycles(["docetaxel"], q21("2024-01-01", 6))
    chart.status("2024-03-01")
    as_of = date(2024, 4, 1)
    rec = recommend(chart.analyse(kb, as_of), kb, as_of)
    (paclitaxel,) = [x for x in rec.excluded if x.regimen == "Paclitaxel"]
    assert any("taxane already failed" in r for r in paclitaxel.reasons)


BREAST = "254837009"


def _her2(chart: Chart, answer: str) -> None:
    chart.add(
        "Observation",
        status="final",
        code={"coding": [{"system": "http://loinc.org", "code": "85319-2"}]},
        effectiveDateTime="2023-05-05",
        valueCodeableConcept={"coding": [{"system": SNOMED, "code": answer}]},
    )


def _her2_positive_after_thp() -> Chart:
    chart = Chart(disease_snomed=BREAST)
    _her2(chart, "10828004")
    chart.cycles(["docetaxel", "trastuzumab", "pertuzumab"], q21("2024-01-01", 6))
    chart.status("2024-04-01")
    return chart


def test_her2_positive_disease_after_trastuzumab_and_a_taxane_gets_trastuzumab_deruxtecan(
    kb,
) -> None:
    as_of = date(2024, 4, 15)
    analysis = _her2_positive_after_thp().analyse(kb, as_of)
    assert analysis.unmapped == (), "pertuzumab is recognised"
    rec = recommend(analysis, kb, as_of)
    assert rec.options[0].regimen == "Trastuzumab deruxtecan"
    excluded = {x.regimen for x in rec.excluded}
    assert {"Capecitabine", "Eribulin"} <= excluded  # chemotherapy alone drops anti-HER2 therapy


def test_an_unknown_her2_status_labels_the_options_that_need_it(kb) -> None:
    chart = Chart(disease_snomed=BREAST)
    chart.cycles(["doxorubicin", "cyclophosphamide"], q21("2023-01-01", 4))
    chart.cycles(["paclitaxel"], q21("2023-04-01", 4))
    chart.status("2023-09-01")
    as_of = date(2023, 9, 15)
    rec = recommend(chart.analyse(kb, as_of), kb, as_of)
    branches = {o.regimen: o.branch for o in rec.options}
    assert branches["Capecitabine"] == "if HER2-negative"
    assert any("confirm the receptor status" in m for m in rec.missing_data)


def test_eribulin_is_not_offered_to_a_patient_without_an_anthracycline_and_a_taxane(kb) -> None:
    chart = Chart(disease_snomed=BREAST)
    _her2(chart, "260385009")
    chart.cycles(["capecitabine"], q21("2024-01-01", 4))
    chart.status("2024-03-01")
    as_of = date(2024, 3, 15)
    rec = recommend(chart.analyse(kb, as_of), kb, as_of)
    (eribulin,) = [x for x in rec.excluded if x.regimen == "Eribulin"]
    assert "EMBRACE" in eribulin.reasons[0] and "anthracycline" in eribulin.reasons[0]


def test_a_backbone_drug_reused_from_the_failed_line_is_explained_with_its_reason(kb) -> None:
    chart = Chart()
    chart.cycles(R_CHOP, q21("2022-01-01", 6))
    chart.status("2024-01-10")  # late relapse
    as_of = date(2024, 1, 20)
    rec = recommend(chart.analyse(kb, as_of), kb, as_of)
    rice = next(o for o in rec.options if "rituximab" in o.ingredients)
    assert any(
        c.startswith("reuses rituximab") and kb.pathways["dlbcl"].backbone_reason in c
        for c in rice.cautions
    )


def test_after_car_t_failure_bispecific_antibodies_are_offered_not_only_palliative_care(kb) -> None:
    chart = Chart()
    chart.cycles(R_CHOP, q21("2022-01-01", 6))
    chart.status("2022-09-01")
    chart.give("axicabtagene ciloleucel", "2022-11-01")
    chart.status("2023-08-01")
    _ecog(chart, "2023-08-05", 1)
    as_of = date(2023, 8, 10)
    rec = recommend(chart.analyse(kb, as_of), kb, as_of)
    names = [o.regimen for o in rec.options]
    assert names[:2] == ["Glofitamab", "Epcoritamab"]
    assert PALLIATIVE not in names  # ECOG 1, age 63: a transplant candidate, curative intent
    assert rec.statement is None  # an anticancer option fits


def test_bispecific_antibodies_are_not_offered_at_first_relapse(kb) -> None:
    chart = Chart()
    chart.cycles(R_CHOP, q21("2024-01-01", 6))
    chart.status("2024-09-01")
    _ecog(chart, "2024-09-10", 0)
    as_of = date(2024, 9, 20)
    rec = recommend(chart.analyse(kb, as_of), kb, as_of)
    assert not {"Glofitamab", "Epcoritamab"} & {o.regimen for o in rec.options}
