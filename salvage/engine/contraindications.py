"""Drugs this patient's data rules out or needs re-checked, each with the measured fact, its date
and age, its source and the rule's reference. One place, used by the recommender (exclusions,
cautions) and the CDS cards (warnings).

Each finding has a severity (contraindicated | caution) and a basis (current | stale | unknown |
indeterminate): a stale abnormal value keeps its caution and asks for a re-check; an unknown or
stale value never counts as normal.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from salvage.engine import anthracycline, attribution, factors
from salvage.engine.measures import side
from salvage.engine.model import ConditionRecord, PatientRecord
from salvage.knowledge.model import KnowledgeBase


@dataclass(frozen=True, kw_only=True)
class DrugFinding:
    drug: str
    severity: str  # contraindicated | caution
    basis: str  # current | stale | unknown | indeterminate
    text: str
    sources: tuple[str, ...] = ()
    recheck: str | None = None  # "re-check creatinine clearance before cisplatin"
    abnormal: bool = False  # the value (current or stale) meets the rule's limit
    # The wording on an option, where the old or unplaceable value itself is said once for the
    # patient (missing data) instead of on every option that needs it; None: `text`.
    option_text: str | None = None


def hbv_coinfection(record: PatientRecord, kb: KnowledgeBase) -> ConditionRecord | None:
    codes = kb.patient_rules.antiretroviral.hbv_conditions
    for condition in record.conditions:
        if condition.clinical_status in ("inactive", "resolved", "remission"):
            continue
        if not attribution.counts_as_disease(condition, kb):
            continue  # a provisional or differential diagnosis is not a co-infection
        for code in condition.codes:
            system, _, value = code.partition("|")
            if (system == "http://snomed.info/sct" and value in codes.snomed) or (
                system == "http://hl7.org/fhir/sid/icd-10-cm"
                and any(value.startswith(p) for p in codes.icd10cm)
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


def hla_b5701_positive(record: PatientRecord, kb: KnowledgeBase) -> str | None:
    """The source of a positive HLA-B*57:01 result, if any (answers as coded in answers.yaml)."""
    for m in record.measurements:
        if m.kind == "hla-b5701" and kb.answers.reading(m.codes, m.raw) == "positive":
            return m.source
    return None


def cite(kb: KnowledgeBase, keys: list[str] | tuple[str, ...]) -> str:
    """Short labels of a rule's evidence ("Galsky 2011; Cockcroft-Gault"), for explanations."""
    return "; ".join(kb.evidence[k].label.split(" (")[0] for k in keys if k in kb.evidence)


def renal_drugs(kb: KnowledgeBase) -> dict[str, float]:
    """Drugs with a creatinine-clearance limit (mL/min), from patient_rules.yaml."""
    rules = kb.patient_rules
    limits = {
        r.drug: float(r.min_creatinine_clearance_ml_min) for r in rules.antiretroviral.renal_limits
    }
    limits[rules.cisplatin.drug] = float(rules.cisplatin.min_creatinine_clearance_ml_min)
    return limits


