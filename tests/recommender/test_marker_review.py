"""Specialist review findings 08 and 14 (tests/marker_review_bundles, copies of the reviewer's
bundles, analysed as of the review date): ER/PR coded as "receptor [Interpretation] in Tissue"
(LOINC 16112-5 / 16113-3) with a SNOMED answer, and an HIV genotype written as one sentence per
gene ("RT: K103N, M184V. PR: no major mutations"). Each test failed before its fix."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from salvage import service
from salvage.engine.hiv_regimens import HivOption
from tests.conftest import ROOT

BUNDLES = ROOT / "tests" / "marker_review_bundles"
AS_OF = date(2026, 12, 1)
SNOMED = "http://snomed.info/sct"
ESR1_RETEST = "A negative ESR1 result from before this progression"


def resources_of(name: str) -> list[dict[str, Any]]:
    path = next(BUNDLES.glob(f"{name}-*.json"))
    return [e["resource"] for e in json.loads(Path(path).read_text())["entry"]]


def report_of(resources: list[dict[str, Any]]):
    patient = next(r["id"] for r in resources if r["resourceType"] == "Patient")
    report, skipped = service.report_for_patient(
        resources, patient, service.knowledge_base(), AS_OF
    )
    assert not skipped
    return report


def _breast(edit=None):
    resources = resources_of("r08")
    if edit:
        resources = [edit(r) for r in resources]
    return report_of([r for r in resources if r is not None]).recommendation


def _receptor(code: str, value: dict[str, Any]):
    """Replace the ER (16112-5) or PR (16113-3) result's value."""

    def edit(r: dict[str, Any]) -> dict[str, Any]:
        codes = [c.get("code") for c in r.get("code", {}).get("coding", [])]
        if r["resourceType"] == "Observation" and code in codes:
            r = {k: v for k, v in r.items() if not k.startswith("value")}
            r.update(value)
        return r

    return edit


# --- [08] ER/PR as 16112-5 / 16113-3 -------------------------------------------------------------
def test_er_pr_interpretation_codes_with_snomed_positive_are_read() -> None:
    rec = _breast()
    assert not any("no recent ER/PR" in m for m in rec.missing_data)
    regimens = [o.regimen for o in rec.options]
    # endocrine options for an ESR1-mutant, endocrine-sensitive patient come before T-DXd
    assert regimens[0] == "Elacestrant"
    assert regimens.index("Elacestrant") < regimens.index("Trastuzumab deruxtecan")
    assert regimens.index("Imlunestrant") < regimens.index("Capecitabine")
    assert all(not (o.branch or "").count("hormone-receptor") for o in rec.options)
    sacituzumab = next(x for x in rec.excluded if x.regimen == "Sacituzumab govitecan")
    assert any("ER positive" in r for r in sacituzumab.reasons)


def test_the_esr1_retest_caution_is_not_shown_when_esr1_is_detected() -> None:
    rec = _breast()
    (elacestrant,) = [o for o in rec.options if o.regimen == "Elacestrant"]
    assert not any(c.startswith(ESR1_RETEST) for c in elacestrant.cautions)


def test_the_esr1_retest_caution_is_shown_while_esr1_is_unknown() -> None:
    def drop_esr1(r: dict[str, Any]) -> dict[str, Any] | None:
        codes = [c.get("code") for c in r.get("code", {}).get("coding", [])]
        return None if "69548-6" in codes else r

    rec = _breast(drop_esr1)
    (elacestrant,) = [o for o in rec.options if o.regimen == "Elacestrant"]
    assert elacestrant.branch and "ESR1" in elacestrant.branch
    assert any(c.startswith(ESR1_RETEST) for c in elacestrant.cautions)


@pytest.mark.parametrize(
    "value",
    [
        {"valueString": "ER 90% strong"},
        {"valueString": "Positive (95%)"},
        {"valueString": "Oestrogen receptor: positive, Allred 8/8"},
        {"valueCodeableConcept": {"text": "ER: 70 % moderate-strong nuclear staining"}},
        {
            "valueCodeableConcept": {
                "coding": [{"system": SNOMED, "code": "10828004"}],
                "text": "see comment",
            }
        },
    ],
)
def test_er_written_in_words_or_coded_positive_reads_as_hormone_receptor_positive(value) -> None:
    def pr_negative(r: dict[str, Any]) -> dict[str, Any]:
        return _receptor("16113-3", {"valueString": "PgR <1%"})(_receptor("16112-5", value)(r))

    rec = _breast(pr_negative)
    assert not any("no recent ER/PR" in m for m in rec.missing_data)
    assert next(o.regimen for o in rec.options) == "Elacestrant"


