"""Rebuild lines of therapy from drug exposures and procedures, following rules given as data.

Oncology (Meng 2021, Hess 2021): drugs started within the regimen window of a line's first drug form
its regimen; a new drug after the window starts a new line unless it substitutes for a drug of the
line; a gap longer than gap_days ends the line; dropping a drug does not advance the line; listed
continuation maintenance stays in the line and is flagged. Issue 11 refinements (a careful chart
reviewer): maintenance only after complete induction, CNS prophylaxis and pre-phase accompany a
line, high-dose therapy with a transplant consolidates it, planned sequences (AC-T) are one line.
HIV lines are built in hiv_lines.py.
"""

from __future__ import annotations

from datetime import date, timedelta

from salvage.engine import line_parts
from salvage.engine.ingredient_facts import facts, facts_table
from salvage.engine.line_parts import Episode
from salvage.engine.model import DrugExposure, Line, ProcedureRecord
from salvage.knowledge.model import KnowledgeBase, LineRules


def _is_ongoing(e: DrugExposure, as_of: date, rules: LineRules) -> bool:
    """Running at as_of: an open or future-ending active order, or a cycle order in its window."""
    if not e.active:
        return False
    if e.end is None or e.end >= as_of:
        return e.start <= as_of
    return (as_of - e.start).days <= rules.regimen_window_days and e.end == e.start


def _substitutes(drug: str, line_drugs: set[str], rules: LineRules) -> bool:
    return any(drug in pair and (pair - {drug}) & line_drugs for pair in rules.substitutions)


def _continues_sequence(added: set[str], current: Episode, when: date, rules: LineRules) -> bool:
    """A planned sequential regimen: the second part (or a taxane swapped within it) follows the
    first within its gap (line_rules.yaml sequences: AC-T)."""
    return any(
        (current.drugs == set(seq.first) or (current.sequence and set(seq.first) <= current.drugs))
        and added <= set(seq.then)
        and (when - current.last_active).days <= seq.max_gap_days
        for seq in rules.sequences
    )


def oncology_lines(
    exposures: list[DrugExposure],
    procedures: list[ProcedureRecord],
    kb: KnowledgeBase,
    rules: LineRules,
    as_of: date,
    first_number: int = 1,
    disease: str | None = None,
) -> list[Line]:
    table = facts_table(kb)
    main: list[DrugExposure] = []  # anticancer drugs build the lines
    steroids: list[DrugExposure] = []  # steroids join one only when they complete its regimen
    for e in exposures:
        if e.start <= as_of:
            roles = table[e.ingredients].roles
            if "anticancer" in roles:
                main.append(e)
            elif "steroid" in roles:
                steroids.append(e)
    local = [p for p in procedures if p.when <= as_of and _is_local(p, rules)]
    if not main and not (local and rules.procedure_lines):
        # Nothing starts a line: steroids, accompanying drugs and transplants only join one.
        return []
    transplants = [p for p in procedures if p.when <= as_of and not _is_local(p, rules)]
    # Drugs that may only accompany a line (CNS prophylaxis, pre-phase) are placed after the
    # lines are built; those that accompany nothing are counted like any other drug.
    accompanying_drugs, accompanied = _accompanying_sets(rules, kb)
    held = (
        [e for e in main if e.ingredients and e.ingredients <= accompanying_drugs]
        if accompanying_drugs
        else []
    )
    if held:
        # A drug of the accompanied regimen itself (vincristine of R-CHOP) is held only on a day
        # when nothing else is given (a pre-phase); methotrexate is held whenever it comes alone.
        day_drugs: dict[date, set[str]] = {}
        for e in main:
            day_drugs.setdefault(e.start, set()).update(e.ingredients)
        held = [
            e
            for e in held
            if not e.ingredients & accompanied or day_drugs[e.start] <= accompanying_drugs
        ]
    own_local = local if rules.procedure_lines else []

    def assemble(waiting: list[DrugExposure]) -> tuple[list[Episode], list[DrugExposure]]:
        placed = [e for e in main if e not in waiting] if waiting else main
        built = _build(placed, own_local, kb, rules, as_of)
        unplaced = line_parts.attach_steroids(
            built, steroids, kb, timedelta(rules.regimen_window_days)
        )
        return built, line_parts.attach_accompanying(built, [*waiting, *unplaced], rules, kb, as_of)

    episodes, left = assemble(held)
    if any(e in held for e in left):
        episodes, _ = assemble([e for e in held if e not in left])
    episodes = line_parts.consolidate(episodes, transplants, rules, as_of)
    lines: list[Line] = []
    for offset, episode in enumerate(episodes):
        lines += _episode_lines(
            episode,
            first_number + offset,
            kb,
            rules,
            as_of,
            is_last=offset == len(episodes) - 1,
            disease=disease,
        )
    return lines