def _renal(
    drug: str, limit: float, clearance: factors.Fact | None, cite: str
) -> DrugFinding | None:
    if clearance is None:
        return DrugFinding(
            drug=drug,
            severity="caution",
            basis="unknown",
            text=f"{drug}: creatinine clearance unknown (no creatinine with weight and age, and "
            f"no eGFR): check renal function before use ({cite})",
            recheck=f"check creatinine clearance before {drug} (none on record)",
        )
    placed = side(clearance.value, clearance.comparator, limit)
    sources = clearance.sources
    if placed == "indeterminate":
        return DrugFinding(
            drug=drug,
            severity="caution",
            basis="indeterminate",
            text=f"{drug}: {clearance.text} cannot be placed against {limit:g} mL/min ({cite})",
            sources=sources,
            recheck=f"re-check creatinine clearance before {drug}",
            option_text=f"{drug}: the last creatinine clearance cannot be placed against "
            f"{limit:g} mL/min ({cite})",
        )
    if placed == "below":
        if clearance.stale:
            return DrugFinding(
                drug=drug,
                severity="caution",
                basis="stale",
                text=f"{drug} would be avoided: {clearance.text} < {limit:g} mL/min ({cite}); "
                "the value is stale, re-check before use",
                sources=sources,
                abnormal=True,
                recheck=f"re-check creatinine clearance before {drug}",
                option_text=f"{drug} would be avoided if the last creatinine clearance, below "
                f"{limit:g} mL/min but stale, still holds ({cite})",
            )
        return DrugFinding(
            drug=drug,
            severity="contraindicated",
            basis="current",
            text=f"{drug} avoided: {clearance.text} < {limit:g} mL/min "
            f"({', '.join(sources)}; {cite})",
            sources=sources,
            abnormal=True,
        )
    if clearance.stale:
        return DrugFinding(
            drug=drug,
            severity="caution",
            basis="stale",
            text=f"{drug}: last {clearance.text} is stale; re-check before use ({cite})",
            sources=sources,
            recheck=f"re-check creatinine clearance before {drug}",
            option_text=f"{drug}: the last creatinine clearance is stale ({cite})",
        )
    return None


def drug_findings(
    drugs: frozenset[str], record: PatientRecord, kb: KnowledgeBase, as_of: date
) -> list[DrugFinding]:
    rules = kb.patient_rules
    found: list[DrugFinding] = []
    limits = renal_drugs(kb)
    wanted = sorted(drugs & set(limits))
    clearance = factors.creatinine_clearance(record, kb, as_of) if wanted else None
    exempt = {r.drug for r in rules.antiretroviral.renal_limits if r.dialysis_exempt}
    dialysis = on_dialysis(record, kb) if exempt & drugs else None
    for drug in wanted:
        if drug in exempt and dialysis:
            continue  # the label allows it on chronic haemodialysis (hiv.yaml renal)
        keys = (
            rules.cisplatin.evidence
            if drug == rules.cisplatin.drug
            else rules.antiretroviral.evidence
        )
        finding = _renal(drug, limits[drug], clearance, cite(kb, keys))
        if finding is not None:
            found.append(finding)
    found += _renal_cautions(drugs, record, kb, as_of)
    platinum = rules.cisplatin.drug
    if platinum in drugs:
        performance = factors.ecog(record, kb, as_of)
        if performance is not None and performance.value > float(rules.cisplatin.max_ecog):
            found.append(
                DrugFinding(
                    drug=platinum,
                    severity="caution" if performance.stale else "contraindicated",
                    basis="stale" if performance.stale else "current",
                    text=f"{platinum} avoided: {performance.text} "
                    f"({cite(kb, rules.cisplatin.evidence)})",
                    sources=performance.sources,
                    abnormal=True,
                    recheck=(
                        f"re-check performance status before {platinum} ({performance.text})"
                        if performance.stale
                        else None
                    ),
                )
            )
    positive = hla_b5701_positive(record, kb)
    for drug in sorted(drugs & set(rules.antiretroviral.hla_b5701_excludes)):
        if positive:
            found.append(
                DrugFinding(
                    drug=drug,
                    severity="contraindicated",
                    basis="current",
                    text=f"{drug} contraindicated: HLA-B*57:01 positive ({positive}; "
                    f"{cite(kb, rules.antiretroviral.evidence)})",
                    sources=(positive,),
                    abnormal=True,
                )
            )
    anthracyclines = {d for d in drugs if d in kb.drugs and "anthracycline" in kb.drugs[d].classes}
    if anthracyclines:
        found += _anthracycline_findings(sorted(anthracyclines), record, kb, as_of)
    return found


