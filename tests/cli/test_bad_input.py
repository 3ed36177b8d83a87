"""Bad input gets a one-line error naming the file (and NDJSON line), exit 2, no traceback;
one bad resource among good ones is skipped and counted while the rest is analysed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FIXTURES

GOOD_ADMIN = {
    "resourceType": "MedicationAdministration",
    "id": "a1",
    "status": "completed",
    "medicationCodeableConcept": {"text": "rituximab"},
    "subject": {"reference": "Patient/p1"},
    "effectiveDateTime": "2024-01-01",
}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "salvage.cli", *args, "--as-of", "2026-06-30"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_clean_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("salvage: error")]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_malformed_json_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.json"
    bad.write_text('{"resourceType": "Bundle", "entry": [')
    assert_clean_error(run("lines", str(bad)), "broken.json", "malformed JSON")


def test_a_non_fhir_document_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "config.json"
    bad.write_text('{"name": "not fhir"}')
    assert_clean_error(run("lines", str(bad)), "config.json", "not a FHIR document")


def test_an_unknown_resource_type_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "odd.json"
    bad.write_text('{"resourceType": "Prescription", "id": "x"}')
    assert_clean_error(run("lines", str(bad)), "odd.json", "unknown resourceType 'Prescription'")


def test_an_invalid_date_in_a_single_resource_file_is_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "one.json"
    bad.write_text(json.dumps({**GOOD_ADMIN, "effectiveDateTime": "2024-13-45"}))
    result = run("lines", str(bad), "--json")
    assert result.returncode == 2
    assert "invalid effectiveDateTime '2024-13-45'" in result.stderr
    assert "MedicationAdministration/a1" in result.stderr
    assert "Traceback" not in result.stderr


def test_one_bad_ndjson_line_is_skipped_and_counted(tmp_path: Path) -> None:
    export = tmp_path / "export.ndjson"
    bad_date = {**GOOD_ADMIN, "id": "a2", "effectiveDateTime": "not-a-date"}
    export.write_text(
        "\n".join(
            [
                json.dumps({"resourceType": "Patient", "id": "p1"}),
                json.dumps(GOOD_ADMIN),
                "{this is not json",
                json.dumps(bad_date),
                json.dumps({"resourceType": "Frobnicator", "id": "f1"}),
            ]
        )
        + "\n"
    )
    result = run("lines", str(export), "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["skipped_count"] == 3
    origins = {s["origin"].rsplit(":", 1)[-1] for s in document["skipped"]}
    assert origins == {"3", "4", "5"}
    assert "export.ndjson:3" in result.stderr and "MedicationAdministration/a2" in result.stderr
    (patient,) = document["patients"]
    assert patient["lines"][0]["ingredients"] == ["rituximab"]


def test_a_bad_file_does_not_stop_the_good_ones(tmp_path: Path) -> None:
    bad = tmp_path / "broken.json"
    bad.write_text("not json at all")
    result = run("lines", str(bad), str(FIXTURES / "dlbcl-early-relapse.json"), "--json")
    assert result.returncode == 2
    assert json.loads(result.stdout)["patients"][0]["patient"] == "Patient/dlbcl-early-relapse"


def test_a_missing_file_is_a_clean_error(tmp_path: Path) -> None:
    assert_clean_error(run("lines", str(tmp_path / "absent.json")), "absent.json", "cannot read")


@pytest.mark.parametrize(
    "shape", ['"a string"', "[1, 2]", '{"resourceType": "Bundle", "entry": 5}']
)
def test_strange_shapes_never_crash(tmp_path: Path, shape: str) -> None:
    path = tmp_path / "strange.json"
    path.write_text(shape)
    result = run("lines", str(path))
    assert "Traceback" not in result.stderr
    assert result.returncode in (0, 2)


def test_a_resource_with_wrong_types_is_skipped_not_fatal(tmp_path: Path) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": {"resourceType": "Patient", "id": "p1"}},
            {"resource": GOOD_ADMIN},
            {"resource": {**GOOD_ADMIN, "id": "a3", "medicationCodeableConcept": "rituximab"}},
            {"resource": {**GOOD_ADMIN, "id": "a4", "subject": "Patient/p1"}},
        ],
    }
    path = tmp_path / "typed.json"
    path.write_text(json.dumps(bundle))
    result = run("lines", str(path), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["skipped_count"] == 2


def test_the_readable_table_says_it_is_decision_support() -> None:
    result = run("lines", str(FIXTURES / "nsclc-maintenance.json"))
    assert result.returncode == 0
    assert "decision support" in result.stdout
    assert "line 1 (maintenance)" in result.stdout
