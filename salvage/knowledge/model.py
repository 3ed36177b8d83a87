"""Typed, frozen view of the knowledge base that the pure engine reads (no I/O here)."""

from __future__ import annotations

from dataclasses import dataclass, field

from salvage.knowledge.hiv_model import HivKnowledge
from salvage.knowledge.schema import (
    AccompanyingEntry,
    BiomarkerEntry,
    BiomarkersFile,
    ConsolidationEntry,
    FailuresFile,
    IntentRules,
    OptionContextFile,
    OptionEntry,
    OptionWhen,
    PatientRulesFile,
    PerformanceText,
    PostRadiotherapyRule,
    ResponseRules,
    SequenceEntry,
    SequencingRule,
    Substitution,
)

__all__ = [
    "AccompanyingEntry",
    "BiomarkerEntry",
    "BiomarkersFile",
    "ConsolidationEntry",
    "FailuresFile",
    "IntentRules",
    "OptionEntry",
    "OptionWhen",
    "PatientRulesFile",
    "PerformanceText",
    "PostRadiotherapyRule",
    "ResponseRules",
    "SequenceEntry",
]

SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"


@dataclass(frozen=True, kw_only=True, slots=True)
class Drug:
    name: str
    role: str  # anticancer | antiretroviral | supportive | steroid
    classes: frozenset[str]
    continuous: bool = False
    anthracycline_equivalence: float | None = None
    anthracycline_equivalence_basis: str | None = None  # evidence key, or "assumed"
    rxnorm_ingredient: str | None = None  # verified IN code, used when emitting resources


@dataclass(frozen=True, kw_only=True, slots=True)
class Regimen:
    name: str
    components: frozenset[str]
    setting: str
    diseases: tuple[str, ...]
    cycle_days: int | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class MaintenanceRule:
    name: str
    after_classes: frozenset[str]
    drugs: frozenset[str]
    evidence: tuple[str, ...] = ()
    switch_drugs: frozenset[str] = frozenset()
    min_induction_cycles: int = 1


@dataclass(frozen=True, kw_only=True, slots=True)
class LineRules:
    regimen_window_days: int
    gap_days: int
    substitutions: tuple[frozenset[str], ...]
    maintenance: tuple[MaintenanceRule, ...]
    procedure_lines: bool
    min_regimen_days: int
    default_supply_days: int
    evidence: tuple[str, ...]
    accompanying: tuple[AccompanyingEntry, ...] = ()
    consolidation: tuple[ConsolidationEntry, ...] = ()
    sequences: tuple[SequenceEntry, ...] = ()


@dataclass(frozen=True, kw_only=True, slots=True)
class Disease:
    id: str
    name: str
    snomed: frozenset[str]
    icd10cm: tuple[str, ...]
    domain: str
    drug_classes: frozenset[str] = frozenset()

    def names(self, system: str, code: str) -> bool:
        """True when a coding ("system", "code") names this disease (ICD-10-CM by prefix)."""
        return (system == SNOMED and code in self.snomed) or (
            system == ICD10CM and any(code.startswith(p) for p in self.icd10cm)
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class CodeSet:
    snomed: frozenset[str] = frozenset()
    icd10cm: tuple[str, ...] = ()

    def names(self, system: str, code: str) -> bool:
        return (system == SNOMED and code in self.snomed) or (
            system == ICD10CM and any(code.startswith(p) for p in self.icd10cm)
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class TransplantRule:
    """Transplant candidacy for one disease: any not-candidate criterion met -> not a candidate;
    all candidate criteria known and met -> candidate; otherwise unknown."""

    disease: str
    age_at_least: int | None
    ecog_at_least: int | None
    creatinine_clearance_below: float | None
    lvef_below: float | None
    ast_alt_above_uln_times: float | None
    age_at_most: int
    ecog_at_most: int
    evidence: tuple[str, ...]
    # From this age up to age_at_most, age alone makes candidacy a clinical decision (unknown).
    decision_from_age: int | None = None
    decision_reason: str = ""
    decision_evidence: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True, slots=True)
class ObservationKind:
    id: str
    loinc: frozenset[str]
    unit: str | None
    convert: dict[str, float | str]  # factor, or "log10" for values reported as log10
    unitless: bool = False  # a number without a unit is in the canonical unit
    answers: dict[str, float] = field(default_factory=dict)  # "system|code" -> value
    not_detected: tuple[str, ...] = ()  # text meaning below the detection limit
    detected_below: tuple[str, ...] = ()  # text meaning detected below the quantification limit
    text_answers: bool = False  # a qualitative result: text is kept and read via answers.yaml


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
    level: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class QualitativeAnswers:
    """Lower-cased codes and words that mean positive or negative in a qualitative result."""

    positive: frozenset[str]
    negative: frozenset[str]
    # ER/PR written as text (answers.yaml receptor_text): the label before the result, the
    # percentage of stained nuclei, and the share from which the result is positive.
    receptor_label: str = ""
    receptor_percent: str = ""
    receptor_ambiguous: str = ""
    receptor_positive_from: float | None = None

    def reading(self, codes: frozenset[str], text: str) -> str:
        """positive | negative | unknown, from a result's answer codes and its text."""
        said = {c.lower() for c in codes} | {text.strip().lower()}
        if said & self.positive:
            return "positive"
        if said & self.negative:
            return "negative"
        return "unknown"


@dataclass(frozen=True, kw_only=True, slots=True)
class MarkerChartSpec:
    kind: str  # observation kind id
    label: str
    unit: str
    diseases: frozenset[str]
    log_scale: bool
    floor: float | None


@dataclass(frozen=True, kw_only=True, slots=True)
class DelayRule:
    default_days: int
    stale_failure_days: int = 365  # an older driving failure asks to confirm the disease status
    stale_failure_text: str = ""  # {failure}, {date}, {age}
    days_by_disease: dict[str, int]
    evidence: tuple[str, ...]
    # CAR-T: classes, the wait in days, its evidence (order_checks.yaml delay.cellular_therapy)
    cellular_classes: frozenset[str] = frozenset()
    cellular_days: int = 0
    cellular_evidence: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True, slots=True)
