"""The card that says the record was read only in part (issue 14): a hook answer computed from
incomplete data must never look like an answer from complete data."""

from __future__ import annotations

from collections.abc import Iterable

from cds_hooks.cards import CardBuilder, CardOut
from salvage.fhir.client import ReadProblem


def incomplete_data_card(builder: CardBuilder, gaps: Iterable[ReadProblem]) -> CardOut:
    problems = sorted({(g.resource_type, g.text) for g in gaps})
    types = sorted({rtype for rtype, _ in problems})
    return builder.card(
        "data-incomplete",
        "info",
        f"Record read only in part ({', '.join(types)}): checks may be missing",
        [
            "salvage-cds could not read all of this patient's data within its limits, so the "
            "checks below (or their absence) are based on part of the record only:",
            "",
            *(f"- {rtype}: {text}" for rtype, text in problems),
        ],
    )
