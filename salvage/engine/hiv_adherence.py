"""Correctable causes of HIV viraemia in the record: missed doses written in a note of the failing
regimen, and polyvalent-cation supplements taken with an integrase inhibitor (phrases, classes
and evidence in knowledge/data/hiv.yaml, adherence). DHHS: assess adherence and interactions
before changing a regimen; without resistance, continue it with adherence support."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from salvage.engine.model import Failure, Line, PatientRecord
from salvage.knowledge.model import KnowledgeBase


@dataclass(frozen=True, kw_only=True)
class Causes:
    adherence: tuple[str, ...]  # sentences naming the note and where it was written
    interactions: tuple[str, ...]  # sentences naming the supplement and the affected drugs
    sources: tuple[str, ...]

    @property
    def any(self) -> bool:
        return bool(self.adherence or self.interactions)


def _overlaps(start: date, end: date | None, first: date, last: date) -> bool:
    return start <= last and (end is None or end >= first)


def causes(record: PatientRecord, kb: KnowledgeBase, failing: Line, failure: Failure) -> Causes:
    """Adherence notes on the failing regimen's antiretrovirals, and cation supplements taken
    while it failed when it contains a class they bind."""
    hiv = kb.hiv
    adherence: list[str] = []
    interactions: list[str] = []
    sources: list[str] = []
    regimen = set(failing.ingredients)
    for e in record.exposures:
        if not _overlaps(e.start, e.end, failing.start, failure.when):
            continue
        if e.ingredients & regimen:
            for note in e.notes:
                if any(p in note.lower() for p in hiv.adherence_phrases):
                    adherence.append(
                        f"missed doses noted on {e.text or e.source}: {note!r} ({e.source})"
                    )
                    sources.append(e.source)
    affected = sorted(
        d for d in regimen if d in kb.drugs and kb.drugs[d].classes & hiv.cation_affected_classes
    )
    if affected:
        for e in record.exposures:
            cations = sorted(
                d
                for d in e.ingredients
                if d in kb.drugs and hiv.cation_class in kb.drugs[d].classes
            )
            if cations and _overlaps(e.start, e.end, failing.start, failure.when):
                interactions.append(
                    f"{', '.join(cations)} ({e.text or e.source}, from {e.start.isoformat()}; "
                    f"{e.source}) with {', '.join(affected)}: polyvalent cations lower "
                    "integrase-inhibitor levels"
                )
                sources.append(e.source)
    return Causes(
        adherence=tuple(adherence),
        interactions=tuple(interactions),
        sources=tuple(dict.fromkeys(sources)),
    )
