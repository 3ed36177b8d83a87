"""Tumour biomarker status from results as laboratories write them: coded variants, text-only
panels, HER2 scores and PD-L1 values. Unknown stays unknown (issue 12 items 5-6)."""

from __future__ import annotations

from datetime import date

import pytest

from salvage.engine import biomarkers
from salvage.engine.model import Measurement, PatientRecord, TumourMarkerResult
from salvage.knowledge.loader import load_knowledge

FAILURE = date(2024, 6, 1)
PRESENT, ABSENT = "http://loinc.org|LA9633-4", "http://loinc.org|LA9634-2"


@pytest.fixture(scope="module")
def kb():
    return load_knowledge()


def _status(kb, disease: str, *results: TumourMarkerResult, measurements=()):
    record = PatientRecord(reference="Patient/x", tumour_markers=list(results))
    record.measurements.extend(measurements)
    return biomarkers.statuses(record, kb, disease, FAILURE)


def _text(value: str, label: str = "Molecular report", when: str = "2024-06-05"):
    return TumourMarkerResult(
        source="Observation/t", when=date.fromisoformat(when), label=label, text=value
    )


@pytest.mark.parametrize(
    ("value", "marker", "expected"),
    [
        ("KRAS p.G12C detected; ALK, ROS1 negative", "kras-g12c", "detected"),
        ("KRAS p.G12C detected; ALK, ROS1 negative", "alk", "not-detected"),
        ("KRAS G12D mutation detected", "kras-g12c", "not-detected"),
        ("EGFR exon 19 deletion detected, no T790M", "egfr", "detected"),
        ("EGFR exon 19 deletion detected, no T790M", "egfr-t790m", "not-detected"),
        ("No EGFR mutation", "egfr", "not-detected"),
        ("EGFR: not tested (insufficient tissue)", "egfr", "unknown"),
        ("BRAF V600E mutation present", "braf-v600e", "detected"),
        ("MET exon 14 skipping alteration detected", "met-ex14", "detected"),
        ("ALK rearrangement POSITIVE", "ntrk", "unknown"),  # 'rearrangement' names no NTRK gene
        ("RET fusion (KIF5B-RET) detected", "ret", "detected"),
        ("ERBB2 exon 20 insertion (p.A775_G776insYVMA)", "erbb2-mutation", "detected"),
    ],
)
def test_text_reports_are_read_clause_by_clause(kb, value, marker, expected) -> None:
    assert _status(kb, "nsclc", _text(value))[marker].result == expected


def test_a_coded_variant_uses_the_gene_component_and_the_present_answer(kb) -> None:
    result = TumourMarkerResult(
        source="Observation/v",
        when=date(2024, 5, 2),
        codes=frozenset({"69548-6"}),
        genes=("EGFR",),
        variant="p.Thr790Met",
        value_codes=frozenset({PRESENT}),
    )
    status = _status(kb, "nsclc", result)
    assert status["egfr-t790m"].result == "detected"
    assert status["kras-g12c"].result == "unknown"  # another gene says nothing about KRAS


def test_an_absent_answer_is_not_detected(kb) -> None:
    result = TumourMarkerResult(
        source="Observation/v",
        when=date(2024, 6, 3),  # after the progression: an older negative would be retested
        genes=("ESR1",),
        value_codes=frozenset({ABSENT}),
    )
    assert _status(kb, "breast", result)["esr1"].result == "not-detected"


def test_an_esr1_negative_before_the_failure_is_unknown_and_says_why(kb) -> None:
    old = TumourMarkerResult(
        source="Observation/old",
        when=date(2023, 1, 5),
        genes=("ESR1",),
        value_codes=frozenset({ABSENT}),
    )
    status = _status(kb, "breast", old)["esr1"]
    assert status.result == "unknown" and "before the progression" in status.text


@pytest.mark.parametrize(
    ("raw", "level"),
    [
        ("Negative (IHC 1+)", "low"),
        ("Score 2+, ISH not amplified", "low"),
        ("2+ (equivocal), ISH pending", "unknown"),
        ("3+", "positive"),
        ("IHC 0 with faint incomplete membrane staining (ultralow)", "ultralow"),
        ("HER2 0 (no staining)", "zero"),
        ("IHC 2+, FISH amplified", "positive"),
    ],
)
def test_her2_scores_written_as_text(kb, raw, level) -> None:
    m = Measurement(source="Observation/h", kind="her2", when=date(2024, 1, 1), value=None, raw=raw)
    assert _status(kb, "breast", measurements=[m])["her2-ihc"].result == level


