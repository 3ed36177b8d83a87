"""Every fixture patient's `salvage lines --json` output matches its hand-labelled expectation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from salvage import cli
from tests.conftest import AS_OF, FIXTURES

CASES = sorted(p.stem for p in FIXTURES.glob("*.json"))
LINE_KEYS = ("number", "regimen", "ingredients", "start", "end", "maintenance", "sources")
FAILURE_KEYS = ("kind", "date", "line", "sources")


def test_there_are_at_least_25_fixture_patients() -> None:
    assert len(CASES) >= 25


def _run_lines(path: Path, capsys: pytest.CaptureFixture[str]) -> dict:
    status = cli.main(["lines", str(path), "--json", "--as-of", AS_OF.isoformat()])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    return json.loads(captured.out)


@pytest.mark.parametrize("case", CASES)
def test_fixture_output_matches_expected(case: str, capsys: pytest.CaptureFixture[str]) -> None:
    expected = json.loads((FIXTURES / "expected" / f"{case}.json").read_text())
    document = _run_lines(FIXTURES / f"{case}.json", capsys)
    assert document["skipped_count"] == 0
    (patient,) = document["patients"]
    assert patient["patient"] == expected["patient"]
    assert [{k: line[k] for k in LINE_KEYS} for line in patient["lines"]] == expected["lines"]
    assert [{k: f[k] for k in FAILURE_KEYS} for f in patient["failures"]] == expected["failures"]
    assert patient["unmapped"] == expected["unmapped"]


def test_a_directory_reads_every_fixture_patient(capsys: pytest.CaptureFixture[str]) -> None:
    document = _run_lines(FIXTURES, capsys)
    assert len(document["patients"]) == len(CASES)
    assert document["kb_version"]
