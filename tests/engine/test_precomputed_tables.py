"""The structures precomputed once per knowledge base (ingredient facts, accompanying drug sets)
answer exactly what reading the knowledge base directly answers, for every exposure of every
fixture and review bundle: a stale or wrong table would change lines silently."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from salvage.engine import ingredient_facts, lines
from salvage.engine.ingredient_facts import facts, facts_table
from salvage.fhir.reader import ReadResult, iter_resources
from salvage.fhir.records import build_patient_records
from salvage.knowledge.model import KnowledgeBase
from tests.conftest import FIXTURES

BUNDLES = sorted([*FIXTURES.glob("*.json"), *(Path(__file__).parents[1]).glob("*_bundles/*.json")])


def _ingredient_sets(kb: KnowledgeBase) -> set[frozenset[str]]:
    found: set[frozenset[str]] = set()
    for path in BUNDLES:
        patients, _ = build_patient_records(iter_resources([str(path)], ReadResult()), kb)
        found |= {e.ingredients for record in patients.values() for e in record.exposures}
    return found


def test_ingredient_facts_match_the_drug_table_on_every_fixture(kb: KnowledgeBase) -> None:
    sets = _ingredient_sets(kb)
    assert len(sets) > 50  # the fixtures hold many distinct products
    roles_seen: set[str] = set()
    for ingredients in sets:
        got = facts(ingredients, kb)
        known = [i for i in ingredients if i in kb.drugs]
        roles = {kb.drugs[i].role for i in known}
        roles_seen |= roles
        assert got.roles == roles
        assert got.non_line == {i for i in known if kb.drugs[i].role in ("supportive", "steroid")}
        assert got.antiretroviral == any(kb.drugs[i].role == "antiretroviral" for i in known)
        assert got.antiretrovirals == {i for i in known if kb.drugs[i].role == "antiretroviral"}
        assert list(got.anthracyclines) == sorted(
            i for i in known if kb.drugs[i].anthracycline_equivalence is not None
        )
    # The fixtures exercise every branch the tables answer.
    assert {"anticancer", "steroid", "supportive", "antiretroviral"} <= roles_seen
    assert any(facts(s, kb).anthracyclines for s in sets)


def test_facts_table_is_one_per_knowledge_base_and_bounded(
    kb: KnowledgeBase, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = facts_table(kb)
    assert facts_table(kb) is table
    monkeypatch.setattr(ingredient_facts, "_MEMO_LIMIT", 2)
    for drug in list(kb.drugs)[:10]:
        assert facts(frozenset({drug}), kb).roles == {kb.drugs[drug].role}
    assert len(table) <= 3  # cleared and refilled, never unbounded
    assert facts(frozenset({"not-a-drug"}), kb) == (
        frozenset(),
        frozenset(),
        False,
        frozenset(),
        (),
    )


def test_accompanying_sets_match_the_rules_and_follow_the_rules_object(kb: KnowledgeBase) -> None:
    every = [kb.default_rules, *kb.disease_rules.values()]
    assert any(r.accompanying for r in every)
    for rules in every:
        drugs, accompanied = lines._accompanying_sets(rules, kb)
        assert drugs == {d for a in rules.accompanying for d in a.drugs}
        assert accompanied == {
            d
            for a in rules.accompanying
            for r in a.with_regimens
            if r in kb.regimens
            for d in kb.regimens[r].components
        }
    # Another rules object (a test's or an overlay's) is read afresh, never served a stale entry.
    with_accompanying = next(r for r in every if r.accompanying)
    stripped = dataclasses.replace(with_accompanying, accompanying=())
    assert lines._accompanying_sets(stripped, kb) == (frozenset(), frozenset())
    assert lines._accompanying_sets(with_accompanying, kb)[0]
