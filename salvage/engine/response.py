"""Best response to each line of therapy, from Cancer disease status observations: their coded
answers, else the words of a PET-CT or Lugano response report (line_rules.yaml response). A line
without a readable assessment says 'unknown'; a response is never assumed."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Literal

import msgspec

from salvage.engine import failures
from salvage.engine.model import Line, Measurement, PatientRecord
from salvage.knowledge.model import KnowledgeBase, ResponseRules

# Best first: the best response observed is the line's best response.
Response = Literal["complete", "partial", "stable", "progression"]
ORDER: tuple[Response, ...] = ("complete", "partial", "stable", "progression")


def category(m: Measurement, rules: ResponseRules) -> str | None:
    """The response a disease-status observation records, by code, else by its words."""
    for name in ORDER:
        if m.codes & set(rules.codes.get(name, [])):
            return name
    text = m.raw.lower()
    for name in ORDER:
        for cue in rules.text.get(name, []):
            if re.search(rf"(?<![a-z0-9]){re.escape(cue)}(?![a-z0-9])", text) and not re.search(
                rf"\bno {re.escape(cue)}", text
            ):
                return name
    return None


def assign(
    lines: list[Line],
    record: PatientRecord,
    kb: KnowledgeBase,
    disease: str | None,
    *,
    unfocused: bool,
) -> list[Line]:
    """Each line with its best response and the observations it rests on. An assessment counts
    for a line from its start until assess_within_days after its last dose, and never after the
    next line of the same disease began."""
    rules = kb.response_rules
    if rules is None or not lines:
        return lines
    statuses = [
        m
        for m in record.measurements
        if m.kind == "disease-status" and failures.applies_to(m, disease, kb, record, unfocused)
    ]
    if not statuses and all(
        ln.best_response == "unknown" and not ln.response_sources for ln in lines
    ):
        return lines  # no assessment on record: every line's response stays unknown, unchanged
    starts = sorted({ln.start for ln in lines if not ln.maintenance})
    last_active: dict[int, date] = {}
    for ln in lines:
        last_active[ln.number] = max(last_active.get(ln.number, ln.last_active), ln.last_active)
    out: list[Line] = []
    for line in lines:
        if line.maintenance:
            out.append(line)
            continue
        found: dict[str, list[str]] = {}
        later = [s for s in starts if s > line.start] if statuses else []
        until = last_active[line.number] + timedelta(days=rules.assess_within_days)
        if later:
            until = min(until, later[0])
        for m in statuses:
            if line.start < m.when <= until:
                name = category(m, rules)
                if name is not None:
                    found.setdefault(name, []).append(m.source)
        best = next((name for name in ORDER if name in found), "unknown")
        sources = tuple(sorted(found.get(best, [])))
        if (best, sources) == (line.best_response, line.response_sources):
            out.append(line)  # unchanged: no frozen copy (it costs µs per line)
        else:
            out.append(msgspec.structs.replace(line, best_response=best, response_sources=sources))
    return out
