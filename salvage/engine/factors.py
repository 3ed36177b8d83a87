"""Patient factors the recommender weighs: age, performance status, creatinine clearance, organ
function and anthracycline dose. The most recent value is always used and shown with its date and
age; a value older than its recency window (patient_rules.yaml) is flagged stale, never dropped."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from salvage.engine import anthracycline
from salvage.engine.model import Measurement, PatientRecord
from salvage.engine.wording import counted
from salvage.knowledge.model import KnowledgeBase


@dataclass(frozen=True, kw_only=True)
class Fact:
    """A value with the date it was measured and the resources it came from."""

    value: float
    when: date | None
    sources: tuple[str, ...]
    text: str
    comparator: str | None = None  # the lab's "<" / ">" carried through every rule
    stale: bool = False  # older than the rule's recency window
    age_days: int | None = None
    reference_high: float | None = None


def age_text(days: int) -> str:
    if days < 60:
        return f"{counted(days, 'day')} old"
    if days < 730:
        return f"{counted(round(days / 30.4375), 'month')} old"
    return f"{days / 365.25:.1f} years old"


def latest(record: PatientRecord, kind: str, as_of: date) -> Measurement | None:
    """The most recent measurement of a kind on or before as_of (readable or not)."""
    found = [m for m in record.measurements if m.kind == kind and m.when <= as_of]
    return max(found, key=lambda m: m.when) if found else None


def _latest_value(record: PatientRecord, kind: str, as_of: date) -> Measurement | None:
    found = [
        m for m in record.measurements if m.kind == kind and m.value is not None and m.when <= as_of
    ]
    return max(found, key=lambda m: m.when) if found else None


def _dated(text: str, m: Measurement, as_of: date, window_days: int) -> tuple[str, bool, int]:
    days = (as_of - m.when).days
    stale = days > window_days
    return (
        f"{text} on {m.when.isoformat()} "
        f"({age_text(days)}{', stale' if stale else ''}; {m.source})",
        stale,
        days,
    )


def _value_fact(
    m: Measurement,
    value: float,
    shown: str,
    as_of: date,
    window_days: int,
    *,
    reference_high: float | None = None,
) -> Fact:
    """One measurement's value as a dated fact (its comparator carried through every rule)."""
    text, stale, days = _dated(shown, m, as_of, window_days)
    return Fact(
        value=value,
        when=m.when,
        sources=(m.source,),
        text=text,
        comparator=m.comparator,
        stale=stale,
        age_days=days,
        reference_high=reference_high,
    )


def age_years(record: PatientRecord, as_of: date) -> int | None:
    if record.birth_date is None:
        return None
    b = record.birth_date
    return as_of.year - b.year - ((as_of.month, as_of.day) < (b.month, b.day))


def karnofsky_as_ecog(kb: KnowledgeBase, karnofsky: float) -> int:
    for at_least, ecog_value in kb.karnofsky_to_ecog:
        if karnofsky >= at_least:
            return ecog_value
    return kb.karnofsky_to_ecog[-1][1]


def ecog(record: PatientRecord, kb: KnowledgeBase, as_of: date) -> Fact | None:
    """The most recent performance status as ECOG (Karnofsky mapped by the cited table); None when
    there is none or the most recent one is unreadable (an older score never stands in for it)."""
    if unreadable_performance(record, as_of) is not None:
        return None
    window = int(kb.patient_rules.recency.ecog_days)
    readings = [
        m
        for m in record.measurements
        if m.kind in ("ecog", "karnofsky") and m.value is not None and m.when <= as_of
    ]
    if not readings:
        return None
    m = max(readings, key=lambda r: (r.when, r.kind == "ecog"))
    recorded = m.value if m.value is not None else 0.0  # filtered above
    if m.kind == "karnofsky":
        value = float(karnofsky_as_ecog(kb, recorded))
        label = f"ECOG {value:g} (from Karnofsky {recorded:g}%, ECOG-ACRIN table)"
    else:
        value = recorded
        # the recorded form is worth showing only when it is not the number itself (an answer
        # code or words); "ECOG 1 (recorded as '1')" said nothing (specialist review wording)
        plain = m.raw.strip().isdigit() and float(m.raw) == value
        shown = m.raw.strip() and not plain
        label = f"ECOG {value:g}" + (f" (recorded as '{m.raw}')" if shown else "")
    text, stale, days = _dated(label, m, as_of, window)
    return Fact(
        value=value, when=m.when, sources=(m.source,), text=text, stale=stale, age_days=days
    )