def _renal_cautions(
    drugs: frozenset[str], record: PatientRecord, kb: KnowledgeBase, as_of: date
) -> list[DrugFinding]:
    """patient_rules.yaml renal_cautions: a caution when the last clearance (current or old,
    shown with its date) is below the limit. Not a re-check, no rank change: an unknown or
    normal clearance says nothing here (the drug is not avoided below the limit)."""
    rules = [r for r in kb.patient_rules.renal_cautions if r.drug in drugs]
    clearance = factors.creatinine_clearance(record, kb, as_of) if rules else None
    if clearance is None:
        return []
    found = []
    for rule in rules:
        limit = rule.below_creatinine_clearance_ml_min
        if side(clearance.value, clearance.comparator, limit) != "below":
            continue
        found.append(
            DrugFinding(
                drug=rule.drug,
                severity="caution",
                basis="stale" if clearance.stale else "current",
                text=f"{rule.drug}: {clearance.text} < {limit:g} mL/min: {rule.caution} "
                f"({cite(kb, rule.evidence)})",
                sources=clearance.sources,
                option_text=f"{rule.drug}: last creatinine clearance below {limit:g} mL/min"
                f"{' (stale)' if clearance.stale else ''}: {rule.caution} "
                f"({cite(kb, rule.evidence)})",
            )
        )
    return found


def _anthracycline_findings(
    anthracyclines: list[str], record: PatientRecord, kb: KnowledgeBase, as_of: date
) -> list[DrugFinding]:
    """The lifetime limit, the caution level below it, and an unknown or partly counted total
    (never read as zero)."""
    rules = kb.patient_rules
    found: list[DrugFinding] = []
    doses = anthracycline.cumulative(record, kb, as_of)
    caution_level = float(rules.anthracycline.caution_cumulative_doxorubicin_mg_m2)
    if doses is not None and doses.at_least and doses.total < caution_level:
        # A caution, not a re-check: an undocumented dose is a gap in the record, not evidence
        # against the option, so it does not lower the option's rank. The details of which
        # records lack a dose are in the missing-data list (anthracycline.describe).
        counted = (
            f"at least {doses.total:.0f} mg/m2 {rules.anthracycline.reference_drug}-equivalent "
            "counted, the rest undocumented"
            if doses.known
            else "unknown, prior doses not documented"
        )
        found += [
            DrugFinding(
                drug=drug,
                severity="caution",
                basis="unknown",
                text=f"{drug}: cumulative anthracycline dose {counted}; the lifetime total cannot "
                f"be checked against {rules.anthracycline.max_cumulative_doxorubicin_mg_m2:g} "
                f"mg/m2 ({cite(kb, rules.anthracycline.evidence)}): document prior doses first",
                sources=tuple(dict.fromkeys(d.source for d in doses.doses)) + doses.undocumented,
            )
            for drug in anthracyclines
        ]
    total = factors.cumulative_anthracycline(record, kb, as_of)
    limit = float(rules.anthracycline.max_cumulative_doxorubicin_mg_m2)
    caution = float(rules.anthracycline.caution_cumulative_doxorubicin_mg_m2)
    if total is not None and total.value >= limit:
        found += [
            DrugFinding(
                drug=drug,
                severity="contraindicated",
                basis="current",
                text=f"{total.text} >= {limit:g} mg/m2 lifetime limit "
                f"({cite(kb, rules.anthracycline.evidence)})",
                sources=total.sources,
                abnormal=True,
            )
            for drug in sorted(anthracyclines)
        ]
    elif total is not None and total.value >= caution:
        found += [
            DrugFinding(
                drug=drug,
                severity="caution",
                basis="current",
                text=f"{total.text}: at or above the caution level {caution:g} mg/m2; "
                "heart-failure risk rises with the total "
                f"({cite(kb, rules.anthracycline.evidence)})",
                sources=total.sources,
            )
            for drug in sorted(anthracyclines)
        ]
    return found


def drug_contraindications(
    drugs: frozenset[str], record: PatientRecord, kb: KnowledgeBase, as_of: date
) -> list[tuple[str, str]]:
    """(drug, reason) for every current contraindication, and for every stale value that would
    contraindicate the drug (an abnormal old value keeps its caution)."""
    return [
        (f.drug, f.text)
        for f in drug_findings(drugs, record, kb, as_of)
        if f.severity == "contraindicated" or (f.basis == "stale" and f.abnormal)
    ]
