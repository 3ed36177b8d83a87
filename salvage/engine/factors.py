"""Patient factors the recommender weighs: age, ECOG, creatinine clearance, anthracycline dose."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

from salvage.engine.model import Measurement, PatientRecord
from salvage.knowledge.model import KnowledgeBase


@dataclass(frozen=True, kw_only=True)
class Fact:
    """A value with the date it was measured and the resources it came from."""

    value: float
    when: date | None
    sources: tuple[str, ...]
    text: str


def _latest(record: PatientRecord, kind: str, as_of: date, days: int) -> Measurement | None:
    recent = [
        m
        for m in record.measurements
        if m.kind == kind
        and m.value is not None
        and as_of - timedelta(days=days) <= m.when <= as_of
    ]
    return max(recent, key=lambda m: m.when) if recent else None


def age_years(record: PatientRecord, as_of: date) -> int | None:
    if record.birth_date is None:
        return None
    b = record.birth_date
    return as_of.year - b.year - ((as_of.month, as_of.day) < (b.month, b.day))


def ecog(record: PatientRecord, kb: KnowledgeBase, as_of: date) -> Fact | None:
    m = _latest(record, "ecog", as_of, int(kb.patient_rules["recency"]["ecog_days"]))
    if m is None or m.value is None:
        return None
    return Fact(
        value=m.value,
        when=m.when,
        sources=(m.source,),
        text=f"ECOG {m.value:g} on {m.when.isoformat()}",
    )


def creatinine_clearance(record: PatientRecord, kb: KnowledgeBase, as_of: date) -> Fact | None:
    """Cockcroft-Gault: (140 - age) x weight / (72 x creatinine mg/dL), x 0.85 for women;
    falls back to eGFR (mL/min/1.73 m2) when creatinine, weight or age is missing."""
    recency = kb.patient_rules["recency"]
    creat = _latest(record, "creatinine", as_of, int(recency["renal_days"]))
    weight = _latest(record, "weight", as_of, int(recency["weight_days"]))
    age = age_years(record, as_of)
    if creat and weight and age is not None and creat.value and weight.value:
        value = (140 - age) * weight.value / (72 * creat.value)
        if record.gender == "female":
            value *= 0.85
        return Fact(
            value=round(value, 1),
            when=creat.when,
            sources=(creat.source, weight.source),
            text=(
                f"creatinine clearance {value:.0f} mL/min (Cockcroft-Gault: creatinine "
                f"{creat.value:.2f} mg/dL on {creat.when.isoformat()}, weight "
                f"{weight.value:.0f} kg, age {age})"
            ),
        )
    egfr = _latest(record, "egfr", as_of, int(recency["renal_days"]))
    if egfr and egfr.value is not None:
        return Fact(
            value=egfr.value,
            when=egfr.when,
            sources=(egfr.source,),
            text=f"eGFR {egfr.value:.0f} mL/min/1.73m2 on {egfr.when.isoformat()}",
        )
    return None


def body_surface_area(record: PatientRecord, as_of: date) -> float | None:
    """Mosteller: sqrt(height cm x weight kg / 3600), from the latest recorded values."""
    heights = [m for m in record.measurements if m.kind == "height" and m.value and m.when <= as_of]
    weights = [m for m in record.measurements if m.kind == "weight" and m.value and m.when <= as_of]
    if not heights or not weights:
        return None
    h = max(heights, key=lambda m: m.when).value or 0.0
    w = max(weights, key=lambda m: m.when).value or 0.0
    return math.sqrt(h * w / 3600)


def cumulative_anthracycline(record: PatientRecord, kb: KnowledgeBase, as_of: date) -> Fact | None:
    """Doxorubicin-equivalent mg/m2 from administrations with a recorded dose (mg/m2, or mg with
    BSA); epirubicin counts by its equivalence factor in drugs.yaml."""
    bsa = body_surface_area(record, as_of)
    total = 0.0
    sources: list[str] = []
    for e in record.exposures:
        if e.dose is None or not e.source.startswith("MedicationAdministration/"):
            continue
        for ingredient in e.ingredients:
            drug = kb.drugs.get(ingredient)
            if drug is None or drug.anthracycline_equivalence is None:
                continue
            unit = (e.dose_unit or "").replace(" ", "")
            if unit in ("mg/m2", "mg/m^2", "mg/m[2]"):
                per_m2 = e.dose
            elif unit == "mg" and bsa:
                per_m2 = e.dose / bsa
            else:
                continue
            total += per_m2 * drug.anthracycline_equivalence
            sources.append(e.source)
    if not sources:
        return None
    return Fact(
        value=round(total),
        when=None,
        sources=tuple(sources),
        text=f"cumulative anthracycline {total:.0f} mg/m2 doxorubicin-equivalent "
        f"from {len(sources)} administrations",
    )