class SingleActiveDrugRule:
    min_new_active_drugs: int
    evidence: tuple[str, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderCheckRules:
    delay: DelayRule
    single_active_drug: SingleActiveDrugRule
    companion_drugs: frozenset[str]
    referrals: dict[str, str]  # drug class -> the referral proposed instead of drug orders


@dataclass(frozen=True, kw_only=True, slots=True)
class Pathway:
    """A disease's salvage options, and the drugs that may be reused after a failure."""

    backbone_drugs: frozenset[str]
    backbone_reason: str
    options: tuple[OptionEntry, ...]
    backbone_reasons: dict[str, str] = field(default_factory=dict)  # drug -> why it is reused


@dataclass(frozen=True, kw_only=True, slots=True)
class Overlay:
    """What an institution changed: options disabled and re-ranked (added ones are in pathways)."""

    institution: str
    disable: frozenset[str]
    rerank: dict[str, int]


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
    failures: FailuresFile  # typed, frozen (pydantic) failure definitions
    evidence: dict[str, Evidence]
    order_checks: OrderCheckRules
    answers: QualitativeAnswers
    markers: tuple[MarkerChartSpec, ...]
    hiv: HivKnowledge
    patient_rules: PatientRulesFile  # typed, frozen (pydantic) patient rules
    pathways: dict[str, Pathway] = field(default_factory=dict)
    overlay: Overlay | None = None  # the institution overlay applied, if any
    exclusive_classes: dict[str, str] = field(default_factory=dict)  # class -> name (class_rules)
    class_labels: dict[str, str] = field(default_factory=dict)  # class -> name in explanations
    sequencing: tuple[SequencingRule, ...] = ()  # class_rules.yaml: cautions from order of therapy
    substitutions: tuple[Substitution, ...] = ()  # class_rules.yaml: intolerance substitutions
    transplant_rules: dict[str, TransplantRule] = field(default_factory=dict)
    karnofsky_to_ecog: tuple[tuple[int, int], ...] = ()  # (karnofsky_at_least, ecog), descending
    prep_context: CodeSet = field(default_factory=CodeSet)
    # intents, evidence-level order, universal options, goals-of-care rule (option_context.yaml)
    option_context: OptionContextFile | None = None
    intent_rules: IntentRules | None = None  # line_rules.yaml intent
    response_rules: ResponseRules | None = None  # line_rules.yaml response
    # (drug, qualifier words, the agent it becomes): drugs.yaml formulations
    formulations: tuple[tuple[str, frozenset[str], str], ...] = ()
    biomarkers: BiomarkersFile | None = None  # tumour biomarkers the pathways read
    # performance status written as text (observations.yaml performance_text)
    performance_text: PerformanceText | None = None

    def disclaimer_for(self, disease: str | None) -> str:
        """The disclaimer that fits the advice: HIV advice names HIV specialist review."""
        return self.hiv.disclaimer if disease == "hiv" else self.disclaimer

    def drug_diseases(self, drug: str) -> frozenset[str]:
        """Diseases a drug plausibly treats: the diseases of the regimens that contain it, and
        the diseases whose drug classes it belongs to."""
        cache: dict[str, frozenset[str]] | None = self.__dict__.get("_drug_diseases")
        if cache is None:
            cache = {}
            object.__setattr__(self, "_drug_diseases", cache)
        found = cache.get(drug)
        if found is None:
            classes = self.drugs[drug].classes if drug in self.drugs else frozenset()
            found = frozenset(
                {d for r in self.regimens.values() if drug in r.components for d in r.diseases}
                | {d.id for d in self.diseases.values() if d.drug_classes & classes}
            )
            cache[drug] = found
        return found

    def cycle_days(self, regimen: str) -> int:
        """Cycle length of a named regimen, else the default from failures.yaml."""
        named = self.regimens.get(regimen)
        if named is not None and named.cycle_days:
            return named.cycle_days
        return self.failures.oncology.default_cycle_days

    def rules_for(self, disease_id: str | None) -> LineRules:
        """Line rules of a disease, falling back to the published defaults."""
        if disease_id is None:
            return self.default_rules
        return self.disease_rules.get(disease_id, self.default_rules)

    def class_label(self, cls: str) -> str:
        """A drug class as explanations name it (class_rules.yaml class_labels)."""
        return self.class_labels.get(cls) or self.exclusive_classes.get(cls) or cls

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
