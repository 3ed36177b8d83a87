"""The fast decoding path (salvage/fhir/decode.py) against the general dict path: the same reports,
counts and skipped resources on every fixture and review bundle, given as Bundle JSON and as
NDJSON (Bulk Data style). A field or code a rule starts to read that the fast path drops shows
up here as a failing test, not as silent data loss."""

from __future__ import annotations

import importlib.util
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest

from salvage import service
from salvage.fhir.buckets import bucket_count
from salvage.fhir.decode import DROP, GENERAL, KEEP, ResourceFilter
from salvage.fhir.reader import ReadResult, iter_resources
from salvage.knowledge import KnowledgeBase
from tests.conftest import AS_OF, FIXTURES, LOINC, ROOT, SNOMED

REVIEW_DIRS = (
    ROOT / "tests" / "onc_review_bundles",
    ROOT / "tests" / "hiv_review_bundles",
    ROOT / "tests" / "heme_review_bundles",
)
SOURCES = sorted(FIXTURES.glob("*.json")) + sorted(p for d in REVIEW_DIRS for p in d.glob("*.json"))


def _as_of(path: Path) -> date:
    stamps = path.parent / "asof.txt"
    if stamps.exists():
        for line in stamps.read_text().splitlines():
            name, _, day = line.partition(" ")
            if name == path.name:
                return date.fromisoformat(day.strip())
    return AS_OF


def _outcome(paths: list[Path], kb: KnowledgeBase, as_of: date, fast: bool) -> Any:
    names = [str(p) for p in paths]
    reports, read, skipped = service.reports_for_files(names, kb, as_of, fast=fast)
    return reports, read.count, [str(e) for e in read.errors], skipped


def _as_ndjson(path: Path, target: Path) -> Path:
    """The resources of a Bundle one per line, as a Bulk Data export gives them."""
    resources = [r for r, _ in iter_resources([str(path)], ReadResult())]
    target.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in resources))
    return target


def test_every_source_is_compared() -> None:
    assert len(SOURCES) >= 100  # fixtures + oncology + HIV review bundles


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_fast_path_gives_the_general_paths_output(
    path: Path, kb: KnowledgeBase, tmp_path: Path
) -> None:
    as_of = _as_of(path)
    ndjson = _as_ndjson(path, tmp_path / f"{path.stem}.ndjson")
    for source in (path, ndjson):
        fast = _outcome([source], kb, as_of, fast=True)
        assert fast == _outcome([source], kb, as_of, fast=False), source.name
        assert fast[0], f"{source.name}: no patient report at all"


def test_all_sources_together_as_one_export(kb: KnowledgeBase, tmp_path: Path) -> None:
    """Many patients in one NDJSON file, Medications possibly after the orders naming them."""
    lines = b"".join(_as_ndjson(p, tmp_path / "one.ndjson").read_bytes() for p in SOURCES)
    export = tmp_path / "export.ndjson"
    export.write_bytes(lines)
    assert _outcome([export], kb, AS_OF, fast=True) == _outcome([export], kb, AS_OF, fast=False)


def _bench_population(tmp_path: Path) -> Path:
    script = ROOT / "bench" / "bench_engine.py"
    spec = importlib.util.spec_from_file_location("bench_engine", script)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.generate(12, tmp_path / "population")
    return tmp_path / "population"


def test_benchmark_population_same_output_and_unread_labs_not_handed_on(
    kb: KnowledgeBase, tmp_path: Path
) -> None:
    population = _bench_population(tmp_path)
    assert _outcome([population], kb, AS_OF, True) == _outcome([population], kb, AS_OF, False)
    every, fast = ReadResult(), ReadResult()
    handed_all = sum(1 for _ in iter_resources([str(population)], every))
    handed_fast = sum(1 for _ in iter_resources([str(population)], fast, ResourceFilter(kb)))
    assert every.count == fast.count == handed_all
    assert handed_fast < handed_all * 0.4  # most are labs no rule reads


