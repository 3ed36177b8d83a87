"""The NRTI backbone of a new HIV regimen: hepatitis B status, dialysis, and the tenofovir form that
renal function allows (drugs, limits and wording in knowledge/data/hiv.yaml; DHHS and labels)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from salvage.engine import contraindications, factors
from salvage.engine.model import Measurement, PatientRecord
from salvage.knowledge.model import KnowledgeBase


@dataclass(frozen=True, kw_only=True, slots=True)
class Hbv:
    source: str
    text: str  # "hepatitis B (Chronic hepatitis B, Condition/7)" or "HBsAg positive on ..."
    possible: bool = False  # an HBsAg result was recorded but reads neither positive nor negative


@dataclass(frozen=True, kw_only=True, slots=True)
class Backbone:
    """The tenofovir form and partner this patient can take, and why."""

    tenofovir: str | None  # None: no tenofovir form fits renal function
    partner: str
    reason: str
    sources: tuple[str, ...]
    renal_unknown: bool = False

    @property
    def drugs(self) -> tuple[str, ...]:
        return (self.tenofovir, self.partner) if self.tenofovir else ()


def _hbsag_results(record: PatientRecord) -> list[Measurement]:
    return sorted(
        (m for m in record.measurements if m.kind == "hbsag"), key=lambda m: m.when, reverse=True
    )


def hbv_status(record: PatientRecord, kb: KnowledgeBase) -> Hbv | None:
    """Hepatitis B co-infection from a Condition or any positive HBsAg result; possible hepatitis B
    when the latest HBsAg result cannot be read as positive or negative (answers.yaml): with a
    result that says neither, the HBV-active pair is kept rather than risk a flare (DHHS)."""
    condition = contraindications.hbv_coinfection(record, kb)
    if condition is not None:
        return Hbv(
            source=condition.source,
            text=f"hepatitis B ({condition.text or 'coded condition'}, {condition.source})",
        )
    results = _hbsag_results(record)
    for m in results:
        if kb.answers.reading(m.codes, m.raw) == "positive":
            later = f"; a later result reads {results[0].raw!r}" if m is not results[0] else ""
            return Hbv(
                source=m.source,
                text=f"HBsAg positive on {m.when.isoformat()} ({m.source}){later}",
            )
    if results and kb.answers.reading(results[0].codes, results[0].raw) == "unknown":
        m = results[0]
        return Hbv(
            source=m.source,
            text=f"HBsAg result {m.raw or 'without a value'!r} on {m.when.isoformat()} "
            f"({m.source}) cannot be read as positive or negative: treated as possible "
            "hepatitis B until repeated",
            possible=True,
        )
    return None


def hbsag_negative(record: PatientRecord, kb: KnowledgeBase) -> str | None:
    """The latest HBsAg result when it reads negative (and no HBV is otherwise on record)."""
    results = _hbsag_results(record)
    if results and kb.answers.reading(results[0].codes, results[0].raw) == "negative":
        m = results[0]
        return f"HBsAg negative on {m.when.isoformat()} ({m.raw or 'coded'}, {m.source})"
    return None


def has_hbv_pair(drugs: frozenset[str] | set[str], kb: KnowledgeBase) -> bool:
    """Tenofovir with emtricitabine or lamivudine: the pair that keeps hepatitis B suppressed."""
    return bool(drugs & kb.hiv.hbv_tenofovir) and bool(drugs & kb.hiv.hbv_partners)


def backbone(record: PatientRecord, kb: KnowledgeBase, as_of: date) -> Backbone:
    """TAF with its partner whenever it fits (CrCl at or above the TAF limit, or on dialysis); TDF
    is named only as an alternative at or above the TDF limit; neither below the TAF limit."""
    hiv = kb.hiv
    dialysis = contraindications.on_dialysis(record, kb)
    if dialysis is not None:
        return Backbone(
            tenofovir=hiv.taf,
            partner=hiv.partner,
            reason=f"on renal dialysis ({dialysis}): {hiv.taf} with {hiv.partner}, "
            f"{hiv.dialysis_note}",
            sources=(dialysis,),
        )
    clearance = factors.creatinine_clearance(record, kb, as_of)
    if clearance is None:
        return Backbone(
            tenofovir=hiv.taf,
            partner=hiv.partner,
            reason=f"creatinine clearance unknown: {hiv.taf} (usable down to "
            f"{hiv.taf_min_clearance:g} mL/min); confirm renal function before prescribing",
            sources=(),
            renal_unknown=True,
        )
    sources = tuple(clearance.sources)
    if clearance.value >= hiv.tdf_min_clearance:
        reason = (
            f"{clearance.text}: {hiv.taf} ({hiv.tdf} also possible at "
            f"{hiv.tdf_min_clearance:g} mL/min or more)"
        )
    elif clearance.value >= hiv.taf_min_clearance:
        reason = (
            f"{clearance.text}: {hiv.taf}, not {hiv.tdf} (avoided below "
            f"{hiv.tdf_min_clearance:g} mL/min)"
        )
    else:
        return Backbone(
            tenofovir=None,
            partner=hiv.partner,
            reason=f"{clearance.text}, below {hiv.taf_min_clearance:g} mL/min: "
            f"{hiv.below_taf_advice}",
            sources=sources,
        )
    return Backbone(tenofovir=hiv.taf, partner=hiv.partner, reason=reason, sources=sources)
