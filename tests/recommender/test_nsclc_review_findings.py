"""NSCLC specialist review findings (2026-12, /tmp/review/REPORT.md items 12, 12b and 10), on
the reviewer's bundles copied to tests/nsclc_review_bundles (names and identifiers removed):

- 12: a lung adenocarcinoma written as text only is recognised from a whole phrase of its text,
  labelled "recognised from text, not coded", and never from a negated, doubted, past or family
  text ("Recurrent UTI" and "Family history of lung cancer" sit in the same record).
- 12b: an untested non-squamous NSCLC gets broad molecular testing as the first step, and the
  immunotherapy options say the driver results come first; not once any result is on record,
  not for squamous disease, not after osimertinib (the re-biopsy option answers there).
- 10 (wording): a progression on an ongoing line says the line is ongoing, not that the as-of
  date was its last dose."""

from __future__ import annotations

import copy
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from salvage import output, service
from salvage.engine import attribution
from salvage.engine.model import ConditionRecord

HERE = Path(__file__).resolve().parents[1] / "nsclc_review_bundles"
AS_OF = date(2026, 12, 1)
TEXT_ONLY = "nr12-adenocarcinoma-text-only-untested-after-carbo-pem"
CODED = "nr12b-adenocarcinoma-coded-untested-after-carbo-pem"
OSIMERTINIB = "nr09-egfr-l858r-progression-on-osimertinib"
TESTING = "nsclc-molecular-testing"
DRIVERS_FIRST = "have the driver results before starting immunotherapy"


def bundle(name: str) -> dict[str, Any]:
    return json.loads((HERE / f"{name}.json").read_text())


def report(document: dict[str, Any], tmp_path: Path, name: str = "variant"):
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(document))
    kb = service.knowledge_base("")
    (only,), _, _ = service.reports_for_files([str(path)], kb, AS_OF)
    return only


def lung_condition(document: dict[str, Any]) -> dict[str, Any]:
    return next(
        e["resource"]
        for e in document["entry"]
        if e["resource"]["resourceType"] == "Condition"
        and "lung" in e["resource"]["code"]["text"].lower()
        and "family" not in e["resource"]["code"]["text"].lower()
    )


# -- 12: a diagnosis written as text only ------------------------------------------------------


def test_a_text_only_adenocarcinoma_is_recognised_and_labelled_not_coded(tmp_path: Path) -> None:
    found = report(bundle(TEXT_ONLY), tmp_path)
    rec = found.recommendation
    assert found.analysis.diseases == ("nsclc",)  # not the UTI, not the mother's lung cancer
    assert rec.disease == "nsclc" and rec.options
    said = rec.text_diagnosis or ""
    assert "recognised from text, not coded" in said
    assert "'Lung adenocarcinoma, metastatic'" in said and "code the diagnosis" in said
    assert "extra" not in said  # only the lung Condition is named as its source
    assert rec.missing_data[0] == said  # said first among the missing data
    assert said in found.analysis.notes
    assert output.recommendation_json(rec, service.knowledge_base(""))["text_diagnosis"] == said


def test_a_coded_diagnosis_carries_no_text_label(tmp_path: Path) -> None:
    rec = report(bundle(CODED), tmp_path).recommendation
    assert rec.disease == "nsclc" and rec.text_diagnosis is None
    assert not any("recognised from text" in m for m in rec.missing_data)


@pytest.mark.parametrize(
    "text",
    [
        "Suspected lung adenocarcinoma",
        "Family history of lung adenocarcinoma",
        "History of NSCLC, resected 2015",
        "Rule out non-small cell lung cancer",
        "R/O lung adenocarcinoma",
        "No evidence of lung adenocarcinoma on biopsy",
        "Lung adenocarcinoma?",
        "Recurrent UTI",
        "Pulmonary nodule",
        "Adenocarcinoma of colon",
        "Lung adenocarcinomatosis",  # not a whole phrase
    ],
)
def test_doubted_negated_past_family_or_other_texts_name_no_lung_cancer(
    tmp_path: Path, text: str
) -> None:
    document = bundle(TEXT_ONLY)
    lung_condition(document)["code"]["text"] = text
    found = report(document, tmp_path)
    assert "nsclc" not in found.analysis.diseases
    rec = found.recommendation
    assert not rec.options and rec.text_diagnosis is None
    # never a silent "no pathway": the text-only diagnosis is named, with what to do
    assert rec.statement and "written as text only" in rec.statement
    assert text in rec.statement and "code the diagnosis" in rec.statement
    assert any("written as text only" in m for m in rec.missing_data)


def _condition(text: str, codes: frozenset[str] = frozenset()) -> ConditionRecord:
    return ConditionRecord(
        source="Condition/x",
        codes=codes,
        clinical_status="active",
        onset=None,
        recorded=None,
        text=text,
    )


