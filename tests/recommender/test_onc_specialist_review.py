"""The oncology specialist's own bundles (written the way EHRs record: relapse as a new problem-list
entry, Karnofsky, LOINC answer codes, stale labs in umol/L, a second cancer without `focus`), run
as of the dates the reviewer chose. Each assertion is a finding of the two reviews, fixed."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from salvage import service

HERE = Path(__file__).resolve().parents[1] / "onc_review_bundles"
AS_OF = {
    name: date.fromisoformat(day)
    for name, day in (line.split() for line in (HERE / "asof.txt").read_text().splitlines())
}
PALLIATIVE = "Palliative care referral and best supportive care"


def report(name: str):
    kb = service.knowledge_base("")
    (only,), _, _ = service.reports_for_files([str(HERE / name)], kb, AS_OF[name])
    return only.recommendation


def names(rec) -> list[str]:
    return [o.regimen for o in rec.options if o.kind != "trial"]  # trial: own test


def excluded(rec) -> dict[str, str]:
    return {x.regimen: "; ".join(x.reasons) for x in rec.excluded}


def test_s1_a_relapse_entered_as_a_new_problem_list_condition_is_found() -> None:
    rec = report("onc03-dlbcl-early-relapse-78-ecog2.json")
    assert rec.failure is not None and rec.failure.kind == "relapse"
    assert "entered" in rec.failure.detail


def test_s2_an_unattributed_disease_status_is_not_reported_as_no_failure() -> None:
    rec = report("onc09b-nsclc-progression-active-surveillance-prostate-no-focus.json")
    assert rec.failure is None and rec.statement and "not a finding" in rec.statement


@pytest.mark.parametrize(
    "name",
    ["onc03b-dlbcl-early-relapse-80-karnofsky30.json", "onc09c-nsclc-progression-ecog3.json"],
)
def test_s3_a_current_ecog_3_to_4_puts_palliative_care_first(name: str) -> None:
    rec = report(name)
    assert names(rec)[0] == PALLIATIVE
    assert any("enrolled ECOG 0-" in reason for reason in excluded(rec).values())


def test_s4_after_axi_cel_no_second_cd19_car_t_and_bispecifics_are_offered() -> None:
    rec = report("onc04-dlbcl-relapse-after-axicel.json")
    assert names(rec)[:2] == ["Glofitamab", "Epcoritamab"]
    assert (
        "CD19-directed CAR-T cell therapy already failed"
        in excluded(rec)["Lisocabtagene maraleucel"]
    )


def test_s5_her2_positive_progression_after_thp_gets_trastuzumab_deruxtecan() -> None:
    rec = report("onc14-breast-her2pos-after-thp.json")
    assert names(rec)[0] == "Trastuzumab deruxtecan"


@pytest.mark.parametrize(
    "name",
    [
        "onc07b-breast-hrpos-after-ribociclib-then-docetaxel.json",
        "onc14-breast-her2pos-after-thp.json",
    ],
)
def test_s6_paclitaxel_is_excluded_after_docetaxel_failure(name: str) -> None:
    assert "taxane already failed" in excluded(report(name))["Paclitaxel"]


def test_a_stale_poor_ecog_does_not_put_palliative_care_first() -> None:
    rec = report("onc15-dlbcl-early-relapse-stale-ecog3-no-current-ps.json")
    assert names(rec)[0] != PALLIATIVE
    assert any("re-check performance status" in m for m in rec.missing_data)


def test_an_interim_response_does_not_undo_primary_refractory() -> None:
    rec = report("onc01-dlbcl-primary-refractory-55.json")
    assert rec.failure is not None and rec.failure.kind == "refractory" and rec.failure.primary
