"""Knowledge for the breast and NSCLC biomarker-gated pathways (issue 12 items 5-6): every cited
source carries a DOI or PMID, a year and an evidence level; every biomarker an option needs is
defined with a test to order; LOINC codes the reader relies on are listed with their source."""

from __future__ import annotations

import pytest

from salvage.knowledge.loader import load_knowledge, load_raw

LEVELS = {
    "randomised phase 3",
    "randomised phase 2",
    "single-arm",
    "observational",
    "guideline",
    "consensus",
    "standard",
}


@pytest.fixture(scope="module")
def kb():
    return load_knowledge()


def _solid_options(kb):
    return [o for d in ("breast", "nsclc") for o in kb.pathways[d].options]


def test_every_breast_and_nsclc_option_cites_evidence_with_doi_or_pmid_year_and_level(kb) -> None:
    cited = {e for o in _solid_options(kb) for e in o.evidence}
    cited |= {e for m in kb.biomarkers.biomarkers.values() for e in m.evidence}
    legacy = {
        "MONARCH-2",
        "DESTINY-Breast03",
        "ESMO-ABC5",
        "EMBRACE",
        "REVEL",
        "TAX317",
        "Ferrell2017",
    }
    for key in sorted(cited - legacy):  # the legacy entries get their DOIs from the citations work
        entry = kb.evidence[key]
        assert entry.doi or entry.pmid, key
        assert entry.year and entry.level in LEVELS, key


def test_every_biomarker_an_option_needs_is_defined_for_its_disease(kb) -> None:
    for disease in ("breast", "nsclc"):
        for option in kb.pathways[disease].options:
            for marker in option.when.biomarkers:
                assert disease in kb.biomarkers.biomarkers[marker].diseases, (option.id, marker)


@pytest.mark.parametrize(
    "option_id",
    [
        "breast-elacestrant",
        "breast-imlunestrant",
        "breast-capivasertib-fulv",
        "breast-alpelisib-fulv",
        "breast-everolimus-exemestane",
        "breast-olaparib",
        "breast-talazoparib",
        "breast-tdxd-her2-low",
        "breast-tdxd-her2-ultralow",
        "breast-sacituzumab-tnbc",
        "breast-sacituzumab-hr-positive",
        "breast-datopotamab",
        "breast-tucatinib-tras-cape",
        "breast-tdm1",
        "breast-abema-fulv-after-cdk46",
        "nsclc-nivolumab",
        "nsclc-osimertinib-t790m",
        "nsclc-amivantamab-chemo",
        "nsclc-lorlatinib",
        "nsclc-alectinib",
        "nsclc-brigatinib",
        "nsclc-repotrectinib",
        "nsclc-sotorasib",
        "nsclc-adagrasib",
        "nsclc-dabrafenib-trametinib",
        "nsclc-capmatinib",
        "nsclc-tepotinib",
        "nsclc-selpercatinib",
        "nsclc-pralsetinib",
        "nsclc-tdxd-her2-mutant",
        "nsclc-larotrectinib",
        "nsclc-entrectinib",
        "nsclc-doce-nintedanib",
    ],
)
def test_issue_12_options_exist_with_their_regimen_drugs_known(kb, option_id: str) -> None:
    (option,) = [o for o in _solid_options(kb) if o.id == option_id]
    regimen = kb.regimens[option.regimen]
    assert regimen.components <= set(kb.drugs)


def test_abemaciclib_after_a_cdk46_inhibitor_cites_postmonarch(kb) -> None:
    (option,) = [o for o in _solid_options(kb) if o.id == "breast-abema-fulv-after-cdk46"]
    assert option.evidence == ["postMONARCH"] and "cdk4/6-inhibitor" in option.when.prior_classes
    assert (
        kb.evidence["postMONARCH"].year == 2025
        and "J Clin Oncol" in kb.evidence["postMONARCH"].citation
    )


def test_biomarker_codes_name_their_verification_source() -> None:
    raw = load_raw()
    assert raw["biomarkers"].codes.verified in raw["manifest"].verification_sources


def test_live_observation_searches_request_the_biomarker_result_codes(kb) -> None:
    from urllib.parse import unquote

    from salvage.fhir import queries

    reads = unquote(queries.patient_reads(kb.loinc_index, "p1")["observations"])
    for code in ("69548-6", "83052-1", "85319-2"):
        assert f"http://loinc.org|{code}" in reads
