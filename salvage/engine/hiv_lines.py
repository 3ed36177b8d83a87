"""HIV lines of therapy (DHHS): each distinct antiretroviral regimen is a line; overlaps shorter
than min_regimen_days while switching are transitions, not regimens."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date, timedelta

import msgspec

from salvage.engine.ingredient_facts import facts_table
from salvage.engine.model import DrugExposure, Line
from salvage.knowledge.model import KnowledgeBase, LineRules


def _exposure_last_day(e: DrugExposure, as_of: date) -> date:
    return min(e.end, as_of) if e.end is not None else as_of


def hiv_lines(
    exposures: list[DrugExposure],
    kb: KnowledgeBase,
    rules: LineRules,
    as_of: date,
    first_number: int = 1,
) -> list[Line]:
    """Each distinct antiretroviral regimen is a line; short switch overlaps are transitions."""
    table = facts_table(kb)
    arv = [e for e in exposures if e.start <= as_of and table[e.ingredients].antiretroviral]
    if not arv:
        return []
    # Each exposure's days and antiretroviral ingredients, read once for the sweep.
    spans = [
        (e.start, _exposure_last_day(e, as_of), table[e.ingredients].antiretrovirals) for e in arv
    ]
    # Sweep the calendar: the set of active drugs changes only at exposure starts and ends.
    boundaries = sorted(
        {start for start, _, _ in spans} | {last + timedelta(days=1) for _, last, _ in spans}
    )
    segments: list[_Segment] = []
    for seg_start, seg_next in itertools.pairwise(boundaries):
        active = frozenset(
            i for start, last, drugs in spans if start <= seg_start <= last for i in drugs
        )
        last_day = seg_next - timedelta(days=1)
        if segments and segments[-1].drugs == active:
            segments[-1].last_day = last_day
        else:
            segments.append(_Segment(active, seg_start, last_day))
    segments = _absorb_transitions(segments, rules)
    gap = timedelta(days=rules.gap_days)
    lines: list[Line] = []
    number = first_number
    for segment in segments:
        drugs, start, last_day = segment.drugs, segment.start, segment.last_day
        if not drugs:
            continue
        previous = lines[-1] if lines else None
        if (
            previous
            and frozenset(previous.ingredients) == drugs
            and start - previous.last_active <= gap
        ):
            merged_sources = {
                e.source
                for e in arv
                if _overlaps(e, previous.start, last_day, as_of) and e.ingredients & drugs
            }
            lines[-1] = msgspec.structs.replace(
                previous, end=last_day, last_active=last_day, sources=tuple(sorted(merged_sources))
            )
            continue
        sources = {
            e.source for e in arv if _overlaps(e, start, last_day, as_of) and e.ingredients & drugs
        }
        lines.append(
            Line(
                number=number,
                regimen=kb.regimen_named(drugs) or " + ".join(sorted(drugs)),
                ingredients=tuple(sorted(drugs)),
                start=start,
                end=last_day,
                last_active=last_day,
                maintenance=False,
                sources=tuple(sorted(sources)),
                domain="hiv",
            )
        )
        number += 1
    if lines:
        last = lines[-1]
        still_taking = any(_overlaps(e, as_of, as_of, as_of) and e.active for e in arv)
        if still_taking and last.last_active >= as_of:
            lines[-1] = msgspec.structs.replace(last, end=None, last_active=as_of)
    return lines


def _overlaps(e: DrugExposure, start: date, last_day: date, as_of: date) -> bool:
    return e.start <= last_day and _exposure_last_day(e, as_of) >= start


@dataclass
class _Segment:
    """A stretch of calendar days with one set of active antiretrovirals."""

    drugs: frozenset[str]
    start: date
    last_day: date


def _absorb_transitions(segments: list[_Segment], rules: LineRules) -> list[_Segment]:
    """Merge segments shorter than min_regimen_days into a neighbour (overlaps while switching)."""
    minimum = timedelta(days=rules.min_regimen_days)
    changed = True
    while changed and len(segments) > 1:
        changed = False
        for index, segment in enumerate(segments):
            too_short = segment.last_day - segment.start + timedelta(days=1) < minimum
            if not (segment.drugs and too_short):
                continue
            if index + 1 < len(segments) and segments[index + 1].drugs:
                segments[index + 1].start = segment.start  # the next regimen starts at the switch
            elif index > 0 and segments[index - 1].drugs:
                segments[index - 1].last_day = segment.last_day
            else:
                continue
            del segments[index]
            changed = True
            break
        merged: list[_Segment] = []  # equal neighbours produced by absorption become one
        for segment in segments:
            if merged and merged[-1].drugs == segment.drugs:
                merged[-1].last_day = segment.last_day
            else:
                merged.append(segment)
        segments = merged
    return segments
