"""Every option explains itself (issue 12 items 8 and 12, issue 15 items 6 and 7): its intent, the
level of its evidence, the reasons for its rank, the facts it fits and what could not be checked;
every oncology pathway ends with a clinical trial and palliative care; a goals-of-care prompt
appears by a rule in the data; facts inferred from missing data say so."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from salvage import output, service
from salvage.engine.recommend import recommend
from salvage.knowledge import load_knowledge
from tests.conftest import AS_OF, FIXTURES
from tests.recommender.test_recommend import dlbcl_relapse, fit

HERE = Path(__file__).resolve().parents[1] / "onc_review_bundles"
REVIEW_AS_OF = {
    name: date.fromisoformat(day)
    for name, day in (line.split() for line in (HERE / "asof.txt").read_text().splitlines())
}
TRIAL = "Clinical trial: check the trials open to this patient"
PALLIATIVE = "Palliative care referral and best supportive care"
ONCOLOGY = ("dlbcl", "hodgkin", "breast", "nsclc", "prostate")


@pytest.fixture(scope="module")
def kb():
    return load_knowledge()


def review(name: str):
    kb = service.knowledge_base("")
    (only,), _, _ = service.reports_for_files([str(HERE / name)], kb, REVIEW_AS_OF[name])
    return only.recommendation


@pytest.fixture(scope="module")
def fixture_recommendations(kb) -> dict:
    reports, _, _ = service.reports_for_files([str(FIXTURES)], kb, AS_OF)
    return {r.recommendation.patient.split("/", 1)[1]: r.recommendation for r in reports}


def test_every_oncology_failure_ends_with_a_trial_and_then_palliative_care(
    fixture_recommendations,
) -> None:
    checked = 0
    for name, rec in fixture_recommendations.items():
        if rec.disease not in ONCOLOGY or not rec.options or rec.failure is None:
            continue
        if rec.failure.kind == "intolerance":
            continue
        names = [o.regimen for o in rec.options]
        assert TRIAL in names, name
        tail = [n for n in names if n in (TRIAL, PALLIATIVE)]
        care_first = rec.options[0].kind == "care"
        if care_first:  # poor performance status: care leads, the trial still ends the list
            assert names[-1] == TRIAL, name
        else:
            assert names[-len(tail) :] == tail and tail[0] == TRIAL, (name, names)
        checked += 1
    assert checked >= 10


def test_every_option_has_an_intent_an_evidence_level_and_rank_reasons(
    fixture_recommendations,
) -> None:
    for name, rec in fixture_recommendations.items():
        for option in rec.options:
            assert option.intent and option.intent_label, (name, option.regimen)
            assert option.evidence_level, (name, option.regimen)
            assert option.rank_reasons, (name, option.regimen)
            # changed 2026-12-07 (clin-heme item 6): the evidence level does not set the order,
            # so it is shown with the option, not as a rank reason; no raw preference numbers
            assert not any(r.startswith("evidence: ") for r in option.rank_reasons)
            assert not any("preference" in r for r in option.rank_reasons)


@pytest.mark.parametrize(
    ("bundle", "regimen", "intent"),
    [
        ("onc02-dlbcl-late-relapse-fit.json", "R-ICE", "curative"),  # candidate: towards ASCT
        ("onc03-dlbcl-early-relapse-78-ecog2.json", "Pola-BR", "palliative"),  # not a candidate
        ("onc03-dlbcl-early-relapse-78-ecog2.json", "Lisocabtagene maraleucel", "curative"),
        ("onc17-dlbcl-third-line-cart-naive-after-asct.json", "Glofitamab", "palliative"),
        ("onc09-nsclc-progression-on-carbo-pem-pembro.json", PALLIATIVE, "supportive"),
        ("onc12-prostate-psa-recurrence-after-prostatectomy.json", TRIAL, "investigational"),
        (
            "onc12-prostate-psa-recurrence-after-prostatectomy.json",
            "Salvage radiotherapy to the prostate bed with androgen deprivation",
            "curative",
        ),
        ("onc05-hodgkin-relapse-after-abvd.json", "ICE", "curative"),
        # transplant candidacy unknown: an option of both branches names both intents
        ("onc05-hodgkin-relapse-after-abvd.json", "BV-nivolumab", "curative or palliative"),
    ],
)
def test_intent_follows_the_disease_branch_and_option(bundle, regimen, intent) -> None:
    rec = review(bundle)
    (option,) = [o for o in rec.options if o.regimen == regimen]
    assert option.intent == intent


def test_breast_options_are_palliative_in_intent(fixture_recommendations) -> None:
    rec = fixture_recommendations["breast-cdk46-progression"]
    regimens = [o for o in rec.options if o.kind == "regimen"]
    assert regimens and all(o.intent == "palliative" for o in regimens)


def test_rank_reasons_name_the_unknown_branch_and_the_pathway_preference(kb) -> None:
    rec = recommend(dlbcl_relapse("2023-12-01").analyse(kb), kb, AS_OF)  # no ECOG on record
    by_name = {o.regimen: o for o in rec.options}
    axicel = by_name["Axicabtagene ciloleucel"]
    assert axicel.rank_reasons == ("in the pathway's order for this failure",)
    assert any("performance status (not recorded" in n for n in axicel.not_checked)
    polabr = by_name["Pola-BR"]
    assert any("transplant eligibility is unknown" in r for r in polabr.rank_reasons)
    assert polabr.evidence_level == "randomised phase 2"


def test_stale_data_is_named_as_a_rank_reason(kb) -> None:
    rec = review("onc10-dlbcl-late-relapse-stale-low-crcl-umol.json")
    stale = [o for o in rec.options if o.recheck]
    assert stale
    for option in stale:
        reasons = option.rank_reasons
        assert any(r.startswith("after options resting on current data") for r in reasons)
        assert set(option.recheck) <= set(option.not_checked)


def test_an_overlay_rerank_is_a_rank_reason(kb, tmp_path) -> None:
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text('institution: "Example Hospital"\nrerank: {dlbcl-lisocel: 1}\n')
    local = load_knowledge(None, str(overlay))
    rec = recommend(fit(dlbcl_relapse("2023-12-01")).analyse(local), local, AS_OF)
    (lisocel,) = [o for o in rec.options if o.option_id == "dlbcl-lisocel"]
    assert "placed by the local pathway of Example Hospital" in lisocel.rank_reasons


def test_fits_because_names_the_patient_facts_the_option_was_checked_against(kb) -> None:
    rec = review("onc03-dlbcl-early-relapse-78-ecog2.json")
    (polabr,) = [o for o in rec.options if o.regimen == "Pola-BR"]
    text = " ".join(polabr.fits_because)
    assert "not a transplant candidate" in text
    assert "within the trial's limit of ECOG 2" in text


def test_a_candidate_with_organ_function_missing_is_marked_as_inferred(kb) -> None:
    rec = review("onc02-dlbcl-late-relapse-fit.json")
    assert rec.transplant is not None and rec.transplant.status == "candidate"
    assert "assumed, not on record" in rec.transplant.summary()
    assert rec.inferred and rec.inferred[0].startswith("transplant candidate: assumed")
    document = output.recommendation_json(rec, kb)
    assert document["inferred"] == list(rec.inferred)
    assert all(o["inferred"] for o in document["options"] if o["kind"] == "regimen")


def test_goals_of_care_after_two_failed_lines(kb) -> None:
    rec = review("onc17-dlbcl-third-line-cart-naive-after-asct.json")
    assert rec.goals_of_care and "goals of care" in rec.goals_of_care
    assert any("lines have failed" in b for b in rec.goals_of_care_because)
    assert rec.goals_of_care_evidence


def test_goals_of_care_at_poor_performance_status_and_without_a_directed_option(kb) -> None:
    rec = review("onc09c-nsclc-progression-ecog3.json")
    because = " ".join(rec.goals_of_care_because)
    assert "poor performance status" in because and "no disease-directed option" in because


def test_no_goals_of_care_prompt_after_a_first_relapse_or_a_psa_recurrence(
    kb, fixture_recommendations
) -> None:
    assert review("onc02-dlbcl-late-relapse-fit.json").goals_of_care is None
    assert fixture_recommendations["prostate-rp-recurrence"].goals_of_care is None


def test_hiv_options_are_explained_too(fixture_recommendations) -> None:
    rec = fixture_recommendations["hiv-virologic-failure"]
    kinds = {o.kind: o for o in rec.options}
    assert kinds["test"].intent == "diagnostic"
    assert all(o.intent == "disease-control" for o in rec.options if o.kind != "test")
    assert all(o.rank_reasons for o in rec.options)


def test_the_json_gains_keys_and_renames_none(kb) -> None:
    rec = recommend(fit(dlbcl_relapse("2023-12-01")).analyse(kb), kb, AS_OF)
    option = output.recommendation_json(rec, kb)["options"][0]
    for key in ("rank", "id", "regimen", "rationale", "cautions", "evidence", "branch", "recheck"):
        assert key in option
    for key in ("intent", "intent_label", "evidence_level", "rank_reasons", "fits_because"):
        assert key in option
    assert option["evidence"][0]["level"] == "randomised phase 3"


def test_an_unknown_option_in_the_intent_table_is_a_knowledge_error(tmp_path) -> None:
    import shutil

    from salvage.errors import KnowledgeError
    from salvage.knowledge import loader

    data = tmp_path / "data"
    shutil.copytree(loader.data_dir(), data)
    path = data / "option_context.yaml"
    path.write_text(path.read_text().replace("dlbcl-axicel: curative", "dlbcl-axicell: curative"))
    with pytest.raises(KnowledgeError, match="unknown option 'dlbcl-axicell'"):
        loader.build(loader.load_raw(data))


def test_the_cli_text_shows_intent_rank_reasons_and_the_goals_of_care_prompt(capsys) -> None:
    from salvage import cli

    paths = [str(FIXTURES / "dlbcl-early-relapse.json"), str(FIXTURES / "nsclc-maintenance.json")]
    assert cli.main(["recommend", *paths, "--as-of", AS_OF.isoformat()]) == 0
    text = capsys.readouterr().out
    assert "curative intent; evidence: randomised phase 3" in text
    assert "rank: in the pathway's order for this failure" in text
    assert "pathway preference" not in text
    assert "not checked: performance status (not recorded" in text
    assert "goals of care: Discuss goals of care" in text
