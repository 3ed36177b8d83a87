"""Drugs this patient's data rules out, each with the measured fact, its source and the rule's
reference. One place, used by the recommender (exclusions) and the CDS cards (warnings)."""

from __future__ import annotations

from datetime import date

from salvage.engine import factors
from salvage.engine.model import ConditionRecord, PatientRecord
from salvage.knowledge.model import KnowledgeBase

POSITIVE = {"10828004", "LA6576-8", "positive", "detected", "present"}


def hbv_coinfection(record: PatientRecord, kb: KnowledgeBase) -> ConditionRecord | None:
    codes = kb.patient_rules["antiretroviral"]["hbv_conditions"]
    for condition in record.conditions:
        if condition.clinical_status in ("inactive", "resolved", "remission"):
            continue
        for code in condition.codes:
            system, _, value = code.partition("|")
            if (system == "http://snomed.info/sct" and value in codes["snomed"]) or (
                system == "http://hl7.org/fhir/sid/icd-10-cm"
                and any(value.startswith(p) for p in codes["icd10cm"])
            ):
                return condition
    return None


def on_dialysis(record: PatientRecord, kb: KnowledgeBase) -> str | None:
    """The Condition saying the patient depends on renal dialysis, if any (hiv.yaml renal)."""
    for condition in record.conditions:
        if condition.clinical_status in ("inactive", "resolved", "remission"):
            continue
        for code in condition.codes:
            system, _, value = code.partition("|")
            if (
                system == "http://hl7.org/fhir/sid/icd-10-cm"
                and value.startswith(kb.hiv.dialysis_icd10cm)
            ) or (system == "http://snomed.info/sct" and value in kb.hiv.dialysis_snomed):
                return condition.source
    return None


def hla_b5701_positive(record: PatientRecord) -> str | None:
    """The source of a positive HLA-B*57:01 result, if any."""
    for m in record.measurements:
        if m.kind == "hla-b5701" and ({c.lower() for c in m.codes} | {m.raw.lower()}) & POSITIVE:
            return m.source
    return None


def drug_contraindications(
    drugs: frozenset[str], record: PatientRecord, kb: KnowledgeBase, as_of: date
) -> list[tuple[str, str]]:
    rules = kb.patient_rules
    found: list[tuple[str, str]] = []
    clearance = None
    renal_drugs = {r["drug"] for r in rules["antiretroviral"]["renal_limits"]} | {"cisplatin"}
    if drugs & renal_drugs:
        clearance = factors.creatinine_clearance(record, kb, as_of)
    if "cisplatin" in drugs:
        limit = float(rules["cisplatin"]["min_creatinine_clearance_ml_min"])
        if clearance is not None and clearance.value < limit:
            found.append(
                (
                    "cisplatin",
                    f"cisplatin avoided: {clearance.text} < {limit:g} mL/min "
                    f"({', '.join(clearance.sources)}; Galsky 2011)",
                )
            )
        performance = factors.ecog(record, kb, as_of)
        if performance is not None and performance.value > float(rules["cisplatin"]["max_ecog"]):
            found.append(
                (
                    "cisplatin",
                    f"cisplatin avoided: {performance.text} "
                    f"({', '.join(performance.sources)}; Galsky 2011)",
                )
            )
    for limit_rule in rules["antiretroviral"]["renal_limits"]:
        drug = limit_rule["drug"]
        limit = float(limit_rule["min_creatinine_clearance_ml_min"])
        if limit_rule.get("dialysis_exempt") and on_dialysis(record, kb):
            continue  # the label allows it on chronic haemodialysis
        if drug in drugs and clearance is not None and clearance.value < limit:
            found.append(
                (
                    drug,
                    f"{drug} avoided: {clearance.text} < {limit:g} mL/min "
                    f"({', '.join(clearance.sources)}; DHHS)",
                )
            )
    positive = hla_b5701_positive(record)
    for drug in sorted(drugs & set(rules["antiretroviral"]["hla_b5701_excludes"])):
        if positive:
            found.append((drug, f"{drug} contraindicated: HLA-B*57:01 positive ({positive}; DHHS)"))
    anthracyclines = {d for d in drugs if d in kb.drugs and "anthracycline" in kb.drugs[d].classes}
    if anthracyclines:
        total = factors.cumulative_anthracycline(record, kb, as_of)
        limit = float(rules["anthracycline"]["max_cumulative_doxorubicin_mg_m2"])
        if total is not None and total.value >= limit:
            found += [
                (drug, f"{total.text} >= {limit:g} mg/m2 lifetime limit (Swain 2003)")
                for drug in sorted(anthracyclines)
            ]
    return found