@pytest.mark.parametrize(
    ("er", "pr"),
    [
        ({"valueString": "ER 0%"}, {"valueString": "PR: <1 %"}),
        (
            {"valueString": "Estrogen receptor 0%"},
            {"valueString": "Progesterone receptor: negative"},
        ),
        (
            {"valueCodeableConcept": {"coding": [{"system": SNOMED, "code": "260385009"}]}},
            {"valueString": "negative (0%)"},
        ),
    ],
)
def test_er_and_pr_negative_in_words_or_coded_rule_out_endocrine_options(er, pr) -> None:
    rec = _breast(lambda r: _receptor("16113-3", pr)(_receptor("16112-5", er)(r)))
    excluded = {x.regimen: "; ".join(x.reasons) for x in rec.excluded}
    assert "hormone-receptor-positive" in excluded["Elacestrant"]


@pytest.mark.parametrize("text", ["ER <5%", "ER 90%, PR 0%", "ER: see report", "ER 0-5%", "ER ~1%"])
def test_an_ambiguous_er_text_stays_unknown_and_is_asked_for(text: str) -> None:
    def unknown_receptors(r: dict[str, Any]) -> dict[str, Any] | None:
        codes = [c.get("code") for c in r.get("code", {}).get("coding", [])]
        if "16113-3" in codes:
            return None
        return _receptor("16112-5", {"valueString": text})(r)

    rec = _breast(unknown_receptors)
    assert any("no recent ER/PR" in m for m in rec.missing_data)
    (elacestrant,) = [o for o in rec.options if o.regimen == "Elacestrant"]
    assert "hormone-receptor-positive" in (elacestrant.branch or "")


# --- [14] HIV genotype text, one sentence per gene ----------------------------------------------
def _hiv(text: str | None = None) -> list[HivOption]:
    resources = resources_of("r14")
    if text is not None:
        for r in resources:
            if r["resourceType"] == "Observation" and r.get("valueString", "").startswith("RT:"):
                r["valueString"] = text
    rec = report_of(resources).recommendation
    return [o for o in rec.options if isinstance(o, HivOption)]


def _level(options: list[HivOption], option_id: str, drug: str) -> str:
    (option,) = [o for o in options if o.option_id == option_id]
    return next(a.level for a in option.activity if a.drug == drug)


def test_a_protease_reported_without_major_mutations_makes_darunavir_fully_active() -> None:
    options = _hiv()  # "RT: K103N, M184V. PR: no major mutations. INSTI not tested."
    (drv_nrti,) = [o for o in options if o.option_id == "hiv-drvr-2nrti"]
    assert _level(options, "hiv-drvr-2nrti", "darunavir") == "active"
    assert drv_nrti.fully_active == 2
    assert not any("Fewer than 2" in line for line in drv_nrti.summary)
    assert _level(options, "hiv-drvr-dtg", "darunavir") == "active"


@pytest.mark.parametrize(
    "text",
    [
        "RT: K103N, M184V. PR: none.",
        "RT: K103N, M184V. Protease: no resistance mutations",
        "Reverse transcriptase: K103N, M184V. PR: wild type. IN: not sequenced.",
    ],
)
def test_protease_wild_type_in_other_words_is_read(text: str) -> None:
    assert _level(_hiv(text), "hiv-drvr-2nrti", "darunavir") == "active"


@pytest.mark.parametrize(
    "text",
    [
        "RT: K103N, M184V. PR: failed to amplify.",
        "RT: K103N, M184V. PR: not sequenced",
        "RT: K103N, M184V",
    ],
)
def test_a_protease_not_assessed_leaves_darunavir_unknown(text: str) -> None:
    # The DiagnosticReport's conclusion names RT only; the Observation's code text says RT/PR,
    # which must not make a failed protease region wild type.
    assert _level(_hiv(text), "hiv-drvr-2nrti", "darunavir") == "unknown"


def test_chemo_naive_her2_low_t_dxd_holds_only_if_hormone_receptor_positive() -> None:
    # DESTINY-Breast06 (before chemotherapy) enrolled HR-positive patients only; DESTINY-Breast04
    # needs prior chemotherapy, which this patient has not had.
    def drop_receptors(r: dict[str, Any]) -> dict[str, Any] | None:
        codes = [c.get("code") for c in r.get("code", {}).get("coding", [])]
        return None if {"16112-5", "16113-3"} & set(codes) else r

    rec = _breast(drop_receptors)
    (tdxd,) = [o for o in rec.options if o.regimen == "Trastuzumab deruxtecan"]
    assert "hormone-receptor-positive" in (tdxd.branch or "")
    regimens = [o.regimen for o in rec.options]
    assert regimens.index("Trastuzumab deruxtecan") > regimens.index("Capecitabine")


def test_evidence_for_another_her2_subtype_is_not_named_as_set_aside() -> None:
    rec = report_of(resources_of("r08")).recommendation
    (tdxd,) = [o for o in rec.options if o.regimen == "Trastuzumab deruxtecan"]
    # DESTINY-Breast03 (HER2-positive) is another subtype: not 'other evidence' for a HER2-low
    # patient; DESTINY-Breast04 (after chemotherapy) is, and is named with its reason
    assert not any("DESTINY-Breast03" in x for x in tdxd.set_aside)
    assert any("DESTINY-Breast04" in x and "chemotherapy" in x for x in tdxd.set_aside)
