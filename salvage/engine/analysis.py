"""Compose the engine: a patient's record -> diseases, lines of therapy and failures."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from salvage.engine import failures as failure_rules
from salvage.engine import lines as line_rules
from salvage.engine.model import DataWarning, Failure, Line, PatientRecord, Unmapped
from salvage.knowledge.model import KnowledgeBase

SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"


@dataclass(frozen=True, kw_only=True)
class PatientAnalysis:
    patient: str
    diseases: tuple[str, ...]
    lines: tuple[Line, ...]
    failures: tuple[Failure, ...]
    unmapped: tuple[Unmapped, ...]
    warnings: tuple[DataWarning, ...]
    record: PatientRecord


def diseases_of(record: PatientRecord, kb: KnowledgeBase) -> list[str]:
    """Knowledge-base diseases named by the patient's Conditions (SNOMED, ICD-10-CM prefix)."""
    found: list[str] = []
    for condition in record.conditions:
        for code in condition.codes:
            system, _, value = code.partition("|")
            for disease in kb.diseases.values():
                hit = (system == SNOMED and value in disease.snomed) or (
                    system == ICD10CM and any(value.startswith(p) for p in disease.icd10cm)
                )
                if hit and disease.id not in found:
                    found.append(disease.id)
    if "hiv" not in found and any(
        kb.drugs[i].role == "antiretroviral"
        for e in record.exposures
        for i in e.ingredients
        if i in kb.drugs
    ):
        found.append("hiv")  # antiretrovirals without a coded diagnosis still form HIV lines
    return found


def analyse_patient(record: PatientRecord, kb: KnowledgeBase, as_of: date) -> PatientAnalysis:
    diseases = diseases_of(record, kb)
    oncology = next((d for d in diseases if kb.diseases[d].domain == "oncology"), None)
    rules = kb.rules_for(oncology)
    lines = line_rules.oncology_lines(record.exposures, record.procedures, kb, rules, as_of)
    failures = failure_rules.oncology_failures(record, lines, kb)
    if oncology == "prostate":
        failures += failure_rules.prostate_failures(record, lines, kb)
    if "hiv" in diseases:
        hiv = line_rules.hiv_lines(record.exposures, kb, kb.rules_for("hiv"), as_of, first_number=1)
        failures += failure_rules.hiv_failures(record, hiv, kb, as_of)
        lines += hiv
    return PatientAnalysis(
        patient=record.reference,
        diseases=tuple(diseases),
        lines=tuple(lines),
        failures=tuple(failure_rules.merge_failures(failures)),
        unmapped=tuple(record.unmapped),
        warnings=tuple(record.warnings),
        record=record,
    )
