"""The engine's own types: what was given, what was measured, and what the engine concluded."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import msgspec

# DrugExposure and Measurement, built once per medication or lab resource of a population (and
# Line, built and completed several times per patient), are
# frozen keyword-only msgspec Structs rather than frozen dataclasses: the same typed, immutable,
# comparable and picklable records, built about 15x faster (a frozen dataclass sets each field
# through object.__setattr__; about 3.5 us for the 15 fields of an exposure, 0.2 us as a Struct).


class DrugExposure(msgspec.Struct, frozen=True, kw_only=True):
    """One medication record, normalised to RxNorm ingredient names."""

    source: str  # "MedicationRequest/123"
    ingredients: frozenset[str]
    start: date
    end: date | None  # last day of exposure; None = open-ended (still active)
    status: str
    active: bool = False  # status says the order may still be running (set by the FHIR converter)
    stop_reasons: frozenset[str] = frozenset()  # SNOMED codes of statusReason
    dose: float | None = None  # one documented dose (administered, ordered or stated)
    dose_unit: str | None = None
    dose_count: int | None = None  # doses an order covers (timing.repeat.count), when it says
    based_on: tuple[
        str, ...
    ] = ()  # the orders an administration carries out ("MedicationRequest/1")
    text: str = ""
    notes: tuple[str, ...] = ()  # the record's free-text notes (Annotation.text)
    # Treatment intent as recorded (mCODE intent extension or reasonCode): adjuvant |
    # neoadjuvant | curative | palliative; None when the record does not say.
    intent: str | None = None
    reasons: tuple[str, ...] = ()  # reasonReference targets ("Condition/x")


class Measurement(msgspec.Struct, frozen=True, kw_only=True):
    source: str
    kind: str  # observation kind id from observations.yaml (hiv-rna, psa, ...)
    when: date
    value: float | None  # in the kind's canonical unit; None when only codes were recorded
    codes: frozenset[str] = frozenset()  # valueCodeableConcept codes (disease status, ECOG answers)
    raw: str = ""  # the value as recorded, for explanations ("0.25 ng/mL")
    # In the canonical unit with the recorded one, when they differ ("2.6 ng/mL (recorded as
    # ug/L)"); empty when the value was recorded in the canonical unit.
    shown: str = ""
    comparator: str | None = None  # "<", "<=", ">", ">=": the true value lies on that side of value
    readable: bool = True  # False: a value was recorded but could not be read (shown, not missing)
    reference_high: float | None = None  # upper limit of normal from referenceRange, same unit
    focus: tuple[str, ...] = ()  # "Condition/x" the observation is about (mCODE focus)
    detected: bool = False  # the laboratory said "detected" although below quantification


@dataclass(frozen=True, kw_only=True, slots=True)
class ConditionRecord:
    source: str
    codes: frozenset[str]  # "system|code"
    clinical_status: str | None
    onset: date | None
    recorded: date | None
    text: str = ""
    verification: str | None = None  # condition-ver-status code; None when not stated
    abatement: date | None = None
    when: date | None = None  # the date the rules use: onset, else abatement, else recorded
    date_basis: str = ""  # the element that dated it ("onsetDateTime", "onsetPeriod.start", ...)
    onset_age_years: float | None = None  # onsetAge, resolved to a date with the birth date
    stage: str = ""  # Condition.stage summary as recorded (code, display or text), lower case


@dataclass(frozen=True, kw_only=True, slots=True)
class ProcedureRecord:
    source: str
    kind: str  # procedure kind id from procedures.yaml
    label: str
    when: date
    end: date


@dataclass(frozen=True, kw_only=True, slots=True)
class Unmapped:
    source: str
    text: str


@dataclass(frozen=True, kw_only=True, slots=True)
class PartlyRecognised:
    """A multi-ingredient medication of which only some ingredients are known: the known ones
    count, and the rest is reported, never silently dropped."""

    source: str
    text: str
    recognised: tuple[str, ...]
    not_recognised: tuple[str, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class DataWarning:
    source: str
    problem: str
    # The record holds a sign of progression the rules could not use (an unattributed disease
    # status, a new disease Condition without a relapse status): "no failure" cannot be concluded.
    failure_doubt: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class GenotypeResult:
    """One HIV-1 drug-resistance test result as recorded: an Observation, or a DiagnosticReport
    that groups Observations (members). Every result is kept: archived resistance counts."""

    source: str
    when: date | None
    genes: frozenset[str] = frozenset()  # genes read as sequenced ("RT", "PR", "IN", ...)
    mutations: frozenset[str] = frozenset()  # "RT:M184V" tokens, one mutant letter each
    drug_calls: tuple[tuple[str, str], ...] = ()  # the laboratory's own (drug, level) calls
    members: tuple[str, ...] = ()  # Observations a DiagnosticReport groups
    problem: str | None = None  # why (part of) the result could not be read
    text: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class TumourMarkerResult:
    """One tumour biomarker result as recorded (a variant Observation with gene and variant
    components, a HER2 or PD-L1 result, or a result written only as text). The engine decides
    what it says about each biomarker (engine/biomarkers.py)."""

    source: str
    when: date
    codes: frozenset[str] = frozenset()  # LOINC codes of Observation.code
    genes: tuple[str, ...] = ()  # gene-studied component values (symbols or displays)
    variant: str = ""  # c.HGVS / p.HGVS / variant components, joined
    value_codes: frozenset[str] = frozenset()  # "system|code" of valueCodeableConcept
    number: float | None = None  # a numeric value (PD-L1 %, score)
    comparator: str | None = None
    label: str = ""  # what was tested (Observation.code text): names genes, never a result
    text: str = ""  # value, component and note texts, for reading by words


@dataclass(kw_only=True)
class PatientRecord:
    """Everything the rules need about one patient, gathered from many resources."""

    reference: str  # "Patient/<id>"
    birth_date: date | None = None
    gender: str | None = None
    exposures: list[DrugExposure] = field(default_factory=list)
    measurements: list[Measurement] = field(default_factory=list)
    conditions: list[ConditionRecord] = field(default_factory=list)
    procedures: list[ProcedureRecord] = field(default_factory=list)
    genotypes: list[GenotypeResult] = field(default_factory=list)
    tumour_markers: list[TumourMarkerResult] = field(default_factory=list)
    unmapped: list[Unmapped] = field(default_factory=list)
    warnings: list[DataWarning] = field(default_factory=list)
    partly_recognised: list[PartlyRecognised] = field(default_factory=list)


class Line(msgspec.Struct, frozen=True, kw_only=True):
    """One line of therapy (or its maintenance phase: same number, maintenance=True). A Struct
    like DrugExposure: each line is built, then completed with its intent and response
    (msgspec.structs.replace)."""

    number: int
    regimen: str
    ingredients: tuple[str, ...]
    start: date
    end: date | None  # None: ongoing at as_of
    last_active: date  # last day any drug of the line was active (equals end when ended)
    maintenance: bool
    sources: tuple[str, ...]
    domain: str  # oncology | hiv
    procedure: str | None = None  # procedure kind for local therapy lines
    disease: str | None = None  # the disease this line treats (numbering is per disease)
    # adjuvant | neoadjuvant (numbered 0: not a line of advanced-disease therapy) | curative |
    # palliative; None when neither recorded nor inferable. intent_basis says why.
    intent: str | None = None
    intent_basis: str = ""
    # autologous-transplant | allogeneic-transplant: high-dose therapy with a transplant (and
    # post-transplant consolidation) that belongs to this line; its drugs and sources follow.
    consolidation: str | None = None
    consolidation_regimen: str | None = None
    consolidation_ingredients: tuple[str, ...] = ()
    # Drugs that accompany the line without changing its regimen: (role, drug, source)
    # for CNS prophylaxis and a steroid pre-phase.
    accompanying: tuple[tuple[str, str, str], ...] = ()
    # complete | partial | stable | progression | unknown, with the observations it rests on.
    best_response: str = "unknown"
    response_sources: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True, slots=True)
class Failure:
    kind: str  # refractory | relapse | intolerance | biochemical-recurrence | virologic-failure
    when: date
    line: int | None
    sources: tuple[str, ...]
    detail: str
    evidence: tuple[str, ...]
    relapse_interval_months: float | None = None
    disease: str | None = None  # the disease whose line failed
    primary: bool = False  # primary refractory: the first line never controlled the disease
    closed_by: tuple[str, ...] = ()  # later remission/improvement that closes this failure
    closed_on: date | None = None
