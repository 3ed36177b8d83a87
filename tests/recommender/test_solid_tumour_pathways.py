"""Breast and NSCLC salvage gated by biomarkers (issue 12 items 5-6), on the bundles in
tests/solid_tumour_bundles (written the way EHRs record: coded variants beside text-only NGS
reports, HER2 scores as text, PD-L1 as a quantity or a sentence, brand names, stale negatives).
Every expected option list was reviewed by hand against the trial each option cites."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from salvage import service

HERE = Path(__file__).resolve().parents[1] / "solid_tumour_bundles"
AS_OF = {
    name: date.fromisoformat(day)
    for name, day in (line.split() for line in (HERE / "asof.txt").read_text().splitlines())
}
PALLIATIVE = "Palliative care referral and best supportive care"


def report(name: str):
    kb = service.knowledge_base("")
    (only,), _, _ = service.reports_for_files(
        [str(HERE / f"{name}.json")], kb, AS_OF[f"{name}.json"]
    )
    return only.recommendation


def options(rec) -> list[tuple[str, str | None]]:
    # The clinical-trial option ends every oncology pathway (test_option_explanations pins it);
    # these expectations are about the disease-directed and care options.
    return [(o.option_id, o.branch) for o in rec.options if o.kind != "trial"]


def excluded(rec) -> dict[str, str]:
    return {x.option_id: "; ".join(x.reasons) for x in rec.excluded}


EXPECTED = {
    # ESR1 Y537S in ctDNA after letrozole + palbociclib (an older tissue ESR1 'absent' does not
    # matter), HER2 1+: oral SERDs first, then abemaciclib on postMONARCH, everolimus, T-DXd.
    # No anthracycline or taxane yet: the PARP inhibitor trials' populations do not fit.
    "st01-breast-hrpos-her2low-esr1-after-palbociclib": [
        ("breast-elacestrant", None),
        ("breast-imlunestrant", None),
        ("breast-abema-fulv-after-cdk46", None),
        ("breast-everolimus-exemestane", None),
        # chemotherapy-naive and HR-positive: T-DXd on DESTINY-Breast06 (review finding 08)
        ("breast-tdxd-her2-low-chemo-naive", None),
        ("breast-capecitabine", None),
        ("breast-paclitaxel", None),
        ("breast-capivasertib-fulv", "if PIK3CA, AKT1 or PTEN alteration detected"),
        ("breast-alpelisib-fulv", "if PIK3CA mutation detected"),
        ("breast-palliative-care", None),
    ],
    # PIK3CA H1047R in a text-only NGS report: capivasertib and alpelisib; ESR1 'not detected'
    # before this progression is a retest prompt, not a negative.
    "st02-breast-hrpos-pik3ca-text-after-ribociclib": [
        ("breast-capivasertib-fulv", None),
        ("breast-alpelisib-fulv", None),
        ("breast-abema-fulv-after-cdk46", None),
        ("breast-everolimus-exemestane", None),
        ("breast-capecitabine", None),
        ("breast-paclitaxel", None),
        ("breast-elacestrant", "if ESR1 mutation detected"),
        ("breast-imlunestrant", "if ESR1 mutation detected"),
        ("breast-palliative-care", None),
    ],
    # Triple-negative, germline BRCA1, CPS 15, relapse 15 months after adjuvant AC-paclitaxel.
    "st03-tnbc-gbrca-pdl1-cps15-after-adjuvant": [
        ("breast-pembro-gem-carbo", None),
        ("breast-olaparib", None),
        ("breast-sacituzumab-tnbc", None),
        ("breast-talazoparib", None),
        ("breast-capecitabine", None),
        ("breast-eribulin", None),
        ("breast-paclitaxel-rechallenge", None),  # relapse 15 months after adjuvant paclitaxel
        ("breast-palliative-care", None),
    ],
    # HER2 3+ progressing on trastuzumab deruxtecan: tucatinib-trastuzumab-capecitabine, T-DM1.
    "st04-breast-her2pos-progression-on-tdxd": [
        ("breast-tucatinib-tras-cape", None),
        ("breast-tdm1", None),
        ("breast-palliative-care", None),
    ],
    # HER2-ultralow written as text, chemotherapy-naive: T-DXd on DESTINY-Breast06.
    "st05-breast-hrpos-her2-ultralow-after-fulvestrant-palbociclib": [
        ("breast-everolimus-exemestane", None),
        ("breast-tdxd-her2-ultralow", None),
        ("breast-capecitabine", None),
        ("breast-paclitaxel", None),
        ("breast-elacestrant", "if ESR1 mutation detected"),
        ("breast-imlunestrant", "if ESR1 mutation detected"),
        ("breast-palliative-care", None),
    ],
    # EGFR exon 19 deletion (text) on erlotinib, T790M in plasma (coded): osimertinib (AURA3).
    "st06-nsclc-egfr-t790m-after-erlotinib": [
        ("nsclc-osimertinib-t790m", None),
        ("nsclc-carbo-pem-after-egfr-tki", None),
        ("nsclc-palliative-care", None),
    ],
    # EGFR L858R progressing on first-line osimertinib: amivantamab-chemotherapy (MARIPOSA-2).
    "st07-nsclc-egfr-l858r-after-osimertinib": [
        # added 2026-12-07: re-biopsy (or plasma ctDNA) for resistance alterations and
        # small-cell transformation before the next line (IASLC 2021)
        ("nsclc-rebiopsy-after-osimertinib", None),
        ("nsclc-amivantamab-chemo", None),
        ("nsclc-carbo-pem-after-egfr-tki", None),
        ("nsclc-palliative-care", None),
    ],
    # KRAS G12C after chemo-immunotherapy: sotorasib, adagrasib, then docetaxel combinations.
    "st08-nsclc-kras-g12c-after-chemo-immunotherapy": [
        ("nsclc-sotorasib", None),
        ("nsclc-adagrasib", None),
        ("nsclc-doce-ram", None),
        ("nsclc-doce-nintedanib", None),
        ("nsclc-docetaxel", None),
        ("nsclc-palliative-care", None),
    ],
    # Squamous, driver-negative, TPS 60 %, immunotherapy-naive after carboplatin-paclitaxel.
    "st09-nsclc-squamous-io-naive-pdl1-60": [
        ("nsclc-nivolumab", None),
        ("nsclc-atezolizumab", None),
        ("nsclc-pembrolizumab", None),
        ("nsclc-docetaxel", None),  # after paclitaxel: a cited exception to the taxane rule
        ("nsclc-palliative-care", None),
    ],
    # ALK rearrangement (FISH text) progressing on crizotinib: lorlatinib, brigatinib (ALTA),
    # alectinib on its post-crizotinib phase 2 trials (added 2026-12-07; ALEX set aside).
    "st10-nsclc-alk-after-crizotinib": [
        ("nsclc-lorlatinib", None),
        ("nsclc-brigatinib", None),
        ("nsclc-alectinib-after-crizotinib", None),
        ("nsclc-palliative-care", None),
    ],
    # Molecular testing failed (insufficient tissue): immunotherapy and docetaxel options, one
    # testing prompt for the drivers.
    "st11-nsclc-drivers-not-tested": [
        ("nsclc-nivolumab", None),
        ("nsclc-atezolizumab", None),
        ("nsclc-doce-ram", None),
        ("nsclc-doce-nintedanib", None),
        ("nsclc-docetaxel", None),
        (
            "nsclc-pembrolizumab",
            "if PD-L1 tumour proportion score 1 to 49 percent or 50 percent or more",
        ),
        ("nsclc-palliative-care", None),
    ],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_biomarker_branch_gets_its_hand_reviewed_options(name: str) -> None:
    assert options(report(name)) == EXPECTED[name]


def test_abemaciclib_after_palbociclib_cites_postmonarch_not_monarch_2() -> None:
    rec = report("st01-breast-hrpos-her2low-esr1-after-palbociclib")
    (abema,) = [o for o in rec.options if o.regimen == "Abemaciclib-fulvestrant"]
    assert abema.evidence == ("postMONARCH",)
    assert "postMONARCH" in abema.rationale[0] and "MONARCH 2" not in abema.rationale[0]
    # Shown once: ranked on postMONARCH, with MONARCH 2 (CDK4/6-naive patients) set aside on it
    # rather than the same regimen also listed as ruled out.
    assert "breast-abema-fulv" not in excluded(rec)
    assert any("MONARCH-2" in x and "had not received" in x for x in abema.set_aside)


def test_a_detected_esr1_mutation_outweighs_an_older_absent_result() -> None:
    rec = report("st01-breast-hrpos-her2low-esr1-after-palbociclib")
    assert any("ESR1 mutation detected" in f and "Tyr537Ser" in f for f in rec.facts)
    assert not any("ESR1" in m for m in rec.missing_data)


def test_an_esr1_negative_from_before_the_progression_asks_for_a_retest() -> None:
    rec = report("st02-breast-hrpos-pik3ca-text-after-ribociclib")
    (prompt,) = [m for m in rec.missing_data if m.startswith("ESR1")]
    assert "before the progression" in prompt and "not assumed negative" in prompt


def test_her2_zero_excludes_trastuzumab_deruxtecan_with_the_result_named() -> None:
    rec = report("st02-breast-hrpos-pik3ca-text-after-ribociclib")
    assert "HER2 IHC level: zero" in excluded(rec)["breast-tdxd-her2-low"]


def test_a_taxane_relapse_after_a_long_interval_is_a_cited_rechallenge_not_a_first_use() -> None:
    rec = report("st03-tnbc-gbrca-pdl1-cps15-after-adjuvant")
    assert "breast-paclitaxel" not in excluded(rec)
    (again,) = [o for o in rec.options if o.option_id == "breast-paclitaxel-rechallenge"]
    # the first-use evidence is named on the re-challenge entry as set aside, with its reason
    assert any("taxane already failed" in x for x in again.set_aside)
    assert "at least 12 months" in again.rationale[0] and again.evidence == ("ESMO-ABC5",)


def test_an_early_taxane_relapse_is_no_rechallenge() -> None:
    kb = service.knowledge_base("")
    bundle = Path(__file__).resolve().parents[1] / "onc_review_bundles"
    (only,), _, _ = service.reports_for_files(
        [str(bundle / "onc08-tnbc-after-adjuvant-act-and-docetaxel.json")], kb, date(2024, 9, 5)
    )
    rec = only.recommendation  # relapse 3.9 months after paclitaxel: no re-challenge at all
    assert "breast-paclitaxel-rechallenge" not in excluded(rec)
    assert "breast-paclitaxel-rechallenge" not in [o.option_id for o in rec.options]
    assert "taxane already failed" in excluded(rec)["breast-paclitaxel"]


def test_trastuzumab_deruxtecan_that_failed_is_not_offered_again() -> None:
    rec = report("st04-breast-her2pos-progression-on-tdxd")
    assert "already failed" in excluded(rec)["breast-tdxd"]


def test_immunotherapy_is_not_offered_with_an_egfr_driver() -> None:
    rec = report("st07-nsclc-egfr-l858r-after-osimertinib")
    assert "EGFR sensitising mutation" in excluded(rec)["nsclc-nivolumab"]


def test_immunotherapy_after_pembrolizumab_is_excluded_naming_the_line() -> None:
    rec = report("st08-nsclc-kras-g12c-after-chemo-immunotherapy")
    assert "pembrolizumab in line 1" in excluded(rec)["nsclc-atezolizumab"]


def test_squamous_histology_excludes_docetaxel_nintedanib() -> None:
    rec = report("st09-nsclc-squamous-io-naive-pdl1-60")
    assert "squamous" in excluded(rec)["nsclc-doce-nintedanib"]


def test_an_alk_inhibitor_naive_trial_is_not_cited_after_crizotinib() -> None:
    rec = report("st10-nsclc-alk-after-crizotinib")
    # alectinib is ranked on its post-crizotinib evidence; ALEX (ALK-inhibitor-naive) is named
    # on it as set aside, not cited for this patient and not listed as ruled out as well
    (alectinib,) = [o for o in rec.options if o.regimen == "Alectinib"]
    assert alectinib.evidence == ("Ou2016-alectinib", "Shaw2016-alectinib")
    assert any("crizotinib in line 1" in x for x in alectinib.set_aside)
    assert "nsclc-alectinib" not in excluded(rec)


def test_failed_driver_testing_is_missing_data_never_a_negative() -> None:
    rec = report("st11-nsclc-drivers-not-tested")
    (prompt,) = [m for m in rec.missing_data if "broad molecular testing" in m]
    assert "insufficient tumour tissue" in prompt and "not assumed negative" in prompt
    assert "Sotorasib" in prompt and "Osimertinib" in prompt
    # targeted options wait on the test: neither offered nor listed as excluded
    assert "nsclc-sotorasib" not in excluded(rec)
    assert "Sotorasib" not in [o.regimen for o in rec.options]


def test_a_found_driver_settles_the_panel_prompt() -> None:
    rec = report("st07-nsclc-egfr-l858r-after-osimertinib")
    assert not any("broad molecular testing" in m for m in rec.missing_data)


def test_parp_inhibitors_need_the_chemotherapy_their_trials_required() -> None:
    rec = report("st01-breast-hrpos-her2low-esr1-after-palbociclib")
    assert "an anthracycline and a taxane" in excluded(rec)["breast-olaparib"]
    assert not any("BRCA" in m for m in rec.missing_data)  # no prompt for an option that cannot fit


def test_docetaxel_after_a_paclitaxel_doublet_cites_tax_320() -> None:
    rec = report("st09-nsclc-squamous-io-naive-pdl1-60")
    (doce,) = [o for o in rec.options if o.option_id == "nsclc-docetaxel"]
    assert doce.evidence == ("TAX317", "TAX320") and "TAX 320" in doce.rationale[0]
    assert "taxane already failed" in excluded(rec)["nsclc-doce-ram"]


def test_a_rebiopsy_after_osimertinib_comes_first_and_applies_only_after_it() -> None:
    rec = report("st07-nsclc-egfr-l858r-after-osimertinib")
    first = rec.options[0]
    assert first.kind == "test" and first.evidence == ("Rolfo2021-IASLC",)
    assert "small-cell" in first.regimen and any("confirm on tissue" in c for c in first.cautions)
    # after chemo-immunotherapy (no osimertinib) it neither appears nor is listed as ruled out
    other = report("st08-nsclc-kras-g12c-after-chemo-immunotherapy")
    assert "nsclc-rebiopsy-after-osimertinib" not in [o.option_id for o in other.options]
    assert "nsclc-rebiopsy-after-osimertinib" not in excluded(other)


def test_the_driver_testing_prompt_offers_plasma_when_tissue_is_insufficient() -> None:
    rec = report("st11-nsclc-drivers-not-tested")
    (prompt,) = [m for m in rec.missing_data if "broad molecular testing" in m]
    assert "before immunotherapy" in prompt and "circulating tumour DNA" in prompt
    assert "Rolfo2021-IASLC" in prompt
