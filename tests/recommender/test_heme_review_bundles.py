"""Three patients written the way haematology records look (clin-heme review): performance status
as text or a LOINC answer, a measured creatinine clearance in mL/s or with a comparator and old,
a second cancer in remission, doses in mg. Each assertion is what a haematologist would need."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from salvage import service
from salvage.engine import factors

HERE = Path(__file__).resolve().parents[1] / "heme_review_bundles"
AS_OF = date(2026, 12, 1)


def report(name: str):
    kb = service.knowledge_base("")
    (only,), _, _ = service.reports_for_files([str(HERE / name)], kb, AS_OF)
    return only, kb


def test_ps_3_as_text_with_an_old_low_clearance_puts_palliative_care_first() -> None:
    only, _ = report("heme01-dlbcl-ps3-text-stale-crcl-breast-survivor.json")
    rec = only.recommendation
    assert rec.disease == "dlbcl"  # the breast cancer in remission does not drive the advice
    assert rec.transplant is not None and rec.transplant.status == "not-candidate"
    assert "ECOG 3 (recorded as 'PS 3')" in rec.transplant.summary()
    assert "ZUMA-7-older" not in rec.transplant.evidence  # age is not why
    care = rec.options[0]
    assert care.kind == "care" and any("ECOG 3-4" in r for r in care.rank_reasons)
    # the old measured clearance: named once for the patient, with its age
    said = [m for m in rec.missing_data if "Observation/heme01-crcl" in m]
    assert len(said) == 1 and "14 months old, stale" in said[0] and "<30 mL/min" in said[0]
    assert not any("heme01-crcl" in c for o in rec.options for c in o.cautions)
    r_gemox = next(o for o in rec.options if o.regimen == "R-GemOx")
    assert any(
        c.startswith("oxaliplatin: last creatinine clearance below 30") for c in r_gemox.cautions
    )


def test_a_fit_72_year_old_with_early_relapse_gets_both_branches_led_by_car_t() -> None:
    only, kb = report("heme02-dlbcl-early-relapse-72-ecog-answer-crcl-ml-per-s.json")
    rec = only.recommendation
    assert rec.transplant is not None and rec.transplant.status == "unknown"
    assert "not an exclusion" in rec.transplant.summary()
    first, second = rec.options[:2]
    assert first.regimen == "Axicabtagene ciloleucel" and first.branch == "if transplant candidate"
    assert second.regimen == "Lisocabtagene maraleucel" and second.branch is None
    clearance = factors.creatinine_clearance(only.analysis.record, kb, AS_OF)
    assert clearance is not None and round(clearance.value) == 66  # 1.1 mL/s
    assert "creatinine clearance" not in " ".join(rec.transplant.not_checked)
    performance = factors.ecog(only.analysis.record, kb, AS_OF)
    assert performance is not None and performance.value == 1  # LA9623-5, newer than KPS 90


def test_a_performance_status_written_as_a_range_is_unreadable_never_fit() -> None:
    only, _ = report("heme03-hodgkin-relapse-ps-range-doses-in-mg.json")
    rec = only.recommendation
    assert rec.transplant is not None and rec.transplant.status == "unknown"
    assert any("'ECOG 0-1'" in m and "cannot be read" in m for m in rec.missing_data)
    for option in rec.options:
        assert not any("performance status (not recorded" in n for n in option.not_checked)
    bv_ice = next(o for o in rec.options if o.regimen == "BV-ICE")
    assert any("recorded but unreadable" in n for n in bv_ice.not_checked)
    assert rec.options[0].regimen == "Pembrolizumab-GVD"  # anthracycline 'at least': a caution
    assert any("at least" in c for c in rec.options[0].cautions)
    step = rec.after_salvage[0]
    assert step.regimen.startswith("High-dose therapy and autologous stem-cell transplant")


def test_a_newer_measured_clearance_of_at_least_60_supersedes_an_older_low_egfr() -> None:
    only, kb = report("heme04-dlbcl-primary-refractory-who-ps-local-code-crcl-ge-60.json")
    rec = only.recommendation
    performance = factors.ecog(only.analysis.record, kb, AS_OF)
    assert performance is not None and performance.value == 1  # "WHO PS 1", local code
    clearance = factors.creatinine_clearance(only.analysis.record, kb, AS_OF)
    assert clearance is not None and clearance.comparator == ">=" and clearance.value == 60
    assert rec.transplant is not None and rec.transplant.status == "candidate"
    assert rec.failure is not None and rec.failure.primary
    assert rec.options[0].regimen == "Axicabtagene ciloleucel"


# Specialist review 2026-12-07, patient 03: 80 years old, "ECOG PS 3, in chair >50% of day",
# a measured clearance "<30 mL/min" 40 days old (past its 30-day window), CKD stage 4.
REVIEW03 = "review03-dlbcl-80-ps3-described-crcl-lt30-40-days.json"


def test_ps_3_described_in_the_scale_s_words_is_read_and_puts_care_first() -> None:
    only, _ = report(REVIEW03)
    rec = only.recommendation
    assert rec.transplant is not None and rec.transplant.status == "not-candidate"
    assert "ECOG 3 (recorded as 'ECOG PS 3, in chair >50% of day')" in rec.transplant.summary()
    assert [o.kind for o in rec.options][:1] == ["care"]
    assert not any(o.branch == "if transplant candidate" for o in rec.options)


def test_unknown_candidacy_with_a_recent_stale_exclusion_shows_the_other_branch_first(
    tmp_path: Path,
) -> None:
    import json

    bundle = json.loads((HERE / REVIEW03).read_text())
    for entry in bundle["entry"]:
        r = entry["resource"]
        if r["resourceType"] == "Observation" and "ECOG PS 3" in json.dumps(r):
            r["valueString"] = "poor PS"  # recorded but unreadable
            r.pop("valueInteger", None)
            r.pop("valueCodeableConcept", None)
    path = tmp_path / REVIEW03
    path.write_text(json.dumps(bundle))
    kb = service.knowledge_base("")
    (only,), _, _ = service.reports_for_files([str(path)], kb, AS_OF)
    rec = only.recommendation
    assert rec.transplant is not None and rec.transplant.status == "unknown"
    assert rec.transplant.leans_not_candidate
    assert "leans against transplant" in rec.transplant.summary()
    branches = [o.branch for o in rec.options if o.branch and o.kind != "care"]
    # every 'not a transplant candidate' therapy before any transplant-branch option (supportive
    # care keeps its place after the anticancer options)
    first_eligible = branches.index("if transplant candidate")
    assert "if not a transplant candidate" in branches[:first_eligible]
    assert "if not a transplant candidate" not in branches[first_eligible:]
    r_ice = next(o for o in rec.options if o.regimen == "R-ICE")
    assert any("leans against transplant" in r for r in r_ice.rank_reasons)


def test_a_stale_exclusion_older_than_the_leaning_window_does_not_reorder() -> None:
    # dlbcl-stale-clearance: 38 mL/min four years old only asks for a re-check
    kb = service.knowledge_base("")
    fixture = Path(__file__).resolve().parents[2] / "fixtures" / "dlbcl-stale-clearance.json"
    (only,), _, _ = service.reports_for_files([str(fixture)], kb, AS_OF)
    assert only.recommendation.transplant is not None
    assert not only.recommendation.transplant.leans_not_candidate
    assert only.recommendation.options[0].regimen == "R-ICE"


def test_progression_a_month_after_ice_with_no_response_is_refractory_not_relapse() -> None:
    # Specialist review 07: ABVD, late relapse, ICE from 2026-03-10 to 03-31 with progression
    # as its best response, worse again on 2026-05-01 (ICD-10-CM coded Hodgkin, statuses coded)
    only, _ = report("review07-hodgkin-abvd-relapse-ice-no-response.json")
    first, second = sorted(
        (f for f in only.analysis.failures if f.line in (1, 2)), key=lambda f: f.line
    )
    assert first.kind == "relapse"  # ABVD controlled it for 30 months
    assert second.kind == "refractory" and not second.primary
    assert "which gave no response (best response: progression)" in second.detail
    assert only.recommendation.failure is not None
    assert only.recommendation.failure.kind == "refractory"
