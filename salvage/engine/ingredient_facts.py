"""What the knowledge base says about one product's ingredient set, read once per knowledge base.

Every analysis asks the same questions of each exposure's ingredients (their roles, which never
count towards a line, whether one is an antiretroviral or an anthracycline), several times per
patient, while a population holds only a few distinct ingredient sets. The answers are
remembered per knowledge base and ingredient set (a frozenset caches its own hash), so a lookup
is one dict access instead of a scan of the drug table.
"""

from __future__ import annotations

from typing import NamedTuple

from salvage.knowledge.model import KnowledgeBase

# Roles whose ingredients never count towards a line (mesna in an ifosfamide kit, a steroid given
# as premedication); which drug has which role is data (drugs.yaml).
NON_LINE_ROLES = ("supportive", "steroid")
_MEMO_LIMIT = 20_000  # distinct ingredient sets remembered before starting again (bounded memory)


class IngredientFacts(NamedTuple):
    roles: frozenset[str]  # the knowledge-base roles of the known ingredients
    non_line: frozenset[str]  # ingredients that never count towards a line
    antiretroviral: bool  # some ingredient is an antiretroviral
    anthracyclines: tuple[str, ...]  # ingredients with an anthracycline equivalence, sorted


def compute(ingredients: frozenset[str], kb: KnowledgeBase) -> IngredientFacts:
    """The facts read directly from the drug table (the reference the memo must equal)."""
    known = [kb.drugs[i] for i in ingredients if i in kb.drugs]
    return IngredientFacts(
        roles=frozenset(d.role for d in known),
        non_line=frozenset(
            i for i in ingredients if i in kb.drugs and kb.drugs[i].role in NON_LINE_ROLES
        ),
        antiretroviral=any(d.role == "antiretroviral" for d in known),
        anthracyclines=tuple(
            sorted(
                i
                for i in ingredients
                if i in kb.drugs and kb.drugs[i].anthracycline_equivalence is not None
            )
        ),
    )


def facts(ingredients: frozenset[str], kb: KnowledgeBase) -> IngredientFacts:
    """The facts of an ingredient set, remembered per knowledge base."""
    memo: dict[frozenset[str], IngredientFacts] | None = kb.__dict__.get("_ingredient_facts")
    if memo is None or len(memo) > _MEMO_LIMIT:
        memo = {}
        object.__setattr__(kb, "_ingredient_facts", memo)
    found = memo.get(ingredients)
    if found is None:
        found = memo[ingredients] = compute(ingredients, kb)
    return found
