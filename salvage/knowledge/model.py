"""Typed, frozen view of the knowledge base that the pure engine reads (no I/O here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from salvage.knowledge.hiv_model import HivKnowledge


@dataclass(frozen=True, kw_only=True, slots=True)
class Drug:
    name: str
    role: str  # anticancer | antiretroviral | supportive | steroid
    classes: frozenset[str]
    continuous: bool = False
    anthracycline_equivalence: float | None = None
    rxnorm_ingredient: str | None = None  # verified IN code, used when emitting resources


@dataclass(frozen=True, kw_only=True, slots=True)
class Regimen:
    name: str
    components: frozenset[str]
    setting: str
    diseases: tuple[str, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class MaintenanceRule:
    name: str
    after_classes: frozenset[str]
    drugs: frozenset[str]
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True, slots=True)
class LineRules:
    mode: str  # oncology | regimen-change
    regimen_window_days: int
    gap_days: int
    substitutions: tuple[frozenset[str], ...]
    maintenance: tuple[MaintenanceRule, ...]
    procedure_lines: bool
    min_regimen_days: int
    default_supply_days: int
    evidence: tuple[str, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class Disease:
    id: str
    name: str
    snomed: frozenset[str]
    icd10cm: tuple[str, ...]
    domain: str


@dataclass(frozen=True, kw_only=True, slots=True)
class ObservationKind:
    id: str
    loinc: frozenset[str]
    unit: str | None
    convert: dict[str, float | str]  # factor, or "log10" for values reported as log10


@dataclass(frozen=True, kw_only=True, slots=True)
class ProcedureKind:
    id: str
    label: str
    codes: frozenset[tuple[str, str]]
    text: tuple[str, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class Evidence:
    key: str
    label: str
    citation: str
    url: str
    year: int | None = None
    pmid: str | None = None
    doi: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class DelayRule:
    default_days: int
    days_by_disease: dict[str, int]
    evidence: tuple[str, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class SingleActiveDrugRule:
    min_new_active_drugs: int
    evidence: tuple[str, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderCheckRules:
    delay: DelayRule
    single_active_drug: SingleActiveDrugRule
    companion_drugs: frozenset[str]


@dataclass(frozen=True, kw_only=True)
class KnowledgeBase:
    version: str
    disclaimer: str
    drugs: dict[str, Drug]
    code_index: dict[str, tuple[str, ...]]  # RxNorm code -> ingredient names
    name_index: dict[str, tuple[str, ...]]  # lower-case name or synonym -> ingredient names
    regimens: dict[str, Regimen]
    diseases: dict[str, Disease]
    default_rules: LineRules
    disease_rules: dict[str, LineRules]
    observation_kinds: dict[str, ObservationKind]
    loinc_index: dict[str, str]  # LOINC code -> observation kind id
    procedures: dict[str, ProcedureKind]
    failures: dict[str, Any]
    evidence: dict[str, Evidence]
    order_checks: OrderCheckRules
    hiv: HivKnowledge
    pathways: dict[str, Any] = field(default_factory=dict)
    patient_rules: dict[str, Any] = field(default_factory=dict)

    def rules_for(self, disease_id: str | None) -> LineRules:
        """Line rules of a disease, falling back to the published defaults."""
        if disease_id is None:
            return self.default_rules
        return self.disease_rules.get(disease_id, self.default_rules)

    def regimen_named(self, drugs: frozenset[str]) -> str | None:
        """The named regimen whose components equal this drug set, if any."""
        return self._regimen_by_components.get(drugs)

    @property
    def _regimen_by_components(self) -> dict[frozenset[str], str]:
        cached: dict[frozenset[str], str] | None = self.__dict__.get("_by_components")
        if cached is None:
            cached = {}
            for regimen in self.regimens.values():
                cached.setdefault(regimen.components, regimen.name)
            object.__setattr__(self, "_by_components", cached)
        return cached