def test_a_standard_code_for_something_else_wins_over_the_text() -> None:
    kb = service.knowledge_base("")
    # personal history of lung cancer, coded, with a text that names the cancer
    history = _condition(
        "Lung adenocarcinoma", frozenset({"http://hl7.org/fhir/sid/icd-10-cm|Z85.118"})
    )
    assert attribution.condition_diseases(history, kb) == []
    # a local code only: the text is read
    local = _condition("Lung adenocarcinoma", frozenset({"urn:local:problems|LC1"}))
    assert attribution.condition_diseases(local, kb) == ["nsclc"]
    for text in (
        "NSCLC stage IV",
        "Non-small-cell lung carcinoma",
        "Squamous cell carcinoma of the right upper lobe of lung",
    ):
        assert attribution.condition_diseases(_condition(text), kb) == ["nsclc"], text


# -- 12b: molecular testing first while the drivers are untested -------------------------------


def test_untested_adenocarcinoma_gets_molecular_testing_first_and_cautioned_immunotherapy(
    tmp_path: Path,
) -> None:
    rec = report(bundle(CODED), tmp_path).recommendation
    first = rec.options[0]
    assert first.option_id == TESTING and first.kind == "test"
    assert first.evidence == ("ESMO-NSCLC-oncogene-2023", "Rolfo2021-IASLC")
    assert "circulating tumour DNA" in first.regimen
    immunotherapy = [
        o for o in rec.options if o.option_id in ("nsclc-nivolumab", "nsclc-atezolizumab")
    ]
    assert len(immunotherapy) == 2
    for option in immunotherapy:
        assert option.rank > first.rank
        assert sum(DRIVERS_FIRST in c for c in option.cautions) == 1  # said once, not per marker
    # chemotherapy without a driver question carries no such caution
    (doce,) = [o for o in rec.options if o.option_id == "nsclc-docetaxel"]
    assert not any(DRIVERS_FIRST in c for c in doce.cautions)


def test_any_driver_result_settles_the_testing_step(tmp_path: Path) -> None:
    document = bundle(CODED)
    pid = document["entry"][0]["resource"]["id"]
    document["entry"].append(
        {
            "fullUrl": f"Observation/{pid}-panel",
            "resource": {
                "resourceType": "Observation",
                "id": f"{pid}-panel",
                "status": "final",
                "subject": {"reference": f"Patient/{pid}"},
                "code": {"text": "Lung cancer molecular panel"},
                "effectiveDateTime": "2025-11-20",
                "valueString": "No EGFR mutation; ALK rearrangement not detected",
            },
        }
    )
    rec = report(document, tmp_path).recommendation
    assert TESTING not in [o.option_id for o in rec.options]
    assert TESTING not in [x.option_id for x in rec.excluded]
    for option in rec.options:
        assert not any(DRIVERS_FIRST in c for c in option.cautions), option.regimen


def test_squamous_disease_is_not_given_the_non_squamous_testing_step(tmp_path: Path) -> None:
    document = bundle(CODED)
    lung_condition(document)["code"]["text"] = "Squamous cell carcinoma of lung, metastatic"
    rec = report(document, tmp_path).recommendation
    assert TESTING not in [o.option_id for o in rec.options]
    (reason,) = [" ".join(x.reasons) for x in rec.excluded if x.option_id == TESTING]
    assert reason.startswith("needs NSCLC histology adenocarcinoma: NSCLC histology: squamous")


def test_after_osimertinib_the_rebiopsy_answers_not_the_first_testing_step(tmp_path: Path) -> None:
    document = bundle(OSIMERTINIB)
    # even with the EGFR result taken out of the record
    document["entry"] = [
        e
        for e in document["entry"]
        if not (
            e["resource"]["resourceType"] == "Observation" and "EGFR" in json.dumps(e["resource"])
        )
    ]
    rec = report(document, tmp_path).recommendation
    assert rec.options[0].option_id == "nsclc-rebiopsy-after-osimertinib"
    assert TESTING not in [o.option_id for o in rec.options]
    assert TESTING not in [x.option_id for x in rec.excluded]


# -- 10: an ongoing line has no last dose on the as-of date -------------------------------------


def test_progression_on_an_ongoing_line_says_it_is_ongoing(tmp_path: Path) -> None:
    found = report(copy.deepcopy(bundle(OSIMERTINIB)), tmp_path)
    failure = found.recommendation.failure
    assert failure is not None and failure.kind == "refractory"
    assert "ongoing, no stop date recorded" in failure.detail
    assert "last dose" not in failure.detail and AS_OF.isoformat() not in failure.detail
