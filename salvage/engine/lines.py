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
    sequence: bool = False  # a planned sequence (AC then a taxane) extended the regimen
    consolidation: str | None = None
    consolidation_drugs: set[str] = field(default_factory=set)
    consolidation_exposures: list[DrugExposure] = field(default_factory=list)
    consolidation_sources: list[str] = field(default_factory=list)
    accompanying: list[tuple[str, str, str]] = field(default_factory=list)


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


def _continues_sequence(added: set[str], current: _Episode, when: date, rules: LineRules) -> bool:
    """A planned sequential regimen: the second part follows the first within its gap."""
    return any(
        current.drugs == set(seq.first)
        and added <= set(seq.then)
        and (when - current.last_active).days <= seq.max_gap_days
        for seq in rules.sequences
    ) or (
        current.sequence
        and bool(added)
        and all(
            added <= set(seq.then) and set(seq.first) <= current.drugs for seq in rules.sequences
        )
    )


def oncology_lines(
    exposures: list[DrugExposure],
    procedures: list[ProcedureRecord],
    kb: KnowledgeBase,
    rules: LineRules,
    as_of: date,
    first_number: int = 1,
) -> list[Line]:
    drug_events = [e for e in exposures if e.start <= as_of]
    main = [e for e in drug_events if _roles(e, kb) & {"anticancer"}]
    steroids = [
        e for e in drug_events if not _roles(e, kb) & {"anticancer"} and _roles(e, kb) & {"steroid"}
    ]
    local = [p for p in procedures if p.when <= as_of and _is_local(p, rules)]
    transplants = [p for p in procedures if p.when <= as_of and not _is_local(p, rules)]
    # Drugs that may only accompany a line (CNS prophylaxis, pre-phase) are placed after the
    # lines are built; those that accompany nothing are counted like any other drug.
    accompanying_drugs = {d for a in rules.accompanying for d in a.drugs}
    # A drug of the accompanied regimen itself (vincristine of R-CHOP) is held only on a day
    # when nothing else is given (a pre-phase); methotrexate is held whenever it comes alone.
    accompanied = {
        d
        for a in rules.accompanying
        for r in a.with_regimens
        if r in kb.regimens
        for d in kb.regimens[r].components
    }
    day_drugs: dict[date, set[str]] = {}
    for e in main:
        day_drugs.setdefault(e.start, set()).update(e.ingredients)
    held = [
        e
        for e in main
        if e.ingredients
        and set(e.ingredients) <= accompanying_drugs
        and (not e.ingredients & accompanied or day_drugs[e.start] <= accompanying_drugs)
    ]
    own_local = local if rules.procedure_lines else []

    def assemble(waiting: list[DrugExposure]) -> tuple[list[_Episode], list[DrugExposure]]:
        built = _build([e for e in main if e not in waiting], own_local, kb, rules, as_of)
        unplaced = _attach_steroids(built, steroids, kb, timedelta(rules.regimen_window_days))
        return built, _attach_accompanying(built, [*waiting, *unplaced], rules, kb, as_of)

    episodes, left = assemble(held)
    if any(e in held for e in left):
        episodes, _ = assemble([e for e in held if e not in left])
    episodes = _consolidate(episodes, transplants, rules, as_of)
    lines: list[Line] = []
    for offset, episode in enumerate(episodes):
        lines += _episode_lines(
            episode, first_number + offset, kb, rules, as_of, is_last=offset == len(episodes) - 1
        )
    return lines


def _is_local(procedure: ProcedureRecord, rules: LineRules) -> bool:
    """Local therapy (prostatectomy, radiotherapy) as opposed to a transplant that consolidates."""
    return not any(c.procedure == procedure.kind for c in rules.consolidation)


def _build(
    main: list[DrugExposure],
    procedures: list[ProcedureRecord],
    kb: KnowledgeBase,
    rules: LineRules,
    as_of: date,
) -> list[_Episode]:
    window = timedelta(days=rules.regimen_window_days)
    gap = timedelta(days=rules.gap_days)
    events: list[DrugExposure | ProcedureRecord] = [*main, *procedures]
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
        sequence = False
        if current is None or when - current.last_active > gap:
            current = _Episode(start=when)
            episodes.append(current)
        elif when - current.start > window:
            added = new_drugs - current.drugs
            if added and _continues_sequence(added, current, when, rules):
                sequence = current.sequence = True
            elif added and not all(_substitutes(d, current.drugs, rules) for d in added):
                current = _Episode(start=when)
                episodes.append(current)
        if when - current.start <= window or sequence:
            current.regimen_drugs |= new_drugs
        current.drugs |= new_drugs
        for exposure in drugs_today:
            current.exposures.append(exposure)
            current.last_active = max(current.last_active, _exposure_last_day(exposure, as_of))
            current.ongoing = current.ongoing or _is_ongoing(exposure, as_of, rules)
    return episodes


def _attach_accompanying(
    episodes: list[_Episode],
    exposures: list[DrugExposure],
    rules: LineRules,
    kb: KnowledgeBase,
    as_of: date,
) -> list[DrugExposure]:
    """CNS prophylaxis and a pre-phase join the line they accompany (line_rules.yaml
    accompanying); returns the exposures that accompany no line."""
    left: list[DrugExposure] = []
    for exposure in exposures:
        placed = False
        for rule in rules.accompanying:
            if not exposure.ingredients or not exposure.ingredients <= set(rule.drugs):
                continue
            for episode in episodes:
                named = kb.regimen_named(frozenset(episode.regimen_drugs))
                if named not in rule.with_regimens:
                    continue
                before = (episode.start - exposure.start).days
                after = (exposure.start - episode.last_active).days
                if rule.role == "pre-phase":
                    fits = 0 < before <= rule.before_days
                else:
                    fits = exposure.start >= episode.start and after <= rule.after_days
                if not fits:
                    continue
                episode.exposures.append(exposure)
                episode.accompanying += [
                    (rule.role, drug, exposure.source) for drug in sorted(exposure.ingredients)
                ]
                if rule.role == "cns-prophylaxis":
                    # Intercalated or end-of-treatment prophylaxis is still this line's therapy.
                    episode.last_active = max(
                        episode.last_active, _exposure_last_day(exposure, as_of)
                    )
                placed = True
                break
            if placed:
                break
        if not placed:
            left.append(exposure)
    return left


