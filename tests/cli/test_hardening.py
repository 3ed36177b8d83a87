"""Issue 14 on the CLI and the converter: malformed resources are skipped and counted, never
fatal; `lines` and `recommend` agree on exit 2 for unusable input; a closed pipe is quiet."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from salvage.fhir.records import build_patient_records
from salvage.knowledge import load_knowledge
from tests.cli.test_bad_input import GOOD_ADMIN, run

ORDER = {
    "resourceType": "MedicationRequest",
    "id": "m1",
    "status": "active",
    "intent": "order",
    "subject": {"reference": "Patient/p1"},
    "authoredOn": "2024-01-01",
    "medicationCodeableConcept": {"text": "tamoxifen"},
}
MALFORMED = [
    {"resourceType": {}},
    {"resourceType": ["Observation"]},
    {
        "resourceType": "Observation",
        "id": "o1",
        "subject": {"reference": "Patient/p1"},
        "code": [1],
    },
    {
        **ORDER,
        "id": "m2",
        "dispenseRequest": {"expectedSupplyDuration": {"value": 2**63, "unit": "d"}},
    },
    {
        **ORDER,
        "id": "m3",
        "dispenseRequest": {
            "expectedSupplyDuration": {"value": 30, "unit": "d"},
            "numberOfRepeatsAllowed": 2**63,
        },
    },
]


def test_a_code_that_is_not_text_is_an_observation_no_rule_reads() -> None:
    odd = {
        "resourceType": "Observation",
        "id": "o2",
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": "http://loinc.org", "code": {}}]},
    }
    patients, skipped = build_patient_records([(odd, ("t", 0))], load_knowledge())
    assert skipped == [] and patients == {}  # dropped before any work, like any unread lab


@pytest.mark.parametrize("resource", MALFORMED)
def test_a_malformed_resource_is_skipped_and_counted_never_fatal(resource: Any) -> None:
    kb = load_knowledge()
    patients, skipped = build_patient_records([(GOOD_ADMIN, ("t", 0)), (resource, ("t", 1))], kb)
    assert "Patient/p1" in patients
    assert len(skipped) == 1 and skipped[0].reason.startswith("malformed resource")


def _bundle(tmp_path: Path, resources: list[Any], name: str = "b.json") -> Path:
    path = tmp_path / name
    path.write_text(
        json.dumps(
            {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"resource": r} for r in resources],
            }
        )
    )
    return path


@pytest.mark.parametrize("command", ["lines", "recommend"])
def test_malformed_resources_among_good_ones_are_analysed(tmp_path, command) -> None:
    result = run(command, str(_bundle(tmp_path, [GOOD_ADMIN, *MALFORMED])))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.count("salvage: skipped") == len(MALFORMED)


def test_lines_and_recommend_agree_on_exit_2_for_unusable_input(tmp_path) -> None:
    path = str(_bundle(tmp_path, MALFORMED))
    codes = {command: run(command, path).returncode for command in ("lines", "recommend")}
    assert codes == {"lines": 2, "recommend": 2}


def test_unmapped_drugs_are_named_and_ingredient_references_are_followed() -> None:
    kb = load_knowledge()
    order = {
        **ORDER,
        "medicationReference": {"reference": "#med"},
        "contained": [
            {
                "resourceType": "Medication",
                "id": "med",
                "ingredient": [{"itemReference": {"reference": "#ing"}}],
            },
            {"resourceType": "Medication", "id": "ing", "code": {"text": "rituximab"}},
        ],
    }
    del order["medicationCodeableConcept"]
    unknown = {
        **order,
        "id": "m9",
        "contained": [{"resourceType": "Medication", "id": "med", "code": {"text": "Drug X 5 mg"}}],
    }
    patients, _ = build_patient_records([(order, ("t", 0)), (unknown, ("t", 1))], kb)
    record = patients["Patient/p1"]
    assert [e.ingredients for e in record.exposures] == [frozenset({"rituximab"})]
    assert [u.text for u in record.unmapped] == ["Drug X 5 mg"]


def test_a_closed_pipe_prints_no_traceback(tmp_path) -> None:
    patients = [{"resourceType": "Patient", "id": f"p{i}"} for i in range(4000)]
    admins = [
        {**GOOD_ADMIN, "id": f"a{i}", "subject": {"reference": f"Patient/p{i}"}}
        for i in range(4000)
    ]
    path = _bundle(tmp_path, patients + admins)
    shell = f"{sys.executable} -m salvage.cli lines {path} --as-of 2026-06-30 | head -n 2"
    result = subprocess.run(  # noqa: S602 (our own command line, to get a real pipe to head)
        shell, shell=True, capture_output=True, text=True, timeout=120, check=False
    )
    assert len(result.stdout.splitlines()) == 2
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr, result.stderr
