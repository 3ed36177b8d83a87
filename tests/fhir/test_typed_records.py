"""Typed decoding of plain lines (salvage/fhir/typed_records.py) against the general dict path:
the same records and skipped resources on every fixture and review bundle given as NDJSON, on
generated populations of both benchmark shapes, and on odd shapes, which must go the dict path
(numbers as text, missing or null fields, extra nesting, fields the structs do not declare,
invalid UTF-8, numbers beyond a double's range, fields read only in rarer shapes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from salvage import service
from salvage.fhir.decode import ResourceFilter
from salvage.fhir.reader import ReadResult, iter_resources
from salvage.fhir.record_base import PlainAdministration, PlainObservation
from salvage.fhir.records import build_patient_records
from salvage.fhir.typed_records import TypedReader
from salvage.knowledge import KnowledgeBase
from tests.conftest import AS_OF, LOINC
from tests.fhir.test_conversion_memo import _bench_population
from tests.fhir.test_fast_path import MESSY_LINES, SOURCES, _as_ndjson

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
_PLAIN = (PlainAdministration, PlainObservation)


def _records(paths: list[Path], kb: KnowledgeBase, typed: bool) -> tuple[Any, Any, int]:
    """(patients, skipped, resources decoded typed) on the fast path (typed) or the general one."""
    read = ReadResult()
    only_read = ResourceFilter(kb) if typed else None
    resources = list(iter_resources([str(p) for p in paths], read, only_read))
    plain = sum(1 for r, _ in resources if isinstance(r, _PLAIN))
    patients, skipped = build_patient_records(resources, kb)
    return patients, [*read.skipped, *skipped], plain


def _same(paths: list[Path], kb: KnowledgeBase) -> int:
    typed = _records(paths, kb, typed=True)
    general = _records(paths, kb, typed=False)
    assert general[2] == 0
    assert typed[:2] == general[:2]
    return typed[2]


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_source_same_records(path: Path, kb: KnowledgeBase, tmp_path: Path) -> None:
    _same([_as_ndjson(path, tmp_path / f"{path.stem}.ndjson")], kb)


def test_sources_take_the_typed_path_somewhere(kb: KnowledgeBase, tmp_path: Path) -> None:
    export = tmp_path / "all.ndjson"
    export.write_bytes(
        b"".join(_as_ndjson(p, tmp_path / "one.ndjson").read_bytes() for p in SOURCES)
    )
    assert _same([export], kb) > 0


@pytest.mark.parametrize("shape", ["synthetic", "medadmin"])
def test_generated_populations_same_records(shape: str, kb: KnowledgeBase, tmp_path: Path) -> None:
    population = _bench_population(tmp_path, shape)
    typed = _same([population], kb)
    lines = (population / "MedicationAdministration.ndjson").read_bytes().splitlines()
    administrations = len(lines)
    assert typed >= administrations  # every generated administration is of the plain shape


def _line(body: bytes) -> bytes:
    return body.replace(b"RXNORM", RXNORM.encode()).replace(b"LOINCURL", LOINC.encode())


ADMINISTRATION = _line(
    b'{"resourceType":"MedicationAdministration","id":"a1","subject":{"reference":"Patient/t1"},'
    b'"status":"completed","effectiveDateTime":"2024-02-01","medicationCodeableConcept":'
    b'{"coding":[{"system":"RXNORM","code":"121191","display":"rituximab"}]},'
    b'"dosage":{"dose":{"value":375,"unit":"mg/m2"}}}'
)
OBSERVATION = _line(
    b'{"resourceType":"Observation","id":"o1","subject":{"reference":"Patient/t1"},'
    b'"status":"final","effectiveDateTime":"2024-03-01","code":{"coding":'
    b'[{"system":"LOINCURL","code":"2160-0"}]},"valueQuantity":{"value":1.4,"unit":"mg/dL",'
    b'"code":"mg/dL"}}'
)
TYPED_LINES = [  # plain shapes: decoded typed
    ADMINISTRATION,
    OBSERVATION,
    ADMINISTRATION.replace(b'"status":"completed"', b'"status":"not-done"'),
    ADMINISTRATION.replace(
        b'"effectiveDateTime":"2024-02-01"',
        b'"effectivePeriod":{"start":"2024-02-03","end":"2024-02-01"}',
    ),
    ADMINISTRATION.replace(b',"dosage":{"dose":{"value":375,"unit":"mg/m2"}}', b""),
    ADMINISTRATION.replace(b"375", b"0"),
    ADMINISTRATION.replace(b"375", b"1e300"),
    ADMINISTRATION.replace(b'"Patient/t1"}', b'"Patient/t1","display":"x"}'),
    ADMINISTRATION.replace(b'"121191","display":"rituximab"', b'"999999","display":"unknown"'),
    OBSERVATION.replace(b'"value":1.4', b'"value":14'),
    OBSERVATION.replace(b'"code":"mg/dL"}', b'"code":"furlongs"}'),
    OBSERVATION.replace(b'"value":1.4', b'"value":1.4,"comparator":"<"'),
    OBSERVATION.replace(b'"status":"final"', b'"status":"cancelled"'),
    ADMINISTRATION.replace(b'{"coding"', b'{"coding":"rituximab","x"'),  # read as unmapped
    OBSERVATION.replace(b'"2160-0"', b'"20447-9"').replace(b"1.4", b"1e300"),  # other unit
    OBSERVATION.replace(b'"Patient/t1"}', b'"https://ehr.example/fhir/Patient/t1/_history/2"}'),
]
GENERAL_LINES = [  # odd shapes: the general dict path
    ADMINISTRATION.replace(b"375", b'"375"'),  # a number as text
    ADMINISTRATION.replace(b"375", b"true"),
    ADMINISTRATION.replace(b"375", b"1e400"),  # beyond a double: orjson refuses the line
    ADMINISTRATION.replace(b"375", b"1" + b"0" * 400),
    ADMINISTRATION.replace(b"375", b"123456789012345678901234"),  # read as a float by orjson
    ADMINISTRATION.replace(b'"id":"a1",', b'"id":"a1","meta":{"x":1e400},'),
    ADMINISTRATION.replace(b'"id":"a1",', b'"id":"a1","text":"caf\xe9",'),  # not UTF-8
    ADMINISTRATION.replace(b'"id":"a1",', b'"id":"a1","text":"caf\xc3\xa9",'),  # undeclared
    ADMINISTRATION.replace(b'"completed"', b"null"),
    ADMINISTRATION.replace(b'"2024-02-01"', b'"2024-02-30"'),
    ADMINISTRATION.replace(b'"2024-02-01"', b"20240201"),
    ADMINISTRATION.replace(b'"effectiveDateTime":"2024-02-01",', b""),
    ADMINISTRATION.replace(b'"subject":{"reference":"Patient/t1"},', b""),
    ADMINISTRATION.replace(b'"subject":{"reference":"Patient/t1"}', b'"subject":{}'),
    ADMINISTRATION.replace(b'"subject":{"reference":"Patient/t1"}', b'"subject":"Patient/t1"'),
    ADMINISTRATION.replace(b'"Patient/t1"', b'"Group/g1"'),
    ADMINISTRATION.replace(b'"id":"a1"', b'"id":7'),
    ADMINISTRATION.replace(b'"dosage":{"dose"', b'"dosage":{"nested":{"dose"').replace(
        b"}}}", b"}}}}"
    ),
    ADMINISTRATION.replace(b'"dosage":{"dose":{', b'"dosage":[{"dose":{').replace(b"}}}", b"}}]}"),
    ADMINISTRATION.replace(
        b'"medicationCodeableConcept":{', b'"medicationCodeableConcept":[{'
    ).replace(b'"rituximab"}]},', b'"rituximab"}]}],'),
    ADMINISTRATION.replace(b'"id":"a1",', b'"id":"a1","note":[{"text":"slow infusion"}],'),
    ADMINISTRATION.replace(
        b'"id":"a1",', b'"id":"a1","request":{"reference":"MedicationRequest/r1"},'
    ),
    ADMINISTRATION.replace(
        b'"id":"a1",',
        b'"id":"a1","statusReason":[{"coding":[{"system":'
        b'"http://snomed.info/sct","code":"182992009"}]}],',
    ),
    ADMINISTRATION.replace(b'"id":"a1",', b'"id":"a1","reasonCode":[{"text":"palliative"}],'),
    OBSERVATION.replace(b'"value":1.4', b'"value":"1.4"'),
    OBSERVATION.replace(b'"value":1.4,', b""),
    OBSERVATION.replace(b'"value":1.4', b'"value":1e400'),
    OBSERVATION.replace(b'"2160-0"', b'"20447-9"')
    .replace(b'"value":1.4', b'"value":400')
    .replace(b'"mg/dL"', b'"{log_copies}/mL"'),  # 10**400 overflows a double
    OBSERVATION.replace(b'"code":{"coding":[', b'"code":{"coding":[[').replace(b"}]}", b"}]]}"),
    OBSERVATION.replace(b'"effectiveDateTime"', b'"effectiveInstant"'),
    OBSERVATION.replace(
        b'"status":"final",',
        b'"status":"final","referenceRange":[{"high":{"value":1.2,"unit":"mg/dL"}}],',
    ),
    OBSERVATION.replace(b'"status":"final",', b'"status":"final","interpretation":[{}],'),
    OBSERVATION.replace(b'"2160-0"', b'"718-7"'),  # a lab no rule reads
    *MESSY_LINES,
]


def test_plain_shapes_are_typed_and_odd_ones_are_not(kb: KnowledgeBase) -> None:
    reader = TypedReader(kb)

    def typed(line: bytes) -> Any:
        if line.startswith(b'{"resourceType":"Observation"'):
            return reader.observation(line)
        return reader.administration(line)

    assert all(typed(line) is not None for line in TYPED_LINES)
    assert [line for line in GENERAL_LINES if typed(line) is not None] == []


def test_odd_and_plain_lines_same_records(kb: KnowledgeBase, tmp_path: Path) -> None:
    export = tmp_path / "odd.ndjson"
    export.write_bytes(b"\n".join([*TYPED_LINES, *GENERAL_LINES, *TYPED_LINES]) + b"\n")
    patients, skipped, plain = _records([export], kb, typed=True)
    assert (patients, skipped) == _records([export], kb, typed=False)[:2]
    assert plain == 2 * len(TYPED_LINES)
    assert len(skipped) > 10  # the odd lines are reported, not lost
    record = patients["Patient/t1"]
    assert record.measurements and record.exposures and record.warnings


def test_odd_and_plain_lines_bucketed_same_reports(kb: KnowledgeBase, tmp_path: Path) -> None:
    export = tmp_path / "odd.ndjson"
    export.write_bytes(b"\n".join([*GENERAL_LINES, *TYPED_LINES]) + b"\n")
    general = service.reports_for_files([str(export)], kb, AS_OF, fast=False)
    bucketed = service.reports_for_files([str(export)], kb, AS_OF, bucket_mb=0.001)
    assert bucketed[0] == general[0]
    # The same skipped resources; lines the first look skipped over but orjson refuses are
    # listed first when bucketed (as on main before typed decoding).
    assert sorted(map(str, bucketed[2])) == sorted(map(str, general[2]))
    assert bucketed[1].count == general[1].count
