"""HIV-1 genotypes -> the activity of each antiretroviral: active, partial, inactive or unknown.

Rules and sources are in knowledge/data/hiv.yaml (IAS-USA 2022 mutation list and HIVdb scoring, in
our own data). For each test, a drug's level is the laboratory's own call when the test carries
one, else the worst level of every mutation rule that fires on the test's mutations. Across tests
the worst level wins: resistance found on any earlier genotype is archived and still counts. A drug
whose gene no test sequenced is "unknown", never assumed active.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from salvage.engine.model import GenotypeResult, PatientRecord
from salvage.knowledge.hiv_model import Mutation, MutationEffect, parse_mutation
from salvage.knowledge.model import KnowledgeBase

ACTIVE = "active"
PARTIAL = "partial"
INACTIVE = "inactive"
UNKNOWN = "unknown"
_SEVERITY = {ACTIVE: 0, PARTIAL: 1, INACTIVE: 2}


@dataclass(frozen=True, kw_only=True, slots=True)
class GenotypeTest:
    """One resistance test: a DiagnosticReport with its Observations, or a lone Observation."""

    sources: tuple[str, ...]
    when: date | None
    genes: frozenset[str]
    mutations: frozenset[str]
    drug_calls: dict[str, str]

    @property
    def label(self) -> str:
        day = self.when.isoformat() if self.when else "undated"
        found = ", ".join(sorted(self.mutations)) or "no resistance mutation"
        genes = "/".join(sorted(self.genes)) or "genes not stated"
        calls = f"; {len(self.drug_calls)} laboratory drug calls" if self.drug_calls else ""
        return f"genotype {day} ({genes}): {found}{calls} ({', '.join(self.sources)})"


@dataclass(frozen=True, kw_only=True, slots=True)
class DrugActivity:
    drug: str
    level: str  # active | partial | inactive | unknown
    mutations: tuple[str, ...]  # the mutations behind a reduced level
    sources: tuple[str, ...]  # genotype resources the level rests on
    basis: str  # laboratory interpretation, mutation rules, or why the level is unknown

    @property
    def text(self) -> str:
        why = f": {', '.join(self.mutations)}" if self.mutations else ""
        where = f" ({', '.join(self.sources)})" if self.sources else ""
        return f"{self.drug} {self.level}{why} [{self.basis}]{where}"


@dataclass(frozen=True, kw_only=True)
class Susceptibility:
    tests: tuple[GenotypeTest, ...]
    unreadable: tuple[str, ...]  # sentences: which genotype could not be read, and why
    drugs: dict[str, DrugActivity]
    evidence: tuple[str, ...]

    def level(self, drug: str) -> str:
        activity = self.drugs.get(drug)
        return activity.level if activity else UNKNOWN

    def reduced_classes(self, kb: KnowledgeBase, classes: frozenset[str]) -> tuple[str, ...]:
        """Classes (among `classes`) with at least one drug of partial or no activity."""
        return tuple(
            sorted(
                c
                for c in classes
                if any(
                    a.level in (PARTIAL, INACTIVE) and c in kb.drugs[a.drug].classes
                    for a in self.drugs.values()
                )
            )
        )


def genotype_tests(record: PatientRecord) -> tuple[tuple[GenotypeTest, ...], tuple[str, ...]]:
    """Group results into tests (a report with its members) and list the unreadable ones."""
    by_source = {g.source: g for g in record.genotypes}
    grouped: set[str] = set()
    tests: list[GenotypeTest] = []
    unreadable: list[str] = []
    for result in record.genotypes:
        if not result.members:
            continue
        members = [by_source[m] for m in result.members if m in by_source]
        grouped.update(m.source for m in members)
        tests.append(_test([result, *members], result.when))
    # Observations outside a report but taken on the same day are one laboratory panel.
    by_day: dict[date | None, list[GenotypeResult]] = {}
    for result in record.genotypes:
        if result.members or result.source in grouped:
            continue
        key = result.when
        if key is None:
            tests.append(_test([result], None))
        else:
            by_day.setdefault(key, []).append(result)
    tests += [_test(results, day) for day, results in by_day.items()]
    for result in record.genotypes:
        if result.problem:
            label = f" ({result.text})" if result.text else ""
            unreadable.append(
                f"HIV genotype {result.source}{label} not fully read: {result.problem}"
            )
    readable = tuple(t for t in tests if t.genes or t.mutations or t.drug_calls)
    return tuple(sorted(readable, key=lambda t: (t.when or date.min, t.sources))), tuple(unreadable)


def _test(results: list[GenotypeResult], when: date | None) -> GenotypeTest:
    calls: dict[str, str] = {}
    for result in results:
        for drug, level in result.drug_calls:
            if drug not in calls or _SEVERITY[level] > _SEVERITY[calls[drug]]:
                calls[drug] = level
    dates = [r.when for r in results if r.when is not None]
    return GenotypeTest(
        sources=tuple(r.source for r in results),
        when=when or (min(dates) if dates else None),
        genes=frozenset().union(*(r.genes for r in results)),
        mutations=frozenset().union(*(r.mutations for r in results)),
        drug_calls=calls,
    )


def _fired(effect: MutationEffect, present: list[Mutation]) -> tuple[Mutation, ...] | None:
    if effect.requires is not None and not any(effect.requires.matches(m) for m in present):
        return None
    hits = tuple(m for m in present if any(rule.matches(m) for rule in effect.of))
    if len({(m.gene, m.position) for m in hits}) < effect.min_count:
        return None
    if effect.requires is not None:
        hits += tuple(m for m in present if effect.requires.matches(m))
    return hits


def _inferred(kb: KnowledgeBase, mutations: frozenset[str]) -> dict[str, tuple[str, set[str]]]:
    """drug -> (worst level, mutations behind it) from the mutation rules."""
    present = [m for m in (parse_mutation(t) for t in sorted(mutations)) if m is not None]
    levels: dict[str, tuple[str, set[str]]] = {}
    for effect in kb.hiv.effects:
        hits = _fired(effect, present)
        if hits is None:
            continue
        names = {f"{m.gene} {m.label}" for m in hits}
        for level, drugs in ((PARTIAL, effect.partial), (INACTIVE, effect.inactive)):
            for drug in drugs:
                old_level, old_names = levels.get(drug, (ACTIVE, set()))
                if _SEVERITY[level] > _SEVERITY[old_level]:
                    levels[drug] = (level, set(names))
                elif level == old_level:
                    old_names |= names
    return levels


def assess(record: PatientRecord, kb: KnowledgeBase) -> Susceptibility:
    """Per-drug activity from every genotype in the record (cumulative)."""
    tests, unreadable = genotype_tests(record)
    genes = kb.hiv.reading.genes
    rules = "mutation rules (IAS-USA 2022, HIVdb)"
    drugs: dict[str, DrugActivity] = {}
    for name, drug in kb.drugs.items():
        if drug.role != "antiretroviral" or kb.hiv.booster_class in drug.classes:
            continue
        drug_genes = {g.name for g in genes.values() if g.classes & drug.classes}
        best: DrugActivity | None = None
        for test in tests:
            if name in test.drug_calls:
                found = DrugActivity(
                    drug=name,
                    level=test.drug_calls[name],
                    mutations=tuple(
                        sorted(t.replace(":", " ") for t in _gene_tokens(test, drug_genes))
                    ),
                    sources=test.sources,
                    basis="laboratory interpretation",
                )
            elif drug_genes & test.genes:
                level, names = _inferred(kb, test.mutations).get(name, (ACTIVE, set()))
                found = DrugActivity(
                    drug=name,
                    level=level,
                    mutations=tuple(sorted(names)),
                    sources=test.sources,
                    basis=rules,
                )
            else:
                continue
            if best is None or _SEVERITY[found.level] > _SEVERITY[best.level]:
                best = found
            elif found.level == best.level and best.level == ACTIVE:
                best = found  # the most recent test showing full activity
        if best is None:
            where = "/".join(sorted(drug_genes)) if drug_genes else ""
            basis = (
                f"no genotype of {where} in the record"
                if where
                else "no genotypic rule for this drug"
            )
            best = DrugActivity(drug=name, level=UNKNOWN, mutations=(), sources=(), basis=basis)
        drugs[name] = best
    return Susceptibility(
        tests=tests,
        unreadable=unreadable,
        drugs=drugs,
        evidence=kb.hiv.resistance_evidence,
    )


def _gene_tokens(test: GenotypeTest, drug_genes: set[str]) -> frozenset[str]:
    return frozenset(t for t in test.mutations if t.split(":", 1)[0] in drug_genes)
