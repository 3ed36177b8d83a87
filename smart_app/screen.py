"""What the screen draws from one `/api/summary` patient entry: the timeline and the marker charts
on one shared time axis, and what is read while the page waits (the view only renders this)."""

from __future__ import annotations

from datetime import date
from typing import Any

from smart_app import chart

# What the loading state names while the FHIR reads run (SMART resource type -> plain words).
READING = {
    "Patient": "demographics",
    "MedicationRequest": "medication orders",
    "MedicationAdministration": "administrations",
    "MedicationStatement": "medication statements",
    "Medication": "referenced medications",
    "Observation": "laboratory results and disease status",
    "Condition": "diagnoses, relapses and recurrences",
    "Procedure": "procedures (radiotherapy, surgery)",
}


def reading(types: set[str] | frozenset[str]) -> list[tuple[str, str]]:
    return [(t, words) for t, words in READING.items() if t in types]


def charts(patient: dict[str, Any], today: date) -> tuple[chart.Timeline, list[chart.MarkerChart]]:
    axis = chart.shared_axis(patient, today)
    timeline = chart.timeline(
        patient["lines"],
        patient["failures"],
        patient.get("exposures") or [],
        today,
        procedures=patient.get("procedures") or [],
        axis=axis,
    )
    return timeline, marker_charts(patient, axis)


def marker_charts(patient: dict[str, Any], axis: chart.TimeAxis) -> list[chart.MarkerChart]:
    """The engine's marker series (salvage.engine.markers), drawn as they are: which marker and
    which thresholds apply to this patient is decided there, from the knowledge base. Values
    named as the evidence of a failure are marked as the confirming values."""
    confirming = frozenset(s for f in patient.get("failures") or [] for s in f.get("sources", []))
    found = []
    for marker in patient.get("markers") or []:
        made = chart.marker_chart(
            marker,
            [
                (date.fromisoformat(p["date"]), float(p["value"]), p["source"])
                for p in marker["points"]
            ],
            axis,
            [(float(t["value"]), t["label"]) for t in marker["thresholds"]],
            confirming,
        )
        if made:
            found.append(made)
    return found