def _consolidate(
    episodes: list[_Episode],
    transplants: list[ProcedureRecord],
    rules: LineRules,
    as_of: date,
) -> list[_Episode]:
    """High-dose therapy with a stem-cell transplant, and post-transplant consolidation, belong to
    the line before them (line_rules.yaml consolidation: CORAL, PARMA, AETHERA)."""
    for procedure in sorted(transplants, key=lambda p: p.when):
        rule = next((c for c in rules.consolidation if c.procedure == procedure.kind), None)
        if rule is None:
            continue
        conditioning = set(rule.conditioning)
        high_dose = [
            ep
            for ep in episodes
            if ep.drugs <= conditioning
            and 0 <= (procedure.when - ep.start).days <= rule.conditioning_days
        ]
        before = [
            ep
            for ep in episodes
            if ep not in high_dose
            and ep.start < procedure.when
            and (procedure.when - ep.last_active).days <= rule.after_line_days
        ]
        if not before and not high_dose:
            continue
        line = before[-1] if before else high_dose.pop(0)
        after = [
            ep
            for ep in episodes
            if ep is not line
            and ep.drugs <= set(rule.post_transplant)
            and 0 < (ep.start - procedure.when).days <= rule.post_transplant_days
        ]
        line.consolidation = rule.procedure
        line.consolidation_sources.append(procedure.source)
        line.last_active = max(line.last_active, procedure.end)
        for ep in [*high_dose, *after]:
            line.consolidation_drugs |= ep.drugs
            line.consolidation_exposures += ep.exposures
            line.last_active = max(line.last_active, ep.last_active)
            line.ongoing = line.ongoing or ep.ongoing
            episodes.remove(ep)
    return episodes


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
) -> list[DrugExposure]:
    """A steroid joins a line only when it completes a named regimen that lists it (R-CHOP, R-DHAP);
    otherwise it is premedication or antiemetic prophylaxis and, like supportive care, ignored
    unless a pre-phase rule places it. Returns the steroids not placed."""
    left: list[DrugExposure] = []
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
        else:
            left.append(exposure)
    return left


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
    accompanying_sources = {source for _, _, source in episode.accompanying}
    regimen_exposures = [e for e in episode.exposures if e.source not in accompanying_sources]
    induction = [
        e for e in regimen_exposures if maintenance_start is None or e.start < maintenance_start
    ]
    upkeep = [
        e
        for e in regimen_exposures
        if maintenance_start is not None and e.start >= maintenance_start
    ]
    procedure_sources = [episode.procedure.source] if episode.procedure else []
    induction_last = max(
        (_exposure_last_day(e, as_of) for e in induction),
        default=episode.procedure.end if episode.procedure else episode.start,
    )
    if episode.procedure is not None:
        induction_last = max(induction_last, episode.procedure.end)
    induction_drugs = frozenset({i for e in induction for i in e.ingredients} & episode.drugs)
    # The name always matches the ingredients: the regimen drugs actually given in induction.
    named_drugs = frozenset(episode.regimen_drugs) & induction_drugs or induction_drugs
    consolidation_sources = {e.source for e in episode.consolidation_exposures}
    main = Line(
        number=number,
        regimen=_name(named_drugs, kb, episode.procedure),
        ingredients=tuple(sorted(induction_drugs)),
        start=min([episode.start, *(e.start for e in episode.exposures)]),
        end=end if not upkeep else induction_last,
        last_active=episode.last_active if not upkeep else induction_last,
        maintenance=False,
        sources=tuple(
            sorted(
                set(procedure_sources)
                | {e.source for e in induction}
                | accompanying_sources
                | consolidation_sources
                | set(episode.consolidation_sources)
            )
        ),
        domain="oncology",
        procedure=episode.procedure.kind if episode.procedure else None,
        consolidation=episode.consolidation,
        consolidation_regimen=(
            _name(frozenset(episode.consolidation_drugs), kb, None)
            if episode.consolidation_drugs
            else None
        ),
        consolidation_ingredients=tuple(sorted(episode.consolidation_drugs)),
        accompanying=tuple(sorted(set(episode.accompanying))),
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
    """Where maintenance begins: only after induction is complete (min_induction_cycles treatment
    days with an induction-only drug), never inside the regimen window, and only with drugs of
    the induction regimen (continuation) or listed switch-maintenance drugs."""
    window = timedelta(days=rules.regimen_window_days)
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
        if not after:
            continue
        first_after = min(e.start for e in after)
        if first_after - episode.start <= window:
            continue  # still the regimen window: part of the doublet, not maintenance
        cycles = len({e.start for e in induction_only})
        if cycles < rule.min_induction_cycles:
            continue  # induction incomplete: what follows is the same line, not maintenance
        allowed = (rule.drugs & episode.regimen_drugs) | rule.switch_drugs
        if all(set(e.ingredients) - _non_line_drugs(e, kb) <= allowed for e in after):
            return first_after
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
