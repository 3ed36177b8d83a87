"""Compose the engine: a patient's record -> diseases, lines of therapy per disease and failures."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import msgspec

from salvage.engine import (
    anthracycline,
    attribution,
    contraindications,
    hiv_lines,
    intent,
    response,
)
from salvage.engine import failures as failure_rules
from salvage.engine import lines as line_rules
from salvage.engine.model import DataWarning, Failure, Line, PatientRecord, Unmapped
from salvage.knowledge.model import KnowledgeBase

# Conclusions that depend on each FHIR resource type: when a type could not be read, these say
# "could not be assessed" instead of reporting an absence as a fact.
DEPENDS_ON: dict[str, tuple[str, ...]] = {
    "Observation": (
        "treatment failure from disease status, PSA or HIV-1 RNA",
        "performance status, renal, cardiac and liver function (fitness)",
        "receptor status and HLA-B*57:01",
    ),
    "Condition": (
        "the diseases on record and relapse or recurrence Conditions",
        "hepatitis B co-infection and PrEP context",
    ),
    "MedicationRequest": ("lines of therapy and drugs stopped for no response or intolerance",),
    "MedicationAdministration": ("lines of therapy and cumulative anthracycline dose",),
    "MedicationStatement": ("lines of therapy",),
    "Procedure": (
        "local therapy lines (prostatectomy, radiotherapy) and transplant consolidation",
    ),
    "Medication": ("drugs of orders that name them through a Medication resource",),
    "Patient": ("age (transplant eligibility, creatinine clearance)",),
}
# Resource types whose absence would hide a failure.
FAILURE_INPUTS = frozenset(
    {
        "Observation",
        "Condition",
        "MedicationRequest",
        "MedicationAdministration",
        "MedicationStatement",
        "Procedure",
        "Medication",
    }
)


@dataclass(frozen=True, kw_only=True)
class PatientAnalysis:
    patient: str
    diseases: tuple[str, ...]
    lines: tuple[Line, ...]
    failures: tuple[Failure, ...]
    unmapped: tuple[Unmapped, ...]
    warnings: tuple[DataWarning, ...]
    record: PatientRecord
    active_diseases: tuple[str, ...] = ()  # diseases not in remission, resolved or inactive
    unreadable: frozenset[str] = frozenset()  # FHIR resource types that could not be read
    not_assessed: tuple[str, ...] = ()  # conclusions that could not be assessed, and why
    notes: tuple[str, ...] = ()  # how diseases were established (HIV from RNA, PrEP context)
    # (disease, sentence): diseases named only by a Condition's text, never coded
    text_diagnoses: tuple[tuple[str, str], ...] = ()
    cautions: tuple[str, ...] = ()  # e.g. cumulative anthracycline above the caution level
    # Every documented anthracycline dose and the cumulative total (None: none was given), with
    # its sentence (total, "at least" or "unknown", what it leaves out).
    anthracycline: anthracycline.AnthracyclineTotal | None = None
    anthracycline_text: str = ""
    # Said instead of "no documented treatment failure" (PrEP: not HIV treatment; HIV acquired on
    # PrEP: confirm, genotype, start full ART).
    statement: str | None = None

    @property
    def failure_assessable(self) -> bool:
        """False when a resource type a failure rule reads could not be read, or the record holds
        a sign of progression the rules could not place (then "no failure" is not a finding)."""
        return not (self.unreadable & FAILURE_INPUTS) and not any(
            w.failure_doubt for w in self.warnings
        )


def diseases_of(record: PatientRecord, kb: KnowledgeBase) -> list[str]:
    """Knowledge-base diseases of the patient: counted Conditions (active first), and HIV only with
    a diagnosis or a detectable HIV-1 RNA, never from antiretrovirals alone."""
    states = attribution.disease_states(record, kb)
    found = list(states)
    if "hiv" not in found and attribution.hiv_evidence(record, kb, states).confirmed:
        found.append("hiv")
    return found


def analyse_patient(
    record: PatientRecord,
    kb: KnowledgeBase,
    as_of: date,
    unreadable: frozenset[str] = frozenset(),
) -> PatientAnalysis:
    """Lines and failures of one patient as of a date. `unreadable`: FHIR resource types that
    could not be read; every conclusion that depends on them says it could not be assessed."""
    states = attribution.disease_states(record, kb)
    hiv = attribution.hiv_evidence(record, kb, states)
    diseases = list(states)
    if hiv.confirmed and "hiv" not in diseases:
        diseases.append("hiv")
    oncology = [d for d in states if kb.diseases[d].domain == "oncology"]
    active_oncology = [d for d in oncology if states[d].active]
    warnings: list[DataWarning] = list(record.warnings)
    lines: list[Line] = []
    failures: list[Failure] = []
    groups = attribution.attribute_exposures(record.exposures, record.procedures, kb, states)
    if len(active_oncology) > 1:
        # With two active cancers a disease status must say which one it is about (focus).
        warnings += [
            DataWarning(
                source=m.source,
                problem="disease status without a focus Condition while "
                f"{' and '.join(active_oncology)} are both active: not attributed to either",
                failure_doubt=True,
            )
            for m in record.measurements
            if m.kind == "disease-status" and not m.focus
        ]
    per_disease: list[list[Line]] = []
    for disease, (exposures, procedures) in groups.items():
        rules = kb.rules_for(disease)
        own = line_rules.oncology_lines(exposures, procedures, kb, rules, as_of, disease=disease)
        if not own:
            continue
        if disease is not None:
            own = intent.assign(own, record, kb, disease)
        unfocused = len(active_oncology) <= 1 and (
            disease in active_oncology or not active_oncology
        )
        own = response.assign(own, record, kb, disease, unfocused=unfocused)
        per_disease.append(own)
        failures += failure_rules.oncology_failures(
            record, own, kb, disease=disease, as_of=as_of, unfocused=unfocused, warnings=warnings
        )
        if disease == "prostate":
            failures += failure_rules.prostate_failures(record, own, kb)
    for own in sorted(per_disease, key=lambda ls: ls[0].start):
        lines += own
    prep = attribution.prep_use(record, kb, states, hiv)
    written = attribution.text_diagnoses(record, kb)
    if hiv.confirmed:
        treatment = [e for e in record.exposures if e not in prep.exposures]  # PrEP is no line
        own_hiv = hiv_lines.hiv_lines(treatment, kb, kb.rules_for("hiv"), as_of, first_number=1)
        own_hiv = [msgspec.structs.replace(line, disease="hiv") for line in own_hiv]
        acquisition_explains = bool(prep.exposures) and not own_hiv
        failures += failure_rules.hiv_failures(
            record, own_hiv, kb, as_of, None if acquisition_explains else warnings
        )
        failures += failure_rules.hiv_intolerance(record, own_hiv, kb)
        lines += own_hiv
    cautions: list[str] = []
    doses = anthracycline.cumulative(record, kb, as_of)
    doses_text = anthracycline.describe(doses, kb) if doses is not None else ""
    caution_level = float(kb.patient_rules.anthracycline.caution_cumulative_doxorubicin_mg_m2)
    if doses is not None and doses.known and round(doses.total) >= caution_level:
        cautions.append(
            f"{doses_text}: at or above the caution level of {caution_level:g} mg/m2 "
            f"({contraindications.cite(kb, kb.patient_rules.anthracycline.evidence)})"
        )
    not_assessed = tuple(
        f"{what}: could not be assessed ({rtype} could not be read)"
        for rtype in sorted(unreadable)
        for what in DEPENDS_ON.get(rtype, (f"conclusions that use {rtype}",))
    ) + tuple(
        f"treatment failure could not be assessed: {w.problem} ({w.source})"
        for w in warnings
        if w.failure_doubt
    )
    return PatientAnalysis(
        patient=record.reference,
        diseases=tuple(diseases),
        lines=tuple(lines),
        failures=tuple(failure_rules.merge_failures(failures)),
        unmapped=tuple(record.unmapped),
        warnings=tuple(warnings),
        record=record,
        active_diseases=tuple(d for d in diseases if d == "hiv" or states[d].active),
        unreadable=frozenset(unreadable),
        not_assessed=not_assessed,
        notes=tuple(n for n in (*(text for _, text in written), hiv.note, *prep.notes) if n),
        text_diagnoses=written,
        statement=prep.statement,
        cautions=tuple(cautions),
        anthracycline=doses,
        anthracycline_text=doses_text,
    )
