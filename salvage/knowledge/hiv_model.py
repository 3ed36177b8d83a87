"""Typed, frozen view of hiv.yaml: genotype reading, susceptibility rules, HIV options, hepatitis B
and renal rules for the NRTI backbone, and order-entry interactions (no I/O here)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(r"^([A-Za-z0-9]+):([A-Z])(\d+)([A-Z]+)$")


def parse_mutation(token: str) -> Mutation | None:
    """'RT:M184VI' -> Mutation(gene RT, M, 184, {V, I}); None when the token is not of that form."""
    match = _TOKEN.match(token)
    if match is None:
        return None
    gene, wild_type, position, mutants = match.groups()
    return Mutation(
        gene=gene, wild_type=wild_type, position=int(position), mutants=frozenset(mutants)
    )


@dataclass(frozen=True, kw_only=True, slots=True)
class Mutation:
    """One amino-acid change: gene, wild type, position, mutant letters (M184VI = V or I)."""

    gene: str
    wild_type: str
    position: int
    mutants: frozenset[str]

    def matches(self, other: Mutation) -> bool:
        return (
            self.gene == other.gene
            and self.position == other.position
            and bool(self.mutants & other.mutants)
        )

    @property
    def label(self) -> str:
        return f"{self.wild_type}{self.position}{''.join(sorted(self.mutants))}"


@dataclass(frozen=True, kw_only=True, slots=True)
class MutationEffect:
    """A mutation (or a combination of them) and the drugs whose activity it reduces."""

    of: tuple[Mutation, ...]
    min_count: int
    requires: Mutation | None
    partial: frozenset[str]
    inactive: frozenset[str]


@dataclass(frozen=True, kw_only=True, slots=True)
class Gene:
    name: str
    aliases: tuple[str, ...]
    classes: frozenset[str]


@dataclass(frozen=True, kw_only=True, slots=True)
class GenotypeReading:
    observation_kind: str  # the observations.yaml kind of genotype LOINC codes
    code_genes: dict[str, frozenset[str]]  # LOINC code -> genes it reports
    amino_acid_codes: frozenset[str]
    gene_codes: frozenset[str]
    text_markers: tuple[str, ...]
    hiv_markers: tuple[str, ...]
    hiv_name: re.Pattern[str]  # any HIV marker, case-insensitive
    genotype_name: re.Pattern[str]  # any genotype text marker, case-insensitive
    genes: dict[str, Gene]
    no_mutation_phrases: tuple[str, ...]
    not_sequenced_phrases: tuple[str, ...] = ()
    interpretation_phrases: tuple[tuple[str, str], ...]  # (phrase, level), checked in order
    interpretation_codes: dict[str, str]
    interpretation_system: str

    def gene_named(self, text: str) -> str | None:
        """The gene a label names ('RT', 'reverse transcriptase', 'Integrase (IN)'), if any."""
        cleaned = text.strip().lower().rstrip(":")
        for gene in self.genes.values():
            if cleaned == gene.name.lower() or cleaned in gene.aliases:
                return gene.name
        # A longer name inside the label ("HIV-1 integrase genotype"), only when one gene fits.
        named = [
            g.name
            for g in self.genes.values()
            if any(len(a) > 3 and a in cleaned for a in g.aliases)
        ]
        return named[0] if len(named) == 1 else None


@dataclass(frozen=True, kw_only=True, slots=True)
class PresumedActive:
    """Drugs counted active without a genotype of their gene while their class was never taken."""

    class_never_taken: str
    gene: str
    drugs: frozenset[str]
    label: str
    evidence: tuple[str, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class HivSetting:
    """The clinical setting a rule or a wording applies to; every stated condition must hold."""

    failing_classes_any: frozenset[str] = frozenset()
    never_taken: frozenset[str] = frozenset()
    first_line: bool | None = None

    def applies(
        self, failing_classes: frozenset[str], taken_classes: frozenset[str], line: int | None
    ) -> bool:
        return (
            (not self.failing_classes_any or bool(self.failing_classes_any & failing_classes))
            and not self.never_taken & taken_classes
            and (self.first_line is None or self.first_line == (line == 1))
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class HivOptionRule:
    id: str
    kind: str  # test | regimen | construct
    rank: int
    label: str
    label_integrase: str | None
    anchor: tuple[str, ...]
    nrti_backbone: bool
    min_fully_active: int
    recycled_backbone_when: HivSetting | None  # where min_fully_active below two is supported
    recycled_backbone_note: str | None
    multidrug_resistance_agent: bool
    rationale: str
    rationale_variants: tuple[tuple[HivSetting, str], ...] = ()  # the first that applies wins
    cautions: tuple[str, ...]
    evidence: tuple[str, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class Interaction:
    id: str
    first: frozenset[str]
    second: frozenset[str]
    text: str
    evidence: tuple[str, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class HivKnowledge:
    reading: GenotypeReading
    effects: tuple[MutationEffect, ...]
    resistance_evidence: tuple[str, ...]
    multiclass_classes: frozenset[str]
    multiclass_min: int
    multiclass_evidence: tuple[str, ...]
    genotype_window_days: int
    integrase_classes: frozenset[str]
    companion_preference: tuple[str, ...]
    boosters: dict[str, str]
    booster_class: str
    presumed_active: PresumedActive
    options: tuple[HivOptionRule, ...]
    adherence_phrases: tuple[str, ...]
    cation_class: str
    cation_affected_classes: frozenset[str]
    adherence_evidence: tuple[str, ...]
    disclaimer: str
    prep_statement: str
    prep_acquisition: str
    prep_acquisition_integrase: str
    prep_low_level_rna: str
    no_genotype_missing: str
    no_active_drug_recheck: str
    prep_drugs: frozenset[str]
    prep_statement_evidence: tuple[str, ...]
    prep_acquisition_evidence: tuple[str, ...]
    hbv_evidence: tuple[str, ...]
    hbv_tenofovir: frozenset[str]
    hbv_partners: frozenset[str]
    tdf: str
    taf: str
    partner: str
    dialysis_note: str
    below_taf_advice: str
    tdf_min_clearance: float
    taf_min_clearance: float
    dialysis_icd10cm: tuple[str, ...]
    dialysis_snomed: frozenset[str]
    renal_evidence: tuple[str, ...]
    interactions: tuple[Interaction, ...]
