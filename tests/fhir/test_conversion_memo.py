"""The remembered reading of a medication's concept (DrugNormaliser.read_concept) against reading
it afresh: the same records and reports on every fixture, review bundle and generated population
of both benchmark shapes, and on concepts whose shape the memo must not cover (numbers, booleans,
nested objects) or must not confuse (1, 1.0 and True compare equal in a tuple)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from salvage import service
from salvage.engine.drugs import DrugNormaliser, _concept_key, concept_text, normaliser_for
from salvage.fhir.reader import ReadResult, iter_resources
from salvage.fhir.records import build_patient_records
from salvage.knowledge import KnowledgeBase
from tests.conftest import AS_OF, FIXTURES, ROOT
from tests.fhir.test_fast_path import MESSY_LINES, SOURCES, _as_of

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def _afresh(self: DrugNormaliser, concept: Any) -> tuple[frozenset[str], str]:
    return self.from_concept(concept), concept_text(concept)


def _records(paths: list[Path], kb: KnowledgeBase) -> Any:
    resources = list(iter_resources([str(p) for p in paths], ReadResult()))
    patients, skipped = build_patient_records(resources, kb)
    return patients, skipped


def _bench_population(tmp_path: Path, shape: str) -> Path:
    script = ROOT / "bench" / "bench_engine.py"
    spec = importlib.util.spec_from_file_location("bench_engine", script)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    make = module.generate if shape == "synthetic" else module.generate_medadmin
    make(15, tmp_path / shape)
    return tmp_path / shape


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_source_same_records_and_reports(
    path: Path, kb: KnowledgeBase, monkeypatch: pytest.MonkeyPatch
) -> None:
    as_of = _as_of(path)
    remembered = _records([path], kb), service.reports_for_files([str(path)], kb, as_of)
    with monkeypatch.context() as patch:
        patch.setattr(DrugNormaliser, "read_concept", _afresh)
        afresh = _records([path], kb), service.reports_for_files([str(path)], kb, as_of)
    assert remembered == afresh
    assert remembered[0][0], "no patient record at all"


@pytest.mark.parametrize("shape", ["synthetic", "medadmin"])
def test_generated_populations_same_reports(
    shape: str, kb: KnowledgeBase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    population = str(_bench_population(tmp_path, shape))
    remembered = service.reports_for_files([population], kb, AS_OF)
    with monkeypatch.context() as patch:
        patch.setattr(DrugNormaliser, "read_concept", _afresh)
        afresh = service.reports_for_files([population], kb, AS_OF)
    assert remembered == afresh
    assert len(remembered[0]) == 15
    assert sum(len(r.analysis.lines) for r in remembered[0]) > 15  # lines were found


def test_messy_lines_same_records(
    kb: KnowledgeBase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    export = tmp_path / "messy.ndjson"
    export.write_bytes(b"\n".join(MESSY_LINES) + b"\n")
    remembered = _records([export], kb)
    with monkeypatch.context() as patch:
        patch.setattr(DrugNormaliser, "read_concept", _afresh)
        assert _records([export], kb) == remembered
    assert remembered[1], "the messy lines are reported as skipped"


def _coded(code: Any, display: Any = "x", **more: Any) -> dict[str, Any]:
    return {"coding": [{"system": RXNORM, "code": code, "display": display}], **more}


UNUSUAL = [
    None,
    {},
    {"coding": []},
    {"text": "rituximab"},
    {"text": "rituximab", "coding": []},
    {"text": 1},
    {"text": True},
    {"text": 1.0},
    {"text": ["rituximab"]},
    {"coding": "rituximab"},
    {"coding": ["rituximab"]},
    {"coding": [None]},
    _coded("121191"),
    _coded(121191),
    _coded("121191", display=None),
    _coded("999999999", display="rituximab 10 MG/ML Injectable Solution"),
    _coded("999999999", display=7),
    _coded("121191", extension=[{"url": "u", "valueString": "v"}]),
    {"coding": [{"system": RXNORM, "code": "121191", "userSelected": True}]},
    {"coding": [{"system": "urn:local", "code": "121191", "display": "rituximab"}]},
    {"coding": [{"code": "121191"}]},
    _coded("3639", display="doxorubicin"),
    {"text": "doxorubicin hydrochloride liposomal", **_coded("3639")},
    {"text": "lopinavir/unknownavir"},
]


def test_unusual_concepts_read_as_afresh_in_any_order(kb: KnowledgeBase) -> None:
    drugs = DrugNormaliser(kb)  # a fresh memo
    for concept in [*UNUSUAL, *reversed(UNUSUAL), *UNUSUAL]:
        assert drugs.read_concept(concept) == _afresh(drugs, concept), concept


def test_only_string_valued_concepts_are_remembered(kb: KnowledgeBase) -> None:
    assert _concept_key({"text": 1}) is None
    assert _concept_key({"text": True}) is None
    assert _concept_key(_coded(121191)) is None
    assert _concept_key({"coding": [None]}) is None
    assert _concept_key(None) is None
    # no coding and an empty coding list are told apart, as are field names
    keys = {_concept_key(c) for c in ({}, {"coding": []}, {"text": "a"}, {"display": "a"})}
    assert len(keys) == 4
    drugs = DrugNormaliser(kb)
    drugs.read_concept({"text": "rituximab"})
    drugs.read_concept({"text": "rituximab"})
    assert len(drugs._concept_cache) == 1
    # one RxNorm code of a drug no formulation word changes: read directly, not remembered
    assert drugs.read_concept(_coded("121191")) == _afresh(drugs, _coded("121191"))
    assert len(drugs._concept_cache) == 1


def test_a_concept_that_cannot_be_read_raises_every_time(kb: KnowledgeBase) -> None:
    """A malformed concept is never remembered as read: each resource carrying it is skipped."""
    drugs = normaliser_for(kb)
    for _ in range(2):
        with pytest.raises(AttributeError):
            drugs.read_concept("rituximab")  # type: ignore[arg-type]


def test_fixture_list_is_the_one_the_fast_path_test_compares() -> None:
    assert FIXTURES in {p.parent for p in SOURCES}
