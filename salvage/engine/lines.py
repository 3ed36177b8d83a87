"""Rebuild lines of therapy from drug exposures and procedures, following rules given as data.

Oncology (Meng 2021, Hess 2021): drugs started within the regimen window of a line's first drug form
its regimen; a new drug after the window starts a new line unless it substitutes for a drug of the
line; a gap longer than gap_days ends the line; dropping a drug does not advance the line; listed
continuation maintenance stays in the line and is flagged. HIV (DHHS): each distinct antiretroviral
regimen is a line.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

from salvage.engine.model import DrugExposure, Line, ProcedureRecord
from salvage.knowledge.model import KnowledgeBase, LineRules


@dataclass
class _Episode:
    start: date
    regimen_drugs: set[str] = field(default_factory=set)  # drugs started within the window
    drugs: set[str] = field(default_factory=set)  # every drug of the line (substitutes included)
    exposures: list[DrugExposure] = field(default_factory=list)
    procedure: ProcedureRecord | None = None
    last_active: date = date.min
    ongoing: bool = False


def _exposure_last_day(e: DrugExposure, as_of: date) -> date:
    return min(e.end, as_of) if e.end is not None else as_of


def _is_ongoing(e: DrugExposure, as_of: date, rules: LineRules) -> bool:
    """Running at as_of: an open or future-ending active order, or a cycle order in its window."""
    if not e.active:
        return False
    if e.end is None or e.end >= as_of:
        return e.start <= as_of
    return (as_of - e.start).days <= rules.regimen_window_days and e.end == e.start


def _substitutes(drug: str, line_drugs: set[str], rules: LineRules) -> bool:
    return any(drug in pair and (pair - {drug}) & line_drugs for pair in rules.substitutions)


def oncology_lines(
    exposures: list[DrugExposure],
    procedures: list[ProcedureRecord],
    kb: KnowledgeBase,
    rules: LineRules,
    as_of: date,
    first_number: int = 1,
) -> list[Line]:
    window = timedelta(days=rules.regimen_window_days)
    gap = timedelta(days=rules.gap_days)
    drug_events = [e for e in exposures if e.start <= as_of]
    main = [e for e in drug_events if _roles(e, kb) & {"anticancer"}]
    steroids = [
        e for e in drug_events if not _roles(e, kb) & {"anticancer"} and _roles(e, kb) & {"steroid"}
    ]
    events: list[DrugExposure | ProcedureRecord] = list(main)
    if rules.procedure_lines:
        events += [p for p in procedures if p.when <= as_of]

    episodes: list[_Episode] = []
    current: _Episode | None = None
    for when, group in _by_day(events):
        procedures_today = [e for e in group if isinstance(e, ProcedureRecord)]
        drugs_today = [e for e in group if isinstance(e, DrugExposure)]
        for procedure in procedures_today:
            joins = (
                current is not None and current.procedure is None and when - current.start <= window
            )
            if not joins or current is None:
                current = _Episode(start=when)
                episodes.append(current)
            current.procedure = procedure
            current.last_active = max(current.last_active, procedure.end)
        if not drugs_today:
            continue
        # The drugs of one day decide together: a cycle that adds a new drug starts a new line even
        # when its other drugs belong to the current one.
        new_drugs: set[str] = set()
        for exposure in drugs_today:
            new_drugs |= set(exposure.ingredients) - _non_line_drugs(exposure, kb)
        if current is None or when - current.last_active > gap:
            current = _Episode(start=when)
            episodes.append(current)
        elif when - current.start > window:
            added = new_drugs - current.drugs
            if added and not all(_substitutes(d, current.drugs, rules) for d in added):
                current = _Episode(start=when)
                episodes.append(current)
        if when - current.start <= window:
            current.regimen_drugs |= new_drugs
        current.drugs |= new_drugs
        for exposure in drugs_today:
            current.exposures.append(exposure)
            current.last_active = max(current.last_active, _exposure_last_day(exposure, as_of))
            current.ongoing = current.ongoing or _is_ongoing(exposure, as_of, rules)

    _attach_steroids(episodes, steroids, kb, window)
    lines: list[Line] = []
    for offset, episode in enumerate(episodes):
        lines += _episode_lines(
            episode, first_number + offset, kb, rules, as_of, is_last=offset == len(episodes) - 1
        )
    return lines


def _by_day(
    events: list[DrugExposure | ProcedureRecord],
) -> list[tuple[date, list[DrugExposure | ProcedureRecord]]]:
    days: dict[date, list[DrugExposure | ProcedureRecord]] = {}
    for event in events:
        days.setdefault(event.start if isinstance(event, DrugExposure) else event.when, []).append(
            event
        )
    return sorted(days.items())


def _roles(e: DrugExposure, kb: KnowledgeBase) -> set[str]:
    return {kb.drugs[i].role for i in e.ingredients if i in kb.drugs}


def _non_line_drugs(e: DrugExposure, kb: KnowledgeBase) -> set[str]:
    """Ingredients of a product that never count towards a line (mesna in an ifosfamide kit)."""
    return {
        i for i in e.ingredients if i in kb.drugs and kb.drugs[i].role in ("supportive", "steroid")
    }


def _attach_steroids(
    episodes: list[_Episode], steroids: list[DrugExposure], kb: KnowledgeBase, window: timedelta
) -> None:
    """A steroid joins a line only when it completes a named regimen that lists it (R-CHOP, R-DHAP);
    otherwise it is premedication or antiemetic prophylaxis and, like supportive care, ignored."""
    for exposure in steroids:
        # Prefer the most recently started line; a line that starts after the steroid comes last.
        candidates = sorted(
            episodes, key=lambda ep: (ep.start > exposure.start, -ep.start.toordinal())
        )
        for episode in candidates:
            if not (episode.start - window <= exposure.start <= episode.last_active + window):
                continue
            if kb.regimen_named(frozenset(episode.regimen_drugs | exposure.ingredients)) is None:
                continue
            if exposure.start - episode.start <= window:
                episode.regimen_drugs |= exposure.ingredients
            episode.drugs |= exposure.ingredients
            episode.exposures.append(exposure)
            # Part of the regimen (dexamethasone days 1-4 of R-DHAP), so it extends the line.
            episode.last_active = max(episode.last_active, exposure.end or exposure.start)
            break


def _name(drugs: frozenset[str], kb: KnowledgeBase, procedure: ProcedureRecord | None) -> str:
    named = kb.regimen_named(drugs)
    if named:
        return named
    parts = sorted(drugs)
    if procedure is not None:
        return " + ".join([procedure.label, *parts])
    return " + ".join(parts)


def _episode_lines(
    episode: _Episode,
    number: int,
    kb: KnowledgeBase,
    rules: LineRules,
    as_of: date,
    *,
    is_last: bool,
) -> list[Line]:
    end: date | None = None if (episode.ongoing and is_last) else episode.last_active
    maintenance_start = _maintenance_start(episode, kb, rules)
    induction = [
        e for e in episode.exposures if maintenance_start is None or e.start < maintenance_start
    ]
    upkeep = [
        e
        for e in episode.exposures
        if maintenance_start is not None and e.start >= maintenance_start
    ]
    procedure_sources = [episode.procedure.source] if episode.procedure else []
    induction_last = max(
        (_exposure_last_day(e, as_of) for e in induction),
        default=episode.procedure.end if episode.procedure else episode.start,
    )
    if episode.procedure is not None:
        induction_last = max(induction_last, episode.procedure.end)
    induction_drugs = sorted({i for e in induction for i in e.ingredients} & episode.drugs)
    main = Line(
        number=number,
        regimen=_name(frozenset(episode.regimen_drugs), kb, episode.procedure),
        ingredients=tuple(induction_drugs),
        start=episode.start,
        end=end if not upkeep else induction_last,
        last_active=episode.last_active if not upkeep else induction_last,
        maintenance=False,
        sources=tuple(sorted(set(procedure_sources) | {e.source for e in induction})),
        domain="oncology",
        procedure=episode.procedure.kind if episode.procedure else None,
    )
    if not upkeep:
        return [main]
    upkeep_drugs = frozenset(i for e in upkeep for i in e.ingredients) & frozenset(episode.drugs)
    maintenance = Line(
        number=number,
        regimen=_name(upkeep_drugs, kb, None) + " maintenance",
        ingredients=tuple(sorted(upkeep_drugs)),
        start=min(e.start for e in upkeep),
        end=end,
        last_active=episode.last_active,
        maintenance=True,
        sources=tuple(sorted({e.source for e in upkeep})),
        domain="oncology",
    )
    return [main, maintenance]


def _maintenance_start(episode: _Episode, kb: KnowledgeBase, rules: LineRules) -> date | None:
    """First exposure after the last non-maintenance drug, when all that follows is maintenance."""
    for rule in rules.maintenance:
        line_classes = {
            c for d in episode.regimen_drugs if d in kb.drugs for c in kb.drugs[d].classes
        }
        if not rule.after_classes <= line_classes:
            continue
        induction_only = [e for e in episode.exposures if not set(e.ingredients) <= rule.drugs]
        if not induction_only:
            continue
        last_induction = max(e.start for e in induction_only)
        after = [e for e in episode.exposures if e.start > last_induction]
        # Continuation maintenance: the maintained drugs were part of the induction regimen.
        if after and all(set(e.ingredients) <= rule.drugs & episode.regimen_drugs for e in after):
            return min(e.start for e in after)
    return None


def hiv_lines(
    exposures: list[DrugExposure],
    kb: KnowledgeBase,
    rules: LineRules,
    as_of: date,
    first_number: int = 1,
) -> list[Line]:
    """Each distinct antiretroviral regimen is a line; short switch overlaps are transitions."""
    arv = [
        e
        for e in exposures
        if e.start <= as_of
        and any(kb.drugs[i].role == "antiretroviral" for i in e.ingredients if i in kb.drugs)
    ]
    if not arv:
        return []
    # Sweep the calendar: the set of active drugs changes only at exposure starts and ends.
    boundaries = sorted(
        {e.start for e in arv} | {_exposure_last_day(e, as_of) + timedelta(days=1) for e in arv}
    )
    segments: list[_Segment] = []
    for seg_start, seg_next in itertools.pairwise(boundaries):
        active = frozenset(
            i
            for e in arv
            if e.start <= seg_start <= _exposure_last_day(e, as_of)
            for i in e.ingredients
            if kb.drugs.get(i) and kb.drugs[i].role == "antiretroviral"
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
            lines[-1] = replace(
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
            lines[-1] = replace(last, end=None, last_active=as_of)
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