@pytest.mark.parametrize(
    ("result", "level"),
    [
        (
            TumourMarkerResult(
                source="O/p", when=date(2024, 1, 1), label="PD-L1 22C3", number=60.0
            ),
            "50-percent-or-more",
        ),
        (_text("PD-L1 TPS <1%", label="PD-L1"), "below-1-percent"),
        (_text("Tumour proportion score 20 %", label="PD-L1 (22C3)"), "1-to-49-percent"),
    ],
)
def test_pd_l1_as_a_quantity_or_a_sentence(kb, result, level) -> None:
    assert _status(kb, "nsclc", result)["pd-l1-tps"].result == level


def test_nothing_recorded_is_unknown_never_negative(kb) -> None:
    statuses = _status(kb, "nsclc")
    assert {s.result for s in statuses.values()} == {"unknown"}
    assert all("not recorded" in s.text for s in statuses.values())


@pytest.mark.parametrize(
    ("er", "pr", "expected"),
    [
        ("negative (<1 %)", "Negative", "negative"),
        ("Positive, 95 %", "negative (<1 %)", "positive"),
        ("Equivocal", "negative", "unknown"),
    ],
)
def test_receptor_results_written_as_text(kb, er, pr, expected) -> None:
    from salvage.engine import receptors

    record = PatientRecord(reference="Patient/x")
    for kind, raw in (("estrogen-receptor", er), ("progesterone-receptor", pr)):
        record.measurements.append(
            Measurement(
                source=f"Observation/{kind}", kind=kind, when=date(2024, 1, 1), value=None, raw=raw
            )
        )
    assert receptors.hormone_receptor(record, kb).value == expected


def test_a_gene_result_without_any_value_is_no_result(kb) -> None:
    # dataAbsentReason 'not performed' arrives as text; no answer, no variant: never "detected"
    result = TumourMarkerResult(source="O/n", when=date(2024, 6, 5), genes=("KRAS",))
    assert _status(kb, "nsclc", result)["kras-g12c"].result == "unknown"


def test_wild_type_coded_answers_are_not_detected(kb) -> None:
    result = TumourMarkerResult(
        source="O/w",
        when=date(2024, 6, 5),
        genes=("BRAF",),
        value_codes=frozenset({"http://snomed.info/sct|412730000"}),
    )
    assert _status(kb, "nsclc", result)["braf-v600e"].result == "not-detected"


def test_an_alkaline_phosphatase_lab_is_not_read_as_an_alk_result(kb) -> None:
    from salvage.fhir.records import build_patient_records

    lab = {
        "resourceType": "Observation",
        "id": "alp",
        "status": "final",
        "subject": {"reference": "Patient/p1"},
        "code": {
            "coding": [{"system": "http://loinc.org", "code": "6768-6", "display": "ALK PHOS"}]
        },
        "effectiveDateTime": "2024-06-01",
        "valueQuantity": {"value": 120, "unit": "U/L"},
    }
    report = dict(
        lab, id="ngs", code={"text": "ALK FISH"}, valueString="ALK rearrangement detected"
    )
    report.pop("valueQuantity")
    patients, _ = build_patient_records([(lab, ("t", 0)), (report, ("t", 1))], kb)
    assert [m.source for m in patients["Patient/p1"].tumour_markers] == ["Observation/ngs"]


def test_a_molecular_report_with_only_a_conclusion_is_read(kb) -> None:
    from salvage.fhir.records import build_patient_records

    report = {
        "resourceType": "DiagnosticReport",
        "id": "ngs1",
        "status": "final",
        "subject": {"reference": "Patient/p1"},
        "code": {"text": "Lung cancer NGS panel"},
        "issued": "2024-06-04T09:00:00Z",
        "conclusion": "KRAS p.G12C (c.34G>T) detected. EGFR, ALK, ROS1: negative.",
    }
    patients, skipped = build_patient_records([(report, ("t", 0))], kb)
    assert skipped == []
    record = patients["Patient/p1"]
    statuses = biomarkers.statuses(record, kb, "nsclc", FAILURE)
    assert statuses["kras-g12c"].result == "detected"
    assert statuses["alk"].result == "not-detected"