def _accompanying_sets(
    rules: LineRules, kb: KnowledgeBase
) -> tuple[frozenset[str], frozenset[str]]:
    """(drugs that may only accompany a line, drugs of the regimens they accompany), read once
    per knowledge base and rules (remembered by identity: the rules are immutable)."""
    memo: dict[int, tuple[LineRules, tuple[frozenset[str], frozenset[str]]]] | None = (
        kb.__dict__.get("_accompanying_sets")
    )
    if memo is None or len(memo) > 1_000:
        memo = {}
        object.__setattr__(kb, "_accompanying_sets", memo)
    found = memo.get(id(rules))
    if found is None or found[0] is not rules:
        sets = (
            frozenset(d for a in rules.accompanying for d in a.drugs),
            frozenset(
                d
                for a in rules.accompanying
                for r in a.with_regimens
                if r in kb.regimens
                for d in kb.regimens[r].components
            ),
        )
        found = memo[id(rules)] = (rules, sets)
    return found[1]


def _is_local(procedure: ProcedureRecord, rules: LineRules) -> bool:
    """Local therapy (prostatectomy, radiotherapy) as opposed to a transplant that consolidates."""
    return not any(c.procedure == procedure.kind for c in rules.consolidation)


def _build(
    main: list[DrugExposure],
    procedures: list[ProcedureRecord],
    kb: KnowledgeBase,
    rules: LineRules,
    as_of: date,
) -> list[Episode]:
    window = timedelta(days=rules.regimen_window_days)
    gap = timedelta(days=rules.gap_days)
    table = facts_table(kb)
    episodes: list[Episode] = []
    current: Episode | None = None
    for when, (drugs_today, procedures_today) in _by_day(main, procedures):
        for procedure in procedures_today:
            joins = (
                current is not None and current.procedure is None and when - current.start <= window
            )
            if not joins or current is None:
                current = Episode(start=when)
                episodes.append(current)
            current.procedure = procedure
            current.last_active = max(current.last_active, procedure.end)
        if not drugs_today:
            continue
        # The drugs of one day decide together: a cycle that adds a new drug starts a new line even
        # when its other drugs belong to the current one.
        new_drugs: set[str] = set()
        for exposure in drugs_today:
            non_line = table[exposure.ingredients].non_line
            new_drugs |= exposure.ingredients - non_line if non_line else exposure.ingredients
        sequence = False
        if current is None or when - current.last_active > gap:
            current = Episode(start=when)
            episodes.append(current)
        elif when - current.start > window:
            added = new_drugs - current.drugs
            if added and _continues_sequence(added, current, when, rules):
                sequence = current.sequence = True
            elif added and not all(_substitutes(d, current.drugs, rules) for d in added):
                current = Episode(start=when)
                episodes.append(current)
        if when - current.start <= window or sequence:
            current.regimen_drugs |= new_drugs
        current.drugs |= new_drugs
        current.exposures += drugs_today
        last_active, ongoing = current.last_active, current.ongoing
        for exposure in drugs_today:
            last_day = as_of if exposure.end is None or exposure.end > as_of else exposure.end
            if last_day > last_active:
                last_active = last_day
            # Only an active order can still be running (_is_ongoing's first test, inlined).
            ongoing = ongoing or (exposure.active and _is_ongoing(exposure, as_of, rules))
        current.last_active, current.ongoing = last_active, ongoing
    return episodes


