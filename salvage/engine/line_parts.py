"""Parts of a line that are not its regimen: the episode being built, drugs that accompany it
(CNS prophylaxis, pre-phase, steroids completing a named regimen) and high-dose therapy with a
transplant that consolidates it (line_rules.yaml accompanying and consolidation)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from salvage.engine.model import DrugExposure, ProcedureRecord
from salvage.knowledge.model import KnowledgeBase, LineRules


@dataclass(slots=True)  # built and updated per day of every patient: slots read faster
class Episode:
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


def exposure_last_day(e: DrugExposure, as_of: date) -> date:
    return min(e.end, as_of) if e.end is not None else as_of


def attach_accompanying(
    episodes: list[Episode],
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
                        episode.last_active, exposure_last_day(exposure, as_of)
                    )
                placed = True
                break
            if placed:
                break
        if not placed:
            left.append(exposure)
    return left


def consolidate(
    episodes: list[Episode],
    transplants: list[ProcedureRecord],
    rules: LineRules,
    as_of: date,
) -> list[Episode]:
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


def attach_steroids(
    episodes: list[Episode], steroids: list[DrugExposure], kb: KnowledgeBase, window: timedelta
) -> list[DrugExposure]:
    """A steroid joins a line only when it completes a named regimen that lists it (R-CHOP, R-DHAP);
    otherwise it is premedication or antiemetic prophylaxis and, like supportive care, ignored
    unless a pre-phase rule places it. Returns the steroids not placed."""
    left: list[DrugExposure] = []
    for exposure in steroids:
        # Prefer the most recently started line; a line that starts after the steroid comes last.
        # Only lines whose span (with the window either side) holds the steroid can take it.
        day = exposure.start
        candidates = sorted(
            (ep for ep in episodes if ep.start - window <= day <= ep.last_active + window),
            key=lambda ep: (ep.start > day, -ep.start.toordinal()),
        )
        for episode in candidates:
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