MESSY_LINES = [
    b'{"resourceType":"Patient","id":"m1","birthDate":"1950-02-03","gender":"female"}',
    b"",
    b"not json at all",
    b"[1, 2]",
    b'{"resourceType": 7, "id": "x"}',
    b'{"resourceType":"NotAType","id":"x"}',
    b'{"resourceType":"Encounter","id":"e1","subject":{"reference":"Patient/m1"}}',
    b'{"resourceType":"Condition","id":"c1","subject":{"reference":"Patient/m1"},'
    b'"code":{"coding":[{"system":"' + SNOMED.encode() + b'","code":"109969005"}]}}',
    # a lab no rule reads, then the same code with components (read in full)
    b'{"resourceType":"Observation","id":"o1","status":"final","subject":{"reference":"Patient/m1"},'
    b'"code":{"coding":[{"system":"' + LOINC.encode() + b'","code":"718-7"}]},'
    b'"effectiveDateTime":"2025-01-01","valueQuantity":{"value":12,"unit":"g/dL"}}',
    b'{"resourceType":"Observation","id":"o2","status":"final","subject":{"reference":"Patient/m1"},'
    b'"code":{"coding":[{"system":"' + LOINC.encode() + b'","code":"718-7"}]},"component":[]}',
    b'{"resourceType":"Observation","id":"o3","subject":{"reference":"Patient/m1"},"code":"text"}',
    b'{"resourceType":"Observation","id":"o4","subject":{"reference":"Patient/m1"}}',
    b'{"resourceType":"Observation","id":"o5","subject":{"reference":"Patient/m1"},'
    b'"code":{"text":"HIV-1 genotype resistance","coding":[]},"effectiveDateTime":"2025-01-01"}',
    b'{"resourceType":"Observation","id":"o6","subject":{"reference":"Patient/m1"},'
    b'"code":{"coding":"not a list"}}',
    b'{"resourceType":"Bundle","type":"collection","entry":[{"resource":'
    b'{"resourceType":"Procedure","id":"pr1","subject":{"reference":"Patient/m1"},'
    b'"status":"completed","code":{"text":"autologous stem cell transplant"},'
    b'"performedDateTime":"2024-01-01"}}]}',
    b'{"resourceType":"MedicationRequest","id":"mr1","subject":{"reference":"Patient/m1"},'
    b'"status":"completed","authoredOn":"2024-05-01","medicationReference":'
    b'{"reference":"Medication/med1"}}',
    b'{"resourceType":"Medication","id":"med1","code":{"text":"rituximab"}}',
]


def test_messy_ndjson_same_output(kb: KnowledgeBase, tmp_path: Path) -> None:
    export = tmp_path / "messy.ndjson"
    export.write_bytes(b"\n".join(MESSY_LINES) + b"\n")
    fast = _outcome([export], kb, AS_OF, fast=True)
    assert fast == _outcome([export], kb, AS_OF, fast=False)
    assert fast[3], "the messy lines are reported as skipped"


def test_first_look_verdicts(kb: KnowledgeBase) -> None:
    only_read = ResourceFilter(kb)
    known = {"Observation", "Encounter", "Condition", "Bundle"}
    assert only_read.line(MESSY_LINES[8], known)[0] == DROP  # a lab no rule reads
    assert only_read.line(MESSY_LINES[9], known)[0] == GENERAL  # components: read in full
    assert only_read.line(MESSY_LINES[6], known)[0] == DROP  # a type outside the query set
    assert only_read.line(MESSY_LINES[7], known)[0] == KEEP
    assert only_read.line(MESSY_LINES[2], known)[0] == GENERAL  # malformed: reported there
    assert only_read.line(MESSY_LINES[5], known)[0] == GENERAL  # unconfirmed type: checked there
    assert only_read.line(MESSY_LINES[12], known)[0] == KEEP  # genotype by its wording
    loinc = next(iter(kb.loinc_index))
    line = b'{"resourceType":"Observation","code":{"coding":[{"code":"%s"}]}}' % loinc.encode()
    assert only_read.line(line, known)[0] == KEEP  # every code a rule reads, from the KB


def test_bucketed_population_gives_the_one_pass_output(kb: KnowledgeBase, tmp_path: Path) -> None:
    """Every source as Bundle JSON and as NDJSON, bucketed on disk (a tiny bucket size, so many
    buckets), against the general path in one pass: same reports, counts and skipped, in order."""
    ndjson = [_as_ndjson(p, tmp_path / f"{p.stem}.ndjson") for p in SOURCES]
    export = tmp_path / "export.ndjson"
    export.write_bytes(b"".join(p.read_bytes() for p in ndjson) + b"\n".join(MESSY_LINES) + b"\n")
    sources = [*SOURCES, export]
    paths = [str(p) for p in sources]
    general = service.reports_for_files(paths, kb, AS_OF, fast=False)
    assert bucket_count(paths, 0.05) > 20
    bucketed = service.reports_for_files(paths, kb, AS_OF, bucket_mb=0.05)
    assert len(general[2]) >= 5  # skipped resources, some waiting for a later Medication
    assert bucketed[0] == general[0]
    assert bucketed[2] == general[2]
    assert bucketed[1].count == general[1].count
    population = _bench_population(tmp_path)
    general = service.reports_for_files([str(population)], kb, AS_OF, fast=False)
    assert service.reports_for_files([str(population)], kb, AS_OF, bucket_mb=0.2) == general