def unreadable_performance(record: PatientRecord, as_of: date) -> Measurement | None:
    """A performance status recorded but unreadable, when it is the most recent one."""
    found = [m for m in record.measurements if m.kind in ("ecog", "karnofsky") and m.when <= as_of]
    if not found:
        return None
    m = max(found, key=lambda r: r.when)
    return m if m.value is None else None


def creatinine_clearance(record: PatientRecord, kb: KnowledgeBase, as_of: date) -> Fact | None:
    """The most recent renal function: a measured clearance (24-hour urine), else Cockcroft-Gault
    or the eGFR, whichever is newer. A measured clearance wins a tie: it is what the estimates
    approximate. The value keeps its date, age and comparator ("<30")."""
    window = int(kb.patient_rules.recency.renal_days)
    estimated = _estimated_clearance(record, kb, as_of)
    m = _latest_value(record, "creatinine-clearance", as_of)
    if m is None or m.value is None:
        return estimated
    if estimated is not None and estimated.when is not None and estimated.when > m.when:
        return estimated
    shown = f"measured creatinine clearance {m.comparator or ''}{m.value:.0f} mL/min"
    if m.raw and not shown.endswith(m.raw):
        shown += f" (recorded as '{m.raw}')"  # converted from another unit
    return _value_fact(m, m.value, shown, as_of, window)


def _estimated_clearance(record: PatientRecord, kb: KnowledgeBase, as_of: date) -> Fact | None:
    """Cockcroft-Gault: (140 - age) x weight / (72 x creatinine mg/dL), x 0.85 for women; the
    eGFR (mL/min/1.73 m2) when it is more recent or creatinine, weight or age is missing."""
    recency = kb.patient_rules.recency
    window = int(recency.renal_days)
    creat = _latest_value(record, "creatinine", as_of)
    weight = _latest_value(record, "weight", as_of)
    egfr = _latest_value(record, "egfr", as_of)
    age = age_years(record, as_of)
    cockcroft: Fact | None = None
    if (
        creat
        and weight
        and age is not None
        and creat.value
        and weight.value
        and not creat.comparator
    ):
        value = (140 - age) * weight.value / (72 * creat.value)
        if record.gender == "female":
            value *= 0.85
        text, stale, days = _dated(
            f"creatinine clearance {value:.0f} mL/min (Cockcroft-Gault: creatinine "
            f"{creat.value:.2f} mg/dL, weight {weight.value:.0f} kg on {weight.when.isoformat()}, "
            f"age {age})",
            creat,
            as_of,
            window,
        )
        cockcroft = Fact(
            value=round(value, 1),
            when=creat.when,
            sources=(creat.source, weight.source),
            text=text,
            stale=stale,
            age_days=days,
        )
    if (
        egfr is not None
        and egfr.value is not None
        and (cockcroft is None or (cockcroft.when is not None and egfr.when > cockcroft.when))
    ):
        shown = f"{egfr.comparator or ''}{egfr.value:.0f}"
        return _value_fact(egfr, egfr.value, f"eGFR {shown} mL/min/1.73m2", as_of, window)
    return cockcroft


def organ(
    record: PatientRecord, kb: KnowledgeBase, kind: str, label: str, as_of: date
) -> Fact | None:
    """The latest LVEF, AST or ALT with its upper limit of normal when the lab gave one."""
    m = _latest_value(record, kind, as_of)
    if m is None or m.value is None:
        return None
    window = int(kb.patient_rules.recency.organ_days)
    shown = f"{label} {m.raw or m.value}"
    if m.reference_high is not None:
        shown += f" (upper limit {m.reference_high:g})"
    return _value_fact(m, m.value, shown, as_of, window, reference_high=m.reference_high)


def cumulative_anthracycline(record: PatientRecord, kb: KnowledgeBase, as_of: date) -> Fact | None:
    """Doxorubicin-equivalent mg/m2 from every documented anthracycline dose (anthracycline.py);
    None when no anthracycline was given or none of its doses could be counted."""
    total = anthracycline.cumulative(record, kb, as_of)
    if total is None or not total.known:
        return None
    return Fact(
        value=round(total.total),
        when=None,
        sources=tuple(dict.fromkeys(d.source for d in total.counted)),
        text=anthracycline.describe(total, kb),
    )
