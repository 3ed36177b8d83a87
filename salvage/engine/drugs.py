"""Map a medication (codes, ingredient list, or free text) to RxNorm ingredient names."""

from __future__ import annotations

import re
from typing import Any

from salvage.knowledge.model import KnowledgeBase

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


class DrugNormaliser:
    """Codes first (IN, SCD, SBD, BN, combination products), then names and synonyms in text."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self._codes = kb.code_index
        self._frozen_cache: dict[tuple[str, ...], frozenset[str]] = {}
        self._partial_cache: dict[str, str | None] = {}  # drug texts recur across a population
        self._names = kb.name_index
        # One alternation of every name, as a trie (shared prefixes matched once): the longest
        # name wins ("tenofovir alafenamide" over a shorter synonym inside it), whole words only.
        self._pattern = re.compile(r"(?<![\w-])(" + _trie_pattern(self._names) + r")(?![\w-])")
        self._formulations = kb.formulations
        self._formulation_drugs = frozenset(f[0] for f in kb.formulations)
        # Strings without which no formulation applies: qualifier words and the agents' own names.
        becomes = {f[2] for f in kb.formulations}
        hints = {w for f in kb.formulations for w in f[1]} | {
            name for name, drugs in self._names.items() if set(drugs) & becomes
        }
        self._formulation_hints = re.compile(_trie_pattern(hints) or r"(?!)")
        self._formulated_cache: dict[tuple[frozenset[str], str], frozenset[str]] = {}
        self._text_cache: dict[str, frozenset[str]] = {}  # drug texts recur across a population
        # A medication's concept recurs across every administration of that drug in a population:
        # its reading is remembered per exact content of the concept (see _concept_key).
        self._concept_cache: dict[tuple[Any, ...], tuple[frozenset[str], str]] = {}

    def _formulated(self, found: frozenset[str], concept: dict[str, Any]) -> frozenset[str]:
        """A qualifier in the medication's words ("doxorubicin hydrochloride liposomal") makes the
        plain ingredient another agent, even when a code named the plain ingredient."""
        if found.isdisjoint(self._formulation_drugs):
            return found
        texts = [str(concept.get("text") or "")] + [
            str(c.get("display") or "") for c in concept.get("coding") or () if isinstance(c, dict)
        ]
        lowered = " ".join(texts).lower()
        if not self._formulation_hints.search(lowered):
            return found
        key = (found, lowered)
        cached = self._formulated_cache.get(key)
        if cached is None:
            if len(self._formulated_cache) > _CACHE_LIMIT:
                self._formulated_cache.clear()
            cached = self._formulated_cache[key] = self._reformulate(found, lowered)
        return cached

    def _reformulate(self, found: frozenset[str], lowered: str) -> frozenset[str]:
        words = set(_WORDS.findall(lowered))
        named = {d for m in self._pattern.finditer(lowered) for d in self._names[m.group(1)]}
        changed = set(found)
        for drug, qualifiers, becomes in self._formulations:
            # "Doxil" names the liposomal agent itself; "doxorubicin ... liposomal" qualifies it.
            if drug in changed and (words & qualifiers or becomes in named):
                changed.discard(drug)
                changed.add(becomes)
        return frozenset(changed)

    def from_concept(self, concept: dict[str, Any] | None) -> frozenset[str]:
        """Ingredients named by a CodeableConcept: RxNorm codings, else display and text."""
        if not concept:
            return frozenset()
        codings: list[Any] = concept.get("coding") or []
        if len(codings) == 1 and type(codings[0]) is dict and codings[0].get("system") == RXNORM:
            hit = self._codes.get(str(codings[0].get("code")))
            if hit:  # the common case: one RxNorm coding we know
                return self._formulated(self._frozen(hit), concept)
        found: set[str] = set()
        for coding in codings:
            if isinstance(coding, dict) and coding.get("system") == RXNORM:
                hit = self._codes.get(str(coding.get("code")))
                if hit:
                    found.update(hit)
        if not found:
            # A product-level code we do not hold (SCD, SBD, a local code): its display names the
            # ingredients ("erlotinib 150 MG Oral Tablet [Tarceva]"), matched as whole words.
            for coding in codings:
                if isinstance(coding, dict) and coding.get("display"):
                    found.update(self.from_text(str(coding["display"])))
        if not found and concept.get("text"):
            found.update(self.from_text(str(concept["text"])))
        return self._formulated(frozenset(found), concept)

    def read_concept(self, concept: dict[str, Any] | None) -> tuple[frozenset[str], str]:
        """(from_concept, concept_text) of a medication's concept, remembered per exact content
        of the concept when it is made of strings only (the usual coding and text); any other
        shape is read each time, and an error while reading is raised each time, never kept."""
        codings = concept.get("coding") if type(concept) is dict else None
        if type(codings) is list and len(codings) == 1 and type(codings[0]) is dict:
            hit = self._codes.get(str(codings[0].get("code")))
            if hit and codings[0].get("system") == RXNORM:
                found = self._frozen(hit)
                if found.isdisjoint(self._formulation_drugs):
                    # from_concept's common case, cheaper than the memo's key: one RxNorm code
                    # we know, of no drug a formulation word could change
                    return found, concept_text(concept)
        key = _concept_key(concept)
        if key is None:
            return self.from_concept(concept), concept_text(concept)
        cached = self._concept_cache.get(key)
        if cached is None:
            if len(self._concept_cache) > _CACHE_LIMIT:
                self._concept_cache.clear()
            cached = self.from_concept(concept), concept_text(concept)
            self._concept_cache[key] = cached
        return cached

    def _frozen(self, ingredients: tuple[str, ...]) -> frozenset[str]:
        cached = self._frozen_cache.get(ingredients)
        if cached is None:
            cached = self._frozen_cache[ingredients] = frozenset(ingredients)
        return cached

    def from_text(self, text: str) -> frozenset[str]:
        cached = self._text_cache.get(text)
        if cached is None:
            if len(self._text_cache) > _CACHE_LIMIT:
                self._text_cache.clear()
            found: set[str] = set()
            for match in self._pattern.finditer(text.lower()):
                found.update(self._names[match.group(1)])
            cached = self._formulated(frozenset(found), {"text": text}) if found else frozenset()
            self._text_cache[text] = cached
        return cached

    def partly_recognised(self, text: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
        """(recognised ingredients, parts not recognised) of a combination written as text, when
        some parts are recognised and others are not; None otherwise."""
        parts = [p.strip() for p in _COMBINATION_SEPARATOR.split(text) if p.strip()]
        if len(parts) < 2:
            return None
        missed = [p for p in parts if _WORD.match(p) and not self.from_text(p)]
        if not missed or len(missed) == len(parts):
            return None
        return tuple(sorted(self.from_text(text))), tuple(missed)

    def unrecognised_parts(self, text: str) -> str | None:
        """For a combination written as text ("elvitegravir/cobicistat/..."), a sentence naming
        the parts no known drug matches while others do; None when every part is recognised."""
        if text not in self._partial_cache:
            self._partial_cache[text] = self._unrecognised_parts(text)
        return self._partial_cache[text]

    def _unrecognised_parts(self, text: str) -> str | None:
        partial = self.partly_recognised(text)
        if partial is None:
            return None
        found, missed = ", ".join(partial[0]), partial[1]
        return (
            f"combination {text!r} recognised only in part ({found}); not recognised: "
            + ", ".join(repr(m) for m in missed)
        )


def _concept_key(concept: Any) -> tuple[Any, ...] | None:
    """A hashable copy of a CodeableConcept whose values are all strings (codings as lists of
    string-valued objects), else None. Strings only, so that equal keys mean equal content
    (1, 1.0 and True would compare equal in a tuple, and read differently)."""
    if type(concept) is not dict:
        return None
    fields: list[tuple[str, str]] = []
    codings: list[tuple[tuple[str, str], ...]] | None = None  # None: no coding at all
    for name, value in concept.items():
        if type(value) is str:
            fields.append((name, value))
        elif name == "coding" and type(value) is list:
            codings = []
            for coding in value:
                if type(coding) is not dict:
                    return None
                for item in coding.values():
                    if type(item) is not str:
                        return None
                codings.append(tuple(coding.items()))
        else:
            return None
    return tuple(fields), None if codings is None else tuple(codings)


# Separators of ingredients in a combination's name ("lopinavir/ritonavir", "CAB + RPV").
_COMBINATION_SEPARATOR = re.compile(r"\s*(?:/|\+)\s*")
# Entries each cache keeps before it starts again (memory bounded whatever the population).
_CACHE_LIMIT = 20_000


def _trie_pattern(names: Any) -> str:
    """A regular expression matching any of the names, built as a trie so that shared prefixes
    are read once; at a branch the longer continuation is tried first, as in a longest-first
    alternation."""
    trie: dict[str, Any] = {}
    for name in names:
        node = trie
        for char in name:
            node = node.setdefault(char, {})
        node[""] = {}

    def build(node: dict[str, Any]) -> str:
        branches = [re.escape(char) + build(child) for char, child in sorted(node.items()) if char]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body

    return build(trie)


# Words of a medication's text, hyphenated words kept whole ("protein-bound").
_WORDS = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
# A part that opens with a word (not a dose such as "300 mg tablet") names an ingredient.
_WORD = re.compile(r"\W*[A-Za-z]{4,}")


def normaliser_for(kb: KnowledgeBase) -> DrugNormaliser:
    """One normaliser per knowledge base: building it (one regex over every name) costs about
    0.16 ms, too much to repeat for each CDS request."""
    cached: DrugNormaliser | None = kb.__dict__.get("_drug_normaliser")
    if cached is None:
        cached = DrugNormaliser(kb)
        object.__setattr__(kb, "_drug_normaliser", cached)
    return cached


def concept_text(concept: dict[str, Any] | None) -> str:
    """A human-readable label of a CodeableConcept, for 'unmapped' reports."""
    if not concept:
        return ""
    if concept.get("text"):
        return str(concept["text"])
    for coding in concept.get("coding") or ():
        if isinstance(coding, dict) and (coding.get("display") or coding.get("code")):
            return str(coding.get("display") or f"{coding.get('system')}|{coding.get('code')}")
    return ""
