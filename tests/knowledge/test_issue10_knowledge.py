"""The knowledge added for issue 10 is data with sources: every rule cites evidence with a level,
the performance-status tables are complete, and a typo in the new rules is refused."""

from __future__ import annotations

import pytest

from salvage.errors import KnowledgeError
from salvage.knowledge import loader


def test_transplant_and_primary_refractory_rules_cite_evidence_with_a_level(kb) -> None:
    cited = {k for rule in kb.transplant_rules.values() for k in rule.evidence}
    cited |= set(kb.failures.oncology.primary_refractory.evidence)
    assert cited >= {"PILOT", "TRANSFORM", "ZUMA-7", "HD-R1", "SCHOLAR-1"}
    assert all(kb.evidence[k].level for k in cited)


def test_every_ecog_grade_has_a_loinc_and_a_snomed_answer(kb) -> None:
    answers = kb.observation_kinds["ecog"].answers
    for system in ("http://loinc.org|", "http://snomed.info/sct|"):
        assert sorted(v for k, v in answers.items() if k.startswith(system)) == [0, 1, 2, 3, 4, 5]


def test_the_karnofsky_table_covers_0_to_100(kb) -> None:
    rows = kb.karnofsky_to_ecog
    assert rows[0] == (100, 0) and rows[-1] == (0, 5)
    assert [e for _, e in rows] == sorted(e for _, e in rows)


def test_a_transplant_rule_for_an_unknown_disease_is_refused() -> None:
    raw = loader.load_raw()
    rules = raw["patient_rules"].model_copy(deep=True)
    rules.transplant_eligibility["lymphomaa"] = rules.transplant_eligibility["dlbcl"]
    raw["patient_rules"] = rules
    with pytest.raises(KnowledgeError, match="unknown disease 'lymphomaa'"):
        loader.build(raw)


def test_an_unknown_field_in_a_transplant_rule_is_refused() -> None:
    from salvage.knowledge import schema

    with pytest.raises(ValueError):
        schema.NotCandidateWhen.model_validate({"age_at_leats": 70})