def _by_day(
    drugs: list[DrugExposure], procedures: list[ProcedureRecord]
) -> list[tuple[date, tuple[list[DrugExposure], list[ProcedureRecord]]]]:
    """The day's drugs and procedures, by day, each in record order."""
    days: dict[date, tuple[list[DrugExposure], list[ProcedureRecord]]] = {}
    for exposure in drugs:
        found = days.get(exposure.start)
        if found is None:
            found = days[exposure.start] = ([], [])
        found[0].append(exposure)
    for procedure in procedures:
        found = days.get(procedure.when)
        if found is None:
            found = days[procedure.when] = ([], [])
        found[1].append(procedure)
    return sorted(days.items(), key=_first)


def _first(item: tuple[date, object]) -> date:
    return item[0]


def _name(drugs: frozenset[str], kb: KnowledgeBase, procedure: ProcedureRecord | None) -> str:
    named = kb.regimen_named(drugs)
    if named:
        return named
    parts = sorted(drugs)
    if procedure is not None:
        return " + ".join([procedure.label, *parts])
    return " + ".join(parts)


def _episode_lines(
    episode: Episode,
    number: int,
    kb: KnowledgeBase,
    rules: LineRules,
    as_of: date,
    *,
    is_last: bool,
    disease: str | None,
) -> list[Line]:
    end: date | None = None if (episode.ongoing and is_last) else episode.last_active
    maintenance_start = _maintenance_start(episode, kb, rules)
    accompanying_sources = {source for _, _, source in episode.accompanying}
    regimen_exposures = (
        [e for e in episode.exposures if e.source not in accompanying_sources]
        if accompanying_sources
        else episode.exposures
    )
    if maintenance_start is None:
        induction, upkeep = regimen_exposures, []
    else:
        induction = [e for e in regimen_exposures if e.start < maintenance_start]
        upkeep = [e for e in regimen_exposures if e.start >= maintenance_start]
    procedure_sources = [episode.procedure.source] if episode.procedure else []
    induction_last = (
        max(as_of if e.end is None or e.end > as_of else e.end for e in induction)
        if induction
        else episode.procedure.end
        if episode.procedure
        else episode.start
    )
    if episode.procedure is not None:
        induction_last = max(induction_last, episode.procedure.end)
    induction_drugs = frozenset().union(*(e.ingredients for e in induction)) & episode.drugs
    # The name always matches the ingredients: the regimen drugs actually given in induction.
    named_drugs = induction_drugs & episode.regimen_drugs or induction_drugs
    sources = {e.source for e in induction}
    sources.update(procedure_sources, accompanying_sources, episode.consolidation_sources)
    sources.update(e.source for e in episode.consolidation_exposures)
    main = Line(
        number=number,
        regimen=_name(named_drugs, kb, episode.procedure),
        ingredients=tuple(sorted(induction_drugs)),
        start=min([episode.start, *(e.start for e in episode.exposures)]),
        end=end if not upkeep else induction_last,
        last_active=episode.last_active if not upkeep else induction_last,
        maintenance=False,
        sources=tuple(sorted(sources)),
        domain="oncology",
        disease=disease,
        procedure=episode.procedure.kind if episode.procedure else None,
        consolidation=episode.consolidation,
        consolidation_regimen=(
            _name(frozenset(episode.consolidation_drugs), kb, None)
            if episode.consolidation_drugs
            else None
        ),
        consolidation_ingredients=tuple(sorted(episode.consolidation_drugs)),
        accompanying=tuple(sorted(set(episode.accompanying))) if episode.accompanying else (),
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
        disease=disease,
    )
    return [main, maintenance]


def _maintenance_start(episode: Episode, kb: KnowledgeBase, rules: LineRules) -> date | None:
    """Where maintenance begins: only after induction is complete (min_induction_cycles treatment
    days with an induction-only drug), never inside the regimen window, and only with drugs of
    the induction regimen (continuation) or listed switch-maintenance drugs."""
    if not rules.maintenance:
        return None
    window = timedelta(days=rules.regimen_window_days)
    line_classes = {c for d in episode.regimen_drugs if d in kb.drugs for c in kb.drugs[d].classes}
    for rule in rules.maintenance:
        if not rule.after_classes <= line_classes:
            continue
        induction_only = [e for e in episode.exposures if not e.ingredients <= rule.drugs]
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
        if all(e.ingredients - facts(e.ingredients, kb).non_line <= allowed for e in after):
            return first_after
    return None
