"""`--spark local[2]` gives the same output as the single process: lines, recommend and cohort
on a small population written the way Bulk Data exports look (several files per type, a patient's
resources spread over files, absolute references, Medications apart from their orders, a blank
and a malformed line, resources that name no patient)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from salvage import cli
from tests.conftest import FIXTURES

AS_OF = "2026-01-01"


@pytest.fixture(scope="module")
def population(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("ndjson")
    files: dict[str, list[str]] = {}
    count = 0
    for path in sorted(FIXTURES.glob("*.json")):
        bundle = json.loads(path.read_text())
        if bundle.get("resourceType") != "Bundle":
            continue
        for entry in bundle.get("entry", []):
            resource = entry["resource"]
            count += 1
            subject = resource.get("subject")
            if count % 7 == 0 and isinstance(subject, dict) and "reference" in subject:
                subject["reference"] = f"https://ehr.example/fhir/{subject['reference']}"
            name = f"{resource['resourceType']}.{count % 2 + 1:03d}.ndjson"
            files.setdefault(name, []).append(json.dumps(resource))
    for name, lines in files.items():
        if name.startswith("Observation.001"):
            lines.insert(3, "")
            lines.insert(5, '{"resourceType": "Observation", "id": "cut-off", "stat')
        (folder / name).write_text("\n".join(lines) + "\n")
    yield folder
    from salvage.population.spark import session

    session("local[2]").stop()


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, list[str]]:
    status = cli.main(argv)
    captured = capsys.readouterr()
    messages = sorted(line for line in captured.err.splitlines() if line.startswith("salvage:"))
    return status, captured.out, messages


@pytest.mark.parametrize("command", ["lines", "recommend"])
def test_spark_output_is_the_single_process_output(
    population: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [command, str(population), "--json", "--as-of", AS_OF]
    single = _run(argv, capsys)
    spark = _run([*argv, "--spark", "local[2]"], capsys)
    assert single[0] == spark[0]
    assert json.loads(single[1])["patients"]  # a population, not an empty answer
    assert spark[1] == single[1]
    skipped = [m for m in single[2] if "skipped" in m]
    assert any("malformed JSON" in m for m in skipped)
    assert [m for m in spark[2] if "skipped" in m] == skipped


def test_spark_cohort_files_are_the_single_process_files(
    population: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    single, spark = tmp_path / "single", tmp_path / "spark"
    assert _run(["cohort", str(population), "--out", str(single), "--as-of", AS_OF], capsys)[0] == 0
    argv = ["cohort", str(population), "--out", str(spark), "--as-of", AS_OF, "--spark"]
    assert _run(argv, capsys)[0] == 0
    for name in ("lines.csv", "failures.csv", "summary.json", "report.html"):
        assert (spark / name).read_bytes() == (single / name).read_bytes(), name
    import pyarrow.parquet as pq

    for name in ("lines.parquet", "failures.parquet"):
        assert pq.read_table(spark / name).equals(pq.read_table(single / name))


def test_spark_refuses_bundles_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = cli.main(["lines", str(FIXTURES / "dlbcl-early-relapse.json"), "--spark"])
    assert status == 2
    assert "--spark reads NDJSON" in capsys.readouterr().err
