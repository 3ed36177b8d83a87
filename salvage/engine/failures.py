"""Detect treatment failures from the record, each dated when its definition is first met."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

from salvage.engine.dates import months_between
from salvage.engine.model import Failure, Line, Measurement, PatientRecord
from salvage.knowledge.model import KnowledgeBase


def _episodes(lines: list[Line], domain: str) -> dict[int, tuple[date, date | None, list[Line]]]:
    """Line number -> (start, end or None if ongoing, its entries incl. maintenance)."""
    out: dict[int, tuple[date, date | None, list[Line]]] = {}
    for line in lines:
        if line.domain != domain:
            continue
        if line.number not in out:
            out[line.number] = (line.start, line.end, [line])
        else:
            start, _, parts = out[line.number]
            out[line.number] = (start, line.end, [*parts, line])
    return out


def _line_at(episodes: dict[int, tuple[date, date | None, list[Line]]], when: date) -> int | None:
    for number, (start, end, _) in episodes.items():
        if start <= when and (end is None or when <= end):
            return number
    return None


def _last_line_before(
    episodes: dict[int, tuple[date, date | None, list[Line]]], when: date
) -> tuple[int, date] | None:
    ended = [
        (end, number) for number, (_, end, _) in episodes.items() if end is not None and end < when
    ]
    if not ended:
        return None
    end, number = max(ended)
    return number, end


def oncology_failures(record: PatientRecord, lines: list[Line], kb: KnowledgeBase) -> list[Failure]:
    spec = kb.failures["oncology"]
    episodes = _episodes(lines, "oncology")
    if not episodes:
        return []
    evidence = tuple(spec.get("evidence", []))
    found: list[Failure] = []

    def progression(when: date, source: str, detail: str) -> None:
        number = _line_at(episodes, when)
        if number is not None:
            found.append(
                Failure(
                    kind="refractory",
                    when=when,
                    line=number,
                    sources=(source,),
                    detail=f"{detail} while line {number} was active",
                    evidence=evidence,
                )
            )
            return
        before = _last_line_before(episodes, when)
        if before is not None:
            number, ended = before
            interval = months_between(ended, when)
            found.append(
                Failure(
                    kind="relapse",
                    when=when,
                    line=number,
                    sources=(source,),
                    detail=f"{detail} {interval} months after line {number} ended "
                    f"({ended.isoformat()})",
                    evidence=evidence,
                    relapse_interval_months=interval,
                )
            )

    worsened = set(spec["disease_status"]["worsened"])
    for m in record.measurements:
        if m.kind == "disease-status" and m.codes & worsened:
            progression(m.when, m.source, f"disease status 'worsened' on {m.when.isoformat()}")
    statuses = set(spec["condition_clinical_status"])
    for c in record.conditions:
        if c.clinical_status in statuses:
            when = c.recorded or c.onset
            if when is not None:
                progression(
                    when,
                    c.source,
                    f"condition '{c.text or 'disease'}' recorded as {c.clinical_status} "
                    f"on {when.isoformat()}",
                )

    no_response = set(spec["stop_reasons"]["no_response"])
    not_tolerated = set(spec["stop_reasons"]["not_tolerated"])
    for line in lines:
        if line.domain != "oncology":
            continue
        for exposure in record.exposures:
            if exposure.source not in line.sources:
                continue
            stopped_on = exposure.end or exposure.start
            drugs = ", ".join(sorted(exposure.ingredients))
            if exposure.stop_reasons & no_response:
                found.append(
                    Failure(
                        kind="refractory",
                        when=stopped_on,
                        line=line.number,
                        sources=(exposure.source,),
                        detail=f"{drugs} stopped for no response on {stopped_on.isoformat()}",
                        evidence=evidence,
                    )
                )
            if exposure.stop_reasons & not_tolerated:
                found.append(
                    Failure(
                        kind="intolerance",
                        when=stopped_on,
                        line=line.number,
                        sources=(exposure.source,),
                        detail=f"{drugs} stopped as not tolerated on {stopped_on.isoformat()}",
                        evidence=evidence,
                    )
                )
    return found


def primary_local_therapy(lines: list[Line]) -> Line | None:
    """The first prostatectomy or radiotherapy line: the therapy a PSA recurrence is judged by."""
    return next(
        (
            line
            for line in lines
            if line.procedure in ("prostatectomy", "radiotherapy", "brachytherapy")
        ),
        None,
    )


def prostate_failures(record: PatientRecord, lines: list[Line], kb: KnowledgeBase) -> list[Failure]:
    """Biochemical recurrence after the primary local therapy read from Procedure."""
    spec = kb.failures["prostate"]
    primary = primary_local_therapy(lines)
    if primary is None:
        return []
    psa = sorted(
        (
            m
            for m in record.measurements
            if m.kind == "psa" and m.value is not None and m.when > primary.start
        ),
        key=lambda m: m.when,
    )
    if primary.procedure == "prostatectomy":
        rule = spec["post_prostatectomy"]
        threshold = float(rule["threshold_ng_per_ml"])
        for first, second in itertools.pairwise(psa):
            if _v(first) >= threshold and _v(second) >= threshold:
                return [
                    Failure(
                        kind="biochemical-recurrence",
                        when=second.when,
                        line=primary.number,
                        sources=(first.source, second.source),
                        detail=(
                            f"PSA {first.raw} on {first.when.isoformat()} confirmed by "
                            f"{second.raw} on {second.when.isoformat()} "
                            f"(>= {threshold} ng/mL after prostatectomy)"
                        ),
                        evidence=tuple(rule["evidence"]),
                    )
                ]
        return []
    rule = spec["post_radiotherapy"]
    rise = float(rule["nadir_plus_ng_per_ml"])
    nadir: Measurement | None = None
    for m in psa:
        if nadir is None or _v(m) < _v(nadir):
            nadir = m
        elif _v(m) >= _v(nadir) + rise:
            return [
                Failure(
                    kind="biochemical-recurrence",
                    when=m.when,
                    line=primary.number,
                    sources=(nadir.source, m.source),
                    detail=(
                        f"PSA {m.raw} on {m.when.isoformat()} is >= nadir {nadir.raw} "
                        f"({nadir.when.isoformat()}) + {rise:g} ng/mL (Phoenix definition)"
                    ),
                    evidence=tuple(rule["evidence"]),
                )
            ]
    return []


def hiv_failures(
    record: PatientRecord, lines: list[Line], kb: KnowledgeBase, as_of: date
) -> list[Failure]:
    """Two consecutive HIV-1 RNA >= 200 copies/mL after 24 weeks on a regimen or suppression."""
    spec = kb.failures["hiv"]
    threshold = float(spec["threshold_copies_per_ml"])
    settle = timedelta(weeks=int(spec["min_weeks_on_regimen"]))
    loads = sorted(
        (m for m in record.measurements if m.kind == "hiv-rna" and m.value is not None),
        key=lambda m: m.when,
    )
    found: list[Failure] = []
    for line in lines:
        if line.domain != "hiv":
            continue
        end = line.end or as_of
        on_line = [m for m in loads if line.start <= m.when <= end]
        suppressed = False
        for first, second in itertools.pairwise(on_line):
            if _v(first) < threshold:
                suppressed = True
                continue
            qualifies = suppressed or first.when - line.start >= settle
            if qualifies and _v(second) >= threshold:
                why = (
                    "after suppression" if suppressed else "after at least 24 weeks on the regimen"
                )
                found.append(
                    Failure(
                        kind="virologic-failure",
                        when=second.when,
                        line=line.number,
                        sources=(first.source, second.source),
                        detail=(
                            f"HIV-1 RNA {first.raw} on {first.when.isoformat()} and "
                            f"{second.raw} on {second.when.isoformat()}, "
                            f"both >= {threshold:g} copies/mL {why}"
                        ),
                        evidence=tuple(spec["evidence"]),
                    )
                )
                break
    return found


def _v(m: Measurement) -> float:
    """The numeric value of a measurement already filtered to those that have one."""
    if m.value is None:
        raise ValueError(f"{m.source} has no numeric value")
    return m.value


def merge_failures(failures: list[Failure]) -> list[Failure]:
    """One failure per (line, kind): the earliest date, with every source that supports it."""
    merged: dict[tuple[int | None, str], Failure] = {}
    for failure in sorted(failures, key=lambda f: f.when):
        key = (failure.line, failure.kind)
        if key not in merged:
            merged[key] = failure
            continue
        first = merged[key]
        merged[key] = Failure(
            kind=first.kind,
            when=first.when,
            line=first.line,
            sources=tuple(dict.fromkeys(first.sources + failure.sources)),
            detail=first.detail,
            evidence=first.evidence,
            relapse_interval_months=first.relapse_interval_months,
        )
    return sorted(merged.values(), key=lambda f: (f.when, f.line or 0, f.kind))
