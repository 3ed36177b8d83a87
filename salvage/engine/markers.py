"""The disease markers to chart for a patient, each with the thresholds of the failure definition
that applies to this patient (the screen draws these; it holds no threshold of its own)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from salvage.engine.analysis import PatientAnalysis
from salvage.engine.failures import primary_local_therapy
from salvage.engine.model import Measurement
from salvage.knowledge.model import KnowledgeBase, MarkerChartSpec


@dataclass(frozen=True, kw_only=True, slots=True)
class Threshold:
    value: float
    label: str


@dataclass(frozen=True, kw_only=True, slots=True)
class MarkerSeries:
    spec: MarkerChartSpec
    points: tuple[tuple[date, float, str], ...]  # (day, value in the canonical unit, source)
    thresholds: tuple[Threshold, ...]
    note: str = ""  # why no threshold is drawn, when none is


def _values(analysis: PatientAnalysis, kind: str) -> list[Measurement]:
    return sorted(
        (m for m in analysis.record.measurements if m.kind == kind and m.value is not None),
        key=lambda m: m.when,
    )


def _v(m: Measurement) -> float:
    assert m.value is not None  # noqa: S101 (filtered above)
    return m.value


def _hiv_thresholds(kb: KnowledgeBase) -> tuple[Threshold, ...]:
    limit = float(kb.failures.hiv.threshold_copies_per_ml)
    return (Threshold(value=limit, label=f"{limit:g} copies/mL virologic failure threshold"),)


def _psa_thresholds(
    analysis: PatientAnalysis, kb: KnowledgeBase, values: list[Measurement]
) -> tuple[tuple[Threshold, ...], str]:
    """After prostatectomy the confirmed-PSA threshold; after radiotherapy nadir and nadir + 2
    (Phoenix), the nadir taken after the radiotherapy; none without a primary local therapy."""
    spec = kb.failures.prostate
    primary = primary_local_therapy(list(analysis.lines))
    if primary is None:
        return (), "no primary local therapy recorded: no recurrence threshold applies"
    if primary.procedure == "prostatectomy":
        limit = float(spec.post_prostatectomy.threshold_ng_per_ml)
        return (Threshold(value=limit, label=f"{limit:g} ng/mL after prostatectomy"),), ""
    after = [m for m in values if m.when > primary.start]
    if not after:
        return (), "no PSA after radiotherapy yet: the nadir is unknown"
    nadir = min(_v(m) for m in after)
    rise = float(spec.post_radiotherapy.nadir_plus_ng_per_ml)
    return (
        Threshold(value=nadir, label=f"nadir {nadir:g}"),
        Threshold(value=nadir + rise, label=f"nadir + {rise:g} = {nadir + rise:g} (Phoenix)"),
    ), ""


def marker_series(analysis: PatientAnalysis, kb: KnowledgeBase) -> tuple[MarkerSeries, ...]:
    found = []
    for spec in kb.markers:
        if not spec.diseases & set(analysis.diseases):
            continue
        values = _values(analysis, spec.kind)
        if not values:
            continue
        thresholds: tuple[Threshold, ...] = ()
        note = ""
        if spec.kind == "hiv-rna":
            thresholds = _hiv_thresholds(kb)
        elif spec.kind == "psa":
            thresholds, note = _psa_thresholds(analysis, kb, values)
        found.append(
            MarkerSeries(
                spec=spec,
                points=tuple((m.when, _v(m), m.source) for m in values),
                thresholds=thresholds,
                note=note,
            )
        )
    return tuple(found)
