"""Tumour biomarker status (ESR1, PIK3CA/AKT1/PTEN, germline BRCA, HER2 IHC level, PD-L1, the
NSCLC drivers, histology) from coded variant results and from results written as text. A
biomarker without a usable result is "unknown" and says why (not recorded, not tested, pending,
a negative result older than the progression): it is never taken as negative."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import date

from salvage.engine import attribution
from salvage.engine.model import Measurement, PatientRecord, TumourMarkerResult
from salvage.knowledge.model import BiomarkerEntry, BiomarkersFile, KnowledgeBase

UNKNOWN = "unknown"
DETECTED = "detected"
NOT_DETECTED = "not-detected"
_CLAUSE = re.compile(r"[;\n]|\.\s+(?=[A-Z])")
_NUMBER = re.compile(r"(<=|>=|<|>|\u2264|\u2265)?\s*(\d+(?:[.,]\d+)?)\s*%")
_SCORE = re.compile(
    r"(?:TPS|CPS|score)[^0-9<>\u2264\u2265]{0,12}(<=|>=|<|>|\u2264|\u2265)?\s*(\d+(?:[.,]\d+)?)",
    re.IGNORECASE,
)
_LEADING_NO = re.compile(r"^\W*(no|without|negative for)\b", re.IGNORECASE)  # "No EGFR mutation"
_NEGATED_BEFORE = re.compile(r"\b(no|without|negative for|absence of)\s*$", re.IGNORECASE)
_NEGATED_AFTER = re.compile(
    r"^[\s:,-]*(not detected|negative|absent|not identified|not found|wild[- ]?type)",
    re.IGNORECASE,
)


@dataclass(frozen=True, kw_only=True, slots=True)
class BiomarkerStatus:
    marker: str
    label: str
    result: str  # detected | not-detected | a level ("low", "high") | unknown
    text: str  # what the record says, with dates, for the clinician
    sources: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Reading:
    result: str  # detected | not-detected | a level | not-tested | equivocal
    when: date
    source: str
    words: str


def statuses(
    record: PatientRecord, kb: KnowledgeBase, disease: str, failure_date: date
) -> dict[str, BiomarkerStatus]:
    """Every biomarker of this disease, read from the record as of the failure."""
    markers = kb.biomarkers
    if markers is None:
        return {}
    return {
        marker_id: _status(marker_id, marker, kb, markers, record, failure_date)
        for marker_id, marker in markers.biomarkers.items()
        if disease in marker.diseases
    }


def _status(
    marker_id: str,
    marker: BiomarkerEntry,
    kb: KnowledgeBase,
    markers: BiomarkersFile,
    record: PatientRecord,
    failure_date: date,
) -> BiomarkerStatus:
    readings = _readings(marker, kb, markers, record)
    if marker.kind == "variant":
        return _variant_status(marker_id, marker, readings, failure_date)
    usable = [r for r in readings if r.result not in ("not-tested", "equivocal")]
    if usable:
        latest = max(usable, key=lambda r: r.when)
        return BiomarkerStatus(
            marker=marker_id,
            label=marker.label,
            result=latest.result,
            text=f"{marker.label}: {latest.result} ({latest.words}, {latest.when.isoformat()})",
            sources=(latest.source,),
        )
    return _unknown(marker_id, marker, readings)


def _variant_status(
    marker_id: str, marker: BiomarkerEntry, readings: list[_Reading], failure_date: date
) -> BiomarkerStatus:
    found = [r for r in readings if r.result == DETECTED]
    if found:
        latest = max(found, key=lambda r: r.when)
        return BiomarkerStatus(
            marker=marker_id,
            label=marker.label,
            result=DETECTED,
            text=f"{marker.label} detected ({latest.words}, {latest.when.isoformat()})",
            sources=tuple(dict.fromkeys(r.source for r in found)),
        )
    negative = [r for r in readings if r.result == NOT_DETECTED]
    if negative:
        latest = max(negative, key=lambda r: r.when)
        if marker.retest_after_progression and latest.when < failure_date:
            return BiomarkerStatus(
                marker=marker_id,
                label=marker.label,
                result=UNKNOWN,
                text=(
                    f"{marker.label}: not detected on {latest.when.isoformat()} ({latest.source}), "
                    f"before the progression of {failure_date.isoformat()}; it can emerge under "
                    "treatment, so that result does not rule it out now"
                ),
                sources=(latest.source,),
            )
        return BiomarkerStatus(
            marker=marker_id,
            label=marker.label,
            result=NOT_DETECTED,
            text=f"{marker.label} not detected ({latest.words}, {latest.when.isoformat()})",
            sources=(latest.source,),
        )
    return _unknown(marker_id, marker, readings)


def _unknown(marker_id: str, marker: BiomarkerEntry, readings: list[_Reading]) -> BiomarkerStatus:
    pending = [r for r in readings if r.result in ("not-tested", "equivocal")]
    if pending:
        latest = max(pending, key=lambda r: r.when)
        return BiomarkerStatus(
            marker=marker_id,
            label=marker.label,
            result=UNKNOWN,
            text=(
                f"{marker.label}: no usable result (recorded as '{latest.words}' on "
                f"{latest.when.isoformat()}, {latest.source})"
            ),
            sources=(latest.source,),
        )
    return BiomarkerStatus(
        marker=marker_id, label=marker.label, result=UNKNOWN, text=f"{marker.label}: not recorded"
    )


# -- reading results ---------------------------------------------------------------------------


def _readings(
    marker: BiomarkerEntry, kb: KnowledgeBase, markers: BiomarkersFile, record: PatientRecord
) -> list[_Reading]:
    found: list[_Reading] = []
    if marker.kind == "histology":
        for condition in record.conditions:
            if not set(attribution.condition_diseases(condition, kb)) & set(marker.diseases):
                continue
            level = _level(marker, condition.text)
            when = condition.when or condition.recorded or condition.onset
            if level is not None and when is not None:
                found.append(_Reading(level, when, condition.source, condition.text))
        return found
    for m in record.measurements:
        if m.kind in marker.observation_kinds:
            reading = _measurement_reading(marker, m)
            if reading is not None:
                found.append(reading)
    for result in record.tumour_markers:
        reading = _result_reading(marker, markers, result)
        if reading is not None:
            found.append(reading)
    return found


def _measurement_reading(marker: BiomarkerEntry, m: Measurement) -> _Reading | None:
    if not m.raw:
        return None
    level = _level(marker, m.raw)
    return _Reading(level, m.when, m.source, m.raw) if level is not None else None


def _result_reading(
    marker: BiomarkerEntry, markers: BiomarkersFile, result: TumourMarkerResult
) -> _Reading | None:
    patterns = _patterns(marker)
    structured_genes = [g for g in result.genes if patterns.gene.search(g)]
    named_in_label = bool(patterns.gene.search(result.label)) or bool(
        marker.variants_name_the_gene and patterns.variant and patterns.variant.search(result.label)
    )
    if marker.kind == "level":
        if not (named_in_label or structured_genes or patterns.gene.search(result.text)):
            return None
        level = _level(marker, result.text, result.number, result.comparator)
        if level is None and _has(markers.codes.not_tested_text, result.text):
            level = "not-tested"
        return _Reading(level, result.when, result.source, _short(result.text)) if level else None
    if structured_genes:
        # A coded variant result: the gene is named by the gene-studied component, presence
        # by the coded answer (LOINC LA9633-4 Present / LA9634-2 Absent) or its text.
        words = " ".join([*structured_genes, result.variant, result.text]).strip()
        if result.value_codes & set(markers.codes.absent):
            state = NOT_DETECTED
        elif result.value_codes & set(markers.codes.present):
            state = DETECTED
        else:
            # No coded answer: the words decide; a listed variant without them was found; a gene
            # with neither (dataAbsentReason, an empty result) is no result at all.
            state = _clause_state(markers, f"{result.variant} {result.text}") or (
                DETECTED if result.variant else "not-tested"
            )
        return _Reading(
            _specific(patterns, state, f"{result.variant} {result.text} {result.label}"),
            result.when,
            result.source,
            _short(words),
        )
    # Text only: each clause of the value is read on its own ("ALK, ROS1 negative; KRAS G12C
    # detected"); a clause naming no gene speaks for the genes the test's name gives.
    readings: list[tuple[str, str]] = []
    for clause in _CLAUSE.split(result.text):
        names_any_gene = bool(_any_gene(markers).search(clause))
        mentions = bool(patterns.gene.search(clause)) or bool(
            marker.variants_name_the_gene and patterns.variant and patterns.variant.search(clause)
        )
        if not (mentions or (named_in_label and not names_any_gene)):
            continue
        clause_state = _clause_state(markers, clause)
        if clause_state is None:
            continue
        context = clause if mentions else f"{clause} {result.label}"
        readings.append((_specific(patterns, clause_state, context), clause.strip()))
    if not readings:
        return None
    chosen = next(
        (r for r in readings if r[0] == DETECTED),
        next((r for r in readings if r[0] == NOT_DETECTED), readings[0]),
    )
    shown = chosen[1] if not named_in_label else f"{result.label}: {chosen[1]}"
    return _Reading(chosen[0], result.when, result.source, _short(shown))


@functools.lru_cache(maxsize=8)
def _all_genes(genes: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile(r"(?<![A-Za-z0-9])(" + "|".join(map(re.escape, genes)) + r")(?![A-Za-z0-9])")


def _any_gene(markers: BiomarkersFile) -> re.Pattern[str]:
    return _all_genes(
        tuple(
            sorted(
                {g for m in markers.biomarkers.values() for g in (*m.genes, *m.aliases)},
                key=len,
                reverse=True,
            )
        )
    )


def _clause_state(markers: BiomarkersFile, text: str) -> str | None:
    """not-tested, not-detected or detected, from the words of one clause (negation first:
    "not detected" contains "detected")."""
    if _has(markers.codes.not_tested_text, text):
        return "not-tested"
    if _has(markers.codes.negative_text, text) or _LEADING_NO.match(text):
        return NOT_DETECTED
    if _has(markers.codes.positive_text, text):
        return DETECTED
    return None


def _specific(patterns: _Patterns, state: str, text: str) -> str:
    """For a named variant (KRAS G12C, EGFR T790M): a finding of the gene counts only when the
    variant is named and not negated; another named variant of the gene is not this one."""
    if patterns.variant is None or state != DETECTED:
        return state
    for match in patterns.variant.finditer(text):
        before, after = text[: match.start()], text[match.end() :]
        if not (_NEGATED_BEFORE.search(before) or _NEGATED_AFTER.search(after)):
            return DETECTED
    if patterns.variant.search(text):
        return NOT_DETECTED  # only negated mentions
    return (
        NOT_DETECTED if re.search(r"\b[A-Z]\d+[A-Z*]|p\.|c\.|exon|del|ins", text) else "equivocal"
    )


def _level(
    marker: BiomarkerEntry, text: str, number: float | None = None, comparator: str | None = None
) -> str | None:
    for level in marker.levels:
        if any(re.search(p, text, re.IGNORECASE) for p in level.patterns):
            return "equivocal" if level.means_unknown else level.level
    if marker.percent_levels:
        value = number
        if value is None:
            match = _SCORE.search(text) or _NUMBER.search(text)
            if match is not None:
                comparator = match.group(1)
                value = float(match.group(2).replace(",", "."))
        if value is not None:
            if comparator in ("<", "\u2264", "<=") and value > 0:
                value = value - 0.001  # "<1 %" is below 1
            for at_least, name in sorted(marker.percent_levels, reverse=True):
                if value >= at_least:
                    return name
    return None


def _has(words: list[str], text: str) -> bool:
    lowered = text.lower()
    return any(re.search(r"(?<![a-z])" + re.escape(w) + r"(?![a-z])", lowered) for w in words)


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 120 else text[:117] + "..."


@dataclass(frozen=True, slots=True)
class _Patterns:
    gene: re.Pattern[str]
    variant: re.Pattern[str] | None


@functools.lru_cache(maxsize=256)
def _compiled(genes: tuple[str, ...], variants: tuple[str, ...]) -> _Patterns:
    gene = re.compile(
        r"(?<![A-Za-z0-9])(" + "|".join(map(re.escape, genes)) + r")(?![A-Za-z0-9])"
        if genes
        else r"(?!x)x"
    )
    variant = (
        re.compile("|".join(f"(?:{v})" for v in variants), re.IGNORECASE) if variants else None
    )
    return _Patterns(gene, variant)


def _patterns(marker: BiomarkerEntry) -> _Patterns:
    return _compiled(tuple(marker.genes) + tuple(marker.aliases), tuple(marker.variants))


def her2_receptor(status: BiomarkerStatus | None, kb: KnowledgeBase) -> str | None:
    """positive / negative HER2 status implied by a HER2 level (IHC 1+ is HER2-negative for the
    anti-HER2 pathways and HER2-low for trastuzumab deruxtecan), or None."""
    markers = kb.biomarkers
    if status is None or markers is None or status.result == UNKNOWN:
        return None
    entry = markers.biomarkers.get(status.marker)
    return entry.receptor_status.get(status.result) if entry else None
