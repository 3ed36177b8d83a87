"""Compose the engine's analysis of the launched patient: the `salvage recommend --json` shape plus
what could not be read, and the data the screen's charts need."""

from __future__ import annotations

from datetime import date
from typing import Any

from salvage import output
from salvage.engine import analyse_patient
from salvage.engine.model import PatientRecord
from salvage.engine.recommend import recommend
from salvage.fhir.records import build_patient_records
from salvage.knowledge.model import KnowledgeBase
from smart_app.banner import patient_banner


def summarise(
    resources: list[dict[str, Any]],
    patient_id: str,
    kb: KnowledgeBase,
    problems: list[dict[str, str]],
    today: date,
) -> dict[str, Any]:
    patients, skipped = build_patient_records(
        ((r, ("fhir", i)) for i, r in enumerate(resources)), kb
    )
    reference = f"Patient/{patient_id}"
    record = patients.get(reference) or PatientRecord(reference=reference)
    # Resource types the reader could not read: conclusions that depend on them say so.
    unreadable = frozenset(p["type"] for p in problems if p.get("type"))
    analysis = analyse_patient(record, kb, today, unreadable=unreadable)
    rec = recommend(analysis, kb, today)
    entry = {**output.patient_lines_json(analysis), **output.recommendation_json(rec, kb)}
    entry["data_gaps"] = problems
    entry["failure_assessable"] = analysis.failure_assessable
    entry["banner"] = patient_banner(
        next(
            (
                r
                for r in resources
                if r.get("resourceType") == "Patient" and r.get("id") == patient_id
            ),
            None,
        )
    )
    entry["skipped"] = output.skipped_json(skipped)
    entry["exposures"] = [
        {
            "source": e.source,
            "ingredients": sorted(e.ingredients),
            "start": e.start.isoformat(),
            "end": e.end.isoformat() if e.end else None,
        }
        for e in record.exposures
    ]
    entry["measurements"] = [
        {
            "source": m.source,
            "kind": m.kind,
            "date": m.when.isoformat(),
            "value": m.value,
            "raw": m.raw,
        }
        for m in record.measurements
        if m.value is not None
    ]
    return {"kb_version": kb.version, "as_of": today.isoformat(), "patients": [entry]}
