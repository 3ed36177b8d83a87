"""What the knowledge base says about one product's ingredient set, read once per knowledge base.

Every analysis asks the same questions of each exposure's ingredients (their roles, which never
count towards a line, whether one is an antiretroviral or an anthracycline), several times per
patient, while a population holds only a few distinct ingredient sets. The answers are
remembered per knowledge base and ingredient set (a frozenset caches its own hash), so a lookup
is one dict access instead of a scan of the drug table.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from salvage.knowledge.model import Drug, KnowledgeBase

# Roles whose ingredients never count towards a line (mesna in an ifosfamide kit, a steroid given
# as premedication); which drug has which role is data (drugs.yaml).
NON_LINE_ROLES = ("supportive", "steroid")
_MEMO_LIMIT = 20_000  # distinct ingredient sets remembered before starting again (bounded memory)


class IngredientFacts(NamedTuple):
    roles: frozenset[str]  # the knowledge-base roles of the known ingredients
    non_line: frozenset[str]  # ingredients that never count towards a line
    antiretroviral: bool  # some ingredient is an antiretroviral
    antiretrovirals: frozenset[str]  # the antiretroviral ingredients
    anthracyclines: tuple[str, ...]  # ingredients with an anthracycline equivalence, sorted


def compute(ingredients: frozenset[str], drugs: Mapping[str, Drug]) -> IngredientFacts:
    """The facts read directly from the drug table (the reference the memo must equal)."""
    known = [drugs[i] for i in ingredients if i in drugs]
    return IngredientFacts(
        roles=frozenset(d.role for d in known),
        non_line=frozenset(
            i for i in ingredients if i in drugs and drugs[i].role in NON_LINE_ROLES
        ),
        antiretroviral=any(d.role == "antiretroviral" for d in known),
        antiretrovirals=frozenset(
            i for i in ingredients if i in drugs and drugs[i].role == "antiretroviral"
        ),
        anthracyclines=tuple(
            sorted(
                i
                for i in ingredients
                if i in drugs and drugs[i].anthracycline_equivalence is not None
            )
        ),
    )


class FactsTable(dict[frozenset[str], IngredientFacts]):
    """Ingredient set -> facts, filled on first use: a lookup of a known set is a plain dict
    access (no Python call), which matters at dozens of lookups per patient."""

    def __init__(self, drugs: Mapping[str, Drug]) -> None:
        super().__init__()
        self.drugs = drugs  # the drug table, not the knowledge base: no reference cycle

    def __missing__(self, ingredients: frozenset[str]) -> IngredientFacts:
        if len(self) > _MEMO_LIMIT:
            self.clear()
        found = self[ingredients] = compute(ingredients, self.drugs)
        return found


def facts_table(kb: KnowledgeBase) -> FactsTable:
    """The knowledge base's table of ingredient facts (one per knowledge base)."""
    table: FactsTable | None = kb.__dict__.get("_ingredient_facts")
    if table is None:
        table = FactsTable(kb.drugs)
        object.__setattr__(kb, "_ingredient_facts", table)
    return table


def facts(ingredients: frozenset[str], kb: KnowledgeBase) -> IngredientFacts:
    """The facts of an ingredient set, remembered per knowledge base."""
    return facts_table(kb)[ingredients]
